//! Assembling a streamed chat completion: `data:` chunks of `chat.completion.chunk`
//! objects, then `data: [DONE]`
//! (<https://platform.openai.com/docs/api-reference/chat-streaming>).
//!
//! Tool calls arrive as deltas merged by `index`: the first delta of a call carries
//! its `id` and `name`, the following ones fragments of the `arguments` string. Known
//! quirks of compatible servers handled here:
//! - a delta without `index`: it continues the call its `id` names, or the last call;
//! - the same `index` (e.g. always 0) for several calls: a delta with a new `id`
//!   starts a new call;
//! - `id` and `name` repeated in every delta: an `id` already seen continues that
//!   call, a repeated `name` is not appended;
//! - `reasoning_content` / `reasoning` deltas (DeepSeek, llama.cpp, vLLM, OpenRouter):
//!   the model's thinking, kept out of the answer's `content` (its length is logged);
//! - a last chunk with `choices: []` and the `usage`;
//! - an `error` object inside the stream (OpenAI, vLLM): the call fails with it.

use george_core::provider::{AssistantMessage, ChatResponse, Usage};
use george_core::{Error, Result};
use serde::Deserialize;
use serde_json::Value;

use super::response::{self, FunctionDelta, WireUsage, nullable};

/// One `chat.completion.chunk`.
#[derive(Debug, Deserialize)]
pub(crate) struct ChatCompletionChunk {
    #[serde(default, deserialize_with = "nullable")]
    pub choices: Vec<ChunkChoice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
    #[serde(default)]
    pub error: Option<Value>,
}

/// One choice of a chunk.
#[derive(Debug, Deserialize)]
pub(crate) struct ChunkChoice {
    #[serde(default, deserialize_with = "nullable")]
    pub index: u32,
    #[serde(default, deserialize_with = "nullable")]
    pub delta: Delta,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// What a chunk adds to the message.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct Delta {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default)]
    pub reasoning: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tool_calls: Vec<ToolCallDelta>,
}

/// A fragment of one tool call.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ToolCallDelta {
    #[serde(default)]
    pub index: Option<u64>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub function: FunctionDelta,
}

/// A tool call being assembled.
#[derive(Debug, Default)]
struct PartialCall {
    index: Option<u64>,
    id: Option<String>,
    name: String,
    arguments: String,
    /// Arguments sent as a JSON object rather than a string (a few servers).
    arguments_value: Option<Value>,
}

/// The state of a streamed response, fed chunk by chunk.
#[derive(Debug, Default)]
pub(crate) struct StreamState {
    content: String,
    refusal: String,
    reasoning_chars: usize,
    calls: Vec<PartialCall>,
    finish_reason: Option<String>,
    usage: Option<WireUsage>,
    /// `[DONE]` was received.
    pub done: bool,
}

impl StreamState {
    /// Feeds the data of one event. Returns an error for a chunk that is not JSON or
    /// carries an `error`.
    pub fn feed(&mut self, provider: &str, data: &str) -> Result<()> {
        let data = data.trim();
        if data == "[DONE]" {
            self.done = true;
            return Ok(());
        }
        if data.is_empty() {
            return Ok(());
        }
        let chunk: ChatCompletionChunk = serde_json::from_str(data)
            .map_err(|e| crate::error::malformed(provider, format!("stream chunk: {e}")))?;
        if let Some(err) = chunk.error {
            return Err(stream_error(provider, &err));
        }
        if let Some(u) = chunk.usage {
            self.usage = Some(u);
        }
        // One answer was asked for (n = 1): other choices are ignored.
        for choice in chunk.choices.into_iter().filter(|c| c.index == 0) {
            let d = choice.delta;
            if let Some(t) = d.content {
                self.content.push_str(&t);
            }
            if let Some(t) = d.refusal {
                self.refusal.push_str(&t);
            }
            for t in [d.reasoning_content, d.reasoning].into_iter().flatten() {
                self.reasoning_chars += t.chars().count();
            }
            for tc in d.tool_calls {
                self.merge(tc);
            }
            if let Some(f) = choice.finish_reason.filter(|f| !f.is_empty()) {
                self.finish_reason = Some(f);
            }
        }
        Ok(())
    }

