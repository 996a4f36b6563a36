//! Where finished calls go: metrics, the call line on stdout, and subscribers.
//!
//! Owns: the bounded queue from the data path to a dedicated worker thread, the worker that
//! turns each [`Pending`] into a [`CallRecord`] and emits it (one place: [`Telemetry::emit`]),
//! the in-flight count that drives the graceful drain, and rate-limited warnings.
//! Does not own: parsing (dialects), per-call state (exchange).

pub mod admin;
pub mod calls;
pub mod conventions;
pub mod export;
pub mod history;
pub mod logging;
pub mod metrics;
pub mod names;
pub mod otel_metrics;
pub mod spans;
pub mod ui;

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    sync::{
        Arc,
        atomic::{AtomicU64, AtomicUsize, Ordering},
    },
    time::{Duration, Instant},
};

use tokio::sync::{Notify, broadcast, mpsc, oneshot};

use crate::pricing::PriceTable;
use crate::{
    config::Config,
    exchange::{CallRecord, Pending, Recorder},
};
use calls::CallWriter;
use export::{ExportError, Health};
use metrics::Metrics;
use spans::Spans;

/// Why [`Telemetry::start`] failed (`llmtap::start` reports it, exit code 1).
#[derive(Debug, thiserror::Error)]
pub enum TelemetryError {
    /// A metric family could not be built or registered (a duplicate or invalid name: a
    /// bug, never the user's input).
    #[error("cannot register metrics: {0}")]
    Metrics(#[from] prometheus::Error),
    /// The span exporter could not be built or its thread started.
    #[error(transparent)]
    Export(#[from] ExportError),
    /// The history (`--db`) could not be opened.
    #[error("--db: {0}")]
    History(#[from] history::HistoryError),
    /// The `--calls-file` handle `config` opened could not be duplicated for the worker.
    #[error("--calls-file: cannot append to {path}: {source}")]
    CallsFile {
        /// The file, as given.
        path: String,
        /// The OS error.
        source: std::io::Error,
    },
}

/// Calls waiting for the worker before new ones are dropped (and counted).
pub const QUEUE: usize = 16 * 1024;

enum Msg {
    Call(Box<Pending>),
    Flush(oneshot::Sender<()>),
}

/// Shared by every exchange. Cheap, non-blocking entry points only.
pub struct Telemetry {
    in_flight: AtomicUsize,
    idle: Notify,
    /// The Prometheus registry `/metrics` serves; the proxy moves its connection counters.
    pub metrics: Metrics,
    tx: mpsc::Sender<Msg>,
    records: broadcast::Sender<Arc<CallRecord>>,
    parse_warning: RateLimit,
    /// `None`: no OTLP endpoint configured, no exporter at all.
    pub spans: Option<Spans>,
    /// `None`: OTel metrics export not configured (the default).
    otel_metrics: Option<otel_metrics::OtelMetrics>,
    /// `None`: `--db none`, or the default path could not be opened.
    pub history: Option<history::History>,
    /// Why the default history could not be opened (the banner says it).
    pub history_unavailable: Option<String>,
    prices: PriceTable,
    budget: Arc<crate::budget::Budget>,
}

impl std::fmt::Debug for Telemetry {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Telemetry")
            .field("in_flight", &self.in_flight())
            .finish_non_exhaustive()
    }
}

impl Telemetry {
    /// Builds the sink and starts its worker thread, which writes call lines to `calls`;
    /// with an OTLP config, also the span pipeline (call from within the runtime).
    pub fn start(
        config: &Config,
        calls: Box<dyn std::io::Write + Send>,
    ) -> Result<Arc<Telemetry>, TelemetryError> {
        let (format, capture) = (config.calls, config.capture);
        let (tx, mut rx) = mpsc::channel(QUEUE);
        let metrics = Metrics::new(metrics::Caps::all(config.label_cap))?;
        let health = Health {
            spans_dropped: metrics.spans_dropped.clone(),
            export_failures: metrics.export_failures.clone(),
        };
        let spans = config
            .otlp
            .as_ref()
            .map(|otlp| {
                Spans::start(
                    otlp,
                    health,
                    spans::Options {
                        capture,
                        conventions: config.conventions,
                        diagnostics: config.otlp_diagnostics,
                    },
                )
            })
            .transpose()?;
        let otel_metrics = config
            .otlp_metrics
            .as_ref()
            .map(|m| {
                otel_metrics::OtelMetrics::start(
                    m,
                    config.conventions,
                    metrics.metric_export_failures.clone(),
                )
            })
            .transpose()?;
        let mut history_unavailable = None;
        let history = match config.history.as_ref().map(|h| {
            (
                h.explicit,
                history::History::start(
                    h,
                    config.capture.max_bytes,
                    history::HistoryHealth {
                        dropped: metrics.history_dropped.clone(),
                    },
                ),
            )
        }) {
            None => None,
            Some((_, Ok(history))) => Some(history),
            Some((true, Err(e))) => return Err(e.into()),
            // The default path: run without a history, and say why in the banner.
            Some((false, Err(e))) => {
                history_unavailable = Some(e.to_string());
                None
            }
        };
        let telemetry = Arc::new(Telemetry {
            in_flight: AtomicUsize::new(0),
            idle: Notify::new(),
            tx,
            records: broadcast::channel(1024).0,
            parse_warning: RateLimit::new(Duration::from_secs(10)),
            spans,
            otel_metrics,
            history,
            history_unavailable,
            prices: config.prices.clone(),
            budget: crate::budget::Budget::new(
                config.observe_budget,
                Some(metrics.observe_held.clone()),
            ),
            metrics,
        });
        let worker = Arc::downgrade(&telemetry);
        // The file `config` opened (and so checked) at start: one more handle to it.
        let file = match &config.calls_file {
            Some(calls) => {
                Some(
                    calls
                        .file
                        .try_clone()
                        .map_err(|source| TelemetryError::CallsFile {
                            path: calls.path.display().to_string(),
                            source,
                        })?,
                )
            }
            None => None,
        };
        let mut writer = CallWriter::new(format, calls, file);
        // The agent loop's state: the worker's alone.
        let mut agent_loop = crate::agentloop::AgentLoop::new(crate::agentloop::Limits::default());
        // A thread, not a task: a blocked stdout must never stall the runtime.
        let spawned = std::thread::Builder::new()
            .name("llmtap-telemetry".into())
            .spawn(move || {
                while let Some(msg) = rx.blocking_recv() {
                    match msg {
                        Msg::Call(pending) => {
                            let Some(telemetry) = worker.upgrade() else {
                                break;
                            };
                            match catch_unwind(AssertUnwindSafe(|| pending.into_record())) {
                                Ok(record) => {
                                    let emitted = catch_unwind(AssertUnwindSafe(|| {
                                        telemetry.emit(record, &mut writer, &mut agent_loop)
                                    }));
                                    if emitted.is_err() {
                                        // The loop's state may be half-updated: start afresh
                                        // rather than stop recording.
                                        agent_loop = crate::agentloop::AgentLoop::new(
                                            crate::agentloop::Limits::default(),
                                        );
                                        tracing::error!("emitting a call panicked; call dropped");
                                    }
                                }
                                Err(_) => {
                                    tracing::error!("building a call record panicked; call dropped")
                                }
                            }
                        }
                        Msg::Flush(done) => {
                            writer.flush();
                            let _ = done.send(());
                        }
                    }
                }
            });
        if let Err(err) = spawned {
            tracing::error!(%err, "cannot start the telemetry thread; calls will not be recorded");
        }
        Ok(telemetry)
    }

    /// The observation budget every call charges (`--observe-budget`).
    pub fn budget(&self) -> &Arc<crate::budget::Budget> {
        &self.budget
    }

    /// Calls started and not yet finished (what the drain waits for).
    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    /// Waits until no call is in flight, or `deadline` passes. Returns the calls left.
    pub async fn drain(&self, deadline: Instant) -> usize {
        loop {
            let idle = self.idle.notified();
            let left = self.in_flight();
            if left == 0 {
                return 0;
            }
            if tokio::time::timeout_at(deadline.into(), idle)
                .await
                .is_err()
            {
                return self.in_flight();
            }
        }
    }

    /// Waits until every call queued so far has been emitted (bounded by `timeout`).
    pub async fn flush(&self, timeout: Duration) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Msg::Flush(done)).await.is_ok() {
            let _ = tokio::time::timeout(timeout, wait).await;
        }
    }

