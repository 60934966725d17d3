//! # george-git
//!
//! George's Git backends:
//!
//! - [`LocalGitSource`]: a [`GitSource`](george_core::git::GitSource) over a
//!   repository on the local disk. It reads manifests and files **at a commit**
//!   (from the object database, never the working tree), diffs two commits tree to
//!   tree, and notices new commits on its branch through
//!   [`refresh`](LocalGitSource::refresh) (push-triggered) and a background
//!   [poller](LocalGitSource::spawn_poller), published on a `tokio::sync::watch`
//!   channel ([`subscribe`](LocalGitSource::subscribe)).
//! - [`RemoteGitSource`]: the same over a remote repository (`git://`, `http(s)://`,
//!   `ssh://`, `file://`), fetched into a local bare cache and read from it; follows a
//!   branch, a tag or a pinned commit ([`Follow`]); [`refresh`](RemoteGitSource::refresh)
//!   fetches now (a webhook calls it), a poller fetches with jitter and backs off
//!   exponentially while the remote is unreachable (reads keep serving the cache).
//!   Credentials come from a credential helper or environment variables whose names
//!   are configured; URLs in errors and logs have them redacted ([`redact_url`]).
//!   Fetches go through [`Remote`].
//! - [`GitWriteTool`]: a [`ToolExecutor`](george_core::tool::ToolExecutor) with which
//!   agents read files (`git_read_file`) and commit changes (`git_commit`), so that a
//!   GitOps change is a real commit by a configured [`GitAuthor`]. Calls are
//!   idempotent through a `George-Idempotency-Key` commit trailer. The operator
//!   scopes the paths an agent may change (allowed and denied globs; George's
//!   manifests, CI configuration and `.gitmodules` are denied by default:
//!   [`DEFAULT_DENIED_PATHS`]). Over a remote ([`GitWriteTool::remote`],
//!   [`RemoteTarget`]) it commits in a bare work clone and pushes, rebases and
//!   retries when the remote moved meanwhile, fails cleanly on a conflict, and can put
//!   each step's change on its own branch for review ([`BranchMode::PerStep`]). Reads
//!   are capped in size and can name a commit, branch or tag.
//! - [`Remote`]: the one transport layer both remote types use — URL (credentials
//!   split off, never written to disk or shown by `Debug`), credentials from named
//!   environment variables or the user's helpers, libgit2 or the `git` program
//!   ([`Transport`]), connect / idle / overall timeouts, and no token over plain
//!   `http://` unless the operator allows it.
//! - `webhook` (feature `webhook`): GitHub- and GitLab-style push events as an
//!   `axum::Router` to mount in your own server. It checks the shared secret
//!   (`X-Hub-Signature-256` HMAC-SHA256, `X-Gitlab-Token`, both in constant time) and,
//!   on a push to the followed branch, calls a `RefreshTarget` — usually `EngineSync`:
//!   [`RemoteGitSource::refresh`], then `Engine::sync`.
//!
//! ## Why `git2` (libgit2) rather than `gix` (gitoxide)
//!
//! Both can read objects, diff trees and write commits. We use `git2` with
//! `default-features = false`:
//!
//! - **Build**: it vendors libgit2 (compiled once with `cc`, a few seconds) plus
//!   `libz-sys`; without default features it pulls in **no** TLS or SSH stack
//!   (`openssl-sys`, `libssh2-sys`), so the default build needs no system libraries.
//!   `gix` is pure Rust but, with the features needed here (tree diff, index and
//!   work-tree updates, commit writing), compiles many dozens of crates and takes
//!   markedly longer to build from scratch.
//! - **API**: libgit2 covers everything this crate needs in one mature, stable API
//!   (tree-to-tree diff, `TreeUpdateBuilder`, compare-and-swap reference updates,
//!   index updates) — the same library GitHub, GitLab and Azure DevOps use.
//! - **Transports**: with default features off, libgit2 still speaks `file://` (and
//!   plain paths), `git://` and plain `http://` (its built-in HTTP client, smart
//!   protocol) — checked against `git daemon` and `git http-backend` in this crate's
//!   tests. `https://` and `ssh://` would need `git2`'s `https` and `ssh` features,
//!   i.e. OpenSSL (`openssl-sys`, a system library or a vendored build of minutes) and
//!   libssh2. `gix`'s default features have no network client at all; its HTTP
//!   transport pulls in `curl` or `reqwest` with a TLS stack, and its SSH runs the
//!   `ssh` program anyway. So we fetch `file://`, `git://` and `http://` with libgit2
//!   in process, and run the installed `git` program for `https://` and `ssh://`:
//!   no TLS or SSH stack in our build, and the user's credential helpers, ssh-agent,
//!   `known_hosts`, proxies and CA bundle work exactly as with `git` itself (see
//!   [`RemoteGitSource`]). The only extra feature is `git2`'s small `cred` (libgit2's
//!   callbacks can ask the configured credential helper).
//!
//! `git2` types are neither `Send` nor `Sync`-friendly: every operation opens the
//! repository on Tokio's blocking pool (`spawn_blocking`), so both types here are
//! `Send + Sync`, clone cheaply, and never block the async executor.
//!
//! ## Example
//!
//! ```
//! use george_core::git::GitSource;
//! use george_core::tool::{ToolExecutor, ToolInvocation};
//! use george_git::{GitAuthor, GitWriteTool, LocalGitSource};
//! use serde_json::json;
//!
//! # fn main() -> Result<(), Box<dyn std::error::Error>> {
//! # let rt = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
//! # rt.block_on(async {
//! // A fresh repository whose HEAD is `main`.
//! let dir = tempfile::tempdir()?;
//! let mut opts = git2::RepositoryInitOptions::new();
//! opts.initial_head("main");
//! git2::Repository::init_opts(dir.path(), &opts)?;
//!
//! let source = LocalGitSource::open(dir.path(), "main")?;
//! let mut heads = source.subscribe();
//! assert_eq!(*heads.borrow(), None); // no commit yet
//!
//! // An agent commits an application's values through the write tool...
//! let tool = GitWriteTool::new(dir.path(), "main", GitAuthor::new("George", "george@example.com"))?;
//! let change = |path: &str| ToolInvocation::new(
//!     "git_commit",
//!     json!({
//!         "message": "Scale the web app to 2 replicas",
//!         "changes": [{"path": path, "content": "replicaCount: 2\n"}]
//!     }),
//!     "job-1/step-1/1/0",
//! );
//! let out = tool.call(change("apps/web/values.yaml")).await?;
//! assert!(!out.is_error, "{}", out.content);
//!
//! // ...and the source notices it on refresh (a poller would, too).
//! let head = source.refresh().await?.expect("the branch moved");
//! assert!(heads.has_changed()?);
//! assert_eq!(out.data.unwrap()["commit"], head.as_str());
//! let files = source.read_files(&head, &["apps/web/values.yaml".into()]).await?;
//! assert_eq!(files[0].bytes, b"replicaCount: 2\n");
//!
//! // George's own manifests (and CI configuration) are off limits by default.
//! let refused = tool.call(change("jobs/nightly.yaml")).await?;
//! assert!(refused.is_error && refused.content.contains("`deny jobs/`"), "{}", refused.content);
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! # })
//! # }
//! ```
#![warn(missing_docs, missing_debug_implementations, unreachable_pub)]

mod error;
mod local;
mod remote;
mod transport;
mod write;

// GitHub- and GitLab-style push webhooks as an axum service (feature `webhook`).
#[cfg(feature = "webhook")]
pub mod webhook;

pub use error::from_git2;
pub use local::{LocalGitSource, PollerHandle};
pub use remote::{FetchStats, Follow, RemoteConfig, RemoteGitSource, RemotePollerHandle};
pub use transport::{Remote, Transport, redact_url};
pub use write::{
    BranchMode, DEFAULT_DENIED_PATHS, DEFAULT_MAX_READ_BYTES, DEFAULT_PUSH_RETRIES,
    DEFAULT_REPLAY_WINDOW, GitAuthor, GitWriteTool, IDEMPOTENCY_TRAILER, JOB_TRAILER, RemoteTarget,
    STEP_TRAILER,
};

/// The `git2` crate this one is built on, re-exported for callers that need its types.
pub use git2;
