//! What one call shows of the agent's loop around it, read the same way for every dialect:
//! the tool calls a response asks for (with the ids their results will carry), the tool
//! results a request carries, and the thread the request continues.
//!
//! Owns: [`ToolCall`] and [`ToolResult`]; [`read_request`], one tree-less reader of every
//! dialect's request body for these facts (the conversation shapes of Messages, Chat,
//! Responses, Gemini and Converse differ in names, not in structure, so one reader that knows
//! each name replaces a change to each dialect's reader); [`ArgScan`], which finds a subagent's
//! name in tool arguments streamed piece by piece; [`SUBAGENT_TOOLS`].
//!
//! Does not own: matching calls to results, threads across calls, clocks (the `agentloop`
//! module, on the telemetry thread). Nothing here keeps prompt text: the thread is a hash.

use serde::de::{MapAccess, SeqAccess};

use super::{
    ParseError,
    lenient::{self, Shape, next_key, skip, value},
};

/// Tool calls kept per response, and tool results per request (the last ones: a request
/// carries the whole conversation, and the results it adds come last). Past it the earlier
/// ones are dropped.
pub const MAX_TOOL_IDS: usize = 64;

/// Longest tool call id kept (Anthropic's `toolu_…` and OpenAI's `call_…` are ~30 bytes);
/// a longer one is not matched.
pub const MAX_ID_BYTES: usize = 128;

/// A tool call the model asked for: Anthropic `tool_use` (`id`, `name`), Chat
/// `tool_calls[]` (`id`, `function.name`), Responses `function_call` (`call_id`, `name`),
/// Gemini `functionCall` (`id` where present, `name`), Converse `toolUse` (`toolUseId`,
/// `name`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolCall {
    /// The id its result will carry; `None` when the API gave none (Gemini without ids).
    pub id: Option<String>,
    /// The tool's name, as the model called it.
    pub name: String,
    /// For a tool that starts a subagent ([`SUBAGENT_TOOLS`]): the subagent's name from
    /// the call's arguments, else the tool's own name.
    pub subagent: Option<String>,
}

/// A tool result a request carries: Anthropic `tool_result` (`tool_use_id`, `is_error`),
/// Chat `tool` message (`tool_call_id`), Responses `function_call_output` /
/// `custom_tool_call_output` (`call_id`), Gemini `functionResponse` (`id`, `name`; an
/// `error` in its `response`), Converse `toolResult` (`toolUseId`, `status: "error"`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ToolResult {
    /// The id of the call it answers; for Gemini without ids, `None` and matched by name.
    pub id: Option<String>,
    /// The tool's name when the result says it (Gemini).
    pub name: Option<String>,
    /// The result says the tool failed.
    pub error: bool,
}

/// Tools that start a subagent, and the argument fields that name it, first found wins
/// (README, "Agents"; read from the pinned agents' own tool schemas):
/// - Claude Code 2.1.197: `Agent` (`description`, `prompt`, `subagent_type`: `Explore`,
///   `general-purpose`, a user's agent); `Task` with the same input in earlier versions.
/// - Codex 0.169.0: `spawn_agent` (`task_name`, `message`), in its `collaboration` namespace.
/// - Gemini CLI 0.61.0: `invoke_agent` (`agent_name`, `prompt`).
///
/// When no field names it, the subagent is named after the tool.
pub const SUBAGENT_TOOLS: &[(&str, &[&str])] = &[
    ("Agent", &["subagent_type"]),
    ("Task", &["subagent_type"]),
    ("spawn_agent", &["task_name"]),
    ("invoke_agent", &["agent_name"]),
];

/// The fields naming the subagent when `tool` starts one.
pub fn subagent_fields(tool: &str) -> Option<&'static [&'static str]> {
    SUBAGENT_TOOLS
        .iter()
        .find(|(name, _)| *name == tool)
        .map(|(_, fields)| *fields)
}

/// Longest tool name kept, in bytes (longer ones are cut at a character boundary): names are
/// labels, and what waits for a result must stay small.
pub const MAX_NAME_BYTES: usize = 128;

