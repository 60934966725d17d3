//! Authentication and authorization over real HTTP: no identity is 401 on every route,
//! roles gate decisions and operator actions, the step's rule gates approvers, a request
//! is decided once (the same decision again is 200), and a trusted proxy is believed only
//! with its secret.

mod support;

use george_http::{AuthConfig, Identity, ProxyAuth, Role, sha256_hex};
use serde_json::json;
use support::{ALICE, MALLORY, READER, ROOT, Server};

/// Every (method, concrete path) the OpenAPI document lists.
fn documented_routes() -> Vec<(String, String)> {
    let doc = serde_json::to_value(george_http::openapi()).expect("document");
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        let concrete = path
            .replace("{name}", "gated")
            .replace("{step}", "plan")
            .replace("{attempt}", "1")
            .replace("{id}", "gated~plan~1~1");
        for method in item.as_object().expect("item").keys() {
            out.push((method.to_uppercase(), concrete.clone()));
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_identity_is_401_on_every_route_but_the_document() {
    let s = Server::start().await;
    let routes = documented_routes();
    assert!(routes.len() >= 15, "{routes:?}");
    for (method, path) in routes {
        let method = reqwest::Method::from_bytes(method.as_bytes()).expect("method");
        let attempts = [
            None,
            Some(("authorization", "Bearer not-a-token")),
            Some(("authorization", "Basic YWxpY2U6cHc=")),
            Some(("x-forwarded-user", "alice")),
        ];
        for header in attempts {
            let mut req = s.http.request(method.clone(), s.url(&path));
            if let Some((k, v)) = header {
                req = req.header(k, v);
            }
            let res = req.send().await.expect("sent");
            if path == "/api/v1/openapi.json" {
                assert_eq!(res.status(), 200, "{path} is public");
                continue;
            }
            assert_eq!(res.status(), 401, "{method} {path} with {header:?}");
            assert!(res.headers().contains_key("www-authenticate"));
            let (_, body) = support::answer(res).await;
            assert_eq!(body["type"], "https://george.dev/problems/unauthenticated");
        }
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn roles_and_the_steps_rule_decide_who_may_act() {
    let mut s = Server::start().await;
    let req = s.next_open().await;
    let approve = format!("/api/v1/approvals/{}/approve", req.id);
    let reject = format!("/api/v1/approvals/{}/reject", req.id);

    // A read-only identity may not decide, nor cancel or retry.
    for (path, body) in [
        (approve.as_str(), json!({})),
        (reject.as_str(), json!({"reason": "no"})),
        ("/api/v1/jobs/gated/cancel", json!({})),
        ("/api/v1/jobs/failing/retry", json!({})),
    ] {
        let (st, p) = s.post(path, Some(READER), body).await;
        assert_eq!(st, 403, "{path}: {p}");
        assert!(
            p["detail"]
                .as_str()
                .is_some_and(|d| d.contains("has role read")),
            "{p}"
        );
    }
    // Deciding is not administering.
    let (st, _) = s
        .post("/api/v1/jobs/gated/cancel", Some(ALICE), json!({}))
        .await;
    assert_eq!(st, 403);

    // An approver outside the step's rule (group:sre) is refused by the engine's rule.
    let (st, p) = s.post(&approve, Some(MALLORY), json!({})).await;
    assert_eq!(st, 403, "{p}");
    assert!(
        p["detail"].as_str().is_some_and(
            |d| d.contains("human:mallory is not one of the step's approvers (group:sre)")
        ),
        "{p}"
    );
    let (st, p) = s
        .post(&reject, Some(MALLORY), json!({"reason": "mine"}))
        .await;
    assert_eq!(st, 403, "{p}");
    let (_, open) = s
        .get(&format!("/api/v1/approvals/{}", req.id), Some(READER))
        .await;
    assert_eq!(open["status"], "open");

    // A digest that is not the plan's is refused.
    let (st, _) = s
        .post(&approve, Some(ALICE), json!({"digest": "sha256:00"}))
        .await;
    assert_eq!(st, 409);

    // The first decision counts, as the authenticated identity.
    let body = json!({"note": "ship it", "digest": req.digest});
    let (st, first) = s.post(&approve, Some(ALICE), body.clone()).await;
    assert_eq!(st, 200, "{first}");
    assert_eq!(first["decided_by"], "human:alice");
    // The same decision again: 200 with the state as it stands.
    let (st, again) = s.post(&approve, Some(ALICE), body).await;
    assert_eq!(st, 200, "{again}");
    assert_eq!(again["decided_at_ms"], first["decided_at_ms"]);
    let (st, again) = s
        .post(&approve, Some(ALICE), json!({"note": "ship it"}))
        .await;
    assert_eq!(st, 200, "{again}");
    // Any other decision: 409.
    for (path, token, body) in [
        (reject.as_str(), ROOT, json!({"reason": "wait"})),
        (approve.as_str(), ROOT, json!({"note": "ship it"})),
        (approve.as_str(), ALICE, json!({"note": "another note"})),
        (reject.as_str(), ALICE, json!({"reason": "changed my mind"})),
    ] {
        let (st, p) = s.post(path, Some(token), body).await;
        assert_eq!(st, 409, "{path}: {p}");
        assert_eq!(p["type"], "https://george.dev/problems/conflict");
    }
    let events = s.engine.events("gated").await.expect("events");
    let approvals: Vec<_> = events
        .iter()
        .filter(|e| e.action == "approval.approved")
        .collect();
    assert_eq!(approvals.len(), 1);
    assert_eq!(approvals[0].actor, "human:alice");
    s.shutdown().await;
}

const PROXY_SECRET: &str = "a shared secret of the proxy";

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_is_believed_only_with_its_secret() {
    let proxy = ProxyAuth::new("X-Proxy-Secret", PROXY_SECRET)
        .expect("proxy")
        .default_role(Role::Read)
        .group_role("sre", Role::Decide);
    let mut s = Server::start_with(support::auth().trusted_proxy(proxy)).await;
    let req = s.next_open().await;
    let via = |secret: &str, user: &str, groups: &str| {
        s.http
            .post(s.url(&format!("/api/v1/approvals/{}/approve", req.id)))
            .header("x-proxy-secret", secret)
            .header("x-forwarded-user", user)
            .header("x-forwarded-groups", groups)
    };
    let (st, _) = support::answer(
        via("wrong secret, long enough", "bob", "sre")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(st, 401);
    let no_secret = s
        .http
        .get(s.url("/api/v1/jobs"))
        .header("x-forwarded-user", "bob");
    assert_eq!(no_secret.send().await.expect("sent").status(), 401);
    let no_user = s
        .http
        .get(s.url("/api/v1/jobs"))
        .header("x-proxy-secret", PROXY_SECRET);
    assert_eq!(no_user.send().await.expect("sent").status(), 401);
    // A proxied user with the default role reads but may not decide.
    let read = s
        .http
        .get(s.url("/api/v1/jobs"))
        .header("x-proxy-secret", PROXY_SECRET)
        .header("x-forwarded-user", "carol");
    assert_eq!(read.send().await.expect("sent").status(), 200);
    let (st, _) = support::answer(
        via(PROXY_SECRET, "carol", "web")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(st, 403);
    // A member of sre decides, as itself.
    let (st, done) = support::answer(
        via(PROXY_SECRET, "bob", "web, sre")
            .send()
            .await
            .expect("sent"),
    )
    .await;
    assert_eq!(st, 200, "{done}");
    assert_eq!(done["decided_by"], "human:bob");
    // A bearer token is judged alone: an unknown one is 401 even through the proxy.
    let both = s
        .http
        .get(s.url("/api/v1/jobs"))
        .bearer_auth("unknown")
        .header("x-proxy-secret", PROXY_SECRET)
        .header("x-forwarded-user", "carol");
    assert_eq!(both.send().await.expect("sent").status(), 401);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_token_file_holds_hashes_and_configures_the_proxy() {
    let path = std::env::temp_dir().join(format!("george-tokens-{}.toml", std::process::id()));
    let text = format!(
        "[tokens.{}]\nuser = \"dora\"\ngroups = [\"sre\"]\nroles = [\"read\"]\n\n[proxy]\nsecret_header = \"X-Proxy-Secret\"\nsecret_sha256 = \"{}\"\ndefault_role = \"read\"\n",
        sha256_hex(b"dora-token"),
        sha256_hex(PROXY_SECRET.as_bytes()),
    );
    std::fs::write(&path, text).expect("written");
    let auth = AuthConfig::from_token_file(&path).expect("valid file");
    std::fs::remove_file(&path).ok();
    assert_eq!(auth.token_count(), 1);
    let s = Server::start_with(auth.token("extra", Identity::new("x", Role::Read))).await;
    let (st, _) = s.get("/api/v1/health", Some("dora-token")).await;
    assert_eq!(st, 200);
    let (st, _) = s
        .get("/api/v1/health", Some(&sha256_hex(b"dora-token")))
        .await;
    assert_eq!(st, 401, "the hash is not the token");
    let proxied = s
        .http
        .get(s.url("/api/v1/health"))
        .header("x-proxy-secret", PROXY_SECRET)
        .header("x-forwarded-user", "erin");
    assert_eq!(proxied.send().await.expect("sent").status(), 200);
    let missing = AuthConfig::from_token_file("/nonexistent/tokens.toml").expect_err("missing");
    assert!(
        missing
            .to_string()
            .starts_with("/nonexistent/tokens.toml: cannot read"),
        "{missing}"
    );
    s.shutdown().await;
}
