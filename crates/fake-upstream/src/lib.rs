//! A fake LLM upstream for end-to-end tests: every host the golden fixtures name
//! (`api.anthropic.com`, `api.openai.com`, `chatgpt.com`, `generativelanguage.googleapis.com`,
//! `cloudcode-pa.googleapis.com`, `bedrock-runtime.us-east-1.amazonaws.com`, Vertex AI's
//! `us-east5-aiplatform.googleapis.com` and
//! `aiplatform.googleapis.com`, Azure's `fake-resource.openai.azure.com` and
//! `fake-resource.services.ai.azure.com`, and the compatible providers `api.deepseek.com`,
//! `openrouter.ai`, `api.groq.com`, `api.moonshot.ai`) on one port, with real TLS (its own test CA), real HTTP/1.1
//! (hyper) and a real WebSocket server, serving the golden fixtures in
//! `tests/fixtures/<dialect>/` of the repository.
//!
//! It owns wire faithfulness, and nothing about llmtap. Streams go out as one HTTP chunk per
//! event (SSE), per element (Gemini's JSON array) or per message (Bedrock's AWS event stream,
//! `application/vnd.amazon.eventstream`), flushed as written, with optional gzip,
//! hold, delay and reset modifiers. It records every request and every WebSocket message it
//! receives. It does not parse or judge what it serves.
//!
//! Routing is by method and path (and a query pair where a route names one), as each fixture
//! folder's `route.json` lists its API's routes ([`fixtures`]), a route of the request's own
//! host first ([`fixtures::route`]: `/v1/chat/completions` on `api.moonshot.ai` is served from
//! `openai_compatible/`, on `api.openai.com` from `openai_chat/`); the host also picks the
//! shape of error bodies and headers. A route also names the case served when a request names none
//! (`stream_text` for a streamed `POST /v1/messages`, `json_message` otherwise, and so on),
//! possibly by what the request body sets to `true` (`stream`,
//! `stream_options.include_usage`). A WebSocket upgrade takes the folder's `websocket` routes
//! (`GET /v1/responses` and `/backend-api/codex/responses`, default `ws_session`).
//!
//! Everything else gets a 404 in the style of the host: Anthropic's `not_found_error` (also for
//! unknown hosts), OpenAI's `invalid_request_error` for `api.openai.com` and `chatgpt.com`,
//! Google's `NOT_FOUND` for `*.googleapis.com`, AWS's `{"message"}` with `x-amzn-ErrorType`
//! for `*.amazonaws.com` (whose `error_NNN` cases get that header too).
//!
//! The request header `x-fake-scenario: <case>` picks another case in the route's folder; every
//! fixture case is one. A case is served from `<case>.sse`, `<case>.eventstream`,
//! `<case>.jsonarray` or `<case>.json`, whichever exists. Case `error_NNN` is served with status NNN; on Anthropic and OpenAI routes
//! `error_429` also gets `retry-after: 7`. `malformed` (Anthropic routes only) is an SSE stream
//! built in code (see [`FakeUpstream::malformed_sse`]). An unknown scenario gets a 500.
//!
//! The request header `x-fake-case: <name>` serves the real-traffic case
//! `tests/cases/real-traffic/<name>/` instead, whatever the method, path and body (it wins over
//! `x-fake-scenario`; see that folder's README):
//!
//! | file | how it is served |
//! |---|---|
//! | `response.headers` | the status (first line) and the `name: value` lines, exactly, and no provider headers of this server; framing fields (`content-length`, `transfer-encoding`, `connection`, `keep-alive`) are dropped, hyper frames the body chunked |
//! | `response.sse` | the body, exact bytes (a leading BOM, CRLF or CR line ends kept), one HTTP chunk per SSE event as [`FakeUpstream::sse_events`] splits it |
//! | `replay.json` (optional) | `expand`: `{"<placeholder>": N}` replaces every occurrence of the placeholder with N bytes of base64-alphabet text (see [`FakeUpstream::case_body`]); `split`: byte offsets into the expanded body at which to cut the pieces, instead of one per event; `pause_ms`: the pause between pieces (default 5 ms). Any other key is an error |
//! | `response.frames.jsonl` | on the WebSocket route: the session script, played as the `.frames.jsonl` files are (below); `replay.json`'s `expand` applies to it too |
//!
//! The modifier headers below apply to a case's body as well. An unknown case, a case without
//! the file the request needs, or a malformed case file gets a 500 in the host's error shape.
//! [`FakeUpstream::case_body`], [`FakeUpstream::case_pieces`] and [`FakeUpstream::case_turns`]
//! give tests the exact bytes served.
//!
//! Modifier headers, for every streamed route (SSE and JSON array):
//! - `x-fake-gzip: 1` (or `x-fake-encoding: gzip|deflate|br|zstd`) encodes the body (JSON bodies too). Every event is flushed as its own
//!   chunk, so a client can decode progressively.
//! - `x-fake-hold: 1` sends the first event, then waits for [`FakeUpstream::release`]
//!   (at most 10 s).
//! - `x-fake-first-delay-ms: N` waits N ms after the first event.
//! - `x-fake-gap-ms: N` waits N ms between two events (default 5; 0 for load benchmarks).
//! - `x-fake-scenario: generated` on `POST /v1/messages` streams `x-fake-events: N` text deltas
//!   (default 100, at most 100,000), a ping every 50, with usage ([`FakeUpstream::generated_sse`]).
//! - `x-fake-reset-after: N` sends the first N events, then aborts the connection
//!   without the terminating chunk.
//!
//! WebSocket (RFC 6455, hand-written framing so that it can speak `permessage-deflate`): the
//! server answers `101` with `Sec-WebSocket-Accept`, the first protocol the client offered in
//! `Sec-WebSocket-Protocol` (none if it offered none), and `permessage-deflate` when the client
//! offers it (RFC 7692, context takeover in both directions unless the offer asks otherwise;
//! `x-fake-ws-deflate: 0` declines it). The session file is
//! `<x-fake-scenario or the route's default>.frames.jsonl` in the WebSocket route's folder
//! (`tests/fixtures/openai_responses/ws_session.frames.jsonl` by default), or the case's
//! `response.frames.jsonl` when the upgrade carries `x-fake-case`. For the n-th
//! `response.create` text message it receives,
//! it sends the server frames that follow the n-th client frame of the session file, as text
//! messages 5 ms apart (compressed when negotiated); past the end of the file it sends an
//! `error` event. It answers pings and closes. `x-fake-ws-silent: 1` accepts the upgrade and never answers; `x-fake-ws-refuse: NNN` refuses the upgrade
//! with status NNN and an OpenAI JSON error body.
//!
//! [`FakeUpstream::start_agent`] starts the same server with one difference: model requests
//! that name no `x-fake-scenario` nor `x-fake-case` (`POST /v1/messages`, the Responses routes and their
//! WebSocket `response.create`s, the Gemini and Code Assist routes, and the same APIs under a
//! provider's prefix: Vertex AI's `:rawPredict` / `:streamRawPredict` and `publishers/google`,
//! Azure's `/openai/responses`) are answered by a fake
//! model that plays a two-turn agent task, chosen from the conversation in the request
//! rather than from a header, since a real agent cannot send one: a call to the agent's shell
//! tool, then a final answer once the tool result is in the conversation (see [`agent`]).
//! Everything else (fixtures by header, `count_tokens`, Chat Completions, 404s) is unchanged.
//!
//! [`FakeUpstream::start_scripted`] starts the same server with a list of [`Reply`]s (status,
//! content type, headers, exact body): each Anthropic `POST /v1/messages` that names no
//! `x-fake-scenario` nor `x-fake-case` gets the next one, in order, whatever it asks (see
//! [`script`]). Everything else is unchanged.

pub mod agent;
pub mod fixtures;
pub mod script;

pub use script::Reply;

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
use flate2::{Compress, Compression, Decompress, FlushCompress, FlushDecompress, write::GzEncoder};
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::{
    HeaderMap, Method, Request, Response, StatusCode,
    body::{Body, Frame, Incoming},
    header::{HeaderName, HeaderValue},
    server::conn::http1,
    service::service_fn,
};
use hyper_util::rt::TokioIo;
use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpListener,
    sync::{Notify, mpsc},
    task::{JoinHandle, JoinSet},
};
use tokio_rustls::{
    TlsAcceptor,
    rustls::{
        ServerConfig,
        crypto::aws_lc_rs,
        pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer},
    },
};
use tokio_tungstenite::tungstenite::handshake::derive_accept_key;

/// Pause between two SSE events (or WebSocket messages), like a model emitting tokens.
const EVENT_GAP: Duration = Duration::from_millis(5);
/// Longest a `hold` waits for `release()` before it carries on by itself.
const HOLD_TIMEOUT: Duration = Duration::from_secs(10);
/// Made up, and the same one that the `error_429` fixture names.
const ORGANIZATION_ID: &str = "3b9d6c1e-7a2f-4e58-9c0d-1f2e3a4b5c6d";
/// Largest WebSocket message (after inflation) the server accepts from a client.
const MAX_WS_MESSAGE: usize = 16 << 20;

