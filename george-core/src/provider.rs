//! The [`Provider`] trait: one chat completion with tool definitions.
//!
//! The message shapes are the common denominator of the OpenAI chat-completions,
//! Anthropic Messages and Gemini `generateContent` APIs: adapters in `george-llm`
//! convert them to each wire format.

use std::fmt::Debug;
use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};

use crate::error::Result;
use crate::tool::ToolDefinition;

/// One message of a conversation (the transcript of a step attempt).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub enum Message {
    /// The engine speaking for the user: the step's instructions and context.
    User {
        /// Text.
        content: String,
    },
    /// The model's answer.
    Assistant(AssistantMessage),
    /// The result of one tool call; every tool call gets exactly one.
    Tool {
        /// The [`ToolCall::id`] it answers.
        tool_call_id: String,
        /// The tool's name.
        name: String,
        /// The result, as text (JSON for structured results).
        content: String,
        /// Whether the call failed or was refused.
        is_error: bool,
    },
}

/// What the model said: text and/or tool calls.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct AssistantMessage {
    /// Text, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content: Option<String>,
    /// Tool calls, in the order the model made them.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub tool_calls: Vec<ToolCall>,
}

/// One tool call made by the model.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ToolCall {
    /// The provider's id of the call (echoed in the [`Message::Tool`] result).
    pub id: String,
    /// The tool's name.
    pub name: String,
    /// The arguments (a JSON object).
    pub arguments: serde_json::Value,
    /// Opaque provider data to send back unchanged (e.g. Gemini's `thoughtSignature`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provider_metadata: Option<serde_json::Value>,
}

impl ToolCall {
    /// A call of tool `name` with `arguments` (a JSON object); `id` is the provider's id
    /// of the call, unique within the conversation.
    pub fn new(
        id: impl Into<String>,
        name: impl Into<String>,
        arguments: serde_json::Value,
    ) -> Self {
        ToolCall {
            id: id.into(),
            name: name.into(),
            arguments,
            provider_metadata: None,
        }
    }
}

/// Where a request comes from, as data: the job, step, generation and attempt, and the
/// rejected plans of this step with their reasons (also worded in the user message).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct RequestContext {
    /// The job.
    pub job: String,
    /// The step.
    pub step: String,
    /// The job's generation.
    pub generation: u64,
    /// The step attempt (1-based).
    pub attempt: u32,
    /// Whether the step's outcome needs a human's approval (`submit_plan`).
    pub needs_approval: bool,
    /// Rejected plans of this step, oldest first.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub rejections: Vec<crate::state::Rejection>,
}

/// A chat-completion request.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatRequest {
    /// The model id from the agent spec (shared with it).
    pub model: std::sync::Arc<str>,
    /// The static system prompt (cacheable prefix), shared with the agent spec: a
    /// request does not copy it.
    pub system: std::sync::Arc<str>,
    /// The conversation so far. Shared with the engine's transcript of the attempt, so
    /// a request does not copy the conversation (each turn of a long agent loop would
    /// otherwise copy all of it); change it with [`ChatRequest::push`] or
    /// [`Arc::make_mut`](std::sync::Arc::make_mut), which copy only while it is shared.
    pub messages: std::sync::Arc<Vec<Message>>,
    /// Tools the model may call. Shared: the engine builds an attempt's list once and
    /// every request of the attempt's loop carries the same one.
    pub tools: std::sync::Arc<[ToolDefinition]>,
    /// Maximum output tokens.
    pub max_tokens: Option<u32>,
    /// Sampling temperature.
    pub temperature: Option<f32>,
    /// The step attempt this request belongs to (set by the engine).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub context: Option<RequestContext>,
}

/// The empty tool list, shared (an empty `Arc<[_]>` still allocates its counts).
fn no_tools() -> std::sync::Arc<[ToolDefinition]> {
    static NONE: std::sync::LazyLock<std::sync::Arc<[ToolDefinition]>> =
        std::sync::LazyLock::new(|| std::sync::Arc::new([]));
    NONE.clone()
}

