//! Incremental decoder of the AWS event-stream framing (`application/vnd.amazon.eventstream`),
//! in which Amazon Bedrock Runtime streams `ConverseStream` and
//! `InvokeModelWithResponseStream` responses.
//!
//! Owns: cutting a byte stream that arrives in arbitrary pieces into messages, checking both
//! CRCs, and reading the headers llmtap needs (`:message-type`, `:event-type`,
//! `:exception-type`, `:error-code`, `:content-type`). Does not own: what a payload means (the
//! dialects do). A message reaches a dialect as an [`sse::Event`] ([`Decoder::push_events`]):
//! named by [`Message::event_name`], its payload as the data.
//!
//! The wire format (AWS SDK developer guides, "Event stream encoding"; smithy-rs
//! `aws-smithy-eventstream`, whose test vectors are checked in this file's tests): each
//! message is
//!
//! ```text
//! total length u32 BE │ headers length u32 BE │ prelude CRC32 (of the 8 bytes before)
//! headers (headers length bytes) │ payload │ message CRC32 (of every byte before it)
//! ```
//!
//! and each header is `name length u8, name, value type u8, value`, the value by type: 0 true
//! and 1 false (no bytes), 2 byte (i8), 3 short (i16 BE), 4 int (i32 BE), 5 long (i64 BE),
//! 6 bytes and 7 string (u16 BE length, then that many bytes), 8 timestamp (i64 BE,
//! milliseconds since the epoch), 9 uuid (16 bytes). The CRC is CRC-32/ISO-HDLC (`crc32fast`).
//!
//! Bounded memory: a message is held whole until its CRC is checked, up to `max_message`
//! bytes; one whose prelude declares more is skipped as it passes, never buffered, and
//! counted ([`Decoder::skipped`]), like the SSE framer's over-cap events. Payloads are not cut
//! by the [`Elider`](super::elide::Elider): an `InvokeModelWithResponseStream` chunk is
//! base64, which a cut would make unreadable, and every Bedrock payload is one small event.
//! A message whose own CRC fails, or whose headers do not parse, is skipped and counted
//! ([`Decoder::corrupt`]): its prelude was sound, so the next message still starts where it
//! said. A prelude whose CRC fails (or that declares an impossible length) means the framing
//! is lost: there is no marker to find the next message by, so the decoder reports
//! [`ParseError::InvalidFrame`] and reads nothing more.

use super::{ParseError, sse};

/// The `content-type` of an event-stream response body.
pub const CONTENT_TYPE: &str = "application/vnd.amazon.eventstream";

/// The prelude: total length, headers length, prelude CRC.
const PRELUDE: usize = 12;
/// The smallest message: a prelude and a message CRC, no headers, no payload.
const MIN_MESSAGE: usize = PRELUDE + 4;

/// [`Message::event_name`] of a `:message-type: exception` message: this prefix, then its
/// `:exception-type` (`exception:throttlingException`). Event types are Smithy member names,
/// which never hold a `:`, so no event can be mistaken for an exception.
pub const EXCEPTION_PREFIX: &[u8] = b"exception:";
/// [`Message::event_name`] of a `:message-type: error` message: this prefix, then its
/// `:error-code`.
pub const ERROR_PREFIX: &[u8] = b"error:";

/// One header value, by its wire type.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HeaderValue<'a> {
    /// Types 0 (`true`) and 1 (`false`).
    Bool(bool),
    /// Type 2: one signed byte.
    Byte(i8),
    /// Type 3: a signed 16-bit integer.
    Short(i16),
    /// Type 4: a signed 32-bit integer.
    Int(i32),
    /// Type 5: a signed 64-bit integer.
    Long(i64),
    /// Type 6: bytes.
    Bytes(&'a [u8]),
    /// Type 7: a string (UTF-8 by the spec; not checked here).
    String(&'a [u8]),
    /// Type 8: milliseconds since the Unix epoch.
    Timestamp(i64),
    /// Type 9: a UUID's 16 bytes.
    Uuid([u8; 16]),
}

/// One whole message whose CRCs and headers were checked. Borrowed from the decoder (or the
/// chunk); copy what you keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The headers' bytes, known to parse.
    headers: &'a [u8],
    /// The payload (Bedrock: one JSON object).
    pub payload: &'a [u8],
}

