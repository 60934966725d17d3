//! Connection strings: taking out the TLS settings tokio-postgres does not know
//! (`sslmode=verify-ca`, `sslrootcert`, ...) and hiding passwords.
//!
//! Both forms are read by tokio-postgres's rules (which follow libpq's): a URL
//! (`postgres://user:password@host/db?key=value&...`, percent-encoded) or `key=value`
//! pairs separated by whitespace, values optionally in single quotes, `\` escaping the
//! next character.

use std::path::PathBuf;

use super::PgSslMode;
use crate::error::StoreError;

/// The TLS settings of a connection string, and the string without them.
#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct TlsParams {
    /// `sslmode`.
    pub(crate) mode: Option<PgSslMode>,
    /// `sslrootcert`.
    pub(crate) root_cert: Option<PathBuf>,
    /// The connection string for tokio-postgres.
    pub(crate) rest: String,
}

/// libpq TLS settings george-store does not support yet: refused by name rather than
/// as tokio-postgres's "unknown option".
const UNSUPPORTED: &[&str] = &["sslcert", "sslkey", "sslpassword", "sslcrl", "sslcrldir"];

/// Takes `sslmode` and `sslrootcert` out of `conn`.
pub(crate) fn take_tls_params(conn: &str) -> Result<TlsParams, StoreError> {
    let mut params = TlsParams::default();
    let mut keep = |key: &str, value: String| -> Result<bool, StoreError> {
        match key {
            "sslmode" => params.mode = Some(value.parse().map_err(StoreError::PgConfig)?),
            "sslrootcert" => params.root_cert = Some(PathBuf::from(value)),
            _ if UNSUPPORTED.contains(&key) => {
                return Err(StoreError::PgConfig(format!(
                    "{key} is not supported by george-store (no client certificates or \
                     revocation lists yet)"
                )));
            }
            _ => return Ok(true),
        }
        Ok(false)
    };
    let rest = if let Some(body) = url_body(conn) {
        let prefix = &conn[..conn.len() - body.len()];
        let query_start = body.find('@').map_or(0, |at| at + 1);
        match body[query_start..].find('?') {
            None => conn.to_string(),
            Some(q) => {
                let (head, query) = body.split_at(query_start + q);
                let mut kept = Vec::new();
                for pair in query[1..].split('&').filter(|p| !p.is_empty()) {
                    let (key, value) = pair.split_once('=').unwrap_or((pair, ""));
                    if keep(&percent_decode(key)?, percent_decode(value)?)? {
                        kept.push(pair);
                    }
                }
                let sep = if kept.is_empty() { "" } else { "?" };
                format!("{prefix}{head}{sep}{}", kept.join("&"))
            }
        }
    } else {
        let mut kept = Vec::new();
        for KeyValue { key, value, .. } in key_values(conn)? {
            if keep(key, value.clone())? {
                kept.push(format!("{key}={}", quote(&value)));
            }
        }
        kept.join(" ")
    };
    params.rest = rest;
    Ok(params)
}

/// `conn` with its password replaced by `***`, in the user information of a URL, in
/// a URL's `password` parameter, and in a `password=` pair. A `key=value` string that
/// does not parse is not shown at all.
pub(crate) fn redact(conn: &str) -> String {
    if let Some(body) = url_body(conn) {
        let prefix = &conn[..conn.len() - body.len()];
        let (creds, rest) = match body.split_once('@') {
            Some((creds, rest)) => match creds.split_once(':') {
                Some((user, _)) => (format!("{user}:***@"), rest),
                None => (format!("{creds}@"), rest),
            },
            None => (String::new(), body),
        };
        let rest = match rest.split_once('?') {
            Some((head, query)) => {
                let pairs = query.split('&').map(|pair| match pair.split_once('=') {
                    Some((k, _)) if percent_decode(k).is_ok_and(|k| k == "password") => {
                        format!("{k}=***")
                    }
                    _ => pair.to_string(),
                });
                format!("{head}?{}", pairs.collect::<Vec<_>>().join("&"))
            }
            None => rest.to_string(),
        };
        return format!("{prefix}{creds}{rest}");
    }
    match key_values(conn) {
        Ok(pairs) => {
            let mut shown = conn.to_string();
            // Back to front, so that the earlier spans stay where they are.
            for pair in pairs.iter().rev().filter(|p| p.key == "password") {
                shown.replace_range(pair.span.clone(), "***");
            }
            shown
        }
        Err(_) => "*** (not shown: the connection string does not parse)".into(),
    }
}

/// The password as written in a URL's user information (still percent-encoded), so
/// that this spelling is known as a secret too.
pub(crate) fn raw_url_password(conn: &str) -> Option<&str> {
    let (creds, _) = url_body(conn)?.split_once('@')?;
    creds.split_once(':').map(|(_, password)| password)
}

/// The part of a URL after `postgres://` or `postgresql://`; `None` for `key=value`.
fn url_body(conn: &str) -> Option<&str> {
    conn.strip_prefix("postgres://")
        .or_else(|| conn.strip_prefix("postgresql://"))
}

