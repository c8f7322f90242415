//! The built `switchboard` binary as a child process: started with a config, its JSON log
//! read for readiness and addresses, signalled, waited for. The one launcher every test of
//! the binary uses (the end-to-end scenarios and the robustness suite).
//!
//! Only an integration test of the `switchboard` package knows where its binary was built
//! (`env!("CARGO_BIN_EXE_switchboard")`), so the test names it: [`Binary::at`].

// A test helper reports failure by panicking, as assert! does.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::{Arc, Mutex};

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::client::PATIENCE;

/// The `switchboard` binary at a path.
#[derive(Clone, Debug)]
pub struct Binary {
    path: PathBuf,
}

impl Binary {
    /// The binary at `path`; in a test of the `switchboard` package,
    /// `Binary::at(env!("CARGO_BIN_EXE_switchboard"))`.
    pub fn at(path: impl Into<PathBuf>) -> Self {
        Self { path: path.into() }
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// A command running the binary (add the subcommand and its flags).
    pub fn command(&self) -> Command {
        Command::new(&self.path)
    }

    /// `switchboard serve ARGS`, its standard error piped for [`Logs`].
    pub fn serve(&self, args: &[&str]) -> Child {
        spawn(self.command().arg("serve").args(args))
    }

    /// A switchboard started from config text with JSON logs, ready to serve: every port
    /// listens and its address is known. `config` is the TOML of a config file; `args` are
    /// more flags for `serve`.
    pub async fn start(&self, config: &str, args: &[&str]) -> Server {
        let dir = tempfile::tempdir().unwrap();
        let path = write_config(dir.path(), config);
        let mut command = self.command();
        command
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&path)
            .args(args);
        // Never the working directory's ./certs: a fresh CA for each server.
        if !args.contains(&"--certs") {
            command.arg("--certs").arg(dir.path().join("certs"));
        }
        let mut child = spawn(&mut command);
        let mut logs = Logs::of(&mut child);
        let listening = logs.ready().await;
        Server {
            child,
            logs,
            listening,
            dir,
        }
    }
}

/// `[[port]]` tables for `services` on any free port (0) of 127.0.0.1, one each.
pub fn port_table(services: &[&str]) -> String {
    services
        .iter()
        .map(|s| format!("[[port]]\nport = 0\nservice = \"{s}\"\nbind = [\"127.0.0.1\"]\n\n"))
        .collect()
}

/// Write config text to `switchboard.toml` in `dir`; its path.
pub fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Start `command` (a switchboard, or a wrapper around one) with `RUST_LOG=info`, no input,
/// and its standard error piped for [`Logs`]; it is killed if the handle is dropped.
pub fn spawn(command: &mut Command) -> Child {
    command
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// The JSON log lines of a running switchboard. A task drains its standard error all the
/// time: a test that stopped reading would otherwise let the pipe fill up, and a server
/// blocked on writing its log looks exactly like a server that hangs.
#[derive(Debug)]
pub struct Logs {
    lines: tokio::sync::mpsc::UnboundedReceiver<Value>,
    /// Everything written so far, as text.
    transcript: Arc<Mutex<String>>,
}

impl Logs {
    pub fn of(child: &mut Child) -> Self {
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let transcript = Arc::new(Mutex::new(String::new()));
        let all = transcript.clone();
        tokio::spawn(async move {
            while let Ok(Some(line)) = lines.next_line().await {
                if let Ok(mut all) = all.lock() {
                    all.push_str(&line);
                    all.push('\n');
                }
                // A line that is not JSON (a panic message, say) is kept as it came.
                let log = serde_json::from_str(&line)
                    .unwrap_or_else(|_| serde_json::json!({ "raw": line }));
                if tx.send(log).is_err() {
                    break;
                }
            }
        });
        Self {
            lines: rx,
            transcript,
        }
    }

    /// Every line written so far, whether or not it was read with `until`.
    pub fn transcript(&self) -> String {
        self.transcript
            .lock()
            .map(|t| t.clone())
            .unwrap_or_default()
    }

    /// Lines until one whose message starts with `prefix`, that one included.
    pub async fn until(&mut self, prefix: &str) -> Vec<Value> {
        let mut seen = Vec::new();
        tokio::time::timeout(PATIENCE, async {
            loop {
                let log = self.lines.recv().await.expect("switchboard exited");
                let found = log["fields"]["message"]
                    .as_str()
                    .is_some_and(|m| m.starts_with(prefix));
                seen.push(log);
                if found {
                    break;
                }
            }
        })
        .await
        .unwrap_or_else(|_| panic!("no log line starting with {prefix:?}"));
        seen
    }

    /// Wait for the `ready` line; return each service's listening address (a UDP row's
    /// under `<service>/udp`).
    pub async fn ready(&mut self) -> HashMap<String, SocketAddr> {
        let mut listening = HashMap::new();
        for log in self.until("ready").await {
            let fields = &log["fields"];
            if let (Some(addr), Some(service)) =
                (fields["addr"].as_str(), fields["service"].as_str())
            {
                let key = match fields["protocol"].as_str() {
                    Some("udp") => format!("{service}/udp"),
                    _ => service.to_owned(),
                };
                listening.insert(key, addr.parse().unwrap());
            }
        }
        listening
    }

    /// Every line until switchboard exits.
    pub async fn rest(mut self) -> Vec<Value> {
        let mut rest = Vec::new();
        while let Some(log) = self.lines.recv().await {
            rest.push(log);
        }
        rest
    }
}

/// A switchboard started from config text with JSON logs, ready to serve: every port
/// listens and its address is known. See [`Binary::start`].
#[derive(Debug)]
pub struct Server {
    pub child: Child,
    pub logs: Logs,
    listening: HashMap<String, SocketAddr>,
    dir: tempfile::TempDir,
}

impl Server {
    /// The server's directory: its config, and its certificates in `certs/`.
    pub fn dir(&self) -> &Path {
        self.dir.path()
    }

    /// Where the port of `service` listens.
    pub fn addr(&self, service: &str) -> SocketAddr {
        *self
            .listening
            .get(service)
            .unwrap_or_else(|| panic!("no {service} port"))
    }

    pub fn pid(&self) -> nix::unistd::Pid {
        nix::unistd::Pid::from_raw(i32::try_from(self.child.id().unwrap()).unwrap())
    }

    pub fn signal(&self, signal: nix::sys::signal::Signal) {
        nix::sys::signal::kill(self.pid(), signal).unwrap();
    }

    /// Wait for the process to exit (at most `PATIENCE` past `grace`); its exit code, or
    /// `None` if a signal ended it.
    pub async fn exit_code(&mut self, grace: std::time::Duration) -> Option<i32> {
        let status = tokio::time::timeout(grace + PATIENCE, self.child.wait())
            .await
            .expect("switchboard did not exit")
            .unwrap();
        status.code()
    }

    /// Resident memory now and at its peak, in KiB (`VmRSS`, `VmHWM`).
    pub fn memory_kib(&self) -> (u64, u64) {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.pid())).unwrap();
        let field = |name: &str| -> u64 {
            status
                .lines()
                .find_map(|l| l.strip_prefix(name))
                .and_then(|v| v.split_whitespace().next()?.parse().ok())
                .unwrap_or_else(|| panic!("no {name} in /proc/<pid>/status"))
        };
        (field("VmRSS:"), field("VmHWM:"))
    }

    /// Fail if the process panicked anywhere (the default hook writes to standard error).
    pub fn assert_no_panic(&self) {
        let transcript = self.logs.transcript();
        assert!(
            !transcript.contains("panicked"),
            "switchboard panicked:\n{transcript}"
        );
    }
}
