//! The call line: one line per finished call on stdout (`--calls text|json|off`).
//!
//! Text is for people watching a terminal; JSON is one object per line with every field of
//! the [`CallRecord`], for `jq` and log shippers. Neither ever holds prompt text, headers or
//! query strings: the record does not contain them.

use std::{io::Write, time::Duration};

use time::{OffsetDateTime, format_description::well_known::Rfc3339};

use crate::{config::CallsFormat, exchange::CallRecord};

/// Writes each finished call: its line on stdout in the `--calls` format, and its JSON line
/// appended to `--calls-file`. Runs on the telemetry thread, never on the data path.
pub struct CallWriter {
    format: CallsFormat,
    out: Box<dyn Write + Send>,
    /// `--calls-file`: every call as a JSON line, appended (durable history for `report`).
    file: Option<std::fs::File>,
    file_failed: bool,
}

impl CallWriter {
    /// A writer of `format` lines to `out` (stdout, or a sink), and of JSON lines to `file`.
    pub fn new(
        format: CallsFormat,
        out: Box<dyn Write + Send>,
        file: Option<std::fs::File>,
    ) -> CallWriter {
        CallWriter {
            format,
            out,
            file,
            file_failed: false,
        }
    }

    /// Writes `record`'s lines. Never fails: a broken stdout is ignored and a failing
    /// `--calls-file` is warned about once; the metrics still count the call.
    pub fn write(&mut self, record: &CallRecord) {
        if let Some(file) = &mut self.file {
            // One write per line (O_APPEND): lines from one process never interleave.
            let line = format!("{}\n", json(record));
            if let Err(err) = file.write_all(line.as_bytes())
                && !std::mem::replace(&mut self.file_failed, true)
            {
                tracing::warn!(%err, "cannot append to --calls-file; calls are still counted");
            }
        }
        let line = match self.format {
            CallsFormat::Off => return,
            CallsFormat::Text => text(record),
            CallsFormat::Json => json(record),
        };
        // A closed stdout must not take the proxy down; the metrics still count the call.
        let _ = writeln!(self.out, "{line}");
        let _ = self.out.flush();
    }

    /// Flushes stdout (the calls file is unbuffered: each line is one write).
    pub fn flush(&mut self) {
        let _ = self.out.flush();
    }
}

/// `t` as RFC 3339 in UTC (`…Z`, the call line's `time`); the epoch if it cannot be
/// formatted.
pub fn rfc3339(t: std::time::SystemTime) -> String {
    OffsetDateTime::from(t)
        .format(&Rfc3339)
        .unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// One JSON object: the record, plus `time` and the resolved `model` for convenience.
pub fn json(r: &CallRecord) -> String {
    let mut v = serde_json::to_value(r).unwrap_or_default();
    if let Some(obj) = v.as_object_mut() {
        obj.insert("time".into(), rfc3339(r.start).into());
        obj.insert("model".into(), r.model().into());
    }
    v.to_string()
}

fn ms(d: Duration) -> String {
    if d < Duration::from_secs(10) {
        format!("{}ms", d.as_millis())
    } else {
        format!("{:.1}s", d.as_secs_f64())
    }
}

fn count(n: Option<u64>) -> String {
    n.map_or_else(|| "?".to_owned(), |n| n.to_string())
}

/// A traffic-derived value (model, tool names) as the text line may show it: every character
/// that is not visible ASCII becomes `?`, so an upstream cannot forge a line (a newline) or
/// split a field (a space). Error types are cleaned where they are made
/// (`vocab::ErrorType::api`); team and user are label values already.
pub(crate) fn visible(value: &str) -> std::borrow::Cow<'_, str> {
    if value.bytes().all(|b| b.is_ascii_graphic()) {
        return std::borrow::Cow::Borrowed(value);
    }
    value
        .chars()
        .map(|c| if c.is_ascii_graphic() { c } else { '?' })
        .collect::<String>()
        .into()
}

/// `14:03:12.345Z claude-code anthropic claude-opus-4-8 200 ok in=153 out=42 cache r=100 w=20/30 ttft=812ms dur=2310ms tools=Bash`
pub fn text(r: &CallRecord) -> String {
    let time = OffsetDateTime::from(r.start);
    let mut line = format!(
        "{:02}:{:02}:{:02}.{:03}Z {} {} {} {} {}",
        time.hour(),
        time.minute(),
        time.second(),
        time.millisecond(),
        r.client.as_str(),
        r.provider.as_str(),
        visible(r.model().unwrap_or("?")),
        r.status.map_or_else(|| "---".to_owned(), |s| s.to_string()),
        r.outcome.as_str(),
    );
    if let Some(error) = &r.error_type {
        line.push_str(&format!("({error})"));
    }
    let u = &r.response.usage;
    if r.usage_missing || !u.is_empty() {
        line.push_str(&format!(" in={} out={}", count(u.input), count(u.output)));
    }
    // Only what the provider can report: OpenAI and Gemini have no cache writes.
    if u.cache_read.is_some() || u.cache_write_5m.is_some() || u.cache_write_1h.is_some() {
        line.push_str(&format!(" cache r={}", count(u.cache_read)));
        if u.cache_write_5m.is_some() || u.cache_write_1h.is_some() {
            line.push_str(&format!(
                " w5m={} w1h={}",
                count(u.cache_write_5m),
                count(u.cache_write_1h)
            ));
        }
    }
    if let Some(reasoning) = u.reasoning {
        line.push_str(&format!(" reasoning={reasoning}"));
    }
    if let Some(ttft) = r.ttft {
        line.push_str(&format!(" ttft={}", ms(ttft)));
    }
    line.push_str(&format!(" dur={}", ms(r.duration)));
    match r.cost_usd {
        Some(cost) => line.push_str(&format!(" cost=${cost:.4}")),
        None if r.cost_unknown() => line.push_str(" cost=?"),
        None => {}
    }
    if r.billing == crate::caller::Billing::Subscription {
        line.push_str(" (subscription)");
    }
    if !r.response.tools_called.is_empty() {
        line.push_str(&format!(
            " tools={}",
            visible(&r.response.tools_called.join(","))
        ));
    }
    if let Some(team) = &r.team {
        line.push_str(&format!(" team={team}"));
    }
    if let Some(user) = &r.user {
        line.push_str(&format!(" user={user}"));
    }
    if let Some(kind) = r.parse_error {
        line.push_str(&format!(" parse_error={}", kind.as_str()));
    }
    line
}

