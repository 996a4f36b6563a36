//! Anthropic Messages API: `POST /v1/messages` (streamed or not) and
//! `POST /v1/messages/count_tokens`.
//!
//! Normalization (DESIGN §3): Anthropic's `input_tokens` excludes cache, so normalized input
//! is `input_tokens + cache_read_input_tokens + cache_creation_input_tokens`. Cache writes are
//! split 5m/1h from `usage.cache_creation`; without that object every write is 5m (the only
//! TTL that existed before it). `message_delta` usage is cumulative and final, so later
//! values replace earlier ones.

use serde::de::{MapAccess, SeqAccess};
use serde_json::Value;

use super::lenient::{
    self, Bool, CacheControl, Chars, F64, Field, LastCacheTtl, Shape, Tail, Text, U64, elements,
    next_key, skip, value,
};
use super::{
    Dialect, Framing, Operation, ParseError, Progress, Provider, RequestContent, RequestFacts,
    ResponseFacts, StreamParser, Target, Usage, json, sse,
};

pub const MESSAGES: Dialect = Dialect {
    name: "anthropic_messages",
    provider: Provider::Anthropic,
    detect,
    parse_request,
    parse_response,
    stream_parser,
    max_event: 512 << 10,
};

fn detect(t: &Target<'_>) -> Option<(Operation, Framing)> {
    if t.method != "POST" || t.websocket {
        return None;
    }
    match t.path.trim_end_matches('/') {
        "/v1/messages" => Some((Operation::Chat, Framing::Json)),
        "/v1/messages/count_tokens" => Some((Operation::CountTokens, Framing::Json)),
        _ => None,
    }
}

fn parse_request(
    operation: Operation,
    _path: &str,
    body: &[u8],
    capture: Option<usize>,
) -> Result<RequestFacts, ParseError> {
    let r = lenient::parse(body, Body { capture })?;
    Ok(RequestFacts {
        model: r.model,
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
                _ => skip(&mut map)?,
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
            parts.push(serde_json::json!({"type": "text", "content": s}));
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
                system.parts.extend(block.as_ref().map(part));
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
        Some(Value::String(s)) => vec![serde_json::json!({"type": "text", "content": s})],
        Some(Value::Array(blocks)) => blocks.iter().map(part).collect(),
        _ => Vec::new(),
    };
    serde_json::json!({"role": m.get("role").cloned().unwrap_or(Value::Null), "parts": parts})
}

/// One tool as a GenAI tool definition.
fn tool_definition(t: &Value) -> Value {
    match t.get("input_schema") {
        Some(schema) => serde_json::json!({
            "type": "function",
            "name": t.get("name"),
            "description": t.get("description"),
            "parameters": schema,
        }),
        // Server tools (web search, code execution) and MCP toolsets: named by their type.
        None => serde_json::json!({
            "type": t.get("type"),
            "name": t.get("name").or_else(|| t.get("type")),
        }),
    }
}

/// One Anthropic content block as a GenAI message part.
fn part(block: &Value) -> Value {
    let field = |name: &str| block.get(name).cloned().unwrap_or(Value::Null);
    match block.get("type").and_then(Value::as_str) {
        Some("text") => serde_json::json!({"type": "text", "content": field("text")}),
        Some("thinking") => serde_json::json!({"type": "reasoning", "content": field("thinking")}),
        Some(kind) if is_tool_call(kind) => serde_json::json!({
            "type": "tool_call", "id": field("id"), "name": field("name"), "arguments": field("input"),
        }),
        Some("tool_result") => serde_json::json!({
            "type": "tool_call_response", "id": field("tool_use_id"), "response": field("content"),
        }),
        Some(other) => serde_json::json!({"type": other}),
        None => serde_json::json!({"type": "unknown"}),
    }
}

/// Claude Code's `metadata.user_id` carries the session: either
/// `user_<hash>_account_<uuid>_session_<uuid>` or a JSON object with `session_id`.
fn session_from_user_id(user_id: &str) -> Option<String> {
    let id = match lenient::parse_str(user_id, Field("session_id", Text)) {
        Ok(id) => id.flatten()?,
        Err(_) => user_id.rsplit_once("_session_")?.1.to_owned(),
    };
    (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic())).then_some(id)
}

