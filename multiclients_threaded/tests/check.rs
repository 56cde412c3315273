//! `check` passes against this lesson's server, and fails, naming the right
//! check, against deliberately broken chat servers.

mod common;

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use multiclients_threaded::check::{self, BROADCAST, CONTROL, SLOW_DROPPED, STALL};
use multiclients_threaded::server::ServerOptions;
use plumbing::checklist::Report;
use plumbing::testing::start_server;

const TIMEOUT: Duration = Duration::from_secs(2);
/// The servers here let a stuck client go within a second; `check` is told
/// to allow two (its default, 10 s, would only make the tests slow).
const STALL_TIMEOUT: Duration = Duration::from_secs(1);
const STALL_ALLOWANCE: Duration = Duration::from_secs(2);

fn run_check(addr: SocketAddr) -> (Report, String) {
    let mut out = Vec::new();
    let report = check::run_with(addr, TIMEOUT, STALL_ALLOWANCE, &mut out);
    (report, String::from_utf8(out).expect("check prints UTF-8"))
}

fn check_server(serve: fn(TcpListener) -> anyhow::Result<()>) -> (Report, String) {
    let (addr, _server) = start_server(serve);
    run_check(addr)
}

#[test]
fn check_passes_against_the_lesson_server() {
    let addr = common::start(ServerOptions {
        stall_timeout: STALL_TIMEOUT,
        ..common::quiet()
    });
    let (report, out) = run_check(addr);
    assert!(report.all_passed(), "{out}");
    assert!(out.ends_with("14 passed, 0 failed\n"), "{out}");
}

#[test]
fn check_names_the_broadcast_check_against_a_server_that_echoes_to_the_sender() {
    let (report, out) = check_server(common::naive::echoes_to_the_sender);
    assert_eq!(
        report.failed.first().map(String::as_str),
        Some(BROADCAST),
        "{out}"
    );
    // The failure shows the sender's own line coming back.
    assert!(out.contains(": hello from ann\""), "{out}");
    // It relays ESC, CR, NUL and U+202E as they came; the failure shows them escaped.
    assert!(report.failed.iter().any(|name| name == CONTROL), "{out}");
    assert!(out.contains(r"esc \u{1b}[2J cr \rbob: forged"), "{out}");
}

#[test]
fn check_names_the_stall_check_against_a_server_that_writes_while_holding_the_lock() {
    let (report, out) = check_server(common::naive::holds_the_lock_while_writing);
    assert_eq!(report.failed, [STALL, SLOW_DROPPED], "{out}");
    assert!(out.contains("then the server stopped"), "{out}");
}

#[test]
fn check_fails_every_check_when_nobody_listens() {
    let addr = plumbing::testing::loopback_listener().local_addr().unwrap();
    // The listener is dropped: connections to its port are refused.
    let (report, out) = run_check(addr);
    assert!(report.passed.is_empty(), "{out}");
    assert!(out.ends_with("0 passed, 14 failed\n"), "{out}");
}

/// A tutorial-style server: it greets without a newline and never sends a
/// line (as the classic Python socket tutorials do).
fn greets_without_newline(listener: TcpListener) -> anyhow::Result<()> {
    use std::io::{Read, Write};
    for stream in listener.incoming() {
        let mut stream = stream?;
        std::thread::spawn(move || {
            let _ = stream.write_all(b"Welcome to the chat\x1b[0m");
            let mut buf = [0u8; 1024];
            while matches!(stream.read(&mut buf), Ok(n) if n > 0) {}
        });
    }
    Ok(())
}

#[test]
fn check_shows_bytes_that_arrived_without_a_newline_escaped() {
    let (report, out) = check_server(greets_without_newline);
    assert_eq!(
        report.failed.first().map(String::as_str),
        Some(check::NICK),
        "{out}"
    );
    assert!(
        out.contains(
            r#"no lines, then 23 bytes without a newline: "Welcome to the chat\u{1b}[0m""#
        ),
        "{out}"
    );
}
