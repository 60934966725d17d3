//! [`PgSslMode`]: libpq's `sslmode`, and how a connection's TLS settings are decided
//! from the configuration and the connection string.

use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use tokio_postgres::config::Host;

use crate::error::StoreError;

/// How a connection uses TLS: libpq's `sslmode`, with libpq's meanings.
///
/// | mode | encrypted | server's certificate checked |
/// |---|---|---|
/// | `disable` | never | — |
/// | `allow` | only if the server refuses a plain connection | as `prefer` |
/// | `prefer` (the default) | if the server accepts TLS; plain otherwise, or when the TLS handshake fails | not checked, or as `verify-ca` when a root certificate is given |
/// | `require` | always | not checked, or as `verify-ca` when a root certificate is given |
/// | `verify-ca` | always | its chain must lead to a CA of `sslrootcert`; the host name is not checked |
/// | `verify-full` | always | as `verify-ca`, and it must name the host connected to |
///
/// Only `verify-full` stops an attacker on the network path from impersonating the
/// server; `verify-ca` stops one without a certificate from that CA. As in libpq, the
/// mode does not apply to Unix-domain sockets (a connection string naming only socket
/// directories connects without TLS).
///
/// ```
/// # use george_store::PgSslMode;
/// let mode: PgSslMode = "verify-full".parse().unwrap();
/// assert_eq!(mode, PgSslMode::VerifyFull);
/// assert_eq!(mode.to_string(), "verify-full");
/// assert!("verify_full".parse::<PgSslMode>().is_err());
/// ```
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
#[non_exhaustive]
pub enum PgSslMode {
    /// Plain connections only.
    Disable,
    /// A plain connection first; TLS when the server refuses it.
    Allow,
    /// TLS when the server accepts it, a plain connection otherwise (libpq's default).
    #[default]
    Prefer,
    /// TLS or no connection; the certificate is not checked unless a root certificate
    /// is given (then as `verify-ca`).
    Require,
    /// TLS, with the server's certificate chain checked against `sslrootcert`.
    VerifyCa,
    /// TLS, with the chain checked and the certificate naming the host connected to.
    VerifyFull,
}

impl PgSslMode {
    /// The libpq name (`disable`, `allow`, `prefer`, `require`, `verify-ca`,
    /// `verify-full`).
    pub fn as_str(self) -> &'static str {
        match self {
            PgSslMode::Disable => "disable",
            PgSslMode::Allow => "allow",
            PgSslMode::Prefer => "prefer",
            PgSslMode::Require => "require",
            PgSslMode::VerifyCa => "verify-ca",
            PgSslMode::VerifyFull => "verify-full",
        }
    }

    /// Whether the server's certificate chain is always checked (`verify-ca`,
    /// `verify-full`).
    pub fn verifies_chain(self) -> bool {
        matches!(self, PgSslMode::VerifyCa | PgSslMode::VerifyFull)
    }
}

impl fmt::Display for PgSslMode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for PgSslMode {
    type Err = String;

    /// Parses a libpq name, as written in a connection string.
    fn from_str(s: &str) -> Result<Self, String> {
        [
            PgSslMode::Disable,
            PgSslMode::Allow,
            PgSslMode::Prefer,
            PgSslMode::Require,
            PgSslMode::VerifyCa,
            PgSslMode::VerifyFull,
        ]
        .into_iter()
        .find(|m| m.as_str() == s)
        .ok_or_else(|| {
            format!(
                "sslmode={s:?} is not one of disable, allow, prefer, require, verify-ca, \
                 verify-full"
            )
        })
    }
}

/// Where the CA certificates checking the server's certificate come from.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) enum RootCerts {
    /// A PEM file of one or more certificates.
    File(PathBuf),
    /// The operating system's trusted CAs (`sslrootcert=system`).
    System,
}

impl RootCerts {
    /// libpq's reading of `sslrootcert`: the word `system` means the system's CAs (a
    /// file of that name is written `./system`).
    pub(crate) fn from_path(path: &Path) -> RootCerts {
        if path == Path::new("system") {
            RootCerts::System
        } else {
            RootCerts::File(path.to_path_buf())
        }
    }
}

/// What a pool's connections do about TLS.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct TlsPlan {
    /// The mode in effect (`disable` when every host is a Unix socket).
    pub(crate) mode: PgSslMode,
    /// The mode as configured, for messages.
    pub(crate) configured: PgSslMode,
    /// The CA certificates, if any.
    pub(crate) roots: Option<RootCerts>,
}

