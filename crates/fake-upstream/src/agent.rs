//! The fake model behind [`FakeUpstream::start_agent`](crate::FakeUpstream::start_agent): a
//! two-turn agent task. It answers every model request from the conversation the request
//! carries, never from a header (real agents send none):
//!
//! - no tool result yet: the model calls the agent's shell tool with [`COMMAND`] (Claude
//!   Code's `Bash`, Codex's shell tool as its request describes it, Gemini CLI's
//!   `run_shell_command`);
//! - a tool result that contains [`MARKER`] (what [`COMMAND`] prints): the final text
//!   [`FINAL_TEXT`];
//! - a tool result without it: [`NO_MARKER_TEXT`], so an agent that did not really run the
//!   command cannot pass;
//! - a request that offers no tools (Claude Code's session title, Gemini CLI's routing and
//!   next-speaker checks): a plain answer, as JSON that fits the request's response schema
//!   when it names one;
//! - a Codex prewarm (`response.create` with `generate: false`): an empty completed response.
//!
//! Answers are streamed in each API's wire format, with the shapes of the golden fixtures
//! (`stream_tool_use.sse`, `stream_function_call.sse`, `stream_text.sse`, …), the requested
//! model echoed, fresh ids per response and the usage of [`expected_usage`].

use serde_json::{Value, json};

use crate::{Payload, Provider, json_content_type, sse_content_type};

/// What the shell command prints, and what the final answer names.
pub const MARKER: &str = "llmtap-e2e-marker";
/// The command the model asks for. Its text does not contain [`MARKER`] (only its output
/// does), so a tool result with the marker proves the command ran.
pub const COMMAND: &str = "printf '%s-%s\\n' llmtap-e2e marker";
/// The model's final answer once the tool result carries [`MARKER`].
pub const FINAL_TEXT: &str = "DONE: llmtap-e2e-marker";
/// The model's answer when the request offers tools but not the agent's shell tool (Gemini
/// CLI hides `run_shell_command` in `-p` mode unless it may run without confirmation).
pub const NO_TOOL_TEXT: &str = "FAILED: the request offers no shell tool the fake upstream knows";
/// The model's final answer when a tool result came back without [`MARKER`].
pub const NO_MARKER_TEXT: &str = "FAILED: the tool result does not contain the marker";

/// The wire format of a model request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Api {
    /// `POST /v1/messages` (also under a prefix), Vertex AI's `:rawPredict` /
    /// `:streamRawPredict`.
    Anthropic,
    /// `POST /v1/responses` (or ChatGPT's codex path, Azure's `/openai/responses`), and
    /// `response.create` on the socket.
    Responses,
    /// `…:generateContent` / `…:streamGenerateContent` (Vertex AI's too), and Code Assist.
    Gemini,
}

/// Which answer a request gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Turn {
    /// Codex's `generate: false` warm-up: an empty response.
    Prewarm,
    /// A side request that offers no tools: a plain (or schema-shaped JSON) answer.
    Text,
    /// No tool result yet: a call to the shell tool.
    ToolCall,
    /// A tool result is there: the final text.
    Final,
}

/// Token counts as llmtap normalizes them (`input` includes cached and cache-write tokens,
/// `output` includes reasoning).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Usage {
    /// Prompt tokens, cached and cache-write tokens included.
    pub input: u64,
    /// Generated tokens, reasoning included.
    pub output: u64,
    /// Prompt tokens read from the cache.
    pub cache_read: u64,
}

/// The usage the fake reports for `turn` of `api`, normalized.
pub fn expected_usage(api: Api, turn: Turn) -> Usage {
    let (input, output, cache_read) = match (api, turn) {
        (_, Turn::Prewarm) => (0, 0, 0),
        (Api::Anthropic, Turn::Text) => (212, 14, 0),
        (Api::Responses, Turn::Text) => (1_024, 16, 0),
        (Api::Gemini, Turn::Text) => (512, 9, 0),
        // input_tokens 4 + cache read 17352 + cache write (1h) 1843.
        (Api::Anthropic, Turn::ToolCall) => (19_199, 131, 17_352),
        // input_tokens 6 + cache read 19195 + cache write (1h) 402.
        (Api::Anthropic, Turn::Final) => (19_603, 23, 19_195),
        (Api::Responses, Turn::ToolCall) => (9_214, 187, 8_832),
        (Api::Responses, Turn::Final) => (9_463, 38, 9_216),
        // prompt 8034 (+ tool-use prompt 0); candidates 42 + thoughts 118.
        (Api::Gemini, Turn::ToolCall) => (8_034, 160, 6_144),
        (Api::Gemini, Turn::Final) => (8_251, 12, 7_936),
    };
    Usage {
        input,
        output,
        cache_read,
    }
}

/// Tool-result item types of the Responses API.
const RESPONSES_OUTPUTS: [&str; 3] = [
    "function_call_output",
    "custom_tool_call_output",
    "local_shell_call_output",
];

