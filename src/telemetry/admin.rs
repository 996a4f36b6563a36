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
use hudsucker::{
    hyper::{Method, Request, Response, StatusCode, body::Incoming, header, service::service_fn},
    hyper_util::{
        rt::{TokioExecutor, TokioIo},
        server::conn::auto,
    },
};
use tokio::net::TcpListener;

use super::Telemetry;

/// State the admin endpoints read.
#[derive(Debug)]
pub struct Admin {
    pub telemetry: Arc<Telemetry>,
    pub ca_pem: String,
    /// False once shutdown began: `/readyz` turns 503 so load balancers stop sending.
    pub ready: AtomicBool,
}

/// Serves until the task is aborted: it outlives the proxy's drain, so `/readyz` can say
/// "draining" and the last scrape still sees every call.
pub async fn serve(listener: TcpListener, admin: Arc<Admin>) {
    loop {
        let (tcp, _) = match listener.accept().await {
            Ok(conn) => conn,
            Err(err) => {
                tracing::warn!(%err, "admin listener cannot accept");
                continue;
            }
        };
        let admin = admin.clone();
        tokio::spawn(async move {
            let service = service_fn(move |req| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(route(&admin, &req)) }
            });
            let _ = auto::Builder::new(TokioExecutor::new())
                .serve_connection(TokioIo::new(tcp), service)
                .await;
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
