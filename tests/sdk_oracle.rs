//! The official Python SDKs as an independent oracle for llmtap's stream parsers.
//!
//! Every streamed fixture (`tests/fixtures/{anthropic,openai_chat,openai_responses,gemini}/`
//! `*.sse`, and Gemini's `*.jsonarray`) is played by the fake upstream to the pinned SDK of
//! `tests/e2e/requirements.txt`, through the real `llmtap` binary (configured by sourcing
//! `llmtap env`, as in `sdk_python.rs`). The SDK accumulates the stream its own way; this test
//! maps what it ended up with onto llmtap's normalised call-line fields (the rules of
//! `tests/fixtures/README.md`) and compares, fixture by fixture, with llmtap's `--calls json`
//! line for the same call. The streamed real-traffic cases (`tests/cases/real-traffic/`, served
//! for `x-fake-case`) go the same way; the WebSocket ones are not SDK calls. One Python process
//! per SDK loops over all the cases of its provider (`tests/e2e/oracle_*.py`) and prints one
//! JSON report per call. A call is matched to its call line by `x-llmtap-user: <tag>`, which
//! llmtap records as the call's `user`.
//!
//! Only what the SDK itself accumulates is compared. Where the SDK's value and llmtap's field
//! legitimately differ, the mapping below says so next to the rule, which side is right, and
//! why. A disagreement fails the test, after the whole table is printed (`--nocapture`).
//!
//! Needs a Python with the packages of `tests/e2e/requirements.txt`: `LLMTAP_PYTHON`, else
//! `target/e2e-venv/bin/python` if it exists, else `python3`. Without them a test says so and
//! passes, unless `LLMTAP_E2E=1` demands them (CI sets that).
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the tests read LLMTAP_E2E and LLMTAP_PYTHON, pass PATH on, and print their table"
)]

use std::{path::Path, process::Command};

use crate::support::process::{BIN, Llmtap, python};
use llmtap_fake_upstream::FakeUpstream;
use serde_json::{Value, json};

/// The fake upstream's header that picks a fixture case in the route's folder.
const SCENARIO: &str = "x-fake-scenario";
/// The fake upstream's header that serves a real-traffic case (`tests/cases/real-traffic/`).
const REAL_CASE: &str = "x-fake-case";

fn root() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The streamed cases of a fixture folder, sorted: `(case, extension)` for every `<case>.sse`
/// and `<case>.jsonarray`.
fn streamed_cases(dialect: &str) -> Vec<(String, String)> {
    let dir = root().join("tests/fixtures").join(dialect);
    let mut cases: Vec<(String, String)> = std::fs::read_dir(&dir)
        .unwrap()
        .filter_map(|e| {
            let name = e.ok()?.file_name().into_string().ok()?;
            let (case, ext) = name.rsplit_once('.')?;
            matches!(ext, "sse" | "jsonarray").then(|| (case.to_owned(), ext.to_owned()))
        })
        .collect();
    cases.sort();
    assert!(
        !cases.is_empty(),
        "no streamed fixtures in {}",
        dir.display()
    );
    cases
}

/// `tests/fixtures/<dialect>/<case>.<suffix>` parsed, or `Null` if there is no such file.
fn fixture_json(dialect: &str, case: &str, suffix: &str) -> Value {
    let path = root()
        .join("tests/fixtures")
        .join(dialect)
        .join(format!("{case}.{suffix}"));
    std::fs::read(path).map_or(Value::Null, |b| serde_json::from_slice(&b).unwrap())
}

/// The streamed real-traffic cases (`tests/cases/real-traffic/<case>/` with a `response.sse`)
/// whose request went to `host`, sorted: `(case, request.json)`. The WebSocket ones are no SDK
/// call.
fn real_traffic_cases(host: &str) -> Vec<(String, Value)> {
    let Ok(entries) = std::fs::read_dir(root().join("tests/cases/real-traffic")) else {
        return Vec::new();
    };
    let mut cases: Vec<(String, Value)> = entries
        .filter_map(|e| {
            let dir = e.ok()?.path();
            let name = dir.file_name()?.to_str()?.to_owned();
            if !dir.join("response.sse").exists() {
                return None;
            }
            let request: Value =
                serde_json::from_slice(&std::fs::read(dir.join("request.json")).ok()?).unwrap();
            // Streamed only: the body asks for a stream, or the path is Gemini's streaming
            // method (a non-streamed body is not what these oracles accumulate).
            let streamed = request["body"]["stream"] == true
                || request["path"]
                    .as_str()
                    .is_some_and(|p| p.contains(":streamGenerateContent"));
            (request["host"] == host && request["websocket"] != true && streamed)
                .then_some((name, request))
        })
        .collect();
    cases.sort_by(|a, b| a.0.cmp(&b.0));
    cases
}

