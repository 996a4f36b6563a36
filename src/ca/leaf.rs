//! The leaf certificates llmtap's CA mints for intercepted hosts, and their cache:
//! [`LeafAuthority`], which hudsucker asks for a TLS server config per CONNECT host.
//!
//! Owns: the one leaf key, minting a leaf (the host as CN and SAN, 397 days, an authority
//! key identifier, ALPN `h2` and `http/1.1`), the bounded first-in first-out cache, and the
//! config whose handshake fails when a leaf cannot be minted. Does not own: the CA files
//! (`ca`), which hosts are intercepted (the handler), or which host a tunnel may present
//! (the patched hudsucker pins the leaf to the CONNECT target).

use std::{
    collections::{HashMap, VecDeque},
    net::IpAddr,
    sync::{Arc, Mutex},
};

use http::uri::Authority;
use hudsucker::certificate_authority::CertificateAuthority;
use rcgen::{
    CertificateParams, DistinguishedName, DnType, ExtendedKeyUsagePurpose, Issuer, KeyPair,
    KeyUsagePurpose, PKCS_ECDSA_P256_SHA256, SanType,
};
use rustls::{
    ServerConfig,
    crypto::CryptoProvider,
    pki_types::{PrivateKeyDer, PrivatePkcs8KeyDer},
};
use time::{Duration, OffsetDateTime};

use super::{CaFiles, random_serial};

/// Mints and caches leaf certificates; hudsucker asks it for a TLS config per host.
///
/// Every leaf shares one ECDSA P-256 key generated at startup (a new host costs one
/// signature), names its host as CN and as its one SAN (IP or DNS), is valid from a day
/// ago for 397 days (under the 398 days the CA/Browser Forum and browsers allow a TLS
/// server certificate), and carries an authority key identifier (Python 3.13's strict
/// verification requires it). Its TLS config offers ALPN `h2` then `http/1.1`. The cache
/// is first-in first-out, bounded by the capacity given to [`LeafAuthority::new`].
pub struct LeafAuthority {
    issuer: Issuer<'static, KeyPair>,
    /// One key for every leaf: each new host costs a signature, not a key generation.
    leaf_key: KeyPair,
    provider: Arc<CryptoProvider>,
    cache: Mutex<LeafCache>,
}

struct LeafCache {
    map: HashMap<String, Arc<ServerConfig>>,
    order: VecDeque<String>,
    capacity: usize,
}

impl LeafAuthority {
    /// An authority issuing from `ca`, with TLS configs built on `provider`, keeping at most
    /// `capacity` hosts' configs (at least 1). Fails when the CA's key or certificate cannot
    /// issue, or the leaf key cannot be generated.
    pub fn new(
        ca: &CaFiles,
        provider: Arc<CryptoProvider>,
        capacity: usize,
    ) -> Result<Self, rcgen::Error> {
        Ok(LeafAuthority {
            issuer: ca.issuer()?,
            leaf_key: KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256)?,
            provider,
            cache: Mutex::new(LeafCache {
                map: HashMap::new(),
                order: VecDeque::new(),
                capacity: capacity.max(1),
            }),
        })
    }

    /// The TLS server config for `host`, from the cache or freshly signed.
    pub fn server_config(&self, host: &str) -> Result<Arc<ServerConfig>, LeafError> {
        let host = crate::wire::normalize_host(host);
        if let Some(cfg) = self.lock().map.get(&host) {
            return Ok(cfg.clone());
        }
        let cfg = Arc::new(self.mint(&host)?);
        let mut cache = self.lock();
        if cache.map.insert(host.clone(), cfg.clone()).is_none() {
            cache.order.push_back(host);
            while cache.order.len() > cache.capacity {
                if let Some(old) = cache.order.pop_front() {
                    cache.map.remove(&old);
                }
            }
        }
        Ok(cfg)
    }

    /// How many hosts' configs the cache holds now (at most its capacity).
    pub fn cached(&self) -> usize {
        self.lock().map.len()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, LeafCache> {
        // The cache holds no invariant a panic could break; recover instead of propagating.
        self.cache.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn mint(&self, host: &str) -> Result<ServerConfig, LeafError> {
        let mut p = CertificateParams::default();
        p.serial_number = Some(random_serial());
        let mut dn = DistinguishedName::new();
        dn.push(DnType::CommonName, host);
        p.distinguished_name = dn;
        p.subject_alt_names = vec![match host.parse::<IpAddr>() {
            Ok(ip) => SanType::IpAddress(ip),
            Err(_) => SanType::DnsName(host.try_into().map_err(LeafError::Sign)?),
        }];
        p.key_usages = vec![KeyUsagePurpose::DigitalSignature];
        p.extended_key_usages = vec![ExtendedKeyUsagePurpose::ServerAuth];
        // Python 3.13's strict verification rejects leaves without an AKI.
        p.use_authority_key_identifier_extension = true;
        let now = OffsetDateTime::now_utc();
        p.not_before = now - Duration::days(1);
        p.not_after = now + Duration::days(397);
        let cert = p
            .signed_by(&self.leaf_key, &self.issuer)
            .map_err(LeafError::Sign)?;
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.serialize_der()));
        let mut cfg = ServerConfig::builder_with_provider(self.provider.clone())
            .with_safe_default_protocol_versions()
            .map_err(LeafError::Tls)?
            .with_no_client_auth()
            .with_single_cert(vec![cert.der().clone()], key)
            .map_err(LeafError::Tls)?;
        cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
        // No TLS 1.3 session tickets right after the handshake (rustls sends 2 by default).
        // Python's `websockets` sync client reads on one thread while it writes its upgrade
        // request on another; a ticket arriving in that window lost the request about one run
        // in four (`a_real_websocket_client_with_permessage_deflate_through_llmtap` timed out
        // with llmtap's handshake done and no byte after it; 0 in 16 without tickets). Agents
        // keep their connections to llmtap alive, so resumption saved little: a new
        // connection costs one full handshake with the cached leaf.
        cfg.send_tls13_tickets = 0;
        Ok(cfg)
    }
}

