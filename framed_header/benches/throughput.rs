//! `cargo bench -p framed_header`: messages per second through the real
//! server binary, for 1 to 64 connections at once.
//!
//! Each connection sends its share of the messages in lock step (send one,
//! wait for its `Msg received`), as the tutorial's client does. Every
//! message is accounted for twice: each client checks and counts the
//! replies it got, and the server's log must show one `[peer] ...` line per
//! message (plus one per goodbye).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use basic::testing::{ServerProcess, TEST_TIMEOUT};
use framed_header::frame::{DEFAULT_HEADER_LEN, DEFAULT_MAX_PAYLOAD_BYTES, Framing};

const SERVER: &str = env!("CARGO_BIN_EXE_framed_header");
/// Messages per round, shared out among the connections.
const MESSAGES_PER_ROUND: usize = 20_000;
const CONNECTIONS: &[usize] = &[1, 4, 16, 64];

fn main() {
    let server = ServerProcess::start(SERVER, &["server", "--port", "0", "--backlog", "256"]);
    println!("framed_header: {MESSAGES_PER_ROUND} messages per round, lock step, 128-byte header");
    for &connections in CONNECTIONS {
        round(&server, connections);
    }
}

fn round(server: &ServerProcess, connections: usize) {
    let per_client = MESSAGES_PER_ROUND / connections;
    let addr = server.addr;
    let start = Instant::now();
    let clients: Vec<_> = (0..connections)
        .map(|c| thread::spawn(move || client(addr, c, per_client)))
        .collect();
    let replies: usize = clients
        .into_iter()
        .map(|t| t.join().expect("a client thread panicked"))
        .sum();
    let elapsed = start.elapsed();
    let sent = connections * per_client;
    assert_eq!(replies, sent, "every message must get exactly one reply");
    let logged = count_message_lines(server, sent + connections);
    assert_eq!(
        logged,
        sent + connections,
        "the server must log every message and goodbye"
    );
    let rate = sent as f64 / elapsed.as_secs_f64();
    println!(
        "{connections:>3} connections: {sent} sent, {replies} replies, {logged} message log \
         lines (goodbyes included) in {:.2}s = {rate:.0} messages/s",
        elapsed.as_secs_f64()
    );
}

/// One connection: `count` messages in lock step, then the goodbye.
/// Returns how many correct replies came back.
fn client(addr: SocketAddr, id: usize, count: usize) -> usize {
    let framing = Framing::new(DEFAULT_HEADER_LEN, DEFAULT_MAX_PAYLOAD_BYTES).expect("framing");
    let expected = framing.encode("Msg received").expect("reply frame");
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(TEST_TIMEOUT))
        .expect("timeout");
    let mut reply = vec![0u8; expected.len()];
    let mut replies = 0;
    for i in 0..=count {
        let text = if i == count {
            "!DISCONNECT!".to_string()
        } else {
            format!("message {i} from client {id}")
        };
        stream
            .write_all(&framing.encode(&text).expect("frame"))
            .expect("send");
        stream.read_exact(&mut reply).expect("reply");
        assert_eq!(reply, expected, "a reply differs");
        replies += usize::from(i < count);
    }
    replies
}

/// Counts the server's `[peer] message` lines until `expected` arrived (or
/// the log goes quiet), leaving connect/leave lines aside.
fn count_message_lines(server: &ServerProcess, expected: usize) -> usize {
    let mut count = 0;
    while count < expected {
        match server.lines.recv_timeout(Duration::from_secs(5)) {
            Ok(line) if is_message_line(&line) => count += 1,
            Ok(_) => {}
            Err(_) => break,
        }
    }
    count
}

fn is_message_line(line: &str) -> bool {
    line.contains("] \"message ") || line.contains("] \"!DISCONNECT!\"")
}
