//! Sample records for the checks, and for backends' own tests.

use serde_json::json;

use crate::model::ApprovalRule;
use crate::provider::{AssistantMessage, Message, ToolCall, Usage};
use crate::state::{
    ActionEffect, ApprovalRequest, ApprovalStatus, ApprovedPlan, JobRecord, Plan, PlannedAction,
    Rejection, StepRecord, StepState,
};

/// The generation of [`sample_job`], and of the requests of [`sample_approval`].
const GENERATION: u64 = 3;

/// A job named `name` with 11 steps, one or more in every [`StepState`], with
/// outputs, messages, rejections, usage and child-job links, itself a child job
/// (`ordered_by`): a record that exercises every field.
///
/// Its `revision` is 0; its `spec_hash` is above `i64::MAX` (a backend storing it in a
/// signed 64-bit column must not lose it).
pub fn sample_job(name: &str) -> JobRecord {
    let mut checkout = StepRecord::new("checkout");
    checkout.state = StepState::Succeeded;
    checkout.attempt = 1;
    checkout.outputs = Some(
        json!({
            "commit": "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b",
            "files": [1, 2.5, -3, "x", true],
            "nested": {"ok": true, "none": null, "text": "line 1\nline 2 \u{00e9}\u{1f600}"},
            "big": u64::MAX,
        })
        .into(),
    );
    checkout.approved = Some(Box::new(ApprovedPlan {
        request: ApprovalRequest::make_id(name, "checkout", GENERATION, 1),
        digest: sample_plan().digest(),
        generation: GENERATION,
        executed: false,
    }));
    checkout.usage = Usage {
        input_tokens: 1200,
        output_tokens: 300,
        cache_read_tokens: 50,
        cache_write_tokens: 7,
        reasoning_tokens: 120,
        cost_usd: 0.012_345,
    };

    let mut plan = StepRecord::new("plan");
    plan.state = StepState::AwaitingApproval {
        request: ApprovalRequest::make_id(name, "plan", GENERATION, 2),
    };
    plan.attempt = 2;
    plan.rejections = vec![Rejection {
        plan: "drop the table and recreate it".into(),
        reason: "no: data loss; migrate in place".into(),
        by: "human:alice".into(),
        request: ApprovalRequest::make_id(name, "plan", GENERATION, 1),
        digest: "sha256:00ff".into(),
    }];
    plan.usage = Usage {
        input_tokens: 9000,
        output_tokens: 800,
        ..Usage::default()
    };

    let apply = StepRecord::new("apply");

    let mut test = StepRecord::new("test");
    test.state = StepState::Ready;

    let mut build = StepRecord::new("build");
    build.state = StepState::Running {
        holder: "engine-1".into(),
        lease_until_ms: 1_700_000_030_000,
    };
    build.attempt = 1;
    build.effects = vec![ActionEffect {
        index: 1,
        key: format!(
            "{}/1",
            ApprovalRequest::make_id(name, "checkout", GENERATION, 1)
        ),
        tool: "sql.execute".into(),
        content: "ALTER TABLE".into(),
        data: Some(json!({"rows": 0})),
    }];

    let mut lint = StepRecord::new("lint");
    lint.state = StepState::Failed {
        retry_at_ms: Some(1_700_000_060_000),
    };
    lint.attempt = 1;
    lint.message = Some("exit status 1: 3 warnings".into());

    let mut deploy = StepRecord::new("deploy");
    deploy.state = StepState::Failed { retry_at_ms: None };
    deploy.attempt = 3;
    deploy.message = Some("retries exhausted".into());

    let mut review = StepRecord::new("review");
    review.state = StepState::Blocked;
    review.attempt = 1;
    review.message = Some("missing capability: kubectl".into());

    let mut wait = StepRecord::new("wait");
    wait.state = StepState::Deferred {
        until_ms: 1_700_003_600_000,
    };
    wait.attempt = 1;
    wait.message = Some("waiting for CI".into());

    let mut notify = StepRecord::new("notify");
    notify.state = StepState::Cancelled;

    // A step waiting for the child jobs it ordered, one of which finished.
    let mut fan_out = StepRecord::new("fan-out");
    fan_out.state = StepState::WaitingForChildren {
        waiting_on: vec![
            format!("{name}--fan-out--a1"),
            format!("{name}--fan-out--b2"),
        ],
    };
    fan_out.attempt = 1;
    fan_out.children = vec![
        crate::children::ChildLink {
            job: format!("{name}--fan-out--a1"),
            template: "migrate".into(),
            wait: true,
            on_child_failure: crate::children::ChildFailurePolicy::Continue,
            parent_close: crate::children::ParentClosePolicy::Abandon,
            status: Some(crate::state::JobStatus::Succeeded),
            outputs: Some(json!({"run": {"rows": 12}}).into()),
            closed: false,
        },
        crate::children::ChildLink {
            job: format!("{name}--fan-out--b2"),
            template: "migrate".into(),
            wait: true,
            on_child_failure: crate::children::ChildFailurePolicy::Fail,
            parent_close: crate::children::ParentClosePolicy::Cancel,
            status: None,
            outputs: None,
            closed: true,
        },
    ];

    // Built from JSON so that fields added to `JobRecord` with a serde default do not
    // break this function; unknown keys are ignored.
    let mut job: JobRecord = serde_json::from_value(json!({
        "name": name,
        "generation": GENERATION,
        "spec_hash": 0xfedc_ba98_7654_3210_u64,
        "commit": "0123456789abcdef0123456789abcdef01234567",
        "path": format!("jobs/team-a/{name}.yaml"),
        "template": "deploy-service",
        "status": "awaiting_approval",
        "removed": false,
        "keep_on_removal": true,
        "steps": [],
        "revision": 0,
        "created_at_ms": 1_700_000_000_000_u64,
        "updated_at_ms": 1_700_000_010_000_u64,
    }))
    .expect("conformance: the sample JobRecord JSON no longer matches JobRecord");
    job.steps = [
        checkout, plan, apply, test, build, lint, deploy, review, wait, notify, fan_out,
    ]
    .into_iter()
    .map(std::sync::Arc::new)
    .collect();
    job.ordered_by = Some(crate::children::OrderedBy {
        job: format!("{name}-parent"),
        step: "split".into(),
        attempt: 2,
        commit: "89abcdef0123456789abcdef0123456789abcdef".into(),
        params: serde_json::from_value(json!({"n": 3, "env": "prod"}))
            .expect("conformance: sample params"),
        key: "k-1".into(),
        depth: 2,
        parent_close: crate::children::ParentClosePolicy::Finish,
        abandoned: true,
    });
    job
}

