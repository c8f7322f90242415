//! Any program as a service: `cat`, a program that exits early, one that never exits (killed
//! at the time limit), one that reads until the client half-closes, many clients against the
//! instance limit, the cleared environment, rlimits, the user programs run as, and no zombie
//! or orphan left behind; the control API's 403.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::time::Duration;

use reqwest::StatusCode;
use serde_json::json;
use switchboard_core::EventKind;
use switchboard_exec::{Program, ProgramExited, ProgramStarted};
use switchboard_testkit::Stack;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::classic::read_to_close;
use crate::{PATIENCE, Seen};

fn program(command: &[&str]) -> Program {
    Program {
        command: command.iter().map(|s| s.to_string()).collect(),
        // Not as root (a developer's `cargo test`), programs run as the test's own user.
        allow_exec_same_user: true,
        ..Program::default()
    }
}

/// A stack with one exec row running `program`.
async fn exec_stack(program: Program) -> Stack {
    Stack::builder()
        .service("exec")
        .port(|row| row.set_keys(&program))
        .start()
        .await
        .unwrap()
}

/// Send `input`, half-close, and read the answer to the end.
async fn run(addr: SocketAddr, input: &[u8]) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).await.unwrap();
    stream.write_all(input).await.unwrap();
    stream.shutdown().await.unwrap();
    read_to_close(&mut stream).await
}

/// The `program_exited` event of the program with `pid`.
async fn exited(seen: &mut Seen, pid: u32) -> ProgramExited {
    seen.find_said(|e: &ProgramExited| e.pid == pid).await
}

/// The program with `pid` was killed (SIGKILL), not ended by itself.
async fn assert_killed(seen: &mut Seen, pid: u32) {
    let event = exited(seen, pid).await;
    assert!(event.status == "killed by SIGKILL", "{event:?}");
}

/// Why the next connection to close was closed (its log line's `ended by`).
async fn close_error(seen: &mut Seen) -> String {
    let closed = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionClosed { .. }))
        .await;
    match closed.kind {
        EventKind::ConnectionClosed { error, .. } => error.expect("it ended with a reason"),
        _ => unreachable!("found by its kind"),
    }
}

/// The pid of the next program started.
async fn started(seen: &mut Seen) -> u32 {
    seen.find_said(|_: &ProgramStarted| true).await.pid
}

/// Whether process `pid` still runs (a zombie, dead but not reaped, counts as not running
/// only when its parent is not this process: our own zombies are a failure).
fn assert_gone(pid: u32) {
    let Ok(stat) = std::fs::read_to_string(format!("/proc/{pid}/stat")) else {
        return; // gone: reaped
    };
    // "pid (comm) state ppid ...": the fields after the last ')'.
    let fields: Vec<&str> = stat[stat.rfind(')').unwrap() + 2..].split(' ').collect();
    let (state, ppid) = (fields[0], fields[1].parse::<u32>().unwrap());
    assert!(
        state == "Z" && ppid != std::process::id(),
        "process {pid} is still here: state {state}, parent {ppid}"
    );
}

#[tokio::test]
async fn cat_on_a_port_sends_every_byte_back_and_ends_with_the_client() {
    let stack = exec_stack(program(&["cat"])).await;
    let mut seen = Seen::new(&stack);
    let bytes: Vec<u8> = (0..200_000u32).map(|i| (i % 251) as u8).collect();
    // The client's half-close closes cat's standard input; cat exits; the connection ends.
    assert_eq!(run(stack.addr("exec"), &bytes).await, bytes);
    let pid = started(&mut seen).await;
    let event = exited(&mut seen, pid).await;
    assert!(event.status == "exit 0", "{event:?}");
    assert_gone(pid);
}

#[tokio::test]
async fn a_program_that_exits_early_ends_the_connection_after_its_output() {
    let stack = exec_stack(program(&["echo", "hello from a program"])).await;
    // The client sends nothing and never closes: the program's exit ends the connection.
    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    assert_eq!(read_to_close(&mut stream).await, b"hello from a program\n");
}

#[tokio::test]
async fn a_program_reads_until_the_client_half_closes() {
    let stack = exec_stack(program(&["wc", "-c"])).await;
    let answer = run(stack.addr("exec"), &[b'x'; 12_345]).await;
    assert_eq!(String::from_utf8(answer).unwrap().trim(), "12345");
}

