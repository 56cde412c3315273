//! A client's outgoing bytes, waiting for its socket to accept them.
//!
//! A non-blocking `write` may take all of a buffer, part of it (a *partial
//! write*: the kernel's send buffer had room for only that much), or nothing
//! (`WouldBlock`: the send buffer is full because the peer reads slowly).
//! Whatever it did not take waits here until the socket is writable again.
//!
//! ## Why the bytes sit in one flat buffer
//! Every line queued for a client is appended to one `Vec<u8>`, so however
//! many lines wait, [`Outbox::write_to`] hands them all to the kernel in
//! **one** `write` call (the kernel takes what fits). One system call per
//! client per turn, instead of one per line, is most of what makes a
//! one-thread chat fast.
//!
//! ## Why the outbox has a high-water mark, not a hard limit
//! An outbox is *bounded by flow control*, not by refusing bytes: when one
//! grows past [`HIGH_WATER_BYTES`], the room stops reading input from every
//! sender (see [`room`](crate::room)) until it drains, so it can overshoot
//! the mark by at most one line's worth plus a few notices. Nothing queued
//! is ever thrown away for a client that keeps reading.
//!
//! ## Why an empty outbox frees its memory
//! 10,000 idle clients that each kept a few kilobytes of capacity after one
//! broadcast would pin tens of megabytes for nothing. An outbox that has
//! written everything gives its buffer back to the allocator: memory is
//! held only while bytes are waiting.

use std::io::{self, Write};

/// Past this many unsent bytes, a client counts as *behind*: the room stops
/// reading senders until it is below again. 256 KiB is far more than a
/// client that reads as fast as it can ever falls behind between two turns
/// of the loop, and small enough that 100 clients behind at once hold 25 MiB.
///
/// The kernel's own send buffer sits in front of it (from 16 KiB to a few
/// MiB on Linux, which grows it as the connection goes): an outbox only
/// starts to fill once that buffer is full, that is once the client has
/// stopped reading for a while.
pub const HIGH_WATER_BYTES: usize = 256 * 1024;

/// What one [`Outbox::write_to`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything went out; nothing waits.
    All,
    /// The socket took only part (or none) and said `WouldBlock`: wait for it
    /// to become writable. Holds how many bytes still wait.
    ///
    /// "Part" and "none" are one case for the room: bytes still wait, and
    /// the stall timer, not this result, decides whether the client is
    /// making progress.
    WouldBlock(usize),
}

/// The queue of bytes still to send to one client.
///
/// Invariants: `sent <= bytes.len()`; `bytes[sent..]` are the waiting bytes
/// in the order they were queued; every line pushed ends with `\n`.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Bytes queued; those before `sent` have been written already. They are
    /// not removed at each write (that would copy the rest every time), only
    /// when the buffer would have to grow (see `push`).
    bytes: Vec<u8>,
    /// How far `bytes` has been written (a partial write leaves it mid-way).
    sent: usize,
    /// The socket took part of a line and waits for the rest: the last byte
    /// written was not `\n`. Only `discard` needs to know.
    mid_line: bool,
}

impl Outbox {
    /// Queues `line` behind what already waits.
    pub fn push(&mut self, line: &[u8]) {
        // Moving the unsent bytes to the front costs a copy of them; doing it only
        // when the buffer is full anyway keeps it to one copy per growth, instead
        // of one per partial write.
        if self.sent > 0 && self.bytes.len() + line.len() > self.bytes.capacity() {
            // About to grow: first move the unsent bytes to the front, so
            // that the buffer grows for bytes that wait, not for bytes gone.
            self.bytes.drain(..self.sent);
            self.sent = 0;
        }
        // A `Vec` doubles its capacity when it runs out, so appending costs
        // amortised O(1) per byte, however many lines are queued.
        self.bytes.extend_from_slice(line);
    }

