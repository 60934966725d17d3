//! The versioned tree behind [`CrSource`](super::CrSource): the manifests rendered from
//! the watched custom resources, with a revision per change, so the engine can ask what
//! changed between two revisions and read the files at one — what a Git commit gives it.
//!
//! Pure: no I/O, table-tested below.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use george_core::git::CommitId;

/// Bytes of one rendered manifest.
pub(crate) type Bytes = Arc<[u8]>;

/// The manifests at every revision still needed.
#[derive(Debug)]
pub(crate) struct Tree {
    /// Distinguishes this process's revisions from another's (a restarted engine's
    /// last reconciled commit is from an earlier tree).
    epoch: String,
    /// The current revision: 0 while empty, +1 per change.
    rev: u64,
    /// Per path, its versions in ascending revision (`None`: removed at that revision).
    /// Versions older than the last one at or before `floor` are pruned.
    history: BTreeMap<String, Vec<(u64, Option<Bytes>)>>,
    /// Revisions below this are no longer answered exactly.
    floor: u64,
}

impl Tree {
    /// An empty tree whose commit ids start with `epoch`.
    pub(crate) fn new(epoch: impl Into<String>) -> Tree {
        Tree {
            epoch: epoch.into(),
            rev: 0,
            history: BTreeMap::new(),
            floor: 0,
        }
    }

    /// The current revision as a commit id: `<epoch>.<revision>`.
    pub(crate) fn head(&self) -> CommitId {
        CommitId(format!("{}.{}", self.epoch, self.rev))
    }

    /// The revision of `commit` when it is one of this tree's.
    fn revision(&self, commit: &CommitId) -> Option<u64> {
        let (epoch, rev) = commit.as_str().rsplit_once('.')?;
        let rev: u64 = rev.parse().ok()?;
        (epoch == self.epoch && rev <= self.rev).then_some(rev)
    }

    fn current(&self, path: &str) -> Option<&Bytes> {
        self.history
            .get(path)
            .and_then(|v| v.last())
            .and_then(|(_, b)| b.as_ref())
    }

    /// Sets `path` to `bytes` (`None` removes it). Returns whether anything changed: an
    /// identical write is not a change and makes no revision.
    pub(crate) fn put(&mut self, path: &str, bytes: Option<Bytes>) -> bool {
        if self.current(path) == bytes.as_ref() {
            return false;
        }
        self.rev += 1;
        self.history
            .entry(path.to_string())
            .or_default()
            .push((self.rev, bytes));
        true
    }

    /// Replaces every present path under `prefix` by `files` (a relist: what is not in
    /// `files` was removed), as one revision. Returns whether anything changed.
    pub(crate) fn replace_prefix(&mut self, prefix: &str, files: BTreeMap<String, Bytes>) -> bool {
        let gone: Vec<String> = self
            .present_at(self.rev)
            .into_iter()
            .filter(|(p, _)| p.starts_with(prefix) && !files.contains_key(p))
            .map(|(p, _)| p)
            .collect();
        let changes: Vec<(String, Option<Bytes>)> = gone
            .into_iter()
            .map(|p| (p, None))
            .chain(
                files
                    .into_iter()
                    .filter(|(p, b)| self.current(p) != Some(b))
                    .map(|(p, b)| (p, Some(b))),
            )
            .collect();
        if changes.is_empty() {
            return false;
        }
        self.rev += 1;
        for (p, b) in changes {
            self.history.entry(p).or_default().push((self.rev, b));
        }
        true
    }

    fn at(&self, path: &str, rev: u64) -> Option<&Bytes> {
        let versions = self.history.get(path)?;
        let i = versions.partition_point(|(r, _)| *r <= rev);
        versions[..i].last().and_then(|(_, b)| b.as_ref())
    }

    /// Every present path and its bytes at revision `rev`.
    pub(crate) fn present_at(&self, rev: u64) -> Vec<(String, Bytes)> {
        self.history
            .keys()
            .filter_map(|p| self.at(p, rev).map(|b| (p.clone(), b.clone())))
            .collect()
    }

    /// The files at `commit`.
    ///
    /// # Errors
    /// `None` when `commit` is not one of this tree's revisions still answered.
    pub(crate) fn files_at(&self, commit: &CommitId) -> Option<Vec<(String, Bytes)>> {
        let rev = self.revision(commit).filter(|r| *r >= self.floor)?;
        Some(self.present_at(rev))
    }

    /// The given paths' bytes at `commit` (absent paths left out); `None` as for
    /// [`Tree::files_at`].
    pub(crate) fn read_at(
        &self,
        commit: &CommitId,
        paths: &[String],
    ) -> Option<Vec<(String, Bytes)>> {
        let rev = self.revision(commit).filter(|r| *r >= self.floor)?;
        Some(
            paths
                .iter()
                .filter_map(|p| self.at(p, rev).map(|b| (p.clone(), b.clone())))
                .collect(),
        )
    }

    /// Paths whose bytes differ between `from` and `to`. When `from` is not answered
    /// exactly (another epoch, pruned), every path the tree knows (present or removed):
    /// reading them at `to` tells the caller what is there and what is gone. `None` when
    /// `to` is unknown.
    pub(crate) fn changed(&self, from: &CommitId, to: &CommitId) -> Option<Vec<String>> {
        let to = self.revision(to).filter(|r| *r >= self.floor)?;
        let Some(from) = self.revision(from).filter(|r| *r >= self.floor) else {
            return Some(self.history.keys().cloned().collect());
        };
        let (lo, hi) = (from.min(to), from.max(to));
        Some(
            self.history
                .iter()
                .filter(|(_, v)| v.iter().any(|(r, _)| *r > lo && *r <= hi))
                .filter(|(p, _)| self.at(p, lo) != self.at(p, hi))
                .map(|(p, _)| p.clone())
                .collect(),
        )
    }

