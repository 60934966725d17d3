use serde_json::json;

use super::*;

#[test]
fn schemars_struct_with_a_nested_struct_and_options() {
    // What schemars 1.x emits for
    //   struct Args { name: String, inner: Inner, note: Option<String>, maybe: Option<Inner> }
    //   struct Inner { /// The count.
    //                  count: u32 }
    let schemars = json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "Args",
        "type": "object",
        "properties": {
            "name": {"type": "string"},
            "inner": {"$ref": "#/$defs/Inner"},
            "note": {"type": ["string", "null"]},
            "maybe": {"anyOf": [{"$ref": "#/$defs/Inner"}, {"type": "null"}]}
        },
        "required": ["name", "inner"],
        "additionalProperties": false,
        "$defs": {
            "Inner": {
                "type": "object",
                "properties": {
                    "count": {"description": "The count.", "type": "integer", "format": "uint32", "minimum": 0}
                },
                "required": ["count"]
            }
        }
    });
    let inner = json!({
        "type": "object",
        "properties": {"count": {"description": "The count.", "type": "integer", "minimum": 0}},
        "required": ["count"]
    });
    let mut maybe = inner.clone();
    maybe["nullable"] = json!(true);
    assert_eq!(
        to_gemini(&schemars),
        json!({
            "title": "Args",
            "type": "object",
            "properties": {
                "name": {"type": "string"},
                "inner": inner,
                "note": {"type": "string", "nullable": true},
                "maybe": maybe
            },
            "required": ["name", "inner"]
        })
    );
}

#[test]
fn refs_are_inlined_with_their_siblings_and_old_style_definitions() {
    let s = json!({
        "type": "object",
        "properties": {"p": {"$ref": "#/definitions/P", "description": "Where."}},
        "definitions": {"P": {"type": "string", "description": "A path."}}
    });
    assert_eq!(
        to_gemini(&s)["properties"]["p"],
        json!({"type": "string", "description": "Where."})
    );
    // A broken reference constrains nothing (and does not fail).
    let broken = json!({"type": "object", "properties": {"q": {"$ref": "#/$defs/Nope"}}});
    assert_eq!(to_gemini(&broken)["properties"]["q"], json!({}));
}

#[test]
fn recursive_refs_stop_at_the_depth_limit() {
    let tree = json!({
        "$ref": "#/$defs/Node",
        "$defs": {"Node": {
            "type": "object",
            "properties": {"children": {"type": "array", "items": {"$ref": "#/$defs/Node"}}}
        }}
    });
    let out = to_gemini(&tree);
    let mut node = &out;
    let mut levels = 0;
    while let Some(next) = node.pointer("/properties/children/items") {
        node = next;
        levels += 1;
    }
    // The root's `$ref` is expansion 1; the items of the last expansion stop.
    assert_eq!(levels, MAX_REF_DEPTH);
    assert_eq!(node, &json!({"type": "object"}));
    assert!(!out.to_string().contains("$ref"));
}

#[test]
fn unsupported_keywords_are_dropped() {
    let s = json!({
        "$schema": "http://json-schema.org/draft-07/schema#",
        "$id": "x",
        "type": "object",
        "properties": {"m": {"type": "object", "additionalProperties": {"type": "string"},
                             "properties": {"k": {"type": "string", "format": "uri", "examples": ["a"]}}},
                       "n": {"type": "number", "exclusiveMinimum": 0, "format": "double", "maximum": 9}},
        "additionalProperties": false
    });
    assert_eq!(
        to_gemini(&s),
        json!({
            "type": "object",
            "properties": {"m": {"type": "object", "properties": {"k": {"type": "string"}}},
                           "n": {"type": "number", "format": "double", "maximum": 9}}
        })
    );
}

#[test]
fn one_of_becomes_any_of() {
    let s = json!({"oneOf": [{"type": "string"}, {"type": "integer"}]});
    assert_eq!(
        to_gemini(&s),
        json!({"anyOf": [{"type": "string"}, {"type": "integer"}]})
    );
}

#[test]
fn const_becomes_a_one_value_enum() {
    assert_eq!(
        to_gemini(&json!({"const": "add"})),
        json!({"type": "string", "enum": ["add"]})
    );
    // Gemini's enum holds strings: other values go to the description.
    assert_eq!(
        to_gemini(&json!({"type": "integer", "description": "Level.", "enum": [1, 2]})),
        json!({"type": "integer", "description": "Level. Allowed values: 1, 2."})
    );
    assert_eq!(
        to_gemini(&json!({"enum": ["a", null]})),
        json!({"type": "string", "enum": ["a"], "nullable": true})
    );
}

#[test]
fn type_arrays_become_nullable_or_any_of() {
    assert_eq!(
        to_gemini(&json!({"type": ["string", "null"]})),
        json!({"type": "string", "nullable": true})
    );
    assert_eq!(
        to_gemini(&json!({"type": ["integer", "string", "null"]})),
        json!({"anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": true})
    );
}

#[test]
fn all_of_is_merged() {
    let s = json!({
        "allOf": [
            {"type": "object", "properties": {"a": {"type": "string"}}, "required": ["a"]},
            {"properties": {"b": {"type": "boolean"}}, "required": ["b"]}
        ],
        "description": "Both."
    });
    assert_eq!(
        to_gemini(&s),
        json!({
            "description": "Both.",
            "type": "object",
            "properties": {"a": {"type": "string"}, "b": {"type": "boolean"}},
            "required": ["a", "b"]
        })
    );
}

#[test]
fn parameters_of_a_function_without_arguments_are_omitted() {
    assert_eq!(
        parameters(&json!({"type": "object", "properties": {}})),
        None
    );
    assert_eq!(parameters(&json!({"type": "object"})), None);
    assert_eq!(parameters(&json!(true)), None);
    assert!(parameters(&json!({"type": "object", "properties": {"a": {}}})).is_some());
}