#[tokio::test]
async fn a_program_that_never_exits_is_killed_at_the_time_limit_with_what_it_started() {
    // A shell that starts a child of its own in the background, says its pid, and waits.
    let mut looping = program(&["sleep 300 & echo $!; wait"]);
    looping.shell = true;
    looping.time_limit = Duration::from_millis(300);
    let stack = exec_stack(looping).await;
    let mut seen = Seen::new(&stack);
    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    let answer = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    let grandchild: u32 = answer.trim().parse().unwrap();
    let pid = started(&mut seen).await;
    assert_killed(&mut seen, pid).await;
    let error = close_error(&mut seen).await;
    assert!(
        error.contains("ran past time_limit (300ms)"),
        "the log says why"
    );
    // The program was reaped before its connection closed; the sleep it started was killed
    // with its group (and its new parent reaps it).
    assert_gone(pid);
    tokio::time::timeout(PATIENCE, async {
        while std::fs::read_to_string(format!("/proc/{grandchild}/stat"))
            .is_ok_and(|stat| !stat.contains(") Z "))
        {
            tokio::task::yield_now().await;
        }
    })
    .await
    .expect("the background sleep outlived its connection");
}

#[tokio::test]
async fn the_environment_holds_the_documented_variables_only() {
    let stack = exec_stack(program(&["env"])).await;
    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    let me = stream.local_addr().unwrap();
    let text = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    let env: HashMap<&str, &str> = text.lines().filter_map(|l| l.split_once('=')).collect();
    let port = stack.addr("exec").port().to_string();
    let expected: HashMap<&str, String> = [
        ("PATH", "/usr/local/bin:/usr/bin:/bin".to_owned()),
        ("PROTO", "TCP".to_owned()),
        ("TCPREMOTEIP", "127.0.0.1".to_owned()),
        ("TCPREMOTEPORT", me.port().to_string()),
        ("TCPLOCALIP", "127.0.0.1".to_owned()),
        ("TCPLOCALPORT", port.clone()),
        ("REMOTE_ADDR", "127.0.0.1".to_owned()),
        ("REMOTE_PORT", me.port().to_string()),
        ("SWITCHBOARD_SERVICE", format!("exec-{port}")),
    ]
    .into_iter()
    .collect();
    for (key, value) in &expected {
        assert_eq!(
            env.get(key).copied(),
            Some(value.as_str()),
            "{key} in\n{text}"
        );
    }
    assert!(env["SWITCHBOARD_CONN_ID"].parse::<u64>().is_ok());
    assert_eq!(env.len(), expected.len() + 1, "nothing else:\n{text}");
}

#[tokio::test]
async fn programs_run_under_their_rlimits_and_never_as_root() {
    let mut limited = program(&["sh", "-c", "ulimit -n; ulimit -t; id -u; ulimit -v"]);
    limited.max_open_files = 64;
    limited.cpu_seconds = 7;
    limited.max_memory = 256 << 20;
    let stack = exec_stack(limited).await;
    let answer = String::from_utf8(run(stack.addr("exec"), b"").await).unwrap();
    let lines: Vec<&str> = answer.lines().collect();
    assert_eq!(lines[..2], ["64", "7"], "{answer}");
    // As root, programs run as nobody unless the row names a user; otherwise as us.
    let me = nix::unistd::geteuid();
    let expected = match me.is_root() {
        true => nix::unistd::User::from_name("nobody")
            .unwrap()
            .unwrap()
            .uid
            .to_string(),
        false => me.to_string(),
    };
    assert_eq!(lines[2], expected);
    assert_eq!(
        lines[3], "262144",
        "max_memory as the shell shows it, in KiB"
    );
}

#[tokio::test]
async fn many_clients_at_once_get_at_most_max_connections_programs() {
    let stack = Stack::builder()
        .service("exec")
        .port(|row| {
            row.set_keys(&program(&["cat"]));
            row.max_connections = 2;
        })
        .configure(|c| c.supervisor.max_refusals = 8)
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);
    let addr = stack.addr("exec");
    // Two programs, each held open by its client.
    let mut held = Vec::new();
    for n in 0..2u8 {
        let mut stream = TcpStream::connect(addr).await.unwrap();
        stream.write_all(&[n]).await.unwrap();
        stream.read_exact(&mut [0u8; 1]).await.unwrap();
        held.push(stream);
    }
    // More clients are turned away (closed at once) without a program.
    for _ in 0..3 {
        let mut extra = TcpStream::connect(addr).await.unwrap();
        let mut got = Vec::new();
        let _ = tokio::time::timeout(PATIENCE, extra.read_to_end(&mut got)).await;
        assert!(got.is_empty());
    }
    let limited = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionLimited { .. }))
        .await;
    assert!(matches!(
        limited.kind,
        EventKind::ConnectionLimited {
            limit: "max_connections",
            ..
        }
    ));
    let programs = seen.count(|e| e.get::<ProgramStarted>().is_some());
    assert_eq!(
        programs, 2,
        "one program per connection served, none for the others"
    );
    // One ends, and room is made for the next.
    let mut first = held.remove(0);
    first.shutdown().await.unwrap();
    read_to_close(&mut first).await;
    let again = run(addr, b"next").await;
    assert_eq!(again, b"next");
}

