//! llmtap: a transparent MITM HTTPS proxy that turns every LLM API call an AI coding agent
//! makes into a call line, Prometheus metrics and an OpenTelemetry span, without
//! changing a byte of the traffic.
//!
//! The flow (ARCHITECTURE.md): `proxy` accepts CONNECTs and decrypts only intercepted hosts;
//! `dialects` recognise LLM calls and parse their bytes; `exchange` holds one call and
//! finishes it exactly once; `telemetry` turns the finished call into every output.
//! `cli` and `config` are the only readers of flags and environment.

pub mod agentloop;
pub mod budget;
pub mod ca;
pub mod caller;
pub mod cli;
pub mod config;
pub mod dialects;
pub mod exchange;
pub mod policy;
pub mod pricing;
pub mod providers;
pub mod proxy;
pub mod report;
pub mod summary;
pub mod telemetry;
pub mod vocab;
pub mod wire;
pub mod wrap;

use std::{
    net::SocketAddr,
    sync::{Arc, atomic::AtomicBool},
    time::{Duration, Instant},
};

use tokio::{
    net::{TcpListener, TcpSocket},
    sync::watch,
    task::JoinHandle,
};

use crate::{
    cli::Exports,
    config::{Config, ConfigError},
    proxy::ProxyError,
    telemetry::{Telemetry, admin::Admin},
};

