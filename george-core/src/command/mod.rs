//! [`CommandToolExecutor`]: runs allow-listed programs with arguments as an array
//! (never a shell string), under an argument policy, with a cleared environment, in
//! their own process group, with a timeout and output read under a byte cap.
//!
//! This is defence in depth, not a sandbox: see [`ArgPolicy`] for what the argument
//! rules stop and what they cannot. For untrusted work, register an own
//! [`ToolExecutor`] for [`RUN_COMMAND`] that runs commands in a container or namespace.

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::time::Duration;

use async_trait::async_trait;
use serde_json::json;

use crate::error::{Error, ErrorKind, Result};
use crate::tool::{EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput};

mod policy;
mod run;

pub use policy::{ArgPolicy, PROGRAM_RUNNERS};

/// The tool every command executor provides: `{"program": string, "args": [string]}`.
/// Command steps call it through the [`ToolExecutor`] trait, so an embedder can register
/// its own (sandboxed) executor for it. Its result's `data` must be
/// `{"exit_code": int, "stdout": string, "stderr": string}`; a result without it (or a
/// `PermissionDenied` error) is a refusal: the step is `Blocked` with the content.
pub const RUN_COMMAND: &str = "run_command";

/// The engine's environment variables a child gets by default (when the engine has
/// them): nothing else of the engine's environment reaches a child.
pub const DEFAULT_PASSED_ENV: &[&str] = &["PATH", "HOME", "LANG", "TZ"];

/// The result of one program run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CommandOutput {
    /// Exit code (`-1` when killed by a signal).
    pub exit_code: i32,
    /// Standard output (UTF-8, lossy), truncated to the executor's limit.
    pub stdout: String,
    /// Standard error, truncated likewise.
    pub stderr: String,
    /// Whether either stream was truncated.
    pub truncated: bool,
}

/// Runs programs from an allowlist. Offers one tool, `run_command`
/// (`{"program": string, "args": [string]}`).
///
/// Each child runs
/// - with a **cleared environment** plus [`DEFAULT_PASSED_ENV`] and what the operator
///   adds ([`with_env`](Self::with_env), [`pass_env`](Self::pass_env)): the engine's
///   secrets are not inherited;
/// - under its program's [`ArgPolicy`] (built-in rules refuse options that run other
///   programs, such as `git -c`, `find -exec`, `sh -c`; [`PROGRAM_RUNNERS`] such as
///   `env` and `xargs` are refused whole);
/// - in the declared working directory, in **its own process group**, killed whole on
///   timeout and once the child exits (nothing it started outlives it);
/// - with stdout and stderr read incrementally and **capped** (bytes past the cap are
///   read and dropped, so memory stays bounded whatever the child prints).
///
/// # Errors
/// `PermissionDenied` for a program not on the allowlist, with a path separator, or
/// with arguments its policy refuses; `Timeout` when the program runs longer than the
/// timeout (its group is killed); `Backend` when it cannot be started.
#[derive(Debug, Clone)]
pub struct CommandToolExecutor {
    allow: BTreeSet<String>,
    effects: BTreeMap<String, EffectClass>,
    policies: BTreeMap<String, ArgPolicy>,
    env: BTreeMap<String, String>,
    timeout: Duration,
    max_output_bytes: usize,
    cwd: Option<PathBuf>,
}

impl CommandToolExecutor {
    /// An executor allowing exactly `programs` (bare names, looked up on `PATH`), each
    /// under [`ArgPolicy::for_program`], with [`DEFAULT_PASSED_ENV`] passed from the
    /// engine's environment, a 30 s timeout and 64 KiB of output per stream.
    pub fn new<I, S>(programs: I) -> Self
    where
        I: IntoIterator<Item = S>,
        S: Into<String>,
    {
        let env = DEFAULT_PASSED_ENV
            .iter()
            .filter_map(|k| std::env::var(k).ok().map(|v| (k.to_string(), v)))
            .collect();
        CommandToolExecutor {
            allow: programs.into_iter().map(Into::into).collect(),
            effects: BTreeMap::new(),
            policies: BTreeMap::new(),
            env,
            timeout: Duration::from_secs(30),
            max_output_bytes: 64 * 1024,
            cwd: None,
        }
    }

    /// Declares the [`EffectClass`] of `program` (every program is `Write` until
    /// declared otherwise). A planning attempt may run only `Read` and `DryRun`
    /// programs through `run_command`; the engine refuses the others before they run.
    pub fn with_effect(mut self, program: impl Into<String>, effect: EffectClass) -> Self {
        self.effects.insert(program.into(), effect);
        self
    }

    /// The effect class of `program`: as declared, else `Write`.
    pub fn effect(&self, program: &str) -> EffectClass {
        self.effects.get(program).copied().unwrap_or_default()
    }

    /// Replaces the argument policy of `program` (by default
    /// [`ArgPolicy::for_program`]); [`ArgPolicy::permissive`] lifts every rule.
    pub fn with_policy(mut self, program: impl Into<String>, policy: ArgPolicy) -> Self {
        self.policies.insert(program.into(), policy);
        self
    }

    /// The argument policy `program` runs under.
    pub fn policy(&self, program: &str) -> ArgPolicy {
        self.policies
            .get(program)
            .cloned()
            .unwrap_or_else(|| ArgPolicy::for_program(program))
    }

    /// Sets variable `name` to `value` in every child's environment.
    pub fn with_env(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.env.insert(name.into(), value.into());
        self
    }

