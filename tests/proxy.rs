//! End to end, in-process: llmtap on 127.0.0.1:0 in front of the fake Anthropic upstream
//! (real TLS both sides, `--upstream-ca` + `--resolve`), driven by a client that CONNECTs
//! like an agent. Checks the invariants of ARCHITECTURE.md on real sockets.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{
    client::{self, collect},
    harness::{self, metric},
};
use llmtap::vocab::Outcome;
use llmtap_fake_upstream::FakeUpstream;

type Headers<'a> = &'a [(&'a str, &'a str)];

const HOST: &str = "api.anthropic.com";
const SECRET: &str = "sk-ant-api03-SECRET-must-never-leave-0123456789";

fn body(case: &str) -> Vec<u8> {
    FakeUpstream::fixture(case, "request.json")
}

/// Sends the same request directly and through llmtap; returns both responses.
async fn both_ways(
    upstream: &FakeUpstream,
    tap: &harness::Tap,
    case: &str,
    headers: &[(&str, &str)],
    h2: bool,
) -> (client::Collected, client::Collected) {
    let req = |h2| client::messages_request(HOST, "/v1/messages", &body(case), headers, h2);
    let mut direct = client::direct(upstream.addr, HOST, &upstream.ca_pem).await;
    let direct = collect(direct.send(req(false)).await.expect("direct")).await;
    let mut via = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, h2).await;
    assert_eq!(via.is_h2(), h2, "negotiated protocol");
    let via = collect(via.send(req(h2)).await.expect("via llmtap")).await;
    (direct, via)
}

#[tokio::test]
async fn streamed_json_and_gzip_bodies_are_byte_identical_to_direct() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let cases: [(&str, Headers, bool); 5] = [
        (
            "stream_tool_use",
            &[("x-fake-scenario", "stream_tool_use")],
            false,
        ),
        ("json_message", &[], false),
        ("json_message", &[("x-fake-gzip", "1")], false),
        (
            "stream_cache",
            &[("x-fake-scenario", "stream_cache"), ("x-fake-gzip", "1")],
            false,
        ),
        (
            "stream_tool_use",
            &[("x-fake-scenario", "stream_tool_use")],
            true,
        ),
    ];
    for (case, headers, h2) in cases {
        let (direct, via) = both_ways(&upstream, &tap, case, headers, h2).await;
        assert_eq!(via.status, direct.status, "{case}");
        assert!(
            via.end.is_ok() && direct.end.is_ok(),
            "{case}: {:?} {:?}",
            via.end,
            direct.end
        );
        assert!(!direct.body().is_empty());
        assert_eq!(via.body(), direct.body(), "{case} h2={h2} gzip={headers:?}");
        for name in [
            "content-type",
            "content-encoding",
            "anthropic-organization-id",
        ] {
            assert_eq!(
                via.headers.get(name),
                direct.headers.get(name),
                "{case}: header {name}"
            );
        }
        let record = tap.next_record().await;
        assert_eq!(record.outcome, Outcome::Ok, "{case}: {record:?}");
        assert_eq!(record.parse_error, None, "{case}");
        assert!(
            record.response.usage.input.is_some(),
            "{case}: usage parsed through {headers:?}"
        );
    }
    // stream_tool_use through h2: every fact of the fixture made it.
    let m = tap.metrics().await;
    assert_eq!(
        metric(&m, "llmtap_tool_calls_total", &[("tool", "Bash")]),
        2.0,
        "{m}"
    );
    assert_eq!(
        metric(&m, "llmtap_requests_total", &[("outcome", "ok")]),
        5.0
    );
    assert_eq!(
        metric(&m, "llmtap_tunnels_total", &[("intercepted", "true")]),
        5.0
    );
}

