//! One OpenTelemetry span per call, following the GenAI semantic conventions (ARCHITECTURE.md, "Names").
//!
//! Owns: the tracer provider (resource from `OTEL_SERVICE_NAME` / `OTEL_RESOURCE_ATTRIBUTES`,
//! the export [`Queue`]), the span built from a finished [`CallRecord`] with the call's real
//! start and end times, and trace placement: child of the client's `traceparent`, else one
//! trace per agent session (trace id derived from the conversation id), else a root span.
//! Does not own: how spans travel (`export`) or what the call was (`exchange`).

use std::{cell::Cell, time::Duration};

use opentelemetry::{
    Context, KeyValue, StringValue, Value,
    trace::{
        Span as _, SpanContext, SpanId, SpanKind, Status, TraceContextExt as _, TraceFlags,
        TraceId, TraceState, Tracer as _, TracerProvider as _,
    },
};
use opentelemetry_sdk::{
    Resource,
    trace::{IdGenerator, RandomIdGenerator, SdkTracer, SdkTracerProvider},
};

use super::{
    export::{ExportError, Health, Queue},
    names::attr,
};
use crate::{
    config::{
        Capture,
        otlp::{Conventions, OtlpConfig},
    },
    exchange::CallRecord,
};

thread_local! {
    /// The trace id the next root span on this thread must use (session traces).
    static NEXT_TRACE_ID: Cell<Option<TraceId>> = const { Cell::new(None) };
}

/// Random ids, except a root span whose trace id was chosen from its session.
#[derive(Debug, Default)]
struct SessionIds(RandomIdGenerator);

impl IdGenerator for SessionIds {
    fn new_trace_id(&self) -> TraceId {
        NEXT_TRACE_ID
            .with(Cell::take)
            .unwrap_or_else(|| self.0.new_trace_id())
    }

    fn new_span_id(&self) -> SpanId {
        self.0.new_span_id()
    }
}

/// The trace id of a session: the first 16 bytes of SHA-256 of its id, so every llmtap
/// instance (and every restart) puts one session's calls in the same trace.
pub fn session_trace_id(conversation_id: &str) -> TraceId {
    let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, conversation_id.as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest.as_ref()[..16]);
    TraceId::from_bytes(bytes)
}

/// `openinference.project.name`: the resource attribute Arize Phoenix files spans under (it
/// ignores `service.name`); set to the service name unless `OTEL_RESOURCE_ATTRIBUTES` sets it.
pub const PROJECT_NAME: &str = "openinference.project.name";

/// The resource of everything llmtap exports: `service.name` (`OTEL_SERVICE_NAME`, else
/// `service.name` in `OTEL_RESOURCE_ATTRIBUTES`, else `llmtap`; `service` here),
/// `service.version`, the SDK's name and language, `OTEL_RESOURCE_ATTRIBUTES`, and
/// [`PROJECT_NAME`].
pub fn resource(config: &OtlpConfig, service: &str) -> Resource {
    resource_with(config, service, false)
}

/// [`resource`], with [`PROJECT_NAME`] forced to `service` when `own_project` (diagnostics
/// never join the calls' project, whatever `OTEL_RESOURCE_ATTRIBUTES` says).
fn resource_with(config: &OtlpConfig, service: &str, own_project: bool) -> Resource {
    let project = (own_project || !config.resource.iter().any(|(k, _)| k == PROJECT_NAME))
        .then(|| KeyValue::new(PROJECT_NAME, service.to_owned()));
    Resource::builder_empty()
        .with_service_name(service.to_owned())
        .with_attributes(
            config
                .resource
                .iter()
                .filter(|(k, _)| !(own_project && k == PROJECT_NAME))
                .map(|(k, v)| KeyValue::new(k.clone(), v.clone()))
                .chain([
                    KeyValue::new("service.version", env!("CARGO_PKG_VERSION")),
                    KeyValue::new("telemetry.sdk.name", "opentelemetry"),
                    KeyValue::new("telemetry.sdk.language", "rust"),
                ])
                .chain(project),
        )
        .build()
}

/// The span pipeline: one tracer provider whose processor is the export [`Queue`], and the
/// content-capture setting. Exists only when an OTLP endpoint is configured.
pub struct Spans {
    provider: SdkTracerProvider,
    tracer: SdkTracer,
    capture: Capture,
    conventions: Conventions,
    /// `--otlp-diagnostics`: llmtap's own spans, under `<service.name>-diagnostics`.
    diagnostics: Option<SdkTracerProvider>,
}

