//! The official Python SDKs (`anthropic`, `openai`, `google-genai`) and a real WebSocket
//! client (`websockets`, permessage-deflate) through the real `llmtap` binary, each
//! configured only by sourcing what `llmtap env` prints. What the client saw and llmtap's
//! call lines must both match the fake upstream's fixtures. The same SDKs at the providers of
//! the provider table: `AnthropicVertex` (Vertex AI), `AzureOpenAI`, and `OpenAI` with
//! DeepSeek's base URL, each recorded with its provider, API, exact tokens and namespace price.
//!
//! Needs a Python with the packages of `tests/e2e/requirements.txt` (`LLMTAP_PYTHON`, else
//! `python3`; `.ci/run` installs them in a venv). Without them a test says so and passes,
//! unless `LLMTAP_E2E=1` demands them (CI sets that), then it fails.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the tests read CI's LLMTAP_E2E, pass PATH on, and say when they skip"
)]

use std::process::Command;

use crate::support::process::{BIN, Llmtap, python};
use llmtap_fake_upstream::FakeUpstream;
use serde_json::Value;

fn expected(dialect: &str, case: &str) -> Value {
    serde_json::from_slice(&FakeUpstream::fixture_in(dialect, case, "expected.json")).unwrap()
}

/// What one client run produced.
struct Run {
    /// The client's JSON report on stdout.
    client: Value,
    client_stderr: String,
    /// llmtap's call lines (`--calls json`), parsed.
    records: Vec<Value>,
    llmtap_stdout: String,
    llmtap_stderr: String,
    upstream: FakeUpstream,
}

/// Starts the fake upstream and the llmtap binary, sources `llmtap env` in `sh`, runs
/// `script` with `args` and `env`, stops llmtap with SIGTERM. `None` when the Python module
/// is missing and the suite is not required.
async fn run_client(
    module: &str,
    script: &str,
    args: &[&str],
    env: &[(&str, &str)],
) -> Option<Run> {
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
    let quoted: Vec<String> = args.iter().map(|a| format!("'{a}'")).collect();
    let shell = format!(
        "set -e\n{exports}exec '{python}' '{}/tests/e2e/{script}' {}\n",
        env!("CARGO_MANIFEST_DIR"),
        quoted.join(" ")
    );
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
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
    let client_stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    // llmtap's own log too: a client that times out is diagnosed from both sides.
    assert!(
        out.status.success(),
        "{script} failed:\n{client_stderr}\nllmtap's stderr:\n{}",
        llmtap.stderr()
    );
    let client: Value = serde_json::from_slice(&out.stdout).unwrap();
    let llmtap = tokio::task::spawn_blocking(move || {
        assert_eq!(llmtap.terminate().code(), Some(0));
        llmtap
    })
    .await
    .unwrap();
    let llmtap_stdout = llmtap.stdout();
    let records = llmtap_stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    Some(Run {
        client,
        client_stderr,
        records,
        llmtap_stdout,
        llmtap_stderr: llmtap.stderr(),
        upstream,
    })
}

impl Run {
    /// The secret appears in nothing llmtap or the client printed.
    fn assert_secret_kept(&self, secret: &str) {
        for text in [
            &self.llmtap_stdout,
            &self.llmtap_stderr,
            &self.client_stderr,
        ] {
            assert!(!text.contains(secret), "{secret} leaked");
        }
    }

