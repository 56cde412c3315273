//! Command-line pieces every lesson shares, so that `--host`, `--port`,
//! `--trace` and `check` read the same in every folder (see the contract).
//! Each lesson's `main.rs` flattens these into its own subcommands.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;

/// Where to listen or connect. `PORT` is the lesson's default port.
#[derive(Args, Debug, Clone)]
pub struct Endpoint<const PORT: u16> {
    /// A server listens on this address: 127.0.0.1 or ::1 (this machine only), 0.0.0.0 or ::
    /// (every network). A client or check connects to it: an address or a name such as localhost.
    #[arg(long, default_value = "127.0.0.1")]
    pub host: String,
    /// Port number. A server given 0 lets the operating system choose a free one, and prints it.
    #[arg(long, default_value_t = PORT)]
    pub port: u16,
}

/// `--trace`: print each socket call on stderr as it happens; `--diagram`
/// and `--trace-to`: keep them for a sequence diagram.
#[derive(Args, Debug, Clone)]
pub struct Trace {
    /// Print each socket call (socket, bind, listen, accept, read, write, shutdown, close) on stderr.
    #[arg(long)]
    pub trace: bool,
    /// When the program exits, draw its socket calls as a sequence diagram in FILE (SVG: open it
    /// in a browser). Example: --diagram server.svg
    #[arg(long, value_name = "FILE")]
    pub diagram: Option<PathBuf>,
    /// Record each socket call with its time in FILE, to draw both sides together:
    /// `cargo run -p basic -- diagram server.events client.events -o session.svg`.
    #[arg(long, value_name = "FILE", conflicts_with = "diagram")]
    pub trace_to: Option<PathBuf>,
}

impl Trace {
    /// Turns tracing on for the process as the options say.
    pub fn apply(&self) {
        if self.trace {
            crate::trace::enable();
        }
        // The side a diagram names is the subcommand: `server` or `client`.
        let side = std::env::args().nth(1).unwrap_or_else(|| "process".into());
        if let Some(path) = &self.diagram {
            crate::trace::record(&side, crate::recording::RecordTo::Diagram(path.clone()));
        }
        if let Some(path) = &self.trace_to {
            crate::trace::record(&side, crate::recording::RecordTo::Events(path.clone()));
        }
    }
}

/// `--backlog`: how many finished handshakes the kernel queues before `accept`.
#[derive(Args, Debug, Clone)]
pub struct Backlog {
    /// Length of the listen queue (the operating system may cap it).
    #[arg(long, default_value_t = crate::DEFAULT_BACKLOG)]
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

/// A duration in seconds, from a millisecond to about 30 years (`0.5`, `30`).
pub fn parse_seconds(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(secs) if (0.001..1e9).contains(&secs) => Ok(secs),
        _ => Err(format!("{text:?} is not a number of seconds from 0.001 up")),
    }
}

/// Parses the command line like `T::parse()`, but prints a usage error as
/// one line, as every other error (`--help` and `--version` print as usual).
pub fn parse<T: clap::Parser>() -> T {
    T::try_parse().unwrap_or_else(|err| {
        use clap::error::ErrorKind;
        if matches!(
            err.kind(),
            ErrorKind::DisplayHelp
                | ErrorKind::DisplayVersion
                | ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
        ) {
            err.exit();
        }
        let rendered = err.render().to_string();
        let first = rendered
            .lines()
            .next()
            .unwrap_or("error: invalid command line");
        eprintln!("{first} (see --help)");
        std::process::exit(2);
    })
}

/// Runs a lesson's `main` body, printing any error as one line with a hint
/// (never a backtrace), and turns the outcome into the exit status.
///
/// Before it returns, the log and trace lines still waiting for the console
/// are written (bounded in time: see [`crate::console::flush`]).
pub fn exit_with(run: impl FnOnce() -> anyhow::Result<bool>) -> ExitCode {
    let outcome = run();
    if let Err(err) = crate::recording::finish() {
        eprintln!("error: cannot write the diagram or trace file: {err}");
    }
    crate::console::flush();
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("{}", crate::errors::one_line(&err));
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::parse_seconds;

    #[test]
    fn seconds_must_be_at_least_a_millisecond() {
        assert_eq!(parse_seconds("0.5"), Ok(0.5));
        assert!(parse_seconds("0").is_err());
        assert!(parse_seconds("1e-10").is_err());
        assert!(parse_seconds("soon").is_err());
    }
}
