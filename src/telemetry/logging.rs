//! llmtap's own diagnostics: on stderr (`--log-format text|json`) and, when an OTLP endpoint
//! is set, as spans of the `llmtap-internal` scope through tracing-opentelemetry.
//!
//! The stderr filter is the user's (`LLMTAP_LOG`, EnvFilter syntax) or [`DEFAULT_FILTER`],
//! and on top of it, whatever it says, the transport cap ([`CAPPED_TARGETS`]): no span of
//! hudsucker, hyper, h2, rustls, reqwest or tower is ever enabled on stderr, and of their
//! events only warnings and errors pass (hudsucker's own go through [`HudsuckerLayer`]).
//! Their spans carry full request URIs (hudsucker's `proxy` span has `uri`, and Gemini puts
//! API keys in `?key=`), and any llmtap line logged inside one would print it as context, so
//! the cap is not left to the user's filter. llmtap's own lines name paths, never queries.
//! The OpenTelemetry layer takes llmtap's own targets only, never the export path's
//! (`llmtap::export`): an export failure must not become a span to export.

use std::io::IsTerminal as _;

use opentelemetry_sdk::trace::SdkTracer;
use tracing_subscriber::{
    EnvFilter, Layer,
    filter::{FilterExt as _, LevelFilter, Targets},
    fmt::{self, MakeWriter},
    layer::SubscriberExt as _,
    registry::LookupSpan,
    util::SubscriberInitExt as _,
};

use crate::config::LogFormat;

/// hudsucker is off here: its errors reach stderr through [`HudsuckerLayer`], rate-limited.
pub const DEFAULT_FILTER: &str =
    "info,hudsucker=off,hyper=error,hyper_util=error,h2=error,rustls=error,tokio_graceful=warn";

/// Crates (and their submodules) whose spans may carry request URIs or headers: never
/// enabled on stderr, whatever the filter, and only their warnings and errors are shown.
/// hudsucker's events are not shown at all: [`HudsuckerLayer`] turns its errors into
/// llmtap's own lines.
pub const CAPPED_TARGETS: &[&str] = &[
    "hudsucker",
    "hyper",
    "hyper_util",
    "h2",
    "rustls",
    "tokio_rustls",
    "reqwest",
    "tower",
    "tower_http",
    "tonic",
    // tungstenite traces whole handshake requests (headers and query included).
    "tungstenite",
    "tokio_tungstenite",
    "hyper_tungstenite",
];

/// Whether `target` is one of [`CAPPED_TARGETS`] or a module of one (`hyper_util::client`),
/// not merely a crate whose name starts the same.
fn is_capped(target: &str) -> bool {
    CAPPED_TARGETS.iter().any(|krate| is_within(target, krate))
}

/// `target` is `krate` or one of its modules.
fn is_within(target: &str, krate: &str) -> bool {
    target
        .strip_prefix(krate)
        .is_some_and(|rest| rest.is_empty() || rest.starts_with("::"))
}

/// The transport cap, applied after the user's filter: see the module docs.
fn transport_cap(meta: &tracing::Metadata<'_>) -> bool {
    if !is_capped(meta.target()) {
        return true;
    }
    meta.is_event()
        && !is_within(meta.target(), "hudsucker")
        && *meta.level() <= tracing::Level::WARN
}

/// Where a client that does not trust llmtap is pointed to.
#[derive(Debug, Clone)]
pub struct TrustHint {
    /// llmtap's CA alone (`ca.pem`), for `NODE_EXTRA_CA_CERTS`.
    pub ca_cert: std::path::PathBuf,
    /// System roots plus llmtap's CA (`bundle.pem`), for `SSL_CERT_FILE` and the like.
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
    let _ = subscriber(format, filter, tracer, hint).try_init();
}

/// The subscriber [`init_with_hint`] installs: stderr, OpenTelemetry (when there is a
/// tracer) and hudsucker's errors, each with its own filter.
///
/// Every layer has a filter, the absent OpenTelemetry layer too: tracing-subscriber's
/// `Option<Layer>` left at `None` declares itself interested in every callsite, which made the
/// registry build every span no layer wanted (hudsucker's per-request `proxy` span and its
/// children, entered on every poll of a call: ~1 % of llmtap's CPU under load, BENCHMARKS.md,
/// issue 18).
fn subscriber(
    format: LogFormat,
    filter: Option<&str>,
    tracer: Option<SdkTracer>,
    hint: Option<TrustHint>,
) -> impl tracing::Subscriber + Send + Sync + for<'span> LookupSpan<'span> {
    let stderr = stderr_layer(
        format,
        filter,
        std::io::stderr,
        std::io::stderr().is_terminal(),
    );
    let otel = match tracer {
        Some(tracer) => tracing_opentelemetry::layer()
            .with_tracer(tracer)
            .with_filter(
                Targets::new()
                    .with_target("llmtap", LevelFilter::INFO)
                    .with_target("llmtap::export", LevelFilter::OFF),
            )
            .boxed(),
        None => tracing_subscriber::layer::Identity::new()
            .with_filter(LevelFilter::OFF)
            .boxed(),
    };
    let limit = |secs| crate::telemetry::RateLimit::new(std::time::Duration::from_secs(secs));
    let hudsucker = HudsuckerLayer {
        hint,
        hint_limit: limit(60),
        other_limit: limit(10),
    }
    // Errors only, and events only: hudsucker's spans carry URIs and this layer needs none.
    .with_filter(tracing_subscriber::filter::filter_fn(|meta| {
        meta.is_event()
            && is_within(meta.target(), "hudsucker")
            && *meta.level() <= tracing::Level::ERROR
    }));
    tracing_subscriber::registry()
        .with(stderr)
        .with(otel)
        .with(hudsucker)
}

