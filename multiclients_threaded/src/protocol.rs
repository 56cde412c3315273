//! The chat protocol of `../shared/CONTRACT.md`, as pure functions: no
//! sockets here, so it is tested on its own, and lesson `sandbox` serves the
//! very same protocol from one thread by reusing this module.
//!
//! | direction        | line                  | meaning                          |
//! |------------------|-----------------------|----------------------------------|
//! | client -> server | `TEXT`                | say TEXT to everyone else        |
//! | client -> server | `/nick NAME`          | rename (names are unique)        |
//! | client -> server | `/who`                | list the names present           |
//! | client -> server | `/quit`               | leave                            |
//! | server -> client | `NAME: TEXT`          | NAME said TEXT                   |
//! | server -> client | `* NOTICE`            | from the server: joins, errors   |
//!
//! Every line is UTF-8 and ends in `\n`; a `\r\n` ending (telnet, Windows
//! `nc`) is accepted too. Bytes that are not UTF-8 are *replaced* by `U+FFFD`
//! rather than rejected: one bad byte should not cost a user their message,
//! and the replacement character shows everyone that something was lost.
//!
//! Text is *cleaned* before it is relayed ([`clean_text`]): a control
//! character (ESC starts terminal escape sequences, CR returns the cursor to
//! the start of the line, NUL, BEL...) or a bidirectional override (U+202E
//! turns the rest of a line around) would act on every other user's
//! terminal. A user could clear their screens, or write `\r` and then
//! `bob: ...` over the `ann: ` that the server put in front, forging a line.
//! Cleaned, each shows as a visible escape (`\u{1b}`) instead. Names may
//! hold none of them ([`check_name`]) and are compared without case
//! ([`name_key`]), so `Bob` cannot pose as `bob`.

use std::borrow::Cow;
use std::fmt;

/// The longest line a client may send, in bytes, not counting `\r\n`. A
/// longer line is refused, so a client cannot make the server buffer
/// without limit.
pub const MAX_LINE_BYTES: usize = 4096;

/// The longest name, in characters.
pub const MAX_NAME_CHARS: usize = 24;

/// What one line from a client asks for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Request<'a> {
    /// Plain text for everyone else.
    Say(&'a str),
    /// `/nick NAME`.
    Nick(&'a str),
    /// `/who`.
    Who,
    /// `/quit`.
    Quit,
    /// A `/command` we do not know.
    Unknown(&'a str),
}

/// Reads one line (already without its line ending) as a request.
pub fn parse(line: &str) -> Request<'_> {
    let Some(command) = line.strip_prefix('/') else {
        return Request::Say(line);
    };
    let (verb, argument) = command.split_once(' ').unwrap_or((command, ""));
    match verb {
        "nick" => Request::Nick(argument.trim()),
        "who" => Request::Who,
        "quit" => Request::Quit,
        _ => Request::Unknown(line),
    }
}

/// Drops the line ending (`\n` or `\r\n`) and decodes the rest as UTF-8,
/// replacing bytes that are not UTF-8 by `U+FFFD`.
pub fn decode_line(raw: &[u8]) -> Cow<'_, str> {
    let line = raw.strip_suffix(b"\n").unwrap_or(raw);
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    String::from_utf8_lossy(line)
}

/// Whether `c` would act on a terminal instead of showing as a character:
/// C0 and C1 control characters (ESC, CR, NUL, DEL, ...), and the invisible
/// formatting characters that reorder or hide text (bidirectional overrides
/// and isolates such as U+202E, zero-width characters, the BOM).
pub fn is_unsafe_char(c: char) -> bool {
    c.is_control()
        || matches!(
            c,
            '\u{200b}'..='\u{200f}' // zero-width space/joiners, LRM, RLM
                | '\u{202a}'..='\u{202e}' // bidi embeddings and overrides
                | '\u{2060}'..='\u{2069}' // word joiner, bidi isolates
                | '\u{061c}' // Arabic letter mark
                | '\u{feff}' // zero-width no-break space (BOM)
        )
}

