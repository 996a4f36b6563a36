//! Who is calling: the client (agent or SDK), its session, how it pays, and who the call is
//! attributed to. Pure functions of the request head and configuration; no I/O.
//!
//! Owns: [`Client`] recognition and the agents' session headers (the table in
//! [`agents`]), [`Billing`] from the kind of credential, [`Attribution`] from the tunnel's
//! proxy credentials, the `x-llmtap-team` / `x-llmtap-user` headers and the flags, and the
//! one decoder of `Basic` credentials (RFC 7617) that `--auth-file` and proxy identities
//! share. Never stores or logs a credential: each is read for its kind or checked, then
//! dropped.
//! Does not own: HTTP plumbing (`proxy`), the admitted-clients file (`config::auth`).

pub mod agents;

use base64::Engine as _;
use http::HeaderMap;
use serde::Serialize;

pub use agents::Client;

/// How a call is paid for. Label values of `llmtap_cost_usd_total{billing}`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, strum::IntoStaticStr, strum::VariantArray,
)]
#[strum(serialize_all = "snake_case")]
pub enum Billing {
    /// An API key: billed per token.
    #[default]
    Api,
    /// A subscription sign-in (Claude OAuth, ChatGPT, Google account): priced at the
    /// API-equivalent rate so that teams see what the usage is worth.
    Subscription,
}

crate::vocab::label!(Billing);

/// Who a call is attributed to: the `team` and `user` labels and fields.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    /// The team; `None` when no source names one (exported as `unknown`).
    pub team: Option<String>,
    /// The user; `None` when no source names one (exported as `unknown`).
    pub user: Option<String>,
}

/// What the request head says about who is calling.
#[derive(Debug, Clone)]
pub struct Caller {
    /// The agent or SDK, from `user-agent` ([`Client::from_user_agent`]).
    pub client: Client,
    /// The agent session named in a header (see [`agents`]); the request body may name one
    /// too (`dialects`), and the header wins.
    pub conversation_id: Option<String>,
    /// Team and user, most specific source first ([`attribution`]).
    pub attribution: Attribution,
    /// Decided from the kind of credential (never the credential itself).
    pub billing: Billing,
    /// The agent marks the request as a subagent's ([`agents::SUBAGENT_HEADERS`]).
    pub subagent: bool,
}

impl Caller {
    /// Reads `headers` of a request to `host`. `tunnel`: who the tunnel's proxy credentials
    /// name; `flags`: `--team` / `--user`.
    pub fn identify(
        host: &str,
        headers: &HeaderMap,
        tunnel: &Attribution,
        flags: &Attribution,
    ) -> Caller {
        Caller {
            client: Client::from_user_agent(header_str(headers, "user-agent").unwrap_or_default()),
            conversation_id: session_id(headers),
            attribution: attribution(headers, tunnel, flags),
            billing: billing(host, headers),
            subagent: agents::SUBAGENT_HEADERS
                .iter()
                .any(|h| headers.contains_key(*h)),
        }
    }
}

/// Most specific wins, field by field: the tunnel's proxy credentials, then the
/// `x-llmtap-team` / `x-llmtap-user` headers (observed, not removed), then the flags.
pub fn attribution(headers: &HeaderMap, tunnel: &Attribution, flags: &Attribution) -> Attribution {
    let pick = |tunnel: &Option<String>, header: &str, flag: &Option<String>| {
        tunnel
            .clone()
            .or_else(|| header_str(headers, header).and_then(label_value))
            .or_else(|| flag.clone())
    };
    Attribution {
        team: pick(&tunnel.team, "x-llmtap-team", &flags.team),
        user: pick(&tunnel.user, "x-llmtap-user", &flags.user),
    }
}

/// A team or user name fit to be a label: trimmed, at most 64 characters of
/// `[A-Za-z0-9._@+-]`; anything else is refused rather than mangled.
pub fn label_value(value: &str) -> Option<String> {
    let value = value.trim();
    let ok = !value.is_empty()
        && value.len() <= 64
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._@+-".contains(&b));
    ok.then(|| value.to_owned())
}

/// The user-id and password of a `Basic` credential (RFC 7617 §2): the scheme matched
/// case-insensitively (RFC 9110 §11.1), spaces or tabs after it, base64 of UTF-8
/// `user-id:password`. `None` for another scheme, bad base64 or bad UTF-8; a missing `:`
/// gives the whole text as the user-id and no password. Not UTF-8 fails the whole credential
/// (closed: neither field is trusted), where a field that is UTF-8 but not a label value is
/// dropped alone by [`proxy_identity`].
pub fn basic_credentials(value: &str) -> Option<(String, Option<String>)> {
    let (scheme, encoded) = value.trim().split_once([' ', '\t'])?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(encoded.trim_matches([' ', '\t']))
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    Some(match text.split_once(':') {
        Some((user, password)) => (user.to_owned(), Some(password.to_owned())),
        None => (text, None),
    })
}

