//! A Responses request body (or a WebSocket `response.create` frame) read for its facts
//! (model, stream, max tokens, tools offered, instructions and system characters, input
//! items, Codex's session) and, with capture, its content as GenAI parts, capped as it is
//! read. No JSON tree: [`crate::dialects::lenient`] reads the body value by value.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::{summary_parts, text_part, text_parts};
use crate::dialects::{
    Operation, ParseError, RequestContent, RequestFacts,
    content::{InputMessage, Part, ToolDefinition, Wire, to_value},
    json,
    lenient::{
        self, Bool, Chars, F64, Field, OneOf, Shape, Tail, Text, TextChars, U64, elements,
        next_key, skip, value,
    },
};

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
        to_value(ToolDefinition::function(
            t.get("type").and_then(Value::as_str).unwrap_or("function"),
            t.get("name"),
            t.get("description"),
            t.get("parameters"),
        ))
    })
}

pub(super) fn parse_request(
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
        params: r.params,
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
    params: crate::dialects::params::Params,
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
                name => {
                    if !r.params.read(name, &mut map)? {
                        skip(&mut map)?;
                    }
                }
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
            parts.push(to_value(Part::Text { content: s.into() }));
        }
        (TextChars.string(s), parts)
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<(u64, Tail), A::Error> {
        let (mut chars, mut parts) = (0, Tail::new(self.capture.unwrap_or(0)));
        let capture = self.capture.is_some();
        elements(seq, Field("text", Chars), capture, |n, p| {
            chars += n.unwrap_or(0);
            parts.extend(p.as_ref().map(|p| to_value(text_part(p))));
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
                if let Some(v) = &v {
                    let inner = json::array(v, "tools");
                    input.tool_definitions.extend(tool_definitions(inner));
                }
                return;
            }
            input.count += 1;
            if item.system {
                input.system_chars += item.chars;
            }
            match v {
                Some(v) if item.system => input
                    .system
                    .extend(text_parts(v.get("content")).into_iter().map(to_value)),
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
    let field = |name: &str| item.get(name).into();
    let (role, parts) = match item.get("type").and_then(Value::as_str) {
        Some("function_call" | "custom_tool_call") => (
            "assistant".into(),
            vec![Part::ToolCall {
                id: field("call_id"),
                name: field("name"),
                arguments: item.get("arguments").or_else(|| item.get("input")).into(),
            }],
        ),
        Some("function_call_output" | "custom_tool_call_output") => (
            "tool".into(),
            vec![Part::ToolCallResponse {
                id: field("call_id"),
                response: field("output"),
            }],
        ),
        Some("reasoning") => ("assistant".into(), summary_parts(item)),
        _ => (
            item.get("role").map_or("user".into(), Wire::from),
            text_parts(item.get("content").or(Some(item))),
        ),
    };
    to_value(InputMessage { role, parts })
}
