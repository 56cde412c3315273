//! The console is a slow consumer too. A terminal scrolls at its own pace,
//! `| less` stops reading when its screen is full, Ctrl-S pauses a terminal,
//! and a pipe nobody reads fills up after 64 KiB: from then on every
//! `println!` blocks, and a server that logs from its data path stops
//! serving everyone. The same flow-control question as between clients,
//! with the opposite answer: a chat line must never be lost, so the server
//! slows the sender; a log line may be, so the server never waits for it.
//!
//! So [`log!`](crate::log) and [`trace!`](macro@crate::trace) only append the line
//! to a bounded buffer in memory and wake one writer thread per stream,
//! which writes everything pending in one `write` call and goes back to
//! sleep. While the console falls behind and the buffer is full, new lines
//! are counted and skipped; once there is room again the writer says so, in
//! order, with a line such as
//! `(1234 log lines skipped: the console is slower than the server)`.
//! [`flush`] waits (bounded) for what is pending, before a program exits.

use std::fmt::{self, Write as _};
use std::io::{self, Write};
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::{Duration, Instant};

/// How many bytes of log may wait for the console. A burst fits in it;
/// a console that stopped reading makes the server skip lines past it,
/// never grow its memory.
pub const PENDING_BYTES: usize = 256 * 1024;

/// How long the writer lets lines gather before it writes them.
pub const BATCH_PAUSE: Duration = Duration::from_millis(5);

/// How long [`flush`] waits for a stalled console before giving up.
pub const FLUSH_TIMEOUT: Duration = Duration::from_secs(2);

/// Where a [`Console`] writes: stdout for the log, stderr for the trace.
#[derive(Clone, Copy, Debug)]
enum Stream {
    Stdout,
    Stderr,
}

/// Lines waiting for one output stream, and the writer that drains them.
pub struct Console {
    stream: Stream,
    pending: Mutex<Pending>,
    /// Wakes the writer when a line arrives.
    line_added: Condvar,
    /// Wakes [`flush`] when the writer has written everything.
    written: Condvar,
}

#[derive(Default)]
struct Pending {
    text: String,
    skipped: u64,
    /// The writer is busy with a batch taken out of `text`.
    writing: bool,
    /// The writer sleeps until a line arrives (only then is waking it worth
    /// a system call).
    writer_idle: bool,
    writer_started: bool,
}

/// The server's event log, on stdout.
pub fn log() -> &'static Console {
    static LOG: OnceLock<Console> = OnceLock::new();
    LOG.get_or_init(|| Console::new(Stream::Stdout))
}

/// The `--trace` output, on stderr.
pub fn trace() -> &'static Console {
    static TRACE: OnceLock<Console> = OnceLock::new();
    TRACE.get_or_init(|| Console::new(Stream::Stderr))
}

/// Waits until both consoles have written what is pending, or until
/// [`FLUSH_TIMEOUT`] has passed: call it before the program exits, since the
/// writer threads end with the process.
pub fn flush() {
    let deadline = Instant::now() + FLUSH_TIMEOUT;
    log().flush_until(deadline);
    trace().flush_until(deadline);
}

impl Console {
    fn new(stream: Stream) -> Self {
        Self {
            stream,
            pending: Mutex::new(Pending::default()),
            line_added: Condvar::new(),
            written: Condvar::new(),
        }
    }

    /// Appends one line (a `\n` is added), or counts it as skipped when the
    /// console is too far behind. Never waits for the console.
    pub fn line(&'static self, args: fmt::Arguments<'_>) {
        let mut pending = self.lock();
        if !pending.writer_started {
            pending.writer_started = self.start_writer();
        }
        if pending.skipped > 0 && pending.text.len() < PENDING_BYTES {
            // The console caught up: say what it missed, where it missed it.
            let skipped = std::mem::take(&mut pending.skipped);
            let _ = writeln!(pending.text, "{}", skipped_note(skipped));
        }
        if pending.text.len() < PENDING_BYTES {
            let _ = writeln!(pending.text, "{args}");
            if std::mem::take(&mut pending.writer_idle) {
                self.line_added.notify_one();
            }
        } else {
            pending.skipped += 1;
        }
    }

    /// Starts the thread that writes this console's lines; `false` if the
    /// system cannot start one (then lines wait and are skipped, as for a
    /// console that never reads).
    fn start_writer(&'static self) -> bool {
        std::thread::Builder::new()
            .name(format!("{:?} writer", self.stream).to_lowercase())
            .spawn(move || self.write_forever())
            .is_ok()
    }

    /// The writer thread: wait for lines, let a batch gather, write it in
    /// one call (this is where a slow console blocks, and only this thread),
    /// repeat.
    fn write_forever(&self) {
        let mut batch = String::new();
        loop {
            self.wait_for_lines();
            // One write of many lines costs the server far less than a
            // write per line, and no one reads a log faster than this.
            std::thread::sleep(BATCH_PAUSE);
            self.take_batch(&mut batch);
            self.write_batch(batch.as_bytes());
            if batch.capacity() > PENDING_BYTES {
                // A burst grew the buffer; give the memory back.
                batch = String::new();
            }
        }
    }

    /// Marks the last batch written, then sleeps until there is a line to write.
    fn wait_for_lines(&self) {
        let mut pending = self.lock();
        pending.writing = false;
        if pending.text.is_empty() && pending.skipped > 0 {
            // Skipped lines and nothing after them: say so now.
            let skipped = std::mem::take(&mut pending.skipped);
            let _ = writeln!(pending.text, "{}", skipped_note(skipped));
        }
        self.written.notify_all();
        while pending.text.is_empty() {
            pending.writer_idle = true;
            pending = self
                .line_added
                .wait(pending)
                .unwrap_or_else(|poisoned| poisoned.into_inner());
        }
    }

    /// Takes everything pending into `batch`, leaving an empty buffer: the
    /// servers go on adding lines while the batch is written.
    fn take_batch(&self, batch: &mut String) {
        let mut pending = self.lock();
        batch.clear();
        std::mem::swap(batch, &mut pending.text);
        pending.writing = true;
    }

    /// Errors are ignored: a server must not stop because its console was
    /// closed (`println!` would panic there).
    fn write_batch(&self, bytes: &[u8]) {
        let _ = match self.stream {
            Stream::Stdout => write_and_flush(&mut io::stdout().lock(), bytes),
            Stream::Stderr => write_and_flush(&mut io::stderr().lock(), bytes),
        };
    }

    fn flush_until(&self, deadline: Instant) {
        let mut pending = self.lock();
        while pending.writer_started && (pending.writing || !pending.text.is_empty()) {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return;
            }
            pending = match self.written.wait_timeout(pending, left) {
                Ok((guard, _)) => guard,
                Err(poisoned) => poisoned.into_inner().0,
            };
        }
    }

    fn lock(&self) -> MutexGuard<'_, Pending> {
        // A thread that panicked while holding the lock cannot have left
        // the text half-written in a way that matters for a log.
        self.pending
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }
}

fn write_and_flush(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    out.write_all(bytes)?;
    out.flush()
}

/// The line that stands where skipped lines would have been.
pub fn skipped_note(skipped: u64) -> String {
    format!("({skipped} log lines skipped: the console is slower than the server)")
}
