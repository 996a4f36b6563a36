//! OpenAI Responses: `POST /v1/responses` (SSE with `event:` + `data:`, or JSON), the same
//! at `chatgpt.com/backend-api/codex/responses` (Codex signed in with ChatGPT), and the
//! WebSocket form Codex CLI uses by default (`GET /v1/responses` + upgrade), whose frames are
//! the same JSON objects as the SSE `data:` lines.
//!
//! Usage comes with the terminal event (`response.completed` | `response.failed` |
//! `response.incomplete`): `input_tokens` includes `input_tokens_details.cached_tokens`,
//! `output_tokens` includes `output_tokens_details.reasoning_tokens`.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::lenient::{
    self, Bool, Chars, F64, Field, OneOf, Shape, Tail, Text, TextChars, U64, elements, next_key,
    skip, value,
};
use super::{
    Dialect, Framing, Operation, ParseError, Progress, Provider, RequestContent, RequestFacts,
    ResponseFacts, StreamParser, Target, Usage, json, sse,
};

pub const RESPONSES: Dialect = Dialect {
    name: "openai_responses",
    provider: Provider::OpenAi,
    detect,
    parse_request,
    parse_response,
    stream_parser,
    max_event: 16 << 20,
};

const PATHS: &[&str] = &["/v1/responses", "/backend-api/codex/responses"];

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    let path = t.path.trim_end_matches('/');
    let wanted = if t.websocket { "GET" } else { "POST" };
    (t.method == wanted && PATHS.contains(&path)).then_some((Operation::Chat, Framing::Json))
}

fn text_parts(content: Option<&Value>) -> Vec<Value> {
    match content {
        Some(Value::String(s)) => vec![serde_json::json!({"type": "text", "content": s})],
        Some(Value::Array(parts)) => parts.iter().map(text_part).collect(),
        _ => Vec::new(),
    }
}

/// One part of a content array.
fn text_part(p: &Value) -> Value {
    match p.get("text").and_then(Value::as_str) {
        Some(text) => serde_json::json!({"type": "text", "content": text}),
        None => serde_json::json!({"type": p.get("type")}),
    }
}

/// Flattens tools for their definitions: a `namespace` tool (Codex 0.169 groups its tools as
/// `functions`, `clock`, …) stands for the tools it contains. [`ToolNames`] reads the same
/// rule without a tree.
fn flatten<'a>(tools: &'a [Value], out: &mut Vec<&'a Value>, depth: usize) {
    for tool in tools {
        match tool.get("tools").and_then(Value::as_array) {
            Some(inner)
                if tool.get("type").and_then(Value::as_str) == Some("namespace") && depth < 4 =>
            {
                flatten(inner, out, depth + 1);
            }
            _ => out.push(tool),
        }
    }
}

/// Definitions of the tools in `tools`, flattened.
fn tool_definitions(tools: &[Value]) -> impl Iterator<Item = Value> {
    let mut flat = Vec::new();
    flatten(tools, &mut flat, 0);
    flat.into_iter().map(|t| {
        serde_json::json!({
            "type": t.get("type").and_then(Value::as_str).unwrap_or("function"),
            "name": t.get("name"),
            "description": t.get("description"),
            "parameters": t.get("parameters"),
        })
    })
}

fn parse_request(
    _op: Operation,
    _path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let r = lenient::parse(body, Body { capture })?;
    let Input {
        count,
        system_chars,
        system,
        input,
        tool_names,
        tool_definitions,
    } = r.input;
    // Tools of the request: top-level `tools`, then Codex's `additional_tools` input items.
    // Either may be absent (a default, uncapped tail): both are appended to a capped one.
    let max = capture.unwrap_or(0);
    let mut tools = r.tools.names;
    tools.extend(tool_names);
    let mut definitions = Tail::new(max);
    definitions.append(r.tools.definitions);
    definitions.append(tool_definitions);
    let (instructions_chars, instructions) = r.instructions;
    let mut system_parts = Tail::new(max);
    system_parts.append(instructions);
    system_parts.append(system);
    Ok(RequestFacts {
        model: r.model,
        stream: r.stream.unwrap_or(false),
        max_tokens: r.max_output_tokens,
        temperature: r.temperature,
        tools_offered: tools,
        system_chars: instructions_chars + system_chars,
        messages: count,
        // Codex names its session in `client_metadata.session_id` and, as the same value, in
        // `prompt_cache_key` (the only place in WebSocket frames of older versions).
        cache_ttl: None,
        conversation_id: r
            .client_session
            .unwrap_or(r.prompt_cache_key)
            .filter(|k| !k.is_empty() && k.len() <= 128),
        content: capture.map(|_| RequestContent {
            system: system_parts.into_vec(),
            input: input.into_vec(),
            tools: definitions.into_vec(),
        }),
    })
}