    /// Whether the stream said enough to be complete: `[DONE]`, or at least a
    /// `finish_reason` (some servers end without `[DONE]`).
    pub fn complete(&self) -> bool {
        self.done || self.finish_reason.is_some()
    }

    fn merge(&mut self, tc: ToolCallDelta) {
        let id = tc.id.filter(|id| !id.is_empty());
        let name = tc.function.name.filter(|n| !n.is_empty());
        let slot = match &id {
            // A known id continues its call; a new id is a new call, whatever the index.
            Some(id) => self.calls.iter().rposition(|c| c.id.as_ref() == Some(id)),
            None => {
                let found = match tc.index {
                    Some(i) => self.calls.iter().rposition(|c| c.index == Some(i)),
                    None => self.calls.len().checked_sub(1),
                };
                // No id, no index, but another tool's name after complete arguments:
                // the previous call is over.
                found.filter(|&k| {
                    let c = &self.calls[k];
                    !(name.is_some()
                        && c.name.as_str() != name.as_deref().unwrap_or_default()
                        && !c.arguments.is_empty())
                })
            }
        };
        let k = match slot {
            Some(k) => k,
            None => {
                self.calls.push(PartialCall {
                    index: tc.index,
                    id: id.clone(),
                    ..PartialCall::default()
                });
                self.calls.len() - 1
            }
        };
        let call = &mut self.calls[k];
        if call.id.is_none() {
            call.id = id;
        }
        if let Some(n) = name
            && n != call.name
        {
            call.name.push_str(&n);
        }
        match tc.function.arguments {
            Some(Value::String(s)) => call.arguments.push_str(&s),
            Some(Value::Null) | None => {}
            Some(other) => call.arguments_value = Some(other),
        }
    }

    /// The response assembled so far (usage without cost).
    pub fn finish(self, provider: &str) -> ChatResponse {
        if self.reasoning_chars > 0 {
            tracing::debug!(
                provider,
                reasoning_chars = self.reasoning_chars,
                "the model streamed reasoning, kept out of the answer"
            );
        }
        let tool_calls: Vec<_> = self
            .calls
            .into_iter()
            .map(|c| {
                let args = c
                    .arguments_value
                    .or_else(|| (!c.arguments.is_empty()).then_some(Value::String(c.arguments)));
                response::tool_call(c.id, c.name, args)
            })
            .collect();
        let mut content = self.content;
        if content.is_empty() && !self.refusal.is_empty() {
            tracing::warn!(provider, "the model refused: its refusal is the answer");
            content = self.refusal;
        }
        let stop_reason =
            response::stop_reason(self.finish_reason.as_deref(), !tool_calls.is_empty());
        let usage: Usage = self.usage.map(|u| u.to_usage()).unwrap_or_default();
        let mut resp = ChatResponse::new(
            AssistantMessage {
                content: (!content.is_empty()).then_some(content),
                tool_calls,
            },
            usage,
        );
        resp.stop_reason = stop_reason;
        resp
    }
}

/// The error for an event named `error` (llama.cpp's server sends
/// `error: {"code":400,"message":..,"type":"exceed_context_size_error",..}` when a
/// streamed request fails): its data, an error object or an envelope around one,
/// mapped as [`stream_error`] maps one.
pub(crate) fn error_event(provider: &str, data: &str) -> Error {
    match serde_json::from_str::<Value>(data) {
        Ok(v) => stream_error(provider, v.get("error").unwrap_or(&v)),
        Err(_) => {
            let text: String = data.chars().take(300).collect();
            stream_error(provider, &serde_json::json!({ "message": text }))
        }
    }
}

