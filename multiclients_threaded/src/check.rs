//! `multiclients_threaded check`: black-box checks of any chat server that
//! speaks the chat protocol of the contract (this lesson's, the `sandbox`'s,
//! a student's own in Python).
//!
//! Each check opens its own connections, gives them fresh names with
//! `/nick`, and closes them at the end. What the checks rely on:
//! - a line reaches every *other* client as `NAME: TEXT`;
//! - every notice starts with `* `; its wording is the server's business, but
//!   a notice about a client names it (a rename notice names the new name,
//!   and the renamed client receives it too, as confirmation);
//! - a line without its `\n` is not a line (a partial line from a vanished
//!   client may be delivered or dropped: both pass).
//!
//! - flow control: a client that reads nothing does not stop the others for
//!   longer than the stall allowance (`--stall-timeout`, 10 s), and is then
//!   disconnected; a client that reads gets every line.
//!
//! Every wait is bounded by the timeout, and every read is bounded in memory,
//! so a silent, stuck or flooding server fails a check instead of hanging it.
//! On a slow link, the waits grow: [`Target::measure`] times a few TCP
//! handshakes (one round trip each) and allows at least
//! [`ROUND_TRIPS_PER_REPLY`] round trips per reply; a wait that runs out on
//! such a link says the link may be the cause. A failure shows what did
//! arrive, bytes without a newline included (escaped, cut at 100 bytes).

