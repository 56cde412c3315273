//! The homework's tests: every test here belongs to one exercise, and its
//! name says which (`exercise_03_...`). `cargo run -p homework -- progress`
//! runs them all and says which exercises pass.
//!
//! Each test runs inside [`exercise`], which turns any failure, and a test
//! that runs too long (an endless loop), into a message that names the
//! exercise and says where its guide is. When the grader runs a test, the
//! wrapper also takes the grader's key before any exercise code runs, and
//! hands it back only once the test passed (`homework::verdict`): that, not
//! what the process prints, is what grading counts.

mod common;

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::*;
use mio::{Events, Interest, Poll, Token};
use plumbing::testing::{SharedOutput, TEST_TIMEOUT, connect, run_command};
use sandbox::client::{self, TimeoutFired};
use sandbox::closing;
use sandbox::datagram::{self, RequestError, Requester, RetryPolicy};
use sandbox::framing::{FrameBuffer, FrameTooLong, MAX_FRAME_BYTES};
use sandbox::liveness::{self, Liveness, SendError};
use sandbox::outbox::HIGH_WATER_BYTES;
use sandbox::room::{Options, Room};
use sandbox::send_queue::{self, Flush, SendQueue};
use sandbox::server::EventLoop::{Naive, Readiness};
use socket2::{Domain, SockRef, Socket, Type};

/// The longest one exercise test may take before it counts as stuck.
const EXERCISE_TEST_LIMIT: Duration = Duration::from_secs(60);

/// Runs `test` for exercise `number`; on failure, fails naming the exercise.
fn exercise(number: u32, test: impl FnOnce() + Send + 'static) {
    // First, before any exercise code can run: graded runs only.
    let grading_key = homework::verdict::take_key();
    remember_stub_panics();
    let about = homework::exercise(number).expect("the exercise is listed");
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(test));
        let _ = done.send(result.err().map(|cause| panic_text(&*cause)));
    });
    let symptom = match finished.recv_timeout(EXERCISE_TEST_LIMIT) {
        Ok(None) => {
            if let Some(key) = grading_key {
                homework::verdict::record_pass(&key);
            }
            return;
        }
        Ok(Some(symptom)) => symptom,
        Err(_) => {
            format!("the test did not finish within {EXERCISE_TEST_LIMIT:?} (an endless loop?)")
        }
    };
    // A stub's todo!() may have fired on a server thread: that is the cause,
    // and what the test saw (a closed connection, say) only its symptom.
    let why = match stub_panic(number) {
        Some(stub) => format!("{stub}\n         (so the test saw: {symptom})"),
        None => symptom,
    };
    panic!(
        "\n\nexercise {number} ({}) is not done yet, or not right.\n  why:   {why}\n  guide: {}\n  code:  {}\n  hint:  cargo run -p homework -- hint {number}\n",
        about.title,
        about.hint_location(),
        about.code
    );
}

/// Panics of stubs (`not yet implemented: exercise N: ...`), on any thread.
static STUB_PANICS: Mutex<Vec<String>> = Mutex::new(Vec::new());

/// Installs, once, a panic hook that remembers stub panics and then prints
/// as usual.
fn remember_stub_panics() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        let print_as_usual = panic::take_hook();
        panic::set_hook(Box::new(move |info| {
            let text = panic_text(info.payload());
            if text.contains("not yet implemented: exercise ") {
                STUB_PANICS
                    .lock()
                    .unwrap_or_else(|poisoned| poisoned.into_inner())
                    .push(text);
            }
            print_as_usual(info);
        }));
    });
}

fn stub_panic(number: u32) -> Option<String> {
    let stubs = STUB_PANICS
        .lock()
        .unwrap_or_else(|poisoned| poisoned.into_inner());
    let mark = format!("exercise {number}:");
    stubs.iter().find(|text| text.contains(&mark)).cloned()
}

fn panic_text(cause: &(dyn std::any::Any + Send)) -> String {
    match (cause.downcast_ref::<&str>(), cause.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "the test panicked".into(),
    }
}

fn quiet() -> Options {
    Options {
        join_notices: false,
        ..Options::default()
    }
}

// Exercise 1: a connect timeout.

#[test]
fn exercise_01_connect_to_a_full_backlog_times_out_after_the_connect_timeout() {
    exercise(1, || {
        let Some((listener, _held)) = listener_with_full_backlog() else {
            return; // a system that refuses instead (see the helper): nothing to time
        };
        let addr = listener.local_addr().unwrap();
        let timeout = Duration::from_millis(500);
        let started = Instant::now();
        let err = client::connect_with_timeout(addr, timeout).unwrap_err();
        assert_took(started.elapsed(), timeout);
        let fired = err
            .downcast_ref::<TimeoutFired>()
            .expect("a TimeoutFired error");
        assert_eq!(fired.option, "--connect-timeout");
        assert_eq!(
            err.to_string(),
            format!(
                "cannot connect to {addr}: no answer within 0.5s (the --connect-timeout of 0.5s fired)"
            )
        );
    });
}

#[test]
fn exercise_01_a_connect_timeout_still_connects_to_a_listening_server() {
    exercise(1, || {
        let listener = plumbing::testing::loopback_listener();
        let stream =
            client::connect_with_timeout(listener.local_addr().unwrap(), TEST_TIMEOUT).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    });
}

#[test]
fn exercise_01_a_refused_connect_is_an_error_but_not_a_timeout() {
    exercise(1, || {
        let addr = plumbing::testing::loopback_listener().local_addr().unwrap(); // closed at once
        let err = client::connect_with_timeout(addr, TEST_TIMEOUT).unwrap_err();
        assert!(err.downcast_ref::<TimeoutFired>().is_none(), "{err:#}");
        assert!(
            format!("{err:#}").starts_with(&format!("cannot connect to {addr}")),
            "{err:#}"
        );
    });
}

// Exercise 2: a read timeout that says so.

