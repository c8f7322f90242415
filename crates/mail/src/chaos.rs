//! Mailpit's chaos triggers: make the SMTP service refuse MAIL (`Sender`), RCPT
//! (`Recipient`), AUTH (`Authentication`) or the message after DATA (`Data`, beyond
//! Mailpit) with a given code, at a given probability — or, beyond Mailpit, exactly the
//! next `First` times and then never (greylisting, as real servers do it). Set at start-up
//! (`[smtp.chaos]`) and at run time (`PUT /api/v1/chaos`).
//!
//! The triggers live here, below both services, because the HTTP API sets them and the
//! SMTP service fires them (it does the firing, in its own crate).

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};
use switchboard_core::InvalidSetting;

/// One trigger: the reply code, and the chance in percent that it fires.
///
/// JSON uses Mailpit's names (`ErrorCode`); the `[smtp.chaos]` table TOML's own style
/// (`error_code`): one type reads both.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Trigger {
    /// An SMTP error code, 400 to 599.
    #[serde(rename = "ErrorCode", alias = "error_code")]
    pub error_code: u16,
    /// 0 (never, the default) to 100 (always).
    #[serde(rename = "Probability", alias = "probability")]
    pub probability: u8,
    /// Beyond Mailpit: fail exactly the next this many commands, then none (the count goes
    /// down as they fail; `Probability` is not rolled meanwhile). Shown only while above 0,
    /// so that Mailpit's clients see Mailpit's shape.
    #[serde(rename = "First", alias = "first", skip_serializing_if = "is_zero")]
    pub first: u32,
}

fn is_zero(n: &u32) -> bool {
    *n == 0
}

/// Every trigger; the JSON shape of Mailpit's `Triggers`, plus `Data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Triggers {
    #[serde(rename = "Sender", alias = "sender")]
    pub sender: Trigger,
    #[serde(rename = "Recipient", alias = "recipient")]
    pub recipient: Trigger,
    #[serde(rename = "Authentication", alias = "authentication")]
    pub authentication: Trigger,
    #[serde(rename = "Data", alias = "data")]
    pub data: Trigger,
}

impl Triggers {
    /// Each trigger with its name, as Mailpit's API spells it.
    pub fn named(&self) -> [(&'static str, Trigger); 4] {
        [
            ("Sender", self.sender),
            ("Recipient", self.recipient),
            ("Authentication", self.authentication),
            ("Data", self.data),
        ]
    }

    /// Check codes and probabilities; the message names the trigger.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (name, t) in self.named() {
            if t.probability > 100 {
                return Err(InvalidSetting::new(
                    name,
                    format!("{name}: probability {} is above 100", t.probability),
                ));
            }
            if (t.probability > 0 || t.first > 0) && !(400..=599).contains(&t.error_code) {
                return Err(InvalidSetting::new(
                    name,
                    format!(
                        "{name}: error code {} is not an SMTP error (400 to 599)",
                        t.error_code
                    ),
                ));
            }
        }
        Ok(())
    }
}

/// The live triggers, shared by the SMTP service (which fires them) and the HTTP API
/// (which sets them). Cloning is cheap; every clone is the same set.
#[derive(Clone, Debug, Default)]
pub struct Chaos {
    triggers: Arc<RwLock<Triggers>>,
    /// What they were at start-up, for [`Chaos::reset`].
    initial: Triggers,
}

impl Chaos {
    pub fn new(triggers: Triggers) -> Self {
        Self {
            triggers: Arc::new(RwLock::new(triggers)),
            initial: triggers,
        }
    }

