//! The chat client, with the two timeouts a blocking client needs: one on
//! `connect` (a server that never completes the handshake) and one on
//! `read` (a server that stays silent). Without them a blocking call can
//! wait for minutes, or for ever.
//!
//! One thread copies stdin to the socket; this thread prints what arrives.
//! At the end of stdin we send `/quit`, and wait (bounded) for the server
//! to close.

use std::fmt;
use std::io::{self, BufRead, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use multiclients_threaded::protocol;
use plumbing::trace;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

/// After our input ends, how long we wait for the server to close.
pub const REPLY_WAIT: Duration = Duration::from_secs(5);

/// A timeout fired: which one, and after how long. Its message is what the
/// user sees after `error: `.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TimeoutFired {
    /// The option that set it: `--connect-timeout` or `--read-timeout`.
    pub option: &'static str,
    pub after: Duration,
    pub what: String,
}

impl fmt::Display for TimeoutFired {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let secs = self.after.as_secs_f32();
        write!(f, "{} (the {} of {secs}s fired)", self.what, self.option)
    }
}

impl std::error::Error for TimeoutFired {}

/// Connects, giving up after `timeout`.
///
/// Without a timeout, `connect` waits as long as the system retries its
/// SYNs (a minute or two on Linux) before it fails. With one, the socket is
/// made non-blocking, `connect` starts the handshake and returns at once,
/// and we wait (with `poll`/`select`) at most `timeout` for the socket to
/// become writable, which means "connected". `socket2` does those steps for
/// us. std has `TcpStream::connect_timeout` too, but it creates and connects
/// the socket in one call; with `socket2` the socket exists first, so an
/// option that must be set before the handshake (a small receive buffer, as
/// `tests/timeouts.rs` sets) can be.
pub fn connect_with_timeout(addr: SocketAddr, timeout: Duration) -> anyhow::Result<TcpStream> {
    // TODO: exercise 1: connect to `addr`, giving up after `timeout` with a
    // `TimeoutFired` error that names `--connect-timeout` (sandbox/EXERCISES.md).
    // BEGIN SOLUTION exercise 1
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))
        .context("cannot create a socket")?;
    trace!("connect({addr}) with a timeout of {timeout:?}");
    match socket.connect_timeout(&SockAddr::from(addr), timeout) {
        Ok(()) => Ok(socket.into()),
        // The handshake did not finish in time: SYNs unanswered (a full
        // backlog, a firewall that drops packets, a machine that is off).
        // socket2 reports that as `TimedOut` on every system.
        Err(err) if err.kind() == io::ErrorKind::TimedOut => Err(TimeoutFired {
            option: "--connect-timeout",
            after: timeout,
            what: format!(
                "cannot connect to {addr}: no answer within {}s",
                timeout.as_secs_f32()
            ),
        }
        .into()),
        Err(err) => Err(anyhow::Error::new(err).context(format!("cannot connect to {addr}"))),
    }
    // STUB: let _ = (addr, timeout);
    // STUB: todo!("exercise 1: connect with a timeout (sandbox/EXERCISES.md)")
    // END SOLUTION exercise 1
}

/// The first wait before connecting again, in [`connect_with_retry`].
pub const RETRY_FIRST_DELAY: Duration = Duration::from_millis(100);

/// The longest wait between two attempts to connect.
pub const RETRY_MAX_DELAY: Duration = Duration::from_secs(5);

/// How long to wait before retry number `retry` (0 for the first retry):
/// [`RETRY_FIRST_DELAY`], doubling each time, never more than
/// [`RETRY_MAX_DELAY`]. Exponential backoff: a server that is restarting is
/// asked again soon, a server that is down for long is not hammered.
pub fn backoff(retry: u32) -> Duration {
    // TODO: exercise 3: 100 ms, 200 ms, 400 ms, ... capped at 5 s.
    // BEGIN SOLUTION exercise 3
    // checked_pow and saturating_mul: retry 40 must not overflow.
    let factor = 2u32.checked_pow(retry).unwrap_or(u32::MAX);
    RETRY_FIRST_DELAY
        .saturating_mul(factor)
        .min(RETRY_MAX_DELAY)
    // END SOLUTION exercise 3
}