#[test]
fn exercise_02_is_timeout_knows_both_spellings_of_a_timeout() {
    exercise(2, || {
        use std::io::{Error, ErrorKind};
        assert!(
            client::is_timeout(&Error::from(ErrorKind::WouldBlock)),
            "Unix says WouldBlock"
        );
        assert!(
            client::is_timeout(&Error::from(ErrorKind::TimedOut)),
            "Windows says TimedOut"
        );
        assert!(!client::is_timeout(&Error::from(
            ErrorKind::ConnectionReset
        )));
    });
}

#[test]
fn exercise_02_a_silent_server_ends_the_client_after_the_read_timeout() {
    exercise(2, || {
        let (addr, _release) = silent_server();
        let timeout = Duration::from_millis(500);
        let started = Instant::now();
        let output = SharedOutput::default();
        let err = client::run(
            connect(addr),
            &b"hello\n"[..],
            output.clone(),
            Some(timeout),
        )
        .unwrap_err();
        assert_took(started.elapsed(), timeout);
        let fired = err
            .downcast_ref::<TimeoutFired>()
            .expect("a TimeoutFired error");
        assert_eq!(fired.option, "--read-timeout");
        assert!(
            err.to_string()
                .ends_with("(the --read-timeout of 0.5s fired)"),
            "{err}"
        );
        assert!(output.contents().is_empty());
    });
}

#[test]
fn exercise_02_the_client_binary_says_which_timeout_fired_in_one_line() {
    exercise(2, || {
        let listener = plumbing::testing::loopback_listener(); // accepts (in the backlog), never speaks
        let port = listener.local_addr().unwrap().port().to_string();
        let client = run_command(
            SANDBOX,
            &["client", "--port", &port, "--read-timeout", "0.3"],
            b"",
        );
        assert!(!client.status.success());
        assert!(
            client.stderr.starts_with(
                "error: the server sent nothing for 0.3s (the --read-timeout of 0.3s fired)"
            ),
            "{}",
            client.stderr
        );
        assert_eq!(client.stderr.lines().count(), 1, "{}", client.stderr);
    });
}

// Exercise 3: reconnect with backoff.

#[test]
fn exercise_03_backoff_doubles_from_100_ms_up_to_5_s() {
    exercise(3, || {
        let millis: Vec<u128> = (0..9)
            .map(|retry| client::backoff(retry).as_millis())
            .collect();
        assert_eq!(millis, [100, 200, 400, 800, 1600, 3200, 5000, 5000, 5000]);
        assert_eq!(
            client::backoff(40),
            Duration::from_secs(5),
            "no overflow on retry 40"
        );
    });
}

#[test]
fn exercise_03_connect_with_retry_waits_the_backoff_between_attempts() {
    exercise(3, || {
        let mut attempts = 0;
        let mut waits = Vec::new();
        let connected = client::connect_with_retry(
            || {
                attempts += 1;
                match attempts {
                    1..=3 => Err(anyhow::anyhow!("attempt {attempts} refused")),
                    _ => Ok("connected"),
                }
            },
            5,
            |wait| waits.push(wait.as_millis()),
        );
        assert_eq!(connected.unwrap(), "connected");
        assert_eq!(attempts, 4);
        assert_eq!(waits, [100, 200, 400]);
    });
}

#[test]
fn exercise_03_connect_with_retry_gives_up_with_the_last_error() {
    exercise(3, || {
        let mut attempts = 0;
        let mut waits = 0;
        let result: anyhow::Result<()> = client::connect_with_retry(
            || {
                attempts += 1;
                Err(anyhow::anyhow!("attempt {attempts} refused"))
            },
            2,
            |_| waits += 1,
        );
        assert_eq!(result.unwrap_err().to_string(), "attempt 3 refused");
        assert_eq!((attempts, waits), (3, 2), "one try, then two retries");
    });
}

#[test]
fn exercise_03_a_client_gets_in_once_the_server_is_back() {
    exercise(3, || {
        // A port that was just free: nothing listens there yet.
        let port = plumbing::testing::loopback_listener()
            .local_addr()
            .unwrap()
            .port();
        let mut server = None;
        let stream = client::connect_with_retry(
            || basic::net::connect("127.0.0.1", port),
            5,
            |wait| {
                // The server comes back while the client waits to retry.
                if server.is_none() {
                    server = Some(
                        basic::net::listen("127.0.0.1", port, 8).expect("the port is free again"),
                    );
                }
                thread::sleep(wait); // the backoff itself, as the client waits it
            },
        );
        let listener = server.expect("at least one retry happened");
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer, stream.unwrap().local_addr().unwrap());
    });
}

// Exercise 4: accept until WouldBlock (the naive loop runs the chat tests).

#[test]
fn exercise_04_the_naive_loop_delivers_a_line_to_every_other_client() {
    exercise(4, || {
        a_line_reaches_every_other_client_and_not_the_sender(Naive)
    });
}

#[test]
fn exercise_04_the_naive_loop_refuses_taken_and_malformed_names() {
    exercise(4, || nick_refuses_taken_and_malformed_names(Naive));
}

#[test]
fn exercise_04_the_naive_loop_says_bye_and_tells_the_room() {
    exercise(4, || quit_says_bye_closes_and_tells_the_room(Naive));
}

#[test]
fn exercise_04_the_naive_loop_reassembles_a_line_split_across_writes() {
    exercise(4, || a_line_split_across_many_writes_arrives_whole(Naive));
}

#[test]
fn exercise_04_the_naive_loop_refuses_an_over_long_line() {
    exercise(4, || {
        an_over_long_line_is_refused_and_the_others_go_on(Naive)
    });
}

#[test]
fn exercise_04_the_naive_loop_serves_a_thousand_clients_connecting_at_once() {
    exercise(4, || {
        a_thousand_concurrent_clients_all_receive_a_broadcast(Naive)
    });
}

#[test]
fn exercise_04_the_naive_loop_gets_every_byte_to_a_slow_reader() {
    exercise(4, || {
        a_slow_reader_gets_every_byte_in_order_through_partial_writes(Naive)
    });
}

