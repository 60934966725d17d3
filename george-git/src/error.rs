//! Conversions from `git2` (and the blocking-task plumbing) to [`george_core::Error`].

use george_core::{Error, ErrorKind};

/// Converts a `git2` error to a George error, keeping it as the source.
///
/// The kind follows libgit2's error code: `NotFound` → [`ErrorKind::NotFound`];
/// `Exists`, `Modified`, `NotFastForward`, `Conflict` → [`ErrorKind::Conflict`];
/// `Locked` → a transient [`ErrorKind::Conflict`] (another process holds a lock);
/// `Auth`, `Certificate` → [`ErrorKind::Unauthenticated`]; `InvalidSpec`, `Invalid`,
/// `Ambiguous` → [`ErrorKind::InvalidInput`]; anything else → [`ErrorKind::Backend`]
/// (transient).
pub fn from_git2(context: &str, e: git2::Error) -> Error {
    use git2::ErrorCode as C;
    let kind = match e.code() {
        C::NotFound => ErrorKind::NotFound,
        C::Exists | C::Modified | C::NotFastForward | C::Conflict | C::Locked => {
            ErrorKind::Conflict
        }
        C::Auth | C::Certificate => ErrorKind::Unauthenticated,
        C::InvalidSpec | C::Invalid | C::Ambiguous => ErrorKind::InvalidInput,
        _ => ErrorKind::Backend,
    };
    let err = Error::new(kind, format!("{context}: {}", e.message()));
    let err = if e.code() == C::Locked {
        err.transient()
    } else {
        err
    };
    err.with_source(e)
}

/// Extension for `Result<T, git2::Error>`: attach a context and convert.
pub(crate) trait GitResultExt<T> {
    /// Converts the error with [`from_git2`], prefixing `context`.
    fn git_ctx(self, context: &str) -> Result<T, Error>;
}

impl<T> GitResultExt<T> for Result<T, git2::Error> {
    fn git_ctx(self, context: &str) -> Result<T, Error> {
        self.map_err(|e| from_git2(context, e))
    }
}

/// Converts a failed `spawn_blocking` join (a panic or a cancelled runtime).
pub(crate) fn from_join(e: tokio::task::JoinError) -> Error {
    Error::backend("a blocking Git task did not complete").with_source(e)
}

/// Runs `f` on tokio's blocking pool and flattens the join error.
pub(crate) async fn blocking<T, F>(f: F) -> Result<T, Error>
where
    F: FnOnce() -> Result<T, Error> + Send + 'static,
    T: Send + 'static,
{
    tokio::task::spawn_blocking(f).await.map_err(from_join)?
}
