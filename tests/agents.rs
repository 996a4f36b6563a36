//! The real agents end to end: Claude Code (`claude -p`), Codex CLI (`codex exec`, over its
//! default WebSocket transport and over HTTPS SSE) and Gemini CLI (`gemini -p`), each with a
//! fake API key, configured only by what `llmtap env` prints, through the real `llmtap`
//! binary, against the fake upstream in agent mode ([`FakeUpstream::start_agent`]). Each
//! completes a task that needs one shell tool call and a second model turn that carries the
//! tool result. Claude Code on Vertex AI and Codex at an Azure OpenAI resource run the same
//! task, recorded with those providers and priced from their namespaces. The tool's run is
//! checked as the agent loop sees it (`Run::check_tool_run`): one `tool_executions` entry on
//! the call that carried the result, timed from the end of the response that asked for it,
//! and one `execute_tool` span with that duration in the same trace.
//!
//! The agents come from npm, versions pinned in `tests/e2e/agents/package.json` and its
//! `package-lock.json`, installed into `target/agents` (`LLMTAP_AGENTS_DIR` overrides) by
//! `tests/e2e/agents/install.sh`. Without them a test says so and passes, unless
//! `LLMTAP_E2E=1` demands them (CI sets that): then the suite installs them itself (once,
//! reused while the lock file is unchanged) and fails if it cannot.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the tests read CI's LLMTAP_E2E, pass PATH on, wait on child processes, and say when they skip"
)]

use std::{
    collections::BTreeSet,
    os::unix::process::CommandExt as _,
    path::{Path, PathBuf},
    process::{Command, Stdio},
    sync::{Arc, Mutex, OnceLock},
    time::{Duration, Instant},
};

use crate::support::{
    otlp::{Received, Receiver},
    process::{BIN, Llmtap},
};
use llmtap_fake_upstream::{
    FakeUpstream, Seen,
    agent::{self, Api, Turn},
};
use serde_json::Value;

/// Longest an agent may run before the test fails (and its process group is killed).
const AGENT_TIMEOUT: Duration = Duration::from_secs(120);

/// The prompt every agent gets. The fake model ignores it; a real one would do the same.
const PROMPT: &str = "Run the shell command that prints the llmtap e2e marker, then report it.";

// ------------------------------------------------------------------------------------------
// Installing the agents
// ------------------------------------------------------------------------------------------

fn manifest_dir() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// Where the agents are installed: `LLMTAP_AGENTS_DIR`, else `target/agents`.
fn agents_dir() -> PathBuf {
    std::env::var_os("LLMTAP_AGENTS_DIR")
        .map_or_else(|| manifest_dir().join("target/agents"), PathBuf::from)
}

/// The agents' `node_modules/.bin` when the pinned versions are installed: the install's
/// lock file is the pinned one and every binary is there.
fn installed(dir: &Path) -> Option<PathBuf> {
    let pinned = std::fs::read(manifest_dir().join("tests/e2e/agents/package-lock.json")).ok()?;
    let current = std::fs::read(dir.join("package-lock.json")).ok()?;
    let bin = dir.join("node_modules/.bin");
    (pinned == current
        && ["claude", "codex", "gemini"]
            .iter()
            .all(|b| bin.join(b).exists()))
    .then_some(bin)
}

/// The agents' bin directory, installing them when `LLMTAP_E2E` is set; `None` (and a
/// message) when they are missing and not required.
fn agents() -> Option<PathBuf> {
    static BIN_DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN_DIR
        .get_or_init(|| {
            let dir = agents_dir();
            if let Some(bin) = installed(&dir) {
                return Some(bin);
            }
            std::env::var_os("LLMTAP_E2E")?;
            let started = Instant::now();
            let status = Command::new("sh")
                .arg(manifest_dir().join("tests/e2e/agents/install.sh"))
                .arg(&dir)
                .status()
                .expect("run tests/e2e/agents/install.sh");
            assert!(
                status.success(),
                "LLMTAP_E2E is set and installing the agents into {} failed",
                dir.display()
            );
            eprintln!(
                "installed the agents into {} in {:.1} s",
                dir.display(),
                started.elapsed().as_secs_f64()
            );
            Some(installed(&dir).expect("the agents after install.sh"))
        })
        .clone()
        .or_else(|| {
            eprintln!(
                "skipped: the agents are not installed in {} (run `sh tests/e2e/agents/install.sh`, or set LLMTAP_E2E=1)",
                agents_dir().display()
            );
            None
        })
}

// ------------------------------------------------------------------------------------------
// Running one agent
// ------------------------------------------------------------------------------------------

/// One agent invocation.
struct AgentCmd<'a> {
    /// `claude`, `codex` or `gemini`, from the agents' bin directory.
    bin: &'a str,
    args: Vec<String>,
    /// The agent's own variables, on top of PATH, HOME and `llmtap env`'s exports; `@HOME@`
    /// in a value stands for HOME.
    env: Vec<(String, String)>,
    /// Files written into the agent's HOME before it starts (path relative to HOME, text).
    home_files: Vec<(&'a str, String)>,
}

