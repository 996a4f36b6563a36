//! WebSocket upgrades to intercepted LLM endpoints (Codex CLI's Responses socket), handled
//! by llmtap itself rather than by hudsucker.
//!
//! Owns: dialing the upstream through llmtap's own connector (roots, `--resolve`), sending
//! the client's upgrade request as it is, giving the client the upstream's real answer (its
//! `101` with `Sec-WebSocket-Accept`, protocol and extensions, or its refusal), splicing the
//! two upgraded streams byte for byte, and showing each direction's bytes, once forwarded,
//! to its frame decoder, whose buffers it charges to the observation budget.
//!
//! hudsucker's own WebSocket path answers `101` before dialing, drops the negotiated
//! protocol and re-frames messages, which is why this exists. Does not own: decoding frames
//! into messages (`websocket::frames`: masking, fragmentation, `permessage-deflate`) or
//! what the messages mean (`exchange::WsSession`).

mod frames;

pub use frames::{Decoder, Deflate};

use std::{
    future::poll_fn,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use hudsucker::Body;
use hyper::{Request, Response, StatusCode, Uri, client::conn::http1, header, upgrade::Upgraded};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _};
use tower_service::Service as _;

use super::upstream::Upstream;
use crate::budget::Charge;

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
