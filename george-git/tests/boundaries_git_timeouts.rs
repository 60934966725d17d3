//! Git boundaries (issue 10 §4): a server that never answers cannot hang George. Each
//! fetch and push — by libgit2 and by the `git` program, for the source and the write
//! tool — fails with a transient `Timeout` within its limits.
//!
//! The "server" is a loopback listener that accepts connections and never sends a byte
//! (or a real server whose `pre-receive` hook sleeps). Each case runs on its own thread
//! under a hard limit, so that a missing timeout fails the test instead of hanging it.
//! This file is its own process: libgit2's socket timeouts are process-wide.

mod remote_support;
mod write_remote_support;

use std::net::TcpListener;
use std::sync::mpsc;
use std::time::{Duration, Instant};

use george_core::tool::{ToolExecutor, ToolInvocation};
use george_core::{Error, ErrorKind};
use george_git::{
    Follow, GitAuthor, GitWriteTool, Remote, RemoteConfig, RemoteGitSource, RemoteTarget, Transport,
};
use serde_json::json;

/// Far more than any configured limit below: reaching it means nothing timed out.
const HARD_LIMIT: Duration = Duration::from_secs(40);

/// A loopback port that accepts connections and never answers (nor closes them).
fn silent_server() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    std::thread::spawn(move || {
        let mut held = Vec::new();
        for stream in listener.incoming().flatten() {
            held.push(stream);
        }
    });
    port
}

/// Runs `f` on its own thread and runtime; panics if it has not returned within
/// [`HARD_LIMIT`] (the thread is then left behind, the test fails at once).
fn within<T, F>(what: &str, f: F) -> (T, Duration)
where
    T: Send + 'static,
    F: FnOnce() -> std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send>> + Send + 'static,
{
    let (tx, rx) = mpsc::channel();
    let start = Instant::now();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        let _ = tx.send(rt.block_on(f()));
    });
    match rx.recv_timeout(HARD_LIMIT) {
        Ok(v) => (v, start.elapsed()),
        Err(_) => panic!("{what}: still waiting after {HARD_LIMIT:?}: no timeout fired"),
    }
}

fn assert_timeout(what: &str, result: Result<(), Error>, took: Duration) {
    let err = result.expect_err(what);
    assert_eq!(err.kind(), ErrorKind::Timeout, "{what}: {err}");
    assert!(err.is_retryable(), "{what}: {err}");
    assert!(took < Duration::from_secs(20), "{what}: took {took:?}");
}

fn quick(url: String, transport: Transport, io: u64, deadline: u64) -> Remote {
    Remote::new(url)
        .with_transport(transport)
        .with_connect_timeout(Duration::from_secs(2))
        .with_io_timeout(Duration::from_secs(io))
        .with_deadline(Duration::from_secs(deadline))
}

/// A fetch by the source and by the write tool from a server that never answers.
fn fetches_time_out(scheme: &str, transport: Transport, io: u64, deadline: u64) {
    let port = silent_server();
    let url = format!("{scheme}://127.0.0.1:{port}/ops.git");
    let remote = quick(url.clone(), transport, io, deadline);
    let tmp = tempfile::tempdir().expect("tmp");
    let config = RemoteConfig::from_remote(remote.clone(), Follow::Branch("main".into()))
        .cache_root(tmp.path().join("cache"));
    let what = format!("fetching {url} with {transport:?}");
    let (result, took) = within(&what, move || {
        Box::pin(async move { RemoteGitSource::new(config)?.refresh().await.map(drop) })
    });
    assert_timeout(&what, result, took);

    let target = RemoteTarget::from_remote(remote, tmp.path().join("work"));
    let tool =
        GitWriteTool::remote(target, "main", GitAuthor::new("G", "g@example.com")).expect("tool");
    let what = format!("the write tool on {url} with {transport:?}");
    let (result, took) = within(&what, move || {
        Box::pin(async move {
            let args = json!({"message": "m", "changes": [{"path": "a.txt", "content": "a"}]});
            let call = ToolInvocation::new(tool.commit_tool_name(), args, "j/s/1/0");
            tool.call(call).await.map(drop)
        })
    });
    assert_timeout(&what, result, took);
}

#[test]
fn libgit2_over_http_gives_up_on_a_silent_server() {
    fetches_time_out("http", Transport::Auto, 1, 30);
}

#[test]
fn libgit2_over_git_protocol_gives_up_on_a_silent_server() {
    fetches_time_out("git", Transport::Auto, 1, 30);
}

#[test]
fn the_git_program_gives_up_on_a_silent_server_by_its_low_speed_limit() {
    fetches_time_out("http", Transport::GitProgram, 1, 30);
}

#[test]
fn the_git_program_is_killed_at_the_deadline() {
    fetches_time_out("http", Transport::GitProgram, 60, 2);
    fetches_time_out("https", Transport::GitProgram, 60, 2);
}

/// A push whose `pre-receive` hook never finishes: the write tool gives up, and the
/// remote branch does not move.
fn push_times_out(
    bare: std::path::PathBuf,
    url: String,
    transport: Transport,
    work: std::path::PathBuf,
) {
    let hook = bare.join("hooks/pre-receive");
    std::fs::write(&hook, "#!/bin/sh\nsleep 30\nexit 1\n").expect("hook");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(&hook, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    let before = write_remote_support::git(&bare, &["rev-parse", "main"]);
    let remote = quick(url.clone(), transport, 1, 3);
    let target = RemoteTarget::from_remote(remote, work);
    let tool =
        GitWriteTool::remote(target, "main", GitAuthor::new("G", "g@example.com")).expect("tool");
    let what = format!("pushing to {url} with {transport:?}");
    let (result, took) = within(&what, move || {
        Box::pin(async move {
            let args = json!({"message": "m", "changes": [{"path": "a.txt", "content": "a"}]});
            let call = ToolInvocation::new(tool.commit_tool_name(), args, "j/s/1/0");
            tool.call(call).await.map(drop)
        })
    });
    assert_timeout(&what, result, took);
    let after = write_remote_support::git(&bare, &["rev-parse", "main"]);
    assert_eq!(after, before, "{what}: nothing landed");
}

#[test]
fn a_push_the_server_never_acknowledges_times_out_with_the_git_program() {
    let Some(r) = write_remote_support::remote(
        write_remote_support::Server::File,
        "push_hangs",
        &[("README.md", "x\n")],
    ) else {
        return;
    };
    let work = r.tmp.path().join("work");
    push_times_out(r.bare.clone(), r.url.clone(), Transport::GitProgram, work);
}

#[test]
fn a_push_the_server_never_acknowledges_times_out_with_libgit2() {
    let root = tempfile::tempdir().expect("root");
    let name = remote_support::bare(root.path(), "push_hangs");
    let seed = remote_support::Work::new(&root.path().join(&name).display().to_string());
    seed.commit_push(&[("README.md", Some("x\n"))], "seed");
    let daemon = remote_support::Daemon::start(root.path());
    let url = format!("{}/{name}", daemon.url());
    let work = root.path().join("work");
    push_times_out(root.path().join(&name), url, Transport::Auto, work);
    drop(daemon);
}