/// `Proxy-Authorization: Basic base64(TEAM:USER)` (from `HTTPS_PROXY=http://TEAM:USER@…`)
/// without `--auth-file`: the tunnel's team and user. The header itself is never stored or
/// logged.
pub fn proxy_identity(headers: &HeaderMap) -> Attribution {
    let Some((team, user)) = header_str(headers, "proxy-authorization").and_then(basic_credentials)
    else {
        return Attribution::default();
    };
    // URL userinfo is percent-encoded by clients that build the header from `HTTPS_PROXY`;
    // a malformed escape makes the field absent, not mangled.
    let decode = |s: &str| crate::wire::percent_decode(s).and_then(|s| label_value(&s));
    Attribution {
        team: decode(&team),
        user: user.as_deref().and_then(decode),
    }
}

/// How the call is paid for, from the kind of credential only: Claude OAuth tokens
/// (`sk-ant-oat…`), ChatGPT sign-in (chatgpt.com, or a JWT bearer to OpenAI), Google
/// sign-in (Code Assist, or an OAuth `ya29.` bearer to the Gemini API) are subscriptions;
/// keys are API billing. On the clouds every credential bills per token to the cloud
/// account: an OAuth `ya29.` bearer to Vertex AI, an Entra ID (Azure AD) JWT or an
/// `api-key` to Azure, SigV4 or a Bedrock API key to Bedrock are all API billing.
pub fn billing(host: &str, headers: &HeaderMap) -> Billing {
    let bearer = header_str(headers, "authorization")
        .and_then(|v| {
            v.trim()
                .strip_prefix("Bearer ")
                .or_else(|| v.trim().strip_prefix("bearer "))
        })
        .map(str::trim)
        .unwrap_or_default();
    let host = host.to_ascii_lowercase();
    let subscription = bearer.starts_with("sk-ant-oat")
        || host == "chatgpt.com"
        || host == "cloudcode-pa.googleapis.com"
        || (host == "api.openai.com" && bearer.starts_with("eyJ"))
        || (bearer.starts_with("ya29.") && host == "generativelanguage.googleapis.com");
    if subscription {
        Billing::Subscription
    } else {
        Billing::Api
    }
}

/// A client-sent session id from the agents' session headers, if it looks like one
/// (bounded, printable, no spaces).
pub fn session_id(headers: &HeaderMap) -> Option<String> {
    agents::session_headers()
        .filter_map(|name| header_str(headers, name))
        .find_map(|id| {
            (!id.is_empty() && id.len() <= 128 && id.bytes().all(|b| b.is_ascii_graphic()))
                .then(|| id.to_owned())
        })
}

/// A header's value as text; `None` when absent or not visible ASCII.
pub fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name)?.to_str().ok()
}

#[cfg(test)]
mod tests {
    use http::HeaderValue;

    use super::*;

