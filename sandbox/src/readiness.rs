//! Event loop 2, readiness: ask the operating system which sockets are
//! ready, wait until at least one is (or the next idle deadline), and touch
//! only those.
//!
//! The asking is done by `mio`, a small crate that wraps each system's
//! readiness API behind one portable interface: `epoll` on Linux, `kqueue` on
//! macOS and the BSDs, IOCP (through `AFD`) on Windows. It is what tokio is
//! built on. We register each socket once with a [`Token`] (our client id);
//! [`Poll::poll`] then blocks until the kernel reports events, and each event
//! carries the token and what became possible (read, write).
//!
//! mio's events are *edge-triggered*: an event says "this changed", once. So
//! a readable socket must be read until `WouldBlock`, or put on the room's
//! unfinished list (its turn budget ran out, or the room is holding input
//! for back-pressure), or no new event will come for the bytes left behind.
//! The same holds for the listener: past [`ACCEPTS_PER_TURN`], the loop
//! remembers to accept again next turn.
//!
//! Back-pressure needs no change of registration: while the room holds
//! input it simply does not read, and notes who was readable. The bytes
//! stay in the kernel, the senders' TCP windows close, and the writable
//! events of the recipients that were behind wake the loop when they
//! catch up.
//!
//! The loop is four named steps, each its own function:
//! `accept_ready`, `client_ready` (read what is ready, write what is
//! pending), and the room's [`expire`](Room::expire) (idle, silent and
//! stalled clients, gentle closes past their deadline).
//!
//! Ctrl-C ([`Stop`]) wakes `poll` through a [`Waker`], a registered source
//! another thread can make ready; the loop then stops accepting, lets the
//! room tell everyone and close each connection gently, and returns once
//! those closes are done (`shut_down`, at most [`SHUTDOWN_TIMEOUT`]).

use std::io;
use std::net::TcpListener;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use mio::event::Event;
use mio::net::TcpStream;
use mio::{Events, Interest, Poll, Registry, Token, Waker};
use plumbing::{log, trace};

use crate::room::{ClientId, Options, Room};
use crate::server::{OutOfDescriptors, log_shut_down};
use crate::shutdown::{SHUTDOWN_TIMEOUT, Stop};

/// The listener's token; clients get tokens 1, 2, 3... (their ids).
pub const LISTENER: Token = Token(0);

/// The token of the [`Waker`] a stop request rings (no client gets it).
pub const WAKER: Token = Token(usize::MAX);

/// How many events one wake-up can report. More are not lost: they come
/// with the next `poll`.
pub const EVENTS_PER_WAKEUP: usize = 1024;

/// After a failed accept (for example out of file descriptors), wait this
/// long before trying again, so that a lasting failure does not spin.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// At most this many connections are accepted per turn: each newcomer's
/// welcome and join notice are work too, and a crowd arriving at once must
/// not keep the loop from the clients already in.
pub const ACCEPTS_PER_TURN: usize = 64;

/// The server's state between wake-ups.
struct Server {
    poll: Poll,
    listener: mio::net::TcpListener,
    /// The same listening socket as std sees it (a second descriptor for
    /// it), for refusing with the spare descriptor.
    std_listener: TcpListener,
    room: Room<TcpStream>,
    /// The last turn stopped accepting at ACCEPTS_PER_TURN: more may wait.
    accept_more: bool,
    out_of_descriptors: OutOfDescriptors,
    /// A burst of refusals is going on: wake up to log its end.
    refusing: bool,
    next_id: ClientId,
    /// Set after a failed accept: when to try accepting again.
    accept_retry_at: Option<Instant>,
}

/// Serves the chat from this one thread, waking only for sockets that are
/// ready and for idle deadlines, until `stop` is requested; then shuts
/// down gently and returns.
pub fn run(listener: TcpListener, options: Options, stop: &Stop) -> anyhow::Result<()> {
    let mut server = Server::new(listener, options)?;
    let waker = Waker::new(server.poll.registry(), WAKER).context("cannot create the waker")?;
    stop.wake_with(waker);
    let mut events = Events::with_capacity(EVENTS_PER_WAKEUP);
    while !stop.is_requested() {
        turn(&mut server, &mut events)?;
    }
    shut_down(server, &mut events)
}

