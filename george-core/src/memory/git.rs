//! [`InMemoryGitSource`]: a [`GitSource`] over commits held in memory.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt;
use std::sync::{Arc, Mutex, MutexGuard};

use async_trait::async_trait;

use crate::error::{Error, Result};
use crate::git::{CommitId, GitSource, MANIFEST_DIRS, SourceFile, is_manifest_path};

/// A full tree: path → content. Contents are shared between commits.
type Tree = BTreeMap<Arc<str>, Arc<[u8]>>;

/// Path → new content (`None`: deleted).
type Changes = BTreeMap<Arc<str>, Option<Arc<[u8]>>>;

/// A commit whose chain back to the nearest full snapshot reaches this length gets a
/// snapshot of its own, so that a read walks back over at most this many commits.
const CHECKPOINT_EVERY: usize = 64;

/// One commit: the paths it changed against its parent, and — every
/// [`CHECKPOINT_EVERY`] commits along a history — a snapshot of the full tree.
struct Node {
    id: CommitId,
    parent: Option<usize>,
    depth: usize,
    message: String,
    /// Path → new content (`None`: deleted) against the parent.
    changes: Changes,
    /// The full tree at this commit, for checkpoint commits.
    snapshot: Option<Arc<Tree>>,
    /// Commits between this one and the nearest ancestor-or-self with a snapshot.
    since_snapshot: usize,
}

#[derive(Default)]
struct Inner {
    nodes: Vec<Node>,
    by_id: HashMap<CommitId, usize>,
    branches: HashMap<String, usize>,
    counter: u64,
    /// Authors set with [`InMemoryGitSource::set_author`].
    authors: HashMap<CommitId, String>,
}

/// A [`GitSource`] over commits held in memory: for tests, examples and benchmarks.
///
/// Clones share state. Each branch has a linear history; [`commit`](Self::commit)
/// appends to it (and creates the branch on first use, as a new root), and
/// [`create_branch`](Self::create_branch) forks a branch off any commit.
/// Commit ids are deterministic: 40 hex characters derived from a counter, the
/// branch and the message, so the same sequence of calls yields the same ids.
///
/// Storage is proportional to what changed: a commit stores only the paths it
/// changed (file contents are shared `Arc<[u8]>`s, never copied), plus a full-tree
/// snapshot every 64 commits along a history so that reads stay cheap.
/// `changed_paths` between an ancestor and a descendant costs O(changes between them),
/// whatever the size of the tree.
///
/// ```
/// use george_core::git::GitSource;
/// use george_core::memory::InMemoryGitSource;
///
/// # tokio::runtime::Builder::new_current_thread().build().unwrap().block_on(async {
/// let git = InMemoryGitSource::new();
/// let first = git.commit("main", [("jobs/a.yaml", Some("kind: Job"))], "add a");
/// let second = git.commit("main", [("jobs/a.yaml", None::<&str>)], "remove a");
/// assert_eq!(git.resolve("main").await.unwrap(), second);
/// assert_eq!(git.read_manifests(&first).await.unwrap().len(), 1);
/// assert_eq!(git.changed_paths(&first, &second).await.unwrap(), vec!["jobs/a.yaml"]);
/// # });
/// ```
#[derive(Clone, Default)]
pub struct InMemoryGitSource {
    inner: Arc<Mutex<Inner>>,
}

impl fmt::Debug for InMemoryGitSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let inner = self.lock();
        f.debug_struct("InMemoryGitSource")
            .field("commits", &inner.nodes.len())
            .field("branches", &inner.branches.len())
            .finish()
    }
}

