//! OTel metrics over OTLP: the GenAI conventions' client metrics and llmtap's cost counter,
//! for backends that read `gen_ai.client.*` rather than scrape `/metrics`.
//!
//! Owns: the meter provider (the spans' resource, a `PeriodicReader` on its own thread at
//! `OTEL_METRIC_EXPORT_INTERVAL`), the instruments of the configured conventions version
//! ([`Conventions`]), and recording one finished call into them (the telemetry worker's
//! thread; recording is in-memory aggregation and never waits on the network).
//! Export failures are counted in `llmtap_otlp_export_failures_total{signal="metrics"}` and
//! warned about at most once a minute; traffic is never affected. Prometheus `/metrics` is
//! unchanged and independent of this.
//! Does not own: the configuration (`config::otlp`), Prometheus metrics (`metrics`).

use std::time::Duration;

use opentelemetry::{
    KeyValue,
    metrics::{Counter, Histogram, Meter, MeterProvider as _},
};
use opentelemetry_otlp::MetricExporter;
use opentelemetry_sdk::{
    error::OTelSdkResult,
    metrics::{
        PeriodicReader, SdkMeterProvider, Temporality as SdkTemporality, data::ResourceMetrics,
        exporter::PushMetricExporter,
    },
};
use prometheus::IntCounter;

use super::{
    RateLimit,
    export::{ExportError, build_error, http_builder, tonic_builder},
    metrics::Metrics,
    names::{attr, otel},
};
use crate::{
    config::otlp::{Conventions, MetricsConfig, OtlpConfig, Protocol, Temporality},
    dialects::Operation,
    exchange::CallRecord,
};

/// The OTLP metric exporter, counting its failures. The periodic reader drives it from its
/// own thread; a gRPC export runs on the tokio runtime (tonic needs its reactor).
struct Counted {
    inner: MetricExporter,
    runtime: Option<tokio::runtime::Handle>,
    failures: IntCounter,
    warning: RateLimit,
    endpoint: String,
}

impl PushMetricExporter for Counted {
    fn export(
        &self,
        metrics: &ResourceMetrics,
    ) -> impl std::future::Future<Output = OTelSdkResult> + Send {
        // The reader's thread blocks on this export anyway: run it to completion here.
        let result = match &self.runtime {
            Some(runtime) => runtime.block_on(self.inner.export(metrics)),
            None => futures_executor::block_on(self.inner.export(metrics)),
        };
        if let Err(err) = &result {
            self.failures.inc();
            if let Some(suppressed) = self.warning.allow() {
                tracing::warn!(
                    target: "llmtap::export",
                    endpoint = %self.endpoint,
                    %err,
                    suppressed,
                    "cannot export metrics to the OTLP collector; traffic is unaffected, \
                     failures are counted in llmtap_otlp_export_failures_total{{signal=\"metrics\"}}"
                );
            }
        }
        std::future::ready(result)
    }

    fn force_flush(&self) -> OTelSdkResult {
        self.inner.force_flush()
    }

    fn shutdown_with_timeout(&self, timeout: Duration) -> OTelSdkResult {
        self.inner.shutdown_with_timeout(timeout)
    }

    fn temporality(&self) -> SdkTemporality {
        self.inner.temporality()
    }
}

fn exporter(
    config: &OtlpConfig,
    temporality: SdkTemporality,
) -> Result<MetricExporter, ExportError> {
    match config.protocol {
        Protocol::Grpc => tonic_builder(MetricExporter::builder().with_tonic(), config)?
            .with_temporality(temporality)
            .build(),
        Protocol::HttpProtobuf => http_builder(MetricExporter::builder().with_http(), config)?
            .with_temporality(temporality)
            .build(),
    }
    .map_err(|e| build_error(config, e))
}

/// The token instruments, by conventions version.
enum Tokens {
    /// v1.41: one histogram by `gen_ai.token.type`.
    V1_41(Histogram<u64>),
    /// Latest: a counter per kind of token and two per-call histograms.
    Latest {
        input: Counter<u64>,
        output: Counter<u64>,
        cache_read: Counter<u64>,
        cache_write: Counter<u64>,
        reasoning: Counter<u64>,
        per_call_input: Histogram<u64>,
        per_call_output: Histogram<u64>,
    },
}

