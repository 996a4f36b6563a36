//! Shortening long JSON strings while the bytes stream past, so that an event of any size
//! can be parsed for its facts in bounded memory.
//!
//! Owns: a byte-level scanner of JSON text that copies everything outside strings, and of
//! every string body only its first `keep` bytes (then closes the string). The facts llmtap
//! reads (types, ids, model, usage, finish reasons, tool names, error types) are short
//! strings and numbers and pass through unchanged; what is cut is content: base64 images,
//! fetched documents, long tool arguments. The output of well-formed JSON is well-formed
//! JSON: a string is cut only between characters, never inside a UTF-8 sequence, an escape
//! (`\n`, `\u00e9`) or a surrogate pair (`\ud83d\ude00`), since serde_json rejects a lone
//! surrogate.
//!
//! Object keys are strings like any other: one longer than `keep` is cut too. No key llmtap
//! reads is longer than a few dozen bytes, and `keep` is at least 1 KiB in use.
//!
//! Does not own: validating JSON (malformed input goes through as malformed, and the parser
//! that reads the output says so) or framing (the SSE framer and the JSON array splitter feed
//! it and reset it at each event).

/// Streaming elider of long JSON string bodies. Feed any split of the input; the output is
/// the same however it is split.
#[derive(Debug, Clone)]
pub struct Elider {
    keep: usize,
    state: State,
    /// Bytes of the current string body copied so far.
    copied: usize,
    /// Bytes of the current string body left out, over the whole event (for the caller).
    elided: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    /// Outside any string.
    Outside,
    /// In a string body, copying.
    In(Escape),
    /// In a string body past `keep`: skipping to its closing quote.
    Skipping { escaped: bool },
}

/// Where a copied string stands with respect to escapes, so that it is cut only between
/// characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Escape {
    /// Between characters (a cut here keeps the text well-formed), unless `high` says the
    /// last character was the first half of a surrogate pair.
    None { high: bool },
    /// Just after a backslash.
    Backslash { high: bool },
    /// Inside `\uXXXX`: `left` hex digits to go, `value` the digits so far.
    Hex { left: u8, value: u16, high: bool },
    /// Inside a multi-byte UTF-8 character: `left` continuation bytes to go.
    Utf8 { left: u8 },
}

impl Elider {
    /// `keep`: the longest string body (in bytes of JSON text, escapes as written) copied
    /// whole; longer ones are cut to about that many bytes.
    pub fn new(keep: usize) -> Self {
        Elider {
            keep,
            state: State::Outside,
            copied: 0,
            elided: 0,
        }
    }

    /// Forgets the current document (a new event starts).
    pub fn reset(&mut self) {
        self.state = State::Outside;
        self.copied = 0;
        self.elided = 0;
    }

    /// Bytes of string bodies left out since the last [`reset`](Elider::reset).
    pub fn elided(&self) -> u64 {
        self.elided
    }

    /// Appends `input`, with long strings shortened, to `out`. `room`: the most bytes `out`
    /// may take in this call; the count of bytes that did not fit is returned (the caller
    /// treats the event as oversized), and the scanner keeps its state regardless.
    pub fn push(&mut self, mut input: &[u8], out: &mut Vec<u8>, room: usize) -> usize {
        let mut room = room;
        let mut overflow = 0;
        let mut emit = |bytes: &[u8], out: &mut Vec<u8>| {
            let fits = bytes.len().min(room);
            out.extend_from_slice(&bytes[..fits]);
            room -= fits;
            overflow += bytes.len() - fits;
        };
        while !input.is_empty() {
            match self.state {
                State::Outside => match memchr::memchr(b'"', input) {
                    None => {
                        emit(input, out);
                        input = &[];
                    }
                    Some(at) => {
                        emit(&input[..=at], out);
                        input = &input[at + 1..];
                        self.state = State::In(Escape::None { high: false });
                        self.copied = 0;
                    }
                },
                State::Skipping { escaped: true } => {
                    // The byte after a backslash is escaped, whatever it is.
                    self.elided += 1;
                    input = &input[1..];
                    self.state = State::Skipping { escaped: false };
                }
                State::Skipping { escaped: false } => {
                    // Only `"` and `\` matter here; jump between them.
                    match memchr::memchr2(b'"', b'\\', input) {
                        None => {
                            self.elided += input.len() as u64;
                            input = &[];
                        }
                        Some(at) => {
                            self.elided += at as u64;
                            let b = input[at];
                            input = &input[at + 1..];
                            if b == b'"' {
                                emit(b"\"", out);
                                self.state = State::Outside;
                            } else {
                                self.elided += 1;
                                self.state = State::Skipping { escaped: true };
                            }
                        }
                    }
                }
                State::In(escape) => {
                    // Fast path: plain ASCII text with room left under `keep`.
                    if let Escape::None { high: false } = escape {
                        let budget = self.keep.saturating_sub(self.copied);
                        let window = &input[..input.len().min(budget)];
                        let plain = window
                            .iter()
                            .position(|&b| b == b'"' || b == b'\\' || b >= 0x80)
                            .unwrap_or(window.len());
                        if plain > 0 {
                            emit(&input[..plain], out);
                            self.copied += plain;
                            input = &input[plain..];
                            continue;
                        }
                    }
                    let b = input[0];
                    let between = matches!(escape, Escape::None { high: false });
                    if between && self.copied >= self.keep && b != b'"' {
                        self.state = State::Skipping { escaped: false };
                        continue;
                    }
                    input = &input[1..];
                    emit(&[b], out);
                    self.copied += 1;
                    self.state = match escape {
                        Escape::None { high } => match b {
                            b'"' => State::Outside,
                            b'\\' => State::In(Escape::Backslash { high }),
                            0xC0..=0xDF => State::In(Escape::Utf8 { left: 1 }),
                            0xE0..=0xEF => State::In(Escape::Utf8 { left: 2 }),
                            0xF0..=0xF7 => State::In(Escape::Utf8 { left: 3 }),
                            _ => State::In(Escape::None { high: false }),
                        },
                        Escape::Backslash { high } => match b {
                            b'u' => State::In(Escape::Hex {
                                left: 4,
                                value: 0,
                                high,
                            }),
                            _ => State::In(Escape::None { high: false }),
                        },
                        Escape::Hex { left, value, high } => {
                            let digit = (b as char).to_digit(16).unwrap_or(0) as u16;
                            let value = value << 4 | digit;
                            if left > 1 {
                                State::In(Escape::Hex {
                                    left: left - 1,
                                    value,
                                    high,
                                })
                            } else {
                                // A high surrogate must be followed by its low half before
                                // a cut; a low one completes the pair.
                                let is_high = (0xD800..0xDC00).contains(&value) && !high;
                                State::In(Escape::None { high: is_high })
                            }
                        }
                        Escape::Utf8 { left } if left > 1 => {
                            State::In(Escape::Utf8 { left: left - 1 })
                        }
                        Escape::Utf8 { .. } => State::In(Escape::None { high: false }),
                    };
                }
            }
        }
        overflow
    }
}