/// Every tool result in a request of `api`, as JSON text.
fn tool_results(api: Api, body: &Value) -> Vec<String> {
    let body = match api {
        // Code Assist wraps the Gemini request in `{"request": …}`.
        Api::Gemini => body.get("request").unwrap_or(body),
        _ => body,
    };
    let array = |v: Option<&Value>| v.and_then(Value::as_array).cloned().unwrap_or_default();
    match api {
        Api::Anthropic => array(body.get("messages"))
            .iter()
            .flat_map(|m| array(m.get("content")))
            .filter(|b| b.get("type").and_then(Value::as_str) == Some("tool_result"))
            .map(|b| b.to_string())
            .collect(),
        Api::Responses => array(body.get("input"))
            .into_iter()
            .filter(|i| {
                i.get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|t| RESPONSES_OUTPUTS.contains(&t))
            })
            .map(|i| i.to_string())
            .collect(),
        Api::Gemini => array(body.get("contents"))
            .iter()
            .flat_map(|c| array(c.get("parts")))
            .filter_map(|p| p.get("functionResponse").map(Value::to_string))
            .collect(),
    }
}

/// How many tools a request of `api` offers.
fn tools_offered(api: Api, body: &Value) -> usize {
    let count = |v: Option<&Value>| v.and_then(Value::as_array).map_or(0, Vec::len);
    match api {
        Api::Anthropic => count(body.get("tools")),
        Api::Responses => responses_tools(body).len(),
        Api::Gemini => {
            let body = body.get("request").unwrap_or(body);
            body.get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .map(|t| count(t.get("functionDeclarations")))
                .sum()
        }
    }
}

/// The turn the fake answers a request of `api` with.
pub fn classify(api: Api, body: &Value) -> Turn {
    if api == Api::Responses && body.get("generate").and_then(Value::as_bool) == Some(false) {
        Turn::Prewarm
    } else if !tool_results(api, body).is_empty() {
        Turn::Final
    } else if tools_offered(api, body) == 0 {
        Turn::Text
    } else {
        Turn::ToolCall
    }
}

/// The JSON schema a request of `api` asks the answer to follow, if any.
fn response_schema(api: Api, body: &Value) -> Option<Value> {
    let schema = match api {
        Api::Anthropic => body
            .pointer("/output_config/format/schema")
            .or_else(|| body.pointer("/output_format/schema")),
        Api::Responses => body.pointer("/text/format/schema"),
        Api::Gemini => {
            let config = body.get("request").unwrap_or(body).get("generationConfig");
            let config = config.unwrap_or(&Value::Null);
            config
                .get("responseJsonSchema")
                .or_else(|| config.get("responseSchema"))
                .or_else(|| {
                    (config.get("responseMimeType").and_then(Value::as_str)
                        == Some("application/json"))
                    .then_some(&Value::Null)
                })
        }
    };
    schema.cloned()
}

/// A small value that fits `schema` (types in either case, as Gemini spells them upper-case):
/// required properties only, the first enum value (`user` when offered: a next-speaker check
/// then ends the turn).
fn sample(schema: &Value) -> Value {
    if let Some(values) = schema.get("enum").and_then(Value::as_array) {
        return values
            .iter()
            .find(|v| v.as_str() == Some("user"))
            .or_else(|| values.first())
            .cloned()
            .unwrap_or(Value::Null);
    }
    let kind = schema
        .get("type")
        .and_then(Value::as_str)
        .unwrap_or("object")
        .to_ascii_lowercase();
    match kind.as_str() {
        "object" => {
            let mut out = serde_json::Map::new();
            let required: Vec<&str> = schema
                .get("required")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(Value::as_str)
                .collect();
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (name, prop) in props {
                    if required.is_empty() || required.contains(&name.as_str()) {
                        out.insert(name.clone(), sample(prop));
                    }
                }
            }
            Value::Object(out)
        }
        "array" => json!([]),
        "boolean" => json!(false),
        "integer" | "number" => json!(0),
        _ => json!("Print the llmtap e2e marker"),
    }
}

/// The answer to a request that offers no tools.
fn plain_text(api: Api, body: &Value) -> String {
    match response_schema(api, body) {
        Some(schema) => sample(&schema).to_string(),
        None => "llmtap e2e fake model: nothing to do without tools.".to_owned(),
    }
}

/// The final text for a request that carries tool results.
fn final_text(api: Api, body: &Value) -> &'static str {
    if tool_results(api, body).iter().any(|r| r.contains(MARKER)) {
        FINAL_TEXT
    } else {
        NO_MARKER_TEXT
    }
}

/// One answer of the fake model, as the fake upstream logs it.
#[derive(Debug, Clone)]
pub struct Answer {
    /// The wire format the request used.
    pub api: Api,
    /// The response id sent (Anthropic `msg_…`, Responses `resp_…`, Gemini `responseId`).
    pub id: String,
    /// What the fake model did on this turn.
    pub turn: Turn,
    /// The model named by the request (body, or the path for Gemini).
    pub model: String,
    /// The tool the answer calls ([`Turn::ToolCall`] only).
    pub tool: Option<String>,
    /// How many tools the request offered (namespaces counted by their tools).
    pub tools_offered: usize,
    /// The request body (a `response.create` on the socket).
    pub request: Value,
}

