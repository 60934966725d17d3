//! Manifest loading and validation: every error names the file, the line and the field.

use george_core::git::SourceFile;
use george_core::manifest::{ManifestError, ManifestSet, json_schema};
use george_core::model::Kind;
use serde_json::json;

const AGENT: &str = "\
apiVersion: george.dev/v1alpha1
kind: AgentSpec
metadata:
  name: ops
spec:
  model: gpt-4.1
  system_prompt: You operate services.
  tools: [kubectl]
";

const TEMPLATE: &str = r#"apiVersion: george.dev/v1alpha1
kind: TaskTemplate
metadata:
  name: scale
spec:
  parameters:
    - name: service
      pattern: "[a-z][a-z0-9-]*"
    - name: replicas
      type: integer
      minimum: 1
      maximum: 50
      default: 2
    - name: env
      type: enum
      enum: [staging, production]
    - name: why
      type: fuzzy
      default: no reason given
  steps:
    - id: investigate
      agent: ops
      instructions: "Look at {{ params.service }} in {{ params.env }}"
    - id: plan
      agent: ops
      depends_on: [investigate]
      approval: required
      instructions: "Scale to {{ steps.investigate.outputs.replicas }}"
    - id: apply
      depends_on: [plan]
      execute_approved: plan
    - id: check
      depends_on: [apply]
      command:
        program: kubectl
        args: ["rollout", "status", "deploy/{{ params.service }}"]
      done_when:
        output_matches: "successfully rolled out"
"#;

const JOB: &str = "\
apiVersion: george.dev/v1alpha1
kind: Job
metadata:
  name: scale-api
spec:
  template: scale
  params:
    service: api
    env: production
    replicas: 4
";

fn file(path: &str, text: &str) -> SourceFile {
    SourceFile {
        path: path.to_string(),
        bytes: text.as_bytes().to_vec(),
    }
}

/// The base fixture with some files replaced (or added).
fn load_with(overrides: &[(&str, &str)]) -> ManifestSet {
    let mut files = vec![
        ("agent-specs/ops.yaml", AGENT),
        ("task-templates/scale.yaml", TEMPLATE),
        ("jobs/scale-api.yaml", JOB),
    ];
    for (path, text) in overrides {
        files.retain(|(p, _)| p != path);
        files.push((path, text));
    }
    ManifestSet::load(files.into_iter().map(|(p, t)| file(p, t)).collect())
}

/// 1-based line of the first line containing `needle`.
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

/// Asserts that `set` has an error in `path` at `line` on `field` whose message contains
/// `needle`, and returns it.
#[track_caller]
fn assert_error<'a>(
    set: &'a ManifestSet,
    path: &str,
    line: usize,
    field: &str,
    needle: &str,
) -> &'a ManifestError {
    set.errors
        .iter()
        .find(|e| {
            e.path == path && e.line == line && e.field == field && e.message.contains(needle)
        })
        .unwrap_or_else(|| {
            panic!(
                "no error {path}:{line}: {field}: …{needle}… in:\n{}",
                set.errors
                    .iter()
                    .map(|e| e.to_string())
                    .collect::<Vec<_>>()
                    .join("\n")
            )
        })
}