impl TlsPlan {
    /// Decides the plan: the configuration's `mode` and `root` win over the connection
    /// string's; the default mode is `prefer`, or `verify-full` with
    /// `sslrootcert=system`, as in libpq.
    pub(crate) fn decide(
        mode: Option<PgSslMode>,
        root: Option<&Path>,
        pg: &tokio_postgres::Config,
    ) -> Result<TlsPlan, StoreError> {
        let roots = root.map(RootCerts::from_path);
        let configured = match (mode, &roots) {
            (Some(mode), _) => mode,
            (None, Some(RootCerts::System)) => PgSslMode::VerifyFull,
            (None, _) => PgSslMode::Prefer,
        };
        if roots == Some(RootCerts::System) && configured != PgSslMode::VerifyFull {
            return Err(StoreError::PgConfig(format!(
                "sslmode={configured} may not be used with sslrootcert=system: the \
                 system's CAs vouch for any host they issued a certificate to, so use \
                 sslmode=verify-full"
            )));
        }
        if configured.verifies_chain() && roots.is_none() {
            return Err(StoreError::PgConfig(format!(
                "sslmode={configured} checks the server's certificate, but no sslrootcert \
                 names the CA certificates to check it against: set sslrootcert to a PEM \
                 file (or to `system` for the system's trusted CAs), or use sslmode=require \
                 to encrypt without checking"
            )));
        }
        let only_sockets = pg.get_hostaddrs().is_empty()
            && !pg.get_hosts().is_empty()
            && pg.get_hosts().iter().all(|h| !matches!(h, Host::Tcp(_)));
        let mode = if only_sockets {
            PgSslMode::Disable
        } else {
            configured
        };
        Ok(TlsPlan {
            mode,
            configured,
            roots,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pg(s: &str) -> tokio_postgres::Config {
        s.parse().unwrap()
    }

    #[test]
    fn names_round_trip() {
        for name in [
            "disable",
            "allow",
            "prefer",
            "require",
            "verify-ca",
            "verify-full",
        ] {
            let mode: PgSslMode = name.parse().unwrap();
            assert_eq!(mode.to_string(), name);
            let json = serde_json::to_string(&mode).unwrap();
            assert_eq!(json, format!("\"{name}\""));
        }
        let err = "VERIFY-FULL".parse::<PgSslMode>().unwrap_err();
        assert!(err.contains("verify-full"), "{err}");
    }

    #[test]
    fn defaults_follow_libpq() {
        let tcp = pg("host=db.internal user=u");
        let plan = TlsPlan::decide(None, None, &tcp).unwrap();
        assert_eq!(plan.mode, PgSslMode::Prefer);
        let plan = TlsPlan::decide(None, Some(Path::new("system")), &tcp).unwrap();
        assert_eq!(plan.mode, PgSslMode::VerifyFull);
        assert_eq!(plan.roots, Some(RootCerts::System));
        let plan = TlsPlan::decide(None, Some(Path::new("./system")), &tcp).unwrap();
        assert_eq!(plan.roots, Some(RootCerts::File("./system".into())));
    }

    #[test]
    fn weak_modes_and_missing_roots_are_refused() {
        let tcp = pg("host=db.internal user=u");
        let system = Some(Path::new("system"));
        let err = TlsPlan::decide(Some(PgSslMode::Require), system, &tcp).unwrap_err();
        assert!(err.to_string().contains("sslmode=require"), "{err}");
        for mode in [PgSslMode::VerifyCa, PgSslMode::VerifyFull] {
            let err = TlsPlan::decide(Some(mode), None, &tcp).unwrap_err();
            let text = err.to_string();
            assert!(text.contains(&format!("sslmode={mode}")), "{text}");
            assert!(text.contains("sslrootcert"), "{text}");
        }
    }

    #[test]
    fn unix_sockets_connect_without_tls() {
        let socket = pg("host=/run/postgresql user=u");
        let plan = TlsPlan::decide(Some(PgSslMode::Require), None, &socket).unwrap();
        assert_eq!(plan.mode, PgSslMode::Disable);
        assert_eq!(plan.configured, PgSslMode::Require);
        let mixed = pg("host=/run/postgresql,db.internal user=u");
        let plan = TlsPlan::decide(Some(PgSslMode::Require), None, &mixed).unwrap();
        assert_eq!(plan.mode, PgSslMode::Require);
    }
}
