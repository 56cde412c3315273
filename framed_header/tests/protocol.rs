//! The server, driven over loopback with hand-written bytes: every header
//! here is spelled out or padded by hand, never made by the lesson's own
//! encoder, so that a bug in the encoder cannot hide a bug in the server.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::sync::{Arc, Barrier};
use std::thread;

use framed_header::frame::Framing;
use framed_header::server::{self, Config};
use plumbing::testing::{connect, read_exactly, read_to_close, start_server};

/// The header of a 5-byte payload: "5", then 127 spaces.
const HEADER_5: &[u8; 128] = b"5                                                                                                                               ";
/// The server's framed answer: "12", 126 spaces, "Msg received".
const REPLY: &[u8; 140] = b"12                                                                                                                              Msg received";

const MIB: usize = 1024 * 1024;

fn start_with(header_len: usize, max_payload: usize, raw_replies: bool) -> SocketAddr {
    let config = Config::new(Framing::new(header_len, max_payload).unwrap(), raw_replies);
    start_server(move |listener| server::run(listener, config)).0
}

/// The lesson's server with its defaults: 128-byte header, 1 MiB, framed replies.
fn start() -> SocketAddr {
    start_with(128, MIB, false)
}

/// `digits` padded with spaces to 128 bytes, by hand.
fn header(digits: &str) -> Vec<u8> {
    let mut header = digits.as_bytes().to_vec();
    header.resize(128, b' ');
    header
}

fn message(text: &str) -> Vec<u8> {
    [header(&text.len().to_string()), text.as_bytes().to_vec()].concat()
}

fn send(stream: &mut TcpStream, bytes: &[u8]) {
    stream.write_all(bytes).expect("send");
}

/// Reads a refusal: a framed `!ERROR <reason>`, then the close. Returns the reason.
fn read_refusal(stream: &mut TcpStream) -> String {
    let got = read_to_close(stream);
    assert!(
        got.len() > 128,
        "expected a framed error reply, got {got:?}"
    );
    let (head, text) = got.split_at(128);
    assert_eq!(head, header(&text.len().to_string()), "error reply header");
    let text = String::from_utf8(text.to_vec()).unwrap();
    text.strip_prefix("!ERROR ")
        .unwrap_or_else(|| panic!("expected !ERROR, got {text:?}"))
        .to_string()
}

