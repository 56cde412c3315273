//! `cargo bench -p framed_header`: messages per second through a server of
//! the fixed-header protocol, this lesson's next to the yardsticks, in one
//! run: the C epoll reference (`shared/reference/c_epoll_framed.c`, built
//! with the system's C compiler) and the Python tutorial's server
//! (`framed_header/tutorial/server.py`, with python3). A yardstick that
//! cannot be built or started is skipped with a note.
//!
//! Two workloads, each 10 connections x 20,000 messages:
//! - **pipelined**: each connection keeps 64 messages in flight (it sends
//!   a new one for each reply), as a client that does not wait would;
//! - **burst**: each connection writes all its messages as fast as it can
//!   on one thread while another reads the replies.
//!
//! in two settings: the lesson's (128-byte header, framed replies, goodbye
//! `!DISCONNECT!`) and the tutorial's (64-byte header, raw replies,
//! `!DISCONNECT`), which the Python server speaks. Every reply is
//! accounted for: each connection checks that the reply bytes are exactly
//! the expected reply over and over, and counts them; a run with a reply
//! lost, extra or garbled is reported as such. Each figure is the median of
//! five rounds; the servers take turns, round by round.
//!
//! Then **churn**: 5,000 connections opened and closed one after another,
//! counting the connects that took over half a second (a connect that
//! finds the listen backlog full is retried by the kernel after a second).
//!
//! Any other server (a classmate's, say), at an address:
//!
//! ```text
//! cargo bench -p framed_header -- --addr 127.0.0.1:5050 [--header-size 64] [--raw-replies] [--goodbye '!DISCONNECT'] [--churn]
//! ```

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use framed_header::frame::Framing;

const SERVER: &str = env!("CARGO_BIN_EXE_framed_header");
const CONNECTIONS: usize = 10;
const MESSAGES_PER_CONNECTION: usize = 20_000;
const IN_FLIGHT: usize = 64;
const ROUNDS: usize = 5;
/// The payload of every message (its content does not matter to the server).
const PAYLOAD: &str = "hello from the benchmark";
const REPLY: &str = "Msg received";
/// No single read or write of the benchmark waits longer than this.
const STALL: Duration = Duration::from_secs(10);
/// At most this many messages go out in one write in the burst.
const BURST_CHUNK: usize = 256;
/// Connections opened and closed in the churn test.
const CHURN_CYCLES: usize = 5_000;
/// A connect slower than this met a full backlog (or worse).
const SLOW_CONNECT: Duration = Duration::from_millis(500);

/// What both sides must agree on.
#[derive(Clone)]
struct Settings {
    name: &'static str,
    header_len: usize,
    raw_replies: bool,
    goodbye: String,
}

impl Settings {
    fn lesson() -> Settings {
        Settings {
            name: "lesson settings (128-byte header, framed replies)",
            header_len: 128,
            raw_replies: false,
            goodbye: "!DISCONNECT!".into(),
        }
    }

    fn tutorial() -> Settings {
        Settings {
            name: "tutorial settings (64-byte header, raw replies)",
            header_len: 64,
            raw_replies: true,
            goodbye: "!DISCONNECT".into(),
        }
    }

    fn framing(&self) -> Framing {
        Framing::new(self.header_len, 1024 * 1024).expect("valid framing")
    }

    fn frame(&self, text: &str) -> Vec<u8> {
        self.framing().encode(text).expect("a message that fits")
    }

    fn reply(&self) -> Vec<u8> {
        if self.raw_replies {
            REPLY.as_bytes().to_vec()
        } else {
            self.frame(REPLY)
        }
    }
}

#[derive(Clone, Copy, PartialEq)]
enum Workload {
    Pipelined,
    Burst,
}

