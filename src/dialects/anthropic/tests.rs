use super::{
    request::{parse_request, session_from_user_id},
    *,
};

fn feed(parser: &mut dyn StreamParser, name: &str, data: &str) -> Progress {
    let event = sse::Event {
        name: name.as_bytes(),
        data: data.as_bytes(),
    };
    parser.on_event(&event).expect("valid event")
}

#[test]
fn stream_usage_is_normalized_and_final() {
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        "message_start",
        r#"{"type":"message_start","message":{"id":"msg_1","model":"claude-opus-4-8","usage":{"input_tokens":3,"cache_read_input_tokens":100,"cache_creation_input_tokens":50,"cache_creation":{"ephemeral_5m_input_tokens":20,"ephemeral_1h_input_tokens":30},"output_tokens":1}}}"#,
    );
    let first = feed(
        p.as_mut(),
        "content_block_delta",
        r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"hi"}}"#,
    );
    assert!(first.delta);
    feed(
        p.as_mut(),
        "message_delta",
        r#"{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":42}}"#,
    );
    assert!(!p.terminal());
    feed(p.as_mut(), "message_stop", r#"{"type":"message_stop"}"#);
    let facts = p.facts();
    assert!(facts.complete && p.terminal());
    assert_eq!(facts.finish_reasons, ["end_turn"]);
    assert_eq!(
        facts.usage,
        Usage {
            input: Some(153),
            output: Some(42),
            cache_read: Some(100),
            cache_write_5m: Some(20),
            cache_write_1h: Some(30),
            reasoning: None,
        }
    );
}

#[test]
fn session_comes_from_claude_code_user_ids() {
    let legacy = "user_9f8e_account_1c2d3e4f-0000-4000-8000-000000000001_session_7a6b5c4d-0000-4000-8000-000000000002";
    assert_eq!(
        session_from_user_id(legacy).as_deref(),
        Some("7a6b5c4d-0000-4000-8000-000000000002")
    );
    let json = r#"{"device_id":"d","account_uuid":"a","session_id":"s-123"}"#;
    assert_eq!(session_from_user_id(json).as_deref(), Some("s-123"));
    assert_eq!(session_from_user_id("user_abc"), None);
}

#[test]
fn cache_creation_without_split_counts_as_5m() {
    let mut raw = RawUsage::default();
    let wire = serde_json::json!({"input_tokens": 1, "cache_creation_input_tokens": 9});
    raw.merge(&json::from_value(&wire));
    let usage = raw.normalize().0;
    assert_eq!(
        (usage.input, usage.cache_write_5m, usage.cache_write_1h),
        (Some(10), Some(9), Some(0))
    );
    assert_eq!(usage.cache_read, None);
}

#[test]
fn error_bodies_give_their_type_even_when_not_json() {
    let body = br#"{"type":"error","error":{"type":"rate_limit_error","message":"slow down"}}"#;
    let facts = parse_response(Operation::Chat, 429, body, false).expect("error body");
    assert_eq!(facts.error_type.as_deref(), Some("rate_limit_error"));
    assert!(!facts.complete);
    let html =
        parse_response(Operation::Chat, 502, b"<html>bad gateway</html>", false).expect("html");
    assert_eq!(html.error_type, None);
    assert_eq!(
        parse_response(Operation::Chat, 200, b"{", false),
        Err(ParseError::InvalidJson)
    );
}

#[test]
fn a_10_mb_body_of_small_values_gives_its_facts_and_capped_content() {
    let zeros = ["0"].repeat(1_000_000).join(",");
    let messages = [r#"{"role":"user","content":"a"}"#]
        .repeat(250_000)
        .join(",");
    let body = format!(
        r#"{{"system":[{zeros}],"messages":[{messages}],"tools":[{zeros},{{"name":"Bash"}}],"model":"claude-opus-4-8","stream":true,"metadata":{{"user_id":"user_1_account_2_session_s-9"}}}}"#
    );
    assert!(body.len() > 10 << 20);
    let r = parse_request(Operation::Chat, "/v1/messages", body.as_bytes(), None).expect("request");
    assert_eq!(r.messages, 250_000);
    assert_eq!(r.tools_offered, ["Bash"]);
    assert_eq!(r.model.as_deref(), Some("claude-opus-4-8"));
    assert_eq!(r.conversation_id.as_deref(), Some("s-9"));
    assert_eq!((r.stream, r.system_chars, &r.content), (true, 0, &None));
    let max = 16 << 10;
    let captured = parse_request(Operation::Chat, "/v1/messages", body.as_bytes(), Some(max))
        .expect("request");
    crate::dialects::tests::assert_capped(&r, &captured, max);
}