/// Calls `connect` until it succeeds, at most `retries` times more after the
/// first failure, sleeping [`backoff`] in between (with `sleep`, so that a
/// test can record the waits instead of waiting). Each retry is announced
/// on stderr. Returns the last error when every attempt failed.
pub fn connect_with_retry<T>(
    mut connect: impl FnMut() -> anyhow::Result<T>,
    retries: u32,
    mut sleep: impl FnMut(Duration),
) -> anyhow::Result<T> {
    // TODO: exercise 3: try, and on failure wait backoff(n) and try again.
    // BEGIN SOLUTION exercise 3
    let mut retry = 0;
    loop {
        match connect() {
            Ok(connected) => return Ok(connected),
            Err(err) if retry < retries => {
                let delay = backoff(retry);
                eprintln!(
                    "note: {}; retrying in {delay:?}",
                    plumbing::errors::one_line(&err).trim_start_matches("error: ")
                );
                sleep(delay);
                retry += 1;
            }
            Err(err) => return Err(err),
        }
    }
    // END SOLUTION exercise 3
}

/// A read timeout is reported as `WouldBlock` on Unix (the kernel's
/// `EAGAIN`, the same code a non-blocking socket gives) and as `TimedOut` on
/// Windows (`WSAETIMEDOUT`). Code that checks only one of them works on one
/// system and fails on the other.
pub fn is_timeout(err: &io::Error) -> bool {
    // TODO: exercise 2: true for a read timeout, on every system.
    // BEGIN SOLUTION exercise 2
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
    )
    // STUB: let _ = err;
    // STUB: false
    // END SOLUTION exercise 2
}

/// What happened, as seen by the printing side.
enum Event {
    InputEnded,
    ServerClosed(anyhow::Result<()>),
}

/// Runs the conversation: `input` lines go to the server, what it sends goes
/// to `output`. With `read_timeout`, a server silent for that long ends it
/// with a [`TimeoutFired`] error.
pub fn run(
    stream: TcpStream,
    input: impl BufRead + Send + 'static,
    output: impl Write + Send + 'static,
    read_timeout: Option<Duration>,
) -> anyhow::Result<()> {
    // SO_RCVTIMEO: each read waits at most this long for a byte.
    stream
        .set_read_timeout(read_timeout)
        .context("cannot set the read timeout")?;
    let (events, event_rx) = mpsc::channel();
    let writer = stream.try_clone().context("cannot clone the socket")?;
    let input_events = events.clone();
    let quit_sent = Arc::new(AtomicBool::new(false));
    let quitting = Arc::clone(&quit_sent);
    thread::spawn(move || {
        let _ = send_lines(writer, input, &input_events, &quitting);
    });
    // A server that shuts down says so before it closes: then its close is
    // the expected end, as after our own `/quit`.
    let shutting_down = Arc::new(AtomicBool::new(false));
    let output = WatchForShutdown {
        inner: output,
        told: Arc::clone(&shutting_down),
        line: Vec::new(),
    };
    thread::spawn(move || {
        let _ = events.send(Event::ServerClosed(print_replies(
            stream,
            output,
            read_timeout,
        )));
    });
    wait_for_the_end(&event_rx, &quit_sent, &shutting_down)
}

/// The notice a server sends to every client before it shuts down.
pub const SHUTDOWN_NOTICE: &[u8] = b"* server shutting down";

/// Passes output through, and notes when a whole line is the server's
/// shutdown notice.
struct WatchForShutdown<W> {
    inner: W,
    told: Arc<AtomicBool>,
    /// The line being printed, up to the notice's length.
    line: Vec<u8>,
}

