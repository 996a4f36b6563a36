//! OpenAI Chat Completions: `POST /v1/chat/completions`, streamed (`data: {chunk}` …
//! `data: [DONE]`) or JSON.
//!
//! Usage arrives only when the client asked for it (`stream_options.include_usage`, final
//! chunk with empty `choices`); without it the call has no usage, which is recorded as
//! missing, never as zero, and llmtap never rewrites the request to ask for it.
//! `prompt_tokens` already includes `prompt_tokens_details.cached_tokens`;
//! `completion_tokens` includes `completion_tokens_details.reasoning_tokens`.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::lenient::{
    self, Bool, F64, Field, OneOf, Shape, Tail, Text, TextChars, U64, elements, next_key, skip,
    value,
};
use super::{
    Dialect, Framing, Operation, ParseError, Progress, Provider, RequestContent, RequestFacts,
    ResponseFacts, StreamParser, Target, Usage, json, sse,
};

pub const CHAT_COMPLETIONS: Dialect = Dialect {
    name: "openai_chat",
    provider: Provider::OpenAi,
    detect,
    parse_request,
    parse_response,
    stream_parser,
    max_event: 512 << 10,
};

/// The Chat Completions API as the Gemini API serves it (its OpenAI compatibility layer,
/// `POST /v1beta/openai/chat/completions` on `generativelanguage.googleapis.com`): the same
/// wire format, billed by Google.
pub const GEMINI_CHAT_COMPLETIONS: Dialect = Dialect {
    name: "gemini_openai_chat",
    provider: Provider::GcpGemini,
    detect: detect_gemini,
    parse_request,
    parse_response,
    stream_parser,
    max_event: 512 << 10,
};

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    (t.method == "POST" && !t.websocket && t.path.trim_end_matches('/') == "/v1/chat/completions")
        .then_some((Operation::Chat, Framing::Json))
}

fn detect_gemini(t: &Target<'_>) -> Option<(Operation, Framing)> {
    let path = t.path.trim_end_matches('/');
    (t.method == "POST"
        && !t.websocket
        && matches!(
            path,
            "/v1beta/openai/chat/completions" | "/v1/openai/chat/completions"
        ))
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

fn parse_request(
    _op: Operation,
    _path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let r = lenient::parse(body, Body { capture })?;
    Ok(RequestFacts {
        model: r.model,
        stream: r.stream.unwrap_or(false),
        max_tokens: r.max_completion_tokens.unwrap_or(r.max_tokens),
        temperature: r.temperature,
        tools_offered: r.tools.names,
        system_chars: r.messages.system_chars,
        messages: r.messages.count,
        conversation_id: None,
        cache_ttl: None,
        content: capture.map(|_| RequestContent {
            system: r.messages.system.into_vec(),
            input: r.messages.input.into_vec(),
            tools: r.tools.definitions.into_vec(),
        }),
    })
}

/// What llmtap reads of a Chat request; content only with capture.
#[derive(Debug, Default)]
struct Request {
    model: Option<String>,
    stream: Option<bool>,
    /// Present (even when not a number) it wins over `max_tokens`.
    max_completion_tokens: Option<Option<u64>>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    messages: Messages,
    tools: Tools,
}

/// The request body: an object, else empty facts. `capture`: the content cap.
#[derive(Debug, Clone, Copy)]
struct Body {
    capture: Option<usize>,
}

impl Shape for Body {
    type Out = Request;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let Body { capture } = self;
        let mut r = Request::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("model") => r.model = value(&mut map, Text)?,
                Some("stream") => r.stream = value(&mut map, Bool)?,
                Some("max_completion_tokens") => {
                    r.max_completion_tokens = Some(value(&mut map, U64)?);
                }
                Some("max_tokens") => r.max_tokens = value(&mut map, U64)?,
                Some("temperature") => r.temperature = value(&mut map, F64)?,
                Some("messages") => r.messages = value(&mut map, MessagesShape { capture })?,
                Some("tools") => r.tools = value(&mut map, ToolsShape { capture })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(r)
    }
}