type ResBody = BoxBody<Bytes, std::io::Error>;

/// One request as the fake upstream received it.
#[derive(Debug, Clone)]
pub struct Seen {
    /// The request method (`POST`).
    pub method: String,
    /// Path and query exactly as received (`/v1/messages?beta=true`).
    pub path_and_query: String,
    /// Lower-case names, in hyper's `HeaderMap` order. Repeated headers appear once per value.
    pub headers: Vec<(String, String)>,
    /// The request body as received (still encoded if the client encoded it).
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

/// One whole WebSocket data message received from a client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsMessage {
    /// The payload after inflation, as text (lossy for binary messages).
    pub text: String,
    /// A binary (opcode 2) rather than a text message.
    pub binary: bool,
    /// The client sent it compressed (`permessage-deflate`, RSV1 set).
    pub compressed: bool,
}

/// One step of a WebSocket session file: a client frame and the server frames that answer it,
/// each exactly as the file spells it (and so as the server sends it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WsTurn {
    /// The client's text message.
    pub client: String,
    /// The server's text messages that answered it, in order.
    pub server: Vec<String>,
}

struct State {
    seen: Mutex<Vec<Seen>>,
    ws_messages: Mutex<Vec<WsMessage>>,
    /// Upgraded WebSocket connections: they outlive the HTTP connection task, so `Drop` aborts
    /// them here.
    ws_tasks: Mutex<JoinSet<()>>,
    release: Notify,
    next_request_id: AtomicU64,
    /// TLS connections accepted: shows whether a client reuses its connections.
    connections: AtomicU64,
    /// Model requests without `x-fake-scenario` get the [`agent`] answers.
    agent: bool,
    /// Every [`agent`] answer sent, in order.
    answers: Mutex<Vec<agent::Answer>>,
    /// Anthropic messages requests without `x-fake-scenario` get these, in order.
    script: Option<script::Script>,
}

/// A running fake upstream. Dropping it stops the server and closes its connections.
pub struct FakeUpstream {
    /// Where it listens (`127.0.0.1`, an ephemeral port).
    pub addr: SocketAddr,
    /// Its CA certificate (PEM): what a client passes as `--upstream-ca`.
    pub ca_pem: String,
    ca_file: tempfile::NamedTempFile,
    state: Arc<State>,
    server: JoinHandle<()>,
}

impl Drop for FakeUpstream {
    fn drop(&mut self) {
        // Aborting the accept loop drops its JoinSet, which aborts every connection task.
        self.server.abort();
        if let Ok(mut tasks) = self.state.ws_tasks.lock() {
            tasks.abort_all();
        }
    }
}

impl FakeUpstream {
    /// Starts a server on `127.0.0.1:0` with a fresh CA. The leaf certificate covers every
    /// host of [`fixtures::hosts`], `localhost` and `127.0.0.1`. ALPN offers `http/1.1` only.
    pub async fn start() -> FakeUpstream {
        Self::start_with(false, None).await
    }

    /// Starts a server whose model routes play a two-turn agent task (see [`agent`]): the
    /// first request gets a shell tool call, the one carrying the tool result a final answer.
    pub async fn start_agent() -> FakeUpstream {
        Self::start_with(true, None).await
    }

    /// Starts a server that answers each Anthropic `POST /v1/messages` naming no
    /// `x-fake-scenario` nor `x-fake-case` with the next of `replies`, in order (see
    /// [`script`]); past the last one, a 500. Panics at once on a reply HTTP cannot carry.
    pub async fn start_scripted(replies: Vec<Reply>) -> FakeUpstream {
        Self::start_with(false, Some(script::Script::new(replies))).await
    }

    async fn start_with(agent: bool, script: Option<script::Script>) -> FakeUpstream {
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
            ws_messages: Mutex::new(Vec::new()),
            ws_tasks: Mutex::new(JoinSet::new()),
            release: Notify::new(),
            next_request_id: AtomicU64::new(1),
            connections: AtomicU64::new(0),
            agent,
            answers: Mutex::new(Vec::new()),
            script,
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

    /// The value of llmtap's `--resolve` that sends every host of [`fixtures::hosts`] here.
    pub fn resolve(&self) -> String {
        fixtures::hosts()
            .iter()
            .map(|host| format!("{host}:443:{}", self.addr))
            .collect::<Vec<_>>()
            .join(",")
    }

    /// TLS connections accepted so far.
    pub fn connections(&self) -> u64 {
        self.state.connections.load(Ordering::SeqCst)
    }

    /// Every request received so far, in arrival order. A WebSocket upgrade is one request.
    pub fn seen(&self) -> Vec<Seen> {
        self.state.seen.lock().expect("seen lock poisoned").clone()
    }

    /// Every WebSocket data message received so far, over all connections, in arrival order.
    pub fn ws_messages(&self) -> Vec<WsMessage> {
        self.state
            .ws_messages
            .lock()
            .expect("ws_messages lock poisoned")
            .clone()
    }

    /// The HTTP requests that reached a model route (the table above: messages,
    /// `count_tokens`, chat completions, responses, Gemini, Code Assist), in arrival order.
    /// WebSocket upgrades and requests that got a 404 are not among them.
    pub fn model_requests(&self) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| {
                let (path, query) = s
                    .path_and_query
                    .split_once('?')
                    .map_or((s.path_and_query.as_str(), None), |(p, q)| (p, Some(q)));
                let host = s.header("host").map(host_name).unwrap_or_default();
                fixtures::route(&host, &s.method, path, query).is_some()
            })
            .collect()
    }

    /// Every answer of the agent behaviour ([`FakeUpstream::start_agent`]), in the order sent.
    pub fn answers(&self) -> Vec<agent::Answer> {
        self.state
            .answers
            .lock()
            .expect("answers lock poisoned")
            .clone()
    }

    /// The scripted replies not served yet ([`FakeUpstream::start_scripted`]); 0 for a server
    /// started without a script.
    pub fn replies_left(&self) -> usize {
        self.state.script.as_ref().map_or(0, script::Script::left)
    }

    /// The `response.create` messages received on WebSockets, parsed, in arrival order.
    pub fn ws_creates(&self) -> Vec<serde_json::Value> {
        self.ws_messages()
            .iter()
            .filter(|m| !m.binary)
            .filter_map(|m| serde_json::from_str::<serde_json::Value>(&m.text).ok())
            .filter(|v| {
                v.get("type").and_then(serde_json::Value::as_str) == Some("response.create")
            })
            .collect()
    }

    /// Lets one held stream (`x-fake-hold: 1`) continue. If no stream is waiting yet, the next
    /// one to reach its hold passes straight through.
    pub fn release(&self) {
        self.state.release.notify_one();
    }

    /// The bytes of `tests/fixtures/anthropic/<case>.<ext>`, e.g. `("stream_text", "sse")`.
    pub fn fixture(case: &str, ext: &str) -> Vec<u8> {
        Self::fixture_in("anthropic", case, ext)
    }

    /// The bytes of `tests/fixtures/<dialect>/<case>.<ext>`, e.g.
    /// `("gemini", "stream_array", "jsonarray")`.
    pub fn fixture_in(dialect: &str, case: &str, ext: &str) -> Vec<u8> {
        let path = fixtures::path(dialect, case, ext);
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

    /// Splits an AWS event stream (`.eventstream`) into its messages, by the total length
    /// each prelude declares; a last piece holds any bytes that do not make a message. The
    /// pieces concatenate back to `raw`.
    pub fn eventstream_messages(raw: &[u8]) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        let mut rest = raw;
        while let Some(len) = rest.get(..4) {
            let total = u32::from_be_bytes([len[0], len[1], len[2], len[3]]) as usize;
            if total < 16 || total > rest.len() {
                break;
            }
            let (message, after) = rest.split_at(total);
            pieces.push(message.to_vec());
            rest = after;
        }
        if !rest.is_empty() {
            pieces.push(rest.to_vec());
        }
        pieces
    }

    /// Splits a JSON array body (Gemini without `alt=sse`) into the chunks the server sends:
    /// each piece ends just after one top-level object or array element (so the first starts
    /// with `[`, the next ones with the separator), and a last piece holds what follows the
    /// last element (`\r\n]`). The pieces concatenate back to `raw`.
    pub fn json_array_elements(raw: &[u8]) -> Vec<Vec<u8>> {
        let mut pieces = Vec::new();
        let (mut start, mut depth, mut in_string, mut escaped) = (0, 0usize, false, false);
        for (i, &b) in raw.iter().enumerate() {
            if in_string {
                match b {
                    _ if escaped => escaped = false,
                    b'\\' => escaped = true,
                    b'"' => in_string = false,
                    _ => {}
                }
                continue;
            }
            match b {
                b'"' => in_string = true,
                b'[' | b'{' => depth += 1,
                b']' | b'}' => {
                    depth = depth.saturating_sub(1);
                    if depth == 1 {
                        pieces.push(raw[start..=i].to_vec());
                        start = i + 1;
                    }
                }
                _ => {}
            }
        }
        if start < raw.len() {
            pieces.push(raw[start..].to_vec());
        }
        pieces
    }

    /// The turns of `tests/fixtures/openai_responses/<case>.frames.jsonl`. Each line is
    /// `{"dir":"client"|"server","frame":{…}}`; a client line starts a turn and the server
    /// lines after it answer it. Frames are the exact text of the `frame` value.
    pub fn ws_turns(case: &str) -> Vec<WsTurn> {
        let raw = String::from_utf8(Self::fixture_in("openai_responses", case, "frames.jsonl"))
            .expect("session file is UTF-8");
        parse_ws_session(&raw).unwrap_or_else(|e| panic!("{case}.frames.jsonl: {e}"))
    }

    /// The folder of real-traffic case `case`: `tests/cases/real-traffic/<case>/`.
    pub fn case_dir(case: &str) -> PathBuf {
        repository().join("tests/cases/real-traffic").join(case)
    }

    /// The body served for real-traffic case `case` (`x-fake-case`): `response.sse` with every
    /// `replay.json` `expand` placeholder replaced by its length of base64-alphabet text. That
    /// text is `iVBORw0KGgo` (the base64 of a PNG signature) followed by the 64 characters of
    /// the base64 alphabet over and over, cut to the length asked for.
    pub fn case_body(case: &str) -> Vec<u8> {
        load_case(case)
            .unwrap_or_else(|e| panic!("{e}"))
            .pieces
            .concat()
    }

    /// The pieces (HTTP chunks) in which real-traffic case `case` is served: one per SSE event,
    /// or cut at `replay.json`'s `split` offsets. They concatenate to [`Self::case_body`].
    pub fn case_pieces(case: &str) -> Vec<Vec<u8>> {
        load_case(case).unwrap_or_else(|e| panic!("{e}")).pieces
    }

    /// The turns of real-traffic case `case`'s `response.frames.jsonl` (see [`Self::ws_turns`]).
    pub fn case_turns(case: &str) -> Vec<WsTurn> {
        load_case_session(case).unwrap_or_else(|e| panic!("{e}"))
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

    /// A streamed Messages answer of `deltas` text deltas (one token each) after the usual
    /// opening events, then its usage and `message_stop`: the `generated` scenario, whose
    /// length the request sets with `x-fake-events: N` (load benchmarks: a 2,000-event
    /// stream).
    pub fn generated_sse(deltas: usize) -> Vec<Vec<u8>> {
        let mut events = vec![
            b"event: message_start\ndata: {\"type\":\"message_start\",\"message\":{\"id\":\"msg_01GeNeRaTeDsTrEaMbEnCh01\",\"type\":\"message\",\"role\":\"assistant\",\"model\":\"claude-sonnet-4-6\",\"content\":[],\"stop_reason\":null,\"stop_sequence\":null,\"usage\":{\"input_tokens\":4812,\"cache_read_input_tokens\":4096,\"cache_creation_input_tokens\":0,\"output_tokens\":1}}}\n\n".to_vec(),
            b"event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":{\"type\":\"text\",\"text\":\"\"}}\n\n".to_vec(),
        ];
        for i in 0..deltas {
            events.push(
                format!("event: content_block_delta\ndata: {{\"type\":\"content_block_delta\",\"index\":0,\"delta\":{{\"type\":\"text_delta\",\"text\":\"tok{i} \"}}}}\n\n")
                    .into_bytes(),
            );
            if i % 50 == 49 {
                events.push(b"event: ping\ndata: {\"type\": \"ping\"}\n\n".to_vec());
            }
        }
        events.push(
            b"event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"
                .to_vec(),
        );
        events.push(
            format!("event: message_delta\ndata: {{\"type\":\"message_delta\",\"delta\":{{\"stop_reason\":\"end_turn\",\"stop_sequence\":null}},\"usage\":{{\"output_tokens\":{deltas}}}}}\n\n")
                .into_bytes(),
        );
        events.push(b"event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n".to_vec());
        events
    }
}

/// The repository this crate lives in (`crates/fake-upstream/`): its `tests/` holds the
/// fixtures and cases served.
fn repository() -> &'static Path {
    Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../.."))
}

