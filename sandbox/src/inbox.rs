//! A client's incoming bytes, read but not yet handled as lines.
//!
//! Lesson 3's `LineBuffer` does the same job for a thread that handles every
//! line as soon as it is read. Here the room may have to *stop* in the
//! middle of a read (the turn's work budget is spent, or a recipient is
//! behind and the room holds input back), so the inbox keeps the bytes not
//! handled yet, and hands lines out one at a time without moving the rest:
//! one `read` of 16 KiB may carry thousands of short lines, and removing
//! each from the front of a `Vec` would copy the rest thousands of times.
//!
//! Its memory is held only while it holds bytes: once every line is
//! handled, the buffer goes back to the allocator (an idle client holds
//! none), and a half line waiting for its end keeps only its own size.

use std::io::{self, Read};

use multiclients_threaded::protocol::{LineTooLong, MAX_LINE_BYTES};

/// How many bytes one `read` may return. One call can bring many lines, so
/// a flooding sender costs few system calls; the room still handles them
/// one at a time, within its budget. The buffer is shared by all clients,
/// so a bigger one would cost nothing per client: only the bytes that
/// arrived are copied into a client's inbox.
pub const READ_BUF_BYTES: usize = 16 * 1024;

/// Bytes read from one client and not yet handled.
///
/// Invariants: `start <= bytes.len()`; `bytes[..start]` was handled and is
/// dropped at the next read or release; `bytes[start..start + scanned]`
/// holds no `\n`. The room reads only when no whole line waits, so the
/// buffer holds at most a half line (`MAX_LINE_BYTES` + 1) plus one read.
#[derive(Debug, Default)]
pub struct Inbox {
    /// What arrived, handled or not; no capacity at all when nothing waits.
    bytes: Vec<u8>,
    /// Where the next line starts (everything before was handled).
    start: usize,
    /// How far past `start` has been searched for `\n` already, so that a
    /// long line arriving in small pieces is searched once, not once per
    /// piece (which would cost time quadratic in its length).
    scanned: usize,
}

/// What one [`Inbox::read_from`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrived {
    /// This many bytes arrived (at least one: zero means `Closed`).
    Bytes(usize),
    /// The peer closed its side (FIN): no more will come. `read` returned 0,
    /// after every byte the peer sent had been read.
    Closed,
    /// Nothing there now (`WouldBlock`): the kernel's receive buffer is
    /// empty. For the readiness loop this is also the signal that the next
    /// byte to arrive will bring a new readable event.
    Empty,
}

impl Inbox {
    /// One non-blocking `read` into `scratch` (shared by all clients, so
    /// that asking an idle socket costs no memory), whatever arrived then
    /// appended to what waits.
    pub fn read_from(&mut self, stream: &mut impl Read, scratch: &mut [u8]) -> io::Result<Arrived> {
        // A loop only to retry after a signal: one read per call otherwise.
        let n = loop {
            match stream.read(scratch) {
                // read() returned 0: the peer sent FIN. Not an error.
                Ok(0) => return Ok(Arrived::Closed),
                // At least one byte, maybe fewer than asked: what the kernel had.
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    // The client is quiet: the moment to give memory back.
                    self.release();
                    return Ok(Arrived::Empty);
                }
                // A signal came before any byte: nothing happened, retry.
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                // ECONNRESET and the like: the room lets this client go.
                Err(err) => return Err(err),
            }
        };
        if self.start > 0 {
            // Move the unhandled bytes (at most a half line) to the front.
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        // Only what arrived is copied: a client that sent 3 bytes holds 3 bytes,
        // not a 16 KiB buffer.
        self.bytes.extend_from_slice(&scratch[..n]);
        Ok(Arrived::Bytes(n))
    }

