//! One LLM call from request head to last byte, and the single exit to telemetry.
//!
//! Owns: per-call state (route, timings, attribution, the streaming parser), the observers
//! that watch the request and response bodies, and [`Exchange`]'s finish, which runs exactly
//! once whatever the ending (end of stream, upstream error, client gone, connect failure) and
//! hands the call to telemetry. Finishing does bounded work on the data path: it moves the
//! raw material into a [`Pending`] and `try_send`s it; the worker turns it into a
//! [`CallRecord`] (request JSON, non-streamed response JSON) off the data path.
//!
//! Does not own: what a metric or a call line looks like (`telemetry`), wire formats
//! (`dialects`), HTTP plumbing (`proxy`).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex},
    time::{Duration, Instant, SystemTime},
};

use bytes::Bytes;
use serde::Serialize;

use crate::{
    budget::{Charge, ChargedBuf, Full, Skipped},
    config::Limits,
    dialects::{
        Framing as RouteFraming, ParseError, Progress, RequestFacts, ResponseFacts, Route,
        StreamParser,
        elide::Elider,
        json_array::Splitter,
        sse::{DEFAULT_KEEP, Event, Framer},
    },
    proxy::{
        decode::{Decoder, Encoding, Sink},
        tap_body::{BodyEnd, BodyObserver},
    },
    telemetry::Telemetry,
};

/// How a call ended. Label values of `llmtap_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    ClientError,
    UpstreamError,
    RateLimited,
    Cancelled,
    ProxyError,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::UpstreamError,
        Outcome::RateLimited,
        Outcome::Cancelled,
        Outcome::ProxyError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::RateLimited => "rate_limited",
            Outcome::Cancelled => "cancelled",
            Outcome::ProxyError => "proxy_error",
        }
    }
}

/// The agent or SDK that made the call, from its `user-agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Client {
    #[serde(rename = "claude-code")]
    ClaudeCode,
    #[serde(rename = "codex")]
    Codex,
    #[serde(rename = "gemini-cli")]
    GeminiCli,
    #[serde(rename = "anthropic-sdk-python")]
    AnthropicPython,
    #[serde(rename = "anthropic-sdk-js")]
    AnthropicJs,
    #[serde(rename = "openai-python")]
    OpenaiPython,
    #[serde(rename = "openai-node")]
    OpenaiNode,
    #[serde(rename = "google-genai-python")]
    GoogleGenaiPython,
    #[serde(rename = "google-genai-js")]
    GoogleGenaiJs,
    #[serde(rename = "other")]
    Other,
}

impl Client {
    pub fn as_str(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::Codex => "codex",
            Client::GeminiCli => "gemini-cli",
            Client::AnthropicPython => "anthropic-sdk-python",
            Client::AnthropicJs => "anthropic-sdk-js",
            Client::OpenaiPython => "openai-python",
            Client::OpenaiNode => "openai-node",
            Client::GoogleGenaiPython => "google-genai-python",
            Client::GoogleGenaiJs => "google-genai-js",
            Client::Other => "other",
        }
    }

    /// Agents first: they embed an SDK whose name may also appear in the string.
    pub fn from_user_agent(ua: &str) -> Client {
        let ua = ua.to_ascii_lowercase();
        let has = |needle: &str| ua.contains(needle);
        if has("claude-cli") || has("claude-code") {
            Client::ClaudeCode
        } else if has("codex") {
            Client::Codex
        } else if has("geminicli") || has("gemini-cli") {
            Client::GeminiCli
        } else if has("anthropic/python") {
            Client::AnthropicPython
        } else if has("anthropic/js") {
            Client::AnthropicJs
        } else if has("openai/python") {
            Client::OpenaiPython
        } else if has("openai/js") {
            Client::OpenaiNode
        } else if has("google-genai-sdk") && has("gl-python") {
            Client::GoogleGenaiPython
        } else if has("google-genai-sdk") {
            Client::GoogleGenaiJs
        } else {
            Client::Other
        }
    }
}

/// How a call is paid for. Label values of `llmtap_cost_usd_total{billing}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// An API key: billed per token.
    #[default]
    Api,
    /// A subscription sign-in (Claude OAuth, ChatGPT, Google account): priced at the
    /// API-equivalent rate so that teams see what the usage is worth.
    Subscription,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::Api => "api",
            Billing::Subscription => "subscription",
        }
    }
}

/// Who a call is attributed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub team: Option<String>,
    pub user: Option<String>,
}

/// What llmtap knows about the request before any body byte.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub host: String,
    pub port: u16,
    pub method: String,
    /// Path without the query string: queries can carry API keys (`?key=`).
    pub path: String,
    pub client: Client,
    pub conversation_id: Option<String>,
    pub attribution: Attribution,
    /// The W3C `traceparent` the client sent, if valid (read, never changed).
    pub traceparent: Option<TraceParent>,
    /// Decided from the kind of credential (never the credential itself).
    pub billing: Billing,
}

/// A parsed W3C `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; later versions by their first four fields, as
    /// the W3C spec asks. Invalid or all-zero ids give `None`.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let version = u8::from_str_radix(version, 16)
            .ok()
            .filter(|_| version.len() == 2)?;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
            if s.len() != N * 2
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return None;
            }
            let mut out = [0u8; N];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
            }
            Some(out)
        }
        let trace_id = hex::<16>(trace).filter(|t| t.iter().any(|&b| b != 0))?;
        let span_id = hex::<8>(span).filter(|s| s.iter().any(|&b| b != 0))?;
        let flags = hex::<1>(flags)?;
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }
}

