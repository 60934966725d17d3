//! [`GitWriteTool`]: a [`ToolExecutor`] with which agents read files of a repository
//! and commit changes to it, so that a GitOps change is a real commit.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use george_core::tool::{ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};
use george_core::{Error, Result};
use git2::{ErrorCode, FileMode, ObjectType, Oid, Repository, Signature};
use serde_json::{Value, json};

use crate::error::{GitResultExt, blocking};
use crate::local::{changed_paths_in, is_regular_file, open_repo};

/// The commit-message trailer that records a `git_commit` call's idempotency key.
pub const IDEMPOTENCY_TRAILER: &str = "George-Idempotency-Key";

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

/// A [`ToolExecutor`] with two tools over one branch of a local repository:
///
/// - **`git_read_file`** `{path}`: the file's content at the branch head, read from the
///   commit (never from the working tree);
/// - **`git_commit`** `{message, changes}`: applies the changes on top of the branch
///   head and commits them with the configured [`GitAuthor`]. Each change is one of
///   `{path, content}` (write the whole file), `{path, find, replace}` (replace the
///   one exact occurrence of `find`; an error result if it occurs zero or several
///   times) or `{path, delete: true}`. The result's `data` is
///   `{"commit": "<hex>", "paths": [...], "branch": "...", "replayed": false}`.
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
///   a call retried after a crash commits once.
/// - **Working tree**: when the repository is not bare and its `HEAD` is the branch,
///   the changed files are also written to the working tree and the index, so that
///   `git status` stays clean. A change to a file with uncommitted local edits is
///   refused (an error result) rather than overwriting them.
/// - The branch must exist, except in a repository without any branch, where the
///   first commit creates it.
/// - The branch is moved with a compare-and-swap: if another writer moved it
///   meanwhile, the changes are re-applied on the new head (up to three times).
/// - Calls through one `GitWriteTool` are serialised.
#[derive(Debug, Clone)]
pub struct GitWriteTool {
    config: Arc<Config>,
    commit_lock: Arc<Mutex<()>>,
}