/// What one run produced.
struct Run {
    agent_stdout: String,
    agent_stderr: String,
    elapsed: Duration,
    /// The spans llmtap exported (OTLP gRPC), every one.
    spans: Vec<Received>,
    /// llmtap's call lines (`--calls json`), parsed.
    records: Vec<Value>,
    llmtap_stdout: String,
    llmtap_stderr: String,
    upstream: FakeUpstream,
    /// The agent's HOME (kept until the run is checked).
    _home: tempfile::TempDir,
}

/// Reads a pipe to the end on a thread, into a shared string.
fn pump(mut r: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let out = Arc::new(Mutex::new(String::new()));
    let into = out.clone();
    std::thread::spawn(move || {
        let mut buf = [0u8; 8192];
        while let Ok(n) = r.read(&mut buf) {
            if n == 0 {
                break;
            }
            into.lock()
                .unwrap()
                .push_str(&String::from_utf8_lossy(&buf[..n]));
        }
    });
    out
}

/// Starts the fake upstream (agent mode) and the llmtap binary, runs the agent with a clean
/// environment (PATH, HOME, the lines `llmtap env` prints, the agent's own variables) in its
/// own process group under [`AGENT_TIMEOUT`], then stops llmtap with SIGTERM.
async fn run_agent(bin_dir: &Path, cmd: AgentCmd<'_>) -> Run {
    let upstream = FakeUpstream::start_agent().await;
    let receiver = Receiver::grpc().await;
    let llmtap_home = tempfile::tempdir().unwrap();
    let resolve = upstream.resolve();
    let mut llmtap = Llmtap::spawn(
        llmtap_home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--calls",
            "json",
            "--otel-exporter-otlp-protocol",
            "grpc",
            "--otel-exporter-otlp-endpoint",
            &receiver.endpoint(),
        ],
    );
    let exports = Command::new(BIN)
        .env_clear()
        .env("HOME", llmtap_home.path())
        .args(["env", "--listen", &llmtap.proxy.to_string()])
        .output()
        .unwrap();
    assert!(exports.status.success());
    let exports = String::from_utf8(exports.stdout).unwrap();

    let home = tempfile::tempdir().unwrap();
    for (path, text) in &cmd.home_files {
        let path = home.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let work = home.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    // Node (codex.js, gemini.js) and the agents' own bin directory, then the system's.
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -e\n{exports}exec \"$@\"\n");
    let program = bin_dir.join(cmd.bin);
    let home_path = home.path().to_owned();
    let (status, agent_stdout, agent_stderr, elapsed) = tokio::task::spawn_blocking(move || {
        let mut command = Command::new("sh");
        command
            .env_clear()
            .env("PATH", path)
            .env("HOME", &home_path)
            .current_dir(&work)
            .args(["-c", &script, "sh"])
            .arg(&program)
            .args(&cmd.args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0);
        for (k, v) in &cmd.env {
            // `@HOME@` stands for the agent's HOME, a temp dir.
            command.env(k, v.replace("@HOME@", home_path.to_str().unwrap()));
        }
        let started = Instant::now();
        let mut child = command.spawn().expect("spawn the agent");
        let stdout = pump(child.stdout.take().unwrap());
        let stderr = pump(child.stderr.take().unwrap());
        let status = loop {
            if let Some(status) = child.try_wait().unwrap() {
                break Some(status);
            }
            if started.elapsed() > AGENT_TIMEOUT {
                // The whole group: the agent and whatever it started.
                let pgid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
                let _ = nix::sys::signal::killpg(pgid, nix::sys::signal::Signal::SIGKILL);
                let _ = child.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(50));
        };
        let elapsed = started.elapsed();
        // Let the pump threads drain the pipes (grandchildren may hold them: bounded).
        for _ in 0..40 {
            if Arc::strong_count(&stdout) == 1 && Arc::strong_count(&stderr) == 1 {
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let out = stdout.lock().unwrap().clone();
        let err = stderr.lock().unwrap().clone();
        (status, out, err, elapsed)
    })
    .await
    .unwrap();
    let llmtap = tokio::task::spawn_blocking(move || {
        assert_eq!(llmtap.terminate().code(), Some(0), "llmtap exits cleanly");
        llmtap
    })
    .await
    .unwrap();
    let llmtap_stdout = llmtap.stdout();
    let llmtap_stderr = llmtap.stderr();
    let Some(status) = status else {
        panic!(
            "{} did not finish within {} s (killed)\n--- stdout\n{agent_stdout}\n--- stderr\n{agent_stderr}\n--- llmtap stderr\n{llmtap_stderr}\n--- upstream saw\n{}",
            cmd.bin,
            AGENT_TIMEOUT.as_secs(),
            describe(&upstream.seen()),
        );
    };
    let records: Vec<Value> = llmtap_stdout
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("call line {l:?}: {e}")))
        .collect();
    eprintln!(
        "{} finished in {:.1} s: {} call records, {} requests seen upstream",
        cmd.bin,
        elapsed.as_secs_f64(),
        records.len(),
        upstream.seen().len()
    );
    // LLMTAP_AGENTS_DEBUG=DIR keeps every request the upstream saw, for looking at agents.
    if let Some(dir) = std::env::var_os("LLMTAP_AGENTS_DEBUG") {
        let dir = Path::new(&dir).join(format!("{}-{}", cmd.bin, upstream.addr.port()));
        std::fs::create_dir_all(&dir).unwrap();
        for (i, s) in upstream.seen().iter().enumerate() {
            let name = s.path_and_query.replace(['/', '?', ':', '&', '='], "_");
            let head: String = s
                .headers
                .iter()
                .map(|(k, v)| format!("{k}: {v}\n"))
                .collect();
            std::fs::write(
                dir.join(format!("{i:02}-{}{name}.txt", s.method)),
                format!(
                    "{} {}\n{head}\n{}",
                    s.method,
                    s.path_and_query,
                    String::from_utf8_lossy(&s.body)
                ),
            )
            .unwrap();
        }
        for (i, m) in upstream.ws_messages().iter().enumerate() {
            std::fs::write(dir.join(format!("ws-{i:02}.json")), &m.text).unwrap();
        }
        std::fs::write(dir.join("llmtap.stdout"), &llmtap_stdout).unwrap();
        std::fs::write(dir.join("llmtap.stderr"), &llmtap_stderr).unwrap();
        std::fs::write(dir.join("agent.stdout"), &agent_stdout).unwrap();
        std::fs::write(dir.join("agent.stderr"), &agent_stderr).unwrap();
    }
    // llmtap flushed its spans when it exited.
    let spans = receiver.spans();
    let run = Run {
        agent_stdout,
        agent_stderr,
        elapsed,
        records,
        spans,
        llmtap_stdout,
        llmtap_stderr,
        upstream,
        _home: home,
    };
    assert!(
        status.success(),
        "{} exited with {status}\n{}",
        cmd.bin,
        run.dump()
    );
    run
}

