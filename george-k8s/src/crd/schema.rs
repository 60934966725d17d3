//! From the schemars schema of George's own types (the ones the Git manifests use) to a
//! Kubernetes *structural* schema.
//!
//! The manifest types were written for JSON Schema (editors, CI), where unions, `const`,
//! `additionalProperties: false` and defaults are normal. A CRD's `openAPIV3Schema` must
//! be structural: every field typed (or explicitly free-form), no `oneOf`/`anyOf` that
//! changes the shape, no `additionalProperties` beside `properties`. The rewrite:
//!
//! - `type: [T, "null"]` and `anyOf: [S, {type: null}]` become `T`/`S` with `nullable`;
//! - unions of string values (`oneOf` of `const`s, as schemars writes documented unit
//!   enums) become one `enum`; a union of one shape becomes that shape;
//! - any other union (e.g. `approval: none | required | {…}`), and any free-form value
//!   (`params`, a parameter's `default`), keeps its description and becomes
//!   `x-kubernetes-preserve-unknown-fields` — the engine validates it exactly as it
//!   validates a Git manifest;
//! - `additionalProperties: false` (`deny_unknown_fields`) is dropped: the API server
//!   prunes unknown fields, and rejects them under `fieldValidation=Strict`;
//! - defaults are dropped (the engine applies the same serde defaults when it reads a
//!   spec), as are `title`, `$schema`, `examples`;
//! - unsigned integer formats become `int32`/`int64`.

use serde_json::{Map, Value, json};

/// The schema of `T` for the Deserialize contract, every subschema inlined, made
/// structural.
pub(crate) fn structural_schema_for<T: schemars::JsonSchema>() -> Value {
    let generator = schemars::generate::SchemaSettings::openapi3()
        .with(|s| {
            s.inline_subschemas = true;
            s.meta_schema = None;
        })
        .into_generator();
    let schema = generator.into_root_schema_for::<T>();
    structural(serde_json::to_value(schema).unwrap_or(Value::Null))
}

/// Rewrites one (sub)schema; see the module documentation.
pub(crate) fn structural(v: Value) -> Value {
    let mut m = match v {
        Value::Object(m) => m,
        // `true` / `{}`: anything.
        _ => return free_form(None),
    };
    for k in [
        "$schema",
        "$defs",
        "definitions",
        "title",
        "default",
        "examples",
        "example",
        "$id",
    ] {
        m.remove(k);
    }
    if let Some(Value::String(d)) = m.get_mut("description") {
        *d = plain_description(d);
    }
    if let Some(c) = m.remove("const") {
        m.insert("enum".into(), Value::Array(vec![c]));
    }
    // `type: [T, "null"]`.
    if let Some(Value::Array(types)) = m.get("type").cloned() {
        let non_null: Vec<Value> = types.iter().filter(|t| *t != "null").cloned().collect();
        if non_null.len() < types.len() {
            m.insert("nullable".into(), Value::Bool(true));
        }
        match non_null.as_slice() {
            [one] => {
                m.insert("type".into(), one.clone());
            }
            _ => return free_form(description(&m)),
        }
    }
    if let Some(Value::Array(values)) = m.get_mut("enum")
        && values.iter().any(Value::is_null)
    {
        values.retain(|v| !v.is_null());
        m.insert("nullable".into(), Value::Bool(true));
    }
    for key in ["oneOf", "anyOf", "allOf"] {
        if let Some(Value::Array(members)) = m.remove(key) {
            m = merge_union(m, key, members);
            if m.contains_key("x-kubernetes-preserve-unknown-fields") {
                return Value::Object(m);
            }
        }
    }
    match m.remove("additionalProperties") {
        Some(Value::Bool(true)) => {
            m.insert(
                "x-kubernetes-preserve-unknown-fields".into(),
                Value::Bool(true),
            );
        }
        Some(s @ Value::Object(_)) => {
            let s = structural(s);
            if s.get("x-kubernetes-preserve-unknown-fields") == Some(&Value::Bool(true))
                && s.as_object().is_some_and(|o| !o.contains_key("type"))
            {
                // A map of anything.
                m.insert(
                    "x-kubernetes-preserve-unknown-fields".into(),
                    Value::Bool(true),
                );
            } else {
                m.insert("additionalProperties".into(), s);
            }
        }
        _ => {}
    }
    if let Some(Value::Object(props)) = m.remove("properties") {
        let props: Map<String, Value> =
            props.into_iter().map(|(k, v)| (k, structural(v))).collect();
        m.insert("properties".into(), Value::Object(props));
    }
    if let Some(items) = m.remove("items") {
        m.insert("items".into(), structural(items));
    }
    if let Some(Value::String(f)) = m.get("format") {
        let f = match f.as_str() {
            "uint8" | "uint16" | "int8" | "int16" => Some("int32"),
            "uint32" | "uint64" | "uint" => Some("int64"),
            _ => None,
        };
        if let Some(f) = f {
            m.insert("format".into(), json!(f));
        }
    }
    if !m.contains_key("type")
        && !m.contains_key("x-kubernetes-preserve-unknown-fields")
        && !m.contains_key("x-kubernetes-int-or-string")
    {
        if m.contains_key("properties") {
            m.insert("type".into(), json!("object"));
        } else if m.contains_key("enum") {
            m.insert("type".into(), json!("string"));
        } else {
            return free_form(description(&m));
        }
    }
    Value::Object(m)
}

