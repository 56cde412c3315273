//! Solution regions, and the two ways of rewriting them.
//!
//! In the reference code, each exercise's answer sits between markers:
//!
//! ```text
//!     // TODO: exercise 3: ...what to do, as the student sees it...
//!     // BEGIN SOLUTION exercise 3
//!     ...the reference answer...
//!     // STUB: Vec::new()
//!     // END SOLUTION exercise 3
//! ```
//!
//! The student copy replaces the whole region by the `// STUB:` lines (or, if
//! there are none, by a `todo!` naming the exercise), between two lines that
//! mark where the student writes: those *student regions* are all that
//! grading takes from a submission. `verify` also makes copies with one
//! exercise's answer in its student region, as a student who solved it
//! would hand it in.
//!
//! Lines between `// BEGIN INSTRUCTOR` and `// END INSTRUCTOR` (`#` in TOML,
//! `<!-- ... -->` in Markdown) are dropped from the student copy: the
//! grader's subcommands, the README's instructor section.

use std::fmt;

/// What to do with one exercise's regions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Keep {
    /// Replace the answer by its stub.
    Stub,
    /// Keep the answer, drop the markers.
    Solution,
    /// The answer between the student's lines, as a student hands it in.
    Answer,
}

/// A malformed region, with its line number (from 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MarkerError {
    pub line: usize,
    pub problem: String,
}

impl fmt::Display for MarkerError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.problem)
    }
}

const BEGIN: &str = "// BEGIN SOLUTION exercise ";
const END: &str = "// END SOLUTION exercise ";
const STUB: &str = "// STUB:";

/// The line that opens the student's part in the copy (`reset` finds it).
pub fn student_start(number: u32) -> String {
    format!("// ----- exercise {number}: your code starts here -----")
}

/// The line that closes the student's part in the copy.
pub fn student_end(number: u32) -> String {
    format!("// ----- exercise {number}: your code ends here -----")
}

/// Whether `source` holds any solution region.
pub fn has_solutions(source: &str) -> bool {
    source
        .lines()
        .any(|line| line.trim_start().starts_with(BEGIN))
}

/// Whether any line of `source` is a marker (begin, end or stub): in the
/// student copy, none may be left. Only whole marker lines count, so that
/// this tool's own documentation of the markers is not mistaken for one.
pub fn has_markers(source: &str) -> bool {
    source
        .lines()
        .map(str::trim_start)
        .any(|line| [BEGIN, END, STUB].iter().any(|m| line.starts_with(m)))
}

/// The exercise numbers whose regions appear in `source`, in order.
pub fn exercises_in(source: &str) -> Vec<u32> {
    source
        .lines()
        .filter_map(|line| line.trim().strip_prefix(BEGIN)?.trim().parse().ok())
        .collect()
}

/// Rewrites every region in `source`, asking `keep` what to do with each
/// exercise number.
pub fn rewrite(source: &str, keep: impl Fn(u32) -> Keep) -> Result<String, MarkerError> {
    let mut out = String::with_capacity(source.len());
    let mut region: Option<Region> = None;
    for (index, line) in source.lines().enumerate() {
        let at = index + 1;
        let trimmed = line.trim_start();
        match region.as_mut() {
            None if trimmed.starts_with(BEGIN) => region = Some(Region::open(line, at)?),
            None if trimmed.starts_with(END) || trimmed.starts_with(STUB) => {
                return Err(MarkerError {
                    line: at,
                    problem: "marker outside a solution region".into(),
                });
            }
            None => push_line(&mut out, line),
            Some(open) if trimmed.starts_with(END) => {
                open.close(trimmed, at)?;
                out.push_str(&open.render(keep(open.number)));
                region = None;
            }
            Some(_) if trimmed.starts_with(BEGIN) => {
                return Err(MarkerError {
                    line: at,
                    problem: "solution regions cannot nest".into(),
                });
            }
            Some(open) => open.take(line),
        }
    }
    match region {
        Some(open) => Err(MarkerError {
            line: open.line,
            problem: "region is never closed".into(),
        }),
        None => Ok(out),
    }
}

