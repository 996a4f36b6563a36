//! OTLP export settings from the standard OpenTelemetry variables, resolved as the
//! specification defines them (signal-specific variables win over general ones; a general
//! HTTP endpoint gets `/v1/traces` or `/v1/metrics` appended, a signal's own endpoint is used
//! as it is), and which GenAI conventions version llmtap speaks
//! (`OTEL_SEMCONV_STABILITY_OPT_IN`).
//!
//! Errors name the variable (or `--otlp-endpoint`). Header values are secrets: they are
//! held in [`Secret`] and never printed.

use std::time::Duration;

use rustls::pki_types::CertificateDer;

use super::ConfigError;
use crate::cli::OtelEnv;
use crate::wire::percent_decode;

/// The OTLP transport (`OTEL_EXPORTER_OTLP_PROTOCOL`, OTLP exporter specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Protocol {
    /// `grpc`: OTLP over gRPC (tonic), to the endpoint as given.
    Grpc,
    /// `http/protobuf` (the default): protobuf bodies POSTed to `…/v1/traces` or
    /// `…/v1/metrics`.
    HttpProtobuf,
}

/// A value that must never be printed: `Debug` shows `*****`.
#[derive(Clone, PartialEq, Eq)]
pub struct Secret(pub String);

impl std::fmt::Debug for Secret {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("*****")
    }
}

/// Where and how one signal (spans, or metrics) is exported, resolved from the `OTEL_*`
/// variables and `--otlp-endpoint` ([`from_env`], [`metrics_from_env`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// gRPC or HTTP/protobuf; the signal's variable wins over the general one.
    pub protocol: Protocol,
    /// `OTEL_EXPORTER_OTLP_[SIGNAL_]COMPRESSION=gzip`: export requests are gzip-compressed.
    pub gzip: bool,
    /// Full URL the exporter sends to (`…/v1/traces` or `…/v1/metrics` for HTTP; the server
    /// for gRPC).
    pub endpoint: String,
    /// Headers sent with every export request (`OTEL_EXPORTER_OTLP_[SIGNAL_]HEADERS`): names
    /// lowercase, values percent-decoded and kept secret.
    pub headers: Vec<(String, Secret)>,
    /// Export timeout per request (`OTEL_EXPORTER_OTLP_[SIGNAL_]TIMEOUT`, given in
    /// milliseconds; default 10 s).
    pub timeout: Duration,
    /// Extra roots for an `https://` collector (`OTEL_EXPORTER_OTLP_CERTIFICATE`, read and
    /// parsed when the configuration is).
    pub extra_roots: Vec<CertificateDer<'static>>,
    /// The platform's roots, read once by [`Config::from_args`](super::Config::from_args)
    /// for every TLS client llmtap has.
    pub system_roots: Vec<CertificateDer<'static>>,
    /// The resource's `service.name`: `OTEL_SERVICE_NAME`, else `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`, else `llmtap`.
    pub service_name: String,
    /// `OTEL_RESOURCE_ATTRIBUTES` pairs, `service.name` excluded.
    pub resource: Vec<(String, String)>,
}

fn nonempty(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// The OTLP signal a configuration is for: its path under a general endpoint and the
/// signal-specific variables that win over the general ones (OTLP exporter specification,
/// "Configuration Options").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Signal {
    /// Spans: `/v1/traces`, `OTEL_EXPORTER_OTLP_TRACES_*`.
    Traces,
    /// Metrics: `/v1/metrics`, `OTEL_EXPORTER_OTLP_METRICS_*`.
    Metrics,
}

/// One signal's variables, with their names for errors.
struct SignalVars<'a> {
    path: &'static str,
    endpoint: (&'static str, &'a Option<String>),
    protocol: (&'static str, &'a Option<String>),
    headers: (&'static str, &'a Option<String>),
    timeout: (&'static str, &'a Option<String>),
    certificate: &'a Option<std::path::PathBuf>,
    certificate_var: &'static str,
    compression: (&'static str, &'a Option<String>),
}