use std::io::{self, Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use plumbing::checklist::{Checklist, Failure, Report, is_timeout};
use plumbing::trace::preview;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use crate::protocol::LineBuffer;

/// The longest line the checks accept from a server: room for a relayed
/// oversized line to be recognised, and a bound on our memory.
const MAX_REPLY_BYTES: usize = 128 * 1024;

/// How many lines the flooding client sends in the slow-reader check, and
/// how long each is. 8 MiB in all: more than the kernel buffers of any
/// connection can hide, so a server that waits for the stuck client is seen
/// to wait.
pub const FLOOD_LINES: usize = 8 * 1024;
pub const FLOOD_LINE_BYTES: usize = 1024;

/// The size of an oversized line: far past any sensible line limit.
pub const OVERSIZED_LINE_BYTES: usize = 64 * 1024;

/// Names of the checks that later code (tests, the sandbox) refers to.
pub const BROADCAST: &str = "a line reaches every other client as NAME: TEXT, and not the sender";
pub const NICK: &str = "/nick renames, and the renamed client gets a `* ` notice naming it";
pub const STALL: &str = "a client that stops reading does not stall the others";
pub const SLOW_DROPPED: &str = "a client that stops reading is disconnected (its queue is bounded)";
pub const CONTROL: &str =
    "control characters (ESC, CR, NUL) and bidi overrides are not relayed raw";

/// How long the slow-reader checks allow a server to wait for a client that
/// stopped reading before it lets the client go (`check --stall-timeout`).
/// The contract leaves the stall timeout to the server, "a few seconds";
/// this lesson's default is 5 s, the C reference's 10 s.
pub const DEFAULT_STALL_ALLOWANCE: Duration = Duration::from_secs(10);

/// How many round trips a single reply may take before a check gives up,
/// whatever `--timeout` says: on a slow link the checks wait longer.
pub const ROUND_TRIPS_PER_REPLY: u32 = 20;

/// What the checks are run against, and how patiently.
#[derive(Debug, Clone, Copy)]
pub struct Target {
    pub addr: SocketAddr,
    /// The wait for any one reply: `--timeout`, or [`ROUND_TRIPS_PER_REPLY`]
    /// round trips if the link is slower than that.
    pub timeout: Duration,
    /// How long a server may wait for a client that reads nothing.
    pub stall_allowance: Duration,
    /// The round-trip time measured when connecting (the slowest of a few
    /// TCP handshakes), to tell a slow link from a slow server.
    pub round_trip: Duration,
}

impl Target {
    /// Measures the round trip to `addr` (the time `connect` takes is one
    /// round trip: SYN out, SYN-ACK back) and scales `timeout` to it.
    pub fn measure(addr: SocketAddr, timeout: Duration, stall_allowance: Duration) -> Target {
        let round_trip = (0..3)
            .filter_map(|_| {
                let started = Instant::now();
                let stream = basic::net::connect_within(addr, timeout).ok()?;
                let took = started.elapsed();
                // Close before sending anything: no server sees a client here.
                drop(stream);
                Some(took)
            })
            .min()
            .unwrap_or_default();
        Target {
            addr,
            timeout: patient_timeout(timeout, round_trip),
            stall_allowance,
            round_trip,
        }
    }

    /// Failure text for a wait that ran out: names the link when it is slow.
    fn slow_link_hint(&self) -> String {
        let ms = self.round_trip.as_secs_f64() * 1000.0;
        match self.round_trip * 50 > self.timeout {
            true => format!(
                " (the round trip to the server takes {ms:.0} ms: the link may be what is slow, not the server; try a larger --timeout)"
            ),
            false => String::new(),
        }
    }
}

/// The wait for one reply: `timeout`, or more on a link whose round trip
/// makes that too short.
fn patient_timeout(timeout: Duration, round_trip: Duration) -> Duration {
    timeout.max(round_trip * ROUND_TRIPS_PER_REPLY)
}

/// Runs every chat check against the server at `addr` and prints the
/// closing `N passed, M failed` line.
pub fn run(addr: SocketAddr, timeout: Duration, out: &mut dyn Write) -> Report {
    run_with(addr, timeout, DEFAULT_STALL_ALLOWANCE, out)
}

/// [`run`], with the time a server may take to let a stuck client go.
pub fn run_with(
    addr: SocketAddr,
    timeout: Duration,
    stall_allowance: Duration,
    out: &mut dyn Write,
) -> Report {
    let mut list = Checklist::new(out);
    run_chat_checks_with(&mut list, addr, timeout, stall_allowance);
    list.finish()
}

/// One chat check: what it does against the server at an address.
type ChatCheck = (&'static str, fn(&Target) -> Result<(), Failure>);

/// The checks that run one after another once a client could connect and
/// rename; the slow-reader checks follow them.
const CHAT_CHECKS: &[ChatCheck] = &[
    (BROADCAST, broadcast),
    (
        "each sender's lines arrive once and in order",
        order_per_sender,
    ),
    (
        "join, rename and leave notices reach the others and start with `* `",
        notices,
    ),
    (
        "/nick to a taken or an empty name is refused with a `* ` notice",
        nick_refused,
    ),
    ("/who lists the names present", who),
    (
        "/quit closes the connection and the others see a `* ` notice",
        quit,
    ),
    ("default names are unique", default_names),
    (
        "a client that vanishes (reset) is removed and its name is free again",
        vanished,
    ),
    (
        "an oversized line (64 KiB) gets a `* ` notice and a close; the others chat on",
        oversized,
    ),
    (CONTROL, control_characters),
];

/// Adds every chat check to `list`, so that a caller can add its own checks
/// before [`Checklist::finish`].
pub fn run_chat_checks(list: &mut Checklist, addr: SocketAddr, timeout: Duration) {
    run_chat_checks_with(list, addr, timeout, DEFAULT_STALL_ALLOWANCE);
}

/// [`run_chat_checks`], with the time a server may take to let a stuck
/// client go.
pub fn run_chat_checks_with(
    list: &mut Checklist,
    addr: SocketAddr,
    timeout: Duration,
    stall_allowance: Duration,
) {
    let connected = list.check(&format!("connect to {addr}"), || {
        let stream = basic::net::connect_within(addr, timeout)
            .map_err(|err| Failure::because(format!("cannot connect to {addr}: {err}")))?;
        drop(stream);
        Ok(())
    });
    let t = &Target::measure(addr, timeout, stall_allowance);
    let ready = match connected {
        true => list.check(NICK, || Chatter::named(t, "nick").map(drop)),
        false => not_run(list, NICK),
    };
    for (name, check) in CHAT_CHECKS {
        match ready {
            true => list.check(name, || check(t)),
            false => not_run(list, name),
        };
    }
    match ready {
        true => slow_reader(list, t),
        false => {
            not_run(list, STALL);
            not_run(list, SLOW_DROPPED);
        }
    }
}

fn not_run(list: &mut Checklist, name: &str) -> bool {
    list.not_run(
        name,
        "every check needs a client that can connect and /nick",
    );
    false
}

/// A fresh name for each client of a run: checks never reuse a name, even
/// if the server has not yet noticed that an earlier client left. The
/// process id keeps two runs against one server apart.
fn fresh_name(role: &str) -> String {
    static NEXT: AtomicU32 = AtomicU32::new(1);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    format!("{role}{n}p{}", std::process::id() % 100_000)
}

/// Whether `line` mentions `name` as a whole word.
fn names(line: &str, name: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || ",.;:!?()[]{}\"'`".contains(c))
        .any(|word| word == name)
}

/// A notice is any line starting with `* `.
fn is_notice(line: &str) -> bool {
    line.starts_with("* ")
}

/// One client connection of the checks, reading whole lines under a
/// deadline.
struct Chatter {
    stream: TcpStream,
    lines: LineBuffer,
    name: String,
    timeout: Duration,
    /// The last few lines received, for failure messages.
    seen: Vec<String>,
    /// Said when a wait runs out on a slow link.
    slow_link_hint: String,
}

impl Chatter {
    fn connect(t: &Target) -> Result<Chatter, Failure> {
        let addr = t.addr;
        let stream = basic::net::connect_within(addr, t.timeout)
            .map_err(|err| Failure::because(format!("cannot connect to {addr}: {err}")))?;
        Ok(Chatter::from_stream(stream, t))
    }

    fn from_stream(stream: TcpStream, t: &Target) -> Chatter {
        let _ = stream.set_nodelay(true);
        Chatter {
            stream,
            lines: LineBuffer::new(MAX_REPLY_BYTES),
            name: String::new(),
            timeout: t.timeout,
            seen: Vec::new(),
            slow_link_hint: t.slow_link_hint(),
        }
    }

    /// Connects and renames to a fresh name, waiting for the confirmation.
    fn named(t: &Target, role: &str) -> Result<Chatter, Failure> {
        let mut chatter = Chatter::connect(t)?;
        chatter.rename(&fresh_name(role))?;
        Ok(chatter)
    }

    /// `/nick NAME`, then wait for the `* ` notice that names NAME.
    fn rename(&mut self, name: &str) -> Result<(), Failure> {
        let sent = format!("/nick {name}");
        self.send(&sent)?;
        self.notice_naming(name, &sent)?;
        self.name = name.to_string();
        Ok(())
    }

    fn send(&self, line: &str) -> Result<(), Failure> {
        self.send_bytes(format!("{line}\n").as_bytes())
    }

    fn send_bytes(&self, bytes: &[u8]) -> Result<(), Failure> {
        (&self.stream)
            .write_all(bytes)
            .map_err(|err| Failure::because(format!("sending {} failed: {err}", show(bytes))))
    }

    /// The next line (without `\n`), waiting at most the timeout.
    fn next_line(&mut self, after: &str) -> Result<String, Failure> {
        let deadline = Instant::now() + self.timeout;
        loop {
            match self.lines.next_line() {
                Some(Ok(raw)) => return Ok(self.remember(&raw)),
                Some(Err(_)) => {
                    return Err(self.failure(after, "lines", "a line over 128 KiB"));
                }
                None => self.read_more(deadline, after)?,
            }
        }
    }

    fn remember(&mut self, raw: &[u8]) -> String {
        let line = crate::protocol::decode_line(raw).into_owned();
        if self.seen.len() == 4 {
            self.seen.remove(0);
        }
        self.seen.push(preview(line.as_bytes(), 100));
        line
    }

    /// One `read`, waiting at most until `deadline`.
    fn read_more(&mut self, deadline: Instant, after: &str) -> Result<(), Failure> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            let waited = format!("nothing more for {}s", self.timeout.as_secs_f32());
            return Err(self.failure(after, "another line", &waited));
        }
        let _ = self.stream.set_read_timeout(Some(left));
        let mut buf = [0u8; 8192];
        match (&self.stream).read(&mut buf) {
            Ok(0) => Err(self.failure(after, "another line", "the server closed the connection")),
            Ok(n) => {
                self.lines.extend(&buf[..n]);
                Ok(())
            }
            Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => Ok(()),
            Err(err) => Err(self.failure(after, "another line", &format!("{err}"))),
        }
    }

    /// The next line that is not a notice.
    fn next_chat(&mut self, after: &str) -> Result<String, Failure> {
        loop {
            let line = self.next_line(after)?;
            if !is_notice(&line) {
                return Ok(line);
            }
        }
    }

    /// Expects the next chat line to be exactly `expected`.
    fn expect_chat(&mut self, expected: &str, after: &str) -> Result<(), Failure> {
        let line = self.next_chat(after)?;
        match line == expected {
            true => Ok(()),
            false => Err(Failure::new(
                format!("{after} (seen by {})", self.name),
                preview(expected.as_bytes(), 100),
                preview(line.as_bytes(), 100),
            )),
        }
    }

    /// Reads until a notice naming `name` arrives; returns it.
    fn notice_naming(&mut self, name: &str, after: &str) -> Result<String, Failure> {
        loop {
            let line = self.next_line(after)?;
            if is_notice(&line) && names(&line, name) {
                return Ok(line);
            }
        }
    }

    /// Reads (and drops) what still arrives until the server closes.
    fn expect_close(&mut self, after: &str) -> Result<(), Failure> {
        loop {
            match self.next_line(after) {
                Ok(_) => continue,
                Err(failure) if closed(&failure) => return Ok(()),
                Err(failure) => return Err(failure),
            }
        }
    }

    fn failure(&self, after: &str, expected: &str, what: &str) -> Failure {
        let seen = match self.seen.is_empty() {
            true => "no lines".to_string(),
            false => format!("last lines {}", self.seen.join(", ")),
        };
        // Bytes without a newline are not a line, but a student whose
        // server forgot the `\n` needs to see that they did arrive.
        let unfinished = self.lines.unfinished();
        let partial = match unfinished.is_empty() {
            true => String::new(),
            false => format!(
                ", then {} bytes without a newline: {}",
                unfinished.len(),
                preview(unfinished, 100)
            ),
        };
        let who = if self.name.is_empty() {
            "client"
        } else {
            &self.name
        };
        let hint = match what.starts_with("nothing more for") {
            true => self.slow_link_hint.as_str(),
            false => "",
        };
        Failure::new(
            format!("{after} (seen by {who})"),
            expected,
            format!("{seen}{partial}, then {what}{hint}"),
        )
    }
}

