//! One test per bug fixed so far, named after the bug, with what broke and the commit that
//! fixed it. A test here failed on the code before its fix (by construction where the bug was
//! a race: it then failed now and then). Speed targets are not bugs here: they live in
//! `benches/` and BENCHMARKS.md, and nothing here asserts how long something took.
//!
//! Bugs whose regression test needs llmtap's private internals, or is one assertion of a
//! larger test beside the code, keep that test where it is; [`BESIDE_THE_CODE`] lists them,
//! and a test below checks that each still exists. Fixed without a functional test, because
//! only memory shows them (measured in BENCHMARKS.md, "Total memory under hostile bursts",
//! with `benches/burst.py`): request copies pinning whole read buffers (21b7dec), request
//! bodies parsed into a JSON tree (377cfd9), decompressed bytes handed to the framer whole
//! (9d6c9ea), captured content held whole until export (59307d0), and from 68171db the JSON
//! tree of each event not charged to the observation budget, a fresh inflate buffer per
//! socket fragment, and a 64 MiB total cap on uncompressed streams (a test would push more
//! than 64 MiB through a debug build). e7b0d21 fixed a race in the tests' own reading of
//! the banner, not in llmtap.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "the binary's tests pass PATH on and wait on child processes"
)]

use std::{
    io::{BufRead as _, BufReader, Read as _},
    os::unix::fs::PermissionsExt as _,
    process::{Command, Stdio},
    time::{Duration, Instant},
};

use crate::support::{
    client::{self, collect},
    harness,
    process::{BIN, Llmtap, command, run},
    raw::{plain_origin, raw, read_reply},
};
use hudsucker::{
    futures::{SinkExt as _, StreamExt as _},
    rustls::{ClientConnection, pki_types::ServerName},
    tokio_tungstenite::tungstenite::Message,
};
use llmtap::{
    config::auth::AuthFile,
    dialects::{self, ParseError, Target, json_array::Splitter, sse::Event},
    vocab::Outcome,
};
use llmtap_fake_upstream::FakeUpstream;
use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

const HOST: &str = "api.anthropic.com";

fn body(case: &str) -> Vec<u8> {
    FakeUpstream::fixture(case, "request.json")
}

/// Waits (bounded, so that a hang fails rather than stalls the suite) for a child to exit.
fn wait_bounded(child: &mut std::process::Child) -> std::process::ExitStatus {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            return status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            panic!("llmtap did not exit within 10 s");
        }
        std::thread::sleep(Duration::from_millis(20));
    }
}

// ------------------------------------------------------------------------------------------
// The listeners and the binary
// ------------------------------------------------------------------------------------------

/// hudsucker accepts connections itself and never set TCP_NODELAY, so the first SSE event (and
/// every HTTP/2 response) waited for the client's delayed ACK: p90 41.5 ms through llmtap
/// (BENCHMARKS.md, "A bug this benchmark found"). Fixed in 68394fa: llmtap's listening
/// sockets set it (`llmtap::bind`), and accepted sockets inherit it on Linux.
#[tokio::test]
async fn tcp_nodelay_on_accepted_sockets() {
    let listener = llmtap::bind("--listen", "127.0.0.1:0".parse().unwrap()).unwrap();
    let client = tokio::net::TcpStream::connect(listener.local_addr().unwrap())
        .await
        .unwrap();
    assert!(
        !client.nodelay().unwrap(),
        "a socket starts without TCP_NODELAY, so inheriting it is what counts"
    );
    let (accepted, _) = listener.accept().await.unwrap();
    assert!(
        accepted.nodelay().unwrap(),
        "the accepted socket has TCP_NODELAY"
    );
}

