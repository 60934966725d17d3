//! [`Engine::preview_approval`]: what each action of a plan would change, computed by
//! the tools' executors without changing anything ([`ToolExecutor::preview`]), for the
//! human who decides.
//!
//! [`ToolExecutor::preview`]: crate::tool::ToolExecutor::preview

use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::Engine;
use crate::error::{Error, Result};
use crate::state::ApprovalRequest;
use crate::tool::{ToolContext, ToolInvocation, ToolPreview};

/// The largest diff shown for one action, in bytes (256 KiB); a longer one is cut at a
/// line boundary and marked [`truncated`](ToolPreview::truncated).
pub const MAX_PREVIEW_DIFF_BYTES: usize = 256 * 1024;

/// How long one action's preview may take (10 s); past it the action shows an error.
pub const PREVIEW_TIMEOUT: Duration = Duration::from_secs(10);

/// How long the previews of one plan may take in all (30 s); the actions not previewed
/// by then show an error instead.
pub const PREVIEW_BUDGET: Duration = Duration::from_secs(30);

/// The most diff text the previews of one plan show in all, in bytes (2 MiB); the
/// diffs past it are cut (to nothing) and marked truncated.
pub const MAX_PLAN_DIFF_BYTES: usize = 2 * 1024 * 1024;

/// One action of a plan and what it would change.
///
/// Serialised as `{"index": 1, "tool": "...", "arguments": {...}, "preview": {...}?,
/// "error": "..."?}`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ActionPreview {
    /// The action's 1-based index in the plan.
    pub index: usize,
    /// The tool.
    pub tool: String,
    /// Its arguments, exactly as they run once approved.
    pub arguments: serde_json::Value,
    /// What the executor says the call would change; `None` when it cannot tell, the
    /// tool is not registered, or the preview failed (then [`error`](Self::error) says
    /// why).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub preview: Option<ToolPreview>,
    /// Why there is no preview although one was asked for: the tool is not registered
    /// (any more), the executor failed, or it took longer than [`PREVIEW_TIMEOUT`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

impl Engine {
    /// What each action of approval request `id` would change if it ran now, in plan
    /// order: see [`preview_request`](Self::preview_request).
    ///
    /// # Errors
    /// `NotFound` if there is no such request; store errors.
    pub async fn preview_approval(&self, id: &str) -> Result<Vec<ActionPreview>> {
        let Some(req) = self.shared.store.approval(id).await? else {
            return Err(Error::not_found(format!("no approval request {id}")));
        };
        Ok(self.preview_request(&req).await)
    }

    /// What each action of `req`'s plan would change if it ran now, in plan order,
    /// asked of each tool's executor ([`ToolExecutor::preview`]), which changes
    /// nothing.
    ///
    /// Each call is built as the approved action would be: key `<request id>/<index>`,
    /// context naming the job, the step that executes the plan (the job's step whose
    /// `execute_approved` is the planning step, when the current manifests have one;
    /// else the planning step), the request's generation, attempt 0 (no attempt runs
    /// it) and the approval. Actions are previewed one at a time, each within
    /// [`PREVIEW_TIMEOUT`] and all within [`PREVIEW_BUDGET`]; a diff is cut to
    /// [`MAX_PREVIEW_DIFF_BYTES`], and the diffs of one plan to [`MAX_PLAN_DIFF_BYTES`]
    /// in all; known secret values are redacted from summaries and diffs. A failure of one action's preview
    /// is reported in its [`error`](ActionPreview::error), never as an error of the
    /// whole.
    ///
    /// A preview is against the state the executor sees now: for a decided request
    /// whose plan already ran, it shows what running it *again* would do.
    ///
    /// [`ToolExecutor::preview`]: crate::tool::ToolExecutor::preview
    pub async fn preview_request(&self, req: &ApprovalRequest) -> Vec<ActionPreview> {
        let step = self.executing_step(req);
        let deadline = tokio::time::Instant::now() + PREVIEW_BUDGET;
        let mut diff_left = MAX_PLAN_DIFF_BYTES;
        let mut out = Vec::with_capacity(req.plan.actions.len());
        for (i, action) in req.plan.actions.iter().enumerate() {
            let index = i + 1;
            let mut item = ActionPreview {
                index,
                tool: action.tool.clone(),
                arguments: action.arguments.clone(),
                preview: None,
                error: None,
            };
            let Some(tool) = self.tool_table().get(&action.tool).cloned() else {
                item.error = Some(format!(
                    "no tool named {:?} is registered with this engine",
                    action.tool
                ));
                out.push(item);
                continue;
            };
            let context =
                ToolContext::new(&req.job, &step, req.generation, 0).approved(&req.id, index);
            let invocation = ToolInvocation::new(
                &action.tool,
                action.arguments.clone(),
                format!("{}/{index}", req.id),
            )
            .with_context(context);
            let now = tokio::time::Instant::now();
            if now >= deadline {
                item.error = Some(format!(
                    "not previewed: the plan's previews took longer than {} s in all",
                    PREVIEW_BUDGET.as_secs()
                ));
                out.push(item);
                continue;
            }
            let limit = PREVIEW_TIMEOUT.min(deadline - now);
            let asked = tokio::time::timeout(limit, tool.executor.preview(&invocation));
            match asked.await {
                Ok(Ok(Some(mut preview))) => {
                    let secrets = &self.shared.secrets;
                    secrets.redact_in_place(&mut preview.summary);
                    if let Some(diff) = preview.diff.as_mut() {
                        secrets.redact_in_place(diff);
                    }
                    preview.truncate_diff(MAX_PREVIEW_DIFF_BYTES.min(diff_left));
                    diff_left -= preview.diff.as_ref().map_or(0, String::len);
                    item.preview = Some(preview);
                }
                Ok(Ok(None)) => {}
                Ok(Err(e)) => {
                    let mut text = format!("the preview failed: {e}");
                    self.shared.secrets.redact_in_place(&mut text);
                    item.error = Some(text);
                }
                Err(_) => {
                    item.error = Some(format!(
                        "the preview took longer than {} ms",
                        limit.as_millis()
                    ));
                }
            }
            out.push(item);
        }
        out
    }

