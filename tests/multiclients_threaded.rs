//! Top-level tests for lesson `multiclients_threaded`: its check passes
//! against its server over IPv4 and IPv6, and tells an echo server (lesson
//! `multiclients`) from a chat server.

use std::net::TcpListener;
use std::time::Duration;

use multiclients_threaded::check::{self, NICK};
use multiclients_threaded::server::{self, ServerOptions};
use plumbing::testing::start_server;

const TIMEOUT: Duration = Duration::from_secs(2);

fn quiet() -> ServerOptions {
    ServerOptions {
        log_messages: false,
        ..ServerOptions::default()
    }
}

#[test]
fn the_chat_check_passes_against_the_threaded_server_over_ipv6() {
    let listener = match TcpListener::bind("[::1]:0") {
        Ok(listener) => listener,
        Err(err) => return eprintln!("skipped: no IPv6 loopback here ({err})"),
    };
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || server::run(listener, &quiet()));
    let mut out = Vec::new();
    let report = check::run(addr, TIMEOUT, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(report.all_passed(), "{out}");
    assert!(out.starts_with("ok connect to [::1]:"), "{out}");
}

#[test]
fn an_echo_server_fails_the_chat_check_at_nick_and_the_rest_are_not_run() {
    let (addr, _server) = start_server(multiclients::server::run);
    let mut out = Vec::new();
    let report = check::run(addr, Duration::from_millis(500), &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(report.passed.len(), 1, "{out}"); // connecting works
    assert_eq!(report.failed[0], NICK, "{out}");
    assert!(out.contains("not run: every check needs"), "{out}");
    assert!(out.ends_with("1 passed, 13 failed\n"), "{out}");
}
