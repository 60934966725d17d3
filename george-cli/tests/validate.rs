//! `george validate` and `george schema`, run as a process.

use std::path::Path;
use std::process::Command;

fn george(args: &[&str]) -> (i32, String, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_george"))
        .args(args)
        .output()
        .expect("run george");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn write(root: &Path, path: &str, text: &str) {
    let p = root.join(path);
    std::fs::create_dir_all(p.parent().unwrap()).unwrap();
    std::fs::write(p, text).unwrap();
}

const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata:
  name: hello
spec:
  parameters:
    - name: who
  steps:
    - id: greet
      command: {program: echo, args: [\"hello {{ params.who }}\"]}
";

fn repo() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write(dir.path(), "task-templates/hello.yaml", TEMPLATE);
    write(
        dir.path(),
        "jobs/a.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata:\n  name: a\nspec:\n  template: hello\n  params: {who: world}\n",
    );
    write(dir.path(), "README.md", "not a manifest");
    dir
}

#[test]
fn a_valid_repository_exits_0() {
    let dir = repo();
    let (code, out, err) = george(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.is_empty());
    assert!(
        err.contains("1 template(s), 1 job(s), 0 policy(ies) valid; 0 error(s)"),
        "{err}"
    );
}

#[test]
fn a_broken_repository_prints_file_line_column_and_exits_1() {
    let dir = repo();
    write(
        dir.path(),
        "jobs/b.yaml",
        "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata:\n  name: b\nspec:\n  template: hello\n",
    );
    write(
        dir.path(),
        "jobs/nested/c.yml",
        "kind: Job\nmetadata: {name: c}\nspec: [\n",
    );
    let (code, out, _) = george(&["validate", dir.path().to_str().unwrap()]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains(
            "jobs/b.yaml:5:1: spec.params: missing required parameter `who` (template `hello`)"
        ),
        "{out}"
    );
    assert!(out.contains("jobs/nested/c.yml:"), "{out}");

    let (code, out, _) = george(&["validate", dir.path().to_str().unwrap(), "--format", "json"]);
    assert_eq!(code, 1);
    let report: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert_eq!(report["valid"], false);
    assert_eq!(report["jobs"], 1);
    let first = &report["errors"][0];
    assert_eq!(first["path"], "jobs/b.yaml");
    assert_eq!(first["line"], 5);
    assert_eq!(first["field"], "spec.params");
}

#[test]
fn usage_errors_exit_2() {
    let (code, _, err) = george(&["validate", "/nonexistent/george-repo"]);
    assert_eq!(code, 2);
    assert!(err.contains("is not a folder"), "{err}");
    let (code, _, err) = george(&["schema", "Pod"]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown kind"), "{err}");
}

#[test]
fn schema_prints_each_kind() {
    let (code, out, _) = george(&["schema", "Job"]);
    assert_eq!(code, 0);
    let schema: serde_json::Value = serde_json::from_str(&out).expect("json");
    assert!(schema["properties"]["spec"].is_object(), "{schema}");
    let (code, out, _) = george(&["schema"]);
    assert_eq!(code, 0);
    let all: serde_json::Value = serde_json::from_str(&out).expect("json");
    for kind in ["AgentSpec", "TaskTemplate", "Job", "Policy"] {
        assert!(all[kind].is_object(), "{kind}");
    }
}
