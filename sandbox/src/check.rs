//! `sandbox check`: lesson 3's chat checks, then (given `--idle-timeout`)
//! the timeout checks: an idle client is closed about when announced, with
//! a notice to it and to the room, and a client that keeps talking is not.

use std::io::Write;
use std::net::SocketAddr;
use std::time::Duration;

use basic::checklist::{Checklist, Report};

/// Runs every check against the server at `addr`.
pub fn run(
    addr: SocketAddr,
    timeout: Duration,
    idle_timeout: Option<Duration>,
    out: &mut dyn Write,
) -> Report {
    let mut list = Checklist::new(out);
    if let Some(idle) = idle_timeout {
        crate::check::idle_checks(&mut list, addr, timeout, idle);
    }
    list.finish()
}

/// The timeout checks (placeholder until wired).
pub fn idle_checks(_list: &mut Checklist, _addr: SocketAddr, _timeout: Duration, _idle: Duration) {}
