//! # Plumbing: what every lesson needs and none of them teaches
//!
//! **You need not read this to learn the lessons.** It is the command line,
//! the error messages and the log that every lesson shares, written once so
//! that each lesson's own files hold only what it teaches. Read it when you
//! want to know how a piece works, or to change it for every lesson at once.
//!
//! | module | what it does | where to change... |
//! |---|---|---|
//! | [`cli`] | `--host`, `--port`, `--trace`, `--backlog`, `check`'s options; usage errors as one line | an option every lesson shares |
//! | [`errors`] | errors as one line with a hint (`address already in use (... try --port 0)`) | the wording or the hints |
//! | [`trace`](mod@trace), [`console`] | `log!` (events on stdout) and `trace!` (socket calls on stderr), which never make a server wait for its console | how the servers print |
//! | [`diagram`] | a traced session drawn as a sequence diagram (SVG) | the pictures |
//! | [`limits`] | per-address caps, the open-files limit, a spare descriptor for refusing when out of them | limits against hostile clients |
//! | [`checklist`] | the harness behind every `check` subcommand: `ok`/`FAIL` lines, bounded waits | how checks report |
//! | `testing` (feature `testing`, tests only) | start servers on port 0, wait for `listening on`, run the C reference servers | test helpers |

pub mod checklist;
pub mod cli;
pub mod console;
pub mod diagram;
pub mod errors;
pub mod limits;
pub mod recording;
#[cfg(feature = "testing")]
pub mod testing;
pub mod trace;

/// How many completed connections the kernel queues for a server before it
/// calls `accept`, unless `--backlog` says otherwise. The kernel may cap it
/// (Linux: `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = 128;
