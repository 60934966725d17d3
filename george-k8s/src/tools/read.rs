//! The read tools: get, list, describe, events, logs, rollout status.

use k8s_openapi::api::core::v1::{Event, Pod};
use kube::api::{Api, DynamicObject, ListParams, LogParams};
use serde_json::{Value, json};

use george_core::tool::ToolOutput;

use super::KubeToolExecutor;
use super::args::{self, EventsArgs, LogsArgs, RolloutArgs, Target};
use super::output::{clean, is_secret, yaml};
use super::resolve::{Fail, Resolved, kube_fail, tool_err};
use super::scope::Access;

/// Default and largest number of listed objects or events.
pub(crate) const DEFAULT_LIMIT: u32 = 50;
pub(crate) const MAX_LIMIT: u32 = 500;
/// Default and largest number of log lines.
const DEFAULT_TAIL: u32 = 200;
const MAX_TAIL: u32 = 5000;

/// The resource, the namespace (`None` for a cluster-scoped kind) and its dynamic API,
/// after the scope's checks: an explicitly named namespace before anything is asked of
/// the server, the kind after discovery.
pub(crate) async fn open(
    ex: &KubeToolExecutor,
    kind: &str,
    api_version: Option<&str>,
    namespace: Option<&str>,
    access: Access,
) -> Result<(Resolved, Option<String>, Api<DynamicObject>), Fail> {
    let ns = ex.namespace(namespace);
    if namespace.is_some() {
        ex.scope.check_namespace(&ns)?;
    }
    let r = ex.resolver.resolve(kind, api_version).await?;
    ex.scope
        .check_kind(&r.ar.group, &r.ar.kind, r.namespaced(), access)?;
    if r.namespaced() {
        ex.scope.check_namespace(&ns)?;
        let api = Api::namespaced_with(ex.client.clone(), &ns, &r.ar);
        Ok((r, Some(ns), api))
    } else {
        let api = Api::all_with(ex.client.clone(), &r.ar);
        Ok((r, None, api))
    }
}

/// `what` for messages: `Deployment team-a/podinfo`.
pub(crate) fn label(r: &Resolved, ns: Option<&str>, name: &str) -> String {
    match ns {
        Some(ns) => format!("{} {ns}/{name}", r.ar.kind),
        None => format!("{} {name}", r.ar.kind),
    }
}

/// The object as cleaned JSON (Secret values redacted).
pub(crate) fn to_json(r: &Resolved, obj: &DynamicObject) -> Value {
    let mut v = serde_json::to_value(obj).unwrap_or(Value::Null);
    clean(&mut v, is_secret(&r.ar.group, &r.ar.kind));
    v
}

fn facts(r: &Resolved, ns: Option<&str>, name: &str) -> Value {
    json!({"apiVersion": r.ar.api_version, "kind": r.ar.kind, "namespace": ns, "name": name})
}

pub(crate) async fn get(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let t: Target = args::parse(super::K8S_GET, a).map_err(tool_err)?;
    let (r, ns, api) = open(
        ex,
        &t.kind,
        t.api_version.as_deref(),
        t.namespace.as_deref(),
        Access::Read,
    )
    .await?;
    let what = label(&r, ns.as_deref(), &t.name);
    let obj = api
        .get(&t.name)
        .await
        .map_err(|e| kube_fail(&format!("get {what}"), e))?;
    let v = to_json(&r, &obj);
    let mut data = facts(&r, ns.as_deref(), &t.name);
    data["object"] = v.clone();
    Ok(ex.ok(yaml(&v), data))
}

pub(crate) async fn describe(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let t: Target = args::parse(super::K8S_DESCRIBE, a).map_err(tool_err)?;
    let (r, ns, api) = open(
        ex,
        &t.kind,
        t.api_version.as_deref(),
        t.namespace.as_deref(),
        Access::Read,
    )
    .await?;
    let what = label(&r, ns.as_deref(), &t.name);
    let obj = api
        .get(&t.name)
        .await
        .map_err(|e| kube_fail(&format!("describe {what}"), e))?;
    let mut fields = vec![
        format!("involvedObject.name={}", t.name),
        format!("involvedObject.kind={}", r.ar.kind),
    ];
    if let Some(uid) = &obj.metadata.uid {
        fields.push(format!("involvedObject.uid={uid}"));
    }
    let events = event_lines(ex, ns.as_deref(), &fields.join(","), DEFAULT_LIMIT).await?;
    let mut text = format!("{what}\n{}\nEvents:\n", yaml(&to_json(&r, &obj)));
    if events.is_empty() {
        text.push_str("  <none>\n");
    }
    for e in &events {
        text.push_str(&format!("  {e}\n"));
    }
    let mut data = facts(&r, ns.as_deref(), &t.name);
    data["events"] = json!(events.len());
    Ok(ex.ok(text, data))
}

