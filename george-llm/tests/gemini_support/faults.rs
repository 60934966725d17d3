//! Faults: rate limits, server errors, broken and cut streams, malformed bodies,
//! slow servers, tiny chunks.

use std::time::{Duration, Instant};

use george_core::provider::{Provider, StopReason};
use george_core::{ErrorKind, RetryStatus};
use george_llm::replay::{ReplayServer, Reply};
use george_llm::{RetryPolicy, Retrying};
use serde_json::json;

use super::{answer, ask, config, provider, sse, text_reply};

fn fast_retries() -> RetryPolicy {
    RetryPolicy {
        base_delay_ms: 1,
        max_delay_ms: 5,
        ..RetryPolicy::default()
    }
}

fn envelope(code: u16, status: &str, message: &str) -> String {
    json!({"error": {"code": code, "message": message, "status": status}}).to_string()
}

#[tokio::test]
async fn rate_limited_with_retry_after_then_success() {
    let server = ReplayServer::start(vec![
        Reply::json(429, envelope(429, "RESOURCE_EXHAUSTED", "Slow down."))
            .header("retry-after", "1"),
        text_reply("ok"),
    ])
    .await;
    let p = Retrying::new(provider(&server, false), RetryPolicy::default());
    let t = Instant::now();
    let r = p.complete(ask("hi")).await.unwrap();
    assert!(
        t.elapsed() >= Duration::from_secs(1),
        "waited for Retry-After"
    );
    assert_eq!(r.message.content.as_deref(), Some("ok"));
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn rate_limited_with_retry_info_delay() {
    let body = json!({"error": {"code": 429, "message": "You exceeded your current quota.",
        "status": "RESOURCE_EXHAUSTED", "details": [
            {"@type": "type.googleapis.com/google.rpc.QuotaFailure", "violations": []},
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": "0.3s"}]}});
    let server = ReplayServer::start(vec![
        Reply::json(429, body.to_string()),
        Reply::json(429, body.to_string()),
        text_reply("ok"),
    ])
    .await;
    let err = provider(&server, false)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(
        err.retry(),
        RetryStatus::Transient {
            after: Some(Duration::from_millis(300))
        }
    );
    assert!(err.message().contains("RESOURCE_EXHAUSTED"));
    let p = Retrying::new(provider(&server, false), RetryPolicy::default());
    let t = Instant::now();
    assert!(p.complete(ask("hi")).await.is_ok());
    assert!(t.elapsed() >= Duration::from_millis(300));
}

#[tokio::test]
async fn server_error_then_success() {
    let server = ReplayServer::start(vec![
        Reply::json(
            500,
            envelope(500, "INTERNAL", "An internal error has occurred."),
        ),
        sse(&[answer(json!([{"text": "ok"}]), "STOP")]),
    ])
    .await;
    let p = Retrying::new(provider(&server, true), fast_retries());
    let r = p.complete(ask("hi")).await.unwrap();
    assert_eq!(r.message.content.as_deref(), Some("ok"));
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn unavailable_is_overloaded() {
    let server = ReplayServer::start(vec![Reply::json(
        503,
        envelope(
            503,
            "UNAVAILABLE",
            "The model is overloaded. Please try again later.",
        ),
    )])
    .await;
    let err = provider(&server, false)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.is_retryable());
}

fn three_chunks() -> Vec<serde_json::Value> {
    vec![
        json!({"candidates": [{"content": {"parts": [{"text": "Hé"}], "role": "model"}}]}),
        json!({"candidates": [{"content": {"parts": [{"text": "llo 🌍 "}], "role": "model"}}]}),
        answer(json!([{"text": "日本"}]), "STOP"),
    ]
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_retryable_not_partial() {
    let whole = sse(&three_chunks());
    let first_event = whole.body.iter().position(|b| *b == b'\n').unwrap_or(10) + 4;
    let server =
        ReplayServer::start(vec![whole.clone().dropped_after(first_event + 20), whole]).await;
    let err = provider(&server, true)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert!(err.is_retryable(), "{err}");
    let p = Retrying::new(provider(&server, true), fast_retries());
    let r = p.complete(ask("hi")).await.unwrap();
    assert_eq!(r.message.content.as_deref(), Some("Héllo 🌍 日本"));
}

#[tokio::test]
async fn stream_without_its_final_chunk_is_cut_short() {
    let chunks = three_chunks();
    let server = ReplayServer::start(vec![sse(&chunks[..2])]).await;
    let err = provider(&server, true)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert!(err.message().contains("ended before"), "{err}");
}

#[tokio::test]
async fn malformed_json_is_a_malformed_response() {
    let server = ReplayServer::start(vec![Reply::json(200, "{\"candidates\": [ oops")]).await;
    let err = provider(&server, false)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);

    let mut bad = sse(&[]);
    bad.body = b"data: {\"candidates\": nope}\r\n\r\n".to_vec();
    let server = ReplayServer::start(vec![bad]).await;
    let err = provider(&server, true)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert!(err.message().contains("stream chunk"), "{err}");
}

#[tokio::test]
async fn slow_server_hits_the_timeout() {
    let server =
        ReplayServer::start(vec![text_reply("late").delayed(Duration::from_secs(3))]).await;
    let p = george_llm::gemini::GeminiProvider::new(
        config(&server, false).timeout(Duration::from_millis(200)),
    );
    let t = Instant::now();
    let err = p.complete(ask("hi")).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn tiny_chunks_give_the_same_answer() {
    let mut chunks = three_chunks();
    chunks.insert(
        0,
        json!({"candidates": [{"content": {"parts": [{"text": "Thinking about it…", "thought": true}], "role": "model"}}]}),
    );
    let server = ReplayServer::start(vec![sse(&chunks), sse(&chunks).chunked(7)]).await;
    let p = provider(&server, true);
    let whole = p.complete(ask("hi")).await.unwrap();
    let split = p.complete(ask("hi")).await.unwrap();
    assert_eq!(whole, split);
    assert_eq!(
        whole.message.content.as_deref(),
        Some("Héllo 🌍 日本"),
        "thoughts skipped"
    );
    assert_eq!(whole.stop_reason, StopReason::EndTurn);
    assert_eq!(whole.usage.input_tokens, 10);
}

#[tokio::test]
async fn error_inside_a_stream_is_mapped() {
    let server = ReplayServer::start(vec![sse(&[
        json!({"candidates": [{"content": {"parts": [{"text": "Hel"}], "role": "model"}}]}),
        json!({"error": {"code": 503, "message": "The model is overloaded.", "status": "UNAVAILABLE"}}),
    ])])
    .await;
    let err = provider(&server, true)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.message().contains("overloaded"), "{err}");
}