/// Whether a failure says that the server closed the connection (or reset it).
fn closed(failure: &Failure) -> bool {
    failure.details.iter().any(|(_, text)| {
        text.ends_with("the server closed the connection") || text.contains("reset")
    })
}

fn show(bytes: &[u8]) -> String {
    plumbing::checklist::show(bytes)
}

/// Three named clients; a line from one reaches the other two, and the
/// sender's next line is someone else's, not its own echo.
fn broadcast(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let mut b = Chatter::named(t, "bob")?;
    let mut c = Chatter::named(t, "cat")?;
    a.send("hello from ann")?;
    let expected = format!("{}: hello from ann", a.name);
    b.expect_chat(&expected, "\"hello from ann\" from ann")?;
    c.expect_chat(&expected, "\"hello from ann\" from ann")?;
    // b answers only after it got ann's line, so any echo to ann was queued
    // before this answer: ann's next chat line shows whether it got one.
    b.send("hi from bob")?;
    let expected = format!("{}: hi from bob", b.name);
    a.expect_chat(
        &expected,
        "\"hello from ann\" from ann, then \"hi from bob\" from bob",
    )?;
    c.expect_chat(&expected, "\"hi from bob\" from bob")
}

const ORDER_LINES: usize = 100;

/// Two senders each send 100 numbered lines in one write; a third client
/// must see each sender's lines once, in order.
fn order_per_sender(t: &Target) -> Result<(), Failure> {
    let a = Chatter::named(t, "ann")?;
    let b = Chatter::named(t, "bob")?;
    let mut c = Chatter::named(t, "cat")?;
    for sender in [&a, &b] {
        let batch: String = (0..ORDER_LINES).map(|i| format!("line {i}\n")).collect();
        sender.send_bytes(batch.as_bytes())?;
    }
    let mut next = [0usize; 2];
    let sent = format!("{ORDER_LINES} lines \"line 0\" .. \"line 99\" from ann and from bob");
    for _ in 0..2 * ORDER_LINES {
        let line = c.next_chat(&sent)?;
        let from = [&a.name, &b.name]
            .iter()
            .position(|name| line.starts_with(&format!("{name}: ")));
        let Some(from) = from else {
            return Err(Failure::new(
                &sent,
                "lines from ann and bob only",
                preview(line.as_bytes(), 100),
            ));
        };
        let expected = format!("{}: line {}", [&a.name, &b.name][from], next[from]);
        if line != expected {
            return Err(Failure::new(&sent, expected, line));
        }
        next[from] += 1;
    }
    Ok(())
}

