//! A real GenAI backend reads llmtap's spans: Arize Phoenix (`arize-phoenix` 20.26.1, run
//! offline on loopback as a process, `tests/e2e/phoenix/`) is the OTLP receiver; a call of
//! every dialect and a tool round trip go through llmtap; Phoenix's REST API must show each
//! call as an LLM span with its model, tokens (cache reads and writes too), provider and
//! session, the tool run as a TOOL span, and none of llmtap's own diagnostics.
//!
//! Needs Phoenix's venv: `LLMTAP_PHOENIX_PYTHON` (`.ci/run` installs it in
//! `target/phoenix-venv`, the default). Without it the test says so and passes, unless
//! `LLMTAP_E2E=1` demands it.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the test reads CI's LLMTAP_E2E and its Phoenix path, and says when it skips"
)]

use std::{
    path::PathBuf,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use serde_json::{Value, json};

use crate::support::{
    client::{self, collect},
    harness::{self, get},
};
use llmtap_fake_upstream::FakeUpstream;

/// Kills Phoenix when the test ends, however it ends.
struct Phoenix(std::process::Child);

impl Drop for Phoenix {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn python() -> Option<PathBuf> {
    let python = std::env::var_os("LLMTAP_PHOENIX_PYTHON")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("target/phoenix-venv/bin/python")
        });
    python.exists().then_some(python)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// Starts Phoenix on loopback with everything that would reach out switched off, and waits
/// until it answers `/readyz` (two minutes at most: a first start migrates its database).
async fn start_phoenix(python: &PathBuf, dir: &std::path::Path) -> (Phoenix, std::net::SocketAddr) {
    let (http, grpc) = (free_port(), free_port());
    let shim =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/phoenix/phoenix_loopback.py");
    let log = std::fs::File::create(dir.join("phoenix.log")).unwrap();
    let child = Command::new(python)
        .arg(shim)
        .arg("serve")
        .env_clear()
        .env("PATH", "/usr/local/bin:/usr/bin:/bin")
        .env("HOME", dir)
        .env("LANG", "C.UTF-8")
        .env("PHOENIX_HOST", "127.0.0.1")
        .env("PHOENIX_PORT", http.to_string())
        .env("PHOENIX_GRPC_PORT", grpc.to_string())
        .env("PHOENIX_WORKING_DIR", dir)
        .env(
            "PHOENIX_SQL_DATABASE_URL",
            format!("sqlite:///{}", dir.join("phoenix.db").display()),
        )
        .env("PHOENIX_TELEMETRY_ENABLED", "false")
        .env("PHOENIX_ALLOW_EXTERNAL_RESOURCES", "false")
        .env("PHOENIX_DISABLE_AGENT_ASSISTANT", "true")
        .env("PHOENIX_ENABLE_MCP_SERVER", "false")
        .env("PHOENIX_ENABLE_AUTH", "false")
        .env("PHOENIX_ENABLE_PROMETHEUS", "false")
        .env("PHOENIX_LOG_MIGRATIONS", "false")
        .stdin(Stdio::null())
        .stdout(log.try_clone().unwrap())
        .stderr(log)
        .spawn()
        .expect("start phoenix");
    let mut phoenix = Phoenix(child);
    let addr: std::net::SocketAddr = format!("127.0.0.1:{http}").parse().unwrap();
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Ok(_)) =
            tokio::time::timeout(Duration::from_secs(1), tokio::net::TcpStream::connect(addr)).await
            && get(addr, "/readyz").await.0 == 200
        {
            return (phoenix, addr);
        }
        if let Ok(Some(status)) = phoenix.0.try_wait() {
            let log = std::fs::read_to_string(dir.join("phoenix.log")).unwrap_or_default();
            panic!("phoenix exited ({status}) before it was ready:\n{log}");
        }
        assert!(Instant::now() < deadline, "phoenix not ready in 120 s");
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
}

