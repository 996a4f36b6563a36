//! The connector llmtap uses to reach the real API.
//!
//! Owns: upstream TLS trust (webpki roots + the system's roots + `--upstream-ca`) and
//! `--resolve` overrides. The override sits *under* the TLS layer: hyper-rustls takes SNI and
//! the name to verify from the original URI, then the inner service dials the overridden
//! address, so certificate checks stay on the real host name. Upstream speaks HTTP/1.1 only:
//! hyper's shared HTTP/2 connection would queue new calls behind long streams once the
//! server's stream limit is reached, which would delay traffic (ARCHITECTURE.md, invariant 2).

use std::{
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use http::Uri;
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo};
use rustls::ClientConfig;
use tokio::net::TcpStream;

use crate::policy::{DestinationPolicy, Refusal};

/// The connector's error type, as hyper-util's legacy client expects it; a refusal by the
/// destination policy is a [`DestinationRefused`] inside it, a timeout a [`ConnectTimeout`].
pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

pub use crate::config::ResolveMap;

/// Builds the HTTPS connector handed to hudsucker: TCP and TLS together bounded by
/// `connect_timeout`, every dial checked against the destination policy.
pub fn connector(
    tls: ClientConfig,
    resolve: Arc<ResolveMap>,
    policy: Arc<DestinationPolicy>,
    connect_timeout: Duration,
) -> Upstream {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(connect_timeout));
    http.set_keepalive(Some(Duration::from_secs(60)));
    let https = HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(Dialer {
            inner: http,
            resolve,
            policy,
        });
    Upstream {
        inner: https,
        timeout: connect_timeout,
    }
}

/// The upstream connector: hyper-rustls over [`Dialer`], with one deadline for TCP + TLS.
#[derive(Clone)]
pub struct Upstream {
    inner: HttpsConnector<Dialer>,
    timeout: Duration,
}

/// A dial that took longer than `--connect-timeout` (TCP and TLS together).
#[derive(Debug, thiserror::Error)]
#[error("upstream connect timed out after {0:?}")]
pub struct ConnectTimeout(pub Duration);

/// A dial the destination policy refused: the name resolved to a refused address.
#[derive(Debug, thiserror::Error)]
#[error("destination refused by llmtap's policy ({})", .0.as_str())]
pub struct DestinationRefused(pub Refusal);

impl tower_service::Service<Uri> for Upstream {
    type Response = <HttpsConnector<Dialer> as tower_service::Service<Uri>>::Response;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let limit = self.timeout;
        let fut = self.inner.call(dst);
        Box::pin(async move {
            match tokio::time::timeout(limit, fut).await {
                Ok(res) => res,
                Err(_) => Err(Box::new(ConnectTimeout(limit)) as BoxError),
            }
        })
    }
}

/// TCP dialer that applies `--resolve` overrides and the destination policy.
#[derive(Clone)]
pub struct Dialer {
    inner: HttpConnector,
    resolve: Arc<ResolveMap>,
    policy: Arc<DestinationPolicy>,
}

impl Dialer {
    #[cfg(test)]
    fn target(&self, dst: &Uri) -> Option<SocketAddr> {
        let (host, port) = host_port(dst)?;
        self.resolve.get(&(host, port)).copied()
    }
}

/// Lowercase host without brackets, and the port (the scheme's default when absent).
fn host_port(dst: &Uri) -> Option<(String, u16)> {
    let host = crate::wire::normalize_host(dst.host()?);
    let port = dst.port_u16().unwrap_or(match dst.scheme_str() {
        Some("http") => 80,
        _ => 443,
    });
    Some((host, port))
}

/// Resolves `host:port` and checks every address against the policy: one refused address
/// refuses the name (a rebinding name cannot pick its moment). `--resolve` targets skip
/// the policy: the operator chose them.
pub async fn resolve_checked(
    policy: &DestinationPolicy,
    resolve: &ResolveMap,
    host: &str,
    port: u16,
) -> Result<Vec<SocketAddr>, BoxError> {
    if let Some(addr) = resolve.get(&(host.to_owned(), port)) {
        return Ok(vec![*addr]);
    }
    if let Err(refusal) = policy.check(host, port) {
        return Err(Box::new(DestinationRefused(refusal)));
    }
    let addrs: Vec<SocketAddr> = tokio::net::lookup_host((host, port)).await?.collect();
    for addr in &addrs {
        if let Err(refusal) = policy.check_resolved(host, *addr) {
            return Err(Box::new(DestinationRefused(refusal)));
        }
    }
    if addrs.is_empty() {
        return Err(format!("{host} has no address").into());
    }
    Ok(addrs)
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let this = self.clone();
        Box::pin(async move {
            let (host, port) = host_port(&dst).ok_or("upstream URI has no host")?;
            let addrs = resolve_checked(&this.policy, &this.resolve, &host, port).await?;
            // Each address in turn (hyper's connector applies the connect timeout to each).
            let mut last: Option<BoxError> = None;
            for addr in addrs {
                let uri = Uri::try_from(format!("http://{addr}/"))?;
                let mut inner = this.inner.clone();
                match inner.call(uri).await {
                    Ok(io) => return Ok(io),
                    Err(e) => last = Some(e.into()),
                }
            }
            Err(last.unwrap_or_else(|| "no address to dial".into()))
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_match_host_and_port_only() {
        let addr: SocketAddr = "127.0.0.1:9999".parse().expect("addr");
        let map = std::collections::HashMap::from([(("api.anthropic.com".to_owned(), 443), addr)]);
        let dialer = Dialer {
            inner: HttpConnector::new(),
            resolve: Arc::new(map),
            policy: Arc::default(),
        };
        let uri = |s: &str| s.parse::<Uri>().expect("uri");
        assert_eq!(
            dialer.target(&uri("https://api.anthropic.com/v1/messages")),
            Some(addr)
        );
        assert_eq!(
            dialer.target(&uri("https://API.anthropic.com:443/")),
            Some(addr)
        );
        assert_eq!(dialer.target(&uri("https://api.anthropic.com:8443/")), None);
        assert_eq!(dialer.target(&uri("https://api.openai.com/")), None);
    }
}
