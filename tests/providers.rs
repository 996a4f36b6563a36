//! The providers of the provider table end to end (real TLS, CONNECT, the fake upstream
//! serving each one's host and path from the golden fixtures): Vertex AI (Claude by
//! `:rawPredict` / `:streamRawPredict`, Gemini), Azure OpenAI (chat by deployment with
//! `api-version`, the v1 API, Responses), Foundry (Claude under `/anthropic`), and the
//! OpenAI-compatible DeepSeek, OpenRouter, Groq and Moonshot, each with its own usage shape.
//! The client's bytes are identical
//! to a direct call; each record names its provider and API, carries the case's facts, and is
//! priced from the provider's price namespace (or unknown where the table has no price); no
//! credential reaches a call line or `/metrics`.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use crate::support::{
    assert_subset, both_ways,
    harness::{self, metric},
    prices,
};
use llmtap::vocab::Outcome;
use llmtap_fake_upstream::{FakeUpstream, fixtures};
use serde_json::Value;

/// One call: the case (folder and name), the provider and API it must be recorded as, the
/// credential header the provider's SDK sends, and the price (namespace, model) the table
/// gives it, `None` where the table prices no such model; `billed` is what the provider said
/// it billed (OpenRouter's `usage.cost`), which is then the call's cost.
struct Case {
    folder: &'static str,
    case: &'static str,
    provider: &'static str,
    api: &'static str,
    credential: (&'static str, &'static str),
    price: Option<(&'static str, &'static str)>,
    billed: Option<f64>,
}

const VERTEX_TOKEN: &str = "Bearer ya29.FAKE-VERTEX-ACCESS-TOKEN-0000";
const AZURE_KEY: &str = "0f1e2d3c4b5a69788796a5b4c3d2e1f0";
const DEEPSEEK_KEY: &str = "Bearer sk-FAKE-DEEPSEEK-KEY-1111";
const OPENROUTER_KEY: &str = "Bearer sk-or-v1-FAKE-OPENROUTER-KEY-2222";
const GROQ_KEY: &str = "Bearer gsk_FAKE-GROQ-KEY-3333";
const MOONSHOT_KEY: &str = "Bearer sk-FAKE-MOONSHOT-KEY-4444";

const CASES: &[Case] = &[
    Case {
        folder: "anthropic",
        case: "vertex_stream_text",
        provider: "gcp.vertex_ai",
        api: "anthropic_messages",
        credential: ("authorization", VERTEX_TOKEN),
        price: Some(("vertex_ai", "claude-sonnet-4-5@20250929")),
        billed: None,
    },
    Case {
        folder: "anthropic",
        case: "vertex_json_message",
        provider: "gcp.vertex_ai",
        api: "anthropic_messages",
        credential: ("authorization", VERTEX_TOKEN),
        price: Some(("vertex_ai", "claude-sonnet-4-5@20250929")),
        billed: None,
    },
    Case {
        folder: "gemini",
        case: "vertex_stream_sse",
        provider: "gcp.vertex_ai",
        api: "gemini_generate_content",
        credential: ("authorization", VERTEX_TOKEN),
        price: Some(("vertex_ai", "gemini-2.5-flash")),
        billed: None,
    },
    Case {
        folder: "anthropic",
        case: "foundry_stream_text",
        provider: "azure.ai.inference",
        api: "anthropic_messages",
        credential: ("api-key", AZURE_KEY),
        price: Some(("azure_ai", "claude-opus-4-8")),
        billed: None,
    },
    Case {
        folder: "azure_openai",
        case: "stream_chat",
        provider: "azure.ai.openai",
        api: "openai_chat_completions",
        credential: ("api-key", AZURE_KEY),
        price: Some(("azure", "gpt-4o-2024-11-20")),
        billed: None,
    },
    Case {
        folder: "azure_openai",
        case: "json_chat",
        provider: "azure.ai.openai",
        api: "openai_chat_completions",
        credential: ("api-key", AZURE_KEY),
        price: Some(("azure", "gpt-4o-2024-11-20")),
        billed: None,
    },
    Case {
        folder: "azure_openai",
        case: "stream_chat_v1",
        provider: "azure.ai.openai",
        api: "openai_chat_completions",
        credential: ("api-key", AZURE_KEY),
        price: Some(("azure", "gpt-4.1-mini-2025-04-14")),
        billed: None,
    },
    Case {
        folder: "azure_openai",
        case: "stream_responses",
        provider: "azure.ai.openai",
        api: "openai_responses",
        credential: ("api-key", AZURE_KEY),
        price: Some(("azure", "gpt-5.1-2025-11-13")),
        billed: None,
    },
    Case {
        folder: "azure_openai",
        case: "json_responses",
        provider: "azure.ai.openai",
        api: "openai_responses",
        credential: ("api-key", AZURE_KEY),
        price: Some(("azure", "gpt-5.1-2025-11-13")),
        billed: None,
    },
    Case {
        folder: "openai_compatible",
        case: "deepseek_stream",
        provider: "deepseek",
        api: "openai_chat_completions",
        credential: ("authorization", DEEPSEEK_KEY),
        price: Some(("deepseek", "deepseek-chat")),
        billed: None,
    },
    Case {
        folder: "openai_compatible",
        case: "openrouter_json",
        provider: "openrouter",
        api: "openai_chat_completions",
        credential: ("authorization", OPENROUTER_KEY),
        // A router's vendor/model id finds the first party's price.
        price: Some(("anthropic", "claude-sonnet-4-5")),
        billed: Some(0.001_330_8),
    },
    Case {
        folder: "openai_compatible",
        case: "groq_stream",
        provider: "groq",
        api: "openai_chat_completions",
        credential: ("authorization", GROQ_KEY),
        price: Some(("groq", "openai/gpt-oss-120b")),
        billed: None,
    },
    Case {
        folder: "openai_compatible",
        case: "moonshot_stream",
        provider: "moonshot_ai",
        api: "openai_chat_completions",
        credential: ("authorization", MOONSHOT_KEY),
        price: Some(("moonshot", "kimi-k2.6")),
        billed: None,
    },
    Case {
        folder: "azure_openai",
        case: "stream_chat_finetune",
        provider: "azure.ai.openai",
        api: "openai_chat_completions",
        credential: ("api-key", AZURE_KEY),
        price: None,
        billed: None,
    },
];

