//! [`ChatRequest`] → `GenerateContentRequest`
//! (<https://ai.google.dev/api/generate-content#request-body>).

use std::collections::HashMap;

use george_core::provider::{ChatRequest, Message, ToolCall};
use serde_json::{Value, json};

use super::schema;
use super::wire::{
    Content, FunctionCall, FunctionDeclaration, FunctionResponse, GenerateContentRequest,
    GenerationConfig, Part, Tool,
};

/// The request body for `req`.
///
/// - `system` → `systemInstruction: {parts: [{text}]}` (omitted when empty);
/// - `User` → a `user` turn with a `text` part;
/// - `Assistant` → a `model` turn: a `text` part, then one `functionCall` part per
///   tool call carrying its `thoughtSignature` (and Gemini's call `id`) back from
///   [`ToolCall::provider_metadata`];
/// - `Tool` → a `functionResponse` part in a `user` turn, `response` being
///   `{"result": <content>}` (or `{"error": <content>}` when `is_error`), the content
///   parsed as JSON when it is JSON (as the recorded client sent `{"result": 7}`);
/// - consecutive messages of the same role share one turn, so the results of
///   parallel calls travel together, as
///   <https://ai.google.dev/gemini-api/docs/function-calling#parallel_function_calling>
///   shows;
/// - tools → one `Tool` with all `functionDeclarations`, schemas adjusted by
///   [`schema::parameters`];
/// - `max_tokens`, `temperature` → `generationConfig.maxOutputTokens`, `.temperature`.
pub fn build(req: &ChatRequest) -> GenerateContentRequest {
    // Gemini's own ids of earlier calls, to echo in their responses.
    let mut gemini_ids: HashMap<&str, String> = HashMap::new();
    for m in req.messages.iter() {
        if let Message::Assistant(a) = m {
            for call in &a.tool_calls {
                if let Some(id) = metadata(call, "id") {
                    gemini_ids.insert(call.id.as_str(), id);
                }
            }
        }
    }
    let mut contents: Vec<Content> = Vec::new();
    for m in req.messages.iter() {
        let (role, parts) = match m {
            Message::User { content } => ("user", vec![text_part(content)]),
            Message::Assistant(a) => {
                let mut parts = Vec::new();
                if let Some(text) = a.content.as_deref().filter(|t| !t.is_empty()) {
                    parts.push(text_part(text));
                }
                parts.extend(a.tool_calls.iter().map(call_part));
                if parts.is_empty() {
                    continue; // Gemini refuses a turn without parts.
                }
                ("model", parts)
            }
            Message::Tool {
                tool_call_id,
                name,
                content,
                is_error,
            } => {
                let value = serde_json::from_str::<Value>(content)
                    .unwrap_or_else(|_| Value::String(content.clone()));
                let response = if *is_error {
                    json!({ "error": value })
                } else {
                    json!({ "result": value })
                };
                let part = Part {
                    function_response: Some(FunctionResponse {
                        id: gemini_ids.get(tool_call_id.as_str()).cloned(),
                        name: name.clone(),
                        response,
                    }),
                    ..Part::default()
                };
                ("user", vec![part])
            }
        };
        match contents.last_mut() {
            Some(last) if last.role.as_deref() == Some(role) => last.parts.extend(parts),
            _ => contents.push(Content {
                role: Some(role.into()),
                parts,
            }),
        }
    }
    let system_instruction = (!req.system.is_empty()).then(|| Content {
        role: None,
        parts: vec![text_part(&req.system)],
    });
    let tools = if req.tools.is_empty() {
        Vec::new()
    } else {
        vec![Tool {
            function_declarations: req
                .tools
                .iter()
                .map(|t| FunctionDeclaration {
                    name: t.name.clone(),
                    description: t.description.clone(),
                    parameters: schema::parameters(&t.input_schema),
                })
                .collect(),
        }]
    };
    let generation_config =
        (req.max_tokens.is_some() || req.temperature.is_some()).then_some(GenerationConfig {
            max_output_tokens: req.max_tokens,
            temperature: req.temperature,
        });
    GenerateContentRequest {
        contents,
        system_instruction,
        tools,
        generation_config,
    }
}

fn text_part(text: &str) -> Part {
    Part {
        text: Some(text.to_string()),
        ..Part::default()
    }
}

/// A string field of a tool call's provider metadata (`thoughtSignature`, `id`).
fn metadata(call: &ToolCall, key: &str) -> Option<String> {
    call.provider_metadata
        .as_ref()?
        .get(key)?
        .as_str()
        .map(str::to_string)
}

fn call_part(call: &ToolCall) -> Part {
    // `args` must be an object; arguments kept as raw text (they were not JSON) or
    // from another provider are wrapped so the turn stays valid.
    let args = match &call.arguments {
        Value::Object(_) => call.arguments.clone(),
        Value::Null => json!({}),
        other => json!({ "arguments": other }),
    };
    Part {
        thought_signature: metadata(call, "thoughtSignature"),
        function_call: Some(FunctionCall {
            id: metadata(call, "id"),
            name: call.name.clone(),
            args: Some(args),
        }),
        ..Part::default()
    }
}
