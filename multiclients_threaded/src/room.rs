//! The registry every client thread shares: who is here, under which name,
//! and the outbox that leads to each one's writer thread.
//!
//! The registry sits behind one [`Mutex`], and the rule of this file is that
//! nothing done while holding it can block on the network. Delivering a line
//! is [`Outbox::put`], which returns at once; the `write` to the socket
//! happens later, on the receiver's own writer thread, with no lock held.
//! Were we to write while holding the lock, one client that stops reading
//! would fill its socket buffers, our `write` would block, and every other
//! thread would wait for the lock: the whole room would freeze behind one
//! stuck peer.
//!
//! A delivery that leaves some outbox over its high-water mark returns a
//! [`Pressure`]: the sender's thread waits on it *after* the lock is
//! released (see `outbox.rs`), and stops reading its own socket meanwhile.
//! Only the threads that read a client's input wait; writer threads and
//! departures never do, so no thread can end up waiting for itself.
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use plumbing::log;
use plumbing::trace::preview;

use crate::outbox::{Behind, Budget, Outbox};
use crate::protocol::{NameError, check_name, default_name, name_key, notice, push_chat_line};

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
    /// The putting end of this client's outbox.
    outbox: Outbox,
}

impl Member {
    pub fn new(peer: SocketAddr, outbox: Outbox) -> Self {
        Member {
            name: String::new(),
            peer,
            outbox,
        }
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
    /// It read nothing for the stall timeout while lines waited for it.
    NotReading,
    /// It never finished a first line within the first-line timeout.
    Silent,
}

impl Leaving {
    pub fn words(self) -> &'static str {
        match self {
            Leaving::Left => "left",
            Leaving::Lost => "left (connection lost)",
            Leaving::LineTooLong => "was disconnected (line too long)",
            Leaving::NotReading => "was disconnected (stopped reading)",
            Leaving::Silent => "was disconnected (sent no line after joining)",
        }
    }
}

/// The room is full: `--max-clients` are connected already.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RoomFull(pub usize);

/// The outboxes that one delivery left over their high-water mark, for the
/// sender to wait on once it holds no lock (see [`Pressure::wait`]).
#[must_use = "a sender must wait for the recipients it put behind"]
pub struct Pressure {
    behind: Vec<Behind>,
    budget: Arc<Budget>,
}

impl Pressure {
    /// Waits until every recipient this delivery put over its mark is under
    /// it again (or gone), and the server as a whole is under its budget.
    /// Meanwhile this thread reads nothing from its client: TCP slows it down.
    pub fn wait(self) {
        for recipient in &self.behind {
            recipient.wait();
        }
        self.budget.wait_until_under();
    }

    /// Where waiting is not allowed (departures, writer threads): the lines
    /// are queued all the same, only the sender does not wait.
    pub fn ignore(self) {}
}

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
    /// Returns the outboxes now over their mark, except `waiter`'s own
    /// (a thread never waits for its own client).
    fn deliver(&self, line: &Line, skip: Option<ClientId>, waiter: ClientId) -> Vec<Behind> {
        self.members
            .iter()
            .filter(|(id, _)| Some(**id) != skip)
            // put() never blocks and never refuses a line.
            .filter_map(|(id, member)| Some((*id, member.outbox.put(line)?)))
            .filter(|(id, _)| *id != waiter)
            .map(|(_, behind)| behind)
            .collect()
    }

    /// Queues `line` for one member only. Its own thread asks (a reply, an
    /// error): nobody waits for it.
    fn tell(&self, id: ClientId, line: Line) {
        if let Some(member) = self.members.get(&id) {
            let _ = member.outbox.put(&line);
        }
    }

    /// Names stay unique, whatever their case: `new` may not belong to
    /// anyone but `id`.
    fn check_free(&self, id: ClientId, new: &str) -> Result<(), NameError> {
        let key = name_key(new);
        match self
            .members
            .iter()
            .any(|(other, m)| *other != id && name_key(&m.name) == key)
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
        let key = name_key(name);
        self.members
            .values()
            .any(|member| name_key(&member.name) == key)
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
    budget: Arc<Budget>,
    max_clients: usize,
    join_notices: bool,
    log_messages: bool,
}

/// The longest chat line (in bytes) a log line shows before cutting it.
const LOGGED_TEXT_BYTES: usize = 200;

impl Room {
    pub fn new(
        max_clients: usize,
        join_notices: bool,
        log_messages: bool,
        budget: Arc<Budget>,
    ) -> Self {
        Room {
            registry: Mutex::default(),
            budget,
            max_clients,
            join_notices,
            log_messages,
        }
    }

    /// The server's memory budget, for the outboxes of new members.
    pub fn budget(&self) -> &Arc<Budget> {
        &self.budget
    }

