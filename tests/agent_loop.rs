//! The agent loop seen from the wire (issue 15): one scripted Claude Code session through the
//! real binary over real TLS, answered by the fake upstream's scripted replies
//! ([`FakeUpstream::start_scripted`]), and what llmtap makes of it: agents and threads, tool
//! executions and their time, a cache break, a retry, a compaction, the context window and
//! the rate limits, in the call lines, the metrics, the exported spans and `llmtap report`.
//!
//! The session (all on one `x-claude-code-session-id`, Anthropic Messages, streamed):
//! 1. main: `Fix the bug.` → `Bash` (`toolu_bash1`), cache write 5000, rate-limit headers;
//! 2. 400 ms later, main with the `Bash` result → `Task` (`toolu_task1`, an `Explore`
//!    subagent), cache read 5000, write 200;
//! 3. the subagent's own thread (`Look for it`) → a text answer;
//! 4. main with the `Task` result → 529 `overloaded_error`; the same bytes again → `Read`
//!    (`toolu_read1`), cache read 5200;
//! 5. main with the `Read` result marked `is_error` → cache read 1000, write 4400: the cache
//!    broke by 4200 tokens;
//! 6. main again, same system and first turn, a short conversation: input under half of the
//!    previous call's, a compaction.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::time::Duration;

use llmtap_fake_upstream::{FakeUpstream, Reply};
use opentelemetry_proto::tonic::trace::v1::span::SpanKind;
use serde_json::{Value, json};

use crate::support::{
    client::{self, Collected, Conn},
    harness::{self, metric},
    otlp::Receiver,
    process::{Llmtap, command},
};

const HOST: &str = "api.anthropic.com";
const PATH: &str = "/v1/messages?beta=true";
const SESSION: &str = "7c1d4e2a-9b3f-4a6e-8d21-5f0c3b9a7e14";
const USER_AGENT: &str = "claude-cli/2.1.197 (external, cli)";
const MODEL: &str = "claude-sonnet-4-5-20250929";
const MAIN_SYSTEM: &str = "You are the main agent.";
const SUB_SYSTEM: &str = "You are a file search specialist.";
/// The rate-limit resets the first reply announces (unix seconds; the requests reset is the
/// same instant as RFC 3339).
const RESET_5H: u64 = 1_764_547_200;
const RESET_7D: u64 = 1_765_152_000;
const RESET_REQUESTS: &str = "2025-12-01T00:00:00Z";
/// How long the "Bash" tool runs: the pause between reply 1 and request 2.
const BASH_TIME: Duration = Duration::from_millis(400);
const TASK_INPUT: &str =
    r#"{"description":"Find the config","prompt":"Look for it","subagent_type":"Explore"}"#;

/// An Anthropic usage object: `input_tokens` (uncached), cache writes (all 5 m), cache reads,
/// output.
#[derive(Clone, Copy)]
struct Usage {
    input: u64,
    write: u64,
    read: u64,
    output: u64,
}

impl Usage {
    /// Every prompt token, as llmtap counts input (uncached + reads + writes).
    fn total_input(self) -> u64 {
        self.input + self.write + self.read
    }
}

