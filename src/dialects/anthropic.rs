//! Anthropic Messages API: `POST /v1/messages` (streamed or not) and
//! `POST /v1/messages/count_tokens`.
//!
//! Normalization (ARCHITECTURE.md, "Usage"): Anthropic's `input_tokens` excludes cache, so normalized input
//! is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`. Cache writes are
//! split 5m/1h from `usage.cache_creation`; without that object every write is 5m (the only
//! TTL that existed before it). `message_delta` usage is cumulative and final, so later
//! values replace earlier ones.
//!
//! This file reads responses (events and bodies) with the typed structs of [`super::json`];
//! requests are read in `anthropic/request.rs`.

use serde::Deserialize;
use serde_json::Value;

use super::{
    Dialect, Framing, Operation, ParseError, Progress, ResponseFacts, StreamParser, Target, Usage,
    agent,
    content::{CaptureBudget, OutputMessage, Part, arguments, to_value},
    error_response,
    json::{self, Object},
    lenient, sse,
};

mod request;

/// Anthropic Messages: `POST /v1/messages` (and `/v1/messages/count_tokens`).
pub const MESSAGES: Dialect = Dialect {
    name: "anthropic_messages",
    detect,
    parse_request: request::parse_request,
    parse_response,
    stream_parser,
    max_event: 512 << 10,
};

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    match t.path.trim_end_matches('/') {
        "/v1/messages" => Some((Operation::Chat, Framing::Json)),
        "/v1/messages/count_tokens" => Some((Operation::CountTokens, Framing::Json)),
        path => match vertex_model(path)? {
            ("count-tokens", "rawPredict") => Some((Operation::CountTokens, Framing::Json)),
            (_, "rawPredict" | "streamRawPredict") => Some((Operation::Chat, Framing::Json)),
            _ => None,
        },
    }
}

/// The Messages API as Vertex AI serves it (Claude on Vertex AI, "Use Claude models"):
/// `/models/{model}:rawPredict` or `:streamRawPredict` under
/// `/v1/projects/{p}/locations/{l}/publishers/anthropic`, the model named in the path
/// (`claude-sonnet-4-5@20250929`) and not in the body; `/models/count-tokens:rawPredict`
/// counts tokens. `path` → (model, method).
pub fn vertex_model(path: &str) -> Option<(&str, &str)> {
    let (model, method) = path.strip_prefix("/models/")?.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, method))
}

/// One Anthropic content block as a GenAI message part (Messages API reference, "Content
/// blocks").
fn part(block: &Value) -> Part<'_> {
    let field = |name: &str| block.get(name).into();
    match block.get("type").and_then(Value::as_str) {
        Some("text") => Part::Text {
            content: field("text"),
        },
        Some("thinking") => Part::Reasoning {
            content: field("thinking"),
        },
        Some(kind) if is_tool_call(kind) => Part::ToolCall {
            id: field("id"),
            name: field("name"),
            arguments: field("input"),
        },
        Some("tool_result") => Part::ToolCallResponse {
            id: field("tool_use_id"),
            response: field("content"),
        },
        Some(other) => Part::Other { kind: other.into() },
        None => Part::Other {
            kind: "unknown".into(),
        },
    }
}

/// A content block that is a tool call, by rule rather than by list: every block type the
/// Messages API defines for one ends in `tool_use` (`tool_use`, `server_tool_use`,
/// `mcp_tool_use`), and none that is not (results end in `_result`).
fn is_tool_call(kind: &str) -> bool {
    kind.ends_with("tool_use")
}

fn parse_response(
    operation: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if let Some(facts) = error_response(status, body, |m: Message| m.error_type()) {
        return Ok(facts);
    }
    let (m, tree) = json::parse::<Message>(body, capture)?;
    if let Some(error_type) = m.error_type() {
        return Ok(ResponseFacts {
            error_type: Some(error_type),
            ..ResponseFacts::default()
        });
    }
    if operation == Operation::CountTokens {
        let usage = Usage {
            input: m.input_tokens,
            ..Usage::default()
        };
        return Ok(ResponseFacts {
            usage,
            complete: true,
            ..ResponseFacts::default()
        });
    }
    let mut parser = Messages::default();
    parser.on_message(&m);
    (0..)
        .zip(&m.content)
        .for_each(|(i, b)| parser.on_block(i, b));
    parser.complete = true;
    let mut facts = parser.facts();
    if let Some(tree) = &tree {
        let parts = json::array(tree, "content").iter().map(part).collect();
        facts.output = Some(vec![output_message(parts, &facts)]);
    }
    Ok(facts)
}