fn push_line(out: &mut String, line: &str) {
    out.push_str(line);
    out.push('\n');
}

/// One `BEGIN SOLUTION` ... `END SOLUTION` region being read.
struct Region {
    number: u32,
    indent: String,
    line: usize,
    solution: Vec<String>,
    stub: Vec<String>,
}

impl Region {
    fn open(line: &str, at: usize) -> Result<Region, MarkerError> {
        let trimmed = line.trim_start();
        let number = trimmed[BEGIN.len()..]
            .trim()
            .parse()
            .map_err(|_| MarkerError {
                line: at,
                problem: format!("expected `{BEGIN}N`"),
            })?;
        let indent = line[..line.len() - trimmed.len()].to_string();
        Ok(Region {
            number,
            indent,
            line: at,
            solution: Vec::new(),
            stub: Vec::new(),
        })
    }

    fn take(&mut self, line: &str) {
        match line.trim_start().strip_prefix(STUB) {
            Some(stub) => self
                .stub
                .push(format!("{}{}", self.indent, stub.trim_start())),
            None => self.solution.push(line.to_string()),
        }
    }

    fn close(&self, trimmed: &str, at: usize) -> Result<(), MarkerError> {
        match trimmed[END.len()..].trim().parse::<u32>() {
            Ok(number) if number == self.number => Ok(()),
            _ => Err(MarkerError {
                line: at,
                problem: format!(
                    "expected `{END}{}` (opened at line {})",
                    self.number, self.line
                ),
            }),
        }
    }

    fn render(&self, keep: Keep) -> String {
        let mut out = String::new();
        match keep {
            Keep::Solution => self
                .solution
                .iter()
                .for_each(|line| push_line(&mut out, line)),
            Keep::Answer => {
                push_line(
                    &mut out,
                    &format!("{}{}", self.indent, student_start(self.number)),
                );
                for line in &self.solution {
                    push_line(&mut out, line);
                }
                push_line(
                    &mut out,
                    &format!("{}{}", self.indent, student_end(self.number)),
                );
            }
            Keep::Stub => {
                push_line(
                    &mut out,
                    &format!("{}{}", self.indent, student_start(self.number)),
                );
                for line in &self.stub {
                    push_line(&mut out, line);
                }
                if self.stub.is_empty() {
                    let todo = format!(
                        "todo!(\"exercise {}: see sandbox/EXERCISES.md\")",
                        self.number
                    );
                    push_line(&mut out, &format!("{}{todo}", self.indent));
                }
                push_line(
                    &mut out,
                    &format!("{}{}", self.indent, student_end(self.number)),
                );
            }
        }
        out
    }
}

/// Replaces every student part of exercise `number` in `current` (an
/// exercise may have several) by the same part of `pristine`, the file as
/// the student copy first had it. `None` if the file has no such part.
pub fn reset(current: &str, pristine: &str, number: u32) -> Option<String> {
    let originals = spans(pristine, number);
    let parts = spans(current, number);
    if parts.is_empty() || parts.len() != originals.len() {
        return None;
    }
    let mut out = String::with_capacity(current.len());
    let mut copied_up_to = 0;
    for ((start, end), (from, to)) in parts.into_iter().zip(originals) {
        out.push_str(&current[copied_up_to..start]);
        out.push_str(&pristine[from..to]);
        copied_up_to = end;
    }
    out.push_str(&current[copied_up_to..]);
    Some(out)
}

/// The exercise numbers that have a student region in `source` (each
/// once, in order of first appearance).
pub fn student_exercises(source: &str) -> Vec<u32> {
    let mut numbers = Vec::new();
    for line in source.lines() {
        let Some(rest) = line.trim().strip_prefix("// ----- exercise ") else {
            continue;
        };
        let Some((number, tail)) = rest.split_once(':') else {
            continue;
        };
        if tail.trim() != "your code starts here -----" {
            continue;
        }
        if let Ok(number) = number.parse::<u32>()
            && !numbers.contains(&number)
        {
            numbers.push(number);
        }
    }
    numbers
}

