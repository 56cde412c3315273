//! The `sandbox` command line: `server`, `client` and `check`. Only argument
//! parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::io::BufReader;
use std::net::TcpStream;
use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use plumbing::cli::{self, parse_seconds};
use sandbox::room::{
    DEFAULT_FIRST_LINE_TIMEOUT, DEFAULT_MAX_QUEUED_MB, DEFAULT_STALL_TIMEOUT, Options,
};
use sandbox::server::EventLoop;
use sandbox::{DEFAULT_BACKLOG, DEFAULT_PORT};

#[derive(Parser)]
#[command(about = "Lesson 5: timeouts and non-blocking sockets, 10,000 chat clients on one thread")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Args)]
struct ServerArgs {
    #[command(flatten)]
    at: cli::Endpoint<DEFAULT_PORT>,
    /// How the one thread finds ready sockets: try them all and sleep (naive), or ask the kernel (readiness).
    #[arg(long, value_enum, default_value_t = EventLoop::Readiness)]
    event_loop: EventLoop,
    /// Disconnect a client that has sent nothing for this many seconds (default: never).
    #[arg(long, value_parser = parse_seconds)]
    idle_timeout: Option<f64>,
    /// Refuse clients past this many, with a one-line notice [default: 10000, or what the
    /// open-files limit (`ulimit -n`) allows, if lower].
    #[arg(long)]
    max_clients: Option<usize>,
    /// Refuse a client's connections past this many from one address (loopback is never
    /// capped, so tests and SSH tunnels are not; 0: no cap).
    #[arg(long, default_value_t = plumbing::limits::DEFAULT_MAX_PER_ADDRESS)]
    max_per_address: usize,
    /// Let go of a client whose socket takes no byte for this many seconds while lines wait
    /// for it (it gets a notice). Until then, the room stops reading senders so it can catch up.
    #[arg(long, value_parser = parse_seconds, default_value_t = DEFAULT_STALL_TIMEOUT.as_secs_f64())]
    stall_timeout: f64,
    /// Close a client that has not sent one whole line this many seconds after connecting
    /// (0: never).
    #[arg(long, value_parser = parse_seconds, default_value_t = DEFAULT_FIRST_LINE_TIMEOUT.as_secs_f64())]
    first_line_timeout: f64,
    /// Memory budget, in MiB, for the bytes queued to all clients together: past it, the room
    /// stops reading senders, and join and leave notices to clients that are behind are
    /// counted instead of queued.
    #[arg(long, default_value_t = DEFAULT_MAX_QUEUED_MB)]
    max_queued_mb: usize,
    /// Do not announce joins and leaves (for large rooms and load tests).
    #[arg(long)]
    no_join_notices: bool,
    /// Length of the listen queue (the operating system may cap it).
    #[arg(long, default_value_t = DEFAULT_BACKLOG)]
    backlog: i32,
    #[command(flatten)]
    trace: cli::Trace,
}

#[derive(Args)]
struct ClientArgs {
    #[command(flatten)]
    at: cli::Endpoint<DEFAULT_PORT>,
    /// Give up connecting after this many seconds (default: the operating system's own limit,
    /// about two minutes on Linux).
    #[arg(long, value_parser = parse_seconds)]
    connect_timeout: Option<f64>,
    /// If connecting fails (say, the server is restarting), try again this many times, waiting
    /// 0.1 s, 0.2 s, 0.4 s, ... (at most 5 s) in between.
    #[arg(long, default_value_t = 0)]
    retry: u32,
    /// Give up when the server has sent nothing for this many seconds (default: wait for ever).
    #[arg(long, value_parser = parse_seconds)]
    read_timeout: Option<f64>,
    /// Send `/nick NAME` first.
    #[arg(long)]
    name: Option<String>,
    #[command(flatten)]
    trace: cli::Trace,
}

#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    check: cli::Check<DEFAULT_PORT>,
    /// The idle timeout the server was started with: adds checks that an idle client is closed after it.
    #[arg(long, value_parser = parse_seconds)]
    idle_timeout: Option<f64>,
}

