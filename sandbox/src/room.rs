//! The chat room both event loops share: names, broadcast, commands,
//! outgoing buffers, flow control, timers. Nothing here waits: every socket
//! call is non-blocking, so the room never stops for one client. The two
//! loops ([`naive`](crate::naive), [`readiness`](crate::readiness)) differ
//! only in how they find out *which* clients to call [`Room::read_ready`]
//! and [`Room::flush_pending`] for.
//!
//! The protocol itself (parsing a line, checking a name, the wire format of
//! `NAME: TEXT` and `* NOTICE`) is lesson 3's, reused from
//! [`multiclients_threaded::protocol`].
//!
//! Work happens in small steps, and a step never closes a client in the
//! middle: it marks the client as leaving ([`Room::doom`]), and
//! [`Room::settle`] closes it once the step is over. That way a broadcast
//! never changes the room it is iterating.
//!
//! ## Flow control: back-pressure, not drops
//! Every line a client sends is copied into every other client's
//! [`Outbox`]. If one recipient reads slower than the room talks, its
//! outbox grows. There are three things a server can do about it:
//!
//! 1. let it grow: one client that never reads eats all the memory;
//! 2. drop lines, or drop the client, at a limit: a healthy client that
//!    was only a little slower during a burst loses lines;
//! 3. **slow the senders down** (what this room does): when a recipient's
//!    outbox passes [`HIGH_WATER_BYTES`](crate::outbox::HIGH_WATER_BYTES),
//!    or all outboxes together pass `--max-queued-mb`, the room stops
//!    *reading* ([`Room::holding_input`]). Senders' bytes then wait in the
//!    kernel's receive buffers; once those are full, TCP's flow control
//!    stops the senders' own writes. Nothing is lost, memory stays bounded,
//!    and reading resumes as soon as the recipients have caught up.
//!
//! The price of 3 is that one client that reads *nothing* would stop the
//! whole room. So each client with bytes waiting has a stall timer: if its
//! socket takes no byte for `--stall-timeout`, it is let go (its queue is
//! thrown away, it gets a notice, the room is told), and the others go on.
//! A slow client that keeps reading, however slowly, makes progress and is
//! never let go.
//!
//! ## Work per turn, not bytes per turn
//! One 16 KiB read of `a\n` lines from a client named with 24 characters
//! is 8,192 lines, each copied to every member: megabytes of work from one
//! read. So the budget that keeps one busy client from delaying everyone
//! counts the bytes its lines fan out ([`FANOUT_BYTES_PER_TURN`]), checked
//! line by line; the rest waits in its [`Inbox`] for the next turn.
//!
//! ## Memory: per client, and for the whole server
//! Buffers exist only while they hold bytes ([`Inbox`], [`Outbox`]). Join
//! and leave notices go to every member, so N members that never read would
//! receive N² notices: past the server's budget, those notices are counted
//! instead of queued for members with unread bytes, and each gets one line
//! saying how many it missed once it reads again.
//!
//! ## One turn of a loop, in order
//! Both loops call the room in this order each turn, and the order is
//! part of the design:
//!
//! 1. [`Room::tick`]: the time, read once, for every timer of the turn;
//! 2. accept newcomers first ([`Room::join`]), so that their welcome leaves
//!    with this turn's writes instead of waiting behind another turn;
//! 3. read clients ([`Room::read_ready`]): each handles its lines until its
//!    socket is empty, its budget is spent, or the room holds input;
//!    lines are only *queued* into outboxes, nothing is written yet (the
//!    naive loop then calls [`Room::flush_all`], since it cannot know which
//!    sockets became writable; the readiness loop learns it from events);
//! 4. [`Room::expire`]: timers that came due *doom* clients (or end overdue
//!    gentle closes);
//! 5. [`Room::settle`]: close the doomed (which queues leave notices), then
//!    write every outbox that got bytes, one `write` per client;
//! 6. hand the closed sockets back ([`Room::take_closed`]), for the loop to
//!    deregister and drop.
//!
//! Writing last means a client that got 50 lines this turn gets them in one
//! system call, and a broadcast never writes while it walks the room.
//!
//! ## What "nothing now" means on each socket call
//! - `read` returns `WouldBlock`: the kernel's receive buffer for that
//!   socket is empty. The client sent nothing more yet; try again later.
//! - `read` returns 0: the client sent FIN (closed its side). Not an error.
//! - `write` takes fewer bytes than offered (a *partial write*): the
//!   kernel's send buffer had room for only that many; the rest stays in
//!   the outbox. `WouldBlock`: no room at all, the client reads slower
//!   than we send. Both are normal, and both are why outboxes exist.
//!
//! ## Names
//! A name is compared without case ([`protocol::name_key`]): `Bob` and
//! `bob` would look like the same person in a chat, so they are one name.
//! Text from clients is escaped by lesson 3's protocol before anyone sees
//! it, so a client cannot send terminal control codes to the others.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use multiclients_threaded::protocol::{self, LineTooLong, MAX_LINE_BYTES, NameError, Request};
use plumbing::limits::PerAddressLimit;
use plumbing::trace::preview;
use plumbing::{log, trace};

use crate::draining::{DRAIN_TIMEOUT, Draining};
use crate::idle::IdleTimers;
use crate::inbox::{Arrived, Inbox, READ_BUF_BYTES};
use crate::outbox::{Flushed, Outbox};

/// Identifies a client for the whole life of the server. Ids are never
/// reused, so a stale timer entry can never hit a newer client.
/// The loops hand them out counting up from 1, and the readiness loop uses
/// the same number as the socket's mio `Token`.
pub type ClientId = usize;

/// How many bytes one client's lines may put into outboxes (its lines
/// times their recipients) in one turn of the loop. Past it, the client's
/// remaining input waits for the next turn, so that the others, and a
/// newcomer's welcome, wait at most about this much copying (well under a
/// millisecond).
pub const FANOUT_BYTES_PER_TURN: usize = 32 * 1024;

/// `/who` lists at most this many names, so that its answer stays short,
/// even in a room of 10,000.
pub const MAX_WHO_NAMES: usize = 100;

/// `--stall-timeout`'s default: how long a client with bytes waiting may
/// take no byte at all before it is let go.
///
/// A healthy connection makes progress well within it (a lost segment is
/// sent again after 0.2 to 1 s), and the room's pause while it waits for a
/// client that vanished (a laptop closed mid-chat) stays a hiccup.
pub const DEFAULT_STALL_TIMEOUT: Duration = Duration::from_millis(1500);

/// `--first-line-timeout`'s default: a client that has not sent one whole
/// line this long after connecting is closed (a port scanner, a forgotten
/// `nc`, an attack holding connections open).
pub const DEFAULT_FIRST_LINE_TIMEOUT: Duration = Duration::from_secs(60);

/// `--max-queued-mb`'s default: all outboxes together, in MiB.
pub const DEFAULT_MAX_QUEUED_MB: usize = 8;

/// What the room needs from a socket: bytes in, bytes out, and a way to say
/// "no more from me". Both `std::net::TcpStream` (the naive loop) and
/// `mio::net::TcpStream` (the readiness loop) qualify.
pub trait Connection: Read + Write {
    /// Sends FIN after the bytes already queued (a half-close).
    fn shutdown_write(&self);
    // `&self`, not `&mut self`: shutdown(2) acts on the kernel's socket and
    // touches no buffer of ours, so std and mio both take a shared borrow.
}

