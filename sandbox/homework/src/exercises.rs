//! The exercises: their list, where each one's guide and code are, and
//! the hints, read from `sandbox/homework/HINTS.md`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context as _, bail};

/// The exercises' guide, relative to the workspace root.
pub const EXERCISES_FILE: &str = "sandbox/EXERCISES.md";

/// The hints, one `## Exercise N: title` section each, kept out of the
/// guide so that `hint` can show them one step at a time.
pub const HINTS_FILE: &str = "sandbox/homework/HINTS.md";

/// The exercises' tests, and the helpers they share: grading always uses
/// the instructor's copy of these.
pub const TESTS_FILE: &str = "sandbox/tests/exercises.rs";
pub const TESTS_COMMON: &str = "sandbox/tests/common";

/// One exercise: its number, its title (the heading in `EXERCISES.md`),
/// where its `// TODO:` is, the socket concept it teaches, and how hard it
/// is (1 to 5; 1 is a warm-up).
#[derive(Debug)]
pub struct Exercise {
    pub number: u32,
    pub title: &'static str,
    pub code: &'static str,
    pub concept: &'static str,
    pub difficulty: u8,
}

impl Exercise {
    /// Every test of this exercise starts with this: `exercise_03_`.
    pub fn test_prefix(&self) -> String {
        format!("exercise_{:02}_", self.number)
    }

    /// The exercise's heading in `EXERCISES.md`.
    pub fn heading(&self) -> String {
        format!("## Exercise {}: {}", self.number, self.title)
    }

    /// Where the goal and hints are: the file and the heading's anchor.
    pub fn hint_location(&self) -> String {
        format!("{EXERCISES_FILE}#{}", anchor(&self.heading()[3..]))
    }
}

/// A heading's anchor as GitHub makes it: lowercase, punctuation dropped,
/// spaces as hyphens.
fn anchor(heading: &str) -> String {
    heading
        .to_lowercase()
        .chars()
        .filter(|c| c.is_alphanumeric() || *c == ' ' || *c == '-' || *c == '_')
        .map(|c| if c == ' ' { '-' } else { c })
        .collect()
}

/// The exercises, in the order they are meant to be done.
pub const EXERCISES: &[Exercise] = &[
    Exercise {
        number: 1,
        title: "a connect timeout",
        code: "sandbox/src/client.rs, connect_with_timeout",
        concept: "connect with a timeout (socket2)",
        difficulty: 2,
    },
    Exercise {
        number: 2,
        title: "a read timeout that says so",
        code: "sandbox/src/client.rs, is_timeout and print_replies",
        concept: "read timeouts: WouldBlock on Unix, TimedOut on Windows",
        difficulty: 2,
    },
    Exercise {
        number: 3,
        title: "reconnect with backoff",
        code: "sandbox/src/client.rs, backoff and connect_with_retry",
        concept: "reconnecting with exponential backoff",
        difficulty: 2,
    },
    Exercise {
        number: 4,
        title: "accept until WouldBlock",
        code: "sandbox/src/naive.rs, accept_all",
        concept: "non-blocking accept until WouldBlock",
        difficulty: 3,
    },
    Exercise {
        number: 5,
        title: "an idle timeout",
        code: "sandbox/src/room.rs, Room::expire_idle",
        concept: "timers in an event loop: idle deadlines",
        difficulty: 3,
    },
    Exercise {
        number: 6,
        title: "a full room",
        code: "sandbox/src/room.rs, Room::is_full and Room::refuse",
        concept: "refusing a client with a reason",
        difficulty: 2,
    },
    Exercise {
        number: 7,
        title: "an action with /me",
        code: "sandbox/src/room.rs, Room::act",
        concept: "warm-up: a command in the chat protocol",
        difficulty: 1,
    },
    Exercise {
        number: 8,
        title: "a private message with /msg",
        code: "sandbox/src/room.rs, Room::whisper",
        concept: "warm-up: addressing one client",
        difficulty: 1,
    },
    Exercise {
        number: 9,
        title: "length-prefixed framing",
        code: "sandbox/src/framing.rs, FrameBuffer::next_frame",
        concept: "framing a byte stream with a length prefix",
        difficulty: 3,
    },
    Exercise {
        number: 10,
        title: "a send queue on a non-blocking socket",
        code: "sandbox/src/send_queue.rs, SendQueue::write_to",
        concept: "partial writes, the send buffer, waiting for writability",
        difficulty: 4,
    },
    Exercise {
        number: 11,
        title: "half-close versus reset",
        code: "sandbox/src/closing.rs, finish_sending and abort",
        concept: "shutdown(Write) and FIN versus SO_LINGER 0 and RST",
        difficulty: 3,
    },
    Exercise {
        number: 12,
        title: "a write timeout and keepalive",
        code: "sandbox/src/liveness.rs, configure and send",
        concept: "SO_SNDTIMEO and TCP keepalive: peers that stop reading or vanish",
        difficulty: 3,
    },
    Exercise {
        number: 13,
        title: "a UDP request that survives loss",
        code: "sandbox/src/datagram.rs, Requester::request and Requester::wait_for_ack",
        concept: "datagrams: timeouts, retries with backoff, sequence numbers",
        difficulty: 4,
    },
    Exercise {
        number: 14,
        title: "back-pressure",
        code: "sandbox/src/room.rs, Books::update_behind and Room::holding_input",
        concept: "back-pressure: stop reading senders while a recipient is behind",
        difficulty: 4,
    },
    Exercise {
        number: 15,
        title: "graceful shutdown on Ctrl-C",
        code: "sandbox/src/room.rs, Room::shut_down",
        concept: "graceful shutdown: stop accepting, tell, flush, close gently, exit 0",
        difficulty: 4,
    },
];

