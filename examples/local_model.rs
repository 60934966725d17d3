//! George on a model that runs on your machine: no API key, no account.
//!
//! A one-step job whose agent is a local model: the step asks it to greet someone and
//! finish through George's `report_success` tool, with its outputs. The model is reached
//! over the OpenAI-compatible API, either
//!
//! - a llama.cpp server this program starts: give the weights (a `.gguf` file) with
//!   `--model-file` (or `GEORGE_LOCAL_MODEL`) and, unless `llama-server` is on `PATH`, the
//!   server binary with `--server` (or `GEORGE_LLAMA_SERVER`); `--chat-template` (or
//!   `GEORGE_CHAT_TEMPLATE`) serves the weights with another chat template; or
//! - a server already running: `--base-url` (or `GEORGE_BASE_URL`), e.g.
//!   `http://127.0.0.1:11434/v1` for Ollama or `http://127.0.0.1:8080/v1` for
//!   `llama-server`, with the model's name in `--model` (or `GEORGE_MODEL`; Ollama needs
//!   it, e.g. `qwen3:0.6b`).
//!
//! The provider asks for `tool_choice: required`: every answer is a tool call, which
//! llama.cpp enforces with a grammar built from the tools' schemas, so even a tiny model
//! ends the step through a tool rather than chatting. CI runs this on Gemma 3 270M, a
//! base model, from `scripts/local-model-setup.sh` (weights, server and a chat template);
//! the agent's system prompt shows the model the call to make, which a model that small
//! needs and an instruction-tuned one does not.
//!
//! Run:
//! ```text
//! dir=$(scripts/local-model-setup.sh)
//! cargo run --example local_model --features llm -- --model-file $dir/model.gguf \
//!     --server $dir/llama-server --chat-template $dir/chat-template.jinja
//! cargo run --example local_model --features llm -- --base-url http://127.0.0.1:11434/v1 --model qwen3:0.6b
//! ```

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use george::llm::openai::{OpenAiProvider, ToolChoice};
use george::llm::{ProviderConfig, RetryPolicy, Retrying};
use george::prelude::*;

const JOB: &str = "hello";

/// Where the model is.
enum Target {
    /// Start `server` on `model_file`, with `chat_template` if given.
    Spawn {
        server: PathBuf,
        model_file: PathBuf,
        chat_template: Option<PathBuf>,
    },
    /// Use a server already running.
    Url(String),
}

fn usage_and_exit(problem: &str) -> ! {
    eprintln!(
        "local_model: {problem}\n\n\
         Runs a one-step George job on a local model. Either start llama.cpp's server here:\n\
         \x20 --model-file PATH     a .gguf file (or GEORGE_LOCAL_MODEL)\n\
         \x20 --server PATH         llama-server (or GEORGE_LLAMA_SERVER; default: llama-server on PATH)\n\
         \x20 --chat-template PATH  a Jinja chat template instead of the model's (or GEORGE_CHAT_TEMPLATE)\n\
         or use a server already running:\n\
         \x20 --base-url URL        e.g. http://127.0.0.1:11434/v1 (Ollama) (or GEORGE_BASE_URL)\n\
         \x20 --model NAME          the model to ask for, e.g. qwen3:0.6b (or GEORGE_MODEL)\n\n\
         For example:\n\
         \x20 cargo run --example local_model --features llm -- --model-file path/to/model.gguf\n\
         \x20 cargo run --example local_model --features llm -- --base-url http://127.0.0.1:11434/v1 --model qwen3:0.6b"
    );
    std::process::exit(2)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

/// The target and the model name from the arguments, else the environment.
fn parse_args() -> (Target, String) {
    let (mut model_file, mut server, mut template, mut base_url, mut model) = (
        env("GEORGE_LOCAL_MODEL"),
        env("GEORGE_LLAMA_SERVER"),
        env("GEORGE_CHAT_TEMPLATE"),
        env("GEORGE_BASE_URL"),
        env("GEORGE_MODEL"),
    );
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        let slot = match flag.as_str() {
            "--model-file" => &mut model_file,
            "--server" => &mut server,
            "--chat-template" => &mut template,
            "--base-url" => &mut base_url,
            "--model" => &mut model,
            "-h" | "--help" => usage_and_exit("usage"),
            other => usage_and_exit(&format!("unknown argument {other:?}")),
        };
        match args.next() {
            Some(v) => *slot = Some(v),
            None => usage_and_exit(&format!("{flag} needs a value")),
        }
    }
    let target = match (base_url, model_file) {
        (Some(url), _) => Target::Url(url.trim_end_matches('/').to_string()),
        (None, Some(file)) => Target::Spawn {
            server: PathBuf::from(server.unwrap_or_else(|| "llama-server".into())),
            model_file: PathBuf::from(file),
            chat_template: template.map(PathBuf::from),
        },
        (None, None) => usage_and_exit("no model: give --model-file or --base-url"),
    };
    (target, model.unwrap_or_else(|| "local".into()))
}

/// A `llama-server` this program started, stopped when dropped.
struct LlamaServer(Child);

