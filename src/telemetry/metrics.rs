//! The Prometheus registry and how one [`CallRecord`] moves it.
//!
//! Owns: metric families (names from [`super::names`]), label cardinality caps (overflow
//! becomes `other` and is counted), and the text exposition. Label values come from enums
//! or capped sets, never from free-form request data (no ids, paths or secrets).

use std::{
    collections::{HashMap, HashSet},
    sync::Mutex,
};

use prometheus::{
    Encoder as _, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGauge, Opts, Registry,
    TextEncoder, proto::MetricType,
};

use super::names as n;
use crate::{exchange::CallRecord, vocab::TokenType};

/// Distinct values kept per capped label before overflowing to `other`.
#[derive(Debug, Clone, Copy)]
pub struct Caps {
    /// Distinct `model` values (`--label-cap`).
    pub model: usize,
    /// Distinct `tool` values (`--label-cap`).
    pub tool: usize,
    /// Distinct `team` values (`--label-cap`).
    pub team: usize,
    /// Distinct `user` values (`--label-cap`).
    pub user: usize,
    /// Distinct `error_type` values (50, whatever `--label-cap` says).
    pub error_type: usize,
    /// Distinct `agent` values (`--label-cap`).
    pub agent: usize,
    /// Distinct plan `window` values (`--label-cap`): they come from upstream headers.
    pub window: usize,
    /// Distinct `server.address` values of the OTel metrics (`--label-cap`): a provider's
    /// host pattern (`*-aiplatform.googleapis.com`) admits hosts a client chooses.
    pub host: usize,
}

impl Caps {
    /// The same cap for every label that takes values from traffic (`--label-cap`);
    /// error types come from a short list per API and keep their own.
    pub fn all(cap: usize) -> Caps {
        Caps {
            model: cap,
            tool: cap,
            team: cap,
            user: cap,
            error_type: 50,
            agent: cap,
            window: cap,
            host: cap,
        }
    }
}

impl Default for Caps {
    fn default() -> Self {
        Caps::all(500)
    }
}

/// Longest traffic-derived label value exported as it is, in bytes; longer ones are
/// [`n::OTHER`] (a label value travels with every sample of its series, in Prometheus and in
/// every OTel metrics export).
pub const MAX_LABEL_BYTES: usize = 256;

/// A label whose distinct values are capped.
struct Capped {
    name: &'static str,
    cap: usize,
    seen: Mutex<HashSet<String>>,
}

impl Capped {
    fn new(name: &'static str, cap: usize) -> Self {
        Capped {
            name,
            cap,
            seen: Mutex::new(HashSet::new()),
        }
    }

    /// The value to export for `value`; counts the overflow when the cap is hit or the value
    /// is longer than [`MAX_LABEL_BYTES`].
    fn get<'a>(&self, value: &'a str, overflow: &IntCounterVec) -> &'a str {
        let mut seen = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        if seen.contains(value) {
            return value;
        }
        if seen.len() < self.cap && value.len() <= MAX_LABEL_BYTES {
            seen.insert(value.to_owned());
            return value;
        }
        if let Ok(c) = overflow.get_metric_with_label_values(&[self.name]) {
            c.inc();
        }
        n::OTHER
    }
}

