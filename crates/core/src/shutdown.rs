use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Waker};

use pin_project_lite::pin_project;
use tokio_util::sync::{CancellationToken, WaitForCancellationFuture};

/// Tells a service that switchboard is shutting down.
///
/// Cloning is cheap and every clone sees the same signal. The supervisor requests shutdown
/// after it has closed its listeners; services then finish in-flight work and return.
#[derive(Clone, Debug, Default)]
pub struct Shutdown {
    signal: Signal,
}

impl Shutdown {
    /// A signal that has not been requested yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Ask every holder of this signal (and its clones) to finish.
    pub fn request(&self) {
        self.signal.raise();
    }

    /// Whether shutdown has been requested.
    pub fn is_requested(&self) -> bool {
        self.signal.is_raised()
    }

    /// Completes once shutdown has been requested; at once if it already was. Cheap to poll
    /// on every wake-up of a connection's task (see [`Signal::raised`]).
    pub fn requested(&self) -> Raised<'_> {
        // The signal's own future, not one wrapped in another: this is polled on every
        // wake-up of every connection.
        self.signal.raised()
    }
}

/// A one-way flag that many tasks wait for: raised once, seen by every clone.
///
/// Every connection's task waits for one or two of these (shutdown, the shutdown deadline)
/// beside its real work, and `select!` polls every branch on every wake-up, so checking must
/// cost next to nothing: the flag is an atomic, apart from the token that does the waking
/// (whose checks take a lock).
#[derive(Clone, Debug, Default)]
pub struct Signal(Arc<SignalInner>);

#[derive(Debug, Default)]
struct SignalInner {
    raised: AtomicBool,
    wakes: CancellationToken,
}

impl Signal {
    /// A signal that has not been raised.
    pub fn new() -> Self {
        Self::default()
    }

    /// Raise the signal: every task waiting in [`Signal::raised`] wakes. Raising it again
    /// does nothing.
    pub fn raise(&self) {
        // The flag first: a task the token wakes must find it set.
        self.0.raised.store(true, Ordering::Release);
        self.0.wakes.cancel();
    }

    /// Whether the signal was raised: one atomic load.
    pub fn is_raised(&self) -> bool {
        self.0.raised.load(Ordering::Acquire)
    }

    /// Completes once the signal is raised; at once if it already was.
    ///
    /// The token's future is polled to register the task's waker, and again only when the
    /// waker changed: on the task's other wake-ups, a poll is one atomic load and a pointer
    /// compare. (Polling the token's future locks its waiter list; `select!` did that on every
    /// wake-up, for every request, before.)
    pub fn raised(&self) -> Raised<'_> {
        Raised {
            signal: self,
            registered: None,
            waiting: self.0.wakes.cancelled(),
        }
    }
}

pin_project! {
    /// The future of [`Signal::raised`]. Written out rather than an `async fn`: it is polled
    /// on every wake-up of every connection, and held by every idle one.
    pub struct Raised<'a> {
        signal: &'a Signal,
        // The waker the token's future was last polled with.
        registered: Option<Waker>,
        #[pin]
        waiting: WaitForCancellationFuture<'a>,
    }
}

impl Future for Raised<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = self.project();
        if this.signal.is_raised() {
            return Poll::Ready(());
        }
        if this
            .registered
            .as_ref()
            .is_some_and(|w| w.will_wake(cx.waker()))
        {
            return Poll::Pending;
        }
        *this.registered = Some(cx.waker().clone());
        this.waiting.poll(cx)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

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

    #[tokio::test]
    async fn a_waiting_task_wakes_when_the_signal_is_raised() {
        let signal = Signal::new();
        let (waiting_tx, waiting_rx) = tokio::sync::oneshot::channel();
        let waiter = tokio::spawn({
            let signal = signal.clone();
            async move {
                let raised = signal.raised();
                tokio::pin!(raised);
                // Registered (polled once, pending) before the signal is raised.
                let first = std::future::poll_fn(|cx| Poll::Ready(raised.as_mut().poll(cx)));
                assert!(first.await.is_pending());
                let _ = waiting_tx.send(());
                raised.await;
            }
        });
        waiting_rx.await.unwrap();
        signal.raise();
        signal.raise(); // twice is harmless
        tokio::time::timeout(Duration::from_secs(10), waiter)
            .await
            .expect("the raise was not noticed")
            .unwrap();
    }

    /// A waker that records that it was woken.
    struct Flag(AtomicBool);

    impl std::task::Wake for Flag {
        fn wake(self: Arc<Self>) {
            self.0.store(true, Ordering::SeqCst);
        }
    }

    #[test]
    fn the_waker_of_the_latest_poll_is_the_one_woken() {
        let signal = Signal::new();
        let mut raised = std::pin::pin!(signal.raised());
        let (first, second) = (
            Arc::new(Flag(AtomicBool::new(false))),
            Arc::new(Flag(AtomicBool::new(false))),
        );
        let (first_waker, second_waker) = (Waker::from(first.clone()), Waker::from(second.clone()));
        let mut first_cx = Context::from_waker(&first_waker);
        assert!(raised.as_mut().poll(&mut first_cx).is_pending());
        assert!(
            raised.as_mut().poll(&mut first_cx).is_pending(),
            "same waker: not registered again"
        );
        let mut second_cx = Context::from_waker(&second_waker);
        assert!(raised.as_mut().poll(&mut second_cx).is_pending());
        signal.raise();
        assert!(second.0.load(Ordering::SeqCst), "the newest waker is woken");
        assert!(!first.0.load(Ordering::SeqCst), "the replaced one is not");
        assert!(raised.as_mut().poll(&mut second_cx).is_ready());
    }
}
