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
pub const HIGH_WATER_BYTES: usize = 256 * 1024;

/// What one [`Outbox::write_to`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything went out; nothing waits.
    All,
    /// The socket took only part (or none) and said `WouldBlock`: wait for it
    /// to become writable. Holds how many bytes still wait.
    WouldBlock(usize),
}

/// The queue of bytes still to send to one client.
#[derive(Debug, Default)]
pub struct Outbox {
    /// Bytes queued; those before `sent` have been written already.
    bytes: Vec<u8>,
    /// How far `bytes` has been written (a partial write leaves it mid-way).
    sent: usize,
    /// The socket took part of a line and waits for the rest.
    mid_line: bool,
}

impl Outbox {
    /// Queues `line` behind what already waits.
    pub fn push(&mut self, line: &[u8]) {
        if self.sent > 0 && self.bytes.len() + line.len() > self.bytes.capacity() {
            // About to grow: first move the unsent bytes to the front, so
            // that the buffer grows for bytes that wait, not for bytes gone.
            self.bytes.drain(..self.sent);
            self.sent = 0;
        }
        self.bytes.extend_from_slice(line);
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len() - self.sent
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Whether this client is behind: over [`HIGH_WATER_BYTES`].
    pub fn is_over_high_water(&self) -> bool {
        self.len() > HIGH_WATER_BYTES
    }

    /// Bytes of memory held (for the memory budget and the tests).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Forgets the waiting lines (for a client being let go: what it did not
    /// read in time will never be read) and frees the memory. A line the
    /// socket took only part of is kept to its end, so that whatever is
    /// queued next starts on a line of its own. Returns the bytes dropped.
    pub fn discard(&mut self) -> usize {
        let unsent = &self.bytes[self.sent..];
        let keep = match unsent.iter().position(|&b| b == b'\n') {
            Some(end) if self.mid_line => end + 1,
            _ => 0,
        };
        let dropped = unsent.len() - keep;
        let rest_of_line = unsent[..keep].to_vec();
        let mid_line = self.mid_line;
        *self = Outbox::default();
        self.push(&rest_of_line);
        self.mid_line = mid_line;
        dropped
    }

    /// Writes as much as `stream` takes now, without waiting: all waiting
    /// bytes in one `write` (one system call), repeated only if the kernel
    /// took part and might take more. Returns what it did, and how many
    /// bytes went out in all (through `written`).
    pub fn write_to(
        &mut self,
        stream: &mut impl Write,
        written: &mut usize,
    ) -> io::Result<Flushed> {
        while self.sent < self.bytes.len() {
            match stream.write(&self.bytes[self.sent..]) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => {
                    self.sent += n;
                    *written += n;
                    self.mid_line = self.bytes[self.sent - 1] != b'\n';
                }
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Flushed::WouldBlock(self.len()));
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        // All sent: give the memory back (an idle client holds none).
        *self = Outbox::default();
        Ok(Flushed::All)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A socket stand-in that takes at most `room` bytes per call, then
    /// blocks once `limit` bytes are taken.
    struct Stingy {
        taken: Vec<u8>,
        room: usize,
        limit: usize,
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
        assert_eq!(flushed, Flushed::WouldBlock(4));
        assert_eq!(written, 8);
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
        outbox.write_to(&mut socket, &mut 0).unwrap();
        assert_eq!(outbox.discard(), 7);
        assert_eq!(outbox.len(), 8); // "st line\n"
    }
}
