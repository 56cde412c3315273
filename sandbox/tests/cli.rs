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

#[test]
fn the_server_keeps_chatting_while_nobody_reads_its_log_and_says_what_it_skipped() {
    use std::io::{BufRead, BufReader, Write};
    // Every chat line is logged: 20,000 of them are far more than the pipe
    // and the log's buffer hold. Both clients' reads wait at most the test
    // timeout.
    let _server = plumbing::testing::assert_serves_with_an_unread_console(
        SANDBOX,
        &["server", "--port", "0"],
        |addr| {
            let mut sender = plumbing::testing::connect(addr);
            let reader = plumbing::testing::connect(addr);
            let mut lines = BufReader::new(reader);
            let mut line = String::new();
            // Welcome, and (once the sender's first line is in) it is in the room.
            lines.read_line(&mut line).unwrap();
            assert!(line.starts_with("* welcome"), "{line:?}");
            let burst: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
            sender.write_all(burst.as_bytes()).unwrap();
            let mut next = 0;
            while next < 20_000 {
                line.clear();
                assert!(lines.read_line(&mut line).unwrap() > 0, "the server closed");
                if line.starts_with("* ") {
                    continue; // the sender's join notice
                }
                assert!(line.ends_with(&format!(": line {next}\n")), "{line:?}");
                next += 1;
            }
        },
    );
}
