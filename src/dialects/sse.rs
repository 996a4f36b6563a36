//! Incremental Server-Sent Events framer (the WHATWG event-stream grammar).
//!
//! Owns: splitting a byte stream that arrives in arbitrary pieces into events: lines ended by
//! `\n`, `\r\n` or `\r` (even when the pair is split across chunks), multi-line `data:`
//! joined with `\n`, comments and unknown fields skipped, a blank line dispatching, one
//! leading byte order mark dropped. Lines are never held whole: `data` is copied as it
//! arrives through the [`Elider`], so an event of any size yields its facts and memory is
//! bounded by the event cap. Does not own: what an event means (the dialects do).

use super::{ParseError, elide::Elider};

/// One dispatched event. Borrowed from the framer; copy what you keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, empty when absent.
    pub name: &'a [u8],
    /// All `data:` lines joined with `\n`.
    pub data: &'a [u8],
}

/// The UTF-8 byte order mark, which the grammar allows once before the first event
/// (`stream = [ bom ] *event`).
const BOM: &[u8; 3] = b"\xEF\xBB\xBF";
/// Longest field name kept while a line is read (`data`, `event`, `id`, `retry`); a longer
/// one names no field llmtap reads and the line is ignored.
const MAX_FIELD: usize = 16;
/// Longest `event:` value kept; the rest of a longer one is ignored.
const MAX_NAME: usize = 256;
/// String bodies longer than this are cut while framed (see [`Elider`]), unless the caller
/// asks for more (content capture).
pub const DEFAULT_KEEP: usize = 4 << 10;

/// What the line being read is, once its field name is known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Line {
    /// Reading the field name (up to the first `:`).
    Field,
    /// A `data` value; `space`: a leading space may still be dropped.
    Data { space: bool },
    /// An `event` value.
    Event { space: bool },
    /// A comment, an unknown field or an over-long name: skipped to its end.
    Ignore,
}

/// Incremental event-stream framer. Memory is bounded by `max_event` (one event's joined
/// data after long strings are cut) whatever arrives: lines are never held whole, an event
/// whose data is still over the cap is skipped and counted, and framing goes on with the
/// next event.
#[derive(Debug)]
pub struct Framer {
    line: Line,
    field: Vec<u8>,
    name: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The current event's data went over the cap: it will be skipped.
    oversized: bool,
    elider: Elider,
    /// The previous chunk ended in `\r`: a `\n` opening the next one ends nothing.
    after_cr: bool,
    /// Bytes of a leading BOM matched so far; `None` once the stream is past its start.
    bom: Option<usize>,
    max_event: usize,
    skipped: u64,
    /// The last event dispatched was skipped (it may have been the terminal one).
    last_skipped: bool,
}

impl Framer {
    /// Bytes held for the event being framed (its field name, event name and data), by
    /// capacity: what the observation budget charges.
    pub fn held(&self) -> usize {
        self.field.capacity() + self.name.capacity() + self.data.capacity()
    }

    /// `max_event` caps one event's joined data, after strings longer than
    /// [`DEFAULT_KEEP`] are cut.
    pub fn new(max_event: usize) -> Self {
        Framer {
            line: Line::Field,
            field: Vec::new(),
            name: Vec::new(),
            data: Vec::new(),
            has_data: false,
            oversized: false,
            elider: Elider::new(DEFAULT_KEEP),
            after_cr: false,
            bom: Some(0),
            max_event,
            skipped: 0,
            last_skipped: false,
        }
    }

    /// Keeps string bodies up to `keep` bytes instead of [`DEFAULT_KEEP`].
    pub fn keep(mut self, keep: usize) -> Self {
        self.elider = Elider::new(keep);
        self
    }

    /// Events skipped so far because their data was over the cap even with long strings cut.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether the last event was skipped: then the stream's end cannot be judged (the
    /// skipped event may have been its terminal one).
    pub fn last_skipped(&self) -> bool {
        self.last_skipped
    }

