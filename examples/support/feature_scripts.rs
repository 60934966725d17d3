//! The scripted agents of seed 001's feature delivery (`support/feature.rs`), step by step,
//! for both views of the rollout ([`Rollout`]): the file `spawn_cluster` writes, or the real
//! API server (`support/feature_k8s.rs`). The scripts are the same; only the call that
//! observes the rollout, how its result is read, and the calls that diagnose a stuck
//! rollout differ.

use std::collections::HashMap;
use std::sync::Arc;

use george::provider::ChatResponse;
use george::scripted::tool_call;
use serde_json::{Value, json};

use super::{Agents, CHART, FEATURE, INCIDENT, OBSERVED, Script, Turn};

/// The Deployment the chart renders (its release name).
pub const DEPLOYMENT: &str = "darwin-store";

/// Where the agents read the rollout of darwin-store from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rollout {
    /// The file `spawn_cluster` writes (`run_command cat observed/darwin-store.txt`):
    /// `ready: 4/5 revision: 2 (…)` when stuck, `ready: 5/5 revision: 3` when fixed.
    File,
    /// The real API server: `k8s_rollout_status` of the Deployment (stuck: the Deployment
    /// controller's progress deadline exceeded with 4 ready; fixed: done with 5 ready), and
    /// `k8s_list` of its pods for the cause.
    Kube,
}

impl Rollout {
    /// The call that reads the rollout.
    fn observe(self) -> Result<ChatResponse, String> {
        match self {
            Rollout::File => call(
                "run_command",
                json!({ "program": "cat", "args": [OBSERVED] }),
            ),
            Rollout::Kube => call("k8s_rollout_status", json!({ "name": DEPLOYMENT })),
        }
    }

    /// Whether an observation shows the rollout stuck at 4 of 5 ready.
    fn stuck(self, last: &str) -> bool {
        match self {
            Rollout::File => last.contains("4/5"),
            Rollout::Kube => {
                has_line(last, "done: false")
                    && has_line(last, "readyReplicas: 4")
                    && last.contains("rollout stalled: progress deadline exceeded")
            }
        }
    }

    /// Whether an observation shows the rollout finished with 5 of 5 ready (the fixed
    /// revision: nothing else can finish once the code needs the database).
    fn done(self, last: &str) -> bool {
        match self {
            Rollout::File => last.contains("ready: 5/5 revision: 3"),
            Rollout::Kube => has_line(last, "done: true") && has_line(last, "readyReplicas: 5"),
        }
    }

    /// The calls that find why the rollout is stuck, in order, each with the text its
    /// result must contain; the chart comes last.
    fn diagnosis(self) -> Vec<(&'static str, Value, &'static str)> {
        let chart = (
            "app_read_file",
            json!({ "path": CHART }),
            "kind: Deployment",
        );
        match self {
            Rollout::File => vec![chart],
            Rollout::Kube => vec![
                (
                    "k8s_list",
                    json!({"kind": "Pod", "label_selector": "app=darwin-store"}),
                    "KeyError: 'DB_HOST'",
                ),
                chart,
            ],
        }
    }
}

/// Whether `text` has the line `line` (leading and trailing blanks aside).
fn has_line(text: &str, line: &str) -> bool {
    text.lines().any(|l| l.trim() == line)
}

fn call(name: &str, args: Value) -> Result<ChatResponse, String> {
    Ok(tool_call(&format!("call_{name}"), name, args))
}

fn expect(last: &str, needle: &str) -> Result<(), String> {
    last.contains(needle)
        .then_some(())
        .ok_or_else(|| format!("expected a tool result containing {needle:?}, got {last:?}"))
}

fn read(path: &str) -> Result<ChatResponse, String> {
    call("app_read_file", json!({ "path": path }))
}

fn defer(seconds: u64, reason: &str) -> Result<ChatResponse, String> {
    call("defer", json!({ "seconds": seconds, "reason": reason }))
}

