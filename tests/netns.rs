//! Every lesson across a virtual network: `tests/netns.sh` runs each lesson's
//! server in one network namespace and its `check` and `client` in another,
//! joined by a veth pair. Where that cannot run (not Linux, not root, no
//! `ip`), the script says why and the test passes as skipped.

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

#[test]
fn every_lesson_works_between_two_network_namespaces() {
    let bin = binaries();
    if !bin.join("sandbox").exists() {
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
        .output()
        .expect("bash runs tests/netns.sh");
    let out = String::from_utf8_lossy(&run.stdout);
    let err = String::from_utf8_lossy(&run.stderr);
    eprintln!("{out}{err}");
    assert!(run.status.success(), "tests/netns.sh failed:\n{out}{err}");
    assert!(
        out.starts_with("skipped: ") || out.contains("netns: 14 passed, 0 failed"),
        "{out}"
    );
}