#[derive(Debug, Clone)]
struct Config {
    path: PathBuf,
    branch: String,
    author: GitAuthor,
    alias: Option<String>,
    replay_window: usize,
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
            }),
            commit_lock: Arc::new(Mutex::new(())),
        })
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
            ToolDefinition {
                name: self.read_tool_name(),
                description: format!(
                    "Reads a file of {repo} as committed on branch `{branch}` (its head \
                     commit, not uncommitted edits). Returns the file's text."
                ),
                input_schema: std::sync::Arc::new(json!({
                    "type": "object",
                    "properties": {
                        "path": {
                            "type": "string",
                            "description": "Repository-relative path, `/`-separated, e.g. `jobs/nightly.yaml`."
                        }
                    },
                    "required": ["path"],
                    "additionalProperties": false
                })),
            },
            ToolDefinition {
                name: self.commit_tool_name(),
                description: format!(
                    "Commits changes to {repo} on branch `{branch}`. Each change either writes \
                     a whole file (`content`), replaces the single exact occurrence of `find` \
                     with `replace` (fails if `find` is absent or occurs more than once), or \
                     deletes the file (`delete: true`). Returns the new commit id."
                ),
                input_schema: std::sync::Arc::new(json!({
                    "type": "object",
                    "properties": {
                        "message": {
                            "type": "string",
                            "minLength": 1,
                            "description": "The commit message: a short summary line, optionally a blank line and details."
                        },
                        "changes": {
                            "type": "array",
                            "minItems": 1,
                            "items": {
                                "oneOf": [
                                    {
                                        "type": "object",
                                        "description": "Write the whole file (created if missing).",
                                        "properties": {
                                            "path": {"type": "string"},
                                            "content": {"type": "string"}
                                        },
                                        "required": ["path", "content"],
                                        "additionalProperties": false
                                    },
                                    {
                                        "type": "object",
                                        "description": "Replace the one exact occurrence of `find` with `replace`.",
                                        "properties": {
                                            "path": {"type": "string"},
                                            "find": {"type": "string", "minLength": 1},
                                            "replace": {"type": "string"}
                                        },
                                        "required": ["path", "find", "replace"],
                                        "additionalProperties": false
                                    },
                                    {
                                        "type": "object",
                                        "description": "Delete the file.",
                                        "properties": {
                                            "path": {"type": "string"},
                                            "delete": {"const": true}
                                        },
                                        "required": ["path", "delete"],
                                        "additionalProperties": false
                                    }
                                ]
                            }
                        }
                    },
                    "required": ["message", "changes"],
                    "additionalProperties": false
                })),
            },
        ]
    }

    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        let config = self.config.clone();
        if invocation.name == self.read_tool_name() {
            let path = match invocation.arguments.get("path").and_then(Value::as_str) {
                Some(p) => p.to_owned(),
                None => return Ok(ToolOutput::error("`path` (a string) is required")),
            };
            blocking(move || read_file(&config, &path)).await
        } else if invocation.name == self.commit_tool_name() {
            let key = invocation.idempotency_key;
            if key.contains(['\n', '\r']) {
                return Err(Error::invalid_input(
                    "an idempotency key cannot contain line breaks",
                ));
            }
            let request = match parse_commit(&invocation.arguments) {
                Ok(r) => r,
                Err(msg) => return Ok(ToolOutput::error(msg)),
            };
            let lock = self.commit_lock.clone();
            blocking(move || {
                let _serial = lock.lock().unwrap_or_else(|e| e.into_inner());
                commit(&config, &request, &key)
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

/// One requested change.
#[derive(Debug)]
enum Change {
    Write {
        path: String,
        content: String,
    },
    Replace {
        path: String,
        find: String,
        replace: String,
    },
    Delete {
        path: String,
    },
}

impl Change {
    fn path(&self) -> &str {
        match self {
            Change::Write { path, .. } | Change::Replace { path, .. } | Change::Delete { path } => {
                path
            }
        }
    }
}

#[derive(Debug)]
struct CommitRequest {
    message: String,
    changes: Vec<Change>,
}

fn parse_commit(args: &Value) -> std::result::Result<CommitRequest, String> {
    let message = match args.get("message").and_then(Value::as_str) {
        Some(m) if !m.trim().is_empty() => m.to_owned(),
        _ => return Err("`message` (a non-empty string) is required".into()),
    };
    let Some(items) = args.get("changes").and_then(Value::as_array) else {
        return Err("`changes` (an array of changes) is required".into());
    };
    if items.is_empty() {
        return Err("`changes` is empty: nothing to commit".into());
    }
    let mut changes = Vec::with_capacity(items.len());
    for (i, item) in items.iter().enumerate() {
        let field = |name: &str| item.get(name).and_then(Value::as_str).map(str::to_owned);
        let Some(path) = field("path") else {
            return Err(format!("changes[{i}]: `path` (a string) is required"));
        };
        let path = validate_path(&path).map_err(|e| format!("changes[{i}]: {e}"))?;
        let content = field("content");
        let find = field("find");
        let delete = item.get("delete").and_then(Value::as_bool).unwrap_or(false);
        let change = match (content, find, delete) {
            (Some(content), None, false) => Change::Write { path, content },
            (None, Some(find), false) => {
                let Some(replace) = field("replace") else {
                    return Err(format!("changes[{i}]: `find` needs `replace` (a string)"));
                };
                if find.is_empty() {
                    return Err(format!("changes[{i}]: `find` must not be empty"));
                }
                Change::Replace {
                    path,
                    find,
                    replace,
                }
            }
            (None, None, true) => Change::Delete { path },
            _ => {
                return Err(format!(
                    "changes[{i}]: give exactly one of `content`, `find` + `replace`, or `delete: true`"
                ));
            }
        };
        changes.push(change);
    }
    Ok(CommitRequest { message, changes })
}

/// Checks that `path` is a relative, normalised path inside the repository.
fn validate_path(path: &str) -> std::result::Result<String, String> {
    if path.is_empty() {
        return Err("the path is empty".into());
    }
    if path.contains('\0') || path.contains('\\') {
        return Err(format!(
            "{path:?}: NUL bytes and backslashes are not allowed in paths"
        ));
    }
    if path.starts_with('/') || Path::new(path).is_absolute() {
        return Err(format!(
            "{path:?} is absolute: give a path relative to the repository root"
        ));
    }
    for part in path.split('/') {
        match part {
            "" => return Err(format!("{path:?} has an empty component")),
            "." | ".." => {
                return Err(format!(
                    "{path:?}: `.` and `..` are not allowed (paths must stay inside the repository)"
                ));
            }
            p if p.eq_ignore_ascii_case(".git") => {
                return Err(format!("{path:?}: the `.git` directory is off limits"));
            }
            _ => {}
        }
    }
    Ok(path.to_owned())
}

fn branch_ref(config: &Config) -> String {
    format!("refs/heads/{}", config.branch)
}

/// The branch's head commit, `None` when the branch does not exist.
fn branch_head<'r>(repo: &'r Repository, config: &Config) -> Result<Option<git2::Commit<'r>>> {
    match repo.find_reference(&branch_ref(config)) {
        Ok(r) => Ok(Some(r.peel_to_commit().git_ctx("peeling the branch")?)),
        Err(e) if e.code() == ErrorCode::NotFound => Ok(None),
        Err(e) => Err(crate::error::from_git2("reading the branch", e)),
    }
}

fn read_file(config: &Config, path: &str) -> Result<ToolOutput> {
    let path = match validate_path(path) {
        Ok(p) => p,
        Err(e) => return Ok(ToolOutput::error(e)),
    };
    let repo = open_repo(&config.path)?;
    let Some(head) = branch_head(&repo, config)? else {
        return Ok(ToolOutput::error(format!(
            "branch `{}` has no commits yet",
            config.branch
        )));
    };
    let tree = head.tree().git_ctx("reading the head tree")?;
    let short = short_id(head.id());
    let entry = match tree.get_path(Path::new(&path)) {
        Ok(e) => e,
        Err(_) => {
            return Ok(ToolOutput::error(format!(
                "`{path}` does not exist at {short} on `{}`",
                config.branch
            )));
        }
    };
    if entry.kind() != Some(ObjectType::Blob) {
        return Ok(ToolOutput::error(format!("`{path}` is not a file")));
    }
    let blob = repo.find_blob(entry.id()).git_ctx("reading a blob")?;
    let data = json!({
        "path": path,
        "commit": head.id().to_string(),
        "bytes": blob.size(),
    });
    match std::str::from_utf8(blob.content()) {
        Ok(text) => Ok(ToolOutput::ok(text).with_data(data)),
        Err(_) => Ok(ToolOutput::error(format!(
            "`{path}` is a binary file ({} bytes)",
            blob.size()
        ))
        .with_data(data)),
    }
}

fn short_id(oid: Oid) -> String {
    let mut s = oid.to_string();
    s.truncate(8);
    s
}

/// The new state of a changed path: its content and mode, or `None` (deleted).
type NewFile = Option<(Vec<u8>, FileMode)>;

/// A path's content and mode in `tree`, `Err` with a message if it is not a regular file.
fn file_in_tree(
    repo: &Repository,
    tree: Option<&git2::Tree<'_>>,
    path: &str,
) -> Result<std::result::Result<NewFile, String>> {
    let Some(tree) = tree else {
        return Ok(Ok(None));
    };
    let Ok(entry) = tree.get_path(Path::new(path)) else {
        return Ok(Ok(None));
    };
    if entry.kind() != Some(ObjectType::Blob) || !is_regular_file(entry.filemode()) {
        return Ok(Err(format!(
            "`{path}` is not a regular file (a directory, symbolic link or submodule)"
        )));
    }
    let mode = if entry.filemode() == i32::from(FileMode::BlobExecutable) {
        FileMode::BlobExecutable
    } else {
        FileMode::Blob
    };
    let blob = repo.find_blob(entry.id()).git_ctx("reading a blob")?;
    Ok(Ok(Some((blob.content().to_vec(), mode))))
}

/// Applies the changes in order on top of `base`: the final state of each path, or an
/// error message for the model.
fn apply_changes(
    repo: &Repository,
    base: Option<&git2::Tree<'_>>,
    changes: &[Change],
) -> Result<std::result::Result<BTreeMap<String, NewFile>, String>> {
    let mut pending: BTreeMap<String, NewFile> = BTreeMap::new();
    for change in changes {
        let path = change.path();
        let current = match pending.get(path) {
            Some(state) => state.clone(),
            None => match file_in_tree(repo, base, path)? {
                Ok(state) => state,
                Err(msg) => return Ok(Err(msg)),
            },
        };
        let mode = current.as_ref().map_or(FileMode::Blob, |(_, m)| *m);
        let next = match change {
            Change::Write { content, .. } => Some((content.clone().into_bytes(), mode)),
            Change::Delete { .. } => {
                if current.is_none() {
                    return Ok(Err(format!("cannot delete `{path}`: it does not exist")));
                }
                None
            }
            Change::Replace { find, replace, .. } => {
                let Some((bytes, _)) = current else {
                    return Ok(Err(format!("cannot edit `{path}`: it does not exist")));
                };
                let Ok(text) = String::from_utf8(bytes) else {
                    return Ok(Err(format!("cannot edit `{path}`: it is not UTF-8 text")));
                };
                match text.matches(find.as_str()).count() {
                    1 => Some((text.replacen(find.as_str(), replace, 1).into_bytes(), mode)),
                    0 => {
                        return Ok(Err(format!(
                            "`find` text not found in `{path}`: nothing replaced (read the file and copy the exact text)"
                        )));
                    }
                    n => {
                        return Ok(Err(format!(
                            "`find` text occurs {n} times in `{path}`: make it longer so it matches exactly once"
                        )));
                    }
                }
            }
        };
        pending.insert(path.to_owned(), next);
    }
    Ok(Ok(pending))
}

/// The working directory to keep in sync: set when the repository is not bare and its
/// `HEAD` is the branch.
fn synced_workdir(repo: &Repository, config: &Config) -> Result<Option<PathBuf>> {
    if repo.is_bare() {
        return Ok(None);
    }
    let head = repo.find_reference("HEAD").git_ctx("reading HEAD")?;
    let target = head.symbolic_target().git_ctx("reading HEAD")?;
    if target != Some(branch_ref(config).as_str()) {
        return Ok(None);
    }
    Ok(repo.workdir().map(Path::to_path_buf))
}

/// What the working tree holds at `path`: `Err` if a parent is a symbolic link (or
/// the path is not a plain file), so that writing there could leave the repository.
fn worktree_content(workdir: &Path, path: &str) -> std::result::Result<Option<Vec<u8>>, String> {
    let mut at = workdir.to_path_buf();
    let parts: Vec<&str> = path.split('/').collect();
    for (i, part) in parts.iter().enumerate() {
        at.push(part);
        match std::fs::symlink_metadata(&at) {
            Ok(meta) if meta.file_type().is_symlink() => {
                return Err(format!(
                    "`{path}` goes through a symbolic link in the working tree"
                ));
            }
            Ok(meta) if i + 1 == parts.len() => {
                if !meta.is_file() {
                    return Err(format!("`{path}` is not a plain file in the working tree"));
                }
            }
            Ok(_) => {}
            Err(_) => return Ok(None),
        }
    }
    std::fs::read(&at)
        .map(Some)
        .map_err(|e| format!("cannot read `{path}` in the working tree: {e}"))
}

/// Writes the committed state of `paths` to the working tree and the index, for each
/// path whose working-tree content is still the old one (or already the new one).
/// Paths with other local edits are left alone (and logged).
fn sync_worktree(
    repo: &Repository,
    workdir: &Path,
    paths: &[(String, Option<Vec<u8>>, NewFile)],
) -> Result<()> {
    let mut index = repo.index().git_ctx("opening the index")?;
    for (path, old, new) in paths {
        let current = match worktree_content(workdir, path) {
            Ok(c) => c,
            Err(msg) => {
                tracing::warn!(path = %path, "not syncing the working tree: {msg}");
                continue;
            }
        };
        let new_bytes = new.as_ref().map(|(b, _)| b);
        let up_to_date = current.as_ref() == new_bytes;
        if !up_to_date && current != *old {
            tracing::warn!(path = %path, "working tree has local edits; left as is");
            continue;
        }
        let file = workdir.join(path);
        match new {
            Some((bytes, mode)) => {
                if !up_to_date {
                    if let Some(parent) = file.parent() {
                        std::fs::create_dir_all(parent).map_err(io_error)?;
                    }
                    std::fs::write(&file, bytes).map_err(io_error)?;
                    set_mode(&file, *mode)?;
                }
                index
                    .add_path(Path::new(path))
                    .git_ctx("updating the index")?;
            }
            None => {
                if current.is_some() {
                    std::fs::remove_file(&file).map_err(io_error)?;
                }
                match index.remove_path(Path::new(path)) {
                    Ok(()) => {}
                    Err(e) if e.code() == ErrorCode::NotFound => {}
                    Err(e) => return Err(crate::error::from_git2("updating the index", e)),
                }
            }
        }
    }
    index.write().git_ctx("writing the index")?;
    Ok(())
}

#[cfg(unix)]
fn set_mode(file: &Path, mode: FileMode) -> Result<()> {
    use std::os::unix::fs::PermissionsExt;
    let bits = if mode == FileMode::BlobExecutable {
        0o755
    } else {
        0o644
    };
    std::fs::set_permissions(file, std::fs::Permissions::from_mode(bits)).map_err(io_error)
}

#[cfg(not(unix))]
fn set_mode(_file: &Path, _mode: FileMode) -> Result<()> {
    Ok(())
}

fn io_error(e: std::io::Error) -> Error {
    Error::backend("updating the working tree failed").with_source(e)
}

fn has_trailer(message: &str, key: &str) -> bool {
    message.lines().any(|line| {
        line.strip_prefix(IDEMPOTENCY_TRAILER)
            .and_then(|rest| rest.strip_prefix(':'))
            .is_some_and(|value| value.trim() == key)
    })
}

/// The commit among the last `window` first-parent commits from `head` that carries
/// the idempotency key.
fn find_replay<'r>(
    head: &git2::Commit<'r>,
    key: &str,
    window: usize,
) -> Result<Option<git2::Commit<'r>>> {
    let mut current = Some(head.clone());
    for _ in 0..window {
        let Some(commit) = current else {
            break;
        };
        if has_trailer(&String::from_utf8_lossy(commit.message_bytes()), key) {
            return Ok(Some(commit));
        }
        current = if commit.parent_count() > 0 {
            Some(commit.parent(0).git_ctx("reading a parent commit")?)
        } else {
            None
        };
    }
    Ok(None)
}

