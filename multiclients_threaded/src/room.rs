//! The registry every client thread shares: who is here, under which name,
//! and the bounded queue (the *outbox*) that leads to each one's writer
//! thread.
//!
//! The registry sits behind one [`Mutex`], and the rule of this file is that
//! nothing done while holding it can block on the network. Delivering a line
//! is [`Outbox::put`] onto a bounded queue, which returns at once, whether
//! the queue had room or not; the `write` to the socket happens later,
//! on the receiver's own writer thread, with no lock held. Were we to write
//! while holding the lock, one client that stops reading would fill its
//! socket buffers, our `write` would block, and every other thread would wait
//! for the lock: the whole room would freeze behind one stuck peer.
//!
//! When an outbox is full, its client has fallen too far behind: it is
//! removed, its socket is shut down, and the room gets a notice. Nobody else
//! waits for it and nobody else loses a line.

use std::collections::BTreeMap;
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use basic::log;

use crate::outbox::Outbox;
use crate::protocol::{NameError, check_name, default_name, notice, push_chat_line};

/// One line on its way to clients, shared: a broadcast allocates the line
/// once, and each outbox holds a pointer to it (an `Arc` clone is a counter
/// increment), however many clients receive it.
pub type Line = Arc<str>;

/// Tells clients apart inside the server; names can change, ids do not.
pub type ClientId = u64;

/// What the room knows about one connected client.
pub struct Member {
    pub name: String,
    pub peer: SocketAddr,
    /// The sending end of this client's bounded queue.
    outbox: Outbox,
    /// A handle on the client's socket, used only to hang up on it.
    stream: Arc<TcpStream>,
}

impl Member {
    pub fn new(peer: SocketAddr, outbox: Outbox, stream: Arc<TcpStream>) -> Self {
        Member {
            name: String::new(),
            peer,
            outbox,
            stream,
        }
    }

    /// shutdown(Both) does not block: it wakes this client's reader (its
    /// `read` returns 0) and its writer (a blocked `write` fails), so both
    /// threads end and the connection closes.
    fn hang_up(&self) {
        let _ = self.stream.shutdown(Shutdown::Both);
    }
}

/// Why a client is no longer in the room; the words go into the notice.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Leaving {
    /// It closed the connection, or sent `/quit`.
    Left,
    /// The connection failed (a reset: the client vanished).
    Lost,
    /// It sent a line longer than the limit.
    LineTooLong,
    /// It stopped reading: its outbox overflowed or a write timed out.
    NotReading,
}

impl Leaving {
    fn words(self) -> &'static str {
        match self {
            Leaving::Left => "left",
            Leaving::Lost => "left (connection lost)",
            Leaving::LineTooLong => "was disconnected (line too long)",
            Leaving::NotReading => "was disconnected (not reading: too far behind)",
        }
    }
}

/// The room is full: `--max-clients` are connected already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomFull(pub usize);

/// The clients present, by id. A `BTreeMap` keeps them in the order they
/// joined (ids only grow), which is the order `/who` lists them in.
#[derive(Default)]
struct Registry {
    members: BTreeMap<ClientId, Member>,
    /// How many default names were handed out: the next is `guest{n+1}`.
    guests: u64,
}

impl Registry {
    /// Queues `line` for every member except `skip`, without waiting.
    /// Returns the members whose outbox was full (or whose writer is gone),
    /// already removed from the room.
    #[must_use]
    fn deliver(&mut self, line: &Line, skip: Option<ClientId>) -> Vec<Member> {
        let behind: Vec<ClientId> = self
            .members
            .iter()
            .filter(|(id, _)| Some(**id) != skip)
            // put() never blocks: it fails when the client is too far
            // behind, or when its writer thread has ended.
            .filter(|(_, member)| member.outbox.put(line).is_err())
            .map(|(id, _)| *id)
            .collect();
        // An empty Vec does not allocate: the usual case costs nothing.
        behind
            .iter()
            .filter_map(|id| self.members.remove(id))
            .collect()
    }

    /// Queues `line` for one member only; returns it, removed, if it is
    /// too far behind.
    #[must_use]
    fn tell(&mut self, id: ClientId, line: Line) -> Vec<Member> {
        let full = match self.members.get(&id) {
            Some(member) => member.outbox.put(&line).is_err(),
            None => false,
        };
        match full {
            true => self.members.remove(&id).into_iter().collect(),
            false => Vec::new(),
        }
    }

    /// Names stay unique: `new` may not belong to anyone but `id`.
    fn check_free(&self, id: ClientId, new: &str) -> Result<(), NameError> {
        match self
            .members
            .iter()
            .any(|(other, m)| *other != id && m.name == new)
        {
            true => Err(NameError::Taken),
            false => Ok(()),
        }
    }

    /// Gives `id` its new name; returns the old one (empty if `id` is not
    /// here, which the caller has ruled out under the same lock).
    fn rename(&mut self, id: ClientId, new: &str) -> String {
        match self.members.get_mut(&id) {
            Some(member) => std::mem::replace(&mut member.name, new.to_string()),
            None => String::new(),
        }
    }

    fn is_taken(&self, name: &str) -> bool {
        self.members.values().any(|member| member.name == name)
    }

    /// The next `guestN` that nobody has taken (someone may have picked it
    /// with `/nick`).
    fn free_default_name(&mut self) -> String {
        loop {
            self.guests += 1;
            let name = default_name(self.guests);
            if !self.is_taken(&name) {
                return name;
            }
        }
    }
}

/// The shared room: the registry behind its lock, and the server's options.
/// Every client thread holds an `Arc<Room>`.
pub struct Room {
    registry: Mutex<Registry>,
    max_clients: usize,
    join_notices: bool,
    log_messages: bool,
}