/// The response id of answer `n` in `api`'s shape.
fn response_id(api: Api, n: u64) -> String {
    match api {
        Api::Anthropic => format!("msg_01AgentE2e{n:014}"),
        Api::Responses => format!("resp_0a9e{n:044x}"),
        Api::Gemini => format!("AgentE2e{n:014}"),
    }
}

fn answer(api: Api, model: String, body: &Value, n: u64) -> Answer {
    let turn = classify(api, body);
    let tool = (turn == Turn::ToolCall)
        .then(|| shell_tool(api, body))
        .flatten();
    Answer {
        api,
        id: response_id(api, n),
        turn,
        model,
        tool,
        tools_offered: tools_offered(api, body),
        request: body.clone(),
    }
}

/// The shell tool of the agent, when the request offers it: Claude Code's `Bash`, Codex's
/// (see [`codex_shell_call`]), Gemini CLI's `run_shell_command`. Without it a tool-call turn
/// answers [`NO_TOOL_TEXT`].
fn shell_tool(api: Api, body: &Value) -> Option<String> {
    match api {
        Api::Anthropic => offered(body.get("tools"), &["Bash"]),
        Api::Responses => codex_shell_call(body).map(|c| c.name().to_owned()),
        Api::Gemini => {
            let body = body.get("request").unwrap_or(body);
            let declarations: Vec<Value> = body
                .get("tools")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|t| t.get("functionDeclarations").and_then(Value::as_array))
                .flatten()
                .cloned()
                .collect();
            offered(Some(&Value::Array(declarations)), &["run_shell_command"])
        }
    }
}

/// The API of an agent's model request on `path`, by the path's end, so that every host
/// that serves an API under a prefix of its own is answered alike: Anthropic Messages
/// (`/v1/messages`, also under `/anthropic/…`, and Vertex AI's
/// `…/publishers/anthropic/models/{model}:rawPredict|:streamRawPredict`), Responses
/// (`…/responses`: OpenAI, ChatGPT's codex path, Azure's `/openai/responses` and
/// `/openai/v1/responses`), Gemini (`…/models/{model}:…`, Vertex AI's
/// `…/publishers/google/models/{model}:…`, Code Assist). `None` for a route the agent
/// behaviour leaves to the fixtures (`count_tokens`, Vertex AI's `count-tokens:rawPredict`,
/// Chat Completions).
fn api_of(path: &str) -> Option<Api> {
    if path.ends_with("/v1/messages") {
        return Some(Api::Anthropic);
    }
    if let Some((_, rest)) = path.rsplit_once("/publishers/anthropic/models/") {
        let (model, method) = rest.split_once(':')?;
        return (model != "count-tokens" && matches!(method, "rawPredict" | "streamRawPredict"))
            .then_some(Api::Anthropic);
    }
    if path.ends_with("/responses") {
        return Some(Api::Responses);
    }
    (path.starts_with("/v1internal:") || path.contains("/models/")).then_some(Api::Gemini)
}

/// The model a path names (`…/models/{model}:method`), if it names one.
fn path_model(path: &str) -> Option<String> {
    let (_, rest) = path.rsplit_once("/models/")?;
    let (model, _) = rest.split_once(':')?;
    (!model.is_empty() && !model.contains('/')).then(|| model.to_owned())
}

/// Amazon Bedrock's InvokeModel paths (`/model/{modelId}/invoke`,
/// `/invoke-with-response-stream`): the model id, percent-decoded, and whether the answer
/// streams.
fn bedrock_invoke(path: &str) -> Option<(String, bool)> {
    let (model, operation) = path.strip_prefix("/model/")?.rsplit_once('/')?;
    let stream = match operation {
        "invoke" => false,
        "invoke-with-response-stream" => true,
        _ => return None,
    };
    let mut decoded = Vec::new();
    let mut bytes = model.bytes();
    while let Some(b) = bytes.next() {
        if b == b'%' {
            let hex: String = bytes.by_ref().take(2).map(char::from).collect();
            decoded.push(u8::from_str_radix(&hex, 16).ok()?);
        } else {
            decoded.push(b);
        }
    }
    Some((String::from_utf8(decoded).ok()?, stream))
}

