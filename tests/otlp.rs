//! Spans on the wire: llmtap under real traffic exports to a real OTLP receiver (gRPC and
//! HTTP/protobuf, decoded with opentelemetry-proto). Attributes, timestamps, trace placement,
//! collector failures and secrets are checked on what the receiver decoded.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant, SystemTime};

use crate::support::{
    client::{self, collect},
    harness::{self, metric},
    otlp::{Blackhole, Receiver, nanos},
    process::Llmtap,
};
use llmtap_fake_upstream::FakeUpstream;
use opentelemetry_proto::tonic::{common::v1::any_value::Value, trace::v1::status::StatusCode};

const HOST: &str = "api.anthropic.com";

fn body(case: &str) -> Vec<u8> {
    FakeUpstream::fixture(case, "request.json")
}

async fn call(tap: &harness::Tap, body: &[u8], headers: &[(&str, &str)]) -> client::Collected {
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(HOST, "/v1/messages", body, headers, false);
    collect(conn.send(req).await.expect("response head")).await
}

#[tokio::test]
async fn a_call_becomes_one_span_with_every_attribute_and_its_real_times() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(&upstream, &["--otlp-endpoint", &receiver.endpoint()]).await;
    let sent = SystemTime::now();
    let headers = [
        ("x-fake-scenario", "stream_tool_use"),
        ("x-fake-first-delay-ms", "300"),
    ];
    let res = call(&tap, &body("stream_tool_use"), &headers).await;
    let done = SystemTime::now();
    assert!(res.end.is_ok());
    let record = tap.next_record().await;
    let spans = receiver.call_spans(1).await;
    assert_eq!(spans.len(), 1, "one span per call");
    let s = &spans[0];
    assert_eq!(s.span.name, "chat claude-opus-4-8");
    assert_eq!(s.span.kind, 3, "SPAN_KIND_CLIENT");
    assert!(
        s.span.parent_span_id.is_empty(),
        "no traceparent, no session header: root span"
    );
    assert_eq!(
        s.resource.get("service.name"),
        Some(&Value::StringValue("llmtap".into()))
    );

    // Timestamps are the call's own: t0 and end, as the record has them, inside the window
    // the client observed, and shaped by the upstream's 300 ms pause before the first delta.
    assert_eq!(s.span.start_time_unix_nano, nanos(record.start));
    assert_eq!(
        s.span.end_time_unix_nano,
        nanos(record.start + record.duration)
    );
    assert!(nanos(sent) <= s.span.start_time_unix_nano && s.span.end_time_unix_nano <= nanos(done));
    let ttft = record.ttft.expect("ttft");
    assert!(ttft >= Duration::from_millis(300), "{ttft:?}");
    assert_eq!(s.span.events.len(), 1);
    assert_eq!(s.span.events[0].name, "llmtap.first_token");
    assert_eq!(s.span.events[0].time_unix_nano, nanos(record.start + ttft));
    let ttft_ms = match s.attr("llmtap.ttft_ms") {
        Some(Value::DoubleValue(v)) => *v,
        other => panic!("ttft_ms: {other:?}"),
    };
    assert!((ttft_ms - ttft.as_secs_f64() * 1000.0).abs() < 0.001);
    match s.attr("gen_ai.response.time_to_first_chunk") {
        Some(Value::DoubleValue(v)) => assert!((v - ttft.as_secs_f64()).abs() < 1e-6),
        other => panic!("time_to_first_chunk: {other:?}"),
    }
    assert_eq!(
        s.attr("gen_ai.request.stream"),
        Some(&Value::BoolValue(true))
    );
    match (s.attr("gen_ai.usage.cost"), record.cost_usd) {
        (Some(Value::DoubleValue(v)), Some(cost)) => assert!((v - cost).abs() < 1e-12),
        other => panic!("gen_ai.usage.cost: {other:?}"),
    }

    let expected: serde_json::Value =
        serde_json::from_slice(&FakeUpstream::fixture("stream_tool_use", "expected.json")).unwrap();
    let usage = &expected["response"]["usage"];
    let n = |v: &serde_json::Value| v.as_i64().expect("number");
    for (key, want) in [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "anthropic"),
        ("gen_ai.request.model", "claude-opus-4-8"),
        ("gen_ai.response.model", "claude-opus-4-8"),
        (
            "gen_ai.response.id",
            expected["response"]["id"].as_str().unwrap(),
        ),
        ("server.address", HOST),
        ("http.request.method", "POST"),
        ("llmtap.client", "anthropic-sdk-python"),
        ("llmtap.outcome", "ok"),
        (
            "gen_ai.conversation.id",
            "3b9d6c1e-7a2f-4e58-9c0d-1f2e3a4b5c6d",
        ),
    ] {
        assert_eq!(s.str(key), Some(want), "{key}");
    }
    for (key, want) in [
        ("gen_ai.usage.input_tokens", n(&usage["input"])),
        ("gen_ai.usage.output_tokens", n(&usage["output"])),
        (
            "gen_ai.usage.cache_read.input_tokens",
            n(&usage["cache_read"]),
        ),
        (
            "gen_ai.usage.cache_creation.input_tokens",
            n(&usage["cache_write_5m"]) + n(&usage["cache_write_1h"]),
        ),
        (
            "gen_ai.usage.cache_write.input_tokens",
            n(&usage["cache_write_5m"]) + n(&usage["cache_write_1h"]),
        ),
        (
            "llmtap.usage.cache_creation.5m_input_tokens",
            n(&usage["cache_write_5m"]),
        ),
        (
            "llmtap.usage.cache_creation.1h_input_tokens",
            n(&usage["cache_write_1h"]),
        ),
        ("gen_ai.request.max_tokens", 32000),
        ("server.port", 443),
        ("http.response.status_code", 200),
        ("llmtap.tools.offered", 3),
        (
            "llmtap.request.system_chars",
            n(&expected["request"]["system_chars"]),
        ),
        (
            "llmtap.request.messages",
            n(&expected["request"]["messages"]),
        ),
    ] {
        assert_eq!(s.int(key), Some(want), "{key}");
    }
    assert_eq!(
        s.attr("gen_ai.request.temperature"),
        Some(&Value::DoubleValue(1.0))
    );
    assert_eq!(s.attr("llmtap.stream"), Some(&Value::BoolValue(true)));
    assert_eq!(
        s.attr("llmtap.usage_missing"),
        Some(&Value::BoolValue(false))
    );
    assert_eq!(
        s.strings("gen_ai.response.finish_reasons"),
        Some(vec!["tool_use".to_owned()])
    );
    assert_eq!(
        s.strings("llmtap.tools.offered_names"),
        Some(vec!["Bash".into(), "Read".into(), "Edit".into()])
    );
    assert_eq!(
        s.strings("llmtap.tools.called"),
        Some(vec!["Bash".to_owned()])
    );
    assert_eq!(
        s.attr("gen_ai.usage.reasoning.output_tokens"),
        None,
        "absent, not zero"
    );
    assert_eq!(s.attr("error.type"), None);
    assert_eq!(
        s.span.status.as_ref().map_or(0, |st| st.code),
        StatusCode::Unset as i32
    );
}