/// A real-traffic case's HTTP answer, ready to serve.
struct CaseResponse {
    status: StatusCode,
    /// In file order; framing fields left out.
    headers: Vec<(HeaderName, HeaderValue)>,
    /// One HTTP chunk each.
    pieces: Vec<Vec<u8>>,
    /// Pause between two pieces.
    gap: Duration,
}

/// The base64 of a PNG signature, the start of every expanded placeholder.
const EXPAND_PREFIX: &[u8] = b"iVBORw0KGgo";
const BASE64_ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/// `len` bytes of base64-alphabet text; see [`FakeUpstream::case_body`].
fn expansion(len: usize) -> Vec<u8> {
    EXPAND_PREFIX
        .iter()
        .chain(BASE64_ALPHABET.iter().cycle())
        .take(len)
        .copied()
        .collect()
}

/// Replaces every occurrence of `placeholder` in `body` with `with`.
fn replace_all(body: &[u8], placeholder: &[u8], with: &[u8]) -> (Vec<u8>, usize) {
    let mut out = Vec::with_capacity(body.len() + with.len());
    let (mut i, mut count) = (0, 0);
    while i < body.len() {
        if body[i..].starts_with(placeholder) {
            out.extend_from_slice(with);
            i += placeholder.len();
            count += 1;
        } else {
            out.push(body[i]);
            i += 1;
        }
    }
    (out, count)
}

