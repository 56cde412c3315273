//! `cargo bench -p sandbox --bench flow`: flow control and memory, measured.
//!
//! 1. **Chat burst**: 20 clients each send 2,000 lines as fast as they can
//!    while every client reads as fast as it can. Every line must reach
//!    the 19 others once and in order: the bench counts delivered, lost,
//!    duplicated and out-of-order lines and the delivered lines per second,
//!    for the sandbox's two loops and for the C reference chat
//!    (`shared/reference/c_epoll_chat.c`, built here with `gcc -O2`), in
//!    the same run, and prints the ratio against C.
//! 2. **Burst size and memory**: 4 senders with 24-character names each
//!    write N bytes of `a\n` at once to a room of 20 that all read; the
//!    server's peak memory for N = 64 KiB, 1 MiB, 4 MiB (it must not grow
//!    with N), and how long a newcomer waits for its welcome mid-burst.
//! 3. **Idle clients after a broadcast**: 10,000 clients, one line to all,
//!    then the server's peak resident memory (target: 16 MB).
//! 4. **Silent clients**: 10,000 clients that connect and never read nor
//!    write, default options (join notices on): peak memory (target 32 MB).
//! 5. **Churn**: 5,000 connect/close cycles: memory afterwards.
//!
//! Environment:
//! - `SANDBOX_BENCH_CHAT_ADDR=HOST:PORT` measures the chat burst against a
//!   server already running there (any language), instead of starting them;
//! - `SANDBOX_BENCH_C_CHAT=PATH` the C reference's source, if not found in
//!   `../shared/reference/` beside the workspace (or one level up);
//! - `SANDBOX_BENCH_ONLY=burst|burst-memory|idle|silent|churn` (comma-separated) runs only those;
//! - `SANDBOX_BENCH_CLIENTS=N` for parts 3 and 4 (default 10,000).
//!
//! Memory comes from `/proc/PID/status` (Linux); elsewhere it says so.

mod common;

use common::Server;
use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

const BURST_CLIENTS: usize = 20;
const BURST_LINES: usize = 2_000;
const ROUNDS: usize = 5;
/// A reader that gets nothing for this long gives up (the rest is "lost").
const QUIET_LIMIT: Duration = Duration::from_secs(10);

