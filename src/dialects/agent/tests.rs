use super::*;

fn read(body: &str) -> LoopRequest {
    read_request("/v1/messages", body.as_bytes()).expect("valid json")
}

fn ids(r: &LoopRequest) -> Vec<(Option<&str>, bool)> {
    r.tool_results
        .iter()
        .map(|t| (t.id.as_deref(), t.error))
        .collect()
}

#[test]
fn messages_thread_ignores_cache_control_and_later_turns() {
    let turn1 = r#"{"model":"m","system":[{"type":"text","text":"You are Claude Code.","cache_control":{"type":"ephemeral"}}],
        "messages":[{"role":"user","content":[{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"text","text":"Fix the bug.","cache_control":{"type":"ephemeral"}}]}]}"#;
    let turn2 = r#"{"model":"m","system":[{"type":"text","text":"You are Claude Code."}],
        "messages":[{"content":[{"type":"text","text":"<system-reminder>x</system-reminder>"},{"type":"text","text":"Fix the bug."}],"role":"user"},
        {"role":"assistant","content":[{"type":"tool_use","id":"toolu_1","name":"Bash","input":{}}]},
        {"role":"user","content":[{"type":"tool_result","tool_use_id":"toolu_1","is_error":true,"content":[{"type":"text","text":"boom"}]}]}]}"#;
    let (a, b) = (read(turn1), read(turn2));
    assert!(a.thread.is_some());
    assert_eq!(a.thread, b.thread, "same system and first user text");
    assert!(a.tool_results.is_empty());
    assert_eq!(ids(&b), [(Some("toolu_1"), true)]);
    let other = read(
        r#"{"system":"You are a file search specialist.","messages":[{"role":"user","content":"Fix the bug."}]}"#,
    );
    assert_ne!(
        other.thread, a.thread,
        "another system prompt is another thread"
    );
}

#[test]
fn chat_system_messages_and_tool_messages() {
    let r = read(
        r#"{"messages":[{"role":"system","content":"sys"},{"role":"user","content":[{"type":"text","text":"hi"}]},
        {"role":"assistant","tool_calls":[{"id":"call_1","type":"function","function":{"name":"f","arguments":"{}"}}]},
        {"role":"tool","tool_call_id":"call_1","content":"ok"}]}"#,
    );
    assert_eq!(ids(&r), [(Some("call_1"), false)]);
    let same =
        read(r#"{"messages":[{"role":"system","content":"sys"},{"role":"user","content":"hi"}]}"#);
    assert_eq!(
        r.thread, same.thread,
        "a string and one text part are the same text"
    );
}

#[test]
fn responses_items_and_previous_response_id() {
    let r = read(
        r#"{"instructions":"be codex","previous_response_id":"resp_1","input":[
        {"type":"message","role":"developer","content":[{"type":"input_text","text":"perms"}]},
        {"type":"message","role":"user","content":[{"type":"input_text","text":"env"}]},
        {"type":"function_call","call_id":"call_a","name":"shell","arguments":"{}"},
        {"type":"function_call_output","call_id":"call_a","output":"done"},
        {"type":"custom_tool_call_output","call_id":"call_b","output":"done"}]}"#,
    );
    assert_eq!(ids(&r), [(Some("call_a"), false), (Some("call_b"), false)]);
    assert_eq!(r.previous_response_id.as_deref(), Some("resp_1"));
    assert!(r.thread.is_some());
    let shorthand = read(r#"{"instructions":"be codex","input":"hello"}"#);
    assert!(shorthand.thread.is_some());
}

#[test]
fn gemini_and_code_assist_and_converse() {
    let gemini = r#"{"systemInstruction":{"parts":[{"text":"sys"}]},"contents":[
        {"role":"user","parts":[{"text":"do it"}]},
        {"role":"model","parts":[{"functionCall":{"id":"fc_1","name":"run_shell_command","args":{}}}]},
        {"role":"user","parts":[{"functionResponse":{"id":"fc_1","name":"run_shell_command","response":{"error":"denied"}}}]}]}"#;
    let g = read(gemini);
    assert_eq!(ids(&g), [(Some("fc_1"), true)]);
    let wrapped = read(&format!(
        r#"{{"model":"gemini-2.5-pro","project":"p","request":{gemini}}}"#
    ));
    assert_eq!(wrapped, g, "Code Assist wraps the same request");
    let converse = read(
        r#"{"system":[{"text":"sys"}],"messages":[{"role":"user","content":[{"text":"do it"}]},
        {"role":"user","content":[{"toolResult":{"toolUseId":"tu_1","status":"error","content":[{"text":"x"}]}}]}]}"#,
    );
    assert_eq!(ids(&converse), [(Some("tu_1"), true)]);
    assert_eq!(
        converse.thread,
        read(r#"{"system":"sys","messages":[{"role":"user","content":"do it"}]}"#).thread
    );
}

