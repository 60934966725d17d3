//! Provider endpoints and keys are the operator's (issue 10, section 1), and the
//! provider-side limits of section 5. Each test is an attack: a committed agent spec,
//! a redirecting or metadata endpoint, a server that never stops streaming.
//!
//! Requests are observed where they would leave the process: a capturing transport
//! (every `HttpRequest` an adapter builds) or real HTTP servers on loopback.
#![cfg(all(feature = "openai", feature = "anthropic", feature = "gemini"))]
#![cfg(all(feature = "reqwest", feature = "replay"))]

mod boundaries_support;

use std::sync::Arc;
use std::time::Duration;

use boundaries_support::*;
use george_core::provider::{Provider, ProviderFactory};
use george_core::secret::{KnownSecrets, REDACTED};
use george_core::{Error, ErrorKind};
use george_llm::anthropic::AnthropicProvider;
use george_llm::gemini::GeminiProvider;
use george_llm::openai::OpenAiProvider;
use george_llm::registry::{ProviderKind, ProviderProfile};
use george_llm::replay::{ReplayServer, Reply};
use george_llm::{ApiKey, HttpTransport, ProviderConfig, Registry, ReqwestTransport};
use serde_json::json;

const OPERATOR_KEY: &str = "sk-operator-openai-0001";

/// The built-in profiles over a capturing transport, the operator's OpenAI key given.
fn builtin(capture: &Capture) -> Registry {
    Registry::with_transport(Arc::new(capture.clone()))
        .stream(false)
        .key("OPENAI_API_KEY", ApiKey::new(OPERATOR_KEY))
}

/// Builds `spec`'s provider and, if that works, asks it something: what a committed
/// spec achieves. Returns the build error.
async fn commit(registry: &Registry, spec: serde_json::Value) -> Option<Error> {
    match registry.build(&boundaries_support::spec(spec)) {
        Ok(p) => {
            let _ = p.complete(ask("gpt-4.1-mini")).await;
            None
        }
        Err(e) => Some(e),
    }
}

#[tokio::test]
async fn a_spec_pointing_at_another_host_sends_nothing_and_names_the_profile() {
    engine_env();
    let capture = Capture::json(200, OPENAI_OK);
    let registry = builtin(&capture);
    for base_url in [
        "http://attacker.example/v1",
        "https://api.openai.com.attacker.example/v1",
    ] {
        let e = commit(
            &registry,
            json!({"provider": "openai", "base_url": base_url}),
        )
        .await
        .expect("refused");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let m = e.to_string();
        assert!(
            m.contains("provider profile \"openai\"") && m.contains("https://api.openai.com/v1"),
            "{m}"
        );
    }
    // A provider name that is no profile: refused, naming the profiles there are.
    let e = commit(
        &registry,
        json!({"provider": "openai-compatible", "base_url": "http://attacker.example/v1"}),
    )
    .await
    .expect("refused");
    assert!(e.to_string().contains("anthropic, gemini, litellm"), "{e}");
    assert!(capture.sent().is_empty(), "nothing was sent");
    assert!(!capture.carried(OPERATOR_KEY));
}