#[tokio::test]
async fn the_control_api_adds_exec_rows_only_when_allowed() {
    let row = json!({
        "port": 0, "service": "exec", "bind": ["127.0.0.1"], "command": ["cat"],
        "allow_exec_same_user": true
    });
    let stack = Stack::start(&["http"]).await.unwrap();
    let answer = crate::http_client()
        .post(stack.url("http", "/api/ports"))
        .json(&row)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::FORBIDDEN);
    let text = answer.text().await.unwrap();
    assert!(
        text.contains("remote shell") && text.contains("[control] allow_exec"),
        "{text}"
    );

    let allowed = Stack::builder()
        .service("http")
        .configure(|c| c.control.allow_exec = true)
        .start()
        .await
        .unwrap();
    let answer = crate::http_client()
        .post(allowed.url("http", "/api/ports"))
        .json(&row)
        .send()
        .await
        .unwrap();
    assert_eq!(answer.status(), StatusCode::CREATED);
    let row: serde_json::Value = answer.json().await.unwrap();
    let port = row["port"].as_u64().unwrap() as u16;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    assert_eq!(run(addr, b"added at run time").await, b"added at run time");
}

/// The walkthrough's promise, run as a user runs it: a program on a port is two lines of a
/// config file; its standard error goes to the log, tagged with the connection and capped.
#[tokio::test]
async fn a_config_file_puts_a_program_on_a_port_and_its_stderr_in_the_log() {
    let config = "[[port]]\nport = 0\nbind = [\"127.0.0.1\"]\n\
                  service = \"exec\"\n\
                  command = [\"sh\", \"-c\", \"echo oops >&2; head -c 5000 /dev/zero | tr '\\\\0' x >&2; cat\"]\n\
                  max_stderr = 100\nallow_exec_same_user = true\n";
    let mut server = crate::switchboard().start(config, &[]).await;
    assert_eq!(
        run(server.addr("exec"), b"still relayed").await,
        b"still relayed"
    );
    let mut logs = server.logs.until("program ended").await;
    server.signal(nix::sys::signal::Signal::SIGTERM);
    let exit = server.exit_code(PATIENCE).await;
    assert_eq!(exit, Some(0));
    logs.extend(server.logs.rest().await);
    let stderr: Vec<&serde_json::Value> = logs
        .iter()
        .filter(|l| {
            l["fields"]["message"]
                .as_str()
                .is_some_and(|m| m.starts_with("stderr: "))
        })
        .collect();
    let messages: Vec<&str> = stderr
        .iter()
        .map(|l| l["fields"]["message"].as_str().unwrap())
        .collect();
    assert_eq!(messages[0], "stderr: oops", "{messages:?}");
    // The lines' bytes and the newlines between them (the last line was cut mid-way).
    let lines = &messages[..messages.len() - 1];
    let logged: usize = lines
        .iter()
        .map(|m| m.len() - "stderr: ".len())
        .sum::<usize>()
        + lines.len()
        - 1;
    assert!(
        logged <= 100,
        "{logged} bytes of stderr logged: {messages:?}"
    );
    assert_eq!(
        messages.last().copied(),
        Some("stderr: more than max_stderr (100 bytes); the rest is dropped")
    );
    // Each line names its connection.
    assert!(
        stderr
            .iter()
            .all(|l| l["spans"][0]["id"].is_u64() || l["span"]["id"].is_u64()),
        "{stderr:?}"
    );
}

#[tokio::test]
async fn shutdown_kills_and_reaps_a_running_program() {
    let mut stack = exec_stack(program(&["sleep", "300"])).await;
    let mut seen = Seen::new(&stack);
    let _client = TcpStream::connect(stack.addr("exec")).await.unwrap();
    let pid = started(&mut seen).await;
    stack.request_shutdown();
    assert_killed(&mut seen, pid).await;
    let stopped = stack.shutdown().await;
    assert_eq!(
        stopped.connections_cut, 0,
        "the exec service finished in time"
    );
    assert_gone(pid);
}