#[test]
fn hello_is_answered_with_a_framed_msg_received() {
    let mut stream = connect(start());
    send(&mut stream, &[&HEADER_5[..], b"hello"].concat());
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn an_empty_payload_is_answered() {
    let mut stream = connect(start());
    send(&mut stream, &header("0"));
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn a_multibyte_payload_is_measured_in_bytes_not_characters() {
    let mut stream = connect(start());
    // "héllo ✓": 7 characters, 10 bytes (é is 2 bytes, ✓ is 3).
    send(
        &mut stream,
        &[header("10"), "héllo ✓".as_bytes().to_vec()].concat(),
    );
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn a_header_written_one_byte_at_a_time_is_answered() {
    let mut stream = connect(start());
    for byte in HEADER_5 {
        send(&mut stream, &[*byte]); // TCP_NODELAY is on: one segment per byte
    }
    send(&mut stream, b"hello");
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn two_messages_in_one_write_get_two_replies() {
    let mut stream = connect(start());
    send(&mut stream, &[message("one"), message("two")].concat());
    assert_eq!(
        read_exactly(&mut stream, 280),
        [&REPLY[..], &REPLY[..]].concat()
    );
}

#[test]
fn leading_zeros_are_accepted() {
    let mut stream = connect(start());
    send(&mut stream, &[header("005"), b"hello".to_vec()].concat());
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn the_largest_payload_is_answered_and_the_stream_stays_in_step() {
    let mut stream = connect(start());
    let big = vec![b'x'; MIB];
    send(&mut stream, &[header("1048576"), big].concat());
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
    send(&mut stream, &message("ping"));
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn an_oversized_length_is_refused_before_any_payload_is_sent() {
    let mut stream = connect(start());
    send(&mut stream, &header("1048577"));
    assert_eq!(
        read_refusal(&mut stream),
        "the declared length 1048577 is over the limit of 1048576 bytes"
    );
}

#[test]
fn a_header_of_128_nines_is_refused_without_overflow() {
    let mut stream = connect(start());
    send(&mut stream, &[b'9'; 128]);
    assert!(read_refusal(&mut stream).contains("over the limit"));
}

#[test]
fn a_non_numeric_header_is_refused() {
    let mut stream = connect(start());
    send(&mut stream, &header("abc"));
    assert!(read_refusal(&mut stream).starts_with("header byte 0 is 'a', not a digit"));
}

#[test]
fn signs_underscores_blanks_and_empty_headers_are_refused() {
    let addr = start();
    for (digits, reason) in [
        ("+5", "header byte 0 is '+'"),
        ("-5", "header byte 0 is '-'"),
        ("1_0", "header byte 1 is '_'"),
        (" 5", "header byte 1 is a digit after a space"),
        ("5\t", "header byte 1 is '\\t'"),
        ("", "the header holds no length"),
    ] {
        let mut stream = connect(addr);
        send(&mut stream, &header(digits));
        let got = read_refusal(&mut stream);
        assert!(got.starts_with(reason), "{digits:?}: {got}");
    }
}

#[test]
fn a_payload_that_is_not_utf8_is_refused() {
    let mut stream = connect(start());
    send(&mut stream, &[header("3"), b"a\xff\xfe".to_vec()].concat());
    assert_eq!(
        read_refusal(&mut stream),
        "the payload is not UTF-8 (invalid from byte 1)"
    );
}

#[test]
fn a_refused_peer_leaves_the_other_clients_untouched() {
    let addr = start();
    let mut good = connect(addr);
    send(&mut good, &message("before"));
    assert_eq!(read_exactly(&mut good, 140), REPLY);
    let mut bad = connect(addr);
    send(&mut bad, &header("-1"));
    read_refusal(&mut bad);
    send(&mut good, &message("after"));
    assert_eq!(read_exactly(&mut good, 140), REPLY);
}

#[test]
fn a_peer_closing_mid_header_gets_no_reply_and_the_server_goes_on() {
    let addr = start();
    let mut leaving = connect(addr);
    send(&mut leaving, b"5    ");
    leaving.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut leaving), b"");
    let mut fresh = connect(addr);
    send(&mut fresh, &message("still there?"));
    assert_eq!(read_exactly(&mut fresh, 140), REPLY);
}

#[test]
fn a_peer_closing_mid_payload_gets_no_reply_and_others_are_untouched() {
    let addr = start();
    let mut other = connect(addr);
    let mut leaving = connect(addr);
    send(&mut leaving, &[header("10"), b"abc".to_vec()].concat());
    leaving.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut leaving), b"");
    send(&mut other, &message("unaffected"));
    assert_eq!(read_exactly(&mut other, 140), REPLY);
    let mut fresh = connect(addr);
    send(&mut fresh, &message("fresh"));
    assert_eq!(read_exactly(&mut fresh, 140), REPLY);
}

#[test]
fn a_peer_resetting_mid_payload_does_not_stop_the_server() {
    let addr = start();
    let mut vanishing = connect(addr);
    send(&mut vanishing, &[header("10"), b"abc".to_vec()].concat());
    basic::net::close_with_reset(vanishing).unwrap();
    let mut fresh = connect(addr);
    send(&mut fresh, &message("fresh"));
    assert_eq!(read_exactly(&mut fresh, 140), REPLY);
}

#[test]
fn an_error_reply_fits_the_payload_limit_in_whole_words_so_a_peer_can_read_it() {
    let mut stream = connect(start_with(8, 20, false));
    send(&mut stream, b"21      ");
    // "!ERROR length over 20" is 21 bytes: one too many for the limit, so
    // the short reason is cut after its last whole word.
    assert_eq!(read_to_close(&mut stream), b"18      !ERROR length over");
}

#[test]
fn a_peer_that_half_closes_after_a_split_message_gets_its_reply_then_a_close() {
    // What `{ printf '%-64s' 5; sleep 3; printf '%-64s%s' '' hello; } | nc -N`
    // does: half a header, the rest with the payload, then FIN at the end of
    // input. The reply must still come, then our close, so that nc can exit.
    let mut stream = connect(start());
    send(&mut stream, &HEADER_5[..64]);
    send(&mut stream, &[&HEADER_5[64..], b"hello"].concat());
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut stream), REPLY);
}

#[test]
fn the_protocol_goodbye_is_answered_then_the_connection_closes() {
    let mut stream = connect(start());
    send(
        &mut stream,
        &[header("12"), b"!DISCONNECT!".to_vec()].concat(),
    );
    assert_eq!(read_to_close(&mut stream), REPLY);
}

