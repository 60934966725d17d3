#![cfg(all(feature = "gemini", feature = "replay"))]
//! The Gemini adapter against the recorded exchanges in
//! `tests/fixtures/llm-wire/gemini/` (replayed on a loopback server, through the
//! real HTTP client): what it sends matches what the recorded client sent, and it
//! understands what the API answered. Fault and quirk cases are in
//! `gemini_support/`.

mod gemini_support;

use george_core::ErrorKind;
use george_core::provider::{ChatRequest, ChatResponse, Message, Provider, StopReason};
use george_llm::gemini::GeminiProvider;
use george_llm::replay::{ReplayServer, Reply};
use serde_json::json;

use gemini_support::{cassette, check_sent, config, provider, tool};

const MODEL: &str = "gemini-2.5-flash";
const SYSTEM: &str = "You are a calculator assistant. You MUST use the provided tools for every arithmetic operation instead of computing results yourself. Once you have all the tool results you need, reply with the final numeric answer in plain text.";
const PROMPT: &str =
    "Calculate 12 - 5 using the subtract tool, then add 30 to that result using the add tool.";

fn calculator() -> Vec<george_core::tool::ToolDefinition> {
    let operands = json!({
        "type": "object",
        "properties": {
            "x": {"type": "number", "description": "The first operand"},
            "y": {"type": "number", "description": "The second operand"}
        },
        "required": ["x", "y"]
    });
    vec![
        tool("add", "Add x and y together", operands.clone()),
        tool("subtract", "Subtract y from x (i.e. x - y)", operands),
    ]
}

fn request(messages: Vec<Message>) -> ChatRequest {
    ChatRequest::new(MODEL, SYSTEM, messages)
        .with_tools(calculator())
        .with_temperature(Some(0.0))
}

/// Plays the recorded three-turn tool loop (subtract, add, answer), feeding each
/// answer's tool calls and their results into the next request; every reply split
/// into `chunk`-byte pieces when given. Returns the answers and the server.
async fn tool_loop(file: &str, stream: bool, chunk: Option<usize>) -> Vec<ChatResponse> {
    let c = cassette(file);
    let replies: Vec<Reply> = c
        .replies()
        .into_iter()
        .map(|r| match chunk {
            Some(n) => r.chunked(n),
            None => r,
        })
        .collect();
    let server = ReplayServer::start(replies).await;
    let p = provider(&server, stream);
    let mut messages = vec![Message::User {
        content: PROMPT.into(),
    }];
    // The tools' results, as the recorded client's tools returned them; none after
    // the final answer.
    let results = [Some("7"), Some("37"), None];
    let mut answers = Vec::new();
    for result in results {
        let answer = p.complete(request(messages.clone())).await.unwrap();
        if let Some(result) = result {
            messages.push(Message::Assistant(answer.message.clone()));
            for call in &answer.message.tool_calls {
                messages.push(Message::Tool {
                    tool_call_id: call.id.clone(),
                    name: call.name.clone(),
                    content: result.into(),
                    is_error: false,
                });
            }
        }
        answers.push(answer);
    }
    let sent = server.received();
    assert_eq!(sent.len(), c.exchanges.len());
    for (s, e) in sent.iter().zip(&c.exchanges) {
        check_sent(s, &e.when);
    }
    answers
}

/// Checks the three answers: the tool calls with ids, arguments and signatures, the
/// final text, stop reasons, and usage per turn as (promptTokenCount,
/// candidatesTokenCount, thoughtsTokenCount) from the recording.
fn check_answers(answers: &[ChatResponse], recorded_usage: [(u64, u64, u64); 3]) {
    let expected_calls = [
        (
            "call_0",
            "subtract",
            json!({"x": 12, "y": 5}),
            "signature_REDACTED_1",
        ),
        (
            "call_1",
            "add",
            json!({"x": 7, "y": 30}),
            "signature_REDACTED_2",
        ),
    ];
    for (answer, (id, name, args, signature)) in answers.iter().zip(&expected_calls) {
        assert_eq!(answer.stop_reason, StopReason::ToolUse);
        assert_eq!(answer.message.content, None);
        assert_eq!(answer.message.tool_calls.len(), 1);
        let call = &answer.message.tool_calls[0];
        assert_eq!(call.id, *id);
        assert_eq!(call.name, *name);
        assert_eq!(call.arguments, *args);
        assert_eq!(
            call.provider_metadata,
            Some(json!({"thoughtSignature": signature}))
        );
    }
    let last = &answers[2];
    assert_eq!(last.message.content.as_deref(), Some("37"));
    assert!(last.message.tool_calls.is_empty());
    assert_eq!(last.stop_reason, StopReason::EndTurn);
    for (answer, (prompt, candidates, thoughts)) in answers.iter().zip(recorded_usage) {
        let u = answer.usage;
        assert_eq!(
            u.input_tokens, prompt,
            "no cached content: all input uncached"
        );
        assert_eq!(u.cache_read_tokens, 0);
        assert_eq!(u.cache_write_tokens, 0);
        assert_eq!(u.output_tokens, candidates + thoughts, "thinking is output");
        assert_eq!(u.reasoning_tokens, thoughts);
        // gemini-2.5-flash: $0.30 in, $2.50 out per million.
        let cost = (prompt as f64 * 0.30 + (candidates + thoughts) as f64 * 2.50) / 1e6;
        assert!(
            u.cost_usd > 0.0 && (u.cost_usd - cost).abs() < 1e-12,
            "{u:?}"
        );
    }
}

#[tokio::test]
async fn nonstreaming_multi_turn_tool_loop() {
    let answers = tool_loop(
        "agent_tools/nonstreaming_multi_turn_executes_tools_and_reports_usage.yaml",
        false,
        None,
    )
    .await;
    check_answers(&answers, [(177, 19, 64), (209, 19, 45), (242, 2, 26)]);
}

#[tokio::test]
async fn streaming_multi_turn_tool_loop() {
    let answers = tool_loop(
        "agent_tools/streaming_multi_turn_executes_tools_via_builtin_driver.yaml",
        true,
        None,
    )
    .await;
    check_answers(&answers, [(177, 19, 64), (273, 19, 45), (351, 2, 26)]);
}

#[tokio::test]
async fn streaming_split_into_tiny_chunks_gives_the_same_answers() {
    let file = "agent_tools/streaming_multi_turn_executes_tools_via_builtin_driver.yaml";
    let whole = tool_loop(file, true, None).await;
    let split = tool_loop(file, true, Some(7)).await;
    assert_eq!(whole, split);
}

#[tokio::test]
async fn error_envelope_preserves_status_and_message() {
    let c = cassette("error_envelope/nonexistent_model_error_preserves_status_and_body.yaml");
    let server = ReplayServer::start(c.replies()).await;
    let p = GeminiProvider::new(config(&server, false));
    let req = ChatRequest::new(
        "gemini-nonexistent-rig-test",
        "",
        vec![Message::User {
            content: "Say hi.".into(),
        }],
    )
    .with_max_tokens(Some(16));
    let err = p.complete(req).await.unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert!(!err.is_retryable());
    let msg = err.message();
    assert!(msg.contains("HTTP 404"), "{msg}");
    assert!(msg.contains("NOT_FOUND"), "{msg}");
    assert!(
        msg.contains("models/gemini-nonexistent-rig-test is not found for API version v1beta"),
        "{msg}"
    );
    let sent = server.received();
    assert_eq!(sent.len(), 1);
    check_sent(&sent[0], &c.exchanges[0].when);
    assert!(
        sent[0].json().get("systemInstruction").is_none(),
        "no empty system"
    );
}
