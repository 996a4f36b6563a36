use super::{request::parse_request, *};

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
    let r = parse_request(Operation::Chat, "/v1/responses", body, None).expect("request");
    assert_eq!(
        r.tools_offered,
        ["web_search", "exec", "update_plan", "now"]
    );
}

#[test]
fn codex_tools_come_from_additional_tools_items() {
    let body = br#"{"model":"gpt-6.1-sol","input":[{"type":"message","role":"developer","content":[{"type":"input_text","text":"be brief"}]},{"type":"additional_tools","tools":[{"type":"function","name":"shell"},{"type":"web_search"}]},{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],"stream":true}"#;
    let r = parse_request(Operation::Chat, "/v1/responses", body, None).expect("request");
    assert_eq!(r.tools_offered, ["shell", "web_search"]);
    assert_eq!((r.system_chars, r.messages), (8, 2));
}

#[test]
fn a_10_mb_body_of_small_values_gives_its_facts_and_capped_content() {
    let zeros = ["0"].repeat(1_000_000).join(",");
    let items = [r#"{"role":"user","content":"a"}"#]
        .repeat(250_000)
        .join(",");
    let body = format!(
        r#"{{"input":[{items},{{"type":"additional_tools","tools":[{zeros},{{"type":"function","name":"shell"}}]}}],"tools":[{zeros}],"instructions":"be brief","model":"gpt-6.1-sol","prompt_cache_key":"s-1"}}"#
    );
    assert!(body.len() > 10 << 20);
    let r =
        parse_request(Operation::Chat, "/v1/responses", body.as_bytes(), None).expect("request");
    assert_eq!((r.messages, r.system_chars), (250_000, 8));
    assert_eq!(r.tools_offered, ["shell"]);
    assert_eq!(r.model.as_deref(), Some("gpt-6.1-sol"));
    assert_eq!(r.conversation_id.as_deref(), Some("s-1"));
    let max = 16 << 10;
    let captured = parse_request(Operation::Chat, "/v1/responses", body.as_bytes(), Some(max))
        .expect("request");
    crate::dialects::tests::assert_capped(&r, &captured, max);
}

/// Regression: OpenAI's error envelope has `"code": null` for many errors (a 500's
/// `server_error`, most 400s). Responses read a present `code` of any type as the error's
/// type, so such an error had none (its outcome then named only the status), where Chat
/// Completions gives the `type` of the same body.
#[test]
fn an_error_body_with_a_null_code_gives_its_type() {
    let body = br#"{"error":{"message":"The server had an error while processing your request.","type":"server_error","param":null,"code":null}}"#;
    let facts = parse_response(Operation::Chat, 500, body, false).expect("error body");
    assert_eq!(facts.error_type.as_deref(), Some("server_error"));
    let chat = crate::dialects::openai_chat::CHAT_COMPLETIONS.parse_response;
    let chat = chat(Operation::Chat, 500, body, false).expect("error body");
    assert_eq!(
        chat.error_type, facts.error_type,
        "the same envelope, the same type"
    );
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"type":"response.failed","response":{"status":"failed","error":{"code":null,"type":"server_error"}}}"#,
    );
    assert_eq!(p.facts().error_type.as_deref(), Some("server_error"));
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"type":"error","code":null,"error":{"type":"server_error"}}"#,
    );
    assert_eq!(p.facts().error_type.as_deref(), Some("server_error"));
}

/// The Responses API on xAI: `output_tokens` without `reasoning_tokens`, the total says so.
#[test]
fn reasoning_outside_output_tokens_is_added_to_output() {
    let body = br#"{"id":"resp_x","object":"response","status":"completed","model":"grok-4","output":[],"usage":{"input_tokens":50,"output_tokens":10,"total_tokens":160,"output_tokens_details":{"reasoning_tokens":100}}}"#;
    let f = parse_response(Operation::Chat, 200, body, false).expect("body");
    assert_eq!((f.usage.output, f.usage.reasoning), (Some(110), Some(100)));
}
