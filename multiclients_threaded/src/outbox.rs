//! A client's outbox: the queue between the room, which puts lines in, and
//! the client's writer thread, which takes them out and writes them to the
//! socket. This file is where the server's flow control lives.
//!
//! - **Putting never waits.** The room puts lines in while it holds its lock,
//!   and nothing done under that lock may wait for the network.
//! - **Nothing put is lost.** There is no "queue full, line dropped": a
//!   client that keeps reading gets every line.
//! - **The queue is bounded by back-pressure instead.** Once more than the
//!   *high-water mark* waits in an outbox, [`Outbox::put`] says so, and the
//!   sender's thread, after it let go of the room's lock, waits on a
//!   [`Behind`] handle until the writer has taken the queue back under the
//!   mark. While it waits it does not read its own socket, so the kernel's
//!   buffers for that sender fill, its TCP window closes, and the sending
//!   *program* is slowed down by TCP itself. The slowest reader sets the pace;
//!   memory stays bounded (the mark, plus what each sender delivered before it
//!   had to wait).
//! - **A [`Budget`] bounds all outboxes together**, so that many clients each
//!   just under their mark cannot add up to more memory than the server may use.
//! - **A client that reads nothing is found by its writer**, not here (see
//!   `server.rs`): its `write` makes no progress for the stall timeout, or it
//!   keeps senders waiting (its queue over the mark) while one batch takes
//!   longer than that to go out. The writer then ends, and dropping its
//!   [`Queue`] discards what was queued and wakes every sender that waited.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Condvar, Mutex, MutexGuard, PoisonError};

use crate::room::Line;

/// The putting end, kept in the room's registry. Dropping it (the client
/// left the room) tells the writer to send what is queued and finish.
pub struct Outbox {
    shared: Arc<Shared>,
}

/// The taking end, owned by the client's writer thread. Dropping it (the
/// writer ended) discards what is still queued and releases the senders
/// waiting for this client.
pub struct Queue {
    shared: Arc<Shared>,
}

/// A handle a sender keeps, after the room's lock is released, on an outbox
/// that was over its mark: [`Behind::wait`] returns once it is not.
pub struct Behind {
    shared: Arc<Shared>,
}

struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines (or for the room to let go).
    queued: Condvar,
    /// Senders wait here for the queue to fall under the mark.
    drained: Condvar,
    high_water_bytes: usize,
    budget: Arc<Budget>,
}

#[derive(Default)]
struct State {
    lines: VecDeque<Line>,
    bytes: usize,
    /// The room dropped its [`Outbox`]: no more lines will come.
    room_gone: bool,
    /// The writer dropped its [`Queue`]: lines put now go nowhere.
    writer_gone: bool,
    /// Senders in [`Behind::wait`]: the writer notifies only if there are any
    /// (a notification is a system call, even when nobody listens).
    senders_waiting: usize,
}

/// A new outbox whose writer should be waited for once more than
/// `high_water_bytes` are queued, counting its bytes in `budget` too.
pub fn outbox(high_water_bytes: usize, budget: &Arc<Budget>) -> (Outbox, Queue) {
    let shared = Arc::new(Shared {
        state: Mutex::default(),
        queued: Condvar::new(),
        drained: Condvar::new(),
        high_water_bytes,
        budget: Arc::clone(budget),
    });
    let outbox = Outbox {
        shared: Arc::clone(&shared),
    };
    (outbox, Queue { shared })
}

impl Shared {
    /// No code panics while holding this lock (see `Room::lock`).
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox {
    /// Queues `line`; never waits and never refuses. Returns a [`Behind`]
    /// when the queue is now over the high-water mark: the caller should
    /// wait on it once it holds no lock.
    #[must_use]
    pub fn put(&self, line: &Line) -> Option<Behind> {
        let mut state = self.shared.lock();
        if state.writer_gone {
            return None; // the client is being disconnected: nobody will read it
        }
        let was_empty = state.lines.is_empty();
        state.lines.push_back(Arc::clone(line)); // a pointer, not a copy
        state.bytes += line.len();
        self.shared.budget.add(line.len());
        let over = state.bytes > self.shared.high_water_bytes;
        drop(state);
        // The writer only ever sleeps on an empty queue: wake it for the first line.
        if was_empty {
            self.shared.queued.notify_one();
        }
        over.then(|| Behind {
            shared: Arc::clone(&self.shared),
        })
    }

    /// How many bytes wait in this outbox (for tests and `/who`-style tools).
    pub fn queued_bytes(&self) -> usize {
        self.shared.lock().bytes
    }
}

impl Drop for Outbox {
    fn drop(&mut self) {
        self.shared.lock().room_gone = true;
        self.shared.queued.notify_one();
    }
}

impl Behind {
    /// Waits until the outbox is back under its high-water mark, or its
    /// writer has ended. Call it with no lock held. It cannot wait for ever:
    /// the writer either makes progress or gives up after the stall timeout.
    pub fn wait(&self) {
        let mut state = self.shared.lock();
        state.senders_waiting += 1;
        while state.bytes > self.shared.high_water_bytes && !state.writer_gone {
            // wait() releases the lock while asleep and takes it back on waking.
            state = self
                .shared
                .drained
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        state.senders_waiting -= 1;
    }
}

impl Queue {
    /// Waits for lines, then moves all that are queued (up to about
    /// `max_bytes`) into `batch`, so that the writer sends them with one
    /// `write`. Returns `false` once the room let go and nothing is left.
    pub fn take_into(&self, batch: &mut Vec<u8>, max_bytes: usize) -> bool {
        let mut state = self.shared.lock();
        while state.lines.is_empty() && !state.room_gone {
            state = self
                .shared
                .queued
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        let mut taken = 0;
        while let Some(line) = state.lines.front() {
            if taken > 0 && taken + line.len() > max_bytes {
                break;
            }
            batch.extend_from_slice(line.as_bytes());
            taken += line.len();
            state.lines.pop_front();
        }
        state.bytes -= taken;
        let wake = state.senders_waiting > 0;
        drop(state);
        self.shared.budget.remove(taken);
        if wake {
            self.shared.drained.notify_all();
        }
        taken > 0
    }
}

impl Queue {
    /// Whether more than the high-water mark is queued: senders are waiting.
    pub fn is_over_mark(&self) -> bool {
        self.shared.lock().bytes > self.shared.high_water_bytes
    }

