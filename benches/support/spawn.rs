//! The llmtap release binary for the load and soak benchmarks: started against the fake
//! upstream (every given host resolved to it, its CA trusted), no history, its banner read for
//! the proxy and admin addresses.

use std::{
    io::{BufRead as _, BufReader},
    net::SocketAddr,
    path::Path,
    process::{Child, Command, Stdio},
};

use llmtap_fake_upstream::FakeUpstream;

/// A running llmtap: the process, its proxy and admin addresses, its CA (PEM).
pub struct Llmtap {
    pub child: Child,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub ca: String,
}

/// Starts `llmtap run` with its CA in `dir` (and `HOME` there), `hosts` resolved to
/// `upstream`, and `extra` flags.
pub fn start(upstream: &FakeUpstream, hosts: &[&str], dir: &Path, extra: &[String]) -> Llmtap {
    start_binary(
        Path::new(env!("CARGO_BIN_EXE_llmtap")),
        upstream,
        hosts,
        dir,
        extra,
    )
}

/// [`start`] with another llmtap binary (an earlier build, for a before/after).
pub fn start_binary(
    binary: &Path,
    upstream: &FakeUpstream,
    hosts: &[&str],
    dir: &Path,
    extra: &[String],
) -> Llmtap {
    let mut cmd = Command::new(binary);
    cmd.args(["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
        .args(["--calls", "off", "--db", "none"])
        .args(["--upstream-ca", upstream.ca_pem_path().to_str().unwrap()])
        .args(["--ca-dir", dir.to_str().unwrap()]);
    for host in hosts {
        cmd.args(["--resolve", &format!("{host}:443:{}", upstream.addr)]);
    }
    let mut child = cmd
        .args(extra)
        .env_clear()
        .env("HOME", dir)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("the llmtap binary");
    let mut stderr = BufReader::new(child.stderr.take().unwrap());
    let (mut proxy, mut admin) = (None, None);
    let mut line = String::new();
    while stderr.read_line(&mut line).unwrap_or(0) > 0 {
        let addr = |prefix: &str| -> Option<SocketAddr> {
            let rest = line.trim().strip_prefix(prefix)?.trim();
            let rest = rest.strip_prefix("http://")?;
            rest.trim_end_matches("/metrics").parse().ok()
        };
        proxy = proxy.or_else(|| addr("proxy"));
        admin = admin.or_else(|| addr("metrics"));
        if line.contains("CODEX_CA_CERTIFICATE") {
            break;
        }
        line.clear();
    }
    // Keep reading stderr so that the process never blocks on a full pipe.
    std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
    let ca = std::fs::read_to_string(dir.join("ca.pem")).unwrap();
    Llmtap {
        child,
        proxy: proxy.expect("llmtap's proxy address"),
        admin: admin.expect("llmtap's admin address"),
        ca,
    }
}
