//! llmtap started in-process on `127.0.0.1:0` in front of a fake upstream, configured from
//! an argument list exactly as the binary would be.

use std::{
    io::Write,
    net::SocketAddr,
    sync::{Arc, Mutex},
    time::Duration,
};

use clap::Parser as _;
use llmtap::{Running, cli::Cli, config::Config, exchange::CallRecord};
use tokio::{
    io::{AsyncReadExt as _, AsyncWriteExt as _},
    net::TcpStream,
    sync::broadcast,
};

use llmtap_fake_upstream::FakeUpstream;

/// Call lines written by llmtap, shared with the test.
#[derive(Clone, Default)]
pub struct Output(pub Arc<Mutex<Vec<u8>>>);

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Output {
    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.0.lock().expect("lock")).into_owned()
    }
}

pub struct Tap {
    pub running: Option<Running>,
    pub proxy: SocketAddr,
    pub admin: SocketAddr,
    pub ca_pem: String,
    pub calls: Output,
    pub records: broadcast::Receiver<Arc<CallRecord>>,
    /// llmtap's `--ca-dir`, kept for as long as the tap runs (deleted on drop).
    _ca_dir: tempfile::TempDir,
}

/// Starts llmtap with every LLM host resolved to the fake upstream and its test CA trusted.
pub async fn start(upstream: &FakeUpstream, extra: &[&str]) -> Tap {
    let dir = tempfile::tempdir().expect("tempdir");
    let resolve = upstream.resolve();
    let mut args: Vec<String> = [
        "llmtap",
        "--listen",
        "127.0.0.1:0",
        "--calls",
        "json",
        "--upstream-ca",
        upstream.ca_pem_path().to_str().expect("utf-8 path"),
        "--resolve",
        &resolve,
        "--ca-dir",
        dir.path().to_str().expect("utf-8 path"),
    ]
    .iter()
    .map(|s| (*s).to_owned())
    .collect();
    // The admin listener on loopback, unless the test names its own.
    if !extra.contains(&"--admin") {
        args.extend(["--admin".to_owned(), "127.0.0.1:0".to_owned()]);
    }
    // No history in the user's home: a test that wants one names its --db.
    if !extra.contains(&"--db") {
        args.extend(["--db".to_owned(), "none".to_owned()]);
    }
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let cli = Cli::try_parse_from(args).expect("args");
    let config = Config::from_args(cli.run).expect("config");
    let calls = Output::default();
    let running = llmtap::start(config.clone(), Box::new(calls.clone()))
        .await
        .expect("start");
    let records = running.telemetry.subscribe();
    Tap {
        proxy: running.proxy_addr,
        admin: running.admin_addr,
        ca_pem: config.ca.cert_pem.clone(),
        running: Some(running),
        calls,
        records,
        _ca_dir: dir,
    }
}

impl Tap {
    /// The next finished call (fails the test after 10 s).
    pub async fn next_record(&mut self) -> Arc<CallRecord> {
        tokio::time::timeout(Duration::from_secs(10), self.records.recv())
            .await
            .expect("a call record within 10 s")
            .expect("record channel")
    }

    /// Asserts no further record arrives within `wait`.
    pub async fn assert_no_record(&mut self, wait: Duration) {
        if let Ok(Ok(r)) = tokio::time::timeout(wait, self.records.recv()).await {
            panic!("unexpected extra record: {r:?}");
        }
    }

    /// GET a path on the admin listener; returns (status, body).
    pub async fn admin_get(&self, path: &str) -> (u16, String) {
        get(self.admin, path).await
    }

    pub async fn metrics(&self) -> String {
        self.admin_get("/metrics").await.1
    }

    /// Waits until every call so far is written to the history (`--db`).
    pub async fn flush_history(&self) {
        let running = self.running.as_ref().expect("running");
        running
            .telemetry
            .flush_history(Duration::from_secs(5))
            .await;
    }

