//! Seed 001's feature-delivery event (`examples/feature_delivery.rs`) as a test: both jobs
//! on `service/darwin-store` end `Succeeded`, the incident "resolved by" the feature job's
//! fix, on real Git repositories and SQLite, with each agent's tool results checked.

#[path = "../examples/support/mod.rs"]
mod support;

#[path = "../examples/support/feature.rs"]
mod feature;

use std::time::Duration;

use george::events::EventAction;
use george::prelude::*;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_fix_resolves_the_feature_and_the_incident() {
    let dir = tempfile::tempdir().expect("tempdir");
    let s = feature::setup(dir.path());
    let (engine, report) = feature::run(&s, Duration::from_secs(120))
        .await
        .expect("the event runs");
    assert!(
        report.agents.failures().is_empty(),
        "{:#?}\n{:#?}",
        report.agents.failures(),
        report.agents.calls()
    );
    assert_eq!(
        report.feature,
        JobStatus::Succeeded,
        "{:#?}",
        report.agents.calls()
    );
    assert_eq!(report.incident, JobStatus::Succeeded);
    assert_eq!(report.watch, JobStatus::Succeeded);

    // The incident was ordered by the detector and resolved by the feature job's fix.
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
    assert_eq!(
        incident.ordered_by.as_ref().expect("a child").job,
        feature::WATCH
    );
    for job in [feature::FEATURE, feature::INCIDENT] {
        let events = engine.events(job).await.unwrap();
        assert!(
            events.iter().any(|e| e.action == EventAction::JobResolved),
            "{job}: no job.resolved event"
        );
    }

    // One person decided, once: the plan. The code and the chart fix landed, in order.
    let approvals = engine.approvals(false).await.unwrap();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].job, feature::FEATURE);
    let log = feature::app_log(&s);
    assert!(
        log[0].contains("chart: pass the database settings"),
        "{log:?}"
    );
    assert!(log[1].contains("product images"), "{log:?}");
    assert!(feature::app_file(&s, "helm/templates/deployment.yaml").contains("DB_HOST"));

    // The two sysadmin steps that change the service never held the target at once: the
    // incident's remediation deferred to the fix and was cancelled by the resolution.
    let rec = engine.job(feature::INCIDENT).await.unwrap().unwrap();
    let remediate = rec.step("remediate").expect("step");
    assert_eq!(remediate.state.name(), "cancelled");
}
