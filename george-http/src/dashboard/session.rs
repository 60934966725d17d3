//! Browser sessions: login with an API token, the session cookie, who is looking
//! ([`Viewer`]) and the CSRF check of every form.

use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use axum::Form;
use axum::extract::{FromRequestParts, OriginalUri, Query, State};
use axum::http::header::{COOKIE, LOCATION, SET_COOKIE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode};
use axum::response::{IntoResponse, Response};
use maud::html;
use serde::Deserialize;
use sha2::{Digest, Sha256};

use super::layout;
use crate::auth::{Identity, Role};
use crate::state::AppState;

/// The session cookie's name.
pub(crate) const COOKIE_NAME: &str = "george_session";
/// How long a session lasts.
const TTL: Duration = Duration::from_secs(12 * 3600);
/// The most sessions kept at once (the oldest go first beyond it).
const MAX_SESSIONS: usize = 10_000;

#[derive(Debug, Clone)]
struct Session {
    identity: Identity,
    csrf: String,
    expires: Instant,
}

/// The dashboard's server-side state: sessions and the key of stateless CSRF tokens.
#[derive(Debug)]
pub(crate) struct Ui {
    sessions: Mutex<HashMap<String, Session>>,
    key: [u8; 32],
}

impl Ui {
    pub(crate) fn new() -> Self {
        let mut key = [0u8; 32];
        fill_random(&mut key);
        Ui {
            sessions: Mutex::new(HashMap::new()),
            key,
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<String, Session>> {
        self.sessions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// A new session for `identity`: its id and CSRF token.
    fn create(&self, identity: Identity) -> (String, String) {
        let id = random_hex();
        let csrf = random_hex();
        let now = Instant::now();
        let mut map = self.lock();
        if map.len() >= MAX_SESSIONS {
            map.retain(|_, s| s.expires > now);
        }
        if map.len() >= MAX_SESSIONS
            && let Some(oldest) = map
                .iter()
                .min_by_key(|(_, s)| s.expires)
                .map(|(k, _)| k.clone())
        {
            map.remove(&oldest);
        }
        map.insert(
            id.clone(),
            Session {
                identity,
                csrf: csrf.clone(),
                expires: now + TTL,
            },
        );
        (id, csrf)
    }

    fn get(&self, id: &str) -> Option<Session> {
        let mut map = self.lock();
        match map.get(id) {
            Some(s) if s.expires > Instant::now() => Some(s.clone()),
            Some(_) => {
                map.remove(id);
                None
            }
            None => None,
        }
    }

    fn remove(&self, id: &str) {
        self.lock().remove(id);
    }

    /// The CSRF token of an identity without a session (a proxy's or a bearer token's):
    /// bound to the user and this router's random key.
    fn stateless_csrf(&self, who: &Identity) -> String {
        let mut h = Sha256::new();
        h.update(self.key);
        h.update(b"george-dashboard-csrf\0");
        h.update(who.user.as_bytes());
        hex(&h.finalize())
    }
}

fn fill_random(buf: &mut [u8]) {
    if getrandom::fill(buf).is_err() {
        // No OS randomness: refuse to make guessable ids.
        panic!("the operating system's random source failed");
    }
}

fn random_hex() -> String {
    let mut b = [0u8; 32];
    fill_random(&mut b);
    hex(&b)
}

fn hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        out.push(char::from(b"0123456789abcdef"[usize::from(b >> 4)]));
        out.push(char::from(b"0123456789abcdef"[usize::from(b & 15)]));
    }
    out
}

/// Whether `a` and `b` are equal, in time that depends on their lengths only.
pub(crate) fn ct_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Where the dashboard is mounted: `<prefix>/ui`, from the request's original URI and
/// the URI the router saw (they differ by the host's nest prefix).
pub(crate) fn base_of(parts: &Parts) -> String {
    let inner = parts.uri.path();
    let original = parts
        .extensions
        .get::<OriginalUri>()
        .map_or(inner, |o| o.0.path());
    let prefix = original.strip_suffix(inner).unwrap_or("");
    format!("{}/ui", prefix.trim_end_matches('/'))
}

fn session_id(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == COOKIE_NAME)
        .map(|(_, v)| v.trim().to_string())
        .filter(|v| v.len() == 64)
}

