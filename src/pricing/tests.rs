//! The price table's matching rules and arithmetic, on small tables built from litellm-format
//! overrides (so the numbers are the test's own), plus a few real ids in the embedded table.

use super::*;

/// Every namespace `scripts/prices.py` writes, in its file order.
const ALL: [&str; 18] = [
    "anthropic",
    "openai",
    "gemini",
    "bedrock",
    "vertex_ai",
    "azure",
    "azure_ai",
    "openrouter",
    "deepseek",
    "groq",
    "xai",
    "mistral",
    "moonshot",
    "zai",
    "together_ai",
    "fireworks_ai",
    "cerebras",
    "perplexity",
];

fn table() -> PriceTable {
    let json = r#"{
      "sample_spec": {"input_cost_per_token": "ignored"},
      "claude-test-4": {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6,
        "cache_read_input_token_cost": 3e-7, "cache_creation_input_token_cost": 3.75e-6,
        "cache_creation_input_token_cost_above_1hr": 6e-6, "max_input_tokens": 200000,
        "input_cost_per_token_above_200k_tokens": 6e-6, "output_cost_per_token_above_200k_tokens": 22.5e-6},
      "openai/gpt-test": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5, "cache_read_input_token_cost": 1.25e-7},
      "gemini-test-2.5": {"input_cost_per_token": 3e-7, "output_cost_per_token": 2.5e-6},

      "anthropic.claude-test-4-20260101-v1:0": {"litellm_provider": "bedrock_converse",
        "input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6,
        "cache_read_input_token_cost": 3e-7, "cache_creation_input_token_cost": 3.75e-6,
        "max_input_tokens": 200000},
      "us.anthropic.claude-test-4-20260101-v1:0": {"litellm_provider": "bedrock_converse",
        "input_cost_per_token": 3.3e-6, "output_cost_per_token": 16.5e-6,
        "cache_read_input_token_cost": 3.3e-7, "cache_creation_input_token_cost": 4.125e-6,
        "cache_creation_input_token_cost_above_1hr": 6.6e-6},
      "bedrock/us-gov-west-1/anthropic.claude-test-4-20260101-v1:0": {"litellm_provider": "bedrock",
        "input_cost_per_token": 3.6e-6, "output_cost_per_token": 18e-6},
      "anthropic.claude-short-test-v1": {"litellm_provider": "bedrock_converse",
        "input_cost_per_token": 5e-6, "output_cost_per_token": 25e-6},
      "amazon.nova-test-v1:0": {"litellm_provider": "bedrock_converse",
        "input_cost_per_token": 8e-7, "output_cost_per_token": 3.2e-6},

      "vertex_ai/claude-test-4@20260101": {"litellm_provider": "vertex_ai-anthropic_models",
        "input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6},
      "vertex_ai/claude-test-4": {"litellm_provider": "vertex_ai-anthropic_models",
        "input_cost_per_token": 3.1e-6, "output_cost_per_token": 15e-6},
      "vertex_ai/gemini-test-2.5": {"litellm_provider": "vertex_ai",
        "input_cost_per_token": 3.5e-7, "output_cost_per_token": 2.5e-6},

      "azure/gpt-test-2026-01-01": {"litellm_provider": "azure",
        "input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5},
      "azure/eu/gpt-test-2026-01-01": {"litellm_provider": "azure",
        "input_cost_per_token": 1.375e-6, "output_cost_per_token": 1.1e-5},

      "openrouter/anthropic/claude-test-4": {"litellm_provider": "openrouter",
        "input_cost_per_token": 3.5e-6, "output_cost_per_token": 17.5e-6},
      "openrouter/acme/chat-test": {"litellm_provider": "openrouter",
        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6},

      "deepseek/deepseek-test": {"litellm_provider": "deepseek",
        "input_cost_per_token": 2.8e-7, "output_cost_per_token": 4.2e-7,
        "cache_read_input_token_cost": 2.8e-8},
      "deepseek/deepseek-writer": {"litellm_provider": "deepseek",
        "input_cost_per_token": 1e-6, "output_cost_per_token": 2e-6,
        "cache_creation_input_token_cost": 1.5e-6}
    }"#;
    PriceTable {
        namespaces: HashMap::new(),
        source: "test".into(),
    }
    .with_overrides("t.json", json)
    .expect("valid")
}

