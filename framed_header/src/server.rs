//! The server side: a thread per client, as in lesson 3. Each thread reads
//! messages, logs each as `[peer] message`, and answers `Msg received`
//! (framed, or raw with `--raw-replies`).
//!
//! ## Batching: one read for many messages, one write for many replies
//! A client that sends without waiting for each reply (a *pipelined*
//! client) puts many messages in the kernel's receive buffer at once. Two
//! system calls per message (header, then payload) and one per reply would
//! make the server spend its time entering the kernel. So:
//! - input goes through a [`BufReader`]: one `read` takes up to 16 KiB,
//!   which may hold a hundred messages, and [`MessageReader`] still reads
//!   *exactly* a header, then *exactly* a payload, from that buffer: the
//!   lesson's loop over short reads is unchanged, only cheaper;
//! - replies wait in `Outbox` and go out in one `write` when the input
//!   runs dry, that is, *just before the server would wait for more
//!   input*. That moment is the rule: a reply held back while waiting for
//!   input that never comes would be a reply never sent (a lock-step
//!   client would wait for ever).
//!
//! ## Limits: one client cannot hold the server
//! - `--max-clients`: past it, a newcomer gets `!ERROR the server is full`
//!   and is closed, instead of a thread;
//! - `--max-per-address`: one machine may not take every place (loopback,
//!   where tests and SSH tunnels come from, is never capped);
//! - out of file descriptors, `accept` fails and the newcomer would wait in
//!   the backlog for ever: a spare descriptor, freed for a moment, lets us
//!   accept it, tell it why, and close (`plumbing::limits`);
//! - `--idle-timeout`: a connection that completes no message for that
//!   long (silent, or sending a byte a minute) gets an `!ERROR` and is
//!   closed, so its thread is free again;
//! - `--write-timeout`: a client that stops reading its replies fills its
//!   receive window, our `write` blocks, and after that long we give up on
//!   it instead of blocking its thread for ever.

use std::io::{self, BufReader, Read, Write as _};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use multiclients::server::ACCEPT_RETRY_DELAY;
use plumbing::checklist::is_timeout;
use plumbing::errors::describe_io;
use plumbing::limits::{PerAddressLimit, RefusalBurst, SpareDescriptor, is_out_of_descriptors};
use plumbing::trace::preview;
use plumbing::{log, trace};

use crate::frame::{FrameError, Framing, HeaderError, MessageReader};
use crate::{ERROR_PREFIX, REPLY, is_disconnect};

/// How much of a message a log line shows.
pub const LOG_PREVIEW_BYTES: usize = 80;
/// The input buffer: how much one `read` may take in at once. A hundred
/// small messages, or 64 in flight with room to spare. Not more: the whole
/// buffer is memory the client holds while idle (std fills it with zeros
/// before the first read into it, since our source implements only
/// `read`), and 64 KiB made 1,000 idle clients cost 77 MB instead of 29.
pub const INPUT_BUF_BYTES: usize = 16 * 1024;
/// Replies waiting past this many bytes are sent at once,
/// input or not: memory per client stays bounded.
pub const OUTBOX_BYTES: usize = 64 * 1024;
/// `--max-clients` unless told otherwise: a thread each.
pub const DEFAULT_MAX_CLIENTS: usize = 1000;
/// `--idle-timeout` unless told otherwise.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(300);
/// `--write-timeout` unless told otherwise.
pub const DEFAULT_WRITE_TIMEOUT: Duration = Duration::from_secs(30);
/// The listen backlog unless told otherwise: large, so that clients that
/// connect and close in a loop find room even while `accept` is busy.
pub const DEFAULT_BACKLOG: i32 = 4096;
/// The stack each client's thread reserves. Rust's default is 2 MiB; a
/// client's thread needs far less (its buffers live on the heap), and a
/// smaller reservation makes starting and ending a thread cheaper, which
/// is what connect/close churn costs.
pub const CLIENT_STACK_BYTES: usize = 256 * 1024;

