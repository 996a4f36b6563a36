//! The AWS event-stream decoder must never panic, never hold more than its cap, and give the
//! same messages (and the same error) however the input is split (the first byte picks the
//! split point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmtap::dialects::{ParseError, eventstream::Decoder};

const CAP: usize = 4096;

type Seen = (Vec<(Vec<u8>, Vec<u8>)>, Result<(), ParseError>, u64, u64);

fn messages(pieces: &[&[u8]]) -> Seen {
    let mut decoder = Decoder::new(CAP);
    let mut out = Vec::new();
    let mut result = Ok(());
    for piece in pieces {
        let pushed = decoder.push_events(piece, &mut |e| {
            out.push((e.name.to_vec(), e.data.to_vec()));
            Ok(())
        });
        assert!(decoder.held() <= CAP, "held {}", decoder.held());
        if result.is_ok() {
            result = pushed;
        }
    }
    (out, result, decoder.skipped(), decoder.corrupt())
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    let at = usize::from(split) % (body.len() + 1);
    let whole = messages(&[body]);
    let (a, b) = body.split_at(at);
    assert_eq!(whole, messages(&[a, b]), "split at {at}");
});
