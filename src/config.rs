//! Validated configuration: what `cli` parsed, checked and turned into typed values.
//!
//! Owns: every check that can fail before traffic flows (addresses, `--resolve`,
//! `--upstream-ca`, the CA directory), each failing with one line that names the flag
//! (exit code 2). Everything downstream takes `&Config` and never reads the environment.

pub mod auth;
pub mod otlp;

use std::{
    collections::HashMap,
    net::{IpAddr, SocketAddr},
    path::Path,
    sync::Arc,
    time::Duration,
};

use rustls::{
    ClientConfig, RootCertStore,
    crypto::CryptoProvider,
    pki_types::{CertificateDer, pem::PemObject as _},
};

use crate::{
    ca::CaFiles,
    caller::Attribution,
    cli::{self, Exports, RunArgs},
    pricing::PriceTable,
    providers::Providers,
};

/// `(host, port)` → address to dial instead, like curl's `--resolve`. Hosts as
/// [`normalize_host`](crate::wire::normalize_host) spells them.
pub type ResolveMap = HashMap<(String, u16), SocketAddr>;

// The output formats are the CLI's vocabulary; configuration carries them on. (Declared in
// `cli`, so that `cli` needs nothing from `config` and the two do not import each other.)
pub use crate::cli::{CallsFormat, LogFormat};

/// Per-call memory bounds (ARCHITECTURE.md, invariant 5).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Request body kept for parsing; larger requests are forwarded and recorded without
    /// request facts.
    pub request_body: usize,
    /// Non-streamed response body kept for parsing.
    pub response_body: usize,
    /// One SSE line, and one event's joined data.
    pub sse_line: usize,
    /// Decoded bytes per compressed body.
    pub decoded_body: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            request_body: 32 << 20,
            response_body: 32 << 20,
            sse_line: 512 << 10,
            decoded_body: 64 << 20,
        }
    }
}

/// How long llmtap waits, each bounded (each a flag; defaults in `cli`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A connection or tunnel that has not sent its request head or ClientHello.
    pub client_header: Duration,
    /// Keep-alive between requests on a client connection.
    pub idle: Duration,
    /// Upstream TCP connect plus TLS handshake.
    pub connect: Duration,
    /// Upstream response head.
    pub response: Duration,
    /// No upstream byte mid-body or during a WebSocket call.
    pub stream_idle: Duration,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            client_header: Duration::from_secs(30),
            idle: Duration::from_secs(600),
            connect: Duration::from_secs(10),
            response: Duration::from_secs(600),
            stream_idle: Duration::from_secs(300),
        }
    }
}

/// A configuration error: which flag, and what is wrong with it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{flag}: {message}")]
pub struct ConfigError {
    /// The flag or variable at fault as the user spells it (`--listen`,
    /// `OTEL_EXPORTER_OTLP_HEADERS`).
    pub flag: &'static str,
    /// What is wrong, lowercase and without a trailing period (never a secret's value).
    pub message: String,
}

impl ConfigError {
    /// The error for `flag`, displayed as `{flag}: {message}`.
    pub fn new(flag: &'static str, message: impl Into<String>) -> Self {
        ConfigError {
            flag,
            message: message.into(),
        }
    }
}