/// A newcomer's join notice (naming its default name) reaches others before
/// its first line; then its rename and its leave do too.
fn notices(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let b = Chatter::connect(t)?;
    b.send("first words")?;
    let sent = "a new client connects and says \"first words\"";
    let mut notices_seen = Vec::new();
    let line = loop {
        let line = a.next_line(sent)?;
        match is_notice(&line) {
            true => notices_seen.push(line),
            false => break line,
        }
    };
    let Some(default) = line.strip_suffix(": first words") else {
        return Err(Failure::new(
            sent,
            "a join notice, then NAME: first words",
            line,
        ));
    };
    if !notices_seen.iter().any(|notice| names(notice, default)) {
        return Err(Failure::new(
            sent,
            format!("a `* ` notice naming {default} before its line"),
            format!("{notices_seen:?}"),
        ));
    }
    let mut b = b;
    b.rename(&fresh_name("bob"))?;
    a.notice_naming(&b.name, "the new client renames")?;
    drop(b.stream); // close(): the server reads end of stream
    a.notice_naming(&b.name, "the renamed client closes its connection")
        .map(drop)
}

/// Taken and empty names get a notice to the asker, and its name stays.
fn nick_refused(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let mut b = Chatter::named(t, "bob")?;
    for attempt in [format!("/nick {}", a.name), "/nick".to_string()] {
        b.send(&attempt)?;
        let reply = b.next_line(&attempt)?;
        if !is_notice(&reply) {
            return Err(Failure::new(
                attempt,
                "a `* ` notice refusing the name",
                reply,
            ));
        }
    }
    b.send("still bob")?;
    let expected = format!("{}: still bob", b.name);
    a.expect_chat(
        &expected,
        "/nick to ann's name, /nick, then \"still bob\" from bob",
    )
}

