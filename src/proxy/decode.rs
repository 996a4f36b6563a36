//! Push-style decoding of `content-encoding` on a copy of the body, for parsing only.
//!
//! Owns: identity, gzip, deflate (zlib, or raw as some servers send it), br and zstd, with a
//! cap on decoded bytes per body (a decompression bomb stops parsing, not traffic). The
//! client always gets the original bytes; this decoder only ever sees copies.

use std::io::Write;

use crate::dialects::ParseError;

/// A `content-encoding` llmtap can decode.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Encoding {
    Identity,
    Gzip,
    Deflate,
    Brotli,
    Zstd,
}

impl Encoding {
    /// Reads the header value; `None` for an encoding llmtap cannot decode (or a stack of
    /// several, which no LLM API sends).
    pub fn from_header(value: Option<&str>) -> Option<Encoding> {
        let Some(value) = value.map(str::trim).filter(|v| !v.is_empty()) else {
            return Some(Encoding::Identity);
        };
        match value.to_ascii_lowercase().as_str() {
            "identity" => Some(Encoding::Identity),
            "gzip" | "x-gzip" => Some(Encoding::Gzip),
            "deflate" => Some(Encoding::Deflate),
            "br" => Some(Encoding::Brotli),
            "zstd" => Some(Encoding::Zstd),
            _ => None,
        }
    }
}

/// Collects decoded output, refusing to grow past the cap.
struct Capped {
    out: Vec<u8>,
    total: usize,
    cap: usize,
}

impl Write for Capped {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.total += buf.len();
        if self.total > self.cap {
            return Err(std::io::Error::other("decoded body over the cap"));
        }
        self.out.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

enum Inner {
    Identity(Capped),
    Gzip(flate2::write::GzDecoder<Capped>),
    /// `deflate` is zlib-wrapped by the RFC, raw in practice from some servers: sniffed on
    /// the first byte.
    Deflate(Option<Vec<u8>>, Option<DeflateKind>),
    Brotli(Box<brotli::DecompressorWriter<Capped>>),
    Zstd(zstd::stream::write::Decoder<'static, Capped>),
}

enum DeflateKind {
    Zlib(flate2::write::ZlibDecoder<Capped>),
    Raw(flate2::write::DeflateDecoder<Capped>),
}

/// Decodes a body pushed to it chunk by chunk.
pub struct Decoder {
    inner: Inner,
    cap: usize,
}

impl std::fmt::Debug for Decoder {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder")
            .field("cap", &self.cap)
            .finish_non_exhaustive()
    }
}

impl Decoder {
    pub fn new(encoding: Encoding, cap: usize) -> Result<Decoder, ParseError> {
        let sink = || Capped {
            out: Vec::new(),
            total: 0,
            cap,
        };
        let inner = match encoding {
            Encoding::Identity => Inner::Identity(sink()),
            Encoding::Gzip => Inner::Gzip(flate2::write::GzDecoder::new(sink())),
            Encoding::Deflate => Inner::Deflate(Some(Vec::new()), None),
            Encoding::Brotli => {
                Inner::Brotli(Box::new(brotli::DecompressorWriter::new(sink(), 8 * 1024)))
            }
            Encoding::Zstd => Inner::Zstd(
                zstd::stream::write::Decoder::new(sink()).map_err(|_| ParseError::Decode)?,
            ),
        };
        Ok(Decoder { inner, cap })
    }

