//! What a call cost, computed once from its normalized usage and the price table.
//!
//! Owns: the table ([`PriceTable`], [`ModelPrice`], [`Rates`]), the rule that maps a model
//! name as a provider returns it to a table entry, and the arithmetic (cache tokens are
//! parts of input, never counted twice; the long-context tier applies to the whole call
//! above 200k input tokens). Does not own: reading the table, the embedded `prices.json`
//! and `--prices` overrides in litellm's own JSON format (`pricing::load`).
//!
//! Matching a model name, in order: the name as sent (lowercase); without a provider prefix
//! (`models/`, `anthropic/`, `openai/`, `gemini/`, `google/`) or a `[…]` suffix; without a
//! dated-snapshot suffix (`-20251001`, `-2025-08-07`); without `-latest`; without a version
//! suffix `-001`. A name that matches none of these has no price: the call adds no cost and
//! counts in `llmtap_cost_unknown_total`.

mod load;

use std::collections::HashMap;

use crate::dialects::{Operation, Usage};

/// Prices of one model at one level (standard, a long-context tier, a processing tier), in
/// USD per token, as litellm's `*_cost_per_token` fields give them.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct Rates {
    /// Uncached input tokens (litellm `input_cost_per_token`).
    pub input: f64,
    /// Output tokens, reasoning included (`output_cost_per_token`).
    pub output: f64,
    /// Input tokens read from cache (`cache_read_input_token_cost`); `None`: billed at
    /// `input`.
    pub cache_read: Option<f64>,
    /// Input tokens written to a 5-minute cache (`cache_creation_input_token_cost`); `None`:
    /// billed at 1.25 × `input`, Anthropic's multiplier. Only Anthropic bills writes.
    pub cache_write_5m: Option<f64>,
    /// Input tokens written to a 1-hour cache (`cache_creation_input_token_cost_above_1hr`);
    /// `None`: billed at 2 × `input`, Anthropic's multiplier.
    pub cache_write_1h: Option<f64>,
}

/// The price of one model: standard rates, long-context tiers, processing tiers.
#[derive(Debug, Clone, PartialEq)]
pub struct ModelPrice {
    /// The standard rates, for calls at or under every tier's threshold.
    pub base: Rates,
    /// Long-context tiers: above this many input tokens, the whole call is billed at these
    /// rates (200k for Claude and Gemini Pro, 272k for recent OpenAI models, …).
    pub tiers: Vec<(u64, Rates)>,
    /// Prices of the processing tiers litellm knows for the model (`flex`, `priority`,
    /// `batch`), each with its own long-context tiers. The standard tier is `base`/`tiers`.
    pub service_tiers: Vec<(String, ModelPrice)>,
}

impl ModelPrice {
    /// The price at the processing tier a response reports (OpenAI `service_tier`:
    /// `flex`, `priority`, `default`, `auto`, `scale`; Anthropic `usage.service_tier`:
    /// `standard`, `priority`, `batch`). A tier without prices of its own, or none, is the
    /// standard tier.
    pub fn at_tier(&self, service_tier: Option<&str>) -> &ModelPrice {
        service_tier
            .and_then(|t| self.service_tiers.iter().find(|(name, _)| name == t))
            .map_or(self, |(_, price)| price)
    }

    /// The rates for a call with `input` prompt tokens.
    pub fn rates(&self, input: u64) -> Rates {
        self.tiers
            .iter()
            .filter(|(threshold, _)| input > *threshold)
            .max_by_key(|(threshold, _)| *threshold)
            .map_or(self.base, |(_, rates)| *rates)
    }
}

/// An error in a `--prices` file, naming the entry.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{entry}: {message}")]
pub struct PriceError {
    /// `FILE: MODEL`, or the file alone when the file itself is at fault.
    pub entry: String,
    /// What is wrong (`not JSON: …`, `input_cost_per_token must be a non-negative number,
    /// got …`).
    pub message: String,
}

/// Prices by model name (lowercase): the embedded table, plus `--prices` overrides.
#[derive(Debug, Clone)]
pub struct PriceTable {
    models: HashMap<String, ModelPrice>,
    /// Where the table came from, e.g. `litellm 1.110.2 + /path/prices.json (3 models)`.
    pub source: String,
}

impl PriceTable {
    /// How many model names the table prices.
    pub fn len(&self) -> usize {
        self.models.len()
    }

    /// Whether the table prices no model (the embedded table did not parse).
    pub fn is_empty(&self) -> bool {
        self.models.is_empty()
    }

    /// The price of `model`, by the matching rule in the module docs.
    pub fn lookup(&self, model: &str) -> Option<&ModelPrice> {
        let mut name = model.trim().to_ascii_lowercase();
        if let Some(p) = self.models.get(&name) {
            return Some(p);
        }
        for prefix in ["models/", "anthropic/", "openai/", "gemini/", "google/"] {
            if let Some(rest) = name.strip_prefix(prefix) {
                name = rest.to_owned();
            }
        }
        if let Some((base, _)) = name.split_once('[') {
            name = base.to_owned();
        }
        for candidate in [
            Some(name.clone()),
            strip_date(&name),
            name.strip_suffix("-latest").map(str::to_owned),
            strip_version(&name),
        ]
        .into_iter()
        .flatten()
        {
            if let Some(p) = self.models.get(&candidate) {
                return Some(p);
            }
        }
        None
    }

