//! What one client may cost the server: a place among `--max-clients`, a
//! thread for at most `--idle-timeout` without a message, a write that
//! waits at most `--write-timeout`; and settings the server cannot serve
//! are refused before it starts. Every refusal is a reason the client can
//! read.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::Duration;

use framed_header::frame::Framing;
use framed_header::server::{self, Config};
use plumbing::testing::{ServerProcess, connect, read_exactly, read_to_close, run_command};

const FRAMED: &str = env!("CARGO_BIN_EXE_framed_header");
const MIB: usize = 1024 * 1024;
/// The server's framed answer: "12", 126 spaces, "Msg received".
const REPLY: &[u8; 140] = b"12                                                                                                                              Msg received";

fn start(config: Config) -> SocketAddr {
    plumbing::testing::start_server(move |listener| server::run(listener, config)).0
}

fn defaults() -> Config {
    Config::new(Framing::new(128, MIB).unwrap(), false)
}

/// `text` as a message with a 128-byte header, padded by hand.
fn message(text: &str) -> Vec<u8> {
    let mut bytes = format!("{:<128}", text.len()).into_bytes();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

/// A framed `!ERROR` reply, then the close: returns the reason.
fn refusal(stream: &mut TcpStream) -> String {
    let got = read_to_close(stream);
    assert!(
        got.len() > 128,
        "expected a framed error reply, got {got:?}"
    );
    let text = String::from_utf8_lossy(&got[128..]).into_owned();
    assert_eq!(got[..128], *format!("{:<128}", text.len()).as_bytes());
    text
}

#[test]
fn a_client_past_max_clients_is_turned_away_with_a_reason() {
    let addr = start(Config {
        max_clients: 1,
        ..defaults()
    });
    let mut first = connect(addr);
    first.write_all(&message("I am in")).unwrap();
    assert_eq!(read_exactly(&mut first, 140), REPLY); // its place is taken
    let mut second = connect(addr);
    assert_eq!(
        refusal(&mut second),
        "!ERROR the server is full (--max-clients 1); try again later"
    );
    first.write_all(&message("still served")).unwrap();
    assert_eq!(read_exactly(&mut first, 140), REPLY);
}

#[test]
fn a_silent_connection_is_closed_after_the_idle_timeout_with_a_reason() {
    let addr = start(Config {
        idle_timeout: Duration::from_millis(300),
        ..defaults()
    });
    let mut silent = connect(addr);
    assert_eq!(
        refusal(&mut silent),
        "!ERROR no complete message for 0.3s (the server's --idle-timeout); closing"
    );
}

#[test]
fn a_message_never_completed_counts_as_idle_too() {
    let addr = start(Config {
        idle_timeout: Duration::from_millis(300),
        ..defaults()
    });
    let mut stream = connect(addr);
    stream.write_all(&message("one")).unwrap();
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
    stream.write_all(&message("two")[..70]).unwrap(); // half a header, then nothing
    assert!(refusal(&mut stream).starts_with("!ERROR no complete message for 0.3s"));
}

#[test]
fn an_idle_reason_too_long_for_the_limit_is_shortened_in_whole_words() {
    let addr = start(Config {
        idle_timeout: Duration::from_millis(100),
        ..Config::new(Framing::new(8, 24).unwrap(), false)
    });
    let mut silent = connect(addr);
    let got = read_to_close(&mut silent);
    assert_eq!(got, b"20      !ERROR idle too long");
}

#[test]
fn a_client_that_stops_reading_is_let_go_after_the_write_timeout() {
    let server = ServerProcess::start(FRAMED, &["server", "--port", "0", "--write-timeout", "0.3"]);
    let stuck = connect(server.addr);
    let mut writer = stuck.try_clone().unwrap();
    // Messages, never a read: its receive buffer fills, then the server's
    // send buffer, then the server's write waits, and gives up.
    thread::spawn(move || {
        let batch = message("read me").repeat(1000);
        while writer.write_all(&batch).is_ok() {}
    });
    let line = server.expect_line("stopped reading");
    assert!(
        line.ends_with(
            "stopped reading: no reply taken for 0.3s (--write-timeout); connection closed"
        ),
        "{line}"
    );
    let mut other = connect(server.addr);
    other.write_all(&message("and me?")).unwrap();
    assert_eq!(read_exactly(&mut other, 140), REPLY);
}

#[test]
fn settings_too_small_for_the_reply_are_one_line_errors() {
    let cases: [(&[&str], &str); 4] = [
        (
            &["server", "--header-size", "1", "--max-payload", "9"],
            "error: --max-payload 9 is too small for the reply \"Msg received\" (12 bytes): \
             use --max-payload 12 or more, and --header-size 2 or more to hold that length\n",
        ),
        (
            &["client", "--max-payload", "11"],
            "error: --max-payload 11 is too small for the reply \"Msg received\" (12 bytes): \
             use --max-payload 12 or more\n",
        ),
        (
            &[
                "check",
                "--max-payload",
                "12",
                "--goodbye",
                "a long goodbye!",
            ],
            "error: --max-payload 12 is too small for the goodbye \"a long goodbye!\" \
             (15 bytes): use --max-payload 15 or more\n",
        ),
        (
            &["check", "--reply", ""],
            "error: --reply and --goodbye must not be empty\n",
        ),
    ];
    for (args, error) in cases {
        let args = [args, &["--port", "0"]].concat();
        let run = run_command(FRAMED, &args, b"");
        assert!(!run.status.success(), "{args:?}");
        assert_eq!(run.stderr, error, "{args:?}");
    }
}

#[test]
fn every_limit_is_an_option_with_its_default_in_help() {
    let help = run_command(FRAMED, &["server", "--help"], b"");
    let text = String::from_utf8_lossy(&help.stdout);
    for option in [
        "--max-clients <MAX_CLIENTS>",
        "[default: 1000]",
        "--idle-timeout <IDLE_TIMEOUT>",
        "[default: 300]",
        "--write-timeout <WRITE_TIMEOUT>",
        "[default: 30]",
        "--backlog <BACKLOG>",
        "[default: 4096]",
    ] {
        assert!(text.contains(option), "{option} missing from:\n{text}");
    }
}
