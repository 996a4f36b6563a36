//! Getting spans to the collector: a bounded queue, a batching export thread, and the
//! counters that tell when it fails.
//!
//! Owns: the [`SpanProcessor`] that every span ends in (`on_end` is a `try_send`: it never
//! blocks, a full queue drops the span and counts it in `llmtap_spans_dropped_total`), the
//! export thread that batches and sends, `llmtap_otlp_export_failures_total`, the
//! rate-limited "collector unreachable" warning, and a bounded flush at shutdown.
//! The SDK's own BatchSpanProcessor drops silently; counting is why this exists.
//!
//! Export runs on its own thread: the gRPC exporter is driven inside the tokio runtime's
//! context (tonic needs its reactor), the HTTP exporter with a blocking reqwest client
//! outside it. Neither ever runs on the data path.

use std::{
    ops::ControlFlow,
    sync::{
        Arc,
        atomic::{AtomicUsize, Ordering},
        mpsc::{self, Receiver, SyncSender, TryRecvError, TrySendError},
    },
    time::{Duration, Instant},
};

use opentelemetry::Context;
use opentelemetry_otlp::{SpanExporter, WithExportConfig, WithHttpConfig, WithTonicConfig};
use opentelemetry_sdk::{
    Resource,
    error::{OTelSdkError, OTelSdkResult},
    trace::{Span, SpanData, SpanExporter as _, SpanProcessor},
};
use prometheus::IntCounter;

use super::RateLimit;
use crate::config::otlp::{OtlpConfig, Protocol};

/// Spans waiting for export before new ones are dropped.
pub const QUEUE: usize = 8192;
/// Spans per export request.
pub const BATCH: usize = 512;
/// Longest a span waits in a partial batch.
pub const DELAY: Duration = Duration::from_millis(500);

/// Counters the export path moves.
#[derive(Clone, Debug)]
pub struct Health {
    /// `llmtap_spans_dropped_total`: spans refused by a full queue or lost with a failed
    /// batch.
    pub spans_dropped: IntCounter,
    /// `llmtap_otlp_export_failures_total`: export requests that failed.
    pub export_failures: IntCounter,
}

/// Why the export pipeline could not start.
#[derive(Debug, thiserror::Error)]
pub enum ExportError {
    /// The OTLP exporter could not be built (the endpoint, headers or TLS roots were
    /// refused by the exporter's builder); the message is the builder's.
    #[error("cannot build the OTLP exporter: {0}")]
    Build(String),
    /// The export thread could not be spawned.
    #[error("cannot start the export thread: {0}")]
    Thread(std::io::Error),
}

enum Msg {
    Span(Box<SpanData>),
    Resource(Resource),
    Flush(mpsc::Sender<()>),
    Shutdown(mpsc::Sender<()>),
}

/// The span processor: hands spans to the export thread without ever waiting.
///
/// The export thread is not woken for each span: it sleeps until its partial batch is due
/// (at most [`DELAY`] after the batch's first span) and is woken early only when [`BATCH`]
/// spans are waiting or a flush, shutdown or resource comes. At one call at a time a
/// wake-up per span was a context switch per call (`perf stat --per-thread`, issue 18).
#[derive(Debug)]
pub struct Queue {
    tx: SyncSender<Msg>,
    health: Health,
    /// Spans handed over and not yet exported (in the channel or the thread's batch).
    waiting: Arc<AtomicUsize>,
    /// The export thread, to wake it early.
    thread: std::thread::Thread,
}

