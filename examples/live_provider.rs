//! The quickstart's agents against a real model: the same manifests, the same
//! scripted human (two rejections with the seed's reasons, then an approval), but the
//! answers come from a live provider built by `george_llm::Registry` from the agent
//! specs.
//!
//! Set:
//! - `GEORGE_PROVIDER`: `openai`, `anthropic`, `gemini`, `ollama`, `vllm`, `llamacpp`,
//!   `litellm` or `openai-compatible`;
//! - `GEORGE_MODEL`: the model id (e.g. `gpt-4.1-mini`, `claude-sonnet-4-5`,
//!   `gemini-2.5-flash`, `qwen3:8b`);
//! - the API key in the provider's variable (`OPENAI_API_KEY`, `ANTHROPIC_API_KEY`,
//!   `GEMINI_API_KEY`), or name another variable in `GEORGE_API_KEY_ENV`;
//! - optionally `GEORGE_BASE_URL` (required for `openai-compatible`; e.g.
//!   `http://localhost:11434/v1` for a local Ollama, which needs no key).
//!
//! This program plays the operator: with `GEORGE_BASE_URL` or `GEORGE_API_KEY_ENV` it
//! registers a provider profile `live` with that endpoint and key variable, and the
//! agent specs choose `provider: live` — a committed spec cannot name endpoints or key
//! variables of its own (see the README's "Security model").
//!
//! Run: `cargo run --example live_provider --features llm`

#[path = "support/mod.rs"]
mod support;

use std::sync::Arc;
use std::time::Duration;

use george::llm::{KeySource, ProviderKind, ProviderProfile, Registry};
use george::prelude::*;

fn usage_and_exit(missing: &str) -> ! {
    eprintln!(
        "live_provider: {missing} is not set.\n\n\
         This example runs the quickstart's agents against a real model. Set:\n\
         \x20 GEORGE_PROVIDER   openai | anthropic | gemini | ollama | vllm | llamacpp | litellm | openai-compatible\n\
         \x20 GEORGE_MODEL      e.g. gpt-4.1-mini, claude-sonnet-4-5, gemini-2.5-flash, qwen3:8b\n\
         \x20 the API key       in OPENAI_API_KEY / ANTHROPIC_API_KEY / GEMINI_API_KEY,\n\
         \x20                   or in a variable you name with GEORGE_API_KEY_ENV\n\
         \x20 GEORGE_BASE_URL   optional; e.g. http://localhost:11434/v1 for a local Ollama (no key)\n\n\
         For example:\n\
         \x20 GEORGE_PROVIDER=ollama GEORGE_MODEL=qwen3:8b cargo run --example live_provider --features llm\n\
         \x20 GEORGE_PROVIDER=anthropic GEORGE_MODEL=claude-sonnet-4-5 ANTHROPIC_API_KEY=... cargo run --example live_provider --features llm\n\n\
         Without a model, `cargo run --example quickstart` runs the same event with scripted answers."
    );
    std::process::exit(2)
}

fn env(name: &str) -> Option<String> {
    std::env::var(name).ok().filter(|v| !v.trim().is_empty())
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let Some(provider) = env("GEORGE_PROVIDER") else {
        usage_and_exit("GEORGE_PROVIDER")
    };
    let Some(model) = env("GEORGE_MODEL") else {
        usage_and_exit("GEORGE_MODEL")
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn,llm.call=info")),
        )
        .init();

    let dir = tempfile::tempdir()?;
    let s = support::setup(dir.path());
    // The operator's side: a custom endpoint or key variable becomes a profile.
    let mut registry = Registry::new()?;
    let (base_url, key_env) = (env("GEORGE_BASE_URL"), env("GEORGE_API_KEY_ENV"));
    let chosen = if base_url.is_some() || key_env.is_some() {
        let kind = match provider.as_str() {
            "anthropic" => ProviderKind::Anthropic,
            "gemini" => ProviderKind::Gemini,
            _ => ProviderKind::OpenAi,
        };
        let builtin = registry.profiles().find(|p| p.name == provider).cloned();
        let url = base_url
            .or_else(|| builtin.as_ref().map(|p| p.base_url.clone()))
            .ok_or("GEORGE_BASE_URL is required for this provider")?;
        let mut profile = ProviderProfile::new("live", kind, url);
        let builtin_key = builtin.and_then(|p| match p.key {
            KeySource::Env(var) => Some(var),
            _ => None,
        });
        if let Some(var) = key_env.or(builtin_key) {
            profile = profile.key_env(var);
        }
        registry = registry.profile(profile);
        "live".to_string()
    } else {
        provider.clone()
    };
    support::point_agents_at(&s, &chosen, &model, None, None)?;
    println!("George live provider run — provider {provider}, model {model}");
    println!(
        "ops repo: {}\napp repo: {}\nstore:    {}\n",
        s.ops.display(),
        s.app.display(),
        s.db.display()
    );

    let (human, approvals) = ChannelHuman::new();
    let engine = support::engine_with(&s, human, "engine-live", |b| {
        b.provider_factory(Arc::new(registry))
    })
    .await?;
    let _human = support::spawn_human(engine.clone(), approvals);
    let _cluster = support::spawn_cluster_sync(&s, Duration::from_secs(3));

    engine.start().await?;
    for e in engine.manifest_errors() {
        println!("invalid manifest: {e}");
    }
    let run = engine.spawn();
    let status = engine
        .wait_finished(support::JOB, Duration::from_secs(900))
        .await?;
    run.shutdown().await;

    println!("Timeline of job {}:", support::JOB);
    for line in support::timeline(&engine, support::JOB).await? {
        println!("  {line}");
    }
    if let Some(rec) = engine.job(support::JOB).await? {
        for step in &rec.steps {
            println!(
                "  step {:<12} {:?}: {} tokens ({} cached), ${:.4}{}",
                step.id,
                step.state.name(),
                step.usage.total(),
                step.usage.cache_read_tokens,
                step.usage.cost_usd,
                step.message
                    .as_deref()
                    .map(|m| format!(" — {m}"))
                    .unwrap_or_default()
            );
        }
        let total = rec.usage();
        println!(
            "  job total: {} tokens, ${:.4}",
            total.total(),
            total.cost_usd
        );
    }
    println!("\nJob {} finished: {status}", support::JOB);
    Ok(())
}
