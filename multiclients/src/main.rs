//! The `multiclients` command line: `server`, `client` and `check`. The
//! lesson is in the library (`src/lib.rs`); the options are at the bottom.

use std::io::{self, BufReader};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::Result;
use clap::{Parser, Subcommand};
use multiclients::DEFAULT_PORT;
use plumbing::cli;

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server {
            at,
            backlog,
            idle_timeout,
            trace,
        } => serve(&at, backlog.backlog, idle_timeout, &trace),
        Command::Client { at, trace } => talk(&at, &trace),
        Command::Check(check) => check_server(&check),
    })
}

/// `server`: listen, announce, serve clients one after another for ever.
fn serve(at: &Endpoint, backlog: i32, idle_timeout: f64, trace: &cli::Trace) -> Result<bool> {
    trace.apply();
    let listener = basic::net::listen(&at.host, at.port, backlog)?;
    basic::net::announce(&listener)?;
    let idle_timeout = Duration::from_secs_f64(idle_timeout);
    multiclients::server::run_with_idle_timeout(listener, idle_timeout)?;
    Ok(true)
}

/// `client`: lesson 1's client, unchanged.
fn talk(at: &Endpoint, trace: &cli::Trace) -> Result<bool> {
    trace.apply();
    let stream = basic::net::connect(&at.host, at.port)?;
    basic::client::run(stream, BufReader::new(io::stdin()), io::stdout())?;
    Ok(true)
}

/// `check`: echo, then one client after another.
fn check_server(check: &cli::Check<DEFAULT_PORT>) -> Result<bool> {
    let addrs = basic::net::resolve(&check.at.host, check.at.port)?;
    let report = multiclients::check::run(&addrs, check.timeout(), &mut io::stdout());
    Ok(report.all_passed())
}

/// `--host` and `--port`, with this lesson's default port.
type Endpoint = cli::Endpoint<DEFAULT_PORT>;

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
        at: Endpoint,
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
        at: Endpoint,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Test whatever server listens at the address: echo, and one client after another.
    ///
    /// Example: cargo run -p multiclients -- check --port 5001
    Check(cli::Check<DEFAULT_PORT>),
}
