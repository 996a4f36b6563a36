//! `--calls-file` keeps every call as a JSON line; `llmtap report FILE` turns the file into
//! cost and tokens by day, team, user, client and model.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    client::{self, collect},
    harness,
    process::command,
};
use llmtap_fake_upstream::FakeUpstream;

#[tokio::test]
async fn the_calls_file_feeds_a_report_by_team_user_client_and_model() {
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("calls.jsonl");
    let mut tap = harness::start(
        &upstream,
        &["--calls-file", file.to_str().unwrap(), "--user", "ci"],
    )
    .await;
    let mut costs = std::collections::BTreeMap::<&str, f64>::new();
    for (team, case) in [
        ("team-a", "stream_cache"),
        ("team-a", "json_message"),
        ("team-b", "stream_text"),
    ] {
        let mut conn = client::via_proxy(tap.proxy, "api.anthropic.com", &tap.ca_pem, false).await;
        let body = FakeUpstream::fixture(case, "request.json");
        let headers = [("x-fake-scenario", case), ("x-llmtap-team", team)];
        let req =
            client::messages_request("api.anthropic.com", "/v1/messages", &body, &headers, false);
        collect(conn.send(req).await.unwrap()).await;
        *costs.entry(team).or_default() += tap.next_record().await.cost_usd.unwrap();
    }
    tap.shutdown().await;
    let lines = std::fs::read_to_string(&file).unwrap();
    assert_eq!(lines.lines().count(), 3, "one JSON line per call");
    // A stray line (say, a truncated write) is skipped, not fatal.
    std::fs::write(&file, format!("{lines}not a call\n")).unwrap();

    let out = command(dir.path())
        .args(["report", file.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success());
    let report = String::from_utf8(out.stdout).unwrap();
    assert!(report.starts_with("3 calls — "), "{report}");
    assert!(
        report.contains("(1 lines were not call records and were skipped)"),
        "{report}"
    );
    for section in ["by day", "by team", "by user", "by client", "by model"] {
        assert!(report.contains(section), "{section}: {report}");
    }
    assert!(report.contains(&format!("  team-a: 2 calls — in 33471 (cache read 24576, write 5m 3741, 1h 5120), out 109 (reasoning 0), ${:.4}", costs["team-a"])), "{report}");
    assert!(report.contains(&format!("  team-b: 1 call — in 27 (cache read 0, write 5m 0, 1h 0), out 46 (reasoning 0), ${:.4}", costs["team-b"])), "{report}");
    assert!(report.contains("  ci: 3 calls"), "{report}");
    assert!(
        report.contains("  anthropic-sdk-python: 3 calls"),
        "{report}"
    );
    // Teams come most expensive first.
    assert!(report.find("  team-a:").unwrap() < report.find("  team-b:").unwrap());
}

#[test]
fn a_calls_file_that_cannot_be_written_exits_2() {
    let dir = tempfile::tempdir().unwrap();
    let out = command(dir.path())
        .args([
            "run",
            "--listen",
            "127.0.0.1:0",
            "--admin",
            "127.0.0.1:0",
            "--calls-file",
            "/nonexistent/dir/calls.jsonl",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("llmtap: --calls-file: "));
}
