//! The dashboard (`/ui`, feature `dashboard`) over real HTTP on loopback, mounted by a
//! host under `/ops`: login and its cookie, the redirect to login, every view with the
//! attributes the browser tests rely on, CSRF, read-only identities, decisions through
//! the forms, the step graph, filters in the URL, links that keep the prefix, live
//! updates.

#![cfg(feature = "dashboard")]

mod support;

use std::time::Duration;

use futures::StreamExt;
use george_core::state::ApprovalStatus;
use george_http::{AuthConfig, Identity, ProxyAuth, Role};
use support::{ALICE, LIMIT, MALLORY, READER, Server, plan};

/// A browser-like client: no redirects followed, cookies kept by hand.
struct Browser {
    http: reqwest::Client,
    base: String,
    cookie: Option<String>,
}

struct Page {
    status: u16,
    location: Option<String>,
    set_cookie: Option<String>,
    body: String,
}

impl Browser {
    fn new(s: &Server) -> Browser {
        Browser {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("client"),
            base: s.base.clone(),
            cookie: None,
        }
    }

    async fn send(&self, req: reqwest::RequestBuilder) -> Page {
        let req = match &self.cookie {
            Some(c) => req.header("cookie", c),
            None => req,
        };
        let res = req.send().await.expect("sent");
        let header = |n: &str| {
            res.headers()
                .get(n)
                .and_then(|v| v.to_str().ok())
                .map(str::to_string)
        };
        let (location, set_cookie) = (header("location"), header("set-cookie"));
        Page {
            status: res.status().as_u16(),
            location,
            set_cookie,
            body: res.text().await.expect("body"),
        }
    }

    /// GET `path` (under `/ops`).
    async fn get(&self, path: &str) -> Page {
        self.send(self.http.get(format!("{}{path}", self.base)))
            .await
    }

    /// POST a form to `path`.
    async fn post(&self, path: &str, form: &[(&str, &str)]) -> Page {
        self.send(self.http.post(format!("{}{path}", self.base)).form(form))
            .await
    }

    /// Signs in with `token`; the session cookie is kept.
    async fn login(&mut self, token: &str) -> Page {
        let page = self.post("/ui/login", &[("token", token)]).await;
        assert_eq!(page.status, 303, "{}", page.body);
        let cookie = page.set_cookie.clone().expect("a session cookie");
        self.cookie = Some(cookie.split(';').next().expect("name=value").to_string());
        page
    }
}

/// The value of the first `name="{name}" value="…"` after `from` in `html`.
fn field(html: &str, from: usize, name: &str) -> String {
    let needle = format!("name=\"{name}\" value=\"");
    let at = html[from..].find(&needle).expect(name) + from + needle.len();
    html[at..at + html[at..].find('"').expect("end")].to_string()
}

/// The contract every page keeps: navigation, landmarks, a heading, who is signed in.
fn assert_shell(body: &str, user: &str) {
    for link in ["Overview", "Jobs", "Approvals", "Catalogue"] {
        assert!(body.contains(&format!(">{link}</a>")), "no {link} link");
    }
    assert!(body.contains("<nav"), "no nav");
    assert!(body.contains("<main"), "no main");
    assert!(body.contains("<h1>"), "no h1");
    assert!(
        body.contains("data-testid=\"whoami\" title=\"role: ")
            && body.contains(&format!(">{user}</span>")),
        "whoami does not show {user}"
    );
}

/// Every `href="…"` and `action="…"` of `body`.
fn links(body: &str) -> Vec<String> {
    let mut out = Vec::new();
    for attr in [" href=\"", " action=\"", " src=\"", " data-live-src=\""] {
        let mut rest = body;
        while let Some(i) = rest.find(attr) {
            let after = &rest[i + attr.len()..];
            let end = after.find('"').expect("closing quote");
            out.push(after[..end].to_string());
            rest = &after[end..];
        }
    }
    out
}

