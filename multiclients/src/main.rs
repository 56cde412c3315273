//! The `multiclients` command line: `server`, `client` and `check`. Only
//! argument parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use multiclients::DEFAULT_PORT;
use plumbing::cli;

#[derive(Parser)]
#[command(about = "Lesson 2: an iterative accept loop, many clients served one at a time")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Echo server for many clients, served one after another, for ever (Ctrl-C stops it).
    ///
    /// Example: cargo run -p multiclients -- server --port 0 --backlog 16
    Server {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        backlog: cli::Backlog,
        /// Seconds a client may send nothing before the server closes it and serves the next
        /// (a silent client would otherwise block everyone waiting behind it).
        #[arg(long, default_value_t = 60.0, value_parser = cli::parse_seconds)]
        idle_timeout: f64,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Send each line of stdin to the server and print the echoes (lesson 1's client).
    ///
    /// Example: printf 'hello\n' | cargo run -p multiclients -- client
    Client {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Test whatever server listens at the address: echo, and one client after another.
    ///
    /// Example: cargo run -p multiclients -- check --port 5001
    Check(cli::Check<DEFAULT_PORT>),
}

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server {
            at,
            backlog,
            idle_timeout,
            trace,
        } => {
            trace.apply();
            let listener = basic::net::listen(&at.host, at.port, backlog.backlog)?;
            basic::net::announce(&listener)?;
            let idle_timeout = std::time::Duration::from_secs_f64(idle_timeout);
            multiclients::server::run_with_idle_timeout(listener, idle_timeout)?;
            Ok(true)
        }
        Command::Client { at, trace } => {
            trace.apply();
            let stream = basic::net::connect(&at.host, at.port)?;
            basic::client::run(
                stream,
                std::io::BufReader::new(std::io::stdin()),
                std::io::stdout(),
            )?;
            Ok(true)
        }
        Command::Check(check) => {
            let addrs = basic::net::resolve(&check.at.host, check.at.port)?;
            let report = multiclients::check::run(&addrs, check.timeout(), &mut std::io::stdout());
            Ok(report.all_passed())
        }
    })
}
