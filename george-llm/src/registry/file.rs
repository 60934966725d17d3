//! The operator's provider profiles file (YAML), read by
//! [`ProviderProfile::load_file`].
//!
//! ```yaml
//! # /etc/george/providers.yaml: the operator's, beside the engine, never in the
//! # manifest repository.
//! providers:
//!   - name: openai                      # what agent specs name in `provider:`
//!     kind: openai                      # openai | anthropic | gemini (the wire protocol)
//!     base_url: https://api.openai.com/v1
//!     api_key_env: OPENAI_API_KEY       # optional: the variable holding the key
//!     default_model: gpt-4.1-mini       # optional: for specs with an empty `model`
//!     models: [gpt-4.1-mini, gpt-4.1]   # optional: the models specs may ask for
//!   - name: gpu-box
//!     kind: openai
//!     base_url: http://gpu-box:11434/v1
//!     allow_link_local: false           # optional: allow a link-local base_url
//! ```
//!
//! Errors name the file, line, column and field (`providers.yaml:7:15:
//! providers[1].kind: ...`).

use std::collections::HashSet;

use george_core::{Error, Result};
use serde::Deserialize;
use serde::de::IgnoredAny;
use serde_saphyr::{Location, Spanned};

use super::profile::{KeySource, ProviderKind, ProviderProfile};
use crate::guard;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfilesFile {
    providers: Vec<FileProfile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileProfile {
    name: Spanned<String>,
    kind: Spanned<String>,
    base_url: Spanned<String>,
    #[serde(default)]
    api_key_env: Option<String>,
    #[serde(default)]
    default_model: Option<String>,
    #[serde(default)]
    models: Option<Vec<String>>,
    #[serde(default)]
    allow_link_local: bool,
}

/// Only where each entry starts, to name the entry an error is in.
#[derive(Debug, Deserialize)]
struct EntryStarts {
    #[serde(default)]
    providers: Vec<Spanned<IgnoredAny>>,
}

impl ProviderProfile {
    /// The profiles in the YAML file at `path` (format in
    /// [`the module docs`](crate::registry#profiles-file)).
    ///
    /// # Errors
    /// `InvalidInput` naming the file, line, column and field when it cannot be read,
    /// is not valid YAML of that shape, names an unknown `kind`, repeats a `name`, or
    /// has a `base_url` that does not parse or is a link-local address without
    /// `allow_link_local`.
    pub fn load_file(path: impl AsRef<std::path::Path>) -> Result<Vec<ProviderProfile>> {
        let path = path.as_ref();
        let shown = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| {
            Error::invalid_input(format!("{shown}: cannot read the provider profiles: {e}"))
                .with_source(e)
        })?;
        Self::parse_yaml(&shown, &text)
    }

    /// The profiles in `text` (YAML); `path` only names it in errors.
    ///
    /// # Errors
    /// As [`ProviderProfile::load_file`].
    pub fn parse_yaml(path: &str, text: &str) -> Result<Vec<ProviderProfile>> {
        let file: ProfilesFile = serde_saphyr::from_str(text).map_err(|e| {
            let at = e.location().unwrap_or(Location::UNKNOWN);
            let message = e.without_snippet().to_string();
            let message = match message.rfind(" at line ") {
                Some(i) => message[..i].to_string(),
                None => message,
            };
            let field = field_at(text, &message, at);
            located(path, at, &field, &message)
        })?;
        let mut seen = HashSet::new();
        let mut out = Vec::with_capacity(file.providers.len());
        for (i, p) in file.providers.into_iter().enumerate() {
            let field = |f: &str| format!("providers[{i}].{f}");
            let name = p.name.value.trim().to_string();
            if name.is_empty() {
                return Err(located(path, p.name.referenced, &field("name"), "is empty"));
            }
            if !seen.insert(name.clone()) {
                let why = format!("a second profile named {name:?}");
                return Err(located(path, p.name.referenced, &field("name"), &why));
            }
            let Some(kind) = ProviderKind::parse(p.kind.value.trim()) else {
                let kinds: Vec<&str> = ProviderKind::ALL.iter().map(|k| k.as_str()).collect();
                let why = format!(
                    "unknown kind {:?}: one of {}",
                    p.kind.value,
                    kinds.join(", ")
                );
                return Err(located(path, p.kind.referenced, &field("kind"), &why));
            };
            if let Err(e) = guard::check_url(&p.base_url.value, p.allow_link_local) {
                let at = p.base_url.referenced;
                return Err(located(path, at, &field("base_url"), e.message()));
            }
            let mut profile = ProviderProfile::new(name, kind, p.base_url.value.trim())
                .allow_link_local(p.allow_link_local);
            if let Some(var) = p.api_key_env.filter(|v| !v.trim().is_empty()) {
                profile.key = KeySource::Env(var.trim().to_string());
            }
            profile.default_model = p.default_model.filter(|m| !m.is_empty());
            profile.models = p.models;
            out.push(profile);
        }
        Ok(out)
    }
}

