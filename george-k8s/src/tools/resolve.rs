//! From a kind the model names (`Deployment`, `deployments`, `Job` with `batch/v1`) to
//! the API resource to call, through the API server's discovery (cached), and the
//! failures of a call: a result the model sees, or an executor error.

use std::sync::Arc;
use std::time::{Duration, Instant};

use kube::Client;
use kube::core::GroupVersion;
use kube::discovery::{self, ApiCapabilities, ApiResource, Discovery, Scope as KubeScope};
use tokio::sync::Mutex;

use george_core::tool::ToolOutput;
use george_core::{Error, ErrorKind};

/// Why a call did not produce its result: an error result the model sees (a refusal, an
/// object that does not exist, an invalid manifest), or the executor's own failure.
#[derive(Debug)]
pub(crate) enum Fail {
    /// The model sees it (`ToolOutput { is_error: true, .. }`).
    Tool(ToolOutput),
    /// The executor failed (the API server unreachable, a 5xx): `Err` from `call`.
    Exec(Error),
}

impl From<ToolOutput> for Fail {
    fn from(o: ToolOutput) -> Fail {
        Fail::Tool(o)
    }
}

impl From<Error> for Fail {
    fn from(e: Error) -> Fail {
        Fail::Exec(e)
    }
}

/// A tool-level error result with `message`.
pub(crate) fn tool_err(message: impl Into<String>) -> Fail {
    Fail::Tool(ToolOutput::error(message))
}

/// Sorts an API error: what the request got wrong (400, 403, 404, 409, 422, …) is a
/// result for the model; authentication, throttling, server errors and transport
/// failures are executor errors (`Unauthenticated`, `RateLimited`, `Backend`).
pub(crate) fn kube_fail(what: &str, e: kube::Error) -> Fail {
    if let kube::Error::Api(status) = &e {
        let code = status.code;
        let text = format!("{what}: {} ({code} {})", status.message, status.reason);
        return match code {
            401 => Fail::Exec(Error::new(ErrorKind::Unauthenticated, text).with_source(e)),
            429 => Fail::Exec(Error::new(ErrorKind::RateLimited, text).with_source(e)),
            // Server-side apply reports a manifest that does not fit the kind's schema
            // (an unknown field) as a 500: it is the manifest's fault, for the model.
            500 if status
                .message
                .contains("failed to create typed patch object") =>
            {
                Fail::Tool(ToolOutput::error(text).with_data(serde_json::json!({
                    "code": code, "reason": "Invalid"
                })))
            }
            500.. => Fail::Exec(Error::backend(text).with_source(e)),
            _ => Fail::Tool(ToolOutput::error(text).with_data(serde_json::json!({
                "code": code, "reason": status.reason
            }))),
        };
    }
    Fail::Exec(Error::backend(format!("{what}: {e}")).with_source(e))
}

/// A resolved kind.
#[derive(Debug, Clone)]
pub(crate) struct Resolved {
    pub(crate) ar: ApiResource,
    pub(crate) caps: ApiCapabilities,
}

impl Resolved {
    pub(crate) fn namespaced(&self) -> bool {
        self.caps.scope == KubeScope::Namespaced
    }

    /// Whether the kind has the subresource `name` (`scale`, `status`, `log`).
    pub(crate) fn has_subresource(&self, name: &str) -> bool {
        self.caps
            .subresources
            .iter()
            .any(|(ar, _)| ar.plural.ends_with(name))
    }
}

/// How long discovery is trusted before it is asked again.
const DISCOVERY_TTL: Duration = Duration::from_secs(60);
/// A kind not found is looked up again only when discovery is older than this.
const REFRESH_AFTER: Duration = Duration::from_secs(2);

/// The cached discovery of one API server.
pub(crate) struct Resolver {
    client: Client,
    cache: Mutex<Option<(Instant, Arc<Discovery>)>>,
}

