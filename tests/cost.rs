//! Cost and attribution end to end: the price of a call as the invoice would have it (cache
//! writes at their 5m and 1h rates, cached input never counted twice), the same number in
//! the record, the call line, `/metrics` and the span; subscription traffic priced and
//! marked; `--prices` overrides in litellm's format; who a call is attributed to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    client::{self, collect},
    harness::{self, metric},
    otlp::Receiver,
};
use base64::Engine as _;
use llmtap::caller::Billing;
use llmtap_fake_upstream::FakeUpstream;

const ANTHROPIC: &str = "api.anthropic.com";

async fn anthropic_call(tap: &harness::Tap, case: &str, headers: &[(&str, &str)]) {
    let mut conn = client::via_proxy(tap.proxy, ANTHROPIC, &tap.ca_pem, false).await;
    let mut all = vec![("x-fake-scenario", case)];
    all.extend_from_slice(headers);
    let body = FakeUpstream::fixture(case, "request.json");
    let req = client::messages_request(ANTHROPIC, "/v1/messages", &body, &all, false);
    assert!(collect(conn.send(req).await.unwrap()).await.end.is_ok());
}

/// Proxy credentials, request headers, expected team, expected user.
type Case<'a> = (Option<String>, Vec<(&'a str, &'a str)>, &'a str, &'a str);

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-9
}

/// `stream_cache` on claude-opus-4-8 (litellm 1.110.2: $5 / $25 per MTok, cache read $0.50,
/// 5m write $6.25, 1h write $10), usage 31,919 input of which 24,576 cache read, 2,211
/// written for 5m and 5,120 for 1h, and 38 output:
/// 12 × 5e-6 + 24,576 × 5e-7 + 2,211 × 6.25e-6 + 5,120 × 1e-5 + 38 × 2.5e-5.
/// (Pricing the 1h writes at the 5m rate, the common gateway bug, would give $0.0591.)
const STREAM_CACHE_USD: f64 = 0.000_06 + 0.012_288 + 0.013_818_75 + 0.051_2 + 0.000_95;

#[tokio::test]
async fn a_call_costs_what_the_invoice_says_everywhere() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(&upstream, &["--otlp-endpoint", &receiver.endpoint()]).await;
    anthropic_call(&tap, "stream_cache", &[("x-api-key", "sk-ant-api03-KEY")]).await;
    let record = tap.next_record().await;
    let cost = record.cost_usd.expect("priced");
    assert!(
        close(cost, STREAM_CACHE_USD),
        "{cost} vs {STREAM_CACHE_USD}"
    );
    assert_eq!(record.billing, Billing::Api);
    let m = tap.metrics().await;
    let metric_cost = metric(
        &m,
        "llmtap_cost_usd_total",
        &[("model", "claude-opus-4-8"), ("billing", "api")],
    );
    assert!(close(metric_cost, STREAM_CACHE_USD), "{metric_cost}");
    let span = &receiver.call_spans(1).await[0];
    let span_cost = match span.attr("llmtap.cost_usd") {
        Some(opentelemetry_proto::tonic::common::v1::any_value::Value::DoubleValue(v)) => *v,
        other => panic!("{other:?}"),
    };
    assert_eq!(span_cost, cost, "the span carries the same number");
    assert_eq!(span.str("llmtap.billing"), Some("api"));
    assert!(
        tap.calls.text().contains(&format!("\"cost_usd\":{cost}")),
        "{}",
        tap.calls.text()
    );
}

#[tokio::test]
async fn subscription_calls_are_priced_and_marked() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let oauth = "Bearer sk-ant-oat01-SUBSCRIPTION-TOKEN";
    anthropic_call(
        &tap,
        "stream_cache",
        &[
            ("authorization", oauth),
            ("anthropic-beta", "oauth-2025-04-20"),
        ],
    )
    .await;
    let record = tap.next_record().await;
    assert_eq!(record.billing, Billing::Subscription);
    assert!(
        close(record.cost_usd.unwrap(), STREAM_CACHE_USD),
        "API-equivalent cost"
    );
    let m = tap.metrics().await;
    assert!(close(
        metric(&m, "llmtap_cost_usd_total", &[("billing", "subscription")]),
        STREAM_CACHE_USD
    ));
    assert_eq!(
        metric(&m, "llmtap_cost_usd_total", &[("billing", "api")]),
        0.0
    );
    assert!(!m.contains("SUBSCRIPTION-TOKEN") && !tap.calls.text().contains("SUBSCRIPTION-TOKEN"));
}

#[tokio::test]
async fn unknown_models_and_failed_calls_add_no_cost() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    anthropic_call(&tap, "stream_unknown_model", &[]).await;
    let record = tap.next_record().await;
    assert_eq!(
        record.cost_usd, None,
        "never $0 for a model without a price"
    );
    assert!(!record.response.usage.is_empty());
    anthropic_call(&tap, "error_429", &[]).await;
    assert_eq!(tap.next_record().await.cost_usd, None);
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_cost_unknown_total",
            &[("model", "claude-nonexistent-9")]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "llmtap_cost_unknown_total", &[]),
        1.0,
        "a 429 without usage cost nothing"
    );
    assert_eq!(metric(&m, "llmtap_cost_usd_total", &[]), 0.0);
    assert!(tap.calls.text().contains("\"cost_usd\":null"));
}

