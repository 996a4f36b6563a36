//! Every metric name, label name and fixed label value llmtap exports, spelled once
//! (ARCHITECTURE.md, "Names"). Dashboards, alerts and tests depend on these strings.

/// Counter of finished LLM calls, one per [`CallRecord`](crate::exchange::CallRecord)
/// (every ending: ok, error, cancelled). Labels: `provider`, `model`, `team`, `user`,
/// `client`, `outcome` ([`crate::vocab::Outcome`]). Unit: calls.
pub const REQUESTS_TOTAL: &str = "llmtap_requests_total";
/// Counter of tokens, by `type` ([`crate::vocab::TokenType`]): `input` is the normalized
/// total with cached tokens included, `cache_read` / `cache_write_5m` / `cache_write_1h` are
/// parts of it, `output` includes `reasoning` (ARCHITECTURE.md, "Usage"). A count the
/// response did not carry adds nothing (never zero). Labels: `provider`, `model`, `team`,
/// `user`, `client`, `type`. Unit: tokens.
pub const TOKENS_TOTAL: &str = "llmtap_tokens_total";
/// Histogram of call duration: request head received by llmtap (`t0`) to the end of the
/// response (or the failure). Labels: `provider`, `model`, `client`; buckets
/// [`LATENCY_BUCKETS`]. Unit: seconds.
pub const REQUEST_DURATION_SECONDS: &str = "llmtap_request_duration_seconds";
/// Histogram of time to first token: `t0` to the first generated-content delta (text,
/// thinking, tool arguments), observed only for streamed calls that produced one.
/// Labels: `provider`, `model`, `client`; buckets [`LATENCY_BUCKETS`]. Unit: seconds.
pub const TIME_TO_FIRST_TOKEN_SECONDS: &str = "llmtap_time_to_first_token_seconds";
/// Counter of tool calls the model made, one per name in the response's `tools_called`.
/// Labels: `provider`, `model`, `tool` (the tool's name, capped by `--label-cap`).
/// Unit: tool calls.
pub const TOOL_CALLS_TOTAL: &str = "llmtap_tool_calls_total";
/// Counter (floating point) of what calls cost at the price table's rates, subscriptions at
/// the API-equivalent rate (`src/pricing.rs`). Only priced calls add to it. Labels:
/// `provider`, `model`, `team`, `user`, `client`, `billing` ([`crate::caller::Billing`]).
/// Unit: USD.
pub const COST_USD_TOTAL: &str = "llmtap_cost_usd_total";
/// Counter of calls that cost something llmtap could not price (no price for the model,
/// or no usage on a successful call): the one rule [`crate::vocab::cost_unknown`]. A
/// failed call without usage cost nothing and is not counted. Labels: `provider`, `model`.
/// Unit: calls.
pub const COST_UNKNOWN_TOTAL: &str = "llmtap_cost_unknown_total";
/// Counter of failed calls, one per call with an `error_type`
/// ([`crate::vocab::ErrorType`]: the API's own error type, else the HTTP status, else what
/// llmtap saw go wrong). Labels: `provider`, `error_type` (capped at 50 distinct values).
/// Unit: calls.
pub const ERRORS_TOTAL: &str = "llmtap_errors_total";
/// Counter of successful (`outcome="ok"`) calls whose response carried no token usage
/// (recorded as absent, never as zero; an OpenAI Chat stream without
/// `stream_options.include_usage` is the usual cause). Labels: `provider`, `model`.
/// Unit: calls.
pub const USAGE_MISSING_TOTAL: &str = "llmtap_usage_missing_total";
/// Counter of calls llmtap could not fully parse; the traffic itself was forwarded
/// unchanged (ARCHITECTURE.md, invariant 3). Labels: `provider`, `kind`
/// ([`crate::dialects::ParseError::as_str`]: `invalid_json`, `invalid_utf8`,
/// `line_too_long`, `body_too_large`, `decode`, `invalid_frame`, `panic`). Unit: calls.
pub const PARSE_ERRORS_TOTAL: &str = "llmtap_parse_errors_total";
/// Gauge of LLM calls started and not yet finished (recorded calls only: tunnels and
/// non-LLM requests are not counted). No labels. Unit: calls.
pub const IN_FLIGHT_CALLS: &str = "llmtap_in_flight_calls";
/// Counter of CONNECT tunnels opened, by whether llmtap decrypts them. Label
/// `intercepted`: `true` (host in `--intercept`) or `false` (a blind tunnel); both exist
/// from startup. Unit: tunnels.
pub const TUNNELS_TOTAL: &str = "llmtap_tunnels_total";
/// Gauge fixed at 1, by the Prometheus convention for build information. Label `version`:
/// the crate version (`CARGO_PKG_VERSION`).
pub const BUILD_INFO: &str = "llmtap_build_info";
/// Counter of finished calls not recorded because the telemetry queue
/// ([`crate::telemetry::QUEUE`] calls) was full: no call line, metrics or span for them,
/// but counted, never silently lost. No labels. Unit: calls.
pub const RECORDS_DROPPED_TOTAL: &str = "llmtap_records_dropped_total";
/// Counter of proxy requests (CONNECT or absolute-form) refused with `407` under
/// `--auth-file`: no `Proxy-Authorization`, or credentials not admitted. No labels.
/// Unit: requests.
pub const AUTH_FAILURES_TOTAL: &str = "llmtap_auth_failures_total";
/// Counter of destinations refused by the destination policy (`src/policy.rs`): CONNECT
/// and absolute-form targets answered `403` (also a blind tunnel's name that resolves to a
/// refused address), and refusals at dial time (WebSocket upstreams, intercepted calls,
/// blind tunnels). Label `reason` ([`crate::policy::Refusal`]: `loopback`, `link_local`,
/// `unspecified`, `own_address`), every value present from startup. Unit: refusals.
pub const DESTINATIONS_REFUSED_TOTAL: &str = "llmtap_destinations_refused_total";
/// Counter of client connections and tunnels llmtap closed before any request: client
/// header or handshake timeouts, misdirected requests, plaintext in a TLS tunnel, a
/// ClientHello for another host. Label `reason`: one of `hudsucker::Refused::ALL`, spelled by
/// `Refused::as_str` (the patched hudsucker), every value present from startup. Unit: connections.
pub const CONNECTIONS_REFUSED_TOTAL: &str = "llmtap_connections_refused_total";
/// Counter of parts of calls relayed unchanged but not observed because the observation
/// budget (`--observe-budget`) was spent. Label `reason` ([`crate::budget::Skipped`]:
/// `request_body`, `response_body`, `stream`, `websocket_message`), every value present
/// from startup. Unit: skipped parts.
pub const OBSERVE_SKIPPED_TOTAL: &str = "llmtap_observe_skipped_total";
/// Gauge of bytes held for observation right now, all calls together: request copies,
/// non-streamed bodies, partial events, parse trees and queued records (`src/budget.rs`;
/// `--observe-budget` caps it). No labels. Unit: bytes.
pub const OBSERVE_HELD_BYTES: &str = "llmtap_observe_held_bytes";
/// Counter of label values exported as [`OTHER`] because their label already had its cap
/// of distinct values (`--label-cap`; 50 for `error_type`). Label `label`: the capped
/// label's name (`model`, `tool`, `team`, `user`, `error_type`, `agent`, `window`, and
/// `server_address` / `server_port` for the OTel metrics' attributes); a value longer than
/// 256 bytes is exported as [`OTHER`] and counted too. Unit: values.
pub const LABEL_OVERFLOW_TOTAL: &str = "llmtap_label_overflow_total";

