//! Unit tests of the frame decoder: frames split at every offset, masking, fragments with
//! control frames between them, `permessage-deflate` with and without context takeover,
//! the message caps and text elision, and the regression test of an oversized frame on a
//! live session.

use std::io::Write as _;

use super::*;

/// (messages, decode errors, skipped messages).
#[derive(Default)]
struct Seen(Vec<(Side, bool, Vec<u8>)>, usize, usize);

impl MessageObserver for Seen {
    fn on_message(&mut self, side: Side, text: bool, payload: &[u8]) {
        self.0.push((side, text, payload.to_vec()));
    }
    fn on_skipped(&mut self, _side: Side) {
        self.2 += 1;
    }
    fn on_decode_error(&mut self, _side: Side) {
        self.1 += 1;
    }
    fn on_close(&mut self, _first: Side) {}
}

fn frame(fin: bool, rsv1: bool, opcode: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![(u8::from(fin) << 7) | (u8::from(rsv1) << 6) | opcode];
    let m = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n if n < 126 => out.push(m | n as u8),
        n if n < 65536 => {
            out.push(m | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(m | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(k) => {
            out.extend_from_slice(&k);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ k[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

#[test]
fn masked_fragmented_messages_with_interleaved_pings_split_anywhere() {
    let mut wire = frame(false, false, 0x1, b"{\"type\":", Some([1, 2, 3, 4]));
    wire.extend(frame(true, false, 0x9, b"ping", Some([9, 9, 9, 9])));
    wire.extend(frame(
        true,
        false,
        0x0,
        b"\"response.create\"}",
        Some([5, 6, 7, 8]),
    ));
    wire.extend(frame(
        true,
        false,
        0x1,
        &vec![b'x'; 70_000],
        Some([1, 1, 1, 1]),
    ));
    for at in [0, 1, 2, 5, 13, 40, wire.len() - 1] {
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Client, false, true);
        d.push(&wire[..at], &mut seen);
        d.push(&wire[at..], &mut seen);
        assert_eq!(seen.1, 0);
        assert_eq!(seen.0.len(), 2, "split at {at}");
        assert_eq!(seen.0[0].2, b"{\"type\":\"response.create\"}");
        assert_eq!(seen.0[1].2.len(), 70_000);
    }
}

#[test]
fn permessage_deflate_with_context_takeover() {
    // One raw-deflate stream across messages, each ended with a sync flush whose
    // 00 00 ff ff tail is stripped (RFC 7692 §7.2.1).
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut wire = Vec::new();
    for msg in [
        &b"{\"type\":\"response.created\"}"[..],
        b"{\"type\":\"response.created\"}",
    ] {
        enc.write_all(msg).expect("deflate");
        enc.flush().expect("flush");
        let all = enc.get_mut();
        let mut chunk = std::mem::take(all);
        assert!(chunk.ends_with(&[0, 0, 0xff, 0xff]));
        chunk.truncate(chunk.len() - 4);
        wire.extend(frame(true, true, 0x1, &chunk, None));
    }
    let mut seen = Seen::default();
    let mut d = Decoder::new(Side::Server, true, true);
    d.push(&wire, &mut seen);
    assert_eq!(seen.1, 0);
    let got: Vec<&[u8]> = seen.0.iter().map(|m| m.2.as_slice()).collect();
    assert_eq!(
        got,
        [
            &b"{\"type\":\"response.created\"}"[..],
            b"{\"type\":\"response.created\"}"
        ]
    );
}

/// A Responses `response.completed` whose output holds a string of `big` bytes.
fn completed(big: usize, id: u32) -> Vec<u8> {
    format!(
        "{{\"type\":\"response.completed\",\"response\":{{\"id\":\"r{id}\",\"output\":[{{\"type\":\"function_call\",\"name\":\"apply_patch\",\"arguments\":\"{}\"}}],\"usage\":{{\"input_tokens\":{id}}}}}}}",
        "a".repeat(big)
    )
    .into_bytes()
}

/// Raw-deflate messages with context takeover, tails stripped (RFC 7692 §7.2.1).
fn deflated_session(messages: &[Vec<u8>]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    let mut wire = Vec::new();
    for msg in messages {
        enc.write_all(msg).expect("deflate");
        enc.flush().expect("flush");
        let mut chunk = std::mem::take(enc.get_mut());
        chunk.truncate(chunk.len() - 4);
        wire.extend(frame(true, true, 0x1, &chunk, None));
    }
    wire
}

#[test]
fn text_over_the_cap_is_observed_with_long_strings_cut_compressed_or_not() {
    // A 20 MiB message (over MAX_MESSAGE) whose size is one string: kept cut, whole
    // otherwise, and the next message still decodes (the inflater stays in step).
    let messages = vec![completed(20 << 20, 1), completed(10, 2)];
    let plain: Vec<u8> = messages
        .iter()
        .flat_map(|m| frame(true, false, 0x1, m, Some([7, 1, 3, 9])))
        .collect();
    for (wire, deflate) in [(plain, false), (deflated_session(&messages), true)] {
        for pieces in [1, 7, 1000] {
            let mut seen = Seen::default();
            let mut d = Decoder::new(Side::Server, deflate, true).text_keep(Some(4096));
            for piece in wire.chunks(wire.len().div_ceil(pieces)) {
                d.push(piece, &mut seen);
                assert!(d.held() <= MAX_MESSAGE + MIN_GROWTH, "held {}", d.held());
            }
            assert_eq!((seen.1, seen.2), (0, 0), "deflate {deflate}");
            let got: Vec<serde_json::Value> = seen
                .0
                .iter()
                .map(|m| serde_json::from_slice(&m.2).expect("valid JSON"))
                .collect();
            assert_eq!(got.len(), 2);
            assert_eq!(got[0]["response"]["usage"]["input_tokens"], 1);
            let args = got[0]["response"]["output"][0]["arguments"].as_str();
            assert_eq!(args.map(str::len), Some(4096));
            assert_eq!(
                got[1],
                serde_json::from_slice::<serde_json::Value>(&messages[1]).expect("json")
            );
        }
    }
}

#[test]
fn elided_text_still_over_the_cap_is_skipped_and_decoding_goes_on() {
    // Structure, not strings: cutting cannot shrink it. Under context takeover the
    // compressed message is still inflated (not kept), so the next one decodes.
    let numbers = format!("[{}1]", "1,".repeat(9 << 20)).into_bytes();
    let messages = vec![numbers, completed(10, 3)];
    for deflate in [false, true] {
        let wire = if deflate {
            deflated_session(&messages)
        } else {
            messages
                .iter()
                .flat_map(|m| frame(true, false, 0x1, m, None))
                .collect()
        };
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, deflate, true).text_keep(Some(4096));
        d.push(&wire, &mut seen);
        assert_eq!(
            (seen.1, seen.2, seen.0.len()),
            (0, 1, 1),
            "deflate {deflate}"
        );
        assert_eq!(seen.0[0].2, messages[1]);
    }
}

#[test]
fn negotiation_is_read_from_the_101() {
    let d = Deflate::negotiated(Some("permessage-deflate; client_no_context_takeover"));
    assert!(d.enabled && d.client_no_context_takeover && !d.server_no_context_takeover);
    assert!(!Deflate::negotiated(None).enabled);
    assert!(!Deflate::negotiated(Some("x-webkit-deflate-frame")).enabled);
}

#[test]
fn a_continuation_without_a_start_stops_observation() {
    let mut seen = Seen::default();
    let mut d = Decoder::new(Side::Server, false, true);
    d.push(&frame(true, false, 0x0, b"x", None), &mut seen);
    assert_eq!(seen.1, 1);
    d.push(&frame(true, false, 0x1, b"y", None), &mut seen);
    assert!(seen.0.is_empty(), "no decoding after an error");
}

/// One raw-deflate message with its own compressor (no context takeover), the sync
/// flush tail stripped (RFC 7692 §7.2.1).
fn deflated(msg: &[u8]) -> Vec<u8> {
    let mut enc = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(msg).expect("deflate");
    enc.flush().expect("flush");
    let mut out = std::mem::take(enc.get_mut());
    assert!(out.ends_with(&[0, 0, 0xff, 0xff]));
    out.truncate(out.len() - 4);
    out
}

const OVER: usize = MAX_MESSAGE + 1;

#[test]
fn an_oversized_server_frame_between_two_messages_is_skipped_however_split() {
    let mut wire = frame(true, false, 0x1, b"{\"type\":\"a\"}", None);
    let first = wire.len();
    wire.extend(frame(true, false, 0x1, &vec![b'x'; OVER], None));
    let oversized_end = wire.len();
    wire.extend(frame(true, false, 0x1, b"{\"type\":\"b\"}", None));
    // Every offset through the headers and around each frame boundary, then a stride
    // through the oversized payload (skipping is arithmetic, so each split is cheap).
    let offsets = (0..first + 20)
        .chain(oversized_end - 20..wire.len())
        .chain((first..oversized_end).step_by(65_539));
    for at in offsets {
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, false, true);
        d.push(&wire[..at], &mut seen);
        d.push(&wire[at..], &mut seen);
        assert_eq!((seen.1, seen.2), (0, 1), "split at {at}");
        let got: Vec<&[u8]> = seen.0.iter().map(|m| m.2.as_slice()).collect();
        assert_eq!(
            got,
            [&b"{\"type\":\"a\"}"[..], b"{\"type\":\"b\"}"],
            "split at {at}"
        );
        assert_eq!(d.held(), 0);
    }
    // Three pieces, one boundary in each header.
    for (a, b) in [
        (1, first + 1),
        (first + 3, oversized_end + 1),
        (5, oversized_end - 7),
    ] {
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, false, true);
        for piece in [&wire[..a], &wire[a..b], &wire[b..]] {
            d.push(piece, &mut seen);
        }
        assert_eq!(
            (seen.0.len(), seen.1, seen.2),
            (2, 0, 1),
            "split at {a}, {b}"
        );
    }
}

#[test]
fn a_masked_oversized_client_frame_is_skipped() {
    let create = b"{\"type\":\"response.create\"}";
    let mut wire = frame(true, false, 0x1, create, Some([1, 2, 3, 4]));
    wire.extend(frame(true, false, 0x2, &vec![7; OVER], Some([9, 8, 7, 6])));
    wire.extend(frame(true, false, 0x1, create, Some([4, 3, 2, 1])));
    let mut seen = Seen::default();
    let mut d = Decoder::new(Side::Client, false, true);
    for piece in wire.chunks(16 * 1024) {
        d.push(piece, &mut seen);
    }
    assert_eq!((seen.1, seen.2), (0, 1));
    assert_eq!(seen.0.len(), 2);
    assert!(seen.0.iter().all(|m| m.2 == create));
}

#[test]
fn a_fragmented_message_over_the_cap_is_skipped_and_the_next_is_observed() {
    let nine = vec![b'x'; 9 << 20];
    let mut wire = frame(false, false, 0x1, &nine, Some([1, 2, 3, 4]));
    wire.extend(frame(true, false, 0x9, b"ping", Some([5, 5, 5, 5])));
    wire.extend(frame(true, false, 0x0, &nine, Some([6, 7, 8, 9])));
    wire.extend(frame(true, false, 0x1, b"next", Some([1, 1, 2, 2])));
    let mut seen = Seen::default();
    let mut d = Decoder::new(Side::Client, false, true);
    for piece in wire.chunks(64 * 1024) {
        d.push(piece, &mut seen);
    }
    assert_eq!((seen.1, seen.2), (0, 1));
    assert_eq!(seen.0.len(), 1);
    assert_eq!(seen.0[0].2, b"next");
    assert_eq!(
        d.held(),
        0,
        "the first fragment is freed when the cap is passed"
    );
}

#[test]
fn a_compressed_message_over_the_cap_is_skipped_without_context_takeover() {
    // Over the cap on the wire, and over it once inflated (17 MiB of zeros deflate to
    // a few KiB).
    let small = deflated(b"{\"type\":\"a\"}");
    for oversized in [vec![0x55; OVER], deflated(&vec![0; 17 << 20])] {
        let mut wire = frame(true, true, 0x1, &small, None);
        wire.extend(frame(true, true, 0x1, &oversized, None));
        wire.extend(frame(true, true, 0x1, &small, None));
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, true, false);
        d.push(&wire, &mut seen);
        assert_eq!((seen.1, seen.2), (0, 1));
        assert_eq!(seen.0.len(), 2);
        assert!(seen.0.iter().all(|m| m.2 == b"{\"type\":\"a\"}"));
    }
}

/// Under context takeover every message inflates against the ones before it: a skipped
/// compressed message leaves the inflater out of step (see `Decoder`), so that
/// direction stops being observed, as for any undecodable frame.
#[test]
fn a_compressed_message_over_the_cap_stops_observation_with_context_takeover() {
    let small = deflated(b"{\"type\":\"a\"}");
    for oversized in [vec![0x55; OVER], deflated(&vec![0; 17 << 20])] {
        let mut wire = frame(true, true, 0x1, &small, None);
        wire.extend(frame(true, true, 0x1, &oversized, None));
        wire.extend(frame(true, false, 0x1, b"plain", None));
        let mut seen = Seen::default();
        let mut d = Decoder::new(Side::Server, true, true);
        d.push(&wire, &mut seen);
        assert_eq!((seen.1, seen.2), (1, 0));
        assert_eq!(
            seen.0.len(),
            1,
            "nothing decoded after the oversized message"
        );
        assert_eq!(d.held(), 0);
    }
}

#[test]
fn held_is_the_payload_received_so_far_not_a_copy_of_it() {
    let payload = vec![b'x'; MAX_MESSAGE - 1];
    let wire = frame(true, false, 0x1, &payload, None);
    let mut seen = Seen::default();
    let mut d = Decoder::new(Side::Server, false, true);
    let received = 15 << 20;
    let header = wire.len() - payload.len();
    for piece in wire[..header + received].chunks(64 * 1024) {
        d.push(piece, &mut seen);
        assert!(d.held() <= MAX_MESSAGE, "never above the cap");
    }
    // The buffer grows by doubling, clamped to the frame's announced length: about
    // what arrived, never twice it (the old decoder held the raw frame, then copied it).
    assert!(
        (received..=MAX_MESSAGE).contains(&d.held()),
        "held {} for {received} received",
        d.held()
    );
    d.push(&wire[header + received..], &mut seen);
    assert_eq!(seen.0.len(), 1);
    assert_eq!(seen.0[0].2.len(), payload.len());
    assert_eq!(d.held(), 0, "a delivered message is freed");
}

/// The fault: one server event over 16 MiB made the decoder stop for good, so every
/// later call on the socket ended `cancelled` without usage. Now the call with the
/// oversized event is flagged `body_too_large` and keeps its usage, and the next call
/// is recorded normally.
#[tokio::test]
async fn oversized_websocket_frame_does_not_stop_observation_of_later_calls() {
    use crate::{
        caller::{Attribution, Billing, Caller, Client},
        cli::Cli,
        config::Config,
        dialects::{ParseError, Target},
        exchange::{Observing, RequestHead, WsSession},
        telemetry::Telemetry,
        vocab::Outcome,
    };
    use clap::Parser as _;

    let dir = tempfile::tempdir().expect("tempdir");
    let ca_dir = dir.path().to_str().expect("utf-8 path");
    let cli = Cli::try_parse_from([
        "llmtap",
        "--listen",
        "127.0.0.1:0",
        "--ca-dir",
        ca_dir,
        "--db",
        "none",
    ])
    .expect("args");
    let config = Config::from_args(cli.run).expect("config");
    let telemetry = Telemetry::start(&config, Box::new(std::io::sink())).expect("telemetry");
    let mut records = telemetry.subscribe();
    let route = config.providers.route(&Target {
        host: "api.openai.com",
        method: "GET",
        path: "/v1/responses",
        query: None,
        websocket: true,
    });
    assert!(route.is_some(), "the Responses socket has a dialect");
    let head = RequestHead {
        host: "api.openai.com".into(),
        port: 443,
        method: "GET".into(),
        path: "/v1/responses".into(),
        caller: Caller {
            client: Client::from_user_agent("codex_exec/0.169.0"),
            conversation_id: None,
            attribution: Attribution::default(),
            billing: Billing::Api,
            subagent: false,
        },
        traceparent: None,
    };
    let observing = Observing::new(&config, telemetry.budget().clone(), telemetry.clone());
    let mut session = WsSession::new(observing, route, head);
    let mut client = Decoder::new(Side::Client, false, true);
    let mut server = Decoder::new(Side::Server, false, true);

    let create = br#"{"type":"response.create","model":"gpt-6.1-sol","input":[]}"#;
    let created = |id: &str| {
        format!(
            r#"{{"type":"response.created","response":{{"id":"{id}","model":"gpt-6.1-sol","status":"in_progress"}}}}"#
        )
    };
    let completed = |id: &str| {
        format!(
            r#"{{"type":"response.completed","response":{{"id":"{id}","model":"gpt-6.1-sol","status":"completed","output":[],"usage":{{"input_tokens":900,"output_tokens":40}}}}}}"#
        )
    };
    let huge = format!(
        r#"{{"type":"response.output_text.delta","delta":"{}"}}"#,
        "x".repeat(OVER)
    );
    for (id, oversized) in [("resp_1", true), ("resp_2", false)] {
        client.push(
            &frame(true, false, 0x1, create, Some([1, 2, 3, 4])),
            &mut session,
        );
        let mut wire = frame(true, false, 0x1, created(id).as_bytes(), None);
        if oversized {
            wire.extend(frame(true, false, 0x1, huge.as_bytes(), None));
        }
        wire.extend(frame(true, false, 0x1, completed(id).as_bytes(), None));
        for piece in wire.chunks(16 * 1024) {
            server.push(piece, &mut session);
        }
    }
    session.on_close(Side::Client);

    let mut next = async || {
        tokio::time::timeout(std::time::Duration::from_secs(10), records.recv())
            .await
            .expect("a record within 10 s")
            .expect("record")
    };
    for (i, parse_error) in [Some(ParseError::BodyTooLarge), None]
        .into_iter()
        .enumerate()
    {
        let record = next().await;
        assert_eq!(record.outcome, Outcome::Ok, "call {i}: {record:?}");
        assert_eq!(record.parse_error, parse_error, "call {i}");
        assert_eq!(record.response.usage.input, Some(900), "call {i}");
        assert_eq!(record.response.usage.output, Some(40), "call {i}");
    }
    assert!(records.try_recv().is_err(), "one record per call");
}
