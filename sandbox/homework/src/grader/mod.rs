//! The instructor's side of the homework (left out of the student copy):
//! the student copy, grading one submission or a class, and `verify`.
//! `sandbox/homework/GRADING.md` describes the grading model and its limits.
//!
//! - [`copy`]: the student copy.
//! - [`tree`]: finding a submission, taking only its regions, the tamper list
//!   and the flags.
//! - [`run`]: running student code confined, with a clean environment and
//!   a time limit that kills the whole process group.
//! - [`grade`]: building and running each test as its own process, with a
//!   verdict the code under test cannot print.
//! - [`report`]: text, CSV and JSON.
//! - [`verify`]: CI's proof that every exercise is one, and that the cheats
//!   and accidents we know of are graded right.

pub mod copy;
pub mod grade;
pub mod report;
pub mod run;
pub mod tree;
pub mod verify;

use std::fs;
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context as _, bail};
use clap::{Subcommand, ValueEnum};
use homework::exercises::find_workspace;
use homework::markers::Keep;

use grade::{Grader, Limits};

/// The instructor's commands.
#[derive(Subcommand, Debug)]
pub enum Action {
    /// For instructors: writes a copy of the workspace without the solutions, to hand out.
    ///
    /// Example: cargo run -p homework -- student-copy ../socket-lessons-student
    StudentCopy {
        /// A new folder, outside this workspace.
        dest: PathBuf,
    },
    /// For instructors: grades one student's workspace (only their code regions count).
    ///
    /// Example: cargo run -p homework -- grade ../submissions/alice --format json
    Grade {
        /// The student's folder (their workspace, or a folder holding it).
        submission: PathBuf,
        /// How to print the result.
        #[arg(long, value_enum, default_value_t = Format::Text)]
        format: Format,
        #[command(flatten)]
        options: GradeOptions,
    },
    /// For instructors: grades every folder in FOLDER (one per student) into one CSV.
    ///
    /// Example: cargo run -p homework -- grade-class ../submissions --out grades.csv
    GradeClass {
        /// A folder with one folder per student; each folder's name is the student's id.
        folder: PathBuf,
        /// The CSV to write.
        #[arg(long, default_value = "grades.csv")]
        out: PathBuf,
        #[command(flatten)]
        options: GradeOptions,
    },
    /// For CI: every exercise fails as handed out and passes with its answer, and known cheats
    /// and accidents are graded right.
    ///
    /// Example: cargo run -p homework -- verify
    Verify {
        #[command(flatten)]
        options: GradeOptions,
    },
}

/// Options every grading command takes.
#[derive(clap::Args, Debug, Clone)]
pub struct GradeOptions {
    /// Where to build (default: a new folder in the system's temporary folder, removed after).
    #[arg(long)]
    scratch: Option<PathBuf>,
    /// Keep the scratch folder (its logs) after grading.
    #[arg(long)]
    keep_scratch: bool,
    /// Seconds one submission's build may take.
    #[arg(long, default_value_t = 600)]
    build_limit: u64,
    /// Seconds one test may take.
    #[arg(long, default_value_t = 90)]
    test_limit: u64,
}

impl GradeOptions {
    fn grader(&self, reference: &Path, what: &str) -> anyhow::Result<Grader> {
        remove_abandoned_scratch();
        let scratch = self.scratch.clone().unwrap_or_else(|| {
            std::env::temp_dir().join(format!("{SCRATCH_PREFIX}{what}-{}", std::process::id()))
        });
        let limits = Limits {
            build: Duration::from_secs(self.build_limit),
            test: Duration::from_secs(self.test_limit),
        };
        let mut grader = Grader::new(reference, &scratch, limits)?;
        if self.keep_scratch {
            grader.keep_scratch();
            eprintln!("scratch folder (kept): {}", scratch.display());
        }
        eprintln!("student code runs {}", grader.confinement().describe());
        if !grader.confinement().is_confined() {
            eprintln!("warning: no sandbox here; grade only in a throw-away container or account");
        }
        Ok(grader)
    }
}

/// Default scratch folders are `homework-WHAT-PID` in the temporary folder.
const SCRATCH_PREFIX: &str = "homework-";

