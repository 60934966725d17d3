//! The write tools (apply, patch, scale, delete) and the dry run: each call's diff
//! against the live object.

use std::time::{Duration, Instant};

use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use serde_json::{Value, json};
use similar::{Algorithm, TextDiff};

use george_core::tool::ToolOutput;

use super::KubeToolExecutor;
use super::args::{self, ApplyArgs, PatchArgs, PatchType, ScaleArgs, Target};
use super::output::{for_diff, is_secret, yaml};
use super::read::{label, open, to_json};
use super::resolve::{Fail, Resolved, kube_fail, tool_err};
use super::scope::Access;

/// A manifest, its kind and name, from the `manifest` argument (an object or YAML text).
pub(crate) struct Manifest {
    pub(crate) body: Value,
    pub(crate) api_version: String,
    pub(crate) kind: String,
    pub(crate) name: String,
    pub(crate) namespace: Option<String>,
}

pub(crate) fn manifest(value: &Value) -> Result<Manifest, String> {
    let body = match value {
        Value::Object(_) => value.clone(),
        Value::String(text) => {
            serde_saphyr::from_str::<Value>(text).map_err(|e| format!("manifest: not YAML: {e}"))?
        }
        _ => return Err("manifest: give an object or a YAML string".into()),
    };
    let field = |p: &str| body.pointer(p).and_then(Value::as_str).map(str::to_owned);
    let (Some(api_version), Some(kind), Some(name)) = (
        field("/apiVersion"),
        field("/kind"),
        field("/metadata/name"),
    ) else {
        return Err("manifest: `apiVersion`, `kind` and `metadata.name` are required (one object, not a list)".into());
    };
    let namespace = field("/metadata/namespace");
    Ok(Manifest {
        body,
        api_version,
        kind,
        name,
        namespace,
    })
}

/// The diff path of an object: `kubectl diff`'s `apps.v1.Deployment.team-a.podinfo`.
pub(crate) fn diff_path(r: &Resolved, ns: Option<&str>, name: &str) -> String {
    let gv = r.ar.api_version.replace('/', ".");
    match ns {
        Some(ns) => format!("{gv}.{}.{ns}.{name}", r.ar.kind),
        None => format!("{gv}.{}.{name}", r.ar.kind),
    }
}

/// The unified diff (`git diff` style, 3 lines of context) of an object from `old` to
/// `new` as YAML, without server bookkeeping; empty when nothing changes.
pub(crate) fn object_diff(path: &str, old: Option<&Value>, new: Option<&Value>) -> String {
    let text = |v: Option<&Value>| {
        v.map(|v| {
            let mut v = v.clone();
            for_diff(&mut v);
            yaml(&v)
        })
        .unwrap_or_default()
    };
    let (a, b) = (text(old), text(new));
    if a == b {
        return String::new();
    }
    let a_name = if old.is_some() {
        format!("a/{path}")
    } else {
        "/dev/null".into()
    };
    let b_name = if new.is_some() {
        format!("b/{path}")
    } else {
        "/dev/null".into()
    };
    let mut out = format!("diff --git a/{path} b/{path}\n");
    let diff = TextDiff::configure()
        .algorithm(Algorithm::Myers)
        .deadline(Instant::now() + Duration::from_secs(1))
        .diff_lines(&a, &b);
    out.push_str(
        &diff
            .unified_diff()
            .context_radius(3)
            .header(&a_name, &b_name)
            .to_string(),
    );
    if !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// What a change did (or would do): created, configured or unchanged.
fn verdict(live: Option<&Value>, diff: &str, hidden_change: bool) -> &'static str {
    match (live, diff.is_empty() && !hidden_change) {
        (None, _) => "created",
        (Some(_), true) => "unchanged",
        (Some(_), false) => "configured",
    }
}

/// Whether a Secret's values differ between `live` and `after` (which the redacted diff
/// cannot show).
fn secret_values_changed(
    r: &Resolved,
    live: Option<&DynamicObject>,
    after: &DynamicObject,
) -> bool {
    is_secret(&r.ar.group, &r.ar.kind)
        && live.is_some_and(|l| l.data.get("data") != after.data.get("data"))
}

