//! The client commands: `jobs`, `describe job`, `logs [-f]`, `approvals`,
//! `show approval`, `approve`, `reject`, `cancel`, `retry` — tables for people,
//! `-o json|yaml` for scripts.

use std::time::Duration;

use serde_json::{Value, json};

use crate::client::{CallError, Client, enc};

/// How a client command prints.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub(crate) enum Output {
    /// Aligned columns (the default).
    Table,
    /// The API's JSON.
    Json,
    /// The API's answer as YAML.
    Yaml,
}

/// Prints `value` as JSON or YAML; `false` when the table form is asked for.
fn structured(value: &Value, out: Output) -> bool {
    match out {
        Output::Json => {
            println!(
                "{}",
                serde_json::to_string_pretty(value).unwrap_or_default()
            );
            true
        }
        Output::Yaml => {
            print!("{}", serde_saphyr::to_string(value).unwrap_or_default());
            true
        }
        Output::Table => false,
    }
}

/// Prints rows as aligned columns under `header`.
fn table(header: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = header.iter().map(|h| h.len()).collect();
    for r in rows {
        for (i, c) in r.iter().enumerate() {
            if let Some(w) = widths.get_mut(i) {
                *w = (*w).max(c.chars().count());
            }
        }
    }
    let line = |cells: Vec<String>| {
        let mut s = String::new();
        for (i, c) in cells.iter().enumerate() {
            if i + 1 == cells.len() {
                s.push_str(c);
            } else {
                s.push_str(&format!("{c:<w$}  ", w = widths[i]));
            }
        }
        println!("{}", s.trim_end());
    };
    line(header.iter().map(|h| h.to_string()).collect());
    for r in rows {
        line(r.clone());
    }
}

