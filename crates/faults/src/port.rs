//! A port's toxics, and when each starts and ends.
//!
//! Every connection of the port follows one shared set (a watch channel: a change reaches
//! open connections at their next read or write). Two kinds of toxic end by themselves:
//!
//! - **counted** (`first: N`): listed like the others, but a connection applies it only if
//!   it *claimed* one of the N when it was accepted ([`PortToxics::faults`]); it keeps it for
//!   as long as it lasts. The Nth claim removes the toxic from the list.
//! - **timed** (`duration`): a timer removes it, from every connection, when its time is up.
//!
//! Removing a toxic by hand (or a reset) withdraws it from every connection, counted ones
//! included. Each start and end is an event ([`EventKind::FaultStarted`] and
//! [`EventKind::FaultEnded`]), so the log, the feed and the page show it.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, Weak};

use switchboard_core::{ControlError, Event, EventBus, EventKind};
use tokio::sync::watch;

use crate::engine::{Claim, Faults, ToxicSet};
use crate::toxic::Toxic;

/// One port's toxics. Shared by the port (its connections) and the control that changes them.
pub struct PortToxics {
    port: u16,
    service: &'static str,
    events: EventBus,
    /// Every listed toxic; counted ones apply only to the connections that claimed them.
    set: watch::Sender<ToxicSet>,
    /// Per listed toxic, in the same order: its count and its withdrawal flag.
    lives: Mutex<Vec<Life>>,
    /// Whether any toxic counts: accepting a connection looks at this one flag otherwise.
    counting: AtomicBool,
    next_serial: AtomicU64,
}

impl std::fmt::Debug for PortToxics {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.set.borrow().iter()).finish()
    }
}

/// What is left of one listed toxic.
#[derive(Debug)]
struct Life {
    name: String,
    /// Which adding this is: a timer ends only the toxic it was started for, not a later
    /// one of the same name.
    serial: u64,
    /// Connections still to claim it (counted toxics).
    left: Option<u32>,
    /// Raised when it is removed: the connections holding a claim drop it then.
    withdrawn: Arc<AtomicBool>,
}

impl PortToxics {
    /// The toxics of `port` (served by `service`), starting with `initial`; must be called
    /// within a Tokio runtime when one of them has a `duration`.
    pub fn new(
        port: u16,
        service: &'static str,
        events: EventBus,
        initial: Vec<Toxic>,
    ) -> Arc<Self> {
        let toxics = Arc::new(Self {
            port,
            service,
            events,
            set: watch::Sender::new(ToxicSet::from(Vec::new())),
            lives: Mutex::new(Vec::new()),
            counting: AtomicBool::new(false),
            next_serial: AtomicU64::new(1),
        });
        for toxic in initial {
            // The config checked that names are unique.
            let _ = toxics.add(toxic);
        }
        toxics
    }

    /// The fault state of a connection accepted now: the shared set, and one claim on each
    /// counted toxic that applies to it (drawn by its toxicity).
    pub fn faults(&self) -> Faults {
        let mut claims = Vec::new();
        if self.counting.load(Ordering::Acquire) {
            let mut spent = Vec::new();
            {
                let mut lives = self.lives();
                let set = self.set.borrow();
                for (life, toxic) in lives.iter_mut().zip(set.iter()) {
                    let Some(left) = life.left.as_mut() else {
                        continue;
                    };
                    if *left == 0 || fastrand::f64() >= toxic.toxicity {
                        continue;
                    }
                    *left -= 1;
                    claims.push(Claim {
                        toxic: toxic.clone(),
                        withdrawn: life.withdrawn.clone(),
                    });
                    if *left == 0 {
                        spent.push((life.name.clone(), life.serial, toxic.first.unwrap_or(0)));
                    }
                }
            }
            for (name, serial, count) in spent {
                // Still applied by the connections that claimed it; no longer listed.
                if self.take(&name, |l| l.serial == serial, false) {
                    self.ended(&name, format!("its {count} connection(s) have had it"));
                }
            }
        }
        Faults::with_claims(self.set.subscribe(), claims)
    }

    /// The toxics, in the order they were added; a counted one says how many connections it
    /// has left in `first`.
    pub fn list(&self) -> Vec<Toxic> {
        let lives = self.lives();
        self.set
            .borrow()
            .iter()
            .zip(lives.iter())
            .map(|(toxic, life)| Toxic {
                first: life.left,
                ..toxic.clone()
            })
            .collect()
    }