impl InMemoryGitSource {
    /// An empty source: no commits, no branches.
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> MutexGuard<'_, Inner> {
        // The state is never left half-updated by a panic, so a poisoned lock is usable.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// Commits `files` on `branch` and returns the new commit's id.
    ///
    /// Each item is a path and its new content, or `None` to delete the path.
    /// The branch is created (as a new root commit) if it does not exist yet.
    /// A commit with no changes is allowed (like `git commit --allow-empty`).
    pub fn commit<P, B>(
        &self,
        branch: &str,
        files: impl IntoIterator<Item = (P, Option<B>)>,
        message: &str,
    ) -> CommitId
    where
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        let changes: Changes = files
            .into_iter()
            .map(|(p, b)| (Arc::from(p.as_ref()), b.map(|b| Arc::from(b.as_ref()))))
            .collect();
        let mut inner = self.lock();
        inner.counter += 1;
        let id = CommitId(commit_hash(inner.counter, branch, message));
        let parent = inner.branches.get(branch).copied();
        let (depth, since) = match parent {
            Some(p) => (inner.nodes[p].depth + 1, inner.nodes[p].since_snapshot + 1),
            None => (0, 0),
        };
        let snapshot = if parent.is_none() || since >= CHECKPOINT_EVERY {
            let mut tree = match parent {
                Some(p) => inner.materialize(p),
                None => Tree::new(),
            };
            apply(&mut tree, &changes);
            Some(Arc::new(tree))
        } else {
            None
        };
        let index = inner.nodes.len();
        inner.nodes.push(Node {
            id: id.clone(),
            parent,
            depth,
            message: message.to_owned(),
            changes,
            since_snapshot: if snapshot.is_some() { 0 } else { since },
            snapshot,
        });
        inner.by_id.insert(id.clone(), index);
        inner.branches.insert(branch.to_owned(), index);
        id
    }

    /// Records `author` (`Name <email>`) as the author of `commit`, as
    /// [`GitSource::commit_author`] reports it (commits have no author until set).
    pub fn set_author(&self, commit: &CommitId, author: impl Into<String>) {
        self.lock().authors.insert(commit.clone(), author.into());
    }

    /// Commits writes only (no deletions): a shorthand for [`commit`](Self::commit).
    pub fn commit_files<P, B>(
        &self,
        branch: &str,
        files: impl IntoIterator<Item = (P, B)>,
        message: &str,
    ) -> CommitId
    where
        P: AsRef<str>,
        B: AsRef<[u8]>,
    {
        self.commit(
            branch,
            files.into_iter().map(|(p, b)| (p, Some(b))),
            message,
        )
    }

    /// Creates (or moves) `branch` to point at `at`, so that later commits on it fork
    /// from there.
    ///
    /// # Errors
    /// `NotFound` if `at` is not a commit of this source.
    pub fn create_branch(&self, branch: &str, at: &CommitId) -> Result<()> {
        let mut inner = self.lock();
        let index = inner.index_of(at)?;
        inner.branches.insert(branch.to_owned(), index);
        Ok(())
    }

    /// The commit `branch` points at, if the branch exists.
    pub fn head(&self, branch: &str) -> Option<CommitId> {
        let inner = self.lock();
        inner
            .branches
            .get(branch)
            .map(|&i| inner.nodes[i].id.clone())
    }

    /// The message of `commit`, if it is a commit of this source.
    pub fn message(&self, commit: &CommitId) -> Option<String> {
        let inner = self.lock();
        inner
            .by_id
            .get(commit)
            .map(|&i| inner.nodes[i].message.clone())
    }

    /// How many commits the source holds (on all branches).
    pub fn commit_count(&self) -> usize {
        self.lock().nodes.len()
    }
}

/// 40 hex characters from FNV-1a hashes of the counter, the branch and the message.
fn commit_hash(counter: u64, branch: &str, message: &str) -> String {
    let mut out = String::with_capacity(48);
    for round in 0u8..3 {
        let mut h: u64 = 0xcbf2_9ce4_8422_2325;
        let mut feed = |bytes: &[u8]| {
            for &b in bytes {
                h ^= u64::from(b);
                h = h.wrapping_mul(0x0000_0100_0000_01b3);
            }
        };
        feed(&[round]);
        feed(&counter.to_le_bytes());
        feed(branch.as_bytes());
        feed(&[0]);
        feed(message.as_bytes());
        out.push_str(&format!("{h:016x}"));
    }
    out.truncate(40);
    out
}

fn apply(tree: &mut Tree, changes: &Changes) {
    for (path, content) in changes {
        match content {
            Some(bytes) => {
                tree.insert(path.clone(), bytes.clone());
            }
            None => {
                tree.remove(path);
            }
        }
    }
}

impl Inner {
    fn index_of(&self, commit: &CommitId) -> Result<usize> {
        self.by_id
            .get(commit)
            .copied()
            .ok_or_else(|| Error::not_found(format!("commit {commit} not found")))
    }

