//! The client side: one thread copies input lines to the socket, another
//! prints what the server sends as it arrives, so the others' lines appear
//! while you are still typing. This thread only waits to hear which of the
//! two finishes first.
//!
//! At the end of input the client sends `/quit` and prints what still
//! arrives until the server closes (at most [`QUIT_WAIT`]). If the server
//! closes first, that is an error: the conversation ended without us.

use std::io::{self, BufRead, Write};
use std::net::TcpStream;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender};
use std::thread;
use std::time::Duration;

use anyhow::{Context as _, bail};
use plumbing::trace;

use crate::protocol::SafeDisplay;

/// After sending `/quit`, how long we wait for the server to close.
pub const QUIT_WAIT: Duration = Duration::from_secs(5);

/// What the two threads report to the main one.
enum Event {
    /// Input ended (or `/quit` was typed) and `/quit` was sent.
    InputDone(io::Result<()>),
    /// The server closed the connection (`Ok`) or it failed.
    ServerDone(io::Result<()>),
}

/// Runs the chat: `input` lines go to the server, its lines to `output`.
/// With `name`, the first line sent is `/nick NAME`.
pub fn run(
    stream: TcpStream,
    name: Option<&str>,
    input: impl BufRead + Send + 'static,
    output: impl Write + Send + 'static,
) -> anyhow::Result<()> {
    if let Some(name) = name {
        (&stream)
            .write_all(format!("/nick {name}\n").as_bytes())
            .context("cannot send /nick")?;
    }
    // try_clone() gives a second handle on the same socket, so that one
    // thread can read while another writes.
    let reader = stream.try_clone().context("cannot clone the socket")?;
    let quitting = Arc::new(AtomicBool::new(false));
    let (events, done) = mpsc::channel();
    spawn_printer(reader, output, events.clone());
    spawn_sender(stream, input, Arc::clone(&quitting), events);
    wait_for_end(&done, &quitting)
}

fn spawn_printer(stream: TcpStream, output: impl Write + Send + 'static, events: Sender<Event>) {
    thread::spawn(move || {
        let _ = events.send(Event::ServerDone(print_incoming(stream, output)));
    });
}

fn spawn_sender(
    stream: TcpStream,
    input: impl BufRead + Send + 'static,
    quitting: Arc<AtomicBool>,
    events: Sender<Event>,
) {
    thread::spawn(move || {
        let _ = events.send(Event::InputDone(send_input(&stream, input, &quitting)));
    });
}

/// Decides how the conversation ended, from whichever thread reports first.
fn wait_for_end(done: &Receiver<Event>, quitting: &AtomicBool) -> anyhow::Result<()> {
    // recv() blocks until one of the threads reports; both hold a sender,
    // so it cannot fail before one of them has.
    match done
        .recv()
        .context("both client threads ended without a word")?
    {
        Event::InputDone(Ok(())) => wait_for_close(done),
        Event::InputDone(Err(err)) => {
            Err(err).context("cannot send: the connection to the server is gone")
        }
        // The server closed after our /quit: the normal end.
        Event::ServerDone(Ok(())) if quitting.load(Ordering::SeqCst) => Ok(()),
        Event::ServerDone(Ok(())) => bail!("the server closed the connection"),
        Event::ServerDone(Err(err)) => Err(err).context("connection to the server lost"),
    }
}

/// `/quit` is sent: print what still arrives until the server closes.
fn wait_for_close(done: &Receiver<Event>) -> anyhow::Result<()> {
    match done.recv_timeout(QUIT_WAIT) {
        Ok(Event::ServerDone(result)) => result.context("connection lost after /quit"),
        Ok(Event::InputDone(_)) => Ok(()), // not sent twice
        Err(_) => {
            eprintln!(
                "note: the server did not close the connection within {}s of /quit; stopping",
                QUIT_WAIT.as_secs()
            );
            Ok(())
        }
    }
}

/// Sends each input line as soon as it is read; at the end of input (or
/// when the user typed `/quit`) sends `/quit` and returns.
fn send_input(
    mut stream: &TcpStream,
    mut input: impl BufRead,
    quitting: &AtomicBool,
) -> io::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        // read_until blocks until the user ends a line (or the pipe ends).
        if input.read_until(b'\n', &mut line)? == 0 || is_quit(&line) {
            break;
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n'); // the last line of a file may lack its newline
        }
        stream.write_all(&line)?;
        trace!("write({} bytes)", line.len());
    }
    // Set before sending: the server may close before this thread runs again.
    quitting.store(true, Ordering::SeqCst);
    stream.write_all(b"/quit\n")?;
    trace!("write(/quit)");
    Ok(())
}

fn is_quit(line: &[u8]) -> bool {
    // The server's own reading: `/quit`, and `/quit bye` too.
    use crate::protocol::{Request, decode_line, parse};
    parse(&decode_line(line)) == Request::Quit
}

/// Copies what the server sends to `output` until it closes, made safe
/// for a terminal: control characters and bidi overrides are shown as
/// escapes (`\u{1b}`), so that no one in the room (nor the server) can
/// clear your screen or forge a line with `\r` (see `protocol::SafeDisplay`).
fn print_incoming(stream: TcpStream, mut output: impl Write) -> io::Result<()> {
    let mut buf = [0u8; 8192];
    let mut display = SafeDisplay::default();
    let mut shown = String::new();
    loop {
        // read() blocks until the server sends something, or returns 0 once
        // it closed its side (lesson 1's `read_some`).
        let n = basic::net::read_some(&stream, &mut buf)?;
        if n == 0 {
            return Ok(());
        }
        shown.clear();
        display.push(&buf[..n], &mut shown);
        output.write_all(shown.as_bytes())?;
        output.flush()?;
    }
}

#[cfg(test)]
mod tests {
    use super::is_quit;

    #[test]
    fn quit_is_recognised_as_the_server_reads_it() {
        assert!(is_quit(b"/quit\n"));
        assert!(is_quit(b"/quit bye\r\n"));
        assert!(!is_quit(b"/quitter\n"));
        assert!(!is_quit(b"quit\n"));
    }
}
