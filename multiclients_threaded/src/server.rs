//! The server side: the main thread accepts; each client gets a thread that
//! reads its lines and acts on them, and a second thread that writes what is
//! queued for it. The threads meet only in the shared [`Room`].
//!
//! ```text
//! main thread:   accept() -> spawn ----------------------------------+
//!                                                                    |
//! client thread: read() -> lines -> room.say() --outbox.put()--> outboxes of the others
//!                                -> pressure.wait()  (only if an outbox is over its mark)
//! writer thread: queue.take_into() -> write() ...  (one per client, no lock held)
//! ```
//!
//! Flow control, in three rules (see `outbox.rs` for the queue itself):
//! 1. A line is never dropped: every outbox takes every line.
//! 2. A client thread whose delivery left some outbox over its high-water
//!    mark waits until it drains, and reads nothing from its own client
//!    meanwhile: TCP then slows that sender down.
//! 3. Only a writer whose `write` makes no progress for the stall timeout
//!    gives up on its client, with a notice the client can read later.

use std::io::{self, Read as _, Write as _};
use std::net::{IpAddr, Shutdown, SocketAddr, TcpListener, TcpStream};
use std::ops::ControlFlow;
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

use plumbing::limits::{self, PerAddressLimit, RefusalBurst, SpareDescriptor};
use plumbing::trace::preview;
use plumbing::{log, trace};

use crate::outbox::{Budget, Queue, outbox};
use crate::protocol::{LineBuffer, MAX_LINE_BYTES, Request, decode_line, notice};
use crate::room::{ClientId, Leaving, Member, Room, RoomFull};

/// How many clients may be connected at once unless `--max-clients` says
/// otherwise. Each costs two threads (see the README on why that limits us).
pub const DEFAULT_MAX_CLIENTS: usize = 1000;

/// The high-water mark of one client's outbox, in bytes. Past it, the
/// threads that deliver to this client wait until its writer catches up.
/// A burst of thousands of short lines fits without anyone waiting.
pub const OUTBOX_BYTES: usize = 256 * 1024;

/// The memory budget for queued lines across the whole server: past it,
/// every sender waits, whichever outbox holds the bytes.
pub const QUEUE_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// A writer whose `write` makes no progress for this long has a client that
/// stopped reading: it is disconnected (`--stall-timeout`).
pub const STALL_TIMEOUT: Duration = Duration::from_secs(5);

/// A client that has not finished its first line this long after
/// connecting is closed (`--first-line-timeout`): silent connections must
/// not fill the room.
pub const FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// The kernel's send buffer for each client. Left alone, Linux grows it up to
/// 4 MiB (`net.ipv4.tcp_wmem`), and a client that stopped reading would
/// swallow megabytes before its outbox even started to fill. Small enough that
/// "not reading" shows quickly; large enough for a burst of chat lines.
pub const SEND_BUFFER_BYTES: usize = 64 * 1024;

/// How many bytes one `read` may take from a client: many short lines in
/// one system call when a client sends fast.
pub const READ_BUF_BYTES: usize = 64 * 1024;

/// A client thread delivers what it has read in pieces of about this many
/// bytes (as the others receive them, names included), waiting for slow
/// recipients between pieces: how far past a recipient's mark one sender
/// can push it.
pub const DELIVERY_BYTES: usize = 32 * 1024;

/// The writer sends at most this many queued bytes per `write` call (all
/// that is queued, usually).
pub const BATCH_BYTES: usize = 64 * 1024;

/// Stack reserved for each thread. Rust's default is 2 MiB of address space;
/// our threads need little, and at a thousand clients (two thousand threads)
/// the reservation adds up.
pub const THREAD_STACK_BYTES: usize = 256 * 1024;

/// How threads are started: [`spawn_thread`], unless a test injects a
/// failure (a thread name, and the body to run).
pub type SpawnFn = fn(String, Box<dyn FnOnce() + Send>) -> io::Result<thread::JoinHandle<()>>;

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
    /// See [`QUEUE_BUDGET_BYTES`] (`--queue-budget-mib`).
    pub queue_budget_bytes: usize,
    /// See [`STALL_TIMEOUT`].
    pub stall_timeout: Duration,
    /// See [`FIRST_LINE_TIMEOUT`].
    pub first_line_timeout: Duration,
    /// `--max-per-address`: connections from one address (IPv6: one /64)
    /// at once; 0 turns the cap off. Loopback is never capped.
    pub max_per_address: usize,
    /// See [`SpawnFn`].
    pub spawn: SpawnFn,
}

