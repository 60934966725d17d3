//! [`GeminiProvider`]: Google's Gemini API, `generateContent` and
//! `streamGenerateContent` (<https://ai.google.dev/api/generate-content>).
//!
//! # Requests
//! `POST {base_url}/models/{model}:generateContent`, or
//! `{base_url}/models/{model}:streamGenerateContent?alt=sse` when
//! [`ProviderConfig::stream`] is set. A model given as `models/…` or `tunedModels/…`
//! is used as that path. The body is built as [`request::build`] describes: the
//! system prompt as `systemInstruction`, turns with roles `user` and `model`, tool
//! calls as `functionCall` parts with their `thoughtSignature` sent back unchanged
//! (<https://ai.google.dev/gemini-api/docs/thought-signatures>), tool results as
//! `functionResponse` parts, tool schemas adjusted by [`schema`].
//!
//! **The API key** goes in the `x-goog-api-key` header, as
//! <https://ai.google.dev/api#authentication> recommends, not in the `key` query
//! parameter some clients use: URLs end up in proxy and server logs, headers less so
//! (and [`HttpRequest`] headers are never logged here).
//!
//! # Responses
//! The first candidate's parts: `text` parts concatenated (thought summaries,
//! `thought: true`, skipped), `functionCall` parts become [`ToolCall`](george_core::provider::ToolCall)s with their
//! `args` as the arguments, their `thoughtSignature` and, when Gemini gave one, their
//! `id` in [`ToolCall::provider_metadata`](george_core::provider::ToolCall::provider_metadata) (`{"thoughtSignature": "…", "id": "…"}`).
//! Calls without an id get `call_<n>`, the first `n` not used in the conversation, so
//! ids are stable for a given request and unique in the conversation; a tool result
//! is matched back to its call by that id and sent with the call's name (and
//! Gemini's id, if any). Stop reasons: see [`response::Assembly::finish`]. A
//! `thoughtSignature` on a *text* part (the final answer) is not kept: Gemini requires
//! only function-call signatures back, and George's messages have no place for it.
//!
//! # Usage mapping
//! From `usageMetadata` (<https://ai.google.dev/api/generate-content#UsageMetadata>;
//! thinking billed as output: <https://ai.google.dev/gemini-api/docs/pricing>, context
//! caching: <https://ai.google.dev/gemini-api/docs/caching>):
//!
//! | [`Usage`](george_core::provider::Usage) | Gemini |
//! |---|---|
//! | `input_tokens` | `promptTokenCount` + `toolUsePromptTokenCount` − `cachedContentTokenCount` (`promptTokenCount` includes the cached part) |
//! | `cache_read_tokens` | `cachedContentTokenCount` |
//! | `cache_write_tokens` | 0 (Gemini bills cache storage per hour, not per write) |
//! | `output_tokens` | `candidatesTokenCount` + `thoughtsTokenCount` |
//! | `reasoning_tokens` | `thoughtsTokenCount` |
//!
//! `cost_usd` is [`PriceTable::cost`](crate::PriceTable::cost) of these counts. When
//! streaming, the counts of the last chunk that has `usageMetadata` are used (they are
//! cumulative).
//!
//! # Errors
//! The error envelope `{"error": {"code": 404, "message": "…", "status":
//! "NOT_FOUND"}}` (<https://ai.google.dev/gemini-api/docs/troubleshooting>) gives the
//! error's code (`status`) and message; the kind follows the HTTP status
//! ([`crate::error::from_status`]): `RESOURCE_EXHAUSTED` (429) is `RateLimited`,
//! `UNAVAILABLE` (503) `Overloaded`, `INVALID_ARGUMENT`/`NOT_FOUND` `InvalidInput`, and
//! a 400 saying "the input token count … exceeds the maximum number of tokens" is
//! `ContextTooLong`. Gemini sends no `Retry-After` header; the `retryDelay` of a
//! `google.rpc.RetryInfo` detail (<https://ai.google.dev/gemini-api/docs/rate-limits>)
//! is honoured instead. An error sent inside a stream is mapped the same way.

pub mod request;
pub mod response;
pub mod schema;
pub mod stream;
pub mod wire;

use std::time::Duration;

use async_trait::async_trait;
use george_core::provider::{ChatRequest, ChatResponse, Provider};
use george_core::{Error, ErrorKind, Result, RetryStatus};

use crate::call;
use crate::config::ProviderConfig;
use crate::error::ErrorBody;
use crate::transport::HttpRequest;
use response::{Assembly, malformed};
use wire::{ErrorEnvelope, GenerateContentResponse};

/// The Gemini Developer API (<https://ai.google.dev/api#endpoints>).
pub const DEFAULT_BASE_URL: &str = "https://generativelanguage.googleapis.com/v1beta";

/// The protocol name, as [`Provider::name`] returns it.
pub const NAME: &str = "gemini";

/// The Gemini adapter (<https://ai.google.dev/api/generate-content>); see the module
/// docs for the request, response and usage mapping.
#[derive(Debug, Clone)]
pub struct GeminiProvider {
    config: ProviderConfig,
}

