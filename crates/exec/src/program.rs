//! What an `exec` row runs: the program, who it runs as, and its limits — the row's own
//! keys ([`RowKeys`]), which the app hands over from the config file or the control API.

use std::time::Duration;

use serde::Deserialize;
use switchboard_core::{InvalidRow, RowKeys, Target};

/// What an `exec` row runs, and within which limits: the row's keys.
#[derive(Clone, Debug, PartialEq, Eq, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct Program {
    /// The program and its arguments: `["cat"]`, `["/usr/bin/date", "-u"]`.
    pub command: Vec<String>,
    /// Run `command`'s one string with `/bin/sh -c` (pipes, redirections).
    pub shell: bool,
    /// The user to run as, when switchboard runs as root (default `nobody`).
    pub user: Option<String>,
    /// The group to run as (default: the user's own group).
    pub group: Option<String>,
    /// When switchboard does not run as root, the program runs as switchboard's own user
    /// and can read its files (the CA's key among them): it runs only if this is true.
    pub allow_exec_same_user: bool,
    /// How long one program may run; then it is killed and its connection closed.
    #[serde(with = "humantime_serde")]
    pub time_limit: Duration,
    /// CPU seconds one program may use (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Bytes of memory the program and all it starts may use together (their cgroup), and
    /// of address space each process may map (RLIMIT_AS).
    pub max_memory: u64,
    /// Processes the program and all it starts may be at once (their cgroup; without one,
    /// RLIMIT_NPROC where programs run as a user of their own).
    pub max_processes: u64,
    /// Files one program may have open at once (RLIMIT_NOFILE).
    pub max_open_files: u64,
    /// Bytes of a program's standard error written to the log; the rest is read and dropped.
    pub max_stderr: usize,
}

impl Default for Program {
    fn default() -> Self {
        Self {
            command: Vec::new(),
            shell: false,
            user: None,
            group: None,
            allow_exec_same_user: false,
            time_limit: Duration::from_secs(300),
            cpu_seconds: 60,
            max_memory: 1 << 30,
            max_processes: 64,
            max_open_files: 256,
            max_stderr: 4096,
        }
    }
}

impl Program {
    /// Check what types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), InvalidRow> {
        match (self.command.as_slice(), self.shell) {
            ([], _) => {
                return Err(InvalidRow::new(
                    "an exec row needs `command`: the program and its arguments, \
                            e.g. command = [\"cat\"]",
                ));
            }
            ([program, ..], _) if program.is_empty() => {
                return Err(InvalidRow::at(
                    "command",
                    "`command` starts with an empty program name",
                ));
            }
            ([_], true) | (_, false) => {}
            (_, true) => {
                return Err(InvalidRow::at(
                    "command",
                    "with `shell = true`, `command` is one string for /bin/sh -c, \
                            e.g. command = [\"date; uptime\"]",
                ));
            }
        }
        for (key, zero) in [
            ("time_limit", self.time_limit.is_zero()),
            ("cpu_seconds", self.cpu_seconds == 0),
            ("max_memory", self.max_memory == 0),
            ("max_processes", self.max_processes == 0),
            ("max_open_files", self.max_open_files == 0),
        ] {
            if zero {
                return Err(InvalidRow::at(
                    key,
                    format!("`{key}` must be more than zero"),
                ));
            }
        }
        Ok(())
    }

    /// The command as people would type it: `cat`, `sh -c 'date; uptime'`.
    pub fn command_line(&self) -> String {
        match self.shell {
            true => format!("sh -c '{}'", self.command.join(" ")),
            false => self.command.join(" "),
        }
    }
}

impl RowKeys for Program {
    fn check(&self) -> Result<(), InvalidRow> {
        self.validate()
    }

    fn target(&self) -> Option<Target> {
        Some(Target {
            key: "command",
            value: self.command_line(),
        })
    }
}
