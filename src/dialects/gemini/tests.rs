use super::{request::parse_request, *};

#[test]
fn paths_name_the_model_and_the_framing() {
    assert_eq!(
        model_from_path("/models/gemini-2.5-flash:streamGenerateContent"),
        Some("gemini-2.5-flash")
    );
    assert_eq!(
        model_from_path("/models/gemini-2.5-pro:generateContent"),
        Some("gemini-2.5-pro")
    );
    assert_eq!(model_from_path("/v1internal:generateContent"), None);
    assert_eq!(model_from_path("/upload/v1beta/files"), None);
    assert_eq!(model_from_path("/models/a/b:generateContent"), None);
    assert_eq!(
        framing("streamGenerateContent", Some("key=x&alt=sse")).map(|f| f.1),
        Some(Framing::Json)
    );
    assert_eq!(
        framing("streamGenerateContent", Some("key=x")).map(|f| f.1),
        Some(Framing::JsonArray)
    );
    assert_eq!(framing("countTokens", None), None);
}

#[test]
fn usage_adds_tool_prompt_and_thoughts() {
    let u = json::from_value::<UsageMetadata>(&serde_json::json!({
        "promptTokenCount": 100, "cachedContentTokenCount": 60, "candidatesTokenCount": 20,
        "thoughtsTokenCount": 30, "toolUsePromptTokenCount": 5, "totalTokenCount": 155
    }))
    .usage();
    assert_eq!(
        (u.input, u.cache_read, u.output, u.reasoning),
        (Some(105), Some(60), Some(50), Some(30))
    );
}

#[test]
fn code_assist_chunks_are_unwrapped() {
    let mut p = stream_parser(Operation::GenerateContent, None);
    let chunk = r#"{"response":{"candidates":[{"content":{"role":"model","parts":[{"functionCall":{"name":"run_shell_command","args":{"command":"ls"}}}]},"finishReason":"STOP"}],"usageMetadata":{"promptTokenCount":10,"candidatesTokenCount":3},"modelVersion":"gemini-2.5-pro"}}"#;
    let progress = p
        .on_event(&sse::Event {
            name: b"",
            data: chunk.as_bytes(),
        })
        .expect("chunk");
    assert!(progress.delta && p.terminal());
    let f = p.facts();
    assert_eq!(f.tools_called, ["run_shell_command"]);
    assert_eq!(f.model.as_deref(), Some("gemini-2.5-pro"));
    assert_eq!(f.finish_reasons, ["STOP"]);
    let body = br#"{"model":"gemini-2.5-pro","project":"p","request":{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"systemInstruction":{"parts":[{"text":"abc"}]}}}"#;
    let r = parse_request(
        Operation::GenerateContent,
        "/v1internal:streamGenerateContent",
        body,
        None,
    )
    .expect("request");
    assert!(r.stream);
    assert_eq!(
        (r.model.as_deref(), r.messages, r.system_chars),
        (Some("gemini-2.5-pro"), 1, 3)
    );
}

#[test]
fn a_10_mb_body_of_small_values_gives_its_facts_and_capped_content() {
    let zeros = ["0"].repeat(1_000_000).join(",");
    let contents = [r#"{"role":"user","parts":[{"text":"a"}]}"#]
        .repeat(200_000)
        .join(",");
    let body = format!(
        r#"{{"model":"gemini-2.5-pro","request":{{"contents":[{contents}],"tools":[{zeros},{{"functionDeclarations":[{zeros},{{"name":"run_shell_command"}}]}}],"systemInstruction":{{"parts":[{zeros},{{"text":"abc"}}]}}}}}}"#
    );
    assert!(body.len() > 10 << 20);
    let r = parse_request(
        Operation::GenerateContent,
        "/v1internal:streamGenerateContent",
        body.as_bytes(),
        None,
    )
    .expect("request");
    assert_eq!((r.messages, r.system_chars), (200_000, 3));
    assert_eq!(r.tools_offered, ["run_shell_command"]);
    assert_eq!(r.model.as_deref(), Some("gemini-2.5-pro"));
    let max = 16 << 10;
    let captured = parse_request(
        Operation::GenerateContent,
        "/v1internal:streamGenerateContent",
        body.as_bytes(),
        Some(max),
    )
    .expect("request");
    crate::dialects::tests::assert_capped(&r, &captured, max);
}

fn text_chunk(text: &str) -> String {
    format!(
        r#"{{"candidates":[{{"content":{{"role":"model","parts":[{{"text":"{text}"}}]}},"index":0}}]}}"#
    )
}

/// Regression: past the capture cap every later chunk added a `{"type":"truncated"}` part, so
/// the captured output of a long stream grew with the stream instead of staying about the cap.
#[test]
fn a_long_gemini_stream_past_the_capture_cap_keeps_no_more_parts() {
    let max = 200;
    let mut p = stream_parser(Operation::GenerateContent, Some(max));
    let chunk = text_chunk("0123456789");
    for _ in 0..10_000 {
        p.on_event(&sse::Event {
            name: b"",
            data: chunk.as_bytes(),
        })
        .expect("chunk");
    }
    let output = p.facts().output.expect("captured");
    let json = Value::Array(output.clone()).to_string();
    assert!(json.len() < 2 * max, "{} bytes: {json}", json.len());
    assert!(!json.contains("truncated"), "{json}");
    assert!(
        crate::telemetry::spans::fit(&output, max).1,
        "exported as cut"
    );
}

/// Regression: a part over what was left of the cap was replaced by `{"type":"truncated"}`,
/// which could leave the output under the cap, so the span did not say that content was cut.
#[test]
fn a_gemini_part_cut_by_the_capture_cap_marks_the_export_truncated() {
    let max = 200;
    let mut p = stream_parser(Operation::GenerateContent, Some(max));
    for text in ["a".repeat(72), "b".repeat(92)] {
        let chunk = text_chunk(&text);
        p.on_event(&sse::Event {
            name: b"",
            data: chunk.as_bytes(),
        })
        .expect("chunk");
    }
    let output = p.facts().output.expect("captured");
    let (json, cut) = crate::telemetry::spans::fit(&output, max);
    assert!(cut, "{json}");
}