/// An approval request for `job`/`step`/`attempt` at the generation of [`sample_job`],
/// with a two-action plan and a two-person rule, in `status`.
///
/// Stores insert requests `Open` only ([`ApprovalOp::Insert`](crate::store::ApprovalOp));
/// a request in another status is what an update writes.
pub fn sample_approval(
    job: &str,
    step: &str,
    attempt: u32,
    status: ApprovalStatus,
) -> ApprovalRequest {
    let plan = sample_plan();
    ApprovalRequest {
        id: ApprovalRequest::make_id(job, step, GENERATION, attempt),
        job: job.to_string(),
        step: step.to_string(),
        generation: GENERATION,
        attempt,
        agent: "planner".into(),
        digest: plan.digest(),
        plan,
        rule: ApprovalRule::required()
            .with_approvers(["user:alice", "group:ops"])
            .with_min_approvals(2)
            .with_forbid_self_approval(true),
        commit_author: Some("Carol Committer <carol@example.com>".into()),
        votes: Vec::new(),
        requested_at_ms: 1_700_000_020_000,
        status,
    }
}

fn sample_plan() -> Plan {
    Plan {
        summary: "Add the column, backfill it, then switch reads.".into(),
        actions: vec![
            PlannedAction {
                tool: "sql.execute".into(),
                arguments: json!({"sql": "ALTER TABLE t ADD COLUMN c TEXT", "dry_run": false}),
            },
            PlannedAction {
                tool: "git.commit".into(),
                arguments: json!({"message": "switch reads", "paths": ["a.rs", "b.rs"]}),
            },
        ],
    }
}

/// A short transcript with every [`Message`] variant; `tag` makes it distinct.
pub fn sample_transcript(tag: &str) -> Vec<Message> {
    vec![
        Message::User {
            content: format!("Do the thing ({tag}).\nWith care: \u{00e9}\u{1f600}"),
        },
        Message::Assistant(AssistantMessage {
            content: Some("Looking first.".into()),
            tool_calls: vec![ToolCall {
                id: "call_1".into(),
                name: "fs.read".into(),
                arguments: json!({"path": "README.md"}),
                provider_metadata: Some(json!({"thoughtSignature": "c2ln"})),
            }],
        }),
        Message::Tool {
            tool_call_id: "call_1".into(),
            name: "fs.read".into(),
            content: format!("# README {tag}"),
            is_error: false,
        },
        Message::Assistant(AssistantMessage {
            content: Some("Done.".into()),
            tool_calls: vec![],
        }),
    ]
}
