//! The `framed_header` binary: contract output, log lines naming the peer,
//! one-line errors, and (when python3 is installed) the tutorial's own
//! Python client and server talking to ours.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use plumbing::testing::{ServerProcess, connect, read_exactly, read_to_close, run_command};

const FRAMED: &str = env!("CARGO_BIN_EXE_framed_header");

/// `digits` padded with spaces to 128 bytes, by hand.
fn header(digits: &str) -> Vec<u8> {
    let mut header = digits.as_bytes().to_vec();
    header.resize(128, b' ');
    header
}

#[test]
fn a_piped_client_gets_a_reply_per_line_and_the_server_logs_each_message() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let client = run_command(
        FRAMED,
        &["client", "--port", &port],
        "hello\nhéllo ✓\n".as_bytes(),
    );
    assert!(client.status.success(), "{}", client.stderr);
    // One reply per line: the goodbye's reply is awaited, not printed.
    assert_eq!(client.stdout, b"Msg received\nMsg received\n");
    let line = server.expect_line("] \"hello\"");
    assert!(line.starts_with("[127.0.0.1:"), "{line}");
    server.expect_line("] \"héllo ✓\"");
    server.expect_line("] said goodbye; connection closed");
}

#[test]
fn a_rejected_header_is_logged_with_the_peer_and_the_reason() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let mut stream = connect(server.addr);
    let peer = stream.local_addr().unwrap();
    stream.write_all(&header("-5")).unwrap();
    let line = server.expect_line("rejected:");
    assert_eq!(
        line,
        format!(
            "[{peer}] rejected: header byte 0 is '-', not a digit (the length is plain \
             decimal digits, no sign, no '_', then only spaces); closing the connection"
        )
    );
}

#[test]
fn an_http_request_shorter_than_a_header_is_refused_at_once_and_logged() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let mut stream = connect(server.addr);
    let peer = stream.local_addr().unwrap();
    let sent = Instant::now();
    // 26 bytes, far short of 128, and the connection stays open, as a
    // browser's does while it waits for an answer.
    stream
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let line = server.expect_line("rejected:");
    assert!(
        line.starts_with(&format!(
            "[{peer}] rejected: header byte 0 is 'G', not a digit"
        )),
        "{line}"
    );
    let reply = read_to_close(&mut stream);
    let waited = sent.elapsed();
    assert!(waited < Duration::from_secs(2), "refused after {waited:?}");
    let text = String::from_utf8_lossy(&reply[128..]).into_owned();
    assert!(text.starts_with("!ERROR header byte 0 is 'G'"), "{text}");
}

#[test]
fn a_max_payload_out_of_range_is_one_line_error_in_every_subcommand() {
    for subcommand in ["server", "client", "check"] {
        for max in ["18446744073709551615", "100000000000", "1073741825"] {
            let args = [subcommand, "--port", "0", "--max-payload", max];
            let run = run_command(FRAMED, &args, b"");
            assert!(!run.status.success(), "{subcommand} {max}");
            assert_eq!(
                run.stderr,
                format!(
                    "error: --max-payload {max} is over 1073741824 bytes (1 GiB), \
                     the largest this lesson accepts\n"
                ),
                "{subcommand}"
            );
        }
    }
}

#[test]
fn a_refused_message_is_one_error_line_and_nothing_on_stdout() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let line = [vec![b'a'; 1_100_000], b"\n".to_vec()].concat();
    let args = ["client", "--port", &port, "--max-payload", "2000000"];
    let client = run_command(FRAMED, &args, &line);
    assert!(!client.status.success());
    assert_eq!(client.stdout, b"", "an error reply is not a reply to print");
    assert_eq!(
        client.stderr,
        "error: the server refused the message: the declared length 1100000 is over \
         the limit of 1048576 bytes (use the server's --max-payload on the client too)\n"
    );
}

#[test]
fn a_peer_leaving_mid_payload_is_a_logged_disconnect() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let mut stream = connect(server.addr);
    let peer = stream.local_addr().unwrap();
    stream
        .write_all(&[header("10"), b"abc".to_vec()].concat())
        .unwrap();
    drop(stream);
    let line = server.expect_line("disconnected");
    assert_eq!(
        line,
        format!("[{peer}] disconnected: closed the connection mid-payload (3 of 10 bytes)")
    );
}

#[test]
fn check_binary_passes_against_the_server_binary() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let check = run_command(FRAMED, &["check", "--port", &port, "--timeout", "2"], b"");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(check.status.success(), "{out}");
    assert!(out.ends_with("13 passed, 0 failed\n"), "{out}");
}

#[test]
fn a_taken_port_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_taken_port_is_one_line_error(FRAMED);
}

#[test]
fn a_header_too_small_for_the_limit_is_one_line_error() {
    let server = run_command(
        FRAMED,
        &["server", "--port", "0", "--header-size", "3"],
        b"",
    );
    assert!(!server.status.success());
    assert_eq!(
        server.stderr,
        "error: --max-payload 1048576 needs 7 digits, more than --header-size 3 holds\n"
    );
}

