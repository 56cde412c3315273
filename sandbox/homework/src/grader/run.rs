//! Running student code with least privilege and a time limit.
//!
//! - **Environment**: every command starts from an empty environment plus a
//!   short allow-list (`PATH`, a scratch `HOME` and `TMPDIR`, and the
//!   toolchain's `CARGO_HOME`/`RUSTUP_HOME`/`RUSTUP_TOOLCHAIN` for builds),
//!   in a scratch working folder, never the instructor's workspace.
//! - **Confinement** (Linux, where `unshare` works): new network, mount and
//!   PID namespaces. Only loopback exists (the tests need nothing else), the
//!   instructor's workspace (and, for tests, home folder) is covered by an
//!   empty read-only folder, `/proc` shows only the namespace's processes
//!   (so no `/proc/PID/cwd` leads back to the grader's folder), and every
//!   process left when the test ends is killed with the namespace. Run as root, tests also drop to the user
//!   `nobody` (`setpriv`), so they cannot write the shared build folder; run
//!   as another user, a user namespace makes the rest possible without root.
//!   Elsewhere (macOS, Windows, a Linux without user namespaces) grading
//!   warns and runs unconfined.
//! - **Time**: each command runs in a process group of its own (Unix) and
//!   the whole group is killed when its time is up or when it ends, so a
//!   grandchild cannot keep it alive. Output goes to a file, not a pipe, so
//!   a process that keeps the output open cannot stall the grader. On
//!   Windows only the direct child is killed.

use std::fs::{self, File};
use std::io::{Read as _, Seek as _, SeekFrom};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// How a bounded command ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// It exited by itself; `true` if with success.
    Exited(bool),
    /// It ran past its limit and was killed (with its whole group).
    TimedOut,
    /// It could not be started.
    NotStarted(String),
}

/// Runs `command` at most `limit`, its output (both streams) into `log`.
pub fn run_bounded(command: &mut Command, limit: Duration, log: &Path) -> Ending {
    let (out, err) = match File::create(log).and_then(|file| Ok((file.try_clone()?, file))) {
        Ok(files) => files,
        Err(err) => return Ending::NotStarted(format!("cannot write {}: {err}", log.display())),
    };
    command.stdin(Stdio::null()).stdout(out).stderr(err);
    #[cfg(unix)]
    std::os::unix::process::CommandExt::process_group(command, 0);
    let mut child = match command.spawn() {
        Ok(child) => child,
        Err(err) => return Ending::NotStarted(err.to_string()),
    };
    let deadline = Instant::now() + limit;
    let ending = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Ending::Exited(status.success()),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(10)),
            Ok(None) => break Ending::TimedOut,
            Err(err) => break Ending::NotStarted(err.to_string()),
        }
    };
    // Whatever the ending, nothing it started may outlive it.
    kill_group(&mut child);
    ending
}

/// Kills the child's whole process group (Unix), or the child (elsewhere).
fn kill_group(child: &mut std::process::Child) {
    #[cfg(unix)]
    {
        // process_group(0) made the child the leader of a group with its id.
        let group = format!("-{}", child.id());
        let _ = Command::new("kill")
            .args(["-KILL", "--", &group])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status();
    }
    let _ = child.kill();
    let _ = child.wait();
}

/// The last `max` bytes of a log, as text.
pub fn log_tail(log: &Path, max: u64) -> String {
    let Ok(mut file) = File::open(log) else {
        return String::new();
    };
    let length = file.metadata().map_or(0, |meta| meta.len());
    let _ = file.seek(SeekFrom::Start(length.saturating_sub(max)));
    let mut bytes = Vec::new();
    let _ = file.take(max).read_to_end(&mut bytes);
    String::from_utf8_lossy(&bytes).into_owned()
}

