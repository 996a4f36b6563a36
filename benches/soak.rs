//! Soak: 100,000 calls of mixed dialects through the llmtap release binary (Anthropic streamed
//! and not, OpenAI Chat and Responses, Gemini, calls the client aborts mid-stream, and
//! Responses WebSocket sessions), 16 connections at a time. Checked, and printed: resident
//! memory after the run within 10 % of after the first 10,000 calls, open descriptors back to
//! their count before the run, `llmtap_in_flight_calls` back to 0, and every call recorded
//! exactly once (the call lines: one per call, no id twice; `llmtap_requests_total`).
//!
//! `cargo bench --bench soak` (`LLMTAP_SOAK_CALLS` to change the count); BENCHMARKS.md records
//! the numbers with the machine. Its assertions are the soak's verdict, not timing.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

#[allow(dead_code, reason = "the benchmark uses a part of the tests' helpers")]
#[path = "../tests/support/client.rs"]
mod client;
#[allow(dead_code, reason = "the soak runs the current build only")]
#[path = "support/spawn.rs"]
mod spawn;

use std::{
    net::SocketAddr,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use http_body_util::BodyExt as _;
use hudsucker::{
    futures::{SinkExt as _, StreamExt as _},
    tokio_tungstenite::tungstenite::Message,
};
use llmtap_fake_upstream::FakeUpstream;

const WORKERS: usize = 16;

fn status_kb(pid: u32, field: &str) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap_or_default()
        .lines()
        .find_map(|l| l.strip_prefix(field))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .unwrap_or(0.0)
}

fn fds(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd")).map_or(0, Iterator::count)
}

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let metric = series.split_once('{').map_or(series, |(m, _)| m);
            (metric == name)
                .then(|| value.parse::<f64>().ok())
                .flatten()
        })
        .sum()
}

async fn scrape(admin: SocketAddr) -> String {
    use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};
    let mut tcp = tokio::net::TcpStream::connect(admin).await.unwrap();
    tcp.write_all(b"GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")
        .await
        .unwrap();
    let mut buf = String::new();
    tcp.read_to_string(&mut buf).await.unwrap();
    buf
}

/// Client operation `i`: its kind is `i % 20` (18 HTTP calls, one of them aborted; one
/// WebSocket session whose turns are calls).
async fn call(
    i: usize,
    conn: &mut Option<client::Conn>,
    proxy: SocketAddr,
    ca: &str,
    bodies: &Bodies,
) {
    let (host, path, scenario, body): (&str, &str, &str, &[u8]) = match i % 20 {
        0..=7 => (
            "api.anthropic.com",
            "/v1/messages",
            "generated",
            &bodies.anthropic,
        ),
        8..=9 => (
            "api.anthropic.com",
            "/v1/messages",
            "json_message",
            &bodies.anthropic_json,
        ),
        10..=12 => (
            "api.openai.com",
            "/v1/chat/completions",
            "stream_usage",
            &bodies.chat,
        ),
        13..=15 => (
            "api.openai.com",
            "/v1/responses",
            "stream_text",
            &bodies.responses,
        ),
        16..=17 => (
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "stream_sse",
            &bodies.gemini,
        ),
        18 => {
            // Aborted by the client after the first bytes of a long stream.
            let mut c = client::via_proxy(proxy, "api.anthropic.com", ca, false).await;
            let headers = [
                ("x-fake-scenario", "generated"),
                ("x-fake-events", "500"),
                ("x-fake-gap-ms", "2"),
            ];
            let req = client::messages_request(
                "api.anthropic.com",
                "/v1/messages",
                &bodies.anthropic,
                &headers,
                false,
            );
            let mut res = c.send(req).await.unwrap().into_body();
            let _ = res.frame().await;
            return; // the body and its connection are dropped here
        }
        _ => {
            // One Responses WebSocket session (its turns are calls too).
            let headers = [("sec-websocket-protocol", "llm.v1")];
            let (mut ws, _) = client::responses_websocket(proxy, ca, &headers)
                .await
                .unwrap();
            for turn in &bodies.ws {
                ws.send(Message::text(turn.client.clone())).await.unwrap();
                let mut got = 0;
                while got < turn.server.len() {
                    match ws.next().await {
                        Some(Ok(Message::Text(_))) => got += 1,
                        Some(Ok(_)) => {}
                        other => panic!("socket ended: {other:?}"),
                    }
                }
            }
            let _ = ws.close(None).await;
            return;
        }
    };
    if conn.is_none() {
        *conn = Some(client::via_proxy(proxy, host, ca, false).await);
    }
    let c = conn.as_mut().unwrap();
    let headers = [
        ("x-fake-scenario", scenario),
        ("x-fake-events", "20"),
        ("x-fake-gap-ms", "0"),
    ];
    let req = client::post(host, path, body, &headers);
    let res = c.send(req).await.unwrap();
    res.into_body().collect().await.unwrap();
    // A tunnel is to one host: the next call may be to another.
    *conn = None;
}

struct Bodies {
    anthropic: Vec<u8>,
    anthropic_json: Vec<u8>,
    chat: Vec<u8>,
    responses: Vec<u8>,
    gemini: Vec<u8>,
    ws: Vec<llmtap_fake_upstream::WsTurn>,
}

