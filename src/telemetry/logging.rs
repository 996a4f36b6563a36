//! llmtap's own diagnostics on stderr (`--log-format text|json`).
//!
//! The filter keeps hudsucker, hyper, rustls and h2 at error level: their spans carry full
//! request URIs (Gemini puts API keys in `?key=`), so those spans must never be enabled, and
//! their per-connection chatter is noise. `LLMTAP_LOG` (EnvFilter syntax) overrides.

use std::io::IsTerminal as _;

use tracing_subscriber::{EnvFilter, fmt, layer::SubscriberExt as _, util::SubscriberInitExt as _};

use crate::config::LogFormat;

pub const DEFAULT_FILTER: &str =
    "info,hudsucker=error,hyper=error,hyper_util=error,h2=error,rustls=error,tokio_graceful=warn";

/// Installs the global subscriber. Idempotent: later calls (tests) are no-ops.
pub fn init(format: LogFormat, filter: Option<&str>) {
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER));
    let registry = tracing_subscriber::registry().with(filter);
    let _ = match format {
        LogFormat::Text => registry
            .with(
                fmt::layer()
                    .with_ansi(std::io::stderr().is_terminal())
                    .with_writer(std::io::stderr),
            )
            .try_init(),
        LogFormat::Json => registry
            .with(
                fmt::layer()
                    .json()
                    .with_current_span(false)
                    .with_span_list(false)
                    .with_writer(std::io::stderr),
            )
            .try_init(),
    };
}