/// A tool call, its id checked (an id over [`MAX_ID_BYTES`] or empty is no id) and its name
/// cut to [`MAX_NAME_BYTES`].
pub(crate) fn tool_call(id: Option<&str>, name: &str, subagent: Option<String>) -> ToolCall {
    let end = super::floor_char_boundary(name, MAX_NAME_BYTES);
    ToolCall {
        id: id.filter(|i| usable_id(i)).map(str::to_owned),
        name: name[..end].to_owned(),
        subagent: subagent.or_else(|| subagent_fields(name).map(|_| name.to_owned())),
    }
}

fn usable_id(id: &str) -> bool {
    !id.is_empty() && id.len() <= MAX_ID_BYTES
}

/// The tool calls of one response as a parser meets them: whole, or started and then
/// completed by argument pieces (keyed by the stream's own index of the call). At most
/// [`MAX_TOOL_IDS`] (a response with more keeps its first ones).
#[derive(Debug, Clone, Default)]
pub(crate) struct ToolCalls {
    calls: Vec<ToolCall>,
    /// Calls to subagent tools whose arguments are still streaming: (key, call, scan).
    scans: Vec<(u64, usize, ArgScan)>,
}

impl ToolCalls {
    /// A call whose arguments are known whole (`subagent`: the name they give, if any) or
    /// will arrive by [`ToolCalls::args`] under `key`.
    pub(crate) fn start(
        &mut self,
        key: u64,
        id: Option<&str>,
        name: &str,
        subagent: Option<String>,
    ) {
        if self.calls.len() >= MAX_TOOL_IDS {
            return;
        }
        if subagent.is_none()
            && let Some(scan) = ArgScan::for_tool(name)
        {
            self.scans.push((key, self.calls.len(), scan));
        }
        self.calls.push(tool_call(id, name, subagent));
    }

    /// A piece of the arguments' JSON text of the call started under `key`.
    pub(crate) fn args(&mut self, key: u64, piece: &str) {
        if let Some((_, _, scan)) = self.scans.iter_mut().find(|(k, _, _)| *k == key) {
            scan.push(piece);
        }
    }

    /// The calls so far, subagents named from what their arguments said so far.
    pub(crate) fn calls(&self) -> Vec<ToolCall> {
        let mut calls = self.calls.clone();
        for (_, at, scan) in &self.scans {
            if let (Some(call), Some(name)) = (calls.get_mut(*at), scan.finish()) {
                call.subagent = Some(name);
            }
        }
        calls
    }
}

/// A subagent tool's arguments read as an object (a non-streamed body, Gemini's `args`):
/// the fields [`SUBAGENT_TOOLS`] name.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default)]
pub(crate) struct SubagentArgs {
    #[serde(deserialize_with = "super::json::lenient")]
    subagent_type: Option<String>,
    #[serde(deserialize_with = "super::json::lenient")]
    task_name: Option<String>,
    #[serde(deserialize_with = "super::json::lenient")]
    agent_name: Option<String>,
}

impl super::json::Object for SubagentArgs {}

impl SubagentArgs {
    /// The subagent's name by `tool`'s fields, when `tool` starts one and a field is set.
    pub(crate) fn name_for(&self, tool: &str) -> Option<String> {
        subagent_fields(tool)?.iter().find_map(|f| {
            let v = match *f {
                "subagent_type" => &self.subagent_type,
                "task_name" => &self.task_name,
                "agent_name" => &self.agent_name,
                _ => &None,
            };
            v.as_deref().filter(|n| valid_name(n)).map(str::to_owned)
        })
    }
}

/// Finds a subagent's name in a tool call's arguments (JSON text) as they stream, in bounded
/// memory: the text is kept up to 2 KiB; past that it is searched, and all but its last 256
/// bytes (more than a field and its value can span, since the value is capped) dropped.
#[derive(Debug, Clone)]
pub(crate) struct ArgScan {
    fields: &'static [&'static str],
    text: String,
    found: Option<String>,
}

const SCAN_KEEP: usize = 2 << 10;
const SCAN_TAIL: usize = 256;
/// Longest subagent name read (longer values are not names).
const MAX_NAME: usize = 64;

impl ArgScan {
    /// A scanner for `tool`'s naming fields, or `None` when it starts no subagent.
    pub(crate) fn for_tool(tool: &str) -> Option<ArgScan> {
        Some(ArgScan {
            fields: subagent_fields(tool)?,
            text: String::new(),
            found: None,
        })
    }

