//! The chat protocol over loopback, on the readiness loop. The scenarios live
//! in `common`, so that exercise 4 runs the very same ones on the naive loop.
//! Lesson 3's checks, whose flood needs back-pressure, are exercise 14's
//! (`exercises.rs`).

mod common;

use sandbox::server::EventLoop::Readiness;

#[test]
fn a_line_reaches_every_other_client_and_not_the_sender() {
    common::a_line_reaches_every_other_client_and_not_the_sender(Readiness);
}

#[test]
fn nick_refuses_taken_and_malformed_names() {
    common::nick_refuses_taken_and_malformed_names(Readiness);
}

#[test]
fn quit_says_bye_closes_and_tells_the_room() {
    common::quit_says_bye_closes_and_tells_the_room(Readiness);
}

#[test]
fn a_line_split_across_many_writes_arrives_whole() {
    common::a_line_split_across_many_writes_arrives_whole(Readiness);
}

#[test]
fn an_over_long_line_is_refused_and_the_others_go_on() {
    common::an_over_long_line_is_refused_and_the_others_go_on(Readiness);
}

#[test]
fn a_thousand_concurrent_clients_all_receive_a_broadcast() {
    common::a_thousand_concurrent_clients_all_receive_a_broadcast(Readiness);
}

#[test]
fn a_slow_reader_gets_every_byte_in_order_through_partial_writes() {
    common::a_slow_reader_gets_every_byte_in_order_through_partial_writes(Readiness);
}

#[test]
fn a_reader_that_never_reads_is_dropped_and_the_room_is_told() {
    common::a_reader_that_never_reads_is_dropped_and_the_room_is_told(Readiness);
}

#[test]
fn names_ignore_case_text_is_escaped_and_a_last_line_arrives() {
    common::names_ignore_case_text_is_escaped_and_a_last_line_arrives(Readiness);
}

#[test]
fn a_last_line_one_byte_over_the_limit_is_not_delivered() {
    use multiclients_threaded::protocol::MAX_LINE_BYTES;
    use std::io::{Read, Write};
    let addr = common::start(
        Readiness,
        sandbox::room::Options {
            join_notices: false,
            ..sandbox::room::Options::default()
        },
    );
    let mut alice = common::Chatter::join(addr);
    // One byte over the limit, no `\r`, no `\n`, then the end of input: the
    // inbox lets it wait (a `\r` could still come), but it is not a line.
    let mut last = plumbing::testing::connect(addr);
    let mut welcome = [0u8; 9];
    last.read_exact(&mut welcome).unwrap(); // "* welcome"
    last.write_all(&vec![b'x'; MAX_LINE_BYTES + 1]).unwrap();
    last.shutdown(std::net::Shutdown::Write).unwrap();
    // Once the server has closed `last`, it has handled its last line.
    let mut rest = Vec::new();
    let _ = last.read_to_end(&mut rest);
    // The next line alice sees is what comes after, not the over-long one.
    let mut bob = common::Chatter::join(addr);
    bob.send("after\n");
    assert_eq!(alice.line(), "guest3: after\n");
}

#[test]
fn the_client_ends_cleanly_when_the_server_says_it_is_shutting_down() {
    use std::io::{BufReader, Write};
    use std::net::TcpListener;
    // A server that greets, announces its shutdown and closes, while the
    // client's input is still open (a person who has not pressed Ctrl-D).
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        let (mut stream, _) = listener.accept().unwrap();
        let _ = stream.write_all(b"* welcome, guest1\n* server shutting down\n");
    });
    // Input that never ends: a connection nobody writes to (kept open).
    let quiet = TcpListener::bind("127.0.0.1:0").unwrap();
    let input = std::net::TcpStream::connect(quiet.local_addr().unwrap()).unwrap();
    let output = plumbing::testing::SharedOutput::default();
    let stream = plumbing::testing::connect(addr);
    sandbox::client::run(stream, BufReader::new(input), output.clone(), None)
        .expect("a server that said it shuts down ends the conversation cleanly");
    assert_eq!(
        output.contents(),
        b"* welcome, guest1\n* server shutting down\n"
    );
}
