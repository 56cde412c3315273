//! `check` passes against this lesson's server, and fails, naming the right
//! check, against deliberately broken chat servers.

mod common;

use std::net::TcpListener;
use std::time::Duration;

use basic::checklist::Report;
use basic::testing::start_server;
use multiclients_threaded::check::{self, BROADCAST, SLOW_DROPPED, STALL};

const TIMEOUT: Duration = Duration::from_secs(2);

fn check_server(serve: fn(TcpListener) -> anyhow::Result<()>) -> (Report, String) {
    let (addr, _server) = start_server(serve);
    let mut out = Vec::new();
    let report = check::run(addr, TIMEOUT, &mut out);
    (report, String::from_utf8(out).expect("check prints UTF-8"))
}

#[test]
fn check_passes_against_the_lesson_server() {
    let addr = common::start(common::quiet());
    let mut out = Vec::new();
    let report = check::run(addr, TIMEOUT, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(report.all_passed(), "{out}");
    assert!(out.ends_with("13 passed, 0 failed\n"), "{out}");
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
}

#[test]
fn check_names_the_stall_check_against_a_server_that_writes_while_holding_the_lock() {
    let (report, out) = check_server(common::naive::holds_the_lock_while_writing);
    assert_eq!(report.failed, [STALL, SLOW_DROPPED], "{out}");
    assert!(out.contains("then the server stopped"), "{out}");
}

#[test]
fn check_fails_every_check_when_nobody_listens() {
    let addr = basic::testing::loopback_listener().local_addr().unwrap();
    // The listener is dropped: connections to its port are refused.
    let mut out = Vec::new();
    let report = check::run(addr, TIMEOUT, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(report.passed.is_empty(), "{out}");
    assert!(out.ends_with("0 passed, 13 failed\n"), "{out}");
}
