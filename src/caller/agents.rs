//! The agents and SDKs llmtap recognises: how each names itself in `user-agent` and which
//! headers carry its session id. Adding an agent is one variant and one row here.
//!
//! Sources: the user-agent strings and headers of the pinned agent versions driven by the
//! end-to-end tests (README, "Agents"): Claude Code's `claude-cli/<v>` and
//! `X-Claude-Code-Session-Id`; the Codex CLI's `codex_exec/<v>` / `codex_cli_rs/<v>` and
//! `session-id` (before May 2026 `session_id`, before Jan 2026 also `conversation_id`);
//! Gemini CLI's `GeminiCLI/<v>`; the official SDKs' `Anthropic/Python`, `OpenAI/Python`,
//! `google-genai-sdk/<v> gl-python/<v>` and their JavaScript counterparts.

/// The agent or SDK that made a call, from its `user-agent`. Label values of the `client`
/// label and the call line's `client` field, spelled once in [`Client::as_str`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
pub enum Client {
    /// `claude-code`: Anthropic's Claude Code (`claude-cli/<v>`, or `claude-code` in the
    /// user-agent); session in `X-Claude-Code-Session-Id`.
    #[strum(serialize = "claude-code")]
    ClaudeCode,
    /// `codex`: OpenAI's Codex CLI (`codex_exec/<v>`, `codex_cli_rs/<v>`: any user-agent
    /// with `codex`); session in `session-id` (older: `session_id`, `conversation_id`).
    #[strum(serialize = "codex")]
    Codex,
    /// `gemini-cli`: Google's Gemini CLI (`GeminiCLI/<v>`, or `gemini-cli`).
    #[strum(serialize = "gemini-cli")]
    GeminiCli,
    /// `anthropic-sdk-python`: Anthropic's Python SDK (`Anthropic/Python <v>`).
    #[strum(serialize = "anthropic-sdk-python")]
    AnthropicPython,
    /// `anthropic-sdk-js`: Anthropic's TypeScript SDK (`Anthropic/JS <v>`).
    #[strum(serialize = "anthropic-sdk-js")]
    AnthropicJs,
    /// `openai-python`: OpenAI's Python SDK (`OpenAI/Python <v>`).
    #[strum(serialize = "openai-python")]
    OpenaiPython,
    /// `openai-node`: OpenAI's Node/TypeScript SDK (`OpenAI/JS <v>`).
    #[strum(serialize = "openai-node")]
    OpenaiNode,
    /// `google-genai-python`: Google's Gen AI Python SDK (`google-genai-sdk/<v>` with
    /// `gl-python/<v>`).
    #[strum(serialize = "google-genai-python")]
    GoogleGenaiPython,
    /// `google-genai-js`: Google's Gen AI JavaScript SDK (`google-genai-sdk/<v>` without
    /// `gl-python`).
    #[strum(serialize = "google-genai-js")]
    GoogleGenaiJs,
    /// Anything not in [`AGENTS`].
    #[strum(serialize = "other")]
    Other,
}

crate::vocab::label!(Client);

/// One recognised client.
struct Agent {
    client: Client,
    /// Lowercase substrings of the `user-agent`: the client matches when every substring of
    /// one group is present.
    user_agent: &'static [&'static [&'static str]],
    /// Lowercase header names in which this client names its session, most specific first.
    session_headers: &'static [&'static str],
}

/// Agents first: they embed an SDK whose name may also appear in their user-agent. The
/// order of the rows is the order of the checks.
const AGENTS: &[Agent] = &[
    Agent {
        client: Client::ClaudeCode,
        user_agent: &[&["claude-cli"], &["claude-code"]],
        session_headers: &["x-claude-code-session-id"],
    },
    Agent {
        client: Client::Codex,
        user_agent: &[&["codex"]],
        session_headers: &["session-id", "session_id", "conversation_id"],
    },
    Agent {
        client: Client::GeminiCli,
        user_agent: &[&["geminicli"], &["gemini-cli"]],
        session_headers: &[],
    },
    Agent {
        client: Client::AnthropicPython,
        user_agent: &[&["anthropic/python"]],
        session_headers: &[],
    },
    Agent {
        client: Client::AnthropicJs,
        user_agent: &[&["anthropic/js"]],
        session_headers: &[],
    },
    Agent {
        client: Client::OpenaiPython,
        user_agent: &[&["openai/python"]],
        session_headers: &[],
    },
    Agent {
        client: Client::OpenaiNode,
        user_agent: &[&["openai/js"]],
        session_headers: &[],
    },
    Agent {
        client: Client::GoogleGenaiPython,
        user_agent: &[&["google-genai-sdk", "gl-python"]],
        session_headers: &[],
    },
    Agent {
        client: Client::GoogleGenaiJs,
        user_agent: &[&["google-genai-sdk"]],
        session_headers: &[],
    },
];

impl Client {
    /// The first row of [`AGENTS`] whose substrings the user-agent contains
    /// (case-insensitively), else [`Client::Other`].
    pub fn from_user_agent(ua: &str) -> Client {
        let ua = ua.to_ascii_lowercase();
        AGENTS
            .iter()
            .find(|agent| {
                agent
                    .user_agent
                    .iter()
                    .any(|group| group.iter().all(|needle| ua.contains(needle)))
            })
            .map_or(Client::Other, |agent| agent.client)
    }
}

/// Headers by which an agent marks a request as its subagent's (their values are ids, never
/// read): Claude Code 2.1.197 `x-claude-code-parent-agent-id` (beside
/// `x-claude-code-agent-id`), Codex 0.169.0 `x-codex-parent-thread-id` and
/// `x-openai-subagent`. Found in the agents' own bundles (README, "Agents").
pub const SUBAGENT_HEADERS: &[&str] = &[
    "x-claude-code-parent-agent-id",
    "x-codex-parent-thread-id",
    "x-openai-subagent",
];

/// Every session header of every agent, in table order. A session id is taken from any of
/// them whatever the user-agent says: a wrapper may rename the client, not the session.
pub(super) fn session_headers() -> impl Iterator<Item = &'static str> {
    AGENTS
        .iter()
        .flat_map(|agent| agent.session_headers.iter().copied())
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
            ("google-genai-sdk/3.6.1 gl-node/20", Client::GoogleGenaiJs),
            ("curl/8.0", Client::Other),
        ];
        for (ua, want) in cases {
            assert_eq!(Client::from_user_agent(ua), want, "{ua}");
        }
    }

    #[test]
    fn every_client_but_other_has_a_row_and_one_spelling() {
        use strum::VariantArray as _;
        for client in Client::VARIANTS {
            let rows = AGENTS.iter().filter(|a| a.client == *client).count();
            assert_eq!(rows, usize::from(*client != Client::Other), "{client:?}");
            let json = serde_json::to_string(client).expect("serializes");
            assert_eq!(json, format!("\"{}\"", client.as_str()));
        }
        let headers: Vec<_> = session_headers().collect();
        assert_eq!(
            headers,
            [
                "x-claude-code-session-id",
                "session-id",
                "session_id",
                "conversation_id"
            ]
        );
    }
}
