use std::time::Duration;

use serde::Deserialize;
use switchboard_core::InvalidSetting;
use switchboard_mail::Triggers;

/// Limits, timeouts and policies of the SMTP service: the `[smtp]` table.
#[derive(Clone, Debug, Deserialize, PartialEq, Eq)]
#[serde(default, deny_unknown_fields)]
pub struct SmtpSettings {
    /// The name in the greeting and replies; default: this machine's host name.
    pub hostname: Option<String>,
    /// Largest message accepted, in bytes (advertised as SIZE); larger ones get 552.
    pub max_message_bytes: usize,
    /// Most recipients of one message; more get 452 (the client sends the rest later).
    pub max_recipients: usize,
    /// After this many error replies in a row the session ends with 421.
    pub max_errors: u32,
    /// Longest text line in a message, CRLF included (RFC 5321 says 1000). A message with a
    /// longer line is refused with 554 after its end, so clients that would have it
    /// mangled by a real mail server find out here.
    pub max_line_bytes: usize,
    /// How long a whole command line may take to arrive, from the previous reply, before
    /// 421; bytes of an unfinished line do not restart the clock.
    #[serde(with = "humantime_serde")]
    pub command_timeout: Duration,
    /// How long the whole DATA phase may take before 421.
    #[serde(with = "humantime_serde")]
    pub data_timeout: Duration,
    /// How long a STARTTLS or implicit-TLS handshake may take.
    #[serde(with = "humantime_serde")]
    pub handshake_timeout: Duration,
    /// `optional` (AUTH offered, not needed), `required` (MAIL needs AUTH first) or `off`.
    pub auth: AuthPolicy,
    /// Protocol faults at start-up (the `[smtp.chaos]` table); changeable at run time.
    pub chaos: Triggers,
}

/// Whether clients must, may or cannot authenticate.
#[derive(Clone, Copy, Debug, Default, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum AuthPolicy {
    Off,
    #[default]
    Optional,
    Required,
}

/// RFC 5321 4.5.3.1.4: a command line is at most 512 octets with its CRLF.
pub const MAX_COMMAND_LINE: usize = 512;
/// RFC 4954 4: AUTH lines may be longer, up to 12288 octets.
pub const MAX_AUTH_LINE: usize = 12288;

impl Default for SmtpSettings {
    fn default() -> Self {
        Self {
            hostname: None,
            max_message_bytes: 10 * 1024 * 1024,
            max_recipients: 100,
            max_errors: 10,
            max_line_bytes: 1000,
            // RFC 5321 4.5.3.2 suggests five minutes for commands, ten for DATA.
            command_timeout: Duration::from_secs(5 * 60),
            data_timeout: Duration::from_secs(10 * 60),
            handshake_timeout: Duration::from_secs(10),
            auth: AuthPolicy::Optional,
            chaos: Triggers::default(),
        }
    }
}

impl SmtpSettings {
    /// Check the values that cannot be expressed by their types; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidSetting> {
        for (key, below) in [
            ("max_recipients", self.max_recipients == 0),
            ("max_errors", self.max_errors == 0),
        ] {
            if below {
                return Err(InvalidSetting::new(
                    key,
                    format!("{key} must be at least 1"),
                ));
            }
        }
        if self.max_line_bytes < 3 {
            return Err(InvalidSetting::new(
                "max_line_bytes",
                "max_line_bytes must be at least 3",
            ));
        }
        for (key, value) in [
            ("command_timeout", self.command_timeout),
            ("data_timeout", self.data_timeout),
            ("handshake_timeout", self.handshake_timeout),
        ] {
            if value.is_zero() {
                return Err(InvalidSetting::new(
                    key,
                    format!("{key} must be longer than zero"),
                ));
            }
        }
        Ok(())
    }
}