    /// Flushes and stops span and OTel metric export, both at once, waiting at most
    /// `timeout` (+ 0.5 s), off the runtime's worker threads.
    pub async fn shutdown_spans(self: &Arc<Self>, timeout: Duration) {
        if self.spans.is_none() && self.otel_metrics.is_none() {
            return;
        }
        // Metrics on a thread of their own: the SDK's reader waits up to 5 s whatever it is
        // told, and a blocking task would hold the runtime's own shutdown that long.
        let metrics = self.otel_metrics.as_ref().map(|_| {
            let (done, wait) = oneshot::channel();
            let this = self.clone();
            let spawned = std::thread::Builder::new()
                .name("llmtap-otlp-metrics-shutdown".into())
                .spawn(move || {
                    if let Some(metrics) = &this.otel_metrics {
                        metrics.shutdown();
                    }
                    let _ = done.send(());
                });
            if let Err(err) = spawned {
                tracing::warn!(target: "llmtap::export", %err, "cannot flush OTel metrics at shutdown");
            }
            wait
        });
        let this = self.clone();
        let spans = tokio::task::spawn_blocking(move || {
            if let Some(spans) = &this.spans {
                spans.shutdown(timeout);
            }
        });
        let both = async {
            let _ = spans.await;
            if let Some(wait) = metrics {
                let _ = wait.await;
            }
        };
        let _ = tokio::time::timeout(timeout + Duration::from_millis(500), both).await;
    }

