//! `george serve --config george.toml`: an engine and its HTTP API, from the operator's
//! configuration ([`ServeConfig`]). Prints `listening on http://ADDR` once it accepts
//! requests; stops cleanly (in-flight attempts handed back, durably) on SIGTERM or
//! Ctrl-C.

use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use george::command::{ArgPolicy, CommandToolExecutor};
use george::engine::Engine;
use george::git::GitSource;
use george::http::AuthConfig;
use george::k8s::source::{CrSource, CrSourceConfig};
use george::k8s::status::StatusProjector;
use george::llm::Registry;
use george::sources::{
    Follow, GitAuthor, GitWriteTool, LocalGitSource, Remote, RemoteConfig, RemoteGitSource,
    RemoteTarget,
};
use george::store::StateStore;
use george::stores::SqliteStateStore;
use george::tool::EffectClass;

use crate::config::{Commands, GitWrite, McpServer, Notify, NotifyFormat, ServeConfig};
use george_http::notify::{WebhookConfig, WebhookFormat, WebhookHuman};
use tracing_subscriber::Layer as _;
use tracing_subscriber::layer::SubscriberExt as _;
use tracing_subscriber::util::SubscriberInitExt as _;

// Declared here rather than in `main.rs`: only `george serve` exports traces.
#[cfg(feature = "otel")]
#[path = "otel.rs"]
mod otel;

fn err(what: &str) -> impl Fn(george::Error) -> String + '_ {
    move |e| format!("{what}: {e}")
}

async fn store(c: &ServeConfig) -> Result<Arc<dyn StateStore>, String> {
    if let Some(path) = &c.store.sqlite {
        let s = SqliteStateStore::open(path)
            .await
            .map_err(err("store.sqlite"))?;
        return Ok(Arc::new(s));
    }
    let url = c.store.postgres.as_deref().unwrap_or_default();
    let config = george::stores::PgConfig::new(url);
    let s = george::stores::PgStateStore::connect_with(config)
        .await
        .map_err(err("store.postgres"))?;
    Ok(Arc::new(s))
}

/// The cluster's client: in-cluster configuration, else `KUBECONFIG` / `~/.kube/config`.
async fn kube_client() -> Result<george::k8s::kube::Client, String> {
    george::k8s::kube::Client::try_default().await.map_err(|e| {
        format!("kubernetes: no cluster configuration (in-cluster or KUBECONFIG): {e}")
    })
}

/// The CRs of `[kubernetes]` as the source (`source.kubernetes = true`).
async fn cr_source(
    c: &ServeConfig,
    client: george::k8s::kube::Client,
) -> Result<Option<CrSource>, String> {
    let (true, Some(k)) = (c.source.kubernetes, &c.kubernetes) else {
        return Ok(None);
    };
    let mut config = if k.all_namespaces {
        CrSourceConfig {
            namespace: None,
            ..CrSourceConfig::namespace("")
        }
    } else {
        CrSourceConfig::namespace(&k.namespace)
    };
    if let Some(sel) = &k.label_selector {
        config = config.with_label_selector(sel);
    }
    CrSource::start(client, config)
        .await
        .map(Some)
        .map_err(|e| format!("source.kubernetes: {e}"))
}

async fn source(c: &ServeConfig) -> Result<Arc<dyn GitSource>, String> {
    if let Some(path) = &c.source.path {
        let s = LocalGitSource::open(path, &c.source.reference).map_err(err("source.path"))?;
        return Ok(Arc::new(s));
    }
    let url = c.source.url.clone().unwrap_or_default();
    let mut config = RemoteConfig::new(url, Follow::Branch(c.source.reference.clone()));
    if let Some(var) = &c.source.token_env {
        config = config.token_env(var);
    }
    if let Some(dir) = &c.source.cache_dir {
        config = config.cache_root(dir);
    }
    let s = RemoteGitSource::open(config)
        .await
        .map_err(err("source.url"))?;
    let interval = Duration::from_millis(c.source.poll_interval_ms.max(100));
    // The handle stops the poller when dropped: it lives as long as the process.
    std::mem::forget(s.spawn_poller(interval, interval / 10));
    Ok(Arc::new(s))
}

fn commands(c: &Commands) -> Result<CommandToolExecutor, String> {
    let mut ex = CommandToolExecutor::new(c.programs.iter().cloned());
    for (program, p) in &c.policies {
        let mut policy = if p.permissive {
            ArgPolicy::permissive()
        } else {
            ArgPolicy::for_program(program)
        };
        for o in &p.deny_options {
            policy = policy.deny_option(o);
        }
        for s in &p.deny_subcommands {
            policy = policy.deny_subcommand(s);
        }
        if let Some(re) = &p.allow_args {
            let field = format!("commands.policies.{program}.allow_args");
            policy = policy.allow_args(re).map_err(err(&field))?;
        }
        ex = ex.with_policy(program, policy);
    }
    for p in &c.read {
        ex = ex.with_effect(p, EffectClass::Read);
    }
    if let Some(cwd) = &c.cwd {
        ex = ex.with_cwd(cwd);
    }
    if let Some(ms) = c.timeout_ms {
        ex = ex.with_timeout(Duration::from_millis(ms));
    }
    for var in &c.pass_env {
        ex = ex.pass_env(var);
    }
    Ok(ex)
}

