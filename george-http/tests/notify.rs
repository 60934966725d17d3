//! `WebhookHuman` over real HTTP on loopback: the Slack and JSON bodies, the signature,
//! retries of a failing hook, no retry of a refusing one, the cap, and cancellations.
#![cfg(feature = "notify")]

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::routing::post;
use george_core::human::HumanChannel;
use george_core::model::ApprovalRule;
use george_core::state::{ApprovalRequest, ApprovalStatus, Plan, PlannedAction};
use george_http::notify::{
    DELIVERY_HEADER, EVENT_HEADER, SIGNATURE_HEADER, WebhookConfig, WebhookFormat, WebhookHuman,
    signature,
};
use serde_json::{Value, json};

const LIMIT: Duration = Duration::from_secs(20);

/// A hook that answers each post with the next status of `script` (then 200), and
/// keeps what it got.
#[derive(Clone, Default)]
struct Hook {
    script: Arc<Mutex<Vec<StatusCode>>>,
    got: Arc<Mutex<Vec<(HeaderMap, Bytes)>>>,
}

async fn receive(State(h): State<Hook>, headers: HeaderMap, body: Bytes) -> StatusCode {
    h.got.lock().unwrap().push((headers, body));
    let mut script = h.script.lock().unwrap();
    if script.is_empty() {
        StatusCode::OK
    } else {
        script.remove(0)
    }
}

impl Hook {
    async fn serve(script: Vec<StatusCode>) -> (Hook, String) {
        let hook = Hook {
            script: Arc::new(Mutex::new(script)),
            ..Hook::default()
        };
        let app = Router::new()
            .route("/hook", post(receive))
            .with_state(hook.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/hook", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        (hook, url)
    }

    fn posts(&self) -> Vec<(HeaderMap, Bytes)> {
        self.got.lock().unwrap().clone()
    }
}

fn request() -> ApprovalRequest {
    ApprovalRequest {
        id: ApprovalRequest::make_id("deploy-web", "plan", 1, 1),
        job: "deploy-web".into(),
        step: "plan".into(),
        generation: 1,
        attempt: 1,
        agent: "planner".into(),
        plan: Plan {
            summary: "Scale web to 3 <@U123> & roll out".into(),
            actions: vec![PlannedAction {
                tool: "kubectl_scale".into(),
                arguments: json!({"replicas": 3}),
            }],
        },
        digest: "sha256:abc".into(),
        rule: ApprovalRule::required(),
        commit_author: None,
        votes: vec![],
        requested_at_ms: 1_700_000_000_000,
        status: ApprovalStatus::Open,
    }
}

fn fast(url: &str) -> WebhookConfig {
    WebhookConfig::new(url).with_retry(5, Duration::from_millis(10), Duration::from_millis(50))
}

async fn idle(h: &WebhookHuman) {
    tokio::time::timeout(LIMIT, h.idle())
        .await
        .expect("deliveries finish in time");
}

fn json_of(body: &Bytes) -> Value {
    serde_json::from_slice(body).expect("a JSON body")
}

#[tokio::test]
async fn slack_message_links_to_the_approval_and_escapes_the_summary() {
    let (hook, url) = Hook::serve(vec![]).await;
    let human = WebhookHuman::new(fast(&url).with_base_url("https://george.example/ops/")).unwrap();
    let req = request();
    human.approval_requested(&req).await.unwrap();
    idle(&human).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 1);
    let (headers, body) = &posts[0];
    assert_eq!(headers["content-type"], "application/json");
    assert_eq!(headers[EVENT_HEADER], "approval_requested");
    assert!(
        headers.get(SIGNATURE_HEADER).is_none(),
        "no secret, no signature"
    );
    let v = json_of(body);
    let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
    assert_eq!(keys, ["text"], "Slack's incoming-webhook body");
    let text = v["text"].as_str().unwrap();
    let link = format!("<https://george.example/ops/approvals/{}|", req.id);
    assert!(text.contains(&link), "{text}");
    assert!(
        text.contains("`deploy-web`") && text.contains("`plan`"),
        "{text}"
    );
    assert!(text.contains("&lt;@U123&gt; &amp; roll out"), "{text}");
    assert!(
        !text.contains("<@U123>"),
        "a summary cannot mention people: {text}"
    );
}