/// A content block that is a tool call, by rule rather than by list: every block type the
/// Messages API defines for one ends in `tool_use` (`tool_use`, `server_tool_use`,
/// `mcp_tool_use`), and none that is not (results end in `_result`).
fn is_tool_call(kind: &str) -> bool {
    kind.ends_with("tool_use")
}

fn chars(s: &str) -> u64 {
    s.chars().count() as u64
}

fn parse_response(
    operation: Operation,
    status: u16,
    body: &[u8],
    capture: bool,
) -> Result<ResponseFacts, ParseError> {
    if !(200..300).contains(&status) {
        // Error bodies from a gateway in front of the API need not be JSON; that is not a
        // parse failure of this dialect, just an error without a type.
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
            ..ResponseFacts::default()
        });
    }
    if operation == Operation::CountTokens {
        let usage = Usage {
            input: v.get("input_tokens").and_then(Value::as_u64),
            ..Usage::default()
        };
        return Ok(ResponseFacts {
            usage,
            complete: true,
            ..ResponseFacts::default()
        });
    }
    let mut parser = Messages::default();
    parser.on_message(&v);
    let blocks = v
        .get("content")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default();
    blocks.iter().for_each(|b| parser.on_block(b));
    parser.complete = true;
    let mut facts = parser.facts();
    if capture {
        facts.output = Some(vec![output_message(
            blocks.iter().map(part).collect(),
            &facts,
        )]);
    }
    Ok(facts)
}

fn output_message(parts: Vec<Value>, facts: &ResponseFacts) -> Value {
    serde_json::json!({"role": "assistant", "parts": parts, "finish_reason": facts.finish_reasons.first()})
}

/// The HTTP status an Anthropic error type stands for (the API's errors reference), for an
/// error that arrives inside a 200 stream.
fn error_status(error_type: &str) -> Option<u16> {
    Some(match error_type {
        "invalid_request_error" => 400,
        "authentication_error" => 401,
        "billing_error" => 402,
        "permission_error" => 403,
        "not_found_error" => 404,
        "request_too_large" => 413,
        "rate_limit_error" => 429,
        "api_error" => 500,
        "timeout_error" => 504,
        "overloaded_error" => 529,
        _ => return None,
    })
}

fn error_type(v: &Value) -> Option<String> {
    (v.get("type")?.as_str()? == "error")
        .then(|| v.get("error")?.get("type")?.as_str().map(str::to_owned))
        .flatten()
}

fn stream_parser(_operation: Operation, capture: Option<usize>) -> Box<dyn StreamParser> {
    Box::new(Messages {
        capture: capture.map(Output::new),
        ..Messages::default()
    })
}

/// Generated content kept for `--capture-content`, bounded by its byte budget.
#[derive(Debug, Default)]
struct Output {
    /// Per content block, in order: the block's start and its accumulated delta text.
    blocks: Vec<(Value, String)>,
    budget: usize,
}

impl Output {
    fn new(max_bytes: usize) -> Output {
        // One byte over the cap, so that the span side sees the cap was hit.
        Output {
            blocks: Vec::new(),
            budget: max_bytes.saturating_add(1),
        }
    }

    fn start(&mut self, block: &Value) {
        self.blocks.push((block.clone(), String::new()));
    }

    fn append(&mut self, text: &str) {
        if let Some((_, acc)) = self.blocks.last_mut() {
            super::append_capped(&mut self.budget, acc, text);
        }
    }

    fn parts(&self) -> Vec<Value> {
        self.blocks
            .iter()
            .map(|(start, acc)| {
                let mut block = start.clone();
                match block.get("type").and_then(Value::as_str) {
                    Some("text") => block["text"] = Value::String(acc.clone()),
                    Some("thinking") => block["thinking"] = Value::String(acc.clone()),
                    Some(kind) if is_tool_call(kind) && !acc.is_empty() => {
                        // Arguments arrive as JSON text in pieces; a truncated piece stays text.
                        block["input"] =
                            serde_json::from_str(acc).unwrap_or(Value::String(acc.clone()));
                    }
                    _ => {}
                }
                part(&block)
            })
            .collect()
    }
}

