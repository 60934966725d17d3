//! Helpers for the remote write-tool tests: served bare repositories, clones made
//! with the real `git` program, and hooks that make the remote move mid-push.
#![allow(dead_code)]

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;

use george_core::tool::{ToolExecutor, ToolInvocation, ToolOutput};
use george_git::{GitAuthor, GitWriteTool, RemoteTarget};
use serde_json::Value;
use tempfile::TempDir;

/// Which server a test talks to.
#[derive(Debug, Clone, Copy)]
pub enum Server {
    /// `git daemon` with receive-pack (`GEORGE_TEST_GIT_DAEMON_URL`).
    Daemon,
    /// Smart HTTP via `git http-backend` (`GEORGE_TEST_GIT_HTTP_URL`).
    Http,
    /// Smart HTTP over TLS (`GEORGE_TEST_GIT_HTTPS_URL`), through the `git` program.
    Https,
    /// sshd (`GEORGE_TEST_GIT_SSH_URL`), through the `git` program.
    Ssh,
    /// No server: a `file://` URL.
    File,
}

/// A bare repository with one commit on `main`, reachable at `url`.
pub struct Remote {
    /// The bare repository on disk.
    pub bare: PathBuf,
    /// Its URL through the chosen server.
    pub url: String,
    /// Keeps the temporary folders (work clones, hook markers) alive.
    pub tmp: TempDir,
}

/// Runs `git` with `args` in `dir`, panicking with its stderr on failure.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .current_dir(dir)
        .args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("run git");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// The served root and base URL of `server`, or `None` (after saying so loudly on
/// the real stderr, and panicking under `CI`) when the environment does not name one.
fn served(server: Server, test: &str) -> Option<(PathBuf, Option<String>)> {
    let var = match server {
        Server::Daemon => "GEORGE_TEST_GIT_DAEMON_URL",
        Server::Http => "GEORGE_TEST_GIT_HTTP_URL",
        Server::Https => "GEORGE_TEST_GIT_HTTPS_URL",
        Server::Ssh => "GEORGE_TEST_GIT_SSH_URL",
        Server::File => return Some((PathBuf::new(), None)),
    };
    match (std::env::var("GEORGE_TEST_GIT_ROOT"), std::env::var(var)) {
        (Ok(root), Ok(url)) if !root.is_empty() && !url.is_empty() => {
            Some((PathBuf::from(root), Some(url)))
        }
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! {test}: NOT RUN — set GEORGE_TEST_GIT_ROOT and {var} (a served Git \
                 root; .ci/run starts the servers{}) !!!!!\n",
                match server {
                    Server::Https => " and sets GIT_SSL_CAINFO",
                    Server::Ssh => " and sets GIT_SSH_COMMAND",
                    _ => "",
                }
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: {var} must be set under CI"
            );
            None
        }
    }
}

/// A new bare repository served by `server`, with `files` committed on `main` by a
/// real `git` clone. `None` when the server is not configured.
pub fn remote(server: Server, test: &str, files: &[(&str, &str)]) -> Option<Remote> {
    let (root, base) = served(server, test)?;
    let tmp = tempfile::tempdir().expect("tempdir");
    let name = format!(
        "write-{test}-{}-{}.git",
        std::process::id(),
        fastrand_suffix()
    );
    let bare = match &base {
        Some(_) => root.join(&name),
        None => tmp.path().join(&name),
    };
    git(
        tmp.path(),
        &["init", "-q", "--bare", "-b", "main", path_str(&bare)],
    );
    git(&bare, &["config", "http.receivepack", "true"]);
    let url = match &base {
        Some(b) => format!("{}/{name}", b.trim_end_matches('/')),
        None => format!("file://{}", bare.display()),
    };
    let remote = Remote { bare, url, tmp };
    let seed = remote.clone_to("seed");
    for (path, content) in files {
        write_file(&seed, path, content);
    }
    git(&seed, &["add", "-A"]);
    commit_all(&seed, "Seed");
    git(&seed, &["push", "-q", "origin", "HEAD:main"]);
    Some(remote)
}

fn fastrand_suffix() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    use std::time::{SystemTime, UNIX_EPOCH};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos())
        .unwrap_or(0);
    format!("{nanos}-{}", NEXT.fetch_add(1, Ordering::Relaxed))
}