/// Claude on Bedrock's InvokeModel: the Anthropic answer, the stream's events each wrapped
/// as a `chunk` (`{"bytes": base64 of the event, "p": padding}`) in an AWS event-stream
/// message, the last with `amazon-bedrock-invocationMetrics` (Bedrock API reference,
/// `InvokeModelWithResponseStream`, `PayloadPart`).
fn bedrock(model: &str, body: &Value, stream: bool, n: u64) -> Payload {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use base64::Engine as _;
    if !stream {
        return anthropic(model, body, false, n);
    }
    let Payload::Stream { pieces, .. } = anthropic(model, body, true, n) else {
        unreachable!("a streamed Anthropic answer");
    };
    let mut events: Vec<Value> = pieces
        .iter()
        .filter_map(|piece| {
            let text = std::str::from_utf8(piece).ok()?;
            let data = text.lines().find_map(|l| l.strip_prefix("data: "))?;
            serde_json::from_str(data).ok()
        })
        .collect();
    let start = events.first().cloned().unwrap_or(Value::Null);
    let usage = &start["message"]["usage"];
    let output = events
        .iter()
        .rev()
        .find_map(|e| e["usage"]["output_tokens"].as_u64())
        .unwrap_or(0);
    if let Some(stop) = events.last_mut() {
        stop["amazon-bedrock-invocationMetrics"] = json!({
            "inputTokenCount": usage["input_tokens"],
            "outputTokenCount": output,
            "invocationLatency": 812,
            "firstByteLatency": 240,
            "cacheReadInputTokenCount": usage["cache_read_input_tokens"],
            "cacheWriteInputTokenCount": usage["cache_creation_input_tokens"],
        });
    }
    let engine = base64::engine::general_purpose::STANDARD;
    let header = |name: &str, value: &str| {
        Header::new(
            name.to_owned(),
            HeaderValue::String(value.to_owned().into()),
        )
    };
    Payload::Stream {
        pieces: events
            .iter()
            .enumerate()
            .map(|(i, event)| {
                let payload = json!({"bytes": engine.encode(event.to_string()), "p": "abcdefghij"[..(i % 10)]});
                let message = Message::new(payload.to_string().into_bytes())
                    .add_header(header(":event-type", "chunk"))
                    .add_header(header(":content-type", "application/json"))
                    .add_header(header(":message-type", "event"));
                let mut out = Vec::new();
                aws_smithy_eventstream::frame::write_message_to(&message, &mut out)
                    .expect("a small message encodes");
                out
            })
            .collect(),
        content_type: "application/vnd.amazon.eventstream",
    }
}

/// The agent's answer to an HTTP model request on `path`, or `None` for a route the agent
/// behaviour leaves to the fixtures ([`api_of`]).
pub(crate) fn payload(
    path: &str,
    query: Option<&str>,
    body: &Value,
    n: u64,
) -> Option<(Payload, Answer)> {
    if let Some((model, stream)) = bedrock_invoke(path) {
        let payload = bedrock(&model, body, stream, n);
        return Some((payload, answer(Api::Anthropic, model, body, n)));
    }
    let stream = body.get("stream").and_then(Value::as_bool) == Some(true)
        || path.ends_with(":streamRawPredict");
    let api = api_of(path)?;
    let payload = match api {
        Api::Anthropic => Some(anthropic(&anthropic_model(path, body), body, stream, n)),
        Api::Responses => {
            let events = responses_events(body, n);
            Some(if stream {
                Payload::Stream {
                    pieces: events
                        .iter()
                        .map(|e| {
                            let kind = e.get("type").and_then(Value::as_str).unwrap_or_default();
                            format!("event: {kind}\ndata: {e}\n\n").into_bytes()
                        })
                        .collect(),
                    content_type: sse_content_type(Provider::OpenAi),
                }
            } else {
                let done = events
                    .last()
                    .and_then(|e| e.get("response"))
                    .cloned()
                    .unwrap_or(Value::Null);
                Payload::Json(pretty(&done))
            })
        }
        Api::Gemini => gemini(path, query, body, n),
    }?;
    let answer = match api {
        Api::Anthropic => answer(Api::Anthropic, anthropic_model(path, body), body, n),
        Api::Responses => answer(Api::Responses, model_of(body, "gpt-6.1-sol"), body, n),
        Api::Gemini => answer(Api::Gemini, gemini_model(path, body), body, n),
    };
    Some((payload, answer))
}

/// The model of an Anthropic request: the body's, else the path's (Vertex AI names it in
/// the path only).
fn anthropic_model(path: &str, body: &Value) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .or_else(|| path_model(path))
        .unwrap_or_else(|| "claude-opus-4-8".to_owned())
}

/// The server messages answering one `response.create` on the Responses socket.
pub(crate) fn ws_frames(create: &Value, n: u64) -> (Vec<String>, Answer) {
    let frames = responses_events(create, n)
        .iter()
        .map(Value::to_string)
        .collect();
    (
        frames,
        answer(Api::Responses, model_of(create, "gpt-6.1-sol"), create, n),
    )
}

/// The model of a Gemini request: from the path (`…/models/{model}:…`), else from the
/// body (Code Assist).
fn gemini_model(path: &str, body: &Value) -> String {
    path_model(path).unwrap_or_else(|| model_of(body, "gemini-2.5-flash"))
}

fn pretty(v: &Value) -> Vec<u8> {
    serde_json::to_vec_pretty(v).expect("serialize JSON")
}

fn model_of(body: &Value, default: &str) -> String {
    body.get("model")
        .and_then(Value::as_str)
        .unwrap_or(default)
        .to_owned()
}

/// Splits `s` into `parts` pieces on character boundaries (streams send arguments and text
/// in several deltas).
fn split(s: &str, parts: usize) -> Vec<String> {
    let chars: Vec<char> = s.chars().collect();
    let size = chars.len().div_ceil(parts.max(1)).max(1);
    chars.chunks(size).map(|c| c.iter().collect()).collect()
}

