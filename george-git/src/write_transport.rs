//! Fetch and push for the remote write tool: through libgit2 (`file://`, `git://`,
//! `http://`, local paths) or by running the `git` program (`https://`, `ssh://`,
//! `user@host:path`), plus the redaction of credentials from messages.

use std::path::Path;
use std::process::Command;

use george_core::{Error, Result};
use git2::{FetchOptions, FetchPrune, PushOptions, RemoteCallbacks, Repository};

use crate::error::from_git2;

/// How the write tool talks to a remote repository.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
#[non_exhaustive]
pub enum WriteTransport {
    /// By the URL: libgit2 for `file://`, `git://`, `http://` and local paths; the
    /// `git` program for everything else (`https://`, `ssh://`, `user@host:path`).
    #[default]
    Auto,
    /// Always libgit2 (built without TLS and SSH: `https://` and `ssh://` fail).
    Libgit2,
    /// Always the `git` program (found on `PATH`), which brings the user's credential
    /// helpers, `ssh-agent`, `known_hosts` and proxy settings.
    GitProgram,
}

/// Names of the environment variables holding a username and a password or token
/// for HTTP(S) remotes. Only the names are kept: values are read when needed and
/// never logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct CredentialVars {
    pub(crate) username: String,
    pub(crate) password: String,
}

/// The outcome of a push that reached the remote.
#[derive(Debug)]
pub(crate) enum PushOutcome {
    /// The remote branch now points at the pushed commit.
    Pushed,
    /// The remote refused the update (non-fast-forward, a lost race for the ref
    /// lock, a hook): the reason as the remote gave it.
    Rejected(String),
}

/// Whether `url` goes through the `git` program under `transport`.
pub(crate) fn uses_git_program(transport: WriteTransport, url: &str) -> bool {
    match transport {
        WriteTransport::Libgit2 => false,
        WriteTransport::GitProgram => true,
        WriteTransport::Auto => {
            let lower = url.to_ascii_lowercase();
            let libgit2 = ["file://", "git://", "http://"]
                .iter()
                .any(|s| lower.starts_with(s));
            let local_path = !url.contains("://") && !is_scp_like(url);
            !(libgit2 || local_path)
        }
    }
}

/// `user@host:path` or `host:path` (but not `C:\x` or `./a:b`).
fn is_scp_like(url: &str) -> bool {
    match url.find(':') {
        Some(colon) => {
            let before = &url[..colon];
            colon > 1 && !before.contains('/') && !url.contains("://")
        }
        None => false,
    }
}

/// `url` with any userinfo (`user:password@`) replaced by `***@`.
pub(crate) fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return url.to_owned();
    };
    let rest = &url[scheme_end + 3..];
    let authority_end = rest.find('/').unwrap_or(rest.len());
    match rest[..authority_end].rfind('@') {
        Some(at) => format!("{}://***@{}", &url[..scheme_end], &rest[at + 1..]),
        None => url.to_owned(),
    }
}

/// `text` with the raw URL, its userinfo and any credential values removed.
pub(crate) fn redact(text: &str, url: &str, creds: Option<&CredentialVars>) -> String {
    let mut out = text.replace(url, &redact_url(url));
    if let Some(scheme_end) = url.find("://") {
        let rest = &url[scheme_end + 3..];
        let authority = &rest[..rest.find('/').unwrap_or(rest.len())];
        if let Some(at) = authority.rfind('@') {
            let userinfo = &authority[..at];
            if let Some((_, password)) = userinfo.split_once(':') {
                if !password.is_empty() {
                    out = out.replace(password, "***");
                }
            }
        }
    }
    if let Some(c) = creds {
        if let Ok(secret) = std::env::var(&c.password) {
            if !secret.is_empty() {
                out = out.replace(&secret, "***");
            }
        }
    }
    out
}

/// Fetches `refspecs` from `origin` into the work clone (pruning deleted branches).
pub(crate) fn fetch(
    repo: &Repository,
    url: &str,
    program: bool,
    creds: Option<&CredentialVars>,
    refspecs: &[String],
) -> Result<()> {
    if program {
        let mut args = vec!["fetch", "--prune", "--no-tags", "--quiet", "origin"];
        args.extend(refspecs.iter().map(String::as_str));
        let out = run_git(repo, url, creds, &args)?;
        if !out.status.success() {
            return Err(git_failed("fetching from", url, creds, &out));
        }
        return Ok(());
    }
    let mut remote = repo
        .find_remote("origin")
        .map_err(|e| from_git2("opening the work clone's remote", e))?;
    let mut options = FetchOptions::new();
    options.prune(FetchPrune::On);
    options.remote_callbacks(callbacks(repo, creds));
    remote
        .fetch(refspecs, Some(&mut options), None)
        .map_err(|e| network_error("fetching from", url, creds, e))
}