/// How the server frames and answers, and its limits.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub framing: Framing,
    /// Answer with bare `Msg received`, no header, like the tutorial.
    pub raw_replies: bool,
    /// Connections served at once; newcomers past it are turned away.
    pub max_clients: usize,
    /// Connections from one address (one IPv6 /64) at once; 0: no cap.
    /// Loopback is never capped (tests, SSH tunnels).
    pub max_per_address: usize,
    /// The longest a connection may go without completing a message.
    pub idle_timeout: Duration,
    /// The longest one write may wait for a client to make room.
    pub write_timeout: Duration,
}

impl Config {
    /// The given framing, with the default limits.
    pub fn new(framing: Framing, raw_replies: bool) -> Config {
        Config {
            framing,
            raw_replies,
            max_clients: DEFAULT_MAX_CLIENTS,
            max_per_address: plumbing::limits::DEFAULT_MAX_PER_ADDRESS,
            idle_timeout: DEFAULT_IDLE_TIMEOUT,
            write_timeout: DEFAULT_WRITE_TIMEOUT,
        }
    }

    /// Checks that the server can send the reply it owes to every message
    /// within its own `--max-payload` (error replies are fitted to it).
    pub fn validate(&self) -> Result<(), String> {
        fits_in(&self.framing, "the reply", REPLY)
    }
}

/// Whether a message of `text` fits the framing, as a one-line reason
/// naming the flags to change when it does not.
pub fn fits_in(framing: &Framing, what: &str, text: &str) -> Result<(), String> {
    let max = framing.max_payload();
    if text.len() <= max {
        return Ok(());
    }
    let needed = text.len();
    Err(format!(
        "--max-payload {max} is too small for {what} {text:?} ({needed} bytes): use \
         --max-payload {needed} or more{}",
        if needed.to_string().len() > framing.header_len() {
            format!(
                ", and --header-size {} or more to hold that length",
                needed.to_string().len()
            )
        } else {
            String::new()
        }
    ))
}

/// Accepts clients for ever, each on its own thread, and never returns: a
/// failed `accept` is logged and retried, out of file descriptors a client
/// is refused with a notice (see `Door`). The `Result` is there so that
/// `run` has the same shape as every lesson's server
/// (`plumbing::testing::start_server`).
pub fn run(listener: TcpListener, config: Config) -> anyhow::Result<()> {
    // main() checks this before it listens; a library caller gets the same
    // one-line reason instead of a server that cannot answer.
    config.validate().map_err(anyhow::Error::msg)?;
    let mut door = Door::new(config);
    loop {
        // This loop does nothing slow between two accepts (no log line, no
        // socket option): the new thread does that, so the backlog keeps
        // draining while clients connect and close in a hurry.
        let (stream, peer) = door.accept(&listener);
        match door.admit(peer) {
            Ok(seat) => start_thread(stream, peer, config, seat),
            Err(reason) => turn_away(stream, peer, config, &reason),
        }
    }
}

/// Hands the client to a thread of its own. Starting a thread can fail (the
/// system's thread or memory limit): the client is then refused with a
/// notice, not dropped in silence, so the stream waits in a shared slot
/// that whoever runs next takes it from.
fn start_thread(stream: TcpStream, peer: SocketAddr, config: Config, seat: Seat) {
    let slot = Arc::new(Mutex::new(Some(stream)));
    let for_thread = Arc::clone(&slot);
    let spawned = thread::Builder::new()
        .name(format!("client {peer}"))
        .stack_size(CLIENT_STACK_BYTES)
        .spawn(move || {
            if let Some(stream) = take(&for_thread) {
                handle_client(stream, peer, config, seat);
            }
        });
    if let Err(err) = spawned {
        log!("[{peer}] cannot start a thread: {err}; refused");
        if let Some(stream) = take(&slot) {
            turn_away(
                stream,
                peer,
                config,
                "the server cannot start a thread for you; try again later",
            );
        }
    }
}

