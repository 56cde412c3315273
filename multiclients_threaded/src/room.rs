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
//!
//! Who takes the lock: every client thread (to join, say, rename, list,
//! leave) and every writer thread (only to remove its client when the
//! connection failed or stalled). The accept loop never does, so a busy
//! room cannot slow down `accept`. Locks are always taken in one order,
//! the room's first and then an outbox's (inside `put`), never the other
//! way round: two threads cannot each hold the lock the other waits for.
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
///
/// `str`, not `String`: a queued line is never changed, and `Arc<str>` is
/// one allocation holding the counter and the text together. One `Line`
/// may hold several `NAME: TEXT\n` lines (see [`Room::say`]): the writer
/// only ever sends bytes, so it does not care where lines begin.
pub type Line = Arc<str>;

/// Tells clients apart inside the server; names can change, ids do not.
/// The accept loop hands them out, counting up from 1, and never reuses
/// one: a thread that still holds the id of a client who left cannot reach
/// a newcomer by mistake (its calls find no member and do nothing).
pub type ClientId = u64;

/// What the room knows about one connected client.
///
/// A `Member` lives in the registry, so every field is read and changed
/// only with the room's lock held.
pub struct Member {
    /// The name others see in front of this client's lines. Empty until
    /// [`Room::join`] picks a default name under the lock; changed only by
    /// [`Room::rename`], also under the lock, so no two members ever share
    /// a name (compared without case).
    pub name: String,
    /// Where the client connects from (address and port): log lines name the
    /// connection by it, which stays the same across renames.
    pub peer: SocketAddr,
    /// The putting end of this client's outbox. The other end is the
    /// [`Queue`](crate::outbox::Queue) owned by this client's writer thread.
    /// Removing the member from the registry drops this end, which is how
    /// the writer learns that no more lines will come.
    outbox: Outbox,
}

