//! The `sandbox` binary: `check` against the server, one-line errors, and
//! a server out of file descriptors. (The timeouts' binary tests belong to
//! their exercises, in `exercises.rs`.)
//!
//! The full check needs back-pressure (exercise 14): without it, the
//! server queues the whole flood for the client that stops reading, and
//! the check rightly says its queue is unbounded. So that test is named for
//! exercise 14 (`cargo test -- --skip exercise_` leaves it out).

mod common;

use std::time::Duration;

use common::{SANDBOX, run_bounded};
use plumbing::testing::ServerProcess;

#[test]
fn exercise_14_check_binary_passes_against_the_server_binary() {
    // The check's flood waits at most its timeout (2 s) for each line, and
    // the room waits the stall timeout for the client that stops reading.
    let args = ["server", "--port", "0", "--stall-timeout", "1"];
    let server = ServerProcess::start(SANDBOX, &args);
    let port = server.addr.port().to_string();
    let out = run_bounded(
        &["check", "--port", &port, "--timeout", "2"],
        Duration::from_secs(40),
    );
    assert!(
        out.contains(&format!("ok {}\n", multiclients_threaded::check::STALL)),
        "{out}"
    );
    assert!(out.ends_with(" passed, 0 failed\n"), "{out}");
}

#[test]
fn a_taken_port_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_taken_port_is_one_line_error(SANDBOX);
}

#[test]
fn a_refused_connection_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_refused_connection_is_one_line_error(SANDBOX);
}

#[cfg(unix)]
#[test]
fn out_of_file_descriptors_accept_fails_is_logged_and_the_server_goes_on() {
    common::out_of_file_descriptors_accept_fails_is_logged_and_the_server_goes_on("readiness");
}
