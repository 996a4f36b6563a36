//! The `llmtap` binary as users run it: bad configuration exits 2 with one line naming the
//! flag; `env` and `ca` print what clients need; `run` prints its addresses and exports,
//! serves traffic and metrics without leaking secrets, and drains on SIGTERM with exit 0.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "the shell test passes PATH on and reads CI's LLMTAP_E2E"
)]

use std::os::unix::fs::PermissionsExt as _;

use crate::support::{
    client::{self, collect},
    harness::{closed_port, get, metric},
    process::{Llmtap, run},
};
use llmtap_fake_upstream::FakeUpstream;

const SECRET: &str = "sk-ant-api03-CLI-SECRET-never-printed-42";

#[test]
fn bad_configuration_exits_2_with_one_line_naming_the_flag() {
    let home = tempfile::tempdir().unwrap();
    let ca_dir = home.path().join("ca");
    let ca_dir = ca_dir.to_str().unwrap();
    let busy = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let busy = busy.local_addr().unwrap().to_string();
    let file = home.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    let under_file = file.join("ca");
    let malformed = format!(
        "{}/tests/fixtures/prices/malformed.json",
        env!("CARGO_MANIFEST_DIR")
    );
    let cases: [(&[&str], &str); 8] = [
        (&["--resolve", "api.anthropic.com:443"], "--resolve"),
        (&["--upstream-ca", "/nonexistent/ca.pem"], "--upstream-ca"),
        (&["--listen", &busy], "--listen"),
        (&["--admin", &busy], "--admin"),
        (&["--ca-dir", under_file.to_str().unwrap()], "--ca-dir"),
        (&["--listen", "localhost"], "--listen"),
        (&["--prices", &malformed], "--prices"),
        (&["--otlp-endpoint", "collector:4317"], "--otlp-endpoint"),
    ];
    for (args, flag) in cases {
        let mut all = vec!["run"];
        for (flag, default) in [
            ("--listen", "127.0.0.1:0"),
            ("--admin", "127.0.0.1:0"),
            ("--ca-dir", ca_dir),
        ] {
            if !args.contains(&flag) {
                all.extend([flag, default]);
            }
        }
        all.extend_from_slice(args);
        let (code, stdout, stderr) = run(home.path(), &all);
        assert_eq!(code, 2, "{args:?}: {stderr}");
        assert_eq!(
            stderr.lines().count(),
            1,
            "{args:?}: one line, got {stderr:?}"
        );
        assert!(
            stderr.starts_with(&format!("llmtap: {flag}: ")),
            "{args:?}: {stderr}"
        );
        assert!(stdout.is_empty());
        if flag == "--prices" {
            assert!(
                stderr.contains("broken-model") && stderr.contains("input_cost_per_token"),
                "{stderr}"
            );
        }
    }
}