#[tokio::test]
async fn grpc_export_marks_failures_and_cancelled_streams_as_errors() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::grpc().await;
    let args = [
        "--otlp-endpoint",
        &receiver.endpoint(),
        "--otel-exporter-otlp-protocol",
        "grpc",
    ];
    let mut tap = harness::start(&upstream, &args).await;
    call(
        &tap,
        &body("stream_text"),
        &[("x-fake-scenario", "error_429")],
    )
    .await;
    // A stream the client abandons mid-way.
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body("stream_text"),
        &[("x-fake-hold", "1")],
        false,
    );
    let res = conn.send(req).await.expect("head");
    let mut res = res.into_body();
    use http_body_util::BodyExt as _;
    res.frame().await.expect("first frame").expect("ok");
    drop(res);
    drop(conn);
    tap.next_record().await;
    tap.next_record().await;
    upstream.release();
    let spans = receiver.call_spans(2).await;
    let by_outcome = |o: &str| {
        spans
            .iter()
            .find(|s| s.str("llmtap.outcome") == Some(o))
            .expect(o)
    };
    let limited = by_outcome("rate_limited");
    assert_eq!(limited.str("error.type"), Some("rate_limit_error"));
    assert_eq!(limited.int("http.response.status_code"), Some(429));
    let status = limited.span.status.as_ref().expect("status");
    assert_eq!(
        (status.code, status.message.as_str()),
        (StatusCode::Error as i32, "rate_limit_error")
    );
    let cancelled = by_outcome("cancelled");
    assert_eq!(cancelled.str("error.type"), Some("cancelled"));
    assert_eq!(
        cancelled.span.status.as_ref().map(|s| s.code),
        Some(StatusCode::Error as i32)
    );
    assert_eq!(
        cancelled.str("gen_ai.response.model"),
        Some("claude-sonnet-4-6"),
        "facts before the abort"
    );
    // Ended abnormally with no reason from the API: `error` (GenAI conventions).
    for span in [limited, cancelled] {
        assert_eq!(
            span.strings("gen_ai.response.finish_reasons"),
            Some(vec!["error".to_owned()])
        );
    }
}

#[tokio::test]
async fn traceparent_makes_a_child_span_and_is_forwarded_unchanged() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(&upstream, &["--otlp-endpoint", &receiver.endpoint()]).await;
    let traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01";
    let session = [("x-claude-code-session-id", "session-A")];
    call(
        &tap,
        &body("json_message"),
        &[("traceparent", traceparent), session[0]],
    )
    .await;
    tap.next_record().await;
    let s = &receiver.call_spans(1).await[0];
    assert_eq!(hex(&s.span.trace_id), "0af7651916cd43dd8448eb211c80319c");
    assert_eq!(hex(&s.span.parent_span_id), "b7ad6b7169203331");
    assert_ne!(hex(&s.span.span_id), "b7ad6b7169203331");
    assert_eq!(
        s.str("gen_ai.conversation.id"),
        Some("session-A"),
        "the session is still named"
    );
    let seen = upstream.seen();
    assert_eq!(
        seen[0].header("traceparent"),
        Some(traceparent),
        "read, never changed"
    );
    assert_eq!(
        seen[0]
            .headers
            .iter()
            .filter(|(k, _)| k == "traceparent")
            .count(),
        1
    );
}

#[tokio::test]
async fn calls_of_one_session_share_one_trace() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(&upstream, &["--otlp-endpoint", &receiver.endpoint()]).await;
    let plain = br#"{"model":"claude-haiku-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}"#;
    for headers in [
        vec![("x-claude-code-session-id", "sess-1")],
        vec![("x-claude-code-session-id", "sess-1")],
        vec![("x-claude-code-session-id", "sess-2")],
        vec![],
        vec![],
    ] {
        call(&tap, plain, &headers).await;
        tap.next_record().await;
    }
    let spans = receiver.call_spans(5).await;
    let trace = |session: Option<&str>| -> Vec<String> {
        spans
            .iter()
            .filter(|s| s.str("gen_ai.conversation.id") == session)
            .map(|s| hex(&s.span.trace_id))
            .collect()
    };
    let one = trace(Some("sess-1"));
    assert_eq!(one.len(), 2);
    assert_eq!(one[0], one[1], "one session, one trace");
    let two = trace(Some("sess-2"));
    assert_ne!(two[0], one[0]);
    let none = trace(None);
    assert_eq!(none.len(), 2);
    assert_ne!(none[0], none[1], "without an id each call is its own trace");
    assert!(
        spans.iter().all(|s| s.span.parent_span_id.is_empty()),
        "all root spans"
    );
    // The trace id is derived from the session id alone: stable across restarts and instances.
    assert_eq!(
        one[0],
        hex(&llmtap::telemetry::spans::session_trace_id("sess-1").to_bytes())
    );
}

