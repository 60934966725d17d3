//! The agent loop's answers to the model's tool calls that end or extend an attempt:
//! an outcome tool's arguments parsed into an [`Outcome`], and an `order_job` call.

use serde_json::{Value, json};

use super::attempt::{AttemptCtx, Outcome, fail};
use super::prompt::{DEFER, REPORT_BLOCKED, REPORT_FAILURE, REPORT_SUCCESS, SUBMIT_PLAN};
use crate::children::ChildOrder;
use crate::model::AgentSpec;
use crate::provider::Message;
use crate::state::{Plan, PlannedAction};

impl AttemptCtx<'_> {
    /// One `order_job` call: the content returned to the model and the child to wait
    /// for, if any; or why it was refused.
    pub(super) async fn order_child(
        &self,
        a: &crate::model::AgentConfig,
        agent_name: &str,
        needs_approval: bool,
        args: &Value,
    ) -> Result<(String, Option<String>), String> {
        if needs_approval {
            return Err(
                "this step needs a human's approval: it may not order child jobs while planning"
                    .into(),
            );
        }
        let order = ChildOrder::from_arguments(args)?;
        if !a.may_order.contains(&order.template) {
            return Err(format!(
                "agent {agent_name} may not order template {:?} (may_order: [{}])",
                order.template,
                a.may_order.join(", ")
            ));
        }
        let Some(orders) = self.orders else {
            return Err("child jobs cannot be ordered here".into());
        };
        let reply = orders.order(&order).await?;
        let wait = (order.wait && !reply.status.is_finished()).then(|| reply.name.clone());
        let content = json!({
            "job": reply.name,
            "created": reply.created,
            "status": reply.status,
            "outputs": reply.outputs,
            "waiting": wait.is_some(),
        })
        .to_string();
        Ok((content, wait))
    }

    pub(super) fn outcome_from(
        &self,
        name: &str,
        args: &Value,
        agent: &AgentSpec,
        needs_approval: bool,
    ) -> Result<Outcome, String> {
        let s = |k: &str| args.get(k).and_then(Value::as_str).map(str::to_string);
        match name {
            REPORT_SUCCESS if !needs_approval => {
                let mut outputs = match args.get("outputs") {
                    Some(Value::Object(m)) => Value::Object(m.clone()),
                    Some(Value::Null) | None => json!({}),
                    Some(v) => json!({ "value": v }),
                };
                if let (Some(summary), Some(o)) = (s("summary"), outputs.as_object_mut()) {
                    o.entry("summary").or_insert(Value::String(summary));
                }
                Ok(Outcome::Succeeded(outputs))
            }
            REPORT_SUCCESS => {
                Err("this step needs a human's approval: call submit_plan instead".into())
            }
            REPORT_FAILURE => Ok(fail(
                s("reason").unwrap_or_else(|| "no reason given".into()),
                args.get("retryable")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
            )),
            REPORT_BLOCKED => Ok(Outcome::Blocked(
                s("reason").unwrap_or_else(|| "no reason given".into()),
            )),
            DEFER if !needs_approval => {
                let secs = args
                    .get("seconds")
                    .and_then(Value::as_u64)
                    .ok_or("`seconds` (a positive integer) is required")?;
                Ok(Outcome::Deferred {
                    until_ms: self.clock.now_ms() + secs.clamp(1, 86_400) * 1000,
                    reason: s("reason").unwrap_or_default(),
                })
            }
            DEFER => Err(
                "a step that needs approval cannot be deferred: submit a plan or report failure"
                    .into(),
            ),
            SUBMIT_PLAN if needs_approval => {
                let summary = s("summary").ok_or("`summary` (a string) is required")?;
                let actions: Vec<PlannedAction> =
                    serde_json::from_value(args.get("actions").cloned().unwrap_or(json!([])))
                        .map_err(|e| {
                            format!("`actions` must be a list of {{tool, arguments}}: {e}")
                        })?;
                for a in &actions {
                    if !agent.spec.tools.contains(&a.tool) || !self.tools.contains_key(&a.tool) {
                        return Err(format!(
                            "action tool {:?} is not one of your tools ({})",
                            a.tool,
                            agent.spec.tools.join(", ")
                        ));
                    }
                }
                Ok(Outcome::NeedsApproval(Plan { summary, actions }))
            }
            SUBMIT_PLAN => {
                Err("this step does not need approval: report the outcome instead".into())
            }
            _ => Err(format!("unknown outcome tool {name}")),
        }
    }
}

/// The length of `m` as JSON, in bytes (what the transcript cap counts), counted
/// without building the text.
pub(super) fn json_len(m: &Message) -> usize {
    // A user message (the step's instructions, often long) is counted without
    // serializing it: the envelope's length is known, the text's is its escaped length.
    if let Message::User { content } = m {
        static ENVELOPE: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
        let envelope = *ENVELOPE.get_or_init(|| {
            serialized_len(&Message::User {
                content: String::new(),
            })
        });
        return envelope + escaped_len(content);
    }
    serialized_len(m)
}

fn serialized_len(m: &Message) -> usize {
    struct Count(usize);
    impl std::io::Write for Count {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0 += buf.len();
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut c = Count(0);
    let _ = serde_json::to_writer(&mut c, m);
    c.0
}

/// The bytes `s` takes inside a JSON string as `serde_json` writes it (quotes not
/// counted): `"` and `\\` and `\b \f \n \r \t` take two, other control characters six
/// (`\u00XX`), everything else as in UTF-8.
fn escaped_len(s: &str) -> usize {
    // Branch-free, with a byte-wide sum per chunk of 48 (at most 5 × 48 < 256), so the
    // loop vectorizes: about 2.5 instructions a byte against 13 for a `match` per byte.
    let mut extra = 0;
    for chunk in s.as_bytes().chunks(48) {
        let mut n = 0u8;
        for &b in chunk {
            let control = u8::from(b < 0x20);
            // \b \t \n \f \r: control characters written as two bytes, not six.
            let short = u8::from(b.wrapping_sub(0x08) < 6 && b != 0x0b);
            let quote = u8::from(b == b'"') | u8::from(b == b'\\');
            n = n.wrapping_add(control * 5 - short * 4 + quote);
        }
        extra += usize::from(n);
    }
    s.len() + extra
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_user_message_is_counted_as_serde_json_writes_it() {
        let every_ascii: String = (0u8..128).map(char::from).collect();
        for content in [
            "",
            "plain text",
            "quotes \" and \\ backslashes",
            "lines\nand\ttabs\r\u{8}\u{c}",
            "control \u{1} \u{1f} \u{7f}",
            "unicode: é ✓ 🚀 and </script>",
            &every_ascii,
            &every_ascii.repeat(3),
            // Six bytes each, longer than a counting chunk.
            &"\u{1}".repeat(200),
        ] {
            let m = Message::User {
                content: content.to_string(),
            };
            assert_eq!(json_len(&m), serialized_len(&m), "{content:?}");
        }
    }
}
