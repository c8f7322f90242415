use std::future::Future;
use std::task::{Poll, Waker};

use tokio_util::sync::CancellationToken;

/// Tells a service that switchboard is shutting down.
///
/// Cloning is cheap and every clone sees the same signal. The supervisor requests shutdown
/// after it has closed its listeners; services then finish in-flight work and return.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    token: CancellationToken,
}

impl Shutdown {
    /// A signal that has not been requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every holder of this signal (and its clones) to finish.
    pub fn request(&self) {
        self.token.cancel();
    }

    /// Whether shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        self.token.is_cancelled()
    }

    /// Completes once shutdown has been requested; at once if it already was. Cheap to poll
    /// on every wake-up of a connection's task (see [`cancelled`]).
    pub async fn requested(&self) {
        cancelled(&self.token).await;
    }
}

/// Completes once `token` is cancelled, like `token.cancelled()`, but cheap to poll often.
///
/// The token's own future is polled to register a waker, and after that only when the
/// token says it was cancelled (one atomic load) or the waker changed (a pointer compare).
/// Polling it on every wake-up, as `select!` does with every branch, cost every request a
/// lock on the token's waiter list (callgrind).
pub async fn cancelled(token: &CancellationToken) {
    let waiting = token.cancelled();
    tokio::pin!(waiting);
    let mut registered: Option<Waker> = None;
    std::future::poll_fn(|cx| {
        let same_waker = registered.as_ref().is_some_and(|w| w.will_wake(cx.waker()));
        if same_waker && !token.is_cancelled() {
            return Poll::Pending;
        }
        registered = Some(cx.waker().clone());
        waiting.as_mut().poll(cx)
    })
    .await;
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn clones_see_the_request() {
        let shutdown = Shutdown::new();
        let clone = shutdown.clone();
        assert!(!clone.is_requested());
        shutdown.request();
        assert!(clone.is_requested());
        // Must complete immediately now, not hang.
        clone.requested().await;
    }
}