/// One content block of a scripted answer.
enum Block {
    Text(&'static str),
    /// `tool_use`: id, name, the input JSON as streamed `input_json_delta` pieces.
    Tool(&'static str, &'static str, Vec<String>),
}

fn event(kind: &str, data: &Value) -> String {
    format!("event: {kind}\ndata: {data}\n\n")
}

/// A streamed Messages answer with the event shapes of `tests/fixtures/anthropic/*.sse`.
fn stream(id: &str, blocks: &[Block], stop_reason: &str, usage: Usage) -> Vec<u8> {
    let mut out = event(
        "message_start",
        &json!({"type": "message_start", "message": {
            "id": id, "type": "message", "role": "assistant", "model": MODEL, "content": [],
            "stop_reason": null, "stop_sequence": null,
            "usage": {
                "input_tokens": usage.input,
                "cache_creation_input_tokens": usage.write,
                "cache_read_input_tokens": usage.read,
                "cache_creation": {"ephemeral_5m_input_tokens": usage.write, "ephemeral_1h_input_tokens": 0},
                "output_tokens": 1,
                "service_tier": "standard",
            },
        }}),
    );
    for (index, block) in blocks.iter().enumerate() {
        let (start, deltas) = match block {
            Block::Text(text) => (
                json!({"type": "text", "text": ""}),
                vec![json!({"type": "text_delta", "text": text})],
            ),
            Block::Tool(id, name, pieces) => (
                json!({"type": "tool_use", "id": id, "name": name, "input": {}}),
                std::iter::once(String::new())
                    .chain(pieces.iter().cloned())
                    .map(|p| json!({"type": "input_json_delta", "partial_json": p}))
                    .collect(),
            ),
        };
        out += &event(
            "content_block_start",
            &json!({"type": "content_block_start", "index": index, "content_block": start}),
        );
        if index == 0 {
            out += "event: ping\ndata: {\"type\": \"ping\"}\n\n";
        }
        for delta in deltas {
            out += &event(
                "content_block_delta",
                &json!({"type": "content_block_delta", "index": index, "delta": delta}),
            );
        }
        out += &event(
            "content_block_stop",
            &json!({"type": "content_block_stop", "index": index}),
        );
    }
    out += &event(
        "message_delta",
        &json!({"type": "message_delta",
        "delta": {"stop_reason": stop_reason, "stop_sequence": null},
        "usage": {
            "input_tokens": usage.input,
            "cache_creation_input_tokens": usage.write,
            "cache_read_input_tokens": usage.read,
            "output_tokens": usage.output,
        }}),
    );
    out += &event("message_stop", &json!({"type": "message_stop"}));
    out.into_bytes()
}

/// `json` cut into pieces of at most `n` bytes (ASCII), as a model streams tool arguments.
fn pieces(json: &str, n: usize) -> Vec<String> {
    json.as_bytes()
        .chunks(n)
        .map(|c| String::from_utf8(c.to_vec()).unwrap())
        .collect()
}

fn text(t: &str) -> Value {
    json!([{"type": "text", "text": t}])
}

fn tool_use(id: &str, name: &str, input: &str) -> Value {
    json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": id, "name": name, "input": serde_json::from_str::<Value>(input).unwrap()},
    ]})
}

fn tool_result(id: &str, content: &str, is_error: bool) -> Value {
    let mut result = json!({"type": "tool_result", "tool_use_id": id, "content": content});
    if is_error {
        result["is_error"] = json!(true);
    }
    json!({"role": "user", "content": [result]})
}

/// A Claude Code request body: its system prompt, conversation and tools.
fn request(system: &str, messages: &[Value], tools: &[&str]) -> Vec<u8> {
    let tools: Vec<Value> = tools
        .iter()
        .map(|name| json!({"name": name, "description": format!("The {name} tool."), "input_schema": {"type": "object"}}))
        .collect();
    serde_json::to_vec(&json!({
        "model": MODEL,
        "max_tokens": 32000,
        "stream": true,
        "system": [{"type": "text", "text": system, "cache_control": {"type": "ephemeral"}}],
        "messages": messages,
        "tools": tools,
    }))
    .unwrap()
}

/// Sends one request as Claude Code does and reads the whole answer.
async fn send(conn: &mut Conn, body: &[u8]) -> Collected {
    let req = client::post(
        HOST,
        PATH,
        body,
        &[
            ("user-agent", USER_AGENT),
            ("anthropic-version", "2023-06-01"),
            (
                "anthropic-beta",
                "claude-code-20250219,interleaved-thinking-2025-05-14",
            ),
            ("authorization", "Bearer sk-ant-oat01-agent-loop-test-token"),
            ("x-app", "cli"),
            ("x-claude-code-session-id", SESSION),
        ],
    );
    let got = client::collect(conn.send(req).await.expect("response through llmtap")).await;
    assert!(got.end.is_ok(), "{:?}", got.end);
    got
}

