//! An `execute_approved` step: the plan of an `Approved` request of this generation,
//! checked again, run action by action under stable keys, each effect recorded before the
//! next action runs.

use serde_json::json;
use tracing::Instrument as _;

use super::attempt::{AttemptCtx, AttemptReport, Outcome, clip, fail};
use crate::events::EventAction;
use crate::state::{ActionEffect, ApprovalRequest, ApprovalStatus};
use crate::tool::ToolInvocation;

impl AttemptCtx<'_> {
    /// Why the approved plan of step `src` may not run now, or the request to run.
    ///
    /// Runs only a plan whose approval record is `Approved`, of the job's current
    /// generation, whose digest matches the link on the planning step and the stored
    /// plan, and whose tools the planning agent may *still* use under the current spec.
    fn approved_plan(&self, src: &str) -> Result<&ApprovalRequest, String> {
        let Some(link) = self.record.step(src).and_then(|s| s.approved.as_ref()) else {
            return Err(format!(
                "step {src} has no approved plan: its outputs were not approved by a human in this generation"
            ));
        };
        let Some(req) = self.approval.filter(|r| r.id == link.request) else {
            return Err(format!("approval request {} is not stored", link.request));
        };
        if !matches!(req.status, ApprovalStatus::Approved { .. }) {
            return Err(format!(
                "approval request {} is {}, not approved",
                req.id,
                req.status.name()
            ));
        }
        let generation = self.record.generation;
        if req.generation != generation || link.generation != generation {
            return Err(format!(
                "approval request {} was given for generation {}; the job is at generation {generation}",
                req.id, req.generation
            ));
        }
        let digest = req.plan.digest();
        if req.digest != digest || link.digest != digest {
            return Err(format!(
                "approval request {}: the approved digest {} does not match the plan ({digest})",
                req.id, link.digest
            ));
        }
        let agent = self.agents.get(&req.agent);
        for (i, action) in req.plan.actions.iter().enumerate() {
            let allowed = agent.is_some_and(|a| a.spec.tools.contains(&action.tool));
            if !allowed {
                return Err(format!(
                    "approved action {} names tool {:?}, which agent {} may no longer use",
                    i + 1,
                    action.tool,
                    req.agent
                ));
            }
            if !self.tools.contains_key(&action.tool) {
                return Err(format!(
                    "approved action {} names tool {:?}, which this engine does not have",
                    i + 1,
                    action.tool
                ));
            }
        }
        Ok(req)
    }

    pub(super) async fn run_approved(&self, src: &str) -> AttemptReport {
        let mut r = self.report(fail("", false));
        // A planning step that ran at autonomy `autonomous` made its changes itself (the
        // engine marked it; an agent cannot): there is no plan, and nothing to run.
        if self.record.step(src).is_some_and(|s| s.autonomous) {
            r.outcome = Outcome::Succeeded(json!({
                "executed": 0,
                "reason": format!("step {src} ran autonomously: its agent made its changes itself"),
            }));
            return r;
        }
        let req = match self.approved_plan(src) {
            Ok(req) => req,
            Err(why) => {
                r.events.push(self.event(
                    &crate::events::engine_actor(),
                    EventAction::ToolRefused,
                    why.clone(),
                ));
                r.outcome = Outcome::Blocked(why);
                return r;
            }
        };
        let plan = &req.plan;
        let done = self
            .record
            .step(&self.spec.id)
            .map(|s| s.effects.as_slice())
            .unwrap_or(&[]);
        let mut results = Vec::with_capacity(plan.actions.len());
        for (i, action) in plan.actions.iter().enumerate() {
            let index = i + 1;
            if let Some(e) = done.iter().find(|e| e.index == index) {
                // Its effect was recorded by an earlier attempt: never run it again.
                results.push(json!({"tool": e.tool, "content": e.content, "data": e.data}));
                continue;
            }
            let Some(tool) = self.tools.get(&action.tool) else {
                r.outcome = Outcome::Blocked(format!(
                    "approved action {index} names tool {:?}, which this engine does not have",
                    action.tool
                ));
                return r;
            };
            // Stable across attempts, restarts and takeovers: never the attempt number.
            let key = format!("{}/{index}", req.id);
            let inv = ToolInvocation::new(&action.tool, action.arguments.clone(), key.clone())
                .with_context(self.tool_context().approved(&req.id, index));
            let effect = tool.effect_of(&inv);
            let span =
                tracing::info_span!("tool.call", tool = %action.tool, effect = effect.as_str());
            match tool.executor.call(inv).instrument(span).await {
                Ok(out) => {
                    r.events.push(self.event(
                        &crate::events::engine_actor(),
                        EventAction::ToolCalled,
                        format!(
                            "approved action {index} ({key}): {} → {}",
                            action.tool,
                            clip(&out.content, 160)
                        ),
                    ));
                    if out.is_error {
                        r.outcome = fail(
                            format!(
                                "approved action {index} ({}) failed: {}",
                                action.tool, out.content
                            ),
                            false,
                        );
                        return r;
                    }
                    let effect = ActionEffect {
                        index,
                        key,
                        tool: action.tool.clone(),
                        content: out.content,
                        data: out.data,
                    };
                    results.push(
                        json!({"tool": effect.tool, "content": effect.content, "data": effect.data}),
                    );
                    if let Some(log) = self.effects
                        && let Err(e) = log.record(effect).await
                    {
                        r.outcome = fail(
                            format!("recording approved action {index}: {e}"),
                            e.is_retryable(),
                        );
                        return r;
                    }
                }
                Err(e) => {
                    r.outcome = fail(
                        format!("approved action {index} ({}): {e}", action.tool),
                        e.is_retryable(),
                    );
                    return r;
                }
            }
        }
        r.outcome = Outcome::Succeeded(json!({
            "summary": plan.summary,
            "results": results,
            "approval": req.id,
            "digest": req.digest,
        }));
        r
    }
}
