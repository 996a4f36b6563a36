//! Every dialect's parsers on arbitrary bytes: request, JSON response (any status), and the
//! same bytes as an SSE stream, as a streamed JSON array and as an AWS event stream. None may
//! panic.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmtap::dialects::{DIALECTS, Operation, eventstream::Decoder, json_array::Splitter, sse::{Event, Framer}};

fuzz_target!(|data: &[u8]| {
    let Some((&selector, body)) = data.split_first() else { return };
    let dialect = &DIALECTS[usize::from(selector) % DIALECTS.len()];
    let operation = [Operation::Chat, Operation::CountTokens, Operation::GenerateContent]
        [usize::from(selector >> 4) % 3];
    let capture = selector & 0x08 != 0;
    let _ = (dialect.parse_request)(operation, "/v1beta/models/m:streamGenerateContent", body, capture.then_some(256));
    for status in [200, 429, 500] {
        let _ = (dialect.parse_response)(operation, status, body, capture);
    }
    let mut parser = (dialect.stream_parser)(operation, capture.then_some(256));
    let _ = Framer::new(1 << 16).push(body, &mut |e| parser.on_event(&e).map(|_| ()));
    let _ = parser.facts();
    let mut parser = (dialect.stream_parser)(operation, capture.then_some(256));
    let _ = Splitter::new(1 << 16)
        .push(body, &mut |e| parser.on_event(&Event { name: b"", data: e }).map(|_| ()));
    let _ = (parser.facts(), parser.terminal());
    let mut parser = (dialect.stream_parser)(operation, capture.then_some(256));
    let _ = Decoder::new(1 << 16).push_events(body, &mut |e| parser.on_event(&e).map(|_| ()));
    let _ = (parser.facts(), parser.terminal());
});