/// One turn: wait for events, then accept, read, write and expire.
fn turn(server: &mut Server, events: &mut Events) -> anyhow::Result<()> {
    let work_waiting = server.room.has_unfinished_reads() || server.accept_more;
    wait_for_events(server, events, work_waiting)?;
    let now = Instant::now();
    server.room.tick(now);
    // Newcomers first: their welcome then waits only for this turn's
    // work, not for the next one's.
    let accept_more = std::mem::take(&mut server.accept_more);
    if accept_more || events.iter().any(|event| event.token() == LISTENER) {
        accept_ready(server, now);
    }
    for event in events.iter().filter(|event| is_client(event.token())) {
        client_ready(&mut server.room, event.token().0, event, now);
    }
    for id in server.room.take_unfinished_reads() {
        server.room.read_ready(id, now);
    }
    retry_accept(server, now);
    server.refusing = server.out_of_descriptors.tick(now);
    server.room.expire(now);
    server.room.settle();
    deregister_closed(server.poll.registry(), &mut server.room);
    Ok(())
}

fn is_client(token: Token) -> bool {
    token != LISTENER && token != WAKER
}

/// After Ctrl-C: closes the listener (the kernel now refuses newcomers),
/// lets the room tell every client and start closing each gently, and
/// serves those closes until they are done or [`SHUTDOWN_TIMEOUT`] passes.
fn shut_down(server: Server, events: &mut Events) -> anyhow::Result<()> {
    let Server {
        mut poll,
        listener,
        std_listener,
        mut room,
        ..
    } = server;
    // Both descriptors of the listening socket: it closes with the last.
    drop((listener, std_listener));
    let started = Instant::now();
    room.tick(started);
    room.shut_down();
    room.settle();
    deregister_closed(poll.registry(), &mut room);
    let deadline = started + SHUTDOWN_TIMEOUT;
    while room.draining_len() > 0 && Instant::now() < deadline {
        let next = room.next_deadline().map_or(deadline, |at| at.min(deadline));
        let timeout = next.saturating_duration_since(Instant::now()) + Duration::from_millis(1);
        match poll.poll(events, Some(timeout)) {
            Ok(()) => {}
            Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
            Err(err) => return Err(err).context("waiting for readiness failed"),
        }
        let now = Instant::now();
        room.tick(now);
        for event in events.iter().filter(|event| is_client(event.token())) {
            client_ready(&mut room, event.token().0, event, now);
        }
        room.expire(now);
        room.settle();
        deregister_closed(poll.registry(), &mut room);
    }
    log_shut_down(room.draining_len());
    Ok(())
}

impl Server {
    fn new(listener: TcpListener, options: Options) -> anyhow::Result<Server> {
        // mio needs the socket non-blocking; from_std leaves that to us.
        listener
            .set_nonblocking(true)
            .context("cannot make the listener non-blocking")?;
        let std_listener = listener
            .try_clone()
            .context("cannot duplicate the listener's descriptor")?;
        let mut listener = mio::net::TcpListener::from_std(listener);
        let poll = Poll::new().context("cannot create the readiness poller")?;
        // Interest::READABLE on a listener means "a connection is waiting
        // in the backlog": accept() will not block.
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .context("cannot register the listener")?;
        Ok(Server {
            poll,
            listener,
            std_listener,
            room: Room::new(options),
            accept_more: false,
            out_of_descriptors: OutOfDescriptors::default(),
            refusing: false,
            next_id: LISTENER.0,
            accept_retry_at: None,
        })
    }
}

/// Blocks until a socket is ready or the next deadline passes. With
/// `reads_waiting`, does not block at all: some client still has bytes.
fn wait_for_events(
    server: &mut Server,
    events: &mut Events,
    reads_waiting: bool,
) -> anyhow::Result<()> {
    let timeout = wait_bound(server, Instant::now(), reads_waiting);
    trace!("poll(timeout = {timeout:?})");
    // poll() is where this server spends its idle time: asleep in the kernel
    // (epoll_wait, kevent...), using no CPU, until an event or the timeout.
    match server.poll.poll(events, timeout) {
        Ok(()) => Ok(()),
        // A signal woke us: an empty round, harmless.
        Err(err) if err.kind() == io::ErrorKind::Interrupted => Ok(()),
        Err(err) => Err(err).context("waiting for readiness failed"),
    }
}