/// Takes the stream out of its slot (a poisoned lock still holds it).
fn take(slot: &Mutex<Option<TcpStream>>) -> Option<TcpStream> {
    slot.lock().unwrap_or_else(PoisonError::into_inner).take()
}

/// The accept loop's state: what it checks before a client gets a thread.
/// - the client limit (`--max-clients`);
/// - the per-address cap (`--max-per-address`, never for loopback), from
///   `plumbing::limits`, so that one machine cannot take every place;
/// - a spare file descriptor: out of descriptors, `accept` fails and the
///   client would wait in the backlog for ever; freeing the spare lets us
///   accept it, say why, and close. Such refusals come in bursts, logged
///   once with a count.
struct Door {
    config: Config,
    places: Arc<Mutex<Places>>,
    spare: SpareDescriptor,
    out_of_files: RefusalBurst,
}

impl Door {
    fn new(config: Config) -> Door {
        Door {
            config,
            places: Arc::new(Mutex::new(Places {
                clients: 0,
                max_clients: config.max_clients,
                per_address: PerAddressLimit::new(config.max_per_address),
            })),
            spare: SpareDescriptor::reserve(),
            out_of_files: RefusalBurst::default(),
        }
    }

    /// Lesson 2's accept step, plus the out-of-descriptors case.
    fn accept(&mut self, listener: &TcpListener) -> (TcpStream, SocketAddr) {
        loop {
            // accept() takes the oldest completed handshake from the
            // backlog, blocking until there is one.
            match listener.accept() {
                Ok((stream, peer)) => {
                    trace!("accept() -> {peer}");
                    self.report_burst();
                    return (stream, peer);
                }
                Err(err) if is_out_of_descriptors(&err) => self.refuse_for_want_of_files(listener),
                Err(err) => {
                    // One failed accept (a client that reset while queued)
                    // is no reason to stop serving.
                    log!("accept failed: {}; still listening", describe_io(&err));
                    thread::sleep(ACCEPT_RETRY_DELAY);
                }
            }
        }
    }

    /// Out of descriptors: refuse the oldest waiting client with the spare.
    fn refuse_for_want_of_files(&mut self, listener: &TcpListener) {
        let max = self.config.framing.max_payload();
        let text = fit_reason(OUT_OF_FILES, "out of files", max);
        let notice = reply_bytes(self.config, &text).unwrap_or_default();
        // Refuse only a client that is already waiting: our listener
        // blocks, and refuse_one's accept would otherwise wait for the next
        // arrival and refuse it even if descriptors are free again by then.
        let _ = listener.set_nonblocking(true);
        let refused = self.spare.refuse_one(listener, &notice);
        let _ = listener.set_nonblocking(false);
        match refused {
            Some(peer) => {
                if self.out_of_files.record(Instant::now()) {
                    log!("[{peer}] refused: {OUT_OF_FILES} (more refusals are counted)");
                }
            }
            // Nobody waiting, or no spare to free: wait for a client to
            // leave instead of spinning on an accept that keeps failing.
            None => thread::sleep(ACCEPT_RETRY_DELAY),
        }
        self.report_burst();
    }

    /// Logs the count of a burst of refusals once it is over.
    fn report_burst(&mut self) {
        if let Some(refused) = self.out_of_files.ended(Instant::now()) {
            log!("refused {refused} connection(s) in all: {OUT_OF_FILES}");
        }
    }

    /// A place for `peer`, or the reason it gets none.
    fn admit(&self, peer: SocketAddr) -> Result<Seat, String> {
        Places::take(&self.places, peer.ip())
    }
}

/// Why a client is refused when the process has no descriptor left.
const OUT_OF_FILES: &str = "the server is out of file descriptors; try again later";

/// Who is connected: how many, and from where. One lock guards both: the
/// accept loop takes it to admit a client, a client's thread to leave, each
/// for a few instructions.
struct Places {
    clients: usize,
    max_clients: usize,
    per_address: PerAddressLimit,
}

