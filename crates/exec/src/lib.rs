//! Any program as a service, the way inetd did it: each connection to an `exec` row runs the
//! row's command, and the connection's bytes are relayed to the program's standard input and
//! from its standard output. The supervisor has already accepted the connection and applied
//! the row's rules and limits, and the bytes pass through the port's toxics and counters, so
//! a program on a port is served like every other service.
//!
//! ```text
//! client ──▶ port (rules, limits, toxics) ──▶ stdin  ┐
//!        ◀──                              ◀── stdout ┤ the program, one per connection
//!                                   the log ◀── stderr ┘
//! ```
//!
//! - The command runs directly (never through a shell, unless the row says `shell = true`);
//!   the client's bytes reach only its standard input, never its arguments or environment.
//! - Its environment is cleared, then holds only the variables of [`environment`].
//! - The client's half-close closes the program's standard input; the connection ends when
//!   the program has exited and its output is sent, at the row's `time_limit`, or at
//!   shutdown. Each program runs in a process group of its own, and the whole group is killed
//!   and the program reaped when its connection ends: no zombies, no orphans.
//! - Limits: the row's `max_connections`, `max_per_source` and `max_rate` (xinetd's
//!   `instances`, `per_source` and `cps`) hold for programs as for any connection; each
//!   program's tree gets a cgroup for its processes and memory together where switchboard
//!   can make one (`tree.rs`), and each process rlimits for CPU seconds, memory and open
//!   files (`limits.rs`). Programs die with switchboard, SIGKILL included (`reaper.rs`).
//!
//! # Layout
//!
//! - `program.rs`: [`Program`], an exec row's own keys: the command and its limits.
//! - `limits.rs`: [`RunAs`], the user programs run as, their rlimits and seccomp filter,
//!   what the child does between fork and exec.
//! - `tree.rs`: the cgroup of each program's tree (`max_processes`, `max_memory`).
//! - `reaper.rs`: what ends programs when switchboard is killed.
//! - `events.rs`: [`ProgramStarted`] and [`ProgramExited`], what a row tells of its programs.
//! - `error.rs`: [`ExecError`], why a row's service cannot be built.
//! - `lib.rs` (this file): [`ExecService`]: a program per connection, relayed and reaped.

use std::process::Stdio;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use switchboard_core::{BoxError, Conn, ConnInfo, Event, EventBus, Service, Shutdown};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::process::{Child, ChildStdout, Command};
use tracing::Instrument;

mod error;
mod events;
mod limits;
mod program;
mod reaper;
mod tree;

pub use error::ExecError;
pub use events::{ProgramExited, ProgramStarted};
pub use limits::RunAs;
pub use program::Program;

use crate::reaper::Reaper;
use crate::tree::{Tree, Trees};

/// The variables a program finds in its environment, and nothing else: UCSPI-TCP's names
/// (`PROTO`, `TCPREMOTEIP`, `TCPREMOTEPORT`, `TCPLOCALIP`, `TCPLOCALPORT`), systemd's
/// (`REMOTE_ADDR`, `REMOTE_PORT`), switchboard's (`SWITCHBOARD_SERVICE`, the row's name;
/// `SWITCHBOARD_CONN_ID`, the connection's id in the log and events) and a fixed `PATH`.
pub fn environment(row: &str, info: &ConnInfo) -> Vec<(&'static str, String)> {
    let remote = info.peer.ip().to_canonical().to_string();
    let local = info.local.ip().to_canonical().to_string();
    vec![
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("PROTO", "TCP".to_owned()),
        ("TCPREMOTEIP", remote.clone()),
        ("TCPREMOTEPORT", info.peer.port().to_string()),
        ("TCPLOCALIP", local),
        ("TCPLOCALPORT", info.local.port().to_string()),
        ("REMOTE_ADDR", remote),
        ("REMOTE_PORT", info.peer.port().to_string()),
        ("SWITCHBOARD_SERVICE", row.to_owned()),
        ("SWITCHBOARD_CONN_ID", info.id.to_string()),
    ]
}

/// Runs the row's program for each connection.
#[derive(Debug)]
pub struct ExecService {
    program: Arc<Program>,
    /// The row's name, for `SWITCHBOARD_SERVICE`.
    row: String,
    run_as: Option<RunAs>,
    /// The seccomp filter that keeps what a program starts in its process group.
    lock: Arc<seccompiler::BpfProgram>,
    events: EventBus,
}

