//! How an exercise test tells the grader "I passed" in a way the code under
//! test cannot imitate.
//!
//! Printing `test ... ok` or exiting with status 0 proves nothing: the
//! student's code runs in the same process and can do both. So the grader
//! runs each test as its own process, in a folder where it left a fresh
//! random key ([`KEY_FILE`]). The test's wrapper reads that key and deletes
//! the file *before* any student code runs (the tests call no student code
//! before it, and Rust runs no code before `main` without `unsafe`, which
//! grading forbids); only after the test's assertions all held does it write
//! the key back as [`VERDICT_FILE`]. The grader counts a pass only when that
//! file holds the key it made for this run.
//!
//! What student code could still do is read its own process's memory (for
//! example `/proc/self/mem` on Linux) to find the key: the grader flags any
//! region that touches files, the environment or other processes, so that a
//! person looks at it.

use std::fs;

/// The key's file, in the test's working folder; deleted once read.
pub const KEY_FILE: &str = ".grading-key";

/// Where a test that passed writes the key back.
pub const VERDICT_FILE: &str = ".grading-verdict";

/// Takes the grader's key, if this run is graded: reads it, then deletes the
/// file so that nothing running later in this process can read it there.
pub fn take_key() -> Option<String> {
    let key = fs::read_to_string(KEY_FILE).ok()?;
    let _ = fs::remove_file(KEY_FILE);
    Some(key)
}

/// Tells the grader the test passed (call only once every assertion held).
pub fn record_pass(key: &str) {
    // If this fails, the grader sees no verdict and counts a failure: safe.
    let _ = fs::write(VERDICT_FILE, key);
}
