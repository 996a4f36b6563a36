//! Command-line flags and environment variables, as the user typed them.
//!
//! Owns: the raw, unvalidated shape of every command and flag, and the text llmtap prints
//! for users to paste (the export lines). Validation into typed values is `config`'s job;
//! nothing downstream reads the environment.

use std::{path::PathBuf, time::Duration};

use clap::{Args, Parser, Subcommand, ValueEnum};

/// What `--calls` writes on stdout for every call (default `text`): `text`, one line for
/// people watching a terminal; `json`, one JSON object per line with every field of the
/// call's record (`telemetry::calls::json`); `off`, nothing (metrics, spans and
/// `--calls-file` are unaffected). `config` re-exports it.
#[allow(
    missing_docs,
    reason = "clap shows a ValueEnum variant's doc comment as the value's help, which would \
              change `--help`; the values are documented here on the enum"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum CallsFormat {
    Text,
    Json,
    Off,
}

/// How llmtap's own diagnostics are written on stderr (`--log-format`, default `text`):
/// `text`, human-readable lines; `json`, one JSON object per event (for log shippers).
/// The filter is `LLMTAP_LOG` (tracing `EnvFilter` syntax). `config` re-exports it.
#[allow(
    missing_docs,
    reason = "clap shows a ValueEnum variant's doc comment as the value's help, which would \
              change `--help`; the values are documented here on the enum"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum LogFormat {
    Text,
    Json,
}

/// The whole command line: a subcommand, or the `run` flags given directly (`llmtap
/// [OPTIONS]` runs the proxy). Parse with `Cli::parse()`; `config` validates what it holds.
#[derive(Debug, Parser)]
#[command(
    name = "llmtap",
    version,
    about = "See what your AI coding agents send to LLM APIs: a transparent HTTPS proxy that \
             turns every call into a call line, Prometheus metrics and OpenTelemetry spans",
    args_conflicts_with_subcommands = true
)]
pub struct Cli {
    /// The subcommand; `None` when only `run` flags (or nothing) were given, which means
    /// `run` with [`Cli::run`].
    #[command(subcommand)]
    pub command: Option<Command>,
    /// `llmtap [OPTIONS]` is `llmtap run [OPTIONS]`.
    #[command(flatten)]
    pub run: RunArgs,
}

/// llmtap's subcommands; each variant's doc comment is its `--help` text.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the proxy in the foreground (the default command); Ctrl-C or SIGTERM drains and exits.
    Run(Box<RunArgs>),
    /// Print the environment a client needs to go through llmtap.
    Env(EnvArgs),
    /// Where llmtap's CA is, or its PEM.
    Ca(CaArgs),
    /// Run CMD (claude, codex, gemini, a script) through llmtap with exactly the environment
    /// it needs, then print a summary of its calls, tokens and cost on stderr.
    Wrap(Box<WrapArgs>),
    /// Exit 0 if the llmtap at the admin address answers `/healthz` (container healthchecks).
    Healthcheck(HealthcheckArgs),
    /// Cost and tokens by day, team, user, client and model (or by session, agent, tool:
    /// `--by`), from the history (`--db`) or a `--calls-file`.
    Report(ReportArgs),
    /// Delete calls from the history (`--db`): all of them, those before `--before`, or only
    /// their captured content (`--content`).
    Purge(PurgeArgs),
}

/// Flags of `llmtap purge`.
#[derive(Debug, Args)]
pub struct PurgeArgs {
    /// The history [default: ~/.llmtap/llmtap.db].
    #[arg(long, env = "LLMTAP_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// Delete only the captured content (prompts, completions, tool definitions); the
    /// calls' numbers stay.
    #[arg(long)]
    pub content: bool,
    /// Only calls that started before DATE (`2026-11-01`, or RFC 3339 `2026-11-01T12:00:00Z`,
    /// UTC).
    #[arg(long, value_name = "DATE", value_parser = parse_date)]
    pub before: Option<std::time::SystemTime>,
}

/// `2026-11-01` (midnight UTC) or an RFC 3339 time.
pub fn parse_date(text: &str) -> Result<std::time::SystemTime, String> {
    let text = text.trim();
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_owned()
    };
    humantime::parse_rfc3339_weak(&full)
        .map_err(|e| format!("'{text}' is not a date (2026-11-01) or RFC 3339 time: {e}"))
}

