use crate::{
    HttpContext,
    HttpHandler,
    RequestOrResponse,
    WebSocketContext,
    WebSocketHandler,
    body::Body,
    certificate_authority::CertificateAuthority,
    rewind::{ArrayPrefix, Rewind},
    tee::Tee,
};
use futures::{Sink, Stream, StreamExt};
use http::uri::{Authority, Scheme};
use hyper::{
    Method,
    Request,
    Response,
    StatusCode,
    Uri,
    body::Incoming,
    header::Entry,
    service::service_fn,
    upgrade::Upgraded,
};
use hyper_util::{
    client::legacy::{Client, connect::Connect},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder as ServerBuilder,
};
use std::{convert::Infallible, error::Error as StdError, io, net::SocketAddr, sync::Arc};
use tokio::{io::AsyncReadExt, task::JoinHandle};
use tokio_rustls::{LazyConfigAcceptor, StartHandshake};
use tokio_tungstenite::{
    Connector,
    WebSocketStream,
    tungstenite::{self, Message},
};
use tracing::{Instrument, Span, error, info_span, instrument, warn};

fn bad_request() -> Response<Body> {
    Response::builder()
        .status(StatusCode::BAD_REQUEST)
        .body(Body::empty())
        .expect("Failed to build response")
}

fn error_chain_contains<E: StdError + 'static>(
    err: &(dyn StdError + 'static),
    f: impl Fn(&E) -> bool,
) -> bool {
    let mut source = Some(err);
    while let Some(err) = source {
        if err.downcast_ref::<E>().is_some_and(&f) {
            return true;
        }
        source = err.source();
    }
    false
}