fn is_https(parts_headers: &HeaderMap, scheme: Option<&str>) -> bool {
    scheme == Some("https")
        || parts_headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|v| v.split(',').next().unwrap_or("").trim() == "https")
}

/// Who is looking at a page: the identity, the CSRF token its forms carry, and where
/// the dashboard is mounted.
#[derive(Debug, Clone)]
pub(crate) struct Viewer {
    pub(crate) who: Identity,
    pub(crate) csrf: String,
    /// `<prefix>/ui`.
    pub(crate) base: String,
    /// Whether the identity came from a session (then a sign-out form is shown).
    pub(crate) session: bool,
}

impl Viewer {
    /// Whether the viewer's role includes `role`.
    pub(crate) fn can(&self, role: Role) -> bool {
        self.who.role.is_some_and(|r| r >= role)
    }

    /// Whether `token` is this viewer's CSRF token.
    pub(crate) fn csrf_ok(&self, token: Option<&str>) -> bool {
        token.is_some_and(|t| ct_eq(t.as_bytes(), self.csrf.as_bytes()))
    }
}

impl FromRequestParts<AppState> for Viewer {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Response> {
        let base = base_of(parts);
        let mut found = None;
        if let Some(id) = session_id(&parts.headers)
            && let Some(s) = state.ui.get(&id)
        {
            found = Some(Viewer {
                who: s.identity,
                csrf: s.csrf,
                base: base.clone(),
                session: true,
            });
        }
        if found.is_none()
            && let Ok(who) = state.auth.authenticate(&parts.headers)
        {
            found = Some(Viewer {
                csrf: state.ui.stateless_csrf(&who),
                who,
                base: base.clone(),
                session: false,
            });
        }
        match found {
            Some(v) if v.can(Role::Read) => Ok(v),
            Some(v) => Err(layout::error_page(
                &v,
                StatusCode::FORBIDDEN,
                &format!("user {} has no role here", v.who.user),
            )),
            None if parts.method == Method::GET || parts.method == Method::HEAD => {
                let original = parts
                    .extensions
                    .get::<OriginalUri>()
                    .map_or_else(|| parts.uri.clone(), |o| o.0.clone());
                let next = original
                    .path_and_query()
                    .map_or(String::new(), |p| p.as_str().to_string());
                Err(see_other(&format!(
                    "{base}/login?next={}",
                    layout::urlencode(&next)
                )))
            }
            None => Err((
                StatusCode::FORBIDDEN,
                [("content-type", "text/plain; charset=utf-8")],
                "403 Forbidden: sign in first\n",
            )
                .into_response()),
        }
    }
}

/// A 303 See Other to `to`.
pub(crate) fn see_other(to: &str) -> Response {
    let mut res = StatusCode::SEE_OTHER.into_response();
    if let Ok(v) = HeaderValue::from_str(to) {
        res.headers_mut().insert(LOCATION, v);
    }
    res
}

#[derive(Debug, Default, Deserialize)]
pub(crate) struct LoginQuery {
    next: Option<String>,
}

/// `GET /ui/login`: the form.
pub(crate) async fn login_form(parts: Parts) -> Response {
    login_page(&base_of(&parts), None, StatusCode::OK)
}

fn login_page(base: &str, error: Option<&str>, status: StatusCode) -> Response {
    let body = html! {
        @if let Some(e) = error {
            p.notice.error role="alert" { (e) }
        }
        form.login data-testid="login-form" method="post" {
            label for="token" { "API token" }
            input #token name="token" type="password" autocomplete="current-password" required;
            button type="submit" { "Sign in" }
        }
        p.hint { "Sign in with the token you use for the API; it is checked and exchanged for a session cookie." }
    };
    let mut res = layout::bare_page(base, "Sign in", body).into_response();
    *res.status_mut() = status;
    res
}