/// Label: the API provider of the call ([`crate::providers::Provider`], e.g. `anthropic`,
/// `openai`).
pub const PROVIDER: &str = "provider";
/// Label: the model, as the response names it, else as the request asked; [`UNKNOWN`]
/// when neither says; capped by `--label-cap` (past it, [`OTHER`]).
pub const MODEL: &str = "model";
/// Label: the team the call is attributed to ([`crate::caller::Attribution`]: proxy
/// credentials, `x-llmtap-team`, `--team`); [`UNKNOWN`] when none; capped by `--label-cap`.
pub const TEAM: &str = "team";
/// Label: the user the call is attributed to ([`crate::caller::Attribution`]: proxy
/// credentials, `x-llmtap-user`, `--user`); [`UNKNOWN`] when none; capped by `--label-cap`.
pub const USER: &str = "user";
/// Label: the agent or SDK that made the call, from its `user-agent`
/// ([`crate::caller::Client`], e.g. `claude-code`, `codex`, `other`).
pub const CLIENT: &str = "client";
/// Label of [`REQUESTS_TOTAL`]: how the call ended ([`crate::vocab::Outcome`]).
pub const OUTCOME: &str = "outcome";
/// Label of [`TOKENS_TOTAL`]: the kind of token ([`crate::vocab::TokenType`]).
pub const TYPE: &str = "type";
/// Label of [`TOOL_CALLS_TOTAL`]: the called tool's name, capped by `--label-cap`.
pub const TOOL: &str = "tool";
/// Label of [`ERRORS_TOTAL`]: why the call failed ([`crate::vocab::ErrorType`]), capped at
/// 50 distinct values.
pub const ERROR_TYPE: &str = "error_type";
/// Label of [`PARSE_ERRORS_TOTAL`]: what could not be parsed
/// ([`crate::dialects::ParseError::as_str`]).
pub const KIND: &str = "kind";
/// Label of [`TUNNELS_TOTAL`]: `true` when the tunnel was decrypted, `false` when blind.
pub const INTERCEPTED: &str = "intercepted";
/// Label of [`BUILD_INFO`]: llmtap's version.
pub const VERSION: &str = "version";
/// Label of [`LABEL_OVERFLOW_TOTAL`]: the name of the label that hit its cap.
pub const LABEL: &str = "label";
/// Label of [`COST_USD_TOTAL`]: how the call is paid for ([`crate::caller::Billing`]:
/// `api` or `subscription`).
pub const BILLING: &str = "billing";
/// Label of [`DESTINATIONS_REFUSED_TOTAL`], [`CONNECTIONS_REFUSED_TOTAL`] and
/// [`OBSERVE_SKIPPED_TOTAL`]: why (their own value sets, listed on each).
pub const REASON: &str = "reason";

