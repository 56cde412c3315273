//! The client side: send each line of input as one message, wait for the
//! reply, print it. At the end of input, say goodbye (`!DISCONNECT`, or
//! `--goodbye`), wait for its answer or for the server to close, and stop:
//! one line in, one reply out, so the goodbye's answer (which answers no
//! line) is not printed.
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

use anyhow::{Context as _, anyhow};
use plumbing::checklist::{is_timeout, show};
use plumbing::trace;
use plumbing::trace::preview;

use crate::check::guess_mismatch;
use crate::frame::{FrameError, Framing, MessageReader};
use crate::{ERROR_PREFIX, REPLY, TUTORIAL_DISCONNECT, is_disconnect};

/// How long we wait for any one reply before giving up, by default.
pub const REPLY_WAIT: Duration = Duration::from_secs(10);
/// With `--raw-replies`, one read of up to this many bytes is one reply,
/// as in the tutorial's `client.recv(2048)`.
pub const RAW_REPLY_BUF_BYTES: usize = 2048;

/// How the client frames messages and reads replies.
#[derive(Debug, Clone)]
pub struct Config {
    pub framing: Framing,
    /// Read replies without a header: whatever one `read` returns is one
    /// reply. Fragile on purpose, for tutorial servers; see [`read_raw`].
    pub raw_replies: bool,
    /// How long to wait for each reply ([`REPLY_WAIT`] unless a test is in a hurry).
    pub reply_wait: Duration,
    /// What to send at the end of input (`--goodbye`).
    pub goodbye: String,
    /// The reply the server is expected to send (`--reply`): a raw read
    /// that returns only its start reads on for the rest.
    pub reply: String,
}

impl Config {
    /// The given framing, with our goodbye and reply text and [`REPLY_WAIT`].
    pub fn new(framing: Framing, raw_replies: bool) -> Config {
        Config {
            framing,
            raw_replies,
            reply_wait: REPLY_WAIT,
            goodbye: TUTORIAL_DISCONNECT.to_string(),
            reply: REPLY.to_string(),
        }
    }

    /// Whether `line` ends the conversation: our goodbye, or either known one.
    fn is_goodbye(&self, line: &str) -> bool {
        line == self.goodbye || is_disconnect(line)
    }
}

/// Runs the conversation: each `input` line out, each reply to `output`.
pub fn run(
    stream: TcpStream,
    input: impl BufRead,
    mut output: impl Write,
    config: &Config,
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
        if config.is_goodbye(&line) {
            // Typed by the user: its answer, if any, is printed.
            if let Some(reply) = say_goodbye(&stream, &mut replies, config, &line)? {
                print(&mut output, &reply)?;
            }
            return Ok(()); // the server closes after a goodbye
        }
        let reply = exchange(&stream, &mut replies, config, &line)?
            .ok_or_else(|| anyhow!("the server closed the connection without replying"))?;
        print(&mut output, &reply)?;
    }
    // End of input: the goodbye. Waiting for its answer (or the close)
    // tells us the server heard it; printing it would look like an answer
    // to a line the user never typed.
    let reply = say_goodbye(&stream, &mut replies, config, &config.goodbye)?;
    trace!(
        "goodbye answered {:?}",
        reply.as_deref().unwrap_or("(closed)")
    );
    Ok(())
}

fn print(output: &mut impl Write, reply: &str) -> anyhow::Result<()> {
    writeln!(output, "{reply}").context("cannot print the reply")?;
    output.flush().context("cannot print the reply")
}

/// Sends a goodbye and waits, bounded, for its answer. A server that
/// closes without answering (some tutorial servers do) ends the
/// conversation just as well: `None`.
fn say_goodbye(
    stream: &TcpStream,
    replies: &mut MessageReader,
    config: &Config,
    goodbye: &str,
) -> anyhow::Result<Option<String>> {
    match exchange(stream, replies, config, goodbye) {
        Err(err) if is_timeout_error(&err) => {
            eprintln!(
                "note: the server neither answered the goodbye nor closed within {}s; \
                 leaving anyway (does it expect another goodbye? see --goodbye)",
                config.reply_wait.as_secs_f32()
            );
            Ok(None)
        }
        // Reset instead of a close, or already closed: the server is gone
        // all the same.
        Err(err) if is_reset(&err) => Ok(None),
        other => other,
    }
}

fn is_timeout_error(err: &anyhow::Error) -> bool {
    err.downcast_ref::<ReplyError>()
        .is_some_and(|err| err.timed_out)
}

/// Whether the connection was already gone: a reset, or a write to a
/// socket the server had closed (broken pipe).
fn is_reset(err: &anyhow::Error) -> bool {
    err.chain().any(|cause| {
        cause.downcast_ref::<io::Error>().is_some_and(|err| {
            matches!(
                err.kind(),
                io::ErrorKind::ConnectionReset
                    | io::ErrorKind::BrokenPipe
                    | io::ErrorKind::ConnectionAborted
            )
        })
    })
}

