//! What grading takes from a submission: only its student regions.
//!
//! [`locate`] finds the submission's workspace by looking *down* from the
//! folder given (never up, where the instructor's own workspace may be).
//! [`splice`] writes the graded tree: the handed-out copy, with each student
//! region replaced by the submission's. Manifests, build scripts, `.cargo/`
//! settings, tests and every other file come from the handed-out copy; the
//! submission's differences there are only listed ([`Submission::tamper`]).
//! [`flags`] names what a region reaches for that exercise code never needs.

use std::fs;
use std::path::{Path, PathBuf};

use homework::exercises::declares_workspace;
use homework::files::{self, Change, PRISTINE_DIR, fingerprint, workspace_files};
use homework::markers;

use super::copy::write_if_changed;

/// How deep below the given folder a submission's workspace may be.
const SEARCH_DEPTH: usize = 3;

/// Finds the socket-lessons workspace in `folder` or below: a `Cargo.toml`
/// declaring `[workspace]` beside a `sandbox/` folder; the shallowest wins,
/// and two at the same depth are an error (which one is the work?).
pub fn locate(folder: &Path) -> Result<PathBuf, String> {
    if !folder.is_dir() {
        return Err(format!("{} is not a folder", folder.display()));
    }
    let mut level = vec![folder.to_path_buf()];
    for _depth in 0..=SEARCH_DEPTH {
        let found: Vec<&PathBuf> = level
            .iter()
            .filter(|dir| is_lessons_workspace(dir))
            .collect();
        match found.as_slice() {
            [one] => return Ok((*one).clone()),
            [] => {}
            several => {
                let names: Vec<String> = several
                    .iter()
                    .map(|dir| dir.display().to_string())
                    .collect();
                return Err(format!(
                    "several workspaces ({}): hand in one",
                    names.join(", ")
                ));
            }
        }
        level = level.iter().flat_map(|dir| subfolders(dir)).collect();
    }
    Err(format!(
        "no socket-lessons workspace (a Cargo.toml with [workspace] beside a sandbox/ folder) \
         in {} or {SEARCH_DEPTH} folders below",
        folder.display()
    ))
}

fn is_lessons_workspace(dir: &Path) -> bool {
    let manifest = fs::read_to_string(dir.join("Cargo.toml")).unwrap_or_default();
    declares_workspace(&manifest) && dir.join("sandbox").join("Cargo.toml").is_file()
}

fn subfolders(dir: &Path) -> Vec<PathBuf> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut found: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_dir()))
        .filter(|entry| !files::is_build_or_history(&entry.file_name().to_string_lossy()))
        .map(|entry| entry.path())
        .collect();
    found.sort();
    found
}

/// What was taken from one submission.
#[derive(Debug, Default)]
pub struct Submission {
    /// Exercises whose regions could not be taken, and why (they keep the stub).
    pub region_errors: Vec<(u32, String)>,
    /// Per exercise, what its regions reach for (see [`flags`]).
    pub flags: Vec<(u32, String)>,
    /// Files outside the regions that differ from the handed-out copy.
    pub tamper: Vec<Change>,
    /// A fingerprint of the graded tree's region files: equal trees grade alike.
    pub tree_print: u64,
    /// Exercises whose code was taken and differs from the handed-out stub
    /// (the others cannot pass: `verify` proves every stub fails).
    pub started: Vec<u32>,
}

