//! [`LocalGitSource`]: a [`GitSource`] over a repository on the local disk.

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use george_core::git::{CommitId, GitSource, MANIFEST_DIRS, SourceFile, is_manifest_path};
use george_core::{Error, ErrorKind, Result};
use git2::{ErrorCode, ObjectType, Oid, Repository, TreeWalkMode, TreeWalkResult};
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::{GitResultExt, blocking, from_git2};

/// A [`GitSource`] over a Git repository on the local disk (bare or not).
///
/// Everything is read **at a commit**, from the object database: uncommitted edits
/// in a working tree are never seen. Clones share the same state (the last head seen
/// and its subscribers), and the source is `Send + Sync`: each operation opens the
/// repository afresh on Tokio's blocking pool, so there is no long-lived
/// `git2::Repository` to share across threads, and commits made by other processes
/// are always visible.
///
/// # Noticing new commits
/// The source tracks one branch (given to [`open`](Self::open)). [`subscribe`](Self::subscribe)
/// returns a `watch` receiver of its head; the head is re-read by
/// [`refresh`](Self::refresh) (call it when you know a push happened, e.g. from a
/// webhook) and by the background task of [`spawn_poller`](Self::spawn_poller),
/// which stops when its [`PollerHandle`] is dropped. Receivers are notified only
/// when the head actually moves.
#[derive(Debug, Clone)]
pub struct LocalGitSource {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    path: PathBuf,
    branch: String,
    head: watch::Sender<Option<CommitId>>,
    /// Serialises refreshes so that the watched head never goes backwards.
    refresh_lock: tokio::sync::Mutex<()>,
}

impl LocalGitSource {
    /// Opens the repository at `path` (its working directory, or the `.git` / bare
    /// directory itself) and tracks `branch`.
    ///
    /// The branch's current head is read at once and becomes the initial value seen
    /// by [`subscribe`](Self::subscribe); a branch that does not exist yet (e.g. an
    /// empty repository) starts as `None`.
    ///
    /// # Errors
    /// `NotFound` if there is no repository at `path`; `Backend` for other Git errors.
    pub fn open(path: impl Into<PathBuf>, branch: impl Into<String>) -> Result<Self> {
        let path = path.into();
        let branch = branch.into();
        let repo = open_repo(&path)?;
        let initial = match resolve_in(&repo, &branch) {
            Ok(oid) => Some(CommitId(oid.to_string())),
            Err(e) if e.kind() == ErrorKind::NotFound => None,
            Err(e) => return Err(e),
        };
        let (head, _) = watch::channel(initial);
        Ok(LocalGitSource {
            inner: Arc::new(Inner {
                path,
                branch,
                head,
                refresh_lock: tokio::sync::Mutex::new(()),
            }),
        })
    }

    /// The repository's path, as given to [`open`](Self::open).
    pub fn path(&self) -> &Path {
        &self.inner.path
    }

    /// The tracked branch.
    pub fn branch(&self) -> &str {
        &self.inner.branch
    }

    /// A receiver of the tracked branch's head, updated by [`refresh`](Self::refresh)
    /// and by the poller. `None` until the branch has a commit.
    pub fn subscribe(&self) -> watch::Receiver<Option<CommitId>> {
        self.inner.head.subscribe()
    }

    /// The head last seen (at opening or by the latest refresh), without reading the
    /// repository.
    pub fn last_seen(&self) -> Option<CommitId> {
        self.inner.head.borrow().clone()
    }

    /// Reads the tracked branch's head now (without notifying anyone).
    ///
    /// # Errors
    /// `NotFound` if the branch does not exist.
    pub async fn head(&self) -> Result<CommitId> {
        self.resolve(&self.inner.branch).await
    }

    /// Reads the tracked branch's head now and, if it moved since last seen, notifies
    /// the subscribers. Returns the new head when it moved, `None` when it did not.
    ///
    /// Call it when you know a push happened (a webhook, a post-receive hook, the
    /// write tool's result); the poller calls it on every tick.
    ///
    /// # Errors
    /// `NotFound` if the branch does not exist (subscribers keep the last head seen);
    /// `Backend` for Git errors.
    pub async fn refresh(&self) -> Result<Option<CommitId>> {
        let _serial = self.inner.refresh_lock.lock().await;
        let head = self.head().await?;
        let mut moved = false;
        self.inner.head.send_if_modified(|current| {
            if current.as_ref() == Some(&head) {
                false
            } else {
                *current = Some(head.clone());
                moved = true;
                true
            }
        });
        if moved {
            tracing::debug!(branch = %self.inner.branch, commit = %head, "git head moved");
            Ok(Some(head))
        } else {
            Ok(None)
        }
    }

