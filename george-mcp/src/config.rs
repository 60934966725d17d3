//! [`McpServer`]: what the operator declares about one MCP tool server — how to reach
//! it (a program over stdio, or a URL over streamable HTTP), the effect class of each
//! of its tools, and the limits of a call.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use george_core::command::DEFAULT_PASSED_ENV;
use george_core::error::{Error, Result};
use george_core::secret::KnownSecrets;
use george_core::tool::EffectClass;

/// How George reaches a server. Its `Debug` output names environment variables and
/// headers but never shows their values (they may hold secrets).
#[derive(Clone)]
#[non_exhaustive]
pub enum Transport {
    /// A child process speaking MCP on its stdin and stdout.
    Stdio {
        /// The program (a bare name looked up on the child's `PATH`, or a path).
        program: String,
        /// Its arguments, as an array (never a shell string).
        args: Vec<String>,
        /// Its whole environment: nothing else of the engine's reaches it.
        env: BTreeMap<String, String>,
        /// Its working directory (the engine's when `None`).
        cwd: Option<PathBuf>,
    },
    /// A server speaking MCP's streamable HTTP transport at a URL.
    Http {
        /// The MCP endpoint (e.g. `http://127.0.0.1:3001/mcp`).
        url: String,
        /// Headers sent with every request (values read from the environment by
        /// [`McpServer::header_from_env`] are registered as secrets).
        headers: BTreeMap<String, String>,
    },
}

impl std::fmt::Debug for Transport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Transport::Stdio {
                program,
                args,
                env,
                cwd,
            } => f
                .debug_struct("Stdio")
                .field("program", program)
                .field("args", args)
                .field("env", &env.keys().collect::<Vec<_>>())
                .field("cwd", cwd)
                .finish(),
            Transport::Http { url, headers } => f
                .debug_struct("Http")
                .field("url", url)
                .field("headers", &headers.keys().collect::<Vec<_>>())
                .finish(),
        }
    }
}

/// One MCP tool server as the operator declares it. Build it with [`McpServer::stdio`]
/// or [`McpServer::http`], then connect it with
/// [`McpToolExecutor::connect`](crate::McpToolExecutor::connect).
///
/// Its tools are offered to agents as `<alias>_<tool>`. Each tool is
/// [`EffectClass::Write`] unless the operator declares otherwise with
/// [`effect`](Self::effect); the server's annotations may raise that class, never
/// lower it (see the crate docs).
#[derive(Debug, Clone)]
pub struct McpServer {
    pub(crate) alias: String,
    pub(crate) transport: Transport,
    pub(crate) effects: BTreeMap<String, EffectClass>,
    pub(crate) call_timeout: Duration,
    pub(crate) connect_timeout: Duration,
    pub(crate) max_output_bytes: usize,
    pub(crate) max_description_bytes: usize,
    pub(crate) restart_backoff: (Duration, Duration),
}

impl McpServer {
    fn with_transport(alias: impl Into<String>, transport: Transport) -> Self {
        McpServer {
            alias: alias.into(),
            transport,
            effects: BTreeMap::new(),
            call_timeout: Duration::from_secs(60),
            connect_timeout: Duration::from_secs(30),
            max_output_bytes: 64 * 1024,
            max_description_bytes: 2048,
            restart_backoff: (Duration::from_millis(200), Duration::from_secs(30)),
        }
    }

    /// A server started as `program` with `args`, speaking MCP over stdio. The child
    /// runs with a **cleared environment** plus [`DEFAULT_PASSED_ENV`] (`PATH`, `HOME`,
    /// `LANG`, `TZ`, when the engine has them) and what [`env`](Self::env) and
    /// [`pass_env`](Self::pass_env) add, in its own process group (killed whole when
    /// the executor is dropped or the server is restarted).
    pub fn stdio<I, S>(alias: impl Into<String>, program: impl Into<String>, args: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let env = DEFAULT_PASSED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        Self::with_transport(
            alias,
            Transport::Stdio {
                program: program.into(),
                args: args.into_iter().map(Into::into).collect(),
                env,
                cwd: None,
            },
        )
    }

