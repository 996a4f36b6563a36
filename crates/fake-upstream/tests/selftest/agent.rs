//! Checks the fake upstream's agent mode ([`FakeUpstream::start_agent`]) directly, without
//! llmtap or any agent: each API gets a shell tool call first, the final answer once the tool
//! result carries the marker, a schema-shaped answer to a request without tools, in its own
//! wire format; the answers log matches; and the fixture behaviour is unchanged.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::{Duration, Instant};

use bytes::Bytes;
use futures::{SinkExt as _, StreamExt as _};
use http_body_util::Full;
use hyper::{Request, client::conn::http1::SendRequest};
use llmtap_fake_upstream::{
    FakeUpstream,
    agent::{self, Api, CodexCall, Turn},
};
use serde_json::{Value, json};
use tokio_tungstenite::{
    client_async,
    tungstenite::{Message, client::IntoClientRequest as _},
};

use super::{concat, connect_as, frames, tls_as};

/// A response read to its end, frame by frame.
struct Collected {
    status: u16,
    chunks: Vec<(Instant, Bytes)>,
    /// `Err` when the body failed before its end.
    end: Result<(), String>,
}

impl Collected {
    fn body(&self) -> Vec<u8> {
        concat(&self.chunks)
    }
}

/// A POST as any client would send it: only the given headers (plus `host`).
fn request(host: &str, path: &str, body: &[u8], headers: &[(&str, &str)]) -> Request<Full<Bytes>> {
    let mut req = Request::post(path)
        .header("host", host)
        .header("content-type", "application/json");
    for (name, value) in headers {
        req = req.header(*name, *value);
    }
    req.body(Full::new(Bytes::copy_from_slice(body)))
        .expect("request")
}

/// Sends `req` on `conn` and reads the response to its end.
async fn send(conn: &mut SendRequest<Full<Bytes>>, req: Request<Full<Bytes>>) -> Collected {
    conn.ready().await.expect("connection ready");
    let res = conn.send_request(req).await.expect("response");
    let status = res.status().as_u16();
    let (chunks, error) = frames(res).await;
    Collected {
        status,
        chunks,
        end: error.map_or(Ok(()), Err),
    }
}

/// POSTs `body` to `host` `path` directly (TLS trusting the fake's CA).
async fn post(upstream: &FakeUpstream, host: &str, path: &str, body: &Value) -> Collected {
    let mut conn = connect_as(upstream, host).await;
    let got = send(
        &mut conn,
        request(host, path, body.to_string().as_bytes(), &[]),
    )
    .await;
    assert_eq!(got.status, 200, "{}", String::from_utf8_lossy(&got.body()));
    assert!(got.end.is_ok(), "{:?}", got.end);
    got
}

/// The JSON of every `data:` line of an SSE body.
fn sse_data(got: &Collected) -> Vec<Value> {
    String::from_utf8(got.body())
        .unwrap()
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .map(|d| serde_json::from_str(d).unwrap())
        .collect()
}