impl Connection for std::net::TcpStream {
    fn shutdown_write(&self) {
        // The kernel sends FIN once the bytes already in the send buffer have
        // gone out. It fails (ENOTCONN) only when the peer is gone already.
        let _ = self.shutdown(Shutdown::Write); // the peer may be gone already: fine
    }
}

// mio's stream wraps the same system socket as std's, registered with the
// poller; the half-close is the same system call.
impl Connection for mio::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write);
    }
}

/// The server's settings that shape the room.
#[derive(Debug, Clone)]
pub struct Options {
    /// Close a client that has sent nothing for this long (`--idle-timeout`).
    pub idle_timeout: Option<Duration>,
    /// Refuse clients past this many (`--max-clients`).
    pub max_clients: usize,
    /// Tell the room about joins and leaves (off with `--no-join-notices`).
    pub join_notices: bool,
    /// Let go of a client whose socket takes no byte for this long while
    /// bytes wait for it (`--stall-timeout`).
    pub stall_timeout: Duration,
    /// Close a client that sends no whole line this long after connecting
    /// (`--first-line-timeout`; `None`: never).
    pub first_line_timeout: Option<Duration>,
    /// Bytes queued for all clients together before the room holds input
    /// and summarises join and leave notices (`--max-queued-mb`).
    pub max_queued_bytes: usize,
    /// Connections from one address (`--max-per-address`; 0: no cap;
    /// loopback is never capped).
    pub max_per_address: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            // No idle limit unless asked: in a class, a student who only
            // listens should not be thrown out.
            idle_timeout: None,
            // The lesson's scale target; the server lowers it to what the
            // open-files limit allows (one descriptor per client).
            max_clients: 10_000,
            join_notices: true,
            stall_timeout: DEFAULT_STALL_TIMEOUT,
            first_line_timeout: Some(DEFAULT_FIRST_LINE_TIMEOUT),
            max_queued_bytes: DEFAULT_MAX_QUEUED_MB * 1024 * 1024,
            max_per_address: plumbing::limits::DEFAULT_MAX_PER_ADDRESS,
        }
    }
}

/// Why a client leaves; decides what the room is told.
#[derive(Debug, Clone)]
pub enum Leaving {
    /// Sent `/quit`.
    Quit,
    /// Closed its side (`read` returned 0) without `/quit`.
    Closed,
    /// A socket call failed (reset by the peer, broken pipe): the error.
    Lost(String),
    /// Its socket took nothing for the stall timeout while bytes waited.
    TooSlow(Duration),
    /// Sent more than `MAX_LINE_BYTES` without a line end.
    LineTooLong,
    /// Sent nothing for `--idle-timeout`.
    Idle(Duration),
    /// No whole line within the first-line timeout.
    Silent(Duration),
    /// The server is stopping (Ctrl-C).
    ShutDown,
}

impl Leaving {
    /// The reason as the room's notice and the log show it.
    fn reason(&self) -> String {
        match self {
            Leaving::Quit => "quit".into(),
            Leaving::Closed => "closed the connection".into(),
            Leaving::Lost(err) => format!("connection lost: {err}"),
            Leaving::TooSlow(after) => {
                format!("too slow: read nothing for {}s", after.as_secs_f32())
            }
            Leaving::LineTooLong => format!("sent a line over {MAX_LINE_BYTES} bytes"),
            Leaving::Idle(after) => format!("idle for {}s", after.as_secs_f32()),
            Leaving::Silent(after) => format!("no line within {}s", after.as_secs_f32()),
            Leaving::ShutDown => "server shutting down".into(),
        }
    }
}

/// One connected client. Its two buffers sit between the room and the
/// kernel: bytes read but not yet handled, bytes queued but not yet written.
pub struct Client<S> {
    /// The non-blocking socket: every call on it returns at once.
    stream: S,
    /// Its address, for the log and for the per-address cap.
    peer: SocketAddr,
    /// As the client chose it (case kept); the room's `names` map holds it
    /// lower-cased, so exactly one client can hold each name.
    name: String,
    /// Bytes read and not yet handled.
    inbox: Inbox,
    /// Bytes queued for it and not yet taken by its socket. Only
    /// [`Books::deliver`] adds to it, so the room's totals stay right.
    outbox: Outbox,
    /// When a byte last arrived from it: the idle timer compares with this.
    last_heard: Instant,
    /// Has sent one whole line (the first-line timeout no longer applies).
    spoke: bool,
    /// When its socket last took bytes (or its outbox last became non-empty):
    /// the stall timer compares with this, so a client that reads slowly but
    /// steadily keeps pushing its deadline back.
    last_progress: Instant,
    /// Has an entry in the stall timers. While it holds bytes for a live
    /// client, it always has one: a client can never stall unwatched.
    stall_watched: bool,
    /// Over the high-water mark, and so counted in [`Books::behind`]. Kept
    /// here so that the count changes only when this flag flips.
    behind: bool,
    /// Already in the room's list of clients to flush: a client that gets 50
    /// lines in a turn is listed once and written once.
    in_dirty: bool,
    /// Join and leave notices counted instead of queued (over the budget).
    missed_notices: u64,
    /// Set once the client is doomed; [`Room::settle`] closes it.
    leaving: Option<Leaving>,
}

/// Whether a line may be summarised instead of queued.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A chat line, a reply, a notice to one client: always queued.
    Line,
    /// A join or leave notice to the whole room: counted instead of queued
    /// for a member with unread bytes while the server is over its budget.
    RoomNotice,
}

/// The room's accounts: what waits where, and what the current step found
/// for later (clients to flush, to close). Kept apart from the clients map so
/// that a broadcast can walk `clients` mutably and update the accounts at the
/// same time (two separate borrows of two fields).
///
/// Invariants: `queued` is the sum of the outbox lengths of the clients in
/// the room; `behind` is how many of them have `behind` set.
struct Books {
    /// Clients with new bytes in their outbox, to write at the end of the
    /// step; each at most once (see `Client::in_dirty`).
    dirty: Vec<ClientId>,
    /// Clients marked as leaving during this step, closed by `settle`.
    doomed: Vec<ClientId>,
    /// Bytes in all outboxes together.
    queued: usize,
    /// Clients over the high-water mark.
    behind: usize,
    /// Bytes ever queued: the work counter the turn budget reads. It only
    /// grows; a client's turn compares it with its value when the turn began.
    work: usize,
    /// Stall deadlines, one entry per client with bytes waiting (lazily
    /// checked, like the idle timers: see [`crate::idle`]).
    stalls: IdleTimers,
    /// The time given by [`Room::tick`] for this turn.
    now: Instant,
    stall_timeout: Duration,
    /// `--max-queued-mb` in bytes: the whole server's budget for outboxes.
    max_queued: usize,
}

impl Books {
    /// All outboxes together are over `--max-queued-mb`: hold input, and
    /// summarise room notices for members already behind.
    fn over_budget(&self) -> bool {
        self.queued > self.max_queued
    }

