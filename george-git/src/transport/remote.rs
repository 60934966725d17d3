//! [`Remote`]: the one description of a Git remote that the source and the write tool
//! share.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

use george_core::secret::KnownSecrets;
use george_core::{Error, Result};

use super::url::{self, Via, is_plain_http, redact_url, split_userinfo};

/// Which program talks to a remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum Transport {
    /// By the URL: libgit2 for `file://`, `git://`, `http://` and local paths; the
    /// `git` program for `https://`, `ssh://` and `user@host:path`.
    #[default]
    Auto,
    /// Always libgit2 (built without TLS and SSH: `https://` and `ssh://` fail).
    Libgit2,
    /// Always the `git` program, which brings the user's `ssh-agent`, `known_hosts`,
    /// proxy settings, CA bundle and (when George has no token of its own for the
    /// remote) credential helpers.
    GitProgram,
}

/// A Git remote: its URL, how to reach it, the credentials to send, and how long to
/// wait. [`RemoteConfig`](crate::RemoteConfig) (a followed source) and
/// [`RemoteTarget`](crate::RemoteTarget) (the write tool's target) are built on one.
///
/// - **Credentials** are a password or token from an environment variable whose
///   *name* is configured ([`with_token_env`](Self::with_token_env)), read at each
///   fetch or push, or the `user:password@` of the URL. The URL's credentials are split
///   off at once: the URL kept (shown by `Debug`, written to a work clone's `config`)
///   has none. A token goes to libgit2 through its credential callback, and to the
///   `git` program through the child's environment and a one-off credential helper,
///   with every other credential helper switched off for that call (so that none can
///   store it). Without a token of George's, libgit2 and `git` ask the user's
///   credential helpers as usual. Every value read is added to
///   [`KnownSecrets::global`] so that the engine redacts it from what it stores.
/// - **Plain HTTP**: a token is refused over `http://` (it would travel in clear
///   text) unless [`with_allow_insecure_http`](Self::with_allow_insecure_http) says so.
/// - **Timeouts** (defaults: 30 s to connect, 120 s without any byte from the server,
///   10 minutes per fetch or push): see [`with_io_timeout`](Self::with_io_timeout)
///   for how each program applies them.
#[derive(Clone)]
pub struct Remote {
    pub(super) url: String,
    pub(super) url_user: Option<String>,
    pub(super) url_password: Option<String>,
    pub(super) username: Option<String>,
    pub(super) username_env: Option<String>,
    pub(super) token_env: Option<String>,
    pub(super) transport: Transport,
    pub(super) connect_timeout: Duration,
    pub(super) io_timeout: Duration,
    pub(super) deadline: Duration,
    pub(super) allow_insecure_http: bool,
    pub(super) git_program: PathBuf,
}

impl fmt::Debug for Remote {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Remote")
            .field("url", &redact_url(&self.url))
            .field("url_user", &self.url_user.as_ref().map(|_| "***"))
            .field("url_password", &self.url_password.as_ref().map(|_| "***"))
            .field("username", &self.username)
            .field("username_env", &self.username_env)
            .field("token_env", &self.token_env)
            .field("transport", &self.transport)
            .field("connect_timeout", &self.connect_timeout)
            .field("io_timeout", &self.io_timeout)
            .field("deadline", &self.deadline)
            .field("allow_insecure_http", &self.allow_insecure_http)
            .field("git_program", &self.git_program)
            .finish()
    }
}

impl Remote {
    /// The remote at `url`: `file://`, `git://`, `http://`, `https://`, `ssh://`,
    /// `user@host:path` or a local path. A `user:password@` in a `scheme://` URL is
    /// split off here (and the password added to [`KnownSecrets::global`]); `ssh://`
    /// URLs keep their user name. Nothing is checked until the remote is used: see
    /// [`RemoteGitSource::new`](crate::RemoteGitSource::new) and
    /// [`GitWriteTool::remote`](crate::GitWriteTool::remote) for the errors.
    pub fn new(url: impl Into<String>) -> Self {
        let (url, info) = split_userinfo(&url.into());
        let (url_user, url_password) = info.map_or((None, None), |i| (i.user, i.password));
        if let Some(p) = &url_password {
            KnownSecrets::global().add(p);
        }
        Remote {
            url,
            url_user,
            url_password,
            username: None,
            username_env: None,
            token_env: None,
            transport: Transport::Auto,
            connect_timeout: Duration::from_secs(30),
            io_timeout: Duration::from_secs(120),
            deadline: Duration::from_secs(600),
            allow_insecure_http: false,
            git_program: PathBuf::from("git"),
        }
    }