#[test]
fn the_fixture_is_valid_and_defaults_are_applied() {
    let set = load_with(&[]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    assert_eq!(set.agents.len(), 1);
    assert_eq!(set.templates.len(), 1);
    let job = &set.jobs["scale-api"];
    assert_eq!(&*job.path, "jobs/scale-api.yaml");
    assert_eq!(job.template.metadata.name, "scale");
    assert_eq!(job.params["replicas"], json!(4));
    assert_eq!(job.params["why"], json!("no reason given"));
    assert!(set.invalid_job_paths.is_empty() && set.invalid_job_names.is_empty());
}

#[test]
fn non_manifest_paths_are_ignored() {
    let set = load_with(&[("README.md", "# not yaml: ["), ("jobs/notes.txt", "[")]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
}

#[test]
fn yaml_syntax_error_has_its_line_and_column() {
    let text = replace(JOB, "    replicas: 4\n", "    replicas: [4\n");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    let e = &set.errors[0];
    assert_eq!(e.path, "jobs/scale-api.yaml");
    assert_eq!((e.line, e.column), (10, 15));
    assert!(e.message.contains("bracket"), "{e}");
    assert!(set.invalid_job_paths.contains("jobs/scale-api.yaml"));
    // The name was still read: the reconciler keeps the job's last good state.
    assert!(set.invalid_job_names.contains("scale-api"));
    assert!(set.jobs.is_empty());

    let broken = "apiVersion: george.dev/v1alpha1\nkind: Job\nmetadata:\n  name: x\n bad: indent\n";
    let set = load_with(&[("jobs/x.yaml", broken)]);
    let e = set.errors.iter().find(|e| e.path == "jobs/x.yaml").unwrap();
    assert_eq!(e.line, 5, "{e}");
    assert_eq!(set.errors.len(), 1);
}

#[test]
fn unknown_kind_and_wrong_api_version() {
    let text = replace(JOB, "kind: Job", "kind: Jobb");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    let e = assert_error(
        &set,
        "jobs/scale-api.yaml",
        2,
        "kind",
        "unknown kind `Jobb`",
    );
    assert_eq!(e.column, 7);
    assert!(set.invalid_job_names.contains("scale-api"));

    let text = replace(AGENT, "george.dev/v1alpha1", "george.dev/v2");
    let set = load_with(&[("agent-specs/ops.yaml", &text)]);
    assert_error(
        &set,
        "agent-specs/ops.yaml",
        1,
        "apiVersion",
        "george.dev/v1alpha1",
    );
    // The invalid agent invalidates the template naming it, and its job.
    assert_error(
        &set,
        "task-templates/scale.yaml",
        line_of(TEMPLATE, "agent: ops"),
        "spec.steps[0].agent",
        "agent `ops` is invalid",
    );
    assert_error(
        &set,
        "jobs/scale-api.yaml",
        6,
        "spec.template",
        "template `scale` is invalid",
    );

    let set = load_with(&[(
        "jobs/k.yaml",
        "apiVersion: george.dev/v1alpha1\nmetadata: {name: k}\n",
    )]);
    assert_error(&set, "jobs/k.yaml", 1, "kind", "missing `kind`");
    assert!(set.invalid_job_paths.contains("jobs/k.yaml"));
}

#[test]
fn names_missing_invalid_and_duplicate() {
    let text = replace(JOB, "  name: scale-api\n", "  labels: {team: x}\n");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    assert_error(
        &set,
        "jobs/scale-api.yaml",
        3,
        "metadata.name",
        "missing field `name`",
    );
    assert!(set.invalid_job_paths.contains("jobs/scale-api.yaml"));
    assert!(set.invalid_job_names.is_empty());

    let text = replace(JOB, "name: scale-api", "name: Scale_API");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    let e = assert_error(
        &set,
        "jobs/scale-api.yaml",
        4,
        "metadata.name",
        "invalid name `Scale_API`",
    );
    assert_eq!(e.column, 9);
    let long = format!("name: {}", "a".repeat(254));
    let text = replace(JOB, "name: scale-api", &long);
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    assert_error(&set, "jobs/scale-api.yaml", 4, "metadata.name", "253");

    let set = load_with(&[("jobs/copy.yaml", JOB)]);
    let e = assert_error(
        &set,
        "jobs/scale-api.yaml",
        4,
        "metadata.name",
        "duplicate Job name",
    );
    assert!(e.message.contains("jobs/copy.yaml"), "{e}");
    // The first file (in path order) keeps the name.
    assert_eq!(set.jobs["scale-api"].path.as_ref(), "jobs/copy.yaml");
    assert_eq!(set.errors.len(), 1);

    let set = load_with(&[("task-templates/again.yaml", TEMPLATE)]);
    let e = assert_error(
        &set,
        "task-templates/scale.yaml",
        4,
        "metadata.name",
        "duplicate TaskTemplate",
    );
    assert!(e.message.contains("task-templates/again.yaml"));
    assert!(set.jobs.contains_key("scale-api"));
}

#[test]
fn unknown_fields_and_wrong_types_have_their_path() {
    let text = replace(
        TEMPLATE,
        "      depends_on: [investigate]",
        "      dependson: [investigate]",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    let e = assert_error(
        &set,
        "task-templates/scale.yaml",
        line_of(&text, "dependson"),
        "spec.steps[1].dependson",
        "unknown field `dependson`",
    );
    assert_eq!(e.column, 7);
    // Its job is invalid too, but the set is otherwise fine.
    assert_error(
        &set,
        "jobs/scale-api.yaml",
        6,
        "spec.template",
        "template `scale` is invalid",
    );
    assert!(set.invalid_job_names.contains("scale-api"));

    let text = replace(
        TEMPLATE,
        "      approval: required\n",
        "      approval: required\n      retry: {attempts: many}\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        line_of(&text, "attempts: many"),
        "spec.steps[1].retry.attempts",
        "",
    );

    let text = replace(
        JOB,
        "  template: scale\n",
        "  template: scale\n  on_removal: forget\n",
    );
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    assert_error(&set, "jobs/scale-api.yaml", 7, "spec.on_removal", "");

    let text = replace(AGENT, "  model: gpt-4.1\n", "");
    let set = load_with(&[("agent-specs/ops.yaml", &text)]);
    assert_error(
        &set,
        "agent-specs/ops.yaml",
        5,
        "spec.model",
        "missing field `model`",
    );
}

#[test]
fn job_naming_an_unknown_template() {
    let text = replace(JOB, "template: scale", "template: scael");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    let e = assert_error(
        &set,
        "jobs/scale-api.yaml",
        6,
        "spec.template",
        "unknown template `scael`",
    );
    assert_eq!(e.column, 13);
    assert_eq!(
        e.to_string(),
        "jobs/scale-api.yaml:6:13: spec.template: unknown template `scael`"
    );
}

#[test]
fn missing_and_unknown_parameters() {
    let text = replace(JOB, "    service: api\n", "");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    assert_error(
        &set,
        "jobs/scale-api.yaml",
        7,
        "spec.params",
        "missing required parameter `service`",
    );
    assert!(set.invalid_job_names.contains("scale-api"));

    let text = replace(
        JOB,
        "    replicas: 4\n",
        "    replicas: 4\n    colour: red\n",
    );
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    assert_error(
        &set,
        "jobs/scale-api.yaml",
        11,
        "spec.params.colour",
        "unknown parameter `colour`",
    );
}

#[test]
fn strict_parameters_are_checked_fuzzy_ones_are_not() {
    let cases = [
        (
            "    replicas: 4\n",
            "    replicas: four\n",
            "spec.params.replicas",
            "expected an integer",
        ),
        (
            "    replicas: 4\n",
            "    replicas: 2.5\n",
            "spec.params.replicas",
            "expected an integer",
        ),
        (
            "    replicas: 4\n",
            "    replicas: 99\n",
            "spec.params.replicas",
            "above the maximum",
        ),
        (
            "    replicas: 4\n",
            "    replicas: 0\n",
            "spec.params.replicas",
            "below the minimum",
        ),
        (
            "    env: production\n",
            "    env: prod\n",
            "spec.params.env",
            "not one of: staging, production",
        ),
        (
            "    service: api\n",
            "    service: API!\n",
            "spec.params.service",
            "does not match pattern",
        ),
        (
            "    service: api\n",
            "    service: 42\n",
            "spec.params.service",
            "expected a string",
        ),
    ];
    for (from, to, field, needle) in cases {
        let text = replace(JOB, from, to);
        let line = line_of(&text, to.trim());
        let set = load_with(&[("jobs/scale-api.yaml", &text)]);
        assert_error(&set, "jobs/scale-api.yaml", line, field, needle);
        assert!(set.jobs.is_empty());
    }
    for why in [
        "42",
        "true",
        "\"anything at all: {{ not a template }}\"",
        "1.5",
    ] {
        let text = format!("{JOB}    why: {why}\n");
        let set = load_with(&[("jobs/scale-api.yaml", &text)]);
        assert!(set.errors.is_empty(), "{why}: {:?}", set.errors);
    }
    let text = format!("{JOB}    why: [a, b]\n");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    assert_error(&set, "jobs/scale-api.yaml", 11, "spec.params.why", "scalar");
}

#[test]
fn bad_parameter_specs_are_template_errors() {
    let text = replace(TEMPLATE, "      default: 2\n", "      default: 0\n");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        13,
        "spec.parameters[1].default",
        "below the minimum",
    );
    assert!(set.templates.is_empty());
    assert_error(
        &set,
        "jobs/scale-api.yaml",
        6,
        "spec.template",
        "template `scale` is invalid",
    );
    assert!(set.invalid_job_names.contains("scale-api"));

    let text = replace(
        TEMPLATE,
        r#"pattern: "[a-z][a-z0-9-]*""#,
        r#"pattern: "([a-z""#,
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    let e = assert_error(
        &set,
        "task-templates/scale.yaml",
        8,
        "spec.parameters[0].pattern",
        "invalid regular expression",
    );
    assert_eq!(e.column, 16);
}

#[test]
fn dependencies_unknown_cyclic_and_duplicate_ids() {
    let text = replace(TEMPLATE, "depends_on: [apply]", "depends_on: [aply]");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        33,
        "spec.steps[3].depends_on[0]",
        "unknown step `aply`",
    );

    let text = replace(
        TEMPLATE,
        "      agent: ops\n      instructions: \"Look",
        "      agent: ops\n      depends_on: [check]\n      instructions: \"Look",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    let e = set
        .errors
        .iter()
        .find(|e| e.message.contains("cycle"))
        .expect("a cycle error");
    assert_eq!(e.path, "task-templates/scale.yaml");
    for step in ["investigate", "plan", "apply", "check"] {
        assert!(e.message.contains(step), "{e}");
    }
    assert!(e.field.ends_with(".depends_on"), "{e}");
    assert_eq!(e.line, line_of(&text, "depends_on:"));

    let text = replace(TEMPLATE, "id: check", "id: plan");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        32,
        "spec.steps[3].id",
        "duplicate step id `plan`",
    );
}

#[test]
fn step_naming_an_unknown_agent() {
    let text = replace(
        TEMPLATE,
        "      agent: ops\n      depends_on",
        "      agent: dev\n      depends_on",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    let e = assert_error(
        &set,
        "task-templates/scale.yaml",
        25,
        "spec.steps[1].agent",
        "unknown agent `dev`",
    );
    assert_eq!(e.column, 14);
    assert_eq!(set.errors.len(), 2, "{:?}", set.errors); // and the job's "template is invalid"
}

#[test]
fn template_syntax_errors_point_at_the_field() {
    let text = replace(TEMPLATE, "{{ params.env }}", "{{ params.env ");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    let e = assert_error(
        &set,
        "task-templates/scale.yaml",
        23,
        "spec.steps[0].instructions",
        "syntax error",
    );
    assert!(e.message.contains("template line 1"), "{e}");

    let block = replace(
        TEMPLATE,
        "      instructions: \"Scale to {{ steps.investigate.outputs.replicas }}\"\n",
        "      instructions: |\n        Scale to {{ steps.investigate.outputs.replicas }}.\n        {% if %}\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &block)]);
    let e = assert_error(
        &set,
        "task-templates/scale.yaml",
        28,
        "spec.steps[1].instructions",
        "template line 2",
    );
    assert!(e.message.contains("syntax"), "{e}");

    let text = replace(TEMPLATE, "deploy/{{ params.service }}", "deploy/{% for %}");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        36,
        "spec.steps[3].command.args[2]",
        "syntax error",
    );
}

#[test]
fn step_modes_execute_approved_regexes_and_retries() {
    // Neither instructions, command nor execute_approved.
    let text = replace(TEMPLATE, "      execute_approved: plan\n", "");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        29,
        "spec.steps[2]",
        "exactly one of",
    );
    // Two of them.
    let text = replace(
        TEMPLATE,
        "      execute_approved: plan\n",
        "      execute_approved: plan\n      instructions: hi\n      agent: ops\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        29,
        "spec.steps[2]",
        "it sets several",
    );
    // Instructions without an agent.
    let text = replace(
        TEMPLATE,
        "      agent: ops\n      instructions: \"Look",
        "      instructions: \"Look",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        21,
        "spec.steps[0].agent",
        "no `agent`",
    );
    // execute_approved: unknown, not a dependency, no approval required.
    let text = replace(TEMPLATE, "execute_approved: plan", "execute_approved: plna");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        31,
        "spec.steps[2].execute_approved",
        "unknown step `plna`",
    );
    let text = replace(
        TEMPLATE,
        "      depends_on: [plan]\n",
        "      depends_on: [investigate]\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        31,
        "spec.steps[2].execute_approved",
        "does not depend on it",
    );
    let text = replace(TEMPLATE, "      approval: required\n", "");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        30,
        "spec.steps[2].execute_approved",
        "approval: required",
    );
    // A transitive dependency is enough.
    let text = replace(
        TEMPLATE,
        "      depends_on: [apply]\n      command:",
        "      depends_on: [apply]\n      execute_approved: plan\n      command:",
    );
    let text = replace(
        &text,
        "      command:\n        program: kubectl\n        args: [\"rollout\", \"status\", \"deploy/{{ params.service }}\"]\n      done_when:\n        output_matches: \"successfully rolled out\"\n",
        "",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    // Bad regex; zero attempts.
    let text = replace(
        TEMPLATE,
        "output_matches: \"successfully rolled out\"",
        "output_matches: \"(unclosed\"",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        38,
        "spec.steps[3].done_when.output_matches",
        "invalid regular expression",
    );
    let text = replace(
        TEMPLATE,
        "      approval: required\n",
        "      approval: required\n      retry:\n        attempts: 0\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        29,
        "spec.steps[1].retry.attempts",
        "at least 1",
    );
}

#[test]
fn one_invalid_job_does_not_stop_the_others() {
    let other = replace(JOB, "name: scale-api", "name: scale-web");
    let other = replace(&other, "service: api", "service: web");
    let broken = replace(JOB, "name: scale-api", "name: scale-db");
    let broken = replace(&broken, "replicas: 4", "replicas: lots");
    let set = load_with(&[("jobs/web.yaml", &other), ("jobs/db.yaml", &broken)]);
    assert_eq!(set.jobs.len(), 2);
    assert!(set.jobs.contains_key("scale-web") && set.jobs.contains_key("scale-api"));
    assert_eq!(
        set.invalid_job_paths.iter().collect::<Vec<_>>(),
        ["jobs/db.yaml"]
    );
    assert_eq!(
        set.invalid_job_names.iter().collect::<Vec<_>>(),
        ["scale-db"]
    );
    assert_eq!(set.errors.len(), 1);
}

#[test]
fn multiple_documents_are_refused_clearly() {
    let text = format!("{JOB}---\n{JOB}");
    let set = load_with(&[("jobs/scale-api.yaml", &text)]);
    let e = &set.errors[0];
    assert_eq!(e.line, 12, "{e}");
    assert!(e.message.contains("exactly one YAML document"), "{e}");
}

#[test]
fn hash_follows_the_files_of_the_job_its_template_and_agents() {
    let base = load_with(&[]).jobs["scale-api"].hash;
    assert_eq!(load_with(&[]).jobs["scale-api"].hash, base);
    let agent = format!("{AGENT}  max_iterations: 5\n");
    assert_ne!(
        load_with(&[("agent-specs/ops.yaml", &agent)]).jobs["scale-api"].hash,
        base
    );
    let template = format!("{TEMPLATE}  description: scales\n");
    assert_ne!(
        load_with(&[("task-templates/scale.yaml", &template)]).jobs["scale-api"].hash,
        base
    );
    let job = format!("{JOB}    why: load\n");
    assert_ne!(
        load_with(&[("jobs/scale-api.yaml", &job)]).jobs["scale-api"].hash,
        base
    );
    // Unrelated files do not matter.
    let other_agent = replace(AGENT, "name: ops", "name: other");
    let other_job = replace(JOB, "name: scale-api", "name: scale-web");
    let set = load_with(&[
        ("agent-specs/other.yaml", &other_agent),
        ("jobs/web.yaml", &other_job),
    ]);
    assert_eq!(set.jobs["scale-api"].hash, base);
}

#[test]
fn update_is_incremental_and_reports_changed_jobs() {
    let mut set = load_with(&[]);
    let web = replace(JOB, "name: scale-api", "name: scale-web");
    // Add a job.
    let changed = set.update(vec![file("jobs/web.yaml", &web)], &[]);
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["scale-web"]);
    // The same bytes again: nothing changed.
    assert!(
        set.update(vec![file("jobs/web.yaml", &web)], &[])
            .is_empty()
    );
    // Break it: it becomes invalid, its error appears.
    let broken = replace(&web, "replicas: 4", "replicas: 400");
    let changed = set.update(vec![file("jobs/web.yaml", &broken)], &[]);
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["scale-web"]);
    assert!(set.invalid_job_names.contains("scale-web"));
    assert_eq!(set.errors.len(), 1);
    assert_eq!(set.errors_of("jobs/web.yaml").len(), 1);
    // Fix it: valid again, the stale error is gone.
    let changed = set.update(vec![file("jobs/web.yaml", &web)], &[]);
    assert_eq!(changed.len(), 1);
    assert!(
        set.errors.is_empty()
            && set.invalid_job_names.is_empty()
            && set.invalid_job_paths.is_empty()
    );
    // A template change re-validates (only) its jobs.
    let template = format!("{TEMPLATE}  description: scales\n");
    let changed = set.update(vec![file("task-templates/scale.yaml", &template)], &[]);
    assert_eq!(
        changed.into_iter().collect::<Vec<_>>(),
        ["scale-api", "scale-web"]
    );
    // An agent change too.
    let agent = format!("{AGENT}  max_iterations: 5\n");
    let changed = set.update(vec![file("agent-specs/ops.yaml", &agent)], &[]);
    assert_eq!(changed.len(), 2);
    // Removing the agent invalidates the template and both jobs.
    let changed = set.update(vec![], &["agent-specs/ops.yaml".to_string()]);
    assert_eq!(changed.len(), 2);
    assert!(set.jobs.is_empty() && set.templates.is_empty());
    assert_eq!(set.invalid_job_names.len(), 2);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        22,
        "spec.steps[0].agent",
        "unknown agent `ops`",
    );
    // Restoring it brings everything back.
    let changed = set.update(vec![file("agent-specs/ops.yaml", AGENT)], &[]);
    assert_eq!(changed.len(), 2);
    assert_eq!(set.jobs.len(), 2);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    // Removing a job.
    let changed = set.update(vec![], &["jobs/web.yaml".to_string()]);
    assert_eq!(changed.into_iter().collect::<Vec<_>>(), ["scale-web"]);
    assert!(!set.jobs.contains_key("scale-web") && !set.invalid_job_names.contains("scale-web"));
    // Renaming a job inside its file: both names changed.
    let renamed = replace(JOB, "name: scale-api", "name: scale-api2");
    let changed = set.update(vec![file("jobs/scale-api.yaml", &renamed)], &[]);
    assert_eq!(
        changed.into_iter().collect::<Vec<_>>(),
        ["scale-api", "scale-api2"]
    );
    // Removing the owner of a duplicated name hands it to the other file.
    let mut set = load_with(&[("jobs/copy.yaml", JOB)]);
    assert_eq!(set.jobs["scale-api"].path.as_ref(), "jobs/copy.yaml");
    let changed = set.update(vec![], &["jobs/copy.yaml".to_string()]);
    assert_eq!(changed.len(), 1);
    assert_eq!(set.jobs["scale-api"].path.as_ref(), "jobs/scale-api.yaml");
    assert!(set.errors.is_empty());
}

