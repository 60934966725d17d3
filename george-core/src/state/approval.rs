//! Plans and approval requests: what a person (or a committed policy) decides on.

use serde::{Deserialize, Serialize};

/// One action of a plan: a tool call, exactly as it will run once approved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PlannedAction {
    /// The tool's name.
    pub tool: String,
    /// The tool's arguments (a JSON object).
    pub arguments: serde_json::Value,
}

/// A plan submitted for approval.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Plan {
    /// What the plan does and why, for the human.
    pub summary: String,
    /// The exact actions that run once approved.
    #[serde(default)]
    pub actions: Vec<PlannedAction>,
}

impl Plan {
    /// The plan's digest: `sha256:<hex>` of its canonical JSON (object keys sorted, no
    /// whitespace) `{"actions":[{"arguments":…,"tool":…},…],"summary":…}`. A decision
    /// may carry the digest of the plan the human saw; it is refused when it differs.
    pub fn digest(&self) -> String {
        use sha2::Digest as _;
        let mut canonical = String::with_capacity(256);
        let value = serde_json::json!({ "summary": self.summary, "actions": self.actions });
        write_canonical(&value, &mut canonical);
        let hash = sha2::Sha256::digest(canonical.as_bytes());
        let mut out = String::with_capacity(7 + 64);
        out.push_str("sha256:");
        for b in hash.iter() {
            out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
            out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
        }
        out
    }
}

/// Canonical JSON: object keys sorted by byte order, no whitespace, strings and numbers
/// as serde_json writes them.
fn write_canonical(v: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&Value::String(k.clone()).to_string());
                out.push(':');
                write_canonical(&m[k], out);
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_canonical(x, out);
            }
            out.push(']');
        }
        other => out.push_str(&other.to_string()),
    }
}

/// One approver's approval of a request that needs several (`min_approvals`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    /// Who (`human:<id>`).
    pub by: String,
    /// When.
    pub at_ms: u64,
    /// An optional note.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The state of an approval request.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "status", rename_all = "snake_case")]
pub enum ApprovalStatus {
    /// Waiting for a decision.
    Open,
    /// Approved.
    Approved {
        /// Who.
        by: String,
        /// When.
        at_ms: u64,
        /// An optional note.
        note: Option<String>,
    },
    /// Rejected.
    Rejected {
        /// Who.
        by: String,
        /// When.
        at_ms: u64,
        /// Why: handed to the next planning attempt.
        reason: String,
    },
    /// Cancelled: a new generation of the job, or the job's removal, made the plan
    /// moot before anyone decided.
    Cancelled {
        /// When.
        at_ms: u64,
        /// Why.
        #[serde(default)]
        reason: String,
    },
}

impl ApprovalStatus {
    /// The state's name, without its details: `open`, `approved`, `rejected` or
    /// `cancelled` (what stores keep in their `status` column).
    pub fn name(&self) -> &'static str {
        match self {
            ApprovalStatus::Open => "open",
            ApprovalStatus::Approved { .. } => "approved",
            ApprovalStatus::Rejected { .. } => "rejected",
            ApprovalStatus::Cancelled { .. } => "cancelled",
        }
    }
}

/// A plan waiting for (or having had) a human's decision.
///
/// A request record is never replaced: it is inserted once `Open`, and its status moves
/// from `Open` to `Approved`, `Rejected` or `Cancelled` once (stores refuse anything
/// else with `Conflict`). While `Open`, approvals of a rule that needs several are
/// collected in `votes`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ApprovalRequest {
    /// Unique for the life of the store and safe in a URL path: see [`ApprovalRequest::make_id`].
    pub id: String,
    /// The job.
    pub job: String,
    /// The step.
    pub step: String,
    /// The job generation the plan was made for: a decision counts only for it.
    #[serde(default)]
    pub generation: u64,
    /// The attempt that produced the plan.
    pub attempt: u32,
    /// The agent that proposed it.
    pub agent: String,
    /// The plan.
    pub plan: Plan,
    /// The plan's digest ([`Plan::digest`]).
    #[serde(default)]
    pub digest: String,
    /// Who may decide: the step's rule at the request's generation.
    #[serde(default)]
    pub rule: crate::model::ApprovalRule,
    /// The author of the commit the job's generation was built from (`Name <email>`),
    /// when the Git source knows it; used by `forbid_self_approval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit_author: Option<String>,
    /// Approvals so far, while more are needed (`min_approvals` > 1).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub votes: Vec<Vote>,
    /// When it was requested.
    pub requested_at_ms: u64,
    /// Open or decided.
    #[serde(flatten)]
    pub status: ApprovalStatus,
}

impl ApprovalRequest {
    /// The id of the request made by `attempt` of `job`/`step` at `generation`:
    /// `<job>~<step>~<generation>~<attempt>`, with the step id escaped so the id holds only
    /// URL-unreserved characters (`[A-Za-z0-9._~-]`; any other byte of the step id, and
    /// `.`, becomes `.xx` in hex). Job names never contain `~` and generations only grow,
    /// so an id is never made twice for the life of a store.
    pub fn make_id(job: &str, step: &str, generation: u64, attempt: u32) -> String {
        let mut id = String::with_capacity(job.len() + step.len() + 16);
        id.push_str(job);
        id.push('~');
        for b in step.bytes() {
            if b.is_ascii_alphanumeric() || b == b'-' || b == b'_' {
                id.push(char::from(b));
            } else {
                id.push('.');
                id.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
                id.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
            }
        }
        id.push('~');
        id.push_str(&generation.to_string());
        id.push('~');
        id.push_str(&attempt.to_string());
        id
    }
}

#[cfg(test)]
mod id_tests {
    use super::*;

    #[test]
    fn approval_ids_are_url_safe_and_distinct() {
        let a = ApprovalRequest::make_id("job.a", "plan/x", 2, 1);
        assert_eq!(a, "job.a~plan.2fx~2~1");
        assert!(
            a.bytes()
                .all(|b| b.is_ascii_alphanumeric() || b"._~-".contains(&b))
        );
        assert_ne!(
            ApprovalRequest::make_id("j", "a.b", 1, 1),
            ApprovalRequest::make_id("j", "a.2eb", 1, 1)
        );
        assert_ne!(
            ApprovalRequest::make_id("j", "s", 1, 1),
            ApprovalRequest::make_id("j", "s", 2, 1)
        );
    }

    #[test]
    fn plan_digest_is_canonical_and_covers_actions() {
        let p = |args: serde_json::Value| Plan {
            summary: "s".into(),
            actions: vec![PlannedAction {
                tool: "t".into(),
                arguments: args,
            }],
        };
        let a = p(serde_json::json!({"a": 1, "b": [1, {"y": 2, "x": 1}]}));
        let b: Plan = serde_json::from_str(
            r#"{"actions":[{"tool":"t","arguments":{"b":[1,{"x":1,"y":2}],"a":1}}],"summary":"s"}"#,
        )
        .unwrap();
        assert_eq!(a.digest(), b.digest());
        assert!(a.digest().starts_with("sha256:"));
        assert_eq!(a.digest().len(), 7 + 64);
        assert_ne!(a.digest(), p(serde_json::json!({"a": 2})).digest());
    }
}
