//! The server side: the main thread accepts; each client gets a thread that
//! reads its lines and acts on them, and a second thread that writes what is
//! queued for it. The threads meet only in the shared [`Room`].
//!
//! ```text
//! main thread:   accept() -> spawn ----------------------------------+
//!                                                                    |
//! client thread: read() -> line -> room.say() --outbox.put()--> outboxes of the others
//! writer thread: queue.next() -> write_all() ...  (one per client, no lock held)
//! ```

use std::io::{self, Read as _, Write as _};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::sync::Arc;
use std::thread;
use std::time::{Duration, Instant};

use basic::{log, trace};

use crate::outbox::{Queue, outbox};
use crate::protocol::{LineBuffer, MAX_LINE_BYTES, Request, decode_line, notice};
use crate::room::{ClientId, Leaving, Member, Room, RoomFull};

/// How many clients may be connected at once unless `--max-clients` says
/// otherwise. Each costs two threads (see the README on why that limits us).
pub const DEFAULT_MAX_CLIENTS: usize = 1000;

/// How many bytes may wait in one client's outbox. A client that falls this
/// far behind (on top of what the kernel buffers for it) is disconnected.
/// A burst of thousands of short lines fits; a client that stopped reading
/// while the room talks on does not. At the default `--max-clients`, the
/// outboxes can hold 256 MiB in all: that is the server's memory bound.
pub const OUTBOX_BYTES: usize = 256 * 1024;

/// A writer whose `write` makes no progress for this long has a client that
/// stopped reading: it is disconnected even in a quiet room, where its
/// outbox would take a long time to fill.
pub const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// The kernel's send buffer for each client. Left alone, Linux grows it up to
/// 4 MiB (`net.ipv4.tcp_wmem`), and a client that stopped reading would
/// swallow megabytes before its outbox even started to fill. Small enough that
/// "not reading" shows quickly; large enough for a burst of chat lines.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How many bytes one `read` may take from a client.
pub const READ_BUF_BYTES: usize = 8 * 1024;

/// The writer sends queued lines in batches of about this size: one `write`
/// call for many lines when a client has fallen behind.
pub const BATCH_BYTES: usize = 16 * 1024;

/// Stack reserved for each thread. Rust's default is 2 MiB of address space;
/// our threads need little, and at a thousand clients (two thousand threads)
/// the reservation adds up.
pub const THREAD_STACK_BYTES: usize = 256 * 1024;

/// After we stop reading a client, how long and how many bytes we keep
/// draining its input while our last lines leave (see `close_gently`).
pub const LINGER_TIMEOUT: Duration = Duration::from_secs(2);
pub const LINGER_BYTES: usize = 1024 * 1024;

/// The server's settings (the command line's `server` options).
#[derive(Debug, Clone)]
pub struct ServerOptions {
    /// `--max-clients`: a client over the limit gets a notice and is closed.
    pub max_clients: usize,
    /// `--no-join-notices` sets this to false: no `joined`/`left` notices.
    pub join_notices: bool,
    /// Log every chat line on stdout (benchmarks turn this off).
    pub log_messages: bool,
    /// See [`OUTBOX_BYTES`].
    pub outbox_bytes: usize,
    /// See [`WRITE_TIMEOUT`].
    pub write_timeout: Duration,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_clients: DEFAULT_MAX_CLIENTS,
            join_notices: true,
            log_messages: true,
            outbox_bytes: OUTBOX_BYTES,
            write_timeout: WRITE_TIMEOUT,
        }
    }
}

/// Serves clients at once, one thread each, for ever: this never returns
/// (the `Result` keeps every lesson's `run` alike).
pub fn run(listener: TcpListener, options: &ServerOptions) -> anyhow::Result<()> {
    let room = Arc::new(Room::new(
        options.max_clients,
        options.join_notices,
        options.log_messages,
    ));
    let mut next_id: ClientId = 0;
    loop {
        // Lesson 2's accept step: blocks until a client has completed the
        // handshake (the kernel did it, in the backlog); a failed accept is
        // logged and retried.
        let (stream, peer) = multiclients::server::accept_next(&listener);
        next_id += 1;
        spawn_client(stream, peer, next_id, &room, options);
    }
}

