//! The admin listener: `/metrics`, `/healthz`, `/readyz`, `/ca.pem`, and the web UI (`/`,
//! `/calls/{id}`, `/sessions/{id}`, `/overview`, `/events`, `/assets/…`; `src/telemetry/ui.rs`).
//!
//! Kept off the proxy port on purpose: requests there would be proxied, and a scrape must
//! never compete with agent traffic for the proxy's accept loop.
//!
//! Who may see the UI: on a loopback admin address, whoever can reach it (as `/metrics`);
//! beyond loopback, only a client presenting `--admin-token` (`Authorization: Bearer …`, or
//! the `llmtap_token` cookie `/login?token=…` sets), and without a token configured the UI is
//! not served there at all. Metrics, health and the CA stay open for scrapers and probes.

use std::{
    convert::Infallible,
    net::SocketAddr,
    pin::Pin,
    sync::{
        Arc, Mutex,
        atomic::{AtomicBool, Ordering},
    },
    task::{Context, Poll},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full, combinators::BoxBody};
use hyper::{
    Method, Request, Response, StatusCode,
    body::{Frame, Incoming},
    header,
    service::service_fn,
};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::net::TcpListener;

use super::{
    Telemetry,
    history::Store,
    ui::{self, Page},
};

/// The response body of every admin endpoint: a whole body, or the live event stream.
pub type Body = BoxBody<Bytes, Infallible>;

/// Live-list connections open at once; more get 503 (each holds a subscription).
pub const MAX_EVENT_STREAMS: usize = 32;

/// State the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    /// Whose metrics `/metrics` serves.
    pub telemetry: Arc<Telemetry>,
    /// llmtap's CA certificate (PEM), served on `/ca.pem`.
    pub ca_pem: String,
    /// False once shutdown began: `/readyz` turns 503 so load balancers stop sending.
    pub ready: AtomicBool,
    /// Who may see the UI, and the history it reads.
    pub ui: UiAccess,
}

/// The UI's access rule and data.
#[derive(Debug)]
pub struct UiAccess {
    /// `--admin-token`: required whenever set (never printed).
    pub token: Option<crate::config::otlp::Secret>,
    /// The admin address is loopback: without a token, the UI is served.
    pub loopback: bool,
    /// The history, opened for the pages' reads (`None`: `--db none`).
    pub store: Option<Mutex<Store>>,
    /// Live-list streams open now.
    pub streams: std::sync::atomic::AtomicUsize,
    /// Pages built at once (two).
    pub pages: Arc<tokio::sync::Semaphore>,
}

impl UiAccess {
    /// The rule for `addr` and `token`, reading the history at `db`.
    pub fn new(
        addr: SocketAddr,
        token: Option<crate::config::otlp::Secret>,
        db: Option<&std::path::Path>,
    ) -> UiAccess {
        let store = db.and_then(|path| match Store::open(path) {
            Ok(store) => Some(Mutex::new(store)),
            Err(err) => {
                tracing::warn!(target: "llmtap::ui", %err, "the UI cannot read the history");
                None
            }
        });
        UiAccess {
            token,
            loopback: addr.ip().is_loopback(),
            store,
            streams: std::sync::atomic::AtomicUsize::new(0),
            pages: Arc::new(tokio::sync::Semaphore::new(2)),
        }
    }
}

/// Serves until the task is aborted: it outlives the proxy's drain, so `/readyz` can say
/// "draining" and the last scrape still sees every call.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    // The proxy's backoff: out of descriptors, wait instead of spinning, log once per 10 s.
    let mut backoff = hudsucker::AcceptBackoff::default();
    let mut server = auto::Builder::new(TokioExecutor::new()).http1_only();
    // A scrape sends its head at once; a client that does not is closed (slowloris).
    server
        .http1()
        .timer(hyper_util::rt::TokioTimer::new())
        .header_read_timeout(std::time::Duration::from_secs(30));
    loop {
        let tcp = match listener.accept().await {
            Ok((tcp, _)) => {
                backoff.reset();
                tcp
            }
            Err(err) => {
                if let Some(pause) = backoff.failed(&err) {
                    tokio::time::sleep(pause).await;
                }
                continue;
            }
        };
        let admin = admin.clone();
        let server = server.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(route(admin, req).await) }
            });
            let _ = server.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

