//! What the process tests of `george` share: a throwaway ops repository with a planning
//! step, a loopback model answering with plans, `george serve` as a child process, and
//! the client commands.

#![allow(dead_code)]

use std::io::{BufRead, BufReader};
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use george_llm::replay::Reply;
use serde_json::{Value, json};

/// SHA-256 hex through the `sha256sum` program, as an operator makes a token file.
pub fn sha256_hex(s: &str) -> String {
    use std::io::Write;
    let mut child = Command::new("sha256sum")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .spawn()
        .expect("sha256sum");
    child.stdin.take().unwrap().write_all(s.as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    text.split_whitespace().next().unwrap().to_string()
}

/// Runs `git` in `dir` as a test committer.
pub fn git(dir: &Path, args: &[&str]) {
    let ok = Command::new("git")
        .args(["-c", "user.name=t", "-c", "user.email=t@example.invalid"])
        .args(args)
        .current_dir(dir)
        .status()
        .expect("git")
        .success();
    assert!(ok, "git {args:?}");
}

/// Writes `text` to `root/path`, making folders.
pub fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

/// An OpenAI chat completion submitting a plan of one `run_command` echo of `arg`.
pub fn plan_reply(n: usize, summary: &str, arg: &str) -> Reply {
    let args = json!({"summary": summary,
        "actions": [{"tool": "run_command", "arguments": {"program": "echo", "args": [arg]}}]});
    let body = json!({"id": format!("chatcmpl-{n}"), "object": "chat.completion", "model": "m",
        "choices": [{"index": 0, "finish_reason": "tool_calls",
            "message": {"role": "assistant", "content": null, "tool_calls": [
                {"id": format!("call_{n}"), "type": "function",
                 "function": {"name": "submit_plan", "arguments": args.to_string()}}]}}],
        "usage": {"prompt_tokens": 100, "completion_tokens": 20, "total_tokens": 120}});
    Reply::json(200, body.to_string())
}

/// Writes `root/tokens.toml`: `token` is user `alice` with the role `decide`.
pub fn alice_decides(root: &Path, token: &str) {
    write(
        root,
        "tokens.toml",
        &format!(
            "[tokens.{}]\nuser = \"alice\"\nroles = [\"decide\"]\n",
            sha256_hex(token)
        ),
    );
}

/// An ops repository at `root/ops` ordering job `j`: a `plan` step by agent `planner`
/// (provider profile `fake`) gated by `approval`, then the execution of its plan.
pub fn ops_repo(root: &Path, approval: &str) {
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
        &format!(
            "apiVersion: george.dev/v1alpha1\nkind: TaskTemplate\nmetadata: {{name: t}}\nspec:\n  steps:\n    - {{id: plan, agent: planner, instructions: Plan., approval: {approval}}}\n    - {{id: execute, depends_on: [plan], execute_approved: plan}}\n"
        ),
    );
    write(
        &ops,
        "jobs/j.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata: {name: j}\nspec: {template: t}\n",
    );
    git(&ops, &["add", "-A"]);
    git(&ops, &["commit", "-q", "-m", "order j"]);
}

/// The server process, killed when dropped (a failed assertion leaves no orphan).
pub struct Server(pub Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl Server {
    /// Starts `george serve --config config` (with `env` set) and waits for the URL it
    /// prints once it listens.
    pub fn start(config: &Path, env: &[(&str, &str)]) -> (Server, String) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_george"));
        cmd.args(["serve", "--config"])
            .arg(config)
            .env_remove("OTEL_EXPORTER_OTLP_ENDPOINT")
            .env_remove("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit());
        for (k, v) in env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("george serve");
        let stdout = child.stdout.take().unwrap();
        let server = Server(child);
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        let url = line
            .trim()
            .strip_prefix("listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
            .to_string();
        (server, url)
    }

    /// Sends SIGTERM and asserts a clean exit.
    pub fn stop(mut self) {
        let ok = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status()
            .unwrap()
            .success();
        assert!(ok);
        let status = self.0.wait().unwrap();
        assert!(status.success(), "{status:?}");
    }
}

/// Runs a client command against `url` as `token`: exit code, stdout, stderr.
pub fn george(url: &str, token: &str, args: &[&str]) -> (i32, String, String) {
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

/// A client command's `-o json` answer.
pub fn json_of(url: &str, token: &str, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-o", "json"]);
    let (code, out, err) = george(url, token, &all);
    assert_eq!(code, 0, "{args:?}: {err}");
    serde_json::from_str(&out).unwrap_or_else(|e| panic!("{args:?}: {e}: {out}"))
}

/// Waits (60 s) for an open approval request other than those in `seen`.
pub fn next_open(url: &str, token: &str, seen: &[String]) -> String {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let v = json_of(url, token, &["approvals"]);
        if let Some(id) = v["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .filter_map(|a| a["id"].as_str())
            .find(|id| !seen.iter().any(|s| s == id))
        {
            return id.to_string();
        }
        assert!(Instant::now() < deadline, "no new approval request");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Waits (90 s) until `job` has `status`.
pub fn wait_status(url: &str, token: &str, job: &str, status: &str) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let v = json_of(url, token, &["describe", "job", job]);
        if v["status"] == status {
            return;
        }
        assert!(Instant::now() < deadline, "not {status}: {v}");
        std::thread::sleep(Duration::from_millis(100));
    }
}