    /// Starts a background task that calls [`refresh`](Self::refresh) at once and then
    /// every `interval` (at least 1 ms); errors are logged and polling goes on.
    /// The task stops when the returned handle is dropped.
    ///
    /// # Panics
    /// When called outside a Tokio runtime.
    pub fn spawn_poller(&self, interval: Duration) -> PollerHandle {
        let source = self.clone();
        let interval = interval.max(Duration::from_millis(1));
        let task = tokio::spawn(async move {
            let mut ticker = tokio::time::interval(interval);
            ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                ticker.tick().await;
                if let Err(e) = source.refresh().await {
                    tracing::warn!(
                        repo = %source.inner.path.display(),
                        branch = %source.inner.branch,
                        error = %e,
                        "polling the git branch failed"
                    );
                }
            }
        });
        PollerHandle { task }
    }

    async fn with_repo<T, F>(&self, f: F) -> Result<T>
    where
        F: FnOnce(&Repository) -> Result<T> + Send + 'static,
        T: Send + 'static,
    {
        let path = self.inner.path.clone();
        blocking(move || {
            let repo = open_repo(&path)?;
            f(&repo)
        })
        .await
    }
}

/// The background poller of a [`LocalGitSource`]: dropping it stops the polling.
#[derive(Debug)]
#[must_use = "the poller stops when its handle is dropped"]
pub struct PollerHandle {
    task: JoinHandle<()>,
}

impl PollerHandle {
    /// Stops the poller (the same as dropping the handle).
    pub fn stop(self) {
        drop(self);
    }
}

impl Drop for PollerHandle {
    fn drop(&mut self) {
        self.task.abort();
    }
}

pub(crate) fn open_repo(path: &Path) -> Result<Repository> {
    Repository::open(path).git_ctx(&format!("opening the repository at {}", path.display()))
}

/// Resolves a branch, tag, commit id or any revision expression to a commit.
/// A local branch wins over a tag of the same name.
pub(crate) fn resolve_in(repo: &Repository, reference: &str) -> Result<Oid> {
    let not_found = || Error::not_found(format!("reference {reference:?} does not name a commit"));
    if reference.len() == 40 && reference.bytes().all(|b| b.is_ascii_hexdigit()) {
        let oid = Oid::from_str(reference).git_ctx("parsing a commit id")?;
        return match repo.find_commit(oid) {
            Ok(c) => Ok(c.id()),
            Err(e) if e.code() == ErrorCode::NotFound => Err(not_found()),
            Err(e) => Err(from_git2("reading a commit", e)),
        };
    }
    if let Ok(r) = repo.find_reference(&format!("refs/heads/{reference}")) {
        return Ok(r.peel_to_commit().git_ctx("peeling a branch")?.id());
    }
    match repo.revparse_single(reference) {
        Ok(obj) => Ok(obj
            .peel_to_commit()
            .git_ctx(&format!("{reference:?} is not a commit"))?
            .id()),
        Err(e) if matches!(e.code(), ErrorCode::NotFound | ErrorCode::InvalidSpec) => {
            Err(not_found())
        }
        Err(e) => Err(from_git2(&format!("resolving {reference:?}"), e)),
    }
}

pub(crate) fn find_commit<'r>(repo: &'r Repository, id: &CommitId) -> Result<git2::Commit<'r>> {
    let not_found = || Error::not_found(format!("commit {id} not found"));
    let oid = Oid::from_str(id.as_str()).map_err(|_| not_found())?;
    match repo.find_commit(oid) {
        Ok(c) => Ok(c),
        Err(e) if e.code() == ErrorCode::NotFound => Err(not_found()),
        Err(e) => Err(from_git2(&format!("reading commit {id}"), e)),
    }
}

/// Whether a tree entry's mode is a regular (possibly executable) file.
pub(crate) fn is_regular_file(mode: i32) -> bool {
    mode == i32::from(git2::FileMode::Blob) || mode == i32::from(git2::FileMode::BlobExecutable)
}

fn read_manifests_in(repo: &Repository, id: &CommitId) -> Result<Vec<SourceFile>> {
    let tree = find_commit(repo, id)?
        .tree()
        .git_ctx("reading a commit tree")?;
    let mut found: Vec<(String, Oid)> = Vec::new();
    for dir in MANIFEST_DIRS {
        let name = dir.trim_end_matches('/');
        let Ok(entry) = tree.get_path(Path::new(name)) else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Tree) {
            continue;
        }
        let sub = repo.find_tree(entry.id()).git_ctx("reading a tree")?;
        sub.walk(TreeWalkMode::PreOrder, |root, e| {
            if e.kind() == Some(ObjectType::Blob) && is_regular_file(e.filemode()) {
                if let Ok(file) = e.name() {
                    let full = format!("{dir}{root}{file}");
                    if is_manifest_path(&full) {
                        found.push((full, e.id()));
                    }
                }
            }
            TreeWalkResult::Ok
        })
        .git_ctx("walking a tree")?;
    }
    found.sort();
    found
        .into_iter()
        .map(|(path, oid)| {
            let blob = repo.find_blob(oid).git_ctx("reading a blob")?;
            Ok(SourceFile {
                path,
                bytes: blob.content().to_vec(),
            })
        })
        .collect()
}