/// The case's `replay.json` (an empty object if there is none), checked for unknown keys.
fn case_replay(case: &str) -> Result<serde_json::Map<String, serde_json::Value>, String> {
    let path = FakeUpstream::case_dir(case).join("replay.json");
    let replay = match std::fs::read(&path) {
        Ok(raw) => serde_json::from_slice::<serde_json::Value>(&raw)
            .map_err(|e| format!("{}: not JSON: {e}", path.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => serde_json::json!({}),
        Err(e) => return Err(format!("{}: {e}", path.display())),
    };
    let serde_json::Value::Object(replay) = replay else {
        return Err(format!("{}: not an object", path.display()));
    };
    if let Some(key) = replay
        .keys()
        .find(|k| !matches!(k.as_str(), "expand" | "split" | "pause_ms"))
    {
        return Err(format!("{}: unknown key {key:?}", path.display()));
    }
    Ok(replay)
}

/// Applies `replay.json`'s `expand` to a case file's bytes (the body, or the WebSocket
/// script).
fn expand_placeholders(
    case: &str,
    replay: &serde_json::Map<String, serde_json::Value>,
    mut body: Vec<u8>,
) -> Result<Vec<u8>, String> {
    if let Some(expand) = replay.get("expand") {
        let expand = expand
            .as_object()
            .ok_or_else(|| format!("fake upstream: case {case:?}: expand is not an object"))?;
        for (placeholder, len) in expand {
            let len = len
                .as_u64()
                .and_then(|n| usize::try_from(n).ok())
                .ok_or_else(|| format!("fake upstream: case {case:?}: expand {placeholder:?}"))?;
            let (expanded, count) = replace_all(&body, placeholder.as_bytes(), &expansion(len));
            if count == 0 {
                return Err(format!(
                    "fake upstream: case {case:?}: placeholder {placeholder:?} not in the body"
                ));
            }
            body = expanded;
        }
    }
    Ok(body)
}

/// Loads real-traffic case `case` as served over HTTP; see the module doc.
fn load_case(case: &str) -> Result<CaseResponse, String> {
    // Case names come from a request header: never let one climb out of the cases folder.
    if !fixtures::is_case_name(case) {
        return Err(format!("fake upstream: {case:?} is not a case name"));
    }
    let dir = FakeUpstream::case_dir(case);
    let read = |name: &str| {
        std::fs::read(dir.join(name))
            .map_err(|e| format!("fake upstream: case {case:?}: {name}: {e}"))
    };

    let head = String::from_utf8(read("response.headers")?)
        .map_err(|_| format!("fake upstream: case {case:?}: response.headers is not UTF-8"))?;
    let mut lines = head.lines().map(|l| l.trim_end_matches('\r'));
    let status = lines
        .next()
        .and_then(|l| l.trim().parse::<u16>().ok())
        .and_then(|code| StatusCode::from_u16(code).ok())
        .ok_or_else(|| {
            format!("fake upstream: case {case:?}: response.headers does not start with a status")
        })?;
    let mut headers = Vec::new();
    for line in lines.filter(|l| !l.trim().is_empty()) {
        let (name, value) = line
            .split_once(':')
            .ok_or_else(|| format!("fake upstream: case {case:?}: header line {line:?}"))?;
        let name = HeaderName::from_bytes(name.trim().as_bytes())
            .map_err(|e| format!("fake upstream: case {case:?}: header name {name:?}: {e}"))?;
        if matches!(
            name.as_str(),
            "content-length" | "transfer-encoding" | "connection" | "keep-alive"
        ) {
            continue;
        }
        let value = HeaderValue::from_str(value.trim())
            .map_err(|e| format!("fake upstream: case {case:?}: header {name}: {e}"))?;
        headers.push((name, value));
    }

    let replay = case_replay(case).map_err(|e| format!("fake upstream: case {case:?}: {e}"))?;
    let body = expand_placeholders(case, &replay, read("response.sse")?)?;
    let pieces = match replay.get("split") {
        None => FakeUpstream::sse_events(&body),
        Some(split) => {
            let offsets = split
                .as_array()
                .and_then(|offsets| {
                    offsets
                        .iter()
                        .map(|o| o.as_u64().and_then(|o| usize::try_from(o).ok()))
                        .collect::<Option<Vec<usize>>>()
                })
                .filter(|o| {
                    o.windows(2).all(|w| w[0] < w[1]) && o.iter().all(|&o| o > 0 && o < body.len())
                })
                .ok_or_else(|| {
                    format!(
                        "fake upstream: case {case:?}: split must be increasing offsets inside the body"
                    )
                })?;
            let mut pieces = Vec::with_capacity(offsets.len() + 1);
            let mut start = 0;
            for end in offsets.into_iter().chain([body.len()]) {
                pieces.push(body[start..end].to_vec());
                start = end;
            }
            pieces
        }
    };
    let gap = match replay.get("pause_ms") {
        None => EVENT_GAP,
        Some(ms) => Duration::from_millis(
            ms.as_u64()
                .ok_or_else(|| format!("fake upstream: case {case:?}: pause_ms {ms}"))?,
        ),
    };
    Ok(CaseResponse {
        status,
        headers,
        pieces,
        gap,
    })
}

/// The turns of real-traffic case `case`'s `response.frames.jsonl`.
fn load_case_session(case: &str) -> Result<Vec<WsTurn>, String> {
    if !fixtures::is_case_name(case) {
        return Err(format!("fake upstream: {case:?} is not a case name"));
    }
    let path = FakeUpstream::case_dir(case).join("response.frames.jsonl");
    let raw = std::fs::read(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let replay = case_replay(case).map_err(|e| format!("fake upstream: case {case:?}: {e}"))?;
    let raw = expand_placeholders(case, &replay, raw)?;
    parse_ws_session(&String::from_utf8_lossy(&raw))
        .map_err(|e| format!("fake upstream: case {case:?}: {}: {e}", path.display()))
}

/// Reads and parses a session file (fixture or case).
fn read_ws_session(path: &Path) -> Result<Vec<WsTurn>, String> {
    let raw = std::fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    parse_ws_session(&String::from_utf8_lossy(&raw)).map_err(|e| format!("{}: {e}", path.display()))
}

/// Parses a session file; see [`FakeUpstream::ws_turns`].
fn parse_ws_session(raw: &str) -> Result<Vec<WsTurn>, String> {
    let mut turns: Vec<WsTurn> = Vec::new();
    for (n, line) in raw.lines().enumerate().filter(|(_, l)| !l.is_empty()) {
        let n = n + 1;
        let (client, rest) = if let Some(rest) = line.strip_prefix(r#"{"dir":"client","frame":"#) {
            (true, rest)
        } else if let Some(rest) = line.strip_prefix(r#"{"dir":"server","frame":"#) {
            (false, rest)
        } else {
            return Err(format!("line {n}: not {{\"dir\":…,\"frame\":…}}"));
        };
        let frame = rest
            .strip_suffix('}')
            .ok_or_else(|| format!("line {n}: no closing brace"))?;
        serde_json::from_str::<serde_json::Value>(frame)
            .map_err(|e| format!("line {n}: frame is not JSON: {e}"))?;
        if client {
            turns.push(WsTurn {
                client: frame.to_owned(),
                server: Vec::new(),
            });
        } else {
            turns
                .last_mut()
                .ok_or_else(|| format!("line {n}: a server frame before any client frame"))?
                .server
                .push(frame.to_owned());
        }
    }
    Ok(turns)
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
    let mut names = fixtures::hosts();
    names.extend(["localhost".to_owned(), "127.0.0.1".to_owned()]);
    let mut leaf = CertificateParams::new(names).expect("leaf SANs");
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
            // No `Date` of hyper's own: a test can then see that llmtap adds no header.
            let _ = http1::Builder::new()
                .auto_date_header(false)
                .serve_connection(TokioIo::new(tls), service)
                .with_upgrades()
                .await;
        });
    }
}

/// Whose conventions a response follows: error body shape, ids, headers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Provider {
    Anthropic,
    OpenAi,
    Google,
    /// Amazon Bedrock Runtime (`*.amazonaws.com`).
    Aws,
}

impl Provider {
    fn of_host(host: &str) -> Provider {
        match host {
            "api.openai.com" | "chatgpt.com" => Provider::OpenAi,
            h if h.ends_with(".googleapis.com") => Provider::Google,
            h if h.ends_with(".amazonaws.com") => Provider::Aws,
            _ => Provider::Anthropic,
        }
    }
}

/// Where a request goes: a fixture folder and the case served without `x-fake-scenario`.
struct Route {
    provider: Provider,
    folder: &'static str,
    default_case: &'static str,
}

/// The modifier headers of one request./// The modifier headers of one request.
struct Modifiers {
    /// `content-encoding` to apply: `x-fake-gzip: 1`, or `x-fake-encoding: gzip|deflate|br|zstd`.
    encoding: Option<&'static str>,
    hold: bool,
    first_delay: Option<Duration>,
    reset_after: Option<usize>,
    /// Pause between two pieces: [`EVENT_GAP`], or a case's `pause_ms`.
    gap: Duration,
}

enum Payload {
    /// Streamed, one chunk per piece: SSE events or JSON array elements.
    Stream {
        pieces: Vec<Vec<u8>>,
        content_type: &'static str,
    },
    Json(Vec<u8>),
}

/// The route of a plain request, from the fixtures' `route.json` files ([`fixtures::route`]).
fn route(
    host: &str,
    method: &Method,
    path: &str,
    query: Option<&str>,
    body: &serde_json::Value,
) -> Option<Route> {
    let route = fixtures::route(host, method.as_str(), path, query)?;
    Some(Route {
        provider: Provider::of_host(&route.host),
        folder: &route.folder,
        default_case: route.default_case(body),
    })
}

/// A `Host` header's name: lowercase, without its port.
fn host_name(host: &str) -> String {
    host.rsplit_once(':')
        .filter(|(_, port)| port.bytes().all(|b| b.is_ascii_digit()))
        .map_or(host, |(name, _)| name)
        .to_ascii_lowercase()
}

fn is_websocket_upgrade(method: &Method, headers: &HeaderMap) -> bool {
    let has_token = |name: &str, token: &str| {
        headers.get_all(name).iter().any(|v| {
            v.to_str()
                .is_ok_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
        })
    };
    method == Method::GET && has_token("upgrade", "websocket") && has_token("connection", "upgrade")
}

