//! A fake `api.anthropic.com` for end-to-end tests: real TLS (its own test CA), real HTTP/1.1
//! (hyper), responses served from the golden fixtures in `tests/fixtures/anthropic/`.
//!
//! It owns wire faithfulness, and nothing about llmtap. SSE goes out as one HTTP chunk per
//! event, flushed as written, with optional gzip, hold, delay and reset modifiers. It records
//! every request. It does not parse or judge what it serves.
//!
//! Routing: `POST /v1/messages` (any query, e.g. `?beta=true`) and
//! `POST /v1/messages/count_tokens`. Everything else gets 404 `not_found_error`.
//!
//! The request header `x-fake-scenario: <case>` picks the scenario; every fixture case is one.
//! Without the header, count_tokens serves `count_tokens`, and messages serves `stream_text`
//! when the body has `"stream": true`, else `json_message`. Case `error_NNN` is served with
//! status NNN; `error_429` also gets `retry-after: 7`. `malformed` is an SSE stream built in
//! code (see [`FakeUpstream::malformed_sse`]). An unknown scenario gets 500 `api_error`.
//!
//! Modifier headers:
//! - `x-fake-gzip: 1` gzips the body. For SSE, every event is flushed as its own chunk, so a
//!   client can decode progressively.
//! - `x-fake-hold: 1` sends the first SSE event, then waits for [`FakeUpstream::release`]
//!   (at most 10 s).
//! - `x-fake-first-delay-ms: N` waits N ms after the first SSE event.
//! - `x-fake-reset-after: N` sends the first N SSE events, then aborts the connection
//!   without the terminating chunk.

