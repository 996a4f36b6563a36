//! `InvokeModel` / `InvokeModelWithResponseStream`: the model's own request and response
//! bodies, wrapped by Bedrock.
//!
//! Anthropic models (a model id holding `anthropic.`): the request is a Messages request
//! without `model` (with `anthropic_version: "bedrock-2023-05-31"`), the response a Messages
//! body, and each stream `chunk` event carries `{"bytes":"<base64 of one Messages stream event
//! JSON>"}` (API reference: `PayloadPart`; Anthropic's "Claude on Amazon Bedrock"). Those are
//! read by the Anthropic dialect itself ([`crate::dialects::anthropic::MESSAGES`]), not again
//! here. A chunk whose event has a `type` is an Anthropic event, whatever the model.
//!
//! Bedrock adds `amazon-bedrock-invocationMetrics` to a stream's last chunk:
//! `inputTokenCount` (prompt tokens neither read from nor written to the cache, as
//! `inputTokens` in `TokenUsage`), `outputTokenCount`, `cacheReadInputTokenCount`,
//! `cacheWriteInputTokenCount`, `invocationLatency`, `firstByteLatency` (ms, not read). Usage
//! is the Anthropic events' where they give it, and what they leave out comes from these
//! metrics: a cache count the events do not carry is taken from them and added to the input,
//! so cache tokens are never lost (LiteLLM issue 34373 billed such streams without them). A
//! metrics cache write has no TTL: it is counted 5m and left to the request's TTL.
//!
//! Other models: requests are read as `Converse`-shaped bodies (Amazon Nova) with top-level
//! fallbacks (see `request.rs`). Responses and chunks give what is generic or well known: the
//! invocation metrics in streams; Nova's `output.message`, `stopReason` and `usage`
//! (`inputTokens`, `outputTokens`, `cacheRead/WriteInputTokenCount`), and its stream chunks'
//! `messageStop.stopReason`, `metadata.usage` and `contentBlockDelta`; Meta Llama's
//! `prompt_token_count`, `generation_token_count`, `stop_reason` and `generation`; Mistral's
//! `outputs[].stop_reason` and `outputs[].text`; Titan's `completionReason` and `outputText`.
//! Not read: their content for capture, tool calls in their streams, and the usage a
//! non-streamed `InvokeModel` response sends in headers (`X-Amzn-Bedrock-Input-Token-Count`),
//! which dialects do not see; a body without usage (Mistral, Titan) leaves it unknown.

use base64::Engine as _;
use serde::Deserialize;

use super::{
    Converse, OutputField, RawUsage, WireUsage, error_facts, model_from_path, output_message, part,
    request::{self, Body},
    stream_error, streamed,
};
use crate::dialects::{
    Operation, ParseError, Progress, RequestFacts, ResponseFacts, StreamParser, anthropic,
    json::{self, NonEmpty, Object},
    lenient, sse,
};

/// Whether a model id names an Anthropic model (`anthropic.claude-…`, `us.anthropic.…`, an
/// inference profile ARN ending in one).
fn is_anthropic(model: &str) -> bool {
    model.contains("anthropic.")
}

pub(super) fn parse_request(
    operation: Operation,
    path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let model = model_from_path(path);
    if model.as_deref().is_some_and(is_anthropic) {
        let facts = (anthropic::MESSAGES.parse_request)(operation, path, body, capture)?;
        return Ok(RequestFacts {
            model,
            stream: streamed(path),
            ..facts
        });
    }
    let r = lenient::parse(body, Body { capture })?;
    Ok(request::facts(r, path, capture))
}

pub(super) fn parse_response(
    operation: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if let Some(facts) = error_facts(status, body) {
        return Ok(facts);
    }
    let (b, tree) = json::parse::<Invoke>(body, capture)?;
    if b.kind.is_some() {
        return (anthropic::MESSAGES.parse_response)(operation, status, body, capture);
    }
    let mut state = Generic::default();
    state.on_body(&b);
    if let Some(message) = b.output.as_ref().and_then(|o| o.message.as_ref()) {
        for block in &message.content {
            if let Some(call) = &block.tool_use {
                let name = call.name.as_deref().unwrap_or("toolUse");
                state.tools_called.push(name.to_owned());
            }
        }
    }
    let mut facts = state.facts(None);
    facts.complete = true;
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

pub(super) fn stream_parser(operation: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(InvokeStream {
        anthropic: (anthropic::MESSAGES.stream_parser)(operation, capture),
        saw_anthropic: false,
        generic: Generic::default(),
        metrics: None,
        error: None,
    })
}

/// A stream `chunk` event's payload (`PayloadPart`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Chunk {
    #[serde(deserialize_with = "json::lenient")]
    bytes: Option<String>,
}