    fn headers(pairs: &[(&'static str, &str)]) -> HeaderMap {
        let mut h = HeaderMap::new();
        for (k, v) in pairs {
            h.insert(*k, HeaderValue::from_str(v).expect("value"));
        }
        h
    }

    #[test]
    fn billing_follows_the_kind_of_credential() {
        let sub = Billing::Subscription;
        let cases = [
            (
                "api.anthropic.com",
                vec![("x-api-key", "sk-ant-api03-x")],
                Billing::Api,
            ),
            (
                "api.anthropic.com",
                vec![("authorization", "Bearer sk-ant-api03-x")],
                Billing::Api,
            ),
            (
                "api.anthropic.com",
                vec![("authorization", "Bearer sk-ant-oat01-x")],
                sub,
            ),
            (
                "api.openai.com",
                vec![("authorization", "Bearer sk-proj-x")],
                Billing::Api,
            ),
            (
                "api.openai.com",
                vec![("authorization", "Bearer eyJhbGciOi.x.y")],
                sub,
            ),
            (
                "chatgpt.com",
                vec![("authorization", "Bearer eyJ.x.y")],
                sub,
            ),
            (
                "generativelanguage.googleapis.com",
                vec![("x-goog-api-key", "AIza")],
                Billing::Api,
            ),
            (
                "cloudcode-pa.googleapis.com",
                vec![("authorization", "Bearer ya29.x")],
                sub,
            ),
            (
                "generativelanguage.googleapis.com",
                vec![("authorization", "Bearer ya29.x")],
                sub,
            ),
            // The clouds: every credential bills the cloud account per token.
            (
                "us-east5-aiplatform.googleapis.com",
                vec![("authorization", "Bearer ya29.x")],
                Billing::Api,
            ),
            (
                "my-res.openai.azure.com",
                vec![("authorization", "Bearer eyJ0eXAiOi.x.y")],
                Billing::Api,
            ),
            (
                "my-res.openai.azure.com",
                vec![("api-key", "0123abcd")],
                Billing::Api,
            ),
            (
                "bedrock-runtime.us-east-1.amazonaws.com",
                vec![(
                    "authorization",
                    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20261130/us-east-1/bedrock/aws4_request, SignedHeaders=host, Signature=0",
                )],
                Billing::Api,
            ),
            (
                "bedrock-runtime.us-east-1.amazonaws.com",
                vec![("authorization", "Bearer ABSKQmVkcm9jaw==")],
                Billing::Api,
            ),
        ];
        for (host, pairs, want) in cases {
            assert_eq!(billing(host, &headers(&pairs)), want, "{host} {pairs:?}");
        }
    }

    #[test]
    fn proxy_credentials_name_team_and_user() {
        let id = proxy_identity(&headers(&[(
            "proxy-authorization",
            "Basic dGVhbS1hOmFsaWNl",
        )]));
        assert_eq!(
            (id.team.as_deref(), id.user.as_deref()),
            (Some("team-a"), Some("alice"))
        );
        let only_team = proxy_identity(&headers(&[("proxy-authorization", "Basic dGVhbS1h")]));
        assert_eq!(
            (only_team.team.as_deref(), only_team.user),
            (Some("team-a"), None)
        );
        for bad in ["Bearer x", "Basic !!!"] {
            assert_eq!(
                proxy_identity(&headers(&[("proxy-authorization", bad)])),
                Attribution::default(),
                "{bad}"
            );
        }
        // `<script>:x`: the bad field is dropped (the next source applies), the good one kept.
        let mixed = proxy_identity(&headers(&[(
            "proxy-authorization",
            "Basic PHNjcmlwdD46eA==",
        )]));
        assert_eq!((mixed.team, mixed.user.as_deref()), (None, Some("x")));
        // `team%2Da:al%ZZ`: escapes decoded, a malformed escape drops its field.
        let escaped = proxy_identity(&headers(&[(
            "proxy-authorization",
            "Basic dGVhbSUyRGE6YWwlWlo=",
        )]));
        assert_eq!(
            (escaped.team.as_deref(), escaped.user),
            (Some("team-a"), None)
        );
    }

    #[test]
    fn basic_credentials_follow_rfc_7617() {
        assert_eq!(
            basic_credentials("bAsIc \t YTpiOmM="),
            Some(("a".to_owned(), Some("b:c".to_owned())))
        );
        assert_eq!(
            basic_credentials("Basic YQ=="),
            Some(("a".to_owned(), None))
        );
        for bad in ["Basic", "Bearer YTpi", "Basic !!", "Basic /w=="] {
            assert_eq!(basic_credentials(bad), None, "{bad}");
        }
    }

    #[test]
    fn label_values_are_checked_not_mangled() {
        assert_eq!(label_value(" team-a ").as_deref(), Some("team-a"));
        assert_eq!(
            label_value("bob@corp.example").as_deref(),
            Some("bob@corp.example")
        );
        for bad in ["", "two words", "<script>", &"x".repeat(65)] {
            assert_eq!(label_value(bad), None, "{bad}");
        }
    }

    #[test]
    fn attribution_prefers_tunnel_then_headers_then_flags() {
        let h = headers(&[("x-llmtap-team", "hdr-team"), ("x-llmtap-user", "bad user")]);
        let tunnel = Attribution {
            team: None,
            user: Some("tunnel-user".into()),
        };
        let flags = Attribution {
            team: Some("flag-team".into()),
            user: Some("flag-user".into()),
        };
        let got = attribution(&h, &tunnel, &flags);
        assert_eq!(got.team.as_deref(), Some("hdr-team"));
        assert_eq!(got.user.as_deref(), Some("tunnel-user"));
        let got = attribution(&h, &Attribution::default(), &flags);
        assert_eq!(got.user.as_deref(), Some("flag-user"));
    }
}
