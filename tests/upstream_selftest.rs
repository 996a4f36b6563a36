//! Checks the fake Anthropic upstream itself. Each test talks to it directly, over TLS that
//! trusts only its test CA, with hyper's HTTP/1.1 client, so the end-to-end tests can rely on
//! what it serves.

mod support;

use std::{
    io::Write as _,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use flate2::write::GzDecoder;
use http_body_util::{BodyExt as _, Full};
use hudsucker::{
    hyper::{
        Request, Response, StatusCode,
        body::Incoming,
        client::conn::http1::{self, SendRequest},
    },
    rustls::{
        ClientConfig, RootCertStore,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, ServerName, pem::PemObject as _},
    },
};
use hyper_util::rt::TokioIo;
use support::upstream::FakeUpstream;
use tokio::net::TcpStream;
use tokio_rustls::TlsConnector;

/// One HTTP/1.1 connection to the fake upstream, verified against its CA under the name
/// `api.anthropic.com`.
async fn connect(upstream: &FakeUpstream) -> SendRequest<Full<Bytes>> {
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
    let name = ServerName::try_from("api.anthropic.com").expect("server name");
    let tls = TlsConnector::from(Arc::new(tls))
        .connect(name, tcp)
        .await
        .expect("TLS handshake with the test CA");
    let (send, conn) = http1::handshake(TokioIo::new(tls))
        .await
        .expect("HTTP/1.1 handshake");
    tokio::spawn(conn);
    send
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
