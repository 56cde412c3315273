//! `progress`: builds the exercise tests quietly, runs those of the
//! exercises the student started in one go, and says which exercises pass,
//! where to go next, and whether a file outside the student regions was
//! changed (grading would ignore it).
//!
//! This runs on the student's own machine for the student's own benefit,
//! so it trusts the test binary's `test NAME ... ok` lines; grading does not
//! (see [`crate::verdict`]).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context as _, bail};

use crate::exercises::{EXERCISES, Exercise};
use crate::{files, markers};

/// The test target holding every exercise's tests.
pub const TEST_TARGET: &str = "exercises";

/// The result for one exercise.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exercise: &'static Exercise,
    pub passed: bool,
    /// One line: how many tests passed, or why it failed.
    pub detail: String,
}

/// The `cargo` that runs us (set by `cargo run`), or the one on the PATH.
pub fn cargo() -> Command {
    Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()))
}

/// What `progress` found: each exercise's outcome, and the files changed
/// outside the student's regions.
#[derive(Debug)]
pub struct Progress {
    pub outcomes: Vec<Outcome>,
    pub changed_elsewhere: Vec<String>,
}

/// Builds the exercise tests and runs those of the exercises the student
/// started (an exercise whose regions are as handed out cannot pass, and
/// its tests would only wait for replies that never come).
pub fn progress(workspace: &Path) -> anyhow::Result<Progress> {
    let binary = build_quietly(workspace)?;
    let untouched = untouched(workspace);
    let started: Vec<String> = EXERCISES
        .iter()
        .filter(|exercise| !untouched.contains(&exercise.number))
        .map(|exercise| exercise.test_prefix())
        .collect();
    let text = match started.is_empty() {
        true => String::new(),
        false => {
            // Most tests of a wrong answer wait for a reply that never
            // comes (up to 10 s each): run many at once.
            let output = Command::new(&binary)
                .current_dir(workspace.join("sandbox"))
                .args(&started)
                .args(["--test-threads", "16"])
                .output()
                .with_context(|| format!("cannot run {}", binary.display()))?;
            String::from_utf8_lossy(&output.stdout).into_owned()
        }
    };
    let outcomes: Vec<Outcome> = EXERCISES
        .iter()
        .map(|exercise| match untouched.contains(&exercise.number) {
            true => Outcome {
                exercise,
                passed: false,
                detail: "not started: its code is as handed out".into(),
            },
            false => summarise(&text, exercise),
        })
        .collect();
    let changed_elsewhere = files::changes_since_handed_out(workspace)?
        .unwrap_or_default()
        .iter()
        .map(ToString::to_string)
        .collect();
    Ok(Progress {
        outcomes,
        changed_elsewhere,
    })
}

/// The report for people: [`progress_text`], then any files changed
/// outside the regions.
pub fn text(progress: &Progress) -> String {
    let mut report = progress_text(&progress.outcomes);
    if !progress.changed_elsewhere.is_empty() {
        report.push_str(
            "\nchanged outside your code regions (grading uses the handed-out \
             version of these files, and shows your instructor this list):\n",
        );
        for change in &progress.changed_elsewhere {
            report.push_str(&format!("  {change}\n"));
        }
    }
    report
}

/// The report for scripts: one JSON object.
pub fn json(progress: &Progress) -> String {
    let exercises: Vec<String> = progress
        .outcomes
        .iter()
        .map(|outcome| {
            let e = outcome.exercise;
            format!(
                "{{\"number\":{},\"title\":{},\"concept\":{},\"difficulty\":{},\"done\":{},\"detail\":{}}}",
                e.number,
                json_string(e.title),
                json_string(e.concept),
                e.difficulty,
                outcome.passed,
                json_string(&outcome.detail)
            )
        })
        .collect();
    let next = match next_to_try(&progress.outcomes) {
        Some(outcome) => outcome.exercise.number.to_string(),
        None => "null".into(),
    };
    let changed: Vec<String> = progress
        .changed_elsewhere
        .iter()
        .map(|change| json_string(change))
        .collect();
    format!(
        "{{\"score\":{},\"of\":{},\"next\":{next},\"exercises\":[{}],\"changed_outside_regions\":[{}]}}\n",
        score(&progress.outcomes),
        progress.outcomes.len(),
        exercises.join(","),
        changed.join(",")
    )
}

