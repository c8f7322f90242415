//! The blackhole row: a port that listens and never answers. Its queue is kept full with
//! connections of its own, so the kernel drops every knock (as a firewall's drop rule
//! would) and clients time out; nothing reaches switchboard, and nothing grows with the
//! knocking.

use std::net::SocketAddr;
use std::time::Duration;

use nix::sys::signal::Signal;
use serde_json::{Value, json};
use switchboard_testkit::Stack;
use switchboard_testkit::binary::port_table;
use tokio::net::TcpStream;
use tokio::task::JoinSet;

/// How long a test's knock waits for an answer that never comes.
const GIVE_UP: Duration = Duration::from_millis(100);

/// Knock on `addr` and give up after [`GIVE_UP`]; whether anything answered.
async fn answered(addr: SocketAddr) -> bool {
    tokio::time::timeout(GIVE_UP, TcpStream::connect(addr))
        .await
        .is_ok()
}

/// The descriptors a process has open.
fn descriptors(pid: nix::unistd::Pid) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/fd"))
        .unwrap()
        .count()
}

#[tokio::test]
async fn probe_hears_nothing_and_a_thousand_knocks_cost_the_server_nothing() {
    let server = crate::switchboard()
        .start(&port_table(&["blackhole"]), &[])
        .await;
    let addr = server.addr("blackhole");

    let started = std::time::Instant::now();
    let output = crate::switchboard()
        .command()
        .args(["probe", "127.0.0.1", &addr.port().to_string()])
        .args(["--timeout", "500", "--json"])
        .output()
        .await
        .unwrap();
    let findings: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(findings[0]["state"], "timeout", "{findings}");
    assert_eq!(findings[0]["detail"], "no answer within 500 ms");
    // It gave up at its own limit, not at the kernel's (about two minutes of SYN retries).
    assert!(
        started.elapsed() < Duration::from_secs(10),
        "{:?}",
        started.elapsed()
    );

    let (fds, (memory, _)) = (descriptors(server.pid()), server.memory_kib());
    let mut answers = 0;
    for _ in 0..5 {
        let mut knocks = JoinSet::new();
        for _ in 0..200 {
            knocks.spawn(answered(addr));
        }
        while let Some(knock) = knocks.join_next().await {
            answers += usize::from(knock.unwrap());
        }
    }
    assert_eq!(answers, 0, "of 1000 knocks, {answers} got an answer");
    assert_eq!(descriptors(server.pid()), fds, "descriptors changed");
    let (after, _) = server.memory_kib();
    // Nothing is allocated per knock; a little room for the allocator's own moods.
    assert!(
        after <= memory + 256,
        "{memory} KiB before, {after} KiB after"
    );

    server.signal(Signal::SIGTERM);
    let logs = server.logs.rest().await;
    let said: Vec<&str> = logs
        .iter()
        .filter_map(|l| l["fields"]["message"].as_str())
        .collect();
    assert!(
        said.iter().any(|l| l.contains("is a blackhole")),
        "no word of the blackhole: {said:#?}"
    );
    assert!(
        !said.iter().any(|l| l.starts_with("connection")),
        "a knock reached switchboard: {said:#?}"
    );
}

#[tokio::test]
async fn a_blackhole_added_at_run_time_drops_knocks_and_closes_and_opens_like_any_port() {
    let stack = Stack::builder()
        .service("http")
        .configure(|c| {
            c.http.knock_timeout = Duration::from_millis(300);
            c.supervisor.blackhole_wait = Duration::from_millis(50);
        })
        .start()
        .await
        .unwrap();
    let add = json!({"port": 0, "service": "blackhole", "bind": ["127.0.0.1"]});
    let added = crate::json_of(
        crate::http_client()
            .post(stack.url("http", "/api/ports"))
            .json(&add),
    )
    .await;
    assert_eq!(added["service"], "blackhole", "{added}");
    let port = u16::try_from(added["port"].as_u64().unwrap()).unwrap();
    let addr = SocketAddr::from(([127, 0, 0, 1], port));

    let knock_url = stack.url("http", &format!("/api/knock/{port}"));
    let knock = crate::json_of(crate::http_client().post(knock_url)).await;
    assert_eq!(knock["answer"], "timeout", "{knock}");
    let meaning = knock["meaning"].as_str().unwrap();
    assert!(meaning.contains("nothing answered within 300ms"), "{knock}");
    assert!(meaning.contains("blackhole"), "{knock}");

    // Closed, it refuses like any port; opened again, its queue is filled again.
    let control = |action: &str| {
        crate::http_client()
            .post(stack.url("http", &format!("/api/ports/{port}/{action}")))
            .send()
    };
    assert!(control("close").await.unwrap().status().is_success());
    crate::assert_refused(addr).await;
    assert!(control("open").await.unwrap().status().is_success());
    assert!(!answered(addr).await, "a knock got in after opening again");

    let page = crate::text_of(crate::http_client().get(stack.url("http", "/"))).await;
    for says in [
        "drops every knock",
        "listening, never accepting",
        "a drop without a firewall",
    ] {
        assert!(page.contains(says), "no {says:?} on the page: {page}");
    }
}

#[tokio::test]
async fn rules_and_limits_on_a_blackhole_row_and_a_udp_blackhole_are_refused_with_the_reason() {
    for (row, says) in [
        (
            "allow = [\"127.0.0.1/32\"]",
            "`allow` has no effect on a blackhole row",
        ),
        ("max_connections = 5", "`max_connections` has no effect"),
        (
            "protocol = \"udp\"",
            "the blackhole service has no UDP form",
        ),
    ] {
        let config = format!("[[port]]\nport = 0\nservice = \"blackhole\"\n{row}\n");
        let output = crate::switchboard()
            .command()
            .args(["serve", "--config-toml", &config])
            .output()
            .await
            .unwrap();
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert_eq!(output.status.code(), Some(2), "{row}: {stderr}");
        assert!(stderr.contains(says), "{row}: {stderr}");
    }
}
