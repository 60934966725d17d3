//! The operator's configuration of `george serve` (TOML). Everything an engine may reach
//! is here — the ops repository, the store, provider profiles, command programs, Git
//! write targets, the listener and who may use it — and nothing in a manifest widens it.
//!
//! ```toml
//! engine_id = "engine-1"            # optional; unique among engines sharing a store
//! autonomy_ceiling = "supervised"   # manual | supervised (default) | autonomous: the
//!                                   # most autonomy any committed manifest or Policy gets
//!
//! [source]                          # the ops repository the engine follows
//! path = "ops"                      # a local repository, or:
//! # url = "https://git.example.com/platform/ops.git"
//! # kubernetes = true               # or: George's CRs on the cluster ([kubernetes])
//! # token_env = "OPS_REPO_TOKEN"    # the NAME of the variable holding the token
//! # cache_dir = "/var/cache/george" # bare clones of remote repositories
//! reference = "main"
//! poll_interval_ms = 10000
//!
//! [store]
//! sqlite = "george.db"              # or: postgres = "postgres://…?sslmode=verify-full&sslrootcert=…"
//!
//! [providers]
//! profiles = "providers.yaml"       # optional: the operator's provider profiles
//! stream = true                     # optional: stream responses (default true)
//!
//! [commands]                        # optional: programs `run_command` may run
//! programs = ["grep"]
//! read = ["grep"]                   # programs that only read (planning steps may run them)
//! cwd = "."
//! timeout_ms = 30000
//! pass_env = []                     # engine variables the children get, besides PATH, HOME, LANG, TZ
//!
//! [commands.policies.grep]          # optional, per program: narrow the built-in argument rules
//! allow_args = "-[a-zA-Z]+|[^-].*"  # every argument must match (anchored)
//! deny_options = ["-r"]
//! deny_subcommands = []
//! permissive = false                # true: start from no rule (e.g. to allow `env`)
//!
//! [[git_write]]                     # optional: repositories agents may commit to
//! alias = "app"                     # tools app_read_file and app_commit
//! path = "app"                      # a local repository, or url (+ token_env, work_dir)
//! branch = "main"
//! author_name = "George"
//! author_email = "george@example.invalid"
//! allowed_paths = ["charts/**"]
//! denied_paths = []
//!
//! [mcp.servers.fs]                 # optional: MCP tool servers; tools fs_<tool> (george-mcp)
//! program = "mcp-server-filesystem" # over stdio: program, args, cwd, env, pass_env, or:
//! # url = "https://tools.example/mcp" # over streamable HTTP: url, headers, header_env, bearer_token_env
//! args = ["ops"]
//! env = {}                          # variables set for the server (its environment is cleared)
//! pass_env = []                     # engine variables it gets, besides PATH, HOME, LANG, TZ
//! secret_env = []                   # engine variables it gets as secrets (redacted from all George stores)
//! read = ["read_text_file", "list_directory"] # tools that only read (every other tool is write;
//! dry_run = []                      #   the server's annotations may raise a class, never lower it)
//! timeout_ms = 60000                # per call; a call past it is cancelled on the server
//! # headers = { "X-Team" = "ops" }
//! # header_env = { "X-Api-Key" = "OPS_MCP_KEY" }   # header -> the NAME of the variable holding it
//! # bearer_token_env = "OPS_MCP_TOKEN"             # Authorization: Bearer <the variable's value>
//!
//! [kubernetes]                      # optional: George on a cluster (in-cluster config, else KUBECONFIG)
//! namespace = "george"              # where the Job CRs are: job status is projected into them
//! status = true                     # project job status and Events into Job CRs (default true)
//! status_resync_ms = 10000          # how often step-level changes are looked for
//! # all_namespaces = false          # with `source.kubernetes`: read the CRs of every namespace
//! # label_selector = "team=ops"     # with `source.kubernetes`: only the CRs that match
//!
//! [http]
//! listen = "127.0.0.1:8080"
//! tokens = "tokens.toml"            # hashed bearer tokens → identities (george_http::AuthConfig)
//!
//! [notify]                          # optional: post approval requests to a webhook
//! webhook_url_env = "GEORGE_WEBHOOK_URL" # the NAME of the variable holding the URL, or:
//! # webhook_url = "https://hooks.example.com/george"
//! format = "slack"                  # "slack" ({"text": ...}) or "json" (signed event)
//! secret_env = "GEORGE_WEBHOOK_SECRET" # optional: HMAC-SHA256 key (X-George-Signature)
//! base_url = "https://george.example.com/api/v1" # optional: links are <base_url>/approvals/<id>
//! max_attempts = 8                  # posts per notification before giving up
//!
//! [telemetry]                       # optional (a `george` built with `--features otel`)
//! endpoint = "http://127.0.0.1:4318" # OTLP/HTTP base URL; `/v1/traces` is appended
//! service_name = "george"           # the `service.name` resource attribute
//! ```
//!
//! Without `[telemetry]`, a `george` built with the `otel` feature exports traces when
//! `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` is set.
//!
//! Relative paths are relative to the configuration file's folder.

