//! The finished call: [`CallRecord`], and the stage that builds it off the data path
//! ([`Pending::into_record`]: deferred parsing, cross-side rules, the outcome rules).

use std::{
    panic::{AssertUnwindSafe, catch_unwind},
    time::{Duration, SystemTime},
};

use serde::Serialize;

use super::{
    End, RequestCapture,
    head::{RequestHead, TraceParent},
    pipeline::TREE_PER_BYTE,
};
use crate::{
    budget::{Charge, ChargedBuf, Skipped},
    caller::{Billing, Client},
    dialects::{ParseError, RequestFacts, ResponseFacts},
    providers::Route,
    vocab::{ErrorType, Outcome},
};

/// Everything known about a finished call. Built once; the call line, the metrics and the
/// span are all views of it.
///
/// Serialized as the JSON call line (`--calls json`, `--calls-file`): times in milliseconds
/// (`start` since the Unix epoch, durations with microsecond precision); an absent fact is
/// `null` or left out, never zero. Holds no header, query string or prompt text.
#[derive(Debug, Clone, Serialize)]
pub struct CallRecord {
    /// The call's id, unique across restarts and llmtap instances: a UUIDv7 (time-ordered,
    /// RFC 9562 §5.7), drawn when the request head arrived. The history's key and the UI's
    /// `/calls/{id}`.
    pub id: CallId,
    /// Wall clock when the request head arrived (`t0`).
    #[serde(serialize_with = "serialize_time")]
    pub start: SystemTime,
    /// `t0` to the end of the response (its last byte, the client leaving, or the failure).
    #[serde(serialize_with = "serialize_duration_ms")]
    pub duration: Duration,
    /// First generated-content delta − `t0`; only for streamed responses that produced one.
    #[serde(serialize_with = "serialize_opt_duration_ms")]
    pub ttft: Option<Duration>,
    /// `t0` to the first response body byte; `None` when no body byte arrived.
    #[serde(serialize_with = "serialize_opt_duration_ms")]
    pub first_byte: Option<Duration>,
    /// The gaps between the stream's content reads (only when OTel metrics are exported);
    /// not in the call line.
    #[serde(skip)]
    pub chunk_gaps: Option<Box<ChunkGaps>>,
    /// Who served the call: the provider table's entry for the host
    /// (`gen_ai.provider.name`); serialized as its name.
    #[serde(serialize_with = "serialize_provider")]
    pub provider: std::sync::Arc<crate::providers::Provider>,
    /// The wire format the call used (`llmtap.api`): the dialect's name
    /// (`anthropic_messages`, `openai_chat_completions`, `bedrock_converse`, …).
    pub api: &'static str,
    /// What the call did (chat, generate content, count tokens, …), from the route.
    pub operation: crate::dialects::Operation,
    /// The upstream host, as [`normalize_host`](crate::wire::normalize_host) spells it.
    pub host: String,
    /// The upstream port (443 unless the request named another).
    pub port: u16,
    /// The request method (`POST`; `GET` for a WebSocket upgrade).
    pub method: String,
    /// The request path without its query string (queries can carry API keys).
    pub path: String,
    /// The upstream's HTTP status (`101` for every call on a WebSocket); `None` when no
    /// response head arrived (connect failure, timeout, the client leaving first).
    pub status: Option<u16>,
    /// The response was an event stream.
    pub stream: bool,
    /// The agent or SDK that made the call, from its `user-agent`.
    pub client: Client,
    /// The agent session (header, else request body): one trace per session.
    pub conversation_id: Option<String>,
    /// The client's W3C `traceparent`, when valid: the span becomes its child. Not in call
    /// lines.
    #[serde(skip)]
    pub traceparent: Option<TraceParent>,
    /// The team the call is attributed to (proxy credentials, `x-llmtap-team`, `--team`);
    /// `None` when no source names one.
    pub team: Option<String>,
    /// The user the call is attributed to (proxy credentials, `x-llmtap-user`, `--user`);
    /// `None` when no source names one.
    pub user: Option<String>,
    /// How the call is paid for, from the kind of credential it carried.
    pub billing: Billing,
    /// USD: what the provider said it billed when it says (`cost_source` `provider`), else
    /// at the price table's rates; `None` when neither is known (no price for the model, or
    /// no usage). Set once, by telemetry with `pricing`, before the call reaches any output.
    pub cost_usd: Option<f64>,
    /// Where `cost_usd` came from.
    pub cost_source: crate::vocab::CostSource,
    /// USD at the price table's rates when `cost_usd` is the provider's (both kept, so a
    /// difference shows); `None` otherwise.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub table_cost_usd: Option<f64>,
    /// The price table's cost by kind of token, each with its tokens and rate (empty when
    /// the call is unpriced); set with `cost_usd`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cost_parts: Vec<crate::pricing::CostPart>,
    /// `None` when the request body could not be read or parsed.
    pub request: Option<RequestFacts>,
    /// What the response said (model, id, usage, tools called, …); empty when nothing was
    /// observed.
    pub response: ResponseFacts,
    /// How the call ended, by the rules in this module (status, in-band error, end of body).
    pub outcome: Outcome,
    /// Why the call failed; `None` for `ok`.
    pub error_type: Option<ErrorType>,
    /// What could not be parsed (the first failure); `None` when everything was.
    pub parse_error: Option<ParseError>,
    /// The response carried no usage (never recorded as zero).
    pub usage_missing: bool,
    /// A part of the call relayed but not observed: the observation budget was spent.
    pub observe_skipped: Option<Skipped>,
    /// The rate and plan limits the response reported (its headers, a socket's
    /// `codex.rate_limits` event); `None` when it reported none.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ratelimits: Option<crate::dialects::ratelimits::RateLimits>,
    /// What the call shows of the agent's loop (thread, agent, tools run before it, context
    /// fill, cache break, retry): set by `agentloop` on the telemetry thread before any
    /// output. Its fields sit at the call line's top level, each left out when unknown.
    #[serde(flatten)]
    pub agent_loop: LoopFacts,
    /// The request read for the loop (tool results, thread); consumed by `agentloop`.
    #[serde(skip)]
    pub loop_request: Option<crate::dialects::agent::LoopRequest>,
    /// The client said the call is a subagent's (Claude Code's
    /// `x-claude-code-parent-agent-id`, Codex's `x-openai-subagent`).
    #[serde(skip)]
    pub client_is_subagent: bool,
}

