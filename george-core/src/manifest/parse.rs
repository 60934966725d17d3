//! One file → one parsed, locally validated manifest (or its errors).
//!
//! Local validation needs nothing but the file itself: YAML syntax, `kind`,
//! `apiVersion`, `metadata.name`, serde's types and unknown fields, and the
//! template's internal rules. What depends on other files (names of templates
//! and agents, duplicates, parameters) is checked by the index.

use std::sync::Arc;

use serde::de::DeserializeOwned;

use super::ManifestLimits;
use super::locate::{KindScan, Locator, Pos, scan_kind};
use super::validate::{
    CompiledTemplate, validate_agent, validate_job, validate_policy, validate_template,
};
use super::{ManifestError, fnv1a64};
use crate::model::{API_VERSION, AgentSpec, Job, Kind, Policy, TaskTemplate};

/// A problem found before its position is known.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Issue {
    /// Field path.
    pub(crate) field: String,
    /// What is wrong.
    pub(crate) message: String,
}

impl Issue {
    pub(crate) fn new(field: impl Into<String>, message: impl Into<String>) -> Issue {
        Issue {
            field: field.into(),
            message: message.into(),
        }
    }
}

/// The parsed object of a file.
#[derive(Debug, Clone)]
pub(crate) enum Object {
    /// Nothing usable (the file did not parse).
    None,
    /// An agent spec.
    Agent(Arc<AgentSpec>),
    /// A template; the compiled form exists iff the template is locally valid.
    Template(Arc<TaskTemplate>, Option<Arc<CompiledTemplate>>),
    /// A job.
    Job(Arc<Job>),
    /// A policy.
    Policy(Arc<Policy>),
}

/// A manifest file as parsed.
#[derive(Debug, Clone)]
pub(crate) struct FileEntry {
    /// The text (kept to locate errors found later, e.g. a job's parameters).
    pub(crate) text: Arc<str>,
    /// FNV-1a 64 of the bytes.
    pub(crate) hash: u64,
    /// The kind: from `kind`, or implied by the folder when `kind` is unusable.
    pub(crate) kind: Option<Kind>,
    /// `metadata.name`, when it could be read (even from an invalid file).
    pub(crate) name: Option<String>,
    /// The object.
    pub(crate) object: Object,
    /// Errors found in the file alone.
    pub(crate) local_errors: Vec<ManifestError>,
}

/// Turns issues into located errors (walking the file's events once).
pub(crate) fn locate_issues(path: &str, text: &str, issues: Vec<Issue>) -> Vec<ManifestError> {
    if issues.is_empty() {
        return Vec::new();
    }
    let locator = Locator::new(text);
    issues
        .into_iter()
        .map(|i| {
            let (line, column) = locator.find(&i.field);
            ManifestError {
                path: path.to_string(),
                line,
                column,
                field: i.field,
                message: i.message,
            }
        })
        .collect()
}

/// The kind implied by a file's folder.
pub(crate) fn kind_of_dir(path: &str) -> Option<Kind> {
    if path.starts_with("agent-specs/") {
        Some(Kind::AgentSpec)
    } else if path.starts_with("task-templates/") {
        Some(Kind::TaskTemplate)
    } else if path.starts_with("jobs/") {
        Some(Kind::Job)
    } else if path.starts_with("policies/") {
        Some(Kind::Policy)
    } else {
        None
    }
}

/// Whether `name` is a valid object name: `[a-z0-9]([-a-z0-9.]*[a-z0-9])?`, ≤ 253 bytes.
pub(crate) fn is_valid_name(name: &str) -> bool {
    let b = name.as_bytes();
    let alnum = |c: &u8| c.is_ascii_lowercase() || c.is_ascii_digit();
    match (b.first(), b.last()) {
        (Some(first), Some(last)) => {
            b.len() <= 253
                && alnum(first)
                && alnum(last)
                && b.iter().all(|c| alnum(c) || *c == b'-' || *c == b'.')
        }
        _ => false,
    }
}

/// serde-saphyr's message without its ` at line L, column C` suffix.
fn serde_message(e: &serde_saphyr::Error) -> String {
    let s = e.without_snippet().to_string();
    if let Some(i) = s.rfind(" at line ") {
        let tail = &s[i + " at line ".len()..];
        if tail
            .chars()
            .all(|c| c.is_ascii_digit() || c == ',' || c == ' ' || c.is_ascii_lowercase())
        {
            return s[..i].to_string();
        }
    }
    s
}

