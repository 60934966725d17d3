//! Who decides: the [`Approver`] identity an embedding service establishes, the
//! [`Decision`] it hands the engine, and the check of an approver against a step's
//! [`ApprovalRule`].
//!
//! The engine never authenticates anyone: the embedding service (or `george-http`)
//! does, and passes the result as an [`Approver`]. The engine checks it against the rule
//! stored with the request (the step's rule at the request's generation), so a later
//! commit cannot widen who may decide a plan that already waits.
//!
//! ```
//! use george_core::approval::{Approver, check_rule};
//! use george_core::model::ApprovalRule;
//!
//! let rule = ApprovalRule::required().with_approvers(["group:sre", "user:carol"]);
//! let alice = Approver::user("alice").in_group("sre");
//! assert!(check_rule(&rule, &alice, None, true).is_ok());
//! assert!(check_rule(&rule, &Approver::user("mallory"), None, true).is_err());
//! assert_eq!(alice.actor(), "human:alice");
//! ```

use serde::{Deserialize, Serialize};

use crate::model::ApprovalRule;

/// An authenticated human (or service acting for one), as established by the
/// embedding service: an id, the groups it belongs to, and optionally the e-mail address
/// its commits carry (for `forbid_self_approval`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Approver {
    /// The user id (`alice`); matched by `user:<id>` entries of a rule.
    pub id: String,
    /// Groups (`sre`); matched by `group:<name>` entries of a rule.
    #[serde(default)]
    pub groups: Vec<String>,
    /// The e-mail address of the user's commits, if known.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub email: Option<String>,
    /// Set only by the engine, for a committed Policy's decision (`policy:<name>`);
    /// never read from input, so no caller can pass as a policy.
    #[serde(skip)]
    policy: bool,
}

impl Approver {
    /// The user `id`, in no group.
    pub fn user(id: impl Into<String>) -> Self {
        Approver {
            id: id.into(),
            groups: Vec::new(),
            email: None,
            policy: false,
        }
    }

    /// The Policy `name`, deciding for the engine (`policy:<name>`). Only the engine
    /// makes one: a policy matches no `user:`/`group:` entry, may approve only where
    /// a step's rule names no approvers and needs one approval, and may always reject.
    pub(crate) fn policy(name: impl Into<String>) -> Self {
        Approver {
            policy: true,
            ..Approver::user(name)
        }
    }

    /// Whether this is a Policy's decision rather than a person's.
    pub fn is_policy(&self) -> bool {
        self.policy
    }

    /// Adds a group.
    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Sets the e-mail address of the user's commits.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// How the approver appears in the event log and on records: `human:<id>`, or
    /// `policy:<name>` for a Policy's decision. This is the one place the prefixes are
    /// added.
    pub fn actor(&self) -> String {
        if self.policy {
            format!("policy:{}", self.id)
        } else {
            format!("human:{}", self.id)
        }
    }

    /// Whether the rule entry `entry` (`user:<id>` or `group:<name>`) names this
    /// approver (never a policy).
    pub fn matches(&self, entry: &str) -> bool {
        if self.policy {
            return false;
        }
        match entry.split_once(':') {
            Some(("user", id)) => id == self.id,
            Some(("group", g)) => self.groups.iter().any(|x| x == g),
            _ => false,
        }
    }

    /// Whether `author` (a Git author, `Name <email>` or a bare e-mail) is this approver:
    /// the e-mail matches (case-insensitively), or the name equals the id.
    pub fn is_author(&self, author: &str) -> bool {
        let (name, email) = match (author.find('<'), author.rfind('>')) {
            (Some(a), Some(b)) if a < b => (author[..a].trim(), Some(author[a + 1..b].trim())),
            _ if author.contains('@') => ("", Some(author.trim())),
            _ => (author.trim(), None),
        };
        let email_match = match (email, &self.email) {
            (Some(e), Some(mine)) => e.eq_ignore_ascii_case(mine),
            _ => false,
        };
        email_match || (!name.is_empty() && name == self.id)
    }
}

/// What a human decided, with the digest of the plan they saw.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct Decision {
    /// Approve or reject.
    pub verdict: Verdict,
    /// The approval's note, or the rejection's reason (required for a rejection).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// The digest of the plan the human saw ([`Plan::digest`](crate::state::Plan::digest));
    /// when set, the decision is refused unless it is the request's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub digest: Option<String>,
}

/// Approve or reject.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// The plan runs (once enough approvers approved).
    Approve,
    /// The plan does not run; the step plans again with the reason.
    Reject,
}

impl Decision {
    /// An approval, with an optional note.
    pub fn approve(note: Option<&str>) -> Self {
        Decision {
            verdict: Verdict::Approve,
            text: note.map(str::to_string),
            digest: None,
        }
    }