/// Text as it may be relayed: each character that [`is_unsafe_char`] is
/// shown as an escape (`\u{1b}`), a tab as a space. Borrows when the text
/// is clean already, which is nearly always.
pub fn clean_text(text: &str) -> Cow<'_, str> {
    if !text.chars().any(is_unsafe_char) {
        return Cow::Borrowed(text);
    }
    let mut clean = String::with_capacity(text.len() + 8);
    for c in text.chars() {
        match c {
            '\t' => clean.push(' '),
            c if is_unsafe_char(c) => clean.extend(c.escape_unicode()),
            c => clean.push(c),
        }
    }
    Cow::Owned(clean)
}

/// Received bytes as a terminal may show them: like [`clean_text`], but
/// keeping `\n` (and tabs), for a client printing what arrives in pieces.
/// Bytes at the end that may begin a UTF-8 character cut by the read are
/// left in `pending` for the next call.
#[derive(Debug, Default)]
pub struct SafeDisplay {
    pending: Vec<u8>,
}

impl SafeDisplay {
    /// Appends the displayable form of `bytes` (after what was pending) to `out`.
    pub fn push(&mut self, bytes: &[u8], out: &mut String) {
        self.pending.extend_from_slice(bytes);
        let input = std::mem::take(&mut self.pending);
        let mut chunks = input.utf8_chunks().peekable();
        while let Some(chunk) = chunks.next() {
            for c in chunk.valid().chars() {
                match c {
                    '\n' | '\t' => out.push(c),
                    c if is_unsafe_char(c) => out.extend(c.escape_unicode()),
                    c => out.push(c),
                }
            }
            let invalid = chunk.invalid();
            let last = chunks.peek().is_none();
            // An invalid tail of under 4 bytes may be a character whose
            // rest is in the next read: keep it. Elsewhere it is garbage.
            if last && !invalid.is_empty() && input.ends_with(invalid) && invalid.len() < 4 {
                self.pending.extend_from_slice(invalid);
            } else if !invalid.is_empty() {
                out.push(char::REPLACEMENT_CHARACTER);
            }
        }
    }
}

/// The form of a name used to tell names apart: `Bob`, `BOB` and `bob` are
/// one name, so that nobody can pass for someone else by case alone.
pub fn name_key(name: &str) -> String {
    name.to_lowercase()
}

/// Why a name was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NameError {
    Empty,
    TooLong,
    /// Whitespace, control and formatting characters ([`is_unsafe_char`])
    /// and `:` are not allowed: a name with
    /// `:` would make `NAME: TEXT` ambiguous. `*` and `/` may not start one,
    /// so that a name can never pass for a notice or a command.
    BadChar(char),
    Taken,
}

impl fmt::Display for NameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            NameError::Empty => write!(f, "a name cannot be empty"),
            NameError::TooLong => write!(f, "a name has at most {MAX_NAME_CHARS} characters"),
            NameError::BadChar(c) => write!(f, "a name cannot contain {c:?}"),
            NameError::Taken => write!(f, "that name is taken"),
        }
    }
}

/// Checks the form of a name (not whether it is taken: that needs the room).
pub fn check_name(name: &str) -> Result<(), NameError> {
    if name.is_empty() {
        return Err(NameError::Empty);
    }
    if name.chars().count() > MAX_NAME_CHARS {
        return Err(NameError::TooLong);
    }
    if let Some(first @ ('*' | '/')) = name.chars().next() {
        return Err(NameError::BadChar(first));
    }
    match name
        .chars()
        .find(|c| c.is_whitespace() || is_unsafe_char(*c) || *c == ':')
    {
        Some(bad) => Err(NameError::BadChar(bad)),
        None => Ok(()),
    }
}

/// The default name of the `n`th client to connect. The server still checks
/// it is free, since someone may have taken it with `/nick`.
pub fn default_name(n: u64) -> String {
    format!("guest{n}")
}

