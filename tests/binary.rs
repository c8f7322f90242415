//! The built `switchboard` binary, run as a user would: readiness from its log, requests,
//! SIGTERM, exit codes and the messages of failed starts.

use nix::sys::signal::{Signal, kill};
use nix::unistd::Pid;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

use crate::PATIENCE;
use switchboard_testkit::binary::{Logs, write_config};

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
    let mut child =
        crate::switchboard().serve(&["--config", config.to_str().unwrap(), "--log-format", "json"]);
    let mut logs = Logs::of(&mut child);
    let listening = logs.ready().await;

    let health = crate::http_client()
        .get(format!("http://{}/healthz", listening["http"]))
        .send()
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
    let rest = logs.rest().await;
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
    let mut child = crate::switchboard().serve(&["--config", config.to_str().unwrap()]);
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
    let mut child = crate::switchboard().serve(args);
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

#[tokio::test]
async fn certs_command_creates_once_then_reuses() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    let run = || {
        crate::switchboard()
            .command()
            .args(["certs", "--dir"])
            .arg(&certs)
            .args(["--name", "demo.switchboard.test"])
            .output()
    };
    let first = run().await.unwrap();
    assert_eq!(first.status.code(), Some(0));
    let first = String::from_utf8(first.stdout).unwrap();
    assert!(first.contains("ca.pem (created)"), "{first}");
    assert!(first.contains("server.pem (created)"), "{first}");
    assert!(first.contains("demo.switchboard.test"), "{first}");
    assert!(first.contains("curl --cacert"), "{first}");

    #[cfg(unix)]
    for key in ["ca-key.pem", "server-key.pem"] {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(certs.join(key))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600, "{key}");
    }

    let second = String::from_utf8(run().await.unwrap().stdout).unwrap();
    assert!(second.contains("ca.pem (reused)"), "{second}");
    let fingerprint = |report: &str| {
        report
            .lines()
            .find(|l| l.trim_start().starts_with("SHA-256"))
            .unwrap()
            .to_owned()
    };
    assert_eq!(fingerprint(&first), fingerprint(&second), "the CA is kept");
}

#[tokio::test]
async fn malformed_certificates_exit_2_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let certs = dir.path().join("certs");
    std::fs::create_dir(&certs).unwrap();
    std::fs::write(certs.join("ca.pem"), "this is not a certificate\n").unwrap();
    std::fs::write(certs.join("ca-key.pem"), "nor is this a key\n").unwrap();
    let config = write_config(
        dir.path(),
        "[[port]]\nport = 0\nservice = \"https\"\nbind = [\"127.0.0.1\"]\n",
    );
    let (code, stderr) = run_to_exit(&[
        "--config",
        config.to_str().unwrap(),
        "--certs",
        certs.to_str().unwrap(),
    ])
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains(&format!(
            "{} is not a valid PEM certificate",
            certs.join("ca.pem").display()
        )),
        "{stderr}"
    );
}

