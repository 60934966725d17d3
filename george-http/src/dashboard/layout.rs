//! The page shell (landmarks, navigation, who is signed in) and small formatting helpers.

use axum::http::StatusCode;
use axum::http::header::{CACHE_CONTROL, CONTENT_TYPE};
use axum::response::{IntoResponse, Response};
use maud::{DOCTYPE, Markup, html};

use super::assets;
use super::session::Viewer;

/// Which navigation entry a page belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Nav {
    Overview,
    Jobs,
    Approvals,
    Catalogue,
}

const ENTRIES: [(Nav, &str, &str); 4] = [
    (Nav::Overview, "Overview", "/"),
    (Nav::Jobs, "Jobs", "/jobs"),
    (Nav::Approvals, "Approvals", "/approvals"),
    (Nav::Catalogue, "Catalogue", "/catalogue"),
];

fn head(base: &str, title: &str) -> Markup {
    html! {
        head {
            meta charset="utf-8";
            meta name="viewport" content="width=device-width, initial-scale=1";
            meta name="color-scheme" content="light dark";
            link rel="icon" href="data:,";
            title { (title) " · George" }
            link rel="stylesheet" href={ (base) "/assets/" (assets::css_name()) };
            script defer src={ (base) "/assets/" (assets::js_name()) } {}
        }
    }
}

/// An HTML answer with the dashboard's headers (no caching, no framing).
pub(crate) fn respond(status: StatusCode, markup: Markup) -> Response {
    let mut res = (status, markup.into_string()).into_response();
    let h = res.headers_mut();
    h.insert(
        CONTENT_TYPE,
        axum::http::HeaderValue::from_static("text/html; charset=utf-8"),
    );
    h.insert(
        CACHE_CONTROL,
        axum::http::HeaderValue::from_static("no-store"),
    );
    h.insert(
        "x-content-type-options",
        axum::http::HeaderValue::from_static("nosniff"),
    );
    h.insert(
        "x-frame-options",
        axum::http::HeaderValue::from_static("DENY"),
    );
    h.insert(
        "referrer-policy",
        axum::http::HeaderValue::from_static("same-origin"),
    );
    h.insert(
        "content-security-policy",
        axum::http::HeaderValue::from_static(
            "frame-ancestors 'none'; form-action 'self'; base-uri 'none'; object-src 'none'",
        ),
    );
    res
}

/// A full page: skip link, header with the navigation and who is signed in, `<main>`
/// with the `<h1>` and `body`.
pub(crate) fn page(v: &Viewer, nav: Option<Nav>, title: &str, body: Markup) -> Response {
    page_with(v, nav, title, StatusCode::OK, body)
}

/// [`page`] with a status.
pub(crate) fn page_with(
    v: &Viewer,
    nav: Option<Nav>,
    title: &str,
    status: StatusCode,
    body: Markup,
) -> Response {
    let base = &v.base;
    let role = v.who.role.map_or("none", |r| r.as_str());
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(base, title))
            body data-base=(base) {
                a.skip href="#main" { "Skip to content" }
                header.top {
                    a.brand href={ (base) "/" } aria-label="George dashboard home" { "George" }
                    nav aria-label="Main" {
                        ul {
                            @for (entry, label, path) in ENTRIES {
                                li {
                                    @if nav == Some(entry) {
                                        a href={ (base) (path) } aria-current="page" { (label) }
                                    } @else {
                                        a href={ (base) (path) } { (label) }
                                    }
                                }
                            }
                        }
                    }
                    div.user {
                        span.whoami data-testid="whoami" title={ "role: " (role) } { (v.who.user) }
                        " "
                        span.role { "(" (role) ")" }
                        @if v.session {
                            form.logout method="post" action={ (base) "/logout" } {
                                input type="hidden" name="csrf" value=(v.csrf);
                                button type="submit" { "Sign out" }
                            }
                        }
                    }
                }
                main #main tabindex="-1" {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    respond(status, markup)
}

/// A page without navigation (the login page).
pub(crate) fn bare_page(base: &str, title: &str, body: Markup) -> Response {
    let markup = html! {
        (DOCTYPE)
        html lang="en" {
            (head(base, title))
            body.bare data-base=(base) {
                header.top { span.brand { "George" } }
                main #main {
                    h1 { (title) }
                    (body)
                }
            }
        }
    };
    respond(StatusCode::OK, markup)
}

