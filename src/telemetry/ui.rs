//! The web UI on the admin listener: the call list (live over Server-Sent Events), a call,
//! a session's waterfall, and an overview of cost and tokens, all read from the history.
//!
//! Owns: the pages' view of a call (built from its JSON call line, the one shape both the
//! history and a live call have), the HTML (askama templates in `templates/`, compiled in),
//! the embedded assets (`assets/`: htmx and its SSE extension, vendored from npm at pinned
//! versions, and llmtap's CSS), the SSE stream of finished calls, and the headers every page
//! carries (a strict Content-Security-Policy: nothing but this listener, no inline script or
//! style; charts and bars are SVG attributes, not styles).
//! Does not own: who may see it (`admin`), the data (`history`).

use std::{collections::BTreeMap, sync::Arc, time::SystemTime};

use askama::Template;
use serde_json::Value;

use super::history::{Content, Filter, OverviewRow, Store};

/// The Content-Security-Policy of every UI response: this origin only, no inline code.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' \
     data:; connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

/// An embedded asset: its path under `/assets/`, content type and bytes.
pub const ASSETS: &[(&str, &str, &[u8])] = &[
    (
        "htmx.min.js",
        "text/javascript",
        include_bytes!("../../assets/vendor/htmx-2.0.11.min.js"),
    ),
    (
        "sse.min.js",
        "text/javascript",
        include_bytes!("../../assets/vendor/htmx-ext-sse-2.2.4.min.js"),
    ),
    (
        "app.css",
        "text/css",
        include_bytes!("../../assets/app.css"),
    ),
    (
        "favicon.svg",
        "image/svg+xml",
        include_bytes!("../../assets/favicon.svg"),
    ),
];

/// Calls per page of the list.
pub const PAGE: usize = 100;

/// One segment of a row's token bar: its kind, count and place in a 100-wide box.
#[derive(Debug, Clone)]
pub struct Segment {
    /// `input` (uncached), `cache_read`, `cache_write`, `output`.
    pub kind: &'static str,
    /// Tokens.
    pub count: u64,
    /// Left edge, 0–100.
    pub x: String,
    /// Width, 0–100.
    pub width: String,
}

/// A call as the pages show it, from its JSON call line.
#[derive(Debug, Clone)]
pub struct CallView {
    /// The call's id.
    pub id: String,
    /// `HH:MM:SS.mmm`, UTC.
    pub time: String,
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    /// Start, Unix milliseconds.
    pub start_ms: f64,
    /// Duration in milliseconds.
    pub duration_ms: f64,
    /// The agent or SDK.
    pub client: String,
    /// `gen_ai.provider.name`.
    pub provider: String,
    /// The wire format.
    pub api: String,
    /// `chat`, `generate_content`, …
    pub operation: String,
    /// The model, `?` when unknown.
    pub model: String,
    /// `ok`, `error`, `cancelled`.
    pub outcome: String,
    /// `$0.0123`, or `?` when unpriced.
    pub cost: String,
    /// Cost in USD (0 when unpriced).
    pub cost_usd: f64,
    /// Time to first token, `812 ms`, or `-`.
    pub ttft: String,
    /// First byte, or `-`.
    pub first_byte: String,
    /// `2310 ms`.
    pub duration: String,
    /// The tools the model called, comma-separated.
    pub tools: String,
    /// The session, if any.
    pub session: Option<String>,
    /// `main`, a subagent, or `-`.
    pub agent: String,
    /// The token bar.
    pub bar: Vec<Segment>,
    /// All tokens, input and output.
    pub tokens_total: u64,
    /// What the bar shows, for screen readers.
    pub tokens_label: String,
    /// The call broke its thread's prompt cache.
    pub cache_break: bool,
    /// The whole call line, parsed.
    pub line: Value,
}

fn ms(v: &Value) -> String {
    v.as_f64()
        .map_or_else(|| "-".to_owned(), |ms| format!("{ms:.0} ms"))
}

fn text(v: &Value) -> Option<String> {
    v.as_str().map(str::to_owned)
}

