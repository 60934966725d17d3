//! `k8s_get_schema`: a kind's schema from the API server's OpenAPI v3 document (built-in
//! kinds and CRDs alike), or from the CRD itself when the document does not have it yet,
//! explained one level deep at a field path (`kubectl explain`).

use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::Api;
use serde_json::{Map, Value, json};

use george_core::tool::ToolOutput;

use super::KubeToolExecutor;
use super::args::{self, SchemaArgs};
use super::resolve::{Fail, Resolved, kube_fail, tool_err};
use super::scope::Access;

/// The OpenAPI v3 document path of a group version.
pub(crate) fn openapi_path(group: &str, version: &str) -> String {
    if group.is_empty() {
        format!("/openapi/v3/api/{version}")
    } else {
        format!("/openapi/v3/apis/{group}/{version}")
    }
}

pub(crate) async fn get_schema(ex: &KubeToolExecutor, a: &Value) -> Result<ToolOutput, Fail> {
    let s: SchemaArgs = args::parse(super::K8S_GET_SCHEMA, a).map_err(tool_err)?;
    let r = ex
        .resolver
        .resolve(&s.kind, s.api_version.as_deref())
        .await?;
    // Reading a schema reads no object: cluster-scoped kinds may be explained.
    ex.scope
        .check_kind(&r.ar.group, &r.ar.kind, true, Access::Read)?;
    let (root, components, source) = match from_openapi(ex, &r).await? {
        Some((root, comps)) => (root, comps, "the API server's OpenAPI v3 document"),
        None => (
            from_crd(ex, &r).await?,
            Map::new(),
            "its CustomResourceDefinition",
        ),
    };
    let field = s.field.as_deref().unwrap_or("").trim_matches('.');
    let mut node = deref(&root, &components);
    let mut at = r.ar.kind.clone();
    for seg in field.split('.').filter(|s| !s.is_empty()) {
        let next = node
            .get("properties")
            .and_then(|p| p.get(seg))
            .ok_or_else(|| {
                tool_err(format!(
                    "{at} has no field `{seg}` (fields: {})",
                    field_names(&node)
                ))
            })?;
        node = deref(next, &components);
        if node.get("type") == Some(&json!("array"))
            && let Some(items) = node.get("items")
        {
            node = deref(items, &components);
        }
        at = format!("{at}.{seg}");
    }
    let text = explain(&at, &r.ar.api_version, &node, &components, source);
    let mut shown = node.clone();
    if let Some(props) = shown.get_mut("properties").and_then(Value::as_object_mut) {
        for v in props.values_mut() {
            *v = deref(v, &components);
            if let Some(o) = v.as_object_mut() {
                o.remove("properties");
            }
        }
    }
    let data =
        json!({"apiVersion": r.ar.api_version, "kind": r.ar.kind, "field": at, "schema": shown});
    Ok(ex.ok(text, data))
}

/// The kind's schema and the document's components, when the OpenAPI document has them.
async fn from_openapi(
    ex: &KubeToolExecutor,
    r: &Resolved,
) -> Result<Option<(Value, Map<String, Value>)>, Fail> {
    let path = openapi_path(&r.ar.group, &r.ar.version);
    let req = http::Request::get(&path)
        .header("Accept", "application/json")
        .body(Vec::new())
        .map_err(|e| Fail::Exec(george_core::Error::backend(format!("GET {path}: {e}"))))?;
    let doc: Value = match ex.client.request(req).await {
        Ok(d) => d,
        Err(kube::Error::Api(s)) if s.code == 404 => return Ok(None),
        Err(e) => return Err(kube_fail(&format!("GET {path}"), e)),
    };
    let Some(comps) = doc
        .pointer("/components/schemas")
        .and_then(Value::as_object)
    else {
        return Ok(None);
    };
    let found = comps.values().find(|s| {
        s.get("x-kubernetes-group-version-kind")
            .and_then(Value::as_array)
            .is_some_and(|gvks| {
                gvks.iter().any(|g| {
                    g["group"] == r.ar.group.as_str()
                        && g["version"] == r.ar.version.as_str()
                        && g["kind"] == r.ar.kind.as_str()
                })
            })
    });
    Ok(found.map(|s| (s.clone(), comps.clone())))
}