fn error_is_shutdown(err: &(dyn StdError + 'static)) -> bool {
    error_chain_contains::<hyper::Error>(err, |err| err.is_shutdown())
}

fn error_is_unexpected_eof(err: &(dyn StdError + 'static)) -> bool {
    error_chain_contains::<io::Error>(err, |err| err.kind() == io::ErrorKind::UnexpectedEof)
}

fn spawn_with_trace<T: Send + Sync + 'static>(
    fut: impl Future<Output = T> + Send + 'static,
    span: Span,
) -> JoinHandle<T> {
    tokio::spawn(fut.instrument(span))
}

pub(crate) struct InternalProxy<C, CA, H, W> {
    pub ca: Arc<CA>,
    pub client: Client<C, Body>,
    pub server: ServerBuilder<TokioExecutor>,
    pub http_handler: H,
    pub websocket_handler: W,
    pub websocket_connector: Option<Connector>,
    pub client_addr: SocketAddr,
    pub timeouts: crate::Timeouts,
}

impl<C, CA, H, W> Clone for InternalProxy<C, CA, H, W>
where
    C: Clone,
    H: Clone,
    W: Clone,
{
    fn clone(&self) -> Self {
        InternalProxy {
            ca: Arc::clone(&self.ca),
            client: self.client.clone(),
            server: self.server.clone(),
            http_handler: self.http_handler.clone(),
            websocket_handler: self.websocket_handler.clone(),
            websocket_connector: self.websocket_connector.clone(),
            client_addr: self.client_addr,
            timeouts: self.timeouts,
        }
    }
}

impl<C, CA, H, W> InternalProxy<C, CA, H, W>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: HttpHandler,
    W: WebSocketHandler,
{
    fn context(&self) -> HttpContext {
        HttpContext {
            client_addr: self.client_addr,
        }
    }

    #[instrument(
        skip_all,
        fields(
            version = ?req.version(),
            method = %req.method(),
            uri=%req.uri(),
            client_addr = %self.client_addr,
        )
    )]
    pub(crate) async fn proxy(
        mut self,
        req: Request<Incoming>,
    ) -> Result<Response<Body>, Infallible> {
        let ctx = self.context();

        let req = match self
            .http_handler
            .handle_request(&ctx, req.map(Body::from))
            .instrument(info_span!("handle_request"))
            .await
        {
            RequestOrResponse::Request(req) => req,
            RequestOrResponse::Response(res) => return Ok(res),
        };

        if req.method() == Method::CONNECT {
            Ok(self.process_connect(req))
        } else if hyper_tungstenite::is_upgrade_request(&req) {
            Ok(self.upgrade_websocket(req))
        } else {
            let forward = self
                .client
                .request(normalize_request(req))
                .instrument(info_span!("proxy_request"));
            let res = match self.timeouts.response {
                Some(limit) => match tokio::time::timeout(limit, forward).await {
                    Ok(res) => res,
                    Err(_) => {
                        return Ok(self
                            .http_handler
                            .handle_timeout(&ctx)
                            .instrument(info_span!("handle_timeout"))
                            .await);
                    }
                },
                None => forward.await,
            };

            match res {
                Ok(mut res) => {
                    strip_hop_by_hop(res.headers_mut());
                    Ok(self
                    .http_handler
                    .handle_response(&ctx, res.map(Body::from))
                    .instrument(info_span!("handle_response"))
                    .await)
                }
                Err(err) => Ok(self
                    .http_handler
                    .handle_error(&ctx, err)
                    .instrument(info_span!("handle_error"))
                    .await),
            }
        }
    }

    fn process_connect(mut self, mut req: Request<Body>) -> Response<Body> {
        match req.uri().authority().cloned() {
            Some(authority) => {
                let span = info_span!("process_connect");
                let fut = async move {
                    let upgraded = match hyper::upgrade::on(&mut req).await {
                        Ok(upgraded) => upgraded,
                        Err(e) => {
                            error!(error = &e as &dyn StdError, "Upgrade error");
                            return;
                        }
                    };
                    let ctx = self.context();
                    let handshake = self.timeouts.handshake;
                    let mut upgraded = TokioIo::new(upgraded);
                    // llmtap patch: a tunnel that is not intercepted is dialled at once,
                    // before reading anything (server-speaks-first protocols work, and no
                    // decision depends on how the client's bytes are segmented).
                    if !self.http_handler.should_intercept_connect(&ctx, &req).await {
                        self.raw_tunnel(&mut upgraded, &authority).await;
                        return;
                    }

                    // Read until the protocol is known: a TLS record header starts 0x16 0x03;
                    // HTTP starts with a method token. However the bytes are segmented.
                    let mut buffer = [0; 4];
                    let mut bytes_read = 0;
                    let read = tokio::time::timeout(handshake, async {
                        while bytes_read < buffer.len() {
                            match upgraded.read(&mut buffer[bytes_read..]).await? {
                                0 => break,
                                n => bytes_read += n,
                            }
                        }
                        Ok::<_, io::Error>(())
                    })
                    .await;
                    match read {
                        Err(_) => {
                            self.http_handler.on_refused(&ctx, crate::Refused::HandshakeTimeout);
                            return;
                        }
                        Ok(Err(_)) => return,
                        Ok(Ok(())) => {}
                    }
                    if bytes_read == 0 {
                        // Closed before any byte: nothing to relay, so nothing is dialled.
                        self.http_handler.on_refused(&ctx, crate::Refused::ClosedEarly);
                        return;
                    }

                    let prefix = ArrayPrefix::new(buffer, bytes_read);
                    let upgraded = Rewind::new(prefix, upgraded);

                    if bytes_read >= 2 && buffer[..2] == *b"\x16\x03" {
                        self.intercept_tls(upgraded, authority).await;
                    } else if authority.port_u16().unwrap_or(443) == 443 {
                        // Plaintext in a tunnel to the TLS port: refused, never forwarded.
                        self.http_handler.on_refused(&ctx, crate::Refused::Plaintext);
                        let mut upgraded = upgraded;
                        const BODY: &str = "plaintext inside a tunnel to port 443 is refused\n";
                        let answer = format!(
                            "HTTP/1.1 400 Bad Request\r\ncontent-type: text/plain\r\n\
                             content-length: {}\r\nconnection: close\r\n\r\n{BODY}",
                            BODY.len()
                        );
                        let _ = tokio::io::AsyncWriteExt::write_all(&mut upgraded, answer.as_bytes())
                            .await;
                        let _ = tokio::io::AsyncWriteExt::shutdown(&mut upgraded).await;
                    } else if bytes_read == buffer.len()
                        && buffer.iter().all(|b| b.is_ascii_uppercase() || *b == b' ')
                        && buffer[0] != b' '
                    {
                        if let Err(e) = self
                            .serve_stream(TokioIo::new(upgraded), Scheme::HTTP, authority)
                            .await
                        {
                            if !error_is_shutdown(e.as_ref()) {
                                error!(error = &e, "HTTP connect error");
                            }
                        }
                    } else {
                        warn!(
                            "Unknown protocol, read '{:02X?}' from upgraded connection",
                            &buffer[..bytes_read]
                        );
                        self.http_handler.on_refused(&ctx, crate::Refused::UnknownProtocol);
                    }
                };

                spawn_with_trace(fut, span);
                Response::new(Body::empty())
            }
            None => bad_request(),
        }
    }

    /// A blind tunnel: bytes copied both ways to what the handler dials.
    async fn raw_tunnel<I>(&mut self, client: &mut I, authority: &Authority)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin,
    {
        let ctx = self.context();
        let mut server = match self.http_handler.connect_tunnel(&ctx, authority).await {
            Ok(server) => server,
            Err(e) => {
                warn!(error = &e as &dyn StdError, "Failed to open a tunnel");
                self.http_handler.on_refused(&ctx, crate::Refused::TunnelConnect);
                return;
            }
        };
        if let Err(e) = tokio::io::copy_bidirectional(client, &mut server).await {
            if e.kind() != io::ErrorKind::ConnectionReset {
                warn!(error = &e as &dyn StdError, "Tunnel ended with an error");
            }
        }
    }

    /// TLS inside an intercepted tunnel: the ClientHello and the handshake within the
    /// handshake timeout, the leaf always for the CONNECT host (llmtap patch).
    async fn intercept_tls<I>(mut self, upgraded: I, authority: Authority)
    where
        I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    {
        let ctx = self.context();
        let handshake = self.timeouts.handshake;
        let deadline = tokio::time::Instant::now() + handshake;
        let upgraded = Tee::new(upgraded);
        let start = match tokio::time::timeout_at(
            deadline,
            LazyConfigAcceptor::new(tokio_rustls::rustls::server::Acceptor::default(), upgraded),
        )
        .await
        {
            Ok(Ok(start)) => start,
            Ok(Err(e)) => {
                error!(
                    error = &e as &dyn StdError,
                    "Failed to read TLS client hello"
                );
                return;
            }
            Err(_) => {
                self.http_handler.on_refused(&ctx, crate::Refused::HandshakeTimeout);
                return;
            }
        };

        // A leaf is only ever minted for the tunnel's own host: a ClientHello naming
        // another is refused rather than answered with that name's certificate.
        let sni_matches = start.client_hello().server_name().is_none_or(|name| {
            name.trim_end_matches('.')
                .eq_ignore_ascii_case(authority.host().trim_start_matches('[').trim_end_matches(']'))
        });
        if !sni_matches {
            self.http_handler.on_refused(&ctx, crate::Refused::SniMismatch);
            return;
        }

        if !self
            .http_handler
            .should_intercept_tls(&ctx, start.client_hello())
            .await
        {
            let mut client = start.io.rewind();
            self.raw_tunnel(&mut client, &authority).await;
            return;
        }

        let server_config = self
            .ca
            .gen_server_config(&authority)
            .instrument(info_span!("gen_server_config"))
            .await;

        let stream = match tokio::time::timeout_at(
            deadline,
            StartHandshake::from_parts(start.accepted, start.io.into_inner())
                .into_stream(server_config),
        )
        .await
        {
            Ok(Ok(stream)) => stream,
            Ok(Err(e)) => {
                error!(
                    error = &e as &dyn StdError,
                    "Failed to establish TLS connection"
                );
                return;
            }
            Err(_) => {
                self.http_handler.on_refused(&ctx, crate::Refused::HandshakeTimeout);
                return;
            }
        };

        // Serve the protocol ALPN chose: no sniffing of the first bytes.
        let h2 = stream.get_ref().1.alpn_protocol() == Some(b"h2");
        // hyper-util reads the first bytes (its version check) with no timer: a tunnel that
        // finished TLS and then says nothing would be held forever. Its first request must
        // start within the handshake timeout.
        let mut stream = stream;
        let mut first = [0u8; 1];
        match tokio::time::timeout(handshake, stream.read(&mut first)).await {
            Ok(Ok(1)) => {}
            Ok(_) => return,
            Err(_) => {
                self.http_handler.on_refused(&ctx, crate::Refused::HeaderTimeout);
                return;
            }
        }
        let stream = Rewind::new(ArrayPrefix::new(first, 1), stream);
        let server = if h2 {
            self.server.clone().http2_only()
        } else {
            self.server.clone().http1_only()
        };
        self.server = server;
        if let Err(e) = self
            .serve_stream(TokioIo::new(stream), Scheme::HTTPS, authority)
            .await
        {
            if !error_is_shutdown(e.as_ref()) && !error_is_unexpected_eof(e.as_ref()) {
                error!(error = &e, "HTTPS connect error");
            }
        }
    }

    #[instrument(skip_all)]
    fn upgrade_websocket(self, req: Request<Body>) -> Response<Body> {
        let mut req = {
            let (mut parts, _) = req.into_parts();

            parts.uri = {
                let mut parts = parts.uri.into_parts();

                parts.scheme = if parts.scheme.unwrap_or(Scheme::HTTP) == Scheme::HTTP {
                    Some("ws".try_into().expect("Failed to convert scheme"))
                } else {
                    Some("wss".try_into().expect("Failed to convert scheme"))
                };

                match Uri::from_parts(parts) {
                    Ok(uri) => uri,
                    Err(_) => {
                        return bad_request();
                    }
                }
            };

            // llmtap patch: the client's proxy credentials are for the proxy only.
            parts.headers.remove(hyper::header::PROXY_AUTHORIZATION);
            parts.headers.remove("proxy-connection");

            Request::from_parts(parts, ())
        };

        match hyper_tungstenite::upgrade(&mut req, None) {
            Ok((res, websocket)) => {
                let span = info_span!("websocket");
                let fut = async move {
                    match websocket.await {
                        Ok(ws) => {
                            if let Err(e) = self.handle_websocket(ws, req).await {
                                error!(error = &e as &dyn StdError, "Failed to handle WebSocket");
                            }
                        }
                        Err(e) => {
                            error!(
                                error = &e as &dyn StdError,
                                "Failed to upgrade to WebSocket"
                            );
                        }
                    }
                };

                spawn_with_trace(fut, span);
                res.map(Body::from)
            }
            Err(_) => bad_request(),
        }
    }

    #[instrument(skip_all)]
    async fn handle_websocket(
        self,
        client_socket: WebSocketStream<TokioIo<Upgraded>>,
        req: Request<()>,
    ) -> Result<(), tungstenite::Error> {
        let uri = req.uri().clone();

        #[cfg(any(feature = "rustls-client", feature = "native-tls-client"))]
        let (server_socket, _) = tokio_tungstenite::connect_async_tls_with_config(
            req,
            None,
            false,
            self.websocket_connector,
        )
        .await?;

        #[cfg(not(any(feature = "rustls-client", feature = "native-tls-client")))]
        let (server_socket, _) = tokio_tungstenite::connect_async(req).await?;

        let (server_sink, server_stream) = server_socket.split();
        let (client_sink, client_stream) = client_socket.split();

        let InternalProxy {
            websocket_handler, ..
        } = self;

        spawn_message_forwarder(
            server_stream,
            client_sink,
            websocket_handler.clone(),
            WebSocketContext::ServerToClient {
                src: uri.clone(),
                dst: self.client_addr,
            },
        );

        spawn_message_forwarder(
            client_stream,
            server_sink,
            websocket_handler,
            WebSocketContext::ClientToServer {
                src: self.client_addr,
                dst: uri,
            },
        );

        Ok(())
    }

    #[instrument(skip_all)]
    async fn serve_stream<I>(
        self,
        stream: I,
        scheme: Scheme,
        authority: Authority,
    ) -> Result<(), Box<dyn std::error::Error + Send + Sync>>
    where
        I: hyper::rt::Read + hyper::rt::Write + Unpin + Send + 'static,
    {
        // llmtap patch: an idle timer for the whole connection (hyper's HTTP/2 server has
        // none): closed gracefully once no request has been open for `Timeouts::idle`.
        let activity = Arc::new(Activity::new());
        let service = service_fn(|req: Request<Incoming>| {
            let guard = OpenGuard::new(&activity);
            // llmtap patch: the tunnel's destination is its CONNECT target, for HTTP/1 and
            // HTTP/2 alike. A request naming another host, port or scheme (`Host`,
            // `:authority`, `:scheme`) is answered 421 and never forwarded.
            let misdirected = !same_destination(&req, &scheme, &authority);
            let (mut parts, body) = req.into_parts();
            parts.uri = {
                let mut parts = parts.uri.into_parts();
                parts.scheme = Some(scheme.clone());
                parts.authority = Some(authority.clone());
                if parts.path_and_query.is_none() {
                    parts.path_and_query = Some(http::uri::PathAndQuery::from_static("/"));
                }
                Uri::from_parts(parts).expect("Failed to build URI")
            };
            let req = Request::from_parts(parts, body);
            let mut this = self.clone();
            async move {
                if misdirected {
                    let ctx = this.context();
                    this.http_handler.on_refused(&ctx, crate::Refused::Misdirected);
                    return Ok(Response::builder()
                        .status(StatusCode::MISDIRECTED_REQUEST)
                        .body(Body::from("request names another destination than its tunnel\n"))
                        .expect("Failed to build response"));
                }
                let res = this.proxy(req).await;
                // The request stays open until its response body is done.
                res.map(|res| {
                    res.map(|inner| {
                        Body::from(http_body_util::combinators::BoxBody::new(Guarded {
                            inner,
                            _guard: guard,
                        }))
                    })
                })
            }
        });

        let idle = self.timeouts.idle;
        let conn = self.server.serve_connection_with_upgrades(stream, service);
        tokio::pin!(conn);
        loop {
            let wait = activity.idle_left(idle);
            tokio::select! {
                done = conn.as_mut() => return done,
                _ = tokio::time::sleep(wait) => {
                    if activity.idle_left(idle).is_zero() {
                        conn.as_mut().graceful_shutdown();
                        return conn.await;
                    }
                }
            }
        }
    }
}

