//! The passive WebSocket frame decoder (masking, fragmentation, permessage-deflate) on
//! arbitrary bytes: no panic, bounded output, same messages however the bytes are split.
#![no_main]

use libfuzzer_sys::fuzz_target;
use llmtap::proxy::websocket::{Decoder, MessageObserver, Side};

#[derive(Default, PartialEq, Debug)]
struct Seen(Vec<(bool, Vec<u8>)>, usize);

impl MessageObserver for Seen {
    fn on_message(&mut self, _side: Side, text: bool, payload: &[u8]) {
        self.0.push((text, payload.to_vec()));
    }
    fn on_decode_error(&mut self, _side: Side) {
        self.1 += 1;
    }
    fn on_close(&mut self, _first: Side) {}
}

fuzz_target!(|data: &[u8]| {
    let Some((&flags, body)) = data.split_first() else { return };
    let (deflate, takeover) = (flags & 1 != 0, flags & 2 != 0);
    let at = usize::from(flags >> 2) % (body.len() + 1);
    let mut whole = Seen::default();
    Decoder::new(Side::Server, deflate, takeover).push(body, &mut whole);
    let mut split = Seen::default();
    let mut d = Decoder::new(Side::Server, deflate, takeover);
    let (a, b) = body.split_at(at);
    d.push(a, &mut split);
    d.push(b, &mut split);
    assert_eq!(whole, split, "split at {at}");
});