#[tokio::test]
async fn a_dead_collector_changes_nothing_for_clients_and_drops_are_counted() {
    let upstream = FakeUpstream::start().await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let blackhole = Blackhole::start().await;
    let baseline = harness::start(&upstream, &[]).await;
    let mut direct = client::direct(upstream.addr, HOST, &upstream.ca_pem).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &[], false);
    let want = collect(direct.send(req).await.unwrap()).await.body();

    let median = |mut v: Vec<Duration>| {
        v.sort();
        v[v.len() / 2]
    };
    let timings = |tap: &harness::Tap| {
        let tap_proxy = tap.proxy;
        let ca = tap.ca_pem.clone();
        let want = want.clone();
        async move {
            let mut took = Vec::new();
            for _ in 0..15 {
                let t = Instant::now();
                let mut conn = client::via_proxy(tap_proxy, HOST, &ca, false).await;
                let req = client::messages_request(
                    HOST,
                    "/v1/messages",
                    &body("stream_text"),
                    &[],
                    false,
                );
                let res = collect(conn.send(req).await.expect("call succeeds")).await;
                took.push(t.elapsed());
                assert_eq!(res.body(), want, "identical bytes");
            }
            took
        }
    };
    let base = median(timings(&baseline).await);
    for (endpoint, protocol) in [
        (format!("http://{refused}"), "http/protobuf"),
        (format!("http://{}", blackhole.addr), "http/protobuf"),
        (format!("http://{}", blackhole.addr), "grpc"),
    ] {
        let args = [
            "--otlp-endpoint",
            &endpoint,
            "--otel-exporter-otlp-protocol",
            protocol,
            "--otel-exporter-otlp-timeout",
            "500",
        ];
        let tap = harness::start(&upstream, &args).await;
        let with_dead_collector = median(timings(&tap).await);
        // The exporter works on its own thread; calls must not wait for it. 50 ms is far above
        // this path's noise and far below any export timeout.
        assert!(
            with_dead_collector < base + Duration::from_millis(50),
            "{endpoint} {protocol}: median {with_dead_collector:?} vs {base:?} without export"
        );
        // Export attempts fail (refused, or time out after 500 ms): counted, never hidden.
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let m = tap.metrics().await;
            let failures = metric(&m, "llmtap_otlp_export_failures_total", &[]);
            let dropped = metric(&m, "llmtap_spans_dropped_total", &[]);
            if failures >= 1.0 && dropped >= 15.0 {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "{endpoint} {protocol}: failures {failures}, dropped {dropped}"
            );
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test]
async fn no_key_and_no_prompt_text_in_any_exported_byte() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otel-metrics-exporter",
            "otlp",
            "--otel-metric-export-interval",
            "100",
        ],
    )
    .await;
    let key = "sk-ant-api03-OTLP-SECRET-KEY-7777";
    let prompt = br#"{"model":"claude-sonnet-4-6","max_tokens":64,"stream":true,
        "system":"PROMPT-MARKER-system the secret plan",
        "messages":[{"role":"user","content":"PROMPT-MARKER-user what is in /etc/shadow"}]}"#;
    call(
        &tap,
        prompt,
        &[
            ("x-api-key", key),
            ("authorization", &format!("Bearer {key}")),
        ],
    )
    .await;
    tap.next_record().await;
    receiver.call_spans(1).await;
    // The metrics too: every exported byte, spans and metrics, is checked.
    receiver
        .metric_where("gen_ai.client.operation.duration", |m| !m.points.is_empty())
        .await;
    let raw = String::from_utf8_lossy(&receiver.raw()).into_owned();
    assert!(
        raw.contains("claude-sonnet-4-6"),
        "the receiver got the span"
    );
    for secret in [key, "PROMPT-MARKER", "secret plan", "man-in-the-middle"] {
        assert!(!raw.contains(secret), "{secret} was exported");
    }
}

