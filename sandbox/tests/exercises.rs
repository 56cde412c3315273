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

use std::io::{Read, Write};
use std::panic::{self, AssertUnwindSafe};
use std::sync::{Mutex, Once, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use basic::testing::{SharedOutput, TEST_TIMEOUT, connect, run_command};
use common::*;
use sandbox::client::{self, TimeoutFired};
use sandbox::framing::{FrameBuffer, FrameTooLong, MAX_FRAME_BYTES};
use sandbox::room::Options;
use sandbox::server::EventLoop::{Naive, Readiness};

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
        let listener = basic::testing::loopback_listener();
        let stream =
            client::connect_with_timeout(listener.local_addr().unwrap(), TEST_TIMEOUT).unwrap();
        assert_eq!(stream.peer_addr().unwrap(), listener.local_addr().unwrap());
    });
}

#[test]
fn exercise_01_a_refused_connect_is_an_error_but_not_a_timeout() {
    exercise(1, || {
        let addr = basic::testing::loopback_listener().local_addr().unwrap(); // closed at once
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
        let listener = basic::testing::loopback_listener(); // accepts (in the backlog), never speaks
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
        let port = basic::testing::loopback_listener()
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

#[test]
fn exercise_04_the_naive_loop_passes_lesson_3s_chat_checks() {
    exercise(4, || lesson_3_chat_checks_pass(Naive));
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
fn exercise_05_check_binary_passes_against_a_server_with_an_idle_timeout() {
    exercise(5, || {
        // The idle timeout must exceed the longest chat check: in the flood
        // check one client only reads for a few seconds, and reading is not talking.
        let server = basic::testing::ServerProcess::start(
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
        assert!(
            out.contains(&format!("ok {}\n", sandbox::check::IDLE_TALKER)),
            "{out}"
        );
        assert!(out.ends_with(" passed, 0 failed\n"), "{out}");
    });
}

#[test]
fn exercise_04_the_client_binary_chats_through_the_naive_server_binary() {
    exercise(4, || {
        let server = basic::testing::ServerProcess::start(
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
        let server = basic::testing::ServerProcess::start(SANDBOX, &["server", "--port", "0"]);
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
