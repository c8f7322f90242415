//! The signals that ask switchboard to stop.

/// Completes on the first SIGINT (Ctrl-C) or SIGTERM (`docker stop`, systemd, `kill`).
pub async fn shutdown_signal() {
    let name = wait_for_signal().await;
    tracing::info!("received {name}; shutting down");
}

#[cfg(unix)]
async fn wait_for_signal() -> &'static str {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        tracing::error!("cannot install signal handlers; stop switchboard with SIGKILL");
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => "SIGINT",
        _ = terminate.recv() => "SIGTERM",
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() -> &'static str {
    if tokio::signal::ctrl_c().await.is_err() {
        return std::future::pending().await;
    }
    "Ctrl-C"
}