    /// The content of `path` at commit `index`: walks back to the nearest change of
    /// the path or the nearest snapshot (at most [`CHECKPOINT_EVERY`] commits).
    fn lookup(&self, mut index: usize, path: &str) -> Option<Arc<[u8]>> {
        loop {
            let node = &self.nodes[index];
            if let Some(snapshot) = &node.snapshot {
                return snapshot.get(path).cloned();
            }
            if let Some(change) = node.changes.get(path) {
                return change.clone();
            }
            index = node.parent?;
        }
    }

    /// The commits from `index` back to (and including) its nearest snapshot, newest
    /// first, and that snapshot.
    fn chain(&self, mut index: usize) -> (Vec<usize>, Arc<Tree>) {
        let mut chain = Vec::new();
        loop {
            let node = &self.nodes[index];
            if let Some(snapshot) = &node.snapshot {
                return (chain, snapshot.clone());
            }
            chain.push(index);
            match node.parent {
                Some(p) => index = p,
                // Unreachable: roots always carry a snapshot. Be total anyway.
                None => return (chain, Arc::new(Tree::new())),
            }
        }
    }

    /// The full tree at commit `index`.
    fn materialize(&self, index: usize) -> Tree {
        let (chain, snapshot) = self.chain(index);
        let mut tree = (*snapshot).clone();
        for &i in chain.iter().rev() {
            apply(&mut tree, &self.nodes[i].changes);
        }
        tree
    }

    /// The paths changed since the nearest snapshot (newest change wins), and it.
    fn overlay(&self, index: usize) -> (Changes, Arc<Tree>) {
        let (chain, snapshot) = self.chain(index);
        let mut overlay = BTreeMap::new();
        for &i in &chain {
            for (path, content) in &self.nodes[i].changes {
                overlay
                    .entry(path.clone())
                    .or_insert_with(|| content.clone());
            }
        }
        (overlay, snapshot)
    }

    fn manifests(&self, index: usize) -> Vec<SourceFile> {
        let (overlay, snapshot) = self.overlay(index);
        let mut out: BTreeMap<Arc<str>, Arc<[u8]>> = BTreeMap::new();
        for dir in MANIFEST_DIRS {
            let under = snapshot
                .range::<str, _>((std::ops::Bound::Included(dir), std::ops::Bound::Unbounded))
                .take_while(|(p, _)| p.starts_with(dir));
            for (path, bytes) in under {
                if is_manifest_path(path) && !overlay.contains_key(path) {
                    out.insert(path.clone(), bytes.clone());
                }
            }
        }
        for (path, content) in overlay {
            if let Some(bytes) = content {
                if is_manifest_path(&path) {
                    out.insert(path, bytes);
                }
            }
        }
        out.into_iter()
            .map(|(path, bytes)| SourceFile {
                path: path.to_string(),
                bytes: bytes.to_vec(),
            })
            .collect()
    }

    /// Candidate paths changed between `a` and `b`, walking both back to their most
    /// recent common ancestor; `None` when the histories are unrelated.
    fn candidates(&self, mut a: usize, mut b: usize) -> Option<BTreeSet<Arc<str>>> {
        let mut paths = BTreeSet::new();
        let add = |index: usize, paths: &mut BTreeSet<Arc<str>>| {
            paths.extend(self.nodes[index].changes.keys().cloned());
        };
        while self.nodes[a].depth > self.nodes[b].depth {
            add(a, &mut paths);
            a = self.nodes[a].parent?;
        }
        while self.nodes[b].depth > self.nodes[a].depth {
            add(b, &mut paths);
            b = self.nodes[b].parent?;
        }
        while a != b {
            add(a, &mut paths);
            add(b, &mut paths);
            a = self.nodes[a].parent?;
            b = self.nodes[b].parent?;
        }
        Some(paths)
    }

    /// Commits reachable from `b` and not from `a`, counting up to `limit`.
    fn count_between(&self, mut a: usize, mut b: usize, limit: u64) -> u64 {
        let mut n = 0;
        while self.nodes[b].depth > self.nodes[a].depth && n < limit {
            n += 1;
            match self.nodes[b].parent {
                Some(p) => b = p,
                None => return n,
            }
        }
        while self.nodes[a].depth > self.nodes[b].depth {
            match self.nodes[a].parent {
                Some(p) => a = p,
                None => break,
            }
        }
        while a != b && n < limit {
            n += 1;
            match (self.nodes[a].parent, self.nodes[b].parent) {
                (Some(pa), Some(pb)) => (a, b) = (pa, pb),
                // Unrelated histories: every commit of `b`'s is new.
                _ => return n,
            }
        }
        n
    }

