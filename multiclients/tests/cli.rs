//! The `multiclients` binary: contract output, piped clients one after another.

use plumbing::testing::{ServerProcess, run_command};

const MULTICLIENTS: &str = env!("CARGO_BIN_EXE_multiclients");

#[test]
fn piped_clients_are_served_one_after_another_by_the_binary() {
    let server = ServerProcess::start(MULTICLIENTS, &["server", "--port", "0", "--backlog", "8"]);
    let port = server.addr.port().to_string();
    for input in [&b"first\n"[..], b"second\nthird\n"] {
        let client = run_command(MULTICLIENTS, &["client", "--port", &port], input);
        assert!(client.status.success(), "{}", client.stderr);
        assert_eq!(client.stdout, input);
    }
    server.expect_line("accepted client #2");
}

#[test]
fn check_binary_passes_against_the_server_binary() {
    let server = ServerProcess::start(MULTICLIENTS, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let check = run_command(
        MULTICLIENTS,
        &["check", "--port", &port, "--timeout", "2"],
        b"",
    );
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.ends_with("13 passed, 0 failed\n"), "{out}");
}

#[test]
fn a_taken_port_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_taken_port_is_one_line_error(MULTICLIENTS);
}

#[test]
fn server_keeps_serving_while_nobody_reads_its_log_and_says_what_it_skipped() {
    let server = plumbing::testing::assert_serves_with_an_unread_console(
        MULTICLIENTS,
        &["server", "--port", "0"],
        |addr| drop(plumbing::testing::echo_round_trips(addr, 20_000)),
    );
    // Served afterwards too.
    drop(plumbing::testing::echo_round_trips(server.addr, 3));
}
