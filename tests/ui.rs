//! The web UI in a real browser: Debian's `chromium` and `chromium-driver` driven by Selenium
//! (`tests/e2e/ui/ui_browser.py`, the helpers in `tests/e2e/ui/browser.py`) against llmtap
//! with a history and `--capture-content`. A call appears in the live list without a reload
//! within 2 s; its page shows the model, tokens and cost of its call line, its system prompt
//! and a tool's description; a session page lists its calls in order with the tool run; the
//! overview draws; no page makes a request to another host, trips the Content-Security-Policy
//! or logs an error. Screenshots of each page go to `target/ui-screenshots/`.
//!
//! Needs chromium, chromedriver and `selenium` in the e2e venv (`.ci/run` installs them);
//! without them the test says so and passes, unless `LLMTAP_E2E=1` demands them.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    clippy::print_stderr,
    reason = "the test reads CI's LLMTAP_E2E and LLMTAP_PYTHON, and says when it skips"
)]

use std::{process::Stdio, time::Duration};

use tokio::io::{AsyncBufReadExt as _, AsyncWriteExt as _, BufReader};

use crate::support::{
    client::{self, collect},
    harness,
};
use llmtap_fake_upstream::FakeUpstream;

const HOST: &str = "api.anthropic.com";

fn found(tool: &str) -> bool {
    std::process::Command::new(tool)
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success())
}

async fn call(tap: &harness::Tap, body: &[u8], case: &str) {
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        body,
        &[("x-fake-scenario", case)],
        false,
    );
    assert!(collect(conn.send(req).await.unwrap()).await.end.is_ok());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_ui_shows_live_calls_their_details_and_sessions_in_a_real_browser() {
    let python = std::env::var("LLMTAP_PYTHON").ok();
    let selenium = python.as_deref().is_some_and(|py| {
        std::process::Command::new(py)
            .args(["-c", "import selenium"])
            .output()
            .is_ok_and(|o| o.status.success())
    });
    if !(found("chromium") && found("chromedriver") && selenium) {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but chromium, chromedriver or selenium is missing"
        );
        eprintln!("skipped: chromium, chromedriver or selenium (LLMTAP_PYTHON) is missing");
        return;
    }
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("ui.db");
    let mut tap = harness::start(
        &upstream,
        &["--db", db.to_str().unwrap(), "--capture-content"],
    )
    .await;
    let admin = format!("http://{}", tap.admin);
    let shots = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("target/ui-screenshots");
    let mut browser = tokio::process::Command::new(python.unwrap())
        .arg(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/e2e/ui/ui_browser.py"))
        .env("LLMTAP_UI_ADMIN", &admin)
        .env("LLMTAP_UI_SHOTS", &shots)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut to = browser.stdin.take().unwrap();
    let mut from = BufReader::new(browser.stdout.take().unwrap()).lines();
    let mut next = async || {
        tokio::time::timeout(Duration::from_secs(60), from.next_line())
            .await
            .expect("the browser script answers within 60 s")
            .unwrap()
            .expect("a line from the browser script")
    };
    assert_eq!(next().await, "ready");

    // A call finishes while the list is open.
    call(
        &tap,
        &FakeUpstream::fixture("stream_tool_use", "request.json"),
        "stream_tool_use",
    )
    .await;
    let first = tap.next_record().await;
    // Written to the history before the browser opens its page (the row itself came live).
    tap.flush_history().await;
    to.write_all(format!("call {}\n", first.id).as_bytes())
        .await
        .unwrap();
    let seen = next().await;
    // When the row was added to the open page (the page's clock, this machine's), against
    // when the call ended.
    let row_at: f64 = seen.rsplit(' ').next().unwrap().parse().unwrap();
    let ended = (first.start + first.duration)
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs_f64()
        * 1000.0;
    let delay = row_at - ended;
    assert!(
        (-50.0..2000.0).contains(&delay),
        "the row appeared {delay:.0} ms after the call ended"
    );
    eprintln!("live row {delay:.1} ms after the call ended");

    // Its tool's result comes back in the same session.
    call(&tap, &harness::tool_result_follow_up(), "stream_text").await;
    let second = tap.next_record().await;
    tap.flush_history().await;
    let session = first.conversation_id.clone().expect("a session");
    to.write_all(format!("session {session} {} {}\n", first.id, second.id).as_bytes())
        .await
        .unwrap();
    let result = next().await;
    let result: serde_json::Value =
        serde_json::from_str(result.strip_prefix("result ").expect("the result line")).unwrap();
    let _ = browser.wait().await;

    assert_eq!(
        result["not_reloaded"], true,
        "the row came without a reload"
    );
    let page = &result["call"];
    assert_eq!(page["title"], format!("chat {}", first.model().unwrap()));
    assert_eq!(page["cost"], format!("${:.4}", first.cost_usd.unwrap()));
    let u = &first.response.usage;
    for (kind, want) in [
        ("input", u.input),
        ("output", u.output),
        ("cache_read", u.cache_read),
        ("cache_write_5m", u.cache_write_5m),
        ("cache_write_1h", u.cache_write_1h),
    ] {
        let shown = want.map_or_else(|| "-".to_owned(), |n| n.to_string());
        assert_eq!(page["tokens"][kind], shown, "{kind}");
    }
    assert!(
        page["system"]
            .as_str()
            .unwrap()
            .contains("You are Claude Code"),
        "{page}"
    );
    assert!(
        page["tools"]
            .as_str()
            .unwrap()
            .contains("Executes a given bash command"),
        "{page}"
    );
    assert_eq!(
        result["session"]["calls"],
        serde_json::json!([first.id.to_string(), second.id.to_string()]),
        "the session's calls in order"
    );
    assert!(
        result["session"]["tool_bars"].as_u64().unwrap() >= 1,
        "{result}"
    );
    assert!(result["overview_rects"].as_u64().unwrap() >= 1, "{result}");
    assert_eq!(
        result["foreign"],
        serde_json::json!([]),
        "requests to other hosts"
    );
    assert_eq!(
        result["blocked"],
        serde_json::json!([]),
        "the browser reached out"
    );
    assert_eq!(result["csp"], serde_json::json!([]), "CSP violations");
    assert_eq!(result["errors"], serde_json::json!([]), "console errors");
    for page in ["calls", "call", "session", "overview"] {
        assert!(shots.join(format!("{page}.png")).exists(), "{page}.png");
    }
}

