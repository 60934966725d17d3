//! Helpers of the remote tests: the git servers `.ci/run` starts (found through
//! environment variables), bare repositories on them, working copies that push, and a
//! private `git daemon` a test can stop and restart.
#![allow(dead_code, unreachable_pub)]

use std::io::Write as _;
use std::net::TcpListener;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use tempfile::TempDir;

/// The servers `.ci/run` starts.
#[derive(Debug, Clone)]
pub struct Servers {
    /// The served folder (`GEORGE_TEST_GIT_ROOT`).
    pub root: PathBuf,
    /// `git://127.0.0.1:<port>` (`GEORGE_TEST_GIT_DAEMON_URL`).
    pub daemon: String,
    /// `http://127.0.0.1:<port>/git` (`GEORGE_TEST_GIT_HTTP_URL`).
    pub http: String,
}

/// The servers, or `None` after saying LOUDLY that the calling test did not run
/// (and panicking under `CI`, where they must be there).
pub fn servers(test: &str) -> Option<Servers> {
    let var = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    match (
        var("GEORGE_TEST_GIT_ROOT"),
        var("GEORGE_TEST_GIT_DAEMON_URL"),
        var("GEORGE_TEST_GIT_HTTP_URL"),
    ) {
        (Some(root), Some(daemon), Some(http)) => Some(Servers {
            root: PathBuf::from(root),
            daemon: daemon.trim_end_matches('/').to_owned(),
            http: http.trim_end_matches('/').to_owned(),
        }),
        _ => {
            let _ = writeln!(
                std::io::stderr(),
                "\n!!!!! {test} DID NOT RUN: set GEORGE_TEST_GIT_ROOT, GEORGE_TEST_GIT_DAEMON_URL \
                 and GEORGE_TEST_GIT_HTTP_URL (.ci/run starts git daemon and git http-backend) !!!!!\n"
            );
            assert!(
                std::env::var_os("CI").is_none(),
                "{test}: the git servers are required under CI"
            );
            None
        }
    }
}

/// The served root and the base URL in `var` (`GEORGE_TEST_GIT_HTTPS_URL`,
/// `GEORGE_TEST_GIT_SSH_URL`: transports the `git` program serves, trusting the test
/// certificate and key through `GIT_SSL_CAINFO` / `GIT_SSH_COMMAND`), or `None` after
/// saying LOUDLY that the calling test did not run (and panicking under `CI`).
pub fn served_by(var: &str, test: &str) -> Option<(PathBuf, String)> {
    let get = |n: &str| std::env::var(n).ok().filter(|v| !v.is_empty());
    if let (Some(root), Some(url)) = (get("GEORGE_TEST_GIT_ROOT"), get(var)) {
        return Some((PathBuf::from(root), url.trim_end_matches('/').to_owned()));
    }
    let _ = writeln!(
        std::io::stderr(),
        "\n!!!!! {test} DID NOT RUN: set GEORGE_TEST_GIT_ROOT and {var} (.ci/run starts \
         lighttpd with TLS and sshd, and sets GIT_SSL_CAINFO and GIT_SSH_COMMAND) !!!!!\n"
    );
    assert!(
        std::env::var_os("CI").is_none(),
        "{test}: {var} is required under CI"
    );
    None
}