#[derive(Subcommand)]
enum Command {
    /// Chat server on one thread (Ctrl-C stops it gently: every client is told, then closed).
    ///
    /// Example: cargo run -p sandbox -- server --port 0 --idle-timeout 60 --event-loop naive
    Server(ServerArgs),
    /// Chat client: send each line of stdin, print what the server sends.
    ///
    /// Example: cargo run -p sandbox -- client --connect-timeout 2 --read-timeout 30 --retry 5 --name alice
    Client(ClientArgs),
    /// Test whatever chat server listens at the address, written in any language.
    ///
    /// Example: cargo run -p sandbox -- check --port 5003 --idle-timeout 2
    Check(CheckArgs),
}

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server(args) => serve(args),
        Command::Client(args) => chat(args),
        Command::Check(args) => {
            // Every address the name resolves to is tried, as clients do.
            let (host, port) = (&args.check.at.host, args.check.at.port);
            let addr = basic::net::resolve_for_check(host, port, args.check.timeout())?;
            let idle = args.idle_timeout.map(Duration::from_secs_f64);
            let report =
                sandbox::check::run(addr, args.check.timeout(), idle, &mut std::io::stdout());
            Ok(report.all_passed())
        }
    })
}

fn serve(args: ServerArgs) -> anyhow::Result<bool> {
    args.trace.apply();
    let listener = basic::net::listen(&args.at.host, args.at.port, args.backlog)?;
    basic::net::announce(&listener)?;
    let options = Options {
        idle_timeout: args.idle_timeout.map(Duration::from_secs_f64),
        max_clients: max_clients(args.max_clients),
        join_notices: !args.no_join_notices,
        stall_timeout: Duration::from_secs_f64(args.stall_timeout),
        first_line_timeout: (args.first_line_timeout > 0.0)
            .then(|| Duration::from_secs_f64(args.first_line_timeout)),
        max_queued_bytes: args.max_queued_mb.saturating_mul(1024 * 1024),
        max_per_address: args.max_per_address,
    };
    // Ctrl-C asks the loop to stop; it then tells every client and closes
    // each connection gently before returning (src/shutdown.rs).
    let stop = sandbox::shutdown::Stop::default();
    stop.on_ctrl_c()?;
    sandbox::server::run_until(listener, args.event_loop, options, &stop)?;
    Ok(true)
}

/// The client limit: the one asked for, or by default 10,000 lowered to
/// what the open-files limit allows (each client is one descriptor). A
/// limit asked for above it is kept, with a note: past it, newcomers are
/// refused as "out of file descriptors".
fn max_clients(asked: Option<usize>) -> usize {
    const DEFAULT_MAX_CLIENTS: usize = 10_000;
    let (fits, note) = plumbing::limits::fit_to_open_files(asked.unwrap_or(DEFAULT_MAX_CLIENTS), 1);
    match (asked, note) {
        (None, Some(note)) => {
            plumbing::log!("{note}");
            fits
        }
        (Some(asked), Some(_)) => {
            plumbing::log!(
                "note: --max-clients {asked} is above what the open-files limit allows (about {fits} clients); past that, newcomers are refused as out of file descriptors (raise it with `ulimit -n`)"
            );
            asked
        }
        (asked, None) => asked.unwrap_or(fits),
    }
}

/// Tries every address `host` resolves to, each with the connect timeout
/// (`localhost` may be `::1` first while the server listens on `127.0.0.1`).
fn connect_any_within(host: &str, port: u16, timeout: Duration) -> anyhow::Result<TcpStream> {
    let mut last_err = None;
    for addr in basic::net::resolve(host, port)? {
        match sandbox::client::connect_with_timeout(addr, timeout) {
            Ok(stream) => return Ok(stream),
            Err(err) => last_err = Some(err),
        }
    }
    // resolve() gave at least one address, so the loop set last_err.
    Err(last_err.unwrap_or_else(|| anyhow::anyhow!("{host} resolves to no address")))
}

fn chat(args: ClientArgs) -> anyhow::Result<bool> {
    args.trace.apply();
    let connect_timeout = args.connect_timeout.map(Duration::from_secs_f64);
    let connect_once = || match connect_timeout {
        Some(timeout) => connect_any_within(&args.at.host, args.at.port, timeout),
        None => basic::net::connect(&args.at.host, args.at.port),
    };
    let stream = match args.retry {
        0 => connect_once()?,
        retries => sandbox::client::connect_with_retry(connect_once, retries, std::thread::sleep)?,
    };
    let first = args
        .name
        .map(|name| format!("/nick {name}\n"))
        .unwrap_or_default();
    // `first` comes before stdin: the name is set before anything is said.
    let input = BufReader::new(std::io::Read::chain(
        std::io::Cursor::new(first),
        std::io::stdin(),
    ));
    let read_timeout = args.read_timeout.map(Duration::from_secs_f64);
    sandbox::client::run(stream, input, std::io::stdout(), read_timeout)?;
    Ok(true)
}
