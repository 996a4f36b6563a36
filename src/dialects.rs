//! Wire formats of the LLM APIs llmtap understands, as pure functions of bytes.
//!
//! Owns: recognising an LLM endpoint from host, method and path ([`detect`]); turning a
//! request body, a JSON response body or a stream of SSE events into normalized facts
//! ([`RequestFacts`], [`ResponseFacts`]). Adding an API is one file here, one line in
//! [`DIALECTS`] and one fixture folder.
//!
//! Does not own: clocks, I/O, decompression, telemetry. Nothing in this module knows when a
//! byte arrived; parsers report *that* something happened (a first delta) and the caller
//! stamps the time.
//!
//! What the dialects share: `lenient` reads request bodies without a JSON tree; `json` reads
//! response events and bodies into typed, lenient structs (a tree only for captured content),
//! and [`error_response`] is every dialect's answer to a non-2xx body; `content` holds the
//! GenAI parts that `--capture-content` exports and the one budget that caps a response's.

pub mod agent;
pub mod anthropic;
pub mod bedrock;
mod content;
pub mod elide;
pub mod eventstream;
pub mod gemini;
mod json;
pub mod json_array;
mod lenient;
pub mod openai_chat;
pub mod openai_responses;
pub mod params;
pub mod ratelimits;
pub mod sse;

use serde::Serialize;

/// What kind of call an endpoint is: `gen_ai.operation.name`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
pub enum Operation {
    /// `chat`: Messages, Chat Completions, Responses.
    Chat,
    /// `count_tokens`: Anthropic's token counting (free).
    CountTokens,
    /// `generate_content`: Gemini's generateContent / streamGenerateContent.
    GenerateContent,
}

crate::vocab::label!(Operation);

/// What a dialect sees of a request when deciding whether it is an LLM call: host and path
/// only, never headers or body (detection stays cheap and cannot leak).
#[derive(Debug, Clone, Copy)]
pub struct Target<'a> {
    /// The host the request names (lowercase, no brackets).
    pub host: &'a str,
    /// The request method (`POST`; `GET` for a WebSocket upgrade).
    pub method: &'a str,
    /// The path without the query string.
    pub path: &'a str,
    /// The query string, for routing only (`alt=sse`); it is never recorded.
    pub query: Option<&'a str>,
    /// A WebSocket upgrade request.
    pub websocket: bool,
}

/// How a recognised call's response is framed when it is not an event stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    /// One JSON document, parsed when complete.
    Json,
    /// A JSON array whose elements arrive progressively (Gemini without `alt=sse`).
    JsonArray,
}

/// Normalized token usage of one call (ARCHITECTURE.md, "Usage"). `None` means the wire did not say;
/// it is never silently turned into zero.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, serde::Deserialize)]
pub struct Usage {
    /// All prompt tokens, cached ones included (GenAI conventions).
    pub input: Option<u64>,
    /// All generated tokens, reasoning included.
    pub output: Option<u64>,
    /// Prompt tokens read from the provider's cache (part of `input`).
    pub cache_read: Option<u64>,
    /// Prompt tokens written to a 5-minute cache (part of `input`; Anthropic).
    pub cache_write_5m: Option<u64>,
    /// Prompt tokens written to a 1-hour cache (part of `input`; Anthropic).
    pub cache_write_1h: Option<u64>,
    /// Generated tokens spent reasoning (part of `output`).
    pub reasoning: Option<u64>,
}

impl Usage {
    /// How many tokens of `kind` the call used (`None`: the wire did not say).
    pub fn count(&self, kind: crate::vocab::TokenType) -> Option<u64> {
        use crate::vocab::TokenType;
        match kind {
            TokenType::Input => self.input,
            TokenType::Output => self.output,
            TokenType::CacheRead => self.cache_read,
            TokenType::CacheWrite5m => self.cache_write_5m,
            TokenType::CacheWrite1h => self.cache_write_1h,
            TokenType::Reasoning => self.reasoning,
        }
    }

    /// True when the response carried no usage at all.
    pub fn is_empty(&self) -> bool {
        *self == Usage::default()
    }
}

