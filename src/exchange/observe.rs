//! The seams between HTTP plumbing and observation: what a body tap and a WebSocket relay
//! tell an observer, and what every exchange on the data path shares.
//!
//! `proxy` drives these traits (it calls them from inside hyper's poll and from the relay
//! task); `exchange` implements them; neither knows the other's internals. Every method
//! runs on the data path: bounded work, never blocking.

use std::sync::Arc;

use bytes::Bytes;

use super::Pending;
use crate::{
    budget::Budget,
    config::{Config, Limits},
    vocab::ErrorType,
};

/// How a body ended, as its tap saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyEnd {
    /// The inner body reported its end.
    Complete,
    /// The inner body failed: [`ErrorType::UpstreamTimeout`] when no frame came within
    /// `--stream-idle-timeout`, else [`ErrorType::UpstreamReset`] (the connection broke).
    /// For a request body, the client aborted its upload: only that it failed counts there
    /// (the error type, named from the upstream side, is not used).
    Failed(ErrorType),
    /// The body was dropped before its end (for a response: the client went away).
    Dropped,
}

/// Watches one HTTP body. Runs inside hyper's poll: must do bounded work and never block.
pub trait BodyObserver: Send + Sync + 'static {
    /// A data frame, before it is forwarded.
    fn on_data(&mut self, data: &Bytes);
    /// Called exactly once, however the body ends.
    fn on_end(self: Box<Self>, end: BodyEnd);
}

/// Which side of a WebSocket sent a message, or closed first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    /// The agent's side: its messages are requests (`response.create`), masked on the wire.
    Client,
    /// The upstream API's side: its messages are events of the calls.
    Server,
}

/// Receives decoded WebSocket messages. Runs on the relay task after the bytes were
/// forwarded: bounded work only.
pub trait MessageObserver: Send + 'static {
    /// One whole message (fragments joined, permessage-deflate inflated).
    fn on_message(&mut self, side: Side, text: bool, payload: &[u8]);
    /// A message over the size cap went by unobserved; later messages are still observed.
    /// No-op by default: a skipped message is simply not seen.
    fn on_skipped(&mut self, _side: Side) {}
    /// A message of `side` was skipped because the observation budget was spent.
    fn on_over_budget(&mut self, _side: Side) {}
    /// The budget the decoders' buffers are charged to (`None`: not charged).
    fn budget(&self) -> Option<Arc<Budget>> {
        None
    }
    /// Since when a call has been open, waiting for the upstream (`None`: no call open):
    /// `--stream-idle-timeout` runs from this or the upstream's last byte, the later.
    fn waiting_since(&self) -> Option<std::time::Instant> {
        None
    }
    /// The upstream sent nothing for the stream-idle timeout while a call was open; the
    /// socket is closed after this.
    fn on_stream_timeout(&mut self) {}
    /// A frame could not be decoded; that direction is no longer observed.
    fn on_decode_error(&mut self, side: Side);
    /// The server's text messages are JSON to the observer: cut string bodies longer than
    /// this many bytes as they are reassembled (`dialects::elide`), so that a message of any
    /// size gives its facts in bounded memory. `None` (the default): text is kept as sent.
    /// The client's messages (requests) are never cut.
    fn text_keep(&self) -> Option<usize> {
        None
    }
    /// The spliced connection ended; `first`: the side that closed (or broke) first.
    fn on_close(&mut self, first: Side);
}

/// Where finished calls go: implemented by `telemetry`, which turns each [`Pending`] into a
/// record off the data path.
pub trait Recorder: Send + Sync + 'static {
    /// A call started: its id, and it counts as in flight.
    fn call_started(&self) -> super::CallId;
    /// A call finished. Must never block: a full queue drops the call and counts it.
    fn call_finished(&self, pending: Pending);
}

/// What every exchange shares: the limits and capture setting from `Config`, the
/// observation budget, and where finished calls go.
#[derive(Clone)]
pub struct Observing {
    /// Per-call memory bounds (`Config::limits`).
    pub limits: Limits,
    /// `--capture-content`'s cap of each content attribute, when content is captured.
    pub capture: Option<usize>,
    /// `--observe-budget`: charged by every copy, partial event and queued call.
    pub budget: Arc<Budget>,
    /// Where calls start (their id) and finish (their [`Pending`]): the telemetry pipeline.
    pub recorder: Arc<dyn Recorder>,
    /// Whether calls keep the gaps between their content reads ([`super::ChunkGaps`]): only
    /// when OTel metrics are exported.
    pub chunk_gaps: bool,
}

impl std::fmt::Debug for Observing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Observing")
            .field("limits", &self.limits)
            .field("capture", &self.capture)
            .finish_non_exhaustive()
    }
}

impl Observing {
    /// From what `config` resolved, the shared `budget`, and where calls go. Content is
    /// captured (`--capture-content`) only when something keeps it: exported spans, or the
    /// history (`--db`).
    pub fn new(
        config: &Config,
        budget: Arc<Budget>,
        recorder: Arc<dyn Recorder>,
    ) -> Arc<Observing> {
        let exported = config.otlp.is_some() || config.history.is_some();
        Arc::new(Observing {
            limits: config.limits,
            capture: (config.capture.enabled && exported).then_some(config.capture.max_bytes),
            budget,
            recorder,
            chunk_gaps: config.otlp_metrics.is_some(),
        })
    }
}