/// An error page with `status` and what went wrong.
pub(crate) fn error_page(v: &Viewer, status: StatusCode, detail: &str) -> Response {
    let title = format!(
        "{} {}",
        status.as_u16(),
        status.canonical_reason().unwrap_or("Error")
    );
    page_with(
        v,
        None,
        &title,
        status,
        html! {
            p.notice.error role="alert" { (detail) }
            p { a href={ (v.base) "/" } { "Back to the overview" } }
        },
    )
}

/// `s` percent-encoded for a URL query or path segment (unreserved characters kept).
pub(crate) fn urlencode(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                out.push(char::from(b));
            }
            _ => out.push_str(&format!("%{b:02X}")),
        }
    }
    out
}

/// Days since 1970-01-01 as (year, month, day) (Howard Hinnant's algorithm).
pub(crate) fn civil(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// (year, month, day) as days since 1970-01-01.
pub(crate) fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let m = i64::from(m);
    let doy = (153 * (if m > 2 { m - 3 } else { m + 9 }) + 2) / 5 + i64::from(d) - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// `2026-11-30 00:12:03Z`.
pub(crate) fn time(ms: u64) -> String {
    let secs = (ms / 1000) as i64;
    let (y, mo, d) = civil(secs.div_euclid(86_400));
    let s = secs.rem_euclid(86_400);
    format!(
        "{y:04}-{mo:02}-{d:02} {:02}:{:02}:{:02}Z",
        s / 3600,
        (s / 60) % 60,
        s % 60
    )
}

/// A `<time>` element for `ms`.
pub(crate) fn time_el(ms: u64) -> Markup {
    let t = time(ms);
    let iso = t.replacen(' ', "T", 1);
    html! { time datetime=(iso) { (t) } }
}

/// A duration in words: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub(crate) fn duration(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0..60 => format!("{s} s"),
        60..3600 => format!("{} min", s / 60),
        3600..86_400 => format!("{} h {} min", s / 3600, (s / 60) % 60),
        _ => format!("{} d {} h", s / 86_400, (s / 3600) % 24),
    }
}

/// US dollars, to the cent (or tenth of a cent below a dollar).
pub(crate) fn usd(v: f64) -> String {
    if v > 0.0 && v < 1.0 {
        format!("${v:.3}")
    } else {
        format!("${v:.2}")
    }
}

/// A number with thousands separators.
pub(crate) fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

/// The badge of a job status word (`Succeeded`) or a step state (`succeeded`).
pub(crate) fn badge(word: &str) -> Markup {
    html! { span class={ "badge s-" (state_class(word)) } { (word) } }
}

/// The CSS class suffix of a status or state word.
pub(crate) fn state_class(word: &str) -> &'static str {
    match word.to_ascii_lowercase().replace('_', "").as_str() {
        "succeeded" | "approved" => "ok",
        "failed" | "rejected" => "bad",
        "blocked" => "blocked",
        "awaitingapproval" | "open" => "wait",
        "running" | "ready" => "run",
        "deferred" => "deferred",
        "cancelled" => "off",
        _ => "idle",
    }
}

/// Pretty JSON in a `<pre>`.
pub(crate) fn json_block(v: &serde_json::Value) -> Markup {
    let text = serde_json::to_string_pretty(v).unwrap_or_default();
    html! { pre.json tabindex="0" { code { (text) } } }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_round_trip() {
        for days in [-1000, 0, 1, 365, 10_957, 20_000, 20_787] {
            let (y, m, d) = civil(days);
            assert_eq!(days_from_civil(y, m, d), days);
        }
        assert_eq!(civil(0), (1970, 1, 1));
        assert_eq!(time(1_795_999_999_000), "2026-11-30 00:53:19Z");
    }

    #[test]
    fn encoding_and_numbers() {
        assert_eq!(
            urlencode("/ops/ui/jobs?a=b c"),
            "%2Fops%2Fui%2Fjobs%3Fa%3Db%20c"
        );
        assert_eq!(count(1_234_567), "1,234,567");
        assert_eq!(count(12), "12");
        assert_eq!(duration(61_000), "1 min");
        assert_eq!(usd(0.5), "$0.500");
    }
}
