//! Golden fixtures: every case under `tests/fixtures/<dialect>/` parsed by its dialect gives
//! the facts in its `.expected.json`, and streamed cases (SSE, Gemini's streamed JSON
//! array, or Bedrock's AWS event stream) give the same facts however the stream is split: at
//! every byte offset, and byte by byte. Every `.eventstream` file is its readable source
//! (`.eventstream.jsonl`) as smithy-rs's encoder writes it, byte for byte. Read with `--capture-content`, a request gives the same facts, and its content
//! capped while read exports exactly what the whole content would, under any cap. Each case
//! is routed by llmtap's own detection from the host, method and path its folder's
//! `route.json` (or its own `path`) says it was sent to.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::path::PathBuf;

use crate::support::assert_subset;
use llmtap::{
    dialects::{
        self, RequestFacts, ResponseFacts, Target, eventstream, json_array::Splitter, sse::Framer,
    },
    providers::Route,
    telemetry::spans::fit,
};
use llmtap_fake_upstream::fixtures;
use serde_json::Value;

fn fixture_dir(dialect: &str) -> PathBuf {
    fixtures::dir().join(dialect)
}

/// Cases in a dialect folder: every `<case>.expected.json` that has a request.
fn cases(dialect: &str) -> Vec<String> {
    let mut cases: Vec<String> = std::fs::read_dir(fixture_dir(dialect))
        .expect("fixture dir")
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            name.strip_suffix(".expected.json").map(str::to_owned)
        })
        .filter(|case| {
            fixture_dir(dialect)
                .join(format!("{case}.request.json"))
                .exists()
        })
        .collect();
    cases.sort();
    cases
}

/// Parses a streamed body (`ext`: `sse`, `jsonarray` or `eventstream`) fed as the given pieces.
fn parse_stream(route: &Route, ext: &str, pieces: &[&[u8]]) -> ResponseFacts {
    let mut parser = (route.dialect.stream_parser)(route.operation, None);
    let mut framer = Framer::new(16 << 20);
    let mut splitter = Splitter::new(16 << 20);
    let mut decoder = eventstream::Decoder::new(16 << 20);
    for piece in pieces {
        let mut on_event = |event: dialects::sse::Event<'_>| parser.on_event(&event).map(|_| ());
        if ext == "eventstream" {
            decoder
                .push_events(piece, &mut on_event)
                .expect("fixture parses");
        } else if ext == "jsonarray" {
            splitter
                .push(piece, &mut |element| {
                    on_event(dialects::sse::Event {
                        name: b"",
                        data: element,
                    })
                })
                .expect("fixture parses");
        } else {
            framer.push(piece, &mut on_event).expect("fixture parses");
        }
    }
    parser.facts()
}

/// With capture the facts are those of `plain` (capture off), and each content list, capped
/// while read, exports what the whole list (read with no cap) would: under caps that keep
/// every item, some, or only a shortened last one, and at each edge where one more item fits.
fn check_capture(name: &str, route: &Route, path: &str, body: &[u8], plain: &RequestFacts) {
    let parse = |max| (route.dialect.parse_request)(route.operation, path, body, Some(max));
    let mut whole = parse(usize::MAX).expect(name);
    let all = whole.content.take().expect(name);
    assert_eq!(&whole, plain, "{name}: facts with capture");
    let mut caps = vec![0, 1, 2, 30, 200, 16 << 10];
    for list in [&all.system, &all.input, &all.tools] {
        for start in 0..list.len() {
            let len = Value::Array(list[start..].to_vec()).to_string().len();
            caps.extend([len - 1, len, len + 1]);
        }
    }
    for max in caps {
        let capped = parse(max).expect(name);
        let content = capped.content.expect(name);
        let lists = [
            (&content.system, &all.system),
            (&content.input, &all.input),
            (&content.tools, &all.tools),
        ];
        for (capped, all) in lists {
            assert_eq!(fit(capped, max), fit(all, max), "{name}: cap {max}");
        }
    }
}