/// `%XX` decoded; a `%` not followed by two hex digits is kept (as tokio-postgres does).
fn percent_decode(s: &str) -> Result<String, StoreError> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        match (bytes[i], bytes.get(i + 1), bytes.get(i + 2)) {
            (b'%', Some(&h), Some(&l)) if hex(h).is_some() && hex(l).is_some() => {
                let value = hex(h).unwrap_or(0) * 16 + hex(l).unwrap_or(0);
                out.push(u8::try_from(value).unwrap_or(b'?'));
                i += 3;
            }
            (b, _, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8(out)
        .map_err(|_| StoreError::PgConfig(format!("connection URL parameter {s:?} is not UTF-8")))
}

/// `value` in single quotes, `\` and `'` escaped.
fn quote(value: &str) -> String {
    format!("'{}'", value.replace('\\', "\\\\").replace('\'', "\\'"))
}

/// One pair of a `key=value` string.
struct KeyValue<'a> {
    key: &'a str,
    /// Unquoted and unescaped.
    value: String,
    /// Where the value is written in the string, quotes included.
    span: std::ops::Range<usize>,
}

/// The pairs of a `key=value` string.
fn key_values(conn: &str) -> Result<Vec<KeyValue<'_>>, StoreError> {
    let bad = |what: &str| StoreError::PgConfig(format!("connection string: {what}"));
    let mut pairs = Vec::new();
    let mut rest = conn.trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| c == '=' || c.is_whitespace())
            .unwrap_or(rest.len());
        let key = &rest[..end];
        if key.is_empty() {
            return Err(bad("a `=` without a key before it"));
        }
        rest = rest[end..].trim_start();
        rest = rest
            .strip_prefix('=')
            .ok_or_else(|| bad(&format!("expected `=` after {key:?}")))?
            .trim_start();
        let start = conn.len() - rest.len();
        let quoted = rest.starts_with('\'');
        if quoted {
            rest = &rest[1..];
        }
        let mut value = String::new();
        let mut chars = rest.char_indices();
        let mut end = None;
        while let Some((i, c)) = chars.next() {
            match c {
                '\\' => value.extend(chars.next().map(|(_, c)| c)),
                '\'' if quoted => {
                    end = Some(i + 1);
                    break;
                }
                c if c.is_whitespace() && !quoted => {
                    end = Some(i);
                    break;
                }
                c => value.push(c),
            }
        }
        match end {
            Some(end) => rest = &rest[end..],
            None if quoted => return Err(bad(&format!("unterminated quoted value of {key}"))),
            None => rest = "",
        }
        if value.is_empty() && !quoted {
            return Err(bad(&format!("missing value of {key}")));
        }
        let span = start..conn.len() - rest.len();
        rest = rest.trim_start();
        pairs.push(KeyValue { key, value, span });
    }
    Ok(pairs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tls_params_leave_urls() {
        let p = take_tls_params(
            "postgres://u:p%3Fw@h:5432/db?application_name=x&sslmode=verify-full\
             &sslrootcert=%2Fetc%2Fca%20file.pem&connect_timeout=3",
        )
        .unwrap();
        assert_eq!(p.mode, Some(PgSslMode::VerifyFull));
        assert_eq!(p.root_cert, Some(PathBuf::from("/etc/ca file.pem")));
        assert_eq!(
            p.rest,
            "postgres://u:p%3Fw@h:5432/db?application_name=x&connect_timeout=3"
        );
        let p = take_tls_params("postgresql://h/db?sslmode=require").unwrap();
        assert_eq!(p.mode, Some(PgSslMode::Require));
        assert_eq!(p.rest, "postgresql://h/db");
        // A '?' in the password is not where the parameters start.
        let p = take_tls_params("postgres://u:a?b@h/db").unwrap();
        assert_eq!((p.mode, p.rest.as_str()), (None, "postgres://u:a?b@h/db"));
    }

    #[test]
    fn tls_params_leave_key_values() {
        let p = take_tls_params(
            "host=h  user = u sslmode= verify-ca sslrootcert='/a b/c\\'s.pem' password='x y'",
        )
        .unwrap();
        assert_eq!(p.mode, Some(PgSslMode::VerifyCa));
        assert_eq!(p.root_cert, Some(PathBuf::from("/a b/c's.pem")));
        assert_eq!(p.rest, "host='h' user='u' password='x y'");
        let parsed: tokio_postgres::Config = p.rest.parse().unwrap();
        assert_eq!(parsed.get_password(), Some(&b"x y"[..]));
        assert!(take_tls_params("host=h password='open").is_err());
        assert!(take_tls_params("host=h sslcert=/c.pem").is_err());
        let err = take_tls_params("host=h sslmode=verify_full").unwrap_err();
        assert!(err.to_string().contains("verify_full"), "{err}");
    }

    #[test]
    fn passwords_are_redacted() {
        assert_eq!(
            redact("postgres://u:secret@h:5432/db?x=1"),
            "postgres://u:***@h:5432/db?x=1"
        );
        assert_eq!(redact("postgres://u@h/db"), "postgres://u@h/db");
        assert_eq!(
            redact("postgresql://h/db?password=secret&sslmode=require"),
            "postgresql://h/db?password=***&sslmode=require"
        );
        assert_eq!(
            redact("host=h password=secret user=u"),
            "host=h password=*** user=u"
        );
        assert_eq!(
            redact("password = 'it\\'s secret'  host=h"),
            "password = ***  host=h"
        );
        let shown = redact("host=h password='two words' user=u");
        assert!(
            !shown.contains("two") && !shown.contains("words"),
            "{shown}"
        );
        let shown = redact("host=h password='unterminated secret");
        assert!(!shown.contains("secret"), "{shown}");
        assert_eq!(raw_url_password("postgres://u:p%40ss@h/db"), Some("p%40ss"));
        assert_eq!(raw_url_password("postgres://u@h/db"), None);
    }
}
