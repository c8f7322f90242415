//! The built `switchboard` binary, run as a user would: readiness from its log, requests,
//! SIGTERM, exit codes and the messages of failed starts.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use serde_json::Value;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStderr, Command};

use crate::PATIENCE;

const BINARY: &str = env!("CARGO_BIN_EXE_switchboard");

fn write_config(dir: &Path, text: &str) -> std::path::PathBuf {
    let path = dir.join("switchboard.toml");
    std::fs::write(&path, text).unwrap();
    path
}

fn serve(args: &[&str]) -> Child {
    Command::new(BINARY)
        .arg("serve")
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap()
}

/// Read JSON log lines until the `ready` line; return each service's listening address.
async fn wait_until_ready(
    lines: &mut Lines<BufReader<ChildStderr>>,
) -> HashMap<String, SocketAddr> {
    let mut listening = HashMap::new();
    tokio::time::timeout(PATIENCE, async {
        loop {
            let line = lines
                .next_line()
                .await
                .unwrap()
                .expect("switchboard exited before it was ready");
            let log: Value = serde_json::from_str(&line).unwrap();
            let fields = &log["fields"];
            if fields["ready"] == true {
                break;
            }
            if let (Some(addr), Some(service)) =
                (fields["addr"].as_str(), fields["service"].as_str())
            {
                listening.insert(service.to_owned(), addr.parse().unwrap());
            }
        }
    })
    .await
    .expect("no ready line");
    listening
}

#[tokio::test]
async fn serves_until_sigterm_then_exits_0() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        r#"
        [[port]]
        port = 0
        service = "http"
        bind = ["127.0.0.1"]

        [[port]]
        port = 0
        service = "echo"
        bind = ["127.0.0.1"]
        "#,
    );
    let mut child = serve(&["--config", config.to_str().unwrap(), "--log-format", "json"]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let listening = wait_until_ready(&mut lines).await;

    let health = reqwest::get(format!("http://{}/healthz", listening["http"]))
        .await
        .unwrap();
    assert_eq!(health.status(), 200);
    let mut echo = tokio::net::TcpStream::connect(listening["echo"])
        .await
        .unwrap();
    echo.write_all(b"ping").await.unwrap();
    let mut pong = [0u8; 4];
    echo.read_exact(&mut pong).await.unwrap();
    assert_eq!(&pong, b"ping");
    drop(echo);

    let pid = Pid::from_raw(i32::try_from(child.id().unwrap()).unwrap());
    kill(pid, Signal::SIGTERM).unwrap();
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    assert_eq!(status.code(), Some(0));

    // The log told the story: connections opened and closed with their byte counts.
    let mut rest = Vec::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        rest.push(serde_json::from_str::<Value>(&line).unwrap());
    }
    let closed_echo = rest.iter().find(|l| {
        l["fields"]["message"]
            .as_str()
            .is_some_and(|m| m.starts_with("connection closed"))
            && l["span"]["service"] == "echo"
    });
    let closed_echo = closed_echo.unwrap_or_else(|| panic!("no echo close line in {rest:#?}"));
    assert_eq!(closed_echo["fields"]["bytes_in"], 4);
    assert_eq!(closed_echo["fields"]["bytes_out"], 4);
    assert!(rest.iter().any(|l| l["fields"]["message"] == "stopped"));
}

#[tokio::test]
async fn text_logs_teach_and_have_no_colour_in_a_pipe() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = held.local_addr().unwrap().port();
    drop(held);
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!("[[port]]\nport = {port}\nservice = \"http\"\nbind = [\"127.0.0.1\"]\n"),
    );
    let mut child = serve(&["--config", config.to_str().unwrap()]);
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let mut seen = Vec::new();
    tokio::time::timeout(PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            let ready = line.contains("ready:");
            seen.push(line);
            if ready {
                break;
            }
        }
    })
    .await
    .unwrap();
    let log = seen.join("\n");
    assert!(
        log.contains(&format!(
            "listening on 127.0.0.1:{port} — the kernel now hands connections for port {port} to the http service"
        )),
        "{log}"
    );
    assert!(
        !log.contains('\u{1b}'),
        "ANSI escape codes in piped output:\n{log}"
    );
    child.kill().await.unwrap();
}

async fn run_to_exit(args: &[&str]) -> (Option<i32>, String) {
    let mut child = serve(args);
    let mut stderr = String::new();
    child
        .stderr
        .take()
        .unwrap()
        .read_to_string(&mut stderr)
        .await
        .unwrap();
    let status = tokio::time::timeout(PATIENCE, child.wait())
        .await
        .unwrap()
        .unwrap();
    (status.code(), stderr)
}

#[tokio::test]
async fn port_in_use_exits_2_with_advice() {
    let held = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = held.local_addr().unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        &format!(
            "[[port]]\nport = {}\nservice = \"http\"\nbind = [\"127.0.0.1\"]\n",
            addr.port()
        ),
    );
    let (code, stderr) = run_to_exit(&["--config", config.to_str().unwrap()]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!("error: cannot listen on {addr}")),
        "{stderr}"
    );
    assert!(stderr.contains("address already in use"), "{stderr}");
    assert!(
        stderr.contains(&format!("ss -ltnp 'sport = :{}'", addr.port())),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_config_exits_2_naming_file_and_line() {
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(dir.path(), "[[port]]\nport = 80\nservice = \"gopher\"\n");
    let (code, stderr) = run_to_exit(&["--config", config.to_str().unwrap()]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{}, line 3: unknown service \"gopher\"",
            config.display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn bad_usage_exits_2() {
    let (code, stderr) = run_to_exit(&["--port-offset", "65500"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("above 65535"), "{stderr}");

    let (code, stderr) = run_to_exit(&["--log-format", "xml"]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--log-format"), "{stderr}");
}