/// `/who` answers with `* ` lines that together name everyone present.
fn who(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let b = Chatter::named(t, "bob")?;
    a.send("/who")?;
    let mut missing = vec![a.name.clone(), b.name.clone()];
    while !missing.is_empty() {
        let line = a.next_line(&format!("/who (expecting {})", missing.join(" and ")))?;
        if is_notice(&line) {
            missing.retain(|name| !names(&line, name));
        }
    }
    Ok(())
}

/// `/quit`: the server closes that connection and tells the others.
fn quit(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let mut b = Chatter::named(t, "bob")?;
    b.send("/quit")?;
    b.expect_close("/quit")?;
    a.notice_naming(&b.name, "/quit from bob").map(drop)
}

/// Two clients that do not rename get different names.
fn default_names(t: &Target) -> Result<(), Failure> {
    let mut observer = Chatter::named(t, "obs")?;
    let first = Chatter::connect(t)?;
    let second = Chatter::connect(t)?;
    first.send("hi")?;
    second.send("hi")?;
    let sent = "\"hi\" from two clients that kept their default names";
    let one = observer.next_chat(sent)?;
    let two = observer.next_chat(sent)?;
    match (one.strip_suffix(": hi"), two.strip_suffix(": hi")) {
        (Some(x), Some(y)) if x != y && !x.is_empty() => Ok(()),
        _ => Err(Failure::new(
            sent,
            "two lines NAME: hi with different names",
            format!("{one:?} and {two:?}"),
        )),
    }
}

