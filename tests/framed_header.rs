//! Top-level tests for lesson `framed_header`: its `check` passes its own
//! server (in both the lesson's and the tutorial's settings, over IPv4 and
//! IPv6), and the framing meets the echo servers of lessons 1 and 2.

use std::net::{SocketAddr, TcpListener};
use std::time::Duration;

use framed_header::frame::{DEFAULT_MAX_PAYLOAD_BYTES, Framing};
use framed_header::{check, client, server};
use plumbing::testing::{SharedOutput, connect, start_server};

const TIMEOUT: Duration = Duration::from_secs(5);

fn framing(header_len: usize) -> Framing {
    Framing::new(header_len, DEFAULT_MAX_PAYLOAD_BYTES).unwrap()
}

fn serve(listener: TcpListener, header_len: usize, raw_replies: bool) -> SocketAddr {
    let addr = listener.local_addr().unwrap();
    let config = server::Config::new(framing(header_len), raw_replies);
    std::thread::spawn(move || server::run(listener, config));
    addr
}

fn run_check(addr: SocketAddr, header_len: usize, raw_replies: bool) -> (bool, String) {
    let probe = check::Probe::new(addr, TIMEOUT, framing(header_len), raw_replies);
    let mut out = Vec::new();
    let report = check::run(&probe, &mut out);
    (report.all_passed(), String::from_utf8(out).unwrap())
}

#[test]
fn framed_header_check_passes_against_its_server_in_both_settings() {
    for (header_len, raw) in [(128, false), (64, true)] {
        let addr = serve(plumbing::testing::loopback_listener(), header_len, raw);
        let (passed, out) = run_check(addr, header_len, raw);
        assert!(passed, "{out}");
        assert!(out.ends_with("13 passed, 0 failed\n"), "{out}");
    }
}

#[test]
fn framed_header_check_passes_over_ipv6_loopback_where_there_is_one() {
    let Ok(listener) = basic::net::listen_on("[::1]:0".parse().unwrap(), 16) else {
        println!("note: no IPv6 loopback on this machine; skipping");
        return;
    };
    let (passed, out) = run_check(serve(listener, 128, false), 128, false);
    assert!(passed, "{out}");
}

#[test]
fn an_echo_server_fails_the_framed_check_at_the_round_trip_without_hanging() {
    let (addr, _server) = start_server(multiclients::server::run);
    let probe = check::Probe::new(addr, Duration::from_millis(500), framing(128), false);
    let mut out = Vec::new();
    let report = check::run(&probe, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert_eq!(
        report.failed[0], "round trip: \"hello\" is answered \"Msg received\"",
        "{out}"
    );
    assert!(
        out.ends_with(&format!("{} failed\n", report.failed.len())),
        "{out}"
    );
}

#[test]
fn the_framed_client_reads_an_echo_servers_replies_because_an_echoed_frame_is_a_frame() {
    let (addr, _server) = start_server(multiclients::server::run);
    let config = client::Config {
        reply_wait: TIMEOUT,
        ..client::Config::new(framing(128), false)
    };
    let output = SharedOutput::default();
    client::run(
        connect(addr),
        &b"hello\nline two\n"[..],
        output.clone(),
        &config,
    )
    .unwrap();
    // Each message comes back whole, header included, and reads as a reply.
    // The goodbye comes back too, and is awaited, not printed: one reply per line.
    assert_eq!(output.contents(), b"hello\nline two\n");
}