async fn route(admin: Arc<Admin>, req: Request<Incoming>) -> Response<Body> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        );
    }
    let path = req.uri().path().to_owned();
    match path.as_str() {
        "/metrics" => {
            let (body, content_type) = admin.telemetry.metrics.encode();
            return reply(StatusCode::OK, &content_type, body);
        }
        "/healthz" => return reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" if admin.ready.load(Ordering::SeqCst) => {
            return reply(StatusCode::OK, "text/plain", "ready\n");
        }
        "/readyz" => return reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n"),
        "/ca.pem" => {
            return reply(
                StatusCode::OK,
                "application/x-pem-file",
                admin.ca_pem.clone(),
            );
        }
        _ => {}
    }
    let q = ui::query(req.uri().query());
    if path == "/login" {
        return login(&admin.ui, q.get("token").map(String::as_str));
    }
    if let Some(refused) = gate(&admin.ui, req.headers()) {
        return refused;
    }
    if let Some(name) = path.strip_prefix("/assets/") {
        return match ui::ASSETS.iter().find(|(n, _, _)| *n == name) {
            Some((_, content_type, bytes)) => with_ui_headers(reply(
                StatusCode::OK,
                content_type,
                Bytes::from_static(bytes),
            )),
            None => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
        };
    }
    if path == "/events" {
        return events(&admin);
    }
    // Pages run on the blocking pool the proxy's name lookups also use: two at a time, and a
    // page that cannot start within 2 s is refused rather than queued.
    let Ok(Ok(permit)) = tokio::time::timeout(
        Duration::from_secs(2),
        admin.ui.pages.clone().acquire_owned(),
    )
    .await
    else {
        return with_ui_headers(reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "busy: too many pages at once\n",
        ));
    };
    let page = {
        let admin = admin.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            let store = admin
                .ui
                .store
                .as_ref()
                .map(|s| s.lock().unwrap_or_else(|e| e.into_inner()));
            let store = store.as_deref();
            if path == "/" {
                Some(ui::calls(store, &q))
            } else if path == "/overview" {
                Some(ui::overview(store, &q))
            } else if let Some(id) = path.strip_prefix("/calls/") {
                Some(ui::call(store, id))
            } else if let Some(id) = path.strip_prefix("/sessions/") {
                let id = crate::wire::percent_decode(id).unwrap_or_default();
                Some(ui::session(store, &id))
            } else {
                None
            }
        })
        .await
        .unwrap_or_else(|_| Some(Page::Failed("the page panicked".to_owned())))
    };
    let res = match page {
        Some(Page::Html(html)) => reply(StatusCode::OK, "text/html; charset=utf-8", html),
        Some(Page::NotFound(why)) => reply(StatusCode::NOT_FOUND, "text/plain", format!("{why}\n")),
        Some(Page::Failed(why)) => {
            tracing::warn!(target: "llmtap::ui", %why, "cannot render a page");
            reply(
                StatusCode::INTERNAL_SERVER_ERROR,
                "text/plain",
                "cannot read the history\n",
            )
        }
        None => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    };
    with_ui_headers(res)
}

/// `None` when the request may see the UI; else the refusal.
fn gate(ui: &UiAccess, headers: &hyper::HeaderMap) -> Option<Response<Body>> {
    // Without a token the UI trusts being reached on loopback: a page elsewhere that rebinds
    // its own name to 127.0.0.1 (DNS rebinding) reaches it too, under its own Host. Only
    // loopback names are answered.
    if ui.token.is_none() && !loopback_host(headers) {
        return Some(reply(
            StatusCode::MISDIRECTED_REQUEST,
            "text/plain",
            "the UI answers only to 127.0.0.1, localhost or [::1] (or set --admin-token)\n",
        ));
    }
    match &ui.token {
        Some(crate::config::otlp::Secret(token)) => {
            let bearer = headers
                .get(header::AUTHORIZATION)
                .and_then(|v| v.to_str().ok())
                .and_then(|v| v.strip_prefix("Bearer "));
            // Every `llmtap_token` cookie: one planted for a narrower path comes first.
            let cookies = headers
                .get_all(header::COOKIE)
                .iter()
                .filter_map(|v| v.to_str().ok())
                .flat_map(|v| v.split(';'))
                .filter_map(|c| c.trim().strip_prefix("llmtap_token="));
            let ok = bearer.into_iter().chain(cookies).any(|given| {
                aws_lc_rs::constant_time::verify_slices_are_equal(
                    given.as_bytes(),
                    token.as_bytes(),
                )
                .is_ok()
            });
            (!ok).then(|| {
                reply(
                    StatusCode::UNAUTHORIZED,
                    "text/plain",
                    "the UI needs the admin token: open /login?token=… once, or send \
                     Authorization: Bearer …\n",
                )
            })
        }
        None if ui.loopback => None,
        None => Some(reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "the UI is served beyond loopback only with --admin-token\n",
        )),
    }
}