impl ChatRequest {
    /// A request for `model` with a system prompt and messages (a `Vec<Message>`, or
    /// an `Arc<Vec<Message>>` to share), no tools.
    pub fn new(
        model: impl Into<std::sync::Arc<str>>,
        system: impl Into<std::sync::Arc<str>>,
        messages: impl Into<std::sync::Arc<Vec<Message>>>,
    ) -> Self {
        ChatRequest {
            model: model.into(),
            system: system.into(),
            messages: messages.into(),
            tools: no_tools(),
            max_tokens: None,
            temperature: None,
            context: None,
        }
    }

    /// Appends a message to the conversation (copying it first only if it is shared).
    pub fn push(&mut self, message: Message) {
        std::sync::Arc::make_mut(&mut self.messages).push(message);
    }

    /// Sets the context.
    pub fn with_context(mut self, context: RequestContext) -> Self {
        self.context = Some(context);
        self
    }

    /// Sets the tools (a `Vec<ToolDefinition>`, or an `Arc<[ToolDefinition]>` to share).
    pub fn with_tools(mut self, tools: impl Into<std::sync::Arc<[ToolDefinition]>>) -> Self {
        self.tools = tools.into();
        self
    }

    /// Sets the output token limit.
    pub fn with_max_tokens(mut self, max_tokens: Option<u32>) -> Self {
        self.max_tokens = max_tokens;
        self
    }

    /// Sets the temperature.
    pub fn with_temperature(mut self, temperature: Option<f32>) -> Self {
        self.temperature = temperature;
        self
    }

    /// The text of every user message, joined (handy in tests).
    pub fn user_text(&self) -> String {
        let mut out = String::new();
        for m in self.messages.iter() {
            if let Message::User { content } = m {
                out.push_str(content);
                out.push('\n');
            }
        }
        out
    }
}

/// Token counts and cost of one call (or a sum of calls).
///
/// Input is split so that the four input/output counts add up to everything billed:
/// `input_tokens` is the *uncached* input, `cache_read_tokens` and
/// `cache_write_tokens` the cached parts. Providers count differently; each adapter
/// documents its mapping (e.g. OpenAI's `prompt_tokens` include cached tokens, which
/// the adapter subtracts; Anthropic reports the three input parts separately).
#[derive(Debug, Clone, Copy, Default, PartialEq, Serialize, Deserialize)]
pub struct Usage {
    /// Input tokens not read from a cache.
    #[serde(default)]
    pub input_tokens: u64,
    /// Output tokens, including reasoning tokens.
    #[serde(default)]
    pub output_tokens: u64,
    /// Input tokens read from the provider's prompt cache.
    #[serde(default)]
    pub cache_read_tokens: u64,
    /// Input tokens written to the provider's prompt cache.
    #[serde(default)]
    pub cache_write_tokens: u64,
    /// Of `output_tokens`, those spent on reasoning (thinking) — not a separate count.
    #[serde(default, skip_serializing_if = "is_zero_u64")]
    pub reasoning_tokens: u64,
    /// Cost in US dollars, from the adapter's price table; 0 when unknown.
    #[serde(default, skip_serializing_if = "is_zero_f64")]
    pub cost_usd: f64,
}

fn is_zero_u64(v: &u64) -> bool {
    *v == 0
}

fn is_zero_f64(v: &f64) -> bool {
    *v == 0.0
}

impl Usage {
    /// All input and output tokens (reasoning tokens are part of `output_tokens`).
    pub fn total(&self) -> u64 {
        self.input_tokens + self.output_tokens + self.cache_read_tokens + self.cache_write_tokens
    }

    /// Whether every count and the cost are zero.
    pub fn is_zero(&self) -> bool {
        self.total() == 0 && self.cost_usd == 0.0
    }

    /// Adds `other` to `self`.
    pub fn add(&mut self, other: &Usage) {
        self.input_tokens += other.input_tokens;
        self.output_tokens += other.output_tokens;
        self.cache_read_tokens += other.cache_read_tokens;
        self.cache_write_tokens += other.cache_write_tokens;
        self.reasoning_tokens += other.reasoning_tokens;
        self.cost_usd += other.cost_usd;
    }
}

/// Why the model stopped.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum StopReason {
    /// It finished its turn.
    #[default]
    EndTurn,
    /// It wants tool results.
    ToolUse,
    /// It hit the output token limit.
    MaxTokens,
    /// Anything else the provider reported.
    Other,
}

