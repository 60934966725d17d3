//! [`GitWriteTool`]: a [`ToolExecutor`] with which agents read files of a repository
//! and commit changes to it, so that a GitOps change is a real commit.

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use george_core::tool::{EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};
use george_core::{Error, Result};
use git2::{ErrorCode, Oid, Repository};
use serde_json::{Value, json};

use crate::error::{GitResultExt, blocking};
pub(crate) use crate::local::changed_paths_in;
use crate::local::open_repo;
pub(crate) use crate::write_args::CommitRequest;
use crate::write_args::{commit_schema, parse_commit, read_schema, validate_path};
use crate::write_read::{DEFAULT_MAX_READ_BYTES, read_file, validate_ref};
use crate::write_target::{BranchMode, RemoteTarget};
use crate::write_trailers::{CallOrigin, check_message};

/// How many commits back from the branch head a retried call is recognised by default.
pub const DEFAULT_REPLAY_WINDOW: usize = 20;

/// The author (and committer) of the commits the write tool makes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GitAuthor {
    /// Name, e.g. `George`.
    pub name: String,
    /// E-mail address, e.g. `george@example.com`.
    pub email: String,
}

impl GitAuthor {
    /// An author.
    pub fn new(name: impl Into<String>, email: impl Into<String>) -> Self {
        GitAuthor {
            name: name.into(),
            email: email.into(),
        }
    }
}

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
/// # Remote repositories
/// [`remote`](Self::remote) targets a repository on a Git server, described by a
/// [`RemoteTarget`] (URL, work folder, retries, branch mode, transport, credentials).
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
/// Transports: libgit2 for `file://`, `git://` and `http://` URLs (and local paths);
/// the `git` program for `https://`, `ssh://` and `user@host:path`, because this crate
/// builds libgit2 without TLS and SSH (see the [crate docs](crate)); running `git`
/// also brings the user's credential helpers, `ssh-agent`, `known_hosts` and proxy
/// settings. Credentials come from environment variables whose *names* are configured
/// ([`RemoteTarget::with_credentials_env`]) or from Git's credential helpers; URLs
/// in messages and errors have their `user:password@` replaced by `***@`. The
/// remote branch must exist (an empty remote is given its first commit by other
/// means). One work folder serves one tool: do not share it between processes.
#[derive(Debug, Clone)]
pub struct GitWriteTool {
    config: Arc<Config>,
    commit_lock: Arc<Mutex<()>>,
}

#[derive(Debug, Clone)]
pub(crate) struct Config {
    pub(crate) path: PathBuf,
    pub(crate) branch: String,
    pub(crate) author: GitAuthor,
    alias: Option<String>,
    pub(crate) replay_window: usize,
    pub(crate) max_read_bytes: u64,
    /// Set for a remote target; `path` is then its work clone.
    remote: Option<RemoteTarget>,
}

impl GitWriteTool {
    /// A write tool for `branch` of the repository at `path`, committing as `author`.
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
        let branch = branch.into();
        open_repo(&path)?;
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(Error::invalid_input(format!(
                "{branch:?} is not a valid branch name"
            )));
        }
        Ok(GitWriteTool {
            config: Arc::new(Config {
                path,
                branch,
                author,
                alias: None,
                replay_window: DEFAULT_REPLAY_WINDOW,
                max_read_bytes: DEFAULT_MAX_READ_BYTES,
                remote: None,
            }),
            commit_lock: Arc::new(Mutex::new(())),
        })
    }

    /// A write tool for `branch` of a **remote** repository, committing as `author`
    /// in a bare work clone (`target`'s work folder) and pushing; see
    /// [Remote repositories](Self#remote-repositories). No network access happens
    /// here: the first call fetches.
    ///
    /// # Errors
    /// `InvalidInput` if `branch` is not a valid branch name, a credential variable
    /// name is not one, or the work folder holds a clone of another URL; `Backend` if
    /// the work folder cannot be created.
    pub fn remote(
        target: RemoteTarget,
        branch: impl Into<String>,
        author: GitAuthor,
    ) -> Result<Self> {
        let branch = branch.into();
        if !git2::Reference::is_valid_name(&format!("refs/heads/{branch}")) {
            return Err(Error::invalid_input(format!(
                "{branch:?} is not a valid branch name"
            )));
        }
        target.open_or_init()?;
        Ok(GitWriteTool {
            config: Arc::new(Config {
                path: target.work_dir.clone(),
                branch,
                author,
                alias: None,
                replay_window: DEFAULT_REPLAY_WINDOW,
                max_read_bytes: DEFAULT_MAX_READ_BYTES,
                remote: Some(target),
            }),
            commit_lock: Arc::new(Mutex::new(())),
        })
    }

    /// The read tool's size limit in bytes (default
    /// [`DEFAULT_MAX_READ_BYTES`](crate::DEFAULT_MAX_READ_BYTES), 256 KiB): a larger
    /// file is not read, and the result is an error that gives its size and the limit.
    pub fn with_max_read_bytes(mut self, bytes: u64) -> Self {
        Arc::make_mut(&mut self.config).max_read_bytes = bytes;
        self
    }

    /// Names the tools `<alias>_read_file` and `<alias>_commit` (instead of
    /// `git_read_file` and `git_commit`). Use letters, digits, `_` and `-`, as model
    /// APIs require of tool names.
    pub fn with_alias(mut self, alias: impl Into<String>) -> Self {
        Arc::make_mut(&mut self.config).alias = Some(alias.into());
        self
    }

    /// How many commits back from the branch head a retried call is recognised by its
    /// idempotency key (default [`DEFAULT_REPLAY_WINDOW`]).
    pub fn with_replay_window(mut self, commits: usize) -> Self {
        Arc::make_mut(&mut self.config).replay_window = commits;
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
        &self.config.branch
    }

    fn commit_target_text(&self) -> String {
        let branch = &self.config.branch;
        match self.config.remote.as_ref().map(|r| &r.branch_mode) {
            None => format!("on branch `{branch}`"),
            Some(BranchMode::PerStep { prefix }) => format!(
                "on a review branch `{prefix}/<job>/<step>` based on `{branch}`, and pushes it"
            ),
            Some(_) => format!("on branch `{branch}` and pushes it"),
        }
    }

    fn prefix(&self) -> &str {
        self.config.alias.as_deref().unwrap_or("git")
    }
}

