//! The decoder against an independent encoder (smithy-rs `aws-smithy-eventstream`, the
//! framing of the AWS SDK for Rust) and against the AWS test vectors that crate carries
//! (`test_data/`, Apache-2.0, copied here as hex).

use aws_smithy_types::{
    DateTime,
    event_stream::{Header, HeaderValue as Smithy, Message as SmithyMessage},
};

use super::*;

/// smithy-rs `test_data/valid_with_all_headers_and_payload`: one header of every type.
const ALL_HEADERS: &str = "000000960000007a8bb495fb0474727565000566616c736501046279746502320573686f7274034e2003696e74040007a120046c6f6e67050000000ba43b740005627974657306000a736f6d6520627974657303737472070008736f6d65207374720474696d6508000000012a05f200047575696409b79bc914de214e13b8b2bc47e85b7f0b736f6d65207061796c6f616401a05860";
/// `valid_empty_payload`.
const EMPTY_PAYLOAD: &str = "0000001f0000000f172dc2ab0b736f6d652d6865616465720301f4933c5cad";
/// `valid_no_headers`.
const NO_HEADERS: &str = "0000002400000000516356ad616e6f746865722074657374207061796c6f61648df80e65";
/// `invalid_prelude_checksum`: `ALL_HEADERS` with the prelude CRC `deadbeef`.
const BAD_PRELUDE: &str = "000000960000007adeadbeef0474727565000566616c736501046279746502320573686f7274034e2003696e74040007a120046c6f6e67050000000ba43b740005627974657306000a736f6d6520627974657303737472070008736f6d65207374720474696d6508000000012a05f200047575696409b79bc914de214e13b8b2bc47e85b7f0b736f6d65207061796c6f616401a05860";
/// `invalid_message_checksum`: `ALL_HEADERS` with the message CRC `deadbeef`.
const BAD_MESSAGE: &str = "000000960000007a8bb495fb0474727565000566616c736501046279746502320573686f7274034e2003696e74040007a120046c6f6e67050000000ba43b740005627974657306000a736f6d6520627974657303737472070008736f6d65207374720474696d6508000000012a05f200047575696409b79bc914de214e13b8b2bc47e85b7f0b736f6d65207061796c6f6164deadbeef";
/// `invalid_header_value_type`: a header of type `0x60`.
const BAD_HEADER_TYPE: &str = "000000960000007a8bb495fb0474727565000566616c736501046279746560320573686f7274034e2003696e74040007a120046c6f6e67050000000ba43b740005627974657306000a736f6d6520627974657303737472070008736f6d65207374720474696d6508000000012a05f200047575696409b79bc914de214e13b8b2bc47e85b7f0b736f6d65207061796c6f616401a05860";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex"))
        .collect()
}

