//! Small textual rules of HTTP and URLs that several stages share, each written once.
//!
//! Owns: how llmtap spells a host for comparison ([`normalize_host`]), strict
//! percent-decoding ([`percent_decode`]), and a URL fit for a log line ([`redact_url`]). No
//! dependencies on the rest of the crate.

/// A host as llmtap compares it: ASCII-lowercase (RFC 9110 §4.2.3: the host is
/// case-insensitive), an IPv6 literal without its brackets (`[::1]` → `::1`), a fully
/// qualified name without its final dot (`chatgpt.com.` → `chatgpt.com`, the same DNS name,
/// RFC 1034 §3.1), so that every rule (provider table, billing, destination policy) sees one
/// spelling. Used for the intercept list, the destination policy, `--resolve` and the leaf
/// certificate's name.
pub fn normalize_host(host: &str) -> String {
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// `url` without what may be a secret: userinfo (`user:token@`), query and fragment (RFC 3986
/// §3.2.1, §3.4), for log lines about a collector's URL. `https://u:p@c:4318/v1/traces?k=t` →
/// `https://c:4318/v1/traces`.
pub fn redact_url(url: &str) -> String {
    let url = url.split(['?', '#']).next().unwrap_or_default();
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_owned();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let host = authority
        .rsplit_once('@')
        .map_or(authority, |(_, host)| host);
    format!("{scheme}://{host}{path}")
}

/// Decodes `%XX` escapes (RFC 3986 §2.1: URL userinfo, OTEL header and resource values);
/// `None` when an escape is malformed (`%`, `%4`, `%ZZ`) or the result is not UTF-8. The
/// `percent-encoding` crate decodes; it passes a malformed escape through, so this refuses
/// it first rather than guess.
pub fn percent_decode(s: &str) -> Option<String> {
    let well_formed = s.split('%').skip(1).all(|rest| {
        rest.as_bytes()
            .get(..2)
            .is_some_and(|hex| hex.iter().all(u8::is_ascii_hexdigit))
    });
    if !well_formed {
        return None;
    }
    percent_encoding::percent_decode_str(s)
        .decode_utf8()
        .ok()
        .map(|s| s.into_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hosts_are_compared_lowercase_without_brackets() {
        assert_eq!(normalize_host("API.Anthropic.COM"), "api.anthropic.com");
        assert_eq!(normalize_host("chatgpt.com."), "chatgpt.com");
        assert_eq!(normalize_host("[::1]"), "::1");
    }

    #[test]
    fn percent_decoding_refuses_malformed_escapes() {
        assert_eq!(percent_decode("a%20b%2Fc").as_deref(), Some("a b/c"));
        assert_eq!(percent_decode("caf%C3%A9").as_deref(), Some("café"));
        for bad in ["%", "%4", "%ZZ", "a%g1", "%FF"] {
            assert_eq!(percent_decode(bad), None, "{bad}");
        }
    }

    #[test]
    fn urls_in_logs_lose_userinfo_query_and_fragment() {
        assert_eq!(
            redact_url("https://u:tok@c.example:4318/v1/traces?key=secret#x"),
            "https://c.example:4318/v1/traces"
        );
        assert_eq!(redact_url("http://c:4317"), "http://c:4317");
        assert_eq!(redact_url("http://a@b@c/p"), "http://c/p");
        assert_eq!(redact_url("c:4317?k=v"), "c:4317");
    }
}