impl Signal {
    fn vars(self, env: &OtelEnv) -> SignalVars<'_> {
        match self {
            Signal::Traces => SignalVars {
                path: "/v1/traces",
                endpoint: (
                    "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT",
                    &env.otel_exporter_otlp_traces_endpoint,
                ),
                protocol: (
                    "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
                    &env.otel_exporter_otlp_traces_protocol,
                ),
                headers: (
                    "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
                    &env.otel_exporter_otlp_traces_headers,
                ),
                timeout: (
                    "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT",
                    &env.otel_exporter_otlp_traces_timeout,
                ),
                certificate: &env.otel_exporter_otlp_traces_certificate,
                certificate_var: "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE",
                compression: (
                    "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION",
                    &env.otel_exporter_otlp_traces_compression,
                ),
            },
            Signal::Metrics => SignalVars {
                path: "/v1/metrics",
                endpoint: (
                    "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT",
                    &env.otel_exporter_otlp_metrics_endpoint,
                ),
                protocol: (
                    "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL",
                    &env.otel_exporter_otlp_metrics_protocol,
                ),
                headers: (
                    "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
                    &env.otel_exporter_otlp_metrics_headers,
                ),
                timeout: (
                    "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT",
                    &env.otel_exporter_otlp_metrics_timeout,
                ),
                certificate: &env.otel_exporter_otlp_metrics_certificate,
                certificate_var: "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE",
                compression: (
                    "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION",
                    &env.otel_exporter_otlp_metrics_compression,
                ),
            },
        }
    }
}

fn disabled(env: &OtelEnv) -> bool {
    nonempty(&env.otel_sdk_disabled).is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// The span export configuration. `None` when export is off: no endpoint,
/// `OTEL_SDK_DISABLED=true` or `OTEL_TRACES_EXPORTER=none`.
pub fn from_env(flag: Option<&str>, env: &OtelEnv) -> Result<Option<OtlpConfig>, ConfigError> {
    if disabled(env) {
        return Ok(None);
    }
    match nonempty(&env.otel_traces_exporter) {
        None | Some("otlp") => {}
        Some("none") => return Ok(None),
        Some(other) => {
            return Err(ConfigError::new(
                "OTEL_TRACES_EXPORTER",
                format!("'{other}' is not supported (otlp or none)"),
            ));
        }
    }
    resolve(Signal::Traces, flag, env, false)
}

/// How metric exports aggregate over time
/// (`OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`, OTLP metrics exporter specification).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// `cumulative` (the default): every export carries totals since start; a failed export
    /// loses nothing, the next one carries it.
    Cumulative,
    /// `delta`: each export carries what changed since the last one; a failed export loses
    /// its interval.
    Delta,
    /// `lowmemory`: delta for counters and histograms, cumulative for up-down counters.
    LowMemory,
}

