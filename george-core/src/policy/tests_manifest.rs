//! `kind: Policy` files: loading, validation errors (file, line, field), incremental
//! updates, and [`decide_plan`] over a loaded set.

use serde_json::json;

use super::*;
use crate::git::SourceFile;
use crate::manifest::{ManifestError, json_schema};
use crate::model::{Autonomy, Kind};
use crate::state::PlannedAction;

const POLICY: &str = r#"apiVersion: george.dev/v1alpha1
kind: Policy
metadata:
  name: staging-ops
spec:
  description: Scaling in staging needs nobody.
  applies_to:
    agents: [sysadmin]
    templates: [fix-service]
    steps: [fix]
  rules:
    - name: scale-staging
      effect: allow
      tool: k8s_scale
      target: {namespace: staging}
      arguments:
        namespace: {equals: staging}
        replicas: {max: 5}
        name: {matches: "web-[0-9]+"}
    - name: no-deletes
      effect: deny
      tool: "k8s_delete*"
"#;

const AGENT: &str = "apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata: {name: sysadmin}
spec: {model: m, system_prompt: s, autonomy: autonomous}
";

const TEMPLATE: &str = "apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata: {name: fix-service}
spec:
  autonomy: autonomous
  steps:
    - {id: fix, agent: sysadmin, instructions: fix it, approval: required}
    - {id: careful, agent: sysadmin, instructions: fix it, approval: required, autonomy: manual}
";

const JOB: &str = "apiVersion: george.dev/v1alpha1
kind: Job
metadata: {name: j}
spec: {template: fix-service}
";

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_string(),
        bytes: text.as_bytes().to_vec(),
    }
}

fn load(files: &[(&str, &str)]) -> ManifestSet {
    ManifestSet::load(files.iter().map(|(p, t)| file(p, t)).collect())
}

fn line_of(text: &str, needle: &str) -> usize {
    text.lines()
        .position(|l| l.contains(needle))
        .map(|i| i + 1)
        .unwrap_or_else(|| panic!("{needle:?} not in text"))
}

fn replace(text: &str, from: &str, to: &str) -> String {
    assert!(text.contains(from), "{from:?} not in text");
    text.replacen(from, to, 1)
}

