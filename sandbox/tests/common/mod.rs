//! What the sandbox's test files share: a chat client with bounded reads, a
//! server on port 0, and the chat scenarios. Each scenario takes the event
//! loop to run on: `chat.rs` and `timeouts.rs` run them on the readiness
//! loop, and `exercises.rs` runs them on the naive loop as exercise 4's
//! tests, so both loops pass the very same tests.

// Each test file uses only part of this module.
#![allow(dead_code)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use plumbing::testing::{TEST_TIMEOUT, connect};
use sandbox::room::Options;
use sandbox::server::EventLoop;
use socket2::{Domain, SockAddr, Socket, Type};

pub const SANDBOX: &str = env!("CARGO_BIN_EXE_sandbox");

/// A chat client for tests: writes lines, reads lines, every read bounded.
pub struct Chatter {
    pub reader: BufReader<TcpStream>,
    pub stream: TcpStream,
}

impl Chatter {
    /// Connects and reads the welcome notice, so that later reads see
    /// only what the test provoked.
    pub fn join(addr: SocketAddr) -> Chatter {
        let stream = connect(addr);
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut chatter = Chatter { reader, stream };
        let welcome = chatter.line();
        assert!(welcome.starts_with("* welcome, guest"), "{welcome:?}");
        chatter
    }

    pub fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
    }

    /// The next line, with its `\n`; panics after the test timeout.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(_) => line,
            Err(err) => panic!("expected a line, got {err} (after {line:?})"),
        }
    }

    /// Renames and waits for the confirmation.
    pub fn nick(&mut self, name: &str) {
        self.send(&format!("/nick {name}\n"));
        assert_eq!(self.line(), format!("* you are now {name}\n"));
    }

    /// Reads until the server closes; returns what arrived.
    pub fn until_closed(&mut self) -> String {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.reader, &mut rest)
            .expect("the server should close");
        rest
    }
}

pub fn start(event_loop: EventLoop, options: Options) -> SocketAddr {
    plumbing::testing::start_server(move |listener| {
        sandbox::server::run(listener, event_loop, options)
    })
    .0
}

/// 1,000 clients in one process need about 2,000 file descriptors (both ends
/// are here); macOS starts with 256. The rlimit crate raises the soft limit
/// toward the hard one where the system allows (a no-op on Windows).
pub fn raise_open_file_limit(wanted: u64) {
    if let Err(err) = rlimit::increase_nofile_limit(wanted) {
        eprintln!("note: cannot raise the open-file limit: {err}");
    }
}

/// Asserts `elapsed` is at least `at_least` and less than 3 s more.
pub fn assert_took(elapsed: Duration, at_least: Duration) {
    assert!(
        elapsed >= at_least.mul_f32(0.95) && elapsed < at_least + Duration::from_secs(3),
        "took {elapsed:?}, expected about {at_least:?}"
    );
}

/// A listener whose backlog is full, so that the next connect cannot
/// complete: it listens with a backlog of 1 and never accepts, and we connect
/// until a connect hangs. On Linux and macOS the kernel then drops new SYNs
/// (the client retries, and times out); Windows answers a full backlog with
/// a reset instead, so there this returns `None` and the test says so.
///
/// Why this and not an unroutable address such as 10.255.255.1: tests stay
/// on loopback, and a sandboxed machine may have no route at all (the
/// connect would fail at once with "network unreachable").
pub fn listener_with_full_backlog() -> Option<(TcpListener, Vec<TcpStream>)> {
    let listener = basic::net::listen_on(([127, 0, 0, 1], 0).into(), 1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => held.push(stream),
            Err(err) if plumbing::checklist::is_timeout(&err) => return Some((listener, held)),
            Err(err) => {
                eprintln!("note: a full backlog answered {err}; no hanging connect here");
                return None;
            }
        }
    }
    None
}

/// A server that accepts one client and says nothing until `release`.
pub fn silent_server() -> (SocketAddr, mpsc::Sender<()>) {
    let listener = plumbing::testing::loopback_listener();
    let addr = listener.local_addr().unwrap();
    let (release, released) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (_stream, _) = listener.accept().unwrap();
        let _ = released.recv_timeout(TEST_TIMEOUT); // holds the connection open, silent
    });
    (addr, release)
}

