//! How many chat lines per second a chat server delivers, and whether it
//! delivers every one: this lesson's server against the C epoll reference,
//! in the same run.
//!
//!     cargo bench -p multiclients_threaded
//!     cargo bench -p multiclients_threaded -- 50 1000 10 3   (CLIENTS LINES PER_WRITE ROUNDS)
//!     cargo bench -p multiclients_threaded -- 127.0.0.1:5003  (only the chat server there)
//!     cargo bench -p multiclients_threaded -- /tmp/c_epoll_chat  (this C reference binary)
//!
//! (The same as flags: `cargo bench -p multiclients_threaded --bench
//! throughput -- --clients 50 --lines 1000 --per-write 10 --rounds 3 --addr
//! ADDR --c-server PATH`; the `--bench throughput` keeps the flags away from
//! the library's test harness, which cargo also runs.)
//!
//! Each of CLIENTS clients sends LINES numbered lines (`0`, `1`, ...), as
//! fast as it can, PER_WRITE lines per `write`, while reading everything
//! the others send on a second thread. The server delivers each line to
//! the CLIENTS - 1 others as `NAME: N`. Every reader checks each sender's
//! numbers, whatever the sender's name (ours are `guestN`, so are the C
//! server's, a student's may differ), and the run reports lines delivered
//! per second, lost, duplicated and out of order. There is no window: the
//! senders flood, and the server's flow control must keep every reader in
//! the room and every line in order.
//!
//! The C reference (`../shared/reference/c_epoll_chat.c`) is built with `cc`
//! when found next to the workspace, or given with `--c-server`; rounds
//! alternate between the servers, and the ratio compares their medians.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use multiclients_threaded::server::{self, ServerOptions};

/// A reader that hears nothing for this long counts the rest as lost.
const READ_TIMEOUT: Duration = Duration::from_secs(20);

struct Settings {
    clients: usize,
    lines: usize,
    per_write: usize,
    rounds: usize,
    addr: Option<SocketAddr>,
    c_server: Option<PathBuf>,
}

