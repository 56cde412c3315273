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
//!
//! Three handles share one `Shared` block through an `Arc`, one per kind of
//! thread, so each thread can do only its own part: the room (client threads,
//! under the room's lock) holds the [`Outbox`] and puts; the writer thread
//! holds the [`Queue`] and takes; a sender that put past the mark holds a
//! [`Behind`] for as long as it waits. A `Mutex` guards the queue, and two
//! `Condvar`s let a thread sleep until another one changed it: a `Condvar`
//! wait releases the mutex while asleep, so the thread it waits for can take
//! the lock and make the change. Every lock here is held briefly (a few
//! pointer moves, at most one batch copied), never across a `write`, and
//! never while taking another lock of this file.

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
///
/// It holds the `Arc`, not a borrow, because the room's lock is gone by the
/// time the sender waits: the client may leave meanwhile, and the shared
/// block must outlive the registry entry for the wait to end cleanly.
pub struct Behind {
    shared: Arc<Shared>,
}

/// What the three handles share; freed when the last of them is dropped.
struct Shared {
    state: Mutex<State>,
    /// The writer waits here for lines (or for the room to let go).
    queued: Condvar,
    /// Senders wait here for the queue to fall under the mark.
    drained: Condvar,
    /// The mark itself (`OUTBOX_BYTES` in `server.rs`, 256 KiB): enough for
    /// a burst of thousands of short lines before anyone has to wait.
    high_water_bytes: usize,
    /// The server-wide count this outbox adds to and takes from.
    budget: Arc<Budget>,
}

/// The queue and what the threads tell each other through it. Read and
/// changed only with `Shared::state` locked.
#[derive(Default)]
struct State {
    /// Lines in the order they were put, so each client reads them in the
    /// order the room delivered them.
    lines: VecDeque<Line>,
    /// The bytes of all of `lines`, kept as a sum so that neither `put` nor
    /// a waiting sender has to walk the queue to compare it with the mark.
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
///
/// Called by the client's thread before the writer starts: the [`Outbox`]
/// goes into the room with the new member, the [`Queue`] to the writer.
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
    ///
    /// Taken by the room (under its own lock, in `put`), by the writer and by
    /// waiting senders; each holds it for a few instructions, so `lock()`
    /// here never waits long.
    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Outbox {
    /// Queues `line`; never waits and never refuses. Returns a [`Behind`]
    /// when the queue is now over the high-water mark: the caller should
    /// wait on it once it holds no lock.
    ///
    /// The line is queued *then* the mark is checked: a put over the mark is
    /// kept, and only the sender's next delivery is held back. Refusing it
    /// would lose a line; waiting here would block the room's lock.
    #[must_use]
    pub fn put(&self, line: &Line) -> Option<Behind> {
        let mut state = self.shared.lock();
        if state.writer_gone {
            return None; // the client is being disconnected: nobody will read it
        }
        let was_empty = state.lines.is_empty();
        state.lines.push_back(Arc::clone(line)); // a pointer, not a copy
        state.bytes += line.len();
        // Counted with this outbox's lock held: `Queue`'s drop removes
        // `bytes` from the budget under the same lock, so the budget is never
        // told to remove bytes before it was told to add them (the unsigned
        // counter would wrap round to a huge number and hold every sender).
        self.shared.budget.add(line.len());
        let over = state.bytes > self.shared.high_water_bytes;
        // Unlocked before notifying: a woken writer's first act is to take
        // this lock, and it should not find it still held.
        drop(state);
        // The writer only ever sleeps on an empty queue: wake it for the first line.
        // (It checks for lines with the lock held before it sleeps, and the
        // wait releases the lock atomically, so no line can slip in between
        // its check and its sleep unnoticed.)
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
    /// The room removed the client (it left, or was disconnected). The
    /// writer may be asleep on an empty queue: wake it, so that it sees
    /// `room_gone` and ends instead of waiting for lines that never come.
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
        // Counted before the check, with the lock held: a writer that takes
        // lines after this sees a waiter and notifies.
        state.senders_waiting += 1;
        // A loop, not one wait: the writer wakes every waiter after each
        // batch, the queue may still be over the mark (other senders keep
        // filling it), and a `Condvar` may also wake with nothing changed.
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
        // Sleeps only on an empty queue, which is what lets `put` notify only
        // for a first line. Lines left after the room let go are still sent:
        // a client's last notices (the room is full, line too long) reach it.
        while state.lines.is_empty() && !state.room_gone {
            state = self
                .shared
                .queued
                .wait(state)
                .unwrap_or_else(PoisonError::into_inner);
        }
        // The bytes are copied into `batch` with the lock held, and a `put`
        // (with the room's lock held too) may wait for that: it stays short,
        // at most `max_bytes` (64 KiB) of `memcpy`, microseconds. The `write`
        // that follows, the slow part, happens with no lock held.
        let mut taken = 0;
        while let Some(line) = state.lines.front() {
            // At least one line, even one longer than `max_bytes`: otherwise
            // such a line would never go out.
            if taken > 0 && taken + line.len() > max_bytes {
                break;
            }
            batch.extend_from_slice(line.as_bytes());
            taken += line.len();
            // Drops this outbox's pointer; the text is freed once every
            // recipient's writer has taken it.
            state.lines.pop_front();
        }
        state.bytes -= taken;
        let wake = state.senders_waiting > 0;
        drop(state);
        self.shared.budget.remove(taken);
        // All waiting senders wait for the same thing (this queue under its
        // mark), so once it holds, all may go on: wake them all, and each
        // rechecks. `notify_one` would leave the others asleep with no one
        // left to wake them until the next batch.
        if wake {
            self.shared.drained.notify_all();
        }
        taken > 0
    }
}

impl Queue {
    /// Whether more than the high-water mark is queued: senders are waiting.
    ///
    /// The writer asks between `write` calls, to tell a client that holds
    /// up the room (stalled with senders waiting) from one that is merely
    /// slow while nobody waits for it.
    pub fn is_over_mark(&self) -> bool {
        self.shared.lock().bytes > self.shared.high_water_bytes
    }

