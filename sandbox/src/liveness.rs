//! Is the peer still there? A write timeout for a peer that stops reading,
//! and TCP keepalive for a peer that vanishes.
//!
//! A blocking `write` returns once the kernel has copied the bytes into the
//! socket's send buffer. If the peer stops reading, its receive window
//! closes, our send buffer fills, and the next `write` waits, for ever.
//! `SO_SNDTIMEO` (std's `set_write_timeout`) bounds that wait: a `write` that
//! could not copy a single byte for that long fails, with `WouldBlock` on
//! Unix (`EAGAIN`, as a non-blocking socket would say) and `TimedOut` on
//! Windows. A write that copied *some* bytes before the time ran out returns
//! that short count instead.
//!
//! A peer that vanishes (its machine lost power, a cable was pulled, a NAT
//! forgot the connection) sends nothing at all, not even a FIN or a RST. A
//! connection where neither side writes then looks open for ever. TCP
//! *keepalive* (`SO_KEEPALIVE`) makes the kernel probe a silent connection:
//! after `time` without traffic it sends an empty segment that the peer's
//! kernel must acknowledge, every `interval`, and after `retries` probes
//! without an answer it declares the connection dead: the next `read` or
//! `write` fails (`TimedOut`). The three numbers are `TCP_KEEPIDLE`,
//! `TCP_KEEPINTVL` and `TCP_KEEPCNT`; std has none of them, `socket2` has
//! all (each where the system has it).
//!
//! ```text
//!   us                              peer (gone)
//!   ... no traffic for `time` ...
//!   probe ───────────────────────►  x
//!   probe (after `interval`) ────►  x
//!   ... `retries` probes unanswered: read/write fail with TimedOut
//! ```
//!
//! ## What to look for
//! - [`configure`]: `set_write_timeout`, and `socket2`'s `SockRef` lending
//!   `set_tcp_keepalive` to a std `TcpStream`; the `cfg` for systems that
//!   cannot set the interval or the count.
//! - [`send`]: the write timeout, turned into an error that says what
//!   happened and which option fired, instead of a bare "would block".

use std::fmt;
use std::io::{self, Write};
use std::net::TcpStream;
use std::time::Duration;

use socket2::{SockRef, TcpKeepalive};

/// How long we wait for a stalled peer, and how the kernel probes a silent one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Liveness {
    /// `SO_SNDTIMEO`: how long one `write` may wait for room in the send buffer.
    pub write_timeout: Duration,
    /// `TCP_KEEPIDLE`: silence before the first keepalive probe (whole seconds).
    pub keepalive_time: Duration,
    /// `TCP_KEEPINTVL`: between two probes (whole seconds), where the system has it.
    pub keepalive_interval: Duration,
    /// `TCP_KEEPCNT`: probes unanswered before the connection is declared dead,
    /// where the system has it.
    pub keepalive_retries: u32,
}

impl Default for Liveness {
    /// A peer that reads nothing for 10 s is stalled; a silent connection is
    /// probed after 60 s, then every 10 s, and dead after 5 probes: a vanished
    /// peer is noticed within 2 minutes instead of the system default of
    /// about 2 hours (Linux: 7200 s of silence before the first probe).
    fn default() -> Liveness {
        Liveness {
            write_timeout: Duration::from_secs(10),
            keepalive_time: Duration::from_secs(60),
            keepalive_interval: Duration::from_secs(10),
            keepalive_retries: 5,
        }
    }
}

/// A [`send`] that could not finish.
#[derive(Debug)]
pub enum SendError {
    /// The peer stopped reading: no byte could be written for the write
    /// timeout. `sent` bytes had been written before.
    Stalled { after: Duration, sent: usize },
    /// Any other failure (a reset, a keepalive that gave up).
    Io(io::Error),
}

impl fmt::Display for SendError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SendError::Stalled { after, sent } => write!(
                f,
                "the peer stopped reading: nothing could be sent for {}s after {sent} bytes \
                 (the write timeout, SO_SNDTIMEO, fired)",
                after.as_secs_f32()
            ),
            SendError::Io(err) => write!(f, "cannot send: {err}"),
        }
    }
}

impl std::error::Error for SendError {}

/// Sets the write timeout and TCP keepalive of `stream`, as `settings` says.
pub fn configure(stream: &TcpStream, settings: &Liveness) -> io::Result<()> {
    // TODO: exercise 12: set the write timeout, then turn keepalive on with
    // its time, interval and retries (the last two only where they exist).
    // BEGIN SOLUTION exercise 12
    stream.set_write_timeout(Some(settings.write_timeout))?;
    let keepalive = TcpKeepalive::new().with_time(settings.keepalive_time);
    // Not every system lets a program choose the interval and the count:
    // where it cannot, the system's own values apply.
    #[cfg(any(
        target_os = "linux",
        target_os = "android",
        target_os = "macos",
        target_os = "ios",
        target_os = "freebsd",
        target_os = "netbsd",
        windows
    ))]
    let keepalive = keepalive
        .with_interval(settings.keepalive_interval)
        .with_retries(settings.keepalive_retries);
    // SockRef borrows std's socket to set what std cannot: SO_KEEPALIVE on,
    // then TCP_KEEPIDLE, TCP_KEEPINTVL, TCP_KEEPCNT.
    SockRef::from(stream).set_tcp_keepalive(&keepalive)
    // STUB: let _ = (stream, settings);
    // STUB: todo!("exercise 12: write timeout and keepalive (sandbox/EXERCISES.md)")
    // END SOLUTION exercise 12
}

/// Writes all of `bytes` to `stream` (configured by [`configure`]). A peer
/// that stops reading makes a `write` wait out the write timeout: that is
/// [`SendError::Stalled`], with how many bytes had gone.
pub fn send(stream: &mut TcpStream, bytes: &[u8]) -> Result<(), SendError> {
    // TODO: exercise 12: write everything; a write timeout becomes `Stalled`.
    // BEGIN SOLUTION exercise 12
    let mut sent = 0;
    while sent < bytes.len() {
        match stream.write(&bytes[sent..]) {
            Ok(0) => return Err(SendError::Io(io::ErrorKind::WriteZero.into())),
            // Maybe short: the timeout may fire after part of it was copied.
            Ok(n) => sent += n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if is_write_timeout(&err) => {
                let after = stream.write_timeout().ok().flatten().unwrap_or_default();
                return Err(SendError::Stalled { after, sent });
            }
            Err(err) => return Err(SendError::Io(err)),
        }
    }
    Ok(())
    // STUB: let _ = (stream, bytes);
    // STUB: todo!("exercise 12: a write timeout becomes Stalled (sandbox/EXERCISES.md)")
    // END SOLUTION exercise 12
}

/// Whether `err` is what a write timeout (`SO_SNDTIMEO`) gives: `WouldBlock`
/// on Unix (`EAGAIN`), `TimedOut` on Windows (`WSAETIMEDOUT`). Not both on
/// both: on Unix, `TimedOut` (`ETIMEDOUT`) means something else, that
/// keepalive probes went unanswered and the connection is dead.
pub fn is_write_timeout(err: &io::Error) -> bool {
    if cfg!(windows) {
        err.kind() == io::ErrorKind::TimedOut
    } else {
        err.kind() == io::ErrorKind::WouldBlock
    }
}