/// The model a fixture's request names, for the SDK call (the fake upstream ignores it).
fn request_model(dialect: &str, case: &str, fallback: &str) -> String {
    fixture_json(dialect, case, "request.json")["model"]
        .as_str()
        .unwrap_or(fallback)
        .to_owned()
}

/// What one oracle script run produced.
struct OracleRun {
    /// One report per SDK call, in call order.
    reports: Vec<Value>,
    /// llmtap's call lines (`--calls json`), parsed.
    records: Vec<Value>,
    llmtap_stdout: String,
    upstream: FakeUpstream,
}

impl OracleRun {
    /// llmtap's call line for the SDK call of `report` (matched by its `user` tag).
    fn record_for(&self, report: &Value) -> &Value {
        let tag = &report["tag"];
        let mut found = self.records.iter().filter(|r| &r["user"] == tag);
        let record = found.next().unwrap_or_else(|| {
            panic!(
                "no call line for {tag} ({}): {}",
                report["label"], self.llmtap_stdout
            )
        });
        assert!(found.next().is_none(), "two call lines for {tag}");
        record
    }

    /// Every SDK call was recorded once, and nothing else was.
    fn assert_one_record_per_call(&self) {
        assert_eq!(
            self.records.len(),
            self.reports.len(),
            "one call line per SDK call: {}",
            self.llmtap_stdout
        );
    }
}

/// Starts the fake upstream and the llmtap binary, sources `llmtap env` in `sh`, runs
/// `tests/e2e/<script>` with `ORACLE_PLAN=<plan>` and `key`, stops llmtap with SIGTERM.
/// `None` when the Python module is missing and the suite is not required.
async fn run_oracle(
    module: &str,
    script: &str,
    key: (&str, &str),
    plan: &Value,
) -> Option<OracleRun> {
    let Some(python) = python(module) else {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but python cannot import {module}"
        );
        eprintln!("skipped: python with the {module} package is not installed");
        return None;
    };
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let resolve = upstream.resolve();
    let mut llmtap = Llmtap::spawn(
        home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--calls",
            "json",
        ],
    );
    let exports = Command::new(BIN)
        .env_clear()
        .env("HOME", home.path())
        .args(["env", "--listen", &llmtap.proxy.to_string()])
        .output()
        .unwrap();
    assert!(exports.status.success());
    let exports = String::from_utf8(exports.stdout).unwrap();
    let shell = format!(
        "set -e\n{exports}exec '{python}' '{}/tests/e2e/{script}'\n",
        root().display()
    );
    let env = [
        (key.0.to_owned(), key.1.to_owned()),
        ("ORACLE_PLAN".to_owned(), plan.to_string()),
    ];
    let out = tokio::task::spawn_blocking(move || {
        let mut cmd = Command::new("sh");
        cmd.env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .args(["-c", &shell]);
        for (k, v) in env {
            cmd.env(k, v);
        }
        cmd.output().unwrap()
    })
    .await
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{script} failed:\n{stderr}");
    let reports: Vec<Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let llmtap = tokio::task::spawn_blocking(move || {
        assert_eq!(llmtap.terminate().code(), Some(0));
        llmtap
    })
    .await
    .unwrap();
    let llmtap_stdout = llmtap.stdout();
    assert!(
        !llmtap_stdout.contains(key.1) && !llmtap.stderr().contains(key.1),
        "the API key leaked"
    );
    let records = llmtap_stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Some(OracleRun {
        reports,
        records,
        llmtap_stdout,
        upstream,
    })
}

// ---------------------------------------------------------------------------------------------
// Facts and verdicts.

/// One fact the SDK established: where it sits in llmtap's call line and its value there.
struct Fact {
    /// A JSON pointer into the call line, or `(sdk)` for a fact about the SDK run itself,
    /// which no call line can satisfy.
    pointer: &'static str,
    want: Value,
}

fn fact(pointer: &'static str, want: Value) -> Fact {
    Fact { pointer, want }
}

/// The SDK run went wrong in a way that is not a fact about the stream (say, an exception
/// no fixture should cause): always a disagreement, with the SDK's own words.
fn sdk_failed(what: &Value) -> Fact {
    fact("(sdk)", what.clone())
}