impl Workload {
    fn name(self) -> String {
        match self {
            Workload::Pipelined => format!("pipelined, {IN_FLIGHT} in flight"),
            Workload::Burst => "burst, all at once".into(),
        }
    }
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(addr) = value_of(&args, "--addr") {
        return bench_one_address(&addr, &args);
    }
    println!(
        "framed_header: {CONNECTIONS} connections x {MESSAGES_PER_CONNECTION} messages, \
         median of {ROUNDS} rounds; machine: {}",
        plumbing::testing::machine()
    );
    let c_reference = build_c_reference();
    for settings in [Settings::lesson(), Settings::tutorial()] {
        println!("\n{}", settings.name);
        for workload in [Workload::Pipelined, Workload::Burst] {
            compare(&settings, workload, c_reference.as_deref());
        }
    }
    println!("\nchurn: {CHURN_CYCLES} connect/close cycles, one after another");
    churn_started("framed_header", &ours_command(&Settings::lesson()));
    if let Some(binary) = c_reference {
        let mut command = Command::new(binary);
        command.args(["--port", "0"]);
        churn_started("C epoll reference", &command);
    }
    // Not the Python server: each connection closed without its goodbye
    // leaves one of its threads spinning for ever.
}

fn churn_started(name: &str, command: &Command) {
    let mut server = match Started::new(command) {
        Ok(server) => server,
        Err(err) => return println!("  {name:<24} skipped: {err}"),
    };
    churn(name, server.addr);
    let _ = server.child.kill();
    let _ = server.child.wait();
}

/// Opens and closes connections one after another, timing each connect.
fn churn(name: &str, addr: SocketAddr) {
    let started = Instant::now();
    let mut slow = 0;
    for _ in 0..CHURN_CYCLES {
        let connecting = Instant::now();
        match TcpStream::connect_timeout(&addr, STALL) {
            Ok(stream) => drop(stream),
            Err(err) => {
                println!("  {name:<24} FAILED: connect: {err}");
                break;
            }
        }
        slow += usize::from(connecting.elapsed() > SLOW_CONNECT);
    }
    let rate = CHURN_CYCLES as f64 / started.elapsed().as_secs_f64();
    println!("  {name:<24} {rate:>12.0} cycles/s, {slow} connects over {SLOW_CONNECT:?}");
}

/// One workload in one setting against every server, then the ratios.
/// The servers take turns, round after round, so that a moment when the
/// machine is busy elsewhere costs each of them alike.
fn compare(settings: &Settings, workload: Workload, c_reference: Option<&Path>) {
    println!("  {}:", workload.name());
    let mut contenders = vec![Contender::start("framed_header", &ours_command(settings))];
    if let Some(binary) = c_reference {
        let mut command = Command::new(binary);
        command.args(["--port", "0", "--header", &settings.header_len.to_string()]);
        if settings.raw_replies {
            command.arg("--raw");
        }
        contenders.push(Contender::start("C epoll reference", &command));
    }
    if let (true, Some(command)) = (settings.raw_replies, tutorial_server_command()) {
        contenders.push(Contender::start("Python tutorial server", &command));
    }
    for _ in 0..ROUNDS {
        for contender in &mut contenders {
            contender.run_round(settings, workload);
        }
    }
    let rates: Vec<Option<f64>> = contenders.iter_mut().map(Contender::finish).collect();
    for (name, rate) in contenders.iter().zip(&rates).skip(1) {
        if let (Some(ours), Some(theirs)) = (rates[0], rate) {
            println!(
                "    ratio framed_header / {}: {:.2}",
                name.name,
                ours / theirs
            );
        }
    }
}

/// One server under test, and its rounds so far.
struct Contender {
    name: &'static str,
    server: Result<Started, String>,
    rates: Vec<f64>,
    failure: Option<String>,
}

impl Contender {
    fn start(name: &'static str, command: &Command) -> Contender {
        Contender {
            name,
            server: Started::new(command),
            rates: Vec::new(),
            failure: None,
        }
    }