/// How student code is confined on this system.
#[derive(Debug, Clone)]
pub struct Confinement {
    kind: Kind,
    /// Folders covered by an empty one inside the namespaces.
    hidden: Vec<PathBuf>,
    /// Hidden from tests only (a build needs the toolchain under it).
    hidden_from_tests: Vec<PathBuf>,
    /// Start commands through `setpriv --pdeathsig KILL` (Linux), so that
    /// they die with the grader, even on Ctrl-C: their own process group
    /// does not get the terminal's signal.
    die_with_grader: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Kind {
    /// No sandbox: the reason, for the warning.
    None(String),
    /// Linux namespaces; `as_root` also drops tests to `nobody`.
    Namespaces { as_root: bool },
}

/// The user tests run as when grading as root.
pub const NOBODY: u32 = 65534;

/// Sets up the network namespace's loopback, covers the hidden folders,
/// then runs the command. `$1` is how many folders follow; `--` ends them.
const CONFINE_SCRIPT: &str = r#"ip link set lo up || exit 125
n=$1; shift
while [ "$n" -gt 0 ]; do
  mount -t tmpfs -o size=64k,mode=0555 hidden "$1" || exit 125
  shift; n=$((n-1))
done
shift
exec "$@""#;

impl Confinement {
    /// Finds out whether namespaces work here, by confining `true`.
    /// `hidden` are covered for every command; `hidden_from_tests` for tests.
    pub fn detect(hidden: Vec<PathBuf>, hidden_from_tests: Vec<PathBuf>, scratch: &Path) -> Self {
        let die_with_grader = cfg!(target_os = "linux")
            && Command::new("setpriv")
                .args(["--pdeathsig", "KILL", "--", "true"])
                .status()
                .is_ok_and(|status| status.success());
        let mut confinement = Confinement {
            kind: Kind::None(String::new()),
            hidden,
            hidden_from_tests,
            die_with_grader,
        };
        confinement.kind = if !cfg!(target_os = "linux") {
            Kind::None(format!("no sandbox on {}", std::env::consts::OS))
        } else {
            let as_root = is_root();
            confinement.kind = Kind::Namespaces { as_root };
            let mut probe = confinement.command(Path::new("true"), &[], true);
            let log = scratch.join("confinement-probe.log");
            match run_bounded(&mut probe, Duration::from_secs(20), &log) {
                Ending::Exited(true) => Kind::Namespaces { as_root },
                other => Kind::None(format!(
                    "`unshare` (network, mount and PID namespaces{}) failed: {other:?} {}",
                    if as_root {
                        ", then setpriv"
                    } else {
                        ", as a user namespace"
                    },
                    log_tail(&log, 300).trim()
                )),
            }
        };
        confinement
    }

    /// No confinement at all (for tests of the grader itself).
    pub fn none(why: &str) -> Self {
        Confinement {
            kind: Kind::None(why.to_string()),
            hidden: Vec::new(),
            hidden_from_tests: Vec::new(),
            die_with_grader: false,
        }
    }

    /// One line for the instructor: how student code runs here.
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::None(why) => format!(
                "UNCONFINED ({why}): student code runs as you, without a sandbox; grade in a \
                 container or an account that can reach nothing you care about"
            ),
            Kind::Namespaces { as_root: true } => "confined: network, mount and PID namespaces; \
                 your workspace and home hidden; tests run as nobody"
                .to_string(),
            Kind::Namespaces { as_root: false } => "confined: user, network, mount and PID \
                 namespaces; your workspace and home hidden"
                .to_string(),
        }
    }

    pub fn is_confined(&self) -> bool {
        matches!(self.kind, Kind::Namespaces { .. })
    }

    /// Whether tests run as [`NOBODY`] (their folders must be theirs).
    pub fn runs_tests_as_nobody(&self) -> bool {
        self.kind == Kind::Namespaces { as_root: true }
    }

    /// `program args`, confined; `test` also hides the home folder and, as
    /// root, drops to `nobody`. The environment is still the caller's to
    /// clear (see [`clean_env`]).
    pub fn command(&self, program: &Path, args: &[&str], test: bool) -> Command {
        let mut command = match self.die_with_grader {
            true => {
                let mut setpriv = Command::new("setpriv");
                setpriv.args(["--pdeathsig", "KILL", "--"]);
                setpriv
            }
            false => Command::new(program),
        };
        let Kind::Namespaces { as_root } = self.kind else {
            if self.die_with_grader {
                command.arg(program);
            }
            command.args(args);
            return command;
        };
        if self.die_with_grader {
            command.arg("unshare");
        } else {
            command = Command::new("unshare");
        }
        if !as_root {
            command.args(["--user", "--map-root-user"]);
        }
        command.args([
            "--net",
            "--mount",
            "--pid",
            "--fork",
            "--kill-child",
            "--mount-proc",
            "--",
        ]);
        command.args(["/bin/sh", "-c", CONFINE_SCRIPT, "confine"]);
        let mut hidden: Vec<&PathBuf> = self.hidden.iter().collect();
        if test {
            hidden.extend(&self.hidden_from_tests);
        }
        let hidden: Vec<&PathBuf> = hidden.into_iter().filter(|path| path.is_dir()).collect();
        command.arg(hidden.len().to_string()).args(hidden).arg("--");
        if test && as_root {
            let user = format!("--reuid={NOBODY}");
            let group = format!("--regid={NOBODY}");
            command.args([
                "setpriv",
                &user,
                &group,
                "--clear-groups",
                "--no-new-privs",
                "--",
            ]);
        }
        command.arg(program).args(args);
        command
    }
}