/// Removes default scratch folders left by a grader that was stopped
/// (Ctrl-C runs no clean-up): those whose process is gone (Unix).
fn remove_abandoned_scratch() {
    let Ok(entries) = fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for entry in entries.filter_map(Result::ok) {
        let name = entry.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix(SCRATCH_PREFIX)
            .and_then(|rest| rest.rsplit_once('-'))
            .and_then(|(_, pid)| pid.parse::<u32>().ok())
        else {
            continue;
        };
        let ours = entry.path().join("handout").is_dir();
        if ours && pid != std::process::id() && !process_alive(pid) {
            let _ = fs::remove_dir_all(entry.path());
        }
    }
}

/// Whether process `pid` still runs (`kill -0`); elsewhere, assume it does.
fn process_alive(pid: u32) -> bool {
    if !cfg!(unix) {
        return true;
    }
    std::process::Command::new("kill")
        .args(["-0", &pid.to_string()])
        .stderr(std::process::Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// Output formats for `grade`.
#[derive(ValueEnum, Clone, Copy, Debug, PartialEq, Eq)]
pub enum Format {
    Text,
    Json,
    Csv,
}

/// Runs one instructor command; `Ok(false)` means "ran, but not everything passed".
pub fn run(action: Action) -> anyhow::Result<bool> {
    let reference = find_workspace(&std::env::current_dir()?)?;
    match action {
        Action::StudentCopy { dest } => student_copy(&reference, &dest),
        Action::Grade {
            submission,
            format,
            options,
        } => {
            let mut grader = options.grader(&reference, "grade")?;
            let graded = grader.grade(&student_id(&submission), &submission);
            print!(
                "{}",
                match format {
                    Format::Text => report::text(&graded),
                    Format::Json => report::json(&graded),
                    Format::Csv => format!("{}{}", report::CSV_HEADER, report::csv_rows(&graded)),
                }
            );
            Ok(true)
        }
        Action::GradeClass {
            folder,
            out,
            options,
        } => grade_class(&reference, &folder, &out, &options),
        Action::Verify { options } => {
            let mut grader = options.grader(&reference, "verify")?;
            let report = verify::verify(&reference, &mut grader, &mut std::io::stdout());
            Ok(report.all_passed())
        }
    }
}

/// A submission's student id: its folder's name.
fn student_id(folder: &Path) -> String {
    std::path::absolute(folder)
        .ok()
        .and_then(|path| {
            path.file_name()
                .map(|name| name.to_string_lossy().into_owned())
        })
        .unwrap_or_else(|| folder.display().to_string())
}

fn student_copy(reference: &Path, dest: &Path) -> anyhow::Result<bool> {
    if dest
        .read_dir()
        .is_ok_and(|mut entries| entries.next().is_some())
    {
        bail!(
            "{} exists and is not empty; choose a new folder",
            dest.display()
        );
    }
    let files = copy::write_copy(reference, dest, &|_| Keep::Stub)?;
    println!(
        "wrote the student copy to {} ({files} files with exercises stubbed; no solutions, \
         no grader, no git history)",
        dest.display()
    );
    println!(
        "check it: cd {} && cargo run -p homework -- progress",
        dest.display()
    );
    Ok(true)
}

/// Grades every student folder of `folder` into the CSV `out`, one student
/// at a time, with progress on stderr.
fn grade_class(
    reference: &Path,
    folder: &Path,
    out: &Path,
    options: &GradeOptions,
) -> anyhow::Result<bool> {
    let mut students: Vec<PathBuf> = fs::read_dir(folder)
        .with_context(|| format!("cannot list {}", folder.display()))?
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter(|entry| !entry.file_name().to_string_lossy().starts_with('.'))
        .map(|entry| entry.path())
        .collect();
    students.sort();
    if students.is_empty() {
        bail!("no student folders in {}", folder.display());
    }
    let mut grader = options.grader(reference, "class")?;
    let mut csv =
        fs::File::create(out).with_context(|| format!("cannot write {}", out.display()))?;
    csv.write_all(report::CSV_HEADER.as_bytes())?;
    let total = students.len();
    for (index, student) in students.iter().enumerate() {
        let id = student_id(student);
        eprint!("[{:>3}/{total}] {id} ... ", index + 1);
        let graded = grader.grade(&id, student);
        eprintln!(
            "{}/{} in {:.0}s{}",
            graded.score(),
            graded.rows.len(),
            graded.seconds,
            match graded.tamper.len() {
                0 => String::new(),
                1 => " (1 file changed outside the regions)".to_string(),
                n => format!(" ({n} files changed outside the regions)"),
            }
        );
        csv.write_all(report::csv_rows(&graded).as_bytes())?;
        csv.flush()?;
    }
    eprintln!("wrote {}", out.display());
    Ok(true)
}
