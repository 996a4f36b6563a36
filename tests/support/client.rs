//! A test HTTP client that goes through llmtap exactly as an agent does: HTTP/1.1 CONNECT
//! to the proxy, TLS inside the tunnel (trusting a given CA), then HTTP/1.1 or HTTP/2.
//! Also dials the fake upstream directly, for byte-for-byte comparisons.

use std::{
    net::SocketAddr,
    sync::Arc,
    time::{Duration, Instant},
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hudsucker::{
    hyper::{self, Request, Response, body::Incoming, client::conn},
    hyper_util::rt::{TokioExecutor, TokioIo},
    rustls::{
        ClientConfig, RootCertStore,
        pki_types::{CertificateDer, ServerName, pem::PemObject as _},
    },
    tokio_tungstenite::{
        self,
        tungstenite::{self as ws, client::IntoClientRequest as _},
    },
};
use tokio::{
    io::{AsyncRead, AsyncReadExt as _, AsyncWrite, AsyncWriteExt as _},
    net::TcpStream,
};
use tokio_rustls::{TlsConnector, client::TlsStream};

/// TLS config trusting exactly the CAs in `ca_pem`, offering h2 when asked.
pub fn tls(ca_pem: &str, h2: bool) -> Arc<ClientConfig> {
    let _ = hudsucker::rustls::crypto::aws_lc_rs::default_provider().install_default();
    let mut roots = RootCertStore::empty();
    for der in CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(der.expect("pem")).expect("root");
    }
    let mut cfg = ClientConfig::builder()
        .with_root_certificates(roots)
        .with_no_client_auth();
    cfg.alpn_protocols = if h2 {
        vec![b"h2".to_vec(), b"http/1.1".to_vec()]
    } else {
        vec![b"http/1.1".to_vec()]
    };
    Arc::new(cfg)
}

/// Opens a CONNECT tunnel through `proxy` to `authority` and returns the raw stream.
pub async fn connect_tunnel(proxy: SocketAddr, authority: &str) -> TcpStream {
    connect_tunnel_with(proxy, authority, &[]).await
}

/// The same, with extra CONNECT headers (`Proxy-Authorization`).
pub async fn connect_tunnel_with(
    proxy: SocketAddr,
    authority: &str,
    headers: &[(&str, &str)],
) -> TcpStream {
    let mut tcp = TcpStream::connect(proxy).await.expect("connect proxy");
    // As agents' HTTP stacks do (reqwest, undici): no Nagle delay on small writes.
    tcp.set_nodelay(true).expect("nodelay");
    let extra: String = headers
        .iter()
        .map(|(k, v)| format!("{k}: {v}\r\n"))
        .collect();
    let head = format!("CONNECT {authority} HTTP/1.1\r\nHost: {authority}\r\n{extra}\r\n");
    tcp.write_all(head.as_bytes()).await.expect("write CONNECT");
    let mut buf = Vec::new();
    while !buf.ends_with(b"\r\n\r\n") {
        let mut byte = [0u8; 1];
        let n = tcp.read(&mut byte).await.expect("read CONNECT reply");
        assert!(n > 0, "proxy closed during CONNECT");
        buf.push(byte[0]);
    }
    let reply = String::from_utf8_lossy(&buf);
    assert!(
        reply.starts_with("HTTP/1.1 200"),
        "CONNECT refused: {reply}"
    );
    tcp
}

/// TLS handshake over `io` with SNI `host`.
pub async fn tls_over<IO: AsyncRead + AsyncWrite + Unpin>(
    io: IO,
    host: &str,
    cfg: Arc<ClientConfig>,
) -> Result<TlsStream<IO>, std::io::Error> {
    let name = ServerName::try_from(host.to_owned()).expect("server name");
    TlsConnector::from(cfg).connect(name, io).await
}

/// An HTTP connection (h1 or h2, as negotiated) ready to send requests.
pub enum Conn {
    H1(conn::http1::SendRequest<Full<Bytes>>),
    H2(conn::http2::SendRequest<Full<Bytes>>),
}

impl Conn {
    pub async fn over<IO>(tls: TlsStream<IO>) -> Conn
    where
        IO: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let h2 = tls.get_ref().1.alpn_protocol() == Some(b"h2");
        let io = TokioIo::new(tls);
        if h2 {
            let (send, conn) = conn::http2::handshake(TokioExecutor::new(), io)
                .await
                .expect("h2 handshake");
            tokio::spawn(conn);
            Conn::H2(send)
        } else {
            let (send, conn) = conn::http1::handshake(io).await.expect("h1 handshake");
            tokio::spawn(conn);
            Conn::H1(send)
        }
    }

    pub fn is_h2(&self) -> bool {
        matches!(self, Conn::H2(_))
    }

    pub async fn send(&mut self, req: Request<Full<Bytes>>) -> hyper::Result<Response<Incoming>> {
        match self {
            Conn::H1(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
            Conn::H2(s) => {
                s.ready().await?;
                s.send_request(req).await
            }
        }
    }
}

