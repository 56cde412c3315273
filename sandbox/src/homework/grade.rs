//! Runs each exercise's tests, bounded in time, and says which pass.
//!
//! The exercise tests are built once, then run one exercise at a time as a
//! separate process, killed if it runs too long: a student's endless loop
//! fails that exercise, not the whole grading run.

use std::io::Read as _;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};

use super::{EXERCISES, Exercise};

/// The test target holding every exercise's tests.
pub const TEST_TARGET: &str = "exercises";

/// How long one exercise's tests may run before they count as failed.
pub const EXERCISE_TIME_LIMIT: Duration = Duration::from_secs(90);

/// The result for one exercise.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub exercise: &'static Exercise,
    pub passed: bool,
    /// One line: how many tests passed, or why it failed.
    pub detail: String,
}

/// Builds the workspace's exercise tests (with `target_dir`, if given) and
/// runs them exercise by exercise.
pub fn grade(workspace: &Path, target_dir: Option<&Path>) -> anyhow::Result<Vec<Outcome>> {
    let binary = build_tests(workspace, target_dir)?;
    Ok(EXERCISES
        .iter()
        .map(|exercise| run_exercise(&binary, workspace, exercise))
        .collect())
}

/// Like [`grade`], but a workspace whose tests do not build fails every
/// exercise with that reason, so that grading a class goes on.
pub fn grade_or_fail_all(workspace: &Path, target_dir: Option<&Path>) -> Vec<Outcome> {
    grade(workspace, target_dir).unwrap_or_else(|err| {
        let detail = format!("{err:#}");
        EXERCISES
            .iter()
            .map(|exercise| Outcome {
                exercise,
                passed: false,
                detail: detail.clone(),
            })
            .collect()
    })
}

/// `cargo test --no-run` for the exercise tests; returns the test binary.
fn build_tests(workspace: &Path, target_dir: Option<&Path>) -> anyhow::Result<PathBuf> {
    let mut cargo = Command::new(std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into()));
    cargo
        .current_dir(workspace)
        .args(["test", "-p", "sandbox", "--test", TEST_TARGET, "--no-run"]);
    cargo.args(["--message-format", "json-render-diagnostics", "--quiet"]);
    if let Some(dir) = target_dir {
        cargo.env("CARGO_TARGET_DIR", dir);
    }
    // The compiler's messages are shown only when the build fails: a
    // student copy's stubs leave many "unused" warnings, which are noise here.
    let output = cargo.output().context("cannot run cargo")?;
    if !output.status.success() {
        eprint!("{}", String::from_utf8_lossy(&output.stderr));
        bail!("the exercise tests do not compile (the compiler's messages are above)");
    }
    let messages = String::from_utf8_lossy(&output.stdout);
    messages
        .lines()
        .filter(|line| line.contains(&format!("\"name\":\"{TEST_TARGET}\"")))
        .find_map(executable_of)
        .context("cargo built no exercise test binary")
}

/// The `"executable"` of one cargo JSON message, unescaped.
fn executable_of(message: &str) -> Option<PathBuf> {
    let start = message.find("\"executable\":\"")? + "\"executable\":\"".len();
    let rest = &message[start..];
    let end = rest.find('"')?;
    Some(PathBuf::from(rest[..end].replace("\\\\", "\\")))
}

/// Runs one exercise's tests (`exercise_NN_`), at most [`EXERCISE_TIME_LIMIT`].
fn run_exercise(binary: &Path, workspace: &Path, exercise: &'static Exercise) -> Outcome {
    let filter = exercise.test_prefix();
    let outcome = |passed, detail: String| Outcome {
        exercise,
        passed,
        detail,
    };
    let child = Command::new(binary)
        .current_dir(workspace.join("sandbox"))
        .args([filter.as_str(), "--test-threads", "2"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn();
    let mut child = match child {
        Ok(child) => child,
        Err(err) => return outcome(false, format!("cannot run the tests: {err}")),
    };
    let mut stdout = child.stdout.take().expect("stdout was piped"); // set just above
    let reader = thread::spawn(move || {
        let mut text = String::new();
        let _ = stdout.read_to_string(&mut text);
        text
    });
    let deadline = Instant::now() + EXERCISE_TIME_LIMIT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break Some(status),
            Ok(None) if Instant::now() < deadline => thread::sleep(Duration::from_millis(20)),
            _ => {
                let _ = child.kill();
                let _ = child.wait();
                break None;
            }
        }
    };
    let text = reader.join().unwrap_or_default();
    match status {
        None => outcome(
            false,
            format!(
                "timed out after {}s (an endless loop?)",
                EXERCISE_TIME_LIMIT.as_secs()
            ),
        ),
        Some(status) => summarise(&text, status.success(), exercise),
    }
}

