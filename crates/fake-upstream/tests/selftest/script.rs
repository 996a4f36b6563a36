//! Checks the scripted replies ([`FakeUpstream::start_scripted`]) directly: each Anthropic
//! messages request without `x-fake-scenario` takes the next reply in order, with its exact
//! status, headers and bytes (an SSE body one chunk per event); a request naming a scenario
//! still gets its fixture and leaves the script alone; a spent script answers 500.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use hyper::StatusCode;
use llmtap_fake_upstream::{FakeUpstream, Reply};

use super::{concat, connect, frames, header, post};

#[tokio::test]
async fn scripted_replies_are_served_in_order_with_their_exact_bytes_and_headers() {
    let sse = FakeUpstream::fixture("stream_text", "sse");
    let overloaded = FakeUpstream::fixture("error_529", "json");
    let upstream = FakeUpstream::start_scripted(vec![
        Reply::sse(sse.clone())
            .header("anthropic-ratelimit-unified-status", "allowed")
            .header("request-id", "req_scripted_1"),
        Reply::json(529, overloaded.clone()),
    ])
    .await;
    assert_eq!(upstream.replies_left(), 2);
    let mut client = connect(&upstream).await;
    let body = FakeUpstream::fixture("stream_text", "request.json");

    // First reply: the SSE stream, one chunk per event, its headers over the server's own.
    let res = client
        .send_request(post("/v1/messages?beta=true", &[], body.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        header(&res, "content-type"),
        Some("text/event-stream; charset=utf-8")
    );
    assert_eq!(header(&res, "cache-control"), Some("no-cache"));
    assert_eq!(
        header(&res, "anthropic-ratelimit-unified-status"),
        Some("allowed")
    );
    assert_eq!(header(&res, "request-id"), Some("req_scripted_1"));
    assert_eq!(res.headers().get_all("request-id").iter().count(), 1);
    assert!(header(&res, "anthropic-organization-id").is_some());
    let (chunks, error) = frames(res).await;
    assert_eq!(error, None);
    assert_eq!(concat(&chunks), sse);
    assert!(chunks.len() >= FakeUpstream::sse_events(&sse).len());
    assert_eq!(upstream.replies_left(), 1);

    // A request naming a scenario gets its fixture and does not take a reply.
    let res = client
        .send_request(post(
            "/v1/messages",
            &[("x-fake-scenario", "json_message")],
            FakeUpstream::fixture("json_message", "request.json"),
        ))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::OK);
    assert_eq!(
        concat(&frames(res).await.0),
        FakeUpstream::fixture("json_message", "json")
    );
    assert_eq!(upstream.replies_left(), 1);

    // Second reply: the 529, whole, as JSON.
    let res = client
        .send_request(post("/v1/messages", &[], body.clone()))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 529);
    assert_eq!(header(&res, "content-type"), Some("application/json"));
    assert!(header(&res, "request-id").is_some_and(|id| id.starts_with("req_")));
    assert_eq!(concat(&frames(res).await.0), overloaded);
    assert_eq!(upstream.replies_left(), 0);

    // Spent: a 500 in Anthropic's error shape.
    let res = client
        .send_request(post("/v1/messages", &[], body.clone()))
        .await
        .unwrap();
    assert_eq!(res.status(), StatusCode::INTERNAL_SERVER_ERROR);
    let error: serde_json::Value = serde_json::from_slice(&concat(&frames(res).await.0)).unwrap();
    assert_eq!(error["error"]["type"], "api_error");
    assert!(
        error["error"]["message"]
            .as_str()
            .unwrap()
            .contains("script is spent (2 replies served)"),
        "{error}"
    );

    // Every request was recorded as sent.
    let seen = upstream.seen();
    assert_eq!(seen.len(), 4);
    assert_eq!(seen[0].path_and_query, "/v1/messages?beta=true");
    assert!(seen.iter().all(|s| s.method == "POST"));
    assert_eq!(seen[2].body, body);
}