    /// Queues `line` for one client. The one place where bytes enter an
    /// outbox, so the accounts stay right.
    fn deliver<S>(&mut self, id: ClientId, client: &mut Client<S>, line: &[u8], kind: Kind) {
        // A client on its way out gets nothing more: its outbox already ends
        // with the notice saying why it leaves, and that must stay last.
        if client.leaving.is_some() {
            return;
        }
        // Over the budget, a join or leave notice for a member that already has
        // unread bytes is only counted: it will get one summary line instead.
        // A member with an empty outbox still gets it (it is reading).
        if kind == Kind::RoomNotice && self.over_budget() && !client.outbox.is_empty() {
            client.missed_notices += 1;
            return;
        }
        // The first byte to wait starts the stall clock: from now on its socket
        // must take something within the stall timeout.
        if client.outbox.is_empty() {
            client.last_progress = self.now;
            if !client.stall_watched {
                client.stall_watched = true;
                self.stalls.watch(id, self.now + self.stall_timeout);
            }
        }
        // Only queued: the write happens at the end of the step, so that every
        // line of the turn leaves in the same system call.
        client.outbox.push(line);
        self.queued += line.len();
        // Counts toward the sender's turn budget: fan-out is work whoever the
        // recipient is.
        self.work += line.len();
        self.update_behind(client);
        // Listed for the end-of-step flush, once.
        if !client.in_dirty {
            client.in_dirty = true;
            self.dirty.push(id);
        }
    }

    /// Bytes left `client`'s outbox (written, or thrown away). Any byte taken
    /// by the socket is progress, and resets the stall clock; zero bytes (the
    /// socket said `WouldBlock` at once) is not.
    fn sent<S>(&mut self, client: &mut Client<S>, bytes: usize) {
        self.queued -= bytes;
        if bytes > 0 {
            client.last_progress = self.now;
        }
        self.update_behind(client);
    }

    /// Keeps `behind` (the count that decides whether the room holds input)
    /// in step with the outbox: called after every change to its length.
    fn update_behind<S>(&mut self, client: &mut Client<S>) {
        // TODO: exercise 14: count the clients over the high-water mark,
        // changing the count only when this client crosses the mark.
        // BEGIN SOLUTION exercise 14
        let behind = client.outbox.is_over_high_water();
        if behind != client.behind {
            client.behind = behind;
            if behind {
                self.behind += 1;
            } else {
                self.behind -= 1;
            }
        }
        // STUB: let _ = client;
        // END SOLUTION exercise 14
    }
}

/// What follows `command` in `line` (`"/me waves"` gives `"waves"`), or
/// `None` if the line is not that command (`/meet` is not `/me`).
fn command_argument<'a>(line: &'a str, command: &str) -> Option<&'a str> {
    // Lesson 3's `protocol::parse` knows only its own commands, so this
    // room looks for its two new ones first, by exact word.
    match line.strip_prefix(command)? {
        "" => Some(""),
        rest => rest.strip_prefix(' '),
    }
}

/// Everyone connected, and what each is owed.
pub struct Room<S> {
    /// Ordered by id, that is by arrival: the naive loop tries clients, and
    /// a broadcast reaches them, in the order they joined.
    clients: BTreeMap<ClientId, Client<S>>,
    /// Who holds each name, keyed by [`protocol::name_key`] (lower case:
    /// `Bob` and `bob` are one name). A name is free again as soon as its
    /// client is doomed, so that a client that lost its connection can come
    /// back under the same name right away.
    names: HashMap<String, ClientId>,
    /// The settings given at start; never changed while serving.
    options: Options,
    /// The last guest number handed out: `guest1`, `guest2`, ... never
    /// repeat, so a newcomer is not mistaken for someone who just left.
    guests: u64,
    /// Idle deadlines (`--idle-timeout`), a heap: see [`crate::idle`].
    idle: IdleTimers,
    /// First-line deadlines, one per client, set once when it joins.
    first_line: IdleTimers,
    books: Books,
    /// Clients with input perhaps waiting (in their inbox or the kernel)
    /// that were not read to the end: their turn budget ran out, or the
    /// room is holding input. mio reports a socket readable once, so these
    /// must be remembered. A set: a client listed twice would get double.
    unfinished_reads: BTreeSet<ClientId>,
    /// Clients on their way out (see [`draining`](crate::draining)).
    draining: BTreeMap<ClientId, Draining<S>>,
    /// When each gentle close gives up ([`DRAIN_TIMEOUT`]).
    drain_timers: IdleTimers,
    /// Open connections per IP address. A connection counts until its socket
    /// is really closed, draining included, because until then it holds a
    /// descriptor.
    per_address: PerAddressLimit,
    /// Where every `read` lands first; only bytes that arrived are copied
    /// into the client's own inbox.
    scratch: Vec<u8>,
    /// Sockets of clients just closed, for the loop to deregister and drop.
    closed: Vec<S>,
}

impl<S: Connection> Room<S> {
    pub fn new(options: Options) -> Self {
        Room {
            clients: BTreeMap::new(),
            names: HashMap::new(),
            guests: 0,
            idle: IdleTimers::default(),
            first_line: IdleTimers::default(),
            books: Books {
                dirty: Vec::new(),
                doomed: Vec::new(),
                queued: 0,
                behind: 0,
                work: 0,
                stalls: IdleTimers::default(),
                now: Instant::now(),
                stall_timeout: options.stall_timeout,
                max_queued: options.max_queued_bytes,
            },
            unfinished_reads: BTreeSet::new(),
            draining: BTreeMap::new(),
            drain_timers: IdleTimers::default(),
            per_address: PerAddressLimit::new(options.max_per_address),
            // One read buffer for every client: 10,000 clients do not each
            // hold 16 KiB for reads that mostly return WouldBlock.
            scratch: vec![0; READ_BUF_BYTES],
            closed: Vec::new(),
            options,
        }
    }

