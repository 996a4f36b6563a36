//! Incremental splitter for a JSON array streamed element by element (Gemini's
//! `streamGenerateContent` without `alt=sse`: `[{…}\r\n,{…}\r\n]` arriving over time).
//!
//! Owns: finding where each top-level element ends, tracking strings and escapes so that
//! brackets inside strings do not count. Each element is copied through the [`Elider`] (long
//! strings cut) under a size cap; one still over the cap is skipped and counted, and
//! splitting goes on. It does not parse the elements: each complete one is handed on as
//! bytes.

use super::{ParseError, elide::Elider};

#[derive(Debug)]
/// Splits a streamed JSON array (`[{…},{…}]`, Gemini without `alt=sse`) into its elements
/// as their bytes arrive, cutting long strings as it goes.
pub struct Splitter {
    /// The element being split, with long strings cut (see [`Elider`]).
    element: Vec<u8>,
    elider: Elider,
    /// The element went over the cap even with long strings cut: it will be skipped.
    oversized: bool,
    skipped: u64,
    /// The last element was skipped (it may have been the terminal one).
    last_skipped: bool,
    /// Nesting depth inside the top-level array (0 = between elements).
    depth: usize,
    started: bool,
    ended: bool,
    in_string: bool,
    escaped: bool,
    max: usize,
}

impl Splitter {
    /// Bytes held for the element being split, by capacity (the observation budget).
    pub fn held(&self) -> usize {
        self.element.capacity()
    }

    /// `max_element` caps one element after strings longer than
    /// [`DEFAULT_KEEP`](super::sse::DEFAULT_KEEP) are cut.
    pub fn new(max_element: usize) -> Self {
        Splitter {
            element: Vec::new(),
            elider: Elider::new(super::sse::DEFAULT_KEEP),
            oversized: false,
            skipped: 0,
            last_skipped: false,
            depth: 0,
            started: false,
            ended: false,
            in_string: false,
            escaped: false,
            max: max_element,
        }
    }

    /// Keeps string bodies up to `keep` bytes.
    pub fn keep(mut self, keep: usize) -> Self {
        self.elider = Elider::new(keep);
        self
    }

    /// Elements skipped so far because they were over the cap even with long strings cut.
    pub fn skipped(&self) -> u64 {
        self.skipped
    }

    /// Whether the last element was skipped (see [`Framer::last_skipped`]).
    ///
    /// [`Framer::last_skipped`]: super::sse::Framer::last_skipped
    pub fn last_skipped(&self) -> bool {
        self.last_skipped
    }

    /// Copies part of the current element.
    fn take(&mut self, bytes: &[u8]) {
        if self.oversized || bytes.is_empty() {
            return;
        }
        let room = self.max.saturating_sub(self.element.len());
        if self.elider.push(bytes, &mut self.element, room) > 0 {
            self.oversized = true;
            self.element = Vec::new();
        }
    }

    /// Feeds one chunk, calling `on_element` with each complete top-level element. A chunk
    /// that is not a JSON array fails the stream; an element over the cap is skipped and
    /// counted; an error from `on_element` is returned once the chunk is split.
    pub fn push(
        &mut self,
        chunk: &[u8],
        on_element: &mut dyn FnMut(&[u8]) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let mut first = Ok(());
        // The start of the run of element bytes not yet copied.
        let mut run: Option<usize> = None;
        for (i, &b) in chunk.iter().enumerate() {
            if self.ended {
                if !b.is_ascii_whitespace() {
                    return Err(ParseError::InvalidJson);
                }
                continue;
            }
            if !self.started {
                match b {
                    b'[' => self.started = true,
                    _ if b.is_ascii_whitespace() => {}
                    _ => return Err(ParseError::InvalidJson),
                }
                continue;
            }
            if self.depth == 0 && !self.in_string {
                match b {
                    b',' | b' ' | b'\t' | b'\r' | b'\n' => continue,
                    b']' => {
                        self.ended = true;
                        continue;
                    }
                    _ => {}
                }
            }
            run.get_or_insert(i);
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                // A top-level string element ends with its closing quote.
                if self.in_string || self.depth > 0 {
                    continue;
                }
            } else {
                match b {
                    b'"' => self.in_string = true,
                    b'{' | b'[' => self.depth += 1,
                    b'}' | b']' => {
                        self.depth = self.depth.checked_sub(1).ok_or(ParseError::InvalidJson)?;
                    }
                    _ => {}
                }
            }
            if self.depth == 0 && !self.in_string {
                if let Some(start) = run.take() {
                    self.take(&chunk[start..=i]);
                }
                let oversized = std::mem::take(&mut self.oversized);
                self.last_skipped = oversized;
                let result = if oversized {
                    self.skipped += 1;
                    Ok(())
                } else {
                    on_element(&self.element)
                };
                if first.is_ok() {
                    first = result;
                }
                self.element.clear();
                if self.element.capacity() > 4 * super::sse::DEFAULT_KEEP {
                    self.element = Vec::new();
                }
                self.elider.reset();
            }
        }
        if let Some(start) = run {
            self.take(&chunk[start..]);
        }
        first
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split(pieces: &[&[u8]]) -> Result<Vec<String>, ParseError> {
        let mut s = Splitter::new(1 << 16);
        let mut out = Vec::new();
        for piece in pieces {
            s.push(piece, &mut |e| {
                out.push(String::from_utf8_lossy(e).into_owned());
                Ok(())
            })?;
        }
        Ok(out)
    }

    #[test]
    fn elements_come_out_whole_however_the_bytes_are_split() {
        let text = b"[{\"a\":\"x]}\\\"{\"}\r\n,{\"b\":[1,{\"c\":2}]}\r\n]";
        let whole = split(&[text]).expect("whole");
        assert_eq!(whole, vec![r#"{"a":"x]}\"{"}"#, r#"{"b":[1,{"c":2}]}"#]);
        for at in 0..text.len() {
            let (a, b) = text.split_at(at);
            assert_eq!(split(&[a, b]).expect("split"), whole, "split at {at}");
        }
    }

    #[test]
    fn garbage_and_oversize_fail() {
        assert_eq!(
            split(&[b"{\"not\":\"an array\"}"]),
            Err(ParseError::InvalidJson)
        );
        assert_eq!(split(&[b"[1]x"]), Err(ParseError::InvalidJson));
        let mut s = Splitter::new(4);
        let mut seen = Vec::new();
        s.push(b"[{\"long\":1},{}]", &mut |e| {
            seen.push(e.to_vec());
            Ok(())
        })
        .expect("an oversized element is skipped, not an error");
        assert_eq!(seen, vec![b"{}".to_vec()]);
        assert_eq!(s.skipped(), 1);
    }
}