fn output_message(parts: Vec<Part<'_>>, facts: &ResponseFacts) -> Value {
    to_value(OutputMessage::assistant(
        parts,
        facts.finish_reasons.first().map(String::as_str),
    ))
}

/// The HTTP status an Anthropic error type stands for (the API's errors reference), for an
/// error that arrives inside a 200 stream.
fn error_status(error_type: &str) -> Option<u16> {
    Some(match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

fn stream_parser(_operation: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Messages {
        capture: capture.map(|max| Output {
            blocks: Vec::new(),
            budget: CaptureBudget::new(max),
        }),
        ..Messages::default()
    })
}

/// What llmtap reads of a message: the response body, `message_start`'s `message`, and the
/// `delta` of `message_delta` and `content_block_delta`, whose keys sit at the same places
/// (Messages API reference: "Messages", "Streaming messages", "Errors").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Message {
    /// `message`, or `error` for an error body; a delta's type (`text_delta`, …).
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    id: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    model: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    stop_reason: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
    /// Content blocks of a body (a stream announces them one event each).
    #[serde(deserialize_with = "json::lenient")]
    content: Vec<Block>,
    /// An error body's `error`.
    #[serde(deserialize_with = "json::lenient")]
    error: Option<ErrorDetail>,
    /// A `count_tokens` body's count.
    #[serde(deserialize_with = "json::lenient")]
    input_tokens: Option<u64>,
    /// An `input_json_delta`'s piece of a tool call's input.
    #[serde(deserialize_with = "json::lenient")]
    partial_json: Option<String>,
}

impl Object for Message {}

impl Message {
    /// `error.type` of an error body or event (`{"type":"error","error":{"type":…}}`).
    fn error_type(&self) -> Option<String> {
        (self.kind.as_deref() == Some("error"))
            .then(|| self.error.as_ref()?.kind.clone())
            .flatten()
    }
}

/// One server-sent event (Messages API reference, "Streaming messages").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Event {
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    /// `message_start`.
    #[serde(deserialize_with = "json::lenient")]
    message: Option<Message>,
    /// `content_block_start`.
    #[serde(deserialize_with = "json::lenient")]
    content_block: Option<Block>,
    /// `content_block_delta`, `message_delta`.
    #[serde(deserialize_with = "json::lenient")]
    delta: Option<Message>,
    /// `message_delta`.
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
    /// `error`.
    #[serde(deserialize_with = "json::lenient")]
    error: Option<ErrorDetail>,
    /// `content_block_start`, `content_block_delta`: the block's position.
    #[serde(deserialize_with = "json::lenient")]
    index: Option<u64>,
}

impl Object for Event {}

/// A content block: its type and, for a tool call, the tool's name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Block {
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    name: Option<String>,
    /// A tool call's id, which its `tool_result` names.
    #[serde(deserialize_with = "json::lenient")]
    id: Option<String>,
    /// A tool call's input, read only for the fields that name a subagent.
    #[serde(deserialize_with = "json::lenient")]
    input: Option<agent::SubagentArgs>,
}

impl Object for Block {}

/// An error object: its type (`overloaded_error`, …).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorDetail {
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
}

impl Object for ErrorDetail {}

/// A `usage` object as the wire carries it (Messages API reference, "Usage"; "Compaction"
/// for `iterations`, whose entries carry the same counts).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    #[serde(deserialize_with = "json::lenient")]
    input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    output_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_read_input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_creation_input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_creation: Option<CacheCreation>,
    #[serde(deserialize_with = "json::lenient")]
    iterations: Vec<WireUsage>,
    #[serde(deserialize_with = "json::lenient")]
    output_tokens_details: Option<OutputDetails>,
    #[serde(deserialize_with = "json::lenient")]
    service_tier: Option<String>,
}

impl Object for WireUsage {}

/// `usage.cache_creation`: cache writes by TTL.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CacheCreation {
    #[serde(deserialize_with = "json::lenient")]
    ephemeral_5m_input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    ephemeral_1h_input_tokens: Option<u64>,
}

impl Object for CacheCreation {}

