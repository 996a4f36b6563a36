//! llmtap as a security boundary, tried as an attacker would: raw clients and hostile
//! upstreams on 127.0.0.1, each fault of the hardening issue as a test that failed on the
//! code before it and asserts that nothing is lost, altered or reached that should not be.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::{Duration, Instant},
};

use crate::support::{
    client::{self, collect},
    harness::{self, metric},
    raw::{plain_origin, raw, read_reply},
};
use bytes::Bytes;
use http_body_util::Full;
use hudsucker::hyper::Request;
use llmtap::vocab::Outcome;
use llmtap_fake_upstream::FakeUpstream;
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::{TcpListener, TcpStream},
};

const HOST: &str = "api.anthropic.com";

fn body(case: &str) -> Vec<u8> {
    FakeUpstream::fixture(case, "request.json")
}

/// A TLS origin that accepts TCP and then never says a word (no handshake, no answer).
async fn silent_origin() -> SocketAddr {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let mut held = Vec::new();
        while let Ok((tcp, _)) = listener.accept().await {
            held.push(tcp);
        }
    });
    addr
}

/// llmtap configured from `args` alone (the harness adds the fake upstream's CA).
async fn start_raw(args: &[&str]) -> (llmtap::Running, String, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let mut all = vec![
        "llmtap",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--calls",
        "off",
        "--db",
        "none",
        "--ca-dir",
        dir.path().to_str().unwrap(),
    ];
    all.extend_from_slice(args);
    let cli = <llmtap::cli::Cli as clap::Parser>::try_parse_from(all).unwrap();
    let config = llmtap::config::Config::from_args(cli.run).unwrap();
    let running = llmtap::start(config.clone(), Box::new(std::io::sink()))
        .await
        .unwrap();
    (running, config.ca.cert_pem, dir)
}

/// A TLS origin (own test CA, written to a file) that reads a request and never answers.
async fn mute_tls_origin() -> (SocketAddr, tempfile::NamedTempFile) {
    let (ca_pem, tls) = llmtap_fake_upstream::test_pki();
    let mut ca_file = tempfile::NamedTempFile::new().unwrap();
    std::io::Write::write_all(&mut ca_file, ca_pem.as_bytes()).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            tokio::spawn(async move {
                if let Ok(mut tls) = acceptor.accept(tcp).await {
                    let mut sink = [0u8; 4096];
                    while let Ok(n) = tls.read(&mut sink).await {
                        if n == 0 {
                            break;
                        }
                    }
                }
            });
        }
    });
    (addr, ca_file)
}

#[tokio::test]
async fn h2_requests_naming_another_authority_are_misdirected_and_never_forwarded() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, true).await;
    assert!(conn.is_h2());
    for uri in [
        format!("http://127.0.0.1:{}/metrics", tap.admin.port()),
        "https://api.openai.com/v1/messages".to_owned(),
        "https://api.anthropic.com:8443/v1/messages".to_owned(),
    ] {
        let req = Request::post(&uri)
            .header("x-api-key", "sk-ant-api03-must-stay")
            .body(Full::new(Bytes::from(body("stream_text"))))
            .unwrap();
        let res = collect(conn.send(req).await.expect("answer")).await;
        assert_eq!(res.status, 421, "{uri}");
        assert!(!String::from_utf8_lossy(&res.body()).contains("llmtap_"));
    }
    assert!(upstream.seen().is_empty(), "nothing reached any upstream");
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_connections_refused_total",
            &[("reason", "misdirected")]
        ),
        3.0
    );
}

