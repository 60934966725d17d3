//! Who is calling, and what they may do.
//!
//! Every route but `GET /api/v1/openapi.json` needs an identity; without one the answer
//! is 401, never an anonymous read or decision. An identity comes from one of two
//! sources, tried in this order:
//!
//! 1. **A bearer token** (`Authorization: Bearer <token>`), looked up by its SHA-256
//!    (lowercase hex) in the operator's token file ([`AuthConfig::from_token_file`]): the
//!    file holds hashes only, never tokens. A request that sends a token is judged by it
//!    alone: an unknown token is 401 even when proxy headers are present.
//! 2. **A trusted reverse proxy's headers**, only when configured ([`ProxyAuth`]): the
//!    proxy proves itself with a shared secret in a header of its own; then its user,
//!    groups and e-mail headers are believed. A wrong or missing secret with a user header
//!    is 401: a client cannot claim to be the proxy.
//!
//! Roles are ordered, each including the ones before it: [`Role::Read`] (every `GET`),
//! [`Role::Decide`] (approve, reject), [`Role::Admin`] (cancel, retry). A decision also
//! passes the approval rule of the step (who may decide which plan), checked by the
//! engine against the authenticated identity as an [`Approver`] — never a name the client
//! typed.
//!
//! # The token file
//!
//! TOML mapping each token's SHA-256 to who holds it, and optionally the trusted proxy
//! ([`AuthConfig::from_token_file`]):
//!
//! ```toml
//! # printf %s "$TOKEN" | sha256sum   gives the key of each token
//! [tokens.2c26b46b68ffc68ff99b453c1d30413413422d706483bfa0f98a5e886266e7ae]
//! user = "alice"
//! groups = ["sre"]
//! roles = ["decide"]          # read | decide | admin; the highest one counts
//! email = "alice@example.org" # optional: for forbid_self_approval
//!
//! [proxy]                      # optional: believe a reverse proxy's headers
//! secret_header = "X-George-Proxy-Secret"
//! secret_sha256 = "…"          # SHA-256 of the shared secret the proxy sends
//! user_header = "X-Forwarded-User"      # the defaults
//! groups_header = "X-Forwarded-Groups"  # comma-separated
//! email_header = "X-Forwarded-Email"
//! default_role = "read"        # optional
//! group_roles = { sre = "decide", platform = "admin" }
//! ```
//!
//! Unknown fields are refused; every error names the file, the line and column (for
//! syntax and type errors) or the entry.

mod file;
mod proxy;

use std::collections::HashMap;

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use george_core::approval::Approver;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};
use utoipa::ToSchema;

pub use file::AuthFileError;
pub use proxy::ProxyAuth;

use crate::problem::Problem;
use crate::state::AppState;

/// What an identity may do. Ordered: `Read < Decide < Admin`, each including the ones
/// before it.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize, ToSchema,
)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// Every read: jobs, events, transcripts, approvals, the catalogue, health, live updates.
    Read,
    /// Read, and approve or reject plans (within each step's approval rule).
    Decide,
    /// Decide, and cancel or retry jobs.
    Admin,
}

impl Role {
    /// `read`, `decide` or `admin`.
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Read => "read",
            Role::Decide => "decide",
            Role::Admin => "admin",
        }
    }
}

/// An authenticated caller: a user id, groups, an optional e-mail address and a role.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct Identity {
    /// The user id (`alice`), matched by `user:<id>` entries of approval rules.
    pub user: String,
    /// Groups (`sre`), matched by `group:<name>` entries of approval rules.
    pub groups: Vec<String>,
    /// The e-mail address of the user's commits (for `forbid_self_approval`).
    pub email: Option<String>,
    /// What the caller may do; `None`: nothing (every route answers 403).
    pub role: Option<Role>,
}

impl Identity {
    /// The user `user` with `role`, in no group.
    pub fn new(user: impl Into<String>, role: Role) -> Self {
        Identity {
            user: user.into(),
            groups: Vec::new(),
            email: None,
            role: Some(role),
        }
    }

    /// Adds a group.
    pub fn in_group(mut self, group: impl Into<String>) -> Self {
        self.groups.push(group.into());
        self
    }

    /// Sets the e-mail address.
    pub fn with_email(mut self, email: impl Into<String>) -> Self {
        self.email = Some(email.into());
        self
    }

