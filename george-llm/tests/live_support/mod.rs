//! Helpers of `live_local_model.rs`: where the model is, and a `llama-server` started on
//! a free loopback port, waited for, and killed when dropped.
//!
//! `GEORGE_TEST_LOCAL_MODEL_DIR` names the directory `scripts/local-model-setup.sh`
//! prints: `llama-server` (the llama.cpp server), `model.gguf` (Gemma 3 270M base,
//! Q4_K_M) and `chat-template.jinja` (the chat template to serve it with: the weights
//! have none; the script says why this one).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use george_llm::{ProviderConfig, ReqwestTransport};

/// The variable naming the directory with `llama-server` and `model.gguf`.
pub const DIR_VAR: &str = "GEORGE_TEST_LOCAL_MODEL_DIR";

/// The context size the server is started with (tokens).
pub const CTX_SIZE: u32 = 2048;

/// The model name sent in requests (llama-server serves the one model it loaded,
/// whatever the name).
pub const MODEL: &str = "gemma-3-270m";

/// The seed of the server's sampler.
const SEED: &str = "42";

/// How long the server may take to load the model and answer `/health`.
const STARTUP: Duration = Duration::from_secs(120);

/// One live test at a time: each starts its own server (two threads of a 2-core
/// machine each), and two at once would only slow both.
static EXCLUSIVE: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// The model's directory, or `None` after saying loudly that `test` is skipped.
pub fn model_dir(test: &str) -> Option<PathBuf> {
    match std::env::var_os(DIR_VAR) {
        Some(d) if !d.is_empty() => Some(PathBuf::from(d)),
        _ => {
            eprintln!(
                "!!! SKIPPED {test}: {DIR_VAR} is not set; run \
                 `{DIR_VAR}=$(scripts/local-model-setup.sh)` first (as .ci/run does)"
            );
            None
        }
    }
}

/// A running `llama-server`, killed when dropped, with the lock that keeps the other
/// live tests waiting.
pub struct LlamaServer {
    child: Child,
    base_url: String,
    log: PathBuf,
    _exclusive: tokio::sync::MutexGuard<'static, ()>,
}

impl LlamaServer {
    /// Starts `dir/llama-server` on `dir/model.gguf` with `dir/chat-template.jinja` and
    /// waits until `/health` answers 200: a context of [`CTX_SIZE`] tokens in one slot,
    /// two threads, a fixed seed, temperature 0 by default.
    pub async fn start(dir: &Path, name: &str) -> LlamaServer {
        let exclusive = EXCLUSIVE.lock().await;
        let bin = dir.join("llama-server");
        let model = dir.join("model.gguf");
        let template = dir.join("chat-template.jinja");
        for file in [&bin, &model, &template] {
            assert!(file.exists(), "{} is missing", file.display());
        }
        let port = free_port();
        let log =
            PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join(format!("llama-server-{name}.log"));
        let log_file = std::fs::File::create(&log).expect("log file");
        let child = Command::new(&bin)
            .args(["--host", "127.0.0.1", "--port", &port.to_string()])
            .arg("-m")
            .arg(&model)
            .args(["--ctx-size", &CTX_SIZE.to_string(), "--parallel", "1"])
            .arg("--jinja")
            .arg("--chat-template-file")
            .arg(&template)
            .args(["-t", "2", "--seed", SEED, "--temp", "0"])
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .unwrap_or_else(|e| panic!("spawning {}: {e}", bin.display()));
        let mut server = LlamaServer {
            child,
            base_url: format!("http://127.0.0.1:{port}/v1"),
            log,
            _exclusive: exclusive,
        };
        server.wait_healthy(port).await;
        server
    }

    /// A provider configuration for this server over reqwest.
    pub fn config(&self, stream: bool) -> ProviderConfig {
        let transport = ReqwestTransport::new(Duration::from_secs(300)).expect("client");
        ProviderConfig::new(self.base_url.clone(), Arc::new(transport))
            .stream(stream)
            .timeout(Duration::from_secs(300))
    }

    /// The end of the server's log, for failure messages.
    pub fn log_tail(&self) -> String {
        log_tail(&self.log)
    }

    async fn wait_healthy(&mut self, port: u16) {
        let client = reqwest::Client::new();
        let url = format!("http://127.0.0.1:{port}/health");
        let started = Instant::now();
        loop {
            if let Ok(Some(status)) = self.child.try_wait() {
                panic!(
                    "llama-server exited with {status} while starting:\n{}",
                    self.log_tail()
                );
            }
            if let Ok(resp) = client.get(&url).send().await
                && resp.status().is_success()
            {
                eprintln!(
                    "llama-server ready on port {port} in {:.1} s",
                    started.elapsed().as_secs_f64()
                );
                return;
            }
            if started.elapsed() > STARTUP {
                panic!(
                    "llama-server not healthy after {STARTUP:?}:\n{}",
                    self.log_tail()
                );
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
}

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A port free on 127.0.0.1 a moment ago.
fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    listener.local_addr().expect("addr").port()
}

fn log_tail(path: &Path) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(40)..].join("\n")
}