/// `messages`: counted, system and developer text measured; converted only with capture.
#[derive(Debug, Default)]
struct Messages {
    count: u64,
    system_chars: u64,
    system: Tail,
    input: Tail,
}

#[derive(Debug, Clone, Copy)]
struct MessagesShape {
    capture: Option<usize>,
}

impl Shape for MessagesShape {
    type Out = Messages;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Messages, A::Error> {
        let max = self.capture.unwrap_or(0);
        let mut messages = Messages {
            system: Tail::new(max),
            input: Tail::new(max),
            ..Messages::default()
        };
        let capture = self.capture.is_some();
        let count = elements(seq, MessageShape, capture, |(system, chars), m| {
            if system {
                messages.system_chars += chars;
            }
            let Some(m) = m else { return };
            if system {
                let text = text_of(m.get("content"));
                messages
                    .system
                    .push(serde_json::json!({"type": "text", "content": text}));
            } else {
                messages.input.push(message(&m));
            }
        })?;
        messages.count = count;
        Ok(messages)
    }
}

/// One message: whether it is a system (or developer) message, and its text's characters.
#[derive(Debug, Clone, Copy)]
struct MessageShape;

impl Shape for MessageShape {
    type Out = (bool, u64);

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(bool, u64), A::Error> {
        let (mut system, mut chars) = (false, 0);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("role") => system = value(&mut map, OneOf(&["system", "developer"]))?,
                Some("content") => chars = value(&mut map, TextChars)?,
                _ => skip(&mut map)?,
            }
        }
        Ok((system, chars))
    }
}

/// `tools`: their names; definitions only with capture.
#[derive(Debug, Default)]
struct Tools {
    names: Vec<String>,
    definitions: Tail,
}

#[derive(Debug, Clone, Copy)]
struct ToolsShape {
    capture: Option<usize>,
}

impl Shape for ToolsShape {
    type Out = Tools;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Tools, A::Error> {
        let mut tools = Tools {
            names: Vec::new(),
            definitions: Tail::new(self.capture.unwrap_or(0)),
        };
        elements(seq, ToolName, self.capture.is_some(), |name, t| {
            tools.names.extend(name);
            tools.definitions.extend(t.as_ref().map(tool_definition));
        })?;
        Ok(tools)
    }
}

/// A tool's name: `function.name` (or `custom.name`) when present (of any type), else
/// `name`, else `type`.
#[derive(Debug, Clone, Copy)]
struct ToolName;

impl Shape for ToolName {
    type Out = Option<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Option<String>, A::Error> {
        let (mut function_name, mut name, mut kind) = (None, None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                // `{"type":"function","function":{…}}`, `{"type":"custom","custom":{…}}`.
                Some("function" | "custom") => {
                    function_name = value(&mut map, Field("name", Text))?.or(function_name);
                }
                Some("name") => name = value(&mut map, Text)?,
                Some("type") => kind = value(&mut map, Text)?,
                _ => skip(&mut map)?,
            }
        }
        // A tool without a name (a provider's built-in) is offered under its type.
        Ok(function_name.unwrap_or(name).or(kind))
    }
}

/// One tool as a GenAI tool definition.
fn tool_definition(t: &Value) -> Value {
    let f = t.get("function").unwrap_or(t);
    serde_json::json!({
        "type": "function",
        "name": f.get("name"),
        "description": f.get("description"),
        "parameters": f.get("parameters"),
    })
}