    /// One more round, unless the server could not start or failed one.
    fn run_round(&mut self, settings: &Settings, workload: Workload) {
        let Ok(server) = &self.server else { return };
        if self.failure.is_some() {
            return;
        }
        match round(server.addr, settings, workload) {
            Ok(rate) => self.rates.push(rate),
            Err(problem) => self.failure = Some(problem),
        }
    }

    /// Prints the median rate (or what went wrong), stops the server.
    fn finish(&mut self) -> Option<f64> {
        let name = self.name;
        let rate = match (&mut self.server, &self.failure) {
            (Err(err), _) => {
                println!("    {name:<24} skipped: {err}");
                None
            }
            (Ok(_), Some(problem)) => {
                println!("    {name:<24} FAILED: {problem}");
                None
            }
            (Ok(_), None) => {
                self.rates.sort_by(f64::total_cmp);
                let median = self.rates[self.rates.len() / 2];
                println!("    {name:<24} {median:>12.0} messages/s, every reply accounted for");
                Some(median)
            }
        };
        if let Ok(server) = &mut self.server {
            let _ = server.child.kill();
            let _ = server.child.wait();
        }
        rate
    }
}

fn ours_command(settings: &Settings) -> Command {
    let mut command = Command::new(SERVER);
    command.args(["server", "--port", "0"]);
    command.args(["--header-size", &settings.header_len.to_string()]);
    if settings.raw_replies {
        command.arg("--raw-replies");
    }
    command
}

/// The median rate of [`ROUNDS`] rounds, or what went wrong.
fn measure(addr: SocketAddr, settings: &Settings, workload: Workload) -> Result<f64, String> {
    let mut rates = Vec::new();
    for _ in 0..ROUNDS {
        rates.push(round(addr, settings, workload)?);
    }
    rates.sort_by(f64::total_cmp);
    Ok(rates[rates.len() / 2])
}

/// One round: every connection at once; messages/s over all of them.
fn round(addr: SocketAddr, settings: &Settings, workload: Workload) -> Result<f64, String> {
    let started = Instant::now();
    let connections: Vec<_> = (0..CONNECTIONS)
        .map(|_| {
            let settings = settings.clone();
            thread::spawn(move || match workload {
                Workload::Pipelined => pipelined(addr, &settings),
                Workload::Burst => burst(addr, &settings),
            })
        })
        .collect();
    let mut replies = 0;
    for connection in connections {
        replies += connection
            .join()
            .map_err(|_| "a connection panicked".to_string())??;
    }
    let elapsed = started.elapsed().as_secs_f64();
    let sent = CONNECTIONS * MESSAGES_PER_CONNECTION;
    if replies != sent {
        return Err(format!("{sent} sent, {replies} replies"));
    }
    Ok(sent as f64 / elapsed)
}

fn open(addr: SocketAddr) -> Result<TcpStream, String> {
    let stream = TcpStream::connect(addr).map_err(|err| format!("connect: {err}"))?;
    stream.set_nodelay(true).map_err(|err| err.to_string())?;
    stream
        .set_read_timeout(Some(STALL))
        .map_err(|err| err.to_string())?;
    stream
        .set_write_timeout(Some(STALL))
        .map_err(|err| err.to_string())?;
    Ok(stream)
}

/// Keeps [`IN_FLIGHT`] messages unanswered: a new one for each reply.
fn pipelined(addr: SocketAddr, settings: &Settings) -> Result<usize, String> {
    let mut stream = open(addr)?;
    let frame = settings.frame(PAYLOAD);
    let window = frame.repeat(IN_FLIGHT);
    let mut replies = Replies::new(settings.reply());
    let mut sent = 0;
    let mut buf = vec![0u8; 64 * 1024];
    while replies.count < MESSAGES_PER_CONNECTION {
        let in_flight = sent - replies.count;
        let more = (IN_FLIGHT - in_flight).min(MESSAGES_PER_CONNECTION - sent);
        if more > 0 {
            write(&mut stream, &window[..more * frame.len()])?;
            sent += more;
        }
        let n = read(&mut stream, &mut buf)?;
        if n == 0 {
            return Err(replies.closed_early(sent));
        }
        replies.take(&buf[..n])?;
    }
    goodbye(stream, settings, replies)
}

