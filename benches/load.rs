//! Side by side under load: the same streamed calls direct to a fast fake upstream, through
//! llmtap (the release binary, OTLP export on to a local sink), and through mitmproxy's
//! `mitmdump` (streaming on, with a usage addon), arms interleaved in one run. One more arm,
//! `tunnel`, is llmtap relaying the same TLS as a blind CONNECT tunnel (the host not
//! intercepted): the floor of any relay on the machine, which intercepting cannot go below.
//!
//! Environment: `LLMTAP_BENCH_MITMDUMP=PATH` adds the mitmdump arm (`scripts/bench` sets it);
//! `LLMTAP_BENCH_BASELINE=PATH` adds another llmtap binary as the `baseline` arm (before/after
//! in one run); `LLMTAP_BENCH_POINTS='c=64, 20;2,000'` runs only the points whose names
//! contain one of the `;`-separated parts; `LLMTAP_BENCH_PERF=DIR` records `perf record` and
//! `perf stat` (context switches, the relaying syscalls) of every proxy arm's runs into DIR.
//!
//! Points: concurrency 1, 8 and 64 with ~20 KB agent-style request bodies; 8 and 64 with 1 MB
//! bodies; a 2,000-event stream at 8. Each call is a streamed Messages call whose first delta
//! comes 50 ms after its first event (`x-fake-scenario: generated`). Every connection is a
//! kept-alive CONNECT tunnel (direct: a kept-alive TLS connection). Reported per point and
//! arm: added latency p50/p99 and added time to first delta against direct, req/s against
//! direct, the proxy's CPU per call (and per streamed event), its peak RSS, and whether every
//! response body hashed as direct's.
//!
//! `scripts/bench` installs mitmproxy (pinned) and runs this; BENCHMARKS.md records the numbers
//! with the machine. Not a test: nothing here asserts, except that bodies are unchanged.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::print_stderr,
    clippy::disallowed_methods
)]

#[allow(dead_code, reason = "the benchmark uses a part of the tests' helpers")]
#[path = "../tests/support/client.rs"]
mod client;
#[allow(
    dead_code,
    reason = "the load benchmark does not read the admin address"
)]
#[path = "support/spawn.rs"]
mod spawn;

use std::{
    net::SocketAddr,
    process::{Child, Command, Stdio},
    time::{Duration, Instant},
};

use http_body_util::BodyExt as _;
use llmtap_fake_upstream::FakeUpstream;

const HOST: &str = "api.anthropic.com";

/// A request body of about `bytes`, shaped like an agent's (a system prompt, tools, a long
/// conversation of tool results).
fn body(bytes: usize) -> Vec<u8> {
    let turn = "x".repeat(1000);
    let turns = bytes / 1100;
    let messages: Vec<serde_json::Value> = (0..turns.max(1))
        .map(|i| {
            serde_json::json!({"role": if i % 2 == 0 { "user" } else { "assistant" },
                "content": [{"type": "text", "text": turn}]})
        })
        .collect();
    serde_json::to_vec(&serde_json::json!({
        "model": "claude-sonnet-4-6", "max_tokens": 1024, "stream": true,
        "system": [{"type": "text", "text": "You are Claude Code."}],
        "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
        "messages": messages,
    }))
    .unwrap()
}

/// One arm: how a connection is made, and the proxy process whose CPU and memory count.
struct Arm {
    name: &'static str,
    proxy: Option<SocketAddr>,
    ca: String,
    pid: Option<u32>,
}

impl Arm {
    async fn connect(&self, upstream: &FakeUpstream) -> client::Conn {
        match self.proxy {
            Some(proxy) => client::via_proxy(proxy, HOST, &self.ca, false).await,
            None => client::direct(upstream.addr, HOST, &upstream.ca_pem).await,
        }
    }
}

