//! Git boundaries (issue 10 §4), each test written as the attack it stops:
//!
//! - an agent's commit touching George's manifests, CI configuration or `.gitmodules`
//!   is refused naming the rule, and nothing lands (locally or on a remote);
//! - the operator's allowed globs restrict writes, denied globs win;
//! - a token never reaches the work clone's files or any `Debug` output;
//! - a token is refused over plain `http://` unless the operator allows it.
//!
//! Timeouts are in `boundaries_git_timeouts.rs`, credential helpers in
//! `boundaries_git_helpers.rs` (each its own process: they change process-wide state).

mod common;
mod write_remote_support;

use common::TestRepo;
use george_core::ErrorKind;
use george_core::tool::{ToolExecutor, ToolInvocation, ToolOutput};
use george_git::{
    Follow, GitAuthor, GitWriteTool, Remote, RemoteConfig, RemoteGitSource, RemoteTarget,
};
use serde_json::{Value, json};
use write_remote_support::{Server, remote};

const TOKEN: &str = "ghp_s3cretT0kenValue";

/// The paths an agent must not commit to, and the rule each one is refused by.
const ATTACKS: [(&str, &str); 7] = [
    ("agent-specs/x.yaml", "deny agent-specs/"),
    ("task-templates/t.yaml", "deny task-templates/"),
    ("jobs/nightly.yaml", "deny jobs/"),
    ("jobs/team/sub/deep.yml", "deny jobs/"),
    (".github/workflows/ci.yml", "deny .github/"),
    (".gitlab-ci.yml", "deny .gitlab-ci.yml"),
    (".gitmodules", "deny .gitmodules"),
];

fn author() -> GitAuthor {
    GitAuthor::new("George", "george@example.com")
}

/// A commit call that sneaks `path` in after a harmless change.
fn sneaky(path: &str) -> Value {
    json!({
        "message": "Tidy up",
        "changes": [
            {"path": "README.md", "content": "harmless\n"},
            {"path": path, "content": "kind: AgentSpec\ntools: [everything]\n"}
        ]
    })
}

async fn commit(tool: &GitWriteTool, args: Value) -> ToolOutput {
    tool.call(ToolInvocation::new(
        tool.commit_tool_name(),
        args,
        "job/step/1/0",
    ))
    .await
    .expect("a tool result, not an error")
}

fn assert_refused(out: &ToolOutput, path: &str, rule: &str) {
    assert!(out.is_error, "{path}: {}", out.content);
    assert!(
        out.content.contains(&format!("`{path}`")),
        "{}",
        out.content
    );
    assert!(
        out.content.contains(&format!("`{rule}`")),
        "{}",
        out.content
    );
    assert!(
        out.content.contains("nothing was committed"),
        "{}",
        out.content
    );
    let data = out.data.as_ref().expect("data");
    assert_eq!(data["rule"], rule);
    assert_eq!(data["refused"], path);
}

#[tokio::test]
async fn an_agent_cannot_commit_to_manifests_ci_or_submodules() {
    let t = TestRepo::new();
    let head = t.commit(&[("jobs/existing.yaml", Some("kind: Job\n"))], "init");
    let tool = GitWriteTool::new(t.path(), "main", author()).unwrap();
    for (path, rule) in ATTACKS {
        let out = commit(&tool, sneaky(path)).await;
        assert_refused(&out, path, rule);
        assert_eq!(t.head(), head, "{path}: nothing committed");
        assert_eq!(t.worktree(path), None, "{path}: nothing written");
        assert_eq!(
            t.worktree("README.md"),
            None,
            "{path}: not even the harmless part"
        );
    }
    // Case variants and deletions are refused too.
    let out = commit(&tool, sneaky("JOBS/x.yaml")).await;
    assert_refused(&out, "JOBS/x.yaml", "deny jobs/");
    let delete =
        json!({"message": "m", "changes": [{"path": "jobs/existing.yaml", "delete": true}]});
    assert_refused(
        &commit(&tool, delete).await,
        "jobs/existing.yaml",
        "deny jobs/",
    );
    assert_eq!(t.head(), head);
    assert!(t.worktree("jobs/existing.yaml").is_some());
    // The model is told the rules.
    let description = &tool.tools()[1].description;
    assert!(description.contains("`jobs/`"), "{description}");
}

