//! Grading: one submission after another, into rows an instructor can
//! trust.
//!
//! For each submission: find its workspace ([`tree::locate`]), write the
//! graded tree from the handed-out copy and the submission's regions
//! ([`tree::splice`]), build the exercise tests (confined, offline, time
//! limited, `unsafe` forbidden), then run **each test as its own process**
//! in a fresh folder holding a fresh key. A test passes only if its process
//! ends with success *and* leaves the key in its verdict file, which the
//! tests' wrapper does after its assertions held (see `homework::verdict`).
//! Nothing the student's code prints counts.
//!
//! Submissions share one graded tree and one build folder, so only the
//! lesson's crate is rebuilt for each; two submissions whose regions are
//! identical are built and run once.

use std::collections::HashMap;
use std::collections::hash_map::RandomState;
use std::fs;
use std::hash::{BuildHasher as _, Hasher as _};
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::thread;
use std::time::{Duration, Instant};

use anyhow::Context as _;
use homework::exercises::{EXERCISES, Exercise};
use homework::files::{Change, workspace_files};
use homework::markers::Keep;
use homework::progress::{TEST_TARGET, executable_in};
use homework::verdict::{KEY_FILE, VERDICT_FILE};

use super::copy::{self, write_if_changed};
use super::run::{Confinement, Ending, clean_env, give_to_nobody, log_tail, run_bounded};
use super::tree::{self, Submission};

/// Time limits for one submission.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Building its exercise tests (the first build also builds every dependency).
    pub build: Duration,
    /// One test.
    pub test: Duration,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            build: Duration::from_secs(600),
            test: Duration::from_secs(90),
        }
    }
}

/// Why the tests of an exercise whose code is as handed out were not run.
const NOT_STARTED: &str = "not started: its code is as handed out";

/// How a test stopped at its time limit is described.
const STOPPED: &str = "was stopped";

/// One row of the grade sheet: one student, one exercise.
#[derive(Debug, Clone)]
pub struct Row {
    pub exercise: &'static Exercise,
    pub passed: bool,
    pub tests_passed: usize,
    pub tests_total: usize,
    /// Why it failed (or how many tests passed).
    pub detail: String,
    /// What this exercise's regions reach for (see `tree::flags`).
    pub flags: Vec<String>,
}

/// Everything about one graded submission.
#[derive(Debug, Clone)]
pub struct Graded {
    /// The student's id: the submission folder's name.
    pub student: String,
    pub rows: Vec<Row>,
    /// Files outside the regions that differ from the handed-out copy.
    pub tamper: Vec<Change>,
    pub seconds: f64,
}

impl Graded {
    pub fn score(&self) -> usize {
        self.rows.iter().filter(|row| row.passed).count()
    }
}

/// One test's result.
#[derive(Debug, Clone)]
struct TestRun {
    name: String,
    passed: bool,
    why: String,
}

/// The build's and tests' results for one graded tree.
#[derive(Debug, Clone)]
enum TreeResult {
    /// The tests did not build: why, for every exercise.
    NoBuild(String),
    Ran(Vec<TestRun>),
}

/// Grades submissions against the reference workspace, in a scratch folder
/// it removes when dropped.
pub struct Grader {
    scratch: PathBuf,
    handout: PathBuf,
    tree: PathBuf,
    target: PathBuf,
    home: PathBuf,
    limits: Limits,
    confinement: Confinement,
    results: HashMap<u64, TreeResult>,
    runs: AtomicUsize,
    keep_scratch: bool,
    /// Run the tests of exercises as handed out too (`verify` proves they fail).
    run_stubs: bool,
}