impl CallView {
    /// Reads a call line; `None` when it is not one.
    pub fn from_line(line: &str) -> Option<CallView> {
        let v: Value = serde_json::from_str(line).ok()?;
        let id = text(&v["id"])?;
        let time = text(&v["time"]).unwrap_or_default();
        let usage = &v["response"]["usage"];
        let n = |k: &str| usage[k].as_u64().unwrap_or(0);
        let input = n("input");
        let cache_read = n("cache_read");
        let cache_write = n("cache_write_5m") + n("cache_write_1h");
        let output = n("output");
        let fresh = input.saturating_sub(cache_read + cache_write);
        let total = input + output;
        let mut bar = Vec::new();
        let mut x = 0.0;
        for (kind, count) in [
            ("input", fresh),
            ("cache_read", cache_read),
            ("cache_write", cache_write),
            ("output", output),
        ] {
            if count == 0 || total == 0 {
                continue;
            }
            let width = count as f64 * 100.0 / total as f64;
            bar.push(Segment {
                kind,
                count,
                x: format!("{x:.2}"),
                width: format!("{width:.2}"),
            });
            x += width;
        }
        let cost_usd = v["cost_usd"].as_f64();
        let tools: Vec<&str> = v["response"]["tools_called"]
            .as_array()
            .map(|a| a.iter().filter_map(Value::as_str).collect())
            .unwrap_or_default();
        Some(CallView {
            id,
            date: time.get(..10).unwrap_or_default().to_owned(),
            time: time.get(11..23).unwrap_or_default().to_owned(),
            start_ms: v["start"].as_f64().unwrap_or(0.0),
            duration_ms: v["duration"].as_f64().unwrap_or(0.0),
            client: text(&v["client"]).unwrap_or_default(),
            provider: text(&v["provider"]).unwrap_or_default(),
            api: text(&v["api"]).unwrap_or_default(),
            operation: text(&v["operation"]).unwrap_or_default(),
            model: text(&v["model"]).unwrap_or_else(|| "?".to_owned()),
            outcome: text(&v["outcome"]).unwrap_or_default(),
            cost: cost_usd.map_or_else(|| "?".to_owned(), |c| format!("${c:.4}")),
            cost_usd: cost_usd.unwrap_or(0.0),
            ttft: ms(&v["ttft"]),
            first_byte: ms(&v["first_byte"]),
            duration: ms(&v["duration"]),
            tools: tools.join(", "),
            session: text(&v["conversation_id"]),
            agent: text(&v["agent"]).unwrap_or_else(|| "-".to_owned()),
            tokens_label: format!(
                "{fresh} input, {cache_read} cache read, {cache_write} cache write, {output} output"
            ),
            bar,
            tokens_total: total,
            cache_break: !v["cache_break_tokens"].is_null(),
            line: v,
        })
    }
}

/// One row of the list: the template the live stream also renders.
#[derive(Template)]
#[template(path = "row.html")]
pub struct Row<'a> {
    /// The call.
    pub c: &'a CallView,
}

