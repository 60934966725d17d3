//! Fetch and push by running the `git` program (`https://`, `ssh://`,
//! `user@host:path`): the user's `ssh-agent`, `known_hosts`, proxies and CA bundle
//! work as for `git` itself.
//!
//! Each call runs `git` in its own process group, with no terminal prompt, standard
//! input closed, `http.lowSpeedLimit=1` / `http.lowSpeedTime=<idle timeout>`, and is
//! killed — with its helpers (`git-remote-https`, `ssh`) — past the deadline. With a
//! token of George's the credential helper list is **reset** (`-c credential.helper=`)
//! and one helper answers from the child's environment (`GEORGE_GIT_USERNAME`,
//! `GEORGE_GIT_PASSWORD`): the token is on no command line, and no helper of the
//! user's is asked, told, or asked to store it. `GIT_CONFIG_PARAMETERS` and
//! `GIT_CONFIG_COUNT` are then dropped from the child's environment too, so that no
//! inherited configuration adds a helper back.

use std::io::Read;
use std::path::Path;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use george_core::{Error, Result};
use git2::Repository;

use super::credentials::{Secrets, is_auth_failure};
use super::failure::{Failure, error};
use super::remote::Remote;
use super::spec::{FetchSpec, PushOutcome};
use super::url::scrub;

/// The credential helper given to `git` when George has a token: it answers `get`
/// from its environment, and says nothing for a plain `http://` URL (a redirect
/// included) unless `GEORGE_GIT_ALLOW_HTTP=1`.
const ENV_HELPER: &str = "!f() { test \"$1\" = get || exit 0; \
    while IFS= read -r line; do case \"$line\" in protocol=http) \
    test \"$GEORGE_GIT_ALLOW_HTTP\" = 1 || exit 0;; esac; done; \
    printf 'username=%s\\npassword=%s\\n' \"$GEORGE_GIT_USERNAME\" \"$GEORGE_GIT_PASSWORD\"; }; f";

/// At most this much of each output stream is kept.
const MAX_OUTPUT: usize = 1 << 20;

/// Fetches `spec` into the repository.
pub(super) fn fetch(
    remote: &Remote,
    secrets: &Secrets,
    repo: &Repository,
    spec: &FetchSpec,
) -> Result<()> {
    let mut args = vec![
        "fetch".to_owned(),
        "--quiet".to_owned(),
        "--no-tags".to_owned(),
        "--no-write-fetch-head".to_owned(),
    ];
    if spec.prune {
        args.push("--prune".to_owned());
    }
    if let Some(d) = spec.depth {
        args.push(format!("--depth={d}"));
    }
    args.extend(["--".to_owned(), remote.url.clone()]);
    args.extend(spec.refspecs.iter().cloned());
    let out = run(remote, secrets, repo.path(), &args)?;
    if out.status.success() && !out.timed_out {
        return Ok(());
    }
    Err(failed("fetching from", remote, secrets, &out))
}

/// Pushes `refspec`; a refusal by the remote is [`PushOutcome::Rejected`].
pub(super) fn push(
    remote: &Remote,
    secrets: &Secrets,
    repo: &Repository,
    refspec: &str,
) -> Result<PushOutcome> {
    let args = ["push", "--porcelain", "--", remote.url.as_str(), refspec].map(str::to_owned);
    let out = run(remote, secrets, repo.path(), &args)?;
    if !out.timed_out {
        // Porcelain lines: `<flag>\t<from>:<to>\t<summary> (<reason>)`; `!` = rejected.
        for line in String::from_utf8_lossy(&out.stdout).lines() {
            let mut fields = line.split('\t');
            if let (Some("!"), Some(_), Some(summary)) =
                (fields.next(), fields.next(), fields.next())
            {
                return Ok(PushOutcome::Rejected(scrub(summary, &secrets.values())));
            }
        }
        if out.status.success() {
            return Ok(PushOutcome::Pushed);
        }
    }
    Err(failed("pushing to", remote, secrets, &out))
}

/// What a `git` run left.
struct Output {
    status: ExitStatus,
    stdout: Vec<u8>,
    stderr: Vec<u8>,
    /// Killed at the deadline.
    timed_out: bool,
}

