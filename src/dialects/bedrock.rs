//! Amazon Bedrock Runtime: `Converse` / `ConverseStream` (`POST /model/{modelId}/converse`,
//! `/converse-stream`) and `InvokeModel` / `InvokeModelWithResponseStream`
//! (`/model/{modelId}/invoke`, `/invoke-with-response-stream`). Streams are AWS event streams
//! (`application/vnd.amazon.eventstream`, [`super::eventstream`]), each message handed to the
//! parser as an [`sse::Event`] named by its `:event-type` (`exception:<type>` and
//! `error:<code>` for the other message types; see [`super::eventstream::Message::event_name`]).
//!
//! The model comes from the path, percent-decoded ([`model_from_path`]): a foundation model id
//! (`anthropic.claude-sonnet-4-5-20250929-v1:0`), an inference profile (`us.…`, `eu.…`,
//! `apac.…`, `global.…`) or an ARN, whose `/` the client encodes as `%2F`. Responses do not
//! name it (an Anthropic body through `InvokeModel` does).
//!
//! Usage (Bedrock API reference, `TokenUsage`: `inputTokens`, `outputTokens`, `totalTokens`,
//! `cacheReadInputTokens`, `cacheWriteInputTokens`, `cacheDetails`; Bedrock User Guide,
//! "Prompt caching for faster model inference": tokens neither read from nor written to the
//! cache are the ones charged at the standard input rate): `inputTokens` excludes cache reads
//! and writes, so normalized input = `inputTokens + cacheReadInputTokens +
//! cacheWriteInputTokens` (ARCHITECTURE.md, "Usage"). Cache writes are split by TTL from
//! `cacheDetails` (`[{"ttl":"1h"|"5m","inputTokens":…}]`); what it does not split is counted
//! as 5m and left to the request's last `cachePoint` TTL ([`super::settle`]). `totalTokens` is
//! not read: it only repeats the others. Bedrock reports no reasoning count.
//!
//! Errors: a non-2xx body is `{"message":"…"}` and the error's type travels in the
//! `x-amzn-ErrorType` header, which dialects do not see. The type is read from the body's
//! `__type` or `code` when a gateway puts it there (restJson1's fallbacks), else derived from
//! the status where the operation's error list gives that status to one error only
//! ([`error_for_status`]). Exceptions inside a stream (`:message-type: exception`) give their
//! `:exception-type` as the error type and the status the API reference gives it
//! ([`exception_status`]).
//!
//! This file holds what both APIs share and reads Converse responses; Converse (and Nova
//! `InvokeModel`) requests are read in `bedrock/request.rs`, `InvokeModel` responses in
//! `bedrock/invoke.rs`.

use serde::Deserialize;
use serde_json::Value;

use super::{
    Dialect, Framing, Operation, ParseError, Progress, ResponseFacts, StreamParser, Target, Usage,
    content::{CaptureBudget, OutputMessage, Part, arguments, to_value},
    error_response, eventstream,
    json::{self, NonEmpty, Object},
    sse,
};

mod invoke;
mod request;

/// `Converse` and `ConverseStream`: `POST /model/{modelId}/converse[-stream]`.
pub const CONVERSE: Dialect = Dialect {
    name: "bedrock_converse",
    detect: detect_converse,
    parse_request: request::parse_converse,
    parse_response,
    stream_parser,
    max_event: MAX_MESSAGE,
};

/// `InvokeModel` and `InvokeModelWithResponseStream`: `POST /model/{modelId}/invoke` and
/// `/invoke-with-response-stream`.
pub const INVOKE: Dialect = Dialect {
    name: "bedrock_invoke",
    detect: detect_invoke,
    parse_request: invoke::parse_request,
    parse_response: invoke::parse_response,
    stream_parser: invoke::stream_parser,
    max_event: MAX_MESSAGE,
};

/// The largest event-stream message read (prelude to CRC). Messages are not cut while framed
/// (an `InvokeModelWithResponseStream` chunk is base64), and every Bedrock event is one delta
/// or one small object, so 1 MiB leaves room for a large tool-input delta.
const MAX_MESSAGE: usize = 1 << 20;

/// `/model/{modelId}/{operation}` → (the model id as sent, the operation).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let (model, operation) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, operation))
}

fn detect(t: &Target<'_>, operations: [&str; 2]) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    let (_, operation) = split_path(t.path)?;
    operations
        .contains(&operation)
        .then_some((Operation::Chat, Framing::Json))
}

