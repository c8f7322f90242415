//! Deadlines from durations that may come from outside: `now + d` panics when `d` is near
//! `Duration::MAX`, so every deadline computed from a caller's duration goes through here.

use std::time::Duration;

use tokio::time::Instant;

/// The instant `after` from now; for a duration too long for the clock, a century from now,
/// which waits as long as anything can.
pub fn deadline(after: Duration) -> Instant {
    let now = Instant::now();
    now.checked_add(after)
        .or_else(|| now.checked_add(Duration::from_secs(100 * 365 * 24 * 60 * 60)))
        .unwrap_or(now)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn any_duration_makes_a_deadline() {
        let before = Instant::now();
        assert!(deadline(Duration::from_secs(1)) >= before + Duration::from_secs(1));
        assert!(deadline(Duration::MAX) > before + Duration::from_secs(50 * 365 * 24 * 3600));
    }
}