impl<'a> Message<'a> {
    /// Every header, in wire order.
    pub fn headers(&self) -> impl Iterator<Item = (&'a [u8], HeaderValue<'a>)> + use<'a> {
        let mut rest = self.headers;
        std::iter::from_fn(move || {
            let (header, after) = read_header(rest)?;
            rest = after;
            Some(header)
        })
    }

    /// The value of the last header named `name` (a repeated header: the last wins).
    pub fn header(&self, name: &str) -> Option<HeaderValue<'a>> {
        self.headers()
            .filter(|(n, _)| *n == name.as_bytes())
            .last()
            .map(|(_, v)| v)
    }

    /// The string header `name`, when it is a string.
    pub fn string(&self, name: &str) -> Option<&'a [u8]> {
        match self.header(name)? {
            HeaderValue::String(s) => Some(s),
            _ => None,
        }
    }

    /// `:message-type`: `event`, `exception` or `error`.
    pub fn message_type(&self) -> Option<&'a [u8]> {
        self.string(":message-type")
    }

    /// `:event-type` of an event (`contentBlockDelta`, `chunk`, …).
    pub fn event_type(&self) -> Option<&'a [u8]> {
        self.string(":event-type")
    }

    /// `:exception-type` of an exception (`throttlingException`, …).
    pub fn exception_type(&self) -> Option<&'a [u8]> {
        self.string(":exception-type")
    }

    /// `:error-code` of an error message.
    pub fn error_code(&self) -> Option<&'a [u8]> {
        self.string(":error-code")
    }

    /// `:content-type` of the payload (`application/json`).
    pub fn content_type(&self) -> Option<&'a [u8]> {
        self.string(":content-type")
    }

    /// The name this message goes by as an [`sse::Event`], written into
    /// `into` (cleared first), or `None` for a message type llmtap does not know:
    /// - `event` (or no `:message-type`): its `:event-type` (empty when absent);
    /// - `exception`: [`EXCEPTION_PREFIX`] + its `:exception-type`;
    /// - `error`: [`ERROR_PREFIX`] + its `:error-code`.
    pub fn event_name(&self, into: &mut Vec<u8>) -> Option<()> {
        into.clear();
        let (prefix, name): (&[u8], _) = match self.message_type() {
            None | Some(b"event") => (b"", self.event_type()),
            Some(b"exception") => (EXCEPTION_PREFIX, self.exception_type()),
            Some(b"error") => (ERROR_PREFIX, self.error_code()),
            Some(_) => return None,
        };
        into.extend_from_slice(prefix);
        into.extend_from_slice(name.unwrap_or_default());
        Some(())
    }
}

/// Incremental event-stream decoder. Memory is bounded by `max_message` whatever arrives.
#[derive(Debug)]
pub struct Decoder {
    /// The message being read, from its prelude on, when it did not arrive in one chunk.
    buf: Vec<u8>,
    /// Bytes still to pass of a message over the cap.
    skip: usize,
    max_message: usize,
    skipped: u64,
    corrupt: u64,
    /// The last message was skipped or corrupt (it may have been the terminal one).
    last_skipped: bool,
    /// A prelude failed: nothing more can be framed.
    lost: bool,
}

impl Decoder {
    /// `max_message` caps one whole message (prelude, headers, payload and CRC).
    pub fn new(max_message: usize) -> Self {
        Decoder {
            buf: Vec::new(),
            skip: 0,
            max_message: max_message.max(MIN_MESSAGE),
            skipped: 0,
            corrupt: 0,
            last_skipped: false,
            lost: false,
        }
    }

    /// Bytes held for the message being read, by capacity: what the observation budget
    /// charges.
    pub fn held(&self) -> usize {
        self.buf.capacity()
    }

    /// Messages skipped so far because their declared length was over the cap.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Messages skipped so far because their CRC failed or their headers did not parse.
    pub fn corrupt(&self) -> u64 {
        self.corrupt
    }

