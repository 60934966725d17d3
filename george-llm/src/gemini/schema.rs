//! Adjusting a tool's JSON Schema to what Gemini's `FunctionDeclaration.parameters`
//! accepts: "a select subset of an OpenAPI 3.0 schema object"
//! (<https://ai.google.dev/api/caching#Schema>). A field outside that subset makes the
//! whole request fail with `400 INVALID_ARGUMENT` ("Unknown name …"), so:
//!
//! | JSON Schema | sent to Gemini |
//! |---|---|
//! | `$ref` (`#/$defs/…`, `#/definitions/…`, `#`) | the target, inlined; recursion stops after [`MAX_REF_DEPTH`] expansions with `{"type": "object"}` |
//! | `$schema`, `$id`, `$defs`, `definitions`, `additionalProperties`, `examples`, `exclusiveMinimum`, … | dropped (only the fields of the `Schema` page are kept) |
//! | `oneOf` | `anyOf` |
//! | `allOf` | merged into one schema (properties and `required` united) |
//! | `const: v` | `enum: [v]` |
//! | `type: ["string", "null"]` | `type: "string", nullable: true` (several non-null types: an `anyOf`) |
//! | `anyOf: [X, {"type": "null"}]` (schemars' `Option<X>`) | `X` with `nullable: true` |
//! | `enum` with non-string values | dropped, the values listed in the description (Gemini's `enum` holds strings) |
//! | `format` other than `enum`/`date-time` (string), `int32`/`int64` (integer), `float`/`double` (number) | dropped (the Developer API refuses others, e.g. schemars' `uint32`) |
//! | `true` / `false` schemas | `{}` |

use serde_json::{Map, Value, json};

/// How many `$ref` expansions deep a schema is inlined; a recursive schema (a tree)
/// stops there with `{"type": "object"}` (Gemini's `Schema` has no references:
/// <https://ai.google.dev/api/caching#Schema>).
pub const MAX_REF_DEPTH: usize = 5;

/// The fields of Gemini's `Schema` (<https://ai.google.dev/api/caching#Schema>).
const KEPT: &[&str] = &[
    "type",
    "format",
    "title",
    "description",
    "nullable",
    "enum",
    "maxItems",
    "minItems",
    "properties",
    "required",
    "minProperties",
    "maxProperties",
    "minLength",
    "maxLength",
    "pattern",
    "example",
    "anyOf",
    "propertyOrdering",
    "default",
    "items",
    "minimum",
    "maximum",
];

/// `schema` (a JSON Schema, e.g. from `schemars`) adjusted to Gemini's subset
/// (<https://ai.google.dev/api/caching#Schema>), as described in the module docs.
pub fn to_gemini(schema: &Value) -> Value {
    convert(schema, schema, 0)
}

/// The `parameters` of a function declaration
/// (<https://ai.google.dev/api/caching#FunctionDeclaration>): `None` for an object without
/// properties, which Gemini refuses ("properties: should be non-empty for OBJECT
/// type"); a function without arguments simply has no `parameters`.
pub fn parameters(schema: &Value) -> Option<Value> {
    let converted = to_gemini(schema);
    let is_object = converted.get("type").and_then(Value::as_str) == Some("object");
    let has_properties = converted
        .get("properties")
        .and_then(Value::as_object)
        .is_some_and(|p| !p.is_empty());
    let is_empty = converted.as_object().is_none_or(Map::is_empty);
    if (is_object && !has_properties && converted.get("anyOf").is_none()) || is_empty {
        None
    } else {
        Some(converted)
    }
}

fn convert(node: &Value, root: &Value, depth: usize) -> Value {
    let Some(obj) = node.as_object() else {
        // `true`, `false` and anything else: no constraint Gemini can express.
        return Value::Object(Map::new());
    };
    if let Some(reference) = obj.get("$ref").and_then(Value::as_str) {
        return inline_ref(obj, reference, root, depth);
    }
    let mut out = Map::new();
    for (key, value) in obj {
        match key.as_str() {
            "properties" => {
                let props = value
                    .as_object()
                    .map(|p| {
                        p.iter()
                            .map(|(k, v)| (k.clone(), convert(v, root, depth)))
                            .collect::<Map<_, _>>()
                    })
                    .unwrap_or_default();
                out.insert(key.clone(), Value::Object(props));
            }
            "items" => {
                let first = match value {
                    Value::Array(tuple) => tuple.first().cloned().unwrap_or(json!({})),
                    other => other.clone(),
                };
                out.insert(key.clone(), convert(&first, root, depth));
            }
            "anyOf" | "oneOf" => {
                let branches = out.entry("anyOf").or_insert_with(|| json!([]));
                if let (Value::Array(into), Value::Array(from)) = (branches, value) {
                    into.extend(from.iter().map(|b| convert(b, root, depth)));
                }
            }
            "allOf" | "const" | "enum" | "type" | "format" => {} // below
            k if KEPT.contains(&k) => {
                out.insert(key.clone(), value.clone());
            }
            _ => {} // `$schema`, `$defs`, `additionalProperties`, …
        }
    }
    set_type(&mut out, obj.get("type"));
    set_enum(&mut out, obj.get("enum"), obj.get("const"));
    if let Some(format) = obj.get("format").and_then(Value::as_str)
        && format_allowed(out.get("type").and_then(Value::as_str), format)
    {
        out.insert("format".into(), Value::String(format.into()));
    }
    simplify_any_of(&mut out);
    if let Some(Value::Array(parts)) = obj.get("allOf") {
        for part in parts {
            if let Value::Object(part) = convert(part, root, depth) {
                merge(&mut out, part);
            }
        }
    }
    Value::Object(out)
}