/// A client socket with a small receive buffer (set before connecting, as
/// TCP fixes its window scale during the handshake), so that the server's
/// writes to it fill up early and become partial.
pub fn slow_reader(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&SockAddr::from(addr), TEST_TIMEOUT)
        .unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream
}

/// Runs the binary and returns its stdout; fails the test if it runs
/// longer than `limit` (longer than `run_command`'s bound: the idle checks
/// alone take one idle period).
pub fn run_bounded(args: &[&str], limit: Duration) -> String {
    let mut child = Command::new(SANDBOX)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("sandbox {args:?} ran longer than {limit:?}");
        }
        thread::sleep(Duration::from_millis(20)); // polling for exit, not synchronising
    }
    reader.join().unwrap()
}

pub fn check_output(addr: SocketAddr, idle: Option<Duration>) -> (sandbox::check::Report, String) {
    let mut out = Vec::new();
    let report = sandbox::check::run(addr, Duration::from_secs(2), idle, &mut out);
    (report, String::from_utf8(out).unwrap())
}

/// Only the idle checks, against a short idle timeout. (The chat checks
/// would not pass there: their flood reader only reads, so a short idle
/// timeout rightly closes it. Idleness counts what a client *sends*.)
pub fn idle_check_output(addr: SocketAddr, idle: Duration) -> (sandbox::check::Report, String) {
    let mut out = Vec::new();
    let mut list = plumbing::checklist::Checklist::new(&mut out);
    sandbox::check::idle_checks(&mut list, addr, Duration::from_secs(2), idle);
    let report = list.finish();
    (report, String::from_utf8(out).unwrap())
}

// The scenarios.

pub fn a_line_reaches_every_other_client_and_not_the_sender(event_loop: EventLoop) {
    let addr = start(event_loop, Options::default());
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    assert!(alice.line().ends_with(" joined\n"));
    let mut carol = Chatter::join(addr);
    assert!(alice.line().ends_with(" joined\n"));
    assert!(bob.line().ends_with(" joined\n"));
    alice.nick("alice");
    assert!(bob.line().ends_with(" is now alice\n"));
    assert!(carol.line().ends_with(" is now alice\n"));
    alice.send("hello, room\n");
    assert_eq!(bob.line(), "alice: hello, room\n");
    assert_eq!(carol.line(), "alice: hello, room\n");
    // The sender got nothing back: its next line is the answer to /who.
    alice.send("/who\n");
    assert!(alice.line().starts_with("* here (3): alice, guest"));
}

pub fn nick_refuses_taken_and_malformed_names(event_loop: EventLoop) {
    let addr = start(
        event_loop,
        Options {
            join_notices: false,
            ..Options::default()
        },
    );
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    alice.nick("alice");
    assert_eq!(bob.line(), "* guest1 is now alice\n"); // renames are always announced
    bob.send("/nick alice\n");
    assert_eq!(
        bob.line(),
        "* cannot rename to \"alice\": that name is taken\n"
    );
    bob.send("/nick a:b\n");
    assert_eq!(
        bob.line(),
        "* cannot rename to \"a:b\": a name cannot contain ':'\n"
    );
    bob.send("/dance\n");
    assert_eq!(
        bob.line(),
        "* unknown command /dance; try /nick NAME, /who, /me ACTION, /msg NAME TEXT or /quit\n"
    );
}

pub fn quit_says_bye_closes_and_tells_the_room(event_loop: EventLoop) {
    let addr = start(event_loop, Options::default());
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    alice.line(); // bob joined
    bob.nick("bob");
    alice.line(); // guest2 is now bob
    bob.send("/quit\n");
    assert_eq!(bob.until_closed(), "* bye\n");
    assert_eq!(alice.line(), "* bob left (quit)\n");
}

pub fn a_line_split_across_many_writes_arrives_whole(event_loop: EventLoop) {
    let addr = start(
        event_loop,
        Options {
            join_notices: false,
            ..Options::default()
        },
    );
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    alice.nick("alice");
    bob.line(); // guest1 is now alice
    let line = "written one byte at a time, crlf too\r\n";
    for byte in line.as_bytes() {
        alice.stream.write_all(&[*byte]).unwrap(); // TCP_NODELAY: one segment each
    }
    assert_eq!(bob.line(), "alice: written one byte at a time, crlf too\n");
}