/// The stderr layer: `format` into `writer`, filtered by `filter` (EnvFilter syntax; the
/// default when absent or invalid) and then by the transport cap, which no filter lifts.
fn stderr_layer<S, W>(
    format: LogFormat,
    filter: Option<&str>,
    writer: W,
    ansi: bool,
) -> Box<dyn Layer<S> + Send + Sync>
where
    S: tracing::Subscriber + for<'span> LookupSpan<'span>,
    W: for<'w> MakeWriter<'w> + Send + Sync + 'static,
{
    let filter = EnvFilter::try_new(filter.unwrap_or(DEFAULT_FILTER))
        .unwrap_or_else(|_| EnvFilter::new(DEFAULT_FILTER))
        .and(tracing_subscriber::filter::filter_fn(transport_cap));
    match format {
        LogFormat::Text => fmt::layer()
            .with_ansi(ansi)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
        LogFormat::Json => fmt::layer()
            .json()
            .with_current_span(false)
            .with_span_list(false)
            .with_writer(writer)
            .with_filter(filter)
            .boxed(),
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use tracing::Subscriber as _;

    use super::*;

    /// The metadata of the span `make` creates (the macros need a literal target).
    fn span_metadata(make: fn() -> tracing::Span) -> &'static tracing::Metadata<'static> {
        // Any subscriber that takes every span, so that the span has its metadata.
        let all = tracing_subscriber::registry().with(LevelFilter::TRACE);
        tracing::subscriber::with_default(all, || make().metadata().expect("an enabled span"))
    }

    #[test]
    fn spans_no_layer_wants_are_never_built_with_or_without_a_tracer() {
        let transport: [fn() -> tracing::Span; 3] = [
            || tracing::info_span!(target: "hudsucker::proxy::internal", "proxy"),
            || tracing::trace_span!(target: "h2::proto::connection", "poll"),
            || tracing::debug_span!(target: "some_dependency", "work"),
        ];
        let tracer = || {
            use opentelemetry::trace::TracerProvider as _;
            opentelemetry_sdk::trace::SdkTracerProvider::builder()
                .build()
                .tracer("test")
        };
        for with_tracer in [false, true] {
            let sub = subscriber(LogFormat::Text, None, with_tracer.then(tracer), None);
            for make in transport {
                let meta = span_metadata(make);
                assert!(
                    sub.register_callsite(meta).is_never(),
                    "{} (tracer: {with_tracer})",
                    meta.target()
                );
            }
            // llmtap's own spans stay wanted.
            let own = span_metadata(|| tracing::warn_span!(target: "llmtap::telemetry", "x"));
            assert!(!sub.register_callsite(own).is_never());
        }
    }

    #[test]
    fn transport_spans_and_chatter_never_reach_stderr_whatever_the_filter() {
        let uri =
            "https://generativelanguage.googleapis.com/v1beta/models/m:generateContent?key=SECRET";
        for format in [LogFormat::Text, LogFormat::Json] {
            for user in [
                "trace",
                "debug",
                "hudsucker=trace,hyper_util=trace,reqwest=trace,trace",
            ] {
                let out = Arc::new(Mutex::new(Vec::<u8>::new()));
                let sink = out.clone();
                let writer = move || Captured(sink.clone());
                let subscriber = tracing_subscriber::registry().with(stderr_layer(
                    format,
                    Some(user),
                    writer,
                    false,
                ));
                tracing::subscriber::with_default(subscriber, || {
                    // hudsucker's `proxy` span, as `#[instrument(fields(uri = %req.uri()))]`.
                    let span = tracing::info_span!(
                        target: "hudsucker::proxy::internal",
                        "proxy",
                        uri = %uri,
                    );
                    span.in_scope(|| {
                        tracing::debug!(target: "llmtap::proxy", "own debug line");
                        tracing::trace!(target: "hyper_util::client::legacy", %uri, "connecting");
                        tracing::debug!(target: "reqwest::connect", %uri, "starting");
                        tracing::error!(target: "hudsucker::proxy", %uri, "Failed to forward request");
                    });
                    tracing::warn!(target: "h2::proto", "transport warning");
                    tracing::debug!(target: "hyperactive", "a crate that only starts like hyper");
                });
                let out = String::from_utf8(out.lock().expect("lock").clone()).expect("utf-8");
                let case = format!("{format:?} with {user}: {out}");
                assert!(!out.contains("SECRET"), "{case}");
                assert!(
                    !out.contains("proxy{"),
                    "a hudsucker span was shown: {case}"
                );
                assert!(out.contains("own debug line"), "{case}");
                assert!(out.contains("transport warning"), "{case}");
                assert!(out.contains("only starts like hyper"), "{case}");
            }
        }
    }

    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

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