    /// Waits until every call recorded so far is in the history (bounded by `timeout`), off
    /// the runtime's worker threads. Nothing to do without a history.
    pub async fn flush_history(self: &Arc<Self>, timeout: Duration) {
        if self.history.is_none() {
            return;
        }
        let this = self.clone();
        let flush = tokio::task::spawn_blocking(move || {
            if let Some(history) = &this.history {
                history.flush(timeout);
            }
        });
        let _ = tokio::time::timeout(timeout + Duration::from_millis(500), flush).await;
    }

    /// Every record from now on (tests, `wrap`'s summary). Lagging receivers lose records.
    pub fn subscribe(&self) -> broadcast::Receiver<Arc<CallRecord>> {
        self.records.subscribe()
    }

    /// The one place a finished call reaches every output.
    fn emit(
        &self,
        mut record: CallRecord,
        writer: &mut CallWriter,
        agent_loop: &mut crate::agentloop::AgentLoop,
    ) {
        price(&self.prices, &mut record);
        let dropped = agent_loop.observe(&mut record, &self.prices);
        self.metrics.tool_calls_unmatched(dropped);
        self.metrics.record(&record);
        if let Some(otel) = &self.otel_metrics {
            otel.record(&record, &self.metrics);
        }
        if let Some(spans) = &self.spans {
            spans.record(&record);
        }
        if let Some(kind) = record.parse_error
            && let Some(suppressed) = self.parse_warning.allow()
        {
            // In a span of its own so that it also reaches the trace backend.
            tracing::warn_span!("llmtap.parse_failure", kind = kind.as_str()).in_scope(|| {
                tracing::warn!(
                    call = %record.id,
                    provider = record.provider.as_str(),
                    path = %record.path,
                    kind = kind.as_str(),
                    suppressed,
                    "could not parse an LLM call; bytes were forwarded unchanged and the call \
                     is recorded with what is known"
                );
            });
        }
        writer.write(&record);
        let record = Arc::new(record);
        if let Some(history) = &self.history {
            history.record(record.clone());
        }
        let _ = self.records.send(record);
    }
}

