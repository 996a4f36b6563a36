//! A Messages request body read for its facts (model, stream, max tokens, tools offered,
//! system characters, messages, the session in `metadata.user_id`, the last cache
//! breakpoint's TTL) and, with capture, its content as GenAI parts, capped as it is read.
//! No JSON tree: [`crate::dialects::lenient`] reads the body value by value.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::part;
use crate::dialects::{
    Operation, ParseError, RequestContent, RequestFacts,
    content::{InputMessage, Part, ToolDefinition, to_value},
    lenient::{
        self, Bool, CacheControl, Chars, F64, Field, LastCacheTtl, Shape, Tail, Text, U64,
        elements, next_key, skip, value,
    },
};

pub(super) fn parse_request(
    operation: Operation,
    path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let r = lenient::parse(body, Body { capture })?;
    Ok(RequestFacts {
        model: r.model.or_else(|| {
            super::vertex_model(path)
                .filter(|(model, _)| *model != "count-tokens")
                .map(|(model, _)| model.to_owned())
        }),
        stream: operation == Operation::Chat && r.stream.unwrap_or(false),
        max_tokens: r.max_tokens,
        temperature: r.temperature,
        tools_offered: r.tools.names,
        system_chars: r.system.chars,
        messages: r.messages.count,
        conversation_id: r.user_id.as_deref().and_then(session_from_user_id),
        // Breakpoints apply in order tools → system → messages; the last one written wins.
        cache_ttl: r
            .cache_control
            .or(r.messages.cache_ttl)
            .or(r.system.cache_ttl)
            .or(r.tools.cache_ttl),
        params: r.params,
        content: capture.map(|_| RequestContent {
            system: r.system.parts.into_vec(),
            input: r.messages.input.into_vec(),
            tools: r.tools.definitions.into_vec(),
        }),
    })
}

/// What llmtap reads of a Messages request; content only with capture.
#[derive(Debug, Default)]
struct Request {
    model: Option<String>,
    stream: Option<bool>,
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    system: System,
    messages: Conversation,
    tools: Tools,
    /// `metadata.user_id`.
    user_id: Option<String>,
    /// A top-level `cache_control` (automatic caching: the breakpoint goes on the last
    /// cacheable block, so it is the request's last).
    cache_control: Option<String>,
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
                Some("max_tokens") => r.max_tokens = value(&mut map, U64)?,
                Some("temperature") => r.temperature = value(&mut map, F64)?,
                Some("system") => r.system = value(&mut map, SystemShape { capture })?,
                Some("messages") => r.messages = value(&mut map, ConversationShape { capture })?,
                Some("tools") => r.tools = value(&mut map, ToolsShape { capture })?,
                Some("cache_control") => r.cache_control = value(&mut map, CacheControl)?,
                Some("metadata") => {
                    r.user_id = value(&mut map, Field("user_id", Text))?.flatten();
                }
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

/// `system`: a string, or text blocks.
#[derive(Debug, Default)]
struct System {
    chars: u64,
    parts: Tail,
    /// The TTL of its last `cache_control` breakpoint.
    cache_ttl: Option<String>,
}

/// One system text block: its characters and its `cache_control` TTL.
#[derive(Debug, Clone, Copy)]
struct SystemBlock;

impl Shape for SystemBlock {
    type Out = (u64, Option<String>);

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut out = (0, None);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("text") => out.0 = value(&mut map, Chars)?,
                Some("cache_control") => out.1 = value(&mut map, CacheControl)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(out)
    }
}

#[derive(Debug, Clone, Copy)]
struct SystemShape {
    capture: Option<usize>,
}

impl Shape for SystemShape {
    type Out = System;

