//! The chat protocol over loopback, run against BOTH event loops: every test
//! here is written once and runs twice, so the loops can only differ in how
//! they find ready sockets, never in what the room does.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use basic::testing::connect;
use sandbox::room::Options;
use sandbox::server::EventLoop;

/// A chat client for tests: writes lines, reads lines, every read bounded.
struct Chatter {
    reader: BufReader<TcpStream>,
    stream: TcpStream,
}

impl Chatter {
    /// Connects and reads the welcome notice, so that later reads see
    /// only what the test provoked.
    fn join(addr: SocketAddr) -> Chatter {
        let stream = connect(addr);
        let reader = BufReader::new(stream.try_clone().unwrap());
        let mut chatter = Chatter { reader, stream };
        let welcome = chatter.line();
        assert!(welcome.starts_with("* welcome, guest"), "{welcome:?}");
        chatter
    }

    fn send(&mut self, line: &str) {
        self.stream.write_all(line.as_bytes()).unwrap();
    }

    /// The next line, with its `\n`; panics after the test timeout.
    fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the server closed the connection"),
            Ok(_) => line,
            Err(err) => panic!("expected a line, got {err} (after {line:?})"),
        }
    }

    /// Renames and waits for the confirmation.
    fn nick(&mut self, name: &str) {
        self.send(&format!("/nick {name}\n"));
        assert_eq!(self.line(), format!("* you are now {name}\n"));
    }

    /// Reads until the server closes; returns what arrived.
    fn until_closed(&mut self) -> String {
        let mut rest = String::new();
        std::io::Read::read_to_string(&mut self.reader, &mut rest)
            .expect("the server should close");
        rest
    }
}

fn start(event_loop: EventLoop, options: Options) -> SocketAddr {
    basic::testing::start_server(move |listener| {
        sandbox::server::run(listener, event_loop, options)
    })
    .0
}

fn both_loops(test: fn(EventLoop)) {
    test(EventLoop::Readiness);
    test(EventLoop::Naive);
}

#[test]
fn a_line_reaches_every_other_client_and_not_the_sender() {
    both_loops(|event_loop| {
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
    });
}

#[test]
fn nick_refuses_taken_and_malformed_names() {
    both_loops(|event_loop| {
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
            "* unknown command /dance; try /nick NAME, /who or /quit\n"
        );
    });
}

#[test]
fn quit_says_bye_closes_and_tells_the_room() {
    both_loops(|event_loop| {
        let addr = start(event_loop, Options::default());
        let mut alice = Chatter::join(addr);
        let mut bob = Chatter::join(addr);
        alice.line(); // bob joined
        bob.nick("bob");
        alice.line(); // guest2 is now bob
        bob.send("/quit\n");
        assert_eq!(bob.until_closed(), "* bye\n");
        assert_eq!(alice.line(), "* bob left (quit)\n");
    });
}

#[test]
fn a_line_split_across_many_writes_arrives_whole() {
    both_loops(|event_loop| {
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
    });
}

#[test]
fn an_over_long_line_is_refused_and_the_others_go_on() {
    both_loops(|event_loop| {
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
    });
}

#[test]
fn over_max_clients_a_newcomer_gets_one_notice_and_is_closed() {
    both_loops(|event_loop| {
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
    });
}

#[test]
fn a_thousand_concurrent_clients_all_receive_a_broadcast() {
    raise_open_file_limit(4_000);
    both_loops(|event_loop| {
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
    });
}

/// 1,000 clients in one process need about 2,000 file descriptors (both ends
/// are here); macOS starts with 256. The rlimit crate raises the soft limit
/// toward the hard one where the system allows (a no-op on Windows).
fn raise_open_file_limit(wanted: u64) {
    if let Err(err) = rlimit::increase_nofile_limit(wanted) {
        eprintln!("note: cannot raise the open-file limit: {err}");
    }
}

#[test]
fn an_idle_client_is_closed_with_a_notice_and_the_room_hears_it() {
    both_loops(|event_loop| {
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
    });
}

#[test]
fn a_client_that_keeps_talking_outlives_the_idle_timeout() {
    let idle = Duration::from_millis(300);
    let addr = start(
        EventLoop::Readiness,
        Options {
            idle_timeout: Some(idle),
            join_notices: false,
            ..Options::default()
        },
    );
    let mut talker = Chatter::join(addr);
    let started = Instant::now();
    // Each /who is activity, and each answer proves the connection is open.
    while started.elapsed() < idle * 3 {
        talker.send("/who\n");
        assert!(talker.line().starts_with("* here (1)"));
        std::thread::sleep(idle / 4); // pacing the talk, not synchronising
    }
    assert!(
        started.elapsed() >= idle * 3,
        "talked past three idle timeouts"
    );
}