/// Why [`start`] failed. `main` exits 2 for [`StartError::Config`], 1 for the others.
#[derive(Debug, thiserror::Error)]
pub enum StartError {
    /// Bad configuration found while starting (an address in use): exit code 2.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The metrics registry or the span exporter could not be built (exit code 1).
    #[error("cannot start telemetry: {0}")]
    Telemetry(#[from] telemetry::TelemetryError),
    /// The proxy could not be set up: the CA cannot issue, or upstream TLS cannot be
    /// configured (exit code 1).
    #[error(transparent)]
    Proxy(#[from] ProxyError),
}

/// A running llmtap: its bound addresses and a handle to stop it.
#[derive(Debug)]
pub struct Running {
    /// The address the proxy listens on (the real port when `--listen` asked for port 0).
    pub proxy_addr: SocketAddr,
    /// The address of the admin listener (`/metrics`, `/healthz`, `/readyz`, `/ca.pem`).
    pub admin_addr: SocketAddr,
    /// The telemetry pipeline: metrics, the record subscription (`subscribe`), the drain.
    pub telemetry: Arc<Telemetry>,
    /// The environment a client needs to use this proxy (what the banner prints).
    pub exports: Exports,
    admin: Arc<Admin>,
    stop: watch::Sender<bool>,
    proxy: JoinHandle<Result<(), ProxyError>>,
    admin_task: JoinHandle<()>,
    drain: Duration,
}

/// Binds with `TCP_NODELAY` on the listening socket, which accepted sockets inherit on
/// Linux: hudsucker accepts connections itself and never sets it, and without it a response
/// written as headers then body (every HTTP/2 response, every first SSE event) waits for
/// the client's delayed ACK, about 40 ms (measured: BENCHMARKS.md). Public for its regression
/// test (`tcp_nodelay_on_accepted_sockets`).
pub fn bind(flag: &'static str, addr: SocketAddr) -> Result<TcpListener, ConfigError> {
    let err = |e: std::io::Error| ConfigError::new(flag, format!("cannot listen on {addr}: {e}"));
    let socket = if addr.is_ipv4() {
        TcpSocket::new_v4()
    } else {
        TcpSocket::new_v6()
    }
    .map_err(err)?;
    socket.set_reuseaddr(true).map_err(err)?;
    socket.set_nodelay(true).map_err(err)?;
    socket.bind(addr).map_err(err)?;
    socket.listen(1024).map_err(err)
}

/// Raises the soft limit on open files to the hard limit, as servers do (nginx's
/// `worker_rlimit_nofile`, Envoy's docs): every proxied call holds two descriptors, and the
/// common default soft limit of 1024 caps llmtap at a few hundred concurrent calls.
/// Returns the soft limit now in force (`None` if it cannot be read).
pub fn raise_fd_limit() -> Option<u64> {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    let (soft, hard) = getrlimit(Resource::RLIMIT_NOFILE).ok()?;
    if soft < hard && setrlimit(Resource::RLIMIT_NOFILE, hard, hard).is_ok() {
        return Some(hard);
    }
    Some(soft)
}

/// Starts the proxy and admin listeners; call lines go to `calls_out`.
pub async fn start(
    config: Config,
    calls_out: Box<dyn std::io::Write + Send>,
) -> Result<Running, StartError> {
    // Only aws-lc is compiled in; installing it makes every rustls builder agree.
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    if let Some(limit) = raise_fd_limit() {
        tracing::debug!(limit, "open file limit");
    }
    let listener = bind("--listen", config.listen)?;
    let admin_listener = bind("--admin", config.admin)?;
    let proxy_addr = listener
        .local_addr()
        .map_err(|e| ConfigError::new("--listen", e.to_string()))?;
    let admin_addr = admin_listener
        .local_addr()
        .map_err(|e| ConfigError::new("--admin", e.to_string()))?;
    let telemetry = Telemetry::start(&config, calls_out).map_err(|e| match e {
        // A path that cannot be a database is the user's to fix: exit 2, naming the flag.
        telemetry::TelemetryError::History(e) => {
            StartError::Config(ConfigError::new("--db", e.to_string()))
        }
        other => StartError::Telemetry(other),
    })?;
    let (stop, stopped) = watch::channel(false);
    // Set up before anything is spawned: a proxy that cannot run fails the start.
    let own_addrs = vec![proxy_addr, admin_addr];
    let serving = proxy::prepare(listener, own_addrs, &config, telemetry.clone(), stopped)?;
    let admin = Arc::new(Admin {
        telemetry: telemetry.clone(),
        ca_pem: config.ca.cert_pem.clone(),
        ready: AtomicBool::new(true),
        ui: telemetry::admin::UiAccess::new(
            admin_addr,
            config.admin_token.clone(),
            config
                .history
                .as_ref()
                .filter(|_| telemetry.history.is_some())
                .map(|h| h.path.as_path()),
        ),
    });
    let admin_task = tokio::spawn(telemetry::admin::serve(admin_listener, admin.clone()));
    let proxy = tokio::spawn(serving);
    let exports = Exports {
        proxy_url: config::proxy_url(proxy_addr),
        ca_cert: config.ca.cert_path(),
        bundle: config.ca.bundle_path(),
    };
    Ok(Running {
        proxy_addr,
        admin_addr,
        telemetry,
        exports,
        admin,
        stop,
        proxy,
        admin_task,
        drain: config.drain,
    })
}

impl Running {
    /// Stops accepting, waits for in-flight calls up to the drain period, flushes telemetry.
    /// Returns the number of calls still in flight when the period ran out.
    pub async fn shutdown(self) -> usize {
        self.admin
            .ready
            .store(false, std::sync::atomic::Ordering::SeqCst);
        let deadline = Instant::now() + self.drain;
        let _ = self.stop.send(true);
        match tokio::time::timeout_at(deadline.into(), self.proxy).await {
            Ok(Ok(Err(err))) => tracing::error!(%err, "proxy stopped with an error"),
            Ok(_) => {}
            Err(_) => tracing::warn!("proxy connections did not close within the drain period"),
        }
        let left = self.telemetry.drain(deadline).await;
        if left > 0 {
            tracing::warn!(calls = left, "drain period over; cutting in-flight calls");
        }
        self.telemetry.flush(Duration::from_secs(2)).await;
        self.telemetry.flush_history(Duration::from_secs(2)).await;
        self.telemetry.shutdown_spans(Duration::from_secs(3)).await;
        self.admin_task.abort();
        left
    }

    /// Runs until `shutdown` completes, then drains (the foreground `llmtap run`).
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) -> usize {
        tokio::pin!(shutdown);
        shutdown.await;
        tracing::info!(
            in_flight = self.telemetry.in_flight(),
            "shutting down; draining in-flight calls"
        );
        self.shutdown().await
    }
}

/// Human-readable startup text: addresses and the exports to paste (stderr).
pub fn banner(running: &Running, config: &Config) -> String {
    let hosts = config.providers.intercepted();
    let ui = if running.admin_addr.ip().is_loopback() || config.admin_token.is_some() {
        format!("http://{}/", running.admin_addr)
    } else {
        "not served beyond loopback without --admin-token".to_owned()
    };
    let history = match (&config.history, &running.telemetry.history_unavailable) {
        (None, _) => "off (--db none)".to_owned(),
        (Some(_), Some(why)) => format!("off: {why}"),
        (Some(h), None) => h.path.display().to_string(),
    };
    format!(
        "llmtap {version} is running\n  proxy     {proxy}\n  metrics   http://{admin}/metrics\n  \
         ui        {ui}\n  history   {history}\n  intercept {hosts}\n\nRun your agent in a shell \
         with:\n{exports}",
        version = env!("CARGO_PKG_VERSION"),
        proxy = running.exports.proxy_url,
        admin = running.admin_addr,
        hosts = hosts.join(", "),
        exports = running
            .exports
            .lines(cli::Shell::Sh)
            .lines()
            .map(|l| format!("  {l}\n"))
            .collect::<String>(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Bug: the proxy set itself up inside its spawned task, so an upstream TLS config that
    /// could not be built ended only that task: `start` returned `Ok`, `/readyz` said 200
    /// and the proxy port refused every connection. Now `start` fails.
    #[tokio::test]
    async fn a_proxy_that_cannot_be_set_up_fails_start_instead_of_running_without_it() {
        use clap::Parser as _;
        let dir = tempfile::tempdir().expect("tempdir");
        // Valid PEM framing around bytes that are no certificate: config reads it, rustls
        // refuses it as a root.
        let bad = dir.path().join("bad.pem");
        std::fs::write(
            &bad,
            "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----\n",
        )
        .expect("write");
        let ca_dir = dir.path().join("ca");
        let args = [
            "llmtap",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--ca-dir",
            ca_dir.to_str().expect("utf-8"),
            "--upstream-ca",
            bad.to_str().expect("utf-8"),
            "--db",
            "none",
        ];
        let cli = cli::Cli::try_parse_from(args).expect("args");
        let config = Config::from_args(cli.run).expect("config reads the PEM");
        let started = start(config, Box::new(std::io::sink())).await;
        assert!(
            matches!(started, Err(StartError::Proxy(ProxyError::Tls(_)))),
            "{started:?}"
        );
    }
}
