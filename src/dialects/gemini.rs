//! Gemini: `…/{v1beta|v1}/models/{model}:generateContent` and `:streamGenerateContent`
//! (`alt=sse` → SSE; without it a JSON array streamed element by element), and Gemini Code
//! Assist (`cloudcode-pa.googleapis.com/v1internal:generateContent|streamGenerateContent`),
//! which wraps the same request in `{"model", "project", "request"}` and every response
//! chunk in `{"response"}`.
//!
//! Gemini counts usage apart (DESIGN §3): normalized input = promptTokenCount (cached
//! included) + toolUsePromptTokenCount, output = candidatesTokenCount + thoughtsTokenCount,
//! reasoning = thoughtsTokenCount. The model comes from the path (the API key may be in the
//! query string, which is never looked at beyond routing).

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::lenient::{
    self, F64, Field, PartsChars, Shape, Skip, Tail, Text, U64, captured, elements, next_key, skip,
    value,
};
use super::{
    Dialect, Framing, Operation, ParseError, Progress, Provider, RequestContent, RequestFacts,
    ResponseFacts, StreamParser, Target, Usage, json, sse,
};

pub const GENERATE_CONTENT: Dialect = Dialect {
    name: "gemini",
    provider: Provider::GcpGemini,
    detect,
    parse_request,
    parse_response,
    stream_parser,
    max_event: 4 << 20,
};

pub const CODE_ASSIST: Dialect = Dialect {
    name: "gemini_code_assist",
    provider: Provider::GcpGemini,
    detect: detect_code_assist,
    parse_request,
    parse_response,
    stream_parser,
    max_event: 4 << 20,
};

fn framing(method: &str, query: Option<&str>) -> Option<(Operation, Framing)> {
    let sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    match method {
        "generateContent" => Some((Operation::GenerateContent, Framing::Json)),
        "streamGenerateContent" if sse => Some((Operation::GenerateContent, Framing::Json)),
        "streamGenerateContent" => Some((Operation::GenerateContent, Framing::JsonArray)),
        _ => None,
    }
}

/// `/v1beta/models/gemini-2.5-flash:streamGenerateContent` → (`gemini-2.5-flash`, method).
fn split_path(path: &str) -> Option<(&str, &str)> {
    let rest = path.strip_prefix('/')?;
    let (version, rest) = rest.split_once('/')?;
    if !version.starts_with("v1") {
        return None;
    }
    let rest = rest.strip_prefix("models/")?;
    let (model, method) = rest.rsplit_once(':')?;
    (!model.is_empty() && !model.contains('/')).then_some((model, method))
}

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    let (_, method) = split_path(t.path)?;
    framing(method, t.query)
}

fn detect_code_assist(t: &Target<'_>) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    let method = t.path.strip_prefix("/v1internal:")?;
    framing(method, t.query)
}

/// The model named in a Gemini API path; `None` for Code Assist (it names it in the body).
pub fn model_from_path(path: &str) -> Option<&str> {
    split_path(path).map(|(model, _)| model)
}

/// Code Assist wraps requests in `{"request": …}` and responses in `{"response": …}`.
fn unwrap<'a>(v: &'a Value, key: &str) -> &'a Value {
    v.get(key).filter(|inner| inner.is_object()).unwrap_or(v)
}

fn parts_text(parts: Option<&Value>) -> String {
    parts
        .and_then(Value::as_array)
        .map(|p| {
            p.iter()
                .filter_map(|p| p.get("text").and_then(Value::as_str))
                .collect()
        })
        .unwrap_or_default()
}