/// A client resets mid-line: the room is told, and its name can be taken.
fn vanished(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let b = Chatter::named(t, "bob")?;
    let name = b.name.clone();
    b.send_bytes(b"half a li")?;
    basic::net::close_with_reset(b.stream)
        .map_err(|err| Failure::because(format!("cannot reset the connection: {err}")))?;
    a.notice_naming(&name, "bob sends half a line and resets the connection")?;
    let mut c = Chatter::connect(t)?;
    c.rename(&name)?;
    c.send("back again")?;
    let expected = format!("{name}: back again");
    let sent = "a new client takes the vanished client's name and says \"back again\"";
    let mut line = a.next_chat(sent)?;
    if line == format!("{name}: half a li") {
        line = a.next_chat(sent)?; // the partial line was delivered: allowed
    }
    match line == expected {
        true => Ok(()),
        false => Err(Failure::new(sent, expected, line)),
    }
}

/// A line that would clear the others' screens, return their cursor to the
/// line start to forge `bob: ...`, and turn text around (U+202E): the
/// others must get it with all of these removed or escaped (how is the
/// server's choice).
fn control_characters(t: &Target) -> Result<(), Failure> {
    let a = Chatter::named(t, "ann")?;
    let mut b = Chatter::named(t, "bob")?;
    let hostile = "esc \x1b[2J cr \rbob: forged nul \0 bidi \u{202e}gnp.exe end";
    a.send(hostile)?;
    let sent = format!("{} from ann", preview(hostile.as_bytes(), 100));
    let line = b.next_chat(&sent)?;
    let raw = ['\x1b', '\r', '\0', '\u{202e}'];
    let relayed = line.starts_with(&format!("{}: esc ", a.name)) && line.ends_with(" end");
    if relayed && !line.contains(raw) {
        return Ok(());
    }
    Err(Failure::new(
        sent,
        format!("{}: esc ... end, without ESC, CR, NUL or U+202E", a.name),
        preview(line.as_bytes(), 100),
    ))
}

/// A 64 KiB line: its sender gets a notice and is closed; the others never
/// see it and go on chatting.
fn oversized(t: &Target) -> Result<(), Failure> {
    let a = Chatter::named(t, "ann")?;
    let mut b = Chatter::named(t, "bob")?;
    let mut c = Chatter::named(t, "cat")?;
    let mut big = vec![b'x'; OVERSIZED_LINE_BYTES];
    big.push(b'\n');
    // The server may close before reading it all: a failed send is fine.
    let _ = (&b.stream).write_all(&big);
    let sent = "a line of 64 KiB";
    let reply = b.next_line(sent)?;
    if !is_notice(&reply) {
        return Err(Failure::new(
            sent,
            "a `* ` notice",
            preview(reply.as_bytes(), 100),
        ));
    }
    b.expect_close(sent)?;
    a.send("after the big line")?;
    c.expect_chat(
        &format!("{}: after the big line", a.name),
        "bob's 64 KiB line, then \"after the big line\" from ann",
    )
}