/// Everything known about a finished call. Built once; the call line, metrics (and later
/// the span) are all views of it.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    pub id: u64,
    /// Wall clock when the request head arrived (`t0`).
    #[serde(serialize_with = "serialize_time")]
    pub start: SystemTime,
    #[serde(serialize_with = "serialize_duration_ms")]
    pub duration: Duration,
    /// First generated-content delta − `t0`; only for streamed responses that produced one.
    #[serde(serialize_with = "serialize_opt_duration_ms")]
    pub ttft: Option<Duration>,
    #[serde(serialize_with = "serialize_opt_duration_ms")]
    pub first_byte: Option<Duration>,
    pub provider: crate::dialects::Provider,
    pub operation: crate::dialects::Operation,
    pub host: String,
    pub port: u16,
    pub method: String,
    pub path: String,
    pub status: Option<u16>,
    /// The response was an event stream.
    pub stream: bool,
    pub client: Client,
    /// The agent session (header, else request body): one trace per session.
    pub conversation_id: Option<String>,
    #[serde(skip)]
    pub traceparent: Option<TraceParent>,
    pub team: Option<String>,
    pub user: Option<String>,
    pub billing: Billing,
    /// USD at the price table's rates; `None` when the model has no price or the call no
    /// usage. Set once, by `telemetry::pricing`, before the call reaches any output.
    pub cost_usd: Option<f64>,
    /// `None` when the request body could not be read or parsed.
    pub request: Option<RequestFacts>,
    pub response: ResponseFacts,
    pub outcome: Outcome,
    pub error_type: Option<String>,
    pub parse_error: Option<ParseError>,
    /// The response carried no usage (never recorded as zero).
    pub usage_missing: bool,
    /// A part of the call relayed but not observed: the observation budget was spent.
    pub observe_skipped: Option<Skipped>,
}

impl CallRecord {
    /// Response model, else request model.
    pub fn model(&self) -> Option<&str> {
        self.response
            .model
            .as_deref()
            .or(self.request.as_ref()?.model.as_deref())
    }
}

fn serialize_time<S: serde::Serializer>(t: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    s.serialize_u128(ms)
}

fn serialize_duration_ms<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

fn serialize_opt_duration_ms<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_duration_ms(d, s),
        None => s.serialize_none(),
    }
}

/// How the exchange ended, as the proxy saw it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum End {
    /// The response body reached its end.
    Complete,
    /// The response body failed mid-way: the upstream broke the connection.
    UpstreamBroken,
    /// The client went away (response body dropped, or the request abandoned before a
    /// response head).
    ClientGone,
    /// No response: connecting or talking to the upstream failed.
    UpstreamFailed(&'static str),
    /// The upstream sent no byte for `--stream-idle-timeout` mid-body: llmtap cut it.
    UpstreamTimeout,
}

/// The request body as observed: shared between the request observer and the exchange.
#[derive(Debug, Default)]
struct RequestCapture {
    /// The copy (`None` before the observer starts, and once dropped).
    body: Option<ChargedBuf>,
    complete: bool,
    /// The client's request body failed mid-way (the client aborted its upload).
    aborted: bool,
    too_large: bool,
    /// The observation budget was spent: the copy was dropped.
    skipped: bool,
}

/// The streamed-response pipeline: decode → frame → parse, on copies of the data. The
/// decoder hands its output to the framer as it produces it, so memory is the framer's
/// partial event, never a decoded chunk (a decompression bomb included).
struct Stream {
    decoder: Decoder<Pipeline>,
}

/// Frame → parse: the decoder's sink.
struct Pipeline {
    framer: Framing,
    parser: Box<dyn StreamParser>,
    /// A content delta was parsed since the last look.
    saw_delta: bool,
    /// The first event the parser could not read. Parsing goes on with the next event: one
    /// bad event must not hide the usage that follows it.
    error: Option<ParseError>,
    /// The last event could not be read.
    last_bad: bool,
    /// What parsing one event into a JSON tree holds, charged while it runs.
    tree: Charge,
}

/// Bytes of `serde_json::Value` tree per byte of JSON text, at worst (`[0,0,…]`: 32-byte
/// values for 2-byte elements). Long strings are already cut, so structure is what counts.
const TREE_PER_BYTE: usize = 16;

impl Sink for Pipeline {
    /// Fails only when the body cannot be framed at all (a JSON array stream that is not
    /// an array); a bad or oversized event is counted and skipped.
    fn take(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        let parser = &mut self.parser;
        let mut saw_delta = false;
        let mut error = None;
        let last_bad = &mut self.last_bad;
        let tree = &mut self.tree;
        let result = self.framer.push(bytes, &mut |event| {
            // The tree an event parses into is charged while it exists; past the budget the
            // event is not parsed (counted like one over its cap).
            if !tree.set(event.data.len().saturating_mul(TREE_PER_BYTE)) {
                error.get_or_insert(ParseError::BodyTooLarge);
                *last_bad = true;
                return Ok(());
            }
            let parsed = parser.on_event(&event);
            tree.set(0);
            match parsed {
                Ok(Progress { delta }) => {
                    saw_delta |= delta;
                    *last_bad = false;
                }
                Err(e) => {
                    error.get_or_insert(e);
                    *last_bad = true;
                }
            }
            Ok(())
        });
        self.saw_delta |= saw_delta;
        if let Some(e) = error {
            self.error.get_or_insert(e);
        }
        result
    }
}

impl Pipeline {
    /// Why the stream's facts may be incomplete: an event that could not be read, or one
    /// over the event cap even with long strings cut (skipped).
    fn error(&self) -> Option<ParseError> {
        self.error
            .or((self.framer.skipped() > 0).then_some(ParseError::LineTooLong))
    }

    /// The last event was bad or skipped: it may have been the terminal one, so a missing
    /// terminal event does not prove the stream was cut.
    fn end_unknown(&self) -> bool {
        self.last_bad || self.framer.last_skipped()
    }
}

