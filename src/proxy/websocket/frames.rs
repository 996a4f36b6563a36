//! Passive RFC 6455 frame decoding for one direction of a relayed WebSocket: [`Decoder`]
//! turns the bytes as relayed, split anywhere, into whole messages for a
//! [`MessageObserver`]: unmasked, fragments joined, and inflated when `permessage-deflate`
//! (RFC 7692) was negotiated, as [`Deflate`] reads it from the upstream's `101`.
//!
//! Owns: frame headers, masking, reassembly, inflation, the message caps and text elision
//! that bound its memory, and when a direction stops being decoded. Does not own: the relay
//! (`proxy::websocket`, which forwards every byte before showing it here), the observation
//! budget (the relay charges [`Decoder::held`]), or what the messages mean
//! (`exchange::WsSession`).

use crate::{
    dialects::elide::Elider,
    exchange::{MessageObserver, Side},
};

/// Largest message (reassembled, and again after decompression) decoded for observation;
/// larger ones are still relayed, and skipped by the decoder. With text elision on
/// ([`MessageObserver::text_keep`]) the cap applies to the text once its long strings are
/// cut, so a text message of any size is observed.
const MAX_MESSAGE: usize = 16 << 20;
/// Most bytes one compressed message may inflate to while being observed (the same bound as
/// a compressed HTTP body's decoded bytes): past it the message is skipped.
const MAX_INFLATED: u64 = 64 << 20;
/// Inflated bytes go through this much heap at a time when text is elided.
const INFLATE_CHUNK: usize = 16 * 1024;

/// `permessage-deflate` as negotiated in the upstream's `101` (RFC 7692).
#[derive(Debug, Clone, Copy, Default)]
pub struct Deflate {
    /// The upstream accepted `permessage-deflate`: messages with RSV1 set are compressed.
    pub enabled: bool,
    /// `client_no_context_takeover` (RFC 7692 §7.1.1.2): each client message is compressed
    /// on its own, so the client's inflater is reset after each message.
    pub client_no_context_takeover: bool,
    /// `server_no_context_takeover` (RFC 7692 §7.1.1.1): the same for the server's
    /// messages.
    pub server_no_context_takeover: bool,
}

impl Deflate {
    /// Reads the `Sec-WebSocket-Extensions` value of the upstream's `101`: the first
    /// `permessage-deflate` offer and its parameters (window bits do not matter to an
    /// inflater with a 32 KiB window). No header, or no such extension: disabled.
    pub fn negotiated(extensions: Option<&str>) -> Deflate {
        let Some(ext) = extensions else {
            return Deflate::default();
        };
        // Only the first accepted extension offer matters; servers answer with one.
        let Some(pmd) = ext
            .split(',')
            .map(str::trim)
            .find(|e| e.starts_with("permessage-deflate"))
        else {
            return Deflate::default();
        };
        let params: Vec<&str> = pmd.split(';').map(str::trim).collect();
        Deflate {
            enabled: true,
            client_no_context_takeover: params.contains(&"client_no_context_takeover"),
            server_no_context_takeover: params.contains(&"server_no_context_takeover"),
        }
    }
}

/// Incremental RFC 6455 frame decoder for one direction, with message reassembly and
/// `permessage-deflate` inflation. Observation only: nothing it does touches the relay.
///
/// Memory is bounded per direction: the bytes of a frame header (at most 14), and the
/// message being reassembled, which payload bytes join as they arrive (unmasked in place,
/// inflated on the fly) and which never grows past [`MAX_MESSAGE`]. A message over the cap
/// (one frame, the fragments together, or the inflated text) is skipped: its remaining
/// payload is counted down without being kept, the observer hears `on_skipped` once, and
/// decoding resumes at the next frame header.
///
/// Text messages of an observer that asks for it ([`MessageObserver::text_keep`]) join the
/// payload through an [`Elider`], a piece at a time (unmasked and inflated in 4 and 16 KiB
/// steps): the cap is then on the text kept once its long strings are cut, so a text message
/// of any size is observed; one still over the cap is read to its end and not kept (a
/// compressed one is still inflated, up to 64 MiB, so the inflater stays in step).
///
/// Protocol violations and corrupt deflate data stop decoding that direction for good
/// (`on_decode_error`), and so does a skipped compressed message under context takeover:
/// its deflate stream is the dictionary of every later message, so once part of it went
/// uninflated the inflater is out of step and every later message would decode to garbage
/// or fail. Keeping it in step would mean inflating (and throwing away) a message of any
/// size on the relay task; a compressed message can expand about a thousandfold, which
/// is unbounded work on the data path.
pub struct Decoder {
    /// The direction decoded; the relay names it when the budget makes it skip a message.
    pub(super) side: Side,
    deflate: bool,
    takeover: bool,
    inflater: flate2::Decompress,
    /// The next frame's header, as far as it has arrived.
    head: [u8; MAX_HEADER],
    head_len: usize,
    /// The frame whose payload is arriving (its header is complete).
    frame: Option<Payload>,
    message: Option<Message>,
    failed: bool,
    /// Cut text messages' long strings to this many bytes ([`MessageObserver::text_keep`]).
    keep: Option<usize>,
}

