//! The errors of failed network operations, classified once for both programs.
//!
//! | what happened                                        | kind              | retry     |
//! |------------------------------------------------------|-------------------|-----------|
//! | credentials refused, or a token kept off plain HTTP  | `Unauthenticated` | never     |
//! | connect, idle or overall timeout                     | `Timeout`         | transient |
//! | anything else (unreachable, refused, a missing repo) | `Backend`         | transient |

use george_core::{Error, ErrorKind};

use super::remote::Remote;
use super::url::scrub;

/// What failed, classified.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Failure {
    /// Credentials refused (or withheld).
    Auth,
    /// A timeout.
    Timeout,
    /// Anything else.
    Other,
}

/// The error for `what` (`fetching from`, `pushing to`) failing against `remote`,
/// with `detail` (libgit2's message, `git`'s stderr) and `secrets` scrubbed.
pub(super) fn error(
    failure: Failure,
    what: &str,
    remote: &Remote,
    detail: &str,
    secrets: &[&str],
) -> Error {
    let kind = match failure {
        Failure::Auth => ErrorKind::Unauthenticated,
        Failure::Timeout => ErrorKind::Timeout,
        Failure::Other => ErrorKind::Backend,
    };
    let message = format!("{what} {}: {}", remote.redacted_url(), detail.trim());
    let err = Error::new(kind, scrub(&message, secrets));
    match failure {
        Failure::Auth => err.terminal(),
        _ => err.transient(),
    }
}
