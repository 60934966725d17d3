//! The catalogue (agents, templates, tools), manifest errors, engine health and the
//! OpenAPI document.

use std::collections::BTreeMap;

use axum::Json;
use axum::extract::State;
use axum::http::header::CONTENT_TYPE;
use axum::response::IntoResponse;
use george_core::state::{JobStatus, StepState};
use serde::{Deserialize, Serialize};
use serde_json::Value;
use utoipa::ToSchema;

use super::job_types::ApiJobStatus;
use crate::auth::{Caller, Role};
use crate::problem::{ApiResult, Problem};
use crate::state::AppState;

/// An agent spec valid at the current commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiAgent {
    /// `metadata.name`.
    pub name: String,
    /// The manifest's path.
    pub path: String,
    /// The provider it names.
    pub provider: String,
    /// The model.
    pub model: String,
    /// The tools it may call.
    pub tools: Vec<String>,
    /// The whole `spec`, as committed.
    pub spec: Value,
}

/// One step of a template.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiTemplateStep {
    /// The step id.
    pub id: String,
    /// `agent`, `command` or `execute_approved`.
    pub mode: String,
    /// The agent, for an agent step.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// Steps that must succeed first.
    pub depends_on: Vec<String>,
    /// Whether its plan needs a human's approval.
    pub approval_required: bool,
    /// Who may approve (`user:<id>`, `group:<name>`); empty: anyone with `decide`.
    pub approvers: Vec<String>,
}

/// A task template valid at the current commit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiTemplate {
    /// `metadata.name`.
    pub name: String,
    /// The manifest's path.
    pub path: String,
    /// What it does.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// Its parameters, as committed (`[{name, type, description, default, …}]`).
    pub parameters: Value,
    /// Its steps.
    pub steps: Vec<ApiTemplateStep>,
}

/// A tool registered with the engine.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct ApiTool {
    /// The tool's name.
    pub name: String,
    /// What it does.
    pub description: String,
    /// `read`, `dry_run` or `write`: what a call may change. A step that needs approval
    /// may call only `read` and `dry_run` tools while planning.
    pub effect: String,
    /// Whether the operator fixed the class; when not, the executor may classify each
    /// call itself.
    pub effect_fixed: bool,
    /// JSON Schema of its arguments.
    pub input_schema: Value,
}

/// What is available: agents, templates and tools.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Catalogue {
    /// The commit the agents and templates come from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Agents, by name.
    pub agents: Vec<ApiAgent>,
    /// Templates, by name.
    pub templates: Vec<ApiTemplate>,
    /// Tools, by name.
    pub tools: Vec<ApiTool>,
}

