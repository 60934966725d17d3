//! Test helpers: real repositories in temporary directories.
#![allow(dead_code, unreachable_pub)]

use std::path::Path;
use std::process::Command;

use git2::{Oid, Repository, RepositoryInitOptions, Signature};
use tempfile::TempDir;

/// A non-bare repository whose HEAD is `main`.
pub struct TestRepo {
    pub dir: TempDir,
    pub repo: Repository,
}

impl TestRepo {
    pub fn new() -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let mut opts = RepositoryInitOptions::new();
        opts.initial_head("main");
        let repo = Repository::init_opts(dir.path(), &opts).expect("init");
        {
            let mut cfg = repo.config().expect("config");
            cfg.set_str("user.name", "Test").expect("user.name");
            cfg.set_str("user.email", "test@example.com")
                .expect("user.email");
            cfg.set_bool("commit.gpgsign", false).expect("gpgsign");
        }
        TestRepo { dir, repo }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Writes (`Some`) or deletes (`None`) files in the working tree, stages them
    /// and commits on HEAD.
    pub fn commit(&self, files: &[(&str, Option<&str>)], message: &str) -> Oid {
        let mut index = self.repo.index().expect("index");
        for (path, content) in files {
            let full = self.path().join(path);
            match content {
                Some(c) => {
                    std::fs::create_dir_all(full.parent().expect("parent")).expect("mkdir");
                    std::fs::write(&full, c).expect("write");
                    index.add_path(Path::new(path)).expect("add");
                }
                None => {
                    std::fs::remove_file(&full).expect("rm");
                    index.remove_path(Path::new(path)).expect("remove");
                }
            }
        }
        self.commit_index(&mut index, message)
    }

    /// Renames a file (working tree and index) and commits.
    pub fn rename(&self, from: &str, to: &str, message: &str) -> Oid {
        let mut index = self.repo.index().expect("index");
        let dst = self.path().join(to);
        std::fs::create_dir_all(dst.parent().expect("parent")).expect("mkdir");
        std::fs::rename(self.path().join(from), &dst).expect("rename");
        index.remove_path(Path::new(from)).expect("remove");
        index.add_path(Path::new(to)).expect("add");
        self.commit_index(&mut index, message)
    }

    fn commit_index(&self, index: &mut git2::Index, message: &str) -> Oid {
        index.write().expect("write index");
        let tree_id = index.write_tree().expect("write tree");
        let tree = self.repo.find_tree(tree_id).expect("tree");
        let sig = Signature::now("Test", "test@example.com").expect("sig");
        let parent = self.repo.head().ok().and_then(|h| h.peel_to_commit().ok());
        let parents: Vec<&git2::Commit<'_>> = parent.iter().collect();
        self.repo
            .commit(Some("HEAD"), &sig, &sig, message, &tree, &parents)
            .expect("commit")
    }

    /// Runs the `git` program in the repository and returns its standard output.
    pub fn git(&self, args: &[&str]) -> String {
        let out = Command::new("git")
            .args(args)
            .current_dir(self.path())
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("HOME", self.path())
            .output()
            .expect("run git");
        assert!(
            out.status.success(),
            "git {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).expect("utf-8")
    }

    pub fn head(&self) -> Oid {
        self.repo
            .refname_to_id("refs/heads/main")
            .expect("main exists")
    }

    /// The content of `path` in the working tree.
    pub fn worktree(&self, path: &str) -> Option<String> {
        std::fs::read_to_string(self.path().join(path)).ok()
    }
}
