//! A `Converse` request body read for its facts (max tokens, temperature, tools offered,
//! system characters, messages, the last `cachePoint`'s TTL) and, with capture, its content as
//! GenAI parts, capped as it is read; model and stream come from the path. No JSON tree:
//! [`crate::dialects::lenient`] reads the body value by value, one message at a time.
//!
//! Shapes (API reference, `Converse` request): `messages[{role, content: [ContentBlock]}]`,
//! `system[{text} | {cachePoint}]`, `inferenceConfig{maxTokens, temperature, topP,
//! stopSequences}`, `toolConfig.tools[{toolSpec{name, description, inputSchema{json}}} |
//! {systemTool{name}} | {cachePoint}]`. Amazon Nova's `InvokeModel` body has the same
//! `messages`, `system`, `inferenceConfig` (`max_new_tokens` beside `maxTokens`) and
//! `toolConfig`, so `InvokeModel` reads non-Anthropic bodies here too, with the top-level
//! `max_tokens` (Mistral), `max_gen_len` (Meta Llama) and `temperature` as fallbacks; a
//! `Converse` body has none of those keys (the API rejects unknown members).

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::{model_from_path, part, streamed};
use crate::dialects::{
    Operation, ParseError, RequestContent, RequestFacts,
    content::{InputMessage, ToolDefinition, to_value},
    lenient::{
        self, CacheControl, Chars, F64, Shape, Tail, Text, U64, elements, next_key, skip, value,
    },
};

/// `Converse` and `ConverseStream` requests.
pub(super) fn parse_converse(
    _operation: Operation,
    path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let r = lenient::parse(body, Body { capture })?;
    Ok(facts(r, path, capture))
}

/// The facts of a body read by [`Body`].
pub(super) fn facts(r: Request, path: &str, capture: Option<usize>) -> RequestFacts {
    RequestFacts {
        model: model_from_path(path),
        stream: streamed(path),
        max_tokens: r.config.max_tokens.or(r.max_tokens),
        temperature: r.config.temperature.or(r.temperature),
        tools_offered: r.tools.names,
        system_chars: r.system.chars,
        messages: r.messages.count,
        conversation_id: None,
        // Bedrock requires TTLs that do not increase tools → system → messages; the last
        // breakpoint is the one whose TTL a write the response does not split went to.
        cache_ttl: r
            .messages
            .cache_ttl
            .or(r.system.cache_ttl)
            .or(r.tools.cache_ttl),
        params: r.config.params,
        content: capture.map(|_| RequestContent {
            system: r.system.parts.into_vec(),
            input: r.messages.input.into_vec(),
            tools: r.tools.definitions.into_vec(),
        }),
    }
}

/// What llmtap reads of a `Converse` (or Nova `InvokeModel`) request; content only with
/// capture.
#[derive(Debug, Default)]
pub(super) struct Request {
    system: System,
    messages: Conversation,
    tools: Tools,
    config: Config,
    /// Top-level `max_tokens` or `max_gen_len` (`InvokeModel` bodies of other models).
    max_tokens: Option<u64>,
    temperature: Option<f64>,
}

/// The request body: an object, else empty facts. `capture`: the content cap.
#[derive(Debug, Clone, Copy)]
pub(super) struct Body {
    pub(super) capture: Option<usize>,
}

impl Shape for Body {
    type Out = Request;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Request, A::Error> {
        let Body { capture } = self;
        let mut r = Request::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("system") => r.system = value(&mut map, SystemShape { capture })?,
                Some("messages") => r.messages = value(&mut map, ConversationShape { capture })?,
                Some("toolConfig") => r.tools = value(&mut map, ToolConfig { capture })?,
                Some("inferenceConfig") => r.config = value(&mut map, ConfigShape)?,
                Some("max_tokens" | "max_gen_len") => r.max_tokens = value(&mut map, U64)?,
                Some("temperature") => r.temperature = value(&mut map, F64)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(r)
    }
}

/// `inferenceConfig`.
#[derive(Debug, Default)]
struct Config {
    max_tokens: Option<u64>,
    temperature: Option<f64>,
    params: crate::dialects::params::Params,
}

#[derive(Debug, Clone, Copy)]
struct ConfigShape;

impl Shape for ConfigShape {
    type Out = Config;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Config, A::Error> {
        let mut c = Config::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("maxTokens" | "max_new_tokens") => c.max_tokens = value(&mut map, U64)?,
                Some("temperature") => c.temperature = value(&mut map, F64)?,
                name => {
                    if !c.params.read(name, &mut map)? {
                        skip(&mut map)?;
                    }
                }
            }
        }
        Ok(c)
    }
}

/// One content block (of `system`, a message or `toolConfig.tools`): its `text` characters,
/// the TTL of its `cachePoint` (`"5m"` when it names none), and a tool's name.
#[derive(Debug, Clone, Copy)]
struct BlockShape;

#[derive(Debug, Default)]
struct BlockFacts {
    chars: u64,
    cache_ttl: Option<String>,
    tool: Option<String>,
}

