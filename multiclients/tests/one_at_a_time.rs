//! The iterative server, driven over loopback: clients are served strictly
//! one after another, and one client's trouble ends only that client.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use plumbing::testing::{connect, read_exactly, read_to_close, start_server};

fn start() -> std::net::SocketAddr {
    start_server(multiclients::server::run).0
}

/// Asserts that nothing arrives on `stream` for a moment: the server has not
/// got round to this client. (A negative can only be shown by waiting.)
fn assert_not_served_yet(stream: &mut TcpStream) {
    stream
        .set_read_timeout(Some(Duration::from_millis(300)))
        .unwrap();
    let mut buf = [0u8; 64];
    match stream.read(&mut buf) {
        Err(err) if plumbing::checklist::is_timeout(&err) => {}
        other => panic!("expected silence while another client is served, got {other:?}"),
    }
    stream
        .set_read_timeout(Some(plumbing::testing::TEST_TIMEOUT))
        .unwrap();
}

#[test]
fn three_clients_connected_at_once_are_served_strictly_one_after_another() {
    let addr = start();
    let mut clients: Vec<TcpStream> = (0..3).map(|_| connect(addr)).collect();
    for (i, client) in clients.iter_mut().enumerate() {
        client.write_all(format!("from {i}\n").as_bytes()).unwrap();
    }
    assert_eq!(read_exactly(&mut clients[0], 7), b"from 0\n");
    assert_not_served_yet(&mut clients[1]);
    assert_not_served_yet(&mut clients[2]);

    clients[0].shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_exactly(&mut clients[1], 7), b"from 1\n");
    assert_not_served_yet(&mut clients[2]);

    clients[1].shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_exactly(&mut clients[2], 7), b"from 2\n");
}

#[test]
fn the_server_goes_on_after_a_client_resets_mid_line() {
    let addr = start();
    let mut vanishing = connect(addr);
    vanishing.write_all(b"no newline, then gone").unwrap();
    read_exactly(&mut vanishing, 21);
    basic::net::close_with_reset(vanishing).unwrap();

    let mut next = connect(addr);
    next.write_all(b"still serving?\n").unwrap();
    next.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut next), b"still serving?\n");
}

#[test]
fn a_hundred_clients_in_a_row_are_all_served() {
    let addr = start();
    for i in 0..100 {
        let mut client = connect(addr);
        let line = format!("client {i}\n");
        client.write_all(line.as_bytes()).unwrap();
        client.shutdown(Shutdown::Write).unwrap();
        assert_eq!(read_to_close(&mut client), line.as_bytes());
    }
}

/// A server that serves every client at once, on its own thread: correct
/// for echo, but not the iterative server this lesson's check asks for.
fn threaded_echo(listener: TcpListener) -> anyhow::Result<()> {
    for stream in listener.incoming() {
        let stream = stream?;
        let peer = stream.peer_addr()?;
        std::thread::spawn(move || basic::server::echo(stream, peer));
    }
    Ok(())
}

#[test]
fn check_passes_against_the_lesson_server() {
    let mut out = Vec::new();
    let report = multiclients::check::run(&[start()], Duration::from_secs(2), &mut out);
    assert!(report.all_passed(), "{}", String::from_utf8_lossy(&out));
}

#[test]
fn check_names_the_waiting_check_against_a_server_that_serves_all_at_once() {
    let (addr, _server) = start_server(threaded_echo);
    let mut out = Vec::new();
    let report = multiclients::check::run(&[addr], Duration::from_secs(1), &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        report.failed.first().map(String::as_str),
        Some("the first client is served while two more wait"),
        "{out}"
    );
    assert!(
        out.contains("while another client was being served"),
        "{out}"
    );
}

#[test]
fn a_silent_client_is_closed_after_the_idle_timeout_and_the_next_is_served() {
    let (addr, _server) = start_server(|listener| {
        multiclients::server::run_with_idle_timeout(listener, Duration::from_millis(300))
    });
    let mut silent = connect(addr);
    let mut next = connect(addr);
    next.write_all(b"my turn?\n").unwrap();
    // The silent client is closed (EOF) and the next one gets its echo.
    assert_eq!(read_to_close(&mut silent), b"");
    assert_eq!(read_exactly(&mut next, 9), b"my turn?\n");
}