/// Value of [`LABEL`] for the OTel metrics' capped `server.address` attribute.
pub const SERVER_ADDRESS_LABEL: &str = "server_address";
/// Value of [`LABEL`] for the OTel metrics' capped `server.port` attribute.
pub const SERVER_PORT_LABEL: &str = "server_port";
/// Label of [`OTLP_EXPORT_FAILURES_TOTAL`]: the OTLP signal, `traces` or `metrics`.
pub const SIGNAL: &str = "signal";

/// Value of a capped label past its cap (`--label-cap` distinct values already seen);
/// each use counts in [`LABEL_OVERFLOW_TOTAL`].
pub const OTHER: &str = "other";
/// Label: the agent that made the call, `gen_ai.agent.name` (`main`, a subagent's name,
/// capped by `--label-cap`; `unknown` when the call carries no conversation).
pub const AGENT: &str = "agent";
/// Label: a plan window (`5h`, `7d`, `7d_opus`, `overage`, a Codex window `<n>m`), capped
/// by `--label-cap`.
pub const WINDOW: &str = "window";
/// Label: an API rate-limit resource: `requests`, `tokens`, `input_tokens`, `output_tokens`.
pub const RESOURCE: &str = "resource";
/// Value of a label whose source is absent (no model in the call, no team configured).
pub const UNKNOWN: &str = "unknown";

// `type` values of [`TOKENS_TOTAL`]: `vocab::TokenType`.

/// Bucket bounds of [`REQUEST_DURATION_SECONDS`] and [`TIME_TO_FIRST_TOKEN_SECONDS`], in
/// seconds: 5 ms to 300 s (a long agent turn streams for minutes).
pub const LATENCY_BUCKETS: &[f64] = &[
    0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0,
];

/// Histogram of tool execution time: the end of the response that asked for a tool call to
/// the arrival of the request carrying its result (the tool's run, and any time a person took
/// to approve it). Labels: `provider`, `tool`; buckets [`TOOL_BUCKETS`]. Unit: seconds.
pub const TOOL_DURATION_SECONDS: &str = "llmtap_tool_duration_seconds";
/// Counter of tool results that say the tool failed (Anthropic `is_error`, Converse
/// `status: "error"`, a Gemini `functionResponse` with an `error`). Labels: `provider`,
/// `tool`. Unit: tool calls.
pub const TOOL_ERRORS_TOTAL: &str = "llmtap_tool_errors_total";
/// Counter of tool calls dropped while waiting for their result, by `reason`: `evicted` (the
/// pending set, 16 Ki calls, was full) or `expired` (no result within an hour). Both values
/// exist from startup. Unit: tool calls.
pub const TOOL_CALLS_UNMATCHED_TOTAL: &str = "llmtap_tool_calls_unmatched_total";
/// Histogram of context-window fill: a call's input tokens over its model's context window
/// (the price data's `max_input_tokens`). Labels: `provider`, `model`; buckets
/// [`RATIO_BUCKETS`]. Unit: ratio (0–1).
pub const CONTEXT_UTILIZATION_RATIO: &str = "llmtap_context_utilization_ratio";
/// Counter of compactions: a call the agent marks as compacting its conversation, or whose
/// input is under half its thread's previous call's. Labels: `provider`, `model`, `agent`.
/// Unit: calls.
pub const COMPACTIONS_TOTAL: &str = "llmtap_compactions_total";
/// Counter of prompt-cache breaks: within a thread, a call that read back less than the
/// prefix the previous call left cached while that cache was alive (ARCHITECTURE.md, "Agent
/// loop"). Labels: `provider`, `model`, `agent`. Unit: calls.
pub const CACHE_BREAKS_TOTAL: &str = "llmtap_cache_breaks_total";
/// Counter (floating point) of what cache breaks cost: the broken prefix billed as a cache
/// write instead of a cache read. Labels: `provider`, `model`, `agent`. Unit: USD.
pub const CACHE_BREAK_COST_USD_TOTAL: &str = "llmtap_cache_break_cost_usd_total";
/// Counter of retries: a call that resends a request that failed in the last 10 minutes
/// (same client, thread, conversation length and tool results). Labels: `provider`,
/// `model`, `reason` ([`crate::vocab::RetryReason`]). Unit: calls.
pub const RETRIES_TOTAL: &str = "llmtap_retries_total";
/// Gauge of plan-window utilization, the last value a response reported (Anthropic
/// `anthropic-ratelimit-unified-{window}-utilization`, Codex `x-codex-*-used-percent` / 100).
/// Labels: `provider`, `team`, `user`, `window`. Unit: ratio (0–1).
pub const RATELIMIT_UTILIZATION_RATIO: &str = "llmtap_ratelimit_utilization_ratio";
/// Gauge of an API rate limit's remaining amount, the last value a response reported
/// (`anthropic-ratelimit-*-remaining`, `x-ratelimit-remaining-*`). Labels: `provider`,
/// `team`, `user`, `resource`. Unit: requests or tokens.
pub const RATELIMIT_REMAINING: &str = "llmtap_ratelimit_remaining";
/// Gauge of when a plan window resets, the last value a response reported (API resources'
/// resets are on spans and call lines). Labels: `provider`, `team`, `user`, `window`. Unit:
/// seconds since the Unix epoch.
pub const RATELIMIT_RESET_TIMESTAMP_SECONDS: &str = "llmtap_ratelimit_reset_timestamp_seconds";

