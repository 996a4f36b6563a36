use super::*;

#[test]
fn bounded_evicts_oldest_and_expires_by_age() {
    let t0 = SystemTime::UNIX_EPOCH + Duration::from_secs(1_000);
    let mut b: Bounded<String, u32> = Bounded::new(2);
    assert_eq!(b.insert("a".into(), t0, 1), 0);
    assert_eq!(b.insert("b".into(), t0 + Duration::from_secs(1), 2), 0);
    assert_eq!(b.insert("c".into(), t0 + Duration::from_secs(2), 3), 1);
    assert!(b.get(&"a".into()).is_none());
    assert_eq!(
        b.expire(t0 + Duration::from_secs(2)),
        1,
        "b is older than the cutoff"
    );
    assert_eq!(b.get(&"c".into()), Some(&3));
    // Re-inserting moves a key to the back; the queue stays bounded.
    for i in 0..1000 {
        b.insert("c".into(), t0 + Duration::from_secs(3 + i), 4);
    }
    assert!(b.order.len() <= 2 * 16 + 1);
    assert_eq!(b.map.len(), 1);
}

use crate::dialects::{
    RequestFacts, ResponseFacts,
    agent::{LoopRequest, ToolCall, ToolResult},
};

const T0: u64 = 1_764_547_200;

/// A Claude Code-like call at `at` seconds after T0 lasting one second, in session `s`.
fn call(
    at: u64,
    thread: u8,
    results: &[(&str, bool)],
    asks: &[(&str, &str, Option<&str>)],
) -> CallRecord {
    let mut r = crate::telemetry::calls::tests::record();
    r.start = SystemTime::UNIX_EPOCH + Duration::from_secs(T0 + at);
    r.duration = Duration::from_secs(1);
    r.conversation_id = Some("s".into());
    r.request = Some(RequestFacts {
        model: Some("claude-sonnet-4-5-20250929".into()),
        tools_offered: vec!["Bash".into()],
        messages: at,
        ..RequestFacts::default()
    });
    r.response = ResponseFacts {
        model: Some("claude-sonnet-4-5-20250929".into()),
        tool_calls: asks
            .iter()
            .map(|(id, name, sub)| ToolCall {
                id: Some((*id).into()),
                name: (*name).into(),
                subagent: sub.map(str::to_owned),
            })
            .collect(),
        complete: true,
        ..ResponseFacts::default()
    };
    r.loop_request = Some(LoopRequest {
        thread: Some([thread; 8]),
        tool_results: results
            .iter()
            .map(|(id, error)| ToolResult {
                id: Some((*id).into()),
                name: None,
                error: *error,
            })
            .collect(),
        ..LoopRequest::default()
    });
    r
}

fn usage(r: &mut CallRecord, input: u64, read: u64, write: u64) {
    r.response.usage = Usage {
        input: Some(input),
        output: Some(10),
        cache_read: Some(read),
        cache_write_5m: Some(write),
        cache_write_1h: Some(0),
        reasoning: None,
    };
}

#[test]
fn a_tool_runs_between_the_response_and_the_result_and_counts_once() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let mut first = call(0, 1, &[], &[("toolu_1", "Bash", None)]);
    l.observe(&mut first, &prices);
    assert_eq!(first.agent_loop.agent.as_deref(), Some(MAIN));
    // The result arrives 5 s after the first response ended (it ended at 1 s).
    let mut second = call(6, 1, &[("toolu_1", true)], &[]);
    l.observe(&mut second, &prices);
    let runs = &second.agent_loop.tool_executions;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].tool.as_str(), runs[0].duration, runs[0].error),
        ("Bash", Duration::from_secs(5), true)
    );
    assert_eq!(runs[0].agent.as_deref(), Some(MAIN));
    // Every later request carries the same result: it ran once.
    let mut third = call(9, 1, &[("toolu_1", true)], &[]);
    l.observe(&mut third, &prices);
    assert!(third.agent_loop.tool_executions.is_empty());
}