    /// Whether nothing is queued right now.
    ///
    /// The writer asks after a batch went out, to give back the memory of a
    /// large batch buffer while the client is idle. A line may arrive just
    /// after: the answer is a hint, not a promise.
    pub fn is_empty(&self) -> bool {
        self.shared.lock().lines.is_empty()
    }
}

impl Drop for Queue {
    /// The writer ended (the client left, failed, or stalled). Whatever is
    /// still queued can never be written: discard it, give its bytes back
    /// to the budget, and wake every sender waiting on this outbox, which
    /// would otherwise wait for a writer that no longer exists.
    fn drop(&mut self) {
        let mut state = self.shared.lock();
        // Set with the lock held: a `put` after this queues nothing, and a
        // sender's loop in `Behind::wait` sees it and returns.
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
///
/// A line sent to a hundred clients counts a hundred times, although its
/// text is in memory once (`Line` is shared), and the writers' batch
/// buffers (up to 64 KiB each) are not counted: the budget measures the
/// bytes the writers still have to send, not the exact heap size.
pub struct Budget {
    /// Added to by every `put`, taken from by every writer: one atomic
    /// counter, so that the many puts do not queue up for a lock.
    queued_bytes: AtomicUsize,
    /// `--queue-budget-mib` in bytes: past it, every sender waits.
    limit_bytes: usize,
    /// Guards nothing but the wait below (the count is atomic, so that the
    /// many puts do not contend for a lock).
    waiters: Mutex<()>,
    /// Senders sleep here until the count falls back to the limit.
    below: Condvar,
}

impl Budget {
    /// One per server, shared (`Arc`) by the room, every outbox and every
    /// pending [`Pressure`](crate::room::Pressure).
    pub fn new(limit_bytes: usize) -> Arc<Budget> {
        Arc::new(Budget {
            queued_bytes: AtomicUsize::new(0),
            limit_bytes,
            waiters: Mutex::new(()),
            below: Condvar::new(),
        })
    }

    /// `Relaxed`: the counter orders nothing else in memory; the lines travel
    /// under each outbox's own lock. It only has to add up, which every
    /// atomic operation guarantees.
    fn add(&self, bytes: usize) {
        self.queued_bytes.fetch_add(bytes, Ordering::Relaxed);
    }

    /// Takes back bytes a writer sent (or discarded), and wakes the waiting
    /// senders if that brought the server under its limit.
    fn remove(&self, bytes: usize) {
        // `fetch_sub` returns the count before this subtraction: exactly one
        // `remove` sees each crossing from over the limit to under it, so the
        // waiters are woken once per crossing, not on every line sent.
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
    ///
    /// Every queued byte sits in some outbox whose writer either sends it or
    /// gives up on its client after the stall timeout and discards it, so
    /// this wait ends too.
    pub fn wait_until_under(&self) {
        if self.queued_bytes() <= self.limit_bytes {
            return; // the usual case: no lock taken
        }
        let mut guard = self.waiters.lock().unwrap_or_else(PoisonError::into_inner);
        // Checked again with the lock held (a writer may have brought the
        // count down since the check above), and after every wake-up: other
        // senders may have put lines before this thread ran again.
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
    //! The queue on its own, no sockets: a spawned thread plays the sender
    //! that waits, and the test's thread plays the writer that releases it.
    //! Each waiting thread is released by a call the test makes after
    //! starting it, and joined, which proves the wake-up arrived (a lost
    //! wake-up would hang the test rather than fail it).
    use super::*;
    use std::thread;

    fn line(text: &str) -> Line {
        Line::from(text)
    }

    /// What the writer would send next, all of it in one batch.
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
        // The budget counts what waits in outboxes, and only that.
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
        // Nothing was dropped past the mark: all three lines come out.
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
        // A limit smaller than the first line: that line goes out anyway.
        assert!(queue.take_into(&mut batch, 2));
        assert_eq!(batch, b"aaaa\n");
    }

    #[test]
    fn the_queue_ends_when_the_outbox_is_dropped_and_drained() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(100, &budget);
        let _ = outbox.put(&line("last\n"));
        drop(outbox);
        // The room let go, but what it queued first still goes out.
        assert_eq!(take_all(&queue), "last\n");
        assert!(!queue.take_into(&mut Vec::new(), 100));
    }

    #[test]
    fn when_the_writer_ends_its_lines_are_discarded_and_waiting_senders_released() {
        let budget = Budget::new(1000);
        let (outbox, queue) = outbox(4, &budget);
        let behind = outbox.put(&line("stuck line\n")).unwrap();
        let waiting = thread::spawn(move || behind.wait());
        // What a writer that gave up on its client does.
        drop(queue);
        waiting.join().unwrap();
        assert_eq!(budget.queued_bytes(), 0);
        // Later puts are not kept: nobody is left to send them.
        assert!(outbox.put(&line("nobody\n")).is_none());
        assert_eq!(outbox.queued_bytes(), 0);
    }

    #[test]
    fn the_budget_holds_senders_until_the_server_total_is_under_it() {
        let budget = Budget::new(10);
        // A mark far above the budget: only the budget can hold the sender.
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