/// Finds the workspace root for a student working in it: the nearest
/// folder, from `start` upwards, whose `Cargo.toml` declares `[workspace]`
/// (a comment after it allowed). Grading never searches upwards: see the
/// grader's `locate`.
pub fn find_workspace(start: &Path) -> anyhow::Result<PathBuf> {
    let start = start
        .canonicalize()
        .with_context(|| format!("no folder {}", start.display()))?;
    for folder in start.ancestors() {
        let manifest = fs::read_to_string(folder.join("Cargo.toml")).unwrap_or_default();
        if declares_workspace(&manifest) {
            return Ok(folder.to_path_buf());
        }
    }
    bail!(
        "{} is not inside the socket lessons workspace (run this from the workspace folder)",
        start.display()
    )
}

/// Whether a manifest has a `[workspace]` table: the line may carry spaces
/// and a `# comment`.
pub fn declares_workspace(manifest: &str) -> bool {
    manifest
        .lines()
        .any(|line| line.split('#').next().unwrap_or("").trim() == "[workspace]")
}

/// Looks an exercise up by number.
pub fn exercise(number: u32) -> anyhow::Result<&'static Exercise> {
    EXERCISES
        .iter()
        .find(|exercise| exercise.number == number)
        .with_context(|| {
            format!(
                "there is no exercise {number}; they are numbered 1 to {}",
                EXERCISES.len()
            )
        })
}

/// Hint `step` (from 1) of an exercise, read from its section of the hints file:
/// the text of its `<details><summary>Hint N</summary>` block.
pub fn hint(workspace: &Path, number: u32, step: usize) -> anyhow::Result<String> {
    let exercise = exercise(number)?;
    let hints_file = fs::read_to_string(workspace.join(HINTS_FILE))
        .with_context(|| format!("cannot read {HINTS_FILE}"))?;
    let section = hints_file
        .split("\n## ")
        .find(|section| section.starts_with(&exercise.heading()[3..]))
        .with_context(|| format!("no section `{}` in {HINTS_FILE}", exercise.heading()))?;
    let hints: Vec<&str> = section.split("<summary>Hint ").skip(1).collect();
    let Some(text) = hints.get(step.wrapping_sub(1)) else {
        bail!("exercise {number} has hints 1 to {}", hints.len());
    };
    let body = text.split_once("</summary>").map_or("", |(_, body)| body);
    let body = body.split("</details>").next().unwrap_or("").trim();
    let more = if step < hints.len() {
        format!(
            "\n\n(more: cargo run -p homework -- hint {number} --step {})",
            step + 1
        )
    } else {
        String::new()
    };
    Ok(format!(
        "exercise {number}, hint {step} of {}:\n\n{body}{more}\n",
        hints.len()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anchors_follow_github() {
        assert_eq!(
            anchor("Exercise 3: an idle timeout"),
            "exercise-3-an-idle-timeout"
        );
        assert_eq!(
            anchor("Exercise 10: `/me`, an action"),
            "exercise-10-me-an-action"
        );
    }

    #[test]
    fn a_workspace_line_may_carry_a_comment() {
        assert!(declares_workspace("[package]\n[workspace] # mine\n"));
        assert!(declares_workspace("  [workspace]\n"));
        assert!(!declares_workspace("[workspace.package]\n# [workspace]\n"));
    }

    #[test]
    fn every_exercise_is_numbered_in_order() {
        for (index, exercise) in EXERCISES.iter().enumerate() {
            assert_eq!(exercise.number as usize, index + 1);
        }
    }
}
