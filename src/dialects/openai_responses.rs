//! OpenAI Responses: `POST /v1/responses` (SSE with `event:` + `data:`, or JSON), the same
//! at `chatgpt.com/backend-api/codex/responses` (Codex signed in with ChatGPT), and the
//! WebSocket form Codex CLI uses by default (`GET /v1/responses` + upgrade), whose frames are
//! the same JSON objects as the SSE `data:` lines.
//!
//! Usage comes with the terminal event (`response.completed` | `response.failed` |
//! `response.incomplete`): `input_tokens` includes `input_tokens_details.cached_tokens`,
//! `output_tokens` includes `output_tokens_details.reasoning_tokens`.
//!
//! This file reads responses (events, socket frames and bodies) with the typed structs of
//! [`super::json`]; requests are read in `openai_responses/request.rs`.

use serde::Deserialize;
use serde_json::Value;

use super::{
    Dialect, Framing, Operation, ParseError, Progress, ResponseFacts, StreamParser, Target, Usage,
    agent,
    content::{CaptureBudget, OutputMessage, Part, arguments, to_value},
    error_response,
    json::{self, Object, Present},
    sse,
};

mod request;

/// OpenAI Responses: `POST /v1/responses` (SSE) and the `wss://…/v1/responses` socket.
pub const RESPONSES: Dialect = Dialect {
    name: "openai_responses",
    detect,
    parse_request: request::parse_request,
    parse_response,
    stream_parser,
    max_event: 16 << 20,
};

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    let path = t.path.trim_end_matches('/');
    let wanted = if t.websocket { "GET" } else { "POST" };
    // `/responses/compact`: Codex's remote compaction, a JSON body whose `output` replaces
    // the conversation (openai/codex `codex-rs/codex-api`, `compact`).
    let compact = path == "/responses/compact" && !t.websocket;
    (t.method == wanted && (path == "/responses" || compact))
        .then_some((Operation::Chat, Framing::Json))
}

/// Message content as parts: a string is one text part.
fn text_parts(content: Option<&Value>) -> Vec<Part<'_>> {
    match content {
        Some(Value::String(s)) => vec![Part::Text { content: s.into() }],
        Some(Value::Array(parts)) => parts.iter().map(text_part).collect(),
        _ => Vec::new(),
    }
}

/// One part of a content array: its `text`, else its type alone (a refusal, an image, …).
fn text_part(p: &Value) -> Part<'_> {
    match p.get("text").and_then(Value::as_str) {
        Some(text) => Part::Text {
            content: text.into(),
        },
        None => Part::Other {
            kind: p.get("type").into(),
        },
    }
}

/// A reasoning item's summary as reasoning parts.
fn summary_parts(item: &Value) -> Vec<Part<'_>> {
    json::array(item, "summary")
        .iter()
        .map(|p| Part::Reasoning {
            content: p.get("text").into(),
        })
        .collect()
}

fn parse_response(
    _op: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if let Some(facts) = error_response(status, body, |b: ErrorBody| b.error?.error_type()) {
        return Ok(facts);
    }
    let (r, tree) = json::parse::<Response>(body, capture)?;
    let mut state = Responses {
        capture: capture.then(CaptureBudget::unlimited),
        ..Responses::default()
    };
    state.on_response(&r, tree.as_ref(), true);
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Responses {
        capture: capture.map(CaptureBudget::new),
        ..Responses::default()
    })
}

/// An error body: `{"error":{…}}` (API reference: "Error codes").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct ErrorBody {
    #[serde(deserialize_with = "json::lenient")]
    error: Option<WireError>,
}

impl Object for ErrorBody {}

/// An error object: `code` and `type` (OpenAI's error envelope, whose `code` is `null` for
/// many errors: a 500's `server_error`, most 400s).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireError {
    #[serde(deserialize_with = "json::lenient")]
    code: Option<String>,
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
}

impl Object for WireError {}

