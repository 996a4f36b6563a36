//! Totals of a set of calls, as `llmtap wrap` and `llmtap report` print them.
//!
//! Owns: [`Totals`] (calls, failures, tokens by type, cost, unpriced calls, TTFT, tools) and
//! its one-line text. Does not own: where the calls come from (`wrap` subscribes to the
//! running proxy, `report` reads call lines).

use std::{collections::BTreeMap, time::Duration};

use serde::Serialize;

/// Totals of a set of calls.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Totals {
    /// Calls counted.
    pub calls: u64,
    /// Calls whose outcome was not `ok`.
    pub errors: u64,
    /// Input tokens, cached ones included (a call without a count adds 0).
    pub input: u64,
    /// Output tokens, reasoning included.
    pub output: u64,
    /// Input tokens read from the provider's cache (part of `input`).
    pub cache_read: u64,
    /// Input tokens written to a 5-minute cache (part of `input`).
    pub cache_write_5m: u64,
    /// Input tokens written to a 1-hour cache (part of `input`).
    pub cache_write_1h: u64,
    /// Output tokens spent reasoning (part of `output`).
    pub reasoning: u64,
    /// USD of the calls that have a price.
    pub cost_usd: f64,
    /// Calls whose cost is unknown ([`crate::vocab::cost_unknown`]).
    pub unpriced: u64,
    /// Median time to first token (the lower middle value), serialized in milliseconds;
    /// `None` when no call had one (and always for `report`: call lines are not read for
    /// it).
    #[serde(serialize_with = "ms")]
    pub ttft_p50: Option<Duration>,
    /// Longest time to first token, serialized in milliseconds; `None` as for `ttft_p50`.
    #[serde(serialize_with = "ms")]
    pub ttft_max: Option<Duration>,
    /// Tool name → times called.
    pub tools: BTreeMap<String, u64>,
}

fn ms<S: serde::Serializer>(d: &Option<Duration>, s: S) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3),
        None => s.serialize_none(),
    }
}

impl Totals {
    /// Adds one call.
    pub fn add(
        &mut self,
        ok: bool,
        u: &crate::dialects::Usage,
        cost: Option<f64>,
        tools: &[String],
    ) {
        self.calls += 1;
        if !ok {
            self.errors += 1;
        }
        self.input += u.input.unwrap_or(0);
        self.output += u.output.unwrap_or(0);
        self.cache_read += u.cache_read.unwrap_or(0);
        self.cache_write_5m += u.cache_write_5m.unwrap_or(0);
        self.cache_write_1h += u.cache_write_1h.unwrap_or(0);
        self.reasoning += u.reasoning.unwrap_or(0);
        if let Some(c) = cost {
            self.cost_usd += c;
        }
        if crate::vocab::cost_unknown(cost, ok, !u.is_empty()) {
            self.unpriced += 1;
        }
        for tool in tools {
            *self.tools.entry(tool.clone()).or_default() += 1;
        }
    }

    /// One line of totals, for `wrap`'s summary and `report`.
    pub fn line(&self) -> String {
        line(self)
    }
}

/// `1 call`, `2 calls`.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else {
        format!("{n} {word}s")
    }
}

/// One line of totals: tokens by type, cost, TTFT, failures, tools.
pub fn line(t: &Totals) -> String {
    let mut s = format!(
        "in {} (cache read {}, write 5m {}, 1h {}), out {} (reasoning {})",
        t.input, t.cache_read, t.cache_write_5m, t.cache_write_1h, t.output, t.reasoning
    );
    s.push_str(&format!(", ${:.4}", t.cost_usd));
    if t.unpriced > 0 {
        s.push_str(&format!(" + {} unpriced", plural(t.unpriced, "call")));
    }
    if let (Some(p50), Some(max)) = (t.ttft_p50, t.ttft_max) {
        s.push_str(&format!(
            ", TTFT p50 {}ms max {}ms",
            p50.as_millis(),
            max.as_millis()
        ));
    }
    if t.errors > 0 {
        s.push_str(&format!(", {} failed", t.errors));
    }
    if !t.tools.is_empty() {
        let tools: Vec<String> = t.tools.iter().map(|(k, v)| format!("{k}×{v}")).collect();
        s.push_str(&format!(", tools {}", tools.join(" ")));
    }
    s
}