use std::{
    convert::Infallible,
    io::Write as _,
    net::SocketAddr,
    path::{Path, PathBuf},
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicU64, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use flate2::{Compression, write::GzEncoder};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hudsucker::{
    hyper::{
        Method, Request, Response, StatusCode,
        body::{Body, Frame, Incoming},
        header::{HeaderName, HeaderValue},
        server::conn::http1,
        service::service_fn,
    },
    rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::{
    net::TcpListener,
    sync::{Notify, mpsc},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::TlsAcceptor;

/// Pause between two SSE events, like a model emitting tokens.
const EVENT_GAP: Duration = Duration::from_millis(5);
/// Longest a `hold` waits for `release()` before it carries on by itself.
const HOLD_TIMEOUT: Duration = Duration::from_secs(10);
/// Made up, and the same one that the `error_429` fixture names.
const ORGANIZATION_ID: &str = "3b9d6c1e-7a2f-4e58-9c0d-1f2e3a4b5c6d";

type ResBody = BoxBody<Bytes, std::io::Error>;

/// One request as the fake upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path_and_query: String,
    /// Lower-case names, in hyper's `HeaderMap` order. Repeated headers appear once per value.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Seen {
    /// The first value of header `name` (case-insensitive), if any.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

struct State {
    seen: Mutex<Vec<Seen>>,
    release: Notify,
    next_request_id: AtomicU64,
    /// TLS connections accepted: shows whether a client reuses its connections.
    connections: AtomicU64,
}

/// A running fake upstream. Dropping it stops the server and closes its connections.
pub struct FakeUpstream {
    pub addr: SocketAddr,
    pub ca_pem: String,
    ca_file: tempfile::NamedTempFile,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.server.abort();
    }
}

impl FakeUpstream {
    /// Starts a server on `127.0.0.1:0` with a fresh CA. The leaf certificate covers
    /// `api.anthropic.com`, `localhost` and `127.0.0.1`. ALPN offers `http/1.1` only.
    pub async fn start() -> FakeUpstream {
        let _ = aws_lc_rs::default_provider().install_default();
        let (ca_pem, tls) = test_pki();

        let mut ca_file = tempfile::Builder::new()
            .prefix("fake-upstream-ca-")
            .suffix(".pem")
            .tempfile()
            .expect("create CA temp file");
        ca_file
            .write_all(ca_pem.as_bytes())
            .expect("write CA temp file");
        ca_file.flush().expect("flush CA temp file");

        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind fake upstream");
        let addr = listener.local_addr().expect("fake upstream address");
        let state = Arc::new(State {
            seen: Mutex::new(Vec::new()),
            release: Notify::new(),
            next_request_id: AtomicU64::new(1),
            connections: AtomicU64::new(0),
        });
        let server = tokio::spawn(accept_loop(
            listener,
            TlsAcceptor::from(Arc::new(tls)),
            state.clone(),
        ));
        FakeUpstream {
            addr,
            ca_pem,
            ca_file,
            state,
            server,
        }
    }

    /// The CA certificate (PEM) in a temp file that lives as long as `self`.
    pub fn ca_pem_path(&self) -> &Path {
        self.ca_file.path()
    }

    /// TLS connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock poisoned").clone()
    }

    /// Lets one held stream (`x-fake-hold: 1`) continue. If no stream is waiting yet, the next
    /// one to reach its hold passes straight through.
    pub fn release(&self) {
        self.state.release.notify_one();
    }

    /// The bytes of `tests/fixtures/anthropic/<case>.<ext>`, e.g. `("stream_text", "sse")`.
    pub fn fixture(case: &str, ext: &str) -> Vec<u8> {
        let path = fixture_path(case, ext);
        std::fs::read(&path).unwrap_or_else(|e| panic!("read fixture {}: {e}", path.display()))
    }

    /// Splits an SSE body into events exactly as the server sends them, one HTTP chunk each.
    /// Every piece ends with its blank line, and the pieces concatenate back to `raw`. A
    /// comment-only block counts as an event. Any bytes after the last blank line form a final
    /// piece.
    pub fn sse_events(raw: &[u8]) -> Vec<Vec<u8>> {
        let mut events = Vec::new();
        let (mut event_start, mut line_start, mut i) = (0, 0, 0);
        while i < raw.len() {
            let eol = match raw[i] {
                b'\n' => 1,
                b'\r' if raw.get(i + 1) == Some(&b'\n') => 2,
                b'\r' => 1,
                _ => {
                    i += 1;
                    continue;
                }
            };
            let empty_line = i == line_start;
            i += eol;
            line_start = i;
            if empty_line {
                events.push(raw[event_start..i].to_vec());
                event_start = i;
            }
        }
        if event_start < raw.len() {
            events.push(raw[event_start..].to_vec());
        }
        events
    }

    /// The events of the `malformed` scenario, in order:
    /// 0. a valid `message_start`: id `msg_01MaLf0rMeDsTrEaMtEsT01`, model `claude-sonnet-4-6`,
    ///    usage input 10, output 1, no cache fields;
    /// 1. a valid `content_block_start` (text);
    /// 2. a `content_block_delta` whose data is truncated, invalid JSON;
    /// 3. a `content_block_delta` with invalid UTF-8 bytes inside its data;
    /// 4. a `content_block_delta` whose single `data:` line is over 1 MiB (valid JSON);
    /// 5. a valid `content_block_stop`;
    /// 6. a valid `message_delta` (stop_reason `end_turn`, output_tokens 25);
    /// 7. a valid `message_stop`.
    pub fn malformed_sse() -> Vec<Vec<u8>> {
        let huge_text = "x".repeat(1 << 20);
        vec![
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01MaLf0rMeDsTrEaMtEsT01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-6\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":10,\"output_tokens\":1}}}\n\n".to_vec(),
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec(),
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"unterminated\n\n".to_vec(),
            b"event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":{\"type\":\"text_delta\",\"text\":\"bad \xff\xfe\xc3 bytes\"}}\n\n".to_vec(),
            format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"{huge_text}\"}}}}\n\n").into_bytes(),
            b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n".to_vec(),
            b"event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\"end_turn\",\"stop_sequence\":null},\"usage\":{\"output_tokens\":25}}\n\n".to_vec(),
            b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec(),
        ]
    }
}

fn fixture_path(case: &str, ext: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/anthropic")
        .join(format!("{case}.{ext}"))
}

/// A CA and a leaf signed by it, valid from yesterday for a year. Returns the CA's PEM and a
/// server config that presents the leaf.
pub fn test_pki() -> (String, ServerConfig) {
    let now = time::OffsetDateTime::now_utc();

    let ca_key = KeyPair::generate().expect("generate CA key");
    let mut ca = CertificateParams::default();
    ca.distinguished_name
        .push(DnType::CommonName, "llmtap fake upstream test CA");
    ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    ca.key_usages = vec![
        KeyUsagePurpose::KeyCertSign,
        KeyUsagePurpose::CrlSign,
        KeyUsagePurpose::DigitalSignature,
    ];
    ca.not_before = now - time::Duration::days(1);
    ca.not_after = now + time::Duration::days(365);
    let ca_cert = ca.self_signed(&ca_key).expect("self-sign CA");
    let issuer = Issuer::new(ca, ca_key);

    let leaf_key = KeyPair::generate().expect("generate leaf key");
    let mut leaf = CertificateParams::new(vec![
        "api.anthropic.com".to_owned(),
        "localhost".to_owned(),
        "127.0.0.1".to_owned(),
    ])
    .expect("leaf SANs");
    leaf.distinguished_name
        .push(DnType::CommonName, "api.anthropic.com");
    leaf.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
    leaf.use_authority_key_identifier_extension = true;
    leaf.not_before = now - time::Duration::days(1);
    leaf.not_after = now + time::Duration::days(365);
    let leaf_cert = leaf.signed_by(&leaf_key, &issuer).expect("sign leaf");

    let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(leaf_key.serialize_der()));
    let chain: Vec<CertificateDer<'static>> = vec![leaf_cert.der().clone()];
    let mut tls = ServerConfig::builder_with_provider(Arc::new(aws_lc_rs::default_provider()))
        .with_safe_default_protocol_versions()
        .expect("TLS versions")
        .with_no_client_auth()
        .with_single_cert(chain, key)
        .expect("server certificate");
    tls.alpn_protocols = vec![b"http/1.1".to_vec()];
    (ca_cert.pem(), tls)
}