/// `usage.output_tokens_details`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutputDetails {
    #[serde(deserialize_with = "json::lenient")]
    thinking_tokens: Option<u64>,
}

impl Object for OutputDetails {}

/// Generated content kept for `--capture-content`, bounded by its [`CaptureBudget`].
#[derive(Debug)]
struct Output {
    /// Per content block, in order: its part as the block started, and its streamed text. A
    /// tool call starts with `input: {}`, which its streamed arguments replace.
    blocks: Vec<(Part<'static>, String)>,
    budget: CaptureBudget,
}

impl Output {
    fn start(&mut self, block: &Value) {
        if let Some(part) = self.budget.admit(part(block)) {
            self.blocks.push((part.into_owned(), String::new()));
        }
    }

    /// A delta's text, for the block it continues (text, thinking, or a tool call's arguments
    /// as JSON text; other blocks export none).
    fn append(&mut self, text: &str) {
        if let Some((Part::Text { .. } | Part::Reasoning { .. } | Part::ToolCall { .. }, acc)) =
            self.blocks.last_mut()
        {
            self.budget.append(acc, text);
        }
    }

    fn parts(&self) -> Vec<Part<'_>> {
        self.blocks
            .iter()
            .map(|(part, acc)| match part {
                Part::Text { .. } => Part::Text {
                    content: acc.as_str().into(),
                },
                Part::Reasoning { .. } => Part::Reasoning {
                    content: acc.as_str().into(),
                },
                // Arguments arrive as JSON text in pieces; a truncated piece stays text.
                Part::ToolCall { id, name, .. } if !acc.is_empty() => Part::ToolCall {
                    id: id.reborrow(),
                    name: name.reborrow(),
                    arguments: arguments(acc),
                },
                other => other.reborrow(),
            })
            .collect()
    }
}

/// Raw usage counters as the wire carries them; normalized only in [`Messages::facts`].
#[derive(Debug, Default)]
struct RawUsage {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    cache_5m: Option<u64>,
    cache_1h: Option<u64>,
    /// `usage.service_tier`: `standard`, `priority` or `batch`.
    service_tier: Option<String>,
    /// `usage.output_tokens_details.thinking_tokens` (part of `output_tokens`), when sent.
    reasoning: Option<u64>,
    /// Sums over `usage.iterations` (input, output, cache read, cache creation), which win
    /// over the top-level counts.
    iterations: Option<[Option<u64>; 4]>,
}

impl RawUsage {
    fn merge(&mut self, u: &WireUsage) {
        let set = |slot: &mut Option<u64>, v: Option<u64>| {
            if v.is_some() {
                *slot = v;
            }
        };
        set(&mut self.input, u.input_tokens);
        set(&mut self.output, u.output_tokens);
        set(&mut self.cache_read, u.cache_read_input_tokens);
        set(&mut self.cache_creation, u.cache_creation_input_tokens);
        // With compaction the top-level counts are the `message` iteration's only; every
        // iteration (the compaction's own sampling included) is billed, so the call's
        // usage is their sum (Messages API, "Compaction": usage `iterations`).
        if !u.iterations.is_empty() {
            let sum = |count: fn(&WireUsage) -> Option<u64>| {
                u.iterations
                    .iter()
                    .filter_map(count)
                    .fold(None, |acc: Option<u64>, n| {
                        Some(acc.unwrap_or(0).saturating_add(n))
                    })
            };
            // Kept apart: a later usage object without `iterations` must not replace them.
            self.iterations = Some([
                sum(|i| i.input_tokens),
                sum(|i| i.output_tokens),
                sum(|i| i.cache_read_input_tokens),
                sum(|i| i.cache_creation_input_tokens),
            ]);
        }
        set(
            &mut self.reasoning,
            u.output_tokens_details
                .as_ref()
                .and_then(|d| d.thinking_tokens),
        );
        if let Some(tier) = &u.service_tier {
            self.service_tier = Some(tier.clone());
        }
        if let Some(split) = &u.cache_creation {
            set(&mut self.cache_5m, split.ephemeral_5m_input_tokens);
            set(&mut self.cache_1h, split.ephemeral_1h_input_tokens);
        }
    }
    /// The normalized usage, and the cache writes whose TTL the response did not say.
    ///
    /// `cache_creation_input_tokens` is what is billed as cache writes; the `cache_creation`
    /// object splits it by TTL. 5m + 1h must equal the total, so a split that is missing or
    /// sums to less (0/0 has been seen next to a non-zero total) leaves a remainder, counted
    /// as 5m here (the default TTL) and returned so that the request's TTL can claim it. A
    /// split that sums to more than the total wins over it.
    fn normalize(&self) -> (Usage, u64) {
        let [it_input, it_output, it_read, it_creation] = self.iterations.unwrap_or_default();
        let (input, output) = (it_input.or(self.input), it_output.or(self.output));
        let (cache_read, cache_creation) = (
            it_read.or(self.cache_read),
            it_creation.or(self.cache_creation),
        );
        let split = self
            .cache_5m
            .unwrap_or(0)
            .saturating_add(self.cache_1h.unwrap_or(0));
        let has_split = self.cache_5m.is_some() || self.cache_1h.is_some();
        let cache_created = match cache_creation {
            Some(total) => Some(total.max(split)),
            None => has_split.then_some(split),
        };
        let unsplit = cache_created.map_or(0, |total| total - split);
        let (cache_write_5m, cache_write_1h) = match cache_created {
            Some(_) => (
                Some(self.cache_5m.unwrap_or(0).saturating_add(unsplit)),
                Some(self.cache_1h.unwrap_or(0)),
            ),
            None => (None, None),
        };
        let usage = Usage {
            input: input.map(|i| {
                i.saturating_add(cache_read.unwrap_or(0))
                    .saturating_add(cache_created.unwrap_or(0))
            }),
            output,
            cache_read,
            cache_write_5m,
            cache_write_1h,
            reasoning: self.reasoning,
        };
        (usage, unsplit)
    }
}