/// What the request body says. Never holds prompt text: only sizes, counts and names.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct RequestFacts {
    /// The `model` the request names (Gemini: from the path).
    pub model: Option<String>,
    /// The request asked for a streamed response (`stream: true`, Gemini's `:streamGenerateContent`).
    pub stream: bool,
    /// The output token limit asked for (`max_tokens`, `max_completion_tokens`, `max_output_tokens`, `maxOutputTokens`).
    pub max_tokens: Option<u64>,
    /// The sampling temperature asked for.
    pub temperature: Option<f64>,
    /// Names of the tools offered to the model, in request order.
    pub tools_offered: Vec<String>,
    /// Characters of the system prompt (all text blocks together).
    pub system_chars: u64,
    /// Number of entries in the conversation sent.
    pub messages: u64,
    /// The agent session named in the body (Claude Code: `metadata.user_id`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub conversation_id: Option<String>,
    /// The TTL (`"5m"`, `"1h"`) of the request's last prompt-cache breakpoint (Anthropic
    /// `cache_control`, default 5m): where cache writes the response does not split go.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_ttl: Option<String>,
    /// The generation parameters it set (`gen_ai.request.top_p`, …), as sent.
    #[serde(flatten)]
    pub params: params::Params,
    /// Prompt content, only with `--capture-content`. Never serialized into call lines.
    #[serde(skip)]
    pub content: Option<RequestContent>,
}

/// Request content in the GenAI conventions' JSON shapes (parts with `type`).
///
/// Each list is already capped, as it was read, to the suffix that
/// [`fit`](crate::telemetry::spans::fit) can use under `--capture-max-bytes` (items before it
/// can never be exported): `fit` gives the same JSON from it as from every item of the request.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RequestContent {
    /// `gen_ai.system_instructions`: `[{"type":"text","content":…}]`.
    pub system: Vec<serde_json::Value>,
    /// `gen_ai.input.messages`: `[{"role":…,"parts":[…]}]`.
    pub input: Vec<serde_json::Value>,
    /// `gen_ai.tool.definitions`: `[{"type":"function","name":…,"parameters":…}]`.
    pub tools: Vec<serde_json::Value>,
}

/// What the response says, normalized across APIs.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct ResponseFacts {
    /// The model that answered, as the response names it.
    pub model: Option<String>,
    /// The response id (`msg_…`, `chatcmpl-…`, `resp_…`, Gemini's `responseId`).
    pub id: Option<String>,
    /// Why generation stopped, one per choice, as the API spells it (`end_turn`, `stop`, `STOP`).
    pub finish_reasons: Vec<String>,
    /// Token usage, normalized (`Usage`).
    pub usage: Usage,
    /// Names of the tools the model called, in order.
    pub tools_called: Vec<String>,
    /// The calls of `tools_called` the client runs (not the provider's server tools), with the
    /// ids their results will carry (the first [`agent::MAX_TOOL_IDS`]), for matching results
    /// in later requests. Not in call lines.
    #[serde(skip)]
    pub tool_calls: Vec<agent::ToolCall>,
    /// The API's own error type (`overloaded_error`, `rate_limit_error`, ...), from an error
    /// body or an in-stream error event.
    pub error_type: Option<String>,
    /// The response reached its terminal event (or was a complete JSON body).
    pub complete: bool,
    /// The processing tier the response reports (OpenAI `service_tier`: `default`, `flex`,
    /// `priority`, `scale`; Anthropic `usage.service_tier`: `standard`, `priority`,
    /// `batch`): it decides the price.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub service_tier: Option<String>,
    /// OpenAI Chat's `system_fingerprint`: the backend configuration that served the call
    /// (`openai.response.system_fingerprint`); at most 64 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub system_fingerprint: Option<String>,
    /// What the provider says it billed for the call, in USD (OpenRouter `usage.cost`):
    /// the call's cost when present (`llmtap.cost_source = provider`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub billed_usd: Option<f64>,
    /// The HTTP status an in-band error stands for (a socket's error frame `status`, a
    /// Gemini stream error's `error.code`): it decides the outcome before the error type.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub error_status: Option<u16>,
    /// Cache-write tokens counted in `usage.cache_write_5m` only because the response did
    /// not say their TTL (Anthropic: `cache_creation_input_tokens` over its 5m/1h split).
    /// The request's `cache_control` TTL moves them to 1h when it asked for that.
    #[serde(skip)]
    pub cache_write_unsplit: u64,
    /// `gen_ai.output.messages`, only with `--capture-content`. Never in call lines.
    #[serde(skip)]
    pub output: Option<Vec<serde_json::Value>>,
    /// Rate and plan limits reported in the body (Codex's `codex.rate_limits` socket event);
    /// the call's record joins them with its response headers'.
    #[serde(skip)]
    pub ratelimits: Option<ratelimits::RateLimits>,
}

/// The output count with reasoning included (`Usage::output`), by the arithmetic the
/// response itself states. OpenAI counts reasoning inside the completion count (`total` =
/// prompt + completion); xAI's Grok counts it apart (`completion_tokens` without
/// `reasoning_tokens`, `total` = prompt + completion + reasoning: Vertex AI's Grok reasoning
/// page, "reasoning tokens are reported in `reasoning_tokens`, separate from
/// `completion_tokens`"). Only the total tells them apart, so this rule needs no provider.
pub(crate) fn output_tokens(
    prompt: Option<u64>,
    completion: Option<u64>,
    reasoning: Option<u64>,
    total: Option<u64>,
) -> Option<u64> {
    let completion = completion?;
    if let (Some(p), Some(r), Some(t)) = (prompt, reasoning, total)
        && r > 0
        && p.checked_add(completion).and_then(|n| n.checked_add(r)) == Some(t)
    {
        return Some(completion + r);
    }
    Some(completion)
}