/// A GET with extra header lines; returns (status, head, body).
async fn get_with(addr: std::net::SocketAddr, path: &str, headers: &str) -> (u16, String, String) {
    use tokio::io::AsyncReadExt as _;
    let mut tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
    // A browser on this machine names loopback; a test names another host itself.
    let host = if headers.to_ascii_lowercase().contains("host:") {
        String::new()
    } else {
        format!("Host: {addr}\r\n")
    };
    tcp.write_all(format!("GET {path} HTTP/1.0\r\n{host}{headers}\r\n").as_bytes())
        .await
        .unwrap();
    let mut buf = Vec::new();
    tcp.read_to_end(&mut buf).await.unwrap();
    let text = String::from_utf8_lossy(&buf).into_owned();
    let status = text.get(9..12).and_then(|s| s.parse().ok()).unwrap_or(0);
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or((&text, ""));
    (status, head.to_ascii_lowercase(), body.to_owned())
}

#[tokio::test]
async fn pages_carry_a_strict_csp_and_content_only_when_captured() {
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("h.db");
    let mut tap = harness::start(&upstream, &["--db", db.to_str().unwrap()]).await;
    call(
        &tap,
        &FakeUpstream::fixture("stream_tool_use", "request.json"),
        "stream_tool_use",
    )
    .await;
    let record = tap.next_record().await;
    tap.flush_history().await;
    for path in ["/", "/overview", &format!("/calls/{}", record.id)] {
        let (status, head, body) = get_with(tap.admin, path, "").await;
        assert_eq!(status, 200, "{path}: {body}");
        assert!(
            head.contains("content-security-policy: default-src 'none'; script-src 'self'"),
            "{path}: {head}"
        );
        assert!(head.contains("cache-control: no-store"), "{path}");
        // No inline script or style anywhere, and no other host named.
        assert!(
            !body.contains("<script>") && !body.contains("style="),
            "{path}"
        );
        assert!(
            !body.contains("http://") && !body.contains("https://"),
            "{path}"
        );
    }
    let (_, _, page) = get_with(tap.admin, &format!("/calls/{}", record.id), "").await;
    assert!(
        page.contains("--capture-content"),
        "the page says how to capture"
    );
    // The cost by kind of token, at its rate: the parts add up to the call's cost.
    assert!(page.contains("USD per million"), "{page}");
    let parts: f64 = record.cost_parts.iter().map(|p| p.usd).sum();
    assert!((parts - record.cost_usd.unwrap()).abs() < 1e-12);
    assert!(
        record
            .cost_parts
            .iter()
            .any(|p| p.kind == "cache_read" && p.tokens > 0)
    );
    assert!(
        !page.contains("You are Claude Code"),
        "no content without capture"
    );
    assert_eq!(get_with(tap.admin, "/calls/not-a-call", "").await.0, 404);
    // DNS rebinding: a page elsewhere whose name now points at 127.0.0.1 is not answered.
    let rebound = "Host: attacker.example:9464\r\n";
    for path in ["/", "/events", &format!("/calls/{}", record.id)] {
        assert_eq!(get_with(tap.admin, path, rebound).await.0, 421, "{path}");
    }
    assert_eq!(get_with(tap.admin, "/metrics", rebound).await.0, 200);
    assert_eq!(
        get_with(tap.admin, "/assets/../Cargo.toml", "").await.0,
        404
    );
}

