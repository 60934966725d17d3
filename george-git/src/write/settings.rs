//! The write tool's settings, shared by its builder and its calls.

use std::path::PathBuf;

use super::author::GitAuthor;
use super::scope::PathScope;
use super::target::RemoteTarget;

/// The tool's settings. `Debug` shows no credentials ([`RemoteTarget`] redacts them).
#[derive(Debug, Clone)]
pub(crate) struct Settings {
    /// The repository, or the remote target's work clone.
    pub(crate) path: PathBuf,
    pub(crate) branch: String,
    pub(crate) author: GitAuthor,
    pub(crate) alias: Option<String>,
    pub(crate) replay_window: usize,
    pub(crate) max_read_bytes: u64,
    pub(crate) scope: PathScope,
    /// Set for a remote target.
    pub(crate) remote: Option<RemoteTarget>,
}