fn s(v: &Value) -> String {
    match v {
        Value::String(x) => x.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `george jobs`.
pub(crate) async fn jobs(
    c: &Client,
    query: &[(&str, Option<String>)],
    out: Output,
) -> Result<(), CallError> {
    let q: Vec<String> = query
        .iter()
        .filter_map(|(k, v)| v.as_ref().map(|v| format!("{k}={}", enc(v))))
        .collect();
    let path = if q.is_empty() {
        "/jobs".to_string()
    } else {
        format!("/jobs?{}", q.join("&"))
    };
    let v = c.get(&path).await?;
    if structured(&v, out) {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["jobs"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|j| {
            vec![
                s(&j["name"]),
                s(&j["status"]),
                s(&j["template"]),
                format!("{}/{}", s(&j["steps_succeeded"]), s(&j["steps_total"])),
                s(&j["generation"]),
                format!("${:.4}", j["usage"]["cost_usd"].as_f64().unwrap_or(0.0)),
            ]
        })
        .collect();
    table(
        &["NAME", "STATUS", "TEMPLATE", "STEPS", "GEN", "COST"],
        &rows,
    );
    Ok(())
}

/// `george describe job NAME`.
pub(crate) async fn describe_job(c: &Client, name: &str, out: Output) -> Result<(), CallError> {
    let v = c.get(&format!("/jobs/{}", enc(name))).await?;
    if structured(&v, out) {
        return Ok(());
    }
    let sm = &v;
    println!("Name:        {}", s(&sm["name"]));
    println!("Status:      {}", s(&sm["status"]));
    println!("Template:    {}", s(&sm["template"]));
    println!(
        "Generation:  {}  (commit {})",
        s(&sm["generation"]),
        s(&sm["commit"])
    );
    println!("Path:        {}", s(&sm["path"]));
    println!(
        "Cost:        ${:.4}",
        sm["usage"]["cost_usd"].as_f64().unwrap_or(0.0)
    );
    println!();
    let rows: Vec<Vec<String>> = v["steps"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|st| {
            vec![
                s(&st["id"]),
                s(&st["state"]),
                s(&st["agent"]),
                s(&st["attempt"]),
                s(&st["approval_request"]),
                s(&st["message"]),
            ]
        })
        .collect();
    table(
        &["STEP", "STATE", "AGENT", "ATTEMPT", "APPROVAL", "MESSAGE"],
        &rows,
    );
    Ok(())
}

/// `george logs NAME [-f]`: the event log; with `follow`, polls for new events until
/// the job is finished.
pub(crate) async fn logs(
    c: &Client,
    name: &str,
    follow: bool,
    out: Output,
) -> Result<(), CallError> {
    let mut after = 0u64;
    loop {
        let v = c
            .get(&format!("/jobs/{}/events?after={after}", enc(name)))
            .await?;
        let events = v["events"].as_array().cloned().unwrap_or_default();
        for e in &events {
            match out {
                Output::Table => println!(
                    "{:>6}  {:<16} {:<20} {:<12} {}",
                    s(&e["seq"]),
                    s(&e["actor"]),
                    s(&e["action"]),
                    s(&e["step"]),
                    s(&e["detail"])
                ),
                Output::Json => println!("{e}"),
                Output::Yaml => print!("---\n{}", serde_saphyr::to_string(e).unwrap_or_default()),
            }
        }
        after = v["next_after"].as_u64().unwrap_or(after);
        if !events.is_empty() {
            continue;
        }
        if !follow {
            return Ok(());
        }
        let job = c.get(&format!("/jobs/{}", enc(name))).await?;
        let status = job["status"].as_str().unwrap_or("");
        if matches!(status, "succeeded" | "failed" | "cancelled") {
            return Ok(());
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

/// `george approvals [--all]`.
pub(crate) async fn approvals(c: &Client, all: bool, out: Output) -> Result<(), CallError> {
    let path = if all {
        "/approvals?status=all"
    } else {
        "/approvals"
    };
    let v = c.get(path).await?;
    if structured(&v, out) {
        return Ok(());
    }
    let rows: Vec<Vec<String>> = v["approvals"]
        .as_array()
        .map(Vec::as_slice)
        .unwrap_or_default()
        .iter()
        .map(|a| {
            vec![
                s(&a["id"]),
                s(&a["status"]),
                s(&a["agent"]),
                s(&a["actions"]),
                s(&a["summary"]),
            ]
        })
        .collect();
    table(&["ID", "STATUS", "AGENT", "ACTIONS", "SUMMARY"], &rows);
    Ok(())
}

/// `george show approval ID`: the request with the plan's exact actions.
pub(crate) async fn show_approval(c: &Client, id: &str, out: Output) -> Result<(), CallError> {
    let v = c.get(&format!("/approvals/{}", enc(id))).await?;
    if structured(&v, out) {
        return Ok(());
    }
    let sm = &v;
    println!("Approval:  {}", s(&sm["id"]));
    println!("Job/step:  {} / {}", s(&sm["job"]), s(&sm["step"]));
    println!("Status:    {}", s(&sm["status"]));
    println!("Digest:    {}", s(&sm["digest"]));
    println!("Summary:   {}", s(&sm["summary"]));
    println!("Plan:");
    for (i, a) in v["plan"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .iter()
        .enumerate()
    {
        println!("  {}. {} {}", i + 1, s(&a["tool"]), a["arguments"]);
    }
    Ok(())
}

/// `george approve ID [--note]` / `george reject ID --reason`: decides, as the token's
/// identity, on the plan whose digest the server shows now (so a plan changed since is
/// refused, not approved).
pub(crate) async fn decide(
    c: &Client,
    id: &str,
    approve: bool,
    text: Option<String>,
    out: Output,
) -> Result<(), CallError> {
    let detail = c.get(&format!("/approvals/{}", enc(id))).await?;
    let digest = detail["digest"].clone();
    let (verb, body) = if approve {
        ("approve", json!({"note": text, "digest": digest}))
    } else {
        (
            "reject",
            json!({"reason": text.unwrap_or_default(), "digest": digest}),
        )
    };
    let v = c
        .post(&format!("/approvals/{}/{verb}", enc(id)), body)
        .await?;
    if !structured(&v, out) {
        println!("{id}: {}", s(&v["status"]));
    }
    Ok(())
}

/// `george cancel NAME` / `george retry NAME`.
pub(crate) async fn job_action(
    c: &Client,
    name: &str,
    action: &str,
    reason: Option<String>,
    out: Output,
) -> Result<(), CallError> {
    let v = c
        .post(
            &format!("/jobs/{}/{action}", enc(name)),
            json!({"reason": reason}),
        )
        .await?;
    if !structured(&v, out) {
        println!("{name}: {}", s(&v["status"]));
    }
    Ok(())
}