/// Where and how OTel metrics are exported ([`metrics_from_env`]).
#[derive(Debug, Clone, PartialEq)]
pub struct MetricsConfig {
    /// The collector, resolved as for spans with the `METRICS` variables and `/v1/metrics`.
    pub otlp: OtlpConfig,
    /// `OTEL_METRIC_EXPORT_INTERVAL` (milliseconds; default 60 s).
    pub interval: Duration,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`.
    pub temporality: Temporality,
}

/// The OTel metrics export configuration. Off (`None`) unless configured:
/// `OTEL_METRICS_EXPORTER=otlp`, or an `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`. The
/// specification's default exporter is `otlp`; llmtap's is none, because `/metrics` already
/// serves every metric and many trace backends (Jaeger, Phoenix) refuse `/v1/metrics`
/// (ARCHITECTURE.md, "Names"). With `otlp` and no endpoint at all, the specification's
/// default endpoint (`http://localhost:4318`, `http://localhost:4317` for gRPC) is used.
pub fn metrics_from_env(
    flag: Option<&str>,
    env: &OtelEnv,
) -> Result<Option<MetricsConfig>, ConfigError> {
    if disabled(env) {
        return Ok(None);
    }
    // A comma-separated list, any case (the SDK environment specification). `prometheus` and
    // `console` are accepted and need nothing more: `/metrics` is always served.
    let mut wanted = None;
    if let Some(list) = nonempty(&env.otel_metrics_exporter) {
        for name in list.split(',').map(|n| n.trim().to_ascii_lowercase()) {
            match name.as_str() {
                "otlp" => wanted = Some(true),
                "none" => return Ok(None),
                "prometheus" | "console" | "" => {}
                other => {
                    return Err(ConfigError::new(
                        "OTEL_METRICS_EXPORTER",
                        format!(
                            "'{other}' is not supported (otlp, prometheus, console or none; \
                             Prometheus metrics are always served on the admin listener's \
                             /metrics)"
                        ),
                    ));
                }
            }
        }
    }
    if !wanted.unwrap_or_else(|| nonempty(&env.otel_exporter_otlp_metrics_endpoint).is_some()) {
        return Ok(None);
    }
    let Some(otlp) = resolve(Signal::Metrics, flag, env, true)? else {
        return Ok(None);
    };
    let interval = match nonempty(&env.otel_metric_export_interval) {
        Some(t) => parse_ms("OTEL_METRIC_EXPORT_INTERVAL", t)?,
        None => Duration::from_secs(60),
    };
    if interval.is_zero() {
        return Err(ConfigError::new(
            "OTEL_METRIC_EXPORT_INTERVAL",
            "must be at least 1 millisecond",
        ));
    }
    let temporality = match nonempty(&env.otel_exporter_otlp_metrics_temporality_preference)
        .map(str::to_ascii_lowercase)
        .as_deref()
    {
        None | Some("cumulative") => Temporality::Cumulative,
        Some("delta") => Temporality::Delta,
        Some("lowmemory") => Temporality::LowMemory,
        Some(other) => {
            return Err(ConfigError::new(
                "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
                format!("'{other}' is not supported (cumulative, delta or lowmemory)"),
            ));
        }
    };
    Ok(Some(MetricsConfig {
        otlp,
        interval,
        temporality,
    }))
}

/// Which GenAI conventions llmtap speaks (`OTEL_SEMCONV_STABILITY_OPT_IN`, "Semantic
/// conventions for generative AI", v1.41: instrumentations keep their version by default
/// and emit the latest experimental one on `gen_ai_latest_experimental`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Conventions {
    /// The default: GenAI conventions v1.41 (the last release in
    /// `open-telemetry/semantic-conventions`), plus the main branch's names for attributes
    /// renamed since, emitted beside the old ones during the transition.
    #[default]
    V1_41,
    /// `gen_ai_latest_experimental`: the main branch of
    /// `open-telemetry/semantic-conventions-genai` only (renamed attributes under their new
    /// names alone; the `gen_ai.client.inference.*` metrics).
    Latest,
}

/// Reads `OTEL_SEMCONV_STABILITY_OPT_IN` (a comma-separated list; other categories' values
/// are ignored).
pub fn conventions(env: &OtelEnv) -> Conventions {
    let latest = nonempty(&env.otel_semconv_stability_opt_in).is_some_and(|list| {
        list.split(',')
            .any(|v| v.trim() == "gen_ai_latest_experimental")
    });
    if latest {
        Conventions::Latest
    } else {
        Conventions::V1_41
    }
}