/// The SIGTERM/SIGINT handlers were installed only when the run loop first polled them,
/// after the banner was printed: a supervisor (or a test) that signalled as soon as the banner
/// was out killed llmtap with the default action, no drain and no exit 0. Fixed in bbf2e5d:
/// the handlers come first. A race (with the old code about two tries in three were killed
/// here), so ten tries, each signalling the moment the banner's last line is read.
#[test]
fn sigterm_right_after_banner_is_handled() {
    let home = tempfile::tempdir().unwrap();
    for attempt in 0..10 {
        let mut child = command(home.path())
            .args(["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = nix::unistd::Pid::from_raw(i32::try_from(child.id()).unwrap());
        let mut stderr = BufReader::new(child.stderr.take().unwrap());
        let mut banner = String::new();
        loop {
            let mut line = String::new();
            assert!(
                stderr.read_line(&mut line).unwrap() > 0,
                "attempt {attempt}: no banner:\n{banner}"
            );
            banner.push_str(&line);
            if line.contains("export CODEX_CA_CERTIFICATE=") {
                break;
            }
        }
        nix::sys::signal::kill(pid, nix::sys::signal::Signal::SIGTERM).unwrap();
        let rest = std::thread::spawn(move || {
            let mut rest = String::new();
            let _ = stderr.read_to_string(&mut rest);
            rest
        });
        let status = wait_bounded(&mut child);
        let rest = rest.join().unwrap();
        assert_eq!(
            status.code(),
            Some(0),
            "attempt {attempt}: SIGTERM right after the banner is a clean exit ({status:?}):\n{banner}{rest}"
        );
    }
}

/// `--allow-insecure-key` logged its warning before logging was set up, so it was lost.
/// Fixed in 653fbad, with this test (then in tests/cli.rs as
/// `a_ca_key_others_can_read_is_refused_and_with_the_flag_loaded_with_a_warning`): the
/// refusal without the flag, and the warning in the log with it.
#[test]
fn allow_insecure_key_warning_reaches_the_log() {
    let home = tempfile::tempdir().unwrap();
    let (code, ..) = run(home.path(), &["ca", "path"]);
    assert_eq!(code, 0, "the CA is made");
    let key = home.path().join(".llmtap/ca-key.pem");
    std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).unwrap();
    let (code, _, stderr) = run(
        home.path(),
        &["run", "--listen", "127.0.0.1:0", "--admin", "127.0.0.1:0"],
    );
    assert_eq!(code, 2, "{stderr}");
    assert!(
        stderr.contains("--ca-dir") && stderr.contains("chmod 600"),
        "{stderr}"
    );
    let mut tap = Llmtap::spawn(home.path(), &["--allow-insecure-key"]);
    let status = tap.terminate();
    assert!(status.success());
    assert!(
        tap.stderr().contains("--allow-insecure-key"),
        "the warning reaches the log: {}",
        tap.stderr()
    );
}

/// Log lines were written with ANSI colour codes even when stderr was a pipe or a file (a
/// journal, `kubectl logs`, CI). Fixed in 5f2fb7b: colours only on a terminal.
#[test]
fn log_lines_carry_no_ansi_colours_when_stderr_is_not_a_terminal() {
    let home = tempfile::tempdir().unwrap();
    let mut llmtap = Llmtap::spawn(home.path(), &[]);
    assert!(llmtap.terminate().success());
    let stderr = llmtap.stderr();
    assert!(stderr.contains("llmtap is running"), "a log line: {stderr}");
    assert!(
        !stderr.contains('\u{1b}'),
        "ANSI escapes on a pipe: {stderr:?}"
    );
}

/// hudsucker logged `ERROR … HTTPS connect error: Connection reset by peer` for every
/// tunnel whose client went away after its handshake, that is, every time an agent exits
/// (1,000 closes, 1,000 errors: BENCHMARKS.md, "Memory"). Fixed in abf5b71: hudsucker's
/// per-connection errors go through a filter, and a client hanging up is not an error.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn closed_tunnels_are_not_logged_as_errors() {
    let home = tempfile::tempdir().unwrap();
    let llmtap = Llmtap::spawn(home.path(), &[]);
    let ca = harness::get(llmtap.admin, "/ca.pem").await.1;
    for _ in 0..5 {
        let tunnel = client::connect_tunnel(llmtap.proxy, &format!("{HOST}:443")).await;
        // An exiting agent: its socket is reset, not closed in order.
        tunnel.set_zero_linger().unwrap();
        let tls = client::tls_over(tunnel, HOST, client::tls(&ca, false))
            .await
            .expect("llmtap's leaf");
        // Let llmtap's side of the handshake finish (it sends no session tickets to wait
        // for), then reset: zero linger makes the close a reset, as when an agent exits.
        tokio::time::sleep(Duration::from_millis(50)).await;
        drop(tls);
    }
    // Time for llmtap to see the resets before it is stopped (not a measured bound).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let llmtap = tokio::task::spawn_blocking(move || {
        let mut llmtap = llmtap;
        assert!(llmtap.terminate().success());
        llmtap
    })
    .await
    .unwrap();
    // Nothing at all is said about clients that went away (BENCHMARKS.md: "The same 1,000
    // closes now log nothing").
    let stderr = llmtap.stderr();
    assert!(!stderr.contains("ERROR"), "{stderr}");
    assert!(!stderr.contains("WARN"), "{stderr}");
    assert!(!stderr.contains("connect error"), "{stderr}");
}

