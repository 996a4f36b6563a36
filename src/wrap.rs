//! `llmtap wrap -- CMD`: run one command through llmtap and summarize its calls.
//!
//! Owns: the child's environment (exactly the proxy and CA variables of `llmtap env`, nothing
//! else changed), passing stdin/stdout/stderr and signals through, returning the child's exit
//! code, and the summary of the calls it made (by model: calls, tokens by type, cost, TTFT,
//! tools). Does not own: the proxy (it starts the library's `llmtap::start` in-process, or
//! points at a running llmtap with `--proxy`).

use std::{
    collections::BTreeMap,
    process::ExitStatus,
    sync::{Arc, Mutex},
    time::Duration,
};

use serde::Serialize;
use tokio::process::Command;

use crate::{
    cli::Exports,
    exchange::CallRecord,
    summary::{Totals, line, plural},
    vocab::Outcome,
};

/// Runs `cmd` with `exports` applied; forwards SIGTERM and SIGHUP to it (SIGINT from a
/// terminal already reaches the whole foreground group, so it is not sent twice).
pub async fn run_child(cmd: &[String], exports: &Exports) -> std::io::Result<ExitStatus> {
    let (program, args) = cmd
        .split_first()
        .ok_or_else(|| std::io::Error::other("no command"))?;
    let mut command = Command::new(program);
    command.args(args);
    for (name, value) in exports.vars() {
        command.env(name, value);
    }
    // The handlers exist before the child does: a signal sent as soon as the child is up
    // (a supervisor reacting to its first output) is forwarded, never the default action
    // that would kill llmtap and orphan the child.
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate())?;
    let mut hup = signal(SignalKind::hangup())?;
    let mut int = signal(SignalKind::interrupt())?;
    let mut child = command.spawn()?;
    let pid = child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .map(nix::unistd::Pid::from_raw);
    loop {
        tokio::select! {
            status = child.wait() => return status,
            _ = term.recv() => forward(pid, nix::sys::signal::Signal::SIGTERM),
            _ = hup.recv() => forward(pid, nix::sys::signal::Signal::SIGHUP),
            // Ctrl-C reaches the child from the terminal; llmtap just keeps relaying.
            _ = int.recv() => {}
        }
    }
}

fn forward(pid: Option<nix::unistd::Pid>, signal: nix::sys::signal::Signal) {
    if let Some(pid) = pid {
        let _ = nix::sys::signal::kill(pid, signal);
    }
}

/// The exit code to return for the child's status: its code, or 128 + the signal.
pub fn exit_code(status: ExitStatus) -> u8 {
    use std::os::unix::process::ExitStatusExt as _;
    match (status.code(), status.signal()) {
        (Some(code), _) => u8::try_from(code).unwrap_or(1),
        (None, Some(signal)) => u8::try_from(128 + signal).unwrap_or(1),
        _ => 1,
    }
}

/// Collects every record while the child runs.
#[derive(Debug, Clone, Default)]
pub struct Collector(Arc<Mutex<Vec<Arc<CallRecord>>>>);

impl Collector {
    /// Starts collecting from `records` (`Telemetry::subscribe`) on a task, until the
    /// channel closes. Records missed because the collector lagged behind the channel's
    /// capacity are skipped without notice.
    pub fn start(mut records: tokio::sync::broadcast::Receiver<Arc<CallRecord>>) -> Collector {
        let collector = Collector::default();
        let sink = collector.0.clone();
        tokio::spawn(async move {
            loop {
                match records.recv().await {
                    Ok(r) => sink.lock().unwrap_or_else(|e| e.into_inner()).push(r),
                    Err(tokio::sync::broadcast::error::RecvError::Lagged(_)) => {}
                    Err(tokio::sync::broadcast::error::RecvError::Closed) => break,
                }
            }
        });
        collector
    }

    /// The records collected so far, in the order they finished.
    pub fn records(&self) -> Vec<Arc<CallRecord>> {
        self.0.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// What `llmtap wrap` reports when the command ends: totals of every call, and per model.
/// `--summary json` prints it serialized.
#[derive(Debug, Clone, Default, Serialize, PartialEq)]
pub struct Summary {
    /// Every call together.
    pub total: Totals,
    /// Model → totals.
    pub models: BTreeMap<String, Totals>,
}

impl Summary {
    /// Totals of `records`, overall and by model (response model, else request model, else
    /// `unknown`); TTFT p50 (the lower median) and max over the calls that have one.
    pub fn of(records: &[Arc<CallRecord>]) -> Summary {
        let mut summary = Summary::default();
        let mut ttfts: BTreeMap<String, Vec<Duration>> = BTreeMap::new();
        for r in records {
            let model = r.model().unwrap_or("unknown").to_owned();
            for (key, totals) in [
                (None, &mut summary.total),
                (
                    Some(model.clone()),
                    summary.models.entry(model.clone()).or_default(),
                ),
            ] {
                add(totals, r);
                if let Some(t) = r.ttft {
                    ttfts.entry(key.unwrap_or_default()).or_default().push(t);
                }
            }
        }
        let finish = |t: &mut Totals, mut v: Vec<Duration>| {
            v.sort();
            t.ttft_p50 = v.get(v.len().saturating_sub(1) / 2).copied();
            t.ttft_max = v.last().copied();
        };
        if let Some(v) = ttfts.remove("") {
            finish(&mut summary.total, v);
        }
        for (model, v) in ttfts {
            if let Some(t) = summary.models.get_mut(&model) {
                finish(t, v);
            }
        }
        summary
    }

    /// The text printed on stderr when the command ends.
    pub fn text(&self) -> String {
        let t = &self.total;
        if t.calls == 0 {
            return "llmtap: no LLM calls were made through the proxy\n".to_owned();
        }
        let mut out = format!("llmtap: {} — {}\n", plural(t.calls, "call"), line(t));
        for (model, m) in &self.models {
            out.push_str(&format!(
                "  {model}: {} — {}\n",
                plural(m.calls, "call"),
                line(m)
            ));
        }
        out
    }
}

fn add(t: &mut Totals, r: &CallRecord) {
    let ok = r.outcome == Outcome::Ok;
    t.add(ok, &r.response.usage, r.cost_usd, &r.response.tools_called);
    t.add_loop(crate::summary::LoopPart::of(&r.agent_loop));
}

/// Opens `url` in the desktop's browser (`xdg-open`, or `open` on macOS), detached; does
/// nothing when neither exists (a server, a container). Never waits on the browser.
pub fn open_in_browser(url: &str) {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    let _ = std::process::Command::new(opener)
        .arg(url)
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn();
}
