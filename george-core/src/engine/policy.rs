//! The engine's side of committed policies: the verdict on a plan just submitted, from
//! the manifests at the current commit and the operator's autonomy ceiling.

use super::Shared;
use crate::manifest::DesiredJob;
use crate::model::StepSpec;
use crate::policy::{self, AskReason, PlanContext, Verdict};
use crate::state::{ApprovalRequest, JobRecord};

/// The verdict of the policies at the current commit on `request`'s plan, proposed by
/// its agent in step `request.step` of `job` ([`policy::decide_plan`]).
pub(super) fn verdict(shared: &Shared, job: &JobRecord, request: &ApprovalRequest) -> Verdict {
    let Ok(d) = shared.desired.read() else {
        return Verdict::AskHuman {
            reason: AskReason::InvalidPolicies {
                paths: vec!["(the desired state could not be read)".into()],
            },
        };
    };
    let ctx =
        PlanContext::new(&request.agent, &job.template, &request.step).with_target(&job.target);
    policy::decide_plan(&d.set, &ctx, &request.plan, shared.config.autonomy_ceiling).verdict
}

/// Whether step `spec` of the job `d`, run by `agent`, plans and waits for a decision
/// ([`policy::plans`]).
pub(super) fn plans(shared: &Shared, d: &DesiredJob, spec: Option<&StepSpec>, agent: &str) -> bool {
    let agent = super::io::agent_of(shared, agent).map(|a| a.spec.autonomy);
    policy::plans(
        spec.is_some_and(|s| s.approval.required),
        [
            agent,
            d.template.spec.autonomy,
            spec.and_then(|s| s.autonomy),
        ],
        shared.config.autonomy_ceiling,
    )
}
