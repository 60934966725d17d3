//! Rendering of step instructions and command arguments: [minijinja] templates over
//! `{ "params": {...}, "steps": { "<id>": { "outputs": {...} } } }`.
//!
//! Undefined variables are errors ([`UndefinedBehavior::Strict`]), never empty
//! strings, and nothing is auto-escaped: instructions are prompts, not HTML.
//!
//! ```
//! let ctx = serde_json::json!({
//!     "params": { "service": "api" },
//!     "steps": { "investigate": { "outputs": { "replicas": 3 } } },
//! });
//! let text = george_core::template::render(
//!     "scale {{ params.service }} to {{ steps.investigate.outputs.replicas }}",
//!     &ctx,
//! )
//! .unwrap();
//! assert_eq!(text, "scale api to 3");
//! assert!(george_core::template::render("{{ params.missing }}", &ctx).is_err());
//! ```

use std::collections::BTreeSet;
use std::fmt;
use std::sync::OnceLock;

use minijinja::{AutoEscape, Environment, UndefinedBehavior};

/// A template that does not parse, or that failed to render (undefined variable,
/// bad filter, type error ...).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct TemplateError {
    /// What is wrong, e.g. `undefined value: 'params.foo' is undefined` or
    /// `syntax error: unexpected end of input`.
    pub message: String,
    /// 1-based line within the template, when minijinja knows it.
    pub line: Option<usize>,
}

impl fmt::Display for TemplateError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        if let Some(line) = self.line {
            write!(f, " (template line {line})")?;
        }
        Ok(())
    }
}

impl From<minijinja::Error> for TemplateError {
    fn from(e: minijinja::Error) -> Self {
        let message = match e.detail() {
            Some(detail) => format!("{}: {detail}", e.kind()),
            None => e.kind().to_string(),
        };
        TemplateError {
            message,
            line: e.line(),
        }
    }
}

/// Configures an environment the way George renders: strict undefined, no escaping.
fn configure(env: &mut Environment<'_>) {
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Instructions and arguments are small: a low recursion limit bounds the cost of
    // hostile templates without limiting real ones.
    env.set_recursion_limit(100);
}

/// The shared rendering environment (built once: the default filters and tests are
/// registered only once per process).
fn environment() -> &'static Environment<'static> {
    static ENV: OnceLock<Environment<'static>> = OnceLock::new();
    ENV.get_or_init(|| {
        let mut env = Environment::new();
        configure(&mut env);
        env
    })
}

/// Renders `source` with `ctx` (usually `{ "params": ..., "steps": ... }`).
///
/// # Errors
/// A [`TemplateError`] when the template does not parse or when rendering fails,
/// notably when it uses a variable or attribute that `ctx` does not define.
pub fn render(source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
    if !has_syntax(source) {
        return Ok(source.to_string());
    }
    let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
    Ok(environment().render_str(source, ctx)?)
}

/// Whether `source` has template syntax (`{{`, `{%` or `{#`); text without it renders
/// as itself, so it needs neither a context nor the template engine.
pub fn has_syntax(source: &str) -> bool {
    source
        .as_bytes()
        .windows(2)
        .any(|w| w[0] == b'{' && matches!(w[1], b'{' | b'%' | b'#'))
}

/// Renders `source`, building its context with `ctx` only when `source` has template
/// syntax ([`has_syntax`]).
///
/// # Errors
/// As [`render`].
pub fn render_with(
    source: &str,
    ctx: impl FnOnce() -> serde_json::Value,
) -> Result<String, TemplateError> {
    if has_syntax(source) {
        render(source, &ctx())
    } else {
        Ok(source.to_string())
    }
}

/// Checks that `source` parses as a template, without rendering it.
///
/// # Errors
/// A [`TemplateError`] (with the template's line when known) for a syntax error.
pub fn check_syntax(source: &str) -> Result<(), TemplateError> {
    // `template_from_str` borrows the source for the environment's lifetime, so the
    // check uses a short-lived, empty environment (parsing needs no filters).
    let mut env = Environment::empty();
    configure(&mut env);
    env.template_from_str(source)?;
    Ok(())
}

/// The context variables `source` reads, as dotted paths (`params.service`,
/// `steps.investigate.outputs.replicas`); variables the template sets itself are left
/// out, and so are globals such as `range` (they are listed like variables).
///
/// # Errors
/// A [`TemplateError`] for a syntax error.
pub fn referenced_variables(source: &str) -> Result<BTreeSet<String>, TemplateError> {
    let mut env = Environment::empty();
    configure(&mut env);
    let template = env.template_from_str(source)?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

#[cfg(test)]
mod tests {
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
}
