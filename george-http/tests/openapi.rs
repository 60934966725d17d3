//! The OpenAPI document lists exactly the routes the router serves, is what
//! `GET /api/v1/openapi.json` serves, and equals the checked-in `george-http/openapi.json`.
//!
//! After changing the API, regenerate the checked-in copy with
//! `GEORGE_HTTP_BLESS=1 cargo test -p george-http --test openapi`.

mod support;

use std::collections::BTreeSet;

use support::{ROOT, Server};

const ROUTES: &[(&str, &str)] = &[
    ("GET", "/api/v1/approvals"),
    ("GET", "/api/v1/approvals/{id}"),
    ("POST", "/api/v1/approvals/{id}/approve"),
    ("POST", "/api/v1/approvals/{id}/reject"),
    ("GET", "/api/v1/catalogue"),
    ("GET", "/api/v1/health"),
    ("GET", "/api/v1/jobs"),
    ("GET", "/api/v1/jobs/{name}"),
    ("POST", "/api/v1/jobs/{name}/cancel"),
    ("GET", "/api/v1/jobs/{name}/events"),
    ("GET", "/api/v1/jobs/{name}/events/stream"),
    ("POST", "/api/v1/jobs/{name}/retry"),
    (
        "GET",
        "/api/v1/jobs/{name}/steps/{step}/attempts/{attempt}/transcript",
    ),
    ("GET", "/api/v1/manifest-errors"),
    ("GET", "/api/v1/openapi.json"),
    ("GET", "/api/v1/stream"),
    ("GET", "/metrics"),
];

fn documented() -> BTreeSet<(String, String)> {
    let doc = serde_json::to_value(george_http::openapi()).expect("document");
    let mut out = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("item").keys() {
            out.insert((method.to_uppercase(), path.clone()));
        }
    }
    out
}

fn concrete(path: &str) -> String {
    path.replace("{name}", "gated")
        .replace("{step}", "plan")
        .replace("{attempt}", "1")
        .replace("{id}", "gated~plan~1~1")
}

#[test]
fn the_document_is_openapi_3_1_and_lists_the_routes() {
    let want: BTreeSet<(String, String)> = ROUTES
        .iter()
        .map(|(m, p)| (m.to_string(), p.to_string()))
        .collect();
    assert_eq!(documented(), want);
    let doc = serde_json::to_value(george_http::openapi()).expect("document");
    assert!(
        doc["openapi"]
            .as_str()
            .is_some_and(|v| v.starts_with("3.1")),
        "{}",
        doc["openapi"]
    );
    assert_eq!(
        doc["components"]["securitySchemes"]["bearer"]["scheme"],
        "bearer"
    );
    assert!(doc["components"]["schemas"]["Problem"].is_object());
}

#[test]
fn the_checked_in_document_is_the_generated_one() {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("openapi.json");
    let generated = format!("{}\n", george_http::openapi_json());
    if std::env::var_os("GEORGE_HTTP_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("written");
    }
    let checked_in = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        checked_in == generated,
        "george-http/openapi.json differs from the document the code generates; regenerate it with\n  GEORGE_HTTP_BLESS=1 cargo test -p george-http --test openapi\nand commit it"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_router_serves_exactly_the_documented_routes() {
    let s = Server::start().await;
    let served = s
        .http
        .get(s.url("/api/v1/openapi.json"))
        .send()
        .await
        .expect("sent");
    assert_eq!(served.headers()["content-type"], "application/json");
    assert_eq!(
        served.text().await.expect("text"),
        george_http::openapi_json()
    );
    let methods = ["GET", "POST", "PUT", "PATCH", "DELETE"];
    let paths: BTreeSet<&str> = ROUTES.iter().map(|(_, p)| *p).collect();
    for path in paths {
        for method in methods {
            let documented = ROUTES.contains(&(method, path));
            let req = s
                .http
                .request(method.parse().expect("method"), s.url(&concrete(path)))
                .bearer_auth(ROOT)
                .header("content-type", "application/json")
                .body(if path.ends_with("/reject") {
                    r#"{"reason": "r"}"#
                } else {
                    "{}"
                });
            let res = req.send().await.expect("sent");
            let status = res.status().as_u16();
            if path.contains("/stream") && status == 200 {
                assert!(documented);
                continue;
            }
            let (_, body) = support::answer(res).await;
            let kind = body["type"].as_str().unwrap_or_default().to_string();
            let unrouted =
                kind.ends_with("/no-such-route") || kind.ends_with("/method-not-allowed");
            assert_eq!(!unrouted, documented, "{method} {path}: {status} {body}");
            if !documented {
                assert_eq!(status, 405, "{method} {path}");
            }
        }
    }
    s.shutdown().await;
}
