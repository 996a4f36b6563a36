//! WebSocket upgrades to intercepted LLM endpoints (Codex CLI's Responses socket), handled
//! by llmtap itself rather than by hudsucker.
//!
//! Owns: dialing the upstream through llmtap's own connector (roots, `--resolve`), sending
//! the client's upgrade request as it is, giving the client the upstream's real answer (its
//! `101` with `Sec-WebSocket-Accept`, protocol and extensions, or its refusal), splicing the
//! two upgraded streams byte for byte, and decoding frames passively on the side (masking,
//! fragmentation, `permessage-deflate`) into whole messages for an observer.
//!
//! hudsucker's own WebSocket path answers `101` before dialing, drops the negotiated
//! protocol and re-frames messages, which is why this exists. Does not own: what the
//! messages mean (`exchange::WsSession`).

use std::{
    future::poll_fn,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use hudsucker::{
    Body,
    hyper::{
        self, Request, Response, StatusCode, Uri, client::conn::http1, header, upgrade::Upgraded,
    },
    hyper_util::rt::TokioIo,
};
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tower_service::Service as _;

use super::upstream::Upstream;
use crate::{budget::Charge, dialects::elide::Elider};

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

pub use crate::exchange::{MessageObserver, Side};

/// Why an upgrade could not be relayed; the handler answers the client 502, or 403 for
/// [`WsError::Refused`] and 504 for [`WsError::Timeout`].
#[derive(Debug, thiserror::Error)]
pub enum WsError {
    /// The upstream could not be dialled (TCP, TLS, connect timeout), or the request's URI
    /// could not be rebuilt.
    #[error("cannot reach upstream: {0}")]
    Connect(String),
    /// The destination policy refused an address the upstream's name resolved to.
    #[error("destination refused by llmtap's policy ({})", .0.as_str())]
    Refused(crate::policy::Refusal),
    /// The HTTP/1.1 handshake with the upstream, or sending the upgrade request, failed.
    #[error("upstream handshake failed: {0}")]
    Handshake(hyper::Error),
    /// No response head to the upgrade request within `--response-timeout`.
    #[error("upstream sent no upgrade answer within {0:?}")]
    Timeout(Duration),
}

/// The waits of one relayed socket.
#[derive(Debug, Clone, Copy)]
pub struct WsTimeouts {
    /// The upstream's answer to the upgrade request.
    pub response: Duration,
    /// No upstream byte while a call is open.
    pub stream_idle: Duration,
}

/// Sends the client's upgrade request to the upstream and returns the upstream's response
/// for the client. On `101`, `on_open` is called with the negotiated extensions and gets the
/// observer for the session, and both sides are spliced in a background task.
pub async fn relay(
    mut req: Request<Body>,
    mut connector: Upstream,
    timeouts: WsTimeouts,
    on_open: impl FnOnce(Option<&str>) -> Box<dyn MessageObserver> + Send + 'static,
) -> Result<Response<Body>, WsError> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let uri = req.uri().clone();
    let host = uri.host().unwrap_or_default().to_owned();
    let scheme = if uri.scheme_str() == Some("http") {
        "http"
    } else {
        "https"
    };
    let port = uri
        .port_u16()
        .unwrap_or(if scheme == "http" { 80 } else { 443 });
    let dial: Uri = format!("{scheme}://{host}:{port}/")
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| WsError::Connect(e.to_string()))?;
    poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(|e| WsError::Connect(e.to_string()))?;
    let io = connector.call(dial).await.map_err(|e| {
        match e.downcast_ref::<super::upstream::DestinationRefused>() {
            Some(refused) => WsError::Refused(refused.0),
            None => WsError::Connect(e.to_string()),
        }
    })?;
    let (mut sender, conn) = http1::handshake(io).await.map_err(WsError::Handshake)?;
    tokio::spawn(async move {
        let _ = conn.with_upgrades().await;
    });

    // Origin-form, as the client sent it; every header (Host, key, version, extensions,
    // protocols, auth) unchanged.
    let (mut parts, _) = req.into_parts();
    parts.uri = uri
        .path_and_query()
        .map(|pq| pq.as_str())
        .unwrap_or("/")
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| WsError::Connect(e.to_string()))?;
    parts.version = hyper::Version::HTTP_11;
    // Hop-by-hop fields (RFC 9110 §7.6.1, proxy credentials included) stay here; the
    // upgrade's own `Connection: Upgrade` and `Upgrade: websocket` are the point of the
    // request and are sent as such.
    hudsucker::strip_hop_by_hop(&mut parts.headers);
    parts.headers.insert(
        header::CONNECTION,
        header::HeaderValue::from_static("Upgrade"),
    );
    parts.headers.insert(
        header::UPGRADE,
        header::HeaderValue::from_static("websocket"),
    );
    if !parts.headers.contains_key(header::HOST) {
        let value = if port == if scheme == "http" { 80 } else { 443 } {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            parts.headers.insert(header::HOST, v);
        }
    }
    let upstream_req = Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
    let mut res = tokio::time::timeout(timeouts.response, sender.send_request(upstream_req))
        .await
        .map_err(|_| WsError::Timeout(timeouts.response))?
        .map_err(WsError::Handshake)?;
    if res.status() != StatusCode::SWITCHING_PROTOCOLS {
        // The real refusal, body and all.
        return Ok(res.map(Body::from));
    }
    let extensions = res
        .headers()
        .get(header::SEC_WEBSOCKET_EXTENSIONS)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    let upstream_upgrade = hyper::upgrade::on(&mut res);
    let observer = on_open(extensions.as_deref());
    let deflate = Deflate::negotiated(extensions.as_deref());
    tokio::spawn(async move {
        match tokio::try_join!(client_upgrade, upstream_upgrade) {
            Ok((client, upstream)) => {
                splice(client, upstream, observer, deflate, timeouts.stream_idle).await;
            }
            Err(err) => {
                tracing::warn!(error = %err, "websocket upgrade did not complete");
                let mut observer = observer;
                observer.on_close(Side::Client);
            }
        }
    });
    let (parts, _) = res.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

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

