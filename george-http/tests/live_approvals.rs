//! Approval requests on the live stream, over real HTTP: opened and decided requests
//! arrive as `approval` events in order, a reconnect with `Last-Event-ID` replays the
//! ones missed, and a snapshot lists the open requests.

mod support;

use serde_json::json;
use support::sse::{Events, connect, data, next};
use support::{ALICE, LIMIT, Server, plan};

/// `approval` events until request `id` has `status`: ((id, status) in order, the
/// event ids in order).
async fn approvals_until(
    events: &mut Events,
    id: &str,
    status: &str,
) -> (Vec<(String, String)>, Vec<String>) {
    let (mut seen, mut ids) = (Vec::new(), Vec::new());
    loop {
        let e = next(events).await;
        if e.event != "approval" {
            continue;
        }
        let d = data(&e);
        assert_eq!(
            (d["job"].as_str(), d["step"].as_str()),
            (Some("gated"), Some("plan"))
        );
        assert_eq!(d["snapshot"], false);
        let got = (
            d["id"].as_str().unwrap_or_default().to_string(),
            d["status"].as_str().unwrap_or_default().to_string(),
        );
        seen.push(got.clone());
        ids.push(e.id.clone());
        if got.0 == id && got.1 == status {
            return (seen, ids);
        }
    }
}

/// The sequence number of an event id `<epoch>-<n>`.
fn seq(id: &str) -> u64 {
    id.split_once('-')
        .and_then(|(_, n)| n.parse().ok())
        .expect("an id <epoch>-<n>")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_opened_and_decided_arrive_in_order_and_resume_after_a_reconnect() {
    let mut s = Server::start().await;
    let first = s.next_open().await;

    // A snapshot lists the open request.
    let mut events = connect(&s, "?snapshot=true", None).await;
    let mut open = Vec::new();
    let ready = loop {
        let e = next(&mut events).await;
        if e.event == "ready" {
            break e;
        }
        assert!(e.id.is_empty(), "snapshot events have no id");
        if e.event == "approval" {
            open.push(data(&e));
        }
    };
    assert_eq!(
        open,
        [
            json!({"id": first.id, "job": "gated", "step": "plan", "status": "open", "snapshot": true})
        ]
    );
    let epoch = ready.id.split('-').next().expect("epoch").to_string();

    // Reject: the request is closed, the step plans again and opens another.
    s.provider.expect_call("plan 2", plan("c2", "second"));
    let path = format!("/api/v1/approvals/{}/reject", first.id);
    let (st, _) = s
        .post(&path, Some(ALICE), json!({"reason": "smaller"}))
        .await;
    assert_eq!(st, 200);
    let rejected = approvals_until(&mut events, &first.id, "rejected").await;
    assert_eq!(rejected.0, [(first.id.clone(), "rejected".to_string())]);
    let second = s.next_open().await;
    let (seen, ids) = approvals_until(&mut events, &second.id, "open").await;
    assert_eq!(seen, [(second.id.clone(), "open".to_string())]);
    assert!(ids[0].starts_with(&format!("{epoch}-")), "{}", ids[0]);
    assert!(seq(&ids[0]) > seq(&rejected.1[0]));

    // Live: approving gives `approved` after `open`.
    let path = format!("/api/v1/approvals/{}/approve", second.id);
    let (st, _) = s.post(&path, Some(ALICE), json!({})).await;
    assert_eq!(st, 200);
    let (seen, approved_ids) = approvals_until(&mut events, &second.id, "approved").await;
    assert_eq!(seen, [(second.id.clone(), "approved".to_string())]);
    assert!(seq(&approved_ids[0]) > seq(&ids[0]));
    drop(events);
    s.engine
        .wait_finished("gated", LIMIT)
        .await
        .expect("finished");

    // Reconnect from the rejection: the missed requests' events again, in order and
    // with the same ids, then `ready` saying it resumed.
    let mut events = connect(&s, "", Some(&rejected.1[0])).await;
    let (seen, replayed) = approvals_until(&mut events, &second.id, "approved").await;
    assert_eq!(
        seen,
        [
            (second.id.clone(), "open".to_string()),
            (second.id.clone(), "approved".to_string())
        ]
    );
    assert_eq!(replayed, [ids[0].clone(), approved_ids[0].clone()]);
    let ready = loop {
        let e = next(&mut events).await;
        if e.event == "ready" {
            break e;
        }
    };
    assert_eq!(data(&ready)["resumed"], true);

    // A snapshot now lists no open request.
    let mut events = connect(&s, "?snapshot=true", None).await;
    loop {
        let e = next(&mut events).await;
        assert_ne!(e.event, "approval", "{}", e.data);
        if e.event == "ready" {
            break;
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_new_generation_cancels_the_open_request_on_the_stream() {
    let mut s = Server::start().await;
    let first = s.next_open().await;
    let mut events = connect(&s, "", None).await;
    assert_eq!(next(&mut events).await.event, "ready");
    // The job's manifest changes: its open request is cancelled, the step plans again.
    s.provider.expect_call("plan 2", plan("c2", "for n=2"));
    s.git.commit_files(
        "main",
        [("jobs/gated.yaml", support::job("gated", "gated", "n: 2"))],
        "n=2",
    );
    s.engine.sync().await.expect("sync");
    let second = s.next_open().await;
    assert_ne!(second.id, first.id);
    let (seen, ids) = approvals_until(&mut events, &second.id, "open").await;
    assert_eq!(
        seen,
        [
            (first.id.clone(), "cancelled".to_string()),
            (second.id.clone(), "open".to_string())
        ]
    );
    assert!(seq(&ids[0]) < seq(&ids[1]));
    s.shutdown().await;
}
