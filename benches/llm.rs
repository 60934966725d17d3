//! The adapters' own overhead per model call, against a loopback server (the replay
//! server of `george-llm`, feature `replay`), so no model and no network are involved.
//!
//! - `llm/<provider>/blocking`: one non-streamed answer with one tool call — request
//!   encoding, one HTTP round trip on loopback, response decoding, usage and cost.
//! - `llm/<provider>/stream_1000_deltas`: a streamed answer of 20 tool calls whose
//!   arguments arrive in 50 pieces each (Gemini: 20 whole calls and 1,000 text pieces):
//!   SSE parsing and delta merging. Throughput in deltas.
//! - `llm/<provider>/large_request`: a 60-message conversation with 20 tool definitions
//!   sent, a short answer back: the cost of encoding what grows with a long tool loop.
//! - `llm/http_floor`: the same loopback round trip through the transport alone (a tiny body
//!   posted, a small JSON answer): what any adapter pays for HTTP; the rest is ours.
//!
//! Run: `cargo bench --bench llm --features llm`

use std::sync::Arc;
use std::time::Duration;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use george::llm::anthropic::AnthropicProvider;
use george::llm::gemini::GeminiProvider;
use george::llm::openai::OpenAiProvider;
use george::llm::replay::{ReplayServer, Reply};
use george::llm::{ApiKey, ProviderConfig, ReqwestTransport};
use george::provider::{AssistantMessage, ChatRequest, Message, Provider, ToolCall};
use george::tool::ToolDefinition;
use serde_json::{Value, json};

const CALLS: usize = 20;
const PIECES: usize = 50;

fn sse(events: &[(Option<&str>, Value)]) -> String {
    let mut out = String::new();
    for (name, data) in events {
        if let Some(n) = name {
            out.push_str(&format!("event: {n}\n"));
        }
        out.push_str(&format!("data: {data}\n\n"));
    }
    out
}

fn pieces(i: usize) -> Vec<String> {
    let args = json!({"value": format!("{i}-{}", "x".repeat(400))}).to_string();
    let n = args.len().div_ceil(PIECES);
    args.as_bytes()
        .chunks(n)
        .map(|c| String::from_utf8_lossy(c).into_owned())
        .collect()
}

fn openai_stream() -> String {
    let mut ev = vec![];
    for i in 0..CALLS {
        ev.push((None, json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": null, "delta": {"role": "assistant", "tool_calls": [
                {"index": i, "id": format!("call_{i}"), "type": "function", "function": {"name": format!("tool_{i}"), "arguments": ""}}]}}]})));
        for p in pieces(i) {
            ev.push((
                None,
                json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
                "choices": [{"index": 0, "finish_reason": null, "delta": {"tool_calls": [
                    {"index": i, "function": {"arguments": p}}]}}]}),
            ));
        }
    }
    ev.push((
        None,
        json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini",
        "choices": [{"index": 0, "finish_reason": "tool_calls", "delta": {}}]}),
    ));
    ev.push((
        None,
        json!({"id": "c", "object": "chat.completion.chunk", "model": "gpt-4o-mini", "choices": [],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 3000, "total_tokens": 4000}}),
    ));
    let mut s = sse(&ev);
    s.push_str("data: [DONE]\n\n");
    s
}

fn anthropic_stream() -> String {
    let mut ev = vec![(
        Some("message_start"),
        json!({"type": "message_start", "message": {
        "id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5", "content": [],
        "stop_reason": null, "usage": {"input_tokens": 1000, "output_tokens": 1}}}),
    )];
    for i in 0..CALLS {
        ev.push((Some("content_block_start"), json!({"type": "content_block_start", "index": i,
            "content_block": {"type": "tool_use", "id": format!("toolu_{i}"), "name": format!("tool_{i}"), "input": {}}})));
        for p in pieces(i) {
            ev.push((
                Some("content_block_delta"),
                json!({"type": "content_block_delta", "index": i,
                "delta": {"type": "input_json_delta", "partial_json": p}}),
            ));
        }
        ev.push((
            Some("content_block_stop"),
            json!({"type": "content_block_stop", "index": i}),
        ));
    }
    ev.push((Some("message_delta"), json!({"type": "message_delta",
        "delta": {"stop_reason": "tool_use", "stop_sequence": null}, "usage": {"output_tokens": 3000}})));
    ev.push((Some("message_stop"), json!({"type": "message_stop"})));
    sse(&ev)
}

