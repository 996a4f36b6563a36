//! The connector llmtap uses to reach the real API.
//!
//! Owns: upstream TLS trust (webpki roots + the system's roots + `--upstream-ca`) and
//! `--resolve` overrides. The override sits *under* the TLS layer: hyper-rustls takes SNI and
//! the name to verify from the original URI, then the inner service dials the overridden
//! address, so certificate checks stay on the real host name. Upstream speaks HTTP/1.1 only:
//! hyper's shared HTTP/2 connection would queue new calls behind long streams once the
//! server's stream limit is reached, which would delay traffic (DESIGN invariant 2).

use std::{
    collections::HashMap,
    future::Future,
    net::SocketAddr,
    pin::Pin,
    sync::Arc,
    task::{Context, Poll},
    time::Duration,
};

use hudsucker::{
    hyper::Uri,
    hyper_util::{client::legacy::connect::HttpConnector, rt::TokioIo},
    rustls::{ClientConfig, RootCertStore, crypto::CryptoProvider, pki_types::CertificateDer},
};
use hyper_rustls::{HttpsConnector, HttpsConnectorBuilder};
use tokio::net::TcpStream;

type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// `(host, port)` → address to dial instead, like curl's `--resolve`.
pub type ResolveMap = HashMap<(String, u16), SocketAddr>;

/// The TLS client config for upstream connections.
pub fn tls_config(
    provider: Arc<CryptoProvider>,
    system_roots: &[CertificateDer<'static>],
    extra_roots: &[CertificateDer<'static>],
) -> Result<ClientConfig, hudsucker::rustls::Error> {
    let mut roots = RootCertStore::empty();
    roots.extend(webpki_roots::TLS_SERVER_ROOTS.iter().cloned());
    // System stores contain odd certificates (expired, unsupported algorithms); skip those
    // instead of refusing to start.
    let _ = roots.add_parsable_certificates(system_roots.iter().cloned());
    for der in extra_roots {
        roots.add(der.clone())?;
    }
    Ok(ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_root_certificates(roots)
        .with_no_client_auth())
}

/// Builds the HTTPS connector handed to hudsucker.
pub fn connector(tls: ClientConfig, resolve: Arc<ResolveMap>) -> HttpsConnector<Dialer> {
    let mut http = HttpConnector::new();
    http.enforce_http(false);
    http.set_nodelay(true);
    http.set_connect_timeout(Some(Duration::from_secs(10)));
    http.set_keepalive(Some(Duration::from_secs(60)));
    HttpsConnectorBuilder::new()
        .with_tls_config(tls)
        .https_or_http()
        .enable_http1()
        .wrap_connector(Dialer {
            inner: http,
            resolve,
        })
}

/// TCP dialer that applies `--resolve` overrides.
#[derive(Clone)]
pub struct Dialer {
    inner: HttpConnector,
    resolve: Arc<ResolveMap>,
}

impl Dialer {
    fn target(&self, dst: &Uri) -> Option<SocketAddr> {
        let host = dst.host()?.trim_start_matches('[').trim_end_matches(']');
        let port = dst.port_u16().unwrap_or(match dst.scheme_str() {
            Some("http") => 80,
            _ => 443,
        });
        self.resolve
            .get(&(host.to_ascii_lowercase(), port))
            .copied()
    }
}

impl tower_service::Service<Uri> for Dialer {
    type Response = TokioIo<TcpStream>;
    type Error = BoxError;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Self::Error>> + Send>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        tower_service::Service::<Uri>::poll_ready(&mut self.inner, cx).map_err(Into::into)
    }

    fn call(&mut self, dst: Uri) -> Self::Future {
        let dst = match self.target(&dst) {
            Some(addr) => match Uri::try_from(format!("http://{addr}/")) {
                Ok(uri) => uri,
                Err(e) => return Box::pin(async move { Err(e.into()) }),
            },
            None => dst,
        };
        let fut = self.inner.call(dst);
        Box::pin(async move { fut.await.map_err(Into::into) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overrides_match_host_and_port_only() {
        let addr: SocketAddr = "127.0.0.1:9999".parse().expect("addr");
        let map = HashMap::from([(("api.anthropic.com".to_owned(), 443), addr)]);
        let dialer = Dialer {
            inner: HttpConnector::new(),
            resolve: Arc::new(map),
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