/// A non-streamed body, decoded as it arrives and copied with long strings cut (the
/// [`Elider`]), so that a multi-MB image or document inside it does not count against the
/// body cap and the parse on the worker reads a small tree. Parsed when complete.
struct Document {
    elider: Elider,
    buf: ChargedBuf,
    cap: usize,
    /// Why the copy stopped, when it did.
    full: Option<Full>,
}

impl Sink for Document {
    fn take(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        let elider = &mut self.elider;
        self.buf
            .append_with(bytes.len(), self.cap, |buf, room| {
                elider.push(bytes, buf, room)
            })
            .map_err(|full| {
                self.full = Some(full);
                ParseError::BodyTooLarge
            })
    }
}

impl Stream {
    fn new(
        encoding: Encoding,
        cap: usize,
        framer: Framing,
        parser: Box<dyn StreamParser>,
        budget: &Arc<crate::budget::Budget>,
    ) -> Result<Stream, ParseError> {
        let pipeline = Pipeline {
            framer,
            parser,
            saw_delta: false,
            error: None,
            last_bad: false,
            tree: Charge::new(budget),
        };
        Ok(Stream {
            decoder: Decoder::new(encoding, cap, pipeline)?,
        })
    }

    fn pipeline(&self) -> Option<&Pipeline> {
        self.decoder.sink()
    }
}

/// How a streamed body is cut into events.
enum Framing {
    Sse(Framer),
    JsonArray(Splitter),
    /// Each push is one whole event: a WebSocket message, its long strings already cut by
    /// the socket's decoder ([`MessageObserver::text_keep`]).
    ///
    /// [`MessageObserver::text_keep`]: crate::proxy::websocket::MessageObserver::text_keep
    Message,
}

impl Framing {
    /// Bytes the framer holds for its partial event.
    fn held(&self) -> usize {
        match self {
            Framing::Sse(framer) => framer.held(),
            Framing::JsonArray(splitter) => splitter.held(),
            Framing::Message => 0,
        }
    }

    /// Events skipped because they were over the cap even with long strings cut.
    fn skipped(&self) -> u64 {
        match self {
            Framing::Sse(framer) => framer.skipped(),
            Framing::JsonArray(splitter) => splitter.skipped(),
            Framing::Message => 0,
        }
    }

    /// The last event was skipped.
    fn last_skipped(&self) -> bool {
        match self {
            Framing::Sse(framer) => framer.last_skipped(),
            Framing::JsonArray(splitter) => splitter.last_skipped(),
            Framing::Message => false,
        }
    }

    fn push(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        match self {
            Framing::Sse(framer) => framer.push(bytes, on_event),
            Framing::JsonArray(splitter) => splitter.push(bytes, &mut |element| {
                on_event(Event {
                    name: b"",
                    data: element,
                })
            }),
            Framing::Message => on_event(Event {
                name: b"",
                data: bytes,
            }),
        }
    }
}

/// Per-call state. Dropping an unfinished exchange finishes it as [`End::ClientGone`].
pub struct Exchange {
    id: u64,
    t0: Instant,
    wall0: SystemTime,
    route: Route,
    head: RequestHead,
    telemetry: Arc<Telemetry>,
    limits: Limits,
    /// `--capture-content`: the byte cap of each content attribute.
    capture: Option<usize>,
    request: Arc<Mutex<RequestCapture>>,
    status: Option<u16>,
    stream: Option<Stream>,
    /// The non-streamed response body, decoded and copied for parsing.
    document: Option<Decoder<Document>>,
    /// What the stream's partial event holds of the budget.
    charge: Charge,
    /// The first part of the call not observed because the budget was spent.
    skipped: Option<Skipped>,
    parse_error: Option<ParseError>,
    first_byte: Option<Instant>,
    first_delta: Option<Instant>,
    finished: bool,
}

impl std::fmt::Debug for Exchange {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Exchange")
            .field("id", &self.id)
            .field("path", &self.head.path)
            .finish()
    }
}

impl Exchange {
    /// Starts a call at `t0` = now (the request head has arrived).
    pub fn start(telemetry: Arc<Telemetry>, route: Route, head: RequestHead) -> Exchange {
        let id = telemetry.call_started();
        let budget = telemetry.budget().clone();
        Exchange {
            id,
            t0: Instant::now(),
            wall0: SystemTime::now(),
            route,
            head,
            limits: telemetry.limits(),
            capture: telemetry.capture(),
            telemetry,
            request: Arc::default(),
            status: None,
            stream: None,
            document: None,
            charge: Charge::new(&budget),
            skipped: None,
            parse_error: None,
            first_byte: None,
            first_delta: None,
            finished: false,
        }
    }

    /// An observer for the request body: keeps refcounted copies up to the cap.
    /// `content_length`: the request's declared length, if any; the copy is sized for it
    /// once (no growth by doubling, whose reallocations would hold two copies at a time).
    pub fn request_observer(&self, content_length: Option<u64>) -> Box<dyn BodyObserver> {
        let mut body = ChargedBuf::new(self.telemetry.budget());
        let mut capture = lock(&self.request);
        let expected = content_length.and_then(|n| usize::try_from(n).ok());
        match expected.map(|n| body.reserve(n, self.limits.request_body)) {
            Some(Err(Full::Budget)) => capture.skipped = true,
            Some(Err(Full::Cap)) => capture.too_large = true,
            _ => capture.body = Some(body),
        }
        if capture.skipped {
            capture.too_large = true;
        }
        drop(capture);
        Box::new(RequestObserver {
            capture: self.request.clone(),
            cap: self.limits.request_body,
        })
    }