#[tokio::test]
async fn with_an_admin_token_the_ui_needs_it_and_metrics_stay_open() {
    // Beyond loopback the rule is the same with a token, and without one the UI is not served
    // there at all (`beyond_loopback_the_ui_needs_a_token_and_a_token_is_always_asked_for`,
    // beside the code: tests bind loopback only).
    let upstream = FakeUpstream::start().await;
    let token = "s3cret-admin-token";
    let gated = harness::start(&upstream, &["--admin-token", token]).await;
    let local = gated.admin;
    assert_eq!(get_with(local, "/", "").await.0, 401);
    assert_eq!(get_with(local, "/events", "").await.0, 401);
    assert_eq!(
        get_with(local, "/", "Authorization: Bearer wrong\r\n")
            .await
            .0,
        401
    );
    let bearer = format!("Authorization: Bearer {token}\r\n");
    assert_eq!(get_with(local, "/", &bearer).await.0, 200);
    // /login sets an HttpOnly, SameSite=Strict cookie that then admits the browser.
    let (status, head, _) = get_with(local, &format!("/login?token={token}"), "").await;
    assert_eq!(status, 303);
    assert!(head.contains("set-cookie: llmtap_token="), "{head}");
    assert!(
        head.contains("httponly") && head.contains("samesite=strict"),
        "{head}"
    );
    assert_eq!(get_with(local, "/login?token=nope", "").await.0, 401);
    let cookie = format!("Cookie: llmtap_token={token}\r\n");
    assert_eq!(get_with(local, "/", &cookie).await.0, 200);
    assert_eq!(
        get_with(local, "/metrics", "").await.0,
        200,
        "scrapers need no token"
    );
    assert_eq!(get_with(local, "/healthz", "").await.0, 200);
}

/// Values from traffic (a tool name, a model, captured prompt text) are text on every page and
/// in the live stream: no markup, no broken event.
#[tokio::test]
async fn hostile_names_and_content_are_text_on_the_pages_and_in_the_live_stream() {
    use llmtap::telemetry::{calls::sample_record, ui};
    let mut r = sample_record();
    r.response.tools_called = vec!["<script>alert(1)</script>\revent: x\rdata: y".into()];
    r.response.model = Some("m\"><img src=x onerror=alert(1)>".into());
    r.conversation_id = Some("../../overview".into());
    let event = ui::event(&std::sync::Arc::new(r.clone())).expect("an event");
    // One `event:` line, every other line a `data:` line: a CR cannot start a field.
    let lines: Vec<&str> = event
        .split(['\n', '\r'])
        .filter(|l| !l.is_empty())
        .collect();
    assert_eq!(lines[0], "event: call");
    assert!(
        lines[1..].iter().all(|l| l.starts_with("data: ")),
        "{event}"
    );
    assert!(
        !event.contains("<script>") && !event.contains("<img"),
        "{event}"
    );
    assert!(event.contains("&#60;script&#62;"), "{event}");
    // The session link stays a session link.
    assert!(event.contains("/sessions/..%2F..%2Foverview"), "{event}");
}
