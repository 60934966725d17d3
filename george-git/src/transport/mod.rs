//! One transport layer for every network operation of this crate: a [`Remote`]
//! describes a Git remote (URL, credentials, transport, timeouts, plain-HTTP policy),
//! and [`fetch`] and [`push`] run against it through libgit2 or the `git` program.
//! [`RemoteGitSource`](crate::RemoteGitSource) fetches with it;
//! [`GitWriteTool::remote`](crate::GitWriteTool::remote) fetches and pushes with it.
//!
//! Invariants, for both programs:
//! - credentials never reach disk: the URL kept by a [`Remote`] (and written to a work
//!   clone's `config`) has none; a password or token travels through libgit2's
//!   credential callback or, for the `git` program, through the child's environment
//!   and a one-off credential helper (never its command line);
//! - a token is never sent over plain `http://` unless the operator allowed it
//!   ([`Remote::with_allow_insecure_http`]), and the user's credential helpers never
//!   see it (so none can store it);
//! - every operation has a deadline, and stops when the server sends nothing for the
//!   idle timeout ([`Remote::with_io_timeout`]);
//! - every secret read is registered with
//!   [`KnownSecrets::global`](george_core::secret::KnownSecrets::global) and scrubbed
//!   from error messages.

mod credentials;
mod failure;
mod libgit2;
mod program;
mod remote;
mod spec;
mod url;

use git2::Repository;

use george_core::Result;

pub use remote::{Remote, Transport};
pub(crate) use spec::{FetchSpec, PushOutcome};
pub use url::redact_url;
pub(crate) use url::split_userinfo;

/// Fetches `spec` from `remote` into `repo`.
///
/// # Errors
/// `Unauthenticated` when the remote refuses the credentials (or a token would go
/// over plain `http://`); `Timeout` (transient) past the connect, idle or overall
/// timeout; `Backend` (transient) for anything else that failed on the way. Messages
/// never contain credentials.
pub(crate) fn fetch(remote: &Remote, repo: &Repository, spec: &FetchSpec) -> Result<()> {
    let secrets = credentials::Secrets::read(remote)?;
    match remote.via()? {
        url::Via::Libgit2 => libgit2::fetch(remote, &secrets, repo, spec),
        url::Via::Program => program::fetch(remote, &secrets, repo, spec),
    }
}

/// Pushes `local_ref` of `repo` to `remote_ref` of `remote`, never forcing.
///
/// # Errors
/// As [`fetch`]; a refusal by the remote is not an error but
/// [`PushOutcome::Rejected`].
pub(crate) fn push(
    remote: &Remote,
    repo: &Repository,
    local_ref: &str,
    remote_ref: &str,
) -> Result<PushOutcome> {
    let secrets = credentials::Secrets::read(remote)?;
    let spec = format!("{local_ref}:{remote_ref}");
    match remote.via()? {
        url::Via::Libgit2 => libgit2::push(remote, &secrets, repo, &spec),
        url::Via::Program => program::push(remote, &secrets, repo, &spec),
    }
}
