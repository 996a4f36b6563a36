//! The proxy: hudsucker wired to llmtap's CA, upstream connector and handler.
//!
//! Owns HTTP plumbing only: listening, CONNECT, deciding which tunnels are decrypted,
//! minting leaves, reaching upstream, wrapping bodies. It knows nothing about LLM APIs
//! beyond asking the provider table (`providers`) whether a host is intercepted and a
//! request is a call.

pub mod handler;
pub mod tap_body;
pub mod upstream;
pub mod websocket;

use std::sync::Arc;

use hudsucker::Proxy;
use rustls::crypto::CryptoProvider;
use tokio::{net::TcpListener, sync::watch};

use crate::{config::Config, exchange::Observing, policy::DestinationPolicy, telemetry::Telemetry};

/// Leaf certificates kept in memory (one per intercepted host name).
const LEAF_CACHE: usize = 1024;

/// Why [`serve`] stopped with an error.
#[derive(Debug, thiserror::Error)]
pub enum ProxyError {
    /// The CA's key or certificate cannot issue leaves, or the leaf key cannot be made.
    #[error("cannot set up the CA: {0}")]
    Ca(#[from] rcgen::Error),
    /// The upstream TLS client config was refused (an `--upstream-ca` root rustls rejects).
    #[error("cannot set up upstream TLS: {0}")]
    Tls(#[from] rustls::Error),
    /// hudsucker could not be built or its accept loop failed.
    #[error("proxy failed: {0}")]
    Proxy(#[from] hudsucker::Error),
}

/// The crypto provider every TLS config of llmtap uses.
pub fn crypto() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// Sets the proxy up on `listener` (llmtap's own addresses: `own_addrs`, which clients
/// may not reach through it) and returns the future that serves it until `stop` turns
/// true; that future then stops accepting and returns once hudsucker has drained the
/// connections it tracks. (Intercepted tunnels are not tracked by hudsucker; the caller
/// drains in-flight calls through telemetry.)
///
/// Errors: the CA cannot make leaves, or the upstream TLS config cannot be built (an
/// `--upstream-ca` certificate rustls refuses). Set-up happens here, before anything is
/// spawned, so that [`crate::start`] can report it instead of running without a proxy.
pub fn prepare(
    listener: TcpListener,
    own_addrs: Vec<std::net::SocketAddr>,
    config: &Config,
    telemetry: Arc<Telemetry>,
    mut stop: watch::Receiver<bool>,
) -> Result<impl Future<Output = Result<(), ProxyError>> + Send + 'static, ProxyError> {
    let provider = crypto();
    let authority = crate::ca::LeafAuthority::new(&config.ca, provider.clone(), LEAF_CACHE)?;
    let tls =
        crate::config::tls_client_config(provider, &config.system_roots, &config.upstream_roots)?;
    let policy = Arc::new(DestinationPolicy::new(
        config.allow_destinations.clone(),
        &own_addrs,
        &crate::policy::local_ips(),
    ));
    let resolve = Arc::new(config.resolve.clone());
    let connector = upstream::connector(
        tls,
        resolve.clone(),
        policy.clone(),
        config.timeouts.connect,
    );
    let observing = Observing::new(config, telemetry.budget().clone(), telemetry.clone());
    let shared = handler::Shared::new(
        config,
        telemetry,
        observing,
        connector.clone(),
        policy,
        resolve,
    );
    let tap = handler::Tap::new(Arc::new(shared));
    let proxy = Proxy::builder()
        .with_listener(listener)
        .with_ca(authority)
        .with_http_connector(connector)
        .with_http_handler(tap)
        .with_timeouts(hudsucker::Timeouts {
            handshake: config.timeouts.client_header,
            idle: config.timeouts.idle,
            response: Some(config.timeouts.response),
        })
        .with_graceful_shutdown(async move {
            let _ = stop.wait_for(|stopped| *stopped).await;
        })
        .build()?;
    Ok(async move {
        proxy.start().await?;
        Ok(())
    })
}
