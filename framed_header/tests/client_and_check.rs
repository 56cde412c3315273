//! The lesson's client and `check`, in process, against the lesson's server
//! and against a faithful Rust port of the tutorial's server: a check must
//! pass a correct server and tell a tutorial server what is wrong.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use framed_header::frame::Framing;
use framed_header::{check, client, server};
use plumbing::testing::{SharedOutput, connect, start_server};

const MIB: usize = 1024 * 1024;

fn framing(header_len: usize) -> Framing {
    Framing::new(header_len, MIB).unwrap()
}

fn start(header_len: usize, raw_replies: bool) -> SocketAddr {
    let config = server::Config::new(framing(header_len), raw_replies);
    start_server(move |listener| server::run(listener, config)).0
}

fn run_client(
    addr: SocketAddr,
    input: &str,
    header_len: usize,
    raw: bool,
) -> (anyhow::Result<()>, String) {
    let config = client::Config {
        reply_wait: Duration::from_millis(500),
        ..client::Config::new(framing(header_len), raw)
    };
    let output = SharedOutput::default();
    let result = client::run(connect(addr), input.as_bytes(), output.clone(), &config);
    (result, String::from_utf8(output.contents()).unwrap())
}

fn run_check(
    addr: SocketAddr,
    header_len: usize,
    raw_replies: bool,
) -> (plumbing::checklist::Report, String) {
    let probe = check::Probe::new(
        addr,
        Duration::from_secs(1),
        framing(header_len),
        raw_replies,
    );
    let mut out = Vec::new();
    let report = check::run(&probe, &mut out);
    (report, String::from_utf8(out).unwrap())
}

/// The tutorial's `handle_client`, ported line by line, bugs included: one
/// `recv(HEADER)` taken as the whole header, `int()` on it, one
/// `recv(msg_length)` taken as the whole payload, raw replies. (Where the
/// tutorial spins for ever on a closed connection, this port stops, to
/// keep the test machine calm.)
fn tutorial_server(listener: TcpListener) -> anyhow::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        thread::spawn(move || tutorial_client(stream));
    }
    Ok(())
}

fn tutorial_client(mut conn: TcpStream) {
    let mut header = [0u8; 64];
    loop {
        let n = conn.read(&mut header).unwrap_or(0); // msg_length = conn.recv(HEADER)
        if n == 0 {
            return; // the tutorial: `if msg_length:` is false, and it loops again
        }
        let text = String::from_utf8_lossy(&header[..n]);
        let Ok(len) = text.trim().parse::<usize>() else {
            return; // int() raises: the thread dies, the socket closes
        };
        let mut payload = vec![0u8; len];
        let m = conn.read(&mut payload).unwrap_or(0); // msg = conn.recv(msg_length)
        let _ = conn.write_all(b"Msg received");
        if &payload[..m] == b"!DISCONNECT" {
            return;
        }
    }
}

#[test]
fn the_client_prints_one_reply_per_line_and_not_the_reply_to_its_goodbye() {
    let (result, out) = run_client(start(128, false), "hello\nhéllo ✓\n", 128, false);
    result.unwrap();
    assert_eq!(out, "Msg received\nMsg received\n");
}

#[test]
fn the_client_reads_raw_replies_with_raw_replies() {
    let (result, out) = run_client(start(64, true), "hello\n", 64, true);
    result.unwrap();
    assert_eq!(out, "Msg received\n");
}

#[test]
fn an_error_reply_stops_the_client_with_the_servers_reason() {
    let config = client::Config {
        reply_wait: Duration::from_millis(500),
        ..client::Config::new(Framing::new(8, 1000).unwrap(), false)
    };
    let server = server::Config::new(Framing::new(8, 100).unwrap(), false);
    let (addr, _server) = start_server(move |listener| server::run(listener, server));
    let output = SharedOutput::default();
    let input = format!("{}\nnext\n", "x".repeat(101));
    let result = client::run(connect(addr), input.as_bytes(), output.clone(), &config);
    assert_eq!(
        result.unwrap_err().to_string(),
        "the server refused the message: the declared length 101 is over the limit \
         of 100 bytes (use the server's --max-payload on the client too)"
    );
    assert_eq!(
        output.contents(),
        b"",
        "an error reply is not printed as a reply"
    );
}

/// A server that reads one message, then sends `reply` and says nothing
/// more until the client leaves.
fn stalling_server(reply: &'static [u8]) -> SocketAddr {
    let listener = plumbing::testing::loopback_listener();
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || {
        let (mut stream, _) = listener.accept()?;
        stream.set_read_timeout(Some(plumbing::testing::TEST_TIMEOUT))?;
        let mut message = [0u8; 128 + 5];
        stream.read_exact(&mut message)?;
        stream.write_all(reply)?;
        stream.read_to_end(&mut Vec::new()) // until the client gives up
    });
    addr
}

