//! `--diagram FILE.svg` and `--trace-to FILE`: the traced calls of this
//! process, kept for a sequence diagram ([`crate::diagram`] draws it).
//!
//! The file is kept current while the program runs (rewritten a moment after
//! new calls), not only written at exit: servers run until Ctrl-C, which
//! ends the process without a chance to write anything.

use std::fmt;
use std::io;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use crate::diagram::{self, Event};

/// Where a recording goes.
#[derive(Debug, Clone)]
pub enum RecordTo {
    /// `--diagram FILE`: this side's session, drawn as an SVG diagram.
    Diagram(PathBuf),
    /// `--trace-to FILE`: the events, for `basic diagram` to draw with the
    /// other sides'.
    Events(PathBuf),
}

/// The most events a recording keeps: a diagram of more is unreadable
/// anyway, and memory stays bounded however long the session.
pub const MAX_RECORDED_EVENTS: usize = 10_000;

/// How long after a call the file is rewritten: calls that come together
/// are written together.
const REWRITE_PAUSE: Duration = Duration::from_millis(200);

struct Recording {
    side: String,
    to: RecordTo,
    kept: Mutex<Kept>,
    /// Wakes the thread that keeps the file current.
    added: Condvar,
}

#[derive(Default)]
struct Kept {
    events: Vec<Event>,
    /// How many of `events` the file holds.
    written: usize,
}

static RECORDING: OnceLock<Recording> = OnceLock::new();

/// Starts recording this process's calls as `side`; `false` if a recording
/// was already started.
pub fn start(side: &str, to: RecordTo) -> bool {
    let recording = Recording {
        side: side.to_string(),
        to,
        kept: Mutex::new(Kept::default()),
        added: Condvar::new(),
    };
    if RECORDING.set(recording).is_err() {
        return false;
    }
    let _ = std::thread::Builder::new()
        .name("recording writer".into())
        .spawn(keep_file_current);
    true
}

/// Keeps one traced call, if a recording is on.
pub fn add(args: fmt::Arguments<'_>) {
    let Some(recording) = RECORDING.get() else {
        return;
    };
    let mut kept = recording.lock();
    if kept.events.len() < MAX_RECORDED_EVENTS {
        kept.events
            .push(Event::now(&recording.side, args.to_string()));
        recording.added.notify_one();
    }
}

/// Writes the recording one last time, if there is one (at exit).
pub fn finish() -> io::Result<()> {
    match RECORDING.get() {
        Some(recording) => recording.write(),
        None => Ok(()),
    }
}

/// The writer thread: after new calls, wait a moment, rewrite the file.
fn keep_file_current() {
    let Some(recording) = RECORDING.get() else {
        return;
    };
    loop {
        {
            let mut kept = recording.lock();
            while kept.written == kept.events.len() {
                kept = recording
                    .added
                    .wait(kept)
                    .unwrap_or_else(|poisoned| poisoned.into_inner());
            }
        }
        std::thread::sleep(REWRITE_PAUSE);
        // A file that cannot be written is reported once, at exit.
        let _ = recording.write();
    }
}

impl Recording {
    fn lock(&self) -> MutexGuard<'_, Kept> {
        self.kept
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Rewrites the file from a copy of the events, so that the servers'
    /// `trace!` calls never wait for the disk.
    fn write(&self) -> io::Result<()> {
        let events = self.lock().events.clone();
        let contents = match &self.to {
            RecordTo::Diagram(_) => diagram::svg(&events, &format!("{} session", self.side)),
            RecordTo::Events(_) => events.iter().map(|e| e.to_line() + "\n").collect(),
        };
        let (RecordTo::Diagram(path) | RecordTo::Events(path)) = &self.to;
        std::fs::write(path, contents)?;
        let mut kept = self.lock();
        kept.written = kept.written.max(events.len());
        Ok(())
    }
}
