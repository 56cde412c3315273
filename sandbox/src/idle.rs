//! Which client goes idle next, without looking at every client.
//!
//! Scanning all 10,000 clients on every wake-up to find the idle ones would
//! cost more than the work the wake-up was for. Instead, a min-heap holds
//! one `(deadline, client)` entry per client, earliest first: the loop only
//! ever looks at the top, and the readiness wait sleeps until that deadline.
//!
//! Activity does not touch the heap (that would cost a heap update per
//! message). A client's entry keeps its *old* deadline; when it comes due,
//! the room compares it with the client's real deadline and, if the client
//! spoke since, pushes a new entry instead of expiring it ("lazy deletion").

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::time::Instant;

use crate::room::ClientId;

/// Deadlines, earliest on top.
#[derive(Debug, Default)]
pub struct IdleTimers {
    // Reverse turns std's max-heap into a min-heap.
    heap: BinaryHeap<Reverse<(Instant, ClientId)>>,
}

impl IdleTimers {
    /// Remembers that `id` expires at `deadline` unless it speaks.
    pub fn watch(&mut self, id: ClientId, deadline: Instant) {
        self.heap.push(Reverse((deadline, id)));
    }

    /// The earliest deadline, to bound how long the loop may wait.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.heap.peek().map(|Reverse((deadline, _))| *deadline)
    }

    /// Takes the next entry whose deadline is at or before `now`, if any.
    pub fn pop_due(&mut self, now: Instant) -> Option<(Instant, ClientId)> {
        if self.next_deadline()? > now {
            return None;
        }
        self.heap.pop().map(|Reverse(entry)| entry)
    }

    /// Entries held (one per client, plus stale ones not yet due).
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn deadlines_come_out_earliest_first_and_only_when_due() {
        let start = Instant::now();
        let mut timers = IdleTimers::default();
        timers.watch(7, start + Duration::from_secs(3));
        timers.watch(8, start + Duration::from_secs(1));
        assert_eq!(timers.next_deadline(), Some(start + Duration::from_secs(1)));
        assert_eq!(timers.pop_due(start), None);
        let later = start + Duration::from_secs(2);
        assert_eq!(
            timers.pop_due(later),
            Some((start + Duration::from_secs(1), 8))
        );
        assert_eq!(timers.pop_due(later), None);
        assert_eq!(timers.len(), 1);
    }
}