/// The facts a case marks as not parsed yet: its `.expected.json`'s `pending.facts`, each a
/// dotted path (`response.usage.cache_read`), taken out of `expected`. The case states the
/// right value; the check below demands that the parser does *not* give it yet, so that the
/// marker is removed as soon as the parser learns the shape.
pub(crate) fn take_pending(name: &str, expected: &mut Value) -> Vec<(String, Value)> {
    let Some(pending) = expected.as_object_mut().and_then(|o| o.remove("pending")) else {
        return Vec::new();
    };
    assert!(pending["why"].is_string(), "{name}: pending.why");
    let facts = pending["facts"].as_array().expect("pending.facts");
    assert!(!facts.is_empty(), "{name}: pending without facts");
    facts
        .iter()
        .map(|fact| {
            let fact = fact.as_str().expect("pending fact is a dotted path");
            let (parent, key) = fact.rsplit_once('.').expect("pending fact has a parent");
            let pointer = format!("/{}", parent.replace('.', "/"));
            let want = expected
                .pointer_mut(&pointer)
                .and_then(Value::as_object_mut)
                .and_then(|o| o.remove(key))
                .unwrap_or_else(|| panic!("{name}: pending fact {fact} is not in the case"));
            (fact.to_owned(), want)
        })
        .collect()
}

/// A pending fact must still be wrong (see [`take_pending`]).
fn assert_still_pending(name: &str, part: &str, pending: &[(String, Value)], got: &Value) {
    for (fact, want) in pending {
        let Some(rest) = fact.strip_prefix(part).and_then(|r| r.strip_prefix('.')) else {
            continue;
        };
        let got = got.pointer(&format!("/{}", rest.replace('.', "/")));
        assert_ne!(
            got,
            Some(want),
            "{name}: {fact} is parsed now: remove it from the case's `pending`"
        );
    }
}

/// Checks every case of one dialect folder; returns how many were streamed.
fn check_dialect(dialect: &str) -> usize {
    let dir = fixture_dir(dialect);
    let cases = cases(dialect);
    assert!(
        cases.len() >= 4,
        "{dialect}: expected the fixture set, found {cases:?}"
    );
    let mut streamed = 0;
    for case in &cases {
        let name = format!("{dialect}/{case}");
        let read = |ext: &str| std::fs::read(dir.join(format!("{case}.{ext}"))).unwrap();
        let mut expected: Value = serde_json::from_slice(&read("expected.json")).unwrap();
        let pending = take_pending(&name, &mut expected);
        let target = fixtures::target(dialect, case);
        let path = target.path.as_str();
        let t = Target {
            host: &target.host,
            method: &target.method,
            path,
            query: target.query.as_deref(),
            websocket: false,
        };
        let route = llmtap::providers::Providers::builtin()
            .route(&t)
            .unwrap_or_else(|| panic!("{name}: no dialect for {path}"));
        let request = (route.dialect.parse_request)(
            route.operation,
            route.api_path(path),
            &read("request.json"),
            None,
        )
        .expect(&name);
        check_capture(
            &name,
            &route,
            route.api_path(path),
            &read("request.json"),
            &request,
        );
        let request_value = serde_json::to_value(&request).unwrap();
        assert_subset(&name, &expected["request"], &request_value);
        assert_still_pending(&name, "request", &pending, &request_value);

        let stream = ["sse", "jsonarray", "eventstream"]
            .into_iter()
            .find(|ext| dir.join(format!("{case}.{ext}")).exists());
        let mut facts = if let Some(ext) = stream {
            streamed += 1;
            let body = read(ext);
            let whole = parse_stream(&route, ext, &[&body]);
            for at in 0..=body.len() {
                let (a, b) = body.split_at(at);
                assert_eq!(
                    parse_stream(&route, ext, &[a, b]),
                    whole,
                    "{name} split at byte {at}"
                );
            }
            let bytes: Vec<&[u8]> = body.chunks(1).collect();
            assert_eq!(
                parse_stream(&route, ext, &bytes),
                whole,
                "{name} byte by byte"
            );
            whole
        } else {
            (route.dialect.parse_response)(
                route.operation,
                fixtures::status(case),
                &read("json"),
                false,
            )
            .expect(&name)
        };
        dialects::settle(Some(&request), &mut facts);
        // The loop's view: the calls the client runs, with their ids; the request readable by
        // the loop's reader too.
        // (Server tools, which the provider runs itself, are called but wait for no result.)
        let mut called: Vec<&str> = facts.tools_called.iter().map(String::as_str).collect();
        for call in &facts.tool_calls {
            let at = called.iter().position(|c| *c == call.name);
            let at = at.unwrap_or_else(|| panic!("{name}: {call:?} is among the calls made"));
            called.remove(at);
        }
        dialects::agent::read_request(route.api_path(path), &read("request.json")).expect(&name);
        if name == "anthropic/stream_tool_use" {
            assert_eq!(
                facts.tool_calls[0].id.as_deref(),
                Some("toolu_01A09q90qw90lq917835lq9k")
            );
        }
        let facts = serde_json::to_value(&facts).unwrap();
        assert_subset(&name, &expected["response"], &facts);
        assert_still_pending(&name, "response", &pending, &facts);
    }
    streamed
}

