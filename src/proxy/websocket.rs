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
};

use bytes::Bytes;
use hudsucker::{
    Body,
    hyper::{
        self, Request, Response, StatusCode, Uri, client::conn::http1, header, upgrade::Upgraded,
    },
    hyper_util::rt::TokioIo,
};
use hyper_rustls::HttpsConnector;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tower_service::Service as _;

use super::upstream::Dialer;

/// Largest message (after decompression) decoded for observation; larger ones are still
/// relayed but not observed.
const MAX_MESSAGE: usize = 16 << 20;

/// Which side sent a message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Side {
    Client,
    Server,
}

/// How the spliced connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Closed {
    /// The client closed (or broke) its side first.
    ByClient,
    /// The upstream closed (or broke) its side first.
    ByServer,
}

/// Receives decoded messages. Runs on the relay task after the bytes were forwarded:
/// bounded work only.
pub trait MessageObserver: Send + 'static {
    fn on_message(&mut self, side: Side, text: bool, payload: &[u8]);
    /// A frame could not be decoded; that direction is no longer observed.
    fn on_decode_error(&mut self, side: Side);
    fn on_close(&mut self, closed: Closed);
}

#[derive(Debug, thiserror::Error)]
pub enum WsError {
    #[error("cannot reach upstream: {0}")]
    Connect(String),
    #[error("upstream handshake failed: {0}")]
    Handshake(hyper::Error),
}

/// Sends the client's upgrade request to the upstream and returns the upstream's response
/// for the client. On `101`, `on_open` is called with the negotiated extensions and gets the
/// observer for the session, and both sides are spliced in a background task.
pub async fn relay(
    mut req: Request<Body>,
    mut connector: HttpsConnector<Dialer>,
    on_open: impl FnOnce(Option<&str>) -> Box<dyn MessageObserver> + Send + 'static,
) -> Result<Response<Body>, WsError> {
    let client_upgrade = hyper::upgrade::on(&mut req);
    let uri = req.uri().clone();
    let host = uri.host().unwrap_or_default().to_owned();
    let port = uri.port_u16().unwrap_or(443);
    let dial: Uri = format!("https://{host}:{port}/")
        .parse()
        .map_err(|e: hyper::http::uri::InvalidUri| WsError::Connect(e.to_string()))?;
    poll_fn(|cx| connector.poll_ready(cx))
        .await
        .map_err(|e| WsError::Connect(e.to_string()))?;
    let io = connector
        .call(dial)
        .await
        .map_err(|e| WsError::Connect(e.to_string()))?;
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
    if !parts.headers.contains_key(header::HOST) {
        let value = if port == 443 {
            host.clone()
        } else {
            format!("{host}:{port}")
        };
        if let Ok(v) = header::HeaderValue::from_str(&value) {
            parts.headers.insert(header::HOST, v);
        }
    }
    let upstream_req = Request::from_parts(parts, http_body_util::Empty::<Bytes>::new());
    let mut res = sender
        .send_request(upstream_req)
        .await
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
            Ok((client, upstream)) => splice(client, upstream, observer, deflate).await,
            Err(err) => {
                tracing::warn!(error = %err, "websocket upgrade did not complete");
                let mut observer = observer;
                observer.on_close(Closed::ByClient);
            }
        }
    });
    let (parts, _) = res.into_parts();
    Ok(Response::from_parts(parts, Body::empty()))
}

/// `permessage-deflate` as negotiated in the upstream's `101` (RFC 7692).
#[derive(Debug, Clone, Copy, Default)]
pub struct Deflate {
    pub enabled: bool,
    pub client_no_context_takeover: bool,
    pub server_no_context_takeover: bool,
}

impl Deflate {
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
) {
    let observer = Arc::new(Mutex::new(observer));
    let (client_read, client_write) = tokio::io::split(TokioIo::new(client));
    let (upstream_read, upstream_write) = tokio::io::split(TokioIo::new(upstream));
    let up = pump(
        client_read,
        upstream_write,
        Decoder::new(
            Side::Client,
            deflate.enabled,
            !deflate.client_no_context_takeover,
        ),
        observer.clone(),
    );
    let down = pump(
        upstream_read,
        client_write,
        Decoder::new(
            Side::Server,
            deflate.enabled,
            !deflate.server_no_context_takeover,
        ),
        observer.clone(),
    );
    tokio::pin!(up, down);
    // Whichever side ends first decides how in-flight calls ended; then let the other
    // direction drain so that a close handshake still goes through.
    let closed = tokio::select! {
        _ = &mut up => { let _ = down.await; Closed::ByClient }
        _ = &mut down => { let _ = up.await; Closed::ByServer }
    };
    observer
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .on_close(closed);
}

/// Copies one direction, forwarding each read before showing it to the decoder.
async fn pump<R, W>(
    mut from: R,
    mut to: W,
    mut decoder: Decoder,
    observer: Arc<Mutex<Box<dyn MessageObserver>>>,
) where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let mut buf = vec![0u8; 16 * 1024];
    loop {
        let n = match from.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if to.write_all(&buf[..n]).await.is_err() || to.flush().await.is_err() {
            break;
        }
        let mut observer = observer.lock().unwrap_or_else(|e| e.into_inner());
        decoder.push(&buf[..n], observer.as_mut());
    }
    let _ = to.shutdown().await;
}

/// Incremental RFC 6455 frame decoder for one direction, with message reassembly and
/// `permessage-deflate` inflation. Observation only: errors stop decoding, never relaying.
pub struct Decoder {
    side: Side,
    buf: Vec<u8>,
    /// The message being reassembled: (is text, compressed, payload so far).
    message: Option<(bool, bool, Vec<u8>)>,
    deflate: bool,
    takeover: bool,
    inflater: flate2::Decompress,
    failed: bool,
}

