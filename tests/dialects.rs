//! Every dialect end to end through llmtap (real TLS, CONNECT, the fake upstream speaking each
//! exact wire format): the client's bytes are identical to a direct call, compressed or not,
//! and the record carries the fixture's expected facts. The Responses WebSocket is driven
//! by a real WebSocket client (tungstenite).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use crate::support::{
    assert_subset, both_ways, client,
    harness::{self, metric},
};
use hudsucker::futures::{SinkExt as _, StreamExt as _};
use hudsucker::tokio_tungstenite::tungstenite::Message;
use llmtap::vocab::Outcome;
use llmtap_fake_upstream::{FakeUpstream, fixtures};
use serde_json::Value;

/// One call of the table: where it goes, which fixture the upstream serves and expects.
struct Case {
    host: &'static str,
    path: &'static str,
    dialect: &'static str,
    case: &'static str,
    provider: &'static str,
    outcome: Outcome,
}

const CASES: &[Case] = &[
    Case {
        host: "api.openai.com",
        path: "/v1/chat/completions",
        dialect: "openai_chat",
        case: "stream_usage",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/chat/completions",
        dialect: "openai_chat",
        case: "stream_no_usage",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/chat/completions",
        dialect: "openai_chat",
        case: "stream_tool_calls",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/chat/completions",
        dialect: "openai_chat",
        case: "json_completion",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/chat/completions",
        dialect: "openai_chat",
        case: "error_429",
        provider: "openai",
        outcome: Outcome::RateLimited,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/responses",
        dialect: "openai_responses",
        case: "stream_text",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/responses",
        dialect: "openai_responses",
        case: "stream_function_call",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/responses",
        dialect: "openai_responses",
        case: "stream_failed",
        provider: "openai",
        outcome: Outcome::UpstreamError,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/responses",
        dialect: "openai_responses",
        case: "stream_incomplete",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "api.openai.com",
        path: "/v1/responses",
        dialect: "openai_responses",
        case: "json_response",
        provider: "openai",
        outcome: Outcome::Ok,
    },
    Case {
        host: "chatgpt.com",
        path: "/backend-api/codex/responses",
        dialect: "openai_responses",
        case: "stream_function_call",
        provider: "openai",
        outcome: Outcome::Ok,
    },
];

fn fixture(dialect: &str, case: &str, ext: &str) -> Vec<u8> {
    FakeUpstream::fixture_in(dialect, case, ext)
}

fn expected(dialect: &str, case: &str) -> Value {
    serde_json::from_slice(&fixture(dialect, case, "expected.json")).unwrap()
}

#[tokio::test]
async fn openai_chat_and_responses_are_recorded_with_identical_bytes() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    for c in CASES {
        let name = format!("{} {}/{}", c.host, c.dialect, c.case);
        let headers = [
            ("x-fake-scenario", c.case),
            ("user-agent", "OpenAI/Python 3.57.0"),
        ];
        let body = fixture(c.dialect, c.case, "request.json");
        let (direct, via) = both_ways(&upstream, &tap, c.host, c.path, &body, &headers).await;
        assert!(direct.end.is_ok() && via.end.is_ok(), "{name}");
        assert_eq!(via.status, direct.status, "{name}");
        assert_eq!(via.body(), direct.body(), "{name}: bytes");
        let record = tap.next_record().await;
        assert_eq!(record.provider.as_str(), c.provider, "{name}");
        assert_eq!(record.outcome, c.outcome, "{name}: {record:?}");
        assert_eq!(record.parse_error, None, "{name}");
        assert_eq!(record.client.as_str(), "openai-python");
        let want = expected(c.dialect, c.case);
        assert_subset(
            &name,
            &want["response"],
            &serde_json::to_value(&record.response).unwrap(),
        );
        assert_subset(
            &name,
            &want["request"],
            &serde_json::to_value(record.request.as_ref().unwrap()).unwrap(),
        );
        if record.stream
            && record.outcome == Outcome::Ok
            && !record.response.finish_reasons.is_empty()
        {
            assert!(record.ttft.is_some(), "{name}: streamed calls have a TTFT");
        }
    }
    let m = tap.metrics().await;
    assert_eq!(
        metric(&m, "llmtap_usage_missing_total", &[("provider", "openai")]),
        1.0,
        "stream without include_usage"
    );
    assert_eq!(
        metric(
            &m,
            "llmtap_tool_calls_total",
            &[("provider", "openai"), ("tool", "shell")]
        ),
        2.0,
        "{m}"
    );
}

