//! OpenAI Chat Completions: `POST /v1/chat/completions`, streamed (`data: {chunk}` …
//! `data: [DONE]`) or JSON.
//!
//! Usage arrives only when the client asked for it (`stream_options.include_usage`, final
//! chunk with empty `choices`); without it the call has no usage, which is recorded as
//! missing, never as zero, and llmtap never rewrites the request to ask for it.
//! `prompt_tokens` already includes `prompt_tokens_details.cached_tokens`;
//! `completion_tokens` includes `completion_tokens_details.reasoning_tokens`.
//!
//! This file reads responses (chunks and bodies) with the typed structs of [`super::json`];
//! requests are read in `openai_chat/request.rs`.

use serde::{Deserialize, de::IgnoredAny};
use serde_json::Value;

use super::{
    Dialect, Framing, Operation, ParseError, Progress, ResponseFacts, StreamParser, Target, Usage,
    agent,
    content::{CaptureBudget, OutputMessage, Part, arguments, to_value},
    error_response,
    json::{self, NonEmpty, Object, Present},
    sse,
};

mod request;

/// OpenAI Chat Completions: `POST …/chat/completions` (`/v1` on OpenAI; the prefix is the
/// provider table's), and every compatible API: Azure OpenAI, the Gemini API's OpenAI layer,
/// OpenRouter, DeepSeek, Groq, xAI, Mistral, …
pub const CHAT_COMPLETIONS: Dialect = Dialect {
    name: "openai_chat_completions",
    detect,
    parse_request: request::parse_request,
    parse_response,
    stream_parser,
    max_event: 512 << 10,
};

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    (t.method == "POST" && !t.websocket && t.path.trim_end_matches('/') == "/chat/completions")
        .then_some((Operation::Chat, Framing::Json))
}

fn text_of(content: Option<&Value>) -> String {
    match content {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join(""),
        _ => String::new(),
    }
}

/// A tool call's body and the key of its input: a function call's `function` and
/// `arguments`, a custom tool call's `custom` and `input`.
fn call_body(call: &Value) -> (Option<&Value>, &'static str) {
    match call.get("function") {
        Some(f) => (Some(f), "arguments"),
        None => (call.get("custom"), "input"),
    }
}

/// A chunk, or a whole `chat.completion` body (API reference: "The chat completion object",
/// "The chat completion chunk object").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Chunk {
    #[serde(deserialize_with = "json::lenient")]
    id: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    model: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
    #[serde(deserialize_with = "json::lenient")]
    service_tier: Option<String>,
    /// The backend configuration that served the request (`system_fingerprint`).
    #[serde(deserialize_with = "json::lenient")]
    system_fingerprint: Option<String>,
    /// Present and not `null`: the chunk is an error (compatible servers send `null` on every
    /// chunk).
    #[serde(deserialize_with = "json::lenient")]
    error: Option<Present<WireError>>,
    #[serde(deserialize_with = "json::lenient")]
    choices: Vec<WireChoice>,
    /// Groq's extension: a stream's usage in the last chunk's `x_groq.usage` (Groq API
    /// reference, "Chat completions", streaming).
    #[serde(deserialize_with = "json::lenient")]
    x_groq: Option<XGroq>,
}

impl Object for Chunk {}

/// Groq's `x_groq` object.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct XGroq {
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
}

impl Object for XGroq {}

impl Chunk {
    /// The error the chunk or body is: `error` present and not `null` (of another type than an
    /// object, an error with no fields).
    fn error(&self) -> Option<WireError> {
        match self.error.as_ref()? {
            Present::Null => None,
            Present::Object(e) => Some(e.clone()),
            Present::Other => Some(WireError::default()),
        }
    }
}

/// One choice of a chunk (its `delta`) or of a body (its `message`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireChoice {
    #[serde(deserialize_with = "json::lenient")]
    index: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    finish_reason: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    delta: Option<Delta>,
    #[serde(deserialize_with = "json::lenient")]
    message: Option<Delta>,
    /// Moonshot (Kimi) puts a stream's usage in the last chunk's choice (Moonshot API
    /// reference, "Chat Completion", streaming).
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
}

impl Object for WireChoice {}

