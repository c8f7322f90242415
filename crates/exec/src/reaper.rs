//! Programs die with switchboard, even when it is killed with SIGKILL and has no chance to
//! end them. Two things see to it:
//!
//! - each program gets `PR_SET_PDEATHSIG` (SIGKILL), which the kernel fires when the thread
//!   that forked it ends (set in `limits.rs`; programs are forked from the runtime's worker
//!   threads, which live as long as switchboard serves);
//! - what a program started is killed by the reaper: a small `/bin/sh` started once, in a
//!   process group of its own and adopted by init, that reads the process groups of running programs from a pipe
//!   (`+ <pgid>` when one starts, `- <pgid>` once it is gone). When switchboard ends, however
//!   it ends, the kernel closes the pipe; the reaper reads its end and kills every group still
//!   listed. A program cannot leave its group (the seccomp filter in `limits.rs`), so the
//!   group is the whole tree. Then it removes the run's cgroups (`tree.rs`).

use std::io::Write;
use std::process::{ChildStdin, Command, Stdio};
use std::sync::{Mutex, OnceLock};

use crate::tree::Trees;

/// The reaper's script: keep the list, and at end of input kill every group on it, then
/// remove the run's cgroup directories (its arguments) once their processes are gone.
const SCRIPT: &str = r#"trap '' INT HUP TERM QUIT PIPE
groups=" "
while read -r op id; do
  case "$op" in
    +) groups="$groups$id " ;;
    -) kept=" "; for g in $groups; do [ "$g" = "$id" ] || kept="$kept$g "; done; groups=$kept ;;
  esac
done
for g in $groups; do kill -KILL -- "-$g" 2>/dev/null; done
for d in "$@"; do
  for try in 1 2 3 4 5 6 7 8 9 10; do
    rmdir "$d"/program-* "$d" 2>/dev/null
    [ -d "$d" ] || break
    sleep 0.1
  done
done
"#;

/// The pipe to the reaper, if it could be started.
#[derive(Debug)]
pub(crate) struct Reaper {
    pipe: Mutex<ChildStdin>,
}

impl Reaper {
    /// The reaper, started at first call; `None` (logged once) if it cannot be.
    pub(crate) fn get() -> Option<&'static Reaper> {
        static REAPER: OnceLock<Option<Reaper>> = OnceLock::new();
        REAPER
            .get_or_init(|| match Reaper::start() {
                Ok(reaper) => Some(reaper),
                Err(error) => {
                    tracing::warn!(
                        "exec: cannot start the reaper (/bin/sh: {error}); what a program \
                         starts may outlive switchboard if it is killed with SIGKILL"
                    );
                    None
                }
            })
            .as_ref()
    }

    fn start() -> std::io::Result<Self> {
        use std::os::unix::process::CommandExt;
        // Started in the background by a shell that exits at once, so that init adopts it:
        // it is no child of switchboard's (`switchboard ports` lists those as programs).
        // A background list reads /dev/null unless told otherwise: its input is the pipe,
        // through descriptor 3.
        let mut child = Command::new("/bin/sh")
            .arg("-c")
            .arg(format!("exec 3<&0\n( {SCRIPT} ) <&3 3<&- &\n"))
            .arg("reaper")
            .args(Trees::get().map(Trees::dirs).unwrap_or_default())
            .env_clear()
            .env("PATH", "/usr/bin:/bin")
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            // Out of switchboard's group: a Ctrl-C at the terminal is for switchboard, which
            // then ends its programs itself.
            .process_group(0)
            .spawn()?;
        let pipe = child
            .stdin
            .take()
            .ok_or_else(|| std::io::Error::other("no pipe to the reaper"))?;
        // The starting shell ends as soon as the reaper runs.
        let started = child.wait()?;
        if !started.success() {
            return Err(std::io::Error::other(format!("it ended with {started}")));
        }
        Ok(Self {
            pipe: Mutex::new(pipe),
        })
    }

    /// A program's group started.
    pub(crate) fn watch(&self, group: u32) {
        self.say(b'+', group);
    }

    /// A program's group is gone (killed, its leader reaped).
    pub(crate) fn forget(&self, group: u32) {
        self.say(b'-', group);
    }

    fn say(&self, op: u8, group: u32) {
        let line = format!("{} {group}\n", op as char);
        let mut pipe = self
            .pipe
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        // A line is far below the pipe's buffer, and the reaper reads at once; if it has
        // died there is nobody to tell.
        let _ = pipe.write_all(line.as_bytes());
    }
}