/// A client that rejects llmtap's certificate with an alert got the hint naming the variable
/// that fixes it, but Node clients (Claude Code, Gemini CLI) hang up mid-handshake without
/// one, and got nothing. Fixed in b073f07 (found with the real Claude Code).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_hangs_up_mid_handshake_gets_the_trust_hint() {
    let home = tempfile::tempdir().unwrap();
    let llmtap = Llmtap::spawn(home.path(), &[]);
    let mut tunnel = client::connect_tunnel(llmtap.proxy, &format!("{HOST}:443")).await;
    // A ClientHello, llmtap's answer read, then the hang-up: no alert.
    let mut hello = Vec::new();
    ClientConnection::new(client::tls("", false), ServerName::try_from(HOST).unwrap())
        .unwrap()
        .write_tls(&mut hello)
        .unwrap();
    tunnel.write_all(&hello).await.unwrap();
    let mut flight = [0u8; 512];
    assert!(
        tunnel.read(&mut flight).await.unwrap() > 0,
        "llmtap answered"
    );
    drop(tunnel);
    // Time for llmtap to see the hang-up before it is stopped (not a measured bound).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let llmtap = tokio::task::spawn_blocking(move || {
        let mut llmtap = llmtap;
        assert!(llmtap.terminate().success());
        llmtap
    })
    .await
    .unwrap();
    let stderr = llmtap.stderr();
    assert_eq!(
        stderr.matches("hung up during the TLS handshake").count(),
        1,
        "{stderr}"
    );
    assert!(stderr.contains("NODE_EXTRA_CA_CERTS="), "{stderr}");
}

/// The CA directory was made with the process's umask (0777 under `umask 000`), so other
/// users could replace the CA files. Fixed in fa6536f: the directory is 0700 and the key
/// 0600 whatever the umask. Run in a process of its own: the umask is process-wide, and a
/// unit test that changed it raced the tests beside it (their temporary directories 0777).
#[test]
fn ca_directory_and_key_are_private_whatever_the_umask() {
    let root = tempfile::tempdir().unwrap();
    // A HOME that does not exist yet: llmtap creates it too, 0700.
    let home = root.path().join("home");
    let out = Command::new("sh")
        .env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("HOME", &home)
        .args(["-c", "umask 000 && exec \"$@\"", "sh", BIN, "ca", "path"])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mode = |p: &std::path::Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    let dir = home.join(".llmtap");
    assert_eq!(mode(&home), 0o700, "a parent llmtap created");
    assert_eq!(mode(&dir), 0o700, "the CA directory");
    assert_eq!(mode(&dir.join("ca-key.pem")), 0o600, "the CA key");
    assert_eq!(mode(&dir.join("ca.pem")), 0o644, "the CA certificate");
}

/// A multi-byte character in an `--auth-file` hash reached byte slicing and panicked at
/// start instead of naming the line. Fixed in 87eafbf, with this case (then an entry of
/// `errors_name_the_line_not_its_content` in src/config/auth.rs).
#[test]
fn auth_file_multibyte_hash_names_its_line_not_panics() {
    let text = "a:sha256:aé628df8dc20afee7b08e9538d45d457870dd7c1952964f4e7d0ed07ba4ef3a team=t";
    let (n, why) = AuthFile::parse(text).expect_err(text);
    assert_eq!(n, 1, "{text}");
    assert!(!why.contains("plain-secret"));
    assert!(
        !why.contains("aé628"),
        "the line is named, not quoted: {why}"
    );
}

