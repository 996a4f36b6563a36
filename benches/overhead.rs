//! What llmtap adds to a call: the same requests to the fake upstream directly and through
//! llmtap (in-process, release build), on warm keep-alive connections and on a fresh
//! CONNECT + TLS per call, plus the time to the first streamed event.
//!
//! `cargo bench --bench overhead` prints a table; BENCHMARKS.md records the numbers with the
//! machine. Not a test: nothing here asserts.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::print_stdout,
    clippy::disallowed_methods
)]

// The integration tests' client and in-process harness, of which the benchmark needs a part.
#[allow(dead_code, reason = "the benchmark uses a part of the tests' helpers")]
#[path = "../tests/support/client.rs"]
mod client;
#[allow(dead_code, reason = "the benchmark uses a part of the tests' helpers")]
#[path = "../tests/support/harness.rs"]
mod harness;

use std::time::{Duration, Instant};

use client::Conn;
use http_body_util::BodyExt as _;
use llmtap_fake_upstream::FakeUpstream;

const HOST: &str = "api.anthropic.com";

fn percentile(v: &mut [Duration], p: f64) -> Duration {
    v.sort();
    v[((v.len() as f64 - 1.0) * p).round() as usize]
}

fn row(name: &str, mut v: Vec<Duration>) {
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "{name:<44} n={:<5} p50 {:>8.0} µs   p90 {:>8.0} µs   p99 {:>8.0} µs",
        v.len(),
        us(percentile(&mut v, 0.5)),
        us(percentile(&mut v, 0.9)),
        us(percentile(&mut v, 0.99))
    );
}

/// `n` JSON calls on one connection; time to the end of each body.
async fn warm(conn: &mut Conn, n: usize, body: &[u8]) -> Vec<Duration> {
    let h2 = conn.is_h2();
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let req = client::messages_request(HOST, "/v1/messages", body, &[], h2);
        let t = Instant::now();
        let res = conn.send(req).await.unwrap();
        res.into_body().collect().await.unwrap();
        out.push(t.elapsed());
    }
    out
}

/// Time from sending a streamed request to its first event.
async fn first_event(conn: &mut Conn, n: usize, body: &[u8]) -> Vec<Duration> {
    let mut out = Vec::with_capacity(n);
    for _ in 0..n {
        let req = client::messages_request(HOST, "/v1/messages", body, &[], false);
        let t = Instant::now();
        let mut res = conn.send(req).await.unwrap().into_body();
        res.frame().await.unwrap().unwrap();
        out.push(t.elapsed());
        while res.frame().await.is_some() {}
    }
    out
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let n = 2000;
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let json = FakeUpstream::fixture("json_message", "request.json");
    let stream = FakeUpstream::fixture("stream_text", "request.json");

    // Warm-up both paths (leaf certificate, upstream pool).
    let mut direct = client::direct(upstream.addr, HOST, &upstream.ca_pem).await;
    let mut via = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    warm(&mut direct, 50, &json).await;
    warm(&mut via, 50, &json).await;

    println!("JSON call (1.6 kB response), warm keep-alive connection:");
    row(
        "  direct to the fake upstream",
        warm(&mut direct, n, &json).await,
    );
    row(
        "  through llmtap (h1 client, h1 upstream)",
        warm(&mut via, n, &json).await,
    );
    let mut via_h2 = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, true).await;
    warm(&mut via_h2, 50, &json).await;
    row(
        "  through llmtap (h2 client, h1 upstream)",
        warm(&mut via_h2, n, &json).await,
    );

    println!("Streamed call, time to the first event, warm connection:");
    row("  direct", first_event(&mut direct, 300, &stream).await);
    row(
        "  through llmtap",
        first_event(&mut via, 300, &stream).await,
    );

    println!("New connection per call (TCP + TLS; via llmtap also CONNECT):");
    let mut cold_direct = Vec::new();
    let mut cold_via = Vec::new();
    for _ in 0..300 {
        let t = Instant::now();
        let mut c = client::direct(upstream.addr, HOST, &upstream.ca_pem).await;
        warm(&mut c, 1, &json).await;
        cold_direct.push(t.elapsed());
        let t = Instant::now();
        let mut c = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
        warm(&mut c, 1, &json).await;
        cold_via.push(t.elapsed());
    }
    row("  direct", cold_direct);
    row("  through llmtap", cold_via);
    println!("100 concurrent connections, each 10 streamed calls (9 events 5 ms apart), per call:");
    for via_llmtap in [false, true] {
        let mut tasks = Vec::new();
        for _ in 0..100 {
            let (addr, ca, proxy, tap_ca, body) = (
                upstream.addr,
                upstream.ca_pem.clone(),
                tap.proxy,
                tap.ca_pem.clone(),
                stream.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut conn = if via_llmtap {
                    client::via_proxy(proxy, HOST, &tap_ca, false).await
                } else {
                    client::direct(addr, HOST, &ca).await
                };
                let mut took = Vec::new();
                for _ in 0..10 {
                    let req = client::messages_request(HOST, "/v1/messages", &body, &[], false);
                    let t = Instant::now();
                    let res = conn.send(req).await.unwrap();
                    res.into_body().collect().await.unwrap();
                    took.push(t.elapsed());
                }
                took
            }));
        }
        let mut all = Vec::new();
        for task in tasks {
            all.extend(task.await.unwrap());
        }
        row(
            if via_llmtap {
                "  through llmtap"
            } else {
                "  direct"
            },
            all,
        );
    }
    let calls = tap
        .running
        .as_ref()
        .unwrap()
        .telemetry
        .metrics
        .sum("llmtap_requests_total", &[]);
    println!("llmtap recorded {calls} calls");
}
