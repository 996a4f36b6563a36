//! The agent's loop seen from the wire: what happened *between* calls, derived from the
//! finished calls in the order they finish (the telemetry thread; one owner, no locks).
//!
//! Owns the rules, each applied to a [`CallRecord`] before it reaches any output
//! (ARCHITECTURE.md, "Agent loop"):
//! - **Tool execution time**: a tool call's id in a response, its result in a later
//!   request (across connections, no session needed: ids are unique); the time between the
//!   end of the response and the arrival of the request is the tool's execution time.
//! - **Threads and subagents**: a thread is a conversation, the hash of its system prompt
//!   and first user turn ([`crate::dialects::agent::read_request`]); a thread first seen in a
//!   session while a subagent tool call is pending there is that call's subagent.
//! - **Context fill and compaction**, **prompt-cache breaks**, **retries**.
//!
//! Does not own: reading bodies (`dialects::agent`), the outputs (`telemetry`). State is
//! bounded in count and age ([`Limits`]); what is dropped is counted ([`Dropped`]).

use std::{
    collections::{HashMap, VecDeque},
    hash::Hash,
    sync::Arc,
    time::{Duration, SystemTime},
};

use crate::{
    dialects::{Operation, Usage},
    exchange::{CallRecord, LoopFacts, ToolExecution},
    pricing::PriceTable,
    vocab::{ErrorType, Outcome, RetryReason},
};

/// How much state the loop keeps, and for how long.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Tool calls waiting for their result; past it the oldest is dropped (`evicted`).
    pub pending_tools: usize,
    /// How long a tool call waits for its result (`expired` after): the top bucket of
    /// `llmtap_tool_duration_seconds`.
    pub tool_age: Duration,
    /// Sessions (and their threads) remembered; past it the least recently used is forgotten.
    pub sessions: usize,
    /// Threads per session; past it the session's least recently used is forgotten.
    pub threads: usize,
    /// Failed calls remembered for retry detection, and for how long.
    pub failures: usize,
    /// How long a failed call can be retried (10 minutes).
    pub retry_window: Duration,
}

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            pending_tools: 16 * 1024,
            tool_age: Duration::from_secs(3600),
            sessions: 4096,
            threads: 256,
            failures: 4096,
            retry_window: Duration::from_secs(600),
        }
    }
}

/// Pending tool calls dropped without a result, by why: the `reason` label of
/// `llmtap_tool_calls_unmatched_total`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Dropped {
    /// The pending set was full: the oldest call was dropped.
    pub evicted: u64,
    /// No result arrived within [`Limits::tool_age`].
    pub expired: u64,
}

/// A map bounded in size and age: entries in insertion order, the oldest dropped first.
/// Re-inserting a key moves it to the back (the queue is cleaned lazily: a queue entry whose
/// stamp no longer matches the map's is skipped).
#[derive(Debug)]
struct Bounded<K, V> {
    map: HashMap<K, (u64, SystemTime, V)>,
    order: VecDeque<(K, u64)>,
    stamp: u64,
    cap: usize,
}

impl<K: Eq + Hash + Clone, V> Bounded<K, V> {
    fn new(cap: usize) -> Self {
        Bounded {
            map: HashMap::new(),
            order: VecDeque::new(),
            stamp: 0,
            cap,
        }
    }

    /// Inserts at `at`; returns how many entries were evicted to make room.
    fn insert(&mut self, key: K, at: SystemTime, value: V) -> u64 {
        self.stamp += 1;
        self.order.push_back((key.clone(), self.stamp));
        self.map.insert(key, (self.stamp, at, value));
        let mut evicted = 0;
        while self.map.len() > self.cap {
            if self.pop_oldest().is_some() {
                evicted += 1;
            }
        }
        // The queue holds at most twice the live entries.
        if self.order.len() > 2 * self.cap.max(16) {
            let map = &self.map;
            self.order
                .retain(|(k, s)| map.get(k).is_some_and(|(live, _, _)| live == s));
        }
        evicted
    }