async fn handle(
    state: Arc<State>,
    mut req: Request<Incoming>,
) -> Result<Response<ResBody>, Infallible> {
    let websocket = is_websocket_upgrade(req.method(), req.headers());
    let on_upgrade = websocket.then(|| hyper::upgrade::on(&mut req));
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
    let body_json =
        serde_json::from_slice::<serde_json::Value>(&seen.body).unwrap_or(serde_json::Value::Null);
    state.seen.lock().expect("seen lock poisoned").push(seen);

    let host = header("host")
        .or_else(|| parts.uri.host().map(str::to_owned))
        .unwrap_or_default();
    let host = host_name(&host);
    let n = state.next_request_id.fetch_add(1, Ordering::Relaxed);
    let path = parts.uri.path();

    if let Some(on_upgrade) = on_upgrade
        && let Some(route) = fixtures::websocket_route(&host, path, parts.uri.query())
    {
        return Ok(websocket_handshake(
            &state,
            route,
            &parts.headers,
            on_upgrade,
            n,
        ));
    }

    let modifiers = Modifiers {
        encoding: match (
            header("x-fake-gzip").as_deref(),
            header("x-fake-encoding").as_deref(),
        ) {
            (Some("1"), _) | (_, Some("gzip")) => Some("gzip"),
            (_, Some("deflate")) => Some("deflate"),
            (_, Some("br")) => Some("br"),
            (_, Some("zstd")) => Some("zstd"),
            _ => None,
        },
        hold: header("x-fake-hold").as_deref() == Some("1"),
        first_delay: header("x-fake-first-delay-ms")
            .and_then(|v| v.trim().parse().ok())
            .map(Duration::from_millis),
        reset_after: header("x-fake-reset-after").and_then(|v| v.trim().parse().ok()),
        gap: header("x-fake-gap-ms")
            .and_then(|v| v.trim().parse().ok())
            .map_or(EVENT_GAP, Duration::from_millis),
    };

    // `x-fake-case`: a real-traffic case, whatever the route.
    if let Some(case) = header("x-fake-case") {
        return Ok(serve_case(
            &state,
            &case,
            Provider::of_host(&host),
            modifiers,
            n,
        ));
    }

    let Some(route) = route(&host, &parts.method, path, parts.uri.query(), &body_json) else {
        return Ok(not_found(Provider::of_host(&host), &parts.method, path, n));
    };
    let provider = route.provider;
    if let Some(script) = &state.script
        && header("x-fake-scenario").is_none()
        && provider == Provider::Anthropic
        && parts.method == Method::POST
        && path == "/v1/messages"
    {
        return Ok(serve_scripted(&state, script, modifiers, n));
    }
    let scenario = header("x-fake-scenario").unwrap_or_else(|| route.default_case.to_owned());

    let encoding = modifiers.encoding;
    let agent_payload = (state.agent && header("x-fake-scenario").is_none())
        .then(|| agent::payload(path, parts.uri.query(), &body_json, n))
        .flatten()
        .map(|(payload, answer)| {
            state
                .answers
                .lock()
                .expect("answers lock poisoned")
                .push(answer);
            payload
        });
    let deltas = header("x-fake-events")
        .and_then(|v| v.trim().parse::<usize>().ok())
        .map_or(100, |n| n.min(100_000));
    let Some(payload) = agent_payload.or_else(|| load_scenario(&route, &scenario, deltas)) else {
        return Ok(provider_error(
            provider,
            StatusCode::INTERNAL_SERVER_ERROR,
            &format!("fake upstream: no fixture for scenario {scenario:?}"),
            n,
        ));
    };
    let status = StatusCode::from_u16(fixtures::status(&scenario)).unwrap_or(StatusCode::OK);

    let mut request_id = request_id(provider, n);
    let mut res = match payload {
        Payload::Json(bytes) => {
            if provider == Provider::Anthropic {
                // An error body names its request id; the real API sends the same one as a header.
                if let Some(id) = serde_json::from_slice::<serde_json::Value>(&bytes)
                    .ok()
                    .and_then(|v| v.get("request_id")?.as_str().map(str::to_owned))
                {
                    request_id = Some(id);
                }
            }
            let bytes = match encoding {
                Some(name) => {
                    let mut encoder = Encoder::new(name);
                    let mut out = encoder.push(&bytes);
                    out.extend(encoder.finish());
                    out
                }
                None => bytes,
            };
            let mut res = Response::new(full(bytes));
            set(&mut res, "content-type", json_content_type(provider));
            res
        }
        Payload::Stream {
            pieces,
            content_type,
        } => {
            let (tx, rx) = mpsc::channel(1);
            tokio::spawn(produce_stream(tx, pieces, modifiers, state));
            let mut res = Response::new(BoxBody::new(ChannelBody { rx }));
            set(&mut res, "content-type", content_type);
            set(&mut res, "cache-control", "no-cache");
            res
        }
    };
    *res.status_mut() = status;
    provider_headers(&mut res, provider, request_id.as_deref());
    if let Some(name) = encoding {
        set(&mut res, "content-encoding", name);
    }
    match (provider, status.as_u16()) {
        (Provider::Anthropic, 429) => {
            set(&mut res, "retry-after", "7");
            set(&mut res, "x-should-retry", "true");
        }
        (Provider::Anthropic, 529) => set(&mut res, "x-should-retry", "true"),
        (Provider::OpenAi, 429) => set(&mut res, "retry-after", "7"),
        (Provider::Aws, code) if code >= 400 => {
            set(&mut res, "x-amzn-errortype", aws_error_type(code));
        }
        _ => {}
    }
    Ok(res)
}

/// Serves real-traffic case `case` over HTTP (`x-fake-case`; see the module doc).
fn serve_case(
    state: &Arc<State>,
    case: &str,
    provider: Provider,
    mut modifiers: Modifiers,
    n: u64,
) -> Response<ResBody> {
    let answer = match load_case(case) {
        Ok(answer) => answer,
        Err(message) => {
            return provider_error(provider, StatusCode::INTERNAL_SERVER_ERROR, &message, n);
        }
    };
    modifiers.gap = answer.gap;
    let encoding = modifiers.encoding;
    let (tx, rx) = mpsc::channel(1);
    tokio::spawn(produce_stream(tx, answer.pieces, modifiers, state.clone()));
    let mut res = Response::new(BoxBody::new(ChannelBody { rx }));
    *res.status_mut() = answer.status;
    for (name, value) in answer.headers {
        res.headers_mut().append(name, value);
    }
    if let Some(name) = encoding {
        set(&mut res, "content-encoding", name);
    }
    res
}

/// Serves the next scripted reply ([`script`]), or a 500 once the script is spent.
fn serve_scripted(
    state: &Arc<State>,
    script: &script::Script,
    modifiers: Modifiers,
    n: u64,
) -> Response<ResBody> {
    let reply = match script.next() {
        Ok(reply) => reply,
        Err(served) => {
            return provider_error(
                Provider::Anthropic,
                StatusCode::INTERNAL_SERVER_ERROR,
                &format!("fake upstream: the script is spent ({served} replies served)"),
                n,
            );
        }
    };
    let encoding = modifiers.encoding;
    let mut res = if reply.is_sse() {
        let (tx, rx) = mpsc::channel(1);
        let pieces = FakeUpstream::sse_events(&reply.body);
        tokio::spawn(produce_stream(tx, pieces, modifiers, state.clone()));
        let mut res = Response::new(BoxBody::new(ChannelBody { rx }));
        set(&mut res, "cache-control", "no-cache");
        res
    } else {
        let body = match encoding {
            Some(name) => {
                let mut encoder = Encoder::new(name);
                let mut out = encoder.push(&reply.body);
                out.extend(encoder.finish());
                out
            }
            None => reply.body.clone(),
        };
        Response::new(full(body))
    };
    provider_headers(
        &mut res,
        Provider::Anthropic,
        request_id(Provider::Anthropic, n).as_deref(),
    );
    if let Some(name) = encoding {
        set(&mut res, "content-encoding", name);
    }
    reply.apply(&mut res);
    res
}

fn load_scenario(route: &Route, scenario: &str, deltas: usize) -> Option<Payload> {
    let (folder, provider) = (route.folder, route.provider);
    if provider == Provider::Anthropic && scenario == "generated" {
        return Some(Payload::Stream {
            pieces: FakeUpstream::generated_sse(deltas),
            content_type: sse_content_type(Provider::Anthropic),
        });
    }
    if provider == Provider::Anthropic && scenario == "malformed" {
        return Some(Payload::Stream {
            pieces: FakeUpstream::malformed_sse(),
            content_type: sse_content_type(Provider::Anthropic),
        });
    }
    // Scenario names come from a request header: never let one climb out of the fixture folder.
    if !fixtures::is_case_name(scenario) {
        return None;
    }
    if let Ok(raw) = std::fs::read(fixtures::path(folder, scenario, "sse")) {
        return Some(Payload::Stream {
            pieces: FakeUpstream::sse_events(&raw),
            content_type: sse_content_type(provider),
        });
    }
    if let Ok(raw) = std::fs::read(fixtures::path(folder, scenario, "eventstream")) {
        return Some(Payload::Stream {
            pieces: FakeUpstream::eventstream_messages(&raw),
            content_type: "application/vnd.amazon.eventstream",
        });
    }
    if let Ok(raw) = std::fs::read(fixtures::path(folder, scenario, "jsonarray")) {
        return Some(Payload::Stream {
            pieces: FakeUpstream::json_array_elements(&raw),
            content_type: json_content_type(provider),
        });
    }
    std::fs::read(fixtures::path(folder, scenario, "json"))
        .ok()
        .map(Payload::Json)
}

fn sse_content_type(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "text/event-stream",
        Provider::Anthropic | Provider::OpenAi | Provider::Aws => {
            "text/event-stream; charset=utf-8"
        }
    }
}

fn json_content_type(provider: Provider) -> &'static str {
    match provider {
        Provider::Google => "application/json; charset=UTF-8",
        Provider::Anthropic | Provider::OpenAi | Provider::Aws => "application/json",
    }
}