// ------------------------------------------------------------------------------------------
// The attacker review (SECURITY.md)
// ------------------------------------------------------------------------------------------

// Faults found by the attacker review of the hardening work, fixed in 1355090 (these tests
// came with it, in tests/hardening.rs): a WebSocket upgrade went through hudsucker's own
// relay, unchecked, so a name resolving to loopback reached it (and a blind CONNECT got its
// 200 before its destination was resolved and checked); a tunnel that went silent after its
// TLS handshake was kept open forever; only the first Host field was checked; a Connection
// value that was not ASCII was not read, so the fields it named were forwarded.

#[tokio::test]
async fn websocket_upgrades_to_names_resolving_to_loopback_are_refused() {
    let upstream = FakeUpstream::start().await;
    let (origin, heads) = plain_origin().await;
    let tap = harness::start(&upstream, &[]).await;
    for host in [
        format!("2130706433:{}", origin.port()),
        format!("0177.0.0.1:{}", origin.port()),
        format!("localhost:{}", origin.port()),
    ] {
        let request = format!(
            "GET http://{host}/ws HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\
             Sec-WebSocket-Version: 13\r\n\r\n"
        );
        let reply = raw(tap.proxy, request.as_bytes()).await;
        assert!(reply.starts_with("HTTP/1.1 403"), "{host}: {reply}");
    }
    let reply = raw(
        tap.proxy,
        format!(
            "CONNECT 2130706433:{0} HTTP/1.1\r\nHost: x:{0}\r\n\r\n",
            origin.port()
        )
        .as_bytes(),
    )
    .await;
    assert!(
        reply.starts_with("HTTP/1.1 403"),
        "refused before the 200: {reply}"
    );
    assert!(
        heads.lock().unwrap().is_empty(),
        "the loopback origin was never reached"
    );
}

#[tokio::test]
async fn a_tunnel_silent_after_its_tls_handshake_is_closed_after_the_header_timeout() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &["--client-header-timeout", "1s"]).await;
    let tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    let mut tls = client::tls_over(tunnel, HOST, client::tls(&tap.ca_pem, false))
        .await
        .unwrap();
    let mut byte = [0u8; 1];
    let closed = tokio::time::timeout(Duration::from_secs(10), tls.read(&mut byte)).await;
    assert!(
        matches!(closed, Ok(Ok(0)) | Ok(Err(_))),
        "still open: {closed:?}"
    );
}

#[tokio::test]
async fn a_second_host_field_naming_another_destination_is_misdirected() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let tunnel = client::connect_tunnel(tap.proxy, &format!("{HOST}:443")).await;
    let mut tls = client::tls_over(tunnel, HOST, client::tls(&tap.ca_pem, false))
        .await
        .unwrap();
    let request = format!(
        "GET /v1/models HTTP/1.1\r\nHost: {HOST}\r\nHost: 127.0.0.1:{}\r\nconnection: close\r\n\r\n",
        tap.admin.port()
    );
    tls.write_all(request.as_bytes()).await.unwrap();
    let reply = read_reply(&mut tls).await;
    assert!(
        reply.starts_with("HTTP/1.1 421") || reply.starts_with("HTTP/1.1 400"),
        "{reply}"
    );
    assert!(upstream.seen().is_empty());
}

#[tokio::test]
async fn hop_by_hop_fields_named_in_a_non_ascii_connection_value_are_not_forwarded() {
    let upstream = FakeUpstream::start().await;
    let (origin, heads) = plain_origin().await;
    let allow = format!("127.0.0.1:{}", origin.port());
    let tap = harness::start(&upstream, &["--allow-destination", &allow]).await;
    let mut request = format!("GET http://{origin}/ HTTP/1.1\r\nHost: {origin}\r\n").into_bytes();
    request.extend_from_slice(b"Connection: close, X-Hop2, \xff\r\nX-Hop2: hop2\r\n\r\n");
    let reply = raw(tap.proxy, &request).await;
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let head = heads.lock().unwrap()[0].to_ascii_lowercase();
    assert!(!head.contains("x-hop2"), "{head}");
}

