//! Event loop 1, the naive one: every socket non-blocking, try each in turn,
//! skip the ones that answer `WouldBlock`, sleep a little, start again.
//!
//! Flow control works here as in the readiness loop, through the room:
//! while it holds input, `read_ready` reads nothing, and the senders' bytes
//! wait in the kernel.
//!
//! It is correct, and it is the easiest loop to write. Its cost shows when
//! nothing happens: it still wakes up every [`NAIVE_SLEEP`] and asks every
//! socket, one system call each, whether it has anything. The README
//! measures that idle CPU and the latency the sleep adds, beside
//! [`readiness`](crate::readiness), which asks the kernel once.

use std::io;
use std::net::TcpListener;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use plumbing::{log, trace};

use crate::readiness::{ACCEPT_RETRY_DELAY, ACCEPTS_PER_TURN};
use crate::room::{ClientId, Options, Room};
use crate::server::{OutOfDescriptors, log_shut_down};
use crate::shutdown::{SHUTDOWN_TIMEOUT, Stop};

/// How long the loop sleeps after a turn in which nothing happened. Shorter
/// means lower latency and more CPU burnt while idle; longer, the reverse.
pub const NAIVE_SLEEP: Duration = Duration::from_millis(1);

/// Serves the chat from this one thread, polling every socket, until
/// `stop` is requested (it looks at the flag every turn); then shuts down
/// gently and returns.
pub fn run(listener: TcpListener, options: Options, stop: &Stop) -> anyhow::Result<()> {
    // A non-blocking listener: accept() returns WouldBlock at once when no
    // connection waits in the backlog, instead of blocking the whole server.
    listener
        .set_nonblocking(true)
        .context("cannot make the listener non-blocking")?;
    let mut room = Room::new(options);
    let mut next_id: ClientId = 0;
    let mut out_of_descriptors = OutOfDescriptors::default();
    // After a failed accept, no accepting until then (see ACCEPT_RETRY_DELAY).
    let mut accept_paused_until: Option<Instant> = None;
    while !stop.is_requested() {
        let now = Instant::now();
        room.tick(now);
        let mut busy = false;
        if accept_paused_until.is_none_or(|until| until <= now) {
            accept_paused_until = None;
            match accept_all(&listener, &mut room, &mut next_id, now) {
                Accepted::Some => busy = true,
                Accepted::Nothing => {}
                Accepted::Failed(err) => {
                    accept_failed(&listener, &mut out_of_descriptors, &err, now);
                    accept_paused_until = Some(now + ACCEPT_RETRY_DELAY);
                }
            }
        }
        out_of_descriptors.tick(now);
        // Try every client, ready or not: most answer WouldBlock. (While
        // the room holds input, read_ready reads nothing.)
        for id in room.ids() {
            busy |= room.read_ready(id, now);
        }
        // The naive loop tries everyone anyway: no list to keep.
        drop(room.take_unfinished_reads());
        room.flush_all();
        room.expire(now);
        room.settle();
        drop(room.take_closed()); // dropping a std socket closes it
        if !busy {
            thread::sleep(NAIVE_SLEEP);
        }
    }
    drop(listener); // closed: the kernel now refuses newcomers
    shut_down(room);
    Ok(())
}

/// After Ctrl-C: the room tells every client and starts closing each one
/// gently; this serves those closes, trying every socket as usual, until
/// they are done or [`SHUTDOWN_TIMEOUT`] passes.
fn shut_down(mut room: Room<std::net::TcpStream>) {
    let started = Instant::now();
    room.tick(started);
    room.shut_down();
    room.settle();
    while room.draining_len() > 0 && started.elapsed() < SHUTDOWN_TIMEOUT {
        thread::sleep(NAIVE_SLEEP);
        let now = Instant::now();
        room.tick(now);
        room.flush_all(); // goes on with every gentle close
        room.expire(now);
        room.settle();
        drop(room.take_closed());
    }
    log_shut_down(room.draining_len());
}

/// What one round of accepting did.
enum Accepted {
    Some,
    Nothing,
    /// accept() failed (for example out of file descriptors).
    Failed(io::Error),
}

/// Accepts every connection waiting in the backlog, until `WouldBlock`.
fn accept_all(
    listener: &TcpListener,
    room: &mut Room<std::net::TcpStream>,
    next_id: &mut ClientId,
    now: Instant,
) -> Accepted {
    // TODO: exercise 4: accept every connection waiting in the backlog:
    // `WouldBlock` means "none left", not an error.
    // BEGIN SOLUTION exercise 4
    let mut accepted = Accepted::Nothing;
    loop {
        let (stream, peer) = match listener.accept() {
            Ok(connection) => connection,
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return accepted,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // Out of file descriptors, say: the connection stays in the
            // backlog; the caller refuses it or tries again later.
            Err(err) => return Accepted::Failed(err),
        };
        trace!("accept() -> {peer}");
        accepted = Accepted::Some;
        if let Err(err) = prepare(&stream) {
            log!("{peer}: cannot set up the socket: {err}; closing it");
            continue;
        }
        if room.is_full() {
            Room::refuse(stream, peer, room.len());
            continue;
        }
        if !room.admit_address(peer) {
            room.refuse_address(stream, peer);
            continue;
        }
        *next_id += 1;
        room.join(*next_id, stream, peer, now);
    }
    // STUB: let _ = (listener, room, next_id, now);
    // STUB: todo!("exercise 4: accept until WouldBlock (sandbox/EXERCISES.md)")
    // END SOLUTION exercise 4
}

/// After a failed accept: out of file descriptors, refuses the waiting
/// connections with a notice (the log says so once per burst); any other
/// error is logged, and accepting pauses for [`ACCEPT_RETRY_DELAY`] (every
/// turn would fill the log with the same line, 1,000 a second).
fn accept_failed(
    listener: &TcpListener,
    out_of_descriptors: &mut OutOfDescriptors,
    err: &io::Error,
    now: Instant,
) {
    if plumbing::limits::is_out_of_descriptors(err) {
        out_of_descriptors.refuse_waiting(listener, now, ACCEPTS_PER_TURN);
    } else {
        log!("accept failed: {err}; still serving, retrying in {ACCEPT_RETRY_DELAY:?}");
    }
}

/// An accepted socket does not inherit the listener's non-blocking mode on
/// every system (Linux: no; BSD and macOS: yes), so we set it ourselves.
fn prepare(stream: &std::net::TcpStream) -> io::Result<()> {
    stream.set_nonblocking(true)?;
    // TCP_NODELAY: send each chat line at once instead of letting Nagle's
    // algorithm hold small writes back while an earlier one is unacknowledged.
    stream.set_nodelay(true)
}
