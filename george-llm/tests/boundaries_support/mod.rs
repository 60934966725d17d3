//! Helpers for `boundaries_providers.rs`: a capturing transport, agent specs as a
//! committer writes them, and the secret every test process carries.
#![allow(dead_code)]

use std::sync::{Arc, Mutex, Once};

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use george_core::Result;
use george_core::model::AgentConfig;
use george_core::provider::{ChatRequest, Message};
use george_llm::{HttpRequest, HttpResponse, HttpTransport};

/// A variable of the engine's environment that no profile names (a database
/// password, say), and its value.
pub const SECRET_VAR: &str = "GEORGE_TEST_SECRET_XYZ";
pub const SECRET: &str = "db-password-do-not-send-9f3a";

/// Puts [`SECRET_VAR`] in the process environment. Every test calls this first, so
/// the one write happens before any test reads the environment.
pub fn engine_env() {
    static ONCE: Once = Once::new();
    ONCE.call_once(|| {
        // SAFETY: every test of this binary calls `engine_env` before anything else,
        // and `Once` makes the others wait, so no thread reads the environment while
        // it is written.
        unsafe { std::env::set_var(SECRET_VAR, SECRET) };
    });
}

/// What the capturing transport answers.
pub type Answer = Arc<dyn Fn() -> HttpResponse + Send + Sync>;

/// An [`HttpTransport`] that records every request and answers with `answer`: the
/// requests are exactly what would have gone on the wire.
#[derive(Clone)]
pub struct Capture {
    sent: Arc<Mutex<Vec<HttpRequest>>>,
    answer: Answer,
}

impl std::fmt::Debug for Capture {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Capture")
    }
}

impl Capture {
    /// Answers every request with `status` and `body` (JSON).
    pub fn json(status: u16, body: &str) -> Capture {
        let body = Bytes::from(body.to_string());
        Self::answering(Arc::new(move || {
            response(status, "application/json", [body.clone()])
        }))
    }

    /// Answers every request with `answer()`.
    pub fn answering(answer: Answer) -> Capture {
        Capture {
            sent: Arc::new(Mutex::new(Vec::new())),
            answer,
        }
    }

    /// The requests sent so far.
    pub fn sent(&self) -> Vec<HttpRequest> {
        self.sent.lock().unwrap().clone()
    }

    /// Whether any request carried `needle` in its URL, a header or its body.
    pub fn carried(&self, needle: &str) -> bool {
        self.sent().iter().any(|r| {
            r.url.contains(needle)
                || r.headers.iter().any(|(_, v)| v.contains(needle))
                || String::from_utf8_lossy(&r.body).contains(needle)
        })
    }
}

#[async_trait]
impl HttpTransport for Capture {
    async fn send(&self, request: HttpRequest) -> Result<HttpResponse> {
        self.sent.lock().unwrap().push(request);
        Ok((self.answer)())
    }
}

/// A response with `status`, `content_type` and the body `chunks`.
pub fn response(
    status: u16,
    content_type: &str,
    chunks: impl IntoIterator<Item = Bytes>,
) -> HttpResponse {
    let chunks: Vec<Result<Bytes>> = chunks.into_iter().map(Ok).collect();
    HttpResponse {
        status,
        headers: vec![("content-type".into(), content_type.into())],
        body: futures::stream::iter(chunks).boxed(),
    }
}

/// A 200 event stream that repeats `chunk` forever (yielding to the runtime between
/// chunks, as a socket would, so a timeout around the reader can fire).
pub fn endless(chunk: &'static [u8]) -> HttpResponse {
    let body: BoxStream<'static, Result<Bytes>> =
        futures::stream::unfold((), move |()| async move {
            tokio::task::yield_now().await;
            Some((Ok(Bytes::from_static(chunk)), ()))
        })
        .boxed();
    HttpResponse {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body,
    }
}

/// The `spec` of a committed AgentSpec, from its YAML-ish fields.
pub fn spec(fields: serde_json::Value) -> AgentConfig {
    let mut v = serde_json::json!({"model": "gpt-4.1-mini", "system_prompt": "You work."});
    if let (Some(base), Some(extra)) = (v.as_object_mut(), fields.as_object()) {
        for (k, x) in extra {
            base.insert(k.clone(), x.clone());
        }
    }
    serde_json::from_value(v).expect("an agent spec")
}

/// A one-message request for `model`.
pub fn ask(model: &str) -> ChatRequest {
    ChatRequest::new(
        model,
        "You work.",
        vec![Message::User {
            content: "Say hi.".into(),
        }],
    )
}

/// An OpenAI chat completion saying "hi".
pub const OPENAI_OK: &str = r#"{"id":"c1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],"usage":{"prompt_tokens":5,"completion_tokens":1,"total_tokens":6}}"#;