fn parse_request(
    _op: Operation,
    path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let outer = lenient::parse(body, Body { capture })?;
    // Code Assist wraps the request: when `request` is an object its fields count, else the
    // body's (as `unwrap` does for responses).
    let outer_session = outer.level.session_id.clone();
    let v = outer.request.unwrap_or(outer.level);
    let (system_chars, system_text) = v.system.or(v.system_snake).unwrap_or_default();
    let (max_tokens, temperature) = v.config.or(v.config_snake).unwrap_or_default();
    Ok(RequestFacts {
        // The API names the model in the path; Code Assist in the wrapper.
        model: model_from_path(path).map(str::to_owned).or(outer.model),
        stream: path.ends_with(":streamGenerateContent"),
        max_tokens,
        temperature,
        tools_offered: v.tools.names,
        system_chars,
        messages: v.contents.count,
        cache_ttl: None,
        conversation_id: outer_session
            .or(v.session_id)
            .flatten()
            .filter(|s| !s.is_empty() && s.len() <= 128),
        content: capture.map(|_| RequestContent {
            system: if system_text.is_empty() {
                Vec::new()
            } else {
                vec![serde_json::json!({"type": "text", "content": system_text})]
            },
            input: v.contents.input.into_vec(),
            tools: v.tools.definitions.into_vec(),
        }),
    })
}

/// The request body: the fields of a request, plus Code Assist's wrapper.
#[derive(Debug, Default)]
struct Outer {
    level: Level,
    /// `request`, when it is an object.
    request: Option<Level>,
    model: Option<String>,
}

/// What llmtap reads of a generateContent request (the body, or Code Assist's `request`).
/// Fields with two spellings, or that fall back when absent, remember their presence.
#[derive(Debug, Default)]
struct Level {
    /// Characters of `systemInstruction.parts[].text`, and that text with capture.
    system: Option<(u64, String)>,
    system_snake: Option<(u64, String)>,
    contents: Contents,
    tools: Tools,
    /// `maxOutputTokens` and `temperature` of `generationConfig`.
    config: Option<(Option<u64>, Option<f64>)>,
    config_snake: Option<(Option<u64>, Option<f64>)>,
    session_id: Option<Option<String>>,
}

impl Level {
    /// Reads the value of `key` if it is a request field, else skips it.
    fn read<'de, A: MapAccess<'de>>(
        &mut self,
        key: Option<&str>,
        map: &mut A,
        capture: Option<usize>,
    ) -> Result<(), A::Error> {
        let system = |map: &mut A| -> Result<(u64, String), A::Error> {
            let chars = Field("parts", PartsChars);
            if capture.is_some() {
                let (n, v) = captured(map, chars)?;
                Ok((n.unwrap_or(0), parts_text(v.get("parts"))))
            } else {
                Ok((value(map, chars)?.unwrap_or(0), String::new()))
            }
        };
        match key {
            Some("systemInstruction") => self.system = Some(system(map)?),
            Some("system_instruction") => self.system_snake = Some(system(map)?),
            Some("contents") => self.contents = value(map, ContentsShape { capture })?,
            Some("tools") => self.tools = value(map, ToolsShape { capture })?,
            Some("generationConfig") => self.config = Some(value(map, ConfigShape)?),
            Some("generation_config") => self.config_snake = Some(value(map, ConfigShape)?),
            Some("session_id") => self.session_id = Some(value(map, Text)?),
            _ => skip(map)?,
        }
        Ok(())
    }
}

/// The request body: an object, else empty facts. `capture`: the content cap.
#[derive(Debug, Clone, Copy)]
struct Body {
    capture: Option<usize>,
}

impl Shape for Body {
    type Out = Outer;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Outer, A::Error> {
        let Body { capture } = self;
        let mut outer = Outer::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("request") => outer.request = value(&mut map, RequestShape { capture })?,
                Some("model") => outer.model = value(&mut map, Text)?,
                name => outer.level.read(name, &mut map, capture)?,
            }
        }
        Ok(outer)
    }
}

/// Code Assist's `request`: `Some` only for an object.
#[derive(Debug, Clone, Copy)]
struct RequestShape {
    capture: Option<usize>,
}