    /// Forgets versions no reader at or after revision `floor` needs. Removed paths stay
    /// as one tombstone each (a reader from another epoch learns of the removal).
    pub(crate) fn prune(&mut self, floor: u64) {
        let floor = floor.min(self.rev);
        if floor <= self.floor {
            return;
        }
        self.floor = floor;
        for versions in self.history.values_mut() {
            let keep_from = versions
                .partition_point(|(r, _)| *r <= floor)
                .saturating_sub(1);
            versions.drain(..keep_from);
        }
    }

    /// The current revision.
    pub(crate) fn revision_now(&self) -> u64 {
        self.rev
    }

    /// Paths present now.
    pub(crate) fn paths(&self) -> BTreeSet<String> {
        self.present_at(self.rev)
            .into_iter()
            .map(|(p, _)| p)
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn b(s: &str) -> Option<Bytes> {
        Some(Arc::from(s.as_bytes()))
    }

    fn c(rev: u64) -> CommitId {
        CommitId(format!("e.{rev}"))
    }

    #[test]
    fn revisions_changes_and_reads() {
        let mut t = Tree::new("e");
        assert_eq!(t.head(), c(0));
        assert!(t.put("jobs/ns/a.yaml", b("a1")));
        assert!(
            !t.put("jobs/ns/a.yaml", b("a1")),
            "the same bytes make no revision"
        );
        assert!(t.put("jobs/ns/b.yaml", b("b1")));
        assert!(t.put("jobs/ns/a.yaml", b("a2")));
        assert!(t.put("jobs/ns/b.yaml", None));
        assert!(
            !t.put("jobs/ns/zz.yaml", None),
            "removing the absent changes nothing"
        );
        assert_eq!(t.head(), c(4));
        // (from, to) -> changed paths
        let table: [(u64, u64, &[&str]); 5] = [
            (0, 4, &["jobs/ns/a.yaml"]),
            (1, 4, &["jobs/ns/a.yaml"]),
            (2, 4, &["jobs/ns/a.yaml", "jobs/ns/b.yaml"]),
            (3, 4, &["jobs/ns/b.yaml"]),
            (4, 4, &[]),
        ];
        for (from, to, want) in table {
            assert_eq!(t.changed(&c(from), &c(to)).unwrap(), want, "{from}..{to}");
        }
        let at = |rev| t.files_at(&c(rev)).unwrap();
        assert_eq!(at(2).len(), 2);
        assert_eq!(
            at(4),
            vec![("jobs/ns/a.yaml".to_string(), Arc::from(&b"a2"[..]))]
        );
        assert_eq!(
            t.read_at(&c(2), &["jobs/ns/b.yaml".into()]).unwrap().len(),
            1
        );
        assert!(t.files_at(&c(9)).is_none(), "a revision not made yet");
        assert!(t.files_at(&CommitId("other.1".into())).is_none());
    }

    #[test]
    fn an_unknown_base_lists_every_path_known() {
        let mut t = Tree::new("e");
        t.put("jobs/ns/a.yaml", b("a"));
        t.put("jobs/ns/b.yaml", b("b"));
        t.put("jobs/ns/b.yaml", None);
        let all = t
            .changed(&CommitId("earlier-process.7".into()), &t.head())
            .unwrap();
        assert_eq!(all, ["jobs/ns/a.yaml", "jobs/ns/b.yaml"]);
    }

    #[test]
    fn a_relist_replaces_one_kind_in_one_revision() {
        let mut t = Tree::new("e");
        t.put("jobs/ns/a.yaml", b("a"));
        t.put("jobs/ns/b.yaml", b("b"));
        t.put("agent-specs/ns/x.yaml", b("x"));
        let mut relist = BTreeMap::new();
        relist.insert("jobs/ns/b.yaml".to_string(), Arc::from(&b"b2"[..]));
        relist.insert("jobs/ns/c.yaml".to_string(), Arc::from(&b"c"[..]));
        let before = t.head();
        assert!(t.replace_prefix("jobs/", relist.clone()));
        assert_eq!(t.revision_now(), 4);
        assert_eq!(
            t.changed(&before, &t.head()).unwrap(),
            ["jobs/ns/a.yaml", "jobs/ns/b.yaml", "jobs/ns/c.yaml"]
        );
        assert!(
            t.paths().contains("agent-specs/ns/x.yaml"),
            "other kinds untouched"
        );
        assert!(
            !t.replace_prefix("jobs/", relist),
            "the same relist again changes nothing"
        );
    }

    #[test]
    fn pruning_keeps_what_readers_at_the_floor_need() {
        let mut t = Tree::new("e");
        t.put("jobs/ns/a.yaml", b("a1")); // 1
        t.put("jobs/ns/a.yaml", b("a2")); // 2
        t.put("jobs/ns/b.yaml", b("b1")); // 3
        t.put("jobs/ns/b.yaml", None); // 4
        t.prune(3);
        assert_eq!(t.history["jobs/ns/a.yaml"].len(), 1, "only a2 is needed");
        assert_eq!(t.changed(&c(3), &c(4)).unwrap(), ["jobs/ns/b.yaml"]);
        assert_eq!(t.files_at(&c(3)).unwrap().len(), 2);
        // Below the floor: not answered exactly; changes from there are everything.
        assert!(t.files_at(&c(2)).is_none());
        assert_eq!(t.changed(&c(1), &c(4)).unwrap().len(), 2);
        t.prune(4);
        assert_eq!(t.history["jobs/ns/b.yaml"].len(), 1, "one tombstone stays");
    }
}
