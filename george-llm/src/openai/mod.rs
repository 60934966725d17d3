//! [`OpenAiProvider`]: the OpenAI chat-completions API
//! (<https://platform.openai.com/docs/api-reference/chat/create>), and the servers that
//! speak it: Ollama, vLLM, llama.cpp server, LiteLLM, DeepSeek, Groq, OpenRouter, ….
//!
//! # Request
//! `POST {base_url}/chat/completions` with `authorization: Bearer <key>` when a key is
//! configured (local servers need none). The body:
//! - `messages`: the system prompt first as a `system` message (a plain string: every
//!   compatible server accepts that form, not all accept an array of text parts), then
//!   `user`, `assistant` (text and `tool_calls: [{id, type: "function", function:
//!   {name, arguments}}]`, arguments as a JSON string) and `tool` messages
//!   (`tool_call_id`, `content`). The tool message has no error flag: a failed call's
//!   result is sent as `Error: <content>`.
//! - `tools: [{type: "function", function: {name, description, parameters}}]`, the
//!   tool's JSON Schema unchanged but for a top-level `$schema` key, which is removed;
//!   with tools, `tool_choice` ([`ToolChoice`], default `auto`) and, only when set
//!   with [`OpenAiProvider::parallel_tool_calls`], `parallel_tool_calls` (the API's
//!   default is parallel calls; OpenAI's o3, o3-mini and o4-mini reject the parameter
//!   with any value, e.g. <https://github.com/evalstate/fast-agent/issues/279>).
//! - `temperature`, and the output limit as `max_tokens` or `max_completion_tokens`
//!   ([`MaxTokensField`]: OpenAI's reasoning models require the latter, local servers
//!   know only the former).
//! - when [`ProviderConfig::stream`] is set: `stream: true` and
//!   `stream_options: {include_usage: true}`
//!   (<https://platform.openai.com/docs/api-reference/chat-streaming>).
//!
//! # Response
//! The first choice's `content` and `tool_calls` (arguments parsed as JSON; text that
//! is not JSON is kept as a `Value::String`, with a warning); `reasoning_content` is
//! not part of the answer; a `refusal` becomes the text when there is no other.
//! `finish_reason`: `tool_calls` → `ToolUse`, `length` → `MaxTokens`, `stop` →
//! `EndTurn` (`ToolUse` when the answer has tool calls), anything else → `Other`.
//!
//! # Usage mapping
//! From `usage` (<https://platform.openai.com/docs/api-reference/chat/object#chat/object-usage>):
//!
//! | George | OpenAI |
//! |---|---|
//! | `input_tokens` | `prompt_tokens` − `prompt_tokens_details.cached_tokens` |
//! | `cache_read_tokens` | `prompt_tokens_details.cached_tokens` (DeepSeek: `prompt_cache_hit_tokens`) |
//! | `cache_write_tokens` | 0 (OpenAI's automatic caching reports no writes) |
//! | `output_tokens` | `completion_tokens` (reasoning included) |
//! | `reasoning_tokens` | `completion_tokens_details.reasoning_tokens` |
//!
//! `cost_usd` is the configuration's price table applied to that usage.
//!
//! # Errors
//! The error envelope `{"error": {"message", "type", "code"}}`
//! (<https://platform.openai.com/docs/guides/error-codes>) gives the code (`code`, else
//! `type`) and message; the status gives the kind ([`crate::error::from_status`]).

mod response;
mod stream;
mod wire;

use async_trait::async_trait;
use futures::StreamExt;
use george_core::Result;
use george_core::provider::{AssistantMessage, ChatRequest, ChatResponse, Provider};

use crate::config::ProviderConfig;
use crate::transport::HttpRequest;
use crate::{call, error, sse};

pub use response::parse_error_envelope;

/// The base URL of OpenAI's API.
pub const DEFAULT_BASE_URL: &str = "https://api.openai.com/v1";

/// The adapter's name, in logs and errors.
const NAME: &str = "openai";

