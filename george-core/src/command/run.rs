//! Running one child: a cleared environment, its own process group (killed whole on
//! timeout and after the child exits), and output read incrementally under a byte cap.

use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncRead, AsyncReadExt};

use super::CommandOutput;
use crate::error::{Error, ErrorKind, Result};

/// What the executor gives one child.
pub(super) struct Launch<'a> {
    pub(super) program: &'a str,
    pub(super) args: &'a [String],
    pub(super) env: &'a std::collections::BTreeMap<String, String>,
    pub(super) cwd: Option<&'a PathBuf>,
    pub(super) timeout: Duration,
    pub(super) cap: usize,
}

/// Reads `stream` to its end, keeping at most `cap` bytes; returns them and whether
/// anything was dropped. Memory stays bounded by `cap` plus one 8 KiB buffer whatever
/// the child prints.
async fn read_capped<R: AsyncRead + Unpin>(stream: Option<R>, cap: usize) -> (Vec<u8>, bool) {
    let mut kept = Vec::new();
    let mut dropped = false;
    let Some(mut stream) = stream else {
        return (kept, dropped);
    };
    let mut buf = [0u8; 8192];
    loop {
        match stream.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => {
                let room = cap.saturating_sub(kept.len());
                kept.extend_from_slice(&buf[..n.min(room)]);
                dropped |= n > room;
            }
        }
    }
    (kept, dropped)
}

/// Kills every process of the group `pgid` (the child and whatever it started).
#[cfg(unix)]
fn kill_group(pgid: Option<u32>) {
    if let Some(pgid) = pgid.and_then(|p| i32::try_from(p).ok())
        && pgid > 0
    {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is
        // touched. ESRCH (the group is gone) is the expected outcome and ignored.
        unsafe {
            libc::kill(-pgid, libc::SIGKILL);
        }
    }
}

#[cfg(not(unix))]
fn kill_group(_pgid: Option<u32>) {}

/// Kills the group when dropped (a cancelled or timed-out run).
struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        kill_group(self.0);
    }
}

pub(super) async fn run(launch: Launch<'_>) -> Result<CommandOutput> {
    let program = launch.program;
    let mut cmd = tokio::process::Command::new(program);
    cmd.args(launch.args)
        .env_clear()
        .envs(launch.env)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true);
    #[cfg(unix)]
    cmd.process_group(0);
    if let Some(cwd) = launch.cwd {
        cmd.current_dir(cwd);
    }
    let mut child = cmd.spawn().map_err(|e| {
        Error::backend(format!("cannot start {program:?}"))
            .with_source(e)
            .terminal()
    })?;
    let guard = GroupGuard(child.id());
    let cap = launch.cap;
    let out = child.stdout.take();
    let err = child.stderr.take();
    let run = async {
        let reads = async { tokio::join!(read_capped(out, cap), read_capped(err, cap)) };
        tokio::pin!(reads);
        // The child may exit while something it started still holds the pipes: once it
        // has exited, kill the rest of its group so the reads end.
        let mut read = None;
        let exited = tokio::select! {
            status = child.wait() => Some(status),
            r = &mut reads => {
                read = Some(r);
                None
            }
        };
        let status = match exited {
            Some(status) => {
                kill_group(guard.0);
                status
            }
            None => child.wait().await,
        };
        let (out, err) = match read {
            Some(r) => r,
            None => reads.await,
        };
        (out, err, status)
    };
    let ((o, t1), (e, t2), status) =
        tokio::time::timeout(launch.timeout, run)
            .await
            .map_err(|_| {
                Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "{program:?} ran longer than {} ms; its process group was killed",
                        launch.timeout.as_millis()
                    ),
                )
            })?;
    drop(guard);
    let status = status.map_err(|e| Error::backend("waiting for the program").with_source(e))?;
    Ok(CommandOutput {
        exit_code: status.code().unwrap_or(-1),
        stdout: text(&o, t1),
        stderr: text(&e, t2),
        truncated: t1 || t2,
    })
}

fn text(bytes: &[u8], truncated: bool) -> String {
    let mut s = String::from_utf8_lossy(bytes).into_owned();
    if truncated {
        s.push_str("\n[... output truncated]");
    }
    s
}
