//! Command-line pieces every lesson shares, so that `--host`, `--port`,
//! `--trace` and `check` read the same in every folder (see the contract).
//! Each lesson's `main.rs` flattens these into its own subcommands.

use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// Where to listen or connect. `PORT` is the lesson's default port.
#[derive(Args, Debug, Clone)]
pub struct Endpoint<const PORT: u16> {
    /// Address or host name: 127.0.0.1 or ::1 (this machine only), 0.0.0.0 or :: (every network), localhost.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port number; for a server, 0 lets the operating system choose a free one.
    #[arg(long, default_value_t = PORT)]
    pub port: u16,
}

/// `--trace`: print each socket call on stderr as it happens.
#[derive(Args, Debug, Clone)]
pub struct Trace {
    /// Print each socket call (socket, bind, listen, accept, read, write, shutdown, close) on stderr.
    #[arg(long)]
    pub trace: bool,
}

impl Trace {
    /// Turns tracing on for the process if `--trace` was given.
    pub fn apply(&self) {
        if self.trace {
            crate::trace::enable();
        }
    }
}

/// `--backlog`: how many finished handshakes the kernel queues before `accept`.
#[derive(Args, Debug, Clone)]
pub struct Backlog {
    /// Length of the listen queue (the operating system may cap it).
    #[arg(long, default_value_t = crate::net::DEFAULT_BACKLOG)]
    pub backlog: i32,
}

/// The options of every `check` subcommand.
#[derive(Args, Debug, Clone)]
pub struct Check<const PORT: u16> {
    #[command(flatten)]
    pub at: Endpoint<PORT>,
    /// Seconds to wait for each reply before a check fails.
    #[arg(long, default_value_t = 5.0, value_parser = parse_seconds)]
    pub timeout: f64,
}

impl<const PORT: u16> Check<PORT> {
    pub fn timeout(&self) -> Duration {
        Duration::from_secs_f64(self.timeout)
    }
}

/// A duration in seconds, as a positive number (`0.5`, `30`).
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if secs > 0.0 && secs < 1e9 => Ok(secs),
        _ => Err(format!("{text:?} is not a number of seconds above 0")),
    }
}

/// Runs a lesson's `main` body, printing any error as one line with a hint
/// (never a backtrace), and turns the outcome into the exit status.
pub fn exit_with(run: impl FnOnce() -> anyhow::Result<bool>) -> ExitCode {
    match run() {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("{}", crate::errors::one_line(&err));
            ExitCode::FAILURE
        }
    }
}