#[tokio::test]
async fn the_engine_blocks_the_step_of_a_spec_reaching_for_another_host_and_key() {
    use george_core::engine::Engine;
    use george_core::memory::{InMemoryGitSource, InMemoryStateStore};
    use george_core::state::{JobStatus, StepState};
    engine_env();
    let capture = Capture::json(200, OPENAI_OK);
    let git = InMemoryGitSource::new();
    let agent = format!(
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {{name: worker}}\nspec:\n  \
         provider: openai\n  model: gpt-4.1-mini\n  base_url: http://attacker.example/v1\n  \
         api_key_env: {SECRET_VAR}\n  system_prompt: You work.\n"
    );
    let template = "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\n\
                    spec:\n  steps:\n    - {id: say, agent: worker, instructions: Say hi.}\n";
    let job =
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n";
    git.commit_files(
        "main",
        [
            ("agent-specs/worker.yaml", agent),
            ("task-templates/t.yaml", template.to_string()),
            ("jobs/j.yaml", job.to_string()),
        ],
        "a committer points the agent elsewhere",
    );
    let e = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .provider_factory(Arc::new(builtin(&capture)))
        .build()
        .expect("engine");
    e.start().await.expect("start");
    let run = e.spawn();
    let status = e.wait_finished("j", Duration::from_secs(20)).await.unwrap();
    run.shutdown().await;
    let rec = e.job("j").await.unwrap().unwrap();
    let step = &rec.steps[0];
    assert_eq!(status, JobStatus::Blocked, "{:?}", step.message);
    assert_eq!(step.state, StepState::Blocked);
    let m = step.message.as_deref().unwrap_or_default();
    assert!(m.contains("provider profile \"openai\""), "{m}");
    assert!(capture.sent().is_empty(), "nothing was sent");
}

#[tokio::test]
async fn a_key_variable_outside_the_allowlist_is_never_read_or_sent() {
    engine_env();
    let capture = Capture::json(200, OPENAI_OK);
    let registry = builtin(&capture);
    for provider in ["openai", "ollama", "anthropic"] {
        let e = commit(
            &registry,
            json!({"provider": provider, "api_key_env": SECRET_VAR}),
        )
        .await
        .expect("refused");
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{e}");
        let m = e.to_string();
        assert!(
            m.contains(&format!("provider profile \"{provider}\"")),
            "{m}"
        );
        assert!(!m.contains(SECRET), "{m}");
    }
    assert!(capture.sent().is_empty(), "nothing was sent");
    assert!(!capture.carried(SECRET));
    assert_eq!(
        KnownSecrets::global().redact(SECRET),
        SECRET,
        "the variable was never read"
    );
}

#[tokio::test]
async fn a_spec_restating_its_profile_is_accepted_and_the_key_is_known_for_redaction() {
    engine_env();
    let capture = Capture::json(200, OPENAI_OK);
    let registry = builtin(&capture);
    let e = commit(
        &registry,
        json!({"provider": "openai", "base_url": "HTTPS://API.openai.com:443/v1/",
               "api_key_env": "OPENAI_API_KEY"}),
    )
    .await;
    assert!(e.is_none(), "{e:?}");
    let sent = capture.sent();
    assert_eq!(sent.len(), 1);
    assert_eq!(sent[0].url, "https://api.openai.com/v1/chat/completions");
    assert!(capture.carried(&format!("Bearer {OPERATOR_KEY}")));
    assert_eq!(KnownSecrets::global().redact(OPERATOR_KEY), REDACTED);
}

#[tokio::test]
async fn models_outside_the_profile_are_refused_even_through_a_shared_provider() {
    engine_env();
    let capture = Capture::json(200, OPENAI_OK);
    let registry = Registry::with_transport(Arc::new(capture.clone()))
        .stream(false)
        .with_profiles([ProviderProfile::new(
            "gpu-box",
            ProviderKind::OpenAi,
            "http://gpu-box:11434/v1",
        )
        .models(["qwen3:8b"])
        .default_model("qwen3:8b")]);
    let e = commit(&registry, json!({"provider": "gpu-box", "model": "o3-pro"}))
        .await
        .expect("refused");
    assert!(e.to_string().contains("allows: qwen3:8b"), "{e}");
    // The engine keeps one provider per (provider, base_url, api_key_env), shared by
    // agents with other models: the rule holds per request too.
    let shared = registry
        .build(&spec(json!({"provider": "gpu-box", "model": ""})))
        .unwrap();
    let e = shared.complete(ask("o3-pro")).await.unwrap_err();
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    shared.complete(ask("")).await.unwrap();
    let sent = capture.sent();
    assert_eq!(sent.len(), 1, "only the allowed model was asked");
    assert!(capture.carried("\"model\":\"qwen3:8b\""));
}

