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
    print!("{}", approval_text(&v));
    Ok(())
}

/// `show approval`'s table form: the request, then each action with what it would
/// change — the tool's summary (`!` before it when the call would be refused or fail)
/// and its unified diff, printed as is (not indented, so it can be copied as a patch).
fn approval_text(v: &Value) -> String {
    use std::fmt::Write as _;
    let mut t = String::new();
    let _ = writeln!(t, "Approval:  {}", s(&v["id"]));
    let _ = writeln!(t, "Job/step:  {} / {}", s(&v["job"]), s(&v["step"]));
    let _ = writeln!(t, "Status:    {}", s(&v["status"]));
    let _ = writeln!(t, "Digest:    {}", s(&v["digest"]));
    let _ = writeln!(t, "Summary:   {}", s(&v["summary"]));
    let _ = writeln!(t, "Plan:");
    let previews = v["previews"].as_array().cloned().unwrap_or_default();
    let plan = v["plan"].as_array().cloned().unwrap_or_default();
    for (i, a) in plan.iter().enumerate() {
        let _ = writeln!(t, "  {}. {} {}", i + 1, s(&a["tool"]), a["arguments"]);
        let Some(p) = previews.iter().find(|p| p["index"] == json!(i + 1)) else {
            continue;
        };
        if let Some(err) = p["error"].as_str() {
            let _ = writeln!(t, "     ! no preview: {err}");
        }
        let preview = &p["preview"];
        if let Some(summary) = preview["summary"].as_str() {
            let mark = if preview["is_error"] == json!(true) {
                "! "
            } else {
                ""
            };
            let _ = writeln!(t, "     {mark}{summary}");
        }
        if let Some(diff) = preview["diff"].as_str() {
            t.push('\n');
            t.push_str(diff);
            if !diff.ends_with('\n') {
                t.push('\n');
            }
            if preview["truncated"] == json!(true) {
                t.push_str("[diff truncated]\n");
            }
            t.push('\n');
        }
    }
    t
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_approval_prints_each_action_with_its_diff() {
        let diff = "diff --git a/a b/a\n--- a/a\n+++ b/a\n@@ -1 +1 @@\n-x\n+y\n";
        let v = json!({
            "id": "j~plan~1~1", "job": "j", "step": "plan", "status": "open",
            "digest": "sha256:00", "summary": "change a",
            "plan": [
                {"tool": "git_commit", "arguments": {"message": "m"}},
                {"tool": "git_commit", "arguments": {"message": "n"}},
                {"tool": "gone", "arguments": {}},
                {"tool": "run_command", "arguments": {}}
            ],
            "previews": [
                {"index": 1, "tool": "git_commit", "preview": {
                    "summary": "would commit \"m\"", "diff": diff, "is_error": false, "truncated": false}},
                {"index": 2, "tool": "git_commit", "preview": {
                    "summary": "refused", "is_error": true, "truncated": false}},
                {"index": 3, "tool": "gone", "error": "no tool named \"gone\""},
                {"index": 4, "tool": "run_command"}
            ]
        });
        let text = approval_text(&v);
        let expected = format!(
            "  1. git_commit {{\"message\":\"m\"}}\n     would commit \"m\"\n\n{diff}\n  \
             2. git_commit {{\"message\":\"n\"}}\n     ! refused\n  \
             3. gone {{}}\n     ! no preview: no tool named \"gone\"\n  \
             4. run_command {{}}\n"
        );
        assert!(text.ends_with(&expected), "{text}");
        assert!(text.starts_with("Approval:  j~plan~1~1\n"), "{text}");
    }
}