// ------------------------------------------------------------------------------------------
// Anthropic Messages
// ------------------------------------------------------------------------------------------

fn anthropic(model: &str, body: &Value, stream: bool, n: u64) -> Payload {
    let turn = classify(Api::Anthropic, body);
    let id = response_id(Api::Anthropic, n);
    // (input_tokens, cache read, cache write 1h, output) on the wire.
    let (input, read, write, output) = match turn {
        Turn::Final => (6, 19_195, 402, 23),
        Turn::Text => (212, 0, 0, 14),
        Turn::ToolCall | Turn::Prewarm => (4, 17_352, 1_843, 131),
    };
    let tool = (turn == Turn::ToolCall)
        .then(|| shell_tool(Api::Anthropic, body))
        .flatten();
    let calls_tool = tool.is_some();
    let tool_id = format!("toolu_01AgentE2e{n:012}");
    let tool_input = json!({"command": COMMAND, "description": "Print the e2e marker"});
    let text = match turn {
        Turn::Final => final_text(Api::Anthropic, body).to_owned(),
        Turn::Text => plain_text(Api::Anthropic, body),
        Turn::ToolCall | Turn::Prewarm if calls_tool => "I'll run the command.".to_owned(),
        Turn::ToolCall | Turn::Prewarm => NO_TOOL_TEXT.to_owned(),
    };
    let text = text.as_str();
    let stop_reason = if calls_tool { "tool_use" } else { "end_turn" };
    if !stream {
        let mut content = vec![json!({"type": "text", "text": text})];
        if calls_tool {
            content.push(
                json!({"type": "tool_use", "id": tool_id, "name": tool, "input": tool_input}),
            );
        }
        let message = json!({
            "id": id, "type": "message", "role": "assistant", "model": model,
            "content": content, "stop_reason": stop_reason, "stop_sequence": null,
            "usage": {
                "input_tokens": input, "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": write},
                "output_tokens": output, "service_tier": "standard",
            },
        });
        return Payload::Json(message.to_string().into_bytes());
    }
    let mut events = vec![
        json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": model, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {
                "input_tokens": input, "cache_creation_input_tokens": write,
                "cache_read_input_tokens": read,
                "cache_creation": {"ephemeral_5m_input_tokens": 0, "ephemeral_1h_input_tokens": write},
                "output_tokens": 1, "service_tier": "standard",
            },
        }}),
        json!({"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}}),
        json!({"type": "ping"}),
    ];
    for piece in split(text, 2) {
        events.push(json!({"type": "content_block_delta", "index": 0,
            "delta": {"type": "text_delta", "text": piece}}));
    }
    events.push(json!({"type": "content_block_stop", "index": 0}));
    if calls_tool {
        events.push(json!({"type": "content_block_start", "index": 1,
            "content_block": {"type": "tool_use", "id": tool_id, "name": tool, "input": {}}}));
        events.push(json!({"type": "content_block_delta", "index": 1,
            "delta": {"type": "input_json_delta", "partial_json": ""}}));
        for piece in split(&tool_input.to_string(), 3) {
            events.push(json!({"type": "content_block_delta", "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": piece}}));
        }
        events.push(json!({"type": "content_block_stop", "index": 1}));
    }
    events.push(json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {"input_tokens": input, "cache_creation_input_tokens": write,
                  "cache_read_input_tokens": read, "output_tokens": output}}));
    events.push(json!({"type": "message_stop"}));
    Payload::Stream {
        pieces: events
            .iter()
            .map(|e| {
                let kind = e.get("type").and_then(Value::as_str).unwrap_or_default();
                // The API spells `ping` with a space, as the fixtures do.
                let data = if kind == "ping" {
                    r#"{"type": "ping"}"#.to_owned()
                } else {
                    e.to_string()
                };
                format!("event: {kind}\ndata: {data}\n\n").into_bytes()
            })
            .collect(),
        content_type: sse_content_type(Provider::Anthropic),
    }
}

/// The first name in `preferred` that `tools` offers (by `name`).
fn offered(tools: Option<&Value>, preferred: &[&str]) -> Option<String> {
    let names: Vec<&str> = tools
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|t| t.get("name").and_then(Value::as_str))
        .collect();
    preferred
        .iter()
        .find(|p| names.contains(p))
        .map(|p| (*p).to_owned())
}

// ------------------------------------------------------------------------------------------
// OpenAI Responses (SSE, JSON and WebSocket)
// ------------------------------------------------------------------------------------------

/// Shell tools Codex has offered as plain functions over the versions, most specific first.
const CODEX_SHELL_TOOLS: [&str; 3] = ["shell", "shell_command", "exec_command"];