async fn splice(
    client: Upgraded,
    upstream: Upgraded,
    observer: Box<dyn MessageObserver>,
    deflate: Deflate,
    stream_idle: Duration,
) {
    let keep = observer.text_keep();
    let observer = Arc::new(Mutex::new(observer));
    let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
    let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
    let up = pump(
        client_read,
        upstream_write,
        // The client's messages are requests, read whole for their facts (the size of the
        // instructions); only the server's are cut.
        Decoder::new(
            Side::Client,
            deflate.enabled,
            !deflate.client_no_context_takeover,
        ),
        observer.clone(),
        None,
    );
    let down = pump(
        upstream_read,
        client_write,
        Decoder::new(
            Side::Server,
            deflate.enabled,
            !deflate.server_no_context_takeover,
        )
        .text_keep(keep),
        observer.clone(),
        Some(stream_idle),
    );
    tokio::pin!(up, down);
    // Whichever side ends first decides how in-flight calls ended; then let the other
    // direction drain so that a close handshake still goes through. A silent upstream
    // (stream-idle timeout) closes both at once.
    let closed = tokio::select! {
        _ = &mut up => { let _ = down.await; Side::Client }
        ended = &mut down => {
            if ended == Pumped::Ended {
                let _ = up.await;
            }
            Side::Server
        }
    };
    observer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .on_close(closed);
}

/// How a direction stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pumped {
    /// Its reader ended or failed, or its writer failed.
    Ended,
    /// The upstream was silent for the stream-idle timeout while a call was open.
    TimedOut,
}