/// The error for an `error` object inside a stream: its `code` when that is an HTTP
/// status (vLLM, llama.cpp), else 500, mapped like a status.
fn stream_error(provider: &str, err: &Value) -> Error {
    let wrapped = serde_json::json!({ "error": err });
    let body = response::error_body(&wrapped);
    let status = err
        .get("code")
        .and_then(Value::as_u64)
        .filter(|c| (400..600).contains(c))
        .map_or(500, |c| c as u16);
    crate::error::from_status(provider, status, &[], &body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use george_core::provider::StopReason;
    use serde_json::json;

    fn run(chunks: &[Value]) -> ChatResponse {
        let mut s = StreamState::default();
        for c in chunks {
            s.feed("t", &c.to_string()).unwrap();
        }
        s.feed("t", "[DONE]").unwrap();
        assert!(s.complete());
        s.finish("t")
    }

    fn tc(index: Option<u64>, id: Option<&str>, name: Option<&str>, args: &str) -> Value {
        let mut d = json!({"function": {"arguments": args}});
        if let Some(i) = index {
            d["index"] = json!(i);
        }
        if let Some(id) = id {
            d["id"] = json!(id);
        }
        if let Some(n) = name {
            d["function"]["name"] = json!(n);
        }
        json!({"choices": [{"index": 0, "delta": {"tool_calls": [d]}}]})
    }

    fn names_args(r: &ChatResponse) -> Vec<(String, String, Value)> {
        r.message
            .tool_calls
            .iter()
            .map(|c| (c.id.clone(), c.name.clone(), c.arguments.clone()))
            .collect()
    }

    #[test]
    fn merges_by_index_constant_index_and_missing_index() {
        let two = vec![
            ("a".to_string(), "alpha".to_string(), json!({"v": 1})),
            ("b".to_string(), "beta".to_string(), json!({"v": 2})),
        ];
        // Interleaved by index.
        let r = run(&[
            tc(Some(0), Some("a"), Some("alpha"), ""),
            tc(Some(1), Some("b"), Some("beta"), "{\"v\""),
            tc(Some(0), None, None, "{\"v\":1}"),
            tc(Some(1), None, None, ":2}"),
        ]);
        assert_eq!(names_args(&r), two);
        assert_eq!(r.stop_reason, StopReason::ToolUse);
        // Constant index 0 for both calls.
        let r = run(&[
            tc(Some(0), Some("a"), Some("alpha"), "{\"v\""),
            tc(Some(0), None, None, ":1}"),
            tc(Some(0), Some("b"), Some("beta"), "{\"v\""),
            tc(Some(0), None, None, ":2}"),
        ]);
        assert_eq!(names_args(&r), two);
        // No index at all; id and name repeated in every delta.
        let r = run(&[
            tc(None, Some("a"), Some("alpha"), "{\"v\""),
            tc(None, Some("a"), Some("alpha"), ":1}"),
            tc(None, Some("b"), Some("beta"), "{\"v\":2}"),
        ]);
        assert_eq!(names_args(&r), two);
        // Neither index nor id: a new name after complete arguments is a new call.
        let r = run(&[
            tc(None, None, Some("alpha"), "{\"v\":1}"),
            tc(None, None, Some("beta"), "{\"v\":2}"),
        ]);
        let got = names_args(&r);
        assert_eq!((got[0].1.as_str(), got[1].1.as_str()), ("alpha", "beta"));
        assert!(got[0].0.starts_with("call_") && got[0].0 != got[1].0);
    }

    #[test]
    fn reasoning_is_not_content_and_usage_comes_last() {
        let r = run(&[
            json!({"choices": [{"index": 0, "delta": {"reasoning_content": "hmm"}}]}),
            json!({"choices": [{"index": 0, "delta": {"reasoning": "hm"}}]}),
            json!({"choices": [{"index": 0, "delta": {"content": "Hi"}, "finish_reason": "length"}]}),
            json!({"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 3}}),
        ]);
        assert_eq!(r.message.content.as_deref(), Some("Hi"));
        assert_eq!(r.stop_reason, StopReason::MaxTokens);
        assert_eq!((r.usage.input_tokens, r.usage.output_tokens), (5, 3));
    }

    #[test]
    fn invalid_arguments_are_kept_as_text_and_errors_fail() {
        let r = run(&[tc(Some(0), Some("a"), Some("f"), "{\"v\": tru")]);
        assert_eq!(r.message.tool_calls[0].arguments, json!("{\"v\": tru"));
        let mut s = StreamState::default();
        let e = s
            .feed("t", r#"{"error":{"message":"boom","type":"server_error"}}"#)
            .unwrap_err();
        assert!(e.is_retryable(), "{e}");
        assert!(e.message().contains("boom"));
        assert!(s.feed("t", "{oops").is_err());
    }
}
