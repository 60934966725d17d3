//! [`GitWriteTool`]: a [`ToolExecutor`] with which agents read files of a repository
//! and commit changes to it, so that a GitOps change is a real commit.
//!
//! Modules, each taking only what it needs (a branch name, a `Committer`) and none
//! using this one: `args` (the calls' arguments), `scope` (allowed and denied paths),
//! `trailers` (George's commit trailers), `author` and `branch` (who commits, a
//! branch's head, the result), `apply` (changes to a tree), `worktree` (a checkout kept
//! in step), `read` (the read tool), `local` (a commit on disk), `target`, `rebase`
//! and `remote` (a commit pushed to a remote), `settings` and `calls` (the tools'
//! settings and calls), `preview` and `diff` (what a commit call would change, as a
//! unified diff, computed without writing anything).

mod apply;
mod args;
mod author;
mod branch;
mod calls;
mod diff;
mod local;
mod preview;
mod read;
mod rebase;
mod remote;
mod scope;
mod settings;
mod target;
mod trailers;
mod worktree;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use george_core::tool::{
    EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput, ToolPreview,
};
use george_core::{Error, Result};

use crate::local::open_repo;
use args::{commit_schema, read_schema};
use scope::PathScope;
use settings::Settings;

pub use author::GitAuthor;
pub use read::DEFAULT_MAX_READ_BYTES;
pub use scope::DEFAULT_DENIED_PATHS;
pub use target::{BranchMode, DEFAULT_PUSH_RETRIES, RemoteTarget};
pub use trailers::{IDEMPOTENCY_TRAILER, JOB_TRAILER, STEP_TRAILER};

/// How many commits back from the branch head a retried call is recognised by default.
pub const DEFAULT_REPLAY_WINDOW: usize = 20;