#[test]
fn exercise_04_the_naive_loop_drops_a_reader_that_never_reads() {
    exercise(4, || {
        a_reader_that_never_reads_is_dropped_and_the_room_is_told(Naive)
    });
}

// Exercise 5: an idle timeout.

#[test]
fn exercise_05_an_idle_client_is_closed_with_a_notice_and_the_room_hears_it() {
    exercise(5, || {
        an_idle_client_is_closed_with_a_notice_and_the_room_hears_it(Readiness)
    });
}

#[test]
fn exercise_05_the_idle_checks_pass() {
    exercise(5, || idle_checks_pass(Readiness));
}

#[test]
fn exercise_05_a_client_that_keeps_talking_outlives_the_idle_timeout() {
    exercise(5, || {
        let idle = Duration::from_millis(300);
        let addr = start(
            Readiness,
            Options {
                idle_timeout: Some(idle),
                ..quiet()
            },
        );
        let mut talker = Chatter::join(addr);
        let started = Instant::now();
        // Each /who is activity, and each answer proves the connection is open.
        while started.elapsed() < idle * 3 {
            talker.send("/who\n");
            assert!(talker.line().starts_with("* here (1)"));
            thread::sleep(idle / 4); // pacing the talk, not synchronising
        }
    });
}

// Exercise 6: a full room.

#[test]
fn exercise_06_over_max_clients_a_newcomer_gets_one_notice_and_is_closed() {
    exercise(6, || {
        over_max_clients_a_newcomer_gets_one_notice_and_is_closed(Readiness)
    });
}

#[test]
fn exercise_06_a_place_freed_by_a_leaver_lets_the_next_client_in() {
    exercise(6, || {
        let addr = start(
            Readiness,
            Options {
                max_clients: 1,
                ..quiet()
            },
        );
        let mut first = Chatter::join(addr);
        let mut refused = String::new();
        connect(addr).read_to_string(&mut refused).unwrap();
        assert_eq!(refused, "* the room is full (1 clients); try again later\n");
        first.send("/quit\n");
        first.until_closed();
        let mut next = Chatter::join(addr);
        next.send("/who\n");
        assert!(next.line().starts_with("* here (1): "));
    });
}

// Exercise 7: an action with /me.

#[test]
fn exercise_07_me_reaches_the_whole_room_sender_included() {
    exercise(7, || {
        let addr = start(Readiness, quiet());
        let mut alice = Chatter::join(addr);
        let mut bob = Chatter::join(addr);
        alice.nick("alice");
        assert_eq!(bob.line(), "* guest1 is now alice\n");
        alice.send("/me waves\n");
        assert_eq!(alice.line(), "* alice waves\n");
        assert_eq!(bob.line(), "* alice waves\n");
    });
}

#[test]
fn exercise_07_me_without_an_action_tells_only_the_sender_how() {
    exercise(7, || {
        let addr = start(Readiness, quiet());
        let mut alice = Chatter::join(addr);
        let mut bob = Chatter::join(addr);
        for empty in ["/me\n", "/me  \n"] {
            alice.send(empty);
            let answer = alice.line();
            assert!(
                answer.starts_with("* ") && answer.contains("/me"),
                "{empty:?}: {answer:?}"
            );
            assert!(
                !answer.contains("unknown") && !answer.contains("not done"),
                "{empty:?}: {answer:?}"
            );
        }
        // Bob heard nothing: his next line answers his own /who.
        bob.send("/who\n");
        assert!(bob.line().starts_with("* here (2)"));
    });
}

// Exercise 8: a private message with /msg.

#[test]
fn exercise_08_msg_reaches_only_the_named_client() {
    exercise(8, || {
        let addr = start(Readiness, quiet());
        let mut alice = Chatter::join(addr);
        let mut bob = Chatter::join(addr);
        let mut carol = Chatter::join(addr);
        alice.nick("alice");
        bob.line();
        carol.line();
        bob.nick("bob");
        alice.line();
        carol.line();
        alice.send("/msg bob see you at 5\n");
        assert_eq!(bob.line(), "alice (private): see you at 5\n");
        assert_eq!(alice.line(), "* to bob: see you at 5\n");
        carol.send("/who\n");
        assert!(
            carol.line().starts_with("* here (3)"),
            "carol heard nothing private"
        );
    });
}

#[test]
fn exercise_08_msg_to_nobody_or_without_text_gets_a_notice() {
    exercise(8, || {
        let addr = start(Readiness, quiet());
        let mut alice = Chatter::join(addr);
        alice.send("/msg zed hello?\n");
        assert_eq!(alice.line(), "* nobody here is called \"zed\"\n");
        for unfinished in ["/msg\n", "/msg zed\n"] {
            alice.send(unfinished);
            assert_eq!(alice.line(), "* usage: /msg NAME TEXT\n", "{unfinished:?}");
        }
    });
}

// Exercise 9: length-prefixed framing.

#[test]
fn exercise_09_a_frame_written_byte_by_byte_comes_out_whole() {
    exercise(9, || {
        let mut frames = FrameBuffer::default();
        for byte in [0, 0, 0, 5, b'h', b'e', b'l', b'l'] {
            frames.extend(&[byte]);
            assert_eq!(frames.next_frame(), None, "not complete yet");
        }
        frames.extend(b"o");
        assert_eq!(frames.next_frame(), Some(Ok(b"hello".to_vec())));
        assert_eq!(frames.unfinished(), b"");
    });
}

#[test]
fn exercise_09_two_frames_in_one_read_come_out_in_order() {
    exercise(9, || {
        let mut frames = FrameBuffer::default();
        frames.extend(&[0, 0, 0, 2, b'h', b'i', 0, 0, 0, 3, b'y', b'o', b'u', 0, 0]);
        assert_eq!(frames.next_frame(), Some(Ok(b"hi".to_vec())));
        assert_eq!(frames.next_frame(), Some(Ok(b"you".to_vec())));
        assert_eq!(frames.next_frame(), None);
        assert_eq!(
            frames.unfinished(),
            [0, 0],
            "the start of a third prefix waits"
        );
    });
}