impl Default for ServerOptions {
    fn default() -> Self {
        ServerOptions {
            max_clients: DEFAULT_MAX_CLIENTS,
            join_notices: true,
            log_messages: true,
            outbox_bytes: OUTBOX_BYTES,
            queue_budget_bytes: QUEUE_BUDGET_BYTES,
            stall_timeout: STALL_TIMEOUT,
            first_line_timeout: FIRST_LINE_TIMEOUT,
            max_per_address: limits::DEFAULT_MAX_PER_ADDRESS,
            spawn: spawn_thread,
        }
    }
}

/// Starts a named thread with a small stack. Fails (it does not panic, as
/// `thread::spawn` would) when the system refuses a new thread.
pub fn spawn_thread(
    name: String,
    body: Box<dyn FnOnce() + Send>,
) -> io::Result<thread::JoinHandle<()>> {
    thread::Builder::new()
        .name(name)
        .stack_size(THREAD_STACK_BYTES)
        .spawn(body)
}

/// Serves clients at once, one thread each, for ever: this never returns
/// (the `Result` keeps every lesson's `run` alike).
pub fn run(listener: TcpListener, options: &ServerOptions) -> anyhow::Result<()> {
    // Each client holds one file descriptor (its socket, shared by its two
    // threads): more clients than the process may open files is a promise
    // we could not keep.
    let (max_clients, note) = limits::fit_to_open_files(options.max_clients, 1);
    let (max_clients, maps_note) = fit_to_thread_maps(max_clients);
    for note in [note, maps_note].into_iter().flatten() {
        log!("{note}");
    }
    let budget = Budget::new(options.queue_budget_bytes);
    let room = Arc::new(Room::new(
        max_clients,
        options.join_notices,
        options.log_messages,
        budget,
    ));
    let mut door = Door {
        per_address: Arc::new(Mutex::new(PerAddressLimit::new(options.max_per_address))),
        spare: SpareDescriptor::reserve(),
        out_of_files: RefusalBurst::default(),
        crowded: RefusalBurst::default(),
    };
    let mut next_id: ClientId = 0;
    loop {
        // Everything slow (socket options, greeting, logging) happens on the
        // client's own thread, so that this loop takes connections off the
        // backlog as fast as they arrive.
        let (stream, peer) = door.accept(&listener);
        let Some(place) = door.admit(&stream, peer) else {
            continue;
        };
        next_id += 1;
        spawn_client(Arc::new(stream), peer, next_id, place, &room, options);
    }
}

/// Memory mappings per client: two threads, each with a stack, its guard
/// page, a signal stack and its guard.
const MAPS_PER_CLIENT: u64 = 8;
/// Mappings for everything else: the program, its libraries, the heap.
const MAPS_FOR_THE_SERVER: u64 = 1000;

/// The client limit lowered to what the memory-mapping limit allows.
/// Linux caps the mappings of one process (`vm.max_map_count`, often
/// 65,530), and a thread that cannot map its signal stack aborts the whole
/// process inside std, where no error can be caught: so the room never
/// grows that far. Elsewhere, a refused thread is an error we handle.
fn fit_to_thread_maps(wanted: usize) -> (usize, Option<String>) {
    let Some(max_maps) = max_map_count() else {
        return (wanted, None);
    };
    let fits = max_maps.saturating_sub(MAPS_FOR_THE_SERVER) / MAPS_PER_CLIENT;
    let fits = usize::try_from(fits).unwrap_or(usize::MAX).max(1);
    if wanted <= fits {
        return (wanted, None);
    }
    let note = format!(
        "note: --max-clients {wanted} needs more memory mappings than vm.max_map_count ({max_maps}) allows for two threads a client; serving at most {fits} clients"
    );
    (fits, Some(note))
}

#[cfg(target_os = "linux")]
fn max_map_count() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/sys/vm/max_map_count").ok()?;
    text.trim().parse().ok()
}

#[cfg(not(target_os = "linux"))]
fn max_map_count() -> Option<u64> {
    None
}