/// A [`ToolExecutor`] with two tools over one branch of a repository, local
/// ([`new`](Self::new)) or remote ([`remote`](Self::remote)):
///
/// - **`git_read_file`** `{path, ref?}`: the file's content at the branch head, or at
///   `ref` (a commit id — full or abbreviated —, a branch or a tag; not a revision
///   expression like `main~1`), read from the commit (never from a working tree).
///   Files larger than the read limit ([`with_max_read_bytes`](Self::with_max_read_bytes),
///   default 256 KiB) are **not** read: the result is an error that gives the file's
///   size and the limit (a truncated file, e.g. half a YAML manifest, would mislead an
///   agent more than a refusal). `data`: `{"path", "commit", "bytes", "max_bytes"}`;
/// - **`git_commit`** `{message, changes}`: applies the changes on top of the branch
///   head and commits them with the configured [`GitAuthor`]. Each change is one of
///   `{path, content}` (write the whole file), `{path, find, replace}` (replace the
///   one exact occurrence of `find`; an error result if it occurs zero or several
///   times) or `{path, delete: true}`. The result's `data` is
///   `{"commit": "<hex>", "paths": [...], "branch": "...", "replayed": false}` (over a
///   remote also `"target_branch"`, `"remote"`, `"pushed"` and `"attempts"`).
///
/// With an alias ([`with_alias`](Self::with_alias)) the tools are named
/// `<alias>_read_file` and `<alias>_commit` instead, so that one agent can be given
/// several repositories.
///
/// # Path scope
/// The operator decides which paths an agent may change; a commit call touching any
/// other path is an error result that names the path and the rule that refused it
/// (`data.refused`, `data.rule`), and **nothing** is committed or pushed:
/// - **denied** globs ([`with_denied_paths`](Self::with_denied_paths)) always win;
///   by default [`DEFAULT_DENIED_PATHS`](crate::DEFAULT_DENIED_PATHS) are denied in
///   every repository — George's manifests (`agent-specs/`, `task-templates/`,
///   `jobs/`, `policies/`), with which an agent could rewrite its own permissions,
///   approve its own plans or order work,
///   and CI and submodule configuration (`.github/`, `.gitlab-ci.yml`, `.gitmodules`),
///   with which it could run code on CI. The tool cannot tell whether a repository is
///   also an engine's manifest source, so the safe default holds everywhere; an
///   operator who wants agents to order jobs, say, calls
///   [`without_default_denied_paths`](Self::without_default_denied_paths) (and may
///   deny some of them again);
/// - **allowed** globs ([`with_allowed_paths`](Self::with_allowed_paths)), when any is
///   set, restrict changes to the paths matching one of them.
///
/// Globs use `globset` syntax (`*` within a path component, `**` across them, a
/// trailing `/` for a folder and everything in it); denied globs match
/// case-insensitively. Reads are not scoped. The commit tool's description tells the
/// model the rules.
///
/// # Safety rails
/// - Paths must be relative, `/`-separated, without `.`, `..` or empty components,
///   and outside `.git`; anything else is an error result, never a panic.
/// - **Idempotency**: the commit message gets a trailer
///   `George-Idempotency-Key: <key>`. If one of the last
///   [`DEFAULT_REPLAY_WINDOW`] commits of the branch already carries the call's key,
///   that commit is returned (with `"replayed": true`) instead of committing again, so
///   a call retried after a crash commits once (an approved action, whose key is the
///   same across attempts, too).
/// - **No forged trailers**: the tool alone writes the `George-Idempotency-Key`,
///   `George-Job` and `George-Step` trailers. A commit message that sets one of them
///   (a line starting, after blanks, with the name — in any case — and a `:`) is
///   refused with an error result, and nothing is committed or pushed: otherwise an
///   agent could write a later call's key into its own commit, and that call would be
///   "replayed" as a no-op that reports success.
/// - **Working tree**: when the repository is not bare and its `HEAD` is the branch,
///   the changed files are also written to the working tree and the index, so that
///   `git status` stays clean. A change to a file with uncommitted local edits is
///   refused (an error result) rather than overwriting them.
/// - The branch must exist, except in a repository without any branch, where the
///   first commit creates it.
/// - The branch is moved with a compare-and-swap: if another writer moved it
///   meanwhile, the changes are re-applied on the new head (up to three times).
/// - Calls through one `GitWriteTool` are serialised.
///
/// # Previews
/// [`preview`](ToolExecutor::preview) of a commit call shows what it would commit: a
/// unified diff, `git diff` style, of each file it would change, against the branch
/// head — computed in memory, with the call's own checks (arguments, trailers, path
/// scope, `find` texts, uncommitted edits), so a call that would be refused previews
/// with `is_error` and the reason (a refused path is named, its diff still shown).
/// Nothing is written: no object, no reference, no working-tree file. Over a remote the
/// preview does **not** fetch: it is against the work clone's last fetched head of the
/// branch the commit would go to, and its summary says so. A call whose idempotency
/// key is already on the branch previews as "already committed".
///
/// # Remote repositories
/// [`remote`](Self::remote) targets a repository on a Git server, described by a
/// [`RemoteTarget`] (a [`Remote`](crate::Remote) — URL, credentials, transport,
/// timeouts —, a work folder, retries, branch mode).
/// The tool keeps a **bare** clone in the work folder — changes are applied to trees
/// in its object database, so there is no checkout to keep clean — and for each
/// commit call:
///
/// 1. fetches the target branch (and, in branch mode, the change branches);
/// 2. replays: if one of the last [`DEFAULT_REPLAY_WINDOW`] commits of the remote
///    branch carries the call's idempotency key, returns it (`"replayed": true`) — so
///    a retried call finds its pushed commit, even through another work folder;
/// 3. commits the changes on the remote head as the configured author, with the
///    agent's message and the trailers `George-Job`, `George-Step` (from the call's
///    [`ToolContext`](george_core::tool::ToolContext) when it names them, else from
///    the key: `<job>/<step>/<attempt>/<n>`, or an approved action's
///    `<job>~<step>~<generation>~<attempt>/<index>`) and `George-Idempotency-Key`;
/// 4. pushes (never forced). When the remote refuses because it moved meanwhile
///    (non-fast-forward, or another push won the race for the ref), the tool fetches,
///    **rebases** its commit onto the new head (a three-way cherry-pick: changes to
///    other files or other lines merge cleanly) and pushes again, up to
///    [`RemoteTarget::with_push_retries`] times (default 3), after which the call fails
///    with a transient `Conflict` error. A change that conflicts with the new head
///    (the same lines changed) fails the call with an error result naming the
///    conflicting paths (`data.conflicts`) and **pushes nothing**. A refusal while the
///    remote did not move (a hook, a protected branch) is reported as is.
///
/// In [`BranchMode::PerStep`] the commit goes to a branch `<prefix>/<job>/<step>`
/// (default `george/<job>/<step>`), created from the target branch and added to by
/// later calls of the same step; the result names it in `data.branch` (and the target
/// in `data.target_branch`). Opening the pull or merge request on a forge (GitHub,
/// GitLab, …) is **not** done here: it needs the forge's API and a token, and is left
/// to the embedding application (e.g. a step after the agent's, or a forge rule).
///
/// Transports, credentials and timeouts are the crate's one transport layer, shared
/// with [`RemoteGitSource`](crate::RemoteGitSource) (see [`Remote`](crate::Remote)):
/// libgit2 for `file://`, `git://` and `http://` URLs (and local paths), the `git`
/// program for `https://`, `ssh://` and `user@host:path`. The work clone's `config`
/// holds the URL **without** credentials; a token comes from a variable whose name is
/// configured ([`RemoteTarget::with_credentials_env`]) or from the URL, travels through
/// libgit2's credential callback or the `git` child's environment, is refused over
/// plain `http://` unless allowed, and is never shown to the user's credential helpers.
/// Every fetch and push has a connect, idle and overall timeout (a `Timeout` error,
/// transient). The remote branch must exist (an empty remote is given its first commit
/// by other means). One work folder serves one tool: do not share it between
/// processes.
#[derive(Debug, Clone)]
pub struct GitWriteTool {
    settings: Arc<Settings>,
    commit_lock: Arc<Mutex<()>>,
}