impl Grader {
    /// Writes the handed-out copy of `reference` into `scratch` (a new
    /// folder), and finds out how student code can be confined here.
    pub fn new(reference: &Path, scratch: &Path, limits: Limits) -> anyhow::Result<Grader> {
        let reference = reference.canonicalize()?;
        let scratch = copy::absolute(scratch)?;
        if scratch.starts_with(&reference) {
            anyhow::bail!(
                "the scratch folder must be outside the workspace: {}",
                scratch.display()
            );
        }
        // Only ever empty a folder that is empty or an earlier scratch folder.
        let earlier = scratch.join("handout").is_dir() && scratch.join("tree").is_dir();
        let empty = fs::read_dir(&scratch).is_ok_and(|mut entries| entries.next().is_none());
        if scratch.exists() && !earlier && !empty {
            anyhow::bail!(
                "{} exists and is not an earlier scratch folder: choose a new one",
                scratch.display()
            );
        }
        if scratch.exists() {
            fs::remove_dir_all(&scratch)
                .with_context(|| format!("cannot empty {}", scratch.display()))?;
        }
        let home = scratch.join("home");
        fs::create_dir_all(&home)?;
        let mut grader = Grader {
            handout: scratch.join("handout"),
            tree: scratch.join("tree"),
            target: scratch.join("target"),
            home,
            limits,
            confinement: Confinement::none("not yet detected"),
            results: HashMap::new(),
            runs: AtomicUsize::new(0),
            keep_scratch: false,
            run_stubs: false,
            scratch,
        };
        copy::write_copy(&reference, &grader.handout, &|_| Keep::Stub)?;
        for relative in workspace_files(&grader.handout, &|_| false)? {
            let bytes = fs::read(grader.handout.join(&relative))?;
            write_if_changed(&grader.tree.join(&relative), &bytes)?;
        }
        let real_home = std::env::var_os("HOME").map(PathBuf::from);
        let hide_from_tests: Vec<PathBuf> = real_home
            .into_iter()
            .filter(|home| !grader.scratch.starts_with(home) && home.is_dir())
            .collect();
        grader.confinement = Confinement::detect(vec![reference], hide_from_tests, &grader.scratch);
        Ok(grader)
    }

    /// The handed-out copy, as students got it.
    pub fn handout(&self) -> &Path {
        &self.handout
    }

    /// The graded tree (the handed-out copy until a submission is spliced in).
    pub fn tree(&self) -> &Path {
        &self.tree
    }

    /// The build folder every graded tree shares.
    pub fn target(&self) -> &Path {
        &self.target
    }

    /// The scratch `HOME` commands get.
    pub fn home(&self) -> &Path {
        &self.home
    }

    pub fn confinement(&self) -> &Confinement {
        &self.confinement
    }

    /// Whether to run the tests of exercises whose code is as handed out
    /// (normally skipped: they fail, as `verify` proves by running them).
    pub fn run_stubs(&mut self, run: bool) {
        self.run_stubs = run;
    }

    /// Leave the scratch folder behind (to look at the logs).
    pub fn keep_scratch(&mut self) {
        self.keep_scratch = true;
    }

    /// Grades the submission in `folder`, as student `student`. Never fails:
    /// whatever goes wrong becomes that student's rows.
    pub fn grade(&mut self, student: &str, folder: &Path) -> Graded {
        let started = Instant::now();
        let (rows, tamper) = match self.grade_rows(folder) {
            Ok(graded) => graded,
            Err(err) => (every_exercise_fails(&format!("{err:#}")), Vec::new()),
        };
        Graded {
            student: student.to_string(),
            rows,
            tamper,
            seconds: started.elapsed().as_secs_f64(),
        }
    }

    fn grade_rows(&mut self, folder: &Path) -> anyhow::Result<(Vec<Row>, Vec<Change>)> {
        let workspace = match tree::locate(folder) {
            Ok(workspace) => workspace,
            Err(why) => return Ok((every_exercise_fails(&why), Vec::new())),
        };
        let submission = tree::splice(&self.handout, &workspace, &self.tree)?;
        let result = match self.results.get(&submission.tree_print) {
            Some(result) => result.clone(),
            None => {
                let result = self.build_and_run(&submission.started);
                self.results.insert(submission.tree_print, result.clone());
                result
            }
        };
        Ok((rows(&submission, &result), submission.tamper))
    }

