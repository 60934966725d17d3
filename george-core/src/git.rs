//! The [`GitSource`] trait: where desired state comes from.

use std::fmt::{self, Debug};
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;

/// The folders whose YAML files are manifests.
pub const MANIFEST_DIRS: [&str; 4] = ["agent-specs/", "task-templates/", "jobs/", "policies/"];

/// Whether `path` (relative, `/`-separated) is a manifest path: a `.yaml`/`.yml` file
/// under one of [`MANIFEST_DIRS`].
pub fn is_manifest_path(path: &str) -> bool {
    (path.ends_with(".yaml") || path.ends_with(".yml"))
        && MANIFEST_DIRS.iter().any(|d| path.starts_with(d))
}

/// A commit id (hex object name for Git; any opaque string for other sources).
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
pub struct CommitId(pub String);

impl CommitId {
    /// The id as text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The first 8 characters, for display.
    pub fn short(&self) -> &str {
        let end = self
            .0
            .char_indices()
            .nth(8)
            .map_or(self.0.len(), |(i, _)| i);
        &self.0[..end]
    }
}

impl fmt::Display for CommitId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// The most commits [`GitSource::commits_between`] counts: past it, it answers this.
pub const COMMITS_BETWEEN_LIMIT: u64 = 10_000;

/// A file read at a commit: a repository-relative path and its bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SourceFile {
    /// Repository-relative, `/`-separated path.
    pub path: String,
    /// Content.
    pub bytes: Vec<u8>,
}

/// A source of desired state: a Git repository (or anything with commits).
///
/// # Contract
/// - Reads are **at a commit**, never from a working tree: the same commit always
///   yields the same files.
/// - `changed_paths(a, b)` lists every path added, modified or removed between the
///   two commits (both sides of a rename).
///
/// # Errors
/// `NotFound` for an unknown reference or commit; `Backend` for I/O and Git errors.
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait GitSource: Send + Sync + Debug + 'static {
    /// Resolves a reference (branch, tag, or commit id) to a commit.
    async fn resolve(&self, reference: &str) -> Result<CommitId>;

    /// Every manifest file ([`is_manifest_path`]) at `commit`.
    async fn read_manifests(&self, commit: &CommitId) -> Result<Vec<SourceFile>>;

    /// The given files at `commit`; a path that does not exist there is left out.
    async fn read_files(&self, commit: &CommitId, paths: &[String]) -> Result<Vec<SourceFile>>;

    /// Paths added, modified or removed between `from` and `to`.
    async fn changed_paths(&self, from: &CommitId, to: &CommitId) -> Result<Vec<String>>;

    /// The author of `commit` as `Name <email>`, when the source knows it (`None` by
    /// default). The engine stores it with an approval request, for the step rule's
    /// `forbid_self_approval`.
    ///
    /// # Errors
    /// `NotFound` for an unknown commit; `Backend` for I/O and Git errors.
    async fn commit_author(&self, commit: &CommitId) -> Result<Option<String>> {
        let _ = commit;
        Ok(None)
    }

    /// How many commits `to` has that `from` has not (`git rev-list --count from..to`):
    /// 0 when `to` is `from` or one of its ancestors. Counting stops at
    /// [`COMMITS_BETWEEN_LIMIT`], which then means "at least that many". `None` when the
    /// source cannot tell (the default).
    ///
    /// # Errors
    /// `NotFound` for an unknown commit; `Backend` for I/O and Git errors.
    async fn commits_between(&self, from: &CommitId, to: &CommitId) -> Result<Option<u64>> {
        let _ = (from, to);
        Ok(None)
    }
}

#[async_trait]
impl<T: GitSource + ?Sized> GitSource for Arc<T> {
    async fn resolve(&self, reference: &str) -> Result<CommitId> {
        (**self).resolve(reference).await
    }
    async fn read_manifests(&self, commit: &CommitId) -> Result<Vec<SourceFile>> {
        (**self).read_manifests(commit).await
    }
    async fn read_files(&self, commit: &CommitId, paths: &[String]) -> Result<Vec<SourceFile>> {
        (**self).read_files(commit, paths).await
    }
    async fn changed_paths(&self, from: &CommitId, to: &CommitId) -> Result<Vec<String>> {
        (**self).changed_paths(from, to).await
    }
    async fn commit_author(&self, commit: &CommitId) -> Result<Option<String>> {
        (**self).commit_author(commit).await
    }
    async fn commits_between(&self, from: &CommitId, to: &CommitId) -> Result<Option<u64>> {
        (**self).commits_between(from, to).await
    }
}

/// `Arc<dyn GitSource>`.
pub type DynGitSource = Arc<dyn GitSource>;