/// The agents and templates valid at the current commit, and the registered tools with
/// their effect classes.
#[utoipa::path(
    get, path = "/catalogue", tag = "system", operation_id = "get_catalogue",
    responses(
        (status = 200, description = "The catalogue", body = Catalogue),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn catalogue(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Catalogue>> {
    who.require(Role::Read)?;
    let c = state.engine.catalogue();
    Ok(Json(Catalogue {
        commit: state.engine.commit().map(|c| c.0),
        agents: c
            .agents
            .iter()
            .map(|a| ApiAgent {
                name: a.value.metadata.name.clone(),
                path: a.path.clone(),
                provider: a.value.spec.provider.clone(),
                model: a.value.spec.model.to_string(),
                tools: a.value.spec.tools.clone(),
                spec: json(&a.value.spec),
            })
            .collect(),
        templates: c
            .templates
            .iter()
            .map(|t| ApiTemplate {
                name: t.value.metadata.name.clone(),
                path: t.path.clone(),
                description: t.value.spec.description.clone(),
                parameters: json(&t.value.spec.parameters),
                steps: t
                    .value
                    .spec
                    .steps
                    .iter()
                    .map(|s| ApiTemplateStep {
                        id: s.id.clone(),
                        mode: if s.execute_approved.is_some() {
                            "execute_approved"
                        } else if s.command.is_some() {
                            "command"
                        } else {
                            "agent"
                        }
                        .into(),
                        agent: s.agent.clone(),
                        depends_on: s.depends_on.clone(),
                        approval_required: s.approval.required,
                        approvers: s.approval.approvers.clone(),
                    })
                    .collect(),
            })
            .collect(),
        tools: c
            .tools
            .iter()
            .map(|t| ApiTool {
                name: t.definition.name.clone(),
                description: t.definition.description.clone(),
                effect: t.definition.effect.as_str().into(),
                effect_fixed: t.effect_fixed,
                input_schema: (*t.definition.input_schema).clone(),
            })
            .collect(),
    }))
}

/// Any `Serialize` as a JSON value (`null` if it cannot be).
fn json<T: Serialize>(v: &T) -> Value {
    serde_json::to_value(v).unwrap_or_default()
}

/// An invalid manifest: where and what.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ApiManifestError {
    /// The file.
    pub path: String,
    /// 1-based line.
    pub line: usize,
    /// 1-based column.
    pub column: usize,
    /// The field path (`spec.steps[1].depends_on[0]`; empty for a syntax error).
    pub field: String,
    /// What is wrong.
    pub message: String,
}

/// The manifest errors of the current commit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, ToSchema)]
pub struct ManifestErrors {
    /// The commit.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// One per problem, in file order.
    pub errors: Vec<ApiManifestError>,
}

/// The manifests of the current commit that do not parse or validate (the others are
/// reconciled regardless).
#[utoipa::path(
    get, path = "/manifest-errors", tag = "system", operation_id = "get_manifest_errors",
    responses(
        (status = 200, description = "The errors", body = ManifestErrors),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn manifest_errors(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<ManifestErrors>> {
    who.require(Role::Read)?;
    Ok(Json(ManifestErrors {
        commit: state.engine.commit().map(|c| c.0),
        errors: state
            .engine
            .manifest_errors()
            .into_iter()
            .map(|e| ApiManifestError {
                path: e.path,
                line: e.line,
                column: e.column,
                field: e.field,
                message: e.message,
            })
            .collect(),
    }))
}

/// The engine's state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize, ToSchema)]
pub struct Health {
    /// The engine's id (the holder of its leases).
    pub engine: String,
    /// The followed Git reference.
    pub reference: String,
    /// The commit desired state was last loaded from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub commit: Option<String>,
    /// Where the reference points in the Git source now (absent when it cannot be read).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source_head: Option<String>,
    /// Whether the engine has reconciled the source's head.
    pub in_sync: bool,
    /// How many commits the source's head has that `commit` has not (0 when in sync;
    /// counting stops at 10,000). Absent when the Git source cannot tell, or the head
    /// or commit is unknown.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lag_commits: Option<u64>,
    /// Job reconciles run by this engine since it started.
    pub reconciles: u64,
    /// Step attempts started by this engine since it started.
    pub attempts: u64,
    /// Step attempts whose lease this engine holds now.
    pub leases_held: usize,
    /// Jobs by status.
    pub jobs: BTreeMap<String, usize>,
    /// Open approval requests.
    pub open_approvals: usize,
    /// Manifest errors at the current commit.
    pub manifest_errors: usize,
}

/// The engine's health: its commit against the source's head (and how many commits it
/// is behind), counters, leases held, jobs by status.
#[utoipa::path(
    get, path = "/health", tag = "system", operation_id = "get_health",
    responses(
        (status = 200, description = "The engine's state", body = Health),
        (status = 401, description = "No identity", body = Problem, content_type = "application/problem+json"),
    )
)]
pub(crate) async fn health(
    State(state): State<AppState>,
    Caller(who): Caller,
) -> ApiResult<Json<Health>> {
    who.require(Role::Read)?;
    let e = &state.engine;
    let commit = e.commit().map(|c| c.0);
    let head = e.source_head().await.ok();
    let lag_commits = match &head {
        Some(h) => e.commits_behind(h).await.unwrap_or_else(|err| {
            tracing::debug!(error = %err, "counting the commits behind the source failed");
            None
        }),
        None => None,
    };
    let source_head = head.map(|c| c.0);
    let jobs_list = e.jobs().await?;
    let mut jobs = BTreeMap::new();
    for s in [
        JobStatus::Pending,
        JobStatus::Running,
        JobStatus::AwaitingApproval,
        JobStatus::Blocked,
        JobStatus::Succeeded,
        JobStatus::Failed,
        JobStatus::Cancelled,
    ] {
        jobs.insert(status_name(s), 0);
    }
    let mut leases_held = 0;
    for j in &jobs_list {
        *jobs.entry(status_name(j.status)).or_default() += 1;
        leases_held += j
            .steps
            .iter()
            .filter(
                |s| matches!(&s.state, StepState::Running { holder, .. } if **holder == *e.id()),
            )
            .count();
    }
    let stats = e.stats();
    Ok(Json(Health {
        engine: e.id().to_string(),
        reference: e.reference().to_string(),
        in_sync: commit.is_some() && commit == source_head,
        commit,
        source_head,
        lag_commits,
        reconciles: stats.reconciles,
        attempts: stats.attempts,
        leases_held,
        jobs,
        open_approvals: e.approvals(true).await?.len(),
        manifest_errors: e.manifest_errors().len(),
    }))
}

fn status_name(s: JobStatus) -> String {
    serde_json::to_value(ApiJobStatus::from(s))
        .ok()
        .and_then(|v| v.as_str().map(str::to_string))
        .unwrap_or_default()
}

/// This document (OpenAPI 3.1). The only route that needs no identity.
#[utoipa::path(
    get, path = "/openapi.json", tag = "system", operation_id = "get_openapi",
    security(()),
    responses((status = 200, description = "The OpenAPI document", content_type = "application/json", body = Object))
)]
pub(crate) async fn openapi(State(state): State<AppState>) -> impl IntoResponse {
    let doc = state.doc.get().cloned().unwrap_or_default();
    ([(CONTENT_TYPE, "application/json")], doc)
}