/// Every tool of a Responses request: top-level `tools` and Codex's `additional_tools` items,
/// with the tools of a `namespace` tool in place of the namespace.
fn responses_tools(body: &Value) -> Vec<Value> {
    fn flatten(tools: &[Value], out: &mut Vec<Value>) {
        for tool in tools {
            match tool.get("tools").and_then(Value::as_array) {
                Some(inner) if tool.get("type").and_then(Value::as_str) == Some("namespace") => {
                    flatten(inner, out);
                }
                _ => out.push(tool.clone()),
            }
        }
    }
    let mut tools = Vec::new();
    if let Some(top) = body.get("tools").and_then(Value::as_array) {
        flatten(top, &mut tools);
    }
    for item in body
        .get("input")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|i| i.get("type").and_then(Value::as_str) == Some("additional_tools"))
    {
        if let Some(inner) = item.get("tools").and_then(Value::as_array) {
            flatten(inner, &mut tools);
        }
    }
    tools
}

/// How the fake model runs [`COMMAND`] with the tools a Codex request offers.
#[derive(Debug, Clone, PartialEq)]
pub enum CodexCall {
    /// A `function_call` to a shell function, with its JSON arguments.
    Function {
        /// The function's name.
        name: String,
        /// Its JSON arguments.
        arguments: Value,
    },
    /// A `custom_tool_call` (freeform input), e.g. code mode's `exec`, which runs JavaScript
    /// that calls the nested `exec_command` tool.
    Custom {
        /// The tool's name.
        name: String,
        /// Its freeform input.
        input: String,
    },
}

impl CodexCall {
    /// The name of the tool called.
    pub fn name(&self) -> &str {
        match self {
            CodexCall::Function { name, .. } | CodexCall::Custom { name, .. } => name,
        }
    }
}

/// The call that runs [`COMMAND`] with the tools a Responses request offers:
/// - a shell function, its arguments shaped after its JSON schema: `command` as an argv array
///   (`shell`), `command` as a string (`shell_command`), or `cmd` (`exec_command`);
/// - else Codex's code mode (0.169 with its default model): the freeform `exec` tool, whose
///   input is JavaScript that awaits `tools.exec_command({cmd})` and returns its output.
///
/// `None` when the request offers neither.
pub fn codex_shell_call(body: &Value) -> Option<CodexCall> {
    let tools = responses_tools(body);
    let name_of = |t: &Value| t.get("name").and_then(Value::as_str).map(str::to_owned);
    let function = CODEX_SHELL_TOOLS.iter().find_map(|want| {
        tools.iter().find(|t| {
            t.get("type").and_then(Value::as_str) == Some("function")
                && name_of(t).as_deref() == Some(*want)
        })
    });
    if let Some(tool) = function {
        let name = name_of(tool)?;
        let properties = tool.pointer("/parameters/properties");
        let prop = |p: &str| properties.and_then(|ps| ps.get(p));
        let arguments = if prop("cmd").is_some() {
            json!({"cmd": COMMAND})
        } else if prop("command")
            .and_then(|c| c.get("type"))
            .and_then(Value::as_str)
            == Some("array")
        {
            json!({"command": ["bash", "-lc", COMMAND]})
        } else {
            json!({"command": COMMAND})
        };
        return Some(CodexCall::Function { name, arguments });
    }
    let exec = tools.iter().find(|t| {
        t.get("type").and_then(Value::as_str) == Some("custom")
            && name_of(t).as_deref() == Some("exec")
    })?;
    let command = serde_json::to_string(COMMAND).expect("a JSON string is a JS string");
    Some(CodexCall::Custom {
        name: name_of(exec)?,
        input: format!(
            "const r = await tools.exec_command({{ cmd: {command} }});\ntext(r.output);\n"
        ),
    })
}

