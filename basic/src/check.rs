//! `basic check`: is the server at this address a correct echo server?
//!
//! All checks share one connection, because the lesson's server serves one
//! client and exits. They run in order; once one fails, the connection is out
//! of step (bytes may still be in flight), so the rest are reported as not run.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use plumbing::checklist::{self, Checklist, Failure, Report, exchange};

/// One echo check: a name, and what it does on the shared connection.
pub type EchoCheck = (
    &'static str,
    fn(&TcpStream, Duration) -> Result<(), Failure>,
);

/// The echo checks, in the order they run.
pub const ECHO_CHECKS: &[EchoCheck] = &[
    ("echo of a text line", |s, t| echo(s, b"hello, socket\n", t)),
    ("echo of an empty line", |s, t| echo(s, b"\n", t)),
    ("echo of three lines in one write", |s, t| {
        echo(s, b"one\ntwo\nthree\n", t)
    }),
    ("echo of non-UTF-8 bytes (all 256 byte values)", |s, t| {
        echo(s, &all_byte_values(), t)
    }),
    (
        "echo of a line written one byte at a time",
        echo_in_tiny_pieces,
    ),
    ("echo of 1 MiB", |s, t| echo(s, &one_mebibyte(), t)),
    (
        "echo still arrives after the client half-closes",
        echo_after_half_close,
    ),
    (
        "server closes after the client half-closes",
        checklist::expect_close,
    ),
];

/// Runs every echo check against the server at the first of `addrs` that
/// accepts a connection (a host name may resolve to several).
pub fn run(addrs: &[SocketAddr], timeout: Duration, out: &mut dyn Write) -> Report {
    let mut list = Checklist::new(out);
    run_echo_checks(&mut list, addrs, timeout);
    list.finish()
}

/// Connects once, to the first of `addrs` that accepts, and runs
/// [`ECHO_CHECKS`] over that connection. Returns the address that answered.
///
/// No connection is spent before the checks: the lesson's server serves one
/// client, so a probe would use it up and every check after it would fail
/// for the wrong reason.
pub fn run_echo_checks(
    list: &mut Checklist,
    addrs: &[SocketAddr],
    timeout: Duration,
) -> Option<SocketAddr> {
    let mut stream = None;
    let mut answered = None;
    list.check(&format!("connect to {}", list_of(addrs)), || {
        let (connected, addr) =
            crate::net::connect_first_within(addrs, timeout).map_err(|err| {
                Failure::because(format!(
                    "cannot connect: {}",
                    plumbing::errors::describe_io(&err)
                ))
            })?;
        stream = Some(connected);
        answered = Some(addr);
        Ok(())
    });
    let mut broken = stream.is_none().then(|| "no connection".to_string());
    for (name, run) in ECHO_CHECKS {
        match (&broken, &stream) {
            (None, Some(stream)) => {
                if !list.check(name, || run(stream, timeout)) {
                    broken = Some(format!(
                        "the connection is out of step after {name:?} failed"
                    ));
                }
            }
            (why, _) => list.not_run(name, why.as_deref().unwrap_or("no connection")),
        }
    }
    answered
}

/// `127.0.0.1:5000`, or `[::1]:5000 or 127.0.0.1:5000` for a name that
/// resolved to both.
fn list_of(addrs: &[SocketAddr]) -> String {
    let addrs: Vec<String> = addrs.iter().map(ToString::to_string).collect();
    addrs.join(" or ")
}

fn echo(stream: &TcpStream, bytes: &[u8], timeout: Duration) -> Result<(), Failure> {
    exchange(stream, bytes, usize::MAX, bytes, timeout)
}

fn echo_in_tiny_pieces(stream: &TcpStream, timeout: Duration) -> Result<(), Failure> {
    let line = b"written one byte at a time\n";
    exchange(stream, line, 1, line, timeout)
}

fn echo_after_half_close(stream: &TcpStream, timeout: Duration) -> Result<(), Failure> {
    let line = b"last words\n";
    // Write, then at once close our sending side: the echo is still owed.
    let mut writer = stream;
    writer
        .write_all(line)
        .map_err(|err| Failure::because(format!("sending failed: {err}")))?;
    checklist::half_close(stream)?;
    let sent = format!("{}, then shutdown(Write)", checklist::show(line));
    checklist::expect_reply(stream, &sent, line, timeout)
}

fn all_byte_values() -> Vec<u8> {
    (0..=255u8).chain([b'\n']).collect()
}

fn one_mebibyte() -> Vec<u8> {
    // A repeating pattern, so that a lost or reordered chunk shows up as a
    // difference instead of passing unnoticed.
    (0..1024 * 1024).map(|i| b'a' + (i % 26) as u8).collect()
}