    /// The NAME of an environment variable holding a password or access token, read
    /// at each fetch and push (so a rotated token is picked up). It wins over a
    /// password in the URL.
    pub fn with_token_env(mut self, variable: impl Into<String>) -> Self {
        self.token_env = Some(variable.into());
        self
    }

    /// The user name sent with a token (default: the URL's, else `git`).
    pub fn with_username(mut self, name: impl Into<String>) -> Self {
        self.username = Some(name.into());
        self
    }

    /// The NAME of an environment variable holding the user name sent with a token
    /// (wins over [`with_username`](Self::with_username) and the URL's).
    pub fn with_username_env(mut self, variable: impl Into<String>) -> Self {
        self.username_env = Some(variable.into());
        self
    }

    /// Which program talks to the remote (default [`Transport::Auto`]).
    pub fn with_transport(mut self, transport: Transport) -> Self {
        self.transport = transport;
        self
    }

    /// The `git` program to run (default `git` on the `PATH`).
    pub fn with_git_program(mut self, program: impl Into<PathBuf>) -> Self {
        self.git_program = program.into();
        self
    }

    /// How long to wait for a connection (default 30 s). libgit2 applies it to its
    /// sockets (`git://`, `http://`); for the `git` program it is part of the idle
    /// timeout and the deadline.
    pub fn with_connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// How long the server may send nothing before the operation fails (default
    /// 120 s). libgit2 applies it to each socket read and write (a **process-wide**
    /// libgit2 setting: George lowers it to the smallest idle timeout of any remote it
    /// used, never raises it); the `git` program gets it as
    /// `http.lowSpeedLimit=1` / `http.lowSpeedTime` (HTTP(S)).
    pub fn with_io_timeout(mut self, timeout: Duration) -> Self {
        self.io_timeout = timeout;
        self
    }

    /// The longest a fetch or push may take in all (default 10 minutes): the `git`
    /// program is killed (with its process group) past it; libgit2 stops at its next
    /// progress report past it.
    pub fn with_deadline(mut self, deadline: Duration) -> Self {
        self.deadline = deadline;
        self
    }

    /// Allows sending a password or token over plain `http://` (default: refused, as
    /// it would travel in clear text). Meant for a server on loopback or a trusted
    /// network only.
    pub fn with_allow_insecure_http(mut self, allow: bool) -> Self {
        self.allow_insecure_http = allow;
        self
    }

    /// The URL, without credentials (never had any after [`new`](Self::new)).
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL for messages: [`url`](Self::url) with anything userinfo-like redacted.
    pub fn redacted_url(&self) -> String {
        redact_url(&self.url)
    }

    /// Whether a token of George's (from a variable or the URL) is configured.
    pub(crate) fn has_token(&self) -> bool {
        self.token_env.is_some() || self.url_password.is_some()
    }

    /// The program that serves this remote.
    pub(crate) fn via(&self) -> Result<Via> {
        let by_url = url::via(&self.url)?;
        Ok(match self.transport {
            Transport::Libgit2 => Via::Libgit2,
            Transport::GitProgram => Via::Program,
            _ => by_url,
        })
    }

    /// Checks the configuration: a usable URL, variable names that are names, and no
    /// token over plain `http://` unless allowed.
    ///
    /// # Errors
    /// `InvalidInput` naming the problem.
    pub(crate) fn validate(&self) -> Result<()> {
        self.via()?;
        for var in [&self.username_env, &self.token_env].into_iter().flatten() {
            let valid = var.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
                && var.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
            if !valid {
                return Err(Error::invalid_input(format!(
                    "{var:?} is not an environment variable name"
                )));
            }
        }
        if self.has_token() && is_plain_http(&self.url) && !self.allow_insecure_http {
            return Err(Error::invalid_input(format!(
                "{}: refusing to send a token over plain http:// (it would travel in clear \
                 text); use https://, or allow it with Remote::with_allow_insecure_http(true)",
                self.redacted_url()
            )));
        }
        Ok(())
    }
}