    /// Builds the tree and runs the tests of the `started` exercises (the
    /// others are stubs, which fail: `verify` proves it).
    fn build_and_run(&self, started: &[u32]) -> TreeResult {
        match self.build() {
            Err(why) => TreeResult::NoBuild(why),
            Ok(binary) => match self.list_tests(&binary) {
                Err(why) => TreeResult::NoBuild(why),
                Ok(tests) => {
                    let (to_run, stubs): (Vec<String>, Vec<String>) =
                        tests.into_iter().partition(|name| {
                            self.run_stubs
                                || EXERCISES.iter().any(|exercise| {
                                    started.contains(&exercise.number)
                                        && name.starts_with(&exercise.test_prefix())
                                })
                        });
                    let mut runs = self.run_tests(&binary, &to_run);
                    runs.extend(stubs.into_iter().map(|name| TestRun {
                        name,
                        passed: false,
                        why: NOT_STARTED.into(),
                    }));
                    TreeResult::Ran(runs)
                }
            },
        }
    }

    /// Builds the graded tree's exercise tests; the test binary, or why not.
    fn build(&self) -> Result<PathBuf, String> {
        let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
        let args = [
            "test",
            "-p",
            "sandbox",
            "--test",
            TEST_TARGET,
            "--no-run",
            "--offline",
            "--locked",
            "--message-format",
            "json-render-diagnostics",
        ];
        let mut command = self.confinement.command(Path::new(&cargo), &args, false);
        clean_env(&mut command, &self.home, true);
        command
            .current_dir(&self.tree)
            .env("CARGO_TARGET_DIR", &self.target)
            // Student code may not use `unsafe` (and so no link sections,
            // no code before main, no reading memory through pointers).
            // Registry crates are exempt: cargo caps their lints.
            .env("RUSTFLAGS", "-F unsafe_code")
            .env("CARGO_TERM_COLOR", "never");
        let log = self
            .scratch
            .join(format!("build-{}.log", self.results.len() + 1));
        match run_bounded(&mut command, self.limits.build, &log) {
            Ending::Exited(true) => {
                let messages = fs::read_to_string(&log).unwrap_or_default();
                executable_in(&messages).ok_or_else(|| "cargo built no exercise test binary".into())
            }
            Ending::Exited(false) => Err(format!("does not compile: {}", first_error(&log))),
            Ending::TimedOut => Err(format!(
                "the build ran over {}s and was stopped",
                self.limits.build.as_secs()
            )),
            Ending::NotStarted(why) => Err(format!("cannot run cargo: {why}")),
        }
    }

    /// The exercise tests in the binary (listing runs no student code).
    fn list_tests(&self, binary: &Path) -> Result<Vec<String>, String> {
        let log = self.scratch.join("list.log");
        let mut command = self
            .confinement
            .command(binary, &["--list", "--format", "terse"], true);
        clean_env(&mut command, &self.home, false);
        command.current_dir(&self.home);
        match run_bounded(&mut command, Duration::from_secs(60), &log) {
            Ending::Exited(true) => {}
            other => {
                return Err(format!(
                    "cannot list the tests: {other:?} {}",
                    log_tail(&log, 300)
                ));
            }
        }
        let listing = fs::read_to_string(&log).unwrap_or_default();
        let tests: Vec<String> = listing
            .lines()
            .filter_map(|line| line.strip_suffix(": test"))
            .filter(|name| name.starts_with("exercise_"))
            .map(str::to_string)
            .collect();
        if tests.is_empty() {
            return Err("the test binary lists no exercise tests".into());
        }
        Ok(tests)
    }