/// `NAME: TEXT\n`, the line everyone else receives, with TEXT cleaned
/// ([`clean_text`]).
pub fn chat_line(name: &str, text: &str) -> String {
    format!("{name}: {}\n", clean_text(text))
}

/// Appends `NAME: TEXT\n` to `out`: [`chat_line`] for many lines into one
/// buffer, without a new `String` each.
pub fn push_chat_line(out: &mut String, name: &str, text: &str) {
    out.push_str(name);
    out.push_str(": ");
    out.push_str(&clean_text(text));
    out.push('\n');
}

/// `* TEXT\n`, a line from the server itself. Cleaned too, as a notice
/// may quote what a client sent.
pub fn notice(text: impl fmt::Display) -> String {
    format!("* {}\n", clean_text(&text.to_string()))
}

/// Assembles lines from bytes that arrive in pieces of any size, and never
/// holds more than one line's worth: a line longer than the limit is
/// reported as soon as the limit is passed, not when (if ever) it ends.
#[derive(Debug)]
pub struct LineBuffer {
    pending: Vec<u8>,
    /// How far `pending` was searched for `\n` already.
    scanned: usize,
    max_line_bytes: usize,
}

/// A line passed [`MAX_LINE_BYTES`] (or the buffer's own limit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LineTooLong;

impl LineBuffer {
    pub fn new(max_line_bytes: usize) -> Self {
        LineBuffer {
            pending: Vec::new(),
            scanned: 0,
            max_line_bytes,
        }
    }

    /// Adds bytes just read. Call [`next_line`](Self::next_line) until it
    /// returns `None` before adding more, so that memory stays bounded.
    pub fn extend(&mut self, bytes: &[u8]) {
        self.pending.extend_from_slice(bytes);
    }

    /// The next complete line, with its `\n` (decode it with [`decode_line`]).
    pub fn next_line(&mut self) -> Option<Result<Vec<u8>, LineTooLong>> {
        match self.pending[self.scanned..]
            .iter()
            .position(|&b| b == b'\n')
        {
            Some(at) => {
                let end = self.scanned + at + 1;
                self.scanned = 0;
                let line: Vec<u8> = self.pending.drain(..end).collect();
                let content = line.strip_suffix(b"\n").unwrap_or(&line);
                let content = content.strip_suffix(b"\r").unwrap_or(content);
                Some(if content.len() > self.max_line_bytes {
                    Err(LineTooLong)
                } else {
                    Ok(line)
                })
            }
            // No line end yet: past the limit (plus room for `\r`), it is too long.
            None if self.pending.len() > self.max_line_bytes + 1 => Some(Err(LineTooLong)),
            None => {
                self.scanned = self.pending.len();
                None
            }
        }
    }