fn failed(what: &str, remote: &Remote, secrets: &Secrets, out: &Output) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lower = stderr.to_ascii_lowercase();
    let (failure, detail) = if out.timed_out {
        let secs = remote.deadline.as_secs_f64();
        let detail = format!("git was stopped at the deadline of {secs} s: {stderr}");
        (Failure::Timeout, detail)
    } else if ["too slow", "timed out", "timeout"]
        .iter()
        .any(|n| lower.contains(n))
    {
        (Failure::Timeout, format!("git {}: {stderr}", out.status))
    } else if is_auth_failure(&stderr) {
        (Failure::Auth, format!("git {}: {stderr}", out.status))
    } else {
        (Failure::Other, format!("git {}: {stderr}", out.status))
    };
    error(failure, what, remote, &detail, &secrets.values())
}

/// Runs `git --git-dir <git_dir> <args>` as described in the module docs.
fn run(remote: &Remote, secrets: &Secrets, git_dir: &Path, args: &[String]) -> Result<Output> {
    let mut cmd = Command::new(&remote.git_program);
    let low_speed_time = remote.io_timeout.as_secs().max(1);
    cmd.arg("--git-dir")
        .arg(git_dir)
        .args(["-c", "http.lowSpeedLimit=1", "-c"])
        .arg(format!("http.lowSpeedTime={low_speed_time}"));
    if let Some(token) = &secrets.token {
        cmd.args(["-c", "credential.helper=", "-c"])
            .arg(format!("credential.helper={ENV_HELPER}"))
            .env("GEORGE_GIT_USERNAME", &secrets.username)
            .env("GEORGE_GIT_PASSWORD", token)
            .env(
                "GEORGE_GIT_ALLOW_HTTP",
                if remote.allow_insecure_http { "1" } else { "0" },
            )
            .env_remove("GIT_CONFIG_PARAMETERS")
            .env_remove("GIT_CONFIG_COUNT");
    }
    cmd.args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(&mut cmd, 0);
    let mut child = cmd.spawn().map_err(|e| {
        Error::backend(format!(
            "could not run {} for {}: {e}",
            remote.git_program.display(),
            remote.redacted_url()
        ))
        .with_source(e)
    })?;
    let stdout = drain(child.stdout.take());
    let stderr = drain(child.stderr.take());
    let (status, timed_out) = wait_until(&mut child, Instant::now() + remote.deadline)?;
    Ok(Output {
        status,
        stdout: stdout.join().unwrap_or_default(),
        stderr: stderr.join().unwrap_or_default(),
        timed_out,
    })
}

/// Reads a child's output stream to its end on a thread, keeping [`MAX_OUTPUT`].
fn drain(stream: Option<impl Read + Send + 'static>) -> JoinHandle<Vec<u8>> {
    std::thread::spawn(move || {
        let mut kept = Vec::new();
        let Some(mut stream) = stream else {
            return kept;
        };
        let mut buf = [0u8; 8192];
        while let Ok(n @ 1..) = stream.read(&mut buf) {
            let room = MAX_OUTPUT.saturating_sub(kept.len());
            kept.extend_from_slice(&buf[..n.min(room)]);
        }
        kept
    })
}

/// Waits for `child`, killing its process group at `deadline`; `true` if killed.
fn wait_until(child: &mut Child, deadline: Instant) -> Result<(ExitStatus, bool)> {
    let io = |e: std::io::Error| Error::backend(format!("waiting for git: {e}")).with_source(e);
    let mut pause = Duration::from_millis(2);
    loop {
        if let Some(status) = child.try_wait().map_err(io)? {
            return Ok((status, false));
        }
        if Instant::now() >= deadline {
            kill_group(child);
            return Ok((child.wait().map_err(io)?, true));
        }
        std::thread::sleep(pause);
        pause = (pause * 2).min(Duration::from_millis(50));
    }
}

/// Kills `child` and everything in its process group (its own, from `process_group(0)`).
fn kill_group(child: &mut Child) {
    #[cfg(unix)]
    if let Ok(pgid) = libc::pid_t::try_from(child.id()) {
        // SAFETY: `killpg` has no memory-safety preconditions; the group is the
        // child's own (it was spawned with `process_group(0)` and not yet reaped).
        unsafe {
            libc::killpg(pgid, libc::SIGKILL);
        }
    }
    let _ = child.kill();
}