#[test]
fn a_reply_stalling_mid_payload_is_reported_with_the_payload_bytes_that_came() {
    let reply = b"12                                                                                                                              Msg";
    let (result, _) = run_client(stalling_server(reply), "hello\n", 128, false);
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with("no complete reply within 0.5s: got the header \"12 "),
        "{err}"
    );
    assert!(
        err.ends_with("declaring 12 payload bytes, then only 3 of them: \"Msg\""),
        "{err}"
    );
}

#[test]
fn a_reply_stalling_mid_header_is_reported_as_short_of_a_header() {
    let (result, _) = run_client(stalling_server(b"12   "), "hello\n", 128, false);
    let err = result.unwrap_err().to_string();
    assert_eq!(
        err,
        "no complete reply within 0.5s: got \"12   \" (5 bytes), short of a whole header"
    );
}

#[test]
fn the_client_stops_after_a_typed_goodbye() {
    let (result, out) = run_client(start(128, false), "!DISCONNECT!\nnever sent\n", 128, false);
    result.unwrap();
    assert_eq!(out, "Msg received\n");
}

#[test]
fn a_client_expecting_framed_replies_from_a_raw_server_suggests_raw_replies() {
    let (result, _) = run_client(start(128, true), "hello\n", 128, false);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("try --raw-replies"), "{err}");
}

#[test]
fn a_client_with_the_wrong_header_size_is_told_the_right_one() {
    let (result, _) = run_client(start(64, false), "hello\n", 128, false);
    let err = result.unwrap_err().to_string();
    assert!(err.contains("try --header-size 64"), "{err}");
}

#[test]
fn check_passes_against_the_lesson_server() {
    let (report, out) = run_check(start(128, false), 128, false);
    assert!(report.all_passed(), "{out}");
    assert!(out.ends_with("13 passed, 0 failed\n"), "{out}");
}

#[test]
fn check_passes_against_the_lesson_server_in_tutorial_settings() {
    let (report, out) = run_check(start(64, true), 64, true);
    assert!(report.all_passed(), "{out}");
}

#[test]
fn a_check_failure_says_where_replies_that_look_alike_differ() {
    // A 64-byte header where 128 are expected: the first 60 bytes of what
    // came and of what was expected are the same "12" and spaces.
    let (report, out) = run_check(start(64, false), 128, false);
    assert!(!report.all_passed());
    let spaces = " ".repeat(30);
    let line = format!(
        "where:    first difference at byte 64: expected \"{spaces}\" there, \
         got \"          Msg received"
    );
    assert!(out.contains(&line), "{out}");
}

#[test]
fn check_with_raw_replies_against_framed_replies_says_drop_raw_replies() {
    let (report, out) = run_check(start(128, false), 128, true);
    assert!(!report.all_passed());
    assert!(out.contains("drop --raw-replies"), "{out}");
}

#[test]
fn check_tells_a_tutorial_server_in_default_settings_to_try_raw_replies() {
    let (addr, _server) = start_server(tutorial_server);
    let (report, out) = run_check(addr, 128, false);
    assert_eq!(
        report.failed[0], "round trip: \"hello\" is answered \"Msg received\"",
        "{out}"
    );
    assert!(out.contains("try --raw-replies"), "{out}");
}

#[test]
fn check_names_what_a_tutorial_server_gets_wrong_in_its_own_settings() {
    let (addr, _server) = start_server(tutorial_server);
    let (report, out) = run_check(addr, 64, true);
    for passes in [
        "round trip: \"hello\" is answered \"Msg received\"",
        "!DISCONNECT is answered (or not), then the connection closes",
    ] {
        assert!(report.passed.iter().any(|p| p == passes), "{passes}\n{out}");
    }
    for fails in [
        "an oversized declared length is refused at once",
        "a peer closing mid-header gets no reply, and a close",
        "a peer closing mid-payload gets no reply, and a close",
    ] {
        assert!(report.failed.iter().any(|f| f == fails), "{fails}\n{out}");
    }
    assert!(
        out.contains("never wait for, or allocate, that many bytes"),
        "{out}"
    );
}

#[test]
fn a_line_over_the_payload_limit_is_a_clear_error_not_a_lost_connection() {
    let config = client::Config {
        reply_wait: Duration::from_millis(500),
        ..client::Config::new(Framing::new(8, 12).unwrap(), false)
    };
    let addr = start(8, false);
    let result = client::run(connect(addr), &b"thirteen byte\n"[..], Vec::new(), &config);
    let err = format!("{:#}", result.unwrap_err());
    assert_eq!(
        err,
        "cannot send a line of 13 bytes: the declared length 13 is over the limit of 12 bytes"
    );
}