impl<W: Write> Write for WatchForShutdown<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        for &byte in &buf[..n] {
            if byte == b'\n' {
                if self.line == SHUTDOWN_NOTICE {
                    self.told.store(true, Ordering::SeqCst);
                }
                self.line.clear();
            } else if self.line.len() <= SHUTDOWN_NOTICE.len() {
                self.line.push(byte);
            }
        }
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Sends each input line, then `/quit` at the end of input.
/// `quit_sent` is set *before* a `/quit` leaves, and `InputEnded` reported
/// before ours does, so the server's close is never mistaken for a surprise.
fn send_lines(
    mut stream: TcpStream,
    input: impl BufRead,
    events: &mpsc::Sender<Event>,
    quit_sent: &AtomicBool,
) -> io::Result<()> {
    for line in input.split(b'\n') {
        let mut line = line?;
        if protocol::parse(&protocol::decode_line(&line)) == protocol::Request::Quit {
            quit_sent.store(true, Ordering::SeqCst);
        }
        line.push(b'\n');
        // write_all blocks while the server's receive window is full.
        stream.write_all(&line)?;
        trace!("write({} bytes)", line.len());
    }
    let _ = events.send(Event::InputEnded);
    quit_sent.store(true, Ordering::SeqCst);
    stream.write_all(b"/quit\n")?;
    trace!("write(/quit: 6 bytes)");
    Ok(())
}

/// Copies what the server sends to `output` until it closes.
fn print_replies(
    mut stream: TcpStream,
    mut output: impl Write,
    read_timeout: Option<Duration>,
) -> anyhow::Result<()> {
    let mut buf = [0u8; 4096];
    let mut silent_since = Instant::now();
    loop {
        // read() blocks until a byte arrives, the server closes, or the
        // read timeout passes.
        match stream.read(&mut buf) {
            Ok(0) => return Ok(()), // the server closed: the conversation is over
            Ok(n) => {
                silent_since = Instant::now();
                output.write_all(&buf[..n]).context("cannot print")?;
                output.flush().context("cannot print")?;
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            // TODO: exercise 2: a read timeout is not a lost connection: say
            // which timeout fired, after how long (a `TimeoutFired` error).
            // BEGIN SOLUTION exercise 2
            Err(err) if is_timeout(&err) => {
                return Err(TimeoutFired {
                    option: "--read-timeout",
                    after: read_timeout.unwrap_or_default(),
                    what: format!(
                        "the server sent nothing for {:.1}s",
                        silent_since.elapsed().as_secs_f32()
                    ),
                }
                .into());
            }
            // STUB: // (your match arm here)
            // END SOLUTION exercise 2
            Err(err) => return Err(anyhow::Error::new(err).context("connection lost")),
        }
    }
}

/// Waits for the server to close; once our input has ended, at most
/// [`REPLY_WAIT`] more.
fn wait_for_the_end(
    events: &mpsc::Receiver<Event>,
    quit_sent: &AtomicBool,
    shutting_down: &AtomicBool,
) -> anyhow::Result<()> {
    let mut deadline: Option<Instant> = None;
    loop {
        let event = match deadline {
            None => events.recv().ok(),
            Some(at) => events
                .recv_timeout(at.saturating_duration_since(Instant::now()))
                .ok(),
        };
        match event {
            Some(Event::InputEnded) => deadline = Some(Instant::now() + REPLY_WAIT),
            // The server closed although nobody asked to quit, and it did
            // not say it was shutting down: say so.
            Some(Event::ServerClosed(Ok(())))
                if !quit_sent.load(Ordering::SeqCst) && !shutting_down.load(Ordering::SeqCst) =>
            {
                return Err(anyhow::anyhow!("the server closed the connection"));
            }
            Some(Event::ServerClosed(result)) => return result,
            None => {
                eprintln!(
                    "note: the server did not close within {}s of /quit; stopping",
                    REPLY_WAIT.as_secs()
                );
                return Ok(());
            }
        }
    }
}
