//! Which paths the commit tool may change: the operator's allowed and denied globs.
//!
//! Rules, in order:
//! 1. a path matching a **denied** glob is refused — the defaults
//!    ([`DEFAULT_DENIED_PATHS`]) included, unless the operator removed them;
//! 2. when any **allowed** glob is set, a path matching none of them is refused;
//! 3. anything else may be changed.
//!
//! Globs are matched against the repository-relative path (`/`-separated) with
//! `globset`: `*` and `?` stop at `/`, `**` crosses it, `{a,b}` is either; a glob ending
//! in `/` names a folder (the folder itself and everything under it). Denied globs
//! match **case-insensitively** (`JOBS/x.yaml` is refused like `jobs/x.yaml`: a
//! checkout on a case-insensitive file system would merge them); allowed globs match
//! exactly (a case variant is not allowed by accident).

use george_core::tool::ToolOutput;
use george_core::{Error, Result};
use globset::{GlobBuilder, GlobMatcher};
use serde_json::json;

/// The paths the write tool refuses by default: George's own manifests
/// ([`MANIFEST_DIRS`](george_core::git::MANIFEST_DIRS)) — with which an agent could
/// rewrite its own permissions and order new work — and CI configuration and
/// submodules (`.github/`, `.gitlab-ci.yml`, `.gitmodules`), with which it could run
/// code on CI. Refused in **every** repository unless the operator removes them
/// ([`GitWriteTool::without_default_denied_paths`](crate::GitWriteTool::without_default_denied_paths)):
/// the tool cannot tell whether a repository is also an engine's manifest source.
pub const DEFAULT_DENIED_PATHS: [&str; 7] = [
    "agent-specs/",
    "task-templates/",
    "jobs/",
    "policies/",
    ".github/",
    ".gitlab-ci.yml",
    ".gitmodules",
];

/// One glob as the operator wrote it, and its matcher.
#[derive(Clone)]
struct Rule {
    glob: String,
    matcher: GlobMatcher,
    default: bool,
}

impl std::fmt::Debug for Rule {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let default = if self.default { " (default)" } else { "" };
        write!(f, "{:?}{default}", self.glob)
    }
}

impl Rule {
    fn new(glob: &str, deny: bool, default: bool) -> Result<Rule> {
        let pattern = match glob.strip_suffix('/') {
            Some(dir) if !dir.is_empty() => format!("{{{dir},{dir}/**}}"),
            _ => glob.to_owned(),
        };
        let matcher = GlobBuilder::new(&pattern)
            .literal_separator(true)
            .case_insensitive(deny)
            .backslash_escape(true)
            .build()
            .map_err(|e| Error::invalid_input(format!("path glob {glob:?}: {e}")))?
            .compile_matcher();
        Ok(Rule {
            glob: glob.to_owned(),
            matcher,
            default,
        })
    }
}

/// The allowed and denied globs of one write tool.
#[derive(Debug, Clone)]
pub(crate) struct PathScope {
    allowed: Vec<Rule>,
    denied: Vec<Rule>,
}

impl Default for PathScope {
    /// [`DEFAULT_DENIED_PATHS`] denied, everything else allowed.
    fn default() -> Self {
        let denied = DEFAULT_DENIED_PATHS
            .iter()
            .filter_map(|g| Rule::new(g, true, true).ok())
            .collect();
        PathScope {
            allowed: Vec::new(),
            denied,
        }
    }
}

impl PathScope {
    /// Adds allowed globs.
    ///
    /// # Errors
    /// `InvalidInput` naming a glob that does not parse.
    pub(crate) fn allow<S: AsRef<str>>(
        &mut self,
        globs: impl IntoIterator<Item = S>,
    ) -> Result<()> {
        for g in globs {
            self.allowed.push(Rule::new(g.as_ref(), false, false)?);
        }
        Ok(())
    }

    /// Adds denied globs.
    ///
    /// # Errors
    /// `InvalidInput` naming a glob that does not parse.
    pub(crate) fn deny<S: AsRef<str>>(&mut self, globs: impl IntoIterator<Item = S>) -> Result<()> {
        for g in globs {
            self.denied.push(Rule::new(g.as_ref(), true, false)?);
        }
        Ok(())
    }

