//! The webhook handler over real HTTP on loopback: signatures, tokens, events, limits.
#![cfg(feature = "webhook")]

mod webhook_support;

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use george_core::ErrorKind;
use george_git::webhook::{RefreshMode, WebhookConfig, WebhookSecret, router};
use reqwest::StatusCode;
use serde_json::json;
use webhook_support::*;

#[tokio::test]
async fn github_push_with_good_signature_refreshes_in_background() {
    let (target, count, mut rx) = counting();
    let base = serve(router(config(RefreshMode::Background), target).unwrap()).await;
    let res = signed(&base, "push", push("refs/heads/main")).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let body = json_of(res).await;
    assert_eq!(body["status"], "refresh");
    assert_eq!(body["after"], "1111111111111111111111111111111111111111");
    recv(&mut rx).await;
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn github_rejects_bad_or_missing_signatures() {
    let (target, count, _rx) = counting();
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    let body = push("refs/heads/main");
    let good = WebhookSecret::from(SECRET).github_signature(&body);
    let other = WebhookSecret::from("another secret").github_signature(&body);
    let tampered = {
        let mut b = body.clone();
        b.extend_from_slice(b" ");
        b
    };
    for (label, body, sig) in [
        ("missing", body.clone(), None),
        ("wrong secret", body.clone(), Some(other)),
        ("body changed", tampered, Some(good.clone())),
        ("not hex", body.clone(), Some("sha256=xyz".to_owned())),
        (
            "sha1 scheme",
            body.clone(),
            Some(good.replace("sha256=", "sha1=")),
        ),
        ("truncated", body.clone(), Some(good[..40].to_owned())),
        ("empty", body.clone(), Some(String::new())),
    ] {
        let res = github(&base, "push", body, sig).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{label}");
    }
    // Even a ping must be signed.
    let res = github(&base, "ping", b"{}".to_vec(), None).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn gitlab_token_good_and_bad() {
    let (target, count, _rx) = counting();
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    for token in [
        None,
        Some("wrong"),
        Some("gitlab-token-4"),
        Some("gitlab-token-420"),
    ] {
        let res = gitlab(&base, "Push Hook", push("refs/heads/main"), token).await;
        assert_eq!(res.status(), StatusCode::UNAUTHORIZED, "{token:?}");
    }
    // The GitHub secret is not a GitLab token.
    let res = gitlab(&base, "Push Hook", push("refs/heads/main"), Some(SECRET)).await;
    assert_eq!(res.status(), StatusCode::UNAUTHORIZED);
    assert_eq!(count.load(Ordering::SeqCst), 0);

    let res = gitlab(&base, "Push Hook", push("refs/heads/main"), Some(TOKEN)).await;
    assert_eq!(
        res.status(),
        StatusCode::OK,
        "wait mode answers after the refresh"
    );
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn ping_other_refs_deletions_and_other_events() {
    let (target, count, _rx) = counting();
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    let res = signed(
        &base,
        "ping",
        br#"{"zen":"Keep it logically awesome."}"#.to_vec(),
    )
    .await;
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json_of(res).await["status"], "pong");

    for reference in [
        "refs/heads/dev",
        "refs/heads/main2",
        "refs/tags/main",
        "main",
    ] {
        let res = signed(&base, "push", push(reference)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{reference}");
        let res = gitlab(&base, "Push Hook", push(reference), Some(TOKEN)).await;
        assert_eq!(res.status(), StatusCode::NO_CONTENT, "{reference}");
    }
    let deleted = json!({"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000", "deleted": true});
    let res = signed(&base, "push", deleted.to_string().into_bytes()).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let deleted = json!({"ref": "refs/heads/main", "after": "0000000000000000000000000000000000000000", "checkout_sha": null});
    let res = gitlab(
        &base,
        "Push Hook",
        deleted.to_string().into_bytes(),
        Some(TOKEN),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);

    let res = signed(&base, "issues", push("refs/heads/main")).await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    let res = gitlab(
        &base,
        "Merge Request Hook",
        push("refs/heads/main"),
        Some(TOKEN),
    )
    .await;
    assert_eq!(res.status(), StatusCode::NO_CONTENT);
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unreadable_payloads_are_400() {
    let (target, count, _rx) = counting();
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    for body in [
        &b"{not json"[..],
        b"",
        b"[1, 2]",
        br#"{"ref": 7}"#,
        br#"{"after": "ab"}"#,
    ] {
        let res = signed(&base, "push", body.to_vec()).await;
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
        let res = gitlab(&base, "Push Hook", body.to_vec(), Some(TOKEN)).await;
        assert_eq!(
            res.status(),
            StatusCode::BAD_REQUEST,
            "{}",
            String::from_utf8_lossy(body)
        );
    }
    // A signed request without an event header.
    let body = push("refs/heads/main");
    let sig = WebhookSecret::from(SECRET).github_signature(&body);
    let res = reqwest::Client::new()
        .post(format!("{base}/github"))
        .header("X-Hub-Signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn github_form_encoded_payload() {
    let (target, count, _rx) = counting();
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    let body = b"payload=%7B%22ref%22%3A%22refs%2Fheads%2Fmain%22%2C%22after%22%3A%22abc123%22%7D"
        .to_vec();
    let sig = WebhookSecret::from(SECRET).github_signature(&body);
    let res = reqwest::Client::new()
        .post(format!("{base}/github"))
        .header("X-GitHub-Event", "push")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .header("X-Hub-Signature-256", sig)
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(json_of(res).await["after"], "abc123");
    assert_eq!(count.load(Ordering::SeqCst), 1);
}

#[tokio::test]
async fn oversize_bodies_are_413() {
    let (target, count, _rx) = counting();
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    let big = vec![b' '; (1 << 20) + 1];
    let res = signed(&base, "push", big.clone()).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let res = gitlab(&base, "Push Hook", big, Some(TOKEN)).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);

    // A smaller configured limit; a streamed body (no Content-Length) too.
    let (target, _, _rx) = counting();
    let small = serve(router(config(RefreshMode::Wait).max_body_bytes(100), target).unwrap()).await;
    let res = signed(&small, "push", vec![b' '; 101]).await;
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> = vec![Ok(vec![b' '; 60]), Ok(vec![b' '; 60])];
    let res = reqwest::Client::new()
        .post(format!("{small}/github"))
        .header("X-GitHub-Event", "push")
        .header("X-Hub-Signature-256", "sha256=00")
        .body(reqwest::Body::wrap_stream(futures::stream::iter(chunks)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::PAYLOAD_TOO_LARGE);
    assert_eq!(count.load(Ordering::SeqCst), 0);
}

#[tokio::test]
async fn unconfigured_sender_is_not_mounted_and_bad_configs_fail() {
    let (target, _, _rx) = counting();
    let app: axum::Router =
        router(WebhookConfig::new("main").github_secret(SECRET), target).unwrap();
    let base = serve(app).await;
    let res = gitlab(&base, "Push Hook", push("refs/heads/main"), Some(TOKEN)).await;
    assert_eq!(res.status(), StatusCode::NOT_FOUND);

    let (target, _, _rx) = counting();
    let err = router::<()>(WebhookConfig::new("main"), target).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    let (target, _, _rx) = counting();
    let err = router::<()>(WebhookConfig::new("main").gitlab_token(""), target).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::InvalidInput);
    assert_eq!(WebhookConfig::new("dev").followed_ref(), "refs/heads/dev");
    assert_eq!(
        WebhookConfig::new("refs/tags/v1").followed_ref(),
        "refs/tags/v1"
    );
    assert!(!format!("{:?}", config(RefreshMode::Wait)).contains(SECRET));
}

#[tokio::test]
async fn wait_mode_reports_a_failed_refresh_as_503() {
    let target = || async { Err(george_core::Error::backend("remote unreachable")) };
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    let res = signed(&base, "push", push("refs/heads/main")).await;
    assert_eq!(res.status(), StatusCode::SERVICE_UNAVAILABLE);
}

#[tokio::test]
async fn background_refreshes_coalesce() {
    let count = Arc::new(AtomicUsize::new(0));
    let c = count.clone();
    let target = move || {
        let c = c.clone();
        async move {
            c.fetch_add(1, Ordering::SeqCst);
            tokio::time::sleep(Duration::from_millis(500)).await;
            Ok(())
        }
    };
    let base = serve(router(config(RefreshMode::Background), target).unwrap()).await;
    let res = signed(&base, "push", push("refs/heads/main")).await;
    assert_eq!(res.status(), StatusCode::ACCEPTED);
    let sends = (0..10).map(|_| signed(&base, "push", push("refs/heads/main")));
    for res in futures::future::join_all(sends).await {
        assert_eq!(res.status(), StatusCode::ACCEPTED);
    }
    tokio::time::sleep(Duration::from_millis(1500)).await;
    assert_eq!(
        count.load(Ordering::SeqCst),
        2,
        "one run, then one for all the others"
    );
    // Idle again: the next delivery starts a new run.
    signed(&base, "push", push("refs/heads/main")).await;
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(count.load(Ordering::SeqCst), 3);
}

#[tokio::test]
async fn secrets_and_tokens_never_reach_the_logs() {
    let logs = Captured::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::TRACE)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // The test runtime has one thread: the server's tasks log through this subscriber.
    let _guard = tracing::subscriber::set_default(subscriber);
    let target = || async { Err(george_core::Error::backend("remote unreachable")) };
    let base = serve(router(config(RefreshMode::Wait), target).unwrap()).await;
    let wrong = "a-wrong-token-someone-typed";
    signed(&base, "push", push("refs/heads/main")).await;
    github(
        &base,
        "push",
        push("refs/heads/main"),
        Some("sha256=00".into()),
    )
    .await;
    github(&base, "push", push("refs/heads/main"), None).await;
    gitlab(&base, "Push Hook", push("refs/heads/main"), Some(wrong)).await;
    gitlab(&base, "Push Hook", push("refs/heads/main"), Some(TOKEN)).await;
    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains("rejected delivery"), "{text}");
    assert!(
        text.contains("bad signature") && text.contains("bad token"),
        "{text}"
    );
    assert!(
        text.contains("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
        "delivery id logged: {text}"
    );
    for secret in [SECRET, TOKEN, wrong] {
        assert!(!text.contains(secret), "{secret:?} leaked into: {text}");
    }
}
