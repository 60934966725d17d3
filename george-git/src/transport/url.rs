//! Remote URLs: which program serves them, their credentials split off, and how they
//! are shown (credentials redacted).

use george_core::{Error, Result};

/// Who talks to a remote, once [`Transport::Auto`](super::Transport::Auto) is resolved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Via {
    /// libgit2, in process: `file://`, `git://`, `http://` and local paths.
    Libgit2,
    /// The `git` program: `https://`, `ssh://` and scp-like `user@host:path`.
    Program,
}

/// The program that serves `url` by its scheme.
///
/// # Errors
/// `InvalidInput` for an empty URL, one starting with `-` (it would read as an option
/// of `git`), a transport-helper address (`<helper>::<address>`, e.g. `ext::`, which
/// runs commands) or an unknown scheme.
pub(crate) fn via(url: &str) -> Result<Via> {
    if url.trim().is_empty() {
        return Err(Error::invalid_input("the remote URL is empty"));
    }
    if url.starts_with('-') {
        return Err(Error::invalid_input(format!(
            "the remote URL {:?} starts with `-`",
            redact_url(url)
        )));
    }
    let before_slash = &url[..url.find('/').unwrap_or(url.len())];
    if before_slash.contains("::") {
        return Err(Error::invalid_input(format!(
            "{:?} is a transport-helper address (`<helper>::<address>`): not supported",
            redact_url(url)
        )));
    }
    if let Some((scheme, _)) = url.split_once("://") {
        return match scheme.to_ascii_lowercase().as_str() {
            "file" | "git" | "http" => Ok(Via::Libgit2),
            "https" | "ssh" | "git+ssh" | "ssh+git" => Ok(Via::Program),
            other => Err(Error::invalid_input(format!(
                "unsupported remote URL scheme {other:?} (use file, git, http, https or ssh)"
            ))),
        };
    }
    // scp-like syntax (`git@host:org/repo.git`): a colon before any slash, and not a
    // Windows drive letter.
    match (url.find(':'), url.find('/')) {
        (Some(c), s) if c > 1 && s.is_none_or(|s| c < s) => Ok(Via::Program),
        _ => Ok(Via::Libgit2),
    }
}

/// Whether `url` is plain (unencrypted) `http://`.
pub(crate) fn is_plain_http(url: &str) -> bool {
    url.get(..7)
        .is_some_and(|s| s.eq_ignore_ascii_case("http://"))
}

/// The parts of a URL's userinfo (`user:password@`).
#[derive(Clone, PartialEq, Eq)]
pub(crate) struct UserInfo {
    pub(crate) user: Option<String>,
    pub(crate) password: Option<String>,
}

/// `url` without its credentials, and those credentials (`None` without userinfo).
/// Only `scheme://` URLs carry userinfo. An `ssh://` URL keeps its user name, which
/// is not a secret and which `ssh` needs (only a password is split off); other
/// schemes lose the whole userinfo, user name included (an `https://<token>@host` URL
/// would otherwise keep a token). An scp-like `git@host:path` is left as it is.
pub(crate) fn split_userinfo(url: &str) -> (String, Option<UserInfo>) {
    let Some((scheme, rest)) = url.split_once("://") else {
        return (url.to_owned(), None);
    };
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let Some(at) = rest[..end].rfind('@') else {
        return (url.to_owned(), None);
    };
    let (user, password) = match rest[..at].split_once(':') {
        Some((u, p)) => (u, Some(p)),
        None => (&rest[..at], None),
    };
    let non_empty = |s: &str| (!s.is_empty()).then(|| percent_decode(s));
    let host = &rest[at + 1..];
    if matches!(
        scheme.to_ascii_lowercase().as_str(),
        "ssh" | "git+ssh" | "ssh+git"
    ) {
        let info = UserInfo {
            user: None,
            password: password.and_then(non_empty),
        };
        return (format!("{scheme}://{user}@{host}"), Some(info));
    }
    let info = UserInfo {
        user: non_empty(user),
        password: password.and_then(non_empty),
    };
    (format!("{scheme}://{host}"), Some(info))
}

/// Decodes `%XX` escapes (as URLs write `@` or `:` inside a password).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = bytes
            .get(i + 1..i + 3)
            .and_then(|h| std::str::from_utf8(h).ok())
            .and_then(|h| u8::from_str_radix(h, 16).ok());
        match (bytes[i], hex) {
            (b'%', Some(b)) => {
                out.push(b);
                i += 3;
            }
            (b, _) => {
                out.push(b);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// `url` with any `user:password@` part replaced by `***@`, for logs and errors.
pub fn redact_url(url: &str) -> String {
    scrub(url, &[])
}

/// Redacts the userinfo of every `scheme://userinfo@host` in `text`, and every
/// occurrence of the given secret values (of at least 4 bytes).
pub(crate) fn scrub(text: &str, secrets: &[&str]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(i) = rest.find("://") {
        let (head, tail) = rest.split_at(i + 3);
        out.push_str(head);
        let end = tail
            .find(|c: char| {
                c == '/' || c == '?' || c == '#' || c.is_whitespace() || c == '\'' || c == '"'
            })
            .unwrap_or(tail.len());
        match tail[..end].rfind('@') {
            Some(at) => {
                out.push_str("***");
                rest = &tail[at..];
            }
            None => rest = tail,
        }
    }
    out.push_str(rest);
    for s in secrets.iter().filter(|s| s.len() >= 4) {
        out = out.replace(s, "***");
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_pick_their_program() {
        for lib in [
            "file:///srv/x.git",
            "git://h/x.git",
            "HTTP://h/x.git",
            "/srv/x.git",
            "./x",
        ] {
            assert_eq!(via(lib).ok(), Some(Via::Libgit2), "{lib}");
        }
        for prog in ["https://h/x.git", "ssh://git@h/x.git", "git@h:org/x.git"] {
            assert_eq!(via(prog).ok(), Some(Via::Program), "{prog}");
        }
        for bad in [
            " ",
            "ftp://h/x.git",
            "ext::sh -c touch% /tmp/x",
            "-uhelp",
            "fd::3",
        ] {
            assert!(via(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn userinfo_is_split_off() {
        let (url, info) = split_userinfo("https://bot:s%40cret@h:443/o/r.git");
        assert_eq!(url, "https://h:443/o/r.git");
        let info = info.expect("userinfo");
        assert_eq!(info.user.as_deref(), Some("bot"));
        assert_eq!(info.password.as_deref(), Some("s@cret"));
        let (url, info) = split_userinfo("ssh://git:pw@h/r.git");
        assert_eq!(url, "ssh://git@h/r.git", "ssh keeps its user");
        assert_eq!(info.and_then(|i| i.password).as_deref(), Some("pw"));
        assert_eq!(split_userinfo("git@h:o/r.git").0, "git@h:o/r.git");
        assert_eq!(split_userinfo("https://h/a@b").0, "https://h/a@b");
        assert!(is_plain_http("Http://h/x") && !is_plain_http("https://h/x"));
    }

    #[test]
    fn credentials_are_redacted() {
        assert_eq!(
            redact_url("http://user:s3cret@h:80/x.git"),
            "http://***@h:80/x.git"
        );
        assert_eq!(redact_url("https://h/a@b"), "https://h/a@b");
        assert_eq!(
            scrub("fatal: 'https://tok@h/x' and https://u:p@h2 failed", &[]),
            "fatal: 'https://***@h/x' and https://***@h2 failed"
        );
        assert_eq!(
            scrub("token abcd1234 leaked", &["abcd1234"]),
            "token *** leaked"
        );
    }
}