#[test]
fn exercise_09_empty_payloads_and_newlines_inside_are_fine() {
    exercise(9, || {
        let mut frames = FrameBuffer::default();
        frames.extend(&[0, 0, 0, 0, 0, 0, 0, 3, b'a', b'\n', b'b']);
        assert_eq!(frames.next_frame(), Some(Ok(Vec::new())));
        assert_eq!(
            frames.next_frame(),
            Some(Ok(b"a\nb".to_vec())),
            "a newline is just a byte here"
        );
    });
}

#[test]
fn exercise_09_an_oversized_length_is_refused_before_its_payload_arrives() {
    exercise(9, || {
        let mut frames = FrameBuffer::default();
        let declared = MAX_FRAME_BYTES + 1;
        frames.extend(&(declared as u32).to_be_bytes());
        assert_eq!(frames.next_frame(), Some(Err(FrameTooLong(declared))));
        let mut huge = FrameBuffer::default();
        huge.extend(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(
            huge.next_frame(),
            Some(Err(FrameTooLong(u32::MAX as usize)))
        );
    });
}

#[test]
fn exercise_09_what_encode_writes_next_frame_reads() {
    exercise(9, || {
        let mut frames = FrameBuffer::default();
        frames.extend(&sandbox::framing::encode(b"round trip"));
        assert_eq!(frames.next_frame(), Some(Ok(b"round trip".to_vec())));
    });
}

// The binary, with the exercises' options.

#[test]
fn exercise_05_the_check_binary_finds_the_idle_timeout_of_the_server_binary() {
    exercise(5, || {
        // The idle timeout must exceed the longest chat check: in the flood
        // check one client only reads for a few seconds, and reading is not talking.
        let server = plumbing::testing::ServerProcess::start(
            SANDBOX,
            &["server", "--port", "0", "--idle-timeout", "6"],
        );
        let port = server.addr.port().to_string();
        let args = [
            "check",
            "--port",
            &port,
            "--timeout",
            "2",
            "--idle-timeout",
            "6",
        ];
        let out = run_bounded(&args, Duration::from_secs(40));
        // Only the idle checks: the chat checks' flood needs back-pressure,
        // which is exercise 14 (its tests run the whole check).
        for idle_check in [
            sandbox::check::IDLE_CLOSED,
            sandbox::check::IDLE_ROOM,
            sandbox::check::IDLE_TALKER,
        ] {
            assert!(out.contains(&format!("ok {idle_check}\n")), "{out}");
        }
    });
}

#[test]
fn exercise_04_the_client_binary_chats_through_the_naive_server_binary() {
    exercise(4, || {
        let server = plumbing::testing::ServerProcess::start(
            SANDBOX,
            &["server", "--port", "0", "--event-loop", "naive"],
        );
        let port = server.addr.port().to_string();
        let args = ["client", "--port", &port, "--name", "ada"];
        let client = run_command(SANDBOX, &args, b"/who\n");
        assert!(client.status.success(), "{}", client.stderr);
        let out = String::from_utf8_lossy(&client.stdout);
        assert!(
            out.contains("* you are now ada\n* here (1): ada\n* bye\n"),
            "{out}"
        );
        server.expect_line("ada left (quit)");
    });
}

#[cfg(unix)]
#[test]
fn exercise_04_out_of_file_descriptors_the_naive_loop_logs_it_and_goes_on() {
    exercise(4, || {
        out_of_file_descriptors_accept_fails_is_logged_and_the_server_goes_on("naive")
    });
}

#[test]
fn exercise_01_the_client_binary_connects_with_a_connect_timeout() {
    exercise(1, || {
        let server = plumbing::testing::ServerProcess::start(SANDBOX, &["server", "--port", "0"]);
        let port = server.addr.port().to_string();
        let client = run_command(
            SANDBOX,
            &["client", "--port", &port, "--connect-timeout", "5"],
            b"hi\n",
        );
        assert!(client.status.success(), "{}", client.stderr);
        let mut out = Vec::new();
        out.write_all(&client.stdout).unwrap();
        assert!(String::from_utf8_lossy(&out).ends_with("* bye\n"));
    });
}

// ----- sockets for the tests of exercises 10 to 13 -----

/// A connected pair on loopback: `(ours, peer)`, both blocking, the peer
/// with a read timeout.
fn loopback_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // The handshake is complete: the connection waits in the backlog.
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    (ours, peer)
}

/// The smallest buffers we ask for (the kernel may round them up: Linux
/// doubles them, and has a floor of a few KiB).
const SMALL_BUFFER_BYTES: usize = 8 * 1024;

/// Like [`loopback_pair`], but with small buffers: our send buffer and the
/// peer's receive buffer, so that a peer that does not read stops us soon.
fn small_buffered_pair() -> (TcpStream, TcpStream) {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    // On the listener, before `listen`: accepted sockets inherit it, and
    // the window they announce in the handshake is already small.
    listener.set_recv_buffer_size(SMALL_BUFFER_BYTES).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let ours = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    ours.set_send_buffer_size(SMALL_BUFFER_BYTES).unwrap();
    ours.connect_timeout(&addr, TEST_TIMEOUT).unwrap();
    let (peer, _) = listener.accept().unwrap();
    let peer: TcpStream = peer.into();
    peer.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    (ours.into(), peer)
}

/// `len` bytes that show any loss, duplication or reordering: the
/// big-endian counters 0, 1, 2, ...
fn numbered_bytes(len: usize) -> Vec<u8> {
    (0u32..)
        .flat_map(u32::to_be_bytes)
        .take(len)
        .collect::<Vec<u8>>()
}