/// A realistic finished call (a streamed Claude Code turn with cache reads and writes and a
/// Bash tool call), for tests and benchmarks: `benches/history.rs` fills a history with it.
#[doc(hidden)]
pub fn sample_record() -> CallRecord {
    use crate::{
        caller::Client,
        dialects::{Operation, RequestFacts, ResponseFacts, Usage},
        providers::Provider,
        vocab::Outcome,
    };
    use std::time::SystemTime;
    CallRecord {
        id: crate::exchange::CallId::parse("01937a3c-5d2e-7b8a-9c0d-1e2f3a4b5c6d")
            .expect("a UUIDv7"),
        start: SystemTime::UNIX_EPOCH + Duration::from_millis(1_764_079_392_345),
        duration: Duration::from_millis(2310),
        ttft: Some(Duration::from_millis(812)),
        first_byte: Some(Duration::from_millis(420)),
        chunk_gaps: None,
        provider: std::sync::Arc::new(Provider::named("anthropic", &["anthropic"])),
        api: "anthropic_messages",
        operation: Operation::Chat,
        host: "api.anthropic.com".into(),
        port: 443,
        method: "POST".into(),
        path: "/v1/messages".into(),
        status: Some(200),
        stream: true,
        client: Client::ClaudeCode,
        conversation_id: None,
        traceparent: None,
        team: Some("platform".into()),
        user: None,
        billing: crate::caller::Billing::Api,
        cost_usd: Some(0.123456),
        cost_source: crate::vocab::CostSource::Table,
        table_cost_usd: None,
        cost_parts: Vec::new(),
        request: Some(RequestFacts {
            model: Some("claude-opus-4-8".into()),
            ..Default::default()
        }),
        response: ResponseFacts {
            model: Some("claude-opus-4-8".into()),
            usage: Usage {
                input: Some(19199),
                output: Some(131),
                cache_read: Some(17352),
                cache_write_5m: Some(0),
                cache_write_1h: Some(1843),
                reasoning: None,
            },
            tools_called: vec!["Bash".into()],
            complete: true,
            ..Default::default()
        },
        outcome: Outcome::Ok,
        error_type: None,
        parse_error: None,
        usage_missing: false,
        observe_skipped: None,
        ratelimits: None,
        agent_loop: crate::exchange::LoopFacts::default(),
        loop_request: None,
        client_is_subagent: false,
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn record() -> CallRecord {
        sample_record()
    }

    #[test]
    fn text_line_reads_at_a_glance() {
        assert_eq!(
            text(&record()),
            "14:03:12.345Z claude-code anthropic claude-opus-4-8 200 ok in=19199 out=131 \
             cache r=17352 w5m=0 w1h=1843 ttft=812ms dur=2310ms cost=$0.1235 tools=Bash team=platform"
        );
    }

    /// Bug (found by review): a model or tool name from the upstream reached the text call
    /// line as sent, so a newline in it forged a second call line on stdout.
    #[test]
    fn traffic_derived_names_cannot_forge_a_text_call_line() {
        let mut r = record();
        r.response.model = Some("m\n14:00:00.000Z codex".into());
        r.response.tools_called = vec!["Bash\r\nx y".into()];
        let line = text(&r);
        assert!(!line.contains('\n') && !line.contains('\r'), "{line}");
        assert!(line.contains(" m?14:00:00.000Z?codex "), "{line}");
        assert!(line.contains(" tools=Bash??x?y"), "{line}");
    }

    #[test]
    fn json_line_has_every_field_and_the_resolved_model() {
        let v: serde_json::Value = serde_json::from_str(&json(&record())).expect("json");
        assert_eq!(v["time"], "2025-11-25T14:03:12.345Z");
        assert_eq!(v["model"], "claude-opus-4-8");
        assert_eq!(v["ttft"], 812.0);
        assert_eq!(v["response"]["usage"]["cache_write_1h"], 1843);
        assert_eq!(v["response"]["usage"]["reasoning"], serde_json::Value::Null);
        assert_eq!(v["outcome"], "ok");
        assert_eq!(v["client"], "claude-code");
    }
}