/// What a call shows of the agent's loop (ARCHITECTURE.md, "Agent loop"); every field is
/// absent (left out of the call line) when not known.
#[derive(Debug, Clone, Default, Serialize)]
pub struct LoopFacts {
    /// `gen_ai.agent.name`: `main`, or the subagent's name (`Explore`, a Codex task).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub agent: Option<String>,
    /// `llmtap.thread.id`: the conversation, 16 hex digits of the hash of its system prompt
    /// and first user turn.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub thread_id: Option<String>,
    /// The tools whose results this request carried: how long each ran.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub tool_executions: Vec<ToolExecution>,
    /// The model's context window in tokens (the price data's `max_input_tokens`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_window_tokens: Option<u64>,
    /// Input tokens over the context window (0–1; above 1 when the window is misreported).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub context_utilization: Option<f64>,
    /// `gen_ai.conversation.compacted`: the call compacts its thread.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub compacted: bool,
    /// Prompt-cache break: tokens of the thread's cached prefix written again.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_break_tokens: Option<u64>,
    /// USD the break cost: those tokens as cache writes instead of cache reads.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cache_break_cost_usd: Option<f64>,
    /// `http.request.resend_count`: earlier failed attempts of this same request.
    #[serde(skip_serializing_if = "is_zero")]
    pub resend_count: u32,
    /// Why the previous attempt failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub retry_reason: Option<crate::vocab::RetryReason>,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// One tool run, between the response that asked for it and the request that carried its
/// result. Serialized in the call line as `{"tool","call_id","duration_ms","error"}`.
#[derive(Debug, Clone, Serialize)]
pub struct ToolExecution {
    /// `gen_ai.tool.name`.
    pub tool: String,
    /// `gen_ai.tool.call.id`.
    pub call_id: Option<String>,
    /// The end of the response that asked for the call.
    #[serde(skip)]
    pub start: SystemTime,
    /// Until the request carrying the result arrived (approval time included).
    #[serde(rename = "duration_ms", serialize_with = "serialize_duration_ms")]
    pub duration: Duration,
    /// The result says the tool failed.
    pub error: bool,
    /// The provider of the call that asked for it.
    #[serde(skip)]
    pub provider: std::sync::Arc<crate::providers::Provider>,
    /// The agent and thread that asked for it.
    #[serde(skip)]
    pub agent: Option<String>,
    #[serde(skip)]
    /// The thread of the call that asked for it.
    pub thread_id: Option<String>,
    /// The session key of the call that asked (not the agent's id: internal).
    #[serde(skip)]
    pub session: Option<String>,
}

impl CallRecord {
    /// The call cost something llmtap cannot price ([`crate::vocab::cost_unknown`]).
    pub fn cost_unknown(&self) -> bool {
        crate::vocab::cost_unknown(
            self.cost_usd,
            self.outcome == Outcome::Ok,
            !self.response.usage.is_empty(),
        )
    }

