//! Limits on a program's whole tree — everything it starts counts — through a control group
//! of its own: `pids` for the number of processes (`max_processes`), `memory` for their
//! memory together (`max_memory`). Rlimits hold per process only: a program under a 1 GiB
//! `RLIMIT_AS` could start three children of 1 GiB each.
//!
//! At first use switchboard looks for a cgroup hierarchy it may write to: cgroup v1's `pids`
//! and `memory` controllers, or cgroup v2 with both delegated. It makes a directory for
//! this run (`switchboard-<pid>`, under its own cgroup) and one per program in it; the
//! program joins its cgroup between fork and exec, before it can start anything. Where none
//! can be made (not root, a read-only `/sys/fs/cgroup`), the reason is logged once and
//! programs keep their rlimits alone (docs/configuration.md says what that leaves open).

use std::fs;
use std::io;
use std::os::fd::OwnedFd;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock};
use std::time::Duration;

/// Where this run's program cgroups are made.
#[derive(Debug)]
pub(crate) struct Trees {
    /// One directory per hierarchy: v1's pids and memory, or v2's one.
    runs: Vec<Run>,
}

#[derive(Debug)]
struct Run {
    dir: PathBuf,
    /// The files that set the limits, as this hierarchy names them.
    processes: Option<&'static str>,
    memory: Option<&'static str>,
    /// v2: the run's directory must hand the controllers down to the programs' cgroups.
    hands_down: bool,
}

/// One program's cgroups. Dropping it does nothing: [`Tree::remove`] takes them down once
/// the program is gone.
#[derive(Debug)]
pub(crate) struct Tree {
    dirs: Vec<PathBuf>,
    /// Each cgroup's `cgroup.procs`, open for writing: the child writes `0` (itself) to
    /// each between fork and exec.
    procs: Arc<Vec<OwnedFd>>,
}

impl Trees {
    /// The hierarchy found at first call, or why there is none (logged then, once).
    pub(crate) fn get() -> Option<&'static Trees> {
        static TREES: OnceLock<Result<Trees, String>> = OnceLock::new();
        TREES
            .get_or_init(|| {
                let found = Trees::find();
                match &found {
                    Ok(trees) => tracing::info!(
                        "exec: each program's tree is limited by a cgroup of its own, under {}",
                        trees
                            .runs
                            .iter()
                            .map(|run| run.dir.display().to_string())
                            .collect::<Vec<_>>()
                            .join(" and ")
                    ),
                    Err(why) => tracing::warn!(
                        "exec: no cgroup for programs ({why}); `max_processes` and \
                         `max_memory` hold per process (rlimits), not per program tree \
                         (docs/configuration.md, programs on ports)"
                    ),
                }
                found
            })
            .as_ref()
            .ok()
    }

    fn find() -> Result<Self, String> {
        let own = fs::read_to_string("/proc/self/cgroup")
            .map_err(|e| format!("cannot read /proc/self/cgroup: {e}"))?;
        let mounts = fs::read_to_string("/proc/self/mountinfo")
            .map_err(|e| format!("cannot read /proc/self/mountinfo: {e}"))?;
        let run = format!("switchboard-{}", std::process::id());
        let v1 = ["pids", "memory"].map(|controller| {
            let dir = own_dir(&own, &mounts, Some(controller)).filter(|d| d.is_dir())?;
            Some(Run {
                dir: dir.join(&run),
                processes: (controller == "pids").then_some("pids.max"),
                memory: (controller == "memory").then_some("memory.limit_in_bytes"),
                hands_down: false,
            })
        });
        let runs = match v1 {
            [Some(pids), Some(memory)] => vec![pids, memory],
            _ => {
                let dir = own_dir(&own, &mounts, None)
                    .filter(|d| d.is_dir())
                    .ok_or("no writable cgroup v1 pids and memory controllers, nor cgroup v2")?;
                vec![v2_run(&dir, &run)?]
            }
        };
        for run in &runs {
            if let Some(parent) = run.dir.parent() {
                clear_stale(parent);
            }
            fs::create_dir(&run.dir)
                .map_err(|e| format!("cannot make {}: {e}", run.dir.display()))?;
            if run.hands_down {
                fs::write(run.dir.join("cgroup.subtree_control"), "+pids +memory").map_err(
                    |e| format!("cannot hand controllers down in {}: {e}", run.dir.display()),
                )?;
            }
        }
        Ok(Self { runs })
    }

    /// This run's directories, one per hierarchy.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        self.runs.iter().map(|run| run.dir.clone()).collect()
    }

    /// Make the cgroups of one program (`program-<n>`, numbered in this run), with its
    /// limits.
    pub(crate) fn make(&self, max_processes: u64, max_memory: u64) -> io::Result<Tree> {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let name = format!("program-{}", NEXT.fetch_add(1, Ordering::Relaxed));
        let mut tree = Tree {
            dirs: Vec::new(),
            procs: Arc::new(Vec::new()),
        };
        let mut procs = Vec::new();
        for run in &self.runs {
            let dir = run.dir.join(&name);
            fs::create_dir(&dir)?;
            tree.dirs.push(dir.clone());
            if let Some(file) = run.processes {
                fs::write(dir.join(file), max_processes.to_string())?;
            }
            if let Some(file) = run.memory {
                fs::write(dir.join(file), max_memory.to_string())?;
            }
            let file = fs::OpenOptions::new()
                .write(true)
                .open(dir.join("cgroup.procs"))?;
            procs.push(OwnedFd::from(file));
        }
        tree.procs = Arc::new(procs);
        Ok(tree)
    }
}

