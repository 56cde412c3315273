//! Walking a workspace, and telling what changed in it since it was handed
//! out: the student copy keeps, in [`PRISTINE_DIR`], each file with
//! exercises as first handed out (for `reset`) and a [`MANIFEST`] of every
//! file's fingerprint, taken with the student regions left out. `progress`
//! compares against it to warn a student who changed a file outside their
//! regions (grading ignores such changes, and lists them for the instructor).

use std::fmt;
use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

use crate::markers;

/// Where a student copy keeps the exercises as handed out.
pub const PRISTINE_DIR: &str = "sandbox/.pristine";

/// The fingerprints of every handed-out file, inside [`PRISTINE_DIR`].
pub const MANIFEST: &str = "sandbox/.pristine/MANIFEST";

/// Folders that are never part of a workspace's content: build output,
/// version history, and the pristine copies themselves.
pub fn is_build_or_history(name: &str) -> bool {
    matches!(name, "target" | ".git" | ".pristine") || name.starts_with("target-")
}

/// Every file below `root`, as sorted paths relative to it, skipping folders
/// for which `skip` says so. Links are listed as files (never followed).
pub fn workspace_files(root: &Path, skip: &dyn Fn(&str) -> bool) -> anyhow::Result<Vec<PathBuf>> {
    let mut files = Vec::new();
    let mut folders = vec![PathBuf::new()];
    while let Some(folder) = folders.pop() {
        let entries = fs::read_dir(root.join(&folder))
            .with_context(|| format!("cannot list {}", root.join(&folder).display()))?;
        for entry in entries {
            let entry = entry?;
            let relative = folder.join(entry.file_name());
            let kind = entry.file_type()?;
            if kind.is_dir() {
                if !skip(&entry.file_name().to_string_lossy()) {
                    folders.push(relative);
                }
            } else if entry.file_name() != ".git" {
                // (A worktree's `.git` is a file pointing at the history.)
                files.push(relative);
            }
        }
    }
    files.sort();
    Ok(files)
}

/// A 64-bit FNV-1a hash: enough to notice an accidental change, and stable
/// across Rust versions (std's hasher is not promised to be).
pub fn fingerprint(bytes: &[u8]) -> u64 {
    bytes.iter().fold(0xcbf2_9ce4_8422_2325, |hash, byte| {
        (hash ^ u64::from(*byte)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// `source` with every student region emptied: what must not change.
pub fn outside_regions(source: &str) -> String {
    let mut ranges: Vec<(usize, usize)> = markers::student_exercises(source)
        .into_iter()
        .flat_map(|number| markers::spans(source, number))
        .collect();
    ranges.sort_unstable();
    let mut out = String::with_capacity(source.len());
    let mut copied_up_to = 0;
    for (start, end) in ranges {
        out.push_str(&source[copied_up_to..start]);
        copied_up_to = end;
    }
    out.push_str(&source[copied_up_to..]);
    out
}

/// The fingerprint of one file of a workspace, regions left out; `None` for
/// a link or an unreadable file.
pub fn file_fingerprint(path: &Path) -> Option<u64> {
    if fs::symlink_metadata(path).ok()?.file_type().is_symlink() {
        return None;
    }
    let bytes = fs::read(path).ok()?;
    Some(match std::str::from_utf8(&bytes) {
        Ok(text) => fingerprint(outside_regions(text).as_bytes()),
        Err(_) => fingerprint(&bytes),
    })
}

/// `(path, fingerprint)` for every file of the workspace at `root`.
pub fn fingerprints(root: &Path) -> anyhow::Result<Vec<(String, Option<u64>)>> {
    Ok(workspace_files(root, &is_build_or_history)?
        .into_iter()
        .map(|relative| {
            let print = file_fingerprint(&root.join(&relative));
            (slashed(&relative), print)
        })
        .collect())
}

/// A relative path with `/` between its parts, the same on every system.
pub fn slashed(relative: &Path) -> String {
    let parts: Vec<String> = relative
        .components()
        .map(|part| part.as_os_str().to_string_lossy().into_owned())
        .collect();
    parts.join("/")
}

/// The manifest's text: one `HASH PATH` line per file.
pub fn manifest_text(prints: &[(String, Option<u64>)]) -> String {
    prints
        .iter()
        .map(|(path, print)| format!("{:016x} {path}\n", print.unwrap_or(0)))
        .collect()
}

/// One file that differs from the handed-out copy.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Change {
    pub path: String,
    pub how: &'static str,
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.path, self.how)
    }
}

/// Every file that differs between `handed_out` and `now` (both as from
/// [`fingerprints`]): changed outside its regions, added, removed, or a link.
pub fn changes(handed_out: &[(String, Option<u64>)], now: &[(String, Option<u64>)]) -> Vec<Change> {
    let mut found = Vec::new();
    for (path, print) in now {
        let change = |how| Change {
            path: path.clone(),
            how,
        };
        match handed_out.iter().find(|(old, _)| old == path) {
            _ if print.is_none() => found.push(change("a link, or unreadable")),
            None => found.push(change("added")),
            Some((_, old)) if old != print => found.push(change("changed")),
            Some(_) => {}
        }
    }
    for (path, _) in handed_out {
        if !now.iter().any(|(new, _)| new == path) {
            found.push(Change {
                path: path.clone(),
                how: "removed",
            });
        }
    }
    found.sort_by(|a, b| a.path.cmp(&b.path));
    found
}

/// What changed in the student copy at `workspace` since it was handed out,
/// or `None` if it has no manifest (the instructor's reference).
pub fn changes_since_handed_out(workspace: &Path) -> anyhow::Result<Option<Vec<Change>>> {
    let Ok(text) = fs::read_to_string(workspace.join(MANIFEST)) else {
        return Ok(None);
    };
    let handed_out: Vec<(String, Option<u64>)> = text
        .lines()
        .filter_map(|line| {
            let (hash, path) = line.split_once(' ')?;
            Some((path.to_string(), u64::from_str_radix(hash, 16).ok()))
        })
        .collect();
    Ok(Some(changes(&handed_out, &fingerprints(workspace)?)))
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
    for relative in workspace_files(&pristine_root, &|_| false)? {
        if relative == Path::new("MANIFEST") {
            continue;
        }
        let pristine = fs::read_to_string(pristine_root.join(&relative))?;
        let current_path = workspace.join(&relative);
        let current = fs::read_to_string(&current_path)
            .with_context(|| format!("cannot read {}", current_path.display()))?;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_do_not_count_but_everything_else_does() {
        let start = markers::student_start(2);
        let end = markers::student_end(2);
        let handed = format!("fn f() {{\n{start}\n0\n{end}\n}}\n");
        let solved = handed.replace("\n0\n", "\nlet x = 1;\nx\n");
        assert_eq!(outside_regions(&handed), outside_regions(&solved));
        let tampered = solved.replace("fn f()", "fn g()");
        assert_ne!(outside_regions(&handed), outside_regions(&tampered));
    }

    #[test]
    fn changes_name_every_kind() {
        let before = vec![
            ("a".to_string(), Some(1)),
            ("b".to_string(), Some(2)),
            ("c".to_string(), Some(3)),
        ];
        let after = vec![
            ("a".to_string(), Some(1)),
            ("b".to_string(), Some(9)),
            ("d".to_string(), Some(4)),
            ("e".to_string(), None),
        ];
        let listed: Vec<String> = changes(&before, &after)
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            listed,
            [
                "b (changed)",
                "c (removed)",
                "d (added)",
                "e (a link, or unreadable)"
            ]
        );
    }
}