#[tokio::test]
async fn a_stream_is_forwarded_as_it_arrives_not_buffered() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body("stream_text"),
        &[("x-fake-hold", "1")],
        false,
    );
    let res = conn.send(req).await.expect("response head");
    let mut res = res.into_body();
    use http_body_util::BodyExt as _;
    // The upstream holds everything after the first event until release(): if llmtap
    // buffered, this would time out.
    let first = tokio::time::timeout(Duration::from_secs(5), res.frame())
        .await
        .expect("first event arrives while upstream holds the rest")
        .expect("frame")
        .expect("ok");
    let first = first.into_data().expect("data");
    assert!(first.starts_with(b"event: message_start"), "{first:?}");
    assert_eq!(
        metric(&tap.metrics().await, "llmtap_in_flight_calls", &[]),
        1.0
    );
    upstream.release();
    let rest = collect(hudsucker::hyper::Response::new(res)).await;
    assert!(rest.end.is_ok());
    let mut all = first.to_vec();
    all.extend(rest.body());
    assert_eq!(all, FakeUpstream::fixture("stream_text", "sse"));
    let record = tap.next_record().await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert!(record.ttft.is_some() && record.ttft <= Some(record.duration));
}

#[tokio::test]
async fn client_abort_mid_stream_is_one_cancelled_record() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body("stream_text"),
        &[("x-fake-hold", "1")],
        false,
    );
    let res = conn.send(req).await.expect("response head");
    let mut res = res.into_body();
    use http_body_util::BodyExt as _;
    res.frame().await.expect("first frame").expect("ok");
    drop(res);
    drop(conn);
    let record = tap.next_record().await;
    assert_eq!(record.outcome, Outcome::Cancelled, "{record:?}");
    assert_eq!(
        record.response.model.as_deref(),
        Some("claude-sonnet-4-6"),
        "facts known before the abort are kept"
    );
    upstream.release();
    tap.assert_no_record(Duration::from_millis(500)).await;
    let m = tap.metrics().await;
    assert_eq!(
        metric(&m, "llmtap_requests_total", &[("outcome", "cancelled")]),
        1.0
    );
    assert_eq!(metric(&m, "llmtap_in_flight_calls", &[]), 0.0);
}

#[tokio::test]
async fn upstream_reset_and_error_statuses_get_their_outcomes() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let cases: [(Headers, Outcome, &str); 4] = [
        (
            &[("x-fake-reset-after", "3")],
            Outcome::UpstreamError,
            "upstream_reset",
        ),
        (
            &[("x-fake-scenario", "error_429")],
            Outcome::RateLimited,
            "rate_limit_error",
        ),
        (
            &[("x-fake-scenario", "error_529")],
            Outcome::UpstreamError,
            "overloaded_error",
        ),
        (
            &[("x-fake-scenario", "stream_midstream_error")],
            Outcome::UpstreamError,
            "overloaded_error",
        ),
    ];
    for (headers, outcome, error_type) in cases {
        let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
        let req =
            client::messages_request(HOST, "/v1/messages", &body("stream_text"), headers, false);
        let res = collect(conn.send(req).await.expect("response head")).await;
        if error_type == "upstream_reset" {
            assert!(res.end.is_err(), "the client sees the reset too");
        }
        let record = tap.next_record().await;
        assert_eq!(record.outcome, outcome, "{headers:?}: {record:?}");
        assert_eq!(
            record
                .error_type
                .as_ref()
                .map(ToString::to_string)
                .as_deref(),
            Some(error_type),
            "{headers:?}"
        );
    }
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_errors_total",
            &[("error_type", "overloaded_error")]
        ),
        2.0
    );
    assert_eq!(
        metric(&m, "llmtap_requests_total", &[("outcome", "rate_limited")]),
        1.0
    );
}

#[tokio::test]
async fn unreachable_upstream_gets_502_and_one_record() {
    let upstream = FakeUpstream::start().await;
    // A port nothing listens on (held, so that no other test is given it).
    let (_held, closed) = harness::closed_port();
    let resolve = format!("api.anthropic.com:443:{closed}");
    let mut tap = harness::start(&upstream, &["--resolve", &resolve]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &[], false);
    let res = collect(conn.send(req).await.expect("response head")).await;
    assert_eq!(res.status, 502);
    let record = tap.next_record().await;
    assert_eq!(
        (
            record.outcome,
            record
                .error_type
                .as_ref()
                .map(ToString::to_string)
                .as_deref()
        ),
        (Outcome::UpstreamError, Some("upstream_connect"))
    );
}

