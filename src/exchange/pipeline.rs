//! The observation pipeline of a response body: decode → frame (long strings cut) → parse,
//! on copies of the data, with its memory charged to the observation budget.

use std::sync::Arc;

use crate::{
    budget::{Charge, ChargedBuf, Full},
    config::Limits,
    dialects::{
        ParseError, Progress, StreamParser,
        elide::Elider,
        eventstream,
        json_array::Splitter,
        sse::{DEFAULT_KEEP, Event, Framer},
    },
    exchange::decode::{Decoder, Encoding, Sink},
};

/// The streamed-response pipeline: decode → frame → parse, on copies of the data. The
/// decoder hands its output to the framer as it produces it, so memory is the framer's
/// partial event, never a decoded chunk (a decompression bomb included).
pub(super) struct Stream {
    pub(super) decoder: Decoder<Pipeline>,
}

/// Frame → parse: the decoder's sink.
pub(super) struct Pipeline {
    pub(super) framer: StreamFraming,
    pub(super) parser: Box<dyn StreamParser>,
    /// A content delta was parsed since the last look.
    pub(super) saw_delta: bool,
    /// The first event the parser could not read. Parsing goes on with the next event: one
    /// bad event must not hide the usage that follows it.
    pub(super) error: Option<ParseError>,
    /// The last event could not be read.
    pub(super) last_bad: bool,
    /// What parsing one event into a JSON tree holds, charged while it runs.
    pub(super) tree: Charge,
}

/// Bytes of `serde_json::Value` tree per byte of JSON text, at worst (`[0,0,…]`: 32-byte
/// values for 2-byte elements). Long strings are already cut, so structure is what counts.
pub(super) const TREE_PER_BYTE: usize = 16;

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
    /// Why the stream's facts may be incomplete: an event that could not be read, one over
    /// the event cap even with long strings cut (skipped), or an event-stream message that
    /// failed its CRC (skipped).
    pub(super) fn error(&self) -> Option<ParseError> {
        self.error.or_else(|| self.framer.error())
    }

    /// The last event was bad or skipped: it may have been the terminal one, so a missing
    /// terminal event does not prove the stream was cut.
    pub(super) fn end_unknown(&self) -> bool {
        self.last_bad || self.framer.last_skipped()
    }
}

/// A non-streamed body, decoded as it arrives and copied with long strings cut (the
/// [`Elider`]), so that a multi-MB image or document inside it does not count against the
/// body cap and the parse on the worker reads a small tree. Parsed when complete.
pub(super) struct Document {
    pub(super) elider: Elider,
    pub(super) buf: ChargedBuf,
    pub(super) cap: usize,
    /// Why the copy stopped, when it did.
    pub(super) full: Option<Full>,
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
    pub(super) fn new(
        encoding: Encoding,
        cap: usize,
        framer: StreamFraming,
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

    pub(super) fn pipeline(&self) -> Option<&Pipeline> {
        self.decoder.sink()
    }
}

/// How a streamed body is cut into events.
pub(super) enum StreamFraming {
    Sse(Framer),
    JsonArray(Splitter),
    /// AWS event-stream messages (`application/vnd.amazon.eventstream`, Amazon Bedrock), each
    /// handed on as the event [`eventstream::Message::event_name`] names (an event's
    /// `:event-type`; `exception:` + `:exception-type`; `error:` + `:error-code`) with the
    /// payload as its data. A message of another `:message-type` is not handed on.
    EventStream(eventstream::Decoder),
    /// Each push is one whole event: a WebSocket message, its long strings already cut by
    /// the socket's decoder ([`MessageObserver::text_keep`]).
    ///
    /// [`MessageObserver::text_keep`]: crate::exchange::MessageObserver::text_keep
    Message,
}

impl StreamFraming {
    /// Bytes the framer holds for its partial event.
    pub(super) fn held(&self) -> usize {
        match self {
            StreamFraming::Sse(framer) => framer.held(),
            StreamFraming::JsonArray(splitter) => splitter.held(),
            StreamFraming::EventStream(decoder) => decoder.held(),
            StreamFraming::Message => 0,
        }
    }

