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

use serde::{
    Deserialize,
    de::{IgnoredAny, MapAccess, SeqAccess, Visitor},
};
use serde_json::Value;

use super::lenient::{
    self, F64, Field, PartsChars, Read, Shape, Skip, Tail, Text, U64, captured, elements, next_key,
    skip, value,
};
use super::{
    Dialect, Framing, Operation, ParseError, Progress, Provider, RequestContent, RequestFacts,
    ResponseFacts, StreamParser, Target, Usage,
    content::{CaptureBudget, InputMessage, OutputMessage, Part, ToolDefinition, to_value},
    error_response_with,
    json::{self, NonEmpty, Object},
    sse,
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
                vec![to_value(Part::Text {
                    content: system_text.into(),
                })]
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
    let parts = json::array(c, "parts").iter().map(part).collect();
    to_value(InputMessage {
        role: role.into(),
        parts,
    })
}

/// One function declaration as a GenAI tool definition.
fn tool_definition(d: &Value) -> Value {
    to_value(ToolDefinition::function(
        "function",
        d.get("name"),
        d.get("description"),
        d.get("parameters")
            .or_else(|| d.get("parametersJsonSchema")),
    ))
}

/// One Gemini part as a GenAI message part (API reference: `Part`): a function call or
/// response, a thought, text, else its kind (its first key: `inlineData`, `executableCode`, …).
fn part(p: &Value) -> Part<'_> {
    if let Some(call) = p.get("functionCall") {
        Part::ToolCall {
            id: call.get("id").into(),
            name: call.get("name").into(),
            arguments: call.get("args").into(),
        }
    } else if let Some(resp) = p.get("functionResponse") {
        Part::ToolCallResponse {
            id: resp.get("id").into(),
            response: resp.get("response").into(),
        }
    } else if p.get("thought").and_then(Value::as_bool) == Some(true) {
        Part::Reasoning {
            content: p.get("text").into(),
        }
    } else if let Some(text) = p.get("text") {
        Part::Text {
            content: text.into(),
        }
    } else {
        let kind = p.as_object().and_then(|o| o.keys().next());
        Part::Other {
            kind: kind.map_or("unknown", String::as_str).into(),
        }
    }
}

fn parse_response(
    _op: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    // Errors of a streamed call can come as a one-element array.
    if let Some(facts) = error_response_with(status, body, First, |c| c.error?.error_type()) {
        return Ok(facts);
    }
    let (v, tree) = json::parse::<Chunk>(body, capture)?;
    let mut state = Gemini {
        capture: capture.then(CaptureBudget::unlimited),
        ..Gemini::default()
    };
    state.on_chunk(v, tree.as_ref());
    Ok(state.facts())
}

fn stream_parser(_op: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Gemini {
        capture: capture.map(CaptureBudget::new),
        ..Gemini::default()
    })
}

/// An error body's top level: an object, or an array whose first element is read (a streamed
/// call's error); anything else the default.
#[derive(Debug, Clone, Copy)]
struct First;

impl Shape for First {
    type Out = Chunk;

    fn object<'de, A: MapAccess<'de>>(self, map: A) -> Result<Chunk, A::Error> {
        json::Whole::<Chunk>::new().object(map)
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<Chunk, A::Error> {
        let first = seq.next_element_seed(Read(json::Whole::<Chunk>::new()))?;
        while seq.next_element_seed(Read(Skip))?.is_some() {}
        Ok(first.unwrap_or_default())
    }
}

/// One response object: a JSON body, an SSE chunk or an array element (API reference:
/// `GenerateContentResponse`); Code Assist wraps it in `{"response": …}`.
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct Chunk {
    /// Code Assist's wrapper: when an object, the response is it.
    #[serde(deserialize_with = "json::lenient")]
    response: Option<Box<Chunk>>,
    #[serde(deserialize_with = "json::lenient")]
    error: Option<WireError>,
    #[serde(deserialize_with = "json::lenient")]
    prompt_feedback: Option<PromptFeedback>,
    #[serde(deserialize_with = "json::lenient")]
    model_version: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    response_id: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    usage_metadata: Option<UsageMetadata>,
    #[serde(deserialize_with = "json::lenient")]
    candidates: Vec<WireCandidate>,
}

impl Object for Chunk {}

/// An error object (Google's JSON errors: `code` is the HTTP status, `status` its name).
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct WireError {
    #[serde(deserialize_with = "json::lenient")]
    status: Option<String>,
    /// A number; of any type, its JSON text names the error when `status` does not.
    #[serde(deserialize_with = "json::lenient")]
    code: Option<Value>,
}

impl Object for WireError {}

impl WireError {
    /// `status` (`RESOURCE_EXHAUSTED`), else `code` as JSON text.
    fn error_type(&self) -> Option<String> {
        self.status
            .clone()
            .or_else(|| self.code.as_ref().map(Value::to_string))
    }