impl Object for Chunk {}

/// What llmtap reads of a non-Anthropic body or chunk (and, of an Anthropic one, that it is
/// one and its metrics).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Invoke {
    /// An Anthropic body (`message`, `error`) or event (`message_start`, …).
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    #[serde(
        rename = "amazon-bedrock-invocationMetrics",
        deserialize_with = "json::lenient"
    )]
    metrics: Option<Metrics>,
    /// Nova body.
    #[serde(deserialize_with = "json::lenient")]
    output: Option<OutputField>,
    #[serde(rename = "stopReason", deserialize_with = "json::lenient")]
    stop_reason_camel: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
    /// Nova stream chunks: `{"messageStop":{…}}`, `{"metadata":{…}}`, `{"contentBlockDelta":{…}}`.
    #[serde(rename = "messageStop", deserialize_with = "json::lenient")]
    message_stop: Option<Converse>,
    #[serde(deserialize_with = "json::lenient")]
    metadata: Option<Converse>,
    #[serde(rename = "contentBlockDelta", deserialize_with = "json::lenient")]
    content_block_delta: Option<Converse>,
    /// Meta Llama.
    #[serde(deserialize_with = "json::lenient")]
    prompt_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    generation_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    stop_reason: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    generation: NonEmpty,
    /// Mistral.
    #[serde(deserialize_with = "json::lenient")]
    outputs: Vec<MistralOutput>,
    /// Amazon Titan.
    #[serde(rename = "completionReason", deserialize_with = "json::lenient")]
    completion_reason: Option<String>,
    #[serde(rename = "outputText", deserialize_with = "json::lenient")]
    output_text: NonEmpty,
}

impl Object for Invoke {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct MistralOutput {
    #[serde(deserialize_with = "json::lenient")]
    text: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    stop_reason: Option<String>,
}

impl Object for MistralOutput {}

/// `amazon-bedrock-invocationMetrics`.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Metrics {
    #[serde(deserialize_with = "json::lenient")]
    input_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    output_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_read_input_token_count: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    cache_write_input_token_count: Option<u64>,
}

impl Object for Metrics {}

/// A non-Anthropic response, streamed or not.
#[derive(Debug, Default)]
struct Generic {
    stop_reason: Option<String>,
    usage: RawUsage,
    tools_called: Vec<String>,
}

impl Generic {
    /// Reads a body or chunk; returns whether it carried generated text.
    fn on_body(&mut self, b: &Invoke) -> bool {
        let set = |slot: &mut Option<u64>, v: Option<u64>| {
            if v.is_some() {
                *slot = v;
            }
        };
        let usage = b
            .usage
            .as_ref()
            .or_else(|| b.metadata.as_ref()?.usage.as_ref());
        if let Some(usage) = usage {
            self.usage = usage.raw();
        }
        set(&mut self.usage.input, b.prompt_token_count);
        set(&mut self.usage.output, b.generation_token_count);
        let reason = b
            .stop_reason_camel
            .clone()
            .or_else(|| b.message_stop.as_ref()?.stop_reason.clone())
            .or_else(|| b.stop_reason.clone())
            .or_else(|| b.outputs.iter().find_map(|o| o.stop_reason.clone()))
            .or_else(|| b.completion_reason.clone());
        if reason.is_some() {
            self.stop_reason = reason;
        }
        b.generation.0
            || b.output_text.0
            || b.outputs.iter().any(|o| o.text.0)
            || b.content_block_delta.as_ref().is_some_and(|c| {
                c.delta.as_ref().is_some_and(|d| {
                    d.text.0
                        || d.tool_use.as_ref().is_some_and(|u| u.input.0)
                        || d.reasoning_content.as_ref().is_some_and(|r| r.text.0)
                })
            })
    }

