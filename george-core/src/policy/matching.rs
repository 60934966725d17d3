//! Whether one rule matches one planned action: the tool glob, the job's target and
//! the argument conditions. Pure; regular expressions are compiled by the caller's
//! [`Regexes`] cache.

use std::collections::HashMap;

use regex::Regex;
use serde_json::Value;

use super::PlanContext;
use crate::model::{AppliesTo, ArgumentCondition, PolicyRule};

/// Compiled `matches` expressions of one evaluation, by source.
#[derive(Debug, Default)]
pub(super) struct Regexes(HashMap<String, Result<Regex, String>>);

impl Regexes {
    /// The anchored expression of `pattern` (the whole value must match), or why it
    /// does not compile.
    fn get(&mut self, pattern: &str) -> Result<&Regex, String> {
        if !self.0.contains_key(pattern) {
            let compiled = regex::RegexBuilder::new(&format!("^(?:{pattern})$"))
                .size_limit(1 << 20)
                .build()
                .map_err(|e| format!("invalid regular expression `{pattern}`: {e}"));
            self.0.insert(pattern.to_string(), compiled);
        }
        match &self.0[pattern] {
            Ok(re) => Ok(re),
            Err(e) => Err(e.clone()),
        }
    }
}

/// Whether a policy's `applies_to` covers the plan's agent, template and step.
pub(super) fn applies(scope: &AppliesTo, ctx: &PlanContext<'_>) -> bool {
    let covers = |list: &Option<Vec<String>>, name: &str| {
        list.as_ref().is_none_or(|l| l.iter().any(|n| n == name))
    };
    covers(&scope.agents, ctx.agent)
        && covers(&scope.templates, ctx.template)
        && covers(&scope.steps, ctx.step)
}

/// Whether `name` matches the tool glob `pattern`, where `*` stands for any run of
/// characters (possibly empty) and every other character for itself.
///
/// ```
/// use george_core::policy::glob_matches;
/// assert!(glob_matches("k8s_*", "k8s_scale"));
/// assert!(glob_matches("*_delete", "k8s_delete"));
/// assert!(!glob_matches("k8s_*", "git_commit"));
/// assert!(glob_matches("k8s_scale", "k8s_scale"));
/// ```
pub fn glob_matches(pattern: &str, name: &str) -> bool {
    let Some((first, rest)) = pattern.split_once('*') else {
        return pattern == name;
    };
    let Some(mut remaining) = name.strip_prefix(first) else {
        return false;
    };
    let mut parts: Vec<&str> = rest.split('*').collect();
    let last = parts.pop().unwrap_or("");
    for part in parts {
        match remaining.find(part) {
            Some(i) => remaining = &remaining[i + part.len()..],
            None => return false,
        }
    }
    remaining.len() >= last.len() && remaining.ends_with(last)
}

/// Whether `rule` matches the action `(tool, arguments)` in `ctx`: `Err` when it has a
/// condition that cannot be evaluated (an invalid regular expression).
pub(super) fn rule_matches(
    rule: &PolicyRule,
    ctx: &PlanContext<'_>,
    tool: &str,
    arguments: &Value,
    regexes: &mut Regexes,
) -> Result<bool, String> {
    if rule.tool.as_deref().is_some_and(|p| !glob_matches(p, tool)) {
        return Ok(false);
    }
    if rule
        .target
        .iter()
        .any(|(k, v)| ctx.target.get(k) != Some(v))
    {
        return Ok(false);
    }
    for (name, cond) in &rule.arguments {
        if !condition_holds(cond, arguments.get(name), regexes)? {
            return Ok(false);
        }
    }
    Ok(true)
}

/// A number, or a string that parses as a finite one.
fn as_number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse::<f64>().ok().filter(|f| f.is_finite()),
        _ => None,
    }
}

/// Scalar equality: numbers (on either side) compare as numbers, a numeric string
/// standing for its number; strings and booleans compare exactly; arrays and objects
/// equal nothing.
pub(super) fn scalar_eq(expected: &Value, actual: &Value) -> bool {
    match (expected, actual) {
        (Value::Number(_), _) | (_, Value::Number(_)) => {
            matches!((as_number(expected), as_number(actual)), (Some(e), Some(a)) if e == a)
        }
        (Value::String(e), Value::String(a)) => e == a,
        (Value::Bool(e), Value::Bool(a)) => e == a,
        _ => false,
    }
}

/// The text a `matches` expression sees: strings as they are, numbers and booleans as
/// their JSON text; nothing for arrays, objects and null.
fn as_text(v: &Value) -> Option<std::borrow::Cow<'_, str>> {
    match v {
        Value::String(s) => Some(s.as_str().into()),
        Value::Number(n) => Some(n.to_string().into()),
        Value::Bool(b) => Some(b.to_string().into()),
        _ => None,
    }
}

/// Whether every part of `cond` holds for the argument's value (`None`: absent).
fn condition_holds(
    cond: &ArgumentCondition,
    value: Option<&Value>,
    regexes: &mut Regexes,
) -> Result<bool, String> {
    if let Some(absent) = cond.absent {
        if absent != value.is_none() {
            return Ok(false);
        }
    }
    let constrained = cond.equals.is_some()
        || cond.one_of.is_some()
        || cond.min.is_some()
        || cond.max.is_some()
        || cond.matches.is_some();
    if !constrained {
        return Ok(true);
    }
    let Some(value) = value else {
        return Ok(false);
    };
    if cond.equals.as_ref().is_some_and(|e| !scalar_eq(e, value)) {
        return Ok(false);
    }
    if cond
        .one_of
        .as_ref()
        .is_some_and(|vs| !vs.iter().any(|e| scalar_eq(e, value)))
    {
        return Ok(false);
    }
    if cond.min.is_some() || cond.max.is_some() {
        let Some(n) = as_number(value) else {
            return Ok(false);
        };
        if cond.min.is_some_and(|min| n < min) || cond.max.is_some_and(|max| n > max) {
            return Ok(false);
        }
    }
    if let Some(pattern) = &cond.matches {
        let re = regexes.get(pattern)?;
        if !as_text(value).is_some_and(|t| re.is_match(&t)) {
            return Ok(false);
        }
    }
    Ok(true)
}
