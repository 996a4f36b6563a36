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
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, strum::IntoStaticStr, strum::VariantArray)]
#[strum(serialize_all = "snake_case")]
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

crate::vocab::label!(Skipped);

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
    /// A charge of 0 bytes against `budget`.
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

    /// The bytes this charge holds now.
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

/// Why a [`ChargedBuf`] refused more bytes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Full {
    /// The holder's own cap (`config::Limits`).
    Cap,
    /// The shared observation budget.
    Budget,
}

/// A contiguous copy whose allocation (capacity, not just length) is charged to the budget.
/// Copying, rather than keeping refcounted views of the relayed frames, keeps the
/// accounting exact (a view can pin a much larger read buffer) and lets a large buffer go
/// back to the system in one piece when it is dropped.
#[derive(Debug)]
pub struct ChargedBuf {
    buf: Vec<u8>,
    charge: Charge,
}

impl ChargedBuf {
    /// An empty buffer (no allocation, 0 bytes charged) against `budget`.
    pub fn new(budget: &Arc<Budget>) -> ChargedBuf {
        ChargedBuf {
            buf: Vec::new(),
            charge: Charge::new(budget),
        }
    }

    /// Appends `data`, keeping at most `cap` bytes; the allocation at least doubles when it
    /// grows (up to `cap`). On refusal nothing is appended.
    pub fn extend(&mut self, data: &[u8], cap: usize) -> Result<(), Full> {
        let needed = self.buf.len() + data.len();
        if needed > cap {
            return Err(Full::Cap);
        }
        if needed > self.buf.capacity() {
            let target = needed.max(self.buf.capacity().saturating_mul(2).min(cap));
            if !self.charge.set(target) {
                return Err(Full::Budget);
            }
            self.buf.reserve_exact(target - self.buf.len());
        }
        self.buf.extend_from_slice(data);
        Ok(())
    }

    /// Appends what `write` produces from an input of `most` bytes, when the output is at
    /// most as long as its input (the [`Elider`](crate::dialects::elide::Elider)): room for
    /// `most` is made first, growing as [`extend`](ChargedBuf::extend) does, and `write` gets
    /// the buffer and how many bytes it may add under `cap`. `write` returns how many bytes
    /// did not fit; any is a [`Full::Cap`] (what did fit stays).
    pub fn append_with(
        &mut self,
        most: usize,
        cap: usize,
        write: impl FnOnce(&mut Vec<u8>, usize) -> usize,
    ) -> Result<(), Full> {
        let room = cap.saturating_sub(self.buf.len());
        let needed = self.buf.len() + most.min(room);
        if needed > self.buf.capacity() {
            let target = needed.max(self.buf.capacity().saturating_mul(2).min(cap));
            if !self.charge.set(target) {
                return Err(Full::Budget);
            }
            self.buf.reserve_exact(target - self.buf.len());
        }
        match write(&mut self.buf, room) {
            0 => Ok(()),
            _ => Err(Full::Cap),
        }
    }

    /// Allocates (and charges) room for `total` bytes at once, when the size is known
    /// ahead (a `Content-Length`).
    pub fn reserve(&mut self, total: usize, cap: usize) -> Result<(), Full> {
        if total > cap {
            return Err(Full::Cap);
        }
        if total > self.buf.capacity() {
            if !self.charge.set(total) {
                return Err(Full::Budget);
            }
            self.buf.reserve_exact(total - self.buf.len());
        }
        Ok(())
    }

    /// The budget this buffer is charged to.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.charge.budget
    }

    /// A new, empty buffer charged to the same budget.
    pub fn sibling(&self) -> ChargedBuf {
        ChargedBuf::new(&self.charge.budget)
    }

    /// Drops the copy and gives its bytes back.
    pub fn clear(&mut self) {
        self.buf = Vec::new();
        self.charge.set(0);
    }

    /// The bytes appended so far.
    pub fn as_slice(&self) -> &[u8] {
        &self.buf
    }

    /// How many bytes were appended (the charge is on the capacity, which may be more).
    pub fn len(&self) -> usize {
        self.buf.len()
    }

    /// Whether nothing was appended.
    pub fn is_empty(&self) -> bool {
        self.buf.is_empty()
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

    #[test]
    fn a_charged_buffer_charges_its_allocation_and_refuses_past_cap_or_budget() {
        let budget = Budget::new(1000, None);
        let mut buf = ChargedBuf::new(&budget);
        buf.extend(&[1; 100], 600).expect("fits");
        buf.extend(&[2; 10], 600).expect("fits");
        assert_eq!(buf.len(), 110);
        assert!(budget.held() >= 110, "capacity is charged");
        assert_eq!(buf.extend(&[0; 600], 600), Err(Full::Cap));
        let mut other = ChargedBuf::new(&budget);
        assert_eq!(other.extend(&[0; 900], 2000), Err(Full::Budget));
        assert!(other.is_empty(), "nothing appended on refusal");
        buf.clear();
        drop(other);
        assert_eq!(budget.held(), 0);
    }
}