/// The hop-by-hop fields of a WebSocket upgrade (those its Connection names, keep-alive, te)
/// were forwarded upstream: hudsucker relayed the upgrade as it came. Fixed in 1355090 (the
/// upgrade goes through llmtap's own relay); this test came in 6513b3f (review finding F5),
/// then in tests/dialects.rs.
#[tokio::test]
async fn hop_by_hop_fields_of_a_websocket_upgrade_are_not_forwarded() {
    let upstream = FakeUpstream::start().await;
    let tap = harness::start(&upstream, &[]).await;
    let (ws, _) = client::responses_websocket(
        tap.proxy,
        &tap.ca_pem,
        &[
            ("connection", "Upgrade, X-Hop"),
            ("x-hop", "1"),
            ("keep-alive", "timeout=5"),
            ("te", "trailers"),
            ("x-end-to-end", "kept"),
        ],
    )
    .await
    .expect("upgrade");
    drop(ws);
    let seen = upstream.seen();
    let upgrade = seen
        .iter()
        .find(|s| s.header("upgrade").is_some())
        .expect("the upgrade reached the upstream");
    for hop in ["x-hop", "keep-alive", "te"] {
        assert_eq!(upgrade.header(hop), None, "{hop} forwarded");
    }
    assert_eq!(upgrade.header("x-end-to-end"), Some("kept"));
    assert_eq!(upgrade.header("connection"), Some("Upgrade"));
}

/// `--idle-timeout` never closed an idle HTTP/2 connection: hyper has no idle timer for h2,
/// so a client could hold one open forever (review finding F3). Fixed in 0ede5c4: the patched
/// hudsucker counts open requests and shuts the connection down gracefully after the idle
/// timeout without one; this test came with it, in tests/hardening.rs.
#[tokio::test]
async fn an_idle_http2_connection_is_closed_after_the_idle_timeout_but_not_mid_call() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &["--idle-timeout", "2s"]).await;
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, true).await;
    assert!(conn.is_h2());
    // A call longer than the idle timeout is not cut: a request is open all along.
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body("stream_text"),
        &[("x-fake-first-delay-ms", "3000")],
        true,
    );
    let res = collect(conn.send(req).await.unwrap()).await;
    assert_eq!(res.status, 200);
    assert_eq!(tap.next_record().await.outcome, Outcome::Ok);
    // Then idle: the connection is closed (GOAWAY), so a later request fails.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let req = client::messages_request(HOST, "/v1/messages", &body("json_message"), &[], true);
    assert!(
        conn.send(req).await.is_err(),
        "the idle connection was closed"
    );
}

// ------------------------------------------------------------------------------------------
// Parsing (the review of issue 12's work, 68171db, and the fuzzers)
// ------------------------------------------------------------------------------------------