impl GitWriteTool {
    /// A write tool for `branch` of the repository at `path`, committing as `author`,
    /// with the default [path scope](Self#path-scope).
    ///
    /// # Errors
    /// `NotFound` if there is no repository at `path`; `InvalidInput` if `branch` is
    /// not a valid branch name.
    pub fn new(
        path: impl Into<PathBuf>,
        branch: impl Into<String>,
        author: GitAuthor,
    ) -> Result<Self> {
        let path = path.into();
        open_repo(&path)?;
        Self::with_settings(path, branch.into(), author, None)
    }

    /// A write tool for `branch` of a **remote** repository, committing as `author`
    /// in a bare work clone (`target`'s work folder) and pushing; see
    /// [Remote repositories](Self#remote-repositories). No network access happens
    /// here: the first call fetches.
    ///
    /// # Errors
    /// `InvalidInput` if `branch` is not a valid branch name, the [`Remote`](crate::Remote)
    /// is invalid (a bad URL, a credential variable name that is not one, a token over
    /// plain `http://` not allowed), or the work folder holds a clone of another URL;
    /// `Backend` if the work folder cannot be created.
    pub fn remote(
        target: RemoteTarget,
        branch: impl Into<String>,
        author: GitAuthor,
    ) -> Result<Self> {
        let branch = branch.into();
        check_branch(&branch)?;
        target.open_or_init()?;
        Self::with_settings(target.work_dir.clone(), branch, author, Some(target))
    }