    fn changed_paths(&self, a: usize, b: usize) -> Vec<String> {
        if a == b {
            return Vec::new();
        }
        match self.candidates(a, b) {
            Some(candidates) => candidates
                .into_iter()
                .filter(|p| !same(&self.lookup(a, p), &self.lookup(b, p)))
                .map(|p| p.to_string())
                .collect(),
            None => {
                // Unrelated histories: compare the full trees.
                let (ta, tb) = (self.materialize(a), self.materialize(b));
                let keys: BTreeSet<&Arc<str>> = ta.keys().chain(tb.keys()).collect();
                keys.into_iter()
                    .filter(|p| !same(&ta.get(*p).cloned(), &tb.get(*p).cloned()))
                    .map(|p| p.to_string())
                    .collect()
            }
        }
    }
}

fn same(a: &Option<Arc<[u8]>>, b: &Option<Arc<[u8]>>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(x), Some(y)) => Arc::ptr_eq(x, y) || x[..] == y[..],
        _ => false,
    }
}

#[async_trait]
impl GitSource for InMemoryGitSource {
    async fn commit_author(&self, commit: &CommitId) -> Result<Option<String>> {
        Ok(self.lock().authors.get(commit).cloned())
    }

    async fn commits_between(&self, from: &CommitId, to: &CommitId) -> Result<Option<u64>> {
        let inner = self.lock();
        let (a, b) = (inner.index_of(from)?, inner.index_of(to)?);
        Ok(Some(inner.count_between(
            a,
            b,
            crate::git::COMMITS_BETWEEN_LIMIT,
        )))
    }

    async fn resolve(&self, reference: &str) -> Result<CommitId> {
        let inner = self.lock();
        if let Some(&i) = inner.branches.get(reference) {
            return Ok(inner.nodes[i].id.clone());
        }
        let id = CommitId(reference.to_owned());
        if inner.by_id.contains_key(&id) {
            return Ok(id);
        }
        Err(Error::not_found(format!(
            "reference {reference:?} is neither a branch nor a commit"
        )))
    }

    async fn read_manifests(&self, commit: &CommitId) -> Result<Vec<SourceFile>> {
        let inner = self.lock();
        let index = inner.index_of(commit)?;
        Ok(inner.manifests(index))
    }

    async fn read_files(&self, commit: &CommitId, paths: &[String]) -> Result<Vec<SourceFile>> {
        let inner = self.lock();
        let index = inner.index_of(commit)?;
        Ok(paths
            .iter()
            .filter_map(|path| {
                inner.lookup(index, path).map(|bytes| SourceFile {
                    path: path.clone(),
                    bytes: bytes.to_vec(),
                })
            })
            .collect())
    }

