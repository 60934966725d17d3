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

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::sync::{Mutex, OnceLock};

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

/// Bounds on one render: templates come from commits, so rendering must end, and
/// quickly, whatever a template says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Limits {
    /// minijinja fuel: the number of template instructions one render may execute
    /// ([`DEFAULT_FUEL`] by default). A loop bomb runs out of fuel instead of hanging.
    pub fuel: u64,
    /// The most bytes one render may produce ([`DEFAULT_MAX_OUTPUT_BYTES`] by default).
    pub max_output_bytes: usize,
}

/// Default [`Limits::fuel`]: 250,000 instructions (a loop of 1,000 items with a few
/// expressions each uses under 10,000; a render at the limit takes a few milliseconds).
pub const DEFAULT_FUEL: u64 = 250_000;

/// Default [`Limits::max_output_bytes`]: 256 KiB.
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 256 * 1024;

impl Default for Limits {
    fn default() -> Self {
        Limits {
            fuel: DEFAULT_FUEL,
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
        }
    }
}

/// Configures an environment the way George renders: strict undefined, no escaping,
/// `fuel` instructions per render.
fn configure(env: &mut Environment<'_>, fuel: u64) {
    env.set_undefined_behavior(UndefinedBehavior::Strict);
    env.set_auto_escape_callback(|_| AutoEscape::None);
    // Instructions and arguments are small: a low recursion limit bounds the cost of
    // hostile templates without limiting real ones.
    env.set_recursion_limit(100);
    env.set_fuel(Some(fuel));
}

/// The shared rendering environment for `fuel` (built once per fuel value: the default
/// filters and tests are registered only once per process and value). `lenient`
/// environments let undefined values chain (for [`check_bounded`]).
fn environment(fuel: u64, lenient: bool) -> &'static Environment<'static> {
    type Envs = BTreeMap<(u64, bool), &'static Environment<'static>>;
    static DEFAULT: OnceLock<Environment<'static>> = OnceLock::new();
    static OTHERS: Mutex<Envs> = Mutex::new(BTreeMap::new());
    let build = || {
        let mut env = Environment::new();
        configure(&mut env, fuel);
        if lenient {
            env.set_undefined_behavior(UndefinedBehavior::Chainable);
        }
        env
    };
    if fuel == DEFAULT_FUEL && !lenient {
        return DEFAULT.get_or_init(build);
    }
    let mut others = OTHERS.lock().unwrap_or_else(|e| e.into_inner());
    // One environment per distinct configured fuel value, kept for the process.
    others
        .entry((fuel, lenient))
        .or_insert_with(|| Box::leak(Box::new(build())))
}

/// An `io::Write` into a `String` that refuses to grow past its cap.
struct Capped<'a> {
    out: &'a mut Vec<u8>,
    cap: usize,
    overflowed: bool,
}

impl std::io::Write for Capped<'_> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        if self.out.len() + buf.len() > self.cap {
            self.overflowed = true;
            return Err(std::io::Error::other("output cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Renders `source` with `ctx` (usually `{ "params": ..., "steps": ... }`) within the
/// default [`Limits`].
///
/// # Errors
/// A [`TemplateError`] when the template does not parse or when rendering fails,
/// notably when it uses a variable or attribute that `ctx` does not define, runs out
/// of fuel, or produces more than the output cap.
pub fn render(source: &str, ctx: &serde_json::Value) -> Result<String, TemplateError> {
    render_limited(source, ctx, Limits::default())
}

/// Renders `source` with `ctx` within `limits`.
///
/// # Errors
/// As [`render`]; running out of fuel reads `template ran out of fuel (more than N
/// instructions)`, the output cap `template output exceeds N bytes`.
pub fn render_limited(
    source: &str,
    ctx: &serde_json::Value,
    limits: Limits,
) -> Result<String, TemplateError> {
    if !has_syntax(source) {
        return Ok(source.to_string());
    }
    let ctx = minijinja::Value::from(minijinja::value::Serde(ctx));
    let env: &Environment<'_> = environment(limits.fuel, false);
    let template = env.template_from_str(source)?;
    let mut out = Vec::with_capacity(source.len().min(limits.max_output_bytes));
    let mut w = Capped {
        out: &mut out,
        cap: limits.max_output_bytes,
        overflowed: false,
    };
    let result = template.render_captured_to(ctx, &mut w);
    if w.overflowed {
        return Err(TemplateError {
            message: format!(
                "template output exceeds {} bytes (the render output cap)",
                limits.max_output_bytes
            ),
            line: None,
        });
    }
    match result {
        Ok(_) => Ok(String::from_utf8(out)
            .unwrap_or_else(|e| String::from_utf8_lossy(e.as_bytes()).into_owned())),
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(TemplateError {
            message: format!(
                "template ran out of fuel (more than {} instructions): loops too large",
                limits.fuel
            ),
            line: e.line(),
        }),
        Err(e) => Err(e.into()),
    }
}

/// Checks, without a real context, that `source` cannot exceed `limits` by itself:
/// renders it once with every undefined value empty (so loops over parameters or
/// outputs run zero times) and reports running out of fuel or over the output cap.
/// Other render errors are left to the real render. A literal loop bomb such as
/// `{% for a in range(100000) %}{% for b in range(100000) %}…` fails here, at
/// validation, in milliseconds.
///
/// # Errors
/// A [`TemplateError`] for a syntax error, fuel or output exhausted.
pub fn check_bounded(source: &str, limits: Limits) -> Result<(), TemplateError> {
    if !has_syntax(source) {
        return Ok(());
    }
    let env: &Environment<'_> = environment(limits.fuel, true);
    let template = env.template_from_str(source)?;
    let mut out = Vec::new();
    let mut w = Capped {
        out: &mut out,
        cap: limits.max_output_bytes,
        overflowed: false,
    };
    let result = template.render_captured_to(minijinja::Value::UNDEFINED, &mut w);
    if w.overflowed {
        return Err(TemplateError {
            message: format!(
                "template output exceeds {} bytes (the render output cap) even with no parameters",
                limits.max_output_bytes
            ),
            line: None,
        });
    }
    match result {
        Err(e) if e.kind() == minijinja::ErrorKind::OutOfFuel => Err(TemplateError {
            message: format!(
                "template runs out of fuel (more than {} instructions) even with no parameters: \
                 its loops are too large",
                limits.fuel
            ),
            line: e.line(),
        }),
        _ => Ok(()),
    }
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
    configure(&mut env, DEFAULT_FUEL);
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
    configure(&mut env, DEFAULT_FUEL);
    let template = env.template_from_str(source)?;
    Ok(template.undeclared_variables(true).into_iter().collect())
}

#[cfg(test)]
mod tests;
