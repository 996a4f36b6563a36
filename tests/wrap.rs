//! `llmtap wrap -- CMD`: the command runs through an in-process llmtap with exactly the
//! environment it needs, its exit code and signals pass through, and the summary of its
//! calls (by model: tokens by type, cost, TTFT, tools) is printed when it ends.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "the test compares the child's environment with its own"
)]

use std::{
    collections::BTreeMap,
    process::{Command, Stdio},
    time::Duration,
};

use crate::support::process::command;
use llmtap_fake_upstream::FakeUpstream;

/// Waits (bounded) until process `pid` catches SIGTERM: bit 15 of `SigCgt` in
/// /proc/PID/status.
async fn catches_sigterm(pid: u32) {
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    loop {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
        let caught = status
            .lines()
            .find_map(|l| l.strip_prefix("SigCgt:"))
            .map(|mask| u64::from_str_radix(mask.trim(), 16).unwrap())
            .unwrap();
        if caught & (1 << (15 - 1)) != 0 {
            return;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "llmtap wrap never caught SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

fn wrap_args(upstream: &FakeUpstream, ca_dir: &std::path::Path) -> Vec<String> {
    let resolve = upstream.resolve();
    vec![
        "wrap".into(),
        "--upstream-ca".into(),
        upstream.ca_pem_path().to_str().unwrap().into(),
        "--resolve".into(),
        resolve,
        "--ca-dir".into(),
        ca_dir.to_str().unwrap().into(),
    ]
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_runs_the_command_through_llmtap_and_summarizes_its_calls() {
    if Command::new("curl").arg("--version").output().is_err() {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but curl is missing"
        );
        return;
    }
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let body = home.path().join("body.json");
    std::fs::write(&body, FakeUpstream::fixture("stream_cache", "request.json")).unwrap();
    let mut args = wrap_args(&upstream, &home.path().join("ca"));
    args.extend([
        "--summary".into(),
        "text".into(),
        "--".into(),
        "sh".into(),
        "-c".into(),
    ]);
    // Two calls with curl, which trusts llmtap through SSL_CERT_FILE (the bundle), then an
    // exit code of our own.
    let script = format!(
        "for s in stream_cache stream_tool_use; do curl -sS --fail https://api.anthropic.com/v1/messages \
         -H 'x-fake-scenario: '$s -H 'content-type: application/json' -H 'user-agent: claude-cli/2.1.197 (external, cli)' \
         --data-binary @{} >/dev/null || exit 9; done; echo child-done; exit 5",
        body.display()
    );
    args.push(script);
    let out =
        tokio::task::spawn_blocking(move || command(home.path()).args(&args).output().unwrap())
            .await
            .unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        out.status.code(),
        Some(5),
        "the child's exit code:\n{stderr}"
    );
    assert_eq!(stdout, "child-done\n", "stdout belongs to the command");
    assert_eq!(upstream.seen().len(), 2);
    // stream_cache (claude-opus-4-8, $0.0783) + stream_tool_use (claude-opus-4-8).
    assert!(
        stderr.contains(
            "llmtap: 2 calls — in 51118 (cache read 41928, write 5m 4054, 1h 5120), out 169"
        ),
        "{stderr}"
    );
    assert!(stderr.contains("claude-opus-4-8: 2 calls"), "{stderr}");
    assert!(stderr.contains("tools Bash×1"), "{stderr}");
    assert!(stderr.contains("TTFT p50"), "{stderr}");
    assert!(stderr.contains(", $0.1"), "cost: {stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrap_changes_only_the_proxy_and_ca_variables_and_passes_signals() {
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut args = wrap_args(&upstream, &home.path().join("ca"));
    args.extend(["--summary".into(), "off".into(), "--".into(), "env".into()]);
    let out = command(home.path())
        .env("KEEP_ME", "1")
        .args(&args)
        .output()
        .unwrap();
    assert!(out.status.success());
    let env: BTreeMap<String, String> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_once('=').map(|(k, v)| (k.to_owned(), v.to_owned())))
        .collect();
    let added: Vec<&str> = env
        .keys()
        .map(String::as_str)
        .filter(|k| !["PATH", "HOME", "KEEP_ME"].contains(k))
        .collect();
    assert_eq!(
        added,
        [
            "AWS_CA_BUNDLE",
            "CODEX_CA_CERTIFICATE",
            "HTTPS_PROXY",
            "NODE_EXTRA_CA_CERTS",
            "REQUESTS_CA_BUNDLE",
            "SSL_CERT_FILE"
        ],
        "nothing else is added"
    );
    assert_eq!(env["KEEP_ME"], "1", "nothing is removed");
    assert!(env["HTTPS_PROXY"].starts_with("http://127.0.0.1:"));
    assert!(env["SSL_CERT_FILE"].ends_with("bundle.pem"));

    // SIGTERM to llmtap reaches the child, whose exit code comes back.
    let mut args = wrap_args(&upstream, &home.path().join("ca"));
    args.extend([
        "--".into(),
        "sh".into(),
        "-c".into(),
        "trap 'exit 42' TERM; echo ready; while :; do sleep 0.1; done".into(),
    ]);
    let mut child = command(home.path())
        .args(&args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let mut first = [0u8; 6];
    std::io::Read::read_exact(&mut stdout, &mut first).unwrap();
    assert_eq!(&first, b"ready\n");
    // llmtap wrap installs its SIGTERM handler only after it has started the child (a race
    // of llmtap's: a SIGTERM in between kills it and orphans the child), so the test signals
    // once /proc shows the handler, not as soon as the child speaks.
    catches_sigterm(child.id()).await;
    Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(10);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "wrap did not exit after SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(status.code(), Some(42));
}