impl WireError {
    /// `code` when a string, else `type` (as Chat Completions reads the same envelope).
    fn error_type(&self) -> Option<String> {
        self.code.clone().or_else(|| self.kind.clone())
    }
}

/// One server-sent event, or WebSocket message (API reference: "Streaming events").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Event {
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    /// `response.created`, `.in_progress`, `.completed`, `.failed`, `.incomplete`: present
    /// with any value it is the response (one that is not an object says nothing but its end).
    #[serde(deserialize_with = "json::lenient")]
    response: Option<Present<Response>>,
    /// `response.output_item.added`, `.done`.
    #[serde(deserialize_with = "json::lenient")]
    item: Option<OutputItem>,
    /// `codex.rate_limits` (Codex's socket event): `{"primary": {…}, "secondary": {…}}`.
    #[serde(deserialize_with = "json::lenient")]
    rate_limits: Option<CodexLimits>,
    /// `response.output_item.added`, `.done`: the item's position in the output.
    #[serde(deserialize_with = "json::lenient")]
    output_index: Option<u64>,
    /// `error`: its code (`null` for some).
    #[serde(deserialize_with = "json::lenient")]
    code: Option<String>,
    /// `error` (a socket's error frame): the error object, and the HTTP status it stands for.
    #[serde(deserialize_with = "json::lenient")]
    error: Option<WireError>,
    #[serde(deserialize_with = "json::lenient")]
    status: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    status_code: Option<u64>,
}

impl Object for Event {}

/// A response object (API reference: "The response object").
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Response {
    #[serde(deserialize_with = "json::lenient")]
    id: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    model: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    service_tier: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    status: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    incomplete_details: Option<IncompleteDetails>,
    #[serde(deserialize_with = "json::lenient")]
    error: Option<WireError>,
    #[serde(deserialize_with = "json::lenient")]
    usage: Option<WireUsage>,
    #[serde(deserialize_with = "json::lenient")]
    output: Vec<OutputItem>,
}

impl Object for Response {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct IncompleteDetails {
    #[serde(deserialize_with = "json::lenient")]
    reason: Option<String>,
}

impl Object for IncompleteDetails {}

/// An output item: its type and, for a named tool call, the tool's name.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutputItem {
    #[serde(rename = "type", deserialize_with = "json::lenient")]
    kind: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    name: Option<String>,
    /// A tool call's id, which its `*_call_output` item names.
    #[serde(deserialize_with = "json::lenient")]
    call_id: Option<String>,
    /// A function call's arguments (whole once the item is done): read only for a subagent
    /// tool's name ([`agent::SUBAGENT_TOOLS`]).
    #[serde(deserialize_with = "json::lenient")]
    arguments: Option<String>,
}

impl Object for OutputItem {}

/// `usage` (API reference: "The response object", `usage`).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireUsage {
    #[serde(deserialize_with = "json::lenient")]
    input_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    output_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    total_tokens: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    input_tokens_details: Option<InputDetails>,
    #[serde(deserialize_with = "json::lenient")]
    output_tokens_details: Option<OutputDetails>,
}