/// A chunk's `delta` or a body's `message`: which kinds of content it carries (the text itself
/// is read only when captured) and its tool calls.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Delta {
    /// An object: audio (transcript or data) was generated.
    #[serde(deserialize_with = "json::lenient")]
    audio: Option<IgnoredAny>,
    #[serde(deserialize_with = "json::lenient")]
    content: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    reasoning_content: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    refusal: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    tool_calls: Vec<WireToolCall>,
}

impl Object for Delta {}

/// One entry of `tool_calls`: a function call, or a custom tool call (`custom`) when it has no
/// `function` key.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireToolCall {
    #[serde(deserialize_with = "json::lenient")]
    index: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    id: Option<String>,
    /// Present with any value: it is the call's body, even when not an object.
    #[serde(deserialize_with = "json::lenient")]
    function: Option<Present<Named>>,
    #[serde(deserialize_with = "json::lenient")]
    custom: Option<Named>,
}

impl Object for WireToolCall {}

impl WireToolCall {
    /// The arguments' text (or the piece of it) in the call's body.
    fn arguments(&self) -> Option<&str> {
        match &self.function {
            Some(f) => f.object(),
            None => self.custom.as_ref(),
        }
        .and_then(|f| f.arguments.as_deref())
    }

    /// The tool's name, from the call's body.
    fn name(&self) -> Option<&str> {
        match &self.function {
            Some(f) => f.object(),
            None => self.custom.as_ref(),
        }
        .and_then(|f| f.name.as_deref())
    }
}

/// An object's `name`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    #[serde(deserialize_with = "json::lenient")]
    name: Option<String>,
    /// `function.arguments` (a piece of it when streamed): read only for a subagent tool's
    /// name ([`agent::SUBAGENT_TOOLS`]).
    #[serde(deserialize_with = "json::lenient")]
    arguments: Option<String>,
}

impl Object for Named {}

/// `usage` (API reference: "The chat completion object", `usage`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    #[serde(deserialize_with = "json::lenient")]
    prompt_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    completion_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    total_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    prompt_tokens_details: Option<PromptDetails>,
    #[serde(deserialize_with = "json::lenient")]
    completion_tokens_details: Option<CompletionDetails>,
    /// DeepSeek: prompt tokens read from its context cache (API docs, "Context Caching":
    /// `prompt_tokens` = `prompt_cache_hit_tokens` + `prompt_cache_miss_tokens`).
    #[serde(deserialize_with = "json::lenient")]
    prompt_cache_hit_tokens: Option<u64>,
    /// DeepSeek: prompt tokens not read from cache.
    #[serde(deserialize_with = "json::lenient")]
    prompt_cache_miss_tokens: Option<u64>,
    /// Moonshot (Kimi): prompt tokens read from its context cache, at the top level of
    /// `usage` (Moonshot API reference, "Chat Completion", `usage.cached_tokens`).
    #[serde(deserialize_with = "json::lenient")]
    cached_tokens: Option<u64>,
    /// OpenRouter: what the call was billed, in USD (OpenRouter docs, "Usage Accounting":
    /// `usage.cost`, credits at 1 credit = 1 USD).
    #[serde(deserialize_with = "json::lenient")]
    cost: Option<f64>,
    /// OpenRouter: the call ran on the user's own provider key ("BYOK"): `cost` is then only
    /// OpenRouter's fee, and the provider's charge is `cost_details.upstream_inference_cost`.
    #[serde(deserialize_with = "json::lenient")]
    is_byok: Option<bool>,
    #[serde(deserialize_with = "json::lenient")]
    cost_details: Option<CostDetails>,
}

impl Object for WireUsage {}

/// OpenRouter's `usage.cost_details`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CostDetails {
    #[serde(deserialize_with = "json::lenient")]
    upstream_inference_cost: Option<f64>,
}

impl Object for CostDetails {}

/// Largest billed cost believed for one call, in USD: far above any real call, so that a
/// hostile or broken `usage.cost` cannot ruin `llmtap_cost_usd_total` for good.
const MAX_BILLED_USD: f64 = 10_000.0;