fn description(m: &Map<String, Value>) -> Option<Value> {
    m.get("description").cloned()
}

/// Any value, kept as it is (`x-kubernetes-preserve-unknown-fields`), with `description`.
fn free_form(description: Option<Value>) -> Value {
    let mut m = Map::new();
    if let Some(d) = description {
        m.insert("description".into(), d);
    }
    m.insert(
        "x-kubernetes-preserve-unknown-fields".into(),
        Value::Bool(true),
    );
    Value::Object(m)
}

/// Folds a `oneOf`/`anyOf`/`allOf` into `parent`.
fn merge_union(
    mut parent: Map<String, Value>,
    key: &str,
    members: Vec<Value>,
) -> Map<String, Value> {
    let mut nullable = false;
    let members: Vec<Value> = members
        .into_iter()
        .filter(|s| {
            let null = s.get("type") == Some(&json!("null"))
                || s.get("nullable") == Some(&json!(true))
                    && s.as_object().is_some_and(|o| o.len() == 1);
            nullable |= null;
            !null
        })
        .map(structural)
        .collect();
    if nullable {
        parent.insert("nullable".into(), Value::Bool(true));
    }
    // One enum of strings.
    let strings: Option<Vec<Value>> = members
        .iter()
        .map(|s| {
            let ok = s.get("type").is_none_or(|t| t == "string");
            s.get("enum")
                .and_then(Value::as_array)
                .filter(|_| ok)
                .cloned()
        })
        .collect::<Option<Vec<_>>>()
        .map(|v| v.into_iter().flatten().collect());
    if key != "allOf"
        && let Some(values) = strings
        && !members.is_empty()
    {
        parent.insert("type".into(), json!("string"));
        parent.insert("enum".into(), Value::Array(values));
        return parent;
    }
    if members.len() == 1 || key == "allOf" {
        for s in members {
            if let Value::Object(o) = s {
                for (k, v) in o {
                    if k == "description" && parent.contains_key("description") {
                        continue;
                    }
                    parent.insert(k, v);
                }
            }
        }
        return parent;
    }
    match free_form(description(&parent)) {
        Value::Object(o) => {
            let mut out = o;
            if nullable {
                out.insert("nullable".into(), Value::Bool(true));
            }
            out
        }
        _ => parent,
    }
}

/// A doc comment without rustdoc's link syntax: "[`X`](path)" and "[`X`]" become "`X`".
fn plain_description(d: &str) -> String {
    let mut out = String::with_capacity(d.len());
    let mut rest = d;
    while let Some(i) = rest.find("[`") {
        out.push_str(&rest[..i]);
        let after = &rest[i + 1..];
        match after.find("`]") {
            Some(j) => {
                out.push_str(&after[..j + 1]);
                rest = &after[j + 2..];
                if rest.starts_with('(')
                    && let Some(k) = rest.find(')')
                {
                    rest = &rest[k + 1..];
                }
            }
            None => {
                out.push('[');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rustdoc_links_become_code() {
        assert_eq!(
            plain_description("See [`JobStatus`](crate::x) and [`MAX_STEPS`]; [a] stays."),
            "See `JobStatus` and `MAX_STEPS`; [a] stays."
        );
    }

    #[test]
    fn unions_and_nulls_become_structural() {
        let v = structural(json!({
            "type": "object",
            "additionalProperties": false,
            "properties": {
                "a": {"type": ["string", "null"], "default": null},
                "e": {"oneOf": [{"const": "x", "description": "X"}, {"enum": ["y"], "type": "string"}]},
                "u": {"description": "string or map", "anyOf": [{"type": "string"}, {"type": "object"}]},
                "o": {"anyOf": [{"type": "object", "properties": {"n": {"type": "integer", "format": "uint32"}}}, {"type": "null"}]},
                "any": true,
                "m": {"type": "object", "additionalProperties": true}
            }
        }));
        assert_eq!(v["additionalProperties"], Value::Null);
        assert_eq!(
            v["properties"]["a"],
            json!({"type": "string", "nullable": true})
        );
        assert_eq!(
            v["properties"]["e"],
            json!({"type": "string", "enum": ["x", "y"]})
        );
        assert_eq!(
            v["properties"]["u"],
            json!({"description": "string or map", "x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(v["properties"]["o"]["nullable"], json!(true));
        assert_eq!(
            v["properties"]["o"]["properties"]["n"]["format"],
            json!("int64")
        );
        assert_eq!(
            v["properties"]["any"],
            json!({"x-kubernetes-preserve-unknown-fields": true})
        );
        assert_eq!(
            v["properties"]["m"]["x-kubernetes-preserve-unknown-fields"],
            json!(true)
        );
    }
}
