//! Unified diffs, `git diff` style, of the files a commit call would change (for its
//! preview): a `diff --git` header, `new file mode` / `deleted file mode` lines,
//! `---` / `+++` lines (`/dev/null` for a missing side) and hunks with 3 lines of
//! context, computed with `similar`.

use std::time::{Duration, Instant};

use git2::FileMode;
use similar::{Algorithm, TextDiff};

use super::apply::NewFile;

/// Files larger than this (either side, in bytes) are named but not diffed.
const MAX_DIFFED_FILE_BYTES: usize = 4 * 1024 * 1024;

/// How long the line diff of one file may take before `similar` settles for a coarser
/// (still correct) diff.
const DIFF_DEADLINE: Duration = Duration::from_secs(1);

/// How a path changes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    Added,
    Modified,
    Deleted,
}

/// How `path` changes from `old` to `new`, `None` when it does not.
pub(crate) fn kind(old: &NewFile, new: &NewFile) -> Option<Kind> {
    match (old, new) {
        (None, None) => None,
        (None, Some(_)) => Some(Kind::Added),
        (Some(_), None) => Some(Kind::Deleted),
        (Some(a), Some(b)) => (a != b).then_some(Kind::Modified),
    }
}

fn mode_text(mode: FileMode) -> &'static str {
    if mode == FileMode::BlobExecutable {
        "100755"
    } else {
        "100644"
    }
}

/// Text that a line diff can show: UTF-8 without NUL bytes.
fn as_text(bytes: &[u8]) -> Option<&str> {
    if bytes.contains(&0) {
        return None;
    }
    std::str::from_utf8(bytes).ok()
}

/// The diff of `path` from `old` to `new` (both `None`: empty).
pub(crate) fn file_diff(path: &str, old: &NewFile, new: &NewFile) -> String {
    let Some(kind) = kind(old, new) else {
        return String::new();
    };
    let mut out = format!("diff --git a/{path} b/{path}\n");
    match (kind, old, new) {
        (Kind::Added, _, Some((_, mode))) => {
            out.push_str(&format!("new file mode {}\n", mode_text(*mode)));
        }
        (Kind::Deleted, Some((_, mode)), _) => {
            out.push_str(&format!("deleted file mode {}\n", mode_text(*mode)));
        }
        (Kind::Modified, Some((_, a)), Some((_, b))) if a != b => {
            out.push_str(&format!(
                "old mode {}\nnew mode {}\n",
                mode_text(*a),
                mode_text(*b)
            ));
        }
        _ => {}
    }
    let old_bytes = old.as_ref().map_or(&[][..], |(b, _)| b.as_slice());
    let new_bytes = new.as_ref().map_or(&[][..], |(b, _)| b.as_slice());
    let a_name = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let b_name = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".to_owned()
    };
    let too_large = old_bytes.len().max(new_bytes.len()) > MAX_DIFFED_FILE_BYTES;
    let (Some(old_text), Some(new_text), false) =
        (as_text(old_bytes), as_text(new_bytes), too_large)
    else {
        let why = if too_large { "Large" } else { "Binary" };
        out.push_str(&format!("{why} files {a_name} and {b_name} differ\n"));
        return out;
    };
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(Instant::now() + DIFF_DEADLINE)
        .diff_lines(old_text, new_text);
    let hunks = diff
        .unified_diff()
        .context_radius(3)
        .header(&a_name, &b_name)
        .to_string();
    out.push_str(&hunks);
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(text: &str) -> NewFile {
        Some((text.as_bytes().to_vec(), FileMode::Blob))
    }

    #[test]
    fn diffs_look_like_git_diff() {
        let modified = file_diff(
            "a.txt",
            &file("one\ntwo\nthree\n"),
            &file("one\n2\nthree\n"),
        );
        assert_eq!(
            modified,
            "diff --git a/a.txt b/a.txt\n--- a/a.txt\n+++ b/a.txt\n@@ -1,3 +1,3 @@\n one\n-two\n+2\n three\n"
        );
        let added = file_diff("n", &None, &file("x\n"));
        assert_eq!(
            added,
            "diff --git a/n b/n\nnew file mode 100644\n--- /dev/null\n+++ b/n\n@@ -0,0 +1 @@\n+x\n"
        );
        let deleted = file_diff("d", &file("x\n"), &None);
        assert!(
            deleted.starts_with(
                "diff --git a/d b/d\ndeleted file mode 100644\n--- a/d\n+++ /dev/null\n"
            ),
            "{deleted}"
        );
        assert!(deleted.ends_with("-x\n"), "{deleted}");
        let binary = file_diff("b", &None, &Some((vec![0, 1, 2], FileMode::Blob)));
        assert!(
            binary.ends_with("Binary files /dev/null and b/b differ\n"),
            "{binary}"
        );
        assert_eq!(file_diff("same", &file("x"), &file("x")), "");
        let no_newline = file_diff("t", &file("a"), &file("b"));
        assert!(
            no_newline.contains("\\ No newline at end of file"),
            "{no_newline}"
        );
    }
}