impl ExecService {
    /// The service of the row called `row`. Fails when the program's user or group does not
    /// exist, or is asked for while switchboard does not run as root.
    pub fn new(program: Program, row: String, events: EventBus) -> Result<Self, ExecError> {
        program.validate()?;
        let run_as = RunAs::resolve(
            program.user.as_deref(),
            program.group.as_deref(),
            program.allow_exec_same_user,
        )?;
        Ok(Self {
            program: Arc::new(program),
            row,
            run_as,
            lock: limits::group_lock().map_err(ExecError::Filter)?,
            events,
        })
    }

    fn command(&self, info: &ConnInfo, tree: Option<&Tree>) -> Command {
        let program = &self.program;
        let mut command = match program.shell {
            true => {
                let mut sh = Command::new("/bin/sh");
                sh.arg("-c").args(&program.command);
                sh
            }
            false => {
                let mut command = Command::new(&program.command[0]);
                command.args(&program.command[1..]);
                command
            }
        };
        command
            .env_clear()
            .envs(environment(&self.row, info))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            // A group of its own, so that what it starts can be killed with it.
            .process_group(0)
            // If this future is dropped (the drain's deadline), the child is still killed,
            // and tokio reaps it.
            .kill_on_drop(true);
        limits::apply(
            &mut command,
            program,
            (self.run_as.as_ref(), tree),
            self.lock.clone(),
        );
        command
    }
}

/// Kills a program's whole process group when dropped: however its connection ends, nothing
/// it started is left running.
struct Group(Pid);

impl Drop for Group {
    fn drop(&mut self) {
        // ESRCH (the group is already gone) is the usual, happy case.
        let _ = killpg(self.0, Signal::SIGKILL);
    }
}

/// A program's group on the reaper's list (`reaper.rs`) while it may have members, and its
/// cgroups (`tree.rs`) until it is gone: dropped once the program has been reaped.
struct Watched {
    group: u32,
    tree: Option<Tree>,
}

impl Watched {
    fn new(group: u32, tree: Option<Tree>) -> Self {
        if let Some(reaper) = Reaper::get() {
            reaper.watch(group);
        }
        Self { group, tree }
    }
}

impl Drop for Watched {
    fn drop(&mut self) {
        if let Some(reaper) = Reaper::get() {
            reaper.forget(self.group);
        }
        if let Some(tree) = self.tree.take() {
            // Removing a cgroup waits for its last process to be gone.
            tokio::task::spawn_blocking(move || tree.remove());
        }
    }
}

/// How a program's connection ended.
enum End {
    /// The program exited and its output was sent.
    Exited(std::process::ExitStatus),
    /// It ran past the row's `time_limit`.
    TimeLimit,
    /// switchboard is shutting down.
    Shutdown,
    /// Sending its output to the client failed (the client went away).
    ClientGone(std::io::Error),
}