/// Lines that open and close a part of a file kept from the student copy,
/// in each file type's comment syntax.
const INSTRUCTOR_BEGIN: [&str; 3] = [
    "// BEGIN INSTRUCTOR",
    "# BEGIN INSTRUCTOR",
    "<!-- BEGIN INSTRUCTOR -->",
];
const INSTRUCTOR_END: [&str; 3] = [
    "// END INSTRUCTOR",
    "# END INSTRUCTOR",
    "<!-- END INSTRUCTOR -->",
];

/// Whether `source` has an instructor-only part.
pub fn has_instructor_parts(source: &str) -> bool {
    source
        .lines()
        .any(|line| INSTRUCTOR_BEGIN.contains(&line.trim()))
}

/// `source` without its instructor-only parts (markers included).
pub fn drop_instructor_parts(source: &str) -> Result<String, MarkerError> {
    let mut out = String::with_capacity(source.len());
    let mut opened_at = None;
    let mut just_closed = false;
    for (index, line) in source.lines().enumerate() {
        let trimmed = line.trim();
        // No double blank line where a part was.
        if std::mem::take(&mut just_closed) && trimmed.is_empty() && out.ends_with("\n\n") {
            continue;
        }
        match opened_at {
            None if INSTRUCTOR_BEGIN.contains(&trimmed) => opened_at = Some(index + 1),
            None if INSTRUCTOR_END.contains(&trimmed) => {
                return Err(MarkerError {
                    line: index + 1,
                    problem: "END INSTRUCTOR without a BEGIN".into(),
                });
            }
            None => push_line(&mut out, line),
            Some(_) if INSTRUCTOR_END.contains(&trimmed) => {
                opened_at = None;
                just_closed = true;
            }
            Some(_) => {}
        }
    }
    match opened_at {
        Some(line) => Err(MarkerError {
            line,
            problem: "instructor part is never closed".into(),
        }),
        None => Ok(out),
    }
}

