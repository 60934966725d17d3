//! `george serve` and the client commands, as processes: a job whose plan is rejected
//! twice and approved once with `george reject` / `george approve` is driven to
//! `succeeded`; a read-only token cannot decide; SIGTERM stops the server cleanly. The
//! model is a loopback server speaking the OpenAI wire format.

mod common;

use std::path::Path;
use std::process::Command;

use common::{Server, george, next_open, plan_reply, wait_status, write};
use george_llm::replay::ReplayServer;

const ALICE: &str = "alice-token-0123456789";
const READER: &str = "reader-token-0123456789";

fn plan(n: usize) -> george_llm::replay::Reply {
    plan_reply(n, &format!("plan {n}"), &format!("change {n}"))
}

fn setup(root: &Path, model_url: &str) {
    common::ops_repo(root, "{required: true, approvers: ['user:alice']}");
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
            common::sha256_hex(ALICE),
            common::sha256_hex(READER)
        ),
    );
    write(
        root,
        "george.toml",
        "engine_id = \"engine-cli\"\n\n[source]\npath = \"ops\"\npoll_interval_ms = 200\n\n[store]\nsqlite = \"george.db\"\n\n[providers]\nprofiles = \"providers.yaml\"\nstream = false\n\n[commands]\nprograms = [\"echo\"]\n\n[http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_job_is_driven_to_success_from_the_shell() {
    let model = ReplayServer::start(vec![plan(1), plan(2), plan(3)]).await;
    let dir = tempfile::tempdir().unwrap();
    setup(dir.path(), model.base_url());
    let (server, url) = Server::start(&dir.path().join("george.toml"), &[]);
    let url2 = url.clone();
    tokio::task::spawn_blocking(move || {
        let url = url2;
        let mut seen = Vec::new();
        for reason in ["too many replicas", "keep the HPA off"] {
            let id = next_open(&url, ALICE, &seen);
            // A read-only identity cannot decide.
            let (code, _, err) = george(&url, READER, &["reject", &id, "--reason", "no"]);
            assert_eq!(code, 3, "{err}");
            assert!(err.contains("403"), "{err}");
            let (code, out, err) = george(&url, ALICE, &["reject", &id, "--reason", reason]);
            assert_eq!(code, 0, "{err}");
            assert!(out.contains("rejected"), "{out}");
            seen.push(id);
        }
        let id = next_open(&url, ALICE, &seen);
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
        wait_status(&url, ALICE, "j", "succeeded");
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
    server.stop();
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

#[test]
fn a_bad_argument_policy_names_its_program() {
    let dir = tempfile::tempdir().unwrap();
    common::ops_repo(dir.path(), "required");
    write(dir.path(), "tokens.toml", "");
    write(
        dir.path(),
        "george.toml",
        "[source]\npath = \"ops\"\n[store]\nsqlite = \"george.db\"\n\
         [commands]\nprograms = [\"git\"]\n[commands.policies.git]\nallow_args = \"(\"\n\
         [http]\nlisten = \"127.0.0.1:0\"\ntokens = \"tokens.toml\"\n",
    );
    let out = Command::new(env!("CARGO_BIN_EXE_george"))
        .args(["serve", "--config"])
        .arg(dir.path().join("george.toml"))
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("commands.policies.git.allow_args"), "{err}");
}