    /// The id of the step that runs `req`'s plan: the step of the job's current
    /// definition whose `execute_approved` names the planning step, else the planning
    /// step itself.
    fn executing_step(&self, req: &ApprovalRequest) -> String {
        let Ok(desired) = self.shared.desired.read() else {
            return req.step.clone();
        };
        let job = desired
            .set
            .jobs
            .get(&req.job)
            .or_else(|| desired.retained.get(&req.job));
        job.and_then(|d| {
            d.template
                .spec
                .steps
                .iter()
                .find(|s| s.execute_approved.as_deref() == Some(req.step.as_str()))
        })
        .map_or_else(|| req.step.clone(), |s| s.id.clone())
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use async_trait::async_trait;
    use serde_json::json;

    use super::*;
    use crate::memory::{InMemoryGitSource, InMemoryStateStore};
    use crate::secret::KnownSecrets;
    use crate::state::{ApprovalStatus, Plan, PlannedAction};
    use crate::tool::{ToolDefinition, ToolExecutor, ToolOutput};

    /// `diff` previews its `text` argument as a diff and records the invocations it
    /// saw; `plain` has no preview; `broken` fails; `call` is never made.
    #[derive(Debug, Default)]
    struct Fake {
        seen: Mutex<Vec<ToolInvocation>>,
    }

    #[async_trait]
    impl ToolExecutor for Fake {
        fn tools(&self) -> Vec<ToolDefinition> {
            ["diff", "plain", "broken", "slow"]
                .into_iter()
                .map(|n| ToolDefinition::new(n, n, json!({"type": "object"})))
                .collect()
        }
        async fn call(&self, _: ToolInvocation) -> Result<ToolOutput> {
            panic!("a preview must not call the tool");
        }
        async fn preview(&self, inv: &ToolInvocation) -> Result<Option<ToolPreview>> {
            self.seen
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .push(inv.clone());
            match inv.name.as_str() {
                "diff" => {
                    let text = inv.arguments["text"].as_str().unwrap_or_default();
                    Ok(Some(ToolPreview::new("s3cret summary").with_diff(text)))
                }
                "broken" => Err(Error::backend("disk on fire")),
                "slow" => {
                    tokio::time::sleep(Duration::from_secs(3600)).await;
                    Ok(None)
                }
                _ => Ok(None),
            }
        }
    }

    fn request(actions: Vec<(&str, serde_json::Value)>) -> ApprovalRequest {
        let plan = Plan {
            summary: "p".into(),
            actions: actions
                .into_iter()
                .map(|(tool, arguments)| PlannedAction {
                    tool: tool.into(),
                    arguments,
                })
                .collect(),
        };
        ApprovalRequest {
            id: ApprovalRequest::make_id("j", "plan", 3, 2),
            job: "j".into(),
            step: "plan".into(),
            generation: 3,
            attempt: 2,
            agent: "a".into(),
            digest: plan.digest(),
            plan,
            rule: Default::default(),
            commit_author: None,
            votes: Vec::new(),
            requested_at_ms: 0,
            status: ApprovalStatus::Open,
        }
    }

    #[tokio::test]
    async fn each_action_gets_its_preview_or_the_reason_it_has_none() {
        let fake = Arc::new(Fake::default());
        let secrets = KnownSecrets::new();
        secrets.add("s3cret");
        let engine = Engine::builder(
            Arc::new(InMemoryStateStore::new()),
            Arc::new(InMemoryGitSource::new()),
        )
        .tools(fake.clone())
        .known_secrets(secrets)
        .build()
        .expect("engine");
        let big = "+line\n".repeat(MAX_PREVIEW_DIFF_BYTES / 6 + 10);
        let req = request(vec![
            ("diff", json!({"text": "--- a/x\n+++ b/x\n"})),
            ("plain", json!({})),
            ("broken", json!({})),
            ("gone", json!({})),
            ("diff", json!({"text": big})),
        ]);
        let out = engine.preview_request(&req).await;
        assert_eq!(out.len(), 5);
        assert_eq!(
            out.iter().map(|a| a.index).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
        let first = out[0].preview.as_ref().expect("a preview");
        assert_eq!(first.diff.as_deref(), Some("--- a/x\n+++ b/x\n"));
        assert!(
            !first.summary.contains("s3cret"),
            "redacted: {}",
            first.summary
        );
        assert_eq!((&out[1].preview, &out[1].error), (&None, &None));
        assert!(
            out[2]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("disk on fire")
        );
        assert!(
            out[3]
                .error
                .as_deref()
                .unwrap_or("")
                .contains("no tool named \"gone\"")
        );
        let last = out[4].preview.as_ref().expect("a preview");
        assert!(last.truncated);
        let diff = last.diff.as_deref().unwrap_or("");
        assert!(diff.len() <= MAX_PREVIEW_DIFF_BYTES && diff.ends_with('\n'));

        let seen = fake.seen.lock().unwrap_or_else(|e| e.into_inner()).clone();
        assert_eq!(seen.len(), 4, "the missing tool is not asked");
        assert_eq!(seen[0].idempotency_key, format!("{}/1", req.id));
        assert_eq!(seen[0].context.approval.as_deref(), Some(req.id.as_str()));
        assert_eq!(seen[3].context.action, Some(5));
        assert_eq!(
            (seen[0].context.job.as_str(), seen[0].context.generation),
            ("j", 3)
        );

        let err = engine.preview_approval("nope").await.expect_err("unknown");
        assert_eq!(err.kind(), crate::ErrorKind::NotFound);
    }

    fn engine(fake: Arc<Fake>) -> Engine {
        Engine::builder(
            Arc::new(InMemoryStateStore::new()),
            Arc::new(InMemoryGitSource::new()),
        )
        .tools(fake)
        .build()
        .expect("engine")
    }

    #[tokio::test(start_paused = true)]
    async fn previews_are_bounded_in_time_and_size_per_plan() {
        let engine = engine(Arc::new(Fake::default()));
        let slow = request(vec![("slow", json!({})); 4]);
        let out = tokio::time::timeout(Duration::from_secs(600), engine.preview_request(&slow))
            .await
            .expect("bounded");
        let errors: Vec<&str> = out.iter().filter_map(|a| a.error.as_deref()).collect();
        assert_eq!(errors.len(), 4, "{out:?}");
        assert!(
            errors[0].contains("took longer than 10000 ms"),
            "{}",
            errors[0]
        );
        assert!(errors[3].starts_with("not previewed"), "{}", errors[3]);

        let big = "+line\n".repeat(MAX_PREVIEW_DIFF_BYTES / 6 - 1);
        let many = (0..MAX_PLAN_DIFF_BYTES / big.len() + 2)
            .map(|_| ("diff", json!({ "text": big })))
            .collect();
        let out = engine.preview_request(&request(many)).await;
        let shown: usize = out
            .iter()
            .filter_map(|a| a.preview.as_ref()?.diff.as_ref().map(String::len))
            .sum();
        assert!(shown <= MAX_PLAN_DIFF_BYTES, "{shown}");
        let last = out
            .last()
            .and_then(|a| a.preview.as_ref())
            .expect("preview");
        assert!(last.truncated && last.diff.is_none(), "{last:?}");
        assert!(!out[0].preview.as_ref().expect("preview").truncated);
    }

    #[test]
    fn a_long_diff_is_cut_at_a_line_end() {
        let mut p = ToolPreview::new("1 file").with_diff("aaaa\nbbbb\ncccc\n");
        p.truncate_diff(12);
        assert_eq!(p.diff.as_deref(), Some("aaaa\nbbbb\n"));
        assert!(p.truncated);
        assert!(
            p.summary.contains("diff cut to 10 of 15 bytes"),
            "{}",
            p.summary
        );
        let mut short = ToolPreview::new("x").with_diff("a\n");
        short.truncate_diff(12);
        assert!(!short.truncated);
        assert!(ToolPreview::new("x").with_diff("").diff.is_none());
    }
}