/// Runs `git` in `dir` with a fixed identity and no user or system configuration;
/// returns its trimmed standard output.
pub fn git(dir: &Path, args: &[&str]) -> String {
    let out = Command::new("git")
        .args(["-c", "user.name=Test", "-c", "user.email=test@example.com"])
        .args([
            "-c",
            "commit.gpgsign=false",
            "-c",
            "init.defaultBranch=main",
        ])
        .args(args)
        .current_dir(dir)
        .env("GIT_CONFIG_NOSYSTEM", "1")
        .env("GIT_CONFIG_GLOBAL", "/dev/null")
        .env("GIT_TERMINAL_PROMPT", "0")
        .output()
        .expect("the git program runs");
    assert!(
        out.status.success(),
        "git {args:?} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).trim().to_owned()
}

/// A name no other test (or earlier run) uses.
pub fn unique(name: &str) -> String {
    static N: AtomicU32 = AtomicU32::new(0);
    let nanos = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.subsec_nanos());
    format!(
        "{name}-{}-{nanos}-{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    )
}

/// Creates the bare repository `<root>/<unique name>.git` (HEAD `main`, pushes over
/// HTTP allowed) and returns its file name.
pub fn bare(root: &Path, name: &str) -> String {
    let file = format!("{}.git", unique(name));
    git(root, &["init", "-q", "--bare", "-b", "main", &file]);
    git(&root.join(&file), &["config", "http.receivepack", "true"]);
    file
}

/// A working copy that commits and pushes to one URL.
pub struct Work {
    pub dir: TempDir,
    pub push_url: String,
}

impl Work {
    /// An empty repository (branch `main`) pushing to `push_url`.
    pub fn new(push_url: &str) -> Work {
        let dir = tempfile::tempdir().expect("tempdir");
        git(dir.path(), &["init", "-q", "-b", "main"]);
        Work {
            dir,
            push_url: push_url.to_owned(),
        }
    }

    /// Writes (`Some`) or removes (`None`) files, commits them, returns the commit id.
    pub fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        for (path, content) in files {
            let full = self.dir.path().join(path);
            match content {
                Some(c) => {
                    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&full, c).expect("write");
                }
                None => std::fs::remove_file(&full).expect("rm"),
            }
        }
        git(self.dir.path(), &["add", "-A"]);
        git(self.dir.path(), &["commit", "-q", "-m", message]);
        git(self.dir.path(), &["rev-parse", "HEAD"])
    }

    /// Pushes `refspec` (e.g. `main`, `+refs/tags/v1`) to the push URL.
    pub fn push(&self, refspec: &str) {
        git(self.dir.path(), &["push", "-q", &self.push_url, refspec]);
    }

    /// Commits and pushes `main`.
    pub fn commit_push(&self, files: &[(&str, Option<&str>)], message: &str) -> String {
        let id = self.commit(files, message);
        self.push("main");
        id
    }
}

/// A `git daemon` owned by one test, serving `root` on a fixed port; it can be stopped
/// (the remote becomes unreachable) and started again on the same port.
pub struct Daemon {
    pub root: PathBuf,
    pub port: u16,
    child: Option<Child>,
}

impl Daemon {
    /// Starts a daemon on a free port.
    pub fn start(root: &Path) -> Daemon {
        let port = TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let mut d = Daemon {
            root: root.to_path_buf(),
            port,
            child: None,
        };
        d.restart();
        d
    }

    /// `git://127.0.0.1:<port>`.
    pub fn url(&self) -> String {
        format!("git://127.0.0.1:{}", self.port)
    }

    /// (Re)starts the daemon and waits until it accepts connections.
    pub fn restart(&mut self) {
        self.stop();
        // The daemon binary itself: `git daemon` would run it as a child, which killing
        // `git` would leave behind.
        let exec_path = git(&self.root, &["--exec-path"]);
        let child = Command::new(Path::new(&exec_path).join("git-daemon"))
            .arg("--reuseaddr")
            .arg("--listen=127.0.0.1")
            .arg(format!("--port={}", self.port))
            .arg(format!("--base-path={}", self.root.display()))
            .args(["--export-all", "--enable=receive-pack"])
            .arg(&self.root)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("git daemon starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "git daemon did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Stops the daemon (and waits for it).
    pub fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Waits until `rx` holds `want` (at most `limit`).
pub async fn wait_for_head(
    rx: &mut tokio::sync::watch::Receiver<Option<george_core::git::CommitId>>,
    want: &str,
    limit: Duration,
) -> bool {
    tokio::time::timeout(limit, async {
        loop {
            if rx.borrow_and_update().as_ref().map(|c| c.as_str()) == Some(want) {
                return;
            }
            if rx.changed().await.is_err() {
                return;
            }
        }
    })
    .await
    .is_ok()
}