/// What the accept loop keeps to turn clients away cleanly.
struct Door {
    /// Connections per address, shared with the client threads that give
    /// their place back when they end.
    per_address: Arc<Mutex<PerAddressLimit>>,
    /// A file descriptor in reserve for refusing a client when the process
    /// has none left (see [`SpareDescriptor`]).
    spare: SpareDescriptor,
    /// Refusals, logged once per burst with a count.
    out_of_files: RefusalBurst,
    crowded: RefusalBurst,
}

impl Door {
    /// The next client. accept() blocks until a client has completed the
    /// handshake (the kernel did it, in the backlog). A failed accept is
    /// logged and retried; out of file descriptors, the waiting client is
    /// refused with a notice instead of being left hanging in the backlog.
    fn accept(&mut self, listener: &TcpListener) -> (TcpStream, SocketAddr) {
        loop {
            self.report_bursts();
            let err = match listener.accept() {
                Ok((stream, peer)) => {
                    trace!("accept() -> {peer}");
                    return (stream, peer);
                }
                Err(err) => err,
            };
            if limits::is_out_of_descriptors(&err) {
                let notice =
                    notice("sorry, the server is out of file descriptors; try again later");
                if let Some(peer) = self.spare.refuse_one(listener, notice.as_bytes()) {
                    if self.out_of_files.record(Instant::now()) {
                        log!(
                            "{peer}: refused: out of file descriptors (raise `ulimit -n`); counting refusals"
                        );
                    }
                    continue;
                }
            }
            log!(
                "accept failed: {}; still listening",
                plumbing::errors::describe_io(&err)
            );
            thread::sleep(ACCEPT_RETRY_DELAY);
        }
    }

    /// Counts this connection against its address, or refuses it with a
    /// one-line notice when that address has its maximum already.
    fn admit(&mut self, stream: &TcpStream, peer: SocketAddr) -> Option<Place> {
        if let Some(place) = Place::take(&self.per_address, peer.ip()) {
            return Some(place);
        }
        let max = lock(&self.per_address).max_per_address();
        if self.crowded.record(Instant::now()) {
            log!("{peer}: refused: {max} connections from this address already; counting refusals");
        }
        // A fresh socket's empty send buffer takes this short line at once.
        let line = notice(format_args!(
            "sorry, {max} connections from your address already; close one and try again"
        ));
        let _ = (&*stream).write_all(line.as_bytes());
        let _ = stream.shutdown(Shutdown::Write);
        None
    }

    /// Logs the count of each burst of refusals once it is over.
    fn report_bursts(&mut self) {
        let now = Instant::now();
        if let Some(n) = self.out_of_files.ended(now) {
            log!("refused {n} connection(s) while out of file descriptors");
        }
        if let Some(n) = self.crowded.ended(now) {
            log!("refused {n} connection(s) over --max-per-address");
        }
    }
}

/// After a failed accept (not for lack of descriptors), wait this long
/// before the next: the error may repeat at once.
const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

fn lock(limit: &Mutex<PerAddressLimit>) -> std::sync::MutexGuard<'_, PerAddressLimit> {
    // No code panics with this lock held (see `Room::lock`).
    limit.lock().unwrap_or_else(PoisonError::into_inner)
}

/// One connection's place in the per-address count; dropping it (when the
/// client's thread ends, or never starts) gives the place back.
pub struct Place {
    per_address: Arc<Mutex<PerAddressLimit>>,
    ip: IpAddr,
}

impl Place {
    fn take(per_address: &Arc<Mutex<PerAddressLimit>>, ip: IpAddr) -> Option<Place> {
        let admitted = lock(per_address).try_admit(ip);
        admitted.then(|| Place {
            per_address: Arc::clone(per_address),
            ip,
        })
    }
}

impl Drop for Place {
    fn drop(&mut self) {
        lock(&self.per_address).release(self.ip);
    }
}

/// Starts the thread that serves one client; the accept loop goes straight
/// back to `accept`.
fn spawn_client(
    stream: Arc<TcpStream>,
    peer: SocketAddr,
    id: ClientId,
    place: Place,
    room: &Arc<Room>,
    options: &ServerOptions,
) {
    let (room, thread_options) = (Arc::clone(room), options.clone());
    let client_stream = Arc::clone(&stream);
    let body = move || {
        handle_client(client_stream, peer, id, &room, &thread_options);
        drop(place); // the connection is closed: its place is free
    };
    // Threads are a finite resource: when the system refuses one, this one
    // client is refused, with a notice, and we go on accepting.
    if let Err(err) = (options.spawn)(format!("client {peer}"), Box::new(body)) {
        log!("{peer}: cannot start a thread ({err}); refusing this client");
        // A fresh socket's empty send buffer takes the short notice at once:
        // this write does not block the accept loop. We skip the gentle
        // close here (it waits), so a client that already sent bytes may
        // get a reset instead of the notice.
        let _ = (&*stream).write_all(no_thread_notice().as_bytes());
        let _ = stream.shutdown(Shutdown::Write);
    }
}