    /// Whether nothing is queued right now.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().lines.is_empty()
    }
}

impl Drop for Queue {
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        state.writer_gone = true;
        state.lines.clear();
        let discarded = std::mem::take(&mut state.bytes);
        drop(state);
        self.shared.budget.remove(discarded);
        self.shared.drained.notify_all();
    }
}

/// The bytes queued in every outbox of the server, against one limit: the
/// server's memory budget for lines on their way.
pub struct Budget {
    queued_bytes: AtomicUsize,
    limit_bytes: usize,
    /// Guards nothing but the wait below (the count is atomic, so that the
    /// many puts do not contend for a lock).
    waiters: Mutex<()>,
    below: Condvar,
}

impl Budget {
    pub fn new(limit_bytes: usize) -> Arc<Budget> {
        Arc::new(Budget {
            queued_bytes: AtomicUsize::new(0),
            limit_bytes,
            waiters: Mutex::new(()),
            below: Condvar::new(),
        })
    }

    fn add(&self, bytes: usize) {
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    fn remove(&self, bytes: usize) {
        let before = self.queued_bytes.fetch_sub(bytes, Ordering::Relaxed);
        if before > self.limit_bytes && before - bytes <= self.limit_bytes {
            // Taking the lock before notifying closes the gap between a
            // waiter's check and its sleep, so no wake-up is lost.
            let _guard = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
            self.below.notify_all();
        }
    }

    /// Bytes queued across the server right now.
    pub fn queued_bytes(&self) -> usize {
        self.queued_bytes.load(Ordering::Relaxed)
    }

    /// Waits while the server as a whole has more than its budget queued.
    /// Like [`Behind::wait`], only with no lock held.
    pub fn wait_until_under(&self) {
        if self.queued_bytes() <= self.limit_bytes {
            return; // the usual case: no lock taken
        }
        let mut guard = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        while self.queued_bytes() > self.limit_bytes {
            guard = self
                .below
                .wait(guard)
                .unwrap_or_else(PoisonError::into_inner);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::thread;

    fn line(text: &str) -> Line {
        Line::from(text)
    }

    fn take_all(queue: &Queue) -> String {
        let mut batch = Vec::new();
        queue.take_into(&mut batch, usize::MAX);
        String::from_utf8(batch).unwrap()
    }

    #[test]
    fn lines_come_out_in_order_all_waiting_lines_in_one_batch() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(100, &budget);
        assert!(outbox.put(&line("one\n")).is_none());
        assert!(outbox.put(&line("two\n")).is_none());
        assert_eq!(budget.queued_bytes(), 8);
        assert_eq!(take_all(&queue), "one\ntwo\n");
        assert_eq!(budget.queued_bytes(), 0);
    }

    #[test]
    fn a_put_past_the_mark_is_kept_and_says_the_writer_is_behind() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(10, &budget);
        assert!(outbox.put(&line("0123456789\n")).is_some()); // 11 bytes: over
        assert!(outbox.put(&line("x\n")).is_some()); // still queued
        let behind = outbox.put(&line("y\n")).unwrap();
        let waiting = thread::spawn(move || behind.wait());
        assert_eq!(take_all(&queue), "0123456789\nx\ny\n");
        waiting.join().unwrap(); // the take woke it
    }

    #[test]
    fn a_batch_stops_before_max_bytes_but_takes_at_least_one_line() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(100, &budget);
        let _ = outbox.put(&line("aaaa\n"));
        let _ = outbox.put(&line("bb\n"));
        let mut batch = Vec::new();
        assert!(queue.take_into(&mut batch, 2));
        assert_eq!(batch, b"aaaa\n");
    }

    #[test]
    fn the_queue_ends_when_the_outbox_is_dropped_and_drained() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(100, &budget);
        let _ = outbox.put(&line("last\n"));
        drop(outbox);
        assert_eq!(take_all(&queue), "last\n");
        assert!(!queue.take_into(&mut Vec::new(), 100));
    }

    #[test]
    fn when_the_writer_ends_its_lines_are_discarded_and_waiting_senders_released() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(4, &budget);
        let behind = outbox.put(&line("stuck line\n")).unwrap();
        let waiting = thread::spawn(move || behind.wait());
        drop(queue);
        waiting.join().unwrap();
        assert_eq!(budget.queued_bytes(), 0);
        assert!(outbox.put(&line("nobody\n")).is_none());
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[test]
    fn the_budget_holds_senders_until_the_server_total_is_under_it() {
        let budget = Budget::new(10);
        let (outbox, queue) = outbox(1000, &budget);
        let _ = outbox.put(&line("0123456789ab\n"));
        let waiting = {
            let budget = Arc::clone(&budget);
            thread::spawn(move || budget.wait_until_under())
        };
        assert_eq!(take_all(&queue), "0123456789ab\n");
        waiting.join().unwrap();
    }
}