impl Shape for RequestShape {
    type Out = Option<Level>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Option<Level>, A::Error> {
        let mut level = Level::default();
        while let Some(key) = next_key(&mut map)? {
            level.read(key.name(), &mut map, self.capture)?;
        }
        Ok(Some(level))
    }
}

/// `contents`: counted; converted only with capture.
#[derive(Debug, Default)]
struct Contents {
    count: u64,
    input: Tail,
}

#[derive(Debug, Clone, Copy)]
struct ContentsShape {
    capture: Option<usize>,
}

impl Shape for ContentsShape {
    type Out = Contents;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Contents, A::Error> {
        let mut input = Tail::new(self.capture.unwrap_or(0));
        let count = elements(seq, Skip, self.capture.is_some(), |(), c| {
            input.extend(c.as_ref().map(input_message));
        })?;
        Ok(Contents { count, input })
    }
}

/// `tools[].functionDeclarations`: names; definitions only with capture.
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
        elements(seq, DeclarationNames, capture, |names, t| {
            tools.names.extend(names);
            if let Some(t) = t {
                let declarations = t
                    .get("functionDeclarations")
                    .or_else(|| t.get("function_declarations"))
                    .and_then(Value::as_array);
                tools
                    .definitions
                    .extend(declarations.into_iter().flatten().map(tool_definition));
            }
        })?;
        Ok(tools)
    }
}

/// Names of one tool's function declarations (either spelling; the camelCase key wins when
/// present).
#[derive(Debug, Clone, Copy)]
struct DeclarationNames;

impl Shape for DeclarationNames {
    type Out = Vec<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Vec<String>, A::Error> {
        let (mut camel, mut snake, mut builtin) = (None, None, Vec::new());
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("functionDeclarations") => camel = Some(value(&mut map, Names)?),
                Some("function_declarations") => snake = Some(value(&mut map, Names)?),
                // A built-in tool (`googleSearch`, `codeExecution`, `urlContext`, …) is
                // offered under its key, in snake case.
                Some(other) => {
                    builtin.push(snake_case(other));
                    skip(&mut map)?;
                }
                None => skip(&mut map)?,
            }
        }
        let mut names = camel.or(snake).unwrap_or_default();
        names.extend(builtin);
        Ok(names)
    }
}

/// `googleSearch` → `google_search` (the REST API's camelCase keys are the protos' snake case).
fn snake_case(key: &str) -> String {
    let mut out = String::with_capacity(key.len() + 4);
    for c in key.chars() {
        if c.is_ascii_uppercase() {
            out.push('_');
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// The `name` of every object in an array.
#[derive(Debug, Clone, Copy)]
struct Names;

impl Shape for Names {
    type Out = Vec<String>;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Vec<String>, A::Error> {
        let mut names = Vec::new();
        elements(seq, Field("name", Text), false, |name, _| {
            names.extend(name.flatten());
        })?;
        Ok(names)
    }
}

/// `generationConfig`: `maxOutputTokens` and `temperature`.
#[derive(Debug, Clone, Copy)]
struct ConfigShape;

impl Shape for ConfigShape {
    type Out = (Option<u64>, Option<f64>);

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let (mut max_tokens, mut temperature) = (None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("maxOutputTokens") => max_tokens = value(&mut map, U64)?,
                Some("temperature") => temperature = value(&mut map, F64)?,
                _ => skip(&mut map)?,
            }
        }
        Ok((max_tokens, temperature))
    }
}

/// One content as a GenAI input message.
fn input_message(c: &Value) -> Value {
    let role = match c.get("role").and_then(Value::as_str) {
        Some("model") => "assistant",
        Some(other) => other,
        None => "user",
    };
    serde_json::json!({"role": role, "parts": message_parts(c.get("parts"))})
}

/// One function declaration as a GenAI tool definition.
fn tool_definition(d: &Value) -> Value {
    serde_json::json!({
        "type": "function",
        "name": d.get("name"),
        "description": d.get("description"),
        "parameters": d.get("parameters").or_else(|| d.get("parametersJsonSchema")),
    })
}

/// Gemini parts as GenAI message parts.
fn message_parts(parts: Option<&Value>) -> Vec<Value> {
    parts
        .and_then(Value::as_array)
        .map(|parts| {
            parts
                .iter()
                .map(|p| {
                    if let Some(call) = p.get("functionCall") {
                        serde_json::json!({"type": "tool_call", "id": call.get("id"), "name": call.get("name"), "arguments": call.get("args")})
                    } else if let Some(resp) = p.get("functionResponse") {
                        serde_json::json!({"type": "tool_call_response", "id": resp.get("id"), "response": resp.get("response")})
                    } else if p.get("thought").and_then(Value::as_bool) == Some(true) {
                        serde_json::json!({"type": "reasoning", "content": p.get("text")})
                    } else if let Some(text) = p.get("text") {
                        serde_json::json!({"type": "text", "content": text})
                    } else {
                        serde_json::json!({"type": p.as_object().and_then(|o| o.keys().next()).map_or("unknown", |k| k.as_str())})
                    }
                })
                .collect()
        })
        .unwrap_or_default()
}

/// The HTTP status of an error object (`error.code`, which Google's JSON errors set to the
/// HTTP status).
fn error_status(v: &Value) -> Option<u16> {
    let code = v.get("error")?.get("code")?.as_u64()?;
    u16::try_from(code).ok().filter(|c| (100..600).contains(c))
}

fn error_type(v: &Value) -> Option<String> {
    let e = v.get("error")?;
    e.get("status")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| e.get("code").map(|c| c.to_string()))
}