/// Requests open on one served connection, and when the last one ended.
struct Activity {
    open: std::sync::atomic::AtomicUsize,
    last_end: std::sync::Mutex<std::time::Instant>,
}

impl Activity {
    fn new() -> Activity {
        Activity {
            open: std::sync::atomic::AtomicUsize::new(0),
            last_end: std::sync::Mutex::new(std::time::Instant::now()),
        }
    }

    /// How long the connection may still stay idle (`idle` while a request is open).
    fn idle_left(&self, idle: std::time::Duration) -> std::time::Duration {
        if self.open.load(std::sync::atomic::Ordering::Acquire) > 0 {
            return idle;
        }
        let last = *self.last_end.lock().unwrap_or_else(|e| e.into_inner());
        idle.saturating_sub(last.elapsed())
    }
}

/// One open request; its end is recorded when dropped (with its response body).
struct OpenGuard(Arc<Activity>);

impl OpenGuard {
    fn new(activity: &Arc<Activity>) -> OpenGuard {
        activity
            .open
            .fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        OpenGuard(Arc::clone(activity))
    }
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        *self.0.last_end.lock().unwrap_or_else(|e| e.into_inner()) = std::time::Instant::now();
        self.0
            .open
            .fetch_sub(1, std::sync::atomic::Ordering::AcqRel);
    }
}

