//! `george serve` with `[notify]` (and, built with `--features otel`, `[telemetry]`), as a
//! process: a loopback webhook gets the approval request as signed JSON with a link to
//! it; after the approval, the job succeeds; on SIGTERM the traces of its attempts reach
//! a loopback OTLP receiver.

use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

mod common;

use axum::Router;
use axum::body::Bytes;
use axum::http::HeaderMap;
use axum::routing::post;
use common::{Server, git, plan_reply, sha256_hex, write};
use george_http::notify::{SIGNATURE_HEADER, signature};
use george_llm::replay::{ReplayServer, Reply};
use serde_json::Value;

const ALICE: &str = "alice-token-0123456789";
const SECRET: &str = "webhook-secret-42";

type Posts = Arc<Mutex<Vec<(HeaderMap, Bytes)>>>;

fn plan() -> Reply {
    plan_reply(1, "echo once", "change")
}

/// A loopback server keeping the posts to `path`.
async fn receiver(path: &str) -> (Posts, String) {
    let posts = Posts::default();
    let keep = posts.clone();
    let app = Router::new().route(
        path,
        post(move |h: HeaderMap, b: Bytes| {
            let keep = keep.clone();
            async move { keep.lock().unwrap().push((h, b)) }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    (posts, url)
}

fn setup(root: &Path, model_url: &str, hook_url: &str, otlp_url: &str) {
    let ops = root.join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    git(&ops, &["init", "-q", "-b", "main"]);
    write(
        &ops,
        "agent-specs/planner.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: planner}\nspec:\n  provider: fake\n  model: m\n  system_prompt: You plan.\n  tools: [run_command]\n",
    );
    write(
        &ops,
        "task-templates/t.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: plan, agent: planner, instructions: Plan., approval: {required: true}}\n    - {id: execute, depends_on: [plan], execute_approved: plan}\n",
    );
    write(
        &ops,
        "jobs/j.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n",
    );
    git(&ops, &["add", "-A"]);
    git(&ops, &["commit", "-q", "-m", "order j"]);
    let providers =
        format!("providers:\n  - name: fake\n    kind: openai\n    base_url: {model_url}\n");
    write(root, "providers.yaml", &providers);
    let tokens = format!(
        "[tokens.{}]\nuser = \"alice\"\nroles = [\"decide\"]\n",
        sha256_hex(ALICE)
    );
    write(root, "tokens.toml", &tokens);
    let mut config = format!(
        "[source]\npath = \"ops\"\npoll_interval_ms = 200\n\n[store]\nsqlite = \"george.db\"\n\n\
         [providers]\nprofiles = \"providers.yaml\"\nstream = false\n\n[commands]\nprograms = [\"echo\"]\n\n\
         [http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n\n\
         [notify]\nwebhook_url = \"{hook_url}/hook\"\nformat = \"json\"\nsecret_env = \"TEST_HOOK_SECRET\"\n\
         base_url = \"https://george.example/api/v1\"\n"
    );
    if cfg!(feature = "otel") {
        config.push_str(&format!(
            "\n[telemetry]\nendpoint = \"{otlp_url}\"\nservice_name = \"george-e2e\"\n"
        ));
    }
    write(root, "george.toml", &config);
}

fn george(url: &str, args: &[&str]) -> (i32, String) {
    let (code, out, err) = common::george(url, ALICE, args);
    (code, out + &err)
}

async fn until<T>(what: &str, mut f: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_webhook_gets_the_signed_request_and_traces_reach_the_collector() {
    let model = ReplayServer::start(vec![plan()]).await;
    let (hook, hook_url) = receiver("/hook").await;
    let (otlp, otlp_url) = receiver("/v1/traces").await;
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), model.base_url(), &hook_url, &otlp_url);
    let (server, url) = Server::start(
        &dir.path().join("george.toml"),
        &[("TEST_HOOK_SECRET", SECRET)],
    );

    let (headers, body) = until("the webhook's post", || {
        hook.lock().unwrap().first().cloned()
    })
    .await;
    assert_eq!(
        headers[SIGNATURE_HEADER].to_str().unwrap(),
        signature(SECRET.as_bytes(), &body)
    );
    let v: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!(v["event"], "approval_requested");
    assert_eq!(v["request"]["job"], "j");
    assert_eq!(v["request"]["plan"]["summary"], "echo once");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(
        v["url"],
        format!("https://george.example/api/v1/approvals/{id}").as_str()
    );

    let (code, out) = george(&url, &["approve", &id]);
    assert_eq!(code, 0, "{out}");
    let url2 = url.clone();
    until("the job's success", move || {
        let (_, out) = george(&url2, &["describe", "job", "j", "-o", "json"]);
        let v: Value = serde_json::from_str(&out).ok()?;
        (v["status"] == "succeeded").then_some(())
    })
    .await;
    server.stop();
    assert_eq!(hook.lock().unwrap().len(), 1, "one request, one post");

    if cfg!(feature = "otel") {
        // Exported on SIGTERM at the latest: the protobuf bodies name the spans.
        let posts = otlp.lock().unwrap().clone();
        assert!(!posts.is_empty(), "no OTLP export");
        let all: Vec<u8> = posts.iter().flat_map(|(_, b)| b.to_vec()).collect();
        let has = |s: &str| all.windows(s.len()).any(|w| w == s.as_bytes());
        for name in [
            "step.attempt",
            "llm.call",
            "tool.call",
            "store.commit",
            "george-e2e",
        ] {
            assert!(has(name), "{name} not exported");
        }
        assert!(
            posts
                .iter()
                .all(|(h, _)| h["content-type"] == "application/x-protobuf")
        );
    } else {
        assert!(otlp.lock().unwrap().is_empty());
    }
}

/// A configuration error names its section: both `webhook_url` and `webhook_url_env`, a
/// missing variable, and (without the `otel` feature) a `[telemetry]` section.
#[test]
fn notify_and_telemetry_misconfigurations_are_refused() {
    let base = "[source]\npath = \"ops\"\n\n[store]\nsqlite = \"george.db\"\n\n\
                [http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n";
    let mut cases = vec![
        (
            "[notify]\nwebhook_url = \"http://127.0.0.1:9/x\"\nwebhook_url_env = \"U\"\n",
            "exactly one of `webhook_url` and `webhook_url_env`",
        ),
        (
            "[notify]\nwebhook_url_env = \"GEORGE_TEST_UNSET_HOOK_URL\"\n",
            "variable GEORGE_TEST_UNSET_HOOK_URL is not set",
        ),
        (
            "[notify]\nwebhook_url = \"ftp://x/y\"\n",
            "notify.webhook_url",
        ),
        (
            "[notify]\nwebhook_url = \"http://x/y\"\nformat = \"xml\"\n",
            "george.toml:13:10: unknown variant `xml`",
        ),
    ];
    if cfg!(not(feature = "otel")) {
        cases.push(("[telemetry]\n", "built without the `otel` feature"));
    }
    for (section, want) in cases {
        let dir = tempfile::tempdir().unwrap();
        write(dir.path(), "george.toml", &format!("{base}\n{section}"));
        let out = Command::new(env!("CARGO_BIN_EXE_george"))
            .args(["serve", "--config"])
            .arg(dir.path().join("george.toml"))
            .env_remove("GEORGE_TEST_UNSET_HOOK_URL")
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&out.stderr);
        assert_ne!(out.status.code(), Some(0), "{section}");
        assert!(err.contains(want), "{section}: {err}");
    }
}