impl Recorder for Telemetry {
    /// Counts the call in flight and gives it its id.
    fn call_started(&self) -> crate::exchange::CallId {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        self.metrics.in_flight.inc();
        crate::exchange::CallId::new()
    }

    /// Never blocks: a full queue drops the record and counts it.
    fn call_finished(&self, pending: Pending) {
        if self.tx.try_send(Msg::Call(Box::new(pending))).is_err() {
            self.metrics.records_dropped.inc();
        }
        self.metrics.in_flight.dec();
        if self.in_flight.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.idle.notify_waiters();
        }
    }
}

/// Lets one event through per interval and counts the ones it held back.
#[derive(Debug)]
pub struct RateLimit {
    interval_ms: u64,
    origin: Instant,
    next_ms: AtomicU64,
    suppressed: AtomicU64,
}

impl RateLimit {
    /// Lets the first event through, then one per `interval` (millisecond resolution).
    pub fn new(interval: Duration) -> RateLimit {
        RateLimit {
            interval_ms: interval.as_millis() as u64,
            origin: Instant::now(),
            next_ms: AtomicU64::new(0),
            suppressed: AtomicU64::new(0),
        }
    }

    /// `Some(events suppressed since the last allowed one)` if this one may be logged.
    pub fn allow(&self) -> Option<u64> {
        let now = self.origin.elapsed().as_millis() as u64;
        let next = self.next_ms.load(Ordering::Relaxed);
        if now >= next
            && self
                .next_ms
                .compare_exchange(
                    next,
                    now + self.interval_ms,
                    Ordering::Relaxed,
                    Ordering::Relaxed,
                )
                .is_ok()
        {
            return Some(self.suppressed.swap(0, Ordering::Relaxed));
        }
        self.suppressed.fetch_add(1, Ordering::Relaxed);
        None
    }
}