    /// The response head arrived; returns the observer that owns the exchange from here on.
    pub fn on_response(
        mut self,
        status: u16,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
    ) -> Box<dyn BodyObserver> {
        self.status = Some(status);
        let sse = content_type.is_some_and(|ct| ct.trim_start().starts_with("text/event-stream"));
        // An event's cap is the dialect's own (a Responses `response.completed` carries the
        // whole output) or the configured line cap, whichever is larger.
        let max_event = self.limits.sse_line.max(self.route.dialect.max_event);
        let keep = self.keep(max_event);
        let framer = if sse {
            Some(Framing::Sse(Framer::new(max_event).keep(keep)))
        } else if self.route.framing == RouteFraming::JsonArray && (200..300).contains(&status) {
            Some(Framing::JsonArray(Splitter::new(max_event).keep(keep)))
        } else {
            None
        };
        match (Encoding::from_header(content_encoding), framer) {
            (None, _) => self.parse_error = Some(ParseError::Decode),
            (Some(encoding), Some(framer)) => {
                let parser = (self.route.dialect.stream_parser)(self.route.operation, self.capture);
                let cap = decoded_cap(encoding, self.limits);
                match Stream::new(encoding, cap, framer, parser, self.telemetry.budget()) {
                    Ok(stream) => self.stream = Some(stream),
                    Err(e) => self.parse_error = Some(e),
                }
            }
            (Some(encoding), None) => {
                let document = Document {
                    elider: Elider::new(self.keep(self.limits.response_body)),
                    buf: ChargedBuf::new(self.telemetry.budget()),
                    cap: self.limits.response_body,
                    full: None,
                };
                match Decoder::new(encoding, decoded_cap(encoding, self.limits), document) {
                    Ok(document) => self.document = Some(document),
                    Err(e) => self.parse_error = Some(e),
                }
            }
        }
        Box::new(ResponseObserver(self))
    }

    /// How much of each JSON string a response's copy keeps: enough for any fact (ids,
    /// names, types), and with `--capture-content` as much as a content attribute can hold;
    /// never more than a quarter of the event cap, so that a few strings cannot fill it.
    fn keep(&self, max_event: usize) -> usize {
        keep_for(self.capture, max_event)
    }

    /// One call on a WebSocket: the client's `response.create` message is its request, the
    /// socket's `101` its status, and the server's messages its events.
    pub fn start_ws(
        telemetry: Arc<Telemetry>,
        route: Route,
        head: RequestHead,
        request: &[u8],
    ) -> Exchange {
        let mut exchange = Exchange::start(telemetry, route, head);
        exchange.status = Some(101);
        {
            let mut capture = lock(&exchange.request);
            capture.complete = true;
            let mut body = ChargedBuf::new(exchange.telemetry.budget());
            match body.extend(request, exchange.limits.request_body) {
                Ok(()) => capture.body = Some(body),
                Err(Full::Cap) => capture.too_large = true,
                Err(Full::Budget) => {
                    capture.too_large = true;
                    capture.skipped = true;
                }
            }
        }
        let parser = (route.dialect.stream_parser)(route.operation, exchange.capture);
        match Stream::new(
            Encoding::Identity,
            decoded_cap(Encoding::Identity, exchange.limits),
            Framing::Message,
            parser,
            &exchange.telemetry.budget().clone(),
        ) {
            Ok(stream) => exchange.stream = Some(stream),
            Err(e) => exchange.parse_error = Some(e),
        }
        exchange
    }

    /// A server message of a WebSocket call; returns whether it ended the call.
    pub fn on_ws_message(&mut self, payload: &[u8]) -> bool {
        self.on_response_data(payload);
        self.stream
            .as_ref()
            .and_then(Stream::pipeline)
            .is_some_and(|p| p.parser.terminal())
    }

    /// The socket's frames could not be decoded any more: the call keeps what it knows.
    pub fn ws_undecodable(&mut self) {
        self.parse_error.get_or_insert(ParseError::Decode);
    }

    /// A server message of this call was over the size cap and went unparsed: the record
    /// says so. Called when the call ends, since setting a parse error stops parsing and
    /// the later messages (the terminal one with its usage) were still observed.
    pub fn ws_skipped(&mut self) {
        self.parse_error.get_or_insert(ParseError::BodyTooLarge);
    }

    /// Ends a call with the given ending.
    pub fn end(mut self, end: End) {
        self.finish(end);
    }

    /// The upstream could not be reached or failed before a response head. A client that
    /// aborted its own request body caused the failure: that call is `cancelled`.
    pub fn upstream_failed(mut self, error_type: &'static str) {
        let end = if self.request_aborted() {
            End::ClientGone
        } else {
            End::UpstreamFailed(error_type)
        };
        self.finish(end);
    }

    /// Whether the client's request body failed mid-way (the client aborted the call).
    pub fn request_aborted(&self) -> bool {
        lock(&self.request).aborted
    }

    /// Stops observing the rest of the response: the observation budget is spent.
    fn skip(&mut self, part: Skipped) {
        self.skipped.get_or_insert(part);
        if let Some(pipeline) = self.stream.as_mut().and_then(|s| s.decoder.sink_mut()) {
            // Keep what the parser learned; let go of the partial event.
            pipeline.framer = Framing::Message;
        }
        if let Some(document) = self.document.as_mut().and_then(Decoder::sink_mut) {
            document.buf.clear();
        }
        self.document = None;
        self.charge.set(0);
    }