#[tokio::test]
async fn non_llm_paths_pass_untouched_and_unrecorded() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = hudsucker::hyper::Request::get("/api/claude_code/policy_limits")
        .header("host", HOST)
        .body(http_body_util::Full::new(bytes::Bytes::new()))
        .unwrap();
    let res = collect(conn.send(req).await.expect("head")).await;
    assert_eq!(res.status, 404);
    assert!(String::from_utf8_lossy(&res.body()).contains("not_found_error"));
    // Same connection, kept alive: a count_tokens call is recorded as its own operation.
    let req = client::messages_request(
        HOST,
        "/v1/messages/count_tokens",
        &body("count_tokens"),
        &[],
        false,
    );
    let res = collect(conn.send(req).await.expect("head")).await;
    assert_eq!(res.status, 200);
    let record = tap.next_record().await;
    assert_eq!(record.operation.as_str(), "count_tokens");
    assert!(record.response.usage.input.is_some());
    tap.assert_no_record(Duration::from_millis(300)).await;
    assert_eq!(
        upstream.seen().len(),
        2,
        "both requests reached the upstream"
    );
}

#[tokio::test]
async fn hosts_not_intercepted_are_tunnelled_with_their_own_certificate() {
    let upstream = FakeUpstream::start().await;
    // Loopback is refused by default; the test opens the fake upstream's port.
    let allow = format!("localhost:{}", upstream.addr.port());
    let mut tap = harness::start(&upstream, &["--allow-destination", &allow]).await;
    let tunnel =
        client::connect_tunnel(tap.proxy, &format!("localhost:{}", upstream.addr.port())).await;
    // Trusting only the upstream's test CA: this handshake succeeds only if llmtap did not
    // decrypt (its leaf would be signed by llmtap's CA).
    let tls = client::tls_over(tunnel, "localhost", client::tls(&upstream.ca_pem, false))
        .await
        .expect("upstream's own certificate");
    let mut conn = client::Conn::over(tls).await;
    let req = client::messages_request(
        "localhost",
        "/v1/messages",
        &body("json_message"),
        &[],
        false,
    );
    let res = collect(conn.send(req).await.expect("head")).await;
    assert_eq!(res.status, 200);
    tap.assert_no_record(Duration::from_millis(300)).await;
    let m = tap.metrics().await;
    assert_eq!(
        metric(&m, "llmtap_tunnels_total", &[("intercepted", "false")]),
        1.0
    );
}

#[tokio::test]
async fn malformed_streams_reach_the_client_unchanged_and_are_counted() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let headers = [("x-fake-scenario", "malformed")];
    let (direct, via) = both_ways(&upstream, &tap, "stream_text", &headers, false).await;
    assert!(via.end.is_ok());
    assert!(via.body().len() > 1 << 20, "the 1 MiB line came through");
    assert_eq!(via.body(), direct.body());
    let record = tap.next_record().await;
    assert!(record.parse_error.is_some(), "{record:?}");
    assert!(
        record.response.model.is_some(),
        "facts before the bad event kept"
    );
    assert_eq!(record.outcome, Outcome::Ok);
    // Invalid request JSON: forwarded, counted, recorded.
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        b"{\"model\": \xff",
        &[("x-fake-scenario", "json_message")],
        false,
    );
    let res = collect(conn.send(req).await.expect("head")).await;
    assert_eq!(res.status, 200);
    let record = tap.next_record().await;
    assert_eq!(record.request, None);
    assert_eq!(record.parse_error.map(|e| e.as_str()), Some("invalid_utf8"));
    let m = tap.metrics().await;
    assert_eq!(metric(&m, "llmtap_parse_errors_total", &[]), 2.0, "{m}");
}

#[tokio::test]
async fn secrets_never_reach_call_lines_or_metrics() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--team", "platform", "--user", "ana"]).await;
    let bearer = format!("Bearer {SECRET}");
    for headers in [
        [("x-api-key", SECRET)],
        [("authorization", bearer.as_str())],
    ] {
        let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
        let req = client::messages_request(
            HOST,
            "/v1/messages?beta=true&key=QUERYSECRET",
            &body("stream_text"),
            &headers,
            false,
        );
        collect(conn.send(req).await.expect("head")).await;
        let record = tap.next_record().await;
        assert_eq!(record.path, "/v1/messages", "query string is not recorded");
        assert_eq!(record.team.as_deref(), Some("platform"));
    }
    let seen = upstream.seen();
    assert_eq!(
        seen[0].header("x-api-key"),
        Some(SECRET),
        "the key itself is forwarded unchanged"
    );
    let m = tap.metrics().await;
    let calls = tap.calls.text();
    for secret in [SECRET, "QUERYSECRET"] {
        assert!(
            !m.contains(secret) && !calls.contains(secret),
            "{secret} leaked"
        );
    }
    assert_eq!(
        metric(
            &m,
            "llmtap_requests_total",
            &[("team", "platform"), ("user", "ana")]
        ),
        2.0
    );
}