/// Raw usage counters as the wire carries them; normalized only in [`Messages::facts`].
#[derive(Debug, Default)]
struct RawUsage {
    input: Option<u64>,
    output: Option<u64>,
    cache_read: Option<u64>,
    cache_creation: Option<u64>,
    cache_5m: Option<u64>,
    cache_1h: Option<u64>,
    /// `usage.service_tier`: `standard`, `priority` or `batch`.
    service_tier: Option<String>,
    /// `usage.output_tokens_details.thinking_tokens` (part of `output_tokens`), when sent.
    reasoning: Option<u64>,
    /// Sums over `usage.iterations` (input, output, cache read, cache creation), which win
    /// over the top-level counts.
    iterations: Option<[Option<u64>; 4]>,
}

impl RawUsage {
    fn merge(&mut self, u: &Value) {
        let field = |name: &str| u.get(name).and_then(Value::as_u64);
        let set = |slot: &mut Option<u64>, v: Option<u64>| {
            if v.is_some() {
                *slot = v;
            }
        };
        set(&mut self.input, field("input_tokens"));
        set(&mut self.output, field("output_tokens"));
        set(&mut self.cache_read, field("cache_read_input_tokens"));
        set(
            &mut self.cache_creation,
            field("cache_creation_input_tokens"),
        );
        // With compaction the top-level counts are the `message` iteration's only; every
        // iteration (the compaction's own sampling included) is billed, so the call's
        // usage is their sum (Messages API, "Compaction": usage `iterations`).
        if let Some(iterations) = u
            .get("iterations")
            .and_then(Value::as_array)
            .filter(|i| !i.is_empty())
        {
            let sum = |name: &str| {
                iterations
                    .iter()
                    .filter_map(|i| i.get(name).and_then(Value::as_u64))
                    .fold(None, |acc: Option<u64>, n| {
                        Some(acc.unwrap_or(0).saturating_add(n))
                    })
            };
            // Kept apart: a later usage object without `iterations` must not replace them.
            self.iterations = Some([
                sum("input_tokens"),
                sum("output_tokens"),
                sum("cache_read_input_tokens"),
                sum("cache_creation_input_tokens"),
            ]);
        }
        set(
            &mut self.reasoning,
            u.get("output_tokens_details")
                .and_then(|d| d.get("thinking_tokens"))
                .and_then(Value::as_u64),
        );
        if let Some(tier) = u.get("service_tier").and_then(Value::as_str) {
            self.service_tier = Some(tier.to_owned());
        }
        if let Some(split) = u.get("cache_creation").filter(|c| c.is_object()) {
            let tier = |name: &str| split.get(name).and_then(Value::as_u64);
            set(&mut self.cache_5m, tier("ephemeral_5m_input_tokens"));
            set(&mut self.cache_1h, tier("ephemeral_1h_input_tokens"));
        }
    }

    /// The normalized usage, and the cache writes whose TTL the response did not say.
    ///
    /// `cache_creation_input_tokens` is what is billed as cache writes; the `cache_creation`
    /// object splits it by TTL. 5m + 1h must equal the total, so a split that is missing or
    /// sums to less (0/0 has been seen next to a non-zero total) leaves a remainder, counted
    /// as 5m here (the default TTL) and returned so that the request's TTL can claim it. A
    /// split that sums to more than the total wins over it.
    fn normalize(&self) -> (Usage, u64) {
        let [it_input, it_output, it_read, it_creation] = self.iterations.unwrap_or_default();
        let (input, output) = (it_input.or(self.input), it_output.or(self.output));
        let (cache_read, cache_creation) = (
            it_read.or(self.cache_read),
            it_creation.or(self.cache_creation),
        );
        let split = self
            .cache_5m
            .unwrap_or(0)
            .saturating_add(self.cache_1h.unwrap_or(0));
        let has_split = self.cache_5m.is_some() || self.cache_1h.is_some();
        let cache_created = match cache_creation {
            Some(total) => Some(total.max(split)),
            None => has_split.then_some(split),
        };
        let unsplit = cache_created.map_or(0, |total| total - split);
        let (cache_write_5m, cache_write_1h) = match cache_created {
            Some(_) => (
                Some(self.cache_5m.unwrap_or(0).saturating_add(unsplit)),
                Some(self.cache_1h.unwrap_or(0)),
            ),
            None => (None, None),
        };
        let usage = Usage {
            input: input.map(|i| {
                i.saturating_add(cache_read.unwrap_or(0))
                    .saturating_add(cache_created.unwrap_or(0))
            }),
            output,
            cache_read,
            cache_write_5m,
            cache_write_1h,
            reasoning: self.reasoning,
        };
        (usage, unsplit)
    }
}