/// The `openAPIV3Schema` of the kind's version in its CRD.
async fn from_crd(ex: &KubeToolExecutor, r: &Resolved) -> Result<Value, Fail> {
    let api: Api<CustomResourceDefinition> = Api::all(ex.client.clone());
    let name = format!("{}.{}", r.ar.plural, r.ar.group);
    let crd = api
        .get_opt(&name)
        .await
        .map_err(|e| kube_fail(&format!("get CRD {name}"), e))?
        .ok_or_else(|| {
            tool_err(format!(
                "no schema published for {} {}",
                r.ar.api_version, r.ar.kind
            ))
        })?;
    crd.spec
        .versions
        .iter()
        .find(|v| v.name == r.ar.version)
        .and_then(|v| v.schema.as_ref()?.open_api_v3_schema.as_ref())
        .and_then(|s| serde_json::to_value(s).ok())
        .ok_or_else(|| tool_err(format!("CRD {name} has no schema for {}", r.ar.version)))
}

/// `node` with a `$ref` (direct, or the one `allOf` entry) replaced by its target; its
/// own description wins.
fn deref(node: &Value, comps: &Map<String, Value>) -> Value {
    let target = node
        .get("$ref")
        .or_else(|| {
            node.get("allOf")
                .and_then(|a| a.get(0))
                .and_then(|e| e.get("$ref"))
        })
        .and_then(Value::as_str)
        .and_then(|r| r.rsplit('/').next())
        .and_then(|name| comps.get(name));
    match target {
        Some(t) => {
            let mut t = t.clone();
            if let (Some(d), Some(o)) = (node.get("description"), t.as_object_mut()) {
                o.insert("description".into(), d.clone());
            }
            t
        }
        None => node.clone(),
    }
}

fn field_names(node: &Value) -> String {
    node.get("properties")
        .and_then(Value::as_object)
        .map(|p| p.keys().cloned().collect::<Vec<_>>().join(", "))
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "none".into())
}

fn type_of(node: &Value, comps: &Map<String, Value>) -> String {
    let node = deref(node, comps);
    match node.get("type").and_then(Value::as_str) {
        Some("array") => format!(
            "[]{}",
            node.get("items").map_or("?".into(), |i| type_of(i, comps))
        ),
        Some(t) => t.to_owned(),
        None if node.get("x-kubernetes-int-or-string").is_some() => "int-or-string".into(),
        None if node.get("properties").is_some() => "object".into(),
        None => "any".into(),
    }
}

/// `kubectl explain`'s layout: kind, version, field, type, description, then each field
/// with its type and the first line of its description.
fn explain(
    at: &str,
    api_version: &str,
    node: &Value,
    comps: &Map<String, Value>,
    source: &str,
) -> String {
    let mut out = format!(
        "FIELD: {at} <{}>\nVERSION: {api_version}\n(from {source})\n\n",
        type_of(node, comps)
    );
    if let Some(d) = node.get("description").and_then(Value::as_str) {
        out.push_str(&format!(
            "DESCRIPTION:\n  {}\n\n",
            d.trim().replace('\n', "\n  ")
        ));
    }
    let required: Vec<&str> = node
        .get("required")
        .and_then(Value::as_array)
        .map(|r| r.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    if let Some(props) = node.get("properties").and_then(Value::as_object) {
        out.push_str("FIELDS:\n");
        for (name, p) in props {
            let p2 = deref(p, comps);
            let desc = p2
                .get("description")
                .and_then(Value::as_str)
                .unwrap_or("")
                .lines()
                .next()
                .unwrap_or("");
            let desc: String = desc.chars().take(160).collect();
            let req = if required.contains(&name.as_str()) {
                " -required-"
            } else {
                ""
            };
            out.push_str(&format!(
                "  {name} <{}>{req}\n    {desc}\n",
                type_of(p, comps)
            ));
        }
    }
    if let Some(e) = node.get("enum").and_then(Value::as_array) {
        out.push_str(&format!(
            "ENUM: {}\n",
            e.iter()
                .map(Value::to_string)
                .collect::<Vec<_>>()
                .join(", ")
        ));
    }
    out
}