    /// The names of the toxics, in order.
    pub fn names(&self) -> Vec<String> {
        self.set.borrow().iter().map(|t| t.name.clone()).collect()
    }

    /// Add a toxic; its name must be new on this port. A `duration` starts now.
    pub fn add(self: &Arc<Self>, toxic: Toxic) -> Result<Toxic, ControlError> {
        let serial = self.next_serial.fetch_add(1, Ordering::Relaxed);
        {
            let mut lives = self.lives();
            if lives.iter().any(|l| l.name == toxic.name) {
                return Err(ControlError::ToxicExists {
                    port: self.port,
                    name: toxic.name,
                });
            }
            lives.push(Life {
                name: toxic.name.clone(),
                serial,
                left: toxic.first,
                withdrawn: Arc::new(AtomicBool::new(false)),
            });
            if toxic.first.is_some() {
                self.counting.store(true, Ordering::Release);
            }
            self.set.send_modify(|set| {
                *set = set.iter().cloned().chain([toxic.clone()]).collect();
            });
        }
        if let Some(duration) = toxic.duration {
            let (toxics, name) = (Arc::downgrade(self), toxic.name.clone());
            // From now, not from when the task first runs.
            let at = switchboard_core::deadline(duration);
            tokio::spawn(async move {
                tokio::time::sleep_until(at).await;
                expire(&toxics, &name, serial, duration);
            });
        }
        self.emit(EventKind::fault_started(&toxic.name, toxic.describe()));
        Ok(toxic)
    }

    /// Change a toxic (see [`Toxic::patched`]). Connections holding a claim on a counted
    /// toxic keep the version they claimed.
    pub fn update(&self, name: &str, patch: &serde_json::Value) -> Result<Toxic, ControlError> {
        let _lives = self.lives(); // no add or remove in between
        let current = self
            .set
            .borrow()
            .iter()
            .find(|t| t.name == name)
            .cloned()
            .ok_or_else(|| self.no_such(name))?;
        let updated = current
            .patched(patch)
            .map_err(|e| ControlError::Invalid(e.0))?;
        self.set.send_modify(|set| {
            *set = set
                .iter()
                .map(|t| match t.name == name {
                    true => updated.clone(),
                    false => t.clone(),
                })
                .collect();
        });
        Ok(updated)
    }

    /// Remove a toxic, from every connection.
    pub fn remove(&self, name: &str) -> Result<(), ControlError> {
        match self.take(name, |_| true, true) {
            true => {
                self.ended(name, "removed");
                Ok(())
            }
            false => Err(self.no_such(name)),
        }
    }

    /// Remove every toxic, from every connection (a reset).
    pub fn clear(&self) {
        for name in self.names() {
            if self.take(&name, |_| true, true) {
                self.ended(&name, "removed by a reset");
            }
        }
    }

    /// Remove `name` from the list if `which` says so of its life; `withdraw` also takes it
    /// from the connections holding a claim. Whether it was removed.
    fn take(&self, name: &str, which: impl Fn(&Life) -> bool, withdraw: bool) -> bool {
        let mut lives = self.lives();
        let Some(at) = lives.iter().position(|l| l.name == name && which(l)) else {
            return false;
        };
        let life = lives.remove(at);
        if withdraw {
            life.withdrawn.store(true, Ordering::Release);
        }
        self.counting
            .store(lives.iter().any(|l| l.left.is_some()), Ordering::Release);
        // Withdrawn first: the connections that see the change must find the flag set.
        self.set.send_modify(|set| {
            *set = set.iter().filter(|t| t.name != name).cloned().collect();
        });
        true
    }

    fn lives(&self) -> std::sync::MutexGuard<'_, Vec<Life>> {
        self.lives.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn no_such(&self, name: &str) -> ControlError {
        ControlError::NoSuchToxic {
            port: self.port,
            name: name.to_owned(),
        }
    }

    fn ended(&self, name: &str, reason: impl Into<String>) {
        self.emit(EventKind::fault_ended(name, reason));
    }

    fn emit(&self, kind: EventKind) {
        self.events.emit(Event::new(self.port, self.service, kind));
    }
}