/// An error from serde-saphyr, located and given its field path.
fn serde_error(path: &str, text: &str, e: &serde_saphyr::Error) -> ManifestError {
    let mut message = serde_message(e);
    let at: Pos = e
        .location()
        .map(|l| (l.line().max(1) as usize, l.column().max(1) as usize))
        .unwrap_or((1, 1));
    let mut at = at;
    let field = if matches!(
        e.without_snippet(),
        serde_saphyr::Error::MultipleDocuments { .. }
    ) {
        message =
            "a manifest file must hold exactly one YAML document (another starts here)".to_string();
        String::new()
    } else {
        let locator = Locator::new(text);
        let missing = message
            .strip_prefix("missing field `")
            .and_then(|r| r.split('`').next());
        match missing.and_then(|f| Some((f, locator.mapping_at(at)?))) {
            // Reported where the mapping ends: point at the mapping (its key) instead.
            Some((field, mapping)) => {
                at = locator.find(mapping);
                if mapping.is_empty() {
                    field.to_string()
                } else {
                    format!("{mapping}.{field}")
                }
            }
            None => locator.path_at(at),
        }
    };
    ManifestError {
        path: path.to_string(),
        line: at.0,
        column: at.1,
        field,
        message,
    }
}

/// The line and column of byte `offset` in `bytes`.
fn line_col(bytes: &[u8], offset: usize) -> Pos {
    let before = &bytes[..offset.min(bytes.len())];
    let line = before.iter().filter(|b| **b == b'\n').count() + 1;
    let col = before.iter().rev().take_while(|b| **b != b'\n').count() + 1;
    (line, col)
}

fn error(path: &str, at: Pos, field: &str, message: impl Into<String>) -> ManifestError {
    ManifestError {
        path: path.to_string(),
        line: at.0,
        column: at.1,
        field: field.to_string(),
        message: message.into(),
    }
}

/// Parses and locally validates one manifest file.
pub(crate) fn parse_file(path: &str, bytes: Vec<u8>, limits: &ManifestLimits) -> FileEntry {
    let hash = fnv1a64(&bytes);
    if bytes.len() > limits.max_file_bytes {
        // Not parsed at all: the cap bounds the parser's work too.
        return FileEntry {
            text: Arc::from(""),
            hash,
            kind: kind_of_dir(path),
            name: None,
            object: Object::None,
            local_errors: vec![error(
                path,
                (1, 1),
                "",
                format!(
                    "the file is {} bytes, over the cap of {} bytes (ManifestLimits::max_file_bytes)",
                    bytes.len(),
                    limits.max_file_bytes
                ),
            )],
        };
    }
    let text = match String::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let at = line_col(e.as_bytes(), e.utf8_error().valid_up_to());
            return FileEntry {
                text: Arc::from(""),
                hash,
                kind: kind_of_dir(path),
                name: None,
                object: Object::None,
                local_errors: vec![error(path, at, "", "the file is not valid UTF-8")],
            };
        }
    };
    let mut entry = FileEntry {
        text: Arc::from(text),
        hash,
        kind: kind_of_dir(path),
        name: None,
        object: Object::None,
        local_errors: Vec::new(),
    };
    let text = Arc::clone(&entry.text);
    let kind = match scan_kind(&text) {
        KindScan::Found(k, at) => match Kind::parse(&k) {
            Some(kind) => kind,
            None => {
                entry.local_errors.push(error(
                    path,
                    at,
                    "kind",
                    format!("unknown kind `{k}`: expected AgentSpec, TaskTemplate, Job or Policy"),
                ));
                entry.name = read_name(&text);
                return entry;
            }
        },
        KindScan::NotScalar(at) => {
            entry
                .local_errors
                .push(error(path, at, "kind", "`kind` must be a string"));
            entry.name = read_name(&text);
            return entry;
        }
        KindScan::Missing => {
            // Either not a mapping, or no `kind`: let serde say which when it can.
            let e = match serde_saphyr::from_str::<serde::de::IgnoredAny>(&text) {
                Err(e) => serde_error(path, &text, &e),
                Ok(_) => error(
                    path,
                    (1, 1),
                    "kind",
                    "missing `kind` (AgentSpec, TaskTemplate, Job or Policy)",
                ),
            };
            entry.local_errors.push(e);
            entry.name = read_name(&text);
            return entry;
        }
        KindScan::SyntaxError => {
            let e = match serde_saphyr::from_str::<serde::de::IgnoredAny>(&text) {
                Err(e) => serde_error(path, &text, &e),
                Ok(_) => error(path, (1, 1), "", "YAML syntax error"),
            };
            entry.local_errors.push(e);
            entry.name = read_name(&text);
            return entry;
        }
    };
    entry.kind = Some(kind);
    match kind {
        Kind::AgentSpec => typed::<AgentSpec>(path, &mut entry, |a| {
            let issues = common(&a.api_version, &a.metadata.name);
            let issues = [issues, validate_agent(&a)].concat();
            (a.metadata.name.clone(), Object::Agent(Arc::new(a)), issues)
        }),
        Kind::TaskTemplate => typed::<TaskTemplate>(path, &mut entry, |t| {
            let mut issues = common(&t.api_version, &t.metadata.name);
            let (more, compiled) = validate_template(&t, limits);
            issues.extend(more);
            let compiled = compiled.filter(|_| issues.is_empty()).map(Arc::new);
            (
                t.metadata.name.clone(),
                Object::Template(Arc::new(t), compiled),
                issues,
            )
        }),
        Kind::Job => typed::<Job>(path, &mut entry, |j| {
            let issues = [
                common(&j.api_version, &j.metadata.name),
                validate_job(&j, limits),
            ]
            .concat();
            (j.metadata.name.clone(), Object::Job(Arc::new(j)), issues)
        }),
        Kind::Policy => typed::<Policy>(path, &mut entry, |p| {
            let issues = [
                common(&p.api_version, &p.metadata.name),
                validate_policy(&p),
            ]
            .concat();
            (p.metadata.name.clone(), Object::Policy(Arc::new(p)), issues)
        }),
    }
    entry
}