/// How spans are built: content capture, the GenAI conventions version, and whether
/// llmtap's own diagnostic spans are exported too.
#[derive(Debug, Clone, Copy)]
pub struct Options {
    /// `--capture-content` and its cap.
    pub capture: Capture,
    /// `OTEL_SEMCONV_STABILITY_OPT_IN`.
    pub conventions: Conventions,
    /// `--otlp-diagnostics`.
    pub diagnostics: bool,
}

impl std::fmt::Debug for Spans {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Spans").finish_non_exhaustive()
    }
}

impl Spans {
    /// Starts the export pipeline. Call from within the tokio runtime.
    pub fn start(
        config: &OtlpConfig,
        health: Health,
        options: Options,
    ) -> Result<Spans, ExportError> {
        // Diagnostics travel apart (a queue and resource of their own), so that a GenAI
        // backend grouping by service never shows them among the calls.
        let diagnostics = if options.diagnostics {
            let queue = Queue::start(config, health.clone())?;
            let service = format!("{}-diagnostics", config.service_name);
            Some(
                SdkTracerProvider::builder()
                    .with_resource(resource_with(config, &service, true))
                    .with_span_processor(queue)
                    .build(),
            )
        } else {
            None
        };
        let queue = Queue::start(config, health)?;
        let provider = SdkTracerProvider::builder()
            .with_resource(resource(config, &config.service_name))
            .with_id_generator(SessionIds::default())
            .with_span_processor(queue)
            .build();
        let tracer = provider.tracer("llmtap");
        Ok(Spans {
            provider,
            tracer,
            capture: options.capture,
            conventions: options.conventions,
            diagnostics,
        })
    }

    /// The tracer for llmtap's own diagnostics (tracing-opentelemetry): `None` unless
    /// `--otlp-diagnostics`.
    pub fn internal_tracer(&self) -> Option<SdkTracer> {
        self.diagnostics
            .as_ref()
            .map(|provider| provider.tracer("llmtap-internal"))
    }

    /// Flushes and stops export, waiting at most `timeout`. Blocking: call off the runtime.
    pub fn shutdown(&self, timeout: Duration) {
        for provider in std::iter::once(&self.provider).chain(&self.diagnostics) {
            if let Err(err) = provider.shutdown_with_timeout(timeout) {
                tracing::warn!(target: "llmtap::export", %err, "spans not all flushed at shutdown");
            }
        }
    }

    /// Builds and ends the span of one call. Non-blocking: ending hands it to the queue.
    pub fn record(&self, r: &CallRecord) {
        let parent = parent_of(r);
        let end = r.start + r.duration;
        let mut span = self
            .tracer
            .span_builder(span_name(r))
            .with_kind(SpanKind::Client)
            .with_start_time(r.start)
            .with_attributes(self.with_content(attributes(r, self.conventions), r))
            .start_with_context(&self.tracer, &parent);
        // A sampled-out parent means no id was drawn; never leak the session id to the next.
        NEXT_TRACE_ID.with(Cell::take);
        if let Some(ttft) = r.ttft {
            span.add_event_with_timestamp(attr::FIRST_TOKEN_EVENT, r.start + ttft, vec![]);
        }
        if let Some(error) = &r.error_type {
            span.set_status(Status::error(error.to_string()));
        }
        let trace = span.span_context().trace_id();
        span.end_with_timestamp(end.max(r.start));
        for run in &r.agent_loop.tool_executions {
            self.tool_span(r, run, trace);
        }
    }

