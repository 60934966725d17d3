//! A trusted reverse proxy (an OAuth2 proxy, an identity-aware proxy) that has already
//! authenticated the user and passes who it is in headers.

use std::collections::BTreeMap;

use axum::http::{HeaderMap, HeaderName};
use sha2::{Digest, Sha256};

use super::{Identity, Role, sha256_hex, valid_name};
use crate::problem::Problem;

/// Believes a reverse proxy's identity headers — only on requests that carry the proxy's
/// shared secret in `secret_header` (compared by SHA-256, in constant time).
///
/// The identity: the user from `user_header` (default `X-Forwarded-User`), groups from
/// `groups_header` (default `X-Forwarded-Groups`, comma-separated), the e-mail address
/// from `email_header` (default `X-Forwarded-Email`); the role is the highest of
/// `default_role` and the roles of the user's groups (`group_role`), or none (403 on
/// every route). The proxy must strip these headers from what clients send.
///
/// ```
/// use george_http::{AuthConfig, ProxyAuth, Role};
/// let auth = AuthConfig::new().trusted_proxy(
///     ProxyAuth::new("X-George-Proxy-Secret", "a long random secret")
///         .expect("valid header name")
///         .default_role(Role::Read)
///         .group_role("sre", Role::Decide),
/// );
/// # let _ = auth;
/// ```
#[derive(Clone)]
pub struct ProxyAuth {
    secret_header: HeaderName,
    secret_sha256: [u8; 32],
    user_header: HeaderName,
    groups_header: HeaderName,
    email_header: HeaderName,
    default_role: Option<Role>,
    group_roles: BTreeMap<String, Role>,
}

impl std::fmt::Debug for ProxyAuth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ProxyAuth")
            .field("secret_header", &self.secret_header)
            .field("user_header", &self.user_header)
            .field("groups_header", &self.groups_header)
            .field("default_role", &self.default_role)
            .field("group_roles", &self.group_roles)
            .finish_non_exhaustive()
    }
}

fn header(name: &str) -> Result<HeaderName, String> {
    HeaderName::try_from(name).map_err(|_| format!("{name:?} is not a header name"))
}

impl ProxyAuth {
    /// Trusts requests carrying `secret` in the header `secret_header`.
    ///
    /// # Errors
    /// An invalid header name, or a secret shorter than 16 bytes.
    pub fn new(secret_header: &str, secret: &str) -> Result<Self, String> {
        if secret.len() < 16 {
            return Err("the proxy's secret must have at least 16 bytes".into());
        }
        Self::with_secret_sha256(secret_header, &sha256_hex(secret.as_bytes()))
    }

    /// Trusts requests carrying, in `secret_header`, the secret whose SHA-256 is `hash`
    /// (64 hex digits).
    ///
    /// # Errors
    /// An invalid header name or hash.
    pub fn with_secret_sha256(secret_header: &str, hash: &str) -> Result<Self, String> {
        let mut secret_sha256 = [0u8; 32];
        let bytes = hash.as_bytes();
        if bytes.len() != 64 {
            return Err("secret_sha256 must be 64 hex digits".into());
        }
        for (i, pair) in bytes.chunks(2).enumerate() {
            let text = std::str::from_utf8(pair).map_err(|_| "secret_sha256 is not hex")?;
            secret_sha256[i] =
                u8::from_str_radix(text, 16).map_err(|_| "secret_sha256 is not hex".to_string())?;
        }
        Ok(ProxyAuth {
            secret_header: header(secret_header)?,
            secret_sha256,
            user_header: HeaderName::from_static("x-forwarded-user"),
            groups_header: HeaderName::from_static("x-forwarded-groups"),
            email_header: HeaderName::from_static("x-forwarded-email"),
            default_role: None,
            group_roles: BTreeMap::new(),
        })
    }

    /// The header naming the user.
    ///
    /// # Errors
    /// An invalid header name.
    pub fn user_header(mut self, name: &str) -> Result<Self, String> {
        self.user_header = header(name)?;
        Ok(self)
    }

    /// The header listing the user's groups, comma-separated.
    ///
    /// # Errors
    /// An invalid header name.
    pub fn groups_header(mut self, name: &str) -> Result<Self, String> {
        self.groups_header = header(name)?;
        Ok(self)
    }

    /// The header carrying the user's e-mail address.
    ///
    /// # Errors
    /// An invalid header name.
    pub fn email_header(mut self, name: &str) -> Result<Self, String> {
        self.email_header = header(name)?;
        Ok(self)
    }

    /// The role of every user the proxy names.
    pub fn default_role(mut self, role: Role) -> Self {
        self.default_role = Some(role);
        self
    }

    /// The role of the members of `group`.
    pub fn group_role(mut self, group: impl Into<String>, role: Role) -> Self {
        self.group_roles.insert(group.into(), role);
        self
    }

    /// The identity the proxy vouches for; `None` when the request carries neither the
    /// secret header nor a user header (it did not come through the proxy).
    pub(crate) fn identify(&self, headers: &HeaderMap) -> Result<Option<Identity>, Problem> {
        let secret = headers.get(&self.secret_header);
        let user = headers.get(&self.user_header);
        let Some(secret) = secret else {
            return match user {
                Some(_) => Err(Problem::unauthenticated(
                    "identity headers without the trusted proxy's secret",
                )),
                None => Ok(None),
            };
        };
        let seen: [u8; 32] = Sha256::digest(secret.as_bytes()).into();
        let diff = seen
            .iter()
            .zip(self.secret_sha256.iter())
            .fold(0u8, |acc, (a, b)| acc | (a ^ b));
        if diff != 0 {
            return Err(Problem::unauthenticated("wrong trusted-proxy secret"));
        }
        let text = |h: &HeaderName| {
            headers
                .get(h)
                .and_then(|v| v.to_str().ok())
                .map(str::trim)
                .filter(|s| !s.is_empty())
        };
        let Some(user) = text(&self.user_header).filter(|u| valid_name(u)) else {
            return Err(Problem::unauthenticated(format!(
                "the trusted proxy sent no valid {} header",
                self.user_header
            )));
        };
        let groups: Vec<String> = text(&self.groups_header)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| valid_name(g))
                    .map(str::to_string)
                    .collect()
            })
            .unwrap_or_default();
        let role = groups
            .iter()
            .filter_map(|g| self.group_roles.get(g).copied())
            .chain(self.default_role)
            .max();
        Ok(Some(Identity {
            user: user.to_string(),
            groups,
            email: text(&self.email_header).map(str::to_string),
            role,
        }))
    }
}
