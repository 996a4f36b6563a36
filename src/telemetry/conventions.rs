//! The table of every name llmtap exports over OTLP: span attributes, the span event, resource
//! attributes, metrics and their attributes, each with its source (a GenAI conventions version,
//! another OpenTelemetry convention, a backend's de-facto name, or `llmtap.*`), type and unit.
//!
//! The README's "Conventions" section is generated from it ([`markdown`]; a unit test keeps the
//! two equal), and the integration tests compare it with what a real OTLP receiver decodes:
//! every key a span or metric carries must be here with this type, so a rename cannot drift
//! silently. Entries name the constants of [`super::names`], never a second spelling.

use super::names::{attr, otel};
use super::spans::PROJECT_NAME;

/// Where a name comes from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// The GenAI conventions v1.41.0 (the last release in `open-telemetry/semantic-conventions`).
    GenAi141,
    /// The GenAI conventions' main branch (`open-telemetry/semantic-conventions-genai`), not in
    /// a release yet.
    GenAiMain,
    /// The OpenAI-specific part of the GenAI conventions.
    OpenAi,
    /// The general OpenTelemetry conventions (server, HTTP, error, session, user, service).
    Otel,
    /// Not a convention: the name a backend reads (said which in the brief).
    DeFacto,
    /// llmtap's own (`llmtap.*`): no standard equivalent.
    Llmtap,
}

impl Source {
    /// As the README's table says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Source::GenAi141 => "GenAI v1.41",
            Source::GenAiMain => "GenAI main",
            Source::OpenAi => "GenAI OpenAI",
            Source::Otel => "OTel general",
            Source::DeFacto => "de facto",
            Source::Llmtap => "llmtap",
        }
    }
}

/// What carries the name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Carrier {
    /// An attribute of the call's span (`chat claude-…`, `generate_content …`).
    Span,
    /// An attribute of an `execute_tool` span.
    ToolSpan,
    /// An attribute of both kinds of span.
    BothSpans,
    /// An attribute of the spans (the call's, and the tool's where it applies) and of the OTel
    /// metrics.
    WithMetrics,
    /// A span event.
    Event,
    /// A resource attribute (every span and metric).
    Resource,
    /// A metric (its name), in the default conventions (v1.41).
    Metric,
    /// A metric under `OTEL_SEMCONV_STABILITY_OPT_IN=gen_ai_latest_experimental`.
    LatestMetric,
    /// An attribute only metrics carry.
    MetricAttribute,
}

impl Carrier {
    /// As the README's table says it.
    pub fn as_str(self) -> &'static str {
        match self {
            Carrier::Span => "call span",
            Carrier::ToolSpan => "tool span",
            Carrier::BothSpans => "call and tool spans",
            Carrier::WithMetrics => "spans and metrics",
            Carrier::Event => "span event",
            Carrier::Resource => "resource",
            Carrier::Metric => "metric",
            Carrier::LatestMetric => "metric (latest)",
            Carrier::MetricAttribute => "metric attribute",
        }
    }
}

/// One exported name. `name` may hold `<window>` or `<resource>`, a placeholder for a value
/// from traffic (a plan window such as `5h`, an API resource such as `tokens`).
#[derive(Debug, Clone, Copy)]
pub struct Convention {
    /// The exact key or metric name.
    pub name: &'static str,
    /// Where the name comes from.
    pub source: Source,
    /// What carries it.
    pub carrier: Carrier,
    /// The OTLP value type (`string`, `int`, `double`, `bool`, `string[]`) or instrument
    /// (`histogram`, `counter`); `-` for an event.
    pub kind: &'static str,
    /// The type under the latest conventions, where it differs.
    pub latest_kind: Option<&'static str>,
    /// The unit (UCUM, as the conventions write it), `-` when none.
    pub unit: &'static str,
    /// What it holds.
    pub brief: &'static str,
}

const fn c(
    name: &'static str,
    source: Source,
    carrier: Carrier,
    kind: &'static str,
    unit: &'static str,
    brief: &'static str,
) -> Convention {
    Convention {
        name,
        source,
        carrier,
        kind,
        latest_kind: None,
        unit,
        brief,
    }
}

