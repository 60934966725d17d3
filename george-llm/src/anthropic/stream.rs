//! Assembling a streamed answer from its server-sent events
//! (<https://docs.anthropic.com/en/docs/build-with-claude/streaming>).
//!
//! `message_start` carries the usage so far (input and cache counts);
//! `content_block_start` opens a `text` or `tool_use` block (with its id and name) at
//! an index; `content_block_delta` adds a `text_delta` or an `input_json_delta` (the
//! `partial_json` strings of a block concatenate to its input); `content_block_stop`
//! closes the block (its input is parsed then); `message_delta` carries the stop reason
//! and the cumulative usage; `message_stop` ends the answer. `ping` and event types
//! this adapter does not know are skipped, as the versioning policy asks
//! (<https://docs.anthropic.com/en/api/versioning>). An `error` event is the mapped
//! error; a stream that ends before `message_stop` is [`sse::cut_short`].

use std::collections::BTreeMap;

use futures::StreamExt;
use george_core::Result;
use george_core::provider::{ChatResponse, ToolCall};
use serde::Deserialize;
use serde_json::Value;

use super::NAME;
use super::wire::{ErrorDetail, WireUsage, status_of};
use crate::error::{ErrorBody, from_status, malformed};
use crate::sse;
use crate::transport::HttpResponse;

/// The events George reads; the others are `Other`.
#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum Event {
    MessageStart {
        message: StartMessage,
    },
    ContentBlockStart {
        index: usize,
        content_block: StartBlock,
    },
    ContentBlockDelta {
        index: usize,
        delta: DeltaBody,
    },
    ContentBlockStop {
        index: usize,
    },
    MessageDelta {
        #[serde(default)]
        delta: MessageDeltaBody,
        #[serde(default)]
        usage: WireUsage,
    },
    MessageStop,
    Error {
        error: ErrorDetail,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Deserialize)]
struct StartMessage {
    #[serde(default)]
    usage: WireUsage,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum StartBlock {
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

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
enum DeltaBody {
    TextDelta {
        text: String,
    },
    InputJsonDelta {
        partial_json: String,
    },
    #[serde(other)]
    Other,
}

#[derive(Debug, Default, Deserialize)]
struct MessageDeltaBody {
    #[serde(default)]
    stop_reason: Option<String>,
}

/// A block being assembled.
#[derive(Debug)]
enum Block {
    Text(String),
    Tool {
        id: String,
        name: String,
        /// The input `content_block_start` gave (`{}` in practice).
        start_input: Value,
        /// The `partial_json` so far.
        json: String,
        /// Set at `content_block_stop`.
        arguments: Option<Value>,
    },
    Other,
}

/// The state of a streamed answer.
#[derive(Debug, Default)]
struct Assembly {
    blocks: BTreeMap<usize, Block>,
    usage: WireUsage,
    stop_reason: Option<String>,
}

impl Assembly {
    /// Applies one event; `Ok(true)` at `message_stop`.
    fn apply(&mut self, event: Event) -> Result<bool> {
        match event {
            Event::MessageStart { message } => self.usage.update(&message.usage),
            Event::ContentBlockStart {
                index,
                content_block,
            } => {
                let block = match content_block {
                    StartBlock::Text { text } => Block::Text(text),
                    StartBlock::ToolUse { id, name, input } => Block::Tool {
                        id,
                        name,
                        start_input: input,
                        json: String::new(),
                        arguments: None,
                    },
                    StartBlock::Other => Block::Other,
                };
                self.blocks.insert(index, block);
            }
            Event::ContentBlockDelta { index, delta } => match (self.blocks.get_mut(&index), delta)
            {
                (Some(Block::Text(text)), DeltaBody::TextDelta { text: more }) => {
                    text.push_str(&more);
                }
                (Some(Block::Tool { json, .. }), DeltaBody::InputJsonDelta { partial_json }) => {
                    json.push_str(&partial_json);
                }
                (None, _) => {
                    return Err(malformed(
                        NAME,
                        format!("content_block_delta for block {index}, which was not started"),
                    ));
                }
                // Deltas of blocks George skips (thinking, signatures, citations).
                _ => {}
            },
            Event::ContentBlockStop { index } => {
                if let Some(Block::Tool {
                    name,
                    start_input,
                    json,
                    arguments,
                    ..
                }) = self.blocks.get_mut(&index)
                {
                    *arguments = Some(parse_arguments(name, start_input, json));
                }
            }
            Event::MessageDelta { delta, usage } => {
                if delta.stop_reason.is_some() {
                    self.stop_reason = delta.stop_reason;
                }
                self.usage.update(&usage);
            }
            Event::MessageStop => return Ok(true),
            Event::Error { error } => {
                let kind = error.kind.unwrap_or_default();
                let body = ErrorBody {
                    code: Some(kind.clone()).filter(|k| !k.is_empty()),
                    message: error.message,
                };
                return Err(from_status(NAME, status_of(&kind), &[], &body));
            }
            Event::Other => {}
        }
        Ok(false)
    }

    /// The answer: text blocks concatenated, tool calls in block order.
    fn finish(self, model: &str, config: &crate::ProviderConfig) -> ChatResponse {
        let mut text = String::new();
        let mut tool_calls = Vec::new();
        for block in self.blocks.into_values() {
            match block {
                Block::Text(t) => text.push_str(&t),
                Block::Tool {
                    id,
                    name,
                    start_input,
                    json,
                    arguments,
                } => {
                    let arguments =
                        arguments.unwrap_or_else(|| parse_arguments(&name, &start_input, &json));
                    tool_calls.push(ToolCall {
                        id,
                        name,
                        arguments,
                        provider_metadata: None,
                    });
                }
                Block::Other => {}
            }
        }
        super::response(
            text,
            tool_calls,
            self.stop_reason.as_deref(),
            self.usage,
            model,
            config,
        )
    }
}

/// A tool block's input: its `partial_json` parsed (the start input when no delta came);
/// invalid JSON is kept as a string, with a warning.
fn parse_arguments(name: &str, start_input: &Value, json: &str) -> Value {
    if json.trim().is_empty() {
        return match start_input {
            Value::Null => Value::Object(serde_json::Map::new()),
            v => v.clone(),
        };
    }
    match serde_json::from_str(json) {
        Ok(v) => v,
        Err(e) => {
            tracing::warn!(
                provider = NAME,
                tool = name,
                error = %e,
                "the model sent tool arguments that are not valid JSON; passing them on as a string"
            );
            Value::String(json.to_string())
        }
    }
}

/// Reads the events of `resp` and assembles the answer.
pub(super) async fn read(
    resp: HttpResponse,
    model: &str,
    config: &crate::ProviderConfig,
) -> Result<ChatResponse> {
    let events = sse::events(NAME, resp.body, config.max_stream_bytes);
    futures::pin_mut!(events);
    let mut assembly = Assembly::default();
    while let Some(event) = events.next().await {
        let event = event?;
        if event.data.trim().is_empty() {
            continue;
        }
        let parsed: Event = serde_json::from_str(&event.data).map_err(|e| {
            malformed(
                NAME,
                format!("event {:?} is not the expected JSON: {e}", event.event),
            )
        })?;
        if assembly.apply(parsed)? {
            return Ok(assembly.finish(model, config));
        }
    }
    Err(sse::cut_short(NAME))
}