/// Longest frame header: 2 bytes, a 64-bit length, a 4-byte mask.
const MAX_HEADER: usize = 14;

/// Smallest step by which a message buffer grows (the cap still applies).
const MIN_GROWTH: usize = 16 * 1024;

/// Unmasked compressed bytes go through this much stack at a time.
const UNMASK_CHUNK: usize = 4 * 1024;

/// The frame being received, after its header.
struct Payload {
    fin: bool,
    /// Text, binary or continuation; not a control frame (whose payload is ignored).
    data: bool,
    mask: Option<[u8; 4]>,
    /// Payload bytes already seen: where the next byte sits in the mask's cycle.
    seen: u64,
    remaining: u64,
}

/// The message being reassembled.
struct Message {
    text: bool,
    compressed: bool,
    /// Payload bytes announced by its frame headers so far (compressed bytes if compressed).
    wire: u64,
    /// The payload so far, unmasked and (if compressed) inflated, long strings cut when
    /// `elider` is set. Empty once skipped.
    payload: Vec<u8>,
    /// A text message with elision on: bytes join the payload through it.
    elider: Option<Elider>,
    /// Bytes inflated so far (compressed messages).
    inflated: u64,
    /// Elided text still went over the cap: read to its end, not kept (see
    /// [`append_elided`]).
    overflowed: bool,
    /// Where compressed elided text is inflated, [`INFLATE_CHUNK`] bytes at a time
    /// (allocated on first use, once per message).
    inflate_buf: Vec<u8>,
    /// Over the cap: the rest of it is counted down, not kept.
    skipped: bool,
}

/// Why decoding of a direction stops for good.
struct Undecodable;

enum InflateError {
    TooLarge,
    Corrupt,
}

impl Decoder {
    /// A decoder for the messages `side` sends. `deflate`: `permessage-deflate` was
    /// negotiated; `context_takeover`: that side's compressor keeps its window across
    /// messages (the negotiated `*_no_context_takeover` was absent).
    pub fn new(side: Side, deflate: bool, context_takeover: bool) -> Decoder {
        Decoder {
            side,
            deflate,
            takeover: context_takeover,
            inflater: flate2::Decompress::new(false),
            head: [0; MAX_HEADER],
            head_len: 0,
            frame: None,
            message: None,
            failed: false,
            keep: None,
        }
    }

    /// Cuts text messages' string bodies longer than `keep` bytes as they are reassembled.
    pub fn text_keep(mut self, keep: Option<usize>) -> Decoder {
        self.keep = keep;
        self
    }

    /// Bytes held for the frame and message being received: the partial header and the
    /// reassembly buffer's allocation. Not counted: the inflater's fixed window (about
    /// 40 KiB with `permessage-deflate`) and the inflated copy of a message that is built
    /// and dropped within one `push`.
    pub fn held(&self) -> usize {
        self.head_len
            + self
                .message
                .as_ref()
                .map_or(0, |m| m.payload.capacity() + m.inflate_buf.capacity())
    }

    /// Skips the message being received (the observation budget is spent): its buffer is
    /// freed and the rest of it counted down. Under context takeover a compressed message
    /// cannot be skipped, and decoding of this direction stops instead.
    pub fn skip_message(&mut self, observer: &mut dyn MessageObserver) {
        let takeover = self.takeover;
        let Some(message) = self.message.as_mut().filter(|m| !m.skipped) else {
            return;
        };
        if skip(message, takeover).is_err() {
            self.failed = true;
            self.frame = None;
            self.message = None;
            observer.on_decode_error(self.side);
        }
    }

