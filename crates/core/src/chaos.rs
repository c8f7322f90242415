//! Protocol-level faults for SMTP, in the shape of Mailpit's chaos triggers: refuse MAIL
//! (`Sender`), RCPT (`Recipient`), AUTH (`Authentication`) or the message after DATA
//! (`Data`, beyond Mailpit) with a given code, at a given probability. Settable at start-up
//! (`[smtp.chaos]`) and at run time (`PUT /api/v1/chaos`).

use std::sync::{Arc, RwLock};

use serde::{Deserialize, Serialize};

/// One trigger: the reply code, and the chance in percent that it fires.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Trigger {
    /// An SMTP error code, 400 to 599.
    #[serde(rename = "ErrorCode")]
    pub error_code: u16,
    /// 0 (never, the default) to 100 (always).
    #[serde(rename = "Probability")]
    pub probability: u8,
}

/// Every trigger; the JSON shape of Mailpit's `Triggers`, plus `Data`.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Triggers {
    #[serde(rename = "Sender", default)]
    pub sender: Trigger,
    #[serde(rename = "Recipient", default)]
    pub recipient: Trigger,
    #[serde(rename = "Authentication", default)]
    pub authentication: Trigger,
    #[serde(rename = "Data", default)]
    pub data: Trigger,
}

/// The `[smtp.chaos]` table: the same triggers in TOML's own style.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ChaosSettings {
    pub sender: TriggerSetting,
    pub recipient: TriggerSetting,
    pub authentication: TriggerSetting,
    pub data: TriggerSetting,
}

#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TriggerSetting {
    pub error_code: u16,
    pub probability: u8,
}

impl From<TriggerSetting> for Trigger {
    fn from(t: TriggerSetting) -> Self {
        Trigger {
            error_code: t.error_code,
            probability: t.probability,
        }
    }
}

impl From<ChaosSettings> for Triggers {
    fn from(c: ChaosSettings) -> Self {
        Triggers {
            sender: c.sender.into(),
            recipient: c.recipient.into(),
            authentication: c.authentication.into(),
            data: c.data.into(),
        }
    }
}

impl Triggers {
    /// Check codes and probabilities; the message names the trigger.
    pub fn validate(&self) -> Result<(), String> {
        for (name, t) in [
            ("Sender", self.sender),
            ("Recipient", self.recipient),
            ("Authentication", self.authentication),
            ("Data", self.data),
        ] {
            if t.probability > 100 {
                return Err(format!(
                    "{name}: probability {} is above 100",
                    t.probability
                ));
            }
            if t.probability > 0 && !(400..=599).contains(&t.error_code) {
                return Err(format!(
                    "{name}: error code {} is not an SMTP error (400 to 599)",
                    t.error_code
                ));
            }
        }
        Ok(())
    }
}

/// Which command a trigger acts on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ChaosPoint {
    Sender,
    Recipient,
    Authentication,
    Data,
}

/// The live triggers, shared by the SMTP service (which fires them) and the HTTP API
/// (which sets them). Cloning is cheap; every clone is the same set.
#[derive(Clone, Debug, Default)]
pub struct Chaos {
    triggers: Arc<RwLock<Triggers>>,
}

impl Chaos {
    pub fn new(triggers: Triggers) -> Self {
        Self {
            triggers: Arc::new(RwLock::new(triggers)),
        }
    }

    pub fn get(&self) -> Triggers {
        *self.triggers.read().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace every trigger (Mailpit's PUT: omitted triggers are off).
    pub fn set(&self, triggers: Triggers) -> Result<(), String> {
        triggers.validate()?;
        *self.triggers.write().unwrap_or_else(|p| p.into_inner()) = triggers;
        Ok(())
    }

    /// Roll the dice for `point`: the error code to reply with, if the trigger fires.
    pub fn fire(&self, point: ChaosPoint) -> Option<u16> {
        let triggers = self.get();
        let trigger = match point {
            ChaosPoint::Sender => triggers.sender,
            ChaosPoint::Recipient => triggers.recipient,
            ChaosPoint::Authentication => triggers.authentication,
            ChaosPoint::Data => triggers.data,
        };
        (trigger.probability > 0 && fastrand::u8(0..100) < trigger.probability)
            .then_some(trigger.error_code)
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
                probability: 100
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
            assert_eq!(chaos.fire(ChaosPoint::Recipient), Some(550));
            assert_eq!(chaos.fire(ChaosPoint::Sender), None);
        }
    }

    #[test]
    fn bad_triggers_are_refused() {
        let chaos = Chaos::default();
        let mut triggers = Triggers {
            data: Trigger {
                error_code: 250,
                probability: 10,
            },
            ..Triggers::default()
        };
        assert!(
            chaos
                .set(triggers)
                .unwrap_err()
                .contains("Data: error code 250")
        );
        triggers.data = Trigger {
            error_code: 451,
            probability: 101,
        };
        assert!(chaos.set(triggers).is_err());
    }
}
