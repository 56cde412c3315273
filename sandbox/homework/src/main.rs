//! `cargo run -p homework -- ...`: progress, hints and reset. Argument
//! parsing only; the work is in the library (`src/lib.rs`).

use std::process::ExitCode;

use clap::{Parser, Subcommand};
use homework::{exercise, exercises, files, progress};

// BEGIN INSTRUCTOR
// The instructor's commands (left out of the student copy): src/grader/.
mod grader;
// END INSTRUCTOR

#[derive(Parser)]
#[command(about = "Lesson 5's homework: progress, hints and reset (see sandbox/EXERCISES.md)")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Which exercises are done, where to look next, your score, and files you changed outside
    /// your code regions.
    ///
    /// Example: cargo run -p homework -- progress
    Progress {
        /// `text` for people, `json` for scripts.
        #[arg(long, value_enum, default_value_t = ProgressFormat::Text)]
        format: ProgressFormat,
    },
    /// A hint for an exercise, one step at a time.
    ///
    /// Example: cargo run -p homework -- hint 3 --step 2
    Hint {
        /// The exercise's number.
        exercise: u32,
        /// Which hint: 1 nudges, the last nearly gives it away.
        #[arg(long, default_value_t = 1)]
        step: usize,
    },
    /// Puts one exercise's code back as it was handed out (your other work stays).
    ///
    /// Example: cargo run -p homework -- reset 3
    Reset {
        /// The exercise's number.
        exercise: u32,
    },
    // BEGIN INSTRUCTOR
    #[command(flatten)]
    Instructor(grader::Action),
    // END INSTRUCTOR
}

/// How `progress` prints.
#[derive(clap::ValueEnum, Clone, Copy, Debug)]
enum ProgressFormat {
    Text,
    Json,
}

fn main() -> ExitCode {
    match run(Cli::parse().command) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("error: {err:#}");
            ExitCode::FAILURE
        }
    }
}

fn run(command: Command) -> anyhow::Result<bool> {
    let here = std::env::current_dir()?;
    match command {
        Command::Progress { format } => {
            let found = progress::progress(&exercises::find_workspace(&here)?)?;
            match format {
                ProgressFormat::Text => print!("{}", progress::text(&found)),
                ProgressFormat::Json => print!("{}", progress::json(&found)),
            }
            Ok(true)
        }
        Command::Hint { exercise, step } => {
            let workspace = exercises::find_workspace(&here)?;
            print!("{}", exercises::hint(&workspace, exercise, step)?);
            Ok(true)
        }
        Command::Reset { exercise: number } => {
            let about = exercise(number)?;
            let restored = files::reset(&exercises::find_workspace(&here)?, number)?;
            let restored: Vec<String> = restored.iter().map(|f| f.display().to_string()).collect();
            println!(
                "exercise {number} ({}) is back as handed out, in {}",
                about.title,
                restored.join(", ")
            );
            Ok(true)
        }
        // BEGIN INSTRUCTOR
        Command::Instructor(action) => grader::run(action),
        // END INSTRUCTOR
    }
}
