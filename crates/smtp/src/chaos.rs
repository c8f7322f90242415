//! Firing Mailpit's chaos triggers. The triggers themselves live in the mail crate, below
//! this service and the HTTP API that sets them.

use switchboard_mail::{Chaos, Trigger, Triggers};

/// Which command a trigger acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChaosPoint {
    Sender,
    Recipient,
    Authentication,
    Data,
}

/// The error code to reply with at `point`, if its trigger fires: one of its `First`
/// failures while any are left, else a roll of its dice.
pub(crate) fn fire(chaos: &Chaos, point: ChaosPoint) -> Option<u16> {
    if let Some(code) = chaos.take_first(|t| point.trigger(t)) {
        return Some(code);
    }
    let trigger = *point.trigger(&mut chaos.get());
    (trigger.probability > 0 && fastrand::u8(0..100) < trigger.probability)
        .then_some(trigger.error_code)
}

impl ChaosPoint {
    /// This point's trigger among all of them.
    fn trigger(self, triggers: &mut Triggers) -> &mut Trigger {
        match self {
            ChaosPoint::Sender => &mut triggers.sender,
            ChaosPoint::Recipient => &mut triggers.recipient,
            ChaosPoint::Authentication => &mut triggers.authentication,
            ChaosPoint::Data => &mut triggers.data,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn probability_100_always_fires_and_0_never() {
        let chaos = Chaos::default();
        let triggers = Triggers {
            recipient: Trigger {
                error_code: 550,
                probability: 100,
                first: 0,
            },
            ..Triggers::default()
        };
        chaos.set(triggers).unwrap();
        for _ in 0..100 {
            assert_eq!(fire(&chaos, ChaosPoint::Recipient), Some(550));
            assert_eq!(fire(&chaos, ChaosPoint::Sender), None);
        }
    }
}