/// Why a leaf for a host could not be made. hudsucker's trait cannot fail, so
/// [`LeafAuthority`] logs it and hands out a config whose handshake fails on the client.
#[derive(Debug, thiserror::Error)]
pub enum LeafError {
    /// The host is no valid DNS name for a SAN, or signing failed.
    #[error("cannot sign a leaf certificate: {0}")]
    Sign(rcgen::Error),
    /// rustls refused the protocol versions or the certificate and key.
    #[error("cannot build a TLS config: {0}")]
    Tls(rustls::Error),
}

impl CertificateAuthority for LeafAuthority {
    async fn gen_server_config(&self, authority: &Authority) -> Arc<ServerConfig> {
        match self.server_config(authority.host()) {
            Ok(cfg) => cfg,
            Err(err) => {
                // The trait is infallible; a config for a name no client asked for makes the
                // handshake fail cleanly on the client side instead of panicking here.
                tracing::error!(host = authority.host(), %err, "cannot mint leaf certificate");
                self.server_config("llmtap.invalid").unwrap_or_else(|_| {
                    Arc::new(
                        ServerConfig::builder_with_provider(self.provider.clone())
                            .with_safe_default_protocol_versions()
                            .expect("aws-lc supports the default protocol versions")
                            .with_no_client_auth()
                            .with_cert_resolver(Arc::new(NoCert)),
                    )
                })
            }
        }
    }
}

#[derive(Debug)]
struct NoCert;

impl rustls::server::ResolvesServerCert for NoCert {
    fn resolve(
        &self,
        _hello: rustls::server::ClientHello<'_>,
    ) -> Option<Arc<rustls::sign::CertifiedKey>> {
        None
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn provider() -> Arc<CryptoProvider> {
        Arc::new(rustls::crypto::aws_lc_rs::default_provider())
    }

    /// A leaf authority over a new CA, caching at most `cap` leaves.
    fn authority(cap: usize) -> (tempfile::TempDir, LeafAuthority) {
        let dir = tempfile::tempdir().expect("tempdir");
        let ca = CaFiles::load_or_create(dir.path(), false).expect("create");
        let leaves = LeafAuthority::new(&ca, provider(), cap).expect("authority");
        (dir, leaves)
    }

    #[test]
    fn leaves_are_cached_with_a_bound() {
        let (_dir, leaves) = authority(2);
        let a = leaves.server_config("a.example").expect("a");
        let again = leaves.server_config("A.example").expect("a again");
        assert!(Arc::ptr_eq(&a, &again));
        leaves.server_config("127.0.0.1").expect("ip");
        leaves.server_config("[::1]").expect("ipv6");
        assert_eq!(leaves.cached(), 2);
    }

    /// The leaf's TLS offers no session tickets after the handshake (see `mint`).
    #[test]
    fn leaf_tls_sends_no_session_tickets() {
        let (_dir, leaves) = authority(2);
        let config = leaves.server_config("api.openai.com").expect("leaf");
        assert_eq!(config.send_tls13_tickets, 0);
    }
}
