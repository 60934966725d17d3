//! The credentials of one fetch or push: read when it starts (so a rotated token is
//! picked up), registered as known secrets, and handed to libgit2 by its credential
//! callback (the `git` program gets them in `program.rs`).

use george_core::Result;
use george_core::secret::KnownSecrets;
use git2::{Cred, CredentialType, RemoteCallbacks};

use super::remote::Remote;
use super::url::is_plain_http;

/// The values of one operation's credentials. `Debug` shows no value.
pub(super) struct Secrets {
    /// The user name sent with the token.
    pub(super) username: String,
    /// George's password or token for this remote, if it has one.
    pub(super) token: Option<String>,
}

impl std::fmt::Debug for Secrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Secrets")
            .field("token", &self.token.as_ref().map(|_| "***"))
            .finish_non_exhaustive()
    }
}

impl Secrets {
    /// Reads the configured variables now. The token is the variable's value, else
    /// the URL's password; the user name the variable's, else the URL's, else the
    /// configured one, else `git`.
    ///
    /// # Errors
    /// `InvalidInput` when the configuration is invalid ([`Remote::validate`]).
    pub(super) fn read(remote: &Remote) -> Result<Secrets> {
        remote.validate()?;
        let var = |name: &str| match std::env::var(name) {
            Ok(v) if !v.is_empty() => Some(v),
            _ => {
                tracing::warn!(variable = name, "the credential variable is unset or empty");
                None
            }
        };
        let username = remote
            .username_env
            .as_deref()
            .and_then(var)
            .or_else(|| remote.url_user.clone())
            .or_else(|| remote.username.clone())
            .unwrap_or_else(|| "git".to_owned());
        let token = remote
            .token_env
            .as_deref()
            .and_then(var)
            .or_else(|| remote.url_password.clone());
        if let Some(t) = &token {
            KnownSecrets::global().add(t);
        }
        Ok(Secrets { username, token })
    }

    /// The values to scrub from messages.
    pub(super) fn values(&self) -> Vec<&str> {
        self.token.iter().map(String::as_str).collect()
    }
}

/// Callbacks answering libgit2's credential requests: George's token once (never to
/// a plain `http://` URL unless allowed — a redirect included), then, only when
/// George has no token for this remote, the user's credential helpers once; then a
/// refusal (libgit2 asks again after a refused credential).
pub(super) fn callbacks<'a>(remote: &'a Remote, secrets: &'a Secrets) -> RemoteCallbacks<'a> {
    let mut tried_token = false;
    let mut tried_helper = false;
    let mut callbacks = RemoteCallbacks::new();
    callbacks.credentials(move |url, from_url, allowed| {
        let user = from_url.unwrap_or(&secrets.username);
        if allowed.contains(CredentialType::USER_PASS_PLAINTEXT) {
            if let Some(token) = &secrets.token {
                if is_plain_http(url) && !remote.allow_insecure_http {
                    return Err(auth_error(
                        "refusing to send the token over plain http:// (allow it with \
                         Remote::with_allow_insecure_http)",
                    ));
                }
                if !tried_token {
                    tried_token = true;
                    return Cred::userpass_plaintext(&secrets.username, token);
                }
            } else if !tried_helper {
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
        Err(auth_error(
            "the remote refused the credentials (or none are configured: set a token \
             variable or a credential helper)",
        ))
    });
    callbacks
}

fn auth_error(message: &str) -> git2::Error {
    git2::Error::new(git2::ErrorCode::Auth, git2::ErrorClass::Http, message)
}

/// Whether `stderr` of the `git` program tells of refused credentials.
pub(super) fn is_auth_failure(stderr: &str) -> bool {
    let lower = stderr.to_ascii_lowercase();
    [
        "authentication failed",
        "could not read username",
        "could not read password",
        "permission denied",
    ]
    .iter()
    .any(|n| lower.contains(n))
}
