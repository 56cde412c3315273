//! The `sandbox` command line: `server`, `client` and `check`. Only argument
//! parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::io::BufReader;
use std::process::ExitCode;
use std::time::Duration;

use basic::cli::{self, parse_seconds};
use clap::{Args, Parser, Subcommand};
use sandbox::room::Options;
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
    /// Refuse clients past this many, with a one-line notice.
    #[arg(long, default_value_t = 10_000)]
    max_clients: usize,
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
    /// Chat server on one thread (Ctrl-C stops it).
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
            let addr = basic::net::resolve(&args.check.at.host, args.check.at.port)?[0];
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
        max_clients: args.max_clients,
        join_notices: !args.no_join_notices,
    };
    sandbox::server::run(listener, args.event_loop, options)?;
    Ok(true)
}

fn chat(args: ClientArgs) -> anyhow::Result<bool> {
    args.trace.apply();
    let connect_timeout = args.connect_timeout.map(Duration::from_secs_f64);
    let connect_once = || match connect_timeout {
        Some(timeout) => {
            let addr = basic::net::resolve(&args.at.host, args.at.port)?[0];
            sandbox::client::connect_with_timeout(addr, timeout)
        }
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
