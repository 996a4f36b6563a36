//! Every metric name, label name and fixed label value llmtap exports, spelled once
//! (ARCHITECTURE.md, "Names"). Dashboards, alerts and tests depend on these strings.

pub const REQUESTS_TOTAL: &str = "llmtap_requests_total";
pub const TOKENS_TOTAL: &str = "llmtap_tokens_total";
pub const REQUEST_DURATION_SECONDS: &str = "llmtap_request_duration_seconds";
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "llmtap_time_to_first_token_seconds";
pub const TOOL_CALLS_TOTAL: &str = "llmtap_tool_calls_total";
pub const COST_USD_TOTAL: &str = "llmtap_cost_usd_total";
pub const COST_UNKNOWN_TOTAL: &str = "llmtap_cost_unknown_total";
pub const ERRORS_TOTAL: &str = "llmtap_errors_total";
pub const USAGE_MISSING_TOTAL: &str = "llmtap_usage_missing_total";
pub const PARSE_ERRORS_TOTAL: &str = "llmtap_parse_errors_total";
pub const IN_FLIGHT_CALLS: &str = "llmtap_in_flight_calls";
pub const TUNNELS_TOTAL: &str = "llmtap_tunnels_total";
pub const BUILD_INFO: &str = "llmtap_build_info";
/// Calls finished while the telemetry queue was full: counted, never silently lost.
pub const RECORDS_DROPPED_TOTAL: &str = "llmtap_records_dropped_total";
/// Proxy requests refused with 407 under `--auth-file`.
pub const AUTH_FAILURES_TOTAL: &str = "llmtap_auth_failures_total";
/// CONNECT and absolute-form requests refused by the destination policy (403).
pub const DESTINATIONS_REFUSED_TOTAL: &str = "llmtap_destinations_refused_total";
/// Client connections and tunnels llmtap closed before any request: client timeouts,
/// misdirected requests, plaintext in a TLS tunnel, a ClientHello for another host.
pub const CONNECTIONS_REFUSED_TOTAL: &str = "llmtap_connections_refused_total";
/// Parts of calls relayed but not observed because the observation budget was spent.
pub const OBSERVE_SKIPPED_TOTAL: &str = "llmtap_observe_skipped_total";
/// Bytes currently held for observation, all calls together (`--observe-budget` caps it).
pub const OBSERVE_HELD_BYTES: &str = "llmtap_observe_held_bytes";
/// A capped label saw a new value past its cap and recorded it as [`OTHER`].
pub const LABEL_OVERFLOW_TOTAL: &str = "llmtap_label_overflow_total";

pub const PROVIDER: &str = "provider";
pub const MODEL: &str = "model";
pub const TEAM: &str = "team";
pub const USER: &str = "user";
pub const CLIENT: &str = "client";
pub const OUTCOME: &str = "outcome";
pub const TYPE: &str = "type";
pub const TOOL: &str = "tool";
pub const ERROR_TYPE: &str = "error_type";
pub const KIND: &str = "kind";
pub const INTERCEPTED: &str = "intercepted";
pub const VERSION: &str = "version";
pub const LABEL: &str = "label";
pub const BILLING: &str = "billing";
pub const REASON: &str = "reason";

/// `llmtap_connections_refused_total{reason}` values (hudsucker's `Refused::as_str`).
pub const CONNECTION_REFUSALS: [&str; 8] = [
    "header_timeout",
    "handshake_timeout",
    "closed_early",
    "sni_mismatch",
    "plaintext",
    "unknown_protocol",
    "misdirected",
    "tunnel_connect",
];

/// Value of a capped label past its cap.
pub const OTHER: &str = "other";
/// Value of a label whose source is absent (no model in the call, no team configured).
pub const UNKNOWN: &str = "unknown";

// `type` values of [`TOKENS_TOTAL`]: `vocab::TokenType`.

/// Histogram buckets in seconds: 5 ms to 300 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

pub const SPANS_DROPPED_TOTAL: &str = "llmtap_spans_dropped_total";
pub const OTLP_EXPORT_FAILURES_TOTAL: &str = "llmtap_otlp_export_failures_total";

/// Span attribute keys (ARCHITECTURE.md, "Names"): the GenAI semantic conventions, then llmtap's own.
pub mod attr {
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    pub const RESPONSE_ID: &str = "gen_ai.response.id";
    pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    pub const USAGE_CACHE_READ: &str = "gen_ai.usage.cache_read.input_tokens";
    pub const USAGE_CACHE_CREATION: &str = "gen_ai.usage.cache_creation.input_tokens";
    pub const USAGE_REASONING: &str = "gen_ai.usage.reasoning.output_tokens";
    pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
    pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    pub const TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
    pub const SERVER_ADDRESS: &str = "server.address";
    pub const SERVER_PORT: &str = "server.port";
    pub const HTTP_METHOD: &str = "http.request.method";
    pub const HTTP_STATUS: &str = "http.response.status_code";
    pub const ERROR_TYPE: &str = "error.type";

    pub const STREAM: &str = "llmtap.stream";
    pub const TTFT_MS: &str = "llmtap.ttft_ms";
    pub const CACHE_WRITE_5M: &str = "llmtap.usage.cache_creation.5m_input_tokens";
    pub const CACHE_WRITE_1H: &str = "llmtap.usage.cache_creation.1h_input_tokens";
    pub const COST_USD: &str = "llmtap.cost_usd";
    pub const BILLING: &str = "llmtap.billing";
    pub const TOOLS_OFFERED: &str = "llmtap.tools.offered";
    pub const TOOLS_OFFERED_NAMES: &str = "llmtap.tools.offered_names";
    pub const TOOLS_CALLED: &str = "llmtap.tools.called";
    pub const SYSTEM_CHARS: &str = "llmtap.request.system_chars";
    pub const MESSAGES: &str = "llmtap.request.messages";
    pub const CLIENT: &str = "llmtap.client";
    pub const TEAM: &str = "llmtap.team";
    pub const USER: &str = "llmtap.user";
    pub const OUTCOME: &str = "llmtap.outcome";
    pub const USAGE_MISSING: &str = "llmtap.usage_missing";
    pub const PARSE_ERROR: &str = "llmtap.parse_error";
    /// Content attributes that hit `--capture-max-bytes` (string[]).
    pub const CONTENT_TRUNCATED: &str = "llmtap.content.truncated";

    /// Event at the time-to-first-token instant.
    pub const FIRST_TOKEN_EVENT: &str = "gen_ai.first_token";
}