/// Sets a call's cost: what the provider says it billed when it says
/// ([`ResponseFacts::billed_usd`](crate::dialects::ResponseFacts::billed_usd), source
/// `provider`, the table's price kept beside it), else the table's price in the provider's
/// price namespaces (source `table`).
fn price(prices: &PriceTable, record: &mut CallRecord) {
    let namespaces = record.provider.price_namespaces_for(&record.host);
    let namespaces: Vec<&str> = namespaces.iter().map(String::as_str).collect();
    let asked = record.request.as_ref().and_then(|r| r.model.as_deref());
    let answered = record.response.model.as_deref();
    let models = match record.provider.price_model {
        crate::providers::PriceModel::Response => [answered, asked],
        // The model invoked decides; the response's only when the request named none (an
        // opaque application-inference-profile ARN stays unpriced, as `pricing` documents).
        crate::providers::PriceModel::Request => [asked.or(answered), None],
    };
    // The first model the table prices; none priced, no cost.
    // count_tokens is free whatever the model; otherwise the first model the table prices,
    // its cost the sum of its breakdown (computed once), none priced, no cost.
    let (table, parts) = if record.operation == crate::dialects::Operation::CountTokens {
        (Some(0.0), Vec::new())
    } else {
        let tier = record.response.service_tier.as_deref();
        models
            .into_iter()
            .flatten()
            .find_map(|model| prices.breakdown(&namespaces, model, tier, &record.response.usage))
            .map_or((None, Vec::new()), |parts| {
                (Some(parts.iter().map(|p| p.usd).sum()), parts)
            })
    };
    record.cost_parts = parts;
    match record
        .response
        .billed_usd
        .filter(|_| record.provider.billed_cost)
    {
        Some(billed) => {
            record.cost_usd = Some(billed);
            record.cost_source = crate::vocab::CostSource::Provider;
            record.table_cost_usd = table;
        }
        None => {
            record.cost_usd = table;
            record.cost_source = crate::vocab::CostSource::Table;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bedrock_prices_the_profile_invoked_not_the_model_the_response_names() {
        let prices = PriceTable::embedded();
        let table = crate::providers::Providers::builtin();
        let mut record = calls::tests::record();
        record.provider = table
            .provider_of("bedrock-runtime.us-east-1.amazonaws.com")
            .expect("bedrock")
            .clone();
        record.request.as_mut().expect("request").model =
            Some("us.anthropic.claude-sonnet-4-5-20250929-v1:0".into());
        record.response.model = Some("claude-sonnet-4-5-20250929".into());
        record.response.usage = crate::dialects::Usage {
            input: Some(100_000),
            output: Some(0),
            ..Default::default()
        };
        price(&prices, &mut record);
        let ns = ["bedrock"];
        let profile = prices
            .lookup(&ns, "us.anthropic.claude-sonnet-4-5-20250929-v1:0")
            .expect("priced")
            .base
            .input;
        let base = prices
            .lookup(&ns, "anthropic.claude-sonnet-4-5-20250929-v1:0")
            .expect("priced")
            .base
            .input;
        assert!(profile > base, "the cross-region profile costs more");
        let cost = record.cost_usd.expect("priced");
        assert!((cost - profile * 1e5).abs() < 1e-9, "{cost} vs {profile}");
    }

    #[test]
    fn a_provider_billed_cost_is_the_cost_and_the_table_price_is_kept() {
        let prices = PriceTable::embedded();
        let mut record = calls::tests::record();
        let mut openrouter =
            crate::providers::Provider::named("openrouter", &["openrouter", "anthropic"]);
        openrouter.billed_cost = true;
        record.provider = Arc::new(openrouter);
        record.response.model = Some("anthropic/claude-sonnet-4.5".into());
        record.response.usage = crate::dialects::Usage {
            input: Some(1_000_000),
            output: Some(0),
            ..Default::default()
        };
        price(&prices, &mut record);
        let table = record
            .cost_usd
            .expect("priced from the anthropic namespace");
        assert_eq!(record.cost_source, crate::vocab::CostSource::Table);
        assert!(table > 0.0);
        record.response.billed_usd = Some(2.5);
        price(&prices, &mut record);
        assert_eq!(record.cost_usd, Some(2.5));
        assert_eq!(record.cost_source, crate::vocab::CostSource::Provider);
        assert_eq!(record.table_cost_usd, Some(table));
        let line: serde_json::Value =
            serde_json::from_str(&calls::json(&record)).expect("json line");
        assert_eq!(line["cost_source"], "provider");
        assert_eq!(line["cost_usd"], 2.5);
        assert_eq!(line["provider"], "openrouter");
        assert_eq!(line["api"], "anthropic_messages");
        // A provider that has not opted in cannot set a call's cost.
        let mut other = crate::providers::Provider::named("gw", &["anthropic"]);
        other.billed_cost = false;
        record.provider = Arc::new(other);
        price(&prices, &mut record);
        assert_eq!(record.cost_source, crate::vocab::CostSource::Table);
        assert_eq!(record.cost_usd, Some(table));
    }

    #[test]
    fn rate_limit_lets_one_through_per_interval() {
        let limit = RateLimit::new(Duration::from_secs(3600));
        assert_eq!(limit.allow(), Some(0));
        assert_eq!(limit.allow(), None);
        assert_eq!(limit.allow(), None);
        limit.next_ms.store(0, Ordering::Relaxed);
        assert_eq!(limit.allow(), Some(2));
    }
}