    /// Feeds one chunk, calling `on_event` for every event it completes. An error from
    /// `on_event` is returned once the chunk is framed; framing itself never fails.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        if let Some(matched) = self.bom {
            // Strip one leading BOM, however it is split across chunks.
            let want = &BOM[matched..];
            let n = want.len().min(chunk.len());
            if chunk[..n] == want[..n] {
                chunk = &chunk[n..];
                self.bom = (matched + n < BOM.len()).then_some(matched + n);
                if self.bom.is_some() {
                    return Ok(());
                }
            } else {
                // Not a BOM: the bytes held back are the stream's first bytes.
                self.bom = None;
                let held = &BOM[..matched];
                let mut first = Ok(());
                self.frame(held, on_event, &mut first);
                self.frame(chunk, on_event, &mut first);
                return first;
            }
        }
        let mut first = Ok(());
        self.frame(chunk, on_event, &mut first);
        first
    }

    fn frame(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
        first: &mut Result<(), ParseError>,
    ) {
        if chunk.is_empty() {
            return;
        }
        self.bom = None;
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            match memchr::memchr2(b'\n', b'\r', chunk) {
                None => {
                    self.extend_line(chunk);
                    return;
                }
                Some(end) => {
                    self.extend_line(&chunk[..end]);
                    let cr = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    if cr {
                        match chunk.first() {
                            Some(b'\n') => chunk = &chunk[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    let result = self.end_line(on_event);
                    if first.is_ok() {
                        *first = result;
                    }
                }
            }
        }
    }

    /// Takes part of a line (no line ending in it).
    fn extend_line(&mut self, mut bytes: &[u8]) {
        while !bytes.is_empty() {
            match self.line {
                Line::Field => match memchr::memchr(b':', bytes) {
                    Some(at) => {
                        self.push_field(&bytes[..at]);
                        bytes = &bytes[at + 1..];
                        self.line = match self.field.as_slice() {
                            b"data" => {
                                self.start_data();
                                Line::Data { space: true }
                            }
                            b"event" => {
                                self.name.clear();
                                Line::Event { space: true }
                            }
                            _ => Line::Ignore,
                        };
                    }
                    None => {
                        self.push_field(bytes);
                        return;
                    }
                },
                Line::Data { space } => {
                    if space && bytes[0] == b' ' {
                        bytes = &bytes[1..];
                    }
                    self.line = Line::Data { space: false };
                    self.push_data(bytes);
                    return;
                }
                Line::Event { space } => {
                    if space && bytes[0] == b' ' {
                        bytes = &bytes[1..];
                    }
                    self.line = Line::Event { space: false };
                    let room = MAX_NAME.saturating_sub(self.name.len());
                    self.name.extend_from_slice(&bytes[..bytes.len().min(room)]);
                    return;
                }
                Line::Ignore => return,
            }
        }
    }

    fn push_field(&mut self, bytes: &[u8]) {
        if self.field.len() + bytes.len() > MAX_FIELD {
            self.line = Line::Ignore;
            self.field.clear();
        } else {
            self.field.extend_from_slice(bytes);
        }
    }

    /// A `data` line begins: lines after the first are joined with `\n`.
    fn start_data(&mut self) {
        if self.has_data {
            self.push_data(b"\n");
        }
        self.has_data = true;
    }

    fn push_data(&mut self, bytes: &[u8]) {
        if self.oversized {
            return;
        }
        let room = self.max_event.saturating_sub(self.data.len());
        if self.elider.push(bytes, &mut self.data, room) > 0 {
            self.oversized = true;
            self.data = Vec::new();
        }
    }

    fn end_line(
        &mut self,
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let line = std::mem::replace(&mut self.line, Line::Field);
        let mut result = Ok(());
        if line == Line::Field {
            // No colon: the whole line is the field name, its value empty.
            match self.field.as_slice() {
                b"" => result = self.dispatch(on_event),
                b"data" => self.start_data(),
                b"event" => self.name.clear(),
                _ => {}
            }
        }
        self.field.clear();
        result
    }

    fn dispatch(
        &mut self,
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let result = if self.oversized {
            self.skipped += 1;
            self.last_skipped = true;
            Ok(())
        } else if self.has_data {
            self.last_skipped = false;
            on_event(Event {
                name: &self.name,
                data: &self.data,
            })
        } else {
            Ok(())
        };
        self.name.clear();
        self.data.clear();
        if self.data.capacity() > 4 * DEFAULT_KEEP {
            // One large event should not hold its buffer for the rest of the stream.
            self.data = Vec::new();
        }
        self.has_data = false;
        self.oversized = false;
        self.elider.reset();
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[&[u8]], max: usize) -> Result<Vec<(String, String)>, ParseError> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for chunk in input {
            framer.push(chunk, &mut |e| {
                out.push((
                    String::from_utf8_lossy(e.name).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ));
                Ok(())
            })?;
        }
        Ok(out)
    }

    #[test]
    fn splits_events_on_blank_lines_with_any_line_ending() {
        let got = events(
            &[b"event: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\ndata: 3\r\r"],
            64,
        );
        let want = [("a", "1"), ("b", "2"), ("", "3")].map(|(n, d)| (n.into(), d.into()));
        assert_eq!(got, Ok(want.to_vec()));
    }

    #[test]
    fn joins_multi_line_data_and_skips_comments_and_unknown_fields() {
        let got = events(
            &[b": keepalive\nid: 7\nretry: 10\ndata: {\"a\":\ndata: 1}\nfoo\n\n"],
            64,
        );
        assert_eq!(got, Ok(vec![(String::new(), "{\"a\":\n1}".into())]));
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let got = events(&[b"data: x\r", b"\n", b"\r", b"\ndata: y\n\n"], 64);
        assert_eq!(
            got,
            Ok(vec![
                (String::new(), "x".into()),
                (String::new(), "y".into())
            ])
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert_eq!(events(&[b"event: ping\n\n"], 64), Ok(vec![]));
    }

    #[test]
    fn an_event_over_the_cap_is_skipped_and_framing_goes_on() {
        // 40 bytes of structure (no string to cut) over a 16-byte cap: skipped, counted.
        let mut framer = Framer::new(16);
        let mut out = Vec::new();
        for chunk in [&b"data: "[..], &[b'1'; 40], b"\n\ndata: 7\n\n"] {
            framer
                .push(chunk, &mut |e| {
                    out.push(e.data.to_vec());
                    Ok(())
                })
                .expect("framing never fails");
        }
        assert_eq!(out, vec![b"7".to_vec()]);
        assert_eq!(framer.skipped(), 1);
        let joined: &[&[u8]] = &[b"data: 0123456789\ndata: 0123456789\n\ndata: 8\n\n"];
        assert_eq!(events(joined, 16), Ok(vec![(String::new(), "8".into())]));
    }

    #[test]
    fn a_huge_string_is_cut_and_the_event_keeps_its_facts() {
        // gemini_sse_4k_image_event: a multi-MB base64 part, with usage after it.
        let image = "A".repeat(6_000_000);
        let event = format!(
            "data: {{\"parts\":[{{\"inlineData\":{{\"data\":\"{image}\"}}}}],\"usageMetadata\":{{\"promptTokenCount\":21}}}}\n\n"
        );
        let mut framer = Framer::new(64 << 10);
        let mut seen = Vec::new();
        for piece in event.as_bytes().chunks(16 << 10) {
            framer
                .push(piece, &mut |e| {
                    seen.push(serde_json::from_slice::<serde_json::Value>(e.data).expect("json"));
                    Ok(())
                })
                .expect("framed");
            assert!(framer.held() <= 64 << 10, "held {}", framer.held());
        }
        assert_eq!(seen.len(), 1);
        assert_eq!(seen[0]["usageMetadata"]["promptTokenCount"], 21);
        assert_eq!(framer.skipped(), 0);
    }

    #[test]
    fn one_leading_bom_is_dropped_however_split() {
        // gemini_sse_leading_bom.
        let stream = b"\xEF\xBB\xBFdata: 1\n\n";
        for at in 0..stream.len() {
            let (a, b) = stream.split_at(at);
            assert_eq!(
                events(&[a, b], 64),
                Ok(vec![(String::new(), "1".into())]),
                "split at {at}"
            );
        }
        // Only at the very start, and only one.
        let got = events(&[b"\xEF\xBB\xBF\xEF\xBB\xBFdata: 1\n\n"], 64);
        assert_eq!(got, Ok(vec![]));
        let got = events(&[b"\xEF\xBBdata: 1\n\n"], 64);
        assert_eq!(got, Ok(vec![]));
    }

    #[test]
    fn an_error_from_the_consumer_is_returned_and_framing_goes_on() {
        let mut framer = Framer::new(64);
        let mut n = 0;
        let result = framer.push(b"data: a\n\ndata: b\n\n", &mut |_| {
            n += 1;
            Err(ParseError::InvalidJson)
        });
        assert_eq!(result, Err(ParseError::InvalidJson));
        assert_eq!(n, 2);
    }
}
