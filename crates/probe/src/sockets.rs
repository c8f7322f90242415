//! The kernel's tables of TCP and UDP sockets, as Linux shows them in `/proc/net/tcp`,
//! `tcp6`, `udp` and `udp6`: where ports live. `switchboard ports` prints them; the page
//! uses the TCP one to tell "nobody listens here" from "another program listens here".

use std::collections::HashMap;
use std::io;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::path::Path;

/// One socket of the kernel's table.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Socket {
    /// `tcp` (IPv4), `tcp6`, `udp` or `udp6`.
    pub protocol: &'static str,
    pub local: SocketAddr,
    pub remote: SocketAddr,
    pub state: TcpState,
    /// The user that owns it.
    pub uid: u32,
    /// The socket's inode: how a process's open files point at it.
    pub inode: u64,
}

/// The TCP states a learner meets most; the rest are "other".
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TcpState {
    Listen,
    Established,
    TimeWait,
    Other(u8),
}

impl TcpState {
    fn from_code(code: u8) -> Self {
        match code {
            0x0A => TcpState::Listen,
            0x01 => TcpState::Established,
            0x06 => TcpState::TimeWait,
            other => TcpState::Other(other),
        }
    }
}

/// A process that holds a socket open.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Process {
    pub pid: u32,
    pub name: String,
}

/// Parse the text of `/proc/net/tcp` (or `tcp6` with `ipv6`). Lines that do not parse are
/// skipped: the first is a header, and a future kernel may add columns at the end.
pub fn parse_table(text: &str, ipv6: bool) -> Vec<Socket> {
    parse_rows(text, if ipv6 { "tcp6" } else { "tcp" })
}

/// Parse the text of `/proc/net/udp` (or `udp6` with `ipv6`): the same columns.
pub fn parse_udp_table(text: &str, ipv6: bool) -> Vec<Socket> {
    parse_rows(text, if ipv6 { "udp6" } else { "udp" })
}

fn parse_rows(text: &str, protocol: &'static str) -> Vec<Socket> {
    text.lines()
        .filter_map(|line| parse_line(line, protocol))
        .collect()
}

fn parse_line(line: &str, protocol: &'static str) -> Option<Socket> {
    let ipv6 = protocol.ends_with('6');
    let fields: Vec<&str> = line.split_whitespace().collect();
    if fields.len() < 10 || !fields[0].ends_with(':') {
        return None;
    }
    Some(Socket {
        protocol,
        local: parse_endpoint(fields[1], ipv6)?,
        remote: parse_endpoint(fields[2], ipv6)?,
        state: TcpState::from_code(u8::from_str_radix(fields[3], 16).ok()?),
        uid: fields[7].parse().ok()?,
        inode: fields[9].parse().ok()?,
    })
}

/// `0100007F:0050` is 127.0.0.1:80. The address is printed as 32-bit words in the host's
/// byte order; the port as a plain hexadecimal number.
fn parse_endpoint(text: &str, ipv6: bool) -> Option<SocketAddr> {
    let (addr, port) = text.split_once(':')?;
    let port = u16::from_str_radix(port, 16).ok()?;
    let words = |count: usize| -> Option<Vec<[u8; 4]>> {
        if addr.len() != count * 8 {
            return None;
        }
        (0..count)
            .map(|i| {
                // `get`, not indexing: in text that is not the kernel's, a multi-byte
                // character may straddle the word boundary (found by fuzzing).
                let word = addr.get(i * 8..i * 8 + 8)?;
                u32::from_str_radix(word, 16).ok().map(u32::to_ne_bytes)
            })
            .collect()
    };
    let ip = if ipv6 {
        let bytes: Vec<u8> = words(4)?.concat();
        IpAddr::V6(Ipv6Addr::from(<[u8; 16]>::try_from(bytes).ok()?))
    } else {
        IpAddr::V4(Ipv4Addr::from(words(1)?[0]))
    };
    Some(SocketAddr::new(ip, port))
}