/// What llmtap reads of a Responses request; content only with capture.
#[derive(Debug, Default)]
struct Request {
    model: Option<String>,
    stream: Option<bool>,
    max_output_tokens: Option<u64>,
    temperature: Option<f64>,
    /// Characters of `instructions`, and its parts with capture.
    instructions: (u64, Tail),
    input: Input,
    tools: Tools,
    /// `client_metadata.session_id` when present (of any type): it wins over the cache key.
    client_session: Option<Option<String>>,
    prompt_cache_key: Option<String>,
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
                Some("max_output_tokens") => r.max_output_tokens = value(&mut map, U64)?,
                Some("temperature") => r.temperature = value(&mut map, F64)?,
                Some("instructions") => {
                    r.instructions = value(&mut map, InstructionsShape { capture })?;
                }
                Some("input") => r.input = value(&mut map, InputShape { capture })?,
                Some("tools") => r.tools = value(&mut map, ToolsShape { capture })?,
                Some("client_metadata") => {
                    r.client_session = value(&mut map, Field("session_id", Text))?;
                }
                Some("prompt_cache_key") => r.prompt_cache_key = value(&mut map, Text)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(r)
    }
}

/// `instructions`: a string or parts, as message content ([`TextChars`], [`text_parts`]): its
/// characters, and its parts with capture.
#[derive(Debug, Clone, Copy)]
struct InstructionsShape {
    capture: Option<usize>,
}

impl Shape for InstructionsShape {
    type Out = (u64, Tail);

    fn string(self, s: &str) -> (u64, Tail) {
        let mut parts = Tail::new(self.capture.unwrap_or(0));
        if self.capture.is_some() {
            parts.push(serde_json::json!({"type": "text", "content": s}));
        }
        (TextChars.string(s), parts)
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<(u64, Tail), A::Error> {
        let (mut chars, mut parts) = (0, Tail::new(self.capture.unwrap_or(0)));
        let capture = self.capture.is_some();
        elements(seq, Field("text", Chars), capture, |n, p| {
            chars += n.unwrap_or(0);
            parts.extend(p.as_ref().map(text_part));
        })?;
        Ok((chars, parts))
    }
}

/// `input`: a string (one user message) or items. Codex's `additional_tools` items carry tools
/// and are not messages.
#[derive(Debug, Default)]
struct Input {
    count: u64,
    system_chars: u64,
    system: Tail,
    input: Tail,
    tool_names: Vec<String>,
    tool_definitions: Tail,
}

#[derive(Debug, Clone, Copy)]
struct InputShape {
    capture: Option<usize>,
}

impl InputShape {
    fn empty(self) -> Input {
        let max = self.capture.unwrap_or(0);
        Input {
            system: Tail::new(max),
            input: Tail::new(max),
            tool_definitions: Tail::new(max),
            ..Input::default()
        }
    }
}

impl Shape for InputShape {
    type Out = Input;

    fn string(self, s: &str) -> Input {
        let mut input = self.empty();
        input.count = 1;
        if self.capture.is_some() {
            input
                .input
                .push(input_message(&Value::String(s.to_owned())));
        }
        input
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Input, A::Error> {
        let mut input = self.empty();
        elements(seq, ItemShape, self.capture.is_some(), |item, v| {
            if item.additional_tools {
                input.tool_names.extend(item.tools.unwrap_or_default());
                if let Some(inner) = v.as_ref().and_then(|v| v.get("tools")?.as_array()) {
                    input.tool_definitions.extend(tool_definitions(inner));
                }
                return;
            }
            input.count += 1;
            if item.system {
                input.system_chars += item.chars;
            }
            match v {
                Some(v) if item.system => input.system.extend(text_parts(v.get("content"))),
                Some(v) => input.input.push(input_message(&v)),
                None => {}
            }
        })?;
        Ok(input)
    }
}

/// One input item, read for what any kind of item could contribute.
#[derive(Debug, Default)]
struct Item {
    additional_tools: bool,
    system: bool,
    chars: u64,
    tools: Option<Vec<String>>,
}

#[derive(Debug, Clone, Copy)]
struct ItemShape;

impl Shape for ItemShape {
    type Out = Item;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Item, A::Error> {
        let mut item = Item::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("type") => {
                    item.additional_tools = value(&mut map, OneOf(&["additional_tools"]))?
                }
                Some("role") => item.system = value(&mut map, OneOf(&["system", "developer"]))?,
                Some("content") => item.chars = value(&mut map, TextChars)?,
                Some("tools") => item.tools = value(&mut map, ToolNames { depth: 0 })?,
                _ => skip(&mut map)?,
            }
        }
        Ok(item)
    }
}

