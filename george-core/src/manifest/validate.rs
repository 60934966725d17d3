//! The rules each kind must follow on its own (without looking at other files).

use std::collections::{BTreeSet, HashMap, HashSet};

use super::ManifestLimits;
use super::graph::{Reach, find_cycle};
use super::params::{CompiledParams, compile_regex};
use super::parse::Issue;
use crate::model::{AgentSpec, ArgumentCondition, Job, Policy, StepSpec, TaskTemplate};
use crate::template::{check_bounded, referenced_variables};

/// What the index needs of a locally valid template.
#[derive(Debug, Clone, Default)]
pub(crate) struct CompiledTemplate {
    /// The parameters, ready to check jobs.
    pub(crate) params: CompiledParams,
    /// The agents its steps name, sorted and de-duplicated.
    pub(crate) agents: Vec<String>,
    /// Its step ids in order, shared by every job of the template (and their records).
    pub(crate) step_ids: std::sync::Arc<[std::sync::Arc<str>]>,
}

/// The agents a template's steps name, sorted and de-duplicated.
pub(crate) fn agents_of(t: &TaskTemplate) -> Vec<String> {
    let set: BTreeSet<&String> = t
        .spec
        .steps
        .iter()
        .filter_map(|s| s.agent.as_ref())
        .collect();
    set.into_iter().cloned().collect()
}

/// Local rules of an agent spec.
pub(crate) fn validate_agent(a: &AgentSpec) -> Vec<Issue> {
    let mut issues = Vec::new();
    if a.spec.model.trim().is_empty() {
        issues.push(Issue::new("spec.model", "`model` is empty"));
    }
    if a.spec.max_iterations == Some(0) {
        issues.push(Issue::new(
            "spec.max_iterations",
            "`max_iterations` must be at least 1",
        ));
    }
    if a.spec.max_concurrency == Some(0) {
        issues.push(Issue::new(
            "spec.max_concurrency",
            "`max_concurrency` must be at least 1",
        ));
    }
    issues
}

/// Local rules of a policy: at least one rule; rule names non-empty and unique; tool
/// globs non-empty; `applies_to` lists non-empty; target keys non-empty; each argument
/// condition sets something, with scalar `equals` / `one_of`, finite `min` ≤ `max`, a
/// valid `matches` regex, and `absent: true` alone.
pub(crate) fn validate_policy(p: &Policy) -> Vec<Issue> {
    let mut issues = Vec::new();
    let scope = &p.spec.applies_to;
    for (field, list) in [
        ("agents", &scope.agents),
        ("templates", &scope.templates),
        ("steps", &scope.steps),
    ] {
        if list.as_ref().is_some_and(Vec::is_empty) {
            issues.push(Issue::new(
                format!("spec.applies_to.{field}"),
                format!("`{field}` is empty and would match nothing: omit it to match any"),
            ));
        }
    }
    if p.spec.rules.is_empty() {
        issues.push(Issue::new("spec.rules", "a policy needs at least one rule"));
    }
    let mut names: HashMap<&str, usize> = HashMap::new();
    for (i, r) in p.spec.rules.iter().enumerate() {
        let at = |f: &str| format!("spec.rules[{i}]{f}");
        if r.name.trim().is_empty() {
            issues.push(Issue::new(at(".name"), "a rule needs a name"));
        } else if let Some(first) = names.get(r.name.as_str()) {
            issues.push(Issue::new(
                at(".name"),
                format!(
                    "duplicate rule name `{}` (first at spec.rules[{first}])",
                    r.name
                ),
            ));
        } else {
            names.insert(&r.name, i);
        }
        if r.tool.as_ref().is_some_and(|t| t.trim().is_empty()) {
            issues.push(Issue::new(
                at(".tool"),
                "`tool` is empty: omit it to match any tool",
            ));
        }
        if r.target.keys().any(|k| k.is_empty()) {
            issues.push(Issue::new(at(".target"), "a target key is empty"));
        }
        for (arg, cond) in &r.arguments {
            condition_issues(&at(&format!(".arguments.{arg}")), cond, &mut issues);
        }
    }
    issues
}

