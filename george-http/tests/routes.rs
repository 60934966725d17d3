//! Every route of the operator API over real HTTP on loopback.

mod support;

use serde_json::json;
use support::{ALICE, LIMIT, READER, ROOT, Server, plan};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reads_show_jobs_events_transcripts_approvals_and_the_system() {
    let mut s = Server::start().await;
    let req = s.next_open().await;
    s.engine
        .wait_finished("failing", LIMIT)
        .await
        .expect("failing ends");

    // The list, filtered, sorted and paged.
    let (st, list) = s.get("/api/v1/jobs", Some(READER)).await;
    assert_eq!(st, 200, "{list}");
    assert_eq!(list["total"], 2);
    assert_eq!(list["jobs"][0]["name"], "failing");
    assert_eq!(list["jobs"][1]["agents"], json!(["planner"]));
    let (_, waiting) = s
        .get("/api/v1/jobs?status=awaiting_approval", Some(READER))
        .await;
    assert_eq!(waiting["jobs"][0]["name"], "gated");
    assert_eq!(waiting["total"], 1);
    let (_, by_agent) = s
        .get(
            "/api/v1/jobs?agent=planner&template=gated&text=GAT",
            Some(READER),
        )
        .await;
    assert_eq!(by_agent["total"], 1);
    let (_, page1) = s.get("/api/v1/jobs?sort=-name&limit=1", Some(READER)).await;
    assert_eq!(page1["jobs"][0]["name"], "gated");
    let cursor = page1["next_cursor"].as_str().expect("a next page");
    let (_, page2) = s
        .get(
            &format!("/api/v1/jobs?sort=-name&limit=1&cursor={cursor}"),
            Some(READER),
        )
        .await;
    assert_eq!(page2["jobs"][0]["name"], "failing");
    assert!(page2.get("next_cursor").is_none());
    let (_, by_page) = s.get("/api/v1/jobs?limit=1&page=2", Some(READER)).await;
    assert_eq!(by_page["jobs"][0]["name"], "gated");

    // One job.
    let (st, job) = s.get("/api/v1/jobs/gated", Some(READER)).await;
    assert_eq!(st, 200, "{job}");
    assert_eq!(job["status"], "awaiting_approval");
    assert_eq!(job["generation"], 1);
    assert_eq!(job["commit"], s.engine.commit().expect("commit").0);
    assert_eq!(job["steps"][0]["state"], "awaiting_approval");
    assert_eq!(job["steps"][0]["agent"], "planner");
    assert_eq!(job["steps"][0]["approval_request"], req.id);
    assert_eq!(job["steps"][1]["state"], "pending");
    assert!(job["usage"]["cost_usd"].is_number());

    // Its event log, paged.
    let (st, events) = s
        .get("/api/v1/jobs/gated/events?limit=2", Some(READER))
        .await;
    assert_eq!(st, 200, "{events}");
    assert_eq!(events["events"][0]["seq"], 1);
    assert_eq!(events["events"][0]["action"], "job.created");
    assert_eq!(events["next_after"], 2);
    assert_eq!(events["more"], true);
    let (_, rest) = s
        .get("/api/v1/jobs/gated/events?after=2&limit=1000", Some(READER))
        .await;
    assert_eq!(rest["events"][0]["seq"], 3);
    assert_eq!(rest["more"], false);
    assert!(
        rest["events"]
            .as_array()
            .expect("events")
            .iter()
            .any(|e| e["action"] == "approval.requested")
    );

    // A step attempt's transcript.
    let (st, t) = s
        .get(
            "/api/v1/jobs/gated/steps/plan/attempts/1/transcript",
            Some(READER),
        )
        .await;
    assert_eq!(st, 200, "{t}");
    assert_eq!(t["messages"][0]["role"], "user");
    assert!(t["messages"].to_string().contains("submit_plan"));
    let (st, _) = s
        .get(
            "/api/v1/jobs/gated/steps/plan/attempts/7/transcript",
            Some(READER),
        )
        .await;
    assert_eq!(st, 404);

    // Approvals: open, all, one.
    let (_, open) = s.get("/api/v1/approvals", Some(READER)).await;
    assert_eq!(open["approvals"][0]["id"], req.id);
    assert_eq!(open["approvals"][0]["digest"], req.digest);
    let (_, mine) = s
        .get("/api/v1/approvals?status=all&job=gated", Some(READER))
        .await;
    assert_eq!(mine["approvals"].as_array().map(Vec::len), Some(1));
    let (st, one) = s
        .get(&format!("/api/v1/approvals/{}", req.id), Some(READER))
        .await;
    assert_eq!(st, 200, "{one}");
    assert_eq!(one["summary"], "first plan");
    assert_eq!(one["plan"], json!([]));
    assert_eq!(one["rule"]["approvers"], json!(["group:sre"]));
    assert_eq!(one["status"], "open");

    // The catalogue, manifest errors, health.
    let (st, c) = s.get("/api/v1/catalogue", Some(READER)).await;
    assert_eq!(st, 200, "{c}");
    assert_eq!(c["agents"][0]["name"], "planner");
    assert_eq!(c["agents"][0]["model"], "m");
    assert_eq!(c["templates"][1]["name"], "gated");
    assert_eq!(c["templates"][1]["steps"][0]["approval_required"], true);
    assert_eq!(c["templates"][1]["steps"][1]["mode"], "command");
    assert_eq!(c["tools"][0]["name"], "run_command");
    assert_eq!(c["tools"][0]["effect"], "read");
    assert_eq!(c["tools"][0]["effect_fixed"], true);
    let (st, m) = s.get("/api/v1/manifest-errors", Some(READER)).await;
    assert_eq!(st, 200, "{m}");
    assert_eq!(m["errors"][0]["path"], "jobs/broken.yaml");
    assert!(m["errors"][0]["line"].as_u64().is_some_and(|l| l >= 1));
    let (st, h) = s.get("/api/v1/health", Some(READER)).await;
    assert_eq!(st, 200, "{h}");
    assert_eq!(h["engine"], "engine-1");
    assert_eq!(h["in_sync"], true);
    assert_eq!(h["jobs"]["awaiting_approval"], 1);
    assert_eq!(h["jobs"]["failed"], 1);
    assert_eq!(h["open_approvals"], 1);
    assert_eq!(h["manifest_errors"], 1);

    // Not found.
    for path in [
        "/api/v1/jobs/nope",
        "/api/v1/jobs/nope/events",
        "/api/v1/approvals/nope",
    ] {
        let (st, p) = s.get(path, Some(READER)).await;
        assert_eq!(
            (st, p["type"].as_str()),
            (404, Some("https://george.dev/problems/not-found"))
        );
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approve_reject_cancel_and_retry_move_the_jobs() {
    let mut s = Server::start().await;
    let first = s.next_open().await;
    s.provider.expect_call("plan 2", plan("c2", "second plan"));
    let (st, rejected) = s
        .post(
            &format!("/api/v1/approvals/{}/reject", first.id),
            Some(ALICE),
            json!({"reason": "too risky", "digest": first.digest}),
        )
        .await;
    assert_eq!(st, 200, "{rejected}");
    assert_eq!(rejected["status"], "rejected");
    assert_eq!(rejected["decided_by"], "human:alice");
    assert_eq!(rejected["decision_text"], "too risky");
    let second = s.next_open().await;
    let (st, approved) = s
        .post(
            &format!("/api/v1/approvals/{}/approve", second.id),
            Some(ALICE),
            json!({"note": "fine", "digest": second.digest}),
        )
        .await;
    assert_eq!(st, 200, "{approved}");
    assert_eq!(approved["status"], "approved");
    let status = s.engine.wait_finished("gated", LIMIT).await.expect("ends");
    assert_eq!(status, george_core::state::JobStatus::Succeeded);
    let (_, job) = s.get("/api/v1/jobs/gated", Some(READER)).await;
    assert_eq!(job["steps"][0]["rejections"][0]["reason"], "too risky");
    assert_eq!(job["steps"][0]["approved_request"], second.id);
    assert_eq!(job["steps"][0]["outputs"]["digest"], second.digest);

    // Cancel and retry (admin).
    s.engine
        .wait_finished("failing", LIMIT)
        .await
        .expect("fails");
    let (st, p) = s
        .post("/api/v1/jobs/failing/cancel", Some(ROOT), json!({}))
        .await;
    assert_eq!(
        (st, p["type"].as_str()),
        (409, Some("https://george.dev/problems/conflict"))
    );
    let (st, retried) = s
        .post(
            "/api/v1/jobs/failing/retry",
            Some(ROOT),
            json!({"reason": "disk freed"}),
        )
        .await;
    assert_eq!(st, 200, "{retried}");
    assert_eq!(retried["steps"][0]["state"], "pending");
    s.engine
        .wait_for("failing", LIMIT, |st| st.is_finished())
        .await
        .expect("fails again");
    let (_, ev) = s
        .get("/api/v1/jobs/failing/events?limit=1000", Some(READER))
        .await;
    assert!(
        ev.to_string().contains("retried by human:root: disk freed"),
        "{ev}"
    );
    let (st, p) = s
        .post("/api/v1/jobs/gated/retry", Some(ROOT), json!({}))
        .await;
    assert_eq!((st, p["status"].as_u64()), (409, Some(409)));

    // Cancel a waiting job: its request is cancelled.
    s.git.commit_files(
        "main",
        vec![("jobs/more.yaml", support::job("more", "gated", "n: 2"))],
        "c2",
    );
    s.provider.expect_call("plan 3", plan("c3", "third plan"));
    s.engine.sync().await.expect("sync");
    let third = s.next_open().await;
    let req = reqwest::Client::new()
        .post(s.url("/api/v1/jobs/more/cancel"))
        .bearer_auth(ROOT)
        .send()
        .await
        .expect("sent");
    let (st, cancelled) = support::answer(req).await;
    assert_eq!(st, 200, "{cancelled}");
    assert_eq!(cancelled["status"], "cancelled");
    let (_, r) = s
        .get(&format!("/api/v1/approvals/{}", third.id), Some(READER))
        .await;
    assert_eq!(r["status"], "cancelled");
    assert!(
        r["decision_text"]
            .as_str()
            .is_some_and(|t| t.contains("human:root")),
        "{r}"
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bad_requests_are_problem_details() {
    let s = Server::start().await;
    let id = "gated~plan~1~1";
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            s.http.get(s.url("/api/v1/jobs?colour=red")),
            400,
            "invalid-input",
        ),
        (
            s.http.get(s.url("/api/v1/jobs?status=sleeping")),
            400,
            "invalid-input",
        ),
        (
            s.http.get(s.url("/api/v1/jobs?limit=100000")),
            400,
            "invalid-input",
        ),
        (
            s.http.get(s.url("/api/v1/jobs/gated/events?limit=0")),
            400,
            "invalid-input",
        ),
        (
            s.http
                .get(s.url("/api/v1/jobs/gated/steps/plan/attempts/x/transcript")),
            400,
            "invalid-input",
        ),
        (
            s.http.get(s.url("/api/v1/approvals?status=some")),
            400,
            "invalid-input",
        ),
        (
            s.http
                .post(s.url(&format!("/api/v1/approvals/{id}/approve")))
                .header("content-type", "application/json")
                .body(r#"{"note": "ok", "approver": "carol"}"#),
            400,
            "invalid-input",
        ),
        (
            s.http
                .post(s.url(&format!("/api/v1/approvals/{id}/reject")))
                .header("content-type", "application/json")
                .body(r#"{"reason": "  "}"#),
            400,
            "invalid-input",
        ),
        (
            s.http
                .post(s.url(&format!("/api/v1/approvals/{id}/reject")))
                .header("content-type", "application/json")
                .body("{}"),
            400,
            "invalid-input",
        ),
        (
            s.http
                .post(s.url(&format!("/api/v1/approvals/{id}/approve")))
                .header("content-type", "text/plain")
                .body("yes"),
            415,
            "unsupported-media-type",
        ),
        (
            s.http
                .post(s.url(&format!("/api/v1/approvals/{id}/approve")))
                .header("content-type", "application/json")
                .body(format!(r#"{{"note": "{}"}}"#, "x".repeat(100_000))),
            413,
            "payload-too-large",
        ),
        (s.http.get(s.url("/api/v1/nothing")), 404, "no-such-route"),
        (s.http.get(s.url("/api/v2/jobs")), 404, "no-such-route"),
        (
            s.http.delete(s.url("/api/v1/jobs")),
            405,
            "method-not-allowed",
        ),
    ];
    for (req, status, kind) in cases {
        let req = req.bearer_auth(ROOT).build().expect("request");
        let what = format!("{} {}", req.method(), req.url());
        let (st, body) = support::answer(s.http.execute(req).await.expect("sent")).await;
        assert_eq!(st, status, "{what}: {body}");
        assert_eq!(
            body["type"],
            format!("https://george.dev/problems/{kind}"),
            "{what}"
        );
        assert!(
            body["detail"].as_str().is_some_and(|d| !d.is_empty()),
            "{what}"
        );
    }
    s.shutdown().await;
}
