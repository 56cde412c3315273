//! Closing gently: how a server makes sure its last words arrive.
//!
//! When the server lets a client go ("bye", "idle", "line too long", "too
//! slow"), it sends a last notice and closes. The obvious way, `write` the
//! notice then `close`, can lose the notice: if the client has sent bytes
//! the server never read, closing a socket with unread input makes the
//! kernel send **RST** (reset) instead of FIN, and a reset tells the
//! client's kernel to throw away whatever it had not yet handed to the
//! program, the notice included. The client that flooded us with an
//! over-long line is exactly the one with unread input.
//!
//! So a leaving client goes through a short *draining* state, which both
//! event loops service like any socket:
//!
//! ```text
//! 1. write what its outbox holds (the notice), as the socket takes it
//! 2. shutdown(Write): FIN after those bytes ("nothing more from me")
//! 3. read and discard what it still sends, until it closes too (read = 0)
//! 4. close: now no input is unread, so the kernel sends no RST
//! ```
//!
//! Draining is bounded, so that a client cannot keep its socket open by
//! refusing to close: at most [`DRAIN_MAX_BYTES`] are read and thrown away,
//! and after [`DRAIN_TIMEOUT`] the socket is closed whatever happened.

use std::io;
use std::net::SocketAddr;
use std::time::Duration;

use plumbing::trace;

use crate::outbox::{Flushed, Outbox};
use crate::room::Connection;

/// How long a leaving client has to read its last notice and close.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How many bytes a leaving client may still send (read and discarded)
/// before the server closes anyway.
pub const DRAIN_MAX_BYTES: usize = 256 * 1024;

/// A client on its way out.
pub struct Draining<S> {
    /// The socket, still open: closing it is the last step.
    pub stream: S,
    /// Its address, for the trace and to free its per-address place.
    pub peer: SocketAddr,
    /// Its last bytes: the notice saying why it leaves.
    outbox: Outbox,
    /// Our FIN is sent (after the outbox).
    fin_sent: bool,
    /// Its FIN arrived: it will send nothing more.
    peer_closed: bool,
    /// Bytes read and thrown away so far, against [`DRAIN_MAX_BYTES`].
    discarded: usize,
}

impl<S: Connection> Draining<S> {
    pub fn new(stream: S, peer: SocketAddr, outbox: Outbox) -> Self {
        Draining {
            stream,
            peer,
            outbox,
            fin_sent: false,
            peer_closed: false,
            discarded: 0,
        }
    }

    /// Does whatever the socket allows now (write, FIN, read and discard).
    /// Returns true once the socket can be closed.
    pub fn service(&mut self) -> bool {
        if !self.fin_sent {
            match self.outbox.write_to(&mut self.stream, &mut 0) {
                Ok(Flushed::All) => {
                    // FIN goes after the bytes already in the send buffer.
                    self.stream.shutdown_write();
                    trace!("shutdown({}, Write): draining", self.peer);
                    self.fin_sent = true;
                }
                Ok(Flushed::WouldBlock(_)) => {} // writable later
                Err(_) => return true,           // gone: nothing left to save
            }
        }
        // Read only so that no input is left unread at close (which would send
        // RST); what it says is thrown away, so a small buffer on the stack does.
        let mut scrap = [0u8; 4096];
        while !self.peer_closed {
            match self.stream.read(&mut scrap) {
                // read() returned 0: its FIN. It will send nothing more.
                Ok(0) => self.peer_closed = true,
                Ok(n) => {
                    self.discarded += n;
                    if self.discarded > DRAIN_MAX_BYTES {
                        trace!("{}: over {DRAIN_MAX_BYTES} bytes while draining", self.peer);
                        return true;
                    }
                }
                // Nothing now; the loops call again when it sends more, or closes.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => break,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(_) => return true, // reset by the peer: nothing to protect
            }
        }
        // Closable once both FINs are through: no input is left unread, so
        // closing sends no RST, and the notice cannot be thrown away.
        self.fin_sent && self.peer_closed
    }
}