    /// Response model, else request model.
    pub fn model(&self) -> Option<&str> {
        self.response
            .model
            .as_deref()
            .or(self.request.as_ref()?.model.as_deref())
    }
}

fn serialize_provider<S: serde::Serializer>(
    p: &std::sync::Arc<crate::providers::Provider>,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_str(&p.name)
}

pub(super) fn serialize_time<S: serde::Serializer>(
    t: &SystemTime,
    s: S,
) -> Result<S::Ok, S::Error> {
    let ms = t
        .duration_since(SystemTime::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis());
    s.serialize_u128(ms)
}

pub(super) fn serialize_duration_ms<S: serde::Serializer>(
    d: &Duration,
    s: S,
) -> Result<S::Ok, S::Error> {
    s.serialize_f64((d.as_secs_f64() * 1e6).round() / 1e3)
}

pub(super) fn serialize_opt_duration_ms<S: serde::Serializer>(
    d: &Option<Duration>,
    s: S,
) -> Result<S::Ok, S::Error> {
    match d {
        Some(d) => serialize_duration_ms(d, s),
        None => s.serialize_none(),
    }
}

/// A finished exchange's raw material, on its way to the telemetry worker.
pub struct Pending {
    pub(super) id: CallId,
    pub(super) wall0: SystemTime,
    pub(super) duration: Duration,
    pub(super) ttft: Option<Duration>,
    pub(super) first_byte: Option<Duration>,
    pub(super) chunk_gaps: Option<Box<ChunkGaps>>,
    pub(super) route: Route,
    pub(super) head: RequestHead,
    pub(super) status: Option<u16>,
    pub(super) end: End,
    pub(super) terminal: bool,
    pub(super) sse: bool,
    /// The stream was observed to its end: a missing terminal event means it was cut.
    pub(super) judged: bool,
    pub(super) stream_facts: Option<ResponseFacts>,
    /// The non-streamed body, decoded, long strings cut; charged to the budget until the
    /// record is built.
    pub(super) body: Option<ChargedBuf>,
    pub(super) skipped: Option<Skipped>,
    pub(super) request: RequestCapture,
    pub(super) parse_error: Option<ParseError>,
    pub(super) capture: Option<usize>,
    /// What the response head's limit headers said.
    pub(super) ratelimits: Option<crate::dialects::ratelimits::RateLimits>,
}

impl std::fmt::Debug for Pending {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Pending")
            .field("id", &self.id)
            .finish_non_exhaustive()
    }
}

