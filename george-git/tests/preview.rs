//! `GitWriteTool::preview`: a plan's commit call previews as the diff it would commit,
//! with the call's own checks, and changes nothing — no object, reference or
//! working-tree file locally, no fetch over a remote.

mod common;
mod write_remote_support;

use common::TestRepo;
use george_core::tool::{ToolContext, ToolExecutor, ToolInvocation, ToolPreview};
use george_git::{GitAuthor, GitWriteTool};
use serde_json::{Value, json};
use write_remote_support::{Server, commit_all, git, read, remote, write_file};

fn tool(t: &TestRepo) -> GitWriteTool {
    GitWriteTool::new(
        t.path(),
        "main",
        GitAuthor::new("George Bot", "george@example.com"),
    )
    .expect("tool")
}

/// The commit call of action 1 of an approval request, as the engine builds it.
fn action(tool: &GitWriteTool, args: Value) -> ToolInvocation {
    let id = "nightly~plan~1~1";
    ToolInvocation::new(tool.commit_tool_name(), args, format!("{id}/1"))
        .with_context(ToolContext::new("nightly", "apply", 1, 0).approved(id, 1))
}

async fn preview(tool: &GitWriteTool, inv: &ToolInvocation) -> ToolPreview {
    tool.preview(inv)
        .await
        .expect("preview")
        .expect("the commit tool previews")
}

/// Everything a preview must not change: refs with their targets, the number of
/// objects, `git status` and the index's entries.
fn snapshot(t: &TestRepo) -> (String, usize, String, String) {
    let refs = t.git(&["for-each-ref", "--format=%(refname) %(objectname)"]);
    let mut objects = 0;
    t.repo
        .odb()
        .expect("odb")
        .foreach(|_| {
            objects += 1;
            true
        })
        .expect("objects");
    let status = t.git(&["status", "--porcelain", "--untracked-files=all"]);
    // The index's entries (mode, object, stage, path), not its bytes: `git status`
    // itself may rewrite the file's cached stat data.
    let index = t.git(&["ls-files", "--stage"]);
    (refs, objects, status, index)
}

const PLAN: &str = "kind: Job\nname: nightly\nschedule: daily\nretries: 1\n";

#[tokio::test]
async fn a_commit_call_previews_as_its_diff_and_changes_nothing() {
    let t = TestRepo::new();
    t.commit(
        &[
            ("apps/nightly.yaml", Some(PLAN)),
            ("old.txt", Some("remove me\n")),
        ],
        "init",
    );
    let tool = tool(&t);
    let inv = action(
        &tool,
        json!({
            "message": "Run the nightly job hourly",
            "changes": [
                {"path": "apps/nightly.yaml", "find": "schedule: daily", "replace": "schedule: hourly"},
                {"path": "apps/new.yaml", "content": "a: 1\n"},
                {"path": "old.txt", "delete": true}
            ]
        }),
    );
    let before = snapshot(&t);
    let p = preview(&tool, &inv).await;
    assert_eq!(snapshot(&t), before, "a preview changes nothing");
    assert!(!p.is_error, "{}", p.summary);
    assert!(!p.truncated);
    assert!(
        p.summary.contains("\"Run the nightly job hourly\"")
            && p.summary.contains("branch `main`")
            && p.summary
                .contains("3 file(s) — 1 added, 1 modified, 1 deleted"),
        "{}",
        p.summary
    );
    let expected = "\
diff --git a/apps/new.yaml b/apps/new.yaml
new file mode 100644
--- /dev/null
+++ b/apps/new.yaml
@@ -0,0 +1 @@
+a: 1
diff --git a/apps/nightly.yaml b/apps/nightly.yaml
--- a/apps/nightly.yaml
+++ b/apps/nightly.yaml
@@ -1,4 +1,4 @@
 kind: Job
 name: nightly
-schedule: daily
+schedule: hourly
 retries: 1
diff --git a/old.txt b/old.txt
deleted file mode 100644
--- a/old.txt
+++ /dev/null
@@ -1 +0,0 @@
-remove me
";
    assert_eq!(p.diff.as_deref(), Some(expected));

    // The commit the call then makes is the one previewed: `git diff` agrees.
    let out = tool.call(inv.clone()).await.expect("call");
    assert!(!out.is_error, "{}", out.content);
    let shown = t.git(&["diff", "--no-color", "--no-ext-diff", "HEAD~1", "HEAD"]);
    let strip = |d: &str| -> String {
        d.lines()
            .filter(|l| !l.starts_with("index "))
            .map(|l| format!("{l}\n"))
            .collect()
    };
    assert_eq!(strip(&shown), expected);

    // Once committed, the same action previews as already done.
    let again = preview(&tool, &inv).await;
    assert!(
        again.summary.starts_with("already committed as "),
        "{}",
        again.summary
    );
    assert_eq!(again.diff, None);
}