/// Every metric family llmtap exports (names and labels: [`super::names`]), registered in
/// one registry, and the caps of the labels that take values from traffic.
pub struct Metrics {
    registry: Registry,
    requests: IntCounterVec,
    tokens: IntCounterVec,
    duration: HistogramVec,
    ttft: HistogramVec,
    tool_calls: IntCounterVec,
    errors: IntCounterVec,
    usage_missing: IntCounterVec,
    parse_errors: IntCounterVec,
    pub(crate) in_flight: IntGauge,
    tunnels: IntCounterVec,
    pub(crate) records_dropped: IntCounter,
    auth_failures: IntCounter,
    destinations_refused: IntCounterVec,
    connections_refused: IntCounterVec,
    observe_skipped: IntCounterVec,
    pub(crate) observe_held: IntGauge,
    cost: prometheus::CounterVec,
    cost_unknown: IntCounterVec,
    pub(crate) spans_dropped: IntCounter,
    pub(crate) export_failures: IntCounter,
    /// `llmtap_otlp_export_failures_total{signal="metrics"}`.
    pub(crate) metric_export_failures: IntCounter,
    /// `llmtap_history_dropped_total`.
    pub(crate) history_dropped: IntCounter,
    overflow: IntCounterVec,
    tool_duration: HistogramVec,
    tool_errors: IntCounterVec,
    tool_unmatched: IntCounterVec,
    context: HistogramVec,
    compactions: IntCounterVec,
    cache_breaks: IntCounterVec,
    cache_break_cost: prometheus::CounterVec,
    retries: IntCounterVec,
    ratelimit_utilization: prometheus::GaugeVec,
    ratelimit_remaining: prometheus::GaugeVec,
    ratelimit_reset: prometheus::GaugeVec,
    agent: Capped,
    window: Capped,
    host: Capped,
    port: Capped,
    model: Capped,
    tool: Capped,
    team: Capped,
    user: Capped,
    error_type: Capped,
}

impl std::fmt::Debug for Metrics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Metrics").finish_non_exhaustive()
    }
}

const COMMON: [&str; 6] = [n::PROVIDER, n::MODEL, n::TEAM, n::USER, n::CLIENT, n::AGENT];