impl std::fmt::Debug for Resolver {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Resolver").finish_non_exhaustive()
    }
}

impl Resolver {
    pub(crate) fn new(client: Client) -> Resolver {
        Resolver {
            client,
            cache: Mutex::new(None),
        }
    }

    /// Resolves `kind` (a kind or a plural, any case), at `api_version` if given.
    pub(crate) async fn resolve(
        &self,
        kind: &str,
        api_version: Option<&str>,
    ) -> Result<Resolved, Fail> {
        if let Some(av) = api_version {
            let gv: GroupVersion = av
                .parse()
                .map_err(|e| tool_err(format!("api_version `{av}`: {e}")))?;
            let group = discovery::pinned_group(&self.client, &gv)
                .await
                .map_err(|e| kube_fail(&format!("discovery of {av}"), e))?;
            return group
                .versioned_resources(&gv.version)
                .into_iter()
                .find(|(ar, _)| matches_kind(ar, kind))
                .map(|(ar, caps)| Resolved { ar, caps })
                .ok_or_else(|| tool_err(format!("no kind `{kind}` in {av}")));
        }
        let (at, disc) = self.discovery(false).await?;
        match find(&disc, kind) {
            Ok(Some(r)) => Ok(r),
            Ok(None) if at.elapsed() >= REFRESH_AFTER => {
                let (_, disc) = self.discovery(true).await?;
                find(&disc, kind)?.ok_or_else(|| unknown(kind))
            }
            Ok(None) => Err(unknown(kind)),
            Err(e) => Err(e),
        }
    }

    async fn discovery(&self, refresh: bool) -> Result<(Instant, Arc<Discovery>), Fail> {
        let mut cache = self.cache.lock().await;
        if !refresh
            && let Some((at, d)) = cache.as_ref()
            && at.elapsed() < DISCOVERY_TTL
        {
            return Ok((*at, d.clone()));
        }
        let d = Discovery::new(self.client.clone())
            .run_aggregated()
            .await
            .map_err(|e| kube_fail("API discovery", e))?;
        let entry = (Instant::now(), Arc::new(d));
        *cache = Some(entry.clone());
        Ok(entry)
    }
}

fn unknown(kind: &str) -> Fail {
    tool_err(format!(
        "the API server serves no kind `{kind}` (give the kind as `Deployment`, or its plural `deployments`)"
    ))
}

fn matches_kind(ar: &ApiResource, kind: &str) -> bool {
    ar.kind.eq_ignore_ascii_case(kind) || ar.plural.eq_ignore_ascii_case(kind)
}

/// Groups searched first, in order, when several serve the same kind (`Event` in the
/// core group and in `events.k8s.io`; `Job` in `batch` and `george.dev`).
const PREFERRED_GROUPS: &[&str] = &["", "apps", "batch", "autoscaling", "networking.k8s.io"];

fn find(disc: &Discovery, kind: &str) -> Result<Option<Resolved>, Fail> {
    let mut found: Vec<Resolved> = Vec::new();
    for group in disc.groups() {
        for (ar, caps) in group.recommended_resources() {
            if matches_kind(&ar, kind) {
                found.push(Resolved { ar, caps });
            }
        }
    }
    let rank = |r: &Resolved| {
        PREFERRED_GROUPS
            .iter()
            .position(|g| *g == r.ar.group)
            .unwrap_or(PREFERRED_GROUPS.len())
    };
    found.sort_by(|a, b| {
        rank(a)
            .cmp(&rank(b))
            .then_with(|| a.ar.group.cmp(&b.ar.group))
    });
    match found.as_slice() {
        [] => Ok(None),
        [one] => Ok(Some(one.clone())),
        [first, second, ..] if rank(first) < rank(second) => Ok(Some(first.clone())),
        many => Err(tool_err(format!(
            "kind `{kind}` is served by several groups ({}): give `api_version`",
            many.iter()
                .map(|r| r.ar.api_version.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        ))),
    }
}