    /// The HTTP status `code` stands for.
    fn status(&self) -> Option<u16> {
        let code = self.code.as_ref()?.as_u64()?;
        u16::try_from(code).ok().filter(|c| (100..600).contains(c))
    }
}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct PromptFeedback {
    #[serde(deserialize_with = "json::lenient")]
    block_reason: Option<String>,
}

impl Object for PromptFeedback {}

#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WireCandidate {
    #[serde(deserialize_with = "json::lenient")]
    index: Option<u64>,
    #[serde(deserialize_with = "json::lenient")]
    finish_reason: Option<String>,
    #[serde(deserialize_with = "json::lenient")]
    content: Option<Content>,
}

impl Object for WireCandidate {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Content {
    #[serde(deserialize_with = "json::lenient")]
    parts: Vec<WirePart>,
}

impl Object for Content {}

/// What a part says of the call: a non-empty text, a function call's name, code the model
/// runs (the built-in code execution tool).
#[derive(Debug, Default, Deserialize)]
#[serde(default, rename_all = "camelCase")]
struct WirePart {
    #[serde(deserialize_with = "json::lenient")]
    text: NonEmpty,
    #[serde(deserialize_with = "json::lenient")]
    function_call: Option<Named>,
    #[serde(deserialize_with = "json::lenient")]
    executable_code: Option<IgnoredAny>,
}

impl Object for WirePart {}

#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct Named {
    #[serde(deserialize_with = "json::lenient")]
    name: Option<String>,
}

impl Object for Named {}

/// `usageMetadata` with at least one count (a key ending in `TokenCount`, whatever its value):
/// Code Assist sends `{"trafficType":…}` alone on early chunks, which says nothing and must not
/// read as zeros. The rule is on keys, which a derived struct does not see, so this one is
/// read by hand.
#[derive(Debug, Default)]
struct UsageMetadata {
    prompt: Option<u64>,
    candidates: Option<u64>,
    cached: Option<u64>,
    thoughts: Option<u64>,
    tool_use_prompt: Option<u64>,
    has_counts: bool,
}

impl<'de> Deserialize<'de> for UsageMetadata {
    fn deserialize<D: serde::Deserializer<'de>>(de: D) -> Result<Self, D::Error> {
        de.deserialize_map(UsageVisitor)
    }
}

struct UsageVisitor;

impl<'de> Visitor<'de> for UsageVisitor {
    type Value = UsageMetadata;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("usageMetadata")
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<UsageMetadata, A::Error> {
        let mut u = UsageMetadata::default();
        while let Some(key) = map.next_key::<String>()? {
            u.has_counts |= key.ends_with("TokenCount");
            let slot = match key.as_str() {
                "promptTokenCount" => &mut u.prompt,
                "candidatesTokenCount" => &mut u.candidates,
                "cachedContentTokenCount" => &mut u.cached,
                "thoughtsTokenCount" => &mut u.thoughts,
                "toolUsePromptTokenCount" => &mut u.tool_use_prompt,
                _ => {
                    map.next_value_seed(Read(Skip))?;
                    continue;
                }
            };
            *slot = map.next_value_seed(Read(U64))?;
        }
        Ok(u)
    }
}

