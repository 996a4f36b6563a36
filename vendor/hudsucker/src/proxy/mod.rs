mod internal;

pub mod builder;

use crate::{
    Error,
    HttpHandler,
    WebSocketHandler,
    builder::ProxyBuilder,
    certificate_authority::CertificateAuthority,
};
use builder::{AddrOrListener, WantsAddr};
use hyper::service::service_fn;
use hyper_util::{
    client::legacy::{Builder as ClientBuilder, Client, connect::Connect},
    rt::{TokioExecutor, TokioIo},
    server::conn::auto::Builder as ServerBuilder,
};
use internal::InternalProxy;
pub use internal::strip_hop_by_hop;
use std::{error::Error as StdError, sync::Arc, time::Duration};
use tokio::net::TcpListener;
use tokio_graceful::Shutdown;
use tokio_tungstenite::Connector;
use tracing::error;

/// A proxy server. This must be constructed with a [`ProxyBuilder`].
///
/// # Examples
///
/// ```rust
/// use hudsucker::Proxy;
/// # use hudsucker::{
/// #     certificate_authority::RcgenAuthority,
/// #     rcgen::{Issuer, KeyPair},
/// #     rustls::crypto::aws_lc_rs,
/// # };
/// #
/// # #[cfg(all(feature = "rcgen-ca", feature = "rustls-client"))]
/// # #[tokio::main]
/// # async fn main() {
/// # let key_pair = include_str!("../../examples/ca/hudsucker.key");
/// # let ca_cert = include_str!("../../examples/ca/hudsucker.cer");
/// # let key_pair = KeyPair::from_pem(key_pair).expect("Failed to parse private key");
/// # let issuer =
/// #     Issuer::from_ca_cert_pem(ca_cert, key_pair).expect("Failed to parse CA certificate");
/// #
/// # let ca = RcgenAuthority::new(issuer, 1_000, aws_lc_rs::default_provider());
///
/// // let ca = ...;
///
/// let (stop, done) = tokio::sync::oneshot::channel();
///
/// let proxy = Proxy::builder()
///     .with_addr(std::net::SocketAddr::from(([127, 0, 0, 1], 0)))
///     .with_ca(ca)
///     .with_rustls_connector(aws_lc_rs::default_provider())
///     .with_graceful_shutdown(async {
///         done.await.unwrap_or_default();
///     })
///     .build()
///     .expect("Failed to create proxy");
///
/// tokio::spawn(proxy.start());
///
/// // Do something else...
///
/// stop.send(()).unwrap();
/// # }
/// #
/// # #[cfg(not(all(feature = "rcgen-ca", feature = "rustls-client")))]
/// # fn main() {}
/// ```
/// Bounds on how long the proxy waits for a client (llmtap patch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Timeouts {
    /// A new connection's first request head, and a tunnel's TLS ClientHello and handshake
    /// (or first plaintext bytes).
    pub handshake: Duration,
    /// Keep-alive between requests inside an intercepted tunnel.
    pub idle: Duration,
    /// The upstream's response head; on expiry [`HttpHandler::handle_timeout`] answers.
    pub response: Option<Duration>,
}

impl Default for Timeouts {
    fn default() -> Self {
        Timeouts {
            handshake: Duration::from_secs(30),
            idle: Duration::from_secs(600),
            response: None,
        }
    }
}

pub struct Proxy<C, CA, H, W, F> {
    al: AddrOrListener,
    timeouts: Timeouts,
    ca: Arc<CA>,
    http_connector: C,
    client: Option<ClientBuilder>,
    http_handler: H,
    websocket_handler: W,
    websocket_connector: Option<Connector>,
    server: Option<ServerBuilder<TokioExecutor>>,
    graceful_shutdown: F,
}

impl Proxy<(), (), (), (), ()> {
    /// Create a new [`ProxyBuilder`].
    pub fn builder() -> ProxyBuilder<WantsAddr> {
        ProxyBuilder::new()
    }
}