#[tokio::test]
async fn without_an_endpoint_there_is_no_exporter() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    assert!(tap.running.as_ref().unwrap().telemetry.spans.is_none());
    let disabled = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            "http://127.0.0.1:9",
            "--otel-sdk-disabled",
            "true",
        ],
    )
    .await;
    assert!(disabled.running.as_ref().unwrap().telemetry.spans.is_none());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_exports_its_own_diagnostics_and_flushes_at_shutdown() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::grpc().await;
    let home = tempfile::tempdir().unwrap();
    let resolve = format!("api.anthropic.com:443:{}", upstream.addr);
    let mut llmtap = Llmtap::spawn(
        home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--otel-exporter-otlp-protocol",
            "grpc",
            "--otel-exporter-otlp-endpoint",
            &receiver.endpoint(),
            "--otel-service-name",
            "agents-proxy",
            "--otel-resource-attributes",
            "deployment.environment=test",
            "--otlp-diagnostics",
        ],
    );
    let ca = crate::support::harness::get(llmtap.admin, "/ca.pem")
        .await
        .1;
    let mut conn = client::via_proxy(llmtap.proxy, HOST, &ca, false).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &[], false);
    assert!(collect(conn.send(req).await.unwrap()).await.end.is_ok());
    // SIGTERM at once: the call span is still in the batch and must be flushed on the way out.
    let status = tokio::task::spawn_blocking(move || {
        let status = llmtap.terminate();
        (status, llmtap)
    })
    .await
    .unwrap()
    .0;
    assert_eq!(status.code(), Some(0));
    let calls = receiver.call_spans(1).await;
    assert_eq!(
        calls[0].resource.get("service.name"),
        Some(&Value::StringValue("agents-proxy".into()))
    );
    assert_eq!(
        calls[0].resource.get("deployment.environment"),
        Some(&Value::StringValue("test".into()))
    );
    // Phoenix files spans by this resource attribute; it names the service.
    assert_eq!(
        calls[0].resource.get("openinference.project.name"),
        Some(&Value::StringValue("agents-proxy".into()))
    );
    let all = receiver.spans();
    let internal: Vec<_> = all
        .iter()
        .filter(|s| s.scope == "llmtap-internal")
        .collect();
    assert!(
        internal.iter().any(|s| s.span.name == "llmtap.start"),
        "{all:?}"
    );
    // Diagnostics (asked for with --otlp-diagnostics) travel under a service of their own,
    // never among the calls a GenAI backend shows.
    for s in &internal {
        for key in ["service.name", "openinference.project.name"] {
            assert_eq!(
                s.resource.get(key),
                Some(&Value::StringValue("agents-proxy-diagnostics".into())),
                "{key}"
            );
        }
    }
    for s in &all {
        assert!(
            s.scope == "llmtap" || s.scope == "llmtap-internal",
            "foreign span {}: {}",
            s.scope,
            s.span.name
        );
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[tokio::test]
async fn capture_content_exports_the_conventions_shapes_capped() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let endpoint = receiver.endpoint();
    let mut tap = harness::start(
        &upstream,
        &["--otlp-endpoint", &endpoint, "--capture-content"],
    )
    .await;
    call(
        &tap,
        &body("stream_tool_use"),
        &[("x-fake-scenario", "stream_tool_use")],
    )
    .await;
    let record = tap.next_record().await;
    let s = &receiver.call_spans(1).await[0];
    let parse = |key: &str| -> serde_json::Value {
        serde_json::from_str(s.str(key).unwrap_or_else(|| panic!("{key} missing"))).expect(key)
    };
    let request: serde_json::Value = serde_json::from_slice(&body("stream_tool_use")).unwrap();

    let system = parse("gen_ai.system_instructions");
    let system_text: String = system
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["content"].as_str().unwrap())
        .collect();
    assert!(
        system
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"] == "text")
    );
    assert_eq!(
        system_text.chars().count() as u64,
        record.request.as_ref().unwrap().system_chars
    );

    let input = parse("gen_ai.input.messages");
    assert_eq!(
        input.as_array().unwrap().len(),
        request["messages"].as_array().unwrap().len()
    );
    assert_eq!(input[0]["role"], "user");
    assert!(
        input[0]["parts"]
            .as_array()
            .unwrap()
            .iter()
            .all(|p| p["type"].is_string())
    );

    let tools = parse("gen_ai.tool.definitions");
    assert_eq!(tools.as_array().unwrap().len(), 3);
    assert_eq!(tools[0]["type"], "function");
    assert_eq!(tools[0]["name"], "Bash");
    assert_eq!(tools[0]["parameters"], request["tools"][0]["input_schema"]);

    let output = parse("gen_ai.output.messages");
    assert_eq!(output[0]["role"], "assistant");
    // v1.41's output message schema requires it (the latest conventions drop it: see
    // `the_latest_conventions_are_opt_in_and_rename_spans_and_metrics`).
    assert_eq!(output[0]["finish_reason"], "tool_use");
    let parts = output[0]["parts"].as_array().unwrap();
    let tool_call = parts
        .iter()
        .find(|p| p["type"] == "tool_call")
        .expect("tool call part");
    assert_eq!(tool_call["name"], "Bash");
    assert!(
        tool_call["arguments"].is_object(),
        "assembled from input_json_delta: {tool_call}"
    );
    assert!(parts.iter().any(|p| p["type"] == "reasoning"));
    assert!(
        parts
            .iter()
            .any(|p| p["type"] == "text" && !p["content"].as_str().unwrap().is_empty())
    );
    assert_eq!(s.attr("llmtap.content.truncated"), None);
    // Content goes to spans only: the call line stays free of it.
    assert!(!tap.calls.text().contains("input_schema"));

    // With a small cap every attribute stays valid JSON within the cap, and says it was cut.
    let small = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &small.endpoint(),
            "--capture-content",
            "--capture-max-bytes",
            "200",
        ],
    )
    .await;
    call(
        &tap,
        &body("stream_tool_use"),
        &[("x-fake-scenario", "stream_tool_use")],
    )
    .await;
    tap.next_record().await;
    let s = &small.call_spans(1).await[0];
    let truncated = s
        .strings("llmtap.content.truncated")
        .expect("cap hit recorded");
    assert!(
        truncated.contains(&"gen_ai.tool.definitions".to_owned()),
        "{truncated:?}"
    );
    for key in [
        "gen_ai.system_instructions",
        "gen_ai.input.messages",
        "gen_ai.tool.definitions",
        "gen_ai.output.messages",
    ] {
        let value = s.str(key).expect(key);
        assert!(value.len() <= 200, "{key}: {} bytes", value.len());
        serde_json::from_str::<serde_json::Value>(value).expect("still valid JSON");
    }
}

