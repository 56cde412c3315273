//! The chat room both event loops share: names, broadcast, commands,
//! outgoing buffers, idle expiry. Nothing here waits: every socket call is
//! non-blocking, so the room never stops for one client. The two loops
//! ([`naive`](crate::naive), [`readiness`](crate::readiness)) differ only in
//! how they find out *which* clients to call [`Room::read_ready`] and
//! [`Room::flush_pending`] for.
//!
//! The protocol itself (parsing a line, checking a name, the wire format of
//! `NAME: TEXT` and `* NOTICE`) is lesson 3's, reused from
//! [`multiclients_threaded::protocol`].
//!
//! Work happens in small steps, and a step never closes a client in the
//! middle: it marks the client as leaving ([`Room::doom`]), and
//! [`Room::settle`] closes it once the step is over. That way a broadcast
//! that finds a too-slow client does not change the room it is iterating.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr};
use std::time::{Duration, Instant};

use basic::trace::preview;
use basic::{log, trace};
use multiclients_threaded::protocol::{
    self, LineBuffer, LineTooLong, MAX_LINE_BYTES, NameError, Request,
};

use crate::idle::IdleTimers;
use crate::outbox::{Flushed, MAX_OUTBOX_BYTES, Outbox, Overflow};

/// Identifies a client for the whole life of the server. Ids are never
/// reused, so a stale idle-timer entry can never hit a newer client.
pub type ClientId = usize;

/// How many bytes one `read` may return.
pub const READ_BUF_BYTES: usize = 4096;

/// How many reads one client gets per wake-up. A client that keeps its
/// socket full would otherwise keep the loop reading it while everyone
/// else waits; past the budget it is revisited on the next turn.
pub const READS_PER_WAKEUP: usize = 16;

/// `/who` lists at most this many names, so that its answer always fits in
/// an outbox, even in a room of 10,000.
pub const MAX_WHO_NAMES: usize = 100;

/// What the room needs from a socket: bytes in, bytes out, and a way to say
/// "no more from me". Both `std::net::TcpStream` (the naive loop) and
/// `mio::net::TcpStream` (the readiness loop) qualify.
pub trait Connection: Read + Write {
    /// Sends FIN after the bytes already queued (a half-close).
    fn shutdown_write(&self);
}

impl Connection for std::net::TcpStream {
    fn shutdown_write(&self) {
        let _ = self.shutdown(Shutdown::Write); // the peer may be gone already: fine
    }
}

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
}

impl Default for Options {
    fn default() -> Self {
        Options {
            idle_timeout: None,
            max_clients: 10_000,
            join_notices: true,
        }
    }
}

/// Why a client leaves; decides what the room is told.
#[derive(Debug, Clone)]
pub enum Leaving {
    Quit,
    Closed,
    Lost(String),
    TooSlow,
    LineTooLong,
    Idle(Duration),
}

impl Leaving {
    /// The reason as the room's notice and the log show it.
    fn reason(&self) -> String {
        match self {
            Leaving::Quit => "quit".into(),
            Leaving::Closed => "closed the connection".into(),
            Leaving::Lost(err) => format!("connection lost: {err}"),
            Leaving::TooSlow => format!("too slow: {MAX_OUTBOX_BYTES} bytes waited unread"),
            Leaving::LineTooLong => format!("sent a line over {MAX_LINE_BYTES} bytes"),
            Leaving::Idle(after) => format!("idle for {}s", after.as_secs_f32()),
        }
    }
}

/// One connected client.
pub struct Client<S> {
    stream: S,
    peer: SocketAddr,
    name: String,
    lines: LineBuffer,
    outbox: Outbox,
    last_heard: Instant,
    /// Already in the room's list of clients to flush.
    in_dirty: bool,
    /// Set once the client is doomed; [`Room::settle`] closes it.
    leaving: Option<Leaving>,
}

/// Work the current step found for later: clients to flush, to close.
#[derive(Default)]
struct Pending {
    dirty: Vec<ClientId>,
    doomed: Vec<ClientId>,
}

