//! `framed_header check`: is the server at this address a correct server
//! of the fixed-header protocol, in any language?
//!
//! Each check opens its own connection, so that one failure cannot throw
//! the next check out of step, and ends it with the goodbye (`--goodbye`:
//! a tutorial server spins on a connection closed without one). The
//! `connect` line's connection is the first check's: a server that takes
//! one client only is not used up by a probe. A failure says what was
//! sent, what a correct server answers, what came (whole, escaped, up to
//! [`SHOWN_BYTES`]), and where it can, what to change (`--raw-replies`,
//! `--header-size`, `--reply`).
//!
//! ## Slow links
//! Every wait is `--timeout` plus four round trips, measured on the way
//! (the connect, the first reply, which may take five times the usual
//! wait), so that a server across a slow network is not failed for the
//! network's delay. When a check still fails by
//! waiting and the round trip is a large part of the timeout, the failure
//! says the link may be the cause, and by how much to raise `--timeout`.

use std::cell::{Cell, RefCell};
use std::io::{self, Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::ops::Deref;
use std::time::{Duration, Instant};

use plumbing::checklist::{
    Checklist, Failure, Report, half_close, is_timeout, show, show_difference,
};
use plumbing::trace::preview;

use crate::frame::Framing;
use crate::{REPLY, TUTORIAL_DISCONNECT};

/// A failure shows up to this many bytes of what arrived.
pub const SHOWN_BYTES: usize = 1024;

/// The server to check, and the protocol settings to expect from it.
#[derive(Debug, Clone)]
pub struct Probe {
    pub addr: SocketAddr,
    /// More addresses the host name resolved to, tried in turn if `addr`
    /// refuses (`localhost` may be `::1` first while the server listens on
    /// `127.0.0.1`).
    pub other_addrs: Vec<SocketAddr>,
    pub timeout: Duration,
    pub framing: Framing,
    pub raw_replies: bool,
    /// The goodbye to send (`--goodbye`).
    pub goodbye: String,
    /// The reply a correct server sends to each message (`--reply`).
    pub reply: String,
}

impl Probe {
    /// The given settings, with our goodbye and reply text.
    pub fn new(addr: SocketAddr, timeout: Duration, framing: Framing, raw_replies: bool) -> Probe {
        Probe {
            addr,
            other_addrs: Vec::new(),
            timeout,
            framing,
            raw_replies,
            goodbye: TUTORIAL_DISCONNECT.to_string(),
            reply: REPLY.to_string(),
        }
    }
}

/// One run of the checks: the settings, plus what the run learns on the
/// way (the first connection, kept for the first check, and the round
/// trip time).
pub struct Checker {
    probe: Probe,
    /// The address that accepted the first connection: every check uses it.
    target: Cell<SocketAddr>,
    spare: RefCell<Option<TcpStream>>,
    round_trip: Cell<Duration>,
    /// The next round trip is the run's first: it may take longer.
    patient: Cell<bool>,
}

impl Deref for Checker {
    type Target = Probe;
    fn deref(&self) -> &Probe {
        &self.probe
    }
}

impl Checker {
    fn new(probe: &Probe) -> Checker {
        Checker {
            probe: probe.clone(),
            target: Cell::new(probe.addr),
            spare: RefCell::new(None),
            round_trip: Cell::new(Duration::ZERO),
            patient: Cell::new(true),
        }
    }

    /// How long any one wait may last: the timeout, plus four round trips.
    pub fn wait(&self) -> Duration {
        self.timeout + 4 * self.round_trip.get()
    }

    /// Notes how long a round trip took (the longest seen counts).
    fn saw_round_trip(&self, took: Duration) {
        self.round_trip.set(self.round_trip.get().max(took));
    }

    /// The first connection: timed (the handshake is one round trip), and
    /// kept for the first check instead of being closed unused.
    /// Each resolved address is tried in turn; a refused one costs the
    /// server nothing.
    fn connect_first(&self) -> Result<(), Failure> {
        let addrs: Vec<SocketAddr> = [self.addr]
            .into_iter()
            .chain(self.other_addrs.iter().copied())
            .collect();
        let started = Instant::now();
        let (stream, addr) = basic::net::connect_first_within(&addrs, self.timeout)
            .map_err(|err| Failure::because(format!("cannot connect to {}: {err}", self.addr)))?;
        self.saw_round_trip(started.elapsed());
        self.target.set(addr);
        *self.spare.borrow_mut() = Some(prepare(stream, self)?);
        Ok(())
    }

    /// A check's name with this run's reply and goodbye in it.
    fn name(&self, template: &str) -> String {
        template
            .replace("{reply}", &self.reply)
            .replace("{goodbye}", &self.goodbye)
    }

    /// Adds to a failure that came from waiting, on a slow link, that the
    /// link may be the cause.
    fn blame_slow_link(&self, failure: Failure) -> Failure {
        let round_trip = self.round_trip.get();
        let waited = failure
            .details
            .iter()
            .any(|(_, text)| text.contains("nothing more for") || text.contains("timed out"));
        if !waited || round_trip < self.timeout / 10 {
            return failure;
        }
        with_hint(
            failure,
            &format!(
                "slow link: one round trip took {}ms, {}% of --timeout; this may be the \
                 network, not the server: try --timeout {}",
                round_trip.as_millis(),
                (100 * round_trip.as_millis()) / self.timeout.as_millis().max(1),
                (self.timeout + 20 * round_trip).as_secs_f32().ceil()
            ),
        )
    }
}

/// One check: its name (`{reply}` and `{goodbye}` stand for this run's
/// texts), and what it does.
pub type FrameCheck = (&'static str, fn(&Checker) -> Result<(), Failure>);

/// Every check, in the order they run.
pub const CHECKS: &[FrameCheck] = &[
    ("round trip: \"hello\" is answered \"{reply}\"", |p| {
        round_trip(p, "hello")
    }),
    ("an empty payload is answered", |p| round_trip(p, "")),
    (
        "a multibyte UTF-8 payload is answered (length in bytes)",
        |p| round_trip(p, "héllo wörld ✓ 🦀"),
    ),
    (
        "a header split into 1-byte writes is answered",
        split_header,
    ),
    (
        "two messages in one write get two replies",
        two_in_one_write,
    ),
    (
        "the maximum payload is answered, and the next message too",
        max_payload,
    ),
    (
        "{goodbye} is answered (or not), then the connection closes",
        disconnect,
    ),
    ("an oversized declared length is refused at once", oversized),
    ("a non-numeric header is refused", non_numeric),
    (
        "a peer closing mid-header gets no reply, and a close",
        mid_header,
    ),
    (
        "a peer closing mid-payload gets no reply, and a close",
        mid_payload,
    ),
    ("afterwards the server still serves a fresh client", |p| {
        round_trip(p, "still there?")
    }),
];

/// Runs every check against the server at `probe.addr`.
pub fn run(probe: &Probe, out: &mut dyn Write) -> Report {
    let checker = Checker::new(probe);
    let mut list = Checklist::new(out);
    let reachable = list.check(&format!("connect to {}", probe.addr), || {
        checker.connect_first()
    });
    for (template, check) in CHECKS {
        let name = checker.name(template);
        if reachable {
            list.check(&name, || {
                check(&checker).map_err(|f| checker.blame_slow_link(f))
            });
        } else {
            list.not_run(&name, "cannot connect");
        }
    }
    list.finish()
}

/// The first reply of the run may take [`FIRST_REPLY_PATIENCE`] times the
/// usual wait: it is how the run learns the round trip of this link (the
/// connect alone cannot tell: through an SSH tunnel, it reaches the local
/// end of the tunnel at once).
fn round_trip(p: &Checker, text: &str) -> Result<(), Failure> {
    let stream = open(p)?;
    // Only the first round trip of the run is patient, answered or not:
    // a silent server must not cost every check five times the wait.
    let wait = match p.patient.replace(false) {
        true => p.wait() * FIRST_REPLY_PATIENCE,
        false => p.wait(),
    };
    let sent = Instant::now();
    send(&stream, &frame(p, text)?)?;
    expect_replies_within(p, &stream, &show(text.as_bytes()), 1, wait)?;
    p.saw_round_trip(sent.elapsed());
    goodbye(p, &stream);
    Ok(())
}

/// How many times the usual wait the first reply may take.
pub const FIRST_REPLY_PATIENCE: u32 = 5;

fn split_header(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    let bytes = frame(p, "split")?;
    let (header, payload) = bytes.split_at(p.framing.header_len());
    for byte in header {
        send(&stream, std::slice::from_ref(byte))?; // TCP_NODELAY: one segment each
    }
    send(&stream, payload)?;
    let sent = "the header of \"split\" one byte per write, then the payload";
    expect_replies(p, &stream, sent, 1).map_err(|f| {
        or_hint(
            f,
            "read the header in a loop until all of its bytes have arrived",
        )
    })?;
    still_in_step(p, &stream, "the split header")?;
    goodbye(p, &stream);
    Ok(())
}

fn two_in_one_write(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    send(&stream, &[frame(p, "one")?, frame(p, "two")?].concat())?;
    expect_replies(p, &stream, "\"one\" and \"two\" in one write", 2).map_err(|f| {
        or_hint(
            f,
            "read exactly the declared bytes: the next message may follow at once",
        )
    })?;
    still_in_step(p, &stream, "the two messages")?;
    goodbye(p, &stream);
    Ok(())
}

fn max_payload(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    let max = p.framing.max_payload();
    send(&stream, &header(p, &max.to_string())?)?;
    send_pattern(&mut &stream, max)
        .map_err(|err| Failure::because(format!("sending the {max}-byte payload failed: {err}")))?;
    let sent = format!("a payload of {max} bytes (--max-payload)");
    expect_replies(p, &stream, &sent, 1)?;
    still_in_step(p, &stream, "the big payload")?;
    goodbye(p, &stream);
    Ok(())
}

/// `a` to `z`, 2,520 times: 64 KiB or so, and a whole number of alphabets,
/// so that one chunk after another continues the pattern.
const PATTERN_CHUNK_BYTES: usize = 26 * 2520;

/// Writes `len` bytes of `abc...z` over and over, one chunk at a time: the
/// maximum payload may be up to 1 GiB, and memory must not follow it.
/// ASCII, so that the payload is valid UTF-8.
fn send_pattern(out: &mut impl Write, len: usize) -> io::Result<()> {
    let chunk: Vec<u8> = (b'a'..=b'z').cycle().take(PATTERN_CHUNK_BYTES).collect();
    let mut left = len;
    while left > 0 {
        let n = left.min(chunk.len());
        // write_all() blocks while the server's receive window is full;
        // open() set a write timeout, so a server that stops reading fails
        // the check instead of hanging it.
        out.write_all(&chunk[..n])?;
        left -= n;
    }
    Ok(())
}

/// A reply can look right by luck while the server has lost track of the
/// stream (and dies on the leftovers): one more message tells.
fn still_in_step(p: &Checker, stream: &TcpStream, after: &str) -> Result<(), Failure> {
    send(stream, &frame(p, "ping")?)?;
    expect_replies(p, stream, &format!("\"ping\" after {after}"), 1).map_err(|f| {
        or_hint(
            f,
            "out of step: one recv() returns only what has arrived so far, so read \
             the header, then the payload, each in a loop until all of it is in",
        )
    })
}

/// The goodbye may be answered (ours, and the tutorial's server, do) or
/// not (some tutorial variants just close); either way the connection
/// must then close.
fn disconnect(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    send(&stream, &frame(p, &p.goodbye)?)?;
    let reply = reply_bytes(p);
    let (got, ending) = receive(&stream, reply.len() + 1, p.wait());
    let answered_or_not = got.is_empty() || got == reply;
    if answered_or_not && matches!(ending, Ending::Closed) {
        return Ok(());
    }
    let failure = Failure::new(
        show(p.goodbye.as_bytes()),
        format!("{} or nothing, then the connection closed", show(&reply)),
        format!("{}, {}", shown(&got), ending.describe(p.wait())),
    );
    Err(match ending {
        Ending::Silent if answered_or_not => with_hint(
            failure,
            "the server took the goodbye for an ordinary message? give check the \
             goodbye it expects: --goodbye '!DISCONNECT' or --goodbye '!DISCONNECT!'",
        ),
        _ => failure,
    })
}

fn oversized(p: &Checker) -> Result<(), Failure> {
    // Framing caps the limit at 1 GiB, so this cannot overflow; checked
    // all the same, because the limit comes from the command line.
    let declared = p
        .framing
        .max_payload()
        .checked_add(1)
        .ok_or_else(|| Failure::because("--max-payload leaves no larger length to declare"))?
        .to_string();
    let stream = open(p)?;
    send(&stream, &header(p, &declared)?)?;
    let sent = format!("a header declaring {declared} bytes (one over --max-payload)");
    expect_refusal(p, &stream, &sent).map_err(|f| {
        with_hint(
            f,
            "check the declared length against the limit as soon as the header is \
             in; never wait for, or allocate, that many bytes",
        )
    })
}

fn non_numeric(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    send(&stream, &header(p, "abc")?)?;
    expect_refusal(p, &stream, "a header \"abc\" padded with spaces").map_err(|f| {
        or_hint(
            f,
            "a server must answer or close; one that does neither probably crashed \
             on the header and left the socket open (Python: int() raised ValueError)",
        )
    })
}

fn mid_header(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    send(&stream, b"5  ")?;
    half_close(&stream)?;
    let sent = "3 bytes of a header (\"5  \"), then shutdown(Write)";
    expect_silent_close(p, &stream, sent).map_err(|f| {
        with_hint(
            f,
            "a read of 0 bytes means the peer closed: stop, do not parse",
        )
    })
}

fn mid_payload(p: &Checker) -> Result<(), Failure> {
    let stream = open(p)?;
    send(&stream, &[header(p, "10")?, b"abc".to_vec()].concat())?;
    half_close(&stream)?;
    let sent = "a header declaring 10 bytes, 3 bytes, then shutdown(Write)";
    expect_silent_close(p, &stream, sent).map_err(|f| {
        with_hint(
            f,
            "the payload never fully arrived; a 0-byte read means the peer closed, \
             so stop instead of answering (or looping)",
        )
    })
}

/// The server must close, with or without an error reply, but not answer
/// as if the message were fine.
fn expect_refusal(p: &Checker, stream: &TcpStream, sent: &str) -> Result<(), Failure> {
    let (got, ending) = receive(stream, 64 * 1024, p.wait());
    let expected = "an error reply (optional), then the connection closed";
    let accepted = got.starts_with(&reply_bytes(p));
    if matches!(ending, Ending::Closed) && !accepted {
        return Ok(());
    }
    let mut failure = Failure::new(
        sent,
        expected,
        format!("{}, {}", shown(&got), ending.describe(p.wait())),
    );
    if accepted {
        failure = with_hint(failure, "the server answered as if the message were fine");
    }
    Err(failure)
}

/// The peer left mid-message: no reply is owed, only a close.
fn expect_silent_close(p: &Checker, stream: &TcpStream, sent: &str) -> Result<(), Failure> {
    let (got, ending) = receive(stream, 64 * 1024, p.wait());
    if matches!(ending, Ending::Closed) && got.is_empty() {
        return Ok(());
    }
    Err(Failure::new(
        sent,
        "no reply, the connection closed",
        format!("{}, {}", shown(&got), ending.describe(p.wait())),
    ))
}

/// Expects `count` replies, exactly, and nothing else.
fn expect_replies(
    p: &Checker,
    stream: &TcpStream,
    sent: &str,
    count: usize,
) -> Result<(), Failure> {
    expect_replies_within(p, stream, sent, count, p.wait())
}

/// Expects `count` replies within `wait`.
fn expect_replies_within(
    p: &Checker,
    stream: &TcpStream,
    sent: &str,
    count: usize,
    wait: Duration,
) -> Result<(), Failure> {
    let expected = reply_bytes(p).repeat(count);
    let (mut got, mut ending) = receive_expecting(stream, &expected, wait);
    if got == expected {
        return Ok(());
    }
    // We stopped at a correct answer's length, or where the bytes parted
    // from it; to show what came whole, take in what else is arriving.
    let mut waited = wait;
    if matches!(ending, Ending::Complete | Ending::Differs) {
        waited = Duration::from_millis(200) + p.round_trip.get();
        let (more, then) = receive(stream, SHOWN_BYTES, waited);
        got.extend(more);
        ending = then;
    }
    let mut failure = Failure::new(
        sent,
        show(&expected),
        format!("{}, {}", shown(&got), ending.describe(waited)),
    );
    // The previews may look the same for a long while: say where the
    // bytes really part.
    if let Some(difference) = show_difference(&expected, &got) {
        failure.details.push(("where", difference));
    }
    let header_len = (!p.raw_replies).then(|| p.framing.header_len());
    let hint = guess_mismatch(&got, header_len).or_else(|| guess_reply_text(p, &got, count));
    Err(match hint {
        Some(hint) => with_hint(failure, &hint),
        None => failure,
    })
}

/// Bytes as a failure shows what arrived: whole up to [`SHOWN_BYTES`],
/// escaped, with their count.
fn shown(bytes: &[u8]) -> String {
    format!("{} ({} bytes)", preview(bytes, SHOWN_BYTES), bytes.len())
}

/// Guesses why replies do not look as expected (`header_len` is `None`
/// when raw replies are expected), in words that say which setting to
/// change: `--raw-replies`, or `--header-size`.
pub fn guess_mismatch(got: &[u8], header_len: Option<usize>) -> Option<String> {
    let digits = got.iter().take_while(|b| b.is_ascii_digit()).count();
    let spaces = got[digits..].iter().take_while(|&&b| b == b' ').count();
    let looks_framed = digits > 0 && spaces > 0;
    // Where the payload would start: the first byte after the padding.
    let at = digits + spaces;
    match header_len {
        // Text with no digits in front: any raw reply, whatever it says.
        Some(_) if !got.is_empty() && digits == 0 && is_text(got) => Some(
            "looks like raw replies, with no header: try --raw-replies; for Tech With \
             Tim's tutorial server, --header-size 64 --raw-replies"
                .into(),
        ),
        Some(len) if looks_framed && at < got.len() && at != len => Some(format!(
            "the replies' header looks {at} bytes long: try --header-size {at}"
        )),
        Some(len) if looks_framed && at == got.len() && at > len => Some(format!(
            "the replies' header looks longer than {len} bytes: try a larger --header-size"
        )),
        None if looks_framed && at < got.len() => Some(format!(
            "looks like framed replies with a {at}-byte header: drop --raw-replies"
        )),
        None if looks_framed => {
            Some("looks like framed replies (digits, then spaces): drop --raw-replies".into())
        }
        _ => None,
    }
}

/// Printable text (a reply in words), as opposed to binary or a header.
fn is_text(bytes: &[u8]) -> bool {
    std::str::from_utf8(bytes).is_ok_and(|text| !text.chars().any(char::is_control))
}

/// When one reply came in the right shape but with other words, the
/// server probably says something else than `--reply`: name it.
fn guess_reply_text(p: &Checker, got: &[u8], count: usize) -> Option<String> {
    let text = if p.raw_replies {
        // Raw replies glued together: `count` copies of one text, or nothing to tell.
        let one = got.get(..got.len() / count)?;
        (one.repeat(count) == got).then_some(one)?
    } else {
        let (header, payload) = got.split_at_checked(p.framing.header_len())?;
        let len = p.framing.parse_header(header).ok()?;
        payload.get(..len)?
    };
    let text = std::str::from_utf8(text).ok()?;
    let is_other_reply = !text.is_empty() && text != p.reply && !text.starts_with("!ERROR");
    is_other_reply.then(|| {
        format!(
            "if {text:?} is what this server answers, give check --reply {}",
            shell_quote(text)
        )
    })
}

/// `text` in single quotes for a shell (`'` itself as `'\''`).
fn shell_quote(text: &str) -> String {
    format!("'{}'", text.replace('\'', r"'\''"))
}

fn with_hint(mut failure: Failure, hint: &str) -> Failure {
    failure.details.push(("hint", hint.to_string()));
    failure
}

/// Adds a hint about the server's code, unless a hint about the settings
/// (`--raw-replies`, `--header-size`) came first: then that is the problem.
fn or_hint(failure: Failure, hint: &str) -> Failure {
    if failure.details.iter().any(|(label, _)| *label == "hint") {
        return failure;
    }
    with_hint(failure, hint)
}

/// How a [`receive`] stopped.
enum Ending {
    Complete,
    /// What came already differs from what a correct server sends.
    Differs,
    Closed,
    Silent,
    Failed(io::Error),
}

impl Ending {
    fn describe(&self, timeout: Duration) -> String {
        match self {
            Ending::Complete | Ending::Differs => "and more may follow".into(),
            Ending::Closed => "then the server closed the connection".into(),
            Ending::Silent => format!("then nothing more for {}", seconds(timeout)),
            Ending::Failed(err) => format!("then {err}"),
        }
    }
}

/// A wait as a person reads it: `1.2s`, to the millisecond at most.
fn seconds(wait: Duration) -> String {
    format!("{}s", wait.as_millis() as f64 / 1000.0)
}

/// Reads up to `len` bytes: stops when they are in, the server closes, or
/// `timeout` passes. Never reads more than `len`, so what follows stays
/// for the next step to see.
fn receive(stream: &TcpStream, len: usize, timeout: Duration) -> (Vec<u8>, Ending) {
    receive_until(stream, len, timeout, |_| false)
}

/// Reads `expected.len()` bytes like [`receive`], but stops as soon as
/// they part from `expected`: a wrong answer fails at once, without
/// waiting for bytes that will not make it right.
fn receive_expecting(stream: &TcpStream, expected: &[u8], timeout: Duration) -> (Vec<u8>, Ending) {
    receive_until(stream, expected.len(), timeout, |got| {
        !expected.starts_with(got)
    })
}

/// Reads up to `len` bytes, stopping early (`Ending::Differs`) once
/// `differs` says what came is wrong.
fn receive_until(
    mut stream: &TcpStream,
    len: usize,
    timeout: Duration,
    differs: impl Fn(&[u8]) -> bool,
) -> (Vec<u8>, Ending) {
    let deadline = Instant::now() + timeout;
    let mut got = Vec::new();
    let mut buf = [0u8; 16 * 1024];
    while got.len() < len {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            return (got, Ending::Silent);
        }
        let want = (len - got.len()).min(buf.len());
        // read() waits for some of the bytes, the server's close, or the timeout.
        match stream.read(&mut buf[..want]) {
            Ok(0) => return (got, Ending::Closed),
            Ok(n) => {
                got.extend_from_slice(&buf[..n]);
                if differs(&got) {
                    return (got, Ending::Differs);
                }
            }
            Err(err) if is_timeout(&err) || err.kind() == io::ErrorKind::Interrupted => continue,
            // A reset ends the connection too: for these checks, a close.
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => {
                return (got, Ending::Closed);
            }
            Err(err) => return (got, Ending::Failed(err)),
        }
    }
    (got, Ending::Complete)
}

/// The bytes of one correct reply.
fn reply_bytes(p: &Checker) -> Vec<u8> {
    if p.raw_replies {
        p.reply.as_bytes().to_vec()
    } else {
        // main() checked that the reply fits --max-payload.
        frame(p, &p.reply).unwrap_or_default()
    }
}

fn frame(p: &Checker, text: &str) -> Result<Vec<u8>, Failure> {
    p.framing
        .encode(text)
        .map_err(|err| Failure::because(format!("cannot frame the message: {err}")))
}

/// A header holding `digits` as they are, padded to the header size.
fn header(p: &Checker, digits: &str) -> Result<Vec<u8>, Failure> {
    let len = p.framing.header_len();
    if digits.len() > len {
        return Err(Failure::because(format!(
            "{digits:?} does not fit in a {len}-byte header; raise --header-size"
        )));
    }
    let mut header = digits.as_bytes().to_vec();
    header.resize(len, b' ');
    Ok(header)
}

/// A connection for one check: the first connection, if no check used
/// it yet, else a new one.
fn open(p: &Checker) -> Result<TcpStream, Failure> {
    if let Some(stream) = p.spare.borrow_mut().take() {
        return Ok(stream);
    }
    let addr = p.target.get();
    let stream = basic::net::connect_within(addr, p.wait())
        .map_err(|err| Failure::because(format!("cannot connect to {addr}: {err}")))?;
    prepare(stream, p)
}

/// Socket options every check's connection gets.
fn prepare(stream: TcpStream, p: &Checker) -> Result<TcpStream, Failure> {
    // Every write leaves at once, so that "1-byte writes" are 1-byte segments.
    let _ = stream.set_nodelay(true);
    // A write blocks while the server's receive buffer is full; a server
    // that stops reading must fail the check, not hang it.
    stream
        .set_write_timeout(Some(p.wait()))
        .map_err(|err| Failure::because(format!("cannot set a write timeout: {err}")))?;
    Ok(stream)
}

fn send(mut stream: &TcpStream, bytes: &[u8]) -> Result<(), Failure> {
    stream
        .write_all(bytes)
        .map_err(|err| Failure::because(format!("sending {} failed: {err}", show(bytes))))
}

/// Ends a connection politely, best effort: a server that already closed
/// is no failure here.
fn goodbye(p: &Checker, mut stream: &TcpStream) {
    if let Ok(bytes) = frame(p, &p.goodbye) {
        let _ = stream.write_all(&bytes);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn checker(timeout: Duration, round_trip: Duration) -> Checker {
        let framing = Framing::new(128, 1024).unwrap();
        let probe = Probe::new(([127, 0, 0, 1], 5050).into(), timeout, framing, false);
        let checker = Checker::new(&probe);
        checker.saw_round_trip(round_trip);
        checker
    }

    fn waited() -> Failure {
        Failure::new(
            "\"hello\"",
            "\"Msg received\"",
            "\"\" (0 bytes), then nothing more for 1s",
        )
    }

    #[test]
    fn waits_grow_by_four_measured_round_trips() {
        let checker = checker(Duration::from_secs(1), Duration::from_millis(200));
        assert_eq!(checker.wait(), Duration::from_millis(1800));
    }

    #[test]
    fn a_wait_that_fails_on_a_slow_link_says_the_link_may_be_the_cause() {
        let checker = checker(Duration::from_secs(1), Duration::from_millis(200));
        let failure = checker.blame_slow_link(waited());
        assert_eq!(
            failure.details.last().unwrap(),
            &(
                "hint",
                "slow link: one round trip took 200ms, 20% of --timeout; this may be the \
                 network, not the server: try --timeout 5"
                    .to_string()
            )
        );
    }

    #[test]
    fn a_fast_link_or_a_wrong_answer_blames_no_link() {
        let fast = checker(Duration::from_secs(1), Duration::from_millis(1));
        assert_eq!(fast.blame_slow_link(waited()), waited());
        let slow = checker(Duration::from_secs(1), Duration::from_millis(500));
        let wrong = Failure::new(
            "\"hello\"",
            "\"Msg received\"",
            "\"hello\" (5 bytes), and more may follow",
        );
        assert_eq!(slow.blame_slow_link(wrong.clone()), wrong);
    }

    #[test]
    fn the_streamed_pattern_continues_across_chunks_and_stops_at_the_length() {
        let len = 2 * PATTERN_CHUNK_BYTES + 7;
        let mut sent = Vec::new();
        send_pattern(&mut sent, len).unwrap();
        let expected: Vec<u8> = (b'a'..=b'z').cycle().take(len).collect();
        assert!(
            sent == expected,
            "the pattern broke somewhere in {len} bytes"
        );
    }
}