#[async_trait]
impl Service for ExecService {
    fn name(&self) -> &'static str {
        "exec"
    }

    async fn serve(self: Arc<Self>, conn: Conn, shutdown: Shutdown) -> Result<(), BoxError> {
        let info = conn.info;
        let tree = match Trees::get() {
            Some(trees) => {
                let (processes, memory) = (self.program.max_processes, self.program.max_memory);
                let made =
                    tokio::task::spawn_blocking(move || trees.make(processes, memory)).await?;
                Some(made.map_err(|e| format!("cannot make the program's cgroup: {e}"))?)
            }
            None => None,
        };
        let spawned = self.command(&info, tree.as_ref()).spawn();
        let mut child = match spawned {
            Ok(child) => child,
            Err(error) => {
                if let Some(tree) = tree {
                    tokio::task::spawn_blocking(move || tree.remove());
                }
                return Err(format!(
                    "cannot start `{}`: {error}",
                    self.program.command.first().map_or("", String::as_str)
                )
                .into());
            }
        };
        let pid = child.id().unwrap_or(0);
        let _watched = Watched::new(pid, tree);
        let group = Group(Pid::from_raw(pid as i32));
        let started = Instant::now();
        let command = self.program.command_line();
        let told = ProgramStarted {
            id: info.id,
            pid,
            command,
        };
        self.events.emit(Event::said(&info, told));

        let (Some(mut stdout), Some(stderr)) = (child.stdout.take(), child.stderr.take()) else {
            return Err("the program's output pipes are missing".into());
        };
        let deadline = tokio::time::Instant::now() + self.program.time_limit;
        // Its standard error is read until every writer has closed it, in a task of its own,
        // so that nothing the program wrote is lost when its output ends first.
        let mut errors = tokio::spawn(
            log_stderr(stderr, self.program.max_stderr).instrument(tracing::Span::current()),
        );
        let (reader, mut writer) = tokio::io::split(conn.stream);
        let end = tokio::select! {
            end = relay(&mut child, &mut stdout, reader, &mut writer) => end,
            () = tokio::time::sleep_until(deadline) => End::TimeLimit,
            () = shutdown.requested() => End::Shutdown,
        };
        // Whatever happened, nothing of the group outlives the connection, and the program
        // is reaped before the connection's task ends.
        drop(group);
        drop(stdout);
        // The group is gone, so its standard error closes: the rest of it reaches the log
        // before the program's end does (within the time limit, should a process that left
        // the group still hold it).
        tokio::select! {
            _ = &mut errors => {}
            () = tokio::time::sleep_until(deadline) => errors.abort(),
        }
        let status = match &end {
            End::Exited(status) => *status,
            _ => child.wait().await?,
        };
        let exited = ProgramExited {
            id: info.id,
            pid,
            status: describe(status),
            duration: started.elapsed(),
        };
        self.events.emit(Event::said(&info, exited));
        match end {
            End::Exited(_) => {
                let _ = writer.shutdown().await;
                Ok(())
            }
            End::TimeLimit => Err(format!(
                "the program ran past time_limit ({}) and was killed",
                humantime::format_duration(self.program.time_limit)
            )
            .into()),
            End::Shutdown => Ok(()),
            End::ClientGone(error) => {
                Err(format!("the client went away ({error}); the program was killed").into())
            }
        }
    }
}

/// Relay the connection to the program until it has exited and its output is sent.
///
/// The program's output pipe is the caller's: it stays open until the program has been
/// killed, so that a program still writing meets SIGKILL, not a closed pipe.
async fn relay(
    child: &mut Child,
    stdout: &mut ChildStdout,
    mut reader: impl AsyncRead + Unpin,
    writer: &mut (impl AsyncWrite + Unpin),
) -> End {
    let Some(stdin) = child.stdin.take() else {
        // It was asked for as a pipe; without it there is nothing to relay.
        return End::ClientGone(std::io::Error::other("the program's input pipe is missing"));
    };
    // Client → program. The client's half-close closes the program's standard input, and so
    // does the program no longer reading it; neither ends the connection. A failed read
    // (the client reset, or passed the row's `idle_timeout`) means the client is gone.
    let input = async move {
        let mut stdin = Some(stdin);
        let mut buf = vec![0u8; 16 * 1024];
        loop {
            match reader.read(&mut buf).await {
                Ok(0) => {
                    drop(stdin.take());
                    return std::future::pending::<std::io::Error>().await;
                }
                Ok(n) => {
                    // A program that stopped reading loses the rest; the client is still
                    // read, so that its reset or silence is noticed.
                    if let Some(pipe) = stdin.as_mut()
                        && pipe.write_all(&buf[..n]).await.is_err()
                    {
                        stdin = None;
                    }
                }
                Err(error) => return error,
            }
        }
    };
    let output = tokio::io::copy(stdout, writer);
    tokio::pin!(output);
    let sent = tokio::select! {
        sent = &mut output => sent,
        gone = input => Err(gone),
    };
    if let Err(error) = sent {
        return End::ClientGone(error);
    }
    // The program closed its output: it has exited, or is about to.
    match child.wait().await {
        Ok(status) => End::Exited(status),
        Err(error) => End::ClientGone(error),
    }
}

/// Write the program's standard error to the log, line by line, up to `max` bytes; read and
/// drop the rest (a program must never block on a full pipe), until it closes.
async fn log_stderr(mut stderr: impl AsyncRead + Unpin, max: usize) {
    let mut logged = 0;
    let mut pending = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let n = match stderr.read(&mut buf).await {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        if logged >= max {
            continue;
        }
        let room = (max - logged).min(n);
        pending.extend_from_slice(&buf[..room]);
        logged += room;
        while let Some(end) = pending.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = pending.drain(..=end).collect();
            log_line(&line);
        }
        if logged >= max {
            log_line(&std::mem::take(&mut pending));
            tracing::info!("stderr: more than max_stderr ({max} bytes); the rest is dropped");
        }
    }
    if !pending.is_empty() {
        log_line(&pending);
    }
}