impl Places {
    /// A place for a client from `ip`, or the reason it gets none.
    fn take(places: &Arc<Mutex<Places>>, ip: IpAddr) -> Result<Seat, String> {
        let mut guard = lock(places);
        if guard.clients >= guard.max_clients {
            return Err(format!(
                "the server is full (--max-clients {}); try again later",
                guard.max_clients
            ));
        }
        if !guard.per_address.try_admit(ip) {
            return Err(format!(
                "too many connections from {ip} (--max-per-address {}); try again later",
                guard.per_address.max_per_address()
            ));
        }
        guard.clients += 1;
        Ok(Seat {
            places: Arc::clone(places),
            ip,
        })
    }
}

/// Locks `places`; a lock poisoned by a panicking thread still holds
/// valid counts (every change is one statement).
fn lock(places: &Mutex<Places>) -> MutexGuard<'_, Places> {
    places.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One client's place, under `--max-clients` and its address's cap, given
/// back when dropped (when the client's thread ends, however it ends).
pub struct Seat {
    places: Arc<Mutex<Places>>,
    ip: IpAddr,
}

impl Drop for Seat {
    fn drop(&mut self) {
        let mut places = lock(&self.places);
        places.clients -= 1;
        places.per_address.release(self.ip);
    }
}

/// Refuses a newcomer without a thread: one short error reply, then close.
/// Nothing here may block the accept loop: the reply fits in the empty
/// send buffer of a new socket, and we only drop what already arrived.
fn turn_away(stream: TcpStream, peer: SocketAddr, config: Config, reason: &str) {
    log!("[{peer}] turned away: {reason}");
    let _ = stream.set_nonblocking(true);
    let text = fit_reason(reason, reason, config.framing.max_payload());
    let _ = reply_bytes(config, &text).map(|bytes| (&stream).write_all(&bytes));
    let _ = stream.shutdown(Shutdown::Write);
    // Unread bytes at close make the kernel send RST, which can destroy
    // the reply: read what already came (never wait), then close.
    let mut buf = [0u8; 4096];
    while matches!((&stream).read(&mut buf), Ok(n) if n > 0) {}
}

/// Serves one connection to its end and logs how it ended. Nothing that
/// happens here reaches any other client.
pub fn handle_client(stream: TcpStream, peer: SocketAddr, config: Config, seat: Seat) {
    log!("[{peer}] connected");
    // We batch replies ourselves, so Nagle's algorithm has nothing left to
    // merge: it would only hold a batch back until the last one is acked.
    let _ = stream.set_nodelay(true);
    // Every write waits at most this long for the client to make room.
    let _ = stream.set_write_timeout(Some(config.write_timeout));
    match converse(&stream, peer, config) {
        Ok(Ending::Goodbye) => {
            log!("[{peer}] said goodbye; connection closed");
            basic::net::close_gently(&stream, peer);
        }
        Ok(Ending::Closed) => log!("[{peer}] left"),
        Ok(Ending::Idle) => {
            let reason = format!(
                "no complete message for {}s (the server's --idle-timeout); closing",
                config.idle_timeout.as_secs_f32()
            );
            log!("[{peer}] idle: {reason}");
            refuse(&stream, peer, config, &reason, "idle too long");
        }
        Ok(Ending::StoppedReading) => log!(
            "[{peer}] stopped reading: no reply taken for {}s (--write-timeout); \
             connection closed",
            config.write_timeout.as_secs_f32()
        ),
        Err(err) if err.is_protocol_violation() => {
            log!("[{peer}] rejected: {err}; closing the connection");
            refuse(
                &stream,
                peer,
                config_for(config, &err),
                &err.to_string(),
                &err.short(),
            );
        }
        Err(FrameError::Io(err)) => log!("[{peer}] connection lost: {err}"),
        // Closed mid-header or mid-payload: nobody is left to answer.
        Err(err) => log!("[{peer}] disconnected: {err}"),
    }
    trace!("close({peer})");
    drop(seat);
}