/// `METHOD path` of each request, one a line.
fn describe(seen: &[Seen]) -> String {
    seen.iter()
        .map(|s| format!("{} {}\n", s.method, s.path_and_query))
        .collect()
}

/// What one agent is expected to do.
struct Expect<'a> {
    api: Api,
    /// `client` of every record.
    client: &'a str,
    /// The tool the first model call makes the agent call.
    tool: &'a str,
    /// The agent names its session: every record carries one `conversation_id`.
    session: bool,
    /// The calls go over the Responses WebSocket (else HTTP).
    websocket: bool,
}

impl Run {
    fn dump(&self) -> String {
        format!(
            "--- agent stdout\n{}\n--- agent stderr\n{}\n--- llmtap stdout\n{}\n--- llmtap stderr\n{}\n--- upstream saw\n{}",
            self.agent_stdout,
            self.agent_stderr,
            self.llmtap_stdout,
            self.llmtap_stderr,
            describe(&self.upstream.seen())
        )
    }

    /// Requests the upstream saw that are not model calls (nor WebSocket upgrades).
    fn side_traffic(&self) -> Vec<Seen> {
        let model: BTreeSet<String> = self
            .upstream
            .model_requests()
            .into_iter()
            .map(|s| s.path_and_query)
            .collect();
        self.upstream
            .seen()
            .into_iter()
            .filter(|s| !model.contains(&s.path_and_query))
            .filter(|s| s.header("upgrade").is_none())
            .collect()
    }