    /// Runs every test as its own process, two per core at a time (most
    /// of a failing test's time is waiting for a reply that never comes).
    fn run_tests(&self, binary: &Path, tests: &[String]) -> Vec<TestRun> {
        let next = AtomicUsize::new(0);
        let results = Mutex::new(Vec::new());
        let workers = thread::available_parallelism().map_or(2, |n| (2 * n.get()).min(8));
        thread::scope(|scope| {
            for _ in 0..workers {
                scope.spawn(|| {
                    while let Some(name) = tests.get(next.fetch_add(1, Ordering::SeqCst)) {
                        let run = self.run_test(binary, name);
                        results.lock().unwrap_or_else(|p| p.into_inner()).push(run);
                    }
                });
            }
        });
        let mut results = results.into_inner().unwrap_or_else(|p| p.into_inner());
        results.sort_by(|a, b| a.name.cmp(&b.name));
        results
    }

    /// One test, in a fresh folder with a fresh key; passed only if the
    /// process succeeded and its verdict file holds the key.
    fn run_test(&self, binary: &Path, name: &str) -> TestRun {
        let id = self.runs.fetch_add(1, Ordering::SeqCst);
        let key = fresh_key();
        // Tests run side by side: each folder's name is unguessable, and
        // `runs/` cannot be listed by the tests' user, so that one test
        // cannot find another's key.
        let runs = self.scratch.join("runs");
        let folder = runs.join(&fresh_key()[..32]);
        let log = runs.join(format!("{id}.log"));
        let prepared = fs::create_dir_all(&runs)
            .and_then(|()| hide_listing(&runs))
            .and_then(|()| fs::create_dir(&folder))
            .and_then(|()| fs::write(folder.join(KEY_FILE), &key))
            .and_then(|()| match self.confinement.runs_tests_as_nobody() {
                true => give_to_nobody(&folder),
                false => Ok(()),
            });
        let fail = |why: String| TestRun {
            name: name.to_string(),
            passed: false,
            why,
        };
        if let Err(err) = prepared {
            return fail(format!("cannot prepare the test's folder: {err}"));
        }
        let args = ["--exact", name, "--test-threads", "1"];
        let mut command = self.confinement.command(binary, &args, true);
        clean_env(&mut command, &folder, false);
        command.current_dir(&folder);
        let ending = run_bounded(&mut command, self.limits.test, &log);
        let verdict = fs::read_to_string(folder.join(VERDICT_FILE)).ok();
        let run = match ending {
            Ending::Exited(true) if verdict.as_deref() == Some(key.as_str()) => TestRun {
                name: name.to_string(),
                passed: true,
                why: String::new(),
            },
            Ending::Exited(true) => fail(
                "the process ended with success but without the test's verdict \
                 (did the code end the process itself?)"
                    .into(),
            ),
            Ending::Exited(false) => fail(failure_reason(&log)),
            Ending::TimedOut => fail(format!(
                "ran over {}s and {STOPPED} (an endless loop, or a wait that never ends?)",
                self.limits.test.as_secs()
            )),
            Ending::NotStarted(why) => fail(format!("cannot run the test: {why}")),
        };
        let _ = fs::remove_dir_all(&folder);
        let _ = fs::remove_file(&log);
        run
    }
}

impl Drop for Grader {
    fn drop(&mut self) {
        if !self.keep_scratch {
            let _ = fs::remove_dir_all(&self.scratch);
        }
    }
}

/// Lets others enter `folder` but not list it (Unix).
fn hide_listing(folder: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        fs::set_permissions(folder, fs::Permissions::from_mode(0o711))?;
    }
    #[cfg(not(unix))]
    let _ = folder;
    Ok(())
}

/// A key nobody can guess: four of std's randomly seeded hashers (seeded
/// from the operating system's random source), each hashing a counter.
fn fresh_key() -> String {
    (0..4u64)
        .map(|part| {
            let mut hasher = RandomState::new().build_hasher();
            hasher.write_u64(part);
            format!("{:016x}", hasher.finish())
        })
        .collect()
}

