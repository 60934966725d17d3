//! `george serve` on a cluster (`[kubernetes]`, `source.kubernetes = true`): the engine reads
//! its TaskTemplates and Jobs as CRs from a namespace of the real API server, runs them,
//! and projects their status into the Job CRs; a Job created while it runs is picked up.
//! Skipped loudly without `GEORGE_TEST_K8S_BIN` (`scripts/k8s-testenv.sh`, as `.ci/run`
//! sets it).

mod common;

use std::time::{Duration, Instant};

use common::{Server, wait_status, write};
use george_k8s::crd;
use george_k8s::source::SourceKind;
use george_k8s::testenv::TestNamespace;
use kube::api::{Api, DynamicObject, PostParams};
use serde_json::{Value, json};

const TOKEN: &str = "alice-token-0123456789";

async fn create(ns: &TestNamespace, kind: SourceKind, name: &str, spec: Value) {
    let api: Api<DynamicObject> =
        Api::namespaced_with(ns.client(), ns.name(), &kind.api_resource());
    let mut obj = DynamicObject::new(name, &kind.api_resource()).within(ns.name());
    obj.data = json!({ "spec": spec });
    api.create(&PostParams::default(), &obj).await.unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_reads_crs_and_writes_their_status() {
    let env = george_k8s::testenv_or_skip!("serve_reads_crs_and_writes_their_status");
    crd::install(env.client(), Duration::from_secs(30))
        .await
        .unwrap();
    let ns = env.namespace("serve-k8s").await.unwrap();
    let quick = json!({"steps": [{"id": "run", "command": {"program": "true"}}]});
    create(&ns, SourceKind::TaskTemplate, "quick", quick).await;
    create(&ns, SourceKind::Job, "first", json!({"template": "quick"})).await;

    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    common::alice_decides(root, TOKEN);
    write(
        root,
        "george.toml",
        &format!(
            "[source]\nkubernetes = true\n\n[store]\nsqlite = \"george.db\"\n\n\
             [commands]\nprograms = [\"true\"]\n\n\
             [kubernetes]\nnamespace = \"{}\"\nstatus_resync_ms = 200\n\n\
             [http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n",
            ns.name()
        ),
    );
    let kubeconfig = env.kubeconfig_path().to_string_lossy().into_owned();
    let (server, url) = Server::start(&root.join("george.toml"), &[("KUBECONFIG", &kubeconfig)]);
    let u = url.clone();
    tokio::task::spawn_blocking(move || wait_status(&u, TOKEN, "first", "succeeded"))
        .await
        .unwrap();
    // A Job created while the engine runs: the watcher, not a poll, brings it.
    create(&ns, SourceKind::Job, "second", json!({"template": "quick"})).await;
    let u = url.clone();
    tokio::task::spawn_blocking(move || wait_status(&u, TOKEN, "second", "succeeded"))
        .await
        .unwrap();
    // The status on the cluster, written by the engine's projector.
    let jobs: Api<crd::Job> = ns.api();
    let deadline = Instant::now() + Duration::from_secs(30);
    for name in ["first", "second"] {
        loop {
            let cr = jobs.get(name).await.unwrap();
            let status = cr.status.as_ref();
            if status.and_then(|s| s.phase) == Some(crd::Phase::Succeeded) {
                assert_eq!(status.and_then(|s| s.observed_generation), Some(1));
                break;
            }
            assert!(Instant::now() < deadline, "{name}: {:?}", cr.status);
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    server.stop();
}