    /// Decodes the next bytes of this direction, as relayed, split anywhere: each message
    /// completed is handed to `observer` (`on_message`, or `on_skipped` when over the cap).
    /// After a protocol violation or corrupt deflate data, `observer` hears
    /// `on_decode_error` once and every later push is ignored.
    pub fn push(&mut self, mut bytes: &[u8], observer: &mut dyn MessageObserver) {
        if self.failed {
            return;
        }
        if let Err(Undecodable) = self.decode(&mut bytes, observer) {
            self.failed = true;
            self.frame = None;
            self.message = None;
            observer.on_decode_error(self.side);
        }
    }

    fn decode(
        &mut self,
        bytes: &mut &[u8],
        observer: &mut dyn MessageObserver,
    ) -> Result<(), Undecodable> {
        loop {
            if self.frame.is_none() {
                if !self.read_header(bytes) {
                    return Ok(());
                }
                self.start_frame()?;
            }
            let remaining = self.frame.as_ref().map_or(0, |f| f.remaining);
            let n = usize::try_from(remaining).map_or(bytes.len(), |r| r.min(bytes.len()));
            let (chunk, rest) = bytes.split_at(n);
            *bytes = rest;
            self.take_payload(chunk)?;
            if self.frame.as_ref().is_some_and(|f| f.remaining > 0) {
                return Ok(());
            }
            self.end_frame(observer)?;
        }
    }

    /// Moves header bytes from `bytes` into `head`; true once the header is complete.
    fn read_header(&mut self, bytes: &mut &[u8]) -> bool {
        loop {
            let need = header_len(&self.head[..self.head_len]);
            if self.head_len == need {
                return true;
            }
            if bytes.is_empty() {
                return false;
            }
            let n = (need - self.head_len).min(bytes.len());
            self.head[self.head_len..self.head_len + n].copy_from_slice(&bytes[..n]);
            self.head_len += n;
            *bytes = &bytes[n..];
        }
    }

