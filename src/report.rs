//! `llmtap report [FILE] [--by DIMENSION]…`: cost and tokens by day, team, user, client,
//! model, session, agent and tool, from the history (`--db`, the default) or the JSON call
//! lines of a `--calls-file` (or `--calls json` captured to a file).
//!
//! Owns: reading the lines (a line that is not a call record is skipped and counted, never
//! fatal) and the tables. Each call is counted once per dimension; a tool run once, in the
//! `tool` table, under the call whose request carried its result.

use std::{
    collections::{BTreeMap, BTreeSet},
    io::BufRead,
    time::Duration,
};

use serde::Deserialize;

use crate::{
    dialects::Usage,
    summary::{LoopPart, Totals, plural, seconds},
};

pub use crate::cli::Dimension;

/// The tables printed when none is asked for.
pub const DEFAULT: &[Dimension] = &[
    Dimension::Day,
    Dimension::Team,
    Dimension::User,
    Dimension::Client,
    Dimension::Model,
];

impl Dimension {
    fn name(self) -> &'static str {
        self.into()
    }
}

#[derive(Deserialize)]
struct Line {
    time: String,
    /// Start, milliseconds since the Unix epoch.
    #[serde(default)]
    start: Option<f64>,
    /// Milliseconds.
    #[serde(default)]
    duration: Option<f64>,
    team: Option<String>,
    user: Option<String>,
    client: String,
    model: Option<String>,
    outcome: String,
    cost_usd: Option<f64>,
    response: Response,
    #[serde(default)]
    conversation_id: Option<String>,
    #[serde(default)]
    agent: Option<String>,
    #[serde(default)]
    tool_executions: Vec<ToolRun>,
    #[serde(default)]
    cache_break_tokens: Option<u64>,
    #[serde(default)]
    cache_break_cost_usd: Option<f64>,
    #[serde(default)]
    resend_count: u32,
    #[serde(default)]
    compacted: bool,
}

#[derive(Deserialize)]
struct ToolRun {
    tool: String,
    duration_ms: f64,
    #[serde(default)]
    error: bool,
}

/// A call line's milliseconds as a duration; what no duration can be (negative, not a
/// number, past `Duration::MAX`) is zero, never a panic.
fn millis(ms: f64) -> Duration {
    Duration::try_from_secs_f64(ms / 1e3).unwrap_or_default()
}

/// A session's row beyond its totals.
#[derive(Debug, Default, Clone)]
pub struct SessionRow {
    /// Its subagents (every agent but `main`).
    pub subagents: BTreeSet<String>,
    /// First call's start and last call's end, milliseconds since the Unix epoch.
    pub span_ms: Option<(f64, f64)>,
}

/// A tool's row.
#[derive(Debug, Default, Clone)]
pub struct ToolRow {
    /// Runs, in milliseconds each.
    pub runs_ms: Vec<f64>,
    /// Runs whose result says the tool failed.
    pub errors: u64,
}

#[derive(Deserialize)]
struct Response {
    usage: Usage,
    #[serde(default)]
    tools_called: Vec<String>,
}

/// The report's tables.
#[derive(Debug, Default)]
pub struct Report {
    /// Every call read, together.
    pub total: Totals,
    /// Dimension (`day`, `team`, …) → value → totals.
    pub by: BTreeMap<&'static str, BTreeMap<String, Totals>>,
    /// Lines that were not call records.
    pub skipped: u64,
    /// Session → what its row shows beyond its totals.
    pub sessions: BTreeMap<String, SessionRow>,
    /// Tool → its runs.
    pub tools: BTreeMap<String, ToolRow>,
}

impl Report {
    /// Reads JSON call lines from `input` to its end. Blank lines are ignored; a line that
    /// is not a call record is counted in [`Report::skipped`]. A call missing `team`, `user`
    /// or `model` is counted under `unknown`; its day is the first 10 characters of `time`
    /// (RFC 3339, UTC). Fails only when reading fails (I/O, or a line that is not UTF-8).
    pub fn read(input: impl BufRead) -> std::io::Result<Report> {
        let mut report = Report::default();
        for line in input.lines() {
            report.add(&line?);
        }
        Ok(report)
    }

    /// Reads every call of the history (`--db`), oldest first.
    pub fn from_history(
        store: &crate::telemetry::history::Store,
    ) -> Result<Report, crate::telemetry::history::HistoryError> {
        let mut report = Report::default();
        store.lines(|line| report.add(line))?;
        Ok(report)
    }

