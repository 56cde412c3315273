//! The `multiclients_threaded` binary: the contract's first line, options,
//! clients piped through it, `check` against it, one-line errors.

mod common;

use common::Chat;
use plumbing::testing::{ServerProcess, run_command};

const BIN: &str = env!("CARGO_BIN_EXE_multiclients_threaded");

#[test]
fn a_piped_client_chats_through_the_server_binary_and_exits_zero() {
    let server = ServerProcess::start(BIN, &["server", "--port", "0"]);
    let (mut observer, _) = Chat::join(server.addr);
    let port = server.addr.port().to_string();
    let client = run_command(
        BIN,
        &["client", "--port", &port, "--name", "zed"],
        b"hello\r\n\x1b[2Jred\n",
    );
    assert!(client.status.success(), "{}", client.stderr);
    observer.expect("* guest2 joined\n");
    observer.expect("* guest2 is now known as zed\n");
    observer.expect("zed: hello\n");
    observer.expect("zed: \\u{1b}[2Jred\n");
    observer.expect("* zed left\n");
    // The log shows chat text quoted and escaped: no client writes escape
    // sequences on the operator's terminal.
    server.expect_line("zed: \"hello\"");
    let logged = server.expect_line("zed: \"\\u{1b}[2Jred\"");
    assert!(!logged.contains('\x1b'), "{logged:?}");
}

#[test]
fn check_binary_passes_against_the_server_binary() {
    let server = ServerProcess::start(BIN, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let check = run_command(BIN, &["check", "--port", &port, "--timeout", "2"], b"");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.ends_with("14 passed, 0 failed\n"), "{out}");
}

#[test]
fn max_clients_refuses_one_more_with_a_notice_and_logs_it() {
    let server = ServerProcess::start(BIN, &["server", "--port", "0", "--max-clients", "1"]);
    let (mut first, _) = Chat::join(server.addr);
    let mut second = Chat::connect(server.addr);
    assert_eq!(
        second.rest(),
        b"* sorry, the room is full (1 of 1 places taken); try again later\n"
    );
    server.expect_line("refused, the room is full");
    first.send("/who");
    first.expect("* here (1): guest1\n");
}

#[test]
fn no_join_notices_is_accepted_by_the_binary() {
    let server = ServerProcess::start(BIN, &["server", "--port", "0", "--no-join-notices"]);
    let (mut first, _) = Chat::join(server.addr);
    let (mut second, _) = Chat::join(server.addr);
    second.send("quietly");
    first.expect("guest2: quietly\n");
}

#[test]
fn a_refused_connection_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_refused_connection_is_one_line_error(BIN);
}

#[test]
fn a_taken_port_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_taken_port_is_one_line_error(BIN);
}

#[test]
fn server_help_explains_every_option() {
    let help = run_command(BIN, &["server", "--help"], b"");
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--max-clients",
        "--no-join-notices",
        "--stall-timeout",
        "--first-line-timeout",
        "--queue-budget-mib",
        "--max-per-address",
        "--backlog",
        "--trace",
        "--port",
    ] {
        assert!(text.contains(option), "{option} missing from:\n{text}");
    }
}

#[cfg(unix)]
#[test]
fn under_a_low_open_files_limit_the_room_shrinks_to_fit_and_says_so() {
    // 48 descriptors: 32 stay for the server itself, 16 for clients.
    let script = "ulimit -n 48 && exec \"$0\" server --port 0";
    let server = ServerProcess::start("sh", &["-c", script, BIN]);
    server
        .expect_line("is above what the open-files limit (48) allows; serving at most 16 clients");
    let clients: Vec<Chat> = (0..16).map(|_| Chat::join(server.addr).0).collect();
    let mut refused = Chat::connect(server.addr);
    assert_eq!(
        refused.rest(),
        b"* sorry, the room is full (16 of 16 places taken); try again later\n"
    );
    drop(clients);
}

/// `nc -N` (OpenBSD netcat) as the README tells students to use it: its
/// line arrives, and at the end of its input it shuts down its sending
/// side, so the server sees the client leave. Skipped where there is no
/// `nc` with `-N`.
#[test]
fn nc_with_dash_n_chats_and_leaves_at_the_end_of_its_input() {
    use std::io::Write as _;
    use std::process::{Command, Stdio};
    use std::time::{Duration, Instant};

    let server = ServerProcess::start(BIN, &["server", "--port", "0"]);
    let (mut observer, _) = Chat::join(server.addr);
    let port = server.addr.port().to_string();
    let spawned = Command::new("nc")
        .args(["-N", "127.0.0.1", &port])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn();
    let Ok(mut nc) = spawned else {
        return eprintln!("skipped: no nc here");
    };
    let mut stdin = nc.stdin.take().expect("nc's stdin");
    let _ = stdin.write_all(b"hello from nc\n");
    drop(stdin); // end of input: nc -N shuts down its sending side
    let deadline = Instant::now() + plumbing::testing::TEST_TIMEOUT;
    let status = loop {
        if let Some(status) = nc.try_wait().expect("wait for nc") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = nc.kill(); // the nc this test started
            panic!("nc -N did not exit after its input ended");
        }
        std::thread::sleep(Duration::from_millis(20)); // polling a process exit
    };
    if !status.success() {
        return eprintln!("skipped: this nc has no -N (it exited with {status})");
    }
    observer.expect("* guest2 joined\n");
    observer.expect("guest2: hello from nc\n");
    observer.expect("* guest2 left\n");
}

#[test]
fn the_server_keeps_chatting_while_nobody_reads_its_log_and_says_what_it_skipped() {
    use std::io::Write as _;
    // Every chat line is logged: 20,000 of them are far more than the pipe
    // and the log's buffer hold.
    let server = plumbing::testing::assert_serves_with_an_unread_console(
        BIN,
        &["server", "--port", "0"],
        |addr| {
            let (mut sender, _) = Chat::join(addr);
            let (mut reader, _) = Chat::join(addr);
            let lines: String = (0..20_000).map(|i| format!("line {i}\n")).collect();
            sender.stream.write_all(lines.as_bytes()).unwrap();
            for i in 0..20_000 {
                let got = reader.chat_line();
                assert!(got.ends_with(&format!(": line {i}\n")), "{got}");
            }
        },
    );
    drop(server);
}