/// Pushes `local_ref` (a ref of the work clone) to `remote_ref`, without forcing.
pub(crate) fn push(
    repo: &Repository,
    url: &str,
    program: bool,
    creds: Option<&CredentialVars>,
    local_ref: &str,
    remote_ref: &str,
) -> Result<PushOutcome> {
    let spec = format!("{local_ref}:{remote_ref}");
    if program {
        let out = run_git(repo, url, creds, &["push", "--porcelain", "origin", &spec])?;
        let stdout = String::from_utf8_lossy(&out.stdout);
        // Porcelain lines: `<flag>\t<from>:<to>\t<summary> (<reason>)`; `!` = rejected.
        for line in stdout.lines() {
            let mut fields = line.split('\t');
            if let (Some("!"), Some(_), Some(summary)) =
                (fields.next(), fields.next(), fields.next())
            {
                return Ok(PushOutcome::Rejected(redact(summary, url, creds)));
            }
        }
        if !out.status.success() {
            return Err(git_failed("pushing to", url, creds, &out));
        }
        return Ok(PushOutcome::Pushed);
    }
    let mut remote = repo
        .find_remote("origin")
        .map_err(|e| from_git2("opening the work clone's remote", e))?;
    let mut rejected: Option<String> = None;
    let result = {
        let mut cbs = callbacks(repo, creds);
        cbs.push_update_reference(|_, status| {
            if let Some(s) = status {
                rejected = Some(s.to_owned());
            }
            Ok(())
        });
        let mut options = PushOptions::new();
        options.remote_callbacks(cbs);
        remote.push(&[spec.as_str()], Some(&mut options))
    };
    match result {
        Ok(()) => match rejected {
            Some(reason) => Ok(PushOutcome::Rejected(redact(&reason, url, creds))),
            None => Ok(PushOutcome::Pushed),
        },
        Err(e) if e.code() == git2::ErrorCode::NotFastForward => {
            Ok(PushOutcome::Rejected(redact(e.message(), url, creds)))
        }
        Err(e) => Err(network_error("pushing to", url, creds, e)),
    }
}

/// Callbacks answering a credential request from the named environment variables or,
/// without them, from the user's Git credential helpers.
fn callbacks(repo: &Repository, creds: Option<&CredentialVars>) -> RemoteCallbacks<'static> {
    let mut cbs = RemoteCallbacks::new();
    let creds = creds.cloned();
    let config = repo.config().ok();
    let mut asked = false;
    cbs.credentials(move |url, username, allowed| {
        // libgit2 asks again after a refused credential: answer once, then give up.
        if asked {
            return Err(git2::Error::from_str("the remote refused the credentials"));
        }
        asked = true;
        match &creds {
            Some(c) if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) => {
                let user = std::env::var(&c.username)
                    .ok()
                    .or_else(|| username.map(str::to_owned))
                    .unwrap_or_default();
                let password = std::env::var(&c.password).map_err(|_| {
                    git2::Error::from_str(&format!(
                        "the environment variable {} (the password or token) is not set",
                        c.password
                    ))
                })?;
                git2::Cred::userpass_plaintext(&user, &password)
            }
            None if allowed.contains(git2::CredentialType::USER_PASS_PLAINTEXT) => match &config {
                Some(cfg) => git2::Cred::credential_helper(cfg, url, username),
                None => Err(git2::Error::from_str("no Git configuration to ask")),
            },
            _ => Err(git2::Error::from_str(
                "the remote asks for credentials and none are configured",
            )),
        }
    });
    cbs
}

/// A transient `Backend` error (or `Unauthenticated`) for a failed network operation.
fn network_error(what: &str, url: &str, creds: Option<&CredentialVars>, e: git2::Error) -> Error {
    let message = format!("{what} {}: {}", redact_url(url), e.message());
    let kind = from_git2("", e).kind();
    let err = Error::new(kind, redact(&message, url, creds));
    if kind == george_core::ErrorKind::Backend {
        err.transient()
    } else {
        err
    }
}

fn git_failed(
    what: &str,
    url: &str,
    creds: Option<&CredentialVars>,
    out: &std::process::Output,
) -> Error {
    let stderr = String::from_utf8_lossy(&out.stderr);
    let stderr = stderr.trim();
    Error::backend(redact(
        &format!(
            "{what} {} failed (git {}): {stderr}",
            redact_url(url),
            out.status
        ),
        url,
        creds,
    ))
    .transient()
}

/// Runs `git` in the work clone, never prompting; with configured credentials, a
/// one-off credential helper reads them from the named environment variables.
fn run_git(
    repo: &Repository,
    url: &str,
    creds: Option<&CredentialVars>,
    args: &[&str],
) -> Result<std::process::Output> {
    let dir: &Path = repo.path();
    let mut cmd = Command::new("git");
    cmd.arg("--git-dir").arg(dir);
    if let Some(c) = creds {
        // The helper script names the variables; their values stay in the environment.
        let helper = format!(
            "!f() {{ test \"$1\" = get || exit 0; echo \"username=${{{}}}\"; echo \"password=${{{}}}\"; }}; f",
            c.username, c.password
        );
        cmd.arg("-c").arg("credential.helper=").arg("-c");
        cmd.arg(format!("credential.helper={helper}"));
    }
    cmd.args(args)
        .env("GIT_TERMINAL_PROMPT", "0")
        .env_remove("GIT_DIR")
        .env_remove("GIT_WORK_TREE");
    cmd.output().map_err(|e| {
        Error::backend(format!(
            "could not run the `git` program for {}: {e}",
            redact_url(url)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_their_transport() {
        for lib in [
            "file:///srv/x.git",
            "git://host/x.git",
            "http://host/x.git",
            "/srv/x.git",
            "./x",
        ] {
            assert!(!uses_git_program(WriteTransport::Auto, lib), "{lib}");
        }
        for prog in [
            "https://host/x.git",
            "ssh://git@host/x.git",
            "git@github.com:o/r.git",
        ] {
            assert!(uses_git_program(WriteTransport::Auto, prog), "{prog}");
        }
        assert!(uses_git_program(WriteTransport::GitProgram, "file:///x"));
        assert!(!uses_git_program(WriteTransport::Libgit2, "https://h/x"));
    }

    #[test]
    fn credentials_are_redacted() {
        let url = "https://bot:s3cret@example.com/o/r.git";
        assert_eq!(redact_url(url), "https://***@example.com/o/r.git");
        assert_eq!(redact_url("git://h/x.git"), "git://h/x.git");
        let msg = format!("failed for {url} (password s3cret)");
        let red = redact(&msg, url, None);
        assert!(!red.contains("s3cret"), "{red}");
        assert!(!red.contains("bot:"), "{red}");
    }
}
