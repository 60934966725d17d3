//! The dashboard in a real browser: `george serve` runs the quickstart's repositories (its
//! agents pointed at a loopback server speaking the OpenAI wire format with the
//! quickstart's answers), and `e2e/dashboard.mjs` drives headless Debian chromium through
//! playwright-core against its `/ui`: a reviewer rejects plans 1 and 2 from the inbox with
//! the seed's reasons, approves plan 3 and watches the job succeed on its page; a
//! read-only identity cannot decide; filters survive a reload; axe-core finds no serious
//! or critical violation; every view is captured at desktop and phone widths, light and
//! dark, under `target/dashboard-screenshots/`.
//!
//! Needs Node.js 20+, chromium and the npm packages of `e2e/package.json`:
//! `scripts/e2e-setup.sh` installs them (into a per-machine cache) and `.ci/run` exports
//!
//! - `GEORGE_E2E_NODE_MODULES`: the `node_modules` holding playwright-core and axe-core;
//! - `GEORGE_E2E_CHROMIUM`: the browser (default `/usr/bin/chromium`).
//!
//! Without them the test says so loudly and passes without running.

#[path = "../../examples/support/mod.rs"]
mod support;

mod common;
#[path = "common/quickstart.rs"]
mod quickstart;

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Server, wait_status};
use quickstart::{configure, scenario, token_entry};
use serde_json::Value;

const REVIEWER_TOKEN: &str = "dashboard-reviewer-token-0123456789";
const VIEWER_TOKEN: &str = "dashboard-viewer-token-0123456789";
const REVIEWER: &str = "reviewer";
const VIEWER: &str = "viewer";

/// What the browser run needs, or `None` (after saying so loudly) when it must be skipped.
fn browser_setup() -> Option<(PathBuf, PathBuf)> {
    let skip = |why: String| {
        let _ = writeln!(
            std::io::stderr(),
            "\n!!! The dashboard's browser test DID NOT RUN: {why}.\n\
             !!! Run scripts/e2e-setup.sh (as root: it installs chromium) and export\n\
             !!! GEORGE_E2E_NODE_MODULES=<the directory it prints>/node_modules (.ci/run does) !!!\n"
        );
        None
    };
    let modules = match std::env::var("GEORGE_E2E_NODE_MODULES") {
        Ok(m) if !m.is_empty() => PathBuf::from(m),
        _ => return skip("GEORGE_E2E_NODE_MODULES is not set".into()),
    };
    for package in ["playwright-core/package.json", "axe-core/axe.min.js"] {
        if !modules.join(package).is_file() {
            return skip(format!("{} is missing", modules.join(package).display()));
        }
    }
    let chromium = std::env::var("GEORGE_E2E_CHROMIUM")
        .ok()
        .filter(|c| !c.is_empty())
        .map_or_else(|| PathBuf::from("/usr/bin/chromium"), PathBuf::from);
    if !chromium.is_file() {
        return skip(format!("no browser at {}", chromium.display()));
    }
    match Command::new("node").arg("--version").output() {
        Ok(o) if o.status.success() => {}
        _ => return skip("no `node` program".into()),
    }
    Some((modules, chromium))
}

/// `target/dashboard-screenshots` of the workspace (emptied), or `GEORGE_E2E_SCREENSHOTS`.
fn screenshot_dir() -> PathBuf {
    if let Ok(d) = std::env::var("GEORGE_E2E_SCREENSHOTS")
        && !d.is_empty()
    {
        return PathBuf::from(d);
    }
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let target = std::env::var_os("CARGO_TARGET_DIR")
        .map_or_else(|| workspace.join("target"), PathBuf::from);
    let dir = target.join("dashboard-screenshots");
    let _ = std::fs::remove_dir_all(&dir);
    dir
}

