//! What a write call would change, for a human reviewing a plan: the server-side dry
//! run's diff against the live object. Nothing is changed (`dryRun=All`, reads).

use kube::api::Api;
use serde_json::Value;

use george_core::Result;
use george_core::tool::{ToolInvocation, ToolOutput, ToolPreview};

use super::args::{self, ScaleArgs, Target};
use super::read::{label, open, to_json};
use super::resolve::{Fail, kube_fail, tool_err};
use super::scope::Access;
use super::write::{self, diff_path, object_diff};
use super::*;

/// The largest diff a preview carries (the engine caps it again).
const MAX_PREVIEW_DIFF: usize = 256 * 1024;

pub(crate) async fn preview(
    ex: &KubeToolExecutor,
    inv: &ToolInvocation,
) -> Result<Option<ToolPreview>> {
    let a = &inv.arguments;
    let r = match inv.name.as_str() {
        K8S_GET | K8S_LIST | K8S_DESCRIBE | K8S_EVENTS | K8S_LOGS | K8S_ROLLOUT_STATUS
        | K8S_GET_SCHEMA => {
            return Ok(Some(ToolPreview::new(format!(
                "{}: reads only, changes nothing",
                inv.name
            ))));
        }
        K8S_APPLY | K8S_APPLY_DRY_RUN => write::apply(ex, a, true).await.map(from_dry_run),
        K8S_PATCH => write::patch(ex, a, true).await.map(from_dry_run),
        K8S_SCALE => scale(ex, a).await,
        K8S_DELETE => delete(ex, a).await,
        other => {
            return Err(george_core::Error::not_found(format!(
                "KubeToolExecutor has no tool `{other}`"
            )));
        }
    };
    match r {
        Ok(mut p) => {
            p.truncate_diff(MAX_PREVIEW_DIFF);
            Ok(Some(p))
        }
        Err(Fail::Tool(o)) => Ok(Some(ToolPreview::error(o.content))),
        Err(Fail::Exec(e)) => Err(e),
    }
}

/// A dry run's result as a preview: its first line as the summary, its diff.
fn from_dry_run(o: ToolOutput) -> ToolPreview {
    let summary = o.content.lines().next().unwrap_or("").to_owned();
    let diff = o
        .data
        .as_ref()
        .and_then(|d| d.get("diff"))
        .and_then(Value::as_str)
        .unwrap_or("")
        .to_owned();
    ToolPreview::new(summary).with_diff(diff)
}

async fn scale(ex: &KubeToolExecutor, a: &Value) -> std::result::Result<ToolPreview, Fail> {
    let s: ScaleArgs = args::parse(K8S_SCALE, a).map_err(tool_err)?;
    let (r, ns, _, before) = write::scale_target(ex, &s).await?;
    let what = label(&r, ns.as_deref(), &s.name);
    let summary = if before == i64::from(s.replicas) {
        format!("{what} is already at {before} replicas: nothing would change")
    } else {
        format!(
            "{what} would be scaled from {before} to {} replicas",
            s.replicas
        )
    };
    Ok(ToolPreview::new(summary))
}

async fn delete(ex: &KubeToolExecutor, a: &Value) -> std::result::Result<ToolPreview, Fail> {
    let t: Target = args::parse(K8S_DELETE, a).map_err(tool_err)?;
    let (r, ns, api): (_, _, Api<kube::api::DynamicObject>) = open(
        ex,
        &t.kind,
        t.api_version.as_deref(),
        t.namespace.as_deref(),
        Access::Write,
    )
    .await?;
    let what = label(&r, ns.as_deref(), &t.name);
    let live = api
        .get_opt(&t.name)
        .await
        .map_err(|e| kube_fail(&format!("get {what}"), e))?;
    Ok(match live {
        None => ToolPreview::new(format!("{what} does not exist: nothing would be deleted")),
        Some(o) => {
            let v = to_json(&r, &o);
            ToolPreview::new(format!("{what} would be deleted")).with_diff(object_diff(
                &diff_path(&r, ns.as_deref(), &t.name),
                Some(&v),
                None,
            ))
        }
    })
}