#[tokio::test]
async fn h1_host_of_another_destination_is_misdirected() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("json_message"), &[], false);
    let (mut parts, b) = req.into_parts();
    parts
        .headers
        .insert("host", "evil.example".parse().unwrap());
    let res = collect(conn.send(Request::from_parts(parts, b)).await.unwrap()).await;
    assert_eq!(res.status, 421);
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn loopback_link_local_and_own_addresses_are_refused_unless_allowed() {
    let upstream = FakeUpstream::start().await;
    let (origin, heads) = plain_origin().await;
    let tap = harness::start(&upstream, &[]).await;
    let admin = tap.admin.port();
    for request in [
        format!("CONNECT 127.0.0.1:{admin} HTTP/1.1\r\nHost: 127.0.0.1:{admin}\r\n\r\n"),
        format!(
            "CONNECT localhost:{} HTTP/1.1\r\nHost: x\r\n\r\n",
            origin.port()
        ),
        format!(
            "CONNECT [::1]:{} HTTP/1.1\r\nHost: x\r\n\r\n",
            origin.port()
        ),
        "CONNECT 169.254.169.254:80 HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
        format!("GET http://127.0.0.1:{admin}/metrics HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n"),
        format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\nconnection: close\r\n\r\n"),
        "GET http://0.0.0.0:9/ HTTP/1.1\r\nHost: x\r\n\r\n".to_owned(),
    ] {
        let reply = raw(tap.proxy, request.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{request}: {reply}");
        assert!(!reply.contains("llmtap_requests_total"), "{reply}");
    }
    assert!(
        heads.lock().unwrap().is_empty(),
        "the origin was never reached"
    );
    let m = tap.metrics().await;
    assert_eq!(
        metric(&m, "llmtap_destinations_refused_total", &[]),
        7.0,
        "{m}"
    );

    // An operator opens one destination explicitly; the rest stay closed.
    let allow = format!("127.0.0.1:{}", origin.port());
    let open = harness::start(&upstream, &["--allow-destination", &allow]).await;
    let reply = raw(
        open.proxy,
        format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\nconnection: close\r\n\r\n")
            .as_bytes(),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let reply = raw(
        open.proxy,
        format!("CONNECT 127.0.0.1:{admin} HTTP/1.1\r\nHost: x\r\n\r\n").as_bytes(),
    )
    .await;
    assert!(reply.starts_with("HTTP/1.1 403"), "{reply}");
}

#[tokio::test]
async fn proxy_credentials_and_hop_by_hop_headers_never_reach_the_origin() {
    let upstream = FakeUpstream::start().await;
    let (origin, heads) = plain_origin().await;
    let allow = format!("127.0.0.1:{}", origin.port());
    let tap = harness::start(&upstream, &["--allow-destination", &allow]).await;
    let request = format!(
        "GET http://{origin}/x HTTP/1.1\r\nHost: {origin}\r\n\
         Proxy-Authorization: Basic dGVhbTpzZWNyZXQ=\r\nProxy-Connection: keep-alive\r\n\
         Connection: close, X-Hop\r\nX-Hop: 1\r\nKeep-Alive: timeout=5\r\nX-End-To-End: kept\r\n\r\n"
    );
    let reply = raw(tap.proxy, request.as_bytes()).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let heads = heads.lock().unwrap();
    let head = heads[0].to_ascii_lowercase();
    for hop in [
        "proxy-authorization",
        "proxy-connection",
        "x-hop",
        "keep-alive",
    ] {
        assert!(!head.contains(hop), "{hop} forwarded: {head}");
    }
    assert!(head.contains("x-end-to-end: kept"), "{head}");
}

#[tokio::test]
async fn plaintext_inside_a_tunnel_to_port_443_is_refused() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let mut tunnel = client::connect_tunnel(tap.proxy, "chatgpt.com:443").await;
    tunnel
        .write_all(b"GET /backend-api/codex/responses HTTP/1.1\r\nHost: chatgpt.com\r\nAuthorization: Bearer eyJsecret\r\n\r\n")
        .await
        .unwrap();
    let reply = read_reply(&mut tunnel).await;
    assert!(reply.starts_with("HTTP/1.1 400"), "{reply}");
    assert_eq!(upstream.connections(), 0, "nothing was sent upstream");
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_connections_refused_total",
            &[("reason", "plaintext")]
        ),
        1.0
    );
}

#[tokio::test]
async fn a_connect_closed_before_any_byte_dials_nothing() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    drop(tunnel);
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert_eq!(upstream.connections(), 0);
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_connections_refused_total",
            &[("reason", "closed_early")]
        ),
        1.0
    );
}

