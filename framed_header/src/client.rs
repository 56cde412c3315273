//! The client side: send each line of input as one message, wait for the
//! reply, print it. At the end of input, say goodbye (`!DISCONNECT`), wait
//! for its answer, and stop: one line in, one reply out, so the goodbye's
//! answer (which answers no line) is not printed.
//!
//! A reply `!ERROR <reason>` is no answer to print: the server refused the
//! message and closed the connection, so the client stops with
//! `error: the server refused the message: <reason>`.
//!
//! One message at a time, in lock step, as the tutorial's client does: the
//! reply to a message arrives before the next message leaves.

use std::io::{self, BufRead, Read as _, Write};
use std::net::TcpStream;
use std::time::Duration;

use anyhow::{Context as _, anyhow, bail};
use basic::checklist::{is_timeout, show};
use basic::trace;
use basic::trace::preview;

use crate::check::guess_mismatch;
use crate::frame::{FrameError, Framing, MessageReader};
use crate::{ERROR_PREFIX, TUTORIAL_DISCONNECT, is_disconnect};

/// How long we wait for any one reply before giving up, by default.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);
/// With `--raw-replies`, one read of up to this many bytes is one reply,
/// as in the tutorial's `client.recv(2048)`.
pub const RAW_REPLY_BUF_BYTES: usize = 2048;

/// How the client frames messages and reads replies.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub framing: Framing,
    /// Read replies without a header: whatever one `read` returns is one
    /// reply. Fragile on purpose, for tutorial servers; see [`read_raw`].
    pub raw_replies: bool,
    /// How long to wait for each reply ([`REPLY_WAIT`] unless a test is in a hurry).
    pub reply_wait: Duration,
}

/// Runs the conversation: each `input` line out, each reply to `output`.
pub fn run(
    stream: TcpStream,
    input: impl BufRead,
    mut output: impl Write,
    config: Config,
) -> anyhow::Result<()> {
    // Every read below waits at most `reply_wait`: a silent server makes
    // us fail with a message instead of hanging for ever.
    stream
        .set_read_timeout(Some(config.reply_wait))
        .context("cannot set a read timeout")?;
    let mut replies = MessageReader::new(config.framing);
    for line in input.lines() {
        // lines() drops the `\n` (and a `\r` before it): the payload is the text.
        let line = line.context("cannot read input (each line must be UTF-8 text)")?;
        let reply = exchange(&stream, &mut replies, config, &line)?;
        writeln!(output, "{reply}").context("cannot print the reply")?;
        output.flush().context("cannot print the reply")?;
        if is_disconnect(&line) {
            return Ok(()); // the server closes after answering a goodbye
        }
    }
    // End of input: the tutorial's goodbye, which our server and the
    // tutorial's server both understand. Waiting for its answer tells us
    // the server heard it; printing it would look like an answer to a
    // line the user never typed.
    let reply = exchange(&stream, &mut replies, config, TUTORIAL_DISCONNECT)?;
    trace!("goodbye answered {}", preview(reply.as_bytes(), 60));
    Ok(())
}

/// Sends one message and returns its reply; an `!ERROR` reply is an error.
fn exchange(
    mut stream: &TcpStream,
    replies: &mut MessageReader,
    config: Config,
    text: &str,
) -> anyhow::Result<String> {
    let frame = config
        .framing
        .encode(text)
        .with_context(|| format!("cannot send a line of {} bytes", text.len()))?;
    // write_all() hands header and payload to the kernel in one piece.
    stream
        .write_all(&frame)
        .context("cannot send: the connection is gone")?;
    trace!("write({} bytes: header + payload)", frame.len());
    let reply = if config.raw_replies {
        read_raw(stream, config.reply_wait)?
    } else {
        read_framed(stream, replies, config)?
    };
    match reply.strip_prefix(ERROR_PREFIX) {
        Some(reason) => Err(refused(reason)),
        None => Ok(reply),
    }
}

/// The server refused our message (and has closed the connection).
fn refused(reason: &str) -> anyhow::Error {
    let mut message = format!("the server refused the message: {reason}");
    if reason.contains("over the limit") {
        message.push_str(" (use the server's --max-payload on the client too)");
    }
    anyhow!(message)
}

/// Reads one framed reply: exactly a header, then exactly the payload.
fn read_framed(
    mut stream: &TcpStream,
    replies: &mut MessageReader,
    config: Config,
) -> anyhow::Result<String> {
    let err = match replies.read_message(&mut stream) {
        Ok(Some(text)) => return Ok(text.to_string()),
        Ok(None) => bail!("the server closed the connection without replying"),
        Err(err) => err,
    };
    let mut message = match err {
        FrameError::Io(err) if is_timeout(&err) => format!(
            "no complete reply within {}s: {}",
            config.reply_wait.as_secs_f32(),
            what_came(replies)
        ),
        err => format!("cannot read the reply: {err}"),
    };
    let got = replies.partial_header();
    if let Some(hint) = guess_mismatch(got, Some(config.framing.header_len())) {
        message.push_str(&format!(" ({hint})"));
    }
    Err(anyhow!(message))
}

/// What part of a reply arrived before the wait ran out: part of the
/// header, or all of it and part of the payload.
fn what_came(replies: &MessageReader) -> String {
    let header = replies.partial_header();
    match replies.declared_len() {
        None => format!("got {}, short of a whole header", show(header)),
        Some(declared) => format!(
            "got the header {} declaring {declared} payload bytes, then only {} of them: {}",
            show(header),
            replies.partial_payload().len(),
            preview(replies.partial_payload(), 60)
        ),
    }
}

/// Reads one raw reply the tutorial's way: one `read`, whatever it returns.
///
/// This is fragile, and only works because replies are short and the
/// conversation is in lock step. TCP keeps no boundaries: one `read` may
/// return the first half of a reply (the rest is then taken for the next
/// reply), or two replies glued together, and nothing in the bytes says
/// which. Framed replies carry their length, so they cannot be misread.
pub fn read_raw(mut stream: &TcpStream, wait: Duration) -> anyhow::Result<String> {
    let mut buf = [0u8; RAW_REPLY_BUF_BYTES];
    // read() waits for at least one byte of the reply (or the timeout).
    let n = loop {
        match stream.read(&mut buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) => {
                bail!("no reply within {}s", wait.as_secs_f32())
            }
            other => break other.context("cannot read the reply")?,
        }
    };
    if n == 0 {
        bail!("the server closed the connection without replying");
    }
    if let Some(hint) = guess_mismatch(&buf[..n], None) {
        eprintln!("note: {hint}");
    }
    Ok(String::from_utf8_lossy(&buf[..n]).into_owned())
}
