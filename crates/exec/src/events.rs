//! What an exec row tells of its programs: each one started, and each one ended.

use std::time::Duration;

use serde::Serialize;
use switchboard_core::{PortName, ServiceEvent, millis};

/// The `program_started` event: an `exec` row started its program for connection `id`.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramStarted {
    pub id: u64,
    pub pid: u32,
    /// The command, as it would be typed.
    pub command: String,
}

impl ServiceEvent for ProgramStarted {
    fn name(&self) -> &'static str {
        "program_started"
    }

    fn log(&self, port: PortName, service: &'static str) {
        let Self { pid, command, .. } = self;
        tracing::info!(
            pid,
            "program started: `{command}` (pid {pid}) for port {port} ({service})"
        );
    }
}

/// The `program_exited` event: the program of connection `id` ended and was reaped.
#[derive(Clone, Debug, Serialize)]
pub struct ProgramExited {
    pub id: u64,
    pub pid: u32,
    /// How it ended: `exit 0`, `killed by SIGKILL`.
    pub status: String,
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
}

impl ServiceEvent for ProgramExited {
    fn name(&self) -> &'static str {
        "program_exited"
    }

    fn log(&self, _: PortName, _: &'static str) {
        let Self {
            pid,
            status,
            duration,
            ..
        } = self;
        tracing::info!(
            pid,
            %status,
            "program ended: pid {pid}, {status}, after {ms:.1} ms",
            ms = duration.as_secs_f64() * 1000.0
        );
    }
}

#[cfg(test)]
mod tests {
    use switchboard_core::{Event, EventKind, Said};

    use super::*;

    #[test]
    fn program_events_are_flat_objects_of_their_kind() {
        let exited = ProgramExited {
            id: 1,
            pid: 2,
            status: "exit 0".into(),
            duration: Duration::from_micros(1500),
        };
        let event = Event::new(8007, "exec", EventKind::Service(Said::new(exited)));
        assert_eq!(
            serde_json::to_value(&event).unwrap(),
            serde_json::json!({"port": 8007, "protocol": "tcp", "service": "exec", "kind": "program_exited", "id": 1, "pid": 2, "status": "exit 0", "duration_ms": 1.5})
        );
        let started = ProgramStarted {
            id: 1,
            pid: 2,
            command: "cat".into(),
        };
        let event = Event::new(8007, "exec", EventKind::Service(Said::new(started)));
        assert_eq!(
            serde_json::to_value(&event).unwrap()["kind"],
            "program_started"
        );
    }
}