#[tokio::test]
async fn a_litellm_prices_file_overrides_and_adds_models() {
    let upstream = FakeUpstream::start().await;
    let prices = format!(
        "{}/tests/fixtures/prices/litellm_override.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let call = |tap: &harness::Tap| {
        let (proxy, ca) = (tap.proxy, tap.ca_pem.clone());
        async move {
            let mut conn = client::via_proxy(proxy, "api.openai.com", &ca, false).await;
            let body = FakeUpstream::fixture_in(
                "openai_responses",
                "stream_function_call",
                "request.json",
            );
            let headers = [("x-fake-scenario", "stream_function_call")];
            let req = client::post("api.openai.com", "/v1/responses", &body, &headers);
            collect(conn.send(req).await.unwrap()).await;
        }
    };
    // gpt-6.1-sol, 9,214 input of which 8,832 cached, 187 output (reasoning included).
    let mut embedded = harness::start(&upstream, &[]).await;
    call(&embedded).await;
    let cost = embedded
        .next_record()
        .await
        .cost_usd
        .expect("embedded price");
    assert!(
        close(cost, 382.0 * 2e-6 + 8_832.0 * 1e-7 + 187.0 * 1e-5),
        "{cost}"
    );
    let mut overridden = harness::start(&upstream, &["--prices", &prices]).await;
    call(&overridden).await;
    let cost = overridden
        .next_record()
        .await
        .cost_usd
        .expect("override price");
    assert!(
        close(cost, 382.0 * 2.5e-6 + 8_832.0 * 2.5e-7 + 187.0 * 1.5e-5),
        "{cost}"
    );
}

#[tokio::test]
async fn attribution_prefers_proxy_credentials_then_headers_then_flags() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--team", "flag-team", "--user", "flag-user"]).await;
    let basic = |creds: &str| {
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode(creds)
        )
    };
    let cases: [Case<'_>; 4] = [
        (
            Some(basic("team-a:alice")),
            vec![("x-llmtap-team", "hdr-team")],
            "team-a",
            "alice",
        ),
        (
            Some(basic("team%2Db:bob%40corp")),
            vec![],
            "team-b",
            "bob@corp",
        ),
        (
            None,
            vec![("x-llmtap-team", "hdr-team")],
            "hdr-team",
            "flag-user",
        ),
        (None, vec![], "flag-team", "flag-user"),
    ];
    for (creds, headers, team, user) in cases {
        let connect: Vec<(&str, &str)> = creds
            .iter()
            .map(|c| ("Proxy-Authorization", c.as_str()))
            .collect();
        let tunnel =
            client::connect_tunnel_with(tap.proxy, "api.anthropic.com:443", &connect).await;
        let tls = client::tls_over(tunnel, ANTHROPIC, client::tls(&tap.ca_pem, false))
            .await
            .unwrap();
        let mut conn = client::Conn::over(tls).await;
        // Two calls in one tunnel: the identity holds for every request inside it.
        for _ in 0..2 {
            let body = FakeUpstream::fixture("json_message", "request.json");
            let req = client::messages_request(ANTHROPIC, "/v1/messages", &body, &headers, false);
            collect(conn.send(req).await.unwrap()).await;
            let record = tap.next_record().await;
            assert_eq!(
                (record.team.as_deref(), record.user.as_deref()),
                (Some(team), Some(user)),
                "{creds:?} {headers:?}"
            );
        }
    }
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_requests_total",
            &[("team", "team-a"), ("user", "alice")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "llmtap_requests_total",
            &[("team", "team-b"), ("user", "bob@corp")]
        ),
        2.0
    );
    let seen = upstream.seen();
    assert!(
        seen.iter()
            .all(|s| s.header("proxy-authorization").is_none()),
        "never forwarded upstream"
    );
    assert!(
        seen.iter()
            .any(|s| s.header("x-llmtap-team") == Some("hdr-team")),
        "headers observed, not stripped"
    );
    let text = tap.calls.text();
    assert!(
        !text.contains("dGVhbS1h") && !text.contains("Basic"),
        "the credential never appears"
    );
}

#[tokio::test]
async fn label_values_are_capped_with_overflow_counted() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--label-cap", "1"]).await;
    anthropic_call(&tap, "stream_text", &[]).await; // claude-sonnet-4-6
    anthropic_call(&tap, "stream_cache", &[]).await; // claude-opus-4-8
    tap.next_record().await;
    tap.next_record().await;
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_requests_total",
            &[("model", "claude-sonnet-4-6")]
        ),
        1.0
    );
    assert_eq!(
        metric(&m, "llmtap_requests_total", &[("model", "other")]),
        1.0
    );
    assert_eq!(
        metric(&m, "llmtap_label_overflow_total", &[("label", "model")]),
        1.0
    );
}