/// Every span of `project` (404, no project yet, is no span).
async fn spans(phoenix: std::net::SocketAddr, project: &str) -> Vec<Value> {
    let (status, body) = get(phoenix, &format!("/v1/projects/{project}/spans?limit=1000")).await;
    if status == 404 {
        return Vec::new();
    }
    assert_eq!(status, 200, "{body}");
    let v: Value = serde_json::from_str(&body).unwrap();
    v["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn phoenix_shows_every_dialect_as_llm_spans_and_tool_runs_as_tool_spans() {
    let Some(python) = python() else {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but Phoenix's venv is missing (LLMTAP_PHOENIX_PYTHON, or target/phoenix-venv)"
        );
        eprintln!("skipped: Arize Phoenix is not installed (set LLMTAP_PHOENIX_PYTHON)");
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let (_phoenix, addr) = start_phoenix(&python, dir.path()).await;
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(
        &upstream,
        &[
            "--otlp-endpoint",
            &format!("http://{addr}"),
            "--user",
            "ana",
        ],
    )
    .await;

    let mut records = Vec::new();
    let cache = (
        "api.anthropic.com",
        "/v1/messages",
        "anthropic",
        "stream_cache",
    );
    for (host, path, dialect, case) in std::iter::once(cache).chain(harness::STREAMED_DIALECTS) {
        let mut conn = client::via_proxy(tap.proxy, host, &tap.ca_pem, false).await;
        let body = FakeUpstream::fixture_in(dialect, case, "request.json");
        let res = collect(
            conn.send(client::post(
                host,
                path,
                &body,
                &[("x-fake-scenario", case)],
            ))
            .await
            .unwrap(),
        )
        .await;
        assert!(res.end.is_ok(), "{dialect}/{case}");
        records.push(tap.next_record().await);
    }
    // The tool round trip: the Bash call stream_tool_use asked for comes back with its result.
    let tool_id = harness::TOOL_USE_ID;
    let mut conn = client::via_proxy(tap.proxy, "api.anthropic.com", &tap.ca_pem, false).await;
    let body = harness::tool_result_follow_up();
    let res = collect(
        conn.send(client::post(
            "api.anthropic.com",
            "/v1/messages",
            &body,
            &[("x-fake-scenario", "stream_text")],
        ))
        .await
        .unwrap(),
    )
    .await;
    assert!(res.end.is_ok());
    let follow_record = tap.next_record().await;
    assert_eq!(
        follow_record.agent_loop.tool_executions.len(),
        1,
        "the tool run was seen"
    );
    records.push(follow_record);

    // Phoenix files llmtap's spans under the project its resource names: `llmtap`.
    let want = records.len() + 1;
    let deadline = Instant::now() + Duration::from_secs(60);
    let all = loop {
        let all = spans(addr, "llmtap").await;
        if all.len() >= want {
            break all;
        }
        assert!(
            Instant::now() < deadline,
            "Phoenix has {} of {want} spans: {all:#?}",
            all.len()
        );
        tokio::time::sleep(Duration::from_millis(500)).await;
    };
    assert_eq!(all.len(), want, "one span per call and one per tool run");

    let attr = |span: &Value, key: &str| span["attributes"].get(key).cloned();
    for r in &records {
        let api = r.api;
        let input = r.response.usage.input.map(|v| v as i64);
        let span = all
            .iter()
            .find(|s| {
                attr(s, "llmtap.api") == Some(json!(api))
                    && attr(s, "gen_ai.usage.input_tokens").and_then(|v| v.as_i64()) == input
                    && attr(s, "gen_ai.response.id") == r.response.id.clone().map(Value::from)
            })
            .unwrap_or_else(|| panic!("no span for {api} {input:?}: {all:#?}"));
        let what = format!("{api} {}", span["name"]);
        assert_eq!(span["span_kind"], "LLM", "{what}");
        let request_model = r.request.as_ref().and_then(|q| q.model.clone());
        if let Some(model) = request_model {
            assert_eq!(attr(span, "llm.model_name"), Some(json!(model)), "{what}");
        }
        // Kept as sent, and mapped to OpenInference's own provider names (`gcp.gemini` is
        // `google` there, `aws.bedrock` is `aws`).
        assert_eq!(
            attr(span, "gen_ai.provider.name"),
            Some(json!(r.provider.name.to_string())),
            "{what}"
        );
        let provider = attr(span, "llm.provider");
        assert!(
            provider
                .as_ref()
                .and_then(Value::as_str)
                .is_some_and(|p| !p.is_empty()),
            "{what}: llm.provider {provider:?}"
        );
        eprintln!("phoenix: {} -> llm.provider {provider:?}", r.provider.name);
        let u = &r.response.usage;
        let count = |key: &str| attr(span, key).and_then(|v| v.as_u64());
        assert_eq!(count("llm.token_count.prompt"), u.input, "{what}");
        assert_eq!(count("llm.token_count.completion"), u.output, "{what}");
        if let Some(read) = u.cache_read.filter(|v| *v > 0) {
            assert_eq!(
                count("llm.token_count.prompt_details.cache_read"),
                Some(read),
                "{what}"
            );
        }
        let written = u.cache_write_5m.unwrap_or(0) + u.cache_write_1h.unwrap_or(0);
        if written > 0 {
            assert_eq!(
                count("llm.token_count.prompt_details.cache_write"),
                Some(written),
                "{what}: Phoenix reads gen_ai.usage.cache_creation.input_tokens"
            );
        }
        if let Some(session) = &r.conversation_id {
            assert_eq!(attr(span, "session.id"), Some(json!(session)), "{what}");
        }
        assert_eq!(attr(span, "user.id"), Some(json!("ana")), "{what}");
    }
    // Every dialect was there.
    let apis: std::collections::BTreeSet<&str> = records.iter().map(|r| r.api).collect();
    assert_eq!(apis.len(), 7, "{apis:?}");

    let tool = all
        .iter()
        .find(|s| s["name"] == "execute_tool Bash")
        .unwrap_or_else(|| panic!("no tool span: {all:#?}"));
    assert_eq!(tool["span_kind"], "TOOL");
    assert_eq!(attr(tool, "tool.name"), Some(json!("Bash")));
    assert_eq!(attr(tool, "tool.id"), Some(json!(tool_id)));

    tap.shutdown().await;

    // The binary, which does emit its diagnostics (`llmtap.start` at least) when asked to:
    // by default none reaches Phoenix, only its call.
    let home = tempfile::tempdir().unwrap();
    let resolve = format!("api.anthropic.com:443:{}", upstream.addr);
    let mut binary = crate::support::process::Llmtap::spawn(
        home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--otlp-endpoint",
            &format!("http://{addr}"),
        ],
    );
    let ca = get(binary.admin, "/ca.pem").await.1;
    let mut conn = client::via_proxy(binary.proxy, "api.anthropic.com", &ca, false).await;
    let body = FakeUpstream::fixture_in("anthropic", "stream_text", "request.json");
    let res = collect(
        conn.send(client::post(
            "api.anthropic.com",
            "/v1/messages",
            &body,
            &[],
        ))
        .await
        .unwrap(),
    )
    .await;
    assert!(res.end.is_ok());
    // SIGTERM flushes every span llmtap holds before it exits.
    let status = tokio::task::spawn_blocking(move || binary.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let deadline = Instant::now() + Duration::from_secs(30);
    while spans(addr, "llmtap").await.len() < want + 1 {
        assert!(
            Instant::now() < deadline,
            "the binary's call never reached Phoenix"
        );
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    // Anything else it sent was ingested by now, too (Phoenix takes ~0.4 s).
    tokio::time::sleep(Duration::from_secs(2)).await;

    // llmtap's own diagnostics (llmtap.start, parse failures) are in no project.
    let (status, body) = get(addr, "/v1/projects").await;
    assert_eq!(status, 200);
    let projects: Value = serde_json::from_str(&body).unwrap();
    for project in projects["data"].as_array().unwrap() {
        let name = project["name"].as_str().unwrap();
        for span in spans(addr, name).await {
            let span_name = span["name"].as_str().unwrap_or_default();
            assert!(
                !span_name.starts_with("llmtap."),
                "a diagnostic span in project {name}: {span}"
            );
            assert_eq!(name, "llmtap", "a span outside llmtap's project: {span}");
        }
    }
}