    /// Bytes received that do not make a whole line yet (a client that
    /// vanished mid-line leaves them here).
    pub fn unfinished(&self) -> &[u8] {
        &self.pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_text_is_said_and_commands_are_recognised() {
        assert_eq!(parse("hello /nick"), Request::Say("hello /nick"));
        assert_eq!(parse("/nick  bob "), Request::Nick("bob"));
        assert_eq!(parse("/who"), Request::Who);
        assert_eq!(parse("/quit"), Request::Quit);
        assert_eq!(parse("/dance now"), Request::Unknown("/dance now"));
    }

    #[test]
    fn line_endings_are_dropped_and_bad_utf8_replaced() {
        assert_eq!(decode_line(b"hi\r\n"), "hi");
        assert_eq!(decode_line(b"hi\n"), "hi");
        assert_eq!(decode_line(b"caf\xe9\n"), "caf\u{fffd}");
    }

    #[test]
    fn names_are_checked() {
        assert_eq!(check_name("alice"), Ok(()));
        assert_eq!(check_name("Zoë_2"), Ok(()));
        assert_eq!(check_name(""), Err(NameError::Empty));
        assert_eq!(check_name(&"x".repeat(25)), Err(NameError::TooLong));
        assert_eq!(check_name("a b"), Err(NameError::BadChar(' ')));
        assert_eq!(check_name("a:b"), Err(NameError::BadChar(':')));
        assert_eq!(check_name("*admin"), Err(NameError::BadChar('*')));
    }

    #[test]
    fn control_characters_and_bidi_overrides_are_escaped_in_text() {
        assert!(matches!(clean_text("plain ünïcode"), Cow::Borrowed(_)));
        assert_eq!(clean_text("a\x1b[2Jb"), "a\\u{1b}[2Jb");
        assert_eq!(clean_text("x\rbob: forged"), "x\\u{d}bob: forged");
        assert_eq!(clean_text("nul\0 bel\x07"), "nul\\u{0} bel\\u{7}");
        assert_eq!(clean_text("\u{202e}txt.exe"), "\\u{202e}txt.exe");
        assert_eq!(clean_text("a\tb\u{85}"), "a b\\u{85}");
    }

    #[test]
    fn names_with_control_or_bidi_characters_are_refused_and_compared_without_case() {
        assert_eq!(
            check_name("a\u{202e}b"),
            Err(NameError::BadChar('\u{202e}'))
        );
        assert_eq!(check_name("a\x1bb"), Err(NameError::BadChar('\x1b')));
        assert_eq!(
            check_name("zero\u{200b}w"),
            Err(NameError::BadChar('\u{200b}'))
        );
        assert_eq!(name_key("Bob"), name_key("bOB"));
        assert_ne!(name_key("bob"), name_key("bobby"));
    }

    #[test]
    fn safe_display_keeps_newlines_escapes_controls_and_joins_cut_characters() {
        let mut display = SafeDisplay::default();
        let mut out = String::new();
        display.push(b"ann: \x1b[2Jhi\n caf\xc3", &mut out);
        assert_eq!(out, "ann: \\u{1b}[2Jhi\n caf");
        display.push(b"\xa9 \xff\n", &mut out);
        assert_eq!(out, "ann: \\u{1b}[2Jhi\n café \u{fffd}\n");
    }

    #[test]
    fn chat_lines_have_the_contract_format() {
        assert_eq!(chat_line("ann", "hi there"), "ann: hi there\n");
        let mut out = String::from("bob: one\n");
        push_chat_line(&mut out, "bob", "two");
        assert_eq!(out, "bob: one\nbob: two\n");
        assert_eq!(notice("ann joined"), "* ann joined\n");
        assert_eq!(chat_line("ann", "\x1b[2J"), "ann: \\u{1b}[2J\n");
        assert_eq!(notice("bad \r"), "* bad \\u{d}\n");
    }

    #[test]
    fn lines_are_assembled_across_pieces() {
        let mut lines = LineBuffer::new(MAX_LINE_BYTES);
        lines.extend(b"he");
        assert_eq!(lines.next_line(), None);
        lines.extend(b"llo\nwor");
        assert_eq!(lines.next_line(), Some(Ok(b"hello\n".to_vec())));
        assert_eq!(lines.next_line(), None);
        lines.extend(b"ld\r\n");
        assert_eq!(lines.next_line(), Some(Ok(b"world\r\n".to_vec())));
        assert_eq!(lines.unfinished(), b"");
    }

    #[test]
    fn a_line_past_the_limit_is_refused_before_it_ends() {
        let mut lines = LineBuffer::new(4);
        lines.extend(b"abcd\r\n");
        assert_eq!(lines.next_line(), Some(Ok(b"abcd\r\n".to_vec())));
        lines.extend(b"abcdef");
        assert_eq!(lines.next_line(), Some(Err(LineTooLong)));
    }

    #[test]
    fn a_complete_line_over_the_limit_is_refused() {
        let mut lines = LineBuffer::new(4);
        lines.extend(b"abcde\n");
        assert_eq!(lines.next_line(), Some(Err(LineTooLong)));
    }
}