fn responses_events(body: &Value, n: u64) -> Vec<Value> {
    let model = model_of(body, "gpt-6.1-sol");
    let turn = classify(Api::Responses, body);
    let id = response_id(Api::Responses, n);
    let created_at = 1_764_065_160 + n;
    let response = |status: &str, output: Value, usage: Value| {
        json!({
            "id": id, "object": "response", "created_at": created_at, "status": status,
            "background": false, "error": null, "incomplete_details": null,
            "instructions": null, "max_output_tokens": null, "max_tool_calls": null,
            "model": model, "output": output, "parallel_tool_calls": false,
            "previous_response_id": body.get("previous_response_id").cloned().unwrap_or(Value::Null),
            "prompt_cache_key": body.get("prompt_cache_key").cloned().unwrap_or(Value::Null),
            "reasoning": {"effort": "medium", "summary": "detailed"},
            "safety_identifier": null, "service_tier": "default", "store": false,
            "temperature": 1.0, "text": {"format": {"type": "text"}, "verbosity": "medium"},
            "tool_choice": "auto", "tools": [], "top_logprobs": 0, "top_p": 1.0,
            "truncation": "disabled", "usage": usage, "user": null, "metadata": {},
        })
    };
    let usage = |input: u64, cached: u64, output: u64, reasoning: u64| {
        json!({
            "input_tokens": input, "input_tokens_details": {"cached_tokens": cached},
            "output_tokens": output, "output_tokens_details": {"reasoning_tokens": reasoning},
            "total_tokens": input + output,
        })
    };
    let mut events = vec![json!({"type": "response.created",
        "response": response("in_progress", json!([]), Value::Null)})];
    if turn == Turn::Prewarm {
        events.push(json!({"type": "response.completed",
            "response": response("completed", json!([]), usage(0, 0, 0, 0))}));
        return number(events);
    }
    events.push(json!({"type": "response.in_progress",
        "response": response("in_progress", json!([]), Value::Null)}));
    let call = (turn == Turn::ToolCall)
        .then(|| codex_shell_call(body))
        .flatten();
    let (item, final_usage) = if let Some(call) = call {
        let call_id = format!("call_AgentE2e{n:012}");
        let item = match call {
            CodexCall::Function { name, arguments } => {
                let item_id = format!("fc_0a9e{n:044x}");
                let arguments = arguments.to_string();
                let mut item = json!({"id": item_id, "type": "function_call",
                    "status": "in_progress", "arguments": "", "call_id": call_id, "name": name});
                events.push(
                    json!({"type": "response.output_item.added", "output_index": 0,
                    "item": item}),
                );
                for piece in split(&arguments, 3) {
                    events.push(json!({"type": "response.function_call_arguments.delta",
                        "item_id": item_id, "output_index": 0, "delta": piece}));
                }
                events.push(json!({"type": "response.function_call_arguments.done",
                    "item_id": item_id, "output_index": 0, "arguments": arguments}));
                item["status"] = json!("completed");
                item["arguments"] = json!(arguments);
                item
            }
            CodexCall::Custom { name, input } => {
                let item_id = format!("ctc_0a9e{n:044x}");
                let mut item = json!({"id": item_id, "type": "custom_tool_call",
                    "status": "in_progress", "call_id": call_id, "input": "", "name": name});
                events.push(
                    json!({"type": "response.output_item.added", "output_index": 0,
                    "item": item}),
                );
                for piece in split(&input, 3) {
                    events.push(json!({"type": "response.custom_tool_call_input.delta",
                        "item_id": item_id, "output_index": 0, "delta": piece}));
                }
                events.push(json!({"type": "response.custom_tool_call_input.done",
                    "item_id": item_id, "output_index": 0, "input": input}));
                item["status"] = json!("completed");
                item["input"] = json!(input);
                item
            }
        };
        (item, usage(9_214, 8_832, 187, 128))
    } else {
        let (text, final_usage) = match turn {
            Turn::Final => (
                final_text(Api::Responses, body).to_owned(),
                usage(9_463, 9_216, 38, 0),
            ),
            Turn::Text => (plain_text(Api::Responses, body), usage(1_024, 0, 16, 0)),
            Turn::ToolCall | Turn::Prewarm => (NO_TOOL_TEXT.to_owned(), usage(9_463, 9_216, 38, 0)),
        };
        let text = text.as_str();
        let item_id = format!("msg_0a9e{n:044x}");
        let part =
            |t: &str| json!({"type": "output_text", "annotations": [], "logprobs": [], "text": t});
        let mut item = json!({"id": item_id, "type": "message", "status": "in_progress",
            "content": [], "role": "assistant"});
        events.push(json!({"type": "response.output_item.added", "output_index": 0, "item": item}));
        events.push(
            json!({"type": "response.content_part.added", "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": part("")}),
        );
        for piece in split(text, 3) {
            events.push(
                json!({"type": "response.output_text.delta", "item_id": item_id,
                "output_index": 0, "content_index": 0, "delta": piece, "logprobs": []}),
            );
        }
        events.push(
            json!({"type": "response.output_text.done", "item_id": item_id,
            "output_index": 0, "content_index": 0, "text": text, "logprobs": []}),
        );
        events.push(
            json!({"type": "response.content_part.done", "item_id": item_id,
            "output_index": 0, "content_index": 0, "part": part(text)}),
        );
        item["status"] = json!("completed");
        item["content"] = json!([part(text)]);
        (item, final_usage)
    };
    events.push(json!({"type": "response.output_item.done", "output_index": 0, "item": item}));
    events.push(json!({"type": "response.completed",
        "response": response("completed", json!([item]), final_usage)}));
    number(events)
}

/// Sets `sequence_number` from 0, right after `type` as the API orders it.
fn number(events: Vec<Value>) -> Vec<Value> {
    events
        .into_iter()
        .enumerate()
        .map(|(i, e)| {
            let mut out = serde_json::Map::new();
            if let Value::Object(map) = e {
                for (k, v) in map {
                    out.insert(k.clone(), v);
                    if k == "type" {
                        out.insert("sequence_number".to_owned(), json!(i));
                    }
                }
            }
            Value::Object(out)
        })
        .collect()
}

// ------------------------------------------------------------------------------------------
// Gemini
// ------------------------------------------------------------------------------------------