/// `switchboard ports` shows the program behind a connection while it runs, and not after:
/// a port is just a door to a program.
#[tokio::test]
async fn switchboard_ports_shows_the_program_while_its_connection_lasts() {
    let config = "[[port]]\nport = 0\nbind = [\"127.0.0.1\"]\nservice = \"exec\"\ncommand = [\"cat\"]\n\
         allow_exec_same_user = true\n";
    let mut server = crate::switchboard().start(config, &[]).await;
    let mut stream = TcpStream::connect(server.addr("exec")).await.unwrap();
    stream.write_all(b"x").await.unwrap();
    stream.read_exact(&mut [0u8; 1]).await.unwrap(); // cat runs: it answered
    let ports = || {
        let output = std::process::Command::new(env!("CARGO_BIN_EXE_switchboard"))
            .arg("ports")
            .output()
            .unwrap();
        String::from_utf8(output.stdout).unwrap()
    };
    let during = ports();
    let pid = server.pid();
    assert!(
        during.contains(&format!("Programs switchboard (pid {pid}) runs now")),
        "{during}"
    );
    let line = during
        .lines()
        .find(|l| l.ends_with(" cat"))
        .unwrap_or_else(|| panic!("no cat in:\n{during}"));
    assert!(
        line.split_whitespace()
            .next()
            .unwrap()
            .parse::<u32>()
            .is_ok()
    );
    stream.shutdown().await.unwrap();
    read_to_close(&mut stream).await;
    server.logs.until("program ended").await;
    let after = ports();
    assert!(after.contains("(none now:"), "{after}");
    assert!(!after.lines().any(|l| l.ends_with(" cat")), "{after}");
}

/// The program's bytes pass the port's counters and toxics like any service's.
#[tokio::test]
async fn a_program_s_bytes_are_counted_and_meet_the_port_s_toxics() {
    let stack = exec_stack(program(&["cat"])).await;
    let mut seen = Seen::new(&stack);
    assert_eq!(run(stack.addr("exec"), &[b'c'; 3000]).await.len(), 3000);
    let closed = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionClosed { .. }))
        .await;
    assert!(
        matches!(
            closed.kind,
            EventKind::ConnectionClosed {
                bytes_in: 3000,
                bytes_out: 3000,
                error: None,
                ..
            }
        ),
        "{closed:?}"
    );
    stack
        .add_toxic("exec", switchboard_faults::Toxic::limit_data(100))
        .unwrap();
    assert_eq!(run(stack.addr("exec"), &[b'c'; 3000]).await.len(), 100);
}

/// A client that goes away takes its program with it: the program that writes forever is
/// killed and reaped as soon as writing to the client fails.
#[tokio::test]
async fn a_client_that_goes_away_takes_its_program_with_it() {
    let stack = exec_stack(program(&["yes"])).await;
    let mut seen = Seen::new(&stack);
    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    stream.read_exact(&mut [0u8; 1000]).await.unwrap();
    let pid = started(&mut seen).await;
    // Closing with unread bytes makes the kernel reset the connection.
    drop(stream);
    assert_killed(&mut seen, pid).await;
    let error = close_error(&mut seen).await;
    assert!(error.contains("the client went away"), "{error}");
    assert_gone(pid);
}

/// The first line the program printed.
async fn first_line(stream: &mut TcpStream) -> String {
    let line = switchboard_testkit::client::read_until(stream, "\n").await;
    line.trim().to_owned()
}

