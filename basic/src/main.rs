//! The `basic` command line: `server`, `client` and `check`. Each does the
//! socket calls of the lesson through the library (`src/lib.rs`); the options
//! themselves are at the bottom of this file.

use std::io::{self, BufReader};
use std::process::ExitCode;

use anyhow::Result;
use basic::DEFAULT_PORT;
use clap::{Parser, Subcommand};
use plumbing::cli;

fn main() -> ExitCode {
    // Any error is printed as one line with a hint, and the exit status
    // says whether everything went right.
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server { at, trace } => serve(&at, &trace),
        Command::Client { at, trace } => talk(&at, &trace),
        Command::Check(check) => check_server(&check),
        Command::Diagram { events, output } => draw(&events, &output),
    })
}

/// `server`: listen, announce the address, serve one client, exit.
fn serve(at: &Endpoint, trace: &cli::Trace) -> Result<bool> {
    trace.apply();
    let listener = basic::net::listen(&at.host, at.port, basic::net::DEFAULT_BACKLOG)?;
    basic::net::announce(&listener)?;
    basic::server::run(listener)?;
    Ok(true)
}

/// `client`: connect, send stdin, print the echoes.
fn talk(at: &Endpoint, trace: &cli::Trace) -> Result<bool> {
    trace.apply();
    let stream = basic::net::connect(&at.host, at.port)?;
    basic::client::run(stream, BufReader::new(io::stdin()), io::stdout())?;
    Ok(true)
}

/// `check`: the echo checks against whatever listens there.
fn check_server(check: &cli::Check<DEFAULT_PORT>) -> Result<bool> {
    let addrs = basic::net::resolve(&check.at.host, check.at.port)?;
    let report = basic::check::run(&addrs, check.timeout(), &mut io::stdout());
    Ok(report.all_passed())
}

/// `diagram`: recorded sessions drawn as one SVG sequence diagram.
fn draw(events: &[std::path::PathBuf], output: &std::path::Path) -> Result<bool> {
    plumbing::diagram::draw_files(events, output)?;
    eprintln!("wrote {}", output.display());
    Ok(true)
}

/// `--host` and `--port`, with this lesson's default port.
type Endpoint = cli::Endpoint<DEFAULT_PORT>;

#[derive(Parser)]
#[command(about = "Lesson 1: the smallest blocking echo server and client")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve one client: echo every byte back until it closes, then exit.
    ///
    /// Example: cargo run -p basic -- server --port 0 --trace
    Server {
        #[command(flatten)]
        at: Endpoint,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Send each line of stdin to the server and print the echoes.
    ///
    /// Example: printf 'hello\n' | cargo run -p basic -- client --port 5000
    Client {
        #[command(flatten)]
        at: Endpoint,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Test whatever echo server listens at the address, written in any language.
    ///
    /// Example: cargo run -p basic -- check --port 5000
    Check(cli::Check<DEFAULT_PORT>),
    /// Draw recorded sessions (`--trace-to FILE`, from any lesson's server or client) as one
    /// sequence diagram, an SVG file.
    ///
    /// Example: cargo run -p basic -- diagram server.events client.events -o session.svg
    Diagram {
        /// Event files written by `--trace-to`, one per process.
        #[arg(required = true)]
        events: Vec<std::path::PathBuf>,
        /// The SVG file to write.
        #[arg(short, long, default_value = "session.svg")]
        output: std::path::PathBuf,
    },
}