impl Queue {
    /// Builds the exporter (on the export thread) and starts that thread. Must be called
    /// from within the tokio runtime (gRPC needs its handle).
    pub fn start(config: &OtlpConfig, health: Health) -> Result<Queue, ExportError> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let (ready_tx, ready_rx) = mpsc::channel();
        let runtime = tokio::runtime::Handle::current();
        let config = config.clone();
        let thread_health = health.clone();
        let waiting = Arc::new(AtomicUsize::new(0));
        let thread_waiting = waiting.clone();
        let handle = std::thread::Builder::new()
            .name("llmtap-otlp".into())
            .spawn(move || {
                let built = match config.protocol {
                    // tonic's channel spawns onto the runtime; build and drive it there.
                    Protocol::Grpc => {
                        let _guard = runtime.enter();
                        grpc(&config)
                    }
                    Protocol::HttpProtobuf => http(&config),
                };
                match built {
                    Ok(exporter) => {
                        let _ = ready_tx.send(Ok(()));
                        let driver = Driver {
                            exporter,
                            config,
                            health: thread_health,
                            runtime,
                            waiting: thread_waiting,
                        };
                        driver.run(rx);
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                    }
                }
            })
            .map_err(ExportError::Thread)?;
        ready_rx
            .recv()
            .unwrap_or_else(|_| Err(ExportError::Build("export thread ended".into())))?;
        Ok(Queue {
            tx,
            health,
            waiting,
            thread: handle.thread().clone(),
        })
    }

    /// Hands a message other than a span over and wakes the thread for it.
    fn try_send_now(&self, msg: Msg) -> Result<(), TrySendError<Msg>> {
        let sent = self.tx.try_send(msg);
        self.thread.unpark();
        sent
    }

    fn request(
        &self,
        make: impl FnOnce(mpsc::Sender<()>) -> Msg,
        timeout: Duration,
    ) -> OTelSdkResult {
        let (done, wait) = mpsc::channel();
        // A full queue must not block a flush forever: give up after the timeout.
        let deadline = Instant::now() + timeout;
        let mut msg = make(done);
        loop {
            match self.try_send_now(msg) {
                Ok(()) => break,
                Err(TrySendError::Full(back)) if Instant::now() < deadline => {
                    msg = back;
                    std::thread::park_timeout(Duration::from_millis(5));
                }
                Err(_) => return Err(OTelSdkError::Timeout(timeout)),
            }
        }
        wait.recv_timeout(deadline.saturating_duration_since(Instant::now()))
            .map_err(|_| OTelSdkError::Timeout(timeout))
    }
}

impl SpanProcessor for Queue {
    fn on_start(&self, _span: &mut Span, _cx: &Context) {}

    fn on_end(&self, span: SpanData) {
        // Counted before it is sent, so that the export thread never takes it off first.
        let before = self.waiting.fetch_add(1, Ordering::Relaxed);
        if self.tx.try_send(Msg::Span(Box::new(span))).is_err() {
            self.waiting.fetch_sub(1, Ordering::Relaxed);
            self.health.spans_dropped.inc();
        } else if before + 1 == BATCH {
            // A full batch is waiting: send it now rather than at its deadline.
            self.thread.unpark();
        }
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.request(Msg::Flush, Duration::from_secs(5))
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.request(Msg::Shutdown, timeout)
    }

    fn set_resource(&mut self, resource: &Resource) {
        if self.try_send_now(Msg::Resource(resource.clone())).is_err() {
            tracing::warn!(target: "llmtap::export", "cannot hand the resource to the export thread");
        }
    }
}

struct Driver {
    exporter: SpanExporter,
    config: OtlpConfig,
    health: Health,
    runtime: tokio::runtime::Handle,
    waiting: Arc<AtomicUsize>,
}

