//! The response JSON of the chat-completions API
//! (<https://platform.openai.com/docs/api-reference/chat/object>), its usage mapping
//! and its error envelope (<https://platform.openai.com/docs/guides/error-codes>).

use george_core::provider::{StopReason, ToolCall, Usage};
use serde::{Deserialize, Deserializer};
use serde_json::Value;

use crate::error::ErrorBody;

/// `null` and absent both read as the default.
pub(crate) fn nullable<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

/// A non-streamed response (`chat.completion`).
#[derive(Debug, Deserialize)]
pub(crate) struct ChatCompletion {
    #[serde(default, deserialize_with = "nullable")]
    pub choices: Vec<Choice>,
    #[serde(default)]
    pub usage: Option<WireUsage>,
}

/// One choice of a non-streamed response.
#[derive(Debug, Deserialize)]
pub(crate) struct Choice {
    #[serde(default, deserialize_with = "nullable")]
    pub message: ResponseMessage,
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// The assistant message of a non-streamed response.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseMessage {
    #[serde(default)]
    pub content: Option<String>,
    #[serde(default)]
    pub refusal: Option<String>,
    /// DeepSeek, llama.cpp, vLLM: the model's thinking, not part of the answer.
    #[serde(default)]
    pub reasoning_content: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub tool_calls: Vec<ResponseToolCall>,
}

/// A tool call of a non-streamed response.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct ResponseToolCall {
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default, deserialize_with = "nullable")]
    pub function: FunctionDelta,
}

/// `function` of a tool call (whole, or a streamed fragment): `arguments` is a JSON
/// string; a few servers send an object instead, accepted as is.
#[derive(Debug, Default, Deserialize)]
pub(crate) struct FunctionDelta {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub arguments: Option<Value>,
}

/// `usage` of a response or of the last streamed chunk.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct WireUsage {
    #[serde(default, deserialize_with = "nullable")]
    pub prompt_tokens: u64,
    #[serde(default, deserialize_with = "nullable")]
    pub completion_tokens: u64,
    #[serde(default)]
    pub prompt_tokens_details: Option<PromptTokensDetails>,
    #[serde(default)]
    pub completion_tokens_details: Option<CompletionTokensDetails>,
    /// DeepSeek's name for the cached part of the prompt
    /// (<https://api-docs.deepseek.com/api/create-chat-completion>).
    #[serde(default)]
    pub prompt_cache_hit_tokens: Option<u64>,
}

/// `usage.prompt_tokens_details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct PromptTokensDetails {
    #[serde(default)]
    pub cached_tokens: Option<u64>,
}

/// `usage.completion_tokens_details`.
#[derive(Debug, Clone, Default, Deserialize)]
pub(crate) struct CompletionTokensDetails {
    #[serde(default)]
    pub reasoning_tokens: Option<u64>,
}

impl WireUsage {
    /// George's usage (cost not yet set). The mapping
    /// (<https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage>):
    /// `prompt_tokens` include the cached ones, so input = `prompt_tokens` −
    /// `prompt_tokens_details.cached_tokens` (DeepSeek: `prompt_cache_hit_tokens`);
    /// cache reads = `cached_tokens`; cache writes = 0 (OpenAI caches without a write
    /// charge or count); output = `completion_tokens` (reasoning included);
    /// reasoning = `completion_tokens_details.reasoning_tokens`.
    pub fn to_usage(&self) -> Usage {
        let cached = self
            .prompt_tokens_details
            .as_ref()
            .and_then(|d| d.cached_tokens)
            .or(self.prompt_cache_hit_tokens)
            .unwrap_or(0)
            .min(self.prompt_tokens);
        Usage {
            input_tokens: self.prompt_tokens - cached,
            output_tokens: self.completion_tokens,
            cache_read_tokens: cached,
            cache_write_tokens: 0,
            reasoning_tokens: self
                .completion_tokens_details
                .as_ref()
                .and_then(|d| d.reasoning_tokens)
                .unwrap_or(0),
            cost_usd: 0.0,
        }
    }
}

/// `finish_reason` → [`StopReason`]: `tool_calls` (and the legacy `function_call`) →
/// `ToolUse`, `length` → `MaxTokens`, `stop` → `EndTurn`, anything else (e.g.
/// `content_filter`) → `Other`. Some servers say `stop` after tool calls: when the
/// answer has tool calls, that is `ToolUse`.
pub(crate) fn stop_reason(finish_reason: Option<&str>, has_tool_calls: bool) -> StopReason {
    match finish_reason {
        Some("tool_calls" | "function_call") => StopReason::ToolUse,
        Some("length") => StopReason::MaxTokens,
        Some("stop") | None if has_tool_calls => StopReason::ToolUse,
        Some("stop") | None => StopReason::EndTurn,
        Some(_) => StopReason::Other,
    }
}