/// The rules of one argument condition.
fn condition_issues(field: &str, c: &ArgumentCondition, issues: &mut Vec<Issue>) {
    let at = |f: &str| format!("{field}.{f}");
    let others = c.equals.is_some()
        || c.one_of.is_some()
        || c.min.is_some()
        || c.max.is_some()
        || c.matches.is_some();
    match c.absent {
        Some(true) if others => issues.push(Issue::new(
            at("absent"),
            "`absent: true` cannot be combined with other conditions",
        )),
        None if !others => issues.push(Issue::new(
            field,
            "a condition needs one of `equals`, `one_of`, `min`, `max`, `matches` or `absent`",
        )),
        _ => {}
    }
    let scalar = |v: &serde_json::Value| {
        matches!(
            v,
            serde_json::Value::String(_)
                | serde_json::Value::Number(_)
                | serde_json::Value::Bool(_)
        )
    };
    if c.equals.as_ref().is_some_and(|v| !scalar(v)) {
        issues.push(Issue::new(
            at("equals"),
            "`equals` must be a string, a number or a boolean",
        ));
    }
    if let Some(values) = &c.one_of {
        if values.is_empty() {
            issues.push(Issue::new(
                at("one_of"),
                "`one_of` is empty and would match nothing",
            ));
        }
        for (j, v) in values.iter().enumerate() {
            if !scalar(v) {
                issues.push(Issue::new(
                    format!("{field}.one_of[{j}]"),
                    "`one_of` values must be strings, numbers or booleans",
                ));
            }
        }
    }
    for (name, bound) in [("min", c.min), ("max", c.max)] {
        if bound.is_some_and(|b| !b.is_finite()) {
            issues.push(Issue::new(
                at(name),
                format!("`{name}` must be a finite number"),
            ));
        }
    }
    if let (Some(min), Some(max)) = (c.min, c.max) {
        if min > max {
            issues.push(Issue::new(
                at("min"),
                format!("`min` ({min}) is greater than `max` ({max}): nothing would match"),
            ));
        }
    }
    if let Some(re) = &c.matches {
        if let Err(e) = compile_regex(re, true) {
            issues.push(Issue::new(at("matches"), e));
        }
    }
}

/// Local rules of a job (its parameters are checked against its template later).
pub(crate) fn validate_job(j: &Job, limits: &ManifestLimits) -> Vec<Issue> {
    let mut issues = Vec::new();
    if j.spec.params.len() > limits.max_params {
        issues.push(Issue::new(
            "spec.params",
            format!(
                "the job sets {} parameters, over the cap of {} (ManifestLimits::max_params)",
                j.spec.params.len(),
                limits.max_params
            ),
        ));
    }
    if j.spec.template.is_empty() {
        issues.push(Issue::new("spec.template", "`template` is empty"));
    }
    if j.spec.max_parallel_steps == Some(0) {
        issues.push(Issue::new(
            "spec.max_parallel_steps",
            "`max_parallel_steps` must be at least 1",
        ));
    }
    if j.spec.target.keys().any(|k| k.is_empty()) {
        issues.push(Issue::new("spec.target", "a target key is empty"));
    }
    issues
}

/// What a step's templates may refer to.
struct Scope<'a> {
    /// Declared parameter names.
    params: &'a HashSet<&'a str>,
    steps: &'a [StepSpec],
    ids: &'a HashMap<&'a str, usize>,
    /// Which step depends on which.
    reach: &'a Reach<'a>,
    /// The render limits a template must fit with no parameters.
    limits: &'a crate::template::Limits,
    /// The step whose templates are checked.
    step: usize,
}