/// One Chat message as a GenAI input message.
fn message(m: &Value) -> Value {
    let role = m.get("role").cloned().unwrap_or(Value::Null);
    let mut parts = Vec::new();
    let text = text_of(m.get("content"));
    if role == "tool" {
        parts.push(serde_json::json!({
            "type": "tool_call_response", "id": m.get("tool_call_id"), "response": text,
        }));
    } else if !text.is_empty() {
        parts.push(serde_json::json!({"type": "text", "content": text}));
    }
    for call in m
        .get("tool_calls")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let f = call.get("function");
        parts.push(serde_json::json!({
            "type": "tool_call",
            "id": call.get("id"),
            "name": f.and_then(|f| f.get("name")),
            "arguments": f.and_then(|f| f.get("arguments")),
        }));
    }
    serde_json::json!({"role": role, "parts": parts})
}

/// A tool call's body and the key of its input: a function call's `function` and
/// `arguments`, a custom tool call's `custom` and `input`.
fn call_body(call: &Value) -> (Option<&Value>, &'static str) {
    match call.get("function") {
        Some(f) => (Some(f), "arguments"),
        None => (call.get("custom"), "input"),
    }
}

/// The HTTP status an in-stream error object stands for: its numeric `code` or `status`
/// (OpenAI-compatible servers put the status there), when it is one.
fn error_status(v: &Value) -> Option<u16> {
    let e = v.get("error")?;
    let n = |k: &str| {
        e.get(k)
            .and_then(|c| c.as_u64().or_else(|| c.as_str()?.parse().ok()))
    };
    let status = n("status").or_else(|| n("code"))?;
    u16::try_from(status)
        .ok()
        .filter(|c| (100..600).contains(c))
}

fn error_type(v: &Value) -> Option<String> {
    // `"error": null` (some compatible servers send it on every chunk) is no error.
    let e = v.get("error").filter(|e| !e.is_null())?;
    e.get("code")
        .and_then(Value::as_str)
        .or_else(|| e.get("type").and_then(Value::as_str))
        .map(str::to_owned)
        .or_else(|| Some("error".to_owned()))
}

fn usage(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64);
    Usage {
        input: n(u.get("prompt_tokens")),
        output: n(u.get("completion_tokens")),
        cache_read: n(u
            .get("prompt_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        cache_write_5m: None,
        cache_write_1h: None,
        reasoning: n(u
            .get("completion_tokens_details")
            .and_then(|d| d.get("reasoning_tokens"))),
    }
}

fn parse_response(
    _op: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if !(200..300).contains(&status) {
        let error_type = json(body).ok().as_ref().and_then(error_type);
        return Ok(ResponseFacts {
            error_type,
            ..ResponseFacts::default()
        });
    }
    let v = json(body)?;
    if let Some(error_type) = error_type(&v) {
        return Ok(ResponseFacts {
            error_type: Some(error_type),
            error_status: error_status(&v),
            ..ResponseFacts::default()
        });
    }
    let mut state = Chat::default();
    state.on_chunk_meta(&v);
    for choice in v
        .get("choices")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
        let slot = slot(&mut state.choices, index);
        if let Some(m) = choice.get("message") {
            for call in m
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                let (f, arguments) = call_body(call);
                slot.calls.push(ToolCall {
                    id: call.get("id").and_then(Value::as_str).map(str::to_owned),
                    name: f
                        .and_then(|f| f.get("name"))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                    arguments: f
                        .and_then(|f| f.get(arguments))
                        .and_then(Value::as_str)
                        .unwrap_or_default()
                        .to_owned(),
                });
            }
            slot.text = text_of(m.get("content"));
        }
        slot.finish = choice
            .get("finish_reason")
            .and_then(Value::as_str)
            .map(str::to_owned);
    }
    state.complete = true;
    if capture {
        state.capture = Some(usize::MAX);
    }
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    // One byte over the cap, so that the span side sees the cap was hit.
    Box::new(Chat {
        capture: capture.map(|c| c.saturating_add(1)),
        ..Chat::default()
    })
}

#[derive(Debug, Default)]
struct ToolCall {
    id: Option<String>,
    name: String,
    arguments: String,
}

#[derive(Debug, Default)]
struct Choice {
    finish: Option<String>,
    calls: Vec<ToolCall>,
    text: String,
}

