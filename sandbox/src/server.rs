//! The server side: one thread, many clients, no blocking call but the one
//! wait for "something is ready". Pick the loop that finds ready sockets;
//! the room they serve is the same ([`room`](crate::room)).
//!
//! Also here, because both loops need it: what to do when the process is
//! out of file descriptors ([`OutOfDescriptors`]). Stopping on Ctrl-C is in
//! [`shutdown`](crate::shutdown).

use std::net::TcpListener;
use std::time::Instant;

use plumbing::limits::{RefusalBurst, SpareDescriptor};
use plumbing::log;

use crate::room::Options;
use crate::shutdown::Stop;

/// How the single thread finds sockets that have something to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EventLoop {
    /// Try every socket, sleep a little when none had anything (`naive.rs`).
    Naive,
    /// Ask the kernel which sockets are ready, through mio (`readiness.rs`).
    #[default]
    Readiness,
}

/// Serves the chat on `listener` for ever with the chosen loop.
pub fn run(listener: TcpListener, event_loop: EventLoop, options: Options) -> anyhow::Result<()> {
    run_until(listener, event_loop, options, &Stop::never())
}

/// Serves the chat on `listener` with the chosen loop until `stop` is
/// requested (Ctrl-C, or a test), then shuts down gently and returns.
pub fn run_until(
    listener: TcpListener,
    event_loop: EventLoop,
    options: Options,
    stop: &Stop,
) -> anyhow::Result<()> {
    match event_loop {
        EventLoop::Naive => crate::naive::run(listener, options, stop),
        EventLoop::Readiness => crate::readiness::run(listener, options, stop),
    }
}

/// The last log line of a shutdown: how many gentle closes were cut short.
pub fn log_shut_down(still_closing: usize) {
    match still_closing {
        0 => log!("shut down: every client was told and closed"),
        n => log!("shut down: {n} clients had not finished closing in time; dropped"),
    }
}

/// The notice a client gets when the server has no descriptor for it.
pub const OUT_OF_DESCRIPTORS_NOTICE: &str =
    "* the server is out of file descriptors; try again later\n";

/// Refusing clients cleanly when the process has no file descriptor left.
///
/// Out of descriptors, `accept` fails (`EMFILE`) and leaves the connection
/// in the backlog: the client would wait for a welcome that never comes,
/// and the loop would be told about the same connection again and again.
/// A descriptor held in reserve ([`SpareDescriptor`]) lets the server accept
/// it anyway, send one line saying why, and close it. The log says so once
/// when the burst starts and once, with a count, when it ends.
pub struct OutOfDescriptors {
    spare: SpareDescriptor,
    burst: RefusalBurst,
    /// A burst started and its count is not logged yet.
    in_burst: bool,
}

impl Default for OutOfDescriptors {
    fn default() -> Self {
        OutOfDescriptors {
            spare: SpareDescriptor::reserve(),
            burst: RefusalBurst::default(),
            in_burst: false,
        }
    }
}

impl OutOfDescriptors {
    /// Refuses, with the notice, every connection waiting in the backlog
    /// (at most `max`). Returns how many; 0 means the spare descriptor did
    /// not help (try again later).
    pub fn refuse_waiting(&mut self, listener: &TcpListener, now: Instant, max: usize) -> usize {
        let mut refused = 0;
        while refused < max {
            let Some(peer) = self
                .spare
                .refuse_one(listener, OUT_OF_DESCRIPTORS_NOTICE.as_bytes())
            else {
                break;
            };
            refused += 1;
            self.in_burst = true;
            if self.burst.record(now) {
                log!(
                    "out of file descriptors: refusing newcomers with a notice ({peer} first) until clients leave"
                );
            }
        }
        refused
    }

    /// Logs the end of a burst of refusals, with its count. Call once a
    /// turn; returns whether a burst is still going on (wake up to end it).
    pub fn tick(&mut self, now: Instant) -> bool {
        if let Some(refused) = self.burst.ended(now) {
            log!("out of file descriptors: refused {refused} connections in all");
            self.in_burst = false;
        }
        self.in_burst
    }
}