impl Pending {
    /// Queues `line` for one client: marks it for flushing, or dooms it if
    /// its outbox is full. The one place where bytes enter an outbox.
    fn deliver<S>(&mut self, id: ClientId, client: &mut Client<S>, line: &[u8]) {
        if client.leaving.is_some() {
            return;
        }
        match client.outbox.push(line) {
            Ok(()) if !client.in_dirty => {
                client.in_dirty = true;
                self.dirty.push(id);
            }
            Ok(()) => {}
            Err(Overflow) => {
                client.leaving = Some(Leaving::TooSlow);
                self.doomed.push(id);
            }
        }
    }
}

/// What follows `command` in `line` (`"/me waves"` gives `"waves"`), or
/// `None` if the line is not that command (`/meet` is not `/me`).
fn command_argument<'a>(line: &'a str, command: &str) -> Option<&'a str> {
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
    /// Who holds each name. A name is free again as soon as its client is
    /// doomed, so that a client that lost its connection can come back
    /// under the same name right away.
    names: HashMap<String, ClientId>,
    options: Options,
    guests: u64,
    idle: IdleTimers,
    pending: Pending,
    /// Clients whose read budget ran out with bytes perhaps still waiting.
    /// A set: a client read twice in one turn must not be listed twice, or
    /// its share of the next turn would double, and double again.
    unfinished_reads: BTreeSet<ClientId>,
    /// Sockets of clients just closed, for the loop to deregister and drop.
    closed: Vec<S>,
}

impl<S: Connection> Room<S> {
    pub fn new(options: Options) -> Self {
        Room {
            clients: BTreeMap::new(),
            names: HashMap::new(),
            options,
            guests: 0,
            idle: IdleTimers::default(),
            pending: Pending::default(),
            unfinished_reads: BTreeSet::new(),
            closed: Vec::new(),
        }
    }

    pub fn len(&self) -> usize {
        self.clients.len()
    }

    pub fn is_empty(&self) -> bool {
        self.clients.is_empty()
    }

    /// Whether `--max-clients` is reached: the next client is refused.
    pub fn is_full(&self) -> bool {
        // TODO: exercise 6: is the room at `--max-clients`?
        // BEGIN SOLUTION exercise 6
        self.clients.len() >= self.options.max_clients
        // STUB: false
        // END SOLUTION exercise 6
    }

    /// Every client's id (the naive loop tries them all).
    pub fn ids(&self) -> Vec<ClientId> {
        self.clients.keys().copied().collect()
    }

