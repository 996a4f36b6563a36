//! Checks the fake upstream itself. Each test talks to it directly, over TLS that trusts only
//! its test CA, with hyper's HTTP/1.1 client (or a WebSocket client), so the end-to-end tests
//! can rely on what it serves. Its agent mode: `agent`; its scripted replies: `script`.

mod agent;
mod script;

use std::{
    io::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, write::GzDecoder};
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::{BodyExt as _, Full};
use hyper::{
    Request, Response, StatusCode,
    body::Incoming,
    client::conn::http1::{self, SendRequest},
};
use hyper_util::rt::TokioIo;
use llmtap_fake_upstream::FakeUpstream;
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::{
    TlsConnector,
    client::TlsStream,
    rustls::{
        ClientConfig, RootCertStore,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, ServerName, pem::PemObject as _},
    },
};
use tokio_tungstenite::{
    client_async,
    tungstenite::{
        Message,
        client::IntoClientRequest as _,
        protocol::frame::{
            Frame, FrameHeader,
            coding::{Control, Data, OpCode},
        },
    },
};

/// One HTTP/1.1 connection to the fake upstream, verified against its CA under the name
/// `api.anthropic.com`.
async fn connect(upstream: &FakeUpstream) -> SendRequest<Full<Bytes>> {
    connect_as(upstream, "api.anthropic.com").await
}

/// One HTTP/1.1 connection to the fake upstream, verified against its CA under `host`.
async fn connect_as(upstream: &FakeUpstream, host: &str) -> SendRequest<Full<Bytes>> {
    let (send, conn) = http1::handshake(TokioIo::new(tls_as(upstream, host).await))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn.with_upgrades());
    send
}

/// A TLS connection to the fake upstream that trusts only its CA, for server name `host`.
async fn tls_as(upstream: &FakeUpstream, host: &str) -> TlsStream<TcpStream> {
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(upstream.ca_pem.as_bytes()) {
        roots
            .add(der.expect("CA PEM parses"))
            .expect("CA is a valid root");
    }
    let tls = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(upstream.addr)
        .await
        .expect("TCP connect");
    let name = ServerName::try_from(host.to_owned()).expect("server name");
    TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .unwrap_or_else(|e| panic!("TLS handshake with the test CA as {host}: {e}"))
}

fn post(path: &str, headers: &[(&str, &str)], body: Vec<u8>) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header("host", "api.anthropic.com")
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::from(body))).expect("request")
}

/// A request for `case` with its fixture request body and `x-fake-scenario: case`.
fn scenario(case: &str, extra: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut headers = vec![("x-fake-scenario", case)];
    headers.extend_from_slice(extra);
    post(
        "/v1/messages?beta=true",
        &headers,
        FakeUpstream::fixture(case, "request.json"),
    )
}

/// The data frames of a body, each with the time it arrived, until the body ends or fails.
async fn frames(res: Response<Incoming>) -> (Vec<(Instant, Bytes)>, Option<String>) {
    let mut body = res.into_body();
    let mut out = Vec::new();
    loop {
        match body.frame().await {
            None => return (out, None),
            Some(Err(e)) => return (out, Some(format!("{e:?}"))),
            Some(Ok(frame)) => {
                if let Ok(data) = frame.into_data() {
                    out.push((Instant::now(), data));
                }
            }
        }
    }
}

fn header<'a>(res: &'a Response<Incoming>, name: &str) -> Option<&'a str> {
    res.headers().get(name).and_then(|v| v.to_str().ok())
}

fn concat(frames: &[(Instant, Bytes)]) -> Vec<u8> {
    frames.iter().flat_map(|(_, b)| b.iter().copied()).collect()
}

#[tokio::test]
async fn stream_arrives_one_chunk_per_event_with_exact_bytes() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("stream_tool_use", &[]))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(header(&res, "transfer-encoding"), Some("chunked"));
    assert_eq!(header(&res, "content-length"), None);
    assert_eq!(header(&res, "cache-control"), Some("no-cache"));
    assert!(
        header(&res, "request-id").is_some_and(|id| id.starts_with("req_")),
        "request-id header"
    );

    let (frames, error) = frames(res).await;
    assert_eq!(error, None);
    let fixture = FakeUpstream::fixture("stream_tool_use", "sse");
    assert_eq!(
        concat(&frames),
        fixture,
        "body is the fixture, byte for byte"
    );

    // Chunks may be split by the transport but never merged: every event boundary is a frame
    // boundary, so there are at least as many frames as events.
    let events = FakeUpstream::sse_events(&fixture);
    assert!(events.len() > 10, "fixture has many events");
    assert!(frames.len() >= events.len(), "{} frames", frames.len());
    let mut boundaries = Vec::new();
    let mut at = 0;
    for (_, f) in &frames {
        at += f.len();
        boundaries.push(at);
    }
    let mut at = 0;
    for event in &events {
        at += event.len();
        assert!(
            boundaries.contains(&at),
            "an event ends inside a frame at {at}"
        );
    }
    // Streamed with gaps, not written at once.
    let spread = frames.last().expect("frames").0 - frames[0].0;
    assert!(
        spread >= Duration::from_millis(3 * (events.len() as u64 - 1)),
        "events spread over {spread:?}"
    );

    // The request was recorded in full.
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path_and_query, "/v1/messages?beta=true");
    assert_eq!(seen[0].header("x-fake-scenario"), Some("stream_tool_use"));
    assert_eq!(seen[0].header("anthropic-version"), Some("2023-06-01"));
    assert_eq!(
        seen[0].body,
        FakeUpstream::fixture("stream_tool_use", "request.json")
    );
}

