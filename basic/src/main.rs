//! The `basic` command line: `server`, `client` and `check`. Only argument
//! parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::process::ExitCode;

use basic::DEFAULT_PORT;
use clap::{Parser, Subcommand};
use plumbing::cli;

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
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Send each line of stdin to the server and print the echoes.
    ///
    /// Example: printf 'hello\n' | cargo run -p basic -- client --port 5000
    Client {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
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

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server { at, trace } => {
            trace.apply();
            let listener = basic::net::listen(&at.host, at.port, basic::net::DEFAULT_BACKLOG)?;
            basic::net::announce(&listener)?;
            basic::server::run(listener)?;
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
        Command::Diagram { events, output } => {
            plumbing::diagram::draw_files(&events, &output)?;
            eprintln!("wrote {}", output.display());
            Ok(true)
        }
        Command::Check(check) => {
            let addrs = basic::net::resolve(&check.at.host, check.at.port)?;
            let report = basic::check::run(&addrs, check.timeout(), &mut std::io::stdout());
            Ok(report.all_passed())
        }
    })
}
