//! A send queue on a non-blocking socket: partial writes, and waiting for
//! writability.
//!
//! On a blocking socket, `write_all` hides a truth that a non-blocking socket
//! shows: `write` copies bytes into the kernel's *send buffer*, and only as
//! many as fit. The kernel sends them when the peer's receive window allows,
//! and frees the room as the peer acknowledges them. So a non-blocking
//! `write(buf)` returns one of three things:
//!
//! ```text
//! Ok(n == buf.len())   all taken
//! Ok(n <  buf.len())   a *short write*: buf[n..] is still ours to send
//! Err(WouldBlock)      no room at all: the peer reads slower than we write
//! ```
//!
//! A program that must not block (one thread serving many sockets) keeps
//! what the kernel did not take in a queue of its own, asks the readiness API
//! (`poll`, `epoll`, `kqueue`: here `mio`) to say when the socket is
//! *writable* again (room in the send buffer), and then writes the rest.
//!
//! ```text
//!  queue(bytes) ─► [ SendQueue ] ── write_to ──► kernel send buffer ──► peer
//!                        ▲                │
//!                        │   WouldBlock: Flush::WantsWritable
//!                        └── poll says "writable" ── write_to again
//! ```
//!
//! ## What to look for
//! - [`SendQueue::write_to`]: drops exactly the bytes each `write` reports
//!   taken, keeps the rest in order, and stops at `WouldBlock`.
//! - [`send_all`]: the loop around it, as an event loop runs it: write what
//!   the kernel takes, then sleep in `poll` until the socket is writable.
//! - `mio` reports readiness *edge-triggered*: it says "writable" once when
//!   room appears, not again while the room stays. So `write_to` must write
//!   until `WouldBlock` before anyone waits for the next "writable", or the
//!   wait may never end.
//!
//! The chat server's [`Outbox`](crate::outbox::Outbox) is this queue with a
//! bound on its size.

use std::collections::VecDeque;
use std::io::{self, Write};
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};

/// What one [`SendQueue::write_to`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flush {
    /// Every queued byte went to the socket; nothing waits.
    Done,
    /// The socket said `WouldBlock` with `waiting` bytes still queued: wait
    /// until it is writable, then call `write_to` again.
    WantsWritable { waiting: usize },
}

/// Bytes to send, in order, that the socket has not taken yet.
#[derive(Debug, Default)]
pub struct SendQueue {
    // A VecDeque, not a Vec: taking n bytes off the front costs n, not the
    // length of what is left (a Vec would shift every remaining byte down).
    waiting: VecDeque<u8>,
}

impl SendQueue {
    /// Queues `bytes` after those already waiting. Nothing is written yet.
    pub fn queue(&mut self, bytes: &[u8]) {
        self.waiting.extend(bytes);
    }

    /// How many bytes wait to be written.
    pub fn waiting(&self) -> usize {
        self.waiting.len()
    }

    pub fn is_empty(&self) -> bool {
        self.waiting.is_empty()
    }

    /// Writes as much as `socket` takes now, without ever waiting: calls
    /// `write` until the queue is empty ([`Flush::Done`]) or the socket says
    /// `WouldBlock` ([`Flush::WantsWritable`]). Each `write` may take only
    /// part of what it is given: exactly those bytes leave the queue, and
    /// the rest stays, in order, for the next call.
    ///
    /// `Interrupted` (a signal arrived during the call) means "try again".
    /// `Ok(0)` from a non-empty buffer means the socket can take no more,
    /// ever: that is the error `WriteZero`. Other errors are returned.
    pub fn write_to(&mut self, socket: &mut impl Write) -> io::Result<Flush> {
        // TODO: exercise 10: write until the queue is empty or the socket
        // would block, keeping exactly what each write did not take.
        // BEGIN SOLUTION exercise 10
        while !self.waiting.is_empty() {
            // A VecDeque may wrap around its storage: write its first
            // contiguous part; the next turn of the loop writes the rest.
            let (front, _) = self.waiting.as_slices();
            match socket.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                // A short write is not an error: n bytes are the kernel's now.
                Ok(n) => drop(self.waiting.drain(..n)),
                // The send buffer is full. Not an error: "not now".
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Flush::WantsWritable {
                        waiting: self.waiting.len(),
                    });
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        Ok(Flush::Done)
        // STUB: let _ = socket;
        // STUB: todo!("exercise 10: write until empty or WouldBlock (sandbox/EXERCISES.md)")
        // END SOLUTION exercise 10
    }
}

/// The token that names our one socket in `poll`'s answers.
const STREAM: Token = Token(0);

/// Sends all of `bytes` on a non-blocking `stream`, the way an event loop
/// does: [`SendQueue::write_to`] takes what the kernel accepts, and when it
/// wants the socket writable, `poll` sleeps until the kernel has room again.
/// Fails with `TimedOut` if the socket stays unwritable for `stall_timeout`
/// (a peer that stopped reading). Returns how many times it had to wait.
pub fn send_all(
    stream: &mut mio::net::TcpStream,
    bytes: &[u8],
    stall_timeout: Duration,
) -> io::Result<usize> {
    let mut queue = SendQueue::default();
    queue.queue(bytes);
    let mut poll = Poll::new()?;
    // Ask to hear when the socket becomes writable (room in its send buffer).
    poll.registry()
        .register(stream, STREAM, Interest::WRITABLE)?;
    let sent = flush_all(&mut queue, stream, &mut poll, stall_timeout);
    // Whatever happened: a socket is registered with one `Poll` at a time.
    poll.registry().deregister(stream)?;
    sent
}

/// Writes and waits, in turn, until `queue` is empty.
fn flush_all(
    queue: &mut SendQueue,
    stream: &mut mio::net::TcpStream,
    poll: &mut Poll,
    stall_timeout: Duration,
) -> io::Result<usize> {
    let mut events = Events::with_capacity(4);
    let mut waits = 0;
    while let Flush::WantsWritable { waiting } = queue.write_to(stream)? {
        waits += 1;
        wait_writable(poll, &mut events, stall_timeout, waiting)?;
    }
    Ok(waits)
}

/// Sleeps in `poll` until our socket is reported writable, or fails after
/// `stall_timeout` without it.
fn wait_writable(
    poll: &mut Poll,
    events: &mut Events,
    stall_timeout: Duration,
    waiting: usize,
) -> io::Result<()> {
    let deadline = Instant::now() + stall_timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let secs = stall_timeout.as_secs_f32();
            let problem = format!("the peer read nothing for {secs}s; {waiting} bytes unsent");
            return Err(io::Error::new(io::ErrorKind::TimedOut, problem));
        }
        // The one place we wait: for an event, or until the deadline.
        match poll.poll(events, Some(left)) {
            Ok(()) if events.iter().any(|event| event.token() == STREAM) => return Ok(()),
            Ok(()) => {} // woken with nothing for us: wait the rest
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err),
        }
    }
}
