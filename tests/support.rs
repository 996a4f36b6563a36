//! Shared helpers of the integration tests (`tests/tests.rs`): what drives llmtap and what
//! observes it. The fake upstream is the `llmtap-fake-upstream` crate.
#![allow(
    clippy::disallowed_methods,
    reason = "test helpers build child environments and wait on child processes outside the runtime"
)]

pub mod client;
pub mod harness;
pub mod otlp;
pub mod prices;
pub mod process;
pub mod raw;

use llmtap_fake_upstream::FakeUpstream;
use serde_json::Value;

/// Asserts every key of `expected` equals the same key of `got` (recursively for objects):
/// an `.expected.json` case's facts against what llmtap recorded or a parser gave.
pub fn assert_subset(what: &str, expected: &Value, got: &Value) {
    match expected {
        Value::Object(fields) => {
            for (key, want) in fields {
                assert_subset(&format!("{what}.{key}"), want, &got[key]);
            }
        }
        _ => assert_eq!(got, expected, "{what}"),
    }
}

/// The same POST to `host` `path` directly and through llmtap (HTTP/1.1 both ways): the
/// direct response, then llmtap's.
pub async fn both_ways(
    upstream: &FakeUpstream,
    tap: &harness::Tap,
    host: &str,
    path: &str,
    body: &[u8],
    headers: &[(&str, &str)],
) -> (client::Collected, client::Collected) {
    let mut direct = client::direct(upstream.addr, host, &upstream.ca_pem).await;
    let direct = client::collect(
        direct
            .send(client::post(host, path, body, headers))
            .await
            .expect("direct"),
    )
    .await;
    let mut via = client::via_proxy(tap.proxy, host, &tap.ca_pem, false).await;
    let via = client::collect(
        via.send(client::post(host, path, body, headers))
            .await
            .expect("via llmtap"),
    )
    .await;
    (direct, via)
}
