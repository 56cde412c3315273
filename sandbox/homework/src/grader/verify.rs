//! `homework verify`, run in CI: proves that every exercise really is one,
//! that the student copy is fit to hand out, and that grading holds against
//! the cheats and accidents we know of.
//!
//! 1. Every exercise has its `// TODO:`, its solution region, its section in
//!    `EXERCISES.md` and its tests.
//! 2. The student copy holds no solution, no instructor part, no grader,
//!    and no link to a file it lacks; everything but the exercises passes.
//! 3. A class of submissions, each a small recipe applied to a fresh student
//!    copy, is graded like a real class (one shared build folder), and each
//!    must get exactly the expected rows: the copy as handed out scores 0;
//!    each exercise's answer alone scores exactly that exercise; every cheat
//!    scores 0 or is flagged; every accident is graded or gets a clear error
//!    row. The class sits inside a folder that looks like the instructor's
//!    workspace, with every answer in it, so a grader that looked upwards
//!    would be caught.
//!
//! These are slow (each distinct submission is a build), so they run here
//! (`cargo run -p homework -- verify`, in CI) and not in `cargo test`.

use std::fs;
use std::path::{Path, PathBuf};
use std::time::Duration;

use homework::exercises::{EXERCISES, EXERCISES_FILE, Exercise};
use homework::files::{self, workspace_files};
use homework::markers::{self, Keep};
use plumbing::checklist::{Checklist, Failure, Report};

use super::copy::{INSTRUCTOR_ONLY, write_copy};
use super::grade::{Graded, Grader};
use super::run::{Ending, clean_env, log_tail, run_bounded};