    fn on_response_data(&mut self, data: &[u8]) {
        let now = Instant::now();
        self.first_byte.get_or_insert(now);
        if self.parse_error.is_some() || self.skipped.is_some() {
            return;
        }
        match &mut self.stream {
            Some(stream) => {
                let result = catch_unwind(AssertUnwindSafe(|| stream.decoder.push(data)))
                    .unwrap_or(Err(ParseError::Panic));
                let (saw_delta, held) = stream.decoder.sink_mut().map_or((false, 0), |p| {
                    (std::mem::take(&mut p.saw_delta), p.framer.held())
                });
                if saw_delta {
                    self.first_delta.get_or_insert(now);
                }
                if let Err(e) = result {
                    self.parse_error = Some(e);
                } else if !self.charge.set(held) {
                    self.skip(Skipped::Stream);
                }
            }
            None => {
                let Some(document) = self.document.as_mut() else {
                    return;
                };
                let result = catch_unwind(AssertUnwindSafe(|| document.push(data)))
                    .unwrap_or(Err(ParseError::Panic));
                if let Err(e) = result {
                    let full = document.sink_mut().and_then(|d| d.full);
                    if full == Some(Full::Budget) {
                        self.skip(Skipped::ResponseBody);
                    } else {
                        self.parse_error = Some(e);
                        self.document = None;
                    }
                }
            }
        }
    }

    fn finish(&mut self, end: End) {
        if std::mem::replace(&mut self.finished, true) {
            return;
        }
        let now = Instant::now();
        // A stream's end can be judged (a missing terminal event means it was cut) when it
        // was observed to its end: not stopped by a fatal error, its last event read.
        let mut judged = self.stream.is_some() && self.parse_error.is_none();
        let (stream_facts, terminal) = match self.stream.as_ref().and_then(Stream::pipeline) {
            Some(p) => {
                judged &= !p.end_unknown();
                if let Some(e) = p.error() {
                    self.parse_error.get_or_insert(e);
                }
                let facts =
                    catch_unwind(AssertUnwindSafe(|| (p.parser.facts(), p.parser.terminal())));
                facts.map_or((None, false), |(f, t)| (Some(f), t))
            }
            None => (None, false),
        };
        let body = self.document.take().and_then(|mut d| {
            d.sink_mut().map(|d| {
                let empty = d.buf.sibling();
                std::mem::replace(&mut d.buf, empty)
            })
        });
        let request = std::mem::take(&mut *lock(&self.request));
        let pending = Pending {
            id: self.id,
            wall0: self.wall0,
            duration: now - self.t0,
            ttft: self.first_delta.map(|t| t - self.t0),
            first_byte: self.first_byte.map(|t| t - self.t0),
            route: self.route,
            head: self.head.clone(),
            status: self.status,
            end,
            terminal,
            sse: self.stream.is_some(),
            judged,
            stream_facts,
            body,
            skipped: self.skipped,
            request,
            parse_error: self.parse_error,
            capture: self.capture,
        };
        self.telemetry.call_finished(pending);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finish(End::ClientGone);
    }
}

/// The most decoded bytes a body is observed for. A compressed body's decoding is work on
/// the data path that a small bomb can make huge, so it stops at the cap; an identity body
/// costs what was relayed anyway, and the framer bounds its memory, so it has none (a long
/// stream's final usage must not be lost to a total size).
fn decoded_cap(encoding: Encoding, limits: Limits) -> usize {
    match encoding {
        Encoding::Identity => usize::MAX,
        _ => limits.decoded_body,
    }
}

/// See [`Exchange::keep`]: `capture` is `--capture-max-bytes` when content is captured.
fn keep_for(capture: Option<usize>, max_event: usize) -> usize {
    capture
        .map_or(DEFAULT_KEEP, |cap| cap.max(DEFAULT_KEEP))
        .min(max_event / 4)
        .max(1)
}

fn lock<T>(m: &Mutex<T>) -> std::sync::MutexGuard<'_, T> {
    // Captured bytes have no invariant a panic could break.
    m.lock().unwrap_or_else(|e| e.into_inner())
}

struct RequestObserver {
    capture: Arc<Mutex<RequestCapture>>,
    cap: usize,
}

impl BodyObserver for RequestObserver {
    fn on_data(&mut self, data: &Bytes) {
        let mut c = lock(&self.capture);
        let Some(body) = c.body.as_mut() else {
            return;
        };
        if let Err(full) = body.extend(data, self.cap) {
            c.body = None;
            c.too_large = true;
            c.skipped = full == Full::Budget;
        }
    }

    fn on_end(self: Box<Self>, end: BodyEnd) {
        let mut capture = lock(&self.capture);
        capture.complete = end == BodyEnd::Complete;
        capture.aborted = end == BodyEnd::Error;
    }
}

struct ResponseObserver(Exchange);

impl BodyObserver for ResponseObserver {
    fn on_data(&mut self, data: &Bytes) {
        self.0.on_response_data(data);
    }

    fn on_end(mut self: Box<Self>, end: BodyEnd) {
        let end = match end {
            BodyEnd::Complete => End::Complete,
            BodyEnd::Error => End::UpstreamBroken,
            BodyEnd::Dropped => End::ClientGone,
            BodyEnd::IdleTimeout => End::UpstreamTimeout,
        };
        self.0.finish(end);
    }
}

