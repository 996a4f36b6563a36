//! The observation budget: one bound on the memory llmtap holds to observe calls, all
//! calls together (`--observe-budget`, default 256 MiB).
//!
//! Owns: the shared count of held bytes and the [`Charge`] that each holder (a request
//! copy, a non-streamed response body, a stream's partial event, a WebSocket message being
//! reassembled) grows and that gives its bytes back when dropped, wherever that happens
//! (a finished record on the telemetry thread, an abandoned call). Queued records keep their
//! charges until they are emitted, so the record queue is bounded in bytes by the same
//! budget. The budget never touches traffic: a holder that cannot grow stops observing its
//! part of the call, which is then recorded with what is known and counted in
//! `llmtap_observe_skipped_total{reason}`.
//!
//! Per-call caps (`config::Limits`) still apply first; the budget bounds their sum, the
//! way Envoy's overload manager bounds buffers across connections, not per connection.

use std::sync::{
    Arc,
    atomic::{AtomicUsize, Ordering},
};

use prometheus::IntGauge;

/// What was not observed because the budget was spent. Label values of
/// `llmtap_observe_skipped_total{reason}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Skipped {
    /// The request body copy (the call has no request facts).
    RequestBody,
    /// A non-streamed response body (no response facts).
    ResponseBody,
    /// A streamed response from the skipped event on.
    Stream,
    /// A WebSocket message.
    WebsocketMessage,
}

impl Skipped {
    pub const ALL: [Skipped; 4] = [
        Skipped::RequestBody,
        Skipped::ResponseBody,
        Skipped::Stream,
        Skipped::WebsocketMessage,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Skipped::RequestBody => "request_body",
            Skipped::ResponseBody => "response_body",
            Skipped::Stream => "stream",
            Skipped::WebsocketMessage => "websocket_message",
        }
    }
}

/// The shared budget. Reservations are lock-free; a failed one changes nothing.
#[derive(Debug)]
pub struct Budget {
    limit: usize,
    held: AtomicUsize,
    gauge: Option<IntGauge>,
}

impl Budget {
    /// A budget of `limit` bytes, reported in `gauge` (`llmtap_observe_held_bytes`).
    pub fn new(limit: usize, gauge: Option<IntGauge>) -> Arc<Budget> {
        Arc::new(Budget {
            limit,
            held: AtomicUsize::new(0),
            gauge,
        })
    }

    /// Bytes held now, all charges together.
    pub fn held(&self) -> usize {
        self.held.load(Ordering::Relaxed)
    }

    fn try_reserve(&self, bytes: usize) -> bool {
        let reserved = self
            .held
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |held| {
                held.checked_add(bytes).filter(|&total| total <= self.limit)
            })
            .is_ok();
        if reserved && let Some(g) = &self.gauge {
            g.add(bytes as i64);
        }
        reserved
    }

    fn release(&self, bytes: usize) {
        self.held.fetch_sub(bytes, Ordering::AcqRel);
        if let Some(g) = &self.gauge {
            g.sub(bytes as i64);
        }
    }
}

/// Bytes one holder reserved; given back when it shrinks or is dropped.
#[derive(Debug)]
pub struct Charge {
    budget: Arc<Budget>,
    bytes: usize,
}

impl Charge {
    pub fn new(budget: &Arc<Budget>) -> Charge {
        Charge {
            budget: budget.clone(),
            bytes: 0,
        }
    }

    /// Reserves `more` bytes; `false` (and nothing reserved) when the budget is spent.
    pub fn grow(&mut self, more: usize) -> bool {
        if more == 0 {
            return true;
        }
        let ok = self.budget.try_reserve(more);
        if ok {
            self.bytes += more;
        }
        ok
    }

    /// Makes the charge exactly `bytes` (growing may fail: then it is unchanged).
    pub fn set(&mut self, bytes: usize) -> bool {
        if bytes >= self.bytes {
            self.grow(bytes - self.bytes)
        } else {
            self.budget.release(self.bytes - bytes);
            self.bytes = bytes;
            true
        }
    }

    pub fn bytes(&self) -> usize {
        self.bytes
    }
}

impl Drop for Charge {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.budget.release(self.bytes);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn charges_share_one_limit_and_give_bytes_back_on_drop() {
        let budget = Budget::new(100, None);
        let mut a = Charge::new(&budget);
        let mut b = Charge::new(&budget);
        assert!(a.grow(60));
        assert!(!b.grow(41), "over the limit");
        assert_eq!(budget.held(), 60);
        assert!(b.grow(40));
        assert!(a.set(10));
        assert_eq!(budget.held(), 50);
        drop(a);
        drop(b);
        assert_eq!(budget.held(), 0);
    }
}