#[test]
fn a_thread_opened_while_an_agent_call_waits_is_its_subagent() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    l.observe(
        &mut call(0, 1, &[], &[("toolu_a", "Agent", Some("Explore"))]),
        &prices,
    );
    // A side call without tools (a title) is no subagent, even now.
    let mut side = call(2, 9, &[], &[]);
    side.request
        .as_mut()
        .expect("request")
        .tools_offered
        .clear();
    l.observe(&mut side, &prices);
    assert_eq!(side.agent_loop.agent.as_deref(), Some(MAIN));
    let mut sub = call(3, 2, &[], &[]);
    l.observe(&mut sub, &prices);
    assert_eq!(sub.agent_loop.agent.as_deref(), Some("Explore"));
    assert_ne!(sub.agent_loop.thread_id, side.agent_loop.thread_id);
    // Its later calls stay Explore; once the call is answered, a new thread is main again.
    let mut again = call(4, 2, &[], &[]);
    l.observe(&mut again, &prices);
    assert_eq!(again.agent_loop.agent.as_deref(), Some("Explore"));
    l.observe(&mut call(5, 1, &[("toolu_a", false)], &[]), &prices);
    let mut later = call(6, 3, &[], &[]);
    l.observe(&mut later, &prices);
    assert_eq!(later.agent_loop.agent.as_deref(), Some(MAIN));
}

#[test]
fn a_cache_read_short_of_the_live_prefix_is_a_break_and_an_expired_one_is_not() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let mut a = call(0, 1, &[], &[]);
    usage(&mut a, 5010, 0, 5000);
    l.observe(&mut a, &prices);
    let mut b = call(10, 1, &[], &[]);
    usage(&mut b, 6000, 1000, 4900);
    l.observe(&mut b, &prices);
    assert_eq!(b.agent_loop.cache_break_tokens, Some(4000));
    let cost = b.agent_loop.cache_break_cost_usd.expect("priced");
    // Sonnet 4.5: write 3.75 $/M, read 0.30 $/M → 4000 × 3.45e-6.
    assert!((cost - 4000.0 * 3.45e-6).abs() < 1e-9, "{cost}");
    // Six minutes later the 5-minute cache is gone: a miss is no break.
    let mut c = call(10 + 360, 1, &[], &[]);
    usage(&mut c, 6100, 0, 6000);
    l.observe(&mut c, &prices);
    assert_eq!(c.agent_loop.cache_break_tokens, None);
    // The input halving is a compaction, not a break.
    let mut d = call(400, 1, &[], &[]);
    usage(&mut d, 2000, 0, 2000);
    l.observe(&mut d, &prices);
    assert!(d.agent_loop.compacted);
    assert_eq!(d.agent_loop.cache_break_tokens, None);
    assert!(
        d.agent_loop
            .context_utilization
            .is_some_and(|u| (u - 0.01).abs() < 1e-9)
    );
}

#[test]
fn a_resent_failure_is_a_retry_and_a_chain_counts_up() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let failed = |at| {
        let mut r = call(at, 1, &[], &[]);
        r.request.as_mut().expect("request").messages = 3;
        r.status = Some(529);
        r.outcome = Outcome::UpstreamError;
        r.error_type = Some(ErrorType::api("overloaded_error"));
        r
    };
    let mut a = failed(0);
    l.observe(&mut a, &prices);
    assert_eq!(a.agent_loop.resend_count, 0);
    let mut b = failed(2);
    l.observe(&mut b, &prices);
    assert_eq!(
        (b.agent_loop.resend_count, b.agent_loop.retry_reason),
        (1, Some(RetryReason::Overloaded))
    );
    let mut c = call(4, 1, &[], &[]);
    c.request.as_mut().expect("request").messages = 3;
    l.observe(&mut c, &prices);
    assert_eq!(c.agent_loop.resend_count, 2);
    // Answered: the next identical request is no retry.
    let mut d = call(5, 1, &[], &[]);
    d.request.as_mut().expect("request").messages = 3;
    l.observe(&mut d, &prices);
    assert_eq!(d.agent_loop.resend_count, 0);
    // A failure more than 10 minutes old is not retried.
    let mut e = failed(10);
    e.request.as_mut().expect("request").messages = 4;
    l.observe(&mut e, &prices);
    let mut f = call(700, 1, &[], &[]);
    f.request.as_mut().expect("request").messages = 4;
    l.observe(&mut f, &prices);
    assert_eq!(f.agent_loop.resend_count, 0);
}

#[test]
fn pending_tool_calls_are_bounded_and_the_dropped_counted() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits {
        pending_tools: 2,
        ..Limits::default()
    });
    let mut evicted = 0;
    for i in 0..5u64 {
        let id = format!("t{i}");
        let mut r = call(i, 1, &[], &[(id.as_str(), "Bash", None)]);
        evicted += l.observe(&mut r, &prices).evicted;
    }
    assert_eq!(evicted, 3);
    assert_eq!(l.pending.map.len(), 2);
    // An hour later what waits has expired.
    let dropped = l.observe(&mut call(5 + 3600 + 10, 1, &[], &[]), &prices);
    assert_eq!(dropped.expired, 2);
}

