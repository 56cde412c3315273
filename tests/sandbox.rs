//! Top-level tests for lesson `sandbox`: it serves the chat protocol of
//! lesson 3 from one thread, so lesson 3's check passes against it, and the
//! sandbox's client and check work against lesson 3's server too.

use std::time::Duration;

use plumbing::testing::{SharedOutput, start_server};
use sandbox::room::Options;
use sandbox::server::EventLoop;

const TIMEOUT: Duration = Duration::from_secs(5);

fn sandbox_server(event_loop: EventLoop) -> std::net::SocketAddr {
    // Lesson 3's flood check waits at most TIMEOUT for each line, and the
    // sandbox holds the room for the stall timeout when a client stops
    // reading: keep the stall timeout well under it.
    let options = Options {
        stall_timeout: Duration::from_secs(1),
        ..Options::default()
    };
    start_server(move |listener| sandbox::server::run(listener, event_loop, options)).0
}

fn threaded_server() -> std::net::SocketAddr {
    let options = multiclients_threaded::server::ServerOptions::default();
    start_server(move |listener| multiclients_threaded::server::run(listener, &options)).0
}

/// Named for the sandbox's exercise 14: the check's client that stops
/// reading needs back-pressure, which the student copy leaves to the
/// student (`cargo test -- --skip exercise_` leaves this out).
#[test]
fn exercise_14_lesson_3_check_passes_against_the_sandbox() {
    // The naive loop passes it too (sandbox/tests/flow_control.rs).
    let addr = sandbox_server(EventLoop::Readiness);
    let mut out = Vec::new();
    let report = multiclients_threaded::check::run(addr, TIMEOUT, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(report.all_passed(), "{out}");
    assert!(
        out.ends_with(&format!("{} passed, 0 failed\n", report.passed.len())),
        "{out}"
    );
}

#[test]
fn sandbox_check_without_idle_timeout_passes_against_lesson_3_server() {
    let mut out = Vec::new();
    let report = sandbox::check::run(threaded_server(), TIMEOUT, None, &mut out);
    assert!(report.all_passed(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn lesson_3_server_has_no_idle_timeout_and_the_idle_check_says_so() {
    let mut out = Vec::new();
    let mut list = plumbing::checklist::Checklist::new(&mut out);
    sandbox::check::idle_checks(
        &mut list,
        threaded_server(),
        Duration::from_secs(1),
        Duration::from_millis(300),
    );
    let report = list.finish();
    assert_eq!(
        report.failed.first().map(String::as_str),
        Some(sandbox::check::IDLE_CLOSED)
    );
}

#[test]
fn the_sandbox_client_chats_with_lesson_3_server() {
    let addr = threaded_server();
    let output = SharedOutput::default();
    let stream = plumbing::testing::connect(addr);
    sandbox::client::run(
        stream,
        &b"/nick zed\n/who\n"[..],
        output.clone(),
        Some(TIMEOUT),
    )
    .unwrap();
    let printed = String::from_utf8(output.contents()).unwrap();
    assert!(printed.contains("zed"), "{printed}");
    assert!(
        printed.lines().all(|line| line.starts_with("* ")),
        "{printed}"
    );
}