/// A name whose type the latest conventions changed.
const fn changed(
    name: &'static str,
    carrier: Carrier,
    kind: &'static str,
    latest_kind: &'static str,
    brief: &'static str,
) -> Convention {
    Convention {
        name,
        source: Source::GenAi141,
        carrier,
        kind,
        latest_kind: Some(latest_kind),
        unit: "-",
        brief,
    }
}

use Carrier::{
    BothSpans, Event, LatestMetric, Metric, MetricAttribute, Resource as Res, Span, ToolSpan,
    WithMetrics,
};
use Source::{DeFacto, GenAi141, GenAiMain, Llmtap, OpenAi, Otel};

/// Every name llmtap exports over OTLP.
#[rustfmt::skip]
pub const TABLE: &[Convention] = &[
    c(attr::OPERATION_NAME, GenAi141, WithMetrics, "string", "-", "chat, generate_content, execute_tool, …"),
    c(attr::PROVIDER_NAME, GenAi141, WithMetrics, "string", "-", "anthropic, openai, gcp.gemini, gcp.gen_ai (Code Assist), gcp.vertex_ai, aws.bedrock, …"),
    c(attr::REQUEST_MODEL, GenAi141, WithMetrics, "string", "-", "the model the request asked for"),
    c(attr::RESPONSE_MODEL, GenAi141, WithMetrics, "string", "-", "the model the response names"),
    c(attr::RESPONSE_ID, GenAi141, Span, "string", "-", "the response's id"),
    c(attr::RESPONSE_FINISH_REASONS, GenAi141, Span, "string[]", "-", "one per choice, as the API says; `error` for a call that ended abnormally without one"),
    c(attr::REQUEST_MAX_TOKENS, GenAi141, Span, "int", "{token}", "the output limit the request set"),
    c(attr::REQUEST_TEMPERATURE, GenAi141, Span, "double", "-", "as the request set it"),
    c(attr::REQUEST_TOP_P, GenAi141, Span, "double", "-", "as the request set it"),
    changed(attr::REQUEST_TOP_K, Span, "double", "int", "as the request set it"),
    c(attr::REQUEST_STOP_SEQUENCES, GenAi141, Span, "string[]", "-", "at most 16, 256 bytes each"),
    c(attr::REQUEST_SEED, GenAi141, Span, "int", "-", "as the request set it"),
    c(attr::REQUEST_FREQUENCY_PENALTY, GenAi141, Span, "double", "-", "as the request set it"),
    c(attr::REQUEST_PRESENCE_PENALTY, GenAi141, Span, "double", "-", "as the request set it"),
    c(attr::REQUEST_CHOICE_COUNT, GenAi141, Span, "int", "-", "Chat's `n`, Gemini's `candidateCount`"),
    c(attr::OUTPUT_TYPE, GenAi141, Span, "string", "-", "`text` or `json`, from the format asked for"),
    c(attr::REQUEST_STREAM, GenAi141, Span, "bool", "-", "the request asked for a stream"),
    c(attr::REQUEST_REASONING_LEVEL, GenAiMain, Span, "string", "-", "the effort or thinking level exactly as sent"),
    c(attr::REQUEST_PREVIOUS_RESPONSE_ID, GenAiMain, Span, "string", "-", "Responses' `previous_response_id`"),
    c(attr::TIME_TO_FIRST_CHUNK, GenAi141, Span, "double", "s", "t0 to the first chunk carrying generated content (a text, thinking or tool-argument delta; not `message_start` or a ping); streamed calls"),
    c(attr::USAGE_INPUT_TOKENS, GenAi141, Span, "int", "{token}", "every prompt token, cached ones included"),
    c(attr::USAGE_OUTPUT_TOKENS, GenAi141, Span, "int", "{token}", "every generated token, reasoning included"),
    c(attr::USAGE_CACHE_READ, GenAi141, Span, "int", "{token}", "prompt tokens read from the cache"),
    c(attr::USAGE_CACHE_CREATION, GenAi141, Span, "int", "{token}", "prompt tokens written to the cache (v1.41 name; not under the latest conventions)"),
    c(attr::USAGE_CACHE_WRITE, GenAiMain, Span, "int", "{token}", "the same, under main's name"),
    c(attr::USAGE_REASONING, GenAi141, Span, "int", "{token}", "output tokens spent reasoning"),
    c(attr::CONVERSATION_ID, GenAi141, BothSpans, "string", "-", "the agent session"),
    c(attr::CONVERSATION_COMPACTED, GenAiMain, Span, "bool", "-", "`true` on a call that compacts its conversation"),
    c(attr::AGENT_NAME, GenAi141, BothSpans, "string", "-", "`main` or the subagent's name"),
    c(attr::TOOL_NAME, GenAi141, ToolSpan, "string", "-", "the tool run"),
    c(attr::TOOL_CALL_ID, GenAi141, ToolSpan, "string", "-", "the id the call and its result share"),
    c(attr::TOOL_TYPE, GenAi141, ToolSpan, "string", "-", "`function` (a tool the client runs)"),
    c(attr::SYSTEM_INSTRUCTIONS, GenAi141, Span, "string", "-", "JSON, text parts only; `--capture-content` only"),
    c(attr::INPUT_MESSAGES, GenAi141, Span, "string", "-", "JSON; `--capture-content` only"),
    c(attr::OUTPUT_MESSAGES, GenAi141, Span, "string", "-", "JSON (`finish_reason` inside under v1.41 only); `--capture-content` only"),
    c(attr::TOOL_DEFINITIONS, GenAi141, Span, "string", "-", "JSON; `--capture-content` only"),
    c(attr::OPENAI_API_TYPE, OpenAi, Span, "string", "-", "`chat_completions` or `responses`"),
    c(attr::OPENAI_REQUEST_SERVICE_TIER, OpenAi, Span, "string", "-", "the tier asked for"),
    c(attr::OPENAI_RESPONSE_SERVICE_TIER, OpenAi, Span, "string", "-", "the tier that served"),
    c(attr::OPENAI_RESPONSE_SYSTEM_FINGERPRINT, OpenAi, Span, "string", "-", "Chat's `system_fingerprint`"),
    c(attr::SERVER_ADDRESS, Otel, WithMetrics, "string", "-", "the upstream host"),
    c(attr::SERVER_PORT, Otel, WithMetrics, "int", "-", "the upstream port"),
    c(attr::HTTP_METHOD, Otel, Span, "string", "-", "POST, or GET for a WebSocket"),
    c(attr::HTTP_STATUS, Otel, Span, "int", "-", "the upstream's status"),
    c(attr::HTTP_RESEND_COUNT, Otel, Span, "int", "-", "earlier failed attempts of this request"),
    c(attr::ERROR_TYPE, Otel, WithMetrics, "string", "-", "why the call failed; `tool_error` on a tool span"),
    c(attr::SESSION_ID, Otel, BothSpans, "string", "-", "the session again, for Phoenix and Langfuse"),
    c(attr::USER_ID, Otel, BothSpans, "string", "-", "the attributed user again, for Phoenix and Langfuse"),
    c(attr::USAGE_COST, DeFacto, Span, "double", "USD", "the call's cost; what agentgateway and Langfuse read"),
    c(attr::API, Llmtap, Span, "string", "-", "the wire format (`anthropic_messages`, …)"),
    c(attr::CLIENT, Llmtap, WithMetrics, "string", "-", "the agent or SDK"),
    c(attr::STREAM, Llmtap, Span, "bool", "-", "the response was an event stream"),
    c(attr::OUTCOME, Llmtap, Span, "string", "-", "ok, error, cancelled"),
    c(attr::USAGE_MISSING, Llmtap, Span, "bool", "-", "a successful call without usage"),
    c(attr::TTFT_MS, Llmtap, Span, "double", "ms", "time to first token"),
    c(attr::CACHE_WRITE_5M, Llmtap, Span, "int", "{token}", "cache writes with a 5-minute TTL"),
    c(attr::CACHE_WRITE_1H, Llmtap, Span, "int", "{token}", "cache writes with a 1-hour TTL"),
    c(attr::COST_USD, Llmtap, Span, "double", "USD", "what the call cost"),
    c(attr::COST_SOURCE, Llmtap, Span, "string", "-", "`table` or `provider`"),
    c(attr::COST_TABLE_USD, Llmtap, Span, "double", "USD", "the price table's cost when the provider billed its own"),
    c(attr::BILLING, Llmtap, WithMetrics, "string", "-", "`api` or `subscription`"),
    c(attr::TEAM, Llmtap, WithMetrics, "string", "-", "the attributed team"),
    c(attr::USER, Llmtap, WithMetrics, "string", "-", "the attributed user"),
    c(attr::TOOLS_OFFERED, Llmtap, Span, "int", "-", "tools the request offered"),
    c(attr::TOOLS_OFFERED_NAMES, Llmtap, Span, "string[]", "-", "their names"),
    c(attr::TOOLS_CALLED, Llmtap, Span, "string[]", "-", "the tools the model called"),
    c(attr::SYSTEM_CHARS, Llmtap, Span, "int", "-", "characters of the system prompt"),
    c(attr::MESSAGES, Llmtap, Span, "int", "-", "entries in the conversation sent"),
    c(attr::PARSE_ERROR, Llmtap, Span, "string", "-", "what could not be parsed"),
    c(attr::CONTENT_TRUNCATED, Llmtap, Span, "string[]", "-", "content attributes cut to fit"),
    c(attr::THREAD_ID, Llmtap, BothSpans, "string", "-", "the conversation thread"),
    c(attr::CONTEXT_WINDOW_TOKENS, Llmtap, Span, "int", "{token}", "the model's context window"),
    c(attr::CONTEXT_UTILIZATION, Llmtap, Span, "double", "1", "input tokens over the window"),
    c(attr::CACHE_BREAK, Llmtap, Span, "bool", "-", "`true`: the call broke its thread's cache"),
    c(attr::CACHE_BREAK_TOKENS, Llmtap, Span, "int", "{token}", "the prefix written again"),
    c(attr::CACHE_BREAK_COST_USD, Llmtap, Span, "double", "USD", "what that cost over a read"),
    c(attr::RETRY_REASON, Llmtap, Span, "string", "-", "why the previous attempt failed"),
    c(attr::RATELIMIT_STATUS, Llmtap, Span, "string", "-", "Anthropic's unified status"),
    c("llmtap.ratelimit.<window>.utilization", Llmtap, Span, "double", "1", "a plan window's use"),
    c("llmtap.ratelimit.<window>.reset", Llmtap, Span, "int", "s", "when it resets (Unix seconds)"),
    c("llmtap.ratelimit.<resource>.limit", Llmtap, Span, "int", "-", "an API rate limit"),
    c("llmtap.ratelimit.<resource>.remaining", Llmtap, Span, "int", "-", "what is left of it"),
    c("llmtap.ratelimit.<resource>.reset", Llmtap, Span, "int", "s", "when it resets (Unix seconds)"),
    c(attr::FIRST_TOKEN_EVENT, Llmtap, Event, "-", "-", "at t0 + time to first token"),
    c("service.name", Otel, Res, "string", "-", "`OTEL_SERVICE_NAME`, default `llmtap`; `<name>-diagnostics` for `--otlp-diagnostics`"),
    c("service.version", Otel, Res, "string", "-", "llmtap's version"),
    c("telemetry.sdk.name", Otel, Res, "string", "-", "`opentelemetry`"),
    c("telemetry.sdk.language", Otel, Res, "string", "-", "`rust`"),
    c(PROJECT_NAME, DeFacto, Res, "string", "-", "the service name, unless set: the project Arize Phoenix files spans under"),
    c(otel::OPERATION_DURATION, GenAi141, Metric, "histogram", "s", "t0 to the end of the call; `error.type` on failures; under the latest conventions, token counting only"),
    c(otel::TOKEN_USAGE, GenAi141, Metric, "histogram", "{token}", "tokens per call by `gen_ai.token.type`"),
    c(otel::OPERATION_TIME_TO_FIRST_CHUNK, GenAi141, Metric, "histogram", "s", "as `gen_ai.response.time_to_first_chunk`; streamed calls"),
    c(otel::OPERATION_TIME_PER_OUTPUT_CHUNK, GenAi141, Metric, "histogram", "s", "per network read carrying generated content after the first (several events in one read are one chunk); streamed calls"),
    c(otel::COST, Llmtap, Metric, "counter", "USD", "cost by provider, model, team, user, client, billing (both conventions)"),
    c(otel::INFERENCE_DURATION, GenAiMain, LatestMetric, "histogram", "s", "the latest name of the duration"),
    c(otel::INFERENCE_TIME_TO_FIRST_CHUNK, GenAiMain, LatestMetric, "histogram", "s", "the latest name"),
    c(otel::INFERENCE_TIME_PER_OUTPUT_CHUNK, GenAiMain, LatestMetric, "histogram", "s", "the latest name"),
    c(otel::USAGE_INPUT_TOKENS, GenAiMain, LatestMetric, "counter", "{token}", "input tokens; every inference call adds, 0 without usage"),
    c(otel::USAGE_OUTPUT_TOKENS, GenAiMain, LatestMetric, "counter", "{token}", "output tokens; every inference call adds, 0 without usage"),
    c(otel::USAGE_CACHE_READ, GenAiMain, LatestMetric, "counter", "{token}", "cache reads"),
    c(otel::USAGE_CACHE_WRITE, GenAiMain, LatestMetric, "counter", "{token}", "cache writes"),
    c(otel::USAGE_REASONING, GenAiMain, LatestMetric, "counter", "{token}", "reasoning tokens"),
    c(otel::OPERATION_INPUT_TOKENS, GenAiMain, LatestMetric, "histogram", "{token}", "input tokens per call"),
    c(otel::OPERATION_OUTPUT_TOKENS, GenAiMain, LatestMetric, "histogram", "{token}", "output tokens per call"),
    c(otel::TOKEN_TYPE, GenAi141, MetricAttribute, "string", "-", "`input` or `output`"),
    c(otel::TOKEN_MODALITY, GenAiMain, MetricAttribute, "string", "-", "always `unknown`"),
];