/// Flags of `llmtap report`.
#[derive(Debug, Args)]
pub struct ReportArgs {
    /// JSON call lines (`--calls-file`, or `--calls json` output; `-` for standard input);
    /// without it, the history (`--db`).
    #[arg(value_name = "FILE")]
    pub file: Option<PathBuf>,
    /// The history to read when no FILE is given [default: ~/.llmtap/llmtap.db].
    #[arg(long, env = "LLMTAP_DB", value_name = "PATH")]
    pub db: Option<PathBuf>,
    /// The tables to print, in this order (repeat the flag or separate with commas);
    /// default: day, team, user, client, model.
    #[arg(long, value_name = "DIMENSION", value_enum, value_delimiter = ',')]
    pub by: Vec<Dimension>,
}

/// A table of `llmtap report` (`--by`), spelled as the flag takes it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum, strum::IntoStaticStr)]
#[strum(serialize_all = "snake_case")]
pub enum Dimension {
    /// By UTC day of the call's start.
    Day,
    /// By team.
    Team,
    /// By user.
    User,
    /// By client (agent or SDK).
    Client,
    /// By model.
    Model,
    /// By agent session (`conversation_id`): calls, cost, tokens, cache hit ratio, cache
    /// breaks, tool time, subagents, duration.
    Session,
    /// By agent (`main`, each subagent's name).
    Agent,
    /// By tool: runs, failures, total, p50 and p95 time.
    Tool,
}

/// Flags of `llmtap healthcheck`.
#[derive(Debug, Args)]
pub struct HealthcheckArgs {
    /// The admin address to ask (0.0.0.0 means this host).
    #[arg(long, env = "LLMTAP_ADMIN", default_value = "127.0.0.1:9464")]
    pub admin: String,
}

/// Flags of `llmtap wrap`: the proxy's own flags plus where to send CMD and how to
/// summarise its calls.
#[derive(Debug, Args)]
pub struct WrapArgs {
    /// Use this running llmtap (e.g. http://127.0.0.1:8080) instead of starting one; its CA
    /// directory is `--ca-dir`. Without it llmtap runs in-process on free ports.
    #[arg(long, value_name = "URL")]
    pub proxy: Option<String>,
    /// The summary printed when CMD ends.
    #[arg(long, value_enum, default_value_t = SummaryFormat::Text)]
    pub summary: SummaryFormat,
    /// Open the web UI in a browser (`xdg-open`, or `open` on macOS) while CMD runs, and
    /// print its address: the run's calls appear live, beside the history.
    #[arg(long)]
    pub ui: bool,
    /// The proxy's options (the in-process llmtap always listens on free loopback ports,
    /// and prints no call lines: CMD owns stdout).
    #[command(flatten)]
    pub run: RunArgs,
    /// The command to run, after `--`.
    #[arg(last = true, required = true, value_name = "CMD")]
    pub cmd: Vec<String>,
}

/// What `llmtap wrap --summary` prints on stderr when CMD ends (default `text`): `text`,
/// the totals and one line per model (`wrap::Summary::text`); `json`, the same
/// `wrap::Summary` as one JSON object; `off`, nothing.
#[allow(
    missing_docs,
    reason = "clap shows a ValueEnum variant's doc comment as the value's help, which would \
              change `--help`; the values are documented here on the enum"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum SummaryFormat {
    Text,
    Json,
    Off,
}