#[tokio::test]
async fn https_collectors_work_with_their_ca() {
    let upstream = FakeUpstream::start().await;
    let (receiver, ca_pem) = Receiver::https().await;
    let ca_file = tempfile::NamedTempFile::new().unwrap();
    std::fs::write(ca_file.path(), ca_pem).unwrap();
    let args = [
        "--otel-exporter-otlp-traces-endpoint",
        &format!("{}/v1/traces", receiver.https_endpoint()),
        "--otel-exporter-otlp-certificate",
        ca_file.path().to_str().unwrap(),
        "--otel-exporter-otlp-headers",
        "x-tenant=team%20a",
    ];
    let mut tap = harness::start(&upstream, &args).await;
    call(&tap, &body("json_message"), &[]).await;
    tap.next_record().await;
    let spans = receiver.call_spans(1).await;
    // The receiver speaks TLS only: a span arriving proves the exporter trusted its CA.
    assert_eq!(spans[0].str("llmtap.outcome"), Some("ok"));
    assert_eq!(
        metric(
            &tap.metrics().await,
            "llmtap_otlp_export_failures_total",
            &[]
        ),
        0.0
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unreachable_collector_is_reported_once() {
    let upstream = FakeUpstream::start().await;
    let refused = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let home = tempfile::tempdir().unwrap();
    let resolve = format!("api.anthropic.com:443:{}", upstream.addr);
    let endpoint = format!("http://{refused}");
    let mut llmtap = Llmtap::spawn(
        home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--otlp-endpoint",
            &endpoint,
        ],
    );
    let ca = crate::support::harness::get(llmtap.admin, "/ca.pem")
        .await
        .1;
    let deadline = Instant::now() + Duration::from_secs(20);
    // Calls in separate batches until the exporter has failed at least three times.
    loop {
        let mut conn = client::via_proxy(llmtap.proxy, HOST, &ca, false).await;
        let req = client::messages_request(HOST, "/v1/messages", &body("json_message"), &[], false);
        assert_eq!(collect(conn.send(req).await.unwrap()).await.status, 200);
        let m = crate::support::harness::get(llmtap.admin, "/metrics")
            .await
            .1;
        if metric(&m, "llmtap_otlp_export_failures_total", &[]) >= 3.0 {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "exports did not fail as expected:\n{m}"
        );
        tokio::time::sleep(Duration::from_millis(700)).await;
    }
    let llmtap = tokio::task::spawn_blocking(move || {
        llmtap.terminate();
        llmtap
    })
    .await
    .unwrap();
    let stderr = llmtap.stderr();
    assert_eq!(
        stderr.matches("cannot export spans").count(),
        1,
        "one warning, rate-limited:\n{stderr}"
    );
    assert!(
        stderr.contains(&endpoint),
        "the warning names the collector"
    );
}

/// A point's attribute as a string (ints printed), for comparing attribute sets.
fn point_attrs(p: &crate::support::otlp::Point) -> std::collections::BTreeMap<String, String> {
    p.attributes
        .iter()
        .map(|(k, v)| {
            let v = match v {
                Value::StringValue(s) => s.clone(),
                Value::IntValue(i) => i.to_string(),
                Value::BoolValue(b) => b.to_string(),
                Value::DoubleValue(d) => d.to_string(),
                other => format!("{other:?}"),
            };
            (k.clone(), v)
        })
        .collect()
}

#[tokio::test]
async fn gen_ai_client_metrics_reach_an_otlp_receiver_with_the_conventions_names_and_buckets() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otel-metrics-exporter",
            "otlp",
            "--otel-metric-export-interval",
            "200",
            "--team",
            "platform",
        ],
    )
    .await;
    // Diagnostics are off by default: a GenAI backend sees only calls.
    let running = tap.running.as_ref().unwrap();
    assert!(
        running
            .telemetry
            .spans
            .as_ref()
            .unwrap()
            .internal_tracer()
            .is_none()
    );
    let headers = [
        ("x-fake-scenario", "stream_tool_use"),
        ("x-fake-first-delay-ms", "100"),
    ];
    assert!(
        call(&tap, &body("stream_tool_use"), &headers)
            .await
            .end
            .is_ok()
    );
    let record = tap.next_record().await;
    let u = &record.response.usage;
    let base: std::collections::BTreeMap<String, String> = [
        ("gen_ai.operation.name", "chat"),
        ("gen_ai.provider.name", "anthropic"),
        ("gen_ai.request.model", "claude-opus-4-8"),
        ("gen_ai.response.model", "claude-opus-4-8"),
        ("server.address", HOST),
        ("server.port", "443"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v.to_owned()))
    .collect();
    let bounds = [
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];

    let duration = receiver
        .metric_where("gen_ai.client.operation.duration", |m| !m.points.is_empty())
        .await;
    assert_eq!((duration.kind, duration.unit.as_str()), ("histogram", "s"));
    assert_eq!(duration.temporality, 2, "cumulative by default");
    assert_eq!(duration.scope, "llmtap");
    assert_eq!(
        duration.resource.get("service.name"),
        Some(&Value::StringValue("llmtap".into()))
    );
    let p = &duration.points[0];
    assert_eq!(
        point_attrs(p),
        base,
        "the required attributes, no error.type"
    );
    assert_eq!(p.bounds, bounds);
    assert_eq!(p.count, Some(1));
    assert!((p.sum.unwrap() - record.duration.as_secs_f64()).abs() < 1e-6);

    let tokens = receiver
        .metric_where("gen_ai.client.token.usage", |m| m.points.len() == 2)
        .await;
    assert_eq!(
        (tokens.kind, tokens.unit.as_str()),
        ("histogram", "{token}")
    );
    for (kind, want) in [("input", u.input), ("output", u.output)] {
        let point = tokens
            .points
            .iter()
            .find(|p| p.str("gen_ai.token.type") == Some(kind))
            .unwrap_or_else(|| panic!("{kind}: {:?}", tokens.points));
        assert_eq!(point.count, Some(1));
        assert_eq!(point.sum, want.map(|v| v as f64), "{kind}");
        assert_eq!(point.bounds[0], 1.0);
        assert_eq!(*point.bounds.last().unwrap(), 67108864.0);
        let mut expected = base.clone();
        expected.insert("gen_ai.token.type".into(), kind.into());
        assert_eq!(point_attrs(point), expected);
    }

    let first = receiver
        .metric_where("gen_ai.client.operation.time_to_first_chunk", |m| {
            !m.points.is_empty()
        })
        .await;
    let ttft = record.ttft.expect("streamed").as_secs_f64();
    assert!(ttft >= 0.1);
    assert_eq!(first.points[0].count, Some(1));
    assert!((first.points[0].sum.unwrap() - ttft).abs() < 1e-6);

    // The fake upstream spaces events 5 ms apart: every read after the first content read
    // is one gap of at least that.
    let chunks = receiver
        .metric_where("gen_ai.client.operation.time_per_output_chunk", |m| {
            !m.points.is_empty()
        })
        .await;
    let gaps = record
        .chunk_gaps
        .as_ref()
        .expect("gaps kept with metrics on");
    let p = &chunks.points[0];
    assert_eq!(p.count, Some(gaps.len()));
    // Bucket by bucket as the call saw them: the replayed means land where the gaps were.
    let counts: Vec<u64> = gaps.counts().iter().map(|c| u64::from(*c)).collect();
    assert_eq!(p.buckets, counts);
    assert!(p.count.unwrap() >= 1);
    assert!(p.sum.unwrap() / p.count.unwrap() as f64 >= 0.004, "{p:?}");
    assert_eq!(p.bounds, bounds);

    let cost = receiver
        .metric_where("llmtap.cost", |m| !m.points.is_empty())
        .await;
    assert_eq!((cost.kind, cost.unit.as_str()), ("sum", "USD"));
    assert!(cost.monotonic);
    let p = &cost.points[0];
    assert!((p.value.unwrap() - record.cost_usd.expect("priced")).abs() < 1e-12);
    let attrs = point_attrs(p);
    assert_eq!(attrs["llmtap.team"], "platform");
    assert_eq!(attrs["llmtap.user"], "unknown");
    assert_eq!(attrs["llmtap.client"], "anthropic-sdk-python");
    assert_eq!(attrs["llmtap.billing"], "api");
    assert_eq!(attrs["gen_ai.provider.name"], "anthropic");

    // v1.41 by default: none of the latest conventions' metrics beside these.
    for m in receiver.metrics() {
        assert!(
            !m.name.starts_with("gen_ai.client.inference."),
            "{} exported by default",
            m.name
        );
    }
    // Prometheus is unchanged beside it, and the metrics exports did not fail.
    let m = tap.metrics().await;
    assert_eq!(metric(&m, "llmtap_requests_total", &[]), 1.0);
    assert_eq!(
        metric(
            &m,
            "llmtap_otlp_export_failures_total",
            &[("signal", "metrics")]
        ),
        0.0
    );
    // A failed call carries error.type on the duration, as the conventions require.
    let failed = [("x-fake-scenario", "error_429")];
    call(&tap, &body("stream_tool_use"), &failed).await;
    let failed = tap.next_record().await;
    let error = failed.error_type.as_ref().expect("failed").to_string();
    receiver
        .metric_where("gen_ai.client.operation.duration", |m| {
            m.points
                .iter()
                .any(|p| p.str("error.type") == Some(error.as_str()))
        })
        .await;
}