    /// Events skipped because they were over the cap even with long strings cut.
    pub(super) fn skipped(&self) -> u64 {
        match self {
            StreamFraming::Sse(framer) => framer.skipped(),
            StreamFraming::JsonArray(splitter) => splitter.skipped(),
            StreamFraming::EventStream(decoder) => decoder.skipped(),
            StreamFraming::Message => 0,
        }
    }

    /// What the framer skipped, as the call's parse error: a message that failed its CRC
    /// first (`invalid_frame`), else an event over the cap (`line_too_long`).
    fn error(&self) -> Option<ParseError> {
        let corrupt = match self {
            StreamFraming::EventStream(decoder) => decoder.corrupt(),
            _ => 0,
        };
        if corrupt > 0 {
            Some(ParseError::InvalidFrame)
        } else {
            (self.skipped() > 0).then_some(ParseError::LineTooLong)
        }
    }

    /// The last event was skipped.
    pub(super) fn last_skipped(&self) -> bool {
        match self {
            StreamFraming::Sse(framer) => framer.last_skipped(),
            StreamFraming::JsonArray(splitter) => splitter.last_skipped(),
            StreamFraming::EventStream(decoder) => decoder.last_skipped(),
            StreamFraming::Message => false,
        }
    }

    pub(super) fn push(
        &mut self,
        bytes: &[u8],
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        match self {
            StreamFraming::Sse(framer) => framer.push(bytes, on_event),
            StreamFraming::JsonArray(splitter) => splitter.push(bytes, &mut |element| {
                on_event(Event {
                    name: b"",
                    data: element,
                })
            }),
            StreamFraming::EventStream(decoder) => decoder.push_events(bytes, on_event),
            StreamFraming::Message => on_event(Event {
                name: b"",
                data: bytes,
            }),
        }
    }
}

/// The most decoded bytes a body is observed for. A compressed body's decoding is work on
/// the data path that a small bomb can make huge, so it stops at the cap; an identity body
/// costs what was relayed anyway, and the framer bounds its memory, so it has none (a long
/// stream's final usage must not be lost to a total size).
pub(super) fn decoded_cap(encoding: Encoding, limits: Limits) -> usize {
    match encoding {
        Encoding::Identity => usize::MAX,
        _ => limits.decoded_body,
    }
}

/// See [`Exchange::keep`]: `capture` is `--capture-max-bytes` when content is captured.
pub(super) fn keep_for(capture: Option<usize>, max_event: usize) -> usize {
    capture
        .map_or(DEFAULT_KEEP, |cap| cap.max(DEFAULT_KEEP))
        .min(max_event / 4)
        .max(1)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A chunk of Chat stream bytes through a pipeline; what it concluded.
    fn pipeline_after(chunks: &[&[u8]]) -> (Option<ParseError>, bool, bool) {
        let budget = crate::budget::Budget::new(1 << 30, None);
        let route = crate::providers::Providers::builtin()
            .route(&crate::dialects::Target {
                host: "api.openai.com",
                method: "POST",
                path: "/v1/chat/completions",
                query: None,
                websocket: false,
            })
            .expect("chat");
        let mut p = Pipeline {
            framer: StreamFraming::Sse(Framer::new(64)),
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

    /// A Bedrock `ConverseStream` pipeline with event-stream framing (message cap `max`).
    fn converse_pipeline(max: usize) -> Pipeline {
        let budget = crate::budget::Budget::new(1 << 30, None);
        let route = crate::providers::Providers::builtin()
            .route(&crate::dialects::post(
                "bedrock-runtime.us-east-1.amazonaws.com",
                "/model/anthropic.claude-sonnet-4-5-20250929-v1:0/converse-stream",
            ))
            .expect("converse");
        Pipeline {
            framer: StreamFraming::EventStream(eventstream::Decoder::new(max)),
            parser: (route.dialect.stream_parser)(route.operation, None),
            saw_delta: false,
            error: None,
            last_bad: false,
            tree: Charge::new(&budget),
        }
    }

    /// One event-stream message with string headers (the framing AWS documents).
    fn message(headers: &[(&str, &str)], payload: &[u8]) -> Vec<u8> {
        let mut raw = Vec::new();
        for (name, value) in headers {
            raw.push(u8::try_from(name.len()).expect("short name"));
            raw.extend(name.as_bytes());
            raw.push(7);
            raw.extend(
                u16::try_from(value.len())
                    .expect("short value")
                    .to_be_bytes(),
            );
            raw.extend(value.as_bytes());
        }
        let total = u32::try_from(16 + raw.len() + payload.len()).expect("small");
        let headers_len = u32::try_from(raw.len()).expect("small");
        let mut out = [total.to_be_bytes(), headers_len.to_be_bytes()].concat();
        out.extend(crc32fast::hash(&out).to_be_bytes());
        out.extend(raw);
        out.extend(payload);
        out.extend(crc32fast::hash(&out).to_be_bytes());
        out
    }

    fn event(kind: &str, payload: &str) -> Vec<u8> {
        message(
            &[(":event-type", kind), (":message-type", "event")],
            payload.as_bytes(),
        )
    }

    #[test]
    fn event_stream_messages_reach_the_parser_with_caps_and_crcs_counted() {
        let delta = event(
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"text":"Hi"}}"#,
        );
        let stop = event("messageStop", r#"{"stopReason":"end_turn"}"#);
        let metadata = event(
            "metadata",
            r#"{"usage":{"inputTokens":3,"outputTokens":2,"totalTokens":5}}"#,
        );
        let mut p = converse_pipeline(256);
        for piece in [&delta[..], &stop, &metadata].concat().chunks(5) {
            p.take(piece).expect("framed");
        }
        assert!(p.saw_delta && p.parser.terminal());
        assert_eq!((p.error(), p.end_unknown()), (None, false));
        assert_eq!(p.parser.facts().usage.input, Some(3));

        // A message over the cap is skipped and counted like an SSE event over it.
        let big = event(
            "contentBlockDelta",
            &format!(r#"{{"p":"{}"}}"#, "x".repeat(300)),
        );
        let mut p = converse_pipeline(256);
        p.take(&[&delta[..], &big].concat()).expect("framed");
        assert_eq!(p.error(), Some(ParseError::LineTooLong));
        assert!(
            p.end_unknown(),
            "the skipped message may have been the last"
        );
        assert!(p.framer.held() <= 256);

        // A message failing its CRC is skipped: invalid_frame, and parsing goes on.
        let mut bad = stop.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        let mut p = converse_pipeline(256);
        p.take(&[&bad[..], &metadata].concat()).expect("framed");
        assert_eq!(p.error(), Some(ParseError::InvalidFrame));
        assert!(p.parser.terminal() && !p.end_unknown());

        // A bad prelude: the framing is lost, the stream fails (the exchange stops observing).
        let mut lost = delta.clone();
        lost[9] ^= 1;
        let mut p = converse_pipeline(256);
        assert_eq!(
            p.take(&[&stop[..], &lost, &metadata].concat()),
            Err(ParseError::InvalidFrame)
        );
        assert!(
            !p.parser.terminal(),
            "nothing after the lost prelude was read"
        );

        // An exception message is handed on by its type.
        let throttled = message(
            &[
                (":exception-type", "throttlingException"),
                (":message-type", "exception"),
            ],
            br#"{"message":"slow down"}"#,
        );
        let mut p = converse_pipeline(256);
        p.take(&[&delta[..], &throttled].concat()).expect("framed");
        let facts = p.parser.facts();
        assert_eq!(
            (facts.error_type.as_deref(), facts.error_status),
            (Some("ThrottlingException"), Some(429))
        );
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
