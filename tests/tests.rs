//! llmtap's integration tests: one test binary (as ripgrep's `tests/tests.rs`), one module per
//! concern, all sharing `support` (the test client, the in-process harness, the real binary as
//! a child process, an OTLP receiver). The fake upstream they run against is the
//! `llmtap-fake-upstream` crate (`crates/fake-upstream/`), which has its own self-test.
//!
//! One process runs every test, two at a time by default: no test may set process-wide state
//! (environment variables, the current directory, a global subscriber). Configuration goes in
//! through argument lists (`harness::start`), and a child process gets its environment on its
//! `Command`.

mod support;

mod agent_loop;
mod agents;
mod architecture;
mod auth;
mod cli;
mod cost;
mod dialects;
mod fixtures;
mod hardening;
mod history;
mod otlp;
mod phoenix;
mod prometheus;
mod providers;
mod proxy;
mod real_traffic;
mod regression;
mod report;
mod sdk_oracle;
mod sdk_python;
mod ui;
mod wrap;
