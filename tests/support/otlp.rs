//! A real OTLP trace and metrics receiver for tests: gRPC (tonic's `TraceService` and
//! `MetricsService`) or HTTP/protobuf (a hyper server on `/v1/traces` and `/v1/metrics`),
//! decoding the protobuf that llmtap sends with opentelemetry-proto's generated types. Also a "blackhole" collector that accepts TCP
//! connections and never answers.

use std::{
    collections::HashMap,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use bytes::Bytes;
use http_body_util::{BodyExt as _, Full};
use hudsucker::hyper::{
    Request, Response, body::Incoming, server::conn::http1, service::service_fn,
};
use hyper_util::rt::TokioIo;
use opentelemetry_proto::tonic::{
    collector::{
        metrics::v1::{
            ExportMetricsServiceRequest, ExportMetricsServiceResponse,
            metrics_service_server::{MetricsService, MetricsServiceServer},
        },
        trace::v1::{
            ExportTraceServiceRequest, ExportTraceServiceResponse,
            trace_service_server::{TraceService, TraceServiceServer},
        },
    },
    common::v1::{KeyValue, any_value::Value},
    metrics::v1::{metric::Data, number_data_point},
    trace::v1::Span,
};
use prost::Message as _;
use tokio::{net::TcpListener, sync::Notify, task::JoinHandle};

/// One received span with where it came from.
#[derive(Debug, Clone)]
pub struct Received {
    pub resource: HashMap<String, Value>,
    pub scope: String,
    pub span: Span,
}

impl Received {
    pub fn attr(&self, key: &str) -> Option<&Value> {
        attr(&self.span.attributes, key)
    }

    pub fn str(&self, key: &str) -> Option<&str> {
        match self.attr(key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }

    pub fn int(&self, key: &str) -> Option<i64> {
        match self.attr(key) {
            Some(Value::IntValue(i)) => Some(*i),
            _ => None,
        }
    }

    pub fn strings(&self, key: &str) -> Option<Vec<String>> {
        match self.attr(key) {
            Some(Value::ArrayValue(a)) => Some(
                a.values
                    .iter()
                    .filter_map(|v| match &v.value {
                        Some(Value::StringValue(s)) => Some(s.clone()),
                        _ => None,
                    })
                    .collect(),
            ),
            _ => None,
        }
    }
}

pub fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a Value> {
    attrs
        .iter()
        .find(|kv| kv.key == key)?
        .value
        .as_ref()?
        .value
        .as_ref()
}

#[derive(Default)]
struct Store {
    requests: Mutex<Vec<ExportTraceServiceRequest>>,
    metrics: Mutex<Vec<ExportMetricsServiceRequest>>,
    raw: Mutex<Vec<u8>>,
    /// Export requests that arrived gzip-compressed.
    gzipped: std::sync::atomic::AtomicUsize,
    arrived: Notify,
}

impl Store {
    fn push(&self, raw: &[u8], req: ExportTraceServiceRequest) {
        self.raw.lock().expect("lock").extend_from_slice(raw);
        self.requests.lock().expect("lock").push(req);
        self.arrived.notify_waiters();
    }

    fn push_metrics(&self, raw: &[u8], req: ExportMetricsServiceRequest) {
        self.raw.lock().expect("lock").extend_from_slice(raw);
        self.metrics.lock().expect("lock").push(req);
        self.arrived.notify_waiters();
    }
}

/// One data point of a received metric, decoded: its attributes (values as strings, ints
/// and doubles printed), and its value (a sum's) or count, sum and buckets (a histogram's).
#[derive(Debug, Clone)]
pub struct Point {
    pub attributes: HashMap<String, Value>,
    /// A sum's value (ints as f64).
    pub value: Option<f64>,
    /// A histogram's count.
    pub count: Option<u64>,
    /// A histogram's sum.
    pub sum: Option<f64>,
    /// A histogram's explicit bounds.
    pub bounds: Vec<f64>,
    /// A histogram's bucket counts (one more than the bounds).
    pub buckets: Vec<u64>,
}

impl Point {
    pub fn str(&self, key: &str) -> Option<&str> {
        match self.attributes.get(key) {
            Some(Value::StringValue(s)) => Some(s),
            _ => None,
        }
    }
}

/// One received metric from one export: name, unit, kind (`histogram`, `sum`, `gauge`, …),
/// temporality (1 delta, 2 cumulative) and its points, with the resource it came with.
#[derive(Debug, Clone)]
pub struct ReceivedMetric {
    pub resource: HashMap<String, Value>,
    pub scope: String,
    pub name: String,
    pub unit: String,
    pub kind: &'static str,
    pub temporality: i32,
    pub monotonic: bool,
    pub points: Vec<Point>,
}

fn attributes(attrs: &[KeyValue]) -> HashMap<String, Value> {
    attrs
        .iter()
        .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
        .collect()
}

pub struct Receiver {
    pub addr: SocketAddr,
    store: Arc<Store>,
    task: JoinHandle<()>,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.task.abort();
    }
}

struct Grpc(Arc<Store>);

#[tonic::async_trait]
impl TraceService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportTraceServiceRequest>,
    ) -> Result<tonic::Response<ExportTraceServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        // tonic decoded it already; the re-encoding carries the same strings and numbers.
        self.0.push(&req.encode_to_vec(), req);
        Ok(tonic::Response::new(ExportTraceServiceResponse {
            partial_success: None,
        }))
    }
}

