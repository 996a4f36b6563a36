//! The real-traffic cases of `tests/cases/real-traffic/` end to end, one test per case folder
//! (named after it): the case's request goes through llmtap (CONNECT, real TLS, HTTP/1.1 or a
//! WebSocket) to the fake upstream, which answers with the case's exact bytes (`x-fake-case`).
//! The test first checks that the exchange itself was faithful (the request reached the
//! upstream as sent, the client got the upstream's status, headers and every body byte or
//! frame unchanged), then compares llmtap's JSON call line and its `/metrics` with the case's
//! `expected.json`, and reports every mismatch at once.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{path::Path, sync::Arc, time::Duration};

use crate::support::{
    client::{self, collect},
    harness::{self, Tap},
};
use bytes::Bytes;
use http_body_util::Full;
use hudsucker::{
    futures::{SinkExt as _, StreamExt as _},
    hyper::Request,
    tokio_tungstenite::{
        client_async_with_config,
        tungstenite::{
            Message,
            client::IntoClientRequest as _,
            http::{HeaderName, HeaderValue},
            protocol::WebSocketConfig,
        },
    },
};
use llmtap::exchange::CallRecord;
use llmtap_fake_upstream::FakeUpstream;
use serde_json::Value;

#[tokio::test]
async fn anthropic_cache_breakdown_zero() {
    run_case("anthropic_cache_breakdown_zero").await;
}

#[tokio::test]
async fn anthropic_mcp_tool_use() {
    run_case("anthropic_mcp_tool_use").await;
}

#[tokio::test]
async fn codex_ws_usage_limit() {
    run_case("codex_ws_usage_limit").await;
}

#[tokio::test]
async fn gemini_sse_4k_image_event() {
    run_case("gemini_sse_4k_image_event").await;
}

#[tokio::test]
async fn gemini_sse_leading_bom() {
    run_case("gemini_sse_leading_bom").await;
}

#[tokio::test]
async fn gemini_sse_prompt_blocked() {
    run_case("gemini_sse_prompt_blocked").await;
}

#[tokio::test]
async fn openai_responses_flex_tier() {
    run_case("openai_responses_flex_tier").await;
}

// llmtap's own cases, other members of the same kinds (see the folder's README).

#[tokio::test]
async fn anthropic_sse_web_fetch_large_result() {
    run_case("anthropic_sse_web_fetch_large_result").await;
}

#[tokio::test]
async fn gemini_json_image_over_body_cap() {
    run_case("gemini_json_image_over_body_cap").await;
}

#[tokio::test]
async fn gemini_array_4k_image() {
    run_case("gemini_array_4k_image").await;
}

#[tokio::test]
async fn gemini_openai_compat_chat() {
    run_case("gemini_openai_compat_chat").await;
}

#[tokio::test]
async fn codex_ws_large_completed() {
    run_case("codex_ws_large_completed").await;
}

/// Longest wait for the call of an HTTP case (the 4K image case moves 6 MB through a debug
/// build).
const RECORD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a WebSocket call may take to be recorded once its last frame reached the client,
/// with the socket still open.
const WS_RECORD_TIMEOUT: Duration = Duration::from_secs(5);
/// Quiet time after the call during which no second call may be recorded.
const EXTRA_RECORD_WAIT: Duration = Duration::from_millis(300);

