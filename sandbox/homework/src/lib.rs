//! Lesson 5's homework, as a tool beside the lesson (not part of it): the
//! exercises' list and hints, the student regions a copy is written in,
//! `progress` and `reset` for students, and the small harness the exercise
//! tests use so that a grader can trust their verdict.
//!
//! `cargo run -p homework -- --help` lists the commands; `sandbox/README.md`
//! explains them.
//!
//! - [`exercises`]: the list, where each one's guide and code are, hints.
//! - [`markers`]: solution regions in the reference, student regions in a copy.
//! - [`files`]: walking a workspace, and what changed since it was handed out.
//! - [`progress`]: builds and runs the exercise tests, says what is done.
//! - [`verdict`]: how a test tells the grader it passed, in a way the code
//!   under test cannot imitate.

pub mod exercises;
pub mod files;
pub mod markers;
pub mod progress;
pub mod verdict;

pub use exercises::{EXERCISES, Exercise, exercise};
