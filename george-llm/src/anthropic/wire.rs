//! The Messages API's JSON, as serde structs, and the mapping from George's
//! [`ChatRequest`] to a request body.
//!
//! Request: <https://docs.anthropic.com/en/api/messages>; tool use:
//! <https://docs.anthropic.com/en/docs/agents-and-tools/tool-use/implement-tool-use>;
//! cache markers: <https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching>.

use std::borrow::Cow;

use george_core::provider::{ChatRequest, Message, StopReason, Usage};
use george_core::tool::ToolDefinition;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use super::PromptCaching;

/// `{"type": "ephemeral"}`: a cache breakpoint (5-minute cache).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub(super) struct CacheControl {
    #[serde(rename = "type")]
    kind: &'static str,
}

const EPHEMERAL: CacheControl = CacheControl { kind: "ephemeral" };

/// The body of `POST /v1/messages`.
#[derive(Debug, Serialize)]
pub(super) struct MessagesRequest<'a> {
    pub model: &'a str,
    pub max_tokens: u32,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub system: Vec<TextBlock<'a>>,
    pub messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub stream: bool,
}

/// A `text` block (system prompt, tool result content).
#[derive(Debug, Serialize)]
pub(super) struct TextBlock<'a> {
    #[serde(rename = "type")]
    kind: &'static str,
    text: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    cache_control: Option<CacheControl>,
}

impl<'a> TextBlock<'a> {
    fn new(text: &'a str) -> Self {
        TextBlock {
            kind: "text",
            text,
            cache_control: None,
        }
    }
}

/// One message: `user` or `assistant`, with content blocks.
#[derive(Debug, Serialize)]
pub(super) struct WireMessage<'a> {
    pub role: &'static str,
    pub content: Vec<Block<'a>>,
}

/// A content block of a request message.
#[derive(Debug, Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum Block<'a> {
    Text {
        text: &'a str,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolUse {
        id: &'a str,
        name: &'a str,
        input: Cow<'a, Value>,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
    ToolResult {
        tool_use_id: &'a str,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        content: Vec<TextBlock<'a>>,
        #[serde(skip_serializing_if = "std::ops::Not::not")]
        is_error: bool,
        #[serde(skip_serializing_if = "Option::is_none")]
        cache_control: Option<CacheControl>,
    },
}

impl Block<'_> {
    fn mark_cached(&mut self) {
        match self {
            Block::Text { cache_control, .. }
            | Block::ToolUse { cache_control, .. }
            | Block::ToolResult { cache_control, .. } => *cache_control = Some(EPHEMERAL),
        }
    }
}

/// A tool definition: `{name, description, input_schema}`.
#[derive(Debug, Serialize)]
pub(super) struct WireTool<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub input_schema: Cow<'a, Value>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_control: Option<CacheControl>,
}

/// The tool's schema as the API accepts it: a JSON object with `"type": "object"`
/// (added when missing; a schema that is not an object becomes `{"type": "object",
/// "properties": {}}`) and without a top-level `$schema` (dropped).
pub(super) fn object_schema(schema: &Value) -> Cow<'_, Value> {
    match schema {
        Value::Object(map) if map.contains_key("type") && !map.contains_key("$schema") => {
            Cow::Borrowed(schema)
        }
        Value::Object(map) => {
            let mut map = map.clone();
            map.remove("$schema");
            map.entry("type")
                .or_insert_with(|| Value::String("object".into()));
            Cow::Owned(Value::Object(map))
        }
        _ => Cow::Owned(serde_json::json!({"type": "object", "properties": {}})),
    }
}

/// A tool call's input as sent back: the arguments when they are a JSON object; `{}`
/// for anything else (arguments the model sent as invalid JSON are kept as a string by
/// the response parser, and the API only accepts an object here — the tool result
/// tells the model what was wrong).
fn tool_input(arguments: &Value) -> Cow<'_, Value> {
    match arguments {
        Value::Object(_) => Cow::Borrowed(arguments),
        _ => Cow::Owned(Value::Object(serde_json::Map::new())),
    }
}

/// Adds `block` to the conversation: to the last message when it has the same role
/// (roles must alternate), else as a new message. Tool results go before any text of
/// the user message they join, as the API requires.
fn push<'a>(out: &mut Vec<WireMessage<'a>>, role: &'static str, block: Block<'a>) {
    match out.last_mut() {
        Some(last) if last.role == role => {
            if matches!(block, Block::ToolResult { .. }) {
                let at = last
                    .content
                    .iter()
                    .take_while(|b| matches!(b, Block::ToolResult { .. }))
                    .count();
                last.content.insert(at, block);
            } else {
                last.content.push(block);
            }
        }
        _ => out.push(WireMessage {
            role,
            content: vec![block],
        }),
    }
}

/// The `messages` array for `messages`: user text and tool results become `user`
/// messages (consecutive ones merged into one), assistant text and tool calls an
/// `assistant` message of `text` and `tool_use` blocks.
pub(super) fn messages(messages: &[Message]) -> Vec<WireMessage<'_>> {
    let mut out: Vec<WireMessage<'_>> = Vec::new();
    for m in messages {
        match m {
            Message::User { content } => push(
                &mut out,
                "user",
                Block::Text {
                    text: content,
                    cache_control: None,
                },
            ),
            Message::Assistant(a) => {
                if let Some(text) = a.content.as_deref().filter(|t| !t.is_empty()) {
                    push(
                        &mut out,
                        "assistant",
                        Block::Text {
                            text,
                            cache_control: None,
                        },
                    );
                }
                for call in &a.tool_calls {
                    push(
                        &mut out,
                        "assistant",
                        Block::ToolUse {
                            id: &call.id,
                            name: &call.name,
                            input: tool_input(&call.arguments),
                            cache_control: None,
                        },
                    );
                }
            }
            Message::Tool {
                tool_call_id,
                content,
                is_error,
                ..
            } => {
                let content = if content.is_empty() {
                    Vec::new()
                } else {
                    vec![TextBlock::new(content)]
                };
                push(
                    &mut out,
                    "user",
                    Block::ToolResult {
                        tool_use_id: tool_call_id,
                        content,
                        is_error: *is_error,
                        cache_control: None,
                    },
                );
            }
        }
    }
    out
}

