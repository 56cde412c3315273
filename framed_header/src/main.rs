//! The `framed_header` command line: `server`, `client` and `check`. Only
//! argument parsing lives here; the lesson is in the library (`src/lib.rs`).

use std::process::ExitCode;
use std::time::Duration;

use clap::{Args, Parser, Subcommand};
use framed_header::frame::{DEFAULT_HEADER_LEN, DEFAULT_MAX_PAYLOAD_BYTES, Framing};
use framed_header::{DEFAULT_PORT, REPLY, TUTORIAL_DISCONNECT, check, client, server};
use plumbing::cli;

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
    /// Header size in bytes (Tech With Tim's tutorial: 64; its variants and ours: 128).
    #[arg(long, default_value_t = DEFAULT_HEADER_LEN)]
    header_size: usize,
    /// Largest payload, in bytes (at most 1 GiB). The server refuses a longer
    /// declared length; the client refuses to send a longer line; check sends
    /// exactly this much and expects one byte more to be refused. So client
    /// and check must use the server's value.
    #[arg(long, default_value_t = DEFAULT_MAX_PAYLOAD_BYTES)]
    max_payload: usize,
    /// Replies are bare bytes with no header, as the tutorials' servers send them.
    #[arg(long)]
    raw_replies: bool,
}

impl Protocol {
    fn framing(&self) -> anyhow::Result<Framing> {
        Framing::new(self.header_size, self.max_payload).map_err(anyhow::Error::msg)
    }
}

/// What the server at the other end says, and what it expects to hear at
/// the end: the two things the classic tutorials' servers disagree on.
#[derive(Args, Debug, Clone)]
struct Peer {
    /// The goodbye sent at the end (check: the goodbye to test). Tech With Tim's
    /// tutorial (64-byte header) and ours: !DISCONNECT, answered "Msg received". Its
    /// 128-byte variants: --goodbye '!DISCONNECT!', often closed without an answer
    /// (fine for client and check). Our server accepts both.
    #[arg(long, default_value = TUTORIAL_DISCONNECT)]
    goodbye: String,
    /// The text the server answers each message with: "Msg received" in both
    /// tutorials and ours. A classmate's server may say something else, for
    /// example --reply 'Message Recived'.
    #[arg(long, default_value = REPLY)]
    reply: String,
}

impl Peer {
    /// Both texts must fit in a message: the goodbye is sent as one, and
    /// the reply is read as one.
    fn validate(&self, framing: &Framing) -> anyhow::Result<()> {
        // An empty reply would make every check pass on silence.
        if self.reply.is_empty() || self.goodbye.is_empty() {
            anyhow::bail!("--reply and --goodbye must not be empty");
        }
        server::fits_in(framing, "the goodbye", &self.goodbye).map_err(anyhow::Error::msg)?;
        server::fits_in(framing, "the reply", &self.reply).map_err(anyhow::Error::msg)
    }
}

/// The server's limits: what one client may cost it.
#[derive(Args, Debug, Clone)]
struct Limits {
    /// Clients served at once (a thread and a file descriptor each); a newcomer
    /// past it gets "!ERROR the server is full" and is closed. Lowered, with a
    /// note, to what the open-files limit (ulimit -n) allows.
    #[arg(long, default_value_t = server::DEFAULT_MAX_CLIENTS)]
    max_clients: usize,
    /// Connections from one address at once (IPv6: one /64), so that one
    /// machine cannot take every place; 0 turns the cap off. Never applied to
    /// loopback (127.0.0.1, ::1: tests, SSH tunnels).
    #[arg(long, default_value_t = plumbing::limits::DEFAULT_MAX_PER_ADDRESS)]
    max_per_address: usize,
    /// Seconds a connection may go without completing a message (silent, or
    /// too slow) before it gets an !ERROR and is closed.
    #[arg(long, default_value_t = server::DEFAULT_IDLE_TIMEOUT.as_secs_f64(),
          value_parser = cli::parse_seconds)]
    idle_timeout: f64,
    /// Seconds one write may wait for a client that does not read its
    /// replies before the server gives up on that client.
    #[arg(long, default_value_t = server::DEFAULT_WRITE_TIMEOUT.as_secs_f64(),
          value_parser = cli::parse_seconds)]
    write_timeout: f64,
    /// Length of the listen queue (the operating system may cap it): large,
    /// so that clients connecting and closing in a hurry find room.
    #[arg(long, default_value_t = server::DEFAULT_BACKLOG)]
    backlog: i32,
}