/// The largest index ≤ `at` that is a character boundary of `s` (`str::floor_char_boundary`,
/// stable only after this crate's `rust-version`): where a cut at `at` bytes may fall.
pub(crate) fn floor_char_boundary(s: &str, at: usize) -> usize {
    let mut at = at.min(s.len());
    while !s.is_char_boundary(at) {
        at -= 1;
    }
    at
}

/// Longest model name kept, in bytes. Real names are under 100 (`anthropic.claude-sonnet-4-5-
/// 20250929-v1:0`, a fine-tune's `ft:gpt-4o-mini:org:name:id`); anything longer comes from a
/// client or upstream that is not naming a model, and would travel as a label, an attribute on
/// every span and metric series, and a call line (8 MiB of it broke OTel metrics export).
pub const MAX_MODEL_BYTES: usize = 256;

/// `model` if it can be a model name: at most [`MAX_MODEL_BYTES`], no control character.
/// Anything else is dropped (the call is recorded without a model, so unpriced) rather than
/// cut, which would make up a name.
pub fn model_name(model: Option<String>) -> Option<String> {
    model.filter(|m| m.len() <= MAX_MODEL_BYTES && !m.chars().any(char::is_control))
}

/// Applies the rules that need both sides of a call: cache writes whose TTL the response
/// did not say (see [`ResponseFacts::cache_write_unsplit`]) go to the TTL the request's last
/// breakpoint asked for ([`RequestFacts::cache_ttl`]), 5m when it asked for none; the
/// response's model is bounded as the request's is ([`model_name`]).
pub fn settle(request: Option<&RequestFacts>, response: &mut ResponseFacts) {
    response.model = model_name(response.model.take());
    let moved = std::mem::take(&mut response.cache_write_unsplit);
    if moved > 0 && request.and_then(|r| r.cache_ttl.as_deref()) == Some("1h") {
        let usage = &mut response.usage;
        usage.cache_write_5m = usage.cache_write_5m.map(|n| n.saturating_sub(moved));
        usage.cache_write_1h = Some(usage.cache_write_1h.unwrap_or(0).saturating_add(moved));
    }
}

/// Why parsing stopped. A parse failure stops observing a call; traffic is never touched.
/// The `kind` label of `llmtap_parse_errors_total` and the call line's `parse_error`.
#[derive(
    Debug,
    Clone,
    Copy,
    PartialEq,
    Eq,
    Hash,
    thiserror::Error,
    strum::IntoStaticStr,
    strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum ParseError {
    /// `invalid_json`: an event or body is not JSON (RFC 8259).
    #[error("invalid json")]
    InvalidJson,
    /// `invalid_utf8`: an event or body is not UTF-8.
    #[error("invalid utf-8")]
    InvalidUtf8,
    /// `line_too_long`: an SSE line over the event cap.
    #[error("sse line over the length cap")]
    LineTooLong,
    /// `body_too_large`: a body or event over its size cap (`config::Limits`).
    #[error("body over the size cap")]
    BodyTooLarge,
    /// `decode`: the `content-encoding` could not be decoded (or is not one llmtap knows).
    #[error("content-encoding could not be decoded")]
    Decode,
    /// `panic`: a parser panicked; the call keeps what was known.
    #[error("parser panicked")]
    Panic,
    /// `invalid_frame`: an AWS event-stream message failed its CRC or its headers did not
    /// parse (skipped), or a prelude failed its CRC (the framing is lost: parsing stops).
    #[error("event-stream frame failed its checksum")]
    InvalidFrame,
}

crate::vocab::label!(ParseError);

/// What feeding one SSE event told the caller, so it can stamp times.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// The event carried generated content (text, thinking, tool arguments): the first such
    /// event marks time to first token (ARCHITECTURE.md, invariant 8).
    pub delta: bool,
}

/// Incremental parser of one streamed response. Pure: events in, facts out.
pub trait StreamParser: Send + Sync {
    /// Reads one framed event (an SSE event, a JSON-array element or a WebSocket message); an error skips that event only.
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError>;
    /// Facts gathered so far; safe to call after an error or on a truncated stream.
    fn facts(&self) -> ResponseFacts;
    /// The terminal event was seen: the exchange is over even if the body is not drained.
    fn terminal(&self) -> bool;
}