    /// The `execute_tool {gen_ai.tool.name}` span of one tool run (GenAI conventions,
    /// "Execute tool span"): INTERNAL, from the end of the response that asked for it to the
    /// request carrying its result, in the trace of the call that carried it.
    fn tool_span(&self, r: &CallRecord, run: &crate::exchange::ToolExecution, trace: TraceId) {
        // Beside the call in its trace: the client's parent, else a root span in the call's
        // trace (the session's, or the call's own when it names no session).
        let parent = match r.traceparent {
            Some(_) => parent_of(r),
            None => {
                NEXT_TRACE_ID.with(|next| next.set(Some(trace)));
                Context::new()
            }
        };
        let mut attrs = vec![
            KeyValue::new(attr::OPERATION_NAME, "execute_tool"),
            KeyValue::new(attr::TOOL_NAME, run.tool.clone()),
            KeyValue::new(attr::TOOL_TYPE, "function"),
            KeyValue::new(
                attr::PROVIDER_NAME,
                Value::String(run.provider.name.clone().into()),
            ),
        ];
        let optional = [
            (attr::TOOL_CALL_ID, run.call_id.clone()),
            (attr::AGENT_NAME, run.agent.clone()),
            (attr::THREAD_ID, run.thread_id.clone()),
            (attr::CONVERSATION_ID, r.conversation_id.clone()),
            (attr::SESSION_ID, r.conversation_id.clone()),
            (attr::TEAM, r.team.clone()),
            (attr::USER, r.user.clone()),
            (attr::USER_ID, r.user.clone()),
        ];
        attrs.extend(
            optional
                .into_iter()
                .filter_map(|(k, v)| Some(KeyValue::new(k, v?))),
        );
        if run.error {
            attrs.push(KeyValue::new(attr::ERROR_TYPE, TOOL_ERROR));
        }
        let mut span = self
            .tracer
            .span_builder(format!("execute_tool {}", run.tool))
            .with_kind(SpanKind::Internal)
            .with_start_time(run.start)
            .with_attributes(attrs)
            .start_with_context(&self.tracer, &parent);
        NEXT_TRACE_ID.with(Cell::take);
        if run.error {
            span.set_status(Status::error(TOOL_ERROR));
        }
        span.end_with_timestamp(run.start + run.duration);
    }
}

/// `error.type` of a tool run whose result says it failed.
pub const TOOL_ERROR: &str = "tool_error";

/// Where a call's spans go: child of the client's `traceparent`, else a root span in the
/// session's trace (the id generator is told the trace id), else a root span.
fn parent_of(r: &CallRecord) -> Context {
    {
        match (&r.traceparent, &r.conversation_id) {
            (Some(tp), _) => Context::new().with_remote_span_context(SpanContext::new(
                TraceId::from_bytes(tp.trace_id),
                SpanId::from_bytes(tp.span_id),
                if tp.sampled {
                    TraceFlags::SAMPLED
                } else {
                    TraceFlags::default()
                },
                true,
                TraceState::default(),
            )),
            (None, Some(session)) => {
                NEXT_TRACE_ID.with(|next| next.set(Some(session_trace_id(session))));
                Context::new()
            }
            (None, None) => Context::new(),
        }
    }
}

impl Spans {
    /// Adds the opt-in content attributes, each capped at `--capture-max-bytes`.
    fn with_content(&self, mut attrs: Vec<KeyValue>, r: &CallRecord) -> Vec<KeyValue> {
        if !self.capture.enabled {
            return attrs;
        }
        let max = self.capture.max_bytes;
        let mut truncated = Vec::new();
        let request = r.request.as_ref().and_then(|q| q.content.as_ref());
        // `gen_ai.system_instructions` holds text parts only (the conventions' main branch,
        // `gen-ai-system-instructions.json`); any other part of a system prompt (an image, a
        // document) is left out, whichever dialect read it.
        let system: Option<Vec<serde_json::Value>> = request.map(|c| {
            c.system
                .iter()
                .filter(|part| part.get("type").and_then(|t| t.as_str()) == Some("text"))
                .cloned()
                .collect()
        });
        // v1.41's output message schema requires `finish_reason`; the main branch deprecates
        // it (the reasons are `gen_ai.response.finish_reasons`): the latest conventions drop it.
        let output: Option<Vec<serde_json::Value>> = r.response.output.as_ref().map(|messages| {
            messages
                .iter()
                .cloned()
                .map(|mut message| {
                    if self.conventions == Conventions::Latest
                        && let Some(m) = message.as_object_mut()
                    {
                        m.remove("finish_reason");
                    }
                    message
                })
                .collect()
        });
        let pieces = [
            (attr::SYSTEM_INSTRUCTIONS, system.as_deref()),
            (attr::INPUT_MESSAGES, request.map(|c| c.input.as_slice())),
            (attr::TOOL_DEFINITIONS, request.map(|c| c.tools.as_slice())),
            (attr::OUTPUT_MESSAGES, output.as_deref()),
        ];
        for (key, items) in pieces {
            let Some(items) = items.filter(|items| !items.is_empty()) else {
                continue;
            };
            let (json, cut) = fit(items, max);
            if cut {
                truncated.push(key.to_owned());
            }
            attrs.push(KeyValue::new(key, json));
        }
        if !truncated.is_empty() {
            attrs.push(KeyValue::new(attr::CONTENT_TRUNCATED, strings(&truncated)));
        }
        attrs
    }
}