/// Text as a JSON string: quotes, backslashes and control characters escaped.
pub fn json_string(text: &str) -> String {
    let mut out = String::from("\"");
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// The exercise to try next: the first not done, in the guide's order.
fn next_to_try(outcomes: &[Outcome]) -> Option<&Outcome> {
    outcomes.iter().find(|outcome| !outcome.passed)
}

fn score(outcomes: &[Outcome]) -> usize {
    outcomes.iter().filter(|outcome| outcome.passed).count()
}

/// The exercises whose every region is exactly as handed out (from the
/// copy's pristine files; none in a workspace without them).
fn untouched(workspace: &Path) -> Vec<u32> {
    let pristine_root = workspace.join(files::PRISTINE_DIR);
    let Ok(pristine_files) = files::workspace_files(&pristine_root, &|_| false) else {
        return Vec::new();
    };
    let mut as_handed_out: Vec<u32> = EXERCISES.iter().map(|exercise| exercise.number).collect();
    let mut seen = Vec::new();
    for relative in pristine_files {
        let pristine = fs::read_to_string(pristine_root.join(&relative)).unwrap_or_default();
        let current = fs::read_to_string(workspace.join(&relative)).unwrap_or_default();
        for number in markers::student_exercises(&pristine) {
            seen.push(number);
            let regions = |text: &str| -> Vec<String> {
                let spans = markers::spans(text, number);
                spans.iter().map(|&(a, b)| text[a..b].to_string()).collect()
            };
            if regions(&pristine) != regions(&current) {
                as_handed_out.retain(|n| *n != number);
            }
        }
    }
    as_handed_out.retain(|number| seen.contains(number));
    as_handed_out
}

/// `cargo test --no-run` for the exercise tests, showing the compiler's
/// messages only if the build fails; returns the test binary.
fn build_quietly(workspace: &Path) -> anyhow::Result<PathBuf> {
    let output = cargo()
        .current_dir(workspace)
        .args(["test", "-p", "sandbox", "--test", TEST_TARGET, "--no-run"])
        .args(["--message-format", "json-render-diagnostics", "--quiet"])
        .output()
        .context("cannot run cargo")?;
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        bail!("the exercise tests do not compile (the compiler's messages are above)");
    }
    executable_in(&String::from_utf8_lossy(&output.stdout))
        .context("cargo built no exercise test binary")
}

/// The exercise test binary named in cargo's JSON messages.
pub fn executable_in(messages: &str) -> Option<PathBuf> {
    messages
        .lines()
        .filter(|line| line.contains(&format!("\"name\":\"{TEST_TARGET}\"")))
        .find_map(executable_of)
}

/// The `"executable"` of one cargo JSON message, unescaped.
fn executable_of(message: &str) -> Option<PathBuf> {
    let start = message.find("\"executable\":\"")? + "\"executable\":\"".len();
    let rest = &message[start..];
    let end = rest.find('"')?;
    Some(PathBuf::from(rest[..end].replace("\\\\", "\\")))
}