#[test]
fn update_equals_a_fresh_load() {
    let mut set = load_with(&[]);
    let broken_template = replace(TEMPLATE, "id: check", "id: plan");
    set.update(
        vec![file("task-templates/scale.yaml", &broken_template)],
        &[],
    );
    let fresh = load_with(&[("task-templates/scale.yaml", &broken_template)]);
    assert_eq!(set.errors, fresh.errors);
    assert_eq!(set.invalid_job_names, fresh.invalid_job_names);
    set.update(vec![file("task-templates/scale.yaml", TEMPLATE)], &[]);
    assert_eq!(
        set.jobs["scale-api"].hash,
        load_with(&[]).jobs["scale-api"].hash
    );
    assert!(set.errors.is_empty());
}

#[test]
fn garbage_never_panics() {
    let inputs: [&[u8]; 12] = [
        b"",
        b"---",
        b"~",
        b"- a\n- b\n",
        b"kind: Job\n",
        b"kind: [Job]\n",
        b"kind: Job\nspec: *x\n",
        b"kind: Job\nmetadata: {name: 3}\nspec: {template: t, params: {a: &a [1, *a]}}\n",
        b"\xff\xfe",
        b"kind: TaskTemplate\napiVersion: george.dev/v1alpha1\nmetadata: {name: t}\nspec: {steps: [{id: a, depends_on: [a], command: {program: x}}]}\n",
        b"{{{{{{{{{{{{{{{{{{{{{{{{{{{{{{",
        b"? [a, b]\n: c\nkind: Job\n",
    ];
    for (i, bytes) in inputs.iter().enumerate() {
        let set = ManifestSet::load(vec![SourceFile {
            path: format!("jobs/{i}.yaml"),
            bytes: bytes.to_vec(),
        }]);
        assert!(!set.errors.is_empty(), "{i}");
        assert!(set.jobs.is_empty());
        // (9 is a TaskTemplate: not a job, wherever it is.)
        assert_eq!(
            set.invalid_job_paths.contains(&format!("jobs/{i}.yaml")),
            i != 9,
            "{i}"
        );
    }
}