impl Room {
    pub fn new(max_clients: usize, join_notices: bool, log_messages: bool) -> Self {
        Room {
            registry: Mutex::default(),
            max_clients,
            join_notices,
            log_messages,
        }
    }

    /// Takes the lock. No code panics while holding it, so a poisoned lock
    /// (a thread panicked inside) still guards a consistent registry, and we
    /// go on with it rather than take the server down.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Adds a client under a fresh default name, welcomes it and tells the
    /// others. Returns its name, or [`RoomFull`].
    pub fn join(&self, id: ClientId, mut member: Member) -> Result<String, RoomFull> {
        let peer = member.peer;
        let (name, behind) = {
            let mut registry = self.lock();
            if registry.members.len() >= self.max_clients {
                return Err(RoomFull(self.max_clients));
            }
            member.name = registry.free_default_name();
            let name = member.name.clone();
            let others = registry.members.len();
            registry.members.insert(id, member);
            let mut behind = registry.tell(id, welcome(&name, others));
            if self.join_notices {
                let joined = Line::from(notice(format_args!("{name} joined")));
                behind.extend(registry.deliver(&joined, Some(id)));
            }
            (name, behind)
        }; // the lock is released here, before any logging or hanging up
        log!("{peer}: joined as {name}");
        self.drop_behind(behind);
        Ok(name)
    }

    /// Broadcasts `NAME: TEXT` for each of `texts` to everyone but the
    /// sender, as one delivery: the lines that arrived in one `read` take
    /// the lock once, make one allocation, and wake each writer once,
    /// instead of once per line.
    pub fn say(&self, id: ClientId, texts: &[String]) {
        if texts.is_empty() {
            return;
        }
        let (peer, line, behind) = {
            let mut registry = self.lock();
            let Some(member) = registry.members.get(&id) else {
                return; // hung up on a moment ago; its last lines go nowhere
            };
            let (peer, line) = (member.peer, Line::from(chat_lines(&member.name, texts)));
            let behind = registry.deliver(&line, Some(id));
            (peer, line, behind)
        };
        if self.log_messages {
            line.lines().for_each(|said| log!("{peer}: {said}"));
        }
        self.drop_behind(behind);
    }

    /// `/nick NAME`: renames and tells everyone (the renamed client too, as
    /// confirmation), or tells only this client why not.
    pub fn rename(&self, id: ClientId, new: &str) {
        let (peer, result, behind) = {
            let mut registry = self.lock();
            let Some(peer) = registry.members.get(&id).map(|member| member.peer) else {
                return; // hung up on a moment ago
            };
            let result = check_name(new)
                .and_then(|()| registry.check_free(id, new))
                .map(|()| registry.rename(id, new));
            let behind = match &result {
                Ok(old) => {
                    let renamed = notice(format_args!("{old} is now known as {new}"));
                    registry.deliver(&Line::from(renamed), None)
                }
                Err(err) => registry.tell(id, notice(format_args!("cannot rename: {err}")).into()),
            };
            (peer, result, behind)
        };
        match result {
            Ok(old) => log!("{peer}: {old} is now known as {new}"),
            Err(err) => log!("{peer}: /nick {new:?} refused: {err}"),
        }
        self.drop_behind(behind);
    }

    /// `/who`: the names present, in the order they joined, to this client.
    pub fn who(&self, id: ClientId) {
        let behind = {
            let mut registry = self.lock();
            let names: Vec<&str> = registry.members.values().map(|m| m.name.as_str()).collect();
            let list = notice(format_args!("here ({}): {}", names.len(), names.join(", ")));
            registry.tell(id, list.into())
        };
        self.drop_behind(behind);
    }

    /// A notice to one client only (errors, help).
    pub fn tell(&self, id: ClientId, text: &str) {
        let behind = self.lock().tell(id, notice(text).into());
        self.drop_behind(behind);
    }

    /// Removes a client, if it is still here, and tells the others why.
    /// Both of a client's threads may call this; only the first one counts,
    /// and only it gets `true`.
    pub fn leave(&self, id: ClientId, why: Leaving) -> bool {
        let gone = self.lock().members.remove(&id);
        let Some(member) = gone else {
            return false;
        };
        let behind = self.announce_departure(member, why);
        self.drop_behind(behind);
        true
    }

    /// The members a delivery found too far behind are already out of the
    /// registry: hang up on each and tell the room. That notice is itself a
    /// delivery, which may find more clients behind, hence the loop.
    fn drop_behind(&self, mut behind: Vec<Member>) {
        while let Some(member) = behind.pop() {
            member.hang_up();
            behind.extend(self.announce_departure(member, Leaving::NotReading));
        }
    }

    /// Logs a departure and tells the room; returns the members that this
    /// notice found too far behind (for [`Room::drop_behind`]).
    #[must_use]
    fn announce_departure(&self, member: Member, why: Leaving) -> Vec<Member> {
        log!("{}: {} {}", member.peer, member.name, why.words());
        let always = matches!(why, Leaving::NotReading | Leaving::LineTooLong);
        if !(self.join_notices || always) {
            return Vec::new();
        }
        let line = Line::from(notice(format_args!("{} {}", member.name, why.words())));
        self.lock().deliver(&line, None)
    }
}

/// `NAME: TEXT\n` for each text, in one buffer of the right size.
fn chat_lines(name: &str, texts: &[String]) -> String {
    let len = texts.iter().map(|text| name.len() + text.len() + 3).sum();
    let mut lines = String::with_capacity(len);
    for text in texts {
        push_chat_line(&mut lines, name, text);
    }
    lines
}

fn welcome(name: &str, others: usize) -> Line {
    notice(format_args!(
        "welcome, {name}: {others} other(s) here. /nick NAME renames, /who lists, /quit leaves"
    ))
    .into()
}
