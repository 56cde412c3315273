//! The `framed_header` command line: `server`, `client` and `check`. Only
//! argument parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::process::ExitCode;

use basic::cli;
use clap::{Args, Parser, Subcommand};
use framed_header::frame::{DEFAULT_HEADER_LEN, DEFAULT_MAX_PAYLOAD_BYTES, Framing};
use framed_header::{DEFAULT_PORT, check, client, server};

#[derive(Parser)]
#[command(
    about = "Lesson 4: messages framed by a fixed-size length header (the Python tutorial's protocol)"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

/// The protocol settings every side must agree on.
#[derive(Args, Debug, Clone)]
struct Protocol {
    /// Header size in bytes (the tutorial uses 64).
    #[arg(long, default_value_t = DEFAULT_HEADER_LEN)]
    header_size: usize,
    /// Largest payload, in bytes (at most 1 GiB). The server refuses a longer
    /// declared length; the client refuses to send a longer line; check sends
    /// exactly this much and expects one byte more to be refused. So client
    /// and check must use the server's value.
    #[arg(long, default_value_t = DEFAULT_MAX_PAYLOAD_BYTES)]
    max_payload: usize,
    /// Replies are bare bytes with no header, as the tutorial's server sends them.
    #[arg(long)]
    raw_replies: bool,
}

impl Protocol {
    fn framing(&self) -> anyhow::Result<Framing> {
        Framing::new(self.header_size, self.max_payload).map_err(anyhow::Error::msg)
    }
}

#[derive(Subcommand)]
enum Command {
    /// Answer every message with "Msg received", a thread per client, for ever (Ctrl-C stops it).
    ///
    /// Example (for the tutorial's Python client): cargo run -p framed_header -- server --header-size 64 --raw-replies
    Server {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        protocol: Protocol,
        #[command(flatten)]
        backlog: cli::Backlog,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Send each line of stdin as one message and print its reply; at the end, say !DISCONNECT.
    ///
    /// One reply is printed per line: the goodbye's reply answers no line, so
    /// it is awaited, not printed. An `!ERROR` reply stops the client with an error.
    ///
    /// Example: printf 'hello\nhéllo ✓\n' | cargo run -p framed_header -- client
    Client {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        protocol: Protocol,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Test whatever server of this protocol listens at the address, written in any language.
    ///
    /// Example (a tutorial Python server): cargo run -p framed_header -- check --header-size 64 --raw-replies
    Check(CheckArgs),
}

/// `check`'s options: the shared ones, and the protocol settings to expect.
#[derive(Args, Debug, Clone)]
struct CheckArgs {
    #[command(flatten)]
    check: cli::Check<DEFAULT_PORT>,
    #[command(flatten)]
    protocol: Protocol,
}

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server {
            at,
            protocol,
            backlog,
            trace,
        } => {
            trace.apply();
            serve(&at, &protocol, &backlog)
        }
        Command::Client {
            at,
            protocol,
            trace,
        } => {
            trace.apply();
            talk(&at, &protocol)
        }
        Command::Check(args) => check(&args),
    })
}

fn serve(
    at: &cli::Endpoint<DEFAULT_PORT>,
    protocol: &Protocol,
    backlog: &cli::Backlog,
) -> anyhow::Result<bool> {
    let config = server::Config {
        framing: protocol.framing()?,
        raw_replies: protocol.raw_replies,
    };
    let listener = basic::net::listen(&at.host, at.port, backlog.backlog)?;
    basic::net::announce(&listener)?;
    server::run(listener, config)?;
    Ok(true)
}

fn talk(at: &cli::Endpoint<DEFAULT_PORT>, protocol: &Protocol) -> anyhow::Result<bool> {
    let config = client::Config {
        framing: protocol.framing()?,
        raw_replies: protocol.raw_replies,
        reply_wait: client::REPLY_WAIT,
    };
    let stream = basic::net::connect(&at.host, at.port)?;
    client::run(stream, std::io::stdin().lock(), std::io::stdout(), config)?;
    Ok(true)
}

fn check(args: &CheckArgs) -> anyhow::Result<bool> {
    let probe = check::Probe {
        addr: basic::net::resolve(&args.check.at.host, args.check.at.port)?[0],
        timeout: args.check.timeout(),
        framing: args.protocol.framing()?,
        raw_replies: args.protocol.raw_replies,
    };
    Ok(check::run(&probe, &mut std::io::stdout()).all_passed())
}