#[test]
fn json_schema_of_every_kind() {
    let job = json_schema(Kind::Job).to_string();
    assert!(job.contains("template"));
    assert!(
        json_schema(Kind::TaskTemplate)
            .to_string()
            .contains("depends_on")
    );
    assert!(
        json_schema(Kind::AgentSpec)
            .to_string()
            .contains("system_prompt")
    );
}

/// `cargo test --release -p george-core --test manifest_validation -- --ignored --nocapture`
#[test]
#[ignore = "timing: run in release mode"]
fn load_and_update_timing() {
    let n = 10_000;
    let mut files = vec![
        file("agent-specs/ops.yaml", AGENT),
        file("task-templates/scale.yaml", TEMPLATE),
    ];
    for i in 0..n {
        let text = replace(JOB, "name: scale-api", &format!("name: job-{i}"));
        files.push(file(&format!("jobs/j{i}.yaml"), &text));
    }
    let start = std::time::Instant::now();
    let mut set = ManifestSet::load(files);
    let load = start.elapsed();
    assert_eq!(set.jobs.len(), n);
    let text = replace(JOB, "name: scale-api", "name: job-7");
    let text = replace(&text, "replicas: 4", "replicas: 5");
    let start = std::time::Instant::now();
    let changed = set.update(vec![file("jobs/j7.yaml", &text)], &[]);
    let update = start.elapsed();
    assert_eq!(changed.len(), 1);
    let start = std::time::Instant::now();
    for i in 0..100 {
        let text = replace(&text, "replicas: 5", &format!("replicas: {}", 6 + i % 10));
        let changed = set.update(vec![file("jobs/j7.yaml", &text)], &[]);
        assert!(changed.len() <= 1);
    }
    println!("100 more updates: {:?} each", start.elapsed() / 100);
    println!("load {n} jobs: {load:?}; update one: {update:?}");
    assert!(load < std::time::Duration::from_secs(1));
}

