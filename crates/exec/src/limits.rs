//! Who a program runs as, and the resource limits it runs under.

use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid};
use tokio::process::Command;

use crate::Program;

/// The user and group a program runs as, when switchboard runs as root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: Uid,
    pub gid: Gid,
}

impl RunAs {
    /// Who programs run as. As root: `user` (default `nobody`) and `group` (default the
    /// user's own): a program on a port should never run as root unless the row says
    /// `user = "root"`. Otherwise programs run as switchboard's own user, and naming another
    /// user or group is an error (only root can switch).
    pub fn resolve(user: Option<&str>, group: Option<&str>) -> Result<Option<Self>, String> {
        if !geteuid().is_root() {
            let other_user = user.map(find_user).transpose()?.map(|u| u.uid);
            let other_group = group.map(find_group).transpose()?;
            if other_user.is_some_and(|u| u != geteuid())
                || other_group.is_some_and(|g| g != getegid())
            {
                return Err(format!(
                    "`user` and `group` need switchboard to run as root (it runs as uid {}); \
                     leave them out to run programs as switchboard's own user",
                    geteuid()
                ));
            }
            return Ok(None);
        }
        let user = find_user(user.unwrap_or("nobody"))?;
        let gid = match group {
            Some(group) => find_group(group)?,
            None => user.gid,
        };
        Ok(Some(Self { uid: user.uid, gid }))
    }
}

fn find_user(name: &str) -> Result<User, String> {
    let found = match name.parse::<u32>() {
        Ok(uid) => User::from_uid(Uid::from_raw(uid)),
        Err(_) => User::from_name(name),
    };
    found
        .map_err(|e| format!("cannot look up user {name:?}: {e}"))?
        .ok_or_else(|| format!("no user {name:?} on this system (`user` in the row)"))
}

fn find_group(name: &str) -> Result<Gid, String> {
    if let Ok(gid) = name.parse::<u32>() {
        return Ok(Gid::from_raw(gid));
    }
    Group::from_name(name)
        .map_err(|e| format!("cannot look up group {name:?}: {e}"))?
        .map(|g| g.gid)
        .ok_or_else(|| format!("no group {name:?} on this system (`group` in the row)"))
}

/// Make `command` run as `run_as`, under the program's resource limits.
pub(crate) fn apply(command: &mut Command, program: &Program, run_as: Option<&RunAs>) {
    if let Some(run_as) = run_as {
        // As root, std also drops the supplementary groups (setgroups) before setuid.
        command.uid(run_as.uid.as_raw()).gid(run_as.gid.as_raw());
    }
    // Never above switchboard's own hard limits: only root could raise those, and the
    // program would fail to start instead.
    let within = |resource, limit: u64| {
        let hard = getrlimit(resource).map_or(limit, |(_, hard)| hard);
        (resource, limit.min(hard))
    };
    let limits = [
        within(Resource::RLIMIT_CPU, program.cpu_seconds),
        within(Resource::RLIMIT_AS, program.max_memory),
        within(Resource::RLIMIT_NOFILE, program.max_open_files),
    ];
    apply_in_child(command, limits);
}

/// Set `limits` (soft and hard) in the child, between fork and exec.
#[allow(unsafe_code)]
fn apply_in_child(command: &mut Command, limits: [(Resource, u64); 3]) {
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed. It calls setrlimit(2) alone (nix's wrapper is a
    // direct system call on values copied in beforehand: no allocation, no lock), and
    // `limits` is a plain array moved into the closure.
    unsafe {
        command.pre_exec(move || {
            for (resource, limit) in limits {
                setrlimit(resource, limit, limit)?;
            }
            Ok(())
        });
    }
}