/// How long `poll` may sleep: until the earliest timer or accept retry, not
/// at all if reads or accepts are waiting, for ever if nothing is due.
fn wait_bound(server: &Server, now: Instant, reads_waiting: bool) -> Option<Duration> {
    if reads_waiting {
        return Some(Duration::ZERO);
    }
    let burst_end = server
        .refusing
        .then(|| now + plumbing::limits::RefusalBurst::QUIET);
    let deadlines = [
        server.room.next_deadline(),
        server.accept_retry_at,
        burst_end,
    ];
    let earliest = deadlines.into_iter().flatten().min()?;
    // Round up to the next millisecond: epoll counts whole milliseconds, and
    // waking a hair early would only mean a second, empty, wake-up.
    Some(earliest.saturating_duration_since(now) + Duration::from_millis(1))
}

/// Step 1: accepts the connections waiting in the backlog, until
/// `WouldBlock` or [`ACCEPTS_PER_TURN`]. Out of file descriptors, refuses
/// them with a notice; another failed accept is logged and retried later.
fn accept_ready(server: &mut Server, now: Instant) {
    for _ in 0..ACCEPTS_PER_TURN {
        match server.listener.accept() {
            Ok((stream, peer)) => admit(server, stream, peer, now),
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => return,
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if plumbing::limits::is_out_of_descriptors(&err) => {
                let listener = &server.std_listener;
                let refused =
                    server
                        .out_of_descriptors
                        .refuse_waiting(listener, now, ACCEPTS_PER_TURN);
                server.refusing |= refused > 0;
                // Even the spare did not help (or more wait): try again soon.
                // mio reports the listener again only when a *new*
                // connection arrives, so we set our own reminder.
                server.accept_retry_at = Some(now + ACCEPT_RETRY_DELAY);
                return;
            }
            Err(err) => {
                // The connection stays in the backlog; see above.
                log!("accept failed: {err}; still serving, retrying in {ACCEPT_RETRY_DELAY:?}");
                server.accept_retry_at = Some(now + ACCEPT_RETRY_DELAY);
                return;
            }
        }
    }
    server.accept_more = true; // the cap, not WouldBlock: more may wait
}

/// Registers one accepted client and lets it join the room (or refuses it).
fn admit(server: &mut Server, mut stream: TcpStream, peer: std::net::SocketAddr, now: Instant) {
    trace!("accept() -> {peer}");
    if server.room.is_full() {
        Room::refuse(stream, peer, server.room.len());
        return;
    }
    if !server.room.admit_address(peer) {
        server.room.refuse_address(stream, peer);
        return;
    }
    // See the naive loop: each chat line leaves at once.
    let _ = stream.set_nodelay(true);
    server.next_id += 1;
    let id = server.next_id;
    // Both interests, once: mio then reports each change, and we never pay
    // for re-registering when an outbox fills or empties.
    let interest = Interest::READABLE | Interest::WRITABLE;
    if let Err(err) = server
        .poll
        .registry()
        .register(&mut stream, Token(id), interest)
    {
        log!("{peer}: cannot register the socket: {err}; closing it");
        server.room.release_address(peer);
        return;
    }
    server.room.join(id, stream, peer, now);
}

/// Tries accepting again once [`ACCEPT_RETRY_DELAY`] has passed.
fn retry_accept(server: &mut Server, now: Instant) {
    if server.accept_retry_at.is_some_and(|at| at <= now) {
        server.accept_retry_at = None;
        accept_ready(server, now);
    }
}

/// Steps 2 and 3: reads what is ready, writes what is pending.
fn client_ready(room: &mut Room<TcpStream>, id: ClientId, event: &Event, now: Instant) {
    // A hang-up or error shows as readable too: the read then returns 0 or
    // the error, which is how the room learns of it.
    let readable = event.is_readable() || event.is_read_closed() || event.is_error();
    room.ready(id, readable, event.is_writable(), now);
}

/// Removes closed sockets from the poller, then drops (closes) them.
fn deregister_closed(registry: &Registry, room: &mut Room<TcpStream>) {
    for mut stream in room.take_closed() {
        let _ = registry.deregister(&mut stream); // closing would remove it anyway
    }
}