/// The request id of response `n`, in the provider's shape (Google sends none).
fn request_id(provider: Provider, n: u64) -> Option<String> {
    match provider {
        Provider::Anthropic => Some(format!("req_011CVfakeUpstream{n:06}")),
        Provider::OpenAi => Some(format!("req_fa4e{n:028x}")),
        Provider::Aws => Some(format!("fa4e0000-0000-4000-8000-{n:012x}")),
        Provider::Google => None,
    }
}

fn provider_headers(res: &mut Response<ResBody>, provider: Provider, request_id: Option<&str>) {
    match provider {
        Provider::Anthropic => {
            if let Some(id) = request_id {
                set(res, "request-id", id);
            }
            set(res, "anthropic-organization-id", ORGANIZATION_ID);
        }
        Provider::OpenAi => {
            if let Some(id) = request_id {
                set(res, "x-request-id", id);
            }
            set(res, "openai-version", "2020-10-01");
        }
        Provider::Aws => {
            if let Some(id) = request_id {
                set(res, "x-amzn-requestid", id);
            }
        }
        Provider::Google => {}
    }
}

/// Feeds one streamed response body, one piece per chunk, applying the modifiers.
async fn produce_stream(
    tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    events: Vec<Vec<u8>>,
    modifiers: Modifiers,
    state: Arc<State>,
) {
    let mut encoder = modifiers.encoding.map(Encoder::new);
    for (i, event) in events.iter().enumerate() {
        if i > 0 {
            tokio::time::sleep(modifiers.gap).await;
        }
        if modifiers.reset_after == Some(i) {
            let _ = tx.send(Err(reset_error())).await;
            return;
        }
        let chunk = match encoder.as_mut() {
            // Each push ends with a flush, so this chunk decodes on its own.
            Some(encoder) => encoder.push(event),
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
        let _ = tx.send(Ok(Bytes::from(encoder.finish()))).await;
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

/// A streaming `content-encoding` encoder: each push flushes, so every chunk sent so far
/// decodes on its own, as a server that flushes per event does.
enum Encoder {
    Gzip(GzEncoder<Vec<u8>>),
    Deflate(flate2::write::ZlibEncoder<Vec<u8>>),
    Brotli(Box<brotli::CompressorWriter<Vec<u8>>>),
    Zstd(zstd::stream::write::Encoder<'static, Vec<u8>>),
}

impl Encoder {
    fn new(name: &str) -> Encoder {
        match name {
            "gzip" => Encoder::Gzip(GzEncoder::new(Vec::new(), Compression::default())),
            "deflate" => Encoder::Deflate(flate2::write::ZlibEncoder::new(
                Vec::new(),
                Compression::default(),
            )),
            "br" => Encoder::Brotli(Box::new(brotli::CompressorWriter::new(
                Vec::new(),
                4096,
                5,
                22,
            ))),
            "zstd" => Encoder::Zstd(
                zstd::stream::write::Encoder::new(Vec::new(), 3).expect("zstd encoder"),
            ),
            other => panic!("fake upstream: unknown encoding {other}"),
        }
    }

    fn push(&mut self, bytes: &[u8]) -> Vec<u8> {
        fn step<W: std::io::Write>(w: &mut W, bytes: &[u8]) {
            w.write_all(bytes).expect("encode into memory");
            w.flush().expect("flush into memory");
        }
        match self {
            Encoder::Gzip(e) => {
                step(e, bytes);
                std::mem::take(e.get_mut())
            }
            Encoder::Deflate(e) => {
                step(e, bytes);
                std::mem::take(e.get_mut())
            }
            Encoder::Brotli(e) => {
                step(e.as_mut(), bytes);
                std::mem::take(e.get_mut())
            }
            Encoder::Zstd(e) => {
                step(e, bytes);
                std::mem::take(e.get_mut())
            }
        }
    }

    fn finish(self) -> Vec<u8> {
        match self {
            Encoder::Gzip(e) => e.finish().expect("gzip finish"),
            Encoder::Deflate(e) => e.finish().expect("deflate finish"),
            Encoder::Brotli(e) => e.into_inner(),
            Encoder::Zstd(e) => e.finish().expect("zstd finish"),
        }
    }
}

fn set(res: &mut Response<ResBody>, name: &'static str, value: &str) {
    res.headers_mut().insert(
        HeaderName::from_static(name),
        HeaderValue::from_str(value).expect("header value is visible ASCII"),
    );
}

fn json_response(
    status: StatusCode,
    provider: Provider,
    body: &serde_json::Value,
    n: u64,
) -> Response<ResBody> {
    let mut res = Response::new(full(body.to_string().into_bytes()));
    *res.status_mut() = status;
    set(&mut res, "content-type", json_content_type(provider));
    provider_headers(&mut res, provider, request_id(provider, n).as_deref());
    res
}

/// Anthropic's error body (`{"type":"error","error":{…},"request_id":…}`).
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

/// OpenAI's error body (`{"error":{"message","type","param","code"}}`).
fn openai_error(
    status: StatusCode,
    error_type: &str,
    code: Option<&str>,
    message: &str,
    n: u64,
) -> Response<ResBody> {
    let body = serde_json::json!({
        "error": {"message": message, "type": error_type, "param": null, "code": code},
    });
    json_response(status, Provider::OpenAi, &body, n)
}

/// The error type AWS sends in `x-amzn-ErrorType` for a Bedrock Runtime status.
fn aws_error_type(status: u16) -> &'static str {
    match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        429 => "ThrottlingException",
        503 => "ServiceUnavailableException",
        _ => "InternalServerException",
    }
}

/// AWS's restJson1 error: `{"message"}`, the type in `x-amzn-ErrorType`.
fn aws_error(status: StatusCode, message: &str, n: u64) -> Response<ResBody> {
    let body = serde_json::json!({ "message": message });
    let mut res = json_response(status, Provider::Aws, &body, n);
    set(
        &mut res,
        "x-amzn-errortype",
        aws_error_type(status.as_u16()),
    );
    res
}

/// Google's error body (`{"error":{"code","message","status"}}`).
fn google_error(status: StatusCode, message: &str, n: u64) -> Response<ResBody> {
    let google_status = match status.as_u16() {
        400 => "INVALID_ARGUMENT",
        401 => "UNAUTHENTICATED",
        403 => "PERMISSION_DENIED",
        404 => "NOT_FOUND",
        429 => "RESOURCE_EXHAUSTED",
        503 => "UNAVAILABLE",
        _ => "INTERNAL",
    };
    let body = serde_json::json!({
        "error": {"code": status.as_u16(), "message": message, "status": google_status},
    });
    json_response(status, Provider::Google, &body, n)
}

/// A 500 (or other) in the provider's error shape.
fn provider_error(
    provider: Provider,
    status: StatusCode,
    message: &str,
    n: u64,
) -> Response<ResBody> {
    match provider {
        Provider::Anthropic => {
            let id = request_id(provider, n).unwrap_or_default();
            error_response(status, "api_error", message, &id)
        }
        Provider::OpenAi => openai_error(status, "server_error", None, message, n),
        Provider::Google => google_error(status, message, n),
        Provider::Aws => aws_error(status, message, n),
    }
}

fn not_found(provider: Provider, method: &Method, path: &str, n: u64) -> Response<ResBody> {
    match provider {
        Provider::Anthropic => {
            let id = request_id(provider, n).unwrap_or_default();
            error_response(StatusCode::NOT_FOUND, "not_found_error", "Not found", &id)
        }
        Provider::OpenAi => openai_error(
            StatusCode::NOT_FOUND,
            "invalid_request_error",
            None,
            &format!("Invalid URL ({method} {path})"),
            n,
        ),
        Provider::Google => google_error(
            StatusCode::NOT_FOUND,
            &format!("fake upstream: nothing at {method} {path}"),
            n,
        ),
        Provider::Aws => aws_error(
            StatusCode::NOT_FOUND,
            &format!("fake upstream: nothing at {method} {path}"),
            n,
        ),
    }
}

// ------------------------------------------------------------------------------------------
// WebSocket
// ------------------------------------------------------------------------------------------

/// `permessage-deflate` as agreed in the handshake.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Deflate {
    server_no_context_takeover: bool,
    client_no_context_takeover: bool,
    /// The offer named `server_max_window_bits=15`, which must then be echoed.
    echo_server_max_window_bits: bool,
}

impl Deflate {
    /// The first `permessage-deflate` offer in `Sec-WebSocket-Extensions` that this server can
    /// honour. The server always uses a 32 KiB window, so an offer that limits the server's
    /// window below 15 bits is declined (RFC 7692 §7.1.2.1).
    fn accept(headers: &HeaderMap) -> Option<Deflate> {
        let offers = headers
            .get_all("sec-websocket-extensions")
            .iter()
            .filter_map(|v| v.to_str().ok())
            .flat_map(|v| v.split(','));
        'offers: for offer in offers {
            let mut params = offer.split(';').map(str::trim);
            if params.next() != Some("permessage-deflate") {
                continue;
            }
            let mut deflate = Deflate {
                server_no_context_takeover: false,
                client_no_context_takeover: false,
                echo_server_max_window_bits: false,
            };
            for param in params {
                let (name, value) = param.split_once('=').map_or((param, None), |(n, v)| {
                    (n.trim(), Some(v.trim().trim_matches('"')))
                });
                match (name, value) {
                    ("server_no_context_takeover", None) => {
                        deflate.server_no_context_takeover = true;
                    }
                    ("client_no_context_takeover", None) => {
                        deflate.client_no_context_takeover = true;
                    }
                    ("server_max_window_bits", Some("15")) => {
                        deflate.echo_server_max_window_bits = true;
                    }
                    // Any window the client uses is readable with a 15-bit window.
                    ("client_max_window_bits", _) => {}
                    _ => continue 'offers,
                }
            }
            return Some(deflate);
        }
        None
    }

    fn response_header(self) -> String {
        let mut value = "permessage-deflate".to_owned();
        if self.server_no_context_takeover {
            value.push_str("; server_no_context_takeover");
        }
        if self.client_no_context_takeover {
            value.push_str("; client_no_context_takeover");
        }
        if self.echo_server_max_window_bits {
            value.push_str("; server_max_window_bits=15");
        }
        value
    }
}