/// Writes every message at once on one thread, reads on another.
fn burst(addr: SocketAddr, settings: &Settings) -> Result<usize, String> {
    let stream = open(addr)?;
    let mut writer = stream.try_clone().map_err(|err| err.to_string())?;
    let chunk = settings.frame(PAYLOAD).repeat(BURST_CHUNK);
    let writing = thread::spawn(move || -> Result<(), String> {
        let mut left = MESSAGES_PER_CONNECTION;
        while left > 0 {
            let n = left.min(BURST_CHUNK);
            write(&mut writer, &chunk[..n * chunk.len() / BURST_CHUNK])?;
            left -= n;
        }
        Ok(())
    });
    let mut replies = Replies::new(settings.reply());
    let mut reader = &stream;
    let mut buf = vec![0u8; 64 * 1024];
    while replies.count < MESSAGES_PER_CONNECTION {
        let n = read(&mut reader, &mut buf)?;
        if n == 0 {
            return Err(replies.closed_early(MESSAGES_PER_CONNECTION));
        }
        replies.take(&buf[..n])?;
    }
    writing.join().map_err(|_| "the writer panicked")??;
    goodbye(stream, settings, replies)
}

/// Says goodbye, then expects the goodbye's reply (or none) and the close,
/// and nothing else. Returns the messages' replies.
fn goodbye(
    mut stream: TcpStream,
    settings: &Settings,
    mut replies: Replies,
) -> Result<usize, String> {
    let answered = replies.count;
    write(&mut stream, &settings.frame(&settings.goodbye))?;
    let mut buf = [0u8; 4096];
    loop {
        match read(&mut stream, &mut buf)? {
            0 => break,
            n => replies.take(&buf[..n])?,
        }
    }
    if replies.count > answered + 1 || replies.partial() {
        return Err(format!(
            "{} replies more than messages",
            replies.count - answered
        ));
    }
    Ok(answered)
}

fn write(stream: &mut impl Write, bytes: &[u8]) -> Result<(), String> {
    stream
        .write_all(bytes)
        .map_err(|err| format!("write: {err}"))
}

fn read(stream: &mut impl Read, buf: &mut [u8]) -> Result<usize, String> {
    loop {
        match stream.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) if err.kind() == io::ErrorKind::ConnectionReset => return Ok(0),
            Err(err) => return Err(format!("read: {err} (no reply for {STALL:?}?)")),
            Ok(n) => return Ok(n),
        }
    }
}

/// Counts replies in a byte stream that must be `expected` over and over.
struct Replies {
    expected: Vec<u8>,
    /// How far into the current reply the stream is.
    at: usize,
    count: usize,
}

impl Replies {
    fn new(expected: Vec<u8>) -> Replies {
        Replies {
            expected,
            at: 0,
            count: 0,
        }
    }

    fn take(&mut self, mut bytes: &[u8]) -> Result<(), String> {
        while !bytes.is_empty() {
            let n = bytes.len().min(self.expected.len() - self.at);
            if bytes[..n] != self.expected[self.at..self.at + n] {
                return Err(format!(
                    "reply {} garbled: {:?}",
                    self.count + 1,
                    String::from_utf8_lossy(&bytes[..n.min(60)])
                ));
            }
            self.at += n;
            bytes = &bytes[n..];
            if self.at == self.expected.len() {
                self.count += 1;
                self.at = 0;
            }
        }
        Ok(())
    }

    fn partial(&self) -> bool {
        self.at != 0
    }

    fn closed_early(&self, sent: usize) -> String {
        format!(
            "the server closed after {} replies to {sent} messages",
            self.count
        )
    }
}

/// A server process, stdout drained so that its log never blocks it.
struct Started {
    child: Child,
    addr: SocketAddr,
}