use std::path::{Path, PathBuf};

use serde::Deserialize;

/// `george.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ServeConfig {
    /// This engine's id (default: `george-<host>`-like random).
    pub(crate) engine_id: Option<String>,
    /// The operator's autonomy ceiling (`EngineConfig::autonomy_ceiling`); `manual`
    /// sends every plan to a person whatever the committed policies say.
    #[serde(default)]
    pub(crate) autonomy_ceiling: george_core::model::Autonomy,
    /// The ops repository.
    pub(crate) source: Source,
    /// The state store.
    pub(crate) store: Store,
    /// Provider profiles.
    #[serde(default)]
    pub(crate) providers: Providers,
    /// Command programs.
    pub(crate) commands: Option<Commands>,
    /// Git write targets.
    #[serde(default)]
    pub(crate) git_write: Vec<GitWrite>,
    /// The HTTP listener and its authentication.
    pub(crate) http: Http,
    /// Webhook notifications of approval requests.
    pub(crate) notify: Option<Notify>,
    /// OpenTelemetry traces.
    pub(crate) telemetry: Option<Telemetry>,
    /// MCP tool servers.
    pub(crate) mcp: Option<Mcp>,
    /// George on a cluster: CRs as the source, status projected into them.
    pub(crate) kubernetes: Option<Kubernetes>,
}

/// `[kubernetes]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Kubernetes {
    /// The namespace of the Job CRs (and, with `source.kubernetes`, of all the CRs read).
    pub(crate) namespace: String,
    /// Project job status into the Job CRs (default true).
    #[serde(default = "yes")]
    pub(crate) status: bool,
    /// The projection's resync interval in ms (default 10 000).
    pub(crate) status_resync_ms: Option<u64>,
    /// With `source.kubernetes`: every namespace rather than `namespace`.
    #[serde(default)]
    pub(crate) all_namespaces: bool,
    /// With `source.kubernetes`: a label selector the CRs must match.
    pub(crate) label_selector: Option<String>,
}

/// `[mcp]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Mcp {
    /// The servers by alias (`[mcp.servers.<alias>]`).
    #[serde(default)]
    pub(crate) servers: std::collections::BTreeMap<String, McpServer>,
}

/// `[mcp.servers.<alias>]`: one MCP tool server, over stdio (`program`) or streamable
/// HTTP (`url`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct McpServer {
    pub(crate) program: Option<String>,
    #[serde(default)]
    pub(crate) args: Vec<String>,
    pub(crate) cwd: Option<PathBuf>,
    #[serde(default)]
    pub(crate) env: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) pass_env: Vec<String>,
    /// Engine variables passed to a stdio server as secrets (registered for redaction).
    #[serde(default)]
    pub(crate) secret_env: Vec<String>,
    pub(crate) url: Option<String>,
    #[serde(default)]
    pub(crate) headers: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    pub(crate) header_env: std::collections::BTreeMap<String, String>,
    pub(crate) bearer_token_env: Option<String>,
    /// Tools (their names on the server) that only read.
    #[serde(default)]
    pub(crate) read: Vec<String>,
    /// Tools that only validate a change.
    #[serde(default)]
    pub(crate) dry_run: Vec<String>,
    pub(crate) timeout_ms: Option<u64>,
}