/// Turns the test binary's output into an outcome.
fn summarise(text: &str, success: bool, exercise: &'static Exercise) -> Outcome {
    let passed = count(text, " ... ok");
    let mut failed: Vec<&str> = text
        .lines()
        .filter_map(|line| line.strip_prefix("test ")?.strip_suffix(" ... FAILED"))
        .collect();
    failed.sort_unstable(); // tests finish in any order; name the same one every run
    let (passed_all, detail) = match (success, passed, failed.first()) {
        (true, 0, _) => (false, "no tests found for this exercise".to_string()),
        (true, n, _) => (true, format!("{n} tests passed")),
        (false, _, Some(first)) => (
            false,
            format!(
                "{} of {} tests failed, first: {first}",
                failed.len(),
                passed + failed.len()
            ),
        ),
        (false, _, None) => (false, "the tests crashed".to_string()),
    };
    Outcome {
        exercise,
        passed: passed_all,
        detail,
    }
}

fn count(text: &str, suffix: &str) -> usize {
    text.lines()
        .filter(|line| line.starts_with("test ") && line.ends_with(suffix))
        .count()
}

/// A human report: one line per exercise, where to look next, the score.
pub fn progress_text(outcomes: &[Outcome]) -> String {
    let mut text = String::new();
    for outcome in outcomes {
        let mark = if outcome.passed { "done" } else { "todo" };
        let e = outcome.exercise;
        text.push_str(&format!(
            "{mark}  exercise {}: {} ({})\n",
            e.number, e.title, outcome.detail
        ));
    }
    if let Some(next) = outcomes.iter().find(|outcome| !outcome.passed) {
        let e = next.exercise;
        text.push_str(&format!(
            "\nnext: exercise {}, {}\n  read: {}\n  code: {}\n",
            e.number,
            e.title,
            e.hint_location(),
            e.code
        ));
    }
    let score = outcomes.iter().filter(|outcome| outcome.passed).count();
    text.push_str(&format!("\nscore: {score}/{}\n", outcomes.len()));
    text
}

/// Machine-readable: one JSON object for the submission.
pub fn progress_json(submission: &Path, outcomes: &[Outcome]) -> String {
    let items: Vec<String> = outcomes
        .iter()
        .map(|o| {
            format!(
                "{{\"number\":{},\"title\":{},\"passed\":{},\"detail\":{}}}",
                o.exercise.number,
                json_string(o.exercise.title),
                o.passed,
                json_string(&o.detail)
            )
        })
        .collect();
    let score = outcomes.iter().filter(|outcome| outcome.passed).count();
    format!(
        "{{\"submission\":{},\"score\":{score},\"total\":{},\"exercises\":[{}]}}\n",
        json_string(&submission.display().to_string()),
        outcomes.len(),
        items.join(",")
    )
}

/// Machine-readable: CSV with a header, one row per exercise.
pub fn progress_csv(submission: &Path, outcomes: &[Outcome]) -> String {
    let mut text = String::from("submission,exercise,title,passed,detail\n");
    for o in outcomes {
        let row = [
            csv_field(&submission.display().to_string()),
            o.exercise.number.to_string(),
            csv_field(o.exercise.title),
            o.passed.to_string(),
            csv_field(&o.detail),
        ];
        text.push_str(&row.join(","));
        text.push('\n');
    }
    text
}

fn json_string(text: &str) -> String {
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

fn csv_field(text: &str) -> String {
    format!("\"{}\"", text.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn csv_fields_double_their_quotes() {
        assert_eq!(csv_field("say \"hi\", then"), r#""say ""hi"", then""#);
    }

    #[test]
    fn cargo_messages_give_the_executable() {
        let message = r#"{"reason":"compiler-artifact","target":{"name":"exercises"},"executable":"C:\\t\\exercises-1.exe","fresh":true}"#;
        assert_eq!(
            executable_of(message),
            Some(PathBuf::from(r"C:\t\exercises-1.exe"))
        );
    }

    #[test]
    fn a_run_with_a_failure_names_the_first_failing_test() {
        let exercise = &EXERCISES[0];
        let text = "test exercise_01_a ... ok\ntest exercise_01_b ... FAILED\n";
        let outcome = summarise(text, false, exercise);
        assert!(!outcome.passed);
        assert_eq!(outcome.detail, "1 of 2 tests failed, first: exercise_01_b");
    }

    #[test]
    fn a_run_that_found_no_tests_does_not_pass() {
        assert!(!summarise("running 0 tests\n", true, &EXERCISES[0]).passed);
    }
}