/// Inlines `$ref`: the target, with the referring schema's own fields (a
/// `description`, say) on top.
fn inline_ref(obj: &Map<String, Value>, reference: &str, root: &Value, depth: usize) -> Value {
    let target = reference
        .strip_prefix('#')
        .and_then(|pointer| root.pointer(pointer));
    let mut merged = match target {
        Some(_) if depth >= MAX_REF_DEPTH => {
            let mut stop = Map::new();
            stop.insert("type".into(), json!("object"));
            stop
        }
        Some(Value::Object(t)) => t.clone(),
        _ => Map::new(), // a remote or broken reference: no constraint
    };
    for (k, v) in obj {
        if k != "$ref" {
            merged.insert(k.clone(), v.clone());
        }
    }
    if depth >= MAX_REF_DEPTH {
        merged.retain(|k, _| k == "type" || k == "description" || k == "title");
        return Value::Object(merged);
    }
    convert(&Value::Object(merged), root, depth + 1)
}

/// `type`, with `null` turned into `nullable` and several types into an `anyOf`.
fn set_type(out: &mut Map<String, Value>, ty: Option<&Value>) {
    let types: Vec<&str> = match ty {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => return,
    };
    if types.contains(&"null") {
        out.insert("nullable".into(), Value::Bool(true));
    }
    let rest: Vec<&str> = types.into_iter().filter(|t| *t != "null").collect();
    match rest.as_slice() {
        [] => {}
        [one] => {
            out.insert("type".into(), json!(one));
        }
        many if !out.contains_key("anyOf") => {
            let branches = many.iter().map(|t| json!({ "type": t })).collect();
            out.insert("anyOf".into(), Value::Array(branches));
        }
        _ => {}
    }
}

/// `enum` (or `const` as a one-value `enum`): kept when its values are strings, else
/// listed in the description.
fn set_enum(out: &mut Map<String, Value>, values: Option<&Value>, constant: Option<&Value>) {
    let values: Vec<Value> = match (values, constant) {
        (Some(Value::Array(vs)), _) => vs.clone(),
        (_, Some(c)) => vec![c.clone()],
        _ => return,
    };
    if values.iter().any(Value::is_null) {
        out.insert("nullable".into(), Value::Bool(true));
    }
    let values: Vec<Value> = values.into_iter().filter(|v| !v.is_null()).collect();
    if values.is_empty() {
        return;
    }
    if values.iter().all(Value::is_string) {
        out.entry("type").or_insert_with(|| json!("string"));
        out.insert("enum".into(), Value::Array(values));
        return;
    }
    let listed: Vec<String> = values.iter().map(Value::to_string).collect();
    let note = format!("Allowed values: {}.", listed.join(", "));
    let description = match out.get("description").and_then(Value::as_str) {
        Some(d) if !d.is_empty() => format!("{d} {note}"),
        _ => note,
    };
    out.insert("description".into(), Value::String(description));
}

fn format_allowed(ty: Option<&str>, format: &str) -> bool {
    matches!(
        (ty, format),
        (Some("string"), "enum" | "date-time")
            | (Some("integer"), "int32" | "int64")
            | (Some("number"), "float" | "double")
    )
}

/// Removes `{"type": "null"}` branches of `anyOf` (setting `nullable`), and merges a
/// single remaining branch into the schema.
fn simplify_any_of(out: &mut Map<String, Value>) {
    let Some(Value::Array(branches)) = out.remove("anyOf") else {
        return;
    };
    // A converted `{"type": "null"}` is `{"nullable": true}` (perhaps described).
    let is_null = |b: &Value| {
        b.get("nullable") == Some(&Value::Bool(true))
            && b.as_object().is_some_and(|o| {
                o.keys()
                    .all(|k| matches!(k.as_str(), "nullable" | "description" | "title"))
            })
    };
    let before = branches.len();
    let branches: Vec<Value> = branches.into_iter().filter(|b| !is_null(b)).collect();
    if branches.len() < before {
        out.insert("nullable".into(), Value::Bool(true));
    }
    match branches.len() {
        0 => {}
        1 if !out.contains_key("type") => {
            if let Some(Value::Object(only)) = branches.into_iter().next() {
                merge(out, only);
            }
        }
        _ => {
            out.insert("anyOf".into(), Value::Array(branches));
        }
    }
}

/// Merges `from` into `into`: `into`'s own fields win, except that properties and
/// `required` are united and `nullable` is kept when either says so.
fn merge(into: &mut Map<String, Value>, from: Map<String, Value>) {
    for (k, v) in from {
        match (k.as_str(), into.get_mut(&k), v) {
            ("properties", Some(Value::Object(mine)), Value::Object(theirs)) => {
                for (name, schema) in theirs {
                    mine.entry(name).or_insert(schema);
                }
            }
            ("required", Some(Value::Array(mine)), Value::Array(theirs)) => {
                for name in theirs {
                    if !mine.contains(&name) {
                        mine.push(name);
                    }
                }
            }
            ("nullable", Some(mine), Value::Bool(true)) => *mine = Value::Bool(true),
            (_, Some(_), _) => {}
            (_, None, v) => {
                into.insert(k, v);
            }
        }
    }
}

#[cfg(test)]
#[path = "schema_tests.rs"]
mod tests;
