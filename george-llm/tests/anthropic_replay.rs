//! The Anthropic adapter against the recorded exchanges in
//! `tests/fixtures/llm-wire/anthropic/` (served over loopback by `ReplayServer`) and
//! against faults.
//!
//! For each recording, the test rebuilds the conversation as `ChatRequest`s (turn by
//! turn: each next request holds the adapter's previous answer and the tool results)
//! and checks (1) that the adapter sent what the real client sent — compared with
//! `json_includes` against the recorded body minus `tool_choice` (George's
//! `ChatRequest` has no tool choice: the recorded `auto` is the API's default, `none`
//! in the caching recording only keeps the model from calling tools) — and (2) that it
//! understood the answer.
#![cfg(all(feature = "anthropic", feature = "replay"))]

mod anthropic_support;

use std::time::Duration;

use anthropic_support::*;
use george_core::provider::{Message, Provider, StopReason};
use george_core::{ErrorKind, RetryStatus};
use george_llm::Retrying;
use george_llm::anthropic::{AnthropicProvider, PromptCaching};
use george_llm::replay::{ReplayServer, Reply, json_includes};
use serde_json::{Value, json};

/// The calculator tool loop of `messages_sessions/`: three turns, checked turn by turn.
async fn sequential_tool_calls(stream: bool, chunk: Option<usize>) {
    let name = if stream {
        "messages_sessions/sequential_tool_calls_streaming"
    } else {
        "messages_sessions/sequential_tool_calls_nonstreaming"
    };
    let c = cassette(name);
    let replies = c
        .replies()
        .into_iter()
        .map(|r| match chunk {
            Some(n) => r.chunked(n),
            None => r,
        })
        .collect();
    let server = ReplayServer::start(replies).await;
    // The recordings carry no cache markers: the tool loop is checked with caching off,
    // so that nothing but the recorded fields is sent (caching: the caching recording).
    let p = provider(&server, stream).with_prompt_caching(PromptCaching::Off);

    let mut req = first_request(&c.exchanges[0]);
    let r1 = p.complete(req.clone()).await.expect("turn 1");
    assert_eq!(
        r1.message.content.as_deref(),
        Some("I'll start by adding 3 + 4 right away!")
    );
    assert_eq!(
        r1.message.tool_calls,
        vec![call("toolu_REDACTED_1", "add", json!({"x": 3, "y": 4}))]
    );
    assert_eq!(r1.stop_reason, StopReason::ToolUse);
    check_usage(&r1, 755, 0, 0, 84);

    req.push(Message::Assistant(r1.message.clone()));
    req.push(Message::Tool {
        tool_call_id: "toolu_REDACTED_1".into(),
        name: "add".into(),
        content: "7".into(),
        is_error: false,
    });
    let r2 = p.complete(req.clone()).await.expect("turn 2");
    assert_eq!(
        r2.message.content.as_deref(),
        Some("3 + 4 = 7. Now I'll subtract 5 from that result!")
    );
    assert_eq!(
        r2.message.tool_calls,
        vec![call(
            "toolu_REDACTED_2",
            "subtract",
            json!({"x": 7, "y": 5})
        )]
    );
    assert_eq!(r2.stop_reason, StopReason::ToolUse);
    check_usage(&r2, 852, 0, 0, 90);

    req.push(Message::Assistant(r2.message.clone()));
    req.push(Message::Tool {
        tool_call_id: "toolu_REDACTED_2".into(),
        name: "subtract".into(),
        content: "2".into(),
        is_error: false,
    });
    let r3 = p.complete(req).await.expect("turn 3");
    let final_text = if stream {
        "The final number is **2**."
    } else {
        "The final number is **2**!"
    };
    assert_eq!(r3.message.content.as_deref(), Some(final_text));
    assert!(r3.message.tool_calls.is_empty());
    assert_eq!(r3.stop_reason, StopReason::EndTurn);
    check_usage(&r3, 955, 0, 0, if stream { 10 } else { 11 });

    let sent = server.received();
    assert_eq!(sent.len(), 3);
    for (s, e) in sent.iter().zip(&c.exchanges) {
        check_sent(s, e);
        // Caching off: not only included, equal — nothing sent beyond the recording.
        assert_eq!(s.json(), expected_subset(e));
    }
}

#[tokio::test]
async fn sequential_tool_calls_nonstreaming() {
    sequential_tool_calls(false, None).await;
}

#[tokio::test]
async fn sequential_tool_calls_streaming() {
    sequential_tool_calls(true, None).await;
}

#[tokio::test]
async fn streaming_in_tiny_chunks_gives_the_same_answers() {
    // Same assertions as unsplit: events and UTF-8 split across 7-byte chunks.
    sequential_tool_calls(true, Some(7)).await;
}