fn usage(input: u64, output: u64, read: u64, w5m: u64, w1h: u64) -> Usage {
    Usage {
        input: Some(input),
        output: Some(output),
        cache_read: Some(read),
        cache_write_5m: Some(w5m),
        cache_write_1h: Some(w1h),
        reasoning: None,
    }
}

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() < 1e-12
}

fn input(t: &PriceTable, namespaces: &[&str], model: &str) -> Option<f64> {
    t.lookup(namespaces, model).map(|p| p.base.input)
}

#[test]
fn anthropic_cache_parts_are_billed_once_each_at_their_rate() {
    let t = table();
    // 10_000 input of which 6_000 cache read, 1_000 written 5m, 2_000 written 1h.
    let cost = t
        .cost(
            &["anthropic"],
            Operation::Chat,
            Some("claude-test-4"),
            None,
            &usage(10_000, 500, 6_000, 1_000, 2_000),
        )
        .expect("priced");
    let want = 1_000.0 * 3e-6 + 6_000.0 * 3e-7 + 1_000.0 * 3.75e-6 + 2_000.0 * 6e-6 + 500.0 * 15e-6;
    assert!(close(cost, want), "{cost} vs {want}");
}

#[test]
fn the_long_context_tier_applies_above_200k_input() {
    let t = table();
    let at = |input| {
        t.cost(
            &["anthropic"],
            Operation::Chat,
            Some("claude-test-4"),
            None,
            &usage(input, 0, 0, 0, 0),
        )
    };
    assert!(close(at(200_000).expect("priced"), 200_000.0 * 3e-6));
    assert!(close(at(200_001).expect("priced"), 200_001.0 * 6e-6));
}

#[test]
fn openai_and_gemini_cached_input_is_part_of_input() {
    let t = table();
    let cost = t
        .cost(
            &["openai"],
            Operation::Chat,
            Some("gpt-test-2025-08-07"),
            None,
            &usage(1_000, 100, 800, 0, 0),
        )
        .expect("priced");
    assert!(close(
        cost,
        200.0 * 1.25e-6 + 800.0 * 1.25e-7 + 100.0 * 1e-5
    ));
    // No cache-read price: cached tokens at the input rate, never free.
    let g = t
        .cost(
            &["gemini"],
            Operation::GenerateContent,
            Some("models/gemini-test-2.5-001"),
            None,
            &usage(1_000, 10, 400, 0, 0),
        )
        .expect("priced");
    assert!(close(g, 1_000.0 * 3e-7 + 10.0 * 2.5e-6));
}