impl WireUsage {
    /// What the call was billed in USD: OpenRouter's `cost`, plus the provider's own charge
    /// for a BYOK call; `None` when absent, not a number, negative or implausibly large.
    fn billed(&self) -> Option<f64> {
        let valid = |c: f64| (c.is_finite() && (0.0..=MAX_BILLED_USD).contains(&c)).then_some(c);
        let fee = valid(self.cost?)?;
        if self.is_byok == Some(true) {
            let upstream = self.cost_details.as_ref()?.upstream_inference_cost;
            return valid(fee + valid(upstream?)?);
        }
        Some(fee)
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct PromptDetails {
    #[serde(deserialize_with = "json::lenient")]
    cached_tokens: Option<u64>,
}

impl Object for PromptDetails {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CompletionDetails {
    #[serde(deserialize_with = "json::lenient")]
    reasoning_tokens: Option<u64>,
}

impl Object for CompletionDetails {}

impl WireUsage {
    fn usage(&self) -> Usage {
        let deepseek = match (self.prompt_cache_hit_tokens, self.prompt_cache_miss_tokens) {
            (Some(hit), Some(miss)) => Some(hit.saturating_add(miss)),
            _ => None,
        };
        let input = self.prompt_tokens.or(deepseek);
        let reasoning = self
            .completion_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens);
        Usage {
            input,
            output: super::output_tokens(
                input,
                self.completion_tokens,
                reasoning,
                self.total_tokens,
            ),
            cache_read: self
                .prompt_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens)
                .or(self.prompt_cache_hit_tokens)
                .or(self.cached_tokens),
            cache_write_5m: None,
            cache_write_1h: None,
            reasoning,
        }
    }
}

/// An error object (OpenAI's error envelope; compatible servers put the HTTP status in
/// `status` or `code`).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(default)]
struct WireError {
    /// A string (`rate_limit_exceeded`), or a status (`429`, `"429"`) from compatible servers.
    #[serde(deserialize_with = "json::lenient")]
    code: Option<Value>,
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    status: Option<Value>,
}

impl Object for WireError {}

impl WireError {
    /// `code` when a string, else `type`, else `error`.
    fn error_type(&self) -> String {
        self.code
            .as_ref()
            .and_then(Value::as_str)
            .or(self.kind.as_deref())
            .unwrap_or("error")
            .to_owned()
    }

    /// The HTTP status it stands for: its numeric `status`, else `code` (a number or a numeric
    /// string), when one.
    fn status(&self) -> Option<u16> {
        let n = |v: &Option<Value>| {
            v.as_ref()
                .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
        };
        let status = n(&self.status).or_else(|| n(&self.code))?;
        u16::try_from(status)
            .ok()
            .filter(|c| (100..600).contains(c))
    }
}

fn parse_response(
    _op: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if let Some(facts) = error_response(status, body, |c: Chunk| Some(c.error()?.error_type())) {
        return Ok(facts);
    }
    let (v, tree) = json::parse::<Chunk>(body, capture)?;
    if let Some(e) = v.error() {
        return Ok(ResponseFacts {
            error_type: Some(e.error_type()),
            error_status: e.status(),
            ..ResponseFacts::default()
        });
    }
    let mut state = Chat::default();
    state.on_chunk_meta(&v);
    let raw = tree.as_ref().map(|t| json::array(t, "choices"));
    for (at, choice) in v.choices.iter().enumerate() {
        let raw = raw.and_then(|r| r.get(at));
        let index = choice.index.unwrap_or(0) as usize;
        let slot = slot(&mut state.choices, index);
        if let Some(m) = &choice.message {
            let raw = raw.and_then(|c| c.get("message"));
            let raw_calls = raw.map(|m| json::array(m, "tool_calls"));
            for (i, call) in m.tool_calls.iter().enumerate() {
                let arguments = raw_calls.and_then(|c| c.get(i)).and_then(|call| {
                    let (f, arguments) = call_body(call);
                    f?.get(arguments)?.as_str()
                });
                let name = call.name().unwrap_or_default();
                let scan = agent::ArgScan::for_tool(name).map(|mut scan| {
                    scan.push(call.arguments().unwrap_or_default());
                    scan
                });
                slot.calls.push(ToolCall {
                    id: call.id.clone(),
                    name: name.to_owned(),
                    arguments: arguments.unwrap_or_default().to_owned(),
                    kept: true,
                    scan,
                });
            }
        }
        // Any `message` (even one that is not an object) sets the text, as the body says it.
        if let Some(m) = raw.and_then(|c| c.get("message")) {
            slot.text = text_of(m.get("content"));
            slot.text_kept = !slot.text.is_empty();
        }
        slot.finish = choice.finish_reason.clone();
    }
    state.complete = true;
    if capture {
        state.capture = Some(CaptureBudget::unlimited());
    }
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Chat {
        capture: capture.map(CaptureBudget::new),
        ..Chat::default()
    })
}

