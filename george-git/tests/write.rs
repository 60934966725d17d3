//! `GitWriteTool` against real repositories.

mod common;

use common::TestRepo;
use george_core::ErrorKind;
use george_core::tool::{ToolExecutor, ToolInvocation, ToolOutput};
use george_git::{GitAuthor, GitWriteTool, IDEMPOTENCY_TRAILER};
use serde_json::{Value, json};

fn tool(t: &TestRepo) -> GitWriteTool {
    GitWriteTool::new(
        t.path(),
        "main",
        GitAuthor::new("George Bot", "george@example.com"),
    )
    .unwrap()
}

async fn commit(tool: &GitWriteTool, args: Value, key: &str) -> ToolOutput {
    tool.call(ToolInvocation::new(tool.commit_tool_name(), args, key))
        .await
        .unwrap()
}

async fn read(tool: &GitWriteTool, path: &str) -> ToolOutput {
    tool.call(ToolInvocation::new(
        tool.read_tool_name(),
        json!({ "path": path }),
        "k",
    ))
    .await
    .unwrap()
}

fn commit_of(out: &ToolOutput) -> String {
    out.data.as_ref().expect("data")["commit"]
        .as_str()
        .expect("commit")
        .to_owned()
}

#[tokio::test]
async fn tools_are_described_with_schemas() {
    let t = TestRepo::new();
    let tools = tool(&t).tools();
    let names: Vec<&str> = tools.iter().map(|d| d.name.as_str()).collect();
    assert_eq!(names, ["git_read_file", "git_commit"]);
    for d in &tools {
        assert_eq!(d.input_schema["type"], "object");
        assert!(!d.description.is_empty());
    }
    let aliased = tool(&t).with_alias("infra");
    let names: Vec<String> = aliased.tools().into_iter().map(|d| d.name).collect();
    assert_eq!(names, ["infra_read_file", "infra_commit"]);
    // The default names are unknown to the aliased tool.
    let err = aliased
        .call(ToolInvocation::new("git_commit", json!({}), "k"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::NotFound);
}

#[tokio::test]
async fn commit_lands_on_branch_with_author_and_clean_status() {
    let t = TestRepo::new();
    let base = t.commit(
        &[
            ("apps/nightly.yaml", Some("kind: Job\nschedule: daily\n")),
            ("README.md", Some("hello\n")),
            ("old.txt", Some("remove me\n")),
        ],
        "init",
    );
    let tool = tool(&t);
    let out = commit(
        &tool,
        json!({
            "message": "Tune the nightly job",
            "changes": [
                {"path": "apps/nightly.yaml", "find": "schedule: daily", "replace": "schedule: hourly"},
                {"path": "apps/new/extra.yaml", "content": "kind: Job\n"},
                {"path": "old.txt", "delete": true}
            ]
        }),
        "job-1/step-1/1/0",
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    let data = out.data.clone().unwrap();
    assert_eq!(
        data["paths"],
        json!(["apps/new/extra.yaml", "apps/nightly.yaml", "old.txt"])
    );
    assert_eq!(data["replayed"], false);

    // The commit is the branch head, on top of the previous one, by the configured author.
    let head = t.head();
    assert_eq!(commit_of(&out), head.to_string());
    let c = t.repo.find_commit(head).unwrap();
    assert_eq!(c.parent_id(0).unwrap(), base);
    assert_eq!(c.author().name(), Ok("George Bot"));
    assert_eq!(c.author().email(), Ok("george@example.com"));
    let message = c.message().unwrap();
    assert!(message.starts_with("Tune the nightly job\n"));
    assert!(message.contains(&format!("{IDEMPOTENCY_TRAILER}: job-1/step-1/1/0")));

    // The content is right, in Git and in the working tree, and `git status` is clean.
    assert_eq!(
        t.git(&["show", "main:apps/nightly.yaml"]),
        "kind: Job\nschedule: hourly\n"
    );
    assert_eq!(t.git(&["show", "main:apps/new/extra.yaml"]), "kind: Job\n");
    assert_eq!(
        t.worktree("apps/nightly.yaml").as_deref(),
        Some("kind: Job\nschedule: hourly\n")
    );
    assert_eq!(t.worktree("old.txt"), None);
    assert_eq!(t.git(&["status", "--porcelain"]), "");
    assert_eq!(
        t.git(&[
            "log",
            "-1",
            "--format=%(trailers:key=George-Idempotency-Key,valueonly)"
        ])
        .trim(),
        "job-1/step-1/1/0"
    );

    // The read tool sees the committed content.
    let r = read(&tool, "apps/nightly.yaml").await;
    assert!(!r.is_error);
    assert_eq!(r.content, "kind: Job\nschedule: hourly\n");
}

#[tokio::test]
async fn retried_call_does_not_commit_twice() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("1\n"))], "init");
    let tool = tool(&t);
    let args = json!({
        "message": "append",
        "changes": [{"path": "a.txt", "find": "1\n", "replace": "1\n2\n"}]
    });
    let first = commit(&tool, args.clone(), "job/s/1/3").await;
    assert!(!first.is_error, "{}", first.content);
    let head = t.head();

    // The same call again: same commit, nothing new (the `find` edit would otherwise fail
    // or apply twice).
    let again = commit(&tool, args.clone(), "job/s/1/3").await;
    assert!(!again.is_error, "{}", again.content);
    assert_eq!(commit_of(&again), commit_of(&first));
    assert_eq!(again.data.as_ref().unwrap()["replayed"], true);
    assert_eq!(again.data.as_ref().unwrap()["paths"], json!(["a.txt"]));
    assert_eq!(t.head(), head);

    // Still recognised after other commits landed on top.
    let other = commit(
        &tool,
        json!({"message": "other", "changes": [{"path": "b.txt", "content": "b"}]}),
        "job/s/1/4",
    )
    .await;
    assert!(!other.is_error);
    let third = commit(&tool, args.clone(), "job/s/1/3").await;
    assert_eq!(commit_of(&third), commit_of(&first));
    assert_eq!(t.git(&["rev-list", "--count", "main"]).trim(), "3");

    // A different key is a different call.
    let fresh = commit(
        &tool,
        json!({"message": "again", "changes": [{"path": "a.txt", "content": "x"}]}),
        "job/s/2/0",
    )
    .await;
    assert!(!fresh.is_error);
    assert_ne!(commit_of(&fresh), commit_of(&first));
    assert_eq!(t.git(&["status", "--porcelain"]), "");
}

