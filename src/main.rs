//! The `llmtap` binary: parse flags, validate, run. Everything else lives in the library.

/// jemalloc rather than glibc's malloc, with its background purging thread on: glibc keeps
/// freed memory in per-thread arenas and raises its mmap threshold after each large free,
/// and allocators that purge only when called (mimalloc) keep it while llmtap is idle, so
/// after a burst of large request copies RSS stayed at its peak. jemalloc's background
/// thread returns dirty pages within its decay time (10 s) whether or not llmtap allocates
/// (measured with `benches/burst.py`, BENCHMARKS.md).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

use std::process::ExitCode;

use clap::Parser as _;
use llmtap::{
    StartError,
    cli::{CaAction, Cli, Command, SummaryFormat, WrapArgs, default_ca_dir},
    config::{self, Config, ConfigError},
    telemetry::logging,
};

#[expect(clippy::print_stderr, reason = "main is where errors reach the user")]
fn fail(code: u8, err: impl std::fmt::Display) -> ExitCode {
    eprintln!("llmtap: {err}");
    ExitCode::from(code)
}

fn main() -> ExitCode {
    // Freed memory goes back to the system within jemalloc's decay time even when llmtap is
    // idle after a burst (see ALLOCATOR). Failing to start the thread changes nothing else.
    #[cfg(not(target_env = "msvc"))]
    let _ = tikv_jemalloc_ctl::background_thread::write(true);
    let cli = Cli::parse();
    match cli.command.unwrap_or(Command::Run(Box::new(cli.run))) {
        Command::Run(args) => {
            let config = match Config::from_args(*args) {
                Ok(config) => config,
                Err(err) => return fail(2, err),
            };
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => return fail(1, format!("cannot start the runtime: {err}")),
            };
            runtime.block_on(run(config))
        }
        Command::Env(args) => {
            let listen = match args.listen.parse::<std::net::SocketAddr>() {
                Ok(addr) => addr,
                Err(_) => {
                    return fail(
                        2,
                        ConfigError::new(
                            "--listen",
                            format!("expected IP:PORT, got '{}'", args.listen),
                        ),
                    );
                }
            };
            let exports = match config::client_exports(
                config::proxy_url(listen),
                args.ca_dir.as_deref(),
                false,
            ) {
                Ok(exports) => exports,
                Err(err) => return fail(2, err),
            };
            print!("{}", exports.lines(args.shell));
            ExitCode::SUCCESS
        }
        Command::Wrap(args) => {
            let runtime = match tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
            {
                Ok(rt) => rt,
                Err(err) => return fail(1, format!("cannot start the runtime: {err}")),
            };
            runtime.block_on(wrap(*args))
        }
        Command::Healthcheck(args) => healthcheck(&args.admin),
        Command::Report(args) => {
            let read = match &args.file {
                Some(path) if path.as_os_str() == "-" => {
                    llmtap::report::Report::read(std::io::stdin().lock()).map_err(|e| e.to_string())
                }
                Some(path) => std::fs::File::open(path)
                    .and_then(|f| llmtap::report::Report::read(std::io::BufReader::new(f)))
                    .map_err(|e| format!("{}: {e}", path.display())),
                None => {
                    let db = args.db.clone().unwrap_or_else(llmtap::cli::default_db);
                    llmtap::telemetry::history::Store::open_existing(&db)
                        .and_then(|store| llmtap::report::Report::from_history(&store))
                        .map_err(|e| e.to_string())
                }
            };
            match read {
                Ok(report) => {
                    let by = if args.by.is_empty() {
                        llmtap::report::DEFAULT
                    } else {
                        &args.by
                    };
                    print!("{}", report.text(by));
                    ExitCode::SUCCESS
                }
                Err(err) => fail(2, format!("report: {err}")),
            }
        }
        Command::Purge(args) => {
            let db = args.db.clone().unwrap_or_else(llmtap::cli::default_db);
            let purged = llmtap::telemetry::history::Store::open_existing(&db)
                .and_then(|mut store| store.purge(args.before, args.content));
            match purged {
                Ok(n) => {
                    let what = if args.content {
                        "calls' content"
                    } else {
                        "calls"
                    };
                    println!("purged {n} {what} from {}", db.display());
                    ExitCode::SUCCESS
                }
                Err(err) => fail(2, format!("purge: {err}")),
            }
        }
        Command::Ca(args) => {
            let ca = match config::load_ca(&args.ca_dir.unwrap_or_else(default_ca_dir), false) {
                Ok(ca) => ca,
                Err(err) => return fail(2, err),
            };
            match args.action {
                CaAction::Path => println!("{}", ca.cert_path().display()),
                CaAction::Print => print!("{}", ca.cert_pem),
            }
            ExitCode::SUCCESS
        }
    }
}

