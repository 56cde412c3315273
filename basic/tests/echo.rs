//! The lesson's server and client, driven over loopback through the library.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener};
use std::time::{Duration, Instant};

use plumbing::testing::{
    SharedOutput, connect, join_within, read_exactly, read_to_close, start_server,
};

fn start() -> (
    std::net::SocketAddr,
    std::thread::JoinHandle<anyhow::Result<()>>,
) {
    start_server(basic::server::run)
}

#[test]
fn a_single_line_is_echoed_byte_for_byte() {
    let (addr, _server) = start();
    let mut stream = connect(addr);
    stream.write_all(b"hello, socket\n").unwrap();
    assert_eq!(read_exactly(&mut stream, 14), b"hello, socket\n");
}

#[test]
fn many_lines_come_back_in_order() {
    let (addr, _server) = start();
    let mut stream = connect(addr);
    let lines: Vec<u8> = (0..500)
        .flat_map(|i| format!("line {i}\n").into_bytes())
        .collect();
    stream.write_all(&lines).unwrap();
    assert_eq!(read_exactly(&mut stream, lines.len()), lines);
}

#[test]
fn an_empty_line_is_echoed() {
    let (addr, _server) = start();
    let mut stream = connect(addr);
    stream.write_all(b"\n").unwrap();
    assert_eq!(read_exactly(&mut stream, 1), b"\n");
}

#[test]
fn a_one_mebibyte_line_is_echoed_exactly() {
    let (addr, _server) = start();
    let mut stream = connect(addr);
    let mut line: Vec<u8> = (0..1024 * 1024 - 1)
        .map(|i| b'a' + (i % 26) as u8)
        .collect();
    line.push(b'\n');
    // Write on another thread: the echo fills our receive buffer while we write.
    let mut writer = stream.try_clone().unwrap();
    let sent = line.clone();
    let writing = std::thread::spawn(move || writer.write_all(&sent));
    assert_eq!(read_exactly(&mut stream, line.len()), line);
    writing.join().unwrap().unwrap();
}

#[test]
fn non_utf8_bytes_are_echoed_exactly() {
    let (addr, _server) = start();
    let mut stream = connect(addr);
    let bytes: Vec<u8> = (0..=255).collect();
    stream.write_all(&bytes).unwrap();
    assert_eq!(read_exactly(&mut stream, 256), bytes);
}

#[test]
fn a_half_closed_client_still_gets_every_echo_then_eof() {
    let (addr, _server) = start();
    let mut stream = connect(addr);
    stream.write_all(b"one\ntwo\nthree\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut stream), b"one\ntwo\nthree\n");
}

#[test]
fn the_server_returns_after_its_one_client_leaves() {
    let (addr, server) = start();
    let mut stream = connect(addr);
    stream.write_all(b"bye\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    read_to_close(&mut stream);
    join_within(server).expect("run returns Ok");
}

#[test]
fn a_client_that_resets_mid_line_does_not_crash_the_server() {
    let (addr, server) = start();
    let mut stream = connect(addr);
    stream.write_all(b"half a li").unwrap();
    read_exactly(&mut stream, 9); // the server has the bytes; now vanish
    basic::net::close_with_reset(stream).unwrap();
    join_within(server).expect("a reset is logged, not returned as an error");
}

#[test]
fn the_client_sends_its_input_byte_for_byte_and_prints_every_echo() {
    let (addr, _server) = start();
    let output = SharedOutput::default();
    let input: &[u8] = b"first\n\nthird \xff\nno final newline";
    basic::client::run(connect(addr), input, output.clone()).unwrap();
    assert_eq!(output.contents(), input);
}

/// Accepts one client, reads one line, and closes: a server that leaves
/// while the client still has input.
fn leaves_after_one_line(listener: TcpListener) -> anyhow::Result<()> {
    let (mut stream, _) = listener.accept()?;
    let mut buf = [0u8; 64];
    let _ = stream.read(&mut buf)?;
    Ok(())
}

#[test]
fn the_client_says_so_when_the_server_leaves_before_the_input_ends() {
    let (addr, _server) = start_server(leaves_after_one_line);
    // Input that never ends, as a person who has not pressed Ctrl-D yet.
    let (typing, input) = std::sync::mpsc::channel::<Vec<u8>>();
    typing.send(b"hello\n".to_vec()).unwrap();
    let input = std::io::BufReader::new(ChannelReader(input));
    let err = basic::client::run(connect(addr), input, SharedOutput::default()).unwrap_err();
    assert!(
        format!("{err:#}").contains("the server closed the connection before our input ended"),
        "{err:#}"
    );
    drop(typing);
}

/// Reads everything, answers nothing, and keeps the connection open.
fn silent(listener: TcpListener) -> anyhow::Result<()> {
    let (mut stream, _) = listener.accept()?;
    std::io::copy(&mut stream, &mut std::io::sink())?;
    loop {
        std::thread::park(); // hold `stream` open until the test process ends
    }
}

#[test]
fn the_client_gives_up_with_an_error_when_the_server_stays_silent_after_the_input() {
    let (addr, _server) = start_server(silent);
    let wait = Duration::from_millis(300);
    let started = Instant::now();
    let err = basic::client::run_with_reply_wait(
        connect(addr),
        &b"anyone?\n"[..],
        SharedOutput::default(),
        wait,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("sent nothing for 0.3s after our input ended"),
        "{err}"
    );
    assert!(started.elapsed() >= wait && started.elapsed() < Duration::from_secs(5));
}

/// Input that arrives whenever the test sends it: a stand-in for a person typing.
struct ChannelReader(std::sync::mpsc::Receiver<Vec<u8>>);

impl Read for ChannelReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        match self.0.recv() {
            Ok(bytes) => {
                let n = bytes.len().min(buf.len());
                buf[..n].copy_from_slice(&bytes[..n]);
                Ok(n)
            }
            Err(_) => Ok(0), // the typist is gone: end of input
        }
    }
}

/// Reads the client's input, then sends a line every few milliseconds, for
/// ever, and never closes.
fn chatters_for_ever(listener: TcpListener) -> anyhow::Result<()> {
    let (mut stream, _) = listener.accept()?;
    let mut buf = [0u8; 64];
    let _ = stream.read(&mut buf)?;
    loop {
        stream.write_all(b"more\n")?;
        std::thread::sleep(Duration::from_millis(20)); // a server's pace, not synchronisation
    }
}

#[test]
fn the_client_gives_up_on_a_server_that_keeps_sending_after_the_input() {
    let (addr, _server) = start_server(chatters_for_ever);
    let wait = Duration::from_millis(200);
    let err = basic::client::run_with_reply_wait(
        connect(addr),
        &b"hello\n"[..],
        SharedOutput::default(),
        wait,
    )
    .unwrap_err();
    assert!(
        err.to_string()
            .contains("the server kept sending for 1.2s after our input ended"),
        "{err}"
    );
}