    pub fn get(&self) -> Triggers {
        *self.triggers.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace every trigger (Mailpit's PUT: omitted triggers are off).
    pub fn set(&self, triggers: Triggers) -> Result<(), InvalidSetting> {
        triggers.validate()?;
        *self.triggers.write().unwrap_or_else(|p| p.into_inner()) = triggers;
        Ok(())
    }

    /// Count one use of a trigger that fails its `First` commands: the code to fail with
    /// while any are left, and how many are left after this one; none once they are used up.
    pub fn take_first(
        &self,
        trigger: impl Fn(&mut Triggers) -> &mut Trigger,
    ) -> Option<(u16, u32)> {
        // Most commands meet no counted trigger: a read lock tells.
        if trigger(&mut self.get()).first == 0 {
            return None;
        }
        let mut triggers = self.triggers.write().unwrap_or_else(|p| p.into_inner());
        let counted = trigger(&mut triggers);
        (counted.first > 0).then(|| {
            counted.first -= 1;
            (counted.error_code, counted.first)
        })
    }

    /// Back to the triggers given at start-up.
    pub fn reset(&self) {
        *self.triggers.write().unwrap_or_else(|p| p.into_inner()) = self.initial;
    }
}

/// Say which counted triggers (`first`) a change from `before` to `after` ended and which it
/// started, as fault events on every SMTP port of `ports` (the triggers are shared by all of
/// them); `why` says why one ended ("replaced", "removed by a reset").
pub fn announce(
    events: &switchboard_core::EventBus,
    ports: &dyn switchboard_core::PortDirectory,
    before: Triggers,
    after: Triggers,
    why: &str,
) {
    use switchboard_core::{Event, EventKind};
    let smtp_ports: Vec<_> = ports
        .ports()
        .into_iter()
        .filter(|p| matches!(p.service, "smtp" | "smtps"))
        .collect();
    let emit = |kind: EventKind| {
        for port in &smtp_ports {
            events.emit(Event::new(port.port, port.service, kind.clone()));
        }
    };
    for ((name, old), (_, new)) in before.named().into_iter().zip(after.named()) {
        if old == new {
            continue;
        }
        let fault = format!("chaos {name}");
        if old.first > 0 {
            emit(EventKind::fault_ended(&fault, why));
        }
        if new.first > 0 {
            let what = format!(
                "the next {} {name} command(s) fail with {}",
                new.first, new.error_code
            );
            emit(EventKind::fault_started(fault, what));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mailpit_json_shape() {
        let triggers: Triggers =
            serde_json::from_str(r#"{"Sender": {"ErrorCode": 451, "Probability": 100}}"#).unwrap();
        assert_eq!(
            triggers.sender,
            Trigger {
                error_code: 451,
                probability: 100,
                first: 0
            }
        );
        assert_eq!(
            triggers.recipient,
            Trigger::default(),
            "omitted triggers are off"
        );
        let json = serde_json::to_value(triggers).unwrap();
        assert_eq!(
            json["Recipient"],
            serde_json::json!({"ErrorCode": 0, "Probability": 0})
        );
    }

    #[test]
    fn toml_style_keys_read_the_same_triggers() {
        let triggers: Triggers =
            toml::from_str("sender = { error_code = 451, probability = 5 }\n").unwrap();
        assert_eq!(
            triggers.sender,
            Trigger {
                error_code: 451,
                probability: 5,
                first: 0
            }
        );
        assert!(toml::from_str::<Triggers>("sender = { code = 451 }\n").is_err());
    }

    #[test]
    fn reset_restores_the_start_up_triggers() {
        let initial = Triggers {
            sender: Trigger {
                error_code: 451,
                probability: 50,
                first: 0,
            },
            ..Triggers::default()
        };
        let chaos = Chaos::new(initial);
        chaos.set(Triggers::default()).unwrap();
        assert_eq!(chaos.clone().get(), Triggers::default());
        chaos.reset();
        assert_eq!(chaos.get(), initial);
    }

    #[test]
    fn first_fails_exactly_that_many_then_none_and_shows_while_left() {
        let chaos = Chaos::default();
        let greylist: Triggers =
            serde_json::from_str(r#"{"Recipient": {"ErrorCode": 451, "First": 2}}"#).unwrap();
        chaos.set(greylist).unwrap();
        assert_eq!(chaos.take_first(|t| &mut t.sender), None);
        assert_eq!(
            chaos.take_first(|t| &mut t.recipient).map(|(code, _)| code),
            Some(451)
        );
        assert_eq!(
            serde_json::to_value(chaos.get()).unwrap()["Recipient"]["First"],
            1
        );
        assert_eq!(
            chaos.take_first(|t| &mut t.recipient).map(|(code, _)| code),
            Some(451)
        );
        assert_eq!(chaos.take_first(|t| &mut t.recipient), None);
        let spent = serde_json::to_value(chaos.get()).unwrap();
        assert_eq!(
            spent["Recipient"],
            serde_json::json!({"ErrorCode": 451, "Probability": 0})
        );
        assert!(
            serde_json::from_str::<Triggers>(r#"{"Sender": {"ErrorCode": 250, "First": 1}}"#)
                .unwrap()
                .validate()
                .is_err()
        );
    }

    #[test]
    fn bad_triggers_are_refused() {
        let chaos = Chaos::default();
        let mut triggers = Triggers {
            data: Trigger {
                error_code: 250,
                probability: 10,
                first: 0,
            },
            ..Triggers::default()
        };
        assert!(
            chaos
                .set(triggers)
                .unwrap_err()
                .message
                .contains("Data: error code 250")
        );
        triggers.data = Trigger {
            error_code: 451,
            probability: 101,
            first: 0,
        };
        assert!(chaos.set(triggers).is_err());
    }
}