fn read_files_in(repo: &Repository, id: &CommitId, paths: &[String]) -> Result<Vec<SourceFile>> {
    let tree = find_commit(repo, id)?
        .tree()
        .git_ctx("reading a commit tree")?;
    let mut out = Vec::with_capacity(paths.len());
    for path in paths {
        // A lookup failure means the path is not a file at this commit.
        let Ok(entry) = tree.get_path(Path::new(path)) else {
            continue;
        };
        if entry.kind() != Some(ObjectType::Blob) {
            continue;
        }
        let blob = repo.find_blob(entry.id()).git_ctx("reading a blob")?;
        out.push(SourceFile {
            path: path.clone(),
            bytes: blob.content().to_vec(),
        });
    }
    Ok(out)
}

/// The author of a commit as `Name <email>` (`<email>` without a name, `None` with
/// neither); bytes that are not UTF-8 are replaced.
fn commit_author_in(repo: &Repository, id: &CommitId) -> Result<Option<String>> {
    let commit = find_commit(repo, id)?;
    let author = commit.author();
    let name = String::from_utf8_lossy(author.name_bytes());
    let email = String::from_utf8_lossy(author.email_bytes());
    let (name, email) = (name.trim(), email.trim());
    Ok(match (name.is_empty(), email.is_empty()) {
        (true, true) => None,
        (true, false) => Some(format!("<{email}>")),
        (false, _) => Some(format!("{name} <{email}>")),
    })
}

/// Commits reachable from `to` and not from `from` (`git rev-list --count from..to`),
/// counting up to `limit`.
fn commits_between_in(
    repo: &Repository,
    from: &CommitId,
    to: &CommitId,
    limit: u64,
) -> Result<u64> {
    let (from, to) = (find_commit(repo, from)?.id(), find_commit(repo, to)?.id());
    if from == to {
        return Ok(0);
    }
    let mut walk = repo.revwalk().git_ctx("walking the history")?;
    walk.push(to).git_ctx("walking the history")?;
    walk.hide(from).git_ctx("walking the history")?;
    let mut n = 0;
    for oid in walk {
        oid.git_ctx("walking the history")?;
        n += 1;
        if n >= limit {
            break;
        }
    }
    Ok(n)
}

pub(crate) fn changed_paths_in(
    repo: &Repository,
    from: Option<&git2::Tree<'_>>,
    to: Option<&git2::Tree<'_>>,
) -> Result<Vec<String>> {
    let diff = repo
        .diff_tree_to_tree(from, to, None)
        .git_ctx("diffing two trees")?;
    let mut paths = BTreeSet::new();
    for delta in diff.deltas() {
        for file in [delta.old_file(), delta.new_file()] {
            if let Some(p) = file.path().and_then(Path::to_str) {
                paths.insert(p.to_owned());
            }
        }
    }
    Ok(paths.into_iter().collect())
}

#[async_trait]
impl GitSource for LocalGitSource {
    async fn resolve(&self, reference: &str) -> Result<CommitId> {
        let reference = reference.to_owned();
        self.with_repo(move |repo| Ok(CommitId(resolve_in(repo, &reference)?.to_string())))
            .await
    }

    async fn read_manifests(&self, commit: &CommitId) -> Result<Vec<SourceFile>> {
        let commit = commit.clone();
        self.with_repo(move |repo| read_manifests_in(repo, &commit))
            .await
    }

    async fn read_files(&self, commit: &CommitId, paths: &[String]) -> Result<Vec<SourceFile>> {
        let commit = commit.clone();
        let paths = paths.to_vec();
        self.with_repo(move |repo| read_files_in(repo, &commit, &paths))
            .await
    }

    async fn changed_paths(&self, from: &CommitId, to: &CommitId) -> Result<Vec<String>> {
        if from == to {
            return Ok(Vec::new());
        }
        let (from, to) = (from.clone(), to.clone());
        self.with_repo(move |repo| {
            let a = find_commit(repo, &from)?
                .tree()
                .git_ctx("reading a commit tree")?;
            let b = find_commit(repo, &to)?
                .tree()
                .git_ctx("reading a commit tree")?;
            changed_paths_in(repo, Some(&a), Some(&b))
        })
        .await
    }

    async fn commit_author(&self, commit: &CommitId) -> Result<Option<String>> {
        let commit = commit.clone();
        self.with_repo(move |repo| commit_author_in(repo, &commit))
            .await
    }

    async fn commits_between(&self, from: &CommitId, to: &CommitId) -> Result<Option<u64>> {
        let (from, to) = (from.clone(), to.clone());
        self.with_repo(move |repo| {
            commits_between_in(repo, &from, &to, george_core::git::COMMITS_BETWEEN_LIMIT).map(Some)
        })
        .await
    }
}