#[tokio::test]
async fn prompt_caching_markers_match_and_cache_usage_is_read() {
    let c = cassette("prompt_caching/manual_prompt_caching_reuses_tool_cache");
    let server = ReplayServer::start(c.replies()).await;
    // Default caching: system, last tool and last message, as the recording marks them.
    let p = provider(&server, false);
    let req = first_request(&c.exchanges[0]);
    assert_eq!(req.temperature, Some(0.0));

    let first = p.complete(req.clone()).await.expect("first call");
    assert_eq!(first.message.content.as_deref(), Some("cache probe ready"));
    assert_eq!(first.stop_reason, StopReason::EndTurn);
    check_usage(&first, 3, 0, 9677, 6);

    let second = p.complete(req).await.expect("second call");
    assert_eq!(second.message.content.as_deref(), Some("cache probe ready"));
    check_usage(&second, 3, 9677, 0, 6);
    assert!(
        second.usage.cost_usd < first.usage.cost_usd,
        "a cache read costs less than a cache write"
    );

    let sent = server.received();
    assert_eq!(sent.len(), 2);
    for (s, e) in sent.iter().zip(&c.exchanges) {
        check_sent(s, e);
        // Exactly the recorded markers, no more.
        let n = |v: &Value| v.to_string().matches("cache_control").count();
        assert_eq!(n(&s.json()), n(&recorded_body(e)));
    }
}

#[tokio::test]
async fn error_envelope_keeps_status_kind_and_message() {
    let c = cassette("error_envelope/nonexistent_model_error_preserves_status_and_body");
    for stream in [false, true] {
        let server = ReplayServer::start(c.replies()).await;
        let p = provider(&server, stream);
        let req = first_request(&c.exchanges[0]);
        assert!(req.system.is_empty() && req.tools.is_empty());
        let err = p.complete(req).await.expect_err("404");
        assert_eq!(err.kind(), ErrorKind::InvalidInput);
        assert!(!err.is_retryable());
        let msg = err.message();
        assert!(msg.contains("HTTP 404"), "{msg}");
        assert!(msg.contains("not_found_error"), "{msg}");
        assert!(msg.contains("model: claude-nonexistent-rig-test"), "{msg}");
        let sent = server.received();
        let mut expected = expected_subset(&c.exchanges[0]);
        if stream {
            expected["stream"] = json!(true);
        } else {
            check_sent(&sent[0], &c.exchanges[0]);
        }
        json_includes(&sent[0].json(), &expected).expect("request");
    }
}

#[tokio::test]
async fn rate_limited_then_success_through_retrying_honours_retry_after() {
    let envelope = r#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let mut replies = vec![Reply::json(429, envelope).header("retry-after", "1")];
    replies.extend(tool_loop_replies(true));
    let server = ReplayServer::start(replies).await;
    let p = Retrying::new(provider(&server, true), fast_retries());
    let t = std::time::Instant::now();
    let r = p.complete(first_turn()).await.expect("retried");
    assert!(t.elapsed() >= Duration::from_secs(1), "waited Retry-After");
    assert_eq!(r.message.tool_calls.len(), 1);
    assert_eq!(server.received().len(), 2);

    // Without the wrapper: RateLimited, retryable after the server's delay.
    let server =
        ReplayServer::start(vec![Reply::json(429, envelope).header("retry-after", "3")]).await;
    let err = provider(&server, true)
        .complete(first_turn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::RateLimited);
    assert_eq!(
        err.retry(),
        RetryStatus::Transient {
            after: Some(Duration::from_secs(3))
        }
    );
}

#[tokio::test]
async fn server_error_then_success_through_retrying() {
    let mut replies = vec![Reply::json(
        500,
        r#"{"type":"error","error":{"type":"api_error","message":"Internal server error"}}"#,
    )];
    replies.extend(tool_loop_replies(false));
    let server = ReplayServer::start(replies).await;
    let p = Retrying::new(provider(&server, false), fast_retries());
    let r = p.complete(first_turn()).await.expect("retried");
    assert_eq!(r.message.tool_calls[0].name, "add");
    assert_eq!(server.received().len(), 2);
}