    /// Adds one JSON call line (a blank line is ignored, anything else that is not a call
    /// record is counted in [`Report::skipped`]).
    pub fn add(&mut self, line: &str) {
        let report = self;
        {
            if line.trim().is_empty() {
                return;
            }
            let Ok(call) = serde_json::from_str::<Line>(line) else {
                report.skipped += 1;
                return;
            };
            let ok = call.outcome == "ok";
            let usage = &call.response.usage;
            let tools = &call.response.tools_called;
            let part = LoopPart {
                tool_runs: call.tool_executions.len() as u64,
                tool_time: call
                    .tool_executions
                    .iter()
                    .map(|t| millis(t.duration_ms))
                    .fold(Duration::ZERO, Duration::saturating_add),
                tool_errors: call.tool_executions.iter().filter(|t| t.error).count() as u64,
                cache_break: call.cache_break_tokens.map(|_| call.cache_break_cost_usd),
                retry: call.resend_count > 0,
                compacted: call.compacted,
            };
            report.total.add(ok, usage, call.cost_usd, tools);
            report.total.add_loop(part);
            let unknown = || "unknown".to_owned();
            let session = call.conversation_id.clone().unwrap_or_else(unknown);
            let keys = [
                ("day", call.time.get(..10).unwrap_or("unknown").to_owned()),
                ("team", call.team.clone().unwrap_or_else(unknown)),
                ("user", call.user.clone().unwrap_or_else(unknown)),
                ("client", call.client.clone()),
                ("model", call.model.clone().unwrap_or_else(unknown)),
                ("session", session.clone()),
                ("agent", call.agent.clone().unwrap_or_else(unknown)),
            ];
            for (dimension, value) in keys {
                let totals = report
                    .by
                    .entry(dimension)
                    .or_default()
                    .entry(value)
                    .or_default();
                totals.add(ok, usage, call.cost_usd, tools);
                totals.add_loop(part);
            }
            let row = report.sessions.entry(session).or_default();
            if let Some(agent) = call.agent.as_ref().filter(|a| *a != crate::agentloop::MAIN) {
                row.subagents.insert(agent.clone());
            }
            if let Some(start) = call.start {
                let end = start + call.duration.unwrap_or(0.0);
                row.span_ms = Some(match row.span_ms {
                    Some((a, b)) => (a.min(start), b.max(end)),
                    None => (start, end),
                });
            }
            for run in &call.tool_executions {
                let tool = report.tools.entry(run.tool.clone()).or_default();
                tool.runs_ms.push(run.duration_ms);
                tool.errors += u64::from(run.error);
            }
        }
    }

    /// The report as printed: the totals, the skipped-line count, then one table per
    /// dimension of `by` (days in order, tools by total time, the others by cost, highest
    /// first), one line per value.
    pub fn text(&self, by: &[Dimension]) -> String {
        let t = &self.total;
        let mut out = format!("{} — {}\n", plural(t.calls, "call"), t.line());
        if self.skipped > 0 {
            out.push_str(&format!(
                "({} lines were not call records and were skipped)\n",
                self.skipped
            ));
        }
        for &dimension in by {
            if dimension == Dimension::Tool {
                out.push_str(&self.tool_table());
                continue;
            }
            let dimension = dimension.name();
            let Some(rows) = self.by.get(dimension) else {
                continue;
            };
            out.push_str(&format!("\nby {dimension}\n"));
            let mut rows: Vec<_> = rows.iter().collect();
            // Days in order; everything else by cost, the question a report answers.
            if dimension != "day" {
                rows.sort_by(|a, b| b.1.cost_usd.total_cmp(&a.1.cost_usd).then(a.0.cmp(b.0)));
            }
            for (value, totals) in rows {
                // Values come from traffic (a model's name, a subagent's): printable only.
                let shown = crate::telemetry::calls::visible(value);
                out.push_str(&format!(
                    "  {shown}: {} — {}",
                    plural(totals.calls, "call"),
                    totals.line()
                ));
                if dimension == "session" {
                    out.push_str(&self.session_extra(value, totals));
                }
                out.push('\n');
            }
        }
        out
    }

    /// A session's row after its totals: cache hit ratio, subagents, duration.
    fn session_extra(&self, session: &str, t: &Totals) -> String {
        let mut s = String::new();
        if t.input > 0 {
            s.push_str(&format!(
                ", cache hit {:.1}%",
                100.0 * t.cache_read as f64 / t.input as f64
            ));
        }
        let row = self.sessions.get(session).cloned().unwrap_or_default();
        s.push_str(&format!(
            ", {}",
            plural(row.subagents.len() as u64, "subagent")
        ));
        if !row.subagents.is_empty() {
            let names: Vec<&str> = row.subagents.iter().map(String::as_str).collect();
            s.push_str(&format!(" ({})", names.join(", ")));
        }
        if let Some((start, end)) = row.span_ms {
            let d = millis(end - start);
            s.push_str(&format!(", lasted {}", seconds(d)));
        }
        s
    }

