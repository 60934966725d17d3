//! A server's tool list as George sees it: names prefixed with the alias, schemas
//! unchanged, descriptions marked untrusted and capped, effect classes from the
//! operator's configuration raised (never lowered) by the server's annotations.

use std::collections::BTreeMap;

use george_core::tool::{EffectClass, ToolDefinition};
use rmcp::model::Tool;

use crate::config::McpServer;

/// The tools of one server: George's definitions and the server's name of each.
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolSet {
    pub(crate) definitions: Vec<ToolDefinition>,
    /// George's name (`<alias>_<tool>`) → the server's name.
    pub(crate) names: BTreeMap<String, String>,
}

/// `<alias>_<tool>`, with any character outside `[A-Za-z0-9_-]` replaced by `_` (the
/// providers' rule for tool names).
pub(crate) fn george_name(alias: &str, tool: &str) -> String {
    format!("{alias}_{tool}")
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}

/// The class of a tool: the operator's (default `Write`), raised to `Write` when the
/// server says the tool is not read-only (`readOnlyHint: false`) or destructive
/// (`destructiveHint: true`). Annotations never lower a class: a server saying
/// `readOnlyHint: true` of an undeclared tool leaves it `Write`.
pub(crate) fn effect_of(config: &McpServer, tool: &Tool) -> EffectClass {
    let declared = config
        .effects
        .get(tool.name.as_ref())
        .copied()
        .unwrap_or_default();
    let raised = tool
        .annotations
        .as_ref()
        .is_some_and(|a| a.read_only_hint == Some(false) || a.destructive_hint == Some(true));
    if raised { EffectClass::Write } else { declared }
}

/// Cuts `text` to at most `max` bytes at a character boundary.
pub(crate) fn cut(text: &str, max: usize) -> &str {
    if text.len() <= max {
        return text;
    }
    let mut end = max;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    &text[..end]
}

/// The description passed to the model: the server's text, capped, behind a line
/// that says whose it is. It describes the tool; it is never an instruction to the
/// agent (George puts no server text in the system prompt).
fn description(config: &McpServer, tool: &Tool) -> String {
    let text = tool
        .description
        .as_deref()
        .or(tool.title.as_deref())
        .unwrap_or("");
    let cut_text = cut(text, config.max_description_bytes);
    let more = if cut_text.len() < text.len() {
        " [...]"
    } else {
        ""
    };
    format!(
        "Tool {:?} of MCP server {:?} (its description, as the server gives it): {cut_text}{more}",
        tool.name.as_ref(),
        config.alias
    )
}

impl ToolSet {
    /// Builds the set from a server's `tools/list`. A tool whose George name another
    /// tool already took is skipped, with a warning.
    pub(crate) fn new(config: &McpServer, tools: &[Tool]) -> Self {
        let mut set = ToolSet::default();
        for tool in tools {
            let name = george_name(&config.alias, &tool.name);
            if set.names.contains_key(&name) {
                tracing::warn!(
                    server = %config.alias, tool = %tool.name,
                    "MCP tool skipped: its name {name:?} is taken by another tool of the server"
                );
                continue;
            }
            // The schema is passed on as the server gave it.
            let schema = serde_json::Value::Object((*tool.input_schema).clone());
            let def = ToolDefinition::new(name.clone(), description(config, tool), schema)
                .with_effect(effect_of(config, tool));
            set.definitions.push(def);
            set.names.insert(name, tool.name.to_string());
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn tool(v: serde_json::Value) -> Tool {
        serde_json::from_value(v).expect("a tool")
    }

    #[test]
    fn annotations_raise_never_lower() {
        let config = McpServer::http("fs", "http://h/mcp")
            .effect("read_file", EffectClass::Read)
            .effect("wipe", EffectClass::Read);
        let schema = json!({"type": "object"});
        let read = tool(json!({"name": "read_file", "inputSchema": schema,
            "annotations": {"readOnlyHint": true}}));
        let wipe = tool(json!({"name": "wipe", "inputSchema": schema,
            "annotations": {"destructiveHint": true}}));
        let undeclared = tool(json!({"name": "list", "inputSchema": schema,
            "annotations": {"readOnlyHint": true}}));
        assert_eq!(effect_of(&config, &read), EffectClass::Read);
        assert_eq!(effect_of(&config, &wipe), EffectClass::Write);
        assert_eq!(effect_of(&config, &undeclared), EffectClass::Write);
    }

    #[test]
    fn names_are_prefixed_and_sanitised_and_schemas_kept() {
        let config = McpServer::http("srv", "http://h/mcp").max_description_bytes(8);
        let schema = json!({"type": "object", "properties": {"a": {"type": "number"}},
            "$defs": {"x": {}}});
        let tools = [
            tool(
                json!({"name": "get-sum", "description": "Adds two numbers.", "inputSchema": schema}),
            ),
            tool(json!({"name": "get-sum", "inputSchema": schema})),
        ];
        let set = ToolSet::new(&config, &tools);
        assert_eq!(set.definitions.len(), 1, "the colliding name is skipped");
        let d = &set.definitions[0];
        assert_eq!(d.name, "srv_get-sum");
        assert_eq!(*d.input_schema, schema);
        assert!(
            d.description.ends_with("Adds two [...]"),
            "{}",
            d.description
        );
        assert_eq!(set.names["srv_get-sum"], "get-sum");
        assert_eq!(george_name("a b", "c/d"), "a_b_c_d");
    }
}