fn detect_converse(t: &Target<'_>) -> Option<(Operation, Framing)> {
    detect(t, ["converse", "converse-stream"])
}

fn detect_invoke(t: &Target<'_>) -> Option<(Operation, Framing)> {
    detect(t, ["invoke", "invoke-with-response-stream"])
}

/// The model a Bedrock path names, percent-decoded (an ARN's `%2F` → `/`); `None` for another
/// path or a malformed escape.
pub fn model_from_path(path: &str) -> Option<String> {
    crate::wire::percent_decode(split_path(path)?.0)
}

/// Whether a Bedrock path asks for a streamed response (`converse-stream`,
/// `invoke-with-response-stream`).
fn streamed(path: &str) -> bool {
    split_path(path)
        .is_some_and(|(_, op)| matches!(op, "converse-stream" | "invoke-with-response-stream"))
}

/// The HTTP status the API reference gives an exception that arrives inside a stream
/// (`ConverseStreamOutput`, `ResponseStream`), matched without regard to case (the stream
/// spells them `throttlingException`, the error header `ThrottlingException`).
pub fn exception_status(exception_type: &str) -> Option<u16> {
    let known = [
        ("validationException", 400),
        ("accessDeniedException", 403),
        ("resourceNotFoundException", 404),
        ("modelTimeoutException", 408),
        ("modelStreamErrorException", 424),
        ("modelErrorException", 424),
        ("throttlingException", 429),
        ("internalServerException", 500),
        ("serviceUnavailableException", 503),
    ];
    known
        .iter()
        .find(|(name, _)| name.eq_ignore_ascii_case(exception_type))
        .map(|&(_, status)| status)
}

/// The error a non-2xx status stands for when the body does not say (the `Converse` and
/// `InvokeModel` error lists). 429 is left out: `ThrottlingException` and
/// `ModelNotReadyException` share it, and a guess would be a wrong label half the time.
pub fn error_for_status(status: u16) -> Option<&'static str> {
    Some(match status {
        400 => "ValidationException",
        403 => "AccessDeniedException",
        404 => "ResourceNotFoundException",
        408 => "ModelTimeoutException",
        424 => "ModelErrorException",
        500 => "InternalServerException",
        503 => "ServiceUnavailableException",
        _ => return None,
    })
}

/// A non-2xx body's facts, or `None` for a 2xx status (shared by both APIs).
fn error_facts(status: u16, body: &[u8]) -> Option<ResponseFacts> {
    let mut facts = error_response(status, body, |e: ErrorBody| e.error_type())?;
    facts.error_type = facts
        .error_type
        .or_else(|| error_for_status(status).map(str::to_owned));
    Some(facts)
}

/// An error body (`{"message":…}`), with the error type where a gateway or another protocol
/// puts it: restJson1's `code`, awsJson's `__type` (`com.amazon…#ValidationException`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    #[serde(rename = "__type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    code: Option<String>,
}

impl Object for ErrorBody {}

impl ErrorBody {
    /// The error's short name: after any `#` namespace, before any `:` detail.
    fn error_type(self) -> Option<String> {
        let raw = self.kind.or(self.code)?;
        let name = raw.rsplit('#').next().unwrap_or_default();
        let name = name.split(':').next().unwrap_or_default().trim();
        (!name.is_empty()).then(|| name.to_owned())
    }
}

/// The facts of an in-stream exception or error message, when `name` is one
/// ([`eventstream::EXCEPTION_PREFIX`], [`eventstream::ERROR_PREFIX`]).
fn stream_error(name: &[u8]) -> Option<(String, Option<u16>)> {
    let kind = name
        .strip_prefix(eventstream::EXCEPTION_PREFIX)
        .or_else(|| name.strip_prefix(eventstream::ERROR_PREFIX))?;
    let kind = String::from_utf8_lossy(kind).into_owned();
    // The stream spells the exception as its member name (`throttlingException`); the
    // `x-amzn-ErrorType` header and `__type` of a non-2xx answer as the shape name
    // (`ThrottlingException`). One spelling, the shape's, so one error is one label value.
    let mut chars = kind.chars();
    let kind = match chars.next() {
        Some(first) => first.to_ascii_uppercase().to_string() + chars.as_str(),
        None => "Exception".to_owned(),
    };
    let status = exception_status(&kind);
    Some((kind, status))
}