/// The `llmtap.api` of a Gemini fixture's host.
fn record_api(host: &str) -> &'static str {
    if host == "cloudcode-pa.googleapis.com" {
        "gemini_code_assist"
    } else {
        "gemini_generate_content"
    }
}

#[tokio::test]
async fn gemini_and_code_assist_are_recorded_and_the_key_never_is() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let key = "AIzaSyFAKE-GEMINI-KEY-000000000000000";
    for case in [
        "stream_sse",
        "stream_function_call",
        "stream_array",
        "json_generate",
        "codeassist_stream",
        "error_429",
    ] {
        let want = expected("gemini", case);
        let full = want["path"].as_str().unwrap();
        // The key travels in the query, as Gemini allows; it must not be recorded anywhere.
        let sep = if full.contains('?') { '&' } else { '?' };
        let path = format!("{full}{sep}key={key}");
        let host = fixtures::target("gemini", case).host;
        let host = host.as_str();
        let headers = [
            ("x-fake-scenario", case),
            ("x-goog-api-key", key),
            (
                "user-agent",
                "GeminiCLI/0.61.0/gemini-2.5-flash (linux; x64; terminal)",
            ),
        ];
        let body = fixture("gemini", case, "request.json");
        let (direct, via) = both_ways(&upstream, &tap, host, &path, &body, &headers).await;
        assert_eq!(via.body(), direct.body(), "{case}: bytes");
        let record = tap.next_record().await;
        // Gemini CLI reports Code Assist as `gcp.gen_ai` itself (its telemetry docs).
        let provider = if host == "cloudcode-pa.googleapis.com" {
            "gcp.gen_ai"
        } else {
            "gcp.gemini"
        };
        assert_eq!(record.provider.as_str(), provider, "{case}");
        assert_eq!(record.api, record_api(host), "{case}");
        assert_eq!(record.operation.as_str(), "generate_content");
        assert_eq!(record.client.as_str(), "gemini-cli");
        assert_eq!(
            record.path,
            full.split('?').next().unwrap(),
            "no query string recorded"
        );
        assert_subset(
            case,
            &want["response"],
            &serde_json::to_value(&record.response).unwrap(),
        );
        assert_subset(
            case,
            &want["request"],
            &serde_json::to_value(record.request.as_ref().unwrap()).unwrap(),
        );
        if case == "error_429" {
            assert_eq!(record.outcome, Outcome::RateLimited);
        } else {
            assert_eq!(record.outcome, Outcome::Ok, "{case}: {record:?}");
        }
    }
    let m = tap.metrics().await;
    let calls = tap.calls.text();
    assert!(
        !m.contains(key) && !calls.contains(key),
        "the API key leaked"
    );
    assert!(!calls.contains("key="), "no query string in call lines");
}

