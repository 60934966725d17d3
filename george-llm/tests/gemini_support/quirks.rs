//! Gemini specifics: call ids, parallel calls and error results, arguments that are
//! not JSON, stop reasons, cached-token usage, schema adjustments, the key header.

use george_core::provider::{Message, Provider, StopReason};
use george_llm::replay::{ReplayServer, Reply};
use serde_json::{Value, json};

use super::{KEY, answer, ask, provider, tool};

fn reply(v: Value) -> Reply {
    Reply::json(200, v.to_string())
}

#[tokio::test]
async fn parallel_calls_ids_signatures_and_error_results_round_trip() {
    let calls = json!([
        {"functionCall": {"id": "fc-1", "name": "read", "args": {"path": "a.txt"}}, "thoughtSignature": "sig-A"},
        {"functionCall": {"name": "read", "args": {"path": "b.txt"}}}
    ]);
    let server = ReplayServer::start(vec![
        reply(answer(calls, "STOP")),
        reply(answer(json!([{"text": "done"}]), "STOP")),
    ])
    .await;
    let p = provider(&server, false);
    let first = p.complete(ask("read both")).await.unwrap();
    assert_eq!(first.stop_reason, StopReason::ToolUse);
    let ids: Vec<&str> = first
        .message
        .tool_calls
        .iter()
        .map(|c| c.id.as_str())
        .collect();
    assert_eq!(ids, ["fc-1", "call_0"]);
    assert_eq!(
        first.message.tool_calls[0].provider_metadata,
        Some(json!({"thoughtSignature": "sig-A", "id": "fc-1"}))
    );
    assert_eq!(first.message.tool_calls[1].provider_metadata, None);

    let mut req = ask("read both");
    req.push(Message::Assistant(first.message.clone()));
    req.push(Message::Tool {
        tool_call_id: "fc-1".into(),
        name: "read".into(),
        content: "{\"bytes\": 3}".into(),
        is_error: false,
    });
    req.push(Message::Tool {
        tool_call_id: "call_0".into(),
        name: "read".into(),
        content: "no such file".into(),
        is_error: true,
    });
    p.complete(req).await.unwrap();
    let sent = server.received()[1].json();
    assert_eq!(
        sent["contents"],
        json!([
            {"role": "user", "parts": [{"text": "read both"}]},
            {"role": "model", "parts": [
                {"functionCall": {"id": "fc-1", "name": "read", "args": {"path": "a.txt"}}, "thoughtSignature": "sig-A"},
                {"functionCall": {"name": "read", "args": {"path": "b.txt"}}}
            ]},
            {"role": "user", "parts": [
                {"functionResponse": {"id": "fc-1", "name": "read", "response": {"result": {"bytes": 3}}}},
                {"functionResponse": {"name": "read", "response": {"error": "no such file"}}}
            ]}
        ])
    );
}

#[tokio::test]
async fn generated_ids_stay_unique_in_the_conversation() {
    let call = json!([{"functionCall": {"name": "f", "args": {}}}]);
    let server = ReplayServer::start(vec![reply(answer(call, "STOP"))]).await;
    let mut req = ask("go");
    req.push(Message::Assistant(
        george_core::provider::AssistantMessage {
            content: None,
            tool_calls: vec![george_core::provider::ToolCall {
                id: "call_0".into(),
                name: "f".into(),
                arguments: json!({}),
                provider_metadata: None,
            }],
        },
    ));
    req.push(Message::Tool {
        tool_call_id: "call_0".into(),
        name: "f".into(),
        content: "1".into(),
        is_error: false,
    });
    let r = provider(&server, false).complete(req).await.unwrap();
    assert_eq!(r.message.tool_calls[0].id, "call_1");
    assert_eq!(r.message.tool_calls[0].arguments, json!({}));
}

#[tokio::test]
async fn arguments_that_are_not_json_are_kept_as_text() {
    let calls = json!([
        {"functionCall": {"name": "f", "args": "{\"x\": 1"}},
        {"functionCall": {"name": "g", "args": "{\"x\": 1}"}}
    ]);
    let server = ReplayServer::start(vec![reply(answer(calls, "STOP"))]).await;
    let r = provider(&server, false).complete(ask("go")).await.unwrap();
    assert_eq!(r.message.tool_calls[0].arguments, json!("{\"x\": 1"));
    assert_eq!(r.message.tool_calls[1].arguments, json!({"x": 1}));
    assert_eq!(r.stop_reason, StopReason::ToolUse);
}