#[derive(Debug, Default)]
struct ToolCall {
    id: Option<String>,
    name: String,
    arguments: String,
    /// Admitted by the capture budget: exported as a part.
    kept: bool,
    /// A subagent tool's arguments, searched for its name as they stream.
    scan: Option<agent::ArgScan>,
}

#[derive(Debug, Default)]
struct Choice {
    finish: Option<String>,
    calls: Vec<ToolCall>,
    text: String,
    /// The text part was admitted by the capture budget: exported.
    text_kept: bool,
}

/// Whether a part that begins now is admitted by the capture budget (none without capture).
fn admitted(budget: &mut Option<CaptureBudget>, part: Part<'_>) -> bool {
    budget.as_mut().is_some_and(|b| b.admit(part).is_some())
}

#[derive(Debug, Default)]
struct Chat {
    model: Option<String>,
    id: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
    /// What the provider says it billed (OpenRouter `usage.cost`).
    billed_usd: Option<f64>,
    error_type: Option<String>,
    error_status: Option<u16>,
    service_tier: Option<String>,
    system_fingerprint: Option<String>,
    complete: bool,
    /// What captured content may still take; `None` when content is not captured.
    capture: Option<CaptureBudget>,
}

/// The slot for choice `index`. Indexes are small (n ≤ 128); a hostile index must not
/// allocate without bound.
fn slot(choices: &mut Vec<Choice>, index: usize) -> &mut Choice {
    let index = index.min(127);
    if choices.len() <= index {
        choices.resize_with(index + 1, Choice::default);
    }
    &mut choices[index]
}

impl Chat {
    fn on_chunk_meta(&mut self, v: &Chunk) {
        // Azure OpenAI's first chunk (`prompt_filter_results`, no choices) names no model
        // (`""`) and no id: it must not replace what the other chunks say.
        if let Some(model) = v.model.as_ref().filter(|m| !m.is_empty()) {
            self.model = Some(model.clone());
        }
        if let Some(id) = v.id.as_ref().filter(|id| !id.is_empty()) {
            self.id = Some(id.clone());
        }
        let extension = v.x_groq.as_ref().and_then(|x| x.usage.as_ref());
        let in_choice = v.choices.iter().find_map(|c| c.usage.as_ref());
        if let Some(u) = v.usage.as_ref().or(extension).or(in_choice) {
            self.usage = Some(u.usage());
            self.billed_usd = u.billed();
        }
        if let Some(tier) = &v.service_tier {
            self.service_tier = Some(tier.clone());
        }
        if let Some(fingerprint) = v.system_fingerprint.as_ref().filter(|f| f.len() <= 64) {
            self.system_fingerprint = Some(fingerprint.clone());
        }
    }
}