/// Shortens every long string of a complete JSON text (see [`Elider`]).
pub fn elide(input: &[u8], keep: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len().min(keep.saturating_mul(4)));
    Elider::new(keep).push(input, &mut out, usize::MAX);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{Value, json};

    fn every_split(input: &[u8], keep: usize) -> Vec<u8> {
        let whole = elide(input, keep);
        for at in 0..=input.len() {
            let mut e = Elider::new(keep);
            let mut out = Vec::new();
            e.push(&input[..at], &mut out, usize::MAX);
            e.push(&input[at..], &mut out, usize::MAX);
            assert_eq!(out, whole, "split at {at}");
        }
        let mut e = Elider::new(keep);
        let mut out = Vec::new();
        for b in input {
            e.push(std::slice::from_ref(b), &mut out, usize::MAX);
        }
        assert_eq!(out, whole, "byte by byte");
        whole
    }

    #[test]
    fn short_strings_and_structure_pass_unchanged() {
        let text = br#"{"type":"message_delta","usage":{"output_tokens":25},"s":"a\"b\\"}"#;
        assert_eq!(every_split(text, 16), text.to_vec());
    }

    #[test]
    fn long_strings_are_cut_and_the_rest_is_kept() {
        let data = "A".repeat(10_000);
        let text = json!({"inlineData":{"data": data},"usage":{"n":3},"id":"x"}).to_string();
        let out = every_split(text.as_bytes(), 10);
        let v: Value = serde_json::from_slice(&out).expect("valid json");
        assert_eq!(v["inlineData"]["data"], "AAAAAAAAAA");
        assert_eq!(v["usage"]["n"], 3);
        assert_eq!(v["id"], "x");
        let mut e = Elider::new(10);
        e.push(text.as_bytes(), &mut Vec::new(), usize::MAX);
        assert_eq!(e.elided(), 10_000 - 10);
    }

    #[test]
    fn cuts_never_split_a_character_an_escape_or_a_surrogate_pair() {
        // Every cut point over strings full of multi-byte characters and escapes gives
        // valid JSON whose string is a prefix of the original.
        let original = "é€😀\n\"\\\u{1F600}x".repeat(20);
        let text = json!({ "s": original }).to_string();
        let escaped = r#"{"s":"\u00e9\ud83d\ude00\n\ud83d\ude00\\\"ab"}"#;
        for input in [text.as_str(), escaped] {
            let want: Value = serde_json::from_str(input).expect("input");
            let want = want["s"].as_str().expect("string").to_owned();
            for keep in 1..input.len() {
                let out = every_split(input.as_bytes(), keep);
                let got: Value = serde_json::from_slice(&out)
                    .unwrap_or_else(|e| panic!("keep {keep}: {e}: {out:?}"));
                let got = got["s"].as_str().expect("string");
                assert!(want.starts_with(got), "keep {keep}: {got:?}");
            }
        }
    }

    #[test]
    fn the_room_limit_reports_overflow_without_losing_track() {
        let text = br#"{"a":"0123456789","b":1}"#;
        let mut e = Elider::new(4);
        let mut out = Vec::new();
        let over = e.push(text, &mut out, 6);
        assert_eq!(out, br#"{"a":""#.to_vec());
        assert_eq!(over, br#"{"a":"0123","b":1}"#.len() - 6);
    }
}
