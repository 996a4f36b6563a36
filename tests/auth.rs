//! `--auth-file`: beyond loopback llmtap is not an open proxy. Clients without admitted
//! credentials get 407; admitted ones are attributed to the file's team and user; llmtap
//! refuses to listen beyond loopback without a file unless told `--allow-open-proxy`.
#![allow(clippy::unwrap_used, clippy::expect_used)]
#![allow(
    clippy::disallowed_methods,
    reason = "a plain #[test] waits for a child process"
)]

use crate::support::{
    client::{self, collect},
    harness::{self, metric},
    process::command,
};
use base64::Engine as _;
use llmtap_fake_upstream::FakeUpstream;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

fn sha256_hex(s: &str) -> String {
    let d = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, s.as_bytes());
    d.as_ref().iter().map(|b| format!("{b:02x}")).collect()
}

/// The CONNECT's status line, with these credentials (if any).
async fn connect_status(proxy: std::net::SocketAddr, creds: Option<&str>) -> String {
    let mut tcp = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let auth = creds
        .map(|c| {
            format!(
                "Proxy-Authorization: Basic {}\r\n",
                base64::engine::general_purpose::STANDARD.encode(c)
            )
        })
        .unwrap_or_default();
    tcp.write_all(
        format!(
            "CONNECT api.anthropic.com:443 HTTP/1.1\r\nHost: api.anthropic.com:443\r\n{auth}\r\n"
        )
        .as_bytes(),
    )
    .await
    .unwrap();
    let mut buf = vec![0u8; 1024];
    let n = tcp.read(&mut buf).await.unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[tokio::test]
async fn only_admitted_clients_get_through_and_are_attributed_from_the_file() {
    let upstream = FakeUpstream::start().await;
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("auth");
    std::fs::write(
        &file,
        format!(
            "# two agents\nagent-a:sha256:{} team=team-a user=alice\nagent-b:sha256:{} team=team-b user=bob\n",
            sha256_hex("secret-a"),
            sha256_hex("secret-b")
        ),
    )
    .unwrap();
    let mut tap = harness::start(
        &upstream,
        &["--auth-file", file.to_str().unwrap(), "--team", "flag-team"],
    )
    .await;
    for creds in [
        None,
        Some("agent-a:wrong"),
        Some("agent-c:secret-a"),
        Some("agent-b:secret-a"),
    ] {
        let reply = connect_status(tap.proxy, creds).await;
        assert!(reply.starts_with("HTTP/1.1 407"), "{creds:?}: {reply}");
        assert!(
            reply
                .to_ascii_lowercase()
                .contains("proxy-authenticate: basic realm=\"llmtap\""),
            "{reply}"
        );
    }
    let header = format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode("agent-b:secret-b")
    );
    let tunnel = client::connect_tunnel_with(
        tap.proxy,
        "api.anthropic.com:443",
        &[("Proxy-Authorization", &header)],
    )
    .await;
    let tls = client::tls_over(tunnel, "api.anthropic.com", client::tls(&tap.ca_pem, false))
        .await
        .unwrap();
    let mut conn = client::Conn::over(tls).await;
    let body = FakeUpstream::fixture("json_message", "request.json");
    let res = collect(
        conn.send(client::messages_request(
            "api.anthropic.com",
            "/v1/messages",
            &body,
            &[],
            false,
        ))
        .await
        .unwrap(),
    )
    .await;
    assert_eq!(res.status, 200);
    let record = tap.next_record().await;
    assert_eq!(
        (record.team.as_deref(), record.user.as_deref()),
        (Some("team-b"), Some("bob"))
    );
    let m = tap.metrics().await;
    assert_eq!(metric(&m, "llmtap_auth_failures_total", &[]), 4.0);
    assert!(!m.contains("secret-b") && !tap.calls.text().contains("secret-b"));
    assert!(
        upstream
            .seen()
            .iter()
            .all(|s| s.header("proxy-authorization").is_none())
    );
}

#[test]
fn listening_beyond_loopback_needs_an_auth_file_or_an_explicit_flag() {
    let home = tempfile::tempdir().unwrap();
    let run = |extra: &[&str]| {
        let mut cmd = command(home.path());
        cmd.args(["run", "--listen", "0.0.0.0:0", "--admin", "127.0.0.1:0"])
            .args(extra);
        cmd.stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped());
        cmd
    };
    let out = run(&[]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.starts_with("llmtap: --listen: ") && stderr.contains("--auth-file"),
        "{stderr}"
    );
    let bad = home.path().join("bad-auth");
    std::fs::write(&bad, "agent:plaintext team=t\n").unwrap();
    let out = run(&["--auth-file", bad.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).starts_with("llmtap: --auth-file: "));
    // With the explicit flag it starts (and is stopped here).
    let mut child = run(&["--allow-open-proxy"]).spawn().unwrap();
    std::thread::sleep(std::time::Duration::from_millis(700));
    assert!(
        child.try_wait().unwrap().is_none(),
        "--allow-open-proxy starts"
    );
    let _ = child.kill();
    let _ = child.wait();
}