/// Serializes `items` as a JSON array of at most `max` bytes that is still valid JSON: the
/// most recent items that fit, else the last item with its strings shortened. Returns
/// whether anything was cut.
pub fn fit(items: &[serde_json::Value], max: usize) -> (String, bool) {
    let full = serde_json::Value::Array(items.to_vec()).to_string();
    if full.len() <= max {
        return (full, false);
    }
    let mut kept = 2; // the brackets
    let mut start = items.len();
    for (i, item) in items.iter().enumerate().rev() {
        let len = item.to_string().len() + usize::from(start < items.len());
        if kept + len > max {
            break;
        }
        kept += len;
        start = i;
    }
    if start < items.len() {
        return (
            serde_json::Value::Array(items[start..].to_vec()).to_string(),
            true,
        );
    }
    let Some(last) = items.last() else {
        return ("[]".to_owned(), true);
    };
    let mut limit = max;
    while limit > 0 {
        let json = serde_json::Value::Array(vec![shorten(last, limit)]).to_string();
        if json.len() <= max {
            return (json, true);
        }
        limit /= 2;
    }
    ("[]".to_owned(), true)
}

/// A copy of `v` with every string cut to at most `limit` characters.
fn shorten(v: &serde_json::Value, limit: usize) -> serde_json::Value {
    use serde_json::Value as J;
    match v {
        J::String(s) if s.chars().count() > limit => J::String(s.chars().take(limit).collect()),
        J::Array(a) => J::Array(a.iter().map(|x| shorten(x, limit)).collect()),
        J::Object(o) => J::Object(
            o.iter()
                .map(|(k, x)| (k.clone(), shorten(x, limit)))
                .collect(),
        ),
        other => other.clone(),
    }
}

/// `"{operation} {request model}"`, or the operation alone when the model is unknown.
pub fn span_name(r: &CallRecord) -> String {
    let model = r
        .request
        .as_ref()
        .and_then(|q| q.model.as_deref())
        .or(r.response.model.as_deref());
    match model {
        Some(model) => format!("{} {model}", r.operation.as_str()),
        None => r.operation.as_str().to_owned(),
    }
}

fn strings(items: &[String]) -> Value {
    Value::Array(
        items
            .iter()
            .map(|s| StringValue::from(s.clone()))
            .collect::<Vec<_>>()
            .into(),
    )
}

fn int(v: u64) -> i64 {
    i64::try_from(v).unwrap_or(i64::MAX)
}