#[tokio::test]
async fn shutdown_drains_in_flight_streams() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body("stream_text"),
        &[("x-fake-hold", "1")],
        false,
    );
    let res = conn.send(req).await.expect("head");
    let reader = tokio::spawn(collect(res));
    tokio::time::sleep(Duration::from_millis(100)).await;
    let running = tap.running.take().unwrap();
    let shutdown = tokio::spawn(running.shutdown());
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(
        !shutdown.is_finished(),
        "shutdown waits for the in-flight stream"
    );
    assert_eq!(harness::get(tap.admin, "/readyz").await.0, 503);
    upstream.release();
    let res = reader.await.unwrap();
    assert!(res.end.is_ok(), "the stream completed during the drain");
    assert_eq!(res.body(), FakeUpstream::fixture("stream_text", "sse"));
    assert_eq!(shutdown.await.unwrap(), 0, "nothing was cut");
    assert_eq!(tap.next_record().await.outcome, Outcome::Ok);
}

#[tokio::test]
async fn ttft_is_the_first_content_delta_not_the_first_byte() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let headers = [("x-fake-first-delay-ms", "400")];
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &headers, false);
    let res = collect(conn.send(req).await.expect("head")).await;
    assert!(res.end.is_ok());
    let record = tap.next_record().await;
    let (ttft, first_byte) = (record.ttft.unwrap(), record.first_byte.unwrap());
    // message_start arrives at once; the first text_delta only after the upstream's delay.
    assert!(ttft >= Duration::from_millis(400), "{ttft:?}");
    assert!(first_byte < Duration::from_millis(400), "{first_byte:?}");
    assert!(record.duration >= ttft);
}

#[tokio::test]
async fn ip_hosts_get_a_leaf_with_an_ip_san() {
    let upstream = FakeUpstream::start().await;
    // Loopback is refused by default: the test opens it explicitly.
    let mut tap = harness::start(
        &upstream,
        &[
            "--intercept",
            "127.0.0.1",
            "--allow-destination",
            "127.0.0.1",
        ],
    )
    .await;
    let authority = format!("127.0.0.1:{}", upstream.addr.port());
    let tunnel = client::connect_tunnel(tap.proxy, &authority).await;
    // Trusting only llmtap's CA and verifying the IP: succeeds only with an IP SAN leaf.
    let tls = client::tls_over(tunnel, "127.0.0.1", client::tls(&tap.ca_pem, false))
        .await
        .expect("llmtap's leaf for 127.0.0.1");
    let mut conn = client::Conn::over(tls).await;
    let req = client::messages_request(
        &authority,
        "/v1/messages",
        &body("json_message"),
        &[],
        false,
    );
    let res = collect(conn.send(req).await.expect("head")).await;
    assert_eq!(res.status, 200);
    let record = tap.next_record().await;
    assert_eq!(
        (record.host.as_str(), record.port),
        ("127.0.0.1", upstream.addr.port())
    );
    assert_eq!(record.outcome, Outcome::Ok);
}

#[tokio::test]
async fn upstream_connections_are_kept_alive_across_clients() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    // Three agents, each with its own tunnel and TLS session to llmtap, one after another.
    for _ in 0..3 {
        let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
        let req = client::messages_request(HOST, "/v1/messages", &body("json_message"), &[], false);
        let res = collect(conn.send(req).await.expect("head")).await;
        assert_eq!(res.status, 200);
        tap.next_record().await;
    }
    assert_eq!(upstream.seen().len(), 3);
    assert_eq!(
        upstream.connections(),
        1,
        "llmtap reused its pooled upstream connection"
    );
}
