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
/// one at a time, within its budget.
pub const READ_BUF_BYTES: usize = 16 * 1024;

/// Bytes read from one client and not yet handled.
#[derive(Debug, Default)]
pub struct Inbox {
    bytes: Vec<u8>,
    /// Where the next line starts (everything before was handled).
    start: usize,
    /// How far past `start` has been searched for `\n` already.
    scanned: usize,
}

/// What one [`Inbox::read_from`] found.
#[derive(Debug, PartialEq, Eq)]
pub enum Arrived {
    /// This many bytes arrived.
    Bytes(usize),
    /// The peer closed its side (FIN): no more will come.
    Closed,
    /// Nothing there now (`WouldBlock`).
    Empty,
}

impl Inbox {
    /// One non-blocking `read` into `scratch` (shared by all clients, so
    /// that asking an idle socket costs no memory), whatever arrived then
    /// appended to what waits.
    pub fn read_from(&mut self, stream: &mut impl Read, scratch: &mut [u8]) -> io::Result<Arrived> {
        let n = loop {
            match stream.read(scratch) {
                Ok(0) => return Ok(Arrived::Closed),
                Ok(n) => break n,
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => {
                    self.release();
                    return Ok(Arrived::Empty);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return Err(err),
            }
        };
        if self.start > 0 {
            // Move the unhandled bytes (at most a half line) to the front.
            self.bytes.drain(..self.start);
            self.start = 0;
        }
        self.bytes.extend_from_slice(&scratch[..n]);
        Ok(Arrived::Bytes(n))
    }

    /// The next complete line, without its `\n` (and `\r`), as a range of
    /// bytes to take with [`Inbox::line`]; `None` if no complete line waits;
    /// an error as soon as a line is longer than [`MAX_LINE_BYTES`].
    pub fn next_line(&mut self) -> Option<Result<std::ops::Range<usize>, LineTooLong>> {
        let from = self.start + self.scanned;
        match self.bytes[from..].iter().position(|&b| b == b'\n') {
            Some(at) => {
                let end = from + at;
                let line = self.start..end;
                self.start = end + 1;
                self.scanned = 0;
                let content = match self.bytes[line.clone()].last() {
                    Some(b'\r') => line.start..line.end - 1,
                    _ => line,
                };
                Some(if content.len() > MAX_LINE_BYTES {
                    Err(LineTooLong)
                } else {
                    Ok(content)
                })
            }
            // No line end yet: past the limit (plus room for `\r`), it is too long.
            None if self.bytes.len() - self.start > MAX_LINE_BYTES + 1 => Some(Err(LineTooLong)),
            None => {
                self.scanned = self.bytes.len() - self.start;
                None
            }
        }
    }

    /// At the end of the input (the client closed): the last line, which
    /// never got its `\n`, if any bytes of it came.
    pub fn last_line(&mut self) -> Option<std::ops::Range<usize>> {
        if self.is_empty() {
            return None;
        }
        let line = self.start..self.bytes.len();
        self.start = self.bytes.len();
        self.scanned = 0;
        Some(line)
    }

    /// The bytes of a range [`Inbox::next_line`] returned.
    pub fn line(&self, range: std::ops::Range<usize>) -> &[u8] {
        &self.bytes[range]
    }

    /// Whether unhandled bytes wait (a whole line, or part of one).
    pub fn is_empty(&self) -> bool {
        self.start == self.bytes.len()
    }

    /// Bytes of memory held.
    pub fn capacity(&self) -> usize {
        self.bytes.capacity()
    }

    /// Gives memory back once the socket has nothing more: none at all if
    /// every byte was handled, else just enough for the half line.
    pub fn release(&mut self) {
        if self.is_empty() {
            *self = Inbox::default();
        } else {
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
        assert_eq!(lines(&mut inbox), Vec::<String>::new());
        read(&mut inbox, b"lo\r\nworld\n!");
        assert_eq!(lines(&mut inbox), ["hello", "world"]);
        assert!(!inbox.is_empty());
        inbox.release();
        assert_eq!(inbox.capacity(), 1);
        read(&mut inbox, b"\n");
        assert_eq!(lines(&mut inbox), ["!"]);
        inbox.release();
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
        let long = vec![b'x'; MAX_LINE_BYTES + 2];
        read(&mut inbox, &long);
        assert_eq!(inbox.next_line(), Some(Err(LineTooLong)));
    }
}
