//! The SMTP service captures mail and relays nothing: while it accepts messages for
//! addresses all over the world, the process never holds a socket that it opened itself —
//! no TCP connection out (a relay), no UDP socket (a DNS lookup for an MX record).

use std::collections::HashSet;
use std::time::Duration;

use switchboard_probe::sockets::{TcpState, parse_table};
use tokio::io::AsyncWriteExt;
use tokio::net::TcpStream;

use crate::one_at_a_time;
use switchboard_testkit::binary::port_table;
use switchboard_testkit::client::read_until;

/// The sockets of process `pid` that are neither listeners nor connections accepted on
/// one of `listening` ports, as "tcp 10.0.0.1:40000 → 1.2.3.4:25".
fn sockets_it_opened(pid: u32, listening: &HashSet<u16>) -> Vec<String> {
    let inodes: HashSet<u64> = std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .filter_map(|target| {
            let target = target.to_string_lossy().into_owned();
            target
                .strip_prefix("socket:[")?
                .strip_suffix(']')?
                .parse()
                .ok()
        })
        .collect();
    let mut opened = Vec::new();
    for (table, ipv6) in [
        ("tcp", false),
        ("tcp6", true),
        ("udp", false),
        ("udp6", true),
    ] {
        let text = std::fs::read_to_string(format!("/proc/{pid}/net/{table}")).unwrap_or_default();
        for socket in parse_table(&text, ipv6) {
            if !inodes.contains(&socket.inode) {
                continue;
            }
            let accepted = table.starts_with("tcp")
                && (socket.state == TcpState::Listen || listening.contains(&socket.local.port()));
            if !accepted {
                opened.push(format!("{table} {} → {}", socket.local, socket.remote));
            }
        }
    }
    opened
}

#[tokio::test]
async fn smtp_accepts_mail_for_anywhere_and_never_opens_a_connection_out() {
    let _turn = one_at_a_time().await;
    let server = crate::switchboard()
        .start(&port_table(&["http", "smtp"]), &[])
        .await;
    let pid = server.child.id().unwrap();
    let (http, smtp) = (server.addr("http"), server.addr("smtp"));
    let listening: HashSet<u16> = [http.port(), smtp.port()].into();
    let check = |after: &str| {
        let opened = sockets_it_opened(pid, &listening);
        assert!(
            opened.is_empty(),
            "after {after}: switchboard opened {opened:?}"
        );
    };
    check("start-up");

    let mut stream = TcpStream::connect(smtp).await.unwrap();
    read_until(&mut stream, "220 ").await;
    // The check sees a connection a process opened: this test's own, to the server.
    let ours = sockets_it_opened(std::process::id(), &HashSet::new());
    assert!(
        ours.iter().any(|s| s.ends_with(&format!("→ {smtp}"))),
        "{ours:?}"
    );
    for command in [
        "EHLO relay-test.example.com",
        "VRFY postmaster",
        "MAIL FROM:<sender@example.com>",
        "RCPT TO:<someone@gmail.com>",
        "RCPT TO:<postmaster@[192.0.2.1]>",
        "RCPT TO:<user@example.org>",
        "RCPT TO:<root@localhost>",
        "DATA",
    ] {
        stream
            .write_all(format!("{command}\r\n").as_bytes())
            .await
            .unwrap();
        read_until(&mut stream, if command == "DATA" { "354 " } else { "\r\n" }).await;
        check(command);
    }
    stream
        .write_all(b"Subject: relay me\r\n\r\nPlease deliver.\r\n.\r\nQUIT\r\n")
        .await
        .unwrap();
    let end = switchboard_testkit::client::read_to_close(&mut stream).await;
    assert!(end.contains("250 2.0.0 OK: queued as"), "{end}");
    // A relay could start after the session: look again for a while.
    for _ in 0..10 {
        check("the message was accepted");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    server.assert_no_panic();
}
