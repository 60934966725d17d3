//! Helpers of the webhook tests: a counting target, a loopback server, requests as
//! GitHub and GitLab send them, a log capture.
#![allow(dead_code, unreachable_pub)]

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use george_git::webhook::{RefreshMode, RefreshTarget, WebhookConfig, WebhookSecret};
use serde_json::json;
use tokio::sync::mpsc;

pub const SECRET: &str = "It's a Secret to Everybody";
pub const TOKEN: &str = "gitlab-token-42";

/// A target that counts its calls and reports each on a channel.
pub fn counting() -> (
    impl RefreshTarget,
    Arc<AtomicUsize>,
    mpsc::UnboundedReceiver<()>,
) {
    let count = Arc::new(AtomicUsize::new(0));
    let (tx, rx) = mpsc::unbounded_channel();
    let c = count.clone();
    let target = move || {
        c.fetch_add(1, Ordering::SeqCst);
        let _ = tx.send(());
        async { Ok(()) }
    };
    (target, count, rx)
}

/// Serves `app` on a free loopback port; returns its base URL.
pub async fn serve(app: axum::Router) -> String {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await });
    format!("http://{addr}")
}

pub fn config(mode: RefreshMode) -> WebhookConfig {
    WebhookConfig::new("main")
        .github_secret(SECRET)
        .gitlab_token(TOKEN)
        .refresh_mode(mode)
}

pub fn push(reference: &str) -> Vec<u8> {
    json!({
        "ref": reference,
        "before": "0000000000000000000000000000000000000001",
        "after": "1111111111111111111111111111111111111111",
        "checkout_sha": "1111111111111111111111111111111111111111",
        "repository": {"full_name": "team/ops"},
    })
    .to_string()
    .into_bytes()
}

pub async fn github(
    base: &str,
    event: &str,
    body: Vec<u8>,
    signature: Option<String>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/github"))
        .header("X-GitHub-Event", event)
        .header("X-GitHub-Delivery", "72d3162e-cc78-11e3-81ab-4c9367dc0958")
        .header("Content-Type", "application/json");
    if let Some(sig) = signature {
        req = req.header("X-Hub-Signature-256", sig);
    }
    req.body(body).send().await.unwrap()
}

pub async fn signed(base: &str, event: &str, body: Vec<u8>) -> reqwest::Response {
    let sig = WebhookSecret::from(SECRET).github_signature(&body);
    github(base, event, body, Some(sig)).await
}

pub async fn gitlab(
    base: &str,
    event: &str,
    body: Vec<u8>,
    token: Option<&str>,
) -> reqwest::Response {
    let mut req = reqwest::Client::new()
        .post(format!("{base}/gitlab"))
        .header("X-Gitlab-Event", event)
        .header("Content-Type", "application/json");
    if let Some(t) = token {
        req = req.header("X-Gitlab-Token", t);
    }
    req.body(body).send().await.unwrap()
}

pub async fn json_of(res: reqwest::Response) -> serde_json::Value {
    serde_json::from_slice(&res.bytes().await.unwrap()).unwrap()
}

pub async fn recv(rx: &mut mpsc::UnboundedReceiver<()>) {
    tokio::time::timeout(Duration::from_secs(10), rx.recv())
        .await
        .expect("the refresh target was called")
        .expect("channel open");
}

/// A `MakeWriter` into a shared buffer.
#[derive(Clone, Default)]
pub struct Captured(pub Arc<std::sync::Mutex<Vec<u8>>>);

impl std::io::Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