impl Pending {
    /// Parses what was deferred and decides the outcome. Runs on the telemetry worker.
    pub fn into_record(self) -> CallRecord {
        let dialect = self.route.dialect;
        let operation = self.route.operation;
        let mut parse_error = self.parse_error;
        let request = if self.request.complete && !self.request.too_large {
            let body = self
                .request
                .body
                .as_ref()
                .map_or(&[][..], ChargedBuf::as_slice);
            // The dialect reads the path after the provider's prefix.
            let path = self.route.api_path(&self.head.path);
            guarded(|| (dialect.parse_request)(operation, path, body, self.capture))
                .map_err(|e| parse_error = parse_error.or(Some(e)))
                .map(|mut facts| {
                    if facts.model.is_none() {
                        facts.model = self.route.path_model.clone();
                    }
                    facts.model = crate::dialects::model_name(facts.model.take());
                    facts
                })
                .ok()
        } else {
            None
        };
        // The loop's view of the request (tool results, thread): a second tree-less read of
        // the same body, only for calls that carry a conversation.
        let loop_request = match (&request, operation) {
            (
                Some(_),
                crate::dialects::Operation::Chat | crate::dialects::Operation::GenerateContent,
            ) => {
                let body = self
                    .request
                    .body
                    .as_ref()
                    .map_or(&[][..], ChargedBuf::as_slice);
                let path = self.route.api_path(&self.head.path);
                guarded(|| crate::dialects::agent::read_request(path, body)).ok()
            }
            _ => None,
        };
        let response = match (self.stream_facts, self.status) {
            (Some(facts), _) => facts,
            (None, Some(status)) if parse_error.is_none() => {
                let body = self.body.as_ref().map_or(&[][..], ChargedBuf::as_slice);
                // The tree the body parses into is charged while it exists, as a stream's
                // events are (TREE_PER_BYTE); past the budget the body is not parsed.
                let mut tree = self.body.as_ref().map(|b| Charge::new(b.budget()));
                let room = tree
                    .as_mut()
                    .is_none_or(|t| t.set(body.len().saturating_mul(TREE_PER_BYTE)));
                // An abandoned body is a partial body: not a parse failure, nothing to parse.
                let parsed = if !room {
                    Err(ParseError::BodyTooLarge)
                } else if self.end == End::Complete && !body.is_empty() {
                    guarded(|| {
                        (dialect.parse_response)(operation, status, body, self.capture.is_some())
                    })
                } else {
                    Ok(ResponseFacts::default())
                };
                parsed.unwrap_or_else(|e| {
                    parse_error = Some(e);
                    ResponseFacts::default()
                })
            }
            (None, _) => ResponseFacts::default(),
        };
        let skipped = self
            .skipped
            .or(self.request.skipped.then_some(Skipped::RequestBody));
        let mut response = response;
        crate::dialects::settle(request.as_ref(), &mut response);
        let (outcome, error_type) = outcome(
            self.status,
            &self.end,
            self.terminal,
            self.judged && self.skipped.is_none(),
            &response,
        );
        // Limits from the head, joined by those the body reported.
        let ratelimits = match (self.ratelimits, response.ratelimits.take()) {
            (Some(mut head), Some(body)) => {
                head.merge(body);
                Some(head)
            }
            (head, body) => head.or(body),
        };
        // Errors carry no usage by nature; only a successful call without usage is "missing".
        let usage_missing = outcome == Outcome::Ok && response.usage.is_empty();
        CallRecord {
            id: self.id,
            start: self.wall0,
            duration: self.duration,
            ttft: self.ttft,
            first_byte: self.first_byte,
            chunk_gaps: self.chunk_gaps,
            provider: self.route.provider.clone(),
            api: dialect.name,
            operation,
            host: self.head.host,
            port: self.head.port,
            method: self.head.method,
            path: self.head.path,
            status: self.status,
            stream: self.sse,
            client: self.head.caller.client,
            conversation_id: self
                .head
                .caller
                .conversation_id
                .or_else(|| request.as_ref().and_then(|r| r.conversation_id.clone())),
            traceparent: self.head.traceparent,
            team: self.head.caller.attribution.team,
            user: self.head.caller.attribution.user,
            billing: self.head.caller.billing,
            cost_usd: None,
            cost_source: crate::vocab::CostSource::Table,
            table_cost_usd: None,
            cost_parts: Vec::new(),
            request,
            response,
            outcome,
            error_type,
            parse_error,
            usage_missing,
            observe_skipped: skipped,
            ratelimits,
            agent_loop: LoopFacts::default(),
            loop_request,
            client_is_subagent: self.head.caller.subagent,
        }
    }
}

pub(super) fn guarded<T>(f: impl FnOnce() -> Result<T, ParseError>) -> Result<T, ParseError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or(Err(ParseError::Panic))
}

/// Error types by which the APIs say "rate limited" when no status says it: Anthropic's
/// `rate_limit_error`, OpenAI's `rate_limit_exceeded` and `insufficient_quota`, ChatGPT's
/// `usage_limit_reached`, Google's `RESOURCE_EXHAUSTED`, Bedrock's `ThrottlingException`. Quota and plan usage limits are
/// rate limits: the call was refused for volume, not for what it asked.
pub(super) fn is_rate_limit(error_type: &str) -> bool {
    let t = error_type.to_ascii_lowercase();
    t.contains("rate_limit")
        || t.contains("usage_limit")
        || t.contains("throttl")
        || t.contains("quota")
        || t == "resource_exhausted"
}