fn bash_tool() -> Value {
    json!({"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}})
}

#[tokio::test]
async fn anthropic_tool_call_then_final_answer() {
    let upstream = FakeUpstream::start_agent().await;
    let user = json!({"role": "user", "content": [{"type": "text", "text": "go"}]});
    let first = json!({"model": "claude-opus-4-8", "stream": true, "max_tokens": 32000,
        "tools": [bash_tool()], "messages": [user]});
    let got = post(
        &upstream,
        "api.anthropic.com",
        "/v1/messages?beta=true",
        &first,
    )
    .await;
    assert!(got.chunks.len() > 5, "one chunk per event");
    let events = sse_data(&got);
    assert_eq!(events[0]["message"]["model"], "claude-opus-4-8");
    let tool = events
        .iter()
        .find(|e| e["content_block"]["type"] == "tool_use")
        .expect("a tool_use block");
    assert_eq!(tool["content_block"]["name"], "Bash");
    let input: String = events
        .iter()
        .filter_map(|e| e["delta"]["partial_json"].as_str())
        .collect();
    let input: Value = serde_json::from_str(&input).unwrap();
    assert_eq!(input["command"], agent::COMMAND);
    let delta = events
        .iter()
        .find(|e| e["type"] == "message_delta")
        .unwrap();
    assert_eq!(delta["delta"]["stop_reason"], "tool_use");
    assert_eq!(delta["usage"]["output_tokens"], 131);

    let tool_id = tool["content_block"]["id"].as_str().unwrap();
    let with_result = |output: &str| {
        json!({"model": "claude-opus-4-8", "stream": true, "tools": [bash_tool()], "messages": [
            user,
            {"role": "assistant", "content": [{"type": "tool_use", "id": tool_id, "name": "Bash",
                "input": input}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": tool_id,
                "content": output}]},
        ]})
    };
    let text = |got: &Collected| -> String {
        sse_data(got)
            .iter()
            .filter_map(|e| e["delta"]["text"].as_str().map(str::to_owned))
            .collect()
    };
    let done = post(
        &upstream,
        "api.anthropic.com",
        "/v1/messages",
        &with_result("llmtap-e2e-marker\n"),
    )
    .await;
    assert_eq!(text(&done), agent::FINAL_TEXT);
    let wrong = post(
        &upstream,
        "api.anthropic.com",
        "/v1/messages",
        &with_result("command not found"),
    )
    .await;
    assert_eq!(text(&wrong), agent::NO_MARKER_TEXT);

    // A side call without tools (Claude Code's session title) gets JSON in its schema.
    let title = json!({"model": "claude-haiku-4-5-20251001", "stream": true, "tools": [],
        "messages": [user], "output_config": {"format": {"type": "json_schema", "schema": {
            "type": "object", "properties": {"title": {"type": "string"}},
            "required": ["title"], "additionalProperties": false}}}});
    let got = post(&upstream, "api.anthropic.com", "/v1/messages", &title).await;
    let title: Value = serde_json::from_str(&text(&got)).unwrap();
    assert!(title["title"].is_string(), "{title}");

    // Not streamed: one JSON message.
    let mut plain = first.clone();
    plain["stream"] = json!(false);
    let got = post(&upstream, "api.anthropic.com", "/v1/messages", &plain).await;
    let message: Value = serde_json::from_slice(&got.body()).unwrap();
    assert_eq!(message["content"][1]["name"], "Bash");
    assert_eq!(message["usage"]["cache_read_input_tokens"], 17_352);

    let answers = upstream.answers();
    let turns: Vec<Turn> = answers.iter().map(|a| a.turn).collect();
    assert_eq!(
        turns,
        [
            Turn::ToolCall,
            Turn::Final,
            Turn::Final,
            Turn::Text,
            Turn::ToolCall
        ]
    );
    assert_eq!(answers[0].id, events[0]["message"]["id"]);
    assert_eq!(answers[0].tool.as_deref(), Some("Bash"));
    assert_eq!(answers[0].model, "claude-opus-4-8");
    assert_eq!(upstream.model_requests().len(), 5);
}

#[tokio::test]
async fn provider_paths_get_the_agent_answers_with_the_model_of_the_path() {
    let upstream = FakeUpstream::start_agent().await;
    let user = json!({"role": "user", "content": [{"type": "text", "text": "go"}]});
    // Vertex AI: no model in the body, `anthropic_version`, streamed by the method.
    let vertex = json!({"anthropic_version": "vertex-2023-10-16", "stream": true,
        "max_tokens": 32000, "tools": [bash_tool()], "messages": [user]});
    let got = post(
        &upstream,
        "us-east5-aiplatform.googleapis.com",
        "/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
        &vertex,
    )
    .await;
    let events = sse_data(&got);
    assert_eq!(events[0]["message"]["model"], "claude-sonnet-4-5@20250929");
    assert!(events.iter().any(|e| e["content_block"]["name"] == "Bash"));
    // Azure's Responses path (Codex with `base_url = …/openai`).
    let body: Value = serde_json::from_slice(&FakeUpstream::fixture_in(
        "openai_responses",
        "stream_function_call",
        "request.json",
    ))
    .unwrap();
    let got = post(
        &upstream,
        "fake-resource.openai.azure.com",
        "/openai/responses?api-version=2025-04-01-preview",
        &body,
    )
    .await;
    assert!(
        sse_data(&got)
            .iter()
            .any(|e| e["type"] == "response.completed")
    );
    // Vertex AI's count-tokens stays a fixture.
    let got = post(
        &upstream,
        "us-east5-aiplatform.googleapis.com",
        "/v1/projects/p-1/locations/us-east5/publishers/anthropic/models/count-tokens:rawPredict",
        &json!({"model": "claude-sonnet-4-5@20250929", "messages": [user]}),
    )
    .await;
    assert_eq!(
        got.body(),
        FakeUpstream::fixture_in("anthropic", "count_tokens", "json")
    );
    let answers = upstream.answers();
    assert_eq!(answers.len(), 2, "count-tokens is not an agent answer");
    assert_eq!(answers[0].api, Api::Anthropic);
    assert_eq!(answers[0].model, "claude-sonnet-4-5@20250929");
    assert_eq!(answers[1].api, Api::Responses);
}

#[tokio::test]
async fn responses_calls_a_shell_function_or_codex_code_mode() {
    let upstream = FakeUpstream::start_agent().await;
    // Older Codex: a `shell` function with an argv `command`.
    let body: Value = serde_json::from_slice(&FakeUpstream::fixture_in(
        "openai_responses",
        "stream_function_call",
        "request.json",
    ))
    .unwrap();
    let got = post(&upstream, "api.openai.com", "/v1/responses", &body).await;
    let events = sse_data(&got);
    let seqs: Vec<u64> = events
        .iter()
        .map(|e| e["sequence_number"].as_u64().unwrap())
        .collect();
    assert_eq!(seqs, (0..events.len() as u64).collect::<Vec<_>>());
    let done = events.last().unwrap();
    assert_eq!(done["type"], "response.completed");
    let item = &done["response"]["output"][0];
    assert_eq!(item["type"], "function_call");
    assert_eq!(item["name"], "shell");
    let args: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args["command"], json!(["bash", "-lc", agent::COMMAND]));
    assert_eq!(done["response"]["usage"]["input_tokens"], 9_214);

    // Codex 0.169: code mode's freeform `exec` inside a namespace of `additional_tools`.
    let codex = json!({"model": "gpt-6.1-sol", "stream": true, "input": [
        {"type": "additional_tools", "role": "developer", "tools": [{"type": "namespace",
            "name": "functions", "tools": [{"type": "custom", "name": "exec",
                "format": {"type": "grammar"}}]}]},
        {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "go"}]},
    ]});
    let Some(CodexCall::Custom { name, input }) = agent::codex_shell_call(&codex) else {
        panic!("code mode");
    };
    assert_eq!(name, "exec");
    assert!(input.contains("tools.exec_command"), "{input}");
    let got = post(&upstream, "api.openai.com", "/v1/responses", &codex).await;
    let events = sse_data(&got);
    let item = &events.last().unwrap()["response"]["output"][0];
    assert_eq!(item["type"], "custom_tool_call");
    assert_eq!(item["input"], input);
    let deltas: String = events
        .iter()
        .filter(|e| e["type"] == "response.custom_tool_call_input.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(deltas, input);

    let mut result = codex.clone();
    result["input"].as_array_mut().unwrap().extend([
        item.clone(),
        json!({"type": "custom_tool_call_output", "call_id": item["call_id"],
            "output": [{"type": "input_text", "text": "llmtap-e2e-marker\n"}]}),
    ]);
    let got = post(&upstream, "api.openai.com", "/v1/responses", &result).await;
    let text: String = sse_data(&got)
        .iter()
        .filter(|e| e["type"] == "response.output_text.delta")
        .filter_map(|e| e["delta"].as_str())
        .collect();
    assert_eq!(text, agent::FINAL_TEXT);
    let turns: Vec<Turn> = upstream.answers().iter().map(|a| a.turn).collect();
    assert_eq!(turns, [Turn::ToolCall, Turn::ToolCall, Turn::Final]);
}

