//! The stylesheet and the script, embedded in the binary and served under names that
//! carry a hash of their content, so they can be cached for a year.

use std::sync::OnceLock;

use axum::extract::Path;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::http::{HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use sha2::{Digest, Sha256};

const CSS: &str = include_str!("assets/dashboard.css");
const JS: &str = include_str!("assets/dashboard.js");

fn versioned(stem: &str, ext: &str, body: &str) -> String {
    let d = Sha256::digest(body.as_bytes());
    let tag: String = d[..6].iter().map(|b| format!("{b:02x}")).collect();
    format!("{stem}.{tag}.{ext}")
}

/// `dashboard.<hash>.css`.
pub(crate) fn css_name() -> &'static str {
    static N: OnceLock<String> = OnceLock::new();
    N.get_or_init(|| versioned("dashboard", "css", CSS))
}

/// `dashboard.<hash>.js`.
pub(crate) fn js_name() -> &'static str {
    static N: OnceLock<String> = OnceLock::new();
    N.get_or_init(|| versioned("dashboard", "js", JS))
}

/// `GET /ui/assets/{file}`: an embedded asset by its versioned name (or its plain name,
/// uncached), 404 otherwise.
pub(crate) async fn asset(Path(file): Path<String>) -> Response {
    let (body, ctype, cache) = if file == css_name() {
        (CSS, "text/css; charset=utf-8", true)
    } else if file == js_name() {
        (JS, "text/javascript; charset=utf-8", true)
    } else if file == "dashboard.css" {
        (CSS, "text/css; charset=utf-8", false)
    } else if file == "dashboard.js" {
        (JS, "text/javascript; charset=utf-8", false)
    } else {
        return (StatusCode::NOT_FOUND, "no such asset\n").into_response();
    };
    let mut res = body.into_response();
    let h = res.headers_mut();
    h.insert(CONTENT_TYPE, HeaderValue::from_static(ctype));
    h.insert(
        CACHE_CONTROL,
        HeaderValue::from_static(if cache {
            "public, max-age=31536000, immutable"
        } else {
            "no-cache"
        }),
    );
    h.insert(
        "x-content-type-options",
        HeaderValue::from_static("nosniff"),
    );
    res
}