    /// Parses the complete header in `head` and opens its frame (and message).
    fn start_frame(&mut self) -> Result<(), Undecodable> {
        let b = &self.head[..self.head_len];
        let (fin, rsv1, opcode) = (b[0] & 0x80 != 0, b[0] & 0x40 != 0, b[0] & 0x0f);
        let (len, at) = match b[1] & 0x7f {
            126 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(l), 10)
            }
            n => (u64::from(n), 2),
        };
        let mask = (b[1] & 0x80 != 0).then(|| [b[at], b[at + 1], b[at + 2], b[at + 3]]);
        self.head_len = 0;
        let data = match opcode {
            // Control frames (close, ping, pong) may come between fragments; not messages.
            0x8..=0xf => false,
            0x1 | 0x2 => {
                if self.message.is_some() {
                    return Err(Undecodable);
                }
                let text = opcode == 0x1;
                self.message = Some(Message {
                    text,
                    compressed: rsv1 && self.deflate,
                    wire: 0,
                    payload: Vec::new(),
                    elider: self.keep.filter(|_| text).map(Elider::new),
                    inflated: 0,
                    overflowed: false,
                    inflate_buf: Vec::new(),
                    skipped: false,
                });
                true
            }
            0x0 if self.message.is_some() => true,
            _ => return Err(Undecodable),
        };
        if data {
            let message = self.message.as_mut().ok_or(Undecodable)?;
            message.wire = message.wire.saturating_add(len);
            // Elided text is measured once cut, as it joins the payload.
            if message.wire > MAX_MESSAGE as u64 && message.elider.is_none() {
                skip(message, self.takeover)?;
            }
        }
        self.frame = Some(Payload {
            fin,
            data,
            mask,
            seen: 0,
            remaining: len,
        });
        Ok(())
    }

    /// Adds payload bytes of the current frame to its message, as they arrive.
    fn take_payload(&mut self, chunk: &[u8]) -> Result<(), Undecodable> {
        let Some(frame) = self.frame.as_mut() else {
            return Ok(());
        };
        let phase = frame.seen;
        frame.seen += chunk.len() as u64;
        frame.remaining -= chunk.len() as u64;
        if !frame.data || chunk.is_empty() {
            return Ok(());
        }
        let Some(message) = self.message.as_mut().filter(|m| !m.skipped) else {
            return Ok(());
        };
        if message.elider.is_some() {
            return self.take_elided(chunk, frame_mask(self.frame.as_ref()), phase);
        }
        if !message.compressed {
            let start = message.payload.len();
            // `wire` already counts this whole frame, and is within the cap.
            let limit = usize::try_from(message.wire).unwrap_or(MAX_MESSAGE);
            grow(&mut message.payload, chunk.len(), limit);
            message.payload.extend_from_slice(chunk);
            if let Some(mask) = frame.mask {
                unmask(&mut message.payload[start..], mask, phase);
            }
            return Ok(());
        }
        let inflated = match frame.mask {
            None => inflate(&mut self.inflater, chunk, &mut message.payload),
            Some(mask) => {
                let mut scratch = [0u8; UNMASK_CHUNK];
                let mut result = Ok(());
                for (i, piece) in chunk.chunks(UNMASK_CHUNK).enumerate() {
                    let scratch = &mut scratch[..piece.len()];
                    scratch.copy_from_slice(piece);
                    unmask(scratch, mask, phase + (i * UNMASK_CHUNK) as u64);
                    result = inflate(&mut self.inflater, scratch, &mut message.payload);
                    if result.is_err() {
                        break;
                    }
                }
                result
            }
        };
        match inflated {
            Ok(()) => Ok(()),
            Err(InflateError::TooLarge) => skip(message, self.takeover),
            Err(InflateError::Corrupt) => Err(Undecodable),
        }
    }

    /// Payload bytes of a text message whose long strings are cut: unmasked and inflated a
    /// piece at a time, each piece cut as it joins the payload, whose cap is then on what is
    /// kept. A compressed message is skipped past [`MAX_INFLATED`] inflated bytes.
    fn take_elided(
        &mut self,
        chunk: &[u8],
        mask: Option<[u8; 4]>,
        phase: u64,
    ) -> Result<(), Undecodable> {
        let takeover = self.takeover;
        let Some(message) = self.message.as_mut().filter(|m| !m.skipped) else {
            return Ok(());
        };
        let mut scratch = [0u8; UNMASK_CHUNK];
        for (i, piece) in chunk.chunks(UNMASK_CHUNK).enumerate() {
            let piece = match mask {
                Some(mask) => {
                    let scratch = &mut scratch[..piece.len()];
                    scratch.copy_from_slice(piece);
                    unmask(scratch, mask, phase + (i * UNMASK_CHUNK) as u64);
                    &*scratch
                }
                None => piece,
            };
            let result = if message.compressed {
                inflate_elided(&mut self.inflater, piece, message)
            } else {
                append_elided(message, piece);
                Ok(())
            };
            match result {
                Ok(()) => {}
                Err(InflateError::TooLarge) => return skip(message, takeover),
                Err(InflateError::Corrupt) => return Err(Undecodable),
            }
        }
        Ok(())
    }

    /// The current frame's payload is complete: a final data frame completes its message.
    fn end_frame(&mut self, observer: &mut dyn MessageObserver) -> Result<(), Undecodable> {
        let Some(frame) = self.frame.take() else {
            return Ok(());
        };
        if !(frame.data && frame.fin) {
            return Ok(());
        }
        let Some(mut message) = self.message.take() else {
            return Ok(());
        };
        if message.compressed {
            if !message.skipped {
                // The sync-flush tail the sender stripped (RFC 7692 §7.2.2).
                const TAIL: [u8; 4] = [0x00, 0x00, 0xff, 0xff];
                let result = if message.elider.is_some() {
                    inflate_elided(&mut self.inflater, &TAIL, &mut message)
                } else {
                    inflate(&mut self.inflater, &TAIL, &mut message.payload)
                };
                match result {
                    Ok(()) => {}
                    Err(InflateError::TooLarge) => skip(&mut message, self.takeover)?,
                    Err(InflateError::Corrupt) => return Err(Undecodable),
                }
            }
            if !self.takeover {
                self.inflater.reset(false);
            }
        }
        if message.skipped || message.overflowed {
            observer.on_skipped(self.side);
        } else {
            observer.on_message(self.side, message.text, &message.payload);
        }
        Ok(())
    }
}