    /// The identity as the engine's [`Approver`] (what decisions and operator actions
    /// are recorded as: `human:<user>`).
    pub fn approver(&self) -> Approver {
        let mut a = Approver::user(&self.user);
        for g in &self.groups {
            a = a.in_group(g);
        }
        match &self.email {
            Some(e) => a.with_email(e),
            None => a,
        }
    }

    /// `Ok` when the identity's role includes `role`.
    ///
    /// # Errors
    /// 403 naming the role needed and the one held.
    pub fn require(&self, role: Role) -> Result<(), Problem> {
        match self.role {
            Some(have) if have >= role => Ok(()),
            have => Err(Problem::forbidden(format!(
                "user {} has role {}; this needs {}",
                self.user,
                have.map_or("none", Role::as_str),
                role.as_str()
            ))),
        }
    }
}

/// How callers are authenticated: hashed bearer tokens and, optionally, a trusted proxy.
/// The default knows nobody (every request but the OpenAPI document is 401).
#[derive(Debug, Clone, Default)]
pub struct AuthConfig {
    /// Identities by the SHA-256 (lowercase hex) of their token.
    tokens: HashMap<String, Identity>,
    proxy: Option<ProxyAuth>,
}

impl AuthConfig {
    /// Knows nobody.
    pub fn new() -> Self {
        AuthConfig::default()
    }

    /// Accepts bearer token `token` (kept only as its hash) as `identity`.
    pub fn token(self, token: &str, identity: Identity) -> Self {
        self.token_sha256(&sha256_hex(token.as_bytes()), identity)
    }

    /// Accepts the bearer token whose SHA-256 is `hash` (64 hex digits; case is ignored)
    /// as `identity`.
    pub fn token_sha256(mut self, hash: &str, identity: Identity) -> Self {
        self.tokens.insert(hash.to_ascii_lowercase(), identity);
        self
    }

    /// Believes a reverse proxy's identity headers when it sends its shared secret.
    pub fn trusted_proxy(mut self, proxy: ProxyAuth) -> Self {
        self.proxy = Some(proxy);
        self
    }

    /// How many tokens are known.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// The identity of a request with `headers` (see the [module docs](self)).
    ///
    /// # Errors
    /// 401 when there is none: no token and no trusted proxy, an unknown token, a
    /// malformed `Authorization` header, or proxy headers without the proxy's secret.
    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Identity, Problem> {
        if let Some(value) = headers.get(AUTHORIZATION) {
            let text = value.to_str().unwrap_or_default();
            let token = match text.split_once(' ') {
                Some((scheme, t)) if scheme.eq_ignore_ascii_case("bearer") => t.trim(),
                _ => {
                    return Err(Problem::unauthenticated(
                        "the Authorization header must be `Bearer <token>`",
                    ));
                }
            };
            return self
                .tokens
                .get(&sha256_hex(token.as_bytes()))
                .cloned()
                .ok_or_else(|| Problem::unauthenticated("unknown bearer token"));
        }
        if let Some(proxy) = &self.proxy
            && let Some(identity) = proxy.identify(headers)?
        {
            return Ok(identity);
        }
        Err(Problem::unauthenticated(
            "no identity: send `Authorization: Bearer <token>`",
        ))
    }
}

/// The lowercase hex SHA-256 of `bytes`: how tokens are written in the token file
/// (`printf %s "$TOKEN" | sha256sum`).
pub fn sha256_hex(bytes: &[u8]) -> String {
    let digest = Sha256::digest(bytes);
    let mut out = String::with_capacity(64);
    for b in digest.iter() {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// The authenticated caller of a request (401 when there is none).
#[derive(Debug, Clone)]
pub(crate) struct Caller(pub(crate) Identity);

impl FromRequestParts<AppState> for Caller {
    type Rejection = Problem;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Problem> {
        state.auth.authenticate(&parts.headers).map(Caller)
    }
}

/// Whether `s` is usable as a user id or group name: 1–256 characters, no control
/// characters, no commas (the proxy's group list separator) and no colons (rule entries
/// are `user:<id>`).
pub(crate) fn valid_name(s: &str) -> bool {
    !s.is_empty()
        && s.chars().count() <= 256
        && !s.chars().any(|c| c.is_control() || c == ',' || c == ':')
}
