//! Firing Mailpit's chaos triggers. The triggers themselves live in the mail crate, below
//! this service and the HTTP API that sets them.

use switchboard_mail::Chaos;

/// Which command a trigger acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ChaosPoint {
    Sender,
    Recipient,
    Authentication,
    Data,
}

/// Roll the dice for `point`: the error code to reply with, if its trigger fires.
pub(crate) fn fire(chaos: &Chaos, point: ChaosPoint) -> Option<u16> {
    let triggers = chaos.get();
    let trigger = match point {
        ChaosPoint::Sender => triggers.sender,
        ChaosPoint::Recipient => triggers.recipient,
        ChaosPoint::Authentication => triggers.authentication,
        ChaosPoint::Data => triggers.data,
    };
    (trigger.probability > 0 && fastrand::u8(0..100) < trigger.probability)
        .then_some(trigger.error_code)
}

#[cfg(test)]
mod tests {
    use switchboard_mail::{Trigger, Triggers};

    use super::*;

    #[test]
    fn probability_100_always_fires_and_0_never() {
        let chaos = Chaos::default();
        let triggers = Triggers {
            recipient: Trigger {
                error_code: 550,
                probability: 100,
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
