//! Shared helpers for integration tests. Each test crate that says `mod support;` compiles this
//! module on its own and uses only part of it, so unused items are expected here.
#![allow(dead_code)]
#![allow(
    clippy::disallowed_methods,
    reason = "test helpers build child environments and wait on child processes outside the runtime"
)]

pub mod client;
pub mod harness;
pub mod otlp;
pub mod process;
