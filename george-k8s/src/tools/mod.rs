//! [`KubeToolExecutor`]: the Kubernetes API as tools for agents — read, validate with a
//! server-side dry run, and change objects of any kind — within the operator's scope.
//!
//! Modules: `args` (each tool's arguments and their JSON Schema), `scope` (namespaces
//! and kinds the operator allows), `resolve` (kinds through discovery; how failures
//! reach the model), `output` (YAML, Secret redaction, size caps), `read` (get, list,
//! describe, events, logs, rollout status), `rollout` (a workload's rollout verdict), `schema` (a kind's OpenAPI schema), `write`
//! (apply, dry run and its diff, patch, scale, delete), `preview` (what a write call
//! would change, for the approval inbox).

mod args;
mod list;
mod output;
mod preview;
mod read;
mod resolve;
mod rollout;
mod schema;
mod scope;
mod write;

#[cfg(test)]
mod tests;

use std::collections::{BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use kube::Client;

use george_core::tool::{
    EffectClass, ToolDefinition, ToolExecutor, ToolInvocation, ToolOutput, ToolPreview,
};
use george_core::{Error, Result};

pub use output::REDACTED;
pub use scope::DEFAULT_READ_ONLY_KINDS;

use resolve::{Fail, Resolver};
use scope::{KindRule, Namespaces, Scope};

/// `k8s_get`: one object, as YAML.
pub const K8S_GET: &str = "k8s_get";
/// `k8s_list`: objects of a kind, with label and field selectors.
pub const K8S_LIST: &str = "k8s_list";
/// `k8s_describe`: one object and the events about it.
pub const K8S_DESCRIBE: &str = "k8s_describe";
/// `k8s_events`: a namespace's events, newest last.
pub const K8S_EVENTS: &str = "k8s_events";
/// `k8s_logs`: a pod's container logs.
pub const K8S_LOGS: &str = "k8s_logs";
/// `k8s_rollout_status`: whether a Deployment, StatefulSet or DaemonSet rolled out.
pub const K8S_ROLLOUT_STATUS: &str = "k8s_rollout_status";
/// `k8s_get_schema`: a kind's OpenAPI v3 schema (built-in or custom), or one field's.
pub const K8S_GET_SCHEMA: &str = "k8s_get_schema";
/// `k8s_apply_dry_run`: server-side apply with `dryRun=All`, and the diff it would make.
pub const K8S_APPLY_DRY_RUN: &str = "k8s_apply_dry_run";
/// `k8s_apply`: server-side apply with the executor's field manager.
pub const K8S_APPLY: &str = "k8s_apply";
/// `k8s_patch`: a merge or strategic merge patch.
pub const K8S_PATCH: &str = "k8s_patch";
/// `k8s_scale`: sets a workload's replicas through its scale subresource.
pub const K8S_SCALE: &str = "k8s_scale";
/// `k8s_delete`: deletes one object.
pub const K8S_DELETE: &str = "k8s_delete";

/// The field manager of server-side applies by default.
pub const DEFAULT_FIELD_MANAGER: &str = "george";
/// The size cap of one result's text by default (64 KiB).
pub const DEFAULT_MAX_OUTPUT_BYTES: usize = 64 * 1024;

/// A [`ToolExecutor`] over the Kubernetes API (kube-rs; no `kubectl`), for any kind the
/// API server serves (found through discovery, so custom resources too):
///
/// | tool | effect | arguments |
/// |---|---|---|
/// | `k8s_get` | read | `{kind, name, namespace?, api_version?}` → the object as YAML |
/// | `k8s_list` | read | `{kind, namespace?, label_selector?, field_selector?, limit?}` |
/// | `k8s_describe` | read | like `k8s_get` → the object, then the events about it |
/// | `k8s_events` | read | `{namespace?, kind?, name?, limit?}` → events, oldest first |
/// | `k8s_logs` | read | `{name, namespace?, container?, tail_lines?, since_seconds?, previous?}` |
/// | `k8s_rollout_status` | read | `{name, kind?, namespace?}` → `data.done`, replica counts |
/// | `k8s_get_schema` | read | `{kind, api_version?, field?}` → the OpenAPI v3 schema |
/// | `k8s_apply_dry_run` | dry_run | `{manifest, force?}` → the diff against the live object |
/// | `k8s_apply` | write | `{manifest, force?}` (server-side apply) |
/// | `k8s_patch` | write | `{kind, name, patch, patch_type?: merge\|strategic, namespace?}` |
/// | `k8s_scale` | write | `{name, replicas, kind?, namespace?}` |
/// | `k8s_delete` | write | `{kind, name, namespace?, api_version?}` |
///
/// Results are text for the model (YAML objects without `managedFields`) and `data`
/// with the structured facts (`{"apiVersion", "kind", "namespace", "name", ...}`).
///
/// # Scope (the operator's)
/// Checked before the call reaches the API (only discovery, which reads no object, may
/// run first); a call outside it is an error result `data: {"refused": true, "rule"}`:
/// - **namespaces**: the client's default namespace unless
///   [`with_namespaces`](Self::with_namespaces) or [`all_namespaces`](Self::all_namespaces);
///   a call naming no namespace uses the one allowed namespace (or the client's default);
/// - **kinds**: [`with_denied_kinds`](Self::with_denied_kinds) always win;
///   [`with_allowed_kinds`](Self::with_allowed_kinds), when set, is the only kinds;
///   [`DEFAULT_READ_ONLY_KINDS`] (George's kinds, RBAC) and
///   [`with_read_only_kinds`](Self::with_read_only_kinds) refuse writes. Rules are `Kind`
///   (any group) or `Kind.group`, case-insensitive;
/// - **cluster-scoped** kinds (Nodes, Namespaces, …) are refused unless
///   [`with_cluster_scoped`](Self::with_cluster_scoped);
/// - **Secrets** are never shown: every value of `data` and `stringData` (and the
///   `kubectl.kubernetes.io/last-applied-configuration` annotation) reads [`REDACTED`],
///   in every result, diff and preview — even when the operator allows reading them;
/// - **size**: a result's text is cut at [`with_max_output_bytes`](Self::with_max_output_bytes)
///   (default [`DEFAULT_MAX_OUTPUT_BYTES`]), at a line, with a note; lists and events
///   default to 50 items (at most 500), logs to 200 lines.
///
/// # Fencing
/// A write whose [`FencingToken`](george_core::tool::FencingToken) is older than one this
/// executor already saw for the same job and step is refused (`data.rule: "fencing"`):
/// an engine whose lease was taken over cannot change the cluster any more. (One entry
/// per job and step is kept for the executor's lifetime.)
///
/// # Idempotency
/// Every write is safe to repeat, so a call retried with the same idempotency key has the
/// effect of one: `k8s_apply` is server-side apply (declarative); `k8s_scale` sets an
/// absolute count; `k8s_patch` offers only merge and strategic merge patches (no JSON
/// patch, whose `add` to a list is not idempotent); `k8s_delete` of an object that is
/// already gone succeeds with `data.already_absent: true`.
///
/// # Previews
/// [`preview`](ToolExecutor::preview) of `k8s_apply`, `k8s_apply_dry_run` and
/// `k8s_patch` runs the call with `dryRun=All` and returns the diff against the live
/// object (`/dev/null` for a new one) — what an approval inbox shows; of `k8s_scale` the
/// replica change; of `k8s_delete` the object as a deletion. Reads preview as "changes
/// nothing". A call that would be refused previews with `is_error`.
///
/// # Errors
/// `call` returns `Err` only when the executor fails: `NotFound` for an unknown tool,
/// `Unauthenticated` (401), `RateLimited` (429), `Backend` (5xx, transport). What the
/// request got wrong (a refusal, 404, 409 conflict, 422 invalid) is an error result.
#[derive(Clone)]
pub struct KubeToolExecutor {
    client: Client,
    resolver: Arc<Resolver>,
    scope: Arc<Scope>,
    field_manager: String,
    max_output_bytes: usize,
    /// The highest fencing sequence seen per (job, step), for writes.
    fences: Arc<Mutex<HashMap<(String, String), u64>>>,
}

impl std::fmt::Debug for KubeToolExecutor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KubeToolExecutor")
            .field("scope", &self.scope)
            .field("field_manager", &self.field_manager)
            .field("max_output_bytes", &self.max_output_bytes)
            .finish_non_exhaustive()
    }
}