#[tokio::test]
async fn default_scenarios_follow_the_request_and_keep_alive_works() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;

    // stream: true and no scenario header → stream_text.
    let res = client
        .send_request(post(
            "/v1/messages",
            &[],
            FakeUpstream::fixture("stream_text", "request.json"),
        ))
        .await
        .expect("response");
    let (frames, error) = frames(res).await;
    assert_eq!(error, None);
    assert_eq!(concat(&frames), FakeUpstream::fixture("stream_text", "sse"));

    // No stream → json_message, with a content-length; same connection.
    let res = client
        .send_request(post(
            "/v1/messages",
            &[],
            FakeUpstream::fixture("json_message", "request.json"),
        ))
        .await
        .expect("response on the kept-alive connection");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    let body = FakeUpstream::fixture("json_message", "json");
    assert_eq!(
        header(&res, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(concat(&frames_ok(res).await), body);

    // count_tokens path → count_tokens.
    let res = client
        .send_request(post(
            "/v1/messages/count_tokens?beta=true",
            &[],
            FakeUpstream::fixture("count_tokens", "request.json"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture("count_tokens", "json")
    );

    let paths: Vec<_> = upstream
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/messages",
            "/v1/messages",
            "/v1/messages/count_tokens?beta=true"
        ]
    );
}

async fn frames_ok(res: Response<Incoming>) -> Vec<(Instant, Bytes)> {
    let (frames, error) = frames(res).await;
    assert_eq!(error, None, "body ends cleanly");
    frames
}

#[tokio::test]
async fn gzip_stream_decodes_progressively_to_the_fixture() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("stream_text", &[("x-fake-gzip", "1")]))
        .await
        .expect("response");
    assert_eq!(header(&res, "content-encoding"), Some("gzip"));
    let frames = frames_ok(res).await;
    let fixture = FakeUpstream::fixture("stream_text", "sse");
    let events = FakeUpstream::sse_events(&fixture);
    assert_ne!(concat(&frames), fixture, "body is compressed");

    // The first chunk alone decodes to exactly the first event.
    let mut decoder = GzDecoder::new(Vec::new());
    decoder
        .write_all(&frames[0].1)
        .expect("inflate first chunk");
    decoder.flush().expect("flush decoder");
    assert_eq!(decoder.get_ref(), &events[0]);

    // All of it decodes to the fixture.
    for (_, f) in &frames[1..] {
        decoder.write_all(f).expect("inflate chunk");
    }
    assert_eq!(decoder.finish().expect("gzip trailer"), fixture);
}

#[tokio::test]
async fn gzip_json_body_decodes_to_the_fixture() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("json_message", &[("x-fake-gzip", "1")]))
        .await
        .expect("response");
    assert_eq!(header(&res, "content-encoding"), Some("gzip"));
    assert!(header(&res, "content-length").is_some());
    let mut decoder = GzDecoder::new(Vec::new());
    decoder
        .write_all(&concat(&frames_ok(res).await))
        .expect("inflate");
    assert_eq!(
        decoder.finish().expect("gzip trailer"),
        FakeUpstream::fixture("json_message", "json")
    );
}

#[tokio::test]
async fn hold_sends_the_first_event_then_waits_for_release() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("stream_text", &[("x-fake-hold", "1")]))
        .await
        .expect("response");
    let fixture = FakeUpstream::fixture("stream_text", "sse");
    let events = FakeUpstream::sse_events(&fixture);
    let mut body = res.into_body();

    let first = tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first event arrives before release")
        .expect("a frame")
        .expect("no error")
        .into_data()
        .expect("data");
    assert_eq!(first.as_ref(), events[0].as_slice());

    let waited = tokio::time::timeout(Duration::from_millis(300), body.frame()).await;
    assert!(waited.is_err(), "nothing more arrives until release");

    upstream.release();
    let rest = tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the rest arrives after release")
        .expect("body ends cleanly")
        .to_bytes();
    let mut all = first.to_vec();
    all.extend_from_slice(&rest);
    assert_eq!(all, fixture);
}

#[tokio::test]
async fn first_delay_pauses_after_the_first_event() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("stream_text", &[("x-fake-first-delay-ms", "300")]))
        .await
        .expect("response");
    let frames = frames_ok(res).await;
    let gap = frames[1].0 - frames[0].0;
    assert!(gap >= Duration::from_millis(290), "gap {gap:?}");
    assert_eq!(concat(&frames), FakeUpstream::fixture("stream_text", "sse"));
}

#[tokio::test]
async fn reset_after_ends_the_body_with_an_error() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("stream_tool_use", &[("x-fake-reset-after", "3")]))
        .await
        .expect("response head");
    assert_eq!(res.status(), StatusCode::OK);
    let (frames, error) = frames(res).await;
    assert!(error.is_some(), "the body must fail, not end cleanly");
    let events = FakeUpstream::sse_events(&FakeUpstream::fixture("stream_tool_use", "sse"));
    assert_eq!(
        concat(&frames),
        events[..3].concat(),
        "exactly three events"
    );
}

#[tokio::test]
async fn rate_limit_is_429_with_retry_after() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(scenario("error_429", &[]))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), Some("7"));
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    assert_eq!(
        header(&res, "request-id"),
        Some("req_011CVa7Hq2Nf9Kx3Lm5Pz8Rt"),
        "the header matches the body's request_id"
    );
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture("error_429", "json")
    );

    let res = client
        .send_request(scenario("error_529", &[]))
        .await
        .expect("response");
    assert_eq!(res.status().as_u16(), 529);
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture("error_529", "json")
    );
}

#[tokio::test]
async fn unknown_paths_get_404_and_are_recorded() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let req = Request::get("/api/claude_code/policy_limits")
        .header("host", "api.anthropic.com")
        .body(Full::new(Bytes::new()))
        .expect("request");
    let res = client.send_request(req).await.expect("response");
    assert_eq!(res.status(), StatusCode::NOT_FOUND);
    let body: serde_json::Value =
        serde_json::from_slice(&concat(&frames_ok(res).await)).expect("JSON error body");
    assert_eq!(body["error"]["type"], "not_found_error");
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/api/claude_code/policy_limits");
}