async fn accept_loop(listener: TcpListener, acceptor: TlsAcceptor, state: Arc<State>) {
    let mut connections = JoinSet::new();
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => tcp,
            Err(_) => {
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        while connections.try_join_next().is_some() {}
        let acceptor = acceptor.clone();
        let state = state.clone();
        connections.spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            state.connections.fetch_add(1, Ordering::SeqCst);
            let service = service_fn(move |req| handle(state.clone(), req));
            // Errors here are the point of some scenarios (reset) or the client's doing.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(tls), service)
                .await;
        });
    }
}

/// The modifier headers of one request.
struct Modifiers {
    gzip: bool,
    hold: bool,
    first_delay: Option<Duration>,
    reset_after: Option<usize>,
}

enum Payload {
    Sse(Vec<Vec<u8>>),
    Json(Vec<u8>),
}

async fn handle(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<ResBody>, Infallible> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(collected) => collected.to_bytes().to_vec(),
        Err(_) => Vec::new(),
    };
    let header = |name: &str| {
        parts
            .headers
            .get(name)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
    };
    let seen = Seen {
        method: parts.method.to_string(),
        path_and_query: parts
            .uri
            .path_and_query()
            .map_or_else(|| parts.uri.path().to_owned(), |pq| pq.as_str().to_owned()),
        headers: parts
            .headers
            .iter()
            .map(|(n, v)| {
                (
                    n.as_str().to_owned(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body,
    };
    let is_stream_request = serde_json::from_slice::<serde_json::Value>(&seen.body)
        .ok()
        .and_then(|v| v.get("stream").and_then(serde_json::Value::as_bool))
        .unwrap_or(false);
    state.seen.lock().expect("seen lock poisoned").push(seen);

    let request_id = format!(
        "req_011CVfakeUpstream{:06}",
        state.next_request_id.fetch_add(1, Ordering::Relaxed)
    );
    let scenario = match (&parts.method, parts.uri.path()) {
        (&Method::POST, "/v1/messages") => header("x-fake-scenario").unwrap_or_else(|| {
            if is_stream_request {
                "stream_text".to_owned()
            } else {
                "json_message".to_owned()
            }
        }),
        (&Method::POST, "/v1/messages/count_tokens") => {
            header("x-fake-scenario").unwrap_or_else(|| "count_tokens".to_owned())
        }
        _ => {
            return Ok(error_response(
                StatusCode::NOT_FOUND,
                "not_found_error",
                "Not found",
                &request_id,
            ));
        }
    };
    let modifiers = Modifiers {
        gzip: header("x-fake-gzip").as_deref() == Some("1"),
        hold: header("x-fake-hold").as_deref() == Some("1"),
        first_delay: header("x-fake-first-delay-ms")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_millis),
        reset_after: header("x-fake-reset-after").and_then(|v| v.trim().parse().ok()),
    };

    let gzip_body = modifiers.gzip;
    let Some(payload) = load_scenario(&scenario) else {
        return Ok(error_response(
            StatusCode::INTERNAL_SERVER_ERROR,
            "api_error",
            &format!("fake upstream: no fixture for scenario {scenario:?}"),
            &request_id,
        ));
    };
    let status = scenario
        .strip_prefix("error_")
        .and_then(|code| code.parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .unwrap_or(StatusCode::OK);

    let mut res = match payload {
        Payload::Json(bytes) => {
            // An error body names its request id; the real API sends the same one as a header.
            let body_request_id = serde_json::from_slice::<serde_json::Value>(&bytes)
                .ok()
                .and_then(|v| v.get("request_id")?.as_str().map(str::to_owned));
            let request_id = body_request_id.unwrap_or(request_id);
            let bytes = if gzip_body { gzip(&bytes) } else { bytes };
            let mut res = Response::new(full(bytes));
            set(&mut res, "content-type", "application/json");
            set(&mut res, "request-id", &request_id);
            res
        }
        Payload::Sse(events) => {
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(produce_sse(tx, events, modifiers, state));
            let mut res = Response::new(BoxBody::new(ChannelBody { rx }));
            set(&mut res, "content-type", "text/event-stream; charset=utf-8");
            set(&mut res, "cache-control", "no-cache");
            set(&mut res, "request-id", &request_id);
            res
        }
    };
    *res.status_mut() = status;
    set(&mut res, "anthropic-organization-id", ORGANIZATION_ID);
    if gzip_body {
        set(&mut res, "content-encoding", "gzip");
    }
    match status.as_u16() {
        429 => {
            set(&mut res, "retry-after", "7");
            set(&mut res, "x-should-retry", "true");
        }
        529 => set(&mut res, "x-should-retry", "true"),
        _ => {}
    }
    Ok(res)
}

fn load_scenario(scenario: &str) -> Option<Payload> {
    if scenario == "malformed" {
        return Some(Payload::Sse(FakeUpstream::malformed_sse()));
    }
    // Scenario names come from a request header: never let one climb out of the fixture folder.
    if scenario.is_empty()
        || !scenario
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
    {
        return None;
    }
    if let Ok(raw) = std::fs::read(fixture_path(scenario, "sse")) {
        return Some(Payload::Sse(FakeUpstream::sse_events(&raw)));
    }
    std::fs::read(fixture_path(scenario, "json"))
        .ok()
        .map(Payload::Json)
}

/// Feeds one SSE response body, one event per chunk, applying the modifiers.
async fn produce_sse(
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    events: Vec<Vec<u8>>,
    modifiers: Modifiers,
    state: Arc<State>,
) {
    let mut encoder = modifiers
        .gzip
        .then(|| GzEncoder::new(Vec::new(), Compression::default()));
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(EVENT_GAP).await;
        }
        if modifiers.reset_after == Some(i) {
            let _ = tx.send(Err(reset_error())).await;
            return;
        }
        let chunk = match encoder.as_mut() {
            Some(encoder) => {
                // A sync flush ends the deflate block, so this chunk decodes on its own.
                encoder.write_all(event).expect("gzip into memory");
                encoder.flush().expect("gzip flush into memory");
                std::mem::take(encoder.get_mut())
            }
            None => event.clone(),
        };
        if tx.send(Ok(Bytes::from(chunk))).await.is_err() {
            return; // the client went away
        }
        if i == 0 {
            if modifiers.hold {
                let _ = tokio::time::timeout(HOLD_TIMEOUT, state.release.notified()).await;
            }
            if let Some(delay) = modifiers.first_delay {
                tokio::time::sleep(delay).await;
            }
        }
    }
    if modifiers.reset_after.is_some() {
        // Asked to reset after at least as many events as there are: still never end cleanly.
        tokio::time::sleep(EVENT_GAP).await;
        let _ = tx.send(Err(reset_error())).await;
        return;
    }
    if let Some(encoder) = encoder {
        let trailer = encoder.finish().expect("gzip finish into memory");
        let _ = tx.send(Ok(Bytes::from(trailer))).await;
    }
}

fn reset_error() -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::ConnectionReset,
        "fake upstream: reset mid-stream",
    )
}