/// A peer whose header has another size than ours cannot read our framed
/// replies (it would take our header for its header and part of the
/// text): tell it why in raw bytes, which a tutorial client prints as
/// they are.
fn config_for(config: Config, err: &FrameError) -> Config {
    match err {
        FrameError::BadHeader(HeaderError::OtherSize { .. }) => Config {
            raw_replies: true,
            ..config
        },
        _ => config,
    }
}

/// How a conversation ended, when no error reply is owed for the message.
enum Ending {
    Goodbye,
    Closed,
    Idle,
    StoppedReading,
}

/// Reads messages through the input buffer and answers them through the
/// outbox, until the conversation ends.
fn converse(stream: &TcpStream, peer: SocketAddr, config: Config) -> Result<Ending, FrameError> {
    let reply = reply_bytes(config, REPLY)?;
    let mut input = BufReader::with_capacity(INPUT_BUF_BYTES, Outbox::new(stream, peer, config));
    let mut reader = MessageReader::new(config.framing);
    let result = answer_messages(&mut input, &mut reader, &reply);
    // Whatever ended the loop, the replies to the messages before it are
    // owed, and go first (before an error reply, say).
    let outbox = input.get_mut();
    let sent = if outbox.write_stalled {
        Ok(())
    } else {
        outbox.send_pending()
    };
    match (result, sent) {
        (Err(FrameError::Io(err)), _) | (Ok(_), Err(err)) if is_timeout(&err) => {
            Ok(if outbox.write_stalled {
                Ending::StoppedReading
            } else {
                Ending::Idle
            })
        }
        (Ok(_), Err(err)) => Err(FrameError::Io(err)),
        (result, _) => result,
    }
}

/// The message loop: read one message, log it, queue its reply.
fn answer_messages(
    input: &mut BufReader<Outbox>,
    reader: &mut MessageReader,
    reply: &[u8],
) -> Result<Ending, FrameError> {
    loop {
        // None: the peer closed between two messages, the polite way to
        // leave without a goodbye. (The tutorial's server, which ignores
        // this case, loops for ever on reads that return nothing.)
        let Some(message) = reader.read_message(input)? else {
            return Ok(Ending::Closed);
        };
        let goodbye = is_disconnect(message);
        let outbox = input.get_mut();
        outbox.note(message);
        outbox.queue(reply)?;
        if goodbye {
            return Ok(Ending::Goodbye);
        }
    }
}

/// The replies waiting to be sent on one connection, and the socket they
/// go to. It is also where input comes from: [`Outbox`] implements
/// [`Read`], and sends everything pending *before* it waits for the peer's
/// next bytes.
struct Outbox<'a> {
    stream: &'a TcpStream,
    /// `[peer] `, the start of each log line, formatted once.
    log_prefix: String,
    config: Config,
    replies: Vec<u8>,
    /// When the message being read must be complete; `None` between
    /// messages, set by the first wait for the next one.
    deadline: Option<Instant>,
    /// A write timed out: the client stopped reading.
    write_stalled: bool,
}