    /// Removes [`DEFAULT_DENIED_PATHS`] (the operator's own denied globs stay).
    pub(crate) fn drop_defaults(&mut self) {
        self.denied.retain(|r| !r.default);
    }

    /// `Err` with the refusal (an error result naming the path and the rule) for the
    /// first of `paths` the scope refuses.
    pub(crate) fn check<'p>(
        &self,
        paths: impl IntoIterator<Item = &'p str>,
    ) -> std::result::Result<(), ToolOutput> {
        for path in paths {
            if let Some(rule) = self.denied.iter().find(|r| r.matcher.is_match(path)) {
                let why = if rule.default {
                    " (a default rule: George's manifests, CI configuration and submodules \
                     are off limits to agents unless the operator allows them)"
                } else {
                    " (set by the operator)"
                };
                return Err(refusal(path, &format!("deny {}", rule.glob), why));
            }
            if !self.allowed.is_empty() && !self.allowed.iter().any(|r| r.matcher.is_match(path)) {
                let rule = format!("allow only {}", globs(&self.allowed));
                return Err(refusal(
                    path,
                    &rule,
                    " (it matches none of the allowed paths)",
                ));
            }
        }
        Ok(())
    }

    /// A sentence for the tool's description, or `None` when everything is allowed.
    pub(crate) fn describe(&self) -> Option<String> {
        let mut parts = Vec::new();
        if !self.allowed.is_empty() {
            parts.push(format!(
                "Only paths matching {} may be changed.",
                globs(&self.allowed)
            ));
        }
        if !self.denied.is_empty() {
            parts.push(format!(
                "Paths matching {} are refused.",
                globs(&self.denied)
            ));
        }
        (!parts.is_empty()).then(|| parts.join(" "))
    }
}

fn globs(rules: &[Rule]) -> String {
    rules
        .iter()
        .map(|r| format!("`{}`", r.glob))
        .collect::<Vec<_>>()
        .join(", ")
}

fn refusal(path: &str, rule: &str, why: &str) -> ToolOutput {
    ToolOutput::error(format!(
        "`{path}` is refused by the path rule `{rule}`{why}: nothing was committed"
    ))
    .with_data(json!({"refused": path, "rule": rule, "committed": false}))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused(scope: &PathScope, path: &str) -> Option<String> {
        scope.check([path]).err().map(|out| out.content)
    }

    #[test]
    fn defaults_deny_manifests_ci_and_submodules_in_any_case() {
        for dir in george_core::git::MANIFEST_DIRS {
            assert!(DEFAULT_DENIED_PATHS.contains(&dir), "{dir}");
        }
        let scope = PathScope::default();
        for path in [
            "jobs/x.yaml",
            "jobs",
            "JOBS/a/b.yml",
            "agent-specs/coder.yaml",
            "task-templates/t.yaml",
            ".github/workflows/ci.yml",
            ".gitlab-ci.yml",
            ".gitmodules",
            ".GitModules",
        ] {
            let msg = refused(&scope, path).unwrap_or_else(|| panic!("{path} allowed"));
            assert!(msg.contains("`deny "), "{msg}");
        }
        for path in [
            "apps/values.yaml",
            "jobs.yaml",
            "docs/jobs/x.md",
            "a/.gitmodules",
        ] {
            assert_eq!(refused(&scope, path), None, "{path}");
        }
    }

    #[test]
    fn allowed_globs_restrict_and_denied_globs_win() {
        let mut scope = PathScope::default();
        scope.allow(["apps/**", "README.md"]).unwrap();
        scope.deny(["apps/*/secrets/"]).unwrap();
        assert_eq!(refused(&scope, "apps/web/values.yaml"), None);
        assert_eq!(refused(&scope, "README.md"), None);
        let msg = refused(&scope, "readme.md").expect("allowed globs are exact");
        assert!(msg.contains("`allow only `apps/**`, `README.md``"), "{msg}");
        let msg = refused(&scope, "apps/web/secrets/key.txt").expect("denied");
        assert!(msg.contains("`deny apps/*/secrets/`"), "{msg}");
        scope.drop_defaults();
        scope.allow(["jobs/"]).unwrap();
        assert_eq!(refused(&scope, "jobs/x.yaml"), None);
        assert!(PathScope::default().allow(["a/{b"]).is_err());
    }
}