/// Deserializes the typed object and runs `check` on it.
fn typed<T: DeserializeOwned>(
    path: &str,
    entry: &mut FileEntry,
    check: impl FnOnce(T) -> (String, Object, Vec<Issue>),
) {
    let text = Arc::clone(&entry.text);
    match serde_saphyr::from_str::<T>(&text) {
        Ok(value) => {
            let (name, object, issues) = check(value);
            entry.name = Some(name).filter(|n| !n.is_empty());
            entry.local_errors = locate_issues(path, &text, issues);
            // Kept even when invalid: the index still reports cross-file problems
            // (unknown agents, parameters) and knows who uses whom.
            entry.object = object;
        }
        Err(e) => {
            entry.local_errors.push(serde_error(path, &text, &e));
            entry.name = read_name(&text);
        }
    }
}

/// The checks every kind shares: `apiVersion` and `metadata.name`.
fn common(api_version: &str, name: &str) -> Vec<Issue> {
    let mut issues = Vec::new();
    if api_version != API_VERSION {
        issues.push(Issue::new(
            "apiVersion",
            format!("unsupported apiVersion `{api_version}`: expected `{API_VERSION}`"),
        ));
    }
    if name.is_empty() {
        issues.push(Issue::new("metadata.name", "`metadata.name` is empty"));
    } else if !is_valid_name(name) {
        issues.push(Issue::new(
            "metadata.name",
            format!(
                "invalid name `{name}`: must match `[a-z0-9]([-a-z0-9.]*[a-z0-9])?` and be at most 253 characters"
            ),
        ));
    }
    issues
}

/// `metadata.name` of a file that did not deserialize, when it can be read.
fn read_name(text: &str) -> Option<String> {
    Locator::new(text)
        .scalar("metadata.name")
        .filter(|n| !n.is_empty())
        .map(str::to_string)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("a"));
        assert!(is_valid_name("a-b.c9"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("-a"));
        assert!(!is_valid_name("a-"));
        assert!(!is_valid_name("A"));
        assert!(!is_valid_name("a_b"));
        assert!(is_valid_name(&"a".repeat(253)));
        assert!(!is_valid_name(&"a".repeat(254)));
    }

    #[test]
    fn utf8_error_position() {
        let e = parse_file(
            "jobs/x.yaml",
            b"a: 1\nb: \xff\n".to_vec(),
            &ManifestLimits::default(),
        );
        assert_eq!(e.local_errors[0].line, 2);
        assert_eq!(e.local_errors[0].column, 4);
        assert_eq!(e.kind, Some(Kind::Job));
    }
}
