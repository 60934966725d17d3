//! The trace pipeline against an OTLP/HTTP receiver on loopback: an engine runs a job
//! in-process (in-memory store and Git, a scripted model, `echo` as a command tool) and
//! the receiver decodes the protobuf bodies it gets.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode, header};
use axum::routing::post;
use george::llm::Instrumented;
use george_core::command::CommandToolExecutor;
use george_core::engine::Engine;
use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
use george_core::outcome;
use george_core::provider::ChatResponse;
use george_core::scripted::{ScriptedProvider, tool_call};
use george_core::state::JobStatus;
use george_core::tool::EffectClass;
use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTraceServiceRequest, ExportTraceServiceResponse,
};
use opentelemetry_proto::tonic::common::v1::KeyValue;
use opentelemetry_proto::tonic::common::v1::any_value::Value;
use opentelemetry_proto::tonic::trace::v1::Span;
use prost::Message as _;
use serde_json::json;
use tracing_subscriber::layer::SubscriberExt as _;

use crate::config::Telemetry;

/// What the receiver got: the spans, and the `service.name` of their resources.
#[derive(Debug, Default)]
struct Received {
    spans: Vec<Span>,
    services: Vec<String>,
}

fn text(attrs: &[KeyValue], key: &str) -> Option<String> {
    let v = attrs
        .iter()
        .find(|a| a.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()?;
    Some(match v {
        Value::StringValue(s) => s.clone(),
        Value::IntValue(i) => i.to_string(),
        Value::BoolValue(b) => b.to_string(),
        Value::DoubleValue(d) => d.to_string(),
        other => format!("{other:?}"),
    })
}

/// An OTLP/HTTP receiver on its own thread and runtime (the exporter blocks its caller
/// during a flush), accepting `POST /v1/traces` with `application/x-protobuf` bodies.
fn receiver() -> (SocketAddr, Arc<Mutex<Received>>) {
    let got = Arc::new(Mutex::new(Received::default()));
    let (tx, rx) = std::sync::mpsc::channel();
    let store = got.clone();
    std::thread::spawn(move || {
        let rt = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("runtime");
        rt.block_on(async move {
            let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
                .await
                .expect("bind");
            tx.send(listener.local_addr().expect("addr")).expect("send");
            let handler = move |headers: HeaderMap, body: Bytes| {
                let store = store.clone();
                async move {
                    let protobuf = headers
                        .get(header::CONTENT_TYPE)
                        .is_some_and(|v| v.as_bytes() == b"application/x-protobuf");
                    let Ok(req) = ExportTraceServiceRequest::decode(body) else {
                        return (StatusCode::BAD_REQUEST, Vec::new());
                    };
                    if !protobuf {
                        return (StatusCode::UNSUPPORTED_MEDIA_TYPE, Vec::new());
                    }
                    let mut got = store.lock().expect("lock");
                    for rs in req.resource_spans {
                        if let Some(r) = &rs.resource
                            && let Some(name) = text(&r.attributes, "service.name")
                        {
                            got.services.push(name);
                        }
                        for ss in rs.scope_spans {
                            got.spans.extend(ss.spans);
                        }
                    }
                    let ok = ExportTraceServiceResponse::default().encode_to_vec();
                    (StatusCode::OK, ok)
                }
            };
            let app = Router::new().route("/v1/traces", post(handler));
            axum::serve(listener, app).await.expect("serve");
        });
    });
    (rx.recv().expect("the receiver's address"), got)
}

fn files() -> Vec<(&'static str, String)> {
    let agent = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: a}
spec: {model: m, system_prompt: You look., tools: [run_command]}
";
    let template = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: t}
spec:
  steps:
    - {id: look, agent: a, instructions: Look around.}
";
    let job = "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: j}
spec: {template: t}
";
    vec![
        ("agent-specs/a.yaml", agent.into()),
        ("task-templates/t.yaml", template.into()),
        ("jobs/j.yaml", job.into()),
    ]
}

/// One agent step: a model call that runs `echo`, a model call that reports success.
/// Its attempt arrives as one trace: a root `step.attempt` span whose children are the
/// two `llm.call` spans, the `tool.call` span and the outcome's `store.commit` span.
#[tokio::test]
async fn an_attempt_is_one_trace_with_model_tool_and_store_spans() {
    let (addr, got) = receiver();
    let config = Telemetry {
        endpoint: Some(format!("http://{addr}/")),
        service_name: Some("george-test".into()),
    };
    let provider = super::provider(&config).expect("the trace provider");
    let subscriber = tracing_subscriber::registry().with(super::layer(&provider));
    // This test's runtime runs every task on this thread: a thread-local subscriber
    // sees all of the engine's spans.
    let guard = tracing::subscriber::set_default(subscriber);

    let git = InMemoryGitSource::new();
    git.commit_files("main", files(), "c1");
    let model = ScriptedProvider::new();
    let echo = json!({"program": "echo", "args": ["hi"]});
    model.expect_call("look", tool_call("c1", "run_command", echo));
    model.expect_call(
        "done",
        ChatResponse::tool_calls(vec![outcome::report_success("done", json!({}))]),
    );
    let commands = CommandToolExecutor::new(["echo"]).with_effect("echo", EffectClass::Read);
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider("default", Arc::new(Instrumented::new(model.clone(), false)))
        .commands(commands)
        .build()
        .expect("engine");
    engine.start().await.expect("start");
    let run = engine.spawn();
    let status = engine.wait_finished("j", Duration::from_secs(20)).await;
    run.shutdown().await;
    drop(guard);
    assert_eq!(
        status.ok(),
        Some(JobStatus::Succeeded),
        "{:?}",
        model.failures()
    );
    // Blocking: the batch processor's thread exports to the receiver's thread.
    provider.force_flush().expect("flush");

    let got = got.lock().expect("lock");
    assert!(
        got.services.iter().all(|s| s == "george-test"),
        "{:?}",
        got.services
    );
    let spans = &got.spans;
    let attempts: Vec<&Span> = spans.iter().filter(|s| s.name == "step.attempt").collect();
    assert_eq!(attempts.len(), 1, "{:#?}", got.spans);
    let attempt = attempts[0];
    assert!(
        attempt.parent_span_id.is_empty(),
        "the attempt is the trace's root"
    );
    for (key, want) in [
        ("job", "j"),
        ("step", "look"),
        ("attempt", "1"),
        ("agent", "a"),
        ("mode", "agent"),
        ("outcome", "succeeded"),
    ] {
        assert_eq!(
            text(&attempt.attributes, key).as_deref(),
            Some(want),
            "{key}"
        );
    }
    let children = |n: &str| -> Vec<&Span> {
        spans
            .iter()
            .filter(|s| s.name == n)
            .filter(|s| s.trace_id == attempt.trace_id && s.parent_span_id == attempt.span_id)
            .collect()
    };
    let llm = children("llm.call");
    assert_eq!(llm.len(), 2, "model calls: {:#?}", got.spans);
    assert_eq!(text(&llm[0].attributes, "model").as_deref(), Some("m"));
    let tools = children("tool.call");
    assert_eq!(tools.len(), 1, "tool calls: {:#?}", got.spans);
    assert_eq!(
        text(&tools[0].attributes, "tool").as_deref(),
        Some("run_command")
    );
    assert_eq!(
        text(&tools[0].attributes, "effect").as_deref(),
        Some("read")
    );
    let writes = children("store.commit");
    assert!(
        writes
            .iter()
            .any(|s| text(&s.attributes, "write").as_deref() == Some("outcome")),
        "store writes: {:#?}",
        got.spans
    );
    let _ = provider.shutdown();
}
