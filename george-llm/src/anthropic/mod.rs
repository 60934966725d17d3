//! [`AnthropicProvider`]: the Anthropic Messages API
//! (<https://docs.anthropic.com/en/api/messages>), plain JSON or streamed
//! (<https://docs.anthropic.com/en/docs/build-with-claude/streaming>).
//!
//! # Request
//! `POST {base_url}/v1/messages` with `x-api-key`, `anthropic-version:`
//! [`ANTHROPIC_VERSION`] and `content-type: application/json`. The body holds `model`,
//! `max_tokens` (required by the API: [`DEFAULT_MAX_TOKENS`] when the request sets
//! none), `system` as one text block, `messages`, `tools` (`name`, `description`,
//! `input_schema` — made a `"type": "object"` schema without `$schema`),
//! `temperature`, and `stream: true` when streaming.
//!
//! Messages: roles must alternate, so tool results are `tool_result` blocks
//! (`tool_use_id`, `content` as a text block, `is_error`) in one `user` message per
//! turn, together with any user text that follows them (tool results first, as the
//! API requires); assistant messages are `text` and `tool_use` blocks (`id`, `name`,
//! `input`). See
//! <https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use>.
//!
//! # Prompt caching
//! By default ([`PromptCaching::Conversation`]) the request carries three
//! `cache_control: {"type": "ephemeral"}` breakpoints
//! (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>): on the
//! system prompt (George's system prompts are static; per-step data is in the user
//! message), on the last tool definition (so tools + system are one cached prefix),
//! and on the last block of the last message, so that each turn of a tool loop reads
//! the conversation so far from the cache. [`PromptCaching::Prefix`] keeps only the
//! first two; [`PromptCaching::Off`] sends none. A cache write costs 1.25× the input
//! price and a read 0.1×, so the last-message breakpoint pays off from the second turn
//! of a tool loop; prefixes shorter than the model's minimum (1024 tokens or more,
//! depending on the model) are not cached and cost nothing extra.
//!
//! # Usage mapping
//! From the response's `usage` (<https://docs.anthropic.com/en/api/messages>, the
//! `usage` object; <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>,
//! "Tracking cache performance"):
//!
//! | George [`Usage`](george_core::provider::Usage) | Anthropic |
//! |---|---|
//! | `input_tokens` (uncached) | `input_tokens` (it already excludes cached input) |
//! | `cache_read_tokens` | `cache_read_input_tokens` |
//! | `cache_write_tokens` | `cache_creation_input_tokens` |
//! | `output_tokens` | `output_tokens` |
//! | `reasoning_tokens` | 0: thinking tokens are not reported separately (they are in `output_tokens`) |
//!
//! Streamed, the counts of `message_start` are taken first and replaced by those of
//! `message_delta`, whose counts are cumulative: `output_tokens` is the final value.
//! `cost_usd` is [`PriceTable::cost`](crate::PriceTable::cost) of the request's model.
//!
//! # Errors
//! The error envelope `{"type": "error", "error": {"type": …, "message": …}}`
//! (<https://docs.anthropic.com/en/api/errors>) becomes
//! [`ErrorBody`]`{code: error.type, message}`, mapped by
//! [`from_status`](crate::error::from_status): 529 or `overloaded_error` is
//! `Overloaded`, 429 `RateLimited` (after `retry-after`), and so on. An `error` event
//! inside a stream is mapped the same way from its type.

mod stream;
mod wire;

use async_trait::async_trait;
use george_core::provider::{AssistantMessage, ChatRequest, ChatResponse, Provider, ToolCall};
use george_core::{Error, Result};

use crate::call;
use crate::config::ProviderConfig;
use crate::error::{ErrorBody, malformed};
use crate::transport::HttpRequest;

/// The protocol name, as [`Provider::name`] returns it.
const NAME: &str = "anthropic";

/// The public API's base URL (<https://docs.anthropic.com/en/api/getting-started>).
pub const DEFAULT_BASE_URL: &str = "https://api.anthropic.com";

/// The `anthropic-version` header sent with every request: the API version whose
/// request and response shapes this adapter follows
/// (<https://docs.anthropic.com/en/api/versioning>).
pub const ANTHROPIC_VERSION: &str = "2023-06-01";

/// `max_tokens` when the [`ChatRequest`] sets none: the API requires the field
/// (<https://docs.anthropic.com/en/api/messages>), and 4096 is within the output limit
/// of every current Claude model. Change it with
/// [`AnthropicProvider::with_default_max_tokens`].
pub const DEFAULT_MAX_TOKENS: u32 = 4096;

/// Which prompt-cache breakpoints a request carries
/// (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum PromptCaching {
    /// None: nothing is written to or read from the cache.
    Off,
    /// The system prompt and the last tool definition: the static prefix.
    Prefix,
    /// The prefix and the last block of the last message, so each turn of a tool loop
    /// reads the earlier turns from the cache (the default).
    #[default]
    Conversation,
}

