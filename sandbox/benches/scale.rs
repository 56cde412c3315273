//! `cargo bench -p sandbox`: how many clients one server holds, what they
//! cost, and how fast a broadcast reaches them all; the sandbox's two event
//! loops beside lesson 3's thread-per-client server, measured the same way.
//!
//! For each server it starts the real binary as a child process, opens N
//! connections (default 10,000; `SANDBOX_BENCH_CLIENTS=2000` to change),
//! and then:
//! - served: every client sends `/ping` and must get its own `* ` answer
//!   (an unknown command), so each connection is shown to read and write;
//! - memory: the server's resident set (VmRSS, peak VmHWM) and thread count
//!   from `/proc/PID/status` (Linux; "unavailable" elsewhere);
//! - broadcast: time from one client's line to its arrival at all N-1 others;
//! - idle CPU: the server's CPU time over 2 s with N clients connected and silent;
//! - latency: 200 round trips of `/ping` from one client, median and p99.
//!
//! Lesson 3's binary `multiclients_threaded` is looked for beside this
//! crate's binary in the same target directory, and built there with
//! `cargo build --release -p multiclients_threaded` if missing.

mod common;

use common::Server;
use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::thread;
use std::time::{Duration, Instant};

const WAIT: Duration = Duration::from_secs(20);
const IDLE_WINDOW: Duration = Duration::from_secs(2);
const ROUND_TRIPS: usize = 200;

fn main() {
    let wanted: usize = std::env::var("SANDBOX_BENCH_CLIENTS")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(10_000);
    println!("machine: {}", plumbing::testing::machine());
    let clients = raise_open_file_limit(wanted);

    let sandbox = env!("CARGO_BIN_EXE_sandbox").to_string();
    let n = clients.to_string();
    let max = (clients + 10).to_string();
    let common = [
        "server",
        "--port",
        "0",
        "--no-join-notices",
        "--backlog",
        "4096",
        "--max-clients",
        &max,
    ];
    let mut runs: Vec<(String, PathBuf, Vec<String>)> = Vec::new();
    for event_loop in ["readiness", "naive"] {
        let mut args: Vec<String> = common.iter().map(|s| s.to_string()).collect();
        args.extend(["--event-loop".into(), event_loop.into()]);
        runs.push((
            format!("sandbox --event-loop {event_loop}"),
            sandbox.clone().into(),
            args,
        ));
    }
    match threaded_binary(Path::new(&sandbox)) {
        Some(binary) => {
            let args = common.iter().map(|s| s.to_string()).collect();
            runs.push((
                "multiclients_threaded (thread per client)".into(),
                binary,
                args,
            ));
        }
        None => println!("multiclients_threaded: binary unavailable, not measured"),
    }
    println!("clients: {n}\n");
    // SANDBOX_BENCH_SERVERS=threaded (or readiness, naive) measures only those.
    let only = std::env::var("SANDBOX_BENCH_SERVERS").unwrap_or_default();
    for (name, binary, args) in runs {
        if !only.is_empty() && !only.split(',').any(|word| name.contains(word)) {
            continue;
        }
        println!("== {name}");
        if let Err(why) = measure(&binary, &args, clients) {
            println!("   failed: {why}\n");
        }
    }
}

/// Raises the open-file limit so that N client sockets (here) and N server
/// sockets (in the child, which inherits the limit) fit: the soft limit up
/// to the hard one (what any user may do), or both where allowed (root
/// with CAP_SYS_RESOURCE). Returns how many clients fit.
fn raise_open_file_limit(wanted: usize) -> usize {
    let needed = wanted as u64 + 200;
    #[cfg(unix)]
    {
        use rlimit::Resource;
        let (soft, hard) = Resource::NOFILE.get().unwrap_or((0, 0));
        let now = if needed > hard && Resource::NOFILE.set(needed, needed).is_ok() {
            println!(
                "open-file limit: soft {soft} -> {needed}, hard {hard} -> {needed} (allowed: we are root)"
            );
            needed
        } else {
            let now = rlimit::increase_nofile_limit(needed).unwrap_or(soft);
            println!("open-file limit: soft {soft} -> {now} (hard {hard}; asked for {needed})");
            now
        };
        let fit = now.saturating_sub(200) as usize;
        if fit < wanted {
            println!(
                "note: only {fit} clients fit under this limit; raise the hard one (ulimit -Hn)"
            );
            return fit;
        }
    }
    #[cfg(not(unix))]
    println!("open-file limit: not raised on this system (Windows has no such per-process limit)");
    wanted
}

/// Lesson 3's binary beside ours, built if missing.
fn threaded_binary(sandbox: &Path) -> Option<PathBuf> {
    let binary = sandbox.with_file_name(format!(
        "multiclients_threaded{}",
        std::env::consts::EXE_SUFFIX
    ));
    if !binary.exists() {
        println!(
            "building multiclients_threaded (cargo build --release -p multiclients_threaded)..."
        );
        let target_dir = sandbox.parent()?.parent()?;
        let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
        let built = Command::new(cargo)
            .args(["build", "--release", "-p", "multiclients_threaded"])
            .env("CARGO_TARGET_DIR", target_dir)
            .status();
        if !matches!(built, Ok(status) if status.success()) {
            return None;
        }
    }
    binary.exists().then_some(binary)
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> std::io::Result<Client> {
        let stream = TcpStream::connect_timeout(&addr, WAIT)?;
        stream.set_read_timeout(Some(WAIT))?;
        stream.set_nodelay(true)?;
        Ok(Client {
            reader: BufReader::with_capacity(512, stream),
        })
    }

    fn send(&mut self, line: &str) -> std::io::Result<()> {
        self.reader.get_mut().write_all(line.as_bytes())
    }

    /// Reads lines until one contains `text`.
    fn wait_for(&mut self, text: &str) -> std::io::Result<()> {
        let mut line = String::new();
        loop {
            line.clear();
            if self.reader.read_line(&mut line)? == 0 {
                return Err(std::io::ErrorKind::UnexpectedEof.into());
            }
            if line.contains(text) {
                return Ok(());
            }
        }
    }
}

