//! The `sandbox` binary: the contract's first line, one-line errors for
//! both timeouts, and `check` (with its idle checks) against the server.

use std::io::Read;
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use basic::testing::{ServerProcess, run_command};

const SANDBOX: &str = env!("CARGO_BIN_EXE_sandbox");

/// The idle timeout must exceed the longest chat check: in the flood check
/// one client only reads for a few seconds, and reading is not talking.
#[test]
fn check_binary_passes_against_the_server_binary_with_an_idle_timeout() {
    let server = ServerProcess::start(SANDBOX, &["server", "--port", "0", "--idle-timeout", "6"]);
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
}

/// Runs the binary and returns its stdout; fails the test if it runs
/// longer than `limit` (longer than `run_command`'s bound: the idle checks
/// alone take one idle period).
fn run_bounded(args: &[&str], limit: Duration) -> String {
    let mut child = Command::new(SANDBOX)
        .args(args)
        .stdout(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("sandbox {args:?} ran longer than {limit:?}");
        }
        thread::sleep(Duration::from_millis(20)); // polling for exit, not synchronising
    }
    reader.join().unwrap()
}

#[test]
fn the_client_binary_chats_through_the_naive_server_binary() {
    let server = ServerProcess::start(SANDBOX, &["server", "--port", "0", "--event-loop", "naive"]);
    let port = server.addr.port().to_string();
    let args = [
        "client",
        "--port",
        &port,
        "--name",
        "ada",
        "--read-timeout",
        "5",
    ];
    let client = run_command(SANDBOX, &args, b"/who\n");
    assert!(client.status.success(), "{}", client.stderr);
    let out = String::from_utf8_lossy(&client.stdout);
    assert!(
        out.contains("* you are now ada\n* here (1): ada\n* bye\n"),
        "{out}"
    );
    server.expect_line("ada left (quit)");
}

#[test]
fn a_read_timeout_is_one_line_naming_the_option() {
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
}

#[test]
fn a_taken_port_is_one_line_error_with_a_hint() {
    let taken = basic::testing::loopback_listener();
    let port = taken.local_addr().unwrap().port().to_string();
    let server = run_command(SANDBOX, &["server", "--port", &port], b"");
    assert!(!server.status.success());
    assert!(
        server
            .stderr
            .ends_with("(is another server running? try --port 0)\n"),
        "{}",
        server.stderr
    );
}

#[test]
fn a_refused_connection_is_one_line_error_with_a_hint() {
    let port = basic::testing::loopback_listener()
        .local_addr()
        .unwrap()
        .port()
        .to_string(); // closed at once
    let client = run_command(SANDBOX, &["client", "--port", &port], b"");
    assert!(!client.status.success());
    assert!(
        client
            .stderr
            .contains("connection refused (is the server running"),
        "{}",
        client.stderr
    );
}

/// With only a few file descriptors (`ulimit -n`), accept fails with "too
/// many open files": the server must log it, keep serving the clients it
/// has, and accept the waiting ones once others leave. Unix only (`sh`,
/// `ulimit`).
#[cfg(unix)]
#[test]
fn out_of_file_descriptors_accept_fails_is_logged_and_the_server_goes_on() {
    use std::io::{BufRead, BufReader};
    for event_loop in ["readiness", "naive"] {
        let script =
            format!("ulimit -n 16 && exec {SANDBOX} server --port 0 --event-loop {event_loop}");
        let server = ServerProcess::start("sh", &["-c", &script]);
        // The kernel completes all 16 handshakes (the backlog is large);
        // the server runs out of descriptors before accepting them all.
        let clients: Vec<_> = (0..16)
            .map(|_| basic::testing::connect(server.addr))
            .collect();
        server.expect_line("accept failed: ");
        let last = clients.last().unwrap().try_clone().unwrap();
        // All but the last (the newest, still in the backlog: accept takes the
        // oldest first) leave; their descriptors free up for it.
        drop(clients);
        let mut waiting = BufReader::new(last);
        let mut welcome = String::new();
        waiting.read_line(&mut welcome).unwrap();
        assert!(
            welcome.starts_with("* welcome, guest"),
            "{event_loop}: {welcome:?}"
        );
    }
}