/// How long a header is, judging by the bytes of it seen so far (2 until those arrive).
fn header_len(head: &[u8]) -> usize {
    if head.len() < 2 {
        return 2;
    }
    let extended = match head[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if head[1] & 0x80 != 0 { 4 } else { 0 };
    2 + extended + mask
}

/// The mask of the frame being received.
fn frame_mask(frame: Option<&Payload>) -> Option<[u8; 4]> {
    frame.and_then(|f| f.mask)
}

/// Cuts `piece` into the message's payload under the cap. Once the kept text went over the
/// cap the message is `overflowed`: its payload is freed and the rest is read (a compressed
/// message must still be inflated, to keep the inflater in step) but not kept.
fn append_elided(message: &mut Message, piece: &[u8]) {
    let Some(elider) = message.elider.as_mut().filter(|_| !message.overflowed) else {
        return;
    };
    let room = MAX_MESSAGE.saturating_sub(message.payload.len());
    grow(&mut message.payload, piece.len().min(room), MAX_MESSAGE);
    if elider.push(piece, &mut message.payload, room) > 0 {
        message.overflowed = true;
        message.payload = Vec::new();
    }
}

/// Inflates `input` [`INFLATE_CHUNK`] bytes at a time, each piece cut into the payload;
/// too large past [`MAX_INFLATED`] inflated bytes.
fn inflate_elided(
    inflater: &mut flate2::Decompress,
    mut input: &[u8],
    message: &mut Message,
) -> Result<(), InflateError> {
    let out = &mut message.inflate_buf;
    if out.is_empty() {
        out.resize(INFLATE_CHUNK, 0);
    }
    let mut out = std::mem::take(out);
    let result = inflate_pieces(inflater, &mut input, message, &mut out);
    message.inflate_buf = out;
    result
}

fn inflate_pieces(
    inflater: &mut flate2::Decompress,
    input: &mut &[u8],
    message: &mut Message,
    out: &mut [u8],
) -> Result<(), InflateError> {
    loop {
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        inflater
            .decompress(input, out, flate2::FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        let used = (inflater.total_in() - before_in) as usize;
        let produced = (inflater.total_out() - before_out) as usize;
        *input = &input[used..];
        message.inflated += produced as u64;
        if message.inflated > MAX_INFLATED {
            return Err(InflateError::TooLarge);
        }
        append_elided(message, &out[..produced]);
        // All input taken and room left over: the inflater has nothing more to give.
        if (input.is_empty() && produced < out.len()) || (used == 0 && produced == 0) {
            return Ok(());
        }
    }
}

/// Marks a message over the cap as skipped and frees what it held. Under context takeover
/// a compressed message cannot be skipped (see [`Decoder`]): decoding stops instead.
fn skip(message: &mut Message, takeover: bool) -> Result<(), Undecodable> {
    if message.compressed && takeover {
        return Err(Undecodable);
    }
    message.skipped = true;
    message.payload = Vec::new();
    Ok(())
}

/// Unmasks bytes that start `phase` bytes into a frame's payload.
fn unmask(bytes: &mut [u8], mask: [u8; 4], phase: u64) {
    let offset = (phase % 4) as usize;
    bytes
        .iter_mut()
        .enumerate()
        .for_each(|(i, b)| *b ^= mask[(offset + i) % 4]);
}

/// Makes room for `more` bytes, doubling (so appends stay linear) but never past `limit`
/// (the most the buffer can legitimately need), so no allocation outgrows the cap.
fn grow(buf: &mut Vec<u8>, more: usize, limit: usize) {
    let need = buf.len() + more;
    if need <= buf.capacity() {
        return;
    }
    let target = (buf.capacity() * 2).max(MIN_GROWTH).min(limit).max(need);
    buf.reserve_exact(target - buf.len());
}

/// Inflates `input` onto `out`, which may grow to one byte over [`MAX_MESSAGE`] (how an
/// oversized message is detected).
fn inflate(
    inflater: &mut flate2::Decompress,
    mut input: &[u8],
    out: &mut Vec<u8>,
) -> Result<(), InflateError> {
    loop {
        if out.len() > MAX_MESSAGE {
            return Err(InflateError::TooLarge);
        }
        grow(out, 1, MAX_MESSAGE + 1);
        let (before_in, before_out) = (inflater.total_in(), inflater.total_out());
        inflater
            .decompress_vec(input, out, flate2::FlushDecompress::Sync)
            .map_err(|_| InflateError::Corrupt)?;
        let used = (inflater.total_in() - before_in) as usize;
        let produced = inflater.total_out() - before_out;
        input = &input[used..];
        if out.len() > MAX_MESSAGE {
            return Err(InflateError::TooLarge);
        }
        // All input taken and room left over: the inflater has nothing more to give.
        if input.is_empty() && out.len() < out.capacity() {
            return Ok(());
        }
        if used == 0 && produced == 0 {
            return Ok(());
        }
    }
}

#[cfg(test)]
mod tests;