fn path_str(p: &Path) -> &str {
    p.to_str().expect("utf-8 path")
}

/// Writes `content` to `path` under `dir`, creating parents.
pub fn write_file(dir: &Path, path: &str, content: &str) {
    let file = dir.join(path);
    std::fs::create_dir_all(file.parent().expect("parent")).expect("mkdir");
    std::fs::write(file, content).expect("write");
}

/// Commits everything staged in `dir` as a human would.
pub fn commit_all(dir: &Path, message: &str) {
    git(
        dir,
        &[
            "-c",
            "user.name=Human",
            "-c",
            "user.email=human@example.com",
            "commit",
            "-q",
            "-m",
            message,
        ],
    );
}

impl Remote {
    /// A working clone (by path, no server) in the temporary folder.
    pub fn clone_to(&self, name: &str) -> PathBuf {
        let dir = self.tmp.path().join(name);
        git(
            self.tmp.path(),
            &["clone", "-q", path_str(&self.bare), path_str(&dir)],
        );
        dir
    }

    /// What `rev` resolves to in the bare repository.
    pub fn rev(&self, rev: &str) -> String {
        git(&self.bare, &["rev-parse", rev])
    }

    /// `git show <rev>:<path>` in the bare repository.
    pub fn show(&self, rev: &str, path: &str) -> String {
        git(&self.bare, &["show", &format!("{rev}:{path}")])
    }

    /// A write tool for `main` with a fresh work folder named `work`.
    pub fn tool(
        &self,
        work: &str,
        target: impl FnOnce(RemoteTarget) -> RemoteTarget,
    ) -> GitWriteTool {
        let t = target(RemoteTarget::new(&self.url, self.tmp.path().join(work)));
        GitWriteTool::remote(
            t,
            "main",
            GitAuthor::new("George Bot", "george@example.com"),
        )
        .expect("tool")
    }

    /// Installs a `pre-receive` hook that, on the first push only, lets another clone
    /// push `files` to `main` first (so the pushed update loses the race for the ref).
    pub fn race_once(&self, files: &[(&str, &str)]) -> PathBuf {
        let other = self.clone_to("racer");
        for (path, content) in files {
            write_file(&other, path, content);
        }
        git(&other, &["add", "-A"]);
        commit_all(&other, "A human's change");
        let marker = self.tmp.path().join("raced");
        let script = format!(
            "#!/bin/sh\ncat >/dev/null\nif mkdir '{marker}' 2>/dev/null; then\n  \
             env -u GIT_DIR -u GIT_QUARANTINE_PATH -u GIT_OBJECT_DIRECTORY \
             -u GIT_ALTERNATE_OBJECT_DIRECTORIES git -C '{other}' push -q origin HEAD:main >&2 \
             || exit 1\nfi\nexit 0\n",
            marker = marker.display(),
            other = other.display()
        );
        self.hook("pre-receive", &script);
        other
    }

    /// Installs an executable hook.
    pub fn hook(&self, name: &str, script: &str) {
        use std::os::unix::fs::PermissionsExt;
        let path = self.bare.join("hooks").join(name);
        std::fs::write(&path, script).expect("hook");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
    }

    /// How many commits on `rev` carry `key` in their message.
    pub fn commits_with(&self, rev: &str, key: &str) -> usize {
        git(
            &self.bare,
            &["log", "--format=%H", "--fixed-strings", "--grep", key, rev],
        )
        .lines()
        .count()
    }
}

/// Calls the commit tool.
pub async fn commit(tool: &GitWriteTool, args: Value, key: &str) -> ToolOutput {
    tool.call(ToolInvocation::new(tool.commit_tool_name(), args, key))
        .await
        .expect("commit call")
}

/// Calls the read tool.
pub async fn read(tool: &GitWriteTool, args: Value) -> ToolOutput {
    tool.call(ToolInvocation::new(tool.read_tool_name(), args, "k"))
        .await
        .expect("read call")
}

/// `data[field]` as a string.
pub fn data_str(out: &ToolOutput, field: &str) -> String {
    out.data.as_ref().expect("data")[field]
        .as_str()
        .unwrap_or_else(|| panic!("{field} in {:?}", out.data))
        .to_owned()
}
