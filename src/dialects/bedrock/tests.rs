use base64::Engine as _;
use serde_json::json;

use super::*;
use crate::dialects::{RequestFacts, post, settle};

fn feed(parser: &mut dyn StreamParser, name: &str, data: &str) -> Progress {
    let event = sse::Event {
        name: name.as_bytes(),
        data: data.as_bytes(),
    };
    parser.on_event(&event).expect("valid event")
}

/// An `InvokeModelWithResponseStream` chunk payload wrapping `inner`.
fn chunk(inner: &serde_json::Value) -> String {
    let bytes = base64::engine::general_purpose::STANDARD.encode(inner.to_string());
    json!({"bytes": bytes, "p": "abcdefgh"}).to_string()
}

#[test]
fn paths_name_the_operation_and_the_percent_decoded_model() {
    let host = "bedrock-runtime.us-east-1.amazonaws.com";
    let table = crate::providers::Providers::builtin();
    let route = |path: &str| table.route(&post(host, path)).map(|r| r.dialect.name);
    let model = "anthropic.claude-sonnet-4-5-20250929-v1:0";
    for (operation, dialect) in [
        ("converse", "bedrock_converse"),
        ("converse-stream", "bedrock_converse"),
        ("invoke", "bedrock_invoke"),
        ("invoke-with-response-stream", "bedrock_invoke"),
    ] {
        let path = format!("/model/{model}/{operation}");
        assert_eq!(route(&path), Some(dialect), "{path}");
    }
    for other in [
        "/model//converse",
        "/model/x/count-tokens",
        "/model/a/b/converse",
        "/models/x/converse",
        "/guardrail/x/version/1/apply",
    ] {
        assert_eq!(route(other), None, "{other}");
    }
    let arn = "/model/arn%3Aaws%3Abedrock%3Aus-east-1%3A123456789012%3Ainference-profile%2Fglobal.anthropic.claude-opus-4-1-20250805-v1%3A0/converse";
    assert_eq!(
        model_from_path(arn).as_deref(),
        Some(
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/global.anthropic.claude-opus-4-1-20250805-v1:0"
        )
    );
    assert_eq!(model_from_path("/model/bad%2/converse"), None);
    assert!(
        streamed("/model/x/converse-stream") && streamed("/model/x/invoke-with-response-stream")
    );
    assert!(!streamed("/model/x/converse") && !streamed("/model/x/invoke"));
}

#[test]
fn exceptions_carry_the_status_the_api_reference_gives_them() {
    for (kind, status) in [
        ("throttlingException", 429),
        ("modelStreamErrorException", 424),
        ("validationException", 400),
        ("internalServerException", 500),
        ("serviceUnavailableException", 503),
        ("modelTimeoutException", 408),
        ("ThrottlingException", 429),
    ] {
        let mut p = stream_parser(Operation::Chat, None);
        feed(
            p.as_mut(),
            &format!("exception:{kind}"),
            r#"{"message":"m"}"#,
        );
        let facts = p.facts();
        // One spelling for one error: the shape name, as `x-amzn-ErrorType` gives it.
        let shape = kind[..1].to_ascii_uppercase() + &kind[1..];
        assert_eq!(facts.error_type.as_deref(), Some(shape.as_str()));
        assert_eq!(facts.error_status, Some(status), "{kind}");
        assert!(p.terminal() && !facts.complete);
    }
    let mut p = invoke::stream_parser(Operation::Chat, None);
    feed(p.as_mut(), "error:InternalFailure", "");
    assert_eq!(p.facts().error_type.as_deref(), Some("InternalFailure"));
    assert_eq!(p.facts().error_status, None);
}