/// Whether we run as root (Unix), asked of `id -u` to stay free of `unsafe`.
fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|output| String::from_utf8_lossy(&output.stdout).trim() == "0")
}

/// Clears `command`'s environment down to what a build or test needs.
pub fn clean_env(command: &mut Command, home: &Path, build: bool) {
    let path = std::env::var_os("PATH").unwrap_or_default();
    command
        .env_clear()
        .env("PATH", path)
        .env("HOME", home)
        .env("TMPDIR", home);
    // Windows programs need these to start at all (and a temp folder).
    #[cfg(windows)]
    {
        for name in ["SYSTEMROOT", "PATHEXT", "COMSPEC"] {
            if let Some(value) = std::env::var_os(name) {
                command.env(name, value);
            }
        }
        command
            .env("USERPROFILE", home)
            .env("TEMP", home)
            .env("TMP", home);
    }
    if build {
        let real_home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_default();
        let cargo_home =
            std::env::var_os("CARGO_HOME").map_or_else(|| real_home.join(".cargo"), PathBuf::from);
        let rustup_home = std::env::var_os("RUSTUP_HOME")
            .map_or_else(|| real_home.join(".rustup"), PathBuf::from);
        command
            .env("CARGO_HOME", cargo_home)
            .env("RUSTUP_HOME", rustup_home);
        if let Some(toolchain) = std::env::var_os("RUSTUP_TOOLCHAIN") {
            command.env("RUSTUP_TOOLCHAIN", toolchain);
        }
    }
}

/// Makes `folder` (and what is in it) belong to [`NOBODY`], so a test
/// dropped to that user can write there.
pub fn give_to_nobody(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        std::os::unix::fs::chown(folder, Some(NOBODY), Some(NOBODY))?;
        for entry in fs::read_dir(folder)? {
            std::os::unix::fs::chown(entry?.path(), Some(NOBODY), Some(NOBODY))?;
        }
    }
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

#[cfg(all(test, unix))]
mod tests {
    use super::*;

    fn scratch(name: &str) -> PathBuf {
        let folder =
            std::env::temp_dir().join(format!("homework-run-{name}-{}", std::process::id()));
        fs::create_dir_all(&folder).unwrap();
        folder
    }

    #[test]
    fn a_hung_command_and_its_grandchildren_are_killed_in_time() {
        let folder = scratch("hung");
        let log = folder.join("log");
        // A grandchild that keeps the output open, and a parent that sleeps.
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & echo started; sleep 300"]);
        let started = Instant::now();
        assert_eq!(
            run_bounded(&mut command, Duration::from_millis(500), &log),
            Ending::TimedOut
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        assert_eq!(log_tail(&log, 100).trim(), "started");
        fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn a_grandchild_holding_the_output_does_not_hold_the_grader() {
        let folder = scratch("held");
        let log = folder.join("log");
        let mut command = Command::new("sh");
        command.args(["-c", "sleep 300 & exit 0"]);
        let started = Instant::now();
        assert_eq!(
            run_bounded(&mut command, Duration::from_secs(60), &log),
            Ending::Exited(true)
        );
        assert!(
            started.elapsed() < Duration::from_secs(30),
            "{:?}",
            started.elapsed()
        );
        fs::remove_dir_all(folder).unwrap();
    }

    #[test]
    fn the_environment_is_only_the_allow_list() {
        let folder = scratch("env");
        let log = folder.join("log");
        let mut command = Command::new("env");
        clean_env(&mut command, &folder, false);
        assert_eq!(
            run_bounded(&mut command, Duration::from_secs(20), &log),
            Ending::Exited(true)
        );
        let mut names: Vec<String> = log_tail(&log, 10_000)
            .lines()
            .filter_map(|line| Some(line.split_once('=')?.0.to_string()))
            .collect();
        names.sort();
        assert_eq!(names, ["HOME", "PATH", "TMPDIR"]);
        fs::remove_dir_all(folder).unwrap();
    }
}