/// One row of the agreement table.
struct Verdict {
    fixture: String,
    compared: usize,
    disagreements: Vec<String>,
    /// Why the SDK cannot be an oracle for this call, if it cannot.
    not_compared: Option<&'static str>,
}

impl Verdict {
    fn not_compared(fixture: String, why: &'static str) -> Verdict {
        Verdict {
            fixture,
            compared: 0,
            disagreements: Vec::new(),
            not_compared: Some(why),
        }
    }
}

fn judge(fixture: String, facts: Vec<Fact>, record: &Value) -> Verdict {
    let mut disagreements = Vec::new();
    for f in &facts {
        if !f.pointer.starts_with('/') {
            disagreements.push(format!("the SDK failed: {}", f.want));
            continue;
        }
        let got = record.pointer(f.pointer).unwrap_or(&Value::Null);
        if got != &f.want {
            disagreements.push(format!("{}: SDK {} vs llmtap {got}", f.pointer, f.want));
        }
    }
    Verdict {
        fixture,
        compared: facts.len(),
        disagreements,
        not_compared: None,
    }
}

/// Prints the table and fails on any disagreement.
fn conclude(title: &str, verdicts: &[Verdict]) {
    eprintln!("\n{title}: SDK oracle vs llmtap call line");
    for v in verdicts {
        let verdict = if let Some(why) = v.not_compared {
            format!("not compared: {why}")
        } else if v.disagreements.is_empty() {
            format!("agree ({} facts)", v.compared)
        } else {
            format!("DISAGREE: {}", v.disagreements.join("; "))
        };
        eprintln!("  {:<58} {verdict}", v.fixture);
    }
    let bad: Vec<String> = verdicts
        .iter()
        .filter(|v| !v.disagreements.is_empty())
        .map(|v| format!("{}: {}", v.fixture, v.disagreements.join("; ")))
        .collect();
    assert!(
        bad.is_empty(),
        "{title}: llmtap's call lines disagree with the SDK on {} call(s):\n{}",
        bad.len(),
        bad.join("\n")
    );
}

fn str(v: &Value) -> &str {
    v.as_str().unwrap_or_default()
}

fn int(v: &Value) -> u64 {
    v.as_u64().unwrap_or(0)
}

/// `outcome` and `error_type` of a call that an API error ended. llmtap's rule
/// (`src/exchange.rs`, `outcome`): an API error in a 200 response is `rate_limited` when it
/// says rate limit (`rate_limit_error`, `rate_limit_exceeded`, `RESOURCE_EXHAUSTED`), else
/// `upstream_error`; `error_type` is the API's own error type or code.
fn api_error(error_type: &Value) -> [Fact; 2] {
    let rate_limited = error_type
        .as_str()
        .is_some_and(|t| t.contains("rate_limit") || t == "RESOURCE_EXHAUSTED");
    let outcome = if rate_limited {
        "rate_limited"
    } else {
        "upstream_error"
    };
    [
        fact("/outcome", json!(outcome)),
        fact("/error_type", error_type.clone()),
    ]
}

/// A call that the SDK read to the end without an exception: a successful call to llmtap,
/// and one whose stream it could parse.
fn clean_end() -> [Fact; 3] {
    [
        fact("/outcome", json!("ok")),
        fact("/error_type", Value::Null),
        fact("/parse_error", Value::Null),
    ]
}

// ---------------------------------------------------------------------------------------------
// Anthropic: `client.messages.stream(...)` and `client.beta.messages.stream(...)` →
// `get_final_message()` (tests/e2e/oracle_anthropic.py).