/// CPU seconds of `pid` so far: the sum of its threads' time on a CPU (nanoseconds, the first
/// field of `/proc/PID/task/TID/schedstat`). `/proc/PID/stat`'s ticks count in 10 ms steps,
/// too coarse for a run of a few hundred calls; a thread that ends within a run takes its
/// time with it (llmtap's and mitmdump's threads live as long as the process).
fn cpu(pid: u32) -> f64 {
    let tasks = std::fs::read_dir(format!("/proc/{pid}/task"))
        .unwrap_or_else(|e| panic!("the CPU time of process {pid} (did it exit?): {e}"));
    tasks
        .flatten()
        .filter_map(|task| std::fs::read_to_string(task.path().join("schedstat")).ok())
        .filter_map(|stat| stat.split_whitespace().next()?.parse::<f64>().ok())
        .sum::<f64>()
        / 1e9
}

/// Peak resident memory of `pid` in MB (`VmHWM`).
fn peak_rss(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

/// What one arm's run of one point measured.
#[derive(Default)]
struct Run {
    latencies: Vec<Duration>,
    ttfts: Vec<Duration>,
    elapsed: Duration,
    cpu: f64,
    calls: usize,
    bodies: std::collections::BTreeSet<Vec<u8>>,
}

fn pct(v: &mut [Duration], p: f64) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize].as_secs_f64() * 1000.0
}

async fn run(
    arm: &Arm,
    upstream: &FakeUpstream,
    concurrency: usize,
    per_conn: usize,
    body: &[u8],
    events: usize,
) -> Run {
    let mut conns = Vec::new();
    for _ in 0..concurrency {
        conns.push(arm.connect(upstream).await);
    }
    let before = arm.pid.map(cpu);
    let t = Instant::now();
    let mut tasks = Vec::new();
    for mut conn in conns {
        let body = body.to_vec();
        tasks.push(tokio::spawn(async move {
            let mut out = Vec::new();
            let events = events.to_string();
            for _ in 0..per_conn {
                let headers = [
                    ("x-fake-scenario", "generated"),
                    ("x-fake-events", events.as_str()),
                    ("x-fake-first-delay-ms", "50"),
                    ("x-fake-gap-ms", "0"),
                ];
                let req = client::messages_request(HOST, "/v1/messages", &body, &headers, false);
                let start = Instant::now();
                let mut res = conn.send(req).await.unwrap().into_body();
                let mut ttft = None;
                let mut bytes = Vec::new();
                while let Some(frame) = res.frame().await {
                    if let Ok(data) = frame.unwrap().into_data() {
                        if ttft.is_none() && data.windows(19).any(|w| w == b"content_block_delta") {
                            ttft = Some(start.elapsed());
                        }
                        bytes.extend_from_slice(&data);
                    }
                }
                let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, &bytes);
                out.push((start.elapsed(), ttft, digest.as_ref().to_vec()));
            }
            out
        }));
    }
    let mut r = Run::default();
    for task in tasks {
        for (latency, ttft, digest) in task.await.unwrap() {
            r.latencies.push(latency);
            r.ttfts.extend(ttft);
            r.bodies.insert(digest);
            r.calls += 1;
        }
    }
    r.elapsed = t.elapsed();
    // The proxy may still be finishing its telemetry: give it a moment to count.
    tokio::time::sleep(Duration::from_millis(200)).await;
    r.cpu = match (arm.pid, before) {
        (Some(pid), Some(b)) => cpu(pid) - b,
        _ => 0.0,
    };
    r
}

/// `perf record` and `perf stat` (context switches, the relaying syscalls) attached to one
/// proxy process for one run.
struct Perf {
    record: Child,
    stat: Child,
    data: std::path::PathBuf,
}

