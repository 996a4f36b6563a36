//! The admin listener: `/metrics`, `/healthz`, `/readyz` and `/ca.pem`.
//!
//! Kept off the proxy port on purpose: requests there would be proxied, and a scrape must
//! never compete with agent traffic for the proxy's accept loop.

use std::{
    convert::Infallible,
    sync::{
        Arc,
        atomic::{AtomicBool, Ordering},
    },
};

use bytes::Bytes;
use http_body_util::Full;
use hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn};
use hyper_util::{
    rt::{TokioExecutor, TokioIo},
    server::conn::auto,
};
use tokio::net::TcpListener;

use super::Telemetry;

/// State the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    /// Whose metrics `/metrics` serves.
    pub telemetry: Arc<Telemetry>,
    /// llmtap's CA certificate (PEM), served on `/ca.pem`.
    pub ca_pem: String,
    /// False once shutdown began: `/readyz` turns 503 so load balancers stop sending.
    pub ready: AtomicBool,
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
                async move { Ok::<_, Infallible>(route(&admin, &req)) }
            });
            let _ = server.serve_connection(TokioIo::new(tcp), service).await;
        });
    }
}

fn route(admin: &Admin, req: &Request<Incoming>) -> Response<Full<Bytes>> {
    if req.method() != Method::GET && req.method() != Method::HEAD {
        return reply(
            StatusCode::METHOD_NOT_ALLOWED,
            "text/plain",
            "method not allowed\n",
        );
    }
    match req.uri().path() {
        "/metrics" => {
            let (body, content_type) = admin.telemetry.metrics.encode();
            reply(StatusCode::OK, &content_type, body)
        }
        "/healthz" => reply(StatusCode::OK, "text/plain", "ok\n"),
        "/readyz" if admin.ready.load(Ordering::SeqCst) => {
            reply(StatusCode::OK, "text/plain", "ready\n")
        }
        "/readyz" => reply(StatusCode::SERVICE_UNAVAILABLE, "text/plain", "draining\n"),
        "/ca.pem" => reply(
            StatusCode::OK,
            "application/x-pem-file",
            admin.ca_pem.clone(),
        ),
        _ => reply(StatusCode::NOT_FOUND, "text/plain", "not found\n"),
    }
}

fn reply(status: StatusCode, content_type: &str, body: impl Into<Bytes>) -> Response<Full<Bytes>> {
    let mut res = Response::new(Full::new(body.into()));
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