/// A chat-completion response.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[non_exhaustive]
pub struct ChatResponse {
    /// The assistant's message.
    pub message: AssistantMessage,
    /// Token counts.
    pub usage: Usage,
    /// Why it stopped.
    pub stop_reason: StopReason,
}

impl ChatResponse {
    /// A response with the given message and usage.
    pub fn new(message: AssistantMessage, usage: Usage) -> Self {
        let stop_reason = if message.tool_calls.is_empty() {
            StopReason::EndTurn
        } else {
            StopReason::ToolUse
        };
        ChatResponse {
            message,
            usage,
            stop_reason,
        }
    }

    /// A response that makes `calls`, with no usage (set [`ChatResponse::usage`] when
    /// known).
    pub fn tool_calls(calls: Vec<ToolCall>) -> Self {
        ChatResponse::new(
            AssistantMessage {
                content: None,
                tool_calls: calls,
            },
            Usage::default(),
        )
    }
}

/// A model provider: one chat completion with tool definitions.
///
/// # Contract
/// - `complete` is one request/response exchange; it does not execute tools.
/// - It must be safe to call concurrently.
/// - Every tool call in the response carries an id unique within the conversation.
///
/// # Errors
/// `RateLimited` / `Timeout` / `Backend` errors are transient (the engine retries the
/// step attempt with backoff); `InvalidInput`, `Unauthenticated` are terminal.
///
/// # Implementing
/// ```
/// use async_trait::async_trait;
/// use george_core::provider::{AssistantMessage, ChatRequest, ChatResponse, Provider, Usage};
///
/// #[derive(Debug)]
/// struct Echo;
///
/// #[async_trait]
/// impl Provider for Echo {
///     fn name(&self) -> &str { "echo" }
///     async fn complete(&self, req: ChatRequest) -> george_core::Result<ChatResponse> {
///         let text = req.user_text();
///         Ok(ChatResponse::new(
///             AssistantMessage { content: Some(text), tool_calls: vec![] },
///             Usage::default(),
///         ))
///     }
/// }
/// ```
#[cfg_attr(feature = "mocks", mockall::automock)]
#[async_trait]
pub trait Provider: Send + Sync + Debug + 'static {
    /// A short name for logs and events (`openai`, `anthropic`, `scripted`).
    fn name(&self) -> &str;

    /// One chat completion.
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse>;
}

#[async_trait]
impl<T: Provider + ?Sized> Provider for Arc<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        (**self).complete(request).await
    }
}

#[async_trait]
impl<T: Provider + ?Sized> Provider for Box<T> {
    fn name(&self) -> &str {
        (**self).name()
    }
    async fn complete(&self, request: ChatRequest) -> Result<ChatResponse> {
        (**self).complete(request).await
    }
}

/// `Arc<dyn Provider>`.
pub type DynProvider = Arc<dyn Provider>;

/// Builds the provider an agent spec asks for: its `provider` (the name of an endpoint
/// the operator allows, such as `openai`), with `base_url` and `api_key_env` (the name of
/// the variable holding the key) as the spec states them.
///
/// The operator decides what is reachable, a spec only chooses among it: a factory must
/// refuse a spec whose `base_url` or `api_key_env` reaches beyond the operator's
/// configuration (`george_llm::Registry` checks them against its provider profiles)
/// and must never read a variable only a spec names.
///
/// The engine asks its factory for every agent whose `provider` is not registered by
/// name ([`EngineBuilder::provider`](crate::engine::EngineBuilder::provider)), once per
/// distinct (`provider`, `base_url`, `api_key_env`), and keeps the result. The model is
/// not part of it: it travels in each [`ChatRequest`]. `george_llm::Registry` is the
/// implementation for the providers George ships.
///
/// # Errors
/// `InvalidInput` for a provider the factory does not know, `PermissionDenied` for a
/// spec reaching beyond its profile, `Unauthenticated` when the key variable is unset;
/// the engine reports each as the step being `Blocked`, with the message.
pub trait ProviderFactory: Send + Sync + std::fmt::Debug + 'static {
    /// Builds the provider for `agent`.
    fn build(&self, agent: &crate::model::AgentConfig) -> Result<DynProvider>;
}