    /// Every recorded call reached the upstream, and every model request the upstream saw
    /// was recorded.
    fn assert_one_record_per_upstream_call(&self) {
        let calls = self
            .upstream
            .seen()
            .into_iter()
            .filter(|s| s.method == "POST")
            .count();
        assert_eq!(self.records.len(), calls, "records: {}", self.llmtap_stdout);
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_python_sdk_works_through_llmtap_and_every_call_is_recorded() {
    const KEY: &str = "sk-ant-api03-PYTHON-SDK-SECRET-0000";
    let Some(run) = run_client(
        "anthropic",
        "anthropic_sdk.py",
        &[],
        &[("FAKE_ANTHROPIC_KEY", KEY)],
    )
    .await
    else {
        return;
    };
    let seen = &run.client;
    // What the SDK got is what the upstream sent (llmtap changed nothing on the way).
    let json_message = expected("anthropic", "json_message")["response"].clone();
    assert_eq!(seen["create"]["id"], json_message["id"]);
    assert_eq!(seen["create"]["model"], json_message["model"]);
    let stream_text = expected("anthropic", "stream_text")["response"].clone();
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

    assert_eq!(
        run.records.len(),
        3,
        "one record per model call: {}",
        run.llmtap_stdout
    );
    run.assert_one_record_per_upstream_call();
    for r in &run.records {
        assert_eq!(r["client"], "anthropic-sdk-python");
        assert_eq!(r["outcome"], "ok");
        assert_eq!(r["parse_error"], Value::Null);
    }
    let (create, stream, count) = (&run.records[0], &run.records[1], &run.records[2]);
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
    run.assert_secret_kept(KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_python_sdk_chat_and_responses_through_llmtap() {
    const KEY: &str = "sk-proj-PYTHON-OPENAI-SECRET-1111";
    let Some(run) = run_client("openai", "openai_sdk.py", &[], &[("FAKE_OPENAI_KEY", KEY)]).await
    else {
        return;
    };
    let seen = &run.client;
    let chat = expected("openai_chat", "json_completion")["response"].clone();
    assert_eq!(seen["chat"]["id"], chat["id"]);
    assert_eq!(seen["chat"]["prompt_tokens"], chat["usage"]["input"]);
    let with_usage = expected("openai_chat", "stream_usage")["response"].clone();
    assert_eq!(
        seen["chat_stream_usage"]["usage"]["prompt_tokens"],
        with_usage["usage"]["input"]
    );
    assert_eq!(
        seen["chat_stream_no_usage"]["usage"],
        Value::Null,
        "the SDK got no usage either"
    );
    let responses = expected("openai_responses", "json_response")["response"].clone();
    assert_eq!(seen["responses"]["id"], responses["id"]);
    let streamed = expected("openai_responses", "stream_text")["response"].clone();
    assert_eq!(seen["responses_stream"]["id"], streamed["id"]);
    assert_eq!(
        seen["responses_stream"]["output_tokens"],
        streamed["usage"]["output"]
    );

    assert_eq!(run.records.len(), 5, "{}", run.llmtap_stdout);
    run.assert_one_record_per_upstream_call();
    let cases = [
        ("openai_chat", "json_completion", false),
        ("openai_chat", "stream_usage", true),
        ("openai_chat", "stream_no_usage", true),
        ("openai_responses", "json_response", false),
        ("openai_responses", "stream_text", true),
    ];
    for (r, (dialect, case, stream)) in run.records.iter().zip(cases) {
        assert_eq!(r["client"], "openai-python", "{case}");
        assert_eq!(r["provider"], "openai");
        assert_eq!(r["outcome"], "ok", "{case}");
        assert_eq!(r["stream"], stream, "{case}");
        let want = expected(dialect, case)["response"].clone();
        assert_eq!(r["response"]["usage"], want["usage"], "{dialect}/{case}");
        assert_eq!(r["response"]["id"], want["id"], "{dialect}/{case}");
        if stream {
            assert!(r["ttft"].as_f64().unwrap() > 0.0, "{case}");
        }
    }
    assert_eq!(
        run.records[2]["usage_missing"], true,
        "include_usage off: recorded as missing"
    );
    assert_eq!(run.records[1]["usage_missing"], false);
    // llmtap never asked for usage on the client's behalf.
    let no_usage = run
        .upstream
        .seen()
        .into_iter()
        .filter(|s| s.path_and_query.starts_with("/v1/chat/completions"))
        .nth(2)
        .unwrap();
    assert!(!String::from_utf8_lossy(&no_usage.body).contains("include_usage"));
    run.assert_secret_kept(KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn google_genai_sdk_through_llmtap() {
    const KEY: &str = "AIzaSy-PYTHON-GENAI-SECRET-2222222222";
    let Some(run) = run_client(
        "google.genai",
        "google_genai_sdk.py",
        &[],
        &[("FAKE_GEMINI_KEY", KEY)],
    )
    .await
    else {
        return;
    };
    let seen = &run.client;
    assert_eq!(run.records.len(), 2, "{}", run.llmtap_stdout);
    run.assert_one_record_per_upstream_call();
    let paths: Vec<String> = run
        .upstream
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    for (r, case) in run.records.iter().zip(["json_generate", "stream_sse"]) {
        assert_eq!(r["provider"], "gcp.gemini");
        assert_eq!(r["client"], "google-genai-python", "{case}");
        assert_eq!(r["outcome"], "ok", "{case}: {r}");
        assert_eq!(
            r["request"]["model"], "gemini-2.5-flash",
            "model from the path"
        );
        let want = expected("gemini", case)["response"].clone();
        assert_eq!(r["response"]["usage"], want["usage"], "{case}");
        assert!(!r["path"].as_str().unwrap().contains('?'));
    }
    assert_eq!(run.records[1]["stream"], true);
    assert!(
        seen["generate"]["prompt_tokens"]
            .as_u64()
            .is_some_and(|n| n > 0),
        "{seen}"
    );
    assert!(
        seen["stream"]["chunks"].as_u64().unwrap() > 1,
        "streamed: {seen}"
    );
    assert!(
        paths.iter().any(|p| p.contains(":streamGenerateContent")),
        "{paths:?}"
    );
    run.assert_secret_kept(KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_real_websocket_client_with_permessage_deflate_through_llmtap() {
    let frames = format!(
        "{}/tests/fixtures/openai_responses/ws_session.frames.jsonl",
        env!("CARGO_MANIFEST_DIR")
    );
    let Some(run) = run_client("websockets", "ws_client.py", &[&frames], &[]).await else {
        return;
    };
    let extensions = run.client["extensions"].as_str().unwrap_or_default();
    assert!(
        extensions.contains("permessage-deflate"),
        "compression negotiated: {extensions:?}"
    );
    assert!(
        run.upstream.ws_messages().iter().any(|m| m.compressed),
        "frames really were compressed"
    );
    let turns = FakeUpstream::ws_turns("ws_session");
    let received = run.client["received"].as_array().unwrap();
    for (turn, got) in turns.iter().zip(received) {
        let want: Vec<Value> = turn
            .server
            .iter()
            .map(|s| serde_json::from_str(s).unwrap())
            .collect();
        assert_eq!(
            got.as_array().unwrap(),
            &want,
            "the client got every server message unchanged"
        );
    }
    let want: Vec<Value> = serde_json::from_slice(&FakeUpstream::fixture_in(
        "openai_responses",
        "ws_session",
        "expected.json",
    ))
    .unwrap();
    assert_eq!(
        run.records.len(),
        want.len(),
        "one record per response.create: {}",
        run.llmtap_stdout
    );
    for (r, w) in run.records.iter().zip(&want) {
        assert_eq!(r["outcome"], "ok");
        assert_eq!(r["client"], "codex");
        assert_eq!(r["conversation_id"], "ws-python-session");
        assert_eq!(
            r["parse_error"],
            Value::Null,
            "compressed frames were decoded"
        );
        assert_eq!(r["response"]["usage"], w["response"]["usage"]);
        assert_eq!(r["response"]["tools_called"], w["response"]["tools_called"]);
    }
}

// ------------------------------------------------------------------------------------------
// The provider table (issue 14): the same SDKs at Vertex AI, Azure OpenAI and DeepSeek
// ------------------------------------------------------------------------------------------

/// The text of a fixture's streamed deltas: Anthropic `delta.text`, Chat
/// `choices[].delta.content`.
fn streamed_text(dialect: &str, case: &str) -> String {
    let sse = String::from_utf8(FakeUpstream::fixture_in(dialect, case, "sse")).unwrap();
    sse.lines()
        .filter_map(|l| l.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<Value>(d).ok())
        .filter_map(|v| {
            v["delta"]["text"]
                .as_str()
                .or_else(|| v["choices"][0]["delta"]["content"].as_str())
                .map(str::to_owned)
        })
        .collect()
}

/// A call's fixture (folder, case) and the price (namespace, model) it must have, `None`
/// where the table has none.
type Priced<'a> = (&'a str, &'a str, Option<(&'a str, &'a str)>);

impl Run {
    /// Each record is the case's call as `provider` / `api` recorded it: outcome, facts, the price from `price`'s namespace and model (the oracle of
    /// `support::prices`), or unknown; the path without its query.
    fn assert_records(&self, provider: &str, api: &str, cases: &[Priced<'_>]) {
        assert_eq!(
            self.records.len(),
            cases.len(),
            "one record per call: {}",
            self.llmtap_stdout
        );
        self.assert_one_record_per_upstream_call();
        for (r, (dialect, case, price)) in self.records.iter().zip(cases) {
            let name = format!("{dialect}/{case}");
            assert_eq!(r["provider"], provider, "{name}: {r}");
            assert_eq!(r["api"], api, "{name}");
            assert_eq!(r["outcome"], "ok", "{name}: {r}");
            assert_eq!(r["parse_error"], Value::Null, "{name}");
            assert!(!r["path"].as_str().unwrap().contains('?'), "{name}");
            let want = expected(dialect, case);
            for (key, value) in want["response"].as_object().unwrap() {
                if key == "usage" {
                    for (k, v) in value.as_object().unwrap() {
                        assert_eq!(&r["response"]["usage"][k], v, "{name}: usage.{k}");
                    }
                } else {
                    assert_eq!(&r["response"][key], value, "{name}: {key}");
                }
            }
            assert_eq!(r["request"]["model"], want["request"]["model"], "{name}");
            assert_eq!(r["stream"], want["request"]["stream"], "{name}");
            match price {
                Some((namespace, model)) => {
                    let cost = r["cost_usd"]
                        .as_f64()
                        .unwrap_or_else(|| panic!("{name}: {r}"));
                    let want =
                        crate::support::prices::cost(namespace, model, &r["response"]["usage"]);
                    assert!(
                        crate::support::prices::close(cost, want),
                        "{name}: {cost} vs {want}"
                    );
                }
                None => assert_eq!(r["cost_usd"], Value::Null, "{name}"),
            }
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_vertex_sdk_through_llmtap_is_recorded_as_vertex_ai() {
    const TOKEN: &str = "ya29.FAKE-VERTEX-SDK-ACCESS-TOKEN-5555";
    let Some(run) = run_client(
        "anthropic",
        "anthropic_vertex_sdk.py",
        &[],
        &[("FAKE_VERTEX_TOKEN", TOKEN)],
    )
    .await
    else {
        return;
    };
    let seen = &run.client;
    assert_eq!(
        seen["base_url"], "https://us-east5-aiplatform.googleapis.com/v1/",
        "the real host, reached through HTTPS_PROXY"
    );
    // What the SDK got is what the upstream sent.
    let json = expected("anthropic", "vertex_json_message")["response"].clone();
    assert_eq!(seen["create"]["id"], json["id"]);
    assert_eq!(seen["create"]["model"], json["model"]);
    assert_eq!(seen["create"]["output_tokens"], json["usage"]["output"]);
    let streamed = expected("anthropic", "vertex_stream_text")["response"].clone();
    assert_eq!(seen["stream"]["id"], streamed["id"]);
    assert_eq!(seen["stream"]["output_tokens"], streamed["usage"]["output"]);
    assert_eq!(
        seen["stream"]["text"],
        streamed_text("anthropic", "vertex_stream_text")
    );

    let price = Some(("vertex_ai", "claude-sonnet-4-5@20250929"));
    run.assert_records(
        "gcp.vertex_ai",
        "anthropic_messages",
        &[
            ("anthropic", "vertex_json_message", price),
            ("anthropic", "vertex_stream_text", price),
        ],
    );
    let seen = run.upstream.seen();
    let paths: Vec<&str> = seen.iter().map(|s| s.path_and_query.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/projects/fake-project-314159/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:rawPredict",
            "/v1/projects/fake-project-314159/locations/us-east5/publishers/anthropic/models/claude-sonnet-4-5@20250929:streamRawPredict",
        ]
    );
    for s in &seen {
        // Forwarded untouched, and never recorded.
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {TOKEN}").as_str())
        );
        // Vertex AI's body: the version in the body, the model only in the path.
        let body: Value = serde_json::from_slice(&s.body).unwrap();
        assert!(body["anthropic_version"].is_string(), "{body}");
        assert!(body.get("model").is_none(), "{body}");
    }
    for r in &run.records {
        assert_eq!(r["host"], "us-east5-aiplatform.googleapis.com");
    }
    run.assert_secret_kept(TOKEN);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn azure_openai_sdk_through_llmtap_is_recorded_as_azure_with_its_extra_chunks() {
    const KEY: &str = "9a8b7c6d5e4f30211203f4e5d6c7b8a9";
    let Some(run) = run_client(
        "openai",
        "openai_providers_sdk.py",
        &["azure"],
        &[("FAKE_PROVIDER_KEY", KEY)],
    )
    .await
    else {
        return;
    };
    let seen = &run.client;
    let chat = expected("azure_openai", "json_chat")["response"].clone();
    assert_eq!(seen["chat"]["id"], chat["id"]);
    assert_eq!(seen["chat"]["prompt_tokens"], chat["usage"]["input"]);
    let streamed = expected("azure_openai", "stream_chat")["response"].clone();
    assert_eq!(
        seen["stream"]["usage"]["prompt_tokens"],
        streamed["usage"]["input"]
    );
    assert_eq!(
        seen["stream"]["text"],
        streamed_text("azure_openai", "stream_chat")
    );
    // The SDK saw Azure's extra chunks (the model-less prompt filter chunk, the usage chunk).
    assert_eq!(seen["stream"]["chunks_without_choices"], 2, "{seen}");
    assert_eq!(
        seen["stream"]["models"],
        serde_json::json!(["", "gpt-4o-2024-11-20"])
    );

    let price = Some(("azure", "gpt-4o-2024-11-20"));
    run.assert_records(
        "azure.ai.openai",
        "openai_chat_completions",
        &[
            ("azure_openai", "json_chat", price),
            ("azure_openai", "stream_chat", price),
        ],
    );
    for s in run.upstream.seen() {
        assert_eq!(
            s.path_and_query,
            "/openai/deployments/gpt-4o-prod/chat/completions?api-version=2024-10-21"
        );
        assert_eq!(s.header("api-key"), Some(KEY), "forwarded untouched");
    }
    for r in &run.records {
        assert_eq!(
            r["path"],
            "/openai/deployments/gpt-4o-prod/chat/completions"
        );
    }
    run.assert_secret_kept(KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn openai_sdk_at_deepseek_through_llmtap_is_recorded_as_deepseek() {
    const KEY: &str = "sk-FAKE-DEEPSEEK-SDK-KEY-6666";
    let Some(run) = run_client(
        "openai",
        "openai_providers_sdk.py",
        &["deepseek"],
        &[("FAKE_PROVIDER_KEY", KEY)],
    )
    .await
    else {
        return;
    };
    let seen = &run.client;
    let chat = expected("openai_compatible", "deepseek_json")["response"].clone();
    assert_eq!(seen["chat"]["id"], chat["id"]);
    assert_eq!(seen["chat"]["prompt_tokens"], chat["usage"]["input"]);
    assert_eq!(
        seen["stream"]["text"],
        streamed_text("openai_compatible", "deepseek_stream")
    );

    let price = Some(("deepseek", "deepseek-chat"));
    run.assert_records(
        "deepseek",
        "openai_chat_completions",
        &[
            ("openai_compatible", "deepseek_json", price),
            ("openai_compatible", "deepseek_stream", price),
        ],
    );
    for s in run.upstream.seen() {
        assert_eq!(s.path_and_query, "/chat/completions");
        assert_eq!(
            s.header("authorization"),
            Some(format!("Bearer {KEY}").as_str())
        );
    }
    run.assert_secret_kept(KEY);
}

// ------------------------------------------------------------------------------------------
// Amazon Bedrock: boto3 and the `anthropic` SDK's Bedrock client, signed with SigV4, through
// `llmtap env` (which exports `AWS_CA_BUNDLE`: botocore reads neither `SSL_CERT_FILE` nor
// `REQUESTS_CA_BUNDLE`).
// ------------------------------------------------------------------------------------------

const AWS_KEY_ID: &str = "AKIAFAKEE2EBEDROCK01";
const AWS_SECRET: &str = "fAkE/SeCrEt/BeDrOcK/E2E/0000000000000000";
const AWS_SESSION: &str = "FwoGZXIvYXdzEFAKE-E2E-SESSION-TOKEN-7777";

impl Run {
    /// Each record is the case's Bedrock call: provider `aws.bedrock`, its API, the case's
    /// response facts, priced from the `bedrock` namespace by the path's model.
    fn assert_bedrock_records(&self, cases: &[(&str, &str, &str)]) {
        assert_eq!(self.records.len(), cases.len(), "{}", self.llmtap_stdout);
        self.assert_one_record_per_upstream_call();
        for (r, (folder, case, api)) in self.records.iter().zip(cases) {
            let name = format!("{folder}/{case}");
            assert_eq!(r["provider"], "aws.bedrock", "{name}: {r}");
            assert_eq!(r["api"], *api, "{name}");
            assert_eq!(r["outcome"], "ok", "{name}: {r}");
            assert_eq!(r["parse_error"], Value::Null, "{name}");
            let want = expected(folder, case);
            assert_eq!(r["response"]["usage"], want["response"]["usage"], "{name}");
            let model = r["request"]["model"].as_str().unwrap();
            let cost = r["cost_usd"]
                .as_f64()
                .unwrap_or_else(|| panic!("{name}: {r}"));
            let table = crate::support::prices::cost("bedrock", model, &r["response"]["usage"]);
            assert!(
                crate::support::prices::close(cost, table),
                "{name}: {cost} vs {table}"
            );
        }
    }

    /// No AWS credential, nor the SigV4 signature of any request, in what llmtap printed.
    fn assert_aws_secrets_kept(&self) {
        for secret in [AWS_KEY_ID, AWS_SECRET, AWS_SESSION] {
            self.assert_secret_kept(secret);
        }
        for s in self.upstream.seen() {
            let auth = s.header("authorization").unwrap_or_default();
            assert!(
                auth.starts_with(&format!("AWS4-HMAC-SHA256 Credential={AWS_KEY_ID}/")),
                "signed with SigV4: {auth}"
            );
            let signature = auth.rsplit_once("Signature=").unwrap().1;
            self.assert_secret_kept(signature);
            if let Some(token) = s.header("x-amz-security-token") {
                self.assert_secret_kept(token);
            }
        }
    }
}

fn aws_env() -> [(&'static str, &'static str); 3] {
    [
        ("AWS_ACCESS_KEY_ID", AWS_KEY_ID),
        ("AWS_SECRET_ACCESS_KEY", AWS_SECRET),
        ("AWS_SESSION_TOKEN", AWS_SESSION),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn boto3_bedrock_runtime_streams_through_llmtap_are_recorded_as_aws_bedrock() {
    let Some(run) = run_client("boto3", "bedrock_sdk.py", &["boto3"], &aws_env()).await else {
        return;
    };
    let seen = &run.client;
    let converse = expected("bedrock_converse", "stream_text")["response"].clone();
    assert_eq!(
        seen["converse_stream"]["usage"]["inputTokens"],
        converse["usage"]["input"]
    );
    assert_eq!(
        seen["converse_stream"]["usage"]["outputTokens"],
        converse["usage"]["output"]
    );
    let invoke = expected("bedrock_invoke", "stream_anthropic_cache")["response"].clone();
    assert_eq!(seen["invoke_stream"]["id"], invoke["id"]);
    run.assert_bedrock_records(&[
        ("bedrock_converse", "stream_text", "bedrock_converse"),
        ("bedrock_invoke", "stream_anthropic_cache", "bedrock_invoke"),
    ]);
    let paths: Vec<String> = run
        .upstream
        .seen()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert_eq!(
        paths,
        [
            "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
            "/model/us.anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
        ]
    );
    run.assert_aws_secrets_kept();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn anthropic_bedrock_sdk_through_llmtap_is_recorded_as_aws_bedrock() {
    let Some(run) = run_client("anthropic", "bedrock_sdk.py", &["anthropic"], &aws_env()).await
    else {
        return;
    };
    let seen = &run.client;
    let json = expected("bedrock_invoke", "json_anthropic")["response"].clone();
    assert_eq!(seen["create"]["id"], json["id"]);
    let streamed = expected("bedrock_invoke", "stream_anthropic_cache")["response"].clone();
    assert_eq!(seen["stream"]["id"], streamed["id"]);
    assert_eq!(seen["stream"]["output_tokens"], streamed["usage"]["output"]);
    run.assert_bedrock_records(&[
        ("bedrock_invoke", "json_anthropic", "bedrock_invoke"),
        ("bedrock_invoke", "stream_anthropic_cache", "bedrock_invoke"),
    ]);
    run.assert_aws_secrets_kept();
}