    /// Everything the issue asks of one agent run.
    fn check(&self, want: &Expect<'_>) {
        let dump = || self.dump();
        assert!(
            self.agent_stdout.contains(agent::FINAL_TEXT),
            "the agent printed the fake model's final answer\n{}",
            dump()
        );
        // The upstream's own log: HTTP requests to model routes and `response.create`s.
        let http_calls = self.upstream.model_requests().len();
        let ws_calls = self.upstream.ws_creates().len();
        let answers = self.upstream.answers();
        assert_eq!(
            answers.len(),
            http_calls + ws_calls,
            "the fake model answered every model call"
        );
        assert_eq!(
            self.records.len(),
            http_calls + ws_calls,
            "one record per model call the upstream saw ({http_calls} HTTP, {ws_calls} on the socket)\n{}",
            dump()
        );
        if want.websocket {
            assert_eq!(http_calls, 0, "no HTTP fallback\n{}", dump());
            assert!(
                ws_calls > 0,
                "the calls went over the WebSocket\n{}",
                dump()
            );
        } else {
            assert_eq!(ws_calls, 0, "{}", dump());
        }
        // The task: one tool call, then a final turn that carried its result.
        let turns: Vec<Turn> = answers.iter().map(|a| a.turn).collect();
        let tool_turn = turns.iter().position(|t| *t == Turn::ToolCall);
        let final_turn = turns.iter().position(|t| *t == Turn::Final);
        assert!(
            matches!((tool_turn, final_turn), (Some(t), Some(f)) if t < f),
            "a tool-call turn, then a final turn: {turns:?}\n{}",
            dump()
        );
        assert_eq!(
            turns.iter().filter(|t| **t == Turn::ToolCall).count(),
            1,
            "{turns:?}"
        );

        let mut ids = BTreeSet::new();
        let mut sessions = BTreeSet::new();
        for r in &self.records {
            let id = r["response"]["id"].as_str().unwrap_or_default();
            assert!(ids.insert(id.to_owned()), "one record per response: {r}");
            let a = answers
                .iter()
                .find(|a| a.id == id)
                .unwrap_or_else(|| panic!("a record of an answer the upstream sent: {r}"));
            let what = format!("{:?} turn: {r}", a.turn);
            assert_eq!(r["outcome"], "ok", "{what}");
            assert_eq!(r["parse_error"], Value::Null, "{what}");
            assert_eq!(r["client"], want.client, "{what}");
            assert_eq!(r["stream"], true, "{what}");
            assert_eq!(r["request"]["model"], a.model.as_str(), "{what}");
            assert_eq!(r["response"]["model"], a.model.as_str(), "{what}");
            let usage = agent::expected_usage(want.api, a.turn);
            let got = &r["response"]["usage"];
            assert_eq!(
                (&got["input"], &got["output"], &got["cache_read"]),
                (
                    &Value::from(usage.input),
                    &Value::from(usage.output),
                    &Value::from(usage.cache_read)
                ),
                "tokens: {what}"
            );
            let offered: Vec<&str> = r["request"]["tools_offered"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                offered.is_empty(),
                a.tools_offered == 0,
                "tools offered ({} in the request): {what}",
                a.tools_offered
            );
            if a.turn != Turn::Prewarm {
                assert!(r["ttft"].as_f64().is_some_and(|t| t > 0.0), "TTFT: {what}");
                assert!(r["ttft"].as_f64() <= r["duration"].as_f64(), "{what}");
            }
            let called: Vec<&str> = r["response"]["tools_called"]
                .as_array()
                .unwrap()
                .iter()
                .filter_map(Value::as_str)
                .collect();
            assert_eq!(
                called,
                a.tool.as_deref().into_iter().collect::<Vec<_>>(),
                "{what}"
            );
            if a.turn == Turn::ToolCall {
                assert_eq!(a.tool.as_deref(), Some(want.tool), "{what}");
                assert!(
                    offered.contains(&want.tool),
                    "the tool called is among the tools offered (a tool inside a `namespace` \
                     tool, as Codex 0.169 offers them, counts by its own name): {what}"
                );
            }
            match r["conversation_id"].as_str() {
                Some(id) => {
                    sessions.insert(id.to_owned());
                }
                None => assert!(!want.session, "a session id: {what}"),
            }
        }
        if want.session {
            assert_eq!(sessions.len(), 1, "one session: {sessions:?}");
        } else {
            assert!(sessions.is_empty(), "{sessions:?}");
        }
        self.check_tool_run(want);
        // Side traffic reached the upstream but is not a call.
        let record_paths: BTreeSet<&str> = self
            .records
            .iter()
            .filter_map(|r| r["path"].as_str())
            .collect();
        for side in self.side_traffic() {
            let path = side.path_and_query.split('?').next().unwrap_or_default();
            assert!(
                !record_paths.contains(path),
                "side traffic {path} was recorded"
            );
        }
    }