    /// A rejection with its reason.
    pub fn reject(reason: impl Into<String>) -> Self {
        Decision {
            verdict: Verdict::Reject,
            text: Some(reason.into()),
            digest: None,
        }
    }

    /// The digest of the plan the human saw.
    pub fn with_digest(mut self, digest: impl Into<String>) -> Self {
        self.digest = Some(digest.into());
        self
    }
}

/// Checks `approver` against `rule` for a decision (`approving`: an approval, else a
/// rejection). `commit_author` is the author of the commit the job's generation was built
/// from, when known.
///
/// # Errors
/// A sentence naming the rule that refused: the approver is not among `approvers`, or
/// (approving only) is the commit's author under `forbid_self_approval`.
pub fn check_rule(
    rule: &ApprovalRule,
    approver: &Approver,
    commit_author: Option<&str>,
    approving: bool,
) -> Result<(), String> {
    if approver.id.trim().is_empty() {
        return Err("an approver needs an id".into());
    }
    if approver.policy {
        // A policy may always say no; it may say yes only where the step asks for
        // nothing more than one approval from anyone.
        return if !approving {
            Ok(())
        } else if !rule.approvers.is_empty() {
            Err(format!(
                "{} may not approve: the step's approvers are named ({})",
                approver.actor(),
                rule.approvers.join(", ")
            ))
        } else if rule.min_approvals > 1 {
            Err(format!(
                "{} may not approve: the step needs {} approvals from people",
                approver.actor(),
                rule.min_approvals
            ))
        } else {
            Ok(())
        };
    }
    if !rule.approvers.is_empty() && !rule.approvers.iter().any(|e| approver.matches(e)) {
        return Err(format!(
            "{} is not one of the step's approvers ({})",
            approver.actor(),
            rule.approvers.join(", ")
        ));
    }
    if approving
        && rule.forbid_self_approval
        && let Some(author) = commit_author
        && approver.is_author(author)
    {
        return Err(format!(
            "{} wrote the job's commit ({author}) and the step forbids self-approval",
            approver.actor()
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn table_of_rules() {
        let any = ApprovalRule::required();
        let sre = ApprovalRule::required().with_approvers(["group:sre"]);
        let bob = ApprovalRule::required().with_approvers(["user:bob"]);
        let no_self = ApprovalRule::required().with_forbid_self_approval(true);
        let two = ApprovalRule {
            min_approvals: 2,
            ..ApprovalRule::required()
        };
        let alice = Approver::user("alice")
            .in_group("sre")
            .with_email("alice@example.org");
        let author = Some("Alice Doe <Alice@Example.org>");
        // (rule, approver, author, approving, allowed)
        let rows: &[(&ApprovalRule, &Approver, Option<&str>, bool, bool)] = &[
            (&any, &alice, None, true, true),
            (&sre, &alice, None, true, true),
            (&sre, &Approver::user("bob"), None, true, false),
            (&bob, &Approver::user("bob"), None, true, true),
            (&bob, &alice, None, false, false),
            (&no_self, &alice, author, true, false),
            (&no_self, &alice, author, false, true),
            (&no_self, &Approver::user("bob"), author, true, true),
            (
                &no_self,
                &Approver::user("alice"),
                Some("alice"),
                true,
                false,
            ),
            (&any, &Approver::user(" "), None, true, false),
            // A policy: approves only an unnamed, one-approval rule; always rejects.
            (&any, &Approver::policy("p"), None, true, true),
            (&any, &Approver::policy("p"), None, false, true),
            (&sre, &Approver::policy("sre"), None, true, false),
            (&sre, &Approver::policy("sre"), None, false, true),
            (&bob, &Approver::policy("bob"), None, true, false),
            (
                &no_self,
                &Approver::policy("alice"),
                Some("alice"),
                true,
                true,
            ),
            (&two, &Approver::policy("p"), None, true, false),
            (&two, &Approver::policy("p"), None, false, true),
        ];
        assert!(!Approver::policy("bob").matches("user:bob"));
        assert_eq!(Approver::policy("p").actor(), "policy:p");
        // Input never makes a policy approver.
        let forged: Approver =
            serde_json::from_str(r#"{"id":"p","groups":[],"policy":true}"#).expect("json");
        assert!(!forged.is_policy());
        assert_eq!(forged.actor(), "human:p");
        for (i, (rule, who, author, approving, allowed)) in rows.iter().enumerate() {
            let got = check_rule(rule, who, *author, *approving);
            assert_eq!(got.is_ok(), *allowed, "row {i}: {got:?}");
        }
    }
}
