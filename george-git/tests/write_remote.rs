//! `GitWriteTool` over remote repositories served by a real `git daemon`, a real
//! smart-HTTP server (`git http-backend`, over http:// and https://) and sshd, and over
//! `file://`: push, rebase and retry when the remote moved meanwhile, conflicts that
//! push nothing, change branches, and the read tool's size limit and reads at a commit.

mod write_remote_support;

use george_core::tool::ToolExecutor;
use george_git::{BranchMode, Transport};
use serde_json::json;
use write_remote_support::{Remote, Server, commit, data_str, read, remote};

const JOB: &str = "kind: Job\nname: nightly\nschedule: \"0 2 * * *\"\nretries: 1\n";

fn seeded(server: Server, test: &str) -> Option<Remote> {
    remote(
        server,
        test,
        &[("apps/nightly.yaml", JOB), ("README.md", "ops\n")],
    )
}

fn raise_retries() -> serde_json::Value {
    json!({
        "message": "Raise the nightly job's retries",
        "changes": [{"path": "apps/nightly.yaml", "find": "retries: 1", "replace": "retries: 3"}]
    })
}

/// A plain push, its commit (author, job and step trailers), and a retried call with
/// the same key through a fresh work clone that finds the pushed commit.
async fn plain_push(server: Server, transport: Transport, test: &str) {
    let Some(r) = seeded(server, test) else {
        return;
    };
    let before = r.rev("main");
    let tool = r.tool("work", |t| t.with_transport(transport));
    let key = "nightly/tune/1/0";
    let out = commit(&tool, raise_retries(), key).await;
    assert!(!out.is_error, "{}", out.content);
    let pushed = data_str(&out, "commit");
    assert_eq!(
        r.rev("main"),
        pushed,
        "the remote branch moved to the commit"
    );
    assert_eq!(r.rev("main~1"), before);
    assert!(r.show("main", "apps/nightly.yaml").contains("retries: 3"));
    let meta = write_remote_support::git(&r.bare, &["log", "-1", "--format=%an <%ae>%n%B", "main"]);
    assert!(
        meta.starts_with("George Bot <george@example.com>\nRaise the nightly job's retries"),
        "{meta}"
    );
    for line in [
        "George-Job: nightly",
        "George-Step: tune",
        "George-Idempotency-Key: nightly/tune/1/0",
    ] {
        assert!(meta.contains(line), "{line} in {meta}");
    }
    assert_eq!(out.data.as_ref().unwrap()["attempts"], 1);

    // The same call again, even from another work folder: no second commit.
    let again = r.tool("work2", |t| t.with_transport(transport));
    let out = commit(&again, raise_retries(), key).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        out.data.as_ref().unwrap()["replayed"],
        true,
        "{}",
        out.content
    );
    assert_eq!(data_str(&out, "commit"), pushed);
    assert_eq!(r.rev("main"), pushed);
    assert_eq!(r.commits_with("main", key), 1);
}

#[tokio::test]
async fn pushes_over_git_daemon() {
    plain_push(Server::Daemon, Transport::Auto, "push_daemon").await;
}

#[tokio::test]
async fn pushes_over_smart_http() {
    plain_push(Server::Http, Transport::Auto, "push_http").await;
}

#[tokio::test]
async fn pushes_over_https() {
    plain_push(Server::Https, Transport::Auto, "push_https").await;
}

#[tokio::test]
async fn pushes_over_ssh() {
    plain_push(Server::Ssh, Transport::Auto, "push_ssh").await;
}

#[tokio::test]
async fn pushes_over_file_urls_with_libgit2_and_the_git_program() {
    plain_push(Server::File, Transport::Auto, "push_file").await;
    plain_push(Server::File, Transport::GitProgram, "push_file_program").await;
}

#[tokio::test]
async fn pushes_over_smart_http_with_the_git_program() {
    plain_push(Server::Http, Transport::GitProgram, "push_http_program").await;
}