/// One signal's endpoint, protocol, headers, timeout, roots and resource. `None` when no
/// endpoint is set, unless `default_endpoint` (then the specification's local default).
fn resolve(
    signal: Signal,
    flag: Option<&str>,
    env: &OtelEnv,
    default_endpoint: bool,
) -> Result<Option<OtlpConfig>, ConfigError> {
    let vars = signal.vars(env);
    let (protocol_var, protocol) = match (
        nonempty(vars.protocol.1),
        nonempty(&env.otel_exporter_otlp_protocol),
    ) {
        (Some(p), _) => (vars.protocol.0, p),
        (None, Some(p)) => ("OTEL_EXPORTER_OTLP_PROTOCOL", p),
        (None, None) => ("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf"),
    };
    let protocol = match protocol {
        "grpc" => Protocol::Grpc,
        "http/protobuf" => Protocol::HttpProtobuf,
        other => {
            return Err(ConfigError::new(
                protocol_var,
                format!("'{other}' is not supported (grpc or http/protobuf)"),
            ));
        }
    };
    // The flag stands for the general endpoint: a signal's own endpoint wins over it, and is
    // used as it is.
    let local = match protocol {
        Protocol::Grpc => "http://localhost:4317",
        Protocol::HttpProtobuf => "http://localhost:4318",
    };
    let (var, endpoint, is_base) = if let Some(url) = nonempty(vars.endpoint.1) {
        (vars.endpoint.0, url, false)
    } else if let Some(url) = flag.map(str::trim).filter(|s| !s.is_empty()) {
        ("--otlp-endpoint", url, true)
    } else if let Some(url) = nonempty(&env.otel_exporter_otlp_endpoint) {
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url, true)
    } else if default_endpoint {
        ("OTEL_EXPORTER_OTLP_ENDPOINT", local, true)
    } else {
        return Ok(None);
    };
    if !(endpoint.starts_with("http://") || endpoint.starts_with("https://")) {
        return Err(ConfigError::new(
            var,
            format!("'{endpoint}' must start with http:// or https://"),
        ));
    }
    let endpoint = if is_base && protocol == Protocol::HttpProtobuf {
        format!("{}{}", endpoint.trim_end_matches('/'), vars.path)
    } else {
        endpoint.to_owned()
    };
    let headers = match (
        nonempty(vars.headers.1),
        nonempty(&env.otel_exporter_otlp_headers),
    ) {
        (Some(h), _) => parse_pairs(vars.headers.0, h)?,
        (None, Some(h)) => parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", h)?,
        (None, None) => Vec::new(),
    };
    let timeout = match (
        nonempty(vars.timeout.1),
        nonempty(&env.otel_exporter_otlp_timeout),
    ) {
        (Some(t), _) => parse_ms(vars.timeout.0, t)?,
        (None, Some(t)) => parse_ms("OTEL_EXPORTER_OTLP_TIMEOUT", t)?,
        (None, None) => Duration::from_secs(10),
    };
    let (compression_var, compression) = match (
        nonempty(vars.compression.1),
        nonempty(&env.otel_exporter_otlp_compression),
    ) {
        (Some(c), _) => (vars.compression.0, c),
        (None, Some(c)) => ("OTEL_EXPORTER_OTLP_COMPRESSION", c),
        (None, None) => ("OTEL_EXPORTER_OTLP_COMPRESSION", "none"),
    };
    let gzip = match compression.to_ascii_lowercase().as_str() {
        "gzip" => true,
        "none" => false,
        other => {
            return Err(ConfigError::new(
                compression_var,
                format!("'{other}' is not supported (gzip or none)"),
            ));
        }
    };
    let certificate = match (vars.certificate, &env.otel_exporter_otlp_certificate) {
        (Some(path), _) => Some((vars.certificate_var, path)),
        (None, Some(path)) => Some(("OTEL_EXPORTER_OTLP_CERTIFICATE", path)),
        (None, None) => None,
    };
    let extra_roots = match certificate {
        Some((var, path)) => super::read_roots(var, path)?,
        None => Vec::new(),
    };
    let mut resource = match nonempty(&env.otel_resource_attributes) {
        Some(attrs) => parse_pairs("OTEL_RESOURCE_ATTRIBUTES", attrs)?
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect(),
        None => Vec::new(),
    };
    let from_attrs = resource
        .iter()
        .find(|(k, _)| k == "service.name")
        .map(|(_, v)| v.clone());
    resource.retain(|(k, _)| k != "service.name");
    let service_name = nonempty(&env.otel_service_name)
        .map(str::to_owned)
        .or(from_attrs)
        .unwrap_or_else(|| "llmtap".to_owned());
    Ok(Some(OtlpConfig {
        protocol,
        gzip,
        endpoint,
        headers: headers
            .into_iter()
            .map(|(k, v)| (k.to_ascii_lowercase(), v))
            .collect(),
        timeout,
        extra_roots,
        system_roots: Vec::new(),
        service_name,
        resource,
    }))
}

