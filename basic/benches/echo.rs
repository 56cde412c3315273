//! How fast lesson 1's echo server answers, next to a C epoll echo server
//! measured in the same run (the ratio is what to compare: this machine may
//! be shared, so absolute figures move from run to run).
//!
//!     cargo bench -p basic                       (this server and the C reference)
//!     cargo bench -p basic -- --against ADDR     (and any running echo server)
//!
//! Two workloads, each on one connection, with the server's log on and its
//! stdout read by a thread (as `cat` would):
//! - round trips: send 64 bytes, wait for their echo, repeat (latency bound);
//! - burst: send 16 MiB in 64-byte writes as fast as possible while a second
//!   thread reads the echoes (throughput bound; the server must not stall
//!   on its own log).
//!
//! Each runs in many short turns, alternating between the servers, and the
//! best turn of each counts (other load on a shared machine only slows a
//! turn down).
//! Every byte echoed is checked: the run reports bytes lost or out of order
//! (both must be 0).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::thread;
use std::time::{Duration, Instant};

use plumbing::testing::{ServerProcess, start_reference_server};

const MESSAGE: &[u8; 64] = b"the quick brown fox jumps over the lazy dog, 0123456789 abcdefg\n";
/// Round trips: turns per server, and round trips per turn; the best turn counts.
const TURNS: usize = 40;
const ROUND_TRIPS_PER_TURN: usize = 2_000;
/// Bursts per server; the best counts.
const BURSTS: usize = 3;
const BURST_BYTES: usize = 16 << 20;

fn main() {
    let against: Option<SocketAddr> = std::env::args()
        .skip_while(|arg| arg != "--against")
        .nth(1)
        .map(|addr| {
            addr.parse()
                .expect("--against takes an address such as 127.0.0.1:5000")
        });

    // Best of many short turns, alternating between the servers: on a
    // shared machine other load only ever slows a turn down, so the best
    // turn is the closest to what a server can do, and alternating gives
    // both servers the same moments of the machine.
    let reference = start_reference_server("c_epoll_echo.c", &["--port", "0"]);
    let our_server = ServerProcess::start(env!("CARGO_BIN_EXE_basic"), &["server", "--port", "0"]);
    let mut servers: Vec<(SocketAddr, f64)> = vec![(our_server.addr, 0.0)];
    servers.extend(reference.iter().map(|server| (server.addr, 0.0)));
    servers.extend(against.map(|addr| (addr, 0.0)));
    // One connection each, held for every turn (the lesson's server serves
    // one client: this is it).
    let mut streams: Vec<TcpStream> = servers.iter().map(|(addr, _)| connect(*addr)).collect();
    for _ in 0..TURNS {
        for (stream, (_, best)) in streams.iter_mut().zip(servers.iter_mut()) {
            *best = best.max(round_trips_per_second(stream, ROUND_TRIPS_PER_TURN));
        }
    }
    drop(streams);
    // Bursts: a connection each, so a fresh lesson server each time.
    let mut bursts = vec![0.0f64; servers.len()];
    for _ in 0..BURSTS {
        for (index, (addr, _)) in servers.iter().enumerate() {
            let fresh = (index == 0).then(|| {
                ServerProcess::start(env!("CARGO_BIN_EXE_basic"), &["server", "--port", "0"])
            });
            let addr = fresh.as_ref().map_or(*addr, |server| server.addr);
            bursts[index] = bursts[index].max(measure_burst(addr));
        }
    }
    let figures: Vec<Figures> = servers
        .iter()
        .zip(&bursts)
        .map(|((_, round_trips), burst)| [*round_trips, *burst])
        .collect();
    let ours = figures[0];
    let reference = reference.as_ref().map(|_| figures[1]);
    let other = figures[figures.len() - 1];

    println!(
        "\nbasic echo, one connection, on {}:",
        plumbing::testing::machine()
    );
    print_row("basic (this lesson)", &ours, reference.as_ref());
    if let Some(reference) = &reference {
        print_row("C epoll reference", reference, Some(reference));
    }
    if let Some(addr) = against {
        print_row(&format!("server at {addr}"), &other, reference.as_ref());
    }
}

/// Per second: round trips, then burst bytes.
type Figures = [f64; 2];

fn print_row(name: &str, figures: &Figures, reference: Option<&Figures>) {
    let ratio = |i: usize| match reference {
        Some(reference) => format!(" ({:.2} x C)", figures[i] / reference[i]),
        None => String::new(),
    };
    println!(
        "  {name:<24} {:>9.0} round trips/s{}   burst {:>7.1} MiB/s{}",
        figures[0],
        ratio(0),
        figures[1] / (1 << 20) as f64,
        ratio(1)
    );
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect to the server");
    stream.set_nodelay(true).expect("TCP_NODELAY");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .expect("read timeout");
    stream
}

/// Sends `rounds` messages on `stream`, each waiting for its echo.
fn round_trips_per_second(stream: &mut TcpStream, rounds: usize) -> f64 {
    let mut echo = [0u8; MESSAGE.len()];
    let start = Instant::now();
    for round in 0..rounds {
        stream.write_all(MESSAGE).expect("send");
        stream
            .read_exact(&mut echo)
            .unwrap_or_else(|err| panic!("round trip {round}: no echo: {err}"));
        assert_eq!(&echo, MESSAGE, "round trip {round}: wrong echo");
    }
    rounds as f64 / start.elapsed().as_secs_f64()
}

fn measure_burst(addr: SocketAddr) -> f64 {
    let stream = connect(addr);
    let mut writer = stream.try_clone().expect("clone the stream");
    let start = Instant::now();
    let sender = thread::spawn(move || {
        for _ in 0..BURST_BYTES / MESSAGE.len() {
            writer.write_all(MESSAGE).expect("send");
        }
    });
    let (received, misplaced) = read_echoes(stream, BURST_BYTES);
    let elapsed = start.elapsed().as_secs_f64();
    sender.join().expect("sender thread");
    assert_eq!(received, BURST_BYTES, "bytes lost in the burst");
    assert_eq!(misplaced, 0, "bytes out of order in the burst");
    received as f64 / elapsed
}

/// Reads `expected` bytes; returns how many arrived and how many were not
/// where the pattern says they should be.
fn read_echoes(mut stream: TcpStream, expected: usize) -> (usize, usize) {
    let mut buf = vec![0u8; 64 * 1024];
    let (mut received, mut misplaced) = (0, 0);
    while received < expected {
        let n = match stream.read(&mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => n,
        };
        for (i, byte) in buf[..n].iter().enumerate() {
            if *byte != MESSAGE[(received + i) % MESSAGE.len()] {
                misplaced += 1;
            }
        }
        received += n;
    }
    (received, misplaced)
}
