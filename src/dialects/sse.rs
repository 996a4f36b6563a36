//! Incremental Server-Sent Events framer (the WHATWG event-stream grammar).
//!
//! Owns: splitting a byte stream that arrives in arbitrary pieces into events: lines ended by
//! `\n`, `\r\n` or `\r` (even when the pair is split across chunks), multi-line `data:`
//! joined with `\n`, comments and unknown fields skipped, a blank line dispatching. Memory is
//! bounded by the line cap. Does not own: what an event means (the dialects do).

use super::ParseError;

/// One dispatched event. Borrowed from the framer; copy what you keep.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Event<'a> {
    /// The `event:` field, empty when absent.
    pub name: &'a [u8],
    /// All `data:` lines joined with `\n`.
    pub data: &'a [u8],
}

#[derive(Debug)]
pub struct Framer {
    line: Vec<u8>,
    name: Vec<u8>,
    data: Vec<u8>,
    has_data: bool,
    /// The previous chunk ended in `\r`: a `\n` opening the next one ends nothing.
    after_cr: bool,
    max_line: usize,
}

impl Framer {
    /// Bytes held for the event being framed (its partial line, name and data), by
    /// capacity: what the observation budget charges.
    pub fn held(&self) -> usize {
        self.line.capacity() + self.name.capacity() + self.data.capacity()
    }

    /// `max_line` caps one line and also one event's joined data.
    pub fn new(max_line: usize) -> Self {
        Framer {
            line: Vec::new(),
            name: Vec::new(),
            data: Vec::new(),
            has_data: false,
            after_cr: false,
            max_line,
        }
    }

    /// Feeds one chunk, calling `on_event` for every event it completes. After an error the
    /// framer must not be fed again.
    pub fn push(
        &mut self,
        mut chunk: &[u8],
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        if self.after_cr {
            self.after_cr = false;
            if let Some(rest) = chunk.strip_prefix(b"\n") {
                chunk = rest;
            }
        }
        while !chunk.is_empty() {
            match chunk.iter().position(|&b| b == b'\n' || b == b'\r') {
                None => {
                    self.extend_line(chunk)?;
                    return Ok(());
                }
                Some(end) => {
                    self.extend_line(&chunk[..end])?;
                    let cr = chunk[end] == b'\r';
                    chunk = &chunk[end + 1..];
                    if cr {
                        match chunk.first() {
                            Some(b'\n') => chunk = &chunk[1..],
                            Some(_) => {}
                            None => self.after_cr = true,
                        }
                    }
                    let line = std::mem::take(&mut self.line);
                    let result = self.on_line(&line, on_event);
                    self.line = line;
                    self.line.clear();
                    result?;
                }
            }
        }
        Ok(())
    }

    fn extend_line(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        if self.line.len() + bytes.len() > self.max_line {
            return Err(ParseError::LineTooLong);
        }
        self.line.extend_from_slice(bytes);
        Ok(())
    }

    fn on_line(
        &mut self,
        line: &[u8],
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        if line.is_empty() {
            return self.dispatch(on_event);
        }
        if line[0] == b':' {
            return Ok(());
        }
        let (field, value) = match line.iter().position(|&b| b == b':') {
            Some(i) => {
                let value = &line[i + 1..];
                (&line[..i], value.strip_prefix(b" ").unwrap_or(value))
            }
            None => (line, &[][..]),
        };
        match field {
            b"data" => {
                if self.data.len() + value.len() + 1 > self.max_line {
                    return Err(ParseError::LineTooLong);
                }
                if self.has_data {
                    self.data.push(b'\n');
                }
                self.data.extend_from_slice(value);
                self.has_data = true;
            }
            b"event" => {
                self.name.clear();
                self.name.extend_from_slice(value);
            }
            _ => {}
        }
        Ok(())
    }

    fn dispatch(
        &mut self,
        on_event: &mut dyn FnMut(Event<'_>) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        let result = if self.has_data {
            on_event(Event {
                name: &self.name,
                data: &self.data,
            })
        } else {
            Ok(())
        };
        self.name.clear();
        self.data.clear();
        self.has_data = false;
        result
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(input: &[&[u8]], max: usize) -> Result<Vec<(String, String)>, ParseError> {
        let mut framer = Framer::new(max);
        let mut out = Vec::new();
        for chunk in input {
            framer.push(chunk, &mut |e| {
                out.push((
                    String::from_utf8_lossy(e.name).into_owned(),
                    String::from_utf8_lossy(e.data).into_owned(),
                ));
                Ok(())
            })?;
        }
        Ok(out)
    }

    #[test]
    fn splits_events_on_blank_lines_with_any_line_ending() {
        let got = events(
            &[b"event: a\ndata: 1\n\nevent: b\r\ndata: 2\r\n\r\ndata: 3\r\r"],
            64,
        );
        let want = [("a", "1"), ("b", "2"), ("", "3")].map(|(n, d)| (n.into(), d.into()));
        assert_eq!(got, Ok(want.to_vec()));
    }

    #[test]
    fn joins_multi_line_data_and_skips_comments_and_unknown_fields() {
        let got = events(
            &[b": keepalive\nid: 7\nretry: 10\ndata: {\"a\":\ndata: 1}\nfoo\n\n"],
            64,
        );
        assert_eq!(got, Ok(vec![(String::new(), "{\"a\":\n1}".into())]));
    }

    #[test]
    fn crlf_split_across_chunks_is_one_line_end() {
        let got = events(&[b"data: x\r", b"\n", b"\r", b"\ndata: y\n\n"], 64);
        assert_eq!(
            got,
            Ok(vec![
                (String::new(), "x".into()),
                (String::new(), "y".into())
            ])
        );
    }

    #[test]
    fn event_without_data_is_not_dispatched() {
        assert_eq!(events(&[b"event: ping\n\n"], 64), Ok(vec![]));
    }

    #[test]
    fn long_lines_fail_instead_of_growing() {
        assert_eq!(
            events(&[b"data: ", &[b'x'; 40], b"\n\n"], 16),
            Err(ParseError::LineTooLong)
        );
        let joined: &[&[u8]] = &[b"data: 0123456789\ndata: 0123456789\n\n"];
        assert_eq!(events(joined, 16), Err(ParseError::LineTooLong));
    }
}
