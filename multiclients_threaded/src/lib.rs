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
//! writer thread      outbox.next() -> write() -> outbox.next() -> write() ...
//!   (one per client)   (no lock held: a stuck client blocks only its own writer)
//! ```
//!
//! ## Try it
//! ```text
//! terminal 1:  cargo run -p multiclients_threaded -- server
//! terminal 2:  cargo run -p multiclients_threaded -- client --name ann
//! terminal 3:  cargo run -p multiclients_threaded -- client --name bob
//!     or:      nc 127.0.0.1 5002          (or: telnet 127.0.0.1 5002)
//! type in one client: the line appears in the others, as "ann: ...".
//! commands:    /nick NAME   /who   /quit
//! check it:    cargo run -p multiclients_threaded -- check   (against any chat server)
//! ```
//!
//! ## What to look for
//! - [`server::run`]: the accept loop only accepts and spawns; it never
//!   touches a client's socket.
//! - [`room`]: the registry behind one `Mutex`, and its rule: with the lock
//!   held, nothing may block on the network. Delivering is
//!   [`outbox::Outbox::put`], which never waits.
//! - [`outbox`]: each client's queue, bounded in bytes; overflow means the
//!   client stopped reading, and it is disconnected instead of waited for.
//! - The writer thread in [`server`]: the only place that writes to a
//!   client, with a write timeout, batching whatever has piled up.
//! - [`client::run`]: two threads, so that the others' lines appear while
//!   you type.
//!
//! ## New since the last lesson
//! Threads (`std::thread::Builder`), shared state (`Arc<Mutex<_>>`), channels
//! between threads, `SO_SNDBUF` and `SO_SNDTIMEO` on accepted sockets, and a
//! line protocol with its own [`protocol`] module instead of raw echo.
//! `basic` still provides the setup ([`basic::net`]), the output
//! ([`basic::log!`], [`basic::trace!`]) and the check harness
//! ([`basic::checklist`]); the accept step is lesson 2's
//! ([`multiclients::server::accept_next`]).
//!
//! ## Limits, on purpose
//! Two threads per client: a few thousand clients are fine, ten thousand are
//! not (the README measures why). Lesson `sandbox` serves the same chat from
//! one thread with non-blocking sockets. A client that falls 256 KiB behind,
//! or whose socket accepts nothing for 10 s, is disconnected: the room does
//! not slow down for anyone.

pub mod check;
pub mod client;
pub mod outbox;
pub mod protocol;
pub mod room;
pub mod server;

/// The port this lesson uses unless told otherwise (see the contract).
pub const DEFAULT_PORT: u16 = 5002;