/// A finished exchange's raw material, on its way to the telemetry worker.
pub struct Pending {
    id: u64,
    wall0: SystemTime,
    duration: Duration,
    ttft: Option<Duration>,
    first_byte: Option<Duration>,
    route: Route,
    head: RequestHead,
    status: Option<u16>,
    end: End,
    terminal: bool,
    sse: bool,
    /// The stream was observed to its end: a missing terminal event means it was cut.
    judged: bool,
    stream_facts: Option<ResponseFacts>,
    /// The non-streamed body, decoded, long strings cut; charged to the budget until the
    /// record is built.
    body: Option<ChargedBuf>,
    skipped: Option<Skipped>,
    request: RequestCapture,
    parse_error: Option<ParseError>,
    capture: Option<usize>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Parses what was deferred and decides the outcome. Runs on the telemetry worker.
    pub fn into_record(self) -> CallRecord {
        let dialect = self.route.dialect;
        let operation = self.route.operation;
        let mut parse_error = self.parse_error;
        let request = if self.request.complete && !self.request.too_large {
            let body = self
                .request
                .body
                .as_ref()
                .map_or(&[][..], ChargedBuf::as_slice);
            guarded(|| (dialect.parse_request)(operation, &self.head.path, body, self.capture))
                .map_err(|e| parse_error = parse_error.or(Some(e)))
                .ok()
        } else {
            None
        };
        let response = match (self.stream_facts, self.status) {
            (Some(facts), _) => facts,
            (None, Some(status)) if parse_error.is_none() => {
                let body = self.body.as_ref().map_or(&[][..], ChargedBuf::as_slice);
                // The tree the body parses into is charged while it exists, as a stream's
                // events are (TREE_PER_BYTE); past the budget the body is not parsed.
                let mut tree = self.body.as_ref().map(|b| Charge::new(b.budget()));
                let room = tree
                    .as_mut()
                    .is_none_or(|t| t.set(body.len().saturating_mul(TREE_PER_BYTE)));
                // An abandoned body is a partial body: not a parse failure, nothing to parse.
                let parsed = if !room {
                    Err(ParseError::BodyTooLarge)
                } else if self.end == End::Complete && !body.is_empty() {
                    guarded(|| {
                        (dialect.parse_response)(operation, status, body, self.capture.is_some())
                    })
                } else {
                    Ok(ResponseFacts::default())
                };
                parsed.unwrap_or_else(|e| {
                    parse_error = Some(e);
                    ResponseFacts::default()
                })
            }
            (None, _) => ResponseFacts::default(),
        };
        let skipped = self
            .skipped
            .or(self.request.skipped.then_some(Skipped::RequestBody));
        let mut response = response;
        crate::dialects::settle(request.as_ref(), &mut response);
        let (outcome, error_type) = outcome(
            self.status,
            self.end,
            self.terminal,
            self.judged && self.skipped.is_none(),
            &response,
        );
        // Errors carry no usage by nature; only a successful call without usage is "missing".
        let usage_missing = outcome == Outcome::Ok && response.usage.is_empty();
        CallRecord {
            id: self.id,
            start: self.wall0,
            duration: self.duration,
            ttft: self.ttft,
            first_byte: self.first_byte,
            provider: dialect.provider,
            operation,
            host: self.head.host,
            port: self.head.port,
            method: self.head.method,
            path: self.head.path,
            status: self.status,
            stream: self.sse,
            client: self.head.client,
            conversation_id: self
                .head
                .conversation_id
                .or_else(|| request.as_ref().and_then(|r| r.conversation_id.clone())),
            traceparent: self.head.traceparent,
            team: self.head.attribution.team,
            user: self.head.attribution.user,
            billing: self.head.billing,
            cost_usd: None,
            request,
            response,
            outcome,
            error_type,
            parse_error,
            usage_missing,
            observe_skipped: skipped,
        }
    }
}

fn guarded<T>(f: impl FnOnce() -> Result<T, ParseError>) -> Result<T, ParseError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(ParseError::Panic))
}

/// Error types by which the APIs say "rate limited" when no status says it: Anthropic's
/// `rate_limit_error`, OpenAI's `rate_limit_exceeded` and `insufficient_quota`, ChatGPT's
/// `usage_limit_reached`, Google's `RESOURCE_EXHAUSTED`. Quota and plan usage limits are
/// rate limits: the call was refused for volume, not for what it asked.
fn is_rate_limit(error_type: &str) -> bool {
    let t = error_type.to_ascii_lowercase();
    t.contains("rate_limit")
        || t.contains("usage_limit")
        || t.contains("quota")
        || t == "resource_exhausted"
}

