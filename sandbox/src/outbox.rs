//! A client's outgoing bytes, waiting for its socket to accept them.
//!
//! A non-blocking `write` may take all of a buffer, part of it (a *partial
//! write*: the kernel's send buffer had room for only that much), or nothing
//! (`WouldBlock`: the send buffer is full because the peer reads slowly).
//! Whatever it did not take waits here until the socket is writable again.
//! The queue is bounded: a client that never reads cannot make the server
//! hold more than [`MAX_OUTBOX_BYTES`] for it.

use std::collections::VecDeque;
use std::io::{self, Write};

/// How many unsent bytes one client may have waiting before it is dropped as
/// too slow. A client that reads as fast as it can may still fall a few
/// hundred lines behind a fast sender (lesson 3's check floods it 256 lines
/// of 1 KiB ahead), so the bound must sit above that: 512 KiB. The price is
/// the worst case, every client stuck at once: 10,000 x 512 KiB = 5 GiB,
/// which `--max-clients` bounds. The usual case costs nothing: an empty
/// outbox gives its memory back (see `KEEP_CAPACITY_BYTES`).
pub const MAX_OUTBOX_BYTES: usize = 512 * 1024;

/// Once empty, an outbox keeps at most this much capacity, so that one burst
/// does not pin its memory for ever.
const KEEP_CAPACITY_BYTES: usize = 4 * 1024;

/// The bytes would take the outbox past its limit: the client reads too slowly.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Overflow;

/// What one [`Outbox::write_to`] achieved.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flushed {
    /// Everything went out; nothing waits.
    All,
    /// The socket took only part (or none) and said `WouldBlock`: wait for it
    /// to become writable. Holds how many bytes still wait.
    WouldBlock(usize),
}

/// The bounded queue of bytes still to send to one client.
#[derive(Debug, Default)]
pub struct Outbox {
    bytes: VecDeque<u8>,
}

impl Outbox {
    /// Queues `line`, or refuses it whole if it does not fit.
    pub fn push(&mut self, line: &[u8]) -> Result<(), Overflow> {
        if self.bytes.len() + line.len() > MAX_OUTBOX_BYTES {
            return Err(Overflow);
        }
        self.bytes.extend(line);
        Ok(())
    }

    /// Bytes waiting.
    pub fn len(&self) -> usize {
        self.bytes.len()
    }

    pub fn is_empty(&self) -> bool {
        self.bytes.is_empty()
    }

    /// Writes as much as `stream` takes now, without waiting. Each `write`
    /// may be partial: we drop only the bytes it reports written, and try the
    /// rest, until the outbox is empty or the socket would block.
    pub fn write_to(&mut self, stream: &mut impl Write) -> io::Result<Flushed> {
        while !self.bytes.is_empty() {
            // A VecDeque may wrap around: write its first contiguous part.
            let (front, _) = self.bytes.as_slices();
            match stream.write(front) {
                Ok(0) => return Err(io::ErrorKind::WriteZero.into()),
                Ok(n) => drop(self.bytes.drain(..n)),
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    return Ok(Flushed::WouldBlock(self.bytes.len()));
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        }
        if self.bytes.capacity() > KEEP_CAPACITY_BYTES {
            self.bytes.shrink_to(KEEP_CAPACITY_BYTES);
        }
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
    }

    impl Write for Stingy {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
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
        outbox.push(b"hello ").unwrap();
        outbox.push(b"world\n").unwrap();
        let mut socket = Stingy {
            taken: vec![],
            room: 5,
            limit: 8,
        };
        assert_eq!(
            outbox.write_to(&mut socket).unwrap(),
            Flushed::WouldBlock(4)
        );
        socket.limit = 100;
        assert_eq!(outbox.write_to(&mut socket).unwrap(), Flushed::All);
        assert_eq!(socket.taken, b"hello world\n");
    }

    #[test]
    fn a_line_that_does_not_fit_is_refused_whole() {
        let mut outbox = Outbox::default();
        outbox.push(&vec![b'x'; MAX_OUTBOX_BYTES - 2]).unwrap();
        assert_eq!(outbox.push(b"abc"), Err(Overflow));
        assert_eq!(outbox.len(), MAX_OUTBOX_BYTES - 2);
        assert_eq!(outbox.push(b"ab"), Ok(()));
    }
}