/// Bucket bounds of [`TOOL_DURATION_SECONDS`], in seconds: 10 ms to an hour (a tool may wait
/// on a person's approval).
pub const TOOL_BUCKETS: &[f64] = &[
    0.01, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0,
    3600.0,
];

/// Bucket bounds of [`CONTEXT_UTILIZATION_RATIO`].
pub const RATIO_BUCKETS: &[f64] = &[0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95, 1.0];

/// Counter of calls not written to the history (`--db`): its queue (4096 calls) was full,
/// or the batch holding them failed to write (`src/telemetry/history.rs`). Traffic is never
/// affected; the call line, metrics and span still happened. No labels. Unit: calls.
pub const HISTORY_DROPPED_TOTAL: &str = "llmtap_history_dropped_total";

/// Counter of spans not exported: the export queue was full when the span ended, or the
/// batch holding it failed to export (`src/telemetry/export.rs`). Traffic is never
/// affected. No labels. Unit: spans.
pub const SPANS_DROPPED_TOTAL: &str = "llmtap_spans_dropped_total";
/// Counter of OTLP export requests that failed, by `signal`: `traces` (one request per
/// batch; its spans also count in [`SPANS_DROPPED_TOTAL`]) or `metrics` (one per export
/// interval; under cumulative temporality the next export carries what it held, under delta
/// its interval is lost). Both values exist from startup. Unit: requests.
pub const OTLP_EXPORT_FAILURES_TOTAL: &str = "llmtap_otlp_export_failures_total";

/// Span attribute keys (ARCHITECTURE.md, "Names"): the GenAI semantic conventions, then llmtap's own.
pub mod attr {
    /// `gen_ai.operation.name` (GenAI semantic conventions): the operation
    /// ([`crate::dialects::Operation`], e.g. `chat`, `generate_content`). Always set.
    pub const OPERATION_NAME: &str = "gen_ai.operation.name";
    /// `gen_ai.provider.name` (GenAI semantic conventions): the provider table's entry for
    /// the host ([`crate::providers::Provider`]). Always set.
    pub const PROVIDER_NAME: &str = "gen_ai.provider.name";
    /// `gen_ai.request.model` (GenAI semantic conventions): the model the request body asked
    /// for. Absent when the request was not parsed or named none.
    pub const REQUEST_MODEL: &str = "gen_ai.request.model";
    /// `gen_ai.response.model` (GenAI semantic conventions): the model the response names.
    pub const RESPONSE_MODEL: &str = "gen_ai.response.model";
    /// `gen_ai.response.id` (GenAI semantic conventions): the response's id (`msg_…`,
    /// `chatcmpl-…`, `resp_…`).
    pub const RESPONSE_ID: &str = "gen_ai.response.id";
    /// `gen_ai.response.finish_reasons` (GenAI semantic conventions, string[]): each finish or
    /// stop reason the response gave, as the API spells it. Absent when none.
    pub const RESPONSE_FINISH_REASONS: &str = "gen_ai.response.finish_reasons";
    /// `gen_ai.request.max_tokens` (GenAI semantic conventions, int): the output token limit the
    /// request set.
    pub const REQUEST_MAX_TOKENS: &str = "gen_ai.request.max_tokens";
    /// `gen_ai.request.temperature` (GenAI semantic conventions, double): the sampling
    /// temperature the request set.
    pub const REQUEST_TEMPERATURE: &str = "gen_ai.request.temperature";
    /// `gen_ai.usage.input_tokens` (GenAI semantic conventions, int): all prompt tokens, cached
    /// ones included (ARCHITECTURE.md, "Usage"). Absent when the response carried no count.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.usage.input_tokens";
    /// `gen_ai.usage.output_tokens` (GenAI semantic conventions, int): all generated tokens,
    /// reasoning included. Absent when the response carried no count.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.usage.output_tokens";
    /// `gen_ai.usage.cache_read.input_tokens` (GenAI semantic conventions, int): input tokens
    /// served from the provider's prompt cache, a part of `gen_ai.usage.input_tokens`.
    pub const USAGE_CACHE_READ: &str = "gen_ai.usage.cache_read.input_tokens";
    /// `gen_ai.usage.cache_creation.input_tokens` (GenAI semantic conventions, int): input
    /// tokens written to the provider's prompt cache, 5-minute and 1-hour writes together
    /// (split in [`CACHE_WRITE_5M`] and [`CACHE_WRITE_1H`]); a part of
    /// `gen_ai.usage.input_tokens`.
    pub const USAGE_CACHE_CREATION: &str = "gen_ai.usage.cache_creation.input_tokens";
    /// `gen_ai.usage.reasoning.output_tokens` (GenAI semantic conventions, int): output tokens
    /// spent on reasoning or thinking, a part of `gen_ai.usage.output_tokens`.
    pub const USAGE_REASONING: &str = "gen_ai.usage.reasoning.output_tokens";
    /// `gen_ai.conversation.id` (GenAI semantic conventions): the agent session, from a header
    /// (`X-Claude-Code-Session-Id`, Codex's `session-id`) else the request body (Claude Code's
    /// `metadata.user_id`). Also what the session trace id is derived from.
    pub const CONVERSATION_ID: &str = "gen_ai.conversation.id";
    /// `gen_ai.system_instructions` (GenAI semantic conventions, JSON string): the system
    /// prompt as `[{"type":"text","content":…}]`. Only with `--capture-content`, capped at
    /// `--capture-max-bytes`.
    pub const SYSTEM_INSTRUCTIONS: &str = "gen_ai.system_instructions";
    /// `gen_ai.input.messages` (GenAI semantic conventions, JSON string): the conversation
    /// sent, as `[{"role":…,"parts":[…]}]`, the most recent messages that fit. Only with
    /// `--capture-content`, capped at `--capture-max-bytes`.
    pub const INPUT_MESSAGES: &str = "gen_ai.input.messages";
    /// `gen_ai.output.messages` (GenAI semantic conventions, JSON string): what the model
    /// answered, in the same shape as the input messages. Only with `--capture-content`, capped
    /// at `--capture-max-bytes`.
    pub const OUTPUT_MESSAGES: &str = "gen_ai.output.messages";
    /// `gen_ai.tool.definitions` (GenAI semantic conventions, JSON string): the tools offered,
    /// as `[{"type":"function","name":…,"parameters":…}]`. Only with `--capture-content`,
    /// capped at `--capture-max-bytes`.
    pub const TOOL_DEFINITIONS: &str = "gen_ai.tool.definitions";
    /// `server.address` (OpenTelemetry general conventions): the upstream host the call went
    /// to (`api.anthropic.com`).
    pub const SERVER_ADDRESS: &str = "server.address";
    /// `server.port` (OpenTelemetry general conventions, int): the upstream port.
    pub const SERVER_PORT: &str = "server.port";
    /// `http.request.method` (OpenTelemetry HTTP conventions): the request method (`POST`, or
    /// `GET` for a WebSocket upgrade).
    pub const HTTP_METHOD: &str = "http.request.method";
    /// `http.response.status_code` (OpenTelemetry HTTP conventions, int): the upstream's
    /// status (`101` for every call on a WebSocket). Absent when no response head arrived.
    pub const HTTP_STATUS: &str = "http.response.status_code";
    /// `error.type` (OpenTelemetry general conventions): why the call failed
    /// ([`crate::vocab::ErrorType`]); also sets the span status to error. Absent on success.
    pub const ERROR_TYPE: &str = "error.type";