fn settings() -> Settings {
    let mut settings = Settings {
        clients: 20,
        lines: 2000,
        per_write: 100,
        rounds: 7,
        addr: None,
        c_server: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut numbers = Vec::new();
    let mut args = args.iter();
    while let Some(arg) = args.next() {
        let mut value = || args.next().cloned().unwrap_or_default();
        match arg.as_str() {
            "--clients" => settings.clients = value().parse().expect("--clients N"),
            "--lines" => settings.lines = value().parse().expect("--lines N"),
            "--per-write" => settings.per_write = value().parse().expect("--per-write N"),
            "--rounds" => settings.rounds = value().parse().expect("--rounds N"),
            "--addr" => settings.addr = Some(value().parse().expect("--addr HOST:PORT")),
            "--c-server" => settings.c_server = Some(value().into()),
            word => {
                if let Ok(n) = word.parse::<usize>() {
                    numbers.push(n);
                } else if let Ok(addr) = word.parse() {
                    settings.addr = Some(addr);
                } else if Path::new(word).is_file() {
                    settings.c_server = Some(word.into());
                } // else: `--bench`, which cargo passes
            }
        }
    }
    let slots = [
        &mut settings.clients,
        &mut settings.lines,
        &mut settings.per_write,
        &mut settings.rounds,
    ];
    for (slot, n) in slots.into_iter().zip(numbers) {
        *slot = n;
    }
    settings.clients = settings.clients.max(2);
    settings.per_write = settings.per_write.max(1);
    settings.rounds = settings.rounds.max(1);
    settings
}

fn main() {
    let settings = settings();
    if let Some(addr) = settings.addr {
        let results: Vec<Round> = (0..settings.rounds)
            .map(|_| round(addr, &settings))
            .collect();
        print_results(
            &settings,
            &[("server at ".to_string() + &addr.to_string(), results)],
        );
        return;
    }
    let ours = start_lesson_server();
    let reference = start_c_reference(settings.c_server.clone());
    let mut ours_results = Vec::new();
    let mut c_results = Vec::new();
    for _ in 0..settings.rounds {
        ours_results.push(round(ours, &settings));
        if let Some((addr, _)) = &reference {
            c_results.push(round(*addr, &settings));
        }
    }
    let mut rows = vec![("multiclients_threaded".to_string(), ours_results)];
    if let Some((_, mut child)) = reference {
        rows.push(("C epoll reference".to_string(), c_results));
        let _ = child.kill(); // the process this benchmark started
        let _ = child.wait();
    }
    print_results(&settings, &rows);
}

/// This lesson's server on a thread of this process: no log line per
/// message, no join notices (the C server has neither), the log silenced.
fn start_lesson_server() -> SocketAddr {
    plumbing::trace::silence_logs();
    let options = ServerOptions {
        log_messages: false,
        join_notices: false,
        ..ServerOptions::default()
    };
    let listener = basic::net::listen_on(([127, 0, 0, 1], 0).into(), 4096).expect("listen");
    let addr = listener.local_addr().expect("local address");
    thread::spawn(move || server::run(listener, &options));
    addr
}

/// Builds (if need be) and starts the C reference; `None`, with a note,
/// when there is no C compiler or no source.
fn start_c_reference(given: Option<PathBuf>) -> Option<(SocketAddr, Child)> {
    let binary = match given {
        Some(path) => path,
        None => build_c_reference()?,
    };
    let mut child = Command::new(&binary)
        .args(["--port", "0"])
        .stdout(Stdio::piped())
        .spawn()
        .map_err(|err| eprintln!("note: cannot start {}: {err}", binary.display()))
        .ok()?;
    let mut first = String::new();
    let stdout = child.stdout.take()?;
    BufReader::new(stdout).read_line(&mut first).ok()?;
    let addr = first.trim().strip_prefix("listening on ")?.parse().ok()?;
    Some((addr, child))
}

/// The reference's source: `shared/reference/` next to the workspace or
/// one of the folders above it.
fn build_c_reference() -> Option<PathBuf> {
    let here = Path::new(env!("CARGO_MANIFEST_DIR"));
    let found = here
        .ancestors()
        .map(|dir| dir.join("shared/reference/c_epoll_chat.c"))
        .find(|source| source.exists());
    let Some(source) = found else {
        eprintln!(
            "note: no shared/reference/c_epoll_chat.c above {}: pass --c-server PATH to compare",
            here.display()
        );
        return None;
    };
    let binary = std::env::temp_dir().join(format!("c_epoll_chat_bench_{}", std::process::id()));
    let built = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(&source)
        .status();
    match built {
        Ok(status) if status.success() => Some(binary),
        _ => {
            eprintln!(
                "note: cannot build {} with cc: pass --c-server PATH",
                source.display()
            );
            None
        }
    }
}

/// What one reader found.
#[derive(Default, Clone)]
struct Tally {
    received: u64,
    duplicated: u64,
    out_of_order: u64,
    /// Lines still owed when the reader gave up (closed, or silent).
    lost: u64,
}

/// One round: connect everyone, synchronise, flood, count.
struct Round {
    tally: Tally,
    elapsed: Duration,
}

fn round(addr: SocketAddr, settings: &Settings) -> Round {
    let streams: Vec<TcpStream> = (0..settings.clients).map(|_| connect(addr)).collect();
    let mut readers: Vec<BufReader<TcpStream>> = streams
        .iter()
        .map(|s| BufReader::new(s.try_clone().expect("clone")))
        .collect();
    synchronise(&streams, &mut readers);
    let expected = (settings.clients as u64 - 1) * settings.lines as u64;
    let started = Instant::now();
    let tallies: Vec<Tally> = thread::scope(|scope| {
        for stream in &streams {
            scope.spawn(move || send_all(stream, settings.lines, settings.per_write));
        }
        let reading: Vec<_> = readers
            .iter_mut()
            .map(|reader| scope.spawn(move || read_all(reader, expected)))
            .collect();
        reading
            .into_iter()
            .map(|r| r.join().expect("reader"))
            .collect()
    });
    let elapsed = started.elapsed();
    let mut tally = Tally::default();
    for t in tallies {
        tally.received += t.received;
        tally.duplicated += t.duplicated;
        tally.out_of_order += t.out_of_order;
        tally.lost += t.lost;
    }
    Round { tally, elapsed }
}

fn connect(addr: SocketAddr) -> TcpStream {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    stream
        .set_read_timeout(Some(READ_TIMEOUT))
        .expect("timeout");
    stream
}

/// The last client says `sync` until every other client has read it: then
/// the server had all of them in its room (whatever else it sent first:
/// welcomes, notices). It may take more than one: a threaded server puts
/// clients in the room on their own threads, in any order. Extra `sync`
/// lines are skipped by the readers.
fn synchronise(streams: &[TcpStream], readers: &mut [BufReader<TcpStream>]) {
    let others = readers.len() - 1;
    let mut synced = vec![false; others];
    let mut partial = vec![String::new(); others];
    let deadline = Instant::now() + READ_TIMEOUT;
    while synced.contains(&false) {
        assert!(
            Instant::now() < deadline,
            "the sync line never reached everyone"
        );
        (&streams[others]).write_all(b"sync\n").expect("send sync");
        for i in 0..others {
            if !synced[i] {
                synced[i] = saw_sync(&mut readers[i], &mut partial[i]);
            }
        }
    }
    for stream in streams {
        stream
            .set_read_timeout(Some(READ_TIMEOUT))
            .expect("timeout");
    }
}

/// Reads lines for up to 50 ms; whether one of them was the sync line.
fn saw_sync(reader: &mut BufReader<TcpStream>, line: &mut String) -> bool {
    let brief = Some(Duration::from_millis(50));
    reader.get_ref().set_read_timeout(brief).expect("timeout");
    loop {
        match reader.read_line(line) {
            Ok(0) => panic!("the server closed before the sync line"),
            Ok(_) if line.ends_with(": sync\n") => return true,
            Ok(_) => line.clear(),
            Err(_) => return false, // a partial line stays in `line`
        }
    }
}

fn send_all(mut stream: &TcpStream, lines: usize, per_write: usize) {
    let mut chunk = String::new();
    for first in (0..lines).step_by(per_write) {
        chunk.clear();
        for n in first..(first + per_write).min(lines) {
            chunk.push_str(&n.to_string());
            chunk.push('\n');
        }
        if stream.write_all(chunk.as_bytes()).is_err() {
            return; // the reader's count shows what went missing
        }
    }
}

/// Reads `expected` lines `NAME: N`, checking that each sender's N count up
/// from 0. Lines that are not `NAME: N` (a notice) are skipped.
fn read_all(reader: &mut BufReader<TcpStream>, expected: u64) -> Tally {
    let mut next: HashMap<String, u64> = HashMap::new();
    let mut tally = Tally::default();
    let mut line = String::new();
    while tally.received + tally.duplicated < expected {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break,
            Ok(_) => {}
        }
        let Some((name, n)) = line.trim_end().rsplit_once(": ") else {
            continue;
        };
        let Ok(n) = n.parse::<u64>() else {
            continue; // a notice or a stray line
        };
        let next = next.entry(name.to_string()).or_insert(0);
        if n < *next {
            tally.duplicated += 1;
            continue;
        }
        if n > *next {
            tally.out_of_order += 1;
        }
        *next = n + 1;
        tally.received += 1;
    }
    tally.lost = expected.saturating_sub(tally.received);
    tally
}