    pub async fn shutdown(&mut self) -> usize {
        self.running.take().expect("running").shutdown().await
    }
}

/// A minimal HTTP/1.0 GET (the admin listener speaks HTTP/1.1 and closes on 1.0).
pub async fn get(addr: SocketAddr, path: &str) -> (u16, String) {
    let mut tcp = TcpStream::connect(addr).await.expect("connect admin");
    tcp.write_all(format!("GET {path} HTTP/1.0\r\nHost: x\r\n\r\n").as_bytes())
        .await
        .expect("write");
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.expect("read");
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    (status, body)
}

/// An address on 127.0.0.1 where nothing listens, kept so while the returned socket lives: it
/// is bound but never listens, so connections to it are refused, and no other test of this
/// process can be given the port (as it could if it were bound and closed again).
pub fn closed_port() -> (tokio::net::TcpSocket, SocketAddr) {
    let socket = tokio::net::TcpSocket::new_v4().expect("socket");
    socket
        .bind(SocketAddr::from(([127, 0, 0, 1], 0)))
        .expect("bind 127.0.0.1:0");
    let addr = socket.local_addr().expect("bound address");
    (socket, addr)
}

/// Sum of the samples of `name` whose label set contains every `labels` pair.
pub fn metric(text: &str, name: &str, labels: &[(&str, &str)]) -> f64 {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| {
            let (series, value) = l.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, ""));
            (metric == name
                && labels
                    .iter()
                    .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\""))))
            .then(|| value.parse::<f64>().ok())
            .flatten()
        })
        .sum()
}

/// A streamed call of every dialect, as the golden fixtures were sent: host, path, fixture
/// folder, case (the `x-fake-scenario` to send).
pub const STREAMED_DIALECTS: [(&str, &str, &str, &str); 7] = [
    (
        "api.anthropic.com",
        "/v1/messages",
        "anthropic",
        "stream_tool_use",
    ),
    (
        "api.openai.com",
        "/v1/chat/completions",
        "openai_chat",
        "stream_usage",
    ),
    (
        "api.openai.com",
        "/v1/responses",
        "openai_responses",
        "stream_text",
    ),
    (
        "generativelanguage.googleapis.com",
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        "gemini",
        "stream_sse",
    ),
    (
        "cloudcode-pa.googleapis.com",
        "/v1internal:streamGenerateContent?alt=sse",
        "gemini",
        "codeassist_stream",
    ),
    (
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/converse-stream",
        "bedrock_converse",
        "stream_text",
    ),
    (
        "bedrock-runtime.us-east-1.amazonaws.com",
        "/model/anthropic.claude-sonnet-4-5-20250929-v1%3A0/invoke-with-response-stream",
        "bedrock_invoke",
        "stream_anthropic_cache",
    ),
];

/// The id of the Bash call the `anthropic/stream_tool_use` fixture's response makes.
pub const TOOL_USE_ID: &str = "toolu_01A09q90qw90lq917835lq9k";

/// The request that carries that call's result: the fixture's request, then the assistant's
/// `tool_use` and the user's `tool_result` (same session), for an `execute_tool` span.
pub fn tool_result_follow_up() -> Vec<u8> {
    let mut follow: serde_json::Value = serde_json::from_slice(&FakeUpstream::fixture_in(
        "anthropic",
        "stream_tool_use",
        "request.json",
    ))
    .expect("fixture JSON");
    let messages = follow["messages"].as_array_mut().expect("messages");
    messages.push(serde_json::json!({"role": "assistant", "content": [
        {"type": "tool_use", "id": TOOL_USE_ID, "name": "Bash",
         "input": {"command": "ls src/*.rs | wc -l"}}]}));
    messages.push(serde_json::json!({"role": "user", "content": [
        {"type": "tool_result", "tool_use_id": TOOL_USE_ID, "content": "12"}]}));
    serde_json::to_vec(&follow).expect("JSON")
}