    /// `gen_ai.agent.name` (GenAI semantic conventions): the agent that made the call, `main`
    /// or the subagent's name (ARCHITECTURE.md, "Agent loop"). Also on `execute_tool` spans.
    pub const AGENT_NAME: &str = "gen_ai.agent.name";
    /// `gen_ai.conversation.compacted` (GenAI semantic conventions, bool, only `true`): the
    /// call compacts its conversation.
    pub const CONVERSATION_COMPACTED: &str = "gen_ai.conversation.compacted";
    /// `gen_ai.tool.name` (GenAI semantic conventions): the tool an `execute_tool` span ran.
    pub const TOOL_NAME: &str = "gen_ai.tool.name";
    /// `gen_ai.tool.call.id` (GenAI semantic conventions): the id the tool call and its
    /// result share (`toolu_…`, `call_…`).
    pub const TOOL_CALL_ID: &str = "gen_ai.tool.call.id";
    /// `gen_ai.tool.type` (GenAI semantic conventions): `function` (a tool the client runs).
    pub const TOOL_TYPE: &str = "gen_ai.tool.type";
    /// `http.request.resend_count` (OpenTelemetry HTTP conventions, int): earlier failed
    /// attempts of this same request. Absent on a first attempt.
    pub const HTTP_RESEND_COUNT: &str = "http.request.resend_count";
    /// `llmtap.thread.id`: the conversation the call continues, 16 hex digits of the hash of
    /// its system prompt and first user turn.
    pub const THREAD_ID: &str = "llmtap.thread.id";
    /// `llmtap.context.window_tokens` (int): the model's context window.
    pub const CONTEXT_WINDOW_TOKENS: &str = "llmtap.context.window_tokens";
    /// `llmtap.context.utilization` (double): input tokens over the context window.
    pub const CONTEXT_UTILIZATION: &str = "llmtap.context.utilization";
    /// `llmtap.cache.break` (bool, only `true`): the call broke its thread's prompt cache.
    pub const CACHE_BREAK: &str = "llmtap.cache.break";
    /// `llmtap.cache.break_tokens` (int): the cached prefix written again.
    pub const CACHE_BREAK_TOKENS: &str = "llmtap.cache.break_tokens";
    /// `llmtap.cache.break_cost_usd` (double): what writing it again cost over reading it.
    pub const CACHE_BREAK_COST_USD: &str = "llmtap.cache.break_cost_usd";
    /// `llmtap.retry.reason`: why the previous attempt failed ([`crate::vocab::RetryReason`]).
    pub const RETRY_REASON: &str = "llmtap.retry.reason";
    /// `llmtap.ratelimit.status`: Anthropic's `anthropic-ratelimit-unified-status`.
    pub const RATELIMIT_STATUS: &str = "llmtap.ratelimit.status";
    /// `llmtap.ratelimit.<window>.utilization` (double, 0–1) and `.reset` (int, Unix
    /// seconds) for each plan window; `llmtap.ratelimit.<resource>.limit`, `.remaining`,
    /// `.reset` for each API resource. This is the prefix.
    pub const RATELIMIT_PREFIX: &str = "llmtap.ratelimit.";

