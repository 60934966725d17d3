//! The commit tool's arguments: parsing and path validation.

use std::path::Path;

use serde_json::{Value, json};

/// One requested change.
#[derive(Debug)]
pub(crate) enum Change {
    Write {
        path: String,
        content: String,
    },
    Replace {
        path: String,
        find: String,
        replace: String,
    },
    Delete {
        path: String,
    },
}

impl Change {
    pub(crate) fn path(&self) -> &str {
        match self {
            Change::Write { path, .. } | Change::Replace { path, .. } | Change::Delete { path } => {
                path
            }
        }
    }
}

#[derive(Debug)]
pub(crate) struct CommitRequest {
    pub(crate) message: String,
    pub(crate) changes: Vec<Change>,
}

pub(crate) fn parse_commit(args: &Value) -> std::result::Result<CommitRequest, String> {
    let message = match args.get("message").and_then(Value::as_str) {
        Some(m) if !m.trim().is_empty() => m.to_owned(),
        _ => return Err("`message` (a non-empty string) is required".into()),
    };
    let Some(items) = args.get("changes").and_then(Value::as_array) else {
        return Err("`changes` (an array of changes) is required".into());
    };
    if items.is_empty() {
        return Err("`changes` is empty: nothing to commit".into());
    }
    let mut changes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
        let Some(path) = field("path") else {
            return Err(format!("changes[{i}]: `path` (a string) is required"));
        };
        let path = validate_path(&path).map_err(|e| format!("changes[{i}]: {e}"))?;
        let content = field("content");
        let find = field("find");
        let delete = item.get("delete").and_then(Value::as_bool).unwrap_or(false);
        let change = match (content, find, delete) {
            (Some(content), None, false) => Change::Write { path, content },
            (None, Some(find), false) => {
                let Some(replace) = field("replace") else {
                    return Err(format!("changes[{i}]: `find` needs `replace` (a string)"));
                };
                if find.is_empty() {
                    return Err(format!("changes[{i}]: `find` must not be empty"));
                }
                Change::Replace {
                    path,
                    find,
                    replace,
                }
            }
            (None, None, true) => Change::Delete { path },
            _ => {
                return Err(format!(
                    "changes[{i}]: give exactly one of `content`, `find` + `replace`, or `delete: true`"
                ));
            }
        };
        changes.push(change);
    }
    Ok(CommitRequest { message, changes })
}

/// Checks that `path` is a relative, normalised path inside the repository.
pub(crate) fn validate_path(path: &str) -> std::result::Result<String, String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(format!(
            "{path:?}: NUL bytes and backslashes are not allowed in paths"
        ));
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err(format!(
            "{path:?} is absolute: give a path relative to the repository root"
        ));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(format!("{path:?} has an empty component")),
            "." | ".." => {
                return Err(format!(
                    "{path:?}: `.` and `..` are not allowed (paths must stay inside the repository)"
                ));
            }
            p if p.eq_ignore_ascii_case(".git") => {
                return Err(format!("{path:?}: the `.git` directory is off limits"));
            }
            _ => {}
        }
    }
    Ok(path.to_owned())
}

/// The JSON Schema of the read tool's arguments.
pub(crate) fn read_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "path": {
                "type": "string",
                "description": "Repository-relative path, `/`-separated, e.g. `jobs/nightly.yaml`."
            },
            "ref": {
                "type": "string",
                "description": "Optional: a commit id, branch or tag to read at (default: the branch head)."
            }
        },
        "required": ["path"],
        "additionalProperties": false
    })
}

/// The JSON Schema of the commit tool's arguments.
pub(crate) fn commit_schema() -> Value {
    json!({
        "type": "object",
        "properties": {
            "message": {
                "type": "string",
                "minLength": 1,
                "description": "The commit message: a short summary line, optionally a blank line and details."
            },
            "changes": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "oneOf": [
                        {
                            "type": "object",
                            "description": "Write the whole file (created if missing).",
                            "properties": {
                                "path": {"type": "string"},
                                "content": {"type": "string"}
                            },
                            "required": ["path", "content"],
                            "additionalProperties": false
                        },
                        {
                            "type": "object",
                            "description": "Replace the one exact occurrence of `find` with `replace`.",
                            "properties": {
                                "path": {"type": "string"},
                                "find": {"type": "string", "minLength": 1},
                                "replace": {"type": "string"}
                            },
                            "required": ["path", "find", "replace"],
                            "additionalProperties": false
                        },
                        {
                            "type": "object",
                            "description": "Delete the file.",
                            "properties": {
                                "path": {"type": "string"},
                                "delete": {"const": true}
                            },
                            "required": ["path", "delete"],
                            "additionalProperties": false
                        }
                    ]
                }
            }
        },
        "required": ["message", "changes"],
        "additionalProperties": false
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn paths_are_validated() {
        for ok in ["a", "jobs/x.yaml", "a/b/c.txt", ".github/x", "a..b"] {
            assert_eq!(validate_path(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".git/config",
            "x/.GIT/y",
            "a\\b",
            "a\0b",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn commit_arguments_are_parsed() {
        let r = parse_commit(&json!({
            "message": "m",
            "changes": [
                {"path": "a", "content": "x"},
                {"path": "b", "find": "f", "replace": "r"},
                {"path": "c", "delete": true}
            ]
        }))
        .unwrap();
        assert_eq!(r.changes.len(), 3);
        for bad in [
            json!({"changes": [{"path": "a", "content": "x"}]}),
            json!({"message": "m", "changes": []}),
            json!({"message": "m", "changes": [{"path": "a"}]}),
            json!({"message": "m", "changes": [{"path": "a", "content": "x", "find": "y", "replace": "z"}]}),
            json!({"message": "m", "changes": [{"path": "a", "find": "y"}]}),
            json!({"message": "m", "changes": [{"path": "a", "find": "", "replace": "z"}]}),
            json!({"message": "m", "changes": [{"path": "../a", "content": "x"}]}),
        ] {
            assert!(parse_commit(&bad).is_err(), "{bad}");
        }
    }
}
