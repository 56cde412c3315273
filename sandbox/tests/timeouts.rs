//! The client's conversation and the idle check, where no exercise is
//! involved. The timeouts themselves are exercises 1, 2 and 5: their tests
//! are in `exercises.rs`.

mod common;

use std::time::Duration;

use common::{idle_check_output, start};
use plumbing::testing::{SharedOutput, TEST_TIMEOUT, connect};
use sandbox::client;
use sandbox::room::Options;
use sandbox::server::EventLoop;

#[test]
fn the_client_prints_what_arrives_and_quits_at_the_end_of_input() {
    let addr = start(EventLoop::Readiness, Options::default());
    let output = SharedOutput::default();
    client::run(
        connect(addr),
        &b"/nick zoe\n"[..],
        output.clone(),
        Some(TEST_TIMEOUT),
    )
    .unwrap();
    let printed = String::from_utf8(output.contents()).unwrap();
    assert!(printed.starts_with("* welcome, guest1"), "{printed}");
    assert!(printed.ends_with("* you are now zoe\n* bye\n"), "{printed}");
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

/// Input that never ends, as a person who has not pressed Ctrl-D yet.
struct StillTyping;

impl std::io::Read for StillTyping {
    fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        std::thread::park(); // no more input, but no end of input either
        Ok(0)
    }
}

#[test]
fn the_client_says_so_when_the_server_closes_although_nobody_quit() {
    let (addr, _server) = plumbing::testing::start_server(|listener| {
        let (mut stream, _) = listener.accept()?;
        std::io::Write::write_all(&mut stream, b"* going away\n")?;
        Ok(()) // and close
    });
    let output = SharedOutput::default();
    let input = std::io::BufReader::new(StillTyping);
    let err = client::run(connect(addr), input, output.clone(), None).unwrap_err();
    assert_eq!(err.to_string(), "the server closed the connection");
    assert_eq!(output.contents(), b"* going away\n");
}

/// A client that connects and sends no whole line (a port scanner, a
/// forgotten `nc`) is closed after `--first-line-timeout`, with a notice;
/// one that has spoken stays, however long it then listens.
fn a_client_that_never_sends_a_line_is_closed(event_loop: EventLoop) {
    let addr = start(
        event_loop,
        Options {
            first_line_timeout: Some(Duration::from_millis(300)),
            join_notices: false,
            ..Options::default()
        },
    );
    let mut talker = common::Chatter::join(addr);
    talker.send("/who\n");
    assert_eq!(talker.line(), "* here (1): guest1\n");
    let mut silent = common::Chatter::join(addr);
    silent.send("half a line, no end");
    assert_eq!(
        silent.until_closed(),
        "* no line within 0.3s of connecting; disconnecting\n"
    );
    // The talker's own deadline passed long ago: it is still here.
    talker.send("/who\n");
    assert_eq!(talker.line(), "* here (1): guest1\n");
}

#[test]
fn a_client_that_never_sends_a_line_is_closed_after_the_first_line_timeout() {
    a_client_that_never_sends_a_line_is_closed(EventLoop::Readiness);
}

/// Named for exercise 4: the naive loop accepts nobody until it is done.
#[test]
fn exercise_04_the_naive_loop_closes_a_client_that_never_sends_a_line() {
    a_client_that_never_sends_a_line_is_closed(EventLoop::Naive);
}
