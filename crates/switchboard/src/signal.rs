//! The signals that ask switchboard to stop.

use std::future::Future;

/// A future that completes on the first SIGINT (Ctrl-C) or SIGTERM (`docker stop`,
/// systemd, `kill`).
///
/// The handlers are installed when this function is called, not when the future is first
/// polled: call it before announcing readiness, or a signal sent right after the announcement
/// would still meet the default action and kill the process.
pub(crate) fn shutdown_signal() -> impl Future<Output = ()> {
    let signals = Signals::install();
    async move {
        let name = signals.recv().await;
        tracing::info!("received {name}; shutting down");
    }
}

#[cfg(unix)]
struct Signals(Option<(tokio::signal::unix::Signal, tokio::signal::unix::Signal)>);

#[cfg(unix)]
impl Signals {
    fn install() -> Self {
        use tokio::signal::unix::{SignalKind, signal};
        match (
            signal(SignalKind::interrupt()),
            signal(SignalKind::terminate()),
        ) {
            (Ok(interrupt), Ok(terminate)) => Self(Some((interrupt, terminate))),
            _ => {
                tracing::error!("cannot install signal handlers; stop switchboard with SIGKILL");
                Self(None)
            }
        }
    }

    async fn recv(self) -> &'static str {
        let Some((mut interrupt, mut terminate)) = self.0 else {
            return std::future::pending().await;
        };
        tokio::select! {
            _ = interrupt.recv() => "SIGINT",
            _ = terminate.recv() => "SIGTERM",
        }
    }
}

#[cfg(not(unix))]
struct Signals;

#[cfg(not(unix))]
impl Signals {
    fn install() -> Self {
        Self
    }

    async fn recv(self) -> &'static str {
        if tokio::signal::ctrl_c().await.is_err() {
            return std::future::pending().await;
        }
        "Ctrl-C"
    }
}