#[test]
fn error_bodies_name_their_type_from_the_body_else_the_status() {
    let parse = |status, body: &str| {
        parse_response(Operation::Chat, status, body.as_bytes(), false)
            .expect("error body")
            .error_type
    };
    let plain = r#"{"message":"Too many requests, please wait before trying again."}"#;
    assert_eq!(parse(400, plain).as_deref(), Some("ValidationException"));
    assert_eq!(
        parse(503, plain).as_deref(),
        Some("ServiceUnavailableException")
    );
    assert_eq!(parse(429, plain), None, "two errors share 429");
    let typed =
        r#"{"__type":"com.amazon.bedrock#ThrottlingException:http://internal/","message":"m"}"#;
    assert_eq!(parse(429, typed).as_deref(), Some("ThrottlingException"));
    assert_eq!(
        parse(400, r#"{"code":"ModelNotReadyException"}"#).as_deref(),
        Some("ModelNotReadyException")
    );
    assert_eq!(parse(502, "<html>bad gateway</html>"), None);
}

#[test]
fn converse_stream_usage_adds_cache_to_input_and_waits_for_metadata() {
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        "messageStart",
        r#"{"p":"ab","role":"assistant"}"#,
    );
    let delta = feed(
        p.as_mut(),
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"a"}"#,
    );
    assert!(delta.delta);
    let signature = feed(
        p.as_mut(),
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"signature":"c2ln"}}}"#,
    );
    assert!(!signature.delta, "a signature is no generated text");
    feed(p.as_mut(), "messageStop", r#"{"stopReason":"end_turn"}"#);
    assert!(
        p.facts().complete && !p.terminal(),
        "metadata still to come"
    );
    feed(
        p.as_mut(),
        "metadata",
        r#"{"usage":{"inputTokens":5,"outputTokens":7,"totalTokens":1112,"cacheReadInputTokens":1000,"cacheWriteInputTokens":100,"cacheDetails":[{"ttl":"1h","inputTokens":60}]},"metrics":{"latencyMs":3}}"#,
    );
    assert!(p.terminal());
    let mut facts = p.facts();
    assert_eq!(
        facts.usage,
        Usage {
            input: Some(1105),
            output: Some(7),
            cache_read: Some(1000),
            cache_write_5m: Some(40),
            cache_write_1h: Some(60),
            reasoning: None,
        }
    );
    // The 40 the details did not split follow the request's last cachePoint.
    let request = RequestFacts {
        cache_ttl: Some("1h".into()),
        ..RequestFacts::default()
    };
    settle(Some(&request), &mut facts);
    assert_eq!(
        (facts.usage.cache_write_5m, facts.usage.cache_write_1h),
        (Some(0), Some(100))
    );
}

#[test]
fn converse_stream_capture_rebuilds_text_reasoning_and_tool_calls() {
    let mut p = stream_parser(Operation::Chat, Some(1 << 10));
    for (name, data) in [
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":0,"delta":{"reasoningContent":{"text":"think"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"text":"Hel"}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":1,"delta":{"text":"lo"}}"#,
        ),
        (
            "contentBlockStart",
            r#"{"contentBlockIndex":2,"start":{"toolUse":{"toolUseId":"tooluse_1","name":"get_time"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"{\"tz\":"}}}"#,
        ),
        (
            "contentBlockDelta",
            r#"{"contentBlockIndex":2,"delta":{"toolUse":{"input":"\"UTC\"}"}}}"#,
        ),
        ("messageStop", r#"{"stopReason":"tool_use"}"#),
    ] {
        feed(p.as_mut(), name, data);
    }
    let facts = p.facts();
    assert_eq!(facts.tools_called, ["get_time"]);
    assert_eq!(
        facts.output,
        Some(vec![json!({
            "role": "assistant",
            "finish_reason": "tool_use",
            "parts": [
                {"type": "reasoning", "content": "think"},
                {"type": "text", "content": "Hello"},
                {"type": "tool_call", "id": "tooluse_1", "name": "get_time", "arguments": {"tz": "UTC"}},
            ],
        })])
    );
}

#[test]
fn converse_requests_give_their_facts_and_capped_content() {
    let body = json!({
        "system": [{"text": "Be brief."}, {"cachePoint": {"type": "default"}}],
        "messages": [
            {"role": "user", "content": [{"text": "Hi"}, {"image": {"format": "png", "source": {"bytes": "iVBORw0KGgo="}}}]},
            {"role": "assistant", "content": [{"toolUse": {"toolUseId": "t1", "name": "ls", "input": {}}}]},
            {"role": "user", "content": [{"toolResult": {"toolUseId": "t1", "content": [{"text": "a.txt"}]}}, {"cachePoint": {"type": "default", "ttl": "1h"}}]},
        ],
        "inferenceConfig": {"maxTokens": 512, "temperature": 0.7, "topP": 0.9, "stopSequences": ["END"]},
        "toolConfig": {"tools": [
            {"toolSpec": {"name": "ls", "description": "List files.", "inputSchema": {"json": {"type": "object"}}}},
            {"systemTool": {"name": "nova_grounding"}},
            {"cachePoint": {"type": "default"}},
        ]},
    })
    .to_string();
    let path = "/model/us.amazon.nova-pro-v1:0/converse-stream";
    let r = request::parse_converse(Operation::Chat, path, body.as_bytes(), None).expect("request");
    assert_eq!(r.model.as_deref(), Some("us.amazon.nova-pro-v1:0"));
    assert!(r.stream);
    assert_eq!((r.max_tokens, r.temperature), (Some(512), Some(0.7)));
    assert_eq!(r.tools_offered, ["ls", "nova_grounding"]);
    assert_eq!((r.system_chars, r.messages), (9, 3));
    assert_eq!(r.cache_ttl.as_deref(), Some("1h"));
    let captured = request::parse_converse(Operation::Chat, path, body.as_bytes(), Some(1 << 20))
        .expect("request");
    let content = captured.content.clone().expect("content");
    assert_eq!(
        content.system,
        [json!({"type": "text", "content": "Be brief."})]
    );
    assert_eq!(
        content.input[0]["parts"],
        json!([{"type": "text", "content": "Hi"}, {"type": "image"}])
    );
    assert_eq!(
        content.input[2]["parts"],
        json!([{"type": "tool_call_response", "id": "t1", "response": [{"text": "a.txt"}]}])
    );
    assert_eq!(content.tools[0]["parameters"], json!({"type": "object"}));
    assert_eq!(content.tools[1]["name"], "nova_grounding");
    assert_eq!(content.tools.len(), 2, "a cachePoint is no tool");
    crate::dialects::tests::assert_capped(&r, &captured, 1 << 20);
}