/// `[source]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Source {
    pub(crate) path: Option<PathBuf>,
    pub(crate) url: Option<String>,
    pub(crate) token_env: Option<String>,
    pub(crate) cache_dir: Option<PathBuf>,
    /// Read George's CRs from the cluster (`[kubernetes]`) rather than a repository.
    #[serde(default)]
    pub(crate) kubernetes: bool,
    #[serde(default = "main")]
    pub(crate) reference: String,
    #[serde(default = "poll")]
    pub(crate) poll_interval_ms: u64,
}

/// `[store]`: exactly one of `sqlite` and `postgres`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Store {
    pub(crate) sqlite: Option<PathBuf>,
    pub(crate) postgres: Option<String>,
}

/// `[providers]`.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Providers {
    pub(crate) profiles: Option<PathBuf>,
    /// Whether responses are streamed (default true).
    pub(crate) stream: Option<bool>,
}

/// `[commands]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Commands {
    pub(crate) programs: Vec<String>,
    #[serde(default)]
    pub(crate) read: Vec<String>,
    pub(crate) cwd: Option<PathBuf>,
    pub(crate) timeout_ms: Option<u64>,
    #[serde(default)]
    pub(crate) pass_env: Vec<String>,
    /// Argument policies by program (`[commands.policies.<program>]`); a program without
    /// one runs under the built-in rules (`ArgPolicy::for_program`).
    #[serde(default)]
    pub(crate) policies: std::collections::BTreeMap<String, Policy>,
}

/// `[commands.policies.<program>]`: narrows (or, with `permissive`, lifts) the built-in
/// argument rules of one program.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Policy {
    /// Start from no rule at all instead of the built-in ones.
    #[serde(default)]
    pub(crate) permissive: bool,
    /// Every argument must match this regular expression whole.
    pub(crate) allow_args: Option<String>,
    /// Options refused besides the built-in ones.
    #[serde(default)]
    pub(crate) deny_options: Vec<String>,
    /// Subcommands refused besides the built-in ones.
    #[serde(default)]
    pub(crate) deny_subcommands: Vec<String>,
}

/// `[[git_write]]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct GitWrite {
    pub(crate) alias: String,
    pub(crate) path: Option<PathBuf>,
    pub(crate) url: Option<String>,
    pub(crate) token_env: Option<String>,
    pub(crate) work_dir: Option<PathBuf>,
    #[serde(default = "main")]
    pub(crate) branch: String,
    #[serde(default = "author_name")]
    pub(crate) author_name: String,
    #[serde(default = "author_email")]
    pub(crate) author_email: String,
    #[serde(default)]
    pub(crate) allowed_paths: Vec<String>,
    #[serde(default)]
    pub(crate) denied_paths: Vec<String>,
}

/// `[http]`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Http {
    pub(crate) listen: String,
    pub(crate) tokens: PathBuf,
}

/// `[notify]`: a webhook told of each approval request and cancellation
/// (`george_http::notify::WebhookHuman`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Notify {
    /// The webhook's URL (a Slack hook's URL is a secret: prefer `webhook_url_env`).
    pub(crate) webhook_url: Option<String>,
    /// The name of the variable holding the URL.
    pub(crate) webhook_url_env: Option<String>,
    /// The body: `slack` (default) or `json`.
    #[serde(default)]
    pub(crate) format: NotifyFormat,
    /// The name of the variable holding the HMAC-SHA256 signing key.
    pub(crate) secret_env: Option<String>,
    /// Links to an approval are `<base_url>/approvals/<id>`.
    pub(crate) base_url: Option<String>,
    /// Posts of one notification before giving up (default 8).
    pub(crate) max_attempts: Option<u32>,
}

/// `[notify] format`.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum NotifyFormat {
    /// `{"text": ...}`.
    #[default]
    Slack,
    /// `{"event", "id", "url", "request"}`.
    Json,
}

/// `[telemetry]`: where OpenTelemetry traces go (OTLP over HTTP, protobuf).
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
#[cfg_attr(not(feature = "otel"), allow(dead_code))]
pub(crate) struct Telemetry {
    /// The collector's OTLP/HTTP base URL (`/v1/traces` is appended); default:
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`, else `OTEL_EXPORTER_OTLP_ENDPOINT`, else
    /// `http://localhost:4318`.
    pub(crate) endpoint: Option<String>,
    /// The `service.name` resource attribute (default `george`).
    pub(crate) service_name: Option<String>,
}

