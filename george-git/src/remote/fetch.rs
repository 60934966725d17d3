//! Fetching into the bare cache: libgit2 for `file://`, `git://` and `http://`, the
//! `git` program for `https://` and `ssh://`.

use std::path::Path;
use std::process::{Command, Stdio};

use george_core::{Error, ErrorKind, Result};
use git2::{AutotagOption, Cred, CredentialType, FetchOptions, RemoteCallbacks, Repository};

use super::url::{Transport, redact_url, scrub};
use super::{Follow, RemoteConfig};
use crate::error::from_git2;

/// The credentials of one fetch: values read from the environment variables the
/// configuration names, at fetch time (so a rotated token is picked up).
struct Secrets {
    username: String,
    token: Option<String>,
}

impl Secrets {
    fn read(cfg: &RemoteConfig) -> Secrets {
        let var = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                tracing::warn!(variable = name, "the credential variable is unset or empty");
                None
            }
        };
        let username = cfg
            .username_env
            .as_deref()
            .and_then(var)
            .or_else(|| cfg.username.clone())
            .unwrap_or_else(|| "git".to_owned());
        let token = cfg.token_env.as_deref().and_then(var);
        Secrets { username, token }
    }

    fn values(&self) -> Vec<&str> {
        self.token.iter().map(String::as_str).collect()
    }
}

/// The refspecs that bring `follow` into the cache, under the same names.
fn refspecs(follow: &Follow) -> Vec<String> {
    match follow {
        Follow::Branch(b) => vec![format!("+refs/heads/{b}:refs/heads/{b}")],
        Follow::Tag(t) => vec![format!("+refs/tags/{t}:refs/tags/{t}")],
        // A pinned commit is looked for in every branch and tag (fetching an arbitrary
        // object id needs `uploadpack.allow*SHA1InWant` on the server).
        Follow::Commit(_) => vec![
            "+refs/heads/*:refs/heads/*".to_owned(),
            "+refs/tags/*:refs/tags/*".to_owned(),
        ],
    }
}

/// Fetches `cfg.follow` from `cfg.url` into the bare repository at `cache`, shallow
/// (`cfg.depth`) when `first` and following a branch or a tag.
///
/// # Errors
/// `Backend` (transient) when the remote cannot be reached or the fetch fails;
/// `Unauthenticated` when credentials are refused; `NotFound` for a pinned commit no
/// branch or tag of the remote contains. Messages never contain credentials.
pub(super) fn fetch(cfg: &RemoteConfig, cache: &Path, first: bool) -> Result<()> {
    let secrets = Secrets::read(cfg);
    let specs = refspecs(&cfg.follow);
    let depth = cfg
        .depth
        .filter(|_| first && !matches!(cfg.follow, Follow::Commit(_)));
    match Transport::of(&cfg.url)? {
        Transport::Git2 => fetch_git2(cfg, cache, &specs, depth, &secrets),
        Transport::Program => fetch_program(cfg, cache, &specs, depth, &secrets),
    }?;
    if let Follow::Commit(id) = &cfg.follow {
        pin(cache, id)?;
    }
    Ok(())
}

/// Checks that the pinned commit arrived and keeps it reachable (`refs/george/pinned`).
fn pin(cache: &Path, id: &str) -> Result<()> {
    let repo = Repository::open_bare(cache).map_err(|e| from_git2("opening the cache", e))?;
    let oid = git2::Oid::from_str(id).map_err(|e| from_git2("parsing the pinned commit", e))?;
    if repo.find_commit(oid).is_err() {
        return Err(Error::not_found(format!(
            "commit {id} is in no branch or tag of the remote"
        )));
    }
    repo.reference("refs/george/pinned", oid, true, "george: pin")
        .map_err(|e| from_git2("pinning the commit", e))?;
    Ok(())
}

/// Rebuilds a `git2` error without its source and with credentials scrubbed.
fn clean(cfg: &RemoteConfig, secrets: &Secrets, e: git2::Error) -> Error {
    let err = from_git2(&format!("fetching {}", redact_url(&cfg.url)), e);
    let kind = match err.kind() {
        // A missing remote ref or repository is not a local lookup failure: retry.
        ErrorKind::NotFound | ErrorKind::Conflict | ErrorKind::InvalidInput => ErrorKind::Backend,
        k => k,
    };
    Error::new(kind, scrub(err.message(), &secrets.values()))
}