/// Events matching the field selector `fields` in `ns` (all namespaces for `None`),
/// oldest first, the last `limit`, one line each.
async fn event_lines(
    ex: &KubeToolExecutor,
    ns: Option<&str>,
    fields: &str,
    limit: u32,
) -> Result<Vec<String>, Fail> {
    let api: Api<Event> = match ns {
        Some(ns) => Api::namespaced(ex.client.clone(), ns),
        None => Api::all(ex.client.clone()),
    };
    let mut lp = ListParams::default();
    if !fields.is_empty() {
        lp = lp.fields(fields);
    }
    let list = api
        .list(&lp)
        .await
        .map_err(|e| kube_fail("list events", e))?;
    let mut events: Vec<(String, String)> = list
        .items
        .iter()
        .map(|e| {
            let at = e
                .last_timestamp
                .as_ref()
                .map(|t| t.0.to_string())
                .or_else(|| e.event_time.as_ref().map(|t| t.0.to_string()))
                .or_else(|| {
                    e.metadata
                        .creation_timestamp
                        .as_ref()
                        .map(|t| t.0.to_string())
                })
                .unwrap_or_default();
            let o = &e.involved_object;
            let count = e
                .count
                .filter(|c| *c > 1)
                .map(|c| format!(" (x{c})"))
                .unwrap_or_default();
            let line = format!(
                "{at} {} {} {}/{}: {}{count}",
                e.type_.as_deref().unwrap_or("Normal"),
                e.reason.as_deref().unwrap_or("-"),
                o.kind.as_deref().unwrap_or("?"),
                o.name.as_deref().unwrap_or("?"),
                e.message.as_deref().unwrap_or("").trim()
            );
            (at, line)
        })
        .collect();
    events.sort();
    let skip = events.len().saturating_sub(limit as usize);
    Ok(events.into_iter().skip(skip).map(|(_, l)| l).collect())
}

pub(crate) async fn events(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let e: EventsArgs = args::parse(super::K8S_EVENTS, a).map_err(tool_err)?;
    let ns = ex.namespace(e.namespace.as_deref());
    ex.scope.check_namespace(&ns)?;
    ex.scope.check_kind("", "Event", true, Access::Read)?;
    let mut fields = Vec::new();
    if let Some(kind) = &e.kind {
        let r = ex.resolver.resolve(kind, None).await?;
        ex.scope
            .check_kind(&r.ar.group, &r.ar.kind, r.namespaced(), Access::Read)?;
        fields.push(format!("involvedObject.kind={}", r.ar.kind));
    }
    if let Some(name) = &e.name {
        fields.push(format!("involvedObject.name={name}"));
    }
    let limit = e.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    let lines = event_lines(ex, Some(&ns), &fields.join(","), limit).await?;
    let text = if lines.is_empty() {
        format!("no events in {ns} matching the request\n")
    } else {
        lines.join("\n") + "\n"
    };
    Ok(ex.ok(text, json!({"namespace": ns, "count": lines.len()})))
}

pub(crate) async fn logs(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let l: LogsArgs = args::parse(super::K8S_LOGS, a).map_err(tool_err)?;
    let ns = ex.namespace(l.namespace.as_deref());
    ex.scope.check_namespace(&ns)?;
    ex.scope.check_kind("", "Pod", true, Access::Read)?;
    let api: Api<Pod> = Api::namespaced(ex.client.clone(), &ns);
    let lp = LogParams {
        container: l.container.clone(),
        tail_lines: Some(i64::from(
            l.tail_lines.unwrap_or(DEFAULT_TAIL).clamp(1, MAX_TAIL),
        )),
        since_seconds: l.since_seconds.map(i64::from),
        previous: l.previous,
        limit_bytes: i64::try_from(ex.max_output_bytes).ok(),
        ..LogParams::default()
    };
    let text = api
        .logs(&l.name, &lp)
        .await
        .map_err(|e| kube_fail(&format!("logs of pod {ns}/{}", l.name), e))?;
    let lines = text.lines().count();
    let data = json!({"namespace": ns, "pod": l.name, "container": l.container, "lines": lines});
    Ok(ex.ok(
        if text.is_empty() {
            "<no log lines>\n".into()
        } else {
            text
        },
        data,
    ))
}

pub(crate) async fn rollout_status(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let ra: RolloutArgs = args::parse(super::K8S_ROLLOUT_STATUS, a).map_err(tool_err)?;
    let kind = ra.kind.as_deref().unwrap_or("Deployment");
    let (r, ns, api) = open(
        ex,
        kind,
        ra.api_version.as_deref(),
        ra.namespace.as_deref(),
        Access::Read,
    )
    .await?;
    let what = label(&r, ns.as_deref(), &ra.name);
    let obj = api
        .get(&ra.name)
        .await
        .map_err(|e| kube_fail(&format!("rollout status of {what}"), e))?;
    let v = serde_json::to_value(&obj).unwrap_or(Value::Null);
    let status = super::rollout::rollout(&r.ar.kind, &v).ok_or_else(|| {
        tool_err(format!(
            "{what}: rollout status is known for Deployments, StatefulSets and DaemonSets only"
        ))
    })?;
    // The message, then every count as `name: value` lines (e.g. `readyReplicas: 2`).
    let mut text = format!("{what}: {}\n", status["message"].as_str().unwrap_or(""));
    if let Some(s) = status.as_object() {
        for (k, v) in s.iter().filter(|(k, _)| *k != "message") {
            text.push_str(&format!("{k}: {v}\n"));
        }
    }
    let mut data = facts(&r, ns.as_deref(), &ra.name);
    if let (Some(d), Some(s)) = (data.as_object_mut(), status.as_object()) {
        d.extend(s.clone());
    }
    Ok(ex.ok(text, data))
}