#[tokio::test]
async fn json_body_is_signed_with_hmac_sha256() {
    let (hook, url) = Hook::serve(vec![]).await;
    let config = fast(&url)
        .with_format(WebhookFormat::Json)
        .with_secret("s3cret")
        .with_base_url("https://george.example");
    let human = WebhookHuman::new(config).unwrap();
    let req = request();
    human.approval_requested(&req).await.unwrap();
    idle(&human).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 1);
    let (headers, body) = &posts[0];
    let sig = headers[SIGNATURE_HEADER].to_str().unwrap();
    assert_eq!(sig, signature(b"s3cret", body));
    assert!(sig.starts_with("sha256=") && sig.len() == 7 + 64, "{sig}");
    assert_ne!(sig, signature(b"other", body), "the key matters");
    assert_eq!(
        headers[DELIVERY_HEADER].to_str().unwrap(),
        format!("approval_requested:{}", req.id)
    );
    let v = json_of(body);
    assert_eq!(v["event"], "approval_requested");
    assert_eq!(v["id"], req.id.as_str());
    let link = format!("https://george.example/approvals/{}", req.id);
    assert_eq!(v["url"], link.as_str());
    let back: ApprovalRequest = serde_json::from_value(v["request"].clone()).unwrap();
    assert_eq!(back, req, "the stored request, whole");
}

/// A hook failing twice (a 503, then a 500) gets the same notification on the third post.
#[tokio::test]
async fn a_failing_hook_gets_the_request_after_retries() {
    let (hook, url) = Hook::serve(vec![
        StatusCode::SERVICE_UNAVAILABLE,
        StatusCode::INTERNAL_SERVER_ERROR,
    ])
    .await;
    let human = WebhookHuman::new(fast(&url).with_secret("k")).unwrap();
    human.approval_requested(&request()).await.unwrap();
    idle(&human).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 3, "two failures, then the delivery");
    for (headers, body) in &posts {
        assert_eq!(body, &posts[0].1, "every retry posts the same body");
        assert_eq!(headers[DELIVERY_HEADER], posts[0].0[DELIVERY_HEADER]);
        assert_eq!(
            headers[SIGNATURE_HEADER].to_str().unwrap(),
            signature(b"k", body)
        );
    }
}

/// A refusal (a 4xx other than 408 and 429) is not retried; a hook that never answers
/// well gets `max_attempts` posts, and the channel gives up without blocking anyone.
#[tokio::test]
async fn refusals_are_not_retried_and_retries_are_capped() {
    let (refusing, url) = Hook::serve(vec![StatusCode::NOT_FOUND]).await;
    let human = WebhookHuman::new(fast(&url)).unwrap();
    human.approval_requested(&request()).await.unwrap();
    idle(&human).await;
    assert_eq!(refusing.posts().len(), 1);

    let (down, url) = Hook::serve(vec![StatusCode::BAD_GATEWAY; 10]).await;
    let config =
        WebhookConfig::new(url).with_retry(3, Duration::from_millis(5), Duration::from_millis(20));
    let human = WebhookHuman::new(config).unwrap();
    human.approval_requested(&request()).await.unwrap();
    idle(&human).await;
    assert_eq!(down.posts().len(), 3);
}

/// A hook that is not listening yet (connection refused) is retried too.
#[tokio::test]
async fn connection_errors_are_retried() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let config = WebhookConfig::new(format!("http://{addr}/hook")).with_retry(
        2,
        Duration::from_millis(5),
        Duration::from_millis(5),
    );
    let human = WebhookHuman::new(config).unwrap();
    human.approval_requested(&request()).await.unwrap();
    idle(&human).await;
}

#[tokio::test]
async fn cancellations_are_notified_with_their_reason() {
    let (hook, url) = Hook::serve(vec![]).await;
    let slack = WebhookHuman::new(fast(&url)).unwrap();
    let json = WebhookHuman::new(fast(&url).with_format(WebhookFormat::Json)).unwrap();
    let mut req = request();
    req.status = ApprovalStatus::Cancelled {
        at_ms: 1_700_000_100_000,
        reason: "generation 2 of the job".into(),
    };
    slack.approval_cancelled(&req).await.unwrap();
    idle(&slack).await;
    json.approval_cancelled(&req).await.unwrap();
    idle(&json).await;
    let posts = hook.posts();
    assert_eq!(posts.len(), 2);
    assert!(
        posts
            .iter()
            .all(|(h, _)| h[EVENT_HEADER] == "approval_cancelled")
    );
    let text = json_of(&posts[0].1)["text"].as_str().unwrap().to_string();
    assert!(
        text.contains("cancelled") && text.contains("generation 2 of the job"),
        "{text}"
    );
    assert!(text.contains(&format!("george show approval {}", req.id)) || text.contains(&req.id));
    let v = json_of(&posts[1].1);
    assert_eq!(v["event"], "approval_cancelled");
    assert_eq!(v["url"], Value::Null, "no base URL, no link");
    assert_eq!(v["request"]["status"], "cancelled");
}

#[test]
fn only_http_urls_are_accepted() {
    for bad in ["", "not a url", "ftp://example.com/x", "file:///etc/passwd"] {
        let e = WebhookHuman::new(WebhookConfig::new(bad)).unwrap_err();
        assert_eq!(
            e.kind(),
            george_core::error::ErrorKind::InvalidInput,
            "{bad}"
        );
    }
}