    async fn changed_paths(&self, from: &CommitId, to: &CommitId) -> Result<Vec<String>> {
        let inner = self.lock();
        let a = inner.index_of(from)?;
        let b = inner.index_of(to)?;
        Ok(inner.changed_paths(a, b))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::error::ErrorKind;

    fn block_on<F: std::future::Future>(f: F) -> F::Output {
        tokio::runtime::Builder::new_current_thread()
            .build()
            .expect("runtime")
            .block_on(f)
    }

    fn paths(files: &[SourceFile]) -> Vec<&str> {
        files.iter().map(|f| f.path.as_str()).collect()
    }

    #[test]
    fn ids_are_deterministic_and_40_hex() {
        let a = InMemoryGitSource::new();
        let b = InMemoryGitSource::new();
        let ia = a.commit_files("main", [("x", "1")], "m");
        let ib = b.commit_files("main", [("x", "1")], "m");
        assert_eq!(ia, ib);
        assert_eq!(ia.as_str().len(), 40);
        assert!(ia.as_str().bytes().all(|c| c.is_ascii_hexdigit()));
        let ia2 = a.commit_files("main", [("x", "1")], "m");
        assert_ne!(ia, ia2);
    }

    #[test]
    fn resolve_branch_and_commit() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let c1 = git.commit_files("main", [("jobs/a.yaml", "a")], "1");
            let c2 = git.commit_files("main", [("jobs/b.yaml", "b")], "2");
            assert_eq!(git.resolve("main").await.unwrap(), c2);
            assert_eq!(git.resolve(c1.as_str()).await.unwrap(), c1);
            let err = git.resolve("nope").await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            let err = git
                .read_manifests(&CommitId("deadbeef".into()))
                .await
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
            assert_eq!(git.head("main"), Some(c2.clone()));
            assert_eq!(git.head("other"), None);
            assert_eq!(git.message(&c2).as_deref(), Some("2"));
        });
    }

    #[test]
    fn commits_between_counts_what_to_has_and_from_has_not() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let c1 = git.commit_files("main", [("a", "1")], "1");
            let c2 = git.commit_files("main", [("a", "2")], "2");
            let c3 = git.commit_files("main", [("a", "3")], "3");
            git.create_branch("side", &c1).unwrap();
            let s1 = git.commit_files("side", [("b", "1")], "s1");
            let other = git.commit_files("lone", [("c", "1")], "root");
            let n = |a: &CommitId, b: &CommitId| {
                let (a, b) = (a.clone(), b.clone());
                let git = git.clone();
                async move { git.commits_between(&a, &b).await.unwrap() }
            };
            assert_eq!(n(&c1, &c3).await, Some(2));
            assert_eq!(n(&c2, &c3).await, Some(1));
            assert_eq!(n(&c3, &c3).await, Some(0));
            assert_eq!(n(&c3, &c1).await, Some(0), "an ancestor");
            assert_eq!(n(&s1, &c3).await, Some(2), "diverged: c2 and c3");
            assert_eq!(n(&c3, &s1).await, Some(1));
            assert_eq!(
                n(&c3, &other).await,
                Some(1),
                "unrelated: its whole history"
            );
            // Counting stops at the limit.
            {
                let inner = git.lock();
                let (i1, i3) = (inner.index_of(&c1).unwrap(), inner.index_of(&c3).unwrap());
                assert_eq!(inner.count_between(i1, i3, 1), 1);
            }
            let unknown = CommitId("nope".into());
            let err = git.commits_between(&unknown, &c1).await.unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
        });
    }

    #[test]
    fn clones_share_state() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let other = git.clone();
            let c = other.commit_files("main", [("jobs/a.yaml", "a")], "1");
            assert_eq!(git.resolve("main").await.unwrap(), c);
        });
    }

    #[test]
    fn read_manifests_filters_and_sees_history() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let c1 = git.commit_files(
                "main",
                [
                    ("agent-specs/coder.yaml", "a"),
                    ("task-templates/t.yml", "t"),
                    ("jobs/team/j.yaml", "j"),
                    ("jobs/readme.md", "no"),
                    ("src/main.rs", "no"),
                    ("jobsx/a.yaml", "no"),
                ],
                "init",
            );
            let c2 = git.commit("main", [("jobs/team/j.yaml", None::<&str>)], "rm");
            let c3 = git.commit_files("main", [("jobs/k.yaml", "k")], "add");
            assert_eq!(
                paths(&git.read_manifests(&c1).await.unwrap()),
                [
                    "agent-specs/coder.yaml",
                    "jobs/team/j.yaml",
                    "task-templates/t.yml"
                ]
            );
            assert_eq!(
                paths(&git.read_manifests(&c2).await.unwrap()),
                ["agent-specs/coder.yaml", "task-templates/t.yml"]
            );
            let m3 = git.read_manifests(&c3).await.unwrap();
            assert_eq!(
                paths(&m3),
                [
                    "agent-specs/coder.yaml",
                    "jobs/k.yaml",
                    "task-templates/t.yml"
                ]
            );
            assert_eq!(m3[1].bytes, b"k");
        });
    }

    #[test]
    fn read_files_at_commit() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let c1 = git.commit_files("main", [("a", "1"), ("b", "1")], "1");
            let c2 = git.commit("main", [("a", Some("2")), ("b", None)], "2");
            let want = vec!["a".to_owned(), "b".to_owned(), "missing".to_owned()];
            let f1 = git.read_files(&c1, &want).await.unwrap();
            assert_eq!(paths(&f1), ["a", "b"]);
            assert_eq!(f1[0].bytes, b"1");
            let f2 = git.read_files(&c2, &want).await.unwrap();
            assert_eq!(paths(&f2), ["a"]);
            assert_eq!(f2[0].bytes, b"2");
        });
    }

    #[test]
    fn changed_paths_linear_and_reverted() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let c1 = git.commit_files("main", [("a", "1"), ("b", "1")], "1");
            let c2 = git.commit("main", [("a", Some("2")), ("c", Some("x"))], "2");
            let c3 = git.commit("main", [("a", Some("1")), ("b", None::<&str>)], "3");
            assert_eq!(git.changed_paths(&c1, &c2).await.unwrap(), ["a", "c"]);
            assert_eq!(git.changed_paths(&c2, &c1).await.unwrap(), ["a", "c"]);
            // `a` went 1 → 2 → 1: unchanged between c1 and c3.
            assert_eq!(git.changed_paths(&c1, &c3).await.unwrap(), ["b", "c"]);
            assert!(git.changed_paths(&c3, &c3).await.unwrap().is_empty());
            // Deleting a path that never existed changes nothing.
            let c4 = git.commit("main", [("ghost", None::<&str>)], "4");
            assert!(git.changed_paths(&c3, &c4).await.unwrap().is_empty());
        });
    }

    #[test]
    fn branches_fork_and_diff_through_common_ancestor() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let base = git.commit_files("main", [("a", "1"), ("b", "1")], "base");
            git.create_branch("feature", &base).unwrap();
            let m = git.commit_files("main", [("a", "main")], "m");
            let f = git.commit_files("feature", [("b", "feat"), ("c", "new")], "f");
            assert_eq!(git.resolve("feature").await.unwrap(), f);
            assert_eq!(git.changed_paths(&m, &f).await.unwrap(), ["a", "b", "c"]);
            let err = git
                .create_branch("x", &CommitId("nope".into()))
                .unwrap_err();
            assert_eq!(err.kind(), ErrorKind::NotFound);
        });
    }

    #[test]
    fn unrelated_histories_diff_full_trees() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let a = git.commit_files("one", [("same", "s"), ("x", "1")], "a");
            let b = git.commit_files("two", [("same", "s"), ("y", "1")], "b");
            assert_eq!(git.changed_paths(&a, &b).await.unwrap(), ["x", "y"]);
        });
    }

    #[test]
    fn long_histories_cross_checkpoints() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let first = git.commit_files("main", [("jobs/base.yaml", "b")], "0");
            let mut ids = vec![first.clone()];
            for i in 0..(CHECKPOINT_EVERY * 3 + 5) {
                let path = format!("jobs/j{}.yaml", i % 10);
                ids.push(git.commit_files("main", [(path, i.to_string())], "n"));
            }
            let head = ids.last().unwrap().clone();
            let manifests = git.read_manifests(&head).await.unwrap();
            assert_eq!(manifests.len(), 11);
            let base = git
                .read_files(&head, &["jobs/base.yaml".to_owned()])
                .await
                .unwrap();
            assert_eq!(base[0].bytes, b"b");
            let changed = git.changed_paths(&first, &head).await.unwrap();
            assert_eq!(changed.len(), 10);
            let mid = &ids[CHECKPOINT_EVERY + 1];
            let one = git
                .changed_paths(mid, &ids[CHECKPOINT_EVERY + 2])
                .await
                .unwrap();
            assert_eq!(one.len(), 1);
        });
    }

    #[test]
    fn large_tree_single_change_is_cheap() {
        block_on(async {
            let git = InMemoryGitSource::new();
            let files: Vec<(String, String)> = (0..20_000)
                .map(|i| (format!("jobs/j{i}.yaml"), format!("n: {i}")))
                .collect();
            let c1 = git.commit_files("main", files, "big");
            let c2 = git.commit_files("main", [("jobs/j7.yaml", "changed")], "one");
            assert_eq!(git.changed_paths(&c1, &c2).await.unwrap(), ["jobs/j7.yaml"]);
            assert_eq!(git.read_manifests(&c2).await.unwrap().len(), 20_000);
        });
    }
}
