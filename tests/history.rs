//! The call history (`--db`, SQLite): every call as a row holding its whole call line, its
//! captured content apart and only with `--capture-content` (no span exporter needed), read
//! back by `llmtap report`, cut by `llmtap purge`; the binary's default database is private.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::os::unix::fs::PermissionsExt as _;

use crate::support::{
    client::{self, collect},
    harness,
    process::{Llmtap, run},
};
use llmtap::telemetry::history::Store;
use llmtap_fake_upstream::FakeUpstream;

const HOST: &str = "api.anthropic.com";

async fn call(tap: &harness::Tap, case: &str) {
    let mut conn = client::via_proxy(tap.proxy, HOST, &tap.ca_pem, false).await;
    let body = FakeUpstream::fixture(case, "request.json");
    let req = client::messages_request(
        HOST,
        "/v1/messages",
        &body,
        &[("x-fake-scenario", case)],
        false,
    );
    assert!(collect(conn.send(req).await.unwrap()).await.end.is_ok());
}

#[tokio::test]
async fn every_call_is_a_row_with_its_call_line_and_content_only_when_captured() {
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("history.db");
    let db_arg = db.to_str().unwrap();
    // Without capture: rows, no content.
    let mut tap = harness::start(&upstream, &["--db", db_arg]).await;
    call(&tap, "stream_tool_use").await;
    let plain = tap.next_record().await;
    tap.shutdown().await;
    // With capture and no span exporter: the history keeps what is captured.
    let mut tap = harness::start(&upstream, &["--db", db_arg, "--capture-content"]).await;
    call(&tap, "stream_tool_use").await;
    let captured = tap.next_record().await;
    tap.shutdown().await;

    let store = Store::open_existing(&db).unwrap();
    assert_eq!(store.counts().unwrap(), (2, 1));
    assert_ne!(plain.id, captured.id, "ids unique across restarts");
    let line = store.line(&plain.id.to_string()).unwrap().expect("row");
    let stored: serde_json::Value = serde_json::from_str(&line).unwrap();
    let printed: serde_json::Value =
        serde_json::from_str(&llmtap::telemetry::calls::json(&plain)).unwrap();
    assert_eq!(stored, printed, "the row holds the whole call line");
    assert_eq!(stored["id"], plain.id.to_string());
    assert_eq!(
        stored["conversation_id"],
        "3b9d6c1e-7a2f-4e58-9c0d-1f2e3a4b5c6d"
    );
    // The captured call's system prompt and tools are in its content row; nothing of them in
    // the line, and no content row for the call made without capture.
    assert_eq!(store.content(&plain.id.to_string()).unwrap(), None);
    let content = store
        .content(&captured.id.to_string())
        .unwrap()
        .expect("content");
    assert!(content.system.unwrap().contains("You are Claude Code"));
    assert!(
        content
            .tools
            .unwrap()
            .contains("Executes a given bash command")
    );
    assert!(content.output.is_some());
    let captured_line = store.line(&captured.id.to_string()).unwrap().unwrap();
    assert!(!captured_line.contains("You are Claude Code"));
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_binary_keeps_a_private_history_that_report_reads_and_purge_cuts() {
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let resolve = format!("{HOST}:443:{}", upstream.addr);
    let mut llmtap = Llmtap::spawn(
        home.path(),
        &[
            "--upstream-ca",
            upstream.ca_pem_path().to_str().unwrap(),
            "--resolve",
            &resolve,
            "--team",
            "platform",
        ],
    );
    let banner = llmtap.stderr();
    assert!(
        banner.contains(&format!("ui        http://{}/", llmtap.admin)),
        "{banner}"
    );
    assert!(banner.contains(".llmtap/llmtap.db"), "{banner}");
    let ca = harness::get(llmtap.admin, "/ca.pem").await.1;
    for case in ["stream_cache", "json_message"] {
        let mut conn = client::via_proxy(llmtap.proxy, HOST, &ca, false).await;
        let body = FakeUpstream::fixture(case, "request.json");
        let req = client::messages_request(
            HOST,
            "/v1/messages",
            &body,
            &[("x-fake-scenario", case)],
            false,
        );
        assert!(collect(conn.send(req).await.unwrap()).await.end.is_ok());
    }
    // SIGTERM writes what is queued before the exit.
    let status = tokio::task::spawn_blocking(move || llmtap.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    let db = home.path().join(".llmtap/llmtap.db");
    assert_eq!(
        std::fs::metadata(&db).unwrap().permissions().mode() & 0o777,
        0o600,
        "the default history is private"
    );
    // `llmtap report` reads the history by default.
    let (code, out, err) = run(home.path(), &["report", "--by", "team"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("2 calls"), "{out}");
    assert!(out.contains("platform"), "{out}");
    // `llmtap purge --before` a date in the future deletes both.
    let (code, out, err) = run(home.path(), &["purge", "--before", "2999-01-01"]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("purged 2 calls"), "{out}");
    let (code, out, _) = run(home.path(), &["report"]);
    assert_eq!(code, 0);
    assert!(out.contains("0 calls"), "{out}");
    // `llmtap wrap --ui` says where the run's UI is (no browser to open here).
    let (code, _, err) = run(
        home.path(),
        &["wrap", "--ui", "--summary", "off", "--", "true"],
    );
    assert_eq!(code, 0, "{err}");
    assert!(err.contains("while it runs: http://127.0.0.1:"), "{err}");
    // A history that does not exist is an error naming it, not a new empty file.
    let (code, _, err) = run(home.path(), &["report", "--db", "/nonexistent/h.db"]);
    assert_eq!(code, 2);
    assert!(err.contains("/nonexistent/h.db"), "{err}");
    assert!(!std::path::Path::new("/nonexistent/h.db").exists());
}

#[tokio::test]
async fn a_path_that_cannot_be_a_database_stops_the_start_naming_db() {
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let not_a_db = dir.path().join("text.db");
    std::fs::write(
        &not_a_db,
        "this is not a SQLite database, it is a text file",
    )
    .unwrap();
    let cli = <llmtap::cli::Cli as clap::Parser>::try_parse_from([
        "llmtap",
        "--listen",
        "127.0.0.1:0",
        "--admin",
        "127.0.0.1:0",
        "--ca-dir",
        dir.path().to_str().unwrap(),
        "--db",
        not_a_db.to_str().unwrap(),
    ])
    .unwrap();
    let _ = &upstream;
    let config = llmtap::config::Config::from_args(cli.run).unwrap();
    match llmtap::start(config, Box::new(std::io::sink())).await {
        Err(llmtap::StartError::Config(e)) => assert_eq!(e.flag, "--db"),
        other => panic!("expected a --db error, got {:?}", other.map(|_| ())),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_unwritable_default_history_leaves_llmtap_running_and_says_why() {
    // A home that is a file: ~/.llmtap cannot exist; the CA lives elsewhere (--ca-dir).
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("home-is-a-file");
    std::fs::write(&home, "not a directory").unwrap();
    let ca = dir.path().join("ca");
    let mut llmtap = Llmtap::spawn(&home, &["--ca-dir", ca.to_str().unwrap()]);
    let banner = llmtap.stderr();
    assert!(banner.contains("history   off: "), "{banner}");
    assert_eq!(harness::get(llmtap.admin, "/healthz").await.0, 200);
    let status = tokio::task::spawn_blocking(move || llmtap.terminate())
        .await
        .unwrap();
    assert_eq!(status.code(), Some(0));
    // An explicit --db there is the user's mistake: exit 2 naming the flag.
    let db = home.join("h.db");
    let (code, _, err) = run(
        &home,
        &[
            "run",
            "--ca-dir",
            ca.to_str().unwrap(),
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--db",
            db.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("--db"), "{err}");
    // A short admin token is refused before anything starts.
    let (code, _, err) = run(
        &home,
        &[
            "run",
            "--ca-dir",
            ca.to_str().unwrap(),
            "--admin-token",
            "short",
        ],
    );
    assert_eq!(code, 2);
    assert!(err.contains("--admin-token"), "{err}");
}