#[tonic::async_trait]
impl MetricsService for Grpc {
    async fn export(
        &self,
        request: tonic::Request<ExportMetricsServiceRequest>,
    ) -> Result<tonic::Response<ExportMetricsServiceResponse>, tonic::Status> {
        let req = request.into_inner();
        self.0.push_metrics(&req.encode_to_vec(), req);
        Ok(tonic::Response::new(ExportMetricsServiceResponse {
            partial_success: None,
        }))
    }
}

impl Receiver {
    /// A gRPC OTLP receiver (traces and metrics) on 127.0.0.1:0 (endpoint `http://ADDR`).
    pub async fn grpc() -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let store = Arc::new(Store::default());
        let gzip = tonic::codec::CompressionEncoding::Gzip;
        let service = TraceServiceServer::new(Grpc(store.clone())).accept_compressed(gzip);
        let metrics = MetricsServiceServer::new(Grpc(store.clone())).accept_compressed(gzip);
        let task = tokio::spawn(async move {
            let incoming = tonic::transport::server::TcpIncoming::from(listener);
            let _ = tonic::transport::Server::builder()
                .add_service(service)
                .add_service(metrics)
                .serve_with_incoming(incoming)
                .await;
        });
        Receiver { addr, store, task }
    }

    /// An HTTP/protobuf OTLP receiver on 127.0.0.1:0 (endpoint `http://ADDR`, path
    /// `/v1/traces`); anything else gets 404.
    pub async fn http() -> Receiver {
        Self::http_with(None).await
    }

    /// The same over TLS, with a certificate from a fresh test CA (returned as PEM):
    /// endpoint `https://ADDR` (the leaf is valid for 127.0.0.1 and localhost).
    pub async fn https() -> (Receiver, String) {
        let (ca_pem, tls) = llmtap_fake_upstream::test_pki();
        let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
        (Self::http_with(Some(acceptor)).await, ca_pem)
    }

    async fn http_with(tls: Option<tokio_rustls::TlsAcceptor>) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let store = Arc::new(Store::default());
        let server_store = store.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let store = server_store.clone();
                let tls = tls.clone();
                tokio::spawn(async move {
                    match tls {
                        Some(acceptor) => {
                            if let Ok(stream) = acceptor.accept(tcp).await {
                                serve_http(stream, store).await;
                            }
                        }
                        None => serve_http(tcp, store).await,
                    }
                });
            }
        });
        Receiver { addr, store, task }
    }

    pub fn endpoint(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn https_endpoint(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    /// Every span received so far.
    pub fn spans(&self) -> Vec<Received> {
        let requests = self.store.requests.lock().expect("lock");
        let mut out = Vec::new();
        for req in requests.iter() {
            for rs in &req.resource_spans {
                let resource: HashMap<String, Value> = rs
                    .resource
                    .iter()
                    .flat_map(|r| r.attributes.iter())
                    .filter_map(|kv| Some((kv.key.clone(), kv.value.clone()?.value?)))
                    .collect();
                for ss in &rs.scope_spans {
                    let scope = ss
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for span in &ss.spans {
                        out.push(Received {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            span: span.clone(),
                        });
                    }
                }
            }
        }
        out
    }

    /// Spans of the `llmtap` scope (one per call), once at least `n` arrived (10 s max).
    pub async fn call_spans(&self, n: usize) -> Vec<Received> {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
        loop {
            let arrived = self.store.arrived.notified();
            let spans: Vec<Received> = self
                .spans()
                .into_iter()
                .filter(|s| s.scope == "llmtap")
                .collect();
            if spans.len() >= n {
                return spans;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                panic!(
                    "expected {n} call spans, got {}: {:?}",
                    spans.len(),
                    self.spans()
                );
            }
        }
    }

    /// Every metric received so far, one entry per metric per export.
    pub fn metrics(&self) -> Vec<ReceivedMetric> {
        let requests = self.store.metrics.lock().expect("lock");
        let mut out = Vec::new();
        for req in requests.iter() {
            for rm in &req.resource_metrics {
                let resource = attributes(
                    rm.resource
                        .iter()
                        .flat_map(|r| r.attributes.iter())
                        .cloned()
                        .collect::<Vec<_>>()
                        .as_slice(),
                );
                for sm in &rm.scope_metrics {
                    let scope = sm
                        .scope
                        .as_ref()
                        .map(|s| s.name.clone())
                        .unwrap_or_default();
                    for m in &sm.metrics {
                        let (kind, temporality, monotonic, points) = match &m.data {
                            Some(Data::Histogram(h)) => (
                                "histogram",
                                h.aggregation_temporality,
                                false,
                                h.data_points
                                    .iter()
                                    .map(|p| Point {
                                        attributes: attributes(&p.attributes),
                                        value: None,
                                        count: Some(p.count),
                                        sum: p.sum,
                                        bounds: p.explicit_bounds.clone(),
                                        buckets: p.bucket_counts.clone(),
                                    })
                                    .collect(),
                            ),
                            Some(Data::Sum(s)) => (
                                "sum",
                                s.aggregation_temporality,
                                s.is_monotonic,
                                s.data_points
                                    .iter()
                                    .map(|p| Point {
                                        attributes: attributes(&p.attributes),
                                        value: p.value.map(|v| match v {
                                            number_data_point::Value::AsDouble(d) => d,
                                            number_data_point::Value::AsInt(i) => i as f64,
                                        }),
                                        count: None,
                                        sum: None,
                                        bounds: Vec::new(),
                                        buckets: Vec::new(),
                                    })
                                    .collect(),
                            ),
                            Some(Data::Gauge(_)) => ("gauge", 0, false, Vec::new()),
                            Some(_) => ("other", 0, false, Vec::new()),
                            None => ("none", 0, false, Vec::new()),
                        };
                        out.push(ReceivedMetric {
                            resource: resource.clone(),
                            scope: scope.clone(),
                            name: m.name.clone(),
                            unit: m.unit.clone(),
                            kind,
                            temporality,
                            monotonic,
                            points,
                        });
                    }
                }
            }
        }
        out
    }

    /// The latest export of metric `name` once it arrived with at least `points` points and
    /// `predicate` true of it (15 s max).
    pub async fn metric_where(
        &self,
        name: &str,
        predicate: impl Fn(&ReceivedMetric) -> bool,
    ) -> ReceivedMetric {
        let deadline = tokio::time::Instant::now() + Duration::from_secs(15);
        loop {
            let arrived = self.store.arrived.notified();
            if let Some(m) = self
                .metrics()
                .into_iter()
                .rev()
                .find(|m| m.name == name && predicate(m))
            {
                return m;
            }
            if tokio::time::timeout_at(deadline, arrived).await.is_err() {
                let names: Vec<String> = self.metrics().into_iter().map(|m| m.name).collect();
                panic!("metric {name} not received as expected; received: {names:?}");
            }
        }
    }

    /// How many HTTP export requests arrived gzip-compressed.
    pub fn gzipped(&self) -> usize {
        self.store.gzipped.load(std::sync::atomic::Ordering::SeqCst)
    }

    /// Every byte received (HTTP bodies, decompressed; the re-encoded messages for gRPC).
    pub fn raw(&self) -> Vec<u8> {
        self.store.raw.lock().expect("lock").clone()
    }
}

async fn serve_http<IO>(io: IO, store: Arc<Store>)
where
    IO: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let service = service_fn(move |req: Request<Incoming>| {
        let store = store.clone();
        async move {
            let path = req.uri().path().to_owned();
            let gzip = req
                .headers()
                .get("content-encoding")
                .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"gzip"));
            let content_type = req
                .headers()
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default()
                .to_owned();
            let mut body = req.into_body().collect().await.expect("body").to_bytes();
            if gzip {
                use std::io::Read as _;
                let mut plain = Vec::new();
                flate2::read::GzDecoder::new(body.as_ref())
                    .read_to_end(&mut plain)
                    .expect("a gzip body");
                body = Bytes::from(plain);
                store
                    .gzipped
                    .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            }
            let status = if path != "/v1/traces" && path != "/v1/metrics" {
                404
            } else if content_type != "application/x-protobuf" {
                415
            } else if path == "/v1/metrics" {
                match ExportMetricsServiceRequest::decode(body.as_ref()) {
                    Ok(msg) => {
                        store.push_metrics(&body, msg);
                        200
                    }
                    Err(_) => 400,
                }
            } else {
                match ExportTraceServiceRequest::decode(body.as_ref()) {
                    Ok(msg) => {
                        store.push(&body, msg);
                        200
                    }
                    Err(_) => 400,
                }
            };
            let reply = ExportTraceServiceResponse {
                partial_success: None,
            };
            let mut res = Response::new(Full::new(Bytes::from(reply.encode_to_vec())));
            *res.status_mut() = hudsucker::hyper::StatusCode::from_u16(status).expect("status");
            res.headers_mut().insert(
                "content-type",
                "application/x-protobuf".parse().expect("header value"),
            );
            Ok::<_, std::convert::Infallible>(res)
        }
    });
    let _ = http1::Builder::new()
        .serve_connection(TokioIo::new(io), service)
        .await;
}

/// A collector that accepts connections and never reads or answers.
pub struct Blackhole {
    pub addr: SocketAddr,
    task: JoinHandle<()>,
}

impl Blackhole {
    pub async fn start() -> Blackhole {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
        let addr = listener.local_addr().expect("addr");
        let task = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((tcp, _)) = listener.accept().await {
                held.push(tcp);
            }
        });
        Blackhole { addr, task }
    }
}

impl Drop for Blackhole {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// Unix nanoseconds as the proto carries them.
pub fn nanos(t: std::time::SystemTime) -> u64 {
    t.duration_since(std::time::UNIX_EPOCH)
        .expect("after epoch")
        .as_nanos() as u64
}