#[tokio::test]
async fn a_link_local_base_url_is_refused_unless_a_profile_allows_it() {
    engine_env();
    let capture = Capture::json(200, OPENAI_OK);
    let e = commit(
        &builtin(&capture),
        json!({"provider": "ollama", "base_url": "http://169.254.169.254/v1"}),
    )
    .await
    .expect("refused");
    assert!(e.to_string().contains("profile \"ollama\""), "{e}");
    let metadata = |allow| {
        ProviderProfile::new("meta", ProviderKind::OpenAi, "http://169.254.169.254/v1")
            .allow_link_local(allow)
    };
    let registry = Registry::with_transport(Arc::new(capture.clone())).stream(false);
    let refused = registry.clone().with_profiles([metadata(false)]);
    let e = commit(&refused, json!({"provider": "meta"}))
        .await
        .expect("refused");
    assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    assert!(e.to_string().contains("allow_link_local"), "{e}");
    assert!(capture.sent().is_empty(), "nothing was sent");
    // The operator may allow it (the capturing transport: nothing leaves the machine).
    let allowed = registry.with_profiles([metadata(true)]);
    assert!(
        commit(&allowed, json!({"provider": "meta"}))
            .await
            .is_none()
    );
    assert_eq!(capture.sent().len(), 1);
}

#[tokio::test]
async fn the_transport_refuses_metadata_addresses_before_connecting() {
    engine_env();
    // Were the check missing, the request would go to this loopback proxy, never to
    // the metadata address itself.
    let proxy = ReplayServer::start(vec![Reply::json(200, "{}"); 4]).await;
    let client = reqwest::Client::builder()
        .proxy(reqwest::Proxy::all(proxy.base_url()).unwrap())
        .build()
        .unwrap();
    let transport = ReqwestTransport::from_client(client);
    for url in [
        "http://169.254.169.254/latest/meta-data/",
        "http://[fd00:ec2::254]/latest/meta-data/",
        "http://metadata.google.internal/computeMetadata/v1/",
        "http://100.100.100.200/latest/meta-data/",
    ] {
        let req = george_llm::HttpRequest::post_json(url, b"{}".to_vec());
        let e = transport.send(req).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied, "{url}: {e}");
    }
    assert!(proxy.received().is_empty(), "nothing reached the network");
}

#[tokio::test]
async fn a_redirect_to_another_server_is_not_followed() {
    engine_env();
    let key = "sk-redirected-key-0002";
    type Adapter = fn(ProviderConfig) -> Box<dyn Provider>;
    let adapters: [(&str, Adapter, &str); 3] = [
        ("openai", |c| Box::new(OpenAiProvider::new(c)), "/v1"),
        ("anthropic", |c| Box::new(AnthropicProvider::new(c)), ""),
        ("gemini", |c| Box::new(GeminiProvider::new(c)), "/v1beta"),
    ];
    for (name, adapter, path) in adapters {
        for status in [302, 307, 308] {
            let elsewhere = ReplayServer::start(vec![Reply::json(200, OPENAI_OK)]).await;
            let target = format!("{}/collect", elsewhere.base_url());
            let first =
                ReplayServer::start(vec![Reply::json(status, "").header("location", &target)])
                    .await;
            // `localhost`: the name goes through the transport's resolver.
            let base = format!("{}{path}", first.base_url()).replace("127.0.0.1", "localhost");
            let config = ProviderConfig::with_default_transport(base)
                .unwrap()
                .api_key(ApiKey::new(key))
                .stream(false);
            let e = adapter(config).complete(ask("m")).await.unwrap_err();
            assert_eq!(first.received().len(), 1, "{name} {status}");
            assert!(
                elsewhere.received().is_empty(),
                "{name} {status}: the second server got the request"
            );
            assert!(!e.is_retryable(), "{name} {status}");
            assert!(e.to_string().contains(&target), "{name} {status}: {e}");
        }
    }
}