/// Drives case `name` end to end and compares llmtap's record with its `expected.json`.
async fn run_case(name: &str) {
    let dir = FakeUpstream::case_dir(name);
    let raw_request = read_text(&dir.join("request.json"));
    let request: Value = serde_json::from_str(&raw_request)
        .unwrap_or_else(|e| panic!("{name}: request.json is not JSON: {e}"));
    let expected: Value = serde_json::from_str(&read_text(&dir.join("expected.json")))
        .unwrap_or_else(|e| panic!("{name}: expected.json is not JSON: {e}"));

    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    let (record, notes) = if request["websocket"].as_bool() == Some(true) {
        websocket_exchange(name, &request, &upstream, &mut tap).await
    } else {
        http_exchange(name, &request, &upstream, &mut tap).await
    };
    for note in &notes {
        println!("{name}: note: {note}");
    }
    let extra = wait_record(&mut tap, EXTRA_RECORD_WAIT).await;

    let calls = tap.calls.text();
    let lines: Vec<&str> = calls.lines().filter(|l| !l.trim().is_empty()).collect();
    let line = lines
        .iter()
        .copied()
        .find(|l| {
            serde_json::from_str::<Value>(l)
                .is_ok_and(|v| v["id"].as_str() == Some(record.id.to_string().as_str()))
        })
        .unwrap_or_else(|| {
            panic!(
                "{name}: no JSON call line for call {} in llmtap's output:\n{calls}",
                record.id
            )
        });
    let call: Value = serde_json::from_str(line).unwrap();
    let metrics_text = tap.metrics().await;
    let samples = parse_metrics(&metrics_text);

    let mut mismatches = Vec::new();
    if lines.len() != 1 || extra.is_some() {
        mismatches.push(format!(
            "{name}: number of calls: expected 1, got {} call line(s):\n{calls}",
            lines.len()
        ));
    }
    for (path, want) in expected["call"].as_object().expect("expected.call") {
        let got = lookup(&call, path);
        if !call_value_matches(want, got) {
            mismatches.push(format!(
                "{name}: call line `{path}`: expected {want}, got {}",
                got.map_or_else(|| "(absent)".to_owned(), Value::to_string)
            ));
        }
    }
    for entry in expected["metrics"].as_array().into_iter().flatten() {
        let metric = entry["name"].as_str().expect("expected.metrics[].name");
        let labels: Vec<(&str, &str)> = entry["labels"]
            .as_object()
            .into_iter()
            .flatten()
            .map(|(k, v)| (k.as_str(), v.as_str().expect("label values are strings")))
            .collect();
        let series: Vec<&Sample> = samples
            .iter()
            .filter(|s| s.name == metric && labels.iter().all(|l| s.has_label(*l)))
            .collect();
        let sum: f64 = series.iter().map(|s| s.value).sum();
        let want = &entry["value"];
        let ok = match want {
            Value::Null => series.is_empty(),
            want => !series.is_empty() && approx_eq(want_f64(want), sum),
        };
        if !ok {
            let selector = format!(
                "{metric}{{{}}}",
                labels
                    .iter()
                    .map(|(k, v)| format!("{k}=\"{v}\""))
                    .collect::<Vec<_>>()
                    .join(",")
            );
            let got = if series.is_empty() {
                "no such series".to_owned()
            } else {
                let lines: Vec<&str> = series.iter().map(|s| s.line.as_str()).collect();
                format!("{sum} (sum of: {})", lines.join(" | "))
            };
            let want = if want.is_null() {
                "no such series".to_owned()
            } else {
                want.to_string()
            };
            mismatches.push(format!(
                "{name}: metric {selector}: expected {want}, got {got}"
            ));
        }
    }

    assert!(
        mismatches.is_empty(),
        "{name}: {} mismatch(es) between llmtap's record and expected.json:\n  - {}\n\
         call line: {line}\n{}why: {}",
        mismatches.len(),
        mismatches.join("\n  - "),
        notes
            .iter()
            .map(|n| format!("note: {n}\n"))
            .collect::<String>(),
        expected["why"].as_str().unwrap_or_default(),
    );
}