/// The whole request body for `req`.
pub(super) fn request<'a>(
    req: &'a ChatRequest,
    default_max_tokens: u32,
    caching: PromptCaching,
    stream: bool,
) -> MessagesRequest<'a> {
    let cache_prefix = caching != PromptCaching::Off;
    let mut system = Vec::new();
    if !req.system.is_empty() {
        let mut block = TextBlock::new(&req.system);
        if cache_prefix {
            block.cache_control = Some(EPHEMERAL);
        }
        system.push(block);
    }
    let mut tools: Vec<WireTool<'a>> = req.tools.iter().map(tool).collect();
    if cache_prefix && let Some(last) = tools.last_mut() {
        last.cache_control = Some(EPHEMERAL);
    }
    let mut messages = messages(&req.messages);
    if caching == PromptCaching::Conversation
        && let Some(block) = messages.last_mut().and_then(|m| m.content.last_mut())
    {
        block.mark_cached();
    }
    MessagesRequest {
        model: &req.model,
        max_tokens: req.max_tokens.unwrap_or(default_max_tokens),
        system,
        messages,
        tools,
        temperature: req.temperature,
        stream,
    }
}

fn tool(t: &ToolDefinition) -> WireTool<'_> {
    WireTool {
        name: &t.name,
        description: &t.description,
        input_schema: object_schema(&t.input_schema),
        cache_control: None,
    }
}

/// The body of a non-streamed answer (the fields George uses).
#[derive(Debug, Deserialize)]
pub(super) struct MessagesResponse {
    #[serde(default)]
    pub content: Vec<ResponseBlock>,
    #[serde(default)]
    pub stop_reason: Option<String>,
    #[serde(default)]
    pub usage: WireUsage,
}

/// A content block of an answer; block types George does not use (`thinking`,
/// `server_tool_use`, …) are `Other` and skipped.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub(super) enum ResponseBlock {
    Text {
        #[serde(default)]
        text: String,
    },
    ToolUse {
        id: String,
        name: String,
        #[serde(default)]
        input: Value,
    },
    #[serde(other)]
    Other,
}

/// `usage` (<https://docs.anthropic.com/en/api/messages>): every field optional, since
/// a stream's `message_delta` may carry only some of them.
#[derive(Debug, Default, Clone, Copy, Deserialize)]
pub(super) struct WireUsage {
    #[serde(default)]
    pub input_tokens: Option<u64>,
    #[serde(default)]
    pub output_tokens: Option<u64>,
    #[serde(default)]
    pub cache_read_input_tokens: Option<u64>,
    #[serde(default)]
    pub cache_creation_input_tokens: Option<u64>,
}

impl WireUsage {
    /// Takes every count `later` has (a stream's counts are cumulative).
    pub fn update(&mut self, later: &WireUsage) {
        self.input_tokens = later.input_tokens.or(self.input_tokens);
        self.output_tokens = later.output_tokens.or(self.output_tokens);
        self.cache_read_input_tokens = later
            .cache_read_input_tokens
            .or(self.cache_read_input_tokens);
        self.cache_creation_input_tokens = later
            .cache_creation_input_tokens
            .or(self.cache_creation_input_tokens);
    }

    /// George's usage (see the module docs of `anthropic` for the mapping); no cost yet.
    pub fn to_usage(self) -> Usage {
        Usage {
            input_tokens: self.input_tokens.unwrap_or(0),
            output_tokens: self.output_tokens.unwrap_or(0),
            cache_read_tokens: self.cache_read_input_tokens.unwrap_or(0),
            cache_write_tokens: self.cache_creation_input_tokens.unwrap_or(0),
            reasoning_tokens: 0,
            cost_usd: 0.0,
        }
    }
}

/// `stop_reason` → [`StopReason`]: `end_turn`, `tool_use`, `max_tokens`; anything
/// else (`stop_sequence`, `pause_turn`, `refusal`, …) is `Other`.
pub(super) fn stop_reason(s: Option<&str>) -> StopReason {
    match s {
        Some("end_turn") => StopReason::EndTurn,
        Some("tool_use") => StopReason::ToolUse,
        Some("max_tokens") => StopReason::MaxTokens,
        _ => StopReason::Other,
    }
}

/// `{"type": "error", "error": {"type": …, "message": …}}`
/// (<https://docs.anthropic.com/en/api/errors>).
#[derive(Debug, Deserialize)]
pub(super) struct ErrorEnvelope {
    pub error: ErrorDetail,
}

/// The `error` object of an [`ErrorEnvelope`].
#[derive(Debug, Deserialize)]
pub(super) struct ErrorDetail {
    #[serde(rename = "type", default)]
    pub kind: Option<String>,
    #[serde(default)]
    pub message: Option<String>,
}

/// The HTTP status an error type stands for (<https://docs.anthropic.com/en/api/errors>),
/// to map an `error` event that arrives inside a 200 stream.
pub(super) fn status_of(kind: &str) -> u16 {
    match kind {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => 500,
    }
}
