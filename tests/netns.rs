//! Every lesson across a virtual network: `tests/netns.sh` runs each lesson's
//! server in one network namespace and its `check` and `client` in another,
//! joined by a veth pair. Where that cannot run (not Linux, not root, no
//! `ip`), the script says why and the test passes as skipped.
//!
//! The sandbox runs in a test of its own, named for its exercise 14: its
//! `check` includes a client that stops reading during a flood, which needs
//! back-pressure, and the student copy leaves that to the student
//! (`cargo test -- --skip exercise_` leaves the test out).

use std::path::PathBuf;
use std::process::Command;

/// The folder with the lesson binaries: this test runs from `target/*/deps/`,
/// and `cargo test` builds the binaries one level up.
fn binaries() -> PathBuf {
    let exe = std::env::current_exe().expect("the test knows its own path");
    exe.parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/*/deps")
        .to_path_buf()
}

/// Runs `tests/netns.sh` for `lessons`, expecting `checks` passes.
fn across_namespaces(lessons: &[&str], checks: usize) {
    let bin = binaries();
    if !lessons.iter().all(|lesson| bin.join(lesson).exists()) {
        eprintln!(
            "skipped: lesson binaries not built in {} (run `cargo test` at the workspace root)",
            bin.display()
        );
        return;
    }
    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/netns.sh");
    let run = Command::new("bash")
        .arg(script)
        .arg(&bin)
        .args(lessons)
        .output()
        .expect("bash runs tests/netns.sh");
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    eprintln!("{out}{err}");
    assert!(run.status.success(), "tests/netns.sh failed:\n{out}{err}");
    assert!(
        out.starts_with("skipped: ") || out.contains(&format!("netns: {checks} passed, 0 failed")),
        "{out}"
    );
}

#[test]
fn every_lesson_but_the_sandbox_works_between_two_network_namespaces() {
    // basic: its check; the others: check, client, the client's address
    // logged; and lesson 3's per-address cap.
    let lessons = [
        "basic",
        "multiclients",
        "multiclients_threaded",
        "framed_header",
    ];
    across_namespaces(&lessons, 1 + 3 * 3 + 1);
}

#[test]
fn exercise_14_the_sandbox_works_between_two_network_namespaces() {
    across_namespaces(&["sandbox"], 3);
}
