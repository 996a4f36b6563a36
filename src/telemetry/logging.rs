//! llmtap's own diagnostics: on stderr (`--log-format text|json`) and, when an OTLP endpoint
//! is set, as spans of the `llmtap-internal` scope through tracing-opentelemetry.
//!
//! The stderr filter keeps hudsucker, hyper, rustls and h2 at error level: their spans carry
//! full request URIs (Gemini puts API keys in `?key=`), so those spans must never be enabled,
//! and their per-connection chatter is noise. `LLMTAP_LOG` (EnvFilter syntax) overrides.
//! The OpenTelemetry layer takes llmtap's own targets only, never the export path's
//! (`llmtap::export`): an export failure must not become a span to export.

use std::io::IsTerminal as _;

use opentelemetry_sdk::trace::SdkTracer;
use tracing_subscriber::{
    EnvFilter, Layer as _,
    filter::{LevelFilter, Targets},
    fmt,
    layer::SubscriberExt as _,
    util::SubscriberInitExt as _,
};

use crate::config::LogFormat;

pub const DEFAULT_FILTER: &str =
    "info,hudsucker=error,hyper=error,hyper_util=error,h2=error,rustls=error,tokio_graceful=warn";

/// Installs the global subscriber. Idempotent: later calls (tests) are no-ops.
pub fn init(format: LogFormat, filter: Option<&str>, tracer: Option<SdkTracer>) {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let stderr = match format {
        LogFormat::Text => fmt::layer()
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(std::io::stderr)
            .with_filter(filter)
            .boxed(),
    };
    let otel = tracer.map(|tracer| {
        tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(
                Targets::new()
                    .with_target("llmtap", LevelFilter::INFO)
                    .with_target("llmtap::export", LevelFilter::OFF),
            )
    });
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(otel)
        .try_init();
}
