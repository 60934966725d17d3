//! Git boundaries (issue 10 §4): the user's credential helpers never see George's
//! token, so none can store it (`store` is what Git asks every helper after a
//! request that succeeded with credentials).
//!
//! The user's configuration here has a helper in the global config file and another in
//! inherited `GIT_CONFIG_COUNT` variables; each logs what Git tells it. A loopback
//! HTTP server asks for Basic credentials (401) and accepts the right ones with a
//! `200` (whose body is no Git answer: the fetch then fails, after Git approved the
//! credentials). The token must reach the server, and neither log.
//!
//! This file is its own process: it sets environment variables for every `git` child.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Command;
use std::sync::{Arc, Mutex};

use george_core::tool::{ToolExecutor, ToolInvocation};
use george_git::{
    Follow, GitAuthor, GitWriteTool, Remote, RemoteConfig, RemoteGitSource, RemoteTarget, Transport,
};
use serde_json::json;

const TOKEN: &str = "glpat-Helper5ecretValue";
const TOKEN_VAR: &str = "GEORGE_BOUNDARY_TEST_TOKEN";

/// Standard base64 (RFC 4648, with padding).
fn base64(bytes: &[u8]) -> String {
    const ABC: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::new();
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            *chunk.get(1).unwrap_or(&0),
            *chunk.get(2).unwrap_or(&0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(char::from(ABC[((n >> (18 - 6 * i)) & 63) as usize]));
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// A server asking for Basic credentials; returns its port and the `Authorization`
/// headers it received.
fn basic_auth_server() -> (u16, Arc<Mutex<Vec<String>>>) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = listener.local_addr().expect("addr").port();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let log = seen.clone();
    std::thread::spawn(move || {
        for mut stream in listener.incoming().flatten() {
            let mut auth = None;
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut line = String::new();
            while reader.read_line(&mut line).map(|n| n > 0).unwrap_or(false) {
                if line == "\r\n" {
                    break;
                }
                if let Some(v) = line.strip_prefix("Authorization: ") {
                    auth = Some(v.trim().to_owned());
                }
                line.clear();
            }
            let reply = match auth {
                None => "HTTP/1.1 401 Unauthorized\r\nWWW-Authenticate: Basic realm=\"ops\"\r\n\
                         Content-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_owned(),
                Some(a) => {
                    log.lock().expect("log").push(a);
                    "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 5\r\n\
                     Connection: close\r\n\r\nnope\n"
                        .to_owned()
                }
            };
            let _ = stream.write_all(reply.as_bytes());
        }
    });
    (port, seen)
}

/// A helper that appends what Git tells it to `log`.
fn logging_helper(log: &Path) -> String {
    format!(
        "!f() {{ echo \"== $1\" >> '{0}'; cat >> '{0}'; }}; f",
        log.display()
    )
}

/// What a helper logged (empty when it was never run).
fn logged(log: &Path) -> String {
    std::fs::read_to_string(log).unwrap_or_default()
}

#[tokio::test]
async fn the_users_credential_helpers_never_see_georges_token() {
    let home = tempfile::tempdir().expect("home");
    let (global_log, env_log) = (home.path().join("global.log"), home.path().join("env.log"));
    let global = home.path().join("gitconfig");
    let status = Command::new("git")
        .args(["config", "--file"])
        .arg(&global)
        .args(["credential.helper", &logging_helper(&global_log)])
        .status()
        .expect("git config");
    assert!(status.success());
    // SAFETY: the only test of this process, set before any thread of ours reads them.
    unsafe {
        std::env::set_var("GIT_CONFIG_GLOBAL", &global);
        std::env::set_var("GIT_CONFIG_NOSYSTEM", "1");
        std::env::set_var("GIT_CONFIG_COUNT", "1");
        std::env::set_var("GIT_CONFIG_KEY_0", "credential.helper");
        std::env::set_var("GIT_CONFIG_VALUE_0", logging_helper(&env_log));
        std::env::set_var(TOKEN_VAR, TOKEN);
    }
    let expected = format!("Basic {}", base64(format!("bot:{TOKEN}").as_bytes()));

    let (port, seen) = basic_auth_server();
    let remote = Remote::new(format!("http://127.0.0.1:{port}/ops.git"))
        .with_transport(Transport::GitProgram)
        .with_username("bot")
        .with_token_env(TOKEN_VAR)
        .with_allow_insecure_http(true);

    // The source's fetch.
    let config = RemoteConfig::from_remote(remote.clone(), Follow::Branch("main".into()))
        .cache_root(home.path().join("cache"));
    let source = RemoteGitSource::new(config).expect("source");
    let err = source
        .refresh()
        .await
        .expect_err("the body is no Git answer");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert_eq!(
        seen.lock().expect("seen").as_slice(),
        std::slice::from_ref(&expected)
    );

    // The write tool's fetch.
    let target = RemoteTarget::from_remote(remote, home.path().join("work"));
    let tool =
        GitWriteTool::remote(target, "main", GitAuthor::new("G", "g@example.com")).expect("tool");
    let args = json!({"message": "m", "changes": [{"path": "a.txt", "content": "a"}]});
    let call = ToolInvocation::new(tool.commit_tool_name(), args, "j/s/1/0");
    let err = tool
        .call(call)
        .await
        .expect_err("the body is no Git answer");
    assert!(!err.to_string().contains(TOKEN), "{err}");
    assert_eq!(
        seen.lock().expect("seen").len(),
        2,
        "the token was sent again"
    );

    for log in [&global_log, &env_log] {
        let text = logged(log);
        assert!(
            !text.contains(TOKEN),
            "a user's helper saw the token: {text}"
        );
        assert!(
            !text.contains("== store"),
            "a user's helper was asked to store: {text}"
        );
    }

    // Without a token of George's, the user's helpers are asked as usual.
    let anonymous = RemoteConfig::from_remote(
        Remote::new(format!("http://127.0.0.1:{port}/ops.git"))
            .with_transport(Transport::GitProgram),
        Follow::Branch("main".into()),
    )
    .cache_root(home.path().join("cache2"));
    let _ = RemoteGitSource::new(anonymous)
        .expect("source")
        .refresh()
        .await;
    assert!(
        logged(&global_log).contains("== get"),
        "{}",
        logged(&global_log)
    );
}
