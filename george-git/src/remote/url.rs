//! Remote URLs: which transport serves them, how they are shown (credentials redacted),
//! and where their local cache lives.

use std::path::{Path, PathBuf};

use george_core::{Error, Result};

/// Who talks to the remote.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Transport {
    /// libgit2, in process: `file://`, `git://`, `http://` and local paths.
    Git2,
    /// The `git` program: `https://`, `ssh://` and scp-like `user@host:path`.
    Program,
}

impl Transport {
    /// The transport for `url`.
    ///
    /// # Errors
    /// `InvalidInput` for an empty URL or an unknown scheme.
    pub(crate) fn of(url: &str) -> Result<Transport> {
        if url.trim().is_empty() {
            return Err(Error::invalid_input("the remote URL is empty"));
        }
        if let Some((scheme, _)) = url.split_once("://") {
            return match scheme.to_ascii_lowercase().as_str() {
                "file" | "git" | "http" => Ok(Transport::Git2),
                "https" | "ssh" | "git+ssh" | "ssh+git" => Ok(Transport::Program),
                other => Err(Error::invalid_input(format!(
                    "unsupported remote URL scheme {other:?} (use file, git, http, https or ssh)"
                ))),
            };
        }
        // scp-like syntax (`git@host:org/repo.git`): a colon before any slash, and not a
        // Windows drive letter.
        let colon = url.find(':');
        let slash = url.find('/');
        match (colon, slash) {
            (Some(c), s) if c > 1 && s.is_none_or(|s| c < s) => Ok(Transport::Program),
            _ => Ok(Transport::Git2),
        }
    }
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

/// `url` without its userinfo (the cache key: changing credentials does not re-clone).
fn without_userinfo(url: &str) -> String {
    match url.split_once("://") {
        Some((scheme, rest)) => {
            let end = rest.find('/').unwrap_or(rest.len());
            match rest[..end].rfind('@') {
                Some(at) => format!("{scheme}://{}", &rest[at + 1..]),
                None => url.to_owned(),
            }
        }
        None => url.to_owned(),
    }
}

/// 64-bit FNV-1a: a hash that is stable across Rust versions and platforms.
fn fnv1a64(bytes: &[u8]) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in bytes {
        h ^= u64::from(*b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h
}

/// The cache folder of `url` under `root`: `<name>-<hash>.git`, where `name` is the
/// URL's last path segment (sanitised) and `hash` the FNV-1a hash of the URL without
/// credentials.
pub(crate) fn cache_folder(root: &Path, url: &str) -> PathBuf {
    let key = without_userinfo(url.trim_end_matches('/'));
    let last = key
        .rsplit(['/', ':'])
        .next()
        .unwrap_or("repo")
        .trim_end_matches(".git");
    let name: String = last
        .chars()
        .filter(|c| c.is_ascii_alphanumeric() || *c == '-' || *c == '_')
        .take(40)
        .collect();
    let name = if name.is_empty() { "repo".into() } else { name };
    root.join(format!("{name}-{:016x}.git", fnv1a64(key.as_bytes())))
}

/// The default cache root: `$XDG_CACHE_HOME/george/git`, else `$HOME/.cache/george/git`,
/// else `<temp dir>/george-git-cache`.
pub(crate) fn default_cache_root() -> PathBuf {
    let non_empty = |v: &str| std::env::var_os(v).filter(|s| !s.is_empty());
    if let Some(x) = non_empty("XDG_CACHE_HOME") {
        return PathBuf::from(x).join("george/git");
    }
    if let Some(h) = non_empty("HOME") {
        return PathBuf::from(h).join(".cache/george/git");
    }
    std::env::temp_dir().join("george-git-cache")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transports_follow_the_scheme() {
        assert_eq!(Transport::of("git://h/x.git").ok(), Some(Transport::Git2));
        assert_eq!(Transport::of("HTTP://h/x.git").ok(), Some(Transport::Git2));
        assert_eq!(
            Transport::of("file:///srv/x.git").ok(),
            Some(Transport::Git2)
        );
        assert_eq!(Transport::of("/srv/x.git").ok(), Some(Transport::Git2));
        assert_eq!(
            Transport::of("https://h/x.git").ok(),
            Some(Transport::Program)
        );
        assert_eq!(
            Transport::of("ssh://git@h/x.git").ok(),
            Some(Transport::Program)
        );
        assert_eq!(
            Transport::of("git@h:org/x.git").ok(),
            Some(Transport::Program)
        );
        assert!(Transport::of("ftp://h/x.git").is_err());
        assert!(Transport::of(" ").is_err());
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

    #[test]
    fn one_cache_folder_per_url_whatever_the_credentials() {
        let root = Path::new("/c");
        let a = cache_folder(root, "http://u:p@h/org/ops.git");
        assert_eq!(a, cache_folder(root, "http://h/org/ops.git/"));
        assert_ne!(a, cache_folder(root, "http://h/org2/ops.git"));
        let name = a.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(name.starts_with("ops-") && name.ends_with(".git"), "{name}");
    }
}
