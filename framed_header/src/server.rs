//! The server side: a thread per client, as in lesson 3. Each thread reads
//! one message at a time, logs it as `[peer] message`, and answers
//! `Msg received` (framed, or raw with `--raw-replies`).

use std::io::{Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use basic::trace::preview;
use basic::{log, trace};

use crate::frame::{FrameError, Framing, MessageReader};
use crate::{ERROR_PREFIX, REPLY, is_disconnect};

/// After a last reply (an error, or the goodbye's), how long we keep reading
/// (and dropping) what the peer still sends, so that our close does not
/// destroy the reply.
pub const LINGER: Duration = Duration::from_secs(2);
/// ... and how many bytes, at most.
pub const LINGER_BYTES: usize = 2 * 1024 * 1024;
/// How much of a message a log line shows.
pub const LOG_PREVIEW_BYTES: usize = 80;

/// How the server frames and answers.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub framing: Framing,
    /// Answer with bare `Msg received`, no header, like the tutorial.
    pub raw_replies: bool,
}

/// Accepts clients for ever, each on its own thread, and never returns: a
/// failed `accept` (out of file descriptors, say) is logged and retried
/// (see `multiclients::server::accept_next`). The `Result` is there so that `run` has
/// the same shape as every lesson's server (`basic::testing::start_server`).
pub fn run(listener: TcpListener, config: Config) -> anyhow::Result<()> {
    loop {
        // Lesson 2's accept step: blocks until a completed handshake waits
        // in the backlog; a failed accept is logged and retried.
        let (stream, peer) = multiclients::server::accept_next(&listener);
        // The thread owns the stream: when it returns, the stream is
        // dropped and the connection closed, whatever happened.
        let spawned = thread::Builder::new()
            .name(format!("client {peer}"))
            .spawn(move || handle_client(stream, peer, config));
        if let Err(err) = spawned {
            log!("[{peer}] cannot start a thread: {err}; connection closed");
        }
    }
}

/// Serves one connection to its end and logs how it ended. Nothing that
/// happens here reaches any other client.
pub fn handle_client(stream: TcpStream, peer: SocketAddr, config: Config) {
    log!("[{peer}] connected");
    match converse(&stream, peer, config) {
        Ok(Ending::Goodbye) => {
            log!("[{peer}] said goodbye; connection closed");
            close_gracefully(&stream);
        }
        Ok(Ending::Closed) => log!("[{peer}] left"),
        Err(err) if err.is_protocol_violation() => refuse(&stream, peer, config, &err),
        Err(FrameError::Io(err)) => log!("[{peer}] connection lost: {err}"),
        // Closed mid-header or mid-payload: nobody is left to answer.
        Err(err) => log!("[{peer}] disconnected: {err}"),
    }
    trace!("close({peer})");
}

/// How a conversation ended, when it ended well.
enum Ending {
    Goodbye,
    Closed,
}

/// The message loop: read one message, log it, answer it.
fn converse(
    mut stream: &TcpStream,
    peer: SocketAddr,
    config: Config,
) -> Result<Ending, FrameError> {
    let mut reader = MessageReader::new(config.framing);
    loop {
        // None: the peer closed between two messages, the polite way to
        // leave without a goodbye. (The tutorial's server, which ignores
        // this case, loops for ever on reads that return nothing.)
        let Some(message) = reader.read_message(&mut stream)? else {
            return Ok(Ending::Closed);
        };
        // Quoted and escaped: a payload may hold `\n` or control bytes, and
        // one message must stay one log line.
        log!(
            "[{peer}] {}",
            preview(message.as_bytes(), LOG_PREVIEW_BYTES)
        );
        reply(stream, config, REPLY)?;
        if is_disconnect(message) {
            return Ok(Ending::Goodbye);
        }
    }
}

/// Sends `text` as a reply: framed, or raw with `--raw-replies`.
fn reply(mut stream: &TcpStream, config: Config, text: &str) -> std::io::Result<()> {
    if config.raw_replies {
        // The tutorial's way: bare bytes, and the client must guess where
        // they end (it reads once, up to 2048 bytes, and hopes). write_all
        // blocks while this peer's receive window is full: only this
        // client's thread waits.
        stream.write_all(text.as_bytes())?;
        trace!("write({} bytes, raw)", text.len());
        Ok(())
    } else {
        config.framing.write_message(stream, text)
    }
}

/// The peer broke the protocol: tell it why (`!ERROR <reason>`, framed or
/// raw like any reply), log it, and close. Its stream is out of step, so
/// there is no reading on.
fn refuse(stream: &TcpStream, peer: SocketAddr, config: Config, err: &FrameError) {
    log!("[{peer}] rejected: {err}; closing the connection");
    let text = format!("{ERROR_PREFIX}{err}");
    // Cut to --max-payload: a reply is a message too, and a peer with the
    // same limit must be able to read it (a cut reason beats none).
    let text = cut_to(&text, config.framing.max_payload());
    if let Err(err) = reply(stream, config, text) {
        log!("[{peer}] could not send the error reply: {err}");
    }
    close_gracefully(stream);
}

/// The longest start of `text` that fits in `max` bytes, whole characters only.
fn cut_to(text: &str, max: usize) -> &str {
    let mut end = text.len().min(max);
    while !text.is_char_boundary(end) {
        end -= 1; // ends at 0 at worst, always a boundary
    }
    &text[..end]
}

/// Closes so that our last reply survives. Closing a socket while unread
/// bytes wait in its receive buffer (the rest of a bad message, or bytes
/// sent after a goodbye) makes the kernel send RST instead of FIN, and a
/// RST can destroy the reply before the peer reads it. So: send our FIN,
/// then drop incoming bytes for a moment (bounded in time and bytes) until
/// the peer closes too.
fn close_gracefully(mut stream: &TcpStream) {
    // shutdown(Write) sends FIN after the reply: the peer reads the reply,
    // then end of stream, while we can still read what it sends.
    let _ = stream.shutdown(Shutdown::Write);
    trace!("shutdown(Write)");
    let deadline = Instant::now() + LINGER;
    let mut buf = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return;
        }
        // read() waits for more of the peer's bytes, its FIN (0) or the timeout.
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => return,
            Ok(n) => drained += n,
        }
    }
}
