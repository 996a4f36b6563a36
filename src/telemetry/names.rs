//! Every metric name, label name and fixed label value llmtap exports, spelled once
//! (DESIGN §5). Dashboards, alerts and tests depend on these strings.

pub const REQUESTS_TOTAL: &str = "llmtap_requests_total";
pub const TOKENS_TOTAL: &str = "llmtap_tokens_total";
pub const REQUEST_DURATION_SECONDS: &str = "llmtap_request_duration_seconds";
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "llmtap_time_to_first_token_seconds";
pub const TOOL_CALLS_TOTAL: &str = "llmtap_tool_calls_total";
pub const ERRORS_TOTAL: &str = "llmtap_errors_total";
pub const USAGE_MISSING_TOTAL: &str = "llmtap_usage_missing_total";
pub const PARSE_ERRORS_TOTAL: &str = "llmtap_parse_errors_total";
pub const IN_FLIGHT_CALLS: &str = "llmtap_in_flight_calls";
pub const TUNNELS_TOTAL: &str = "llmtap_tunnels_total";
pub const BUILD_INFO: &str = "llmtap_build_info";
/// Calls finished while the telemetry queue was full: counted, never silently lost.
pub const RECORDS_DROPPED_TOTAL: &str = "llmtap_records_dropped_total";
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

/// Value of a capped label past its cap.
pub const OTHER: &str = "other";
/// Value of a label whose source is absent (no model in the call, no team configured).
pub const UNKNOWN: &str = "unknown";

/// `type` values of [`TOKENS_TOTAL`].
pub const TOKEN_INPUT: &str = "input";
pub const TOKEN_OUTPUT: &str = "output";
pub const TOKEN_CACHE_READ: &str = "cache_read";
pub const TOKEN_CACHE_WRITE_5M: &str = "cache_write_5m";
pub const TOKEN_CACHE_WRITE_1H: &str = "cache_write_1h";
pub const TOKEN_REASONING: &str = "reasoning";

/// Histogram buckets in seconds: 5 ms to 300 s.
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];