impl KubeToolExecutor {
    /// Tools over `client`, scoped to the client's default namespace.
    pub fn new(client: Client) -> Self {
        let scope = Scope::new(client.default_namespace());
        KubeToolExecutor {
            resolver: Arc::new(Resolver::new(client.clone())),
            client,
            scope: Arc::new(scope),
            field_manager: DEFAULT_FIELD_MANAGER.to_owned(),
            max_output_bytes: DEFAULT_MAX_OUTPUT_BYTES,
            fences: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    /// Only these namespaces (replacing the default).
    ///
    /// # Errors
    /// `InvalidInput` when `namespaces` is empty.
    pub fn with_namespaces<S: Into<String>>(
        mut self,
        namespaces: impl IntoIterator<Item = S>,
    ) -> Result<Self> {
        let set: BTreeSet<String> = namespaces.into_iter().map(Into::into).collect();
        if set.is_empty() {
            return Err(Error::invalid_input(
                "a KubeToolExecutor needs at least one namespace (or all_namespaces)",
            ));
        }
        Arc::make_mut(&mut self.scope).namespaces = Namespaces::Only(set);
        Ok(self)
    }

    /// Any namespace.
    pub fn all_namespaces(mut self) -> Self {
        Arc::make_mut(&mut self.scope).namespaces = Namespaces::All;
        self
    }

    /// Only kinds matching one of `rules` (`Kind` or `Kind.group`), added to any given before.
    pub fn with_allowed_kinds<S: AsRef<str>>(mut self, rules: impl IntoIterator<Item = S>) -> Self {
        let s = Arc::make_mut(&mut self.scope);
        s.allowed_kinds
            .extend(rules.into_iter().map(|r| KindRule::parse(r.as_ref())));
        self
    }

    /// Never kinds matching one of `rules`, for reading or writing.
    pub fn with_denied_kinds<S: AsRef<str>>(mut self, rules: impl IntoIterator<Item = S>) -> Self {
        let s = Arc::make_mut(&mut self.scope);
        s.denied_kinds
            .extend(rules.into_iter().map(|r| KindRule::parse(r.as_ref())));
        self
    }

    /// Kinds matching one of `rules` may be read, not written (added to the defaults).
    pub fn with_read_only_kinds<S: AsRef<str>>(
        mut self,
        rules: impl IntoIterator<Item = S>,
    ) -> Self {
        let s = Arc::make_mut(&mut self.scope);
        s.read_only_kinds
            .extend(rules.into_iter().map(|r| KindRule::parse(r.as_ref())));
        self
    }

    /// Removes [`DEFAULT_READ_ONLY_KINDS`] (rules given with
    /// [`with_read_only_kinds`](Self::with_read_only_kinds) before stay).
    pub fn without_default_read_only_kinds(mut self) -> Self {
        let defaults: Vec<KindRule> = DEFAULT_READ_ONLY_KINDS
            .iter()
            .map(|r| KindRule::parse(r))
            .collect();
        Arc::make_mut(&mut self.scope)
            .read_only_kinds
            .retain(|r| !defaults.contains(r));
        self
    }

    /// Allows cluster-scoped kinds (Nodes, Namespaces, CRDs, …), within the kind rules.
    pub fn with_cluster_scoped(mut self, allowed: bool) -> Self {
        Arc::make_mut(&mut self.scope).cluster_scoped = allowed;
        self
    }

    /// The field manager of server-side applies (default [`DEFAULT_FIELD_MANAGER`]).
    pub fn with_field_manager(mut self, manager: impl Into<String>) -> Self {
        self.field_manager = manager.into();
        self
    }

    /// The size cap of one result's text, in bytes (default [`DEFAULT_MAX_OUTPUT_BYTES`]).
    pub fn with_max_output_bytes(mut self, bytes: usize) -> Self {
        self.max_output_bytes = bytes.max(256);
        self
    }

    /// The namespace of a call that names `ns` (or none).
    pub(crate) fn namespace(&self, ns: Option<&str>) -> String {
        ns.map_or_else(
            || {
                self.scope
                    .default_namespace(self.client.default_namespace())
                    .to_owned()
            },
            str::to_owned,
        )
    }

    /// Refuses a write whose fencing token is older than one already seen for the same
    /// job and step (a stale engine still running after its lease was taken over);
    /// records the token otherwise. Calls without a context (sequence 0) pass.
    fn check_fence(&self, invocation: &ToolInvocation) -> Option<ToolOutput> {
        let c = &invocation.context;
        let seq = c.fencing.sequence;
        if seq == 0 || c.job.is_empty() {
            return None;
        }
        let mut fences = self.fences.lock().unwrap_or_else(|e| e.into_inner());
        let seen = fences.entry((c.job.clone(), c.step.clone())).or_insert(0);
        if seq < *seen {
            return Some(scope::refusal(
                format!(
                    "refused: the lease of {}/{} held by `{}` (fencing sequence {seq}) was taken over (sequence {} seen)",
                    c.job, c.step, c.fencing.holder, *seen
                ),
                "fencing",
            ));
        }
        *seen = seq;
        None
    }

    /// A successful result: `text` cut to the cap, `data` attached.
    pub(crate) fn ok(&self, text: String, data: serde_json::Value) -> ToolOutput {
        let (text, cut) = output::cap(text, self.max_output_bytes);
        let mut data = data;
        // The cap holds for `data` too: a cut result does not carry the whole object.
        if cut && let Some(o) = data.as_object_mut() {
            o.remove("object");
            o.insert("truncated".into(), true.into());
        }
        ToolOutput::ok(text).with_data(data)
    }
}

/// The tool result of `r`: a `Fail::Tool` is a result, a `Fail::Exec` an error.
fn settle(r: std::result::Result<ToolOutput, Fail>) -> Result<ToolOutput> {
    match r {
        Ok(o) | Err(Fail::Tool(o)) => Ok(o),
        Err(Fail::Exec(e)) => Err(e),
    }
}

#[async_trait]
impl ToolExecutor for KubeToolExecutor {
    fn tools(&self) -> Vec<ToolDefinition> {
        args::definitions()
    }

    async fn call(&self, invocation: ToolInvocation) -> Result<ToolOutput> {
        let a = &invocation.arguments;
        if matches!(
            invocation.name.as_str(),
            K8S_APPLY | K8S_PATCH | K8S_SCALE | K8S_DELETE
        ) && let Some(refused) = self.check_fence(&invocation)
        {
            return Ok(refused);
        }
        let r = match invocation.name.as_str() {
            K8S_GET => read::get(self, a).await,
            K8S_LIST => list::list(self, a).await,
            K8S_DESCRIBE => read::describe(self, a).await,
            K8S_EVENTS => read::events(self, a).await,
            K8S_LOGS => read::logs(self, a).await,
            K8S_ROLLOUT_STATUS => read::rollout_status(self, a).await,
            K8S_GET_SCHEMA => schema::get_schema(self, a).await,
            K8S_APPLY_DRY_RUN => write::apply(self, a, true).await,
            K8S_APPLY => write::apply(self, a, false).await,
            K8S_PATCH => write::patch(self, a, false).await,
            K8S_SCALE => write::scale(self, a).await,
            K8S_DELETE => write::delete(self, a).await,
            other => {
                return Err(Error::not_found(format!(
                    "KubeToolExecutor has no tool `{other}`"
                )));
            }
        };
        if !invocation.idempotency_key.is_empty() {
            tracing::debug!(tool = %invocation.name, key = %invocation.idempotency_key, "kubernetes tool call");
        }
        settle(r)
    }

    async fn preview(&self, invocation: &ToolInvocation) -> Result<Option<ToolPreview>> {
        preview::preview(self, invocation).await
    }
}