/// Another clone pushes an unrelated change while the tool pushes: the tool fetches,
/// rebases its commit on the new head and pushes again.
async fn rebase_and_retry(server: Server, transport: Transport, test: &str) {
    let Some(r) = seeded(server, test) else {
        return;
    };
    let tool = r.tool("work", |t| t.with_transport(transport));
    let other = r.race_once(&[("apps/weekly.yaml", "kind: Job\nname: weekly\n")]);
    let theirs = write_remote_support::git(&other, &["rev-parse", "HEAD"]);
    let key = "nightly/tune/1/0";
    let out = commit(&tool, raise_retries(), key).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(out.data.as_ref().unwrap()["attempts"], 2, "{}", out.content);
    let ours = data_str(&out, "commit");
    assert_eq!(r.rev("main"), ours);
    assert_eq!(
        r.rev("main~1"),
        theirs,
        "rebased onto the other clone's commit"
    );
    assert!(r.show("main", "apps/nightly.yaml").contains("retries: 3"));
    assert_eq!(
        r.show("main", "apps/weekly.yaml"),
        "kind: Job\nname: weekly"
    );
    assert_eq!(r.commits_with("main", key), 1, "one commit by the agent");
    let paths = &out.data.as_ref().unwrap()["paths"];
    assert_eq!(*paths, json!(["apps/nightly.yaml"]));
}

#[tokio::test]
async fn remote_moved_meanwhile_over_git_daemon() {
    rebase_and_retry(Server::Daemon, Transport::Auto, "race_daemon").await;
}

#[tokio::test]
async fn remote_moved_meanwhile_over_smart_http() {
    rebase_and_retry(Server::Http, Transport::Auto, "race_http").await;
}

#[tokio::test]
async fn remote_moved_meanwhile_over_https() {
    rebase_and_retry(Server::Https, Transport::Auto, "race_https").await;
}

#[tokio::test]
async fn remote_moved_meanwhile_over_ssh() {
    rebase_and_retry(Server::Ssh, Transport::Auto, "race_ssh").await;
}

#[tokio::test]
async fn remote_moved_meanwhile_with_the_git_program() {
    rebase_and_retry(Server::File, Transport::GitProgram, "race_file_program").await;
}

