//! The HTTP client of the client commands: the server's base URL (`--server`,
//! `GEORGE_URL`, default `http://127.0.0.1:8080`), a bearer token (`--token`,
//! `GEORGE_TOKEN`), and RFC 9457 problems turned into one-line errors.

use reqwest::{Method, StatusCode};
use serde_json::Value;

/// Where and as whom the client commands talk.
#[derive(Debug, Clone)]
pub(crate) struct Client {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

/// A failed call: the message and the exit code it maps to.
#[derive(Debug)]
pub(crate) struct CallError {
    pub(crate) message: String,
    pub(crate) code: u8,
}

/// Exit code for a refusal by the server (401, 403, 404, 409, 422): the request was
/// understood and said no.
pub(crate) const EXIT_REFUSED: u8 = 3;
/// Exit code when the server cannot be reached or answered 5xx.
pub(crate) const EXIT_UNAVAILABLE: u8 = 4;

impl Client {
    /// A client for `server` (a base URL, possibly with the prefix the API is mounted
    /// under), sending `token` when given.
    pub(crate) fn new(server: String, token: Option<String>) -> Result<Self, CallError> {
        let http = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| CallError {
                message: format!("HTTP client: {e}"),
                code: crate::EXIT_ERROR,
            })?;
        Ok(Client {
            base: server.trim_end_matches('/').to_string(),
            token,
            http,
        })
    }

    /// The full URL of API path `path` (starting with `/`, under `/api/v1`).
    pub(crate) fn url(&self, path: &str) -> String {
        format!("{}/api/v1{path}", self.base)
    }

    /// Sends a request and returns the JSON answer.
    pub(crate) async fn call(
        &self,
        method: Method,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value, CallError> {
        let mut req = self.http.request(method, self.url(path));
        if let Some(t) = &self.token {
            req = req.bearer_auth(t);
        }
        if let Some(b) = body {
            req = req.json(&b);
        }
        let resp = req.send().await.map_err(|e| CallError {
            message: format!("{}: {e}", self.base),
            code: EXIT_UNAVAILABLE,
        })?;
        let status = resp.status();
        let text = resp.text().await.map_err(|e| CallError {
            message: format!("reading the answer: {e}"),
            code: EXIT_UNAVAILABLE,
        })?;
        if status.is_success() {
            return serde_json::from_str(&text).map_err(|e| CallError {
                message: format!("the server's answer is not JSON: {e}"),
                code: EXIT_UNAVAILABLE,
            });
        }
        Err(problem(status, &text))
    }

    /// `GET path`.
    pub(crate) async fn get(&self, path: &str) -> Result<Value, CallError> {
        self.call(Method::GET, path, None).await
    }

    /// `POST path` with `body`.
    pub(crate) async fn post(&self, path: &str, body: Value) -> Result<Value, CallError> {
        self.call(Method::POST, path, Some(body)).await
    }
}

/// The one-line error of a non-2xx answer: the problem's title and detail when the body
/// is a problem document, else the status and body.
fn problem(status: StatusCode, text: &str) -> CallError {
    let code = if status.is_server_error() {
        EXIT_UNAVAILABLE
    } else {
        EXIT_REFUSED
    };
    let message = match serde_json::from_str::<Value>(text) {
        Ok(p) => {
            let title = p["title"].as_str().unwrap_or("");
            let detail = p["detail"].as_str().unwrap_or("");
            format!("{} {title}: {detail}", status.as_u16())
        }
        Err(_) => format!("{status}: {}", text.trim()),
    };
    CallError { message, code }
}

/// Percent-encodes one path segment or query value.
pub(crate) fn enc(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}
