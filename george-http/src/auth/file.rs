//! The operator's token file: see the format in the [`auth`](crate::auth) module docs.

use std::collections::BTreeMap;
use std::path::Path;

use serde::Deserialize;

use super::{AuthConfig, Identity, ProxyAuth, Role, valid_name};

/// A token file that cannot be read or is invalid: the file, where, and what.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{origin}{location}: {message}")]
pub struct AuthFileError {
    /// The file (or `<string>`).
    pub origin: String,
    /// `:line:column` of a syntax or type error, or `: tokens.<hash>` for an entry;
    /// empty when the file could not be read.
    pub location: String,
    /// What is wrong.
    pub message: String,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenFile {
    #[serde(default)]
    tokens: BTreeMap<String, TokenEntry>,
    #[serde(default)]
    proxy: Option<ProxyEntry>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct TokenEntry {
    user: String,
    #[serde(default)]
    groups: Vec<String>,
    roles: Vec<Role>,
    #[serde(default)]
    email: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ProxyEntry {
    secret_header: String,
    secret_sha256: String,
    #[serde(default)]
    user_header: Option<String>,
    #[serde(default)]
    groups_header: Option<String>,
    #[serde(default)]
    email_header: Option<String>,
    #[serde(default)]
    default_role: Option<Role>,
    #[serde(default)]
    group_roles: BTreeMap<String, Role>,
}

impl AuthConfig {
    /// Reads the token file at `path` (see the [format](crate::auth#the-token-file)).
    ///
    /// # Errors
    /// An [`AuthFileError`] naming the file and where: unreadable, not TOML, an unknown
    /// field, a key that is not 64 hex digits, an invalid user or group name, no role.
    pub fn from_token_file(path: impl AsRef<Path>) -> Result<Self, AuthFileError> {
        let path = path.as_ref();
        let origin = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|e| AuthFileError {
            origin: origin.clone(),
            location: String::new(),
            message: format!("cannot read: {e}"),
        })?;
        Self::parse_token_file(&text, &origin)
    }

    /// Parses a token file's text; `origin` names it in errors.
    ///
    /// # Errors
    /// As [`AuthConfig::from_token_file`].
    pub fn parse_token_file(text: &str, origin: &str) -> Result<Self, AuthFileError> {
        let err = |location: String, message: String| AuthFileError {
            origin: origin.to_string(),
            location,
            message,
        };
        let file: TokenFile = toml::from_str(text).map_err(|e| {
            let location = e.span().map_or(String::new(), |s| {
                let (line, column) = line_column(text, s.start);
                format!(":{line}:{column}")
            });
            err(location, e.message().to_string())
        })?;
        let mut config = AuthConfig::new();
        for (hash, entry) in file.tokens {
            let at = format!(": tokens.{}", hash.get(..12).unwrap_or(&hash));
            if hash.len() != 64 || !hash.bytes().all(|b| b.is_ascii_hexdigit()) {
                return Err(err(at, "the key must be a SHA-256: 64 hex digits".into()));
            }
            if !valid_name(&entry.user) {
                return Err(err(at, format!("invalid user id {:?}", entry.user)));
            }
            if let Some(g) = entry.groups.iter().find(|g| !valid_name(g)) {
                return Err(err(at, format!("invalid group name {g:?}")));
            }
            let Some(role) = entry.roles.iter().copied().max() else {
                return Err(err(at, "roles is empty: give read, decide or admin".into()));
            };
            let identity = Identity {
                user: entry.user,
                groups: entry.groups,
                email: entry.email,
                role: Some(role),
            };
            config = config.token_sha256(&hash, identity);
        }
        if let Some(p) = file.proxy {
            let mut proxy = ProxyAuth::with_secret_sha256(&p.secret_header, &p.secret_sha256)
                .map_err(|m| err(": proxy".into(), m))?;
            if let Some(h) = &p.user_header {
                proxy = proxy.user_header(h).map_err(|m| err(": proxy".into(), m))?;
            }
            if let Some(h) = &p.groups_header {
                proxy = proxy
                    .groups_header(h)
                    .map_err(|m| err(": proxy".into(), m))?;
            }
            if let Some(h) = &p.email_header {
                proxy = proxy
                    .email_header(h)
                    .map_err(|m| err(": proxy".into(), m))?;
            }
            if let Some(r) = p.default_role {
                proxy = proxy.default_role(r);
            }
            for (group, role) in p.group_roles {
                proxy = proxy.group_role(group, role);
            }
            config = config.trusted_proxy(proxy);
        }
        Ok(config)
    }
}

/// 1-based line and column (in characters) of byte `offset` of `text`.
fn line_column(text: &str, offset: usize) -> (usize, usize) {
    let before = text.get(..offset).unwrap_or(text);
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::auth::sha256_hex;

    #[test]
    fn a_token_file_maps_hashes_to_identities() {
        let hash = sha256_hex(b"s3cret");
        let text = format!(
            "[tokens.{hash}]\nuser = \"alice\"\ngroups = [\"sre\"]\nroles = [\"read\", \"decide\"]\n"
        );
        let config = AuthConfig::parse_token_file(&text, "tokens.toml").expect("valid");
        let mut headers = axum::http::HeaderMap::new();
        headers.insert("authorization", "Bearer s3cret".parse().expect("header"));
        let who = config.authenticate(&headers).expect("known");
        assert_eq!(who.user, "alice");
        assert_eq!(who.role, Some(Role::Decide));
        assert_eq!(who.approver().actor(), "human:alice");
    }

    #[test]
    fn errors_name_the_file_and_where() {
        let cases = [
            (
                "[tokens.abc]\nuser = \"a\"\nroles = [\"read\"]\n",
                "t.toml: tokens.abc: the key must be a SHA-256: 64 hex digits",
            ),
            ("[tokens]\nx = 1\nbad line\n", "t.toml:3:"),
            ("[token]\n", "t.toml:1:"),
        ];
        for (text, want) in cases {
            let e = AuthConfig::parse_token_file(text, "t.toml").expect_err(text);
            assert!(e.to_string().starts_with(want), "{e} / {want}");
        }
        let hash = sha256_hex(b"x");
        let roles = format!("[tokens.{hash}]\nuser = \"a\"\nroles = [\"root\"]\n");
        let e = AuthConfig::parse_token_file(&roles, "t.toml").expect_err("unknown role");
        assert!(e.to_string().starts_with("t.toml:3:"), "{e}");
        let none = format!("[tokens.{hash}]\nuser = \"a\"\nroles = []\n");
        let e = AuthConfig::parse_token_file(&none, "t.toml").expect_err("no role");
        assert!(e.to_string().contains("roles is empty"), "{e}");
    }
}