/// The slow-reader checks: `stuck` stops reading, `ann` floods 8 MiB, and
/// `bob` must get all of it; then `stuck` must find itself disconnected.
fn slow_reader(list: &mut Checklist, t: &Target) {
    let mut stuck = None;
    list.check(STALL, || {
        let client = stuck_client(t)?;
        let result = flood(t);
        stuck = Some(client);
        result
    });
    match stuck {
        Some(client) => {
            list.check(SLOW_DROPPED, || dropped(client, t));
        }
        None => list.not_run(SLOW_DROPPED, "the client that stops reading could not join"),
    }
}

/// A named client with a tiny receive buffer (so the server's writes to it
/// block sooner), which reads its rename notice and then nothing more.
fn stuck_client(t: &Target) -> Result<Chatter, Failure> {
    let socket = || -> io::Result<TcpStream> {
        let socket = Socket::new(
            Domain::for_address(t.addr),
            Type::STREAM,
            Some(Protocol::TCP),
        )?;
        // SO_RCVBUF must be set before connect(): the window is agreed in
        // the handshake. socket2, because std has no setter for it.
        socket.set_recv_buffer_size(4096)?;
        socket.connect_timeout(&SockAddr::from(t.addr), t.timeout)?;
        Ok(socket.into())
    };
    let stream = socket().map_err(|err| Failure::because(format!("cannot connect: {err}")))?;
    let mut stuck = Chatter::from_stream(stream, t);
    stuck.rename(&fresh_name("stuck"))?;
    Ok(stuck)
}

/// `ann` sends [`FLOOD_LINES`] numbered lines from a second thread while
/// `bob` reads them here: all must arrive, in order.
///
/// A server with flow control makes `ann` wait while the stuck client's
/// queue is full, until it lets that client go: so one gap between lines
/// may last the stall allowance. `ann` keeps at most
/// [`FLOOD_WINDOW_LINES`] ahead of what `bob` has read, so the whole flood
/// takes about `FLOOD_LINES / FLOOD_WINDOW_LINES` round trips: the
/// deadline grows with the measured round trip.
fn flood(t: &Target) -> Result<(), Failure> {
    let mut a = Chatter::named(t, "ann")?;
    let mut b = Chatter::named(t, "bob")?;
    let patience = t.timeout + t.stall_allowance;
    b.timeout = patience;
    a.timeout = patience;
    // SO_SNDTIMEO: a server that stops reading ann cannot hold this check.
    let _ = a.stream.set_write_timeout(Some(patience));
    let padding = "x".repeat(FLOOD_LINE_BYTES - 6);
    let limit = flood_limit(t);
    let deadline = Instant::now() + limit;
    let (progress, read_so_far) = mpsc::channel();
    thread::scope(|scope| {
        scope.spawn(|| send_flood(&a, &padding, read_so_far, patience));
        let sent = format!(
            "{FLOOD_LINES} lines of {FLOOD_LINE_BYTES} bytes from ann, while another client reads nothing"
        );
        for i in 0..FLOOD_LINES {
            let line = b
                .next_chat(&sent)
                .map_err(|_| stalled(&sent, i, limit, t))?;
            if Instant::now() > deadline {
                return Err(stalled(&sent, i, limit, t));
            }
            if line != format!("{}: {i:05} {padding}", a.name) {
                let got = preview(line.as_bytes(), 60);
                return Err(Failure::new(&sent, format!("line {i}"), got));
            }
            if (i + 1) % FLOOD_PROGRESS_EVERY == 0 {
                let _ = progress.send(i + 1);
            }
        }
        Ok(())
        // Leaving the scope drops `progress` and waits for the sender.
    })
}