/// Measures one server, printing each figure as soon as it is known, so
/// that a server that fails half-way still shows how far it got.
fn measure(binary: &Path, args: &[String], n: usize) -> Result<(), String> {
    let server = Server::start(binary, args)?;
    let pid = server.child.id();
    let mut clients = Vec::with_capacity(n);
    let started = Instant::now();
    for i in 0..n {
        match Client::connect(server.addr) {
            Ok(client) => clients.push(client),
            Err(err) => {
                println!("   connect #{i} failed: {err}; going on with {i}");
                break;
            }
        }
    }
    let held = clients.len();
    println!(
        "   connections held: {held} (connected in {:.1} s)",
        started.elapsed().as_secs_f64()
    );
    if held < 3 {
        return Err("fewer than 3 connections".into());
    }
    println!(
        "   served (answered /ping): {} of {held}",
        served(&mut clients)
    );
    let (rss, threads) = memory(pid);
    println!("   server memory: {rss}; threads: {threads}");
    let took = broadcast(&mut clients)?;
    println!("   broadcast to {} others: {:.1} ms", held - 1, ms(took));
    let (rss, _) = memory(pid);
    println!("   server memory after the broadcast: {rss} (sandbox target: peak 16 MB)");
    println!("   idle CPU with {held} clients: {}", idle_cpu(pid));
    let (median, p99) = latency(&mut clients)?;
    println!(
        "   latency (/ping round trip): median {:.3} ms, p99 {:.3} ms\n",
        ms(median),
        ms(p99)
    );
    Ok(())
}

/// Every client sends `/ping`; counts the clients that get their answer.
fn served(clients: &mut [Client]) -> usize {
    for client in clients.iter_mut() {
        let _ = client.send("/ping\n");
    }
    clients
        .iter_mut()
        .map(|c| c.wait_for("unknown command").is_ok())
        .filter(|&ok| ok)
        .count()
}

/// From client 0's line to its arrival at every other client. The clients
/// are read one after another: by the time we reach the last, its line has
/// long been waiting in the kernel, so this measures the server's fan-out
/// plus ~2 µs per read on our side.
fn broadcast(clients: &mut [Client]) -> Result<Duration, String> {
    let started = Instant::now();
    clients[0]
        .send("hello, everyone\n")
        .map_err(|e| e.to_string())?;
    for (i, client) in clients.iter_mut().enumerate().skip(1) {
        client
            .wait_for("hello, everyone")
            .map_err(|err| format!("client {i} missed the broadcast: {err}"))?;
    }
    Ok(started.elapsed())
}

/// Round trips of `/ping` from client 1 to the server and back (an unknown
/// command is answered to its sender only), while the other clients sit
/// idle: what it costs the loop to notice one ready socket among N.
fn latency(clients: &mut [Client]) -> Result<(Duration, Duration), String> {
    let mut times = Vec::with_capacity(ROUND_TRIPS);
    for _ in 0..ROUND_TRIPS {
        let started = Instant::now();
        clients[1].send("/ping\n").map_err(|e| e.to_string())?;
        clients[1]
            .wait_for("unknown command")
            .map_err(|e| e.to_string())?;
        times.push(started.elapsed());
    }
    times.sort();
    Ok((times[ROUND_TRIPS / 2], times[ROUND_TRIPS * 99 / 100]))
}

/// Resident memory and thread count, from /proc (Linux only).
fn memory(pid: u32) -> (String, String) {
    let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) else {
        return ("unavailable".into(), "unavailable".into());
    };
    let field = |name: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(name))
            .map(|value| value.trim().to_string())
            .unwrap_or_else(|| "?".into())
    };
    (
        format!("VmRSS {} (peak VmHWM {})", field("VmRSS:"), field("VmHWM:")),
        field("Threads:"),
    )
}

/// CPU time the server used over [`IDLE_WINDOW`] while nobody spoke, from
/// /proc/PID/stat (utime + stime, in clock ticks).
fn idle_cpu(pid: u32) -> String {
    let Some(before) = cpu_ticks(pid) else {
        return "unavailable".into();
    };
    thread::sleep(IDLE_WINDOW); // the measurement window itself
    let Some(after) = cpu_ticks(pid) else {
        return "unavailable".into();
    };
    let secs = (after - before) as f64 / clock_ticks_per_second();
    format!(
        "{:.1}% of one core ({secs:.2} s CPU in {} s)",
        100.0 * secs / IDLE_WINDOW.as_secs_f64(),
        IDLE_WINDOW.as_secs()
    )
}

fn cpu_ticks(pid: u32) -> Option<u64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // Fields after the command name (which is in parentheses and may hold spaces).
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // utime and stime are fields 14 and 15 of the line, 12 and 13 here.
    Some(fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?)
}

fn clock_ticks_per_second() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|out| String::from_utf8_lossy(&out.stdout).trim().parse().ok())
        .unwrap_or(100.0)
}
