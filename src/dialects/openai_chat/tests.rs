use super::{request::parse_request, *};

fn feed(p: &mut dyn StreamParser, data: &str) -> Progress {
    p.on_event(&sse::Event {
        name: b"",
        data: data.as_bytes(),
    })
    .expect("valid")
}

#[test]
fn streamed_tool_calls_assemble_and_usage_comes_last() {
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"id":"c1","model":"gpt-5","choices":[{"index":0,"delta":{"role":"assistant"}}]}"#,
    );
    let first = feed(
        p.as_mut(),
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"id":"t1","function":{"name":"shell","arguments":""}}]}}]}"#,
    );
    assert!(first.delta);
    feed(
        p.as_mut(),
        r#"{"choices":[{"index":0,"delta":{"tool_calls":[{"index":0,"function":{"arguments":"{\"cmd\":"}}]}}]}"#,
    );
    feed(
        p.as_mut(),
        r#"{"choices":[{"index":0,"delta":{},"finish_reason":"tool_calls"}]}"#,
    );
    feed(
        p.as_mut(),
        r#"{"choices":[],"usage":{"prompt_tokens":100,"completion_tokens":20,"prompt_tokens_details":{"cached_tokens":64},"completion_tokens_details":{"reasoning_tokens":8}}}"#,
    );
    assert!(!p.terminal());
    feed(p.as_mut(), "[DONE]");
    let f = p.facts();
    assert!(f.complete);
    assert_eq!(f.tools_called, ["shell"]);
    assert_eq!(f.finish_reasons, ["tool_calls"]);
    assert_eq!(f.usage.input, Some(100));
    assert_eq!(f.usage.cache_read, Some(64));
    assert_eq!(f.usage.reasoning, Some(8));
}

#[test]
fn no_usage_stays_unknown() {
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"model":"gpt-5","choices":[{"index":0,"delta":{"content":"hi"},"finish_reason":"stop"}]}"#,
    );
    feed(p.as_mut(), "[DONE]");
    assert!(p.facts().usage.is_empty());
}

#[test]
fn a_10_mb_body_of_small_values_gives_its_facts_and_capped_content() {
    let zeros = ["0"].repeat(1_000_000).join(",");
    let messages = [r#"{"role":"user","content":"a"}"#]
        .repeat(250_000)
        .join(",");
    let body = format!(
        r#"{{"messages":[{{"role":"system","content":[{{"text":"be"}},{{"text":" brief"}}]}},{messages},{zeros}],"tools":[{zeros},{{"type":"function","function":{{"name":"shell"}}}}],"model":"gpt-5","max_completion_tokens":64}}"#
    );
    assert!(body.len() > 10 << 20);
    let r = parse_request(
        Operation::Chat,
        "/v1/chat/completions",
        body.as_bytes(),
        None,
    )
    .expect("request");
    assert_eq!(r.messages, 1 + 250_000 + 1_000_000);
    assert_eq!(r.system_chars, 8);
    assert_eq!(r.tools_offered, ["shell"]);
    assert_eq!(
        (r.model.as_deref(), r.max_tokens),
        (Some("gpt-5"), Some(64))
    );
    let max = 16 << 10;
    let captured = parse_request(
        Operation::Chat,
        "/v1/chat/completions",
        body.as_bytes(),
        Some(max),
    )
    .expect("request");
    crate::dialects::tests::assert_capped(&r, &captured, max);
}