/// `(operation, path, body, capture)` → the request's facts. `capture`
/// (`--capture-max-bytes`) also extracts the prompt content, capped while it is read to what
/// spans can export under that many bytes per attribute ([`RequestContent`]). The path (never
/// the query) can name the model (Gemini).
pub type ParseRequest =
    fn(Operation, &str, &[u8], Option<usize>) -> Result<RequestFacts, ParseError>;

/// One row of the dialect table.
pub struct Dialect {
    /// A short stable name (`anthropic_messages`), for logs and tests.
    pub name: &'static str,
    /// The request → operation, or `None` if not this dialect. `Target::path` is the part of
    /// the path after the provider's prefix (`providers`): `/v1/messages`,
    /// `/chat/completions`, `/models/{model}:generateContent`; the dialect matches that
    /// suffix whole.
    pub detect: fn(&Target<'_>) -> Option<(Operation, Framing)>,
    /// Reads a request body for its facts (and, with capture, its capped content).
    pub parse_request: ParseRequest,
    /// A complete non-streamed response body (success or error) of the given status.
    pub parse_response: fn(Operation, u16, &[u8], bool) -> Result<ResponseFacts, ParseError>,
    /// `capture`: also keep the generated content, up to that many bytes.
    pub stream_parser: fn(Operation, Option<usize>) -> Box<dyn StreamParser>,
    /// Largest single event this API legitimately sends (beyond it: a counted parse error).
    pub max_event: usize,
}

impl std::fmt::Debug for Dialect {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Dialect")
            .field("name", &self.name)
            .finish_non_exhaustive()
    }
}

/// Every wire format llmtap understands; each one's `name` is the `api` a provider table
/// entry names it by (`providers`) and the call's `llmtap.api`. No two dialects recognise the
/// same path suffix (tested), so order does not matter.
pub static DIALECTS: &[Dialect] = &[
    anthropic::MESSAGES,
    openai_chat::CHAT_COMPLETIONS,
    openai_responses::RESPONSES,
    gemini::GENERATE_CONTENT,
    gemini::CODE_ASSIST,
    bedrock::CONVERSE,
    bedrock::INVOKE,
];

/// The dialect named `name` (`anthropic_messages`, …).
pub fn by_name(name: &str) -> Option<&'static Dialect> {
    DIALECTS.iter().find(|d| d.name == name)
}

/// A POST to `path` on `host`, for tests and callers without a query or upgrade.
pub fn post<'a>(host: &'a str, path: &'a str) -> Target<'a> {
    Target {
        host,
        method: "POST",
        path,
        query: None,
        websocket: false,
    }
}

/// The facts of a response whose status is not 2xx, or `None` for a 2xx status: only the
/// API's error type, which `error_type` reads from the body as `S` when the body is JSON. A
/// body that is not (a gateway's HTML page) is no parse error of the dialect, just an error
/// without a type.
pub(crate) fn error_response<S: json::Object>(
    status: u16,
    body: &[u8],
    error_type: impl FnOnce(S) -> Option<String>,
) -> Option<ResponseFacts> {
    error_response_with(status, body, json::Whole::<S>::new(), error_type)
}

/// [`error_response`] with the body's top level read by `shape` (an error that can come as
/// an array).
pub(crate) fn error_response_with<S: lenient::Shape + Clone>(
    status: u16,
    body: &[u8],
    shape: S,
    error_type: impl FnOnce(S::Out) -> Option<String>,
) -> Option<ResponseFacts> {
    if (200..300).contains(&status) {
        return None;
    }
    Some(ResponseFacts {
        error_type: json::read_with(body, shape).ok().and_then(error_type),
        ..ResponseFacts::default()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// For the dialects' tests: `captured`, a request parsed with capture `Some(max)`, has the
    /// facts of `plain` (capture off), and each content list stays about the cap however long
    /// the request was.
    pub(crate) fn assert_capped(plain: &RequestFacts, captured: &RequestFacts, max: usize) {
        let content = captured.content.as_ref().expect("content captured");
        assert!(!content.input.is_empty());
        for list in [&content.system, &content.input, &content.tools] {
            let bytes = serde_json::Value::Array(list.clone()).to_string().len();
            assert!(bytes < 2 * max, "{} items, {bytes} bytes", list.len());
        }
        let facts = RequestFacts {
            content: None,
            ..captured.clone()
        };
        assert_eq!(&facts, plain);
    }

    #[test]
    fn json_tells_utf8_from_syntax() {
        assert_eq!(json::tree(b"{\"a\":\xff}"), Err(ParseError::InvalidUtf8));
        assert_eq!(json::tree(b"{\"a\":"), Err(ParseError::InvalidJson));
        assert!(json::tree(b"{\"a\":1}").is_ok());
    }
}