/// Usage counts as Bedrock reports them, normalized once in [`RawUsage::normalize`]. Shared
/// by `Converse` (`TokenUsage`) and the `InvokeModel` shapes that use the same meaning.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
struct RawUsage {
    /// Prompt tokens neither read from nor written to the cache.
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_write: Option<u64>,
    /// `cacheDetails`: writes with a 5m and a 1h TTL.
    write_5m: Option<u64>,
    write_1h: Option<u64>,
}

impl RawUsage {
    /// The normalized usage, and the cache writes whose TTL the response did not say.
    fn normalize(&self) -> (Usage, u64) {
        let split = self
            .write_5m
            .unwrap_or(0)
            .saturating_add(self.write_1h.unwrap_or(0));
        let has_split = self.write_5m.is_some() || self.write_1h.is_some();
        let written = match self.cache_write {
            Some(total) => Some(total.max(split)),
            None => has_split.then_some(split),
        };
        let unsplit = written.map_or(0, |total| total - split);
        let usage = Usage {
            input: self.input.map(|i| {
                i.saturating_add(self.cache_read.unwrap_or(0))
                    .saturating_add(written.unwrap_or(0))
            }),
            output: self.output,
            cache_read: self.cache_read,
            cache_write_5m: written.map(|_| self.write_5m.unwrap_or(0).saturating_add(unsplit)),
            cache_write_1h: written.map(|_| self.write_1h.unwrap_or(0)),
            reasoning: None,
        };
        (usage, unsplit)
    }
}

/// `TokenUsage` on the wire (`Converse` body, `ConverseStream` `metadata`).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireUsage {
    #[serde(deserialize_with = "json::lenient")]
    input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    output_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_read_input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_write_input_tokens: Option<u64>,
    /// Amazon Nova's `InvokeModel` body spells the cache counts `…TokenCount`.
    #[serde(deserialize_with = "json::lenient")]
    cache_read_input_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_write_input_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_details: Vec<CacheDetail>,
}

impl Object for WireUsage {}

impl WireUsage {
    fn raw(&self) -> RawUsage {
        let by_ttl = |ttl: &str| {
            self.cache_details
                .iter()
                .filter(|d| d.ttl.as_deref() == Some(ttl))
                .filter_map(|d| d.input_tokens)
                .fold(None, |acc: Option<u64>, n| {
                    Some(acc.unwrap_or(0).saturating_add(n))
                })
        };
        RawUsage {
            input: self.input_tokens,
            output: self.output_tokens,
            cache_read: self
                .cache_read_input_tokens
                .or(self.cache_read_input_token_count),
            cache_write: self
                .cache_write_input_tokens
                .or(self.cache_write_input_token_count),
            write_5m: by_ttl("5m"),
            write_1h: by_ttl("1h"),
        }
    }
}

/// `CacheDetail`: cache writes with one TTL.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct CacheDetail {
    #[serde(deserialize_with = "json::lenient")]
    ttl: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    input_tokens: Option<u64>,
}

impl Object for CacheDetail {}

/// What llmtap reads of a `Converse` body and of the `ConverseStream` events, whose keys do
/// not collide (API reference: `Converse` response; `ConverseStreamOutput` and its events).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Converse {
    /// The body's `output.message`.
    #[serde(deserialize_with = "json::lenient")]
    output: Option<OutputField>,
    /// The body's and `messageStop`'s.
    #[serde(deserialize_with = "json::lenient")]
    stop_reason: Option<String>,
    /// The body's and `metadata`'s.
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
    /// `contentBlockStart`: `start.toolUse`.
    #[serde(deserialize_with = "json::lenient")]
    start: Option<Block>,
    /// `contentBlockDelta`.
    #[serde(deserialize_with = "json::lenient")]
    delta: Option<Delta>,
    /// `contentBlockStart`, `contentBlockDelta`.
    #[serde(deserialize_with = "json::lenient")]
    content_block_index: Option<u64>,
}

impl Object for Converse {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutputField {
    #[serde(deserialize_with = "json::lenient")]
    message: Option<MessageField>,
}

impl Object for OutputField {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MessageField {
    #[serde(deserialize_with = "json::lenient")]
    content: Vec<Block>,
}

impl Object for MessageField {}

/// A content block (or `contentBlockStart.start`): a tool call's name.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Block {
    #[serde(deserialize_with = "json::lenient")]
    tool_use: Option<Named>,
}

impl Object for Block {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    #[serde(deserialize_with = "json::lenient")]
    name: Option<String>,
    /// `toolUse.toolUseId`, which the `toolResult` names.
    #[serde(rename = "toolUseId", deserialize_with = "json::lenient")]
    tool_use_id: Option<String>,
}

impl Object for Named {}

/// `contentBlockDelta.delta`: text, a tool call's input (JSON text in pieces), or reasoning
/// (its `text`; a `signature` or `redactedContent` is no generated text).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Delta {
    #[serde(deserialize_with = "json::lenient")]
    text: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    tool_use: Option<InputDelta>,
    #[serde(deserialize_with = "json::lenient")]
    reasoning_content: Option<ReasoningDelta>,
}