#[test]
fn previous_response_id_continues_a_thread() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let mut a = call(0, 1, &[], &[("call_1", "exec", None)]);
    a.response.id = Some("resp_1".into());
    l.observe(&mut a, &prices);
    let mut b = call(3, 0, &[("call_1", false)], &[]);
    b.loop_request = Some(LoopRequest {
        thread: None,
        previous_response_id: Some("resp_1".into()),
        tool_results: vec![ToolResult {
            id: Some("call_1".into()),
            name: None,
            error: false,
        }],
        compaction: false,
    });
    l.observe(&mut b, &prices);
    assert_eq!(b.agent_loop.thread_id, a.agent_loop.thread_id);
    assert_eq!(b.agent_loop.tool_executions.len(), 1);
}

#[test]
fn calls_without_ids_are_matched_by_tool_name_newest_result_first() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let anonymous = |mut r: CallRecord| {
        for c in &mut r.response.tool_calls {
            c.id = None;
        }
        for t in &mut r.loop_request.as_mut().expect("loop").tool_results {
            t.name = Some("run_shell_command".into());
        }
        r
    };
    l.observe(
        &mut anonymous(call(0, 1, &[], &[("x", "run_shell_command", None)])),
        &prices,
    );
    let mut second = anonymous(call(
        3,
        1,
        &[("gen_1", false)],
        &[("x", "run_shell_command", None)],
    ));
    l.observe(&mut second, &prices);
    assert_eq!(second.agent_loop.tool_executions.len(), 1);
    assert_eq!(
        second.agent_loop.tool_executions[0].duration,
        Duration::from_secs(2)
    );
    // The third request carries both results: only the newest answers the waiting call.
    let mut third = anonymous(call(10, 1, &[("gen_1", false), ("gen_2", true)], &[]));
    l.observe(&mut third, &prices);
    let runs = &third.agent_loop.tool_executions;
    assert_eq!(runs.len(), 1);
    assert_eq!(
        (runs[0].call_id.as_deref(), runs[0].error),
        (Some("gen_2"), true)
    );
    assert_eq!(runs[0].duration, Duration::from_secs(6));
}

// Found by the attacker review of issue 15; each test says what was wrong.

/// Codex over its WebSocket: a later turn sends `previous_response_id` and only the new
/// items. When those include a user message (the next prompt), `read_request` hashes it as
/// the "first user turn" and the thread it gives wins over `previous_response_id`: the turn
/// starts a new thread instead of continuing its response's.
#[test]
fn a_socket_turn_with_a_new_prompt_continues_the_thread_of_its_previous_response() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let mut a = call(0, 1, &[], &[]);
    a.response.id = Some("resp_1".into());
    l.observe(&mut a, &prices);
    let mut b = call(3, 0, &[], &[]);
    b.loop_request = Some(
        crate::dialects::agent::read_request(
            "/responses",
            br#"{"type":"response.create","previous_response_id":"resp_1","input":[
            {"type":"message","role":"user","content":[{"type":"input_text","text":"and now the tests"}]}]}"#,
        )
        .expect("json"),
    );
    l.observe(&mut b, &prices);
    assert_eq!(
        b.agent_loop.thread_id, a.agent_loop.thread_id,
        "previous_response_id names the thread"
    );
}

/// Threads of a session are never forgotten and a session holds at most 256: once a
/// long session (or every call of an SDK client without a session id, all one "session")
/// has seen 256 threads, no new thread is tracked: no agent, no subagent, no cache break.
#[test]
fn a_session_past_its_thread_cap_still_names_its_subagents() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    for i in 0..256u32 {
        let mut r = call(u64::from(i), 0, &[], &[]);
        let mut t = [0u8; 8];
        t[..4].copy_from_slice(&i.to_le_bytes());
        t[7] = 0xAA;
        r.loop_request.as_mut().expect("loop").thread = Some(t);
        l.observe(&mut r, &prices);
    }
    l.observe(
        &mut call(300, 1, &[], &[("toolu_a", "Agent", Some("Explore"))]),
        &prices,
    );
    let mut sub = call(301, 2, &[], &[]);
    l.observe(&mut sub, &prices);
    assert_eq!(sub.agent_loop.agent.as_deref(), Some("Explore"));
}

