//! The operator's scope of one [`KubeToolExecutor`](super::KubeToolExecutor): which
//! namespaces and kinds its tools may touch, checked before any request reaches the API.

use std::collections::BTreeSet;

use serde_json::json;

use george_core::tool::ToolOutput;

/// Kinds whose objects the tools may read but never change, unless the operator says
/// otherwise ([`KubeToolExecutor::without_default_read_only_kinds`](super::KubeToolExecutor::without_default_read_only_kinds)):
/// George's own kinds (an agent could rewrite its permissions or order work) and RBAC
/// (an agent could grant itself more).
pub const DEFAULT_READ_ONLY_KINDS: &[&str] = &[
    "AgentSpec.george.dev",
    "TaskTemplate.george.dev",
    "Job.george.dev",
    "Role.rbac.authorization.k8s.io",
    "ClusterRole.rbac.authorization.k8s.io",
    "RoleBinding.rbac.authorization.k8s.io",
    "ClusterRoleBinding.rbac.authorization.k8s.io",
];

/// Which namespaces the tools may touch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Namespaces {
    /// Any namespace.
    All,
    /// Only these (never empty).
    Only(BTreeSet<String>),
}

/// A kind rule: `Kind` (any group) or `Kind.group` (that group only; the core group has
/// no `.group`). Matched case-insensitively.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct KindRule {
    kind: String,
    group: Option<String>,
}

impl KindRule {
    pub(crate) fn parse(rule: &str) -> KindRule {
        let rule = rule.trim();
        match rule.split_once('.') {
            Some((kind, group)) => KindRule {
                kind: kind.to_ascii_lowercase(),
                group: Some(group.to_ascii_lowercase()),
            },
            None => KindRule {
                kind: rule.to_ascii_lowercase(),
                group: None,
            },
        }
    }

    fn matches(&self, group: &str, kind: &str) -> bool {
        self.kind.eq_ignore_ascii_case(kind)
            && self
                .group
                .as_deref()
                .is_none_or(|g| g.eq_ignore_ascii_case(group))
    }

    fn describe(&self) -> String {
        match &self.group {
            Some(g) => format!("{}.{g}", self.kind),
            None => self.kind.clone(),
        }
    }
}

/// The access a call needs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Access {
    Read,
    Write,
}

/// The operator's scope.
#[derive(Debug, Clone)]
pub(crate) struct Scope {
    pub(crate) namespaces: Namespaces,
    pub(crate) allowed_kinds: Vec<KindRule>,
    pub(crate) denied_kinds: Vec<KindRule>,
    pub(crate) read_only_kinds: Vec<KindRule>,
    pub(crate) cluster_scoped: bool,
}

impl Scope {
    /// Only `namespace`; every kind but the default read-only ones writable.
    pub(crate) fn new(namespace: &str) -> Scope {
        Scope {
            namespaces: Namespaces::Only(BTreeSet::from([namespace.to_owned()])),
            allowed_kinds: Vec::new(),
            denied_kinds: Vec::new(),
            read_only_kinds: DEFAULT_READ_ONLY_KINDS
                .iter()
                .map(|r| KindRule::parse(r))
                .collect(),
            cluster_scoped: false,
        }
    }

    /// The namespace a call uses when it names none: the only allowed one, if there is
    /// exactly one; else `fallback` (the client's default namespace).
    pub(crate) fn default_namespace<'a>(&'a self, fallback: &'a str) -> &'a str {
        match &self.namespaces {
            Namespaces::Only(set) if set.len() == 1 => {
                set.iter().next().map_or(fallback, String::as_str)
            }
            _ => fallback,
        }
    }

    /// Checks a namespace; `Err` is the refusal the model sees.
    pub(crate) fn check_namespace(&self, ns: &str) -> Result<(), ToolOutput> {
        match &self.namespaces {
            Namespaces::All => Ok(()),
            Namespaces::Only(set) if set.contains(ns) => Ok(()),
            Namespaces::Only(set) => Err(refusal(
                format!(
                    "refused: namespace `{ns}` is outside this executor's scope (allowed: {})",
                    set.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                "namespace",
            )),
        }
    }

    /// Checks a kind (of `group`) for `access`, and cluster-scoped kinds.
    pub(crate) fn check_kind(
        &self,
        group: &str,
        kind: &str,
        namespaced: bool,
        access: Access,
    ) -> Result<(), ToolOutput> {
        let name = if group.is_empty() {
            kind.to_owned()
        } else {
            format!("{kind}.{group}")
        };
        if let Some(rule) = self.denied_kinds.iter().find(|r| r.matches(group, kind)) {
            return Err(refusal(
                format!(
                    "refused: kind `{name}` is denied by the operator (rule `{}`)",
                    rule.describe()
                ),
                "denied_kind",
            ));
        }
        if !self.allowed_kinds.is_empty()
            && !self.allowed_kinds.iter().any(|r| r.matches(group, kind))
        {
            let allowed: Vec<_> = self.allowed_kinds.iter().map(KindRule::describe).collect();
            return Err(refusal(
                format!(
                    "refused: kind `{name}` is not among the allowed kinds ({})",
                    allowed.join(", ")
                ),
                "allowed_kinds",
            ));
        }
        if access == Access::Write
            && let Some(rule) = self.read_only_kinds.iter().find(|r| r.matches(group, kind))
        {
            return Err(refusal(
                format!(
                    "refused: kind `{name}` is read-only for agents (rule `{}`)",
                    rule.describe()
                ),
                "read_only_kind",
            ));
        }
        if !namespaced && !self.cluster_scoped {
            return Err(refusal(
                format!(
                    "refused: kind `{name}` is cluster-scoped, and this executor is limited to namespaced objects"
                ),
                "cluster_scoped",
            ));
        }
        Ok(())
    }
}

/// An error result for a call outside the scope: `data: {"refused": true, "rule": ...}`.
pub(crate) fn refusal(message: String, rule: &str) -> ToolOutput {
    tracing::warn!(rule, %message, "kubernetes tool call refused by the scope");
    ToolOutput::error(message).with_data(json!({"refused": true, "rule": rule}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespaces_and_kinds_are_checked() {
        let mut s = Scope::new("team-a");
        assert!(s.check_namespace("team-a").is_ok());
        let r = s.check_namespace("kube-system").unwrap_err();
        assert!(r.is_error && r.content.contains("kube-system"), "{r:?}");
        assert_eq!(s.default_namespace("default"), "team-a");

        assert!(
            s.check_kind("apps", "Deployment", true, Access::Write)
                .is_ok()
        );
        let r = s.check_kind("rbac.authorization.k8s.io", "Role", true, Access::Write);
        assert!(r.unwrap_err().content.contains("read-only"));
        assert!(
            s.check_kind("rbac.authorization.k8s.io", "Role", true, Access::Read)
                .is_ok()
        );
        assert!(s.check_kind("", "Node", false, Access::Read).is_err());

        s.denied_kinds.push(KindRule::parse("secret"));
        assert!(s.check_kind("", "Secret", true, Access::Read).is_err());
        s.allowed_kinds.push(KindRule::parse("Deployment.apps"));
        assert!(
            s.check_kind("apps", "Deployment", true, Access::Read)
                .is_ok()
        );
        assert!(s.check_kind("", "ConfigMap", true, Access::Read).is_err());
        assert!(
            s.check_kind("other.io", "Deployment", true, Access::Read)
                .is_err()
        );
    }
}