    fn pop_oldest(&mut self) -> Option<(K, SystemTime, V)> {
        while let Some((key, stamp)) = self.order.pop_front() {
            if self.map.get(&key).is_some_and(|(s, _, _)| *s == stamp) {
                let (_, at, v) = self.map.remove(&key)?;
                return Some((key, at, v));
            }
        }
        None
    }

    /// Drops entries inserted before `cutoff`; returns how many.
    fn expire(&mut self, cutoff: SystemTime) -> u64 {
        let mut n = 0;
        while let Some((key, stamp)) = self.order.front() {
            match self.map.get(key) {
                Some((s, at, _)) if s == stamp => {
                    if *at >= cutoff {
                        break;
                    }
                    let key = key.clone();
                    self.order.pop_front();
                    self.map.remove(&key);
                    n += 1;
                }
                _ => {
                    self.order.pop_front();
                }
            }
        }
        n
    }

    /// Moves `key` to the back (least recently used goes first), stamped `at`.
    fn touch(&mut self, key: &K, at: SystemTime) {
        if let Some((_, _, v)) = self.map.remove(key) {
            self.insert(key.clone(), at, v);
        }
    }

    fn get(&self, key: &K) -> Option<&V> {
        self.map.get(key).map(|(_, _, v)| v)
    }

    fn get_mut(&mut self, key: &K) -> Option<&mut V> {
        self.map.get_mut(key).map(|(_, _, v)| v)
    }

    fn remove(&mut self, key: &K) -> Option<(SystemTime, V)> {
        self.map.remove(key).map(|(_, at, v)| (at, v))
    }
}

/// A tool call waiting for its result.
#[derive(Debug, Clone)]
struct PendingTool {
    name: String,
    provider: Arc<crate::providers::Provider>,
    session: String,
    agent: Option<String>,
    thread: Option<String>,
    /// The call's subagent name, for a tool that starts one.
    subagent: Option<String>,
    /// Calls waiting under this entry: 1 for a call with an id; for calls without one
    /// (matched by session and tool name), how many are still unanswered.
    waiting: u32,
}

/// The pending key of tool calls without an id (Gemini's `functionCall` often has none, and
/// Gemini CLI then makes its own id for the result): matched by session, thread and tool
/// name (Gemini CLI sends no session id with an API key: the thread keeps two conversations
/// of one user apart).
fn anonymous(session: &str, thread: Option<&str>, tool: &str) -> String {
    format!("\u{0}{session}\u{0}{}\u{0}{tool}", thread.unwrap_or(""))
}

/// The last successful call of a thread: what the next one is compared with.
#[derive(Debug, Clone, Copy)]
struct LastCall {
    end: SystemTime,
    input: Option<u64>,
    /// Cache read + written: the prefix the next call should read.
    cached_prefix: u64,
    /// The prefix stays alive an hour (it was written with the 1h TTL), else 5 minutes.
    one_hour: bool,
}

#[derive(Debug, Clone)]
struct Thread {
    agent: Arc<str>,
    last: Option<LastCall>,
}

#[derive(Debug)]
struct Session {
    /// Its threads, the least recently used forgotten first past [`Limits::threads`].
    threads: Bounded<[u8; 8], Thread>,
    /// Pending keys of this session's subagent tool calls not yet claimed by a thread,
    /// oldest first.
    subagent_calls: VecDeque<String>,
}

impl Session {
    fn new(limits: &Limits) -> Session {
        Session {
            threads: Bounded::new(limits.threads),
            subagent_calls: VecDeque::new(),
        }
    }
}

/// A failed call that may be retried.
#[derive(Debug, Clone, Copy)]
struct Failure {
    reason: RetryReason,
    /// Failures of this request so far (the next attempt's `resend_count`).
    count: u32,
}

/// What identifies "the same request" for retries: who sent it, which thread, how long the
/// conversation was, and the tool results it carried. Request bodies are not compared byte
/// for byte: the agents change per-attempt fields on every resend (Claude Code's billing
/// line in `system[0]`, Codex's `client_metadata` order), so the body hash would never match.
type RetryKey = (String, Option<[u8; 8]>, u64, u64);