pub fn an_over_long_line_is_refused_and_the_others_go_on(event_loop: EventLoop) {
    let addr = start(event_loop, Options::default());
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    alice.line(); // bob joined
    bob.nick("bob");
    alice.line();
    // No newline in sight: refused as soon as the limit is passed.
    bob.send(&"x".repeat(5000));
    let rest = bob.until_closed();
    assert!(
        rest.starts_with("* line too long (over 4096 bytes)"),
        "{rest:?}"
    );
    assert_eq!(alice.line(), "* bob left (sent a line over 4096 bytes)\n");
    let mut carol = Chatter::join(addr);
    carol.send("still here\n");
    assert!(alice.line().ends_with(" joined\n"));
    assert!(alice.line().ends_with(": still here\n"));
}

pub fn over_max_clients_a_newcomer_gets_one_notice_and_is_closed(event_loop: EventLoop) {
    let options = Options {
        max_clients: 2,
        join_notices: false,
        ..Options::default()
    };
    let addr = start(event_loop, options);
    let mut first = Chatter::join(addr);
    let _second = Chatter::join(addr);
    let mut third = connect(addr);
    let mut refused = String::new();
    std::io::Read::read_to_string(&mut third, &mut refused).unwrap();
    assert_eq!(refused, "* the room is full (2 clients); try again later\n");
    first.send("/who\n");
    assert!(first.line().starts_with("* here (2): "));
}

pub fn a_thousand_concurrent_clients_all_receive_a_broadcast(event_loop: EventLoop) {
    raise_open_file_limit(4_000);
    const CLIENTS: usize = 1_000;
    let options = Options {
        join_notices: false,
        ..Options::default()
    };
    let addr = start(event_loop, options);
    let mut clients: Vec<Chatter> = (0..CLIENTS).map(|_| Chatter::join(addr)).collect();
    clients[0].send("hello, thousand\n");
    for (i, client) in clients.iter_mut().enumerate().skip(1) {
        assert_eq!(client.line(), "guest1: hello, thousand\n", "client {i}");
    }
    // And each can send: the last one's line reaches the first.
    clients[CLIENTS - 1].send("and back\n");
    assert!(clients[0].line().ends_with(": and back\n"));
}

pub fn an_idle_client_is_closed_with_a_notice_and_the_room_hears_it(event_loop: EventLoop) {
    let idle = Duration::from_millis(400);
    let addr = start(
        event_loop,
        Options {
            idle_timeout: Some(idle),
            ..Options::default()
        },
    );
    let mut watcher = Chatter::join(addr);
    let mut idler = Chatter::join(addr);
    let joined_at = Instant::now();
    idler.nick("idler");
    let idler_thread = std::thread::spawn(move || (idler.until_closed(), joined_at.elapsed()));
    // The watcher keeps talking (each /who is activity) until it hears
    // that the idler left; then the idler must have been told, in time.
    let mut heard = Vec::new();
    while !heard
        .iter()
        .any(|line: &String| line.contains("idler left"))
    {
        watcher.send("/who\n");
        heard.push(watcher.line());
        std::thread::sleep(idle / 8); // pacing the talk, not synchronising
    }
    let (rest, after) = idler_thread.join().unwrap();
    assert!(
        rest.ends_with("* idle for 0.4s; disconnecting\n"),
        "{rest:?}"
    );
    assert!(
        after >= idle && after < idle + Duration::from_secs(2),
        "closed after {after:?}"
    );
    assert!(
        heard.contains(&"* idler left (idle for 0.4s)\n".to_string()),
        "{heard:?}"
    );
}

pub fn a_slow_reader_gets_every_byte_in_order_through_partial_writes(event_loop: EventLoop) {
    let addr = start(
        event_loop,
        Options {
            join_notices: false,
            ..Options::default()
        },
    );
    let mut reader = BufReader::with_capacity(100, slow_reader(addr));
    let mut welcome = String::new();
    reader.read_line(&mut welcome).unwrap();
    let mut sender = connect(addr);
    sender.read_exact(&mut [0; 20]).unwrap(); // start of its welcome
    // 48 KiB: under the 256 KiB high-water mark, over what the kernel buffers hold
    // for a 4 KiB receive window, so the server's writes go partial.
    let lines: Vec<String> = (0..1000)
        .map(|i| format!("line {i:05} {}\n", "x".repeat(36)))
        .collect();
    let writer = thread::spawn(move || {
        for line in &lines {
            sender.write_all(line.as_bytes()).unwrap();
        }
        sender // kept open until the reader is done
    });
    for i in 0..1000 {
        let mut line = String::new();
        reader.read_line(&mut line).unwrap();
        assert_eq!(
            line,
            format!("guest2: line {i:05} {}\n", "x".repeat(36)),
            "{event_loop:?}"
        );
    }
    drop(writer.join().unwrap());
}