async fn open_request(s: &mut Server) -> String {
    s.next_open().await.id
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn login_sets_an_httponly_strict_cookie_scoped_to_the_prefix() {
    let s = Server::start().await;
    let mut b = Browser::new(&s);
    let form = b.get("/ui/login").await;
    assert_eq!(form.status, 200);
    assert!(
        form.body
            .contains("data-testid=\"login-form\" method=\"post\""),
        "{}",
        form.body
    );
    assert!(form.body.contains("<label for=\"token\">"));
    assert!(
        form.body
            .contains("id=\"token\" name=\"token\" type=\"password\"")
    );
    assert!(
        form.body
            .contains("<button type=\"submit\">Sign in</button>")
    );

    let wrong = b.post("/ui/login", &[("token", "nope")]).await;
    assert_eq!(wrong.status, 401);
    assert!(wrong.set_cookie.is_none());

    let ok = b.login(ALICE).await;
    assert_eq!(ok.location.as_deref(), Some("/ops/ui/"));
    let cookie = ok.set_cookie.expect("cookie");
    assert!(cookie.starts_with("george_session="), "{cookie}");
    for part in ["HttpOnly", "SameSite=Strict", "Path=/ops/ui"] {
        assert!(cookie.contains(part), "{cookie} lacks {part}");
    }
    assert!(!cookie.contains("Secure"), "{cookie}");
    let overview = b.get("/ui/").await;
    assert_eq!(overview.status, 200);
    assert_shell(&overview.body, "alice");

    // Behind a TLS-terminating proxy the cookie is Secure.
    let https = b
        .send(
            b.http
                .post(format!("{}/ui/login", s.base))
                .header("x-forwarded-proto", "https")
                .form(&[("token", ALICE)]),
        )
        .await;
    assert!(https.set_cookie.expect("cookie").contains("; Secure"));

    // Signing out ends the session.
    let csrf = field(&overview.body, 0, "csrf");
    let out = b.post("/ui/logout", &[("csrf", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(b.get("/ui/").await.status, 303);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn views_redirect_to_login_without_a_session() {
    let s = Server::start().await;
    let b = Browser::new(&s);
    for path in [
        "/ui/",
        "/ui",
        "/ui/jobs?status=failed",
        "/ui/jobs/gated",
        "/ui/approvals",
        "/ui/catalogue",
        "/ui/jobs/gated/steps/plan/attempts/1",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 303, "{path}");
        let to = p.location.expect("location");
        assert!(to.starts_with("/ops/ui/login?next="), "{path} → {to}");
    }
    // A stale or forged cookie is no session.
    let mut forged = Browser::new(&s);
    forged.cookie = Some(format!("george_session={}", "0".repeat(64)));
    assert_eq!(forged.get("/ui/approvals").await.status, 303);
    // The login page says where to go back to, within the dashboard only.
    let mut b = Browser::new(&s);
    let page = b
        .send(
            b.http
                .post(format!("{}/ui/login?next=%2Fops%2Fui%2Fcatalogue", s.base))
                .form(&[("token", READER)]),
        )
        .await;
    assert_eq!(page.location.as_deref(), Some("/ops/ui/catalogue"));
    let evil = b
        .send(
            b.http
                .post(format!(
                    "{}/ui/login?next=https%3A%2F%2Fevil.example%2F",
                    s.base
                ))
                .form(&[("token", READER)]),
        )
        .await;
    assert_eq!(evil.location.as_deref(), Some("/ops/ui/"));
    b.login(READER).await;
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_view_renders_with_the_contract_and_links_keep_the_prefix() {
    let mut s = Server::start().await;
    let id = open_request(&mut s).await;
    let mut b = Browser::new(&s);
    b.login(ALICE).await;
    for path in [
        "/ui/",
        "/ui/jobs",
        "/ui/jobs?group=template",
        "/ui/jobs/gated",
        "/ui/jobs/gated/steps/plan/attempts/1",
        "/ui/approvals",
        "/ui/catalogue",
    ] {
        let p = b.get(path).await;
        assert_eq!(p.status, 200, "{path}: {}", p.body);
        assert_shell(&p.body, "alice");
        for l in links(&p.body) {
            assert!(
                l.starts_with("/ops/ui/") || l == "/ops/ui" || l.starts_with('#') || l == "data:,",
                "{path}: link {l} leaves the prefix"
            );
        }
    }
    let inbox = b.get("/ui/approvals").await.body;
    assert!(inbox.contains(&format!(
        "data-testid=\"approval\" data-approval-id=\"{id}\" data-job=\"gated\" data-step=\"plan\""
    )));
    for testid in [
        "plan-summary",
        "plan-actions",
        "plan-diff",
        "rejection-history",
        "approver-rule",
        "approve-form",
        "reject-form",
    ] {
        assert!(
            inbox.contains(&format!("data-testid=\"{testid}\"")),
            "no {testid}"
        );
    }
    assert!(inbox.contains("first plan"));
    assert!(inbox.contains("group:sre"));
    assert!(inbox.contains("name=\"reason\" required"));
    assert!(inbox.contains(">Approve</button>") && inbox.contains(">Reject</button>"));

    let catalogue = b.get("/ui/catalogue").await.body;
    assert!(
        catalogue.contains("data-testid=\"manifest-error\""),
        "the broken job is listed"
    );
    assert!(catalogue.contains("jobs/broken.yaml:"));
    assert!(catalogue.contains("data-testid=\"template-graph\""));

    let transcript = b.get("/ui/jobs/gated/steps/plan/attempts/1").await.body;
    assert!(transcript.contains("data-testid=\"tool-call\" data-tool=\"submit_plan\""));

    // Assets are public and cached.
    let css = links(&inbox)
        .into_iter()
        .find(|l| l.ends_with(".css"))
        .expect("a stylesheet");
    let res = reqwest::get(format!("{}{}", s.base.trim_end_matches("/ops"), css))
        .await
        .expect("css");
    assert_eq!(res.status(), 200);
    assert!(
        res.headers()["cache-control"]
            .to_str()
            .unwrap()
            .contains("max-age=31536000")
    );
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forms_without_the_right_csrf_token_are_refused_and_change_nothing() {
    let mut s = Server::start().await;
    let id = open_request(&mut s).await;
    let mut b = Browser::new(&s);
    b.login(ALICE).await;
    let inbox = b.get("/ui/approvals").await.body;
    let digest = field(&inbox, 0, "digest");
    let approve = format!("/ui/approvals/{id}/approve");
    let reject = format!("/ui/approvals/{id}/reject");
    for (path, form) in [
        (&approve, vec![("digest", digest.as_str())]),
        (
            &approve,
            vec![("csrf", "0".repeat(64).leak() as &str), ("digest", &digest)],
        ),
        (&reject, vec![("digest", &digest), ("reason", "no")]),
        (&reject, vec![("csrf", ""), ("reason", "no")]),
    ] {
        let p = b.post(path, &form).await;
        assert_eq!(p.status, 403, "{path} {form:?}");
    }
    // Without a session at all.
    let anonymous = Browser::new(&s);
    let csrf = field(&inbox, 0, "csrf");
    let p = anonymous
        .post(&approve, &[("csrf", &csrf), ("digest", &digest)])
        .await;
    assert_eq!(p.status, 403);
    let req = s.engine.approval(&id).await.unwrap().unwrap();
    assert_eq!(req.status, ApprovalStatus::Open);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_only_and_outside_the_rule_see_no_forms_and_cannot_decide() {
    let mut s = Server::start().await;
    let id = open_request(&mut s).await;
    for token in [READER, MALLORY] {
        let mut b = Browser::new(&s);
        b.login(token).await;
        let inbox = b.get("/ui/approvals").await.body;
        assert!(inbox.contains("data-testid=\"approval\""));
        assert!(!inbox.contains("approve-form"), "{token} sees forms");
        assert!(!inbox.contains("reject-form"));
        let csrf = field(&inbox, 0, "csrf");
        let p = b
            .post(&format!("/ui/approvals/{id}/approve"), &[("csrf", &csrf)])
            .await;
        assert_eq!(p.status, 403, "{token}");
    }
    let req = s.engine.approval(&id).await.unwrap().unwrap();
    assert_eq!(req.status, ApprovalStatus::Open);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn decisions_through_the_forms_record_the_identity_and_the_job_page_follows() {
    let mut s = Server::start().await;
    let first = open_request(&mut s).await;
    let mut b = Browser::new(&s);
    b.login(ALICE).await;

    // The job page: one graph node per step, in its state.
    let page = b.get("/ui/jobs/gated").await.body;
    assert!(page.contains(
        "<span data-testid=\"job-status\" class=\"badge s-wait\">AwaitingApproval</span>"
    ));
    assert!(page.contains("<svg data-testid=\"step-graph\""));
    assert_eq!(page.matches("data-testid=\"step-node\"").count(), 2);
    assert!(
        page.contains(
            "data-testid=\"step-node\" data-step=\"plan\" data-state=\"awaiting_approval\""
        )
    );
    assert!(page.contains("data-testid=\"step-node\" data-step=\"check\" data-state=\"pending\""));
    assert!(page.contains("<svg data-testid=\"timeline\""));
    assert!(page.contains("data-testid=\"event-log\""));
    assert!(page.contains("data-testid=\"child-jobs\""));

    // A plan changed since display is refused (the digest shown is sent).
    let inbox = b.get("/ui/approvals").await.body;
    let csrf = field(&inbox, 0, "csrf");
    let stale = b
        .post(
            &format!("/ui/approvals/{first}/approve"),
            &[("csrf", &csrf), ("digest", "sha256:00")],
        )
        .await;
    assert_eq!(stale.status, 409, "{}", stale.body);

    // Reject with a reason: 303 back to the inbox, recorded as alice.
    s.provider.expect_call("plan 2", plan("c2", "second plan"));
    let digest = field(&inbox, 0, "digest");
    let p = b
        .post(
            &format!("/ui/approvals/{first}/reject"),
            &[
                ("csrf", &csrf),
                ("digest", &digest),
                ("reason", "too risky on a Friday"),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    assert_eq!(p.location.as_deref(), Some("/ops/ui/approvals"));
    let req = s.engine.approval(&first).await.unwrap().unwrap();
    assert!(
        matches!(&req.status, ApprovalStatus::Rejected { by, reason, .. } if by == "human:alice" && reason == "too risky on a Friday")
    );

    // The second plan shows the first one's rejection; approve it.
    let second = open_request(&mut s).await;
    let inbox = b.get("/ui/approvals").await.body;
    let at = inbox
        .find(&format!("data-approval-id=\"{second}\""))
        .expect("second request");
    let history = &inbox[at..];
    let h = history
        .find("data-testid=\"rejection-history\"")
        .expect("history");
    assert!(
        history[h..]
            .split("</ol>")
            .next()
            .unwrap()
            .contains("too risky on a Friday")
    );
    assert!(inbox.contains("data-testid=\"decided\""));
    let p = b
        .post(
            &format!("/ui/approvals/{second}/approve"),
            &[
                ("csrf", &field(&inbox, at, "csrf")),
                ("digest", &field(&inbox, at, "digest")),
            ],
        )
        .await;
    assert_eq!(p.status, 303, "{}", p.body);
    let status = s
        .engine
        .wait_finished("gated", LIMIT)
        .await
        .expect("finished");
    assert_eq!(status.name(), "Succeeded");

    let page = b.get("/ui/jobs/gated").await.body;
    assert!(page.contains(">Succeeded</span>"));
    assert!(
        page.contains("data-testid=\"step-node\" data-step=\"check\" data-state=\"succeeded\"")
    );
    let rows: Vec<&str> = page.split("<tr data-testid=\"event\"").skip(1).collect();
    assert!(
        rows.iter()
            .any(|r| r.contains("human:alice") && r.contains("too risky on a Friday"))
    );
    // The event log filters by step and actor.
    let only = b.get("/ui/jobs/gated?actor=human%3Aalice").await.body;
    let rows: Vec<&str> = only.split("<tr data-testid=\"event\"").skip(1).collect();
    assert!(!rows.is_empty());
    assert!(rows.iter().all(|r| r.contains("human:alice")));
    let decided = b.get("/ui/approvals").await.body;
    assert!(decided.contains("data-testid=\"decided-by\">human:alice</span>"));
    assert!(decided.contains("data-testid=\"no-open\""));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_list_keeps_filters_sort_and_grouping_in_the_url() {
    let s = Server::start().await;
    s.engine
        .wait_finished("failing", LIMIT)
        .await
        .expect("failing finishes");
    let mut b = Browser::new(&s);
    b.login(READER).await;
    let all = b.get("/ui/jobs").await.body;
    assert!(all.contains("data-testid=\"job-filters\" method=\"get\""));
    for name in ["status", "template", "agent", "text", "sort", "from", "to"] {
        assert!(all.contains(&format!("name=\"{name}\"")), "no field {name}");
    }
    for id in [
        "f-status",
        "f-template",
        "f-agent",
        "f-text",
        "f-sort",
        "f-from",
        "f-to",
    ] {
        assert!(
            all.contains(&format!("<label for=\"{id}\">")),
            "no label for {id}"
        );
    }
    assert!(all.contains("data-testid=\"job-row\" data-job=\"gated\""));
    assert!(all.contains("data-testid=\"job-row\" data-job=\"failing\" data-status=\"Failed\""));
    assert!(all.contains("href=\"/ops/ui/jobs/failing\""));

    let failed = b
        .get("/ui/jobs?status=failed&sort=-name&text=fail")
        .await
        .body;
    assert!(failed.contains("<option value=\"failed\" selected>"));
    assert!(failed.contains("<option value=\"-name\" selected>"));
    assert!(failed.contains("value=\"fail\""));
    assert_eq!(failed.matches("data-testid=\"job-row\"").count(), 1);
    // The live fragment's URL keeps the filters.
    assert!(failed.contains("data-live-src=\"/ops/ui/jobs?status=failed&amp;text=fail&amp;sort=-name&amp;fragment=1&amp;page=1\""));

    let grouped = b.get("/ui/jobs?group=status").await.body;
    assert!(grouped.contains("data-testid=\"job-group\" data-group=\"Failed\""));
    let bad = b.get("/ui/jobs?status=nope").await;
    assert_eq!(bad.status, 400);
    assert!(bad.body.contains("unknown status"));
    let from = b.get("/ui/jobs?from=2999-01-01").await.body;
    assert_eq!(from.matches("data-testid=\"job-row\"").count(), 0);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn live_updates_tell_the_page_to_refetch_its_fragments() {
    let mut s = Server::start().await;
    let id = open_request(&mut s).await;
    let mut b = Browser::new(&s);
    b.login(ALICE).await;
    let res = b
        .http
        .get(format!("{}/ui/live?job=gated", s.base))
        .header("cookie", b.cookie.clone().unwrap())
        .send()
        .await
        .expect("live");
    assert_eq!(res.status(), 200);
    assert_eq!(res.headers()["content-type"], "text/event-stream");
    let mut events = Box::pin(eventsource_stream::Eventsource::eventsource(
        res.bytes_stream(),
    ));
    let first = tokio::time::timeout(LIMIT, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(
        (first.event.as_str(), first.data.as_str()),
        ("change", "gated")
    );
    // A decision is a change of the job.
    s.provider.expect_call("plan 2", plan("c2", "second plan"));
    s.engine
        .reject(
            &id,
            &george_core::approval::Approver::user("alice").in_group("sre"),
            "no",
        )
        .await
        .expect("rejected");
    let next = tokio::time::timeout(LIMIT, events.next())
        .await
        .unwrap()
        .unwrap()
        .unwrap();
    assert_eq!(next.event, "change");
    let frag = b.get("/ui/jobs/gated/fragment?part=events").await;
    assert_eq!(frag.status, 200);
    assert!(frag.body.contains("data-testid=\"event-log\""));
    assert!(!frag.body.contains("<html"));
    let summary = b.get("/ui/jobs/gated/fragment").await.body;
    assert!(summary.contains("data-testid=\"job-status\""));
    // Without a session, no stream.
    let anon = Browser::new(&s).get("/ui/live").await;
    assert_eq!(anon.status, 303);
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_trusted_proxy_identity_needs_no_login() {
    let secret = "a long shared proxy secret";
    let auth = support::auth().trusted_proxy(
        ProxyAuth::new("X-Proxy-Secret", secret)
            .expect("proxy")
            .group_role("sre", Role::Decide),
    );
    let mut s = Server::start_with(auth).await;
    let id = open_request(&mut s).await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let get = |path: &str| {
        http.get(format!("{}{path}", s.base))
            .header("x-proxy-secret", secret)
            .header("x-forwarded-user", "bob")
            .header("x-forwarded-groups", "sre")
    };
    let res = get("/ui/approvals").send().await.unwrap();
    assert_eq!(res.status(), 200);
    let inbox = res.text().await.unwrap();
    assert!(inbox.contains(">bob</span>"));
    assert!(inbox.contains("approve-form"));
    let csrf = field(&inbox, 0, "csrf");
    let res = http
        .post(format!("{}/ui/approvals/{id}/approve", s.base))
        .header("x-proxy-secret", secret)
        .header("x-forwarded-user", "bob")
        .header("x-forwarded-groups", "sre")
        .form(&[
            ("csrf", csrf.as_str()),
            ("digest", &field(&inbox, 0, "digest")),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 303);
    let req = s.engine.approval(&id).await.unwrap().unwrap();
    assert!(matches!(&req.status, ApprovalStatus::Approved { by, .. } if by == "human:bob"));
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_can_be_turned_off() {
    let engine = george_core::engine::Engine::builder(
        std::sync::Arc::new(george_core::memory::InMemoryStateStore::new()),
        std::sync::Arc::new(george_core::memory::InMemoryGitSource::new()),
    )
    .build()
    .expect("engine");
    let auth = AuthConfig::new().token("t0ken", Identity::new("ann", Role::Read));
    let on = george_http::router_with(
        engine.clone(),
        auth.clone(),
        george_http::ApiConfig::default(),
    );
    let off = george_http::router_with(
        engine,
        auth,
        george_http::ApiConfig::default().with_dashboard(false),
    );
    for (app, want) in [(on, 303u16), (off, 404)] {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/ui/jobs", listener.local_addr().unwrap());
        tokio::spawn(async move { axum::serve(listener, app).await });
        let client = reqwest::Client::builder()
            .redirect(reqwest::redirect::Policy::none())
            .timeout(Duration::from_secs(10))
            .build()
            .unwrap();
        let res = client.get(&url).send().await.unwrap();
        assert_eq!(res.status().as_u16(), want);
        if want == 303 {
            // Not nested: the dashboard is at /ui.
            assert!(
                res.headers()["location"]
                    .to_str()
                    .unwrap()
                    .starts_with("/ui/login")
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn with_the_source_shared_manifests_and_error_lines_are_shown() {
    let s = Server::start().await;
    // A second router on the same engine, sharing its Git source.
    let app = axum::Router::new().nest(
        "/ops",
        george_http::router_with(
            s.engine.clone(),
            support::auth(),
            george_http::ApiConfig::default().with_source(std::sync::Arc::new(s.git.clone())),
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}/ops", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await });
    let mut b = Browser::new(&s);
    b.base = base;
    b.login(READER).await;
    let catalogue = b.get("/ui/catalogue").await.body;
    assert!(
        catalogue.contains("data-testid=\"manifest-snippet\""),
        "{catalogue}"
    );
    assert!(catalogue.contains("<mark>   1 | kind: Job</mark>"));
    let job = b.get("/ui/jobs/gated").await.body;
    let commit = s.engine.commit().expect("synced").0;
    let link = format!("/ops/ui/manifest?commit={commit}&amp;path=jobs%2Fgated.yaml");
    assert!(job.contains(&link), "{job}");
    let text = b
        .get(&format!(
            "/ui/manifest?commit={commit}&path=jobs%2Fgated.yaml"
        ))
        .await;
    assert_eq!(text.status, 200);
    assert!(text.body.contains("template: gated"));
    assert!(text.body.contains("id=\"L1\""));
    // Only manifests are read.
    for path in ["README.md", "jobs%2F..%2Fsecret.yaml"] {
        let p = b
            .get(&format!("/ui/manifest?commit={commit}&path={path}"))
            .await;
        assert_eq!(p.status, 404, "{path}");
    }
    s.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_job_page_shows_the_parent_and_child_tree() {
    let mut s = Server::start().await;
    let _gated = s.next_open().await;
    let lead = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: lead}
spec: {model: m, system_prompt: You delegate., may_order: [leaf]}
";
    let parent = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: tree}
spec:
  steps:
    - {id: split, agent: lead, instructions: Delegate.}
";
    let leaf = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: leaf}
spec:
  steps:
    - {id: work, command: {program: 'true'}}
";
    s.provider.expect_call(
        "order",
        george_core::scripted::tool_call(
            "o1",
            "order_job",
            serde_json::json!({"template": "leaf", "params": {}, "wait": true, "key": "one"}),
        ),
    );
    s.provider.expect_call(
        "done",
        george_core::scripted::tool_call(
            "o2",
            "report_success",
            serde_json::json!({"summary": "delegated"}),
        ),
    );
    s.git.commit_files(
        "main",
        [
            ("agent-specs/lead.yaml", lead.to_string()),
            ("task-templates/tree.yaml", parent.to_string()),
            ("task-templates/leaf.yaml", leaf.to_string()),
            ("jobs/tree.yaml", support::job("tree", "tree", "")),
        ],
        "a job that orders a child",
    );
    s.engine.sync().await.expect("sync");
    assert_eq!(
        s.engine.wait_finished("tree", LIMIT).await.expect("ends"),
        george_core::state::JobStatus::Succeeded
    );
    let child = "tree--split--one";
    let mut b = Browser::new(&s);
    b.login(READER).await;
    let page = b.get("/ui/jobs/tree").await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert!(
        page.body.contains("data-testid=\"job-tree\""),
        "{}",
        page.body
    );
    assert!(
        page.body
            .contains(&format!("href=\"/ops/ui/jobs/{child}\"")),
        "the child is linked: {}",
        page.body
    );
    let tree = &page.body[page
        .body
        .find("data-testid=\"child-job\"")
        .expect("a child row")..];
    assert!(tree[..400.min(tree.len())].contains("Succeeded"), "{tree}");
    let page = b.get(&format!("/ui/jobs/{child}")).await;
    assert_eq!(page.status, 200);
    assert!(
        page.body.contains("data-testid=\"parent-job\""),
        "{}",
        page.body
    );
    assert!(
        page.body.contains("href=\"/ops/ui/jobs/tree\""),
        "the parent is linked"
    );
    s.shutdown().await;
}