impl<'a> Outbox<'a> {
    fn new(stream: &'a TcpStream, peer: SocketAddr, config: Config) -> Outbox<'a> {
        Outbox {
            stream,
            log_prefix: format!("[{peer}] "),
            config,
            replies: Vec::new(),
            deadline: None,
            write_stalled: false,
        }
    }

    /// Logs one message. Quoted and escaped: a payload may hold `\n` or
    /// control bytes, and one message must stay one log line. (`log!` never
    /// waits for the console: it queues the line, or counts it as skipped.)
    fn note(&mut self, message: &str) {
        if is_plain(message) {
            // The common case, without building a String per message: at a
            // million messages a second, that allocation is what shows.
            log!("{}\"{message}\"", self.log_prefix);
        } else {
            let shown = preview(message.as_bytes(), LOG_PREVIEW_BYTES);
            log!("{}{shown}", self.log_prefix);
        }
        // A message completed: the next one gets a fresh idle deadline.
        self.deadline = None;
    }

    /// Queues one reply; sends the batch early if it grew large.
    fn queue(&mut self, reply: &[u8]) -> io::Result<()> {
        self.replies.extend_from_slice(reply);
        if self.replies.len() >= OUTBOX_BYTES {
            self.send_pending()?;
        }
        Ok(())
    }

    /// Sends the batch's replies in one write.
    fn send_pending(&mut self) -> io::Result<()> {
        if self.replies.is_empty() {
            return Ok(());
        }
        // write_all() loops over short writes; it blocks while the
        // client's receive window is full, at most --write-timeout per write.
        if let Err(err) = self.stream.write_all(&self.replies) {
            self.write_stalled = is_timeout(&err);
            return Err(err);
        }
        trace!(
            "write({} bytes: the replies of one batch)",
            self.replies.len()
        );
        self.replies.clear();
        Ok(())
    }

    /// Bounds the coming wait by the current message's deadline.
    fn bound_wait(&mut self) -> io::Result<()> {
        let now = Instant::now();
        let deadline = *self.deadline.get_or_insert(now + self.config.idle_timeout);
        let left = deadline.saturating_duration_since(now);
        if left.is_zero() {
            return Err(io::ErrorKind::TimedOut.into());
        }
        self.stream.set_read_timeout(Some(left))
    }
}

impl Read for Outbox<'_> {
    /// Called by the [`BufReader`] only when its buffer is empty: the
    /// input ran dry, so this is the moment to send what is pending.
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        self.send_pending()?;
        self.bound_wait()?;
        // read() blocks until at least one byte has arrived (or the idle
        // deadline passes), then returns what is there, up to buf.len().
        let n = self.stream.read(buf)?;
        trace!("read(up to {} bytes) -> {n}", buf.len());
        Ok(n)
    }
}

/// Whether `preview` would show `message` as it is: short, printable
/// ASCII, and nothing it escapes (quotes, backslash).
fn is_plain(message: &str) -> bool {
    message.len() <= LOG_PREVIEW_BYTES
        && message
            .bytes()
            .all(|b| matches!(b, b' '..=b'~') && !matches!(b, b'"' | b'\'' | b'\\'))
}

/// The bytes of one reply: framed, or raw with `--raw-replies`.
fn reply_bytes(config: Config, text: &str) -> io::Result<Vec<u8>> {
    if config.raw_replies {
        // The tutorial's way: bare bytes, and the client must guess where
        // they end (it reads once, up to 2048 bytes, and hopes).
        Ok(text.as_bytes().to_vec())
    } else {
        config
            .framing
            .encode(text)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))
    }
}

/// Tells the peer why it is cut off (`!ERROR <reason>`, framed or raw like
/// any reply), and closes. After a protocol violation its stream is out
/// of step, so there is no reading on.
fn refuse(mut stream: &TcpStream, peer: SocketAddr, config: Config, reason: &str, short: &str) {
    let text = fit_reason(reason, short, config.framing.max_payload());
    let sent = reply_bytes(config, &text).and_then(|bytes| stream.write_all(&bytes));
    if let Err(err) = sent {
        trace!("could not send the error reply: {err}");
    }
    basic::net::close_gently(stream, peer);
}