/// Through llmtap: CONNECT to `host:443`, TLS trusting llmtap's CA.
pub async fn via_proxy(proxy: SocketAddr, host: &str, llmtap_ca: &str, h2: bool) -> Conn {
    let tunnel = connect_tunnel(proxy, &format!("{host}:443")).await;
    let tls = tls_over(tunnel, host, tls(llmtap_ca, h2))
        .await
        .expect("TLS through llmtap");
    Conn::over(tls).await
}

/// Directly to the fake upstream at `addr`, with SNI `host`, trusting the test CA.
pub async fn direct(addr: SocketAddr, host: &str, upstream_ca: &str) -> Conn {
    let tcp = TcpStream::connect(addr).await.expect("connect upstream");
    tcp.set_nodelay(true).expect("nodelay");
    let tls = tls_over(tcp, host, tls(upstream_ca, false))
        .await
        .expect("TLS to upstream");
    Conn::over(tls).await
}

/// A WebSocket client stream through llmtap.
pub type WebSocket = tokio_tungstenite::WebSocketStream<TlsStream<TcpStream>>;

/// A WebSocket to the Responses API (`wss://api.openai.com/v1/responses`) through llmtap at
/// `proxy`: CONNECT, TLS trusting llmtap's CA, then the upgrade with `headers` added.
pub async fn responses_websocket(
    proxy: SocketAddr,
    llmtap_ca: &str,
    headers: &[(&str, &str)],
) -> Result<(WebSocket, ws::handshake::client::Response), ws::Error> {
    let tunnel = connect_tunnel(proxy, "api.openai.com:443").await;
    let tls = tls_over(tunnel, "api.openai.com", tls(llmtap_ca, false))
        .await
        .expect("TLS through llmtap");
    let mut req = "wss://api.openai.com/v1/responses"
        .into_client_request()
        .expect("request");
    for (name, value) in headers {
        req.headers_mut().insert(
            ws::http::HeaderName::from_bytes(name.as_bytes()).expect("header name"),
            ws::http::HeaderValue::from_str(value).expect("header value"),
        );
    }
    tokio_tungstenite::client_async(req, tls).await
}

/// A Messages API request as an SDK would send it.
pub fn messages_request(
    host: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
    h2: bool,
) -> Request<Full<Bytes>> {
    // HTTP/1 inside a tunnel sends origin-form with Host; h2 needs the full URI for :authority.
    let uri = if h2 {
        format!("https://{host}{path}")
    } else {
        path.to_owned()
    };
    let mut req = Request::post(uri)
        .header("content-type", "application/json")
        .header("anthropic-version", "2023-06-01")
        .header("user-agent", "Anthropic/Python 2.14.0");
    if !h2 {
        req = req.header("host", host);
    }
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request")
}

/// A POST as any client would send it: only the given headers (plus `host` on HTTP/1).
pub fn post(host: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header("host", host)
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request")
}

/// A response read to its end, frame by frame, with arrival times.
#[derive(Debug)]
pub struct Collected {
    pub status: u16,
    pub headers: hyper::HeaderMap,
    pub chunks: Vec<(Instant, Bytes)>,
    /// `Err` when the body failed before its end.
    pub end: Result<(), String>,
}

impl Collected {
    pub fn body(&self) -> Vec<u8> {
        self.chunks
            .iter()
            .flat_map(|(_, b)| b.iter().copied())
            .collect()
    }
}

pub async fn collect(res: Response<Incoming>) -> Collected {
    let status = res.status().as_u16();
    let headers = res.headers().clone();
    let mut body = res.into_body();
    let mut chunks = Vec::new();
    let end = loop {
        match tokio::time::timeout(Duration::from_secs(20), body.frame()).await {
            Err(_) => break Err("timed out".to_owned()),
            Ok(None) => break Ok(()),
            Ok(Some(Err(e))) => break Err(e.to_string()),
            Ok(Some(Ok(frame))) => {
                if let Ok(data) = frame.into_data() {
                    chunks.push((Instant::now(), data));
                }
            }
        }
    };
    Collected {
        status,
        headers,
        chunks,
        end,
    }
}
