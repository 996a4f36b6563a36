//! One LLM call from request head to last byte, and the single exit to telemetry.
//!
//! Owns: per-call state (route, timings, attribution, the streaming parser), the observers
//! that watch the request and response bodies, and [`Exchange`]'s finish, which runs exactly
//! once whatever the ending (end of stream, upstream error, client gone, connect failure) and
//! hands the call to telemetry. Finishing does bounded work on the data path: it moves the
//! raw material into a [`Pending`] and `try_send`s it; the worker turns it into a
//! [`CallRecord`] (request JSON, non-streamed response JSON) off the data path.
//!
//! One concept per file: the call and its finish here; what is known before the body
//! (`head`: client, attribution, billing, trace context, outcome labels); the response
//! observation pipeline (`pipeline`: decode → frame → parse); the record and its outcome
//! rules, built off the data path (`record`); the calls of a WebSocket (`ws`).
//!
//! Does not own: what a metric or a call line looks like (`telemetry`), wire formats
//! (`dialects`), HTTP plumbing (`proxy`).

pub mod decode;
mod head;
pub mod observe;
mod pipeline;
mod record;
mod ws;

use decode::{Decoder, Encoding};
pub use head::{RequestHead, TraceParent};
pub use observe::{BodyEnd, BodyObserver, MessageObserver, Observing, Recorder, Side};
use pipeline::{Document, Stream, StreamFraming, decoded_cap, keep_for};
pub use record::{CallId, CallRecord, ChunkGaps, LoopFacts, Pending, ToolExecution};
pub use ws::WsSession;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{Arc, Mutex},
    time::{Instant, SystemTime},
};

use bytes::Bytes;

use crate::{
    budget::{Charge, ChargedBuf, Full, Skipped},
    config::Limits,
    dialects::{
        Framing, ParseError, elide::Elider, eventstream, json_array::Splitter, sse::Framer,
    },
    providers::Route,
    vocab::ErrorType,
};

/// How a call ended, as the proxy saw it (the body-level [`BodyEnd`] of the response, or a
/// failure before any response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The response body reached its end.
    Complete,
    /// The client went away (response body dropped, or the request abandoned before a
    /// response head).
    ClientGone,
    /// The upstream failed: before a response head (connect, TLS, request, timeout, the
    /// destination policy) or mid-body (reset, stream-idle timeout).
    Failed(ErrorType),
}

/// The request body as observed: shared between the request observer and the exchange.
#[derive(Debug, Default)]
pub(super) struct RequestCapture {
    /// The copy (`None` before the observer starts, and once dropped).
    pub(super) body: Option<ChargedBuf>,
    pub(super) complete: bool,
    /// The client's request body failed mid-way (the client aborted its upload).
    pub(super) aborted: bool,
    pub(super) too_large: bool,
    /// The observation budget was spent: the copy was dropped.
    pub(super) skipped: bool,
}

/// Per-call state. Dropping an unfinished exchange finishes it as [`End::ClientGone`].
pub struct Exchange {
    id: CallId,
    t0: Instant,
    wall0: SystemTime,
    route: Route,
    head: RequestHead,
    observing: Arc<Observing>,
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
    /// The gaps between content reads, when OTel metrics want them.
    chunk_gaps: Option<Box<ChunkGaps>>,
    finished: bool,
    /// What the response head's limit headers said.
    ratelimits: Option<crate::dialects::ratelimits::RateLimits>,
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
    pub fn start(observing: Arc<Observing>, route: Route, head: RequestHead) -> Exchange {
        let id = observing.recorder.call_started();
        Exchange {
            id,
            t0: Instant::now(),
            wall0: SystemTime::now(),
            route,
            head,
            limits: observing.limits,
            capture: observing.capture,
            request: Arc::default(),
            status: None,
            stream: None,
            document: None,
            charge: Charge::new(&observing.budget),
            chunk_gaps: observing.chunk_gaps.then(Box::default),
            observing,
            skipped: None,
            parse_error: None,
            first_byte: None,
            first_delta: None,
            finished: false,
            ratelimits: None,
        }
    }