fn yes() -> bool {
    true
}
fn main() -> String {
    "main".into()
}
fn poll() -> u64 {
    10_000
}
fn author_name() -> String {
    "George".into()
}
fn author_email() -> String {
    "george@example.invalid".into()
}

impl ServeConfig {
    /// Reads and checks `path`; relative paths in it become relative to its folder.
    ///
    /// # Errors
    /// A message naming the file, and the line, column and field when TOML says.
    pub(crate) fn load(path: &Path) -> Result<ServeConfig, String> {
        let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
        let mut config: ServeConfig =
            toml::from_str(&text).map_err(|e| located(path, &text, &e))?;
        let base = path.parent().unwrap_or(Path::new("."));
        config.resolve(base);
        config
            .check()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        Ok(config)
    }

    fn resolve(&mut self, base: &Path) {
        let fix = |p: &mut Option<PathBuf>| {
            if let Some(x) = p.as_mut()
                && x.is_relative()
            {
                *x = base.join(&*x);
            }
        };
        fix(&mut self.source.path);
        fix(&mut self.source.cache_dir);
        fix(&mut self.store.sqlite);
        fix(&mut self.providers.profiles);
        if let Some(c) = self.commands.as_mut() {
            fix(&mut c.cwd);
        }
        for w in &mut self.git_write {
            fix(&mut w.path);
            fix(&mut w.work_dir);
        }
        if let Some(m) = self.mcp.as_mut() {
            for server in m.servers.values_mut() {
                fix(&mut server.cwd);
            }
        }
        if self.http.tokens.is_relative() {
            self.http.tokens = base.join(&self.http.tokens);
        }
    }

    fn check(&self) -> Result<(), String> {
        let kinds = [
            self.source.path.is_some(),
            self.source.url.is_some(),
            self.source.kubernetes,
        ];
        if kinds.iter().filter(|k| **k).count() != 1 {
            return Err("source: set exactly one of `path`, `url` and `kubernetes = true`".into());
        }
        if self.source.kubernetes && self.kubernetes.is_none() {
            return Err("source.kubernetes: needs a [kubernetes] section (its namespace)".into());
        }
        if let Some(k) = &self.kubernetes
            && !self.source.kubernetes
            && (k.all_namespaces || k.label_selector.is_some())
        {
            return Err(
                "kubernetes: `all_namespaces` and `label_selector` choose the CRs read as the \
                 source; they need `source.kubernetes = true`"
                    .into(),
            );
        }
        match (&self.store.sqlite, &self.store.postgres) {
            (Some(_), None) | (None, Some(_)) => {}
            _ => return Err("store: set exactly one of `sqlite` and `postgres`".into()),
        }
        if let Some(n) = &self.notify
            && n.webhook_url.is_some() == n.webhook_url_env.is_some()
        {
            return Err("notify: set exactly one of `webhook_url` and `webhook_url_env`".into());
        }
        for (i, w) in self.git_write.iter().enumerate() {
            match (&w.path, &w.url) {
                (Some(_), None) | (None, Some(_)) => {}
                _ => {
                    return Err(format!(
                        "git_write[{i}] ({}): set exactly one of `path` and `url`",
                        w.alias
                    ));
                }
            }
        }
        for (alias, m) in self.mcp.iter().flat_map(|m| &m.servers) {
            if m.program.is_some() == m.url.is_some() {
                return Err(format!(
                    "mcp.servers.{alias}: set exactly one of `program` (stdio) and `url` (streamable HTTP)"
                ));
            }
        }
        Ok(())
    }
}

/// `file:line:column: message` for a TOML error.
fn located(path: &Path, text: &str, e: &toml::de::Error) -> String {
    let (line, column) = e
        .span()
        .map(|s| {
            let before = &text[..s.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            (line, column)
        })
        .unwrap_or((1, 1));
    format!("{}:{line}:{column}: {}", path.display(), e.message())
}