fn fetch_git2(
    cfg: &RemoteConfig,
    cache: &Path,
    specs: &[String],
    depth: Option<u32>,
    secrets: &Secrets,
) -> Result<()> {
    let repo = Repository::open_bare(cache).map_err(|e| from_git2("opening the cache", e))?;
    // An anonymous remote: the URL (which may carry credentials) is never written to
    // the cache's config.
    let mut remote = repo
        .remote_anonymous(&cfg.url)
        .map_err(|e| clean(cfg, secrets, e))?;
    let mut tried_token = false;
    let mut tried_helper = false;
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(|url, from_url, allowed| {
        let user = from_url.unwrap_or(&secrets.username);
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let (Some(token), false) = (&secrets.token, tried_token) {
                tried_token = true;
                return Cred::userpass_plaintext(user, token);
            }
            if !tried_helper {
                tried_helper = true;
                if let Ok(c) = git2::Config::open_default()
                    .and_then(|config| Cred::credential_helper(&config, url, from_url))
                {
                    return Ok(c);
                }
            }
        } else if allowed.contains(CredentialType::USERNAME) {
            return Cred::username(user);
        }
        Err(git2::Error::new(
            git2::ErrorCode::Auth,
            git2::ErrorClass::Http,
            "the remote refused the credentials (or none are configured: set token_env or a \
             credential helper)",
        ))
    });
    let mut opts = FetchOptions::new();
    opts.remote_callbacks(callbacks)
        .download_tags(AutotagOption::None)
        .update_fetchhead(false);
    if let Some(d) = depth {
        opts.depth(i32::try_from(d).unwrap_or(i32::MAX));
    }
    remote
        .fetch(specs, Some(&mut opts), Some("george: fetch"))
        .map_err(|e| clean(cfg, secrets, e))
}

/// A credential helper, given in the child's environment only, that answers with the
/// values of `GEORGE_GIT_USERNAME` / `GEORGE_GIT_PASSWORD` (also in its environment):
/// the token never appears in a command line.
const ENV_HELPER: &str = "!f() { test \"$1\" = get && printf 'username=%s\\npassword=%s\\n' \
                          \"$GEORGE_GIT_USERNAME\" \"$GEORGE_GIT_PASSWORD\"; }; f";

fn fetch_program(
    cfg: &RemoteConfig,
    cache: &Path,
    specs: &[String],
    depth: Option<u32>,
    secrets: &Secrets,
) -> Result<()> {
    let mut cmd = Command::new(&cfg.git_program);
    cmd.arg("--git-dir").arg(cache).args([
        "fetch",
        "--quiet",
        "--no-tags",
        "--no-write-fetch-head",
    ]);
    if let Some(d) = depth {
        cmd.arg(format!("--depth={d}"));
    }
    cmd.arg("--")
        .arg(&cfg.url)
        .args(specs)
        .stdin(Stdio::null())
        .env("GIT_TERMINAL_PROMPT", "0");
    if let Some(token) = &secrets.token {
        // Appended to any GIT_CONFIG_* entries the caller's environment already has.
        let n: usize = std::env::var("GIT_CONFIG_COUNT")
            .ok()
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        cmd.env("GIT_CONFIG_COUNT", (n + 1).to_string())
            .env(format!("GIT_CONFIG_KEY_{n}"), "credential.helper")
            .env(format!("GIT_CONFIG_VALUE_{n}"), ENV_HELPER)
            .env("GEORGE_GIT_USERNAME", &secrets.username)
            .env("GEORGE_GIT_PASSWORD", token);
    }
    let out = cmd.output().map_err(|e| {
        Error::backend(format!(
            "running {} to fetch {}: {e}",
            cfg.git_program.display(),
            redact_url(&cfg.url)
        ))
    })?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let lower = stderr.to_ascii_lowercase();
    let kind = if [
        "authentication failed",
        "could not read username",
        "permission denied",
    ]
    .iter()
    .any(|n| lower.contains(n))
    {
        ErrorKind::Unauthenticated
    } else {
        ErrorKind::Backend
    };
    Err(Error::new(
        kind,
        scrub(
            &format!(
                "fetching {} with git failed ({}): {}",
                redact_url(&cfg.url),
                out.status,
                stderr.trim()
            ),
            &secrets.values(),
        ),
    ))
}