#[test]
fn invoke_streams_keep_cache_tokens_the_anthropic_events_leave_out() {
    let mut p = invoke::stream_parser(Operation::Chat, None);
    let start = json!({"type": "message_start", "message": {"id": "msg_1", "model": "claude-x", "usage": {"input_tokens": 4, "output_tokens": 1}}});
    feed(p.as_mut(), "chunk", &chunk(&start));
    let delta = json!({"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hi"}});
    assert!(feed(p.as_mut(), "chunk", &chunk(&delta)).delta);
    let usage = json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 9}});
    feed(p.as_mut(), "chunk", &chunk(&usage));
    assert!(!p.terminal());
    let stop = json!({"type": "message_stop", "amazon-bedrock-invocationMetrics": {
        "inputTokenCount": 4, "outputTokenCount": 9, "invocationLatency": 10, "firstByteLatency": 5,
        "cacheReadInputTokenCount": 300, "cacheWriteInputTokenCount": 20}});
    feed(p.as_mut(), "chunk", &chunk(&stop));
    assert!(p.terminal());
    let facts = p.facts();
    assert_eq!((facts.id.as_deref(), facts.complete), (Some("msg_1"), true));
    assert_eq!(
        facts.usage,
        Usage {
            input: Some(324),
            output: Some(9),
            cache_read: Some(300),
            cache_write_5m: Some(20),
            cache_write_1h: Some(0),
            reasoning: None,
        }
    );
    assert_eq!(facts.cache_write_unsplit, 20);

    // Events that carry their own cache counts keep them; the metrics do not add twice.
    let mut p = invoke::stream_parser(Operation::Chat, None);
    let start = json!({"type": "message_start", "message": {"usage": {"input_tokens": 4, "cache_read_input_tokens": 300, "cache_creation_input_tokens": 20, "output_tokens": 1}}});
    feed(p.as_mut(), "chunk", &chunk(&start));
    feed(p.as_mut(), "chunk", &chunk(&stop));
    let usage = p.facts().usage;
    assert_eq!(
        (usage.input, usage.cache_read, usage.cache_write_5m),
        (Some(324), Some(300), Some(20))
    );
    assert_eq!(usage.output, Some(1), "the events' output wins");
}

#[test]
fn invoke_streams_of_other_models_read_the_invocation_metrics() {
    let mut p = invoke::stream_parser(Operation::Chat, None);
    let first = json!({"outputs": [{"text": "Paris", "stop_reason": null}]});
    assert!(feed(p.as_mut(), "chunk", &chunk(&first)).delta);
    let last = json!({"outputs": [{"text": "", "stop_reason": "stop"}], "amazon-bedrock-invocationMetrics": {"inputTokenCount": 12, "outputTokenCount": 3}});
    feed(p.as_mut(), "chunk", &chunk(&last));
    assert!(p.terminal());
    let facts = p.facts();
    assert_eq!(facts.finish_reasons, ["stop"]);
    assert_eq!((facts.usage.input, facts.usage.output), (Some(12), Some(3)));
    assert_eq!(facts.usage.cache_read, None, "unknown, not zero");
    let bad = sse::Event {
        name: b"chunk",
        data: br#"{"bytes":"not base64!"}"#,
    };
    assert_eq!(p.on_event(&bad), Err(ParseError::InvalidJson));
}

#[test]
fn invoke_bodies_of_llama_and_errors() {
    let body = br#"{"generation":"Paris.","prompt_token_count":18,"generation_token_count":3,"stop_reason":"stop"}"#;
    let facts = invoke::parse_response(Operation::Chat, 200, body, false).expect("body");
    assert_eq!((facts.usage.input, facts.usage.output), (Some(18), Some(3)));
    assert_eq!(
        (facts.finish_reasons.as_slice(), facts.complete),
        (&["stop".to_owned()][..], true)
    );
    let error = invoke::parse_response(
        Operation::Chat,
        424,
        br#"{"message":"m","originalStatusCode":500}"#,
        false,
    )
    .expect("error");
    assert_eq!(error.error_type.as_deref(), Some("ModelErrorException"));
}