    /// The one tool run: on the final turn's record, timed from the end of the tool-call
    /// turn's response to the final turn's request, and as its `execute_tool` span.
    fn check_tool_run(&self, want: &Expect<'_>) {
        let dump = || self.dump();
        let answers = self.upstream.answers();
        let record_of = |turn: Turn| {
            let id = &answers.iter().find(|a| a.turn == turn).unwrap().id;
            self.records
                .iter()
                .find(|r| r["response"]["id"].as_str() == Some(id.as_str()))
                .unwrap()
        };
        let (asked, carried) = (record_of(Turn::ToolCall), record_of(Turn::Final));
        let runs = carried["tool_executions"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        assert_eq!(
            runs.len(),
            1,
            "one tool run on the final turn: {carried}\n{}",
            dump()
        );
        let run = &runs[0];
        assert_eq!(run["tool"], want.tool, "{run}");
        assert_eq!(run["error"], false, "{run}");
        let call_id = run["call_id"].as_str().expect("the call's id");
        let ms = run["duration_ms"].as_f64().expect("a duration");
        // Times in call lines are milliseconds (start whole, duration to the microsecond).
        let gap = carried["start"].as_f64().unwrap()
            - (asked["start"].as_f64().unwrap() + asked["duration"].as_f64().unwrap());
        assert!(
            ms > 0.0 && (ms - gap).abs() < 2.0,
            "tool time {ms} ms vs the gap {gap} ms"
        );
        for r in &self.records {
            if r != carried {
                assert!(r.get("tool_executions").is_none(), "only one run: {r}");
            }
        }
        assert_eq!(carried["agent"], "main", "{carried}");
        assert_eq!(asked["thread_id"], carried["thread_id"], "one thread");

        let name = format!("execute_tool {}", want.tool);
        let tool_spans: Vec<&Received> = self
            .spans
            .iter()
            .filter(|s| s.span.name.starts_with("execute_tool"))
            .collect();
        assert_eq!(tool_spans.len(), 1, "one execute_tool span: {tool_spans:?}");
        let span = tool_spans[0];
        assert_eq!(span.span.name, name);
        assert_eq!(span.span.kind, 1, "INTERNAL");
        assert_eq!(span.str("gen_ai.operation.name"), Some("execute_tool"));
        assert_eq!(span.str("gen_ai.tool.name"), Some(want.tool));
        assert_eq!(span.str("gen_ai.tool.call.id"), Some(call_id));
        assert_eq!(span.str("gen_ai.tool.type"), Some("function"));
        assert_eq!(span.str("gen_ai.agent.name"), Some("main"));
        let span_ms = (span.span.end_time_unix_nano - span.span.start_time_unix_nano) as f64 / 1e6;
        assert!(
            (span_ms - ms).abs() < 0.01,
            "span {span_ms} ms vs call line {ms} ms"
        );
        // In the trace of the call that carried the result.
        let carrier = self
            .spans
            .iter()
            .find(|s| s.str("gen_ai.response.id") == carried["response"]["id"].as_str())
            .expect("the final turn's span");
        assert_eq!(span.span.trace_id, carrier.span.trace_id, "same trace");
    }

    /// The API key appears in nothing llmtap printed.
    fn assert_secret_kept(&self, secret: &str) {
        assert!(!self.llmtap_stdout.contains(secret), "key in call lines");
        assert!(!self.llmtap_stderr.contains(secret), "key in llmtap's log");
    }
}

// ------------------------------------------------------------------------------------------
// The agents
// ------------------------------------------------------------------------------------------

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_runs_a_tool_through_llmtap_and_each_model_call_is_recorded() {
    const KEY: &str = "sk-ant-api03-E2E-CLAUDE-CODE-SECRET-0000";
    let Some(bin) = agents() else { return };
    let run = run_agent(
        &bin,
        AgentCmd {
            bin: "claude",
            args: ["-p", PROMPT, "--allowedTools", "Bash"]
                .map(str::to_owned)
                .to_vec(),
            env: vec![("ANTHROPIC_API_KEY".to_owned(), KEY.to_owned())],
            home_files: vec![],
        },
    )
    .await;
    run.check(&Expect {
        api: Api::Anthropic,
        client: "claude-code",
        tool: "Bash",
        session: true,
        websocket: false,
    });
    let side: Vec<String> = run
        .side_traffic()
        .into_iter()
        .map(|s| s.path_and_query)
        .collect();
    assert!(
        side.iter()
            .any(|p| p.contains("/api/claude_code/policy_limits")),
        "Claude Code's side traffic reached the upstream through llmtap: {side:?}"
    );
    // Forwarded untouched: the upstream got the client's own headers.
    let policy = run
        .side_traffic()
        .into_iter()
        .find(|s| s.path_and_query.contains("/api/claude_code/policy_limits"))
        .unwrap();
    assert_eq!(policy.header("x-api-key"), Some(KEY));
    assert!(
        policy
            .header("user-agent")
            .is_some_and(|ua| ua.starts_with("claude-code/")),
        "{:?}",
        policy.headers
    );
    run.assert_secret_kept(KEY);
    eprintln!(
        "claude: {:.1} s; side traffic {side:?}",
        run.elapsed.as_secs_f64()
    );
}

/// Claude Code on Vertex AI (its docs, "Claude Code on Google Vertex AI"): the Vertex client,
/// no Google credentials (`CLAUDE_CODE_SKIP_VERTEX_AUTH`), a project and a region, so its
/// calls go to `https://us-east5-aiplatform.googleapis.com/v1/projects/…/publishers/anthropic/models/{model}:streamRawPredict`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_on_vertex_ai_runs_a_tool_and_each_call_is_recorded_as_vertex_ai() {
    let Some(bin) = agents() else { return };
    let vars = [
        ("CLAUDE_CODE_USE_VERTEX", "1"),
        ("CLAUDE_CODE_SKIP_VERTEX_AUTH", "1"),
        ("ANTHROPIC_VERTEX_PROJECT_ID", "fake-project-314159"),
        ("CLOUD_ML_REGION", "us-east5"),
    ];
    let run = run_agent(
        &bin,
        AgentCmd {
            bin: "claude",
            args: ["-p", PROMPT, "--allowedTools", "Bash"]
                .map(str::to_owned)
                .to_vec(),
            env: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home_files: vec![],
        },
    )
    .await;
    run.check(&Expect {
        api: Api::Anthropic,
        client: "claude-code",
        tool: "Bash",
        session: true,
        websocket: false,
    });
    let model_requests = run.upstream.model_requests();
    for s in &model_requests {
        assert!(
            s.path_and_query.starts_with(
                "/v1/projects/fake-project-314159/locations/us-east5/publishers/anthropic/models/"
            ) && s.path_and_query.ends_with(":streamRawPredict"),
            "{}",
            run.dump()
        );
        assert_eq!(s.header("host"), Some("us-east5-aiplatform.googleapis.com"));
    }
    for r in &run.records {
        assert_eq!(r["provider"], "gcp.vertex_ai", "{r}");
        assert_eq!(r["api"], "anthropic_messages", "{r}");
        assert_eq!(r["host"], "us-east5-aiplatform.googleapis.com", "{r}");
        let model = r["request"]["model"].as_str().unwrap();
        let cost = r["cost_usd"]
            .as_f64()
            .unwrap_or_else(|| panic!("priced from vertex_ai: {r}"));
        let want = crate::support::prices::cost("vertex_ai", model, &r["response"]["usage"]);
        assert!(
            crate::support::prices::close(cost, want),
            "{cost} vs {want}: {r}"
        );
    }
}

