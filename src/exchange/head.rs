//! What is known of a call before its body: the request head, who is calling (decided by
//! [`caller`](crate::caller)), and the W3C trace context.

use crate::caller::Caller;

/// What llmtap knows about the request before any body byte.
#[derive(Debug, Clone)]
pub struct RequestHead {
    /// The upstream host, as [`normalize_host`](crate::wire::normalize_host) spells it.
    pub host: String,
    /// The upstream port (443 unless the request named another).
    pub port: u16,
    /// The request method, as sent.
    pub method: String,
    /// Path without the query string: queries can carry API keys (`?key=`).
    pub path: String,
    /// Client, session, attribution and billing.
    pub caller: Caller,
    /// The W3C `traceparent` the client sent, if valid (read, never changed).
    pub traceparent: Option<TraceParent>,
}

/// A parsed W3C `traceparent` header (W3C Trace Context, §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    /// `trace-id`: 16 bytes, never all zero.
    pub trace_id: [u8; 16],
    /// `parent-id`: the client's span, 8 bytes, never all zero.
    pub span_id: [u8; 8],
    /// The `sampled` bit of `trace-flags`: when off, the call's span is not exported.
    pub sampled: bool,
}

impl TraceParent {
    /// Parses `00-<32 hex>-<16 hex>-<2 hex>`; later versions by their first four fields, as
    /// the W3C spec asks. Invalid or all-zero ids give `None`.
    pub fn parse(value: &str) -> Option<TraceParent> {
        let mut parts = value.trim().split('-');
        let (version, trace, span, flags) =
            (parts.next()?, parts.next()?, parts.next()?, parts.next()?);
        let version = u8::from_str_radix(version, 16)
            .ok()
            .filter(|_| version.len() == 2)?;
        if version == 0xff || (version == 0 && parts.next().is_some()) {
            return None;
        }
        fn hex<const N: usize>(s: &str) -> Option<[u8; N]> {
            if s.len() != N * 2
                || !s
                    .bytes()
                    .all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
            {
                return None;
            }
            let mut out = [0u8; N];
            for (i, byte) in out.iter_mut().enumerate() {
                *byte = u8::from_str_radix(s.get(i * 2..i * 2 + 2)?, 16).ok()?;
            }
            Some(out)
        }
        let trace_id = hex::<16>(trace).filter(|t| t.iter().any(|&b| b != 0))?;
        let span_id = hex::<8>(span).filter(|s| s.iter().any(|&b| b != 0))?;
        let flags = hex::<1>(flags)?;
        Some(TraceParent {
            trace_id,
            span_id,
            sampled: flags[0] & 1 == 1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn traceparent_parses_per_w3c() {
        let tp = TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
            .expect("valid");
        assert_eq!(tp.trace_id[0], 0x4b);
        assert_eq!(tp.span_id[7], 0xb7);
        assert!(tp.sampled);
        let future =
            TraceParent::parse("cc-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00-x");
        assert_eq!(future.map(|t| t.sampled), Some(false));
        for bad in [
            "00-00000000000000000000000000000000-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-0000000000000000-01",
            "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",
            "ff-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01-extra",
            "00-4bf92f35-00f067aa0ba902b7-01",
        ] {
            assert_eq!(TraceParent::parse(bad), None, "{bad}");
        }
    }
}
