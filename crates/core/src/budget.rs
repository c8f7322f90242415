//! One budget of memory for what clients send and switchboard must hold before it can act on
//! it: HTTP request bodies and SMTP messages being received. Each port's `max_connections`
//! bounds how many clients send at once, and each service how much one may send; this bounds
//! their sum, so that the worst case of the defaults fits a container's memory limit
//! (docs/configuration.md adds it up).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

/// Bytes that all connections together may hold (`[supervisor] max_buffered_bytes`).
/// Cloning is cheap; every clone is the same budget.
#[derive(Clone, Debug)]
pub struct Budget(Arc<Shared>);

#[derive(Debug)]
struct Shared {
    limit: u64,
    used: AtomicU64,
}

impl Budget {
    /// A budget of `limit` bytes.
    pub fn new(limit: u64) -> Self {
        Self(Arc::new(Shared {
            limit,
            used: AtomicU64::new(0),
        }))
    }

    /// The most bytes it lends at once.
    pub fn limit(&self) -> u64 {
        self.0.limit
    }

    /// Bytes lent now.
    pub fn in_use(&self) -> u64 {
        self.0.used.load(Ordering::Relaxed)
    }

    /// An empty claim on the budget, for one request body or one message; what it takes
    /// is given back when it is dropped.
    pub fn claim(&self) -> Claim {
        Claim {
            budget: self.clone(),
            taken: AtomicU64::new(0),
        }
    }
}

/// `[supervisor] max_buffered_bytes`'s default: 32 MiB.
pub const DEFAULT_BUFFERED_BYTES: u64 = 32 << 20;

impl Default for Budget {
    /// [`DEFAULT_BUFFERED_BYTES`].
    fn default() -> Self {
        Self::new(DEFAULT_BUFFERED_BYTES)
    }
}

/// What one body or message holds of the budget. It may be shared (behind an `Arc`) by the
/// body being read and the request it belongs to, so that the bytes count until both are
/// done.
#[derive(Debug)]
pub struct Claim {
    budget: Budget,
    taken: AtomicU64,
}

impl Claim {
    /// Take `bytes` more; `false` (and nothing taken) if the budget has not that many left.
    pub fn take(&self, bytes: usize) -> bool {
        let bytes = bytes as u64;
        let shared = &self.budget.0;
        let taken = shared
            .used
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |used| {
                used.checked_add(bytes)
                    .filter(|&total| total <= shared.limit)
            })
            .is_ok();
        if taken {
            self.taken.fetch_add(bytes, Ordering::Relaxed);
        }
        taken
    }

    /// Bytes this claim holds.
    pub fn held(&self) -> u64 {
        self.taken.load(Ordering::Relaxed)
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        let taken = *self.taken.get_mut();
        self.budget.0.used.fetch_sub(taken, Ordering::AcqRel);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn claims_share_one_limit_and_give_back_when_dropped() {
        let budget = Budget::new(100);
        let first = budget.claim();
        let second = budget.claim();
        assert!(first.take(60));
        assert!(!second.take(41), "over the limit: nothing taken");
        assert_eq!(second.held(), 0);
        assert!(second.take(40));
        assert_eq!(budget.in_use(), 100);
        drop(first);
        assert_eq!(budget.in_use(), 40);
        assert!(budget.claim().take(60));
        drop(second);
        assert_eq!(budget.in_use(), 0, "every claim gave back what it took");
    }
}