/// Flags of the proxy (`llmtap run`, bare `llmtap`, and the in-process proxy of `llmtap
/// wrap`), as typed: each field's doc comment is its `--help` line, and README.md's flags
/// table lists them with their environment variables and defaults. `config::Config`
/// validates them (addresses, files, durations, sizes).
#[derive(Debug, Clone, Args)]
pub struct RunArgs {
    /// Proxy address (HTTP CONNECT).
    #[arg(
        short = 'l',
        long,
        env = "LLMTAP_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,
    /// Admin address: /metrics /healthz /readyz /ca.pem.
    #[arg(long, env = "LLMTAP_ADMIN", default_value = "127.0.0.1:9464")]
    pub admin: String,
    /// Directory of ca.pem + ca-key.pem (0600), made on first run [default: ~/.llmtap].
    #[arg(long, env = "LLMTAP_CA_DIR", value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
    /// Also intercept HOST_PATTERN (repeatable; `*` within a label): a host no provider
    /// entry names is read as any API under any path prefix. Every host not in the provider
    /// table or here is tunnelled, never decrypted.
    #[arg(
        long = "intercept",
        env = "LLMTAP_INTERCEPT",
        value_name = "HOST_PATTERN",
        value_delimiter = ','
    )]
    pub intercept: Vec<String>,
    /// Do not intercept hosts matching HOST_PATTERN (repeatable), even if the provider table
    /// names them: they are tunnelled blind.
    #[arg(
        long = "no-intercept",
        env = "LLMTAP_NO_INTERCEPT",
        value_name = "HOST_PATTERN",
        value_delimiter = ','
    )]
    pub no_intercept: Vec<String>,
    /// Provider table entries (JSON, the embedded table's shape) that add to it or replace
    /// its entries of the same name: hosts, APIs under path prefixes, price namespaces.
    #[arg(long, env = "LLMTAP_PROVIDERS", value_name = "FILE")]
    pub providers: Option<PathBuf>,
    /// Extra trusted root (PEM) for upstream TLS, on top of the system and webpki roots.
    #[arg(long, env = "LLMTAP_UPSTREAM_CA", value_name = "FILE")]
    pub upstream_ca: Option<PathBuf>,
    /// Send connections for HOST:PORT to ADDR, keeping SNI and certificate checks on HOST
    /// (curl-style; repeatable).
    #[arg(
        long,
        env = "LLMTAP_RESOLVE",
        value_name = "HOST:PORT:ADDR",
        value_delimiter = ','
    )]
    pub resolve: Vec<String>,
    /// Price overrides or additions, in litellm's JSON format (model_prices_and_context_window.json).
    #[arg(long, env = "LLMTAP_PRICES", value_name = "FILE")]
    pub prices: Option<PathBuf>,
    /// Distinct values kept per label taken from traffic (model, tool, team, user); more
    /// become `other` and count in llmtap_label_overflow_total.
    #[arg(
        long,
        env = "LLMTAP_LABEL_CAP",
        value_name = "N",
        default_value_t = 500
    )]
    pub label_cap: usize,
    /// Admit only the clients this file lists (`NAME:sha256:HEX team=T user=U` per line);
    /// others get 407. Required to listen beyond loopback, unless --allow-open-proxy.
    #[arg(long, env = "LLMTAP_AUTH_FILE", value_name = "FILE")]
    pub auth_file: Option<PathBuf>,
    /// Listen beyond loopback without an auth file (an open proxy: trusted networks only).
    #[arg(long, env = "LLMTAP_ALLOW_OPEN_PROXY")]
    pub allow_open_proxy: bool,
    /// Team label for every call.
    #[arg(long, env = "LLMTAP_TEAM", value_name = "NAME")]
    pub team: Option<String>,
    /// User label for every call.
    #[arg(long, env = "LLMTAP_USER", value_name = "NAME")]
    pub user: Option<String>,
    /// One line per finished call on stdout.
    #[arg(long, env = "LLMTAP_CALLS", value_enum, default_value_t = CallsFormat::Text)]
    pub calls: CallsFormat,
    /// Also append every call as a JSON line to FILE (for log shippers; `llmtap report FILE`).
    #[arg(long, env = "LLMTAP_CALLS_FILE", value_name = "FILE")]
    pub calls_file: Option<PathBuf>,
    /// Bearer token the web UI asks for (`Authorization: Bearer …`, or once at
    /// `/login?token=…`); without it the UI is served only on a loopback admin address.
    #[arg(
        long,
        env = "LLMTAP_ADMIN_TOKEN",
        value_name = "TOKEN",
        hide_env_values = true
    )]
    pub admin_token: Option<String>,
    /// The call history, a SQLite database [default: ~/.llmtap/llmtap.db]; `none` keeps no
    /// history.
    #[arg(long, env = "LLMTAP_DB", value_name = "PATH|none")]
    pub db: Option<String>,
    /// Delete calls older than DAYS from the history, in the background; 0 keeps them all.
    #[arg(long, env = "LLMTAP_RETAIN", value_name = "DAYS", default_value_t = 30)]
    pub retain: u32,
    /// Format of llmtap's own diagnostics on stderr.
    #[arg(long, env = "LLMTAP_LOG_FORMAT", value_enum, default_value_t = LogFormat::Text)]
    pub log_format: LogFormat,
    /// How long SIGINT/SIGTERM waits for in-flight calls before exiting.
    #[arg(
        long,
        env = "LLMTAP_DRAIN_SECONDS",
        value_name = "SECONDS",
        default_value_t = 30
    )]
    pub drain_seconds: u64,
    /// Diagnostics filter (tracing EnvFilter syntax).
    #[arg(long, env = "LLMTAP_LOG", hide = true)]
    pub log_filter: Option<String>,
    /// Export spans to this OTLP endpoint; same meaning as OTEL_EXPORTER_OTLP_ENDPOINT, which
    /// it overrides. Without an endpoint no exporter runs.
    #[arg(long, value_name = "URL")]
    pub otlp_endpoint: Option<String>,
    /// Also export llmtap's own diagnostic spans (startup, parse failures, warnings), under the
    /// service name `<service.name>-diagnostics`; off, a GenAI backend sees only calls.
    #[arg(long, env = "LLMTAP_OTLP_DIAGNOSTICS")]
    pub otlp_diagnostics: bool,
    /// Keep prompts, completions and tool definitions, in spans and the history, capped (off:
    /// no content anywhere).
    #[arg(long, env = "LLMTAP_CAPTURE_CONTENT")]
    pub capture_content: bool,
    /// Size cap of each captured content attribute, in bytes.
    #[arg(long, env = "LLMTAP_CAPTURE_MAX_BYTES", value_name = "BYTES", default_value_t = 16 * 1024)]
    pub capture_max_bytes: usize,
    /// Memory llmtap may hold for observing calls, all calls together (request copies,
    /// decode buffers, held WebSocket messages, queued records), e.g. `256MiB`. A call that
    /// would exceed it is relayed unchanged and recorded with what is known.
    #[arg(
        long,
        env = "LLMTAP_OBSERVE_BUDGET",
        value_name = "BYTES",
        default_value = "256MiB"
    )]
    pub observe_budget: bytesize::ByteSize,
    /// Let clients reach a destination the default policy refuses (loopback, link-local,
    /// llmtap's own addresses): an IP network (`10.0.0.0/8`, `127.0.0.1`) or a host, each
    /// with an optional `:PORT` (repeatable).
    #[arg(
        long = "allow-destination",
        env = "LLMTAP_ALLOW_DESTINATION",
        value_name = "CIDR|HOST[:PORT]",
        value_delimiter = ','
    )]
    pub allow_destination: Vec<String>,
    /// Close a connection or tunnel that has not sent its request head or TLS ClientHello
    /// within this time (`30s`, `2m`).
    #[arg(long, env = "LLMTAP_CLIENT_HEADER_TIMEOUT", value_name = "DURATION", default_value = "30s", value_parser = humantime::parse_duration)]
    pub client_header_timeout: Duration,
    /// Close a kept-alive client connection idle this long between requests.
    #[arg(long, env = "LLMTAP_IDLE_TIMEOUT", value_name = "DURATION", default_value = "600s", value_parser = humantime::parse_duration)]
    pub idle_timeout: Duration,
    /// Give up reaching the upstream (TCP and TLS) after this long: 502.
    #[arg(long, env = "LLMTAP_CONNECT_TIMEOUT", value_name = "DURATION", default_value = "10s", value_parser = humantime::parse_duration)]
    pub connect_timeout: Duration,
    /// Give up waiting for the upstream's response head after this long: 504 (non-streamed
    /// calls can take minutes).
    #[arg(long, env = "LLMTAP_RESPONSE_TIMEOUT", value_name = "DURATION", default_value = "600s", value_parser = humantime::parse_duration)]
    pub response_timeout: Duration,
    /// Cut a response body or WebSocket call when the upstream sends no byte for this long.
    #[arg(long, env = "LLMTAP_STREAM_IDLE_TIMEOUT", value_name = "DURATION", default_value = "300s", value_parser = humantime::parse_duration)]
    pub stream_idle_timeout: Duration,
    /// Load a CA key that other users can read (refused by default).
    #[arg(long, env = "LLMTAP_ALLOW_INSECURE_KEY")]
    pub allow_insecure_key: bool,
    /// The standard `OTEL_*` variables, resolved by `config::otlp`.
    #[command(flatten)]
    pub otel: OtelEnv,
}