#[tokio::test]
async fn the_latest_conventions_are_opt_in_and_rename_spans_and_metrics() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::grpc().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otel-exporter-otlp-endpoint",
            &receiver.endpoint(),
            "--otel-exporter-otlp-protocol",
            "grpc",
            "--otel-exporter-otlp-metrics-endpoint",
            &receiver.endpoint(),
            "--otel-metric-export-interval",
            "200",
            "--otel-exporter-otlp-metrics-temporality-preference",
            "delta",
            "--otel-semconv-stability-opt-in",
            "gen_ai_latest_experimental",
            "--capture-content",
        ],
    )
    .await;
    let headers = [("x-fake-scenario", "stream_tool_use")];
    assert!(
        call(&tap, &body("stream_tool_use"), &headers)
            .await
            .end
            .is_ok()
    );
    let record = tap.next_record().await;
    let u = &record.response.usage;
    let spans = receiver.call_spans(1).await;
    let s = &spans[0];
    assert_eq!(s.attr("gen_ai.usage.cache_creation.input_tokens"), None);
    let written = u.cache_write_5m.unwrap_or(0) + u.cache_write_1h.unwrap_or(0);
    assert_eq!(
        s.int("gen_ai.usage.cache_write.input_tokens"),
        Some(written as i64)
    );
    let output: serde_json::Value =
        serde_json::from_str(s.str("gen_ai.output.messages").expect("captured")).unwrap();
    assert!(output[0].get("finish_reason").is_none(), "{output}");
    assert_eq!(
        s.strings("gen_ai.response.finish_reasons"),
        Some(vec!["tool_use".to_owned()])
    );

    let duration = receiver
        .metric_where("gen_ai.client.inference.duration", |m| !m.points.is_empty())
        .await;
    assert_eq!(duration.temporality, 1, "delta, as preferred");
    let input = receiver
        .metric_where("gen_ai.client.inference.usage.input_tokens", |m| {
            !m.points.is_empty()
        })
        .await;
    assert_eq!((input.kind, input.unit.as_str()), ("sum", "{token}"));
    assert_eq!(input.points[0].value, u.input.map(|v| v as f64));
    assert_eq!(
        input.points[0].str("gen_ai.token.modality"),
        Some("unknown")
    );
    let cache_read = receiver
        .metric_where(
            "gen_ai.client.inference.usage.cache_read.input_tokens",
            |m| !m.points.is_empty(),
        )
        .await;
    assert_eq!(cache_read.points[0].value, u.cache_read.map(|v| v as f64));
    let per_call = receiver
        .metric_where("gen_ai.client.inference.operation.output_tokens", |m| {
            !m.points.is_empty()
        })
        .await;
    assert_eq!(per_call.points[0].sum, u.output.map(|v| v as f64));
    // Token counting is not inference: its duration stays the operation metric, and the
    // tokens it counted are not usage.
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let count = FakeUpstream::fixture_in("anthropic", "count_tokens", "request.json");
    let req = client::post(
        HOST,
        "/v1/messages/count_tokens",
        &count,
        &[("x-fake-scenario", "count_tokens")],
    );
    assert_eq!(collect(conn.send(req).await.unwrap()).await.status, 200);
    let counted = tap.next_record().await;
    assert_eq!(counted.operation.as_str(), "count_tokens");
    receiver
        .metric_where("gen_ai.client.operation.duration", |m| {
            m.points
                .iter()
                .any(|p| p.str("gen_ai.operation.name") == Some("count_tokens"))
        })
        .await;
    for m in receiver.metrics() {
        if m.name.starts_with("gen_ai.client.inference.") {
            assert!(
                m.points
                    .iter()
                    .all(|p| p.str("gen_ai.operation.name") != Some("count_tokens")),
                "{} has a count_tokens point",
                m.name
            );
        }
    }
    let seen = check_against_table(&receiver);
    assert!(seen.contains("gen_ai.token.modality"), "{seen:?}");
    // The v1.41 names are not exported beside them: no token usage histogram, and the
    // operation duration only for what is not inference.
    for m in receiver.metrics() {
        assert_ne!(m.name, "gen_ai.client.token.usage");
        if m.name == "gen_ai.client.operation.duration" {
            assert!(
                m.points
                    .iter()
                    .all(|p| p.str("gen_ai.operation.name") == Some("count_tokens")),
                "{m:?}"
            );
        }
    }
}