    /// Takes the lock. No code panics while holding it, so a poisoned lock
    /// (a thread panicked inside) still guards a consistent registry, and we
    /// go on with it rather than take the server down.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    fn pressure(&self, behind: Vec<Behind>) -> Pressure {
        Pressure {
            behind,
            budget: Arc::clone(&self.budget),
        }
    }

    /// Adds a client under a fresh default name, welcomes it and tells the
    /// others. Returns its name and the pressure of the join notice, or
    /// [`RoomFull`], after queuing a notice that says so.
    pub fn join(&self, id: ClientId, mut member: Member) -> Result<(String, Pressure), RoomFull> {
        let peer = member.peer;
        let (name, behind) = {
            let mut registry = self.lock();
            if registry.members.len() >= self.max_clients {
                // The refusal goes out through the client's own writer,
                // which ends when the member (and its outbox) is dropped.
                let max = self.max_clients;
                let full = format!(
                    "sorry, the room is full ({max} of {max} places taken); try again later"
                );
                let _ = member.outbox.put(&Line::from(notice(full)));
                return Err(RoomFull(max));
            }
            member.name = registry.free_default_name();
            let name = member.name.clone();
            let others = registry.members.len();
            registry.members.insert(id, member);
            registry.tell(id, welcome(&name, others));
            let mut behind = Vec::new();
            if self.join_notices {
                let joined = Line::from(notice(format_args!("{name} joined")));
                behind = registry.deliver(&joined, Some(id), id);
            }
            (name, behind)
        }; // the lock is released here, before any logging or waiting
        log!("{peer}: joined as {name}");
        Ok((name, self.pressure(behind)))
    }

    /// Broadcasts `NAME: TEXT` for each of `texts` to everyone but the
    /// sender, as one delivery: the lines that arrived together take the
    /// lock once, make one allocation, and wake each writer once, instead of
    /// once per line.
    pub fn say(&self, id: ClientId, texts: &[String]) -> Pressure {
        if texts.is_empty() {
            return self.pressure(Vec::new());
        }
        let (peer, name, behind) = {
            let registry = self.lock();
            let Some(member) = registry.members.get(&id) else {
                // Disconnected a moment ago: its last lines go nowhere.
                return self.pressure(Vec::new());
            };
            let line = Line::from(chat_lines(&member.name, texts));
            let behind = registry.deliver(&line, Some(id), id);
            (member.peer, member.name.clone(), behind)
        };
        if self.log_messages {
            // Logged as received, escaped: a client's bytes never reach the
            // operator's terminal as they are (see `plumbing::trace::preview`).
            for text in texts {
                log!(
                    "{peer}: {name}: {}",
                    preview(text.as_bytes(), LOGGED_TEXT_BYTES)
                );
            }
        }
        self.pressure(behind)
    }

    /// `/nick NAME`: renames and tells everyone (the renamed client too, as
    /// confirmation), or tells only this client why not.
    pub fn rename(&self, id: ClientId, new: &str) -> Pressure {
        let (peer, result, behind) = {
            let mut registry = self.lock();
            let Some(peer) = registry.members.get(&id).map(|member| member.peer) else {
                return self.pressure(Vec::new()); // disconnected a moment ago
            };
            let result = check_name(new)
                .and_then(|()| registry.check_free(id, new))
                .map(|()| registry.rename(id, new));
            let behind = match &result {
                Ok(old) => {
                    let renamed = notice(format_args!("{old} is now known as {new}"));
                    registry.deliver(&Line::from(renamed), None, id)
                }
                Err(err) => {
                    registry.tell(id, notice(format_args!("cannot rename: {err}")).into());
                    Vec::new()
                }
            };
            (peer, result, behind)
        };
        match result {
            Ok(old) => log!("{peer}: {old} is now known as {new}"),
            Err(err) => log!(
                "{peer}: /nick {} refused: {err}",
                preview(new.as_bytes(), 60)
            ),
        }
        self.pressure(behind)
    }

    /// `/who`: the names present, in the order they joined, to this client.
    pub fn who(&self, id: ClientId) {
        let registry = self.lock();
        let names: Vec<&str> = registry.members.values().map(|m| m.name.as_str()).collect();
        let list = notice(format_args!("here ({}): {}", names.len(), names.join(", ")));
        registry.tell(id, list.into());
    }

    /// A notice to one client only (errors, help).
    pub fn tell(&self, id: ClientId, text: &str) {
        self.lock().tell(id, notice(text).into());
    }

    /// Removes a client, if it is still here, and tells the others why.
    /// Both of a client's threads may call this; only the first one counts,
    /// and only it gets `true`. Never waits: the writer thread calls it too.
    pub fn leave(&self, id: ClientId, why: Leaving) -> bool {
        let gone = self.lock().members.remove(&id);
        // Dropping the member drops its `Outbox`: its writer sends what is
        // queued, then finishes.
        let Some(member) = gone else {
            return false;
        };
        log!("{}: {} {}", member.peer, member.name, why.words());
        let always = matches!(why, Leaving::NotReading | Leaving::LineTooLong);
        if self.join_notices || always {
            let line = Line::from(notice(format_args!("{} {}", member.name, why.words())));
            let behind = self.lock().deliver(&line, None, id);
            self.pressure(behind).ignore();
        }
        true
    }
}

/// `NAME: TEXT\n` for each text, in one buffer of about the right size.
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