fn main() {
    let only = std::env::var("SANDBOX_BENCH_ONLY").unwrap_or_default();
    let wanted = |part: &str| only.is_empty() || only.split(',').any(|w| w == part);
    let clients: usize = std::env::var("SANDBOX_BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    println!("machine: {}", plumbing::testing::machine());
    let clients = raise_open_file_limit(clients);
    let sandbox = PathBuf::from(env!("CARGO_BIN_EXE_sandbox"));
    if wanted("burst") {
        chat_burst(&sandbox);
    }
    if wanted("burst-memory") {
        burst_memory(&sandbox);
    }
    if wanted("idle") {
        idle_after_broadcast(&sandbox, clients);
    }
    if wanted("silent") {
        silent_clients(&sandbox, clients);
    }
    if wanted("churn") {
        churn(&sandbox, 5_000);
    }
}

// ---- 1. the chat burst ----

/// What one burst delivered.
#[derive(Default)]
struct Tally {
    delivered: usize,
    lost: usize,
    duplicated: usize,
    out_of_order: usize,
    secs: f64,
}

impl Tally {
    fn rate(&self) -> f64 {
        self.delivered as f64 / self.secs
    }
}

fn chat_burst(sandbox: &Path) {
    println!(
        "\n== chat burst: {BURST_CLIENTS} clients x {BURST_LINES} lines, everyone reading ({ROUNDS} rounds, best shown)"
    );
    if let Ok(addr) = std::env::var("SANDBOX_BENCH_CHAT_ADDR") {
        match addr.parse() {
            Ok(addr) => report_burst(&format!("server at {addr}"), best_of(|| burst(addr))),
            Err(err) => println!("   SANDBOX_BENCH_CHAT_ADDR={addr}: {err}"),
        }
        return;
    }
    let mut servers: Vec<(String, PathBuf, Vec<&str>)> = vec![
        (
            "sandbox, readiness loop".into(),
            sandbox.into(),
            vec!["server", "--port", "0", "--no-join-notices"],
        ),
        (
            "sandbox, naive loop".into(),
            sandbox.into(),
            vec![
                "server",
                "--port",
                "0",
                "--no-join-notices",
                "--event-loop",
                "naive",
            ],
        ),
    ];
    match c_reference(sandbox) {
        Ok(binary) => servers.push((
            "C reference (c_epoll_chat)".into(),
            binary,
            vec!["--port", "0"],
        )),
        Err(why) => println!("   C reference not measured: {why}"),
    }
    // Rounds interleave the servers, so that a busy moment of the machine
    // hits them alike.
    let mut best: Vec<Option<Tally>> = servers.iter().map(|_| None).collect();
    for _ in 0..ROUNDS {
        for (i, (name, binary, args)) in servers.iter().enumerate() {
            let tally = match Server::start(binary, args) {
                Ok(server) => burst(server.addr),
                Err(why) => Err(why),
            };
            match tally {
                Ok(tally) if best[i].as_ref().is_none_or(|b| tally.rate() > b.rate()) => {
                    best[i] = Some(tally)
                }
                Ok(_) => {}
                Err(why) => println!("   {name}: failed: {why}"),
            }
        }
    }
    let c_rate = best
        .last()
        .and_then(|b| b.as_ref())
        .filter(|_| servers.len() == 3)
        .map(Tally::rate);
    for ((name, _, _), tally) in servers.iter().zip(best) {
        if let Some(tally) = tally {
            report_burst(name, Ok((tally, c_rate)));
        }
    }
}

fn best_of(run: impl Fn() -> Result<Tally, String>) -> Result<(Tally, Option<f64>), String> {
    let mut best: Option<Tally> = None;
    for _ in 0..ROUNDS {
        let tally = run()?;
        if best.as_ref().is_none_or(|b| tally.rate() > b.rate()) {
            best = Some(tally);
        }
    }
    Ok((best.expect("at least one round"), None))
}

fn report_burst(name: &str, result: Result<(Tally, Option<f64>), String>) {
    match result {
        Ok((t, c_rate)) => {
            let ratio = c_rate
                .map(|c| format!(", {:.2} x C", t.rate() / c))
                .unwrap_or_default();
            println!(
                "   {name}: {:.2} M lines/s delivered ({} in {:.3} s); lost {}, duplicated {}, out of order {}{ratio}",
                t.rate() / 1e6,
                t.delivered,
                t.secs,
                t.lost,
                t.duplicated,
                t.out_of_order
            );
        }
        Err(why) => println!("   {name}: failed: {why}"),
    }
}

/// One burst against the chat at `addr`. Works with any server that sends
/// each line to the others as `NAME: TEXT` (other lines, such as `* `
/// notices, are ignored): clients first greet each other, so that every
/// one is known to be in the room, and learn each other's names from it.
fn burst(addr: SocketAddr) -> Result<Tally, String> {
    let mut streams = Vec::new();
    for _ in 0..BURST_CLIENTS {
        let stream = TcpStream::connect(addr).map_err(|e| format!("connect: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        streams.push(stream);
    }
    // Greetings: "hello cI" from each, repeated until everyone has heard
    // all the others (a server may not have accepted the last clients yet
    // when the first greet).
    let mut readers: Vec<BufReader<TcpStream>> = streams
        .iter()
        .map(|s| BufReader::with_capacity(64 * 1024, s.try_clone().unwrap()))
        .collect();
    let mut names: Vec<HashMap<String, usize>> = vec![HashMap::new(); BURST_CLIENTS];
    for _round in 0..50 {
        if names.iter().all(|known| known.len() == BURST_CLIENTS - 1) {
            break;
        }
        for (i, stream) in streams.iter_mut().enumerate() {
            writeln!(stream, "hello c{i}").map_err(|e| e.to_string())?;
        }
        for (reader, known) in readers.iter_mut().zip(names.iter_mut()) {
            hear_greetings(reader, known)?;
        }
    }
    if !names.iter().all(|known| known.len() == BURST_CLIENTS - 1) {
        return Err("the clients could not all greet each other".into());
    }
    for stream in &streams {
        stream
            .set_read_timeout(Some(QUIET_LIMIT))
            .map_err(|e| e.to_string())?;
    }
    let started = Instant::now();
    let (done, finished) = mpsc::channel();
    for (i, (reader, known)) in readers.into_iter().zip(names).enumerate() {
        let done = done.clone();
        thread::spawn(move || done.send(read_burst(i, reader, known)));
    }
    for (i, stream) in streams.iter().enumerate() {
        let mut stream = stream.try_clone().unwrap();
        thread::spawn(move || {
            let mut all = String::with_capacity(BURST_LINES * 16);
            for seq in 0..BURST_LINES {
                all.push_str(&format!("c{i} {seq}\n"));
            }
            let _ = stream.write_all(all.as_bytes()); // all at once
        });
    }
    drop(done);
    let mut tally = Tally::default();
    let mut last = started;
    for (got, at) in finished.iter() {
        tally.delivered += got.delivered;
        tally.lost += got.lost;
        tally.duplicated += got.duplicated;
        tally.out_of_order += got.out_of_order;
        last = last.max(at);
    }
    tally.secs = (last - started).as_secs_f64();
    Ok(tally)
}

/// Reads greetings for up to 200 ms of quiet, learning who is who.
fn hear_greetings(
    reader: &mut BufReader<TcpStream>,
    known: &mut HashMap<String, usize>,
) -> Result<(), String> {
    let quiet = Duration::from_millis(200);
    reader
        .get_ref()
        .set_read_timeout(Some(quiet))
        .map_err(|e| e.to_string())?;
    let mut line = String::new();
    while known.len() < BURST_CLIENTS - 1 {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) => return Err("closed during the greetings".into()),
            Ok(_) => {}
            Err(_) => return Ok(()), // quiet: greet again
        }
        if let Some((name, text)) = line.trim_end().split_once(": ")
            && let Some(sender) = text.strip_prefix("hello c").and_then(|n| n.parse().ok())
        {
            known.insert(name.to_string(), sender);
        }
    }
    Ok(())
}

/// One client's reading: every other client's lines, each `c{sender} {seq}`.
fn read_burst(
    me: usize,
    mut reader: BufReader<TcpStream>,
    known: HashMap<String, usize>,
) -> (Tally, Instant) {
    let mut next = [0usize; BURST_CLIENTS];
    let mut seen = vec![vec![false; BURST_LINES]; BURST_CLIENTS];
    let mut tally = Tally::default();
    let expected = (BURST_CLIENTS - 1) * BURST_LINES;
    let mut last = Instant::now();
    let mut line = String::new();
    while tally.delivered + tally.duplicated < expected {
        line.clear();
        match reader.read_line(&mut line) {
            Ok(0) | Err(_) => break, // closed, or quiet for QUIET_LIMIT
            Ok(_) => {}
        }
        last = Instant::now();
        let Some((name, text)) = line.trim_end().split_once(": ") else {
            continue; // a notice
        };
        let Some(&sender) = known.get(name) else {
            continue;
        };
        let Some(seq) = text
            .strip_prefix(&format!("c{sender} "))
            .and_then(|n| n.parse::<usize>().ok())
            .filter(|&n| n < BURST_LINES && sender != me)
        else {
            continue;
        };
        if seen[sender][seq] {
            tally.duplicated += 1;
            continue;
        }
        seen[sender][seq] = true;
        tally.delivered += 1;
        if seq != next[sender] {
            tally.out_of_order += 1;
        }
        next[sender] = seq + 1;
    }
    tally.lost = expected - tally.delivered;
    (tally, last)
}

/// The C reference chat, built with gcc beside this bench's binary.
fn c_reference(sandbox: &Path) -> Result<PathBuf, String> {
    let source = match std::env::var("SANDBOX_BENCH_C_CHAT") {
        Ok(path) => PathBuf::from(path),
        Err(_) => {
            let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().unwrap();
            ["../shared/reference", "../../shared/reference"]
                .iter()
                .map(|dir| workspace.join(dir).join("c_epoll_chat.c"))
                .find(|path| path.exists())
                .ok_or("c_epoll_chat.c not found (set SANDBOX_BENCH_C_CHAT=PATH)")?
        }
    };
    let binary = sandbox.with_file_name("c_epoll_chat");
    let built = Command::new("gcc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(&source)
        .status()
        .map_err(|err| format!("cannot run gcc: {err}"))?;
    if !built.success() {
        return Err(format!("gcc failed on {}", source.display()));
    }
    Ok(binary)
}

// ---- 1b. burst size and memory ----

fn burst_memory(sandbox: &Path) {
    println!(
        "\n== burst size and memory: 4 senders (24-character names) x N bytes of a\\n, 20 clients reading"
    );
    for size in [64 * 1024, 1024 * 1024, 4 * 1024 * 1024] {
        match one_sized_burst(sandbox, size) {
            Ok((peak, welcome, delivered)) => println!(
                "   N = {:>5} KiB: {delivered} lines delivered, server memory {peak}; a newcomer's welcome mid-burst took {:.2} ms",
                size / 1024,
                welcome.as_secs_f64() * 1000.0
            ),
            Err(why) => println!("   N = {} KiB: failed: {why}", size / 1024),
        }
    }
}

fn one_sized_burst(sandbox: &Path, size: usize) -> Result<(String, Duration, usize), String> {
    const SENDERS: usize = 4;
    const CLIENTS: usize = 20;
    let server = Server::start(sandbox, &["server", "--port", "0", "--no-join-notices"])?;
    let mut clients = connect_many(server.addr, CLIENTS)?;
    for client in clients.iter_mut() {
        wait_for(client, "* welcome")?;
    }
    for (i, client) in clients.iter_mut().take(SENDERS).enumerate() {
        let name = format!("sender{i:02}{}", "x".repeat(16));
        writeln!(client.get_mut(), "/nick {name}").map_err(|e| e.to_string())?;
        wait_for(client, "* you are now")?;
    }
    let lines = size / 2;
    let (done, finished) = mpsc::channel();
    for (i, mut client) in clients.into_iter().enumerate() {
        let done = done.clone();
        if i < SENDERS {
            let mut stream = client.get_ref().try_clone().unwrap();
            thread::spawn(move || stream.write_all("a\n".repeat(lines).as_bytes()));
        }
        let expected = lines * (SENDERS - usize::from(i < SENDERS));
        thread::spawn(move || {
            let mut got = 0;
            let mut line = String::new();
            while got < expected {
                line.clear();
                match client.read_line(&mut line) {
                    Ok(0) | Err(_) => break,
                    Ok(_) if line.starts_with("* ") => {}
                    Ok(_) => got += 1,
                }
            }
            let _ = done.send(got);
        });
    }
    drop(done);
    let asked = Instant::now();
    let mut newcomer = BufReader::new(connect(server.addr)?);
    wait_for(&mut newcomer, "* welcome")?;
    let welcome = asked.elapsed();
    drop(newcomer); // it would not read the burst: gone before it stalls the room
    let delivered = finished.iter().sum();
    Ok((memory(server.pid()), welcome, delivered))
}

// ---- 2, 3, 4: memory ----

fn idle_after_broadcast(sandbox: &Path, n: usize) {
    println!("\n== {n} idle clients after one broadcast to all (target: peak 16 MB)");
    let max = (n + 10).to_string();
    let args = [
        "server",
        "--port",
        "0",
        "--no-join-notices",
        "--max-clients",
        &max,
    ];
    let result = (|| -> Result<(), String> {
        let server = Server::start(sandbox, &args)?;
        let mut clients = connect_many(server.addr, n)?;
        for client in clients.iter_mut() {
            wait_for(client, "* welcome")?;
        }
        println!(
            "   after {} joined: {}",
            clients.len(),
            memory(server.pid())
        );
        clients[0]
            .get_mut()
            .write_all(b"hello, everyone\n")
            .map_err(|e| e.to_string())?;
        for client in clients.iter_mut().skip(1) {
            wait_for(client, "hello, everyone")?;
        }
        println!(
            "   after the broadcast reached all: {}",
            memory(server.pid())
        );
        Ok(())
    })();
    if let Err(why) = result {
        println!("   failed: {why}");
    }
}

fn silent_clients(sandbox: &Path, n: usize) {
    println!(
        "\n== {n} silent clients (never read, never write), default options with join notices (target: peak 32 MB)"
    );
    let max = (n + 10).to_string();
    let args = ["server", "--port", "0", "--max-clients", &max];
    let result = (|| -> Result<(), String> {
        let server = Server::start(sandbox, &args)?;
        let started = Instant::now();
        let clients = connect_many(server.addr, n)?;
        println!(
            "   {} connected in {:.1} s: {}",
            clients.len(),
            started.elapsed().as_secs_f64(),
            memory(server.pid())
        );
        thread::sleep(Duration::from_secs(8)); // let the stall timeout (1.5 s) act
        println!("   8 s later: {}", memory(server.pid()));
        drop(clients);
        Ok(())
    })();
    if let Err(why) = result {
        println!("   failed: {why}");
    }
}

fn churn(sandbox: &Path, cycles: usize) {
    println!("\n== churn: {cycles} connect/close cycles, default options");
    let result = (|| -> Result<(), String> {
        let server = Server::start(sandbox, &["server", "--port", "0"])?;
        let mut watcher = BufReader::new(connect(server.addr)?);
        wait_for(&mut watcher, "* welcome")?;
        println!("   before: {}", memory(server.pid()));
        for _ in 0..cycles {
            drop(connect(server.addr)?);
        }
        // The watcher asks /who: once answered, the server has seen every
        // earlier close, or is draining the last ones.
        watcher
            .get_mut()
            .write_all(b"/who\n")
            .map_err(|e| e.to_string())?;
        wait_for(&mut watcher, "* here (")?;
        println!("   after: {}", memory(server.pid()));
        Ok(())
    })();
    if let Err(why) = result {
        println!("   failed: {why}");
    }
}

fn connect(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect_timeout(&addr, Duration::from_secs(20))
        .map_err(|err| format!("connect: {err}"))?;
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .map_err(|e| e.to_string())?;
    Ok(stream)
}

fn connect_many(addr: SocketAddr, n: usize) -> Result<Vec<BufReader<TcpStream>>, String> {
    let mut clients = Vec::with_capacity(n);
    for i in 0..n {
        match connect(addr) {
            Ok(stream) => clients.push(BufReader::with_capacity(256, stream)),
            Err(err) => {
                println!("   connect #{i} failed: {err}; going on with {i}");
                break;
            }
        }
    }
    if clients.len() < 2 {
        return Err("fewer than 2 connections".into());
    }
    Ok(clients)
}

fn wait_for(client: &mut BufReader<TcpStream>, text: &str) -> Result<(), String> {
    let mut line = String::new();
    loop {
        line.clear();
        match client.read_line(&mut line) {
            Ok(0) => return Err(format!("closed while waiting for {text:?}")),
            Ok(_) if line.contains(text) => return Ok(()),
            Ok(_) => {}
            Err(err) => return Err(format!("waiting for {text:?}: {err}")),
        }
    }
}

// ---- plumbing ----

/// Resident memory now and at its peak, from /proc (Linux only).
fn memory(pid: u32) -> String {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return "memory unavailable (no /proc)".into();
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    format!("VmRSS {}, peak VmHWM {}", field("VmRSS:"), field("VmHWM:"))
}

/// Raises the open-file limit for N clients here and N in the server
/// (which inherits it). Returns how many clients fit.
fn raise_open_file_limit(wanted: usize) -> usize {
    let needed = wanted as u64 + 200;
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let (soft, hard) = Resource::NOFILE.get().unwrap_or((0, 0));
        let now = if needed > hard && Resource::NOFILE.set(needed, needed).is_ok() {
            needed
        } else {
            rlimit::increase_nofile_limit(needed).unwrap_or(soft)
        };
        let fit = now.saturating_sub(200) as usize;
        if fit < wanted {
            println!("note: only {fit} clients fit under the open-file limit {now}");
            return fit;
        }
    }
    wanted
}