/// `GET {url}/api/v1{path}` as `token`.
async fn api(url: &str, token: &str, path: &str) -> Value {
    let r = reqwest::Client::new()
        .get(format!("{url}/api/v1{path}"))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success(), "GET {path}: {}", r.status());
    r.json().await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reviewer_decides_the_quickstart_plans_in_a_real_browser() {
    let Some((modules, chromium)) = browser_setup() else {
        return;
    };
    let model = quickstart::model().await;
    let dir = tempfile::tempdir().unwrap();
    let s = scenario(dir.path());
    support::point_agents_at(&s, "fake", "gpt-4.1-mini", None, None).unwrap();
    let tokens = format!(
        "{}\n{}",
        token_entry(REVIEWER_TOKEN, REVIEWER, "decide"),
        token_entry(VIEWER_TOKEN, VIEWER, "read")
    );
    configure(&s, model.base_url(), &tokens);
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_millis(300));
    let (server, url) = Server::start(&s.root.join("george.toml"), &[]);

    let shots = screenshot_dir();
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("../e2e/dashboard.mjs");
    eprintln!(
        "dashboard e2e: {url}/ui/ (node {}), screenshots in {}",
        script.display(),
        shots.display()
    );
    let started = Instant::now();
    let mut node = Command::new("node");
    node.arg(&script)
        .current_dir(dir.path())
        .env("NODE_PATH", &modules)
        .env("GEORGE_E2E_NODE_MODULES", &modules)
        .env("GEORGE_E2E_CHROMIUM", &chromium)
        .env("GEORGE_E2E_BASE", &url)
        .env("GEORGE_E2E_REVIEWER_TOKEN", REVIEWER_TOKEN)
        .env("GEORGE_E2E_REVIEWER_USER", REVIEWER)
        .env("GEORGE_E2E_VIEWER_TOKEN", VIEWER_TOKEN)
        .env("GEORGE_E2E_VIEWER_USER", VIEWER)
        .env("GEORGE_E2E_JOB", support::JOB)
        .env("GEORGE_E2E_REASON_1", support::REJECT_1)
        .env("GEORGE_E2E_REASON_2", support::REJECT_2)
        .env("GEORGE_E2E_SCREENSHOTS", &shots)
        .stdin(Stdio::null());
    // The script's output streams through (stdout and stderr are inherited): cargo test
    // shows it when the test fails, and with --nocapture as it goes.
    let status = tokio::task::spawn_blocking(move || node.status().expect("node"))
        .await
        .unwrap();
    eprintln!(
        "dashboard e2e: node exited with {status} after {:.1} s",
        started.elapsed().as_secs_f64()
    );
    assert!(
        status.success(),
        "e2e/dashboard.mjs failed ({status}): see its output above, and {}",
        shots.display()
    );

    let u = url.clone();
    tokio::task::spawn_blocking(move || wait_status(&u, REVIEWER_TOKEN, support::JOB, "succeeded"))
        .await
        .unwrap();
    let job = api(&url, REVIEWER_TOKEN, &format!("/jobs/{}", support::JOB)).await;
    assert_eq!(job["status"], "succeeded", "{job}");
    assert!(
        support::app_values(&s).contains("replicaCount: 2"),
        "the approved change landed"
    );
    let approvals = api(&url, VIEWER_TOKEN, "/approvals?status=all").await;
    let statuses: Vec<&str> = approvals["approvals"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["status"].as_str().unwrap())
        .collect();
    assert_eq!(
        statuses,
        ["rejected", "rejected", "approved"],
        "{approvals}"
    );
    for a in approvals["approvals"].as_array().unwrap() {
        let id = a["id"].as_str().unwrap();
        let detail = api(&url, VIEWER_TOKEN, &format!("/approvals/{id}")).await;
        let by = detail["decided_by"].as_str().unwrap_or_default();
        assert!(by.contains(REVIEWER), "decided by {REVIEWER}: {detail}");
    }
    assert_eq!(model.received().len(), 5, "five model calls");
    server.stop();
}