fn located(path: &str, at: Location, field: &str, message: &str) -> Error {
    let (line, column) = (at.line().max(1), at.column().max(1));
    let field = if field.is_empty() {
        String::new()
    } else {
        format!("{field}: ")
    };
    Error::invalid_input(format!("{path}:{line}:{column}: {field}{message}"))
}

/// The field path of a serde error at `at`: the entry it falls in (by where entries
/// start) and the field the message names, or the key on the error's line.
fn field_at(text: &str, message: &str, at: Location) -> String {
    let line = at.line() as usize;
    let named = ["unknown field `", "missing field `"]
        .iter()
        .find_map(|p| message.split_once(p))
        .and_then(|(_, rest)| rest.split('`').next())
        .map(str::to_string);
    let on_line = || {
        let l = text.lines().nth(line.checked_sub(1)?)?.trim_start();
        let l = l.strip_prefix("- ").unwrap_or(l).trim_start();
        let (key, _) = l.split_once(':')?;
        let ok = !key.is_empty() && key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        ok.then(|| key.to_string())
    };
    let key = named.or_else(on_line).unwrap_or_default();
    let starts = serde_saphyr::from_str::<EntryStarts>(text)
        .map(|s| s.providers)
        .unwrap_or_default();
    let entry = starts
        .iter()
        .rposition(|s| (s.referenced.line(), s.referenced.column()) <= (at.line(), at.column()));
    match entry {
        Some(i) if key != "providers" => format!("providers[{i}].{key}"),
        _ => key,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(text: &str) -> String {
        ProviderProfile::parse_yaml("providers.yaml", text)
            .unwrap_err()
            .message()
            .to_string()
    }

    #[test]
    fn a_file_of_profiles() {
        let text = "providers:\n  - name: openai\n    kind: openai\n    base_url: https://api.openai.com/v1\n    api_key_env: OPENAI_API_KEY\n    default_model: gpt-4.1-mini\n    models: [gpt-4.1-mini, gpt-4.1]\n  - name: meta\n    kind: gemini\n    base_url: http://169.254.169.254/v1beta\n    allow_link_local: true\n";
        let got = ProviderProfile::parse_yaml("p.yaml", text).unwrap();
        assert_eq!(
            got,
            vec![
                ProviderProfile::new("openai", ProviderKind::OpenAi, "https://api.openai.com/v1")
                    .key_env("OPENAI_API_KEY")
                    .default_model("gpt-4.1-mini")
                    .models(["gpt-4.1-mini", "gpt-4.1"]),
                ProviderProfile::new(
                    "meta",
                    ProviderKind::Gemini,
                    "http://169.254.169.254/v1beta"
                )
                .allow_link_local(true),
            ]
        );
    }

    #[test]
    fn errors_name_file_line_column_and_field() {
        let head = "providers:\n  - name: a\n    kind: openai\n    base_url: http://x/v1\n";
        let rows: &[(&str, &str)] = &[
            (
                "  - name: b\n    kind: openai\n    base_url: http://y/v1\n    api_key: sk-x\n",
                "providers.yaml:8:5: providers[1].api_key: unknown field",
            ),
            (
                "  - name: b\n    kind: ollama\n    base_url: http://y/v1\n",
                "providers.yaml:6:11: providers[1].kind: unknown kind \"ollama\"",
            ),
            (
                "  - name: a\n    kind: openai\n    base_url: http://y/v1\n",
                "providers.yaml:5:11: providers[1].name: a second profile named \"a\"",
            ),
            (
                "  - name: b\n    kind: openai\n    base_url: http://169.254.169.254/v1\n",
                "providers.yaml:7:15: providers[1].base_url: 169.254.169.254 is a link-local",
            ),
            (
                "  - name: b\n    kind: openai\n    base_url: http://y/v1\n    allow_link_local: maybe\n",
                "providers.yaml:8:23: providers[1].allow_link_local:",
            ),
            (
                "  - name: b\n    base_url: http://y/v1\n",
                "providers[1].kind: missing field",
            ),
        ];
        for (tail, want) in rows {
            let got = err(&format!("{head}{tail}"));
            assert!(got.contains(want), "want {want:?}\n got {got:?}");
        }
    }
}