    /// `llmtap.stream` (bool): the response was an event stream (SSE, or messages on a
    /// WebSocket).
    pub const STREAM: &str = "llmtap.stream";
    /// `llmtap.ttft_ms` (double): time to first token in milliseconds, `t0` to the first
    /// generated-content delta. Streamed calls only.
    pub const TTFT_MS: &str = "llmtap.ttft_ms";
    /// `llmtap.usage.cache_creation.5m_input_tokens` (int): cache writes with a 5-minute TTL
    /// (Anthropic `cache_creation.ephemeral_5m_input_tokens`, plus an unsplit remainder unless
    /// the request asked for 1h).
    pub const CACHE_WRITE_5M: &str = "llmtap.usage.cache_creation.5m_input_tokens";
    /// `llmtap.usage.cache_creation.1h_input_tokens` (int): cache writes with a 1-hour TTL
    /// (Anthropic `cache_creation.ephemeral_1h_input_tokens`).
    pub const CACHE_WRITE_1H: &str = "llmtap.usage.cache_creation.1h_input_tokens";
    /// `llmtap.cost_usd` (double): what the call cost in USD: what the provider billed when
    /// it says (`llmtap.cost_source = provider`), else at the price table's rates. Absent
    /// when the model has no price or the call no usage.
    pub const COST_USD: &str = "llmtap.cost_usd";
    /// `llmtap.cost_source`: where `llmtap.cost_usd` came from
    /// ([`crate::vocab::CostSource`]: `table` or `provider`); set with it.
    pub const COST_SOURCE: &str = "llmtap.cost_source";
    /// `llmtap.cost.table_usd` (double): the price table's cost of a call whose
    /// `llmtap.cost_usd` is the provider's own (`llmtap.cost_source = provider`).
    pub const COST_TABLE_USD: &str = "llmtap.cost.table_usd";
    /// `llmtap.billing`: how the call is paid for ([`crate::caller::Billing`]: `api` or
    /// `subscription`).
    pub const BILLING: &str = "llmtap.billing";
    /// `llmtap.tools.offered` (int): how many tools the request offered the model (0 when
    /// none; absent when the request was not parsed).
    pub const TOOLS_OFFERED: &str = "llmtap.tools.offered";
    /// `llmtap.tools.offered_names` (string[]): the offered tools' names, in request order.
    /// Absent when none.
    pub const TOOLS_OFFERED_NAMES: &str = "llmtap.tools.offered_names";
    /// `llmtap.tools.called` (string[]): the names of the tools the model called, in order.
    /// Absent when none.
    pub const TOOLS_CALLED: &str = "llmtap.tools.called";
    /// `llmtap.request.system_chars` (int): characters of the system prompt, all text blocks
    /// together (a size, never the text).
    pub const SYSTEM_CHARS: &str = "llmtap.request.system_chars";
    /// `llmtap.request.messages` (int): entries in the conversation the request sent.
    pub const MESSAGES: &str = "llmtap.request.messages";
    /// `llmtap.api`: the wire format the call used, apart from who served it
    /// ([`crate::dialects::Dialect::name`]: `anthropic_messages`, `openai_chat_completions`,
    /// `openai_responses`, `gemini_generate_content`, `gemini_code_assist`,
    /// `bedrock_converse`, `bedrock_invoke`). Always set.
    pub const API: &str = "llmtap.api";
    /// `openai.api.type` (GenAI conventions, OpenAI): `chat_completions` or `responses`,
    /// for calls in the OpenAI formats on any provider.
    pub const OPENAI_API_TYPE: &str = "openai.api.type";
    /// `llmtap.client`: the agent or SDK that made the call ([`crate::caller::Client`]).
    pub const CLIENT: &str = "llmtap.client";
    /// `session.id` (OpenTelemetry general registry, "Session"): the agent session, the same
    /// value as `gen_ai.conversation.id`; what Arize Phoenix and Langfuse group sessions by.
    /// Absent when the call names no session. Also on `execute_tool` spans.
    pub const SESSION_ID: &str = "session.id";
    /// `user.id` (OpenTelemetry general registry, "User"): the user the call is attributed to,
    /// the same value as `llmtap.user`; what Phoenix and Langfuse filter users by. Absent when
    /// none.
    pub const USER_ID: &str = "user.id";
    /// `llmtap.team`: the team the call is attributed to. Absent when none.
    pub const TEAM: &str = "llmtap.team";
    /// `llmtap.user`: the user the call is attributed to. Absent when none.
    pub const USER: &str = "llmtap.user";
    /// `llmtap.outcome`: how the call ended ([`crate::vocab::Outcome`]).
    pub const OUTCOME: &str = "llmtap.outcome";
    /// `llmtap.usage_missing` (bool): a successful call whose response carried no usage.
    pub const USAGE_MISSING: &str = "llmtap.usage_missing";
    /// `llmtap.parse_error`: what could not be parsed
    /// ([`crate::dialects::ParseError::as_str`]). Absent when everything parsed.
    pub const PARSE_ERROR: &str = "llmtap.parse_error";
    /// `llmtap.content.truncated` (string[]): the keys of the content attributes
    /// (`gen_ai.input.messages`, …) cut to fit `--capture-max-bytes`. Absent when none was.
    pub const CONTENT_TRUNCATED: &str = "llmtap.content.truncated";