fn no_thread_notice() -> String {
    notice(
        "sorry, the server cannot start a thread for you now (too many clients?); try again later",
    )
}

/// One client from start to end, on its own thread: start the writer, join
/// the room, read lines until the client leaves, then clean up.
fn handle_client(
    stream: Arc<TcpStream>,
    peer: SocketAddr,
    id: ClientId,
    room: &Arc<Room>,
    options: &ServerOptions,
) {
    log!("{peer}: connected");
    if let Err(err) = tune(&stream, peer) {
        log!("{peer}: cannot set up the socket: {err}");
        return;
    }
    // Two users of one socket: this thread reads, the writer thread writes.
    // `&TcpStream` implements Read and Write, so they share it through an
    // `Arc`. (try_clone() would work too, but it dup()s the file
    // descriptor, and descriptors are a limited resource, see `ulimit -n`.)
    let (outbox, queue) = outbox(options.outbox_bytes, room.budget());
    let Some(writer) = spawn_writer(&stream, queue, peer, id, room, options) else {
        return refuse(&stream, peer, &no_thread_notice());
    };
    match room.join(id, Member::new(peer, outbox)) {
        Ok((_, pressure)) => {
            pressure.wait();
            let why = read_lines(&stream, peer, id, room, options);
            // Leaving the room drops our outbox: the writer sends what is
            // still queued, sees the queue end, and half-closes.
            room.leave(id, why);
        }
        Err(RoomFull(max)) => log!("{peer}: refused, the room is full ({max} clients)"),
    }
    let _ = writer.join(); // waits at most about the stall timeout
    basic::net::close_gently(&stream, peer);
} // the last Arc of the stream is dropped here (or when the writer ends): close()

/// Socket options for a chat connection; each says what the kernel will do.
fn tune(stream: &TcpStream, peer: SocketAddr) -> io::Result<()> {
    // Chat lines are small and someone is waiting for each: send them at
    // once instead of letting Nagle's algorithm hold them back to merge.
    stream.set_nodelay(true)?;
    // Through socket2: std has no setter for SO_SNDBUF.
    socket2::SockRef::from(stream).set_send_buffer_size(SEND_BUFFER_BYTES)?;
    trace!("setsockopt({peer}, TCP_NODELAY, SO_SNDBUF = {SEND_BUFFER_BYTES})");
    Ok(())
}

/// One notice, written directly (this client has no writer thread, and a
/// fresh socket's empty send buffer takes the short line at once), then close.
fn refuse(stream: &TcpStream, peer: SocketAddr, line: &str) {
    let _ = (&*stream).write_all(line.as_bytes());
    basic::net::close_gently(stream, peer);
}

/// What a client thread keeps between reads.
struct Reading {
    lines: LineBuffer,
    /// Chat lines waiting to be delivered together, and their size as the
    /// others will receive them.
    said: Vec<String>,
    said_bytes: usize,
    /// Until the first complete line: when the client's time is up.
    first_line_deadline: Option<Instant>,
    /// Whether the socket still has the read timeout of that deadline.
    read_timeout_set: bool,
}

/// Reads the client's lines and acts on each until it leaves; returns why.
fn read_lines(
    stream: &TcpStream,
    peer: SocketAddr,
    id: ClientId,
    room: &Room,
    options: &ServerOptions,
) -> Leaving {
    let mut buf = vec![0u8; READ_BUF_BYTES];
    let mut reading = Reading {
        lines: LineBuffer::new(MAX_LINE_BYTES),
        said: Vec::new(),
        said_bytes: 0,
        first_line_deadline: Some(Instant::now() + options.first_line_timeout),
        read_timeout_set: false,
    };
    loop {
        let n = match read_some(stream, &mut buf, &mut reading, peer) {
            Ok(0) => return last_words(&mut reading, peer, id, room),
            Ok(n) => n,
            Err(why) => return unfinished_lost(&reading, peer, why, id, room, options),
        };
        trace!("read({peer}) -> {n} bytes");
        reading.lines.extend(&buf[..n]);
        let flow = handle_lines(&mut reading, peer, id, room);
        deliver(&mut reading, id, room);
        if let ControlFlow::Break(why) = flow {
            return why;
        }
    }
}

