//! The client side: send each line of input, print whatever comes back, and
//! at the end of input half-close the connection and collect the last echoes.
//!
//! Two threads share the socket: this one writes lines, a second one prints
//! replies as they arrive, so neither waits for the other.

use std::io::{self, BufRead, Read as _, Write};
use std::net::{Shutdown, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use anyhow::Context as _;

use crate::trace;

/// After our input ends, how long we wait for the server to finish replying.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// Runs the conversation: `input` lines go to the server, replies to `output`.
pub fn run(
    stream: TcpStream,
    input: impl BufRead,
    output: impl Write + Send + 'static,
) -> anyhow::Result<()> {
    // try_clone() gives a second handle to the *same* socket, so that the
    // reply thread can read while this thread writes.
    let replies = stream.try_clone().context("cannot clone the socket")?;
    let (done_tx, done_rx) = mpsc::channel();
    thread::spawn(move || {
        let _ = done_tx.send(print_replies(replies, output));
    });

    send_lines(&stream, input)?;

    // shutdown(Write) is a half-close: the server reads EOF (0 bytes), while
    // we can still read the echoes that are on their way.
    stream
        .shutdown(Shutdown::Write)
        .context("shutdown failed")?;
    trace!("shutdown(Write)");
    wait_for_replies(&done_rx)
}

/// Sends each input line, with its `\n`, as soon as it is read.
fn send_lines(mut stream: &TcpStream, mut input: impl BufRead) -> anyhow::Result<()> {
    let mut line = Vec::new();
    loop {
        line.clear();
        // read_until, not read_line: any bytes are welcome, not only UTF-8.
        if input
            .read_until(b'\n', &mut line)
            .context("cannot read input")?
            == 0
        {
            return Ok(()); // end of input
        }
        if !line.ends_with(b"\n") {
            line.push(b'\n'); // the last line of a file may lack its newline
        }
        stream
            .write_all(&line)
            .context("cannot send: the connection is gone")?;
        trace!("write({} bytes)", line.len());
    }
}

/// Copies everything the server sends to `output` until the server closes.
fn print_replies(mut stream: TcpStream, mut output: impl Write) -> io::Result<()> {
    let mut buf = [0u8; crate::server::BUF_LEN];
    loop {
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        trace!("read() -> {n} bytes");
        if n == 0 {
            trace!("close()");
            return Ok(()); // the server closed its side: the conversation is over
        }
        output.write_all(&buf[..n])?;
        output.flush()?;
    }
}

/// Waits, at most [`REPLY_WAIT`], for the reply thread to see the server close.
fn wait_for_replies(done: &mpsc::Receiver<io::Result<()>>) -> anyhow::Result<()> {
    match done.recv_timeout(REPLY_WAIT) {
        Ok(result) => result.context("connection lost while reading replies"),
        Err(_) => {
            eprintln!(
                "note: the server did not close the connection within {}s; stopping",
                REPLY_WAIT.as_secs()
            );
            Ok(())
        }
    }
}