#[test]
fn a_reported_service_tier_is_priced_at_its_own_rates() {
    // openai_responses_flex_tier: litellm's `*_flex` prices, half the standard ones.
    let t = PriceTable::embedded()
        .with_overrides(
            "p.json",
            r#"{"gpt-tier": {"input_cost_per_token": 1e-6, "output_cost_per_token": 8e-6,
                "cache_read_input_token_cost": 1e-7,
                "input_cost_per_token_flex": 5e-7, "output_cost_per_token_flex": 4e-6,
                "input_cost_per_token_priority": 2e-6}}"#,
        )
        .expect("prices");
    let at = |tier| {
        t.cost(
            &["openai"],
            Operation::Chat,
            Some("gpt-tier"),
            tier,
            &usage(1_000, 100, 0, 0, 0),
        )
        .expect("priced")
    };
    assert!(close(at(None), 1_000.0 * 1e-6 + 100.0 * 8e-6));
    assert!(close(at(Some("default")), at(None)), "the standard tier");
    assert!(close(at(Some("flex")), 1_000.0 * 5e-7 + 100.0 * 4e-6));
    // A tier with only an input price keeps the standard output price.
    assert!(close(at(Some("priority")), 1_000.0 * 2e-6 + 100.0 * 8e-6));
    // A tier without its own long-context price scales the standard one by its ratio.
    let long = PriceTable::embedded()
        .with_overrides(
            "p.json",
            r#"{"gpt-long-tier": {"input_cost_per_token": 1e-6, "output_cost_per_token": 8e-6,
                "input_cost_per_token_above_272k_tokens": 2e-6,
                "output_cost_per_token_above_272k_tokens": 1.2e-5,
                "input_cost_per_token_priority": 2e-6, "output_cost_per_token_priority": 1.6e-5}}"#,
        )
        .expect("prices");
    let at = |tier, input| {
        long.cost(
            &["openai"],
            Operation::Chat,
            Some("gpt-long-tier"),
            tier,
            &usage(input, 100, 0, 0, 0),
        )
        .expect("priced")
    };
    assert!(close(
        at(Some("priority"), 300_000),
        300_000.0 * 4e-6 + 100.0 * 2.4e-5
    ));
    assert!(at(Some("priority"), 300_000) > at(None, 300_000));
    assert!(close(
        at(Some("priority"), 1_000),
        1_000.0 * 2e-6 + 100.0 * 1.6e-5
    ));
    // The embedded table carries litellm's tiers.
    let nano = PriceTable::embedded();
    let flex = nano
        .lookup(&["openai"], "gpt-5-nano")
        .expect("priced")
        .at_tier(Some("flex"));
    assert!(close(flex.base.input, 2.5e-8));
}

#[test]
fn names_match_as_providers_return_them() {
    let t = table();
    for name in [
        "claude-test-4",
        "CLAUDE-TEST-4",
        "claude-test-4-20260101",
        "claude-test-4-latest",
        "anthropic/claude-test-4",
        "claude-test-4[1m]",
    ] {
        assert!(t.lookup(&["anthropic"], name).is_some(), "{name}");
    }
    for name in ["claude-test-5", "claude-test", "gpt-test-mini", ""] {
        assert!(t.lookup(&["anthropic"], name).is_none(), "{name}");
    }
}

#[test]
fn bedrock_cross_region_profile_ids_match_as_given_then_without_the_prefix() {
    let t = table();
    let b = &["bedrock"];
    // litellm prices the `us.` profile itself (10% above the in-region id): as given first.
    assert_eq!(
        input(&t, b, "us.anthropic.claude-test-4-20260101-v1:0"),
        Some(3.3e-6)
    );
    for geo in ["eu", "apac", "jp", "au", "global", "us-gov"] {
        let id = format!("{geo}.anthropic.claude-test-4-20260101-v1:0");
        assert_eq!(input(&t, b, &id), Some(3e-6), "{id}");
    }
    // Version suffixes: `:N`, then `-vN:N`, with and without the cross-region prefix.
    assert_eq!(input(&t, b, "amazon.nova-test-v1:0"), Some(8e-7));
    assert_eq!(
        input(&t, b, "global.anthropic.claude-short-test-v1:0"),
        Some(5e-6)
    );
    assert_eq!(input(&t, b, "anthropic.claude-short-test-v2:0"), None);
    // Not the other way round: litellm's `:0` is part of the id.
    assert_eq!(input(&t, b, "amazon.nova-test-v1"), None);
    // The Anthropic id a Claude response body on Bedrock names.
    assert_eq!(input(&t, b, "claude-test-4-20260101"), Some(3e-6));
    // Not a cross-region prefix: no match.
    assert_eq!(
        input(&t, b, "xx.anthropic.claude-test-4-20260101-v1:0"),
        None
    );
}