/// Runs every verification, printing a checklist.
pub fn verify(root: &Path, grader: &mut Grader, out: &mut dyn std::io::Write) -> Report {
    let mut list = Checklist::new(out);
    for exercise in EXERCISES {
        list.check(
            &format!("exercise {} is complete in the reference", exercise.number),
            || complete_in_reference(root, exercise),
        );
    }
    let handout = grader.handout().to_path_buf();
    list.check(
        "the student copy holds no solution, no grader, no instructor part",
        || student_copy_is_clean(&handout),
    );
    list.check("the student copy links only to files it has", || {
        links_resolve(&handout)
    });
    // Written now, from the same reference as the handed-out copy.
    let class = write_class(root, grader);
    list.check(
        "in the student copy, everything but the exercises passes",
        || cargo_test_without_exercises(grader),
    );
    let class = match class {
        Ok(class) => class,
        Err(err) => {
            list.check("the class of test submissions is written", || {
                Err(Failure::because(format!("{err:#}")))
            });
            return list.finish();
        }
    };
    for (name, expect) in class {
        let folder = grader.home().join("instructor").join("class").join(&name);
        // The copy as handed out runs every test, to prove every stub fails
        // (graded first; later submissions skip the exercises not started).
        grader.run_stubs(name == "handed-out");
        let graded = grader.grade(&name, &folder);
        list.check(&format!("{name}: {}", expect.what), || {
            expect.check(&graded)
        });
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
    let files = workspace_files(root, &files::is_build_or_history).map_err(because)?;
    Ok(files
        .iter()
        .filter(|path| path.extension().is_some_and(|ext| ext == "rs"))
        .filter_map(|path| fs::read_to_string(root.join(path)).ok())
        .collect())
}

fn because(err: impl std::fmt::Display) -> Failure {
    Failure::because(format!("{err:#}"))
}

fn student_copy_is_clean(copy: &Path) -> Result<(), Failure> {
    for relative in workspace_files(copy, &files::is_build_or_history).map_err(because)? {
        let shown = files::slashed(&relative);
        if INSTRUCTOR_ONLY.iter().any(|only| shown.starts_with(only)) {
            return Err(Failure::because(format!("{shown} is the instructor's")));
        }
        let text = fs::read_to_string(copy.join(&relative)).unwrap_or_default();
        if markers::has_markers(&text) {
            return Err(Failure::because(format!(
                "{shown} still holds solution markers"
            )));
        }
        if markers::has_instructor_parts(&text) {
            return Err(Failure::because(format!(
                "{shown} still holds an instructor part"
            )));
        }
        if let Some(only) = INSTRUCTOR_ONLY
            .iter()
            .find(|only| text.contains(&format!("{only}/")))
        {
            return Err(Failure::because(format!(
                "{shown} mentions {only}, which the copy lacks"
            )));
        }
    }
    if copy.join(".git").exists() {
        return Err(Failure::because("the copy holds a .git folder"));
    }
    Ok(())
}

/// Every relative Markdown link `[text](path)` points at a file or folder
/// of the copy.
fn links_resolve(copy: &Path) -> Result<(), Failure> {
    let mut broken = Vec::new();
    for relative in workspace_files(copy, &files::is_build_or_history).map_err(because)? {
        if relative.extension().is_none_or(|ext| ext != "md") {
            continue;
        }
        let text = fs::read_to_string(copy.join(&relative)).unwrap_or_default();
        let folder = copy
            .join(&relative)
            .parent()
            .map(Path::to_path_buf)
            .unwrap_or_default();
        for link in text
            .split("](")
            .skip(1)
            .filter_map(|rest| rest.split(')').next())
        {
            let target = link.split('#').next().unwrap_or("");
            if target.is_empty() || target.contains("://") || target.starts_with("mailto:") {
                continue;
            }
            if !folder.join(target).exists() {
                broken.push(format!("{} -> {target}", files::slashed(&relative)));
            }
        }
    }
    match broken.is_empty() {
        true => Ok(()),
        false => Err(Failure::because(format!(
            "broken links: {}",
            broken.join(", ")
        ))),
    }
}

/// `cargo test --no-fail-fast -- --skip exercise_` in the student copy, as
/// a student would run it (with the build folder grading shares).
fn cargo_test_without_exercises(grader: &Grader) -> Result<(), Failure> {
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let args = [
        "test",
        "--no-fail-fast",
        "--offline",
        "--locked",
        "--",
        "--skip",
        "exercise_",
    ];
    let mut command = grader
        .confinement()
        .command(Path::new(&cargo), &args, false);
    clean_env(&mut command, grader.home(), true);
    command
        .current_dir(grader.tree())
        .env("CARGO_TARGET_DIR", grader.target())
        .env("RUSTFLAGS", "-F unsafe_code");
    let log = grader.home().join("cargo-test.log");
    match run_bounded(&mut command, Duration::from_secs(1800), &log) {
        Ending::Exited(true) => Ok(()),
        other => Err(Failure::because(format!(
            "cargo test: {other:?}; the tests that failed:\n{}\nits output ends:\n{}",
            failed_tests(&log),
            log_tail(&log, 3000)
        ))),
    }
}

/// The lines of a `cargo test` log that name a failure (`test NAME ...
/// FAILED`, a panic, a failed target), at most 40: the tail alone may not
/// reach back to them.
fn failed_tests(log: &Path) -> String {
    let text = std::fs::read_to_string(log).unwrap_or_default();
    let failures: Vec<&str> = text
        .lines()
        .filter(|line| {
            line.ends_with("FAILED")
                || line.contains("panicked at")
                || line.contains("failed, to rerun")
        })
        .take(40)
        .collect();
    failures.join("\n")
}

/// What one test submission must be graded as.
#[derive(Debug, Clone, Default)]
struct Expect {
    what: String,
    /// Exactly the exercises that pass.
    passes: Vec<u32>,
    /// (exercise, words its flags must hold); no other flags allowed.
    flags: Vec<(u32, &'static str)>,
    /// Paths that must be in the tamper list (and nothing else).
    tamper: Vec<&'static str>,
    /// (exercise, words its detail must hold), for every exercise if 0.
    detail: Option<(u32, &'static str)>,
}

impl Expect {
    fn new(what: &str, passes: &[u32]) -> Expect {
        Expect {
            what: what.to_string(),
            passes: passes.to_vec(),
            ..Expect::default()
        }
    }

    fn flag(mut self, number: u32, words: &'static str) -> Expect {
        self.flags.push((number, words));
        self
    }

    fn tampered(mut self, paths: &[&'static str]) -> Expect {
        self.tamper.extend(paths);
        self
    }

    fn detail(mut self, number: u32, words: &'static str) -> Expect {
        self.detail = Some((number, words));
        self
    }

    fn check(&self, graded: &Graded) -> Result<(), Failure> {
        let passed: Vec<u32> = graded
            .rows
            .iter()
            .filter(|row| row.passed)
            .map(|row| row.exercise.number)
            .collect();
        let report = || super::report::text(graded);
        if passed != self.passes {
            return Err(Failure::new(
                "this submission",
                format!("exercises passing: {:?}", self.passes),
                format!("{passed:?}\n{}", report()),
            ));
        }
        for row in &graded.rows {
            let wanted: Vec<&str> = self
                .flags
                .iter()
                .filter(|(number, _)| *number == row.exercise.number)
                .map(|(_, words)| *words)
                .collect();
            let missing = wanted
                .iter()
                .find(|words| !row.flags.iter().any(|flag| flag.contains(*words)));
            if missing.is_some() || (wanted.is_empty() && !row.flags.is_empty()) {
                return Err(Failure::new(
                    format!("exercise {}", row.exercise.number),
                    format!("flags mentioning {wanted:?}"),
                    format!("{:?}", row.flags),
                ));
            }
        }
        let tampered: Vec<&str> = graded
            .tamper
            .iter()
            .map(|change| change.path.as_str())
            .collect();
        let missing = self
            .tamper
            .iter()
            .find(|path| !tampered.iter().any(|t| t.starts_with(*path)));
        let extra = tampered
            .iter()
            .find(|path| !self.tamper.iter().any(|p| path.starts_with(p)));
        if missing.is_some() || extra.is_some() {
            return Err(Failure::new(
                "the tamper list",
                format!("{:?}", self.tamper),
                format!("{tampered:?}"),
            ));
        }
        if let Some((number, words)) = self.detail {
            let rows = graded
                .rows
                .iter()
                .filter(|row| number == 0 || row.exercise.number == number);
            for row in rows {
                if !row.detail.contains(words) {
                    return Err(Failure::new(
                        format!("exercise {}", row.exercise.number),
                        format!("a reason mentioning {words:?}"),
                        row.detail.clone(),
                    ));
                }
            }
        }
        Ok(())
    }
}

/// Writes the class: `HOME/instructor/` looks like the instructor's
/// workspace (every answer in it), and `HOME/instructor/class/NAME/` holds
/// each submission. Returns the names, in grading order, with what each
/// must get.
fn write_class(root: &Path, grader: &Grader) -> anyhow::Result<Vec<(String, Expect)>> {
    let instructor = grader.home().join("instructor");
    write_copy(root, &instructor, &|_| Keep::Solution)?;
    let class = instructor.join("class");
    let mut expected = Vec::new();
    let mut add = |name: &str,
                   keep: Option<u32>,
                   apply: &dyn Fn(&Path) -> anyhow::Result<()>,
                   expect: Expect|
     -> anyhow::Result<()> {
        let folder = class.join(name);
        let keep = move |number| match keep == Some(number) {
            true => Keep::Answer,
            false => Keep::Stub,
        };
        write_copy(root, &folder, &keep)?;
        apply(&folder)?;
        expected.push((name.to_string(), expect));
        Ok(())
    };
    let nothing = |_: &Path| Ok(());
    add(
        "handed-out",
        None,
        &nothing,
        Expect::new("the copy as handed out fails every exercise", &[]).detail(0, "tests failed"),
    )?;
    for exercise in EXERCISES {
        let n = exercise.number;
        let what = format!("exercise {n}'s answer alone passes exactly exercise {n}");
        add(
            &format!("solved-{n:02}"),
            Some(n),
            &nothing,
            Expect::new(&what, &[n]),
        )?;
    }
    cheats(&mut add)?;
    accidents(&mut add)?;
    Ok(expected)
}

type Add<'a> = dyn FnMut(&str, Option<u32>, &dyn Fn(&Path) -> anyhow::Result<()>, Expect) -> anyhow::Result<()>
    + 'a;

/// The cheats of issue 10, each of which once scored 9/9.
fn cheats(add: &mut Add) -> anyhow::Result<()> {
    add(
        "cheat-extra-test-target",
        None,
        &|ws| {
            append(
                ws,
                "sandbox/Cargo.toml",
                "\n[[test]]\nname = \"graded\"\npath = \"tests/graded.rs\"\n",
            )?;
            write(
                ws,
                "sandbox/tests/graded.rs",
                "#[test]\nfn exercise_01_done() {}\n",
            )
        },
        Expect::new("an extra [[test]] of empty tests scores 0, listed", &[])
            .tampered(&["sandbox/Cargo.toml", "sandbox/tests/graded.rs"]),
    )?;
    add(
        "cheat-build-rs-rewrites-tests",
        None,
        &|ws| {
            write(
                ws,
                "sandbox/build.rs",
                "fn main() {\n    let empty = \"#[test]\\nfn exercise_01_done() {}\\n\";\n    let _ = std::fs::write(\"tests/exercises.rs\", empty);\n}\n",
            )
        },
        Expect::new(
            "a build.rs that rewrites the tests is never run, listed",
            &[],
        )
        .tampered(&["sandbox/build.rs"]),
    )?;
    add(
        "cheat-build-rs-copies-solutions",
        None,
        &|ws| write(ws, "sandbox/build.rs", BUILD_RS_COPIES_SOLUTIONS),
        Expect::new(
            "a build.rs that copies the instructor's solutions is never run, listed",
            &[],
        )
        .tampered(&["sandbox/build.rs"]),
    )?;
    add(
        "cheat-edited-tests",
        None,
        &|ws| {
            write(
                ws,
                "sandbox/tests/exercises.rs",
                "#[test]\nfn exercise_01_done() {}\n",
            )
        },
        Expect::new(
            "edited tests are replaced by the handed-out ones, listed",
            &[],
        )
        .tampered(&["sandbox/tests/exercises.rs"]),
    )?;
    add(
        "cheat-cargo-config-patch",
        None,
        &|ws| {
            write(
                ws,
                ".cargo/config.toml",
                "[patch.crates-io]\nmio = { path = \"fake-mio\" }\n",
            )?;
            write(
                ws,
                "fake-mio/Cargo.toml",
                "[package]\nname = \"mio\"\nversion = \"1.0.99\"\nedition = \"2021\"\n",
            )?;
            write(ws, "fake-mio/src/lib.rs", "// prints fake test results\n")
        },
        Expect::new(
            "a dependency patched through .cargo/config.toml is never used, listed",
            &[],
        )
        .tampered(&[".cargo/config.toml", "fake-mio/"]),
    )?;
    add(
        "cheat-fake-ok-then-exit",
        None,
        &|ws| {
            let fake =
                "    println!(\"test exercise_03_done ... ok\");\n    std::process::exit(0)\n";
            replace_regions(ws, "sandbox/src/client.rs", 3, &|_| fake.to_string())?;
            let fake = "        println!(\"test exercise_09_done ... ok\");\n        std::process::exit(0)\n";
            replace_regions(ws, "sandbox/src/framing.rs", 9, &|_| fake.to_string())
        },
        Expect::new("stubs that print `ok` and exit(0) score 0, flagged", &[])
            .flag(3, "process::exit")
            .flag(9, "process::exit")
            .detail(9, "without the test's verdict"),
    )?;
    add(
        "cheat-constructor-before-main",
        None,
        &|ws| {
            replace_regions(ws, "sandbox/src/framing.rs", 9, &|stub| {
                format!("{CONSTRUCTOR}{stub}")
            })
        },
        Expect::new(
            "a constructor that runs before main does not compile, flagged",
            &[],
        )
        .flag(9, "link section")
        .flag(9, "extern")
        .flag(9, "process::exit")
        .detail(9, "does not compile"),
    )?;
    add(
        "cheat-endless-loop",
        None,
        &|ws| {
            // Only backoff (the first region) loops; connect_with_retry stays a stub.
            replace_nth_regions(ws, "sandbox/src/client.rs", 3, &|index, stub| match index {
                0 => "    loop {\n        std::thread::sleep(Duration::from_secs(1));\n    }\n"
                    .to_string(),
                _ => stub.to_string(),
            })
        },
        Expect::new("an endless loop is stopped, scored 0 with the reason", &[])
            .detail(3, "was stopped"),
    )?;
    Ok(())
}

/// What students do by accident; and a submission that runs a process that
/// outlives its test, holding the output open.
fn accidents(add: &mut Add) -> anyhow::Result<()> {
    add(
        "accident-stray-marker",
        Some(7),
        &|ws| {
            replace_regions(ws, "sandbox/src/room.rs", 7, &|answer| {
                format!("        // BEGIN SOLUTION exercise 7 -- my notes\n{answer}")
            })
        },
        Expect::new("a marker-like comment in a region is just a comment", &[7]),
    )?;
    add(
        "accident-nested-with-workspace-comment",
        Some(5),
        &|ws| {
            let deeper = ws.join("socket-lessons");
            fs::create_dir_all(&deeper)?;
            for entry in fs::read_dir(ws)? {
                let entry = entry?;
                if entry.file_name() != "socket-lessons" {
                    fs::rename(entry.path(), deeper.join(entry.file_name()))?;
                }
            }
            let manifest = fs::read_to_string(deeper.join("Cargo.toml"))?;
            fs::write(
                deeper.join("Cargo.toml"),
                manifest.replace("[workspace]\n", "[workspace] # my notes\n"),
            )?;
            Ok(())
        },
        Expect::new(
            "a workspace a folder deeper, `[workspace] # comment`, is graded",
            &[5],
        )
        .tampered(&["Cargo.toml"]),
    )?;
    add(
        "accident-region-lines-removed",
        Some(8),
        &|ws| {
            let path = ws.join("sandbox/src/room.rs");
            let text = fs::read_to_string(&path)?;
            let end = markers::student_end(5);
            let without: Vec<&str> = text.lines().filter(|line| line.trim() != end).collect();
            fs::write(&path, without.join("\n") + "\n")?;
            Ok(())
        },
        Expect::new(
            "a region whose lines were removed gets a clear error, the rest is graded",
            &[8],
        )
        .tampered(&["sandbox/src/room.rs"])
        .detail(5, "lines were changed"),
    )?;
    add(
        "accident-workspace-line-deleted",
        Some(1),
        &|ws| {
            let manifest = fs::read_to_string(ws.join("Cargo.toml"))?;
            fs::write(ws.join("Cargo.toml"), manifest.replace("[workspace]\n", ""))?;
            Ok(())
        },
        Expect::new(
            "no workspace found: an error row, not the instructor's workspace above",
            &[],
        )
        .detail(0, "no socket-lessons workspace"),
    )?;
    add(
        "grandchild-holds-output",
        Some(9),
        &|ws| {
            replace_regions(ws, "sandbox/src/framing.rs", 9, &|answer| {
                format!("{GRANDCHILD}{answer}")
            })
        },
        Expect::new(
            "a process left running, holding the output, is killed; graded",
            &[9],
        )
        .flag(9, "starts processes"),
    )?;
    add(
        "not-a-submission",
        None,
        &|ws| {
            fs::remove_dir_all(ws)?;
            write(ws, "notes.txt", "I will hand it in tomorrow\n")
        },
        Expect::new(
            "a folder without a workspace gets an error row per exercise",
            &[],
        )
        .detail(0, "no socket-lessons workspace"),
    )?;
    Ok(())
}

/// A build script that looks for the instructor's workspace above its
/// working folder, and copies the solutions in.
const BUILD_RS_COPIES_SOLUTIONS: &str = r#"use std::path::PathBuf;
fn main() {
    let mut dir = PathBuf::from(std::env::var("PWD").unwrap_or_default());
    while dir.pop() {
        let room = dir.join("sandbox/src/room.rs");
        if std::fs::read_to_string(&room).is_ok_and(|t| t.contains("BEGIN SOLUTION")) {
            let _ = std::fs::copy(&room, "src/room.rs");
        }
    }
}
"#;

/// A constructor: code that runs before `main`, through a link section.
const CONSTRUCTOR: &str = r#"        #[used]
        #[unsafe(link_section = ".init_array")]
        static FAKE: extern "C" fn() = {
            extern "C" fn fake() {
                println!("test exercise_09_done ... ok");
                std::process::exit(0)
            }
            fake
        };
"#;

/// Starts, once, a process that outlives the test and holds its output.
const GRANDCHILD: &str = r#"        static ONCE: std::sync::Once = std::sync::Once::new();
        ONCE.call_once(|| {
            let _ = std::process::Command::new("sleep").arg("300").spawn();
        });
"#;

fn write(ws: &Path, relative: &str, text: &str) -> anyhow::Result<()> {
    let path = ws.join(relative);
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(&path, text)?;
    Ok(())
}

fn append(ws: &Path, relative: &str, text: &str) -> anyhow::Result<()> {
    let old = fs::read_to_string(ws.join(relative))?;
    write(ws, relative, &(old + text))
}

/// Replaces each region of exercise `number` in a file by `new(old region)`.
fn replace_regions(
    ws: &Path,
    relative: &str,
    number: u32,
    new: &dyn Fn(&str) -> String,
) -> anyhow::Result<()> {
    replace_nth_regions(ws, relative, number, &|_, old| new(old))
}

/// Replaces region `index` of exercise `number` by `new(index, old region)`.
fn replace_nth_regions(
    ws: &Path,
    relative: &str,
    number: u32,
    new: &dyn Fn(usize, &str) -> String,
) -> anyhow::Result<()> {
    let path: PathBuf = ws.join(relative);
    let text = fs::read_to_string(&path)?;
    let spans = markers::spans(&text, number);
    anyhow::ensure!(
        !spans.is_empty(),
        "no region of exercise {number} in {relative}"
    );
    let mut out = String::new();
    let mut copied_up_to = 0;
    for (index, (start, end)) in spans.into_iter().enumerate() {
        out.push_str(&text[copied_up_to..start]);
        out.push_str(&new(index, &text[start..end]));
        copied_up_to = end;
    }
    out.push_str(&text[copied_up_to..]);
    fs::write(&path, out)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The student copy of this very workspace (no build: quick).
    #[test]
    fn the_student_copy_of_this_workspace_is_clean() {
        let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
        let copy = std::env::temp_dir().join(format!("homework-copy-{}", std::process::id()));
        let _ = fs::remove_dir_all(&copy);
        write_copy(&root, &copy, &|_| Keep::Stub).unwrap();
        let result = student_copy_is_clean(&copy).and_then(|()| links_resolve(&copy));
        let main = fs::read_to_string(copy.join("sandbox/homework/src/main.rs")).unwrap();
        let readme = fs::read_to_string(copy.join("sandbox/README.md")).unwrap();
        fs::remove_dir_all(&copy).unwrap();
        assert_eq!(result, Ok(()));
        assert!(!main.contains("grader"), "{main}");
        assert!(readme.contains("### For students") && !readme.contains("### For instructors"));
    }
}
