//! What a fetch brings, and what became of a push.

/// What a fetch brings and how.
#[derive(Debug, Clone, Default)]
pub(crate) struct FetchSpec {
    /// The refspecs (`+refs/heads/main:refs/heads/main`).
    pub(crate) refspecs: Vec<String>,
    /// A shallow fetch of this many commits.
    pub(crate) depth: Option<u32>,
    /// Deletes local refs whose remote counterpart is gone.
    pub(crate) prune: bool,
}

/// The outcome of a push that reached the remote.
#[derive(Debug)]
pub(crate) enum PushOutcome {
    /// The remote branch now points at the pushed commit.
    Pushed,
    /// The remote refused the update (non-fast-forward, a lost race for the ref
    /// lock, a hook): the reason as the remote gave it, secrets scrubbed.
    Rejected(String),
}