    fn string(self, s: &str) -> System {
        let mut parts = Tail::new(self.capture.unwrap_or(0));
        if self.capture.is_some() {
            parts.push(to_value(Part::Text { content: s.into() }));
        }
        System {
            chars: chars(s),
            parts,
            cache_ttl: None,
        }
    }

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<System, A::Error> {
        let mut system = System {
            chars: 0,
            parts: Tail::new(self.capture.unwrap_or(0)),
            cache_ttl: None,
        };
        elements(
            seq,
            SystemBlock,
            self.capture.is_some(),
            |(n, ttl), block| {
                system.chars += n;
                system.cache_ttl = ttl.or(system.cache_ttl.take());
                system
                    .parts
                    .extend(block.as_ref().map(|b| to_value(part(b))));
            },
        )?;
        Ok(system)
    }
}

/// `messages`: counted; each one converted only with capture.
#[derive(Debug, Default)]
struct Conversation {
    count: u64,
    input: Tail,
    /// The TTL of the last `cache_control` breakpoint in any message.
    cache_ttl: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct ConversationShape {
    capture: Option<usize>,
}

impl Shape for ConversationShape {
    type Out = Conversation;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Conversation, A::Error> {
        let mut input = Tail::new(self.capture.unwrap_or(0));
        let mut cache_ttl = None;
        let count = elements(seq, LastCacheTtl, self.capture.is_some(), |ttl, m| {
            cache_ttl = ttl.or(cache_ttl.take());
            input.extend(m.as_ref().map(input_message));
        })?;
        Ok(Conversation {
            count,
            input,
            cache_ttl,
        })
    }
}

/// `tools`: their names; definitions only with capture.
#[derive(Debug, Default)]
struct Tools {
    names: Vec<String>,
    definitions: Tail,
    /// The TTL of the last tool's `cache_control` breakpoint.
    cache_ttl: Option<String>,
}

/// One tool entry: its name (its type for server tools and toolsets, which have none) and
/// its `cache_control` TTL.
#[derive(Debug, Clone, Copy)]
struct ToolEntry;

impl Shape for ToolEntry {
    type Out = (Option<String>, Option<String>);

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let (mut name, mut kind, mut ttl) = (None, None, None);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("name") => name = value(&mut map, Text)?,
                Some("type") => kind = value(&mut map, Text)?,
                Some("cache_control") => ttl = value(&mut map, CacheControl)?,
                _ => skip(&mut map)?,
            }
        }
        Ok((name.or(kind), ttl))
    }
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
            cache_ttl: None,
        };
        elements(seq, ToolEntry, self.capture.is_some(), |(name, ttl), t| {
            tools.names.extend(name);
            tools.cache_ttl = ttl.or(tools.cache_ttl.take());
            tools.definitions.extend(t.as_ref().map(tool_definition));
        })?;
        Ok(tools)
    }
}

/// One message as a GenAI input message.
fn input_message(m: &Value) -> Value {
    let parts = match m.get("content") {
        Some(Value::String(s)) => vec![Part::Text { content: s.into() }],
        Some(Value::Array(blocks)) => blocks.iter().map(part).collect(),
        _ => Vec::new(),
    };
    to_value(InputMessage {
        role: m.get("role").into(),
        parts,
    })
}

/// One tool as a GenAI tool definition.
fn tool_definition(t: &Value) -> Value {
    to_value(match t.get("input_schema") {
        Some(schema) => {
            ToolDefinition::function("function", t.get("name"), t.get("description"), schema)
        }
        // Server tools (web search, code execution) and MCP toolsets: named by their type.
        None => ToolDefinition::provider(t.get("type"), t.get("name").or_else(|| t.get("type"))),
    })
}

/// Claude Code's `metadata.user_id` carries the session: either
/// `user_<hash>_account_<uuid>_session_<uuid>` or a JSON object with `session_id`.
pub(super) fn session_from_user_id(user_id: &str) -> Option<String> {
    let id = match lenient::parse_str(user_id, Field("session_id", Text)) {
        Ok(id) => id.flatten()?,
        Err(_) => user_id.rsplit_once("_session_")?.1.to_owned(),
    };
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then_some(id)
}

fn chars(s: &str) -> u64 {
    s.chars().count() as u64
}
