//! Table and attack tests of rendering.
use super::*;
use serde_json::json;

fn ctx() -> serde_json::Value {
    json!({
        "params": { "service": "api", "count": 2 },
        "steps": { "investigate": { "outputs": { "replicas": 5 } } },
    })
}

#[test]
fn renders_params_and_step_outputs() {
    let out = render(
        "{{ params.service }}: {{ steps.investigate.outputs.replicas }} replicas",
        &ctx(),
    )
    .unwrap();
    assert_eq!(out, "api: 5 replicas");
}

#[test]
fn undefined_is_an_error() {
    let err = render("hello {{ params.nope }}", &ctx()).unwrap_err();
    assert!(err.message.contains("undefined"), "{err}");
    assert_eq!(err.line, Some(1));
    let err = render("{{ steps.other.outputs.x }}", &ctx()).unwrap_err();
    assert!(err.message.contains("undefined"), "{err}");
    assert!(render("{{ nothing }}", &ctx()).is_err());
}

#[test]
fn lists_referenced_variables() {
    let vars = referenced_variables(
        "{{ params.a }} {% for x in params.list %}{{ x.y }}{% endfor %} {{ steps.s.outputs.o }} {{ params['b'] }}",
    )
    .unwrap();
    let vars: Vec<&str> = vars.iter().map(String::as_str).collect();
    assert_eq!(
        vars,
        ["params", "params.a", "params.list", "steps.s.outputs.o"]
    );
}

#[test]
fn text_without_syntax_renders_as_itself() {
    for s in ["plain", "a { b } c", "{ not a tag }", "", "}}{"] {
        assert!(!has_syntax(s), "{s}");
        assert_eq!(render(s, &json!(null)).unwrap(), s);
    }
    for s in ["{{ x }}", "{% if %}", "{# c #}"] {
        assert!(has_syntax(s), "{s}");
    }
}

#[test]
fn no_auto_escaping() {
    let ctx = json!({ "params": { "html": "<a & b>" } });
    assert_eq!(render("{{ params.html }}", &ctx).unwrap(), "<a & b>");
}

#[test]
fn syntax_error_is_detected_with_its_line() {
    assert!(check_syntax("fine {{ params.x }}").is_ok());
    let err = check_syntax("line one\nline two {{ params.x ").unwrap_err();
    assert!(err.message.contains("syntax"), "{err}");
    assert_eq!(err.line, Some(2));
    assert!(check_syntax("{% if %}").is_err());
    assert!(render("{% for %}", &ctx()).is_err());
}

const BOMB: &str = "{% for a in range(100000) %}{% for b in range(100000) %}\
                    {% for c in range(100000) %}x{% endfor %}{% endfor %}{% endfor %}";

#[test]
fn a_loop_bomb_runs_out_of_fuel() {
    let started = std::time::Instant::now();
    let err = render(BOMB, &ctx()).unwrap_err();
    assert!(err.message.contains("out of fuel"), "{err}");
    let err = check_bounded(BOMB, Limits::default()).unwrap_err();
    assert!(err.message.contains("out of fuel"), "{err}");
    // Bounded work: well under a second even in a debug build.
    assert!(started.elapsed() < std::time::Duration::from_secs(5));
}

#[test]
fn output_is_capped() {
    let limits = Limits {
        fuel: DEFAULT_FUEL,
        max_output_bytes: 100,
    };
    let src = "{% for i in range(1000) %}abc{% endfor %}";
    let err = render_limited(src, &ctx(), limits).unwrap_err();
    assert!(err.message.contains("exceeds 100 bytes"), "{err}");
    assert!(check_bounded(src, limits).is_err());
    let ok = render_limited("{{ params.service }}", &ctx(), limits).unwrap();
    assert_eq!(ok, "api");
}

#[test]
fn bounded_check_ignores_what_only_a_real_context_decides() {
    for src in [
        "{% for x in params.list %}{{ x }}{% endfor %}",
        "{% for i in range(params.n) %}{{ i }}{% endfor %}",
        "{{ steps.a.outputs.b | upper }}",
        "{% for i in range(100) %}{{ i }}{% endfor %}",
    ] {
        check_bounded(src, Limits::default()).unwrap();
    }
    let small = Limits {
        fuel: 50,
        max_output_bytes: 1 << 20,
    };
    assert!(check_bounded("{% for i in range(100) %}{{ i }}{% endfor %}", small).is_err());
}