/// State of one Messages response, streamed or not.
#[derive(Debug, Default)]
struct Messages {
    model: Option<String>,
    id: Option<String>,
    stop_reason: Option<String>,
    usage: RawUsage,
    tools_called: Vec<String>,
    tool_calls: agent::ToolCalls,
    error_type: Option<String>,
    complete: bool,
    capture: Option<Output>,
}

impl Messages {
    fn on_message(&mut self, m: &Message) {
        if let Some(id) = &m.id {
            self.id = Some(id.clone());
        }
        if let Some(model) = &m.model {
            self.model = Some(model.clone());
        }
        if let Some(reason) = &m.stop_reason {
            self.stop_reason = Some(reason.clone());
        }
        if let Some(usage) = &m.usage {
            self.usage.merge(usage);
        }
    }

    /// A content block starts (a stream's `content_block_start` at `index`) or is read
    /// whole (a body's, its input then complete).
    fn on_block(&mut self, index: u64, block: &Block) {
        let kind = block.kind.as_deref().unwrap_or_default();
        if is_tool_call(kind) {
            let name = block.name.as_deref().unwrap_or(kind);
            self.tools_called.push(name.to_owned());
            // Only a `tool_use` is the client's to run and answer; server and MCP tools run
            // on Anthropic's side and no result comes back in a request.
            if kind == "tool_use" {
                let subagent = block.input.as_ref().and_then(|i| i.name_for(name));
                self.tool_calls
                    .start(index, block.id.as_deref(), name, subagent);
            }
        }
    }
}