/// A top-level string element of a streamed JSON array (Gemini without `alt=sse`) that held
/// a `,` or `]` was cut there, or not, depending on where the bytes were split. Found by the
/// `json_array` fuzzer; fixed in cffab7c with this test (then in src/dialects/json_array.rs
/// as `top_level_scalars_come_out_whole_however_split`) and the fuzzer's own input.
#[test]
fn json_array_top_level_string_element_comes_out_whole_however_split() {
    fn split(pieces: &[&[u8]]) -> Result<Vec<String>, ParseError> {
        let mut s = Splitter::new(1 << 16);
        let mut out = Vec::new();
        for piece in pieces {
            s.push(piece, &mut |e| {
                out.push(String::from_utf8_lossy(e).into_owned());
                Ok(())
            })?;
        }
        Ok(out)
    }
    // Found by the json_array fuzzer: a top-level string element.
    let text = b"[\"a,]\",{\"b\":1},7]";
    let whole = split(&[text]).expect("whole");
    assert_eq!(whole, vec![r#""a,]""#, r#"{"b":1}"#, "7"]);
    // The fuzzer's own input (fuzz/artifacts/json_array, 2026-11-30), not even JSON.
    for text in [&text[..], b"[\"\"\"\"\"\"\r\"\""] {
        let whole = split(&[text]);
        for at in 0..text.len() {
            let (a, b) = text.split_at(at);
            assert_eq!(split(&[a, b]), whole, "split at {at}");
        }
    }
}

/// The socket's decoder cut long strings in the client's messages too, so a
/// `response.create` with long instructions was recorded with the size of what was kept
/// (requests must be read whole; only the server's messages are cut). Fixed in 68171db.
#[tokio::test]
async fn websocket_requests_are_read_whole() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let (mut ws, _) = client::responses_websocket(tap.proxy, &tap.ca_pem, &[])
        .await
        .expect("upgrade");
    let turn = &FakeUpstream::ws_turns("ws_session")[0];
    let mut create: Value = serde_json::from_str(&turn.client).unwrap();
    create["instructions"] = json!("x".repeat(20_000));
    let create = create.to_string();
    ws.send(Message::text(create.clone())).await.unwrap();
    let mut answered = 0;
    while answered < turn.server.len() {
        match tokio::time::timeout(Duration::from_secs(10), ws.next())
            .await
            .expect("server frame")
        {
            Some(Ok(Message::Text(_))) => answered += 1,
            Some(Ok(_)) => {}
            other => panic!("socket ended: {other:?}"),
        }
    }
    let record = tap.next_record().await;
    let target = Target {
        host: "api.openai.com",
        method: "GET",
        path: "/v1/responses",
        query: None,
        websocket: true,
    };
    let route = llmtap::providers::Providers::builtin()
        .route(&target)
        .unwrap();
    let whole = (route.dialect.parse_request)(
        route.operation,
        route.api_path(target.path),
        create.as_bytes(),
        None,
    )
    .unwrap();
    assert!(whole.system_chars >= 20_000, "{whole:?}");
    assert_eq!(
        record.request.as_ref().map(|r| r.system_chars),
        Some(whole.system_chars),
        "the request's facts are those of the whole message"
    );
}

/// `"error": null`, which some OpenAI-compatible servers send on every Chat chunk, was taken
/// for an error, so every such call was recorded failed. Fixed in 68171db.
#[test]
fn chat_error_null_is_no_error() {
    let route = llmtap::providers::Providers::builtin()
        .route(&dialects::post("api.openai.com", "/v1/chat/completions"))
        .unwrap();
    let mut parser = (route.dialect.stream_parser)(route.operation, None);
    for data in [
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[{"index":0,"delta":{"role":"assistant","content":"hi"},"finish_reason":null}],"error":null}"#,
        r#"{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"gpt-5","choices":[{"index":0,"delta":{},"finish_reason":"stop"}],"error":null}"#,
        "[DONE]",
    ] {
        parser
            .on_event(&Event {
                name: b"",
                data: data.as_bytes(),
            })
            .expect(data);
    }
    let facts = parser.facts();
    assert_eq!(facts.error_type, None, "{facts:?}");
    assert_eq!(facts.finish_reasons, ["stop"]);
    assert!(facts.complete);
}

/// A non-streamed Chat error body's own status (`error.code` as a number) was not recorded,
/// so a 200 carrying a quota error could not be judged by it. Fixed in 68171db.
#[test]
fn chat_json_error_body_status_counts() {
    let route = llmtap::providers::Providers::builtin()
        .route(&dialects::post("api.openai.com", "/v1/chat/completions"))
        .unwrap();
    let body = br#"{"error":{"message":"You exceeded your current quota.","type":"insufficient_quota","param":null,"code":429}}"#;
    let facts = (route.dialect.parse_response)(route.operation, 200, body, false).unwrap();
    assert_eq!(facts.error_type.as_deref(), Some("insufficient_quota"));
    assert_eq!(facts.error_status, Some(429));
}