/// Sends the case's HTTP request through llmtap, checks the exchange was faithful both ways,
/// and waits for the call.
async fn http_exchange(
    name: &str,
    request: &Value,
    upstream: &FakeUpstream,
    tap: &mut Tap,
) -> (Arc<CallRecord>, Vec<String>) {
    let host = request["host"].as_str().expect("request.host");
    let method = request["method"].as_str().expect("request.method");
    let path = request["path"].as_str().expect("request.path");
    let headers = request_headers(request);
    // Compact, keys in `serde_json`'s order: neither llmtap nor the fake upstream depends on
    // the order of a body's keys.
    let body = serde_json::to_vec(&request["body"]).expect("JSON");
    assert_eq!(
        serde_json::from_slice::<Value>(&body).ok().as_ref(),
        Some(&request["body"]),
        "{name}: the compact body is request.json's body"
    );

    let mut builder = Request::builder()
        .method(method)
        .uri(path)
        .header("host", host);
    for (header, value) in &headers {
        builder = builder.header(header.as_str(), value.as_str());
    }
    let req = builder
        .header("x-fake-case", name)
        .body(Full::new(Bytes::from(body.clone())))
        .expect("request");
    let mut conn = client::via_proxy(tap.proxy, host, &tap.ca_pem, false).await;
    let res = conn
        .send(req)
        .await
        .unwrap_or_else(|e| panic!("{name}: no response through llmtap: {e}"));
    let got = collect(res).await;

    // The request reached the upstream as the client sent it.
    let seen: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.header("x-fake-case") == Some(name))
        .collect();
    assert_eq!(seen.len(), 1, "{name}: requests at the upstream: {seen:?}");
    let seen = &seen[0];
    assert_eq!(
        (seen.method.as_str(), seen.path_and_query.as_str()),
        (method, path),
        "{name}: method and path at the upstream"
    );
    assert!(
        seen.body == body,
        "{name}: the upstream got another body: {}",
        String::from_utf8_lossy(&seen.body)
    );
    for (header, value) in &headers {
        assert_eq!(
            seen.header(header),
            Some(value.as_str()),
            "{name}: request header {header} at the upstream"
        );
    }

    // The client got the upstream's answer unchanged.
    assert!(got.end.is_ok(), "{name}: the body ended with {:?}", got.end);
    let (status, response_headers) = response_head(name);
    assert_eq!(got.status, status, "{name}: status through llmtap");
    for (header, value) in &response_headers {
        assert_eq!(
            got.headers.get(header).and_then(|v| v.to_str().ok()),
            Some(value.as_str()),
            "{name}: response header {header} through llmtap"
        );
    }
    // Nothing added on the way (hyper's own `Date` included): only the upstream's fields
    // and the framing of the hop.
    for header in got.headers.keys() {
        let header = header.as_str();
        assert!(
            response_headers.iter().any(|(h, _)| h == header)
                || matches!(header, "transfer-encoding" | "content-length"),
            "{name}: response header {header} was added on the way: {:?}",
            got.headers
        );
    }
    let sent = FakeUpstream::case_body(name);
    assert_eq!(
        sent.len(),
        expanded_len(name),
        "{name}: the upstream's body has the length response.sse and replay.json give"
    );
    let received = got.body();
    assert_eq!(
        (received.len(), sha256(&received)),
        (sent.len(), sha256(&sent)),
        "{name}: body bytes through llmtap (length, SHA-256) differ from what the upstream sent"
    );

    let Some(record) = wait_record(tap, RECORD_TIMEOUT).await else {
        panic!(
            "{name}: no call recorded within {RECORD_TIMEOUT:?}; call lines:\n{}",
            tap.calls.text()
        );
    };
    (record, Vec::new())
}