#[async_trait]
impl ToolExecutor for GitWriteTool {
    fn tools(&self) -> Vec<ToolDefinition> {
        let repo = match &self.config.alias {
            Some(a) => format!("the `{a}` Git repository"),
            None => "the Git repository".to_owned(),
        };
        let branch = &self.config.branch;
        vec![
            ToolDefinition::new(
                self.read_tool_name(),
                format!(
                    "Reads a file of {repo} as committed on branch `{branch}` (its head \
                     commit, not uncommitted edits), or at the commit, branch or tag given \
                     as `ref`. Returns the file's text; files over {limit} bytes are refused.",
                    limit = self.config.max_read_bytes
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
                     deletes the file (`delete: true`). Returns the new commit id.",
                    onto = self.commit_target_text()
                ),
                commit_schema(),
            )
            .with_effect(EffectClass::Write),
        ]
    }

    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        let config = self.config.clone();
        if invocation.name == self.read_tool_name() {
            let path = match invocation.arguments.get("path").and_then(Value::as_str) {
                Some(p) => p.to_owned(),
                None => return Ok(ToolOutput::error("`path` (a string) is required")),
            };
            let reference = match invocation.arguments.get("ref") {
                None | Some(Value::Null) => None,
                Some(Value::String(r)) => match validate_ref(r) {
                    Ok(()) => Some(r.clone()),
                    Err(msg) => return Ok(ToolOutput::error(msg)),
                },
                Some(_) => return Ok(ToolOutput::error("`ref` must be a string")),
            };
            let path = match validate_path(&path) {
                Ok(p) => p,
                Err(e) => return Ok(ToolOutput::error(e)),
            };
            if config.remote.is_some() {
                // Reads share the work clone (and its fetches) with commits.
                let lock = self.commit_lock.clone();
                return blocking(move || {
                    let _serial = lock.lock().unwrap_or_else(|e| e.into_inner());
                    let remote = config
                        .remote
                        .as_ref()
                        .ok_or_else(|| Error::backend("no remote"))?;
                    crate::write_remote::read(&config, remote, &path, reference.as_deref())
                })
                .await;
            }
            blocking(move || read_file(&config, &path, reference.as_deref())).await
        } else if invocation.name == self.commit_tool_name() {
            if invocation.idempotency_key.contains(['\n', '\r']) {
                return Err(Error::invalid_input(
                    "an idempotency key cannot contain line breaks",
                ));
            }
            let origin = CallOrigin::of(&invocation);
            let request = match parse_commit(&invocation.arguments) {
                Ok(r) => r,
                Err(msg) => return Ok(ToolOutput::error(msg)),
            };
            if let Err(msg) = check_message(&request.message) {
                tracing::warn!(key = %origin.key, "commit refused: the message sets a George trailer");
                return Ok(ToolOutput::error(msg));
            }
            let lock = self.commit_lock.clone();
            blocking(move || {
                let _serial = lock.lock().unwrap_or_else(|e| e.into_inner());
                match &config.remote {
                    Some(remote) => crate::write_remote::commit(&config, remote, &request, &origin),
                    None => crate::write_local::commit(&config, &request, &origin.key),
                }
            })
            .await
        } else {
            Err(Error::not_found(format!(
                "no tool named {:?} (this executor has {} and {})",
                invocation.name,
                self.read_tool_name(),
                self.commit_tool_name()
            )))
        }
    }
}

pub(crate) fn branch_ref(config: &Config) -> String {
    format!("refs/heads/{}", config.branch)
}

/// The branch's head commit, `None` when the branch does not exist.
pub(crate) fn branch_head<'r>(
    repo: &'r Repository,
    config: &Config,
) -> Result<Option<git2::Commit<'r>>> {
    match repo.find_reference(&branch_ref(config)) {
        Ok(r) => Ok(Some(r.peel_to_commit().git_ctx("peeling the branch")?)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(crate::error::from_git2("reading the branch", e)),
    }
}

pub(crate) fn short_id(oid: Oid) -> String {
    let mut s = oid.to_string();
    s.truncate(8);
    s
}

pub(crate) fn output(
    config: &Config,
    commit: Oid,
    paths: Vec<String>,
    replayed: bool,
) -> ToolOutput {
    let content = if replayed {
        format!(
            "already committed as {} on `{}` (this call was retried): {} file(s)",
            short_id(commit),
            config.branch,
            paths.len()
        )
    } else {
        format!(
            "committed {} on `{}`: {} file(s) changed",
            short_id(commit),
            config.branch,
            paths.len()
        )
    };
    ToolOutput::ok(content).with_data(json!({
        "commit": commit.to_string(),
        "paths": paths,
        "branch": config.branch,
        "replayed": replayed,
    }))
}
