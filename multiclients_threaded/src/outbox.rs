//! A client's outbox: the queue between the room, which puts lines in, and
//! the client's writer thread, which takes them out and writes them to the
//! socket.
//!
//! Putting a line in never waits: if the client already has more than its
//! limit waiting, the put fails and the room drops that client. The limit is
//! in bytes, because bytes are what memory costs: a burst of many short lines
//! fits, a client that stopped reading while the room talks on does not.
//! (`std::sync::mpsc::sync_channel` would bound the *number* of lines; we
//! count bytes next to an unbounded channel instead.)

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, TryRecvError};

use crate::room::Line;

/// The putting end, kept in the room's registry.
pub struct Outbox {
    lines: Sender<Line>,
    queued_bytes: Arc<AtomicUsize>,
    limit_bytes: usize,
}

/// The taking end, owned by the client's writer thread.
pub struct Queue {
    lines: Receiver<Line>,
    queued_bytes: Arc<AtomicUsize>,
}

/// The outbox had more than its limit waiting; the line was not queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// A new outbox holding at most `limit_bytes` (plus one line) at a time.
pub fn outbox(limit_bytes: usize) -> (Outbox, Queue) {
    let (sender, receiver) = mpsc::channel();
    let queued_bytes = Arc::new(AtomicUsize::new(0));
    let outbox = Outbox {
        lines: sender,
        queued_bytes: Arc::clone(&queued_bytes),
        limit_bytes,
    };
    let queue = Queue {
        lines: receiver,
        queued_bytes,
    };
    (outbox, queue)
}

impl Outbox {
    /// Queues `line` without waiting, unless the client is too far behind
    /// (or its writer thread has ended).
    pub fn put(&self, line: &Line) -> Result<(), Overflow> {
        // The count only says how far behind the writer is: relaxed ordering
        // is enough, no other memory depends on it.
        let queued = self.queued_bytes.load(Ordering::Relaxed);
        if queued > self.limit_bytes {
            return Err(Overflow);
        }
        self.queued_bytes.fetch_add(line.len(), Ordering::Relaxed);
        // send() on an unbounded channel never blocks; it fails only if the
        // writer thread (the receiver) is gone.
        self.lines.send(Arc::clone(line)).map_err(|_| Overflow)
    }
}

impl Queue {
    /// Waits for the next line; `None` once every `Outbox` for this queue
    /// is dropped (the client left the room) and the queue is empty.
    pub fn next(&self) -> Option<Line> {
        let line = self.lines.recv().ok()?;
        Some(self.taken(line))
    }

    /// The next line if one is already waiting; never blocks.
    pub fn next_waiting(&self) -> Option<Line> {
        match self.lines.try_recv() {
            Ok(line) => Some(self.taken(line)),
            Err(TryRecvError::Empty | TryRecvError::Disconnected) => None,
        }
    }

    fn taken(&self, line: Line) -> Line {
        self.queued_bytes.fetch_sub(line.len(), Ordering::Relaxed);
        line
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line(text: &str) -> Line {
        Line::from(text)
    }

    #[test]
    fn lines_come_out_in_the_order_they_went_in() {
        let (outbox, queue) = outbox(100);
        outbox.put(&line("one\n")).unwrap();
        outbox.put(&line("two\n")).unwrap();
        assert_eq!(queue.next().as_deref(), Some("one\n"));
        assert_eq!(queue.next_waiting().as_deref(), Some("two\n"));
        assert_eq!(queue.next_waiting(), None);
    }

    #[test]
    fn a_put_past_the_byte_limit_overflows_until_the_writer_catches_up() {
        let (outbox, queue) = outbox(10);
        outbox.put(&line("0123456789\n")).unwrap(); // 11 bytes: now over
        assert_eq!(outbox.put(&line("x\n")), Err(Overflow));
        queue.next().unwrap();
        assert_eq!(outbox.put(&line("x\n")), Ok(()));
    }

    #[test]
    fn the_queue_ends_when_the_outbox_is_dropped_and_drained() {
        let (outbox, queue) = outbox(100);
        outbox.put(&line("last\n")).unwrap();
        drop(outbox);
        assert_eq!(queue.next().as_deref(), Some("last\n"));
        assert_eq!(queue.next(), None);
    }

    #[test]
    fn a_put_fails_once_the_writer_is_gone() {
        let (outbox, queue) = outbox(100);
        drop(queue);
        assert_eq!(outbox.put(&line("nobody\n")), Err(Overflow));
    }
}