#[test]
fn bedrock_arns_resolve_to_their_model_id_and_opaque_ones_have_no_price() {
    let t = table();
    let b = &["bedrock"];
    assert_eq!(
        input(
            &t,
            b,
            "arn:aws:bedrock:us-east-1:123456789012:inference-profile/us.anthropic.claude-test-4-20260101-v1:0"
        ),
        Some(3.3e-6)
    );
    assert_eq!(
        input(
            &t,
            b,
            "arn:aws:bedrock:us-east-1::foundation-model/anthropic.claude-test-4-20260101-v1:0"
        ),
        Some(3e-6)
    );
    // An application inference profile names its model by an opaque id: unknown, never $0.
    for arn in [
        "arn:aws:bedrock:us-east-1:123456789012:application-inference-profile/a1b2c3d4e5f6",
        "arn:aws:bedrock:us-east-1:123456789012:provisioned-model/abcdefghijkl",
    ] {
        assert_eq!(input(&t, b, arn), None, "{arn}");
        assert_eq!(
            t.cost(
                b,
                Operation::Chat,
                Some(arn),
                None,
                &usage(1_000, 100, 0, 0, 0)
            ),
            None,
            "{arn}"
        );
    }
}

#[test]
fn a_regional_variant_is_looked_up_when_its_region_is_given() {
    let t = table();
    let gov = &["bedrock/us-gov-west-1", "bedrock"];
    assert_eq!(
        input(&t, gov, "us-gov.anthropic.claude-test-4-20260101-v1:0"),
        Some(3.6e-6)
    );
    // A model the region has no price of its own for: the namespace's.
    assert_eq!(input(&t, gov, "amazon.nova-test-v1:0"), Some(8e-7));
    // Without the region, the regional price is not seen.
    assert_eq!(
        input(
            &t,
            &["bedrock"],
            "us-gov.anthropic.claude-test-4-20260101-v1:0"
        ),
        Some(3e-6)
    );
    // Azure data zones likewise.
    assert_eq!(
        input(&t, &["azure/eu", "azure"], "gpt-test-2026-01-01"),
        Some(1.375e-6)
    );
}

#[test]
fn vertex_ids_match_with_and_without_their_version() {
    let t = table();
    let v = &["vertex_ai"];
    assert_eq!(input(&t, v, "claude-test-4@20260101"), Some(3e-6));
    // An `@version` litellm does not list: the unversioned entry.
    assert_eq!(input(&t, v, "claude-test-4@20260202"), Some(3.1e-6));
    // What the response names.
    assert_eq!(input(&t, v, "claude-test-4-20260101"), Some(3.1e-6));
    // A resource path with its method.
    assert_eq!(
        input(
            &t,
            v,
            "projects/p/locations/us-east5/publishers/anthropic/models/claude-test-4@20260101:streamRawPredict"
        ),
        Some(3e-6)
    );
    assert_eq!(input(&t, v, "google/gemini-test-2.5"), Some(3.5e-7));
    assert_eq!(input(&t, v, "gpt-test"), None);
}

#[test]
fn azure_models_match_the_model_a_response_names() {
    let t = table();
    assert_eq!(input(&t, &["azure"], "gpt-test-2026-01-01"), Some(1.25e-6));
    assert_eq!(input(&t, &["azure"], "GPT-Test-2026-01-01"), Some(1.25e-6));
    // A free-form deployment name has no price.
    assert_eq!(input(&t, &["azure"], "my-prod-deployment"), None);
}

#[test]
fn openrouter_vendor_model_ids_and_variants() {
    let t = table();
    let o = &["openrouter"];
    assert_eq!(input(&t, o, "anthropic/claude-test-4"), Some(3.5e-6));
    assert_eq!(input(&t, o, "acme/chat-test"), Some(1e-6));
    assert_eq!(input(&t, o, "acme/chat-test:nitro"), Some(1e-6));
    // A free variant is never priced at the paid model's rate.
    assert_eq!(input(&t, o, "acme/chat-test:free"), None);
    // The bare id is not OpenRouter's.
    assert_eq!(input(&t, o, "claude-test-4"), None);
}

#[test]
fn deepseek_is_priced_from_its_namespace() {
    let t = table();
    let cost = t
        .cost(
            &["deepseek"],
            Operation::Chat,
            Some("deepseek-test"),
            None,
            &usage(1_000, 100, 600, 0, 0),
        )
        .expect("priced");
    assert!(close(
        cost,
        400.0 * 2.8e-7 + 600.0 * 2.8e-8 + 100.0 * 4.2e-7
    ));
    assert_eq!(input(&t, &["openai"], "deepseek-test"), None);
}