impl Tree {
    /// The `cgroup.procs` files the child joins.
    pub(crate) fn procs(&self) -> Arc<Vec<OwnedFd>> {
        self.procs.clone()
    }

    /// Kill whatever is left in the program's cgroups and remove them (blocking: call it
    /// off the async workers). The kernel removes a cgroup only once its last process is
    /// gone, which can take a moment after SIGKILL.
    pub(crate) fn remove(self) {
        drop(self.procs);
        for dir in &self.dirs {
            for _ in 0..100 {
                kill_all(dir);
                match fs::remove_dir(dir) {
                    Ok(()) => break,
                    Err(e) if e.kind() == io::ErrorKind::NotFound => break,
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        }
    }
}

/// SIGKILL every process in the cgroup at `dir`.
fn kill_all(dir: &Path) {
    let Ok(procs) = fs::read_to_string(dir.join("cgroup.procs")) else {
        return;
    };
    for pid in procs
        .lines()
        .filter_map(|line| line.trim().parse::<i32>().ok())
    {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
}

/// Take down what a run of switchboard that was killed left: its program cgroups (and
/// anything still in them), then its own directory.
fn clear_stale(parent: &Path) {
    let Ok(entries) = fs::read_dir(parent) else {
        return;
    };
    for entry in entries.flatten() {
        let name = entry.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("switchboard-"))
            .and_then(|n| n.parse::<u32>().ok())
        else {
            continue;
        };
        if Path::new(&format!("/proc/{pid}")).exists() {
            continue;
        }
        let run = entry.path();
        if let Ok(programs) = fs::read_dir(&run) {
            for program in programs.flatten().filter(|p| p.path().is_dir()) {
                let tree = Tree {
                    dirs: vec![program.path()],
                    procs: Arc::new(Vec::new()),
                };
                tree.remove();
            }
        }
        let _ = fs::remove_dir(&run);
    }
}

/// The directory of switchboard's own cgroup in the hierarchy of `controller` (v1), or in
/// the unified hierarchy (`None`, v2), if it is mounted and writable.
fn own_dir(own: &str, mounts: &str, controller: Option<&str>) -> Option<PathBuf> {
    let path = own.lines().find_map(|line| {
        let mut fields = line.splitn(3, ':');
        let (_, controllers, path) = (fields.next()?, fields.next()?, fields.next()?);
        let found = match controller {
            Some(controller) => controllers.split(',').any(|c| c == controller),
            None => controllers.is_empty(),
        };
        found.then_some(path)
    })?;
    let (root, mount_point) = mounts.lines().find_map(|line| {
        let (before, after) = line.split_once(" - ")?;
        let fields: Vec<&str> = before.split(' ').collect();
        let after: Vec<&str> = after.split(' ').collect();
        let matches = match controller {
            Some(controller) => {
                after.first() == Some(&"cgroup")
                    && after.get(2)?.split(',').any(|o| o == controller)
            }
            None => after.first() == Some(&"cgroup2"),
        };
        let writable = fields.get(5)?.split(',').any(|o| o == "rw");
        let (root, mount_point) = (*fields.get(3)?, *fields.get(4)?);
        (matches && writable).then_some((root, mount_point))
    })?;
    let relative = path
        .strip_prefix(root)
        .unwrap_or(path)
        .trim_start_matches('/');
    Some(Path::new(mount_point).join(relative))
}

/// cgroup v2: the run's directory beside switchboard's own process, with `pids` and
/// `memory` handed down to the programs' cgroups in it. A cgroup with processes cannot hand
/// controllers down (the "no internal processes" rule), so switchboard first moves itself
/// into a leaf of its own cgroup, `switchboard-main`.
fn v2_run(own: &Path, run: &str) -> Result<Run, String> {
    let wanted = ["pids", "memory"];
    let enabled = |dir: &Path| {
        fs::read_to_string(dir.join("cgroup.subtree_control")).is_ok_and(|text| {
            wanted
                .iter()
                .all(|c| text.split_whitespace().any(|e| e == *c))
        })
    };
    if !enabled(own) {
        let available = fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
        if !wanted
            .iter()
            .all(|c| available.split_whitespace().any(|a| a == *c))
        {
            return Err(format!(
                "cgroup v2 at {} does not delegate pids and memory",
                own.display()
            ));
        }
        let leaf = own.join("switchboard-main");
        let step = |what: &str, result: io::Result<()>| {
            result.map_err(|e| format!("cgroup v2: cannot {what}: {e}"))
        };
        if !leaf.is_dir() {
            step("make switchboard-main", fs::create_dir(&leaf))?;
        }
        step(
            "move switchboard into switchboard-main",
            fs::write(leaf.join("cgroup.procs"), std::process::id().to_string()),
        )?;
        step(
            "hand pids and memory down",
            fs::write(own.join("cgroup.subtree_control"), "+pids +memory"),
        )?;
    }
    Ok(Run {
        dir: own.join(run),
        processes: Some("pids.max"),
        memory: Some("memory.max"),
        hands_down: true,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTS: &str = "\
30 25 0:26 / /sys/fs/cgroup/pids rw,nosuid,nodev,noexec,relatime shared:9 - cgroup cgroup rw,pids
31 25 0:27 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime shared:10 - cgroup cgroup rw,memory
32 25 0:28 /docker/abc /sys/fs/cgroup/cpu ro,nosuid - cgroup cgroup rw,cpu
33 25 0:29 / /sys/fs/cgroup/unified rw,nosuid - cgroup2 cgroup2 rw
";

    #[test]
    fn own_cgroups_are_found_from_proc_self() {
        let own = "8:pids:/\n4:memory:/process_api/5cdc\n1:cpu:/docker/abc/x\n0::/user.slice\n";
        assert_eq!(
            own_dir(own, MOUNTS, Some("memory")).unwrap(),
            Path::new("/sys/fs/cgroup/memory/process_api/5cdc")
        );
        assert_eq!(
            own_dir(own, MOUNTS, Some("pids")).unwrap(),
            Path::new("/sys/fs/cgroup/pids")
        );
        assert_eq!(
            own_dir(own, MOUNTS, None).unwrap(),
            Path::new("/sys/fs/cgroup/unified/user.slice")
        );
        assert_eq!(
            own_dir(own, MOUNTS, Some("cpu")),
            None,
            "a read-only mount is no use"
        );
        assert_eq!(own_dir(own, MOUNTS, Some("blkio")), None, "not mounted");
    }
}
