//! The official `anthropic` Python SDK through the real `llmtap` binary, configured only by
//! sourcing what `llmtap env` prints. The SDK's results and llmtap's call lines must both
//! match the fake upstream's fixtures.
//!
//! Needs a Python with `anthropic` (`LLMTAP_PYTHON`, else `python3`; `.ci/run` installs it). Without it the test
//! says so and passes, unless `LLMTAP_E2E=1` demands it (CI sets that), then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the test reads CI's LLMTAP_E2E, passes PATH on, and says when it skips"
)]

mod support;

use std::process::Command;

use serde_json::Value;
use support::{
    process::{BIN, Llmtap},
    upstream::FakeUpstream,
};

const KEY: &str = "sk-ant-api03-PYTHON-SDK-SECRET-0000";

/// The interpreter that has `anthropic`, as an absolute path (the test clears the env, and
/// pyenv shims need theirs). `LLMTAP_PYTHON` names it (`.ci/run` points it at its venv).
fn python() -> Option<String> {
    let python = std::env::var("LLMTAP_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let out = Command::new(python)
        .args(["-c", "import anthropic, sys; print(sys.executable)"])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_owned())
}

fn expected(case: &str) -> Value {
    serde_json::from_slice(&FakeUpstream::fixture(case, "expected.json")).unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_python_sdk_works_through_llmtap_and_every_call_is_recorded() {
    let Some(python) = python() else {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but python3 cannot import anthropic"
        );
        eprintln!("skipped: python3 with the anthropic package is not installed");
        return;
    };
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let resolve = format!("api.anthropic.com:443:{}", upstream.addr);
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

    let env = Command::new(BIN)
        .env_clear()
        .env("HOME", home.path())
        .args(["env", "--listen", &llmtap.proxy.to_string()])
        .output()
        .unwrap();
    assert!(env.status.success());
    let env_lines = String::from_utf8(env.stdout).unwrap();
    let script = format!(
        "set -e\n{env_lines}exec '{python}' '{}/tests/e2e/anthropic_sdk.py'\n",
        env!("CARGO_MANIFEST_DIR")
    );
    let sdk = tokio::task::spawn_blocking(move || {
        Command::new("sh")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", "/nonexistent")
            .env("FAKE_ANTHROPIC_KEY", KEY)
            .args(["-c", &script])
            .output()
            .unwrap()
    })
    .await
    .unwrap();
    let sdk_err = String::from_utf8_lossy(&sdk.stderr).into_owned();
    assert!(sdk.status.success(), "SDK failed:\n{sdk_err}");
    let seen: Value = serde_json::from_slice(&sdk.stdout).unwrap();

    // What the SDK got is what the upstream sent (llmtap changed nothing on the way).
    let json_message = expected("json_message")["response"].clone();
    assert_eq!(seen["create"]["id"], json_message["id"]);
    assert_eq!(seen["create"]["model"], json_message["model"]);
    let stream_text = expected("stream_text")["response"].clone();
    assert_eq!(seen["stream"]["id"], stream_text["id"]);
    assert_eq!(
        seen["stream"]["output_tokens"],
        stream_text["usage"]["output"]
    );
    let sse = String::from_utf8(FakeUpstream::fixture("stream_text", "sse")).unwrap();
    let deltas: String = sse
        .lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| v["delta"]["text"].as_str().map(str::to_owned))
        .collect();
    assert_eq!(seen["stream"]["text"], deltas);

    assert_eq!(llmtap.terminate().code(), Some(0));
    let stdout = llmtap.stdout();
    let records: Vec<Value> = stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(records.len(), 3, "one record per model call: {stdout}");
    assert_eq!(
        upstream.seen().len(),
        3,
        "the upstream saw exactly the recorded calls"
    );
    for r in &records {
        assert_eq!(r["client"], "anthropic-sdk-python");
        assert_eq!(r["outcome"], "ok");
        assert_eq!(r["parse_error"], Value::Null);
    }
    let (create, stream, count) = (&records[0], &records[1], &records[2]);
    assert_eq!(create["response"], json_message);
    assert_eq!(create["request"]["model"], "claude-haiku-4-5-20251001");
    assert_eq!(create["request"]["system_chars"], "You are terse.".len());
    assert_eq!(stream["response"], stream_text);
    assert_eq!(stream["stream"], true);
    assert!(stream["ttft"].as_f64().unwrap() > 0.0);
    assert!(stream["ttft"].as_f64() <= stream["duration"].as_f64());
    assert_eq!(count["operation"], "count_tokens");
    assert_eq!(
        count["response"]["usage"]["input"],
        seen["count_tokens"]["input_tokens"]
    );

    let stderr = llmtap.stderr();
    for text in [&stdout, &stderr, &sdk_err] {
        assert!(!text.contains(KEY), "the API key leaked");
    }
}