/// A message as smithy-rs writes it.
fn encode(headers: Vec<(&'static str, Smithy)>, payload: &[u8]) -> Vec<u8> {
    let message = headers
        .into_iter()
        .fold(SmithyMessage::new(payload.to_vec()), |m, (name, value)| {
            m.add_header(Header::new(name, value))
        });
    let mut out = Vec::new();
    aws_smithy_eventstream::frame::write_message_to(&message, &mut out).expect("encodable");
    out
}

fn string(s: &'static str) -> Smithy {
    Smithy::String(s.into())
}

/// A Bedrock event: `:message-type: event`, its `:event-type`, JSON content.
fn event(kind: &'static str, payload: &str) -> Vec<u8> {
    encode(
        vec![
            (":event-type", string(kind)),
            (":content-type", string("application/json")),
            (":message-type", string("event")),
        ],
        payload.as_bytes(),
    )
}

/// What a decoder hands on: each message's headers (as owned values) and payload.
type Seen = Vec<(Vec<(Vec<u8>, String)>, Vec<u8>)>;

fn decode(pieces: &[&[u8]], max: usize) -> (Seen, Result<(), ParseError>, Decoder) {
    let mut decoder = Decoder::new(max);
    let mut seen = Vec::new();
    let mut result = Ok(());
    for piece in pieces {
        let pushed = decoder.push(piece, &mut |m| {
            let headers = m
                .headers()
                .map(|(n, v)| (n.to_vec(), format!("{v:?}")))
                .collect();
            seen.push((headers, m.payload.to_vec()));
            Ok(())
        });
        if result.is_ok() {
            result = pushed;
        }
    }
    (seen, result, decoder)
}

#[test]
fn the_aws_test_vectors_decode_with_every_header_type() {
    let (seen, result, _) = decode(&[&hex(ALL_HEADERS)], 1 << 10);
    assert_eq!(result, Ok(()));
    assert_eq!(seen.len(), 1);
    let mut decoder = Decoder::new(1 << 10);
    decoder
        .push(&hex(ALL_HEADERS), &mut |m| {
            let headers: Vec<_> = m.headers().collect();
            let uuid = 0xb79bc914_de21_4e13_b8b2_bc47e85b7f0b_u128.to_be_bytes();
            let want: Vec<(&[u8], HeaderValue<'_>)> = vec![
                (b"true", HeaderValue::Bool(true)),
                (b"false", HeaderValue::Bool(false)),
                (b"byte", HeaderValue::Byte(50)),
                (b"short", HeaderValue::Short(20_000)),
                (b"int", HeaderValue::Int(500_000)),
                (b"long", HeaderValue::Long(50_000_000_000)),
                (b"bytes", HeaderValue::Bytes(b"some bytes")),
                (b"str", HeaderValue::String(b"some str")),
                (b"time", HeaderValue::Timestamp(5_000_000_000)),
                (b"uuid", HeaderValue::Uuid(uuid)),
            ];
            assert_eq!(headers, want);
            assert_eq!(m.payload, b"some payload");
            assert_eq!(m.string("str"), Some(&b"some str"[..]));
            assert_eq!(m.string("int"), None, "not a string");
            Ok(())
        })
        .expect("valid");
    let (seen, _, _) = decode(&[&hex(EMPTY_PAYLOAD)], 1 << 10);
    assert_eq!(seen[0].1, b"");
    assert_eq!(seen[0].0[0].0, b"some-header");
    let (seen, _, _) = decode(&[&hex(NO_HEADERS)], 1 << 10);
    assert_eq!(seen, vec![(vec![], b"another test payload".to_vec())]);
}

#[test]
fn the_smithy_encoder_round_trips_every_header_type() {
    let message = encode(
        vec![
            ("t", Smithy::Bool(true)),
            ("f", Smithy::Bool(false)),
            ("b", Smithy::Byte(-3)),
            ("s", Smithy::Int16(-20_000)),
            ("i", Smithy::Int32(-500_000)),
            ("l", Smithy::Int64(-50_000_000_000)),
            ("y", Smithy::ByteArray(vec![0, 255, 7].into())),
            ("z", string("zz")),
            (
                "d",
                Smithy::Timestamp(DateTime::from_millis(1_700_000_000_123)),
            ),
            ("u", Smithy::Uuid(7)),
        ],
        b"{}",
    );
    let mut decoder = Decoder::new(1 << 10);
    let mut n = 0;
    decoder
        .push(&message, &mut |m| {
            n += 1;
            let values: Vec<_> = m.headers().map(|(_, v)| v).collect();
            let mut uuid = [0; 16];
            uuid[15] = 7;
            assert_eq!(
                values,
                [
                    HeaderValue::Bool(true),
                    HeaderValue::Bool(false),
                    HeaderValue::Byte(-3),
                    HeaderValue::Short(-20_000),
                    HeaderValue::Int(-500_000),
                    HeaderValue::Long(-50_000_000_000),
                    HeaderValue::Bytes(&[0, 255, 7]),
                    HeaderValue::String(b"zz"),
                    HeaderValue::Timestamp(1_700_000_000_123),
                    HeaderValue::Uuid(uuid),
                ]
            );
            assert_eq!(m.payload, b"{}");
            Ok(())
        })
        .expect("valid");
    assert_eq!(n, 1);
}

/// A stream of several messages of every kind Bedrock sends, as smithy-rs encodes them.
fn stream() -> Vec<u8> {
    let mut out = Vec::new();
    out.extend(event(
        "messageStart",
        r#"{"p":"abcdefghij","role":"assistant"}"#,
    ));
    out.extend(event(
        "contentBlockDelta",
        r#"{"contentBlockIndex":0,"delta":{"text":"Hi"},"p":"abcd"}"#,
    ));
    out.extend(encode(vec![], b""));
    out.extend(encode(
        vec![
            (":exception-type", string("throttlingException")),
            (":content-type", string("application/json")),
            (":message-type", string("exception")),
        ],
        br#"{"message":"Too many tokens, please wait before trying again."}"#,
    ));
    out.extend(encode(
        vec![
            (":error-code", string("InternalFailure")),
            (":error-message", string("boom")),
            (":message-type", string("error")),
        ],
        b"",
    ));
    out
}

#[test]
fn a_stream_gives_the_same_messages_however_it_is_split() {
    let body = stream();
    let (whole, result, decoder) = decode(&[&body], 1 << 10);
    assert_eq!(result, Ok(()));
    assert_eq!(whole.len(), 5);
    assert!(!decoder.mid_message());
    for at in 0..=body.len() {
        let (a, b) = body.split_at(at);
        let (seen, result, decoder) = decode(&[a, b], 1 << 10);
        assert_eq!((seen, result), (whole.clone(), Ok(())), "split at {at}");
        assert_eq!(decoder.held(), decoder.buf.capacity());
    }
    let bytes: Vec<&[u8]> = body.chunks(1).collect();
    assert_eq!(decode(&bytes, 1 << 10).0, whole, "byte by byte");
    for size in [2, 3, 7, 11, 12, 13, 16, 100] {
        let pieces: Vec<&[u8]> = body.chunks(size).collect();
        assert_eq!(decode(&pieces, 1 << 10).0, whole, "chunks of {size}");
    }
}

#[test]
fn messages_map_to_event_names_by_their_type() {
    let body = stream();
    let mut names = Vec::new();
    let mut name = Vec::new();
    Decoder::new(1 << 10)
        .push(&body, &mut |m| {
            names.push(
                m.event_name(&mut name)
                    .map(|()| String::from_utf8_lossy(&name).into_owned()),
            );
            Ok(())
        })
        .expect("valid");
    let want = [
        "messageStart",
        "contentBlockDelta",
        "",
        "exception:throttlingException",
        "error:InternalFailure",
    ]
    .map(|n| Some(n.to_owned()));
    assert_eq!(names, want);
    let unknown = encode(vec![(":message-type", string("ping"))], b"");
    Decoder::new(1 << 10)
        .push(&unknown, &mut |m| {
            assert_eq!(m.event_name(&mut name), None);
            Ok(())
        })
        .expect("valid");
}

#[test]
fn a_bad_prelude_crc_loses_the_framing_for_good() {
    let good = event("messageStop", r#"{"stopReason":"end_turn"}"#);
    let body = [good.clone(), hex(BAD_PRELUDE), good.clone()].concat();
    for at in [
        0,
        5,
        good.len(),
        good.len() + 3,
        good.len() + 12,
        body.len(),
    ] {
        let (a, b) = body.split_at(at);
        let (seen, result, mut decoder) = decode(&[a, b], 1 << 10);
        assert_eq!(seen.len(), 1, "split at {at}: only the message before it");
        assert_eq!(result, Err(ParseError::InvalidFrame), "split at {at}");
        assert_eq!(
            decoder.push(&good, &mut |_| Ok(())),
            Err(ParseError::InvalidFrame),
            "nothing more is read"
        );
        assert_eq!(decoder.held(), 0);
    }
}

#[test]
fn impossible_lengths_lose_the_framing() {
    // A sound CRC over a total under 16 bytes, and over headers longer than the message.
    for (total, headers) in [(15_u32, 0_u32), (20, 5), (0, 0)] {
        let mut prelude = [total.to_be_bytes(), headers.to_be_bytes()].concat();
        prelude.extend(crc32fast::hash(&prelude).to_be_bytes());
        prelude.extend([0; 32]);
        let (seen, result, _) = decode(&[&prelude], 1 << 10);
        assert_eq!((seen.len(), result), (0, Err(ParseError::InvalidFrame)));
    }
}

#[test]
fn a_message_failing_its_crc_or_headers_is_skipped_and_counted() {
    let good = event("messageStop", r#"{"stopReason":"end_turn"}"#);
    for bad in [BAD_MESSAGE, BAD_HEADER_TYPE] {
        let body = [good.clone(), hex(bad), good.clone()].concat();
        for at in 0..=body.len() {
            let (a, b) = body.split_at(at);
            let (seen, result, decoder) = decode(&[a, b], 1 << 10);
            assert_eq!((seen.len(), result), (2, Ok(())), "split at {at}");
            assert_eq!(decoder.corrupt(), 1);
            assert!(!decoder.last_skipped(), "a good message came last");
        }
        let (_, _, decoder) = decode(&[&good, &hex(bad)], 1 << 10);
        assert!(
            decoder.last_skipped(),
            "the last message may have been the terminal one"
        );
    }
    // A header whose string runs past the headers (its CRC made sound): corrupt too.
    let mut cut = hex("0000001400000004");
    cut.extend(crc32fast::hash(&cut).to_be_bytes());
    cut.extend([1, b'a', 7, 0]);
    cut.extend(crc32fast::hash(&cut).to_be_bytes());
    let (seen, result, decoder) = decode(&[&cut], 1 << 10);
    assert_eq!((seen.len(), result, decoder.corrupt()), (0, Ok(()), 1));
}

#[test]
fn a_message_over_the_cap_is_skipped_without_being_held() {
    let big = event(
        "contentBlockDelta",
        &format!(r#"{{"p":"{}"}}"#, "x".repeat(5000)),
    );
    let small = event("messageStop", r#"{"stopReason":"end_turn"}"#);
    let cap = small.len() + 8;
    let body = [small.clone(), big, small.clone()].concat();
    for size in [1, 10, 12, 13, 100, body.len()] {
        let mut decoder = Decoder::new(cap);
        let mut n = 0;
        for piece in body.chunks(size) {
            decoder
                .push(piece, &mut |_| {
                    n += 1;
                    Ok(())
                })
                .expect("skipping is no error");
            assert!(decoder.held() <= cap, "held {}", decoder.held());
        }
        assert_eq!((n, decoder.skipped()), (2, 1), "chunks of {size}");
        assert!(!decoder.last_skipped() && !decoder.mid_message());
    }
    let (seen, _, decoder) = decode(&[&small, &event("x", &"y".repeat(cap))], cap);
    assert_eq!(seen.len(), 1);
    assert!(decoder.last_skipped());
}

#[test]
fn a_truncated_stream_hands_on_only_whole_messages() {
    let body = stream();
    let mut ends = Vec::new();
    let mut at = 0;
    while at < body.len() {
        at += declared(&body[at..]);
        ends.push(at);
    }
    for len in 0..=body.len() {
        let (seen, result, decoder) = decode(&[&body[..len]], 1 << 10);
        let whole = ends.iter().filter(|&&end| end <= len).count();
        assert_eq!((seen.len(), result), (whole, Ok(())), "cut at {len}");
        assert_eq!(
            decoder.mid_message(),
            len > 0 && !ends.contains(&len),
            "cut at {len}"
        );
    }
}

#[test]
fn an_error_from_the_consumer_is_returned_and_decoding_goes_on() {
    let body = stream();
    let mut n = 0;
    let result = Decoder::new(1 << 10).push(&body, &mut |_| {
        n += 1;
        Err(ParseError::InvalidJson)
    });
    assert_eq!((result, n), (Err(ParseError::InvalidJson), 5));
}