/// Writes into `tree` (already a copy of `handout`) the regions of the
/// submission workspace `submitted`; returns what was taken and found.
pub fn splice(handout: &Path, submitted: &Path, tree: &Path) -> anyhow::Result<Submission> {
    let mut submission = Submission::default();
    let mut all_text = String::new();
    let pristine = handout.join(PRISTINE_DIR);
    for relative in workspace_files(&pristine, &|_| false)? {
        if relative == Path::new("MANIFEST") {
            continue;
        }
        let handed = fs::read_to_string(handout.join(&relative))?;
        let theirs = read_regular(&submitted.join(&relative));
        let mut graded = handed.clone();
        for number in markers::student_exercises(&handed) {
            let shown = files::slashed(&relative);
            let regions = match &theirs {
                Err(why) => Err(format!("{shown}: {why}")),
                Ok(text) => regions_of(text, number, markers::spans(&handed, number).len())
                    .map_err(|why| format!("{shown}: {why}")),
            };
            match regions {
                Ok(regions) => {
                    let handed_regions = regions_of(&handed, number, regions.len());
                    if handed_regions.as_ref() != Ok(&regions)
                        && !submission.started.contains(&number)
                    {
                        submission.started.push(number);
                    }
                    for region in &regions {
                        for flag in flags(region) {
                            if !submission.flags.contains(&(number, flag.to_string())) {
                                submission.flags.push((number, flag.to_string()));
                            }
                        }
                    }
                    graded = put_regions(&graded, number, &regions);
                }
                Err(why) => submission.region_errors.push((number, why)),
            }
        }
        write_if_changed(&tree.join(&relative), graded.as_bytes())?;
        all_text.push_str(&graded);
    }
    // A region error keeps that exercise's stub: not started, as graded.
    let errors: Vec<u32> = submission.region_errors.iter().map(|(n, _)| *n).collect();
    submission.started.retain(|number| !errors.contains(number));
    submission.started.sort_unstable();
    submission.tree_print = fingerprint(all_text.as_bytes());
    submission.tamper = files::changes(
        &files::fingerprints(handout)?,
        &files::fingerprints(submitted)?,
    );
    submission.flags.sort();
    Ok(submission)
}

/// A file's text, refusing links (one could point at the instructor's files).
fn read_regular(path: &Path) -> Result<String, String> {
    match fs::symlink_metadata(path) {
        Err(_) => Err("missing".into()),
        Ok(meta) if !meta.file_type().is_file() => Err("not a regular file".into()),
        Ok(_) => fs::read_to_string(path).map_err(|err| format!("unreadable: {err}")),
    }
}

/// The texts of exercise `number`'s regions in `text`; there must be as many
/// as the handed-out copy has.
fn regions_of(text: &str, number: u32, expected: usize) -> Result<Vec<String>, String> {
    let spans = markers::spans(text, number);
    if spans.len() != expected {
        return Err(format!(
            "exercise {number}'s `your code starts here` / `ends here` lines were changed \
             ({} regions found, {expected} handed out); its code was not graded",
            spans.len()
        ));
    }
    Ok(spans
        .iter()
        .map(|&(start, end)| text[start..end].to_string())
        .collect())
}

/// `text` with exercise `number`'s regions replaced, in order, by `regions`.
fn put_regions(text: &str, number: u32, regions: &[String]) -> String {
    let mut out = String::with_capacity(text.len());
    let mut copied_up_to = 0;
    for ((start, end), region) in markers::spans(text, number).into_iter().zip(regions) {
        out.push_str(&text[copied_up_to..start]);
        out.push_str(region);
        copied_up_to = end;
    }
    out.push_str(&text[copied_up_to..]);
    out
}

/// What exercise code never needs, and what each reach means. A region
/// flagged is not failed: a person should read it.
const REACHES: &[(&str, &str)] = &[
    ("process::exit", "ends the process (process::exit)"),
    ("process::abort", "ends the process (process::abort)"),
    ("process::Command", "starts processes (Command)"),
    ("Command::new", "starts processes (Command)"),
    ("unsafe", "uses unsafe"),
    ("extern", "declares foreign functions (extern)"),
    (
        "link_section",
        "places code in link sections (runs before main?)",
    ),
    ("no_mangle", "exports symbols (no_mangle)"),
    ("export_name", "exports symbols (export_name)"),
    ("#[used]", "keeps statics alive for the linker (#[used])"),
    ("#[ctor", "runs code before main (#[ctor])"),
    ("ctor::", "runs code before main (ctor::)"),
    ("env::", "reads the environment (env::)"),
    ("env!", "reads the build environment (env!)"),
    ("include!", "includes files at build time (include!)"),
    (
        "include_str!",
        "includes files at build time (include_str!)",
    ),
    (
        "include_bytes!",
        "includes files at build time (include_bytes!)",
    ),
    ("fs::", "touches files (fs::)"),
    ("File::", "touches files (File::)"),
    ("/proc", "reads /proc"),
    ("std::os", "uses OS-specific APIs (std::os)"),
    ("asm!", "uses inline assembly"),
];