/// One exercise's outcome, from the test binary's `test NAME ... ok` lines.
fn summarise(text: &str, exercise: &'static Exercise) -> Outcome {
    let prefix = format!("test {}", exercise.test_prefix());
    let mine: Vec<&str> = text
        .lines()
        .filter(|line| line.starts_with(&prefix))
        .collect();
    let passed = mine.iter().filter(|line| line.ends_with(" ... ok")).count();
    let mut failed: Vec<&str> = mine
        .iter()
        .filter_map(|line| line.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .collect();
    failed.sort_unstable(); // tests finish in any order; name the same one every run
    let (passed_all, detail) = match failed.first() {
        _ if mine.is_empty() => (false, "no tests found for this exercise".to_string()),
        None => (true, format!("{passed} tests passed")),
        Some(first) => (
            false,
            format!(
                "{} of {} tests failed, first: {first}",
                failed.len(),
                mine.len()
            ),
        ),
    };
    Outcome {
        exercise,
        passed: passed_all,
        detail,
    }
}

/// A human report: one line per exercise (state, difficulty, title and
/// the concept it teaches), where to look next, the score.
pub fn progress_text(outcomes: &[Outcome]) -> String {
    let mut text = String::from("      #  difficulty  exercise (concept)\n");
    for outcome in outcomes {
        let mark = if outcome.passed { "done" } else { "todo" };
        let e = outcome.exercise;
        text.push_str(&format!(
            "{mark}  {:>2}  {}  {} ({})\n        {}\n",
            e.number,
            stars(e.difficulty),
            e.title,
            e.concept,
            outcome.detail
        ));
    }
    if let Some(next) = next_to_try(outcomes) {
        let e = next.exercise;
        text.push_str(&format!(
            "\nnext: exercise {}, {}\n  read: {}\n  code: {}\n  test: cargo test -p sandbox --test exercises {}\n  stuck: cargo run -p homework -- hint {}\n",
            e.number,
            e.title,
            e.hint_location(),
            e.code,
            e.test_prefix().trim_end_matches('_'),
            e.number,
        ));
    }
    text.push_str(&format!(
        "\nscore: {}/{}\n",
        score(outcomes),
        outcomes.len()
    ));
    text
}

/// Difficulty as five marks, `###..` for 3 of 5 (plain ASCII: every
/// terminal shows it).
fn stars(difficulty: u8) -> String {
    let filled = usize::from(difficulty.min(5));
    format!("{}{}", "#".repeat(filled), ".".repeat(5 - filled))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cargo_messages_give_the_executable() {
        let message = r#"{"reason":"compiler-artifact","target":{"name":"exercises"},"executable":"C:\\t\\exercises-1.exe","fresh":true}"#;
        assert_eq!(
            executable_in(message),
            Some(PathBuf::from(r"C:\t\exercises-1.exe"))
        );
    }

    #[test]
    fn a_run_with_a_failure_names_the_first_failing_test() {
        let text =
            "test exercise_01_a ... ok\ntest exercise_01_b ... FAILED\ntest exercise_02_c ... ok\n";
        let outcome = summarise(text, &EXERCISES[0]);
        assert!(!outcome.passed);
        assert_eq!(outcome.detail, "1 of 2 tests failed, first: exercise_01_b");
        assert!(summarise(text, &EXERCISES[1]).passed);
    }

    #[test]
    fn the_report_names_concept_difficulty_next_and_score() {
        let outcomes: Vec<Outcome> = EXERCISES
            .iter()
            .map(|exercise| Outcome {
                exercise,
                passed: exercise.number == 1,
                detail: "x".into(),
            })
            .collect();
        let text = progress_text(&outcomes);
        assert!(
            text.contains("done   1  ##...  a connect timeout (connect with a timeout"),
            "{text}"
        );
        assert!(text.contains("\nnext: exercise 2,"), "{text}");
        assert!(
            text.contains(&format!("score: 1/{}", EXERCISES.len())),
            "{text}"
        );
        let progress = Progress {
            outcomes,
            changed_elsewhere: vec!["changed: sandbox/Cargo.toml".into()],
        };
        let json = json(&progress);
        assert!(json.starts_with("{\"score\":1,"), "{json}");
        assert!(json.contains("\"next\":2,"), "{json}");
        assert!(json.contains("\"difficulty\":2,\"done\":true"), "{json}");
        assert!(
            json.ends_with("\"changed_outside_regions\":[\"changed: sandbox/Cargo.toml\"]}\n"),
            "{json}"
        );
    }

    #[test]
    fn a_run_that_found_no_tests_does_not_pass() {
        assert!(!summarise("running 0 tests\n", &EXERCISES[0]).passed);
    }
}