/// The other clone changed the same line: a clear failure naming the file, and the
/// remote keeps exactly the other clone's commit.
async fn conflict(server: Server, transport: Transport, test: &str) {
    let Some(r) = seeded(server, test) else {
        return;
    };
    let tool = r.tool("work", |t| t.with_transport(transport));
    let other = r.race_once(&[(
        "apps/nightly.yaml",
        &JOB.replace("retries: 1", "retries: 5"),
    )]);
    let theirs = write_remote_support::git(&other, &["rev-parse", "HEAD"]);
    let key = "nightly/tune/1/0";
    let out = commit(&tool, raise_retries(), key).await;
    assert!(out.is_error, "{}", out.content);
    assert!(
        out.content.contains("`apps/nightly.yaml`"),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("nothing was pushed"),
        "{}",
        out.content
    );
    let data = out.data.as_ref().expect("data");
    assert_eq!(data["conflicts"], json!(["apps/nightly.yaml"]));
    assert_eq!(data["pushed"], false);
    assert_eq!(r.rev("main"), theirs, "the remote is unchanged by the tool");
    assert_eq!(
        r.commits_with("--all", key),
        0,
        "no commit of the agent anywhere"
    );
    let refs = write_remote_support::git(&r.bare, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(refs, "refs/heads/main");
}

#[tokio::test]
async fn conflict_fails_cleanly_over_git_daemon() {
    conflict(Server::Daemon, Transport::Auto, "conflict_daemon").await;
}

#[tokio::test]
async fn conflict_fails_cleanly_over_smart_http() {
    conflict(Server::Http, Transport::Auto, "conflict_http").await;
}

#[tokio::test]
async fn conflict_fails_cleanly_with_the_git_program() {
    conflict(Server::File, Transport::GitProgram, "conflict_file_program").await;
}

#[tokio::test]
async fn a_rejection_that_is_not_a_race_is_reported() {
    let Some(r) = seeded(Server::Daemon, "declined") else {
        return;
    };
    r.hook(
        "pre-receive",
        "#!/bin/sh\necho 'main is frozen' >&2\nexit 1\n",
    );
    let before = r.rev("main");
    let tool = r.tool("work", |t| t);
    let out = commit(&tool, raise_retries(), "nightly/tune/1/0").await;
    assert!(out.is_error, "{}", out.content);
    assert!(out.content.contains("rejected the push"), "{}", out.content);
    assert_eq!(r.rev("main"), before);
}

#[tokio::test]
async fn branch_mode_pushes_a_step_branch_and_leaves_main_alone() {
    let Some(r) = seeded(Server::Daemon, "branch_mode") else {
        return;
    };
    let main = r.rev("main");
    let tool = r.tool("work", |t| t.with_branch_mode(BranchMode::per_step()));
    let out = commit(&tool, raise_retries(), "nightly/tune/1/0").await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(data_str(&out, "branch"), "george/nightly/tune");
    assert_eq!(data_str(&out, "target_branch"), "main");
    assert!(
        out.content.contains("`george/nightly/tune`"),
        "{}",
        out.content
    );
    let first = data_str(&out, "commit");
    assert_eq!(r.rev("george/nightly/tune"), first);
    assert_eq!(r.rev("george/nightly/tune~1"), main, "based on main");
    assert_eq!(r.rev("main"), main, "main unchanged");

    // A second change of the same step adds to the branch; a retry replays.
    let second = json!({"message": "Document it", "changes": [{"path": "README.md", "content": "ops, tuned\n"}]});
    let out = commit(&tool, second.clone(), "nightly/tune/1/1").await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(r.rev("george/nightly/tune~1"), first);
    let out = commit(&tool, second, "nightly/tune/1/1").await;
    assert_eq!(
        out.data.as_ref().unwrap()["replayed"],
        true,
        "{}",
        out.content
    );
    assert_eq!(r.rev("main"), main);
    assert!(r.show("george/nightly/tune", "README.md").contains("tuned"));

    // Reading the change branch by name.
    let got = read(
        &tool,
        json!({"path": "README.md", "ref": "george/nightly/tune"}),
    )
    .await;
    assert_eq!(got.content, "ops, tuned\n");
}

#[tokio::test]
async fn reads_with_a_size_limit_and_at_a_commit() {
    let big = "x".repeat(300 * 1024);
    let Some(r) = remote(
        Server::Daemon,
        "reads",
        &[("apps/nightly.yaml", JOB), ("big.txt", &big)],
    ) else {
        return;
    };
    let first = r.rev("main");
    let seed = r.clone_to("human");
    write_remote_support::write_file(
        &seed,
        "apps/nightly.yaml",
        "kind: Job\nname: nightly\nretries: 9\n",
    );
    write_remote_support::git(&seed, &["add", "-A"]);
    write_remote_support::commit_all(&seed, "Tune");
    write_remote_support::git(&seed, &["tag", "v1", &first]);
    write_remote_support::git(&seed, &["push", "-q", "origin", "HEAD:main", "v1"]);

    let tool = r.tool("work", |t| t);
    let out = read(&tool, json!({"path": "big.txt"})).await;
    assert!(out.is_error);
    assert!(
        out.content.contains(&format!("{} bytes", 300 * 1024)),
        "{}",
        out.content
    );
    assert!(out.content.contains("262144"), "{}", out.content);
    let tool = tool.with_max_read_bytes(400 * 1024);
    assert_eq!(
        read(&tool, json!({"path": "big.txt"})).await.content.len(),
        big.len()
    );

    let head = read(&tool, json!({"path": "apps/nightly.yaml"})).await;
    assert!(head.content.contains("retries: 9"), "{}", head.content);
    for at in [
        first.clone(),
        first[..10].to_owned(),
        "v1".to_owned(),
        "main~1".to_owned(),
    ] {
        let out = read(&tool, json!({"path": "apps/nightly.yaml", "ref": at})).await;
        if at == "main~1" {
            assert!(
                out.is_error,
                "revision expressions are refused: {}",
                out.content
            );
            continue;
        }
        assert!(!out.is_error, "{at}: {}", out.content);
        assert_eq!(out.content, JOB, "{at}");
        assert_eq!(data_str(&out, "commit"), first);
    }
    let out = read(
        &tool,
        json!({"path": "apps/nightly.yaml", "ref": "no-such-branch"}),
    )
    .await;
    assert!(
        out.is_error && out.content.contains("no-such-branch"),
        "{}",
        out.content
    );
}

#[tokio::test]
async fn credentials_never_reach_messages() {
    let tmp = tempfile::tempdir().unwrap();
    // Nothing listens on port 9 of loopback: the fetch fails.
    let url = "http://bot:hunter2secret@127.0.0.1:9/ops.git";
    // A password over plain http:// needs the operator's consent (see boundaries_git.rs).
    let remote = george_git::Remote::new(url).with_allow_insecure_http(true);
    let target = george_git::RemoteTarget::from_remote(remote, tmp.path().join("work"));
    assert!(!target.redacted_url().contains("hunter2secret"));
    let tool = george_git::GitWriteTool::remote(
        target,
        "main",
        george_git::GitAuthor::new("George", "george@example.com"),
    )
    .unwrap();
    let err = tool
        .call(george_core::tool::ToolInvocation::new(
            tool.commit_tool_name(),
            raise_retries(),
            "j/s/1/0",
        ))
        .await
        .unwrap_err();
    let text = format!("{err} {err:?}");
    assert!(!text.contains("hunter2secret"), "{text}");
    assert!(err.is_retryable(), "{text}");
}