/// One `read`: blocks until at least one byte arrived (perhaps half a line,
/// perhaps many lines), or returns 0 when the client closed its side. Until
/// the first line, it waits only until the first-line deadline.
fn read_some(
    mut stream: &TcpStream,
    buf: &mut [u8],
    reading: &mut Reading,
    peer: SocketAddr,
) -> Result<usize, Leaving> {
    loop {
        match reading.first_line_deadline {
            Some(deadline) => {
                let left = deadline.saturating_duration_since(Instant::now());
                // SO_RCVTIMEO: read() gives up after `left` with a timeout error.
                if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
                    return Err(Leaving::Silent);
                }
                reading.read_timeout_set = true;
            }
            // The first line arrived: from now on, reads wait as long as the
            // client likes (a chat is mostly silence).
            None if reading.read_timeout_set => {
                let _ = stream.set_read_timeout(None);
                reading.read_timeout_set = false;
                trace!("setsockopt({peer}, SO_RCVTIMEO = none)");
            }
            None => {}
        }
        match stream.read(buf) {
            Ok(n) => return Ok(n),
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if plumbing::checklist::is_timeout(&err) => continue, // deadline checked above
            Err(err) => {
                log!("{peer}: connection lost: {err}");
                return Err(Leaving::Lost);
            }
        }
    }
}

/// The client closed its side. A last line without `\n` (a script's last
/// `printf`, `nc` without `-N` ...) is still a line: deliver it.
fn last_words(reading: &mut Reading, peer: SocketAddr, id: ClientId, room: &Room) -> Leaving {
    if !reading.lines.unfinished().is_empty() {
        reading.lines.extend(b"\n");
        let _ = handle_lines(reading, peer, id, room);
        deliver(reading, id, room);
    }
    Leaving::Left
}

/// The connection failed, or stayed silent too long: what it had sent of an
/// unfinished line cannot be trusted to be whole, so it is logged, not relayed.
fn unfinished_lost(
    reading: &Reading,
    peer: SocketAddr,
    why: Leaving,
    id: ClientId,
    room: &Room,
    options: &ServerOptions,
) -> Leaving {
    let unfinished = reading.lines.unfinished();
    if !unfinished.is_empty() {
        log!(
            "{peer}: dropped {} bytes of an unfinished line: {}",
            unfinished.len(),
            preview(unfinished, 100)
        );
    }
    if why == Leaving::Silent {
        let secs = options.first_line_timeout.as_secs_f32();
        log!("{peer}: no complete line within {secs}s of connecting; disconnecting");
        // Leaving: nobody waits for this last notice.
        room.tell(
            id,
            &format!("you sent no line within {secs}s of joining; disconnecting"),
        )
        .ignore();
    }
    why
}

/// Acts on every complete line received so far (so that `LineBuffer` never
/// holds more than one bounded line). Chat lines are collected and
/// delivered in pieces of about [`DELIVERY_BYTES`]; a command first
/// delivers what was said before it, to keep the order. `Break` means this
/// client is leaving.
fn handle_lines(
    reading: &mut Reading,
    peer: SocketAddr,
    id: ClientId,
    room: &Room,
) -> ControlFlow<Leaving> {
    while let Some(line) = reading.lines.next_line() {
        let Ok(raw) = line else {
            log!("{peer}: sent a line over {MAX_LINE_BYTES} bytes; disconnecting");
            let error = format!("error: line longer than {MAX_LINE_BYTES} bytes; disconnecting");
            room.tell(id, &error).ignore(); // leaving: nobody waits
            return ControlFlow::Break(Leaving::LineTooLong);
        };
        reading.first_line_deadline = None; // a line: the client is not silent
        let line = decode_line(&raw);
        match crate::protocol::parse(&line) {
            Request::Say(text) => {
                reading.said_bytes += text.len() + 32; // + room for a name
                reading.said.push(text.to_string());
                if reading.said_bytes >= DELIVERY_BYTES {
                    deliver(reading, id, room);
                }
            }
            command => {
                deliver(reading, id, room);
                obey(command, id, room)?;
            }
        }
    }
    ControlFlow::Continue(())
}