#[tokio::test]
async fn a_dead_metrics_collector_is_counted_and_changes_nothing_for_clients() {
    let upstream = FakeUpstream::start().await;
    // A port nothing listens on.
    let closed = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let endpoint = format!("http://{}/v1/metrics", closed.local_addr().unwrap());
    drop(closed);
    // Spans go to a live receiver: one signal's dead collector must not touch the other.
    let receiver = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otel-exporter-otlp-metrics-endpoint",
            &endpoint,
            "--otel-metric-export-interval",
            "100",
            "--otel-exporter-otlp-metrics-timeout",
            "500",
        ],
    )
    .await;
    let headers = [("x-fake-scenario", "stream_text")];
    let res = call(&tap, &body("stream_text"), &headers).await;
    assert!(res.end.is_ok());
    receiver.call_spans(1).await;
    tap.next_record().await;
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let m = tap.metrics().await;
        if metric(
            &m,
            "llmtap_otlp_export_failures_total",
            &[("signal", "metrics")],
        ) >= 1.0
        {
            assert_eq!(
                metric(
                    &m,
                    "llmtap_otlp_export_failures_total",
                    &[("signal", "traces")]
                ),
                0.0
            );
            break;
        }
        assert!(
            Instant::now() < deadline,
            "no metrics export failure counted: {m}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    // Calls go on while exports fail.
    let res = call(&tap, &body("stream_text"), &headers).await;
    assert!(res.end.is_ok());
    tap.next_record().await;
}

/// The OTLP type name of a decoded value, as the conventions table writes it.
fn otlp_type(v: &Value) -> String {
    match v {
        Value::StringValue(_) => "string".into(),
        Value::IntValue(_) => "int".into(),
        Value::DoubleValue(_) => "double".into(),
        Value::BoolValue(_) => "bool".into(),
        Value::ArrayValue(a) => match a.values.first().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(_)) | None => "string[]".into(),
            Some(other) => format!("{}[]", otlp_type(other)),
        },
        other => format!("{other:?}"),
    }
}

/// Every name the receiver decoded (span and resource attributes, events, metrics and their
/// attributes) must be in `llmtap::telemetry::conventions::TABLE`, on the right carrier, with
/// the decoded type and unit. Returns the names seen.
fn check_against_table(receiver: &Receiver) -> std::collections::BTreeSet<String> {
    use llmtap::telemetry::conventions::{Carrier, find};
    let mut seen = std::collections::BTreeSet::new();
    fn check(
        seen: &mut std::collections::BTreeSet<String>,
        key: &str,
        value: &Value,
        allowed: &[Carrier],
        what: &str,
    ) {
        let entry = find(key).unwrap_or_else(|| panic!("{what}: `{key}` is not in the table"));
        assert!(
            allowed.contains(&entry.carrier),
            "{what}: `{key}` is listed on {:?}",
            entry.carrier
        );
        let kind = otlp_type(value);
        assert!(
            kind == entry.kind || Some(kind.as_str()) == entry.latest_kind,
            "{what}: the type of `{key}` is {kind}, the table says {}",
            entry.kind
        );
        seen.insert(entry.name.to_owned());
    }
    for s in receiver.spans() {
        let tool = s.span.name.starts_with("execute_tool ");
        let carriers: &[Carrier] = if tool {
            &[Carrier::ToolSpan, Carrier::BothSpans, Carrier::WithMetrics]
        } else {
            &[Carrier::Span, Carrier::BothSpans, Carrier::WithMetrics]
        };
        for kv in &s.span.attributes {
            let value = kv.value.as_ref().and_then(|v| v.value.as_ref()).unwrap();
            check(&mut seen, &kv.key, value, carriers, &s.span.name);
        }
        for (key, value) in &s.resource {
            check(&mut seen, key, value, &[Carrier::Resource], "resource");
        }
        for event in &s.span.events {
            let entry = find(&event.name).expect("the event is in the table");
            assert_eq!(entry.carrier, Carrier::Event);
            seen.insert(event.name.clone());
        }
    }
    for m in receiver.metrics() {
        let entry =
            find(&m.name).unwrap_or_else(|| panic!("metric {} is not in the table", m.name));
        assert!(
            matches!(entry.carrier, Carrier::Metric | Carrier::LatestMetric),
            "{}",
            m.name
        );
        let kind = match (m.kind, m.monotonic) {
            ("sum", true) => "counter",
            (kind, _) => kind,
        };
        assert_eq!(kind, entry.kind, "the instrument of {}", m.name);
        assert_eq!(m.unit, entry.unit, "the unit of {}", m.name);
        seen.insert(m.name.clone());
        for (key, value) in &m.resource {
            check(
                &mut seen,
                key,
                value,
                &[Carrier::Resource],
                "metric resource",
            );
        }
        for p in &m.points {
            for (key, value) in &p.attributes {
                check(
                    &mut seen,
                    key,
                    value,
                    &[Carrier::WithMetrics, Carrier::MetricAttribute],
                    &m.name,
                );
            }
        }
    }
    seen
}