#[tokio::test]
async fn replay_finishes_an_interrupted_worktree_update() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("old\n"))], "init");
    let tool = tool(&t);
    let args = json!({"message": "m", "changes": [{"path": "a.txt", "content": "new\n"}]});
    commit(&tool, args.clone(), "k/1").await;
    // Simulate a crash after the branch moved but before the working tree was written.
    std::fs::write(t.path().join("a.txt"), "old\n").unwrap();
    let mut index = t.repo.index().unwrap();
    let parent_tree = t
        .repo
        .find_commit(t.head())
        .unwrap()
        .parent(0)
        .unwrap()
        .tree()
        .unwrap();
    index.read_tree(&parent_tree).unwrap();
    index.write().unwrap();
    assert_ne!(t.git(&["status", "--porcelain"]), "");

    let replayed = commit(&tool, args, "k/1").await;
    assert_eq!(replayed.data.as_ref().unwrap()["replayed"], true);
    assert_eq!(t.worktree("a.txt").as_deref(), Some("new\n"));
    assert_eq!(t.git(&["status", "--porcelain"]), "");
}

#[tokio::test]
async fn bad_paths_are_error_results() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("1\n"))], "init");
    let tool = tool(&t);
    let head = t.head();
    for path in [
        "../outside.txt",
        "/etc/passwd",
        "a/../../x",
        ".git/config",
        "",
        "a//b",
    ] {
        let out = commit(
            &tool,
            json!({"message": "evil", "changes": [{"path": path, "content": "x"}]}),
            "k",
        )
        .await;
        assert!(out.is_error, "{path:?} should be refused");
        let r = read(&tool, path).await;
        assert!(r.is_error, "reading {path:?} should be refused");
    }
    assert_eq!(t.head(), head);
    assert!(!t.path().parent().unwrap().join("outside.txt").exists());
}

#[cfg(unix)]
#[tokio::test]
async fn symlinked_directories_in_the_working_tree_are_refused() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("1\n"))], "init");
    let outside = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(outside.path(), t.path().join("link")).unwrap();
    let out = commit(
        &tool(&t),
        json!({"message": "m", "changes": [{"path": "link/x.txt", "content": "x"}]}),
        "k",
    )
    .await;
    assert!(out.is_error, "{}", out.content);
    assert!(!outside.path().join("x.txt").exists());
}

