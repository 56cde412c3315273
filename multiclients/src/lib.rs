//! # Lesson 2, `multiclients`: the iterative accept loop
//!
//! A server that serves many clients, one at a time: accept a client, echo
//! until it leaves, accept the next, for ever. While one client is served,
//! the next is already connected (the kernel completed its handshake and put
//! it in the listen backlog) but nobody reads from it yet: its bytes wait in
//! the kernel until the server gets round to it.
//!
//! ```text
//! loop {
//!     accept()            <- the next connection from the backlog
//!     read/write ... 0    <- lesson 1's echo, until that client closes
//!     close()
//! }
//! ```
//!
//! ## Try it
//! ```text
//! terminal 1:  cargo run -p multiclients -- server
//! terminal 2:  cargo run -p multiclients -- client     (type a line: it echoes)
//! terminal 3:  cargo run -p multiclients -- client     (type a line: silence...)
//! now end the client in terminal 2 (Ctrl-D): terminal 3's echo appears at once.
//! check it:    cargo run -p multiclients -- check
//! ```
//!
//! ## What to look for
//! - [`server::run`]: the accept loop; [`server::accept_next`]: what it does
//!   when one `accept` fails (log it, go on). Lessons 3 and 4 reuse it.
//! - The server's log: `client connected` for the second client appears only
//!   after `client left` for the first.
//!
//! ## New since the last lesson
//! The loop. The echo itself is lesson 1's [`basic::server::handle_client`],
//! used as it is, and so is the client ([`basic::client::run`]).
//!
//! ## Limits, on purpose
//! One slow client blocks everyone behind it. Lesson `multiclients_threaded`
//! gives each client its own thread; lesson `sandbox` serves them all from
//! one thread with non-blocking sockets.

pub mod check;
pub mod server;

/// The port this lesson uses unless told otherwise (see the contract,
/// `tests/CONTRACT.md` at the top of the workspace).
pub const DEFAULT_PORT: u16 = 5001;
