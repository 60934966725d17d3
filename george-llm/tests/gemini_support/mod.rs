//! Helpers of `gemini_replay.rs`, and its fault and quirk tests.

mod faults;
mod quirks;

use std::sync::Arc;
use std::time::Duration;

use george_core::provider::{ChatRequest, Message};
use george_core::tool::ToolDefinition;
use george_llm::gemini::GeminiProvider;
use george_llm::replay::{Cassette, Received, RecordedRequest, ReplayServer, Reply, json_includes};
use george_llm::{ApiKey, ProviderConfig, ReqwestTransport};
use serde_json::{Value, json};

/// The key the tests configure; the recordings redacted theirs.
pub const KEY: &str = "test-key";

/// A recording under `tests/fixtures/llm-wire/gemini/`.
pub fn cassette(rel: &str) -> Cassette {
    let path = format!(
        "{}/tests/fixtures/llm-wire/gemini/{rel}",
        env!("CARGO_MANIFEST_DIR")
    );
    Cassette::load(&path).unwrap_or_else(|e| panic!("{e}"))
}

/// The configuration of an adapter talking to `server` as if it were
/// `https://generativelanguage.googleapis.com/v1beta` (the recorded paths start with
/// `/v1beta`), over the real HTTP client.
pub fn config(server: &ReplayServer, stream: bool) -> ProviderConfig {
    let transport = ReqwestTransport::new(Duration::from_secs(5)).expect("HTTP client");
    ProviderConfig::new(format!("{}/v1beta", server.base_url()), Arc::new(transport))
        .api_key(ApiKey::new(KEY))
        .stream(stream)
}

/// The adapter against `server`.
pub fn provider(server: &ReplayServer, stream: bool) -> GeminiProvider {
    GeminiProvider::new(config(server, stream))
}

/// A `text/event-stream` reply of `chunks`, each a `data:` event, as Gemini frames
/// them (`\r\n\r\n`).
pub fn sse(chunks: &[Value]) -> Reply {
    let body: String = chunks
        .iter()
        .map(|c| format!("data: {c}\r\n\r\n"))
        .collect();
    Reply {
        status: 200,
        headers: vec![("content-type".into(), "text/event-stream".into())],
        body: body.into_bytes(),
        ..Reply::default()
    }
}

/// A whole `GenerateContentResponse` with `parts`, a finish reason and usage.
pub fn answer(parts: Value, finish: &str) -> Value {
    json!({
        "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": finish, "index": 0}],
        "usageMetadata": {"promptTokenCount": 10, "candidatesTokenCount": 5, "totalTokenCount": 15},
        "modelVersion": "gemini-2.5-flash"
    })
}

/// A plain-text answer, as a JSON reply.
pub fn text_reply(text: &str) -> Reply {
    Reply::json(200, answer(json!([{"text": text}]), "STOP").to_string())
}

/// A request for `gemini-2.5-flash` with one user message.
pub fn ask(text: &str) -> ChatRequest {
    ChatRequest::new(
        "gemini-2.5-flash",
        "Be brief.",
        vec![Message::User {
            content: text.into(),
        }],
    )
}

/// A tool definition.
pub fn tool(name: &str, description: &str, schema: Value) -> ToolDefinition {
    ToolDefinition::new(name, description, schema)
}

/// `value` without the keys named `key`, at any depth.
pub fn without(value: &Value, key: &str) -> Value {
    match value {
        Value::Object(m) => Value::Object(
            m.iter()
                .filter(|(k, _)| k.as_str() != key)
                .map(|(k, v)| (k.clone(), without(v, key)))
                .collect(),
        ),
        Value::Array(a) => Value::Array(a.iter().map(|v| without(v, key)).collect()),
        other => other.clone(),
    }
}

/// What of a recorded body the adapter must reproduce: all of it except
/// - `thought: false` on every part (rig's client spells out the default; Gemini's
///   `Part.thought` is an output flag),
/// - `systemInstruction.role` (rig sends `"model"`; the API ignores a role there),
///
/// while `null`s (`safetySettings`, `toolConfig`, `codeExecution`, an absent
/// `systemInstruction`) must be absent or null ([`json_includes`] accepts either).
pub fn expected_body(recorded: &str) -> Value {
    let body: Value = serde_json::from_str(recorded).expect("recorded body is JSON");
    let mut body = without(&body, "thought");
    if let Some(Value::Object(system)) = body.get_mut("systemInstruction") {
        system.remove("role");
    }
    body
}

/// Checks that `sent` matches what the real client sent in `when`: method, path,
/// the query parameters other than `key`, the key (in the `x-goog-api-key` header,
/// or the `key` query parameter as recorded), `content-type`, `accept` for streams
/// (the recorded non-streaming `*/*` is the client library's default, not the API's
/// requirement) and the body (see [`expected_body`]).
pub fn check_sent(sent: &Received, when: &RecordedRequest) {
    assert_eq!(sent.method, when.method);
    assert_eq!(sent.path, when.path);
    for q in when.query_param.iter().filter(|q| q.name != "key") {
        assert!(
            sent.query.contains(&(q.name.clone(), q.value.clone())),
            "query {}={} missing in {:?}",
            q.name,
            q.value,
            sent.query
        );
    }
    let key_in_query = sent.query.iter().any(|(k, v)| k == "key" && v == KEY);
    assert!(
        sent.header("x-goog-api-key") == Some(KEY) || key_in_query,
        "the API key was not sent"
    );
    for h in &when.header {
        match h.name.as_str() {
            "content-type" => assert_eq!(sent.header("content-type"), Some(h.value.as_str())),
            "accept" if h.value == "text/event-stream" => {
                assert_eq!(sent.header("accept"), Some("text/event-stream"))
            }
            _ => {}
        }
    }
    if let Err(e) = json_includes(&sent.json(), &expected_body(&when.body)) {
        panic!(
            "sent body differs from the recording at {e}\nsent: {}",
            sent.json()
        );
    }
}
