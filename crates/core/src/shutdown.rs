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

    /// Completes once shutdown has been requested; at once if it already was.
    pub async fn requested(&self) {
        self.token.cancelled().await;
    }
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
