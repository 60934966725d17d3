//! The one error type of George's plug-in traits, with a kind callers branch on
//! and a retry status that tells whether trying again may help.

use std::fmt;
use std::time::Duration;

/// What went wrong, coarsely: callers branch on this, never on the message.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ErrorKind {
    /// The thing asked for does not exist (a job, a commit, an approval request).
    NotFound,
    /// A write lost an optimistic-concurrency race (stale revision), or the target
    /// already exists, or a decision was made on a request that is no longer open.
    Conflict,
    /// The remote side asked us to slow down (HTTP 429 and the like).
    RateLimited,
    /// Credentials missing or refused.
    Unauthenticated,
    /// The request itself is wrong: retrying it unchanged cannot help.
    InvalidInput,
    /// The backend does not support this operation.
    Unsupported,
    /// The operation ran out of time.
    Timeout,
    /// A tool or program is not allowed for this caller.
    PermissionDenied,
    /// Anything else the backend reported (I/O, database, network, protocol, a
    /// provider's 5xx).
    Backend,
    /// The remote side is overloaded (e.g. Anthropic's 529, a 503): retry later.
    Overloaded,
    /// The request does not fit the model's context window: shorten it, retrying
    /// unchanged cannot help.
    ContextTooLong,
    /// The remote side answered something that does not follow its protocol
    /// (unparsable JSON, a stream cut short).
    MalformedResponse,
}

impl fmt::Display for ErrorKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let s = match self {
            ErrorKind::NotFound => "not found",
            ErrorKind::Conflict => "conflict",
            ErrorKind::RateLimited => "rate limited",
            ErrorKind::Unauthenticated => "unauthenticated",
            ErrorKind::InvalidInput => "invalid input",
            ErrorKind::Unsupported => "unsupported",
            ErrorKind::Timeout => "timeout",
            ErrorKind::PermissionDenied => "permission denied",
            ErrorKind::Backend => "backend error",
            ErrorKind::Overloaded => "overloaded",
            ErrorKind::ContextTooLong => "context too long",
            ErrorKind::MalformedResponse => "malformed response",
        };
        f.write_str(s)
    }
}

/// Whether retrying the failed operation may help.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
#[non_exhaustive]
pub enum RetryStatus {
    /// Terminal: never retry (bad input, refused permission, unsupported).
    Never,
    /// Transient: a retry may succeed, optionally not before `after`.
    Transient {
        /// The earliest sensible retry, when the remote side said so (`Retry-After`).
        after: Option<Duration>,
    },
    /// Transient in nature, but a retry wrapper already gave up: do not retry again
    /// (so that stacked retry layers do not multiply attempts).
    Exhausted,
}

/// The error of every George plug-in trait (`Provider`, `ToolExecutor`, `StateStore`,
/// `GitSource`, `HumanChannel`) and of the engine.
///
/// Adapters keep a private error enum and convert it with [`Error::new`] +
/// [`Error::with_source`], boxing the original as the `source`.
#[derive(Debug)]
pub struct Error {
    kind: ErrorKind,
    retry: RetryStatus,
    message: String,
    source: Option<Box<dyn std::error::Error + Send + Sync + 'static>>,
}

impl Error {
    /// An error of `kind` with a human-readable message. The retry status defaults by kind:
    /// `RateLimited`, `Timeout` and `Backend` are transient, the others terminal.
    pub fn new(kind: ErrorKind, message: impl Into<String>) -> Self {
        let retry = match kind {
            ErrorKind::RateLimited
            | ErrorKind::Timeout
            | ErrorKind::Backend
            | ErrorKind::Overloaded
            | ErrorKind::MalformedResponse => RetryStatus::Transient { after: None },
            _ => RetryStatus::Never,
        };
        Error {
            kind,
            retry,
            message: message.into(),
            source: None,
        }
    }

    /// Shorthand for [`ErrorKind::NotFound`].
    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::NotFound, message)
    }
    /// Shorthand for [`ErrorKind::Conflict`].
    pub fn conflict(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Conflict, message)
    }
    /// Shorthand for [`ErrorKind::InvalidInput`].
    pub fn invalid_input(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::InvalidInput, message)
    }
    /// Shorthand for [`ErrorKind::Backend`] (transient).
    pub fn backend(message: impl Into<String>) -> Self {
        Self::new(ErrorKind::Backend, message)
    }
    /// Shorthand for [`ErrorKind::Unsupported`], naming the backend.
    pub fn unsupported(backend: &str, what: impl fmt::Display) -> Self {
        Self::new(
            ErrorKind::Unsupported,
            format!("{backend} does not support {what}"),
        )
    }

    /// Overrides the retry status.
    pub fn with_retry(mut self, retry: RetryStatus) -> Self {
        self.retry = retry;
        self
    }

    /// Marks the error terminal: it is never retried.
    pub fn terminal(self) -> Self {
        self.with_retry(RetryStatus::Never)
    }

    /// Marks the error transient: a retry may help.
    pub fn transient(self) -> Self {
        self.with_retry(RetryStatus::Transient { after: None })
    }

    /// Attaches the underlying error.
    pub fn with_source(mut self, source: impl std::error::Error + Send + Sync + 'static) -> Self {
        self.source = Some(Box::new(source));
        self
    }

    /// The coarse kind.
    pub fn kind(&self) -> ErrorKind {
        self.kind
    }

    /// The retry status.
    pub fn retry(&self) -> RetryStatus {
        self.retry
    }

    /// Whether a retry may help (`Transient`).
    pub fn is_retryable(&self) -> bool {
        matches!(self.retry, RetryStatus::Transient { .. })
    }

    /// The message, without the kind.
    pub fn message(&self) -> &str {
        &self.message
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.kind, self.message)?;
        if let Some(src) = &self.source {
            write!(f, ": {src}")?;
        }
        Ok(())
    }
}

impl std::error::Error for Error {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        self.source
            .as_deref()
            .map(|e| e as &(dyn std::error::Error + 'static))
    }
}

impl From<serde_json::Error> for Error {
    fn from(e: serde_json::Error) -> Self {
        Error::new(ErrorKind::InvalidInput, "JSON (de)serialization failed").with_source(e)
    }
}

/// `Result<T, george_core::Error>`.
pub type Result<T, E = Error> = std::result::Result<T, E>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_retry_follows_kind() {
        assert!(Error::backend("x").is_retryable());
        assert!(!Error::invalid_input("x").is_retryable());
        assert!(!Error::backend("x").terminal().is_retryable());
        let e = Error::conflict("stale revision 3");
        assert_eq!(e.kind(), ErrorKind::Conflict);
        assert_eq!(e.to_string(), "conflict: stale revision 3");
    }
}