/// Tool calls without ids (Gemini) wait under (session, tool name). Gemini CLI on the
/// API-key path sends no session id, so the session is the client identity and host: a
/// second Gemini CLI conversation of the same user (which resends its own old
/// `functionResponse`s in every request) answers the first one's pending call.
#[test]
fn another_conversation_does_not_answer_a_call_without_id() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let gemini = |mut r: CallRecord| {
        r.conversation_id = None;
        r.client = crate::caller::Client::GeminiCli;
        for c in &mut r.response.tool_calls {
            c.id = None;
        }
        for t in &mut r.loop_request.as_mut().expect("loop").tool_results {
            t.name = Some("read_file".into());
        }
        r
    };
    // Conversation A asks for read_file at t=1 s.
    l.observe(
        &mut gemini(call(0, 1, &[], &[("x", "read_file", None)])),
        &prices,
    );
    // Conversation B (another thread, another terminal) resends an old result of its own.
    let mut b = gemini(call(2, 2, &[("read_file_1700000000000_0", false)], &[]));
    l.observe(&mut b, &prices);
    assert!(
        b.agent_loop.tool_executions.is_empty(),
        "B answered A's call: {:?}",
        b.agent_loop.tool_executions
    );
}

/// `Limits::sessions` says "past it the least recently used is forgotten", but sessions are
/// never moved on use (`get_mut`), so the oldest *created* goes: a long, busy session is
/// dropped while idle ones stay, and its running subagent becomes `main`.
#[test]
fn a_busy_session_outlives_idle_newer_ones() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits {
        sessions: 2,
        ..Limits::default()
    });
    let in_session = |mut r: CallRecord, s: &str| {
        r.conversation_id = Some(s.into());
        r
    };
    l.observe(
        &mut in_session(
            call(0, 1, &[], &[("toolu_a", "Agent", Some("Explore"))]),
            "A",
        ),
        &prices,
    );
    let mut sub = in_session(call(2, 2, &[], &[]), "A");
    l.observe(&mut sub, &prices);
    assert_eq!(sub.agent_loop.agent.as_deref(), Some("Explore"));
    l.observe(&mut in_session(call(3, 7, &[], &[]), "B"), &prices);
    // A is used again (its subagent works on), then a third session appears.
    l.observe(&mut in_session(call(4, 2, &[], &[]), "A"), &prices);
    l.observe(&mut in_session(call(5, 8, &[], &[]), "C"), &prices);
    let mut again = in_session(call(6, 2, &[], &[]), "A");
    l.observe(&mut again, &prices);
    assert_eq!(again.agent_loop.agent.as_deref(), Some("Explore"));
}

/// Gemini's `functionCall` usually has no id (Gemini CLI makes `<name>_<ms>_<n>` itself), and
/// a call without id is never queued as a subagent call: Gemini CLI's `invoke_agent`
/// subagents (README's table: named by `agent_name`) always come out `main`.
#[test]
fn a_gemini_subagent_call_without_id_names_its_subagent() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    let mut ask = call(
        0,
        1,
        &[],
        &[("x", "invoke_agent", Some("codebase_investigator"))],
    );
    ask.response.tool_calls[0].id = None;
    l.observe(&mut ask, &prices);
    let mut sub = call(2, 2, &[], &[]);
    l.observe(&mut sub, &prices);
    assert_eq!(
        sub.agent_loop.agent.as_deref(),
        Some("codebase_investigator")
    );
}

/// A result is matched only within the session of the call that asked: another client that
/// learned a call id (from call lines or spans) cannot take over its run.
#[test]
fn another_session_cannot_answer_a_call_by_its_id() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    l.observe(&mut call(0, 1, &[], &[("toolu_1", "Bash", None)]), &prices);
    let mut forged = call(2, 1, &[("toolu_1", false)], &[]);
    forged.conversation_id = Some("other".into());
    l.observe(&mut forged, &prices);
    assert!(forged.agent_loop.tool_executions.is_empty());
    let mut real = call(3, 1, &[("toolu_1", false)], &[]);
    l.observe(&mut real, &prices);
    assert_eq!(real.agent_loop.tool_executions.len(), 1);
}

/// Refused calls (a flood of 401s with made-up session ids) open no session or thread.
#[test]
fn refused_calls_open_no_state() {
    let prices = PriceTable::embedded();
    let mut l = AgentLoop::new(Limits::default());
    for i in 0..100u64 {
        let mut r = call(i, 1, &[], &[]);
        r.conversation_id = Some(format!("s{i}"));
        r.status = Some(401);
        r.outcome = Outcome::ClientError;
        l.observe(&mut r, &prices);
        assert_eq!(r.agent_loop.agent, None);
    }
    assert!(l.sessions.map.is_empty());
}