/// The byte ranges strictly between each pair of the student's start and
/// end lines for exercise `number`, in order: what a student wrote.
pub fn spans(source: &str, number: u32) -> Vec<(usize, usize)> {
    let (start_marker, end_marker) = (student_start(number), student_end(number));
    let mut found = Vec::new();
    let mut from = 0;
    while let Some(at) = source[from..].find(&start_marker) {
        let Some(line_end) = source[from + at..].find('\n') else {
            break;
        };
        let start = from + at + line_end + 1;
        let Some(end_at) = source[start..].find(&end_marker) else {
            break;
        };
        // Back to the start of the end marker's line (keep its indentation).
        let end = source[..start + end_at]
            .rfind('\n')
            .map_or(start, |newline| (newline + 1).max(start));
        found.push((start, end));
        from = start + end_at + end_marker.len();
    }
    found
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Fixtures write `@` for `//`: a marker line in this file would itself
    /// be rewritten in the student copy.
    fn fixture(text: &str) -> String {
        text.replace('@', "//")
    }

    const REFERENCE: &str = "\
fn deadline() -> u32 {
    @ TODO: exercise 2: return the deadline
    @ BEGIN SOLUTION exercise 2
    let secs = 30;
    secs
    @ STUB: 0
    @ END SOLUTION exercise 2
}
";

    #[test]
    fn a_stubbed_region_keeps_only_the_stub_between_student_markers() {
        let copy = rewrite(&fixture(REFERENCE), |_| Keep::Stub).unwrap();
        assert_eq!(
            copy,
            "\
fn deadline() -> u32 {
    // TODO: exercise 2: return the deadline
    // ----- exercise 2: your code starts here -----
    0
    // ----- exercise 2: your code ends here -----
}
"
        );
        assert!(!copy.contains("SOLUTION") && !copy.contains("secs"));
    }

    #[test]
    fn a_kept_region_loses_only_its_markers() {
        let copy = rewrite(&fixture(REFERENCE), |_| Keep::Solution).unwrap();
        assert!(copy.contains("    let secs = 30;\n    secs\n}"), "{copy}");
        assert!(!copy.contains("SOLUTION") && !copy.contains("STUB"));
    }

    #[test]
    fn a_region_without_a_stub_becomes_a_todo_naming_the_exercise() {
        let source = fixture("@ BEGIN SOLUTION exercise 7\nx()\n@ END SOLUTION exercise 7\n");
        let copy = rewrite(&source, |_| Keep::Stub).unwrap();
        assert!(
            copy.contains("todo!(\"exercise 7: see sandbox/EXERCISES.md\")"),
            "{copy}"
        );
    }

    #[test]
    fn malformed_regions_are_refused_with_their_line() {
        let unclosed = fixture("a\n@ BEGIN SOLUTION exercise 1\nb\n");
        assert_eq!(rewrite(&unclosed, |_| Keep::Stub).unwrap_err().line, 2);
        let mismatched = fixture("@ BEGIN SOLUTION exercise 1\n@ END SOLUTION exercise 2\n");
        assert_eq!(rewrite(&mismatched, |_| Keep::Stub).unwrap_err().line, 2);
        let stray = fixture("@ END SOLUTION exercise 1\n");
        assert_eq!(rewrite(&stray, |_| Keep::Stub).unwrap_err().line, 1);
    }

    #[test]
    fn documentation_of_the_markers_is_not_a_marker() {
        let docs = "//! write `// BEGIN SOLUTION exercise 3` above\nlet s = \"// STUB: x\";\n";
        assert!(!has_solutions(docs) && !has_markers(docs));
        assert!(has_markers(&fixture(REFERENCE)));
    }

    #[test]
    fn an_answer_sits_between_the_student_lines() {
        let copy = rewrite(&fixture(REFERENCE), |_| Keep::Answer).unwrap();
        let stub = rewrite(&fixture(REFERENCE), |_| Keep::Stub).unwrap();
        let (start, end) = spans(&copy, 2)[0];
        assert_eq!(&copy[start..end], "    let secs = 30;\n    secs\n");
        assert_eq!(student_exercises(&copy), vec![2]);
        assert_eq!(student_exercises(&stub), vec![2]);
    }

    #[test]
    fn instructor_parts_are_dropped_with_their_markers() {
        let source = "a\n  // BEGIN INSTRUCTOR\nsecret\n  // END INSTRUCTOR\nb\n<!-- BEGIN INSTRUCTOR -->\nx\n<!-- END INSTRUCTOR -->\n";
        assert!(has_instructor_parts(source));
        assert_eq!(drop_instructor_parts(source).unwrap(), "a\nb\n");
        let spaced = "a\n\n# BEGIN INSTRUCTOR\nx\n# END INSTRUCTOR\n\nb\n";
        assert_eq!(drop_instructor_parts(spaced).unwrap(), "a\n\nb\n");
        assert_eq!(
            drop_instructor_parts("# BEGIN INSTRUCTOR\n")
                .unwrap_err()
                .line,
            1
        );
    }

    #[test]
    fn exercises_are_listed_in_order() {
        assert_eq!(exercises_in(&fixture(REFERENCE)), vec![2]);
    }

    #[test]
    fn reset_puts_back_the_stub_and_nothing_else() {
        let pristine = rewrite(&fixture(REFERENCE), |_| Keep::Stub).unwrap();
        let worked_on = pristine.replace("    0\n", "    let x = 1;\n    x + 1\n");
        assert_eq!(reset(&worked_on, &pristine, 2).unwrap(), pristine);
        assert_eq!(reset(&worked_on, &pristine, 9), None);
    }

    #[test]
    fn reset_puts_back_every_part_of_an_exercise() {
        let two_parts = fixture(
            "a\n@ BEGIN SOLUTION exercise 4\nx\n@ STUB: 1\n@ END SOLUTION exercise 4\n\
             b\n@ BEGIN SOLUTION exercise 4\ny\n@ STUB: 2\n@ END SOLUTION exercise 4\nc\n",
        );
        let pristine = rewrite(&two_parts, |_| Keep::Stub).unwrap();
        let worked_on = pristine
            .replace("\n1\n", "\nmine\n")
            .replace("\n2\n", "\nmine too\n");
        assert_ne!(worked_on, pristine);
        assert_eq!(reset(&worked_on, &pristine, 4).unwrap(), pristine);
    }
}