/// Decides how a call ended: by the HTTP status, or the status an in-band error carries;
/// then by the error type; then by how the body ended. `stream_checked`: the response was
/// a stream observed to its end (no fatal error, its last event read), so a missing
/// terminal event means it was cut short.
pub(super) fn outcome(
    status: Option<u16>,
    end: &End,
    terminal: bool,
    stream_checked: bool,
    facts: &ResponseFacts,
) -> (Outcome, Option<ErrorType>) {
    let api_error = facts.error_type.as_deref().map(ErrorType::api);
    let with = |outcome, status: u16| {
        (
            outcome,
            Some(api_error.clone().unwrap_or(ErrorType::Status(status))),
        )
    };
    let Some(status) = status else {
        return match end {
            // Refused by llmtap's own destination policy, not by the upstream.
            End::Failed(ErrorType::DestinationRefused) => {
                (Outcome::ProxyError, Some(ErrorType::DestinationRefused))
            }
            End::Failed(kind) => (Outcome::UpstreamError, Some(kind.clone())),
            End::Complete | End::ClientGone => (Outcome::Cancelled, Some(ErrorType::Cancelled)),
        };
    };
    // An error inside a successful response (an SSE error event, a socket's error frame)
    // decides by the status it carries first, by its type second.
    let status = match facts.error_status {
        Some(inband) if api_error.is_some() && !(400..600).contains(&status) => inband,
        _ => status,
    };
    let rate_limit = facts.error_type.as_deref().is_some_and(is_rate_limit);
    match status {
        429 => with(Outcome::RateLimited, status),
        400..=499 => with(Outcome::ClientError, status),
        500..=599 => with(Outcome::UpstreamError, status),
        _ if rate_limit => (Outcome::RateLimited, api_error),
        _ if api_error.is_some() => (Outcome::UpstreamError, api_error),
        _ => match end {
            End::ClientGone if terminal => (Outcome::Ok, None),
            End::ClientGone => (Outcome::Cancelled, Some(ErrorType::Cancelled)),
            End::Failed(kind) => (Outcome::UpstreamError, Some(kind.clone())),
            End::Complete if stream_checked && !terminal => {
                (Outcome::UpstreamError, Some(ErrorType::StreamTruncated))
            }
            End::Complete => (Outcome::Ok, None),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outcomes_follow_status_then_stream_state() {
        let ok = ResponseFacts::default();
        let overloaded = ResponseFacts {
            error_type: Some("overloaded_error".into()),
            ..Default::default()
        };
        // Error types compared as they are spelled in every output.
        let o = |status, end, terminal, facts: &ResponseFacts| {
            let (outcome, error) = outcome(status, &end, terminal, true, facts);
            (outcome, error.map(|e| e.to_string()))
        };
        assert_eq!(o(Some(200), End::Complete, true, &ok), (Outcome::Ok, None));
        for limited in [
            "rate_limit_error",
            "rate_limit_exceeded",
            "RESOURCE_EXHAUSTED",
        ] {
            let facts = ResponseFacts {
                error_type: Some(limited.into()),
                ..Default::default()
            };
            assert_eq!(
                o(Some(101), End::Complete, true, &facts).0,
                Outcome::RateLimited,
                "{limited}"
            );
        }
        assert_eq!(
            o(Some(429), End::Complete, false, &ok).0,
            Outcome::RateLimited
        );
        assert_eq!(
            o(Some(529), End::Complete, false, &overloaded),
            (Outcome::UpstreamError, Some("overloaded_error".into()))
        );
        assert_eq!(
            o(Some(400), End::Complete, false, &ok),
            (Outcome::ClientError, Some("400".into()))
        );
        assert_eq!(
            o(Some(200), End::Complete, true, &overloaded).0,
            Outcome::UpstreamError
        );
        assert_eq!(
            o(Some(200), End::ClientGone, false, &ok).0,
            Outcome::Cancelled
        );
        assert_eq!(o(Some(200), End::ClientGone, true, &ok).0, Outcome::Ok);
        assert_eq!(
            o(Some(200), End::Failed(ErrorType::UpstreamReset), false, &ok).0,
            Outcome::UpstreamError
        );
        assert_eq!(
            o(Some(200), End::Complete, false, &ok).1.as_deref(),
            Some("stream_truncated")
        );
        assert_eq!(
            o(None, End::Failed(ErrorType::UpstreamConnect), false, &ok).0,
            Outcome::UpstreamError
        );
        assert_eq!(o(None, End::ClientGone, false, &ok).0, Outcome::Cancelled);
        // codex_ws_usage_limit: an in-band error's status decides before its type.
        let in_band = |status, kind: &str| ResponseFacts {
            error_type: Some(kind.into()),
            error_status: Some(status),
            ..Default::default()
        };
        assert_eq!(
            o(
                Some(101),
                End::Complete,
                true,
                &in_band(429, "usage_limit_reached")
            ),
            (Outcome::RateLimited, Some("usage_limit_reached".into()))
        );
        assert_eq!(
            o(
                Some(200),
                End::Complete,
                true,
                &in_band(400, "invalid_request_error")
            )
            .0,
            Outcome::ClientError
        );
        // A status that is no error status does not turn the error into a success.
        assert_eq!(
            o(
                Some(200),
                End::Complete,
                true,
                &in_band(200, "server_error")
            )
            .0,
            Outcome::UpstreamError
        );
    }
}

/// The gaps between the network reads of a stream that carried generated content, kept as a
/// fixed sketch (what `gen_ai.client.operation.time_per_output_chunk` needs, without a list
/// per call): per bucket of [`DURATION_BUCKETS`](crate::telemetry::names::otel::DURATION_BUCKETS),
/// the count and the sum of the gaps in it. 200 bytes whatever the stream's length. Kept only
/// when OTel metrics are exported.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ChunkGaps {
    last: Option<std::time::Instant>,
    counts: [u32; GAP_BUCKETS],
    sums: [f64; GAP_BUCKETS],
}

const GAP_BUCKETS: usize = crate::telemetry::names::otel::DURATION_BUCKETS.len() + 1;

impl ChunkGaps {
    /// A read that carried generated content arrived at `now`: the gap since the previous one
    /// (none for the first) goes in its bucket.
    pub fn chunk(&mut self, now: std::time::Instant) {
        if let Some(last) = self.last.replace(now) {
            let gap = now.saturating_duration_since(last).as_secs_f64();
            let bounds = crate::telemetry::names::otel::DURATION_BUCKETS;
            // OTel explicit buckets are upper-inclusive: `(b[i-1], b[i]]`.
            let i = bounds.partition_point(|b| *b < gap);
            self.counts[i] = self.counts[i].saturating_add(1);
            self.sums[i] += gap;
        }
    }

    /// The gaps as observations to replay into a histogram: per non-empty bucket, its count
    /// and the mean of its gaps (which lies in the bucket, so bucket counts and the sum are
    /// exact; a bucket's spread is lost).
    pub fn observations(&self) -> impl Iterator<Item = (u32, f64)> + '_ {
        self.counts
            .iter()
            .zip(&self.sums)
            .filter(|(c, _)| **c > 0)
            .map(|(c, s)| (*c, s / f64::from(*c)))
    }

    /// The count of gaps per bucket (the last bucket: over the last bound).
    pub fn counts(&self) -> &[u32] {
        &self.counts
    }

    /// How many gaps were recorded.
    pub fn len(&self) -> u64 {
        self.counts.iter().map(|c| u64::from(*c)).sum()
    }

    /// Whether no gap was recorded (fewer than two content reads).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A call's id: a UUIDv7 (RFC 9562 §5.7: 48 bits of Unix milliseconds, then random bits), so
/// ids sort by start time and never collide across restarts or instances writing one history.
/// Shown and serialized in the hyphenated lowercase form (`0193…-…`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct CallId(uuid::Uuid);

impl CallId {
    /// A new id for a call starting now.
    pub fn new() -> CallId {
        CallId(uuid::Uuid::now_v7())
    }

    /// Reads the hyphenated form; `None` for anything else (a URL path segment, a row).
    pub fn parse(text: &str) -> Option<CallId> {
        uuid::Uuid::try_parse(text).ok().map(CallId)
    }
}

impl Default for CallId {
    fn default() -> Self {
        CallId::new()
    }
}

impl std::fmt::Display for CallId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        self.0.hyphenated().fmt(f)
    }
}

impl Serialize for CallId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}