    /// Clients in the room (those draining are not counted: they have left).
    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Tells the room the time, once per turn of the loop (timers and stall
    /// accounting use it; asking the clock per line would cost more). Every
    /// deadline set during the turn is counted from this instant.
    pub fn tick(&mut self, now: Instant) {
        self.books.now = now;
    }

    /// Whether the room reads no input now: a recipient is behind, or all
    /// outboxes together are over the budget. The senders' bytes wait in
    /// the kernel, and TCP slows the senders down (back-pressure).
    ///
    /// Input is held for *everyone*, not only for the senders to the client
    /// behind: any line may be broadcast, so any read may add to its outbox.
    /// It is released as soon as writes bring every outbox under the mark
    /// and the total under the budget, or a stalled client is let go.
    pub fn holding_input(&self) -> bool {
        // TODO: exercise 14: hold input while a recipient is behind, or
        // while all outboxes together are over the budget.
        // BEGIN SOLUTION exercise 14
        self.books.behind > 0 || self.books.over_budget()
        // STUB: false
        // END SOLUTION exercise 14
    }

    /// Bytes waiting in all outboxes together.
    pub fn queued_bytes(&self) -> usize {
        self.books.queued
    }

    /// Whether `--max-clients` is reached: the next client is refused.
    pub fn is_full(&self) -> bool {
        // TODO: exercise 6: is the room at `--max-clients`?
        // BEGIN SOLUTION exercise 6
        self.clients.len() >= self.options.max_clients
        // STUB: false
        // END SOLUTION exercise 6
    }

    /// Every client's id (the naive loop tries them all). A copy, not an
    /// iterator: the loop calls `read_ready` for each, which needs the room
    /// mutably and may doom clients while the list is walked.
    pub fn ids(&self) -> Vec<ClientId> {
        self.clients.keys().copied().collect()
    }

    /// Counts a connection from `peer` against `--max-per-address`; false
    /// (and the loop refuses it with [`Room::refuse_address`]) past the cap.
    pub fn admit_address(&mut self, peer: SocketAddr) -> bool {
        self.per_address.try_admit(peer.ip())
    }

    /// Undoes [`Room::admit_address`] for a connection that could not join.
    pub fn release_address(&mut self, peer: SocketAddr) {
        self.per_address.release(peer.ip());
    }

    /// Turns away a client over `--max-per-address`: one notice, then close.
    pub fn refuse_address(&self, mut stream: S, peer: SocketAddr) {
        // A socket just accepted has an empty send buffer, so this one short
        // write goes in whole: no outbox is needed. An error means the client
        // is gone already, and there is nobody left to tell. FIN follows the
        // notice; returning drops `stream`, which closes the descriptor.
        let max = self.per_address.max_per_address();
        log!("{peer} refused: {max} connections from that address already");
        let line = protocol::notice(format!(
            "too many connections from your address ({max}); try again later"
        ));
        let _ = stream.write(line.as_bytes());
        stream.shutdown_write();
    }

    /// Welcomes a newly accepted client under a free guest name. The loop
    /// has checked [`Room::is_full`] and [`Room::admit_address`].
    pub fn join(&mut self, id: ClientId, stream: S, peer: SocketAddr, now: Instant) {
        // Every newcomer starts as a guest; `/nick` renames it later. Guest
        // numbers only grow, and one that someone took with `/nick` is
        // skipped.
        let name = self.free_guest_name();
        log!(
            "{peer} joined as {name} ({} connected)",
            self.clients.len() + 1
        );
        self.names.insert(protocol::name_key(&name), id);
        let client = Client {
            stream,
            peer,
            name: name.clone(),
            inbox: Inbox::default(),
            outbox: Outbox::default(),
            last_heard: now,
            spoke: false,
            last_progress: now,
            stall_watched: false,
            behind: false,
            in_dirty: false,
            missed_notices: 0,
            leaving: None,
        };
        self.clients.insert(id, client);
        // Both timers are set once; talking does not touch the heaps (the
        // expiry step checks `last_heard` and `spoke` when an entry is due).
        if let Some(timeout) = self.options.idle_timeout {
            self.idle.watch(id, now + timeout);
        }
        if let Some(timeout) = self.options.first_line_timeout {
            self.first_line.watch(id, now + timeout);
        }
        // Queued, not written: it leaves with the turn's other writes, in the
        // first `write` this socket sees.
        let welcome =
            format!("welcome, {name}: /nick NAME renames you, /who lists the room, /quit leaves");
        self.queue_for(id, &protocol::notice(welcome));
        // A room notice: past the memory budget, members already behind get a
        // count instead (N silent members would otherwise cost N² notices).
        if self.options.join_notices {
            let line = protocol::notice(format!("{name} joined"));
            self.broadcast_kind(Some(id), &line, Kind::RoomNotice);
        }
    }

    /// Turns away a client over `--max-clients`: one notice, then close.
    /// The socket's send buffer is empty, so this one small write will not block.
    pub fn refuse(mut stream: S, peer: SocketAddr, max_clients: usize) {
        // TODO: exercise 6: log it, send one `* ` notice, and close our side.
        // BEGIN SOLUTION exercise 6
        log!("{peer} refused: the room is full ({max_clients} clients)");
        let line = protocol::notice(format!(
            "the room is full ({max_clients} clients); try again later"
        ));
        let _ = stream.write(line.as_bytes());
        stream.shutdown_write();
        // STUB: let _ = (&mut stream, peer, max_clients);
        // END SOLUTION exercise 6
    }

    /// The next guest name nobody holds. Compared by [`protocol::name_key`],
    /// so `Guest3` (taken with `/nick`) blocks `guest3`.
    fn free_guest_name(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = protocol::default_name(self.guests);
            // Someone may have taken `guest7` with /nick: skip to the next.
            if !self.names.contains_key(&protocol::name_key(&name)) {
                return name;
            }
        }
    }

    /// Reads what `id` sent, without waiting, and handles every complete
    /// line, until the socket has nothing more (`WouldBlock`), the client's
    /// turn budget is spent, or the room holds input. In the last two cases
    /// the client goes on the unfinished list, to be read again later.
    /// Returns whether anything happened: bytes arrived, or the client left
    /// (the naive loop sleeps after a turn in which nothing did).
    pub fn read_ready(&mut self, id: ClientId, now: Instant) -> bool {
        if self.live_client(id).is_none() {
            return false;
        }
        // The budget is measured against the work counter as it was when this
        // client's turn began: this call's lines may fan out that much.
        let work_at_start = self.books.work;
        let mut got_bytes = false;
        loop {
            // A read happens only once every whole line in the inbox is handled,
            // so the inbox never holds more than a half line plus one read.
            // First the lines already read, then more from the socket.
            if !self.handle_lines(id, work_at_start) || self.holding_input() {
                // Stopped with input perhaps waiting: come back to it. While
                // the room holds input, the bytes stay in the kernel.
                self.unfinished_reads.insert(id);
                return got_bytes;
            }
            // Its lines may have made it leave (`/quit`, a line too long).
            let Some(client) = self.clients.get_mut(&id).filter(|c| c.leaving.is_none()) else {
                return got_bytes;
            };
            // read() on a non-blocking socket: the bytes already in the
            // kernel's receive buffer, or WouldBlock if there are none.
            match client
                .inbox
                .read_from(&mut client.stream, &mut self.scratch)
            {
                Ok(Arrived::Bytes(n)) => {
                    // Maybe part of a line, maybe many lines: the loop goes
                    // round to handle them, then reads again until WouldBlock.
                    trace!("read({}) -> {n} bytes", client.peer);
                    got_bytes = true;
                    // Any byte counts as heard, even half a line: the idle
                    // timer is about silence, not about whole lines.
                    client.last_heard = now;
                }
                // WouldBlock: the receive buffer is empty. Reading until here
                // matters to the readiness loop: mio reports a socket readable
                // again only after a read has come back empty (edge-triggered).
                Ok(Arrived::Empty) => return got_bytes,
                // 0 bytes: the client closed its side (FIN). Not an error;
                // a last line without its `\n` still counts.
                Ok(Arrived::Closed) => {
                    self.handle_last_line(id);
                    return !self.doom(id, Leaving::Closed);
                }
                // A real error (reset by the peer, ...): this client is gone,
                // the room goes on. Returns true: something happened.
                Err(err) => return !self.doom(id, Leaving::Lost(err.to_string())),
            }
        }
    }

    /// The client, unless it is gone or doomed: a doomed client still sits in
    /// the map until `settle`, but nothing more is read from it or handled.
    fn live_client(&mut self, id: ClientId) -> Option<&mut Client<S>> {
        self.clients.get_mut(&id).filter(|c| c.leaving.is_none())
    }