/// Top-level `tools`: names; definitions only with capture.
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
        let capture = self.capture.is_some();
        elements(seq, ToolShape { depth: 0 }, capture, |names, t| {
            tools.names.extend(names);
            if let Some(t) = t {
                tools
                    .definitions
                    .extend(tool_definitions(std::slice::from_ref(&t)));
            }
        })?;
        Ok(tools)
    }
}

/// Names of an array of tools, namespaces flattened as [`flatten`] does; `None` for anything
/// but an array.
#[derive(Debug, Clone, Copy)]
struct ToolNames {
    depth: usize,
}

impl Shape for ToolNames {
    type Out = Option<Vec<String>>;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Out, A::Error> {
        let mut names = Vec::new();
        elements(seq, ToolShape { depth: self.depth }, false, |n, _| {
            names.extend(n)
        })?;
        Ok(Some(names))
    }
}

/// The names one tool stands for: a namespace's flattened tools, else its `name` (or, with no
/// `name` key, its `type`).
#[derive(Debug, Clone, Copy)]
struct ToolShape {
    depth: usize,
}

impl Shape for ToolShape {
    type Out = Vec<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let (mut name, mut kind, mut inner) = (None, None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("name") => name = Some(value(&mut map, Text)?),
                Some("type") => kind = value(&mut map, Text)?,
                // Whether this is a namespace may only be known after its tools.
                Some("tools") if self.depth < 4 => {
                    let depth = self.depth + 1;
                    inner = value(&mut map, ToolNames { depth })?;
                }
                _ => skip(&mut map)?,
            }
        }
        match inner {
            Some(inner) if kind.as_deref() == Some("namespace") => Ok(inner),
            _ => Ok(name.unwrap_or(kind).into_iter().collect()),
        }
    }
}

/// One Responses input item as a GenAI input message.
fn input_message(item: &Value) -> Value {
    let field = |name: &str| item.get(name).cloned().unwrap_or(Value::Null);
    match item.get("type").and_then(Value::as_str) {
        Some("function_call" | "custom_tool_call") => serde_json::json!({
            "role": "assistant",
            "parts": [{"type": "tool_call", "id": field("call_id"), "name": field("name"),
                       "arguments": item.get("arguments").or_else(|| item.get("input"))}],
        }),
        Some("function_call_output" | "custom_tool_call_output") => serde_json::json!({
            "role": "tool",
            "parts": [{"type": "tool_call_response", "id": field("call_id"), "response": field("output")}],
        }),
        Some("reasoning") => serde_json::json!({
            "role": "assistant",
            "parts": item.get("summary").and_then(Value::as_array).map(|s| s.iter().map(|p| {
                serde_json::json!({"type": "reasoning", "content": p.get("text")})
            }).collect::<Vec<_>>()).unwrap_or_default(),
        }),
        _ => serde_json::json!({
            "role": item.get("role").cloned().unwrap_or(Value::String("user".into())),
            "parts": text_parts(item.get("content").or(Some(item))),
        }),
    }
}

fn usage(u: &Value) -> Usage {
    let n = |v: Option<&Value>| v.and_then(Value::as_u64);
    Usage {
        input: n(u.get("input_tokens")),
        output: n(u.get("output_tokens")),
        cache_read: n(u
            .get("input_tokens_details")
            .and_then(|d| d.get("cached_tokens"))),
        cache_write_5m: None,
        cache_write_1h: None,
        reasoning: n(u
            .get("output_tokens_details")
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
        let error_type = json(body).ok().and_then(|v| {
            let e = v.get("error")?;
            e.get("code")
                .or_else(|| e.get("type"))
                .and_then(Value::as_str)
                .map(str::to_owned)
        });
        return Ok(ResponseFacts {
            error_type,
            ..ResponseFacts::default()
        });
    }
    let v = json(body)?;
    let mut state = Responses {
        capture,
        ..Responses::default()
    };
    state.on_response(&v, true);
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Responses {
        capture: capture.is_some(),
        ..Responses::default()
    })
}

