//! Two ways to say where a message ends in a TCP byte stream, side by side.
//!
//! - **Lines** (the chat, lessons 3 and 5): a message ends at `\n`. Simple,
//!   readable with `nc`, but a message cannot contain `\n`, and the reader
//!   must scan every byte for the end.
//! - **A length prefix** (here; lesson 4 uses a 128-byte text header for the
//!   same idea): 4 bytes, the payload's length as a big-endian `u32`, then
//!   the payload. Any bytes may be sent, and the reader knows at once how
//!   much to wait for, and can refuse a length over its limit before the
//!   bytes even arrive.
//!
//! ```text
//!  0        4                       4 + len
//!  +--------+-----------------------+--------+-------
//!  |  len   |   payload (len bytes) |  len   | ...
//!  +--------+-----------------------+--------+-------
//!   u32, big-endian (network byte order)
//! ```

/// Bytes of the length prefix.
pub const PREFIX_BYTES: usize = 4;

/// The largest payload a [`FrameBuffer`] accepts: a peer cannot make us
/// wait for (and buffer) 4 GiB by declaring it.
pub const MAX_FRAME_BYTES: usize = 1024 * 1024;

/// Frames `payload`: its length as 4 big-endian bytes, then the payload.
pub fn encode(payload: &[u8]) -> Vec<u8> {
    // Lengths past u32 cannot be framed; MAX_FRAME_BYTES keeps us far below.
    let len = u32::try_from(payload.len()).unwrap_or(u32::MAX);
    let mut frame = Vec::with_capacity(PREFIX_BYTES + payload.len());
    frame.extend_from_slice(&len.to_be_bytes());
    frame.extend_from_slice(payload);
    frame
}

/// A declared length over [`MAX_FRAME_BYTES`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameTooLong(pub usize);

/// Assembles frames from bytes that arrive in pieces of any size, like
/// lesson 3's `LineBuffer` does for lines.
#[derive(Debug, Default)]
pub struct FrameBuffer {
    pending: Vec<u8>,
}

impl FrameBuffer {
    /// Adds bytes just read.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete payload, if all of it has arrived; an error as soon
    /// as a prefix declares more than [`MAX_FRAME_BYTES`]. After an error the
    /// stream is out of step (the payload that follows is not a prefix):
    /// close the connection, as a server does with an over-long line.
    pub fn next_frame(&mut self) -> Option<Result<Vec<u8>, FrameTooLong>> {
        // TODO: exercise 9: read the prefix (when 4 bytes are there), check
        // the length, and take the payload once all of it has arrived.
        // BEGIN SOLUTION exercise 9
        let prefix: [u8; PREFIX_BYTES] = self.pending.get(..PREFIX_BYTES)?.try_into().ok()?;
        let len = u32::from_be_bytes(prefix) as usize;
        if len > MAX_FRAME_BYTES {
            return Some(Err(FrameTooLong(len)));
        }
        if self.pending.len() < PREFIX_BYTES + len {
            return None; // the rest of the payload is still on its way
        }
        let frame: Vec<u8> = self
            .pending
            .drain(..PREFIX_BYTES + len)
            .skip(PREFIX_BYTES)
            .collect();
        Some(Ok(frame))
        // END SOLUTION exercise 9
    }

    /// Bytes received that do not make a whole frame yet.
    pub fn unfinished(&self) -> &[u8] {
        &self.pending
    }
}
