//! What an `exec` row runs: the program, who it runs as, and its limits. Plain data, read
//! from the config by the app, carried in the port table's row by the supervisor, and run
//! by `switchboard-exec`.

use std::time::Duration;

/// What an `exec` row runs, and within which limits: the row's keys.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Program {
    /// The program and its arguments: `["cat"]`, `["/usr/bin/date", "-u"]`.
    pub command: Vec<String>,
    /// Run `command`'s one string with `/bin/sh -c` (pipes, redirections).
    pub shell: bool,
    /// The user to run as, when switchboard runs as root (default `nobody`).
    pub user: Option<String>,
    /// The group to run as (default: the user's own group).
    pub group: Option<String>,
    /// How long one program may run; then it is killed and its connection closed.
    pub time_limit: Duration,
    /// CPU seconds one program may use (RLIMIT_CPU).
    pub cpu_seconds: u64,
    /// Bytes of address space one program may map (RLIMIT_AS).
    pub max_memory: u64,
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
            time_limit: Duration::from_secs(300),
            cpu_seconds: 60,
            max_memory: 1 << 30,
            max_open_files: 256,
            max_stderr: 4096,
        }
    }
}

impl Program {
    /// Check what types cannot; the message names the key.
    pub fn validate(&self) -> Result<(), String> {
        match (self.command.as_slice(), self.shell) {
            ([], _) => {
                return Err(
                    "an exec row needs `command`: the program and its arguments, \
                            e.g. command = [\"cat\"]"
                        .into(),
                );
            }
            ([program, ..], _) if program.is_empty() => {
                return Err("`command` starts with an empty program name".into());
            }
            ([_], true) | (_, false) => {}
            (_, true) => {
                return Err(
                    "with `shell = true`, `command` is one string for /bin/sh -c, \
                            e.g. command = [\"date; uptime\"]"
                        .into(),
                );
            }
        }
        for (key, zero) in [
            ("time_limit", self.time_limit.is_zero()),
            ("cpu_seconds", self.cpu_seconds == 0),
            ("max_memory", self.max_memory == 0),
            ("max_open_files", self.max_open_files == 0),
        ] {
            if zero {
                return Err(format!("`{key}` must be more than zero"));
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