impl<C, CA, H, W, F> Proxy<C, CA, H, W, F>
where
    C: Connect + Clone + Send + Sync + 'static,
    CA: CertificateAuthority,
    H: HttpHandler,
    W: WebSocketHandler,
    F: Future<Output = ()> + Send + 'static,
{
    /// Attempts to start the proxy server.
    ///
    /// # Errors
    ///
    /// This will return an error if the proxy server is unable to be started.
    pub async fn start(self) -> Result<(), Error> {
        let client = self
            .client
            .unwrap_or_else(|| {
                let mut builder = Client::builder(TokioExecutor::new());
                builder
                    .http1_title_case_headers(true)
                    .http1_preserve_header_case(true);
                builder
            })
            .build(self.http_connector);

        let server = self.server.unwrap_or_else(|| {
            let mut builder = ServerBuilder::new(TokioExecutor::new());
            builder
                .http1()
                .title_case_headers(true)
                .preserve_header_case(true);
            builder
        });
        // The proxy relays the upstream's head as sent: hyper must not add a `Date` the
        // upstream did not send (llmtap patch).
        let mut server = server;
        server.http1().auto_date_header(false);
        server.http2().auto_date_header(false);

        let timer = hyper_util::rt::TokioTimer::new();
        let timeouts = self.timeouts;
        // The outer connection carries CONNECTs and absolute-form requests: HTTP/1 only
        // (no version sniffing that could wait forever), its head within `handshake`.
        let mut outer = server.clone().http1_only();
        outer
            .http1()
            .timer(timer.clone())
            .header_read_timeout(timeouts.handshake);
        let mut inner = server;
        inner
            .http1()
            .timer(timer.clone())
            .header_read_timeout(timeouts.idle);
        inner
            .http2()
            .timer(timer)
            .keep_alive_interval(Duration::from_secs(60))
            .keep_alive_timeout(Duration::from_secs(20));

        let listener = match self.al {
            AddrOrListener::Addr(addr) => TcpListener::bind(addr).await?,
            AddrOrListener::Listener(listener) => listener,
        };

        let shutdown = Shutdown::new(self.graceful_shutdown);
        let guard = shutdown.guard_weak();
        let mut backoff = AcceptBackoff::default();

        loop {
            tokio::select! {
                res = listener.accept() => {
                    let (tcp, client_addr) = match res {
                        Ok((tcp, client_addr)) => {
                            backoff.reset();
                            (tcp, client_addr)
                        }
                        Err(e) => {
                            // Out of descriptors or memory: wait instead of spinning on an
                            // error that repeats until a connection closes.
                            if let Some(pause) = backoff.failed(&e) {
                                tokio::select! {
                                    _ = tokio::time::sleep(pause) => {}
                                    _ = guard.cancelled() => break,
                                }
                            }
                            continue;
                        }
                    };

                    let client = client.clone();
                    let outer = outer.clone();
                    let inner = inner.clone();
                    let ca = Arc::clone(&self.ca);
                    let mut http_handler = self.http_handler.clone();
                    let websocket_handler = self.websocket_handler.clone();
                    let websocket_connector = self.websocket_connector.clone();

                    shutdown.spawn_task_fn(move |guard| async move {
                        let ctx = crate::HttpContext { client_addr };
                        // A connection that sends nothing never reaches hyper's head timer.
                        let mut first = [0u8; 1];
                        match tokio::time::timeout(timeouts.handshake, tcp.peek(&mut first)).await {
                            Ok(Ok(n)) if n > 0 => {}
                            Ok(_) => return,
                            Err(_) => {
                                http_handler.on_refused(&ctx, crate::Refused::HeaderTimeout);
                                return;
                            }
                        }
                        let handler = http_handler.clone();
                        let conn = outer.serve_connection_with_upgrades(
                            TokioIo::new(tcp),
                            service_fn(|req| {
                                InternalProxy {
                                    ca: Arc::clone(&ca),
                                    client: client.clone(),
                                    server: inner.clone(),
                                    http_handler: handler.clone(),
                                    websocket_handler: websocket_handler.clone(),
                                    websocket_connector: websocket_connector.clone(),
                                    client_addr,
                                    timeouts,
                                }
                                .proxy(req)
                            }),
                        );

                        let mut conn = std::pin::pin!(conn);

                        if let Err(err) = tokio::select! {
                            conn = conn.as_mut() => conn,
                            _ = guard.cancelled() => {
                                conn.as_mut().graceful_shutdown();
                                conn.await
                            }
                        } {
                            let timed_out = err
                                .downcast_ref::<hyper::Error>()
                                .is_some_and(hyper::Error::is_timeout);
                            if timed_out {
                                http_handler.on_refused(&ctx, crate::Refused::HeaderTimeout);
                            } else {
                                error!(error = &*err, "Error serving connection");
                            }
                        }
                    });
                }
                _ = guard.cancelled() => {
                    break;
                }
            }
        }

        shutdown.shutdown().await;

        Ok(())
    }
}

/// Backoff for failing `accept()` calls (llmtap patch). Errors about one connection
/// (aborted, reset) are retried at once; resource errors (EMFILE, ENFILE, ENOBUFS, ENOMEM)
/// wait 5 ms doubling to 1 s, as the failure repeats until something is freed. Logged at most
/// once per 10 s, with the number held back.
#[derive(Debug)]
pub struct AcceptBackoff {
    pause: Duration,
    logged: Option<std::time::Instant>,
    suppressed: u64,
}

impl Default for AcceptBackoff {
    fn default() -> Self {
        AcceptBackoff {
            pause: Duration::ZERO,
            logged: None,
            suppressed: 0,
        }
    }
}

impl AcceptBackoff {
    const FIRST: Duration = Duration::from_millis(5);
    const MAX: Duration = Duration::from_secs(1);
    const LOG_EVERY: Duration = Duration::from_secs(10);

    /// A connection was accepted: the next failure starts from the first pause again.
    pub fn reset(&mut self) {
        self.pause = Duration::ZERO;
    }

    /// Records a failed accept; returns how long to wait before the next.
    pub fn failed(&mut self, e: &std::io::Error) -> Option<Duration> {
        use std::io::ErrorKind::*;
        let per_connection = matches!(
            e.kind(),
            ConnectionAborted | ConnectionReset | ConnectionRefused | Interrupted | WouldBlock
        );
        let now = std::time::Instant::now();
        if self.logged.is_none_or(|at| now - at >= Self::LOG_EVERY) {
            error!(
                error = e as &dyn StdError,
                suppressed = self.suppressed,
                "Failed to accept incoming connection"
            );
            self.logged = Some(now);
            self.suppressed = 0;
        } else {
            self.suppressed += 1;
        }
        if per_connection {
            return None;
        }
        self.pause = (self.pause * 2).clamp(Self::FIRST, Self::MAX);
        Some(self.pause)
    }
}
