//! Grade sheets: text for a person, CSV for a spreadsheet, JSON for a script.

use super::grade::Graded;
use crate::progress::json_string;

/// The CSV header: one row per student per exercise.
pub const CSV_HEADER: &str =
    "student,exercise,title,passed,tests_passed,tests_total,detail,flags,tamper,seconds\n";

/// One student's CSV rows (no header).
pub fn csv_rows(graded: &Graded) -> String {
    let tamper = tamper_list(graded);
    graded
        .rows
        .iter()
        .map(|row| {
            let fields = [
                csv_field(&graded.student),
                row.exercise.number.to_string(),
                csv_field(row.exercise.title),
                row.passed.to_string(),
                row.tests_passed.to_string(),
                row.tests_total.to_string(),
                csv_field(&row.detail),
                csv_field(&row.flags.join("; ")),
                csv_field(&tamper),
                format!("{:.1}", graded.seconds),
            ];
            fields.join(",") + "\n"
        })
        .collect()
}

fn tamper_list(graded: &Graded) -> String {
    let changes: Vec<String> = graded.tamper.iter().map(ToString::to_string).collect();
    changes.join("; ")
}

/// A person's report for one student.
pub fn text(graded: &Graded) -> String {
    let mut out = format!(
        "{}: {}/{}\n",
        graded.student,
        graded.score(),
        graded.rows.len()
    );
    for row in &graded.rows {
        let mark = if row.passed { "pass" } else { "FAIL" };
        out.push_str(&format!(
            "{mark}  exercise {}: {} ({})\n",
            row.exercise.number, row.exercise.title, row.detail
        ));
        for flag in &row.flags {
            out.push_str(&format!("      flagged: {flag}: read this region\n"));
        }
    }
    if !graded.tamper.is_empty() {
        out.push_str(
            "files changed outside the regions (not graded; the handed-out ones were used):\n",
        );
        for change in &graded.tamper {
            out.push_str(&format!("  {change}\n"));
        }
    }
    out
}

/// One JSON object for one student.
pub fn json(graded: &Graded) -> String {
    let rows: Vec<String> = graded
        .rows
        .iter()
        .map(|row| {
            let flags: Vec<String> = row.flags.iter().map(|flag| json_string(flag)).collect();
            format!(
                "{{\"number\":{},\"title\":{},\"passed\":{},\"tests_passed\":{},\"tests_total\":{},\"detail\":{},\"flags\":[{}]}}",
                row.exercise.number,
                json_string(row.exercise.title),
                row.passed,
                row.tests_passed,
                row.tests_total,
                json_string(&row.detail),
                flags.join(",")
            )
        })
        .collect();
    let tamper: Vec<String> = graded
        .tamper
        .iter()
        .map(|change| {
            format!(
                "{{\"path\":{},\"how\":{}}}",
                json_string(&change.path),
                json_string(change.how)
            )
        })
        .collect();
    format!(
        "{{\"student\":{},\"score\":{},\"total\":{},\"seconds\":{:.1},\"exercises\":[{}],\"tamper\":[{}]}}\n",
        json_string(&graded.student),
        graded.score(),
        graded.rows.len(),
        graded.seconds,
        rows.join(","),
        tamper.join(",")
    )
}

/// A CSV field, always quoted; a leading `=`, `+`, `-` or `@` gets a `'`
/// so that a spreadsheet does not run a student's text as a formula.
fn csv_field(text: &str) -> String {
    let guarded = match text.starts_with(['=', '+', '-', '@']) {
        true => format!("'{text}"),
        false => text.to_string(),
    };
    format!("\"{}\"", guarded.replace('"', "\"\""))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_strings_are_escaped() {
        assert_eq!(json_string("a\"b\\c\n"), r#""a\"b\\c\u000a""#);
    }

    #[test]
    fn csv_fields_are_quoted_and_never_formulas() {
        assert_eq!(csv_field("say \"hi\", then"), r#""say ""hi"", then""#);
        assert_eq!(csv_field("=HYPERLINK(1)"), r#""'=HYPERLINK(1)""#);
    }
}