/// Decides how a call ended: by the HTTP status, or the status an in-band error carries;
/// then by the error type; then by how the body ended. `stream_checked`: the response was
/// a stream observed to its end (no fatal error, its last event read), so a missing
/// terminal event means it was cut short.
fn outcome(
    status: Option<u16>,
    end: End,
    terminal: bool,
    stream_checked: bool,
    facts: &ResponseFacts,
) -> (Outcome, Option<String>) {
    let api_error = facts.error_type.clone();
    let with = |outcome, fallback: String| (outcome, Some(api_error.clone().unwrap_or(fallback)));
    let Some(status) = status else {
        return match end {
            // Refused by llmtap's own destination policy, not by the upstream.
            End::UpstreamFailed(kind @ "destination_refused") => {
                (Outcome::ProxyError, Some(kind.to_owned()))
            }
            End::UpstreamFailed(kind) => (Outcome::UpstreamError, Some(kind.to_owned())),
            End::UpstreamTimeout => (Outcome::UpstreamError, Some("upstream_timeout".to_owned())),
            _ => (Outcome::Cancelled, Some("cancelled".to_owned())),
        };
    };
    // An error inside a successful response (an SSE error event, a socket's error frame)
    // decides by the status it carries first, by its type second.
    let status = match facts.error_status {
        Some(inband) if api_error.is_some() && !(400..600).contains(&status) => inband,
        _ => status,
    };
    match status {
        429 => with(Outcome::RateLimited, status.to_string()),
        400..=499 => with(Outcome::ClientError, status.to_string()),
        500..=599 => with(Outcome::UpstreamError, status.to_string()),
        _ if api_error.as_deref().is_some_and(is_rate_limit) => (Outcome::RateLimited, api_error),
        _ if api_error.is_some() => (Outcome::UpstreamError, api_error),
        _ => match end {
            End::ClientGone if terminal => (Outcome::Ok, None),
            End::ClientGone => (Outcome::Cancelled, Some("cancelled".to_owned())),
            End::UpstreamBroken => (Outcome::UpstreamError, Some("upstream_reset".to_owned())),
            End::UpstreamTimeout => (Outcome::UpstreamError, Some("upstream_timeout".to_owned())),
            End::UpstreamFailed(kind) => (Outcome::UpstreamError, Some(kind.to_owned())),
            End::Complete if stream_checked && !terminal => {
                (Outcome::UpstreamError, Some("stream_truncated".to_owned()))
            }
            End::Complete => (Outcome::Ok, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clients_are_recognised_from_user_agents() {
        let cases = [
            ("claude-cli/2.1.197 (external, sdk-cli)", Client::ClaudeCode),
            (
                "codex_exec/0.169.0 (Debian 12; x86_64) xterm",
                Client::Codex,
            ),
            (
                "GeminiCLI-tui/0.61.0/gemini-2.5-flash (linux; x64; terminal)",
                Client::GeminiCli,
            ),
            ("Anthropic/Python 2.14.0", Client::AnthropicPython),
            ("OpenAI/Python 3.57.0", Client::OpenaiPython),
            (
                "google-genai-sdk/3.6.1 gl-python/3.11.7",
                Client::GoogleGenaiPython,
            ),
            ("curl/8.0", Client::Other),
        ];
        for (ua, want) in cases {
            assert_eq!(Client::from_user_agent(ua), want, "{ua}");
        }
    }

    #[test]
    fn traceparent_parses_per_w3c() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id[0], 0x4b);
        assert_eq!(tp.span_id[7], 0xb7);
        assert!(tp.sampled);
        let future =
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x");
        assert_eq!(future.map(|t| t.sampled), Some(false));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f35-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }

    #[test]
    fn outcomes_follow_status_then_stream_state() {
        let ok = ResponseFacts::default();
        let overloaded = ResponseFacts {
            error_type: Some("overloaded_error".into()),
            ..Default::default()
        };
        let o = |status, end, terminal, facts: &ResponseFacts| {
            outcome(status, end, terminal, true, facts)
        };
        assert_eq!(o(Some(200), End::Complete, true, &ok), (Outcome::Ok, None));
        for limited in [
            "rate_limit_error",
            "rate_limit_exceeded",
            "RESOURCE_EXHAUSTED",
        ] {
            let facts = ResponseFacts {
                error_type: Some(limited.into()),
                ..Default::default()
            };
            assert_eq!(
                o(Some(101), End::Complete, true, &facts).0,
                Outcome::RateLimited,
                "{limited}"
            );
        }
        assert_eq!(
            o(Some(429), End::Complete, false, &ok).0,
            Outcome::RateLimited
        );
        assert_eq!(
            o(Some(529), End::Complete, false, &overloaded),
            (Outcome::UpstreamError, Some("overloaded_error".into()))
        );
        assert_eq!(
            o(Some(400), End::Complete, false, &ok),
            (Outcome::ClientError, Some("400".into()))
        );
        assert_eq!(
            o(Some(200), End::Complete, true, &overloaded).0,
            Outcome::UpstreamError
        );
        assert_eq!(
            o(Some(200), End::ClientGone, false, &ok).0,
            Outcome::Cancelled
        );
        assert_eq!(o(Some(200), End::ClientGone, true, &ok).0, Outcome::Ok);
        assert_eq!(
            o(Some(200), End::UpstreamBroken, false, &ok).0,
            Outcome::UpstreamError
        );
        assert_eq!(
            o(Some(200), End::Complete, false, &ok).1.as_deref(),
            Some("stream_truncated")
        );
        assert_eq!(
            o(None, End::UpstreamFailed("upstream_connect"), false, &ok).0,
            Outcome::UpstreamError
        );
        assert_eq!(o(None, End::ClientGone, false, &ok).0, Outcome::Cancelled);
        // codex_ws_usage_limit: an in-band error's status decides before its type.
        let in_band = |status, kind: &str| ResponseFacts {
            error_type: Some(kind.into()),
            error_status: Some(status),
            ..Default::default()
        };
        assert_eq!(
            o(
                Some(101),
                End::Complete,
                true,
                &in_band(429, "usage_limit_reached")
            ),
            (Outcome::RateLimited, Some("usage_limit_reached".into()))
        );
        assert_eq!(
            o(
                Some(200),
                End::Complete,
                true,
                &in_band(400, "invalid_request_error")
            )
            .0,
            Outcome::ClientError
        );
        // A status that is no error status does not turn the error into a success.
        assert_eq!(
            o(
                Some(200),
                End::Complete,
                true,
                &in_band(200, "server_error")
            )
            .0,
            Outcome::UpstreamError
        );
    }

    /// A chunk of Chat stream bytes through a pipeline; what it concluded.
    fn pipeline_after(chunks: &[&[u8]]) -> (Option<ParseError>, bool, bool) {
        let budget = crate::budget::Budget::new(1 << 30, None);
        let route = crate::dialects::detect(&crate::dialects::Target {
            host: "api.openai.com",
            method: "POST",
            path: "/v1/chat/completions",
            query: None,
            websocket: false,
        })
        .expect("chat");
        let mut p = Pipeline {
            framer: Framing::Sse(Framer::new(64)),
            parser: (route.dialect.stream_parser)(route.operation, None),
            saw_delta: false,
            error: None,
            last_bad: false,
            tree: Charge::new(&budget),
        };
        for chunk in chunks {
            p.take(chunk).expect("framing never fails on SSE");
        }
        (p.error(), p.end_unknown(), p.parser.terminal())
    }

    #[test]
    fn a_bad_event_does_not_stop_parsing_nor_hide_a_cut_stream() {
        let good = br#"data: {"choices":[{"index":0,"delta":{"content":"a"}}]}

"#;
        // Bad, then good, then no [DONE]: parsing went on, and the end is judged (cut).
        let (error, unknown, terminal) = pipeline_after(&[b"data: {bad\n\n", good]);
        assert_eq!(error, Some(ParseError::InvalidJson));
        assert!(!unknown && !terminal);
        // The last event bad: it may have been the terminal one; the end is not judged.
        let (_, unknown, _) = pipeline_after(&[good, b"data: {bad\n\n"]);
        assert!(unknown);
        // The last event over the cap: the same.
        let big = format!("data: [{}1]\n\n", "1,".repeat(100));
        let (error, unknown, _) = pipeline_after(&[good, big.as_bytes()]);
        assert_eq!(error, Some(ParseError::LineTooLong));
        assert!(unknown);
        // Usage after a bad event still counts, and [DONE] still ends the stream.
        let (_, unknown, terminal) =
            pipeline_after(&[b"data: {bad\n\n", good, b"data: [DONE]\n\n"]);
        assert!(!unknown && terminal);
    }
}

/// The calls on one intercepted WebSocket (Codex's Responses socket): each client
/// `response.create` starts a call, the server's events until the terminal one are its
/// response; several calls per socket, one after another.
pub struct WsSession {
    telemetry: Arc<Telemetry>,
    /// `None` for a socket to an intercepted host that no dialect understands: relayed,
    /// not recorded.
    route: Option<Route>,
    head: RequestHead,
    current: Option<Exchange>,
    /// A server message of `current` was skipped (over the size cap); applied when it ends.
    skipped: bool,
    /// A server message of `current` was skipped for the observation budget.
    over_budget: bool,
    /// When `current` was opened.
    opened: Option<Instant>,
}

impl WsSession {
    pub fn new(telemetry: Arc<Telemetry>, route: Option<Route>, head: RequestHead) -> WsSession {
        WsSession {
            telemetry,
            route,
            head,
            current: None,
            skipped: false,
            over_budget: false,
            opened: None,
        }
    }

    /// Ends the open call, if any, flagging it if one of its messages was skipped.
    fn end_current(&mut self, end: End) {
        self.opened = None;
        if let Some(mut call) = self.current.take() {
            if std::mem::take(&mut self.skipped) {
                call.ws_skipped();
            }
            if std::mem::take(&mut self.over_budget) {
                call.skipped.get_or_insert(Skipped::WebsocketMessage);
            }
            call.end(end);
        }
    }
}

/// Just the `type` of a JSON message; serde skips the rest without allocating.
#[derive(serde::Deserialize)]
struct Kind<'a> {
    #[serde(rename = "type", borrow)]
    kind: std::borrow::Cow<'a, str>,
}

