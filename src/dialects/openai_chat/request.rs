//! A Chat Completions request body read for its facts (model, stream, max tokens, tools
//! offered, system and developer characters, messages) and, with capture, its content as
//! GenAI parts, capped as it is read. No JSON tree: [`crate::dialects::lenient`] reads the
//! body value by value.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::text_of;
use crate::dialects::{
    Operation, ParseError, RequestContent, RequestFacts,
    content::{InputMessage, Part, ToolDefinition, to_value},
    json,
    lenient::{
        self, Bool, F64, Field, OneOf, Shape, Tail, Text, TextChars, U64, elements, next_key, skip,
        value,
    },
};

pub(super) fn parse_request(
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
        params: r.params,
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
                Some("max_completion_tokens") => {
                    r.max_completion_tokens = Some(value(&mut map, U64)?);
                }
                Some("max_tokens") => r.max_tokens = value(&mut map, U64)?,
                Some("temperature") => r.temperature = value(&mut map, F64)?,
                Some("messages") => r.messages = value(&mut map, MessagesShape { capture })?,
                Some("tools") => r.tools = value(&mut map, ToolsShape { capture })?,
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
                let content = text_of(m.get("content")).into();
                messages.system.push(to_value(Part::Text { content }));
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
    to_value(ToolDefinition::function(
        "function",
        f.get("name"),
        f.get("description"),
        f.get("parameters"),
    ))
}

/// One Chat message as a GenAI input message.
fn message(m: &Value) -> Value {
    let role = m.get("role");
    let mut parts = Vec::new();
    let text = text_of(m.get("content"));
    if role.is_some_and(|r| r == "tool") {
        parts.push(Part::ToolCallResponse {
            id: m.get("tool_call_id").into(),
            response: text.into(),
        });
    } else if !text.is_empty() {
        parts.push(Part::Text {
            content: text.into(),
        });
    }
    for call in json::array(m, "tool_calls") {
        let f = call.get("function");
        parts.push(Part::ToolCall {
            id: call.get("id").into(),
            name: f.and_then(|f| f.get("name")).into(),
            arguments: f.and_then(|f| f.get("arguments")).into(),
        });
    }
    to_value(InputMessage {
        role: role.into(),
        parts,
    })
}