/// Writes the first byte of the first write alone, 50 ms before the rest, as a ClientHello
/// split across TCP segments arrives.
struct SplitFirstWrite {
    inner: TcpStream,
    state: u8,
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl AsyncRead for SplitFirstWrite {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl AsyncWrite for SplitFirstWrite {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        match self.state {
            0 => {
                self.state = 1;
                self.sleep = Some(Box::pin(tokio::time::sleep(Duration::from_millis(50))));
                Pin::new(&mut self.inner).poll_write(cx, &buf[..1])
            }
            1 => {
                if let Some(sleep) = self.sleep.as_mut() {
                    std::task::ready!(sleep.as_mut().poll(cx));
                }
                self.state = 2;
                Pin::new(&mut self.inner).poll_write(cx, buf)
            }
            _ => Pin::new(&mut self.inner).poll_write(cx, buf),
        }
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}

use std::future::Future as _;

#[tokio::test]
async fn a_client_hello_split_after_one_byte_is_still_intercepted() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    let split = SplitFirstWrite {
        inner: tunnel,
        state: 0,
        sleep: None,
    };
    let tls = client::tls_over(split, HOST, client::tls(&tap.ca_pem, false))
        .await
        .expect("llmtap's own leaf: the tunnel was intercepted");
    let mut conn = client::Conn::over(tls).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("json_message"), &[], false);
    let res = collect(conn.send(req).await.unwrap()).await;
    assert_eq!(res.status, 200);
    let record = tap.next_record().await;
    assert_eq!(record.outcome, Outcome::Ok);
}

#[tokio::test]
async fn a_client_hello_for_another_host_gets_no_certificate() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    let result = client::tls_over(tunnel, "www.google.com", client::tls(&tap.ca_pem, false)).await;
    assert!(
        result.is_err(),
        "no leaf for a host other than the CONNECT target"
    );
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_connections_refused_total",
            &[("reason", "sni_mismatch")]
        ),
        1.0
    );
}

#[tokio::test]
async fn silent_and_half_open_clients_are_closed_after_the_header_timeout() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &["--client-header-timeout", "1s"]).await;
    let start = Instant::now();
    let mut silent = TcpStream::connect(tap.proxy).await.unwrap();
    let mut partial = TcpStream::connect(tap.proxy).await.unwrap();
    partial.write_all(b"CONNECT api.anthrop").await.unwrap();
    let mut tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    let mut byte = [0u8; 1];
    for (name, conn) in [
        ("tcp only", &mut silent),
        ("partial head", &mut partial),
        ("connect without tls", &mut tunnel),
    ] {
        let closed = tokio::time::timeout(Duration::from_secs(10), conn.read(&mut byte)).await;
        assert!(
            matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
            "{name}: still open after {:?}",
            start.elapsed()
        );
    }
    assert!(start.elapsed() < Duration::from_secs(5));
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_connections_refused_total",
            &[("reason", "header_timeout")]
        ),
        2.0
    );
    assert_eq!(
        metric(
            &m,
            "llmtap_connections_refused_total",
            &[("reason", "handshake_timeout")]
        ),
        1.0
    );
    assert_eq!(upstream.connections(), 0);
}

#[tokio::test]
async fn an_upstream_that_never_answers_gets_504_and_one_upstream_timeout_record() {
    let (mute, ca) = mute_tls_origin().await;
    let resolve = format!("{HOST}:443:{mute}");
    let (running, ca_pem, _dir) = start_raw(&[
        "--resolve",
        &resolve,
        "--upstream-ca",
        ca.path().to_str().unwrap(),
        "--response-timeout",
        "1s",
    ])
    .await;
    let mut records = running.telemetry.subscribe();
    let mut conn = client::via_proxy(running.proxy_addr, HOST, &ca_pem, false).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &[], false);
    let started = Instant::now();
    let res = collect(conn.send(req).await.unwrap()).await;
    assert_eq!(res.status, 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    let record = tokio::time::timeout(Duration::from_secs(10), records.recv())
        .await
        .unwrap()
        .unwrap();
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
    assert!(
        tokio::time::timeout(Duration::from_millis(300), records.recv())
            .await
            .is_err(),
        "exactly one record"
    );
    running.shutdown().await;
}

#[tokio::test]
async fn an_upstream_that_never_finishes_tls_hits_the_connect_timeout() {
    let upstream = FakeUpstream::start().await;
    let silent = silent_origin().await;
    let resolve = format!("{HOST}:443:{silent}");
    let mut tap = harness::start(
        &upstream,
        &["--resolve", &resolve, "--connect-timeout", "1s"],
    )
    .await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &[], false);
    let started = Instant::now();
    let res = collect(conn.send(req).await.unwrap()).await;
    assert_eq!(res.status, 504);
    assert!(started.elapsed() < Duration::from_secs(5));
    let record = tap.next_record().await;
    assert_eq!(
        record
            .error_type
            .as_ref()
            .map(ToString::to_string)
            .as_deref(),
        Some("upstream_timeout")
    );
}