    /// The next piece of the arguments' JSON text.
    pub(crate) fn push(&mut self, piece: &str) {
        if self.found.is_some() {
            return;
        }
        self.text.push_str(piece);
        if self.text.len() > SCAN_KEEP {
            self.found = find_field(&self.text, self.fields);
            let cut = super::floor_char_boundary(&self.text, self.text.len() - SCAN_TAIL);
            self.text.drain(..cut);
        }
    }

    /// The subagent's name, when a naming field was found.
    pub(crate) fn finish(&self) -> Option<String> {
        self.found
            .clone()
            .or_else(|| find_field(&self.text, self.fields))
    }
}

/// A subagent name fit to be a label, an attribute and a report row: 1 to [`MAX_NAME`]
/// characters of `[A-Za-z0-9._:@+ -]` (model output: anything else is refused, not mangled).
fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._:@+ -".contains(&b))
}

/// The first of `fields` with a short string value in the JSON text `text` (a whole object or
/// a window of one): `"field"`, optional whitespace, `:`, optional whitespace, a string
/// without escapes of at most [`MAX_NAME`] characters from `[A-Za-z0-9._:@+ -]`.
fn find_field(text: &str, fields: &[&str]) -> Option<String> {
    fields.iter().find_map(|field| {
        let quoted = format!("\"{field}\"");
        text.match_indices(&quoted).find_map(|(at, _)| {
            let rest = text[at + quoted.len()..].trim_start();
            let rest = rest.strip_prefix(':')?.trim_start().strip_prefix('"')?;
            let end = rest.find('"')?;
            let name = &rest[..end];
            valid_name(name).then(|| name.to_owned())
        })
    })
}

/// What a request body shows of the loop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoopRequest {
    /// The thread: SHA-256 of the system prompt's text and the first user turn's text, first
    /// 8 bytes. `None` when the request has neither.
    pub thread: Option<[u8; 8]>,
    /// The tool results it carries, the last [`MAX_TOOL_IDS`].
    pub tool_results: Vec<ToolResult>,
    /// Responses `previous_response_id`: the request continues that response's thread.
    pub previous_response_id: Option<String>,
    /// The agent marks the request as a compaction ([`COMPACTION_USER`],
    /// [`COMPACTION_SYSTEM`], Codex's `compaction_trigger` item).
    pub compaction: bool,
}

/// How an agent asks the model to compact the conversation, as the pinned agents send it:
/// - Claude Code 2.1.197: the last user message begins "CRITICAL: Respond with TEXT ONLY"
///   and asks "Your task is to create a detailed summary of" the conversation (whole, up to a
///   point, or its recent part);
/// - Gemini CLI 0.61.0: a request whose system prompt begins "You are a specialized system
///   component responsible for distilling chat history into a structured XML
///   <state_snapshot>".
///
/// Codex marks its own with a `compaction_trigger` input item, or sends it to
/// `/responses/compact`. A marker quoted elsewhere (a
/// project note in the system prompt, a user asking about summaries) is no compaction.
pub const COMPACTION_USER: (&str, &str) = (
    "CRITICAL: Respond with TEXT ONLY",
    "Your task is to create a detailed summary of",
);

/// Gemini CLI's compression prompt: a system prompt beginning with it is a compaction.
pub const COMPACTION_SYSTEM: &str = "You are a specialized system component responsible for distilling chat history into a structured XML <state_snapshot>";

/// A user message's text that asks for a compaction ([`COMPACTION_USER`]).
fn has_marker(text: &str) -> bool {
    let (starts, asks) = COMPACTION_USER;
    text.trim_start().starts_with(starts) && text.contains(asks)
}

/// Reads a request body of any dialect for its [`LoopRequest`]. The names it knows:
/// system text in `system` (Messages, Converse), `instructions` (Responses),
/// `systemInstruction` (Gemini), messages of role `system`/`developer` before the first user
/// message (Chat, Responses); the conversation in `messages`, `input` or `contents`, Code
/// Assist's wrapper `request`; a message's blocks in `content` or `parts`, their text in
/// `text`. `api_path`: the path after the provider's prefix, which marks Codex's remote
/// compaction (`POST /responses/compact`, a JSON body whose `output` replaces the
/// conversation). Errors as [`lenient::parse`].
pub fn read_request(api_path: &str, body: &[u8]) -> Result<LoopRequest, ParseError> {
    let mut acc = Acc {
        compaction: api_path.trim_end_matches('/') == "/responses/compact",
        ..Acc::default()
    };
    lenient::parse(body, Top { acc: &mut acc })?;
    Ok(acc.finish())
}