/// Asserts `received == sent`, saying where they first differ.
fn assert_same_bytes(received: &[u8], sent: &[u8]) {
    if let Some(at) = received.iter().zip(sent).position(|(r, s)| r != s) {
        panic!("byte {at} differs: bytes were lost, duplicated or reordered");
    }
    assert_eq!(received.len(), sent.len(), "received as many bytes as sent");
}

/// Reads in small pieces until EOF (a slow reader), on its own thread.
fn read_until_eof_in_small_pieces(
    mut peer: TcpStream,
    start: Option<mpsc::Receiver<()>>,
) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        if let Some(start) = start {
            // Wait (bounded) until the writer has filled every buffer.
            if start.recv_timeout(TEST_TIMEOUT).is_err() {
                return Ok(Vec::new()); // the writer failed: it says why
            }
        }
        let mut received = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            match peer.read(&mut buf)? {
                0 => return Ok(received),
                n => received.extend_from_slice(&buf[..n]),
            }
        }
    })
}

fn join<T>(handle: thread::JoinHandle<T>) -> T {
    handle.join().expect("the helper thread panicked")
}

// ----- Exercise 10: a send queue on a non-blocking socket -----

/// A socket stand-in: takes at most `per_call` bytes per `write`, and says
/// `WouldBlock` once `budget` bytes are taken in all.
struct Stingy {
    taken: Vec<u8>,
    per_call: usize,
    budget: usize,
    calls: usize,
    last_said_would_block: bool,
}

impl Stingy {
    fn new(per_call: usize, budget: usize) -> Stingy {
        Stingy {
            taken: Vec::new(),
            per_call,
            budget,
            calls: 0,
            last_said_would_block: false,
        }
    }
}

impl Write for Stingy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        let room = self.budget - self.taken.len();
        let n = buf.len().min(self.per_call).min(room);
        self.last_said_would_block = n == 0;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn exercise_10_short_writes_keep_exactly_the_rest_in_order() {
    exercise(10, || {
        let mut queue = SendQueue::default();
        let mut socket = Stingy::new(3, 8);
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flush::Done);
        assert_eq!(socket.calls, 0, "an empty queue writes nothing");

        queue.queue(b"hello, ");
        queue.queue(b"world\n");
        // 3 + 3 + 2 bytes taken, then WouldBlock with 5 left.
        assert_eq!(
            queue.write_to(&mut socket).unwrap(),
            Flush::WantsWritable { waiting: 5 }
        );
        assert_eq!(socket.taken, b"hello, w");
        assert!(
            socket.last_said_would_block,
            "write until the socket says WouldBlock, not less"
        );
        assert_eq!(queue.waiting(), 5);

        // More queued while waiting goes after what waits.
        queue.queue(b"bye\n");
        socket.budget = usize::MAX;
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flush::Done);
        assert_eq!(socket.taken, b"hello, world\nbye\n");
        assert!(queue.is_empty());
    });
}

/// A socket stand-in that answers with `script`, in turn, then takes all.
struct Scripted {
    script: Vec<io::Result<usize>>,
    taken: Vec<u8>,
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.script.is_empty() {
            self.taken.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let answer = self.script.remove(0)?;
        self.taken.extend_from_slice(&buf[..answer]);
        Ok(answer)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn exercise_10_interrupted_is_retried_and_a_zero_write_is_an_error() {
    exercise(10, || {
        let mut queue = SendQueue::default();
        queue.queue(b"signal");
        let mut socket = Scripted {
            script: vec![Err(io::ErrorKind::Interrupted.into()), Ok(2)],
            taken: Vec::new(),
        };
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flush::Done);
        assert_eq!(socket.taken, b"signal");

        queue.queue(b"stuck");
        let mut full = Scripted {
            script: vec![Ok(0)],
            taken: Vec::new(),
        };
        let err = queue.write_to(&mut full).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(queue.waiting(), 5, "nothing was taken, nothing dropped");

        let mut broken = Scripted {
            script: vec![Err(io::ErrorKind::ConnectionReset.into())],
            taken: Vec::new(),
        };
        let err = queue.write_to(&mut broken).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    });
}

#[test]
fn exercise_10_a_slow_reader_gets_every_byte_once_in_order() {
    exercise(10, || {
        const SOCKET: Token = Token(0);
        let (ours, peer) = small_buffered_pair();
        let (start_reading, reader_start) = mpsc::channel();
        let reader = read_until_eof_in_small_pieces(peer, Some(reader_start));
        ours.set_nonblocking(true).unwrap();
        let mut stream = mio::net::TcpStream::from_std(ours);
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut stream, SOCKET, Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);

        let sent = numbered_bytes(4 * 1024 * 1024);
        let mut queue = SendQueue::default();
        queue.queue(&sent);
        let mut waits = 0;
        while let Flush::WantsWritable { waiting } = queue.write_to(&mut stream).unwrap() {
            assert!(waiting > 0 && waiting < sent.len(), "waiting: {waiting}");
            if waits == 0 {
                // The reader has read nothing: the buffers are full. Now read.
                start_reading.send(()).unwrap();
            }
            waits += 1;
            // Sleep in poll until the kernel has room again (bounded).
            let deadline = Instant::now() + TEST_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "the socket never became writable again");
                poll.poll(&mut events, Some(left)).unwrap();
                if events.iter().any(|event| event.token() == SOCKET) {
                    break;
                }
            }
        }
        assert!(
            waits > 0,
            "4 MiB cannot fit in the buffers: WouldBlock came"
        );
        stream.shutdown(Shutdown::Write).unwrap(); // the reader's EOF
        let received = join(reader).expect("the reader read to EOF");
        assert_same_bytes(&received, &sent);
    });
}

#[test]
fn exercise_10_send_all_waits_for_writability_until_all_is_sent() {
    exercise(10, || {
        let (ours, peer) = small_buffered_pair();
        let reader = read_until_eof_in_small_pieces(peer, None);
        ours.set_nonblocking(true).unwrap();
        let mut stream = mio::net::TcpStream::from_std(ours);
        let sent = numbered_bytes(1024 * 1024);
        send_queue::send_all(&mut stream, &sent, TEST_TIMEOUT).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let received = join(reader).expect("the reader read to EOF");
        assert_same_bytes(&received, &sent);
    });
}