/// Every exercise failed for the same reason.
fn every_exercise_fails(why: &str) -> Vec<Row> {
    EXERCISES
        .iter()
        .map(|exercise| Row {
            exercise,
            passed: false,
            tests_passed: 0,
            tests_total: 0,
            detail: why.to_string(),
            flags: Vec::new(),
        })
        .collect()
}

/// The rows for one submission, from its tree's results.
fn rows(submission: &Submission, result: &TreeResult) -> Vec<Row> {
    EXERCISES
        .iter()
        .map(|exercise| {
            let flags: Vec<String> = submission
                .flags
                .iter()
                .filter(|(number, _)| *number == exercise.number)
                .map(|(_, flag)| flag.clone())
                .collect();
            let region_error = submission
                .region_errors
                .iter()
                .find(|(number, _)| *number == exercise.number)
                .map(|(_, why)| why.clone());
            let row = |passed, tests_passed, tests_total, detail: String| Row {
                exercise,
                passed,
                tests_passed,
                tests_total,
                detail,
                flags: flags.clone(),
            };
            let runs: Vec<&TestRun> = match result {
                TreeResult::NoBuild(why) => return row(false, 0, 0, why.clone()),
                TreeResult::Ran(runs) => runs
                    .iter()
                    .filter(|run| run.name.starts_with(&exercise.test_prefix()))
                    .collect(),
            };
            let passed = runs.iter().filter(|run| run.passed).count();
            let first_failure = runs.iter().find(|run| !run.passed);
            let detail = match (&region_error, first_failure) {
                (Some(why), _) => why.clone(),
                (None, Some(run)) if run.why == NOT_STARTED => NOT_STARTED.into(),
                _ if runs.is_empty() => "no tests found for this exercise".into(),
                (None, Some(run)) => {
                    let mut detail = format!(
                        "{} of {} tests failed, first: {}: {}",
                        runs.len() - passed,
                        runs.len(),
                        run.name,
                        run.why
                    );
                    // A test stopped at the time limit matters most: say so.
                    let stopped = runs.iter().find(|run| run.why.contains(STOPPED));
                    if let Some(stopped) = stopped.filter(|stopped| stopped.name != run.name) {
                        detail.push_str(&format!("; {}: {}", stopped.name, stopped.why));
                    }
                    detail
                }
                (None, None) => format!("{passed} tests passed"),
            };
            let all_passed = region_error.is_none() && !runs.is_empty() && passed == runs.len();
            row(all_passed, passed, runs.len(), detail)
        })
        .collect()
}

/// The compiler's first error, from a build log of JSON messages.
fn first_error(log: &Path) -> String {
    let text = fs::read_to_string(log).unwrap_or_default();
    text.lines()
        .find(|line| line.starts_with("error"))
        .map(|line| line.chars().take(300).collect())
        .unwrap_or_else(|| log_tail(log, 300).trim().to_string())
}

/// Why a test process failed: the wrapper's `why:` line, or else the
/// panic's message, from its log.
fn failure_reason(log: &Path) -> String {
    let text = log_tail(log, 20_000);
    let lines: Vec<&str> = text.lines().map(str::trim).collect();
    let why = match lines.iter().position(|line| line.starts_with("why:")) {
        Some(at) => lines[at].trim_start_matches("why:").trim().to_string(),
        None => match lines.iter().position(|line| line.contains("panicked at")) {
            Some(at) => lines[at..]
                .iter()
                .take(2)
                .copied()
                .collect::<Vec<_>>()
                .join(" "),
            None => String::new(),
        },
    };
    match why.is_empty() {
        true => "failed".into(),
        false => why.chars().take(300).collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_differ_and_are_long() {
        let (a, b) = (fresh_key(), fresh_key());
        assert_ne!(a, b);
        assert_eq!(a.len(), 64);
    }
}
