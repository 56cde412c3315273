//! The `multiclients_threaded` command line: `server`, `client` and `check`.
//! Only argument parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use multiclients_threaded::DEFAULT_PORT;
use multiclients_threaded::check::DEFAULT_STALL_ALLOWANCE;
use multiclients_threaded::server::{
    DEFAULT_MAX_CLIENTS, FIRST_LINE_TIMEOUT, QUEUE_BUDGET_BYTES, STALL_TIMEOUT, ServerOptions,
};
use plumbing::cli;

#[derive(Parser)]
#[command(about = "Lesson 3: a thread-per-client broadcast chat that one slow client cannot stall")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Chat server: every line a client sends goes to all the others (Ctrl-C stops it).
    ///
    /// Example: cargo run -p multiclients_threaded -- server --port 0 --max-clients 50
    Server {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        room: RoomArgs,
        /// Length of the listen queue: connections the kernel completes before we accept them (the operating system may cap it). Large, so that bursts of connections wait instead of being retried a second later.
        #[arg(long, default_value_t = DEFAULT_BACKLOG)]
        backlog: i32,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Chat client: send each line of stdin, print what the others say as it arrives.
    ///
    /// At the end of input it sends /quit and prints what still arrives until the server closes.
    ///
    /// Example: cargo run -p multiclients_threaded -- client --name alice
    Client {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        /// Take this name on connecting (sends `/nick NAME` first).
        #[arg(long)]
        name: Option<String>,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Test whatever chat server listens at the address, written in any language.
    ///
    /// Example: cargo run -p multiclients_threaded -- check --port 5002
    Check(CheckArgs),
}

/// `check`: the shared options, and how long a server may take to let a
/// client that reads nothing go.
#[derive(Args)]
struct CheckArgs {
    #[command(flatten)]
    check: cli::Check<DEFAULT_PORT>,
    /// Seconds the server may wait for a client that reads nothing before it lets it go (its --stall-timeout); the slow-reader checks allow that long a pause.
    #[arg(long, default_value_t = DEFAULT_STALL_ALLOWANCE.as_secs_f64(), value_parser = cli::parse_seconds)]
    stall_timeout: f64,
}

/// The server's room options.
#[derive(Args)]
struct RoomArgs {
    /// How many clients may be connected at once; one more gets a notice and is closed. Each costs two threads (a few thousand is the practical limit, see the README) and one file descriptor: the server lowers the limit to what `ulimit -n` allows, and says so.
    #[arg(long, default_value_t = DEFAULT_MAX_CLIENTS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: u32,
    /// Send no `* NAME joined` / `* NAME left` notices (for large rooms and load tests).
    #[arg(long)]
    no_join_notices: bool,
    /// Seconds a client may read nothing while lines wait for it; then it is disconnected, with a notice. Until then, senders wait for it.
    #[arg(long, default_value_t = STALL_TIMEOUT.as_secs_f64(), value_parser = cli::parse_seconds)]
    stall_timeout: f64,
    /// Seconds a new client has to send its first complete line (any line, /who will do); then it is closed, so that silent connections cannot fill the room.
    #[arg(long, default_value_t = FIRST_LINE_TIMEOUT.as_secs_f64(), value_parser = cli::parse_seconds)]
    first_line_timeout: f64,
    /// Connections one address (an IPv6 /64) may hold at once; one more gets a notice and is closed. 0: no cap. Loopback is never capped (SSH tunnels and port forwards all arrive from 127.0.0.1).
    #[arg(long, default_value_t = plumbing::limits::DEFAULT_MAX_PER_ADDRESS)]
    max_per_address: usize,
    /// MiB of lines the server may hold queued for all clients together; past it, every sender waits.
    #[arg(long, default_value_t = (QUEUE_BUDGET_BYTES >> 20) as u32, value_parser = clap::value_parser!(u32).range(1..))]
    queue_budget_mib: u32,
}

/// The listen backlog unless `--backlog` says otherwise: larger than
/// `basic`'s, for a server that many clients connect to at once.
const DEFAULT_BACKLOG: i32 = 4096;

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server {
            at,
            room,
            backlog,
            trace,
        } => {
            trace.apply();
            let listener = basic::net::listen(&at.host, at.port, backlog)?;
            basic::net::announce(&listener)?;
            let options = ServerOptions {
                max_clients: room.max_clients as usize,
                join_notices: !room.no_join_notices,
                stall_timeout: Duration::from_secs_f64(room.stall_timeout),
                first_line_timeout: Duration::from_secs_f64(room.first_line_timeout),
                queue_budget_bytes: (room.queue_budget_mib as usize) << 20,
                max_per_address: room.max_per_address,
                ..ServerOptions::default()
            };
            multiclients_threaded::server::run(listener, &options)?;
            Ok(true)
        }
        Command::Client { at, name, trace } => {
            trace.apply();
            let stream = basic::net::connect(&at.host, at.port)?;
            multiclients_threaded::client::run(
                stream,
                name.as_deref(),
                std::io::BufReader::new(std::io::stdin()),
                std::io::stdout(),
            )?;
            Ok(true)
        }
        Command::Check(CheckArgs {
            check,
            stall_timeout,
        }) => {
            // Every address the name resolves to is tried (`localhost` may
            // be ::1 first while the server listens on 127.0.0.1).
            let addr =
                basic::net::resolve_for_check(&check.at.host, check.at.port, check.timeout())?;
            let report = multiclients_threaded::check::run_with(
                addr,
                check.timeout(),
                Duration::from_secs_f64(stall_timeout),
                &mut std::io::stdout(),
            );
            Ok(report.all_passed())
        }
    })
}