/// The standard OpenTelemetry SDK variables (also settable as hidden flags of the same name,
/// so tests configure them from argument lists).
#[derive(Debug, Clone, Default, Args)]
pub struct OtelEnv {
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`: the collector's base URL (`http://` or `https://`); for
    /// HTTP/protobuf `/v1/traces` is appended. `--otlp-endpoint` wins over it.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_ENDPOINT", hide = true)]
    pub otel_exporter_otlp_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`: the full traces URL, used as it is; wins over
    /// `OTEL_EXPORTER_OTLP_ENDPOINT`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", hide = true)]
    pub otel_exporter_otlp_traces_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_PROTOCOL`: `http/protobuf` (the default) or `grpc`.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_PROTOCOL", hide = true)]
    pub otel_exporter_otlp_protocol: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_PROTOCOL`: as `OTEL_EXPORTER_OTLP_PROTOCOL`, which it wins
    /// over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL", hide = true)]
    pub otel_exporter_otlp_traces_protocol: Option<String>,
    /// `OTEL_EXPORTER_OTLP_HEADERS`: `key=value,…` with percent-encoded values, sent with every
    /// export request. Secret: its values are never shown (`hide_env_values`) nor logged.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_HEADERS",
        hide = true,
        hide_env_values = true
    )]
    pub otel_exporter_otlp_headers: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_HEADERS`: as `OTEL_EXPORTER_OTLP_HEADERS`, which it wins over.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_TRACES_HEADERS",
        hide = true,
        hide_env_values = true
    )]
    pub otel_exporter_otlp_traces_headers: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TIMEOUT`: the export timeout in milliseconds (default 10000).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TIMEOUT", hide = true)]
    pub otel_exporter_otlp_timeout: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_TIMEOUT`: as `OTEL_EXPORTER_OTLP_TIMEOUT`, which it wins over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", hide = true)]
    pub otel_exporter_otlp_traces_timeout: Option<String>,
    /// `OTEL_EXPORTER_OTLP_CERTIFICATE`: a PEM file of extra roots for an `https://` collector
    /// (the system and webpki roots are always trusted).
    #[arg(long, env = "OTEL_EXPORTER_OTLP_CERTIFICATE", hide = true)]
    pub otel_exporter_otlp_certificate: Option<PathBuf>,
    /// `OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE`: as `OTEL_EXPORTER_OTLP_CERTIFICATE`, which it
    /// wins over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_CERTIFICATE", hide = true)]
    pub otel_exporter_otlp_traces_certificate: Option<PathBuf>,
    /// `OTEL_SERVICE_NAME`: the resource's `service.name`; wins over a `service.name` in
    /// `OTEL_RESOURCE_ATTRIBUTES`; default `llmtap`.
    #[arg(long, env = "OTEL_SERVICE_NAME", hide = true)]
    pub otel_service_name: Option<String>,
    /// `OTEL_RESOURCE_ATTRIBUTES`: `key=value,…` (percent-encoded) resource attributes of every
    /// span.
    #[arg(long, env = "OTEL_RESOURCE_ATTRIBUTES", hide = true)]
    pub otel_resource_attributes: Option<String>,
    /// `OTEL_SDK_DISABLED`: `true` (any case) turns span and OTel metric export off.
    #[arg(long, env = "OTEL_SDK_DISABLED", hide = true)]
    pub otel_sdk_disabled: Option<String>,
    /// `OTEL_TRACES_EXPORTER`: `otlp` (the default) or `none` (no export); anything else is a
    /// configuration error.
    #[arg(long, env = "OTEL_TRACES_EXPORTER", hide = true)]
    pub otel_traces_exporter: Option<String>,
    /// `OTEL_METRICS_EXPORTER`: a comma-separated list, any case; `otlp` turns OTel metrics
    /// export on (to `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`, else the general endpoint with
    /// `/v1/metrics` appended); `none` turns it off; `prometheus` and `console` ask for nothing
    /// more (Prometheus `/metrics` is always served). Unset: off unless a metrics endpoint is set.
    #[arg(long, env = "OTEL_METRICS_EXPORTER", hide = true)]
    pub otel_metrics_exporter: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_ENDPOINT`: the full metrics URL, used as it is; setting it
    /// turns OTel metrics export on.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_ENDPOINT", hide = true)]
    pub otel_exporter_otlp_metrics_endpoint: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_PROTOCOL`: as `OTEL_EXPORTER_OTLP_PROTOCOL`, which it wins
    /// over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_PROTOCOL", hide = true)]
    pub otel_exporter_otlp_metrics_protocol: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_HEADERS`: as `OTEL_EXPORTER_OTLP_HEADERS`, which it wins
    /// over. Secret.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_METRICS_HEADERS",
        hide = true,
        hide_env_values = true
    )]
    pub otel_exporter_otlp_metrics_headers: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_TIMEOUT`: as `OTEL_EXPORTER_OTLP_TIMEOUT`, which it wins over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_TIMEOUT", hide = true)]
    pub otel_exporter_otlp_metrics_timeout: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE`: as `OTEL_EXPORTER_OTLP_CERTIFICATE`, which it
    /// wins over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_CERTIFICATE", hide = true)]
    pub otel_exporter_otlp_metrics_certificate: Option<PathBuf>,
    /// `OTEL_EXPORTER_OTLP_COMPRESSION`: `gzip` or `none` (the default) for export requests.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_COMPRESSION", hide = true)]
    pub otel_exporter_otlp_compression: Option<String>,
    /// `OTEL_EXPORTER_OTLP_TRACES_COMPRESSION`: as `OTEL_EXPORTER_OTLP_COMPRESSION`, which it
    /// wins over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_TRACES_COMPRESSION", hide = true)]
    pub otel_exporter_otlp_traces_compression: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_COMPRESSION`: as `OTEL_EXPORTER_OTLP_COMPRESSION`, which it
    /// wins over.
    #[arg(long, env = "OTEL_EXPORTER_OTLP_METRICS_COMPRESSION", hide = true)]
    pub otel_exporter_otlp_metrics_compression: Option<String>,
    /// `OTEL_METRIC_EXPORT_INTERVAL`: milliseconds between metric exports (default 60000).
    #[arg(long, env = "OTEL_METRIC_EXPORT_INTERVAL", hide = true)]
    pub otel_metric_export_interval: Option<String>,
    /// `OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE`: `cumulative` (the default),
    /// `delta` or `lowmemory`, as the OTLP exporter specification defines them.
    #[arg(
        long,
        env = "OTEL_EXPORTER_OTLP_METRICS_TEMPORALITY_PREFERENCE",
        hide = true
    )]
    pub otel_exporter_otlp_metrics_temporality_preference: Option<String>,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN`: comma-separated; `gen_ai_latest_experimental` switches
    /// spans and metrics from the GenAI conventions v1.41 to their latest names (the
    /// conventions' own transition rule, "Semantic conventions for generative AI").
    #[arg(long, env = "OTEL_SEMCONV_STABILITY_OPT_IN", hide = true)]
    pub otel_semconv_stability_opt_in: Option<String>,
}

/// The syntax of the export lines (`llmtap env --shell`, default `sh`): `sh` (`export
/// NAME=value`, also bash and zsh), `fish` (`set -gx NAME value`), `powershell`
/// (`$env:NAME = 'value'`).
#[allow(
    missing_docs,
    reason = "clap shows a ValueEnum variant's doc comment as the value's help, which would \
              change `--help`; the values are documented here on the enum"
)]
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Shell {
    Sh,
    Fish,
    Powershell,
}

