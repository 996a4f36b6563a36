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
    /// No header, an empty one, or `identity`: the bytes as they are.
    Identity,
    /// `gzip` or `x-gzip` (RFC 1952).
    Gzip,
    /// `deflate`: zlib (RFC 1950) as RFC 9110 §8.4.1.2 says, or raw deflate (RFC 1951) as
    /// some servers send it, told apart by the first byte.
    Deflate,
    /// `br` (RFC 7932).
    Brotli,
    /// `zstd` (RFC 8878).
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

/// Where decoded bytes go as they are produced: a parser pipeline (streams) or a buffer
/// (non-streamed bodies). A sink that fails stops decoding with its own error.
pub trait Sink {
    /// Takes the next decoded bytes, in order, in pieces of any size; an error stops
    /// decoding and is the body's parse error.
    fn take(&mut self, bytes: &[u8]) -> Result<(), ParseError>;
}

impl Sink for Vec<u8> {
    fn take(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        self.extend_from_slice(bytes);
        Ok(())
    }
}

/// A non-streamed body's decoded copy, charged like any other copy (the cap is the
/// decoder's).
impl Sink for crate::budget::ChargedBuf {
    fn take(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
        self.extend(bytes, usize::MAX)
            .map_err(|_| ParseError::BodyTooLarge)
    }
}

/// Hands decoded output to the sink piece by piece as the decompressor writes it (at most
/// its output buffer, 8 to 128 KiB, at a time), refusing more than the cap in total. So a
/// decompression bomb costs the sink's own bound, never its decoded size.
struct Capped<S> {
    sink: S,
    total: usize,
    cap: usize,
    failed: Option<ParseError>,
}

impl<S: Sink> Write for Capped<S> {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.total += buf.len();
        if self.total > self.cap {
            return Err(std::io::Error::other("decoded body over the cap"));
        }
        if let Err(e) = self.sink.take(buf) {
            self.failed = Some(e);
            return Err(std::io::Error::other("sink failed"));
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// zstd frames may ask for windows up to 128 MiB (and more); llmtap decodes only copies, so
/// it accepts 8 MiB (window log 23), what RFC 8878 §3.1.1.1.2 recommends decoders support
/// and what browsers accept for `Content-Encoding: zstd`. Larger windows are a decode error.
const ZSTD_WINDOW_LOG_MAX: u32 = 23;

enum Inner<S: Sink> {
    Identity(Capped<S>),
    Gzip(flate2::write::GzDecoder<Capped<S>>),
    /// `deflate` is zlib-wrapped by the RFC, raw in practice from some servers: sniffed on
    /// the first byte (the sink waits here until then).
    DeflateUnknown(Option<Capped<S>>),
    Zlib(flate2::write::ZlibDecoder<Capped<S>>),
    RawDeflate(flate2::write::DeflateDecoder<Capped<S>>),
    Brotli(Box<brotli::DecompressorWriter<Capped<S>>>),
    Zstd(zstd::stream::write::Decoder<'static, Capped<S>>),
}

/// Decodes a body pushed to it chunk by chunk into a [`Sink`].
pub struct Decoder<S: Sink> {
    inner: Inner<S>,
}

impl<S: Sink> std::fmt::Debug for Decoder<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Decoder").finish_non_exhaustive()
    }
}

impl<S: Sink> Decoder<S> {
    /// Decodes `encoding` into `sink`, at most `cap` decoded bytes in total.
    pub fn new(encoding: Encoding, cap: usize, sink: S) -> Result<Decoder<S>, ParseError> {
        let capped = Capped {
            sink,
            total: 0,
            cap,
            failed: None,
        };
        let inner = match encoding {
            Encoding::Identity => Inner::Identity(capped),
            Encoding::Gzip => Inner::Gzip(flate2::write::GzDecoder::new(capped)),
            Encoding::Deflate => Inner::DeflateUnknown(Some(capped)),
            Encoding::Brotli => {
                Inner::Brotli(Box::new(brotli::DecompressorWriter::new(capped, 8 * 1024)))
            }
            Encoding::Zstd => {
                let mut d =
                    zstd::stream::write::Decoder::new(capped).map_err(|_| ParseError::Decode)?;
                d.window_log_max(ZSTD_WINDOW_LOG_MAX)
                    .map_err(|_| ParseError::Decode)?;
                Inner::Zstd(d)
            }
        };
        Ok(Decoder { inner })
    }

    /// Decodes `chunk`; what it produces has reached the sink when this returns.
    pub fn push(&mut self, chunk: &[u8]) -> Result<(), ParseError> {
        if let Inner::DeflateUnknown(capped) = &mut self.inner {
            let Some(&first) = chunk.first() else {
                return Ok(());
            };
            let capped = capped.take().ok_or(ParseError::Decode)?;
            // A zlib header's low nibble is 8 (deflate) in the first byte.
            self.inner = if first & 0x0f == 8 {
                Inner::Zlib(flate2::write::ZlibDecoder::new(capped))
            } else {
                Inner::RawDeflate(flate2::write::DeflateDecoder::new(capped))
            };
        }
        let result = match &mut self.inner {
            Inner::Identity(w) => w.write_all(chunk),
            Inner::Gzip(d) => d.write_all(chunk).and_then(|()| d.flush()),
            Inner::Zlib(d) => d.write_all(chunk).and_then(|()| d.flush()),
            Inner::RawDeflate(d) => d.write_all(chunk).and_then(|()| d.flush()),
            Inner::Brotli(d) => d.write_all(chunk).and_then(|()| d.flush()),
            Inner::Zstd(d) => d.write_all(chunk).and_then(|()| d.flush()),
            Inner::DeflateUnknown(_) => Ok(()),
        };
        let Err(_) = result else { return Ok(()) };
        let capped = self.capped_mut().ok_or(ParseError::Decode)?;
        Err(match capped.failed.take() {
            Some(e) => e,
            None if capped.total > capped.cap => ParseError::BodyTooLarge,
            None => ParseError::Decode,
        })
    }

