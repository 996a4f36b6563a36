//! What is known of a call before its body: who is calling (client, attribution, billing),
//! the request head, the W3C trace context, and how a call ended (`Outcome`).

use serde::Serialize;

/// How a call ended. Label values of `llmtap_requests_total{outcome}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Outcome {
    Ok,
    ClientError,
    UpstreamError,
    RateLimited,
    Cancelled,
    ProxyError,
}

impl Outcome {
    pub const ALL: [Outcome; 6] = [
        Outcome::Ok,
        Outcome::ClientError,
        Outcome::UpstreamError,
        Outcome::RateLimited,
        Outcome::Cancelled,
        Outcome::ProxyError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::ClientError => "client_error",
            Outcome::UpstreamError => "upstream_error",
            Outcome::RateLimited => "rate_limited",
            Outcome::Cancelled => "cancelled",
            Outcome::ProxyError => "proxy_error",
        }
    }
}

/// The agent or SDK that made the call, from its `user-agent`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
pub enum Client {
    #[serde(rename = "claude-code")]
    ClaudeCode,
    #[serde(rename = "codex")]
    Codex,
    #[serde(rename = "gemini-cli")]
    GeminiCli,
    #[serde(rename = "anthropic-sdk-python")]
    AnthropicPython,
    #[serde(rename = "anthropic-sdk-js")]
    AnthropicJs,
    #[serde(rename = "openai-python")]
    OpenaiPython,
    #[serde(rename = "openai-node")]
    OpenaiNode,
    #[serde(rename = "google-genai-python")]
    GoogleGenaiPython,
    #[serde(rename = "google-genai-js")]
    GoogleGenaiJs,
    #[serde(rename = "other")]
    Other,
}

impl Client {
    pub fn as_str(self) -> &'static str {
        match self {
            Client::ClaudeCode => "claude-code",
            Client::Codex => "codex",
            Client::GeminiCli => "gemini-cli",
            Client::AnthropicPython => "anthropic-sdk-python",
            Client::AnthropicJs => "anthropic-sdk-js",
            Client::OpenaiPython => "openai-python",
            Client::OpenaiNode => "openai-node",
            Client::GoogleGenaiPython => "google-genai-python",
            Client::GoogleGenaiJs => "google-genai-js",
            Client::Other => "other",
        }
    }

    /// Agents first: they embed an SDK whose name may also appear in the string.
    pub fn from_user_agent(ua: &str) -> Client {
        let ua = ua.to_ascii_lowercase();
        let has = |needle: &str| ua.contains(needle);
        if has("claude-cli") || has("claude-code") {
            Client::ClaudeCode
        } else if has("codex") {
            Client::Codex
        } else if has("geminicli") || has("gemini-cli") {
            Client::GeminiCli
        } else if has("anthropic/python") {
            Client::AnthropicPython
        } else if has("anthropic/js") {
            Client::AnthropicJs
        } else if has("openai/python") {
            Client::OpenaiPython
        } else if has("openai/js") {
            Client::OpenaiNode
        } else if has("google-genai-sdk") && has("gl-python") {
            Client::GoogleGenaiPython
        } else if has("google-genai-sdk") {
            Client::GoogleGenaiJs
        } else {
            Client::Other
        }
    }
}

/// How a call is paid for. Label values of `llmtap_cost_usd_total{billing}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Billing {
    /// An API key: billed per token.
    #[default]
    Api,
    /// A subscription sign-in (Claude OAuth, ChatGPT, Google account): priced at the
    /// API-equivalent rate so that teams see what the usage is worth.
    Subscription,
}

impl Billing {
    pub fn as_str(self) -> &'static str {
        match self {
            Billing::Api => "api",
            Billing::Subscription => "subscription",
        }
    }
}

/// Who a call is attributed to.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Attribution {
    pub team: Option<String>,
    pub user: Option<String>,
}

/// What llmtap knows about the request before any body byte.
#[derive(Debug, Clone)]
pub struct RequestHead {
    pub host: String,
    pub port: u16,
    pub method: String,
    /// Path without the query string: queries can carry API keys (`?key=`).
    pub path: String,
    pub client: Client,
    pub conversation_id: Option<String>,
    pub attribution: Attribution,
    /// The W3C `traceparent` the client sent, if valid (read, never changed).
    pub traceparent: Option<TraceParent>,
    /// Decided from the kind of credential (never the credential itself).
    pub billing: Billing,
}

/// A parsed W3C `traceparent` header.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TraceParent {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
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
    fn clients_are_recognised_from_user_agents() {
        let cases = [
            ("claude-cli/2.1.197 (external, sdk-cli)", Client::ClaudeCode),
            (
                "codex_exec/0.169.0 (Debian 12; x86_64) xterm",
                Client::Codex,
            ),
            (
                "GeminiCLI-tui/0.61.0/gemini-2.5-flash (linux; x64; terminal)",
                Client::GeminiCli,
            ),
            ("Anthropic/Python 2.14.0", Client::AnthropicPython),
            ("OpenAI/Python 3.57.0", Client::OpenaiPython),
            (
                "google-genai-sdk/3.6.1 gl-python/3.11.7",
                Client::GoogleGenaiPython,
            ),
            ("curl/8.0", Client::Other),
        ];
        for (ua, want) in cases {
            assert_eq!(Client::from_user_agent(ua), want, "{ua}");
        }
    }

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