impl Driver {
    fn run(mut self, rx: Receiver<Msg>) {
        let warning = RateLimit::new(Duration::from_secs(60));
        let mut batch: Vec<SpanData> = Vec::with_capacity(BATCH);
        // When the partial batch's first span came.
        let mut oldest: Option<Instant> = None;
        loop {
            // Everything already queued, without waiting.
            loop {
                let next = match rx.try_recv() {
                    Ok(msg) => self.handle(msg, &mut batch, &mut oldest, &warning),
                    Err(TryRecvError::Empty) => break,
                    Err(TryRecvError::Disconnected) => {
                        self.export(&mut batch, &warning);
                        return;
                    }
                };
                if next.is_break() {
                    return;
                }
            }
            match oldest {
                // Nothing to send: sleep until a message comes.
                None => match rx.recv() {
                    Ok(msg) => {
                        if self
                            .handle(msg, &mut batch, &mut oldest, &warning)
                            .is_break()
                        {
                            return;
                        }
                    }
                    Err(_) => return,
                },
                Some(first) => {
                    let left = DELAY.saturating_sub(first.elapsed());
                    if left.is_zero() {
                        self.export(&mut batch, &warning);
                        oldest = None;
                    } else {
                        // Until the batch is due, unless a full batch or a request wakes us.
                        std::thread::park_timeout(left);
                    }
                }
            }
        }
    }

    fn handle(
        &mut self,
        msg: Msg,
        batch: &mut Vec<SpanData>,
        oldest: &mut Option<Instant>,
        warning: &RateLimit,
    ) -> ControlFlow<()> {
        match msg {
            Msg::Span(span) => {
                oldest.get_or_insert_with(Instant::now);
                batch.push(*span);
                if batch.len() >= BATCH {
                    self.export(batch, warning);
                    *oldest = None;
                }
            }
            Msg::Resource(resource) => self.exporter.set_resource(&resource),
            Msg::Flush(done) => {
                self.export(batch, warning);
                *oldest = None;
                let _ = done.send(());
            }
            Msg::Shutdown(done) => {
                self.export(batch, warning);
                let _ = self.exporter.shutdown_with_timeout(Duration::from_secs(1));
                let _ = done.send(());
                return ControlFlow::Break(());
            }
        }
        ControlFlow::Continue(())
    }

    fn export(&self, batch: &mut Vec<SpanData>, warning: &RateLimit) {
        if batch.is_empty() {
            return;
        }
        let spans = std::mem::replace(batch, Vec::with_capacity(BATCH));
        self.waiting.fetch_sub(spans.len(), Ordering::Relaxed);
        let count = spans.len() as u64;
        let result = match self.config.protocol {
            Protocol::Grpc => self.runtime.block_on(self.exporter.export(spans)),
            Protocol::HttpProtobuf => futures_executor::block_on(self.exporter.export(spans)),
        };
        if let Err(err) = result {
            self.health.export_failures.inc();
            self.health.spans_dropped.inc_by(count);
            if let Some(suppressed) = warning.allow() {
                tracing::warn!(
                    target: "llmtap::export",
                    endpoint = %crate::wire::redact_url(&self.config.endpoint),
                    %err,
                    spans = count,
                    suppressed,
                    "cannot export spans to the OTLP collector; traffic is unaffected, spans are \
                     dropped and counted in llmtap_spans_dropped_total"
                );
            }
        }
    }
}

/// What a tonic exporter needs from `config`: the headers as gRPC metadata and, for an
/// `https://` collector, the TLS roots. Shared by the span and metric exporters.
fn tonic_parts(
    config: &OtlpConfig,
) -> Result<
    (
        opentelemetry_otlp::tonic_types::metadata::MetadataMap,
        Option<opentelemetry_otlp::tonic_types::transport::ClientTlsConfig>,
    ),
    ExportError,
