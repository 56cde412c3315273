//! How many chat lines per second the thread-per-client server delivers.
//!
//!     cargo bench -p multiclients_threaded                 (the three runs below)
//!     cargo bench -p multiclients_threaded -- 50 1000 10   (CLIENTS LINES LINES_PER_WRITE)
//!
//! Each of CLIENTS clients sends LINES numbered lines; the server delivers
//! each to the CLIENTS - 1 others. Every client checks that it received
//! every other client's lines, once and in order, and the run reports lines
//! lost, duplicated or reordered (all must be 0) next to the rate.
//!
//! Senders keep the room's backlog bounded (a window of deliveries not yet
//! received, like people who wait for answers): the server drops a client
//! that falls 256 KiB behind, and a benchmark that floods faster than the
//! readers can read would measure that, not throughput.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Condvar, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use multiclients_threaded::server::{self, ServerOptions};

/// Deliveries in flight per client, at most: how far the room may run ahead
/// of its readers (2,000 short lines, about 32 KiB per reader).
const WINDOW_PER_CLIENT: u64 = 2_000;
/// How often a reader reports progress to the senders, in lines.
const REPORT_EVERY: u64 = 200;

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    // (clients, lines each, lines per write): 10 lines per write is a
    // client pasting or a program; 1 is a person typing, and costs the
    // server a lock, a wake-up per writer and a write() per line.
    let runs = match args[..] {
        [clients, lines, per_write] => vec![(clients, lines, per_write)],
        [clients, lines] => vec![(clients, lines, 10)],
        _ => vec![(10, 5000, 10), (50, 1000, 10), (50, 1000, 1)],
    };
    // The server logs joins and leaves on stdout; the results come last,
    // together.
    let results: Vec<String> = runs
        .into_iter()
        .map(|(clients, lines, per_write)| run(clients.max(2), lines.max(1), per_write.max(1)))
        .collect();
    println!("\nresults on {} cores, {}:", cores(), cpu_model());
    for result in results {
        println!("{result}");
    }
}

/// The count of deliveries the senders may still make, shared by everyone.
struct Window {
    received: Mutex<u64>,
    progressed: Condvar,
    sent: AtomicU64,
    fan_out: u64,
    limit: u64,
}

impl Window {
    /// Waits until sending `lines` more keeps the backlog within the limit.
    fn reserve(&self, lines: u64) {
        let owed = (self.sent.fetch_add(lines, Ordering::SeqCst) + lines) * self.fan_out;
        let mut received = self.received.lock().unwrap();
        while owed.saturating_sub(*received) > self.limit {
            received = self.progressed.wait(received).unwrap();
        }
    }

    fn report(&self, lines: u64) {
        *self.received.lock().unwrap() += lines;
        self.progressed.notify_all();
    }
}

/// What one reader found.
#[derive(Default)]
struct Tally {
    received: u64,
    out_of_order: u64,
}

fn run(clients: usize, lines: usize, per_write: usize) -> String {
    let addr = start_server();
    let streams: Vec<TcpStream> = (0..clients).map(|_| join(addr)).collect();
    let window = &Window {
        received: Mutex::new(0),
        progressed: Condvar::new(),
        sent: AtomicU64::new(0),
        fan_out: clients as u64 - 1,
        limit: WINDOW_PER_CLIENT * clients as u64,
    };
    let expected = (clients - 1) as u64 * lines as u64;
    let started = Instant::now();
    let tallies: Vec<Tally> = thread::scope(|scope| {
        let readers: Vec<_> = streams
            .iter()
            .map(|stream| scope.spawn(move || read_all(stream, clients, expected, window)))
            .collect();
        for stream in &streams {
            scope.spawn(move || send_all(stream, lines, per_write, window));
        }
        readers.into_iter().map(|r| r.join().unwrap()).collect()
    });
    let elapsed = started.elapsed();
    drop(streams);
    wait_until_alone(addr);
    report((clients, lines, per_write), expected, &tallies, elapsed)
}