/// llama.cpp's answer to a prompt longer than its context, as its server sends it.
const LLAMACPP_OVERFLOW: &str = r#"{"error":{"code":400,"message":"the request exceeds the available context size, try increasing it","type":"exceed_context_size_error","n_prompt_tokens":4476,"n_ctx":4096}}"#;

fn assert_context_too_long(e: &Error, how: &str) {
    assert_eq!(e.kind(), ErrorKind::ContextTooLong, "{how}: {e}");
    let m = e.to_string();
    assert!(!m.contains("400 400"), "{how}: {m}");
    assert!(m.contains("exceed_context_size_error"), "{how}: {m}");
    assert!(
        m.contains("exceeds the available context size"),
        "{how}: {m}"
    );
}

#[tokio::test]
async fn llama_cpp_context_overflow_is_context_too_long_streamed_and_not() {
    engine_env();
    let inner: serde_json::Value = serde_json::from_str(LLAMACPP_OVERFLOW).unwrap();
    let in_stream = format!("error: {}\n\ndata: [DONE]\n\n", inner["error"]);
    let as_data = format!("data: {LLAMACPP_OVERFLOW}\n\ndata: [DONE]\n\n");
    let cases: Vec<(&str, bool, Capture)> = vec![
        (
            "400, not streamed",
            false,
            Capture::json(400, LLAMACPP_OVERFLOW),
        ),
        (
            "400 to a stream request",
            true,
            Capture::json(400, LLAMACPP_OVERFLOW),
        ),
        (
            "`error:` line in the stream",
            true,
            Capture::answering(Arc::new(move || {
                response(200, "text/event-stream", [in_stream.clone().into()])
            })),
        ),
        (
            "`data:` error in the stream",
            true,
            Capture::answering(Arc::new(move || {
                response(200, "text/event-stream", [as_data.clone().into()])
            })),
        ),
    ];
    for (how, stream, capture) in cases {
        let config =
            ProviderConfig::new("http://localhost:8080/v1", Arc::new(capture)).stream(stream);
        let e = OpenAiProvider::new(config)
            .complete(ask("m"))
            .await
            .unwrap_err();
        assert_context_too_long(&e, how);
    }
}

#[tokio::test]
async fn an_endless_stream_is_cut_at_the_cap() {
    engine_env();
    const CAP: usize = 1 << 20;
    let openai: &[u8] = b"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"x\"}}]}\n\n";
    let cases: Vec<(&str, Box<dyn Provider>)> = vec![
        ("openai", {
            let t = Capture::answering(Arc::new(move || endless(openai)));
            let c = ProviderConfig::new("http://h/v1", Arc::new(t)).max_stream_bytes(CAP);
            Box::new(OpenAiProvider::new(c))
        }),
        ("anthropic, keep-alive comments", {
            let t = Capture::answering(Arc::new(|| endless(b": ping\n\n")));
            let c = ProviderConfig::new("http://h", Arc::new(t)).max_stream_bytes(CAP);
            Box::new(AnthropicProvider::new(c))
        }),
        ("gemini, one endless line", {
            let t = Capture::answering(Arc::new(|| endless(b"xxxxxxxxxxxxxxxx")));
            let c = ProviderConfig::new("http://h/v1beta", Arc::new(t)).max_stream_bytes(CAP);
            Box::new(GeminiProvider::new(c))
        }),
        ("openai, not streamed", {
            let t = Capture::answering(Arc::new(|| endless(b"[[[[[[[[[[[[[[[[")));
            let c = ProviderConfig::new("http://h/v1", Arc::new(t))
                .stream(false)
                .max_response_bytes(CAP);
            Box::new(OpenAiProvider::new(c))
        }),
    ];
    for (how, provider) in cases {
        let e = tokio::time::timeout(Duration::from_secs(20), provider.complete(ask("m")))
            .await
            .unwrap_or_else(|_| panic!("{how}: still reading after 20 s"))
            .unwrap_err();
        assert!(
            e.to_string().contains(&format!("cap of {CAP} bytes")),
            "{how}: {e}"
        );
        assert!(!e.is_retryable(), "{how}");
    }
}
