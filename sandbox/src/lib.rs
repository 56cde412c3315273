//! # Lesson 5, `sandbox`: timeouts and non-blocking sockets, 10,000 clients on one thread
//!
//! Lesson 3 served the chat with one thread per client, each blocked in its
//! own `read`. Here the same chat (same wire format, same commands) runs on
//! **one** thread: every socket is non-blocking, so no call ever waits for
//! one client, and the thread sleeps only in one place, where it asks the
//! operating system "which of my sockets are ready?".
//!
//! ```text
//! loop {
//!     poll(all sockets, until the next deadline)   <- the only wait
//!     accept_ready      waiting connections, until WouldBlock (64 a turn at most)
//!     read_ready        the sockets with bytes; lines handled within a budget,
//!                       none at all while a recipient is behind (back-pressure)
//!     flush_pending     outboxes, each in one write, as far as the socket takes it
//!     expire            idle, silent and stalled clients; gentle closes past due
//! }
//! on Ctrl-C: close the listener, tell everyone, close each gently, return
//! ```
//!
//! ## Try it
//! ```text
//! terminal 1:  cargo run -p sandbox -- server --idle-timeout 60
//! terminal 2:  cargo run -p sandbox -- client --read-timeout 120
//! terminal 3:  nc -N 127.0.0.1 5003               (type lines; /nick, /who, /quit)
//! stop it:     Ctrl-C in terminal 1: every client is told, then closed
//! the naive loop, to compare:  cargo run -p sandbox -- server --event-loop naive
//! check it:    cargo run -p sandbox -- check --idle-timeout 60
//! ```
//!
//! ## What to look for
//! - [`readiness::run`]: one `poll` call, then only the sockets it named.
//! - [`naive::run`]: the same steps, trying every socket and sleeping.
//! - [`room::Room::read_ready`] and [`outbox::Outbox::write_to`]: `WouldBlock`
//!   is not an error but "nothing more right now"; a write may be partial.
//! - [`idle::IdleTimers`]: a heap of deadlines, so that expiring idle clients
//!   does not mean scanning 10,000 of them on every wake-up.
//! - [`room`]'s module docs: **flow control**. A recipient that falls behind
//!   is not dropped; the room stops *reading* senders until it catches up
//!   ([`room::Room::holding_input`]), so TCP slows the senders down and no
//!   line is lost. Only a client whose socket takes nothing for
//!   `--stall-timeout` is let go, with a notice.
//! - [`shutdown`] and [`room::Room::shut_down`]: a **graceful shutdown**.
//!   Ctrl-C sets a flag and wakes `poll` (a `mio::Waker`); the loop closes
//!   its listener, the room tells every client and closes each gently, and
//!   the server exits 0 within [`shutdown::SHUTDOWN_TIMEOUT`].
//! - [`draining`]: closing gently (FIN, then read until the client closes
//!   too), so that a reset does not throw away the last notice.
//! - [`outbox::Outbox`] and [`inbox::Inbox`]: memory held only while bytes
//!   wait, so 10,000 idle clients cost under a kilobyte each.
//! - [`client::connect_with_timeout`] and [`client::is_timeout`]: connect and
//!   read timeouts, and why a read timeout is `WouldBlock` on Unix and
//!   `TimedOut` on Windows.
//! - The homework's socket exercises, each a small module to read on its
//!   own: [`send_queue`] (partial writes, writability), [`closing`] (FIN
//!   versus RST), [`liveness`] (write timeout, keepalive), [`datagram`] (UDP
//!   with retries and acknowledgements). Back-pressure
//!   ([`room::Room::holding_input`]) and the shutdown's steps
//!   ([`room::Room::shut_down`]) are exercises too.
//!
//! ## New since the last lesson
//! Timeouts, non-blocking sockets, readiness (`mio`), per-client outboxes
//! written as sockets become writable, back-pressure from slow readers to
//! fast senders, limits against idle and hostile clients (first-line
//! timeout, per-address cap, a client limit that fits the descriptor limit,
//! a memory budget for the whole server), a graceful shutdown on Ctrl-C.
//! The protocol is lesson 3's
//! [`multiclients_threaded::protocol`], reused as it is. And UDP, in
//! [`datagram`].
//!
//! ## Limits, on purpose
//! One thread uses one core: work per message (broadcast to 10,000 outboxes)
//! is done in line, so a huge room slows every message down. Real servers
//! add threads (one loop per core) or a runtime like tokio, which is this
//! loop with futures on top.

pub mod check;
pub mod client;
pub mod closing;
pub mod datagram;
pub mod draining;
pub mod framing;
pub mod idle;
pub mod inbox;
pub mod liveness;
pub mod naive;
pub mod outbox;
pub mod readiness;
pub mod room;
pub mod send_queue;
pub mod server;
pub mod shutdown;

/// The port this lesson uses unless told otherwise (see the contract).
pub const DEFAULT_PORT: u16 = 5003;

/// The listen backlog: large enough for 10,000 clients connecting at once
/// (the operating system may cap it: Linux at `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 4096;
