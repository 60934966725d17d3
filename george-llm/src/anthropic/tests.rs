//! Unit tests of the request mapping and the stream assembly.

use george_core::provider::{AssistantMessage, ChatRequest, Message, StopReason, ToolCall};
use george_core::tool::ToolDefinition;
use serde_json::{Value, json};

use super::wire::{self, object_schema};
use super::{DEFAULT_MAX_TOKENS, PromptCaching, parse_error_envelope};

fn body(req: &ChatRequest, caching: PromptCaching, stream: bool) -> Value {
    serde_json::to_value(wire::request(req, DEFAULT_MAX_TOKENS, caching, stream)).unwrap()
}

fn tool(name: &str, schema: Value) -> ToolDefinition {
    ToolDefinition::new(name, format!("the {name} tool"), schema)
}

#[test]
fn schemas_become_object_schemas() {
    let good = json!({"type": "object", "properties": {"x": {"type": "number"}}});
    assert!(matches!(
        object_schema(&good),
        std::borrow::Cow::Borrowed(_)
    ));
    assert_eq!(
        object_schema(
            &json!({"$schema": "https://json-schema.org/draft/2020-12/schema",
                              "properties": {"x": {"type": "number"}}, "required": ["x"]})
        )
        .into_owned(),
        json!({"type": "object", "properties": {"x": {"type": "number"}}, "required": ["x"]})
    );
    assert_eq!(
        object_schema(&json!({"type": "object", "$schema": "x"})).into_owned(),
        json!({"type": "object"})
    );
    assert_eq!(
        object_schema(&Value::Null).into_owned(),
        json!({"type": "object", "properties": {}})
    );
    assert_eq!(
        object_schema(&json!(true)).into_owned(),
        json!({"type": "object", "properties": {}})
    );
}

fn tool_loop() -> ChatRequest {
    let call = |id: &str, args: Value| ToolCall {
        id: id.into(),
        name: "add".into(),
        arguments: args,
        provider_metadata: None,
    };
    ChatRequest::new(
        "claude-sonnet-4-6",
        "Be a calculator.",
        vec![
            Message::User {
                content: "Add things.".into(),
            },
            Message::Assistant(AssistantMessage {
                content: Some("Adding both.".into()),
                tool_calls: vec![call("t1", json!({"x": 1})), call("t2", json!("{bad"))],
            }),
            Message::User {
                content: "Also, hurry.".into(),
            },
            Message::Tool {
                tool_call_id: "t1".into(),
                name: "add".into(),
                content: "1".into(),
                is_error: false,
            },
            Message::Tool {
                tool_call_id: "t2".into(),
                name: "add".into(),
                content: "invalid arguments".into(),
                is_error: true,
            },
        ],
    )
    .with_tools(vec![
        tool("add", json!({"type": "object"})),
        tool("sub", json!({"properties": {}})),
    ])
}

#[test]
fn tool_results_and_text_merge_into_one_user_turn_results_first() {
    let b = body(&tool_loop(), PromptCaching::Off, false);
    assert_eq!(
        b["messages"],
        json!([
            {"role": "user", "content": [{"type": "text", "text": "Add things."}]},
            {"role": "assistant", "content": [
                {"type": "text", "text": "Adding both."},
                {"type": "tool_use", "id": "t1", "name": "add", "input": {"x": 1}},
                {"type": "tool_use", "id": "t2", "name": "add", "input": {}},
            ]},
            {"role": "user", "content": [
                {"type": "tool_result", "tool_use_id": "t1",
                 "content": [{"type": "text", "text": "1"}]},
                {"type": "tool_result", "tool_use_id": "t2", "is_error": true,
                 "content": [{"type": "text", "text": "invalid arguments"}]},
                {"type": "text", "text": "Also, hurry."},
            ]},
        ])
    );
    assert_eq!(b["max_tokens"], json!(DEFAULT_MAX_TOKENS));
    assert!(b.get("stream").is_none() && b.get("temperature").is_none());
    assert_eq!(
        b["tools"][1]["input_schema"],
        json!({"type": "object", "properties": {}})
    );
    assert!(!b.to_string().contains("cache_control"), "caching off");
}

#[test]
fn cache_markers_on_system_last_tool_and_last_message() {
    let req = tool_loop()
        .with_max_tokens(Some(10))
        .with_temperature(Some(0.5));
    let b = body(&req, PromptCaching::Conversation, true);
    let eph = json!({"type": "ephemeral"});
    assert_eq!(
        b["system"],
        json!([{"type": "text", "text": "Be a calculator.", "cache_control": eph}])
    );
    assert!(b["tools"][0].get("cache_control").is_none());
    assert_eq!(b["tools"][1]["cache_control"], eph);
    assert_eq!(b["messages"][2]["content"][2]["cache_control"], eph);
    assert_eq!(b.to_string().matches("cache_control").count(), 3);
    assert_eq!(
        (b["max_tokens"].clone(), b["stream"].clone()),
        (json!(10), json!(true))
    );
    assert_eq!(b["temperature"], json!(0.5));

    let b = body(&req, PromptCaching::Prefix, false);
    assert_eq!(b.to_string().matches("cache_control").count(), 2);

    // No system prompt, no tools: no empty system block, no tools key.
    let bare = ChatRequest::new(
        "m",
        "",
        vec![Message::User {
            content: "hi".into(),
        }],
    );
    let b = body(&bare, PromptCaching::Conversation, false);
    assert!(b.get("system").is_none() && b.get("tools").is_none());
}

#[test]
fn error_envelope_is_read() {
    let e = parse_error_envelope(
        br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}"#,
    );
    assert_eq!(e.code.as_deref(), Some("overloaded_error"));
    assert_eq!(e.message.as_deref(), Some("Overloaded"));
    assert_eq!(parse_error_envelope(b"<html>"), Default::default());
}

#[test]
fn stop_reasons_map() {
    use wire::stop_reason;
    assert_eq!(stop_reason(Some("end_turn")), StopReason::EndTurn);
    assert_eq!(stop_reason(Some("tool_use")), StopReason::ToolUse);
    assert_eq!(stop_reason(Some("max_tokens")), StopReason::MaxTokens);
    assert_eq!(stop_reason(Some("refusal")), StopReason::Other);
    assert_eq!(stop_reason(None), StopReason::Other);
}
