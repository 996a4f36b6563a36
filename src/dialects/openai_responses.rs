//! OpenAI Responses: `POST /v1/responses` (SSE with `event:` + `data:`, or JSON), the same
//! at `chatgpt.com/backend-api/codex/responses` (Codex signed in with ChatGPT), and the
//! WebSocket form Codex CLI uses by default (`GET /v1/responses` + upgrade), whose frames are
//! the same JSON objects as the SSE `data:` lines.
//!
//! Usage comes with the terminal event (`response.completed` | `response.failed` |
//! `response.incomplete`): `input_tokens` includes `input_tokens_details.cached_tokens`,
//! `output_tokens` includes `output_tokens_details.reasoning_tokens`.

use serde_json::Value;

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
        Some(Value::Array(parts)) => parts
            .iter()
            .map(|p| match p.get("text").and_then(Value::as_str) {
                Some(text) => serde_json::json!({"type": "text", "content": text}),
                None => serde_json::json!({"type": p.get("type")}),
            })
            .collect(),
        _ => Vec::new(),
    }
}

fn chars_of(content: Option<&Value>) -> u64 {
    text_parts(content)
        .iter()
        .filter_map(|p| p.get("content").and_then(Value::as_str))
        .map(|t| t.chars().count() as u64)
        .sum()
}

fn is_system(item: &Value) -> bool {
    matches!(
        item.get("role").and_then(Value::as_str),
        Some("system" | "developer")
    )
}

/// Tools of the request: top-level `tools`, plus Codex's `additional_tools` input items;
/// a `namespace` tool (Codex 0.169 groups its tools as `functions`, `clock`, …) stands for
/// the tools it contains.
fn tools(v: &Value) -> Vec<&Value> {
    fn flatten<'a>(tools: &'a [Value], out: &mut Vec<&'a Value>, depth: usize) {
        for tool in tools {
            match tool.get("tools").and_then(Value::as_array) {
                Some(inner)
                    if tool.get("type").and_then(Value::as_str) == Some("namespace")
                        && depth < 4 =>
                {
                    flatten(inner, out, depth + 1);
                }
                _ => out.push(tool),
            }
        }
    }
    let mut out = Vec::new();
    if let Some(top) = v.get("tools").and_then(Value::as_array) {
        flatten(top, &mut out, 0);
    }
    for item in v
        .get("input")
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        if item.get("type").and_then(Value::as_str) == Some("additional_tools")
            && let Some(inner) = item.get("tools").and_then(Value::as_array)
        {
            flatten(inner, &mut out, 0);
        }
    }
    out
}

