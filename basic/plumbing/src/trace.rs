//! Two kinds of output, kept apart so that scripts and tests can rely on stdout:
//!
//! - [`log!`](crate::log): the server's events (a client connected, a message, a
//!   client left), on **stdout**.
//! - [`trace!`](macro@crate::trace): with `--trace`, each socket call as it happens, on
//!   **stderr**, so that a student can watch the lifecycle of a connection.
//!
//! Neither waits for the terminal: a slow or paused console must not slow
//! the server, and a closed one must not crash it (`println!` would panic
//! there). [`console`](crate::console) explains how.

use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};

static PRINTING: AtomicBool = AtomicBool::new(false);
/// Printing or recording: what `trace!` checks first, so that tracing off
/// costs one atomic load.
static TRACING: AtomicBool = AtomicBool::new(false);
static LOGGING: AtomicBool = AtomicBool::new(true);

/// Turns on `--trace` output for the whole process.
pub fn enable() {
    PRINTING.store(true, Ordering::Relaxed);
    TRACING.store(true, Ordering::Relaxed);
}

/// Whether `trace!` has anything to do (print or record).
pub fn enabled() -> bool {
    TRACING.load(Ordering::Relaxed)
}

/// What `trace!` calls: prints the line with `--trace`, records it with
/// `--diagram` or `--trace-to`.
pub fn emit(args: fmt::Arguments<'_>) {
    if PRINTING.load(Ordering::Relaxed) {
        crate::console::trace().line(format_args!("trace: {args}"));
    }
    crate::recording::add(args);
}

/// Records every traced call of this process as `side` (`server`,
/// `client`) into `to` (see [`recording`](crate::recording)).
pub fn record(side: &str, to: crate::recording::RecordTo) {
    if crate::recording::start(side, to) {
        TRACING.store(true, Ordering::Relaxed);
    }
}

/// Turns off [`log!`](crate::log) output for the whole process: tests that
/// run servers in-process use it, as they read no log and the test
/// harness does not capture these lines.
pub fn silence_logs() {
    LOGGING.store(false, Ordering::Relaxed);
}

/// Whether [`log!`](crate::log) prints.
pub fn logging() -> bool {
    LOGGING.load(Ordering::Relaxed)
}

/// Adds one event line to the log on stdout, e.g.
/// `log!("client connected: {peer}")`. It never waits for the console: the
/// line goes to a bounded buffer that a writer thread drains (see
/// [`console`](crate::console)), and is skipped, and counted, when the
/// console is too far behind.
#[macro_export]
macro_rules! log {
    ($($arg:tt)*) => {
        if $crate::trace::logging() {
            $crate::console::log().line(format_args!($($arg)*));
        }
    };
}

/// With `--trace`, prints one socket call on stderr, e.g.
/// `trace!("accept() -> {peer}")`, through the same kind of buffer as
/// [`log!`](crate::log); with `--diagram` or `--trace-to`, records it for a
/// sequence diagram ([`diagram`](crate::diagram)). Costs one atomic load
/// when tracing is off.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)*) => {
        if $crate::trace::enabled() {
            $crate::trace::emit(format_args!($($arg)*));
        }
    };
}

/// Shows received bytes in a log line: printable text as it is, the rest
/// escaped (`\n`, `\xff`), and cut after `limit` bytes.
pub fn preview(bytes: &[u8], limit: usize) -> String {
    let shown = &bytes[..bytes.len().min(limit)];
    let mut text = String::from("\"");
    for chunk in shown.utf8_chunks() {
        text.extend(chunk.valid().chars().flat_map(char::escape_debug));
        for byte in chunk.invalid() {
            text.push_str(&format!("\\x{byte:02x}"));
        }
    }
    text.push('"');
    if bytes.len() > limit {
        text.push_str("...");
    }
    text
}

#[cfg(test)]
mod tests {
    use super::preview;

    #[test]
    fn preview_escapes_control_and_invalid_bytes() {
        assert_eq!(preview(b"hi\n\xff", 10), r#""hi\n\xff""#);
    }

    #[test]
    fn preview_cuts_long_input() {
        assert_eq!(preview(b"abcdef", 3), r#""abc"..."#);
    }
}