#[test]
fn the_tutorial_goodbye_is_answered_then_the_connection_closes() {
    let mut stream = connect(start());
    send(
        &mut stream,
        &[header("11"), b"!DISCONNECT".to_vec()].concat(),
    );
    assert_eq!(read_to_close(&mut stream), REPLY);
}

#[test]
fn raw_replies_are_the_bare_bytes_msg_received() {
    let mut stream = connect(start_with(128, MIB, true));
    send(&mut stream, &[&HEADER_5[..], b"hello"].concat());
    assert_eq!(read_exactly(&mut stream, 12), b"Msg received");
}

#[test]
fn the_tutorial_session_with_a_64_byte_header_and_raw_replies_is_byte_exact() {
    // What the tutorial's client.py sends, byte for byte: send("Hello
    // World!"), send("Hello Everyone!"), send("Hello Tim!"),
    // send(DISCONNECT_MESSAGE); after each, client.recv(2048).
    let mut stream = connect(start_with(64, MIB, true));
    for sent in [
        &b"12                                                              Hello World!"[..],
        b"15                                                              Hello Everyone!",
        b"10                                                              Hello Tim!",
    ] {
        send(&mut stream, sent);
        assert_eq!(read_exactly(&mut stream, 12), b"Msg received");
    }
    send(
        &mut stream,
        b"11                                                              !DISCONNECT",
    );
    assert_eq!(read_to_close(&mut stream), b"Msg received");
}

#[test]
fn fifty_clients_at_once_are_each_answered() {
    let addr = start();
    let all_connected = Arc::new(Barrier::new(50));
    let clients: Vec<_> = (0..50)
        .map(|i| {
            let all_connected = Arc::clone(&all_connected);
            thread::spawn(move || {
                let mut stream = connect(addr);
                all_connected.wait(); // every client is connected before any sends
                for round in 0..3 {
                    send(&mut stream, &message(&format!("client {i} round {round}")));
                    assert_eq!(read_exactly(&mut stream, 140), REPLY);
                }
                send(&mut stream, &message("!DISCONNECT!"));
                assert_eq!(read_to_close(&mut stream), REPLY);
            })
        })
        .collect();
    for client in clients {
        client.join().expect("a client thread failed");
    }
}

// ---- Batching: many messages per read, many replies per write ----

#[test]
fn a_thousand_pipelined_messages_in_one_write_get_a_thousand_replies() {
    let mut stream = connect(start());
    let batch: Vec<u8> = (0..1000)
        .flat_map(|i| message(&format!("pipelined {i}")))
        .collect();
    send(&mut stream, &batch);
    assert_eq!(read_exactly(&mut stream, 1000 * 140), REPLY.repeat(1000));
    send(&mut stream, &message("!DISCONNECT!"));
    assert_eq!(read_to_close(&mut stream), REPLY);
}

#[test]
fn a_reply_is_not_held_back_while_the_next_message_is_incomplete() {
    // One write: a whole message, then half of the next one. The reply to
    // the first must leave although the input buffer still holds bytes:
    // the server is about to wait, and nothing may wait with it.
    let mut stream = connect(start());
    let next = message("second");
    send(
        &mut stream,
        &[message("first"), next[..100].to_vec()].concat(),
    );
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
    send(&mut stream, &next[100..]);
    assert_eq!(read_exactly(&mut stream, 140), REPLY);
}

#[test]
fn a_pipelining_client_that_reads_while_it_writes_gets_every_reply() {
    // 20,000 messages written as fast as possible on one thread while
    // another reads: replies flow back in batches as the input runs dry.
    let stream = connect(start());
    let mut writer = stream.try_clone().unwrap();
    let count = 20_000;
    let writing = thread::spawn(move || {
        let batch: Vec<u8> = (0..100).flat_map(|_| message("x")).collect();
        for _ in 0..count / 100 {
            writer.write_all(&batch).expect("send");
        }
        writer.write_all(&message("!DISCONNECT")).expect("send");
    });
    let mut stream = stream;
    let got = read_to_close(&mut stream);
    writing.join().unwrap();
    assert_eq!(
        got.len(),
        (count + 1) * 140,
        "one reply per message and the goodbye"
    );
    assert!(
        got.chunks(140).all(|reply| reply == REPLY),
        "every reply intact"
    );
}