#[tokio::test]
async fn nothing_is_pushed_to_a_remote_for_a_refused_path() {
    let Some(r) = remote(Server::File, "scope_remote", &[("README.md", "ops\n")]) else {
        return;
    };
    let before = r.rev("main");
    let tool = r.tool("work", |t| t);
    for (path, rule) in ATTACKS {
        let out = commit(&tool, sneaky(path)).await;
        assert_refused(&out, path, rule);
    }
    assert_eq!(r.rev("main"), before, "the remote did not move");
    let refs = write_remote_support::git(&r.bare, &["for-each-ref", "--format=%(refname)"]);
    assert_eq!(refs, "refs/heads/main", "no other branch was pushed");
}

#[tokio::test]
async fn allowed_globs_restrict_writes_and_denied_globs_win() {
    let t = TestRepo::new();
    t.commit(&[("README.md", Some("ops\n"))], "init");
    let tool = GitWriteTool::new(t.path(), "main", author())
        .unwrap()
        .with_allowed_paths(["apps/**", "jobs/"])
        .unwrap()
        .with_denied_paths(["apps/*/secrets/"])
        .unwrap();
    let write = |path: &str| json!({"message": "m", "changes": [{"path": path, "content": "x\n"}]});
    let head = t.head();
    let out = commit(&tool, write("README.md")).await;
    assert_refused(&out, "README.md", "allow only `apps/**`, `jobs/`");
    let out = commit(&tool, write("apps/web/secrets/key.pem")).await;
    assert_refused(&out, "apps/web/secrets/key.pem", "deny apps/*/secrets/");
    // Allowing `jobs/` does not lift the default denial: denied globs always win.
    assert_refused(
        &commit(&tool, write("jobs/a.yaml")).await,
        "jobs/a.yaml",
        "deny jobs/",
    );
    assert_eq!(t.head(), head);
    let out = commit(&tool, write("apps/web/values.yaml")).await;
    assert!(!out.is_error, "{}", out.content);
    assert_ne!(t.head(), head);

    // An operator whose agents are meant to order jobs lifts the defaults explicitly.
    let ordering = GitWriteTool::new(t.path(), "main", author())
        .unwrap()
        .without_default_denied_paths()
        .with_denied_paths([".github/"])
        .unwrap();
    assert!(!commit(&ordering, write("jobs/a.yaml")).await.is_error);
    let out = commit(&ordering, write(".github/workflows/ci.yml")).await;
    assert_refused(&out, ".github/workflows/ci.yml", "deny .github/");
    let bad = GitWriteTool::new(t.path(), "main", author())
        .unwrap()
        .with_allowed_paths(["apps/{web"]);
    assert_eq!(bad.unwrap_err().kind(), ErrorKind::InvalidInput);
}

/// Every file under `dir`, as text where it is text.
fn all_text_under(dir: &std::path::Path) -> String {
    let mut out = String::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for entry in std::fs::read_dir(&d).into_iter().flatten().flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if let Ok(bytes) = std::fs::read(&path) {
                out.push_str(&String::from_utf8_lossy(&bytes));
            }
        }
    }
    out
}

#[test]
fn the_work_clone_config_never_holds_the_token() {
    let tmp = tempfile::tempdir().unwrap();
    for (i, url) in [
        format!("https://bot:{TOKEN}@git.example.com/ops.git"),
        format!("http://bot:{TOKEN}@127.0.0.1:9/ops.git"),
    ]
    .iter()
    .enumerate()
    {
        let work = tmp.path().join(format!("work{i}"));
        let remote = Remote::new(url).with_allow_insecure_http(true);
        GitWriteTool::remote(RemoteTarget::from_remote(remote, &work), "main", author()).unwrap();
        let config = std::fs::read_to_string(work.join("config")).unwrap();
        assert!(config.contains("ops.git"), "{config}");
        assert!(!config.contains(TOKEN), "{config}");
        assert!(!config.contains("bot@"), "{config}");
    }
}