fn gemini(path: &str, query: Option<&str>, body: &Value, n: u64) -> Option<Payload> {
    let alt_sse = query.is_some_and(|q| q.split('&').any(|kv| kv == "alt=sse"));
    let (model, method, code_assist) = if let Some(method) = path.strip_prefix("/v1internal:") {
        (model_of(body, "gemini-2.5-flash"), method, true)
    } else {
        let (_, rest) = path.rsplit_once("/models/")?;
        let (model, method) = rest.split_once(':')?;
        (model.to_owned(), method, false)
    };
    let turn = classify(Api::Gemini, body);
    let response_id = response_id(Api::Gemini, n);
    let usage = |prompt: u64, cached: u64, candidates: Option<u64>, thoughts: u64| {
        let mut u = json!({
            "promptTokenCount": prompt,
            "totalTokenCount": prompt + candidates.unwrap_or(0) + thoughts,
            "cachedContentTokenCount": cached,
            "promptTokensDetails": [{"modality": "TEXT", "tokenCount": prompt}],
            "cacheTokensDetails": [{"modality": "TEXT", "tokenCount": cached}],
        });
        if let Some(c) = candidates {
            u["candidatesTokenCount"] = json!(c);
        }
        if thoughts > 0 {
            u["thoughtsTokenCount"] = json!(thoughts);
        }
        u
    };
    let chunk = |parts: Value, finish: bool, usage: Value| {
        let mut candidate = json!({"content": {"parts": parts, "role": "model"}, "index": 0});
        if finish {
            candidate["finishReason"] = json!("STOP");
        }
        json!({"candidates": [candidate], "usageMetadata": usage,
               "modelVersion": model, "responseId": response_id})
    };
    let calls_tool = turn == Turn::ToolCall && shell_tool(Api::Gemini, body).is_some();
    let chunks = if !calls_tool {
        let (text, (prompt, cached, candidates, thoughts)) = match turn {
            Turn::Final => (
                final_text(Api::Gemini, body).to_owned(),
                (8_251, 7_936, 12, 0),
            ),
            Turn::Text => (plain_text(Api::Gemini, body), (512, 0, 9, 0)),
            Turn::ToolCall | Turn::Prewarm => (NO_TOOL_TEXT.to_owned(), (8_034, 6_144, 42, 118)),
        };
        let pieces = split(&text, 2);
        let last = pieces.len() - 1;
        pieces
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let done = i == last;
                chunk(
                    json!([{"text": p}]),
                    done,
                    usage(prompt, cached, done.then_some(candidates), thoughts),
                )
            })
            .collect::<Vec<_>>()
    } else {
        vec![
            chunk(
                json!([{"text": "I'll run the command."}]),
                false,
                usage(8_034, 6_144, None, 118),
            ),
            chunk(
                json!([{
                    "functionCall": {"name": "run_shell_command",
                                     "args": {"command": COMMAND, "description": "Print the e2e marker"}},
                    "thoughtSignature": "CpsCAdHtim9fKq3Lz8Wn2Rv5Tb7Yc1Ue4Sa6Dg0Hj3Kl9Mx2Pq5Nr8Vt1Zw4Bc7Fe0Ig3Jh6Lk9Ox2Qs5Ru8Xv1Ay4Dz7Gb0Ec3Hf6Ki9Nj2Ml5Po8Sq1Tr4Wu7Zx0Cy3Fa6Ib9Ld2",
                }]),
                true,
                usage(8_034, 6_144, Some(42), 118),
            ),
        ]
    };
    let wrap = |c: Value| {
        if code_assist {
            json!({"response": c, "traceId": format!("AgentE2eTrace{n:08}")})
        } else {
            c
        }
    };
    // Google's single-line JSON: `": "` after a key, as the fixtures spell it.
    let google_line = |v: &Value| v.to_string().replace("\":", "\": ");
    Some(match method {
        "streamGenerateContent" if alt_sse => Payload::Stream {
            pieces: chunks
                .into_iter()
                .map(|c| format!("data: {}\r\n\r\n", google_line(&wrap(c))).into_bytes())
                .collect(),
            content_type: sse_content_type(Provider::Google),
        },
        "streamGenerateContent" => {
            let count = chunks.len();
            Payload::Stream {
                pieces: chunks
                    .into_iter()
                    .enumerate()
                    .map(|(i, c)| {
                        let element = String::from_utf8(pretty(&wrap(c))).expect("UTF-8 JSON");
                        let mut piece = if i == 0 {
                            "[".to_owned()
                        } else {
                            "\r\n,".to_owned()
                        };
                        piece.push_str(&element);
                        if i + 1 == count {
                            piece.push_str("\r\n]");
                        }
                        piece.into_bytes()
                    })
                    .collect(),
                content_type: json_content_type(Provider::Google),
            }
        }
        "generateContent" => {
            // One response with every part of the stream.
            let parts: Vec<Value> = chunks
                .iter()
                .flat_map(|c| {
                    c.pointer("/candidates/0/content/parts")
                        .and_then(Value::as_array)
                        .cloned()
                        .unwrap_or_default()
                })
                .collect();
            let last = chunks.last().cloned().unwrap_or(Value::Null);
            let mut whole = chunk(json!(parts), true, last["usageMetadata"].clone());
            whole["responseId"] = json!(response_id);
            Payload::Json(pretty(&wrap(whole)))
        }
        _ => return None,
    })
}