#[tokio::test]
async fn every_encoding_is_decoded_on_a_copy_for_every_dialect() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let streams: [(&str, &str); 5] = [
        ("anthropic", "stream_cache"),
        ("openai_chat", "stream_usage"),
        ("openai_responses", "stream_text"),
        ("gemini", "stream_sse"),
        ("gemini", "stream_array"),
    ];
    for (dialect, case) in streams {
        // Where the fixture was sent (its folder's route.json, or its own path).
        let target = fixtures::target(dialect, case);
        let host = target.host.as_str();
        let path = match &target.query {
            Some(query) => format!("{}?{query}", target.path),
            None => target.path.clone(),
        };
        let path = path.as_str();
        for encoding in ["gzip", "deflate", "br", "zstd"] {
            let name = format!("{dialect}/{case} {encoding}");
            let headers = [("x-fake-scenario", case), ("x-fake-encoding", encoding)];
            let body = fixture(dialect, case, "request.json");
            let (direct, via) = both_ways(&upstream, &tap, host, path, &body, &headers).await;
            assert_eq!(
                via.headers
                    .get("content-encoding")
                    .map(|v| v.to_str().unwrap()),
                Some(encoding),
                "{name}"
            );
            assert!(via.chunks.len() > 1, "{name}: still streamed");
            assert_eq!(
                via.body(),
                direct.body(),
                "{name}: the client gets the encoded bytes"
            );
            let record = tap.next_record().await;
            assert_eq!(record.parse_error, None, "{name}");
            let want = expected(dialect, case);
            assert_subset(
                &name,
                &want["response"]["usage"],
                &serde_json::to_value(&record.response.usage).unwrap(),
            );
        }
    }
    // Non-streamed bodies too.
    for encoding in ["gzip", "deflate", "br", "zstd"] {
        let headers = [
            ("x-fake-scenario", "json_completion"),
            ("x-fake-encoding", encoding),
        ];
        let body = fixture("openai_chat", "json_completion", "request.json");
        let (direct, via) = both_ways(
            &upstream,
            &tap,
            "api.openai.com",
            "/v1/chat/completions",
            &body,
            &headers,
        )
        .await;
        assert_eq!(via.body(), direct.body());
        let record = tap.next_record().await;
        assert_subset(
            encoding,
            &expected("openai_chat", "json_completion")["response"],
            &serde_json::to_value(&record.response).unwrap(),
        );
    }
}

#[tokio::test]
async fn the_responses_websocket_is_relayed_faithfully_and_each_create_is_a_call() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let headers = [
        ("sec-websocket-protocol", "llm.v1"),
        ("openai-beta", "responses_websockets=2026-02-06"),
        ("user-agent", "codex_exec/0.169.0 (Debian 12; x86_64) xterm"),
        ("session-id", "0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee"),
        ("authorization", "Bearer sk-FAKE-CODEX-KEY"),
    ];
    let (mut ws, response) = client::responses_websocket(tap.proxy, &tap.ca_pem, &headers)
        .await
        .expect("upgrade through llmtap");
    assert_eq!(response.status(), 101);
    assert_eq!(
        response
            .headers()
            .get("sec-websocket-protocol")
            .map(|v| v.to_str().unwrap()),
        Some("llm.v1"),
        "the upstream's protocol choice reaches the client"
    );
    let turns = FakeUpstream::ws_turns("ws_session");
    assert!(turns.len() >= 2);
    for turn in &turns {
        ws.send(Message::text(turn.client.clone())).await.unwrap();
        let mut got = Vec::new();
        while got.len() < turn.server.len() {
            match tokio::time::timeout(Duration::from_secs(10), ws.next())
                .await
                .expect("server frame")
            {
                Some(Ok(Message::Text(t))) => got.push(t.to_string()),
                Some(Ok(_)) => {}
                other => panic!("socket ended: {other:?}"),
            }
        }
        assert_eq!(got, turn.server, "every server message arrives unchanged");
    }
    let want: Vec<Value> =
        serde_json::from_slice(&fixture("openai_responses", "ws_session", "expected.json"))
            .unwrap();
    for (i, want) in want.iter().enumerate() {
        let record = tap.next_record().await;
        assert_eq!(record.method, "GET");
        assert_eq!(record.status, Some(101));
        assert_eq!(record.outcome, Outcome::Ok, "call {i}: {record:?}");
        assert_eq!(record.client.as_str(), "codex");
        assert_eq!(
            record.conversation_id.as_deref(),
            Some("0199aaaa-bbbb-7ccc-8ddd-eeeeeeeeeeee")
        );
        assert_subset(
            &format!("call {i}"),
            &want["response"],
            &serde_json::to_value(&record.response).unwrap(),
        );
        assert_subset(
            &format!("call {i}"),
            &want["request"],
            &serde_json::to_value(record.request.as_ref().unwrap()).unwrap(),
        );
        if !record.response.tools_called.is_empty() || record.response.usage.output.unwrap_or(0) > 0
        {
            assert!(
                record.ttft.is_some_and(|t| t <= record.duration),
                "call {i}: TTFT per call"
            );
        }
    }
    ws.close(None).await.unwrap();
    tap.assert_no_record(Duration::from_millis(300)).await;
    let seen = upstream.seen();
    let upgrade = seen
        .iter()
        .find(|s| s.method == "GET")
        .expect("the upgrade reached upstream");
    assert_eq!(
        upgrade.header("authorization"),
        Some("Bearer sk-FAKE-CODEX-KEY"),
        "headers forwarded"
    );
    assert_eq!(upgrade.header("sec-websocket-protocol"), Some("llm.v1"));
    assert!(!tap.calls.text().contains("sk-FAKE-CODEX-KEY"));
}