// ----- Exercise 11: half-close versus reset -----

#[test]
fn exercise_11_after_finish_sending_the_peer_reads_eof_and_still_answers() {
    exercise(11, || {
        let (mut ours, mut peer) = loopback_pair();
        let answerer = thread::spawn(move || {
            // read_to_end returns at EOF only: proof that our FIN came.
            let mut question = Vec::new();
            peer.read_to_end(&mut question)?;
            // Our FIN closed only our direction: the peer can still write.
            peer.write_all(b"answer: 42\n")?;
            Ok::<_, io::Error>(question) // dropping `peer` closes: its FIN
        });
        ours.write_all(b"question?\n").unwrap();
        let last_words = closing::finish_sending(&mut ours, TEST_TIMEOUT, 1024).unwrap();
        assert_eq!(String::from_utf8_lossy(&last_words), "answer: 42\n");
        let question = join(answerer).expect("the peer read our question to EOF");
        assert_eq!(String::from_utf8_lossy(&question), "question?\n");
    });
}

#[test]
fn exercise_11_finish_sending_gives_up_on_a_peer_that_never_closes() {
    exercise(11, || {
        let (mut ours, mut peer) = loopback_pair();
        let (release, released) = mpsc::channel::<()>();
        let lingerer = thread::spawn(move || {
            let mut question = Vec::new();
            peer.read_to_end(&mut question)?;
            peer.write_all(b"still here")?;
            let _ = released.recv_timeout(TEST_TIMEOUT); // holds the connection open
            Ok::<_, io::Error>(())
        });
        let err = closing::finish_sending(&mut ours, Duration::from_millis(300), 1024)
            .expect_err("the peer never closes");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        release.send(()).unwrap();
        join(lingerer).unwrap();
    });
}

#[test]
fn exercise_11_finish_sending_refuses_a_peer_that_says_too_much() {
    exercise(11, || {
        let (mut ours, mut peer) = loopback_pair();
        let (release, released) = mpsc::channel::<()>();
        let talker = thread::spawn(move || {
            peer.write_all(&[b'x'; 10_000])?;
            let _ = released.recv_timeout(TEST_TIMEOUT);
            Ok::<_, io::Error>(())
        });
        let err = closing::finish_sending(&mut ours, TEST_TIMEOUT, 100)
            .expect_err("10,000 bytes is over the limit of 100");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        release.send(()).unwrap();
        join(talker).unwrap();
    });
}

#[test]
fn exercise_11_abort_resets_where_a_close_would_say_eof() {
    exercise(11, || {
        // First the contrast: a plain close is a FIN, which reads as EOF.
        let (ours, mut peer) = loopback_pair();
        drop(ours);
        assert_eq!(peer.read(&mut [0u8; 16]).unwrap(), 0, "a close is EOF");

        let (ours, mut peer) = loopback_pair();
        closing::abort(ours).unwrap();
        let err = peer
            .read(&mut [0u8; 16])
            .expect_err("after a RST, read fails instead of saying EOF");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    });
}

#[test]
fn exercise_11_abort_discards_what_we_had_not_read() {
    exercise(11, || {
        let (ours, mut peer) = loopback_pair();
        peer.write_all(b"you will never read this").unwrap();
        // peek waits (bounded) until the bytes are in our receive buffer,
        // and leaves them there, unread.
        ours.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        assert!(ours.peek(&mut [0u8; 8]).unwrap() > 0);
        closing::abort(ours).unwrap();
        let err = peer
            .read(&mut [0u8; 16])
            .expect_err("the connection is reset");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        // The connection is gone on this side too: nothing more can be sent.
        assert!(
            peer.write_all(b"hello?").is_err(),
            "writing after a RST fails"
        );
    });
}

// ----- Exercise 12: a write timeout and keepalive -----

fn quick_to_stall() -> Liveness {
    Liveness {
        write_timeout: Duration::from_millis(200),
        ..Liveness::default()
    }
}

#[test]
fn exercise_12_a_peer_that_stops_reading_makes_send_fail_as_stalled() {
    exercise(12, || {
        let (mut ours, _peer_that_never_reads) = small_buffered_pair();
        liveness::configure(&ours, &quick_to_stall()).unwrap();
        let total = 8 * 1024 * 1024;
        let err = liveness::send(&mut ours, &numbered_bytes(total))
            .expect_err("8 MiB cannot fit in the buffers of a peer that never reads");
        let SendError::Stalled { after, sent } = err else {
            panic!("expected SendError::Stalled, got: {err}");
        };
        assert!(after > Duration::ZERO, "after: {after:?}");
        // Not `0 < sent`: on Windows a blocking send is all or nothing.
        assert!(sent < total, "sent {sent} of {total}");
        let message = err.to_string();
        assert!(
            message.contains("stopped reading") && message.contains("SO_SNDTIMEO"),
            "the message says what happened and which option fired: {message}"
        );
    });
}

#[test]
fn exercise_12_a_peer_that_reads_gets_every_byte() {
    exercise(12, || {
        let (mut ours, peer) = small_buffered_pair();
        let reader = read_until_eof_in_small_pieces(peer, None);
        liveness::configure(&ours, &Liveness::default()).unwrap();
        let sent = numbered_bytes(1024 * 1024);
        liveness::send(&mut ours, &sent).unwrap();
        ours.shutdown(Shutdown::Write).unwrap();
        let received = join(reader).expect("the reader read to EOF");
        assert_same_bytes(&received, &sent);
    });
}

