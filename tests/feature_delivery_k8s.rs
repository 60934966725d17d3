//! `examples/feature_delivery_k8s.rs` against a real kube-apiserver and
//! kube-controller-manager: the developer's commit sticks the Deployment's rollout at 4/5
//! (the new pod crashes: `KeyError: 'DB_HOST'`), the detector and the sysadmin read that
//! from the API server, the chart fix rolls out revision 3, and both jobs end `Succeeded`.
//! Skipped loudly without `GEORGE_TEST_K8S_BIN`.

#[path = "../examples/support/mod.rs"]
mod support;

#[path = "../examples/support/feature.rs"]
mod feature;

#[path = "../examples/support/feature_k8s.rs"]
mod feature_k8s;

use std::time::Duration;

use george::k8s::testenv_or_skip;
use george::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_chart_fix_rolls_out_on_a_real_api_server_and_resolves_both_jobs() {
    let env =
        testenv_or_skip!("the_chart_fix_rolls_out_on_a_real_api_server_and_resolves_both_jobs");
    let ns = env.namespace("feature-delivery").await.expect("namespace");
    let dir = tempfile::tempdir().expect("tempdir");
    let s = feature_k8s::setup(dir.path());
    let (engine, report) = feature_k8s::run(&s, ns.client(), ns.name(), Duration::from_secs(180))
        .await
        .expect("the event runs");
    let calls = report.agents.calls();
    assert!(
        report.agents.failures().is_empty(),
        "{:#?}\n{calls:#?}",
        report.agents.failures()
    );
    assert_eq!(report.feature, JobStatus::Succeeded, "{calls:#?}");
    assert_eq!(report.incident, JobStatus::Succeeded, "{calls:#?}");
    assert_eq!(report.watch, JobStatus::Succeeded, "{calls:#?}");
    let incident = engine
        .job(feature::INCIDENT)
        .await
        .unwrap()
        .expect("ordered");
    let by = incident.resolved_by.as_ref().expect("resolved");
    assert_eq!(
        (by.job.as_str(), by.step.as_str()),
        (feature::FEATURE, "fix")
    );

    // The agents read the cluster: the rollout (watch, verify, confirm) and the pods.
    for (step, tool) in [
        ("watch", "k8s_rollout_status"),
        ("verify", "k8s_rollout_status"),
        ("verify", "k8s_list"),
        ("confirm", "k8s_rollout_status"),
    ] {
        assert!(
            calls
                .iter()
                .any(|c| c.contains(&format!("/{step}#")) && c.ends_with(tool)),
            "{step} never called {tool}: {calls:#?}"
        );
    }

    // The Deployment: revision 3 (the fix), rolled out, 5 ready, the database settings in
    // its pod template.
    let d = feature_k8s::deployment(&ns.client(), ns.name())
        .await
        .expect("the Deployment");
    assert!(feature_k8s::rolled_out(&d), "{:?}", d.status);
    assert_eq!(d.status.as_ref().and_then(|s| s.ready_replicas), Some(5));
    let revision = d.metadata.annotations.as_ref().and_then(|a| {
        a.get("deployment.kubernetes.io/revision")
            .map(String::as_str)
    });
    assert_eq!(revision, Some("3"));
    let pod = d
        .spec
        .as_ref()
        .and_then(|s| s.template.spec.as_ref())
        .expect("pod spec");
    let env: Vec<&str> = pod.containers[0]
        .env
        .iter()
        .flatten()
        .map(|e| e.name.as_str())
        .collect();
    for var in ["DB_HOST", "DB_PORT", "DB_USER", "DB_NAME", "DB_PASSWORD"] {
        assert!(
            env.contains(&var),
            "{var} not in the template's env {env:?}"
        );
    }
}

/// The sync loop's Deployment from the app repository as committed (no cluster needed):
/// the chart's fields carry through, the code of v55 reads nothing from its environment,
/// and the pods go to no scheduler.
#[test]
fn the_chart_renders_the_deployment_the_sync_loop_applies() {
    let app = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("examples/data/darwin-store");
    let read = |p: &str| std::fs::read_to_string(app.join(p)).expect("the app's files");
    let code = read("app/models.py") + &read("app/main.py");
    let d = feature_k8s::render_deployment(
        &read(feature::CHART),
        &read(feature_k8s::VALUES),
        &code,
        "ns",
    )
    .expect("renders");
    assert_eq!(d["metadata"]["name"], "darwin-store");
    assert_eq!(d["metadata"]["namespace"], "ns");
    assert_eq!(d["spec"]["replicas"], 5);
    assert_eq!(d["spec"]["progressDeadlineSeconds"], 6);
    assert_eq!(d["spec"]["strategy"]["rollingUpdate"]["maxUnavailable"], 1);
    let pod = &d["spec"]["template"];
    assert_eq!(
        pod["spec"]["containers"][0]["image"],
        "registry.example.invalid/darwin-store:55"
    );
    assert!(pod["spec"]["containers"][0].get("env").is_none());
    assert_eq!(
        pod["metadata"]["annotations"][feature_k8s::REQUIRES_ENV],
        ""
    );
    assert_eq!(
        pod["spec"]["schedulerName"],
        feature_k8s::STAND_IN_SCHEDULER
    );

    let needs = "DB = dict(host=os.environ[\"DB_HOST\"], port=os.environ['DB_PORT'])";
    assert_eq!(feature_k8s::required_env(needs), ["DB_HOST", "DB_PORT"]);
    let quoted = "env: [{name: DB_HOST, value: {{ .Values.postgres.host | quote }}}]\n";
    let v = feature_k8s::render_chart(quoted, &read(feature_k8s::VALUES), "r").expect("renders");
    assert_eq!(v["env"][0]["value"], "darwin-store-postgres");
    assert!(feature_k8s::render_chart("x: {{ .Values.nope }}", "a: 1", "r").is_err());
    assert!(feature_k8s::render_chart("x: {{ include \"t\" . }}", "a: 1", "r").is_err());
}
