//! `/metrics` as a real Prometheus sees it: Debian's `prometheus` scrapes llmtap while agents'
//! calls flow, and its query API must return the cost and tokens that llmtap recorded per
//! call; `promtool check metrics` must find nothing to lint.
//!
//! Needs `prometheus` and `promtool` on PATH (`.ci/run` installs Debian's package). Without
//! them the test says so and passes, unless `LLMTAP_E2E=1` demands them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the test reads CI's LLMTAP_E2E and says when it skips"
)]

use std::{
    io::Write as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    client::{self, collect},
    harness::{self, get},
};
use llmtap_fake_upstream::FakeUpstream;
use serde_json::Value;

/// host, path, fixture folder, case, extra headers.
type Call<'a> = (&'a str, &'a str, &'a str, &'a str, &'a [(&'a str, &'a str)]);

fn found(tool: &str) -> bool {
    Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

/// Kills the server when the test ends, however it ends.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn encode(q: &str) -> String {
    q.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' => (b as char).to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// `{labels → value}` of an instant query.
async fn query(prom: std::net::SocketAddr, q: &str) -> Vec<(Value, f64)> {
    let (status, body) = get(prom, &format!("/api/v1/query?query={}", encode(q))).await;
    assert_eq!(status, 200, "{q}: {body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"]["result"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| {
            (
                r["metric"].clone(),
                r["value"][1].as_str().unwrap().parse::<f64>().unwrap(),
            )
        })
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_prometheus_sees_what_llmtap_recorded() {
    if !(found("prometheus") && found("promtool")) {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but prometheus/promtool are missing"
        );
        eprintln!("skipped: prometheus and promtool are not installed");
        return;
    }
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--team", "platform"]).await;
    let calls: [Call<'_>; 5] = [
        (
            "api.anthropic.com",
            "/v1/messages",
            "anthropic",
            "stream_cache",
            &[("x-api-key", "k")],
        ),
        (
            "api.anthropic.com",
            "/v1/messages",
            "anthropic",
            "stream_tool_use",
            &[("authorization", "Bearer sk-ant-oat01-x")],
        ),
        (
            "api.anthropic.com",
            "/v1/messages",
            "anthropic",
            "error_429",
            &[],
        ),
        (
            "api.openai.com",
            "/v1/responses",
            "openai_responses",
            "stream_function_call",
            &[],
        ),
        (
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            "gemini",
            "stream_sse",
            &[],
        ),
    ];
    let mut records = Vec::new();
    for (host, path, dialect, case, headers) in calls {
        let mut conn = client::via_proxy(tap.proxy, host, &tap.ca_pem, false).await;
        let mut all = vec![("x-fake-scenario", case)];
        all.extend_from_slice(headers);
        let body = FakeUpstream::fixture_in(dialect, case, "request.json");
        collect(
            conn.send(client::post(host, path, &body, &all))
                .await
                .unwrap(),
        )
        .await;
        records.push(tap.next_record().await);
    }

    // The exposition passes Prometheus' own linter.
    let text = tap.metrics().await;
    let mut lint = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    lint.stdin
        .take()
        .unwrap()
        .write_all(text.as_bytes())
        .unwrap();
    let lint = lint.wait_with_output().unwrap();
    let problems = format!(
        "{}{}",
        String::from_utf8_lossy(&lint.stdout),
        String::from_utf8_lossy(&lint.stderr)
    );
    assert!(
        lint.status.success() && problems.trim().is_empty(),
        "promtool check metrics:\n{problems}"
    );

    // Prometheus scrapes llmtap's admin listener.
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("prometheus.yml");
    std::fs::write(
        &config,
        format!(
            "global:\n  scrape_interval: 1s\nscrape_configs:\n  - job_name: llmtap\n    static_configs:\n      - targets: ['{}']\n",
            tap.admin
        ),
    )
    .unwrap();
    let _server = Server(
        Command::new("prometheus")
            .arg(format!("--config.file={}", config.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    let prom: std::net::SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(30);
    let cost = loop {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(prom)).await
        {
            let r = query(prom, "sum(llmtap_cost_usd_total)").await;
            if let Some((_, v)) = r.first() {
                break *v;
            }
        }
        assert!(Instant::now() < deadline, "prometheus never scraped llmtap");
        tokio::time::sleep(Duration::from_millis(300)).await;
    };
    let recorded: f64 = records.iter().filter_map(|r| r.cost_usd).sum();
    assert!(recorded > 0.0);
    assert!(
        (cost - recorded).abs() < 1e-9,
        "prometheus {cost} vs records {recorded}"
    );

    let by_billing = query(prom, "sum by (billing) (llmtap_cost_usd_total)").await;
    let billed = |b: &str| {
        by_billing
            .iter()
            .find(|(m, _)| m["billing"] == b)
            .map_or(0.0, |(_, v)| *v)
    };
    let subscription: f64 = records
        .iter()
        .filter(|r| r.billing == llmtap::caller::Billing::Subscription)
        .filter_map(|r| r.cost_usd)
        .sum();
    assert!((billed("subscription") - subscription).abs() < 1e-9 && subscription > 0.0);
    assert!((billed("api") - (recorded - subscription)).abs() < 1e-9);

    let inputs: u64 = records.iter().filter_map(|r| r.response.usage.input).sum();
    let cached: u64 = records
        .iter()
        .filter_map(|r| r.response.usage.cache_read)
        .sum();
    for (kind, want) in [("input", inputs), ("cache_read", cached)] {
        let v = query(
            prom,
            &format!("sum(llmtap_tokens_total{{type=\"{kind}\"}})"),
        )
        .await;
        assert_eq!(v[0].1 as u64, want, "{kind} tokens");
    }
    let by_outcome = query(
        prom,
        "sum by (outcome) (llmtap_requests_total{team=\"platform\"})",
    )
    .await;
    let count = |o: &str| {
        by_outcome
            .iter()
            .find(|(m, _)| m["outcome"] == o)
            .map_or(0.0, |(_, v)| *v)
    };
    assert_eq!((count("ok"), count("rate_limited")), (4.0, 1.0));
    let ttft = query(
        prom,
        "histogram_quantile(0.5, sum by (le) (llmtap_time_to_first_token_seconds_bucket))",
    )
    .await;
    assert!(
        ttft[0].1 > 0.0 && ttft[0].1 < 5.0,
        "p50 TTFT from the histogram: {ttft:?}"
    );
}
