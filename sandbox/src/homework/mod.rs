//! Homework tooling, not part of the lesson: the exercises' list, the
//! student copy, progress and grading, and the CI check that every
//! exercise really is one. `sandbox homework --help` lists the commands;
//! `sandbox/README.md` explains them for students and instructors.
//!
//! - [`markers`]: solution regions in the reference code, and how a copy
//!   rewrites them.
//! - [`copy`]: the student copy (and `reset` of one exercise).
//! - [`grade`]: runs each exercise's tests, bounded in time; text, JSON, CSV.
//! - [`verify`]: fails before, passes after, for every exercise.

pub mod copy;
pub mod grade;
pub mod markers;
pub mod verify;

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};

/// `sandbox homework ...`: what students and instructors can ask.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// Which exercises are done, where to look next, and a score (runs the exercises' tests).
    ///
    /// Example: cargo run -p sandbox -- homework progress
    Progress,
    /// A hint for an exercise, one step at a time.
    ///
    /// Example: cargo run -p sandbox -- homework hint 3 --step 2
    Hint {
        /// The exercise's number.
        exercise: u32,
        /// Which hint: 1 nudges, the last nearly gives it away.
        #[arg(long, default_value_t = 1)]
        step: usize,
    },
    /// Puts one exercise's code back as it was handed out (your other work stays).
    ///
    /// Example: cargo run -p sandbox -- homework reset 3
    Reset {
        /// The exercise's number.
        exercise: u32,
    },
    /// For instructors: writes a copy of the workspace without the solutions, to hand out.
    ///
    /// Example: cargo run -p sandbox -- homework student-copy ../socket-lessons-student
    StudentCopy {
        /// A new folder, outside this workspace.
        dest: PathBuf,
    },
    /// For instructors: grades a student's workspace, with output a script can read.
    ///
    /// Example: cargo run -p sandbox -- homework grade ../alice --format json
    Grade {
        /// The student's workspace folder.
        submission: PathBuf,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
    },
    /// For CI: proves every exercise fails in the student copy and passes with its answer.
    ///
    /// Example: cargo run -p sandbox -- homework verify
    Verify {
        /// Where to build the copies (default: a folder in the system's temporary folder).
        #[arg(long)]
        scratch: Option<PathBuf>,
    },
}

/// Output formats for `grade`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

/// Runs one homework command; `Ok(false)` means "ran, but not everything passed".
pub fn run(action: Action) -> anyhow::Result<bool> {
    let here = std::env::current_dir().context("cannot read the current folder")?;
    match action {
        Action::Progress => {
            let outcomes = grade::grade_or_fail_all(&find_workspace(&here)?, None);
            print!("{}", grade::progress_text(&outcomes));
            Ok(true)
        }
        Action::Hint { exercise, step } => {
            print!("{}", hint(&find_workspace(&here)?, exercise, step)?);
            Ok(true)
        }
        Action::Reset { exercise: number } => {
            let exercise = exercise(number)?;
            let files = copy::reset(&find_workspace(&here)?, number)?;
            let files: Vec<String> = files
                .iter()
                .map(|file| file.display().to_string())
                .collect();
            println!(
                "exercise {number} ({}) is back as handed out, in {}",
                exercise.title,
                files.join(", ")
            );
            Ok(true)
        }
        Action::StudentCopy { dest } => student_copy(&find_workspace(&here)?, &dest),
        Action::Grade { submission, format } => {
            grade_submission(&find_workspace(&here)?, &submission, format)
        }
        Action::Verify { scratch } => {
            let scratch =
                scratch.unwrap_or_else(|| std::env::temp_dir().join("sandbox-homework-verify"));
            let report = verify::verify(&find_workspace(&here)?, &scratch, &mut std::io::stdout());
            Ok(report.all_passed())
        }
    }
}

fn student_copy(root: &Path, dest: &Path) -> anyhow::Result<bool> {
    if dest
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!(
            "{} exists and is not empty; choose a new folder",
            dest.display()
        );
    }
    let files = copy::write_copy(root, dest, &|_| markers::Keep::Stub, true)?;
    println!(
        "wrote the student copy to {} ({files} files with exercises stubbed; no solutions, no git history)",
        dest.display()
    );
    println!(
        "check it: cd {} && cargo run -p sandbox -- homework progress",
        dest.display()
    );
    Ok(true)
}

/// Grades a copy of the submission in which the exercise tests are the
/// instructor's (a student may have edited theirs), built in a target
/// folder of its own (never the instructor's: the student's `sandbox`
/// would replace the instructor's build).
fn grade_submission(reference: &Path, submission: &Path, format: Format) -> anyhow::Result<bool> {
    let workspace = find_workspace(submission)?;
    let scratch = std::env::temp_dir().join(format!("sandbox-grade-{}", std::process::id()));
    let graded = scratch.join("workspace");
    // Keep::Solution: a submission has no solution markers; the reference
    // itself, graded as a sanity check, keeps its answers.
    copy::write_copy(&workspace, &graded, &|_| markers::Keep::Solution, false)?;
    for tests in [TESTS_FILE, TESTS_COMMON] {
        copy::copy_tree(&reference.join(tests), &graded.join(tests))?;
    }
    let outcomes = grade::grade_or_fail_all(&graded, Some(&scratch.join("target")));
    let _ = fs::remove_dir_all(&scratch);
    let text = match format {
        Format::Text => grade::progress_text(&outcomes),
        Format::Json => grade::progress_json(&workspace, &outcomes),
        Format::Csv => grade::progress_csv(&workspace, &outcomes),
    };
    print!("{text}");
    // Grading ran: success, whatever the score (the score is in the output).
    Ok(true)
}