/// Wait until process `pid` is gone (or a zombie someone else will reap).
async fn wait_gone(pid: u32) {
    let gone = || {
        std::fs::read_to_string(format!("/proc/{pid}/stat")).map_or(true, |stat| {
            stat[stat.rfind(')').unwrap() + 2..].starts_with('Z')
        })
    };
    let waited = tokio::time::timeout(crate::PATIENCE, async {
        while !gone() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(waited.is_ok(), "process {pid} outlived its connection");
}

/// A program that leaves a process behind — in the background, in a subshell that exits so
/// that init adopts it, or trying for a session of its own as a daemon does — does not leave
/// it running once the connection ends. (The session is refused: a seccomp filter keeps
/// every process a program starts in the group switchboard kills.)
#[tokio::test]
async fn a_grandchild_left_behind_goes_when_the_connection_ends() {
    // setsid(2) answers the new session's id, or -1 (Perl: undef or -1) when refused.
    let daemon = "fork and exit; my $s = (POSIX::setsid() // -1) > 0 ? \"escaped\" : \"held\"; \
                  print \"$s $$\\n\"; close STDOUT; close STDERR; sleep 300";
    for leave in [
        "(sleep 300 </dev/null >/dev/null 2>&1 & echo \"held $!\")".to_owned(),
        format!("perl -MPOSIX -e '{daemon}' </dev/null"),
    ] {
        let script = format!("{leave}\nexec cat");
        let stack = exec_stack(program(&["sh", "-c", &script])).await;
        let mut seen = Seen::new(&stack);
        let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
        let line = first_line(&mut stream).await;
        let Some(("held", grandchild)) = line.split_once(' ') else {
            panic!("{leave}: {line}");
        };
        let grandchild: u32 = grandchild.parse().unwrap();
        let pid = started(&mut seen).await;
        assert!(std::path::Path::new(&format!("/proc/{grandchild}")).exists());
        // The client is done: cat ends, and with it the program.
        stream.shutdown().await.unwrap();
        read_to_close(&mut stream).await;
        exited(&mut seen, pid).await;
        wait_gone(grandchild).await;
    }
}

/// What a client sends is the program's standard input and nothing else: shell syntax and
/// `NAME=value` lines in it reach neither the program's command line nor its environment
/// (nor a shell: the marker file is never made).
#[tokio::test]
async fn a_clients_bytes_reach_only_standard_input() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("made-by-the-client");
    let script = "head -c 200 >/dev/null; env; echo; tr '\\0' ' ' </proc/$$/cmdline";
    let stack = exec_stack(program(&["sh", "-c", script])).await;
    let hostile = format!(
        "$(touch {0}) `touch {0}`; touch {0}\nCLIENT_SAYS=1\nPATH=/tmp\n\0--help\n",
        marker.display()
    );
    let mut hostile = hostile.into_bytes();
    hostile.resize(200, b' ');
    let output = String::from_utf8(run(stack.addr("exec"), &hostile).await).unwrap();
    assert!(output.contains("SWITCHBOARD_CONN_ID="), "{output}");
    assert!(output.contains("sh -c head -c 200"), "{output}");
    for smuggled in ["touch", "CLIENT_SAYS", "PATH=/tmp", "--help"] {
        assert!(!output.contains(smuggled), "{smuggled} in:\n{output}");
    }
    assert!(!marker.exists());
}

/// The pids of processes whose command line holds `marker`.
fn processes_with(marker: &str) -> Vec<u32> {
    std::fs::read_dir("/proc")
        .unwrap()
        .flatten()
        .filter_map(|entry| entry.file_name().to_str()?.parse::<u32>().ok())
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(marker))
        })
        .filter(|pid| {
            // A zombie waits for its parent to read its end: it runs nothing.
            std::fs::read_to_string(format!("/proc/{pid}/stat"))
                .is_ok_and(|stat| !stat[stat.rfind(')').unwrap() + 2..].starts_with('Z'))
        })
        .collect()
}

/// A mark no other process has: a sleep of that many seconds is ours.
fn marker() -> String {
    format!(
        "600.{}{}",
        std::process::id(),
        fastrand::u32(100_000..1_000_000)
    )
}