impl Perf {
    fn start(dir: &std::path::Path, point: &str, arm: &str, round: usize, pid: u32) -> Self {
        let stem = format!("{}-{arm}-{round}", point.replace([' ', ',', '='], "_"));
        let data = dir.join(format!("{stem}.data"));
        let pid = pid.to_string();
        let record = Command::new("perf")
            .args(["record", "-F", "2999", "-g", "-p", &pid, "-o"])
            .arg(&data)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf");
        let events = "cs,syscalls:sys_enter_epoll_wait,syscalls:sys_enter_futex,\
syscalls:sys_enter_recvfrom,syscalls:sys_enter_read,syscalls:sys_enter_writev,\
syscalls:sys_enter_write,syscalls:sys_enter_sendto";
        let stat = Command::new("perf")
            .args(["stat", "-e", events, "-p", &pid, "-o"])
            .arg(data.with_extension("stat"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("perf");
        std::thread::sleep(Duration::from_millis(300));
        Perf { record, stat, data }
    }

    fn finish(mut self) {
        for child in [&mut self.record, &mut self.stat] {
            let _ = Command::new("kill")
                .args(["-INT", &child.id().to_string()])
                .status();
            let _ = child.wait();
        }
        if let Ok(out) = Command::new("perf")
            .args([
                "report",
                "--stdio",
                "--no-children",
                "--sort",
                "comm,dso,sym",
            ])
            .args(["--percent-limit", "0.7", "-g", "none", "-i"])
            .arg(&self.data)
            .output()
        {
            let _ = std::fs::write(self.data.with_extension("txt"), out.stdout);
        }
    }
}

/// Starts `mitmdump` (streaming on, the usage addon, the fake upstream's CA trusted, every
/// connection sent to the fake upstream with the SNI asked for).
fn start_mitmdump(
    mitmdump: &str,
    upstream: &FakeUpstream,
    dir: &std::path::Path,
) -> (Child, SocketAddr, String) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let addon = dir.join("usage_addon.py");
    std::fs::write(
        &addon,
        format!(
            r#"
import json
UPSTREAM = ("127.0.0.1", {port})
class Usage:
    def __init__(self):
        self.output_tokens = 0
    def server_connect(self, data):
        data.server.address = UPSTREAM
    def responseheaders(self, flow):
        def scan(chunk):
            # The usage of a streamed Messages call: its message_delta event.
            i = chunk.find(b'"output_tokens":')
            if i >= 0:
                digits = chunk[i + 16:i + 32].split(b"}}")[0].split(b",")[0]
                try:
                    self.output_tokens += int(digits)
                except ValueError:
                    pass
            return chunk
        flow.response.stream = scan
addons = [Usage()]
"#,
            port = upstream.addr.port()
        ),
    )
    .unwrap();
    let child = Command::new(mitmdump)
        .args([
            "--listen-host",
            "127.0.0.1",
            "--listen-port",
            &port.to_string(),
        ])
        .args(["--set", &format!("confdir={}", dir.display())])
        .args([
            "--set",
            &format!(
                "ssl_verify_upstream_trusted_ca={}",
                upstream.ca_pem_path().display()
            ),
        ])
        .args([
            "--set",
            "stream_large_bodies=1",
            "--set",
            "termlog_verbosity=error",
            "--set",
            "flow_detail=0",
        ])
        .args(["-s", addon.to_str().unwrap()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("mitmdump");
    let proxy: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let ca_path = dir.join("mitmproxy-ca-cert.pem");
    let deadline = Instant::now() + Duration::from_secs(30);
    while (std::net::TcpStream::connect(proxy).is_err() || !ca_path.exists())
        && Instant::now() < deadline
    {
        std::thread::sleep(Duration::from_millis(100));
    }
    let ca = std::fs::read_to_string(&ca_path).expect("mitmproxy's CA");
    (child, proxy, ca)
}

/// An OTLP/HTTP sink: answers every export 200 and drops it.
async fn otlp_sink() -> SocketAddr {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else {
                continue;
            };
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let _ = req.into_body().collect().await;
                        Ok::<_, std::convert::Infallible>(hyper::Response::new(
                            http_body_util::Full::new(bytes::Bytes::new()),
                        ))
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(tcp), service)
                    .await;
            });
        }
    });
    addr
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let otlp = otlp_sink().await;
    let spawn::Llmtap {
        child: mut llmtap,
        proxy: llmtap_proxy,
        ca: llmtap_ca,
        ..
    } = spawn::start(
        &upstream,
        &[HOST],
        &dir.path().join("llmtap"),
        &["--otlp-endpoint".to_owned(), format!("http://{otlp}")],
    );
    // The floor of any relay on this machine: llmtap passing the same TLS through as a blind
    // CONNECT tunnel (the host not intercepted), the client trusting the upstream's own CA.
    let spawn::Llmtap {
        child: mut tunnel,
        proxy: tunnel_proxy,
        ..
    } = spawn::start(
        &upstream,
        &[HOST],
        &dir.path().join("tunnel"),
        &["--no-intercept".to_owned(), HOST.to_owned()],
    );
    let mut arms = vec![
        Arm {
            name: "direct",
            proxy: None,
            ca: String::new(),
            pid: None,
        },
        Arm {
            name: "tunnel",
            proxy: Some(tunnel_proxy),
            ca: upstream.ca_pem.clone(),
            pid: Some(tunnel.id()),
        },
        Arm {
            name: "llmtap",
            proxy: Some(llmtap_proxy),
            ca: llmtap_ca,
            pid: Some(llmtap.id()),
        },
    ];
    // `LLMTAP_BENCH_BASELINE=PATH`: another llmtap binary (an earlier build) measured as one
    // more arm, interleaved with this one: a before/after in one run.
    let baseline = std::env::var_os("LLMTAP_BENCH_BASELINE").map(|binary| {
        let started = spawn::start_binary(
            std::path::Path::new(&binary),
            &upstream,
            &[HOST],
            &dir.path().join("baseline"),
            &["--otlp-endpoint".to_owned(), format!("http://{otlp}")],
        );
        arms.push(Arm {
            name: "baseline",
            proxy: Some(started.proxy),
            ca: started.ca.clone(),
            pid: Some(started.child.id()),
        });
        started.child
    });
    let mut mitm = None;
    match std::env::var("LLMTAP_BENCH_MITMDUMP") {
        Ok(path) => {
            let mitm_dir = dir.path().join("mitm");
            std::fs::create_dir_all(&mitm_dir).unwrap();
            let (child, proxy, ca) = start_mitmdump(&path, &upstream, &mitm_dir);
            arms.push(Arm {
                name: "mitmdump",
                proxy: Some(proxy),
                ca,
                pid: Some(child.id()),
            });
            mitm = Some(child);
        }
        Err(_) => {
            eprintln!("mitmdump: not measured (set LLMTAP_BENCH_MITMDUMP; scripts/bench does)")
        }
    }
    let small = body(20_000);
    let large = body(1_000_000);
    // (name, concurrency, calls per connection, body, events per stream)
    let points: [(&str, usize, usize, &[u8], usize); 6] = [
        ("c=1, 20 KB", 1, 60, &small, 20),
        ("c=8, 20 KB", 8, 25, &small, 20),
        ("c=64, 20 KB", 64, 6, &small, 20),
        ("c=8, 1 MB", 8, 8, &large, 20),
        ("c=64, 1 MB", 64, 2, &large, 20),
        ("2,000 events, c=8", 8, 6, &small, 2000),
    ];
    // Warm every arm (leaf certificates, upstream pools).
    for arm in &arms {
        run(arm, &upstream, 4, 3, &small, 20).await;
    }
    println!(
        "{:<20} {:<9} {:>18} {:>14} {:>9} {:>13} {:>16} {:>10} {:>6}",
        "point",
        "arm",
        "added p50/p99 ms",
        "added TTFT ms",
        "req/s x",
        "CPU ms/call",
        "CPU µs/event",
        "peak MB",
        "bytes"
    );
    // `LLMTAP_BENCH_POINTS='c=64, 20;2,000'`: only the points whose names contain one of these
    // `;`-separated parts (for profiling one point); all by default.
    let only = std::env::var("LLMTAP_BENCH_POINTS").ok();
    let chosen = |name: &str| {
        only.as_deref().is_none_or(|only| {
            only.split(';')
                .any(|part| !part.is_empty() && name.contains(part))
        })
    };
    for (name, c, per_conn, body, events) in points {
        if !chosen(name) {
            continue;
        }
        // Warm every arm at this concurrency first (one call per connection): llmtap's
        // upstream pool then holds as many connections as the point uses, as it would in
        // steady use; the direct arm's handshakes are not timed either.
        for arm in &arms {
            run(arm, &upstream, c, 1, body, events.min(20)).await;
        }
        // Interleaved: each arm twice, the runs of one arm pooled.
        let mut runs: Vec<Run> = arms.iter().map(|_| Run::default()).collect();
        for round in 0..2 {
            // The second round runs the arms in the opposite order, so that no arm always
            // follows the same one.
            let mut order: Vec<usize> = (0..arms.len()).collect();
            if round % 2 == 1 {
                order.reverse();
            }
            for i in order {
                let arm = &arms[i];
                // `LLMTAP_BENCH_PERF=DIR`: a `perf` profile and the syscall counts of each
                // proxy during each of its runs (DIR/<point>-<arm>-<round>.{data,txt,stat}).
                let perf = std::env::var_os("LLMTAP_BENCH_PERF")
                    .zip(arm.pid)
                    .map(|(dir, pid)| {
                        Perf::start(std::path::Path::new(&dir), name, arm.name, round, pid)
                    });
                let r = run(arm, &upstream, c, per_conn, body, events).await;
                if let Some(perf) = perf {
                    perf.finish();
                }
                let pooled = &mut runs[i];
                pooled.latencies.extend(r.latencies);
                pooled.ttfts.extend(r.ttfts);
                pooled.elapsed += r.elapsed;
                pooled.cpu += r.cpu;
                pooled.calls += r.calls;
                pooled.bodies.extend(r.bodies);
            }
        }
        let (mut d_lat, mut d_ttft) = (runs[0].latencies.clone(), runs[0].ttfts.clone());
        let (d50, d99, dt50) = (
            pct(&mut d_lat, 0.5),
            pct(&mut d_lat, 0.99),
            pct(&mut d_ttft, 0.5),
        );
        let direct_rate = runs[0].calls as f64 / runs[0].elapsed.as_secs_f64();
        let direct_bodies = runs[0].bodies.clone();
        for (arm, r) in arms.iter().zip(runs.iter_mut()) {
            let rate = r.calls as f64 / r.elapsed.as_secs_f64();
            let same = r.bodies == direct_bodies;
            assert!(
                same,
                "{}: a response body differs from direct's at {name}",
                arm.name
            );
            let per_call = r.cpu * 1000.0 / r.calls as f64;
            let per_event = r.cpu * 1e6 / (r.calls * (events + 6)) as f64;
            println!(
                "{:<20} {:<9} {:>8.2} / {:>7.2} {:>14.2} {:>9.2} {:>13} {:>16} {:>10} {:>6}",
                name,
                arm.name,
                pct(&mut r.latencies, 0.5) - d50,
                pct(&mut r.latencies, 0.99) - d99,
                pct(&mut r.ttfts, 0.5) - dt50,
                rate / direct_rate,
                arm.pid.map_or("-".to_owned(), |_| format!("{per_call:.3}")),
                arm.pid
                    .map_or("-".to_owned(), |_| format!("{per_event:.2}")),
                arm.pid
                    .map_or("-".to_owned(), |pid| format!("{:.0}", peak_rss(pid))),
                if same { "same" } else { "DIFF" },
            );
        }
    }
    let _ = llmtap.kill();
    let _ = tunnel.kill();
    if let Some(mut b) = baseline {
        let _ = b.kill();
    }
    if let Some(mut m) = mitm {
        let _ = m.kill();
    }
}
