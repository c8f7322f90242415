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

/// A trigger that fired.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Fired {
    /// The error code to reply with.
    pub(crate) code: u16,
    /// This was the last of its `First` failures: the fault has ended.
    pub(crate) spent: bool,
}

/// Whether `point`'s trigger fires: one of its `First` failures while any are left, else a
/// roll of its dice.
pub(crate) fn fire(chaos: &Chaos, point: ChaosPoint) -> Option<Fired> {
    if let Some((code, left)) = chaos.take_first(|t| point.trigger(t)) {
        return Some(Fired {
            code,
            spent: left == 0,
        });
    }
    let trigger = *point.trigger(&mut chaos.get());
    (trigger.probability > 0 && fastrand::u8(0..100) < trigger.probability).then_some(Fired {
        code: trigger.error_code,
        spent: false,
    })
}

impl ChaosPoint {
    /// The trigger's name, as Mailpit's API spells it.
    pub(crate) fn name(self) -> &'static str {
        match self {
            ChaosPoint::Sender => "Sender",
            ChaosPoint::Recipient => "Recipient",
            ChaosPoint::Authentication => "Authentication",
            ChaosPoint::Data => "Data",
        }
    }

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
            assert_eq!(
                fire(&chaos, ChaosPoint::Recipient),
                Some(Fired {
                    code: 550,
                    spent: false
                })
            );
            assert_eq!(fire(&chaos, ChaosPoint::Sender), None);
        }
    }
}