#[derive(Default)]
struct Acc {
    system: Option<aws_lc_rs::digest::Context>,
    first_user: Option<aws_lc_rs::digest::Context>,
    /// The first user message has been read whole.
    first_done: bool,
    results: std::collections::VecDeque<ToolResult>,
    previous_response_id: Option<String>,
    /// The last user message read carries a compaction marker.
    last_user_marker: bool,
    /// The system prompt carries one, or a `compaction_trigger` item was read.
    compaction: bool,
}

impl std::fmt::Debug for Acc {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Acc").finish_non_exhaustive()
    }
}

fn sha256() -> aws_lc_rs::digest::Context {
    aws_lc_rs::digest::Context::new(&aws_lc_rs::digest::SHA256)
}

impl Acc {
    fn system_text(&mut self, text: &str) {
        // Claude Code's first system block is a billing line whose checksum (`cch=`) changes
        // with every request: it is a header carried in the prompt, not the prompt.
        if text.starts_with("x-anthropic-billing-header:") {
            return;
        }
        self.compaction |= text.trim_start().starts_with(COMPACTION_SYSTEM);
        let h = self.system.get_or_insert_with(sha256);
        h.update(&(text.len() as u64).to_le_bytes());
        h.update(text.as_bytes());
    }

    fn result(&mut self, mut result: ToolResult) {
        if result.id.as_deref().is_some_and(|i| !usable_id(i)) {
            return;
        }
        result.name = result.name.filter(|n| n.len() <= MAX_NAME_BYTES);
        if self.results.len() == MAX_TOOL_IDS {
            self.results.pop_front();
        }
        self.results.push_back(result);
    }

    fn finish(self) -> LoopRequest {
        let thread = (self.system.is_some() || self.first_user.is_some()).then(|| {
            let mut h = sha256();
            for (tag, part) in [(b's', self.system), (b'u', self.first_user)] {
                h.update(&[tag]);
                if let Some(part) = part {
                    h.update(part.finish().as_ref());
                }
            }
            let digest = h.finish();
            let mut id = [0u8; 8];
            id.copy_from_slice(&digest.as_ref()[..8]);
            id
        });
        LoopRequest {
            thread,
            tool_results: self.results.into(),
            previous_response_id: self.previous_response_id,
            compaction: self.compaction || self.last_user_marker,
        }
    }
}

/// The body's top level (and Code Assist's `request`).
struct Top<'a> {
    acc: &'a mut Acc,
}

impl Shape for Top<'_> {
    type Out = ();

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("system" | "instructions" | "systemInstruction") => {
                    value(
                        &mut map,
                        System {
                            acc: &mut *self.acc,
                        },
                    )?;
                }
                Some("messages" | "input" | "contents") => {
                    value(
                        &mut map,
                        Conversation {
                            acc: &mut *self.acc,
                        },
                    )?;
                }
                Some("request") => value(
                    &mut map,
                    Top {
                        acc: &mut *self.acc,
                    },
                )?,
                Some("previous_response_id") => {
                    self.acc.previous_response_id =
                        value(&mut map, lenient::Text)?.filter(|i| usable_id(i));
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

/// `messages` / `input` / `contents`: a string (Responses' shorthand for one user message)
/// or an array of messages and items.
struct Conversation<'a> {
    acc: &'a mut Acc,
}

impl Shape for Conversation<'_> {
    type Out = ();

    fn string(self, s: &str) {
        if !self.acc.first_done {
            let h = self.acc.first_user.get_or_insert_with(sha256);
            h.update(s.as_bytes());
            self.acc.first_done = true;
        }
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while seq
            .next_element_seed(lenient::Read(Item {
                acc: &mut *self.acc,
            }))?
            .is_some()
        {}
        Ok(())
    }
}

