//! The streamed-JSON-array splitter: no panic, and the same elements however the input is
//! split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmtap::dialects::json_array::Splitter;

fn elements(pieces: &[&[u8]]) -> Result<Vec<Vec<u8>>, llmtap::dialects::ParseError> {
    let mut s = Splitter::new(4096);
    let mut out = Vec::new();
    for piece in pieces {
        s.push(piece, &mut |e| {
            out.push(e.to_vec());
            Ok(())
        })?;
    }
    Ok(out)
}

fuzz_target!(|data: &[u8]| {
    let Some((&split, body)) = data.split_first() else { return };
    let at = usize::from(split) % (body.len() + 1);
    let (a, b) = body.split_at(at);
    assert_eq!(elements(&[body]), elements(&[a, b]), "split at {at}");
});