#[tokio::test]
async fn after_a_push_no_file_of_the_work_clone_holds_the_token() {
    let Some(r) = remote(Server::Http, "no_token_on_disk", &[("README.md", "ops\n")]) else {
        return;
    };
    let url = r
        .url
        .replacen("http://", &format!("http://bot:{TOKEN}@"), 1);
    let work = r.tmp.path().join("work");
    let remote = Remote::new(&url).with_allow_insecure_http(true);
    let tool =
        GitWriteTool::remote(RemoteTarget::from_remote(remote, &work), "main", author()).unwrap();
    let change = json!({"message": "m", "changes": [{"path": "apps/a.txt", "content": "a\n"}]});
    let out = commit(&tool, change).await;
    assert!(!out.is_error, "{}", out.content);
    assert_eq!(
        r.rev("main"),
        write_remote_support::data_str(&out, "commit")
    );
    assert!(!out.content.contains(TOKEN), "{}", out.content);
    let on_disk = all_text_under(&work);
    assert!(!on_disk.contains(TOKEN), "the token is in the work clone");
    assert!(!on_disk.contains(&format!("bot:{TOKEN}")));
}

#[tokio::test]
async fn debug_output_never_shows_a_token() {
    let tmp = tempfile::tempdir().unwrap();
    let url = format!("https://bot:{TOKEN}@git.example.com/ops.git");
    let remote = Remote::new(&url).with_token_env("OPS_TOKEN");
    let target = RemoteTarget::from_remote(remote.clone(), tmp.path().join("work"));
    let tool = GitWriteTool::remote(target.clone(), "main", author()).unwrap();
    let config = RemoteConfig::from_remote(remote.clone(), Follow::Branch("main".into()))
        .cache_root(tmp.path().join("cache"));
    let source = RemoteGitSource::new(config.clone()).unwrap();
    for shown in [
        format!("{remote:?}"),
        format!("{target:?}"),
        format!("{tool:?}"),
        format!("{config:?}"),
        format!("{source:?}"),
        format!("{tool:#?} {source:#?}"),
        target.redacted_url(),
        source.url(),
    ] {
        assert!(!shown.contains(TOKEN), "{shown}");
        assert!(!shown.contains("bot:"), "{shown}");
    }
    assert!(
        format!("{tool:?}").contains("OPS_TOKEN"),
        "the variable's name is shown"
    );
    assert!(
        george_core::secret::KnownSecrets::global().redact(&format!("x {TOKEN} y"))
            == format!("x {} y", george_core::secret::REDACTED),
        "the URL's token is registered for redaction"
    );
}

#[test]
fn a_token_over_plain_http_is_refused_unless_allowed() {
    let tmp = tempfile::tempdir().unwrap();
    let plain = "http://git.example.com/ops.git";
    let attempts = [
        Remote::new(format!("http://bot:{TOKEN}@git.example.com/ops.git")),
        Remote::new(plain).with_token_env("OPS_TOKEN"),
        Remote::new("HTTP://git.example.com/ops.git").with_token_env("OPS_TOKEN"),
    ];
    for (i, remote) in attempts.into_iter().enumerate() {
        let cache = tmp.path().join(format!("cache{i}"));
        let config = RemoteConfig::from_remote(remote.clone(), Follow::Branch("main".into()))
            .cache_root(&cache);
        let err = RemoteGitSource::new(config.clone()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(err.to_string().contains("allow_insecure_http"), "{err}");
        let work = tmp.path().join(format!("work{i}"));
        let target = RemoteTarget::from_remote(remote.clone(), &work);
        let err = GitWriteTool::remote(target, "main", author()).unwrap_err();
        assert_eq!(err.kind(), ErrorKind::InvalidInput, "{err}");
        assert!(!work.exists(), "nothing was created");

        // The operator's explicit consent, or https, or no token: accepted.
        let allowed = remote.with_allow_insecure_http(true);
        let target = RemoteTarget::from_remote(allowed, tmp.path().join(format!("ok{i}")));
        GitWriteTool::remote(target, "main", author()).unwrap();
    }
    let https = Remote::new("https://git.example.com/ops.git").with_token_env("OPS_TOKEN");
    let target = RemoteTarget::from_remote(https, tmp.path().join("https"));
    GitWriteTool::remote(target, "main", author()).unwrap();
    let anonymous = RemoteTarget::new(plain, tmp.path().join("anonymous"));
    GitWriteTool::remote(anonymous, "main", author()).unwrap();
}
