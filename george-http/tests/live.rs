//! Live updates over real HTTP: a job's transitions arrive in order, a reconnect with
//! `Last-Event-ID` replays what was missed, and an id the server cannot resume from
//! gets a snapshot of the current state.

mod support;

use futures::StreamExt;
use serde_json::json;
use support::sse::{Events, connect, data, next};
use support::{ALICE, LIMIT, READER, Server, plan};

/// Events until one of `job` has `status`: (the job's statuses in order, the last id).
async fn statuses_until(events: &mut Events, job: &str, status: &str) -> (Vec<String>, String) {
    let mut seen = Vec::new();
    loop {
        let e = next(events).await;
        if e.event == "job" && data(&e)["job"] == job {
            let s = data(&e)["status"].as_str().unwrap_or_default().to_string();
            seen.push(s.clone());
            if s == status {
                return (seen, e.id);
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn transitions_arrive_in_order_and_a_reconnect_resumes_where_it_left() {
    let mut s = Server::start().await;
    let first = s.next_open().await;
    let mut events = connect(&s, "", None).await;
    let ready = next(&mut events).await;
    assert_eq!(ready.event, "ready");
    assert_eq!(data(&ready), json!({"resumed": false, "snapshot_jobs": 0}));
    let epoch = ready.id.split('-').next().expect("epoch").to_string();

    // Reject: the step plans again and waits again.
    s.provider.expect_call("plan 2", plan("c2", "second"));
    let path = format!("/api/v1/approvals/{}/reject", first.id);
    let (st, _) = s
        .post(&path, Some(ALICE), json!({"reason": "smaller"}))
        .await;
    assert_eq!(st, 200);
    let (seen, last_id) = statuses_until(&mut events, "gated", "awaiting_approval").await;
    assert_eq!(seen, ["running", "awaiting_approval"]);
    assert!(last_id.starts_with(&format!("{epoch}-")), "{last_id}");

    // Disconnect; the job moves on meanwhile.
    drop(events);
    let second = s.next_open().await;
    let path = format!("/api/v1/approvals/{}/approve", second.id);
    let (st, _) = s.post(&path, Some(ALICE), json!({})).await;
    assert_eq!(st, 200);
    s.engine
        .wait_finished("gated", LIMIT)
        .await
        .expect("finished");

    // Reconnect with the last id: exactly the missed transitions, in order.
    let mut events = connect(&s, "", Some(&last_id)).await;
    let (seen, _) = statuses_until(&mut events, "gated", "succeeded").await;
    assert_eq!(seen, ["running", "succeeded"]);

    // An id from another server (or too old): a snapshot of the current state, then ready.
    let mut events = connect(&s, "", Some("0badcafe-3")).await;
    let mut snapshot = Vec::new();
    let ready = loop {
        let e = next(&mut events).await;
        if e.event == "ready" {
            break e;
        }
        assert_eq!(data(&e)["snapshot"], true);
        snapshot.push((data(&e)["job"].clone(), data(&e)["status"].clone()));
    };
    assert_eq!(
        snapshot,
        [
            (json!("failing"), json!("failed")),
            (json!("gated"), json!("succeeded"))
        ]
    );
    assert_eq!(data(&ready), json!({"resumed": false, "snapshot_jobs": 2}));
    assert!(ready.id.starts_with(&format!("{epoch}-")));

    // A fresh stream may ask for a snapshot too.
    let mut events = connect(&s, "?snapshot=true", None).await;
    let e = next(&mut events).await;
    assert_eq!(
        (e.event.as_str(), data(&e)["job"].clone()),
        ("job", json!("failing"))
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_resumed_stream_carries_on_live() {
    let mut s = Server::start().await;
    let req = s.next_open().await;
    let mut events = connect(&s, "", None).await;
    let ready = next(&mut events).await;
    drop(events);
    // Nothing happened since: the resume replays nothing and says so.
    let mut events = connect(&s, "", Some(&ready.id)).await;
    let again = next(&mut events).await;
    assert_eq!(again.event, "ready");
    assert_eq!(data(&again), json!({"resumed": true, "snapshot_jobs": 0}));
    assert_eq!(again.id, ready.id);
    let path = format!("/api/v1/approvals/{}/approve", req.id);
    let (st, _) = s.post(&path, Some(ALICE), json!({})).await;
    assert_eq!(st, 200);
    let (seen, _) = statuses_until(&mut events, "gated", "succeeded").await;
    assert_eq!(seen, ["running", "succeeded"]);
    let (st, p) = s.get("/api/v1/stream?since=1", Some(READER)).await;
    assert_eq!(
        (st, p["type"].as_str()),
        (400, Some("https://george.dev/problems/invalid-input"))
    );
    s.shutdown().await;
}

async fn follow(s: &Server, job: &str, last_id: Option<&str>) -> Events {
    support::sse::open(s, &format!("/api/v1/jobs/{job}/events/stream"), last_id).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_jobs_log_is_followed_live_resumed_exactly_and_ends_with_the_job() {
    let mut s = Server::start().await;
    let req = s.next_open().await;
    let mut log = follow(&s, "gated", None).await;
    let mut seqs = Vec::new();
    let mut actions = Vec::new();
    // Everything so far, up to the request.
    while !actions.iter().any(|a| a == "approval.requested") {
        let e = next(&mut log).await;
        assert_eq!(e.event, "event");
        assert_eq!(e.id, data(&e)["seq"].to_string());
        seqs.push(data(&e)["seq"].as_u64().expect("seq"));
        actions.push(data(&e)["action"].as_str().unwrap_or_default().to_string());
    }
    assert_eq!(seqs, (1..=seqs.len() as u64).collect::<Vec<_>>());
    assert_eq!(actions[0], "job.created");
    let resume_at = seqs[seqs.len() - 2].to_string();
    drop(log);

    // Resumed from the next-to-last entry: the last one again, then the decision live.
    let mut log = follow(&s, "gated", Some(&resume_at)).await;
    let e = next(&mut log).await;
    assert_eq!(data(&e)["seq"].as_u64(), seqs.last().copied());
    let path = format!("/api/v1/approvals/{}/approve", req.id);
    let (st, _) = s.post(&path, Some(ALICE), json!({"note": "go"})).await;
    assert_eq!(st, 200);
    let mut last = seqs.last().copied().unwrap_or_default();
    let mut approved_by = None;
    let end = loop {
        let e = next(&mut log).await;
        if e.event == "end" {
            break data(&e);
        }
        let d = data(&e);
        assert_eq!(d["seq"].as_u64(), Some(last + 1), "{d}");
        last += 1;
        if d["action"] == "approval.approved" {
            approved_by = d["actor"].as_str().map(str::to_string);
        }
    };
    assert_eq!(end, json!({"status": "succeeded"}));
    assert_eq!(approved_by.as_deref(), Some("human:alice"));
    assert!(
        tokio::time::timeout(LIMIT, log.next())
            .await
            .expect("closed")
            .is_none()
    );

    let (st, _) = s.get("/api/v1/jobs/nope/events/stream", Some(READER)).await;
    assert_eq!(st, 404);
    let bad = s
        .http
        .get(s.url("/api/v1/jobs/gated/events/stream"))
        .bearer_auth(READER)
        .header("last-event-id", "e-1");
    let (st, _) = support::answer(bad.send().await.expect("sent")).await;
    assert_eq!(st, 400);
    s.shutdown().await;
}
