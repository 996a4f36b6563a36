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

/// Azure OpenAI's extra chunks: a first one with `"choices": []`, `prompt_filter_results`
/// and `"model": ""`, and `content_filter_results` in each choice (Azure OpenAI reference,
/// "Content filtering", streaming). They must not replace the model or disturb the usage.
#[test]
fn azure_filter_chunks_do_not_disturb_the_record() {
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"choices":[],"created":0,"id":"","model":"","object":"","prompt_filter_results":[{"prompt_index":0,"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}}}]}"#,
    );
    feed(
        p.as_mut(),
        r#"{"choices":[{"content_filter_results":{},"delta":{"content":"Hi","role":"assistant"},"finish_reason":null,"index":0}],"created":1764079392,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","system_fingerprint":"fp_1"}"#,
    );
    feed(
        p.as_mut(),
        r#"{"choices":[{"content_filter_results":{"hate":{"filtered":false,"severity":"safe"}},"delta":{},"finish_reason":"stop","index":0}],"created":1764079392,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","usage":null}"#,
    );
    feed(
        p.as_mut(),
        r#"{"choices":[],"created":1764079392,"id":"chatcmpl-AZ1","model":"gpt-4o-2024-11-20","object":"chat.completion.chunk","usage":{"completion_tokens":2,"prompt_tokens":12,"total_tokens":14,"prompt_tokens_details":{"cached_tokens":0}}}"#,
    );
    feed(p.as_mut(), "[DONE]");
    let f = p.facts();
    assert_eq!(f.model.as_deref(), Some("gpt-4o-2024-11-20"));
    assert_eq!(f.id.as_deref(), Some("chatcmpl-AZ1"));
    assert_eq!(f.finish_reasons, ["stop"]);
    assert_eq!((f.usage.input, f.usage.output), (Some(12), Some(2)));
    assert!(f.complete);
}

/// The compatible providers' usage extensions, each read where the provider puts it.
#[test]
fn compatible_providers_usage_extensions_are_read() {
    // DeepSeek: cache hits and misses, prompt_tokens = hit + miss.
    let f = parse_response(
        Operation::Chat,
        200,
        br#"{"id":"d1","model":"deepseek-chat","choices":[{"index":0,"message":{"role":"assistant","content":"ok"},"finish_reason":"stop"}],"usage":{"prompt_tokens":1000,"completion_tokens":10,"total_tokens":1010,"prompt_cache_hit_tokens":768,"prompt_cache_miss_tokens":232}}"#,
        false,
    )
    .expect("body");
    assert_eq!(
        (f.usage.input, f.usage.cache_read, f.usage.output),
        (Some(1000), Some(768), Some(10))
    );
    // Hit and miss alone still give the whole prompt.
    let f = parse_response(
        Operation::Chat,
        200,
        br#"{"choices":[],"usage":{"completion_tokens":1,"prompt_cache_hit_tokens":5,"prompt_cache_miss_tokens":7}}"#,
        false,
    )
    .expect("body");
    assert_eq!((f.usage.input, f.usage.cache_read), (Some(12), Some(5)));

    // Groq: the stream's usage in the last chunk's x_groq.usage.
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"id":"g1","model":"llama-3.3-70b-versatile","choices":[{"index":0,"delta":{"content":"x"},"finish_reason":null}],"x_groq":{"id":"req_01"}}"#,
    );
    feed(
        p.as_mut(),
        r#"{"id":"g1","model":"llama-3.3-70b-versatile","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"x_groq":{"id":"req_01","usage":{"queue_time":0.01,"prompt_tokens":40,"prompt_time":0.002,"completion_tokens":3,"completion_time":0.01,"total_tokens":43,"total_time":0.012}}}"#,
    );
    feed(p.as_mut(), "[DONE]");
    let f = p.facts();
    assert_eq!((f.usage.input, f.usage.output), (Some(40), Some(3)));

    // Moonshot: usage inside the last chunk's choice.
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"id":"m1","model":"kimi-k2-0905-preview","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
    );
    feed(
        p.as_mut(),
        r#"{"id":"m1","model":"kimi-k2-0905-preview","choices":[{"index":0,"delta":{},"finish_reason":"stop","usage":{"prompt_tokens":19,"completion_tokens":13,"total_tokens":32,"cached_tokens":8}}]}"#,
    );
    feed(p.as_mut(), "[DONE]");
    let f = p.facts();
    assert_eq!(
        (f.usage.input, f.usage.output, f.usage.cache_read),
        (Some(19), Some(13), Some(8))
    );

    // OpenRouter: the billed cost, and cached and reasoning details.
    let mut p = stream_parser(Operation::Chat, None);
    feed(
        p.as_mut(),
        r#"{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","choices":[{"index":0,"delta":{"content":"x"}}]}"#,
    );
    feed(
        p.as_mut(),
        r#"{"id":"gen-1","provider":"Anthropic","model":"anthropic/claude-sonnet-4.5","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"usage":{"prompt_tokens":2000,"completion_tokens":50,"total_tokens":2050,"cost":0.00231,"is_byok":false,"prompt_tokens_details":{"cached_tokens":1500},"completion_tokens_details":{"reasoning_tokens":0}}}"#,
    );
    let f = p.facts();
    assert_eq!(f.billed_usd, Some(0.00231));
    assert_eq!(f.usage.cache_read, Some(1500));
    // A cost that is negative or implausibly large is no cost.
    for cost in ["-3", "1e300", "\"0.5\""] {
        let body = format!(
            r#"{{"choices":[],"usage":{{"prompt_tokens":1,"completion_tokens":1,"cost":{cost}}}}}"#
        );
        let f = parse_response(Operation::Chat, 200, body.as_bytes(), false).expect("body");
        assert_eq!(f.billed_usd, None, "{cost}");
    }
    // BYOK: OpenRouter's fee plus the provider's own charge.
    let f = parse_response(
        Operation::Chat,
        200,
        br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":1,"cost":0.0001,"is_byok":true,"cost_details":{"upstream_inference_cost":0.0019}}}"#,
        false,
    )
    .expect("body");
    assert!((f.billed_usd.expect("billed") - 0.002).abs() < 1e-12);
}

/// xAI's Grok reports reasoning apart from `completion_tokens` (total = prompt + completion +
/// reasoning); OpenAI counts it inside (total = prompt + completion). Output includes
/// reasoning either way, decided by the response's own total.
#[test]
fn reasoning_outside_the_completion_count_is_added_to_output() {
    let body = |total: u64| {
        format!(
            r#"{{"model":"grok-4","choices":[],"usage":{{"prompt_tokens":100,"completion_tokens":20,"total_tokens":{total},"completion_tokens_details":{{"reasoning_tokens":300}}}}}}"#
        )
    };
    let grok = parse_response(Operation::Chat, 200, body(420).as_bytes(), false).expect("body");
    assert_eq!(
        (grok.usage.output, grok.usage.reasoning),
        (Some(320), Some(300))
    );
    // OpenAI's arithmetic (reasoning inside completion): unchanged. Here 300 > 20 cannot be
    // inside it, but the total says the API counted it so, and llmtap does not second-guess.
    let openai = parse_response(Operation::Chat, 200, body(120).as_bytes(), false).expect("body");
    assert_eq!(openai.usage.output, Some(20));
    // No total: as sent.
    let none = parse_response(
        Operation::Chat,
        200,
        br#"{"choices":[],"usage":{"prompt_tokens":1,"completion_tokens":2,"completion_tokens_details":{"reasoning_tokens":1}}}"#,
        false,
    )
    .expect("body");
    assert_eq!(none.usage.output, Some(2));
}