/// `usageMetadata` → usage. The API's JSON is proto3's, which leaves out a count that is
/// zero: once `usageMetadata` is present, an omitted count is 0, not unknown.
fn usage(u: &Value) -> Usage {
    let n = |name: &str| u.get(name).and_then(Value::as_u64).unwrap_or(0);
    let thoughts = n("thoughtsTokenCount");
    Usage {
        input: Some(n("promptTokenCount").saturating_add(n("toolUsePromptTokenCount"))),
        output: Some(n("candidatesTokenCount").saturating_add(thoughts)),
        cache_read: Some(n("cachedContentTokenCount")),
        cache_write_5m: None,
        cache_write_1h: None,
        reasoning: Some(thoughts),
    }
}

fn parse_response(
    _op: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if !(200..300).contains(&status) {
        let error_type = json(body).ok().as_ref().and_then(|v| {
            // Errors of a streamed call can come as a one-element array.
            let v = v.as_array().and_then(|a| a.first()).unwrap_or(v);
            error_type(v)
        });
        return Ok(ResponseFacts {
            error_type,
            ..ResponseFacts::default()
        });
    }
    let v = json(body)?;
    let mut state = Gemini {
        capture: capture.then_some(usize::MAX),
        ..Gemini::default()
    };
    state.on_chunk(&v);
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Gemini {
        capture: capture.map(|c| c.saturating_add(1)),
        ..Gemini::default()
    })
}

#[derive(Debug, Default)]
struct Candidate {
    finish: Option<String>,
    parts: Vec<Value>,
}

#[derive(Debug, Default)]
struct Gemini {
    model: Option<String>,
    id: Option<String>,
    candidates: Vec<Candidate>,
    usage: Option<Usage>,
    tools_called: Vec<String>,
    error_type: Option<String>,
    error_status: Option<u16>,
    /// `promptFeedback.blockReason`: the prompt was refused; the answer is complete.
    block_reason: Option<String>,
    /// Byte budget for captured output; `None` when content is not captured.
    capture: Option<usize>,
}