/// Answers an upgrade request: a refusal, or `101` and a task that serves the session.
fn websocket_handshake(
    state: &Arc<State>,
    route: &fixtures::Route,
    headers: &HeaderMap,
    on_upgrade: hyper::upgrade::OnUpgrade,
    n: u64,
) -> Response<ResBody> {
    let header = |name: &str| headers.get(name).and_then(|v| v.to_str().ok());
    if let Some(code) = header("x-fake-ws-refuse")
        .and_then(|v| v.trim().parse::<u16>().ok())
        .and_then(|v| StatusCode::from_u16(v).ok())
    {
        let (error_type, code_name, message) = match code.as_u16() {
            401 => (
                "invalid_request_error",
                Some("invalid_api_key"),
                "Incorrect API key provided: sk-fake****************************wxyz. You can find your API key at https://platform.openai.com/account/api-keys.",
            ),
            403 => (
                "invalid_request_error",
                Some("unsupported_country_region_territory"),
                "Country, region, or territory not supported",
            ),
            429 => (
                "requests",
                Some("rate_limit_exceeded"),
                "Rate limit reached for requests",
            ),
            _ => (
                "server_error",
                None,
                "fake upstream: WebSocket upgrade refused",
            ),
        };
        return openai_error(code, error_type, code_name, message, n);
    }
    let key = header("sec-websocket-key").filter(|k| !k.is_empty());
    let (Some(key), Some("13")) = (key, header("sec-websocket-version")) else {
        return openai_error(
            StatusCode::BAD_REQUEST,
            "invalid_request_error",
            None,
            "fake upstream: a WebSocket upgrade needs Sec-WebSocket-Key and Sec-WebSocket-Version: 13",
            n,
        );
    };
    let scenario = header("x-fake-scenario");
    let real_case = header("x-fake-case");
    let case = real_case.or(scenario).unwrap_or(&route.default);
    let turns = if let Some(case) = real_case {
        load_case_session(case).map(Session::Turns)
    } else if state.agent && scenario.is_none() {
        Ok(Session::Agent)
    } else if fixtures::is_case_name(case) {
        read_ws_session(&fixtures::path(&route.folder, case, "frames.jsonl")).map(Session::Turns)
    } else {
        Err(format!("{case:?} is not a case name"))
    };
    let turns = match turns {
        Ok(turns) => turns,
        Err(why) => {
            return openai_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "server_error",
                None,
                &match real_case {
                    Some(_) => format!("fake upstream: no WebSocket session {case:?}: {why}"),
                    None => format!("fake upstream: no WebSocket session {case:?}"),
                },
                n,
            );
        }
    };
    // The server picks the first protocol the client offered, so the client gets its choice.
    let protocol = headers
        .get_all("sec-websocket-protocol")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .map(str::trim)
        .find(|p| !p.is_empty())
        .map(str::to_owned);
    let deflate = if header("x-fake-ws-deflate") == Some("0") {
        None
    } else {
        Deflate::accept(headers)
    };

    let mut res = Response::new(full(Vec::new()));
    *res.status_mut() = StatusCode::SWITCHING_PROTOCOLS;
    set(&mut res, "upgrade", "websocket");
    set(&mut res, "connection", "Upgrade");
    set(
        &mut res,
        "sec-websocket-accept",
        &derive_accept_key(key.as_bytes()),
    );
    if let Some(protocol) = &protocol {
        set(&mut res, "sec-websocket-protocol", protocol);
    }
    if let Some(deflate) = deflate {
        set(
            &mut res,
            "sec-websocket-extensions",
            &deflate.response_header(),
        );
    }
    provider_headers(
        &mut res,
        Provider::OpenAi,
        request_id(Provider::OpenAi, n).as_deref(),
    );

    // `x-fake-ws-silent: 1`: accept the upgrade, read every message, never answer.
    let silent = header("x-fake-ws-silent") == Some("1");
    let session_state = state.clone();
    state
        .ws_tasks
        .lock()
        .expect("ws_tasks lock poisoned")
        .spawn(async move {
            let Ok(upgraded) = on_upgrade.await else {
                return;
            };
            let (reader, writer) = tokio::io::split(TokioIo::new(upgraded));
            let mut conn = WsConn::new(reader, writer, deflate);
            if silent {
                while let Ok(Some(_)) = conn.read_message().await {}
                return;
            }
            // The client going away mid-session is not the server's problem; a client that
            // breaks the protocol gets a close frame with 1002 first.
            if let Err(e) = serve_session(&mut conn, &turns, &session_state).await
                && e.kind() == std::io::ErrorKind::InvalidData
            {
                let _ = conn
                    .write_frame(OP_CLOSE, false, &1002u16.to_be_bytes())
                    .await;
            }
            let _ = conn.writer.shutdown().await;
        });
    res
}

/// What a WebSocket connection answers `response.create`s with.
enum Session {
    /// The turns of a session file, in order.
    Turns(Vec<WsTurn>),
    /// The [`agent`] answers, from each `response.create`'s own content.
    Agent,
}

/// Serves one WebSocket connection until the client closes it.
async fn serve_session<R, W>(
    conn: &mut WsConn<R, W>,
    session: &Session,
    state: &State,
) -> std::io::Result<()>
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut creates = 0usize;
    while let Some(message) = conn.read_message().await? {
        let text = String::from_utf8_lossy(&message.payload).into_owned();
        let create = (!message.binary)
            .then(|| serde_json::from_str::<serde_json::Value>(&text).ok())
            .flatten()
            .filter(|v| {
                v.get("type").and_then(serde_json::Value::as_str) == Some("response.create")
            });
        let is_create = create.is_some();
        state
            .ws_messages
            .lock()
            .expect("ws_messages lock poisoned")
            .push(WsMessage {
                text,
                binary: message.binary,
                compressed: message.compressed,
            });
        if !is_create {
            continue;
        }
        let turns = match (session, create) {
            (Session::Turns(turns), _) => turns,
            (Session::Agent, Some(create)) => {
                let n = state.next_request_id.fetch_add(1, Ordering::Relaxed);
                let (frames, answer) = agent::ws_frames(&create, n);
                state
                    .answers
                    .lock()
                    .expect("answers lock poisoned")
                    .push(answer);
                for (i, frame) in frames.iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(EVENT_GAP).await;
                    }
                    conn.send_text(frame.as_bytes()).await?;
                }
                creates += 1;
                continue;
            }
            (Session::Agent, None) => continue,
        };
        match turns.get(creates) {
            Some(turn) => {
                for (i, frame) in turn.server.iter().enumerate() {
                    if i > 0 {
                        tokio::time::sleep(EVENT_GAP).await;
                    }
                    conn.send_text(frame.as_bytes()).await?;
                }
            }
            None => {
                let error = serde_json::json!({
                    "type": "error",
                    "status": 400,
                    "error": {
                        "type": "invalid_request_error",
                        "code": "fake_upstream_no_more_turns",
                        "message": format!(
                            "fake upstream: the session has {} turns; this is response.create #{}",
                            turns.len(),
                            creates + 1
                        ),
                    },
                });
                conn.send_text(error.to_string().as_bytes()).await?;
            }
        }
        creates += 1;
    }
    Ok(())
}

/// A whole data message from the client.
struct WsIncoming {
    payload: Vec<u8>,
    binary: bool,
    compressed: bool,
}

/// The server side of an RFC 6455 connection, with optional RFC 7692 compression.
struct WsConn<R, W> {
    reader: R,
    writer: W,
    inflater: Option<Decompress>,
    deflater: Option<Compress>,
    deflate: Option<Deflate>,
}