/// Everything llmtap runs with, validated ([`Config::from_args`]). Cloned once per
/// listener task; the data path reaches it through `exchange::Observing`.
#[derive(Debug, Clone)]
pub struct Config {
    /// `--listen`: the proxy's address (port 0: any free port). Beyond loopback only with
    /// `--auth-file` or `--allow-open-proxy`.
    pub listen: SocketAddr,
    /// `--admin`: the address of `/metrics`, `/healthz`, `/readyz` and `/ca.pem`.
    pub admin: SocketAddr,
    /// The CA loaded from (or created in) `--ca-dir`.
    pub ca: CaFiles,
    /// The provider table (`--providers`, `--intercept`, `--no-intercept` over the embedded
    /// one): which hosts are decrypted and how their calls are read.
    pub providers: Arc<Providers>,
    /// `--upstream-ca`: extra roots trusted for upstream TLS (DER); empty when not given.
    pub upstream_roots: Vec<CertificateDer<'static>>,
    /// The platform's roots, read once ([`system_roots`]), llmtap's own CA left out so that
    /// it never vouches for an upstream or a collector.
    pub system_roots: Vec<CertificateDer<'static>>,
    /// `--resolve`: where to dial instead, per `(host, port)`.
    pub resolve: ResolveMap,
    /// `--team` / `--user`: the attribution of every call that names no other (blank values
    /// are none).
    pub attribution: Attribution,
    /// `--calls`: what is written on stdout per call.
    pub calls: CallsFormat,
    /// `--log-format`: how diagnostics are written on stderr.
    pub log_format: LogFormat,
    /// `LLMTAP_LOG`: the diagnostics filter (tracing `EnvFilter` syntax); `None`: the
    /// default filter of `telemetry::logging`.
    pub log_filter: Option<String>,
    /// `--drain-seconds`: how long shutdown waits for in-flight calls.
    pub drain: Duration,
    /// Per-call memory bounds; always [`Limits::default`] (no flag sets them).
    pub limits: Limits,
    /// `None`: no exporter at all (the embedded default: call lines + `/metrics`).
    pub otlp: Option<otlp::OtlpConfig>,
    /// `None`: no OTel metrics export (the default; `/metrics` is always served).
    pub otlp_metrics: Option<otlp::MetricsConfig>,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN`: the GenAI conventions version spans and metrics use.
    pub conventions: otlp::Conventions,
    /// `--otlp-diagnostics`: also export llmtap's own diagnostic spans (`llmtap.start`,
    /// `llmtap.parse_failure`, warnings) under the service `<service.name>-diagnostics`.
    pub otlp_diagnostics: bool,
    /// `--capture-content` and `--capture-max-bytes`.
    pub capture: Capture,
    /// The embedded price table plus `--prices` overrides.
    pub prices: PriceTable,
    /// `--label-cap`: distinct values kept per traffic-derived label (model, tool, team,
    /// user); at least 1 (a 0 given is raised to 1).
    pub label_cap: usize,
    /// Clients admitted to the proxy; `None`: everyone who can reach it.
    pub auth: Option<auth::AuthFile>,
    /// `--calls-file`: also append every call as a JSON line here.
    pub calls_file: Option<CallsFile>,
    /// `--db` and `--retain`; `None`: `--db none`. Opened by `llmtap::start` (a path that
    /// cannot be a database exits 2 naming `--db`).
    pub history: Option<HistoryConfig>,
    /// `--admin-token`: what the web UI asks for; `None`: the UI is served only on a
    /// loopback admin address.
    pub admin_token: Option<otlp::Secret>,
    /// The five `--*-timeout` flags, each longer than zero.
    pub timeouts: Timeouts,
    /// `--allow-destination`: exceptions to the destination policy.
    pub allow_destinations: Vec<crate::policy::Allow>,
    /// `--observe-budget`: bytes all calls together may hold for observation; at least
    /// 1 MiB (a smaller value is raised to it).
    pub observe_budget: usize,
}

/// Where the call history is and how long it keeps calls (`--db`, `--retain`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HistoryConfig {
    /// The database file (`--db`, default `~/.llmtap/llmtap.db`).
    pub path: std::path::PathBuf,
    /// `--retain DAYS`: calls older than this are deleted in the background; `None` (0
    /// days) keeps everything.
    pub retain: Option<Duration>,
    /// `--db` was given: a path that cannot be a database stops the start. The default path
    /// (`~/.llmtap/llmtap.db`) that cannot be opened (a read-only home) leaves llmtap running
    /// without a history, and the banner says why.
    pub explicit: bool,
}

/// `--calls-file`, opened for appending when the configuration is read.
#[derive(Debug, Clone)]
pub struct CallsFile {
    /// The path as given, for messages.
    pub path: std::path::PathBuf,
    /// The file, opened with `O_APPEND` (created if missing): each call line is one write,
    /// so lines from one process never interleave.
    pub file: Arc<std::fs::File>,
}

/// Opt-in capture of prompt and completion content into spans and the history.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Capture {
    /// `--capture-content`: prompts, completions and tool definitions go into spans and the
    /// history's content table (never call lines or metrics). Off by default.
    pub enabled: bool,
    /// `--capture-max-bytes`: cap of each content attribute, in bytes (default 16 KiB).
    pub max_bytes: usize,
}

impl Config {
    /// Validates raw arguments. Creates the CA directory (and CA) if needed, and writes the
    /// root bundle next to it.
    pub fn from_args(args: RunArgs) -> Result<Config, ConfigError> {
        let listen = parse_addr("--listen", &args.listen)?;
        let auth = args
            .auth_file
            .as_deref()
            .map(auth::AuthFile::load)
            .transpose()?;
        if !listen.ip().is_loopback() && auth.is_none() && !args.allow_open_proxy {
            return Err(ConfigError::new(
                "--listen",
                format!(
                    "{listen} is reachable beyond this machine: give --auth-file FILE to admit \
                     clients, or --allow-open-proxy if the network is trusted"
                ),
            ));
        }
        let admin = parse_addr("--admin", &args.admin)?;
        let timeouts = timeouts(&args)?;
        let ca_dir = args.ca_dir.unwrap_or_else(cli::default_ca_dir);
        let ca = load_ca(&ca_dir, args.allow_insecure_key)?;
        let platform = system_roots();
        ca.write_bundle(&platform)
            .map_err(|e| ConfigError::new("--ca-dir", e.to_string()))?;
        // Our own CA must never vouch for an upstream or a collector, even if the user's
        // SSL_CERT_FILE already points at our bundle.
        let system_roots: Vec<_> = platform
            .into_iter()
            .filter(|der| der.as_ref() != ca.cert_der.as_ref())
            .collect();
        let providers_file = match &args.providers {
            Some(path) => Some((
                path.display().to_string(),
                std::fs::read_to_string(path).map_err(|e| {
                    ConfigError::new("--providers", format!("{}: {e}", path.display()))
                })?,
            )),
            None => None,
        };
        let providers = Providers::new(
            providers_file
                .as_ref()
                .map(|(p, t)| (p.as_str(), t.as_str())),
            &args.intercept,
            &args.no_intercept,
        )
        .map_err(|e| {
            let flag = match e.entry.as_str() {
                "--intercept" => "--intercept",
                "--no-intercept" => "--no-intercept",
                _ => "--providers",
            };
            ConfigError::new(flag, e.to_string())
        })?;
        let upstream_roots = match &args.upstream_ca {
            Some(path) => read_roots("--upstream-ca", path)?,
            None => Vec::new(),
        };
        let mut resolve = ResolveMap::new();
        for entry in &args.resolve {
            let (host, port, addr) = parse_resolve(entry)?;
            resolve.insert((host, port), addr);
        }
        let otlp = otlp::from_env(args.otlp_endpoint.as_deref(), &args.otel)?.map(|otlp| {
            otlp::OtlpConfig {
                system_roots: system_roots.clone(),
                ..otlp
            }
        });
        let otlp_metrics =
            otlp::metrics_from_env(args.otlp_endpoint.as_deref(), &args.otel)?.map(|m| {
                otlp::MetricsConfig {
                    otlp: otlp::OtlpConfig {
                        system_roots: system_roots.clone(),
                        ..m.otlp
                    },
                    ..m
                }
            });
        let history = match args.db.as_deref().map(str::trim) {
            Some("none") => None,
            path => {
                let given = path.filter(|p| !p.is_empty());
                Some(HistoryConfig {
                    explicit: given.is_some(),
                    path: given.map_or_else(cli::default_db, std::path::PathBuf::from),
                    retain: (args.retain > 0)
                        .then(|| Duration::from_secs(u64::from(args.retain) * 86_400)),
                })
            }
        };
        let nonempty = |s: Option<String>| s.filter(|s| !s.trim().is_empty());
        Ok(Config {
            listen,
            admin,
            ca,
            providers: Arc::new(providers),
            upstream_roots,
            system_roots,
            resolve,
            attribution: Attribution {
                team: nonempty(args.team),
                user: nonempty(args.user),
            },
            calls: args.calls,
            log_format: args.log_format,
            log_filter: args.log_filter,
            drain: Duration::from_secs(args.drain_seconds),
            limits: Limits::default(),
            otlp,
            otlp_metrics,
            history,
            admin_token: match args.admin_token.filter(|t| !t.trim().is_empty()) {
                // The token travels in a header and a cookie: visible ASCII without `;`, `,`
                // or quotes, and long enough to guess at no price.
                Some(t)
                    if t.len() < 16
                        || !t
                            .bytes()
                            .all(|b| b.is_ascii_graphic() && !b";,\"\\".contains(&b)) =>
                {
                    return Err(ConfigError::new(
                        "--admin-token",
                        "use at least 16 visible ASCII characters without ; , \" or \\ \
                         (for example: openssl rand -hex 24)",
                    ));
                }
                token => token.map(otlp::Secret),
            },
            conventions: otlp::conventions(&args.otel),
            otlp_diagnostics: args.otlp_diagnostics,
            capture: Capture {
                enabled: args.capture_content,
                max_bytes: args.capture_max_bytes,
            },
            auth,
            calls_file: match &args.calls_file {
                // Opened here, once, so that a bad path exits 2 naming the flag.
                Some(path) => {
                    let file = std::fs::OpenOptions::new()
                        .create(true)
                        .append(true)
                        .open(path)
                        .map_err(|e| {
                            ConfigError::new(
                                "--calls-file",
                                format!("cannot append to {}: {e}", path.display()),
                            )
                        })?;
                    Some(CallsFile {
                        path: path.clone(),
                        file: Arc::new(file),
                    })
                }
                None => None,
            },
            prices: load_prices(args.prices.as_deref())?,
            label_cap: args.label_cap.max(1),
            timeouts,
            allow_destinations: args
                .allow_destination
                .iter()
                .map(|rule| {
                    crate::policy::Allow::parse(rule)
                        .map_err(|e| ConfigError::new("--allow-destination", e))
                })
                .collect::<Result<_, _>>()?,
            observe_budget: usize::try_from(args.observe_budget.as_u64())
                .unwrap_or(usize::MAX)
                .max(1 << 20),
        })
    }
}

fn timeouts(args: &RunArgs) -> Result<Timeouts, ConfigError> {
    let check = |flag: &'static str, d: Duration| {
        if d.is_zero() {
            Err(ConfigError::new(flag, "must be longer than zero"))
        } else {
            Ok(d)
        }
    };
    Ok(Timeouts {
        client_header: check("--client-header-timeout", args.client_header_timeout)?,
        idle: check("--idle-timeout", args.idle_timeout)?,
        connect: check("--connect-timeout", args.connect_timeout)?,
        response: check("--response-timeout", args.response_timeout)?,
        stream_idle: check("--stream-idle-timeout", args.stream_idle_timeout)?,
    })
}

/// `http://HOST:PORT` for clients of a proxy listening on `listen` (a wildcard address is
/// reached on loopback).
pub fn proxy_url(listen: SocketAddr) -> String {
    let host = if listen.ip().is_unspecified() {
        SocketAddr::new(std::net::Ipv4Addr::LOCALHOST.into(), listen.port())
    } else {
        listen
    };
    format!("http://{host}")
}

/// What a client of the llmtap at `proxy_url` needs, with the CA in `ca_dir` (made if
/// missing) and the root bundle written next to it. `allow_insecure_key` as in [`load_ca`].
pub fn client_exports(
    proxy_url: String,
    ca_dir: Option<&Path>,
    allow_insecure_key: bool,
) -> Result<Exports, ConfigError> {
    let dir = ca_dir.map_or_else(cli::default_ca_dir, Path::to_path_buf);
    let ca = load_ca(&dir, allow_insecure_key)?;
    let bundle = ca
        .write_bundle(&system_roots())
        .map_err(|e| ConfigError::new("--ca-dir", e.to_string()))?;
    Ok(Exports {
        proxy_url,
        ca_cert: ca.cert_path(),
        bundle,
    })
}

/// The embedded table, with the `--prices` file (litellm's format) on top.
pub fn load_prices(path: Option<&Path>) -> Result<PriceTable, ConfigError> {
    let table = PriceTable::embedded();
    let Some(path) = path else { return Ok(table) };
    let text = std::fs::read_to_string(path).map_err(|e| {
        ConfigError::new("--prices", format!("cannot read {}: {e}", path.display()))
    })?;
    table
        .with_overrides(&path.display().to_string(), &text)
        .map_err(|e| ConfigError::new("--prices", e.to_string()))
}

/// Loads (or creates) the CA, naming `--ca-dir` on failure. A CA key others can read or
/// write, or a CA directory others can write to, is such a failure unless
/// `allow_insecure_key` (`--allow-insecure-key`; callers without that flag pass `false`).
pub fn load_ca(dir: &Path, allow_insecure_key: bool) -> Result<CaFiles, ConfigError> {
    CaFiles::load_or_create(dir, allow_insecure_key)
        .map_err(|e| ConfigError::new("--ca-dir", e.to_string()))
}

/// The platform's trusted roots (honours SSL_CERT_FILE / SSL_CERT_DIR like OpenSSL does).
/// Read once per command: [`Config::from_args`] keeps them for every TLS client.
pub fn system_roots() -> Vec<CertificateDer<'static>> {
    rustls_native_certs::load_native_certs().certs
}

