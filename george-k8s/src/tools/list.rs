//! `k8s_list`: objects of a kind in one namespace, or (`all_namespaces`) in every
//! namespace the executor may read — one request when it may read them all, one per
//! allowed namespace otherwise (never a cluster-wide list the scope does not allow).

use kube::api::{Api, DynamicObject, ListParams};
use serde_json::{Value, json};

use george_core::tool::ToolOutput;

use super::KubeToolExecutor;
use super::args::{self, ListArgs};
use super::output::yaml;
use super::read::{DEFAULT_LIMIT, MAX_LIMIT, open, to_json};
use super::resolve::{Fail, kube_fail, tool_err};
use super::scope::{Access, Namespaces};

pub(crate) async fn list(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let l: ListArgs = args::parse(super::K8S_LIST, a).map_err(tool_err)?;
    if l.all_namespaces && l.namespace.is_some() {
        return Err(tool_err(
            "k8s_list: give `namespace` or `all_namespaces`, not both",
        ));
    }
    let limit = l.limit.unwrap_or(DEFAULT_LIMIT).clamp(1, MAX_LIMIT);
    // (where, API) pairs to list from.
    let (r, sources, several) = if l.all_namespaces {
        let r = ex
            .resolver
            .resolve(&l.kind, l.api_version.as_deref())
            .await?;
        ex.scope
            .check_kind(&r.ar.group, &r.ar.kind, r.namespaced(), Access::Read)?;
        let sources: Vec<(String, Api<DynamicObject>)> = match &ex.scope.namespaces {
            _ if !r.namespaced() => vec![(
                "the cluster".to_string(),
                Api::all_with(ex.client.clone(), &r.ar),
            )],
            Namespaces::All => vec![(
                "all namespaces".to_string(),
                Api::all_with(ex.client.clone(), &r.ar),
            )],
            Namespaces::Only(set) => set
                .iter()
                .map(|n| (n.clone(), Api::namespaced_with(ex.client.clone(), n, &r.ar)))
                .collect(),
        };
        let several = r.namespaced();
        (r, sources, several)
    } else {
        let (r, ns, api) = open(
            ex,
            &l.kind,
            l.api_version.as_deref(),
            l.namespace.as_deref(),
            Access::Read,
        )
        .await?;
        let place = ns.unwrap_or_else(|| "the cluster".to_string());
        (r, vec![(place, api)], false)
    };
    let mut lp = ListParams::default().limit(limit);
    if let Some(s) = &l.label_selector {
        lp = lp.labels(s);
    }
    if let Some(s) = &l.field_selector {
        lp = lp.fields(s);
    }
    let mut objects = Vec::new();
    let mut more = false;
    for (place, api) in &sources {
        let left = limit.saturating_sub(objects.len() as u32);
        if left == 0 {
            more = true;
            break;
        }
        let list = api
            .list(&lp.clone().limit(left))
            .await
            .map_err(|e| kube_fail(&format!("list {} in {place}", r.ar.plural), e))?;
        more |= list
            .metadata
            .continue_
            .as_deref()
            .is_some_and(|c| !c.is_empty());
        objects.extend(list.items);
    }
    let items: Vec<Value> = objects.iter().map(|o| to_json(&r, o)).collect();
    let names: Vec<String> = objects
        .iter()
        .filter_map(|o| {
            let name = o.metadata.name.as_deref()?;
            Some(match (several, o.metadata.namespace.as_deref()) {
                (true, Some(n)) => format!("{n}/{name}"),
                _ => name.to_string(),
            })
        })
        .collect();
    let mut text = format!(
        "{} {} ({} shown{}):\n",
        items.len(),
        r.ar.plural,
        items.len(),
        if more {
            ", more exist: raise limit or narrow the selectors"
        } else {
            ""
        }
    );
    text.push_str(&yaml(&Value::Array(items)));
    let namespace = match (several, r.namespaced()) {
        (false, true) => sources.first().map(|(p, _)| p.clone()),
        _ => None,
    };
    let namespaces: Vec<&str> = sources.iter().map(|(p, _)| p.as_str()).collect();
    let mut data = json!({"apiVersion": r.ar.api_version, "kind": r.ar.kind, "namespace": namespace, "count": names.len(), "names": names, "more": more});
    if several {
        data["namespaces"] = json!(namespaces);
    }
    Ok(ex.ok(text, data))
}