fn log_line(line: &[u8]) {
    let text = String::from_utf8_lossy(line);
    let text = text.trim_end_matches(['\r', '\n']);
    if !text.is_empty() {
        tracing::info!(target: "switchboard::exec", "stderr: {text}");
    }
}

/// An exit status in words: `exit 0`, `killed by SIGKILL`.
fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exit {code}"),
        (None, Some(signal)) => match Signal::try_from(signal) {
            Ok(signal) => format!("killed by {}", signal.as_str()),
            Err(_) => format!("killed by signal {signal}"),
        },
        (None, None) => "ended".to_owned(),
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    fn program(command: &[&str], shell: bool) -> Program {
        Program {
            command: command.iter().map(|s| s.to_string()).collect(),
            shell,
            allow_exec_same_user: true,
            ..Program::default()
        }
    }

    #[test]
    fn a_command_is_checked_before_it_is_run() {
        assert!(program(&["cat"], false).validate().is_ok());
        assert!(program(&["date; uptime"], true).validate().is_ok());
        let err = program(&[], false).validate().unwrap_err();
        assert!(err.message.contains("needs `command`"), "{err}");
        let err = program(&["sh", "-c"], true).validate().unwrap_err();
        assert!(err.message.contains("one string for /bin/sh -c"), "{err}");
        let mut zero = program(&["cat"], false);
        zero.time_limit = Duration::ZERO;
        assert!(zero.validate().unwrap_err().key == Some("time_limit"));
    }

    #[test]
    fn the_environment_names_both_ends_and_nothing_else() {
        let info = ConnInfo {
            id: 7,
            service: "exec",
            local: "127.0.0.1:8007".parse().unwrap(),
            peer: "[::ffff:127.0.0.2]:40000".parse().unwrap(),
            tls: None,
        };
        let env: std::collections::HashMap<_, _> = environment("cat", &info).into_iter().collect();
        assert_eq!(env["PROTO"], "TCP");
        assert_eq!(
            env["TCPREMOTEIP"], "127.0.0.2",
            "a v4-mapped peer is shown as IPv4"
        );
        assert_eq!(env["TCPREMOTEPORT"], "40000");
        assert_eq!(env["TCPLOCALPORT"], "8007");
        assert_eq!(env["REMOTE_ADDR"], "127.0.0.2");
        assert_eq!(env["SWITCHBOARD_SERVICE"], "cat");
        assert_eq!(env["SWITCHBOARD_CONN_ID"], "7");
        assert_eq!(env.len(), 10);
    }

    #[test]
    fn only_root_runs_programs_as_another_user() {
        let daemon = nix::unistd::User::from_name("daemon").unwrap().unwrap();
        let resolved = RunAs::resolve(Some("daemon"), None, true);
        if nix::unistd::geteuid().is_root() {
            let run_as = resolved.unwrap().unwrap();
            assert_eq!((run_as.uid, run_as.gid), (daemon.uid, daemon.gid));
            let nobody = RunAs::resolve(None, None, false).unwrap().unwrap();
            assert_ne!(nobody.uid.as_raw(), 0, "never root by default");
        } else {
            let err = resolved.unwrap_err().to_string();
            assert!(err.contains("need switchboard to run as root"), "{err}");
            assert_eq!(RunAs::resolve(None, None, true).unwrap(), None);
            // Issue 42, item 5: as its own user a program could read switchboard's keys.
            let err = RunAs::resolve(None, None, false).unwrap_err().to_string();
            assert!(err.contains("allow_exec_same_user = true"), "{err}");
        }
        let err = RunAs::resolve(Some("no-such-user-here"), None, true)
            .unwrap_err()
            .to_string();
        assert!(err.contains("no user \"no-such-user-here\""), "{err}");
    }

    #[test]
    fn exit_statuses_read_as_words() {
        use std::os::unix::process::ExitStatusExt;
        assert_eq!(describe(std::process::ExitStatus::from_raw(0)), "exit 0");
        assert_eq!(
            describe(std::process::ExitStatus::from_raw(3 << 8)),
            "exit 3"
        );
        assert_eq!(
            describe(std::process::ExitStatus::from_raw(9)),
            "killed by SIGKILL"
        );
    }
}
