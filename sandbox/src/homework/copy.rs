//! Copies the workspace with every solution region rewritten: the student
//! copy (all stubs), or a copy that keeps one exercise's answer (`verify`).

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use super::markers::{self, Keep};

/// Where a student copy keeps each rewritten file as first handed out, so
/// that `reset` can put one exercise back as it was.
pub const PRISTINE_DIR: &str = "sandbox/.pristine";

/// Folders never copied: build output, version history (it holds the
/// solutions), CI, and an earlier copy's pristine files.
fn skipped(name: &str) -> bool {
    matches!(name, "target" | ".git" | ".ci" | ".pristine") || name.starts_with("target-")
}

/// `path` made absolute, through its nearest existing ancestor (the copy's
/// folder may not exist yet), with links resolved as the root's are.
fn absolute(path: &Path) -> anyhow::Result<PathBuf> {
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

/// Every file below `root`, as paths relative to it, skipping build output,
/// version history and CI (see `skipped`).
pub fn workspace_files(root: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        let entries = fs::read_dir(root.join(&folder))
            .with_context(|| format!("cannot list {}", folder.display()))?;
        for entry in entries {
            let entry = entry?;
            let relative = folder.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() && !skipped(&entry.file_name().to_string_lossy()) {
                folders.push(relative);
            } else if kind.is_file() {
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// Writes a copy of the workspace at `root` into `dest`. Files with solution
/// regions are rewritten as `keep` says; with `pristine`, the rewritten
/// files are also saved under [`PRISTINE_DIR`] for `reset`. Returns how many
/// files held solutions.
pub fn write_copy(
    root: &Path,
    dest: &Path,
    keep: &dyn Fn(u32) -> Keep,
    pristine: bool,
) -> anyhow::Result<usize> {
    let root = root
        .canonicalize()
        .with_context(|| format!("no workspace at {}", root.display()))?;
    if absolute(dest)?.starts_with(&root) {
        bail!("the copy must go outside the workspace: {}", dest.display());
    }
    let mut rewritten = 0;
    for relative in workspace_files(&root)? {
        let bytes = fs::read(root.join(&relative))?;
        let text = std::str::from_utf8(&bytes)
            .ok()
            .filter(|text| markers::has_solutions(text));
        let Some(text) = text else {
            write_if_changed(&dest.join(&relative), &bytes)?;
            continue;
        };
        let copy = markers::rewrite(text, keep)
            .map_err(|err| anyhow::anyhow!("{}: {err}", relative.display()))?;
        write_if_changed(&dest.join(&relative), copy.as_bytes())?;
        if pristine {
            write_if_changed(&dest.join(PRISTINE_DIR).join(&relative), copy.as_bytes())?;
        }
        rewritten += 1;
    }
    Ok(rewritten)
}

/// Copies a file, or a folder with everything in it, from `from` to `to`.
pub fn copy_tree(from: &Path, to: &Path) -> anyhow::Result<()> {
    if from.is_file() {
        let bytes = fs::read(from).with_context(|| format!("cannot read {}", from.display()))?;
        return write_if_changed(to, &bytes);
    }
    for relative in workspace_files(from)? {
        copy_tree(&from.join(&relative), &to.join(&relative))?;
    }
    Ok(())
}

/// Leaves an identical file alone, so that its timestamp stays and cargo
/// does not rebuild what did not change (verify writes many copies).
fn write_if_changed(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    if fs::read(path).is_ok_and(|old| old == bytes) {
        return Ok(());
    }
    if let Some(parent) = path.parent() {
        fs::create_dir_all(parent)?;
    }
    fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// Puts exercise `number` back as the student copy first had it, in every
/// file where it has a part; returns those files.
pub fn reset(workspace: &Path, number: u32) -> anyhow::Result<Vec<PathBuf>> {
    let pristine_root = workspace.join(PRISTINE_DIR);
    if !pristine_root.is_dir() {
        bail!(
            "no {PRISTINE_DIR} folder here: reset works in a student copy (made by \
             `homework student-copy`), which keeps the exercises as handed out in that folder"
        );
    }
    let mut restored_files = Vec::new();
    for relative in workspace_files(&pristine_root)? {
        let pristine = fs::read_to_string(pristine_root.join(&relative))?;
        let current_path = workspace.join(&relative);
        let current = fs::read_to_string(&current_path)?;
        if let Some(restored) = markers::reset(&current, &pristine, number) {
            fs::write(&current_path, restored)?;
            restored_files.push(relative);
        }
    }
    if restored_files.is_empty() {
        bail!(
            "exercise {number} was not found between its `your code` lines \
             (run this in a student copy, and keep those lines)"
        );
    }
    Ok(restored_files)
}
