//! Top-level tests: every lesson keeps the contract in [`CONTRACT.md`](CONTRACT.md)
//! (its own `check` passes against its own server), and lessons that share a
//! wire format can check each other.

use std::time::Duration;

use plumbing::testing::{SharedOutput, connect, start_server};

const TIMEOUT: Duration = Duration::from_secs(5);

fn check_output(report: &plumbing::checklist::Report, out: Vec<u8>) -> String {
    let out = String::from_utf8(out).expect("check prints UTF-8");
    assert!(
        out.ends_with(&format!("{} passed, 0 failed\n", report.passed.len())),
        "{out}"
    );
    out
}

#[test]
fn basic_check_passes_against_the_basic_server() {
    let (addr, _server) = start_server(basic::server::run);
    let mut out = Vec::new();
    let report = basic::check::run(&[addr], TIMEOUT, &mut out);
    check_output(&report, out);
}

#[test]
fn multiclients_check_passes_against_the_multiclients_server() {
    let (addr, _server) = start_server(multiclients::server::run);
    let mut out = Vec::new();
    let report = multiclients::check::run(&[addr], TIMEOUT, &mut out);
    check_output(&report, out);
}

#[test]
fn the_multiclients_server_passes_the_basic_echo_checks_too() {
    let (addr, _server) = start_server(multiclients::server::run);
    let mut out = Vec::new();
    let report = basic::check::run(&[addr], TIMEOUT, &mut out);
    check_output(&report, out);
}

#[test]
fn the_basic_server_fails_multiclients_check_once_its_one_client_is_gone() {
    let (addr, _server) = start_server(basic::server::run);
    let mut out = Vec::new();
    let report = multiclients::check::run(&[addr], Duration::from_millis(500), &mut out);
    let out = String::from_utf8(out).unwrap();
    // The echo checks pass (one client), then the server has exited.
    assert_eq!(report.passed.len(), 9, "{out}");
    assert_eq!(
        report.failed[0], "the first client is served while two more wait",
        "{out}"
    );
}

#[test]
fn the_shared_client_talks_to_both_echo_servers() {
    for serve in [basic::server::run, multiclients::server::run] {
        let (addr, _server) = start_server(serve);
        let output = SharedOutput::default();
        basic::client::run(connect(addr), &b"ping\n"[..], output.clone()).unwrap();
        assert_eq!(output.contents(), b"ping\n");
    }
}