#[test]
fn anthropic_fixtures_give_their_expected_facts() {
    assert!(check_dialect("anthropic") >= 4);
}

#[test]
fn openai_chat_fixtures_give_their_expected_facts() {
    assert!(check_dialect("openai_chat") >= 3);
}

#[test]
fn openai_responses_fixtures_give_their_expected_facts() {
    assert!(check_dialect("openai_responses") >= 3);
}

#[test]
fn gemini_fixtures_give_their_expected_facts() {
    assert!(check_dialect("gemini") >= 3);
}

#[test]
fn bedrock_converse_fixtures_give_their_expected_facts() {
    assert!(check_dialect("bedrock_converse") >= 3);
}

#[test]
fn bedrock_invoke_fixtures_give_their_expected_facts() {
    assert!(check_dialect("bedrock_invoke") >= 2);
}

/// The folders the tests above name; any other folder with a `route.json` (a new dialect's)
/// is checked by the next test, with no code of its own.
const NAMED: [&str; 6] = [
    "anthropic",
    "openai_chat",
    "openai_responses",
    "gemini",
    "bedrock_converse",
    "bedrock_invoke",
];

#[test]
fn every_other_fixture_folder_gives_its_expected_facts() {
    let folders = fixtures::folders();
    for named in NAMED {
        assert!(folders.iter().any(|f| f == named), "{named}/route.json");
    }
    for folder in folders.iter().filter(|f| !NAMED.contains(&f.as_str())) {
        check_dialect(folder);
    }
}

/// One message of an event-stream fixture's readable source (see `scripts/eventstream.py`):
/// string headers in order, and the payload as JSON or as a chunk to wrap in base64.
fn encode_message(line: &Value) -> Vec<u8> {
    use aws_smithy_types::event_stream::{Header, HeaderValue, Message};
    use base64::Engine as _;
    // serde_json without `preserve_order` writes keys sorted, as the script does.
    let payload = match (line.get("chunk"), line.get("payload")) {
        (Some(chunk), _) => {
            let bytes = base64::engine::general_purpose::STANDARD.encode(chunk.to_string());
            serde_json::json!({"bytes": bytes, "p": line["p"]}).to_string()
        }
        (None, Some(payload)) => payload.to_string(),
        (None, None) => String::new(),
    };
    let headers = line["headers"].as_array().expect("headers");
    let message = headers
        .iter()
        .fold(Message::new(payload.into_bytes()), |m, h| {
            let name = h[0].as_str().expect("name").to_owned();
            let value = h[1].as_str().expect("value").to_owned();
            m.add_header(Header::new(name, HeaderValue::String(value.into())))
        });
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).expect("encodable");
    out
}

#[test]
fn eventstream_fixtures_are_their_readable_source_encoded() {
    let mut checked = 0;
    for folder in fixtures::folders() {
        for entry in std::fs::read_dir(fixture_dir(&folder)).unwrap() {
            let path = entry.unwrap().path();
            let Some(name) = path
                .to_str()
                .and_then(|p| p.strip_suffix(".eventstream.jsonl"))
            else {
                continue;
            };
            let source = std::fs::read_to_string(&path).unwrap();
            let encoded: Vec<u8> = source
                .lines()
                .flat_map(|line| encode_message(&serde_json::from_str(line).unwrap()))
                .collect();
            let wire = std::fs::read(format!("{name}.eventstream")).unwrap();
            assert!(
                encoded == wire,
                "{name}.eventstream is not its source encoded"
            );
            checked += 1;
        }
    }
    assert!(checked >= 5, "found {checked} event-stream fixtures");
}