/// Delivers the collected chat lines, then waits for the recipients this
/// put over their mark: here is where a fast sender is slowed down.
fn deliver(reading: &mut Reading, id: ClientId, room: &Room) {
    if reading.said.is_empty() {
        return;
    }
    room.say(id, &reading.said).wait();
    reading.said.clear();
    reading.said_bytes = 0;
}

/// Carries out one command; `Break` for `/quit`.
fn obey(command: Request, id: ClientId, room: &Room) -> ControlFlow<Leaving> {
    match command {
        Request::Nick(name) => room.rename(id, name).wait(),
        // Replies to one's own commands are waited for: see `Room::who`.
        Request::Who => room.who(id).wait(),
        Request::Quit => return ControlFlow::Break(Leaving::Left),
        Request::Unknown(command) => room
            .tell(
                id,
                &format!("unknown command {command:?}; try /nick NAME, /who or /quit"),
            )
            .wait(),
        Request::Say(_) => {} // handled by the caller
    }
    ControlFlow::Continue(())
}

/// Starts this client's writer thread; `None` if the system refuses a thread.
fn spawn_writer(
    stream: &Arc<TcpStream>,
    queue: Queue,
    peer: SocketAddr,
    id: ClientId,
    room: &Arc<Room>,
    options: &ServerOptions,
) -> Option<thread::JoinHandle<()>> {
    let (stream, room, stall) = (Arc::clone(stream), Arc::clone(room), options.stall_timeout);
    let body = move || write_outbox(&stream, queue, peer, id, &room, stall);
    match (options.spawn)(format!("writer {peer}"), Box::new(body)) {
        Ok(handle) => Some(handle),
        Err(err) => {
            log!("{peer}: cannot start a writer thread ({err}); refusing this client");
            None
        }
    }
}

/// Why the writer stopped writing.
enum WriteEnd {
    /// The client read nothing for the stall timeout; `mid_line` says
    /// whether the bytes sent so far end in the middle of a line.
    Stalled { mid_line: bool },
    /// The connection failed (the client reset it, or it is shut down).
    Failed(io::Error),
}

/// The writer thread: sends what the room queued for this client, with no
/// lock held, until the queue ends (the client left) or writing fails.
fn write_outbox(
    stream: &TcpStream,
    queue: Queue,
    peer: SocketAddr,
    id: ClientId,
    room: &Room,
    stall: Duration,
) {
    // SO_SNDTIMEO: a write() that can send nothing for this long (the
    // client's receive window and our send buffer are full) returns a
    // timeout error; one that sent a little returns early with the count.
    // A fraction of the stall timeout, so that the writer looks at the
    // clock (see `write_batch`) while it waits.
    let tick = (stall / 4).max(Duration::from_millis(10));
    if let Err(err) = stream.set_write_timeout(Some(tick)) {
        log!("{peer}: cannot set the write timeout: {err}");
    }
    match send_queued(stream, &queue, stall) {
        // The client left and everything queued for it went out: FIN.
        Ok(()) => {
            let _ = stream.shutdown(Shutdown::Write);
            trace!("shutdown({peer}, Write)");
        }
        Err(WriteEnd::Stalled { mid_line }) => {
            room.leave(id, Leaving::NotReading);
            drop(queue); // discards its lines, releases the senders waiting for it
            let secs = stall.as_secs_f32();
            log!("{peer}: read nothing for {secs}s; disconnected");
            leave_stall_notice(stream, peer, mid_line, secs);
        }
        Err(WriteEnd::Failed(err)) => {
            // If the client already left (its reader saw the reset first),
            // this failure is expected: no log line.
            if room.leave(id, Leaving::Lost) {
                log!("{peer}: write failed: {err}");
            }
            // Wake this client's reader thread: its read() returns 0.
            let _ = stream.shutdown(Shutdown::Both);
        }
    }
}

