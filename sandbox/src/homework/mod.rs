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

/// The exercises' guide, relative to the workspace root.
pub const EXERCISES_FILE: &str = "sandbox/EXERCISES.md";

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
pub const EXERCISES: &[Exercise] = &[];

/// Finds the workspace root: the nearest folder, from `start` upwards,
/// whose `Cargo.toml` declares `[workspace]`.
pub fn find_workspace(start: &Path) -> anyhow::Result<PathBuf> {
    let start = start.canonicalize().with_context(|| format!("no folder {}", start.display()))?;
    for folder in start.ancestors() {
        let manifest = fs::read_to_string(folder.join("Cargo.toml")).unwrap_or_default();
        if manifest.lines().any(|line| line.trim() == "[workspace]") {
            return Ok(folder.to_path_buf());
        }
    }
    bail!("{} is not inside the socket lessons workspace (run this from the workspace folder)", start.display())
}

/// Looks an exercise up by number.
pub fn exercise(number: u32) -> anyhow::Result<&'static Exercise> {
    EXERCISES
        .iter()
        .find(|exercise| exercise.number == number)
        .with_context(|| format!("there is no exercise {number}; they are numbered 1 to {}", EXERCISES.len()))
}

/// Hint `step` (from 1) of an exercise, read from its section of `EXERCISES.md`:
/// the text of its `<details><summary>Hint N</summary>` block.
pub fn hint(workspace: &Path, number: u32, step: usize) -> anyhow::Result<String> {
    let exercise = exercise(number)?;
    let guide = fs::read_to_string(workspace.join(EXERCISES_FILE)).with_context(|| format!("cannot read {EXERCISES_FILE}"))?;
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
        format!("\n\n(more: sandbox homework hint {number} --step {})", step + 1)
    } else {
        String::new()
    };
    Ok(format!("exercise {number}, hint {step} of {}:\n\n{body}{more}\n", hints.len()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(anchor("Exercise 3: an idle timeout"), "exercise-3-an-idle-timeout");
        assert_eq!(anchor("Exercise 10: `/me`, an action"), "exercise-10-me-an-action");
    }

    #[test]
    fn every_exercise_is_numbered_in_order() {
        for (index, exercise) in EXERCISES.iter().enumerate() {
            assert_eq!(exercise.number as usize, index + 1);
        }
    }
}