    /// Name of the span event stamped at the time-to-first-token instant (`t0` + TTFT), with
    /// no attributes; streamed calls only. The GenAI conventions define no such event, so it
    /// is llmtap's own (`gen_ai.response.time_to_first_chunk` is the standard attribute).
    pub const FIRST_TOKEN_EVENT: &str = "llmtap.first_token";
    /// `gen_ai.request.top_p` (GenAI conventions, double): as the request set it.
    pub const REQUEST_TOP_P: &str = "gen_ai.request.top_p";
    /// `gen_ai.request.top_k` (GenAI conventions, int).
    pub const REQUEST_TOP_K: &str = "gen_ai.request.top_k";
    /// `gen_ai.request.stop_sequences` (GenAI conventions, string[]): at most 16 of 256 bytes.
    pub const REQUEST_STOP_SEQUENCES: &str = "gen_ai.request.stop_sequences";
    /// `gen_ai.request.seed` (GenAI conventions, int).
    pub const REQUEST_SEED: &str = "gen_ai.request.seed";
    /// `gen_ai.request.frequency_penalty` (GenAI conventions, double).
    pub const REQUEST_FREQUENCY_PENALTY: &str = "gen_ai.request.frequency_penalty";
    /// `gen_ai.request.presence_penalty` (GenAI conventions, double).
    pub const REQUEST_PRESENCE_PENALTY: &str = "gen_ai.request.presence_penalty";
    /// `gen_ai.request.choice.count` (GenAI conventions, int): Chat's `n`, Gemini's
    /// `candidateCount`.
    pub const REQUEST_CHOICE_COUNT: &str = "gen_ai.request.choice.count";
    /// `gen_ai.output.type` (GenAI conventions): `text` or `json`, from the format asked for.
    pub const OUTPUT_TYPE: &str = "gen_ai.output.type";
    /// `gen_ai.request.reasoning.level` (GenAI conventions, main branch): the value the client
    /// sent (`reasoning.effort`, `reasoning_effort`, Anthropic's `output_config.effort` else
    /// `thinking.type`, Gemini's `thinkingLevel`).
    pub const REQUEST_REASONING_LEVEL: &str = "gen_ai.request.reasoning.level";
    /// `gen_ai.request.previous_response.id` (GenAI conventions, main branch): Responses'
    /// `previous_response_id`.
    pub const REQUEST_PREVIOUS_RESPONSE_ID: &str = "gen_ai.request.previous_response.id";
    /// `openai.request.service_tier` (OpenAI conventions): the tier the request asked for.
    pub const OPENAI_REQUEST_SERVICE_TIER: &str = "openai.request.service_tier";
    /// `openai.response.system_fingerprint` (OpenAI conventions): Chat's `system_fingerprint`.
    pub const OPENAI_RESPONSE_SYSTEM_FINGERPRINT: &str = "openai.response.system_fingerprint";
    /// `openai.response.service_tier` (OpenAI conventions): the tier the response reports.
    pub const OPENAI_RESPONSE_SERVICE_TIER: &str = "openai.response.service_tier";
    /// `gen_ai.request.stream` (GenAI conventions v1.41, bool): the request asked for a
    /// streamed response. Set when the request body was read.
    pub const REQUEST_STREAM: &str = "gen_ai.request.stream";
    /// `gen_ai.response.time_to_first_chunk` (GenAI conventions v1.41, double, seconds): `t0`
    /// to the first generated-content delta, as `llmtap.ttft_ms`. Streamed calls only.
    pub const TIME_TO_FIRST_CHUNK: &str = "gen_ai.response.time_to_first_chunk";
    /// `gen_ai.usage.cache_write.input_tokens` (int): the GenAI conventions' main-branch name
    /// for [`USAGE_CACHE_CREATION`], emitted beside it, with the same value, while the rename
    /// is not in a release.
    pub const USAGE_CACHE_WRITE: &str = "gen_ai.usage.cache_write.input_tokens";
    /// `gen_ai.usage.cost` (double, USD): the call's cost, as `llmtap.cost_usd`. Not in the
    /// GenAI conventions; the name agentgateway and Langfuse read.
    pub const USAGE_COST: &str = "gen_ai.usage.cost";
}