/// Failed expectations, gathered so that one run lists every missing piece.
#[derive(Default)]
struct Checks(Vec<String>);

impl Checks {
    fn that(&mut self, ok: bool, what: impl FnOnce() -> String) {
        if !ok {
            self.0.push(what());
        }
    }

    fn eq<T: PartialEq + std::fmt::Debug>(&mut self, what: &str, got: T, want: T) {
        self.that(got == want, || {
            format!("{what}: got {got:?}, want {want:?}")
        });
    }

    fn finish(self) {
        assert!(
            self.0.is_empty(),
            "{} expectations failed:\n- {}",
            self.0.len(),
            self.0.join("\n- ")
        );
    }
}

/// Whether `text` says "`n` `word`" in one of the usual spellings (`1 subagent`,
/// `subagents 1`, `subagents: 1`, `subagents=1`).
fn mentions(text: &str, n: u64, word: &str) -> bool {
    [
        format!("{n} {word}"),
        format!("{word} {n}"),
        format!("{word}s {n}"),
        format!("{word}: {n}"),
        format!("{word}s: {n}"),
        format!("{word}={n}"),
        format!("{word}s={n}"),
    ]
    .iter()
    .any(|s| text.contains(s.as_str()))
}

/// The entry of `key` in a report: the first line that starts with it (after the indent), and
/// the more indented lines under it.
fn entry(report: &str, key: &str) -> Option<String> {
    let mut lines = report
        .lines()
        .skip_while(|l| !l.trim_start().starts_with(key));
    let first = lines.next()?;
    let indent = first.len() - first.trim_start().len();
    let mut out = first.to_owned();
    for line in
        lines.take_while(|l| l.len() - l.trim_start().len() > indent && !l.trim().is_empty())
    {
        out.push('\n');
        out.push_str(line);
    }
    Some(out)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_claude_code_session_shows_its_agents_tools_cache_breaks_retries_and_limits() {
    // The answers, in the order the session asks for them.
    let u1 = Usage {
        input: 10,
        write: 5000,
        read: 0,
        output: 20,
    };
    let u2 = Usage {
        input: 10,
        write: 200,
        read: 5000,
        output: 40,
    };
    let u_sub = Usage {
        input: 300,
        write: 0,
        read: 0,
        output: 30,
    };
    let u3 = Usage {
        input: 10,
        write: 0,
        read: 5200,
        output: 30,
    };
    let u4 = Usage {
        input: 10,
        write: 4400,
        read: 1000,
        output: 25,
    };
    let u5 = Usage {
        input: 2000,
        write: 0,
        read: 0,
        output: 15,
    };
    let r1 = stream(
        "msg_agentloop_main1",
        &[
            Block::Text("I'll run the tests first."),
            Block::Tool(
                "toolu_bash1",
                "Bash",
                pieces(
                    r#"{"command":"cargo test","description":"Run the tests"}"#,
                    16,
                ),
            ),
        ],
        "tool_use",
        u1,
    );
    let r2 = stream(
        "msg_agentloop_main2",
        &[Block::Tool("toolu_task1", "Task", pieces(TASK_INPUT, 17))],
        "tool_use",
        u2,
    );
    let r_sub = stream(
        "msg_agentloop_sub",
        &[Block::Text("The config is config/app.toml.")],
        "end_turn",
        u_sub,
    );
    let overloaded = br#"{"type":"error","error":{"type":"overloaded_error","message":"Overloaded"},"request_id":"req_011CVagentLoopOverloaded"}"#.to_vec();
    let r3 = stream(
        "msg_agentloop_main3",
        &[Block::Tool(
            "toolu_read1",
            "Read",
            pieces(r#"{"file_path":"/repo/config/app.toml"}"#, 12),
        )],
        "tool_use",
        u3,
    );
    let r4 = stream(
        "msg_agentloop_main4",
        &[Block::Text("The file is missing; the bug is the path.")],
        "end_turn",
        u4,
    );
    let r5 = stream(
        "msg_agentloop_main5",
        &[Block::Text("Continuing from the summary.")],
        "end_turn",
        u5,
    );
    let replies = vec![
        Reply::sse(r1.clone())
            .header("anthropic-ratelimit-unified-status", "allowed")
            .header("anthropic-ratelimit-unified-5h-utilization", "0.42")
            .header(
                "anthropic-ratelimit-unified-5h-reset",
                &RESET_5H.to_string(),
            )
            .header("anthropic-ratelimit-unified-7d-utilization", "0.85")
            .header(
                "anthropic-ratelimit-unified-7d-reset",
                &RESET_7D.to_string(),
            )
            .header("anthropic-ratelimit-requests-limit", "50")
            .header("anthropic-ratelimit-requests-remaining", "49")
            .header("anthropic-ratelimit-requests-reset", RESET_REQUESTS),
        Reply::sse(r2.clone()),
        Reply::sse(r_sub.clone()),
        Reply::json(529, overloaded.clone()).header("x-should-retry", "true"),
        Reply::sse(r3.clone()),
        Reply::sse(r4.clone()),
        Reply::sse(r5.clone()),
    ];
    let upstream = FakeUpstream::start_scripted(replies).await;

    let receiver = Receiver::grpc().await;
    let home = tempfile::tempdir().unwrap();
    let calls_file = home.path().join("calls.jsonl");
    let resolve = format!("{HOST}:443:{}", upstream.addr);
    let mut llmtap = Llmtap::spawn(
        home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--calls",
            "json",
            "--calls-file",
            calls_file.to_str().unwrap(),
            "--otel-exporter-otlp-protocol",
            "grpc",
            "--otel-exporter-otlp-endpoint",
            &receiver.endpoint(),
        ],
    );
    let ca = harness::get(llmtap.admin, "/ca.pem").await.1;
    let mut conn = client::via_proxy(llmtap.proxy, HOST, &ca, false).await;

    // The conversation, turn by turn.
    let main_tools = ["Bash", "Task", "Read"];
    let first = json!({"role": "user", "content": text("Fix the bug.")});
    let mut history = vec![first.clone()];
    let body1 = request(MAIN_SYSTEM, &history, &main_tools);
    let got1 = send(&mut conn, &body1).await;

    tokio::time::sleep(BASH_TIME).await;
    history.push(tool_use(
        "toolu_bash1",
        "Bash",
        r#"{"command":"cargo test","description":"Run the tests"}"#,
    ));
    history.push(tool_result(
        "toolu_bash1",
        "test result: FAILED. 1 failed",
        false,
    ));
    let body2 = request(MAIN_SYSTEM, &history, &main_tools);
    let got2 = send(&mut conn, &body2).await;

    let body_sub = request(
        SUB_SYSTEM,
        &[json!({"role": "user", "content": text("Look for it")})],
        &["Glob", "Grep", "Read"],
    );
    let got_sub = send(&mut conn, &body_sub).await;

    history.push(tool_use("toolu_task1", "Task", TASK_INPUT));
    history.push(tool_result(
        "toolu_task1",
        "The config is config/app.toml.",
        false,
    ));
    let body3 = request(MAIN_SYSTEM, &history, &main_tools);
    let got3_overloaded = send(&mut conn, &body3).await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    let got3 = send(&mut conn, &body3).await;

    history.push(tool_use(
        "toolu_read1",
        "Read",
        r#"{"file_path":"/repo/config/app.toml"}"#,
    ));
    history.push(tool_result("toolu_read1", "File does not exist.", true));
    let body4 = request(MAIN_SYSTEM, &history, &main_tools);
    let got4 = send(&mut conn, &body4).await;

    let compacted = [
        first,
        json!({"role": "assistant", "content": text("Summary: the tests fail because config/app.toml is missing.")}),
        json!({"role": "user", "content": text("Continue.")}),
    ];
    let body5 = request(MAIN_SYSTEM, &compacted, &main_tools);
    let got5 = send(&mut conn, &body5).await;

    // The exchanges themselves: every status and byte relayed, every request seen as sent.
    let exchanges = [
        (&got1, 200, &r1),
        (&got2, 200, &r2),
        (&got_sub, 200, &r_sub),
        (&got3_overloaded, 529, &overloaded),
        (&got3, 200, &r3),
        (&got4, 200, &r4),
        (&got5, 200, &r5),
    ];
    for (i, (got, status, body)) in exchanges.iter().enumerate() {
        assert_eq!(got.status, *status, "exchange {i}");
        assert_eq!(
            &got.body(),
            *body,
            "exchange {i}: the bytes relayed unchanged"
        );
    }
    assert_eq!(
        got1.headers
            .get("anthropic-ratelimit-unified-5h-utilization")
            .unwrap(),
        "0.42"
    );
    assert_eq!(upstream.replies_left(), 0);
    let seen = upstream.seen();
    let sent = [&body1, &body2, &body_sub, &body3, &body3, &body4, &body5];
    assert_eq!(seen.len(), sent.len());
    for (s, body) in seen.iter().zip(sent) {
        assert_eq!(&s.body, body);
        assert_eq!(s.header("x-claude-code-session-id"), Some(SESSION));
        assert_eq!(s.header("user-agent"), Some(USER_AGENT));
    }

    // Wait (bounded) for the seven call lines, scrape the metrics, then stop llmtap: its exit
    // flushes the spans.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    while llmtap.stdout().lines().count() < 7 && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let metrics = harness::get(llmtap.admin, "/metrics").await.1;
    let llmtap = tokio::task::spawn_blocking(move || {
        assert_eq!(llmtap.terminate().code(), Some(0), "llmtap exits cleanly");
        llmtap
    })
    .await
    .unwrap();
    let stdout = llmtap.stdout();
    let lines: Vec<&str> = stdout.lines().collect();
    let file = std::fs::read_to_string(&calls_file).unwrap();
    assert_eq!(
        lines,
        file.lines().collect::<Vec<_>>(),
        "stdout and --calls-file carry the same lines"
    );
    let records: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str(l).expect("a call line is JSON"))
        .collect();
    assert_eq!(records.len(), 7, "{stdout}\n{}", llmtap.stderr());
    for r in &records {
        assert_eq!(r["client"], "claude-code", "{r}");
        assert_eq!(r["conversation_id"], SESSION, "{r}");
        assert_eq!(r["model"], MODEL, "{r}");
    }
    let by_id = |id: &str| -> &Value {
        records
            .iter()
            .find(|r| r["response"]["id"] == id)
            .unwrap_or_else(|| panic!("no call line for {id}: {stdout}"))
    };
    let c1 = by_id("msg_agentloop_main1");
    let c2 = by_id("msg_agentloop_main2");
    let sub = by_id("msg_agentloop_sub");
    let c3_failed = records
        .iter()
        .find(|r| r["status"] == 529)
        .expect("the 529's line");
    let c3 = by_id("msg_agentloop_main3");
    let c4 = by_id("msg_agentloop_main4");
    let c5 = by_id("msg_agentloop_main5");
    let main_calls = [c1, c2, c3_failed, c3, c4, c5];
    let answered = [
        (c1, u1),
        (c2, u2),
        (sub, u_sub),
        (c3, u3),
        (c4, u4),
        (c5, u5),
    ];
    for (r, u) in answered {
        assert_eq!(r["response"]["usage"]["input"], u.total_input(), "{r}");
    }

    // Issue 15: every expectation below is new; they are gathered so that one run lists all.
    let mut check = Checks::default();
    let name = |r: &Value| -> String {
        r["response"]["id"]
            .as_str()
            .map_or_else(|| format!("the {} call", r["status"]), str::to_owned)
    };

    // Agents and threads.
    for r in main_calls {
        check.eq(&format!("{} agent", name(r)), &r["agent"], &json!("main"));
    }
    check.eq("subagent agent", &sub["agent"], &json!("Explore"));
    let main_thread = &c1["thread_id"];
    check.that(
        main_thread.as_str().is_some_and(|t| {
            t.len() == 16
                && t.bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
        }),
        || format!("thread_id is 16 lowercase hex: {main_thread}"),
    );
    for r in main_calls {
        check.eq(
            &format!("{} thread_id", name(r)),
            &r["thread_id"],
            main_thread,
        );
    }
    check.that(
        sub["thread_id"].is_string() && sub["thread_id"] != *main_thread,
        || {
            format!(
                "the subagent's thread_id {} differs from main's {main_thread}",
                sub["thread_id"]
            )
        },
    );

    // Tool executions: Bash on call 2 (>= the 400 ms pause), Task once on call 3 (the 529
    // or its resend), Read failed on call 4; nowhere else.
    let executions =
        |r: &Value| -> Vec<Value> { r["tool_executions"].as_array().cloned().unwrap_or_default() };
    let bash = executions(c2);
    check.that(
        bash.len() == 1
            && bash[0]["tool"] == "Bash"
            && bash[0]["call_id"] == "toolu_bash1"
            && bash[0]["duration_ms"]
                .as_f64()
                .is_some_and(|ms| ms >= 400.0)
            && bash[0]["error"] != true,
        || {
            format!(
                "call 2's tool_executions: one Bash toolu_bash1 of >= 400 ms, no error: {bash:?}"
            )
        },
    );
    let task: Vec<Value> = [c3_failed, c3].into_iter().flat_map(executions).collect();
    check.that(
        task.len() == 1
            && task[0]["tool"] == "Task"
            && task[0]["call_id"] == "toolu_task1"
            && task[0]["duration_ms"].as_f64().is_some_and(|ms| ms > 0.0)
            && task[0]["error"] != true,
        || format!("call 3 (529 or resend): one Task toolu_task1 execution, no error: {task:?}"),
    );
    let read = executions(c4);
    check.that(
        read.len() == 1
            && read[0]["tool"] == "Read"
            && read[0]["call_id"] == "toolu_read1"
            && read[0]["error"] == true,
        || format!("call 4's tool_executions: one Read toolu_read1 with error true: {read:?}"),
    );
    for r in [c1, sub, c5] {
        check.that(r.get("tool_executions").is_none(), || {
            format!(
                "{}: no tool_executions, got {}",
                name(r),
                r["tool_executions"]
            )
        });
    }

    // The cache break on call 4 and nowhere else.
    check.eq(
        "call 4 cache_break_tokens",
        &c4["cache_break_tokens"],
        &json!(4200),
    );
    check.that(
        c4["cache_break_cost_usd"].as_f64().is_some_and(|c| c > 0.0),
        || {
            format!(
                "call 4 cache_break_cost_usd > 0: {}",
                c4["cache_break_cost_usd"]
            )
        },
    );
    for r in records.iter().filter(|r| !std::ptr::eq(*r, c4)) {
        check.that(r.get("cache_break_tokens").is_none(), || {
            format!(
                "{}: no cache break, got {}",
                name(r),
                r["cache_break_tokens"]
            )
        });
    }

    // The resend of call 3.
    check.eq("call 3 resend_count", &c3["resend_count"], &json!(1));
    check.eq(
        "call 3 retry_reason",
        &c3["retry_reason"],
        &json!("overloaded"),
    );
    for r in records.iter().filter(|r| !std::ptr::eq(*r, c3)) {
        check.that(r.get("resend_count").is_none(), || {
            format!(
                "{} (status {}): not a resend, got {}",
                name(r),
                r["status"],
                r["resend_count"]
            )
        });
    }

    // The compaction on call 5 only.
    check.eq("call 5 compacted", &c5["compacted"], &json!(true));
    for r in records.iter().filter(|r| !std::ptr::eq(*r, c5)) {
        check.that(r.get("compacted").is_none(), || {
            format!("{}: not compacted, got {}", name(r), r["compacted"])
        });
    }

    // The context window of every answered call.
    for (r, u) in answered {
        let id = name(r);
        check.eq(
            &format!("{id} context_window_tokens"),
            &r["context_window_tokens"],
            &json!(200_000),
        );
        let want = u.total_input() as f64 / 200_000.0;
        check.that(
            r["context_utilization"]
                .as_f64()
                .is_some_and(|g| (g - want).abs() < 1e-4),
            || {
                format!(
                    "{id} context_utilization: got {}, want {want}",
                    r["context_utilization"]
                )
            },
        );
    }

    // The rate limits of call 1's answer.
    check.eq(
        "call 1 ratelimits",
        &c1["ratelimits"],
        &json!({
            "status": "allowed",
            "windows": {
                "5h": {"utilization": 0.42, "reset": RESET_5H},
                "7d": {"utilization": 0.85, "reset": RESET_7D},
            },
            "resources": {"requests": {"limit": 50, "remaining": 49, "reset": RESET_5H}},
        }),
    );

    // Metrics.
    let m = |name: &str, labels: &[(&str, &str)]| metric(&metrics, name, labels);
    for tool in ["Bash", "Task", "Read"] {
        check.eq(
            &format!("llmtap_tool_duration_seconds_count{{tool={tool}}}"),
            m("llmtap_tool_duration_seconds_count", &[("tool", tool)]),
            1.0,
        );
    }
    check.eq(
        "llmtap_tool_errors_total{tool=Read}",
        m("llmtap_tool_errors_total", &[("tool", "Read")]),
        1.0,
    );
    check.eq(
        "llmtap_tool_errors_total{tool=Bash}",
        m("llmtap_tool_errors_total", &[("tool", "Bash")]),
        0.0,
    );
    check.eq(
        "llmtap_retries_total{reason=overloaded}",
        m("llmtap_retries_total", &[("reason", "overloaded")]),
        1.0,
    );
    check.eq("llmtap_retries_total", m("llmtap_retries_total", &[]), 1.0);
    check.eq(
        "llmtap_cache_breaks_total{agent=main}",
        m("llmtap_cache_breaks_total", &[("agent", "main")]),
        1.0,
    );
    check.eq(
        "llmtap_cache_breaks_total",
        m("llmtap_cache_breaks_total", &[]),
        1.0,
    );
    check.that(m("llmtap_cache_break_cost_usd_total", &[]) > 0.0, || {
        "llmtap_cache_break_cost_usd_total > 0".to_owned()
    });
    check.eq(
        "llmtap_compactions_total{agent=main}",
        m("llmtap_compactions_total", &[("agent", "main")]),
        1.0,
    );
    check.eq(
        "llmtap_compactions_total",
        m("llmtap_compactions_total", &[]),
        1.0,
    );
    check.eq(
        "llmtap_ratelimit_utilization_ratio{window=5h}",
        m("llmtap_ratelimit_utilization_ratio", &[("window", "5h")]),
        0.42,
    );
    check.eq(
        "llmtap_ratelimit_utilization_ratio{window=7d}",
        m("llmtap_ratelimit_utilization_ratio", &[("window", "7d")]),
        0.85,
    );
    check.eq(
        "llmtap_ratelimit_remaining{resource=requests}",
        m("llmtap_ratelimit_remaining", &[("resource", "requests")]),
        49.0,
    );
    check.eq(
        "llmtap_requests_total{agent=Explore}",
        m("llmtap_requests_total", &[("agent", "Explore")]),
        1.0,
    );
    check.eq(
        "llmtap_requests_total{agent=main}",
        m("llmtap_requests_total", &[("agent", "main")]),
        6.0,
    );
    check.that(
        m("llmtap_context_utilization_ratio_count", &[]) >= 6.0,
        || {
            format!(
                "llmtap_context_utilization_ratio_count >= 6: {}",
                m("llmtap_context_utilization_ratio_count", &[])
            )
        },
    );

    // Spans: seven chat spans (the session's trace) and one execute_tool span per tool.
    let calls = receiver.call_spans(7).await;
    let chats: Vec<_> = calls
        .iter()
        .filter(|s| s.span.name.starts_with("chat "))
        .collect();
    assert_eq!(
        chats.len(),
        7,
        "{:?}",
        calls.iter().map(|s| &s.span.name).collect::<Vec<_>>()
    );
    let trace = chats[0].span.trace_id.clone();
    assert!(
        chats.iter().all(|s| s.span.trace_id == trace),
        "one trace per session"
    );
    let mut agents: Vec<_> = chats.iter().map(|s| s.str("gen_ai.agent.name")).collect();
    agents.sort();
    check.eq(
        "the chat spans' gen_ai.agent.name",
        agents,
        vec![
            Some("Explore"),
            Some("main"),
            Some("main"),
            Some("main"),
            Some("main"),
            Some("main"),
            Some("main"),
        ],
    );
    let resent: Vec<_> = chats
        .iter()
        .filter_map(|s| s.int("http.request.resend_count"))
        .collect();
    check.eq(
        "http.request.resend_count on the chat spans",
        resent,
        vec![1],
    );
    let tool_span = |name: &str| {
        calls
            .iter()
            .find(|s| s.span.name == format!("execute_tool {name}"))
    };
    match tool_span("Bash") {
        None => check.that(false, || {
            format!(
                "an execute_tool Bash span among {:?}",
                calls.iter().map(|s| &s.span.name).collect::<Vec<_>>()
            )
        }),
        Some(s) => {
            check.eq(
                "execute_tool Bash kind",
                s.span.kind,
                SpanKind::Internal as i32,
            );
            check.eq(
                "execute_tool Bash gen_ai.operation.name",
                s.str("gen_ai.operation.name"),
                Some("execute_tool"),
            );
            check.eq(
                "execute_tool Bash gen_ai.tool.name",
                s.str("gen_ai.tool.name"),
                Some("Bash"),
            );
            check.eq(
                "execute_tool Bash gen_ai.tool.call.id",
                s.str("gen_ai.tool.call.id"),
                Some("toolu_bash1"),
            );
            check.eq(
                "execute_tool Bash gen_ai.agent.name",
                s.str("gen_ai.agent.name"),
                Some("main"),
            );
            check.eq("execute_tool Bash trace id", &s.span.trace_id, &trace);
            let took = s
                .span
                .end_time_unix_nano
                .saturating_sub(s.span.start_time_unix_nano);
            check.that(took >= 400_000_000, || {
                format!("execute_tool Bash lasted {took} ns, want >= 400 ms")
            });
        }
    }
    check.that(tool_span("Task").is_some(), || {
        "an execute_tool Task span".to_owned()
    });
    check.eq(
        "execute_tool Read error.type",
        tool_span("Read").and_then(|s| s.str("error.type")),
        Some("tool_error"),
    );

    // `llmtap report` on the calls file.
    let report = |by: &str| {
        let out = command(home.path())
            .args(["report", "--by", by, calls_file.to_str().unwrap()])
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout).into_owned();
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        (out.status.success(), text, err)
    };
    let (ok, sessions, err) = report("session");
    check.that(ok, || format!("llmtap report --by session succeeds: {err}"));
    match entry(&sessions, SESSION) {
        None => check.that(false, || {
            format!("the session in report --by session:\n{sessions}")
        }),
        Some(session) => {
            check.that(mentions(&session, 7, "call"), || {
                format!("7 calls: {session}")
            });
            check.that(mentions(&session, 1, "subagent"), || {
                format!("1 subagent: {session}")
            });
            check.that(mentions(&session, 1, "cache break"), || {
                format!("1 cache break: {session}")
            });
        }
    }
    let (ok, tools, err) = report("tool");
    check.that(ok, || format!("llmtap report --by tool succeeds: {err}"));
    for tool in ["Bash", "Task", "Read"] {
        check.that(entry(&tools, tool).is_some(), || {
            format!("{tool} in report --by tool:\n{tools}")
        });
    }
    check.that(
        entry(&tools, "Read").is_some_and(|read| mentions(&read, 1, "error")),
        || format!("Read has 1 error in report --by tool:\n{tools}"),
    );

    check.finish();
}