#[tokio::test]
async fn every_exported_name_is_in_the_conventions_table_with_its_type() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otel-metrics-exporter",
            "otlp",
            "--otel-metric-export-interval",
            "100",
            "--capture-content",
            "--team",
            "platform",
            "--user",
            "ana",
        ],
    )
    .await;
    let failed = (
        "api.anthropic.com",
        "/v1/messages",
        "anthropic",
        "error_429",
    );
    let calls: Vec<_> = std::iter::once(failed)
        .chain(harness::STREAMED_DIALECTS)
        .collect();
    for &(host, path, dialect, case) in &calls {
        let mut conn = client::via_proxy(tap.proxy, host, &tap.ca_pem, false).await;
        let body = FakeUpstream::fixture_in(dialect, case, "request.json");
        collect(
            conn.send(client::post(
                host,
                path,
                &body,
                &[("x-fake-scenario", case)],
            ))
            .await
            .unwrap(),
        )
        .await;
        tap.next_record().await;
    }
    // The tool round trip, for the execute_tool span.
    let res = call(
        &tap,
        &harness::tool_result_follow_up(),
        &[("x-fake-scenario", "stream_text")],
    )
    .await;
    assert!(res.end.is_ok());
    tap.next_record().await;
    receiver.call_spans(calls.len() + 1).await;
    let deadline = Instant::now() + Duration::from_secs(10);
    while !receiver
        .spans()
        .iter()
        .any(|s| s.span.name == "execute_tool Bash")
    {
        assert!(Instant::now() < deadline, "no tool span");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    receiver
        .metric_where("llmtap.cost", |m| m.points.len() >= 2)
        .await;
    let seen = check_against_table(&receiver);
    // What these calls must have exercised, at least: a rename of any of these in the code
    // alone fails above; of the table alone, here.
    for name in [
        "gen_ai.operation.name",
        "gen_ai.provider.name",
        "gen_ai.request.model",
        "gen_ai.response.model",
        "gen_ai.response.id",
        "gen_ai.response.finish_reasons",
        "gen_ai.usage.input_tokens",
        "gen_ai.usage.output_tokens",
        "gen_ai.usage.cache_read.input_tokens",
        "gen_ai.usage.cache_creation.input_tokens",
        "gen_ai.usage.cache_write.input_tokens",
        "gen_ai.usage.cost",
        "gen_ai.conversation.id",
        "gen_ai.request.stream",
        "gen_ai.response.time_to_first_chunk",
        "gen_ai.input.messages",
        "gen_ai.output.messages",
        "gen_ai.system_instructions",
        "gen_ai.tool.definitions",
        "gen_ai.tool.name",
        "gen_ai.tool.call.id",
        "gen_ai.tool.type",
        "gen_ai.agent.name",
        "openai.api.type",
        "session.id",
        "user.id",
        "error.type",
        "http.response.status_code",
        "server.address",
        "server.port",
        "llmtap.first_token",
        "service.name",
        "openinference.project.name",
        "gen_ai.client.operation.duration",
        "gen_ai.client.token.usage",
        "gen_ai.client.operation.time_to_first_chunk",
        "gen_ai.client.operation.time_per_output_chunk",
        "llmtap.cost",
        "gen_ai.token.type",
    ] {
        assert!(seen.contains(name), "{name} was not exported: {seen:?}");
    }
}

/// A client may send any string as its model: one of 1 MiB must not become a label, a span
/// attribute or an OTel metric attribute (8 MiB of it made every OTel metrics export too large
/// for a collector, forever; attacker review of issue 16).
#[tokio::test]
async fn a_megabyte_model_name_is_no_label_or_attribute() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otel-metrics-exporter",
            "otlp",
            "--otel-metric-export-interval",
            "100",
        ],
    )
    .await;
    let model = "m".repeat(1 << 20);
    let request = serde_json::json!({"model": model, "max_tokens": 16, "stream": true,
        "messages": [{"role": "user", "content": "hi"}]});
    let res = call(
        &tap,
        &serde_json::to_vec(&request).unwrap(),
        &[("x-fake-scenario", "stream_text")],
    )
    .await;
    assert!(res.end.is_ok(), "relayed whatever the model");
    let record = tap.next_record().await;
    assert_eq!(record.request.as_ref().and_then(|q| q.model.clone()), None);
    let spans = receiver.call_spans(1).await;
    assert!(
        spans[0].span.name.len() < 300,
        "{}",
        &spans[0].span.name[..80]
    );
    assert!(spans[0].attr("gen_ai.request.model").is_none());
    let duration = receiver
        .metric_where("gen_ai.client.operation.duration", |m| !m.points.is_empty())
        .await;
    for p in &duration.points {
        assert!(p.attributes.values().all(|v| match v {
            Value::StringValue(s) => s.len() <= 256,
            _ => true,
        }));
    }
    let m = tap.metrics().await;
    assert!(
        m.lines().all(|l| l.len() < 2048),
        "a label as long as the model"
    );
}

#[tokio::test]
async fn gzip_compression_is_configured_per_the_spec_for_spans_and_metrics() {
    let upstream = FakeUpstream::start().await;
    let receiver = Receiver::http().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &receiver.endpoint(),
            "--otel-exporter-otlp-compression",
            "gzip",
            "--otel-metrics-exporter",
            "otlp",
            "--otel-metric-export-interval",
            "100",
        ],
    )
    .await;
    let headers = [("x-fake-scenario", "stream_text")];
    assert!(call(&tap, &body("stream_text"), &headers).await.end.is_ok());
    tap.next_record().await;
    receiver.call_spans(1).await;
    receiver
        .metric_where("gen_ai.client.operation.duration", |m| !m.points.is_empty())
        .await;
    assert!(receiver.gzipped() >= 2, "spans and metrics both compressed");
}
