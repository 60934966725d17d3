//! Starting a server (a child over stdio, or a session over streamable HTTP), the
//! client handler that refreshes the tool list on `notifications/tools/list_changed`,
//! and the process-group guard of a stdio server.

use std::collections::HashMap;
use std::process::Stdio;
use std::sync::{Arc, RwLock};

use george_core::error::{Error, ErrorKind, Result};
use rmcp::model::{ClientCapabilities, ClientConfig, Implementation, Tool};
use rmcp::service::{NotificationContext, RoleClient, RunningService};
use rmcp::transport::streamable_http_client::StreamableHttpClientTransportConfig;
use rmcp::transport::{StreamableHttpClientTransport, TokioChildProcess};
use rmcp::{ClientHandler, Peer, ServiceExt};
use tokio::io::{AsyncBufReadExt, BufReader};

use crate::config::{McpServer, Transport};
use crate::tools::ToolSet;

/// What the executor and the handler share: the configuration and the current tools.
#[derive(Debug)]
pub(crate) struct Shared {
    pub(crate) config: McpServer,
    pub(crate) tools: RwLock<Arc<ToolSet>>,
}

impl Shared {
    pub(crate) fn tools(&self) -> Arc<ToolSet> {
        self.tools.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub(crate) fn set_tools(&self, tools: &[Tool]) {
        let set = Arc::new(ToolSet::new(&self.config, tools));
        *self.tools.write().unwrap_or_else(|e| e.into_inner()) = set;
    }

    /// Lists the server's tools (every page) and replaces the current set.
    pub(crate) async fn refresh(&self, peer: &Peer<RoleClient>) -> Result<()> {
        let tools = peer
            .list_all_tools()
            .await
            .map_err(|e| service_error(&self.config.alias, "tools/list", e))?;
        self.set_tools(&tools);
        Ok(())
    }
}

/// The client side of one connection: answers the server's requests with rmcp's
/// defaults (no sampling, no roots, no elicitation) and refreshes the tools when the
/// server says its list changed.
#[derive(Debug, Clone)]
pub(crate) struct Handler {
    pub(crate) shared: Arc<Shared>,
}

impl ClientHandler for Handler {
    async fn on_tool_list_changed(&self, context: NotificationContext<RoleClient>) {
        if let Err(e) = self.shared.refresh(&context.peer).await {
            tracing::warn!(server = %self.shared.config.alias, "refreshing MCP tools: {e}");
        }
    }

    fn get_info(&self) -> ClientConfig {
        ClientConfig::new(
            ClientCapabilities::default(),
            Implementation::new("george", env!("CARGO_PKG_VERSION")),
        )
    }
}

/// Kills a stdio server's whole process group when dropped.
#[derive(Debug, Default)]
pub(crate) struct GroupGuard(Option<u32>);

impl Drop for GroupGuard {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(pgid) = self.0.and_then(|p| i32::try_from(p).ok())
            && pgid > 0
        {
            // SAFETY: kill(2) with a negative pid signals a process group; no memory is
            // touched. ESRCH (the group is gone) is expected and ignored.
            unsafe {
                libc::kill(-pgid, libc::SIGKILL);
            }
        }
    }
}

/// One live connection to a server.
pub(crate) struct Connection {
    pub(crate) service: RunningService<RoleClient, Handler>,
    /// The stdio server's process id (its process group's id), for tests and logs.
    pub(crate) pid: Option<u32>,
    pub(crate) _group: GroupGuard,
}

/// An rmcp error as George's: a closed transport is transient (the executor restarts
/// the server), a timeout is `Timeout`, a protocol error `Backend`.
pub(crate) fn service_error(alias: &str, what: &str, e: rmcp::ServiceError) -> Error {
    use rmcp::ServiceError as E;
    let msg = format!("MCP server {alias:?}: {what}: {e}");
    match e {
        E::Timeout { .. } => Error::new(ErrorKind::Timeout, msg),
        E::TransportClosed | E::TransportSend(_) => Error::backend(msg).transient(),
        _ => Error::new(ErrorKind::MalformedResponse, msg),
    }
}

fn start_error(alias: &str, e: impl std::fmt::Display) -> Error {
    Error::backend(format!("MCP server {alias:?} cannot be started: {e}")).transient()
}

/// Starts the server, does the handshake and lists its tools into `shared`.
pub(crate) async fn connect(shared: &Arc<Shared>) -> Result<Connection> {
    let config = &shared.config;
    let alias = config.alias.as_str();
    let handler = Handler {
        shared: shared.clone(),
    };
    let start = async {
        let (service, pid) = match &config.transport {
            Transport::Stdio {
                program,
                args,
                env,
                cwd,
            } => {
                let mut cmd = tokio::process::Command::new(program);
                cmd.args(args).env_clear().envs(env).kill_on_drop(true);
                #[cfg(unix)]
                cmd.process_group(0);
                if let Some(cwd) = cwd {
                    cmd.current_dir(cwd);
                }
                let (child, stderr) = TokioChildProcess::builder(cmd)
                    .stderr(Stdio::piped())
                    .spawn()
                    .map_err(|e| start_error(alias, format!("{program:?}: {e}")))?;
                let pid = child.id();
                if let Some(stderr) = stderr {
                    let alias = alias.to_string();
                    tokio::spawn(async move {
                        let mut lines = BufReader::new(stderr).lines();
                        while let Ok(Some(line)) = lines.next_line().await {
                            let line = crate::tools::cut(&line, 2000);
                            tracing::debug!(server = %alias, "MCP server stderr: {line}");
                        }
                    });
                }
                let guard = GroupGuard(pid);
                let service = handler
                    .serve(child)
                    .await
                    .map_err(|e| start_error(alias, e))?;
                (service, (pid, guard))
            }
            Transport::Http { url, headers } => {
                let mut custom = HashMap::new();
                for (k, v) in headers {
                    let name = http::HeaderName::try_from(k.as_str()).map_err(|e| {
                        Error::invalid_input(format!("MCP server {alias:?}: header {k:?}: {e}"))
                    })?;
                    let value = http::HeaderValue::try_from(v.as_str()).map_err(|_| {
                        Error::invalid_input(format!(
                            "MCP server {alias:?}: the value of header {k:?} is not valid"
                        ))
                    })?;
                    custom.insert(name, value);
                }
                let transport = StreamableHttpClientTransport::from_config(
                    StreamableHttpClientTransportConfig::with_uri(url.as_str())
                        .custom_headers(custom),
                );
                let service = handler
                    .serve(transport)
                    .await
                    .map_err(|e| start_error(alias, e))?;
                (service, (None, GroupGuard::default()))
            }
        };
        shared.refresh(service.peer()).await?;
        Ok::<_, Error>(Connection {
            service,
            pid: pid.0,
            _group: pid.1,
        })
    };
    tokio::time::timeout(config.connect_timeout, start)
        .await
        .map_err(|_| {
            Error::new(
                ErrorKind::Timeout,
                format!(
                    "MCP server {alias:?} did not start and list its tools within {} ms",
                    config.connect_timeout.as_millis()
                ),
            )
        })?
}

/// The server's `instructions`, if it sent any (untrusted text).
pub(crate) fn instructions(service: &RunningService<RoleClient, Handler>) -> Option<String> {
    let info = service.peer_info()?;
    let v = serde_json::to_value(&*info).ok()?;
    v.get("instructions")?.as_str().map(str::to_string)
}