impl Decoder {
    pub fn new(side: Side, deflate: bool, context_takeover: bool) -> Decoder {
        Decoder {
            side,
            buf: Vec::new(),
            message: None,
            deflate,
            takeover: context_takeover,
            inflater: flate2::Decompress::new(false),
            failed: false,
        }
    }

    pub fn push(&mut self, bytes: &[u8], observer: &mut dyn MessageObserver) {
        if self.failed {
            return;
        }
        self.buf.extend_from_slice(bytes);
        let mut at = 0;
        loop {
            match self.frame(&self.buf[at..]) {
                Ok(None) => break,
                Ok(Some((len, frame))) => {
                    at += len;
                    if let Err(()) = self.on_frame(frame, observer) {
                        self.fail(observer);
                        return;
                    }
                }
                Err(()) => {
                    self.fail(observer);
                    return;
                }
            }
        }
        self.buf.drain(..at);
    }

    fn fail(&mut self, observer: &mut dyn MessageObserver) {
        self.failed = true;
        self.buf = Vec::new();
        self.message = None;
        observer.on_decode_error(self.side);
    }

    /// Parses one complete frame at the start of `b`: `(bytes used, frame)`.
    fn frame(&self, b: &[u8]) -> Result<Option<(usize, Frame)>, ()> {
        if b.len() < 2 {
            return Ok(None);
        }
        let (fin, rsv1, opcode) = (b[0] & 0x80 != 0, b[0] & 0x40 != 0, b[0] & 0x0f);
        let masked = b[1] & 0x80 != 0;
        let (len, mut at) = match b[1] & 0x7f {
            126 if b.len() >= 4 => (u64::from(u16::from_be_bytes([b[2], b[3]])), 4),
            127 if b.len() >= 10 => {
                let mut l = [0u8; 8];
                l.copy_from_slice(&b[2..10]);
                (u64::from_be_bytes(l), 10)
            }
            126 | 127 => return Ok(None),
            n => (u64::from(n), 2),
        };
        if len > MAX_MESSAGE as u64 {
            return Err(());
        }
        let len = len as usize;
        let mask = if masked {
            if b.len() < at + 4 {
                return Ok(None);
            }
            let m = [b[at], b[at + 1], b[at + 2], b[at + 3]];
            at += 4;
            Some(m)
        } else {
            None
        };
        if b.len() < at + len {
            return Ok(None);
        }
        let mut payload = b[at..at + len].to_vec();
        if let Some(m) = mask {
            payload
                .iter_mut()
                .enumerate()
                .for_each(|(i, x)| *x ^= m[i % 4]);
        }
        Ok(Some((
            at + len,
            Frame {
                fin,
                rsv1,
                opcode,
                payload,
            },
        )))
    }

    fn on_frame(&mut self, f: Frame, observer: &mut dyn MessageObserver) -> Result<(), ()> {
        match f.opcode {
            // Control frames (close, ping, pong) may come between fragments; not messages.
            0x8..=0xf => return Ok(()),
            0x1 | 0x2 => {
                if self.message.is_some() {
                    return Err(());
                }
                self.message = Some((f.opcode == 0x1, f.rsv1 && self.deflate, f.payload));
            }
            0x0 => match &mut self.message {
                Some((_, _, payload)) if payload.len() + f.payload.len() <= MAX_MESSAGE => {
                    payload.extend_from_slice(&f.payload);
                }
                _ => return Err(()),
            },
            _ => return Err(()),
        }
        if f.fin
            && let Some((text, compressed, payload)) = self.message.take()
        {
            let payload = if compressed {
                self.inflate(payload)?
            } else {
                payload
            };
            observer.on_message(self.side, text, &payload);
        }
        Ok(())
    }

    fn inflate(&mut self, mut payload: Vec<u8>) -> Result<Vec<u8>, ()> {
        payload.extend_from_slice(&[0x00, 0x00, 0xff, 0xff]);
        let mut out = Vec::with_capacity(payload.len() * 4);
        let mut input = &payload[..];
        loop {
            if out.len() >= MAX_MESSAGE {
                return Err(());
            }
            out.reserve(64 * 1024);
            let before_in = self.inflater.total_in();
            let before_out = self.inflater.total_out();
            self.inflater
                .decompress_vec(input, &mut out, flate2::FlushDecompress::Sync)
                .map_err(|_| ())?;
            let used = (self.inflater.total_in() - before_in) as usize;
            let produced = self.inflater.total_out() - before_out;
            input = &input[used..];
            if input.is_empty() && out.len() < out.capacity() {
                break;
            }
            if used == 0 && produced == 0 {
                break;
            }
        }
        if !self.takeover {
            self.inflater.reset(false);
        }
        Ok(out)
    }
}

struct Frame {
    fin: bool,
    rsv1: bool,
    opcode: u8,
    payload: Vec<u8>,
}

#[cfg(test)]
mod tests {
    use std::io::Write as _;

    use super::*;

    #[derive(Default)]
    struct Seen(Vec<(Side, bool, Vec<u8>)>, usize);

    impl MessageObserver for Seen {
        fn on_message(&mut self, side: Side, text: bool, payload: &[u8]) {
            self.0.push((side, text, payload.to_vec()));
        }
        fn on_decode_error(&mut self, _side: Side) {
            self.1 += 1;
        }
        fn on_close(&mut self, _closed: Closed) {}
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
}
