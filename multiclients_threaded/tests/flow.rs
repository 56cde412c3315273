//! Flow control over loopback: bursts reach every reader in full, nobody
//! who reads is disconnected, and only a client that reads nothing for the
//! stall timeout is let go, with a notice it can read.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use common::{Chat, quiet, start};
use multiclients_threaded::server::ServerOptions;
use socket2::{Domain, Protocol, SockAddr, Socket, Type};

const BURST_SENDERS: usize = 4;
const BURST_LINES: usize = 20_000;

#[test]
fn a_burst_of_short_lines_under_long_names_reaches_every_reader_in_full() {
    let addr = start(ServerOptions {
        join_notices: false,
        ..quiet()
    });
    // Four senders with 24-character names: each short line grows about
    // six-fold on its way out, past any single outbox's mark.
    let mut senders: Vec<Chat> = (0..BURST_SENDERS).map(|_| Chat::join(addr).0).collect();
    let names: Vec<String> = (0..BURST_SENDERS)
        .map(|i| format!("sender{i}{}", "n".repeat(17)))
        .collect();
    for (chat, name) in senders.iter_mut().zip(&names) {
        chat.send(&format!("/nick {name}"));
        let renamed = format!("is now known as {name}\n");
        while !chat.line().ends_with(&renamed) {} // others' renames may come first
    }
    let (mut reader, _) = Chat::join(addr);
    reader.send("/who"); // its first line; the answer shows everyone is in
    assert!(reader.line().starts_with("* here (5)"));
    thread::scope(|scope| {
        let writers: Vec<TcpStream> = senders
            .iter()
            .map(|c| c.stream.try_clone().unwrap())
            .collect();
        for mut stream in writers {
            scope.spawn(move || {
                let burst: String = (0..BURST_LINES).map(|k| format!("{k}\n")).collect();
                stream.write_all(burst.as_bytes()).unwrap(); // all at once
            });
        }
        // Every sender also reads the others' bursts, on its own thread.
        for (me, chat) in senders.iter_mut().enumerate() {
            let others: Vec<&str> = names
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != me)
                .map(|(_, n)| n.as_str())
                .collect();
            scope.spawn(move || {
                let notices = chat.expect_numbered(&others, BURST_LINES);
                assert!(
                    !notices.iter().any(|n| n.contains("disconnected")),
                    "{notices:?}"
                );
            });
        }
        let all: Vec<&str> = names.iter().map(String::as_str).collect();
        let notices = reader.expect_numbered(&all, BURST_LINES);
        assert!(
            !notices.iter().any(|n| n.contains("disconnected")),
            "{notices:?}"
        );
    });
    reader.send("/who");
    assert!(
        reader.line().starts_with("* here (5)"),
        "someone was disconnected"
    );
}

#[test]
fn with_a_tiny_memory_budget_a_burst_still_arrives_in_full() {
    // 16 KiB for the whole server: senders wait for the budget all the
    // time, and still nothing is lost and nobody is stuck.
    let addr = start(ServerOptions {
        queue_budget_bytes: 16 * 1024,
        join_notices: false,
        ..quiet()
    });
    let (sender, name) = Chat::join(addr);
    let mut readers: Vec<Chat> = (0..3).map(|_| Chat::join(addr).0).collect();
    for reader in &mut readers {
        reader.send("/who");
        assert!(reader.line().starts_with("* here ("));
    }
    let mut stream = sender.stream.try_clone().unwrap();
    thread::scope(|scope| {
        scope.spawn(move || {
            let burst: String = (0..BURST_LINES).map(|k| format!("{k}\n")).collect();
            stream.write_all(burst.as_bytes()).unwrap();
        });
        for reader in &mut readers {
            let name = &name;
            scope.spawn(move || {
                let notices = reader.expect_numbered(&[name], BURST_LINES);
                assert!(notices.is_empty(), "{notices:?}");
            });
        }
    });
}

/// A client with a 4 KiB receive buffer, which renames to `name`, reads the
/// confirmation and then nothing more.
fn stuck_client(addr: SocketAddr, name: &str) -> TcpStream {
    let socket = Socket::new(Domain::IPV4, Type::STREAM, Some(Protocol::TCP)).unwrap();
    // SO_RCVBUF before connect(): the window is agreed in the handshake.
    socket.set_recv_buffer_size(4096).unwrap();
    socket
        .connect_timeout(&SockAddr::from(addr), plumbing::testing::TEST_TIMEOUT)
        .unwrap();
    let stream: TcpStream = socket.into();
    stream
        .set_read_timeout(Some(plumbing::testing::TEST_TIMEOUT))
        .unwrap();
    let mut welcome = String::new();
    BufReader::new(&stream).read_line(&mut welcome).unwrap();
    assert!(welcome.starts_with("* welcome"), "{welcome:?}");
    (&stream)
        .write_all(format!("/nick {name}\n").as_bytes())
        .unwrap();
    let mut renamed = String::new();
    BufReader::new(&stream).read_line(&mut renamed).unwrap();
    assert!(
        renamed.ends_with(&format!("is now known as {name}\n")),
        "{renamed:?}"
    );
    stream
}