    /// Bytes waiting: the `sent` bytes at the front already belong to the
    /// kernel.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.sent
    }

    /// Nothing waits: the client has taken everything queued for it.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this client is behind: over [`HIGH_WATER_BYTES`]. Strictly
    /// over: a client exactly at the mark is not behind yet.
    pub fn is_over_high_water(&self) -> bool {
        self.len() > HIGH_WATER_BYTES
    }

    /// Bytes of memory held (for the memory budget and the tests): capacity,
    /// not length, because the allocator holds all of it.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Forgets the waiting lines (for a client being let go: what it did not
    /// read in time will never be read) and frees the memory. A line the
    /// socket took only part of is kept to its end, so that whatever is
    /// queued next starts on a line of its own. Returns the bytes dropped.
    ///
    /// Why keep the rest of that line: the client already has its start. Cut
    /// there, the notice queued next would be glued to it and read as the
    /// end of someone's message.
    pub fn discard(&mut self) -> usize {
        let unsent = &self.bytes[self.sent..];
        // The first `\n` in what waits ends the line the socket cut (if it cut
        // one); when the last write ended on a line end, nothing is kept.
        let keep = match unsent.iter().position(|&b| b == b'\n') {
            Some(end) if self.mid_line => end + 1,
            _ => 0,
        };
        let dropped = unsent.len() - keep;
        let rest_of_line = unsent[..keep].to_vec();
        let mid_line = self.mid_line;
        // A fresh outbox frees the old buffer (maybe megabytes) at once; the
        // kept piece, a few bytes, is queued alone.
        *self = Outbox::default();
        self.push(&rest_of_line);
        // Restored: a cut line is still cut (none of the kept piece is written
        // yet), so a second discard before the next write keeps it too.
        self.mid_line = mid_line;
        dropped
    }

    /// Writes as much as `stream` takes now, without waiting: all waiting
    /// bytes in one `write` (one system call), repeated only if the kernel
    /// took part and might take more. Returns what it did, and how many
    /// bytes went out in all (through `written`).
    ///
    /// Writing until `WouldBlock`, not just once, matters to the readiness
    /// loop: mio reports a socket writable again only after a write has
    /// found its send buffer full.
    pub fn write_to(
        &mut self,
        stream: &mut impl Write,
        written: &mut usize,
    ) -> io::Result<Flushed> {
        while self.sent < self.bytes.len() {
            match stream.write(&self.bytes[self.sent..]) {
                // No byte taken from a non-empty buffer: the socket will take nothing
                // more, ever. An error, or this loop would spin.
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    // `n` may be less than offered (a partial write): the kernel copied
                    // what fit in the send buffer; the rest stays here.
                    self.sent += n;
                    *written += n;
                    // Remember whether the kernel cut a line (`n > 0`, so `sent >= 1`).
                    self.mid_line = self.bytes[self.sent - 1] != b'\n';
                }
                // The send buffer is full: the client has not read what was sent
                // before. Not an error: keep the rest and wait to be told the socket
                // is writable (the readiness loop) or try next turn (the naive loop).
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Flushed::WouldBlock(self.len()));
                }
                // A signal came before any byte was written: nothing happened, retry.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // Anything else (EPIPE, ECONNRESET): the client is gone.
                Err(err) => return Err(err),
            }
        }
        // All sent: give the memory back (an idle client holds none). Keeping
        // the capacity would save an allocation for the next line, but a
        // client sent one big burst would then hold that much for ever.
        *self = Outbox::default();
        Ok(Flushed::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket stand-in that takes at most `room` bytes per call, then
    /// blocks once `limit` bytes are taken: partial writes and `WouldBlock`
    /// on demand, which a real socket gives only under load.
    struct Stingy {
        /// Everything written so far, to compare with what was queued.
        taken: Vec<u8>,
        /// At most this many bytes per `write` (a small send buffer).
        room: usize,
        /// In all; past it every `write` says `WouldBlock` (a full buffer).
        limit: usize,
        /// How many `write` calls were made: the system calls a socket would see.
        calls: usize,
    }

    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.calls += 1;
            let n = buf.len().min(self.room).min(self.limit - self.taken.len());
            if n == 0 {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            self.taken.extend_from_slice(&buf[..n]);
            Ok(n)
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn partial_writes_keep_every_byte_in_order() {
        let mut outbox = Outbox::default();
        outbox.push(b"hello ");
        outbox.push(b"world\n");
        let mut socket = Stingy {
            taken: vec![],
            room: 5,
            limit: 8,
            calls: 0,
        };
        let mut written = 0;
        let flushed = outbox.write_to(&mut socket, &mut written).unwrap();
        // 5 bytes, then 3, then the limit: 8 of 12 written, 4 wait.
        assert_eq!(flushed, Flushed::WouldBlock(4));
        assert_eq!(written, 8);
        // Queued behind the 4 waiting bytes; the client then reads.
        outbox.push(b"again\n");
        socket.limit = 100;
        let flushed = outbox.write_to(&mut socket, &mut written).unwrap();
        assert_eq!(flushed, Flushed::All);
        assert_eq!(socket.taken, b"hello world\nagain\n");
    }

    #[test]
    fn many_lines_go_out_in_one_write_and_the_memory_is_released() {
        let mut outbox = Outbox::default();
        for _ in 0..1000 {
            outbox.push(b"guest1: a\n");
        }
        let mut socket = Stingy {
            taken: vec![],
            room: usize::MAX,
            limit: usize::MAX,
            calls: 0,
        };
        let mut written = 0;
        assert_eq!(
            outbox.write_to(&mut socket, &mut written).unwrap(),
            Flushed::All
        );
        // 1,000 lines, one system call; then no capacity left.
        assert_eq!(socket.calls, 1);
        assert_eq!(written, 10_000);
        assert_eq!(outbox.capacity(), 0);
    }

    #[test]
    fn the_high_water_mark_is_a_signal_not_a_refusal() {
        let mut outbox = Outbox::default();
        outbox.push(&vec![b'x'; HIGH_WATER_BYTES]);
        assert!(!outbox.is_over_high_water());
        outbox.push(b"one more line\n");
        assert!(outbox.is_over_high_water());
        assert_eq!(outbox.len(), HIGH_WATER_BYTES + 14);
        assert_eq!(outbox.discard(), HIGH_WATER_BYTES + 14);
        assert!(outbox.is_empty());
    }

    #[test]
    fn discarding_keeps_the_rest_of_a_line_the_socket_took_part_of() {
        let mut outbox = Outbox::default();
        outbox.push(b"first line\nsecond\n");
        let mut socket = Stingy {
            taken: vec![],
            room: 3,
            limit: 3,
            calls: 0,
        };
        // "fir" went: the rest of "first line" is kept, "second\n" dropped.
        outbox.write_to(&mut socket, &mut 0).unwrap();
        assert_eq!(outbox.discard(), 7);
        assert_eq!(outbox.len(), 8); // "st line\n"
    }
}