#[tokio::test]
async fn refused_and_failing_calls_preview_as_errors() {
    let t = TestRepo::new();
    t.commit(&[("apps/nightly.yaml", Some(PLAN))], "init");
    let tool = tool(&t).with_denied_paths(["secrets/"]).expect("glob");
    let before = snapshot(&t);

    let denied = action(
        &tool,
        json!({"message": "m", "changes": [
            {"path": "apps/nightly.yaml", "content": "x\n"},
            {"path": ".github/workflows/ci.yml", "content": "on: push\n"}
        ]}),
    );
    let p = preview(&tool, &denied).await;
    assert!(p.is_error);
    assert!(
        p.summary
            .contains("`.github/workflows/ci.yml` is refused by the path rule `deny .github/`")
            && p.summary.contains("commit nothing"),
        "{}",
        p.summary
    );
    let diff = p.diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains("+++ b/.github/workflows/ci.yml"),
        "what was tried is shown: {diff}"
    );

    let own_rule = action(
        &tool,
        json!({"message": "m", "changes": [{"path": "secrets/key", "content": "k"}]}),
    );
    let p = preview(&tool, &own_rule).await;
    assert!(
        p.is_error && p.summary.contains("`deny secrets/`"),
        "{}",
        p.summary
    );

    let absent = action(
        &tool,
        json!({"message": "m", "changes": [
            {"path": "apps/nightly.yaml", "find": "weekly", "replace": "daily"}
        ]}),
    );
    let p = preview(&tool, &absent).await;
    assert!(
        p.is_error && p.summary.contains("`find` text not found"),
        "{}",
        p.summary
    );

    let forged = action(
        &tool,
        json!({"message": "m\n\nGeorge-Job: other", "changes": [{"path": "a", "content": "x"}]}),
    );
    assert!(preview(&tool, &forged).await.is_error);
    let bad = action(
        &tool,
        json!({"message": "m", "changes": [{"path": "../x", "content": "x"}]}),
    );
    assert!(preview(&tool, &bad).await.is_error);

    // Uncommitted edits the commit would refuse to overwrite.
    std::fs::write(t.path().join("apps/nightly.yaml"), "local edit\n").expect("edit");
    let edit = action(
        &tool,
        json!({"message": "m", "changes": [{"path": "apps/nightly.yaml", "content": "y\n"}]}),
    );
    let p = preview(&tool, &edit).await;
    assert!(
        p.is_error && p.summary.contains("uncommitted changes"),
        "{}",
        p.summary
    );
    std::fs::write(t.path().join("apps/nightly.yaml"), PLAN).expect("restore");

    let same = action(
        &tool,
        json!({"message": "m", "changes": [{"path": "apps/nightly.yaml", "content": PLAN}]}),
    );
    let p = preview(&tool, &same).await;
    assert!(
        !p.is_error && p.summary.starts_with("nothing to commit"),
        "{}",
        p.summary
    );
    assert_eq!(p.diff, None);

    assert_eq!(snapshot(&t), before, "previews change nothing");
    let read = ToolInvocation::new(tool.read_tool_name(), json!({"path": "a"}), "k");
    let p = preview(&tool, &read).await;
    assert!(p.summary.contains("changes nothing"), "{}", p.summary);
    let unknown = ToolInvocation::new("other_tool", json!({}), "k");
    assert!(tool.preview(&unknown).await.is_err());
}

#[tokio::test]
async fn a_remote_preview_uses_the_last_fetch_and_never_fetches() {
    let test = "a_remote_preview_uses_the_last_fetch_and_never_fetches";
    let Some(r) = remote(Server::File, test, &[("apps/nightly.yaml", PLAN)]) else {
        return;
    };
    let tool = r.tool("work", |t| t);
    let call = action(
        &tool,
        json!({"message": "m", "changes": [
            {"path": "apps/nightly.yaml", "find": "retries: 1", "replace": "retries: 2"}
        ]}),
    );
    let p = preview(&tool, &call).await;
    assert!(!p.is_error && p.diff.is_none(), "{p:?}");
    assert!(p.summary.contains("has not been fetched"), "{}", p.summary);
    let refs = git(&r.tmp.path().join("work"), &["for-each-ref"]);
    assert_eq!(refs, "", "the preview did not fetch");

    // A read fetches; the remote then moves; the preview still shows the fetched state.
    assert!(
        !read(&tool, json!({"path": "README.md"}))
            .await
            .content
            .is_empty()
    );
    let fetched = git(
        &r.tmp.path().join("work"),
        &["rev-parse", "refs/remotes/origin/main"],
    );
    let human = r.clone_to("human");
    write_file(
        &human,
        "apps/nightly.yaml",
        &PLAN.replace("daily", "weekly"),
    );
    git(&human, &["add", "-A"]);
    commit_all(&human, "Weekly");
    git(&human, &["push", "-q", "origin", "HEAD:main"]);

    let p = preview(&tool, &call).await;
    assert!(!p.is_error, "{}", p.summary);
    assert!(
        p.summary.contains("as last fetched") && p.summary.contains(&fetched[..8]),
        "{}",
        p.summary
    );
    let diff = p.diff.as_deref().unwrap_or_default();
    assert!(
        diff.contains(" schedule: daily\n-retries: 1\n+retries: 2\n"),
        "{diff}"
    );
    let still = git(
        &r.tmp.path().join("work"),
        &["rev-parse", "refs/remotes/origin/main"],
    );
    assert_eq!(still, fetched, "the preview did not fetch");
}