/// `tool_choice` when tools are offered
/// (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-tool_choice>).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum ToolChoice {
    /// `auto`: the model decides (the default).
    #[default]
    Auto,
    /// `required`: the model must call at least one tool.
    Required,
    /// `none`: the model may not call tools (they are still described to it).
    None,
}

impl ToolChoice {
    /// The wire value.
    pub fn as_str(self) -> &'static str {
        match self {
            ToolChoice::Auto => "auto",
            ToolChoice::Required => "required",
            ToolChoice::None => "none",
        }
    }
}

/// Which request field carries [`ChatRequest::max_tokens`]
/// (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-max_completion_tokens>).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MaxTokensField {
    /// `max_tokens`: deprecated by OpenAI, the only one most compatible servers know
    /// (the default for any base URL other than `api.openai.com`).
    MaxTokens,
    /// `max_completion_tokens`: required by OpenAI's o-series and newer models (the
    /// default for `api.openai.com`).
    MaxCompletionTokens,
}

impl MaxTokensField {
    /// The default for `base_url`: `MaxCompletionTokens` for `api.openai.com`,
    /// `MaxTokens` otherwise.
    pub fn for_base_url(base_url: &str) -> Self {
        let rest = base_url.split_once("://").map_or(base_url, |(_, r)| r);
        let host = rest.split(['/', ':', '?']).next().unwrap_or_default();
        if host.eq_ignore_ascii_case("api.openai.com") {
            MaxTokensField::MaxCompletionTokens
        } else {
            MaxTokensField::MaxTokens
        }
    }
}

/// The OpenAI chat-completions adapter; see the [module docs](self) for the request
/// and response mapping, the usage mapping and the streaming quirks it handles
/// (<https://platform.openai.com/docs/api-reference/chat>).
#[derive(Debug, Clone)]
pub struct OpenAiProvider {
    config: ProviderConfig,
    tool_choice: ToolChoice,
    parallel_tool_calls: Option<bool>,
    max_tokens_field: MaxTokensField,
}

impl OpenAiProvider {
    /// An adapter with `tool_choice: auto`, no `parallel_tool_calls` and the
    /// max-tokens field [`MaxTokensField::for_base_url`] picks
    /// (<https://platform.openai.com/docs/api-reference/chat/create>).
    pub fn new(config: ProviderConfig) -> Self {
        let max_tokens_field = MaxTokensField::for_base_url(&config.base_url);
        OpenAiProvider {
            config,
            tool_choice: ToolChoice::Auto,
            parallel_tool_calls: None,
            max_tokens_field,
        }
    }

    /// Sets `tool_choice`, sent whenever tools are offered
    /// (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-tool_choice>).
    pub fn tool_choice(mut self, choice: ToolChoice) -> Self {
        self.tool_choice = choice;
        self
    }

    /// Sets `parallel_tool_calls`, then sent whenever tools are offered: whether the
    /// model may call several tools in one turn (unset, the parameter is not sent and
    /// the API's default, parallel calls, applies; OpenAI's o-series models reject it)
    /// (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-parallel_tool_calls>).
    pub fn parallel_tool_calls(mut self, parallel: bool) -> Self {
        self.parallel_tool_calls = Some(parallel);
        self
    }

    /// Sets the field that carries the output limit
    /// (<https://platform.openai.com/docs/api-reference/chat/create#chat-create-max_completion_tokens>).
    pub fn max_tokens_field(mut self, field: MaxTokensField) -> Self {
        self.max_tokens_field = field;
        self
    }