fn output(config: &Config, commit: Oid, paths: Vec<String>, replayed: bool) -> ToolOutput {
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

/// Replays an earlier commit of the same call: reports it, and finishes syncing the
/// working tree if the crash came between moving the branch and writing the files.
fn replay(
    repo: &Repository,
    config: &Config,
    commit: &git2::Commit<'_>,
    is_head: bool,
) -> Result<ToolOutput> {
    let tree = commit.tree().git_ctx("reading a commit tree")?;
    let parent_tree = if commit.parent_count() > 0 {
        Some(
            commit
                .parent(0)
                .git_ctx("reading a parent commit")?
                .tree()
                .git_ctx("reading a commit tree")?,
        )
    } else {
        None
    };
    let paths = changed_paths_in(repo, parent_tree.as_ref(), Some(&tree))?;
    if is_head {
        if let Some(workdir) = synced_workdir(repo, config)? {
            let mut states = Vec::with_capacity(paths.len());
            for path in &paths {
                let old = file_in_tree(repo, parent_tree.as_ref(), path)?
                    .ok()
                    .flatten()
                    .map(|(b, _)| b);
                let new = file_in_tree(repo, Some(&tree), path)?.ok().flatten();
                states.push((path.clone(), old, new));
            }
            sync_worktree(repo, &workdir, &states)?;
        }
    }
    Ok(output(config, commit.id(), paths, true))
}

fn compose_message(message: &str, key: &str) -> String {
    let message = message.trim_end();
    if key.is_empty() {
        format!("{message}\n")
    } else {
        format!("{message}\n\n{IDEMPOTENCY_TRAILER}: {key}\n")
    }
}

const ATTEMPTS: usize = 3;

/// Whether the repository has any local branch (if not, the first commit creates ours).
fn has_branches(repo: &Repository) -> Result<bool> {
    let mut branches = repo
        .branches(Some(git2::BranchType::Local))
        .git_ctx("listing branches")?;
    Ok(branches.next().is_some())
}

fn commit(config: &Config, request: &CommitRequest, key: &str) -> Result<ToolOutput> {
    let repo = open_repo(&config.path)?;
    let refname = branch_ref(config);
    for _ in 0..ATTEMPTS {
        let head = branch_head(&repo, config)?;
        if head.is_none() && has_branches(&repo)? {
            return Ok(ToolOutput::error(format!(
                "branch `{}` does not exist",
                config.branch
            )));
        }
        if let (Some(head), false) = (&head, key.is_empty()) {
            if let Some(done) = find_replay(head, key, config.replay_window)? {
                let is_head = done.id() == head.id();
                return replay(&repo, config, &done, is_head);
            }
        }
        let base = match &head {
            Some(h) => Some(h.tree().git_ctx("reading the head tree")?),
            None => None,
        };
        let pending = match apply_changes(&repo, base.as_ref(), &request.changes)? {
            Ok(p) => p,
            Err(msg) => return Ok(ToolOutput::error(msg)),
        };

        // Build the new tree.
        let mut builder = git2::build::TreeUpdateBuilder::new();
        for (path, state) in &pending {
            match state {
                Some((bytes, mode)) => {
                    let blob = repo.blob(bytes).git_ctx("writing a blob")?;
                    builder.upsert(path.as_str(), blob, *mode);
                }
                None => {
                    builder.remove(path.as_str());
                }
            }
        }
        let baseline = match &base {
            Some(t) => t.clone(),
            None => {
                let empty = repo
                    .treebuilder(None)
                    .git_ctx("creating a tree")?
                    .write()
                    .git_ctx("writing a tree")?;
                repo.find_tree(empty).git_ctx("reading a tree")?
            }
        };
        let tree_id = builder
            .create_updated(&repo, &baseline)
            .git_ctx("building the new tree")?;
        if let (Some(h), Some(b)) = (&head, &base) {
            if b.id() == tree_id {
                let mut out = output(config, h.id(), Vec::new(), false);
                out.content = format!(
                    "nothing to commit: `{}` already has this content at {}",
                    config.branch,
                    short_id(h.id())
                );
                return Ok(out);
            }
        }
        let tree = repo.find_tree(tree_id).git_ctx("reading the new tree")?;
        let paths = changed_paths_in(&repo, Some(&baseline), Some(&tree))?;

        // Refuse to clobber uncommitted edits in a synced working tree.
        let workdir = synced_workdir(&repo, config)?;
        let mut states = Vec::with_capacity(pending.len());
        for (path, new) in pending {
            let old = file_in_tree(&repo, base.as_ref(), &path)?
                .ok()
                .flatten()
                .map(|(b, _)| b);
            if let Some(workdir) = &workdir {
                let current = match worktree_content(workdir, &path) {
                    Ok(c) => c,
                    Err(msg) => return Ok(ToolOutput::error(msg)),
                };
                let new_bytes = new.as_ref().map(|(b, _)| b);
                if current != old && current.as_ref() != new_bytes {
                    return Ok(ToolOutput::error(format!(
                        "`{path}` has uncommitted changes in the working tree; refusing to overwrite them"
                    )));
                }
            }
            states.push((path, old, new));
        }

        let sig = Signature::now(&config.author.name, &config.author.email)
            .git_ctx("making the commit signature")?;
        let message = compose_message(&request.message, key);
        let parents: Vec<&git2::Commit<'_>> = head.iter().collect();
        let oid = repo
            .commit(None, &sig, &sig, &message, &tree, &parents)
            .git_ctx("writing the commit")?;
        let summary = request.message.lines().next().unwrap_or_default();
        let log = format!("commit (george): {summary}");
        let moved = match &head {
            Some(h) => repo.reference_matching(&refname, oid, true, h.id(), &log),
            None => repo.reference(&refname, oid, false, &log),
        };
        match moved {
            Ok(_) => {}
            Err(e) if matches!(e.code(), ErrorCode::Modified | ErrorCode::Exists) => {
                tracing::debug!(branch = %config.branch, "branch moved during commit; retrying");
                continue;
            }
            Err(e) => return Err(crate::error::from_git2("moving the branch", e)),
        }
        if let Some(workdir) = &workdir {
            sync_worktree(&repo, workdir, &states)?;
        }
        tracing::info!(branch = %config.branch, commit = %oid, files = paths.len(), "committed");
        return Ok(output(config, oid, paths, false));
    }
    Err(Error::conflict(format!(
        "branch `{}` kept moving while committing; try again",
        config.branch
    ))
    .transient())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paths_are_validated() {
        for ok in ["a", "jobs/x.yaml", "a/b/c.txt", ".github/x", "a..b"] {
            assert_eq!(validate_path(ok).as_deref(), Ok(ok), "{ok}");
        }
        for bad in [
            "",
            "/etc/passwd",
            "../x",
            "a/../../x",
            "a/./b",
            "a//b",
            "a/",
            ".git/config",
            "x/.GIT/y",
            "a\\b",
            "a\0b",
        ] {
            assert!(validate_path(bad).is_err(), "{bad:?} should be refused");
        }
    }

    #[test]
    fn trailers_are_recognised() {
        let m = compose_message("Add job\n\nbody\n", "job/step/1/0");
        assert_eq!(
            m,
            "Add job\n\nbody\n\nGeorge-Idempotency-Key: job/step/1/0\n"
        );
        assert!(has_trailer(&m, "job/step/1/0"));
        assert!(!has_trailer(&m, "job/step/1"));
        assert_eq!(compose_message("x", ""), "x\n");
    }

    #[test]
    fn commit_arguments_are_parsed() {
        let r = parse_commit(&json!({
            "message": "m",
            "changes": [
                {"path": "a", "content": "x"},
                {"path": "b", "find": "f", "replace": "r"},
                {"path": "c", "delete": true}
            ]
        }))
        .unwrap();
        assert_eq!(r.changes.len(), 3);
        for bad in [
            json!({"changes": [{"path": "a", "content": "x"}]}),
            json!({"message": "m", "changes": []}),
            json!({"message": "m", "changes": [{"path": "a"}]}),
            json!({"message": "m", "changes": [{"path": "a", "content": "x", "find": "y", "replace": "z"}]}),
            json!({"message": "m", "changes": [{"path": "a", "find": "y"}]}),
            json!({"message": "m", "changes": [{"path": "a", "find": "", "replace": "z"}]}),
            json!({"message": "m", "changes": [{"path": "../a", "content": "x"}]}),
        ] {
            assert!(parse_commit(&bad).is_err(), "{bad}");
        }
    }
}