    /// A server at `url`, over MCP's streamable HTTP transport.
    pub fn http(alias: impl Into<String>, url: impl Into<String>) -> Self {
        Self::with_transport(
            alias,
            Transport::Http {
                url: url.into(),
                headers: BTreeMap::new(),
            },
        )
    }

    /// The alias: the prefix of the server's tool names (`<alias>_<tool>`).
    pub fn alias(&self) -> &str {
        &self.alias
    }

    /// The transport.
    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// Sets variable `name` to `value` in a stdio server's environment (no effect on
    /// an HTTP server).
    pub fn env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Transport::Stdio { env, .. } = &mut self.transport {
            env.insert(name.into(), value.into());
        }
        self
    }

    /// Passes the engine's variable `name` (read now; nothing when unset) to a stdio
    /// server. Only the variables the operator names are read.
    pub fn pass_env(self, name: &str) -> Self {
        match std::env::var(name) {
            Ok(v) => self.env(name, v),
            Err(_) => self,
        }
    }

    /// Passes the engine's variable `name` to a stdio server as a **secret** (an API
    /// token the server needs): read now, and its value registered with `secrets`
    /// (usually [`KnownSecrets::global`]) so that it is redacted from everything George
    /// stores — a tool result that echoes it, a transcript, an event.
    ///
    /// # Errors
    /// `InvalidInput` when the variable is unset or not Unicode (a missing secret is a
    /// configuration error, not a server started without it).
    pub fn secret_env(self, name: &str, secrets: &KnownSecrets) -> Result<Self> {
        let value = std::env::var(name).map_err(|_| {
            Error::invalid_input(format!(
                "MCP server {:?}: environment variable {name} (a secret for the server) is not set",
                self.alias
            ))
        })?;
        secrets.add(&value);
        Ok(self.env(name, value))
    }

    /// Removes variable `name` from a stdio server's environment (e.g. `HOME`).
    pub fn without_env(mut self, name: &str) -> Self {
        if let Transport::Stdio { env, .. } = &mut self.transport {
            env.remove(name);
        }
        self
    }

    /// Sets a stdio server's working directory.
    pub fn cwd(mut self, dir: impl Into<PathBuf>) -> Self {
        if let Transport::Stdio { cwd, .. } = &mut self.transport {
            *cwd = Some(dir.into());
        }
        self
    }

    /// Sends header `name: value` with every request to an HTTP server. For a secret,
    /// use [`header_from_env`](Self::header_from_env).
    pub fn header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        if let Transport::Http { headers, .. } = &mut self.transport {
            headers.insert(name.into(), value.into());
        }
        self
    }

    /// Sends header `name` with `prefix` followed by the value of the engine's
    /// variable `var` (e.g. `("Authorization", "Bearer ", "TOOLS_TOKEN")`). The
    /// variable is read now, and its value is registered with `secrets` (usually
    /// [`KnownSecrets::global`]) so that it is redacted from everything George stores.
    ///
    /// # Errors
    /// `InvalidInput` when the variable is unset or not Unicode.
    pub fn header_from_env(
        self,
        name: impl Into<String>,
        prefix: &str,
        var: &str,
        secrets: &KnownSecrets,
    ) -> Result<Self> {
        let value = std::env::var(var).map_err(|_| {
            Error::invalid_input(format!(
                "MCP server {:?}: environment variable {var} (for a header) is not set",
                self.alias
            ))
        })?;
        secrets.add(&value);
        Ok(self.header(name, format!("{prefix}{value}")))
    }

    /// Declares the effect class of the server's tool `tool` (its name on the server,
    /// without the alias). Undeclared tools are [`EffectClass::Write`].
    pub fn effect(mut self, tool: impl Into<String>, effect: EffectClass) -> Self {
        self.effects.insert(tool.into(), effect);
        self
    }

    /// The time one call may take (default 60 s); past it the call is cancelled
    /// (`notifications/cancelled`) and fails with `Timeout`.
    pub fn call_timeout(mut self, timeout: Duration) -> Self {
        self.call_timeout = timeout;
        self
    }

    /// The time starting (or restarting) the server and its handshake may take
    /// (default 30 s).
    pub fn connect_timeout(mut self, timeout: Duration) -> Self {
        self.connect_timeout = timeout;
        self
    }

    /// The cap on a result's text and on its structured content, in bytes (default
    /// 64 KiB each); what is cut is said so in the result.
    pub fn max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// The cap on a tool description passed to the model, in bytes (default 2 KiB).
    pub fn max_description_bytes(mut self, bytes: usize) -> Self {
        self.max_description_bytes = bytes;
        self
    }

    /// The delay before restarting a crashed server after a failed restart: `first`,
    /// doubling per consecutive failure up to `max` (default 200 ms and 30 s).
    pub fn restart_backoff(mut self, first: Duration, max: Duration) -> Self {
        self.restart_backoff = (first, max.max(first));
        self
    }

    /// The delay after `failures` consecutive failed (re)starts.
    pub(crate) fn backoff(&self, failures: u32) -> Duration {
        let (first, max) = self.restart_backoff;
        let factor = 1u32
            .checked_shl(failures.saturating_sub(1).min(20))
            .unwrap_or(u32::MAX);
        first.saturating_mul(factor).min(max)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stdio_environment_is_cleared_and_named() {
        let s = McpServer::stdio("fs", "server", ["a"])
            .env("ROOT", "/srv")
            .without_env("HOME");
        let Transport::Stdio { env, args, .. } = s.transport() else {
            panic!("stdio");
        };
        assert_eq!(args, &["a".to_string()]);
        assert_eq!(env.get("ROOT").map(String::as_str), Some("/srv"));
        assert!(
            env.keys()
                .all(|k| DEFAULT_PASSED_ENV.contains(&k.as_str()) || k == "ROOT")
        );
        assert!(!env.contains_key("HOME"));
    }

    #[test]
    fn debug_output_shows_no_values() {
        let s = McpServer::stdio("a", "p", ["x"]).env("TOKEN", "env-secret-value");
        let h = McpServer::http("b", "http://h/mcp").header("Authorization", "Bearer hdr-secret");
        let text = format!("{s:?} {h:?}");
        assert!(
            text.contains("TOKEN") && text.contains("Authorization"),
            "{text}"
        );
        assert!(
            !text.contains("env-secret-value") && !text.contains("hdr-secret"),
            "{text}"
        );
    }

    #[test]
    fn backoff_doubles_up_to_the_max() {
        let s = McpServer::http("x", "http://127.0.0.1:1/mcp")
            .restart_backoff(Duration::from_millis(100), Duration::from_millis(500));
        let ms: Vec<u128> = (1..=5).map(|f| s.backoff(f).as_millis()).collect();
        assert_eq!(ms, [100, 200, 400, 500, 500]);
    }

    #[test]
    fn secret_env_needs_the_variable_and_registers_it() {
        let secrets = KnownSecrets::new();
        let e = McpServer::stdio("x", "true", [""; 0])
            .secret_env("GEORGE_MCP_TEST_UNSET_VAR", &secrets)
            .unwrap_err();
        assert!(e.to_string().contains("GEORGE_MCP_TEST_UNSET_VAR"));
        // PATH is always set in tests; it stands in for a token here.
        let s = McpServer::stdio("x", "true", [""; 0])
            .without_env("PATH")
            .secret_env("PATH", &secrets)
            .unwrap();
        let Transport::Stdio { env, .. } = s.transport() else {
            panic!("stdio");
        };
        assert_eq!(
            env.get("PATH").map(String::as_str),
            std::env::var("PATH").ok().as_deref()
        );
        assert_eq!(secrets.len(), 1);
    }

    #[test]
    fn header_from_env_needs_the_variable_and_registers_it() {
        let secrets = KnownSecrets::new();
        let e = McpServer::http("x", "http://h/mcp")
            .header_from_env(
                "Authorization",
                "Bearer ",
                "GEORGE_MCP_TEST_UNSET_VAR",
                &secrets,
            )
            .unwrap_err();
        assert!(e.to_string().contains("GEORGE_MCP_TEST_UNSET_VAR"));
        // PATH is always set in tests; it stands in for a token here.
        let s = McpServer::http("x", "http://h/mcp")
            .header_from_env("X-Token", "", "PATH", &secrets)
            .unwrap();
        let Transport::Http { headers, .. } = s.transport() else {
            panic!("http");
        };
        assert!(headers.contains_key("X-Token"));
        assert_eq!(secrets.len(), 1);
    }
}