fn git_write(w: &GitWrite) -> Result<GitWriteTool, String> {
    let field = format!("git_write ({})", w.alias);
    let author = GitAuthor::new(&w.author_name, &w.author_email);
    let tool = match (&w.path, &w.url) {
        (Some(path), _) => GitWriteTool::new(path, &w.branch, author).map_err(err(&field))?,
        (None, Some(url)) => {
            let mut remote = Remote::new(url);
            if let Some(var) = &w.token_env {
                remote = remote.with_token_env(var);
            }
            let work = w
                .work_dir
                .clone()
                .unwrap_or_else(|| std::env::temp_dir().join(format!("george-{}", w.alias)));
            let target = RemoteTarget::from_remote(remote, work);
            GitWriteTool::remote(target, &w.branch, author).map_err(err(&field))?
        }
        (None, None) => return Err(format!("{field}: set `path` or `url`")),
    };
    tool.with_alias(&w.alias)
        .with_allowed_paths(&w.allowed_paths)
        .and_then(|t| t.with_denied_paths(&w.denied_paths))
        .map_err(err(&field))
}

/// The webhook channel of `[notify]`.
fn webhook(n: &Notify) -> Result<WebhookHuman, String> {
    let var = |field: &str, name: &str| {
        std::env::var(name).map_err(|_| format!("notify.{field}: variable {name} is not set"))
    };
    let url = match (&n.webhook_url, &n.webhook_url_env) {
        (Some(url), _) => url.clone(),
        (None, Some(name)) => var("webhook_url_env", name)?,
        (None, None) => return Err("notify: set `webhook_url` or `webhook_url_env`".into()),
    };
    let mut config = WebhookConfig::new(url).with_format(match n.format {
        NotifyFormat::Slack => WebhookFormat::Slack,
        NotifyFormat::Json => WebhookFormat::Json,
    });
    if let Some(name) = &n.secret_env {
        config = config.with_secret(var("secret_env", name)?);
    }
    if let Some(base) = &n.base_url {
        config = config.with_base_url(base);
    }
    if let Some(max) = n.max_attempts {
        let (initial, longest) = (config.initial_delay, config.max_delay);
        config = config.with_retry(max, initial, longest);
    }
    // The error names neither the URL nor the secret.
    WebhookHuman::new(config).map_err(err("notify.webhook_url"))
}

#[cfg(feature = "otel")]
type Traces = Option<otel::Traces>;
#[cfg(not(feature = "otel"))]
type Traces = ();

/// Installs the process's `tracing` subscriber: warnings and errors (or what `RUST_LOG`
/// asks for) to stderr and, with the `otel` feature, spans over OTLP.
fn install_tracing(c: &ServeConfig) -> Result<Traces, String> {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let stderr = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .with_filter(filter);
    let registry = tracing_subscriber::registry().with(stderr);
    #[cfg(feature = "otel")]
    {
        let traces = otel::Traces::from_config(c.telemetry.as_ref())?;
        let layer = traces.as_ref().map(|t| t.layer());
        registry
            .with(layer)
            .try_init()
            .map_err(|e| format!("tracing: {e}"))?;
        Ok(traces)
    }
    #[cfg(not(feature = "otel"))]
    {
        if c.telemetry.is_some() {
            return Err(
                "telemetry: this george was built without the `otel` feature \
                        (cargo install george-cli --features otel)"
                    .into(),
            );
        }
        registry.try_init().map_err(|e| format!("tracing: {e}"))
    }
}

/// `[mcp.servers.<alias>]` as a connected executor (its server started, its tools listed).
async fn mcp(alias: &str, m: &McpServer) -> Result<george::mcp::McpToolExecutor, String> {
    use george::mcp::McpServer as Server;
    let field = format!("mcp.servers.{alias}");
    let mut server = match (&m.program, &m.url) {
        (Some(program), _) => {
            let mut s = Server::stdio(alias, program, m.args.iter().cloned());
            for (k, v) in &m.env {
                s = s.env(k, v);
            }
            for name in &m.pass_env {
                s = s.pass_env(name);
            }
            let secrets = george::core::secret::KnownSecrets::global();
            for name in &m.secret_env {
                s = s.secret_env(name, secrets).map_err(err(&field))?;
            }
            if let Some(cwd) = &m.cwd {
                s = s.cwd(cwd);
            }
            s
        }
        (None, Some(url)) => {
            let secrets = george::core::secret::KnownSecrets::global();
            let mut s = Server::http(alias, url);
            for (k, v) in &m.headers {
                s = s.header(k, v);
            }
            for (header, var) in &m.header_env {
                s = s
                    .header_from_env(header, "", var, secrets)
                    .map_err(err(&field))?;
            }
            if let Some(var) = &m.bearer_token_env {
                s = s
                    .header_from_env("Authorization", "Bearer ", var, secrets)
                    .map_err(err(&field))?;
            }
            s
        }
        (None, None) => return Err(format!("{field}: set `program` or `url`")),
    };
    for tool in &m.read {
        server = server.effect(tool, EffectClass::Read);
    }
    for tool in &m.dry_run {
        server = server.effect(tool, EffectClass::DryRun);
    }
    if let Some(ms) = m.timeout_ms {
        server = server.call_timeout(Duration::from_millis(ms));
    }
    george::mcp::McpToolExecutor::connect(server)
        .await
        .map_err(err(&field))
}

