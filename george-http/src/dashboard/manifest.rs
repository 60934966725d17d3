//! Manifest text at a commit (`GET /ui/manifest?commit=…&path=…`) and the offending
//! lines of manifest errors, read from the engine's Git source when the host shares it
//! (`ApiConfig::with_source`). Only manifest paths are ever read.

use axum::extract::{Query, State};
use axum::http::StatusCode;
use axum::response::Response;
use george_core::git::{CommitId, is_manifest_path};
use maud::{Markup, html};
use serde::Deserialize;

use super::layout::{self, Nav, error_page, urlencode};
use super::session::Viewer;
use crate::state::AppState;

/// The text of manifest `path` at `commit`, when a source is shared and has it.
pub(crate) async fn read(state: &AppState, commit: &str, path: &str) -> Option<String> {
    let source = state.source.as_ref()?;
    if commit.is_empty() || !is_manifest_path(path) || path.contains("..") {
        return None;
    }
    let files = source
        .read_files(&CommitId(commit.to_string()), &[path.to_string()])
        .await
        .ok()?;
    let file = files.into_iter().find(|f| f.path == path)?;
    Some(String::from_utf8_lossy(&file.bytes).into_owned())
}

/// Whether manifest text can be shown.
pub(crate) fn available(state: &AppState) -> bool {
    state.source.is_some()
}

/// The link to `path` at `commit` (at `line`, when given).
pub(crate) fn link(v: &Viewer, commit: &str, path: &str, line: Option<usize>) -> String {
    let mut s = format!(
        "{}/manifest?commit={}&path={}",
        v.base,
        urlencode(commit),
        urlencode(path)
    );
    if let Some(l) = line {
        s.push_str(&format!("#L{l}"));
    }
    s
}

/// Lines `line - 2 ..= line + 2` of `text`, the offending one marked.
pub(crate) fn snippet(text: &str, line: usize) -> Markup {
    let first = line.saturating_sub(2).max(1);
    html! {
        pre.snippet data-testid="manifest-snippet" tabindex="0" {
            @for (i, l) in text.lines().enumerate().skip(first - 1).take(line + 3 - first) {
                @let n = i + 1;
                @if n == line {
                    mark { (format!("{n:>4} | ")) (l) } "\n"
                } @else {
                    span { (format!("{n:>4} | ")) (l) } "\n"
                }
            }
        }
    }
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct ManifestQuery {
    commit: Option<String>,
    path: Option<String>,
}

/// `GET /ui/manifest?commit=…&path=…`: a manifest's text with line numbers.
pub(crate) async fn manifest(
    State(state): State<AppState>,
    v: Viewer,
    Query(q): Query<ManifestQuery>,
) -> Response {
    let commit = q.commit.unwrap_or_default();
    let path = q.path.unwrap_or_default();
    let Some(text) = read(&state, &commit, &path).await else {
        return error_page(
            &v,
            StatusCode::NOT_FOUND,
            &format!("no manifest {path:?} at commit {commit:?} to show"),
        );
    };
    let body = html! {
        p.muted { "At commit " code { (commit) } }
        div.scroll tabindex="0" role="region" aria-label="Manifest text" {
            table.code data-testid="manifest-text" {
                tbody {
                    @for (i, l) in text.lines().enumerate() {
                        tr id={ "L" (i + 1) } {
                            td.num.muted { (i + 1) }
                            td { code { (l) } }
                        }
                    }
                }
            }
        }
    };
    layout::page(&v, Some(Nav::Jobs), &path, body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snippets_mark_the_line() {
        let text = "a\nb\nc\nd\ne\nf\n";
        let s = snippet(text, 3).into_string();
        assert!(s.contains("<mark>   3 | c</mark>"), "{s}");
        assert!(s.contains("   1 | a") && s.contains("   5 | e") && !s.contains("   6 | f"));
        let s = snippet(text, 1).into_string();
        assert!(s.contains("<mark>   1 | a</mark>") && s.contains("   3 | c"));
    }
}
