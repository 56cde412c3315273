//! The harness behind every lesson's `check` subcommand: a black-box
//! conformance test of whatever server listens at an address, in any
//! language.
//!
//! It prints one line per check, `ok NAME` or `FAIL NAME` followed by what was
//! sent, what was expected and what arrived, and a last line `N passed, M
//! failed`. Every wait is bounded, so a silent server fails a check instead
//! of hanging it.

use std::io::{self, Read as _, Write};
use std::net::{Shutdown, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use crate::trace::preview;

/// How long `check` waits for any one reply unless told otherwise.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

/// Why a check failed, in the words a student needs to find the bug.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Failure {
    pub details: Vec<(&'static str, String)>,
}

impl Failure {
    /// The usual failure: what we sent, what a correct server answers, and
    /// what this one did.
    pub fn new(
        sent: impl Into<String>,
        expected: impl Into<String>,
        got: impl Into<String>,
    ) -> Self {
        Failure {
            details: vec![
                ("sent", sent.into()),
                ("expected", expected.into()),
                ("got", got.into()),
            ],
        }
    }

    /// A failure that is best said in one sentence.
    pub fn because(reason: impl Into<String>) -> Self {
        Failure {
            details: vec![("why", reason.into())],
        }
    }
}

/// What a finished checklist found, by check name.
#[derive(Debug, Default)]
pub struct Report {
    pub passed: Vec<String>,
    pub failed: Vec<String>,
}

impl Report {
    pub fn all_passed(&self) -> bool {
        self.failed.is_empty() && !self.passed.is_empty()
    }
}

/// Runs checks one by one and prints the result of each as it finishes.
pub struct Checklist<'a> {
    out: &'a mut dyn Write,
    report: Report,
}

impl<'a> Checklist<'a> {
    pub fn new(out: &'a mut dyn Write) -> Self {
        Checklist {
            out,
            report: Report::default(),
        }
    }

    /// Runs one check and prints its line. Returns whether it passed.
    pub fn check(&mut self, name: &str, run: impl FnOnce() -> Result<(), Failure>) -> bool {
        match run() {
            Ok(()) => {
                let _ = writeln!(self.out, "ok {name}");
                self.report.passed.push(name.to_string());
                true
            }
            Err(failure) => {
                self.fail(name, &failure);
                false
            }
        }
    }

    /// Records a check that could not run because an earlier one failed.
    pub fn not_run(&mut self, name: &str, why: &str) {
        self.fail(name, &Failure::because(format!("not run: {why}")));
    }

    fn fail(&mut self, name: &str, failure: &Failure) {
        let _ = writeln!(self.out, "FAIL {name}");
        for (label, text) in &failure.details {
            let _ = writeln!(self.out, "     {:<9} {text}", format!("{label}:"));
        }
        self.report.failed.push(name.to_string());
    }

    /// Prints the closing `N passed, M failed` line and returns the report.
    pub fn finish(self) -> Report {
        let (passed, failed) = (self.report.passed.len(), self.report.failed.len());
        let _ = writeln!(self.out, "{passed} passed, {failed} failed");
        let _ = self.out.flush();
        self.report
    }
}

/// How many bytes of an answer a failure line shows before it cuts.
pub const SHOWN_BYTES: usize = 200;

/// Bytes as a check failure shows them: escaped, cut after [`SHOWN_BYTES`],
/// with their length.
pub fn show(bytes: &[u8]) -> String {
    format!("{} ({} bytes)", preview(bytes, SHOWN_BYTES), bytes.len())
}

/// Where `got` first departs from `expected`, shown around that byte, for
/// a failure where the first 60 bytes of both look the same. `None` when
/// one is a prefix of the other (then their lengths tell the story).
pub fn show_difference(expected: &[u8], got: &[u8]) -> Option<String> {
    let at = first_difference(got, expected)?;
    let from = at.saturating_sub(10);
    let window = |bytes: &[u8]| preview(&bytes[from..bytes.len().min(at + 20)], 30);
    Some(format!(
        "first difference at byte {at}: expected {} there, got {}",
        window(expected),
        window(got)
    ))
}

/// Sends `sent` (in pieces of `piece_len` bytes, to exercise the server's
/// reassembly) and expects exactly `expected` back within `timeout`.
///
/// Writing happens on a second thread while this one reads: a server that
/// echoes as it reads would otherwise fill our receive buffer while we are
/// still writing, and both sides would wait for ever.
pub fn exchange(
    stream: &TcpStream,
    sent: &[u8],
    piece_len: usize,
    expected: &[u8],
    timeout: Duration,
) -> Result<(), Failure> {
    let writer = stream
        .try_clone()
        .map_err(|err| Failure::because(format!("cannot clone socket: {err}")))?;
    let (write_result, got) = thread::scope(|scope| {
        let writing = scope.spawn(|| write_in_pieces(writer, sent, piece_len));
        let got = read_up_to(stream, expected, timeout);
        (writing.join(), got)
    });
    let got = got.map_err(|(got, what)| {
        Failure::new(
            show(sent),
            show(expected),
            format!("{}, {what}", show(&got)),
        )
    })?;
    if let Ok(Err(err)) = write_result {
        return Err(Failure::new(
            show(sent),
            show(expected),
            format!("{}; sending failed: {err}", show(&got)),
        ));
    }
    Ok(())
}

fn write_in_pieces(mut stream: TcpStream, bytes: &[u8], piece_len: usize) -> io::Result<()> {
    stream.set_nodelay(true)?; // each piece leaves in its own segment
    for piece in bytes.chunks(piece_len.max(1)) {
        stream.write_all(piece)?;
    }
    Ok(())
}