fn rate(round: &Round) -> f64 {
    round.tally.received as f64 / round.elapsed.as_secs_f64()
}

fn median(rounds: &[Round]) -> f64 {
    let mut rates: Vec<f64> = rounds.iter().map(rate).collect();
    rates.sort_by(f64::total_cmp);
    rates.get(rates.len() / 2).copied().unwrap_or(0.0)
}

fn print_results(settings: &Settings, rows: &[(String, Vec<Round>)]) {
    let owed = (settings.clients as u64 - 1) * settings.lines as u64 * settings.clients as u64;
    println!(
        "\n{} clients x {} lines ({} per write), everyone reading; {} deliveries owed per round",
        settings.clients, settings.lines, settings.per_write, owed
    );
    println!("machine: {}", plumbing::testing::machine());
    for (name, rounds) in rows {
        let rates: Vec<String> = rounds
            .iter()
            .map(|r| format!("{:.2}", rate(r) / 1e6))
            .collect();
        let total = rounds.iter().fold(Tally::default(), |mut sum, r| {
            sum.lost += r.tally.lost;
            sum.duplicated += r.tally.duplicated;
            sum.out_of_order += r.tally.out_of_order;
            sum
        });
        println!(
            "{name:>22}: median {:.2} M lines/s delivered (rounds: {} M); lost {}, duplicated {}, out of order {}",
            median(rounds) / 1e6,
            rates.join(", "),
            total.lost,
            total.duplicated,
            total.out_of_order
        );
    }
    if let [(_, ours), (_, c)] = rows {
        println!("ratio: {:.2} x the C reference", median(ours) / median(c));
    }
}
