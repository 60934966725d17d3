//! Where a remote's bare cache lives: one folder per URL (whatever the credentials).

use std::path::{Path, PathBuf};

use crate::transport::split_userinfo;

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
    let (key, _) = split_userinfo(url.trim_end_matches('/'));
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
    fn one_cache_folder_per_url_whatever_the_credentials() {
        let root = Path::new("/c");
        let a = cache_folder(root, "http://u:p@h/org/ops.git");
        assert_eq!(a, cache_folder(root, "http://h/org/ops.git/"));
        assert_ne!(a, cache_folder(root, "http://h/org2/ops.git"));
        let name = a.file_name().and_then(|n| n.to_str()).unwrap_or_default();
        assert!(name.starts_with("ops-") && name.ends_with(".git"), "{name}");
    }
}