/// The OTel metrics pipeline: exists only when OTel metrics export is configured.
pub struct OtelMetrics {
    provider: SdkMeterProvider,
    /// Inference calls' duration (`gen_ai.client.operation.duration` under v1.41,
    /// `gen_ai.client.inference.duration` under the latest conventions).
    duration: Histogram<f64>,
    /// Other operations' duration under the latest conventions (token counting), which keep
    /// `gen_ai.client.operation.duration`; `None` under v1.41, where `duration` is that.
    other_duration: Option<Histogram<f64>>,
    time_to_first_chunk: Histogram<f64>,
    time_per_output_chunk: Histogram<f64>,
    tokens: Tokens,
    cost: Counter<f64>,
}

impl std::fmt::Debug for OtelMetrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OtelMetrics").finish_non_exhaustive()
    }
}

fn seconds(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<f64> {
    meter
        .f64_histogram(name)
        .with_unit("s")
        .with_description(description)
        .with_boundaries(otel::DURATION_BUCKETS.to_vec())
        .build()
}

fn token_histogram(meter: &Meter, name: &'static str, description: &'static str) -> Histogram<u64> {
    meter
        .u64_histogram(name)
        .with_unit("{token}")
        .with_description(description)
        .with_boundaries(otel::TOKEN_BUCKETS.to_vec())
        .build()
}

fn token_counter(meter: &Meter, name: &'static str, description: &'static str) -> Counter<u64> {
    meter
        .u64_counter(name)
        .with_unit("{token}")
        .with_description(description)
        .build()
}

impl OtelMetrics {
    /// Builds the exporter and the periodic reader's thread. Call from within the tokio
    /// runtime (gRPC needs its handle); blocks briefly while the HTTP client is built on a
    /// thread of its own (reqwest's blocking client cannot be built on the runtime).
    pub fn start(
        config: &MetricsConfig,
        conventions: Conventions,
        failures: IntCounter,
    ) -> Result<OtelMetrics, ExportError> {
        let temporality = match config.temporality {
            Temporality::Cumulative => SdkTemporality::Cumulative,
            Temporality::Delta => SdkTemporality::Delta,
            Temporality::LowMemory => SdkTemporality::LowMemory,
        };
        let runtime = tokio::runtime::Handle::current();
        let otlp = config.otlp.clone();
        let inner = match otlp.protocol {
            Protocol::Grpc => {
                let _guard = runtime.enter();
                exporter(&otlp, temporality)?
            }
            Protocol::HttpProtobuf => std::thread::scope(|scope| {
                std::thread::Builder::new()
                    .name("llmtap-otlp-metrics-build".into())
                    .spawn_scoped(scope, || exporter(&otlp, temporality))
                    .map_err(ExportError::Thread)?
                    .join()
                    .unwrap_or_else(|_| Err(ExportError::Build("exporter build panicked".into())))
            })?,
        };
        let counted = Counted {
            inner,
            runtime: (otlp.protocol == Protocol::Grpc).then_some(runtime),
            failures,
            warning: RateLimit::new(Duration::from_secs(60)),
            endpoint: crate::wire::redact_url(&otlp.endpoint),
        };
        let reader = PeriodicReader::builder(counted)
            .with_interval(config.interval)
            .build();
        let provider = SdkMeterProvider::builder()
            .with_resource(super::spans::resource(&otlp, &otlp.service_name))
            .with_reader(reader)
            .build();
        let meter = provider.meter("llmtap");
        let (duration, first, per_chunk) = match conventions {
            Conventions::V1_41 => (
                otel::OPERATION_DURATION,
                otel::OPERATION_TIME_TO_FIRST_CHUNK,
                otel::OPERATION_TIME_PER_OUTPUT_CHUNK,
            ),
            Conventions::Latest => (
                otel::INFERENCE_DURATION,
                otel::INFERENCE_TIME_TO_FIRST_CHUNK,
                otel::INFERENCE_TIME_PER_OUTPUT_CHUNK,
            ),
        };
        let tokens = match conventions {
            Conventions::V1_41 => Tokens::V1_41(token_histogram(
                &meter,
                otel::TOKEN_USAGE,
                "Number of input and output tokens used.",
            )),
            Conventions::Latest => Tokens::Latest {
                input: token_counter(
                    &meter,
                    otel::USAGE_INPUT_TOKENS,
                    "Input tokens used, cached tokens included.",
                ),
                output: token_counter(
                    &meter,
                    otel::USAGE_OUTPUT_TOKENS,
                    "Output tokens used, reasoning tokens included.",
                ),
                cache_read: token_counter(
                    &meter,
                    otel::USAGE_CACHE_READ,
                    "Input tokens read from the provider's cache.",
                ),
                cache_write: token_counter(
                    &meter,
                    otel::USAGE_CACHE_WRITE,
                    "Input tokens written to the provider's cache.",
                ),
                reasoning: token_counter(
                    &meter,
                    otel::USAGE_REASONING,
                    "Output tokens spent on reasoning.",
                ),
                per_call_input: token_histogram(
                    &meter,
                    otel::OPERATION_INPUT_TOKENS,
                    "Input tokens per inference call.",
                ),
                per_call_output: token_histogram(
                    &meter,
                    otel::OPERATION_OUTPUT_TOKENS,
                    "Output tokens per inference call.",
                ),
            },
        };
        let other_duration = (conventions == Conventions::Latest).then(|| {
            seconds(
                &meter,
                otel::OPERATION_DURATION,
                "GenAI operation duration (operations other than inference).",
            )
        });
        Ok(OtelMetrics {
            duration: seconds(&meter, duration, "GenAI operation duration."),
            other_duration,
            time_to_first_chunk: seconds(
                &meter,
                first,
                "Time to receive the first chunk of a streamed response.",
            ),
            time_per_output_chunk: seconds(
                &meter,
                per_chunk,
                "Time per output chunk after the first, of a streamed response.",
            ),
            tokens,
            cost: meter
                .f64_counter(otel::COST)
                .with_unit("USD")
                .with_description("What calls cost at the price table's rates (llmtap).")
                .build(),
            provider,
        })
    }

    /// Records one finished call. `caps` caps model, team, user, error type and server address
    /// as the Prometheus labels are capped, so an attacker's model or host names cannot grow
    /// either sink (the SDK's own limit, 2000 series per metric, is the second bound).
    pub fn record(&self, r: &CallRecord, caps: &Metrics) {
        let request_model = r.request.as_ref().and_then(|q| q.model.as_deref());
        let mut common = vec![
            KeyValue::new(attr::OPERATION_NAME, r.operation.as_str()),
            KeyValue::new(attr::PROVIDER_NAME, r.provider.name.to_string()),
            KeyValue::new(attr::SERVER_ADDRESS, caps.cap_host(&r.host).to_owned()),
        ];
        if let Some(port) = caps.cap_port(r.port) {
            common.push(KeyValue::new(attr::SERVER_PORT, port));
        }
        if let Some(model) = request_model {
            common.push(KeyValue::new(
                attr::REQUEST_MODEL,
                caps.cap_model(model).to_owned(),
            ));
        }
        if let Some(model) = r.response.model.as_deref() {
            common.push(KeyValue::new(
                attr::RESPONSE_MODEL,
                caps.cap_model(model).to_owned(),
            ));
        }
        let mut with_error = common.clone();
        if let Some(error) = &r.error_type {
            with_error.push(KeyValue::new(
                attr::ERROR_TYPE,
                caps.cap_error_type(&error.to_string()).to_owned(),
            ));
        }
        // Token counting is not inference: under the latest conventions its duration keeps
        // the operation metric, and under both it reports no token usage (the tokens it
        // returns were counted, not spent).
        let inference = r.operation != Operation::CountTokens;
        let duration = match (&self.other_duration, inference) {
            (Some(other), false) => other,
            _ => &self.duration,
        };
        duration.record(r.duration.as_secs_f64(), &with_error);
        if !inference {
            self.record_cost(r, caps, &common);
            return;
        }
        if r.stream {
            if let Some(ttft) = r.ttft {
                self.time_to_first_chunk.record(ttft.as_secs_f64(), &common);
            }
            if let Some(gaps) = &r.chunk_gaps {
                for (count, mean) in gaps.observations() {
                    for _ in 0..count {
                        self.time_per_output_chunk.record(mean, &common);
                    }
                }
            }
        }
        let u = &r.response.usage;
        let with = |extra: KeyValue| {
            let mut attrs = common.clone();
            attrs.push(extra);
            attrs
        };
        match &self.tokens {
            Tokens::V1_41(usage) => {
                if let Some(input) = u.input {
                    usage.record(input, &with(KeyValue::new(otel::TOKEN_TYPE, "input")));
                }
                if let Some(output) = u.output {
                    usage.record(output, &with(KeyValue::new(otel::TOKEN_TYPE, "output")));
                }
            }
            Tokens::Latest {
                input,
                output,
                cache_read,
                cache_write,
                reasoning,
                per_call_input,
                per_call_output,
            } => {
                // Every inference call, failed ones included, adds what it reported or 0 (the
                // conventions' rule for these instruments, `gen-ai-token-metrics.md`), with
                // modality `unknown` (no provider llmtap reads splits every call by modality).
                let mut unknown = with_error.clone();
                unknown.push(KeyValue::new(otel::TOKEN_MODALITY, "unknown"));
                let cache_write_tokens = u
                    .cache_write_5m
                    .unwrap_or(0)
                    .saturating_add(u.cache_write_1h.unwrap_or(0));
                for (counter, value) in [
                    (input, u.input.unwrap_or(0)),
                    (output, u.output.unwrap_or(0)),
                    (cache_read, u.cache_read.unwrap_or(0)),
                    (cache_write, cache_write_tokens),
                    (reasoning, u.reasoning.unwrap_or(0)),
                ] {
                    counter.add(value, &unknown);
                }
                per_call_input.record(u.input.unwrap_or(0), &with_error);
                per_call_output.record(u.output.unwrap_or(0), &with_error);
            }
        }
        self.record_cost(r, caps, &common);
    }

    /// `llmtap.cost`, for a priced call.
    fn record_cost(&self, r: &CallRecord, caps: &Metrics, common: &[KeyValue]) {
        if let Some(cost) = r.cost_usd {
            let unknown = crate::telemetry::names::UNKNOWN;
            let mut attrs = vec![
                KeyValue::new(attr::PROVIDER_NAME, r.provider.name.to_string()),
                KeyValue::new(attr::CLIENT, r.client.as_str()),
                KeyValue::new(attr::BILLING, r.billing.as_str()),
                KeyValue::new(
                    attr::TEAM,
                    caps.cap_team(r.team.as_deref().unwrap_or(unknown))
                        .to_owned(),
                ),
                KeyValue::new(
                    attr::USER,
                    caps.cap_user(r.user.as_deref().unwrap_or(unknown))
                        .to_owned(),
                ),
            ];
            attrs.extend(
                common
                    .iter()
                    .filter(|kv| {
                        kv.key.as_str() == attr::REQUEST_MODEL
                            || kv.key.as_str() == attr::RESPONSE_MODEL
                    })
                    .cloned(),
            );
            self.cost.add(cost, &attrs);
        }
    }

    /// Exports what is left and stops the reader. Blocking, and for as long as the SDK's
    /// reader takes (it ignores the timeout it is given and waits up to 5 s): the caller runs
    /// it on a thread of its own and stops waiting at its own deadline.
    pub fn shutdown(&self) {
        if let Err(err) = self.provider.shutdown() {
            tracing::warn!(target: "llmtap::export", %err, "metrics not all exported at shutdown");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, Instant};

    use crate::exchange::ChunkGaps;

    #[test]
    fn chunk_gaps_keep_bucket_counts_and_the_sum() {
        let mut gaps = ChunkGaps::default();
        let t0 = Instant::now();
        // Reads at 0, 5 ms, 15 ms, 15 ms + 3 s: gaps 5 ms, 10 ms (upper-inclusive: the first
        // bucket), 3 s.
        for ms in [0, 5, 15, 3015] {
            gaps.chunk(t0 + Duration::from_millis(ms));
        }
        assert_eq!(gaps.len(), 3);
        let observed: Vec<(u32, f64)> = gaps.observations().collect();
        assert_eq!(observed.len(), 2, "{observed:?}");
        assert_eq!(observed[0].0, 2);
        assert!((observed[0].1 - 0.0075).abs() < 1e-9, "{observed:?}");
        assert_eq!(observed[1].0, 1);
        assert!((observed[1].1 - 3.0).abs() < 1e-9);
        let sum: f64 = observed.iter().map(|(c, m)| f64::from(*c) * m).sum();
        assert!((sum - 3.015).abs() < 1e-9);
        // One read: no gap.
        let mut one = ChunkGaps::default();
        one.chunk(t0);
        assert!(one.is_empty());
    }
}