/// Flags of `llmtap env`.
#[derive(Debug, Args)]
pub struct EnvArgs {
    /// Syntax of the lines.
    #[arg(long, value_enum, default_value_t = Shell::Sh)]
    pub shell: Shell,
    /// The proxy address llmtap listens on.
    #[arg(
        short = 'l',
        long,
        env = "LLMTAP_LISTEN",
        default_value = "127.0.0.1:8080"
    )]
    pub listen: String,
    /// CA directory [default: ~/.llmtap].
    #[arg(long, env = "LLMTAP_CA_DIR", value_name = "DIR")]
    pub ca_dir: Option<PathBuf>,
}

/// Flags of `llmtap ca`.
#[derive(Debug, Args)]
pub struct CaArgs {
    /// What to print: the path or the PEM.
    #[command(subcommand)]
    pub action: CaAction,
    /// CA directory [default: ~/.llmtap].
    #[arg(long, env = "LLMTAP_CA_DIR", value_name = "DIR", global = true)]
    pub ca_dir: Option<PathBuf>,
}

/// The subcommands of `llmtap ca`.
#[derive(Debug, Clone, Copy, Subcommand)]
pub enum CaAction {
    /// Print the path of ca.pem.
    Path,
    /// Print the CA certificate (PEM).
    Print,
}