/// Checks a template's syntax and the variables it reads: `params.<name>` must be a
/// declared parameter, `steps.<id>` a step this one (transitively) depends on.
fn check_template(field: String, source: &str, scope: &Scope<'_>) -> Option<Issue> {
    let vars = match referenced_variables(source) {
        Ok(vars) => vars,
        Err(e) => return Some(Issue::new(field, format!("template error: {e}"))),
    };
    if let Err(e) = check_bounded(source, *scope.limits) {
        return Some(Issue::new(field, format!("template error: {e}")));
    }
    for var in &vars {
        let mut parts = var.split('.');
        match (parts.next(), parts.next()) {
            (Some("params"), Some(name)) if !scope.params.contains(name) => {
                return Some(Issue::new(
                    field,
                    format!(
                        "template uses `params.{name}`, which is not a parameter of this template"
                    ),
                ));
            }
            (Some("steps"), Some(id)) => {
                let message = match scope.ids.get(id) {
                    None => format!("template uses the outputs of unknown step `{id}`"),
                    Some(&d) if !scope.reach.depends(scope.step, d) => {
                        format!(
                            "template uses the outputs of step `{id}`, which is not in this step's (transitive) `depends_on`"
                        )
                    }
                    Some(_) => continue,
                };
                return Some(Issue::new(field, message));
            }
            _ => {}
        }
    }
    None
}

/// Local rules of a template: parameters, step ids, modes, dependencies (unknown,
/// cycles), `execute_approved`, regular expressions, retry policy and template syntax.
/// Returns the compiled template when there is no issue.
pub(crate) fn validate_template(
    t: &TaskTemplate,
    limits: &ManifestLimits,
) -> (Vec<Issue>, Option<CompiledTemplate>) {
    let steps = &t.spec.steps;
    // Over a cap, nothing else is checked: the caps bound validation's work too.
    if steps.len() > limits.max_steps {
        let message = format!(
            "the template has {} steps, over the cap of {} (ManifestLimits::max_steps)",
            steps.len(),
            limits.max_steps
        );
        return (vec![Issue::new("spec.steps", message)], None);
    }
    if t.spec.parameters.len() > limits.max_params {
        let message = format!(
            "the template declares {} parameters, over the cap of {} (ManifestLimits::max_params)",
            t.spec.parameters.len(),
            limits.max_params
        );
        return (vec![Issue::new("spec.parameters", message)], None);
    }
    let (params, mut issues) = CompiledParams::compile(&t.spec.parameters);
    if steps.is_empty() {
        issues.push(Issue::new(
            "spec.steps",
            "a template needs at least one step",
        ));
    }
    if t.spec.target.keys().any(|k| k.is_empty()) {
        issues.push(Issue::new("spec.target", "a target key is empty"));
    }
    if t.spec.concurrency.as_ref().is_some_and(|c| c.limit == 0) {
        issues.push(Issue::new(
            "spec.concurrency.limit",
            "a concurrency `limit` must be at least 1",
        ));
    }
    for (i, s) in steps.iter().enumerate() {
        if s.concurrency.as_ref().is_some_and(|c| c.limit == 0) {
            issues.push(Issue::new(
                format!("spec.steps[{i}].concurrency.limit"),
                "a concurrency `limit` must be at least 1",
            ));
        }
    }
    // Step ids.
    let mut ids: HashMap<&str, usize> = HashMap::with_capacity(steps.len());
    for (i, s) in steps.iter().enumerate() {
        if s.id.is_empty() {
            issues.push(Issue::new(
                format!("spec.steps[{i}].id"),
                "a step needs an id",
            ));
        } else if let Some(first) = ids.get(s.id.as_str()) {
            issues.push(Issue::new(
                format!("spec.steps[{i}].id"),
                format!(
                    "duplicate step id `{}` (first at spec.steps[{first}])",
                    s.id
                ),
            ));
        } else {
            ids.insert(&s.id, i);
        }
        approval_rule_issues(i, &s.approval, &mut issues);
    }
    let names: HashSet<&str> = t.spec.parameters.iter().map(|p| p.name.as_str()).collect();
    let reach = Reach::new(steps, &ids);
    for (i, s) in steps.iter().enumerate() {
        let scope = Scope {
            params: &names,
            steps,
            ids: &ids,
            reach: &reach,
            limits: &limits.template,
            step: i,
        };
        step_rules(i, s, &scope, &mut issues);
    }
    if let Some(issue) = find_cycle(steps, &ids) {
        issues.push(issue);
    }
    if issues.is_empty() {
        (
            issues,
            Some(CompiledTemplate {
                params,
                agents: agents_of(t),
                step_ids: t.spec.steps.iter().map(|s| s.id.as_str().into()).collect(),
            }),
        )
    } else {
        (issues, None)
    }
}