impl Member {
    pub fn new(peer: SocketAddr, outbox: Outbox) -> Self {
        // The name stays empty for the moment: a default name can only be
        // chosen under the room's lock, knowing every name in use (`join`).
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
    /// The end of the notice and of the log line, after the client's name
    /// (`* ann left`). The server's disconnections say so, so that the
    /// others know it was not the client's choice.
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
///
/// A value, not a wait inside the room: the room's methods return with the
/// lock released, and only then may their caller sleep. Waiting with the
/// lock held would stop every other thread, the writers of those very
/// outboxes included when they need the lock to leave.
#[must_use = "a sender must wait for the recipients it put behind"]
pub struct Pressure {
    /// One handle per recipient over its mark (usually none: an empty `Vec`
    /// does not allocate).
    behind: Vec<Behind>,
    /// The server-wide count of queued bytes, checked after the recipients.
    budget: Arc<Budget>,
}

impl Pressure {
    /// Waits until every recipient this delivery put over its mark is under
    /// it again (or gone), and the server as a whole is under its budget.
    /// Meanwhile this thread reads nothing from its client: TCP slows it down.
    pub fn wait(self) {
        // One recipient after the other, not all at once: the sender may go
        // on only when all have drained, so the slowest decides anyway, and
        // each wait ends within about the stall timeout (that recipient's
        // writer drains it or gives up on its client).
        for recipient in &self.behind {
            recipient.wait();
        }
        // Each outbox may be under its own mark while all of them together
        // hold more than the server allows: the budget is the second test.
        self.budget.wait_until_under();
    }

    /// Where waiting is not allowed (departures, writer threads): the lines
    /// are queued all the same, only the sender does not wait.
    pub fn ignore(self) {}
}

/// The clients present, by id. A `BTreeMap` keeps them in the order they
/// joined (ids only grow), which is the order `/who` lists them in.
///
/// Only reachable through [`Room::lock`]: holding a `&Registry` means
/// holding the lock, so its methods need not take it themselves, and the
/// compiler rejects any use of the members after the guard is dropped.
#[derive(Default)]
struct Registry {
    /// Every client in the room, from the end of `join` to `leave`.
    members: BTreeMap<ClientId, Member>,
    /// How many default names were handed out: the next is `guest{n+1}`.
    guests: u64,
}

impl Registry {
    /// Queues `line` for every member except `skip`, without waiting.
    /// Returns the outboxes now over their mark, except `waiter`'s own
    /// (a thread never waits for its own client).
    ///
    /// Fan-out is one `put` per member, each a pointer copy and a short
    /// lock of that outbox (plus a wake-up of its writer, a system call,
    /// when its queue was empty): for a thousand members, a thousand `put`s,
    /// all with the room's lock held. That is the price of one lock for the
    /// whole room, and it stays small because nothing in here touches a
    /// socket: the thousand `write`s happen later, one on each writer thread.
    ///
    /// Why not wait for one's own client: its outbox drains only if the
    /// client reads, and a client that writes a burst before it reads (a
    /// script, `nc` fed a file) is blocked in its own `write` until we read
    /// it again. Waiting for it would stop us reading it: neither side
    /// would move, and the stall timeout would cut off an innocent client.
    fn deliver(&self, line: &Line, skip: Option<ClientId>, waiter: ClientId) -> Vec<Behind> {
        self.members
            .iter()
            // The sender of a chat line does not get its own line back.
            .filter(|(id, _)| Some(**id) != skip)
            // put() never blocks and never refuses a line.
            .filter_map(|(id, member)| Some((*id, member.outbox.put(line)?)))
            // The line is queued for the waiter too (a rename notice); only
            // the wait is left out.
            .filter(|(id, _)| *id != waiter)
            .map(|(_, behind)| behind)
            .collect()
    }

    /// Queues `line` for one member only: a reply to its own command, or an
    /// error. Returns its outbox if that is now over its mark.
    ///
    /// Replies are the one case where a thread waits for its own client
    /// (see [`Room::who`]): the client asked for them, and `/who` turns a
    /// 5-byte command into a line that grows with the room, so a client that
    /// sends commands and never reads the replies would otherwise grow the
    /// server's memory without limit.
    fn tell(&self, id: ClientId, line: Line) -> Option<Behind> {
        // Not here (it left a moment ago): there is nobody to tell.
        self.members.get(&id)?.outbox.put(&line)
    }

    /// Names stay unique, whatever their case: `new` may not belong to
    /// anyone but `id`.
    ///
    /// Without case because people read names, they do not compare bytes:
    /// `Bob` speaking in a room where `bob` is known would pass for him.
    /// `id` itself is skipped, so `bob` may become `Bob`. One key per member
    /// is computed on each call, with the lock held: fine for a thousand
    /// members and a rare `/nick`; a map keyed by [`name_key`] would make it
    /// one lookup, at the price of a second map to keep in step.
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

    /// Whether any member has `name`, whatever its case (see `check_free`).
    fn is_taken(&self, name: &str) -> bool {
        let key = name_key(name);
        self.members
            .values()
            .any(|member| name_key(&member.name) == key)
    }

    /// The next `guestN` that nobody has taken (someone may have picked it
    /// with `/nick`).
    fn free_default_name(&mut self) -> String {
        // Ends: each turn tries a new number, and members hold at most
        // `members.len()` of them. The counter never goes back, so a guest
        // name is not handed out twice even after its owner left: log lines
        // about `guest3` are about one client.
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
///
/// Only `registry` changes, and only under its lock; the other fields are
/// set once in [`Room::new`], so every thread reads them without a lock.
pub struct Room {
    registry: Mutex<Registry>,
    /// Shared with every outbox (each counts its bytes in it) and with
    /// every [`Pressure`] (to wait on it).
    budget: Arc<Budget>,
    /// `--max-clients`, after the server fitted it to the open-files and
    /// memory-mapping limits: `join` refuses the next client.
    max_clients: usize,
    /// Whether others hear of joins and of ordinary leaves; the server's
    /// disconnections are announced whatever this says (see `leave`).
    join_notices: bool,
    /// Whether each chat line goes to the log (benchmarks turn this off).
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
    ///
    /// `lock()` blocks while another thread holds the lock: never for long,
    /// since no holder waits for the network or for another thread.
    fn lock(&self) -> MutexGuard<'_, Registry> {
        self.registry.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Wraps the outboxes a delivery left behind, with the budget to check
    /// after them: what a caller waits on once the lock is released.
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
        // One lock for the count, the name and the insert: two clients
        // joining at once can neither both take the last place nor both
        // get `guest7`.
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
            // The welcome is queued before any line from the others can be
            // (we hold the lock), so it is the first line the client reads.
            // The welcome is the first line of an empty outbox: never over the mark.
            let _ = registry.tell(id, welcome(&name, others));
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
    /// lock once, become one shared [`Line`] (built in a `String`, then
    /// copied once into the `Arc`), and wake each writer once, instead of
    /// once per line.
    ///
    /// The caller (a client thread) hands over at most about 32 KiB of
    /// lines at a time (`DELIVERY_BYTES` in `server.rs`), then waits on the
    /// returned [`Pressure`]: that is how far past its mark one sender can
    /// push a recipient before it has to wait.
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
            // Built with the lock held, and that is on purpose: the name put
            // in front is the one the others know at this moment, and no
            // rename notice can come between. Formatting 32 KiB takes
            // microseconds, not milliseconds, and never waits.
            let line = Line::from(chat_lines(&member.name, texts));
            let behind = registry.deliver(&line, Some(id), id);
            (member.peer, member.name.clone(), behind)
        };
        // The lock is released: the log (which may be slow) and the wait
        // that follows in the caller hold up nobody else.
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
            // Checked and renamed under one lock: two clients asking for
            // `bob` at once cannot both find it free. (Checking, unlocking,
            // then renaming would let both through.)
            let result = check_name(new)
                .and_then(|()| registry.check_free(id, new))
                .map(|()| registry.rename(id, new));
            let behind = match &result {
                Ok(old) => {
                    // Everyone, `id` included: the notice is the client's
                    // confirmation, and it comes in order with the others'
                    // lines (those before it carry the old name).
                    let renamed = notice(format_args!("{old} is now known as {new}"));
                    registry.deliver(&Line::from(renamed), None, id)
                }
                Err(err) => {
                    let refusal = notice(format_args!("cannot rename: {err}"));
                    // The client's own reply: waited for like `/who`'s.
                    registry.tell(id, refusal.into()).into_iter().collect()
                }
            };
            (peer, result, behind)
        };
        // A refused name is shown escaped and cut short in the log: it is
        // whatever the client typed, up to a whole line.
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
    ///
    /// The returned [`Pressure`] holds the client's own outbox when the reply
    /// put it over its mark: its thread waits until the client reads, so a
    /// client that floods `/who` and reads nothing is slowed, not fed.
    pub fn who(&self, id: ClientId) -> Pressure {
        // The names are borrowed from the registry, so the list is built
        // with the lock held; its length grows with the room (a thousand
        // names: about 10 KB in one line).
        let behind = {
            let registry = self.lock();
            let names: Vec<&str> = registry.members.values().map(|m| m.name.as_str()).collect();
            let list = notice(format_args!("here ({}): {}", names.len(), names.join(", ")));
            registry.tell(id, list.into())
        }; // unlocked before anyone waits
        self.pressure(behind.into_iter().collect())
    }

    /// A notice to one client only (errors, help); waited for like
    /// [`Room::who`]'s reply.
    pub fn tell(&self, id: ClientId, text: &str) -> Pressure {
        // The guard is a temporary: the lock is held for this one line.
        let behind = self.lock().tell(id, notice(text).into());
        self.pressure(behind.into_iter().collect())
    }

    /// Removes a client, if it is still here, and tells the others why.
    /// Both of a client's threads may call this; only the first one counts,
    /// and only it gets `true`. Never waits: the writer thread calls it too.
    ///
    /// Why a writer must not wait: it waits, and its own client's outbox
    /// stops draining; two stalled clients' writers, each leaving and each
    /// waiting for the other's outbox, would wait for ever.
    pub fn leave(&self, id: ClientId, why: Leaving) -> bool {
        // The guard is a temporary, so the lock is held for the removal
        // only: the log line below is written without it.
        let gone = self.lock().members.remove(&id);
        // Dropping the member drops its `Outbox`: its writer sends what is
        // queued, then finishes.
        // (That happens when `member` goes out of scope at the end of this
        // function, with no lock held: the writer's wake-up waits for nothing.)
        let Some(member) = gone else {
            return false;
        };
        log!("{}: {} {}", member.peer, member.name, why.words());
        // Disconnections for misbehaviour (reading nothing, a line too long)
        // are announced even without join notices, so that the room learns
        // why that client went; a `Silent` one never said a word, and goes
        // as quietly as it came.
        let always = matches!(why, Leaving::NotReading | Leaving::LineTooLong);
        if self.join_notices || always {
            let line = Line::from(notice(format_args!("{} {}", member.name, why.words())));
            // A second, short lock. `None` skips nobody: the leaver is out
            // of the map already. A newcomer may join in between and hear
            // of the departure too; that is harmless.
            let behind = self.lock().deliver(&line, None, id);
            self.pressure(behind).ignore();
        }
        true
    }
}

/// `NAME: TEXT\n` for each text, in one buffer of about the right size.
///
/// One buffer for all the lines of a delivery: one `Line` then goes to
/// every outbox, instead of one `Line` per line per outbox.
fn chat_lines(name: &str, texts: &[String]) -> String {
    // `+ 3` for ": " and "\n". Escaped control characters make a line
    // longer; the `String` then grows as needed. For plain text the
    // estimate is exact, and the buffer is allocated once.
    let len = texts.iter().map(|text| name.len() + text.len() + 3).sum();
    let mut lines = String::with_capacity(len);
    for text in texts {
        // Cleans the text (control and bidi characters escaped) as it goes:
        // nothing a client sent reaches the others raw.
        push_chat_line(&mut lines, name, text);
    }
    lines
}

/// The first line a client reads: its name, how many others are here, and
/// the commands (a user connecting with `nc` has no other help).
fn welcome(name: &str, others: usize) -> Line {
    notice(format_args!(
        "welcome, {name}: {others} other(s) here. /nick NAME renames, /who lists, /quit leaves"
    ))
    .into()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbox::{Budget, outbox};

    #[test]
    fn replies_to_a_client_that_reads_nothing_make_its_own_thread_wait() {
        // A client that floods `/who` and reads no reply: once its outbox is
        // over the mark, `who` hands back its outbox to wait on (without
        // that, the replies would pile up without limit).
        let room = Room::new(10, false, false, Budget::new(usize::MAX));
        let (mailbox, _queue_nobody_drains) = outbox(1024, room.budget());
        let peer = "127.0.0.1:9".parse().unwrap();
        let (_, joined) = room.join(1, Member::new(peer, mailbox)).unwrap();
        joined.ignore();
        let mut replies_before_waiting = 0;
        while room.who(1).behind.is_empty() {
            replies_before_waiting += 1;
            assert!(replies_before_waiting < 1024, "never asked to wait");
        }
        assert!(replies_before_waiting > 0, "asked to wait before the mark");
        // An unknown command's error is waited for the same way.
        assert!(!room.tell(1, "unknown command").behind.is_empty());
    }
}