#[derive(Template)]
#[template(path = "calls.html")]
struct CallsPage {
    calls: Vec<CallView>,
    filters: Vec<(&'static str, String)>,
    live: bool,
    next: Option<String>,
    note: Option<String>,
}

#[derive(Template)]
#[template(path = "call.html")]
struct CallPage {
    c: CallView,
    usage: Vec<(&'static str, String)>,
    prices: Vec<(String, String, String, String)>,
    cost_source: String,
    billing: String,
    request: Vec<(&'static str, String)>,
    response: Vec<(&'static str, String)>,
    content: Option<Content>,
    line: String,
}

/// A bar of the session waterfall, in a 1000-wide box.
struct Bar {
    class: &'static str,
    x: String,
    y: u32,
    width: String,
    label_x: String,
    text_y: u32,
    label: String,
    title: String,
}

struct SessionRow {
    c: CallView,
    offset: String,
    cumulative: String,
    cumulative_tokens: u64,
    depth: u8,
    cache_break: bool,
}

#[derive(Template)]
#[template(path = "session.html")]
struct SessionPage {
    id: String,
    calls: Vec<SessionRow>,
    bars: Vec<Bar>,
    height: u32,
    span: String,
    cost: String,
    tokens: u64,
    cache_breaks: usize,
}

struct ChartRect {
    series: usize,
    x: String,
    y: String,
    width: String,
    height: String,
    title: String,
}

struct Tick {
    x: String,
    label: String,
}

struct Chart {
    title: String,
    max: String,
    rects: Vec<ChartRect>,
    ticks: Vec<Tick>,
    legend: Vec<(usize, String, String)>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    days: u32,
    dimensions: Vec<(&'static str, bool)>,
    charts: Vec<Chart>,
}

/// A page, or why there is none.
pub enum Page {
    /// HTML to send with 200.
    Html(String),
    /// 404 with this message.
    NotFound(String),
    /// 500: the history could not be read.
    Failed(String),
}

fn render(t: &impl Template) -> Page {
    t.render()
        .map_or_else(|e| Page::Failed(e.to_string()), Page::Html)
}

/// `key=value&…` of a query string, percent-decoded (`+` is a space).
pub fn query(q: Option<&str>) -> BTreeMap<String, String> {
    q.unwrap_or_default()
        .split('&')
        .filter_map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let decode = |s: &str| crate::wire::percent_decode(&s.replace('+', " "));
            Some((decode(k)?, decode(v)?))
        })
        .filter(|(k, v)| !k.is_empty() && !v.is_empty())
        .collect()
}

/// The call list: filtered, paged, live when it is the first page of everything.
pub fn calls(store: Option<&Store>, q: &BTreeMap<String, String>) -> Page {
    let names = [
        "since", "until", "session", "client", "provider", "model", "team", "user", "agent",
        "outcome",
    ];
    let get = |k: &str| q.get(k).cloned();
    let when = |k: &str| {
        q.get(k)
            .and_then(|d| crate::cli::parse_date(d).ok())
            .and_then(|t| t.duration_since(SystemTime::UNIX_EPOCH).ok())
            .and_then(|d| i64::try_from(d.as_millis()).ok())
    };
    let filter = Filter {
        since_ms: when("since"),
        until_ms: when("until"),
        session: get("session"),
        client: get("client"),
        provider: get("provider"),
        model: get("model"),
        team: get("team"),
        user: get("user"),
        agent: get("agent"),
        outcome: get("outcome"),
    };
    let before = q.get("before").map(String::as_str);
    let (calls, note) = match store {
        Some(store) => match store.list(&filter, before, PAGE) {
            Ok(lines) => (
                lines
                    .iter()
                    .filter_map(|l| CallView::from_line(l))
                    .collect(),
                None,
            ),
            Err(e) => return Page::Failed(e.to_string()),
        },
        None => (
            Vec::new(),
            Some(
                "No history is kept (--db none): only calls made while this page is open appear."
                    .to_owned(),
            ),
        ),
    };
    let next = (calls.len() == PAGE).then(|| {
        let mut params: Vec<String> = names
            .iter()
            .filter_map(|k| Some(format!("{k}={}", encode(q.get(*k)?))))
            .collect();
        if let Some(last) = calls.last() {
            params.push(format!("before={}", last.id));
        }
        format!("/?{}", params.join("&"))
    });
    let live = before.is_none() && names.iter().all(|k| !q.contains_key(*k));
    render(&CallsPage {
        filters: names
            .iter()
            .map(|k| (*k, q.get(*k).cloned().unwrap_or_default()))
            .collect(),
        calls,
        live,
        next,
        note,
    })
}

fn encode(s: &str) -> String {
    percent_encoding::utf8_percent_encode(s, percent_encoding::NON_ALPHANUMERIC).to_string()
}

fn facts(v: &Value, keys: &[(&'static str, &str)]) -> Vec<(&'static str, String)> {
    keys.iter()
        .filter_map(|(label, pointer)| {
            let x = v.pointer(pointer)?;
            let shown = match x {
                Value::Null => return None,
                Value::String(s) => s.clone(),
                Value::Array(a) if a.is_empty() => return None,
                Value::Array(a) => a
                    .iter()
                    .map(|i| i.as_str().map_or_else(|| i.to_string(), str::to_owned))
                    .collect::<Vec<_>>()
                    .join(", "),
                other => other.to_string(),
            };
            Some((*label, shown))
        })
        .collect()
}

/// One call: `/calls/{id}`.
pub fn call(store: Option<&Store>, id: &str) -> Page {
    let Some(store) = store else {
        return Page::NotFound("no history is kept (--db none)".to_owned());
    };
    let line = match store.line(id) {
        Ok(Some(line)) => line,
        Ok(None) => return Page::NotFound(format!("no call {id} in the history")),
        Err(e) => return Page::Failed(e.to_string()),
    };
    let Some(c) = CallView::from_line(&line) else {
        return Page::Failed("the stored call line is not readable".to_owned());
    };
    let content = match store.content(id) {
        Ok(content) => content,
        Err(e) => return Page::Failed(e.to_string()),
    };
    let v = &c.line;
    let usage = [
        "input",
        "cache_read",
        "cache_write_5m",
        "cache_write_1h",
        "output",
        "reasoning",
    ]
    .into_iter()
    .map(|k| {
        (
            k,
            v["response"]["usage"][k]
                .as_u64()
                .map_or_else(|| "-".to_owned(), |n| n.to_string()),
        )
    })
    .collect();
    let request = facts(
        v,
        &[
            ("model", "/request/model"),
            ("stream", "/request/stream"),
            ("max tokens", "/request/max_tokens"),
            ("temperature", "/request/temperature"),
            ("system prompt (characters)", "/request/system_chars"),
            ("messages", "/request/messages"),
            ("tools offered", "/request/tools_offered"),
            ("reasoning level", "/request/reasoning_level"),
            ("path", "/path"),
            ("team", "/team"),
            ("user", "/user"),
            ("agent", "/agent"),
            ("thread", "/thread_id"),
        ],
    );
    let response = facts(
        v,
        &[
            ("status", "/status"),
            ("model", "/response/model"),
            ("id", "/response/id"),
            ("finish reasons", "/response/finish_reasons"),
            ("tools called", "/response/tools_called"),
            ("error", "/error_type"),
            ("context utilization", "/context_utilization"),
            ("cache break tokens", "/cache_break_tokens"),
            ("retry", "/retry_reason"),
            ("parse error", "/parse_error"),
        ],
    );
    let prices = v["cost_parts"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|p| p["tokens"].as_u64().unwrap_or(0) > 0)
        .map(|p| {
            (
                text(&p["kind"]).unwrap_or_default(),
                p["tokens"].as_u64().unwrap_or(0).to_string(),
                format!("${:.2}", p["usd_per_mtok"].as_f64().unwrap_or(0.0)),
                format!("${:.4}", p["usd"].as_f64().unwrap_or(0.0)),
            )
        })
        .collect();
    // Captured content as the conventions' JSON, indented for reading.
    let content = content.map(|c| Content {
        system: c.system.map(pretty),
        input: c.input.map(pretty),
        tools: c.tools.map(pretty),
        output: c.output.map(pretty),
        truncated: c.truncated,
    });
    render(&CallPage {
        usage,
        prices,
        cost_source: text(&v["cost_source"]).unwrap_or_else(|| "unpriced".to_owned()),
        billing: text(&v["billing"]).unwrap_or_default(),
        request,
        response,
        content,
        line: serde_json::to_string_pretty(v).unwrap_or_else(|_| line.clone()),
        c,
    })
}

/// `json` indented, or as it is when it does not parse.
fn pretty(json: String) -> String {
    serde_json::from_str::<Value>(&json)
        .ok()
        .and_then(|v| serde_json::to_string_pretty(&v).ok())
        .unwrap_or(json)
}

/// A session: `/sessions/{id}`, its calls and tool runs on one time axis.
pub fn session(store: Option<&Store>, id: &str) -> Page {
    let Some(store) = store else {
        return Page::NotFound("no history is kept (--db none)".to_owned());
    };
    let lines = match store.session(id) {
        Ok(lines) if !lines.is_empty() => lines,
        Ok(_) => return Page::NotFound(format!("no session {id} in the history")),
        Err(e) => return Page::Failed(e.to_string()),
    };
    let calls: Vec<CallView> = lines
        .iter()
        .filter_map(|l| CallView::from_line(l))
        .collect();
    let t0 = calls.iter().map(|c| c.start_ms).fold(f64::MAX, f64::min);
    let end = calls
        .iter()
        .map(|c| c.start_ms + c.duration_ms)
        .fold(t0, f64::max);
    let span = (end - t0).max(1.0);
    let x = |ms: f64| (ms - t0) / span * 960.0 + 20.0;
    let mut bars = Vec::new();
    let mut y = 4;
    let mut rows = Vec::new();
    let mut cumulative = 0.0;
    let mut cumulative_tokens = 0;
    for c in &calls {
        // Subagents sit under the main agent's calls, one step in.
        let depth = u8::from(c.agent != "main" && c.agent != "-");
        let left = x(c.start_ms);
        let width = (c.duration_ms / span * 960.0).max(1.0);
        bars.push(Bar {
            class: if c.cache_break {
                "call cache-break"
            } else if depth > 0 {
                "call subagent"
            } else {
                "call"
            },
            x: format!("{left:.1}"),
            y,
            width: format!("{width:.1}"),
            label_x: format!("{:.1}", left + 2.0 + f64::from(depth) * 10.0),
            text_y: y + 12,
            label: format!("{} {}", c.agent, c.model),
            title: format!("{} {} {} {}", c.time, c.model, c.duration, c.cost),
        });
        y += 20;
        for run in c.line["tool_executions"].as_array().into_iter().flatten() {
            let duration = run["duration_ms"].as_f64().unwrap_or(0.0);
            let start = c.start_ms - duration;
            let tool = run["tool"].as_str().unwrap_or("tool");
            bars.push(Bar {
                class: if run["error"].as_bool() == Some(true) {
                    "tool tool-error"
                } else {
                    "tool"
                },
                x: format!("{:.1}", x(start).max(20.0)),
                y,
                width: format!("{:.1}", (duration / span * 960.0).max(1.0)),
                label_x: format!("{:.1}", x(start).max(20.0) + 2.0),
                text_y: y + 12,
                label: format!("{tool} {duration:.0} ms"),
                title: format!("execute_tool {tool}: {duration:.0} ms"),
            });
            y += 20;
        }
        cumulative += c.cost_usd;
        cumulative_tokens += c.tokens_total;
        rows.push(SessionRow {
            offset: format!("{:.1} s", (c.start_ms - t0) / 1000.0),
            cumulative: format!("${cumulative:.4}"),
            cumulative_tokens,
            depth,
            cache_break: c.cache_break,
            c: c.clone(),
        });
    }
    render(&SessionPage {
        id: id.to_owned(),
        tokens: calls.iter().map(|c| c.tokens_total).sum(),
        cost: format!("${cumulative:.4}"),
        cache_breaks: calls.iter().filter(|c| c.cache_break).count(),
        span: format!("{:.1} s", span / 1000.0),
        height: y + 4,
        bars,
        calls: rows,
    })
}

/// Cost and tokens over time: `/overview?by=model&days=7`.
pub fn overview(store: Option<&Store>, q: &BTreeMap<String, String>) -> Page {
    let Some(store) = store else {
        return Page::NotFound("no history is kept (--db none)".to_owned());
    };
    let by = q
        .get("by")
        .filter(|b| ["model", "team", "user", "client"].contains(&b.as_str()))
        .cloned()
        .unwrap_or_else(|| "model".to_owned());
    let days: u32 = q
        .get("days")
        .and_then(|d| d.parse().ok())
        .filter(|d| (1..=366).contains(d))
        .unwrap_or(7);
    let now = SystemTime::now()
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| i64::try_from(d.as_millis()).unwrap_or(i64::MAX));
    let bucket: i64 = if days <= 2 { 3_600_000 } else { 86_400_000 };
    let since = (now - i64::from(days) * 86_400_000) / bucket * bucket;
    let rows = match store.overview(since, bucket, &by) {
        Ok(rows) => rows,
        Err(e) => return Page::Failed(e.to_string()),
    };
    let charts = vec![
        chart(
            "Cost (USD)",
            &rows,
            since,
            now,
            bucket,
            |r| r.2,
            |v| format!("${v:.2}"),
        ),
        chart(
            "Tokens (input + output)",
            &rows,
            since,
            now,
            bucket,
            |r| (r.3 + r.4) as f64,
            |v| format!("{v:.0}"),
        ),
    ];
    render(&OverviewPage {
        days,
        dimensions: ["model", "team", "user", "client"]
            .into_iter()
            .map(|d| (d, d == by))
            .collect(),
        charts,
    })
}

/// A stacked bar chart of `value` per bucket and series, in a 1000×200 box.
fn chart(
    title: &str,
    rows: &[OverviewRow],
    since: i64,
    now: i64,
    bucket: i64,
    value: impl Fn(&OverviewRow) -> f64,
    show: impl Fn(f64) -> String,
) -> Chart {
    // Series by total, largest first; past 8, the rest is `other`.
    let mut totals: BTreeMap<&str, f64> = BTreeMap::new();
    for r in rows {
        *totals.entry(r.1.as_str()).or_default() += value(r);
    }
    let mut order: Vec<(&str, f64)> = totals.into_iter().collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1));
    let index: std::collections::HashMap<&str, usize> = order
        .iter()
        .enumerate()
        .map(|(i, (n, _))| (*n, i.min(8)))
        .collect();
    let series = |name: &str| index.get(name).copied().unwrap_or(8);
    let buckets = ((now - since) / bucket + 1).max(1);
    let mut stacks: BTreeMap<i64, f64> = BTreeMap::new();
    for r in rows {
        *stacks.entry(r.0).or_default() += value(r);
    }
    let max = stacks
        .values()
        .copied()
        .fold(0.0, f64::max)
        .max(f64::MIN_POSITIVE);
    let width = 960.0 / buckets as f64;
    // One rect per bucket and series (past the top 8, one `other`), whatever the rows.
    let mut cells: BTreeMap<(i64, usize), f64> = BTreeMap::new();
    for r in rows {
        *cells.entry((r.0, series(&r.1))).or_default() += value(r);
    }
    let names: Vec<&str> = order.iter().take(8).map(|(n, _)| *n).collect();
    let mut heights: BTreeMap<i64, f64> = BTreeMap::new();
    let mut rects = Vec::new();
    for ((at, s), v) in cells {
        if v <= 0.0 {
            continue;
        }
        let h = v / max * 190.0;
        let below = heights.entry(at).or_default();
        let i = ((at - since) / bucket) as f64;
        rects.push(ChartRect {
            series: s,
            x: format!("{:.1}", 40.0 + i * width),
            y: format!("{:.1}", 200.0 - *below - h),
            width: format!("{:.1}", (width - 1.0).max(1.0)),
            height: format!("{h:.1}"),
            title: format!("{}: {}", names.get(s).copied().unwrap_or("other"), show(v)),
        });
        *below += h;
    }
    let step = (buckets / 7).max(1);
    let ticks = (0..buckets)
        .step_by(usize::try_from(step).unwrap_or(1))
        .map(|i| {
            let t = since + i * bucket;
            let label = super::calls::rfc3339(
                SystemTime::UNIX_EPOCH
                    + std::time::Duration::from_millis(u64::try_from(t).unwrap_or(0)),
            );
            Tick {
                x: format!("{:.1}", 40.0 + i as f64 * width),
                label: if bucket < 86_400_000 {
                    label.get(5..13).unwrap_or_default().replace('T', " ")
                } else {
                    label.get(5..10).unwrap_or_default().to_owned()
                },
            }
        })
        .collect();
    Chart {
        title: title.to_owned(),
        max: show(max),
        rects,
        ticks,
        legend: order
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, (name, total))| (i, (*name).to_owned(), show(*total)))
            .collect(),
    }
}

/// One Server-Sent Event carrying a finished call's row, for the live list
/// (`event: call`, the row's HTML as its data).
pub fn event(record: &Arc<crate::exchange::CallRecord>) -> Option<String> {
    let view = CallView::from_line(&super::calls::json(record))?;
    let html = Row { c: &view }.render().ok()?;
    let mut out = String::from("event: call\n");
    // A lone CR ends an SSE line too (HTML escaping leaves it): as a character reference it
    // cannot split the event or start a field.
    let html = html.replace('\r', "&#13;");
    for line in html.lines() {
        out.push_str("data: ");
        out.push_str(line);
        out.push('\n');
    }
    out.push('\n');
    Some(out)
}