/// The entry for an exported key or metric name (placeholders match one dot-free segment).
pub fn find(name: &str) -> Option<&'static Convention> {
    TABLE.iter().find(|c| matches(c.name, name))
}

fn matches(pattern: &str, name: &str) -> bool {
    let (p, n): (Vec<&str>, Vec<&str>) = (pattern.split('.').collect(), name.split('.').collect());
    p.len() == n.len()
        && p.iter()
            .zip(&n)
            .all(|(p, n)| *p == *n || (p.starts_with('<') && p.ends_with('>') && !n.is_empty()))
}

/// The table as Markdown, as the README's "Conventions" section holds it.
pub fn markdown() -> String {
    let mut out =
        String::from("| name | source | on | type | unit | what |\n|---|---|---|---|---|---|\n");
    for c in TABLE {
        out.push_str(&format!(
            "| `{}` | {} | {} | {} | {} | {} |\n",
            c.name,
            c.source.as_str(),
            c.carrier.as_str(),
            match c.latest_kind {
                Some(latest) => format!("{} ({latest} latest)", c.kind),
                None => c.kind.to_owned(),
            },
            c.unit,
            c.brief
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const BEGIN: &str = "<!-- conventions table: generated from src/telemetry/conventions.rs -->\n";
    const END: &str = "<!-- end of conventions table -->";

    #[test]
    #[expect(
        clippy::disallowed_methods,
        reason = "a test's opt-in to rewrite the README (LLMTAP_BLESS), not configuration"
    )]
    fn the_readme_holds_the_generated_table() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/README.md");
        let readme = std::fs::read_to_string(path).expect("README.md");
        let start = readme.find(BEGIN).expect("the table's start marker") + BEGIN.len();
        let end = readme[start..].find(END).expect("the table's end marker") + start;
        let table = markdown();
        if readme[start..end] != table {
            // `LLMTAP_BLESS=1 cargo test --lib conventions` writes it.
            if std::env::var_os("LLMTAP_BLESS").is_some() {
                let updated = format!("{}{table}{}", &readme[..start], &readme[end..]);
                std::fs::write(path, updated).expect("write README.md");
            } else {
                panic!(
                    "README.md's conventions table is stale; run LLMTAP_BLESS=1 cargo test --lib conventions"
                );
            }
        }
    }

    #[test]
    fn names_are_unique_and_placeholders_match_one_segment() {
        let mut seen = std::collections::HashSet::new();
        for c in TABLE {
            assert!(seen.insert(c.name), "{} twice", c.name);
        }
        assert!(find("llmtap.ratelimit.5h.utilization").is_some());
        assert!(find("llmtap.ratelimit.tokens.remaining").is_some());
        assert!(find("llmtap.ratelimit.5h.extra.utilization").is_none());
        assert_eq!(
            find("gen_ai.usage.cost").map(|c| c.source),
            Some(Source::DeFacto)
        );
        assert!(find("gen_ai.system").is_none());
    }
}