#[test]
fn exercise_12_the_settings_read_back_from_the_socket() {
    exercise(12, || {
        let (ours, _peer) = loopback_pair();
        let settings = Liveness {
            write_timeout: Duration::from_secs(3),
            keepalive_time: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(7),
            keepalive_retries: 4,
        };
        liveness::configure(&ours, &settings).unwrap();
        assert_eq!(ours.write_timeout().unwrap(), Some(Duration::from_secs(3)));
        let socket = SockRef::from(&ours);
        assert!(socket.keepalive().unwrap(), "SO_KEEPALIVE is on");
        // Where the system lets socket2 read them back.
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd"
        ))]
        {
            assert_eq!(
                socket.tcp_keepalive_time().unwrap(),
                Duration::from_secs(30)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(7)
            );
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
        }
    });
}

// ----- Exercise 13: a UDP request that survives loss -----

/// A test server on loopback that drops the first `drop_first` datagrams it
/// receives, and answers each later one with what `answers` says. It
/// reports every request it receives `(seq, payload)`, dropped or not, and
/// stops after a second with nothing received.
fn lossy_server(
    drop_first: usize,
    answers: fn(u64, &[u8]) -> Vec<Vec<u8>>,
) -> (SocketAddr, mpsc::Receiver<(u64, Vec<u8>)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (seen, requests) = mpsc::channel();
    thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 2048];
        for received in 0.. {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                return; // nothing for a second: the test is over
            };
            let (seq, payload) = datagram::parse_request(&buf[..n]).expect("a request");
            let _ = seen.send((seq, payload.to_vec()));
            if received < drop_first {
                continue; // lost on the way
            }
            for answer in answers(seq, payload) {
                socket.send_to(&answer, peer).unwrap();
            }
        }
    });
    (addr, requests)
}

fn honest(seq: u64, payload: &[u8]) -> Vec<Vec<u8>> {
    vec![datagram::encode_ack(seq, payload)]
}

/// Before the right answer: an ACK of an older request, one of a request
/// not sent yet, junk; then the right answer twice (a duplicate).
fn confusing(seq: u64, payload: &[u8]) -> Vec<Vec<u8>> {
    let right = datagram::encode_ack(seq, payload);
    vec![
        datagram::encode_ack(seq.wrapping_sub(1), b"stale"),
        datagram::encode_ack(seq + 5, b"from the future"),
        b"garbage".to_vec(),
        right.clone(),
        right,
    ]
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        first_timeout: Duration::from_millis(50),
        max_timeout: Duration::from_millis(400),
        max_tries: 8,
    }
}

#[test]
fn exercise_13_the_reply_arrives_despite_lost_requests() {
    exercise(13, || {
        let (server, requests) = lossy_server(2, honest);
        let mut requester = Requester::connect(server, patient()).unwrap();
        let reply = requester.request(b"hello").unwrap();
        assert_eq!(String::from_utf8_lossy(&reply), "hello");
        let seen: Vec<(u64, Vec<u8>)> = requests.try_iter().collect();
        assert!(seen.len() >= 3, "two lost, then one answered: {seen:?}");
        assert!(
            seen.iter()
                .all(|(seq, payload)| *seq == 1 && payload == b"hello"),
            "a retry is the same request, with the same number: {seen:?}"
        );
    });
}

#[test]
fn exercise_13_duplicates_and_stale_replies_are_ignored() {
    exercise(13, || {
        let (server, _requests) = lossy_server(0, confusing);
        let policy = RetryPolicy {
            first_timeout: Duration::from_secs(2),
            ..patient()
        };
        let mut requester = Requester::connect(server, policy).unwrap();
        // Each answer's duplicate is still in our socket's buffer when the
        // next request starts: it must not be taken for the next answer.
        for payload in ["one", "two", "three"] {
            let reply = requester.request(payload.as_bytes()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&reply),
                payload,
                "the answer to {payload:?}"
            );
        }
    });
}

#[test]
fn exercise_13_it_gives_up_after_max_tries_against_a_silent_server() {
    exercise(13, || {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let policy = RetryPolicy {
            first_timeout: Duration::from_millis(20),
            max_timeout: Duration::from_millis(80),
            max_tries: 4,
        };
        let mut requester = Requester::connect(silent.local_addr().unwrap(), policy).unwrap();
        let err = requester.request(b"anyone?").expect_err("nobody answers");
        assert!(
            matches!(err, RequestError::GaveUp { seq: 1, tries: 4 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("after 4 tries"), "{err}");
        // Every try reached the silent server: four sends, no more, no less.
        silent
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        let mut received = Vec::new();
        while let Ok(n) = silent.recv(&mut buf) {
            received.push(buf[..n].to_vec());
        }
        assert_eq!(received, vec![b"REQ 1 anyone?".to_vec(); 4]);
    });
}

#[test]
fn exercise_13_sequence_numbers_advance_one_per_request() {
    exercise(13, || {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        thread::spawn(move || datagram::serve(&server)); // the lesson's own server
        let mut requester = Requester::connect(addr, patient()).unwrap();
        assert_eq!(requester.next_seq(), 1);
        for (n, payload) in ["a", "b", "c"].into_iter().enumerate() {
            let reply = requester.request(payload.as_bytes()).unwrap();
            assert_eq!(String::from_utf8_lossy(&reply), payload);
            assert_eq!(requester.next_seq(), n as u64 + 2);
        }
        // And the server refuses what is not a request, with a reason.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        stranger.send_to(b"hello?", addr).unwrap();
        let mut buf = [0u8; 128];
        let n = stranger.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"ERR "), "{:?}", &buf[..n]);
    });
}

// ----- Exercise 14: back-pressure -----

/// A socket stand-in for the room: takes writes only while open, has no
/// input, and keeps what it was given.
#[derive(Clone, Default)]
struct Fake(std::rc::Rc<std::cell::RefCell<FakeState>>);

#[derive(Default)]
struct FakeState {
    open_for_writes: bool,
    written: Vec<u8>,
}

impl Read for Fake {
    fn read(&mut self, _: &mut [u8]) -> io::Result<usize> {
        Err(io::ErrorKind::WouldBlock.into())
    }
}