#[tokio::test]
async fn a_refused_upgrade_reaches_the_client_as_it_was_sent() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let err = client::responses_websocket(tap.proxy, &tap.ca_pem, &[("x-fake-ws-refuse", "401")])
        .await
        .expect_err("refused");
    match err {
        hudsucker::tokio_tungstenite::tungstenite::Error::Http(res) => {
            assert_eq!(
                res.status(),
                401,
                "the upstream's own status, not a 101 that dies"
            );
            let body =
                String::from_utf8_lossy(res.body().as_deref().unwrap_or_default()).into_owned();
            assert!(body.contains("error"), "the upstream's body: {body}");
        }
        other => panic!("expected the upstream's HTTP refusal, got {other:?}"),
    }
    tap.assert_no_record(Duration::from_millis(300)).await;
}

#[tokio::test]
async fn a_socket_closed_mid_call_records_the_call_as_cancelled() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let (mut ws, _) = client::responses_websocket(tap.proxy, &tap.ca_pem, &[])
        .await
        .expect("upgrade");
    let turns = FakeUpstream::ws_turns("ws_session");
    ws.send(Message::text(turns[0].client.clone()))
        .await
        .unwrap();
    // The first server message, then the client leaves before the terminal event.
    let first = tokio::time::timeout(Duration::from_secs(10), ws.next())
        .await
        .unwrap();
    assert!(matches!(first, Some(Ok(Message::Text(_)))));
    drop(ws);
    // Exactly one record: cancelled, unless the terminal event still got through before the
    // relay saw the client go (both are the truth of what happened on the wire).
    let record = tap.next_record().await;
    assert!(
        matches!(record.outcome, Outcome::Cancelled | Outcome::Ok),
        "{record:?}"
    );
    assert!(
        record.response.model.is_some(),
        "what was seen before the close is kept"
    );
    tap.assert_no_record(Duration::from_millis(300)).await;
    let m = tap.metrics().await;
    assert_eq!(metric(&m, "llmtap_in_flight_calls", &[]), 0.0);
}

#[tokio::test]
async fn a_websocket_call_whose_upstream_goes_silent_ends_upstream_timeout_and_the_socket_closes() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--stream-idle-timeout", "1s"]).await;
    let (mut ws, _) =
        client::responses_websocket(tap.proxy, &tap.ca_pem, &[("x-fake-ws-silent", "1")])
            .await
            .expect("upgrade");
    // An idle socket with no call open is left alone, however long it idles.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let turns = FakeUpstream::ws_turns("ws_session");
    ws.send(Message::text(turns[0].client.clone()))
        .await
        .unwrap();
    let started = std::time::Instant::now();
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
        (Outcome::UpstreamError, Some("upstream_timeout"))
    );
    assert!(started.elapsed() < Duration::from_secs(5));
    // The client sees its socket end.
    let end = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("the socket ends");
    assert!(!matches!(end, Some(Ok(Message::Text(_)))), "{end:?}");
    tap.assert_no_record(Duration::from_millis(300)).await;
}
