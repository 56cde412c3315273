//! `homework verify`, run in CI: proves that every exercise really is one.
//!
//! 1. Every exercise has its `// TODO:`, its solution region, its section in
//!    `EXERCISES.md` and its tests.
//! 2. In the student copy (all stubs): no solution left, everything but the
//!    exercises passes, and every exercise fails.
//! 3. For each exercise, a copy with only that answer put back: that
//!    exercise passes and every other one still fails, so the answer is
//!    reachable without touching the tests, and one answer turns exactly its
//!    own tests green.

use std::fs;
use std::path::Path;
use std::process::Command;

use basic::checklist::{Checklist, Failure, Report};

use super::copy::{workspace_files, write_copy};
use super::grade::{Outcome, grade};
use super::markers::{self, Keep};
use super::{EXERCISES, EXERCISES_FILE, Exercise};

/// Runs every verification, printing a checklist; `scratch` holds the copies
/// and their build output.
pub fn verify(root: &Path, scratch: &Path, out: &mut dyn std::io::Write) -> Report {
    let copy = scratch.join("workspace");
    let target = scratch.join("target");
    let mut list = Checklist::new(out);
    for exercise in EXERCISES {
        list.check(
            &format!("exercise {} is complete in the reference", exercise.number),
            || complete_in_reference(root, exercise),
        );
    }
    let copied = list.check("the student copy holds no solution", || {
        student_copy_is_clean(root, &copy)
    });
    if !copied {
        return list.finish();
    }
    list.check(
        "in the student copy, everything but the exercises passes",
        || cargo_test_without_exercises(&copy, &target),
    );
    match grade(&copy, Some(&target)) {
        Ok(outcomes) => report_student_copy(&mut list, &outcomes),
        Err(err) => {
            list.check("the student copy's exercise tests build", || {
                Err(Failure::because(format!("{err:#}")))
            });
        }
    }
    for exercise in EXERCISES {
        list.check(
            &format!(
                "exercise {} alone turns exactly its tests green",
                exercise.number
            ),
            || only_this_one_passes(root, &copy, &target, exercise),
        );
    }
    list.finish()
}

fn complete_in_reference(root: &Path, exercise: &Exercise) -> Result<(), Failure> {
    let sources = all_sources(root)?;
    let todo = format!("// TODO: exercise {}:", exercise.number);
    if !sources.iter().any(|text| text.contains(&todo)) {
        return Err(Failure::because(format!("no `{todo}` line in the code")));
    }
    if !sources
        .iter()
        .any(|text| markers::exercises_in(text).contains(&exercise.number))
    {
        return Err(Failure::because("no solution region in the code"));
    }
    let tests = format!("fn {}", exercise.test_prefix());
    if !sources.iter().any(|text| text.contains(&tests)) {
        return Err(Failure::because(format!(
            "no test named `{}...`",
            exercise.test_prefix()
        )));
    }
    let guide = fs::read_to_string(root.join(EXERCISES_FILE))
        .map_err(|err| Failure::because(format!("{EXERCISES_FILE}: {err}")))?;
    if !guide.lines().any(|line| line == exercise.heading()) {
        return Err(Failure::because(format!(
            "no heading `{}` in {EXERCISES_FILE}",
            exercise.heading()
        )));
    }
    Ok(())
}

fn all_sources(root: &Path) -> Result<Vec<String>, Failure> {
    let files = workspace_files(root).map_err(|err| Failure::because(err.to_string()))?;
    Ok(files
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| fs::read_to_string(root.join(path)).ok())
        .collect())
}

fn student_copy_is_clean(root: &Path, copy: &Path) -> Result<(), Failure> {
    write_copy(root, copy, &|_| Keep::Stub, true)
        .map_err(|err| Failure::because(format!("{err:#}")))?;
    let files = workspace_files(copy).map_err(|err| Failure::because(err.to_string()))?;
    for relative in files {
        let text = fs::read_to_string(copy.join(&relative)).unwrap_or_default();
        if markers::has_markers(&text) {
            return Err(Failure::because(format!(
                "{} still holds solution markers",
                relative.display()
            )));
        }
    }
    if copy.join(".git").exists() {
        return Err(Failure::because("the copy holds a .git folder"));
    }
    Ok(())
}

fn cargo_test_without_exercises(copy: &Path, target: &Path) -> Result<(), Failure> {
    let output = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
        .current_dir(copy)
        .env("CARGO_TARGET_DIR", target)
        .args(["test", "--quiet", "--", "--skip", "exercise_"])
        .output()
        .map_err(|err| Failure::because(format!("cannot run cargo: {err}")))?;
    if output.status.success() {
        return Ok(());
    }
    let text = String::from_utf8_lossy(&output.stdout) + String::from_utf8_lossy(&output.stderr);
    let tail: Vec<&str> = text
        .lines()
        .rev()
        .take(30)
        .collect::<Vec<_>>()
        .into_iter()
        .rev()
        .collect();
    Err(Failure::because(format!(
        "cargo test failed:\n{}",
        tail.join("\n")
    )))
}

fn report_student_copy(list: &mut Checklist, outcomes: &[Outcome]) {
    for outcome in outcomes {
        list.check(
            &format!(
                "exercise {} fails in the student copy",
                outcome.exercise.number
            ),
            || match outcome.passed {
                true => Err(Failure::because(
                    "its tests pass without an answer: it ships solved",
                )),
                false => Ok(()),
            },
        );
    }
}

fn only_this_one_passes(
    root: &Path,
    copy: &Path,
    target: &Path,
    exercise: &Exercise,
) -> Result<(), Failure> {
    let keep = |number| {
        if number == exercise.number {
            Keep::Solution
        } else {
            Keep::Stub
        }
    };
    write_copy(root, copy, &keep, false).map_err(|err| Failure::because(format!("{err:#}")))?;
    let outcomes = grade(copy, Some(target)).map_err(|err| Failure::because(format!("{err:#}")))?;
    for outcome in outcomes {
        let should_pass = outcome.exercise.number == exercise.number;
        if outcome.passed != should_pass {
            let what = if should_pass {
                "does not pass with its answer"
            } else {
                "passes without its answer"
            };
            return Err(Failure::because(format!(
                "exercise {} {what}: {}",
                outcome.exercise.number, outcome.detail
            )));
        }
    }
    Ok(())
}