    fn with_settings(
        path: PathBuf,
        branch: String,
        author: GitAuthor,
        remote: Option<RemoteTarget>,
    ) -> Result<Self> {
        check_branch(&branch)?;
        let settings = Settings {
            path,
            branch,
            author,
            alias: None,
            replay_window: DEFAULT_REPLAY_WINDOW,
            max_read_bytes: DEFAULT_MAX_READ_BYTES,
            scope: PathScope::default(),
            remote,
        };
        Ok(GitWriteTool {
            settings: Arc::new(settings),
            commit_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The read tool's size limit in bytes (default
    /// [`DEFAULT_MAX_READ_BYTES`](crate::DEFAULT_MAX_READ_BYTES), 256 KiB): a larger
    /// file is not read, and the result is an error that gives its size and the limit.
    pub fn with_max_read_bytes(mut self, bytes: u64) -> Self {
        Arc::make_mut(&mut self.settings).max_read_bytes = bytes;
        self
    }

    /// Names the tools `<alias>_read_file` and `<alias>_commit` (instead of
    /// `git_read_file` and `git_commit`). Use letters, digits, `_` and `-`, as model
    /// APIs require of tool names.
    pub fn with_alias(mut self, alias: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.settings).alias = Some(alias.into());
        self
    }

    /// How many commits back from the branch head a retried call is recognised by its
    /// idempotency key (default [`DEFAULT_REPLAY_WINDOW`]).
    pub fn with_replay_window(mut self, commits: usize) -> Self {
        Arc::make_mut(&mut self.settings).replay_window = commits;
        self
    }

    /// Restricts commits to paths matching one of `globs` (added to any given
    /// before); denied paths stay denied. See [Path scope](Self#path-scope).
    ///
    /// # Errors
    /// `InvalidInput` naming a glob that does not parse.
    pub fn with_allowed_paths<S: AsRef<str>>(
        mut self,
        globs: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        Arc::make_mut(&mut self.settings).scope.allow(globs)?;
        Ok(self)
    }

    /// Refuses commits touching a path matching one of `globs` (added to the denied
    /// globs, the defaults included). See [Path scope](Self#path-scope).
    ///
    /// # Errors
    /// `InvalidInput` naming a glob that does not parse.
    pub fn with_denied_paths<S: AsRef<str>>(
        mut self,
        globs: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        Arc::make_mut(&mut self.settings).scope.deny(globs)?;
        Ok(self)
    }

    /// Removes the default denied paths ([`DEFAULT_DENIED_PATHS`]): for a repository
    /// that is no engine's manifest source and whose CI an agent may change, or whose
    /// manifests agents are meant to write. Denied globs given with
    /// [`with_denied_paths`](Self::with_denied_paths) stay.
    pub fn without_default_denied_paths(mut self) -> Self {
        Arc::make_mut(&mut self.settings).scope.drop_defaults();
        self
    }

    /// The name of the read tool (`git_read_file` or `<alias>_read_file`).
    pub fn read_tool_name(&self) -> String {
        format!("{}_read_file", self.prefix())
    }

    /// The name of the commit tool (`git_commit` or `<alias>_commit`).
    pub fn commit_tool_name(&self) -> String {
        format!("{}_commit", self.prefix())
    }

    /// The branch the tool reads and commits.
    pub fn branch(&self) -> &str {
        &self.settings.branch
    }

    fn unknown_tool(&self, name: &str) -> Error {
        Error::not_found(format!(
            "no tool named {name:?} (this executor has {} and {})",
            self.read_tool_name(),
            self.commit_tool_name()
        ))
    }

    fn prefix(&self) -> &str {
        self.settings.alias.as_deref().unwrap_or("git")
    }

    fn commit_target_text(&self) -> String {
        let branch = &self.settings.branch;
        match self.settings.remote.as_ref().map(|r| &r.branch_mode) {
            None => format!("on branch `{branch}`"),
            Some(BranchMode::PerStep { prefix }) => format!(
                "on a review branch `{prefix}/<job>/<step>` based on `{branch}`, and pushes it"
            ),
            Some(_) => format!("on branch `{branch}` and pushes it"),
        }
    }
}

fn check_branch(branch: &str) -> Result<()> {
    if git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
        Ok(())
    } else {
        Err(Error::invalid_input(format!(
            "{branch:?} is not a valid branch name"
        )))
    }
}

#[async_trait]
impl ToolExecutor for GitWriteTool {
    fn tools(&self) -> Vec<ToolDefinition> {
        let repo = match &self.settings.alias {
            Some(a) => format!("the `{a}` Git repository"),
            None => "the Git repository".to_owned(),
        };
        let branch = &self.settings.branch;
        let scope = self
            .settings
            .scope
            .describe()
            .map(|s| format!(" {s}"))
            .unwrap_or_default();
        vec![
            ToolDefinition::new(
                self.read_tool_name(),
                format!(
                    "Reads a file of {repo} as committed on branch `{branch}` (its head \
                     commit, not uncommitted edits), or at the commit, branch or tag given \
                     as `ref`. Returns the file's text; files over {limit} bytes are refused.",
                    limit = self.settings.max_read_bytes
                ),
                read_schema(),
            )
            .with_effect(EffectClass::Read),
            ToolDefinition::new(
                self.commit_tool_name(),
                format!(
                    "Commits changes to {repo} {onto}. Each change either writes \
                     a whole file (`content`), replaces the single exact occurrence of `find` \
                     with `replace` (fails if `find` is absent or occurs more than once), or \
                     deletes the file (`delete: true`). Returns the new commit id.{scope}",
                    onto = self.commit_target_text()
                ),
                commit_schema(),
            )
            .with_effect(EffectClass::Write),
        ]
    }

    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        if invocation.name == self.read_tool_name() {
            calls::read(&self.settings, &self.commit_lock, &invocation.arguments).await
        } else if invocation.name == self.commit_tool_name() {
            calls::commit(&self.settings, &self.commit_lock, &invocation).await
        } else {
            Err(self.unknown_tool(&invocation.name))
        }
    }

    /// A commit call's preview: its diff against the branch head, computed in memory
    /// (see [Previews](Self#previews)); a read changes nothing.
    async fn preview(&self, invocation: &ToolInvocation) -> Result<Option<ToolPreview>> {
        if invocation.name == self.read_tool_name() {
            Ok(Some(preview::read(&invocation.arguments)))
        } else if invocation.name == self.commit_tool_name() {
            preview::commit(&self.settings, invocation).await.map(Some)
        } else {
            Err(self.unknown_tool(&invocation.name))
        }
    }
}
