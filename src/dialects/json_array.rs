//! Incremental splitter for a JSON array streamed element by element (Gemini's
//! `streamGenerateContent` without `alt=sse`: `[{…}\r\n,{…}\r\n]` arriving over time).
//!
//! Owns: finding where each top-level element ends, tracking strings and escapes so that
//! brackets inside strings do not count, with an element size cap. It does not parse the
//! elements: each complete one is handed on as bytes.

use super::ParseError;

#[derive(Debug)]
pub struct Splitter {
    element: Vec<u8>,
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

    pub fn new(max_element: usize) -> Self {
        Splitter {
            element: Vec::new(),
            depth: 0,
            started: false,
            ended: false,
            in_string: false,
            escaped: false,
            max: max_element,
        }
    }

    /// Feeds one chunk, calling `on_element` with each complete top-level element.
    pub fn push(
        &mut self,
        chunk: &[u8],
        on_element: &mut dyn FnMut(&[u8]) -> Result<(), ParseError>,
    ) -> Result<(), ParseError> {
        for &b in chunk {
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
            if self.element.len() >= self.max {
                return Err(ParseError::LineTooLong);
            }
            self.element.push(b);
            if self.in_string {
                if self.escaped {
                    self.escaped = false;
                } else if b == b'\\' {
                    self.escaped = true;
                } else if b == b'"' {
                    self.in_string = false;
                }
                continue;
            }
            match b {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' => {
                    self.depth = self.depth.checked_sub(1).ok_or(ParseError::InvalidJson)?;
                }
                _ => {}
            }
            if self.depth == 0 {
                let element = std::mem::take(&mut self.element);
                let result = on_element(&element);
                self.element = element;
                self.element.clear();
                result?;
            }
        }
        Ok(())
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
        assert_eq!(
            s.push(b"[{\"long\":1}]", &mut |_| Ok(())),
            Err(ParseError::LineTooLong)
        );
    }
}