/// The unfinished jobs of `template` in an `ops_journal` result.
fn open_jobs(journal: &str, template: &str) -> Vec<String> {
    let v: Value = serde_json::from_str(journal).unwrap_or(Value::Null);
    let jobs = v
        .get("jobs")
        .and_then(Value::as_array)
        .cloned()
        .unwrap_or_default();
    jobs.iter()
        .filter(|j| j["template"] == template)
        .filter(|j| {
            !matches!(
                j["status"].as_str().unwrap_or(""),
                "Succeeded" | "Failed" | "Cancelled" | "succeeded" | "failed" | "cancelled"
            )
        })
        .filter_map(|j| j["name"].as_str().map(str::to_string))
        .collect()
}

const MODELS_WITH_DB: &str = r#""""darwin-store: products with images, stored in PostgreSQL."""

import os
from dataclasses import dataclass

import psycopg

DB = dict(
    host=os.environ["DB_HOST"],
    port=os.environ["DB_PORT"],
    user=os.environ["DB_USER"],
    password=os.environ["DB_PASSWORD"],
    dbname=os.environ["DB_NAME"],
)


@dataclass
class Product:
    id: int
    name: str
    price_cents: int
    image_data: str | None = None  # base64, at most 512 KiB


def connect():
    return psycopg.connect(**DB)
"#;

const DB_ENV: &str = "          env:
            - {name: DB_HOST, value: {{ .Values.postgres.host | quote }}}
            - {name: DB_PORT, value: {{ .Values.postgres.port | quote }}}
            - {name: DB_USER, value: {{ .Values.postgres.user | quote }}}
            - {name: DB_NAME, value: {{ .Values.postgres.database | quote }}}
            - name: DB_PASSWORD
              valueFrom: {secretKeyRef: {name: {{ .Values.postgres.passwordSecret }}, key: password}}
          ports: [{containerPort: 8080}]";

/// The agents of the event, step by step, reading the rollout file.
pub fn agents() -> Agents {
    agents_for(Rollout::File)
}

