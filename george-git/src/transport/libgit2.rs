//! Fetch and push in process through libgit2 (`file://`, `git://`, `http://`, local
//! paths), through an anonymous remote — the URL is never written to the
//! repository's `config` —, with socket timeouts and a deadline.

use std::cell::Cell;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use george_core::Result;
use git2::{AutotagOption, FetchOptions, FetchPrune, PushOptions, RemoteCallbacks, Repository};

use super::credentials::{Secrets, callbacks};
use super::failure::{Failure, error};
use super::remote::Remote;
use super::spec::{FetchSpec, PushOutcome};

/// Fetches `spec` into `repo`.
pub(super) fn fetch(
    remote: &Remote,
    secrets: &Secrets,
    repo: &Repository,
    spec: &FetchSpec,
) -> Result<()> {
    lower_socket_timeouts(remote.connect_timeout, remote.io_timeout);
    let fail = |e| classify("fetching from", remote, secrets, e, false);
    let mut anonymous = repo.remote_anonymous(&remote.url).map_err(fail)?;
    let late = Cell::new(false);
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(watched(remote, secrets, &late))
        .download_tags(AutotagOption::None)
        .update_fetchhead(false)
        .prune(if spec.prune {
            FetchPrune::On
        } else {
            FetchPrune::Unspecified
        });
    if let Some(d) = spec.depth {
        opts.depth(i32::try_from(d).unwrap_or(i32::MAX));
    }
    anonymous
        .fetch(&spec.refspecs, Some(&mut opts), Some("george: fetch"))
        .map_err(|e| classify("fetching from", remote, secrets, e, late.get()))
}

/// Pushes `refspec` from `repo`; a refusal by the remote is [`PushOutcome::Rejected`].
pub(super) fn push(
    remote: &Remote,
    secrets: &Secrets,
    repo: &Repository,
    refspec: &str,
) -> Result<PushOutcome> {
    lower_socket_timeouts(remote.connect_timeout, remote.io_timeout);
    let mut anonymous = repo
        .remote_anonymous(&remote.url)
        .map_err(|e| classify("pushing to", remote, secrets, e, false))?;
    let late = Cell::new(false);
    let mut rejected: Option<String> = None;
    let result = {
        let mut cbs = watched(remote, secrets, &late);
        cbs.push_update_reference(|_, status| {
            if let Some(s) = status {
                rejected = Some(s.to_owned());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(cbs);
        anonymous.push(&[refspec], Some(&mut options))
    };
    let scrub = |s: &str| super::url::scrub(s, &secrets.values());
    match result {
        Ok(()) => Ok(match rejected {
            Some(reason) => PushOutcome::Rejected(scrub(&reason)),
            None => PushOutcome::Pushed,
        }),
        Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
            Ok(PushOutcome::Rejected(scrub(e.message())))
        }
        Err(e) => Err(classify("pushing to", remote, secrets, e, late.get())),
    }
}

/// The credential callbacks plus a watchdog: the transfer stops at the first progress
/// report past the remote's deadline (and `late` tells why).
fn watched<'a>(
    remote: &'a Remote,
    secrets: &'a Secrets,
    late: &'a Cell<bool>,
) -> RemoteCallbacks<'a> {
    let deadline = Instant::now() + remote.deadline;
    let on_time = move || {
        let ok = Instant::now() < deadline;
        if !ok {
            late.set(true);
        }
        ok
    };
    let mut cbs = callbacks(remote, secrets);
    cbs.transfer_progress(move |_| on_time());
    cbs.sideband_progress(move |_| on_time());
    cbs
}

/// The error for a failed libgit2 operation.
fn classify(
    what: &str,
    remote: &Remote,
    secrets: &Secrets,
    e: git2::Error,
    late: bool,
) -> george_core::Error {
    use git2::ErrorCode as C;
    let (failure, detail) = if late {
        let secs = remote.deadline.as_secs_f64();
        (
            Failure::Timeout,
            format!("took longer than the deadline of {secs} s"),
        )
    } else {
        let failure = match e.code() {
            C::Auth | C::Certificate => Failure::Auth,
            C::Timeout => Failure::Timeout,
            _ if e.message().contains("timed out") => Failure::Timeout,
            _ => Failure::Other,
        };
        (failure, e.message().to_owned())
    };
    error(failure, what, remote, &detail, &secrets.values())
}

/// The socket timeouts libgit2 applies (connect, read/write), in milliseconds; `0`
/// until George first sets them.
static SOCKET_TIMEOUTS: Mutex<(i32, i32)> = Mutex::new((0, 0));

/// Lowers libgit2's process-wide socket timeouts to `connect` and `io` if they are
/// unset or longer: every remote's limits then hold (a shorter one may cut another
/// remote's wait short, never make it longer).
fn lower_socket_timeouts(connect: Duration, io: Duration) {
    let ms = |d: Duration| i32::try_from(d.as_millis()).unwrap_or(i32::MAX).max(1);
    let (connect, io) = (ms(connect), ms(io));
    let mut current = SOCKET_TIMEOUTS.lock().unwrap_or_else(|e| e.into_inner());
    let lower = |now: i32, want: i32| if now == 0 { want } else { now.min(want) };
    let next = (lower(current.0, connect), lower(current.1, io));
    if next == *current {
        return;
    }
    // SAFETY: these options are plain `int` globals of libgit2 that each new socket
    // stream copies when it is created; writes are serialised by the mutex above, and
    // a stream created during a write reads either the old or the new value.
    let set = unsafe {
        git2::opts::set_server_connect_timeout_in_milliseconds(next.0)
            .and_then(|()| git2::opts::set_server_timeout_in_milliseconds(next.1))
    };
    match set {
        Ok(()) => *current = next,
        Err(e) => tracing::warn!(error = %e, "could not set libgit2's socket timeouts"),
    }
}
