//! The client side: send every byte of input, print whatever comes back,
//! and at the end of input half-close the connection and collect the last
//! echoes.
//!
//! Three threads, so that nobody waits for anybody: one sends the input, one
//! prints replies as they arrive, and this one watches both and decides when
//! the conversation is over (or went wrong).

use std::io::{self, BufRead, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, anyhow};

use plumbing::trace;

/// After our input ends, how long the server may stay silent before we give
/// up waiting for the rest of its replies.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// After our input ends, the longest the replies may take in all, in
/// [`REPLY_WAIT`]s (30 s by default): enough for the echoes still in the
/// socket buffers, bounded against a server that never stops sending.
pub const REPLY_WAITS_IN_ALL: u32 = 6;

/// What the two worker threads report to the watching one.
enum Event {
    /// All input was sent and our side half-closed.
    InputEnded,
    /// Sending failed: the connection is gone.
    InputFailed(io::Error),
    /// Some reply bytes arrived (and were printed).
    Replied,
    /// The server closed its side (`Ok`) or the connection broke (`Err`).
    RepliesEnded(io::Result<()>),
}

/// Runs the conversation: `input` goes to the server, replies to `output`.
pub fn run(
    stream: TcpStream,
    input: impl BufRead + Send + 'static,
    output: impl Write + Send + 'static,
) -> anyhow::Result<()> {
    run_with_reply_wait(stream, input, output, REPLY_WAIT)
}

/// [`run`], with another limit on the server's silence after our input ends.
pub fn run_with_reply_wait(
    stream: TcpStream,
    input: impl BufRead + Send + 'static,
    output: impl Write + Send + 'static,
    reply_wait: Duration,
) -> anyhow::Result<()> {
    let (events, watch) = mpsc::channel();
    // try_clone() gives a second handle to the *same* socket, so that one
    // thread can read while another writes.
    let replies = stream.try_clone().context("cannot clone the socket")?;
    let reply_events = events.clone();
    thread::spawn(move || {
        let ended = print_replies(replies, output, &reply_events);
        let _ = reply_events.send(Event::RepliesEnded(ended));
    });
    thread::spawn(move || {
        let event = match send_input(&stream, input) {
            Ok(()) => Event::InputEnded,
            Err(err) => Event::InputFailed(err),
        };
        // Report the end of input *before* the half-close: the server's
        // answer to our FIN can then never be seen before this event.
        let ended = matches!(event, Event::InputEnded);
        let _ = events.send(event);
        if ended {
            // shutdown(Write) is a half-close: the server reads EOF (0 bytes),
            // while we can still read the echoes that are on their way. (Traced
            // before the call: once it is made, the conversation may end, and
            // the process with it, before a line after it could be printed.)
            trace!("shutdown(Write)");
            let _ = stream.shutdown(Shutdown::Write);
        }
    });
    watch_conversation(&watch, reply_wait)
}

/// Sends the input as it comes: a line at a time when typed, everything,
/// byte for byte, when piped.
fn send_input(mut stream: &TcpStream, mut input: impl BufRead) -> io::Result<()> {
    loop {
        let chunk = input.fill_buf()?;
        if chunk.is_empty() {
            return Ok(()); // end of input
        }
        stream.write_all(chunk)?;
        trace!("write({} bytes)", chunk.len());
        let n = chunk.len();
        input.consume(n);
    }
}

/// Copies everything the server sends to `output` until the server closes.
fn print_replies(
    stream: TcpStream,
    mut output: impl Write,
    events: &mpsc::Sender<Event>,
) -> io::Result<()> {
    let mut buf = vec![0u8; crate::server::BUF_LEN];
    loop {
        // read() blocks until the server sends something or closes.
        let n = crate::net::read_some(&stream, &mut buf)?;
        if n == 0 {
            trace!("close()");
            return Ok(()); // the server closed its side: the conversation is over
        }
        output.write_all(&buf[..n])?;
        output.flush()?;
        let _ = events.send(Event::Replied);
    }
}

/// Decides how the conversation ended, from the threads' events.
fn watch_conversation(events: &mpsc::Receiver<Event>, reply_wait: Duration) -> anyhow::Result<()> {
    // While input is being sent (typed, perhaps for hours) there is no limit.
    loop {
        // The worker threads hold the senders until they report their end,
        // so recv() cannot fail before one of the events below.
        match events
            .recv()
            .map_err(|_| anyhow!("the client's threads stopped"))?
        {
            Event::InputEnded => break,
            Event::Replied => continue,
            Event::InputFailed(err) => {
                return Err(anyhow!(err).context("cannot send: the connection is gone"));
            }
            Event::RepliesEnded(ended) => return Err(closed_early(ended)),
        }
    }
    // Input ended: the server has at most `reply_wait` of silence, and
    // `REPLY_WAITS_IN_ALL` times that in all, to finish: a server that keeps
    // sending without closing must not keep us waiting for ever.
    let deadline = Instant::now() + reply_wait * REPLY_WAITS_IN_ALL;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(anyhow!(
                "the server kept sending for {}s after our input ended, and did not close \
                 (does it echo, or send on its own?)",
                (reply_wait * REPLY_WAITS_IN_ALL).as_secs_f32()
            ));
        }
        match events.recv_timeout(reply_wait.min(left)) {
            Ok(Event::RepliesEnded(ended)) => {
                return ended.context("the connection broke while reading replies");
            }
            Ok(_) => continue,
            Err(_) if Instant::now() < deadline => {
                return Err(anyhow!(
                    "the server sent nothing for {}s after our input ended, and did not close \
                     (is it serving another client first?)",
                    reply_wait.as_secs_f32()
                ));
            }
            Err(_) => continue, // the total bound ran out: said at the top
        }
    }
}

fn closed_early(ended: io::Result<()>) -> anyhow::Error {
    let closed = anyhow!("the server closed the connection before our input ended");
    match ended {
        Ok(()) => closed,
        Err(err) => {
            anyhow!(err).context("the server dropped the connection before our input ended")
        }
    }
}