#[tokio::test]
async fn overloaded_529_is_overloaded_and_retryable() {
    let server = ReplayServer::start(vec![Reply::json(
        529,
        r#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    )])
    .await;
    let err = provider(&server, false)
        .complete(first_turn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.is_retryable());
    assert!(err.message().contains("Overloaded"), "{}", err.message());
}

#[tokio::test]
async fn connection_dropped_mid_stream_is_retryable_not_partial() {
    let replies = tool_loop_replies(true);
    let whole = replies[0].clone();
    let half = whole.body.len() / 2;
    // One chunk then the break: the server gives up before the response head is out.
    // In 50-byte chunks: the head and several events arrive, then the body breaks.
    for (r, mid_body) in [
        (whole.clone().dropped_after(half), false),
        (whole.dropped_after(half).chunked(50), true),
    ] {
        let server = ReplayServer::start(vec![r]).await;
        let err = provider(&server, true)
            .complete(first_turn())
            .await
            .expect_err("no partial answer");
        assert!(err.is_retryable(), "{err}");
        if mid_body {
            assert_eq!(err.kind(), ErrorKind::Backend, "{err}");
        }
    }
    // Through Retrying: the drop, then the whole answer.
    let mut replies = tool_loop_replies(true);
    let first = replies[0].clone().dropped_after(half);
    replies.insert(0, first);
    let server = ReplayServer::start(replies).await;
    let r = Retrying::new(provider(&server, true), fast_retries())
        .complete(first_turn())
        .await
        .expect("retried");
    assert_eq!(
        r.message.tool_calls,
        vec![call("toolu_REDACTED_1", "add", json!({"x": 3, "y": 4}))]
    );
}

#[tokio::test]
async fn malformed_json_is_malformed_response() {
    let server = ReplayServer::start(vec![Reply::json(200, r#"{"content": [tru"#)]).await;
    let err = provider(&server, false)
        .complete(first_turn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);

    let sse = "event: message_start\ndata: {\"type\":\"message_start\",\"message\":{oops\n\n";
    let server = ReplayServer::start(vec![sse_reply(sse)]).await;
    let err = provider(&server, true)
        .complete(first_turn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
}

#[tokio::test]
async fn slow_server_hits_the_timeout() {
    let mut reply = tool_loop_replies(false).remove(0);
    reply = reply.delayed(Duration::from_secs(3));
    let server = ReplayServer::start(vec![reply]).await;
    let p = AnthropicProvider::new(config(&server, false).timeout(Duration::from_millis(200)));
    let t = std::time::Instant::now();
    let err = p.complete(first_turn()).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Timeout);
    assert!(err.is_retryable());
    assert!(t.elapsed() < Duration::from_secs(2));
}

#[tokio::test]
async fn error_event_mid_stream_is_the_mapped_error() {
    let body = message_start()
        + &event(json!({"type": "error",
            "error": {"type": "overloaded_error", "message": "Overloaded"}}));
    let server = ReplayServer::start(vec![sse_reply(&body)]).await;
    let err = provider(&server, true)
        .complete(first_turn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::Overloaded);
    assert!(err.is_retryable());
    assert!(err.message().contains("Overloaded"), "{}", err.message());
}

#[tokio::test]
async fn stream_without_message_stop_is_cut_short() {
    let body = message_start()
        + &event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "text", "text": ""}}))
        + &event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": "Hello"}}));
    let server = ReplayServer::start(vec![sse_reply(&body)]).await;
    let err = provider(&server, true)
        .complete(first_turn())
        .await
        .unwrap_err();
    assert_eq!(err.kind(), ErrorKind::MalformedResponse);
    assert!(err.is_retryable());
}

#[tokio::test]
async fn invalid_tool_arguments_are_kept_as_a_string() {
    let body = message_start()
        + &event(json!({"type": "content_block_start", "index": 0,
            "content_block": {"type": "thinking", "thinking": ""}}))
        + &event(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "thinking_delta", "thinking": "hmm"}}))
        + &event(json!({"type": "content_block_stop", "index": 0}))
        + &event(json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": "toolu_1", "name": "add", "input": {}}}))
        + &event(json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": "{\"x\": 3,"}}))
        + &event(json!({"type": "content_block_stop", "index": 1}))
        + &event(json!({"type": "some_future_event", "x": 1}))
        + &event(
            json!({"type": "message_delta", "delta": {"stop_reason": "tool_use"},
            "usage": {"output_tokens": 42}}),
        )
        + &event(json!({"type": "message_stop"}));
    let server = ReplayServer::start(vec![sse_reply(&body)]).await;
    let r = provider(&server, true)
        .complete(first_turn())
        .await
        .expect("answer despite invalid arguments");
    assert_eq!(r.message.content, None, "thinking is not text");
    assert_eq!(
        r.message.tool_calls,
        vec![call("toolu_1", "add", Value::String("{\"x\": 3,".into()))]
    );
    assert_eq!(r.stop_reason, StopReason::ToolUse);
    // Input and cache counts from message_start, final output from message_delta.
    let u = r.usage;
    assert_eq!(
        (
            u.input_tokens,
            u.cache_read_tokens,
            u.cache_write_tokens,
            u.output_tokens
        ),
        (10, 5, 2, 42)
    );
}

#[tokio::test]
async fn tool_loop_requests_carry_cache_markers_and_error_results() {
    let server = ReplayServer::start(tool_loop_replies(false)).await;
    let p = provider(&server, false);
    let mut req = first_turn();
    let r1 = p.complete(req.clone()).await.expect("turn 1");
    req.push(Message::Assistant(r1.message));
    req.push(Message::Tool {
        tool_call_id: "toolu_REDACTED_1".into(),
        name: "add".into(),
        content: "the add tool failed".into(),
        is_error: true,
    });
    p.complete(req).await.expect("turn 2");
    let sent = server.received()[1].json();
    let eph = json!({"type": "ephemeral"});
    assert_eq!(sent["system"][0]["cache_control"], eph);
    assert_eq!(sent["tools"][1]["cache_control"], eph);
    assert!(sent["tools"][0].get("cache_control").is_none());
    let last = &sent["messages"][2];
    assert_eq!(
        last,
        &json!({"role": "user", "content": [{"type": "tool_result",
            "tool_use_id": "toolu_REDACTED_1", "is_error": true, "cache_control": eph,
            "content": [{"type": "text", "text": "the add tool failed"}]}]})
    );
}