impl Shape for BlockShape {
    type Out = BlockFacts;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<BlockFacts, A::Error> {
        let mut b = BlockFacts::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("text") => b.chars = value(&mut map, Chars)?,
                Some("cachePoint") => b.cache_ttl = value(&mut map, CacheControl)?,
                Some("toolSpec" | "systemTool") => b.tool = value(&mut map, Name)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(b)
    }
}

/// An object's `name`.
#[derive(Debug, Clone, Copy)]
struct Name;

impl Shape for Name {
    type Out = Option<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut name = None;
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("name") => name = value(&mut map, Text)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(name)
    }
}

/// Whether a block is a cache breakpoint, which is no content.
fn is_cache_point(block: &Value) -> bool {
    block.get("cachePoint").is_some()
}

/// `system`: text blocks and breakpoints.
#[derive(Debug, Default)]
struct System {
    chars: u64,
    parts: Tail,
    cache_ttl: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct SystemShape {
    capture: Option<usize>,
}

impl Shape for SystemShape {
    type Out = System;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<System, A::Error> {
        let mut system = System {
            parts: Tail::new(self.capture.unwrap_or(0)),
            ..System::default()
        };
        elements(seq, BlockShape, self.capture.is_some(), |b, block| {
            system.chars += b.chars;
            system.cache_ttl = b.cache_ttl.or(system.cache_ttl.take());
            let block = block.filter(|v| !is_cache_point(v));
            system
                .parts
                .extend(block.as_ref().map(|v| to_value(part(v))));
        })?;
        Ok(system)
    }
}

/// One message: the TTL of the last `cachePoint` in its content.
#[derive(Debug, Clone, Copy)]
struct MessageShape;

impl Shape for MessageShape {
    type Out = Option<String>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut ttl = None;
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("content") => ttl = value(&mut map, LastCachePoint)?,
                _ => skip(&mut map)?,
            }
        }
        Ok(ttl)
    }
}

/// The TTL of the last `cachePoint` block of an array of blocks.
#[derive(Debug, Clone, Copy)]
struct LastCachePoint;

impl Shape for LastCachePoint {
    type Out = Option<String>;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Self::Out, A::Error> {
        let mut last = None;
        elements(seq, BlockShape, false, |b, _| {
            last = b.cache_ttl.or(last.take());
        })?;
        Ok(last)
    }
}

/// `messages`: counted; each converted only with capture.
#[derive(Debug, Default)]
struct Conversation {
    count: u64,
    input: Tail,
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
        let count = elements(seq, MessageShape, self.capture.is_some(), |ttl, m| {
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

/// One message as a GenAI input message (breakpoints left out).
fn input_message(m: &Value) -> Value {
    let content = m.get("content").and_then(Value::as_array);
    let parts = content
        .into_iter()
        .flatten()
        .filter(|b| !is_cache_point(b))
        .map(part)
        .collect();
    to_value(InputMessage {
        role: m.get("role").into(),
        parts,
    })
}

/// `toolConfig.tools`: names; definitions only with capture.
#[derive(Debug, Default)]
struct Tools {
    names: Vec<String>,
    definitions: Tail,
    cache_ttl: Option<String>,
}

#[derive(Debug, Clone, Copy)]
struct ToolConfig {
    capture: Option<usize>,
}

impl Shape for ToolConfig {
    type Out = Tools;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Tools, A::Error> {
        let mut tools = Tools::default();
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("tools") => tools = value(&mut map, ToolsShape(self))?,
                _ => skip(&mut map)?,
            }
        }
        Ok(tools)
    }
}

#[derive(Debug, Clone, Copy)]
struct ToolsShape(ToolConfig);

impl Shape for ToolsShape {
    type Out = Tools;

    fn array<'de, A: SeqAccess<'de>>(self, seq: A) -> Result<Tools, A::Error> {
        let capture = self.0.capture;
        let mut tools = Tools {
            definitions: Tail::new(capture.unwrap_or(0)),
            ..Tools::default()
        };
        elements(seq, BlockShape, capture.is_some(), |b, t| {
            tools.names.extend(b.tool);
            tools.cache_ttl = b.cache_ttl.or(tools.cache_ttl.take());
            let t = t.filter(|v| !is_cache_point(v));
            tools.definitions.extend(t.as_ref().map(tool_definition));
        })?;
        Ok(tools)
    }
}

/// One tool as a GenAI tool definition: a `toolSpec` as a function with its
/// `inputSchema.json`, a `systemTool` (a tool Bedrock runs) by its name.
fn tool_definition(t: &Value) -> Value {
    to_value(match t.get("toolSpec") {
        Some(spec) => ToolDefinition::function(
            "function",
            spec.get("name"),
            spec.get("description"),
            spec.get("inputSchema").and_then(|s| s.get("json")),
        ),
        None => {
            let system = t.get("systemTool");
            ToolDefinition::provider("system_tool", system.and_then(|s| s.get("name")))
        }
    })
}
