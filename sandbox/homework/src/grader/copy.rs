//! Writes copies of the reference workspace: the student copy (every
//! exercise stubbed, the instructor's parts and files left out), and the
//! copies `verify` makes with some answers in place.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};
use homework::files::{self, MANIFEST, PRISTINE_DIR, workspace_files};
use homework::markers::{self, Keep};

/// Files and folders of the reference that a student copy leaves out: CI
/// (it runs the grader), the grader's source and its guide.
pub const INSTRUCTOR_ONLY: &[&str] = &[
    ".ci",
    "sandbox/homework/src/grader",
    "sandbox/homework/GRADING.md",
];

/// Folders never copied from the reference.
fn skipped(name: &str) -> bool {
    files::is_build_or_history(name)
}

fn instructor_only(relative: &Path) -> bool {
    let path = files::slashed(relative);
    INSTRUCTOR_ONLY
        .iter()
        .any(|only| path == *only || path.starts_with(&format!("{only}/")))
}

/// `path` made absolute, through its nearest existing ancestor (the copy's
/// folder may not exist yet), with links resolved as the root's are.
pub fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
    let path = std::path::absolute(path)?;
    let mut existing = path.as_path();
    let mut rest = Vec::new();
    while !existing.exists() {
        let (Some(parent), Some(name)) = (existing.parent(), existing.file_name()) else {
            break;
        };
        rest.push(name.to_owned());
        existing = parent;
    }
    let mut resolved = existing.canonicalize()?;
    resolved.extend(rest.iter().rev());
    Ok(resolved)
}

/// Writes a student copy of the reference at `root` into `dest`: files with
/// solution regions rewritten as `keep` says, instructor parts and files
/// left out, and the pristine files and manifest `reset` and `progress` use.
/// Returns how many files held solutions.
pub fn write_copy(root: &Path, dest: &Path, keep: &dyn Fn(u32) -> Keep) -> anyhow::Result<usize> {
    let root = root
        .canonicalize()
        .with_context(|| format!("no workspace at {}", root.display()))?;
    if absolute(dest)?.starts_with(&root) {
        bail!("the copy must go outside the workspace: {}", dest.display());
    }
    let mut rewritten = 0;
    let all = workspace_files(&root, &skipped)?;
    // A workspace inside this one (submissions kept in the reference's
    // folder, say) is not part of it: never hand it out.
    let nested: Vec<&Path> = all
        .iter()
        .filter(|path| path.file_name().is_some_and(|name| name == "Cargo.toml"))
        .filter_map(|path| path.parent().filter(|dir| !dir.as_os_str().is_empty()))
        .filter(|dir| {
            let manifest = fs::read_to_string(root.join(dir).join("Cargo.toml"));
            manifest.is_ok_and(|text| homework::exercises::declares_workspace(&text))
        })
        .collect();
    for relative in &all {
        if instructor_only(relative) || nested.iter().any(|dir| relative.starts_with(dir)) {
            continue;
        }
        let relative = relative.as_path();
        let bytes = fs::read(root.join(relative))?;
        let Ok(text) = std::str::from_utf8(&bytes) else {
            write_if_changed(&dest.join(relative), &bytes)?;
            continue;
        };
        let located = |err: markers::MarkerError| anyhow::anyhow!("{}: {err}", relative.display());
        let mut text = markers::drop_instructor_parts(text).map_err(located)?;
        if relative.extension().is_some_and(|ext| ext == "md") {
            text = drop_paragraphs_about_instructor_files(&text);
        }
        if !markers::has_solutions(&text) {
            write_if_changed(&dest.join(relative), text.as_bytes())?;
            continue;
        }
        let copy = markers::rewrite(&text, keep).map_err(located)?;
        write_if_changed(&dest.join(relative), copy.as_bytes())?;
        let pristine = markers::rewrite(&text, |_| Keep::Stub).map_err(located)?;
        write_if_changed(&dest.join(PRISTINE_DIR).join(relative), pristine.as_bytes())?;
        rewritten += 1;
    }
    // The fingerprints of the copy as handed out: stubs and answers alike
    // are inside regions, which fingerprints leave out.
    let manifest = files::manifest_text(&files::fingerprints(dest)?);
    write_if_changed(&dest.join(MANIFEST), manifest.as_bytes())?;
    Ok(rewritten)
}

/// Markdown without the paragraphs that mention a file the copy lacks (the
/// top README's word on `.ci/run`, say): a student would look for it.
fn drop_paragraphs_about_instructor_files(text: &str) -> String {
    let mentions = |paragraph: &str| {
        INSTRUCTOR_ONLY.iter().any(|only| {
            paragraph.contains(&format!("{only}/"))
                || paragraph.contains(&format!("`{only}`"))
                || paragraph.contains(&format!("({only})"))
        })
    };
    let kept: Vec<&str> = text
        .split("\n\n")
        .filter(|paragraph| !mentions(paragraph))
        .collect();
    let mut out = kept.join("\n\n");
    if text.ends_with('\n') && !out.ends_with('\n') {
        out.push('\n');
    }
    out
}

/// Leaves an identical file alone, so that its timestamp stays and cargo
/// does not rebuild what did not change (verify and grading write many
/// copies into the same folder).
pub fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn paragraphs_about_ci_are_dropped() {
        let readme = "# Title\n\nRun it.\n\n`bash .ci/run` runs CI.\n\nThe end.\n";
        assert_eq!(
            drop_paragraphs_about_instructor_files(readme),
            "# Title\n\nRun it.\n\nThe end.\n"
        );
    }

    #[test]
    fn the_grader_is_instructor_only() {
        assert!(instructor_only(Path::new(
            "sandbox/homework/src/grader/run.rs"
        )));
        assert!(instructor_only(Path::new(".ci/run")));
        assert!(!instructor_only(Path::new(
            "sandbox/homework/src/progress.rs"
        )));
    }
}