/// Plays the case's WebSocket script through llmtap: every client frame is sent, every server
/// frame must arrive unchanged. Waits for the call with the socket open; if none comes, closes
/// the socket and waits again (and says so in a note).
async fn websocket_exchange(
    name: &str,
    request: &Value,
    upstream: &FakeUpstream,
    tap: &mut Tap,
) -> (Arc<CallRecord>, Vec<String>) {
    let host = request["host"].as_str().expect("request.host");
    let method = request["method"].as_str().expect("request.method");
    let path = request["path"].as_str().expect("request.path");
    assert_eq!(method, "GET", "{name}: a WebSocket opens with a GET");
    let headers = request_headers(request);

    let tunnel = client::connect_tunnel(tap.proxy, &format!("{host}:443")).await;
    let tls = client::tls_over(tunnel, host, client::tls(&tap.ca_pem, false))
        .await
        .expect("TLS through llmtap");
    let mut req = format!("wss://{host}{path}")
        .into_client_request()
        .expect("WebSocket request");
    for (header, value) in headers
        .iter()
        .chain([&("x-fake-case".to_owned(), name.to_owned())])
    {
        req.headers_mut().insert(
            HeaderName::from_bytes(header.as_bytes()).expect("header name"),
            HeaderValue::from_str(value).expect("header value"),
        );
    }
    // Cases carry server messages larger than tungstenite's default 16 MiB.
    let config = WebSocketConfig::default()
        .max_message_size(Some(64 << 20))
        .max_frame_size(Some(64 << 20));
    let (mut ws, response) = client_async_with_config(req, tls, Some(config))
        .await
        .unwrap_or_else(|e| panic!("{name}: upgrade through llmtap: {e:?}"));
    assert_eq!(response.status(), 101, "{name}: upgrade status");

    let turns = FakeUpstream::case_turns(name);
    assert!(!turns.is_empty(), "{name}: the script has no client frame");
    for (i, turn) in turns.iter().enumerate() {
        ws.send(Message::text(turn.client.clone()))
            .await
            .unwrap_or_else(|e| panic!("{name}: sending client frame {i}: {e}"));
        let mut got = Vec::new();
        while got.len() < turn.server.len() {
            match tokio::time::timeout(Duration::from_secs(10), ws.next()).await {
                Ok(Some(Ok(Message::Text(t)))) => got.push(t.to_string()),
                Ok(Some(Ok(_))) => {}
                other => panic!("{name}: turn {i}: socket ended after {got:?}: {other:?}"),
            }
        }
        assert_eq!(
            got, turn.server,
            "{name}: turn {i}: the server frames through llmtap differ from the script"
        );
    }

    // The upgrade and every client frame reached the upstream as sent.
    let seen: Vec<_> = upstream
        .seen()
        .into_iter()
        .filter(|s| s.header("x-fake-case") == Some(name))
        .collect();
    assert_eq!(seen.len(), 1, "{name}: upgrades at the upstream: {seen:?}");
    let seen = &seen[0];
    assert_eq!(
        (seen.method.as_str(), seen.path_and_query.as_str()),
        (method, path),
        "{name}: method and path at the upstream"
    );
    for (header, value) in &headers {
        assert_eq!(
            seen.header(header),
            Some(value.as_str()),
            "{name}: upgrade header {header} at the upstream"
        );
    }
    let messages: Vec<String> = upstream
        .ws_messages()
        .into_iter()
        .filter(|m| !m.binary)
        .map(|m| m.text)
        .collect();
    let clients: Vec<String> = turns.iter().map(|t| t.client.clone()).collect();
    assert_eq!(messages, clients, "{name}: client frames at the upstream");

    let mut notes = Vec::new();
    let record = match wait_record(tap, WS_RECORD_TIMEOUT).await {
        Some(record) => {
            let _ = ws.close(None).await;
            record
        }
        None => {
            notes.push(format!(
                "no call was recorded within {WS_RECORD_TIMEOUT:?} of the last frame with the \
                 socket open; the record below came after the client closed the socket"
            ));
            let _ = ws.close(None).await;
            wait_record(tap, RECORD_TIMEOUT).await.unwrap_or_else(|| {
                panic!(
                    "{name}: no call recorded, not even after the client closed the socket; \
                     call lines:\n{}",
                    tap.calls.text()
                )
            })
        }
    };
    // Let the close finish, so that a second record (if any) shows up in the count.
    let _ = tokio::time::timeout(Duration::from_secs(2), async {
        while let Some(Ok(_)) = ws.next().await {}
    })
    .await;
    (record, notes)
}

/// The next finished call, or `None` after `wait`.
async fn wait_record(tap: &mut Tap, wait: Duration) -> Option<Arc<CallRecord>> {
    tokio::time::timeout(wait, tap.records.recv())
        .await
        .ok()
        .map(|r| r.expect("record channel"))
}

fn read_text(path: &Path) -> String {
    std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn request_headers(request: &Value) -> Vec<(String, String)> {
    request["headers"]
        .as_object()
        .expect("request.headers")
        .iter()
        .map(|(k, v)| {
            (
                k.to_ascii_lowercase(),
                v.as_str().expect("header values are strings").to_owned(),
            )
        })
        .collect()
}

/// The status and headers of the case's `response.headers`, framing fields left out, as the
/// client must see them.
fn response_head(name: &str) -> (u16, Vec<(String, String)>) {
    let raw = read_text(&FakeUpstream::case_dir(name).join("response.headers"));
    let mut lines = raw.lines().map(|l| l.trim_end_matches('\r'));
    let status = lines
        .next()
        .and_then(|l| l.trim().parse().ok())
        .expect("response.headers starts with the status");
    let headers = lines
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let (k, v) = l.split_once(':').expect("name: value");
            (k.trim().to_ascii_lowercase(), v.trim().to_owned())
        })
        .filter(|(k, _)| {
            !matches!(
                k.as_str(),
                "content-length" | "transfer-encoding" | "connection" | "keep-alive"
            )
        })
        .collect();
    (status, headers)
}

/// The length of the case's body once `replay.json`'s placeholders are expanded, worked out
/// from the files alone (a check on the upstream's expansion).
fn expanded_len(name: &str) -> usize {
    let dir = FakeUpstream::case_dir(name);
    let raw = std::fs::read(dir.join("response.sse")).expect("response.sse");
    let replay: Value = std::fs::read(dir.join("replay.json"))
        .ok()
        .map(|r| serde_json::from_slice(&r).expect("replay.json"))
        .unwrap_or_default();
    let mut len = raw.len();
    for (placeholder, n) in replay["expand"].as_object().into_iter().flatten() {
        let p = placeholder.as_bytes();
        let count = raw.windows(p.len()).filter(|w| *w == p).count();
        assert!(count > 0, "{name}: {placeholder} not in response.sse");
        len = len - count * p.len() + count * usize::try_from(n.as_u64().unwrap()).unwrap();
    }
    len
}