    /// The facts, counts the chunks left out filled from the invocation metrics.
    fn facts(&self, metrics: Option<&Metrics>) -> ResponseFacts {
        let mut raw = self.usage.clone();
        if let Some(m) = metrics {
            raw.input = raw.input.or(m.input_token_count);
            raw.output = raw.output.or(m.output_token_count);
            raw.cache_read = raw.cache_read.or(m.cache_read_input_token_count);
            raw.cache_write = raw.cache_write.or(m.cache_write_input_token_count);
        }
        let (usage, cache_write_unsplit) = raw.normalize();
        ResponseFacts {
            finish_reasons: self.stop_reason.iter().cloned().collect(),
            usage,
            tools_called: self.tools_called.clone(),
            complete: self.stop_reason.is_some() || metrics.is_some(),
            cache_write_unsplit,
            ..ResponseFacts::default()
        }
    }
}

/// An `InvokeModelWithResponseStream` response.
struct InvokeStream {
    /// The Anthropic Messages parser the decoded Anthropic events go to.
    anthropic: Box<dyn StreamParser>,
    saw_anthropic: bool,
    generic: Generic,
    /// The last chunk's `amazon-bedrock-invocationMetrics`.
    metrics: Option<Metrics>,
    /// An exception or error message: its type and status.
    error: Option<(String, Option<u16>)>,
}

impl StreamParser for InvokeStream {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        if let Some(error) = stream_error(event.name) {
            self.error = Some(error);
            return Ok(Progress::default());
        }
        if event.name != b"chunk" {
            return Ok(Progress::default());
        }
        let chunk = json::read::<Chunk>(event.data)?;
        let Some(encoded) = chunk.bytes else {
            return Ok(Progress::default());
        };
        // Not base64 is no event: counted as one that is not JSON.
        let inner = base64::engine::general_purpose::STANDARD
            .decode(encoded)
            .map_err(|_| ParseError::InvalidJson)?;
        let b = json::read::<Invoke>(&inner)?;
        if b.metrics.is_some() {
            self.metrics = b.metrics;
        }
        match &b.kind {
            Some(kind) => {
                self.saw_anthropic = true;
                self.anthropic.on_event(&sse::Event {
                    name: kind.as_bytes(),
                    data: &inner,
                })
            }
            None => Ok(Progress {
                delta: self.generic.on_body(&b),
            }),
        }
    }

    fn facts(&self) -> ResponseFacts {
        let mut facts = if self.saw_anthropic {
            let mut facts = self.anthropic.facts();
            if let Some(m) = &self.metrics {
                fill_from_metrics(&mut facts, m);
            }
            facts
        } else {
            self.generic.facts(self.metrics.as_ref())
        };
        if let Some((kind, status)) = &self.error {
            facts.error_type = Some(kind.clone());
            facts.error_status = *status;
        }
        facts
    }

    /// The chunk with the invocation metrics is the last; an Anthropic stream also ends at
    /// its `message_stop` (which carries them) or `error`.
    fn terminal(&self) -> bool {
        self.metrics.is_some() || self.error.is_some() || self.anthropic.terminal()
    }
}

/// The usage an Anthropic stream's events left out, from the invocation metrics: cache reads
/// and writes the events did not report (added to the input, which counts them), and input
/// or output when the events gave none.
fn fill_from_metrics(facts: &mut ResponseFacts, m: &Metrics) {
    let u = &mut facts.usage;
    let mut added = 0_u64;
    if u.cache_read.is_none()
        && let Some(read) = m.cache_read_input_token_count
    {
        u.cache_read = Some(read);
        added = added.saturating_add(read);
    }
    if u.cache_write_5m.is_none()
        && u.cache_write_1h.is_none()
        && let Some(write) = m.cache_write_input_token_count
    {
        u.cache_write_5m = Some(write);
        u.cache_write_1h = Some(0);
        facts.cache_write_unsplit = facts.cache_write_unsplit.saturating_add(write);
        added = added.saturating_add(write);
    }
    u.input = match u.input {
        Some(input) => Some(input.saturating_add(added)),
        None => m.input_token_count.map(|i| {
            i.saturating_add(u.cache_read.unwrap_or(0))
                .saturating_add(u.cache_write_5m.unwrap_or(0))
                .saturating_add(u.cache_write_1h.unwrap_or(0))
        }),
    };
    u.output = u.output.or(m.output_token_count);
}