/// The result of a change: a line, then the diff; `data` with the facts and the diff.
#[allow(clippy::too_many_arguments)]
fn changed(
    ex: &KubeToolExecutor,
    r: &Resolved,
    ns: Option<&str>,
    name: &str,
    live: Option<&Value>,
    after: &Value,
    dry_run: bool,
    hidden_change: bool,
) -> ToolOutput {
    let diff = object_diff(&diff_path(r, ns, name), live, Some(after));
    let verdict = verdict(live, &diff, hidden_change);
    let what = label(r, ns, name);
    let head = if dry_run {
        format!("dry run (nothing changed): {what} would be {verdict}")
    } else {
        format!("{what} {verdict}")
    };
    let note = if hidden_change {
        " (Secret values change; values are never shown)"
    } else {
        ""
    };
    let text = if diff.is_empty() {
        format!("{head}{note}\n")
    } else {
        format!("{head}{note}\n{diff}")
    };
    let data = json!({
        "apiVersion": r.ar.api_version, "kind": r.ar.kind, "namespace": ns, "name": name,
        "dry_run": dry_run, "result": verdict, "diff": diff,
    });
    ex.ok(text, data)
}

/// `k8s_apply` (`dry_run` false) and `k8s_apply_dry_run` (true).
pub(crate) async fn apply(
    ex: &KubeToolExecutor,
    a: &Value,
    dry_run: bool,
) -> Result<ToolOutput, Fail> {
    let tool = if dry_run {
        super::K8S_APPLY_DRY_RUN
    } else {
        super::K8S_APPLY
    };
    let args: ApplyArgs = args::parse(tool, a).map_err(tool_err)?;
    let mut m = manifest(&args.manifest).map_err(tool_err)?;
    let (r, ns, api) = open(
        ex,
        &m.kind,
        Some(&m.api_version),
        m.namespace.as_deref(),
        Access::Write,
    )
    .await?;
    if let (Some(ns), Some(meta)) = (
        &ns,
        m.body.get_mut("metadata").and_then(Value::as_object_mut),
    ) {
        meta.insert("namespace".into(), ns.clone().into());
    }
    let what = label(&r, ns.as_deref(), &m.name);
    let live = api
        .get_opt(&m.name)
        .await
        .map_err(|e| kube_fail(&format!("get {what}"), e))?;
    let mut pp = PatchParams::apply(&ex.field_manager).validation_strict();
    if args.force {
        pp = pp.force();
    }
    if dry_run {
        pp = pp.dry_run();
    }
    let verb = if dry_run { "dry-run apply" } else { "apply" };
    let after = api
        .patch(&m.name, &pp, &Patch::Apply(&m.body))
        .await
        .map_err(|e| kube_fail(&format!("{verb} {what}"), e))?;
    let hidden = secret_values_changed(&r, live.as_ref(), &after);
    let live = live.map(|o| to_json(&r, &o));
    Ok(changed(
        ex,
        &r,
        ns.as_deref(),
        &m.name,
        live.as_ref(),
        &to_json(&r, &after),
        dry_run,
        hidden,
    ))
}

/// `k8s_patch` (and, with `dry_run`, its preview).
pub(crate) async fn patch(
    ex: &KubeToolExecutor,
    a: &Value,
    dry_run: bool,
) -> Result<ToolOutput, Fail> {
    let p: PatchArgs = args::parse(super::K8S_PATCH, a).map_err(tool_err)?;
    let (r, ns, api) = open(
        ex,
        &p.kind,
        p.api_version.as_deref(),
        p.namespace.as_deref(),
        Access::Write,
    )
    .await?;
    let what = label(&r, ns.as_deref(), &p.name);
    let live = api
        .get(&p.name)
        .await
        .map_err(|e| kube_fail(&format!("get {what}"), e))?;
    let mut pp = PatchParams {
        field_manager: Some(ex.field_manager.clone()),
        ..PatchParams::default()
    };
    if dry_run {
        pp = pp.dry_run();
    }
    let body = Value::Object(p.patch);
    let patch = match p.patch_type {
        PatchType::Merge => Patch::Merge(&body),
        PatchType::Strategic => Patch::Strategic(&body),
    };
    let after = api
        .patch(&p.name, &pp, &patch)
        .await
        .map_err(|e| kube_fail(&format!("patch {what}"), e))?;
    let hidden = secret_values_changed(&r, Some(&live), &after);
    Ok(changed(
        ex,
        &r,
        ns.as_deref(),
        &p.name,
        Some(&to_json(&r, &live)),
        &to_json(&r, &after),
        dry_run,
        hidden,
    ))
}

