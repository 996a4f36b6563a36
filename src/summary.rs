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
    /// Tool runs measured (a result matched to its call).
    pub tool_runs: u64,
    /// Their time together, serialized in milliseconds.
    #[serde(serialize_with = "ms_total")]
    pub tool_time: Duration,
    /// Tool runs whose result says the tool failed.
    pub tool_errors: u64,
    /// Prompt-cache breaks.
    pub cache_breaks: u64,
    /// What they cost, USD.
    pub cache_break_cost_usd: f64,
    /// Calls that resent a failed request.
    pub retries: u64,
    /// Calls that compacted their conversation.
    pub compactions: u64,
}

/// What one call adds of the agent loop ([`crate::exchange::LoopFacts`], or its call line).
#[derive(Debug, Clone, Copy, Default)]
pub struct LoopPart {
    /// Tool runs the call's request carried results of.
    pub tool_runs: u64,
    /// Their time together.
    pub tool_time: Duration,
    /// Those whose result says the tool failed.
    pub tool_errors: u64,
    /// The call broke its thread's prompt cache, at this cost (USD, when priced).
    pub cache_break: Option<Option<f64>>,
    /// The call resent a failed request.
    pub retry: bool,
    /// The call compacted its conversation.
    pub compacted: bool,
}

impl LoopPart {
    /// What a record adds.
    pub fn of(l: &crate::exchange::LoopFacts) -> LoopPart {
        LoopPart {
            tool_runs: l.tool_executions.len() as u64,
            tool_time: l.tool_executions.iter().map(|t| t.duration).sum(),
            tool_errors: l.tool_executions.iter().filter(|t| t.error).count() as u64,
            cache_break: l.cache_break_tokens.map(|_| l.cache_break_cost_usd),
            retry: l.resend_count > 0,
            compacted: l.compacted,
        }
    }
}

fn ms_total<S: serde::Serializer>(d: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
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

    /// Adds what one call shows of the agent loop.
    pub fn add_loop(&mut self, part: LoopPart) {
        self.tool_runs += part.tool_runs;
        self.tool_time = self.tool_time.saturating_add(part.tool_time);
        self.tool_errors += part.tool_errors;
        if let Some(cost) = part.cache_break {
            self.cache_breaks += 1;
            self.cache_break_cost_usd += cost.unwrap_or(0.0);
        }
        self.retries += u64::from(part.retry);
        self.compactions += u64::from(part.compacted);
    }

    /// One line of totals, for `wrap`'s summary and `report`.
    pub fn line(&self) -> String {
        line(self)
    }
}

/// `1 call`, `2 calls`, `2 retries`.
pub fn plural(n: u64, word: &str) -> String {
    if n == 1 {
        format!("1 {word}")
    } else if let Some(stem) = word.strip_suffix('y') {
        format!("{n} {stem}ies")
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
    if t.tool_runs > 0 {
        s.push_str(&format!(
            ", {} ran {}",
            plural(t.tool_runs, "tool"),
            seconds(t.tool_time)
        ));
        if t.tool_errors > 0 {
            s.push_str(&format!(" ({} failed)", t.tool_errors));
        }
    }
    if t.cache_breaks > 0 {
        s.push_str(&format!(", {}", plural(t.cache_breaks, "cache break")));
        if t.cache_break_cost_usd > 0.0 {
            s.push_str(&format!(" (${:.4})", t.cache_break_cost_usd));
        }
    }
    if t.retries > 0 {
        s.push_str(&format!(", {}", plural(t.retries, "retry")));
    }
    if t.compactions > 0 {
        s.push_str(&format!(", {}", plural(t.compactions, "compaction")));
    }
    s
}

/// A duration as people read it: `812ms`, `4.2s`, `3m12s`.
pub fn seconds(d: Duration) -> String {
    let s = d.as_secs_f64();
    if s < 1.0 {
        format!("{}ms", d.as_millis())
    } else if s < 60.0 {
        format!("{s:.1}s")
    } else {
        format!("{}m{:02}s", d.as_secs() / 60, d.as_secs() % 60)
    }
}
