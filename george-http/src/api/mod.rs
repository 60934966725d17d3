//! The routes of version 1 and their OpenAPI document, built from the same list so the
//! two cannot differ.

pub(crate) mod approval_types;
pub(crate) mod approvals;
pub(crate) mod job_types;
pub(crate) mod jobs;
pub(crate) mod list;
pub(crate) mod system;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use crate::live;
use crate::state::AppState;

/// The prefix of version 1 of the API.
pub const PREFIX: &str = "/api/v1";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "George operator API",
        description = "Jobs, their event logs and transcripts, approvals and decisions, the catalogue, manifest errors, health, and live updates of a George engine. Errors are RFC 9457 problem details (application/problem+json). Every route but this document needs an identity (a bearer token, or a trusted proxy's headers); roles: read < decide < admin.",
        license(name = "Apache-2.0", identifier = "Apache-2.0"),
    ),
    modifiers(&BearerScheme),
    security(("bearer" = [])),
    tags(
        (name = "jobs", description = "Jobs, their event logs and transcripts; cancel and retry (admin)"),
        (name = "approvals", description = "Plans waiting for humans, and decisions (decide)"),
        (name = "live", description = "Server-Sent Events: job status changes, a job's event log"),
        (name = "system", description = "Catalogue, manifest errors, health, metrics, this document"),
    )
)]
struct ApiDoc;

struct BearerScheme;

impl Modify for BearerScheme {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some(
                        "A token from the operator's token file (which holds its SHA-256)",
                    ))
                    .build(),
            ),
        );
    }
}

/// Every route of version 1, under [`PREFIX`], and `/metrics`, with their OpenAPI
/// document.
pub(crate) fn routes() -> OpenApiRouter<AppState> {
    let v1 = OpenApiRouter::new()
        .routes(routes!(jobs::list_jobs))
        .routes(routes!(jobs::get_job))
        .routes(routes!(jobs::list_events))
        .routes(routes!(jobs::get_transcript))
        .routes(routes!(jobs::cancel_job))
        .routes(routes!(jobs::retry_job))
        .routes(routes!(approvals::list_approvals))
        .routes(routes!(approvals::get_approval))
        .routes(routes!(approvals::approve))
        .routes(routes!(approvals::reject))
        .routes(routes!(system::catalogue))
        .routes(routes!(system::manifest_errors))
        .routes(routes!(system::health))
        .routes(routes!(system::openapi))
        .routes(routes!(live::stream))
        .routes(routes!(crate::follow::follow_events));
    OpenApiRouter::with_openapi(ApiDoc::openapi())
        .routes(routes!(crate::metrics::metrics))
        .nest(PREFIX, v1)
}
