//! What the agent loop costs the telemetry thread per call: the dialect's request read (as
//! before issue 15) and the loop's second read of the same body (`dialects::agent`), on
//! Claude Code-shaped conversations from 10 turns to 1,000 (tool calls and results, long tool
//! outputs). Off the data path: this is CPU on the telemetry thread, not added latency.
//!
//! `cargo bench --bench agentloop` prints a table; BENCHMARKS.md records the numbers with the
//! machine. Not a test: nothing here asserts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::time::{Duration, Instant};

use llmtap::dialects::{self, Operation};
use serde_json::json;

/// A Messages request of `turns` tool round trips, each result `output` bytes long.
fn conversation(turns: usize, output: usize) -> Vec<u8> {
    let mut messages = vec![json!({"role": "user", "content": [
        {"type": "text", "text": "<system-reminder>today is 2026-12-01</system-reminder>"},
        {"type": "text", "text": "Fix the failing test in src/lib.rs."}]})];
    for i in 0..turns {
        messages.push(json!({"role": "assistant", "content": [
            {"type": "text", "text": "Let me run the tests."},
            {"type": "tool_use", "id": format!("toolu_{i:024}"), "name": "Bash",
             "input": {"command": "cargo test", "description": "Run the tests"}}]}));
        messages.push(json!({"role": "user", "content": [
            {"type": "tool_result", "tool_use_id": format!("toolu_{i:024}"), "is_error": false,
             "content": "x".repeat(output)}]}));
    }
    serde_json::to_vec(&json!({
        "model": "claude-sonnet-4-5-20250929", "max_tokens": 32000, "stream": true,
        "system": [{"type": "text", "text": "x-anthropic-billing-header: cch=00000;"},
                   {"type": "text", "text": "You are Claude Code. ".repeat(400)}],
        "tools": [{"name": "Bash", "description": "Run a command", "input_schema": {"type": "object"}}],
        "messages": messages,
    }))
    .unwrap()
}

fn time(n: usize, mut f: impl FnMut()) -> Duration {
    f();
    let t = Instant::now();
    for _ in 0..n {
        f();
    }
    t.elapsed() / n as u32
}

fn main() {
    let dialect = dialects::by_name("anthropic_messages").unwrap();
    println!(
        "{:<28} {:>10} {:>16} {:>16} {:>10}",
        "conversation", "bytes", "dialect read", "loop read", "loop MB/s"
    );
    for (turns, output) in [(10, 200), (100, 500), (300, 2000), (1000, 4000)] {
        let body = conversation(turns, output);
        let n = (50_000_000 / body.len()).clamp(3, 2000);
        let plain = time(n, || {
            (dialect.parse_request)(Operation::Chat, "/v1/messages", &body, None).unwrap();
        });
        let looped = time(n, || {
            let r = dialects::agent::read_request("/v1/messages", &body).unwrap();
            assert_eq!(
                r.tool_results.len(),
                turns.min(dialects::agent::MAX_TOOL_IDS)
            );
        });
        println!(
            "{:<28} {:>10} {:>13.0} µs {:>13.0} µs {:>10.0}",
            format!("{turns} turns × {output} B"),
            body.len(),
            plain.as_secs_f64() * 1e6,
            looped.as_secs_f64() * 1e6,
            body.len() as f64 / looped.as_secs_f64() / 1e6
        );
    }
}