#[derive(Debug, Deserialize)]
pub(crate) struct LoginForm {
    token: Option<String>,
}

/// `POST /ui/login`: checks the token, starts a session, 303 to the overview (or `next`
/// within the dashboard).
pub(crate) async fn login(
    State(state): State<AppState>,
    parts: Parts,
    Query(q): Query<LoginQuery>,
    Form(form): Form<LoginForm>,
) -> Response {
    let base = base_of(&parts);
    let token = form.token.unwrap_or_default();
    let token = token.trim();
    let mut headers = HeaderMap::new();
    let identity = HeaderValue::from_str(&format!("Bearer {token}"))
        .ok()
        .filter(|_| !token.is_empty())
        .and_then(|v| {
            headers.insert(axum::http::header::AUTHORIZATION, v);
            state.auth.authenticate(&headers).ok()
        });
    let Some(identity) = identity else {
        return login_page(&base, Some("Unknown token."), StatusCode::UNAUTHORIZED);
    };
    let (id, _) = state.ui.create(identity);
    let secure = is_https(&parts.headers, parts.uri.scheme_str());
    let cookie = format!(
        "{COOKIE_NAME}={id}; HttpOnly; SameSite=Strict; Path={base}; Max-Age={}{}",
        TTL.as_secs(),
        if secure { "; Secure" } else { "" }
    );
    let next = q
        .next
        .filter(|n| n.starts_with(&format!("{base}/")) || *n == base)
        .filter(|n| !n.starts_with("//") && !n.contains("/login"))
        .unwrap_or_else(|| format!("{base}/"));
    let mut res = see_other(&next);
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

#[derive(Debug, Deserialize)]
pub(crate) struct CsrfForm {
    csrf: Option<String>,
}

/// `POST /ui/logout`: ends the session (CSRF-checked), 303 to the login page.
pub(crate) async fn logout(
    State(state): State<AppState>,
    viewer: Viewer,
    parts: Parts,
    Form(form): Form<CsrfForm>,
) -> Response {
    if !viewer.csrf_ok(form.csrf.as_deref()) {
        return layout::error_page(&viewer, StatusCode::FORBIDDEN, "bad or missing CSRF token");
    }
    if let Some(id) = session_id(&parts.headers) {
        state.ui.remove(&id);
    }
    let mut res = see_other(&format!("{}/login", viewer.base));
    let cookie = format!(
        "{COOKIE_NAME}=; HttpOnly; SameSite=Strict; Path={}; Max-Age=0",
        viewer.base
    );
    if let Ok(v) = HeaderValue::from_str(&cookie) {
        res.headers_mut().insert(SET_COOKIE, v);
    }
    res
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constant_time_equality() {
        assert!(ct_eq(b"abc", b"abc"));
        assert!(!ct_eq(b"abc", b"abd"));
        assert!(!ct_eq(b"abc", b"ab"));
        assert!(ct_eq(b"", b""));
    }

    #[test]
    fn sessions_expire_and_are_bounded() {
        let ui = Ui::new();
        let (id, csrf) = ui.create(Identity::new("alice", Role::Read));
        assert_eq!(id.len(), 64);
        assert_ne!(id, csrf);
        assert_eq!(ui.get(&id).map(|s| s.identity.user), Some("alice".into()));
        ui.remove(&id);
        assert!(ui.get(&id).is_none());
        for _ in 0..MAX_SESSIONS + 5 {
            ui.create(Identity::new("bob", Role::Read));
        }
        assert!(ui.lock().len() <= MAX_SESSIONS);
    }

    #[test]
    fn cookie_parsing() {
        let mut h = HeaderMap::new();
        let id = "a".repeat(64);
        h.insert(
            COOKIE,
            HeaderValue::from_str(&format!("x=1; {COOKIE_NAME}={id}; y=2")).unwrap(),
        );
        assert_eq!(session_id(&h), Some(id));
        h.insert(COOKIE, HeaderValue::from_static("george_session=short"));
        assert_eq!(session_id(&h), None);
    }
}