impl Object for UsageMetadata {}

impl UsageMetadata {
    /// The usage. The API's JSON is proto3's, which leaves out a count that is zero: once
    /// `usageMetadata` has a count, an omitted one is 0, not unknown.
    fn usage(&self) -> Usage {
        let n = |count: Option<u64>| count.unwrap_or(0);
        let thoughts = n(self.thoughts);
        Usage {
            input: Some(n(self.prompt).saturating_add(n(self.tool_use_prompt))),
            output: Some(n(self.candidates).saturating_add(thoughts)),
            cache_read: Some(n(self.cached)),
            cache_write_5m: None,
            cache_write_1h: None,
            reasoning: Some(thoughts),
        }
    }
}

#[derive(Debug, Default)]
struct Candidate {
    finish: Option<String>,
    /// Captured parts, as they came.
    parts: Vec<Part<'static>>,
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
    /// What captured content may still take; `None` when content is not captured.
    capture: Option<CaptureBudget>,
}

impl Gemini {
    /// One response object (a JSON body, an SSE chunk or an array element), with its tree when
    /// content is captured. Returns whether it carried generated content.
    fn on_chunk(&mut self, outer: Chunk, tree: Option<&Value>) -> bool {
        // Code Assist wraps the response: when `response` is an object, it is the response.
        let (v, tree) = match outer.response {
            Some(inner) => (*inner, tree.and_then(|t| t.get("response"))),
            None => (outer, tree),
        };
        if let Some(e) = &v.error
            && let Some(error_type) = e.error_type()
        {
            self.error_type = Some(error_type);
            self.error_status = e.status();
            return false;
        }
        // A blocked prompt is a whole answer: one chunk, no candidates, the reason why.
        if let Some(reason) = v.prompt_feedback.and_then(|f| f.block_reason) {
            self.block_reason = Some(reason);
        }
        if let Some(model) = v.model_version {
            self.model = Some(model);
        }
        if let Some(id) = v.response_id {
            self.id = Some(id);
        }
        if let Some(u) = v.usage_metadata.filter(|u| u.has_counts) {
            self.usage = Some(u.usage());
        }
        let mut generated = false;
        let raw = tree.map(|t| json::array(t, "candidates"));
        for (at, c) in v.candidates.iter().enumerate() {
            let index = c.index.unwrap_or(0).min(63) as usize;
            if self.candidates.len() <= index {
                self.candidates.resize_with(index + 1, Candidate::default);
            }
            let slot = &mut self.candidates[index];
            if let Some(reason) = &c.finish_reason {
                slot.finish = Some(reason.clone());
            }
            for p in c.content.iter().flat_map(|c| &c.parts) {
                if let Some(name) = p.function_call.as_ref().and_then(|f| f.name.as_ref()) {
                    self.tools_called.push(name.clone());
                    generated = true;
                }
                // Code the model runs with the built-in code execution tool.
                if p.executable_code.is_some() {
                    self.tools_called.push("code_execution".to_owned());
                    generated = true;
                }
                if p.text.0 {
                    generated = true;
                }
            }
            if let Some(budget) = &mut self.capture {
                let raw = raw.and_then(|r| r.get(at)?.get("content")?.get("parts"));
                let parts = raw.and_then(Value::as_array).map_or(&[][..], Vec::as_slice);
                let kept = parts.iter().map(part).map_while(|p| budget.admit(p));
                slot.parts.extend(kept.map(Part::into_owned));
            }
        }
        generated
    }
}

impl StreamParser for Gemini {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        let (v, tree) = json::parse::<Chunk>(event.data, self.capture.is_some())?;
        Ok(Progress {
            delta: self.on_chunk(v, tree.as_ref()),
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
            output: self.capture.as_ref().map(|_| {
                self.candidates
                    .iter()
                    .map(|c| {
                        let parts = c.parts.iter().map(Part::reborrow).collect();
                        to_value(OutputMessage::assistant(parts, c.finish.as_deref()))
                    })
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