#[tokio::test]
async fn ports_shows_the_kernel_table_and_marks_switchboard() {
    if switchboard_probe::sockets::listening().is_err() {
        return; // no /proc here; the command says so, tested by its own message path
    }
    let dir = tempfile::tempdir().unwrap();
    let config = write_config(
        dir.path(),
        "[[port]]\nport = 0\nservice = \"echo\"\nbind = [\"127.0.0.1\"]\n",
    );
    let mut child =
        crate::switchboard().serve(&["--config", config.to_str().unwrap(), "--log-format", "json"]);
    let mut logs = Logs::of(&mut child);
    let echo = logs.ready().await["echo"];
    // A UDP socket of this test's own: listed too, as udp.
    let udp = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let udp_port = udp.local_addr().unwrap().port();
    let output = crate::switchboard()
        .command()
        .arg("ports")
        .output()
        .await
        .unwrap();
    assert_eq!(output.status.code(), Some(0));
    let table = String::from_utf8(output.stdout).unwrap();
    let row = table
        .lines()
        .find(|l| l.starts_with("tcp ") && l.contains(&format!(" {} ", echo.port())))
        .unwrap_or_else(|| panic!("port {} not listed:\n{table}", echo.port()));
    assert!(row.contains("127.0.0.1"), "{row}");
    assert!(
        row.contains(&format!("switchboard (pid {})", child.id().unwrap())),
        "{row}"
    );
    assert!(row.ends_with("← switchboard"), "{row}");
    assert!(
        table
            .lines()
            .any(|l| l.starts_with("udp ") && l.contains(&format!(" {udp_port} "))),
        "UDP port {udp_port} not listed:\n{table}"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn read_flags_and_tags_survive_a_restart_with_a_mail_dir() {
    let dir = tempfile::tempdir().unwrap();
    let mail_dir = dir.path().join("mail");
    let mail_dir = mail_dir.to_str().unwrap();
    let config = switchboard_testkit::binary::port_table(&["http", "smtp"]);
    let mut first = crate::switchboard()
        .start(&config, &["--mail-dir", mail_dir])
        .await;
    let id = crate::send_mail(
        first.addr("smtp"),
        "a@example.test",
        &["b@example.test"],
        "Subject: keep my flags\r\n\r\nx\r\n",
    )
    .await;
    let api = |server: &switchboard_testkit::binary::Server, path: &str| {
        format!("http://{}{path}", server.addr("http"))
    };
    let client = crate::http_client();
    for (path, body) in [
        (
            "/api/v1/messages",
            serde_json::json!({"IDs": [id], "Read": true}),
        ),
        (
            "/api/v1/tags",
            serde_json::json!({"IDs": [id], "Tags": ["kept"]}),
        ),
    ] {
        let status = client
            .put(api(&first, path))
            .json(&body)
            .send()
            .await
            .unwrap()
            .status();
        assert_eq!(status, 200, "{path}");
    }
    first.signal(Signal::SIGTERM);
    assert_eq!(
        first.exit_code(std::time::Duration::from_secs(10)).await,
        Some(0)
    );

    let second = crate::switchboard()
        .start(&config, &["--mail-dir", mail_dir])
        .await;
    let list = crate::json_of(client.get(api(&second, "/api/v1/messages"))).await;
    let message = &list["messages"][0];
    assert_eq!(message["ID"], id.as_str());
    assert_eq!(message["Read"], true);
    assert_eq!(message["Tags"], serde_json::json!(["kept"]));
    second.assert_no_panic();
}

/// `switchboard serve ARGS` with these variables set; its exit code and standard error, once
/// it has exited by itself.
async fn exit_with_env(env: &[(&str, &str)], args: &[&str]) -> (Option<i32>, String) {
    let mut command = crate::switchboard().command();
    command.arg("serve").args(args).envs(env.iter().copied());
    let output = tokio::time::timeout(PATIENCE, command.output())
        .await
        .expect("switchboard did not exit")
        .unwrap();
    (
        output.status.code(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[tokio::test]
async fn variables_configure_serve_and_a_flag_wins_over_its_variable() {
    let table = switchboard_testkit::binary::port_table(&["http", "smtp"]);
    let dir = tempfile::tempdir().unwrap();
    let mut command = crate::switchboard().command();
    command
        .args(["serve", "--smtp-auth", "optional"])
        .env("SWITCHBOARD_CONFIG_TOML", &table)
        .env("SWITCHBOARD_LOG_FORMAT", "json")
        .env("SWITCHBOARD_CERTS", dir.path().join("certs"))
        .env("SWITCHBOARD_SMTP_AUTH", "required") // the flag above wins
        .env("SWITCHBOARD_MAIL_MAX_MESSAGES", "1")
        .env("SWITCHBOARD_CONTROL_ALLOW", "127.0.0.2");
    let mut child = switchboard_testkit::binary::spawn(&mut command);
    let mut logs = Logs::of(&mut child);
    let ports = logs.ready().await;
    assert!(
        dir.path().join("certs/ca.pem").exists(),
        "SWITCHBOARD_CERTS was not used"
    );
    // --smtp-auth optional beat SWITCHBOARD_SMTP_AUTH=required: mail without AUTH is taken.
    for n in 0..2 {
        crate::send_mail(
            ports["smtp"],
            "a@example.test",
            &["b@example.test"],
            &format!("Subject: {n}\r\n\r\nx\r\n"),
        )
        .await;
    }
    let client = crate::http_client();
    let list =
        crate::json_of(client.get(format!("http://{}/api/v1/messages", ports["http"]))).await;
    assert_eq!(
        list["total"], 1,
        "SWITCHBOARD_MAIL_MAX_MESSAGES=1 keeps one"
    );
    let reset = client
        .post(format!("http://{}/api/reset", ports["http"]))
        .send()
        .await
        .unwrap();
    assert_eq!(
        reset.status(),
        403,
        "SWITCHBOARD_CONTROL_ALLOW left out 127.0.0.1"
    );
    child.kill().await.unwrap();
}

#[tokio::test]
async fn inline_config_errors_name_the_variable_and_two_sources_are_refused() {
    let (code, stderr) = exit_with_env(
        &[(
            "SWITCHBOARD_CONFIG_TOML",
            "[[port]]\nport = 0\nservice = \"htp\"\n",
        )],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("error: SWITCHBOARD_CONFIG_TOML, line 3: unknown service \"htp\""),
        "{stderr}"
    );
    assert!(stderr.contains("3 | service = \"htp\""), "{stderr}");

    let (code, stderr) = exit_with_env(&[("SWITCHBOARD_CONFIG_TOML", "[[port]\n")], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("SWITCHBOARD_CONFIG_TOML, line 1"),
        "{stderr}"
    );

    let dir = tempfile::tempdir().unwrap();
    let file = write_config(dir.path(), "");
    let (code, stderr) = exit_with_env(
        &[
            ("SWITCHBOARD_CONFIG", file.to_str().unwrap()),
            ("SWITCHBOARD_CONFIG_TOML", ""),
        ],
        &[],
    )
    .await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(
        stderr.contains("both a config file (--config or SWITCHBOARD_CONFIG) and inline config"),
        "{stderr}"
    );
    // A bad value in a variable is named like a bad flag.
    let (code, stderr) = exit_with_env(&[("SWITCHBOARD_PORT_OFFSET", "many")], &[]).await;
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("--port-offset"), "{stderr}");
}

#[tokio::test]
async fn help_shows_every_variable() {
    let output = crate::switchboard()
        .command()
        .args(["serve", "--help"])
        .output()
        .await
        .unwrap();
    let help = String::from_utf8_lossy(&output.stdout);
    for variable in [
        "SWITCHBOARD_CONFIG",
        "SWITCHBOARD_CONFIG_TOML",
        "SWITCHBOARD_BIND",
        "SWITCHBOARD_PORT_OFFSET",
        "SWITCHBOARD_PRESET",
        "SWITCHBOARD_CERTS",
        "SWITCHBOARD_NAME",
        "SWITCHBOARD_MAIL_DIR",
        "SWITCHBOARD_LOG_FORMAT",
        "SWITCHBOARD_SMTP_AUTH",
        "SWITCHBOARD_MAIL_MAX_MESSAGES",
        "SWITCHBOARD_CONTROL_ALLOW",
    ] {
        assert!(
            help.contains(&format!("[env: {variable}")),
            "{variable} in\n{help}"
        );
    }
}

/// Start `switchboard serve --config CONFIG` under systemd-socket-activate, which listens on
/// `listen` and hands the socket over (as descriptor 3, `LISTEN_FDS=1`) at the first
/// connection. Returns once it listens, with the lines it (and switchboard) print after.
async fn socket_activated(
    listen: &str,
    fdname: Option<&str>,
    config: &std::path::Path,
) -> (
    tokio::process::Child,
    tokio::sync::mpsc::UnboundedReceiver<String>,
) {
    use tokio::io::AsyncBufReadExt;
    let mut child = tokio::process::Command::new("systemd-socket-activate")
        .args(["--listen", listen])
        .args(fdname.map(|name| format!("--fdname={name}")))
        .arg(crate::switchboard().path())
        .args(["serve", "--log-format", "json", "--config"])
        .arg(config)
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("systemd-socket-activate is not installed (Debian's systemd package)");
    let mut lines = tokio::io::BufReader::new(child.stderr.take().unwrap()).lines();
    tokio::time::timeout(crate::PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if line.contains("Listening on") {
                return;
            }
        }
        panic!("systemd-socket-activate exited before it listened");
    })
    .await
    .expect("systemd-socket-activate did not listen");
    let (sender, later) = tokio::sync::mpsc::unbounded_channel();
    tokio::spawn(async move {
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = sender.send(line);
        }
    });
    (child, later)
}

#[tokio::test]
#[ignore = "needs systemd-socket-activate (Debian's systemd); .ci/run installs it and runs this"]
async fn socket_activation_serves_the_socket_the_service_manager_passed() {
    let dir = tempfile::tempdir().unwrap();
    let port = crate::free_port();
    let config = write_config(
        dir.path(),
        &format!("[[port]]\nport = {port}\nservice = \"http\"\nbind = [\"127.0.0.1\"]\n"),
    );
    let (mut child, _) = socket_activated(&format!("127.0.0.1:{port}"), None, &config).await;
    // The first connection starts switchboard, which adopts the socket and answers it.
    let answer = crate::http_client()
        .get(format!("http://127.0.0.1:{port}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.text().await.unwrap(), "ok\n");
    child.kill().await.unwrap();

    // A passed socket that no row is for stops start-up, naming it.
    let other = crate::free_port();
    let (mut child, mut printed) =
        socket_activated(&format!("127.0.0.1:{other}"), None, &config).await;
    let _ = tokio::net::TcpStream::connect(("127.0.0.1", other)).await;
    let output = tokio::time::timeout(crate::PATIENCE, child.wait())
        .await
        .expect("switchboard did not exit")
        .unwrap();
    assert_eq!(output.code(), Some(2));
    let mut said = String::new();
    while let Some(line) = printed.recv().await {
        said += &line;
    }
    assert!(
        said.contains(&format!("no row of the port table is for port {other}")),
        "{said}"
    );

    // A socket named in LISTEN_FDNAMES (a .socket unit's FileDescriptorName=) goes to the
    // row of that name, whatever port the row says: the unit decides where it listens.
    let named = write_config(
        dir.path(),
        "[[port]]\nport = 0\nname = \"web\"\nservice = \"http\"\n",
    );
    let (mut child, _) = socket_activated(&format!("127.0.0.1:{other}"), Some("web"), &named).await;
    let answer = crate::http_client()
        .get(format!("http://127.0.0.1:{other}/healthz"))
        .send()
        .await
        .unwrap();
    assert_eq!(answer.text().await.unwrap(), "ok\n");
    child.kill().await.unwrap();
}

/// Every connection the binary makes out of itself, seen by strace while its HTTP, HTTPS,
/// SMTP and stubs services are used (the page, httpbin's redirect elsewhere, a mail with
/// remote images shown with them allowed, a stub answering with remote URLs): the only ones
/// are the page's knocks, to its own address on the ports knocked on, and the config's
/// proxy row to its upstream. A proxy asked of the API for an address outside
/// `[proxy] allow_upstreams` is refused before any connection.
#[tokio::test]
#[ignore = "needs strace (Debian's strace); .ci/run installs it and runs this"]
async fn the_only_outbound_connections_are_the_knocks_and_the_proxys_upstream() {
    let dir = tempfile::tempdir().unwrap();
    // The config's proxy row connects here: the one upstream it may reach.
    let upstream = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let upstream_port = upstream.local_addr().unwrap().port();
    let config = write_config(
        dir.path(),
        &format!(
            "[proxy]\nallow_upstreams = [\"127.0.0.0/8\"]\n\n\
         [[port]]\nport = 0\nservice = \"http\"\nbind = [\"127.0.0.1\"]\n\n\
         [[port]]\nport = 0\nservice = \"https\"\nbind = [\"127.0.0.1\"]\n\n\
         [[port]]\nport = 0\nservice = \"smtp\"\nbind = [\"127.0.0.1\"]\n\n\
         [[port]]\nport = 0\nservice = \"stubs\"\nbind = [\"127.0.0.1\"]\n\n\
         [[port]]\nport = 0\nservice = \"proxy\"\nbind = [\"127.0.0.1\"]\n\
         upstream = \"127.0.0.1:{upstream_port}\"\n"
        ),
    );
    let trace = dir.path().join("connects.txt");
    let mut child = switchboard_testkit::binary::spawn(
        tokio::process::Command::new("strace")
            .args(["-f", "-qq", "-e", "trace=connect", "-o"])
            .arg(&trace)
            .arg(crate::switchboard().path())
            .args(["serve", "--log-format", "json", "--config"])
            .arg(&config)
            .arg("--certs")
            .arg(dir.path().join("certs")),
    );
    let mut logs = Logs::of(&mut child);
    let listening = logs.ready().await;
    let (http, smtp) = (listening["http"], listening["smtp"]);
    let https = listening["https"];

    let client = crate::http_client();
    for path in [
        "/",
        "/whoami",
        "/get",
        "/api/ports",
        "/image/png",
        "/redirect-to?url=http://192.0.2.1/",
    ] {
        client
            .get(format!("http://{http}{path}"))
            .send()
            .await
            .unwrap();
    }
    let tls = crate::client_builder()
        .danger_accept_invalid_certs(true)
        .build()
        .unwrap();
    tls.get(format!("https://{https}/get"))
        .send()
        .await
        .unwrap();
    crate::send_mail(
        smtp,
        "a@example.test",
        &["b@example.test"],
        "Subject: audit\r\nContent-Type: text/html\r\n\r\n\
         <img src=\"http://192.0.2.1/x.png\"><a href=\"http://192.0.2.1/\">x</a>\r\n",
    )
    .await;
    // Stubs: a mapping naming remote URLs, answered; WireMock's proxying is not offered.
    let stubs = listening["stubs"];
    let mapping = client
        .post(format!("http://{stubs}/__admin/mappings"))
        .json(&serde_json::json!({
            "request": {"urlPath": "/audit"},
            "response": {"status": 302, "headers": {"Location": "http://192.0.2.1/"},
                         "body": "<img src=\"http://192.0.2.1/x.png\">"}
        }))
        .send()
        .await
        .unwrap();
    assert_eq!(mapping.status(), 201);
    // (Its redirect is not followed: this test must not send anything to 192.0.2.1 itself.)
    let stubbed = crate::first_hop_client()
        .get(format!("http://{stubs}/audit"))
        .send()
        .await
        .unwrap();
    assert_eq!(stubbed.status(), 302);
    // The mailbox shows a message with remote images, its remote images allowed.
    let id = crate::json_of(client.get(format!("http://{http}/api/v1/messages"))).await["messages"]
        [0]["ID"]
        .as_str()
        .unwrap()
        .to_owned();
    for path in [
        format!("/view/{id}.html"),
        format!("/view/{id}.html?remote=1"),
        format!("/api/v1/message/{id}"),
    ] {
        let seen = client
            .get(format!("http://{http}{path}"))
            .send()
            .await
            .unwrap();
        assert_eq!(seen.status(), 200, "{path}");
    }
    // The proxy row reaches its upstream; one made through the API to 192.0.2.1, spelled as a
    // number, is refused before any connection.
    let proxy = listening["proxy"];
    let mut through = tokio::net::TcpStream::connect(proxy).await.unwrap();
    let (_upstream_side, _) = upstream.accept().await.unwrap();
    through.shutdown().await.unwrap();
    let refused = client
        .post(format!("http://{http}/api/ports"))
        .json(&serde_json::json!({"port": 0, "service": "proxy", "upstream": "3221225985:80"}))
        .send()
        .await
        .unwrap();
    assert_eq!(refused.status(), 403);
    for port in [21, http.port()] {
        let answer = client
            .post(format!("http://{http}/api/knock/{port}"))
            .send()
            .await
            .unwrap();
        assert_eq!(answer.status(), 200);
    }
    drop((client, tls));
    // strace's child is switchboard: ask it to stop, and strace ends with it.
    let tracer = child.id().unwrap();
    let traced = switchboard_probe::sockets::children_of(tracer);
    assert_eq!(traced.len(), 1, "{traced:?}");
    kill(
        Pid::from_raw(i32::try_from(traced[0].pid).unwrap()),
        Signal::SIGTERM,
    )
    .unwrap();
    tokio::time::timeout(PATIENCE, child.wait())
        .await
        .expect("switchboard did not stop")
        .unwrap();

    let traced = std::fs::read_to_string(&trace).unwrap();
    let connects: Vec<&str> = traced.lines().filter(|l| l.contains("connect(")).collect();
    let knocks = [
        "sin_port=htons(21), sin_addr=inet_addr(\"127.0.0.1\")".to_owned(),
        format!(
            "sin_port=htons({}), sin_addr=inet_addr(\"127.0.0.1\")",
            http.port()
        ),
        format!("sin_port=htons({upstream_port}), sin_addr=inet_addr(\"127.0.0.1\")"),
    ];
    for knock in &knocks {
        assert!(
            connects.iter().any(|c| c.contains(knock.as_str())),
            "the knock to {knock} is missing from:\n{traced}"
        );
    }
    let others: Vec<&&str> = connects
        .iter()
        .filter(|c| !knocks.iter().any(|k| c.contains(k.as_str())))
        .collect();
    assert!(
        others.is_empty(),
        "connections other than the knocks and the upstream: {others:#?}"
    );
}
