//! The calls on one intercepted WebSocket: [`WsSession`].

use std::{sync::Arc, time::Instant};

use super::{
    End, Exchange, RequestHead,
    observe::{MessageObserver, Observing, Side},
    pipeline::keep_for,
};
use crate::{budget::Skipped, providers::Route, vocab::ErrorType};

/// The calls on one intercepted WebSocket (Codex's Responses socket): each client
/// `response.create` starts a call, the server's events until the terminal one are its
/// response; several calls per socket, one after another.
pub struct WsSession {
    observing: Arc<Observing>,
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
    /// A session on a socket whose upgrade request was `head`; `route`: the dialect that
    /// understands it, `None` to relay without recording.
    pub fn new(observing: Arc<Observing>, route: Option<Route>, head: RequestHead) -> WsSession {
        WsSession {
            observing,
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

impl MessageObserver for WsSession {
    /// Every message of an understood socket is JSON: long strings are cut as the frames
    /// are reassembled, as an HTTP stream's events are (see [`Exchange::keep`]).
    fn text_keep(&self) -> Option<usize> {
        let route = self.route.as_ref()?;
        let max_event = self.observing.limits.sse_line.max(route.dialect.max_event);
        Some(keep_for(self.observing.capture, max_event))
    }

    fn on_message(&mut self, side: Side, text: bool, payload: &[u8]) {
        let Some(route) = &self.route else { return };
        let route = route.clone();
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
                        self.observing.clone(),
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
    fn on_skipped(&mut self, side: Side) {
        if side == Side::Server && self.current.is_some() {
            self.skipped = true;
        }
    }

    fn on_over_budget(&mut self, side: Side) {
        if side == Side::Server && self.current.is_some() {
            self.over_budget = true;
        }
    }

    fn budget(&self) -> Option<Arc<crate::budget::Budget>> {
        Some(self.observing.budget.clone())
    }

    fn waiting_since(&self) -> Option<Instant> {
        self.opened
    }

    /// The upstream went silent mid-call: the call ends `upstream_timeout`, the socket closes.
    fn on_stream_timeout(&mut self) {
        self.end_current(End::Failed(ErrorType::UpstreamTimeout));
    }

    fn on_decode_error(&mut self, _side: Side) {
        if let Some(call) = &mut self.current {
            call.ws_undecodable();
        }
    }

    fn on_close(&mut self, first: Side) {
        self.end_current(match first {
            Side::Client => End::ClientGone,
            Side::Server => End::Failed(ErrorType::UpstreamReset),
        });
    }
}
