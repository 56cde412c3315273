//! What both sandbox benchmarks need: a server binary started as a child
//! process, its address from its `listening on` line, its log drained.

use std::ffi::OsStr;
use std::io::{BufRead, BufReader};
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::thread;

/// A server child process, killed when dropped. (Not `plumbing::testing::
/// ServerProcess`: that one keeps every log line for the test to read,
/// which over a benchmark's millions of lines would measure our memory.)
pub struct Server {
    pub child: Child,
    pub addr: SocketAddr,
}

impl Server {
    pub fn start(binary: &Path, args: &[impl AsRef<OsStr>]) -> Result<Server, String> {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .map_err(|err| format!("cannot start {}: {err}", binary.display()))?;
        let mut stdout = BufReader::new(child.stdout.take().ok_or("no stdout")?);
        let mut first = String::new();
        stdout
            .read_line(&mut first)
            .map_err(|err| err.to_string())?;
        // Drain the log for ever, as a console that keeps up would: a server
        // blocked on a full stdout pipe would measure the pipe.
        thread::spawn(move || std::io::copy(&mut stdout, &mut std::io::sink()));
        let addr = first
            .trim()
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .ok_or_else(|| format!("unexpected first line {first:?}"))?;
        Ok(Server { child, addr })
    }

    /// The process id, for reading its memory from /proc.
    #[allow(dead_code)] // used by one benchmark of the two
    pub fn pid(&self) -> u32 {
        self.child.id()
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