/// The loop's state. One per process, owned by the telemetry thread.
#[derive(Debug)]
pub struct AgentLoop {
    limits: Limits,
    pending: Bounded<String, PendingTool>,
    sessions: Bounded<String, Session>,
    /// Responses `id` → the thread it belongs to (`previous_response_id` continues it).
    responses: Bounded<String, [u8; 8]>,
    failures: Bounded<RetryKey, Failure>,
}

/// The agent name of a session's first thread, and of any thread that is no subagent.
pub const MAIN: &str = "main";

impl AgentLoop {
    /// An empty loop with these limits.
    pub fn new(limits: Limits) -> AgentLoop {
        AgentLoop {
            limits,
            pending: Bounded::new(limits.pending_tools),
            sessions: Bounded::new(limits.sessions),
            responses: Bounded::new(limits.pending_tools),
            failures: Bounded::new(limits.failures),
        }
    }

    /// Fills `record.agent_loop` (and its tool executions) from what came before, and
    /// remembers what this call leaves pending. `record` must be priced.
    pub fn observe(&mut self, record: &mut CallRecord, prices: &PriceTable) -> Dropped {
        let end = record.start + record.duration;
        let mut dropped = Dropped {
            expired: self.pending.expire(
                record
                    .start
                    .checked_sub(self.limits.tool_age)
                    .unwrap_or(record.start),
            ),
            evicted: 0,
        };
        self.failures.expire(
            record
                .start
                .checked_sub(self.limits.retry_window)
                .unwrap_or(record.start),
        );
        if !matches!(
            record.operation,
            Operation::Chat | Operation::GenerateContent
        ) {
            return dropped;
        }
        let Some(request) = record.request.as_ref() else {
            return dropped;
        };
        let loop_request = record.loop_request.take().unwrap_or_default();
        let session = session_key(record);
        let mut facts = LoopFacts::default();
        // The provider's price namespaces: the context window and a cache break's price.
        let namespaces = record.provider.price_namespaces_for(&record.host);
        let namespaces: Vec<&str> = namespaces.iter().map(String::as_str).collect();
        // A refused call (401, 403, llmtap's own refusal) opens no session or thread: a flood
        // of them must not fill the loop's state.
        let opens = !matches!(record.outcome, Outcome::ClientError | Outcome::ProxyError);

        // The thread: the one its previous response belongs to (Codex's socket sends only the
        // new items, which may start with the next prompt), else the hash.
        let thread = loop_request
            .previous_response_id
            .as_ref()
            .and_then(|previous| self.responses.get(previous).copied())
            .or(loop_request.thread);
        let thread_hex = thread.as_ref().map(|t| hex(t));

        // Tool results: each answers a call an earlier response of the same session asked
        // for. Newest first: a result matched by name must take the newest call of that tool,
        // and every request also carries the results of calls answered long ago.
        for result in loop_request.tool_results.iter().rev() {
            let by_id = result.id.as_ref().and_then(|id| {
                let same = self.pending.get(id).is_some_and(|t| t.session == session);
                if same { self.pending.remove(id) } else { None }
            });
            let found = by_id.or_else(|| {
                // A result for a call that had no id: the oldest unanswered call of that tool.
                let key = anonymous(&session, thread_hex.as_deref(), result.name.as_deref()?);
                let tool = self.pending.get_mut(&key)?;
                tool.waiting = tool.waiting.saturating_sub(1);
                if tool.waiting == 0 {
                    self.pending.remove(&key)
                } else {
                    let at = self.pending.map.get(&key).map(|(_, at, _)| *at)?;
                    Some((at, self.pending.get(&key)?.clone()))
                }
            });
            let Some((asked_end, tool)) = found else {
                continue;
            };
            facts.tool_executions.push(ToolExecution {
                tool: tool.name,
                call_id: result.id.clone(),
                start: asked_end,
                duration: record.start.duration_since(asked_end).unwrap_or_default(),
                error: result.error,
                provider: tool.provider,
                agent: tool.agent,
                thread_id: tool.thread,
                session: Some(tool.session),
            });
        }
        facts.tool_executions.reverse();

        // The thread's agent.
        let offers_tools = !request.tools_offered.is_empty();
        let messages = request.messages;
        if let Some(thread) = thread {
            let limits = self.limits;
            if self.sessions.get(&session).is_none() && opens {
                self.sessions
                    .insert(session.clone(), record.start, Session::new(&limits));
            }
            self.sessions.touch(&session, record.start);
            let pending = &self.pending;
            if let Some(s) = self.sessions.get_mut(&session) {
                if s.threads.get(&thread).is_none() && opens {
                    // A subagent: its thread opens while a subagent tool call of the same
                    // session waits for its result, and it is given tools (an agent's side
                    // calls, such as a title or a summary, are given none) or the agent marks
                    // it as a subagent's.
                    s.subagent_calls.retain(|key| pending.get(key).is_some());
                    let claimed = if offers_tools || record.client_is_subagent {
                        s.subagent_calls.pop_front()
                    } else {
                        None
                    };
                    let agent: Arc<str> = match claimed {
                        Some(key) => pending
                            .get(&key)
                            .and_then(|t| t.subagent.as_deref())
                            .unwrap_or("subagent")
                            .into(),
                        None if record.client_is_subagent => "subagent".into(),
                        None => MAIN.into(),
                    };
                    s.threads
                        .insert(thread, record.start, Thread { agent, last: None });
                }
                s.threads.touch(&thread, record.start);
                if let Some(t) = s.threads.get_mut(&thread) {
                    facts.agent = Some(t.agent.to_string());
                    facts.thread_id = thread_hex.clone();
                    let usage = &record.response.usage;
                    let ok = record.outcome == Outcome::Ok;
                    // Compaction: the agent says so, or the thread's input halves.
                    let shrank = match (t.last.and_then(|l| l.input), usage.input) {
                        (Some(before), Some(now)) => ok && now.saturating_mul(2) < before,
                        _ => false,
                    };
                    facts.compacted = loop_request.compaction || shrank;
                    // Cache break: the prefix the last call left in the cache, still alive,
                    // was not read back in full though the prompt still holds it.
                    if let (Some(last), Some(read), Some(input), false) =
                        (t.last, usage.cache_read, usage.input, facts.compacted)
                    {
                        let ttl = Duration::from_secs(if last.one_hour { 3600 } else { 300 });
                        let alive = last.end.checked_add(ttl).is_some_and(|e| record.start <= e);
                        if ok && alive && read < last.cached_prefix && input >= last.cached_prefix {
                            let tokens = last.cached_prefix - read;
                            facts.cache_break_tokens = Some(tokens);
                            facts.cache_break_cost_usd =
                                break_cost(prices, &namespaces, record, tokens, last.one_hour);
                        }
                    }
                    if ok && usage.input.is_some() {
                        let prefix = [usage.cache_read, usage.cache_write_5m, usage.cache_write_1h]
                            .iter()
                            .fold(0u64, |sum, n| sum.saturating_add(n.unwrap_or(0)));
                        t.last = Some(LastCall {
                            end,
                            input: usage.input,
                            cached_prefix: prefix,
                            one_hour: usage.cache_write_1h.unwrap_or(0) > 0
                                || (usage.cache_write_5m.unwrap_or(0) == 0
                                    && t.last.is_some_and(|l| l.one_hour)),
                        });
                    }
                }
            }
            if let Some(id) = &record.response.id
                && id.len() <= crate::dialects::agent::MAX_ID_BYTES
                && opens
            {
                self.responses.insert(id.clone(), end, thread);
            }
        }

        // Context fill: input over the model's context window (the provider entry's, else
        // the price data's).
        if let (Some(input), Some(model)) = (record.response.usage.input, record.model()) {
            let declared = record.provider.context_windows.get(model).copied();
            if let Some(window) = declared
                .or_else(|| prices.max_input_tokens(&namespaces, model))
                .filter(|w| *w > 0)
            {
                facts.context_window_tokens = Some(window);
                facts.context_utilization = Some(input as f64 / window as f64);
            }
        }

        // Retries: the same request, from the same client, after a failure.
        let key: RetryKey = (session.clone(), thread, messages, {
            // The tool result ids, as one hash: a key stays small whatever the request.
            use std::hash::{BuildHasher as _, Hash as _, Hasher as _};
            let mut h =
                std::hash::BuildHasherDefault::<std::hash::DefaultHasher>::default().build_hasher();
            for r in &loop_request.tool_results {
                r.id.hash(&mut h);
            }
            h.finish()
        });
        let earlier = self.failures.remove(&key).map(|(_, f)| f);
        if let Some(f) = earlier {
            facts.resend_count = f.count;
            facts.retry_reason = Some(f.reason);
        }
        if let Some(reason) = retry_reason(record) {
            let count = earlier.map_or(1, |f| f.count + 1);
            self.failures.insert(key, end, Failure { reason, count });
        }

        // What this response leaves pending.
        for call in &record.response.tool_calls {
            let (key, waiting) = match &call.id {
                Some(id) => (id.clone(), 1),
                None => {
                    let key = anonymous(&session, thread_hex.as_deref(), &call.name);
                    let waiting = self.pending.get(&key).map_or(0, |t| t.waiting);
                    (key, waiting.saturating_add(1))
                }
            };
            if call.subagent.is_some()
                && let Some(s) = self.sessions.get_mut(&session)
                && s.subagent_calls.len() < self.limits.threads
            {
                s.subagent_calls.push_back(key.clone());
            }
            dropped.evicted += self.pending.insert(
                key,
                end,
                PendingTool {
                    name: call.name.clone(),
                    provider: record.provider.clone(),
                    session: session.clone(),
                    agent: facts.agent.clone(),
                    thread: facts.thread_id.clone(),
                    subagent: call.subagent.clone(),
                    waiting,
                },
            );
        }
        record.agent_loop = facts;
        dropped
    }
}