impl Object for WireUsage {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct InputDetails {
    #[serde(deserialize_with = "json::lenient")]
    cached_tokens: Option<u64>,
}

impl Object for InputDetails {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct OutputDetails {
    #[serde(deserialize_with = "json::lenient")]
    reasoning_tokens: Option<u64>,
}

impl Object for OutputDetails {}

impl WireUsage {
    fn usage(&self) -> Usage {
        let reasoning = self
            .output_tokens_details
            .as_ref()
            .and_then(|d| d.reasoning_tokens);
        Usage {
            input: self.input_tokens,
            output: super::output_tokens(
                self.input_tokens,
                self.output_tokens,
                reasoning,
                self.total_tokens,
            ),
            cache_read: self
                .input_tokens_details
                .as_ref()
                .and_then(|d| d.cached_tokens),
            cache_write_5m: None,
            cache_write_1h: None,
            reasoning,
        }
    }
}

/// The `rate_limits` of Codex's `codex.rate_limits` event (openai/codex
/// `codex-rs/codex-api`, the socket's rate-limit event): two plan windows.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodexLimits {
    #[serde(deserialize_with = "json::lenient")]
    primary: Option<CodexWindow>,
    #[serde(deserialize_with = "json::lenient")]
    secondary: Option<CodexWindow>,
}

impl Object for CodexLimits {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct CodexWindow {
    #[serde(deserialize_with = "json::lenient")]
    used_percent: Option<f64>,
    #[serde(deserialize_with = "json::lenient")]
    window_minutes: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    reset_at: Option<u64>,
}

impl Object for CodexWindow {}

#[derive(Debug, Default)]
struct Responses {
    model: Option<String>,
    id: Option<String>,
    finish: Option<String>,
    usage: Option<Usage>,
    tools_called: Vec<String>,
    tool_calls: agent::ToolCalls,
    ratelimits: Option<super::ratelimits::RateLimits>,
    error_type: Option<String>,
    error_status: Option<u16>,
    service_tier: Option<String>,
    complete: bool,
    /// The budget each terminal response's output starts with; `None` without capture.
    capture: Option<CaptureBudget>,
    output: Option<Vec<Value>>,
}

impl Responses {
    /// A response object: from `response.created`, the terminal events, or a JSON body. `tree`
    /// is the object's JSON, with capture.
    fn on_response(&mut self, r: &Response, tree: Option<&Value>, terminal: bool) {
        if let Some(id) = &r.id {
            self.id = Some(id.clone());
        }
        if let Some(tier) = &r.service_tier {
            self.service_tier = Some(tier.clone());
        }
        if let Some(model) = &r.model {
            self.model = Some(model.clone());
        }
        if !terminal {
            return;
        }
        self.complete = true;
        if let Some(u) = &r.usage {
            self.usage = Some(u.usage());
        }
        let status = r.status.as_deref();
        self.finish = match status {
            Some("incomplete") => r
                .incomplete_details
                .as_ref()
                .and_then(|d| d.reason.as_deref())
                .or(status)
                .map(str::to_owned),
            other => other.map(str::to_owned),
        };
        if status == Some("failed") {
            let error_type = r.error.as_ref().and_then(WireError::error_type);
            self.error_type = Some(error_type.unwrap_or_else(|| "failed".to_owned()));
        }
        // A JSON body carries its items only here; streams announced them as they came.
        if self.tools_called.is_empty() {
            (0..)
                .zip(&r.output)
                .for_each(|(at, item)| self.on_item(at, item));
        }
        if let Some(budget) = &self.capture {
            let mut budget = budget.clone();
            let items = tree.map_or(&[][..], |t| json::array(t, "output"));
            let parts = items
                .iter()
                .flat_map(output_parts)
                .map_while(|part| budget.admit(part))
                .collect();
            let finish = self.finish.as_deref();
            self.output = Some(vec![to_value(OutputMessage::assistant(parts, finish))]);
        }
    }