impl Object for Delta {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InputDelta {
    #[serde(deserialize_with = "json::lenient")]
    input: NonEmpty,
}

impl Object for InputDelta {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ReasoningDelta {
    #[serde(deserialize_with = "json::lenient")]
    text: NonEmpty,
}

impl Object for ReasoningDelta {}

/// One Converse content block as a GenAI part (API reference: `ContentBlock`): `text`,
/// `toolUse`, `toolResult`, `reasoningContent.reasoningText.text`, else its kind (its first
/// key: `image`, `document`, `cachePoint`, …).
fn part(block: &Value) -> Part<'_> {
    if let Some(text) = block.get("text") {
        Part::Text {
            content: text.into(),
        }
    } else if let Some(call) = block.get("toolUse") {
        Part::ToolCall {
            id: call.get("toolUseId").into(),
            name: call.get("name").into(),
            arguments: call.get("input").into(),
        }
    } else if let Some(result) = block.get("toolResult") {
        Part::ToolCallResponse {
            id: result.get("toolUseId").into(),
            response: result.get("content").into(),
        }
    } else if let Some(reasoning) = block.get("reasoningContent") {
        Part::Reasoning {
            content: reasoning
                .get("reasoningText")
                .and_then(|r| r.get("text"))
                .into(),
        }
    } else {
        let kind = block.as_object().and_then(|o| o.keys().next());
        Part::Other {
            kind: kind.map_or("unknown", String::as_str).into(),
        }
    }
}

fn parse_response(
    _operation: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if let Some(facts) = error_facts(status, body) {
        return Ok(facts);
    }
    let (c, tree) = json::parse::<Converse>(body, capture)?;
    let mut state = ConverseState::default();
    if let Some(message) = c.output.as_ref().and_then(|o| o.message.as_ref()) {
        for block in &message.content {
            state.on_block(block);
        }
    }
    state.on_event(&c);
    state.complete = true;
    state.metadata = true;
    let mut facts = state.facts();
    if let Some(tree) = &tree {
        let content = tree
            .get("output")
            .and_then(|o| o.get("message"))
            .map_or(&[][..], |m| json::array(m, "content"));
        let parts = content.iter().map(part).collect();
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

fn stream_parser(_operation: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(ConverseState {
        capture: capture.map(|max| Output {
            blocks: Vec::new(),
            budget: CaptureBudget::new(max),
        }),
        ..ConverseState::default()
    })
}

/// Generated content kept for `--capture-content`: per content block index, its part and
/// its streamed text. Text and reasoning blocks have no `contentBlockStart`: their first
/// delta opens them.
#[derive(Debug)]
struct Output {
    blocks: Vec<(u64, Part<'static>, String)>,
    budget: CaptureBudget,
}

impl Output {
    /// The block at `index`, opened as `part` when new (`None`: the budget is spent).
    fn block(&mut self, index: u64, part: impl FnOnce() -> Part<'static>) -> Option<usize> {
        if let Some(at) = self.blocks.iter().position(|(i, ..)| *i == index) {
            return Some(at);
        }
        let part = self.budget.admit(part())?;
        self.blocks.push((index, part, String::new()));
        Some(self.blocks.len() - 1)
    }

    fn append(&mut self, at: usize, text: &str) {
        let (_, _, acc) = &mut self.blocks[at];
        self.budget.append(acc, text);
    }

    fn parts(&self) -> Vec<Part<'_>> {
        self.blocks
            .iter()
            .map(|(_, part, acc)| match part {
                Part::Text { .. } => Part::Text {
                    content: acc.as_str().into(),
                },
                Part::Reasoning { .. } => Part::Reasoning {
                    content: acc.as_str().into(),
                },
                Part::ToolCall { id, name, .. } => Part::ToolCall {
                    id: id.reborrow(),
                    name: name.reborrow(),
                    arguments: arguments(acc),
                },
                other => other.reborrow(),
            })
            .collect()
    }

    /// A streamed event's content, from its tree.
    fn on_event(&mut self, name: &[u8], tree: &Value) {
        let index = tree
            .get("contentBlockIndex")
            .and_then(Value::as_u64)
            .unwrap_or(0);
        match name {
            b"contentBlockStart" => {
                if let Some(call) = tree.get("start").and_then(|s| s.get("toolUse")) {
                    let part = Part::ToolCall {
                        id: call.get("toolUseId").into(),
                        name: call.get("name").into(),
                        arguments: "".into(),
                    }
                    .into_owned();
                    self.block(index, || part);
                }
            }
            b"contentBlockDelta" => {
                let Some(delta) = tree.get("delta") else {
                    return;
                };
                let text = |v: Option<&Value>| v.and_then(Value::as_str).map(str::to_owned);
                let reasoning = delta.get("reasoningContent");
                let (opened, piece) = if let Some(t) = text(delta.get("text")) {
                    (Part::Text { content: "".into() }, t)
                } else if let Some(t) = text(delta.get("toolUse").and_then(|u| u.get("input"))) {
                    let part = Part::ToolCall {
                        id: Value::Null.into(),
                        name: Value::Null.into(),
                        arguments: "".into(),
                    };
                    (part, t)
                } else if let Some(t) = text(reasoning.and_then(|r| r.get("text"))) {
                    (Part::Reasoning { content: "".into() }, t)
                } else {
                    return;
                };
                if let Some(at) = self.block(index, || opened.into_owned()) {
                    self.append(at, &piece);
                }
            }
            _ => {}
        }
    }
}

/// State of one Converse response, streamed or not.
#[derive(Debug, Default)]
struct ConverseState {
    stop_reason: Option<String>,
    usage: RawUsage,
    tools_called: Vec<String>,
    tool_calls: super::agent::ToolCalls,
    error_type: Option<String>,
    error_status: Option<u16>,
    /// `messageStop` was seen (or the body was whole).
    complete: bool,
    /// `metadata`, the stream's last event, was seen.
    metadata: bool,
    capture: Option<Output>,
}

impl ConverseState {
    fn on_block(&mut self, block: &Block) {
        if let Some(call) = &block.tool_use {
            let name = call.name.as_deref().unwrap_or("toolUse");
            self.tools_called.push(name.to_owned());
            let key = self.tools_called.len() as u64;
            self.tool_calls
                .start(key, call.tool_use_id.as_deref(), name, None);
        }
    }

    fn on_event(&mut self, c: &Converse) {
        if let Some(reason) = &c.stop_reason {
            self.stop_reason = Some(reason.clone());
        }
        if let Some(usage) = &c.usage {
            self.usage = usage.raw();
        }
    }
}

impl StreamParser for ConverseState {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        if let Some((kind, status)) = stream_error(event.name) {
            self.error_type = Some(kind);
            self.error_status = status;
            return Ok(Progress::default());
        }
        let (c, tree) = json::parse::<Converse>(event.data, self.capture.is_some())?;
        let mut progress = Progress::default();
        match event.name {
            b"contentBlockStart" => {
                if let Some(start) = &c.start {
                    self.on_block(start);
                }
            }
            b"contentBlockDelta" => {
                progress.delta = c.delta.as_ref().is_some_and(|d| {
                    d.text.0
                        || d.tool_use.as_ref().is_some_and(|u| u.input.0)
                        || d.reasoning_content.as_ref().is_some_and(|r| r.text.0)
                });
            }
            b"messageStop" => {
                self.on_event(&c);
                self.complete = true;
            }
            b"metadata" => {
                self.on_event(&c);
                self.metadata = true;
            }
            _ => {}
        }
        if let (Some(output), Some(tree)) = (&mut self.capture, &tree) {
            output.on_event(event.name, tree);
        }
        Ok(progress)
    }

    fn facts(&self) -> ResponseFacts {
        let (usage, cache_write_unsplit) = self.usage.normalize();
        let mut facts = ResponseFacts {
            finish_reasons: self.stop_reason.iter().cloned().collect(),
            usage,
            tools_called: self.tools_called.clone(),
            tool_calls: self.tool_calls.calls(),
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.complete,
            cache_write_unsplit,
            ..ResponseFacts::default()
        };
        if let Some(output) = &self.capture {
            facts.output = Some(vec![output_message(output.parts(), &facts)]);
        }
        facts
    }

    /// `metadata`, which carries the usage, is the last event: a stream cut before it is
    /// truncated even after `messageStop`.
    fn terminal(&self) -> bool {
        self.metadata || self.error_type.is_some()
    }
}

#[cfg(test)]
mod tests;