/// The session a call belongs to: the agent's own session id, else who is calling (client,
/// team, user, host) — calls without a session still have threads.
fn session_key(record: &CallRecord) -> String {
    match &record.conversation_id {
        Some(id) => format!("s:{id}"),
        None => format!(
            "c:{}|{}|{}|{}",
            record.client.as_str(),
            record.team.as_deref().unwrap_or(""),
            record.user.as_deref().unwrap_or(""),
            record.host
        ),
    }
}

/// Why a failed call may be retried; `None` for a call a client would not resend (ok, a
/// client error, llmtap's own refusal).
fn retry_reason(record: &CallRecord) -> Option<RetryReason> {
    let overloaded = record.status == Some(529)
        || record.response.error_status == Some(529)
        || matches!(&record.error_type, Some(ErrorType::Api(t)) if t.contains("overloaded"));
    Some(match record.outcome {
        Outcome::Ok | Outcome::ClientError | Outcome::ProxyError => return None,
        Outcome::RateLimited => RetryReason::RateLimited,
        Outcome::Cancelled => RetryReason::Cancelled,
        Outcome::UpstreamError if overloaded => RetryReason::Overloaded,
        Outcome::UpstreamError => match record.error_type {
            Some(ErrorType::StreamTruncated | ErrorType::UpstreamReset) => {
                RetryReason::StreamTruncated
            }
            Some(ErrorType::UpstreamTimeout) => RetryReason::Timeout,
            Some(
                ErrorType::UpstreamConnect | ErrorType::UpstreamTls | ErrorType::UpstreamRequest,
            ) => RetryReason::UpstreamError,
            _ => RetryReason::ServerError,
        },
    })
}

/// What a cache break cost: the broken prefix billed as a cache write (at the TTL it was
/// written with) instead of a cache read, at the call's model and tier.
fn break_cost(
    prices: &PriceTable,
    namespaces: &[&str],
    record: &CallRecord,
    tokens: u64,
    one_hour: bool,
) -> Option<f64> {
    let cost = |usage: Usage| {
        prices.cost(
            namespaces,
            record.operation,
            record.model(),
            record.response.service_tier.as_deref(),
            &usage,
        )
    };
    let written = cost(Usage {
        input: Some(tokens),
        output: Some(0),
        cache_write_5m: Some(if one_hour { 0 } else { tokens }),
        cache_write_1h: Some(if one_hour { tokens } else { 0 }),
        ..Usage::default()
    })?;
    let read = cost(Usage {
        input: Some(tokens),
        output: Some(0),
        cache_read: Some(tokens),
        ..Usage::default()
    })?;
    Some((written - read).max(0.0))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests;