impl Gemini {
    /// One response object (a JSON body, an SSE chunk or an array element). Returns whether
    /// it carried generated content.
    fn on_chunk(&mut self, outer: &Value) -> bool {
        let v = unwrap(outer, "response");
        if let Some(e) = error_type(v) {
            self.error_type = Some(e);
            self.error_status = error_status(v);
            return false;
        }
        // A blocked prompt is a whole answer: one chunk, no candidates, the reason why.
        if let Some(reason) = v
            .get("promptFeedback")
            .and_then(|f| f.get("blockReason"))
            .and_then(Value::as_str)
        {
            self.block_reason = Some(reason.to_owned());
        }
        if let Some(model) = v.get("modelVersion").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        if let Some(id) = v.get("responseId").and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        // A `usageMetadata` with no count at all (Code Assist sends `{"trafficType":…}`
        // alone on early chunks) says nothing: it must not read as zeros.
        if let Some(u) = v.get("usageMetadata").filter(|u| {
            u.as_object()
                .is_some_and(|m| m.keys().any(|k| k.ends_with("TokenCount")))
        }) {
            self.usage = Some(usage(u));
        }
        let mut generated = false;
        for c in v
            .get("candidates")
            .and_then(Value::as_array)
            .map(Vec::as_slice)
            .unwrap_or_default()
        {
            let index = c.get("index").and_then(Value::as_u64).unwrap_or(0).min(63) as usize;
            if self.candidates.len() <= index {
                self.candidates.resize_with(index + 1, Candidate::default);
            }
            let slot = &mut self.candidates[index];
            if let Some(reason) = c.get("finishReason").and_then(Value::as_str) {
                slot.finish = Some(reason.to_owned());
            }
            let parts = c.get("content").and_then(|c| c.get("parts"));
            for p in parts
                .and_then(Value::as_array)
                .map(Vec::as_slice)
                .unwrap_or_default()
            {
                if let Some(name) = p
                    .get("functionCall")
                    .and_then(|f| f.get("name"))
                    .and_then(Value::as_str)
                {
                    self.tools_called.push(name.to_owned());
                    generated = true;
                }
                // Code the model runs with the built-in code execution tool.
                if p.get("executableCode").is_some_and(Value::is_object) {
                    self.tools_called.push("code_execution".to_owned());
                    generated = true;
                }
                if p.get("text")
                    .and_then(Value::as_str)
                    .is_some_and(|t| !t.is_empty())
                {
                    generated = true;
                }
            }
            if let Some(budget) = &mut self.capture {
                for part in message_parts(parts) {
                    let size = part.to_string().len();
                    if size > *budget {
                        *budget = 0;
                        slot.parts.push(serde_json::json!({"type": "truncated"}));
                        break;
                    }
                    *budget -= size;
                    slot.parts.push(part);
                }
            }
        }
        generated
    }
}

impl StreamParser for Gemini {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        let v = json(event.data)?;
        Ok(Progress {
            delta: self.on_chunk(&v),
        })
    }

    fn facts(&self) -> ResponseFacts {
        let mut finish_reasons: Vec<String> = self
            .candidates
            .iter()
            .filter_map(|c| c.finish.clone())
            .collect();
        finish_reasons.extend(self.block_reason.clone());
        ResponseFacts {
            model: self.model.clone(),
            id: self.id.clone(),
            finish_reasons,
            usage: self.usage.clone().unwrap_or_default(),
            tools_called: self.tools_called.clone(),
            error_type: self.error_type.clone(),
            error_status: self.error_status,
            complete: self.terminal() && self.error_type.is_none(),
            service_tier: None,
            cache_write_unsplit: 0,
            output: self.capture.map(|_| {
                self.candidates
                    .iter()
                    .map(|c| serde_json::json!({"role": "assistant", "parts": c.parts, "finish_reason": c.finish}))
                    .collect()
            }),
        }
    }

    fn terminal(&self) -> bool {
        self.error_type.is_some()
            || self.block_reason.is_some()
            || self.candidates.iter().any(|c| c.finish.is_some())
    }
}

#[cfg(test)]
mod tests;
