//! OTLP export settings from the standard OpenTelemetry variables, resolved as the
//! specification defines them (signal-specific variables win over general ones; a general
//! HTTP endpoint gets `/v1/traces` appended, a traces endpoint is used as it is).
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
    /// `http/protobuf` (the default): protobuf bodies POSTed to `…/v1/traces`.
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

/// Where and how spans are exported, resolved from the `OTEL_*` variables and
/// `--otlp-endpoint` ([`from_env`]).
#[derive(Debug, Clone, PartialEq)]
pub struct OtlpConfig {
    /// gRPC or HTTP/protobuf; the traces-specific variable wins over the general one.
    pub protocol: Protocol,
    /// Full URL the exporter sends to (`…/v1/traces` for HTTP; the server for gRPC).
    pub endpoint: String,
    /// Headers sent with every export request (`OTEL_EXPORTER_OTLP_[TRACES_]HEADERS`): names
    /// lowercase, values percent-decoded and kept secret.
    pub headers: Vec<(String, Secret)>,
    /// Export timeout per request (`OTEL_EXPORTER_OTLP_[TRACES_]TIMEOUT`, given in
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

/// `None` when export is off: no endpoint, `OTEL_SDK_DISABLED=true` or
/// `OTEL_TRACES_EXPORTER=none`.
pub fn from_env(flag: Option<&str>, env: &OtelEnv) -> Result<Option<OtlpConfig>, ConfigError> {
    if nonempty(&env.otel_sdk_disabled).is_some_and(|v| v.eq_ignore_ascii_case("true")) {
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
    let (protocol_var, protocol) = match (
        nonempty(&env.otel_exporter_otlp_traces_protocol),
        nonempty(&env.otel_exporter_otlp_protocol),
    ) {
        (Some(p), _) => ("OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", p),
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
    // The flag stands for the general endpoint; a traces endpoint is used as it is.
    let (var, endpoint, is_base) = if let Some(url) = flag.map(str::trim).filter(|s| !s.is_empty())
    {
        ("--otlp-endpoint", url, true)
    } else if let Some(url) = nonempty(&env.otel_exporter_otlp_traces_endpoint) {
        ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", url, false)
    } else if let Some(url) = nonempty(&env.otel_exporter_otlp_endpoint) {
        ("OTEL_EXPORTER_OTLP_ENDPOINT", url, true)
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
        format!("{}/v1/traces", endpoint.trim_end_matches('/'))
    } else {
        endpoint.to_owned()
    };
    let headers = match (
        nonempty(&env.otel_exporter_otlp_traces_headers),
        nonempty(&env.otel_exporter_otlp_headers),
    ) {
        (Some(h), _) => parse_pairs("OTEL_EXPORTER_OTLP_TRACES_HEADERS", h)?,
        (None, Some(h)) => parse_pairs("OTEL_EXPORTER_OTLP_HEADERS", h)?,
        (None, None) => Vec::new(),
    };
    let timeout = match (
        nonempty(&env.otel_exporter_otlp_traces_timeout),
        nonempty(&env.otel_exporter_otlp_timeout),
    ) {
        (Some(t), _) => parse_ms("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", t)?,
        (None, Some(t)) => parse_ms("OTEL_EXPORTER_OTLP_TIMEOUT", t)?,
        (None, None) => Duration::from_secs(10),
    };
    let certificate = env
        .otel_exporter_otlp_traces_certificate
        .clone()
        .or_else(|| env.otel_exporter_otlp_certificate.clone());
    let extra_roots = match &certificate {
        Some(path) => super::read_roots("OTEL_EXPORTER_OTLP_CERTIFICATE", path)?,
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
}