    /// The client closed after a line without `\n` (`printf 'hi' | nc`):
    /// that line is delivered like any other.
    fn handle_last_line(&mut self, id: ClientId) {
        let Some(client) = self.live_client(id) else {
            return;
        };
        let mut inbox = std::mem::take(&mut client.inbox);
        // Taken for good, not put back: the client is leaving, and
        // `handle_line` needs the whole room (`self`) while the line borrows
        // the inbox.
        if let Some(line) = inbox.last_line() {
            let line = inbox.line(line);
            // `printf 'hi\r' | nc` ends with a lone `\r`: trim it, as a whole
            // line's `\r\n` is trimmed.
            let line = line.strip_suffix(b"\r").unwrap_or(line);
            // An unfinished line may wait one byte over the limit (room for
            // a `\r`): the last line gets the same limit as every other.
            if line.len() <= MAX_LINE_BYTES {
                self.handle_line(id, &protocol::decode_line(line));
            } else if let Some(client) = self.clients.get(&id) {
                log!(
                    "{} left with a line over {MAX_LINE_BYTES} bytes: not delivered",
                    client.peer
                );
            }
        }
    }

    /// Handles the complete lines in `id`'s inbox, one at a time, while the
    /// room is not holding input and the turn's budget lasts. Returns true
    /// when none is left (or the client is gone).
    fn handle_lines(&mut self, id: ClientId, work_at_start: usize) -> bool {
        let Some(client) = self.live_client(id) else {
            return true;
        };
        // Taken out while its lines are handled (they need the whole room, and
        // a line borrowed from the inbox cannot be held while `self` changes);
        // put back below if the client is still here.
        let mut inbox = std::mem::take(&mut client.inbox);
        let mut all_handled = true;
        loop {
            // Checked before every line, not once per read: a single 16 KiB
            // read can hold 8,192 lines. Stop when a recipient fell behind
            // (back-pressure) or this client's lines have fanned out its
            // budget; the lines not handled stay in the inbox, in order.
            if self.holding_input() || self.books.work - work_at_start >= FANOUT_BYTES_PER_TURN {
                // Nothing left but a half line: nothing to come back for.
                all_handled = inbox.is_empty();
                break;
            }
            match inbox.next_line() {
                // Only a half line (or nothing) waits: read more from the socket.
                None => break,
                Some(Ok(range)) => {
                    if let Some(client) = self.clients.get_mut(&id) {
                        // A whole line: the first-line timeout no longer applies.
                        client.spoke = true;
                    }
                    self.handle_line(id, &protocol::decode_line(inbox.line(range)));
                }
                // No `\n` within the limit: the inbox would have to grow for
                // ever to find the end. Tell the client, then let it go.
                Some(Err(LineTooLong)) => {
                    let text =
                        format!("line too long (over {MAX_LINE_BYTES} bytes); disconnecting");
                    self.queue_for(id, &protocol::notice(text));
                    self.doom(id, Leaving::LineTooLong);
                }
            }
            if self.live_client(id).is_none() {
                return true; // it left (quit, too long): the rest is not for us
            }
        }
        // Still here: what was not handled goes back for its next turn.
        if let Some(client) = self.live_client(id) {
            client.inbox = inbox;
        }
        all_handled
    }

    /// One line from `id`: a message for the room, or a command. Everything
    /// it causes is only queued (replies, broadcasts) or marked (a client
    /// leaving); the writes and closes happen when the step settles.
    pub fn handle_line(&mut self, id: ClientId, line: &str) {
        // Two commands this lesson adds to lesson 3's protocol (exercises 7, 8),
        // checked first: lesson 3's parser would call them unknown.
        if let Some(action) = command_argument(line, "/me") {
            return self.act(id, action);
        }
        if let Some(message) = command_argument(line, "/msg") {
            return self.whisper(id, message);
        }
        // Lesson 3's parser: a line that starts with `/` is a command, any other
        // line is something to say.
        match protocol::parse(line) {
            Request::Say(text) => self.say(id, text),
            Request::Nick(name) => self.rename(id, name),
            Request::Who => self.who(id),
            Request::Quit => {
                // "bye" is queued before the client is doomed: `deliver` takes nothing
                // for a doomed client, so the order matters.
                self.queue_for(id, &protocol::notice("bye"));
                self.doom(id, Leaving::Quit);
            }
            // The command is echoed back escaped (`clean_text`): it came from the
            // client and may hold terminal control codes.
            Request::Unknown(command) => {
                let text = format!(
                    "unknown command {}; try /nick NAME, /who, /me ACTION, /msg NAME TEXT or /quit",
                    protocol::clean_text(command)
                );
                self.queue_for(id, &protocol::notice(text));
            }
        }
    }

    fn say(&mut self, id: ClientId, text: &str) {
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        log!(
            "{} {}: {}",
            client.peer,
            client.name,
            preview(text.as_bytes(), 60)
        );
        // `chat_line` escapes the text (control codes show as `\u{1b}`); the
        // name needs nothing: `check_name` let no such character in. The log shows
        // at most 60 characters of it, so a flood does not flood the log too.
        let line = protocol::chat_line(&client.name, text);
        // Everyone but the sender, as in lesson 3: it saw its line as it typed.
        self.broadcast(Some(id), &line);
    }

