//! # Lesson 1, `basic`: the smallest blocking echo server and client
//!
//! A TCP server is a socket that waits for connections; each accepted
//! connection is a second socket, a byte stream to one client. This lesson
//! walks that life cycle once, with blocking calls: every call waits until
//! the kernel has something for it.
//!
//! ```text
//! server                               client
//! socket()                             socket()
//! bind(127.0.0.1:5000)
//! listen(backlog)
//! accept()  <------- handshake ------- connect(127.0.0.1:5000)
//! read()    <------- "hello\n" ------- write()
//! write()   -------- "hello\n" ------> read()
//! read() = 0 <------- FIN ------------ shutdown(Write)
//! close()   -------- FIN ------------> read() = 0
//!                                      close()
//! ```
//!
//! ## Try it
//! ```text
//! terminal 1:  cargo run -p basic -- server --trace
//! terminal 2:  cargo run -p basic -- client --trace      (type lines, then Ctrl-D; Ctrl-Z Enter on Windows)
//!     or:      nc -N 127.0.0.1 5000                  (OpenBSD nc: -N half-closes at end of input)
//! check it:    cargo run -p basic -- check               (against any echo server)
//! ```
//!
//! ## What to look for
//! - [`net::listen_on`]: socket, `SO_REUSEADDR`, bind, listen, each a separate
//!   call (through `socket2`, because std folds them into one).
//! - [`server::run`]: `accept` blocks until a client connects, and returns a
//!   new socket for that client.
//! - [`server::echo`]: `read` returns *some* bytes, maybe fewer than were
//!   sent, and `0` when the client has closed its side.
//! - [`client::run`]: `shutdown(Write)`, the half-close that says "I am done
//!   sending" while the echoes can still arrive.
//!
//! ## Limits, on purpose
//! The server serves one client and exits; lesson `multiclients` loops. It
//! trusts nothing about message boundaries, because TCP has none: it echoes
//! whatever each `read` returned.
//!
//! ## What this lesson lends the others
//! [`net`] (resolve, listen, connect), [`server::handle_client`] (the echo),
//! [`client::run`] (the client) and [`check`] (the echo checks). The command
//! line, errors, the log and the check harness are not part of the lesson:
//! they live in `plumbing/` (you need not read it to learn the lesson).

pub mod check;
pub mod client;
pub mod net;
pub mod server;

/// The port this lesson uses unless told otherwise (see the contract,
/// `tests/CONTRACT.md` at the top of the workspace).
pub const DEFAULT_PORT: u16 = 5000;