/// The OTel metrics llmtap exports over OTLP when configured
/// ([`crate::config::otlp::metrics_from_env`]), named by the GenAI conventions ("Semantic
/// conventions for generative AI metrics"), and the attributes only they carry. Their other
/// attributes are the span attributes of [`attr`] (`gen_ai.operation.name`,
/// `gen_ai.provider.name`, `gen_ai.request.model`, `gen_ai.response.model`, `server.address`,
/// `server.port`, `error.type`), with model, team, user, error type, server address and port
/// capped by `--label-cap` as the Prometheus labels are.
pub mod otel {
    /// `gen_ai.client.token.usage` (v1.41, histogram, `{token}`): tokens of one call, by
    /// `gen_ai.token.type` (`input`: every prompt token, cached included; `output`: reasoning
    /// included). Only counts the response carried. Buckets [`TOKEN_BUCKETS`].
    pub const TOKEN_USAGE: &str = "gen_ai.client.token.usage";
    /// `gen_ai.client.operation.duration` (v1.41, histogram, `s`): `t0` to the end of the
    /// response or the failure; `error.type` on failed calls. Buckets [`DURATION_BUCKETS`].
    pub const OPERATION_DURATION: &str = "gen_ai.client.operation.duration";
    /// `gen_ai.client.operation.time_to_first_chunk` (v1.41, histogram, `s`): `t0` to the
    /// first generated-content delta; streamed calls only. Buckets [`DURATION_BUCKETS`].
    pub const OPERATION_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.operation.time_to_first_chunk";
    /// `gen_ai.client.operation.time_per_output_chunk` (v1.41, histogram, `s`): for each
    /// network read carrying generated content after the first, the time since the previous
    /// one; streamed calls only. Buckets [`DURATION_BUCKETS`].
    pub const OPERATION_TIME_PER_OUTPUT_CHUNK: &str =
        "gen_ai.client.operation.time_per_output_chunk";

    /// `gen_ai.client.inference.duration` (latest, histogram, `s`): as
    /// [`OPERATION_DURATION`], its new name for inference calls.
    pub const INFERENCE_DURATION: &str = "gen_ai.client.inference.duration";
    /// `gen_ai.client.inference.time_to_first_chunk` (latest, histogram, `s`).
    pub const INFERENCE_TIME_TO_FIRST_CHUNK: &str = "gen_ai.client.inference.time_to_first_chunk";
    /// `gen_ai.client.inference.time_per_output_chunk` (latest, histogram, `s`).
    pub const INFERENCE_TIME_PER_OUTPUT_CHUNK: &str =
        "gen_ai.client.inference.time_per_output_chunk";
    /// `gen_ai.client.inference.usage.input_tokens` (latest, counter, `{token}`): prompt
    /// tokens, cached included; `0` with modality `unknown` for a call without usage.
    pub const USAGE_INPUT_TOKENS: &str = "gen_ai.client.inference.usage.input_tokens";
    /// `gen_ai.client.inference.usage.output_tokens` (latest, counter, `{token}`): reasoning
    /// included; `0` with modality `unknown` for a call without usage.
    pub const USAGE_OUTPUT_TOKENS: &str = "gen_ai.client.inference.usage.output_tokens";
    /// `gen_ai.client.inference.usage.cache_read.input_tokens` (latest, counter, `{token}`).
    pub const USAGE_CACHE_READ: &str = "gen_ai.client.inference.usage.cache_read.input_tokens";
    /// `gen_ai.client.inference.usage.cache_write.input_tokens` (latest, counter, `{token}`).
    pub const USAGE_CACHE_WRITE: &str = "gen_ai.client.inference.usage.cache_write.input_tokens";
    /// `gen_ai.client.inference.usage.reasoning.output_tokens` (latest, counter, `{token}`).
    pub const USAGE_REASONING: &str = "gen_ai.client.inference.usage.reasoning.output_tokens";
    /// `gen_ai.client.inference.operation.input_tokens` (latest, histogram, `{token}`).
    pub const OPERATION_INPUT_TOKENS: &str = "gen_ai.client.inference.operation.input_tokens";
    /// `gen_ai.client.inference.operation.output_tokens` (latest, histogram, `{token}`).
    pub const OPERATION_OUTPUT_TOKENS: &str = "gen_ai.client.inference.operation.output_tokens";

    /// `llmtap.cost` (counter, `USD`): what calls cost, as `llmtap_cost_usd_total`; only priced
    /// calls add to it. Attributes: `gen_ai.provider.name`, `gen_ai.request.model`,
    /// `gen_ai.response.model`, `llmtap.team`, `llmtap.user`, `llmtap.client`, `llmtap.billing`.
    pub const COST: &str = "llmtap.cost";

    /// `gen_ai.token.type` (v1.41): `input` or `output`, on [`TOKEN_USAGE`].
    pub const TOKEN_TYPE: &str = "gen_ai.token.type";
    /// `gen_ai.token.modality` (latest): always `unknown` (no provider llmtap reads breaks
    /// usage down by modality for every call), on the usage counters.
    pub const TOKEN_MODALITY: &str = "gen_ai.token.modality";

    /// Bucket bounds of the duration and chunk-time histograms, in seconds: the conventions'
    /// explicit bucket boundaries.
    pub const DURATION_BUCKETS: &[f64] = &[
        0.01, 0.02, 0.04, 0.08, 0.16, 0.32, 0.64, 1.28, 2.56, 5.12, 10.24, 20.48, 40.96, 81.92,
    ];
    /// Bucket bounds of the token histograms: the conventions' explicit bucket boundaries.
    pub const TOKEN_BUCKETS: &[f64] = &[
        1.0, 4.0, 16.0, 64.0, 256.0, 1024.0, 4096.0, 16384.0, 65536.0, 262144.0, 1048576.0,
        4194304.0, 16777216.0, 67108864.0,
    ];
}
