//! A `tools/call` result as a George [`ToolOutput`]: text blocks joined, images, audio
//! and resources summarised (never dropped silently), `structuredContent` kept as the
//! output's data, `isError` kept, everything capped.

use george_core::tool::ToolOutput;
use rmcp::model::CallToolResult;
use serde_json::Value;

use crate::tools::cut;

/// One content block as text for the model.
fn block_text(block: &Value) -> String {
    let kind = block
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("unknown");
    let s = |k: &str| block.get(k).and_then(Value::as_str);
    let len = |k: &str| s(k).map_or(0, str::len);
    match kind {
        "text" => s("text").unwrap_or("").to_string(),
        "image" | "audio" => format!(
            "[{kind} content: {}, {} bytes of base64, not shown]",
            s("mimeType").unwrap_or("unknown type"),
            len("data")
        ),
        "resource_link" => format!(
            "[resource link: {} ({}{})]",
            s("uri").unwrap_or("?"),
            s("name").unwrap_or("unnamed"),
            s("mimeType").map(|m| format!(", {m}")).unwrap_or_default()
        ),
        "resource" => {
            let r = block.get("resource").cloned().unwrap_or(Value::Null);
            let rs = |k: &str| r.get(k).and_then(Value::as_str);
            let head = format!(
                "[resource {}{}",
                rs("uri").unwrap_or("?"),
                rs("mimeType")
                    .map(|m| format!(" ({m})"))
                    .unwrap_or_default()
            );
            match (rs("text"), rs("blob")) {
                (Some(text), _) => format!("{head}]\n{text}"),
                (None, Some(blob)) => {
                    format!("{head}: {} bytes of base64, not shown]", blob.len())
                }
                (None, None) => format!("{head}]"),
            }
        }
        other => format!("[{other} content, not shown]"),
    }
}

/// Maps `result` to a [`ToolOutput`], each of its text and its structured content cut
/// to `cap` bytes (with a note saying so).
pub(crate) fn to_output(result: &CallToolResult, cap: usize) -> ToolOutput {
    let blocks: Vec<String> = result
        .content
        .iter()
        .map(|b| {
            serde_json::to_value(b)
                .map_or_else(|_| "[unreadable content]".into(), |v| block_text(&v))
        })
        .collect();
    let mut text = blocks.join("\n");
    let structured = result.structured_content.clone();
    if text.is_empty()
        && let Some(data) = &structured
    {
        text = data.to_string();
    }
    let total = text.len();
    let mut text = cut(&text, cap).to_string();
    if text.len() < total {
        text.push_str(&format!(
            "\n[... output truncated: {} of {total} bytes shown]",
            text.len()
        ));
    }
    let data = structured.and_then(|d| {
        let size = d.to_string().len();
        if size > cap {
            text.push_str(&format!(
                "\n[structured content of {size} bytes dropped: over the {cap}-byte cap]"
            ));
            None
        } else {
            Some(d)
        }
    });
    let out = if result.is_error == Some(true) {
        ToolOutput::error(text)
    } else {
        ToolOutput::ok(text)
    };
    match data {
        Some(d) => out.with_data(d),
        None => out,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(v: Value) -> CallToolResult {
        serde_json::from_value(v).expect("a result")
    }

    #[test]
    fn maps_text_structured_error_and_summarises_the_rest() {
        let r = result(json!({
            "content": [
                {"type": "text", "text": "hello"},
                {"type": "image", "data": "AAAA", "mimeType": "image/png"},
                {"type": "resource", "resource": {"uri": "file:///a", "mimeType": "text/plain", "text": "body"}},
                {"type": "resource", "resource": {"uri": "file:///b", "blob": "AAAAAAAA"}},
                {"type": "resource_link", "uri": "demo://x", "name": "x"}
            ],
            "structuredContent": {"t": 1},
            "isError": true
        }));
        let o = to_output(&r, 10_000);
        assert!(o.is_error);
        assert_eq!(o.data, Some(json!({"t": 1})));
        let want = "hello\n[image content: image/png, 4 bytes of base64, not shown]\n\
            [resource file:///a (text/plain)]\nbody\n[resource file:///b: 8 bytes of base64, not shown]\n\
            [resource link: demo://x (x)]";
        assert_eq!(o.content, want);
    }

    #[test]
    fn caps_text_and_structured_content() {
        let r = result(json!({"content": [{"type": "text", "text": "é".repeat(100)}]}));
        let o = to_output(&r, 11);
        assert!(
            o.content
                .starts_with("ééééé\n[... output truncated: 10 of 200 bytes"),
            "{}",
            o.content
        );
        let r = result(json!({"content": [], "structuredContent": {"k": "v".repeat(50)}}));
        let o = to_output(&r, 20);
        assert!(o.data.is_none());
        assert!(o.content.contains("structured content of"), "{}", o.content);
    }
}