#[derive(Subcommand)]
enum Command {
    /// Answer every message with "Msg received", a thread per client, for ever (Ctrl-C stops it).
    ///
    /// Accepts both goodbyes, !DISCONNECT and !DISCONNECT!.
    ///
    /// Example (for Tech With Tim's tutorial client): cargo run -p framed_header -- server --header-size 64 --raw-replies
    ///
    /// Example (for a 128-byte variant's client): cargo run -p framed_header -- server --raw-replies
    Server {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        protocol: Protocol,
        #[command(flatten)]
        limits: Limits,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Send each line of stdin as one message and print its reply; at the end, say goodbye.
    ///
    /// One reply is printed per line: the goodbye's reply answers no line, so
    /// it is awaited, not printed (a server may also just close). An `!ERROR`
    /// reply stops the client with an error.
    ///
    /// Example: printf 'hello\nhéllo ✓\n' | cargo run -p framed_header -- client
    ///
    /// Example (Tech With Tim's tutorial server): cargo run -p framed_header -- client --header-size 64 --raw-replies
    ///
    /// Example (a 128-byte variant's server): cargo run -p framed_header -- client --raw-replies --goodbye '!DISCONNECT!'
    Client {
        #[command(flatten)]
        at: cli::Endpoint<DEFAULT_PORT>,
        #[command(flatten)]
        protocol: Protocol,
        #[command(flatten)]
        peer: Peer,
        #[command(flatten)]
        trace: cli::Trace,
    },
    /// Test whatever server of this protocol listens at the address, written in any language.
    ///
    /// Example (Tech With Tim's tutorial server): cargo run -p framed_header -- check --header-size 64 --raw-replies
    ///
    /// Example (a 128-byte variant's server): cargo run -p framed_header -- check --raw-replies --goodbye '!DISCONNECT!'
    Check(CheckArgs),
}

/// `check`'s options: the shared ones, and the protocol settings to expect.
#[derive(Args, Debug, Clone)]
struct CheckArgs {
    #[command(flatten)]
    check: cli::Check<DEFAULT_PORT>,
    #[command(flatten)]
    protocol: Protocol,
    #[command(flatten)]
    peer: Peer,
}

fn main() -> ExitCode {
    cli::exit_with(|| match cli::parse::<Cli>().command {
        Command::Server {
            at,
            protocol,
            limits,
            trace,
        } => {
            trace.apply();
            serve(&at, &protocol, &limits)
        }
        Command::Client {
            at,
            protocol,
            peer,
            trace,
        } => {
            trace.apply();
            talk(&at, &protocol, &peer)
        }
        Command::Check(args) => check(&args),
    })
}

fn serve(
    at: &cli::Endpoint<DEFAULT_PORT>,
    protocol: &Protocol,
    limits: &Limits,
) -> anyhow::Result<bool> {
    if limits.max_clients == 0 {
        anyhow::bail!("--max-clients 0 would turn every client away: use 1 or more");
    }
    // One descriptor per client: a limit above what the process may open
    // is a promise the server cannot keep.
    let (max_clients, lowered) = plumbing::limits::fit_to_open_files(limits.max_clients, 1);
    if let Some(note) = lowered {
        eprintln!("{note}");
    }
    let config = server::Config {
        framing: protocol.framing()?,
        raw_replies: protocol.raw_replies,
        max_clients,
        max_per_address: limits.max_per_address,
        idle_timeout: Duration::from_secs_f64(limits.idle_timeout),
        write_timeout: Duration::from_secs_f64(limits.write_timeout),
    };
    config.validate().map_err(anyhow::Error::msg)?;
    let listener = basic::net::listen(&at.host, at.port, limits.backlog)?;
    basic::net::announce(&listener)?;
    server::run(listener, config)?;
    Ok(true)
}

fn talk(
    at: &cli::Endpoint<DEFAULT_PORT>,
    protocol: &Protocol,
    peer: &Peer,
) -> anyhow::Result<bool> {
    let framing = protocol.framing()?;
    peer.validate(&framing)?;
    let config = client::Config {
        framing,
        raw_replies: protocol.raw_replies,
        reply_wait: client::REPLY_WAIT,
        goodbye: peer.goodbye.clone(),
        reply: peer.reply.clone(),
    };
    let stream = basic::net::connect(&at.host, at.port)?;
    client::run(stream, std::io::stdin().lock(), std::io::stdout(), &config)?;
    Ok(true)
}

fn check(args: &CheckArgs) -> anyhow::Result<bool> {
    let framing = args.protocol.framing()?;
    args.peer.validate(&framing)?;
    let addrs = basic::net::resolve(&args.check.at.host, args.check.at.port)?;
    let probe = check::Probe {
        addr: addrs[0],
        other_addrs: addrs[1..].to_vec(),
        timeout: args.check.timeout(),
        framing,
        raw_replies: args.protocol.raw_replies,
        goodbye: args.peer.goodbye.clone(),
        reply: args.peer.reply.clone(),
    };
    Ok(check::run(&probe, &mut std::io::stdout()).all_passed())
}