/// A response body that keeps its request open until the body is dropped.
struct Guarded {
    inner: Body,
    _guard: OpenGuard,
}

impl hyper::body::Body for Guarded {
    type Data = hyper::body::Bytes;
    type Error = crate::Error;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<hyper::body::Frame<Self::Data>, Self::Error>>> {
        std::pin::Pin::new(&mut self.inner).poll_frame(cx)
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> hyper::body::SizeHint {
        self.inner.size_hint()
    }
}

fn spawn_message_forwarder(
    stream: impl Stream<Item = Result<Message, tungstenite::Error>> + Unpin + Send + 'static,
    sink: impl Sink<Message, Error = tungstenite::Error> + Unpin + Send + 'static,
    handler: impl WebSocketHandler,
    ctx: WebSocketContext,
) {
    let span = info_span!("message_forwarder", context = ?ctx);
    let fut = handler.handle_websocket(ctx, stream, sink);
    spawn_with_trace(fut, span);
}

/// Whether a request inside a tunnel names the tunnel's own destination: its URI's scheme
/// and authority when present (absolute-form, `:scheme`/`:authority`), and its `Host`.
/// Hosts compare case-insensitively; an absent port is the scheme's default.
fn same_destination<B>(req: &Request<B>, scheme: &Scheme, authority: &Authority) -> bool {
    let default_port = if *scheme == Scheme::HTTPS { 443 } else { 80 };
    let host = |h: &str| {
        h.trim_start_matches('[')
            .trim_end_matches(']')
            .trim_end_matches('.')
            .to_ascii_lowercase()
    };
    let want = (host(authority.host()), authority.port_u16().unwrap_or(default_port));
    let same = |a: &Authority| (host(a.host()), a.port_u16().unwrap_or(default_port)) == want;
    if req.uri().scheme().is_some_and(|s| s != scheme) {
        return false;
    }
    if req.uri().authority().is_some_and(|a| !same(a)) {
        return false;
    }
    // Every `Host` field must name the tunnel (a second one could disagree with the first).
    req.headers().get_all(hyper::header::HOST).iter().all(|value| {
        value
            .to_str()
            .ok()
            .and_then(|v| v.parse::<Authority>().ok())
            .is_some_and(|a| same(&a))
    })
}

/// Hop-by-hop fields (RFC 9110 §7.6.1): `Connection` and every field it names, plus
/// `Proxy-Connection`, `Keep-Alive`, `TE`, `Transfer-Encoding`, `Upgrade`,
/// `Proxy-Authorization` and `Proxy-Authenticate`. Never forwarded (llmtap patch).
pub fn strip_hop_by_hop(headers: &mut hyper::HeaderMap) {
    // By bytes, not `to_str`: a value with a non-ASCII byte still names its fields.
    let listed: Vec<hyper::header::HeaderName> = headers
        .get_all(hyper::header::CONNECTION)
        .iter()
        .flat_map(|v| v.as_bytes().split(|b| *b == b','))
        .filter_map(|name| hyper::header::HeaderName::from_bytes(name.trim_ascii()).ok())
        .collect();
    for name in listed {
        headers.remove(name);
    }
    for name in [
        hyper::header::CONNECTION,
        hyper::header::HeaderName::from_static("proxy-connection"),
        hyper::header::HeaderName::from_static("keep-alive"),
        hyper::header::TE,
        hyper::header::TRANSFER_ENCODING,
        hyper::header::UPGRADE,
        hyper::header::PROXY_AUTHORIZATION,
        hyper::header::PROXY_AUTHENTICATE,
    ] {
        headers.remove(name);
    }
}

#[instrument(skip_all)]
fn normalize_request<T>(mut req: Request<T>) -> Request<T> {
    strip_hop_by_hop(req.headers_mut());
    // Hyper will automatically add a Host header if needed.
    req.headers_mut().remove(hyper::header::HOST);

    // HTTP/2 supports multiple cookie headers, but HTTP/1.x only supports one.
    if let Entry::Occupied(mut cookies) = req.headers_mut().entry(hyper::header::COOKIE) {
        let joined_cookies = bstr::join(b"; ", cookies.iter());
        cookies.insert(joined_cookies.try_into().expect("Failed to join cookies"));
    }

    *req.version_mut() = hyper::Version::HTTP_11;
    req
}

#[cfg(test)]
mod tests {
    use super::*;
    use hyper_util::client::legacy::connect::HttpConnector;
    use tokio_rustls::rustls::ServerConfig;