impl StreamParser for Chat {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        if event.data == b"[DONE]" {
            self.complete = true;
            return Ok(Progress::default());
        }
        let (v, tree) = json::parse::<Chunk>(event.data, self.capture.is_some())?;
        if let Some(e) = v.error() {
            self.error_type = Some(e.error_type());
            self.error_status = e.status();
            return Ok(Progress::default());
        }
        self.on_chunk_meta(&v);
        let mut progress = Progress::default();
        let Chat {
            choices,
            capture: budget,
            ..
        } = self;
        let raw = tree.as_ref().map(|t| json::array(t, "choices"));
        for (at, choice) in v.choices.iter().enumerate() {
            let index = choice.index.unwrap_or(0) as usize;
            let slot = slot(choices, index);
            if let Some(reason) = &choice.finish_reason {
                slot.finish = Some(reason.clone());
            }
            let Some(delta) = &choice.delta else {
                continue;
            };
            // Captured text comes from the event's tree, which exists only with capture.
            let raw = raw.and_then(|r| r.get(at)?.get("delta"));
            if delta.audio.is_some() {
                progress.delta = true;
            }
            if delta.content.0 || delta.reasoning_content.0 || delta.refusal.0 {
                progress.delta = true;
            }
            if let Some(text) = raw.and_then(|d| d.get("content")?.as_str()) {
                if !slot.text_kept && !text.is_empty() {
                    let part = Part::Text { content: "".into() };
                    slot.text_kept = admitted(budget, part);
                }
                if let (Some(budget), true) = (budget.as_mut(), slot.text_kept) {
                    budget.append(&mut slot.text, text);
                }
            }
            let raw_calls = raw.map(|d| json::array(d, "tool_calls"));
            for (i, call) in delta.tool_calls.iter().enumerate() {
                progress.delta = true;
                let at = call.index.unwrap_or(0).min(127) as usize;
                if slot.calls.len() <= at {
                    // Charged its structure with an empty id and name, which it may not keep.
                    let structure = || Part::ToolCall {
                        id: "".into(),
                        name: "".into(),
                        arguments: "".into(),
                    };
                    slot.calls.resize_with(at + 1, || ToolCall {
                        kept: admitted(budget, structure()),
                        ..ToolCall::default()
                    });
                }
                let entry = &mut slot.calls[at];
                if let Some(id) = &call.id {
                    entry.id = Some(id.clone());
                }
                if let Some(name) = call.name() {
                    entry.name.push_str(name);
                }
                if let Some(piece) = call.arguments() {
                    if entry.scan.is_none() {
                        entry.scan = agent::ArgScan::for_tool(&entry.name);
                    }
                    if let Some(scan) = &mut entry.scan {
                        scan.push(piece);
                    }
                }
                let arguments = raw_calls.and_then(|c| c.get(i)).and_then(|call| {
                    let (f, arguments) = call_body(call);
                    f?.get(arguments)?.as_str()
                });
                if let (Some(budget), Some(args), true) = (budget.as_mut(), arguments, entry.kept) {
                    budget.append(&mut entry.arguments, args);
                }
            }
        }
        Ok(progress)
    }

    fn facts(&self) -> ResponseFacts {
        let output = self.capture.as_ref().map(|_| {
            self.choices
                .iter()
                .map(|c| {
                    let mut parts = Vec::new();
                    if c.text_kept {
                        parts.push(Part::Text {
                            content: c.text.as_str().into(),
                        });
                    }
                    for call in c.calls.iter().filter(|call| call.kept) {
                        parts.push(Part::ToolCall {
                            id: call.id.as_deref().into(),
                            name: call.name.as_str().into(),
                            arguments: arguments(&call.arguments),
                        });
                    }
                    to_value(OutputMessage::assistant(parts, c.finish.as_deref()))
                })
                .collect()
        });
        ResponseFacts {
            model: self.model.clone(),
            id: self.id.clone(),
            finish_reasons: self
                .choices
                .iter()
                .filter_map(|c| c.finish.clone())
                .collect(),
            usage: self.usage.clone().unwrap_or_default(),
            tools_called: self
                .choices
                .iter()
                .flat_map(|c| c.calls.iter().map(|t| t.name.clone()))
                .filter(|n| !n.is_empty())
                .collect(),
            tool_calls: self
                .choices
                .iter()
                .flat_map(|c| &c.calls)
                .filter(|t| !t.name.is_empty())
                .take(agent::MAX_TOOL_IDS)
                .map(|t| {
                    let subagent = t.scan.as_ref().and_then(agent::ArgScan::finish);
                    agent::tool_call(t.id.as_deref(), &t.name, subagent)
                })
                .collect(),
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.complete,
            service_tier: self.service_tier.clone(),
            system_fingerprint: self.system_fingerprint.clone(),
            billed_usd: self.billed_usd,
            ratelimits: None,
            cache_write_unsplit: 0,
            output,
        }
    }

    fn terminal(&self) -> bool {
        self.complete || self.error_type.is_some()
    }
}

#[cfg(test)]
mod tests;