/// The agents of the event, step by step, reading the rollout through `rollout`.
pub fn agents_for(rollout: Rollout) -> Agents {
    let mut s: HashMap<&'static str, Script> = HashMap::new();
    // Architect: reads the model and the chart, then submits the plan (read tools only).
    s.insert("plan", Box::new(|t: &Turn| match t.turn {
        0 => read("app/models.py"),
        1 => {
            expect(t.last, "_products: list[Product] = []")?;
            read(CHART)
        }
        _ => {
            expect(t.last, "kind: Deployment")?;
            call("submit_plan", json!({
                "summary": "Product images: Frontend — file input on Add Product, base64 \
                    thumbnails in Product Inventory. Backend — replace the in-memory list with \
                    PostgreSQL (DB_HOST, DB_PORT, DB_USER, DB_PASSWORD, DB_NAME from the \
                    environment) and add image_data. Risk: medium (size-capped images). \
                    Rollback: revert the commit.",
                "actions": []
            }))
        }
    }));
    // Developer: commits the code, as planned — not the chart.
    s.insert("implement", Box::new(|t: &Turn| match t.turn {
        0 => call("app_commit", json!({
            "message": "darwin-store: product images, stored in PostgreSQL",
            "changes": [
                {"path": "app/models.py", "content": MODELS_WITH_DB},
                {"path": "static/index.html",
                 "find": "  <input name=\"price_cents\" type=\"number\">",
                 "replace": "  <input name=\"price_cents\" type=\"number\">\n  <input name=\"image\" type=\"file\" accept=\"image/*\">"}
            ]
        })),
        _ => {
            expect(t.last, "commit")?;
            call("report_success", json!({"summary": "implemented and pushed", "outputs": {"pushed": true}}))
        }
    }));
    // sysAdmin, verifying: waits for CI once, then reads the rollout; when it is stuck,
    // diagnoses it (the pods, where there are some to read; the chart).
    s.insert("verify", Box::new(move |t: &Turn| match (t.attempt, t.turn) {
        (1, _) => defer(3, "CI/CD is building and rolling out the new code"),
        (_, 0) => rollout.observe(),
        (_, 1) if !rollout.stuck(t.last) => defer(1, "the rollout is still in progress"),
        (_, n) => {
            let probes = rollout.diagnosis();
            if let Some((_, _, needle)) = n.checked_sub(2).and_then(|i| probes.get(i)) {
                expect(t.last, needle)?;
            }
            if let Some((tool, args, _)) = probes.get(n - 1) {
                return call(tool, args.clone());
            }
            if t.last.contains("DB_HOST") {
                return Err("the chart already has DB_HOST".into());
            }
            call("report_success", json!({
                "summary": "rollout stuck at 4/5: the new pods crash (KeyError: 'DB_HOST')",
                "outputs": {"healthy": false, "cause": "the chart passes no DB_HOST, DB_PORT, \
                    DB_USER, DB_PASSWORD or DB_NAME to the container"}
            }))
        }
    }));
    // sysAdmin, fixing under the target's lock: journal, chart fix, resolve what it closes.
    s.insert("fix", Box::new(|t: &Turn| match t.turn {
        0 => call("ops_journal", json!({})),
        1 => {
            // The detector polls on its own clock: when this step saw the stuck rollout
            // first, its job is not in the journal yet, and the fix waits for it.
            if open_jobs(t.last, "investigate-rollout").is_empty() {
                return defer(1, "the detector has not opened its investigation yet");
            }
            call("app_commit", json!({
                "message": "darwin-store chart: pass the database settings to the container",
                "changes": [{"path": CHART, "find": "          ports: [{containerPort: 8080}]", "replace": DB_ENV}]
            }))
        }
        2 => {
            expect(t.last, "commit")?;
            call("ops_journal", json!({}))
        }
        _ => call("report_success", json!({
            "summary": "the chart now passes the database settings; revision 3 rolls out",
            "outputs": {"fixed": CHART},
            "resolves": open_jobs(t.last, "investigate-rollout")
        })),
    }));
    // Aligner: watches; on 4/5 it orders the investigation once (idempotent by key).
    s.insert("watch", Box::new(move |t: &Turn| match t.turn {
        0 => rollout.observe(),
        1 if !rollout.stuck(t.last) => defer(1, "the rollout is not stuck"),
        1 => call("order_job", json!({
            "template": "investigate-rollout",
            "params": {"service": "darwin-store", "signal": "darwin-store has 4/5 replicas ready"},
            "wait": false,
            "key": "stuck-rollout"
        })),
        _ => {
            expect(t.last, INCIDENT)?;
            call("report_success", json!({"summary": "opened an investigation of darwin-store's rollout"}))
        }
    }));
    // sysAdmin on the incident: journal and chart → cause.
    s.insert(
        "investigate",
        Box::new(|t: &Turn| match t.turn {
            0 => call("ops_journal", json!({})),
            1 => {
                expect(t.last, FEATURE)?;
                read(CHART)
            }
            _ => call(
                "report_success",
                json!({
                    "summary": "revision 2 needs PostgreSQL settings the chart does not pass",
                    "outputs": {"cause": "no DB_* variables in helm/templates/deployment.yaml"}
                }),
            ),
        }),
    );
    // sysAdmin, remediating: the feature job already owns the fix, so it waits for it.
    s.insert(
        "remediate",
        Box::new(|t: &Turn| match t.turn {
            0 => call("ops_journal", json!({})),
            _ => defer(1, "darwin-store-product-images is fixing the chart"),
        }),
    );
    // sysAdmin, confirming (where `confirm` is an agent's step, as on Kubernetes): defers
    // until the fixed revision is rolled out.
    s.insert(
        "confirm",
        Box::new(move |t: &Turn| match t.turn {
            0 => rollout.observe(),
            _ if !rollout.done(t.last) => defer(1, "the fixed revision is not rolled out yet"),
            _ => call(
                "report_success",
                json!({
                    "summary": "darwin-store is rolled out: 5/5 ready with the database settings"
                }),
            ),
        }),
    );
    Agents {
        scripts: Arc::new(s),
        ..Agents::default()
    }
}