#[tokio::test]
async fn finish_reasons_and_blocked_prompts() {
    let server = ReplayServer::start(vec![
        reply(answer(json!([{"text": "It was a dark and"}]), "MAX_TOKENS")),
        reply(answer(json!([]), "SAFETY")),
        reply(json!({"promptFeedback": {"blockReason": "SAFETY"},
                     "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8}})),
        reply(answer(json!([{"text": "x"}]), "RECITATION")),
    ])
    .await;
    let p = provider(&server, false);
    let r = p.complete(ask("story")).await.unwrap();
    assert_eq!(r.stop_reason, StopReason::MaxTokens);
    assert_eq!(r.message.content.as_deref(), Some("It was a dark and"));
    for _ in 0..3 {
        let r = p.complete(ask("story")).await.unwrap();
        assert_eq!(r.stop_reason, StopReason::Other);
    }
}

#[tokio::test]
async fn cached_content_is_not_counted_as_uncached_input() {
    let mut body = answer(json!([{"text": "hi"}]), "STOP");
    body["usageMetadata"] = json!({"promptTokenCount": 1000, "cachedContentTokenCount": 800,
        "candidatesTokenCount": 10, "thoughtsTokenCount": 5, "totalTokenCount": 1015});
    let server = ReplayServer::start(vec![reply(body)]).await;
    let r = provider(&server, false).complete(ask("hi")).await.unwrap();
    let u = r.usage;
    assert_eq!(
        (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens),
        (200, 800, 0)
    );
    assert_eq!((u.output_tokens, u.reasoning_tokens), (15, 5));
    let cost = (200.0 * 0.30 + 800.0 * 0.075 + 15.0 * 2.50) / 1e6;
    assert!((u.cost_usd - cost).abs() < 1e-12, "{}", u.cost_usd);
}

#[tokio::test]
async fn context_too_long_is_its_own_kind() {
    let body = json!({"error": {"code": 400, "status": "INVALID_ARGUMENT",
        "message": "The input token count (1200000) exceeds the maximum number of tokens allowed (1048576)."}});
    let server = ReplayServer::start(vec![Reply::json(400, body.to_string())]).await;
    let err = provider(&server, false)
        .complete(ask("hi"))
        .await
        .unwrap_err();
    assert_eq!(err.kind(), george_core::ErrorKind::ContextTooLong);
    assert!(!err.is_retryable());
}

#[tokio::test]
async fn schemas_are_adjusted_and_the_key_travels_in_a_header() {
    let server = ReplayServer::start(vec![reply(answer(json!([{"text": "ok"}]), "STOP"))]).await;
    let schemars = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Args", "type": "object",
        "properties": {"inner": {"$ref": "#/$defs/Inner"}, "note": {"type": ["string", "null"]},
                       "mode": {"const": "fast"}},
        "required": ["inner"], "additionalProperties": false,
        "$defs": {"Inner": {"type": "object", "properties": {"n": {"type": "integer"}}}}
    });
    let mut req = ask("go").with_tools(vec![
        tool("configure", "Sets things.", schemars),
        tool(
            "ping",
            "No arguments.",
            json!({"type": "object", "properties": {}}),
        ),
    ]);
    req.model = "models/gemini-2.5-flash".into();
    req.max_tokens = Some(64);
    provider(&server, false).complete(req).await.unwrap();
    let sent = &server.received()[0];
    assert_eq!(sent.path, "/v1beta/models/gemini-2.5-flash:generateContent");
    assert_eq!(sent.header("x-goog-api-key"), Some(KEY));
    assert!(
        sent.query.iter().all(|(k, _)| k != "key"),
        "no key in the URL"
    );
    let body = sent.json();
    assert_eq!(
        body["tools"],
        json!([{"functionDeclarations": [
            {"name": "configure", "description": "Sets things.", "parameters": {
                "title": "Args", "type": "object",
                "properties": {"inner": {"type": "object", "properties": {"n": {"type": "integer"}}},
                               "note": {"type": "string", "nullable": true},
                               "mode": {"type": "string", "enum": ["fast"]}},
                "required": ["inner"]}},
            {"name": "ping", "description": "No arguments."}
        ]}])
    );
    assert_eq!(body["generationConfig"], json!({"maxOutputTokens": 64}));
    assert_eq!(
        body["systemInstruction"],
        json!({"parts": [{"text": "Be brief."}]})
    );
}