/// Whether `data` is a `content_block_delta` event's JSON exactly as the Messages API writes a
/// text or thinking delta: `{"type":"content_block_delta","index":N,"delta":{"type":"text_delta","text":"…"}}`
/// (or `"thinking_delta","thinking":"…"`), the string valid JSON (UTF-8, escapes, no control
/// characters: the same check as the parse's) and nothing after it but `}}`. Such an event says
/// only that content came (streaming reference, "Text delta" and "Thinking delta"), so
/// [`Messages::on_event`] needs no parse for it; any other spelling, order or extra field
/// falls back to the parse, so the facts are the same either way
/// (`recognised_deltas_are_exactly_what_the_parse_reads_as_plain_content`).
fn is_plain_content_delta(data: &[u8]) -> bool {
    let Some(rest) = data.strip_prefix(br#"{"type":"content_block_delta","index":"#) else {
        return false;
    };
    // A JSON number without a leading zero (`0`, or 1 to 19 digits not starting with `0`).
    let digits = rest.iter().take_while(|b| b.is_ascii_digit()).count();
    if !(1..=19).contains(&digits) || (digits > 1 && rest.first() == Some(&b'0')) {
        return false;
    }
    let rest = &rest[digits..];
    let Some(text) = rest
        .strip_prefix(br#","delta":{"type":"text_delta","text":"#)
        .or_else(|| rest.strip_prefix(br#","delta":{"type":"thinking_delta","thinking":"#))
    else {
        return false;
    };
    // JSON's whitespace only (RFC 8259, section 2): not the form feed `trim_ascii_end` takes.
    let end = text
        .iter()
        .rposition(|b| !matches!(b, b' ' | b'\t' | b'\n' | b'\r'))
        .map_or(0, |i| i + 1);
    let Some(text) = text[..end].strip_suffix(b"}}") else {
        return false;
    };
    // One JSON string and nothing else, validated as the parse validates a whole event.
    text.first() == Some(&b'"') && lenient::parse(text, lenient::Skip).is_ok()
}

impl StreamParser for Messages {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        // `ping` carries `{"type": "ping"}`; skip the JSON work for the cheap common cases.
        if event.name == b"ping" {
            return Ok(Progress::default());
        }
        // Most of a stream is text or thinking deltas whose only fact is that content came:
        // recognised in their wire form, not parsed (BENCHMARKS.md, issue 18).
        if self.capture.is_none()
            && event.name == b"content_block_delta"
            && is_plain_content_delta(event.data)
        {
            return Ok(Progress { delta: true });
        }
        let (v, tree) = json::parse::<Event>(event.data, self.capture.is_some())?;
        let mut progress = Progress::default();
        match v.kind.as_deref().unwrap_or_default() {
            "message_start" => {
                if let Some(m) = &v.message {
                    self.on_message(m);
                }
            }
            "content_block_start" => {
                if let Some(block) = &v.content_block {
                    self.on_block(v.index.unwrap_or(0), block);
                }
                let block = tree.as_ref().and_then(|t| t.get("content_block"));
                if let (Some(output), Some(block)) = (&mut self.capture, block) {
                    output.start(block);
                }
            }
            "content_block_delta" => {
                let kind = v.delta.as_ref().and_then(|d| d.kind.as_deref());
                progress.delta = matches!(
                    kind,
                    Some("text_delta" | "thinking_delta" | "input_json_delta")
                );
                if let Some(piece) = v.delta.as_ref().and_then(|d| d.partial_json.as_deref()) {
                    self.tool_calls.args(v.index.unwrap_or(0), piece);
                }
                let delta = tree.as_ref().and_then(|t| t.get("delta"));
                if let (Some(output), Some(delta)) = (&mut self.capture, delta) {
                    let text = ["text", "thinking", "partial_json"]
                        .iter()
                        .find_map(|k| delta.get(*k).and_then(Value::as_str));
                    if let Some(text) = text {
                        output.append(text);
                    }
                }
            }
            "message_delta" => {
                if let Some(delta) = &v.delta {
                    self.on_message(delta);
                }
                if let Some(usage) = &v.usage {
                    self.usage.merge(usage);
                }
            }
            "message_stop" => self.complete = true,
            "error" => {
                let error_type = v.error.and_then(|e| e.kind);
                self.error_type = error_type.or_else(|| Some("error".to_owned()));
            }
            _ => {}
        }
        Ok(progress)
    }

    fn facts(&self) -> ResponseFacts {
        let (usage, cache_write_unsplit) = self.usage.normalize();
        let mut facts = ResponseFacts {
            model: self.model.clone(),
            id: self.id.clone(),
            finish_reasons: self.stop_reason.iter().cloned().collect(),
            usage,
            tools_called: self.tools_called.clone(),
            tool_calls: self.tool_calls.calls(),
            error_type: self.error_type.clone(),
            error_status: self.error_type.as_deref().and_then(error_status),
            complete: self.complete,
            service_tier: self.usage.service_tier.clone(),
            system_fingerprint: None,
            billed_usd: None,
            ratelimits: None,
            cache_write_unsplit,
            output: None,
        };
        if let Some(output) = &self.capture {
            facts.output = Some(vec![output_message(output.parts(), &facts)]);
        }
        facts
    }

    fn terminal(&self) -> bool {
        self.complete || self.error_type.is_some()
    }
}

#[cfg(test)]
mod tests;