/// A stall timeout short enough for tests.
pub const TEST_STALL: Duration = Duration::from_millis(300);

pub fn a_reader_that_never_reads_is_dropped_and_the_room_is_told(event_loop: EventLoop) {
    let options = Options {
        stall_timeout: TEST_STALL,
        ..Options::default()
    };
    let addr = start(event_loop, options);
    let _stuck = slow_reader(addr); // never reads
    let mut talker = BufReader::new(connect(addr));
    let mut line = String::new();
    talker.read_line(&mut line).unwrap(); // welcome
    let mut sender = talker.get_ref().try_clone().unwrap();
    let chunk = format!("{}\n", "y".repeat(1000));
    let flood = thread::spawn(move || {
        // 8 MiB: more than the kernel buffers and the high-water mark hold.
        for _ in 0..8 * 1024 {
            if sender.write_all(chunk.as_bytes()).is_err() {
                break;
            }
        }
    });
    line.clear();
    while !line.contains("left (too slow") {
        line.clear();
        assert!(
            talker.read_line(&mut line).unwrap() > 0,
            "{event_loop:?}: closed"
        );
    }
    assert_eq!(line, "* guest1 left (too slow: read nothing for 0.3s)\n");
    flood.join().unwrap();
}

/// A 24-character name, unique per `i`.
fn long_name(i: usize) -> String {
    format!("sender{i:02}{}", "x".repeat(16))
}

/// Several senders with long names each write 64 KiB of `a\n` at once
/// (each 2-byte line becomes 28 bytes in every outbox) while every client
/// reads as fast as it can: every line reaches every reader, in order, and
/// nobody is disconnected.
pub fn a_burst_from_several_senders_reaches_every_reader_in_full(event_loop: EventLoop) {
    const SENDERS: usize = 4;
    const READERS: usize = 2;
    const LINES: usize = 32 * 1024; // 64 KiB of "a\n"
    let addr = start(
        event_loop,
        Options {
            join_notices: false,
            ..Options::default()
        },
    );
    let senders: Vec<Chatter> = (0..SENDERS).map(|_| Chatter::join(addr)).collect();
    let readers: Vec<Chatter> = (0..READERS).map(|_| Chatter::join(addr)).collect();
    let mut everyone: Vec<(Option<usize>, Chatter)> = Vec::new();
    for (i, sender) in senders.into_iter().enumerate() {
        everyone.push((Some(i), sender));
    }
    for reader in readers {
        everyone.push((None, reader));
    }
    // Renames one at a time, each seen by everyone: the burst then starts
    // from a quiet room.
    for i in 0..SENDERS {
        let name = long_name(i);
        assert_eq!(name.len(), 24);
        everyone[i].1.send(&format!("/nick {name}\n"));
        for (_, chatter) in everyone.iter_mut() {
            assert!(chatter.line().ends_with(&format!(" now {name}\n")));
        }
    }
    let burst = "a\n".repeat(LINES);
    let handles: Vec<_> = everyone
        .into_iter()
        .map(|(me, mut chatter)| {
            let burst = burst.clone();
            thread::spawn(move || {
                // The burst is written from a thread of its own, as real
                // clients do: a client blocked in a write while nobody reads
                // its socket would be a client that does not read.
                let writer = me.map(|_| {
                    let mut stream = chatter.stream.try_clone().unwrap();
                    thread::spawn(move || stream.write_all(burst.as_bytes()).unwrap())
                });
                let mut from_each = [0usize; SENDERS];
                let expected = LINES * (SENDERS - usize::from(me.is_some()));
                for _ in 0..expected {
                    let line = chatter.line();
                    let sender = (0..SENDERS)
                        .find(|&i| line == format!("{}: a\n", long_name(i)))
                        .unwrap_or_else(|| panic!("unexpected line {line:?}"));
                    assert_ne!(Some(sender), me, "a sender got its own line back");
                    from_each[sender] += 1;
                }
                if let Some(writer) = writer {
                    writer.join().unwrap();
                }
                (me, from_each, chatter)
            })
        })
        .collect();
    let mut everyone = Vec::new();
    for handle in handles {
        let (me, from_each, chatter) = handle.join().unwrap();
        for (sender, &got) in from_each.iter().enumerate() {
            let wanted = if Some(sender) == me { 0 } else { LINES };
            assert_eq!(
                got, wanted,
                "{event_loop:?}: client {me:?} from sender {sender}"
            );
        }
        everyone.push(chatter);
    }
    // Nobody was disconnected: each still gets answers.
    for chatter in everyone.iter_mut() {
        chatter.send("/who\n");
        let who = chatter.line();
        assert!(who.starts_with("* here (6)"), "{event_loop:?}: {who:?}");
    }
}