    /// The sink (a stream's parser, a body's buffer).
    pub fn sink(&self) -> Option<&S> {
        Some(&self.capped()?.sink)
    }

    /// The sink, mutably (to read or reset what it holds). `None` only inside [`push`]
    /// while a `deflate` body's decoder is chosen, so never to a caller.
    ///
    /// [`push`]: Decoder::push
    pub fn sink_mut(&mut self) -> Option<&mut S> {
        Some(&mut self.capped_mut()?.sink)
    }

    fn capped(&self) -> Option<&Capped<S>> {
        match &self.inner {
            Inner::Identity(w) => Some(w),
            Inner::Gzip(d) => Some(d.get_ref()),
            Inner::DeflateUnknown(w) => w.as_ref(),
            Inner::Zlib(d) => Some(d.get_ref()),
            Inner::RawDeflate(d) => Some(d.get_ref()),
            Inner::Brotli(d) => Some(d.get_ref()),
            Inner::Zstd(d) => Some(d.get_ref()),
        }
    }

    fn capped_mut(&mut self) -> Option<&mut Capped<S>> {
        match &mut self.inner {
            Inner::Identity(w) => Some(w),
            Inner::Gzip(d) => Some(d.get_mut()),
            Inner::DeflateUnknown(w) => w.as_mut(),
            Inner::Zlib(d) => Some(d.get_mut()),
            Inner::RawDeflate(d) => Some(d.get_mut()),
            Inner::Brotli(d) => Some(d.get_mut()),
            Inner::Zstd(d) => Some(d.get_mut()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_in_pieces(encoding: Encoding, encoded: &[u8], piece: usize) -> Vec<u8> {
        let mut d = Decoder::new(encoding, 1 << 20, Vec::new()).expect("decoder");
        for chunk in encoded.chunks(piece) {
            d.push(chunk).expect("decode");
        }
        d.sink().expect("sink").clone()
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
        let mut d = Decoder::new(Encoding::Gzip, 1024, Vec::new()).expect("decoder");
        assert_eq!(d.push(&gz), Err(ParseError::BodyTooLarge));
    }

    /// Counts what it is handed and remembers the largest single piece.
    #[derive(Default)]
    struct Meter {
        total: usize,
        largest: usize,
    }

    impl Sink for Meter {
        fn take(&mut self, bytes: &[u8]) -> Result<(), ParseError> {
            self.total += bytes.len();
            self.largest = self.largest.max(bytes.len());
            Ok(())
        }
    }

    #[test]
    fn a_bomb_reaches_the_sink_in_small_pieces_never_whole() {
        // 64 MiB of zeros compress to a few KiB; pushed as one chunk, the sink must still
        // see the output in pieces of at most the decompressors' buffers (128 KiB).
        let zeros = vec![0u8; 64 << 20];
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::best());
        gz.write_all(&zeros).expect("gz");
        let gz = gz.finish().expect("gz");
        let zs = zstd::stream::encode_all(&zeros[..], 19).expect("zstd");
        let mut br = Vec::new();
        {
            let mut w = brotli::CompressorWriter::new(&mut br, 4096, 9, 22);
            w.write_all(&zeros).expect("br");
        }
        for (encoding, bytes) in [
            (Encoding::Gzip, gz),
            (Encoding::Zstd, zs),
            (Encoding::Brotli, br),
        ] {
            let mut d = Decoder::new(encoding, 128 << 20, Meter::default()).expect("decoder");
            d.push(&bytes).expect("decode");
            let meter = d.sink().expect("sink");
            assert_eq!(meter.total, 64 << 20, "{encoding:?}");
            assert!(
                meter.largest <= 128 << 10,
                "{encoding:?}: {}",
                meter.largest
            );
        }
    }

    #[test]
    fn zstd_windows_over_8_mib_are_refused() {
        let data: Vec<u8> = (0..(24u32 << 20))
            .map(|i| (i.wrapping_mul(2654435761) >> 13) as u8)
            .collect();
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).expect("enc");
        enc.window_log(26).expect("window");
        enc.long_distance_matching(true).expect("ldm");
        enc.write_all(&data).expect("write");
        let zs = enc.finish().expect("finish");
        let mut d = Decoder::new(Encoding::Zstd, 64 << 20, Meter::default()).expect("decoder");
        assert_eq!(d.push(&zs), Err(ParseError::Decode));
    }

    #[test]
    fn unknown_encodings_are_refused() {
        assert_eq!(Encoding::from_header(Some("gzip, br")), None);
        assert_eq!(Encoding::from_header(Some("GZIP")), Some(Encoding::Gzip));
        assert_eq!(Encoding::from_header(None), Some(Encoding::Identity));
    }
}
