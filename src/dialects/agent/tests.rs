use super::*;

fn read(body: &str) -> LoopRequest {
    read_request(body.as_bytes()).expect("valid json")
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
    assert_eq!(read_request(b"{"), Err(ParseError::InvalidJson));
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