/// No usable reply came: what did come, and whether the wait ran out.
#[derive(Debug)]
struct ReplyError {
    message: String,
    timed_out: bool,
}

impl std::fmt::Display for ReplyError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message)
    }
}

impl std::error::Error for ReplyError {}

/// Sends one message and returns its reply, or `None` if the server
/// closed instead of replying; an `!ERROR` reply is an error.
fn exchange(
    mut stream: &TcpStream,
    replies: &mut MessageReader,
    config: &Config,
    text: &str,
) -> anyhow::Result<Option<String>> {
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
        read_raw(stream, config)?
    } else {
        read_framed(stream, replies, config)?
    };
    match reply.as_deref().and_then(|r| r.strip_prefix(ERROR_PREFIX)) {
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
/// `None`: the server closed before the first byte of a reply.
fn read_framed(
    mut stream: &TcpStream,
    replies: &mut MessageReader,
    config: &Config,
) -> anyhow::Result<Option<String>> {
    let err = match replies.read_message(&mut Traced(&mut stream)) {
        Ok(reply) => return Ok(reply.map(str::to_string)),
        Err(err) => err,
    };
    let got = replies.partial_header();
    // A raw `!ERROR`: a server that cannot read our header (another
    // header size) says why without a header of its own.
    if let Some(reason) = got.strip_prefix(ERROR_PREFIX.as_bytes()) {
        let rest = read_rest(stream, RAW_REPLY_BUF_BYTES);
        return Err(refused(&String::from_utf8_lossy(&[reason, &rest].concat())));
    }
    let hint = guess_mismatch(got, Some(config.framing.header_len()));
    let timed_out = matches!(&err, FrameError::Io(err) if is_timeout(err));
    let mut message = match err {
        FrameError::Io(err) if is_timeout(&err) => format!(
            "no complete reply within {}s: {}",
            config.reply_wait.as_secs_f32(),
            what_came(replies)
        ),
        _ if hint.is_some() => format!("the reply {} does not fit the settings", show(got)),
        err => format!("cannot read the reply: {err}"),
    };
    if let Some(hint) = hint {
        message.push_str(&format!(" ({hint})"));
    }
    Err(ReplyError { message, timed_out }.into())
}

/// A reader that traces each of its reads: the client reads the socket
/// itself, so each is a system call worth showing with `--trace`.
struct Traced<R>(R);

impl<R: io::Read> io::Read for Traced<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.0.read(buf)?;
        trace!("read(up to {} bytes) -> {n}", buf.len());
        Ok(n)
    }
}

/// What else arrived already, up to `max` bytes, waiting only briefly: to
/// show a whole text rather than the few bytes that came first.
fn read_rest(stream: &TcpStream, max: usize) -> Vec<u8> {
    let _ = stream.set_read_timeout(Some(Duration::from_millis(200)));
    let mut rest = Vec::new();
    let _ = stream.take(max as u64).read_to_end(&mut rest);
    rest
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
/// `None`: the server closed instead of replying.
///
/// This is fragile, and only works because replies are short and the
/// conversation is in lock step. TCP keeps no boundaries: one `read` may
/// return the first half of a reply (the rest is then taken for the next
/// reply), or two replies glued together, and nothing in the bytes says
/// which. One thing helps: when the bytes are the start of the expected
/// reply (`--reply`), we read on until all of it is in. Framed replies
/// carry their length, so they cannot be misread.
pub fn read_raw(stream: &TcpStream, config: &Config) -> anyhow::Result<Option<String>> {
    let mut buf = [0u8; RAW_REPLY_BUF_BYTES];
    let mut got = 0;
    let expected = config.reply.as_bytes();
    // A first read, then more only while we hold a strict start of the reply.
    while got == 0 || (got < expected.len() && expected.starts_with(&buf[..got])) {
        match read_some(stream, &mut buf[got..], config.reply_wait)? {
            0 if got == 0 => return Ok(None),
            0 => break,
            n => got += n,
        }
    }
    let reply = &buf[..got];
    if let Some(hint) = guess_mismatch(reply, None) {
        eprintln!("note: {hint}");
    }
    Ok(Some(String::from_utf8_lossy(reply).into_owned()))
}

/// One read: waits for at least one byte, the close (0), or the timeout.
fn read_some(stream: &TcpStream, buf: &mut [u8], wait: Duration) -> anyhow::Result<usize> {
    loop {
        match Traced(stream).read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if is_timeout(&err) => {
                let message = format!("no reply within {}s", wait.as_secs_f32());
                return Err(ReplyError {
                    message,
                    timed_out: true,
                }
                .into());
            }
            other => return other.context("cannot read the reply"),
        }
    }
}