/// A finished tool call from its parts: arguments parsed as JSON (empty means `{}`);
/// text that is not JSON is kept as `Value::String` with a warning, so the engine's
/// tool executor can answer with an error the model can act on. A missing id gets a
/// generated one (`call_<random>`), unique within the conversation.
pub(crate) fn tool_call(id: Option<String>, name: String, arguments: Option<Value>) -> ToolCall {
    let id = match id {
        Some(id) if !id.is_empty() => id,
        _ => format!("call_{:016x}", fastrand::u64(..)),
    };
    let arguments = match arguments {
        None => Value::Object(Default::default()),
        Some(Value::String(raw)) if raw.trim().is_empty() => Value::Object(Default::default()),
        Some(Value::String(raw)) => match serde_json::from_str::<Value>(&raw) {
            Ok(v) => v,
            Err(e) => {
                tracing::warn!(
                    provider = "openai",
                    tool = %name,
                    error = %e,
                    "tool call arguments are not valid JSON; kept as a string"
                );
                Value::String(raw)
            }
        },
        Some(other) => other,
    };
    ToolCall {
        id,
        name,
        arguments,
        provider_metadata: None,
    }
}

/// Reads the error envelope `{"error": {"message", "type", "code"}}`: code = `code`
/// when it is a string, else `type`, else a numeric `code` (llama.cpp sends the HTTP
/// status as `code` and the useful name as `type`, e.g. `exceed_context_size_error`).
/// Also accepted: `{"error": "text"}` (Ollama) and a top-level `message` or `detail`
/// (other compatible servers).
pub fn parse_error_envelope(body: &[u8]) -> ErrorBody {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return ErrorBody::default();
    };
    error_body(&v)
}

/// [`parse_error_envelope`] on parsed JSON (also used for errors inside a stream).
pub(crate) fn error_body(v: &Value) -> ErrorBody {
    let text = |v: Option<&Value>| -> Option<String> {
        match v? {
            Value::String(s) if !s.is_empty() => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            _ => None,
        }
    };
    match v.get("error") {
        Some(Value::Object(e)) => ErrorBody {
            code: e
                .get("code")
                .filter(|c| c.is_string())
                .and_then(|c| text(Some(c)))
                .or_else(|| text(e.get("type")))
                .or_else(|| text(e.get("code"))),
            message: text(e.get("message")),
        },
        Some(Value::String(s)) => ErrorBody {
            code: None,
            message: Some(s.clone()),
        },
        _ => ErrorBody {
            code: None,
            message: text(v.get("message")).or_else(|| text(v.get("detail"))),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn usage_subtracts_cached_tokens() {
        let u: WireUsage = serde_json::from_value(json!({
            "prompt_tokens": 100, "completion_tokens": 40,
            "prompt_tokens_details": {"cached_tokens": 64},
            "completion_tokens_details": {"reasoning_tokens": 12}
        }))
        .unwrap();
        let u = u.to_usage();
        assert_eq!(
            (u.input_tokens, u.cache_read_tokens, u.cache_write_tokens),
            (36, 64, 0)
        );
        assert_eq!((u.output_tokens, u.reasoning_tokens), (40, 12));
        let ds: WireUsage = serde_json::from_value(
            json!({"prompt_tokens": 10, "completion_tokens": 1, "prompt_cache_hit_tokens": 8}),
        )
        .unwrap();
        assert_eq!(ds.to_usage().input_tokens, 2);
    }

    #[test]
    fn error_envelopes() {
        let b = parse_error_envelope(
            br#"{"error":{"message":"bad key","type":"invalid_request_error","code":"invalid_api_key"}}"#,
        );
        assert_eq!(b.code.as_deref(), Some("invalid_api_key"));
        assert_eq!(b.message.as_deref(), Some("bad key"));
        let b =
            parse_error_envelope(br#"{"error":{"message":"m","type":"server_error","code":null}}"#);
        assert_eq!(b.code.as_deref(), Some("server_error"));
        let b = parse_error_envelope(br#"{"error":"model 'x' not found"}"#);
        assert_eq!(b.message.as_deref(), Some("model 'x' not found"));
        assert_eq!(parse_error_envelope(b"<html>"), ErrorBody::default());
    }

    #[test]
    fn stop_reasons() {
        assert_eq!(stop_reason(Some("tool_calls"), true), StopReason::ToolUse);
        assert_eq!(stop_reason(Some("stop"), true), StopReason::ToolUse);
        assert_eq!(stop_reason(Some("stop"), false), StopReason::EndTurn);
        assert_eq!(stop_reason(Some("length"), false), StopReason::MaxTokens);
        assert_eq!(
            stop_reason(Some("content_filter"), false),
            StopReason::Other
        );
    }
}