#[derive(Debug, Default)]
struct Chat {
    model: Option<String>,
    id: Option<String>,
    choices: Vec<Choice>,
    usage: Option<Usage>,
    error_type: Option<String>,
    error_status: Option<u16>,
    service_tier: Option<String>,
    complete: bool,
    /// Byte budget for captured content; `None` when content is not captured.
    capture: Option<usize>,
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
    fn on_chunk_meta(&mut self, v: &Value) {
        if let Some(model) = v.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        if let Some(id) = v.get("id").and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        if let Some(u) = v.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(u));
        }
        if let Some(tier) = v.get("service_tier").and_then(Value::as_str) {
            self.service_tier = Some(tier.to_owned());
        }
    }

    fn append(budget: &mut Option<usize>, into: &mut String, text: &str) {
        if let Some(left) = budget {
            super::append_capped(left, into, text);
        }
    }
}

impl StreamParser for Chat {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        if event.data == b"[DONE]" {
            self.complete = true;
            return Ok(Progress::default());
        }
        let v = json(event.data)?;
        if let Some(error_type) = error_type(&v) {
            self.error_type = Some(error_type);
            self.error_status = error_status(&v);
            return Ok(Progress::default());
        }
        self.on_chunk_meta(&v);
        let mut progress = Progress::default();
        let Chat {
            choices,
            capture: budget,
            ..
        } = self;
        for choice in v
            .get("choices")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let index = choice.get("index").and_then(Value::as_u64).unwrap_or(0) as usize;
            let slot = slot(choices, index);
            if let Some(reason) = choice.get("finish_reason").and_then(Value::as_str) {
                slot.finish = Some(reason.to_owned());
            }
            let Some(delta) = choice.get("delta") else {
                continue;
            };
            if delta.get("audio").is_some_and(Value::is_object) {
                progress.delta = true;
            }
            for key in ["content", "reasoning_content", "refusal"] {
                if let Some(text) = delta
                    .get(key)
                    .and_then(Value::as_str)
                    .filter(|t| !t.is_empty())
                {
                    progress.delta = true;
                    if key == "content" {
                        Chat::append(budget, &mut slot.text, text);
                    }
                }
            }
            for call in delta
                .get("tool_calls")
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                progress.delta = true;
                let at = call
                    .get("index")
                    .and_then(Value::as_u64)
                    .unwrap_or(0)
                    .min(127) as usize;
                if slot.calls.len() <= at {
                    slot.calls.resize_with(at + 1, ToolCall::default);
                }
                let entry = &mut slot.calls[at];
                if let Some(id) = call.get("id").and_then(Value::as_str) {
                    entry.id = Some(id.to_owned());
                }
                let (f, arguments) = call_body(call);
                if let Some(name) = f.and_then(|f| f.get("name")).and_then(Value::as_str) {
                    entry.name.push_str(name);
                }
                if let Some(args) = f.and_then(|f| f.get(arguments)).and_then(Value::as_str) {
                    Chat::append(budget, &mut entry.arguments, args);
                }
            }
        }
        Ok(progress)
    }

    fn facts(&self) -> ResponseFacts {
        let output = self.capture.map(|_| {
            self.choices
                .iter()
                .map(|c| {
                    let mut parts = Vec::new();
                    if !c.text.is_empty() {
                        parts.push(serde_json::json!({"type": "text", "content": c.text}));
                    }
                    for call in &c.calls {
                        let arguments = serde_json::from_str::<Value>(&call.arguments)
                            .unwrap_or_else(|_| Value::String(call.arguments.clone()));
                        parts.push(serde_json::json!({
                            "type": "tool_call", "id": call.id, "name": call.name, "arguments": arguments,
                        }));
                    }
                    serde_json::json!({"role": "assistant", "parts": parts, "finish_reason": c.finish})
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
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.complete,
            service_tier: self.service_tier.clone(),
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