#[tokio::test]
async fn replace_errors_are_results_and_commit_nothing() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("x = 1\nx = 1\ny = 2\n"))], "init");
    let tool = tool(&t);
    let head = t.head();
    let cases = [
        (
            json!({"path": "a.txt", "find": "z = 3", "replace": "z = 4"}),
            "not found",
        ),
        (
            json!({"path": "a.txt", "find": "x = 1", "replace": "x = 2"}),
            "2 times",
        ),
        (
            json!({"path": "missing.txt", "find": "a", "replace": "b"}),
            "does not exist",
        ),
        (
            json!({"path": "missing.txt", "delete": true}),
            "does not exist",
        ),
    ];
    for (change, needle) in cases {
        let out = commit(&tool, json!({"message": "m", "changes": [change]}), "k").await;
        assert!(out.is_error);
        assert!(out.content.contains(needle), "{}", out.content);
    }
    // Malformed arguments are error results too.
    for args in [
        json!({}),
        json!({"message": "m"}),
        json!({"message": "m", "changes": [{}]}),
    ] {
        assert!(commit(&tool, args, "k").await.is_error);
    }
    assert_eq!(t.head(), head);
    assert_eq!(t.git(&["status", "--porcelain"]), "");

    // A unique match works, and edits to one file apply in order.
    let out = commit(
        &tool,
        json!({"message": "m", "changes": [
            {"path": "a.txt", "find": "y = 2", "replace": "y = 3"},
            {"path": "a.txt", "find": "y = 3\n", "replace": "y = 3\nz = 4\n"}
        ]}),
        "k2",
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        t.git(&["show", "main:a.txt"]),
        "x = 1\nx = 1\ny = 3\nz = 4\n"
    );
}

#[tokio::test]
async fn reads_come_from_the_branch_head_not_the_working_tree() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("committed\n"))], "init");
    std::fs::write(t.path().join("a.txt"), "local edit\n").unwrap();
    std::fs::write(t.path().join("untracked.txt"), "x").unwrap();
    let tool = tool(&t);
    let r = read(&tool, "a.txt").await;
    assert_eq!(r.content, "committed\n");
    assert_eq!(
        r.data.as_ref().unwrap()["commit"],
        t.head().to_string().as_str()
    );
    assert!(read(&tool, "untracked.txt").await.is_error);
    assert!(read(&tool, "nope/x.txt").await.is_error);
    let missing = tool
        .call(ToolInvocation::new("git_read_file", json!({}), "k"))
        .await
        .unwrap();
    assert!(missing.is_error);
}

#[tokio::test]
async fn reads_are_limited_in_size_and_can_name_a_commit_branch_or_tag() {
    let t = TestRepo::new();
    let first = t.commit(&[("a.txt", Some("one\n"))], "init");
    t.git(&["tag", "v1"]);
    let big = "y".repeat(300 * 1024);
    t.commit(
        &[("a.txt", Some("two\n")), ("big.txt", Some(&big))],
        "second",
    );
    t.git(&["branch", "old", &first.to_string()]);
    let tool = tool(&t);
    let at = |r: &str| json!({"path": "a.txt", "ref": r});
    let call = |args: Value| tool.call(ToolInvocation::new(tool.read_tool_name(), args, "k"));
    assert_eq!(read(&tool, "a.txt").await.content, "two\n");
    let short = first.to_string()[..8].to_owned();
    for r in [first.to_string(), short, "v1".into(), "old".into()] {
        let out = call(at(&r)).await.unwrap();
        assert_eq!(out.content, "one\n", "{r}: {}", out.content);
        assert_eq!(out.data.unwrap()["commit"], first.to_string().as_str());
    }
    for bad in ["nope", "HEAD~1", "-x"] {
        assert!(call(at(bad)).await.unwrap().is_error, "{bad}");
    }
    let out = read(&tool, "big.txt").await;
    assert!(out.is_error);
    assert!(
        out.content.contains("307200 bytes") && out.content.contains("262144"),
        "{}",
        out.content
    );
    assert_eq!(out.data.unwrap()["max_bytes"], 262144);
    let roomy = tool.clone().with_max_read_bytes(512 * 1024);
    assert_eq!(read(&roomy, "big.txt").await.content.len(), big.len());
}