#[test]
fn a_refused_connection_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_refused_connection_is_one_line_error(FRAMED);
}

// ---- The tutorial's own Python code, when python3 is installed ----

/// The tutorial's code as the lesson ships it (`framed_header/tutorial/`):
/// the test runs the very files the README tells students to run.
fn tutorial_script(name: &str) -> Option<String> {
    let found = Command::new("python3").arg("--version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        println!("note: python3 not found; skipping the tutorial's Python code");
        return None;
    }
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tutorial")
        .join(name);
    Some(path.to_str().expect("a UTF-8 path").to_string())
}

#[test]
fn the_tutorial_python_client_talks_to_our_server_in_tutorial_settings() {
    let Some(script) = tutorial_script("client.py") else {
        return;
    };
    let server = ServerProcess::start(
        FRAMED,
        &[
            "server",
            "--port",
            "0",
            "--header-size",
            "64",
            "--raw-replies",
        ],
    );
    let port = server.addr.port().to_string();
    let client = run_command("python3", &[&script, &port], b"\n\n");
    assert!(client.status.success(), "{}", client.stderr);
    assert_eq!(client.stdout, b"Msg received\n".repeat(4));
    for text in [
        "Hello World!",
        "Hello Everyone!",
        "Hello Tim!",
        "!DISCONNECT",
    ] {
        server.expect_line(&format!("] \"{text}\""));
    }
    server.expect_line("said goodbye");
}

#[test]
fn our_check_diagnoses_the_tutorial_python_server() {
    let Some(script) = tutorial_script("server.py") else {
        return;
    };
    // -u: unbuffered, so that its log lines arrive as they are printed.
    let server = ServerProcess::start("python3", &["-u", &script, "0"]);
    let port = server.addr.port().to_string();
    let args = [
        "check",
        "--port",
        &port,
        // Six of its checks fail by waiting: a short wait keeps the whole
        // run well inside the test's 10 s, even on a busy machine.
        "--timeout",
        "0.6",
        "--header-size",
        "64",
        "--raw-replies",
    ];
    let check = run_command(FRAMED, &args, b"");
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(!check.status.success(), "{out}");
    assert!(out.contains("ok round trip"), "{out}");
    assert!(
        out.contains("FAIL an oversized declared length is refused at once"),
        "{out}"
    );
    assert!(out.contains("FAIL a peer closing mid-payload"), "{out}");
    drop(server); // kills it: its threads on half-closed sockets spin for ever
}

#[test]
fn the_tutorial_python_client_is_told_the_header_size_by_our_default_server() {
    let Some(script) = tutorial_script("client.py") else {
        return;
    };
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    // Its 64-byte header meets our 128: it prints our reason, raw, as it
    // prints any reply. (What it does next, on a closed connection, is the
    // tutorial's business: its exit status is not ours to check.)
    let client = run_command("python3", &[&script, &port], b"\n\n");
    let printed = String::from_utf8_lossy(&client.stdout);
    assert!(
        printed.starts_with(
            "!ERROR your header looks 64 bytes long, but this server's is 128 (use \
             --header-size 128 on your side, or start the server with --header-size 64)\n"
        ),
        "{printed}"
    );
    server.expect_line("rejected: your header looks 64 bytes long");
}

#[test]
fn our_client_ends_cleanly_with_the_tutorial_python_server() {
    let Some(script) = tutorial_script("server.py") else {
        return;
    };
    let server = ServerProcess::start("python3", &["-u", &script, "0"]);
    let port = server.addr.port().to_string();
    let args = [
        "client",
        "--port",
        &port,
        "--header-size",
        "64",
        "--raw-replies",
    ];
    let client = run_command(FRAMED, &args, b"hello\nworld\n");
    assert!(client.status.success(), "{}", client.stderr);
    assert_eq!(client.stdout, b"Msg received\nMsg received\n");
    server.expect_line("!DISCONNECT");
}

/// Sends `count` messages in lock step over one connection, each answered
/// before the next, then the goodbye: the server logs a line for each.
fn lock_step_messages(addr: std::net::SocketAddr, count: usize) {
    let mut stream = connect(addr);
    let reply = [header("12"), b"Msg received".to_vec()].concat();
    let message = [header("5"), b"hello".to_vec()].concat();
    for _ in 0..count {
        stream.write_all(&message).unwrap();
        assert_eq!(read_exactly(&mut stream, reply.len()), reply);
    }
    stream
        .write_all(&[header("12"), b"!DISCONNECT!".to_vec()].concat())
        .unwrap();
    assert_eq!(read_to_close(&mut stream), reply);
}

#[test]
fn the_server_keeps_serving_while_nobody_reads_its_log_and_says_what_it_skipped() {
    // 30,000 log lines of about 28 bytes: far more than the pipe (64 KiB)
    // and the log's own buffer hold.
    let server = plumbing::testing::assert_serves_with_an_unread_console(
        FRAMED,
        &["server", "--port", "0"],
        |addr| lock_step_messages(addr, 30_000),
    );
    lock_step_messages(server.addr, 3); // served afterwards too
}