fn gemini_stream() -> String {
    let mut ev = vec![];
    for i in 0..CALLS * PIECES {
        ev.push((
            None,
            json!({"candidates": [{"index": 0, "content": {"role": "model",
            "parts": [{"text": format!("piece {i} of the answer. ")}]}}]}),
        ));
    }
    let calls: Vec<Value> = (0..CALLS)
        .map(|i| json!({"functionCall": {"name": format!("tool_{i}"), "args": {"value": "x".repeat(400)}}}))
        .collect();
    ev.push((None, json!({"candidates": [{"index": 0, "finishReason": "STOP",
        "content": {"role": "model", "parts": calls}}],
        "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 3000, "totalTokenCount": 4000}})));
    sse(&ev)
}

fn blocking(provider: &str) -> String {
    match provider {
        "openai" => json!({"id": "c", "object": "chat.completion", "model": "gpt-4o-mini",
            "choices": [{"index": 0, "finish_reason": "tool_calls", "message": {"role": "assistant", "content": null,
                "tool_calls": [{"id": "call_1", "type": "function", "function": {"name": "tool_1", "arguments": "{\"value\":\"x\"}"}}]}}],
            "usage": {"prompt_tokens": 1000, "completion_tokens": 20, "total_tokens": 1020}}),
        "anthropic" => json!({"id": "msg_1", "type": "message", "role": "assistant", "model": "claude-sonnet-4-5",
            "content": [{"type": "tool_use", "id": "toolu_1", "name": "tool_1", "input": {"value": "x"}}],
            "stop_reason": "tool_use", "usage": {"input_tokens": 1000, "output_tokens": 20}}),
        _ => json!({"candidates": [{"index": 0, "finishReason": "STOP", "content": {"role": "model",
                "parts": [{"functionCall": {"name": "tool_1", "args": {"value": "x"}}}]}}],
            "usageMetadata": {"promptTokenCount": 1000, "candidatesTokenCount": 20, "totalTokenCount": 1020}}),
    }
    .to_string()
}

fn tools() -> Vec<ToolDefinition> {
    (0..20)
        .map(|i| {
            ToolDefinition::new(
                format!("tool_{i}"),
                format!("Tool number {i}: does one thing well."),
                json!({"type": "object", "properties": {
                "value": {"type": "string", "description": "what to do"},
                "count": {"type": "integer", "minimum": 0}}, "required": ["value"]}),
            )
        })
        .collect()
}

fn small_request(model: &str) -> ChatRequest {
    ChatRequest::new(
        model,
        "You are a careful operations agent.",
        vec![Message::User {
            content: "Check the deployment.".into(),
        }],
    )
    .with_tools(tools()[..2].to_vec())
}

fn large_request(model: &str) -> ChatRequest {
    let mut messages = vec![Message::User {
        content: "Right-size the service. ".repeat(40),
    }];
    for i in 0..30 {
        messages.push(Message::Assistant(AssistantMessage {
            content: Some("Looking at it.".into()),
            tool_calls: vec![ToolCall {
                id: format!("call_{i}"),
                name: "tool_1".into(),
                arguments: json!({"value": format!("file-{i}.yaml")}),
                provider_metadata: None,
            }],
        }));
        messages.push(Message::Tool {
            tool_call_id: format!("call_{i}"),
            name: "tool_1".into(),
            content: "replicaCount: 5\nresources: {}\n".repeat(20),
            is_error: false,
        });
    }
    ChatRequest::new(model, "You are a careful operations agent.", messages).with_tools(tools())
}

struct Target {
    name: &'static str,
    model: &'static str,
    path: &'static str,
    stream: String,
}

fn provider(t: &Target, base: &str, stream: bool) -> Box<dyn Provider> {
    let transport = Arc::new(ReqwestTransport::new(Duration::from_secs(5)).expect("client"));
    let config = ProviderConfig::new(format!("{base}{}", t.path), transport)
        .api_key(ApiKey::new("bench"))
        .stream(stream);
    match t.name {
        "openai" => Box::new(OpenAiProvider::new(config)),
        "anthropic" => Box::new(AnthropicProvider::new(config)),
        _ => Box::new(GeminiProvider::new(config)),
    }
}

fn llm(c: &mut Criterion) {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let targets = [
        Target {
            name: "openai",
            model: "gpt-4o-mini",
            path: "/v1",
            stream: openai_stream(),
        },
        Target {
            name: "anthropic",
            model: "claude-sonnet-4-5",
            path: "",
            stream: anthropic_stream(),
        },
        Target {
            name: "gemini",
            model: "gemini-2.5-flash",
            path: "/v1beta",
            stream: gemini_stream(),
        },
    ];
    let mut g = c.benchmark_group("llm");
    g.sample_size(30);
    g.measurement_time(Duration::from_secs(4));
    for t in &targets {
        let (blocking_server, stream_server) = rt.block_on(async {
            (
                ReplayServer::start_repeating(Reply::json(200, blocking(t.name))).await,
                ReplayServer::start_repeating(Reply {
                    status: 200,
                    headers: vec![("content-type".into(), "text/event-stream".into())],
                    body: t.stream.clone().into_bytes(),
                    ..Reply::default()
                })
                .await,
            )
        });
        let p = provider(t, blocking_server.base_url(), false);
        g.throughput(Throughput::Elements(1));
        g.bench_function(format!("{}/blocking", t.name), |b| {
            b.to_async(&rt)
                .iter(|| async { p.complete(small_request(t.model)).await.expect("call") })
        });
        let req = large_request(t.model);
        g.bench_function(format!("{}/large_request", t.name), |b| {
            b.to_async(&rt)
                .iter(|| async { p.complete(req.clone()).await.expect("call") })
        });
        let s = provider(t, stream_server.base_url(), true);
        g.throughput(Throughput::Elements((CALLS * PIECES) as u64));
        g.bench_function(format!("{}/stream_1000_deltas", t.name), |b| {
            b.to_async(&rt).iter(|| async {
                let r = s.complete(small_request(t.model)).await.expect("call");
                assert_eq!(r.message.tool_calls.len(), CALLS);
                r
            })
        });
    }
    let floor = rt.block_on(ReplayServer::start_repeating(Reply::json(
        200,
        blocking("openai"),
    )));
    let client = reqwest_client();
    let url = format!("{}/v1/chat/completions", floor.base_url());
    g.throughput(Throughput::Elements(1));
    g.bench_function("http_floor", |b| {
        b.to_async(&rt).iter(|| async {
            use futures_like::read_all;
            read_all(&client, &url).await
        })
    });
    g.finish();
}

fn reqwest_client() -> Arc<ReqwestTransport> {
    Arc::new(ReqwestTransport::new(Duration::from_secs(5)).expect("client"))
}

mod futures_like {
    use george::llm::{HttpRequest, HttpTransport, ReqwestTransport};

    /// One POST and the whole body, through the same transport the adapters use.
    pub async fn read_all(t: &ReqwestTransport, url: &str) -> usize {
        let r = t
            .send(HttpRequest::post_json(url, b"{}".to_vec()))
            .await
            .expect("send");
        r.bytes(1 << 20).await.expect("body").len()
    }
}

criterion_group!(benches, llm);
criterion_main!(benches);
