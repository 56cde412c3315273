//! `sandbox check`: lesson 3's chat checks (the sandbox speaks the same
//! protocol), then, when told the server's `--idle-timeout`, the timeout
//! checks: an idle client is closed about that long after its last line,
//! with a `* ` notice to it and to the room, and a client that keeps
//! talking is not.
//!
//! The idle checks share one scenario, so that they take one idle period
//! rather than three: `idler` renames and falls silent; `talker` sends
//! `/who` every quarter period and listens for the room's notice.

use std::io::{Read as _, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use multiclients_threaded::protocol::LineBuffer;
pub use plumbing::checklist::Report;
use plumbing::checklist::{Checklist, Failure, is_timeout};

pub const IDLE_CLOSED: &str =
    "an idle client is closed after --idle-timeout, with a `* ` notice to it";
pub const IDLE_ROOM: &str = "the room gets a `* ` notice naming the idle client";
pub const IDLE_TALKER: &str = "a client that keeps talking is not closed for idleness";

/// The longest line the idle checks accept from a server (bounds our memory).
const MAX_REPLY_BYTES: usize = 128 * 1024;

/// Runs every check against the server at `addr`.
pub fn run(
    addr: SocketAddr,
    timeout: Duration,
    idle_timeout: Option<Duration>,
    out: &mut dyn Write,
) -> Report {
    let mut list = Checklist::new(out);
    multiclients_threaded::check::run_chat_checks(&mut list, addr, timeout);
    if let Some(idle) = idle_timeout {
        idle_checks(&mut list, addr, timeout, idle);
    }
    list.finish()
}

/// Adds the three idle checks to `list`.
pub fn idle_checks(list: &mut Checklist, addr: SocketAddr, timeout: Duration, idle: Duration) {
    match idle_scenario(addr, timeout, idle) {
        Ok(seen) => {
            list.check(IDLE_CLOSED, || seen.idler_closed.clone());
            list.check(IDLE_ROOM, || seen.room_told.clone());
            list.check(IDLE_TALKER, || seen.talker_alive.clone());
        }
        Err(failure) => {
            for name in [IDLE_CLOSED, IDLE_ROOM, IDLE_TALKER] {
                list.check(name, || Err(failure.clone()));
            }
        }
    }
}

/// What the idle scenario saw, one verdict per check.
struct IdleSeen {
    idler_closed: Result<(), Failure>,
    room_told: Result<(), Failure>,
    talker_alive: Result<(), Failure>,
}

fn idle_scenario(addr: SocketAddr, timeout: Duration, idle: Duration) -> Result<IdleSeen, Failure> {
    let idler_name = format!("idler{}", std::process::id() % 100_000);
    let is_about_idler = |line: &str| line.starts_with("* ") && mentions(line, &idler_name);
    let mut talker = Lines::connect(addr, timeout)?;
    let mut idler = Lines::connect(addr, timeout)?;
    idler.send(&format!("/nick {idler_name}\n"))?;
    let silent_since = Instant::now();
    idler.until(is_about_idler, timeout)?;
    // The talker hears the rename first; the next notice naming the idler
    // is the one this check is about.
    talker.until(is_about_idler, timeout)?;
    // The idler waits on its own thread while the talker keeps talking.
    let limit = idle + timeout;
    let waiting = thread::spawn(move || idler_is_closed(idler, silent_since, idle, limit));
    let room_told = talk_until(&mut talker, is_about_idler, limit, idle);
    // Joined only now: the idler's connection (returned by the thread) stays
    // open until the talker is done, so a notice the talker hears can only
    // come from the server closing it, never from us.
    let (idler_closed, _idler) = match waiting.join() {
        Ok((verdict, idler)) => (verdict, Some(idler)),
        Err(_) => (
            Err(Failure::because("the idle check's thread panicked")),
            None,
        ),
    };
    let talker_alive = still_answers(&mut talker, timeout);
    Ok(IdleSeen {
        idler_closed,
        room_told,
        talker_alive,
    })
}

/// Waits for the server to close `idler`, and judges when and how it did.
/// Hands the connection back, so that the caller decides when it closes.
fn idler_is_closed(
    mut idler: Lines,
    since: Instant,
    idle: Duration,
    limit: Duration,
) -> (Result<(), Failure>, Lines) {
    let verdict = judge_close(&mut idler, since, idle, limit);
    (verdict, idler)
}

fn judge_close(
    idler: &mut Lines,
    since: Instant,
    idle: Duration,
    limit: Duration,
) -> Result<(), Failure> {
    let mut last = None;
    loop {
        match idler.read_line(since + limit)? {
            Got::Line(line) => last = Some(line),
            Got::Closed => break,
            Got::Quiet => {
                return Err(Failure::because(format!(
                    "still open {:.1}s after its last line; the idle timeout is {}s",
                    limit.as_secs_f32(),
                    idle.as_secs_f32()
                )));
            }
        }
    }
    let after = since.elapsed();
    // 10% slack below: the server measures from when the line arrived.
    if after < idle.mul_f32(0.9) {
        return Err(Failure::because(format!(
            "closed after {:.2}s, before the idle timeout of {}s",
            after.as_secs_f32(),
            idle.as_secs_f32()
        )));
    }
    match last {
        Some(line) if line.starts_with("* ") => Ok(()),
        other => Err(Failure::new(
            format!("nothing for {}s", idle.as_secs_f32()),
            "a `* ` notice, then the close",
            format!("last line before the close: {other:?}"),
        )),
    }
}

/// Says a line every quarter of `idle` (so the talker is never idle) until
/// a line matching `wanted` arrives.
fn talk_until(
    talker: &mut Lines,
    wanted: impl Fn(&str) -> bool,
    limit: Duration,
    idle: Duration,
) -> Result<(), Failure> {
    let deadline = Instant::now() + limit;
    while Instant::now() < deadline {
        talker.send("still here\n")?;
        // Listen for a quarter period: pacing the talk, not synchronising.
        let pause = Instant::now() + idle / 4;
        loop {
            match talker.read_line(pause)? {
                Got::Line(line) if wanted(&line) => return Ok(()),
                Got::Line(_) => continue,
                Got::Quiet => break,
                Got::Closed => return Err(Failure::because("the talking client was closed")),
            }
        }
    }
    Err(Failure::because(format!(
        "no `* ` notice naming the idle client within {:.1}s",
        limit.as_secs_f32()
    )))
}

/// The talker, active all along, must still get an answer to `/who`.
fn still_answers(talker: &mut Lines, timeout: Duration) -> Result<(), Failure> {
    talker.send("/who\n")?;
    talker
        .until(|line| line.starts_with("* "), timeout)
        .map(drop)
}

/// Whether `line` has `name` as a whole word.
fn mentions(line: &str, name: &str) -> bool {
    line.split(|c: char| c.is_whitespace() || ",.;:!?()[]{}\"'`".contains(c))
        .any(|word| word == name)
}

/// What one bounded read found.
enum Got {
    Line(String),
    Closed,
    Quiet,
}

/// A connection read line by line, every wait bounded.
struct Lines {
    stream: TcpStream,
    lines: LineBuffer,
}

impl Lines {
    fn connect(addr: SocketAddr, timeout: Duration) -> Result<Lines, Failure> {
        let stream = basic::net::connect_within(addr, timeout)
            .map_err(|err| Failure::because(format!("cannot connect: {err}")))?;
        Ok(Lines {
            stream,
            lines: LineBuffer::new(MAX_REPLY_BYTES),
        })
    }

    fn send(&mut self, line: &str) -> Result<(), Failure> {
        self.stream
            .write_all(line.as_bytes())
            .map_err(|err| Failure::because(format!("sending {line:?} failed: {err}")))
    }

    /// The next line, or the close, or `Quiet` once `deadline` passes.
    fn read_line(&mut self, deadline: Instant) -> Result<Got, Failure> {
        let mut buf = [0u8; 4096];
        loop {
            match self.lines.next_line() {
                Some(Ok(raw)) => return Ok(Got::Line(String::from_utf8_lossy(&raw).into_owned())),
                Some(Err(_)) => {
                    return Err(Failure::because("the server sent a line over 128 KiB"));
                }
                None => {}
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(Got::Quiet);
            }
            let _ = self.stream.set_read_timeout(Some(left));
            match self.stream.read(&mut buf) {
                Ok(0) => return Ok(Got::Closed),
                Ok(n) => self.lines.extend(&buf[..n]),
                Err(err) if is_timeout(&err) => return Ok(Got::Quiet),
                Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => {
                    return Ok(Got::Closed);
                }
                Err(err) => return Err(Failure::because(format!("reading failed: {err}"))),
            }
        }
    }

    /// Reads until a line matches `wanted`, at most `timeout`.
    fn until(
        &mut self,
        wanted: impl Fn(&str) -> bool,
        timeout: Duration,
    ) -> Result<String, Failure> {
        let deadline = Instant::now() + timeout;
        loop {
            match self.read_line(deadline)? {
                Got::Line(line) if wanted(&line) => return Ok(line),
                Got::Line(_) => continue,
                Got::Closed => return Err(Failure::because("the server closed the connection")),
                Got::Quiet => {
                    return Err(Failure::because(format!(
                        "no such line within {}s",
                        timeout.as_secs_f32()
                    )));
                }
            }
        }
    }
}