#[tokio::test]
async fn responses_websocket_prewarm_and_turns() {
    let upstream = FakeUpstream::start_agent().await;
    let request = "wss://api.openai.com/v1/responses"
        .into_client_request()
        .unwrap();
    let tls = tls_as(&upstream, "api.openai.com").await;
    let (mut ws, _) = client_async(request, tls).await.expect("handshake");
    let mut exchange = async |create: Value| -> Vec<Value> {
        ws.send(Message::text(create.to_string())).await.unwrap();
        let mut got = Vec::new();
        loop {
            let next = tokio::time::timeout(Duration::from_secs(5), ws.next())
                .await
                .expect("a message")
                .expect("open")
                .expect("no error");
            if let Message::Text(text) = next {
                let v: Value = serde_json::from_str(&text).unwrap();
                let end = v["type"] == "response.completed";
                got.push(v);
                if end {
                    return got;
                }
            }
        }
    };
    let prewarm = exchange(json!({"type": "response.create", "model": "gpt-6.1-sol",
        "input": [], "generate": false}))
    .await;
    assert_eq!(prewarm.len(), 2, "created, completed");
    assert_eq!(prewarm[1]["response"]["usage"]["input_tokens"], 0);
    let tools = json!([{"type": "function", "name": "exec_command", "parameters": {
        "type": "object", "properties": {"cmd": {"type": "string"}}}}]);
    let turn = exchange(json!({"type": "response.create", "model": "gpt-6.1-sol",
        "previous_response_id": prewarm[1]["response"]["id"], "tools": tools,
        "input": [{"type": "message", "role": "user", "content": "go"}]}))
    .await;
    let item = &turn.last().unwrap()["response"]["output"][0];
    assert_eq!(item["name"], "exec_command");
    let args: Value = serde_json::from_str(item["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(args, json!({"cmd": agent::COMMAND}));
    let last = exchange(json!({"type": "response.create", "model": "gpt-6.1-sol",
        "input": [{"type": "function_call_output", "call_id": item["call_id"],
            "output": "llmtap-e2e-marker"}]}))
    .await;
    assert_eq!(
        last.last().unwrap()["response"]["output"][0]["content"][0]["text"],
        agent::FINAL_TEXT
    );
    let answers = upstream.answers();
    let turns: Vec<Turn> = answers.iter().map(|a| a.turn).collect();
    assert_eq!(turns, [Turn::Prewarm, Turn::ToolCall, Turn::Final]);
    assert!(answers.iter().all(|a| a.api == Api::Responses));
    assert_eq!(upstream.ws_creates().len(), 3);
    assert!(
        upstream.model_requests().is_empty(),
        "an upgrade is no call"
    );
}

#[tokio::test]
async fn gemini_function_call_then_final_and_json_checks() {
    let upstream = FakeUpstream::start_agent().await;
    let body: Value = serde_json::from_slice(&FakeUpstream::fixture_in(
        "gemini",
        "stream_function_call",
        "request.json",
    ))
    .unwrap();
    let path = "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse";
    let host = "generativelanguage.googleapis.com";
    let got = post(&upstream, host, path, &body).await;
    let chunks = sse_data(&got);
    assert!(String::from_utf8(got.body()).unwrap().contains("\r\n\r\n"));
    let call = &chunks.last().unwrap()["candidates"][0]["content"]["parts"][0]["functionCall"];
    assert_eq!(call["name"], "run_shell_command");
    assert_eq!(call["args"]["command"], agent::COMMAND);
    assert_eq!(chunks[0]["modelVersion"], "gemini-2.5-flash");

    let mut result = body.clone();
    result["contents"].as_array_mut().unwrap().extend([
        json!({"role": "model", "parts": [{"functionCall": call}]}),
        json!({"role": "user", "parts": [{"functionResponse": {"name": "run_shell_command",
            "response": {"output": "llmtap-e2e-marker"}}}]}),
    ]);
    let text = |got: &Collected| -> String {
        sse_data(got)
            .iter()
            .filter_map(|c| c["candidates"][0]["content"]["parts"][0]["text"].as_str())
            .map(str::to_owned)
            .collect()
    };
    let got = post(&upstream, host, path, &result).await;
    assert_eq!(text(&got), agent::FINAL_TEXT);

    // Without the shell tool (hidden in `-p` mode unless allowed): no call, a clear answer.
    let mut hidden = body.clone();
    hidden["tools"] = json!([{"functionDeclarations": [{"name": "read_file"}]}]);
    let got = post(&upstream, host, path, &hidden).await;
    assert_eq!(text(&got), agent::NO_TOOL_TEXT);

    // A JSON check without tools (next speaker): JSON in the schema, `user` from the enum.
    let check = json!({"contents": body["contents"], "generationConfig": {
        "responseMimeType": "application/json", "responseJsonSchema": {"type": "object",
            "properties": {"reasoning": {"type": "string"},
                "next_speaker": {"type": "string", "enum": ["model", "user"]}},
            "required": ["reasoning", "next_speaker"]}}});
    let got = post(
        &upstream,
        host,
        "/v1beta/models/gemini-2.5-flash:generateContent",
        &check,
    )
    .await;
    let response: Value = serde_json::from_slice(&got.body()).unwrap();
    let text: String = response["candidates"][0]["content"]["parts"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["text"].as_str())
        .collect();
    let answer: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(answer["next_speaker"], "user");
    let turns: Vec<Turn> = upstream.answers().iter().map(|a| a.turn).collect();
    assert_eq!(
        turns,
        [Turn::ToolCall, Turn::Final, Turn::ToolCall, Turn::Text]
    );
    assert_eq!(
        upstream.answers()[0].model,
        "gemini-2.5-flash",
        "from the path"
    );
}

#[tokio::test]
async fn agent_mode_keeps_the_fixtures_and_the_fixture_mode_has_no_agent() {
    // A scenario header still picks a fixture in agent mode.
    let upstream = FakeUpstream::start_agent().await;
    let mut conn = connect_as(&upstream, "api.anthropic.com").await;
    let body = FakeUpstream::fixture("stream_text", "request.json");
    let got = send(
        &mut conn,
        request(
            "api.anthropic.com",
            "/v1/messages",
            &body,
            &[("x-fake-scenario", "stream_text")],
        ),
    )
    .await;
    assert_eq!(got.body(), FakeUpstream::fixture("stream_text", "sse"));
    assert!(upstream.answers().is_empty());
    // count_tokens is not a generation: the fixture.
    let got = send(
        &mut conn,
        request("api.anthropic.com", "/v1/messages/count_tokens", b"{}", &[]),
    )
    .await;
    assert_eq!(got.body(), FakeUpstream::fixture("count_tokens", "json"));

    // The fixture constructor is unchanged: the default case, never an agent answer.
    let plain = FakeUpstream::start().await;
    let mut conn = connect_as(&plain, "api.anthropic.com").await;
    let got = send(
        &mut conn,
        request("api.anthropic.com", "/v1/messages", &body, &[]),
    )
    .await;
    assert_eq!(got.body(), FakeUpstream::fixture("stream_text", "sse"));
    assert!(plain.answers().is_empty());
    assert_eq!(plain.model_requests().len(), 1);
    // Usage the suite expects is distinct per turn, so a record names its turn.
    for api in [Api::Anthropic, Api::Responses, Api::Gemini] {
        let inputs: std::collections::BTreeSet<u64> =
            [Turn::Prewarm, Turn::Text, Turn::ToolCall, Turn::Final]
                .iter()
                .map(|t| agent::expected_usage(api, *t).input)
                .collect();
        assert_eq!(inputs.len(), 4, "{api:?}");
    }
}