    fn rename(&mut self, id: ClientId, new: &str) {
        // The key is what must be unique: lower case, so that `Bob` and `bob`,
        // who would look like one person, cannot both be in the room.
        let key = protocol::name_key(new);
        let checked = protocol::check_name(new).and_then(|()| {
            // Taken by someone else whatever the case (a client may change
            // the case of its own name).
            match self.names.get(&key) {
                Some(&holder) if holder != id => Err(NameError::Taken),
                _ => Ok(()),
            }
        });
        // Refused: the client keeps its name, and only it is told why.
        if let Err(why) = checked {
            self.queue_for(
                id,
                &protocol::notice(format!("cannot rename to {new:?}: {why}")),
            );
            return;
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let old = std::mem::replace(&mut client.name, new.to_string());
        log!("{} renamed {old} -> {new}", client.peer);
        // Old key out before the new key in: when only the case changes, both
        // keys are the same, and the client must still hold it afterwards.
        self.names.remove(&protocol::name_key(&old));
        self.names.insert(key, id);
        // A rename is a plain line (`Kind::Line`), never summarised: unlike a
        // join, a missed rename would leave members not knowing who is talking.
        self.queue_for(id, &protocol::notice(format!("you are now {new}")));
        self.broadcast(Some(id), &protocol::notice(format!("{old} is now {new}")));
    }

    /// `/me waves`: everyone, the sender included, reads `* alice waves`.
    fn act(&mut self, id: ClientId, action: &str) {
        // TODO: exercise 7: a notice `* NAME ACTION` for the whole room.
        // BEGIN SOLUTION exercise 7
        let Some(client) = self.clients.get(&id) else {
            return;
        };
        if action.trim().is_empty() {
            self.queue_for(id, &protocol::notice("/me needs an action: /me waves"));
            return;
        }
        let action = protocol::clean_text(action.trim());
        let line = protocol::notice(format!("{} {action}", client.name));
        self.broadcast(None, &line);
        // STUB: let text = format!("/me {action}: exercise 7 is not done yet");
        // STUB: self.queue_for(id, &protocol::notice(text));
        // END SOLUTION exercise 7
    }

    /// `/msg bob see you`: only bob reads `alice (private): see you`, and
    /// alice gets `* to bob: see you`, or a notice if nobody is called bob.
    fn whisper(&mut self, id: ClientId, message: &str) {
        // TODO: exercise 8: find the client by name, queue the line for it
        // alone, and confirm to the sender.
        // BEGIN SOLUTION exercise 8
        let (to, text) = message
            .trim_start()
            .split_once(' ')
            .unwrap_or((message.trim(), ""));
        if text.trim().is_empty() {
            self.queue_for(id, &protocol::notice("usage: /msg NAME TEXT"));
            return;
        }
        let Some(&target) = self.names.get(&protocol::name_key(to)) else {
            self.queue_for(
                id,
                &protocol::notice(format!("nobody here is called {to:?}")),
            );
            return;
        };
        let Some(sender) = self.clients.get(&id) else {
            return;
        };
        let line = protocol::chat_line(&format!("{} (private)", sender.name), text);
        self.queue_for(target, &line);
        let text = protocol::clean_text(text);
        self.queue_for(id, &protocol::notice(format!("to {to}: {text}")));
        // STUB: let text = format!("/msg {message}: exercise 8 is not done yet");
        // STUB: self.queue_for(id, &protocol::notice(text));
        // END SOLUTION exercise 8
    }

    fn who(&mut self, id: ClientId) {
        // From `names`, not `clients`: a doomed client has released its name
        // already, so someone on the way out is not listed.
        let mut names: Vec<&str> = (self.names.values())
            .filter_map(|holder| self.clients.get(holder))
            .map(|client| client.name.as_str())
            .collect();
        // Sorted, so the answer does not depend on the hash map's order.
        names.sort_unstable();
        // A room of 10,000 would make a reply of about 100 KB; the first 100
        // names and a count keep it one short line.
        let shown = names.len().min(MAX_WHO_NAMES);
        let mut text = format!("here ({}): {}", names.len(), names[..shown].join(", "));
        if names.len() > shown {
            text.push_str(&format!(" and {} more", names.len() - shown));
        }
        self.queue_for(id, &protocol::notice(text));
    }

    /// Queues a line for one client: a reply, a notice, a private message.
    ///
    /// Replies go through the same accounts as broadcasts. A client that
    /// floods `/who` without reading pushes its own outbox over the mark, and
    /// then the room stops reading it (and everyone) until it reads or is
    /// let go: its memory cannot grow for ever.
    pub fn queue_for(&mut self, id: ClientId, line: &str) {
        if let Some(client) = self.clients.get_mut(&id) {
            self.books.deliver(id, client, line.as_bytes(), Kind::Line);
        }
    }

    /// Queues a line for everyone except `from`. Nothing is written yet:
    /// each copy waits in its client's outbox until [`Room::flush_pending`],
    /// so that all the lines of a turn leave in one `write` per client.
    pub fn broadcast(&mut self, from: Option<ClientId>, line: &str) {
        self.broadcast_kind(from, line, Kind::Line);
    }

    fn broadcast_kind(&mut self, from: Option<ClientId>, line: &str, kind: Kind) {
        // The fan-out: one copy per member. `clients` and `books` are two
        // fields, so both can be borrowed mutably at once. The map is in id order,
        // so every member sees the room's lines in the same order. Members being
        // closed are skipped by `deliver`.
        for (&id, client) in self.clients.iter_mut() {
            if Some(id) != from {
                self.books.deliver(id, client, line.as_bytes(), kind);
            }
        }
    }

    /// Writes what `id`'s outbox holds, as far as its socket takes it now.
    /// For a client on its way out, goes on with its gentle close.
    pub fn flush_pending(&mut self, id: ClientId) {
        // A leaving client: its socket and last bytes belong to its gentle close.
        if self.draining.contains_key(&id) {
            return self.service_draining(id);
        }
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        // Nothing to write, no system call (a writable event can come for a
        // socket we have nothing for).
        if client.outbox.is_empty() {
            return;
        }
        // One `write` of everything queued; the kernel takes what fits in the
        // socket's send buffer (see `Outbox::write_to`).
        let before = client.outbox.len();
        let mut written = 0;
        let result = client.outbox.write_to(&mut client.stream, &mut written);
        // Accounts first, whatever the result: what went out leaves the total,
        // and any byte taken resets the stall clock. If the client was behind,
        // this may be what lets the room read again.
        self.books.sent(client, written);
        match result {
            // Outbox empty, and its memory given back: an idle client holds none.
            Ok(Flushed::All) => {
                trace!("write({}) -> {before} bytes, outbox empty", client.peer);
                if client.missed_notices > 0 {
                    // It has read everything: now tell it what it missed.
                    let text = format!(
                        "{} joins and leaves not shown while you were behind (the server was busy); /who lists the room",
                        client.missed_notices
                    );
                    client.missed_notices = 0;
                    self.queue_for(id, &protocol::notice(text));
                }
            }
            // The send buffer is full: the client reads slower than we send. The
            // rest waits in the outbox. The readiness loop hears when the kernel has
            // room again (a writable event); the naive loop tries next turn. The stall
            // timer, started when the bytes began to wait, keeps running.
            Ok(Flushed::WouldBlock(left)) => trace!(
                "write({}) -> {written} bytes, then WouldBlock: {left} bytes wait",
                client.peer
            ),
            // EPIPE, ECONNRESET: the client is gone. Doomed, not removed: the
            // caller may be walking the room.
            Err(err) => {
                self.doom(id, Leaving::Lost(err.to_string()));
            }
        }
    }

    /// Flushes every client that got new bytes since the last call.
    pub fn flush_dirty(&mut self) {
        // A flush may queue more (a summary of missed notices): loop.
        while !self.books.dirty.is_empty() {
            // Taken, not iterated in place: a flush may list a client again
            // (its summary), which goes into a fresh list for the next round.
            for id in std::mem::take(&mut self.books.dirty) {
                if let Some(client) = self.clients.get_mut(&id) {
                    // Cleared before the write, so bytes queued during it list it again.
                    client.in_dirty = false;
                }
                self.flush_pending(id);
            }
        }
    }

    /// Flushes every client with bytes waiting, and goes on with every
    /// gentle close (the naive loop's way: it does not know which sockets
    /// became writable or readable).
    pub fn flush_all(&mut self) {
        for id in self.ids() {
            self.flush_pending(id);
        }
        // Ids copied first: servicing may finish a close and remove it.
        let draining: Vec<ClientId> = self.draining.keys().copied().collect();
        for id in draining {
            self.service_draining(id);
        }
    }

    /// Everything a readiness event for `id` allows: read, write, or go on
    /// with its gentle close.
    pub fn ready(&mut self, id: ClientId, readable: bool, writable: bool, now: Instant) {
        // Any event for a leaving client moves its gentle close on.
        if self.draining.contains_key(&id) {
            return self.service_draining(id);
        }
        // mio reports a change of readiness once (edge-triggered): a readable
        // event not acted on now would not come again, so while input is held
        // the client is listed, to be read when the room lets go.
        if readable {
            if self.holding_input() {
                // Not now: the bytes wait in the kernel, which is the point.
                self.unfinished_reads.insert(id);
            } else {
                self.read_ready(id, now);
            }
        }
        if writable {
            // Written at the end of the turn, with whatever this turn adds:
            // one write per client per turn.
            self.mark_dirty(id);
        }
    }

    /// Lists `id` for the end-of-turn flush, if bytes wait for it: a
    /// writable event means the kernel made room in its send buffer.
    fn mark_dirty(&mut self, id: ClientId) {
        if let Some(client) = self.clients.get_mut(&id)
            && !client.in_dirty
            && !client.outbox.is_empty()
        {
            client.in_dirty = true;
            self.books.dirty.push(id);
        }
    }

    /// Everything whose time has come: idle clients, clients that never
    /// sent a line, stalled clients, gentle closes past their deadline.
    /// The first three only doom (after queuing a notice saying why), and
    /// `settle` closes them, so their order does not matter; the last closes
    /// what ran out of time. Each pops due entries from a heap: a turn with
    /// nothing due costs four comparisons.
    pub fn expire(&mut self, now: Instant) {
        self.expire_idle(now);
        self.expire_silent(now);
        self.expire_stalled(now);
        self.expire_draining(now);
    }

    /// Closes the clients that have been silent past `--idle-timeout`.
    /// Looks only at the timers that are due, not at every client.
    pub fn expire_idle(&mut self, now: Instant) {
        // TODO: exercise 5: close every client whose idle timer is due and
        // who has really been silent that long, with a notice to it.
        // BEGIN SOLUTION exercise 5
        let Some(timeout) = self.options.idle_timeout else {
            return;
        };
        while let Some((deadline, id)) = self.idle.pop_due(now) {
            // Gone already: its entry was stale.
            let Some(client) = self.clients.get(&id) else {
                continue;
            };
            let real_deadline = client.last_heard + timeout;
            if real_deadline > deadline {
                self.idle.watch(id, real_deadline); // it spoke since: look again then
                continue;
            }
            let text = format!("idle for {}s; disconnecting", timeout.as_secs_f32());
            self.queue_for(id, &protocol::notice(text));
            self.doom(id, Leaving::Idle(timeout));
        }
        // STUB: let _ = now;
        // END SOLUTION exercise 5
    }

    /// Closes clients that sent no whole line within `--first-line-timeout`
    /// of connecting: they hold a place (and a descriptor) for nothing.
    fn expire_silent(&mut self, now: Instant) {
        let Some(timeout) = self.options.first_line_timeout else {
            return;
        };
        while let Some((_, id)) = self.first_line.pop_due(now) {
            // Gone already, or spoke in time: the entry is dropped (one per client,
            // never set again).
            if self.clients.get(&id).is_none_or(|client| client.spoke) {
                continue;
            }
            let text = format!(
                "no line within {}s of connecting; disconnecting",
                timeout.as_secs_f32()
            );
            self.queue_for(id, &protocol::notice(text));
            self.doom(id, Leaving::Silent(timeout));
        }
    }

    /// Lets go of clients whose socket took no byte for `--stall-timeout`
    /// while bytes waited for them. Their queue is thrown away (they were
    /// not reading it), so that the notice saying why comes next.
    fn expire_stalled(&mut self, now: Instant) {
        let timeout = self.options.stall_timeout;
        while let Some((_, id)) = self.books.stalls.pop_due(now) {
            let Some(client) = self.clients.get_mut(&id) else {
                continue;
            };
            // It caught up (or is leaving): no stall, and no entry any more.
            if client.outbox.is_empty() || client.leaving.is_some() {
                client.stall_watched = false; // watched again when bytes wait
                continue;
            }
            // The entry was set when bytes began to wait; the socket may have
            // taken some since. Only a whole stall timeout without one byte taken
            // lets a client go.
            let deadline = client.last_progress + timeout;
            if deadline > now {
                self.books.stalls.watch(id, deadline); // it read since: look again then
                continue;
            }
            // Its queue is thrown away: it was not reading it, and keeping it
            // would keep the room holding input. The notice queued next is then
            // the last thing it can read, and says how much it lost.
            let dropped = client.outbox.discard();
            self.books.sent(client, dropped);
            client.stall_watched = false;
            log!(
                "{} {}: its socket took nothing for {}s; {dropped} queued bytes dropped",
                client.peer,
                client.name,
                timeout.as_secs_f32()
            );
            let text = format!(
                "you read nothing for {}s while {dropped} bytes waited for you; disconnecting",
                timeout.as_secs_f32()
            );
            self.queue_for(id, &protocol::notice(text));
            self.doom(id, Leaving::TooSlow(timeout));
        }
    }

    /// Closes gentle closes that did not finish within [`DRAIN_TIMEOUT`].
    fn expire_draining(&mut self, now: Instant) {
        // A client that finished its close early left its entry behind; that
        // entry finds nothing in `draining` and is dropped.
        while let Some((_, id)) = self.drain_timers.pop_due(now) {
            if let Some(draining) = self.draining.remove(&id) {
                trace!(
                    "{}: draining took over {DRAIN_TIMEOUT:?}; closing",
                    draining.peer
                );
                self.finish(draining);
            }
        }
    }

    /// When the next timer is due: the readiness loop waits no longer.
    pub fn next_deadline(&self) -> Option<Instant> {
        [
            // The readiness loop gives the earliest to `poll` as its timeout: it
            // sleeps exactly until a timer is due, with no waking up to scan.
            self.idle.next_deadline(),
            self.first_line.next_deadline(),
            self.books.stalls.next_deadline(),
            self.drain_timers.next_deadline(),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Marks a client as leaving; [`Room::settle`] closes it. Returns false,
    /// so that `read_ready` can end with `return !self.doom(...)` (true:
    /// something happened, and the naive loop does not sleep).
    ///
    /// Dooming twice keeps the first reason: the one its notice gave.
    pub fn doom(&mut self, id: ClientId, why: Leaving) -> bool {
        if let Some(client) = self.clients.get_mut(&id).filter(|c| c.leaving.is_none()) {
            client.leaving = Some(why);
            // Closed at the end of the step, not now: the caller may be in the
            // middle of walking the room.
            self.books.doomed.push(id);
            // The name is free at once, so a client whose connection broke can
            // come back under it before this one has finished draining.
            let name = client.name.clone();
            self.release_name(&name, id);
        }
        false
    }

    /// Ends a step: closes doomed clients (whose leave notices may doom
    /// others) and flushes everything queued, until nothing is left to do.
    pub fn settle(&mut self) {
        loop {
            // Closing broadcasts a leave notice; flushing may find a socket gone
            // (EPIPE) and doom its client. So repeat until a round dooms nobody.
            while let Some(id) = self.books.doomed.pop() {
                self.close(id);
            }
            self.flush_dirty();
            if self.books.doomed.is_empty() {
                return;
            }
        }
    }

    /// Takes a doomed client out of the room, tells the room, and starts
    /// its gentle close with whatever its outbox holds (its last notice).
    fn close(&mut self, id: ClientId) {
        let Some(mut client) = self.clients.remove(&id) else {
            return;
        };
        // Nothing more is read from it as a member.
        self.unfinished_reads.remove(&id);
        // Its bytes leave the room's accounts (they go with it to draining).
        let queued = client.outbox.len();
        self.books.queued -= queued;
        // Nor does it count as behind: letting go of a stalled client is what
        // releases the room's held input.
        if client.behind {
            self.books.behind -= 1;
        }
        let why = client.leaving.take().unwrap_or(Leaving::Closed);
        log!("{} {} left ({})", client.peer, client.name, why.reason());
        self.release_name(&client.name, id);
        if self.options.join_notices {
            let text = format!("{} left ({})", client.name, why.reason());
            self.broadcast_kind(None, &protocol::notice(text), Kind::RoomNotice);
        }
        // Its socket and last bytes (the notice) go to the gentle close: write,
        // FIN, read until the client's FIN, then close (see `crate::draining`).
        let draining = Draining::new(client.stream, client.peer, client.outbox);
        self.draining.insert(id, draining);
        // Counted from now, not from the start of the turn: a long turn must not
        // eat into the time the client has to read its notice.
        self.drain_timers
            .watch(id, self.books.now.max(Instant::now()) + DRAIN_TIMEOUT);
        // Started at once: the send buffer usually has room, so the notice and
        // FIN go out in this turn.
        self.service_draining(id);
    }

    /// One step of a gentle close; closes the socket when it is done.
    fn service_draining(&mut self, id: ClientId) {
        let Some(draining) = self.draining.get_mut(&id) else {
            return;
        };
        if draining.service() {
            if let Some(draining) = self.draining.remove(&id) {
                self.finish(draining);
            }
        }
    }

    /// The socket's last moment: handed to the loop to deregister and drop.
    fn finish(&mut self, draining: Draining<S>) {
        trace!("close({})", draining.peer);
        // Only now is the address's place free: until the socket is closed, it
        // held a descriptor.
        self.per_address.release(draining.peer.ip());
        // Not dropped here: the readiness loop must deregister it from the
        // poller first, and the room does not know the poller.
        self.closed.push(draining.stream);
    }

    /// Stopping the server (Ctrl-C): every client is told, then closed
    /// gently, each connection through [`draining`](crate::draining) (its
    /// outbox flushed, FIN, its last bytes read), so that the notice and
    /// whatever waited before it arrive. The loop has closed the listener
    /// already; it then waits, bounded, until [`Room::draining_len`] is 0.
    pub fn shut_down(&mut self) {
        // TODO: exercise 15: queue `* server shutting down` for every
        // client, then start closing each one gently.
        // BEGIN SOLUTION exercise 15
        log!(
            "shutting down: telling every client ({})",
            self.clients.len()
        );
        for id in self.ids() {
            // The notice first: nothing is queued for a doomed client.
            self.queue_for(id, &protocol::notice("server shutting down"));
            self.doom(id, Leaving::ShutDown);
        }
        // STUB: log!("shutting down at once, telling nobody (exercise 15 is not done yet)");
        // END SOLUTION exercise 15
    }

    /// Clients on their way out, still open.
    pub fn draining_len(&self) -> usize {
        self.draining.len()
    }

    /// Frees `name` if `id` still holds it (someone else may have taken it
    /// since `id` was doomed).
    fn release_name(&mut self, name: &str, id: ClientId) {
        let key = protocol::name_key(name);
        if self.names.get(&key) == Some(&id) {
            self.names.remove(&key);
        }
    }

    /// Sockets closed since the last call (the readiness loop deregisters
    /// them; dropping one closes its file descriptor).
    pub fn take_closed(&mut self) -> Vec<S> {
        std::mem::take(&mut self.closed)
    }

    /// Whether some client has input to handle now (its turn budget ran
    /// out, or the room was holding input and is not any more).
    pub fn has_unfinished_reads(&self) -> bool {
        !self.unfinished_reads.is_empty() && !self.holding_input()
    }

    /// Clients to read again now; none while the room holds input (they
    /// stay listed until it stops).
    pub fn take_unfinished_reads(&mut self) -> Vec<ClientId> {
        // The naive loop drops what this returns (it tries every client each
        // turn anyway); the readiness loop reads each of them.
        if self.holding_input() {
            return Vec::new();
        }
        std::mem::take(&mut self.unfinished_reads)
            .into_iter()
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::RefCell;
    use std::io;
    use std::rc::Rc;

    /// A socket stand-in: takes writes only while `open_for_writes`, has no
    /// input, and keeps what it was given.
    #[derive(Clone, Default)]
    struct Fake(Rc<RefCell<FakeState>>);

    #[derive(Default)]
    struct FakeState {
        open_for_writes: bool,
        /// The peer has closed its side: reads return 0.
        peer_closed: bool,
        written: Vec<u8>,
    }

    impl Read for Fake {
        fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
            match self.0.borrow().peer_closed {
                true => Ok(0),
                false => Err(io::ErrorKind::WouldBlock.into()),
            }
        }
    }

    impl Write for Fake {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            let mut state = self.0.borrow_mut();
            if !state.open_for_writes {
                return Err(io::ErrorKind::WouldBlock.into());
            }
            state.written.extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    // No real socket, so no FIN to send.
    impl Connection for Fake {
        fn shutdown_write(&self) {}
    }

    fn peer() -> SocketAddr {
        // The room logs every join; thousands of lines would bury the output.
        plumbing::trace::silence_logs();
        "127.0.0.1:9".parse().unwrap()
    }

    #[test]
    fn members_that_never_read_cost_memory_linear_in_their_number() {
        // 2,000 members, none reading: every join notice to all would queue
        // about 2,000^2 / 2 x 20 bytes = 40 MB. With a 64 KiB budget, each
        // member holds at most what it had when the budget was passed: the
        // bound below is the budget plus about 200 bytes per member.
        let mut room = Room::new(Options {
            max_queued_bytes: 64 * 1024,
            ..Options::default()
        });
        let now = Instant::now();
        // Fakes take no writes: every byte queued for them stays queued, as for
        // clients that never read.
        let sockets: Vec<Fake> = (1..=2_000).map(|_| Fake::default()).collect();
        for (i, socket) in sockets.iter().enumerate() {
            room.tick(now);
            room.join(i + 1, socket.clone(), peer(), now);
            room.settle();
        }
        assert!(
            room.queued_bytes() < 64 * 1024 + 2_000 * 200,
            "{} bytes queued",
            room.queued_bytes()
        );
        // The first member reads at last: what it holds, then a summary.
        // Its write succeeds: the outbox empties, and the summary of what it
        // missed is queued behind it, for `settle` to write.
        sockets[0].0.borrow_mut().open_for_writes = true;
        room.flush_pending(1);
        room.settle();
        let written = String::from_utf8(sockets[0].0.borrow().written.clone()).unwrap();
        let last = written.lines().last().unwrap();
        assert!(
            last.starts_with("* ") && last.contains(" joins and leaves not shown"),
            "{last:?}"
        );
    }

    #[test]
    fn the_per_address_cap_counts_a_connection_until_its_socket_is_closed() {
        let mut room = Room::new(Options {
            max_per_address: 2,
            ..Options::default()
        });
        let far: SocketAddr = "192.0.2.7:4000".parse().unwrap();
        let now = Instant::now();
        assert!(room.admit_address(far));
        assert!(room.admit_address(far));
        assert!(!room.admit_address(far), "a third from the same address");
        assert!(room.admit_address(peer()), "loopback is never capped");
        let socket = Fake::default();
        socket.0.borrow_mut().open_for_writes = true;
        room.join(1, socket.clone(), far, now);
        // `/quit` queues "bye" and dooms; `settle` closes it: the notice is
        // written, FIN is sent, and it drains.
        room.handle_line(1, "/quit");
        room.settle();
        // Told "bye" and sent FIN; the place stays taken while it drains.
        assert_eq!(room.draining_len(), 1);
        assert!(!room.admit_address(far));
        // It closes its side too: the gentle close ends, the place is free.
        socket.0.borrow_mut().peer_closed = true;
        room.flush_all();
        assert_eq!(room.draining_len(), 0);
        assert_eq!(room.take_closed().len(), 1);
        assert!(room.admit_address(far));
        assert!(String::from_utf8_lossy(&socket.0.borrow().written).ends_with("* bye\n"));
    }
}