/// `k=v,k2=v2` with percent-encoded values (the W3C baggage octets the spec uses).
fn parse_pairs(var: &'static str, text: &str) -> Result<Vec<(String, Secret)>, ConfigError> {
    text.split(',')
        .map(str::trim)
        .filter(|item| !item.is_empty())
        .map(|item| {
            let (k, v) = item.split_once('=').ok_or_else(|| {
                ConfigError::new(
                    var,
                    "expected key=value pairs separated by ',' (an entry has no '=')",
                )
            })?;
            let key = percent_decode(k.trim())
                .filter(|k| !k.is_empty())
                .ok_or_else(|| {
                    ConfigError::new(var, "an entry has an empty or badly encoded key")
                })?;
            let value = percent_decode(v.trim()).ok_or_else(|| {
                ConfigError::new(
                    var,
                    format!("the value of '{key}' is badly percent-encoded"),
                )
            })?;
            Ok((key, Secret(value)))
        })
        .collect()
}

fn parse_ms(var: &'static str, text: &str) -> Result<Duration, ConfigError> {
    text.parse::<u64>()
        .map(Duration::from_millis)
        .map_err(|_| ConfigError::new(var, format!("expected milliseconds, got '{text}'")))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> OtelEnv {
        let mut e = OtelEnv::default();
        for (k, v) in pairs {
            let v = Some((*v).to_owned());
            match *k {
                "endpoint" => e.otel_exporter_otlp_endpoint = v,
                "traces_endpoint" => e.otel_exporter_otlp_traces_endpoint = v,
                "protocol" => e.otel_exporter_otlp_protocol = v,
                "traces_protocol" => e.otel_exporter_otlp_traces_protocol = v,
                "headers" => e.otel_exporter_otlp_headers = v,
                "service" => e.otel_service_name = v,
                "resource" => e.otel_resource_attributes = v,
                "disabled" => e.otel_sdk_disabled = v,
                "exporter" => e.otel_traces_exporter = v,
                "metrics_exporter" => e.otel_metrics_exporter = v,
                "metrics_endpoint" => e.otel_exporter_otlp_metrics_endpoint = v,
                "metrics_protocol" => e.otel_exporter_otlp_metrics_protocol = v,
                "metrics_headers" => e.otel_exporter_otlp_metrics_headers = v,
                "interval" => e.otel_metric_export_interval = v,
                "temporality" => e.otel_exporter_otlp_metrics_temporality_preference = v,
                "opt_in" => e.otel_semconv_stability_opt_in = v,
                "compression" => e.otel_exporter_otlp_compression = v,
                "metrics_compression" => e.otel_exporter_otlp_metrics_compression = v,
                "timeout" => e.otel_exporter_otlp_timeout = v,
                other => panic!("unknown key {other}"),
            }
        }
        e
    }

    fn cfg(flag: Option<&str>, pairs: &[(&str, &str)]) -> Option<OtlpConfig> {
        from_env(flag, &env(pairs)).expect("valid")
    }

    #[test]
    fn no_endpoint_or_disabled_means_no_exporter() {
        assert_eq!(cfg(None, &[]), None);
        assert_eq!(
            cfg(None, &[("endpoint", "http://c:4318"), ("disabled", "TRUE")]),
            None
        );
        assert_eq!(
            cfg(None, &[("endpoint", "http://c:4318"), ("exporter", "none")]),
            None
        );
    }

    #[test]
    fn endpoints_follow_the_spec() {
        let http = cfg(None, &[("endpoint", "http://c:4318/")]).expect("on");
        assert_eq!(
            (http.protocol, http.endpoint.as_str()),
            (Protocol::HttpProtobuf, "http://c:4318/v1/traces")
        );
        let traces = cfg(
            None,
            &[
                ("endpoint", "http://x"),
                ("traces_endpoint", "https://c/custom"),
            ],
        )
        .expect("on");
        assert_eq!(traces.endpoint, "https://c/custom");
        let grpc = cfg(None, &[("endpoint", "http://c:4317"), ("protocol", "grpc")]).expect("on");
        assert_eq!(
            (grpc.protocol, grpc.endpoint.as_str()),
            (Protocol::Grpc, "http://c:4317")
        );
        let signal = cfg(
            None,
            &[
                ("endpoint", "http://c"),
                ("protocol", "grpc"),
                ("traces_protocol", "http/protobuf"),
            ],
        );
        assert_eq!(signal.expect("on").protocol, Protocol::HttpProtobuf);
        let flag = cfg(Some("http://f:4318"), &[("endpoint", "http://c:4318")]).expect("on");
        assert_eq!(flag.endpoint, "http://f:4318/v1/traces");
        assert_eq!(flag.timeout, Duration::from_secs(10));
        // The flag stands for the general endpoint: the traces endpoint wins over it.
        let own = cfg(Some("http://f:4318"), &[("traces_endpoint", "http://t/x")]).expect("on");
        assert_eq!(own.endpoint, "http://t/x");
    }

    #[test]
    fn headers_and_resource_are_percent_decoded_and_service_name_wins() {
        let c = cfg(
            None,
            &[
                ("endpoint", "http://c"),
                ("headers", "Authorization=Bearer%20tok,x-tenant=a"),
                (
                    "resource",
                    "service.name=from-attrs,deployment.environment=prod%2Feu",
                ),
                ("service", "agents"),
                ("timeout", "2500"),
            ],
        )
        .expect("on");
        assert_eq!(
            c.headers[0],
            ("authorization".to_owned(), Secret("Bearer tok".into()))
        );
        assert_eq!(format!("{:?}", c.headers[0].1), "*****");
        assert_eq!(c.service_name, "agents");
        assert_eq!(
            c.resource,
            vec![("deployment.environment".to_owned(), "prod/eu".to_owned())]
        );
        assert_eq!(c.timeout, Duration::from_millis(2500));
        let only_attrs = cfg(
            None,
            &[("endpoint", "http://c"), ("resource", "service.name=x")],
        )
        .expect("on");
        assert_eq!(only_attrs.service_name, "x");
    }

    #[test]
    fn bad_values_name_their_variable() {
        let err = |pairs: &[(&str, &str)]| from_env(None, &env(pairs)).expect_err("invalid").flag;
        assert_eq!(
            err(&[("endpoint", "http://c"), ("protocol", "http/json")]),
            "OTEL_EXPORTER_OTLP_PROTOCOL"
        );
        assert_eq!(
            err(&[("endpoint", "c:4317")]),
            "OTEL_EXPORTER_OTLP_ENDPOINT"
        );
        assert_eq!(
            err(&[("endpoint", "http://c"), ("headers", "novalue")]),
            "OTEL_EXPORTER_OTLP_HEADERS"
        );
        assert_eq!(
            err(&[("endpoint", "http://c"), ("timeout", "10s")]),
            "OTEL_EXPORTER_OTLP_TIMEOUT"
        );
        assert_eq!(err(&[("exporter", "zipkin")]), "OTEL_TRACES_EXPORTER");
        let flag = from_env(Some("collector:4317"), &OtelEnv::default()).expect_err("no scheme");
        assert_eq!(flag.flag, "--otlp-endpoint");
    }

    fn metrics(flag: Option<&str>, pairs: &[(&str, &str)]) -> Option<MetricsConfig> {
        metrics_from_env(flag, &env(pairs)).expect("valid")
    }

    #[test]
    fn metrics_are_off_unless_configured_and_resolve_like_spans() {
        // A trace endpoint alone does not turn metrics on.
        assert_eq!(metrics(None, &[("endpoint", "http://c:4318")]), None);
        assert_eq!(metrics(Some("http://c:4318"), &[]), None);
        let on = metrics(
            None,
            &[("endpoint", "http://c:4318/"), ("metrics_exporter", "otlp")],
        )
        .expect("on");
        assert_eq!(on.otlp.endpoint, "http://c:4318/v1/metrics");
        assert_eq!(on.interval, Duration::from_secs(60));
        assert_eq!(on.temporality, Temporality::Cumulative);
        // The flag is the general endpoint for metrics too; a metrics endpoint wins over it.
        let flag = metrics(
            Some("http://f:4318"),
            &[("metrics_exporter", "OTLP,prometheus")],
        )
        .expect("on");
        assert_eq!(flag.otlp.endpoint, "http://f:4318/v1/metrics");
        let own = metrics(Some("http://f:4318"), &[("metrics_endpoint", "http://m/x")]);
        assert_eq!(own.expect("on").otlp.endpoint, "http://m/x");
        // `prometheus` alone is served by /metrics: nothing to export.
        assert_eq!(
            metrics(
                None,
                &[("endpoint", "http://c"), ("metrics_exporter", "prometheus")]
            ),
            None
        );
        // A metrics endpoint is used as it is and turns export on by itself.
        let own = metrics(
            None,
            &[
                ("endpoint", "http://c:4318"),
                ("metrics_endpoint", "https://m/custom"),
                ("metrics_protocol", "grpc"),
                ("headers", "a=1"),
                ("metrics_headers", "b=2"),
                ("interval", "250"),
                ("temporality", "Delta"),
            ],
        )
        .expect("on");
        assert_eq!(own.otlp.endpoint, "https://m/custom");
        assert_eq!(own.otlp.protocol, Protocol::Grpc);
        assert_eq!(own.otlp.headers, vec![("b".to_owned(), Secret("2".into()))]);
        assert_eq!(own.interval, Duration::from_millis(250));
        assert_eq!(own.temporality, Temporality::Delta);
        // `otlp` with no endpoint anywhere: the specification's local default.
        let local = metrics(None, &[("metrics_exporter", "otlp")]).expect("on");
        assert_eq!(local.otlp.endpoint, "http://localhost:4318/v1/metrics");
        let off = [
            ("metrics_endpoint", "http://m"),
            ("metrics_exporter", "none"),
        ];
        assert_eq!(metrics(None, &off), None);
        assert_eq!(
            metrics(
                None,
                &[("metrics_endpoint", "http://m"), ("disabled", "true")]
            ),
            None
        );
    }

    #[test]
    fn bad_metrics_values_name_their_variable() {
        let err = |pairs: &[(&str, &str)]| {
            metrics_from_env(None, &env(pairs))
                .expect_err("invalid")
                .flag
        };
        assert_eq!(
            err(&[("metrics_exporter", "otlp,zipkin")]),
            "OTEL_METRICS_EXPORTER"
        );
        assert_eq!(
            err(&[("metrics_endpoint", "http://m"), ("interval", "1m")]),
            "OTEL_METRIC_EXPORT_INTERVAL"
        );
        assert_eq!(
            err(&[("metrics_endpoint", "http://m"), ("interval", "0")]),
            "OTEL_METRIC_EXPORT_INTERVAL"
        );
        assert_eq!(
            err(&[("metrics_endpoint", "http://m"), ("temporality", "both")]),
            "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE"
        );
        assert_eq!(
            err(&[
                ("metrics_endpoint", "http://m"),
                ("metrics_protocol", "json")
            ]),
            "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL"
        );
    }

    #[test]
    fn compression_is_per_signal_and_named_in_errors() {
        assert!(!cfg(None, &[("endpoint", "http://c")]).expect("on").gzip);
        let both = [("endpoint", "http://c"), ("compression", "GZIP")];
        assert!(cfg(None, &both).expect("on").gzip);
        let metrics_only = [
            ("endpoint", "http://c"),
            ("metrics_exporter", "otlp"),
            ("metrics_compression", "gzip"),
        ];
        assert!(!cfg(None, &metrics_only).expect("on").gzip);
        assert!(metrics(None, &metrics_only).expect("on").otlp.gzip);
        let bad = [
            ("endpoint", "http://c"),
            ("metrics_exporter", "otlp"),
            ("metrics_compression", "zstd"),
        ];
        assert_eq!(
            metrics_from_env(None, &env(&bad)).expect_err("zstd").flag,
            "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION"
        );
    }

    #[test]
    fn the_latest_genai_conventions_are_opt_in() {
        assert_eq!(conventions(&env(&[])), Conventions::V1_41);
        assert_eq!(
            conventions(&env(&[("opt_in", "http, gen_ai_latest_experimental")])),
            Conventions::Latest
        );
        assert_eq!(
            conventions(&env(&[("opt_in", "gen_ai_latest")])),
            Conventions::V1_41
        );
    }
}
