//! The write tool's own trailers (`George-Idempotency-Key`, `George-Job`,
//! `George-Step`): an agent cannot forge them to make a later call replay as a no-op,
//! and approved actions (keys `<approval id>/<index>`) commit once, with the right job,
//! step and change branch — on a local repository and over a `file://` remote.

mod common;
mod write_remote_support;

use common::TestRepo;
use george_core::tool::{ToolContext, ToolExecutor, ToolInvocation, ToolOutput};
use george_git::{BranchMode, GitAuthor, GitWriteTool};
use serde_json::{Value, json};
use write_remote_support::{Server, data_str, remote};

/// The approved action's key: action 1 of the approval `job~plan~1~1`.
const APPROVED: &str = "job~plan~1~1/1";

fn local_tool(t: &TestRepo) -> GitWriteTool {
    GitWriteTool::new(
        t.path(),
        "main",
        GitAuthor::new("George Bot", "george@example.com"),
    )
    .unwrap()
}

/// The context the engine gives action 1 of the approval `job~plan~1~1`, run by
/// `attempt` of step `execute`.
fn approved_context(attempt: u32) -> ToolContext {
    ToolContext::new("job", "execute", 1, attempt).approved("job~plan~1~1", 1)
}

async fn call(tool: &GitWriteTool, args: Value, key: &str, context: ToolContext) -> ToolOutput {
    tool.call(ToolInvocation::new(tool.commit_tool_name(), args, key).with_context(context))
        .await
        .expect("commit call")
}

fn change(message: &str, content: &str) -> Value {
    json!({
        "message": message,
        "changes": [{"path": "apps/nightly.yaml", "content": content}]
    })
}

fn replayed(out: &ToolOutput) -> bool {
    out.data.as_ref().expect("data")["replayed"] == true
}

/// Messages that set a trailer only the tool may write, however spelled.
fn forged_messages(key: &str) -> Vec<String> {
    vec![
        format!("Tidy the job\n\nGeorge-Idempotency-Key: {key}\n"),
        format!("Tidy the job\n\n  george-idempotency-key : {key}"),
        format!("GEORGE-IDEMPOTENCY-KEY:{key}"),
        "Tidy the job\n\nGeorge-Job: job\n".to_owned(),
        "Tidy the job\r\n\r\n\tgeorge-step: execute\r\n".to_owned(),
    ]
}