    /// An output item at `at` in the output: announced (`output_item.added`) or whole (a
    /// body's).
    fn on_item(&mut self, at: u64, item: &OutputItem) {
        let kind = item.kind.as_deref().unwrap_or_default();
        if let Some(name) = tool_called(kind, item) {
            self.tools_called.push(name.to_owned());
            // A call the client runs has a `call_id` its `*_call_output` answers (function,
            // custom, local shell, computer calls); built-in tools run on OpenAI's side.
            if let Some(call_id) = &item.call_id {
                self.tool_calls.start(at, Some(call_id), name, None);
                if let Some(args) = &item.arguments {
                    self.tool_calls.args(at, args);
                }
            }
        }
    }
}

/// The tool an output item calls, by rule rather than by list: every item type the
/// Responses API defines for a tool call ends in `_call` (`function_call`,
/// `custom_tool_call`, `mcp_call`, `web_search_call`, `file_search_call`,
/// `code_interpreter_call`, `image_generation_call`, `computer_call`, `shell_call`,
/// `local_shell_call`, `apply_patch_call`, …), and none that is not (outputs end in
/// `_output`). Named calls go by their `name`; built-in tools, which have none, by their
/// type without `_call` (`web_search`), the name under which they are offered.
fn tool_called<'a>(kind: &'a str, item: &'a OutputItem) -> Option<&'a str> {
    let tool = kind.strip_suffix("_call")?;
    Some(item.name.as_deref().unwrap_or(tool))
}

/// An output item as GenAI message parts.
fn output_parts(item: &Value) -> Vec<Part<'_>> {
    match item.get("type").and_then(Value::as_str) {
        Some("message") => text_parts(item.get("content")),
        Some("function_call" | "custom_tool_call") => {
            let args = match item.get("arguments").or_else(|| item.get("input")) {
                Some(Value::String(s)) => arguments(s),
                other => other.into(),
            };
            vec![Part::ToolCall {
                id: item.get("call_id").into(),
                name: item.get("name").into(),
                arguments: args,
            }]
        }
        Some("reasoning") => summary_parts(item),
        Some(other) => vec![Part::Other { kind: other.into() }],
        None => Vec::new(),
    }
}

impl StreamParser for Responses {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        let (v, tree) = json::parse::<Event>(event.data, self.capture.is_some())?;
        let mut progress = Progress::default();
        let response = tree.as_ref().and_then(|t| t.get("response"));
        match v.kind.as_deref().unwrap_or_default() {
            "response.created" | "response.in_progress" => {
                if let Some(r) = v.response {
                    self.on_response(&r.into_object(), response, false);
                }
            }
            "response.completed" | "response.failed" | "response.incomplete" => {
                if let Some(r) = v.response {
                    self.on_response(&r.into_object(), response, true);
                }
            }
            "response.output_item.added" => {
                if let Some(item) = &v.item {
                    self.on_item(v.output_index.unwrap_or(0), item);
                }
            }
            "codex.rate_limits" => {
                if let Some(limits) = &v.rate_limits {
                    let out = self.ratelimits.get_or_insert_with(Default::default);
                    for w in [&limits.primary, &limits.secondary].into_iter().flatten() {
                        out.codex_window(w.used_percent, w.window_minutes, w.reset_at);
                    }
                }
            }
            // The item whole: a subagent tool's arguments, now complete.
            "response.output_item.done" => {
                if let Some(args) = v.item.as_ref().and_then(|i| i.arguments.as_deref()) {
                    self.tool_calls.args(v.output_index.unwrap_or(0), args);
                }
            }
            "error" => {
                // A socket's error frame carries the HTTP status it stands for.
                self.error_status = v
                    .status
                    .or(v.status_code)
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..600).contains(s));
                let error_type = v
                    .code
                    .or_else(|| v.error.as_ref().and_then(WireError::error_type));
                self.error_type = Some(error_type.unwrap_or_else(|| "error".to_owned()));
            }
            // Every `*.delta` event carries generated content (text, refusal, reasoning,
            // tool arguments or input, code, audio), and so does a partial image.
            k if k.ends_with(".delta") || k == "response.image_generation_call.partial_image" => {
                progress.delta = true;
            }
            _ => {}
        }
        Ok(progress)
    }

    fn facts(&self) -> ResponseFacts {
        ResponseFacts {
            model: self.model.clone(),
            id: self.id.clone(),
            finish_reasons: self.finish.iter().cloned().collect(),
            usage: self.usage.clone().unwrap_or_default(),
            tools_called: self.tools_called.clone(),
            tool_calls: self.tool_calls.calls(),
            ratelimits: self.ratelimits.clone().filter(|r| !r.is_empty()),
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.complete,
            service_tier: self.service_tier.clone(),
            system_fingerprint: None,
            billed_usd: None,
            cache_write_unsplit: 0,
            output: self.output.clone(),
        }
    }

    fn terminal(&self) -> bool {
        self.complete || self.error_type.is_some()
    }
}

#[cfg(test)]
mod tests;
