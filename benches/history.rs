//! The history and the UI with 100,000 calls: how long filling the database takes (the
//! writer's batches), and how long the pages the UI serves take to build from it: the call
//! list's first page, a filtered page, a page deep in the history, a session of 100 calls,
//! and the 7-day overview. Times are the page handler's (query + render), what a browser waits
//! for on a loopback admin address minus the transfer.
//!
//! `cargo bench --bench history` prints a table; BENCHMARKS.md records the numbers with the
//! machine. Not a test: nothing here asserts.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::print_stdout)]

use std::{
    collections::BTreeMap,
    sync::Arc,
    time::{Duration, Instant, SystemTime},
};

use llmtap::{
    exchange::CallId,
    telemetry::{calls::sample_record, history::Store, ui},
};

const CALLS: usize = 100_000;
const SESSIONS: usize = 1_000;

fn time(runs: usize, mut f: impl FnMut()) -> Duration {
    f();
    let t = Instant::now();
    for _ in 0..runs {
        f();
    }
    t.elapsed() / u32::try_from(runs).unwrap()
}

fn main() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bench.db");
    let mut store = Store::open(&path).unwrap();
    let models = [
        "claude-opus-4-8",
        "claude-sonnet-4-6",
        "gpt-5",
        "gemini-2.5-pro",
    ];
    let now = SystemTime::now();
    let t = Instant::now();
    let mut batch = Vec::with_capacity(512);
    for i in 0..CALLS {
        let mut r = sample_record();
        r.id = CallId::new();
        // Spread over the last 7 days, newest last.
        r.start = now - Duration::from_secs(((CALLS - i) * 6) as u64);
        r.conversation_id = Some(format!("session-{:04}", i % SESSIONS));
        r.response.model = Some(models[i % models.len()].to_owned());
        batch.push(Arc::new(r));
        if batch.len() == 512 {
            store.insert(&batch, 16384).unwrap();
            batch.clear();
        }
    }
    store.insert(&batch, 16384).unwrap();
    let fill = t.elapsed();
    let size = std::fs::metadata(&path).unwrap().len()
        + std::fs::metadata(dir.path().join("bench.db-wal")).map_or(0, |m| m.len());

    let q = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect()
    };
    let page = |p: ui::Page| match p {
        ui::Page::Html(html) => html.len(),
        _ => panic!("no page"),
    };
    let mut bytes = 0;
    let first = time(20, || bytes = page(ui::calls(Some(&store), &q(&[]))));
    let filtered = time(20, || {
        page(ui::calls(Some(&store), &q(&[("model", "gpt-5")])));
    });
    // A cursor half-way through the history.
    let middle = store
        .list(&Default::default(), None, 1000)
        .unwrap()
        .pop()
        .and_then(|l| {
            serde_json::from_str::<serde_json::Value>(&l).unwrap()["id"]
                .as_str()
                .map(str::to_owned)
        })
        .unwrap();
    let deep = time(20, || {
        page(ui::calls(Some(&store), &q(&[("before", &middle)])));
    });
    let session = time(20, || {
        page(ui::session(Some(&store), "session-0500"));
    });
    let overview = time(5, || {
        page(ui::overview(Some(&store), &q(&[("days", "7")])));
    });
    println!(
        "history with {CALLS} calls ({SESSIONS} sessions), {} MB on disk",
        size / 1_000_000
    );
    println!(
        "  fill, batches of 512     {:>8.1} s ({:.1} µs per call)",
        fill.as_secs_f64(),
        fill.as_secs_f64() * 1e6 / CALLS as f64
    );
    println!(
        "  calls list, first page   {:>8.2} ms ({} KB of HTML)",
        first.as_secs_f64() * 1e3,
        bytes / 1000
    );
    println!(
        "  calls list, one model    {:>8.2} ms",
        filtered.as_secs_f64() * 1e3
    );
    println!(
        "  calls list, 1000 deep    {:>8.2} ms",
        deep.as_secs_f64() * 1e3
    );
    println!(
        "  session of 100 calls     {:>8.2} ms",
        session.as_secs_f64() * 1e3
    );
    println!(
        "  overview, 7 days         {:>8.2} ms",
        overview.as_secs_f64() * 1e3
    );
}
