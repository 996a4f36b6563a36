//! Criterion micro-benchmarks of the stream parsers on real fixtures: the SSE framer, the
//! JSON-array splitter, the AWS event-stream decoder, and each dialect's stream parser fed the
//! framed events of its fixture (capture off, as llmtap runs by default). Throughput in bytes
//! (criterion prints MB/s) and the time per event (the time per iteration over the events).
//!
//! `cargo bench --bench parsers`; BENCHMARKS.md records the numbers with the machine.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    missing_docs,
    reason = "criterion_group! generates an undocumented function"
)]

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use llmtap::dialects::{
    DIALECTS, Operation,
    eventstream::Decoder,
    json_array::Splitter,
    sse::{Event, Framer},
};

fn fixture(folder: &str, file: &str) -> Vec<u8> {
    std::fs::read(format!(
        "{}/tests/fixtures/{folder}/{file}",
        env!("CARGO_MANIFEST_DIR")
    ))
    .unwrap()
}

/// A long Messages stream: `fixtures/anthropic/stream_tool_use.sse` with its text deltas
/// repeated, ~2,000 events (what a long answer looks like on the wire).
fn long_anthropic_stream() -> Vec<u8> {
    let events = llmtap_fake_upstream::FakeUpstream::generated_sse(2000);
    events.concat()
}

fn dialect(name: &str) -> &'static llmtap::dialects::Dialect {
    DIALECTS.iter().find(|d| d.name == name).unwrap()
}

fn framers(c: &mut Criterion) {
    let sse = long_anthropic_stream();
    let events = count_events(&sse);
    let mut g = c.benchmark_group("framing");
    g.throughput(Throughput::Bytes(sse.len() as u64));
    g.bench_function(format!("sse_framer ({events} events)"), |b| {
        b.iter(|| {
            let mut n = 0u64;
            Framer::new(1 << 20)
                .push(&sse, &mut |_| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        });
    });
    let array = fixture("gemini", "stream_array.jsonarray");
    g.throughput(Throughput::Bytes(array.len() as u64));
    g.bench_function("json_array_splitter (gemini stream_array)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            Splitter::new(1 << 20)
                .push(&array, &mut |_| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        });
    });
    let es = fixture("bedrock_converse", "stream_text.eventstream");
    g.throughput(Throughput::Bytes(es.len() as u64));
    g.bench_function("eventstream_decoder (bedrock converse stream_text)", |b| {
        b.iter(|| {
            let mut n = 0u64;
            Decoder::new(1 << 20)
                .push_events(&es, &mut |_| {
                    n += 1;
                    Ok(())
                })
                .unwrap();
            n
        });
    });
    g.finish();
}

/// How many events the SSE framer finds in `sse`.
fn count_events(sse: &[u8]) -> u64 {
    let mut n = 0;
    Framer::new(1 << 20)
        .push(sse, &mut |_| {
            n += 1;
            Ok(())
        })
        .unwrap();
    n
}

/// A dialect's stream parser over a whole SSE fixture, framing included.
fn sse_dialect(c: &mut Criterion, name: &str, api: &str, operation: Operation, sse: &[u8]) {
    let events = count_events(sse);
    let mut g = c.benchmark_group("dialects");
    g.throughput(Throughput::Bytes(sse.len() as u64));
    let d = dialect(api);
    g.bench_function(format!("{name} ({events} events)"), |b| {
        b.iter(|| {
            let mut parser = (d.stream_parser)(operation, None);
            Framer::new(d.max_event)
                .push(sse, &mut |e| parser.on_event(&e).map(|_| ()))
                .unwrap();
            parser.facts()
        });
    });
    g.finish();
}

fn dialects(c: &mut Criterion) {
    sse_dialect(
        c,
        "anthropic_messages 2,000 deltas",
        "anthropic_messages",
        Operation::Chat,
        &long_anthropic_stream(),
    );
    sse_dialect(
        c,
        "anthropic_messages stream_tool_use",
        "anthropic_messages",
        Operation::Chat,
        &fixture("anthropic", "stream_tool_use.sse"),
    );
    sse_dialect(
        c,
        "openai_chat_completions stream_usage",
        "openai_chat_completions",
        Operation::Chat,
        &fixture("openai_chat", "stream_usage.sse"),
    );
    sse_dialect(
        c,
        "openai_responses stream_text",
        "openai_responses",
        Operation::Chat,
        &fixture("openai_responses", "stream_text.sse"),
    );
    sse_dialect(
        c,
        "gemini_generate_content stream_sse",
        "gemini_generate_content",
        Operation::GenerateContent,
        &fixture("gemini", "stream_sse.sse"),
    );
    let es = fixture("bedrock_converse", "stream_text.eventstream");
    let d = dialect("bedrock_converse");
    let mut g = c.benchmark_group("dialects");
    g.throughput(Throughput::Bytes(es.len() as u64));
    g.bench_function("bedrock_converse stream_text (event stream)", |b| {
        b.iter(|| {
            let mut parser = (d.stream_parser)(Operation::Chat, None);
            Decoder::new(d.max_event)
                .push_events(&es, &mut |e| parser.on_event(&e).map(|_| ()))
                .unwrap();
            parser.facts()
        });
    });
    let array = fixture("gemini", "stream_array.jsonarray");
    let d = dialect("gemini_generate_content");
    g.throughput(Throughput::Bytes(array.len() as u64));
    g.bench_function("gemini_generate_content stream_array (JSON array)", |b| {
        b.iter(|| {
            let mut parser = (d.stream_parser)(Operation::GenerateContent, None);
            Splitter::new(d.max_event)
                .push(&array, &mut |e| {
                    parser.on_event(&Event { name: b"", data: e }).map(|_| ())
                })
                .unwrap();
            parser.facts()
        });
    });
    g.finish();
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .sample_size(20)
        .measurement_time(std::time::Duration::from_secs(2))
        .warm_up_time(std::time::Duration::from_millis(500));
    targets = framers, dialects
}
criterion_main!(benches);
