//! Template parameters: compiled once per template (patterns included), then used to
//! check and complete every job's parameter values.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::parse::Issue;
use crate::model::{ParamType, ParameterSpec, Params};

/// A parameter with its pattern compiled (anchored: the whole value must match).
#[derive(Debug, Clone)]
pub(crate) struct CompiledParam {
    pub(crate) spec: ParameterSpec,
    pattern: Option<Regex>,
}

/// The parameters of a template, ready to check jobs against.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledParams {
    list: Vec<CompiledParam>,
    index: HashMap<String, usize>,
}

/// Compiles a whole-value regular expression.
pub(crate) fn compile_regex(pattern: &str, anchored: bool) -> Result<Regex, String> {
    let source = if anchored {
        format!("^(?:{pattern})$")
    } else {
        pattern.to_string()
    };
    regex::RegexBuilder::new(&source)
        .size_limit(1 << 20)
        .build()
        .map_err(|e| format!("invalid regular expression `{pattern}`: {e}"))
}

fn type_name(t: ParamType) -> &'static str {
    match t {
        ParamType::String => "string",
        ParamType::Integer => "integer",
        ParamType::Number => "number",
        ParamType::Boolean => "boolean",
        ParamType::Enum => "enum",
        ParamType::Fuzzy => "fuzzy",
    }
}

/// A short description of a value, for messages.
fn describe(v: &Value) -> String {
    match v {
        Value::Null => "null".to_string(),
        Value::Bool(b) => format!("boolean {b}"),
        Value::Number(n) => format!("number {n}"),
        Value::String(s) => {
            let short: String = s.chars().take(40).collect();
            let ellipsis = if short.len() < s.len() { "…" } else { "" };
            format!("string {short:?}{ellipsis}")
        }
        Value::Array(_) => "a sequence".to_string(),
        Value::Object(_) => "a mapping".to_string(),
    }
}

impl CompiledParams {
    /// Compiles and checks the parameter specs of a template (`spec.parameters`).
    pub(crate) fn compile(params: &[ParameterSpec]) -> (CompiledParams, Vec<Issue>) {
        let mut out = CompiledParams::default();
        let mut issues = Vec::new();
        for (i, p) in params.iter().enumerate() {
            let at = |f: &str| format!("spec.parameters[{i}]{f}");
            if p.name.is_empty() {
                issues.push(Issue::new(at(".name"), "a parameter needs a name"));
            } else if out.index.contains_key(&p.name) {
                issues.push(Issue::new(
                    at(".name"),
                    format!("duplicate parameter `{}`", p.name),
                ));
            }
            let tn = type_name(p.kind);
            let mut pattern = None;
            if let Some(src) = &p.pattern {
                if p.kind != ParamType::String {
                    issues.push(Issue::new(
                        at(".pattern"),
                        format!("`pattern` applies to string parameters, not {tn}"),
                    ));
                }
                match compile_regex(src, true) {
                    Ok(re) => pattern = Some(re),
                    Err(e) => issues.push(Issue::new(at(".pattern"), e)),
                }
            }
            match (p.kind == ParamType::Enum, p.values.is_empty()) {
                (true, true) => issues.push(Issue::new(
                    at(".type"),
                    "an enum parameter needs its `enum` values",
                )),
                (false, false) => issues.push(Issue::new(
                    at(".enum"),
                    format!("`enum` applies to enum parameters, not {tn}"),
                )),
                _ => {}
            }
            let numeric = matches!(p.kind, ParamType::Integer | ParamType::Number);
            for (field, bound) in [("minimum", p.minimum), ("maximum", p.maximum)] {
                let Some(b) = bound else { continue };
                if !numeric {
                    issues.push(Issue::new(
                        at(&format!(".{field}")),
                        format!("`{field}` applies to integer and number parameters, not {tn}"),
                    ));
                } else if !b.is_finite() {
                    issues.push(Issue::new(
                        at(&format!(".{field}")),
                        format!("`{field}` must be a finite number"),
                    ));
                }
            }
            if let (Some(min), Some(max)) = (p.minimum, p.maximum) {
                if min > max {
                    issues.push(Issue::new(
                        at(".maximum"),
                        format!("maximum {max} is below minimum {min}"),
                    ));
                }
            }
            let compiled = CompiledParam {
                spec: p.clone(),
                pattern,
            };
            if let Some(default) = &p.default {
                if let Err(e) = compiled.check(default) {
                    issues.push(Issue::new(at(".default"), format!("invalid default: {e}")));
                }
            }
            if !p.name.is_empty() && !out.index.contains_key(&p.name) {
                out.index.insert(p.name.clone(), out.list.len());
            }
            out.list.push(compiled);
        }
        (out, issues)
    }