/// The history's default path: `~/.llmtap/llmtap.db`.
pub fn default_db() -> PathBuf {
    default_ca_dir().join("llmtap.db")
}

/// `~/.llmtap`, from `$HOME` (the only place the default is decided).
pub fn default_ca_dir() -> PathBuf {
    #[expect(
        clippy::disallowed_methods,
        reason = "cli is where the environment is read"
    )]
    let home = std::env::var_os("HOME")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("."));
    home.join(".llmtap")
}

/// What a client's environment needs to go through llmtap.
#[derive(Debug, Clone)]
pub struct Exports {
    /// `http://HOST:PORT` of the proxy listener (`HTTPS_PROXY`); a wildcard listen address
    /// is given as loopback (`config::proxy_url`).
    pub proxy_url: String,
    /// llmtap's CA alone: for runtimes that add it to their roots (Node).
    pub ca_cert: PathBuf,
    /// System roots + llmtap's CA: for runtimes whose variable replaces the roots.
    pub bundle: PathBuf,
}

impl Exports {
    /// `(variable, value)` pairs, in the order they are printed.
    pub fn vars(&self) -> Vec<(&'static str, String)> {
        let ca = self.ca_cert.display().to_string();
        let bundle = self.bundle.display().to_string();
        vec![
            ("HTTPS_PROXY", self.proxy_url.clone()),
            ("NODE_EXTRA_CA_CERTS", ca),
            ("SSL_CERT_FILE", bundle.clone()),
            ("REQUESTS_CA_BUNDLE", bundle.clone()),
            // botocore (boto3, the AWS CLI, Bedrock SDKs) reads only this one.
            ("AWS_CA_BUNDLE", bundle.clone()),
            ("CODEX_CA_CERTIFICATE", bundle),
        ]
    }