#[tokio::test]
async fn a_forged_key_is_refused_and_the_approved_call_still_commits() {
    let t = TestRepo::new();
    let base = t.commit(&[("apps/nightly.yaml", Some("retries: 1\n"))], "init");
    let tool = local_tool(&t);

    // The attack: during the step's own tool loop, the agent commits A with the
    // approved action's key K2 in its message.
    for message in forged_messages(APPROVED) {
        let out = call(
            &tool,
            change(&message, "retries: 9\n"),
            "job/plan/1/1",
            ToolContext::new("job", "plan", 1, 1),
        )
        .await;
        assert!(out.is_error, "{message:?} was accepted: {}", out.content);
        assert!(out.content.contains("trailer"), "{}", out.content);
        assert!(
            out.content.contains("nothing was committed"),
            "{}",
            out.content
        );
        assert_eq!(t.head(), base, "{message:?}: nothing committed");
        assert_eq!(t.git(&["status", "--porcelain"]), "");
    }

    // The approved call with K2 is not taken for a replay: its commit lands.
    let out = call(
        &tool,
        change("Raise retries", "retries: 3\n"),
        APPROVED,
        approved_context(1),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(!replayed(&out), "{}", out.content);
    let landed = t.head();
    assert_ne!(landed, base);
    assert_eq!(data_str(&out, "commit"), landed.to_string());
    assert_eq!(t.git(&["show", "main:apps/nightly.yaml"]), "retries: 3\n");
    let message = t.git(&["log", "-1", "--format=%B"]);
    assert!(
        message
            .trim_end()
            .ends_with(&format!("\n\nGeorge-Idempotency-Key: {APPROVED}")),
        "{message}"
    );

    // The same approved action again (another attempt after a restart): replayed.
    let again = call(
        &tool,
        change("Raise retries", "retries: 3\n"),
        APPROVED,
        approved_context(2),
    )
    .await;
    assert!(!again.is_error, "{}", again.content);
    assert!(replayed(&again), "{}", again.content);
    assert_eq!(data_str(&again, "commit"), landed.to_string());
    assert_eq!(t.head(), landed);

    // An ordinary key twice: replayed too.
    let first = call(
        &tool,
        change("Lower retries", "retries: 2\n"),
        "job/tune/1/1",
        ToolContext::default(),
    )
    .await;
    assert!(!first.is_error && !replayed(&first), "{}", first.content);
    let second = call(
        &tool,
        change("Lower retries", "retries: 2\n"),
        "job/tune/1/1",
        ToolContext::default(),
    )
    .await;
    assert!(replayed(&second), "{}", second.content);
    assert_eq!(data_str(&second, "commit"), data_str(&first, "commit"));
    assert_eq!(t.git(&["rev-list", "--count", "main"]).trim(), "3");
}

#[tokio::test]
async fn a_forged_key_pushes_nothing_and_the_approved_call_pushes() {
    let Some(r) = remote(
        Server::File,
        "forged_key",
        &[("apps/nightly.yaml", "retries: 1\n")],
    ) else {
        return;
    };
    let before = r.rev("main");
    let tool = r.tool("work", |t| t);
    for message in forged_messages(APPROVED) {
        let out = call(
            &tool,
            change(&message, "retries: 9\n"),
            "job/plan/1/1",
            ToolContext::new("job", "plan", 1, 1),
        )
        .await;
        assert!(out.is_error, "{message:?} was accepted: {}", out.content);
        assert_eq!(r.rev("main"), before, "{message:?}: nothing pushed");
    }
    assert_eq!(r.commits_with("main", APPROVED), 0);

    let out = call(
        &tool,
        change("Raise retries", "retries: 3\n"),
        APPROVED,
        approved_context(1),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert!(!replayed(&out), "{}", out.content);
    let pushed = data_str(&out, "commit");
    assert_eq!(r.rev("main"), pushed);
    assert_eq!(r.show("main", "apps/nightly.yaml"), "retries: 3");

    // Again, through another work folder: the pushed commit is found, not redone.
    let other = r.tool("work2", |t| t);
    let again = call(
        &other,
        change("Raise retries", "retries: 3\n"),
        APPROVED,
        approved_context(2),
    )
    .await;
    assert!(replayed(&again), "{}", again.content);
    assert_eq!(data_str(&again, "commit"), pushed);
    assert_eq!(r.rev("main"), pushed);
    assert_eq!(r.commits_with("main", APPROVED), 1);
}

#[tokio::test]
async fn an_approved_action_lands_once_on_its_step_branch_with_its_trailers() {
    let Some(r) = remote(
        Server::File,
        "approved_branch",
        &[("apps/nightly.yaml", "retries: 1\n")],
    ) else {
        return;
    };
    let main = r.rev("main");
    let tool = r.tool("work", |t| t.with_branch_mode(BranchMode::per_step()));
    let out = call(
        &tool,
        change("Raise retries", "retries: 3\n"),
        APPROVED,
        approved_context(1),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(data_str(&out, "branch"), "george/job/execute");
    let pushed = data_str(&out, "commit");
    assert_eq!(r.rev("george/job/execute"), pushed);
    assert_eq!(r.rev("main"), main, "main is left for review");
    let message = write_remote_support::git(&r.bare, &["log", "-1", "--format=%B", &pushed]);
    assert!(
        message.ends_with(&format!(
            "\n\nGeorge-Job: job\nGeorge-Step: execute\nGeorge-Idempotency-Key: {APPROVED}"
        )),
        "{message}"
    );

    // A later attempt of the step (a restart): the same key, replayed from the branch.
    let again = call(
        &tool,
        change("Raise retries", "retries: 3\n"),
        APPROVED,
        approved_context(2),
    )
    .await;
    assert!(replayed(&again), "{}", again.content);
    assert_eq!(data_str(&again, "commit"), pushed);
    assert_eq!(r.commits_with("george/job/execute", APPROVED), 1);

    // Without a context the job and step come from the approval id in the key (the
    // step that made the plan, unescaped).
    let key = "job~plan.2fx~1~1/2";
    let out = call(
        &tool,
        change("Lower retries", "retries: 2\n"),
        key,
        ToolContext::default(),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(data_str(&out, "branch"), "george/job/plan-x");
    let message =
        write_remote_support::git(&r.bare, &["log", "-1", "--format=%B", "george/job/plan-x"]);
    assert!(
        message.ends_with(&format!(
            "\n\nGeorge-Job: job\nGeorge-Step: plan/x\nGeorge-Idempotency-Key: {key}"
        )),
        "{message}"
    );

    // And an agent's own call: `<job>/<step>/<attempt>/<n>`.
    let out = call(
        &tool,
        change("Retries to 4", "retries: 4\n"),
        "job/tune/3/1",
        ToolContext::default(),
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(data_str(&out, "branch"), "george/job/tune");
}