fn anthropic_facts(r: &Value) -> Vec<Fact> {
    let m = &r["message"];
    let u = &m["usage"];
    let mut facts = vec![
        fact("/stream", json!(true)),
        fact("/response/id", m["id"].clone()),
        fact("/response/model", m["model"].clone()),
    ];
    if u.is_null() {
        facts.extend(
            [
                "/response/usage/input",
                "/response/usage/output",
                "/response/usage/cache_read",
                "/response/usage/cache_write_5m",
                "/response/usage/cache_write_1h",
                "/response/usage/reasoning",
            ]
            .map(|p| fact(p, Value::Null)),
        );
    } else {
        // Anthropic's `input_tokens` excludes the cache ("Total input tokens in a request is
        // the summation of input_tokens, cache_creation_input_tokens, and
        // cache_read_input_tokens", docs.claude.com, prompt caching); llmtap's `input` is
        // that total. An absent cache field adds nothing.
        let mut input = int(&u["input_tokens"])
            + int(&u["cache_read_input_tokens"])
            + int(&u["cache_creation_input_tokens"]);
        let mut output = u["output_tokens"].clone();
        // With compaction the top-level usage is the final `message` iteration's only, while
        // every iteration is billed ("Compaction": the summarising step is an extra sampling
        // step). The SDK keeps `iterations` as sent (beta usage; the plain API drops it);
        // llmtap's usage is their sum. llmtap is right for cost: the top-level counts leave
        // out the compaction step (stream_compaction: 161,204 input tokens).
        if let Some(iterations) = u["iterations"].as_array().filter(|i| !i.is_empty()) {
            let sum = |k: &str| iterations.iter().map(|i| int(&i[k])).sum::<u64>();
            input = sum("input_tokens")
                + sum("cache_read_input_tokens")
                + sum("cache_creation_input_tokens");
            output = json!(sum("output_tokens"));
        }
        // `cache_creation_input_tokens` is what was written to the cache and billed as such;
        // the `cache_creation` object splits it by TTL, so the two must add up. Where they do
        // not, llmtap books what the split leaves out as 5-minute writes, the default TTL
        // (`cache_control` without `ttl`), and the SDK, which passes the object on as sent,
        // differs from it: with no object at all (`cache_creation: None`; the object came with
        // the 1-hour TTL, so such a body wrote no 1-hour entries), or with an object that
        // reports less than the total (real-traffic `anthropic_cache_breakdown_zero`: 0/0 of
        // 3000 written). llmtap is right: otherwise billed cache writes would vanish from
        // the cost.
        let (write_5m, write_1h) = match (&u["cache_creation"], &u["cache_creation_input_tokens"]) {
            (Value::Object(split), total) => {
                let (five, one) = (
                    int(&split["ephemeral_5m_input_tokens"]),
                    int(&split["ephemeral_1h_input_tokens"]),
                );
                let rest = int(total).saturating_sub(five + one);
                (json!(five + rest), json!(one))
            }
            (_, Value::Number(n)) => (json!(n), json!(0)),
            // No cache field at all: unknown, so null, never 0 (the SDK has None too).
            _ => (Value::Null, Value::Null),
        };
        facts.extend([
            fact("/response/usage/input", json!(input)),
            // `message_delta` usage is cumulative and final; the SDK overwrites
            // `output_tokens` (and any input / cache count present) from it
            // (anthropic/lib/streaming/_messages.py, `accumulate_event`).
            fact("/response/usage/output", output),
            fact(
                "/response/usage/cache_read",
                u["cache_read_input_tokens"].clone(),
            ),
            fact("/response/usage/cache_write_5m", write_5m),
            fact("/response/usage/cache_write_1h", write_1h),
            // anthropic 2.14 types `usage.output_tokens_details.thinking_tokens` (reasoning
            // tokens, included in `output_tokens`) and keeps it from `message_delta`. The
            // fixtures do not carry it, so both sides say null; if a stream ever does, llmtap's
            // `reasoning` must be it, not null ("unknown is null" no longer holds then).
            fact("/response/usage/reasoning", u["thinking_tokens"].clone()),
        ]);
    }
    let stop: Vec<Value> = m["stop_reason"]
        .as_str()
        .map(|s| json!(s))
        .into_iter()
        .collect();
    facts.push(fact("/response/finish_reasons", json!(stop)));
    // `tool_use`, `server_tool_use` and `mcp_tool_use` blocks, in content order.
    let tools = m["tools"].as_array().cloned().unwrap_or_default();
    facts.push(fact("/response/tools_called", json!(tools)));
    let raised = &r["raised"];
    if raised.is_null() {
        facts.extend(clean_end());
    } else if let Some(error_type) = raised.pointer("/body/error/type") {
        // A mid-stream `error` event: the SDK raises it as an APIStatusError whose body is the
        // event (anthropic/_streaming.py, `sse.event == "error"`), and its snapshot keeps what
        // came before (usage from `message_start`, no stop reason). llmtap records the same
        // call as failed with that error type. Both are right: an exception is the SDK's way
        // of saying what llmtap's outcome says.
        facts.extend(api_error(error_type));
    } else {
        facts.push(sdk_failed(raised));
    }
    facts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_sdk_agrees_with_llmtap_on_every_streamed_case() {
    const KEY: &str = "sk-ant-api03-ORACLE-SDK-SECRET-0000";
    let mut plan = Vec::new();
    for (case, _) in streamed_cases("anthropic") {
        plan.push(json!({
            "tag": format!("a{}", plan.len()),
            "label": format!("anthropic/{case}"),
            "case": case,
            "header": SCENARIO,
            "model": request_model("anthropic", &case, "claude-sonnet-4-6"),
        }));
    }
    for (case, request) in real_traffic_cases("api.anthropic.com") {
        plan.push(json!({
            "tag": format!("a{}", plan.len()),
            "label": format!("real-traffic/{case}"),
            "case": case,
            "header": REAL_CASE,
            "model": request.pointer("/body/model").cloned().unwrap_or(json!("claude-sonnet-4-6")),
        }));
    }
    let Some(run) = run_oracle(
        "anthropic",
        "oracle_anthropic.py",
        ("FAKE_ANTHROPIC_KEY", KEY),
        &json!(plan),
    )
    .await
    else {
        return;
    };
    assert_eq!(
        run.reports.len(),
        2 * plan.len(),
        "messages and beta per case"
    );
    run.assert_one_record_per_call();
    let verdicts: Vec<Verdict> = run
        .reports
        .iter()
        .map(|r| {
            let fixture = format!("{} [{}]", str(&r["label"]), str(&r["api"]));
            judge(fixture, anthropic_facts(r), run.record_for(r))
        })
        .collect();
    conclude("Anthropic (anthropic SDK)", &verdicts);
}

// ---------------------------------------------------------------------------------------------
// OpenAI: `client.chat.completions.stream(...)` → `get_final_completion()`, and
// `client.responses.stream(...)` → `get_final_response()` or the `response.failed` /
// `response.incomplete` event's response (tests/e2e/oracle_openai.py).

fn chat_facts(r: &Value) -> Vec<Fact> {
    let c = &r["completion"];
    let u = &c["usage"];
    let mut facts = vec![
        fact("/stream", json!(true)),
        fact("/response/id", c["id"].clone()),
        fact("/response/model", c["model"].clone()),
        // Without `stream_options.include_usage` no chunk has usage: the SDK's completion has
        // `usage: None`, and llmtap records null, never 0 (`Null` pointers give null here).
        fact("/response/usage/input", u["prompt_tokens"].clone()),
        fact("/response/usage/output", u["completion_tokens"].clone()),
        fact("/response/usage/cache_read", u["cached_tokens"].clone()),
        fact("/response/usage/reasoning", u["reasoning_tokens"].clone()),
        // openai 3.57 also types `prompt_tokens_details.cache_write_tokens`; llmtap has no
        // field for OpenAI cache writes, and the fixtures carry none, so it is not compared.
    ];
    let choices = c["choices"].as_array().cloned().unwrap_or_default();
    let finish: Vec<Value> = choices
        .iter()
        .map(|ch| ch["finish_reason"].clone())
        .collect();
    facts.push(fact("/response/finish_reasons", json!(finish)));
    let tools: Vec<Value> = choices
        .iter()
        .flat_map(|ch| ch["tools"].as_array().cloned().unwrap_or_default())
        .collect();
    facts.push(fact("/response/tools_called", json!(tools)));
    let raised = &r["raised"];
    if raised.is_null() {
        facts.extend(clean_end());
    } else if let Some(error) = raised.get("body").filter(|b| b.is_object()) {
        // A `data:` object with an `error` key: the SDK raises APIError with it as the body
        // (openai/_streaming.py); llmtap's error type is its `code`, else its `type`.
        let code = error.get("code").filter(|c| !c.is_null());
        facts.extend(api_error(code.unwrap_or(&error["type"])));
    } else {
        facts.push(sdk_failed(raised));
    }
    facts
}

fn responses_facts(r: &Value) -> Vec<Fact> {
    let resp = &r["response"];
    let u = &resp["usage"];
    let mut facts = vec![
        fact("/stream", json!(true)),
        fact("/response/id", resp["id"].clone()),
        fact("/response/model", resp["model"].clone()),
        // `usage: null` (a failed response) gives nulls on both sides.
        fact("/response/usage/input", u["input_tokens"].clone()),
        fact("/response/usage/output", u["output_tokens"].clone()),
        fact("/response/usage/cache_read", u["cached_tokens"].clone()),
        fact("/response/usage/reasoning", u["reasoning_tokens"].clone()),
    ];
    // llmtap's finish reason is the status, except that an incomplete response is named by
    // why it is incomplete (`incomplete_details.reason`), which is what a reader wants.
    let finish = match resp["status"].as_str() {
        Some("incomplete") => vec![resp["incomplete_reason"].clone()],
        Some(status) => vec![json!(status)],
        None => vec![],
    };
    facts.push(fact("/response/finish_reasons", json!(finish)));
    // The output items that are calls are the `*_call` items of the Responses API
    // (`function_call`, `custom_tool_call`, `mcp_call`, `web_search_call`, `shell_call`, …;
    // not their `*_call_output` results). Those with a `name` are named by it; the built-in
    // ones have none and are named by their tool type, the type without `_call`
    // (`web_search`), as llmtap names them among the tools offered.
    let tools: Vec<Value> = resp["output"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(|item| {
            let kind = item["type"].as_str()?;
            let tool = kind.strip_suffix("_call")?;
            Some(match &item["name"] {
                Value::String(name) => json!(name),
                _ => json!(tool),
            })
        })
        .collect();
    facts.push(fact("/response/tools_called", json!(tools)));
    let raised = &r["raised"];
    let error_events = r["error_events"].as_array().cloned().unwrap_or_default();
    if !raised.is_null() {
        facts.push(sdk_failed(raised));
    } else if resp["status"] == "failed" {
        // A failed response is a call the API ended with an error: the SDK does not raise,
        // the status and `error.code` say it (llmtap: `error_type` = that code).
        facts.extend(api_error(&resp["error"]["code"]));
        facts.push(fact("/parse_error", Value::Null));
    } else if let Some(first) = error_events.first() {
        facts.extend(api_error(&first["code"]));
        facts.push(fact("/parse_error", Value::Null));
    } else if r["terminal"].is_null() {
        facts.push(sdk_failed(&json!("no terminal event")));
    } else {
        facts.extend(clean_end());
    }
    facts
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_agrees_with_llmtap_on_every_streamed_case() {
    const KEY: &str = "sk-proj-ORACLE-OPENAI-SECRET-1111";
    let mut plan = Vec::new();
    let include_usage =
        |body: &Value| body.pointer("/stream_options/include_usage") == Some(&json!(true));
    for dialect in ["openai_chat", "openai_responses"] {
        for (case, _) in streamed_cases(dialect) {
            let request = fixture_json(dialect, &case, "request.json");
            plan.push(json!({
                "tag": format!("o{}", plan.len()),
                "label": format!("{dialect}/{case}"),
                "dialect": dialect,
                "case": case,
                "header": SCENARIO,
                "model": request_model(dialect, &case, "gpt-5.2"),
                "include_usage": include_usage(&request),
            }));
        }
    }
    for (case, request) in real_traffic_cases("api.openai.com") {
        let dialect = match request["path"].as_str().unwrap_or_default() {
            p if p.starts_with("/v1/chat/completions") => "openai_chat",
            p if p.starts_with("/v1/responses") => "openai_responses",
            _ => continue,
        };
        plan.push(json!({
            "tag": format!("o{}", plan.len()),
            "label": format!("real-traffic/{case}"),
            "dialect": dialect,
            "case": case,
            "header": REAL_CASE,
            "model": request.pointer("/body/model").cloned().unwrap_or(json!("gpt-5.2")),
            "include_usage": include_usage(&request["body"]),
        }));
    }
    let Some(run) = run_oracle(
        "openai",
        "oracle_openai.py",
        ("FAKE_OPENAI_KEY", KEY),
        &json!(plan),
    )
    .await
    else {
        return;
    };
    assert_eq!(run.reports.len(), plan.len());
    run.assert_one_record_per_call();
    let verdicts: Vec<Verdict> = run
        .reports
        .iter()
        .map(|r| {
            let fixture = str(&r["label"]).to_owned();
            let facts = if r["dialect"] == "openai_chat" {
                chat_facts(r)
            } else {
                responses_facts(r)
            };
            judge(fixture, facts, run.record_for(r))
        })
        .collect();
    conclude("OpenAI (openai SDK)", &verdicts);
}

// ---------------------------------------------------------------------------------------------
// Gemini: `client.models.generate_content_stream(...)`, the chunks as the SDK typed them
// (tests/e2e/oracle_gemini.py).

/// The facts of one Gemini report, or why it cannot be an oracle for that call.
fn gemini_facts(r: &Value) -> Result<Vec<Fact>, &'static str> {
    let raised = &r["raised"];
    if raised["class"] == "UnknownApiResponseError"
        && str(&raised["message"]).contains("Raw response: \u{feff}")
    {
        // A stream that starts with a byte order mark (real-traffic `gemini_sse_leading_bom`):
        // the SDK's SSE reader (`_iter_sse_lines` in google/genai/_api_client.py) keeps the
        // BOM, so the first line is not `data: …`, and it raises. The SSE spec says to strip
        // one leading BOM ("stream = [ bom ] *event", WHATWG HTML, server-sent events, parsing
        // an event stream), and llmtap does. llmtap is right; the SDK is no oracle here.
        return Err("the SDK cannot read a stream with a leading BOM (llmtap is right)");
    }
    if !raised.is_null() {
        return Ok(vec![sdk_failed(raised)]);
    }
    let chunks = r["chunks"].as_array().cloned().unwrap_or_default();
    let last = |key: &str| {
        chunks
            .iter()
            .rev()
            .map(|c| c[key].clone())
            .find(|v| !v.is_null())
            .unwrap_or(Value::Null)
    };
    let mut facts = vec![
        fact("/stream", json!(true)),
        fact("/response/id", last("response_id")),
        fact("/response/model", last("model_version")),
    ];
    // The SDK does not accumulate; the usage of a stream is that of its last chunk that has
    // `usageMetadata` (each one is cumulative, and the last chunk has it in every stream the
    // API sends).
    let usage = last("usage");
    if usage.is_null() {
        facts.extend(
            [
                "/response/usage/input",
                "/response/usage/output",
                "/response/usage/cache_read",
                "/response/usage/reasoning",
            ]
            .map(|p| fact(p, Value::Null)),
        );
    } else {
        // The SDK leaves an omitted count `None` (every field of its UsageMetadata is
        // Optional). The API omits a count when it is 0: it speaks proto3 JSON, which leaves
        // out fields with default values ("If a value is missing in the JSON-encoded data or
        // if its value is null, it will be interpreted as the appropriate default value",
        // protobuf.dev, ProtoJSON format), which is why early chunks lack
        // `candidatesTokenCount`. So within a `usageMetadata`, omitted is 0, and llmtap must
        // say 0, not null.
        let n = |k: &str| int(&usage[k]);
        facts.extend([
            // `promptTokenCount` excludes the tool-use prompt; `cachedContentTokenCount` is
            // part of it (ai.google.dev, UsageMetadata).
            fact(
                "/response/usage/input",
                json!(n("prompt_token_count") + n("tool_use_prompt_token_count")),
            ),
            // Thinking tokens are billed as output and not counted in `candidatesTokenCount`.
            fact(
                "/response/usage/output",
                json!(n("candidates_token_count") + n("thoughts_token_count")),
            ),
            fact(
                "/response/usage/reasoning",
                json!(n("thoughts_token_count")),
            ),
            fact(
                "/response/usage/cache_read",
                json!(n("cached_content_token_count")),
            ),
        ]);
    }
    // Each candidate's last finish reason, by candidate index (an omitted index is 0, as
    // above), and every call, in the order the chunks brought them.
    let mut finish: Vec<(u64, Value)> = Vec::new();
    let mut tools = Vec::new();
    for chunk in &chunks {
        for cand in chunk["candidates"].as_array().into_iter().flatten() {
            let index = int(&cand["index"]);
            if !cand["finish_reason"].is_null() {
                finish.retain(|(i, _)| *i != index);
                finish.push((index, cand["finish_reason"].clone()));
            }
            for call in cand["calls"].as_array().into_iter().flatten() {
                tools.push(match str(&call["kind"]) {
                    "function_call" => call["name"].clone(),
                    // An `executableCode` part is the model calling the built-in code
                    // execution tool (`tools: [{"codeExecution": {}}]`), which has no name:
                    // llmtap names it by its tool type, as it does the Responses API's
                    // built-in tools.
                    _ => json!("code_execution"),
                });
            }
        }
    }
    finish.sort_by_key(|(i, _)| *i);
    let mut finish: Vec<Value> = finish.into_iter().map(|(_, f)| f).collect();
    if finish.is_empty() {
        // A blocked prompt gets no candidates, so the SDK has no finish reason; the answer's
        // `promptFeedback.blockReason` says why it ended ("If set, the prompt was blocked and
        // no candidates are returned", ai.google.dev, PromptFeedback), and llmtap reports it
        // as the finish reason, so that blocked calls show up where finish reasons are read.
        finish.extend(
            chunks
                .iter()
                .rev()
                .map(|c| c["block_reason"].clone())
                .find(|v| !v.is_null()),
        );
    }
    facts.push(fact("/response/finish_reasons", json!(finish)));
    facts.push(fact("/response/tools_called", json!(tools)));
    facts.extend(clean_end());
    Ok(facts)
}

/// One Gemini call of the plan. google-genai always asks for `?alt=sse`
/// (google/genai/models.py, `_generate_content_stream`) and has no Code Assist client, so the
/// JSON array and Code Assist cases take the raw HTTP path with only the SDK's per-chunk types:
/// not an SDK oracle of the transport, but still an independent reading of each chunk.
fn gemini_item(
    n: usize,
    label: String,
    header: &str,
    case: &str,
    path: &str,
    json_array: bool,
    body: Value,
) -> Value {
    let model = path
        .strip_prefix("/v1beta/models/")
        .or_else(|| path.strip_prefix("/v1/models/"))
        .and_then(|rest| rest.split_once(':'))
        .map_or("gemini-2.5-flash", |(model, _)| model);
    let transport = if json_array {
        "raw_json_array"
    } else if path.starts_with("/v1internal") {
        "raw_code_assist"
    } else {
        "sdk"
    };
    json!({
        "tag": format!("g{n}"),
        "label": label,
        "case": case,
        "header": header,
        "model": model,
        "transport": transport,
        "path": path,
        "body": body,
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_genai_sdk_agrees_with_llmtap_on_every_streamed_case() {
    const KEY: &str = "AIzaSy-ORACLE-GENAI-SECRET-33333333333";
    let mut plan = Vec::new();
    for (case, ext) in streamed_cases("gemini") {
        let path = fixture_json("gemini", &case, "expected.json")["path"]
            .as_str()
            .unwrap_or("/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse")
            .to_owned();
        let body = fixture_json("gemini", &case, "request.json");
        let label = format!("gemini/{case}");
        let item = gemini_item(
            plan.len(),
            label,
            SCENARIO,
            &case,
            &path,
            ext == "jsonarray",
            body,
        );
        plan.push(item);
    }
    for host in [
        "generativelanguage.googleapis.com",
        "cloudcode-pa.googleapis.com",
    ] {
        for (case, request) in real_traffic_cases(host) {
            let path = request["path"].as_str().unwrap_or_default().to_owned();
            // The OpenAI-compatible layer on the same host speaks Chat, not Gemini.
            if path.contains("/openai/") {
                continue;
            }
            let label = format!("real-traffic/{case}");
            let array = !path.contains("alt=sse");
            let body = request["body"].clone();
            let item = gemini_item(plan.len(), label, REAL_CASE, &case, &path, array, body);
            plan.push(item);
        }
    }
    let Some(run) = run_oracle(
        "google.genai",
        "oracle_gemini.py",
        ("FAKE_GEMINI_KEY", KEY),
        &json!(plan),
    )
    .await
    else {
        return;
    };
    assert_eq!(run.reports.len(), plan.len());
    run.assert_one_record_per_call();
    // The SDK itself always streamed with `alt=sse`; the JSON array case never did.
    for seen in run.upstream.seen() {
        let Some(tag) = seen.header("x-llmtap-user") else {
            continue;
        };
        let item = plan.iter().find(|p| p["tag"] == tag).unwrap();
        let alt_sse = seen.path_and_query.contains("alt=sse");
        assert_eq!(
            alt_sse,
            item["transport"] != "raw_json_array",
            "{}: {}",
            item["label"],
            seen.path_and_query
        );
    }
    let verdicts: Vec<Verdict> = run
        .reports
        .iter()
        .map(|r| {
            let transport = match str(&r["transport"]) {
                "sdk" => "generate_content_stream",
                "raw_json_array" => "raw JSON array + SDK types",
                _ => "raw Code Assist + SDK types",
            };
            let fixture = format!("{} [{transport}]", str(&r["label"]));
            match gemini_facts(r) {
                Ok(facts) => judge(fixture, facts, run.record_for(r)),
                Err(why) => Verdict::not_compared(fixture, why),
            }
        })
        .collect();
    conclude("Gemini (google-genai SDK)", &verdicts);
}