    /// Welcomes a newly accepted client under a free guest name.
    pub fn join(&mut self, id: ClientId, stream: S, peer: SocketAddr, now: Instant) {
        let name = self.free_guest_name();
        log!(
            "{peer} joined as {name} ({} connected)",
            self.clients.len() + 1
        );
        self.names.insert(name.clone(), id);
        let client = Client {
            stream,
            peer,
            name: name.clone(),
            lines: LineBuffer::new(MAX_LINE_BYTES),
            outbox: Outbox::default(),
            last_heard: now,
            in_dirty: false,
            leaving: None,
        };
        self.clients.insert(id, client);
        if let Some(timeout) = self.options.idle_timeout {
            self.idle.watch(id, now + timeout);
        }
        let welcome =
            format!("welcome, {name}: /nick NAME renames you, /who lists the room, /quit leaves");
        self.queue_for(id, &protocol::notice(welcome));
        if self.options.join_notices {
            self.broadcast(Some(id), &protocol::notice(format!("{name} joined")));
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

    fn free_guest_name(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = protocol::default_name(self.guests);
            // Someone may have taken `guest7` with /nick: skip to the next.
            if !self.names.contains_key(&name) {
                return name;
            }
        }
    }

    /// Reads what `id` sent, without waiting, and handles every complete
    /// line. Returns whether any byte arrived (the naive loop uses it to
    /// decide whether to sleep).
    pub fn read_ready(&mut self, id: ClientId, now: Instant) -> bool {
        let mut buf = [0u8; READ_BUF_BYTES];
        let mut got_bytes = false;
        for _ in 0..READS_PER_WAKEUP {
            let Some(client) = self.live_client(id) else {
                return got_bytes;
            };
            // read() on a non-blocking socket: the bytes already in the
            // kernel's receive buffer, or WouldBlock if there are none.
            match client.stream.read(&mut buf) {
                // 0: the client closed its side (FIN). Not an error.
                Ok(0) => return self.doom(id, Leaving::Closed) || got_bytes,
                Ok(n) => {
                    trace!("read({}) -> {n} bytes", client.peer);
                    got_bytes = true;
                    client.last_heard = now;
                    client.lines.extend(&buf[..n]);
                    self.handle_lines(id);
                }
                // Nothing more for now: the readiness loop will hear when there is.
                Err(err) if err.kind() == io::ErrorKind::WouldBlock => return got_bytes,
                Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
                Err(err) => return self.doom(id, Leaving::Lost(err.to_string())) || got_bytes,
            }
        }
        self.unfinished_reads.insert(id); // budget spent: more may be waiting
        got_bytes
    }

    fn live_client(&mut self, id: ClientId) -> Option<&mut Client<S>> {
        self.clients.get_mut(&id).filter(|c| c.leaving.is_none())
    }

    /// Takes every complete line out of `id`'s line buffer and handles it.
    fn handle_lines(&mut self, id: ClientId) {
        while let Some(client) = self.live_client(id) {
            match client.lines.next_line() {
                None => return,
                Some(Ok(raw)) => self.handle_line(id, &protocol::decode_line(&raw)),
                Some(Err(LineTooLong)) => {
                    let text =
                        format!("line too long (over {MAX_LINE_BYTES} bytes); disconnecting");
                    self.queue_for(id, &protocol::notice(text));
                    self.doom(id, Leaving::LineTooLong);
                }
            }
        }
    }

    /// One line from `id`: a message for the room, or a command.
    pub fn handle_line(&mut self, id: ClientId, line: &str) {
        // Two commands this lesson adds to lesson 3's protocol (exercises 7, 8).
        if let Some(action) = command_argument(line, "/me") {
            return self.act(id, action);
        }
        if let Some(message) = command_argument(line, "/msg") {
            return self.whisper(id, message);
        }
        match protocol::parse(line) {
            Request::Say(text) => self.say(id, text),
            Request::Nick(name) => self.rename(id, name),
            Request::Who => self.who(id),
            Request::Quit => {
                self.queue_for(id, &protocol::notice("bye"));
                self.doom(id, Leaving::Quit);
            }
            Request::Unknown(command) => {
                let text = format!(
                    "unknown command {command}; try /nick NAME, /who, /me ACTION, /msg NAME TEXT or /quit"
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
        let line = protocol::chat_line(&client.name, text);
        self.broadcast(Some(id), &line);
    }

    fn rename(&mut self, id: ClientId, new: &str) {
        let checked = protocol::check_name(new).and_then(|()| {
            if self.names.contains_key(new) {
                Err(NameError::Taken)
            } else {
                Ok(())
            }
        });
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
        self.names.remove(&old);
        self.names.insert(new.to_string(), id);
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
        let line = protocol::notice(format!("{} {}", client.name, action.trim()));
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
        let Some(&target) = self.names.get(to) else {
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
        self.queue_for(id, &protocol::notice(format!("to {to}: {text}")));
        // STUB: let text = format!("/msg {message}: exercise 8 is not done yet");
        // STUB: self.queue_for(id, &protocol::notice(text));
        // END SOLUTION exercise 8
    }

    fn who(&mut self, id: ClientId) {
        let mut names: Vec<&str> = self.names.keys().map(String::as_str).collect();
        names.sort_unstable();
        let shown = names.len().min(MAX_WHO_NAMES);
        let mut text = format!("here ({}): {}", names.len(), names[..shown].join(", "));
        if names.len() > shown {
            text.push_str(&format!(" and {} more", names.len() - shown));
        }
        self.queue_for(id, &protocol::notice(text));
    }

    /// Queues a line for one client (or dooms it, if its outbox is full).
    pub fn queue_for(&mut self, id: ClientId, line: &str) {
        if let Some(client) = self.clients.get_mut(&id) {
            self.pending.deliver(id, client, line.as_bytes());
        }
    }

    /// Queues a line for everyone except `from`. Nothing is written yet:
    /// each copy waits in its client's outbox until [`Room::flush_pending`].
    pub fn broadcast(&mut self, from: Option<ClientId>, line: &str) {
        for (&id, client) in self.clients.iter_mut() {
            if Some(id) != from {
                self.pending.deliver(id, client, line.as_bytes());
            }
        }
    }

    /// Writes what `id`'s outbox holds, as far as its socket takes it now.
    pub fn flush_pending(&mut self, id: ClientId) {
        let Some(client) = self.clients.get_mut(&id) else {
            return;
        };
        let before = client.outbox.len();
        if before == 0 {
            return;
        }
        match client.outbox.write_to(&mut client.stream) {
            Ok(Flushed::All) => trace!("write({}) -> {before} bytes, outbox empty", client.peer),
            Ok(Flushed::WouldBlock(left)) => trace!(
                "write({}) -> {} bytes, then WouldBlock: {left} of {MAX_OUTBOX_BYTES} outbox bytes used",
                client.peer,
                before - left
            ),
            Err(err) => {
                self.doom(id, Leaving::Lost(err.to_string()));
            }
        }
    }

    /// Flushes every client that got new bytes since the last call.
    pub fn flush_dirty(&mut self) {
        for id in std::mem::take(&mut self.pending.dirty) {
            if let Some(client) = self.clients.get_mut(&id) {
                client.in_dirty = false;
            }
            self.flush_pending(id);
        }
    }

    /// Flushes every client with bytes waiting (the naive loop's way: it
    /// does not know which sockets became writable).
    pub fn flush_all(&mut self) {
        for id in self.ids() {
            self.flush_pending(id);
        }
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

    /// When the next idle timer is due: the readiness loop waits no longer.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.idle.next_deadline()
    }

    /// Marks a client as leaving; [`Room::settle`] closes it. Returns false,
    /// so that `read_ready` can end with `return self.doom(...)`.
    pub fn doom(&mut self, id: ClientId, why: Leaving) -> bool {
        if let Some(client) = self.clients.get_mut(&id).filter(|c| c.leaving.is_none()) {
            client.leaving = Some(why);
            self.pending.doomed.push(id);
            let name = client.name.clone();
            self.release_name(&name, id);
        }
        false
    }

    /// Ends a step: closes doomed clients (whose leave notices may doom
    /// others) and flushes everything queued, until nothing is left to do.
    pub fn settle(&mut self) {
        loop {
            while let Some(id) = self.pending.doomed.pop() {
                self.close(id);
            }
            self.flush_dirty();
            if self.pending.doomed.is_empty() {
                return;
            }
        }
    }

    fn close(&mut self, id: ClientId) {
        let Some(mut client) = self.clients.remove(&id) else {
            return;
        };
        let why = client.leaving.take().unwrap_or(Leaving::Closed);
        // Last chance for its final notice ("bye", "idle"): one
        // non-blocking write. Then FIN, after whatever the kernel holds.
        let _ = client.outbox.write_to(&mut client.stream);
        client.stream.shutdown_write();
        trace!("shutdown({}, Write); close", client.peer);
        log!("{} {} left ({})", client.peer, client.name, why.reason());
        self.release_name(&client.name, id);
        if self.options.join_notices {
            let text = format!("{} left ({})", client.name, why.reason());
            self.broadcast(None, &protocol::notice(text));
        }
        self.closed.push(client.stream);
    }

    /// Frees `name` if `id` still holds it (someone else may have taken it
    /// since `id` was doomed).
    fn release_name(&mut self, name: &str, id: ClientId) {
        if self.names.get(name) == Some(&id) {
            self.names.remove(name);
        }
    }

    /// Sockets closed since the last call (the readiness loop deregisters
    /// them; dropping one closes its file descriptor).
    pub fn take_closed(&mut self) -> Vec<S> {
        std::mem::take(&mut self.closed)
    }

    /// Clients to read again at once, because their read budget ran out.
    pub fn take_unfinished_reads(&mut self) -> Vec<ClientId> {
        std::mem::take(&mut self.unfinished_reads)
            .into_iter()
            .collect()
    }
}
