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

/// hudsucker is off here: its errors reach stderr through [`HudsuckerLayer`], rate-limited.
pub const DEFAULT_FILTER: &str =
    "info,hudsucker=off,hyper=error,hyper_util=error,h2=error,rustls=error,tokio_graceful=warn";

/// Where a client that does not trust llmtap is pointed to.
#[derive(Debug, Clone)]
pub struct TrustHint {
    pub ca_cert: std::path::PathBuf,
    pub bundle: std::path::PathBuf,
}

/// Watches hudsucker's "Failed to establish TLS connection" errors: when a client rejects
/// llmtap's certificate (an alert like `UnknownCA`), says once a minute which variable fixes
/// it, instead of leaving the user with a bare TLS error per connection.
/// hudsucker logs ordinary client-side events at ERROR, once per connection ("HTTPS connect
/// error: Connection reset by peer" whenever an agent exits). This layer takes its errors
/// instead of the stderr layer: a client hanging up after a completed handshake is dropped,
/// a failed handshake that points at trust becomes the hint, and anything else is logged at
/// warn, at most once per 10 s with a count of what was held back.
struct HudsuckerLayer {
    hint: Option<TrustHint>,
    hint_limit: crate::telemetry::RateLimit,
    other_limit: crate::telemetry::RateLimit,
}

#[derive(Default)]
struct Fields {
    message: String,
    error: String,
}

impl tracing::field::Visit for Fields {
    fn record_debug(&mut self, field: &tracing::field::Field, value: &dyn std::fmt::Debug) {
        match field.name() {
            "message" => self.message = format!("{value:?}"),
            "error" => self.error = format!("{value:?}"),
            _ => {}
        }
    }

    fn record_error(
        &mut self,
        field: &tracing::field::Field,
        value: &(dyn std::error::Error + 'static),
    ) {
        if field.name() == "error" {
            self.error = value.to_string();
        }
    }
}

/// How a failed TLS handshake points at trust: `Some(true)` the client refused the
/// certificate with an alert (rustls clients such as Codex, Python); `Some(false)` it hung
/// up mid-handshake, which is how Node clients (Claude Code, Gemini CLI) react to an unknown
/// CA; `None` anything else.
pub fn untrusted_ca(error: &str) -> Option<bool> {
    let alerts = [
        "UnknownCA",
        "BadCertificate",
        "CertificateUnknown",
        "UnsupportedCertificate",
        "AccessDenied",
    ];
    let hang_ups = [
        "reset by peer",
        "handshake eof",
        "UnexpectedEof",
        "peer closed connection",
        "Broken pipe",
    ];
    if alerts.iter().any(|a| error.contains(a)) {
        Some(true)
    } else if hang_ups.iter().any(|a| error.contains(a)) {
        Some(false)
    } else {
        None
    }
}

impl<S: tracing::Subscriber> tracing_subscriber::Layer<S> for HudsuckerLayer {
    fn on_event(
        &self,
        event: &tracing::Event<'_>,
        _ctx: tracing_subscriber::layer::Context<'_, S>,
    ) {
        if !event.metadata().target().starts_with("hudsucker") {
            return;
        }
        let mut fields = Fields::default();
        event.record(&mut fields);
        let handshake = fields.message.contains("TLS connection");
        match (handshake, untrusted_ca(&fields.error)) {
            (true, Some(refused)) => self.trust_hint(refused, &fields.error),
            // A client that hung up after its handshake: an agent exiting, not an error.
            (false, Some(false)) => {}
            _ => {
                if let Some(suppressed) = self.other_limit.allow() {
                    tracing::warn!(
                        target: "llmtap::proxy",
                        error = %fields.error,
                        suppressed,
                        "{}",
                        fields.message
                    );
                }
            }
        }
    }
}

impl HudsuckerLayer {
    fn trust_hint(&self, refused: bool, error: &str) {
        let Some(hint) = &self.hint else { return };
        let lead = if refused {
            "a client rejected llmtap's certificate: it does not trust llmtap's CA."
        } else {
            "a client hung up during the TLS handshake, which is how Node clients reject a \
             certificate: it probably does not trust llmtap's CA."
        };
        if let Some(suppressed) = self.hint_limit.allow() {
            tracing::warn!(
                target: "llmtap::trust",
                alert = %error,
                suppressed,
                "{lead} Node agents (Claude Code, Gemini CLI) need NODE_EXTRA_CA_CERTS={}; Python \
                 SDKs and Codex need SSL_CERT_FILE / REQUESTS_CA_BUNDLE / CODEX_CA_CERTIFICATE={} \
                 (system roots + llmtap's CA). `eval \"$(llmtap env)\"` sets them all, or run \
                 the agent with `llmtap wrap -- <agent>`",
                hint.ca_cert.display(),
                hint.bundle.display(),
            );
        }
    }
}

/// Installs the global subscriber. Idempotent: later calls (tests) are no-ops.
pub fn init(format: LogFormat, filter: Option<&str>, tracer: Option<SdkTracer>) {
    init_with_hint(format, filter, tracer, None);
}

/// [`init`], plus the trust hint for clients that reject llmtap's certificate.
pub fn init_with_hint(
    format: LogFormat,
    filter: Option<&str>,
    tracer: Option<SdkTracer>,
    hint: Option<TrustHint>,
) {
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
    let limit = |secs| crate::telemetry::RateLimit::new(std::time::Duration::from_secs(secs));
    let hudsucker = HudsuckerLayer {
        hint,
        hint_limit: limit(60),
        other_limit: limit(10),
    }
    .with_filter(Targets::new().with_target("hudsucker", LevelFilter::ERROR));
    let _ = tracing_subscriber::registry()
        .with(stderr)
        .with(otel)
        .with(hudsucker)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn handshake_failures_that_mean_an_untrusted_ca() {
        assert_eq!(untrusted_ca("received fatal alert: UnknownCA"), Some(true));
        assert_eq!(
            untrusted_ca("received fatal alert: BadCertificate"),
            Some(true)
        );
        assert_eq!(
            untrusted_ca("Connection reset by peer (os error 104)"),
            Some(false)
        );
        assert_eq!(untrusted_ca("tls handshake eof"), Some(false));
        assert_eq!(
            untrusted_ca("received corrupt message of type InvalidContentType"),
            None
        );
    }
}
