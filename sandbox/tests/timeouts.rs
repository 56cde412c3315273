//! The client's conversation and the idle check, where no exercise is
//! involved. The timeouts themselves are exercises 1, 2 and 5: their tests
//! are in `exercises.rs`.

mod common;

use std::time::Duration;

use basic::testing::{SharedOutput, TEST_TIMEOUT, connect};
use common::{idle_check_output, start};
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