/// Token counts from the wire were added with `+`: a hostile or broken count near `u64::MAX`
/// overflowed (a panic in debug builds, a wrapped total in release). Fixed in 68171db:
/// saturating sums.
#[test]
fn token_sums_saturate_instead_of_overflowing() {
    let max = u64::MAX;
    let gemini = llmtap::providers::Providers::builtin()
        .route(&dialects::post(
            "generativelanguage.googleapis.com",
            "/v1beta/models/gemini-2.5-flash:generateContent",
        ))
        .unwrap();
    let body = json!({
        "candidates": [{"content": {"parts": [{"text": "hi"}], "role": "model"},
            "finishReason": "STOP", "index": 0}],
        "usageMetadata": {"promptTokenCount": max, "toolUsePromptTokenCount": 1,
            "candidatesTokenCount": max, "thoughtsTokenCount": 1},
    })
    .to_string();
    let facts =
        (gemini.dialect.parse_response)(gemini.operation, 200, body.as_bytes(), false).unwrap();
    assert_eq!(
        (facts.usage.input, facts.usage.output),
        (Some(max), Some(max))
    );
    let anthropic = llmtap::providers::Providers::builtin()
        .route(&dialects::post(HOST, "/v1/messages"))
        .unwrap();
    let body = json!({
        "id": "msg_01SaTuRaTe", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
        "content": [{"type": "text", "text": "hi"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": max, "cache_read_input_tokens": 1,
            "cache_creation_input_tokens": 1, "output_tokens": 1},
    })
    .to_string();
    let facts =
        (anthropic.dialect.parse_response)(anthropic.operation, 200, body.as_bytes(), false)
            .unwrap();
    assert_eq!(facts.usage.input, Some(max));
}

/// With compaction, usage is the sum over `usage.iterations`; those sums were written over
/// the top-level counts, so a later usage object without `iterations` replaced them with its
/// own (the message iteration's) and the compaction step went unbilled. Fixed in 68171db:
/// the sums are kept apart and win.
#[test]
fn anthropic_compaction_sums_survive_a_later_usage_without_iterations() {
    let route = llmtap::providers::Providers::builtin()
        .route(&dialects::post(HOST, "/v1/messages"))
        .unwrap();
    let mut parser = (route.dialect.stream_parser)(route.operation, None);
    let events = [
        (
            "message_start",
            json!({"type": "message_start", "message": {"id": "msg_01CoMpAcT",
            "type": "message", "role": "assistant", "model": "claude-opus-4-8", "content": [],
            "stop_reason": null, "usage": {"input_tokens": 10, "output_tokens": 1}}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"input_tokens": 10, "output_tokens": 20, "iterations": [
                {"type": "compaction", "input_tokens": 100, "output_tokens": 50},
                {"type": "message", "input_tokens": 10, "output_tokens": 20}]}}),
        ),
        (
            "message_delta",
            json!({"type": "message_delta", "delta": {"stop_reason": "end_turn"},
            "usage": {"output_tokens": 20}}),
        ),
        ("message_stop", json!({"type": "message_stop"})),
    ];
    for (name, data) in &events {
        let data = data.to_string();
        parser
            .on_event(&Event {
                name: name.as_bytes(),
                data: data.as_bytes(),
            })
            .expect(name);
    }
    let usage = parser.facts().usage;
    assert_eq!(
        (usage.input, usage.output),
        (Some(110), Some(70)),
        "{usage:?}"
    );
}

/// A `cache_control` inside a tool call's `input` (the model's own data) was taken for the
/// request's last cache breakpoint, so its TTL (none: 5m) decided where an unsplit cache
/// write went instead of the 1h the request asked for. Fixed in 68171db.
#[test]
fn tool_inputs_are_no_cache_breakpoints() {
    let route = llmtap::providers::Providers::builtin()
        .route(&dialects::post(HOST, "/v1/messages"))
        .unwrap();
    let request = json!({
        "model": "claude-opus-4-8", "max_tokens": 1024,
        "system": [{"type": "text", "text": "Be terse.",
            "cache_control": {"type": "ephemeral", "ttl": "1h"}}],
        "messages": [
            {"role": "user", "content": "read the config"},
            {"role": "assistant", "content": [{"type": "tool_use", "id": "toolu_01CaChE",
                "name": "Read", "input": {"path": "cfg.json",
                    "cache_control": {"type": "ephemeral"}}}]},
            {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01CaChE",
                "content": "{}"}]},
        ],
    })
    .to_string();
    let request =
        (route.dialect.parse_request)(route.operation, "/v1/messages", request.as_bytes(), None)
            .unwrap();
    assert_eq!(request.cache_ttl.as_deref(), Some("1h"));
    let response = json!({
        "id": "msg_01CaChE", "type": "message", "role": "assistant", "model": "claude-opus-4-8",
        "content": [{"type": "text", "text": "ok"}], "stop_reason": "end_turn",
        "usage": {"input_tokens": 5, "cache_creation_input_tokens": 1000, "output_tokens": 2},
    })
    .to_string();
    let mut facts =
        (route.dialect.parse_response)(route.operation, 200, response.as_bytes(), false).unwrap();
    dialects::settle(Some(&request), &mut facts);
    assert_eq!(
        (facts.usage.cache_write_5m, facts.usage.cache_write_1h),
        (Some(0), Some(1000))
    );
}