#[test]
fn env_and_ca_commands_print_what_clients_need() {
    let home = tempfile::tempdir().unwrap();
    let (code, path, _) = run(home.path(), &["ca", "path"]);
    assert_eq!(code, 0);
    let ca = home.path().join(".llmtap/ca.pem");
    assert_eq!(
        path.trim(),
        ca.to_str().unwrap(),
        "default CA dir is ~/.llmtap"
    );
    let key = home.path().join(".llmtap/ca-key.pem");
    assert_eq!(
        std::fs::metadata(&key).unwrap().permissions().mode() & 0o777,
        0o600
    );
    let (_, pem, _) = run(home.path(), &["ca", "print"]);
    assert_eq!(pem, std::fs::read_to_string(&ca).unwrap());
    assert!(pem.starts_with("-----BEGIN CERTIFICATE-----"));

    let (code, env, _) = run(home.path(), &["env", "--listen", "127.0.0.1:18080"]);
    assert_eq!(code, 0);
    let bundle = home.path().join(".llmtap/bundle.pem");
    let b = bundle.to_str().unwrap();
    let want = format!(
        "export HTTPS_PROXY=http://127.0.0.1:18080\nexport NODE_EXTRA_CA_CERTS={}\n\
         export SSL_CERT_FILE={b}\nexport REQUESTS_CA_BUNDLE={b}\nexport AWS_CA_BUNDLE={b}\n\
         export CODEX_CA_CERTIFICATE={b}\n",
        ca.to_str().unwrap()
    );
    assert_eq!(env, want);
    // The bundle replaces the system roots for Python/OpenSSL clients: it must hold both.
    let bundle_pem = std::fs::read_to_string(&bundle).unwrap();
    assert!(bundle_pem.ends_with(&pem), "llmtap's CA closes the bundle");
    let (_, fish, _) = run(
        home.path(),
        &["env", "--shell", "fish", "--listen", "0.0.0.0:8080"],
    );
    assert!(
        fish.starts_with("set -gx HTTPS_PROXY http://127.0.0.1:8080\n"),
        "{fish}"
    );
    let (_, ps, _) = run(home.path(), &["env", "--shell", "powershell"]);
    assert!(
        ps.starts_with("$env:HTTPS_PROXY = 'http://127.0.0.1:8080'\n"),
        "{ps}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn run_serves_records_and_drains_on_sigterm_without_leaking_secrets() {
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
            "--team",
            "infra",
        ],
    );
    let banner = llmtap.stderr();
    assert!(
        banner.contains(&format!("export HTTPS_PROXY=http://{}", llmtap.proxy)),
        "{banner}"
    );
    assert!(banner.contains("export NODE_EXTRA_CA_CERTS="), "{banner}");
    assert!(banner.contains("export CODEX_CA_CERTIFICATE="), "{banner}");

    let (status, ca_pem) = get(llmtap.admin, "/ca.pem").await;
    assert_eq!(status, 200);
    assert_eq!(get(llmtap.admin, "/healthz").await.0, 200);
    assert_eq!(get(llmtap.admin, "/readyz").await.0, 200);

    let bearer = format!("Bearer {SECRET}");
    for (case, headers) in [
        ("stream_text", vec![("x-api-key", SECRET)]),
        ("json_message", vec![("authorization", bearer.as_str())]),
        (
            "stream_text",
            vec![("x-api-key", SECRET), ("x-fake-scenario", "malformed")],
        ),
        (
            "stream_text",
            vec![("x-api-key", SECRET), ("x-fake-scenario", "malformed")],
        ),
    ] {
        let mut conn = client::via_proxy(llmtap.proxy, "api.anthropic.com", &ca_pem, false).await;
        let body = FakeUpstream::fixture(case, "request.json");
        let req =
            client::messages_request("api.anthropic.com", "/v1/messages", &body, &headers, false);
        let res = collect(conn.send(req).await.expect("head")).await;
        assert_eq!(res.status, 200);
    }
    // A held stream is still in flight when SIGTERM arrives; the drain lets it finish.
    let mut conn = client::via_proxy(llmtap.proxy, "api.anthropic.com", &ca_pem, false).await;
    let body = FakeUpstream::fixture("stream_text", "request.json");
    let req = client::messages_request(
        "api.anthropic.com",
        "/v1/messages",
        &body,
        &[("x-fake-hold", "1"), ("x-api-key", SECRET)],
        false,
    );
    let held = tokio::spawn(async move { collect(conn.send(req).await.expect("head")).await });
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;

    let metrics = get(llmtap.admin, "/metrics").await.1;
    assert_eq!(
        metric(
            &metrics,
            "llmtap_requests_total",
            &[("team", "infra"), ("outcome", "ok")]
        ),
        4.0
    );
    let parse_errors = metric(
        &metrics,
        "llmtap_parse_errors_total",
        &[("provider", "anthropic")],
    );
    assert_eq!(parse_errors, 2.0);
    assert_eq!(metric(&metrics, "llmtap_in_flight_calls", &[]), 1.0);
    assert_eq!(
        metric(
            &metrics,
            "llmtap_build_info",
            &[("version", env!("CARGO_PKG_VERSION"))]
        ),
        1.0
    );

    let releaser = tokio::spawn(async move {
        tokio::time::sleep(std::time::Duration::from_millis(500)).await;
        upstream.release();
        upstream
    });
    let status = tokio::task::spawn_blocking(move || {
        let status = llmtap.terminate();
        (status, llmtap)
    });
    let (status, llmtap) = status.await.unwrap();
    let held = held.await.unwrap();
    let _upstream = releaser.await.unwrap();
    assert!(
        held.end.is_ok(),
        "the in-flight stream completed during the drain"
    );
    assert_eq!(status.code(), Some(0), "clean exit after SIGTERM");

    let stdout = llmtap.stdout();
    let stderr = llmtap.stderr();
    let lines: Vec<&str> = stdout.lines().collect();
    assert_eq!(lines.len(), 5, "one call line per call: {stdout}");
    assert_eq!(
        lines.iter().filter(|l| l.contains(" parse_error=")).count(),
        2,
        "{stdout}"
    );
    assert!(
        !stderr.contains("ERROR"),
        "clients hanging up are not errors:\n{stderr}"
    );
    let warnings = stderr.matches("could not parse an LLM call").count();
    assert_eq!(
        warnings, 1,
        "parse failures are logged, rate-limited: {stderr}"
    );
    assert!(
        lines
            .iter()
            .all(|l| l.contains(" anthropic-sdk-python anthropic ") && l.contains("team=infra"))
    );
    assert!(lines.iter().all(|l| l.contains(" 200 ok ")), "{stdout}");
    for text in [&stdout, &stderr, &metrics] {
        assert!(!text.contains(SECRET), "secret leaked into:\n{text}");
        assert!(!text.contains("CLI-SECRET"));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_does_not_trust_the_ca_gets_one_hint_with_the_fix() {
    let upstream = FakeUpstream::start().await;
    let home = tempfile::tempdir().unwrap();
    let mut llmtap = Llmtap::spawn(home.path(), &[]);
    // A client that trusts some other CA, three times (agents retry).
    for _ in 0..3 {
        let tunnel = client::connect_tunnel(llmtap.proxy, "api.anthropic.com:443").await;
        let refused = client::tls_over(
            tunnel,
            "api.anthropic.com",
            client::tls(&upstream.ca_pem, false),
        )
        .await;
        assert!(refused.is_err(), "the handshake must fail");
    }
    tokio::time::sleep(std::time::Duration::from_millis(300)).await;
    let llmtap = tokio::task::spawn_blocking(move || {
        llmtap.terminate();
        llmtap
    })
    .await
    .unwrap();
    let stderr = llmtap.stderr();
    assert_eq!(
        stderr.matches("does not trust llmtap's CA").count(),
        1,
        "{stderr}"
    );
    let ca = home.path().join(".llmtap/ca.pem");
    assert!(
        stderr.contains(&format!("NODE_EXTRA_CA_CERTS={}", ca.display())),
        "{stderr}"
    );
    assert!(stderr.contains("SSL_CERT_FILE"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn env_lines_work_when_sourced_in_real_shells() {
    let shells: Vec<(&str, &str, &str)> = [
        ("dash", "sh", "."),
        ("bash", "sh", "."),
        ("fish", "fish", "source"),
    ]
    .into_iter()
    .filter(|(shell, _, _)| {
        std::process::Command::new(shell)
            .arg("-c")
            .arg("true")
            .status()
            .is_ok_and(|s| s.success())
    })
    .collect();
    if shells.len() < 3
        || std::process::Command::new("curl")
            .arg("--version")
            .output()
            .is_err()
    {
        assert!(
            std::env::var("LLMTAP_E2E").is_err(),
            "LLMTAP_E2E is set but fish, bash, dash or curl is missing"
        );
    }
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
    let body = home.path().join("body.json");
    std::fs::write(&body, FakeUpstream::fixture("json_message", "request.json")).unwrap();
    for (shell, syntax, source) in &shells {
        let (code, lines, _) = run(
            home.path(),
            &[
                "env",
                "--shell",
                syntax,
                "--listen",
                &llmtap.proxy.to_string(),
            ],
        );
        assert_eq!(code, 0);
        let file = home.path().join(format!("env.{shell}"));
        std::fs::write(&file, lines).unwrap();
        // Nothing but the sourced lines tells curl where the proxy and the CA are.
        let script = format!(
            "{source} {}; curl -sS --fail -o /dev/null -w '%{{http_code}}' https://api.anthropic.com/v1/messages \
             -H 'content-type: application/json' --data-binary @{}",
            file.display(),
            body.display()
        );
        let out = std::process::Command::new(shell)
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("HOME", home.path())
            .args(["-c", &script])
            .output()
            .unwrap();
        assert_eq!(
            String::from_utf8_lossy(&out.stdout),
            "200",
            "{shell}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let llmtap = tokio::task::spawn_blocking(move || {
        llmtap.terminate();
        llmtap
    })
    .await
    .unwrap();
    assert_eq!(
        llmtap.stdout().lines().count(),
        shells.len(),
        "one recorded call per shell"
    );
}

#[test]
fn healthcheck_answers_for_a_running_llmtap() {
    let home = tempfile::tempdir().unwrap();
    let llmtap = Llmtap::spawn(home.path(), &[]);
    let (code, _, stderr) = run(
        home.path(),
        &["healthcheck", "--admin", &llmtap.admin.to_string()],
    );
    assert_eq!(code, 0, "{stderr}");
    let wildcard = format!("0.0.0.0:{}", llmtap.admin.port());
    assert_eq!(
        run(home.path(), &["healthcheck", "--admin", &wildcard]).0,
        0,
        "0.0.0.0 means this host"
    );
    drop(llmtap);
    // A port nothing listens on (held, so that no other test is given it).
    let (_held, closed) = closed_port();
    let closed = closed.to_string();
    let (code, _, stderr) = run(home.path(), &["healthcheck", "--admin", &closed]);
    assert_eq!(code, 1);
    assert!(stderr.starts_with("llmtap: "), "{stderr}");
}