/// `!ERROR <reason>` within `max` bytes: a reply is a message too, and a
/// peer with the same limit must be able to read it. The long reason if
/// it fits, else the short one, else the short one cut after a whole
/// word, `!ERROR` alone at worst: never mid-word. ([`Config::validate`]
/// makes sure the limit holds at least the 12 bytes of `Msg received`.)
pub fn fit_reason(reason: &str, short: &str, max: usize) -> String {
    for candidate in [reason, short] {
        let text = format!("{ERROR_PREFIX}{candidate}");
        if text.len() <= max {
            return text;
        }
    }
    let text = format!("{ERROR_PREFIX}{short}");
    // The last space that leaves at most `max` bytes before it; the one
    // after `!ERROR` is always there.
    let cut = text
        .match_indices(' ')
        .map(|(at, _)| at)
        .take_while(|&at| at <= max)
        .last()
        .unwrap_or(ERROR_PREFIX.len() - 1);
    text[..cut].to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seats_run_out_at_the_limit_and_come_back_when_dropped() {
        let places = places(2, 0);
        let ip = IpAddr::from([192, 0, 2, 1]);
        let first = Places::take(&places, ip).expect("a first seat");
        let second = Places::take(&places, ip).expect("a second seat");
        assert_eq!(
            Places::take(&places, ip).err().unwrap(),
            "the server is full (--max-clients 2); try again later"
        );
        drop(first);
        let third = Places::take(&places, ip).expect("the first seat, given back");
        drop((second, third));
        assert_eq!(lock(&places).clients, 0);
    }

    fn places(max_clients: usize, max_per_address: usize) -> Arc<Mutex<Places>> {
        Arc::new(Mutex::new(Places {
            clients: 0,
            max_clients,
            per_address: PerAddressLimit::new(max_per_address),
        }))
    }

    #[test]
    fn one_address_is_capped_and_its_places_come_back() {
        let places = places(10, 1);
        let take = |ip: [u8; 4]| Places::take(&places, IpAddr::from(ip));
        let first = take([192, 0, 2, 1]).expect("a first seat");
        assert_eq!(
            take([192, 0, 2, 1]).err().unwrap(),
            "too many connections from 192.0.2.1 (--max-per-address 1); try again later"
        );
        let other = take([192, 0, 2, 2]).expect("another address is not capped by the first");
        drop(first);
        let again = take([192, 0, 2, 1]).expect("its place came back");
        drop((other, again));
        assert_eq!(lock(&places).clients, 0);
    }

    #[test]
    fn plain_messages_are_logged_as_preview_would_show_them() {
        for text in ["hello", "a b c", "", "x".repeat(LOG_PREVIEW_BYTES).as_str()] {
            assert!(is_plain(text), "{text}");
            assert_eq!(
                format!("\"{text}\""),
                preview(text.as_bytes(), LOG_PREVIEW_BYTES)
            );
        }
        for text in [
            "it's",
            "say \"hi\"",
            "a\\b",
            "tab\t",
            "é",
            "x".repeat(81).as_str(),
        ] {
            assert!(!is_plain(text), "{text}");
        }
    }

    #[test]
    fn a_reason_that_fits_is_sent_whole() {
        assert_eq!(
            fit_reason("long reason", "short", 100),
            "!ERROR long reason"
        );
    }

    #[test]
    fn a_reason_too_long_falls_back_to_the_short_one() {
        assert_eq!(fit_reason("a long reason", "short", 14), "!ERROR short");
    }

    #[test]
    fn a_short_reason_too_long_is_cut_after_a_whole_word() {
        assert_eq!(
            fit_reason("x".repeat(50).as_str(), "bad header byte 12", 20),
            "!ERROR bad header"
        );
        assert_eq!(fit_reason("a long reason", "refused now", 13), "!ERROR");
        assert_eq!(
            fit_reason("a long reason", "refused now", 14),
            "!ERROR refused"
        );
    }

    #[test]
    fn settings_too_small_for_the_reply_are_refused() {
        let config = |header, max| Config::new(Framing::new(header, max).unwrap(), false);
        assert_eq!(
            config(1, 9).validate().unwrap_err(),
            "--max-payload 9 is too small for the reply \"Msg received\" (12 bytes): use \
             --max-payload 12 or more, and --header-size 2 or more to hold that length"
        );
        assert!(config(4, 11).validate().is_err());
        assert!(config(2, 12).validate().is_ok());
    }
}