/// One client never reads (a 4 KiB receive buffer) while 100,000 lines flow
/// from alice to bob: bob gets every line in order, the stuck client is let
/// go after the stall timeout, and finds its notice when it reads at last.
pub fn a_client_that_never_reads_is_let_go_and_the_others_get_every_line(event_loop: EventLoop) {
    const LINES: usize = 100_000;
    // 10 MB in all: more than the kernel buffers for the stuck client hold
    // (Linux grows a send buffer up to 4 MiB), so its outbox must grow.
    const PADDING: &str =
        "................................................................................";
    let options = Options {
        stall_timeout: TEST_STALL,
        ..Options::default()
    };
    let addr = start(event_loop, options);
    let mut stuck = slow_reader(addr); // guest1, reads nothing until told
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    assert_eq!(alice.line(), "* guest3 joined\n");
    let (let_go, heard) = mpsc::channel::<()>();
    let stuck_reader = thread::spawn(move || {
        heard
            .recv_timeout(TEST_TIMEOUT * 6)
            .expect("bob heard that guest1 left");
        let mut everything = Vec::new();
        stuck.read_to_end(&mut everything).expect("a clean close");
        String::from_utf8_lossy(&everything).into_owned()
    });
    let mut writer = std::io::BufWriter::new(alice.stream.try_clone().unwrap());
    let sender = thread::spawn(move || {
        for i in 0..LINES {
            writeln!(writer, "line {i} {PADDING}").unwrap();
        }
        writer.flush().unwrap();
    });
    let mut let_go = Some(let_go);
    let mut next = 0;
    while next < LINES {
        let line = bob.line();
        if line == "* guest1 left (too slow: read nothing for 0.3s)\n" {
            let_go.take().expect("told once").send(()).unwrap();
            continue;
        }
        assert_eq!(
            line,
            format!("guest2: line {next} {PADDING}\n"),
            "{event_loop:?}"
        );
        next += 1;
    }
    sender.join().unwrap();
    if let Some(let_go) = let_go {
        // The flood may have fitted in the kernel's buffers and the outbox
        // before the stall timer fired: the notice then comes after it.
        assert_eq!(
            bob.line(),
            "* guest1 left (too slow: read nothing for 0.3s)\n"
        );
        let_go.send(()).unwrap();
    }
    let seen = stuck_reader.join().unwrap();
    let last = seen.lines().last().unwrap_or_default();
    assert!(
        last.starts_with("* you read nothing for 0.3s while ")
            && last.ends_with(" bytes waited for you; disconnecting"),
        "{event_loop:?}: last line {last:?}"
    );
    // And the room goes on.
    assert_eq!(
        alice.line(),
        "* guest1 left (too slow: read nothing for 0.3s)\n"
    );
    alice.send("/who\n");
    assert_eq!(alice.line(), "* here (2): guest2, guest3\n");
}

