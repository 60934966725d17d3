//! The JSON bodies of Gemini's `generateContent` and `streamGenerateContent`, as serde
//! structs. Field names follow <https://ai.google.dev/api/generate-content> (request
//! and `GenerateContentResponse`) and <https://ai.google.dev/api/caching#Content>
//! (`Content`, `Part`, `FunctionCall`, `FunctionResponse`). Unknown response fields
//! (`inlineData`, `executableCode`, safety ratings, …) are ignored.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// The body of `models/{model}:generateContent`
/// (<https://ai.google.dev/api/generate-content#request-body>).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentRequest {
    /// The conversation, oldest first; roles `user` and `model`.
    pub contents: Vec<Content>,
    /// The system prompt (no role: the API ignores it there).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_instruction: Option<Content>,
    /// Function declarations, all in one `Tool`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tools: Vec<Tool>,
    /// Output limit and temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub generation_config: Option<GenerationConfig>,
}

/// `Content`: a role and its parts (<https://ai.google.dev/api/caching#Content>).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Content {
    /// `user` or `model`; absent in a system instruction.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub role: Option<String>,
    /// The parts, in order.
    #[serde(default)]
    pub parts: Vec<Part>,
}

/// `Part`: one of text, a function call or a function response, plus the flags that
/// travel with it (<https://ai.google.dev/api/caching#Part>).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Part {
    /// Text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub text: Option<String>,
    /// `true` on a thought summary (never part of the answer).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought: Option<bool>,
    /// The opaque signature of the model's reasoning, to send back unchanged on the
    /// same part (<https://ai.google.dev/gemini-api/docs/thought-signatures>).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub thought_signature: Option<String>,
    /// A call the model asks for.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_call: Option<FunctionCall>,
    /// The result of a call.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub function_response: Option<FunctionResponse>,
}

/// `FunctionCall` (<https://ai.google.dev/api/caching#FunctionCall>).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct FunctionCall {
    /// The call's id, when the API gives one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function's name.
    #[serde(default)]
    pub name: String,
    /// The arguments: a JSON object on the wire (kept as any value here, so that a
    /// string from a non-conforming server is not a parse failure).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub args: Option<Value>,
}

/// `FunctionResponse` (<https://ai.google.dev/api/caching#FunctionResponse>).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FunctionResponse {
    /// The id of the call it answers, when that call had one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    /// The function's name.
    pub name: String,
    /// The result: must be a JSON object.
    pub response: Value,
}

/// `Tool` with function declarations (<https://ai.google.dev/api/caching#Tool>).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Tool {
    /// The functions the model may call.
    pub function_declarations: Vec<FunctionDeclaration>,
}

/// `FunctionDeclaration` (<https://ai.google.dev/api/caching#FunctionDeclaration>).
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct FunctionDeclaration {
    /// The name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// The arguments' schema, adjusted to Gemini's OpenAPI subset; absent for a
    /// function without arguments (an `OBJECT` with no properties is refused).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub parameters: Option<Value>,
}

/// `GenerationConfig` (<https://ai.google.dev/api/generate-content#generationconfig>).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerationConfig {
    /// The output token limit.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub max_output_tokens: Option<u32>,
    /// The sampling temperature.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub temperature: Option<f32>,
}

/// `GenerateContentResponse`: the whole answer, or one chunk of a stream
/// (<https://ai.google.dev/api/generate-content#generatecontentresponse>).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenerateContentResponse {
    /// The candidates; George asks for one.
    #[serde(default)]
    pub candidates: Vec<Candidate>,
    /// Set when the prompt itself was blocked (then there are no candidates).
    #[serde(default)]
    pub prompt_feedback: Option<PromptFeedback>,
    /// Token counts.
    #[serde(default)]
    pub usage_metadata: Option<UsageMetadata>,
    /// An error reported inside a stream (the error envelope's `error` object).
    #[serde(default)]
    pub error: Option<ErrorStatus>,
}

/// `Candidate` (<https://ai.google.dev/api/generate-content#candidate>).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    /// The answer's parts.
    #[serde(default)]
    pub content: Option<Content>,
    /// `STOP`, `MAX_TOKENS`, `SAFETY`, `RECITATION`, `MALFORMED_FUNCTION_CALL`, …;
    /// present on the last chunk of a stream.
    #[serde(default)]
    pub finish_reason: Option<String>,
}

/// `PromptFeedback` (<https://ai.google.dev/api/generate-content#PromptFeedback>).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PromptFeedback {
    /// Why the prompt was blocked (`SAFETY`, `OTHER`, …).
    #[serde(default)]
    pub block_reason: Option<String>,
}

/// `UsageMetadata` (<https://ai.google.dev/api/generate-content#UsageMetadata>). See
/// the module docs for how it maps to [`george_core::provider::Usage`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct UsageMetadata {
    /// The prompt, cached part included.
    #[serde(default)]
    pub prompt_token_count: u64,
    /// Of the prompt, the part read from a context cache.
    #[serde(default)]
    pub cached_content_token_count: u64,
    /// The answer, thoughts excluded.
    #[serde(default)]
    pub candidates_token_count: u64,
    /// Thinking (billed as output).
    #[serde(default)]
    pub thoughts_token_count: u64,
    /// The prompts of built-in tools (search, code execution), billed as input.
    #[serde(default)]
    pub tool_use_prompt_token_count: u64,
}

/// The error envelope: `{"error": {"code": 404, "message": "…", "status": "NOT_FOUND"}}`
/// (<https://ai.google.dev/gemini-api/docs/troubleshooting#error-codes>).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ErrorEnvelope {
    /// The error.
    #[serde(default)]
    pub error: Option<ErrorStatus>,
}

/// The `error` object of the envelope (a `google.rpc.Status`).
#[derive(Debug, Clone, Default, PartialEq, Deserialize)]
pub struct ErrorStatus {
    /// The HTTP status.
    #[serde(default)]
    pub code: Option<u16>,
    /// The message.
    #[serde(default)]
    pub message: Option<String>,
    /// The canonical status name (`NOT_FOUND`, `RESOURCE_EXHAUSTED`, `UNAVAILABLE`).
    #[serde(default)]
    pub status: Option<String>,
    /// Typed details; a `google.rpc.RetryInfo` carries `retryDelay` (e.g. `"37s"`).
    #[serde(default)]
    pub details: Vec<Value>,
}
