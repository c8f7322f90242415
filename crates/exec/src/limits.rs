//! Who a program runs as, the resource limits it runs under, the cgroups it joins, and the
//! lock that keeps what it starts in its process group.

use std::os::fd::OwnedFd;
use std::sync::Arc;

use nix::libc;
use nix::sys::resource::{Resource, getrlimit, setrlimit};
use nix::sys::signal::Signal;
use nix::unistd::{Gid, Group, Uid, User, getegid, geteuid};
use seccompiler::{BpfProgram, SeccompAction, SeccompFilter};
use tokio::process::Command;

use crate::Program;
use crate::error::ExecError;
use crate::tree::Tree;

/// The user and group a program runs as, when switchboard runs as root.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RunAs {
    pub uid: Uid,
    pub gid: Gid,
}

impl RunAs {
    /// Who programs run as. As root: `user` (default `nobody`) and `group` (default the
    /// user's own): a program on a port should never run as root unless the row says
    /// `user = "root"`. Otherwise programs run as switchboard's own user, which can read
    /// everything switchboard can (the CA's key among it): only when the row says so
    /// (`allow_exec_same_user`), and naming another user or group is an error (only root
    /// can switch).
    pub fn resolve(
        user: Option<&str>,
        group: Option<&str>,
        same_user_allowed: bool,
    ) -> Result<Option<Self>, ExecError> {
        Self::find(user, group, same_user_allowed).map_err(ExecError::RunAs)
    }

    fn find(
        user: Option<&str>,
        group: Option<&str>,
        same_user_allowed: bool,
    ) -> Result<Option<Self>, String> {
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
            if !same_user_allowed {
                return Err(format!(
                    "switchboard does not run as root, so this program would run as its own \
                     user (uid {}) and could read what switchboard keeps, the CA's private key \
                     among it. Set allow_exec_same_user = true in the row to accept that, or \
                     run switchboard as root so that programs run as `nobody`",
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

/// The seccomp filter every program runs under: `setsid(2)` and `setpgid(2)` fail with
/// EPERM. So nothing a program starts can leave the process group switchboard made for it,
/// and killing that group when the connection ends kills all of it, a daemon's double fork
/// included. (Built in the parent, once per row: building allocates.) The filter also sets
/// no_new_privs, which the kernel asks of an unprivileged filter: a setuid program started
/// from a port gains nothing.
pub(crate) fn group_lock() -> Result<Arc<BpfProgram>, String> {
    let arch = std::env::consts::ARCH
        .try_into()
        .map_err(|e| format!("programs on ports cannot be contained on this machine: {e}"))?;
    let rules = [libc::SYS_setsid, libc::SYS_setpgid]
        .into_iter()
        .map(|call| (call, Vec::new()))
        .collect();
    let refuse = SeccompAction::Errno(libc::EPERM as u32);
    SeccompFilter::new(rules, SeccompAction::Allow, refuse, arch)
        .and_then(BpfProgram::try_from)
        .map(Arc::new)
        .map_err(|e| format!("cannot build the programs' seccomp filter: {e}"))
}

/// Make `command` run as `run_as`, in `tree` (its cgroups) when there is one, under the
/// program's resource limits and `lock`.
pub(crate) fn apply(
    command: &mut Command,
    program: &Program,
    (run_as, tree): (Option<&RunAs>, Option<&Tree>),
    lock: Arc<BpfProgram>,
) {
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
    // Without a cgroup, the number of processes falls back to RLIMIT_NPROC, which counts
    // every process of the user: only where programs run as a user of their own (switchboard
    // as root, programs as `nobody`), never as switchboard's own user (it would count
    // switchboard and everything else that user runs).
    let nproc = match (tree, run_as) {
        (None, Some(_)) => program.max_processes,
        _ => libc::RLIM_INFINITY,
    };
    let limits = [
        within(Resource::RLIMIT_CPU, program.cpu_seconds),
        within(Resource::RLIMIT_AS, program.max_memory),
        within(Resource::RLIMIT_NOFILE, program.max_open_files),
        within(Resource::RLIMIT_NPROC, nproc),
    ];
    let cgroups = tree.map(Tree::procs).unwrap_or_default();
    apply_in_child(command, (limits, cgroups), lock);
}

/// In the child, between fork and exec (after std has put it in its own process group and
/// set its user): join `cgroups`, die with switchboard, set `limits` (soft and hard) and
/// install `lock`.
#[allow(unsafe_code)]
fn apply_in_child(
    command: &mut Command,
    (limits, cgroups): ([(Resource, u64); 4], Arc<Vec<OwnedFd>>),
    lock: Arc<BpfProgram>,
) {
    let parent = nix::unistd::getpid();
    // SAFETY: the closure runs in the forked child before exec, where only
    // async-signal-safe calls are allowed. Every call in it is one system call on values
    // made in the parent beforehand — no allocation, no lock: write(2) of a constant to
    // each cgroup's `cgroup.procs` (descriptors opened by the parent and moved in behind a
    // reference count), prctl(2) and getppid(2), setrlimit(2) (nix's wrappers are direct
    // calls), and seccompiler's `apply_filter`, which makes two, prctl(2) and seccomp(2), on
    // the filter built in the parent. Errors are plain errnos, so that nothing allocates;
    // `limits` is a plain array.
    unsafe {
        command.pre_exec(move || {
            // Before anything else, so that all it starts is counted with it.
            for procs in cgroups.iter() {
                nix::unistd::write(procs, b"0")?;
            }
            // SIGKILL when the thread that forked it ends. Had switchboard already died
            // (between fork and here), the signal would never come: check.
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            if nix::unistd::getppid() != parent {
                return Err(std::io::Error::from_raw_os_error(libc::ESRCH));
            }
            for (resource, limit) in limits {
                setrlimit(resource, limit, limit)?;
            }
            seccompiler::apply_filter(&lock)
                .map_err(|_| std::io::Error::from_raw_os_error(libc::EPERM))
        });
    }
}