    /// Whether the last message was skipped or corrupt: then the stream's end cannot be
    /// judged (it may have been the terminal one).
    pub fn last_skipped(&self) -> bool {
        self.last_skipped
    }

    /// Whether the bytes so far end inside a message (a stream that stops here was cut).
    pub fn mid_message(&self) -> bool {
        !self.buf.is_empty() || self.skip > 0
    }

    /// Feeds one chunk, calling `on_message` for every whole, sound message it completes. An
    /// error from `on_message` is returned once the chunk is decoded. A prelude that fails
    /// its CRC fails the stream: this push and every later one return
    /// [`ParseError::InvalidFrame`] (after the messages before it were handed on).
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        on_message: &mut dyn FnMut(Message<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let mut first = Ok(());
        while !chunk.is_empty() {
            if self.lost {
                return Err(ParseError::InvalidFrame);
            }
            if self.skip > 0 {
                let n = self.skip.min(chunk.len());
                self.skip -= n;
                chunk = &chunk[n..];
                continue;
            }
            if self.buf.is_empty() && chunk.len() >= PRELUDE {
                // The common case: a whole message in the chunk is read in place.
                let total = self.prelude(&chunk[..PRELUDE])?;
                if total > self.max_message {
                    chunk = &chunk[PRELUDE..];
                    self.skip_message(total);
                    continue;
                }
                if chunk.len() >= total {
                    let (message, rest) = chunk.split_at(total);
                    self.dispatch(message, on_message, &mut first);
                    chunk = rest;
                    continue;
                }
            }
            if self.buf.len() < PRELUDE {
                let n = (PRELUDE - self.buf.len()).min(chunk.len());
                self.buf.extend_from_slice(&chunk[..n]);
                chunk = &chunk[n..];
                if self.buf.len() < PRELUDE {
                    break;
                }
                let mut prelude = [0; PRELUDE];
                prelude.copy_from_slice(&self.buf);
                let total = self.prelude(&prelude)?;
                if total > self.max_message {
                    self.buf = Vec::new();
                    self.skip_message(total);
                    continue;
                }
                // No reservation up front: the buffer grows as bytes arrive, so a prelude
                // that declares a large message costs nothing until its bytes come.
            }
            let total = declared(&self.buf);
            let n = (total - self.buf.len()).min(chunk.len());
            // Grow by doubling, never past the message's declared length (≤ the cap).
            let need = self.buf.len() + n;
            if need > self.buf.capacity() {
                let target = need.max(self.buf.capacity().saturating_mul(2)).min(total);
                self.buf.reserve_exact(target - self.buf.len());
            }
            self.buf.extend_from_slice(&chunk[..n]);
            chunk = &chunk[n..];
            if self.buf.len() == total {
                let message = std::mem::take(&mut self.buf);
                self.dispatch(&message, on_message, &mut first);
                if message.capacity() <= 4 * super::sse::DEFAULT_KEEP {
                    // Keep a small buffer for the next message; let a large one go.
                    self.buf = message;
                    self.buf.clear();
                }
            }
        }
        first
    }