/// Claude Code on Amazon Bedrock (its docs, "Claude Code on Amazon Bedrock"): the Bedrock
/// client without AWS credentials of its own (`CLAUDE_CODE_SKIP_BEDROCK_AUTH`), a region, so
/// its calls go to `https://bedrock-runtime.us-east-1.amazonaws.com/model/{model}/invoke-with-response-stream`.
///
/// The fake upstream's agent mode answers Bedrock's InvokeModelWithResponseStream with the
/// Anthropic agent events, each wrapped as Bedrock's `chunk` (`{"bytes": base64}`) in an AWS
/// event-stream message, the last with the invocation metrics.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claude_code_on_bedrock_runs_a_tool_and_each_call_is_recorded_as_aws_bedrock() {
    let Some(bin) = agents() else { return };
    let vars = [
        ("CLAUDE_CODE_USE_BEDROCK", "1"),
        ("CLAUDE_CODE_SKIP_BEDROCK_AUTH", "1"),
        ("AWS_REGION", "us-east-1"),
    ];
    let run = run_agent(
        &bin,
        AgentCmd {
            bin: "claude",
            args: ["-p", PROMPT, "--allowedTools", "Bash"]
                .map(str::to_owned)
                .to_vec(),
            env: vars
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect(),
            home_files: vec![],
        },
    )
    .await;
    run.check(&Expect {
        api: Api::Anthropic,
        client: "claude-code",
        tool: "Bash",
        session: true,
        websocket: false,
    });
    for s in run.upstream.model_requests() {
        assert!(
            s.path_and_query.starts_with("/model/")
                && s.path_and_query.ends_with("/invoke-with-response-stream"),
            "{}",
            run.dump()
        );
    }
    for r in &run.records {
        assert_eq!(r["provider"], "aws.bedrock", "{r}");
        let model = r["request"]["model"].as_str().unwrap();
        let cost = r["cost_usd"]
            .as_f64()
            .unwrap_or_else(|| panic!("priced: {r}"));
        let want = crate::support::prices::cost("bedrock", model, &r["response"]["usage"]);
        assert!(
            crate::support::prices::close(cost, want),
            "{cost} vs {want}: {r}"
        );
    }
}

/// The tool through which Codex 0.169 runs commands with its default model: code mode's
/// freeform `exec` (JavaScript that calls the nested `exec_command`), offered inside the
/// `functions` namespace of an `additional_tools` input item.
const CODEX_TOOL: &str = "exec";

/// Codex configured for plain HTTPS (SSE) instead of its default WebSocket.
const CODEX_HTTP_CONFIG: &str = r#"model_provider = "openai-http"

[model_providers.openai-http]
name = "OpenAI over HTTPS"
base_url = "https://api.openai.com/v1"
env_key = "OPENAI_API_KEY"
wire_api = "responses"
supports_websockets = false
"#;

