//! The request JSON of the chat-completions API, built from a [`ChatRequest`]
//! (<https://platform.openai.com/docs/api-reference/chat/create>).

use std::borrow::Cow;

use george_core::provider::{ChatRequest, Message};
use serde::Serialize;
use serde_json::Value;

use super::{MaxTokensField, ToolChoice};

/// What a failed tool call's result is prefixed with: the tool message has no error
/// flag, so the model reads it in the text.
pub(crate) const ERROR_PREFIX: &str = "Error: ";

/// The request body of `POST /chat/completions`.
#[derive(Debug, Serialize)]
pub(crate) struct ChatCompletionRequest<'a> {
    pub model: &'a str,
    pub messages: Vec<WireMessage<'a>>,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<WireTool<'a>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tool_choice: Option<&'static str>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parallel_tool_calls: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_completion_tokens: Option<u32>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream: Option<bool>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stream_options: Option<StreamOptions>,
}

/// `stream_options`: ask for a last chunk with the usage.
#[derive(Debug, Serialize)]
pub(crate) struct StreamOptions {
    pub include_usage: bool,
}

/// One message of `messages`, tagged by `role`.
#[derive(Debug, Serialize)]
#[serde(tag = "role", rename_all = "snake_case")]
pub(crate) enum WireMessage<'a> {
    System {
        content: &'a str,
    },
    User {
        content: &'a str,
    },
    Assistant {
        /// `null` when the turn is only tool calls.
        content: Option<&'a str>,
        #[serde(skip_serializing_if = "Vec::is_empty")]
        tool_calls: Vec<WireToolCall<'a>>,
    },
    Tool {
        tool_call_id: &'a str,
        content: Cow<'a, str>,
    },
}

/// A tool call the assistant made, sent back in the conversation.
#[derive(Debug, Serialize)]
pub(crate) struct WireToolCall<'a> {
    pub id: &'a str,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: WireFunctionCall<'a>,
}

/// `function` of a tool call: the arguments travel as a JSON *string*.
#[derive(Debug, Serialize)]
pub(crate) struct WireFunctionCall<'a> {
    pub name: &'a str,
    pub arguments: Cow<'a, str>,
}

/// One entry of `tools`.
#[derive(Debug, Serialize)]
pub(crate) struct WireTool<'a> {
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub function: WireFunction<'a>,
}

/// A function tool: name, description and the JSON Schema of its arguments.
#[derive(Debug, Serialize)]
pub(crate) struct WireFunction<'a> {
    pub name: &'a str,
    pub description: &'a str,
    pub parameters: Cow<'a, Value>,
}

/// The tool's JSON Schema as sent: unchanged, except that a top-level `$schema` key
/// (schemars emits one) is removed — OpenAI ignores it outside strict mode, but some
/// compatible servers reject it.
pub(crate) fn parameters(schema: &Value) -> Cow<'_, Value> {
    match schema {
        Value::Object(map) if map.contains_key("$schema") => {
            let mut map = map.clone();
            map.remove("$schema");
            Cow::Owned(Value::Object(map))
        }
        _ => Cow::Borrowed(schema),
    }
}

/// Options of the provider that shape the request.
#[derive(Debug, Clone, Copy)]
pub(crate) struct RequestOptions {
    pub tool_choice: ToolChoice,
    pub parallel_tool_calls: Option<bool>,
    pub max_tokens_field: MaxTokensField,
    pub stream: bool,
}

/// The wire request for `req`.
pub(crate) fn build_request<'a>(
    req: &'a ChatRequest,
    opts: RequestOptions,
) -> ChatCompletionRequest<'a> {
    let mut messages = Vec::with_capacity(req.messages.len() + 1);
    if !req.system.is_empty() {
        messages.push(WireMessage::System {
            content: &req.system,
        });
    }
    for m in req.messages.iter() {
        messages.push(match m {
            Message::User { content } => WireMessage::User { content },
            Message::Assistant(a) => {
                let tool_calls: Vec<WireToolCall<'a>> = a
                    .tool_calls
                    .iter()
                    .map(|c| WireToolCall {
                        id: &c.id,
                        kind: "function",
                        function: WireFunctionCall {
                            name: &c.name,
                            arguments: arguments_text(&c.arguments),
                        },
                    })
                    .collect();
                let content = match (&a.content, tool_calls.is_empty()) {
                    (Some(text), _) => Some(text.as_str()),
                    (None, true) => Some(""),
                    (None, false) => None,
                };
                WireMessage::Assistant {
                    content,
                    tool_calls,
                }
            }
            Message::Tool {
                tool_call_id,
                content,
                is_error,
                ..
            } => WireMessage::Tool {
                tool_call_id,
                content: if *is_error {
                    Cow::Owned(format!("{ERROR_PREFIX}{content}"))
                } else {
                    Cow::Borrowed(content)
                },
            },
        });
    }
    let tools: Vec<WireTool<'a>> = req
        .tools
        .iter()
        .map(|t| WireTool {
            kind: "function",
            function: WireFunction {
                name: &t.name,
                description: &t.description,
                parameters: parameters(&t.input_schema),
            },
        })
        .collect();
    let has_tools = !tools.is_empty();
    let (max_tokens, max_completion_tokens) = match opts.max_tokens_field {
        MaxTokensField::MaxTokens => (req.max_tokens, None),
        MaxTokensField::MaxCompletionTokens => (None, req.max_tokens),
    };
    ChatCompletionRequest {
        model: &req.model,
        messages,
        tools,
        tool_choice: has_tools.then(|| opts.tool_choice.as_str()),
        // Only meaningful (and only accepted by some servers) alongside tools.
        parallel_tool_calls: opts.parallel_tool_calls.filter(|_| has_tools),
        temperature: req.temperature,
        max_tokens,
        max_completion_tokens,
        stream: opts.stream.then_some(true),
        stream_options: opts.stream.then_some(StreamOptions {
            include_usage: true,
        }),
    }
}

/// Arguments as the JSON string the API wants. A `Value::String` is what the adapter
/// kept when the model produced invalid JSON: it goes back verbatim.
fn arguments_text(v: &Value) -> Cow<'_, str> {
    match v {
        Value::String(raw) => Cow::Borrowed(raw),
        other => Cow::Owned(other.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn top_level_schema_key_is_removed_and_nothing_else() {
        let s = json!({
            "$schema": "https://json-schema.org/draft/2020-12/schema",
            "type": "object",
            "properties": {"a": {"$schema": "kept", "type": "string"}},
        });
        let p = parameters(&s);
        assert!(matches!(p, Cow::Owned(_)));
        assert_eq!(
            *p,
            json!({"type": "object", "properties": {"a": {"$schema": "kept", "type": "string"}}})
        );
        let plain = json!({"type": "object"});
        assert!(matches!(parameters(&plain), Cow::Borrowed(_)));
    }
}