#[tokio::test]
async fn malformed_stream_carries_the_bad_events() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect(&upstream).await;
    let res = client
        .send_request(post(
            "/v1/messages",
            &[("x-fake-scenario", "malformed")],
            br#"{"model":"claude-sonnet-4-6","max_tokens":64,"messages":[],"stream":true}"#
                .to_vec(),
        ))
        .await
        .expect("response");
    let body = concat(&frames_ok(res).await);
    assert_eq!(body, FakeUpstream::malformed_sse().concat());
    assert!(
        std::str::from_utf8(&body).is_err(),
        "contains invalid UTF-8"
    );
    let longest_line = body.split(|&b| b == b'\n').map(<[u8]>::len).max();
    assert!(longest_line > Some(1 << 20), "a data line over 1 MiB");
    assert!(body.ends_with(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"));
}

#[test]
fn sse_events_split_at_blank_lines_for_lf_and_crlf() {
    for case in ["stream_text", "stream_crlf"] {
        let raw = FakeUpstream::fixture(case, "sse");
        let events = FakeUpstream::sse_events(&raw);
        assert_eq!(events.concat(), raw);
        assert!(
            events
                .iter()
                .all(|e| e.ends_with(b"\n\n") || e.ends_with(b"\r\n\r\n"))
        );
    }
    let crlf = FakeUpstream::sse_events(&FakeUpstream::fixture("stream_crlf", "sse"));
    // A leading comment block, then eight events; the split `data:` lines stay in one event.
    assert_eq!(crlf.len(), 9);
    assert!(crlf[7].starts_with(b"event: message_delta\r\ndata: "));
    assert_eq!(crlf[7].windows(6).filter(|w| w == b"data: ").count(), 2);
}

// ------------------------------------------------------------------------------------------
// OpenAI, Gemini and Code Assist routes
// ------------------------------------------------------------------------------------------

/// A POST to `host` with a JSON body and extra headers.
fn post_to(
    host: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: Vec<u8>,
) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header("host", host)
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::from(body))).expect("request")
}

/// Asserts the body arrived as `pieces`, each piece ending on a frame boundary (the transport
/// may split a piece, never merge two), spread over time like a stream.
fn assert_streamed_as(name: &str, frames: &[(Instant, Bytes)], pieces: &[Vec<u8>]) {
    assert_eq!(
        concat(frames),
        pieces.concat(),
        "{name}: body is the fixture"
    );
    assert!(pieces.len() >= 2, "{name}: a stream of several pieces");
    let mut boundaries = Vec::new();
    let mut at = 0;
    for (_, f) in frames {
        at += f.len();
        boundaries.push(at);
    }
    let mut at = 0;
    for piece in pieces {
        at += piece.len();
        assert!(
            boundaries.contains(&at),
            "{name}: a piece ends inside a frame at {at}"
        );
    }
    let spread = frames.last().expect("frames").0 - frames[0].0;
    assert!(
        spread >= Duration::from_millis(3 * (pieces.len() as u64 - 1)),
        "{name}: pieces spread over {spread:?}"
    );
}