/// `k8s_scale`: the scale subresource's `spec.replicas`, set to an absolute count.
pub(crate) async fn scale(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let s: ScaleArgs = args::parse(super::K8S_SCALE, a).map_err(tool_err)?;
    let (r, ns, api, before) = scale_target(ex, &s).await?;
    let what = label(&r, ns.as_deref(), &s.name);
    let pp = PatchParams {
        field_manager: Some(ex.field_manager.clone()),
        ..PatchParams::default()
    };
    let body = json!({"spec": {"replicas": s.replicas}});
    let after = api
        .patch_scale(&s.name, &pp, &Patch::Merge(&body))
        .await
        .map_err(|e| kube_fail(&format!("scale {what}"), e))?;
    let now = after.spec.and_then(|sp| sp.replicas).unwrap_or(0);
    let text = if before == i64::from(s.replicas) {
        format!("{what} already at {now} replicas (unchanged)\n")
    } else {
        format!("{what} scaled from {before} to {now} replicas\n")
    };
    let data = json!({"apiVersion": r.ar.api_version, "kind": r.ar.kind, "namespace": ns, "name": s.name, "from": before, "replicas": now});
    Ok(ex.ok(text, data))
}

/// The workload of a scale call, after the scope's checks, and its current replicas.
pub(crate) async fn scale_target(
    ex: &KubeToolExecutor,
    s: &ScaleArgs,
) -> Result<
    (
        Resolved,
        Option<String>,
        kube::Api<kube::api::DynamicObject>,
        i64,
    ),
    Fail,
> {
    let kind = s.kind.as_deref().unwrap_or("Deployment");
    let (r, ns, api) = open(
        ex,
        kind,
        s.api_version.as_deref(),
        s.namespace.as_deref(),
        Access::Write,
    )
    .await?;
    if !r.has_subresource("scale") {
        return Err(tool_err(format!(
            "kind `{}` has no scale subresource",
            r.ar.kind
        )));
    }
    let what = label(&r, ns.as_deref(), &s.name);
    let current = api
        .get_scale(&s.name)
        .await
        .map_err(|e| kube_fail(&format!("get scale of {what}"), e))?;
    let before = current.spec.and_then(|sp| sp.replicas).map_or(0, i64::from);
    Ok((r, ns, api, before))
}

/// `k8s_delete`: an object already gone is a success (`data.already_absent`), so a
/// retried call has the effect of one.
pub(crate) async fn delete(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let t: Target = args::parse(super::K8S_DELETE, a).map_err(tool_err)?;
    let (r, ns, api) = open(
        ex,
        &t.kind,
        t.api_version.as_deref(),
        t.namespace.as_deref(),
        Access::Write,
    )
    .await?;
    let what = label(&r, ns.as_deref(), &t.name);
    let data = |absent: bool| json!({"apiVersion": r.ar.api_version, "kind": r.ar.kind, "namespace": ns, "name": t.name, "already_absent": absent});
    match api.delete(&t.name, &DeleteParams::background()).await {
        Ok(_) => Ok(ex.ok(format!("{what} deleted\n"), data(false))),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(ex.ok(
            format!("{what} is already absent (nothing deleted)\n"),
            data(true),
        )),
        Err(e) => Err(kube_fail(&format!("delete {what}"), e)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn manifests_parse_from_objects_and_yaml() {
        let m = manifest(&json!("apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: c\n  namespace: team-a\ndata:\n  a: '1'\n")).unwrap();
        assert_eq!(
            (m.kind.as_str(), m.name.as_str(), m.namespace.as_deref()),
            ("ConfigMap", "c", Some("team-a"))
        );
        assert!(manifest(&json!({"kind": "ConfigMap"})).is_err());
        assert!(manifest(&json!(3)).is_err());
        assert!(manifest(&json!("a: [")).is_err());
    }

    #[test]
    fn diffs_are_unified_and_empty_when_nothing_changes() {
        let old = json!({"metadata": {"name": "c", "resourceVersion": "1"}, "data": {"a": "1"}});
        let new = json!({"metadata": {"name": "c", "resourceVersion": "2"}, "data": {"a": "2"}});
        let d = object_diff("v1.ConfigMap.n.c", Some(&old), Some(&new));
        assert!(d.starts_with("diff --git a/v1.ConfigMap.n.c b/v1.ConfigMap.n.c\n--- a/v1.ConfigMap.n.c\n+++ b/v1.ConfigMap.n.c\n"), "{d}");
        assert!(d.contains("-  a: '1'") || d.contains("-  a: \"1\""), "{d}");
        assert_eq!(object_diff("p", Some(&old), Some(&old)), "");
        assert!(object_diff("p", None, Some(&new)).contains("--- /dev/null"));
    }
}
