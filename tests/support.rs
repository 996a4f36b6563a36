//! Shared helpers of the integration tests (`tests/tests.rs`): what drives llmtap and what
//! observes it. The fake upstream is the `llmtap-fake-upstream` crate.
#![allow(
    clippy::disallowed_methods,
    reason = "test helpers build child environments and wait on child processes outside the runtime"
)]

pub mod client;
pub mod harness;
pub mod otlp;
pub mod prices;
pub mod process;
pub mod raw;