/// The Anthropic Messages API (<https://docs.anthropic.com/en/api/messages>); see the
/// [module docs](self) for the request, the prompt caching and the usage mapping.
#[derive(Debug, Clone)]
pub struct AnthropicProvider {
    config: ProviderConfig,
    caching: PromptCaching,
    default_max_tokens: u32,
}

impl AnthropicProvider {
    /// A provider with `config` (base URL without `/v1`, e.g. [`DEFAULT_BASE_URL`]),
    /// [`PromptCaching::Conversation`] and [`DEFAULT_MAX_TOKENS`]
    /// (<https://docs.anthropic.com/en/api/messages>).
    pub fn new(config: ProviderConfig) -> Self {
        AnthropicProvider {
            config,
            caching: PromptCaching::default(),
            default_max_tokens: DEFAULT_MAX_TOKENS,
        }
    }

    /// Sets the cache breakpoints; [`PromptCaching::Off`] turns caching off
    /// (<https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>).
    pub fn with_prompt_caching(mut self, caching: PromptCaching) -> Self {
        self.caching = caching;
        self
    }

    /// Sets `max_tokens` for requests that set none
    /// (<https://docs.anthropic.com/en/api/messages>).
    pub fn with_default_max_tokens(mut self, max_tokens: u32) -> Self {
        self.default_max_tokens = max_tokens;
        self
    }

    /// The configuration: base URL (`/v1/messages` is appended), key (sent as
    /// `x-api-key`, <https://docs.anthropic.com/en/api/overview>), transport, timeout,
    /// streaming, prices.
    pub fn config(&self) -> &ProviderConfig {
        &self.config
    }

    async fn call(&self, request: &ChatRequest) -> Result<ChatResponse> {
        let config = &self.config;
        let body = wire::request(
            request,
            self.default_max_tokens,
            self.caching,
            config.stream,
        );
        let body = serde_json::to_vec(&body)
            .map_err(|e| Error::invalid_input("anthropic: encoding the request").with_source(e))?;
        let accept = if config.stream {
            "text/event-stream"
        } else {
            "application/json"
        };
        let mut http = HttpRequest::post_json(format!("{}/v1/messages", config.base_url), body)
            .header("anthropic-version", ANTHROPIC_VERSION)
            .header("accept", accept);
        if let Some(key) = &config.api_key {
            http = http.header("x-api-key", key.expose());
        }
        let resp = call::send(config, NAME, http, parse_error_envelope).await?;
        if config.stream {
            return stream::read(resp, &request.model, config).await;
        }
        let bytes = resp.bytes(config.max_response_bytes).await?;
        let parsed: wire::MessagesResponse =
            serde_json::from_slice(&bytes).map_err(|e| malformed(NAME, e))?;
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in parsed.content {
            match block {
                wire::ResponseBlock::Text { text: t } => text.push_str(&t),
                wire::ResponseBlock::ToolUse { id, name, input } => tool_calls.push(ToolCall {
                    id,
                    name,
                    arguments: input,
                    provider_metadata: None,
                }),
                wire::ResponseBlock::Other => {}
            }
        }
        Ok(response(
            text,
            tool_calls,
            parsed.stop_reason.as_deref(),
            parsed.usage,
            &request.model,
            config,
        ))
    }
}

/// The [`ChatResponse`] for an answer's parts, with its cost.
fn response(
    text: String,
    tool_calls: Vec<ToolCall>,
    stop: Option<&str>,
    usage: wire::WireUsage,
    model: &str,
    config: &ProviderConfig,
) -> ChatResponse {
    let mut usage = usage.to_usage();
    usage.cost_usd = config.prices.cost(model, &usage);
    let message = AssistantMessage {
        content: Some(text).filter(|t| !t.is_empty()),
        tool_calls,
    };
    let mut r = ChatResponse::new(message, usage);
    r.stop_reason = wire::stop_reason(stop);
    r
}

/// Reads the error envelope `{"type": "error", "error": {"type": …, "message": …}}`
/// (<https://docs.anthropic.com/en/api/errors>) into `ErrorBody {code: error.type,
/// message}`; an empty `ErrorBody` when the body is not one.
pub fn parse_error_envelope(body: &[u8]) -> ErrorBody {
    match serde_json::from_slice::<wire::ErrorEnvelope>(body) {
        Ok(e) => ErrorBody {
            code: e.error.kind,
            message: e.error.message,
        },
        Err(_) => ErrorBody::default(),
    }
}

#[async_trait]
impl Provider for AnthropicProvider {
    /// `anthropic`.
    fn name(&self) -> &str {
        NAME
    }

    /// One `POST /v1/messages` (<https://docs.anthropic.com/en/api/messages>), within
    /// the configured timeout.
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        call::within(NAME, self.config.timeout, self.call(&request)).await
    }
}

#[cfg(test)]
mod tests;