/// Every attribute the call has, named as `conventions` says; absent facts are left out,
/// never sent as zero.
pub fn attributes(r: &CallRecord, conventions: Conventions) -> Vec<KeyValue> {
    let mut a = vec![
        KeyValue::new(attr::OPERATION_NAME, r.operation.as_str()),
        KeyValue::new(
            attr::PROVIDER_NAME,
            Value::String(r.provider.name.clone().into()),
        ),
        KeyValue::new(attr::API, r.api),
    ];
    let openai_type = match r.api {
        "openai_chat_completions" => Some("chat_completions"),
        "openai_responses" => Some("responses"),
        _ => None,
    };
    a.extend(openai_type.map(|t| KeyValue::new(attr::OPENAI_API_TYPE, t)));
    a.extend([
        KeyValue::new(attr::SERVER_ADDRESS, r.host.clone()),
        KeyValue::new(attr::SERVER_PORT, i64::from(r.port)),
        KeyValue::new(attr::HTTP_METHOD, r.method.clone()),
        KeyValue::new(attr::STREAM, r.stream),
        KeyValue::new(attr::CLIENT, r.client.as_str()),
        KeyValue::new(attr::OUTCOME, r.outcome.as_str()),
        KeyValue::new(attr::USAGE_MISSING, r.usage_missing),
    ]);
    let mut push = |key: &'static str, value: Option<Value>| {
        if let Some(value) = value {
            a.push(KeyValue::new(key, value));
        }
    };
    if let Some(q) = &r.request {
        push(attr::REQUEST_MODEL, q.model.clone().map(Value::from));
        push(
            attr::REQUEST_MAX_TOKENS,
            q.max_tokens.map(|v| Value::I64(int(v))),
        );
        push(attr::REQUEST_TEMPERATURE, q.temperature.map(Value::F64));
        push(
            attr::TOOLS_OFFERED,
            Some(Value::I64(q.tools_offered.len() as i64)),
        );
        push(
            attr::TOOLS_OFFERED_NAMES,
            (!q.tools_offered.is_empty()).then(|| strings(&q.tools_offered)),
        );
        push(attr::REQUEST_STREAM, Some(Value::Bool(q.stream)));
        let params = &q.params;
        push(attr::REQUEST_TOP_P, params.top_p.map(Value::F64));
        // v1.41 types `top_k` a double; the main branch an int.
        push(
            attr::REQUEST_TOP_K,
            params.top_k.map(|k| match conventions {
                Conventions::V1_41 => Value::F64(k as f64),
                Conventions::Latest => Value::I64(int(k)),
            }),
        );
        push(
            attr::REQUEST_STOP_SEQUENCES,
            (!params.stop_sequences.is_empty()).then(|| strings(&params.stop_sequences)),
        );
        push(attr::REQUEST_SEED, params.seed.map(Value::I64));
        push(
            attr::REQUEST_FREQUENCY_PENALTY,
            params.frequency_penalty.map(Value::F64),
        );
        push(
            attr::REQUEST_PRESENCE_PENALTY,
            params.presence_penalty.map(Value::F64),
        );
        push(
            attr::REQUEST_CHOICE_COUNT,
            params.choice_count.map(|n| Value::I64(int(n))),
        );
        push(attr::OUTPUT_TYPE, params.output_type.map(Value::from));
        push(
            attr::REQUEST_REASONING_LEVEL,
            params.reasoning_level.clone().map(Value::from),
        );
        push(
            attr::REQUEST_PREVIOUS_RESPONSE_ID,
            params.previous_response_id.clone().map(Value::from),
        );
        if openai_type.is_some() {
            push(
                attr::OPENAI_REQUEST_SERVICE_TIER,
                params.service_tier.clone().map(Value::from),
            );
        }
        push(attr::SYSTEM_CHARS, Some(Value::I64(int(q.system_chars))));
        push(attr::MESSAGES, Some(Value::I64(int(q.messages))));
    }
    let p = &r.response;
    if openai_type.is_some() {
        push(
            attr::OPENAI_RESPONSE_SERVICE_TIER,
            p.service_tier.clone().map(Value::from),
        );
        push(
            attr::OPENAI_RESPONSE_SYSTEM_FINGERPRINT,
            p.system_fingerprint.clone().map(Value::from),
        );
    }
    push(attr::RESPONSE_MODEL, p.model.clone().map(Value::from));
    push(attr::RESPONSE_ID, p.id.clone().map(Value::from));
    // A call that ended abnormally (failed, cut, cancelled) without a reason from the API
    // reports `error` (GenAI conventions, `gen_ai.response.finish_reasons`).
    let failed = r.outcome != crate::vocab::Outcome::Ok && p.finish_reasons.is_empty();
    push(
        attr::RESPONSE_FINISH_REASONS,
        if failed {
            Some(strings(&["error".to_owned()]))
        } else {
            (!p.finish_reasons.is_empty()).then(|| strings(&p.finish_reasons))
        },
    );
    push(
        attr::TOOLS_CALLED,
        (!p.tools_called.is_empty()).then(|| strings(&p.tools_called)),
    );
    let u = &p.usage;
    let tokens = |v: Option<u64>| v.map(|v| Value::I64(int(v)));
    push(attr::USAGE_INPUT_TOKENS, tokens(u.input));
    push(attr::USAGE_OUTPUT_TOKENS, tokens(u.output));
    push(attr::USAGE_CACHE_READ, tokens(u.cache_read));
    let created = match (u.cache_write_5m, u.cache_write_1h) {
        (None, None) => None,
        (a, b) => Some(a.unwrap_or(0) + b.unwrap_or(0)),
    };
    // v1.41's name, and the rename on the conventions' main branch beside it until a
    // release carries it; the latest conventions alone drop the old name.
    if conventions == Conventions::V1_41 {
        push(attr::USAGE_CACHE_CREATION, tokens(created));
    }
    push(attr::USAGE_CACHE_WRITE, tokens(created));
    push(attr::CACHE_WRITE_5M, tokens(u.cache_write_5m));
    push(attr::CACHE_WRITE_1H, tokens(u.cache_write_1h));
    push(attr::USAGE_REASONING, tokens(u.reasoning));
    push(
        attr::CONVERSATION_ID,
        r.conversation_id.clone().map(Value::from),
    );
    push(
        attr::HTTP_STATUS,
        r.status.map(|s| Value::I64(i64::from(s))),
    );
    push(
        attr::ERROR_TYPE,
        r.error_type.as_ref().map(|e| Value::from(e.to_string())),
    );
    push(
        attr::TTFT_MS,
        r.ttft.map(|t| Value::F64(t.as_secs_f64() * 1000.0)),
    );
    push(
        attr::TIME_TO_FIRST_CHUNK,
        r.ttft.map(|t| Value::F64(t.as_secs_f64())),
    );
    push(attr::COST_USD, r.cost_usd.map(Value::F64));
    push(attr::USAGE_COST, r.cost_usd.map(Value::F64));
    if r.cost_usd.is_some() {
        push(attr::COST_SOURCE, Some(Value::from(r.cost_source.as_str())));
    }
    push(attr::COST_TABLE_USD, r.table_cost_usd.map(Value::F64));
    push(attr::BILLING, Some(Value::from(r.billing.as_str())));
    push(attr::TEAM, r.team.clone().map(Value::from));
    push(attr::USER, r.user.clone().map(Value::from));
    // The general registry's `session.id` and `user.id`, which Phoenix and Langfuse group
    // by (README, "Traces"); the same values as `gen_ai.conversation.id` and `llmtap.user`.
    push(attr::SESSION_ID, r.conversation_id.clone().map(Value::from));
    push(attr::USER_ID, r.user.clone().map(Value::from));
    push(
        attr::PARSE_ERROR,
        r.parse_error.map(|e| Value::from(e.as_str())),
    );
    let l = &r.agent_loop;
    push(attr::AGENT_NAME, l.agent.clone().map(Value::from));
    push(attr::THREAD_ID, l.thread_id.clone().map(Value::from));
    push(attr::CONTEXT_WINDOW_TOKENS, tokens(l.context_window_tokens));
    push(
        attr::CONTEXT_UTILIZATION,
        l.context_utilization.map(Value::F64),
    );
    push(
        attr::CONVERSATION_COMPACTED,
        l.compacted.then_some(Value::Bool(true)),
    );
    push(
        attr::CACHE_BREAK,
        l.cache_break_tokens.map(|_| Value::Bool(true)),
    );
    push(attr::CACHE_BREAK_TOKENS, tokens(l.cache_break_tokens));
    push(
        attr::CACHE_BREAK_COST_USD,
        l.cache_break_cost_usd.map(Value::F64),
    );
    push(
        attr::HTTP_RESEND_COUNT,
        (l.resend_count > 0).then(|| Value::I64(i64::from(l.resend_count))),
    );
    push(
        attr::RETRY_REASON,
        l.retry_reason.map(|r| Value::from(r.as_str())),
    );
    if let Some(limits) = &r.ratelimits {
        push(
            attr::RATELIMIT_STATUS,
            limits.status.clone().map(Value::from),
        );
        for (window, w) in &limits.windows {
            let key = |field: &str| format!("{}{window}.{field}", attr::RATELIMIT_PREFIX);
            if let Some(u) = w.utilization {
                a.push(KeyValue::new(key("utilization"), u));
            }
            if let Some(t) = w.reset {
                a.push(KeyValue::new(key("reset"), int(t)));
            }
        }
        for (resource, res) in &limits.resources {
            let key = |field: &str| format!("{}{resource}.{field}", attr::RATELIMIT_PREFIX);
            for (field, v) in [
                ("limit", res.limit),
                ("remaining", res.remaining),
                ("reset", res.reset),
            ] {
                if let Some(v) = v {
                    a.push(KeyValue::new(key(field), int(v)));
                }
            }
        }
    }
    a
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    #[test]
    fn fit_keeps_valid_json_within_the_cap() {
        let items = vec![
            json!({"role": "user", "parts": [{"type": "text", "content": "a".repeat(50)}]});
            4
        ];
        let (all, cut) = fit(&items, 10_000);
        assert!(!cut && all.len() < 10_000);
        let (recent, cut) = fit(&items, 150);
        assert!(cut && recent.len() <= 150, "{recent}");
        let parsed: Vec<serde_json::Value> = serde_json::from_str(&recent).expect("valid json");
        assert_eq!(parsed.len(), 1, "the most recent message that fits");
        let (short, cut) = fit(&items, 60);
        assert!(cut && short.len() <= 60, "{short}");
        serde_json::from_str::<Vec<serde_json::Value>>(&short).expect("still valid json");
    }

    #[test]
    fn request_parameters_and_openai_tiers_become_their_attributes() {
        let mut r = crate::telemetry::calls::tests::record();
        r.api = "openai_responses";
        r.response.service_tier = Some("flex".into());
        r.response.system_fingerprint = Some("fp_44709d6fcb".into());
        let q = r.request.as_mut().expect("request");
        q.params = crate::dialects::params::Params {
            top_p: Some(0.5),
            top_k: Some(40),
            stop_sequences: vec!["END".into()],
            seed: Some(-3),
            choice_count: Some(2),
            output_type: Some("json"),
            reasoning_level: Some("high".into()),
            service_tier: Some("priority".into()),
            previous_response_id: Some("resp_1".into()),
            ..Default::default()
        };
        let attrs = attributes(&r, Conventions::V1_41);
        let get = |k: &str| {
            attrs
                .iter()
                .find(|kv| kv.key.as_str() == k)
                .map(|kv| kv.value.clone())
        };
        assert_eq!(get("gen_ai.request.top_p"), Some(Value::F64(0.5)));
        assert_eq!(
            get("gen_ai.request.top_k"),
            Some(Value::F64(40.0)),
            "v1.41: a double"
        );
        let latest = attributes(&r, Conventions::Latest);
        let top_k = latest
            .iter()
            .find(|kv| kv.key.as_str() == "gen_ai.request.top_k");
        assert_eq!(
            top_k.map(|kv| kv.value.clone()),
            Some(Value::I64(40)),
            "main: an int"
        );
        assert_eq!(get("gen_ai.request.seed"), Some(Value::I64(-3)));
        assert_eq!(get("gen_ai.request.choice.count"), Some(Value::I64(2)));
        assert_eq!(get("gen_ai.output.type"), Some(Value::from("json")));
        assert_eq!(
            get("gen_ai.request.reasoning.level"),
            Some(Value::from("high"))
        );
        assert_eq!(
            get("gen_ai.request.previous_response.id"),
            Some(Value::from("resp_1"))
        );
        assert_eq!(
            get("openai.request.service_tier"),
            Some(Value::from("priority"))
        );
        assert_eq!(
            get("openai.response.service_tier"),
            Some(Value::from("flex"))
        );
        assert_eq!(get("gen_ai.request.stream"), Some(Value::Bool(false)));
        // Not an OpenAI API: no `openai.*` attributes.
        r.api = "anthropic_messages";
        assert!(
            attributes(&r, Conventions::V1_41)
                .iter()
                .all(|kv| !kv.key.as_str().starts_with("openai."))
        );
    }

    #[test]
    fn phoenix_projects_follow_the_service_and_diagnostics_keep_their_own() {
        let mut config =
            crate::config::otlp::from_env(Some("http://c:4318"), &crate::cli::OtelEnv::default())
                .expect("valid")
                .expect("on");
        let project = |r: &Resource| {
            r.get(&opentelemetry::Key::from_static_str(PROJECT_NAME))
                .map(|v| v.to_string())
        };
        assert_eq!(
            project(&resource(&config, "llmtap")).as_deref(),
            Some("llmtap")
        );
        config.resource = vec![(PROJECT_NAME.to_owned(), "agents".to_owned())];
        assert_eq!(
            project(&resource(&config, "llmtap")).as_deref(),
            Some("agents")
        );
        let diagnostics = resource_with(&config, "llmtap-diagnostics", true);
        assert_eq!(project(&diagnostics).as_deref(), Some("llmtap-diagnostics"));
    }

    #[test]
    fn session_trace_ids_are_stable_and_distinct() {
        assert_eq!(session_trace_id("s"), session_trace_id("s"));
        assert_ne!(session_trace_id("s"), session_trace_id("t"));
        assert_ne!(session_trace_id("s"), TraceId::INVALID);
    }
}
