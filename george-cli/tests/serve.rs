//! `george serve` and the client commands, as processes: a job whose plan is rejected
//! twice and approved once with `george reject` / `george approve` is driven to
//! `succeeded`; a read-only token cannot decide; SIGTERM stops the server cleanly. The
//! model is a loopback server speaking the OpenAI wire format.

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use george_llm::replay::{ReplayServer, Reply};
use serde_json::{Value, json};

const ALICE: &str = "alice-token-0123456789";
const READER: &str = "reader-token-0123456789";

/// SHA-256 hex through the `sha256sum` program, as an operator makes a token file.
fn sha256_hex(s: &str) -> String {
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    use std::io::Write;
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .split_whitespace()
        .next()
        .unwrap()
        .to_string()
}

fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// The answer of one planning call: a plan of one `run_command` echo.
fn plan(n: usize) -> Reply {
    let args = json!({"summary": format!("plan {n}"),
        "actions": [{"tool": "run_command", "arguments": {"program": "echo", "args": [format!("change {n}")]}}]});
    let body = json!({"id": format!("chatcmpl-{n}"), "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_{n}"), "type": "function",
                 "function": {"name": "submit_plan", "arguments": args.to_string()}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}});
    Reply::json(200, body.to_string())
}

fn setup(root: &Path, model_url: &str) {
    let ops = root.join("ops");
    std::fs::create_dir_all(&ops).unwrap();
    git(&ops, &["init", "-q", "-b", "main"]);
    write(
        &ops,
        "agent-specs/planner.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: AgentSpec\nmetadata: {name: planner}\nspec:\n  provider: fake\n  model: m\n  system_prompt: You plan.\n  tools: [run_command]\n",
    );
    write(
        &ops,
        "task-templates/t.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {name: t}\nspec:\n  steps:\n    - {id: plan, agent: planner, instructions: Plan., approval: {required: true, approvers: ['user:alice']}}\n    - {id: execute, depends_on: [plan], execute_approved: plan}\n",
    );
    write(
        &ops,
        "jobs/j.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n",
    );
    git(&ops, &["add", "-A"]);
    git(&ops, &["commit", "-q", "-m", "order j"]);
    write(
        root,
        "providers.yaml",
        &format!("providers:\n  - name: fake\n    kind: openai\n    base_url: {model_url}\n"),
    );
    write(
        root,
        "tokens.toml",
        &format!(
            "[tokens.{}]\nuser = \"alice\"\nroles = [\"decide\"]\n\n[tokens.{}]\nuser = \"reader\"\nroles = [\"read\"]\n",
            sha256_hex(ALICE),
            sha256_hex(READER)
        ),
    );
    write(
        root,
        "george.toml",
        "engine_id = \"engine-cli\"\n\n[source]\npath = \"ops\"\npoll_interval_ms = 200\n\n[store]\nsqlite = \"george.db\"\n\n[providers]\nprofiles = \"providers.yaml\"\nstream = false\n\n[commands]\nprograms = [\"echo\"]\n\n[http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n",
    );
}

/// The server process, killed when dropped (a failed assertion leaves no orphan).
struct Server(Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `george serve` in `root`, and the URL it prints once it listens.
fn serve(root: &Path) -> (Server, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_george"))
        .args(["serve", "--config"])
        .arg(root.join("george.toml"))
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("george serve");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .to_string();
    (Server(child), url)
}

fn george(url: &str, token: &str, args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_george"))
        .args(args)
        .env("GEORGE_URL", url)
        .env("GEORGE_TOKEN", token)
        .output()
        .expect("george");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn json_of(url: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out, err) = george(url, ALICE, &all);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Waits for an open approval request other than those in `seen`.
fn next_open(url: &str, seen: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = json_of(url, &["approvals"]);
        let open = v["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["id"].as_str())
            .find(|id| !seen.iter().any(|s| s == id))
            .map(String::from);
        if let Some(id) = open {
            return id;
        }
        assert!(Instant::now() < deadline, "no new approval request");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_driven_to_success_from_the_shell() {
    let model = ReplayServer::start(vec![plan(1), plan(2), plan(3)]).await;
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), model.base_url());
    let (mut server, url) = serve(dir.path());
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || {
        let url = url2;
        let mut seen = Vec::new();
        for reason in ["too many replicas", "keep the HPA off"] {
            let id = next_open(&url, &seen);
            // A read-only identity cannot decide.
            let (code, _, err) = george(&url, READER, &["reject", &id, "--reason", "no"]);
            assert_eq!(code, 3, "{err}");
            assert!(err.contains("403"), "{err}");
            let (code, out, err) = george(&url, ALICE, &["reject", &id, "--reason", reason]);
            assert_eq!(code, 0, "{err}");
            assert!(out.contains("rejected"), "{out}");
            seen.push(id);
        }
        let id = next_open(&url, &seen);
        let (code, out, _) = george(&url, ALICE, &["show", "approval", &id]);
        assert_eq!(code, 0);
        assert!(
            out.contains("run_command") && out.contains("change 3"),
            "{out}"
        );
        let (code, _, err) = george(&url, ALICE, &["approve", &id, "--note", "go"]);
        assert_eq!(code, 0, "{err}");
        // A second, different decision is refused.
        let (code, _, err) = george(&url, ALICE, &["reject", &id, "--reason", "changed my mind"]);
        assert_eq!(code, 3, "{err}");
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let v = json_of(&url, &["describe", "job", "j"]);
            if v["status"] == "succeeded" {
                break;
            }
            assert!(Instant::now() < deadline, "not succeeded: {v}");
            std::thread::sleep(Duration::from_millis(100));
        }
        let (code, out, _) = george(&url, ALICE, &["jobs"]);
        assert_eq!(code, 0);
        assert!(
            out.lines()
                .any(|l| l.starts_with("j ") && l.contains("succeeded")),
            "{out}"
        );
        let (code, out, _) = george(&url, ALICE, &["logs", "j", "-f"]);
        assert_eq!(code, 0);
        assert_eq!(out.matches("approval.rejected").count(), 2, "{out}");
        assert!(out.contains("approval.approved"), "{out}");
    })
    .await
    .unwrap();
    assert_eq!(model.received().len(), 3, "three planning calls");
    // SIGTERM: a clean stop.
    let ok = Command::new("kill")
        .args(["-TERM", &server.0.id().to_string()])
        .status()
        .unwrap()
        .success();
    assert!(ok);
    let status = server.0.wait().unwrap();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_bad_configuration_names_its_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    write(
        dir.path(),
        "george.toml",
        "[source]\npath = \"ops\"\nbogus = 1\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_george"))
        .args(["serve", "--config"])
        .arg(dir.path().join("george.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("george.toml:3:1"), "{err}");
}