#[tokio::test]
async fn a_stream_that_goes_silent_is_cut_and_recorded_upstream_timeout() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--stream-idle-timeout", "1s"]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    // The fake upstream sends the first event, then holds the rest (up to 10 s).
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body("stream_text"),
        &[("x-fake-hold", "1")],
        false,
    );
    let res = conn.send(req).await.unwrap();
    assert_eq!(res.status(), 200);
    let started = Instant::now();
    let collected = http_body_util::BodyExt::collect(res.into_body()).await;
    assert!(
        collected.is_err(),
        "the client sees a cut stream, not a clean end"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
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
    upstream.release();
}

#[tokio::test]
async fn untrusted_upstream_certificates_are_upstream_tls() {
    let upstream = FakeUpstream::start().await;
    // The harness trusts the fake upstream's CA through --upstream-ca; a second llmtap
    // without it sees an unknown issuer.
    let resolve = format!("{HOST}:443:{}", upstream.addr);
    let (running, ca_pem, _dir) = start_raw(&["--resolve", &resolve]).await;
    let mut records = running.telemetry.subscribe();
    let mut conn = client::via_proxy(running.proxy_addr, HOST, &ca_pem, false).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("stream_text"), &[], false);
    let res = collect(conn.send(req).await.unwrap()).await;
    assert_eq!(res.status, 502);
    let record = tokio::time::timeout(Duration::from_secs(10), records.recv())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(
        (
            record.outcome,
            record
                .error_type
                .as_ref()
                .map(ToString::to_string)
                .as_deref()
        ),
        (Outcome::UpstreamError, Some("upstream_tls"))
    );
    running.shutdown().await;
}

#[tokio::test]
async fn a_client_aborting_its_request_body_is_cancelled_not_an_upstream_failure() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    let mut tls = client::tls_over(tunnel, HOST, client::tls(&tap.ca_pem, false))
        .await
        .unwrap();
    tls.write_all(
        b"POST /v1/messages HTTP/1.1\r\nHost: api.anthropic.com\r\ncontent-type: application/json\r\ncontent-length: 100000\r\n\r\n{\"model\":\"claude-x\",",
    )
    .await
    .unwrap();
    tls.flush().await.unwrap();
    tokio::time::sleep(Duration::from_millis(200)).await;
    drop(tls);
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
        (Outcome::Cancelled, Some("cancelled"))
    );
}

#[tokio::test]
async fn a_call_over_the_observation_budget_is_relayed_unchanged_and_recorded_flagged() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--observe-budget", "1MiB"]).await;
    // A 2 MB request: its copy does not fit the budget.
    let mut request: serde_json::Value = serde_json::from_slice(&body("json_message")).unwrap();
    request["metadata"] = serde_json::json!({"padding": "x".repeat(2 << 20)});
    let big = serde_json::to_vec(&request).unwrap();
    let req = |h2| client::messages_request(HOST, "/v1/messages", &big, &[], h2);
    let mut direct = client::direct(upstream.addr, HOST, &upstream.ca_pem).await;
    let direct = collect(direct.send(req(false)).await.unwrap()).await;
    let mut via = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let via = collect(via.send(req(false)).await.unwrap()).await;
    assert_eq!((via.status, via.body()), (direct.status, direct.body()));
    let seen = upstream.seen();
    assert_eq!(seen.len(), 2);
    assert_eq!(
        seen[0].body, seen[1].body,
        "the upstream got the same bytes both ways"
    );
    let record = tap.next_record().await;
    assert_eq!(record.outcome, Outcome::Ok);
    assert_eq!(
        record.observe_skipped,
        Some(llmtap::budget::Skipped::RequestBody)
    );
    assert!(
        record.request.is_none(),
        "no request facts without the copy"
    );
    assert!(
        record.response.usage.output.is_some(),
        "the response is still observed"
    );
    let m = tap.metrics().await;
    assert_eq!(
        metric(
            &m,
            "llmtap_observe_skipped_total",
            &[("reason", "request_body")]
        ),
        1.0
    );
    assert_eq!(metric(&m, "llmtap_observe_held_bytes", &[]), 0.0);
}