/// Calls per `i % 20` cycle that are recorded: 19 HTTP calls (one aborted) and the
/// WebSocket's turns.
fn recorded_per_cycle(ws_turns: usize) -> usize {
    19 + ws_turns
}

/// Runs client operations `range` on [`WORKERS`] connections at a time.
async fn run_range(
    range: std::ops::Range<usize>,
    proxy: SocketAddr,
    ca: &str,
    bodies: &Arc<Bodies>,
    progress: &Arc<AtomicUsize>,
) -> Vec<tokio::task::JoinHandle<()>> {
    progress.store(range.start, Ordering::SeqCst);
    let end = range.end;
    (0..WORKERS)
        .map(|_| {
            let (next, bodies, ca) = (progress.clone(), bodies.clone(), ca.to_owned());
            tokio::spawn(async move {
                let mut conn = None;
                loop {
                    let i = next.fetch_add(1, Ordering::SeqCst);
                    if i >= end {
                        break;
                    }
                    call(i, &mut conn, proxy, &ca, &bodies).await;
                }
            })
        })
        .collect()
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let _ = rustls::crypto::aws_lc_rs::default_provider().install_default();
    let total: usize = std::env::var("LLMTAP_SOAK_CALLS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(100_000);
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let calls_file = dir.path().join("calls.jsonl");
    let spawn::Llmtap {
        child: mut llmtap,
        proxy,
        admin,
        ca,
    } = spawn::start(
        &upstream,
        &[
            "api.anthropic.com",
            "api.openai.com",
            "generativelanguage.googleapis.com",
        ],
        &dir.path().join("ca"),
        &["--calls-file".to_owned(), calls_file.display().to_string()],
    );
    let pid = llmtap.id();
    let fixture = |folder: &str, case: &str| FakeUpstream::fixture_in(folder, case, "request.json");
    let bodies = Arc::new(Bodies {
        anthropic: fixture("anthropic", "stream_tool_use"),
        anthropic_json: fixture("anthropic", "json_message"),
        chat: fixture("openai_chat", "stream_usage"),
        responses: fixture("openai_responses", "stream_text"),
        gemini: fixture("gemini", "stream_sse"),
        ws: FakeUpstream::ws_turns("ws_session"),
    });
    let ws_turns = bodies.ws.len();
    let next = Arc::new(AtomicUsize::new(0));
    // Warm-up (the proxy's upstream pool and leaf certificates filled), then the baseline.
    let warm = 400.min(total);
    for w in run_range(0..warm, proxy, &ca, &bodies, &next).await {
        w.await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(3)).await;
    let fds_before = fds(pid);
    let checkpoint = warm + 10_000.min(total / 10);
    let t = Instant::now();
    let workers = run_range(warm..total, proxy, &ca, &bodies, &next).await;
    while next.load(Ordering::SeqCst) < checkpoint {
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let rss_at_checkpoint = status_kb(pid, "VmRSS:");
    for w in workers {
        w.await.unwrap();
    }
    let elapsed = t.elapsed();
    // Quiet: let the telemetry thread and closing connections settle.
    tokio::time::sleep(Duration::from_secs(3)).await;
    let rss_end = status_kb(pid, "VmRSS:");
    let fds_after = fds(pid);
    let metrics = scrape(admin).await;
    let in_flight = metric(&metrics, "llmtap_in_flight_calls");
    let requests = metric(&metrics, "llmtap_requests_total") as usize;
    let dropped = metric(&metrics, "llmtap_records_dropped_total") as usize;
    let cycles = total / 20;
    let remainder = total % 20;
    let expected = cycles * recorded_per_cycle(ws_turns)
        + (0..remainder)
            .map(|k| match k {
                19 => ws_turns,
                _ => 1,
            })
            .sum::<usize>();
    let peak = status_kb(pid, "VmHWM:");
    let _ = llmtap.kill();
    let _ = llmtap.wait();
    let lines = std::fs::read_to_string(&calls_file).unwrap();
    let ids: std::collections::HashSet<String> = lines
        .lines()
        .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
        .filter_map(|v| v["id"].as_str().map(str::to_owned))
        .collect();
    println!(
        "soak: {total} client operations ({expected} calls) in {:.1} s ({:.0} calls/s), 16 at a time",
        elapsed.as_secs_f64(),
        expected as f64 / elapsed.as_secs_f64()
    );
    println!(
        "  RSS after {checkpoint} operations {:.1} MB, after all {:.1} MB ({:+.1} %); peak {:.1} MB",
        rss_at_checkpoint / 1024.0,
        rss_end / 1024.0,
        (rss_end / rss_at_checkpoint - 1.0) * 100.0,
        peak / 1024.0
    );
    println!("  open descriptors before {fds_before}, after {fds_after}");
    println!(
        "  in flight after: {in_flight}; recorded {requests} (expected {expected}), call lines {}, distinct ids {}, dropped {dropped}",
        lines.lines().count(),
        ids.len()
    );
    assert!(rss_end <= rss_at_checkpoint * 1.10, "memory grew past 10 %");
    assert!(fds_after <= fds_before, "descriptors leaked");
    assert_eq!(in_flight, 0.0);
    assert_eq!(requests, expected, "every call recorded once");
    assert_eq!(lines.lines().count(), expected);
    assert_eq!(ids.len(), expected, "no id twice");
}