impl Write for Fake {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let mut state = self.0.borrow_mut();
        if !state.open_for_writes {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        state.written.extend_from_slice(buf);
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl sandbox::room::Connection for Fake {
    fn shutdown_write(&self) {}
}

fn fake_peer() -> SocketAddr {
    plumbing::trace::silence_logs();
    "127.0.0.1:9".parse().unwrap()
}

#[test]
fn exercise_14_a_member_behind_holds_input_until_it_catches_up() {
    exercise(14, || {
        let mut room = Room::new(quiet());
        let now = Instant::now();
        let reader = Fake::default();
        room.join(1, reader.clone(), fake_peer(), now);
        room.join(2, Fake::default(), fake_peer(), now);
        room.settle();
        assert!(!room.holding_input(), "held with nothing queued");
        // 1,000-byte lines from member 2: member 1, reading nothing, passes
        // the high-water mark after about 260 of them.
        let line = "x".repeat(1000);
        let most = HIGH_WATER_BYTES / 1000 + 10;
        let mut sent = 0;
        while !room.holding_input() && sent < most {
            room.broadcast(Some(2), &line);
            sent += 1;
        }
        room.settle();
        assert!(
            room.holding_input(),
            "{} bytes wait for a member that reads nothing, and the room still reads senders",
            room.queued_bytes()
        );
        assert!(
            sent * 1000 > HIGH_WATER_BYTES,
            "held after {sent} lines, before anyone passed the high-water mark"
        );
        // The member reads everything: the room reads again.
        reader.0.borrow_mut().open_for_writes = true;
        room.flush_pending(1);
        assert!(
            !room.holding_input(),
            "still holding input after the member caught up"
        );
        assert_eq!(reader.0.borrow().written.len(), sent * 1000 + welcome_len());
    });
}

/// The length of guest1's welcome notice.
fn welcome_len() -> usize {
    "* welcome, guest1: /nick NAME renames you, /who lists the room, /quit leaves\n".len()
}

#[test]
fn exercise_14_over_the_memory_budget_the_room_holds_input_though_nobody_is_behind() {
    exercise(14, || {
        const MEMBERS: usize = 40;
        // 40 members each holding 40 lines of 1,000 bytes: 1.6 MB in all,
        // over a 1 MiB budget, each far under the high-water mark.
        let mut room = Room::new(Options {
            max_queued_bytes: 1024 * 1024,
            ..quiet()
        });
        let now = Instant::now();
        let sockets: Vec<Fake> = (0..MEMBERS).map(|_| Fake::default()).collect();
        for (i, socket) in sockets.iter().enumerate() {
            room.join(i + 1, socket.clone(), fake_peer(), now);
        }
        room.settle();
        let line = "y".repeat(1000);
        for _ in 0..40 {
            assert!(!room.holding_input() || room.queued_bytes() > 1024 * 1024);
            room.broadcast(None, &line);
        }
        room.settle();
        assert!(room.queued_bytes() > 1024 * 1024, "{}", room.queued_bytes());
        assert!(
            room.holding_input(),
            "{} bytes queued, over the {} byte budget, and the room still reads senders",
            room.queued_bytes(),
            1024 * 1024
        );
        // Half the members read: the room is under its budget again.
        for (i, socket) in sockets.iter().enumerate().take(MEMBERS / 2) {
            socket.0.borrow_mut().open_for_writes = true;
            room.flush_pending(i + 1);
        }
        assert!(
            !room.holding_input(),
            "{} bytes queued, under the budget, and the room still holds input",
            room.queued_bytes()
        );
    });
}

/// Lesson 3's checks include a client that stops reading during a flood:
/// without back-pressure the server queues the whole flood for it, and the
/// check says its queue grows without bound.
#[test]
fn exercise_14_lesson_3s_chat_checks_pass() {
    exercise(14, || lesson_3_chat_checks_pass(Readiness));
}

#[test]
fn exercise_14_a_flooding_sender_is_held_back_until_a_member_reads() {
    exercise(14, || {
        a_flooding_sender_is_held_back_until_a_member_reads(Readiness)
    });
}

// ----- Exercise 15: graceful shutdown on Ctrl-C -----

#[test]
fn exercise_15_on_stop_every_client_reads_the_notice_then_the_end() {
    exercise(15, || {
        on_stop_every_client_reads_the_notice_then_the_end(Readiness)
    });
}

#[test]
fn exercise_15_on_stop_a_member_behind_gets_what_was_queued_then_the_notice() {
    exercise(15, || {
        on_stop_a_member_behind_gets_what_was_queued_then_the_notice(Readiness)
    });
}

#[test]
fn exercise_15_on_stop_a_client_that_never_closes_does_not_hold_the_server() {
    exercise(15, || {
        on_stop_a_client_that_never_closes_does_not_hold_the_server(Readiness)
    });
}

/// The real thing: `kill -INT`, as Ctrl-C in a terminal sends (Unix only;
/// on Windows the console's Ctrl-C cannot be sent to one process alone).
#[cfg(unix)]
#[test]
fn exercise_15_sigint_stops_the_server_binary_gently_with_exit_status_0() {
    exercise(15, || {
        let mut server = plumbing::testing::ServerProcess::start(
            SANDBOX,
            &["server", "--port", "0", "--no-join-notices"],
        );
        let mut alice = Chatter::join(server.addr);
        let mut bob = Chatter::join(server.addr);
        alice.send("/who\n");
        assert!(alice.line().starts_with("* here (2)"));
        let pid = server.child.id().to_string();
        let kill = std::process::Command::new("kill")
            .args(["-INT", &pid])
            .status()
            .expect("run kill");
        assert!(kill.success(), "kill -INT {pid}: {kill}");
        assert_eq!(alice.until_closed(), SHUTDOWN_NOTICE);
        assert_eq!(bob.until_closed(), SHUTDOWN_NOTICE);
        drop((alice, bob));
        let status = server.wait();
        assert_eq!(status.code(), Some(0), "the server's exit: {status}");
        server.expect_line("shut down: every client was told and closed");
    });
}