/// `codex exec` in a temp workspace, CODEX_HOME in the agent's HOME with `config`.
fn codex_cmd<'a>(key_var: &str, key: &str, config: &str) -> AgentCmd<'a> {
    AgentCmd {
        bin: "codex",
        args: ["exec", "--skip-git-repo-check", PROMPT]
            .map(str::to_owned)
            .to_vec(),
        env: vec![
            (key_var.to_owned(), key.to_owned()),
            ("CODEX_HOME".to_owned(), "@HOME@/codex-home".to_owned()),
        ],
        home_files: vec![("codex-home/config.toml", config.to_owned())],
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_over_its_default_websocket_runs_a_tool_and_each_response_create_is_recorded() {
    const KEY: &str = "sk-proj-E2E-CODEX-WS-SECRET-1111";
    let Some(bin) = agents() else { return };
    let run = run_agent(&bin, codex_cmd("CODEX_API_KEY", KEY, "")).await;
    run.check(&Expect {
        api: Api::Responses,
        client: "codex",
        tool: CODEX_TOOL,
        session: true,
        websocket: true,
    });
    run.assert_secret_kept(KEY);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_over_https_sse_runs_a_tool_and_each_post_is_recorded() {
    const KEY: &str = "sk-proj-E2E-CODEX-SSE-SECRET-2222";
    let Some(bin) = agents() else { return };
    let run = run_agent(&bin, codex_cmd("OPENAI_API_KEY", KEY, CODEX_HTTP_CONFIG)).await;
    run.check(&Expect {
        api: Api::Responses,
        client: "codex",
        tool: CODEX_TOOL,
        session: true,
        websocket: false,
    });
    assert!(
        run.upstream
            .model_requests()
            .iter()
            .all(|s| s.method == "POST" && s.path_and_query == "/v1/responses"),
        "{}",
        run.dump()
    );
    run.assert_secret_kept(KEY);
}

/// Codex at an Azure OpenAI resource (Codex's config reference, "Azure"): a provider whose
/// `base_url` is the resource's `/openai`, the key from `env_key`, `api-version` in
/// `query_params`, the Responses API over HTTPS SSE.
const CODEX_AZURE_CONFIG: &str = r#"model_provider = "azure"

[model_providers.azure]
name = "Azure OpenAI"
base_url = "https://fake-resource.openai.azure.com/openai"
env_key = "AZURE_OPENAI_API_KEY"
wire_api = "responses"
query_params = { api-version = "2025-04-01-preview" }
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn codex_at_azure_openai_runs_a_tool_and_each_post_is_recorded_as_azure() {
    const KEY: &str = "3c4d5e6f708192a3b4c5d6e7f8091a2b";
    let Some(bin) = agents() else { return };
    let run = run_agent(
        &bin,
        codex_cmd("AZURE_OPENAI_API_KEY", KEY, CODEX_AZURE_CONFIG),
    )
    .await;
    run.check(&Expect {
        api: Api::Responses,
        client: "codex",
        tool: CODEX_TOOL,
        session: true,
        websocket: false,
    });
    for s in run.upstream.model_requests() {
        assert_eq!(
            (s.method.as_str(), s.path_and_query.as_str()),
            ("POST", "/openai/responses?api-version=2025-04-01-preview"),
            "{}",
            run.dump()
        );
        assert_eq!(s.header("host"), Some("fake-resource.openai.azure.com"));
    }
    for r in &run.records {
        assert_eq!(r["provider"], "azure.ai.openai", "{r}");
        assert_eq!(r["api"], "openai_responses", "{r}");
        assert_eq!(r["path"], "/openai/responses", "no query string: {r}");
        let model = r["request"]["model"].as_str().unwrap();
        let cost = r["cost_usd"]
            .as_f64()
            .unwrap_or_else(|| panic!("priced from azure: {r}"));
        let want = crate::support::prices::cost("azure", model, &r["response"]["usage"]);
        assert!(
            crate::support::prices::close(cost, want),
            "{cost} vs {want}: {r}"
        );
    }
    run.assert_secret_kept(KEY);
}

/// A user policy that lets Gemini CLI run shell commands without asking.
const GEMINI_POLICY: &str = r#"[[rule]]
toolName = "run_shell_command"
decision = "allow"
priority = 100
"#;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gemini_cli_runs_a_tool_through_llmtap_and_each_model_call_is_recorded() {
    const KEY: &str = "AIzaSy-E2E-GEMINI-CLI-SECRET-33333333333";
    let Some(bin) = agents() else { return };
    let run = run_agent(
        &bin,
        AgentCmd {
            bin: "gemini",
            args: ["-m", "gemini-2.5-flash", "-p", PROMPT]
                .map(str::to_owned)
                .to_vec(),
            env: vec![
                ("GEMINI_API_KEY".to_owned(), KEY.to_owned()),
                ("GEMINI_CLI_TRUST_WORKSPACE".to_owned(), "true".to_owned()),
            ],
            home_files: vec![
                (
                    ".gemini/settings.json",
                    r#"{"privacy":{"usageStatisticsEnabled":false}}"#.to_owned(),
                ),
                // In `-p` mode a tool that would ask is denied and hidden from the model:
                // allow the shell (the policy engine replaces `--allowed-tools`).
                (".gemini/policies/llmtap-e2e.toml", GEMINI_POLICY.to_owned()),
            ],
        },
    )
    .await;
    run.check(&Expect {
        api: Api::Gemini,
        client: "gemini-cli",
        tool: "run_shell_command",
        session: false,
        websocket: false,
    });
    run.assert_secret_kept(KEY);
}

// ------------------------------------------------------------------------------------------
// `llmtap wrap -- <agent>`
// ------------------------------------------------------------------------------------------

/// Runs `llmtap wrap --summary json … -- <agent> …` (llmtap in-process, nothing sourced):
/// returns the exit status, the agent's stdout, the parsed summary and the upstream.
async fn wrap_agent(
    bin_dir: &Path,
    cmd: AgentCmd<'_>,
) -> (std::process::ExitStatus, String, Value, FakeUpstream) {
    let upstream = FakeUpstream::start_agent().await;
    let resolve = upstream.resolve();
    let home = tempfile::tempdir().unwrap();
    for (path, text) in &cmd.home_files {
        let path = home.path().join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }
    let work = home.path().join("work");
    std::fs::create_dir_all(&work).unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let mut command = Command::new(BIN);
    command
        .env_clear()
        .env("PATH", path)
        .env("HOME", home.path())
        .current_dir(&work)
        .args([
            "wrap",
            "--summary",
            "json",
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
        ])
        .args(["--resolve", &resolve, "--"])
        .arg(bin_dir.join(cmd.bin))
        .args(&cmd.args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .process_group(0);
    for (k, v) in &cmd.env {
        command.env(k, v.replace("@HOME@", home.path().to_str().unwrap()));
    }
    let name = cmd.bin.to_owned();
    let out = tokio::task::spawn_blocking(move || {
        let child = command.spawn().expect("spawn llmtap wrap");
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        match rx.recv_timeout(AGENT_TIMEOUT) {
            Ok(out) => out.unwrap(),
            Err(_) => {
                let _ = nix::sys::signal::killpg(pid, nix::sys::signal::Signal::SIGKILL);
                panic!(
                    "llmtap wrap -- {name} did not finish within {} s",
                    AGENT_TIMEOUT.as_secs()
                );
            }
        }
    })
    .await
    .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&out.stderr).into_owned();
    let summary = stderr
        .lines()
        .rev()
        .find_map(|l| {
            serde_json::from_str::<Value>(l)
                .ok()
                .filter(|v| v.get("total").is_some())
        })
        .unwrap_or_else(|| panic!("no summary on stderr:\n{stderr}"));
    (out.status, stdout, summary, upstream)
}

/// The checks every wrapped agent must pass.
fn check_wrapped(
    name: &str,
    (status, stdout, summary, upstream): &(std::process::ExitStatus, String, Value, FakeUpstream),
    tool: &str,
) {
    assert!(status.success(), "{name}: {status}\n{stdout}");
    assert!(
        stdout.contains(agent::FINAL_TEXT),
        "{name} printed the model's answer: {stdout}"
    );
    let calls = upstream.model_requests().len() + upstream.ws_creates().len();
    assert!(calls >= 2, "{name}: a tool call and a second turn");
    assert_eq!(
        summary["total"]["calls"], calls,
        "{name}: the summary counts every model call: {summary}"
    );
    assert_eq!(summary["total"]["tools"][tool], 1, "{name}: {summary}");
    assert!(
        summary["total"]["input"].as_u64().unwrap() > 0
            && summary["total"]["output"].as_u64().unwrap() > 0
    );
    assert!(
        summary["total"]["ttft_p50"].as_f64().is_some(),
        "{name}: {summary}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_runs_claude_codex_and_gemini_with_the_environment_they_need() {
    let Some(bin) = agents() else { return };
    let claude = AgentCmd {
        bin: "claude",
        args: ["-p", PROMPT, "--allowedTools", "Bash"]
            .map(str::to_owned)
            .to_vec(),
        env: vec![(
            "ANTHROPIC_API_KEY".to_owned(),
            "sk-ant-api03-WRAP-0000".to_owned(),
        )],
        home_files: vec![],
    };
    check_wrapped("claude", &wrap_agent(&bin, claude).await, "Bash");
    let codex = codex_cmd("CODEX_API_KEY", "sk-proj-WRAP-1111", "");
    check_wrapped("codex", &wrap_agent(&bin, codex).await, CODEX_TOOL);
    let gemini = AgentCmd {
        bin: "gemini",
        args: ["-m", "gemini-2.5-flash", "-p", PROMPT]
            .map(str::to_owned)
            .to_vec(),
        env: vec![
            ("GEMINI_API_KEY".to_owned(), "AIzaSy-WRAP-2222".to_owned()),
            ("GEMINI_CLI_TRUST_WORKSPACE".to_owned(), "true".to_owned()),
        ],
        home_files: vec![
            (
                ".gemini/settings.json",
                r#"{"privacy":{"usageStatisticsEnabled":false}}"#.to_owned(),
            ),
            (".gemini/policies/llmtap-e2e.toml", GEMINI_POLICY.to_owned()),
        ],
    };
    check_wrapped(
        "gemini",
        &wrap_agent(&bin, gemini).await,
        "run_shell_command",
    );
}
