//! # Lesson 3, `multiclients_threaded`: a thread-per-client chat that one slow client cannot stall
//!
//! Many clients served at once, one thread each, sharing a registry of who
//! is connected: every line a client sends goes to all the others. The
//! threads share data, so they share a lock, and the lesson is about what
//! may and may not happen while that lock is held.
//!
//! ```text
//! main thread        accept() -> spawn a client thread, accept() again ...
//! client thread      read() -> "hello" -> lock room -> put "ann: hello" in every
//!   (one per client)                                   other client's outbox -> unlock
//!                    -> if an outbox is over its mark: wait for it (no lock held)
//! writer thread      take everything queued -> one write() -> take ... -> write() ...
//!   (one per client)   (no lock held: a stuck client blocks only its own writer)
//! ```
//!
//! ## Try it
//! ```text
//! terminal 1:  cargo run -p multiclients_threaded -- server
//! terminal 2:  cargo run -p multiclients_threaded -- client --name ann
//! terminal 3:  cargo run -p multiclients_threaded -- client --name bob
//!     or:      nc -N 127.0.0.1 5002       (or: telnet 127.0.0.1 5002)
//!              (-N: at Ctrl-D, nc shuts down its sending side, so the server sees
//!               the end; OpenBSD's nc, Debian's netcat-openbsd, needs -N for that.
//!               If your nc has no -N, type /quit to leave.)
//! type in one client: the line appears in the others, as "ann: ...".
//! commands:    /nick NAME   /who   /quit
//! check it:    cargo run -p multiclients_threaded -- check   (against any chat server)
//! ```
//!
//! ## What to look for
//! - [`server::run`]: the accept loop only accepts, admits and spawns; it
//!   never reads a client's socket, so it keeps up with clients that come
//!   and go. A thread the system refuses refuses that one client, with a
//!   notice.
//! - [`room`]: the registry behind one `Mutex`, and its rule: with the lock
//!   held, nothing may block on the network. Delivering is
//!   [`outbox::Outbox::put`], which never waits and never refuses a line.
//! - [`outbox`]: each client's queue, and the flow control. A queue past its
//!   high-water mark makes the *sender's* thread wait, after the lock is
//!   released, until the writer catches up: the sender stops reading its
//!   socket, and TCP slows the sending program down. Nobody is dropped for
//!   being slow, and no line is lost; a [`outbox::Budget`] bounds the bytes
//!   queued in the whole server.
//! - The writer thread in [`server`]: the only place that writes to a
//!   client, one `write` for everything queued. It alone decides that a
//!   client is stuck: nothing written for the stall timeout (or senders kept
//!   waiting that long). Then the client gets a notice it can read later,
//!   and the connection is closed gently.
//! - [`client::run`]: two threads, so that the others' lines appear while
//!   you type; what arrives is shown with control characters escaped.
//!
//! ## New since the last lesson
//! Threads (`std::thread::Builder`), shared state (`Arc<Mutex<_>>`),
//! `Condvar` to sleep until another thread changed that state (a queue
//! filled or drained), `SO_SNDBUF`, `SO_SNDTIMEO` and `SO_RCVTIMEO` on
//! accepted sockets, flow control (back-pressure through TCP), and a line
//! protocol with its own [`protocol`] module instead of raw echo.
//! `basic` still provides the setup ([`basic::net`]), the output
//! ([`plumbing::log!`], [`plumbing::trace!`]) and the check harness
//! ([`plumbing::checklist`]). The accept step of lesson 2 grows into a door
//! that turns clients away cleanly ([`plumbing::limits`]): at most
//! `--max-per-address` connections from one address, a room no larger than
//! the open-files limit allows, and a spare file descriptor to refuse a
//! client with a notice when the process has none left.
//!
//! ## Limits, on purpose
//! Two threads per client: a few thousand clients are fine, ten thousand are
//! not (the README measures why). Lesson `sandbox` serves the same chat from
//! one thread with non-blocking sockets. The room goes at the pace of its
//! slowest reader: one client that reads slowly (but reads) slows every
//! sender, by design; one that reads nothing for `--stall-timeout` (5 s) is
//! let go. A client that sends no complete line within
//! `--first-line-timeout` (60 s) of connecting is closed.

pub mod check;
pub mod client;
pub mod outbox;
pub mod protocol;
pub mod room;
pub mod server;

/// The port this lesson uses unless told otherwise (see the contract).
pub const DEFAULT_PORT: u16 = 5002;