/// Waits until the server has seen every client of the run leave, so that
/// its log lines do not land among the results.
fn wait_until_alone(addr: SocketAddr) {
    let mut last = join(addr);
    for _ in 0..1000 {
        (&last).write_all(b"/who\n").unwrap();
        let mut answer = String::new();
        BufReader::new(&mut last).read_line(&mut answer).unwrap();
        if answer.starts_with("* here (1)") {
            return;
        }
        thread::sleep(Duration::from_millis(10)); // polling, in a benchmark only
    }
}

/// The lesson's server on a thread of this process, logging only joins and
/// leaves (no line per message, no join notices: every line a client
/// receives is a chat line).
fn start_server() -> SocketAddr {
    let options = ServerOptions {
        log_messages: false,
        join_notices: false,
        ..ServerOptions::default()
    };
    let listener = basic::net::listen_on(([127, 0, 0, 1], 0).into(), 1024).expect("listen");
    let addr = listener.local_addr().unwrap();
    thread::spawn(move || server::run(listener, &options));
    addr
}

/// Connects and waits for the welcome: then the client is in the room.
fn join(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    stream.set_nodelay(true).unwrap();
    let mut welcome = String::new();
    BufReader::new(&stream).read_line(&mut welcome).unwrap();
    assert!(welcome.starts_with("* welcome, "), "{welcome:?}");
    stream
}

fn send_all(mut stream: &TcpStream, lines: usize, per_write: usize, window: &Window) {
    let mut chunk = String::new();
    for first in (0..lines).step_by(per_write) {
        let last = (first + per_write).min(lines);
        window.reserve((last - first) as u64);
        chunk.clear();
        for n in first..last {
            chunk.push_str(&format!("{n}\n"));
        }
        stream.write_all(chunk.as_bytes()).expect("send");
    }
}

/// Reads `expected` lines `guestK: N`, checking that each sender's N count
/// up from 0.
fn read_all(stream: &TcpStream, clients: usize, expected: u64, window: &Window) -> Tally {
    let mut reader = BufReader::new(stream);
    let mut next = vec![0u64; clients + 1];
    let mut tally = Tally::default();
    let mut line = String::new();
    while tally.received < expected {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break, // counted as lost below
            Ok(_) => {}
        }
        tally.received += 1;
        if !in_order(&line, &mut next) {
            tally.out_of_order += 1;
        }
        if tally.received % REPORT_EVERY == 0 {
            window.report(REPORT_EVERY);
        }
    }
    window.report(tally.received % REPORT_EVERY);
    tally
}

fn in_order(line: &str, next: &mut [u64]) -> bool {
    let parsed = line.strip_prefix("guest").and_then(|rest| {
        let (sender, n) = rest.trim_end().split_once(": ")?;
        Some((sender.parse::<usize>().ok()?, n.parse::<u64>().ok()?))
    });
    match parsed {
        Some((sender, n)) if sender < next.len() && next[sender] == n => {
            next[sender] += 1;
            true
        }
        _ => false,
    }
}

fn report(
    run: (usize, usize, usize),
    expected: u64,
    tallies: &[Tally],
    elapsed: Duration,
) -> String {
    let (clients, lines, per_write) = run;
    let received: u64 = tallies.iter().map(|t| t.received).sum();
    let out_of_order: u64 = tallies.iter().map(|t| t.out_of_order).sum();
    let owed = expected * clients as u64;
    format!(
        "{clients} clients x {lines} lines, {per_write} per write: {received} of {owed} deliveries in {:.2}s = {:.0} lines/s delivered \
         ({:.0} lines/s sent); lost {}, out of order or duplicated {out_of_order}",
        elapsed.as_secs_f64(),
        received as f64 / elapsed.as_secs_f64(),
        (clients * lines) as f64 / elapsed.as_secs_f64(),
        owed - received,
    )
}

fn cores() -> usize {
    thread::available_parallelism().map_or(1, |n| n.get())
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            let line = info.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split(':').nth(1)?.trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into())
}