const OP_CONTINUATION: u8 = 0x0;
const OP_TEXT: u8 = 0x1;
const OP_BINARY: u8 = 0x2;
const OP_CLOSE: u8 = 0x8;
const OP_PING: u8 = 0x9;
const OP_PONG: u8 = 0xA;

fn protocol_error(what: &str) -> std::io::Error {
    std::io::Error::new(
        std::io::ErrorKind::InvalidData,
        format!("fake upstream: WebSocket protocol error: {what}"),
    )
}

impl<R: AsyncRead + Unpin, W: AsyncWrite + Unpin> WsConn<R, W> {
    fn new(reader: R, writer: W, deflate: Option<Deflate>) -> Self {
        WsConn {
            reader,
            writer,
            inflater: deflate.map(|_| Decompress::new(false)),
            deflater: deflate.map(|_| Compress::new(Compression::default(), false)),
            deflate,
        }
    }

    /// One frame: `(fin, rsv1, opcode, unmasked payload)`, or `None` at a clean EOF.
    async fn read_frame(&mut self) -> std::io::Result<Option<(bool, bool, u8, Vec<u8>)>> {
        let mut head = [0u8; 2];
        match self.reader.read_exact(&mut head).await {
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => return Ok(None),
            Err(e) => return Err(e),
        }
        let (fin, rsv1, opcode) = (head[0] & 0x80 != 0, head[0] & 0x40 != 0, head[0] & 0x0f);
        if head[0] & 0x30 != 0 {
            return Err(protocol_error("RSV2 or RSV3 set"));
        }
        if head[1] & 0x80 == 0 {
            return Err(protocol_error("an unmasked client frame"));
        }
        let len = match head[1] & 0x7f {
            126 => u64::from(self.reader.read_u16().await?),
            127 => self.reader.read_u64().await?,
            short => u64::from(short),
        };
        let len = usize::try_from(len)
            .ok()
            .filter(|&l| l <= MAX_WS_MESSAGE)
            .ok_or_else(|| protocol_error("a frame over the size cap"))?;
        let mut mask = [0u8; 4];
        self.reader.read_exact(&mut mask).await?;
        let mut payload = vec![0u8; len];
        self.reader.read_exact(&mut payload).await?;
        for (i, b) in payload.iter_mut().enumerate() {
            *b ^= mask[i % 4];
        }
        Ok(Some((fin, rsv1, opcode, payload)))
    }

    /// The next whole data message, answering pings and closes on the way; `None` once the
    /// client closed or went away.
    async fn read_message(&mut self) -> std::io::Result<Option<WsIncoming>> {
        let mut message: Option<WsIncoming> = None;
        loop {
            let Some((fin, rsv1, opcode, payload)) = self.read_frame().await? else {
                return Ok(None);
            };
            match opcode {
                OP_PING => self.write_frame(OP_PONG, false, &payload).await?,
                OP_PONG => {}
                OP_CLOSE => {
                    // Echo the status code (not the reason), then end the connection.
                    let code = payload.get(..2).unwrap_or_default().to_vec();
                    let _ = self.write_frame(OP_CLOSE, false, &code).await;
                    let _ = self.writer.shutdown().await;
                    return Ok(None);
                }
                OP_TEXT | OP_BINARY if message.is_none() => {
                    if rsv1 && self.deflate.is_none() {
                        return Err(protocol_error("RSV1 set without permessage-deflate"));
                    }
                    message = Some(WsIncoming {
                        payload,
                        binary: opcode == OP_BINARY,
                        compressed: rsv1,
                    });
                }
                OP_CONTINUATION => {
                    let Some(m) = message.as_mut() else {
                        return Err(protocol_error("a continuation outside a message"));
                    };
                    if m.payload.len() + payload.len() > MAX_WS_MESSAGE {
                        return Err(protocol_error("a message over the size cap"));
                    }
                    m.payload.extend_from_slice(&payload);
                }
                _ => return Err(protocol_error("an unexpected opcode")),
            }
            if fin && opcode & 0x8 == 0 {
                let Some(mut m) = message.take() else {
                    return Err(protocol_error("a final frame outside a message"));
                };
                if m.compressed {
                    m.payload = self.inflate(&m.payload)?;
                }
                return Ok(Some(m));
            }
        }
    }

    fn inflate(&mut self, compressed: &[u8]) -> std::io::Result<Vec<u8>> {
        let no_takeover = self.deflate.is_some_and(|d| d.client_no_context_takeover);
        let inflater = self
            .inflater
            .as_mut()
            .ok_or_else(|| protocol_error("a compressed message without permessage-deflate"))?;
        if no_takeover {
            // A fresh inflater, not `reset`: a reference into the previous message must fail,
            // not read a stale window.
            *inflater = Decompress::new(false);
        }
        // RFC 7692 §7.2.2: put back the tail of the sync flush that the sender removed.
        let mut input = compressed.to_vec();
        input.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        let mut out = Vec::with_capacity(input.len() * 4 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                if out.len() >= MAX_WS_MESSAGE {
                    return Err(protocol_error("a message that inflates over the size cap"));
                }
                out.reserve(out.capacity());
            }
            let (before_in, before_out) = (inflater.total_in(), out.len());
            inflater
                .decompress_vec(&input[pos..], &mut out, FlushDecompress::Sync)
                .map_err(|e| protocol_error(&format!("bad deflate data: {e}")))?;
            let consumed = usize::try_from(inflater.total_in() - before_in).unwrap_or(usize::MAX);
            pos += consumed;
            if pos >= input.len() && out.len() < out.capacity() {
                return Ok(out);
            }
            if consumed == 0 && out.len() == before_out && out.len() < out.capacity() {
                return Err(protocol_error("deflate data that makes no progress"));
            }
        }
    }

    fn deflate(&mut self, message: &[u8]) -> Option<Vec<u8>> {
        let no_takeover = self.deflate.is_some_and(|d| d.server_no_context_takeover);
        let deflater = self.deflater.as_mut()?;
        if no_takeover {
            deflater.reset();
        }
        let mut out = Vec::with_capacity(message.len() + message.len() / 8 + 64);
        let mut pos = 0;
        loop {
            if out.len() == out.capacity() {
                out.reserve(out.capacity());
            }
            let before = deflater.total_in();
            deflater
                .compress_vec(&message[pos..], &mut out, FlushCompress::Sync)
                .expect("deflate into memory");
            pos += usize::try_from(deflater.total_in() - before).expect("fits in memory");
            if pos == message.len() && out.len() < out.capacity() {
                break;
            }
        }
        // RFC 7692 §7.2.1: a message ends with a sync flush, whose last 4 bytes are removed.
        assert!(out.ends_with(&[0x00, 0x00, 0xff, 0xff]), "sync flush tail");
        out.truncate(out.len() - 4);
        Some(out)
    }

    async fn send_text(&mut self, text: &[u8]) -> std::io::Result<()> {
        match self.deflate(text) {
            Some(compressed) => self.write_frame(OP_TEXT, true, &compressed).await,
            None => self.write_frame(OP_TEXT, false, text).await,
        }
    }

    /// One unmasked, final frame (servers never mask).
    async fn write_frame(&mut self, opcode: u8, rsv1: bool, payload: &[u8]) -> std::io::Result<()> {
        let mut frame = Vec::with_capacity(payload.len() + 10);
        frame.push(0x80 | if rsv1 { 0x40 } else { 0 } | opcode);
        match payload.len() {
            len @ 0..=125 => frame.push(u8::try_from(len).expect("under 126")),
            len @ 126..=0xffff => {
                frame.push(126);
                frame.extend_from_slice(&u16::try_from(len).expect("under 64 KiB").to_be_bytes());
            }
            len => {
                frame.push(127);
                frame.extend_from_slice(&(len as u64).to_be_bytes());
            }
        }
        frame.extend_from_slice(payload);
        self.writer.write_all(&frame).await?;
        self.writer.flush().await
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_generated_stream_has_its_deltas_pings_and_usage_as_valid_events() {
        let events = super::FakeUpstream::generated_sse(120);
        let data: Vec<serde_json::Value> = events
            .iter()
            .map(|e| {
                let text = std::str::from_utf8(e).expect("utf-8");
                let line = text
                    .lines()
                    .find_map(|l| l.strip_prefix("data: "))
                    .expect("data");
                serde_json::from_str(line).expect("each event's data is JSON")
            })
            .collect();
        let count = |t: &str| data.iter().filter(|d| d["type"] == t).count();
        assert_eq!(count("content_block_delta"), 120);
        assert_eq!(count("ping"), 2);
        assert_eq!(data.last().expect("events")["type"], "message_stop");
        let delta = data
            .iter()
            .find(|d| d["type"] == "message_delta")
            .expect("usage");
        assert_eq!(delta["usage"]["output_tokens"], 120);
    }
}