#[test]
fn claude_cache_writes_on_bedrock_are_billed_at_the_table_price_else_claude_multiples() {
    let t = table();
    let u = usage(10_000, 500, 6_000, 1_000, 2_000);
    let cost = |ns: &[&str], model: &str| {
        t.cost(ns, Operation::Chat, Some(model), None, &u)
            .expect("priced")
    };
    // Both write prices in the table.
    let want = 1_000.0 * 3.3e-6
        + 6_000.0 * 3.3e-7
        + 1_000.0 * 4.125e-6
        + 2_000.0 * 6.6e-6
        + 500.0 * 16.5e-6;
    let got = cost(&["bedrock"], "us.anthropic.claude-test-4-20260101-v1:0");
    assert!(close(got, want), "{got} vs {want}");
    // No 1-hour price: 2 × input.
    let want = 1_000.0 * 3e-6 + 6_000.0 * 3e-7 + 1_000.0 * 3.75e-6 + 2_000.0 * 6e-6 + 500.0 * 15e-6;
    let got = cost(&["bedrock"], "anthropic.claude-test-4-20260101-v1:0");
    assert!(close(got, want), "{got} vs {want}");
    // No cache prices at all: reads at input, writes at 1.25 × / 2 × input.
    let got = cost(
        &["bedrock/us-gov-west-1"],
        "anthropic.claude-test-4-20260101-v1:0",
    );
    let want = 7_000.0 * 3.6e-6 + 1_000.0 * 3.6e-6 * 1.25 + 2_000.0 * 3.6e-6 * 2.0 + 500.0 * 18e-6;
    assert!(close(got, want), "{got} vs {want}");
}

#[test]
fn a_non_claude_model_that_reports_cache_writes_is_billed_at_its_write_price_or_input() {
    let t = table();
    let u = usage(2_000, 100, 0, 500, 0);
    // No write price, not Claude: the writes at the input rate, counted once.
    let nova = t
        .cost(
            &["bedrock"],
            Operation::Chat,
            Some("amazon.nova-test-v1:0"),
            None,
            &u,
        )
        .expect("priced");
    assert!(close(nova, 2_000.0 * 8e-7 + 100.0 * 3.2e-6), "{nova}");
    // A write price in the table: that price.
    let writer = t
        .cost(
            &["deepseek"],
            Operation::Chat,
            Some("deepseek-writer"),
            None,
            &u,
        )
        .expect("priced");
    assert!(
        close(writer, 1_500.0 * 1e-6 + 500.0 * 1.5e-6 + 100.0 * 2e-6),
        "{writer}"
    );
}

#[test]
fn the_first_namespace_that_prices_the_model_wins() {
    let t = table();
    // OpenRouter's own entry first; then the anthropic namespace's rules, which drop the
    // `anthropic/` prefix.
    assert_eq!(
        input(&t, &["openrouter", "anthropic"], "anthropic/claude-test-4"),
        Some(3.5e-6)
    );
    assert_eq!(
        input(&t, &["anthropic", "openrouter"], "anthropic/claude-test-4"),
        Some(3e-6)
    );
    // A namespace without the model, or unknown to the table, is passed over.
    assert_eq!(
        input(
            &t,
            &["no-such-namespace", "deepseek", "vertex_ai"],
            "claude-test-4"
        ),
        Some(3.1e-6)
    );
    // Vertex's entry has no context window, the anthropic one has.
    assert_eq!(
        t.max_input_tokens(&["vertex_ai", "anthropic"], "claude-test-4"),
        None
    );
    assert_eq!(
        t.max_input_tokens(&["anthropic", "vertex_ai"], "claude-test-4"),
        Some(200_000)
    );
}