/// A client sends an over-long line and keeps writing, reading nothing,
/// until its writes fail: when it reads at last, its notice is there (the
/// server closed gently, reading its input, so no reset threw it away).
pub fn an_over_long_line_sender_finds_its_notice_after_its_writes_fail(event_loop: EventLoop) {
    let addr = start(event_loop, Options::default());
    let mut flooder = connect(addr);
    let chunk = [b'x'; 1024];
    let mut written = 0usize;
    let failed = loop {
        match flooder.write_all(&chunk) {
            Ok(()) => written += chunk.len(),
            Err(_) => break true,
        }
        if written > 64 * 1024 * 1024 {
            break false;
        }
    };
    assert!(
        failed,
        "{event_loop:?}: 64 MiB written and the server still reads"
    );
    let mut everything = Vec::new();
    let _ = flooder.read_to_end(&mut everything); // may end with a reset
    let seen = String::from_utf8_lossy(&everything);
    assert!(
        seen.contains("* line too long (over 4096 bytes); disconnecting\n"),
        "{event_loop:?}: after {written} bytes written: {seen:?}"
    );
}

pub fn lesson_3_chat_checks_pass(event_loop: EventLoop) {
    // The check's flood waits at most its timeout (2 s) for each line, and
    // the room waits the stall timeout for the client that stops reading.
    let options = Options {
        stall_timeout: Duration::from_millis(500),
        ..Options::default()
    };
    let addr = start(event_loop, options);
    let (report, out) = check_output(addr, None);
    assert!(report.all_passed(), "{event_loop:?}:\n{out}");
    assert!(
        out.contains(&format!("ok {}\n", multiclients_threaded::check::STALL)),
        "{out}"
    );
}

pub fn idle_checks_pass(event_loop: EventLoop) {
    let idle = Duration::from_millis(500);
    let addr = start(
        event_loop,
        Options {
            idle_timeout: Some(idle),
            ..Options::default()
        },
    );
    let (report, out) = idle_check_output(addr, idle);
    assert_eq!(report.passed.len(), 3, "{event_loop:?}:\n{out}");
    assert!(report.all_passed(), "{event_loop:?}:\n{out}");
}

/// With only a few file descriptors (`ulimit -n`), accept fails with "too
/// many open files": the server must refuse the newcomers it has no
/// descriptor for with a notice they can read (not leave them hanging), log
/// it once per burst with a count, keep serving the clients it has, and
/// welcome newcomers again once others leave. Unix only (`sh`, `ulimit`).
#[cfg(unix)]
pub fn out_of_file_descriptors_accept_fails_is_logged_and_the_server_goes_on(event_loop: &str) {
    // --max-clients above the limit on purpose: the room is not full, the
    // process is out of descriptors.
    let script = format!(
        "ulimit -n 16 && exec {SANDBOX} server --port 0 --event-loop {event_loop} --max-clients 100"
    );
    let server = plumbing::testing::ServerProcess::start("sh", &["-c", &script]);
    server.expect_line("above what the open-files limit allows");
    let mut welcomed = Vec::new();
    let mut refused = 0;
    for _ in 0..16 {
        let mut client = BufReader::new(plumbing::testing::connect(server.addr));
        let mut first = String::new();
        client.read_line(&mut first).unwrap();
        if first.starts_with("* welcome, guest") {
            welcomed.push(client);
        } else {
            assert_eq!(
                first,
                sandbox::server::OUT_OF_DESCRIPTORS_NOTICE,
                "{event_loop}"
            );
            refused += 1;
        }
    }
    assert!(
        !welcomed.is_empty() && refused > 0,
        "{event_loop}: {refused} refused"
    );
    server.expect_line("out of file descriptors: refusing newcomers");
    let leaving = welcomed.len();
    drop(welcomed);
    for _ in 0..leaving {
        server.expect_line(" left (");
    }
    // Descriptors are free again: the next client is welcome.
    let mut next = BufReader::new(plumbing::testing::connect(server.addr));
    let mut welcome = String::new();
    next.read_line(&mut welcome).unwrap();
    assert!(
        welcome.starts_with("* welcome, guest"),
        "{event_loop}: {welcome:?}"
    );
    let count = server.expect_line("out of file descriptors: refused ");
    assert!(
        count.contains(&format!("refused {refused} connections in all")),
        "{count}"
    );
}