impl Started {
    fn new(command: &Command) -> Result<Started, String> {
        let mut command = rebuild(command);
        let mut child = command
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .map_err(|err| format!("cannot start {:?}: {err}", command.get_program()))?;
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            let mut lines = BufReader::new(stdout);
            let mut first = String::new();
            let _ = lines.read_line(&mut first);
            let _ = tx.send(first);
            // Drain the log as fast as it comes, like `| cat > /dev/null`.
            let _ = io::copy(&mut lines, &mut io::sink());
        });
        let first = rx.recv_timeout(STALL).unwrap_or_default();
        match first.trim().strip_prefix("listening on ").map(str::parse) {
            Some(Ok(addr)) => Ok(Started { child, addr }),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                Err(format!("no `listening on` line, got {first:?}"))
            }
        }
    }
}

/// A `Command` cannot be cloned: make a new one with the same program and args.
fn rebuild(command: &Command) -> Command {
    let mut copy = Command::new(command.get_program());
    copy.args(command.get_args());
    copy
}

/// Builds the C reference into the target folder, if its source and a C
/// compiler are found.
fn build_c_reference() -> Option<PathBuf> {
    let source = std::env::var_os("FRAMED_C_REFERENCE")
        .map(PathBuf::from)
        .or_else(|| {
            Path::new(env!("CARGO_MANIFEST_DIR"))
                .ancestors()
                .map(|dir| dir.join("shared/reference/c_epoll_framed.c"))
                .find(|path| path.exists())
        });
    let Some(source) = source else {
        println!("note: shared/reference/c_epoll_framed.c not found (set FRAMED_C_REFERENCE)");
        return None;
    };
    let binary = Path::new(env!("CARGO_TARGET_TMPDIR")).join("c_epoll_framed");
    let compiler = std::env::var("CC").unwrap_or_else(|_| "cc".into());
    let built = Command::new(&compiler)
        .args(["-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(&source)
        .status();
    match built {
        Ok(status) if status.success() => Some(binary),
        other => {
            println!(
                "note: cannot build {} with {compiler}: {other:?}",
                source.display()
            );
            None
        }
    }
}

/// `python3 -u tutorial/server.py 0`, if python3 runs.
fn tutorial_server_command() -> Option<Command> {
    let found = Command::new("python3").arg("--version").output();
    if !found.is_ok_and(|out| out.status.success()) {
        println!("    note: python3 not found; the Python tutorial server is skipped");
        return None;
    }
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tutorial/server.py");
    let mut command = Command::new("python3");
    command.arg("-u").arg(script).arg("0");
    Some(command)
}

/// `--addr HOST:PORT`: the two workloads against that server only.
fn bench_one_address(addr: &str, args: &[String]) {
    let addr: SocketAddr = addr
        .parse()
        .expect("--addr takes IP:PORT, e.g. 127.0.0.1:5050");
    let settings = Settings {
        name: "given settings",
        header_len: value_of(args, "--header-size")
            .map_or(128, |n| n.parse().expect("--header-size takes a number")),
        raw_replies: args.iter().any(|arg| arg == "--raw-replies"),
        goodbye: value_of(args, "--goodbye").unwrap_or_else(|| "!DISCONNECT".into()),
    };
    println!(
        "framed_header bench against {addr}; machine: {}",
        plumbing::testing::machine()
    );
    for workload in [Workload::Pipelined, Workload::Burst] {
        match measure(addr, &settings, workload) {
            Ok(rate) => println!(
                "  {}: {rate:.0} messages/s, every reply accounted for",
                workload.name()
            ),
            Err(problem) => println!("  {}: FAILED: {problem}", workload.name()),
        }
    }
    if args.iter().any(|arg| arg == "--churn") {
        println!("churn: {CHURN_CYCLES} connect/close cycles, one after another");
        churn("the server", addr);
    }
}

fn value_of(args: &[String], flag: &str) -> Option<String> {
    let at = args.iter().position(|arg| arg == flag)?;
    args.get(at + 1).cloned()
}