/// One message or item of the conversation. Read in one pass: its `role` may come after its
/// content, so text is first gathered apart and given to the hash once the role is known.
struct Item<'a> {
    acc: &'a mut Acc,
}

#[derive(Default)]
struct ItemFacts {
    role: Option<String>,
    kind: Option<String>,
    /// Texts of its blocks (only while it may be the first user message or a system one).
    texts: Vec<String>,
    /// A block's text carries a compaction marker.
    marker: bool,
    /// Chat `tool_call_id`, Responses `call_id`.
    result_id: Option<String>,
}

impl Shape for Item<'_> {
    type Out = ();

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        let mut f = ItemFacts::default();
        // Text is gathered only while it can still identify the thread.
        let gather = !self.acc.first_done;
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("role") => f.role = value(&mut map, lenient::Text)?,
                Some("type") => f.kind = value(&mut map, lenient::Text)?,
                Some("tool_call_id" | "call_id") => {
                    f.result_id = value(&mut map, lenient::Text)?;
                }
                Some("content" | "parts") => {
                    let (texts, marker) = value(
                        &mut map,
                        ItemBlocks {
                            acc: &mut *self.acc,
                            gather,
                        },
                    )?;
                    f.texts.extend(texts);
                    f.marker |= marker;
                }
                _ => skip(&mut map)?,
            }
        }
        let role = f.role.as_deref();
        let kind = f.kind.as_deref();
        if kind == Some("compaction_trigger") {
            self.acc.compaction = true;
        }
        if role == Some("user") {
            self.acc.last_user_marker = f.marker;
        }
        if role == Some("tool") || matches!(kind, Some(k) if k.ends_with("_call_output")) {
            if let Some(id) = f.result_id {
                self.acc.result(ToolResult {
                    id: Some(id),
                    name: None,
                    error: false,
                });
            }
            return Ok(());
        }
        if !gather {
            return Ok(());
        }
        match role {
            Some("system" | "developer") => {
                for t in &f.texts {
                    self.acc.system_text(t);
                }
            }
            Some("user") => {
                let h = self.acc.first_user.get_or_insert_with(sha256);
                for t in &f.texts {
                    h.update(&(t.len() as u64).to_le_bytes());
                    h.update(t.as_bytes());
                }
                self.acc.first_done = true;
            }
            _ => {}
        }
        Ok(())
    }
}

/// A message's `content` / `parts`: a string, or blocks. Returns their texts when `gather`.
struct ItemBlocks<'a> {
    acc: &'a mut Acc,
    gather: bool,
}

impl Shape for ItemBlocks<'_> {
    /// The texts (when gathered), and whether one carries a compaction marker.
    type Out = (Vec<String>, bool);

    fn string(self, s: &str) -> (Vec<String>, bool) {
        let texts = if self.gather {
            vec![s.to_owned()]
        } else {
            Vec::new()
        };
        (texts, has_marker(s))
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<(Vec<String>, bool), A::Error> {
        let (mut texts, mut marker) = (Vec::new(), false);
        while let Some((text, m)) = seq.next_element_seed(lenient::Read(Block {
            acc: &mut *self.acc,
            gather: self.gather,
        }))? {
            texts.extend(text);
            marker |= m;
        }
        Ok((texts, marker))
    }
}

/// `system` / `instructions` / `systemInstruction`: a string, text blocks, or Gemini's
/// content object (`{"parts": [...]}`).
struct System<'a> {
    acc: &'a mut Acc,
}

impl Shape for System<'_> {
    type Out = ();

    fn string(self, s: &str) {
        self.acc.system_text(s);
    }

    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<(), A::Error> {
        while let Some((text, _)) = seq.next_element_seed(lenient::Read(Block {
            acc: &mut *self.acc,
            gather: true,
        }))? {
            if let Some(t) = text {
                self.acc.system_text(&t);
            }
        }
        Ok(())
    }

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<(), A::Error> {
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("parts") => value(
                    &mut map,
                    System {
                        acc: &mut *self.acc,
                    },
                )?,
                _ => skip(&mut map)?,
            }
        }
        Ok(())
    }
}

/// One content block: its text (when gathered), or a tool result.
struct Block<'a> {
    acc: &'a mut Acc,
    gather: bool,
}