impl Drop for LlamaServer {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts `server` on `model_file` (with `chat_template` if given) on a free loopback
/// port and waits for `/health`.
async fn start_server(
    server: &Path,
    model_file: &Path,
    chat_template: Option<&Path>,
) -> Result<(LlamaServer, String), Box<dyn std::error::Error>> {
    let port = std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port();
    println!(
        "starting {} on {} (port {port})",
        server.display(),
        model_file.display()
    );
    let mut command = Command::new(server);
    if let Some(template) = chat_template {
        command.arg("--chat-template-file").arg(template);
    }
    let child = command
        .args(["--host", "127.0.0.1", "--port", &port.to_string()])
        .arg("-m")
        .arg(model_file)
        // A small context in one slot; Jinja chat templates (tool calls); a fixed seed
        // and temperature 0 for repeatable answers.
        .args(["--ctx-size", "4096", "--parallel", "1", "--jinja"])
        .args(["--seed", "42", "--temp", "0"])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .map_err(|e| format!("starting {}: {e}", server.display()))?;
    let mut child = LlamaServer(child);
    let client = reqwest::Client::new();
    let health = format!("http://127.0.0.1:{port}/health");
    let started = Instant::now();
    loop {
        if let Some(status) = child.0.try_wait()? {
            return Err(format!("llama-server exited while starting: {status}").into());
        }
        if let Ok(resp) = client.get(&health).send().await
            && resp.status().is_success()
        {
            break;
        }
        if started.elapsed() > Duration::from_secs(120) {
            return Err("llama-server did not become healthy within 120 s".into());
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    println!(
        "llama-server ready in {:.1} s",
        started.elapsed().as_secs_f64()
    );
    Ok((child, format!("http://127.0.0.1:{port}/v1")))
}

/// The manifests: an agent on the local model, a one-step template, a job.
fn manifests(model: &str) -> Vec<(&'static str, String)> {
    vec![
        (
            "agent-specs/greeter.yaml",
            format!(
                "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {{name: greeter}}
spec:
  model: {model}
  system_prompt: |
    You finish every task by calling report_success, like this:
    <tool_call>
    {{\"name\": \"report_success\", \"arguments\": {{\"outputs\": {{\"result\": \"ok\"}}, \"summary\": \"done\"}}}}
    </tool_call>
  temperature: 0
  max_tokens: 256
  max_iterations: 3
"
            ),
        ),
        (
            "task-templates/greet.yaml",
            "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: greet}
spec:
  parameters:
    - {name: who, type: string}
  steps:
    - id: greet
      agent: greeter
      instructions: |
        Greet {{ params.who }}. Call report_success with a summary and outputs {\"greeting\": \"<your greeting>\"}.
"
            .to_string(),
        ),
        (
            "jobs/hello.yaml",
            "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: hello}
spec: {template: greet, params: {who: the operator}}
"
            .to_string(),
        ),
    ]
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let (target, model) = parse_args();
    let (_server, base_url) = match &target {
        Target::Spawn {
            server,
            model_file,
            chat_template,
        } => {
            let (s, url) = start_server(server, model_file, chat_template.as_deref()).await?;
            (Some(s), url)
        }
        Target::Url(url) => (None, url.clone()),
    };
    println!("George on a local model — {base_url}, model {model}\n");

    // The provider: the OpenAI-compatible adapter, no key, every answer a tool call,
    // retried on transient errors. (With `george::llm::Registry` as the engine's provider
    // factory, agent specs would name the built-in `ollama` or `llamacpp` profile instead.)
    let config =
        ProviderConfig::with_default_transport(base_url)?.timeout(Duration::from_secs(300));
    let provider = Retrying::new(
        OpenAiProvider::new(config).tool_choice(ToolChoice::Required),
        RetryPolicy::default(),
    );

    let git = InMemoryGitSource::new();
    git.commit_files("main", manifests(&model), "a job for the local model");
    let engine = Engine::builder(Arc::new(InMemoryStateStore::new()), Arc::new(git))
        .id("local")
        .provider("default", Arc::new(provider))
        .build()?;
    engine.start().await?;
    for e in engine.manifest_errors() {
        println!("invalid manifest: {e}");
    }
    let run = engine.spawn();
    let status = engine.wait_finished(JOB, Duration::from_secs(600)).await?;
    run.shutdown().await;

    println!("Timeline of job {JOB}:");
    let events = engine.events(JOB).await?;
    let t0 = events.first().map_or(0, |e| e.at_ms);
    for e in &events {
        println!(
            "  {:>7.3}s  {:<16} {:<20} {:<8} {}",
            (e.at_ms - t0) as f64 / 1000.0,
            e.actor,
            e.action,
            e.step.as_deref().unwrap_or("-"),
            e.detail.replace('\n', " ")
        );
    }
    if let Some(rec) = engine.job(JOB).await? {
        for step in &rec.steps {
            println!(
                "  step {} {}: {} tokens in, {} out; outputs {}",
                step.id,
                step.state.name(),
                step.usage.input_tokens + step.usage.cache_read_tokens,
                step.usage.output_tokens,
                step.outputs
                    .as_deref()
                    .map_or_else(|| "none".to_string(), |o| o.to_string())
            );
        }
    }
    println!("\nJob {JOB}: {status}");
    if status != JobStatus::Succeeded {
        std::process::exit(1);
    }
    Ok(())
}