/// Reads until `expected.len()` bytes arrived, or they stop matching, or the
/// time is up. On failure, returns what did arrive and what happened next.
fn read_up_to(
    mut stream: &TcpStream,
    expected: &[u8],
    timeout: Duration,
) -> Result<Vec<u8>, (Vec<u8>, String)> {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::with_capacity(expected.len());
    let mut buf = [0u8; 16 * 1024];
    while got.len() < expected.len() {
        let Some(left) = deadline
            .checked_duration_since(Instant::now())
            .filter(|d| !d.is_zero())
        else {
            return Err((
                got,
                format!("then nothing more for {}s", timeout.as_secs_f32()),
            ));
        };
        let _ = stream.set_read_timeout(Some(left));
        let want = (expected.len() - got.len()).min(buf.len());
        match stream.read(&mut buf[..want]) {
            Ok(0) => return Err((got, "then the server closed the connection".into())),
            Ok(n) => {
                // Compare only the new bytes: checking all of `got` after every
                // read would make a 1 MiB echo quadratic.
                let start = got.len();
                got.extend_from_slice(&buf[..n]);
                if let Some(at) = first_difference(&got[start..], &expected[start..]) {
                    let at = start + at;
                    // Show the whole answer, not just the part as long as
                    // the expected one: "Hello Good morning", not "Hello Good mor".
                    read_what_follows(stream, &mut got);
                    return Err((
                        got,
                        format!("which differs from the expected bytes at byte {at}"),
                    ));
                }
            }
            // Timed out or interrupted: the deadline check above decides.
            Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err((got, format!("then {err}"))),
        }
    }
    Ok(got)
}

/// How much more of a wrong answer a failure shows, at most.
const MORE_TO_SHOW: usize = 4096;
/// How long a wrong answer may pause before the rest of it is not waited for.
const PAUSE_IN_AN_ANSWER: Duration = Duration::from_millis(200);

/// After a wrong answer, reads what the server sends right after it
/// (bounded in bytes and time), so the failure shows the answer whole.
fn read_what_follows(mut stream: &TcpStream, got: &mut Vec<u8>) {
    let _ = stream.set_read_timeout(Some(PAUSE_IN_AN_ANSWER));
    let mut buf = [0u8; 1024];
    let limit = got.len() + MORE_TO_SHOW;
    while got.len() < limit {
        match stream.read(&mut buf) {
            Ok(n) if n > 0 => got.extend_from_slice(&buf[..n.min(limit - got.len())]),
            _ => break,
        }
    }
}

/// Expects exactly `expected` to arrive within `timeout`; `sent` says, for
/// a failure, what provoked it.
pub fn expect_reply(
    stream: &TcpStream,
    sent: &str,
    expected: &[u8],
    timeout: Duration,
) -> Result<(), Failure> {
    match read_up_to(stream, expected, timeout) {
        Ok(_) => Ok(()),
        Err((got, what)) => Err(Failure::new(
            sent,
            show(expected),
            format!("{}, {what}", show(&got)),
        )),
    }
}

/// Expects `stream` to stay silent for `window`: used to show that a server
/// is *not* answering someone yet.
pub fn expect_silence(mut stream: &TcpStream, window: Duration) -> Result<(), Failure> {
    let _ = stream.set_read_timeout(Some(window));
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Err(err) if is_timeout(&err) => Ok(()),
        Ok(0) => Err(Failure::because(
            "the server closed this connection instead of letting it wait",
        )),
        Ok(n) => Err(Failure::because(format!(
            "got {} while another client was being served",
            show(&buf[..n])
        ))),
        Err(err) => Err(Failure::because(format!("the connection failed: {err}"))),
    }
}

/// Expects the server to close the connection (read returns 0) within `timeout`.
pub fn expect_close(mut stream: &TcpStream, timeout: Duration) -> Result<(), Failure> {
    let _ = stream.set_read_timeout(Some(timeout));
    let mut buf = [0u8; 1024];
    match stream.read(&mut buf) {
        Ok(0) => Ok(()),
        // A reset also ends the connection; we accept it as a close.
        Err(err) if err.kind() == io::ErrorKind::ConnectionReset => Ok(()),
        Ok(n) => Err(Failure::new(
            "",
            "the connection closed",
            format!("more bytes: {}", show(&buf[..n])),
        )),
        Err(err) if is_timeout(&err) => Err(Failure::new(
            "",
            "the connection closed",
            format!("still open after {}s", timeout.as_secs_f32()),
        )),
        Err(err) => Err(Failure::because(format!("the connection failed: {err}"))),
    }
}

/// Half-closes our side: the server reads EOF but can still write to us.
pub fn half_close(stream: &TcpStream) -> Result<(), Failure> {
    stream
        .shutdown(Shutdown::Write)
        .map_err(|err| Failure::because(format!("shutdown(Write) failed: {err}")))
}

/// A read timeout is `WouldBlock` on Unix and `TimedOut` on Windows.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}

fn first_difference(got: &[u8], expected: &[u8]) -> Option<usize> {
    got.iter().zip(expected).position(|(a, b)| a != b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_difference_past_the_preview_is_shown_where_it_is() {
        let expected = [b"12".as_slice(), &[b' '; 126]].concat();
        let got = [b"12".as_slice(), &[b' '; 62], b"\0"].concat();
        let spaces = |n| " ".repeat(n);
        assert_eq!(
            show_difference(&expected, &got).unwrap(),
            format!(
                r#"first difference at byte 64: expected "{}" there, got "{}\0""#,
                spaces(30),
                spaces(10)
            )
        );
    }

    #[test]
    fn a_prefix_is_no_difference() {
        assert_eq!(show_difference(b"abc", b"ab"), None);
    }
}