fn parse_request(
    _op: Operation,
    _path: &str,
    body: &[u8],
    capture: bool,
) -> Result<RequestFacts, ParseError> {
    let v = json(body)?;
    let input: Vec<&Value> = match v.get("input") {
        Some(Value::Array(items)) => items
            .iter()
            .filter(|i| i.get("type").and_then(Value::as_str) != Some("additional_tools"))
            .collect(),
        Some(other @ Value::String(_)) => vec![other],
        _ => Vec::new(),
    };
    let instructions = v.get("instructions");
    let system_chars = chars_of(instructions)
        + input
            .iter()
            .filter(|i| is_system(i))
            .map(|i| chars_of(i.get("content")))
            .sum::<u64>();
    let tools = tools(&v);
    let tool_name = |t: &&Value| {
        t.get("name")
            .or_else(|| t.get("type"))
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let content = capture.then(|| RequestContent {
        system: text_parts(instructions)
            .into_iter()
            .chain(
                input
                    .iter()
                    .filter(|i| is_system(i))
                    .flat_map(|i| text_parts(i.get("content"))),
            )
            .collect(),
        input: input
            .iter()
            .filter(|i| !is_system(i))
            .map(|i| input_message(i))
            .collect(),
        tools: tools
            .iter()
            .map(|t| {
                serde_json::json!({
                    "type": t.get("type").and_then(Value::as_str).unwrap_or("function"),
                    "name": t.get("name"),
                    "description": t.get("description"),
                    "parameters": t.get("parameters"),
                })
            })
            .collect(),
    });
    Ok(RequestFacts {
        model: v.get("model").and_then(Value::as_str).map(str::to_owned),
        stream: v.get("stream").and_then(Value::as_bool).unwrap_or(false),
        max_tokens: v.get("max_output_tokens").and_then(Value::as_u64),
        temperature: v.get("temperature").and_then(Value::as_f64),
        tools_offered: tools.iter().filter_map(tool_name).collect(),
        system_chars,
        messages: input.len() as u64,
        // Codex names its session in `client_metadata.session_id` and, as the same value, in
        // `prompt_cache_key` (the only place in WebSocket frames of older versions).
        conversation_id: v
            .get("client_metadata")
            .and_then(|m| m.get("session_id"))
            .or_else(|| v.get("prompt_cache_key"))
            .and_then(Value::as_str)
            .filter(|k| !k.is_empty() && k.len() <= 128)
            .map(str::to_owned),
        content,
    })
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
        let kind = item.get("type").and_then(Value::as_str);
        if matches!(kind, Some("function_call" | "custom_tool_call"))
            && let Some(name) = item.get("name").and_then(Value::as_str)
        {
            self.tools_called.push(name.to_owned());
        }
    }
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
            k if k.ends_with(".delta") => {
                progress.delta = matches!(
                    k,
                    "response.output_text.delta"
                        | "response.function_call_arguments.delta"
                        | "response.reasoning_summary_text.delta"
                        | "response.reasoning_text.delta"
                        | "response.custom_tool_call_input.delta"
                        | "response.refusal.delta"
                );
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
            complete: self.complete,
            output: self.output.clone(),
        }
    }

    fn terminal(&self) -> bool {
        self.complete || self.error_type.is_some()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed(p: &mut dyn StreamParser, data: &str) -> Progress {
        p.on_event(&sse::Event {
            name: b"",
            data: data.as_bytes(),
        })
        .expect("valid")
    }

    #[test]
    fn events_give_model_tools_usage_and_finish() {
        let mut p = stream_parser(Operation::Chat, None);
        feed(
            p.as_mut(),
            r#"{"type":"response.created","response":{"id":"resp_1","model":"gpt-6.1-sol","status":"in_progress"}}"#,
        );
        feed(
            p.as_mut(),
            r#"{"type":"response.output_item.added","item":{"type":"function_call","name":"shell","call_id":"c1"}}"#,
        );
        assert!(
            feed(
                p.as_mut(),
                r#"{"type":"response.function_call_arguments.delta","delta":"{\"cmd\""}"#
            )
            .delta
        );
        assert!(!p.terminal());
        feed(
            p.as_mut(),
            r#"{"type":"response.completed","response":{"id":"resp_1","model":"gpt-6.1-sol","status":"completed","output":[{"type":"function_call","name":"shell"}],"usage":{"input_tokens":900,"input_tokens_details":{"cached_tokens":512},"output_tokens":40,"output_tokens_details":{"reasoning_tokens":30}}}}"#,
        );
        let f = p.facts();
        assert!(p.terminal() && f.complete);
        assert_eq!(
            f.tools_called,
            ["shell"],
            "counted once, not again from the final output"
        );
        assert_eq!(f.finish_reasons, ["completed"]);
        assert_eq!(
            (
                f.usage.input,
                f.usage.cache_read,
                f.usage.output,
                f.usage.reasoning
            ),
            (Some(900), Some(512), Some(40), Some(30))
        );
    }

    #[test]
    fn incomplete_and_failed_responses() {
        let mut p = stream_parser(Operation::Chat, None);
        feed(
            p.as_mut(),
            r#"{"type":"response.incomplete","response":{"status":"incomplete","incomplete_details":{"reason":"max_output_tokens"}}}"#,
        );
        assert_eq!(p.facts().finish_reasons, ["max_output_tokens"]);
        let mut p = stream_parser(Operation::Chat, None);
        feed(
            p.as_mut(),
            r#"{"type":"response.failed","response":{"status":"failed","error":{"code":"server_error","message":"x"}}}"#,
        );
        assert_eq!(p.facts().error_type.as_deref(), Some("server_error"));
    }

    #[test]
    fn an_error_event_ends_the_call_with_its_code() {
        let mut p = stream_parser(Operation::Chat, None);
        feed(
            p.as_mut(),
            r#"{"type":"response.created","response":{"id":"resp_2","model":"gpt-6.1-sol"}}"#,
        );
        feed(
            p.as_mut(),
            r#"{"type":"error","code":"rate_limit_exceeded","message":"slow down","param":null}"#,
        );
        assert!(p.terminal());
        let f = p.facts();
        assert_eq!(f.error_type.as_deref(), Some("rate_limit_exceeded"));
        assert!(!f.complete);
        let mut p = stream_parser(Operation::Chat, None);
        feed(
            p.as_mut(),
            r#"{"type":"error","error":{"type":"server_error","message":"x"}}"#,
        );
        assert_eq!(p.facts().error_type.as_deref(), Some("server_error"));
    }

    #[test]
    fn namespace_tools_stand_for_the_tools_they_contain() {
        let body = br#"{"model":"gpt-6.1-sol","input":[{"type":"additional_tools","tools":[{"type":"namespace","name":"functions","tools":[{"type":"custom","name":"exec"},{"type":"function","name":"update_plan"}]},{"type":"namespace","name":"clock","tools":[{"type":"function","name":"now"}]}]}],"tools":[{"type":"web_search"}]}"#;
        let r = parse_request(Operation::Chat, "/v1/responses", body, false).expect("request");
        assert_eq!(
            r.tools_offered,
            ["web_search", "exec", "update_plan", "now"]
        );
    }

    #[test]
    fn codex_tools_come_from_additional_tools_items() {
        let body = br#"{"model":"gpt-6.1-sol","input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"be brief"}]},{"type":"additional_tools","tools":[{"type":"function","name":"shell"},{"type":"web_search"}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],"stream":true}"#;
        let r = parse_request(Operation::Chat, "/v1/responses", body, false).expect("request");
        assert_eq!(r.tools_offered, ["shell", "web_search"]);
        assert_eq!((r.system_chars, r.messages), (8, 2));
    }
}