/// Starts the thread that serves one client; the accept loop goes straight
/// back to `accept`.
fn spawn_client(
    stream: TcpStream,
    peer: SocketAddr,
    id: ClientId,
    room: &Arc<Room>,
    options: &ServerOptions,
) {
    let room = Arc::clone(room);
    let options = options.clone();
    let spawned = thread::Builder::new()
        .name(format!("client {peer}"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || handle_client(stream, peer, id, &room, &options));
    // Threads are a finite resource: when the system refuses one, this
    // client is closed (its stream dropped with the closure) and we go on.
    if let Err(err) = spawned {
        log!("{peer}: cannot start a thread ({err}); closing the connection");
    }
}

/// One client from start to end, on its own thread: join the room, start the
/// writer, read lines until the client leaves, then clean up.
fn handle_client(
    stream: TcpStream,
    peer: SocketAddr,
    id: ClientId,
    room: &Arc<Room>,
    options: &ServerOptions,
) {
    log!("{peer}: connected");
    if let Err(err) = tune(&stream, peer, options) {
        log!("{peer}: cannot set up the socket: {err}");
        return;
    }
    // Three users of one socket: this thread reads, the writer thread
    // writes, and the room keeps a handle to hang up on the client. `&TcpStream`
    // implements Read and Write, so they share it through an `Arc`. (try_clone()
    // would work too, but it dup()s the file descriptor: three per client, and
    // descriptors are a limited resource, see `ulimit -n`.)
    let stream = Arc::new(stream);
    // The bounded queue between the room and this client's writer thread.
    let (outbox, queue) = outbox(options.outbox_bytes);
    let member = Member::new(peer, outbox, Arc::clone(&stream));
    if let Err(full) = room.join(id, member) {
        return refuse(&stream, peer, full);
    }
    if let Some(writer) = spawn_writer(Arc::clone(&stream), queue, peer, id, room) {
        let why = read_lines(&stream, peer, id, room);
        // Leaving the room drops the last sender of our outbox: the writer
        // sends what is still queued, sees the queue end, and half-closes.
        let _ = room.leave(id, why);
        let _ = writer.join(); // waits at most about `write_timeout`
    }
    close_gently(&stream, peer);
} // the last Arc of the stream is dropped here (or when the room lets go): close()

/// Socket options for a chat connection; each says what the kernel will do.
fn tune(stream: &TcpStream, peer: SocketAddr, options: &ServerOptions) -> io::Result<()> {
    // Chat lines are small and someone is waiting for each: send them at
    // once instead of letting Nagle's algorithm hold them back to merge.
    stream.set_nodelay(true)?;
    // A blocked write() gives up after this long with a timeout error.
    stream.set_write_timeout(Some(options.write_timeout))?;
    // Through socket2: std has no setter for SO_SNDBUF.
    socket2::SockRef::from(stream).set_send_buffer_size(SEND_BUFFER_BYTES)?;
    trace!("setsockopt({peer}, TCP_NODELAY, SO_SNDTIMEO, SO_SNDBUF = {SEND_BUFFER_BYTES})");
    Ok(())
}

/// Over `--max-clients`: one notice, written directly (this client has no
/// writer thread, and a fresh socket's empty send buffer takes it at once),
/// then close.
fn refuse(stream: &TcpStream, peer: SocketAddr, RoomFull(max): RoomFull) {
    log!("{peer}: refused, the room is full ({max} clients)");
    let line = notice(format_args!(
        "sorry, the room is full ({max} of {max} places taken); try again later"
    ));
    let _ = (&*stream).write_all(line.as_bytes());
    close_gently(stream, peer);
}

/// Reads the client's lines and acts on each until it leaves; returns why.
fn read_lines(mut stream: &TcpStream, peer: SocketAddr, id: ClientId, room: &Room) -> Leaving {
    let mut buf = [0u8; READ_BUF_BYTES];
    let mut lines = LineBuffer::new(MAX_LINE_BYTES);
    // The chat lines of one read, delivered together; reused for every read.
    let mut said = Vec::new();
    loop {
        // read() blocks until at least one byte arrived (perhaps half a line,
        // perhaps many lines), or returns 0 when the client closed its side.
        let n = match stream.read(&mut buf) {
            Ok(0) => return Leaving::Left,
            Ok(n) => n,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return lost(peer, &err),
        };
        trace!("read({peer}) -> {n} bytes");
        lines.extend(&buf[..n]);
        let flow = handle_lines(&mut lines, &mut said, peer, id, room);
        room.say(id, &said);
        said.clear();
        if let ControlFlow::Break(why) = flow {
            return why;
        }
    }
}

/// A reset (the client vanished) or another error ends this client only.
fn lost(peer: SocketAddr, err: &io::Error) -> Leaving {
    log!("{peer}: connection lost: {err}");
    Leaving::Lost
}

/// Acts on every complete line received so far (so that `LineBuffer` never
/// holds more than one bounded line). Chat lines are collected in `said`;
/// a command first delivers what was said before it, to keep the order.
/// `Break` means this client is leaving.
fn handle_lines(
    lines: &mut LineBuffer,
    said: &mut Vec<String>,
    peer: SocketAddr,
    id: ClientId,
    room: &Room,
) -> ControlFlow<Leaving> {
    while let Some(line) = lines.next_line() {
        let Ok(raw) = line else {
            log!("{peer}: sent a line over {MAX_LINE_BYTES} bytes; disconnecting");
            let error = format!("error: line longer than {MAX_LINE_BYTES} bytes; disconnecting");
            room.tell(id, &error);
            return ControlFlow::Break(Leaving::LineTooLong);
        };
        let line = decode_line(&raw);
        match crate::protocol::parse(&line) {
            Request::Say(text) => said.push(text.to_string()),
            command => {
                room.say(id, said);
                said.clear();
                if let ControlFlow::Break(why) = obey(command, id, room) {
                    return ControlFlow::Break(why);
                }
            }
        }
    }
    ControlFlow::Continue(())
}

/// Carries out one command; `Break` for `/quit`.
fn obey(command: Request, id: ClientId, room: &Room) -> ControlFlow<Leaving> {
    match command {
        Request::Nick(name) => room.rename(id, name),
        Request::Who => room.who(id),
        Request::Quit => return ControlFlow::Break(Leaving::Left),
        Request::Unknown(command) => room.tell(
            id,
            &format!("unknown command {command:?}; try /nick NAME, /who or /quit"),
        ),
        Request::Say(_) => {} // handled by the caller
    }
    ControlFlow::Continue(())
}

/// Starts this client's writer thread. If the system refuses a thread, the
/// client leaves the room at once and we return `None`.
fn spawn_writer(
    stream: Arc<TcpStream>,
    queue: Queue,
    peer: SocketAddr,
    id: ClientId,
    room: &Arc<Room>,
) -> Option<thread::JoinHandle<()>> {
    let shared = Arc::clone(room);
    let spawned = thread::Builder::new()
        .name(format!("writer {peer}"))
        .stack_size(THREAD_STACK_BYTES)
        .spawn(move || write_outbox(stream, queue, peer, id, &shared));
    match spawned {
        Ok(handle) => Some(handle),
        Err(err) => {
            log!("{peer}: cannot start a writer thread ({err}); closing the connection");
            let _ = room.leave(id, Leaving::Lost);
            None
        }
    }
}

/// The writer thread: sends what the room queued for this client, with no
/// lock held, until the queue ends (the client left) or a write fails.
fn write_outbox(stream: Arc<TcpStream>, queue: Queue, peer: SocketAddr, id: ClientId, room: &Room) {
    match send_queued(&stream, &queue, peer) {
        // The client left and everything queued for it went out: FIN.
        Ok(()) => {
            let _ = stream.shutdown(Shutdown::Write);
            trace!("shutdown({peer}, Write)");
        }
        Err(err) => {
            let why = match basic::checklist::is_timeout(&err) {
                true => Leaving::NotReading,
                false => Leaving::Lost,
            };
            // If the client already left (its reader saw the reset first, or
            // the room dropped it), this failure is expected: no log line.
            if room.leave(id, why) {
                log!("{peer}: write failed: {err}");
            }
            // Wake this client's reader thread: its read() returns 0.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Takes lines off the queue and writes them, batching whatever has piled up
/// into one `write` call. One allocation for the batch buffer, reused.
fn send_queued(mut stream: &TcpStream, queue: &Queue, peer: SocketAddr) -> io::Result<()> {
    let mut batch = Vec::with_capacity(BATCH_BYTES + MAX_LINE_BYTES);
    // next() blocks until a line is queued for this client; it returns
    // None once the client has left the room and the queue is empty.
    while let Some(line) = queue.next() {
        batch.clear();
        batch.extend_from_slice(line.as_bytes());
        // next_waiting() never blocks: take what else is already waiting.
        while batch.len() < BATCH_BYTES {
            match queue.next_waiting() {
                Some(line) => batch.extend_from_slice(line.as_bytes()),
                None => break,
            }
        }
        // write_all() loops over short writes. It blocks while this client's
        // receive window and our send buffer are full, that is while the
        // client is not reading, and gives up after the write timeout.
        stream.write_all(&batch)?;
        trace!("write({peer}, {} bytes)", batch.len());
    }
    Ok(())
}

/// Ends a connection without losing our last lines. shutdown(Write) queues
/// our FIN after every byte already sent; then we read and discard what the
/// client still sends, until it closes too. Closing a socket that has unread
/// input makes the kernel send RST instead of FIN, and a reset can destroy
/// our last notice ("line too long") before the client reads it.
fn close_gently(mut stream: &TcpStream, peer: SocketAddr) {
    let _ = stream.shutdown(Shutdown::Write);
    trace!("shutdown({peer}, Write)");
    // Bounded twice over: at most LINGER_BYTES, within LINGER_TIMEOUT in all,
    // so a client that trickles bytes cannot keep this thread for ever.
    let deadline = Instant::now() + LINGER_TIMEOUT;
    let mut buf = [0u8; READ_BUF_BYTES];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        // read() waits for the client's next bytes or its FIN (0), at most `left`.
        match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    trace!("close({peer})");
}
