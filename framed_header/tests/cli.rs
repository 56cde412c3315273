//! The `framed_header` binary: contract output, log lines naming the peer,
//! one-line errors, and (when python3 is installed) the tutorial's own
//! Python client and server talking to ours.

use std::io::Write;
use std::path::PathBuf;
use std::process::Command;

use basic::testing::{ServerProcess, connect, run_command};

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
    assert_eq!(client.stdout, b"Msg received\nMsg received\nMsg received\n");
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
    let taken = basic::testing::loopback_listener();
    let port = taken.local_addr().unwrap().port().to_string();
    let server = run_command(FRAMED, &["server", "--port", &port], b"");
    assert!(!server.status.success());
    assert!(
        server
            .stderr
            .ends_with("(is another server running? try --port 0)\n"),
        "{}",
        server.stderr
    );
    assert_eq!(server.stderr.lines().count(), 1);
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
fn a_refused_connection_is_one_line_error_and_a_failure_status() {
    let port = {
        let listener = basic::testing::loopback_listener();
        listener.local_addr().unwrap().port().to_string()
    }; // the listener is closed here: nobody listens on that port now
    let client = run_command(FRAMED, &["client", "--port", &port], b"hello\n");
    assert!(!client.status.success());
    assert!(client.stderr.starts_with("error: "), "{}", client.stderr);
    assert!(
        client.stderr.contains("connection refused"),
        "{}",
        client.stderr
    );
    assert_eq!(client.stderr.lines().count(), 1, "{}", client.stderr);
}

// ---- The tutorial's own Python code, when python3 is installed ----

/// The tutorial's client.py, unchanged but for the address (from argv).
const TUTORIAL_CLIENT: &str = r#"
import socket, sys

HEADER = 64
PORT = int(sys.argv[1])
FORMAT = 'utf-8'
DISCONNECT_MESSAGE = "!DISCONNECT"
SERVER = "127.0.0.1"
ADDR = (SERVER, PORT)

client = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
client.connect(ADDR)

def send(msg):
    message = msg.encode(FORMAT)
    msg_length = len(message)
    send_length = str(msg_length).encode(FORMAT)
    send_length += b' ' * (HEADER - len(send_length))
    client.send(send_length)
    client.send(message)
    print(client.recv(2048).decode(FORMAT))

send("Hello World!")
input()
send("Hello Everyone!")
input()
send("Hello Tim!")
send(DISCONNECT_MESSAGE)
"#;

/// The tutorial's server.py, unchanged but for the address (port 0) and a
/// first line in our contract's words, so the test knows the port.
const TUTORIAL_SERVER: &str = r#"
import socket, threading

HEADER = 64
PORT = 0
SERVER = "127.0.0.1"
ADDR = (SERVER, PORT)
FORMAT = 'utf-8'
DISCONNECT_MESSAGE = "!DISCONNECT"

server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
server.bind(ADDR)

def handle_client(conn, addr):
    print(f"[NEW CONNECTION] {addr} connected.")
    connected = True
    while connected:
        msg_length = conn.recv(HEADER).decode(FORMAT)
        if msg_length:
            msg_length = int(msg_length)
            msg = conn.recv(msg_length).decode(FORMAT)
            if msg == DISCONNECT_MESSAGE:
                connected = False
            print(f"[{addr}] {msg}")
            conn.send("Msg received".encode(FORMAT))
    conn.close()

def start():
    server.listen()
    host, port = server.getsockname()
    print(f"listening on {host}:{port}", flush=True)
    while True:
        conn, addr = server.accept()
        thread = threading.Thread(target=handle_client, args=(conn, addr))
        thread.start()

start()
"#;

/// Writes `code` to a file in the temporary folder, or returns None (with
/// a note) when python3 is not installed.
fn python_script(name: &str, code: &str) -> Option<PathBuf> {
    let found = Command::new("python3").arg("--version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        println!("note: python3 not found; skipping the tutorial's Python code");
        return None;
    }
    let path = std::env::temp_dir().join(format!("framed_header_{}_{name}", std::process::id()));
    std::fs::write(&path, code).expect("write the Python script");
    Some(path)
}

#[test]
fn the_tutorial_python_client_talks_to_our_server_in_tutorial_settings() {
    let Some(script) = python_script("client.py", TUTORIAL_CLIENT) else {
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
    let client = run_command("python3", &[script.to_str().unwrap(), &port], b"\n\n");
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
    let _ = std::fs::remove_file(script);
}

#[test]
fn our_check_diagnoses_the_tutorial_python_server() {
    let Some(script) = python_script("server.py", TUTORIAL_SERVER) else {
        return;
    };
    // -u: unbuffered, so that its `listening on` line arrives at once.
    let server = ServerProcess::start("python3", &["-u", script.to_str().unwrap()]);
    let port = server.addr.port().to_string();
    let args = [
        "check",
        "--port",
        &port,
        "--timeout",
        "1",
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
    let _ = std::fs::remove_file(script);
}
