//! `basic check` passes against the lesson's server and fails, naming the
//! right check, against deliberately broken servers.

use std::io::{Read, Write};
use std::net::TcpListener;
use std::time::Duration;

use plumbing::checklist::Report;
use plumbing::testing::start_server;

/// Short, so that the broken servers fail fast.
const TIMEOUT: Duration = Duration::from_millis(500);

fn check_server(serve: fn(TcpListener) -> anyhow::Result<()>) -> (Report, String) {
    let (addr, _server) = start_server(serve);
    let mut out = Vec::new();
    let report = basic::check::run(&[addr], TIMEOUT, &mut out);
    (report, String::from_utf8(out).unwrap())
}

/// Echoes each read without its last byte.
fn drops_last_byte(listener: TcpListener) -> anyhow::Result<()> {
    let (mut stream, _) = listener.accept()?;
    let mut buf = [0u8; 4096];
    loop {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            return Ok(());
        }
        stream.write_all(&buf[..n - 1])?;
    }
}

/// Reads everything, answers nothing.
fn never_answers(listener: TcpListener) -> anyhow::Result<()> {
    let (mut stream, _) = listener.accept()?;
    std::io::copy(&mut stream, &mut std::io::sink())?;
    Ok(())
}

#[test]
fn check_passes_against_the_lesson_server() {
    let (report, out) = check_server(basic::server::run);
    assert!(report.all_passed(), "{out}");
    assert!(out.ends_with("9 passed, 0 failed\n"), "{out}");
}

#[test]
fn check_names_the_first_echo_check_when_the_last_byte_is_dropped() {
    let (report, out) = check_server(drops_last_byte);
    assert_eq!(
        report.failed.first().map(String::as_str),
        Some("echo of a text line"),
        "{out}"
    );
    assert!(out.contains("FAIL echo of a text line\n"), "{out}");
    // The failure shows what was sent, expected and received.
    assert!(
        out.contains(r#"got:      "hello, socket" (13 bytes)"#),
        "{out}"
    );
    assert!(
        out.contains(r#"expected: "hello, socket\n" (14 bytes)"#),
        "{out}"
    );
}

#[test]
fn check_fails_without_hanging_against_a_server_that_never_answers() {
    let started = std::time::Instant::now();
    let (report, out) = check_server(never_answers);
    assert_eq!(
        report.passed,
        vec![format!("connect to {}", out_addr(&out))],
        "{out}"
    );
    assert_eq!(report.failed[0], "echo of a text line", "{out}");
    assert!(out.contains("then nothing more for 0.5s"), "{out}");
    assert!(out.ends_with("1 passed, 8 failed\n"), "{out}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "check took {:?}",
        started.elapsed()
    );
}

#[test]
fn check_fails_every_check_when_nothing_listens() {
    let addr = plumbing::testing::loopback_listener().local_addr().unwrap(); // closed at once
    let mut out = Vec::new();
    let report = basic::check::run(&[addr], TIMEOUT, &mut out);
    assert!(report.passed.is_empty());
    assert_eq!(report.failed.len(), 9);
}

fn out_addr(out: &str) -> &str {
    out.lines()
        .next()
        .and_then(|line| line.strip_prefix("ok connect to "))
        .unwrap_or("?")
}

/// Answers every read with a greeting longer than what was sent.
fn greets(listener: TcpListener) -> anyhow::Result<()> {
    let (mut stream, _) = listener.accept()?;
    let mut buf = [0u8; 4096];
    while stream.read(&mut buf)? > 0 {
        stream.write_all(b"Hello Good morning, how are you today?\n")?;
    }
    Ok(())
}

#[test]
fn a_wrong_answer_is_shown_whole_not_cut_at_the_expected_length() {
    let (report, out) = check_server(greets);
    assert!(!report.all_passed(), "{out}");
    assert!(
        out.contains(r#""Hello Good morning, how are you today?\n" (39 bytes)"#),
        "{out}"
    );
}

#[test]
fn check_finds_the_address_that_answers_without_using_up_a_one_client_server() {
    // Nothing listens at the first address (its listener is closed at once);
    // the lesson's server, which serves a single client, at the second.
    let nobody = plumbing::testing::loopback_listener().local_addr().unwrap();
    let (addr, _server) = start_server(basic::server::run);
    let mut out = Vec::new();
    let report = basic::check::run(&[nobody, addr], TIMEOUT, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(report.all_passed(), "{out}");
    assert!(
        out.starts_with(&format!("ok connect to {nobody} or {addr}\n")),
        "{out}"
    );
}
