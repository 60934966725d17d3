//! Table tests of rule matching, precedence, scope, autonomy and the ceiling.

use std::collections::BTreeMap;

use serde_json::{Value, json};

use super::matching::{Regexes, rule_matches};
use super::*;
use crate::model::{Autonomy, PolicyRule};
use crate::state::PlannedAction;

/// A policy named `name` whose `spec` is the YAML flow mapping `spec`.
fn pol(name: &str, spec: &str) -> Policy {
    let text = format!(
        "apiVersion: george.dev/v1alpha1\nkind: Policy\nmetadata: {{name: {name}}}\nspec: {spec}\n"
    );
    serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("{text}: {e}"))
}

/// A planned action: tool and arguments.
type Action<'a> = (&'a str, Value);

/// A job's target.
type Target = BTreeMap<String, String>;

fn target(pairs: &[(&str, &str)]) -> Target {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn plan(actions: &[Action<'_>]) -> Plan {
    Plan {
        summary: "s".into(),
        actions: actions
            .iter()
            .map(|(tool, arguments)| PlannedAction {
                tool: tool.to_string(),
                arguments: arguments.clone(),
            })
            .collect(),
    }
}

fn rule_ref(policy: &str, rule: &str) -> RuleRef {
    RuleRef {
        policy: policy.into(),
        rule: rule.into(),
    }
}

#[test]
fn table_of_rule_matches() {
    let staging = target(&[("namespace", "staging")]);
    let prod = target(&[("namespace", "prod")]);
    let none = target(&[]);
    // (rule, tool, arguments, target, matches)
    #[rustfmt::skip]
    let rows: Vec<(&str, &str, Value, &Target, bool)> = vec![
        // Tools: exact names and globs.
        ("{tool: k8s_scale}", "k8s_scale", json!({}), &none, true),
        ("{tool: k8s_scale}", "k8s_scale2", json!({}), &none, false),
        ("{tool: k8s_scale}", "k8s_scal", json!({}), &none, false),
        ("{tool: 'k8s_*'}", "k8s_scale", json!({}), &none, true),
        ("{tool: 'k8s_*'}", "k8s_", json!({}), &none, true),
        ("{tool: 'k8s_*'}", "git_commit", json!({}), &none, false),
        ("{tool: '*_delete'}", "k8s_delete", json!({}), &none, true),
        ("{tool: '*_delete'}", "k8s_delete_pod", json!({}), &none, false),
        ("{tool: 'k8s_*_pod'}", "k8s_delete_pod", json!({}), &none, true),
        ("{tool: 'k8s_*_pod'}", "k8s_pod", json!({}), &none, false),
        ("{tool: 'a*a'}", "a", json!({}), &none, false),
        ("{tool: '*'}", "anything", json!({}), &none, true),
        ("{}", "anything", json!({}), &none, true),
        // Targets: every key, exact values.
        ("{target: {namespace: staging}}", "t", json!({}), &staging, true),
        ("{target: {namespace: staging}}", "t", json!({}), &prod, false),
        ("{target: {namespace: staging}}", "t", json!({}), &none, false),
        ("{target: {namespace: Staging}}", "t", json!({}), &staging, false),
        ("{target: {namespace: staging, cluster: a}}", "t", json!({}), &staging, false),
        ("{}", "t", json!({}), &prod, true),
        // equals: strings exact, numbers as numbers (numeric strings too), booleans exact.
        ("{arguments: {ns: {equals: staging}}}", "t", json!({"ns": "staging"}), &none, true),
        ("{arguments: {ns: {equals: staging}}}", "t", json!({"ns": "Staging"}), &none, false),
        ("{arguments: {ns: {equals: staging}}}", "t", json!({}), &none, false),
        ("{arguments: {ns: {equals: staging}}}", "t", json!({"ns": null}), &none, false),
        ("{arguments: {n: {equals: 3}}}", "t", json!({"n": 3}), &none, true),
        ("{arguments: {n: {equals: 3}}}", "t", json!({"n": 3.0}), &none, true),
        ("{arguments: {n: {equals: 3}}}", "t", json!({"n": "3"}), &none, true),
        ("{arguments: {n: {equals: 3}}}", "t", json!({"n": "3.5"}), &none, false),
        ("{arguments: {n: {equals: 3}}}", "t", json!({"n": "three"}), &none, false),
        ("{arguments: {n: {equals: 2.5}}}", "t", json!({"n": 2.5}), &none, true),
        ("{arguments: {n: {equals: '3'}}}", "t", json!({"n": 3}), &none, true),
        ("{arguments: {f: {equals: true}}}", "t", json!({"f": true}), &none, true),
        ("{arguments: {f: {equals: true}}}", "t", json!({"f": false}), &none, false),
        ("{arguments: {f: {equals: true}}}", "t", json!({"f": "true"}), &none, false),
        // one_of.
        ("{arguments: {ns: {one_of: [staging, dev]}}}", "t", json!({"ns": "dev"}), &none, true),
        ("{arguments: {ns: {one_of: [staging, dev]}}}", "t", json!({"ns": "prod"}), &none, false),
        ("{arguments: {n: {one_of: [1, 2]}}}", "t", json!({"n": "2"}), &none, true),
        ("{arguments: {n: {one_of: [1, 2]}}}", "t", json!({"n": 3}), &none, false),
        // min / max, inclusive; numbers as strings or floats.
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": 5}), &none, true),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": 6}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": 4.5}), &none, true),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": 5.01}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": "5"}), &none, true),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": "6"}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": "1e1"}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": "abc"}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": "NaN"}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": "-inf"}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": true}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": [1]}), &none, false),
        ("{arguments: {r: {max: 5}}}", "t", json!({"r": {"v": 1}}), &none, false),
        ("{arguments: {r: {min: 1, max: 5}}}", "t", json!({"r": 0}), &none, false),
        ("{arguments: {r: {min: 1, max: 5}}}", "t", json!({"r": 1}), &none, true),
        ("{arguments: {r: {min: -2.5}}}", "t", json!({"r": -2.5}), &none, true),
        ("{arguments: {r: {min: -2.5}}}", "t", json!({"r": -3}), &none, false),
        // matches: anchored; numbers and booleans as their JSON text.
        ("{arguments: {n: {matches: 'web-.*'}}}", "t", json!({"n": "web-1"}), &none, true),
        ("{arguments: {n: {matches: 'web-.*'}}}", "t", json!({"n": "xweb-1"}), &none, false),
        ("{arguments: {n: {matches: 'web'}}}", "t", json!({"n": "web-1"}), &none, false),
        ("{arguments: {n: {matches: '[0-9]+'}}}", "t", json!({"n": 42}), &none, true),
        ("{arguments: {n: {matches: 'true|false'}}}", "t", json!({"n": true}), &none, true),
        ("{arguments: {n: {matches: '.*'}}}", "t", json!({"n": ["a"]}), &none, false),
        ("{arguments: {n: {matches: '.*'}}}", "t", json!({}), &none, false),
        // absent.
        ("{arguments: {force: {absent: true}}}", "t", json!({}), &none, true),
        ("{arguments: {force: {absent: true}}}", "t", json!({"force": false}), &none, false),
        ("{arguments: {force: {absent: true}}}", "t", json!({"force": null}), &none, false),
        ("{arguments: {force: {absent: false}}}", "t", json!({"force": {"a": 1}}), &none, true),
        ("{arguments: {force: {absent: false}}}", "t", json!({}), &none, false),
        ("{arguments: {r: {absent: false, max: 2}}}", "t", json!({"r": 3}), &none, false),
        // Nested values are not looked into: conditions speak about top-level keys.
        ("{arguments: {ns: {equals: staging}}}", "t", json!({"meta": {"ns": "staging"}}), &none, false),
        ("{arguments: {ns: {equals: staging}}}", "t", json!({"ns": ["staging"]}), &none, false),
        ("{arguments: {ns: {equals: staging}}}", "t", json!({"ns": {"equals": "staging"}}), &none, false),
        // Arguments that are not an object have no keys.
        ("{arguments: {ns: {equals: staging}}}", "t", json!("staging"), &none, false),
        ("{arguments: {ns: {absent: true}}}", "t", json!(null), &none, true),
        // Every part must hold.
        ("{tool: k8s_scale, target: {namespace: staging}, arguments: {namespace: {equals: staging}, replicas: {max: 5}}}", "k8s_scale", json!({"namespace": "staging", "replicas": 5, "extra": [1]}), &staging, true),
        ("{tool: k8s_scale, target: {namespace: staging}, arguments: {namespace: {equals: staging}, replicas: {max: 5}}}", "k8s_scale", json!({"namespace": "prod", "replicas": 5}), &staging, false),
        ("{tool: k8s_scale, target: {namespace: staging}, arguments: {namespace: {equals: staging}, replicas: {max: 5}}}", "k8s_scale", json!({"namespace": "staging", "replicas": 5}), &prod, false),
        ("{arguments: {n: {equals: web-1, matches: 'web-[0-9]', one_of: [web-1, web-2]}}}", "t", json!({"n": "web-1"}), &none, true),
    ];
    let mut failures = Vec::new();
    for (i, (rule, tool, args, target, expected)) in rows.iter().enumerate() {
        let mut text = format!("{{name: r, effect: allow, {}", &rule[1..]);
        if rule == &"{}" {
            text = "{name: r, effect: allow}".to_string();
        }
        let rule: PolicyRule =
            serde_saphyr::from_str(&text).unwrap_or_else(|e| panic!("row {i}: {text}: {e}"));
        let ctx = PlanContext::new("a", "t", "s").with_target(target);
        let got = rule_matches(&rule, &ctx, tool, args, &mut Regexes::default());
        if got != Ok(*expected) {
            failures.push(format!("row {i}: {text} on {tool} {args} → {got:?}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

/// The short form of a verdict, for tables.
fn short(v: &Verdict) -> String {
    match v {
        Verdict::Deny {
            policy,
            rule,
            action_index,
        } => format!("deny {policy}/{rule} @{action_index}"),
        Verdict::AutoApprove { matches, .. } => format!(
            "allow {}",
            matches
                .iter()
                .map(|m| format!("{}/{}", m.policy, m.rule))
                .collect::<Vec<_>>()
                .join(" ")
        ),
        Verdict::AskHuman { reason } => match reason {
            AskReason::EmptyPlan => "ask empty".into(),
            AskReason::NoRule { action_index, tool } => format!("ask none @{action_index} {tool}"),
            AskReason::AskRule { action_index, rule } => {
                format!("ask {}/{} @{action_index}", rule.policy, rule.rule)
            }
            AskReason::BrokenRule {
                action_index, rule, ..
            } => format!("ask broken {}/{} @{action_index}", rule.policy, rule.rule),
            AskReason::Manual { would_approve } => {
                format!("ask manual {}/{}", would_approve.policy, would_approve.rule)
            }
            AskReason::InvalidPolicies { paths } => format!("ask invalid {}", paths.join(",")),
        },
    }
}

#[test]
fn table_of_precedence_over_plans() {
    let policies = [
        pol(
            "z-ops",
            "{rules: [{name: scale, effect: allow, tool: k8s_scale}, \
             {name: get, effect: allow, tool: k8s_get}, \
             {name: any-k8s, effect: allow, tool: 'k8s_*'}, \
             {name: big, effect: ask, tool: k8s_scale, arguments: {replicas: {min: 10}}}]}",
        ),
        pol(
            "b-deny",
            "{rules: [{name: no-delete, effect: deny, tool: k8s_delete}]}",
        ),
        pol(
            "c-prod",
            "{rules: [{name: prod, effect: ask, target: {namespace: prod}}]}",
        ),
        pol(
            "a-first",
            "{rules: [{name: get-too, effect: allow, tool: k8s_get}]}",
        ),
    ];
    let staging = target(&[("namespace", "staging")]);
    let prod = target(&[("namespace", "prod")]);
    let r = |n: u32| json!({"replicas": n});
    #[rustfmt::skip]
    let rows: Vec<(Vec<Action>, &Target, &str)> = vec![
        (vec![("k8s_scale", r(3))], &staging, "allow z-ops/scale"),
        (vec![("k8s_get", json!({}))], &staging, "allow a-first/get-too"),
        (vec![("k8s_patch", json!({}))], &staging, "allow z-ops/any-k8s"),
        // An ask rule wins over allow rules, in the same policy or another.
        (vec![("k8s_scale", r(10))], &staging, "ask z-ops/big @0"),
        (vec![("k8s_scale", r(3))], &prod, "ask c-prod/prod @0"),
        // Deny wins over allow and ask.
        (vec![("k8s_delete", json!({}))], &staging, "deny b-deny/no-delete @0"),
        (vec![("k8s_delete", json!({}))], &prod, "deny b-deny/no-delete @0"),
        // No rule: a human.
        (vec![("git_commit", json!({}))], &staging, "ask none @0 git_commit"),
        (vec![], &staging, "ask empty"),
        // Multi-action plans: the first action not allowed decides; any denial wins.
        (vec![("k8s_scale", r(3)), ("k8s_get", json!({}))], &staging, "allow z-ops/scale a-first/get-too"),
        (vec![("k8s_scale", r(3)), ("git_commit", json!({})), ("k8s_scale", r(50))], &staging, "ask none @1 git_commit"),
        (vec![("k8s_scale", r(50)), ("git_commit", json!({}))], &staging, "ask z-ops/big @0"),
        (vec![("git_commit", json!({})), ("k8s_scale", r(3)), ("k8s_delete", json!({}))], &staging, "deny b-deny/no-delete @2"),
        (vec![("k8s_scale", r(3)), ("k8s_delete", json!({})), ("k8s_delete", json!({}))], &prod, "deny b-deny/no-delete @1"),
    ];
    let mut failures = Vec::new();
    for (i, (actions, target, expected)) in rows.iter().enumerate() {
        let ctx = PlanContext::new("a", "t", "s").with_target(target);
        let got = short(&evaluate(&policies, &ctx, &plan(actions)));
        // The order policies are given in does not matter.
        let reversed = short(&evaluate(policies.iter().rev(), &ctx, &plan(actions)));
        if got != *expected || reversed != *expected {
            failures.push(format!("row {i}: {got} / {reversed}, expected {expected}"));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn auto_approval_names_the_policy_rule_and_actor() {
    let p = pol(
        "staging-ops",
        "{rules: [{name: scale, effect: allow, tool: k8s_scale}]}",
    );
    let v = evaluate(
        [&p],
        &PlanContext::new("a", "t", "s"),
        &plan(&[("k8s_scale", json!({}))]),
    );
    assert_eq!(
        v,
        Verdict::AutoApprove {
            policy: "staging-ops".into(),
            rule: "scale".into(),
            matches: vec![rule_ref("staging-ops", "scale")],
        }
    );
    assert_eq!(v.actor().as_deref(), Some("policy:staging-ops"));
    assert!(v.is_auto_approved());
    assert_eq!(
        rule_ref("staging-ops", "scale").to_string(),
        "policy:staging-ops/scale"
    );
    let ask = evaluate([&p], &PlanContext::new("a", "t", "s"), &plan(&[]));
    assert_eq!(ask.actor(), None);
    assert_eq!(
        ask,
        Verdict::AskHuman {
            reason: AskReason::EmptyPlan
        }
    );
    // A policy given twice changes nothing; no policy at all asks.
    let v2 = evaluate(
        [&p, &p],
        &PlanContext::new("a", "t", "s"),
        &plan(&[("k8s_scale", json!({}))]),
    );
    assert_eq!(v2, v);
    let none: [&Policy; 0] = [];
    assert_eq!(
        short(&evaluate(
            none,
            &PlanContext::new("a", "t", "s"),
            &plan(&[("x", json!({}))])
        )),
        "ask none @0 x"
    );
}

#[test]
fn table_of_applies_to() {
    let p = pol(
        "scoped",
        "{applies_to: {agents: [sysadmin, oncall], templates: [fix-service], steps: [fix]}, \
         rules: [{name: all, effect: allow}]}",
    );
    let only_steps = pol(
        "steps-only",
        "{applies_to: {steps: [check]}, rules: [{name: all, effect: allow}]}",
    );
    // (agent, template, step, expected)
    let rows = [
        ("sysadmin", "fix-service", "fix", "allow scoped/all"),
        ("oncall", "fix-service", "fix", "allow scoped/all"),
        ("coder", "fix-service", "fix", "ask none @0 t"),
        ("sysadmin", "other", "fix", "ask none @0 t"),
        ("sysadmin", "fix-service", "plan", "ask none @0 t"),
        ("anyone", "any-template", "check", "allow steps-only/all"),
        ("anyone", "any-template", "checks", "ask none @0 t"),
    ];
    for (agent, template, step, expected) in rows {
        let ctx = PlanContext::new(agent, template, step);
        let got = short(&evaluate(
            [&p, &only_steps],
            &ctx,
            &plan(&[("t", json!({}))]),
        ));
        assert_eq!(got, expected, "{agent} {template} {step}");
    }
    // A deny in a policy that does not apply does not deny.
    let deny = pol(
        "deny-coder",
        "{applies_to: {agents: [coder]}, rules: [{name: d, effect: deny}]}",
    );
    let ctx = PlanContext::new("sysadmin", "fix-service", "fix");
    assert_eq!(
        short(&evaluate([&p, &deny], &ctx, &plan(&[("t", json!({}))]))),
        "allow scoped/all"
    );
    let ctx = PlanContext::new("coder", "fix-service", "fix");
    assert_eq!(
        short(&evaluate([&p, &deny], &ctx, &plan(&[("t", json!({}))]))),
        "deny deny-coder/d @0"
    );
}

#[test]
fn rules_that_cannot_be_evaluated_never_approve() {
    // Only possible for a policy that skipped validation: an invalid regex.
    let broken = |effect: &str| {
        pol(
            "broken",
            &format!(
                "{{rules: [{{name: r, effect: {effect}, arguments: {{n: {{matches: '('}}}}}}]}}"
            ),
        )
    };
    let allow = pol("ok", "{rules: [{name: all, effect: allow}]}");
    let deny = pol("no", "{rules: [{name: never, effect: deny, tool: rm}]}");
    let ctx = PlanContext::new("a", "t", "s");
    let p = plan(&[("t", json!({"n": "x"}))]);
    assert_eq!(
        short(&evaluate([&broken("deny"), &allow], &ctx, &p)),
        "ask broken broken/r @0"
    );
    assert_eq!(
        short(&evaluate([&broken("ask"), &allow], &ctx, &p)),
        "ask broken broken/r @0"
    );
    // A broken allow rule allows nothing, and stops nothing else.
    assert_eq!(
        short(&evaluate([&broken("allow")], &ctx, &p)),
        "ask none @0 t"
    );
    assert_eq!(
        short(&evaluate([&broken("allow"), &allow], &ctx, &p)),
        "allow ok/all"
    );
    // A valid denial still wins.
    let p = plan(&[("rm", json!({"n": "x"}))]);
    assert_eq!(
        short(&evaluate([&broken("deny"), &deny], &ctx, &p)),
        "deny no/never @0"
    );
    let Verdict::AskHuman {
        reason: reason @ AskReason::BrokenRule { .. },
    } = evaluate([&broken("deny")], &ctx, &plan(&[("t", json!({"n": "x"}))]))
    else {
        panic!("not broken")
    };
    assert!(
        reason.to_string().contains("invalid regular expression"),
        "{reason}"
    );
}

#[test]
fn table_of_effective_autonomy() {
    use Autonomy::*;
    // (agent, template, step, ceiling, effective)
    let rows = [
        (None, None, None, Autonomous, Supervised),
        (None, None, None, Manual, Manual),
        (Some(Autonomous), None, None, Autonomous, Autonomous),
        (
            Some(Autonomous),
            Some(Autonomous),
            Some(Autonomous),
            Autonomous,
            Autonomous,
        ),
        (
            Some(Autonomous),
            Some(Autonomous),
            Some(Autonomous),
            Supervised,
            Supervised,
        ),
        (
            Some(Autonomous),
            Some(Autonomous),
            Some(Autonomous),
            Manual,
            Manual,
        ),
        (
            Some(Autonomous),
            Some(Supervised),
            None,
            Autonomous,
            Supervised,
        ),
        (Some(Supervised), None, Some(Manual), Autonomous, Manual),
        (None, Some(Manual), Some(Autonomous), Autonomous, Manual),
        (Some(Manual), None, None, Autonomous, Manual),
        (None, None, Some(Autonomous), Supervised, Supervised),
        (
            Some(Supervised),
            Some(Supervised),
            Some(Supervised),
            Autonomous,
            Supervised,
        ),
    ];
    for (a, t, s, ceiling, expected) in rows {
        assert_eq!(
            effective_autonomy([a, t, s], ceiling),
            expected,
            "{a:?} {t:?} {s:?} under {ceiling:?}"
        );
    }
    assert_eq!(Manual.rank(), 0);
    assert_eq!(Supervised.rank(), 1);
    assert_eq!(Autonomous.rank(), 2);
    let mut levels = vec![Autonomous, Manual, Supervised];
    levels.sort();
    assert_eq!(levels, vec![Manual, Supervised, Autonomous]);
}

#[test]
fn table_of_decisions_by_autonomy() {
    use Autonomy::*;
    let deny = Verdict::Deny {
        policy: "p".into(),
        rule: "d".into(),
        action_index: 0,
    };
    let approve = Verdict::AutoApprove {
        policy: "p".into(),
        rule: "a".into(),
        matches: vec![rule_ref("p", "a")],
    };
    let ask = Verdict::AskHuman {
        reason: AskReason::EmptyPlan,
    };
    let rows = [
        (Manual, &deny, "deny p/d @0"),
        (Manual, &approve, "ask manual p/a"),
        (Manual, &ask, "ask empty"),
        (Supervised, &deny, "deny p/d @0"),
        (Supervised, &approve, "allow p/a"),
        (Supervised, &ask, "ask empty"),
        (Autonomous, &deny, "deny p/d @0"),
        (Autonomous, &approve, "allow p/a"),
        (Autonomous, &ask, "ask empty"),
    ];
    for (level, verdict, expected) in rows {
        assert_eq!(
            short(&decide(level, verdict.clone())),
            expected,
            "{level:?}"
        );
    }
}

#[test]
fn policies_sharing_a_name_all_count() {
    // Only possible outside a `ManifestSet` (which refuses duplicate names).
    let allow = pol("same", "{rules: [{name: a, effect: allow}]}");
    let deny = pol("same", "{rules: [{name: d, effect: deny, tool: rm}]}");
    let ctx = PlanContext::new("a", "t", "s");
    for policies in [[&allow, &deny], [&deny, &allow]] {
        assert_eq!(
            short(&evaluate(policies, &ctx, &plan(&[("rm", json!({}))]))),
            "deny same/d @0"
        );
        assert_eq!(
            short(&evaluate(policies, &ctx, &plan(&[("ls", json!({}))]))),
            "allow same/a"
        );
    }
}