/// Copies one direction, forwarding each read before showing it to the decoder. The
/// decoder's buffers are charged to the observation budget; past it, the message being
/// received is skipped (still relayed). `idle`: the upstream direction's stream-idle limit,
/// which applies while a call waits for the upstream.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut decoder: Decoder,
    observer: Arc<Mutex<Box<dyn MessageObserver>>>,
    idle: Option<Duration>,
) -> Pumped
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let lock = |o: &Arc<Mutex<Box<dyn MessageObserver>>>| {
        o.lock().unwrap_or_else(|e| e.into_inner()).budget()
    };
    let mut charge = lock(&observer).map(|budget| Charge::new(&budget));
    let mut buf = vec![0u8; 16 * 1024];
    let mut last_byte = tokio::time::Instant::now();
    let ended = loop {
        let read = match idle {
            Some(limit) => {
                let since = observer
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .waiting_since();
                // No call open: look again after `limit` (a call may open meanwhile).
                let deadline = since.map_or(tokio::time::Instant::now(), |s| {
                    last_byte.max(tokio::time::Instant::from_std(s))
                }) + limit;
                match tokio::time::timeout_at(deadline, from.read(&mut buf)).await {
                    Ok(read) => read,
                    Err(_) => {
                        let mut observer = observer.lock().unwrap_or_else(|e| e.into_inner());
                        let silent = observer.waiting_since().is_some_and(|s| {
                            last_byte.max(tokio::time::Instant::from_std(s)) + limit
                                <= tokio::time::Instant::now()
                        });
                        if silent {
                            observer.on_stream_timeout();
                            break Pumped::TimedOut;
                        }
                        continue;
                    }
                }
            }
            None => from.read(&mut buf).await,
        };
        last_byte = tokio::time::Instant::now();
        let n = match read {
            Ok(0) | Err(_) => break Pumped::Ended,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
            break Pumped::Ended;
        }
        let mut observer = observer.lock().unwrap_or_else(|e| e.into_inner());
        decoder.push(&buf[..n], observer.as_mut());
        if let Some(charge) = charge.as_mut()
            && !charge.set(decoder.held())
        {
            decoder.skip_message(observer.as_mut());
            observer.on_over_budget(decoder.side);
            charge.set(decoder.held());
        }
    };
    let _ = to.shutdown().await;
    ended
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
    side: Side,
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
mod tests {
    use std::io::Write as _;

    use super::*;

    /// (messages, decode errors, skipped messages).
    #[derive(Default)]
    struct Seen(Vec<(Side, bool, Vec<u8>)>, usize, usize);

    impl MessageObserver for Seen {
        fn on_message(&mut self, side: Side, text: bool, payload: &[u8]) {
            self.0.push((side, text, payload.to_vec()));
        }
        fn on_skipped(&mut self, _side: Side) {
            self.2 += 1;
        }
        fn on_decode_error(&mut self, _side: Side) {
            self.1 += 1;
        }
        fn on_close(&mut self, _first: Side) {}
    }

    fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
        let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
        let m = if mask.is_some() { 0x80 } else { 0 };
        match payload.len() {
            n if n < 126 => out.push(m | n as u8),
            n if n < 65536 => {
                out.push(m | 126);
                out.extend_from_slice(&(n as u16).to_be_bytes());
            }
            n => {
                out.push(m | 127);
                out.extend_from_slice(&(n as u64).to_be_bytes());
            }
        }
        match mask {
            Some(k) => {
                out.extend_from_slice(&k);
                out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
            }
            None => out.extend_from_slice(payload),
        }
        out
    }

    #[test]
    fn masked_fragmented_messages_with_interleaved_pings_split_anywhere() {
        let mut wire = frame(false, false, 0x1, b"{\"type\":", Some([1, 2, 3, 4]));
        wire.extend(frame(true, false, 0x9, b"ping", Some([9, 9, 9, 9])));
        wire.extend(frame(
            true,
            false,
            0x0,
            b"\"response.create\"}",
            Some([5, 6, 7, 8]),
        ));
        wire.extend(frame(
            true,
            false,
            0x1,
            &vec![b'x'; 70_000],
            Some([1, 1, 1, 1]),
        ));
        for at in [0, 1, 2, 5, 13, 40, wire.len() - 1] {
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Client, false, true);
            d.push(&wire[..at], &mut seen);
            d.push(&wire[at..], &mut seen);
            assert_eq!(seen.1, 0);
            assert_eq!(seen.0.len(), 2, "split at {at}");
            assert_eq!(seen.0[0].2, b"{\"type\":\"response.create\"}");
            assert_eq!(seen.0[1].2.len(), 70_000);
        }
    }

    #[test]
    fn permessage_deflate_with_context_takeover() {
        // One raw-deflate stream across messages, each ended with a sync flush whose
        // 00 00 ff ff tail is stripped (RFC 7692 §7.2.1).
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        let mut wire = Vec::new();
        for msg in [
            &b"{\"type\":\"response.created\"}"[..],
            b"{\"type\":\"response.created\"}",
        ] {
            enc.write_all(msg).expect("deflate");
            enc.flush().expect("flush");
            let all = enc.get_mut();
            let mut chunk = std::mem::take(all);
            assert!(chunk.ends_with(&[0, 0, 0xff, 0xff]));
            chunk.truncate(chunk.len() - 4);
            wire.extend(frame(true, true, 0x1, &chunk, None));
        }
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, true, true);
        d.push(&wire, &mut seen);
        assert_eq!(seen.1, 0);
        let got: Vec<&[u8]> = seen.0.iter().map(|m| m.2.as_slice()).collect();
        assert_eq!(
            got,
            [
                &b"{\"type\":\"response.created\"}"[..],
                b"{\"type\":\"response.created\"}"
            ]
        );
    }

    /// A Responses `response.completed` whose output holds a string of `big` bytes.
    fn completed(big: usize, id: u32) -> Vec<u8> {
        format!(
            "{{\"type\":\"response.completed\",\"response\":{{\"id\":\"r{id}\",\"output\":[{{\"type\":\"function_call\",\"name\":\"apply_patch\",\"arguments\":\"{}\"}}],\"usage\":{{\"input_tokens\":{id}}}}}}}",
            "a".repeat(big)
        )
        .into_bytes()
    }

    /// Raw-deflate messages with context takeover, tails stripped (RFC 7692 §7.2.1).
    fn deflated_session(messages: &[Vec<u8>]) -> Vec<u8> {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        let mut wire = Vec::new();
        for msg in messages {
            enc.write_all(msg).expect("deflate");
            enc.flush().expect("flush");
            let mut chunk = std::mem::take(enc.get_mut());
            chunk.truncate(chunk.len() - 4);
            wire.extend(frame(true, true, 0x1, &chunk, None));
        }
        wire
    }

    #[test]
    fn text_over_the_cap_is_observed_with_long_strings_cut_compressed_or_not() {
        // A 20 MiB message (over MAX_MESSAGE) whose size is one string: kept cut, whole
        // otherwise, and the next message still decodes (the inflater stays in step).
        let messages = vec![completed(20 << 20, 1), completed(10, 2)];
        let plain: Vec<u8> = messages
            .iter()
            .flat_map(|m| frame(true, false, 0x1, m, Some([7, 1, 3, 9])))
            .collect();
        for (wire, deflate) in [(plain, false), (deflated_session(&messages), true)] {
            for pieces in [1, 7, 1000] {
                let mut seen = Seen::default();
                let mut d = Decoder::new(Side::Server, deflate, true).text_keep(Some(4096));
                for piece in wire.chunks(wire.len().div_ceil(pieces)) {
                    d.push(piece, &mut seen);
                    assert!(d.held() <= MAX_MESSAGE + MIN_GROWTH, "held {}", d.held());
                }
                assert_eq!((seen.1, seen.2), (0, 0), "deflate {deflate}");
                let got: Vec<serde_json::Value> = seen
                    .0
                    .iter()
                    .map(|m| serde_json::from_slice(&m.2).expect("valid JSON"))
                    .collect();
                assert_eq!(got.len(), 2);
                assert_eq!(got[0]["response"]["usage"]["input_tokens"], 1);
                let args = got[0]["response"]["output"][0]["arguments"].as_str();
                assert_eq!(args.map(str::len), Some(4096));
                assert_eq!(
                    got[1],
                    serde_json::from_slice::<serde_json::Value>(&messages[1]).expect("json")
                );
            }
        }
    }

    #[test]
    fn elided_text_still_over_the_cap_is_skipped_and_decoding_goes_on() {
        // Structure, not strings: cutting cannot shrink it. Under context takeover the
        // compressed message is still inflated (not kept), so the next one decodes.
        let numbers = format!("[{}1]", "1,".repeat(9 << 20)).into_bytes();
        let messages = vec![numbers, completed(10, 3)];
        for deflate in [false, true] {
            let wire = if deflate {
                deflated_session(&messages)
            } else {
                messages
                    .iter()
                    .flat_map(|m| frame(true, false, 0x1, m, None))
                    .collect()
            };
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Server, deflate, true).text_keep(Some(4096));
            d.push(&wire, &mut seen);
            assert_eq!(
                (seen.1, seen.2, seen.0.len()),
                (0, 1, 1),
                "deflate {deflate}"
            );
            assert_eq!(seen.0[0].2, messages[1]);
        }
    }

    #[test]
    fn negotiation_is_read_from_the_101() {
        let d = Deflate::negotiated(Some("permessage-deflate; client_no_context_takeover"));
        assert!(d.enabled && d.client_no_context_takeover && !d.server_no_context_takeover);
        assert!(!Deflate::negotiated(None).enabled);
        assert!(!Deflate::negotiated(Some("x-webkit-deflate-frame")).enabled);
    }

    #[test]
    fn a_continuation_without_a_start_stops_observation() {
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, false, true);
        d.push(&frame(true, false, 0x0, b"x", None), &mut seen);
        assert_eq!(seen.1, 1);
        d.push(&frame(true, false, 0x1, b"y", None), &mut seen);
        assert!(seen.0.is_empty(), "no decoding after an error");
    }

    /// One raw-deflate message with its own compressor (no context takeover), the sync
    /// flush tail stripped (RFC 7692 §7.2.1).
    fn deflated(msg: &[u8]) -> Vec<u8> {
        let mut enc =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(msg).expect("deflate");
        enc.flush().expect("flush");
        let mut out = std::mem::take(enc.get_mut());
        assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
        out.truncate(out.len() - 4);
        out
    }

    const OVER: usize = MAX_MESSAGE + 1;

    #[test]
    fn an_oversized_server_frame_between_two_messages_is_skipped_however_split() {
        let mut wire = frame(true, false, 0x1, b"{\"type\":\"a\"}", None);
        let first = wire.len();
        wire.extend(frame(true, false, 0x1, &vec![b'x'; OVER], None));
        let oversized_end = wire.len();
        wire.extend(frame(true, false, 0x1, b"{\"type\":\"b\"}", None));
        // Every offset through the headers and around each frame boundary, then a stride
        // through the oversized payload (skipping is arithmetic, so each split is cheap).
        let offsets = (0..first + 20)
            .chain(oversized_end - 20..wire.len())
            .chain((first..oversized_end).step_by(65_539));
        for at in offsets {
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Server, false, true);
            d.push(&wire[..at], &mut seen);
            d.push(&wire[at..], &mut seen);
            assert_eq!((seen.1, seen.2), (0, 1), "split at {at}");
            let got: Vec<&[u8]> = seen.0.iter().map(|m| m.2.as_slice()).collect();
            assert_eq!(
                got,
                [&b"{\"type\":\"a\"}"[..], b"{\"type\":\"b\"}"],
                "split at {at}"
            );
            assert_eq!(d.held(), 0);
        }
        // Three pieces, one boundary in each header.
        for (a, b) in [
            (1, first + 1),
            (first + 3, oversized_end + 1),
            (5, oversized_end - 7),
        ] {
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Server, false, true);
            for piece in [&wire[..a], &wire[a..b], &wire[b..]] {
                d.push(piece, &mut seen);
            }
            assert_eq!(
                (seen.0.len(), seen.1, seen.2),
                (2, 0, 1),
                "split at {a}, {b}"
            );
        }
    }

    #[test]
    fn a_masked_oversized_client_frame_is_skipped() {
        let create = b"{\"type\":\"response.create\"}";
        let mut wire = frame(true, false, 0x1, create, Some([1, 2, 3, 4]));
        wire.extend(frame(true, false, 0x2, &vec![7; OVER], Some([9, 8, 7, 6])));
        wire.extend(frame(true, false, 0x1, create, Some([4, 3, 2, 1])));
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Client, false, true);
        for piece in wire.chunks(16 * 1024) {
            d.push(piece, &mut seen);
        }
        assert_eq!((seen.1, seen.2), (0, 1));
        assert_eq!(seen.0.len(), 2);
        assert!(seen.0.iter().all(|m| m.2 == create));
    }

    #[test]
    fn a_fragmented_message_over_the_cap_is_skipped_and_the_next_is_observed() {
        let nine = vec![b'x'; 9 << 20];
        let mut wire = frame(false, false, 0x1, &nine, Some([1, 2, 3, 4]));
        wire.extend(frame(true, false, 0x9, b"ping", Some([5, 5, 5, 5])));
        wire.extend(frame(true, false, 0x0, &nine, Some([6, 7, 8, 9])));
        wire.extend(frame(true, false, 0x1, b"next", Some([1, 1, 2, 2])));
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Client, false, true);
        for piece in wire.chunks(64 * 1024) {
            d.push(piece, &mut seen);
        }
        assert_eq!((seen.1, seen.2), (0, 1));
        assert_eq!(seen.0.len(), 1);
        assert_eq!(seen.0[0].2, b"next");
        assert_eq!(
            d.held(),
            0,
            "the first fragment is freed when the cap is passed"
        );
    }

    #[test]
    fn a_compressed_message_over_the_cap_is_skipped_without_context_takeover() {
        // Over the cap on the wire, and over it once inflated (17 MiB of zeros deflate to
        // a few KiB).
        let small = deflated(b"{\"type\":\"a\"}");
        for oversized in [vec![0x55; OVER], deflated(&vec![0; 17 << 20])] {
            let mut wire = frame(true, true, 0x1, &small, None);
            wire.extend(frame(true, true, 0x1, &oversized, None));
            wire.extend(frame(true, true, 0x1, &small, None));
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Server, true, false);
            d.push(&wire, &mut seen);
            assert_eq!((seen.1, seen.2), (0, 1));
            assert_eq!(seen.0.len(), 2);
            assert!(seen.0.iter().all(|m| m.2 == b"{\"type\":\"a\"}"));
        }
    }

    /// Under context takeover every message inflates against the ones before it: a skipped
    /// compressed message leaves the inflater out of step (see `Decoder`), so that
    /// direction stops being observed, as for any undecodable frame.
    #[test]
    fn a_compressed_message_over_the_cap_stops_observation_with_context_takeover() {
        let small = deflated(b"{\"type\":\"a\"}");
        for oversized in [vec![0x55; OVER], deflated(&vec![0; 17 << 20])] {
            let mut wire = frame(true, true, 0x1, &small, None);
            wire.extend(frame(true, true, 0x1, &oversized, None));
            wire.extend(frame(true, false, 0x1, b"plain", None));
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Server, true, true);
            d.push(&wire, &mut seen);
            assert_eq!((seen.1, seen.2), (1, 0));
            assert_eq!(
                seen.0.len(),
                1,
                "nothing decoded after the oversized message"
            );
            assert_eq!(d.held(), 0);
        }
    }

    #[test]
    fn held_is_the_payload_received_so_far_not_a_copy_of_it() {
        let payload = vec![b'x'; MAX_MESSAGE - 1];
        let wire = frame(true, false, 0x1, &payload, None);
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, false, true);
        let received = 15 << 20;
        let header = wire.len() - payload.len();
        for piece in wire[..header + received].chunks(64 * 1024) {
            d.push(piece, &mut seen);
            assert!(d.held() <= MAX_MESSAGE, "never above the cap");
        }
        // The buffer grows by doubling, clamped to the frame's announced length: about
        // what arrived, never twice it (the old decoder held the raw frame, then copied it).
        assert!(
            (received..=MAX_MESSAGE).contains(&d.held()),
            "held {} for {received} received",
            d.held()
        );
        d.push(&wire[header + received..], &mut seen);
        assert_eq!(seen.0.len(), 1);
        assert_eq!(seen.0[0].2.len(), payload.len());
        assert_eq!(d.held(), 0, "a delivered message is freed");
    }

    /// The fault: one server event over 16 MiB made the decoder stop for good, so every
    /// later call on the socket ended `cancelled` without usage. Now the call with the
    /// oversized event is flagged `body_too_large` and keeps its usage, and the next call
    /// is recorded normally.
    #[tokio::test]
    async fn oversized_websocket_frame_does_not_stop_observation_of_later_calls() {
        use crate::{
            caller::{Attribution, Billing, Caller, Client},
            cli::Cli,
            config::Config,
            dialects::{self, ParseError, Target},
            exchange::{Observing, RequestHead, WsSession},
            telemetry::Telemetry,
            vocab::Outcome,
        };
        use clap::Parser as _;

        let dir = tempfile::tempdir().expect("tempdir");
        let ca_dir = dir.path().to_str().expect("utf-8 path");
        let cli = Cli::try_parse_from(["llmtap", "--listen", "127.0.0.1:0", "--ca-dir", ca_dir])
            .expect("args");
        let config = Config::from_args(cli.run).expect("config");
        let telemetry = Telemetry::start(&config, Box::new(std::io::sink())).expect("telemetry");
        let mut records = telemetry.subscribe();
        let route = dialects::detect(&Target {
            host: "api.openai.com",
            method: "GET",
            path: "/v1/responses",
            query: None,
            websocket: true,
        });
        assert!(route.is_some(), "the Responses socket has a dialect");
        let head = RequestHead {
            host: "api.openai.com".into(),
            port: 443,
            method: "GET".into(),
            path: "/v1/responses".into(),
            caller: Caller {
                client: Client::from_user_agent("codex_exec/0.169.0"),
                conversation_id: None,
                attribution: Attribution::default(),
                billing: Billing::Api,
            },
            traceparent: None,
        };
        let observing = Observing::new(&config, telemetry.budget().clone(), telemetry.clone());
        let mut session = WsSession::new(observing, route, head);
        let mut client = Decoder::new(Side::Client, false, true);
        let mut server = Decoder::new(Side::Server, false, true);

        let create = br#"{"type":"response.create","model":"gpt-6.1-sol","input":[]}"#;
        let created = |id: &str| {
            format!(
                r#"{{"type":"response.created","response":{{"id":"{id}","model":"gpt-6.1-sol","status":"in_progress"}}}}"#
            )
        };
        let completed = |id: &str| {
            format!(
                r#"{{"type":"response.completed","response":{{"id":"{id}","model":"gpt-6.1-sol","status":"completed","output":[],"usage":{{"input_tokens":900,"output_tokens":40}}}}}}"#
            )
        };
        let huge = format!(
            r#"{{"type":"response.output_text.delta","delta":"{}"}}"#,
            "x".repeat(OVER)
        );
        for (id, oversized) in [("resp_1", true), ("resp_2", false)] {
            client.push(
                &frame(true, false, 0x1, create, Some([1, 2, 3, 4])),
                &mut session,
            );
            let mut wire = frame(true, false, 0x1, created(id).as_bytes(), None);
            if oversized {
                wire.extend(frame(true, false, 0x1, huge.as_bytes(), None));
            }
            wire.extend(frame(true, false, 0x1, completed(id).as_bytes(), None));
            for piece in wire.chunks(16 * 1024) {
                server.push(piece, &mut session);
            }
        }
        session.on_close(Side::Client);

        let mut next = async || {
            tokio::time::timeout(std::time::Duration::from_secs(10), records.recv())
                .await
                .expect("a record within 10 s")
                .expect("record")
        };
        for (i, parse_error) in [Some(ParseError::BodyTooLarge), None]
            .into_iter()
            .enumerate()
        {
            let record = next().await;
            assert_eq!(record.outcome, Outcome::Ok, "call {i}: {record:?}");
            assert_eq!(record.parse_error, parse_error, "call {i}");
            assert_eq!(record.response.usage.input, Some(900), "call {i}");
            assert_eq!(record.response.usage.output, Some(40), "call {i}");
        }
        assert!(records.try_recv().is_err(), "one record per call");
    }
}
