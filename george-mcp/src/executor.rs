//! [`McpToolExecutor`]: one MCP server's tools as a George [`ToolExecutor`].

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use async_trait::async_trait;
use george_core::error::{Error, ErrorKind, Result, RetryStatus};
use george_core::tool::{EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};
use rmcp::Peer;
use rmcp::model::{CallToolRequestParams, RequestMetaObject};
use rmcp::service::RoleClient;
use tokio::time::Instant;

use crate::config::McpServer;
use crate::connect::{Connection, Shared, connect, instructions, service_error};
use crate::result::to_output;

/// The `_meta` key of a call's idempotency key (see
/// [`ToolInvocation`]'s contract): a server that remembers keys can apply a retried
/// call once.
pub const IDEMPOTENCY_META_KEY: &str = "dev.george/idempotencyKey";

/// The state of the connection: the live one, and the backoff after failed starts.
#[derive(Default)]
struct State {
    conn: Option<Connection>,
    /// Grows with each start, so a call that saw the transport close forgets only
    /// the connection it used.
    generation: u64,
    failures: u32,
    retry_at: Option<Instant>,
}

/// One MCP server's tools as a George [`ToolExecutor`]: register it with
/// `EngineBuilder::tools(Arc::new(executor))`.
///
/// - Its tools are the server's (`tools/list`), named `<alias>_<tool>`, with their
///   input schemas unchanged; the list is refreshed when the server sends
///   `notifications/tools/list_changed` (or on [`refresh_tools`](Self::refresh_tools)).
///   A running engine takes the new list on its next poll
///   ([`Engine::refresh_tools`](george_core::engine::Engine::refresh_tools)): a tool
///   added later is offered to the attempts that start after that, and a class raised
///   later applies to the next call ([`effect_of`](ToolExecutor::effect_of) answers from
///   the current list).
/// - A call is sent with the idempotency key in `_meta` ([`IDEMPOTENCY_META_KEY`]),
///   bounded by the server's call timeout; a call that times out or whose future is
///   dropped (the engine cancelled it) is cancelled on the server
///   (`notifications/cancelled`).
/// - A server found dead before a call is restarted (after a backoff when restarts
///   keep failing); a call in flight when the server dies fails with a transient
///   `Backend` error, and the next call restarts it.
///
/// # Errors (of [`call`](ToolExecutor::call))
/// `NotFound` for a tool the server does not have; `Timeout`; `Backend` (transient)
/// when the server died or cannot be started; `MalformedResponse` for a reply that is
/// not a tool result. A JSON-RPC error the server returns for the call (unknown
/// arguments, say) is an error *result* the model sees, not an `Err`.
pub struct McpToolExecutor {
    shared: Arc<Shared>,
    state: tokio::sync::Mutex<State>,
    starts: AtomicU64,
}

impl std::fmt::Debug for McpToolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("McpToolExecutor")
            .field("alias", &self.shared.config.alias)
            .field("tools", &self.shared.tools().names.len())
            .finish()
    }
}

impl McpToolExecutor {
    /// Starts (or connects to) the server, does the MCP handshake and lists its tools.
    ///
    /// # Errors
    /// `Backend` when the server cannot be started or refuses the handshake,
    /// `Timeout` past the connect timeout, `InvalidInput` for a bad header.
    pub async fn connect(config: McpServer) -> Result<Self> {
        let shared = Arc::new(Shared {
            config,
            tools: Default::default(),
        });
        let conn = connect(&shared).await?;
        Ok(McpToolExecutor {
            shared,
            state: tokio::sync::Mutex::new(State {
                conn: Some(conn),
                ..State::default()
            }),
            starts: AtomicU64::new(1),
        })
    }

    /// The server's alias (the prefix of its tools' names).
    pub fn alias(&self) -> &str {
        &self.shared.config.alias
    }

    /// How many times the server was started (1 + its restarts).
    pub fn starts(&self) -> u64 {
        self.starts.load(Ordering::Relaxed)
    }

    /// The server's `instructions` from its handshake. **Untrusted text**: George
    /// never puts it in a system prompt; show it to an operator, not to a model.
    pub async fn instructions(&self) -> Option<String> {
        let state = self.state.lock().await;
        instructions(&state.conn.as_ref()?.service)
    }

    /// The process id of a stdio server's current process (also its process group's).
    pub async fn server_pid(&self) -> Option<u32> {
        self.state.lock().await.conn.as_ref()?.pid
    }

    /// Lists the server's tools again (as `notifications/tools/list_changed` does).
    ///
    /// # Errors
    /// As [`call`](ToolExecutor::call)'s, for the `tools/list` request.
    pub async fn refresh_tools(&self) -> Result<()> {
        let (peer, _) = self.peer().await?;
        self.shared.refresh(&peer).await
    }