/// The exercises' guide, relative to the workspace root.
pub const EXERCISES_FILE: &str = "sandbox/EXERCISES.md";

/// The exercises' tests, and the helpers they share: grading always uses
/// the instructor's copy of these.
pub const TESTS_FILE: &str = "sandbox/tests/exercises.rs";
pub const TESTS_COMMON: &str = "sandbox/tests/common";

/// One exercise: its number, its title (the heading in `EXERCISES.md`) and
/// where its `// TODO:` is.
#[derive(Debug)]
pub struct Exercise {
    pub number: u32,
    pub title: &'static str,
    pub code: &'static str,
}

impl Exercise {
    /// Every test of this exercise starts with this: `exercise_03_`.
    pub fn test_prefix(&self) -> String {
        format!("exercise_{:02}_", self.number)
    }

    /// The exercise's heading in `EXERCISES.md`.
    pub fn heading(&self) -> String {
        format!("## Exercise {}: {}", self.number, self.title)
    }

    /// Where the goal and hints are: the file and the heading's anchor.
    pub fn hint_location(&self) -> String {
        format!("{EXERCISES_FILE}#{}", anchor(&self.heading()[3..]))
    }
}

/// A heading's anchor as GitHub makes it: lowercase, punctuation dropped,
/// spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The exercises, in the order they are meant to be done.
pub const EXERCISES: &[Exercise] = &[
    Exercise {
        number: 1,
        title: "a connect timeout",
        code: "sandbox/src/client.rs, connect_with_timeout",
    },
    Exercise {
        number: 2,
        title: "a read timeout that says so",
        code: "sandbox/src/client.rs, is_timeout and print_replies",
    },
    Exercise {
        number: 3,
        title: "reconnect with backoff",
        code: "sandbox/src/client.rs, backoff and connect_with_retry",
    },
    Exercise {
        number: 4,
        title: "accept until WouldBlock",
        code: "sandbox/src/naive.rs, accept_all",
    },
    Exercise {
        number: 5,
        title: "an idle timeout",
        code: "sandbox/src/room.rs, Room::expire_idle",
    },
    Exercise {
        number: 6,
        title: "a full room",
        code: "sandbox/src/room.rs, Room::is_full and Room::refuse",
    },
    Exercise {
        number: 7,
        title: "an action with /me",
        code: "sandbox/src/room.rs, Room::act",
    },
    Exercise {
        number: 8,
        title: "a private message with /msg",
        code: "sandbox/src/room.rs, Room::whisper",
    },
    Exercise {
        number: 9,
        title: "length-prefixed framing",
        code: "sandbox/src/framing.rs, FrameBuffer::next_frame",
    },
];

/// Finds the workspace root: the nearest folder, from `start` upwards,
/// whose `Cargo.toml` declares `[workspace]`.
pub fn find_workspace(start: &Path) -> anyhow::Result<PathBuf> {
    let start = start
        .canonicalize()
        .with_context(|| format!("no folder {}", start.display()))?;
    for folder in start.ancestors() {
        let manifest = fs::read_to_string(folder.join("Cargo.toml")).unwrap_or_default();
        if manifest.lines().any(|line| line.trim() == "[workspace]") {
            return Ok(folder.to_path_buf());
        }
    }
    bail!(
        "{} is not inside the socket lessons workspace (run this from the workspace folder)",
        start.display()
    )
}

/// Looks an exercise up by number.
pub fn exercise(number: u32) -> anyhow::Result<&'static Exercise> {
    EXERCISES
        .iter()
        .find(|exercise| exercise.number == number)
        .with_context(|| {
            format!(
                "there is no exercise {number}; they are numbered 1 to {}",
                EXERCISES.len()
            )
        })
}

/// Hint `step` (from 1) of an exercise, read from its section of `EXERCISES.md`:
/// the text of its `<details><summary>Hint N</summary>` block.
pub fn hint(workspace: &Path, number: u32, step: usize) -> anyhow::Result<String> {
    let exercise = exercise(number)?;
    let guide = fs::read_to_string(workspace.join(EXERCISES_FILE))
        .with_context(|| format!("cannot read {EXERCISES_FILE}"))?;
    let section = guide
        .split("\n## ")
        .find(|section| section.starts_with(&exercise.heading()[3..]))
        .with_context(|| format!("no section `{}` in {EXERCISES_FILE}", exercise.heading()))?;
    let hints: Vec<&str> = section.split("<summary>Hint ").skip(1).collect();
    let Some(text) = hints.get(step.wrapping_sub(1)) else {
        bail!("exercise {number} has hints 1 to {}", hints.len());
    };
    let body = text.split_once("</summary>").map_or("", |(_, body)| body);
    let body = body.split("</details>").next().unwrap_or("").trim();
    let more = if step < hints.len() {
        format!(
            "\n\n(more: cargo run -p sandbox -- homework hint {number} --step {})",
            step + 1
        )
    } else {
        String::new()
    };
    Ok(format!(
        "exercise {number}, hint {step} of {}:\n\n{body}{more}\n",
        hints.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(
            anchor("Exercise 3: an idle timeout"),
            "exercise-3-an-idle-timeout"
        );
        assert_eq!(
            anchor("Exercise 10: `/me`, an action"),
            "exercise-10-me-an-action"
        );
    }

    #[test]
    fn every_exercise_is_numbered_in_order() {
        for (index, exercise) in EXERCISES.iter().enumerate() {
            assert_eq!(exercise.number as usize, index + 1);
        }
    }
}