const FLOWING: usize = 100_000;

#[test]
fn a_client_that_never_reads_is_let_go_after_the_stall_timeout_while_100000_lines_flow() {
    let stall_timeout = Duration::from_millis(300);
    let addr = start(ServerOptions {
        stall_timeout,
        ..quiet()
    });
    let stuck = stuck_client(addr, "stuck");
    let (mut a, a_name) = Chat::join(addr);
    let (mut b, b_name) = Chat::join(addr);
    a.send("/who"); // first lines: no first-line timeout for them
    b.send("/who");
    let started = Instant::now();
    // a and b each send 50,000 numbered lines in one go and read the
    // other's, at the same time.
    let (a_notices, b_notices) = thread::scope(|scope| {
        let writers = [&a, &b].map(|c| c.stream.try_clone().unwrap());
        for mut stream in writers {
            scope.spawn(move || {
                let lines: String = (0..FLOWING / 2).map(|k| format!("{k}\n")).collect();
                stream.write_all(lines.as_bytes()).unwrap();
            });
        }
        let reading_a = scope.spawn(|| a.expect_numbered(&[&b_name], FLOWING / 2));
        let b_notices = b.expect_numbered(&[&a_name], FLOWING / 2);
        (reading_a.join().unwrap(), b_notices)
    });
    let dropped = "* stuck was disconnected (stopped reading)\n";
    assert!(a_notices.iter().any(|n| n == dropped), "{a_notices:?}");
    assert!(b_notices.iter().any(|n| n == dropped), "{b_notices:?}");
    assert!(
        started.elapsed() >= stall_timeout,
        "let go before the stall timeout"
    );
    // `stuck` reads at last: what the kernel had buffered for it, then the
    // notice, then the end of the connection.
    let mut received = Vec::new();
    (&stuck)
        .read_to_end(&mut received)
        .expect("a gentle close, not a reset");
    let received = String::from_utf8(received).unwrap();
    let last = received.lines().last().unwrap_or_default();
    assert_eq!(
        last,
        "* you were disconnected: you read nothing for 0.3s while lines waited for you"
    );
    assert!(
        received.len() < FLOWING * 8,
        "it was sent everything: {}",
        received.len()
    );
}

#[test]
fn a_client_that_reads_nothing_is_let_go_no_sooner_than_the_stall_timeout() {
    let stall_timeout = Duration::from_millis(500);
    let addr = start(ServerOptions {
        stall_timeout,
        ..quiet()
    });
    let _stuck = stuck_client(addr, "stuck");
    let (mut a, _) = Chat::join(addr);
    // 2 MiB for `stuck`, which reads none of it: more than the kernel
    // buffers, so its writer's write() blocks and makes no progress.
    let lines: String = (0..2048)
        .map(|k| format!("{k:04} {}\n", "z".repeat(1018)))
        .collect();
    let sending = Instant::now();
    a.stream.write_all(lines.as_bytes()).unwrap();
    a.expect("* stuck was disconnected (stopped reading)\n");
    assert!(sending.elapsed() >= stall_timeout, "let go too soon");
}

#[test]
fn two_clients_that_never_read_are_both_let_go_and_the_room_hears_of_both() {
    let addr = start(ServerOptions {
        stall_timeout: Duration::from_millis(300),
        join_notices: false,
        ..quiet()
    });
    let _first = stuck_client(addr, "stuck1");
    let _second = stuck_client(addr, "stuck2");
    let (a, a_name) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    b.send("/who");
    assert!(b.line().starts_with("* here (4)"));
    // 2 MiB from a, read by b as it arrives; the stuck two read nothing.
    thread::scope(|scope| {
        let mut stream = &a.stream;
        scope.spawn(move || {
            let text: String = (0..2048)
                .map(|k| format!("{k}\n{}\n", "w".repeat(1000)))
                .collect();
            stream.write_all(text.as_bytes()).unwrap();
        });
        for k in 0..2048 {
            assert_eq!(b.chat_line(), format!("{a_name}: {k}\n"));
            assert!(b.chat_line().starts_with(&format!("{a_name}: www")));
        }
    });
    for name in ["stuck1", "stuck2"] {
        let dropped = format!("* {name} was disconnected (stopped reading)\n");
        assert!(b.notices.contains(&dropped), "{:?}", b.notices);
    }
    b.send("/who");
    assert!(b.line().starts_with("* here (2)"));
}