    /// [`Decoder::push`], each message handed on as the [`sse::Event`] its
    /// [`Message::event_name`] names, with its payload as the data; a message of an unknown
    /// `:message-type` is not handed on. The one mapping the stream pipeline and the tests use.
    pub fn push_events(
        &mut self,
        chunk: &[u8],
        on_event: &mut dyn FnMut(sse::Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let mut name = Vec::new();
        self.push(chunk, &mut |message| match message.event_name(&mut name) {
            Some(()) => on_event(sse::Event {
                name: &name,
                data: message.payload,
            }),
            None => Ok(()),
        })
    }

    /// Checks a prelude and returns the message's total length. A bad one loses the framing.
    fn prelude(&mut self, prelude: &[u8]) -> Result<usize, ParseError> {
        let total = declared(prelude);
        let headers = be_u32(&prelude[4..8]) as usize;
        let sound = crc32fast::hash(&prelude[..8]) == be_u32(&prelude[8..12])
            && total >= MIN_MESSAGE
            && headers <= total - MIN_MESSAGE;
        if sound {
            Ok(total)
        } else {
            self.lost = true;
            self.buf = Vec::new();
            Err(ParseError::InvalidFrame)
        }
    }

    /// A message over the cap: its bytes after the prelude pass unread.
    fn skip_message(&mut self, total: usize) {
        self.skip = total - PRELUDE;
        self.skipped += 1;
        self.last_skipped = true;
    }

    /// A whole message (prelude checked): hands it on when its CRC and headers are sound.
    fn dispatch(
        &mut self,
        bytes: &[u8],
        on_message: &mut dyn FnMut(Message<'_>) -> Result<(), ParseError>,
        first: &mut Result<(), ParseError>,
    ) {
        let (body, crc) = bytes.split_at(bytes.len() - 4);
        let headers_len = be_u32(&bytes[4..8]) as usize;
        let headers = &body[PRELUDE..PRELUDE + headers_len];
        if crc32fast::hash(body) != be_u32(crc) || !headers_parse(headers) {
            self.corrupt += 1;
            self.last_skipped = true;
            return;
        }
        self.last_skipped = false;
        let message = Message {
            headers,
            payload: &body[PRELUDE + headers_len..],
        };
        let result = on_message(message);
        if first.is_ok() {
            *first = result;
        }
    }
}

/// The total length a prelude declares.
fn declared(prelude: &[u8]) -> usize {
    be_u32(&prelude[..4]) as usize
}

fn be_u32(bytes: &[u8]) -> u32 {
    u32::from_be_bytes([bytes[0], bytes[1], bytes[2], bytes[3]])
}

/// Whether `headers` is a whole number of well-formed headers.
fn headers_parse(mut headers: &[u8]) -> bool {
    while !headers.is_empty() {
        match read_header(headers) {
            Some((_, rest)) => headers = rest,
            None => return false,
        }
    }
    true
}

/// `n` bytes off the front of `bytes`.
fn take(bytes: &[u8], n: usize) -> Option<(&[u8], &[u8])> {
    (bytes.len() >= n).then(|| bytes.split_at(n))
}

/// One header: its name and value.
type Header<'a> = (&'a [u8], HeaderValue<'a>);

/// One header off the front of `bytes` and the bytes after it, or `None` when it is cut short
/// or of an unknown type.
fn read_header(bytes: &[u8]) -> Option<(Header<'_>, &[u8])> {
    let (&name_len, rest) = bytes.split_first()?;
    let (name, rest) = take(rest, name_len as usize)?;
    let (&kind, rest) = rest.split_first()?;
    let fixed = |rest, n| take(rest, n);
    let (value, rest) = match kind {
        0 => (HeaderValue::Bool(true), rest),
        1 => (HeaderValue::Bool(false), rest),
        2 => {
            let (b, rest) = fixed(rest, 1)?;
            (HeaderValue::Byte(i8::from_be_bytes([b[0]])), rest)
        }
        3 => {
            let (b, rest) = fixed(rest, 2)?;
            (HeaderValue::Short(i16::from_be_bytes([b[0], b[1]])), rest)
        }
        4 => {
            let (b, rest) = fixed(rest, 4)?;
            let n = i32::from_be_bytes(b.try_into().ok()?);
            (HeaderValue::Int(n), rest)
        }
        5 | 8 => {
            let (b, rest) = fixed(rest, 8)?;
            let n = i64::from_be_bytes(b.try_into().ok()?);
            let value = if kind == 5 {
                HeaderValue::Long(n)
            } else {
                HeaderValue::Timestamp(n)
            };
            (value, rest)
        }
        6 | 7 => {
            let (len, rest) = fixed(rest, 2)?;
            let (b, rest) = take(rest, u16::from_be_bytes([len[0], len[1]]) as usize)?;
            let value = if kind == 6 {
                HeaderValue::Bytes(b)
            } else {
                HeaderValue::String(b)
            };
            (value, rest)
        }
        9 => {
            let (b, rest) = fixed(rest, 16)?;
            (HeaderValue::Uuid(b.try_into().ok()?), rest)
        }
        _ => return None,
    };
    Some(((name, value), rest))
}

#[cfg(test)]
mod tests;