impl GeminiProvider {
    /// An adapter with `config` (its `base_url` is e.g. [`DEFAULT_BASE_URL`]).
    pub fn new(config: ProviderConfig) -> Self {
        GeminiProvider { config }
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    /// The URL of `model`'s `generateContent` (or streaming) method
    /// (<https://ai.google.dev/api/generate-content#endpoint>).
    ///
    /// # Errors
    /// `InvalidInput` for an empty model or one with URL syntax in it.
    pub fn url(&self, model: &str) -> Result<String> {
        let model = model.trim();
        if model.is_empty() || model.contains(['?', '#', ' ', '%']) {
            return Err(Error::invalid_input(format!(
                "{NAME}: invalid model name {model:?}"
            )));
        }
        let path = if model.starts_with("models/") || model.starts_with("tunedModels/") {
            model.to_string()
        } else {
            format!("models/{model}")
        };
        let base = &self.config.base_url;
        Ok(if self.config.stream {
            format!("{base}/{path}:streamGenerateContent?alt=sse")
        } else {
            format!("{base}/{path}:generateContent")
        })
    }

    async fn call(&self, request: ChatRequest) -> Result<ChatResponse> {
        let body = serde_json::to_vec(&request::build(&request))?;
        let accept = if self.config.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut http =
            HttpRequest::post_json(self.url(&request.model)?, body).header("accept", accept);
        if let Some(key) = &self.config.api_key {
            http = http.header("x-goog-api-key", key.expose());
        }
        let resp = call::send(&self.config, NAME, http, parse_error_envelope)
            .await
            .map_err(refine)?;
        let mut assembly = Assembly::new(&request);
        if self.config.stream {
            stream::read(resp, &mut assembly, self.config.max_stream_bytes).await?;
        } else {
            let body = resp.bytes(self.config.max_response_bytes).await?;
            let parsed: GenerateContentResponse =
                serde_json::from_slice(&body).map_err(|e| malformed(format!("body: {e}")))?;
            assembly.add(parsed)?;
            if !assembly.has_answer() {
                return Err(malformed("no candidates and no prompt feedback"));
            }
        }
        let mut response = assembly.finish();
        response.usage.cost_usd = self.config.prices.cost(&request.model, &response.usage);
        Ok(response)
    }
}

#[async_trait]
impl Provider for GeminiProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        call::within(NAME, self.config.timeout, self.call(request)).await
    }
}

/// Reads Gemini's error envelope (see the module docs): the code is its `status`
/// (`NOT_FOUND`, `RESOURCE_EXHAUSTED`, …), the message its `message`, followed by
/// ` (retryDelay: 37s)` when a `RetryInfo` detail says how long to wait.
pub fn parse_error_envelope(body: &[u8]) -> ErrorBody {
    let Ok(ErrorEnvelope { error: Some(e) }) = serde_json::from_slice::<ErrorEnvelope>(body) else {
        return ErrorBody::default();
    };
    let delay = e.details.iter().find_map(|d| {
        let is_retry_info = d
            .get("@type")
            .and_then(|t| t.as_str())
            .is_some_and(|t| t.ends_with("google.rpc.RetryInfo"));
        is_retry_info
            .then(|| d.get("retryDelay")?.as_str().map(str::to_string))
            .flatten()
    });
    let message = match (e.message, delay) {
        (Some(m), Some(d)) => Some(format!("{m} (retryDelay: {d})")),
        (None, Some(d)) => Some(format!("(retryDelay: {d})")),
        (m, None) => m,
    };
    ErrorBody {
        code: e.status,
        message,
    }
}

/// Gemini specifics on top of the status mapping: `retryDelay` as the retry delay,
/// the context-window message as `ContextTooLong`.
fn refine(err: Error) -> Error {
    let text = err.message().to_ascii_lowercase();
    if err.kind() == ErrorKind::InvalidInput
        && text.contains("input token count")
        && text.contains("exceeds the maximum")
    {
        return Error::new(ErrorKind::ContextTooLong, err.message());
    }
    if err.retry() == (RetryStatus::Transient { after: None })
        && let Some(delay) = retry_delay(err.message())
    {
        return err.with_retry(RetryStatus::Transient { after: Some(delay) });
    }
    err
}

/// The `(retryDelay: 37s)` that [`parse_error_envelope`] added to a message: a
/// `google.protobuf.Duration` in JSON, seconds with an `s` suffix.
fn retry_delay(message: &str) -> Option<Duration> {
    let rest = &message[message.rfind("(retryDelay: ")? + "(retryDelay: ".len()..];
    let secs: f64 = rest.split(')').next()?.strip_suffix('s')?.parse().ok()?;
    (secs.is_finite() && secs >= 0.0).then(|| Duration::from_secs_f64(secs))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_envelope_and_retry_delay() {
        let body = br#"{"error":{"code":429,"message":"Quota exceeded.","status":"RESOURCE_EXHAUSTED",
            "details":[{"@type":"type.googleapis.com/google.rpc.RetryInfo","retryDelay":"1.5s"}]}}"#;
        let parsed = parse_error_envelope(body);
        assert_eq!(parsed.code.as_deref(), Some("RESOURCE_EXHAUSTED"));
        assert_eq!(
            parsed.message.as_deref(),
            Some("Quota exceeded. (retryDelay: 1.5s)")
        );
        let err = refine(crate::error::from_status(NAME, 429, &[], &parsed));
        assert_eq!(err.kind(), ErrorKind::RateLimited);
        assert_eq!(
            err.retry(),
            RetryStatus::Transient {
                after: Some(Duration::from_millis(1500))
            }
        );
        assert_eq!(parse_error_envelope(b"<html>"), ErrorBody::default());
    }
}