/// What a region's code (comments left out) reaches for, by [`REACHES`].
pub fn flags(region: &str) -> Vec<&'static str> {
    let code: String = region
        .lines()
        .map(|line| line.split("//").next().unwrap_or(""))
        .collect::<Vec<_>>()
        .join("\n");
    REACHES
        .iter()
        .filter(|(needle, _)| code.contains(needle))
        .map(|(_, meaning)| *meaning)
        .fold(Vec::new(), |mut found, meaning| {
            if !found.contains(&meaning) {
                found.push(meaning);
            }
            found
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reaches_for_the_process_are_flagged_and_comments_are_not() {
        let region = "// no process::exit here\nprintln!(\"ok\");\nstd::process::exit(0)\n";
        assert_eq!(flags(region), ["ends the process (process::exit)"]);
        assert!(flags("// std::env::var is banned\nlet x = 1;\n").is_empty());
        assert!(flags("let factor = 2;\nlet cmd = protocol::Command::Quit;\n").is_empty());
        let spawn = "use std::process::Command;\nCommand::new(\"sleep\").spawn();\n";
        assert_eq!(flags(spawn), ["starts processes (Command)"]);
        assert!(
            flags("let v = option_env!(\"KEY\");").contains(&"reads the build environment (env!)")
        );
    }

    #[test]
    fn regions_are_put_back_in_order() {
        let (start, end) = (markers::student_start(4), markers::student_end(4));
        let text = format!("a\n{start}\nx\n{end}\nb\n{start}\ny\n{end}\n");
        let done = put_regions(&text, 4, &["1\n".to_string(), "2\n".to_string()]);
        assert_eq!(regions_of(&done, 4, 2).unwrap(), ["1\n", "2\n"]);
        assert!(regions_of(&done, 4, 3).is_err());
    }
}

#[cfg(test)]
mod locate_tests {
    use super::*;

    fn workspace_at(dir: &Path, manifest: &str) {
        fs::create_dir_all(dir.join("sandbox")).unwrap();
        fs::write(dir.join("Cargo.toml"), manifest).unwrap();
        fs::write(dir.join("sandbox/Cargo.toml"), "[package]\n").unwrap();
    }

    #[test]
    fn submissions_are_found_below_never_above() {
        let root = std::env::temp_dir().join(format!("homework-locate-{}", std::process::id()));
        let _ = fs::remove_dir_all(&root);
        // The instructor's workspace, with a class inside it.
        workspace_at(&root, "[workspace]\n");
        let nested = root.join("class/alice/unzipped/socket-lessons");
        workspace_at(&nested, "[workspace] # my notes\n");
        assert_eq!(locate(&root.join("class/alice")).unwrap(), nested);
        let empty = root.join("class/bob");
        fs::create_dir_all(&empty).unwrap();
        assert!(
            locate(&empty)
                .unwrap_err()
                .contains("no socket-lessons workspace")
        );
        workspace_at(&root.join("class/carol/a"), "[workspace]\n");
        workspace_at(&root.join("class/carol/b"), "[workspace]\n");
        assert!(
            locate(&root.join("class/carol"))
                .unwrap_err()
                .contains("several")
        );
        fs::remove_dir_all(&root).unwrap();
    }
}
