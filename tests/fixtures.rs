//! Golden fixtures: every case under `tests/fixtures/<dialect>/` parsed by the dialect gives
//! the facts in its `.expected.json`, and SSE cases give the same facts however the stream
//! is split (at every byte offset, and byte by byte).
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::{Path, PathBuf};

use llmtap::dialects::{self, Operation, ResponseFacts, sse::Framer};
use serde_json::Value;

fn fixture_dir(dialect: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(dialect)
}

/// Cases in a dialect folder: every `<case>.expected.json`.
fn cases(dialect: &str) -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(fixture_dir(dialect))
        .expect("fixture dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".expected.json").map(str::to_owned)
        })
        .collect();
    cases.sort();
    cases
}

/// Error fixtures are named after their status (`error_429`); the rest are 200s.
fn status_of(case: &str) -> u16 {
    case.strip_prefix("error_")
        .and_then(|s| s.get(..3))
        .and_then(|s| s.parse().ok())
        .unwrap_or(200)
}

fn operation_of(case: &str) -> Operation {
    if case.contains("count_tokens") {
        Operation::CountTokens
    } else {
        Operation::Chat
    }
}

/// Parses an SSE body fed as the given pieces.
fn parse_stream(operation: Operation, pieces: &[&[u8]]) -> ResponseFacts {
    let route = dialects::detect("api.anthropic.com", "POST", "/v1/messages").expect("route");
    let mut parser = (route.dialect.stream_parser)(operation, None);
    let mut framer = Framer::new(1 << 20);
    for piece in pieces {
        framer
            .push(piece, &mut |event| parser.on_event(&event).map(|_| ()))
            .expect("fixture parses");
    }
    parser.facts()
}

/// Asserts every key of `expected` equals the same key of `got` (recursively for objects).
fn assert_subset(case: &str, expected: &Value, got: &Value) {
    match expected {
        Value::Object(fields) => {
            for (key, want) in fields {
                assert_subset(&format!("{case}.{key}"), want, &got[key]);
            }
        }
        _ => assert_eq!(got, expected, "{case}"),
    }
}

#[test]
fn anthropic_fixtures_give_their_expected_facts() {
    let dir = fixture_dir("anthropic");
    let cases = cases("anthropic");
    assert!(
        cases.len() >= 8,
        "expected the fixture set, found {cases:?}"
    );
    let route = dialects::detect("api.anthropic.com", "POST", "/v1/messages").expect("route");
    let mut streamed = 0;
    for case in &cases {
        let expected: Value = serde_json::from_slice(
            &std::fs::read(dir.join(format!("{case}.expected.json"))).unwrap(),
        )
        .unwrap();
        let operation = operation_of(case);
        let request = std::fs::read(dir.join(format!("{case}.request.json"))).unwrap();
        let request = (route.dialect.parse_request)(operation, &request, false).expect(case);
        assert_subset(
            case,
            &expected["request"],
            &serde_json::to_value(&request).unwrap(),
        );

        let sse = dir.join(format!("{case}.sse"));
        let facts = if sse.exists() {
            streamed += 1;
            let body = std::fs::read(&sse).unwrap();
            let whole = parse_stream(operation, &[&body]);
            for at in 0..=body.len() {
                let (a, b) = body.split_at(at);
                assert_eq!(
                    parse_stream(operation, &[a, b]),
                    whole,
                    "{case} split at byte {at}"
                );
            }
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(
                parse_stream(operation, &bytes),
                whole,
                "{case} byte by byte"
            );
            whole
        } else {
            let body = std::fs::read(dir.join(format!("{case}.json"))).unwrap();
            (route.dialect.parse_response)(operation, status_of(case), &body, false).expect(case)
        };
        assert_subset(
            case,
            &expected["response"],
            &serde_json::to_value(&facts).unwrap(),
        );
    }
    assert!(
        streamed >= 4,
        "expected streamed fixtures, found {streamed}"
    );
}