    /// Checks a job's parameter values and applies defaults. Issues name the fields
    /// `spec.params.<name>` (a bad or unknown value) and `spec.params` (a missing one).
    pub(crate) fn resolve(&self, template: &str, given: &Params) -> Result<Params, Vec<Issue>> {
        let mut issues = Vec::new();
        let mut out = Params::new();
        for (name, value) in given {
            let field = format!("spec.params.{name}");
            match self.index.get(name).and_then(|i| self.list.get(*i)) {
                None => issues.push(Issue::new(
                    field,
                    format!(
                        "unknown parameter `{name}`: template `{template}` does not declare it"
                    ),
                )),
                Some(p) => match p.check(value) {
                    Ok(()) => {
                        out.insert(name.clone(), value.clone());
                    }
                    Err(e) => issues.push(Issue::new(field, format!("parameter `{name}`: {e}"))),
                },
            }
        }
        for p in &self.list {
            if given.contains_key(&p.spec.name) || p.spec.name.is_empty() {
                continue;
            }
            match &p.spec.default {
                Some(d) => {
                    out.insert(p.spec.name.clone(), d.clone());
                }
                None => issues.push(Issue::new(
                    "spec.params",
                    format!(
                        "missing required parameter `{}` (template `{template}`)",
                        p.spec.name
                    ),
                )),
            }
        }
        if issues.is_empty() {
            out.shrink_to_fit();
            Ok(out)
        } else {
            Err(issues)
        }
    }
}

impl CompiledParam {
    /// Checks one value against the parameter's type and constraints.
    pub(crate) fn check(&self, v: &Value) -> Result<(), String> {
        let p = &self.spec;
        let expected = |what: &str| Err(format!("expected {what}, got {}", describe(v)));
        match p.kind {
            ParamType::Fuzzy => {
                if v.is_array() || v.is_object() {
                    return expected("free text (a scalar)");
                }
            }
            ParamType::Boolean => {
                if !v.is_boolean() {
                    return expected("a boolean");
                }
            }
            ParamType::String => {
                let Some(s) = v.as_str() else {
                    return expected("a string");
                };
                if let Some(re) = &self.pattern {
                    if !re.is_match(s) {
                        return Err(format!(
                            "{} does not match pattern `{}`",
                            describe(v),
                            p.pattern.as_deref().unwrap_or_default()
                        ));
                    }
                }
            }
            ParamType::Enum => {
                let ok = v.as_str().is_some_and(|s| p.values.iter().any(|x| x == s));
                if !ok {
                    return Err(format!(
                        "{} is not one of: {}",
                        describe(v),
                        p.values.join(", ")
                    ));
                }
            }
            ParamType::Integer | ParamType::Number => {
                let n = if p.kind == ParamType::Integer {
                    if v.is_i64() || v.is_u64() {
                        v.as_f64()
                    } else {
                        return expected("an integer");
                    }
                } else {
                    v.as_f64()
                };
                let Some(n) = n.filter(|n| n.is_finite()) else {
                    return expected("a number");
                };
                if let Some(min) = p.minimum.filter(|m| n < *m) {
                    return Err(format!("{} is below the minimum {min}", describe(v)));
                }
                if let Some(max) = p.maximum.filter(|m| n > *m) {
                    return Err(format!("{} is above the maximum {max}", describe(v)));
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn param(v: Value) -> ParameterSpec {
        serde_json::from_value(v).unwrap()
    }

    #[test]
    fn checks_types_and_constraints() {
        let (c, issues) = CompiledParams::compile(&[
            param(json!({"name": "s", "pattern": "[a-z]+"})),
            param(
                json!({"name": "i", "type": "integer", "minimum": 1, "maximum": 5, "default": 2}),
            ),
            param(json!({"name": "e", "type": "enum", "enum": ["a", "b"]})),
            param(json!({"name": "f", "type": "fuzzy"})),
        ]);
        assert!(issues.is_empty(), "{issues:?}");
        let given: Params = serde_json::from_value(json!({"s": "abc", "e": "a", "f": 3})).unwrap();
        let out = c.resolve("t", &given).unwrap();
        assert_eq!(out["i"], json!(2));
        for bad in [
            json!({"s": "abc1", "e": "a", "f": 1}),
            json!({"s": "abc", "e": "c", "f": 1}),
            json!({"s": "abc", "e": "a", "f": [1]}),
            json!({"s": "abc", "e": "a", "f": 1, "i": 6}),
            json!({"s": "abc", "e": "a", "f": 1, "i": 1.5}),
            json!({"s": 3, "e": "a", "f": 1}),
            json!({"e": "a", "f": 1}),
        ] {
            let given: Params = serde_json::from_value(bad.clone()).unwrap();
            assert!(c.resolve("t", &given).is_err(), "{bad}");
        }
    }

    #[test]
    fn bad_specs() {
        let (_, issues) = CompiledParams::compile(&[
            param(json!({"name": "s", "pattern": "("})),
            param(json!({"name": "i", "type": "integer", "default": "x"})),
            param(json!({"name": "i", "type": "enum"})),
            param(json!({"name": "b", "type": "boolean", "minimum": 1})),
        ]);
        let fields: Vec<_> = issues.iter().map(|i| i.field.as_str()).collect();
        assert_eq!(
            fields,
            [
                "spec.parameters[0].pattern",
                "spec.parameters[1].default",
                "spec.parameters[2].name",
                "spec.parameters[2].type",
                "spec.parameters[3].minimum"
            ]
        );
    }
}
