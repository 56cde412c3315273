//! The client library, driven with in-memory input and output against the
//! lesson's server (and against a server that hangs up on it).

mod common;

use std::io::{BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use common::{Chat, quiet, start};
use multiclients_threaded::client;
use plumbing::testing::{SharedOutput, connect, start_server};

#[test]
fn piped_lines_are_sent_under_the_chosen_name_and_the_client_quits_at_the_end() {
    let addr = start(quiet());
    let (mut observer, _) = Chat::join(addr);
    let output = SharedOutput::default();
    let input = &b"hello\nlast line without newline"[..];
    client::run(connect(addr), Some("zed"), input, output.clone()).unwrap();
    observer.expect("* guest2 joined\n");
    observer.expect("* guest2 is now known as zed\n");
    observer.expect("zed: hello\n");
    observer.expect("zed: last line without newline\n");
    observer.expect("* zed left\n");
    let printed = String::from_utf8(output.contents()).unwrap();
    assert_eq!(
        printed,
        "* welcome, guest2: 1 other(s) here. /nick NAME renames, /who lists, /quit leaves\n\
         * guest2 is now known as zed\n"
    );
}

#[test]
fn typing_quit_ends_the_client_and_nothing_after_it_is_sent() {
    let addr = start(quiet());
    let (mut observer, _) = Chat::join(addr);
    let input = &b"hi\n/quit\nnever sent\n"[..];
    client::run(connect(addr), None, input, SharedOutput::default()).unwrap();
    observer.expect("* guest2 joined\n");
    observer.expect("guest2: hi\n");
    observer.expect("* guest2 left\n");
    observer.send("/who");
    observer.expect("* here (1): guest1\n");
}

/// Input that never ends until its sender is dropped: a person who has not
/// typed anything yet.
struct Silent(mpsc::Receiver<()>);

impl Read for Silent {
    fn read(&mut self, _buf: &mut [u8]) -> std::io::Result<usize> {
        let _ = self.0.recv(); // blocks until the test drops the sender
        Ok(0)
    }
}

#[test]
fn the_client_fails_saying_so_when_the_server_closes_first() {
    let (addr, _server) = start_server(|listener: TcpListener| {
        let (mut stream, _) = listener.accept()?;
        stream.write_all(b"* going away\n")?;
        Ok(()) // dropping the stream closes the connection
    });
    let (_typing, silence) = mpsc::channel();
    let output = SharedOutput::default();
    let input = BufReader::new(Silent(silence));
    let err = client::run(connect(addr), None, input, output.clone()).unwrap_err();
    assert_eq!(err.to_string(), "the server closed the connection");
    assert_eq!(output.contents(), b"* going away\n");
}

#[test]
fn the_client_shows_control_characters_from_the_server_escaped() {
    let (addr, _server) = start_server(|listener: TcpListener| {
        let (mut stream, _) = listener.accept()?;
        // A hostile (or careless) server: clear the screen, move the cursor
        // home, a bidi override, and a UTF-8 character cut across writes.
        stream.write_all("\x1b[2J\rmallory: hi \u{202e}".as_bytes())?;
        stream.write_all(b"\xc3")?;
        stream.flush()?;
        stream.write_all(b"\xa9\n")?;
        Ok(())
    });
    let (_typing, silence) = mpsc::channel();
    let output = SharedOutput::default();
    let input = BufReader::new(Silent(silence));
    let _ = client::run(connect(addr), None, input, output.clone());
    assert_eq!(
        String::from_utf8(output.contents()).unwrap(),
        "\\u{1b}[2J\\u{d}mallory: hi \\u{202e}é\n"
    );
}
