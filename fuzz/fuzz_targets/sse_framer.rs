//! The SSE framer must never panic, never exceed its cap, and give the same events however
//! the input is split (the first byte picks the split point).
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmtap::dialects::sse::Framer;

fn events(pieces: &[&[u8]]) -> Result<Vec<(Vec<u8>, Vec<u8>)>, llmtap::dialects::ParseError> {
    let mut framer = Framer::new(4096);
    let mut out = Vec::new();
    for piece in pieces {
        framer.push(piece, &mut |e| {
            out.push((e.name.to_vec(), e.data.to_vec()));
            Ok(())
        })?;
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    let at = usize::from(split) % (body.len() + 1);
    let whole = events(&[body]);
    let (a, b) = body.split_at(at);
    let split = events(&[a, b]);
    // A CR at the end of one piece and LF at the start of the next is one line end in both
    // cases; errors (over-long lines) must agree too.
    assert_eq!(whole, split, "split at {at}");
});