#[expect(
    clippy::print_stderr,
    reason = "the startup banner is for the user's terminal"
)]
async fn run(config: Config) -> ExitCode {
    let running = match llmtap::start(config.clone(), Box::new(std::io::stdout())).await {
        Ok(running) => running,
        Err(StartError::Config(err)) => return fail(2, err),
        Err(err) => return fail(1, err),
    };
    let tracer = running
        .telemetry
        .spans
        .as_ref()
        .and_then(|s| s.internal_tracer());
    let hint = logging::TrustHint {
        ca_cert: running.exports.ca_cert.clone(),
        bundle: running.exports.bundle.clone(),
    };
    logging::init_with_hint(
        config.log_format,
        config.log_filter.as_deref(),
        tracer,
        Some(hint),
    );
    for why in &config.ca.insecure {
        tracing::warn!(problem = %why, "loaded the CA anyway (--allow-insecure-key)");
    }
    // Handlers first: a supervisor may send SIGTERM as soon as the banner is out.
    let stop = signal();
    eprintln!("{}", llmtap::banner(&running, &config));
    tracing::info_span!(
        "llmtap.start",
        version = env!("CARGO_PKG_VERSION"),
        proxy = %running.proxy_addr,
        admin = %running.admin_addr,
        intercepted_hosts = config.providers.intercepted().len(),
        providers = config.providers.entries().len(),
    )
    .in_scope(|| tracing::info!("llmtap is running"));
    let cut = running.run_until(stop).await;
    if cut > 0 {
        tracing::warn!(calls = cut, "exited with calls still in flight");
    }
    ExitCode::SUCCESS
}

#[expect(
    clippy::print_stderr,
    reason = "the summary is for the user's terminal"
)]
async fn wrap(args: WrapArgs) -> ExitCode {
    use llmtap::wrap::{Collector, Summary, exit_code, run_child};
    if let Some(url) = &args.proxy {
        // A running llmtap: only the environment is ours to set.
        let exports = match config::client_exports(
            url.clone(),
            args.run.ca_dir.as_deref(),
            args.run.allow_insecure_key,
        ) {
            Ok(exports) => exports,
            Err(err) => return fail(2, err),
        };
        return match run_child(&args.cmd, &exports).await {
            Ok(status) => ExitCode::from(exit_code(status)),
            Err(err) => fail(1, format!("cannot run {}: {err}", args.cmd[0])),
        };
    }
    let mut config = match Config::from_args(args.run) {
        Ok(config) => config,
        Err(err) => return fail(2, err),
    };
    let loopback = std::net::SocketAddr::from(([127, 0, 0, 1], 0));
    config.listen = loopback;
    config.admin = loopback;
    config.calls = llmtap::config::CallsFormat::Off;
    let running = match llmtap::start(config.clone(), Box::new(std::io::sink())).await {
        Ok(running) => running,
        Err(StartError::Config(err)) => return fail(2, err),
        Err(err) => return fail(1, err),
    };
    let tracer = running
        .telemetry
        .spans
        .as_ref()
        .and_then(|s| s.internal_tracer());
    // Only warnings: the command owns the terminal.
    let filter = config
        .log_filter
        .clone()
        .unwrap_or_else(|| logging::DEFAULT_FILTER.replacen("info", "warn", 1));
    let hint = logging::TrustHint {
        ca_cert: running.exports.ca_cert.clone(),
        bundle: running.exports.bundle.clone(),
    };
    logging::init_with_hint(config.log_format, Some(&filter), tracer, Some(hint));
    let collector = Collector::start(running.telemetry.subscribe());
    if args.ui {
        let url = format!("http://{}/", running.admin_addr);
        eprintln!("llmtap: this run's calls, live, while it runs: {url}");
        llmtap::wrap::open_in_browser(&url);
    }
    let status = run_child(&args.cmd, &running.exports).await;
    running.shutdown().await;
    // The last records travel from the telemetry thread to the collector task.
    tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    let summary = Summary::of(&collector.records());
    match args.summary {
        SummaryFormat::Text => eprint!("{}", summary.text()),
        SummaryFormat::Json => eprintln!("{}", serde_json::to_string(&summary).unwrap_or_default()),
        SummaryFormat::Off => {}
    }
    match status {
        Ok(status) => ExitCode::from(exit_code(status)),
        Err(err) => fail(1, format!("cannot run {}: {err}", args.cmd[0])),
    }
}

/// GET /healthz on the admin address with a short timeout: 0 if it answers 200.
fn healthcheck(admin: &str) -> ExitCode {
    use std::io::{Read as _, Write as _};
    let Ok(mut addr) = admin.parse::<std::net::SocketAddr>() else {
        return fail(
            2,
            ConfigError::new("--admin", format!("expected IP:PORT, got '{admin}'")),
        );
    };
    if addr.ip().is_unspecified() {
        addr.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
    }
    let timeout = std::time::Duration::from_secs(2);
    let answer = std::net::TcpStream::connect_timeout(&addr, timeout).and_then(|mut tcp| {
        tcp.set_read_timeout(Some(timeout))?;
        tcp.write_all(b"GET /healthz HTTP/1.0\r\nHost: llmtap\r\n\r\n")?;
        let mut head = [0u8; 12];
        tcp.read_exact(&mut head)?;
        Ok(head)
    });
    match answer {
        Ok(head) if head.starts_with(b"HTTP/1.") && &head[9..12] == b"200" => ExitCode::SUCCESS,
        Ok(_) => fail(1, format!("{addr}/healthz did not answer 200")),
        Err(err) => fail(1, format!("{addr}/healthz: {err}")),
    }
}

/// Installs the SIGINT and SIGTERM handlers now and returns a future that resolves on the
/// first of them. Installing is done before the future is polled, so a signal that arrives
/// between the startup banner and the first poll is not lost to the default action.
fn signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        match (term, int) {
            (Ok(mut term), Ok(mut int)) => {
                tokio::select! {
                    _ = int.recv() => {}
                    _ = term.recv() => {}
                }
            }
            _ => {
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
}