    /// The cost of a call in USD at the processing tier its response reports (see
    /// [`ModelPrice::at_tier`]), or `None` when the model has no price or the call has no
    /// usage. `count_tokens` is free.
    pub fn cost(
        &self,
        namespaces: &[&str],
        operation: Operation,
        model: Option<&str>,
        service_tier: Option<&str>,
        usage: &Usage,
    ) -> Option<f64> {
        if operation == Operation::CountTokens {
            return Some(0.0);
        }
        let price = self.lookup(model?)?.at_tier(service_tier);
        if usage.input.is_none() && usage.output.is_none() {
            return None;
        }
        let input = usage.input.unwrap_or(0);
        let rates = price.rates(input);
        let cache_read = usage.cache_read.unwrap_or(0);
        let (w5m, w1h) = (
            usage.cache_write_5m.unwrap_or(0),
            usage.cache_write_1h.unwrap_or(0),
        );
        // Normalized input includes every cache part (ARCHITECTURE.md, "Usage"); bill each part at its own
        // rate and the rest at the input rate. Providers that do not bill cache writes
        // (OpenAI, Gemini) report none.
        let _ = namespaces;
        let writes = w5m + w1h;
        let uncached = input.saturating_sub(cache_read).saturating_sub(writes);
        let f = |n: u64| n as f64;
        let mut cost = f(uncached) * rates.input
            + f(cache_read) * rates.cache_read.unwrap_or(rates.input)
            + f(usage.output.unwrap_or(0)) * rates.output;
        if writes > 0 {
            cost += f(w5m) * rates.cache_write_5m.unwrap_or(rates.input * 1.25)
                + f(w1h) * rates.cache_write_1h.unwrap_or(rates.input * 2.0);
        }
        Some(cost)
    }
}

/// `claude-haiku-4-5-20251001` → `claude-haiku-4-5`; `gpt-4o-2024-08-06` → `gpt-4o`.
fn strip_date(name: &str) -> Option<String> {
    let digits = |s: &str| !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit());
    if let Some((base, date)) = name.rsplit_once('-')
        && date.len() == 8
        && digits(date)
    {
        return Some(base.to_owned());
    }
    let parts: Vec<&str> = name.rsplitn(4, '-').collect();
    if parts.len() == 4
        && parts[2].len() == 4
        && parts[1].len() == 2
        && parts[0].len() == 2
        && parts[..3].iter().all(|p| digits(p))
    {
        return Some(parts[3].to_owned());
    }
    None
}

/// `gemini-2.0-flash-001` → `gemini-2.0-flash`.
fn strip_version(name: &str) -> Option<String> {
    let (base, v) = name.rsplit_once('-')?;
    (v.len() == 3 && v.bytes().all(|b| b.is_ascii_digit())).then(|| base.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn table() -> PriceTable {
        let json = r#"{
          "sample_spec": {"input_cost_per_token": "ignored"},
          "claude-test-4": {"input_cost_per_token": 3e-6, "output_cost_per_token": 15e-6,
            "cache_read_input_token_cost": 3e-7, "cache_creation_input_token_cost": 3.75e-6,
            "cache_creation_input_token_cost_above_1hr": 6e-6,
            "input_cost_per_token_above_200k_tokens": 6e-6, "output_cost_per_token_above_200k_tokens": 22.5e-6},
          "openai/gpt-test": {"input_cost_per_token": 1.25e-6, "output_cost_per_token": 1e-5, "cache_read_input_token_cost": 1.25e-7},
          "gemini-test-2.5": {"input_cost_per_token": 3e-7, "output_cost_per_token": 2.5e-6}
        }"#;
        PriceTable {
            models: HashMap::new(),
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
        let want =
            1_000.0 * 3e-6 + 6_000.0 * 3e-7 + 1_000.0 * 3.75e-6 + 2_000.0 * 6e-6 + 500.0 * 15e-6;
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
            .lookup("gpt-5-nano")
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
            assert!(t.lookup(name).is_some(), "{name}");
        }
        for name in ["claude-test-5", "claude-test", "gpt-test-mini", ""] {
            assert!(t.lookup(name).is_none(), "{name}");
        }
    }

    #[test]
    fn unknown_model_or_no_usage_has_no_cost_and_count_tokens_is_free() {
        let t = table();
        assert_eq!(
            t.cost(
                &["openai"],
                Operation::Chat,
                Some("nope"),
                None,
                &usage(1, 1, 0, 0, 0)
            ),
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
        assert_eq!(
            t.cost(
                &["openai"],
                Operation::Chat,
                None,
                None,
                &usage(1, 1, 0, 0, 0)
            ),
            None
        );
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
}
