//! # Lesson 4, `framed_header`: messages on a byte stream, with a length header
//!
//! TCP carries bytes, not messages: what one side sends in one `write` may
//! arrive in several `read`s, and two writes may arrive in one. To send
//! messages, the protocol must mark where each one ends. This lesson uses
//! the framing of the classic Python socket tutorials: a fixed-size header
//! that holds the payload's length, then the payload. (Tech With Tim's
//! tutorial uses a 64-byte header and `!DISCONNECT`; its 128-byte variants
//! use `!DISCONNECT!`. Both send raw replies: see the README's *Talking to
//! the classic tutorials*.)
//!
//! ```text
//!  header: 128 bytes                                   payload: 5 bytes
//! +---+---+---+---+-----+---+---+---+---+---+---+---+---+---+---+
//! | 5 |' '|' '|' '| ... |' '| h | e | l | l | o | 1 | 2 |' '| ...  <- next message
//! +---+---+---+---+-----+---+---+---+---+---+---+---+---+---+---+
//!   0   1   2   3        127 128                 133
//! ```
//!
//! ## Try it
//! ```text
//! terminal 1:  cargo run -p framed_header -- server
//! terminal 2:  cargo run -p framed_header -- client        (type lines; each gets "Msg received")
//!     or:      printf '%-128s%s' 5 hello | nc -N 127.0.0.1 5050     (printf pads the header;
//!              -N: half-close at the end of input, so that nc and the server both finish)
//! the tutorial's Python client (framed_header/tutorial/, port 5050):
//! terminal 1:  cargo run -p framed_header -- server --header-size 64 --raw-replies
//! terminal 2:  python3 framed_header/tutorial/client.py
//! a 128-byte tutorial server (raw replies, goodbye !DISCONNECT!, not answered):
//!              cargo run -p framed_header -- client --raw-replies --goodbye '!DISCONNECT!'
//! check it:    cargo run -p framed_header -- check          (against any server of this protocol)
//! ```
//!
//! ## What to look for
//! - [`frame::MessageReader::read_message`]: read *exactly* the header, then
//!   *exactly* the payload, looping over short reads; never a byte more.
//! - [`frame::Framing::parse_header`]: a stated grammar, checked byte by
//!   byte, and the length checked against the limit before anything is read;
//!   [`frame::Framing::check_start`] applies it to a header still arriving,
//!   so that garbage is refused at its first byte.
//! - [`server::handle_client`]: how each way a connection can end (goodbye,
//!   clean close, close mid-message, a protocol violation, idle, a client
//!   that stopped reading) is told apart.
//! - [`server`]'s `Outbox`: input through a `BufReader` (many messages per
//!   `read`), replies queued and sent in one `write` *just before the
//!   server waits for more input*, never after.
//! - [`server`]'s `Door`: what the accept loop checks before a client gets
//!   a thread (`--max-clients`, `--max-per-address`, a spare descriptor).
//!
//! ## New since the last lesson
//! Framing: lessons 1 to 3 treat the stream as bytes or as `\n`-ended lines;
//! here a message may contain anything, newlines included, because its
//! length says where it ends. Thread per client as in lesson 3; the socket
//! setup comes from lesson 1 ([`basic::net`]), the accept step from lesson
//! 2 ([`multiclients::server::accept_next`], here with a spare descriptor
//! for the moment the process runs out of them), the `check` harness and
//! the limits from the shared [`plumbing`]. Batching (many messages per
//! `read`, many replies per `write`) is new: see [`server`].
//!
//! ## Limits, on purpose
//! One thread per client (thousands of clients means thousands of threads,
//! so `--max-clients` caps them; lesson `sandbox` uses one thread for all).
//! A header costs 128 bytes even for a 2-byte message; real protocols use a
//! binary length of 4 bytes, or a varint.

pub mod check;
pub mod client;
pub mod frame;
pub mod server;

/// The port this lesson uses unless told otherwise (see the contract).
pub const DEFAULT_PORT: u16 = 5050;

/// The server's answer to every message, as in the tutorial.
pub const REPLY: &str = "Msg received";

/// This protocol's goodbye: answered, then the server closes the connection.
pub const DISCONNECT: &str = "!DISCONNECT!";

/// The tutorial's goodbye (`DISCONNECT_MESSAGE = "!DISCONNECT"`), accepted
/// too, and the one our client sends, because both servers understand it.
pub const TUTORIAL_DISCONNECT: &str = "!DISCONNECT";

/// What an error reply starts with, before the reason in words. A refused
/// message (a bad header, a length over the limit, a payload that is not
/// UTF-8) is answered `!ERROR <reason>`, framed like any reply (raw with
/// `--raw-replies`), and then the server closes the connection. A peer
/// that left mid-message gets no reply: nobody would read it.
pub const ERROR_PREFIX: &str = "!ERROR ";

/// Whether a payload asks the server to end the connection.
pub fn is_disconnect(payload: &str) -> bool {
    payload == DISCONNECT || payload == TUTORIAL_DISCONNECT
}