#[test]
fn templates_may_only_read_declared_params_and_outputs_of_dependencies() {
    let text = replace(TEMPLATE, "{{ params.env }}", "{{ params.environment }}");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        23,
        "spec.steps[0].instructions",
        "`params.environment`, which is not a parameter",
    );
    let text = replace(TEMPLATE, "{{ params.env }}", "{{ steps.plan.outputs.x }}");
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        23,
        "spec.steps[0].instructions",
        "step `plan`, which is not in this step's (transitive) `depends_on`",
    );
    // A transitive dependency's outputs are fine.
    let text = replace(
        TEMPLATE,
        "deploy/{{ params.service }}",
        "{{ steps.investigate.outputs.ns }}",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let text = replace(
        TEMPLATE,
        "deploy/{{ params.service }}",
        "{{ steps.nope.outputs.ns }}",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        36,
        "spec.steps[3].command.args[2]",
        "unknown step `nope`",
    );
}

#[test]
fn approval_rules_are_checked_field_by_field() {
    // The map form is valid…
    let text = replace(
        TEMPLATE,
        "      approval: required\n",
        "      approval:\n        approvers: [\"group:sre\", \"user:alice\"]\n        min_approvals: 2\n        forbid_self_approval: true\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert!(set.errors.is_empty(), "{:?}", set.errors);
    let rule = &set.templates["scale"].value.spec.steps[1].approval;
    assert!(rule.required && rule.forbid_self_approval);
    assert_eq!(rule.min_approvals, 2);
    // …and each bad field is named, with its line.
    let text = replace(
        TEMPLATE,
        "      approval: required\n",
        "      approval:\n        approvers: [\"sre\"]\n        min_approvals: 0\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert_error(
        &set,
        "task-templates/scale.yaml",
        28,
        "spec.steps[1].approval.approvers[0]",
        "`user:<id>` or `group:<name>`",
    );
    assert_error(
        &set,
        "task-templates/scale.yaml",
        29,
        "spec.steps[1].approval.min_approvals",
        "at least 1",
    );
    // A misspelt field is an error at the rule, not ignored.
    let text = replace(
        TEMPLATE,
        "      approval: required\n",
        "      approval: {required: true, approverz: [\"user:bob\"]}\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    let e = set
        .errors
        .iter()
        .find(|e| e.path == "task-templates/scale.yaml" && e.line == 27)
        .unwrap_or_else(|| panic!("{:?}", set.errors));
    assert!(e.field.starts_with("spec.steps[1].approval"), "{e}");
    assert!(e.message.contains("approverz"), "{e}");
    // Approvers on a step that needs no approval are a mistake, not silently ignored.
    let text = replace(
        TEMPLATE,
        "      approval: required\n",
        "      approval: {required: false, approvers: [\"user:bob\"]}\n",
    );
    let set = load_with(&[("task-templates/scale.yaml", &text)]);
    assert!(
        set.errors
            .iter()
            .any(|e| e.field.starts_with("spec.steps[1].approval")
                && e.message.contains("required: true")),
        "{:?}",
        set.errors
    );
}