    /// Decodes `chunk` and returns the bytes it produced (possibly none yet).
    pub fn push(&mut self, chunk: &[u8]) -> Result<Vec<u8>, ParseError> {
        let cap = self.cap;
        let sink = |w: &mut Capped| std::mem::take(&mut w.out);
        let check = |r: std::io::Result<()>, total: usize| match r {
            Ok(()) => Ok(()),
            Err(_) if total > cap => Err(ParseError::BodyTooLarge),
            Err(_) => Err(ParseError::Decode),
        };
        match &mut self.inner {
            Inner::Identity(w) => {
                check(w.write_all(chunk), w.total + chunk.len())?;
                Ok(sink(w))
            }
            Inner::Gzip(d) => {
                let r = d.write_all(chunk).and_then(|()| d.flush());
                check(r, d.get_ref().total)?;
                Ok(sink(d.get_mut()))
            }
            Inner::Brotli(d) => {
                let r = d.write_all(chunk).and_then(|()| d.flush());
                check(r, d.get_ref().total)?;
                Ok(sink(d.get_mut()))
            }
            Inner::Zstd(d) => {
                let r = d.write_all(chunk).and_then(|()| d.flush());
                check(r, d.get_ref().total)?;
                Ok(sink(d.get_mut()))
            }
            Inner::Deflate(pending, kind) => {
                if kind.is_none() {
                    let buf = pending.get_or_insert_with(Vec::new);
                    buf.extend_from_slice(chunk);
                    let Some(&first) = buf.first() else {
                        return Ok(Vec::new());
                    };
                    let sink = Capped {
                        out: Vec::new(),
                        total: 0,
                        cap,
                    };
                    // A zlib header's low nibble is 8 (deflate) in the first byte.
                    *kind = Some(if first & 0x0f == 8 {
                        DeflateKind::Zlib(flate2::write::ZlibDecoder::new(sink))
                    } else {
                        DeflateKind::Raw(flate2::write::DeflateDecoder::new(sink))
                    });
                    let buffered = pending.take().unwrap_or_default();
                    return self.push_deflate(&buffered);
                }
                self.push_deflate(chunk)
            }
        }
    }

    fn push_deflate(&mut self, chunk: &[u8]) -> Result<Vec<u8>, ParseError> {
        let cap = self.cap;
        let Inner::Deflate(_, Some(kind)) = &mut self.inner else {
            return Ok(Vec::new());
        };
        let (r, w) = match kind {
            DeflateKind::Zlib(d) => (d.write_all(chunk).and_then(|()| d.flush()), d.get_mut()),
            DeflateKind::Raw(d) => (d.write_all(chunk).and_then(|()| d.flush()), d.get_mut()),
        };
        match r {
            Ok(()) => Ok(std::mem::take(&mut w.out)),
            Err(_) if w.total > cap => Err(ParseError::BodyTooLarge),
            Err(_) => Err(ParseError::Decode),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(encoding: Encoding, encoded: &[u8], piece: usize) -> Vec<u8> {
        let mut d = Decoder::new(encoding, 1 << 20).expect("decoder");
        let mut out = Vec::new();
        for chunk in encoded.chunks(piece) {
            out.extend(d.push(chunk).expect("decode"));
        }
        out
    }

    const TEXT: &[u8] = b"event: ping\ndata: {\"type\":\"ping\"}\n\n";

    #[test]
    fn every_encoding_decodes_when_fed_byte_by_byte() {
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        gz.write_all(TEXT).expect("gz");
        let gz = gz.finish().expect("gz");
        let mut zl = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
        zl.write_all(TEXT).expect("zlib");
        let zl = zl.finish().expect("zlib");
        let mut raw =
            flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::default());
        raw.write_all(TEXT).expect("raw");
        let raw = raw.finish().expect("raw");
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 5, 22);
            w.write_all(TEXT).expect("br");
        }
        let zs = zstd::stream::encode_all(TEXT, 3).expect("zstd");
        for (encoding, bytes) in [
            (Encoding::Gzip, gz),
            (Encoding::Deflate, zl),
            (Encoding::Deflate, raw),
            (Encoding::Brotli, br),
            (Encoding::Zstd, zs),
            (Encoding::Identity, TEXT.to_vec()),
        ] {
            assert_eq!(decode_in_pieces(encoding, &bytes, 1), TEXT, "{encoding:?}");
        }
    }

    #[test]
    fn output_is_capped() {
        let zeros = vec![0u8; 1 << 16];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).expect("gz");
        let gz = gz.finish().expect("gz");
        let mut d = Decoder::new(Encoding::Gzip, 1024).expect("decoder");
        assert_eq!(d.push(&gz), Err(ParseError::BodyTooLarge));
    }

    #[test]
    fn unknown_encodings_are_refused() {
        assert_eq!(Encoding::from_header(Some("gzip, br")), None);
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
    }
}