fn step_rules(i: usize, s: &StepSpec, scope: &Scope<'_>, issues: &mut Vec<Issue>) {
    let (steps, ids) = (scope.steps, scope.ids);
    let at = |f: &str| format!("spec.steps[{i}]{f}");
    let modes = [
        s.instructions.is_some(),
        s.command.is_some(),
        s.execute_approved.is_some(),
    ];
    let set = modes.iter().filter(|m| **m).count();
    if set != 1 {
        let what = if set == 0 { "none" } else { "several" };
        issues.push(Issue::new(
            at(""),
            format!(
                "step `{}` must set exactly one of `instructions`, `command` or `execute_approved` (it sets {what})",
                s.id
            ),
        ));
    }
    if let Some(text) = &s.instructions {
        if s.agent.is_none() {
            issues.push(Issue::new(
                at(".agent"),
                format!(
                    "step `{}` has `instructions` but no `agent` to run them",
                    s.id
                ),
            ));
        }
        issues.extend(check_template(at(".instructions"), text, scope));
    }
    if let Some(cmd) = &s.command {
        if cmd.program.trim().is_empty() {
            issues.push(Issue::new(at(".command.program"), "`program` is empty"));
        }
        for (j, arg) in cmd.args.iter().enumerate() {
            issues.extend(check_template(
                at(&format!(".command.args[{j}]")),
                arg,
                scope,
            ));
        }
    }
    for (j, dep) in s.depends_on.iter().enumerate() {
        if !ids.contains_key(dep.as_str()) {
            issues.push(Issue::new(
                at(&format!(".depends_on[{j}]")),
                format!("step `{}` depends on unknown step `{dep}`", s.id),
            ));
        }
    }
    if let Some(target) = &s.execute_approved {
        let field = at(".execute_approved");
        match ids.get(target.as_str()) {
            None => issues.push(Issue::new(
                field,
                format!("`execute_approved` names unknown step `{target}`"),
            )),
            Some(&t) => {
                if !scope.reach.depends(i, t) {
                    issues.push(Issue::new(
                        field,
                        format!(
                            "step `{}` executes the approved plan of `{target}` but does not depend on it (add it to `depends_on`)",
                            s.id
                        ),
                    ));
                } else if !steps[t].approval.required {
                    issues.push(Issue::new(
                        field,
                        format!(
                            "step `{target}` has no `approval: required`: there is no approved plan to execute"
                        ),
                    ));
                }
            }
        }
    }
    if let Some(re) = s.done_when.as_ref().and_then(|d| d.output_matches.as_ref()) {
        if let Err(e) = compile_regex(re, false) {
            issues.push(Issue::new(at(".done_when.output_matches"), e));
        }
    }
    if s.retry.attempts == 0 {
        issues.push(Issue::new(
            at(".retry.attempts"),
            "`attempts` must be at least 1",
        ));
    }
    if s.timeout_ms == Some(0) {
        issues.push(Issue::new(
            at(".timeout_ms"),
            "`timeout_ms` must be above 0",
        ));
    }
}

/// The fields of an approval rule: `approvers` entries are `user:<id>` or
/// `group:<name>`, `min_approvals` is at least 1, and a rule with approvers or several
/// approvals is a required one.
fn approval_rule_issues(i: usize, rule: &crate::model::ApprovalRule, issues: &mut Vec<Issue>) {
    for (j, a) in rule.approvers.iter().enumerate() {
        let ok = match a.split_once(':') {
            Some(("user" | "group", rest)) => !rest.trim().is_empty(),
            _ => false,
        };
        if !ok {
            issues.push(Issue::new(
                format!("spec.steps[{i}].approval.approvers[{j}]"),
                format!("`{a}` must be `user:<id>` or `group:<name>`"),
            ));
        }
    }
    if rule.min_approvals == 0 {
        issues.push(Issue::new(
            format!("spec.steps[{i}].approval.min_approvals"),
            "`min_approvals` must be at least 1",
        ));
    }
    if !rule.required
        && (!rule.approvers.is_empty() || rule.min_approvals > 1 || rule.forbid_self_approval)
    {
        issues.push(Issue::new(
            format!("spec.steps[{i}].approval.required"),
            "approvers, min_approvals and forbid_self_approval need `required: true`",
        ));
    }
}