impl crate::proxy::websocket::MessageObserver for WsSession {
    /// Every message of an understood socket is JSON: long strings are cut as the frames
    /// are reassembled, as an HTTP stream's events are (see [`Exchange::keep`]).
    fn text_keep(&self) -> Option<usize> {
        let route = self.route?;
        let max_event = self
            .telemetry
            .limits()
            .sse_line
            .max(route.dialect.max_event);
        Some(keep_for(self.telemetry.capture(), max_event))
    }

    fn on_message(&mut self, side: crate::proxy::websocket::Side, text: bool, payload: &[u8]) {
        use crate::proxy::websocket::Side;
        let Some(route) = self.route else { return };
        match side {
            Side::Client => {
                let create = text
                    && serde_json::from_slice::<Kind<'_>>(payload)
                        .is_ok_and(|k| k.kind == "response.create");
                if create {
                    // A new request while one is open: the client gave up on the old one.
                    self.end_current(End::ClientGone);
                    self.opened = Some(Instant::now());
                    self.current = Some(Exchange::start_ws(
                        self.telemetry.clone(),
                        route,
                        self.head.clone(),
                        payload,
                    ));
                }
            }
            Side::Server => {
                let Some(call) = &mut self.current else {
                    return;
                };
                if text && call.on_ws_message(payload) {
                    self.end_current(End::Complete);
                }
            }
        }
    }

    /// A client message over the cap is ignored: had it been a `response.create`, that
    /// call goes unrecorded (its type cannot be known without reading it). A server one
    /// flags the open call; its later events, terminal one included, are still parsed.
    fn on_skipped(&mut self, side: crate::proxy::websocket::Side) {
        if side == crate::proxy::websocket::Side::Server && self.current.is_some() {
            self.skipped = true;
        }
    }

    fn on_over_budget(&mut self, side: crate::proxy::websocket::Side) {
        if side == crate::proxy::websocket::Side::Server && self.current.is_some() {
            self.over_budget = true;
        }
    }

    fn budget(&self) -> Option<Arc<crate::budget::Budget>> {
        Some(self.telemetry.budget().clone())
    }

    fn waiting_since(&self) -> Option<Instant> {
        self.opened
    }

    /// The upstream went silent mid-call: the call ends `upstream_timeout`, the socket closes.
    fn on_stream_timeout(&mut self) {
        self.end_current(End::UpstreamTimeout);
    }

    fn on_decode_error(&mut self, _side: crate::proxy::websocket::Side) {
        if let Some(call) = &mut self.current {
            call.ws_undecodable();
        }
    }

    fn on_close(&mut self, closed: crate::proxy::websocket::Closed) {
        self.end_current(match closed {
            crate::proxy::websocket::Closed::ByClient => End::ClientGone,
            crate::proxy::websocket::Closed::ByServer => End::UpstreamBroken,
        });
    }
}