> {
    use http::{HeaderMap, HeaderName, HeaderValue};
    use opentelemetry_otlp::tonic_types::{
        metadata::MetadataMap,
        transport::{Certificate, ClientTlsConfig},
    };
    let mut headers = HeaderMap::new();
    for (key, value) in &config.headers {
        let key = HeaderName::from_bytes(key.as_bytes())
            .map_err(|_| ExportError::Build(format!("header '{key}' is not a valid name")))?;
        let value = HeaderValue::from_str(&value.0)
            .map_err(|_| ExportError::Build(format!("the value of header '{key}' is invalid")))?;
        headers.insert(key, value);
    }
    let metadata = MetadataMap::from_headers(headers);
    let tls = config.endpoint.starts_with("https://").then(|| {
        // The roots `config` read, not tonic's own read of the platform's: the system roots
        // that rustls accepts (as the upstream connector skips odd ones), then the
        // collector's certificate, which must be valid.
        let usable = config
            .system_roots
            .iter()
            .filter(|der| rustls::RootCertStore::empty().add((*der).clone()).is_ok());
        let mut tls = ClientTlsConfig::new().with_webpki_roots();
        for der in usable.chain(&config.extra_roots) {
            let pem = pem::encode(&pem::Pem::new("CERTIFICATE", der.as_ref().to_vec()));
            tls = tls.ca_certificate(Certificate::from_pem(pem));
        }
        tls
    });
    Ok((metadata, tls))
}

/// The blocking HTTP client an HTTP/protobuf exporter sends with: llmtap's TLS roots and the
/// export timeout. Build it off the runtime (reqwest's blocking client runs its own).
fn http_client(config: &OtlpConfig) -> Result<reqwest::blocking::Client, ExportError> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let tls = crate::config::tls_client_config(provider, &config.system_roots, &config.extra_roots)
        .map_err(|e| ExportError::Build(e.to_string()))?;
    reqwest::blocking::Client::builder()
        .tls_backend_preconfigured(tls)
        .timeout(config.timeout)
        .build()
        .map_err(|e| ExportError::Build(e.to_string()))
}

/// An exporter builder's error, its copy of the endpoint redacted ([`crate::wire::redact_url`]):
/// the message reaches stderr.
pub(super) fn build_error(config: &OtlpConfig, e: impl std::fmt::Display) -> ExportError {
    let shown = crate::wire::redact_url(&config.endpoint);
    ExportError::Build(e.to_string().replace(&config.endpoint, &shown))
}

/// `config`'s headers as the HTTP exporter takes them.
fn http_headers(config: &OtlpConfig) -> std::collections::HashMap<String, String> {
    config
        .headers
        .iter()
        .map(|(k, v)| (k.clone(), v.0.clone()))
        .collect()
}

/// A tonic exporter builder, the spans' or the metrics', set up from `config`: endpoint,
/// timeout, headers as metadata, TLS roots for an `https://` collector, compression.
pub(super) fn tonic_builder<B>(builder: B, config: &OtlpConfig) -> Result<B, ExportError>
where
    B: WithExportConfig + WithTonicConfig,
{
    let (metadata, tls) = tonic_parts(config)?;
    let mut builder = builder
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .with_metadata(metadata);
    if let Some(tls) = tls {
        builder = builder.with_tls_config(tls);
    }
    if config.gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(builder)
}

/// An HTTP/protobuf exporter builder, the spans' or the metrics', set up from `config`: the
/// blocking client with llmtap's roots, endpoint, timeout, headers, compression. Build it off
/// the runtime.
pub(super) fn http_builder<B>(builder: B, config: &OtlpConfig) -> Result<B, ExportError>
where
    B: WithExportConfig + WithHttpConfig,
{
    let mut builder = builder
        .with_http_client(http_client(config)?)
        .with_protocol(opentelemetry_otlp::Protocol::HttpBinary)
        .with_endpoint(config.endpoint.clone())
        .with_timeout(config.timeout)
        .with_headers(http_headers(config));
    if config.gzip {
        builder = builder.with_compression(opentelemetry_otlp::Compression::Gzip);
    }
    Ok(builder)
}

fn grpc(config: &OtlpConfig) -> Result<SpanExporter, ExportError> {
    tonic_builder(SpanExporter::builder().with_tonic(), config)?
        .build()
        .map_err(|e| build_error(config, e))
}

fn http(config: &OtlpConfig) -> Result<SpanExporter, ExportError> {
    http_builder(SpanExporter::builder().with_http(), config)?
        .build()
        .map_err(|e| build_error(config, e))
}