/// State of one Messages response, streamed or not.
#[derive(Debug, Default)]
struct Messages {
    model: Option<String>,
    id: Option<String>,
    stop_reason: Option<String>,
    usage: RawUsage,
    tools_called: Vec<String>,
    error_type: Option<String>,
    complete: bool,
    capture: Option<Output>,
}

impl Messages {
    fn on_message(&mut self, m: &Value) {
        if let Some(id) = m.get("id").and_then(Value::as_str) {
            self.id = Some(id.to_owned());
        }
        if let Some(model) = m.get("model").and_then(Value::as_str) {
            self.model = Some(model.to_owned());
        }
        if let Some(reason) = m.get("stop_reason").and_then(Value::as_str) {
            self.stop_reason = Some(reason.to_owned());
        }
        if let Some(usage) = m.get("usage") {
            self.usage.merge(usage);
        }
    }

    fn on_block(&mut self, block: &Value) {
        let kind = block
            .get("type")
            .and_then(Value::as_str)
            .unwrap_or_default();
        if is_tool_call(kind) {
            let name = block.get("name").and_then(Value::as_str).unwrap_or(kind);
            self.tools_called.push(name.to_owned());
        }
    }
}

impl StreamParser for Messages {
    fn on_event(&mut self, event: &sse::Event<'_>) -> Result<Progress, ParseError> {
        // `ping` carries `{"type": "ping"}`; skip the JSON work for the cheap common cases.
        if event.name == b"ping" {
            return Ok(Progress::default());
        }
        let v = json(event.data)?;
        let kind = v.get("type").and_then(Value::as_str).unwrap_or_default();
        let mut progress = Progress::default();
        match kind {
            "message_start" => {
                if let Some(m) = v.get("message") {
                    self.on_message(m);
                }
            }
            "content_block_start" => {
                if let Some(block) = v.get("content_block") {
                    self.on_block(block);
                    if let Some(output) = &mut self.capture {
                        output.start(block);
                    }
                }
            }
            "content_block_delta" => {
                let delta = v.get("delta");
                let kind = delta.and_then(|d| d.get("type")).and_then(Value::as_str);
                progress.delta = matches!(
                    kind,
                    Some("text_delta" | "thinking_delta" | "input_json_delta")
                );
                if let (Some(output), Some(delta)) = (&mut self.capture, delta) {
                    let text = ["text", "thinking", "partial_json"]
                        .iter()
                        .find_map(|k| delta.get(*k).and_then(Value::as_str));
                    if let Some(text) = text {
                        output.append(text);
                    }
                }
            }
            "message_delta" => {
                if let Some(delta) = v.get("delta") {
                    self.on_message(delta);
                }
                if let Some(usage) = v.get("usage") {
                    self.usage.merge(usage);
                }
            }
            "message_stop" => self.complete = true,
            "error" => self.error_type = error_type(&v).or_else(|| Some("error".to_owned())),
            _ => {}
        }
        Ok(progress)
    }

    fn facts(&self) -> ResponseFacts {
        let (usage, cache_write_unsplit) = self.usage.normalize();
        let mut facts = ResponseFacts {
            model: self.model.clone(),
            id: self.id.clone(),
            finish_reasons: self.stop_reason.iter().cloned().collect(),
            usage,
            tools_called: self.tools_called.clone(),
            error_type: self.error_type.clone(),
            error_status: self.error_type.as_deref().and_then(error_status),
            complete: self.complete,
            service_tier: self.usage.service_tier.clone(),
            cache_write_unsplit,
            output: None,
        };
        if let Some(output) = &self.capture {
            facts.output = Some(vec![output_message(output.parts(), &facts)]);
        }
        facts
    }

    fn terminal(&self) -> bool {
        self.complete || self.error_type.is_some()
    }
}

#[cfg(test)]
mod tests;