impl Shape for Block<'_> {
    /// Its text (when gathered), and whether the text carries a compaction marker.
    type Out = (Option<String>, bool);

    fn string(self, s: &str) -> Self::Out {
        (self.gather.then(|| s.to_owned()), has_marker(s))
    }

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let (mut kind, mut text, mut id, mut error) = (None, None, None, false);
        let mut marker = false;
        let mut nested: Option<ToolResult> = None;
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("type") => kind = value(&mut map, lenient::Text)?,
                Some("text") if self.gather => {
                    text = value(&mut map, lenient::Text)?;
                    marker = text.as_deref().is_some_and(has_marker);
                }
                Some("text") => marker = value(&mut map, Marker)?,
                Some("tool_use_id") => id = value(&mut map, lenient::Text)?,
                Some("is_error") => error = value(&mut map, lenient::Bool)?.unwrap_or(false),
                // Gemini: `{"functionResponse": {"id", "name", "response": {"error"}}}`.
                Some("functionResponse") => nested = value(&mut map, FunctionResponse)?,
                // Converse: `{"toolResult": {"toolUseId", "status"}}`.
                Some("toolResult") => nested = value(&mut map, ConverseResult)?,
                _ => skip(&mut map)?,
            }
        }
        if kind.as_deref() == Some("tool_result") {
            if let Some(id) = id {
                self.acc.result(ToolResult {
                    id: Some(id),
                    name: None,
                    error,
                });
            }
            return Ok((None, false));
        }
        if let Some(result) = nested {
            self.acc.result(result);
            return Ok((None, false));
        }
        // Text blocks: `text`, Responses' `input_text`, Gemini's and Converse's untyped parts.
        match kind.as_deref() {
            None | Some("text" | "input_text") => Ok((text, marker)),
            Some(_) => Ok((None, false)),
        }
    }
}

/// A text read only for whether it carries a compaction marker (no copy kept).
#[derive(Debug, Clone, Copy)]
struct Marker;

impl Shape for Marker {
    type Out = bool;
    fn string(self, s: &str) -> bool {
        has_marker(s)
    }
}

/// Gemini's `functionResponse`.
struct FunctionResponse;

impl Shape for FunctionResponse {
    type Out = Option<ToolResult>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let mut r = ToolResult {
            id: None,
            name: None,
            error: false,
        };
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("id") => r.id = value(&mut map, lenient::Text)?,
                Some("name") => r.name = value(&mut map, lenient::Text)?,
                Some("response") => {
                    r.error = value(&mut map, lenient::Field("error", HasValue))?.unwrap_or(false);
                }
                _ => skip(&mut map)?,
            }
        }
        Ok((r.id.is_some() || r.name.is_some()).then_some(r))
    }
}

/// A value that is present and not `null`.
#[derive(Debug, Clone, Copy)]
struct HasValue;

impl Shape for HasValue {
    type Out = bool;
    fn string(self, _: &str) -> bool {
        true
    }
    fn number(self, _: serde_json::Number) -> bool {
        true
    }
    fn boolean(self, _: bool) -> bool {
        true
    }
    fn array<'de, A: SeqAccess<'de>>(self, mut seq: A) -> Result<bool, A::Error> {
        while seq
            .next_element_seed(lenient::Read(lenient::Skip))?
            .is_some()
        {}
        Ok(true)
    }
    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<bool, A::Error> {
        while next_key(&mut map)?.is_some() {
            skip(&mut map)?;
        }
        Ok(true)
    }
}

/// Converse's `toolResult`.
struct ConverseResult;

impl Shape for ConverseResult {
    type Out = Option<ToolResult>;

    fn object<'de, A: MapAccess<'de>>(self, mut map: A) -> Result<Self::Out, A::Error> {
        let (mut id, mut error) = (None, false);
        while let Some(key) = next_key(&mut map)? {
            match key.name() {
                Some("toolUseId") => id = value(&mut map, lenient::Text)?,
                Some("status") => {
                    error = value(&mut map, lenient::Text)?.as_deref() == Some("error");
                }
                _ => skip(&mut map)?,
            }
        }
        Ok(id.map(|id| ToolResult {
            id: Some(id),
            name: None,
            error,
        }))
    }
}

#[cfg(test)]
mod tests;