    /// An observer for the request body: keeps refcounted copies up to the cap.
    /// `content_length`: the request's declared length, if any; the copy is sized for it
    /// once (no growth by doubling, whose reallocations would hold two copies at a time).
    pub fn request_observer(&self, content_length: Option<u64>) -> Box<dyn BodyObserver> {
        let mut body = ChargedBuf::new(&self.observing.budget);
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
    /// `headers`: the response's, read for the rate and plan limits they report
    /// ([`crate::dialects::ratelimits`]); nothing else of them is kept.
    pub fn on_response(
        mut self,
        status: u16,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        headers: &http::HeaderMap,
    ) -> Box<dyn BodyObserver> {
        self.status = Some(status);
        self.ratelimits = crate::dialects::ratelimits::RateLimits::from_headers(
            headers
                .iter()
                .filter_map(|(k, v)| Some((k.as_str(), v.to_str().ok()?))),
            SystemTime::now(),
        );
        let is = |wanted: &str| {
            content_type.is_some_and(|ct| {
                ct.trim_start()
                    .get(..wanted.len())
                    .is_some_and(|t| t.eq_ignore_ascii_case(wanted))
            })
        };
        let sse = is("text/event-stream");
        // An event's cap is the dialect's own (a Responses `response.completed` carries the
        // whole output) or the configured line cap, whichever is larger.
        let max_event = self.limits.sse_line.max(self.route.dialect.max_event);
        let keep = self.keep(max_event);
        let framer = if sse {
            Some(StreamFraming::Sse(Framer::new(max_event).keep(keep)))
        } else if is(eventstream::CONTENT_TYPE) {
            Some(StreamFraming::EventStream(eventstream::Decoder::new(
                max_event,
            )))
        } else if self.route.framing == Framing::JsonArray && (200..300).contains(&status) {
            Some(StreamFraming::JsonArray(
                Splitter::new(max_event).keep(keep),
            ))
        } else {
            None
        };
        match (Encoding::from_header(content_encoding), framer) {
            (None, _) => self.parse_error = Some(ParseError::Decode),
            (Some(encoding), Some(framer)) => {
                let parser = (self.route.dialect.stream_parser)(self.route.operation, self.capture);
                let cap = decoded_cap(encoding, self.limits);
                match Stream::new(encoding, cap, framer, parser, &self.observing.budget) {
                    Ok(stream) => self.stream = Some(stream),
                    Err(e) => self.parse_error = Some(e),
                }
            }
            (Some(encoding), None) => {
                let document = Document {
                    elider: Elider::new(self.keep(self.limits.response_body)),
                    buf: ChargedBuf::new(&self.observing.budget),
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
        observing: Arc<Observing>,
        route: Route,
        head: RequestHead,
        request: &[u8],
    ) -> Exchange {
        let (dialect, operation) = (route.dialect, route.operation);
        let mut exchange = Exchange::start(observing, route, head);
        exchange.status = Some(101);
        {
            let mut capture = lock(&exchange.request);
            capture.complete = true;
            let mut body = ChargedBuf::new(&exchange.observing.budget);
            match body.extend(request, exchange.limits.request_body) {
                Ok(()) => capture.body = Some(body),
                Err(Full::Cap) => capture.too_large = true,
                Err(Full::Budget) => {
                    capture.too_large = true;
                    capture.skipped = true;
                }
            }
        }
        let parser = (dialect.stream_parser)(operation, exchange.capture);
        match Stream::new(
            Encoding::Identity,
            decoded_cap(Encoding::Identity, exchange.limits),
            StreamFraming::Message,
            parser,
            &exchange.observing.budget.clone(),
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
    pub fn upstream_failed(mut self, error_type: ErrorType) {
        let end = if self.request_aborted() {
            End::ClientGone
        } else {
            End::Failed(error_type)
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
            pipeline.framer = StreamFraming::Message;
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
                    if let Some(gaps) = self.chunk_gaps.as_mut() {
                        gaps.chunk(now);
                    }
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
            chunk_gaps: self.chunk_gaps.take().filter(|g| !g.is_empty()),
            route: self.route.clone(),
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
            ratelimits: self.ratelimits.take(),
        };
        self.observing.recorder.call_finished(pending);
    }
}

impl Drop for Exchange {
    fn drop(&mut self) {
        self.finish(End::ClientGone);
    }
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
        capture.aborted = matches!(end, BodyEnd::Failed(_));
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
            BodyEnd::Failed(error) => End::Failed(error),
            BodyEnd::Dropped => End::ClientGone,
        };
        self.0.finish(end);
    }
}