#[tokio::test]
async fn provider_routes_are_recorded_with_identical_bytes_and_their_namespace_prices() {
    let upstream = FakeUpstream::start().await;
    let mut tap = harness::start(&upstream, &[]).await;
    for c in CASES {
        let name = format!("{}/{}", c.folder, c.case);
        let target = fixtures::target(c.folder, c.case);
        let path = match &target.query {
            Some(query) => format!("{}?{query}", target.path),
            None => target.path.clone(),
        };
        let body = FakeUpstream::fixture_in(c.folder, c.case, "request.json");
        let headers = [("x-fake-scenario", c.case), c.credential];
        let (direct, via) = both_ways(&upstream, &tap, &target.host, &path, &body, &headers).await;
        assert!(direct.end.is_ok() && via.end.is_ok(), "{name}");
        assert_eq!((via.status, direct.status), (200, 200), "{name}");
        assert_eq!(via.body(), direct.body(), "{name}: bytes");
        let record = tap.next_record().await;
        assert_eq!(record.provider.as_str(), c.provider, "{name}");
        assert_eq!(record.api, c.api, "{name}");
        assert_eq!(record.outcome, Outcome::Ok, "{name}: {record:?}");
        assert_eq!(record.parse_error, None, "{name}");
        assert_eq!(record.host, target.host, "{name}");
        assert_eq!(record.path, target.path, "{name}: no query string recorded");
        let mut want: Value =
            serde_json::from_slice(&FakeUpstream::fixture_in(c.folder, c.case, "expected.json"))
                .unwrap();
        // Facts llmtap does not read yet (`pending` in the case): their cost would be wrong too.
        let pending = crate::fixtures::take_pending(&name, &mut want);
        let response = serde_json::to_value(&record.response).unwrap();
        assert_subset(&name, &want["response"], &response);
        assert_subset(
            &name,
            &want["request"],
            &serde_json::to_value(record.request.as_ref().unwrap()).unwrap(),
        );
        if !pending.is_empty() {
            continue;
        }
        let table = c
            .price
            .map(|(namespace, model)| prices::cost(namespace, model, &response["usage"]));
        // With a billed cost, the table's price is kept beside it.
        match (c.billed.and(table), record.table_cost_usd) {
            (Some(want), Some(got)) => assert!(prices::close(got, want), "{name}: {got} vs {want}"),
            (want, got) => assert_eq!(got, want, "{name}: the table's price beside"),
        }
        match (c.billed.or(table), record.cost_usd) {
            (Some(want), Some(got)) => assert!(prices::close(got, want), "{name}: {got} vs {want}"),
            (None, got) => assert_eq!(got, None, "{name}: unknown, never $0"),
            (Some(want), None) => panic!("{name}: unpriced, {want} expected"),
        }
        let source = if c.billed.is_some() {
            "provider"
        } else {
            "table"
        };
        assert_eq!(record.cost_source.as_str(), source, "{name}");
    }
    let m = tap.metrics().await;
    let calls = tap.calls.text();
    for secret in [VERTEX_TOKEN, AZURE_KEY, DEEPSEEK_KEY, OPENROUTER_KEY] {
        let secret = secret.trim_start_matches("Bearer ");
        assert!(
            !calls.contains(secret) && !m.contains(secret),
            "{secret} leaked"
        );
    }
    assert!(
        !calls.contains("api-version"),
        "no query string in call lines"
    );
    assert_eq!(
        metric(
            &m,
            "llmtap_cost_unknown_total",
            &[("provider", "azure.ai.openai")]
        ),
        1.0,
        "{m}"
    );
}