/// A response body fed by a channel: each message is one frame, so one HTTP chunk. An `Err`
/// makes hyper abort the connection without the terminating chunk.
struct ChannelBody {
    rx: mpsc::Receiver<Result<Bytes, std::io::Error>>,
}

impl Body for ChannelBody {
    type Data = Bytes;
    type Error = std::io::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|item| item.map(|res| res.map(Frame::data)))
    }
}

fn full(bytes: Vec<u8>) -> ResBody {
    Full::new(Bytes::from(bytes))
        .map_err(|never| match never {})
        .boxed()
}

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = GzEncoder::new(Vec::new(), Compression::default());
    encoder.write_all(bytes).expect("gzip into memory");
    encoder.finish().expect("gzip finish into memory")
}

fn set(res: &mut Response<ResBody>, name: &'static str, value: &str) {
    res.headers_mut().insert(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("header value is visible ASCII"),
    );
}

fn error_response(
    status: StatusCode,
    error_type: &str,
    message: &str,
    request_id: &str,
) -> Response<ResBody> {
    let body = serde_json::json!({
        "type": "error",
        "error": {"type": error_type, "message": message},
        "request_id": request_id,
    });
    let mut res = Response::new(full(body.to_string().into_bytes()));
    *res.status_mut() = status;
    set(&mut res, "content-type", "application/json");
    set(&mut res, "request-id", request_id);
    set(&mut res, "anthropic-organization-id", ORGANIZATION_ID);
    res
}