    /// The configuration.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    async fn call(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let cfg = &self.config;
        let body = wire::build_request(
            request,
            wire::RequestOptions {
                tool_choice: self.tool_choice,
                parallel_tool_calls: self.parallel_tool_calls,
                max_tokens_field: self.max_tokens_field,
                stream: cfg.stream,
            },
        );
        let body = serde_json::to_vec(&body)?;
        let accept = if cfg.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut req = HttpRequest::post_json(format!("{}/chat/completions", cfg.base_url), body)
            .header("accept", accept);
        if let Some(key) = &cfg.api_key {
            req = req.header("authorization", format!("Bearer {}", key.expose()));
        }
        let resp = call::send(cfg, NAME, req, parse_error_envelope).await?;
        // A server may ignore `stream` and answer with plain JSON.
        let is_sse = resp
            .header("content-type")
            .is_some_and(|v| v.to_ascii_lowercase().contains("text/event-stream"));
        let mut answer = if cfg.stream && is_sse {
            let mut state = stream::StreamState::default();
            let mut events = std::pin::pin!(sse::events(NAME, resp.body, cfg.max_stream_bytes));
            while let Some(event) = events.next().await {
                let event = event?;
                if event.event == "error" {
                    // llama.cpp's `error: {json}` line (see `sse`).
                    return Err(stream::error_event(NAME, &event.data));
                }
                state.feed(NAME, &event.data)?;
                if state.done {
                    break;
                }
            }
            if !state.complete() {
                return Err(sse::cut_short(NAME));
            }
            state.finish(NAME)
        } else {
            let bytes = resp.bytes(cfg.max_response_bytes).await?;
            parse_completion(&bytes)?
        };
        answer.usage.cost_usd = cfg.prices.cost(&request.model, &answer.usage);
        Ok(answer)
    }
}

/// A non-streamed `chat.completion`, usage without cost.
fn parse_completion(bytes: &[u8]) -> Result<ChatResponse> {
    let value: serde_json::Value =
        serde_json::from_slice(bytes).map_err(|e| error::malformed(NAME, e))?;
    if value.get("error").is_some_and(|e| !e.is_null()) {
        // An error envelope with a 2xx status (seen behind some proxies).
        let body = response::error_body(&value);
        return Err(error::from_status(NAME, 500, &[], &body));
    }
    let completion: response::ChatCompletion =
        serde_json::from_value(value).map_err(|e| error::malformed(NAME, e))?;
    let usage = completion
        .usage
        .as_ref()
        .map(response::WireUsage::to_usage)
        .unwrap_or_default();
    let Some(choice) = completion.choices.into_iter().next() else {
        return Err(error::malformed(NAME, "no choices"));
    };
    let m = choice.message;
    if m.reasoning_content
        .as_deref()
        .is_some_and(|r| !r.is_empty())
    {
        tracing::debug!(
            provider = NAME,
            "the model returned reasoning, kept out of the answer"
        );
    }
    let tool_calls: Vec<_> = m
        .tool_calls
        .into_iter()
        .map(|c| {
            response::tool_call(
                c.id,
                c.function.name.unwrap_or_default(),
                c.function.arguments,
            )
        })
        .collect();
    let mut content = m.content.filter(|c| !c.is_empty());
    if content.is_none()
        && let Some(refusal) = m.refusal.filter(|r| !r.is_empty())
    {
        tracing::warn!(
            provider = NAME,
            "the model refused: its refusal is the answer"
        );
        content = Some(refusal);
    }
    let stop_reason =
        response::stop_reason(choice.finish_reason.as_deref(), !tool_calls.is_empty());
    let mut resp = ChatResponse::new(
        AssistantMessage {
            content,
            tool_calls,
        },
        usage,
    );
    resp.stop_reason = stop_reason;
    Ok(resp)
}

#[async_trait]
impl Provider for OpenAiProvider {
    fn name(&self) -> &str {
        NAME
    }

    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        call::within(NAME, self.config.timeout, self.call(&request)).await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn max_tokens_field_defaults_by_host() {
        use MaxTokensField::*;
        assert_eq!(
            MaxTokensField::for_base_url(DEFAULT_BASE_URL),
            MaxCompletionTokens
        );
        assert_eq!(
            MaxTokensField::for_base_url("https://API.openai.com"),
            MaxCompletionTokens
        );
        assert_eq!(
            MaxTokensField::for_base_url("http://127.0.0.1:8080/v1"),
            MaxTokens
        );
        assert_eq!(
            MaxTokensField::for_base_url("https://api.openai.com.evil/v1"),
            MaxTokens
        );
        assert_eq!(
            MaxTokensField::for_base_url("http://localhost:11434/v1"),
            MaxTokens
        );
    }
}