#[test]
fn unknown_model_or_no_usage_has_no_cost_and_count_tokens_is_free() {
    let t = table();
    let u = usage(1, 1, 0, 0, 0);
    assert_eq!(t.lookup(&ALL, "nope-model"), None);
    assert_eq!(t.max_input_tokens(&ALL, "nope-model"), None);
    assert_eq!(
        t.cost(&ALL, Operation::Chat, Some("nope-model"), None, &u),
        None
    );
    assert_eq!(
        t.cost(&[], Operation::Chat, Some("gpt-test"), None, &u),
        None
    );
    assert_eq!(
        t.cost(
            &["openai"],
            Operation::Chat,
            Some("gpt-test"),
            None,
            &Usage::default()
        ),
        None
    );
    assert_eq!(t.cost(&["openai"], Operation::Chat, None, None, &u), None);
    assert_eq!(
        t.cost(
            &["anthropic"],
            Operation::CountTokens,
            Some("claude-test-4"),
            None,
            &Usage::default()
        ),
        Some(0.0)
    );
}

/// Real ids in the embedded table (litellm 1.110.2): the script's namespaces and the
/// matching rules agree on the names providers use.
#[test]
fn the_embedded_table_prices_real_ids_in_each_namespace() {
    let t = PriceTable::embedded();
    let cases: [(&[&str], &str, f64); 9] = [
        (
            &["bedrock"],
            "us.anthropic.claude-sonnet-4-5-20250929-v1:0",
            3.3e-6,
        ),
        (
            &["bedrock"],
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.anthropic.claude-sonnet-4-5-20250929-v1:0",
            3.3e-6,
        ),
        (
            &["bedrock/us-gov-west-1", "bedrock"],
            "us-gov.anthropic.claude-sonnet-4-5-20250929-v1:0",
            3.6e-6,
        ),
        (&["vertex_ai"], "claude-sonnet-4-5@20250929", 3e-6),
        (&["azure"], "gpt-4o-2024-08-06", 2.5e-6),
        (&["azure/eu", "azure"], "gpt-4o-2024-08-06", 2.75e-6),
        (&["deepseek"], "deepseek-chat", 2.8e-7),
        (&["groq"], "openai/gpt-oss-120b", 1.5e-7),
        (&["anthropic"], "claude-sonnet-4-5-20250929", 3e-6),
    ];
    for (ns, model, want) in cases {
        let got = input(&t, ns, model);
        assert!(
            got.is_some_and(|g| close(g, want)),
            "{ns:?} {model}: {got:?}"
        );
    }
    assert_eq!(
        t.max_input_tokens(&["anthropic"], "claude-sonnet-4-5"),
        Some(200_000)
    );
    // litellm 1.110.2 has no OpenRouter entries: the namespace exists and is empty.
    assert_eq!(t.namespace_len("openrouter"), 0);
}

#[test]
fn a_router_finds_first_party_prices_by_the_vendor_model_id() {
    let t = PriceTable::embedded();
    let first_party = ["openrouter", "anthropic", "openai", "gemini"];
    let direct = t
        .lookup(&["anthropic"], "claude-sonnet-4-5")
        .expect("priced");
    assert_eq!(
        t.lookup(&first_party, "anthropic/claude-sonnet-4.5"),
        Some(direct)
    );
    assert_eq!(
        t.lookup(&first_party, "anthropic/claude-sonnet-4.5:nitro"),
        Some(direct)
    );
    assert_eq!(
        t.lookup(&first_party, "anthropic/claude-sonnet-4.5:free"),
        None
    );
}

/// A cross-region profile is priced as the profile, not at a regional price of the region
/// the call entered by; a foundation model in a region with its own price gets that price.
#[test]
fn regional_bedrock_prices_apply_to_foundation_models_not_profiles() {
    let t = PriceTable::embedded();
    let regional = ["bedrock/us-gov-west-1", "bedrock"];
    let profile = "us.anthropic.claude-sonnet-4-5-20250929-v1:0";
    assert_eq!(
        t.lookup(&regional, profile),
        t.lookup(&["bedrock"], profile)
    );
    let model = "anthropic.claude-3-5-sonnet-20240620-v1:0";
    let in_region = t
        .lookup(&["bedrock/us-gov-west-1"], model)
        .expect("litellm prices it in us-gov-west-1");
    let base = t.lookup(&["bedrock"], model).expect("and globally");
    assert!(
        in_region.base.input > base.base.input,
        "GovCloud costs more"
    );
    assert_eq!(t.lookup(&regional, model), Some(in_region));
}
