//! The JSON string elider: the same output however the input is split, never longer than
//! the input, and valid JSON out of valid JSON (no cut inside a character, an escape or a
//! surrogate pair). Byte 0 picks `keep` (1..=64) and the split point.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmtap::dialects::elide::{Elider, elide};

fuzz_target!(|data: &[u8]| {
    let Some((&knob, body)) = data.split_first() else { return };
    let keep = usize::from(knob % 64) + 1;
    let whole = elide(body, keep);
    assert!(whole.len() <= body.len());
    let at = usize::from(knob) * 7 % (body.len() + 1);
    let (a, b) = body.split_at(at);
    let mut e = Elider::new(keep);
    let mut split = Vec::new();
    e.push(a, &mut split, usize::MAX);
    e.push(b, &mut split, usize::MAX);
    assert_eq!(whole, split, "split at {at}");
    // A cut key is still a key: valid JSON in, valid JSON out.
    if serde_json::from_slice::<serde_json::Value>(body).is_ok() {
        serde_json::from_slice::<serde_json::Value>(&whole)
            .unwrap_or_else(|e| panic!("keep {keep}: {e}"));
    }
});