#[derive(Debug, Default)]
struct Responses {
    model: Option<String>,
    id: Option<String>,
    finish: Option<String>,
    usage: Option<Usage>,
    tools_called: Vec<String>,
    error_type: Option<String>,
    error_status: Option<u16>,
    service_tier: Option<String>,
    complete: bool,
    capture: bool,
    output: Option<Vec<Value>>,
}

impl Responses {
    /// A response object: from `response.created`, the terminal events, or a JSON body.
    fn on_response(&mut self, r: &Value, terminal: bool) {
        if let Some(id) = r.get("id").and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        if let Some(tier) = r.get("service_tier").and_then(Value::as_str) {
            self.service_tier = Some(tier.to_owned());
        }
        if let Some(model) = r.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        if !terminal {
            return;
        }
        self.complete = true;
        if let Some(u) = r.get("usage").filter(|u| u.is_object()) {
            self.usage = Some(usage(u));
        }
        let status = r.get("status").and_then(Value::as_str);
        self.finish = match status {
            Some("incomplete") => r
                .get("incomplete_details")
                .and_then(|d| d.get("reason"))
                .and_then(Value::as_str)
                .or(status)
                .map(str::to_owned),
            other => other.map(str::to_owned),
        };
        if status == Some("failed") {
            self.error_type = Some(
                r.get("error")
                    .and_then(|e| e.get("code").or_else(|| e.get("type")))
                    .and_then(Value::as_str)
                    .unwrap_or("failed")
                    .to_owned(),
            );
        }
        let items = r
            .get("output")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default();
        // A JSON body carries its items only here; streams announced them as they came.
        if self.tools_called.is_empty() {
            items.iter().for_each(|item| self.on_item(item));
        }
        if self.capture {
            let parts: Vec<Value> = items.iter().flat_map(output_parts).collect();
            self.output = Some(vec![serde_json::json!({
                "role": "assistant", "parts": parts, "finish_reason": self.finish,
            })]);
        }
    }

    fn on_item(&mut self, item: &Value) {
        let kind = item.get("type").and_then(Value::as_str).unwrap_or_default();
        if let Some(name) = tool_called(kind, item) {
            self.tools_called.push(name.to_owned());
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
fn tool_called<'a>(kind: &'a str, item: &'a Value) -> Option<&'a str> {
    let tool = kind.strip_suffix("_call")?;
    Some(item.get("name").and_then(Value::as_str).unwrap_or(tool))
}

/// An output item as GenAI message parts.
fn output_parts(item: &Value) -> Vec<Value> {
    match item.get("type").and_then(Value::as_str) {
        Some("message") => text_parts(item.get("content")),
        Some("function_call" | "custom_tool_call") => {
            let args = item.get("arguments").or_else(|| item.get("input"));
            let args = match args {
                Some(Value::String(s)) => {
                    serde_json::from_str(s).unwrap_or(Value::String(s.clone()))
                }
                Some(other) => other.clone(),
                None => Value::Null,
            };
            vec![serde_json::json!({
                "type": "tool_call", "id": item.get("call_id"), "name": item.get("name"), "arguments": args,
            })]
        }
        Some("reasoning") => item
            .get("summary")
            .and_then(Value::as_array)
            .map(|s| {
                s.iter()
                    .map(|p| serde_json::json!({"type": "reasoning", "content": p.get("text")}))
                    .collect()
            })
            .unwrap_or_default(),
        Some(other) => vec![serde_json::json!({"type": other})],
        None => Vec::new(),
    }
}

impl StreamParser for Responses {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        let v = json(event.data)?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut progress = Progress::default();
        match kind {
            "response.created" | "response.in_progress" => {
                if let Some(r) = v.get("response") {
                    self.on_response(r, false);
                }
            }
            "response.completed" | "response.failed" | "response.incomplete" => {
                if let Some(r) = v.get("response") {
                    self.on_response(r, true);
                }
            }
            "response.output_item.added" => {
                if let Some(item) = v.get("item") {
                    self.on_item(item);
                }
            }
            "error" => {
                // A socket's error frame carries the HTTP status it stands for.
                self.error_status = ["status", "status_code"]
                    .iter()
                    .find_map(|k| v.get(*k).and_then(Value::as_u64))
                    .and_then(|s| u16::try_from(s).ok())
                    .filter(|s| (100..600).contains(s));
                self.error_type = Some(
                    v.get("code")
                        .or_else(|| {
                            v.get("error")
                                .and_then(|e| e.get("code").or_else(|| e.get("type")))
                        })
                        .and_then(Value::as_str)
                        .unwrap_or("error")
                        .to_owned(),
                );
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
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.complete,
            service_tier: self.service_tier.clone(),
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