impl Metrics {
    /// Registers every family. Label sets known in advance (both `intercepted` values, every
    /// refusal reason and skipped part) exist from the start at 0, so rates and alerts see
    /// them; `llmtap_build_info` is set to 1. Fails only on an invalid or duplicate name (a
    /// bug).
    pub fn new(caps: Caps) -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let with = |extra: &'static str| {
            let mut labels = COMMON.to_vec();
            labels.push(extra);
            labels
        };
        let counter = |name: &str, help: &str, labels: &[&str]| {
            let c = IntCounterVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(c.clone()))?;
            Ok::<_, prometheus::Error>(c)
        };
        let histogram_of = |name: &str, help: &str, buckets: &[f64], labels: &[&str]| {
            let h = HistogramVec::new(
                HistogramOpts::new(name, help).buckets(buckets.to_vec()),
                labels,
            )?;
            registry.register(Box::new(h.clone()))?;
            Ok::<_, prometheus::Error>(h)
        };
        let histogram = |name: &str, help: &str| {
            histogram_of(
                name,
                help,
                n::LATENCY_BUCKETS,
                &[n::PROVIDER, n::MODEL, n::CLIENT],
            )
        };
        let requests = counter(
            n::REQUESTS_TOTAL,
            "LLM calls by outcome.",
            &with(n::OUTCOME),
        )?;
        let tokens = counter(
            n::TOKENS_TOTAL,
            "Tokens by type; input is the normalized total, cache types are parts of it.",
            &with(n::TYPE),
        )?;
        let duration = histogram(
            n::REQUEST_DURATION_SECONDS,
            "Request head received to end of the response.",
        )?;
        let ttft = histogram(
            n::TIME_TO_FIRST_TOKEN_SECONDS,
            "Request head received to the first generated-content delta (streamed calls).",
        )?;
        let tool_calls = counter(
            n::TOOL_CALLS_TOTAL,
            "Tool calls made by the model.",
            &[n::PROVIDER, n::MODEL, n::TOOL],
        )?;
        let errors = counter(
            n::ERRORS_TOTAL,
            "Failed LLM calls by error type.",
            &[n::PROVIDER, n::ERROR_TYPE],
        )?;
        let usage_missing = counter(
            n::USAGE_MISSING_TOTAL,
            "Successful calls whose response carried no token usage.",
            &[n::PROVIDER, n::MODEL],
        )?;
        let parse_errors = counter(
            n::PARSE_ERRORS_TOTAL,
            "Calls llmtap could not fully parse (traffic was forwarded unchanged).",
            &[n::PROVIDER, n::KIND],
        )?;
        let tunnels = counter(
            n::TUNNELS_TOTAL,
            "CONNECT tunnels by whether llmtap decrypted them.",
            &[n::INTERCEPTED],
        )?;
        let overflow = counter(
            n::LABEL_OVERFLOW_TOTAL,
            "Label values recorded as 'other' because the label hit its cap.",
            &[n::LABEL],
        )?;
        let cost = prometheus::CounterVec::new(
            Opts::new(
                n::COST_USD_TOTAL,
                "USD at the price table's rates (subscriptions at API-equivalent rates).",
            ),
            &with(n::BILLING),
        )?;
        registry.register(Box::new(cost.clone()))?;
        let cost_unknown = counter(
            n::COST_UNKNOWN_TOTAL,
            "Calls that used tokens but could not be priced (unknown model or no usage).",
            &[n::PROVIDER, n::MODEL],
        )?;
        let auth_failures = IntCounter::new(
            n::AUTH_FAILURES_TOTAL,
            "Proxy requests refused with 407 (no or wrong credentials for --auth-file).",
        )?;
        registry.register(Box::new(auth_failures.clone()))?;
        let destinations_refused = counter(
            n::DESTINATIONS_REFUSED_TOTAL,
            "CONNECT and absolute-form requests refused by the destination policy (403).",
            &[n::REASON],
        )?;
        for refusal in crate::policy::Refusal::ALL {
            destinations_refused.get_metric_with_label_values(&[refusal.as_str()])?;
        }
        let connections_refused = counter(
            n::CONNECTIONS_REFUSED_TOTAL,
            "Client connections and tunnels closed by llmtap before any request.",
            &[n::REASON],
        )?;
        for reason in hudsucker::Refused::ALL {
            connections_refused.get_metric_with_label_values(&[reason.as_str()])?;
        }
        let observe_skipped = counter(
            n::OBSERVE_SKIPPED_TOTAL,
            "Parts of calls relayed unchanged but not observed: the observation budget was spent.",
            &[n::REASON],
        )?;
        for reason in crate::budget::Skipped::ALL {
            observe_skipped.get_metric_with_label_values(&[reason.as_str()])?;
        }
        let observe_held = IntGauge::new(
            n::OBSERVE_HELD_BYTES,
            "Bytes held for observation now, all calls together.",
        )?;
        registry.register(Box::new(observe_held.clone()))?;
        let in_flight = IntGauge::new(n::IN_FLIGHT_CALLS, "LLM calls in progress.")?;
        registry.register(Box::new(in_flight.clone()))?;
        let records_dropped = IntCounter::new(
            n::RECORDS_DROPPED_TOTAL,
            "Finished calls not recorded because the telemetry queue was full.",
        )?;
        registry.register(Box::new(records_dropped.clone()))?;
        let spans_dropped = IntCounter::new(
            n::SPANS_DROPPED_TOTAL,
            "Spans not exported: queue full or export failed (traffic unaffected).",
        )?;
        registry.register(Box::new(spans_dropped.clone()))?;
        let export_failures_by_signal = IntCounterVec::new(
            Opts::new(
                n::OTLP_EXPORT_FAILURES_TOTAL,
                "OTLP export requests that failed, by signal.",
            ),
            &[n::SIGNAL],
        )?;
        registry.register(Box::new(export_failures_by_signal.clone()))?;
        let history_dropped = IntCounter::new(
            n::HISTORY_DROPPED_TOTAL,
            "Calls not written to the history: its queue was full or the write failed.",
        )?;
        registry.register(Box::new(history_dropped.clone()))?;
        // Both series exist from startup.
        let export_failures =
            export_failures_by_signal.get_metric_with_label_values(&["traces"])?;
        let metric_export_failures =
            export_failures_by_signal.get_metric_with_label_values(&["metrics"])?;
        // A gauge fixed at 1, by Prometheus convention for build information.
        let build_info = prometheus::IntGaugeVec::new(
            Opts::new(n::BUILD_INFO, "llmtap build information."),
            &[n::VERSION],
        )?;
        registry.register(Box::new(build_info.clone()))?;
        build_info
            .get_metric_with_label_values(&[env!("CARGO_PKG_VERSION")])?
            .set(1);
        let gauge = |name: &str, help: &str, labels: &[&str]| {
            let g = prometheus::GaugeVec::new(Opts::new(name, help), labels)?;
            registry.register(Box::new(g.clone()))?;
            Ok::<_, prometheus::Error>(g)
        };
        let tool_duration = histogram_of(
            n::TOOL_DURATION_SECONDS,
            "Tool execution time: end of the response asking for a tool call to the request carrying its result.",
            n::TOOL_BUCKETS,
            &[n::PROVIDER, n::TOOL],
        )?;
        let tool_errors = counter(
            n::TOOL_ERRORS_TOTAL,
            "Tool results that say the tool failed.",
            &[n::PROVIDER, n::TOOL],
        )?;
        let tool_unmatched = counter(
            n::TOOL_CALLS_UNMATCHED_TOTAL,
            "Tool calls dropped while waiting for their result (evicted or expired).",
            &[n::REASON],
        )?;
        for reason in ["evicted", "expired"] {
            tool_unmatched.get_metric_with_label_values(&[reason])?;
        }
        let context = histogram_of(
            n::CONTEXT_UTILIZATION_RATIO,
            "Input tokens over the model's context window.",
            n::RATIO_BUCKETS,
            &[n::PROVIDER, n::MODEL],
        )?;
        let per_agent = [n::PROVIDER, n::MODEL, n::AGENT];
        let compactions = counter(
            n::COMPACTIONS_TOTAL,
            "Calls that compact their conversation.",
            &per_agent,
        )?;
        let cache_breaks = counter(
            n::CACHE_BREAKS_TOTAL,
            "Calls that broke their thread's prompt cache while it was alive.",
            &per_agent,
        )?;
        let cache_break_cost = prometheus::CounterVec::new(
            Opts::new(
                n::CACHE_BREAK_COST_USD_TOTAL,
                "USD cache breaks cost: the broken prefix as cache writes instead of reads.",
            ),
            &per_agent,
        )?;
        registry.register(Box::new(cache_break_cost.clone()))?;
        let retries = counter(
            n::RETRIES_TOTAL,
            "Calls that resend a request that failed in the last 10 minutes.",
            &[n::PROVIDER, n::MODEL, n::REASON],
        )?;
        let identity = |extra: &'static str| [n::PROVIDER, n::TEAM, n::USER, extra];
        let ratelimit_utilization = gauge(
            n::RATELIMIT_UTILIZATION_RATIO,
            "Plan-window utilization the provider last reported (0-1).",
            &identity(n::WINDOW),
        )?;
        let ratelimit_remaining = gauge(
            n::RATELIMIT_REMAINING,
            "What is left of an API rate limit, as the provider last reported.",
            &identity(n::RESOURCE),
        )?;
        let ratelimit_reset = gauge(
            n::RATELIMIT_RESET_TIMESTAMP_SECONDS,
            "When a plan window or API limit resets, as the provider last reported (Unix seconds).",
            &identity(n::WINDOW),
        )?;
        // Every outcome and tunnel kind exists from the start, so rates and alerts see 0.
        tunnels.get_metric_with_label_values(&["true"])?;
        tunnels.get_metric_with_label_values(&["false"])?;
        Ok(Metrics {
            registry,
            requests,
            tokens,
            duration,
            ttft,
            tool_calls,
            errors,
            usage_missing,
            parse_errors,
            in_flight,
            tunnels,
            records_dropped,
            auth_failures,
            destinations_refused,
            connections_refused,
            observe_skipped,
            observe_held,
            cost,
            cost_unknown,
            spans_dropped,
            export_failures,
            metric_export_failures,
            history_dropped,
            overflow,
            tool_duration,
            tool_errors,
            tool_unmatched,
            context,
            compactions,
            cache_breaks,
            cache_break_cost,
            retries,
            ratelimit_utilization,
            ratelimit_remaining,
            ratelimit_reset,
            agent: Capped::new(n::AGENT, caps.agent),
            window: Capped::new(n::WINDOW, caps.window),
            host: Capped::new(n::SERVER_ADDRESS_LABEL, caps.host),
            port: Capped::new(n::SERVER_PORT_LABEL, caps.host),
            model: Capped::new(n::MODEL, caps.model),
            tool: Capped::new(n::TOOL, caps.tool),
            team: Capped::new(n::TEAM, caps.team),
            user: Capped::new(n::USER, caps.user),
            error_type: Capped::new(n::ERROR_TYPE, caps.error_type),
        })
    }

    /// Counts a proxy request refused with 407 (`llmtap_auth_failures_total`).
    pub fn auth_failure(&self) {
        self.auth_failures.inc();
    }

    /// Counts a destination the policy refused (`llmtap_destinations_refused_total`).
    pub fn destination_refused(&self, refusal: crate::policy::Refusal) {
        if let Ok(c) = self
            .destinations_refused
            .get_metric_with_label_values(&[refusal.as_str()])
        {
            c.inc();
        }
    }

    /// `reason`: one of `hudsucker::Refused::ALL`.
    pub fn connection_refused(&self, reason: &str) {
        if let Ok(c) = self
            .connections_refused
            .get_metric_with_label_values(&[reason])
        {
            c.inc();
        }
    }

    /// Counts a part of a call not observed for the budget (`llmtap_observe_skipped_total`).
    pub fn observe_skipped(&self, reason: crate::budget::Skipped) {
        if let Ok(c) = self
            .observe_skipped
            .get_metric_with_label_values(&[reason.as_str()])
        {
            c.inc();
        }
    }

    /// Counts a CONNECT tunnel, decrypted or blind (`llmtap_tunnels_total`).
    pub fn tunnel(&self, intercepted: bool) {
        let label = if intercepted { "true" } else { "false" };
        if let Ok(c) = self.tunnels.get_metric_with_label_values(&[label]) {
            c.inc();
        }
    }

    /// `value` as the capped `model` label exports it (`other` past `--label-cap`); the OTel
    /// metrics cap their model attributes with it, so both sinks agree.
    pub fn cap_model<'a>(&self, value: &'a str) -> &'a str {
        self.model.get(value, &self.overflow)
    }

    /// `value` as the capped `team` label exports it.
    pub fn cap_team<'a>(&self, value: &'a str) -> &'a str {
        self.team.get(value, &self.overflow)
    }

    /// `value` as the capped `user` label exports it.
    pub fn cap_user<'a>(&self, value: &'a str) -> &'a str {
        self.user.get(value, &self.overflow)
    }

    /// `value` as the OTel metrics' capped `server.address` exports it (overflow counted under
    /// `label="server_address"`).
    pub fn cap_host<'a>(&self, value: &'a str) -> &'a str {
        self.host.get(value, &self.overflow)
    }

    /// `port` as the OTel metrics' capped `server.port` exports it: `None` past the cap (a
    /// client picks the port of its CONNECT), the attribute then left out.
    pub fn cap_port(&self, port: u16) -> Option<i64> {
        let text = port.to_string();
        (self.port.get(&text, &self.overflow) != n::OTHER).then_some(i64::from(port))
    }

    /// `value` as the capped `error_type` label exports it.
    pub fn cap_error_type<'a>(&self, value: &'a str) -> &'a str {
        self.error_type.get(value, &self.overflow)
    }

    /// Applies one finished call. Label-count mismatches cannot happen (labels are built
    /// here from the same constants), so their errors are ignored rather than panicking.
    pub fn record(&self, r: &CallRecord) {
        let provider = r.provider.as_str();
        let model = self
            .model
            .get(r.model().unwrap_or(n::UNKNOWN), &self.overflow);
        let team = self
            .team
            .get(r.team.as_deref().unwrap_or(n::UNKNOWN), &self.overflow);
        let user = self
            .user
            .get(r.user.as_deref().unwrap_or(n::UNKNOWN), &self.overflow);
        let client = r.client.as_str();
        let agent = self.agent.get(
            r.agent_loop.agent.as_deref().unwrap_or(n::UNKNOWN),
            &self.overflow,
        );
        let common = [provider, model, team, user, client, agent];
        let labels = |extra: &str| {
            let mut l = common.to_vec();
            l.push(extra);
            l.into_iter().map(str::to_owned).collect::<Vec<String>>()
        };
        if let Ok(c) = self
            .requests
            .get_metric_with_label_values(&labels(r.outcome.as_str()))
        {
            c.inc();
        }
        let u = &r.response.usage;
        for (kind, value) in TokenType::ALL.iter().map(|t| (t.as_str(), u.count(*t))) {
            if let Some(v) = value
                && let Ok(c) = self.tokens.get_metric_with_label_values(&labels(kind))
            {
                c.inc_by(v);
            }
        }
        match r.cost_usd {
            Some(cost) => {
                if let Ok(c) = self
                    .cost
                    .get_metric_with_label_values(&labels(r.billing.as_str()))
                {
                    c.inc_by(cost);
                }
            }
            None if r.cost_unknown() => {
                if let Ok(c) = self
                    .cost_unknown
                    .get_metric_with_label_values(&[provider, model])
                {
                    c.inc();
                }
            }
            None => {}
        }
        if let Ok(h) = self
            .duration
            .get_metric_with_label_values(&[provider, model, client])
        {
            h.observe(r.duration.as_secs_f64());
        }
        if let Some(ttft) = r.ttft
            && let Ok(h) = self
                .ttft
                .get_metric_with_label_values(&[provider, model, client])
        {
            h.observe(ttft.as_secs_f64());
        }
        for tool in &r.response.tools_called {
            let tool = self.tool.get(tool, &self.overflow);
            if let Ok(c) = self
                .tool_calls
                .get_metric_with_label_values(&[provider, model, tool])
            {
                c.inc();
            }
        }
        if let Some(error_type) = &r.error_type {
            let spelled = error_type.as_str();
            let error_type = self.error_type.get(&spelled, &self.overflow);
            if let Ok(c) = self
                .errors
                .get_metric_with_label_values(&[provider, error_type])
            {
                c.inc();
            }
        }
        if r.usage_missing
            && let Ok(c) = self
                .usage_missing
                .get_metric_with_label_values(&[provider, model])
        {
            c.inc();
        }
        if let Some(kind) = r.parse_error
            && let Ok(c) = self
                .parse_errors
                .get_metric_with_label_values(&[provider, kind.as_str()])
        {
            c.inc();
        }
        if let Some(skipped) = r.observe_skipped {
            self.observe_skipped(skipped);
        }
        self.record_loop(r, provider, model, team, user, agent);
    }

    /// The agent-loop families: tools run, context fill, compactions, cache breaks, retries,
    /// and the limits the response reported.
    fn record_loop(
        &self,
        r: &CallRecord,
        provider: &str,
        model: &str,
        team: &str,
        user: &str,
        agent: &str,
    ) {
        let facts = &r.agent_loop;
        for run in &facts.tool_executions {
            let tool = self.tool.get(&run.tool, &self.overflow);
            let provider = run.provider.as_str();
            if let Ok(h) = self
                .tool_duration
                .get_metric_with_label_values(&[provider, tool])
            {
                h.observe(run.duration.as_secs_f64());
            }
            if run.error
                && let Ok(c) = self
                    .tool_errors
                    .get_metric_with_label_values(&[provider, tool])
            {
                c.inc();
            }
        }
        if let Some(u) = facts.context_utilization
            && let Ok(h) = self
                .context
                .get_metric_with_label_values(&[provider, model])
        {
            h.observe(u);
        }
        let per_agent = [provider, model, agent];
        if facts.compacted
            && let Ok(c) = self.compactions.get_metric_with_label_values(&per_agent)
        {
            c.inc();
        }
        if facts.cache_break_tokens.is_some() {
            if let Ok(c) = self.cache_breaks.get_metric_with_label_values(&per_agent) {
                c.inc();
            }
            if let (Some(cost), Ok(c)) = (
                facts.cache_break_cost_usd,
                self.cache_break_cost
                    .get_metric_with_label_values(&per_agent),
            ) {
                c.inc_by(cost);
            }
        }
        if let Some(reason) = facts.retry_reason
            && let Ok(c) =
                self.retries
                    .get_metric_with_label_values(&[provider, model, reason.as_str()])
        {
            c.inc();
        }
        if let Some(limits) = &r.ratelimits {
            for (window, w) in &limits.windows {
                let window = self.window.get(window, &self.overflow);
                let labels = [provider, team, user, window];
                if let (Some(u), Ok(g)) = (
                    w.utilization,
                    self.ratelimit_utilization
                        .get_metric_with_label_values(&labels),
                ) {
                    g.set(u);
                }
                if let (Some(t), Ok(g)) = (
                    w.reset,
                    self.ratelimit_reset.get_metric_with_label_values(&labels),
                ) {
                    g.set(t as f64);
                }
            }
            for (resource, res) in &limits.resources {
                let labels = [provider, team, user, resource];
                if let (Some(left), Ok(g)) = (
                    res.remaining,
                    self.ratelimit_remaining
                        .get_metric_with_label_values(&labels),
                ) {
                    g.set(left as f64);
                }
            }
        }
    }

    /// Counts tool calls that waited for a result in vain (`llmtap_tool_calls_unmatched_total`).
    pub fn tool_calls_unmatched(&self, dropped: crate::agentloop::Dropped) {
        for (reason, n) in [("evicted", dropped.evicted), ("expired", dropped.expired)] {
            if n > 0
                && let Ok(c) = self.tool_unmatched.get_metric_with_label_values(&[reason])
            {
                c.inc_by(n);
            }
        }
    }

    /// The text exposition format served on `/metrics`.
    pub fn encode(&self) -> (Vec<u8>, String) {
        let encoder = TextEncoder::new();
        let mut buf = Vec::new();
        // Encoding only fails on a broken metric family, which registration already rules out.
        let _ = encoder.encode(&self.registry.gather(), &mut buf);
        (buf, encoder.format_type().to_owned())
    }

    /// Current value of a counter family summed over label sets that match `filter`.
    /// For tests and `wrap`'s summary; not on any hot path.
    pub fn sum(&self, name: &str, filter: &[(&str, &str)]) -> f64 {
        let families = self.registry.gather();
        let Some(family) = families.iter().find(|f| f.name() == name) else {
            return 0.0;
        };
        family
            .get_metric()
            .iter()
            .filter(|m| {
                let labels: HashMap<&str, &str> = m
                    .get_label()
                    .iter()
                    .map(|l| (l.name(), l.value()))
                    .collect();
                filter.iter().all(|(k, v)| labels.get(k) == Some(v))
            })
            .map(|m| match family.get_field_type() {
                MetricType::COUNTER => m.get_counter().get_value(),
                MetricType::GAUGE => m.get_gauge().get_value(),
                MetricType::HISTOGRAM => m.get_histogram().get_sample_count() as f64,
                _ => 0.0,
            })
            .sum()
    }
}

#[cfg(test)]
mod loop_tests {
    use super::*;

    /// Found by the attacker review of issue 15: the `window` label takes its values from upstream headers (any
    /// `[a-z0-9_]{1,16}`, or Codex's `<n>m`), capped at 8 per response but never across
    /// responses, unlike every other traffic-derived label (`--label-cap`).
    #[test]
    fn the_window_label_is_capped_like_the_others() {
        let m = Metrics::new(Caps::all(2)).expect("metrics");
        for i in 0..20 {
            let mut r = crate::telemetry::calls::tests::record();
            let mut limits = crate::dialects::ratelimits::RateLimits::default();
            limits.codex_window(Some(10.0), Some(1000 + i), None);
            r.ratelimits = Some(limits);
            m.record(&r);
        }
        let (text, _) = m.encode();
        let text = String::from_utf8(text).expect("utf-8");
        let series = text
            .lines()
            .filter(|l| l.starts_with("llmtap_ratelimit_utilization_ratio{"))
            .count();
        assert!(series <= 3, "{series} window series with --label-cap 2");
    }
}