/// switchboard killed with SIGKILL has no chance to end its programs: they end anyway, the
/// program itself and what it started in the background.
#[tokio::test]
async fn programs_and_what_they_started_die_when_switchboard_is_killed() {
    let marker = marker();
    let script = format!("sleep {marker} & echo ready; exec sleep {marker}");
    let config = format!(
        "[[port]]\nport = 0\nbind = [\"127.0.0.1\"]\nservice = \"exec\"\n\
         command = [\"sh\", \"-c\", \"{script}\"]\nallow_exec_same_user = true\n"
    );
    let mut server = crate::switchboard().start(&config, &[]).await;
    let mut stream = TcpStream::connect(server.addr("exec")).await.unwrap();
    assert_eq!(first_line(&mut stream).await, "ready");
    assert_eq!(
        processes_with(&marker).len(),
        2,
        "the program and its background sleep"
    );
    server.signal(nix::sys::signal::Signal::SIGKILL);
    assert_eq!(
        server.exit_code(Duration::ZERO).await,
        None,
        "killed by a signal"
    );
    let ended = tokio::time::timeout(PATIENCE, async {
        while !processes_with(&marker).is_empty() {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await;
    assert!(
        ended.is_ok(),
        "still running after switchboard was killed: {:?}",
        processes_with(&marker)
    );
}

/// Whether this test process may make cgroups (as root, with the controllers mounted
/// writable): only then are a program tree's processes and memory limited together
/// (docs/configuration.md says what holds elsewhere).
fn cgroups_here() -> bool {
    nix::unistd::geteuid().is_root()
        && (std::path::Path::new("/sys/fs/cgroup/pids/cgroup.procs").exists()
            || std::path::Path::new("/sys/fs/cgroup/cgroup.controllers").exists())
}

/// A program that forks fifty times gets `max_processes` at most, itself included.
#[tokio::test]
async fn max_processes_holds_for_the_whole_tree() {
    if !cgroups_here() {
        eprintln!("skipped: program trees are limited only where switchboard makes cgroups");
        return;
    }
    let marker = marker();
    let script = format!(
        "import os, sys, time\n\
         started = 0\n\
         for _ in range(50):\n\
         \x20   try:\n\
         \x20       if os.fork() == 0:\n\
         \x20           time.sleep(5); os._exit(0)\n\
         \x20       started += 1\n\
         \x20   except OSError:\n\
         \x20       pass\n\
         print('started', started, flush=True)\n\
         time.sleep(5)  # {marker}\n"
    );
    let mut limited = program(&["python3", "-c", &script]);
    limited.max_processes = 8;
    let stack = exec_stack(limited).await;
    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    let line = first_line(&mut stream).await;
    let started: u32 = line.strip_prefix("started ").unwrap().parse().unwrap();
    assert!(
        started <= 7,
        "{started} children besides the program itself"
    );
    assert!(processes_with(&marker).len() <= 8);
}

/// Three children of 60 MB each under `max_memory = 100 MiB`: not all of them get to hold
/// it, however the memory is split among processes.
#[tokio::test]
async fn max_memory_holds_for_the_whole_tree() {
    if !cgroups_here() {
        eprintln!("skipped: program trees are limited only where switchboard makes cgroups");
        return;
    }
    let script = "import os, time\n\
         children = []\n\
         for _ in range(3):\n\
         \x20   pid = os.fork()\n\
         \x20   if pid == 0:\n\
         \x20       held = b'x' * (60 << 20)\n\
         \x20       time.sleep(2); os._exit(0)\n\
         \x20   children.append(pid)\n\
         for pid in children:\n\
         \x20   _, status = os.waitpid(pid, 0)\n\
         \x20   print('signal' if os.WIFSIGNALED(status) else 'exit', flush=True)\n";
    let mut limited = program(&["python3", "-c", script]);
    limited.max_memory = 100 << 20;
    let stack = exec_stack(limited).await;
    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    stream.shutdown().await.unwrap();
    let ends = String::from_utf8(read_to_close(&mut stream).await).unwrap();
    assert_eq!(ends.lines().count(), 3, "{ends}");
    assert!(
        ends.lines().any(|end| end == "signal"),
        "none was killed: {ends}"
    );
}

/// A client that is gone while its program says nothing — it reset the connection, or has
/// said nothing for the row's `idle_timeout` — takes the program with it; a half-close does
/// not (`a_program_reads_until_the_client_half_closes`).
#[tokio::test]
async fn a_silent_program_ends_when_its_client_resets_or_idles() {
    let stack = Stack::builder()
        .service("exec")
        .port(|row| {
            row.set_keys(&program(&["sleep", "300"]));
            row.idle_timeout = Some(Duration::from_millis(500));
        })
        .start()
        .await
        .unwrap();
    let mut seen = Seen::new(&stack);

    let stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    let pid = started(&mut seen).await;
    // A zero linger makes the close a reset.
    socket2::SockRef::from(&stream)
        .set_linger(Some(Duration::ZERO))
        .unwrap();
    drop(stream);
    assert_killed(&mut seen, pid).await;
    let error = close_error(&mut seen).await;
    assert!(error.contains("the client went away"), "{error}");

    let mut stream = TcpStream::connect(stack.addr("exec")).await.unwrap();
    let local = stream.local_addr().unwrap();
    let pid = seen.find_said(|e: &ProgramStarted| e.pid != pid).await.pid;
    assert!(read_to_close(&mut stream).await.is_empty());
    assert_killed(&mut seen, pid).await;
    let closed = seen
        .find(|e| matches!(e.kind, EventKind::ConnectionClosed { peer, .. } if peer == local))
        .await;
    let EventKind::ConnectionClosed { error, .. } = closed.kind else {
        unreachable!("found by its kind")
    };
    assert!(error.unwrap().contains("idle_timeout"));
}
