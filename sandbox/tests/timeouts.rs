//! Timeouts, and what non-blocking writes must get right, over loopback.
//! Timing tests assert a range, never an exact duration: the machine may be
//! busy, so "after at least T, and well before T + a few seconds".

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use basic::testing::{SharedOutput, TEST_TIMEOUT, connect};
use sandbox::client::{self, TimeoutFired};
use sandbox::room::Options;
use sandbox::server::EventLoop;
use socket2::{Domain, SockAddr, Socket, Type};

/// Asserts `elapsed` is at least `at_least` and less than 3 s more.
fn assert_took(elapsed: Duration, at_least: Duration) {
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
fn listener_with_full_backlog() -> Option<(TcpListener, Vec<TcpStream>)> {
    let listener = basic::net::listen_on(([127, 0, 0, 1], 0).into(), 1).unwrap();
    let addr = listener.local_addr().unwrap();
    let mut held = Vec::new();
    for _ in 0..64 {
        match TcpStream::connect_timeout(&addr, Duration::from_millis(200)) {
            Ok(stream) => held.push(stream),
            Err(err) if client::is_timeout(&err) => return Some((listener, held)),
            Err(err) => {
                eprintln!("note: a full backlog answered {err}; no hanging connect here");
                return None;
            }
        }
    }
    None
}

#[test]
fn connect_to_a_full_backlog_times_out_after_the_connect_timeout() {
    let Some((listener, _held)) = listener_with_full_backlog() else {
        return; // a system that refuses instead (see above): nothing to time
    };
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let err = client::connect_with_timeout(listener.local_addr().unwrap(), timeout).unwrap_err();
    assert_took(started.elapsed(), timeout);
    let fired = err
        .downcast_ref::<TimeoutFired>()
        .expect("a TimeoutFired error");
    assert_eq!(fired.option, "--connect-timeout");
    assert_eq!(
        err.to_string(),
        format!(
            "cannot connect to {}: no answer within 0.5s (the --connect-timeout of 0.5s fired)",
            listener.local_addr().unwrap()
        )
    );
}

/// A server that accepts one client and says nothing until `release`.
fn silent_server() -> (SocketAddr, mpsc::Sender<()>) {
    let listener = basic::testing::loopback_listener();
    let addr = listener.local_addr().unwrap();
    let (release, released) = mpsc::channel::<()>();
    thread::spawn(move || {
        let (_stream, _) = listener.accept().unwrap();
        let _ = released.recv_timeout(TEST_TIMEOUT); // holds the connection open, silent
    });
    (addr, release)
}

#[test]
fn a_silent_server_ends_the_client_after_the_read_timeout() {
    let (addr, _release) = silent_server();
    let timeout = Duration::from_millis(500);
    let started = Instant::now();
    let output = SharedOutput::default();
    let stream = client::connect_with_timeout(addr, TEST_TIMEOUT).unwrap();
    let err = client::run(stream, &b"hello\n"[..], output.clone(), Some(timeout)).unwrap_err();
    assert_took(started.elapsed(), timeout);
    assert_eq!(
        err.downcast_ref::<TimeoutFired>().unwrap().option,
        "--read-timeout"
    );
    assert!(
        err.to_string()
            .ends_with("(the --read-timeout of 0.5s fired)"),
        "{err}"
    );
    assert!(output.contents().is_empty());
}

#[test]
fn the_client_prints_what_arrives_and_quits_at_the_end_of_input() {
    let addr = start(EventLoop::Readiness, Options::default());
    let output = SharedOutput::default();
    let stream = client::connect_with_timeout(addr, TEST_TIMEOUT).unwrap();
    client::run(
        stream,
        &b"/nick zoe\n"[..],
        output.clone(),
        Some(TEST_TIMEOUT),
    )
    .unwrap();
    let printed = String::from_utf8(output.contents()).unwrap();
    assert!(printed.starts_with("* welcome, guest1"), "{printed}");
    assert!(printed.ends_with("* you are now zoe\n* bye\n"), "{printed}");
}

fn start(event_loop: EventLoop, options: Options) -> SocketAddr {
    basic::testing::start_server(move |listener| {
        sandbox::server::run(listener, event_loop, options)
    })
    .0
}

/// A client socket with a small receive buffer (set before connecting, as
/// TCP fixes its window scale during the handshake), so that the server's
/// writes to it fill up early and become partial.
fn slow_reader(addr: SocketAddr) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&SockAddr::from(addr), TEST_TIMEOUT)
        .unwrap();
    let stream: TcpStream = socket.into();
    stream.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    stream
}

#[test]
fn a_slow_reader_gets_every_byte_in_order_through_partial_writes() {
    for event_loop in [EventLoop::Readiness, EventLoop::Naive] {
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
        // 48 KiB: under the 512 KiB outbox, over what the kernel buffers hold
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
}

#[test]
fn a_reader_that_never_reads_is_dropped_and_the_room_is_told() {
    for event_loop in [EventLoop::Readiness, EventLoop::Naive] {
        let addr = start(event_loop, Options::default());
        let _stuck = slow_reader(addr); // never reads
        let mut talker = BufReader::new(connect(addr));
        let mut line = String::new();
        talker.read_line(&mut line).unwrap(); // welcome
        let mut sender = talker.get_ref().try_clone().unwrap();
        let chunk = format!("{}\n", "y".repeat(1000));
        let flood = thread::spawn(move || {
            // 8 MiB: more than kernel buffers and the 512 KiB outbox hold.
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
        assert_eq!(
            line,
            "* guest1 left (too slow: 524288 bytes waited unread)\n"
        );
        flood.join().unwrap();
    }
}

fn check_output(addr: SocketAddr, idle: Option<Duration>) -> (sandbox::check::Report, String) {
    let mut out = Vec::new();
    let report = sandbox::check::run(addr, Duration::from_secs(2), idle, &mut out);
    (report, String::from_utf8(out).unwrap())
}

#[test]
fn lesson_3_chat_checks_pass_against_both_event_loops() {
    for event_loop in [EventLoop::Readiness, EventLoop::Naive] {
        let addr = start(event_loop, Options::default());
        let (report, out) = check_output(addr, None);
        assert!(report.all_passed(), "{event_loop:?}:\n{out}");
        assert!(
            out.contains(&format!("ok {}\n", multiclients_threaded::check::STALL)),
            "{out}"
        );
    }
}

/// Only the idle checks, against a short idle timeout. (The chat checks
/// would not pass there: their flood reader only reads, so a short idle
/// timeout rightly closes it. Idleness counts what a client *sends*.)
fn idle_check_output(addr: SocketAddr, idle: Duration) -> (sandbox::check::Report, String) {
    let mut out = Vec::new();
    let mut list = basic::checklist::Checklist::new(&mut out);
    sandbox::check::idle_checks(&mut list, addr, Duration::from_secs(2), idle);
    let report = list.finish();
    (report, String::from_utf8(out).unwrap())
}

#[test]
fn idle_checks_pass_against_both_event_loops() {
    let idle = Duration::from_millis(500);
    for event_loop in [EventLoop::Readiness, EventLoop::Naive] {
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
}

#[test]
fn the_idle_check_fails_against_a_server_without_an_idle_timeout() {
    let addr = start(EventLoop::Readiness, Options::default());
    let (report, out) = idle_check_output(addr, Duration::from_millis(300));
    assert_eq!(
        report.failed,
        [sandbox::check::IDLE_CLOSED, sandbox::check::IDLE_ROOM],
        "{out}"
    );
    assert!(
        out.contains("still open 2.3s after its last line; the idle timeout is 0.3s"),
        "{out}"
    );
}