#[tokio::test]
async fn openai_chat_picks_its_case_from_the_body() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect_as(&upstream, "api.openai.com").await;
    let chat = |case: &str| FakeUpstream::fixture_in("openai_chat", case, "request.json");

    for case in ["stream_usage", "stream_no_usage"] {
        let res = client
            .send_request(post_to(
                "api.openai.com",
                "/v1/chat/completions",
                &[],
                chat(case),
            ))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK, "{case}");
        assert_eq!(
            header(&res, "content-type"),
            Some("text/event-stream; charset=utf-8")
        );
        assert!(
            header(&res, "x-request-id").is_some_and(|id| id.starts_with("req_")),
            "{case}: x-request-id"
        );
        assert_eq!(header(&res, "anthropic-organization-id"), None);
        let fixture = FakeUpstream::fixture_in("openai_chat", case, "sse");
        let events = FakeUpstream::sse_events(&fixture);
        assert!(events.last().is_some_and(|e| e == b"data: [DONE]\n\n"));
        assert_streamed_as(case, &frames_ok(res).await, &events);
    }

    let res = client
        .send_request(post_to(
            "api.openai.com",
            "/v1/chat/completions",
            &[],
            chat("json_completion"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    let body = FakeUpstream::fixture_in("openai_chat", "json_completion", "json");
    assert_eq!(
        header(&res, "content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_eq!(concat(&frames_ok(res).await), body);

    // A case named in the header wins over the body; errors keep OpenAI's shape.
    let res = client
        .send_request(post_to(
            "api.openai.com",
            "/v1/chat/completions",
            &[("x-fake-scenario", "error_429")],
            chat("error_429"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), Some("7"));
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture_in("openai_chat", "error_429", "json")
    );

    let res = client
        .send_request(post_to(
            "api.openai.com",
            "/v1/chat/completions",
            &[("x-fake-scenario", "stream_tool_calls")],
            chat("stream_tool_calls"),
        ))
        .await
        .expect("response");
    let fixture = FakeUpstream::fixture_in("openai_chat", "stream_tool_calls", "sse");
    assert_streamed_as(
        "stream_tool_calls",
        &frames_ok(res).await,
        &FakeUpstream::sse_events(&fixture),
    );
    assert_eq!(upstream.seen().len(), 5);
}

#[tokio::test]
async fn responses_are_served_on_the_api_and_the_chatgpt_paths() {
    let upstream = FakeUpstream::start().await;
    let responses = |case: &str| FakeUpstream::fixture_in("openai_responses", case, "request.json");

    let mut api = connect_as(&upstream, "api.openai.com").await;
    let res = api
        .send_request(post_to(
            "api.openai.com",
            "/v1/responses",
            &[],
            responses("stream_text"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    let fixture = FakeUpstream::fixture_in("openai_responses", "stream_text", "sse");
    assert_streamed_as(
        "stream_text",
        &frames_ok(res).await,
        &FakeUpstream::sse_events(&fixture),
    );

    let res = api
        .send_request(post_to(
            "api.openai.com",
            "/v1/responses",
            &[],
            responses("json_response"),
        ))
        .await
        .expect("response");
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture_in("openai_responses", "json_response", "json")
    );

    let mut chatgpt = connect_as(&upstream, "chatgpt.com").await;
    let res = chatgpt
        .send_request(post_to(
            "chatgpt.com",
            "/backend-api/codex/responses",
            &[("x-fake-scenario", "stream_function_call")],
            responses("stream_function_call"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    let fixture = FakeUpstream::fixture_in("openai_responses", "stream_function_call", "sse");
    let events = FakeUpstream::sse_events(&fixture);
    assert!(events.iter().all(|e| e.starts_with(b"event: response.")));
    assert_streamed_as("stream_function_call", &frames_ok(res).await, &events);

    let paths: Vec<_> = upstream
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(
        paths,
        [
            "/v1/responses",
            "/v1/responses",
            "/backend-api/codex/responses"
        ]
    );
}

#[tokio::test]
async fn gemini_streams_as_crlf_sse_or_as_a_json_array_by_element() {
    let upstream = FakeUpstream::start().await;
    let mut client = connect_as(&upstream, "generativelanguage.googleapis.com").await;
    let request = FakeUpstream::fixture_in("gemini", "stream_sse", "request.json");
    let host = "generativelanguage.googleapis.com";

    let res = client
        .send_request(post_to(
            host,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            &[("x-goog-api-key", "fake-key")],
            request.clone(),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(header(&res, "content-type"), Some("text/event-stream"));
    let fixture = FakeUpstream::fixture_in("gemini", "stream_sse", "sse");
    let events = FakeUpstream::sse_events(&fixture);
    assert_eq!(events.len(), 4);
    assert!(
        events
            .iter()
            .all(|e| e.starts_with(b"data: {") && e.ends_with(b"}\r\n\r\n"))
    );
    assert_streamed_as("stream_sse", &frames_ok(res).await, &events);

    // Without alt=sse: the same chunks as a JSON array, one element per HTTP chunk.
    let res = client
        .send_request(post_to(
            host,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
            &[],
            request.clone(),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "content-type"),
        Some("application/json; charset=UTF-8")
    );
    let fixture = FakeUpstream::fixture_in("gemini", "stream_array", "jsonarray");
    let pieces = FakeUpstream::json_array_elements(&fixture);
    assert_eq!(pieces.len(), 5, "four elements and the closing bracket");
    assert!(pieces[0].starts_with(b"[{"));
    assert_eq!(pieces[4], b"\r\n]");
    let elements: Vec<serde_json::Value> = pieces[..4]
        .iter()
        .map(|p| {
            let p = p
                .strip_prefix(b"[")
                .or_else(|| p.strip_prefix(b"\r\n,"))
                .expect("separator");
            serde_json::from_slice(p).expect("each piece is one JSON element")
        })
        .collect();
    let sse_elements: Vec<serde_json::Value> = events
        .iter()
        .map(|e| serde_json::from_slice(&e[6..e.len() - 4]).expect("SSE data is JSON"))
        .collect();
    assert_eq!(elements, sse_elements, "the same stream in both framings");
    assert_streamed_as("stream_array", &frames_ok(res).await, &pieces);

    // generateContent, under /v1/ as google-genai sends it.
    let res = client
        .send_request(post_to(
            host,
            "/v1/models/gemini-2.5-flash:generateContent",
            &[],
            FakeUpstream::fixture_in("gemini", "json_generate", "request.json"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture_in("gemini", "json_generate", "json")
    );

    // A named error case: Google's body, no retry-after header.
    let res = client
        .send_request(post_to(
            host,
            "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
            &[("x-fake-scenario", "error_429")],
            request,
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(header(&res, "retry-after"), None);
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture_in("gemini", "error_429", "json")
    );

    // Code Assist, wrapped chunks.
    let mut cloudcode = connect_as(&upstream, "cloudcode-pa.googleapis.com").await;
    let res = cloudcode
        .send_request(post_to(
            "cloudcode-pa.googleapis.com",
            "/v1internal:streamGenerateContent?alt=sse",
            &[],
            FakeUpstream::fixture_in("gemini", "codeassist_stream", "request.json"),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    let fixture = FakeUpstream::fixture_in("gemini", "codeassist_stream", "sse");
    let events = FakeUpstream::sse_events(&fixture);
    assert!(
        events
            .iter()
            .all(|e| e.starts_with(b"data: {\"response\": {"))
    );
    assert_streamed_as("codeassist_stream", &frames_ok(res).await, &events);
}

#[tokio::test]
async fn modifiers_apply_to_the_new_streamed_routes() {
    let upstream = FakeUpstream::start().await;
    let gemini = "generativelanguage.googleapis.com";
    let mut client = connect_as(&upstream, gemini).await;
    let request = FakeUpstream::fixture_in("gemini", "stream_array", "request.json");
    let array_path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent";

    // gzip on the JSON array: the first chunk alone inflates to the first element.
    let res = client
        .send_request(post_to(
            gemini,
            array_path,
            &[("x-fake-gzip", "1")],
            request.clone(),
        ))
        .await
        .expect("response");
    assert_eq!(header(&res, "content-encoding"), Some("gzip"));
    let gzipped = frames_ok(res).await;
    let fixture = FakeUpstream::fixture_in("gemini", "stream_array", "jsonarray");
    let pieces = FakeUpstream::json_array_elements(&fixture);
    let mut decoder = GzDecoder::new(Vec::new());
    decoder
        .write_all(&gzipped[0].1)
        .expect("inflate first chunk");
    decoder.flush().expect("flush decoder");
    assert_eq!(decoder.get_ref(), &pieces[0]);
    for (_, f) in &gzipped[1..] {
        decoder.write_all(f).expect("inflate chunk");
    }
    assert_eq!(decoder.finish().expect("gzip trailer"), fixture);

    // reset-after on the JSON array: two elements, then a broken body.
    let res = client
        .send_request(post_to(
            gemini,
            array_path,
            &[("x-fake-reset-after", "2")],
            request,
        ))
        .await
        .expect("response head");
    let (broken, error) = frames(res).await;
    assert!(error.is_some(), "the body must fail, not end cleanly");
    assert_eq!(concat(&broken), pieces[..2].concat());

    // first-delay and hold on OpenAI streams.
    let mut openai = connect_as(&upstream, "api.openai.com").await;
    let res = openai
        .send_request(post_to(
            "api.openai.com",
            "/v1/chat/completions",
            &[("x-fake-first-delay-ms", "300")],
            FakeUpstream::fixture_in("openai_chat", "stream_usage", "request.json"),
        ))
        .await
        .expect("response");
    let delayed = frames_ok(res).await;
    let gap = delayed[1].0 - delayed[0].0;
    assert!(gap >= Duration::from_millis(290), "gap {gap:?}");

    let res = openai
        .send_request(post_to(
            "api.openai.com",
            "/v1/responses",
            &[("x-fake-hold", "1")],
            FakeUpstream::fixture_in("openai_responses", "stream_text", "request.json"),
        ))
        .await
        .expect("response");
    let mut body = res.into_body();
    tokio::time::timeout(Duration::from_secs(5), body.frame())
        .await
        .expect("first event arrives before release")
        .expect("a frame")
        .expect("no error");
    let waited = tokio::time::timeout(Duration::from_millis(300), body.frame()).await;
    assert!(waited.is_err(), "nothing more arrives until release");
    upstream.release();
    tokio::time::timeout(Duration::from_secs(5), body.collect())
        .await
        .expect("the rest arrives after release")
        .expect("body ends cleanly");
}

#[tokio::test]
async fn bedrock_streams_one_event_stream_message_per_chunk_and_errors_carry_their_type() {
    let upstream = FakeUpstream::start().await;
    let host = "bedrock-runtime.us-east-1.amazonaws.com";
    let mut client = connect_as(&upstream, host).await;
    let request = FakeUpstream::fixture_in("bedrock_converse", "stream_text", "request.json");
    // The model id of an inference profile ARN, `/` encoded as `%2F`.
    let arn = "arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fus.anthropic.claude-sonnet-4-5-20250929-v1%3A0";
    let res = client
        .send_request(post_to(
            host,
            &format!("/model/{arn}/converse-stream"),
            &[],
            request.clone(),
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "content-type"),
        Some("application/vnd.amazon.eventstream")
    );
    assert!(header(&res, "x-amzn-requestid").is_some());
    let fixture = FakeUpstream::fixture_in("bedrock_converse", "stream_text", "eventstream");
    let messages = FakeUpstream::eventstream_messages(&fixture);
    assert_eq!(messages.len(), 7);
    assert!(messages.iter().all(|m| {
        let total = u32::from_be_bytes([m[0], m[1], m[2], m[3]]) as usize;
        total == m.len()
    }));
    assert_streamed_as("stream_text", &frames_ok(res).await, &messages);

    // The non-streamed operation of the same folder, and the invoke folder's stream.
    let model = "anthropic.claude-sonnet-4-5-20250929-v1:0";
    let res = client
        .send_request(post_to(
            host,
            &format!("/model/{model}/converse"),
            &[],
            request.clone(),
        ))
        .await
        .expect("response");
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    assert_eq!(
        concat(&frames_ok(res).await),
        FakeUpstream::fixture_in("bedrock_converse", "json_text", "json")
    );
    let res = client
        .send_request(post_to(
            host,
            &format!("/model/{model}/invoke-with-response-stream"),
            &[],
            FakeUpstream::fixture_in("bedrock_invoke", "stream_anthropic_cache", "request.json"),
        ))
        .await
        .expect("response");
    let fixture =
        FakeUpstream::fixture_in("bedrock_invoke", "stream_anthropic_cache", "eventstream");
    assert_streamed_as(
        "stream_anthropic_cache",
        &frames_ok(res).await,
        &FakeUpstream::eventstream_messages(&fixture),
    );

    let res = client
        .send_request(post_to(
            host,
            &format!("/model/{model}/converse"),
            &[("x-fake-scenario", "error_400")],
            request,
        ))
        .await
        .expect("response");
    assert_eq!(res.status(), StatusCode::BAD_REQUEST);
    assert_eq!(
        header(&res, "x-amzn-errortype"),
        Some("ValidationException")
    );
    assert_eq!(upstream.seen().len(), 4);
}

#[tokio::test]
async fn unknown_routes_get_a_404_in_the_style_of_their_host() {
    let upstream = FakeUpstream::start().await;
    let cases = [
        (
            "api.openai.com",
            "GET",
            "/v1/models",
            "/error/type",
            "invalid_request_error",
        ),
        (
            "chatgpt.com",
            "GET",
            "/backend-api/codex/models",
            "/error/type",
            "invalid_request_error",
        ),
        (
            "generativelanguage.googleapis.com",
            "POST",
            "/v1beta/models/gemini-2.5-flash:countTokens",
            "/error/status",
            "NOT_FOUND",
        ),
        (
            "cloudcode-pa.googleapis.com",
            "POST",
            "/v1internal:streamGenerateContent",
            "/error/status",
            "NOT_FOUND",
        ),
        (
            "api.anthropic.com",
            "POST",
            "/v1/chat/completions/extra",
            "/error/type",
            "not_found_error",
        ),
        (
            "bedrock-runtime.us-east-1.amazonaws.com",
            "POST",
            "/model/amazon.titan-embed-text-v2:0/embed",
            "/message",
            "fake upstream: nothing at POST /model/amazon.titan-embed-text-v2:0/embed",
        ),
    ];
    for (host, method, path, pointer, want) in cases {
        let mut client = connect_as(&upstream, host).await;
        let req = Request::builder()
            .method(method)
            .uri(path)
            .header("host", host)
            .body(Full::new(Bytes::new()))
            .expect("request");
        let res = client.send_request(req).await.expect("response");
        assert_eq!(res.status(), StatusCode::NOT_FOUND, "{host}{path}");
        let body: serde_json::Value =
            serde_json::from_slice(&concat(&frames_ok(res).await)).expect("JSON error body");
        assert_eq!(
            body.pointer(pointer).and_then(|v| v.as_str()),
            Some(want),
            "{host}{path}: {body}"
        );
    }
    assert_eq!(upstream.seen().len(), cases.len());
}

/// Each (host, path, body's folder and case) of the providers that serve an API under a
/// prefix of their own, or the same path as another host: the case served by default.
const PROVIDER_ROUTES: &[(&str, &str, &str, &str)] = &[
    // The same path on two hosts: each host's own folder.
    (
        "api.openai.com",
        "/v1/chat/completions",
        "openai_chat",
        "stream_usage",
    ),
    (
        "api.moonshot.ai",
        "/v1/chat/completions",
        "openai_compatible",
        "moonshot_stream",
    ),
    (
        "fake-resource.openai.azure.com",
        "/openai/v1/chat/completions",
        "azure_openai",
        "stream_chat_v1",
    ),
    (
        "api.groq.com",
        "/openai/v1/chat/completions",
        "openai_compatible",
        "groq_stream",
    ),
    // A path pattern, with a query the route does not name.
    (
        "fake-resource.openai.azure.com",
        "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
        "azure_openai",
        "stream_chat",
    ),
    (
        "fake-resource.openai.azure.com",
        "/openai/responses?api-version=2025-04-01-preview",
        "azure_openai",
        "stream_responses",
    ),
    (
        "api.deepseek.com",
        "/chat/completions",
        "openai_compatible",
        "deepseek_stream",
    ),
    (
        "us-east5-aiplatform.googleapis.com",
        "/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
        "anthropic",
        "vertex_stream_text",
    ),
    (
        "aiplatform.googleapis.com",
        "/v1/projects/p-1/locations/global/publishers/google/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "gemini",
        "vertex_stream_sse",
    ),
    (
        "fake-resource.services.ai.azure.com",
        "/anthropic/v1/messages",
        "anthropic",
        "foundry_stream_text",
    ),
];

#[tokio::test]
async fn provider_hosts_are_served_from_their_own_folders() {
    let upstream = FakeUpstream::start().await;
    for &(host, path, folder, case) in PROVIDER_ROUTES {
        let name = format!("{host}{path}");
        let mut client = connect_as(&upstream, host).await;
        // Every streamed request body asks for usage, as the streamed cases carry it.
        let body = br#"{"stream":true,"stream_options":{"include_usage":true}}"#.to_vec();
        let res = client
            .send_request(post_to(host, path, &[], body))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK, "{name}");
        let fixture = ["sse", "jsonarray"]
            .iter()
            .find_map(|ext| {
                std::fs::read(llmtap_fake_upstream::fixtures::path(folder, case, ext)).ok()
            })
            .expect("a streamed case");
        assert_streamed_as(
            &name,
            &frames_ok(res).await,
            &FakeUpstream::sse_events(&fixture),
        );
    }
    // Not streamed: Vertex AI's rawPredict and count-tokens, Azure's chat by deployment.
    let plain: &[(&str, &str, &str, &str)] = &[
        (
            "us-east5-aiplatform.googleapis.com",
            "/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
            "anthropic",
            "vertex_json_message",
        ),
        (
            "us-east5-aiplatform.googleapis.com",
            "/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict",
            "anthropic",
            "count_tokens",
        ),
        (
            "fake-resource.openai.azure.com",
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21",
            "azure_openai",
            "json_chat",
        ),
        (
            "api.deepseek.com",
            "/chat/completions",
            "openai_compatible",
            "deepseek_json",
        ),
    ];
    for &(host, path, folder, case) in plain {
        let mut client = connect_as(&upstream, host).await;
        let res = client
            .send_request(post_to(host, path, &[], b"{}".to_vec()))
            .await
            .expect("response");
        assert_eq!(res.status(), StatusCode::OK, "{host}{path}");
        assert_eq!(
            concat(&frames_ok(res).await),
            FakeUpstream::fixture_in(folder, case, "json"),
            "{host}{path}"
        );
    }
    assert_eq!(
        upstream.model_requests().len(),
        PROVIDER_ROUTES.len() + plain.len(),
        "each is a model request"
    );
}

#[tokio::test]
async fn the_leaf_certificate_names_every_host() {
    let upstream = FakeUpstream::start().await;
    // Spelled out rather than taken from `fixtures::hosts()`, so that losing a host fails here.
    let hosts = [
        "api.anthropic.com",
        "api.openai.com",
        "chatgpt.com",
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
        "bedrock-runtime.us-east-1.amazonaws.com",
        "us-east5-aiplatform.googleapis.com",
        "aiplatform.googleapis.com",
        "fake-resource.openai.azure.com",
        "fake-resource.services.ai.azure.com",
        "api.deepseek.com",
        "openrouter.ai",
        "api.groq.com",
        "api.moonshot.ai",
        "localhost",
    ];
    for host in hosts {
        // Panics if the handshake fails, e.g. for a name the leaf does not cover.
        drop(tls_as(&upstream, host).await);
    }
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(upstream.ca_pem.as_bytes()) {
        roots.add(der.expect("CA PEM parses")).expect("CA root");
    }
    let tls = ClientConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_root_certificates(roots)
        .with_no_client_auth();
    let tcp = TcpStream::connect(upstream.addr)
        .await
        .expect("TCP connect");
    let name = ServerName::try_from("api.example.com").expect("server name");
    let refused = TlsConnector::from(Arc::new(tls)).connect(name, tcp).await;
    assert!(refused.is_err(), "a name outside the leaf is refused");
}

// ------------------------------------------------------------------------------------------
// WebSocket (Codex's Responses socket)
// ------------------------------------------------------------------------------------------

type Ws = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// The next message that is not a ping or pong, within 5 s.
async fn next_message(ws: &mut Ws) -> Option<Message> {
    loop {
        let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .expect("a message within 5 s");
        match next {
            Some(Ok(Message::Ping(_) | Message::Pong(_))) => {}
            Some(Ok(m)) => return Some(m),
            Some(Err(e)) => panic!("WebSocket error: {e}"),
            None => return None,
        }
    }
}

#[tokio::test]
async fn websocket_answers_each_response_create_with_its_frames() {
    let upstream = FakeUpstream::start().await;
    let turns = FakeUpstream::ws_turns("ws_session");
    assert_eq!(turns.len(), 2, "prewarm and one turn");
    assert!(turns[0].client.contains("\"generate\":false"));
    assert!(turns[1].client.contains("\"previous_response_id\":"));
    assert!(turns.iter().all(|t| t.server.len() >= 2));

    let mut request = "wss://api.openai.com/v1/responses"
        .into_client_request()
        .expect("client request");
    let headers = request.headers_mut();
    headers.insert(
        "openai-beta",
        "responses_websockets=2026-02-06".parse().expect("value"),
    );
    headers.insert(
        "sec-websocket-protocol",
        "codex-responses, fallback".parse().expect("value"),
    );
    let tls = tls_as(&upstream, "api.openai.com").await;
    let (mut ws, response) = client_async(request, tls)
        .await
        .expect("WebSocket handshake");
    assert_eq!(response.status(), StatusCode::SWITCHING_PROTOCOLS);
    let response_header = |name: &str| response.headers().get(name).and_then(|v| v.to_str().ok());
    assert_eq!(
        response_header("sec-websocket-protocol"),
        Some("codex-responses")
    );
    assert_eq!(
        response_header("sec-websocket-extensions"),
        None,
        "not offered, not used"
    );

    for turn in &turns {
        ws.send(Message::text(turn.client.clone()))
            .await
            .expect("send");
        let mut received = Vec::new();
        for _ in &turn.server {
            match next_message(&mut ws).await {
                Some(Message::Text(text)) => received.push((Instant::now(), text.to_string())),
                other => panic!("expected a text message, got {other:?}"),
            }
        }
        let texts: Vec<&str> = received.iter().map(|(_, t)| t.as_str()).collect();
        assert_eq!(texts, turn.server, "the file's frames, verbatim, in order");
        let spread = received.last().expect("frames").0 - received[0].0;
        assert!(
            spread >= Duration::from_millis(3 * (turn.server.len() as u64 - 1)),
            "frames spread over {spread:?}"
        );
    }

    // One response.create too many: an error event, and the socket stays open.
    ws.send(Message::text(turns[1].client.clone()))
        .await
        .expect("send");
    let Some(Message::Text(error)) = next_message(&mut ws).await else {
        panic!("expected an error event");
    };
    let error: serde_json::Value = serde_json::from_str(&error).expect("JSON");
    assert_eq!(error["type"], "error");
    assert_eq!(error["error"]["code"], "fake_upstream_no_more_turns");

    // A non-create message gets nothing; a ping gets its pong.
    ws.send(Message::text(r#"{"type":"response.cancel"}"#))
        .await
        .expect("send");
    ws.send(Message::Ping(Bytes::from_static(b"are you there")))
        .await
        .expect("ping");
    let pong = tokio::time::timeout(Duration::from_secs(5), ws.next())
        .await
        .expect("a pong within 5 s");
    assert!(
        matches!(&pong, Some(Ok(Message::Pong(p))) if p.as_ref() == b"are you there"),
        "{pong:?}"
    );

    ws.close(None).await.expect("close");
    assert!(
        matches!(next_message(&mut ws).await, Some(Message::Close(_)) | None),
        "the server answers the close"
    );

    let sent: Vec<String> = [&turns[0].client, &turns[1].client, &turns[1].client]
        .into_iter()
        .cloned()
        .chain([r#"{"type":"response.cancel"}"#.to_owned()])
        .collect();
    let messages = upstream.ws_messages();
    assert_eq!(
        messages.iter().map(|m| m.text.clone()).collect::<Vec<_>>(),
        sent
    );
    assert!(messages.iter().all(|m| !m.compressed && !m.binary));
    let seen = upstream.seen();
    assert_eq!(seen.len(), 1, "one upgrade request");
    assert_eq!(seen[0].method, "GET");
    assert_eq!(seen[0].path_and_query, "/v1/responses");
    assert_eq!(
        seen[0].header("openai-beta"),
        Some("responses_websockets=2026-02-06")
    );
}

/// A WebSocket client written against the RFC, not against the server: the handshake by
/// hand, frames through tungstenite's frame codec, compression through flate2.
struct RawWs {
    tls: TlsStream<TcpStream>,
    buf: Vec<u8>,
    compressor: Compress,
    /// `client_no_context_takeover` was agreed: every message starts a fresh deflate stream.
    reset_per_message: bool,
}

impl RawWs {
    /// Upgrades `GET /v1/responses` with the RFC 6455 sample key; returns the response head.
    async fn open(upstream: &FakeUpstream, extra: &[(&str, &str)]) -> (RawWs, String) {
        let mut tls = tls_as(upstream, "api.openai.com").await;
        let mut head = String::from(
            "GET /v1/responses HTTP/1.1\r\nHost: api.openai.com\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n",
        );
        for (name, value) in extra {
            head.push_str(&format!("{name}: {value}\r\n"));
        }
        head.push_str("\r\n");
        tls.write_all(head.as_bytes()).await.expect("write upgrade");
        tls.flush().await.expect("flush upgrade");
        let mut buf = Vec::new();
        let end = loop {
            if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                break end + 4;
            }
            let mut chunk = [0u8; 4096];
            let n = tls.read(&mut chunk).await.expect("read response head");
            assert!(n > 0, "connection closed during the handshake");
            buf.extend_from_slice(&chunk[..n]);
        };
        let response = String::from_utf8(buf[..end].to_vec()).expect("ASCII head");
        buf.drain(..end);
        let ws = RawWs {
            tls,
            buf,
            compressor: Compress::new(Compression::default(), false),
            reset_per_message: head_header(&response, "sec-websocket-extensions")
                .is_some_and(|e| e.contains("client_no_context_takeover")),
        };
        (ws, response)
    }

    /// Sends a masked text message, compressed (RSV1) or not.
    async fn send_text(&mut self, text: &str, compress: bool) {
        let payload = if compress {
            if self.reset_per_message {
                self.compressor.reset();
            }
            let mut out = Vec::with_capacity(text.len() + 1024);
            self.compressor
                .compress_vec(text.as_bytes(), &mut out, FlushCompress::Sync)
                .expect("deflate");
            assert!(out.ends_with(&[0, 0, 0xff, 0xff]), "whole sync flush");
            out.truncate(out.len() - 4);
            out
        } else {
            text.as_bytes().to_vec()
        };
        let mut frame = Frame::message(payload, OpCode::Data(Data::Text), true);
        frame.header_mut().rsv1 = compress;
        frame.header_mut().mask = Some([0x37, 0xfa, 0x21, 0x3d]);
        self.send_frame(frame).await;
    }

    async fn send_frame(&mut self, frame: Frame) {
        let mut bytes = Vec::new();
        frame.format(&mut bytes).expect("format frame");
        self.tls.write_all(&bytes).await.expect("write frame");
        self.tls.flush().await.expect("flush frame");
    }

    /// The next frame's header and payload, or `None` at EOF.
    async fn frame(&mut self) -> Option<(FrameHeader, Vec<u8>)> {
        loop {
            let mut cursor = std::io::Cursor::new(&self.buf);
            if let Some((header, len)) = FrameHeader::parse(&mut cursor).expect("valid header") {
                let start = usize::try_from(cursor.position()).expect("small");
                let end = start + usize::try_from(len).expect("small");
                if self.buf.len() >= end {
                    let payload = self.buf[start..end].to_vec();
                    self.buf.drain(..end);
                    return Some((header, payload));
                }
            }
            let mut chunk = vec![0u8; 16384];
            let n = tokio::time::timeout(Duration::from_secs(5), self.tls.read(&mut chunk))
                .await
                .expect("a frame within 5 s")
                .unwrap_or(0);
            if n == 0 {
                return None;
            }
            self.buf.extend_from_slice(&chunk[..n]);
        }
    }
}

fn inflate(decompressor: &mut Decompress, payload: &[u8]) -> Result<String, String> {
    let mut input = payload.to_vec();
    input.extend_from_slice(&[0, 0, 0xff, 0xff]);
    let mut out = Vec::with_capacity(payload.len() * 20 + 1024);
    decompressor
        .decompress_vec(&input, &mut out, FlushDecompress::Sync)
        .map_err(|e| e.to_string())?;
    assert!(out.len() < out.capacity(), "output buffer was large enough");
    String::from_utf8(out).map_err(|e| e.to_string())
}

fn head_header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().find_map(|line| {
        let (n, v) = line.split_once(':')?;
        n.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

#[tokio::test]
async fn websocket_permessage_deflate_is_negotiated_and_used_both_ways() {
    let turns = FakeUpstream::ws_turns("ws_session");
    // (offer, extra headers, expected answer, server keeps its context across messages)
    let configs: [(&str, Option<&str>, Option<&str>, bool); 3] = [
        (
            "permessage-deflate; client_max_window_bits",
            None,
            Some("permessage-deflate"),
            true,
        ),
        (
            "permessage-deflate; server_no_context_takeover; client_no_context_takeover",
            None,
            Some("permessage-deflate; server_no_context_takeover; client_no_context_takeover"),
            false,
        ),
        ("permessage-deflate", Some("0"), None, false),
    ];
    for (offer, switch, answer, takeover) in configs {
        let upstream = FakeUpstream::start().await;
        let mut extra = vec![("Sec-WebSocket-Extensions", offer)];
        if let Some(switch) = switch {
            extra.push(("x-fake-ws-deflate", switch));
        }
        let (mut ws, head) = RawWs::open(&upstream, &extra).await;
        assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
        // RFC 6455 §1.3's worked example: this key must give exactly this accept value.
        assert_eq!(
            head_header(&head, "sec-websocket-accept"),
            Some("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=")
        );
        assert_eq!(head_header(&head, "sec-websocket-protocol"), None);
        assert_eq!(
            head_header(&head, "sec-websocket-extensions"),
            answer,
            "{offer}"
        );
        let compressed = answer.is_some();

        let mut session = Decompress::new(false);
        let mut inflated_alone = 0;
        let mut total = 0;
        for turn in &turns {
            ws.send_text(&turn.client, compressed).await;
            for want in &turn.server {
                let (header, payload) = ws.frame().await.expect("a frame");
                assert!(header.is_final && header.mask.is_none(), "{header:?}");
                assert_eq!(header.opcode, OpCode::Data(Data::Text));
                assert_eq!(header.rsv1, compressed, "{offer}: RSV1");
                let text = if compressed {
                    if inflate(&mut Decompress::new(false), &payload).as_ref() == Ok(want) {
                        inflated_alone += 1;
                    }
                    inflate(&mut session, &payload).expect("inflates in sequence")
                } else {
                    String::from_utf8(payload).expect("UTF-8")
                };
                assert_eq!(&text, want);
                total += 1;
            }
        }
        if compressed && takeover {
            assert!(
                inflated_alone < total,
                "{offer}: some message refers back to an earlier one"
            );
        } else if compressed {
            assert_eq!(inflated_alone, total, "{offer}: every message stands alone");
        }

        // Close with 1000; the server echoes the code and ends the connection.
        let close = FrameHeader {
            opcode: OpCode::Control(Control::Close),
            mask: Some([1, 2, 3, 4]),
            ..FrameHeader::default()
        };
        ws.send_frame(Frame::from_payload(
            close,
            Bytes::from_static(&[0x03, 0xe8]),
        ))
        .await;
        let (header, payload) = ws.frame().await.expect("a close frame");
        assert_eq!(header.opcode, OpCode::Control(Control::Close));
        assert_eq!(payload, [0x03, 0xe8]);
        assert!(ws.frame().await.is_none(), "then EOF");

        let messages = upstream.ws_messages();
        assert_eq!(
            messages.iter().map(|m| m.text.as_str()).collect::<Vec<_>>(),
            turns.iter().map(|t| t.client.as_str()).collect::<Vec<_>>(),
            "{offer}"
        );
        assert!(messages.iter().all(|m| m.compressed == compressed));
    }
}

#[tokio::test]
async fn websocket_refusal_is_the_status_and_a_json_error() {
    let upstream = FakeUpstream::start().await;
    for (status, code) in [(401, Some("invalid_api_key")), (503, None)] {
        let mut client = connect_as(&upstream, "api.openai.com").await;
        let req = Request::get("/v1/responses")
            .header("host", "api.openai.com")
            .header("upgrade", "websocket")
            .header("connection", "Upgrade")
            .header("sec-websocket-key", "dGhlIHNhbXBsZSBub25jZQ==")
            .header("sec-websocket-version", "13")
            .header("x-fake-ws-refuse", status.to_string())
            .body(Full::new(Bytes::new()))
            .expect("request");
        let res = client.send_request(req).await.expect("response");
        assert_eq!(res.status().as_u16(), status);
        assert_eq!(header(&res, "sec-websocket-accept"), None);
        assert_eq!(header(&res, "content-type"), Some("application/json"));
        let body: serde_json::Value =
            serde_json::from_slice(&concat(&frames_ok(res).await)).expect("JSON error body");
        assert_eq!(body["error"]["code"].as_str(), code, "{body}");
        assert!(body["error"]["message"].is_string());
    }
    assert!(upstream.ws_messages().is_empty());
}

#[tokio::test]
async fn websocket_protocol_errors_close_with_1002() {
    let upstream = FakeUpstream::start().await;
    let (mut ws, head) = RawWs::open(&upstream, &[]).await;
    assert!(head.starts_with("HTTP/1.1 101 "), "{head}");
    // RFC 6455 §5.1: a client must mask every frame.
    let unmasked = Frame::message(
        Bytes::from_static(br#"{"type":"response.create"}"#),
        OpCode::Data(Data::Text),
        true,
    );
    ws.send_frame(unmasked).await;
    let (header, payload) = ws.frame().await.expect("a close frame");
    assert_eq!(header.opcode, OpCode::Control(Control::Close));
    assert_eq!(payload, 1002u16.to_be_bytes());
    assert!(ws.frame().await.is_none(), "then EOF");
    assert!(upstream.ws_messages().is_empty());
}