/// The listening sockets of this machine (this network namespace), IPv4 and IPv6.
///
/// An error of kind `NotFound` means the system has no `/proc/net/tcp` (not Linux, or
/// `/proc` not mounted).
pub fn listening() -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    let mut found = false;
    for (path, ipv6) in [("/proc/net/tcp", false), ("/proc/net/tcp6", true)] {
        match std::fs::read_to_string(path) {
            Ok(text) => {
                found = true;
                sockets.extend(
                    parse_table(&text, ipv6)
                        .into_iter()
                        .filter(|s| s.state == TcpState::Listen),
                );
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    if !found {
        return Err(io::Error::new(
            io::ErrorKind::NotFound,
            "this system has no /proc/net/tcp",
        ));
    }
    sockets.sort_by_key(|s| (s.local.port(), s.protocol, s.local.ip()));
    Ok(sockets)
}

/// The UDP sockets waiting for datagrams from anyone (bound, not connected to one peer),
/// IPv4 and IPv6; empty where the system has no `/proc/net/udp`.
pub fn udp_bound() -> io::Result<Vec<Socket>> {
    let mut sockets = Vec::new();
    for (path, ipv6) in [("/proc/net/udp", false), ("/proc/net/udp6", true)] {
        match std::fs::read_to_string(path) {
            Ok(text) => sockets.extend(
                parse_udp_table(&text, ipv6)
                    .into_iter()
                    .filter(|s| s.remote.port() == 0),
            ),
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(e),
        }
    }
    sockets.sort_by_key(|s| (s.local.port(), s.protocol, s.local.ip()));
    Ok(sockets)
}

/// Which process holds each socket inode, as far as `/proc` lets us see: other users'
/// processes are visible only to root.
pub fn owners() -> HashMap<u64, Process> {
    owners_in(Path::new("/proc"))
}

fn owners_in(proc_root: &Path) -> HashMap<u64, Process> {
    let mut owners = HashMap::new();
    let Ok(entries) = std::fs::read_dir(proc_root) else {
        return owners;
    };
    for entry in entries.flatten() {
        let Some(pid) = entry
            .file_name()
            .to_str()
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        let Ok(fds) = std::fs::read_dir(entry.path().join("fd")) else {
            continue; // not ours to look at, or gone
        };
        let name = std::fs::read_to_string(entry.path().join("comm"))
            .map(|n| n.trim().to_owned())
            .unwrap_or_default();
        for fd in fds.flatten() {
            let Ok(target) = std::fs::read_link(fd.path()) else {
                continue;
            };
            let target = target.to_string_lossy();
            if let Some(inode) = target
                .strip_prefix("socket:[")
                .and_then(|t| t.strip_suffix(']'))
                .and_then(|t| t.parse::<u64>().ok())
            {
                owners.entry(inode).or_insert_with(|| Process {
                    pid,
                    name: name.clone(),
                });
            }
        }
    }
    owners
}

/// A process started by another: what `switchboard ports` shows under switchboard for the
/// programs of its `exec` rows.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Started {
    pub pid: u32,
    /// Its real user id.
    pub uid: u32,
    /// Its command line, arguments joined by spaces.
    pub command: String,
}

/// The processes whose parent is `parent`, in pid order (as far as `/proc` shows them).
pub fn children_of(parent: u32) -> Vec<Started> {
    let Ok(entries) = std::fs::read_dir("/proc") else {
        return Vec::new();
    };
    let mut children: Vec<Started> = entries
        .flatten()
        .filter_map(|entry| {
            let pid = entry.file_name().to_str()?.parse::<u32>().ok()?;
            let status = std::fs::read_to_string(entry.path().join("status")).ok()?;
            let field = |name: &str| {
                status
                    .lines()
                    .find_map(|l| l.strip_prefix(name))
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse::<u32>().ok())
            };
            if field("PPid:")? != parent {
                return None;
            }
            let cmdline = std::fs::read(entry.path().join("cmdline")).unwrap_or_default();
            let mut command = cmdline
                .split(|&b| b == 0)
                .filter(|a| !a.is_empty())
                .map(|a| String::from_utf8_lossy(a).into_owned())
                .collect::<Vec<_>>()
                .join(" ");
            if command.is_empty() {
                // A process in the middle of exec (or a kernel thread) has no command line
                // yet: its name, as ps shows it, in brackets.
                let comm = std::fs::read_to_string(entry.path().join("comm")).unwrap_or_default();
                command = format!("[{}]", comm.trim());
            }
            Some(Started {
                pid,
                uid: field("Uid:")?,
                command,
            })
        })
        .collect();
    children.sort_by_key(|c| c.pid);
    children
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_child_process_is_found_under_its_parent() {
        let mut child = std::process::Command::new("sleep")
            .arg("30")
            .spawn()
            .unwrap();
        // Right after spawn the child may still be inside exec, without its command line
        // yet: look until it has one (bounded).
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        let ours = loop {
            let found = children_of(std::process::id());
            let ours = found.into_iter().find(|c| c.pid == child.id()).unwrap();
            if ours.command == "sleep 30" || std::time::Instant::now() > deadline {
                break ours;
            }
            std::thread::yield_now();
        };
        child.kill().unwrap();
        child.wait().unwrap();
        assert_eq!(ours.command, "sleep 30");
        assert_eq!(ours.uid, nix_free_uid());
    }

    /// This process's real uid, from /proc (the probe crate does not link nix).
    fn nix_free_uid() -> u32 {
        let status = std::fs::read_to_string("/proc/self/status").unwrap();
        let line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
        line.split_whitespace().nth(1).unwrap().parse().unwrap()
    }

    // In the format of a Linux x86_64 machine (so the address words are little-endian).
    const TCP: &str = "  sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000:0050 00000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41517 1 0000000000000000 100 0 0 10 0
   1: 0100007F:1F90 00000000:0000 0A 00000000:00000000 00:00000000 00000000  1000        0 41600 1 0000000000000000 100 0 0 10 0
   2: 0100007F:0050 0100007F:D2F0 01 00000000:00000000 00:00000000 00000000     0        0 41777 1 0000000000000000 20 4 30 10 -1
   3: 0100007F:C3A2 0100007F:0050 06 00000000:00000000 03:00001772 00000000     0        0 0 3 0000000000000000
";
    const TCP6: &str = "  sl  local_address                         remote_address                        st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode
   0: 00000000000000000000000000000000:01BB 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41519 1 0000000000000000 100 0 0 10 0
   1: 00000000000000000000000001000000:0019 00000000000000000000000000000000:0000 0A 00000000:00000000 00:00000000 00000000     0        0 41521 1 0000000000000000 100 0 0 10 0
   2: garbage line
";

    #[cfg(target_endian = "little")]
    #[test]
    fn udp_rows_parse_with_their_protocol() {
        // A DNS resolver's socket on 127.0.0.53:53, unconnected (remote 0.0.0.0:0), state 07.
        let udp = "   sl  local_address rem_address   st tx_queue rx_queue tr tm->when retrnsmt   uid  timeout inode ref pointer drops
  745: 3500007F:0035 00000000:0000 07 00000000:00000000 00:00000000 00000000   101        0 20374 2 0000000000000000 0
";
        let sockets = parse_udp_table(udp, false);
        assert_eq!(sockets.len(), 1);
        assert_eq!(sockets[0].protocol, "udp");
        assert_eq!(sockets[0].local, "127.0.0.53:53".parse().unwrap());
        assert_eq!(sockets[0].remote.port(), 0, "not connected: open to anyone");
        assert_eq!(sockets[0].inode, 20374);
    }

    #[test]
    fn a_bound_udp_socket_is_found() {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let port = socket.local_addr().unwrap().port();
        let bound = udp_bound().unwrap();
        assert!(
            bound
                .iter()
                .any(|s| s.local.port() == port && s.protocol == "udp"),
            "{port} not in {bound:?}"
        );
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv4_rows_parse() {
        let sockets = parse_table(TCP, false);
        assert_eq!(sockets.len(), 4);
        assert_eq!(sockets[0].local, "0.0.0.0:80".parse().unwrap());
        assert_eq!(sockets[0].state, TcpState::Listen);
        assert_eq!(sockets[0].inode, 41517);
        assert_eq!(sockets[1].local, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(sockets[1].uid, 1000);
        assert_eq!(sockets[2].state, TcpState::Established);
        assert_eq!(sockets[2].remote, "127.0.0.1:54000".parse().unwrap());
        assert_eq!(sockets[3].state, TcpState::TimeWait);
    }

    #[cfg(target_endian = "little")]
    #[test]
    fn ipv6_rows_parse_and_garbage_is_skipped() {
        let sockets = parse_table(TCP6, true);
        assert_eq!(sockets.len(), 2);
        assert_eq!(sockets[0].local, "[::]:443".parse().unwrap());
        assert_eq!(sockets[0].protocol, "tcp6");
        assert_eq!(sockets[1].local, "[::1]:25".parse().unwrap());
    }

    #[test]
    fn this_machine_s_table_shows_a_listener_we_open() {
        let Ok(before) = listening() else {
            return; // no /proc here: nothing to compare with
        };
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let after = listening().unwrap();
        assert!(
            after.iter().any(|s| s.local == addr),
            "{addr} not in {after:?}"
        );
        assert!(!before.iter().any(|s| s.local == addr));
        // And we can see that we own it.
        let me = std::process::id();
        let socket = after.iter().find(|s| s.local == addr).unwrap();
        assert_eq!(owners().get(&socket.inode).map(|p| p.pid), Some(me));
    }
}