/// Whether the request's `Host` names loopback: `127.0.0.1`, `localhost` or `[::1]`, with or
/// without a port (RFC 9110 §7.2).
fn loopback_host(headers: &hyper::HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let name = match host.strip_prefix('[') {
        Some(v6) => v6.split(']').next().unwrap_or_default(),
        None => host.rsplit_once(':').map_or(host, |(name, _)| name),
    };
    matches!(
        name.to_ascii_lowercase().as_str(),
        "127.0.0.1" | "localhost" | "::1"
    )
}

/// `/login?token=…`: sets the `llmtap_token` cookie (HttpOnly, SameSite=Strict) when the token
/// is right, and sends the browser to `/`.
fn login(ui: &UiAccess, given: Option<&str>) -> Response<Body> {
    let Some(crate::config::otlp::Secret(token)) = &ui.token else {
        return reply(
            StatusCode::NOT_FOUND,
            "text/plain",
            "no --admin-token is set\n",
        );
    };
    let ok = given.is_some_and(|g| {
        aws_lc_rs::constant_time::verify_slices_are_equal(g.as_bytes(), token.as_bytes()).is_ok()
    });
    if !ok {
        return reply(StatusCode::UNAUTHORIZED, "text/plain", "wrong token\n");
    }
    let mut res = reply(StatusCode::SEE_OTHER, "text/plain", "");
    let headers = res.headers_mut();
    headers.insert(header::LOCATION, header::HeaderValue::from_static("/"));
    if let Ok(cookie) = header::HeaderValue::from_str(&format!(
        "llmtap_token={token}; HttpOnly; SameSite=Strict; Path=/"
    )) {
        headers.insert(header::SET_COOKIE, cookie);
    }
    with_ui_headers(res)
}

/// The live list: each finished call as an SSE event carrying its row, a comment every 15 s
/// to keep proxies from closing the stream. Bounded: a client that does not read loses
/// events (never memory), and at most [`MAX_EVENT_STREAMS`] streams are open.
fn events(admin: &Arc<Admin>) -> Response<Body> {
    let open = admin.ui.streams.fetch_add(1, Ordering::SeqCst);
    if open >= MAX_EVENT_STREAMS {
        admin.ui.streams.fetch_sub(1, Ordering::SeqCst);
        return reply(
            StatusCode::SERVICE_UNAVAILABLE,
            "text/plain",
            "too many live lists\n",
        );
    }
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(64);
    let mut records = admin.telemetry.subscribe();
    let admin = admin.clone();
    tokio::spawn(async move {
        let _ = tx.send(Bytes::from_static(b": live\n\n")).await;
        let mut keepalive = tokio::time::interval(Duration::from_secs(15));
        // A page that stops reading is closed once its queue stays full: it holds no slot
        // forever.
        let mut full = 0u32;
        loop {
            let frame = tokio::select! {
                r = records.recv() => match r {
                    Ok(record) => ui::event(&record).map(Bytes::from),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => None,
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                },
                _ = keepalive.tick() => Some(Bytes::from_static(b": keepalive\n\n")),
                () = tx.closed() => break,
            };
            if let Some(frame) = frame {
                match tx.try_send(frame) {
                    Ok(()) => full = 0,
                    Err(tokio::sync::mpsc::error::TrySendError::Full(_)) if full < 8 => full += 1,
                    Err(_) => break,
                }
            }
        }
        admin.ui.streams.fetch_sub(1, Ordering::SeqCst);
    });
    let mut res = Response::new(Events(rx).boxed());
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static("text/event-stream"),
    );
    with_ui_headers(res)
}

/// The live list's body: frames as the forwarding task queues them.
struct Events(tokio::sync::mpsc::Receiver<Bytes>);

impl hyper::body::Body for Events {
    type Data = Bytes;
    type Error = Infallible;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
        self.0.poll_recv(cx).map(|b| b.map(|b| Ok(Frame::data(b))))
    }
}