/// Lesson 3's protocol rules, kept by the room: names are one whatever
/// their case, text that could act on a terminal is shown escaped, and a
/// last line without `\n` still arrives. (`/me` and `/msg` are exercises 7
/// and 8: not used here, so that this test passes in the student copy.)
pub fn names_ignore_case_text_is_escaped_and_a_last_line_arrives(event_loop: EventLoop) {
    let addr = start(
        event_loop,
        Options {
            join_notices: false,
            ..Options::default()
        },
    );
    let mut alice = Chatter::join(addr);
    let mut bob = Chatter::join(addr);
    alice.nick("Alice");
    assert_eq!(bob.line(), "* guest1 is now Alice\n");
    bob.send("/nick ALICE\n");
    assert_eq!(
        bob.line(),
        "* cannot rename to \"ALICE\": that name is taken\n"
    );
    alice.nick("alice"); // its own name, in another case
    assert_eq!(bob.line(), "* Alice is now alice\n");
    let forged = "evil\r\x1b[2Jguest2: forged \u{202e}";
    alice.send(&format!("{forged}\n"));
    let relayed = bob.line();
    let clean = multiclients_threaded::protocol::clean_text(forged);
    assert_eq!(relayed, format!("alice: {clean}\n"));
    assert!(!relayed.contains(['\r', '\x1b', '\u{202e}']), "{relayed:?}");
    // A client that writes a last line without `\n` and closes.
    let mut last = connect(addr);
    let mut welcome = [0u8; 9];
    last.read_exact(&mut welcome).unwrap(); // "* welcome"
    last.write_all(b"last words").unwrap();
    last.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(alice.line(), "guest3: last words\n");
}

// Back-pressure (exercise 14) and shutdown (exercise 15).

/// One member reads nothing (with a stall timeout long enough that it is
/// not let go) while another floods the room: the server must stop
/// reading the flooder, so that its writes stop (back-pressure), instead of
/// queuing without bound. Once the member reads, every line arrives, in
/// order, and the flooder's last, half-written line is finished.
pub fn a_flooding_sender_is_held_back_until_a_member_reads(event_loop: EventLoop) {
    const LINE_BYTES: usize = 100;
    // Far more than the kernel's buffers and the high-water mark hold
    // (Linux grows a receive buffer to 6 MiB and a send buffer to 4 MiB).
    const MOST_BYTES: usize = 64 * 1024 * 1024;
    let options = Options {
        stall_timeout: Duration::from_secs(60),
        join_notices: false,
        ..Options::default()
    };
    let addr = start(event_loop, options);
    let mut member = BufReader::new(slow_reader(addr)); // guest1: reads nothing yet
    let mut welcome = String::new();
    member.read_line(&mut welcome).unwrap();
    let mut flooder = connect(addr); // guest2
    flooder
        .set_write_timeout(Some(Duration::from_millis(500)))
        .unwrap();
    let line = |i: usize| format!("{i:08} {}\n", "f".repeat(LINE_BYTES - 10));
    let mut written = 0;
    let mut held = false;
    'flood: while written < MOST_BYTES {
        let chunk: String = (written / LINE_BYTES..written / LINE_BYTES + 64)
            .map(line)
            .collect();
        let mut at = 0;
        while at < chunk.len() {
            match flooder.write(&chunk.as_bytes()[at..]) {
                Ok(n) => at += n,
                Err(err) if plumbing::checklist::is_timeout(&err) => {
                    held = true;
                    written += at;
                    break 'flood;
                }
                Err(err) => panic!("{event_loop:?}: the flooder's write failed: {err}"),
            }
        }
        written += chunk.len();
    }
    assert!(
        held,
        "{event_loop:?}: {written} bytes written while a member read nothing, and the server \
         still took them all: nothing held the sender back"
    );
    // The line the timeout cut in two is finished once the server reads again.
    let lines = written.div_ceil(LINE_BYTES);
    let rest = line(lines - 1).as_bytes()[written - (lines - 1) * LINE_BYTES..].to_vec();
    flooder.set_write_timeout(Some(TEST_TIMEOUT)).unwrap();
    let finisher = thread::spawn(move || {
        flooder.write_all(&rest).unwrap();
        flooder // kept open until the member has read everything
    });
    for i in 0..lines {
        let mut got = String::new();
        member.read_line(&mut got).unwrap();
        assert_eq!(
            got,
            format!("guest2: {}", line(i)),
            "{event_loop:?}: line {i}"
        );
    }
    drop(finisher.join().unwrap());
}

