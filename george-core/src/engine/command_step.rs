//! A command step: an allow-listed program with rendered arguments, decided by its exit
//! code and `done_when`.

use serde_json::json;
use tracing::Instrument as _;

use super::attempt::{AttemptCtx, AttemptReport, Outcome, clip, fail};
use super::prompt;
use crate::command::RUN_COMMAND;
use crate::error::ErrorKind;
use crate::events::EventAction;
use crate::template;
use crate::tool::{ToolInvocation, ToolOutput};

/// What a command step needs of a `run_command` result: the executor's
/// `data: {exit_code, stdout, stderr}` (the contract of [`RUN_COMMAND`]).
struct CommandResult {
    exit_code: i32,
    stdout: String,
    stderr: String,
}

impl CommandResult {
    fn from_output(o: &ToolOutput) -> Option<CommandResult> {
        let d = o.data.as_ref()?;
        let text = |k: &str| d.get(k).and_then(|v| v.as_str()).unwrap_or("").to_string();
        Some(CommandResult {
            exit_code: i32::try_from(d.get("exit_code")?.as_i64()?).ok()?,
            stdout: text("stdout"),
            stderr: text("stderr"),
        })
    }
}

impl AttemptCtx<'_> {
    pub(super) async fn run_command(&self, program: &str, args: &[String]) -> AttemptReport {
        let Some(tool) = self.tools.get(RUN_COMMAND) else {
            return self.report(Outcome::Blocked(format!(
                "no executor provides the `{RUN_COMMAND}` tool: command steps cannot run"
            )));
        };
        let ctx = if args.iter().any(|a| template::has_syntax(a)) {
            prompt::render_context(self.desired, self.record)
        } else {
            serde_json::Value::Null
        };
        let mut rendered = Vec::with_capacity(args.len());
        for a in args {
            match template::render_limited(a, &ctx, self.render) {
                Ok(s) => rendered.push(s),
                Err(e) => {
                    let why = format!(
                        "rendering the command arguments of step `{}` (template `{}`): {e}",
                        self.spec.id, self.record.template
                    );
                    return self.report(fail(why, false));
                }
            }
        }
        let mut r = self.report(fail("", false));
        let key = format!(
            "{}/{}/{}/command",
            self.record.name, self.spec.id, self.attempt
        );
        let inv = ToolInvocation::new(
            RUN_COMMAND,
            json!({"program": program, "args": rendered}),
            key,
        )
        .with_context(self.tool_context());
        let effect = tool.effect_of(&inv);
        let span = tracing::info_span!("tool.call", tool = RUN_COMMAND, effect = effect.as_str());
        let out = match tool.executor.call(inv).instrument(span).await {
            Ok(o) => match CommandResult::from_output(&o) {
                Some(c) => c,
                // A refusal (a program off the allowlist) or a sandbox's own "no".
                None => {
                    r.outcome = Outcome::Blocked(o.content);
                    return r;
                }
            },
            Err(e) if e.kind() == ErrorKind::PermissionDenied => {
                r.outcome = Outcome::Blocked(e.to_string());
                return r;
            }
            Err(e) => {
                r.outcome = fail(e.to_string(), e.is_retryable());
                return r;
            }
        };
        r.events.push(self.event(
            &crate::events::engine_actor(),
            EventAction::CommandRan,
            format!(
                "{program} {} → exit {}: {}",
                rendered.join(" "),
                out.exit_code,
                clip(out.stdout.trim(), 120)
            ),
        ));
        let check = self.spec.done_when.as_ref();
        let want_code = check.map_or(0, |c| c.exit_code);
        let mut done = out.exit_code == want_code;
        let mut why = format!("exit code {} (expected {want_code})", out.exit_code);
        if done && let Some(pat) = check.and_then(|c| c.output_matches.as_deref()) {
            match regex::Regex::new(pat) {
                Ok(re) => {
                    done = re.is_match(&out.stdout);
                    why = format!(
                        "output {:?} does not match /{pat}/",
                        clip(out.stdout.trim(), 80)
                    );
                }
                Err(e) => {
                    r.outcome = fail(format!("done_when.output_matches: {e}"), false);
                    return r;
                }
            }
        }
        r.outcome = if done {
            Outcome::Succeeded(json!({
                "exit_code": out.exit_code, "stdout": out.stdout, "stderr": out.stderr
            }))
        } else if let Some(defer) = check.and_then(|c| c.defer_ms) {
            if self.attempt >= self.spec.retry.attempts {
                fail(
                    format!("not done after {} checks: {why}", self.attempt),
                    false,
                )
            } else {
                Outcome::Deferred {
                    until_ms: self.clock.now_ms() + defer,
                    reason: format!("not done yet: {why}"),
                }
            }
        } else {
            fail(
                format!("{why}; stderr: {}", clip(out.stderr.trim(), 200)),
                true,
            )
        };
        r
    }
}
