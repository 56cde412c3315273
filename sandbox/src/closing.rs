//! Two ways to end a TCP connection: a half-close (FIN) that still listens,
//! and a reset (RST) that throws everything away.
//!
//! A TCP connection is two one-way streams. `shutdown(Write)` closes only
//! ours: the kernel sends what is still in our send buffer, then a FIN, and
//! the peer's `read` returns 0 (end of stream) once it has read every byte
//! before it. The peer's direction stays open, so the peer can still answer:
//! a request ends with our FIN, and its answer ends with the peer's.
//!
//! ```text
//!   us                          peer
//!   write "question" ─────────►
//!   shutdown(Write)  ── FIN ──►  read ... read = 0 (EOF: the question is whole)
//!   read             ◄────────── write "answer"
//!   read = 0         ◄── FIN ─── close
//! ```
//!
//! `close` after `SO_LINGER` set to 0 seconds is the other end of the scale:
//! no FIN, no waiting, the kernel sends a RST at once and forgets the
//! connection. Bytes still in our send buffer are never sent, bytes the peer
//! sent that we had not read are discarded, and the peer's next `read` or
//! `write` fails with `ConnectionReset`. A server uses it to drop a
//! misbehaving client without keeping its socket in `TIME_WAIT`, or to say
//! loudly "this did not end well".
//!
//! ## What to look for
//! - [`finish_sending`]: `shutdown(Shutdown::Write)`, then reading until
//!   EOF, bounded in time and in bytes: a peer that never closes, or never
//!   stops talking, must not keep us for ever.
//! - [`abort`]: `SO_LINGER` is a `socket2` option (std has `set_linger`
//!   only as unstable); dropping the socket is the `close`.
//! - Experiment: run `cargo test -p sandbox --test exercises exercise_11`
//!   while `tcpdump -i lo -n tcp` watches: `[F.]` (FIN) in the half-close
//!   tests, `[R.]` (RST) in the abort tests.

use std::io::{self, Read};
use std::net::{Shutdown, TcpStream};
use std::time::{Duration, Instant};

use socket2::SockRef;

/// Half-closes `stream` (our FIN, after every byte we wrote), then reads the
/// peer's last words until it closes too (EOF), and returns them.
///
/// Bounded: fails with `TimedOut` if the peer has not closed within
/// `max_wait`, and with `InvalidData` if it sends more than `max_bytes`.
/// `stream` must be blocking (reads wait, up to the time left); it is left
/// with a read timeout, and with nothing more to do but be dropped.
pub fn finish_sending(
    stream: &mut TcpStream,
    max_wait: Duration,
    max_bytes: usize,
) -> io::Result<Vec<u8>> {
    // TODO: exercise 11: send our FIN, then read until the peer's EOF,
    // giving up after `max_wait` or past `max_bytes`.
    // BEGIN SOLUTION exercise 11
    // FIN goes out after the bytes already in the send buffer; reading stays open.
    stream.shutdown(Shutdown::Write)?;
    let deadline = Instant::now() + max_wait;
    let gave_up = || {
        let secs = max_wait.as_secs_f32();
        let problem = format!("the peer did not close its side within {secs}s of our FIN");
        io::Error::new(io::ErrorKind::TimedOut, problem)
    };
    let mut last_words = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(gave_up());
        }
        // SO_RCVTIMEO: this read waits at most the time that is left.
        stream.set_read_timeout(Some(left))?;
        match stream.read(&mut buf) {
            Ok(0) => return Ok(last_words), // the peer's FIN: it has said all
            Ok(n) if last_words.len() + n > max_bytes => {
                let problem = format!("the peer sent more than {max_bytes} bytes after our FIN");
                return Err(io::Error::new(io::ErrorKind::InvalidData, problem));
            }
            Ok(n) => last_words.extend_from_slice(&buf[..n]),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            // A read timeout: WouldBlock on Unix, TimedOut on Windows.
            Err(err) if is_timeout(&err) => return Err(gave_up()),
            Err(err) => return Err(err),
        }
    }
    // STUB: let _ = (stream, max_wait, max_bytes);
    // STUB: todo!("exercise 11: half-close, then read until EOF (sandbox/EXERCISES.md)")
    // END SOLUTION exercise 11
}

/// Ends the connection at once with a RST: `SO_LINGER` with a time of zero,
/// then close. What we had not sent, and what we had not read, is lost, and
/// the peer's next read or write fails with `ConnectionReset`.
pub fn abort(stream: TcpStream) -> io::Result<()> {
    // TODO: exercise 11: make the close send a RST, then close.
    // BEGIN SOLUTION exercise 11
    // "Linger 0 seconds on close": discard the send buffer, send RST.
    SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    drop(stream); // the close(2): with that option, it resets
    Ok(())
    // STUB: let _ = stream;
    // STUB: todo!("exercise 11: SO_LINGER 0, then close (sandbox/EXERCISES.md)")
    // END SOLUTION exercise 11
}

/// Whether `err` is what a read timeout gives: `WouldBlock` on Unix (the
/// kernel's `EAGAIN`), `TimedOut` on Windows.
pub fn is_timeout(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
}