    /// The lines for `shell`, one per variable.
    pub fn lines(&self, shell: Shell) -> String {
        self.vars()
            .into_iter()
            .map(|(name, value)| match shell {
                Shell::Sh => format!("export {name}={}\n", quote(&value, '\'')),
                Shell::Fish => format!("set -gx {name} {}\n", quote(&value, '\'')),
                Shell::Powershell => format!("$env:{name} = {}\n", quote_powershell(&value)),
            })
            .collect()
    }
}

/// Single-quotes a value for sh and fish when it needs it.
fn quote(value: &str, q: char) -> String {
    let plain = value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || "/._-:@+=,".contains(c));
    if plain && !value.is_empty() {
        return value.to_owned();
    }
    format!("{q}{}{q}", value.replace(q, "'\\''"))
}

fn quote_powershell(value: &str) -> String {
    format!("'{}'", value.replace('\'', "''"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exports(dir: &str) -> Exports {
        Exports {
            proxy_url: "http://127.0.0.1:8080".into(),
            ca_cert: PathBuf::from(dir).join("ca.pem"),
            bundle: PathBuf::from(dir).join("bundle.pem"),
        }
    }

    #[test]
    fn sh_lines_are_plain_when_safe_and_quoted_when_not() {
        let lines = exports("/home/a/.llmtap").lines(Shell::Sh);
        assert!(lines.starts_with("export HTTPS_PROXY=http://127.0.0.1:8080\n"));
        assert!(lines.contains("export NODE_EXTRA_CA_CERTS=/home/a/.llmtap/ca.pem\n"));
        assert!(lines.contains("export CODEX_CA_CERTIFICATE=/home/a/.llmtap/bundle.pem\n"));
        let odd = exports("/tmp/it's here").lines(Shell::Sh);
        assert!(
            odd.contains("export SSL_CERT_FILE='/tmp/it'\\''s here/bundle.pem'\n"),
            "{odd}"
        );
    }

    #[test]
    fn fish_and_powershell_lines() {
        let e = exports("/x");
        assert!(
            e.lines(Shell::Fish)
                .contains("set -gx REQUESTS_CA_BUNDLE /x/bundle.pem\n")
        );
        assert!(
            e.lines(Shell::Powershell)
                .contains("$env:HTTPS_PROXY = 'http://127.0.0.1:8080'\n")
        );
    }

    #[test]
    fn bare_llmtap_means_run() {
        let cli = Cli::try_parse_from(["llmtap", "--listen", "127.0.0.1:0"]).expect("parse");
        assert!(cli.command.is_none());
        assert_eq!(cli.run.listen, "127.0.0.1:0");
        let cli = Cli::try_parse_from(["llmtap", "env", "--shell", "fish"]).expect("parse");
        assert!(matches!(
            cli.command,
            Some(Command::Env(EnvArgs {
                shell: Shell::Fish,
                ..
            }))
        ));
    }
}