    /// The next complete line, without its `\n` (and `\r`), as a range of
    /// bytes to take with [`Inbox::line`]; `None` if no complete line waits;
    /// an error as soon as a line is longer than [`MAX_LINE_BYTES`].
    pub fn next_line(&mut self) -> Option<Result<std::ops::Range<usize>, LineTooLong>> {
        // Search only the bytes not searched before.
        let from = self.start + self.scanned;
        match self.bytes[from..].iter().position(|&b| b == b'\n') {
            Some(at) => {
                // `at` counts from `from`: `end` is where the `\n` sits in `bytes`.
                let end = from + at;
                // A range into `bytes`, not a copy: handing a line out moves
                // nothing, and `start` steps past it and its `\n`.
                let line = self.start..end;
                self.start = end + 1;
                // The next line has not been searched at all yet.
                self.scanned = 0;
                // `\r\n` from telnet and Windows clients: the `\r` is not text.
                let content = match self.bytes[line.clone()].last() {
                    Some(b'\r') => line.start..line.end - 1,
                    _ => line,
                };
                // The limit applies to the text, as in lesson 3: a line of exactly
                // `MAX_LINE_BYTES` is fine.
                Some(if content.len() > MAX_LINE_BYTES {
                    Err(LineTooLong)
                } else {
                    Ok(content)
                })
            }
            // No line end yet: past the limit (plus room for `\r`), it is too long.
            None if self.bytes.len() - self.start > MAX_LINE_BYTES + 1 => Some(Err(LineTooLong)),
            None => {
                // No `\n` yet: remember how far was searched, and wait for more.
                self.scanned = self.bytes.len() - self.start;
                None
            }
        }
    }

    /// At the end of the input (the client closed): the last line, which
    /// never got its `\n`, if any bytes of it came. The room delivers it like
    /// any other line: `printf 'bye' | nc -N HOST PORT` does say bye.
    pub fn last_line(&mut self) -> Option<std::ops::Range<usize>> {
        if self.is_empty() {
            return None;
        }
        // Taken whole: no `\n` will ever come for it.
        let line = self.start..self.bytes.len();
        self.start = self.bytes.len();
        self.scanned = 0;
        Some(line)
    }

    /// The bytes of a range [`Inbox::next_line`] returned. The range is good
    /// until the next `read_from` or `release`, which move the bytes.
    pub fn line(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.bytes[range]
    }

    /// Whether nothing unhandled waits (no whole line, and no part of one).
    pub fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// Bytes of memory held (the tests check that a quiet client holds none).
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Gives memory back once the socket has nothing more: none at all if
    /// every byte was handled, else just enough for the half line. Called
    /// when a read finds nothing (the client went quiet), not after every
    /// line, which would move the waiting bytes once per line.
    pub fn release(&mut self) {
        if self.is_empty() {
            // Every byte handled: drop the buffer entirely.
            *self = Inbox::default();
        } else {
            // A half line waits for its end: keep its bytes alone, at the front,
            // and give the rest of the capacity back (a 16 KiB read that brought
            // 200 lines and half of one keeps about the half line).
            self.bytes.drain(..self.start);
            self.start = 0;
            self.bytes.shrink_to_fit();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(inbox: &mut Inbox, mut bytes: &[u8]) -> Arrived {
        inbox
            .read_from(&mut bytes, &mut [0; READ_BUF_BYTES])
            .unwrap()
    }

    fn lines(inbox: &mut Inbox) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(Ok(range)) = inbox.next_line() {
            out.push(String::from_utf8_lossy(inbox.line(range)).into_owned());
        }
        out
    }

    #[test]
    fn lines_come_out_whole_across_reads_and_crlf_is_trimmed() {
        let mut inbox = Inbox::default();
        assert_eq!(read(&mut inbox, b"hel"), Arrived::Bytes(3));
        // Half a line: nothing to hand out yet.
        assert_eq!(lines(&mut inbox), Vec::<String>::new());
        read(&mut inbox, b"lo\r\nworld\n!");
        assert_eq!(lines(&mut inbox), ["hello", "world"]);
        assert!(!inbox.is_empty());
        inbox.release();
        // Only the "!" of the half line is kept.
        assert_eq!(inbox.capacity(), 1);
        read(&mut inbox, b"\n");
        assert_eq!(lines(&mut inbox), ["!"]);
        inbox.release();
        // Everything handled: no memory held.
        assert_eq!(inbox.capacity(), 0);
    }

    #[test]
    fn a_last_line_without_its_end_can_still_be_taken() {
        let mut inbox = Inbox::default();
        read(&mut inbox, b"one\nlast words");
        assert_eq!(lines(&mut inbox), ["one"]);
        let last = inbox.last_line().unwrap();
        assert_eq!(inbox.line(last), b"last words");
        assert_eq!(inbox.last_line(), None);
    }

    #[test]
    fn a_line_without_end_past_the_limit_is_refused() {
        let mut inbox = Inbox::default();
        // One byte more than a line and its `\r` may take, and no `\n`: refused
        // now, not when (if ever) the line ends.
        let long = vec![b'x'; MAX_LINE_BYTES + 2];
        read(&mut inbox, &long);
        assert_eq!(inbox.next_line(), Some(Err(LineTooLong)));
    }
}
