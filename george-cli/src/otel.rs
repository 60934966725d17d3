//! OpenTelemetry traces (feature `otel`): the engine's `tracing` spans exported over
//! OTLP/HTTP with protobuf bodies (`POST <endpoint>/v1/traces`, the OTLP specification's
//! HTTP transport, <https://opentelemetry.io/docs/specs/otlp/#otlphttp>).
//!
//! `george-core` knows only `tracing`: each step attempt runs in a root `step.attempt`
//! span (fields `job`, `step`, `attempt`, `agent`, `mode`, `outcome`), whose children
//! are the model calls (`llm.call`, from `george-llm`'s `Instrumented`), the tool calls
//! (`tool.call`: `tool`, `effect`) and the store writes (`store.commit`: `write`). This
//! module bridges those spans to OpenTelemetry with `tracing-opentelemetry`, so one
//! attempt is one trace.
//!
//! The exporter uses `opentelemetry-otlp`'s *blocking* reqwest client (its async client
//! needs a Tokio reactor on the exporting thread, and panics without one) behind the SDK's
//! batch span processor, which exports from its own thread: an export never blocks the
//! engine. Spans are exported at `INFO` and above.
//!
//! Configuration: `[telemetry]` in `george.toml` ([`Telemetry`]), else the standard
//! variables `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT` (used as is) and
//! `OTEL_EXPORTER_OTLP_ENDPOINT` (`/v1/traces` appended), `OTEL_EXPORTER_OTLP_HEADERS`,
//! `OTEL_EXPORTER_OTLP_TIMEOUT`, `OTEL_BSP_*` (batching) and `OTEL_SDK_DISABLED`.

use opentelemetry::trace::TracerProvider as _;
use opentelemetry_otlp::{Protocol, WithExportConfig as _};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;
use tracing_subscriber::Layer as _;
use tracing_subscriber::filter::LevelFilter;

use crate::config::Telemetry;

/// The instrumentation scope named in every exported span.
const SCOPE: &str = "george";

/// An installed trace pipeline; [`Traces::shutdown`] exports what is still buffered.
#[derive(Debug)]
pub(crate) struct Traces {
    provider: SdkTracerProvider,
}

/// Whether traces are wanted: a `[telemetry]` section, or an OTLP endpoint variable,
/// and `OTEL_SDK_DISABLED` not `true`.
fn wanted(config: Option<&Telemetry>) -> bool {
    let set = |var: &str| std::env::var(var).is_ok_and(|v| !v.trim().is_empty());
    let disabled = std::env::var("OTEL_SDK_DISABLED").is_ok_and(|v| v.trim() == "true");
    !disabled
        && (config.is_some()
            || set("OTEL_EXPORTER_OTLP_ENDPOINT")
            || set("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT"))
}

/// The tracer provider exporting to `config`'s endpoint (or the variables' endpoint).
///
/// # Errors
/// An invalid endpoint, or the HTTP client could not be built.
pub(crate) fn provider(config: &Telemetry) -> Result<SdkTracerProvider, String> {
    let mut exporter = opentelemetry_otlp::SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary);
    if let Some(base) = config.endpoint.as_deref().filter(|e| !e.trim().is_empty()) {
        // The configured endpoint is a base URL, like `OTEL_EXPORTER_OTLP_ENDPOINT`.
        let url = format!("{}/v1/traces", base.trim().trim_end_matches('/'));
        exporter = exporter.with_endpoint(url);
    }
    let exporter = exporter
        .build()
        .map_err(|e| format!("telemetry.endpoint: {e}"))?;
    let name = config.service_name.clone().unwrap_or_else(|| SCOPE.into());
    Ok(SdkTracerProvider::builder()
        .with_batch_exporter(exporter)
        .with_resource(Resource::builder().with_service_name(name).build())
        .build())
}

/// The `tracing` layer that turns spans (`INFO` and above) into OpenTelemetry spans of
/// `provider`.
pub(crate) fn layer<S>(provider: &SdkTracerProvider) -> impl tracing_subscriber::Layer<S>
where
    S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
{
    tracing_opentelemetry::layer()
        .with_tracer(provider.tracer(SCOPE))
        .with_filter(LevelFilter::INFO)
}

impl Traces {
    /// The trace pipeline when traces are wanted (see the module doc), else `None`.
    ///
    /// # Errors
    /// The exporter could not be built.
    pub(crate) fn from_config(config: Option<&Telemetry>) -> Result<Option<Traces>, String> {
        if !wanted(config) {
            return Ok(None);
        }
        let default = Telemetry::default();
        let provider = provider(config.unwrap_or(&default))?;
        Ok(Some(Traces { provider }))
    }

    /// The `tracing` layer exporting to this pipeline.
    pub(crate) fn layer<S>(&self) -> impl tracing_subscriber::Layer<S>
    where
        S: tracing::Subscriber + for<'a> tracing_subscriber::registry::LookupSpan<'a>,
    {
        layer(&self.provider)
    }

    /// Exports the spans still buffered and stops the exporter (blocking: up to the
    /// export timeout; call it off the async workers).
    pub(crate) fn shutdown(self) {
        if let Err(e) = self.provider.shutdown() {
            eprintln!("george: exporting the last traces: {e}");
        }
    }
}

#[cfg(test)]
#[path = "otel_tests.rs"]
mod tests;