    /// The live connection's peer, (re)starting the server when it is dead.
    async fn peer(&self) -> Result<(Peer<RoleClient>, u64)> {
        let mut state = self.state.lock().await;
        if let Some(conn) = &state.conn {
            // The service loop ends (and its channel closes) when the transport does.
            if !conn.service.is_closed() && !conn.service.peer().is_transport_closed() {
                return Ok((conn.service.peer().clone(), state.generation));
            }
            tracing::warn!(server = %self.alias(), "MCP server died; restarting it");
        }
        // Dropping the dead connection kills what is left of its process group.
        state.conn = None;
        let now = Instant::now();
        if let Some(at) = state.retry_at.filter(|at| *at > now) {
            return Err(Error::backend(format!(
                "MCP server {:?} is down; the next restart is in {} ms",
                self.alias(),
                (at - now).as_millis()
            ))
            .with_retry(RetryStatus::Transient {
                after: Some(at - now),
            }));
        }
        match connect(&self.shared).await {
            Ok(conn) => {
                let peer = conn.service.peer().clone();
                state.conn = Some(conn);
                state.generation += 1;
                state.failures = 0;
                state.retry_at = None;
                self.starts.fetch_add(1, Ordering::Relaxed);
                Ok((peer, state.generation))
            }
            Err(e) => {
                state.failures += 1;
                state.retry_at = Some(now + self.shared.config.backoff(state.failures));
                Err(e.transient())
            }
        }
    }

    /// Forgets the connection after its transport closed during a call, so that the
    /// next call restarts the server.
    async fn forget(&self, generation: u64) {
        let mut state = self.state.lock().await;
        if state.generation == generation {
            state.conn = None;
        }
    }

    fn timeout(&self) -> Duration {
        self.shared.config.call_timeout
    }
}

#[async_trait]
impl ToolExecutor for McpToolExecutor {
    fn tools(&self) -> Vec<ToolDefinition> {
        self.shared.tools().definitions.clone()
    }

    /// The class of the tool in the server's *current* list: a refreshed list whose
    /// annotations raise a class takes effect on the next call, even though the engine
    /// took its tool list when it was built. A tool gone from the list is `Write`.
    fn effect_of(&self, invocation: &ToolInvocation) -> Option<EffectClass> {
        let tools = self.shared.tools();
        let effect = tools
            .definitions
            .iter()
            .find(|d| d.name == invocation.name)
            .map_or(EffectClass::Write, |d| d.effect);
        Some(effect)
    }

    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        let Some(tool) = self.shared.tools().names.get(&invocation.name).cloned() else {
            return Err(Error::not_found(format!(
                "no tool {:?} on MCP server {:?}",
                invocation.name,
                self.alias()
            )));
        };
        let arguments = match invocation.arguments {
            serde_json::Value::Object(map) => map,
            serde_json::Value::Null => serde_json::Map::new(),
            _ => return Ok(ToolOutput::error("the arguments must be a JSON object")),
        };
        let mut meta = serde_json::Map::new();
        meta.insert(
            IDEMPOTENCY_META_KEY.into(),
            invocation.idempotency_key.clone().into(),
        );
        let mut params = CallToolRequestParams::new(tool.clone()).with_arguments(arguments);
        params.meta = Some(RequestMetaObject::from(meta));
        let (peer, generation) = self.peer().await?;
        let alias = self.alias();
        let timeout = self.timeout();
        // On timeout (or when this future is dropped) rmcp sends notifications/cancelled.
        let result = match tokio::time::timeout(timeout, peer.call_tool(params)).await {
            Ok(r) => r,
            Err(_) => {
                return Err(Error::new(
                    ErrorKind::Timeout,
                    format!(
                        "MCP tool {tool:?} of server {alias:?} ran longer than {} ms; it was cancelled",
                        timeout.as_millis()
                    ),
                ));
            }
        };
        match result {
            Ok(result) => {
                let mut out = to_output(&result, self.shared.config.max_output_bytes);
                if out.is_error && out.content.is_empty() {
                    out.content = format!("MCP tool {tool:?} failed (no message)");
                }
                Ok(out)
            }
            Err(rmcp::ServiceError::McpError(e)) => Ok(ToolOutput::error(format!(
                "MCP server {alias:?} refused the call of {tool:?}: {}",
                e.message
            ))),
            // A task or an input request instead of a result: not supported, and asking
            // again would not change that.
            Err(rmcp::ServiceError::UnexpectedResponse) => Ok(ToolOutput::error(format!(
                "MCP server {alias:?} answered the call of {tool:?} with something other than \
                 a tool result (a task or an input request, which George does not support)"
            ))),
            Err(
                e @ (rmcp::ServiceError::TransportClosed | rmcp::ServiceError::TransportSend(_)),
            ) => {
                self.forget(generation).await;
                let e = service_error(alias, &format!("calling {tool:?}"), e);
                Err(Error::backend(format!(
                    "{e} (the server died during the call; it is restarted on the next call)"
                ))
                .transient())
            }
            Err(e) => Err(service_error(alias, &format!("calling {tool:?}"), e)),
        }
    }
}