/// Builds the engine of `c` (not started).
async fn engine(
    c: &ServeConfig,
    human: Option<&WebhookHuman>,
    source: Arc<dyn GitSource>,
) -> Result<Engine, String> {
    let mut registry = Registry::new().map_err(err("providers"))?;
    if let Some(path) = &c.providers.profiles {
        registry = registry
            .load_profiles(path)
            .map_err(err("providers.profiles"))?;
    }
    if let Some(stream) = c.providers.stream {
        registry = registry.stream(stream);
    }
    let mut b = Engine::builder(store(c).await?, source)
        .reference(&c.source.reference)
        .poll_interval(Duration::from_millis(c.source.poll_interval_ms.max(100)))
        .provider_factory(Arc::new(registry))
        .autonomy_ceiling(c.autonomy_ceiling);
    if let Some(id) = &c.engine_id {
        b = b.id(id);
    }
    if let Some(h) = human {
        b = b.human(Arc::new(h.clone()));
    }
    if let Some(cmd) = &c.commands {
        b = b.commands(commands(cmd)?);
    }
    for w in &c.git_write {
        b = b.tools(Arc::new(git_write(w)?));
    }
    for (alias, m) in c.mcp.iter().flat_map(|m| &m.servers) {
        b = b.tools(Arc::new(mcp(alias, m).await?));
    }
    b.build().map_err(err("engine"))
}

/// Resolves when SIGTERM or Ctrl-C arrives.
async fn stop_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = term.recv() => {}
                    _ = tokio::signal::ctrl_c() => {}
                }
            }
            Err(_) => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}

/// Runs `george serve`.
pub(crate) async fn run(config_path: &Path) -> Result<u8, String> {
    let c = ServeConfig::load(config_path)?;
    #[cfg_attr(not(feature = "otel"), allow(clippy::let_unit_value, unused_variables))]
    let traces = install_tracing(&c)?;
    let human = c.notify.as_ref().map(webhook).transpose()?;
    let auth = AuthConfig::from_token_file(&c.http.tokens).map_err(|e| e.to_string())?;
    let client = match &c.kubernetes {
        Some(_) => Some(kube_client().await?),
        None => None,
    };
    let crs = match &client {
        Some(client) => cr_source(&c, client.clone()).await?,
        None => None,
    };
    let git: Arc<dyn GitSource> = match &crs {
        Some(crs) => Arc::new(crs.clone()),
        None => source(&c).await?,
    };
    let engine = engine(&c, human.as_ref(), git.clone()).await?;
    engine.start().await.map_err(err("starting the engine"))?;
    for e in engine.manifest_errors() {
        eprintln!("invalid manifest: {e}");
    }
    let run = engine.spawn();
    // The CRs reconciled as they change, with Ready conditions on the invalid ones; job
    // status projected into the Job CRs (rebuilt from the store at start).
    let follower = crs.as_ref().map(|crs| crs.follow(engine.clone()));
    let projector = match (&client, &c.kubernetes) {
        (Some(client), Some(k)) if k.status => {
            let resync = Duration::from_millis(k.status_resync_ms.unwrap_or(10_000).max(100));
            let mut p = StatusProjector::new(engine.clone(), client.clone(), &k.namespace)
                .with_resync(resync);
            if c.source.kubernetes && k.all_namespaces {
                // Each job's CR is where the source found it.
                p = p.across_namespaces();
            }
            Some(p.spawn())
        }
        _ => None,
    };
    // The API and, under /ui, the dashboard (which shows manifests from the same source).
    let app = george::http::router_with(
        engine.clone(),
        auth,
        george::http::ApiConfig::default().with_source(git),
    );
    let listener = tokio::net::TcpListener::bind(&c.http.listen)
        .await
        .map_err(|e| format!("http.listen {}: {e}", c.http.listen))?;
    let addr = listener.local_addr().map_err(|e| e.to_string())?;
    println!("listening on http://{addr}");
    let served = axum::serve(listener, app)
        .with_graceful_shutdown(stop_signal())
        .await;
    if let Some(f) = follower {
        f.shutdown().await;
    }
    if let Some(p) = projector {
        p.shutdown().await;
    }
    run.shutdown().await;
    if let Some(h) = &human {
        // Notifications under way get a few seconds; the requests are stored anyway.
        let _ = tokio::time::timeout(Duration::from_secs(5), h.idle()).await;
    }
    #[cfg(feature = "otel")]
    if let Some(t) = traces {
        let _ = tokio::task::spawn_blocking(move || t.shutdown()).await;
    }
    served.map_err(|e| format!("serving: {e}"))?;
    eprintln!("george: stopped");
    Ok(0)
}