/// A server run with [`sandbox::server::run_until`]: its address, the stop
/// to request, and the thread whose result is `run`'s.
pub fn start_stoppable(
    event_loop: EventLoop,
    options: Options,
) -> (
    SocketAddr,
    sandbox::shutdown::Stop,
    thread::JoinHandle<anyhow::Result<()>>,
) {
    let stop = sandbox::shutdown::Stop::default();
    let stop_for_server = stop.clone();
    let (addr, server) = plumbing::testing::start_server(move |listener| {
        sandbox::server::run_until(listener, event_loop, options, &stop_for_server)
    });
    (addr, stop, server)
}

pub const SHUTDOWN_NOTICE: &str = "* server shutting down\n";

/// On a stop request, every client reads the notice and then the end of
/// the stream; newcomers are refused; `run` returns `Ok`.
pub fn on_stop_every_client_reads_the_notice_then_the_end(event_loop: EventLoop) {
    let options = Options {
        join_notices: false,
        ..Options::default()
    };
    let (addr, stop, server) = start_stoppable(event_loop, options);
    let mut clients: Vec<Chatter> = (0..3).map(|_| Chatter::join(addr)).collect();
    clients[0].send("/who\n");
    assert!(clients[0].line().starts_with("* here (3)"));
    stop.request();
    for (i, client) in clients.iter_mut().enumerate() {
        assert_eq!(
            client.until_closed(),
            SHUTDOWN_NOTICE,
            "{event_loop:?}: client {i}"
        );
    }
    // The listener was closed before anyone was told: no newcomer gets in.
    if let Ok(mut late) = TcpStream::connect_timeout(&addr, TEST_TIMEOUT) {
        late.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        let mut got = String::new();
        let _ = late.read_to_string(&mut got);
        assert_eq!(got, "", "{event_loop:?}: a newcomer after the stop");
    }
    drop(clients); // they close too: each gentle close ends
    plumbing::testing::join_within(server).expect("run returns Ok");
}

/// A member that has not read what was said gets all of it, then the
/// notice: the shutdown flushes what is queued before closing.
pub fn on_stop_a_member_behind_gets_what_was_queued_then_the_notice(event_loop: EventLoop) {
    const LINES: usize = 1000; // 100 KB: more than its 4 KiB window takes
    let options = Options {
        stall_timeout: Duration::from_secs(60),
        join_notices: false,
        ..Options::default()
    };
    let (addr, stop, server) = start_stoppable(event_loop, options);
    let mut behind = BufReader::new(slow_reader(addr)); // guest1
    let mut welcome = String::new();
    behind.read_line(&mut welcome).unwrap();
    let mut talker = Chatter::join(addr); // guest2
    let mut reader = Chatter::join(addr); // guest3
    let line = |i: usize| format!("{i:05} {}\n", "t".repeat(92));
    let said: String = (0..LINES).map(line).collect();
    talker.send(&said);
    for i in 0..LINES {
        // When guest3 has line i, the room has queued it for guest1 too.
        assert_eq!(reader.line(), format!("guest2: {}", line(i)));
    }
    stop.request();
    for i in 0..LINES {
        let mut got = String::new();
        behind.read_line(&mut got).unwrap();
        assert_eq!(
            got,
            format!("guest2: {}", line(i)),
            "{event_loop:?}: line {i}"
        );
    }
    let mut rest = String::new();
    behind.read_to_string(&mut rest).unwrap();
    assert_eq!(rest, SHUTDOWN_NOTICE, "{event_loop:?}");
    drop((behind, talker, reader));
    plumbing::testing::join_within(server).expect("run returns Ok");
}

/// A client that reads the notice but never closes its side cannot hold
/// the server: each gentle close is bounded, and `run` returns anyway.
pub fn on_stop_a_client_that_never_closes_does_not_hold_the_server(event_loop: EventLoop) {
    let (addr, stop, server) = start_stoppable(event_loop, Options::default());
    let mut stubborn = Chatter::join(addr);
    stop.request();
    assert_eq!(stubborn.until_closed(), SHUTDOWN_NOTICE, "{event_loop:?}");
    // Still open on our side: the server gives up waiting for our FIN.
    plumbing::testing::join_within(server).expect("run returns Ok");
    drop(stubborn);
}