#[tokio::test]
async fn local_edits_to_a_changed_file_are_not_clobbered() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("1\n")), ("b.txt", Some("1\n"))], "init");
    std::fs::write(t.path().join("a.txt"), "human edit\n").unwrap();
    std::fs::write(t.path().join("b.txt"), "unrelated human edit\n").unwrap();
    let tool = tool(&t);
    let head = t.head();
    let refused = commit(
        &tool,
        json!({"message": "m", "changes": [{"path": "a.txt", "content": "agent\n"}]}),
        "k1",
    )
    .await;
    assert!(refused.is_error);
    assert!(
        refused.content.contains("uncommitted"),
        "{}",
        refused.content
    );
    assert_eq!(t.head(), head);
    assert_eq!(t.worktree("a.txt").as_deref(), Some("human edit\n"));

    // Other files' local edits do not block a change and are kept.
    std::fs::write(t.path().join("a.txt"), "1\n").unwrap();
    let ok = commit(
        &tool,
        json!({"message": "m", "changes": [{"path": "a.txt", "content": "agent\n"}]}),
        "k2",
    )
    .await;
    assert!(!ok.is_error, "{}", ok.content);
    assert_eq!(
        t.worktree("b.txt").as_deref(),
        Some("unrelated human edit\n")
    );
    assert_eq!(t.git(&["status", "--porcelain"]), " M b.txt\n");
}

#[tokio::test]
async fn other_branches_and_bare_repositories_leave_the_working_tree_alone() {
    let t = TestRepo::new();
    let base = t.commit(&[("a.txt", Some("1\n"))], "init");
    t.repo
        .branch("agents", &t.repo.find_commit(base).unwrap(), false)
        .unwrap();
    let on_branch =
        GitWriteTool::new(t.path(), "agents", GitAuthor::new("G", "g@example.com")).unwrap();
    let out = commit(
        &on_branch,
        json!({"message": "m", "changes": [{"path": "a.txt", "content": "2\n"}]}),
        "k",
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(t.git(&["show", "agents:a.txt"]), "2\n");
    assert_eq!(t.head(), base); // main did not move
    assert_eq!(t.worktree("a.txt").as_deref(), Some("1\n"));
    assert_eq!(t.git(&["status", "--porcelain"]), "");

    let bare = tempfile::tempdir().unwrap();
    let bare_repo = git2::build::RepoBuilder::new()
        .bare(true)
        .clone(t.path().to_str().unwrap(), bare.path())
        .unwrap();
    let bare_tool =
        GitWriteTool::new(bare.path(), "main", GitAuthor::new("G", "g@example.com")).unwrap();
    let out = commit(
        &bare_tool,
        json!({"message": "m", "changes": [{"path": "c.txt", "content": "c\n"}]}),
        "k",
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    let head = bare_repo.refname_to_id("refs/heads/main").unwrap();
    assert_eq!(commit_of(&out), head.to_string());
}

#[tokio::test]
async fn unchanged_content_commits_nothing() {
    let t = TestRepo::new();
    t.commit(&[("a.txt", Some("1\n"))], "init");
    let head = t.head();
    let out = commit(
        &tool(&t),
        json!({"message": "m", "changes": [{"path": "a.txt", "content": "1\n"}]}),
        "k",
    )
    .await;
    assert!(!out.is_error);
    assert_eq!(commit_of(&out), head.to_string());
    assert_eq!(out.data.as_ref().unwrap()["paths"], json!([]));
    assert_eq!(t.head(), head);
}

#[tokio::test]
async fn missing_branch_and_empty_repository() {
    let t = TestRepo::new();
    // Empty repository: the first commit creates the branch.
    let tool = tool(&t);
    let out = commit(
        &tool,
        json!({"message": "first", "changes": [{"path": "apps/a.yaml", "content": "kind: Job\n"}]}),
        "k",
    )
    .await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(commit_of(&out), t.head().to_string());
    assert_eq!(t.git(&["status", "--porcelain"]), "");

    // A branch that does not exist in a non-empty repository is an error result.
    let other = GitWriteTool::new(t.path(), "nope", GitAuthor::new("G", "g@example.com")).unwrap();
    let out = commit(
        &other,
        json!({"message": "m", "changes": [{"path": "x", "content": "x"}]}),
        "k",
    )
    .await;
    assert!(out.is_error);

    let err =
        GitWriteTool::new(t.path(), "bad..name", GitAuthor::new("G", "g@example.com")).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
}

#[tokio::test]
async fn concurrent_calls_all_land() {
    let t = TestRepo::new();
    t.commit(&[("seed.txt", Some("s\n"))], "init");
    let tool = tool(&t);
    let mut tasks = Vec::new();
    for i in 0..8 {
        let tool = tool.clone();
        tasks.push(tokio::spawn(async move {
            commit(
                &tool,
                json!({"message": format!("file {i}"), "changes": [{"path": format!("f{i}.txt"), "content": "x"}]}),
                &format!("k/{i}"),
            )
            .await
        }));
    }
    for task in tasks {
        assert!(!task.await.unwrap().is_error);
    }
    assert_eq!(t.git(&["rev-list", "--count", "main"]).trim(), "9");
    assert_eq!(t.git(&["status", "--porcelain"]), "");
}
