//! A verdict applied to a plan just submitted: the policy's decision recorded exactly as
//! a person's would be ([`record_decision`]), under the actor `policy:<name>`.

use crate::approval::{Approver, Decision};
use crate::error::Result;
use crate::reconcile::record_decision;
use crate::state::{ApprovalRequest, JobRecord, NewEvent};

use super::Verdict;

/// What [`apply_verdict`] decided.
#[derive(Debug, Clone, PartialEq)]
pub enum Applied {
    /// Nothing: a human decides (the request stays open).
    Human,
    /// The request, decided by a policy (approved or rejected), and the decision's events.
    Decided(Box<ApprovalRequest>, Vec<NewEvent>),
}

/// Applies `verdict` to `request` (stored `Open`; its step of `job` waits for it).
///
/// - `AutoApprove`: approved by `policy:<name>`, with the matched rule as the note —
///   unless the step's rule names its approvers or needs more than one approval, which a
///   policy never satisfies ([`check_rule`](crate::approval::check_rule)); then a human
///   decides.
/// - `Deny`: rejected by `policy:<name>`, the reason naming the rule and the action; the
///   step plans again with the rejection, as after a person's.
/// - `AskHuman`: nothing.
///
/// # Errors
/// [`record_decision`]'s, other than a policy refused by the step's rule (a human then
/// decides); `job` and `request` are unchanged on error.
pub fn apply_verdict(
    job: &mut JobRecord,
    request: &ApprovalRequest,
    verdict: &Verdict,
    now_ms: u64,
) -> Result<Applied> {
    let (approver, decision) = match verdict {
        Verdict::AskHuman { .. } => return Ok(Applied::Human),
        Verdict::AutoApprove {
            policy,
            rule,
            matches,
        } => {
            let rules: Vec<String> = matches.iter().map(ToString::to_string).collect();
            let note = format!("rule {rule} matched ({})", rules.join(", "));
            (Approver::policy(policy), Decision::approve(Some(&note)))
        }
        Verdict::Deny {
            policy,
            rule,
            action_index,
        } => {
            let tool = request
                .plan
                .actions
                .get(*action_index)
                .map_or("?", |a| a.tool.as_str());
            let reason = format!(
                "denied by policy {policy}, rule {rule}: action {action_index} ({tool}) is not allowed"
            );
            (Approver::policy(policy), Decision::reject(reason))
        }
    };
    let mut decided = request.clone();
    // `record_decision` changes nothing when it refuses.
    match record_decision(job, &mut decided, &decision, &approver, now_ms) {
        Ok(events) => Ok(Applied::Decided(Box::new(decided), events)),
        Err(e) if e.kind() == crate::error::ErrorKind::PermissionDenied => Ok(Applied::Human),
        Err(e) => Err(e),
    }
}