    /// Passes the engine's variable `name` (read now) to every child; nothing when the
    /// engine does not have it.
    pub fn pass_env(mut self, name: &str) -> Self {
        if let Ok(v) = std::env::var(name) {
            self.env.insert(name.to_string(), v);
        }
        self
    }

    /// Removes variable `name` from every child's environment (e.g. `HOME`).
    pub fn without_env(mut self, name: &str) -> Self {
        self.env.remove(name);
        self
    }

    /// The names of the variables every child gets.
    pub fn env_names(&self) -> impl Iterator<Item = &str> {
        self.env.keys().map(String::as_str)
    }

    /// Sets the timeout.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sets the output cap per stream, in bytes.
    pub fn with_max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes;
        self
    }

    /// Sets the working directory.
    pub fn with_cwd(mut self, cwd: impl Into<PathBuf>) -> Self {
        self.cwd = Some(cwd.into());
        self
    }

    /// Whether `program` is allowed.
    pub fn allows(&self, program: &str) -> bool {
        self.allow.contains(program)
    }

    /// Runs `program` with `args`.
    pub async fn run(&self, program: &str, args: &[String]) -> Result<CommandOutput> {
        if !self.allows(program) || program.contains('/') {
            return Err(Error::new(
                ErrorKind::PermissionDenied,
                format!("program {program:?} is not on the command allowlist"),
            ));
        }
        self.policy(program)
            .check(program, args)
            .map_err(|why| Error::new(ErrorKind::PermissionDenied, why))?;
        run::run(run::Launch {
            program,
            args,
            env: &self.env,
            cwd: self.cwd.as_ref(),
            timeout: self.timeout,
            cap: self.max_output_bytes,
        })
        .await
    }
}

#[async_trait]
impl ToolExecutor for CommandToolExecutor {
    fn tools(&self) -> Vec<ToolDefinition> {
        // The tool's class is the most powerful of its programs'; `effect_of` names the
        // class of each call.
        let effect = self
            .allow
            .iter()
            .map(|p| self.effect(p))
            .max()
            .unwrap_or(EffectClass::Read);
        vec![
            ToolDefinition::new(
                RUN_COMMAND,
                format!(
                    "Run a program (one of: {}) with arguments given as an array; returns exit code, stdout and stderr.",
                    self.allow.iter().cloned().collect::<Vec<_>>().join(", ")
                ),
                json!({
                    "type": "object",
                    "properties": {
                        "program": {"type": "string"},
                        "args": {"type": "array", "items": {"type": "string"}}
                    },
                    "required": ["program"],
                    "additionalProperties": false
                }),
            )
            .with_effect(effect),
        ]
    }

    fn effect_of(&self, invocation: &ToolInvocation) -> Option<EffectClass> {
        let program = invocation.arguments.get("program")?.as_str()?;
        Some(self.effect(program))
    }

    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        if invocation.name != RUN_COMMAND {
            return Err(Error::not_found(format!("no tool {:?}", invocation.name)));
        }
        let Some(program) = invocation.arguments.get("program").and_then(|p| p.as_str()) else {
            return Ok(ToolOutput::error("`program` (a string) is required"));
        };
        let args: Vec<String> = match invocation.arguments.get("args") {
            None => vec![],
            Some(serde_json::Value::Array(a)) => {
                let mut v = Vec::with_capacity(a.len());
                for x in a {
                    match x.as_str() {
                        Some(s) => v.push(s.to_string()),
                        None => return Ok(ToolOutput::error("`args` must be an array of strings")),
                    }
                }
                v
            }
            Some(_) => return Ok(ToolOutput::error("`args` must be an array of strings")),
        };
        match self.run(program, &args).await {
            Ok(o) => {
                let content = format!(
                    "exit code {}\n--- stdout\n{}\n--- stderr\n{}",
                    o.exit_code, o.stdout, o.stderr
                );
                let out = if o.exit_code == 0 {
                    ToolOutput::ok(content)
                } else {
                    ToolOutput::error(content)
                };
                Ok(out.with_data(json!({
                    "exit_code": o.exit_code, "stdout": o.stdout, "stderr": o.stderr, "truncated": o.truncated
                })))
            }
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                Ok(ToolOutput::error(e.to_string()))
            }
            Err(e) => Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn runs_allowed_programs_with_array_args() {
        let ex = CommandToolExecutor::new(["echo", "sh"]);
        let o = ex
            .run("echo", &["a b".into(), "$(id)".into()])
            .await
            .unwrap();
        assert_eq!(o.exit_code, 0);
        assert_eq!(o.stdout, "a b $(id)\n", "no shell expansion");
        let e = ex.run("ls", &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
        let e = ex.run("/bin/echo", &[]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::PermissionDenied);
    }

    #[tokio::test]
    async fn times_out_and_truncates() {
        let ex = CommandToolExecutor::new(["sleep", "head"])
            .with_timeout(Duration::from_millis(100))
            .with_max_output_bytes(10);
        let e = ex.run("sleep", &["5".into()]).await.unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Timeout);
        let o = ex
            .run("head", &["-c".into(), "100".into(), "/dev/zero".into()])
            .await
            .unwrap();
        assert!(o.truncated);
        let o = ex.run("sh", &[]).await;
        assert!(o.is_err());
    }

    #[tokio::test]
    async fn tool_refusal_is_an_error_result() {
        let ex = CommandToolExecutor::new(["echo"]);
        let out = ex
            .call(ToolInvocation::new(
                "run_command",
                json!({"program": "rm", "args": ["-rf", "/"]}),
                "k",
            ))
            .await
            .unwrap();
        assert!(out.is_error);
        assert!(out.content.contains("not on the command allowlist"));
    }
}
