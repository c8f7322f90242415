//! `switchboard ports`: the kernel's table of listening sockets, with their owners.

use std::process::ExitCode;

use switchboard_probe::sockets;

pub(crate) fn print() -> ExitCode {
    let sockets = match sockets::listening() {
        Ok(sockets) => sockets,
        Err(error) if error.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "error: {error}. `switchboard ports` reads Linux's socket table; elsewhere try \
                 `netstat -an` or `lsof -iTCP -sTCP:LISTEN`."
            );
            return ExitCode::from(2);
        }
        Err(error) => {
            eprintln!("error: cannot read the socket table: {error}");
            return ExitCode::from(2);
        }
    };
    let owners = sockets::owners();
    // Where the UDP table cannot be read, the TCP one still tells most of the story.
    let udp = sockets::udp_bound().unwrap_or_default();
    println!(
        "The kernel holds these listening TCP sockets; a connection to any other port is refused.\n\
         Below them, the UDP sockets waiting for datagrams: UDP has no connections, so a\n\
         datagram to any other UDP port is answered by the kernel with \"port unreachable\".\n"
    );
    println!("{:<6} {:<28} {:<6} PROCESS", "PROTO", "ADDRESS", "PORT");
    let mut hidden = false;
    for socket in sockets.iter().chain(&udp) {
        let (process, ours) = match owners.get(&socket.inode) {
            Some(p) => (
                format!("{} (pid {})", p.name, p.pid),
                p.name == "switchboard",
            ),
            None => {
                hidden = true;
                (format!("? (uid {})", socket.uid), false)
            }
        };
        println!(
            "{:<6} {:<28} {:<6} {process}{}",
            socket.protocol,
            socket.local.ip().to_string(),
            socket.local.port(),
            if ours { "   ← switchboard" } else { "" }
        );
    }
    if sockets.is_empty() {
        println!("(none: nothing on this machine listens for TCP connections)");
    }
    print_programs(&owners);
    if hidden {
        println!(
            "\n? = a process whose open files this user cannot look into (another user's, or one in \
             another container or namespace; root sees the ones on this system)."
        );
    }
    ExitCode::SUCCESS
}

/// The programs each switchboard runs now, one per connection to an `exec` row: a port is
/// just a door to a program.
fn print_programs(owners: &std::collections::HashMap<u64, sockets::Process>) {
    let mut parents: Vec<u32> = owners
        .values()
        .filter(|p| p.name == "switchboard")
        .map(|p| p.pid)
        .collect();
    parents.sort_unstable();
    parents.dedup();
    for parent in parents {
        let programs = sockets::children_of(parent);
        println!(
            "\nPrograms switchboard (pid {parent}) runs now, one per connection to an exec row:"
        );
        if programs.is_empty() {
            println!("(none now: each connection to an exec row starts one, and its end ends it)");
            continue;
        }
        println!("{:<8} {:<10} COMMAND", "PID", "USER");
        for program in programs {
            println!(
                "{:<8} {:<10} {}",
                program.pid,
                user_name(program.uid),
                program.command
            );
        }
    }
}

/// The name of user `uid` from /etc/passwd, or the number.
fn user_name(uid: u32) -> String {
    std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                (fields.nth(1)?.parse::<u32>().ok()? == uid).then(|| name.to_owned())
            })
        })
        .unwrap_or_else(|| uid.to_string())
}