// ------------------------------------------------------------------------------------------
// Bugs whose regression test lives beside the code
// ------------------------------------------------------------------------------------------

/// `(fixing commit, file, test)`: what broke is in each test (or its assertion's comment).
pub const BESIDE_THE_CODE: &[(&str, &str, &str)] = &[
    // A model name of any length was kept: 1 MiB of it became a Prometheus label, a span name
    // and attribute, and an attribute on every OTel metrics export (too large for a
    // collector, every export failing from then on).
    (
        "25213ee",
        "tests/otlp.rs",
        "a_megabyte_model_name_is_no_label_or_attribute",
    ),
    // A Chat stream with a bad event and no terminal event was no longer judged cut: any
    // parse error left the end unknown (only an unread last event should).
    (
        "68171db",
        "src/exchange/pipeline.rs",
        "a_bad_event_does_not_stop_parsing_nor_hide_a_cut_stream",
    ),
    // A processing tier without its own long-context price was billed below the standard
    // long-context price.
    (
        "68171db",
        "src/pricing.rs",
        "a_reported_service_tier_is_priced_at_its_own_rates",
    ),
    // A rate-limit error inside a stream or on a socket was an upstream_error.
    (
        "00de2fe",
        "src/exchange/record.rs",
        "outcomes_follow_status_then_stream_state",
    ),
    // The admin listener spun at full speed once the open-file limit was reached.
    (
        "fa6536f",
        "src/telemetry/admin.rs",
        "accept_failures_back_off_to_a_ceiling_without_spinning",
    ),
    // `basic` (lower case) in Proxy-Authorization was refused.
    (
        "fa6536f",
        "src/config/auth.rs",
        "the_basic_scheme_is_case_insensitive_and_any_whitespace_follows_it",
    ),
    // The transport crates' spans, which carry full URIs (keys in queries), reached the log
    // with a debug filter.
    (
        "fa6536f",
        "src/telemetry/logging.rs",
        "transport_spans_and_chatter_never_reach_stderr_whatever_the_filter",
    ),
    // Codex 0.169 groups its tools in `namespace` tools: each was offered as one tool named
    // after the namespace.
    (
        "68394fa",
        "src/dialects/openai_responses.rs",
        "namespace_tools_stand_for_the_tools_they_contain",
    ),
    // Parsing stopped at an event over its cap (a 30 MB fetched document), so the usage
    // after it was lost (BENCHMARKS.md, "Facts of events of any size"); one real-traffic case
    // per transport.
    (
        "d29c62e",
        "tests/real_traffic.rs",
        "anthropic_sse_web_fetch_large_result",
    ),
    ("d29c62e", "tests/real_traffic.rs", "gemini_array_4k_image"),
    (
        "d29c62e",
        "tests/real_traffic.rs",
        "codex_ws_large_completed",
    ),
];

#[test]
fn bugs_tested_beside_the_code_name_tests_that_exist() {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    for (commit, file, test) in BESIDE_THE_CODE {
        // The file, and the folder it opens (`x.rs` + `x/`): tests may sit in `x/tests.rs`.
        let mut source = std::fs::read_to_string(root.join(file)).unwrap();
        let mut dirs = vec![root.join(file.trim_end_matches(".rs"))];
        while let Some(dir) = dirs.pop() {
            for entry in std::fs::read_dir(&dir).into_iter().flatten().flatten() {
                let path = entry.path();
                if path.is_dir() {
                    dirs.push(path);
                } else if path.extension().is_some_and(|x| x == "rs") {
                    source.push_str(&std::fs::read_to_string(&path).unwrap());
                }
            }
        }
        assert!(
            source.contains(&format!("fn {test}(")),
            "{commit}: {file} has no test {test}"
        );
    }
}
