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

/// The recognised form of a text or thinking delta gives exactly what the parse gives (the
/// delta mark, nothing else); everything else, valid or not, goes to the parse. Fed in pairs:
/// the recognised event under its name, the same data under a name that never takes the
/// recognising path.
#[test]
fn recognised_deltas_are_exactly_what_the_parse_reads_as_plain_content() {
    let prefix = r#"{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"#;
    let cases: Vec<(String, bool)> = vec![
        (format!(r#"{prefix}"Hello"}}}}"#), true),
        (format!(r#"{prefix}"tab\t quote\" \u00e9 \ud83d\ude00 é"}}}}"#), true),
        (format!(r#"{prefix}""}}}}"#), true),
        (
            r#"{"type":"content_block_delta","index":12,"delta":{"type":"thinking_delta","thinking":"so"}}"#.to_owned(),
            true,
        ),
        (format!("{prefix}\"trailing\"}}}}  \n"), true),
        (
            r#"{"type":"content_block_delta","index":10,"delta":{"type":"text_delta","text":"x"}}"#.to_owned(),
            true,
        ),
        // Not recognised: another order, more fields, other deltas, anything malformed.
        (
            r#"{"index":0,"type":"content_block_delta","delta":{"type":"text_delta","text":"x"}}"#.to_owned(),
            false,
        ),
        (
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"input_json_delta","partial_json":"{\"a"}}"#.to_owned(),
            false,
        ),
        (
            r#"{"type":"content_block_delta","index":0,"delta":{"type":"signature_delta","signature":"abc"}}"#.to_owned(),
            false,
        ),
        (format!(r#"{prefix}"x","extra":1}}}}"#), false),
        (format!(r#"{prefix}"x"}},"usage":{{"output_tokens":9}}}}"#), false),
        (format!(r#"{prefix}"unterminated"#), false),
        (format!(r#"{prefix}"raw control {}"}}}}"#, '\u{1}'), false),
        (format!(r#"{prefix}"bad escape \q"}}}}"#), false),
        (format!(r#"{prefix}"lone \ud800 surrogate"}}}}"#), false),
        (format!(r#"{prefix}"two" "strings"}}}}"#), false),
        (format!(r#"{prefix}"a"}}}}}}"#), false),
        (format!(r#"{prefix}12}}}}"#), false),
        (
            r#"{"type":"content_block_delta","index":,"delta":{"type":"text_delta","text":"x"}}"#.to_owned(),
            false,
        ),
        // Not JSON, though close (the attacker review's two): a leading zero, a form feed.
        (
            r#"{"type":"content_block_delta","index":01,"delta":{"type":"text_delta","text":"x"}}"#.to_owned(),
            false,
        ),
        (format!("{prefix}\"x\"}}}}\x0c"), false),
    ];
    let mut bytes_cases: Vec<(Vec<u8>, bool)> = cases
        .into_iter()
        .map(|(s, r)| (s.into_bytes(), r))
        .collect();
    let mut bad_utf8 = prefix.as_bytes().to_vec();
    bad_utf8.extend_from_slice(b"\"bad \xff\xfe\xc3 bytes\"}}");
    bytes_cases.push((bad_utf8, false));
    for (data, recognised) in &bytes_cases {
        let shown = String::from_utf8_lossy(data);
        assert_eq!(is_plain_content_delta(data), *recognised, "{shown}");
        let (mut fast, mut parsed) = (
            stream_parser(Operation::Chat, None),
            stream_parser(Operation::Chat, None),
        );
        let fast_out = fast.on_event(&sse::Event {
            name: b"content_block_delta",
            data,
        });
        let parsed_out = parsed.on_event(&sse::Event { name: b"", data });
        assert_eq!(fast_out, parsed_out, "{shown}");
        assert_eq!(fast.facts(), parsed.facts(), "{shown}");
        if *recognised {
            assert_eq!(parsed_out, Ok(Progress { delta: true }), "{shown}");
        }
    }
}