/// Takes what is queued and writes it, all of it in one `write` when the
/// kernel takes it. One batch buffer, reused.
fn send_queued(stream: &TcpStream, queue: &Queue, stall: Duration) -> Result<(), WriteEnd> {
    let mut batch = Vec::new();
    // take_into() blocks until lines are queued for this client; it returns
    // false once the client has left the room and the queue is empty.
    while queue.take_into(&mut batch, BATCH_BYTES) {
        let sent = write_batch(stream, &batch, queue, stall).map_err(|(sent, err)| {
            // Batches hold whole lines, and every earlier batch went out whole.
            let mid_line = sent > 0 && batch[sent - 1] != b'\n';
            match err {
                Some(err) => WriteEnd::Failed(err),
                None => WriteEnd::Stalled { mid_line },
            }
        })?;
        // (The peer's address costs a system call: only when tracing.)
        trace!("write({}, {sent} bytes)", basic::net::peer_name(stream));
        batch.clear();
        if queue.is_empty() && batch.capacity() > IDLE_BATCH_BYTES {
            batch.shrink_to(IDLE_BATCH_BYTES); // idle clients keep little memory
        }
    }
    Ok(())
}

/// What an idle writer keeps of its batch buffer.
const IDLE_BATCH_BYTES: usize = 4096;

/// write() until the whole batch is sent (a blocking write may send only
/// part). On failure, returns how much was sent, and the error (`None`:
/// the client stalled).
///
/// A client stalls when nothing could be written for the stall timeout, or
/// when senders are waiting for it (its queue is over the mark) and this
/// one batch has taken longer than that. The second rule catches a client
/// that reads nothing but whose kernel still takes a few bytes now and then
/// (Linux squeezes a full receive buffer to make room): a trickle of bytes
/// is not a client reading.
fn write_batch(
    mut stream: &TcpStream,
    batch: &[u8],
    queue: &Queue,
    stall: Duration,
) -> Result<usize, (usize, Option<io::Error>)> {
    let taken_at = Instant::now();
    let mut progress_at = taken_at;
    let mut sent = 0;
    while sent < batch.len() {
        match stream.write(&batch[sent..]) {
            Ok(0) => return Err((sent, Some(io::ErrorKind::WriteZero.into()))),
            Ok(n) => {
                sent += n;
                progress_at = Instant::now();
            }
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) if plumbing::checklist::is_timeout(&err) => {} // a tick: look at the clock
            Err(err) => return Err((sent, Some(err))),
        }
        let idle = progress_at.elapsed() >= stall;
        let holding_senders = taken_at.elapsed() >= stall && queue.is_over_mark();
        if sent < batch.len() && (idle || holding_senders) {
            return Err((sent, None));
        }
    }
    Ok(sent)
}

/// A stalled client gets a notice it can read when it reads again, after
/// everything already in the kernel's buffers. Those are full, so we first
/// make the send buffer a little larger (SO_SNDBUF), then write the notice
/// (on a new line if the last write stopped mid-line) and queue our FIN
/// after it with shutdown(Write). shutdown(Read) then wakes this client's
/// reader thread; it ends, closes gently, and the kernel keeps sending the
/// notice after close() for as long as TCP keeps retrying.
fn leave_stall_notice(stream: &TcpStream, peer: SocketAddr, mid_line: bool, secs: f32) {
    let text = notice(format_args!(
        "you were disconnected: you read nothing for {secs}s while lines waited for you"
    ));
    let text = if mid_line { format!("\n{text}") } else { text };
    let socket = socket2::SockRef::from(stream);
    let _ = socket.set_send_buffer_size(2 * SEND_BUFFER_BYTES + text.len());
    let _ = stream.set_write_timeout(Some(basic::net::LINGER));
    if let Err(err) = (&*stream).write_all(text.as_bytes()) {
        log!("{peer}: could not leave the stall notice: {err}");
    }
    let _ = stream.shutdown(Shutdown::Write);
    let _ = stream.shutdown(Shutdown::Read);
    trace!("shutdown({peer}, Both)");
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_room_fits_the_memory_mapping_limit() {
        let (fits, note) = fit_to_thread_maps(usize::MAX);
        match max_map_count() {
            Some(max) => {
                assert_eq!(fits as u64, (max - MAPS_FOR_THE_SERVER) / MAPS_PER_CLIENT);
                assert!(note.unwrap().contains("vm.max_map_count"));
            }
            None => assert_eq!((fits, note), (usize::MAX, None)),
        }
        assert_eq!(fit_to_thread_maps(10), (10, None));
    }

    #[test]
    fn a_place_per_address_is_given_back_when_dropped() {
        let limit = Arc::new(Mutex::new(PerAddressLimit::new(2)));
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        let first = Place::take(&limit, ip).unwrap();
        let _second = Place::take(&limit, ip).unwrap();
        assert!(Place::take(&limit, ip).is_none());
        drop(first);
        assert!(Place::take(&limit, ip).is_some());
    }
}