/// The time the whole flood may take: four timeouts, the stall allowance,
/// and two round trips for every window of lines.
fn flood_limit(t: &Target) -> Duration {
    let windows = (FLOOD_LINES / (FLOOD_WINDOW_LINES - FLOOD_PROGRESS_EVERY)) as u32 + 1;
    t.timeout * 4 + t.stall_allowance + t.round_trip * 2 * windows
}

/// How far the flooding sender may run ahead of the reader, in lines, and
/// how often the reader says how far it got.
pub const FLOOD_WINDOW_LINES: usize = 256;
const FLOOD_PROGRESS_EVERY: usize = 32;

fn send_flood(a: &Chatter, padding: &str, read_so_far: mpsc::Receiver<usize>, patience: Duration) {
    let mut read = 0;
    for i in 0..FLOOD_LINES {
        while i >= read + FLOOD_WINDOW_LINES {
            match read_so_far.recv_timeout(patience) {
                Ok(n) => read = n,
                Err(_) => return, // the reader gave up: so do we
            }
        }
        // A send that fails (the server stalled, our write timed out)
        // shows up as missing lines at the reader's end.
        if a.send(&format!("{i:05} {padding}")).is_err() {
            return;
        }
    }
}

fn stalled(sent: &str, got: usize, limit: Duration, t: &Target) -> Failure {
    Failure::new(
        sent,
        format!(
            "all {FLOOD_LINES} lines within {}s, no gap longer than {}s",
            limit.as_secs_f32(),
            (t.timeout + t.stall_allowance).as_secs_f32()
        ),
        format!(
            "{got} lines, then the server stopped: is it waiting for the client that does not read (for longer than --stall-timeout)?{}",
            t.slow_link_hint()
        ),
    )
}

/// The stuck client reads at last: it must find its connection closed,
/// having been sent less than the whole flood.
fn dropped(mut stuck: Chatter, t: &Target) -> Result<(), Failure> {
    let patience = t.timeout + t.stall_allowance;
    let deadline = Instant::now() + patience;
    let mut received = 0usize;
    let mut buf = [0u8; 64 * 1024];
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Failure::because(format!(
                "the client that stopped reading is still connected after {received} bytes and {}s: its queue at the server grows without bound",
                patience.as_secs_f32()
            )));
        }
        let _ = stuck.stream.set_read_timeout(Some(left));
        match stuck.stream.read(&mut buf) {
            Ok(0) => return Ok(()),
            Ok(n) => received += n,
            Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => continue,
            Err(_) => return Ok(()), // reset: closed too
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn target(timeout_ms: u64, round_trip_ms: u64) -> Target {
        let round_trip = Duration::from_millis(round_trip_ms);
        Target {
            addr: ([127, 0, 0, 1], 5002).into(),
            timeout: patient_timeout(Duration::from_millis(timeout_ms), round_trip),
            stall_allowance: DEFAULT_STALL_ALLOWANCE,
            round_trip,
        }
    }

    #[test]
    fn waits_grow_with_the_round_trip_on_a_slow_link_only() {
        assert_eq!(target(5000, 1).timeout, Duration::from_secs(5));
        assert_eq!(target(2000, 400).timeout, Duration::from_secs(8));
    }

    #[test]
    fn a_wait_that_runs_out_on_a_slow_link_blames_the_link() {
        assert_eq!(target(5000, 1).slow_link_hint(), "");
        let hint = target(5000, 200).slow_link_hint();
        assert!(hint.contains("takes 200 ms"), "{hint}");
        assert!(hint.contains("try a larger --timeout"), "{hint}");
    }

    #[test]
    fn the_flood_deadline_grows_with_the_round_trip() {
        let near = flood_limit(&target(5000, 0));
        let far = flood_limit(&target(5000, 200));
        assert_eq!(near, Duration::from_secs(30));
        assert!(far >= near + Duration::from_secs(14), "{far:?}"); // 37 windows x 2 x 200 ms
    }
}