/// The headers every UI response carries: the Content-Security-Policy, no sniffing, no
/// referrer, no framing, no caching (pages may hold prompts).
fn with_ui_headers(mut res: Response<Body>) -> Response<Body> {
    let headers = res.headers_mut();
    for (name, value) in [
        ("content-security-policy", ui::CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-store"),
    ] {
        headers.insert(name, header::HeaderValue::from_static(value));
    }
    res
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Body> {
    let mut res = Response::new(Full::new(body.into()).boxed());
    *res.status_mut() = status;
    if let Ok(value) = header::HeaderValue::from_str(content_type) {
        res.headers_mut().insert(header::CONTENT_TYPE, value);
    }
    res
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    #[test]
    fn beyond_loopback_the_ui_needs_a_token_and_a_token_is_always_asked_for() {
        use super::{UiAccess, gate};
        use crate::config::otlp::Secret;
        let mut none = hyper::HeaderMap::new();
        none.insert("host", "127.0.0.1:9464".parse().expect("value"));
        let everywhere: std::net::SocketAddr = "0.0.0.0:9464".parse().expect("addr");
        let pod: std::net::SocketAddr = "10.1.2.3:9464".parse().expect("addr");
        let loopback: std::net::SocketAddr = "127.0.0.1:9464".parse().expect("addr");
        for addr in [everywhere, pod] {
            let refused = gate(&UiAccess::new(addr, None, None), &none).expect("refused");
            assert_eq!(refused.status(), hyper::StatusCode::NOT_FOUND, "{addr}");
        }
        assert!(gate(&UiAccess::new(loopback, None, None), &none).is_none());
        let token = || Some(Secret("t0ken".to_owned()));
        for addr in [everywhere, loopback] {
            let ui = UiAccess::new(addr, token(), None);
            assert!(gate(&ui, &none).is_some(), "{addr}: no credential");
            let mut bearer = none.clone();
            bearer.insert("authorization", "Bearer t0ken".parse().expect("value"));
            assert!(gate(&ui, &bearer).is_none(), "{addr}: bearer");
            let mut cookie = none.clone();
            cookie.insert(
                "cookie",
                "llmtap_token=planted; a=b; llmtap_token=t0ken"
                    .parse()
                    .expect("value"),
            );
            assert!(gate(&ui, &cookie).is_none(), "{addr}: cookie");
            let mut wrong = none.clone();
            wrong.insert("authorization", "Bearer t0ke".parse().expect("value"));
            assert!(gate(&ui, &wrong).is_some(), "{addr}: wrong token");
        }
        assert!(!format!("{:?}", UiAccess::new(pod, token(), None)).contains("t0ken"));
        // DNS rebinding: loopback without a token answers loopback names only.
        let open = UiAccess::new(loopback, None, None);
        for host in ["localhost:9464", "[::1]:9464", "127.0.0.1", "LOCALHOST"] {
            let mut h = hyper::HeaderMap::new();
            h.insert("host", host.parse().expect("value"));
            assert!(gate(&open, &h).is_none(), "{host}");
        }
        for host in ["evil.example:9464", "127.0.0.1.evil.example", "[::2]:9464"] {
            let mut h = hyper::HeaderMap::new();
            h.insert("host", host.parse().expect("value"));
            let refused = gate(&open, &h).expect("refused");
            assert_eq!(
                refused.status(),
                hyper::StatusCode::MISDIRECTED_REQUEST,
                "{host}"
            );
        }
        assert!(gate(&open, &hyper::HeaderMap::new()).is_some(), "no Host");
    }

    #[test]
    fn accept_failures_back_off_to_a_ceiling_without_spinning() {
        let mut b = hudsucker::AcceptBackoff::default();
        let emfile = std::io::Error::from_raw_os_error(24);
        let pauses: Vec<_> = (0..12).map(|_| b.failed(&emfile)).collect();
        assert_eq!(pauses[0], Some(Duration::from_millis(5)));
        assert_eq!(pauses[1], Some(Duration::from_millis(10)));
        assert_eq!(pauses[11], Some(Duration::from_secs(1)));
        let aborted = std::io::Error::from(std::io::ErrorKind::ConnectionAborted);
        assert_eq!(
            b.failed(&aborted),
            None,
            "one connection's error: retry at once"
        );
        b.reset();
        assert_eq!(b.failed(&emfile), Some(Duration::from_millis(5)));
    }
}