fn show(errors: &[ManifestError]) -> String {
    errors
        .iter()
        .map(ToString::to_string)
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn the_example_policy_loads() {
    let set = load(&[("policies/staging-ops.yaml", POLICY)]);
    assert!(set.errors.is_empty(), "{}", show(&set.errors));
    let p = &set.policies["staging-ops"];
    assert_eq!(p.path, "policies/staging-ops.yaml");
    let rules = &p.value.spec.rules;
    assert_eq!(rules.len(), 2);
    assert_eq!(rules[0].effect, crate::model::Effect::Allow);
    assert_eq!(rules[0].arguments["replicas"].max, Some(5.0));
    assert_eq!(rules[0].target["namespace"], "staging");
    assert_eq!(rules[1].tool.as_deref(), Some("k8s_delete*"));
    assert_eq!(
        p.value.spec.applies_to.steps.as_deref(),
        Some(&["fix".to_string()][..])
    );
    assert!(set.invalid_policy_paths.is_empty());
    assert!(crate::git::is_manifest_path("policies/a/b.yml"));
    assert!(!crate::git::is_manifest_path("policies/readme.md"));
    let schema = json_schema(Kind::Policy);
    assert!(schema["properties"]["spec"].is_object(), "{schema}");
    assert_eq!(Kind::parse("Policy"), Some(Kind::Policy));
    assert_eq!(Kind::Policy.as_str(), "Policy");
}

#[test]
fn table_of_validation_errors() {
    let path = "policies/staging-ops.yaml";
    // (replace this, with this, the line holding this (in the new text), field, message)
    let rows: &[(&str, &str, &str, &str, &str)] = &[
        (
            "effect: allow",
            "effect: permit",
            "effect: permit",
            "spec.rules[0].effect",
            "unknown variant `permit`",
        ),
        (
            "name: no-deletes",
            "name: scale-staging # again",
            "# again",
            "spec.rules[1].name",
            "duplicate rule name `scale-staging` (first at spec.rules[0])",
        ),
        (
            "web-[0-9]+",
            "web-(",
            "web-(",
            "spec.rules[0].arguments.name.matches",
            "invalid regular expression `web-(`",
        ),
        (
            "{max: 5}",
            "{min: 6, max: 5}",
            "replicas:",
            "spec.rules[0].arguments.replicas.min",
            "`min` (6) is greater than `max` (5)",
        ),
        (
            "{max: 5}",
            "{maxx: 5}",
            "replicas:",
            "spec.rules[0].arguments.replicas.maxx",
            "unknown field `maxx`, expected one of equals, one_of, min, max, matches, absent",
        ),
        (
            "{max: 5}",
            "{max: lots}",
            "replicas:",
            "spec.rules[0].arguments.replicas.max",
            "invalid floating point",
        ),
        (
            "{max: 5}",
            "{}",
            "replicas:",
            "spec.rules[0].arguments.replicas",
            "a condition needs one of",
        ),
        (
            "{max: 5}",
            "{absent: true, max: 5}",
            "replicas:",
            "spec.rules[0].arguments.replicas.absent",
            "`absent: true` cannot be combined",
        ),
        (
            "{equals: staging}",
            "{equals: [staging]}",
            "namespace: {equals",
            "spec.rules[0].arguments.namespace.equals",
            "must be a string, a number or a boolean",
        ),
        (
            "{equals: staging}",
            "{one_of: []}",
            "namespace: {one_of",
            "spec.rules[0].arguments.namespace.one_of",
            "`one_of` is empty",
        ),
        (
            "{equals: staging}",
            "{one_of: [a, {b: 1}]}",
            "namespace: {one_of",
            "spec.rules[0].arguments.namespace.one_of[1]",
            "`one_of` values must be",
        ),
        (
            "agents: [sysadmin]",
            "agents: []",
            "agents: []",
            "spec.applies_to.agents",
            "`agents` is empty and would match nothing",
        ),
        (
            "    steps: [fix]\n",
            "    steps: [fix]\n    jobs: [x]\n",
            "jobs: [x]",
            "spec.applies_to.jobs",
            "unknown field `jobs`",
        ),
        (
            "tool: k8s_scale",
            "tool: ''",
            "tool: ''",
            "spec.rules[0].tool",
            "`tool` is empty",
        ),
        (
            "- name: scale-staging\n      effect: allow",
            "- effect: allow",
            "- effect: allow",
            "spec.rules[0].name",
            "missing field `name`",
        ),
        (
            "- name: scale-staging\n      effect: allow",
            "- name: ''\n      effect: allow",
            "name: ''",
            "spec.rules[0].name",
            "a rule needs a name",
        ),
        (
            "target: {namespace: staging}",
            "target: {namespace: [staging]}",
            "target:",
            "spec.rules[0].target.namespace",
            "expected string scalar",
        ),
        (
            "name: staging-ops",
            "name: Staging",
            "name: Staging",
            "metadata.name",
            "invalid name",
        ),
        (
            "george.dev/v1alpha1",
            "george.dev/v2",
            "apiVersion",
            "apiVersion",
            "unsupported apiVersion",
        ),
    ];
    let mut failures = Vec::new();
    for (i, (from, to, at, field, message)) in rows.iter().enumerate() {
        let text = replace(POLICY, from, to);
        let line = line_of(&text, at);
        // A valid policy beside it keeps loading.
        let other = replace(POLICY, "name: staging-ops", "name: other");
        let set = load(&[(path, &text), ("policies/other.yaml", &other)]);
        let found = set.errors.iter().any(|e| {
            e.path == path && e.line == line && e.field == *field && e.message.contains(message)
        });
        if !found {
            failures.push(format!(
                "row {i}: no {path}:{line}: {field}: …{message}… in\n{}",
                show(&set.errors)
            ));
        }
        if set.policies.contains_key("staging-ops") || !set.policies.contains_key("other") {
            failures.push(format!("row {i}: policies {:?}", set.policies.keys()));
        }
        if !set.invalid_policy_paths.contains(path) || set.invalid_policy_paths.len() != 1 {
            failures.push(format!("row {i}: invalid {:?}", set.invalid_policy_paths));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn empty_rules_missing_rules_and_unreadable_files() {
    let set = load(&[
        (
            "policies/a.yaml",
            "apiVersion: george.dev/v1alpha1\nkind: Policy\nmetadata: {name: a}\nspec:\n  rules: []\n",
        ),
        (
            "policies/b.yaml",
            "apiVersion: george.dev/v1alpha1\nkind: Policy\nmetadata: {name: b}\nspec:\n  description: x\n",
        ),
        (
            "policies/c.yaml",
            "metadata: {name: c}\nspec: {rules: []}\n",
        ),
        ("policies/d.yaml", "kind: Policy\nspec: [\n"),
        ("policies/notes.txt", "not a manifest"),
    ]);
    let err = |path: &str| {
        set.errors
            .iter()
            .find(|e| e.path == path)
            .map(ToString::to_string)
            .unwrap_or_else(|| panic!("no error for {path}: {}", show(&set.errors)))
    };
    assert_eq!(
        err("policies/a.yaml"),
        "policies/a.yaml:5:3: spec.rules: a policy needs at least one rule"
    );
    assert_eq!(
        err("policies/b.yaml"),
        "policies/b.yaml:4:1: spec.rules: missing field `rules`"
    );
    assert!(
        err("policies/c.yaml").contains("missing `kind`"),
        "{}",
        err("policies/c.yaml")
    );
    assert!(err("policies/d.yaml").starts_with("policies/d.yaml:"));
    assert!(set.policies.is_empty());
    let invalid: Vec<&str> = set
        .invalid_policy_paths
        .iter()
        .map(String::as_str)
        .collect();
    assert_eq!(
        invalid,
        [
            "policies/a.yaml",
            "policies/b.yaml",
            "policies/c.yaml",
            "policies/d.yaml"
        ]
    );
}

#[test]
fn duplicate_policy_names_keep_the_first() {
    let set = load(&[("policies/b.yaml", POLICY), ("policies/a.yaml", POLICY)]);
    assert_eq!(set.policies["staging-ops"].path, "policies/a.yaml");
    assert_eq!(set.errors.len(), 1, "{}", show(&set.errors));
    assert_eq!(
        set.errors[0].to_string(),
        "policies/b.yaml:4:9: metadata.name: duplicate Policy name `staging-ops`: already defined in policies/a.yaml"
    );
    assert_eq!(
        set.invalid_policy_paths.iter().collect::<Vec<_>>(),
        ["policies/b.yaml"]
    );
}

#[test]
fn updates_are_incremental_and_equal_a_fresh_load() {
    let base = [
        ("agent-specs/sysadmin.yaml", AGENT),
        ("task-templates/fix-service.yaml", TEMPLATE),
        ("jobs/j.yaml", JOB),
        ("policies/staging-ops.yaml", POLICY),
    ];
    let mut set = load(&base);
    assert!(set.errors.is_empty(), "{}", show(&set.errors));
    assert!(set.jobs.contains_key("j"));

    // A changed policy changes no job's desired state.
    let edited = replace(POLICY, "{max: 5}", "{max: 7}");
    let changed = set.update(vec![file("policies/staging-ops.yaml", &edited)], &[]);
    assert!(changed.is_empty(), "{changed:?}");
    assert_eq!(
        set.policies["staging-ops"].value.spec.rules[0].arguments["replicas"].max,
        Some(7.0)
    );

    // Broken: gone from the valid ones, its path listed, its error reported.
    let broken = replace(POLICY, "effect: deny", "effect: refuse");
    let changed = set.update(vec![file("policies/staging-ops.yaml", &broken)], &[]);
    assert!(changed.is_empty());
    assert!(set.policies.is_empty());
    assert_eq!(set.errors.len(), 1, "{}", show(&set.errors));
    assert_eq!(set.errors[0].field, "spec.rules[1].effect");
    assert_eq!(set.errors[0].line, line_of(&broken, "effect: refuse"));
    assert!(
        set.invalid_policy_paths
            .contains("policies/staging-ops.yaml")
    );
    let fresh = load(&[
        base[0],
        base[1],
        base[2],
        ("policies/staging-ops.yaml", &broken),
    ]);
    assert_eq!(set.errors, fresh.errors);
    assert_eq!(set.invalid_policy_paths, fresh.invalid_policy_paths);

    // Valid again under another name, beside a second file.
    let renamed = replace(POLICY, "name: staging-ops", "name: renamed");
    set.update(
        vec![
            file("policies/staging-ops.yaml", &renamed),
            file("policies/second.yaml", POLICY),
        ],
        &[],
    );
    assert!(set.errors.is_empty(), "{}", show(&set.errors));
    let mut names: Vec<&String> = set.policies.keys().collect();
    names.sort();
    assert_eq!(names, ["renamed", "staging-ops"]);
    assert!(set.invalid_policy_paths.is_empty());

    // Removed.
    let changed = set.update(
        vec![],
        &[
            "policies/staging-ops.yaml".to_string(),
            "policies/second.yaml".to_string(),
        ],
    );
    assert!(changed.is_empty());
    assert!(set.policies.is_empty());
    assert!(set.errors.is_empty());

    // An invalid file removed takes its path out of the invalid ones.
    set.update(vec![file("policies/x.yaml", "kind: Policy\n")], &[]);
    assert!(set.invalid_policy_paths.contains("policies/x.yaml"));
    set.update(vec![], &["policies/x.yaml".to_string()]);
    assert!(set.invalid_policy_paths.is_empty());
    assert!(set.errors.is_empty());
}

#[test]
fn autonomy_levels_parse_and_unknown_ones_are_errors() {
    let set = load(&[
        ("agent-specs/sysadmin.yaml", AGENT),
        ("task-templates/fix-service.yaml", TEMPLATE),
    ]);
    assert!(set.errors.is_empty(), "{}", show(&set.errors));
    assert_eq!(
        set.agents["sysadmin"].value.spec.autonomy,
        Autonomy::Autonomous
    );
    let t = &set.templates["fix-service"].value.spec;
    assert_eq!(t.autonomy, Some(Autonomy::Autonomous));
    assert_eq!(t.steps[0].autonomy, None);
    assert_eq!(t.steps[1].autonomy, Some(Autonomy::Manual));

    let bad = replace(TEMPLATE, "autonomy: manual", "autonomy: full");
    let set = load(&[
        ("agent-specs/sysadmin.yaml", AGENT),
        ("task-templates/fix-service.yaml", &bad),
    ]);
    let e = &set.errors[0];
    assert_eq!(e.path, "task-templates/fix-service.yaml");
    assert_eq!(e.line, line_of(&bad, "autonomy: full"));
    assert_eq!(e.field, "spec.steps[1].autonomy");
    assert!(e.message.contains("unknown variant `full`"), "{e}");
}

fn scale(replicas: u32, name: &str) -> Plan {
    Plan {
        summary: "scale".into(),
        actions: vec![PlannedAction {
            tool: "k8s_scale".into(),
            arguments: json!({"namespace": "staging", "replicas": replicas, "name": name}),
        }],
    }
}

#[test]
fn table_of_plan_decisions_from_a_manifest_set() {
    let set = load(&[
        ("agent-specs/sysadmin.yaml", AGENT),
        ("task-templates/fix-service.yaml", TEMPLATE),
        ("policies/staging-ops.yaml", POLICY),
    ]);
    assert!(set.errors.is_empty(), "{}", show(&set.errors));
    let staging = BTreeMap::from([("namespace".to_string(), "staging".to_string())]);
    let delete = Plan {
        summary: "delete".into(),
        actions: vec![PlannedAction {
            tool: "k8s_delete_pod".into(),
            arguments: json!({}),
        }],
    };
    use Autonomy::*;
    // (step, plan, ceiling, effective autonomy, verdict)
    let rows: Vec<(&str, Plan, Autonomy, Autonomy, &str)> = vec![
        ("fix", scale(3, "web-1"), Autonomous, Autonomous, "allow"),
        ("fix", scale(3, "web-1"), Supervised, Supervised, "allow"),
        // The operator's ceiling wins over every manifest.
        ("fix", scale(3, "web-1"), Manual, Manual, "manual"),
        ("fix", delete.clone(), Manual, Manual, "deny"),
        ("fix", scale(6, "web-1"), Autonomous, Autonomous, "none"),
        ("fix", scale(3, "db-1"), Autonomous, Autonomous, "none"),
        ("fix", delete.clone(), Autonomous, Autonomous, "deny"),
        // The step's own level is the lowest; the policy does not apply to it anyway.
        ("careful", scale(3, "web-1"), Autonomous, Manual, "none"),
    ];
    for (step, plan, ceiling, autonomy, expected) in rows {
        let ctx = PlanContext::new("sysadmin", "fix-service", step).with_target(&staging);
        let d = decide_plan(&set, &ctx, &plan, ceiling);
        let got = match &d.verdict {
            Verdict::AutoApprove { .. } => "allow",
            Verdict::Deny { .. } => "deny",
            Verdict::AskHuman {
                reason: AskReason::Manual { .. },
            } => "manual",
            Verdict::AskHuman {
                reason: AskReason::NoRule { .. },
            } => "none",
            Verdict::AskHuman { .. } => "ask",
        };
        assert_eq!(
            (d.autonomy, got),
            (autonomy, expected),
            "{step} {plan:?} under {ceiling:?}"
        );
    }
    // Declared levels: the agent's, the template's and the step's.
    let ctx = PlanContext::new("sysadmin", "fix-service", "careful");
    assert_eq!(
        declared_autonomy(&set, &ctx),
        [Some(Autonomous), Some(Autonomous), Some(Manual)]
    );
    let ctx = PlanContext::new("nobody", "nothing", "none");
    assert_eq!(declared_autonomy(&set, &ctx), [None, None, None]);
}

#[test]
fn an_invalid_policy_suspends_auto_approval_but_not_denials() {
    let broken = "apiVersion: george.dev/v1alpha1\nkind: Policy\nmetadata: {name: zz}\nspec:\n  rules:\n    - {name: r, effect: forbid}\n";
    let set = load(&[
        ("agent-specs/sysadmin.yaml", AGENT),
        ("task-templates/fix-service.yaml", TEMPLATE),
        ("policies/staging-ops.yaml", POLICY),
        ("policies/zz.yaml", broken),
    ]);
    assert_eq!(set.errors.len(), 1, "{}", show(&set.errors));
    let staging = BTreeMap::from([("namespace".to_string(), "staging".to_string())]);
    let ctx = PlanContext::new("sysadmin", "fix-service", "fix").with_target(&staging);
    let d = decide_plan(&set, &ctx, &scale(3, "web-1"), Autonomy::Autonomous);
    assert_eq!(
        d.verdict,
        Verdict::AskHuman {
            reason: AskReason::InvalidPolicies {
                paths: vec!["policies/zz.yaml".into()]
            }
        }
    );
    let delete = Plan {
        summary: "d".into(),
        actions: vec![PlannedAction {
            tool: "k8s_delete".into(),
            arguments: json!({}),
        }],
    };
    let d = decide_plan(&set, &ctx, &delete, Autonomy::Autonomous);
    assert!(matches!(d.verdict, Verdict::Deny { .. }), "{d:?}");
    assert_eq!(d.verdict.actor().as_deref(), Some("policy:staging-ops"));
}