/// A timed toxic's time is up: remove it, unless it was removed (or replaced) meanwhile.
fn expire(toxics: &Weak<PortToxics>, name: &str, serial: u64, duration: std::time::Duration) {
    let Some(toxics) = toxics.upgrade() else {
        return;
    };
    if toxics.take(name, |l| l.serial == serial, true) {
        let after = humantime::format_duration(duration);
        toxics.ended(name, format!("its {after} are over"));
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn toxics(initial: Vec<Toxic>) -> (Arc<PortToxics>, EventBus) {
        let events = EventBus::new();
        (PortToxics::new(7, "echo", events.clone(), initial), events)
    }

    fn ended(
        events: &mut tokio::sync::broadcast::Receiver<Arc<switchboard_core::Timed>>,
    ) -> Vec<String> {
        let mut reasons = Vec::new();
        while let Ok(timed) = events.try_recv() {
            if let EventKind::FaultEnded { fault, reason } = &timed.event.kind {
                reasons.push(format!("{fault}: {reason}"));
            }
        }
        reasons
    }

    #[tokio::test]
    async fn a_counted_toxic_goes_to_exactly_n_connections() {
        let (toxics, events) = toxics(vec![]);
        let mut seen = events.subscribe();
        toxics
            .add(Toxic::reset_peer(Duration::ZERO).first(2))
            .unwrap();
        assert_eq!(toxics.list()[0].first, Some(2));

        let mut first = toxics.faults();
        assert_eq!(toxics.list()[0].first, Some(1), "one claimed");
        let mut second = toxics.faults();
        assert!(toxics.list().is_empty(), "spent: no longer listed");
        let mut third = toxics.faults();

        use switchboard_core::FaultLayer;
        assert!(
            !first.is_inert() && !second.is_inert(),
            "the two claims apply"
        );
        assert!(third.is_inert(), "the third connection has no fault");
        assert_eq!(
            ended(&mut seen),
            ["reset_peer_downstream: its 2 connection(s) have had it"]
        );
    }

    #[tokio::test]
    async fn removing_a_counted_toxic_withdraws_it_from_its_connections() {
        use switchboard_core::FaultLayer;
        let (toxics, _events) = toxics(vec![Toxic::latency(Duration::from_millis(5)).first(3)]);
        let mut claimed = toxics.faults();
        assert!(!claimed.is_inert());
        toxics.remove("latency_downstream").unwrap();
        assert!(claimed.is_inert(), "withdrawn at its next look");
        assert!(toxics.remove("latency_downstream").is_err());
    }

    #[tokio::test]
    async fn an_uncounted_toxic_reaches_every_connection_until_removed() {
        use switchboard_core::FaultLayer;
        let (toxics, _events) = toxics(vec![]);
        let mut before = toxics.faults();
        toxics.add(Toxic::bandwidth(10)).unwrap();
        let mut after = toxics.faults();
        assert!(!before.is_inert() && !after.is_inert());
        assert!(matches!(
            toxics.add(Toxic::bandwidth(20)),
            Err(ControlError::ToxicExists { .. })
        ));
        toxics.clear();
        assert!(before.is_inert() && after.is_inert());
        assert!(toxics.list().is_empty());
    }

    #[tokio::test(start_paused = true)]
    async fn a_timed_toxic_ends_on_time_and_only_itself() {
        let (toxics, events) = toxics(vec![]);
        let mut seen = events.subscribe();
        let minute = Duration::from_secs(60);
        toxics.add(Toxic::latency(minute).lasting(minute)).unwrap();
        // Removed and added again before the first one's time is up: the first timer must
        // not end the second toxic.
        tokio::time::advance(Duration::from_secs(30)).await;
        toxics.remove("latency_downstream").unwrap();
        toxics.add(Toxic::latency(minute).lasting(minute)).unwrap();
        tokio::time::advance(Duration::from_secs(31)).await;
        settle().await;
        assert_eq!(
            toxics.names(),
            ["latency_downstream"],
            "the second one stays"
        );
        tokio::time::advance(Duration::from_secs(30)).await;
        settle().await;
        assert!(toxics.names().is_empty(), "the second one's minute is over");
        assert_eq!(
            ended(&mut seen),
            [
                "latency_downstream: removed",
                "latency_downstream: its 1m are over"
            ]
        );
    }

    /// Let the timer tasks that are due run.
    async fn settle() {
        for _ in 0..10 {
            tokio::task::yield_now().await;
        }
    }
}