fn sha256(bytes: &[u8]) -> String {
    aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA256, bytes)
        .as_ref()
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// The value at a dotted path (`response.usage.input`; a number indexes an array).
fn lookup<'a>(v: &'a Value, path: &str) -> Option<&'a Value> {
    path.split('.').try_fold(v, |v, key| match v {
        Value::Object(m) => m.get(key),
        Value::Array(a) => key.parse::<usize>().ok().and_then(|i| a.get(i)),
        _ => None,
    })
}

/// `null`: absent or null. `{"approx": x}`: a number within tolerance. Anything else: equal,
/// numbers compared by value.
fn call_value_matches(want: &Value, got: Option<&Value>) -> bool {
    match (want, got) {
        (Value::Null, None | Some(Value::Null)) => true,
        (_, None) => false,
        (Value::Object(m), Some(got)) if m.len() == 1 && m.contains_key("approx") => {
            got.as_f64().is_some_and(|g| approx_eq(want_f64(want), g))
        }
        (want, Some(got)) => json_eq(want, got),
    }
}

fn json_eq(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x.as_f64() == y.as_f64(),
        (Value::Array(x), Value::Array(y)) => {
            x.len() == y.len() && x.iter().zip(y).all(|(x, y)| json_eq(x, y))
        }
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len()
                && x.iter()
                    .all(|(k, v)| y.get(k).is_some_and(|w| json_eq(v, w)))
        }
        (a, b) => a == b,
    }
}

/// A number, or the `x` of `{"approx": x}`.
fn want_f64(want: &Value) -> f64 {
    want.as_f64()
        .or_else(|| want.get("approx").and_then(Value::as_f64))
        .unwrap_or_else(|| panic!("expected.json: {want} is not a number"))
}

/// Within 1e-9, or within a relative 1e-6.
fn approx_eq(want: f64, got: f64) -> bool {
    let diff = (want - got).abs();
    diff <= 1e-9 || diff <= 1e-6 * want.abs()
}

/// One sample of the Prometheus text exposition.
struct Sample {
    name: String,
    labels: Vec<(String, String)>,
    value: f64,
    line: String,
}

impl Sample {
    fn has_label(&self, (key, value): (&str, &str)) -> bool {
        self.labels.iter().any(|(k, v)| k == key && v == value)
    }
}

/// Every sample of a `/metrics` text (comments skipped; label values unescaped).
fn parse_metrics(text: &str) -> Vec<Sample> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .map(|line| {
            let name_end = line
                .find(|c: char| c == '{' || c.is_ascii_whitespace())
                .unwrap_or_else(|| panic!("metrics line without a value: {line}"));
            let name = line[..name_end].to_owned();
            let mut rest = &line[name_end..];
            let mut labels = Vec::new();
            if let Some(after) = rest.strip_prefix('{') {
                let mut chars = after.char_indices();
                let mut key = String::new();
                loop {
                    let (i, c) = chars.next().expect("unterminated label set");
                    match c {
                        '}' => {
                            rest = &after[i + 1..];
                            break;
                        }
                        ',' | ' ' => {}
                        '=' => {
                            assert_eq!(chars.next().map(|(_, c)| c), Some('"'), "{line}");
                            let mut value = String::new();
                            loop {
                                match chars.next().expect("unterminated label value").1 {
                                    '"' => break,
                                    '\\' => match chars.next().expect("escape").1 {
                                        'n' => value.push('\n'),
                                        other => value.push(other),
                                    },
                                    other => value.push(other),
                                }
                            }
                            labels.push((std::mem::take(&mut key), value));
                        }
                        other => key.push(other),
                    }
                }
            }
            let raw_value = rest
                .split_whitespace()
                .next()
                .unwrap_or_else(|| panic!("metrics line without a value: {line}"));
            let value = match raw_value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v
                    .parse()
                    .unwrap_or_else(|e| panic!("metrics value {v:?} in {line}: {e}")),
            };
            Sample {
                name,
                labels,
                value,
                line: line.to_owned(),
            }
        })
        .collect()
}