    /// The `tool` table: by total time, longest first.
    fn tool_table(&self) -> String {
        let mut out = "\nby tool\n".to_owned();
        let mut rows: Vec<(&String, &ToolRow, f64)> = self
            .tools
            .iter()
            .map(|(name, row)| (name, row, row.runs_ms.iter().sum::<f64>()))
            .collect();
        rows.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(b.0)));
        for (name, row, total) in rows {
            let mut runs = row.runs_ms.clone();
            runs.sort_by(f64::total_cmp);
            let at = |q: f64| {
                let i = ((runs.len() as f64 * q).ceil() as usize).clamp(1, runs.len()) - 1;
                millis(runs[i])
            };
            let name = crate::telemetry::calls::visible(name);
            out.push_str(&format!(
                "  {name}: {}, {}, total {}, p50 {}, p95 {}\n",
                plural(runs.len() as u64, "run"),
                plural(row.errors, "error"),
                seconds(millis(total)),
                seconds(at(0.5)),
                seconds(at(0.95)),
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cli_knows_every_dimension() {
        use clap::ValueEnum as _;
        for d in Dimension::value_variants() {
            let name = d.name();
            assert_eq!(Dimension::from_str(name, false), Ok(*d), "{name}");
        }
    }

    #[test]
    fn sessions_and_tools_from_call_lines() {
        let lines = [
            r#"{"time":"2026-12-01T00:00:00Z","start":1000,"duration":500,"client":"claude-code","outcome":"ok","cost_usd":0.5,"conversation_id":"s1","agent":"main","response":{"usage":{"input":100,"cache_read":60}},"tool_executions":[{"tool":"Bash","call_id":"t1","duration_ms":1500,"error":false}]}"#,
            r#"{"time":"2026-12-01T00:00:02Z","start":3000,"duration":1000,"client":"claude-code","outcome":"ok","cost_usd":0.25,"conversation_id":"s1","agent":"Explore","response":{"usage":{"input":100,"cache_read":40}},"cache_break_tokens":10,"cache_break_cost_usd":0.01,"resend_count":1,"tool_executions":[{"tool":"Bash","duration_ms":500,"error":true},{"tool":"Read","duration_ms":20}]}"#,
            "not a call",
        ]
        .join("\n");
        let report = Report::read(lines.as_bytes()).expect("read");
        assert_eq!(report.skipped, 1);
        let text = report.text(&[Dimension::Session, Dimension::Agent, Dimension::Tool]);
        let session = text
            .lines()
            .find(|l| l.trim_start().starts_with("s1:"))
            .expect("session row");
        for part in [
            "2 calls",
            "cache hit 50.0%",
            "1 subagent (Explore)",
            "lasted 3.0s",
            "3 tools ran 2.0s (1 failed)",
            "1 cache break ($0.0100)",
            "1 retry",
        ] {
            assert!(session.contains(part), "{part:?} in {session}");
        }
        assert!(
            text.contains("  Bash: 2 runs, 1 error, total 2.0s, p50 500ms, p95 1.5s"),
            "{text}"
        );
        assert!(text.contains("  Read: 1 run, 0 errors"), "{text}");
        assert!(text.contains("  Explore: 1 call"), "{text}");
        // The default tables are the ones before `--by` existed.
        let default = report.text(DEFAULT);
        assert!(default.contains("by day") && !default.contains("by session"));
    }

    /// Found by the attacker review of issue 15: "a line that is not a call record is skipped and counted, never
    /// fatal", but a well-formed line with a huge `duration_ms` panics
    /// (`Duration::from_secs_f64`), and so does a sum of runs past `Duration::MAX`.
    #[test]
    fn a_huge_tool_duration_is_not_fatal() {
        let line = r#"{"time":"2026-12-01T00:00:00Z","client":"x","outcome":"ok","response":{"usage":{}},"tool_executions":[{"tool":"Bash","duration_ms":1e300}]}"#;
        let text = std::panic::catch_unwind(|| {
            Report::read(line.as_bytes())
                .map(|r| r.text(&[Dimension::Tool]))
                .ok()
        });
        assert!(text.is_ok(), "report panicked on a call line");
    }
}
