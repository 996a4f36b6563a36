//! `llmtap report [FILE]`: cost and tokens by day, team, user, client and model, from the
//! JSON call lines of `--calls-file` (or `--calls json` captured to a file).
//!
//! Owns: reading the lines (a line that is not a call record is skipped and counted, never
//! fatal) and the tables. Each call is counted once per dimension.

use std::{collections::BTreeMap, io::BufRead};

use serde::Deserialize;

use crate::{
    dialects::Usage,
    summary::{Totals, plural},
};

#[derive(Deserialize)]
struct Line {
    time: String,
    team: Option<String>,
    user: Option<String>,
    client: String,
    model: Option<String>,
    outcome: String,
    cost_usd: Option<f64>,
    response: Response,
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
}

impl Report {
    /// Reads JSON call lines from `input` to its end. Blank lines are ignored; a line that
    /// is not a call record is counted in [`Report::skipped`]. A call missing `team`, `user`
    /// or `model` is counted under `unknown`; its day is the first 10 characters of `time`
    /// (RFC 3339, UTC). Fails only when reading fails (I/O, or a line that is not UTF-8).
    pub fn read(input: impl BufRead) -> std::io::Result<Report> {
        let mut report = Report::default();
        for line in input.lines() {
            let line = line?;
            if line.trim().is_empty() {
                continue;
            }
            let Ok(call) = serde_json::from_str::<Line>(&line) else {
                report.skipped += 1;
                continue;
            };
            let ok = call.outcome == "ok";
            let usage = &call.response.usage;
            let tools = &call.response.tools_called;
            report.total.add(ok, usage, call.cost_usd, tools);
            let unknown = || "unknown".to_owned();
            let keys = [
                ("day", call.time.get(..10).unwrap_or("unknown").to_owned()),
                ("team", call.team.clone().unwrap_or_else(unknown)),
                ("user", call.user.clone().unwrap_or_else(unknown)),
                ("client", call.client.clone()),
                ("model", call.model.clone().unwrap_or_else(unknown)),
            ];
            for (dimension, value) in keys {
                report
                    .by
                    .entry(dimension)
                    .or_default()
                    .entry(value)
                    .or_default()
                    .add(ok, usage, call.cost_usd, tools);
            }
        }
        Ok(report)
    }

    /// The report as printed: the totals, the skipped-line count, then one table per
    /// dimension (days in order, the others by cost, highest first), one line per value.
    pub fn text(&self) -> String {
        let t = &self.total;
        let mut out = format!("{} — {}\n", plural(t.calls, "call"), t.line());
        if self.skipped > 0 {
            out.push_str(&format!(
                "({} lines were not call records and were skipped)\n",
                self.skipped
            ));
        }
        for dimension in ["day", "team", "user", "client", "model"] {
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
                out.push_str(&format!(
                    "  {value}: {} — {}\n",
                    plural(totals.calls, "call"),
                    totals.line()
                ));
            }
        }
        out
    }
}
