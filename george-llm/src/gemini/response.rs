//! `GenerateContentResponse` (whole, or streamed chunk by chunk) → [`ChatResponse`]
//! (<https://ai.google.dev/api/generate-content#generatecontentresponse>).

use std::collections::HashSet;

use george_core::provider::{
    AssistantMessage, ChatRequest, ChatResponse, Message, StopReason, ToolCall, Usage,
};
use george_core::{Error, Result};
use serde_json::{Map, Value};

use super::NAME;
use super::wire::{FunctionCall, GenerateContentResponse, UsageMetadata};
use crate::error::{ErrorBody, from_status};

/// Collects the answer from one response or from the chunks of a stream: text parts
/// concatenated (thought summaries, `thought: true`, skipped), function calls in
/// order (each arrives whole), the last finish reason and the last usage seen
/// (<https://ai.google.dev/api/generate-content#generatecontentresponse>).
#[derive(Debug)]
pub struct Assembly {
    text: String,
    calls: Vec<ToolCall>,
    used_ids: HashSet<String>,
    next_id: usize,
    finish_reason: Option<String>,
    block_reason: Option<String>,
    usage: Option<UsageMetadata>,
    candidates: usize,
}

impl Assembly {
    /// An empty answer to `request` (whose tool call ids the new ones must not reuse).
    pub fn new(request: &ChatRequest) -> Self {
        let mut used_ids = HashSet::new();
        for m in request.messages.iter() {
            match m {
                Message::Assistant(a) => used_ids.extend(a.tool_calls.iter().map(|c| c.id.clone())),
                Message::Tool { tool_call_id, .. } => {
                    used_ids.insert(tool_call_id.clone());
                }
                Message::User { .. } => {}
            }
        }
        Assembly {
            text: String::new(),
            calls: Vec::new(),
            used_ids,
            next_id: 0,
            finish_reason: None,
            block_reason: None,
            usage: None,
            candidates: 0,
        }
    }

    /// Adds a response or a stream chunk.
    ///
    /// # Errors
    /// The error a stream reported in-band (`{"error": {…}}`), mapped like an HTTP
    /// error of its `code`.
    pub fn add(&mut self, chunk: GenerateContentResponse) -> Result<()> {
        if let Some(e) = chunk.error {
            let body = ErrorBody {
                code: e.status,
                message: e.message,
            };
            return Err(from_status(NAME, e.code.unwrap_or(500), &[], &body));
        }
        if let Some(reason) = chunk.prompt_feedback.and_then(|f| f.block_reason) {
            self.block_reason = Some(reason);
        }
        if let Some(usage) = chunk.usage_metadata {
            self.usage = Some(usage);
        }
        let Some(candidate) = chunk.candidates.into_iter().next() else {
            return Ok(());
        };
        self.candidates += 1;
        if let Some(reason) = candidate.finish_reason {
            self.finish_reason = Some(reason);
        }
        for part in candidate.content.map(|c| c.parts).unwrap_or_default() {
            if let Some(call) = part.function_call {
                let call = self.tool_call(call, part.thought_signature);
                self.calls.push(call);
            } else if let Some(text) = part.text
                && part.thought != Some(true)
            {
                self.text.push_str(&text);
            }
        }
        Ok(())
    }

    /// Whether the final chunk arrived: one with a finish reason, or a blocked prompt.
    pub fn is_complete(&self) -> bool {
        self.finish_reason.is_some() || self.block_reason.is_some()
    }

    /// Whether there is anything to answer with: a candidate, or a blocked prompt.
    pub fn has_answer(&self) -> bool {
        self.candidates > 0 || self.block_reason.is_some()
    }

    /// The answer. `STOP` is `EndTurn`, or `ToolUse` when there are function calls;
    /// `MAX_TOKENS` is `MaxTokens`; a blocked prompt, `SAFETY`, `RECITATION`,
    /// `MALFORMED_FUNCTION_CALL` and the rest are `Other`.
    pub fn finish(self) -> ChatResponse {
        let stop_reason = match (self.finish_reason.as_deref(), &self.block_reason) {
            (Some("MAX_TOKENS"), _) => StopReason::MaxTokens,
            (None, Some(reason)) => {
                tracing::warn!(provider = NAME, reason, "the prompt was blocked");
                StopReason::Other
            }
            (None | Some("STOP"), _) if !self.calls.is_empty() => StopReason::ToolUse,
            (None | Some("STOP"), _) => StopReason::EndTurn,
            (Some(other), _) => {
                tracing::warn!(
                    provider = NAME,
                    finish_reason = other,
                    "unusual finish reason"
                );
                StopReason::Other
            }
        };
        let message = AssistantMessage {
            content: (!self.text.is_empty()).then_some(self.text),
            tool_calls: self.calls,
        };
        let mut response = ChatResponse::new(message, usage(&self.usage.unwrap_or_default()));
        response.stop_reason = stop_reason;
        response
    }

    fn tool_call(&mut self, call: FunctionCall, signature: Option<String>) -> ToolCall {
        let arguments = match call.args {
            None => Value::Object(Map::new()),
            Some(Value::String(raw)) => match serde_json::from_str(&raw) {
                Ok(parsed) => parsed,
                Err(e) => {
                    tracing::warn!(provider = NAME, tool = %call.name, error = %e,
                        "tool call arguments are not valid JSON; kept as text");
                    Value::String(raw)
                }
            },
            Some(args) => args,
        };
        let mut metadata = Map::new();
        if let Some(signature) = signature {
            metadata.insert("thoughtSignature".into(), Value::String(signature));
        }
        let id = match call.id.filter(|id| !id.is_empty()) {
            Some(id) => {
                metadata.insert("id".into(), Value::String(id.clone()));
                id
            }
            None => self.fresh_id(),
        };
        self.used_ids.insert(id.clone());
        ToolCall {
            id,
            name: call.name,
            arguments,
            provider_metadata: (!metadata.is_empty()).then_some(Value::Object(metadata)),
        }
    }

    /// `call_<n>`, the first one not used in the conversation: the same request
    /// gets the same ids (a retried call too), and they stay unique.
    fn fresh_id(&mut self) -> String {
        loop {
            let id = format!("call_{}", self.next_id);
            self.next_id += 1;
            if !self.used_ids.contains(&id) {
                return id;
            }
        }
    }
}

/// Gemini's token counts (<https://ai.google.dev/api/generate-content#UsageMetadata>)
/// as [`Usage`], cost left for the caller: `input_tokens` = `promptTokenCount` +
/// `toolUsePromptTokenCount` − `cachedContentTokenCount`, `cache_read_tokens` =
/// `cachedContentTokenCount`, `cache_write_tokens` = 0, `output_tokens` =
/// `candidatesTokenCount` + `thoughtsTokenCount`, `reasoning_tokens` =
/// `thoughtsTokenCount` (see the [module docs](super) for the sources).
pub fn usage(m: &UsageMetadata) -> Usage {
    let prompt = m.prompt_token_count + m.tool_use_prompt_token_count;
    Usage {
        input_tokens: prompt.saturating_sub(m.cached_content_token_count),
        cache_read_tokens: m.cached_content_token_count,
        cache_write_tokens: 0,
        output_tokens: m.candidates_token_count + m.thoughts_token_count,
        reasoning_tokens: m.thoughts_token_count,
        cost_usd: 0.0,
    }
}

/// An [`Error`] for the response body `what` that could not be read.
pub(crate) fn malformed(what: impl std::fmt::Display) -> Error {
    crate::error::malformed(NAME, what)
}