    struct CA;

    impl CertificateAuthority for CA {
        async fn gen_server_config(&self, _authority: &Authority) -> Arc<ServerConfig> {
            unimplemented!();
        }
    }

    fn build_proxy() -> InternalProxy<HttpConnector, CA, crate::NoopHandler, crate::NoopHandler> {
        InternalProxy {
            ca: Arc::new(CA),
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            server: ServerBuilder::new(TokioExecutor::new()),
            http_handler: crate::NoopHandler::new(),
            websocket_handler: crate::NoopHandler::new(),
            websocket_connector: None,
            client_addr: "127.0.0.1:8080".parse().unwrap(),
            timeouts: crate::Timeouts::default(),
        }
    }

    mod bad_request {
        use super::*;

        #[test]
        fn correct_status() {
            let res = bad_request();
            assert_eq!(res.status(), StatusCode::BAD_REQUEST);
        }
    }

    mod normalize_request {
        use super::*;

        #[test]
        fn removes_host_header() {
            let req = Request::builder()
                .uri("http://example.com/")
                .header(hyper::header::HOST, "example.com")
                .body(())
                .unwrap();

            let req = normalize_request(req);

            assert_eq!(req.headers().get(hyper::header::HOST), None);
        }

        #[test]
        fn joins_cookies() {
            let req = Request::builder()
                .uri("http://example.com/")
                .header(hyper::header::COOKIE, "foo=bar")
                .header(hyper::header::COOKIE, "baz=qux")
                .body(())
                .unwrap();

            let req = normalize_request(req);

            assert_eq!(
                req.headers().get_all(hyper::header::COOKIE).iter().count(),
                1
            );

            assert_eq!(
                req.headers().get(hyper::header::COOKIE),
                Some(&"foo=bar; baz=qux".parse().unwrap())
            );
        }
    }

    mod process_connect {
        use super::*;

        #[test]
        fn returns_bad_request_if_missing_authority() {
            let proxy = build_proxy();

            let req = Request::builder()
                .uri("/foo/bar?baz")
                .body(Body::empty())
                .unwrap();

            let res = proxy.process_connect(req);

            assert_eq!(res.status(), StatusCode::BAD_REQUEST)
        }
    }

    mod upgrade_websocket {
        use super::*;

        #[test]
        fn returns_bad_request_if_missing_authority() {
            let proxy = build_proxy();

            let req = Request::builder()
                .uri("/foo/bar?baz")
                .body(Body::empty())
                .unwrap();

            let res = proxy.upgrade_websocket(req);

            assert_eq!(res.status(), StatusCode::BAD_REQUEST)
        }

        #[test]
        fn returns_bad_request_if_missing_headers() {
            let proxy = build_proxy();

            let req = Request::builder()
                .uri("http://example.com/foo/bar?baz")
                .body(Body::empty())
                .unwrap();

            let res = proxy.upgrade_websocket(req);

            assert_eq!(res.status(), StatusCode::BAD_REQUEST)
        }
    }
}