/// The TLS client config of every connection llmtap makes (upstreams, the collector): the
/// webpki roots, the platform's (`system_roots`; odd ones, such as expired or unsupported
/// certificates, are skipped rather than refusing to start) and `extra_roots`
/// (`--upstream-ca`, the collector's certificate), which must all be valid.
pub fn tls_client_config(
    provider: Arc<CryptoProvider>,
    system_roots: &[CertificateDer<'static>],
    extra_roots: &[CertificateDer<'static>],
) -> Result<ClientConfig, rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    let _ = roots.add_parsable_certificates(system_roots.iter().cloned());
    for der in extra_roots {
        roots.add(der.clone())?;
    }
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

fn parse_addr(flag: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value.parse().map_err(|_| {
        ConfigError::new(
            flag,
            format!("expected IP:PORT (like 127.0.0.1:8080), got '{value}'"),
        )
    })
}

fn parse_resolve(entry: &str) -> Result<(String, u16, SocketAddr), ConfigError> {
    let bad = |why: &str| {
        ConfigError::new(
            "--resolve",
            format!("expected HOST:PORT:ADDR, got '{entry}' ({why})"),
        )
    };
    let mut parts = entry.splitn(3, ':');
    let (Some(host), Some(port), Some(addr)) = (parts.next(), parts.next(), parts.next()) else {
        return Err(bad("three parts separated by ':'"));
    };
    let host = crate::wire::normalize_host(host.trim());
    if host.is_empty() {
        return Err(bad("empty host"));
    }
    let port: u16 = port.parse().map_err(|_| bad("port is not a number"))?;
    // ADDR is IP or IP:PORT (curl accepts only an IP; a port lets tests use ephemeral ports).
    let ip = addr.trim_start_matches('[').trim_end_matches(']');
    let addr = match ip.parse::<IpAddr>() {
        Ok(ip) => SocketAddr::new(ip, port),
        Err(_) => addr
            .parse()
            .map_err(|_| bad("ADDR is not an IP or IP:PORT"))?,
    };
    Ok((host, port, addr))
}

/// Reads a PEM file of roots (`--upstream-ca`, `OTEL_EXPORTER_OTLP_CERTIFICATE`), naming
/// `flag` when it cannot be read, is not PEM or holds no certificate.
fn read_roots(
    flag: &'static str,
    path: &Path,
) -> Result<Vec<CertificateDer<'static>>, ConfigError> {
    let bytes = std::fs::read(path)
        .map_err(|e| ConfigError::new(flag, format!("cannot read {}: {e}", path.display())))?;
    let certs: Vec<_> = CertificateDer::pem_slice_iter(&bytes)
        .collect::<Result<_, _>>()
        .map_err(|e| ConfigError::new(flag, format!("{} is not PEM: {e:?}", path.display())))?;
    if certs.is_empty() {
        return Err(ConfigError::new(
            flag,
            format!("{} holds no certificate", path.display()),
        ));
    }
    Ok(certs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_accepts_ip_or_ip_port_and_names_the_flag() {
        let (host, port, addr) = parse_resolve("API.anthropic.com:443:127.0.0.1").expect("ip");
        assert_eq!(
            (host.as_str(), port, addr),
            (
                "api.anthropic.com",
                443,
                "127.0.0.1:443".parse().expect("a")
            )
        );
        let (_, _, addr) = parse_resolve("api.openai.com:443:127.0.0.1:8443").expect("ip:port");
        assert_eq!(addr, "127.0.0.1:8443".parse().expect("addr"));
        let (_, _, addr) = parse_resolve("h:443:[::1]:9").expect("v6");
        assert_eq!(addr, "[::1]:9".parse().expect("addr"));
        for bad in [
            "api.anthropic.com",
            "h:x:127.0.0.1",
            "h:443:nowhere",
            ":443:127.0.0.1",
        ] {
            let err = parse_resolve(bad).expect_err(bad);
            assert_eq!(err.flag, "--resolve");
            assert!(err.to_string().starts_with("--resolve: "), "{err}");
        }
    }

    #[test]
    fn upstream_ca_must_be_readable_pem() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing =
            read_roots("--upstream-ca", &dir.path().join("nope.pem")).expect_err("missing");
        assert_eq!(missing.flag, "--upstream-ca");
        let empty = dir.path().join("empty.pem");
        std::fs::write(&empty, "not a certificate\n").expect("write");
        assert_eq!(
            read_roots("--upstream-ca", &empty).expect_err("empty").flag,
            "--upstream-ca"
        );
    }

    #[test]
    fn an_insecure_ca_key_is_a_ca_dir_error_unless_allowed() {
        use clap::Parser as _;
        let root = tempfile::tempdir().expect("tempdir");
        let dir = root.path().join("ca");
        let args = |extra: &[&str]| {
            let mut argv = vec!["llmtap", "--ca-dir", dir.to_str().expect("utf-8 path")];
            argv.extend_from_slice(extra);
            cli::Cli::try_parse_from(argv).expect("args").run
        };
        Config::from_args(args(&[])).expect("first run creates the CA");
        let key = dir.join(crate::ca::CA_KEY_FILE);
        std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .expect("chmod");
        let err = Config::from_args(args(&[])).expect_err("insecure key refused");
        assert_eq!(err.flag, "--ca-dir");
        assert!(err.message.contains("chmod 600"), "{err}");
        Config::from_args(args(&["--allow-insecure-key"])).expect("allowed by the flag");
        let err = load_ca(&dir, false).expect_err("load_ca refuses it too");
        assert_eq!(err.flag, "--ca-dir");
    }
}
