//! The `multiclients_threaded` command line: `server`, `client` and `check`.
//! Only argument parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::process::ExitCode;

use basic::cli;
use clap::{Args, Parser, Subcommand};
use multiclients_threaded::DEFAULT_PORT;
use multiclients_threaded::server::{DEFAULT_MAX_CLIENTS, ServerOptions};

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
        #[command(flatten)]
        backlog: cli::Backlog,
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
    Check(cli::Check<DEFAULT_PORT>),
}

/// The server's room options.
#[derive(Args)]
struct RoomArgs {
    /// How many clients may be connected at once; one more gets a notice and is closed. Each costs two threads: a few thousand is the practical limit (see the README).
    #[arg(long, default_value_t = DEFAULT_MAX_CLIENTS as u32, value_parser = clap::value_parser!(u32).range(1..))]
    max_clients: u32,
    /// Send no `* NAME joined` / `* NAME left` notices (for large rooms and load tests).
    #[arg(long)]
    no_join_notices: bool,
}

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server {
            at,
            room,
            backlog,
            trace,
        } => {
            trace.apply();
            let listener = basic::net::listen(&at.host, at.port, backlog.backlog)?;
            basic::net::announce(&listener)?;
            let options = ServerOptions {
                max_clients: room.max_clients as usize,
                join_notices: !room.no_join_notices,
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
        Command::Check(check) => {
            let addr = basic::net::resolve(&check.at.host, check.at.port)?[0];
            let report =
                multiclients_threaded::check::run(addr, check.timeout(), &mut std::io::stdout());
            Ok(report.all_passed())
        }
    })
}