#[test]
fn results_are_bounded_and_ids_checked() {
    let mut body = String::from(r#"{"messages":["#);
    for i in 0..200 {
        body.push_str(&format!(
            r#"{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"t{i}"}}]}},"#
        ));
    }
    let long = "x".repeat(MAX_ID_BYTES + 1);
    body.push_str(&format!(
        r#"{{"role":"user","content":[{{"type":"tool_result","tool_use_id":"{long}"}}]}}]}}"#
    ));
    let r = read(&body);
    assert_eq!(r.tool_results.len(), MAX_TOOL_IDS);
    assert_eq!(
        r.tool_results.last().and_then(|t| t.id.as_deref()),
        Some("t199")
    );
    assert_eq!(read("[1,2]"), LoopRequest::default());
    assert_eq!(read_request("", b"{"), Err(ParseError::InvalidJson));
}

#[test]
fn arg_scan_finds_the_subagent_in_pieces_and_past_long_prompts() {
    let args = format!(
        r#"{{"description":"Find it","prompt":"{}","subagent_type":"Explore"}}"#,
        "p".repeat(100_000)
    );
    for piece in [1, 7, 4096] {
        let mut scan = ArgScan::for_tool("Task").expect("a subagent tool");
        let bytes = args.as_bytes();
        for chunk in bytes.chunks(piece) {
            scan.push(std::str::from_utf8(chunk).expect("ascii"));
        }
        assert_eq!(
            scan.finish().as_deref(),
            Some("Explore"),
            "pieces of {piece}"
        );
        assert!(scan.text.len() <= SCAN_KEEP + piece);
    }
    assert!(ArgScan::for_tool("Bash").is_none());
    let mut scan = ArgScan::for_tool("Task").expect("a subagent tool");
    scan.push(r#"{"subagent_type": "bad\"name"}"#);
    assert_eq!(scan.finish(), None, "an escaped value is not a name");
    assert_eq!(
        tool_call(Some("toolu_1"), "Task", None).subagent.as_deref(),
        Some("Task"),
        "unnamed: the tool's own name"
    );
}

/// The tool calls of `facts` as (id, name, subagent).
fn calls_of(facts: &crate::dialects::ResponseFacts) -> Vec<(Option<&str>, &str, Option<&str>)> {
    facts
        .tool_calls
        .iter()
        .map(|c| (c.id.as_deref(), c.name.as_str(), c.subagent.as_deref()))
        .collect()
}

/// Feeds JSON events to `dialect`'s stream parser.
fn stream(dialect: &crate::dialects::Dialect, events: &[&str]) -> crate::dialects::ResponseFacts {
    let mut p = (dialect.stream_parser)(crate::dialects::Operation::Chat, None);
    for data in events {
        let v: serde_json::Value = serde_json::from_str(data).expect("json");
        let name = v["type"].as_str().unwrap_or_default().to_owned();
        p.on_event(&crate::dialects::sse::Event {
            name: name.as_bytes(),
            data: data.as_bytes(),
        })
        .expect("event");
    }
    p.facts()
}

#[test]
fn a_streamed_agent_call_is_named_from_its_input_pieces() {
    let facts = stream(
        &crate::dialects::anthropic::MESSAGES,
        &[
            r#"{"type":"message_start","message":{"id":"msg_1","model":"m"}}"#,
            r#"{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}"#,
            r#"{"type":"content_block_start","index":1,"content_block":{"type":"tool_use","id":"toolu_a","name":"Agent","input":{}}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"{\"description\":\"Find it\",\"subagent_"}}"#,
            r#"{"type":"content_block_delta","index":1,"delta":{"type":"input_json_delta","partial_json":"type\": \"Explore\"}"}}"#,
            r#"{"type":"content_block_start","index":2,"content_block":{"type":"server_tool_use","id":"srvtoolu_1","name":"web_search","input":{}}}"#,
            r#"{"type":"content_block_start","index":3,"content_block":{"type":"tool_use","id":"toolu_b","name":"Bash","input":{}}}"#,
            r#"{"type":"message_stop"}"#,
        ],
    );
    assert_eq!(facts.tools_called, ["Agent", "web_search", "Bash"]);
    let calls = calls_of(&facts);
    assert_eq!(
        calls,
        [
            (Some("toolu_a"), "Agent", Some("Explore")),
            (Some("toolu_b"), "Bash", None)
        ],
        "the server tool waits for no result"
    );
}

#[test]
fn responses_calls_and_codex_rate_limits_from_the_socket() {
    let facts = stream(
        &crate::dialects::openai_responses::RESPONSES,
        &[
            r#"{"type":"codex.rate_limits","rate_limits":{"primary":{"used_percent":42.0,"window_minutes":300,"reset_at":1764558000},"secondary":{"used_percent":7.5,"window_minutes":10080,"reset_at":1765000000}}}"#,
            r#"{"type":"response.output_item.added","output_index":0,"item":{"type":"function_call","call_id":"call_1","name":"spawn_agent","arguments":""}}"#,
            r#"{"type":"response.output_item.done","output_index":0,"item":{"type":"function_call","call_id":"call_1","name":"spawn_agent","arguments":"{\"task_name\":\"fix_tests\",\"message\":\"go\"}"}}"#,
            r#"{"type":"response.output_item.added","output_index":1,"item":{"type":"web_search_call","id":"ws_1"}}"#,
            r#"{"type":"response.output_item.added","output_index":2,"item":{"type":"custom_tool_call","call_id":"call_2","name":"exec","input":""}}"#,
            r#"{"type":"response.completed","response":{"id":"resp_1","status":"completed","usage":{"input_tokens":1,"output_tokens":1}}}"#,
        ],
    );
    let calls = calls_of(&facts);
    assert_eq!(
        calls,
        [
            (Some("call_1"), "spawn_agent", Some("fix_tests")),
            (Some("call_2"), "exec", None)
        ]
    );
    let limits = facts.ratelimits.expect("the socket's limits");
    assert_eq!(limits.windows["5h"].utilization, Some(0.42));
    assert_eq!(limits.windows["7d"].reset, Some(1_765_000_000));
}

#[test]
fn compaction_markers_the_agents_send() {
    let claude = r#"{"system":"s","messages":[{"role":"user","content":"Fix it."},{"role":"assistant","content":"ok"},
        {"role":"user","content":[{"type":"text","text":"CRITICAL: Respond with TEXT ONLY. Your task is to create a detailed summary of the conversation so far, paying close attention"}]}]}"#;
    assert!(read(claude).compaction);
    // The marker in an earlier user message is history, not this request's ask.
    let after = r#"{"system":"s","messages":[{"role":"user","content":"Your task is to create a detailed summary of the conversation so far"},{"role":"assistant","content":"ok"},{"role":"user","content":"go on"}]}"#;
    assert!(!read(after).compaction);
    let codex = r#"{"input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"x"}]},{"type":"compaction_trigger"}]}"#;
    assert!(read(codex).compaction);
    let compact = read_request("/responses/compact", br#"{"input":[]}"#).expect("json");
    assert!(compact.compaction, "Codex's remote compaction endpoint");
    let gemini = r#"{"systemInstruction":{"parts":[{"text":"\nYou are a specialized system component responsible for distilling chat history into a structured XML <state_snapshot>."}]},"contents":[{"role":"user","parts":[{"text":"x"}]}]}"#;
    assert!(read(gemini).compaction);
    assert!(!read(r#"{"system":"s","messages":[{"role":"user","content":"hi"}]}"#).compaction);
}

#[test]
fn claude_codes_billing_line_is_not_part_of_the_thread() {
    let turn = |cch: &str| {
        read(&format!(
            r#"{{"system":[{{"type":"text","text":"x-anthropic-billing-header: cc_version=2.1.197.fbe; cc_entrypoint=sdk-cli; cch={cch};"}},{{"type":"text","text":"You are Claude Code."}}],"messages":[{{"role":"user","content":"Fix it."}}]}}"#
        ))
        .thread
    };
    assert_eq!(turn("33f33"), turn("1a0ce"));
}

// Found by the attacker review of issue 15; each test says what was wrong.

/// Gemini CLI puts the user's GEMINI.md memory into `systemInstruction`; a project whose
/// notes mention Gemini CLI's `<state_snapshot>` makes every request a "compaction" (and
/// so turns off cache-break detection for the whole session).
#[test]
fn a_system_prompt_quoting_the_marker_is_no_compaction() {
    let r = read(
        r#"{"systemInstruction":{"parts":[{"text":"You are an interactive CLI agent.\n# Memory (GEMINI.md)\nOur parser must handle the <state_snapshot> XML that compression writes."}]},
        "contents":[{"role":"user","parts":[{"text":"fix the parser"}]}],
        "tools":[{"functionDeclarations":[{"name":"read_file"}]}]}"#,
    );
    assert!(!r.compaction, "an ordinary turn with tools");
}

/// Subagent names read from an arguments object (Anthropic's non-streamed `tool_use.input`,
/// every Gemini `functionCall.args`) are only length-checked, while the streamed reader
/// (`find_field`) admits `[A-Za-z0-9._:@+ -]` only. The name becomes the `agent` label, the
/// `gen_ai.agent.name` attribute and a `llmtap report --by agent` row printed raw.
#[test]
fn subagent_names_from_argument_objects_are_as_constrained_as_streamed_ones() {
    let args: SubagentArgs =
        serde_json::from_str(r#"{"agent_name":"x\u001b]0;owned\u0007\ny"}"#).expect("json");
    let streamed = find_field(
        r#"{"agent_name":"x\u001b]0;owned\u0007\ny"}"#,
        &["agent_name"],
    );
    assert_eq!(streamed, None);
    assert_eq!(args.name_for("invoke_agent"), None, "control characters");
}
