//! The framing: how one message is cut out of the TCP byte stream.
//!
//! TCP delivers a stream of bytes, not messages: one `read` may return half
//! a message, or the end of one and the start of the next. So every message
//! says how long it is, in a header of a fixed size that the reader can
//! always read first.
//!
//! ## Layout of one message (header size H, 128 unless `--header-size`)
//!
//! | bytes        | what                                            | a 12-byte payload |
//! |--------------|-------------------------------------------------|-------------------|
//! | `0 .. d`     | payload length in bytes, ASCII digits `0`-`9`   | `12`              |
//! | `d .. H`     | spaces (`0x20`) up to exactly H bytes           | 126 spaces        |
//! | `H .. H+len` | the payload, UTF-8                              | `Msg received`    |
//!
//! ## The header grammar, exactly
//! ```text
//! header = DIGIT{1..}  SPACE{0..}     exactly H bytes in all
//! DIGIT  = "0" ... "9"                SPACE = " " (0x20)
//! ```
//! - **Leading zeros are accepted** (`007` is 7): they still match "digits,
//!   then spaces", they mean one number only, and a peer that fills the
//!   header with `str(n).zfill(H)` is speaking the same protocol.
//! - **Leading spaces are rejected**: the header is left-aligned, as the
//!   tutorial writes it. A right-aligned header means the peer follows some
//!   other convention, and saying so at the first message beats guessing.
//! - **Everything else is rejected**: an all-space header (no length at
//!   all), signs (`+5`, `-5`), `_` separators (`1_000`), tabs, `\r`, `\n`, a
//!   digit after the padding began, and a length over the payload limit.
//!   Python's `int()`, which the tutorial uses, accepts signs, `_` and
//!   blanks around the number: a grammar that depends on one language's
//!   number parser is no grammar.
//! - **A header is checked as it arrives**, not only once all H bytes are
//!   in: a byte no valid header can hold there (the `G` of `GET / HTTP/1.1`,
//!   a digit after the padding, digits already over the limit) is refused
//!   at once, instead of waiting for bytes that may never come.
//!
//! ## Memory
//! The declared length is checked against the limit before any payload
//! byte is read, and the payload buffer then grows one chunk at a time as
//! bytes really arrive: a peer that declares 1 MiB and sends 3 bytes costs
//! one 64 KiB chunk (a `Vec` may double as it grows: at most about twice
//! what arrived plus a chunk, never more than twice the limit), not 1 MiB.
//! The header buffer is allocated once per connection; the payload buffer
//! is reused from message to message while it stays small (one chunk), and
//! given back after a bigger message.

use std::fmt;
use std::io::{self, Read, Write};

use plumbing::trace;

/// The header size of this lesson's protocol, in bytes.
pub const DEFAULT_HEADER_LEN: usize = 128;
/// The header size of the classic Python tutorial (`HEADER = 64`).
pub const TUTORIAL_HEADER_LEN: usize = 64;
/// The largest `--header-size` we accept: a header is a length, not storage.
pub const MAX_HEADER_LEN: usize = 4096;
/// The default limit on one payload (`--max-payload`): 1 MiB.
pub const DEFAULT_MAX_PAYLOAD_BYTES: usize = 1024 * 1024;
/// The largest `--max-payload` we accept: 1 GiB. A reader's memory follows
/// the bytes that arrive, but `check` sends a maximum payload, and a limit
/// near `usize::MAX` would only invite overflow (`max + 1`) and promises
/// no machine can keep.
pub const MAX_PAYLOAD_LIMIT_BYTES: usize = 1024 * 1024 * 1024;
/// How much the payload buffer grows per read, at most.
const READ_CHUNK_BYTES: usize = 64 * 1024;

/// The two numbers both sides must agree on: the header size and the
/// largest payload a reader accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Framing {
    header_len: usize,
    max_payload: usize,
}

impl Framing {
    /// Checks both numbers against their ranges, and that the header can
    /// hold every length up to `max_payload`.
    pub fn new(header_len: usize, max_payload: usize) -> Result<Framing, String> {
        if !(1..=MAX_HEADER_LEN).contains(&header_len) {
            return Err(format!(
                "--header-size {header_len} is outside 1..={MAX_HEADER_LEN}"
            ));
        }
        if max_payload > MAX_PAYLOAD_LIMIT_BYTES {
            return Err(format!(
                "--max-payload {max_payload} is over {MAX_PAYLOAD_LIMIT_BYTES} bytes (1 GiB), \
                 the largest this lesson accepts"
            ));
        }
        let digits = max_payload.to_string().len();
        if digits > header_len {
            return Err(format!(
                "--max-payload {max_payload} needs {digits} digits, more than \
                 --header-size {header_len} holds"
            ));
        }
        Ok(Framing {
            header_len,
            max_payload,
        })
    }

    /// The header size, in bytes.
    pub fn header_len(&self) -> usize {
        self.header_len
    }

    /// The largest payload, in bytes.
    pub fn max_payload(&self) -> usize {
        self.max_payload
    }

    /// One whole message: the header, then the payload, in one buffer.
    pub fn encode(&self, payload: &str) -> Result<Vec<u8>, HeaderError> {
        if payload.len() > self.max_payload {
            return Err(HeaderError::TooLong {
                declared: payload.len().to_string(),
                max: self.max_payload,
            });
        }
        let mut frame = Vec::with_capacity(self.header_len + payload.len());
        frame.extend_from_slice(payload.len().to_string().as_bytes());
        // Framing::new made sure the digits fit: pad with spaces to exactly H.
        frame.resize(self.header_len, b' ');
        frame.extend_from_slice(payload.as_bytes());
        Ok(frame)
    }

    /// Sends one message. Header and payload are copied into one buffer
    /// and written with one `write_all`: two writes would cost two system
    /// calls, and could leave as two segments, the second held back by
    /// Nagle's algorithm until the first is acknowledged.
    pub fn write_message(&self, mut stream: impl Write, payload: &str) -> io::Result<()> {
        let frame = self
            .encode(payload)
            .map_err(|err| io::Error::new(io::ErrorKind::InvalidInput, err))?;
        // write_all() loops over short writes until every byte is handed to
        // the kernel; it blocks while the peer's receive window is full.
        stream.write_all(&frame)?;
        trace!("write({} bytes: header + payload)", frame.len());
        Ok(())
    }

    /// Reads the payload length out of a header, following the grammar in
    /// the module docs. Never panics, whatever the bytes.
    pub fn parse_header(&self, header: &[u8]) -> Result<usize, HeaderError> {
        let len = self.check_start(header)?;
        if !header.first().is_some_and(u8::is_ascii_digit) {
            // Only spaces, or spaces then digits (already refused above).
            return Err(HeaderError::Empty);
        }
        Ok(len)
    }

    /// Checks the first bytes of a header, as far as they have arrived, and
    /// returns the value of their digits so far. An error means that no
    /// header starting with these bytes can be valid, whatever follows: a
    /// byte that is neither digit nor space, a digit after the padding
    /// began, or digits already over the limit (more digits only make the
    /// number bigger). So a reader can refuse `GET / HTTP/1.1` at its first
    /// byte instead of waiting for 128 bytes that may never come.
    pub fn check_start(&self, start: &[u8]) -> Result<usize, HeaderError> {
        let digits = start.iter().take_while(|b| b.is_ascii_digit()).count();
        let (number, padding) = start.split_at(digits);
        if let Some(pos) = padding.iter().position(|&b| b != b' ') {
            let at = digits + pos;
            return Err(match start[at] {
                b'0'..=b'9' => HeaderError::Misaligned { at },
                byte => HeaderError::NotADigit { at, byte },
            });
        }
        self.value(number)
    }

    /// Recognises a header of another size where it can: when the bytes
    /// before the first bad one are a whole header by themselves (digits,
    /// then at least one space, [`MIN_GUESSED_HEADER_LEN`] bytes or more),
    /// the peer most likely sent a shorter header and then its payload.
    /// (A longer header cannot be told apart so early: its first H bytes
    /// are a valid header of ours.) Other errors are returned as they are.
    pub fn explain(&self, err: HeaderError, header: &[u8]) -> HeaderError {
        let at = match err {
            HeaderError::NotADigit { at, .. } | HeaderError::Misaligned { at } => at,
            other => return other,
        };
        let start = &header[..at.min(header.len())];
        let digits = start.iter().take_while(|b| b.is_ascii_digit()).count();
        let is_whole_header = digits > 0
            && at >= MIN_GUESSED_HEADER_LEN
            && start.last() == Some(&b' ')
            && start[digits..].iter().all(|&b| b == b' ');
        if is_whole_header {
            HeaderError::OtherSize {
                theirs: at,
                ours: self.header_len,
            }
        } else {
            err
        }
    }

    /// The number the digits spell, stopping as soon as it passes the limit
    /// (128 digits would overflow any integer type).
    fn value(&self, number: &[u8]) -> Result<usize, HeaderError> {
        let too_long = || HeaderError::TooLong {
            declared: String::from_utf8_lossy(&number[..number.len().min(24)]).into_owned(),
            max: self.max_payload,
        };
        number.iter().try_fold(0usize, |len, &digit| {
            len.checked_mul(10)
                .and_then(|len| len.checked_add(usize::from(digit - b'0')))
                .filter(|&len| len <= self.max_payload)
                .ok_or_else(too_long)
        })
    }
}

/// A header that is valid up to here, then breaks, is taken for a header
/// of another size only from this many bytes on: `5 x` (a typo) is not a
/// 2-byte header, but `5` and 63 spaces before the payload is a 64-byte one.
pub const MIN_GUESSED_HEADER_LEN: usize = 4;

/// Why a header was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderError {
    /// Only spaces: no length at all.
    Empty,
    /// The first `theirs` bytes are a whole header (digits, then spaces) and
    /// then the payload starts: the peer uses `--header-size theirs`, and
    /// we use `ours`. The classic case: the tutorial's 64-byte client
    /// talking to our 128-byte server.
    OtherSize { theirs: usize, ours: usize },
    /// A byte that is neither a digit nor a space (a sign, `_`, a tab...).
    NotADigit { at: usize, byte: u8 },
    /// A digit after a space: the number is not left-aligned, or has a gap.
    Misaligned { at: usize },
    /// A length over the limit (the digits as sent, cut after 24).
    TooLong { declared: String, max: usize },
}

impl fmt::Display for HeaderError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HeaderError::Empty => write!(f, "the header holds no length, only spaces"),
            HeaderError::OtherSize { theirs, ours } => write!(
                f,
                "your header looks {theirs} bytes long, but this server's is {ours} \
                 (use --header-size {ours} on your side, or start the server with \
                 --header-size {theirs})"
            ),
            HeaderError::NotADigit { at, byte } => write!(
                f,
                "header byte {at} is '{}', not a digit (the length is plain decimal \
                 digits, no sign, no '_', then only spaces)",
                byte.escape_ascii()
            ),
            HeaderError::Misaligned { at } => write!(
                f,
                "header byte {at} is a digit after a space (the length must start at \
                 byte 0, left-aligned, and only spaces may follow it)"
            ),
            HeaderError::TooLong { declared, max } => write!(
                f,
                "the declared length {declared} is over the limit of {max} bytes"
            ),
        }
    }
}

impl HeaderError {
    /// The reason in a few words, for an error reply that must fit a small
    /// `--max-payload`: the same facts, fewer words.
    pub fn short(&self) -> String {
        match self {
            HeaderError::Empty => "empty header".into(),
            HeaderError::OtherSize { theirs, ours } => {
                format!("header size {theirs}, expected {ours} (--header-size)")
            }
            HeaderError::NotADigit { at, .. } => format!("bad header byte {at}"),
            HeaderError::Misaligned { at } => format!("bad header byte {at}"),
            HeaderError::TooLong { max, .. } => format!("length over {max}"),
        }
    }
}

impl std::error::Error for HeaderError {}

/// Why reading a message stopped.
#[derive(Debug)]
pub enum FrameError {
    /// The header broke the grammar: the peer speaks some other protocol.
    BadHeader(HeaderError),
    /// The payload is not UTF-8; `valid_up_to` bytes of it were.
    NotUtf8 { valid_up_to: usize },
    /// The peer closed after part of a header.
    ClosedMidHeader { got: usize, header_len: usize },
    /// The peer closed after part of a payload.
    ClosedMidPayload { got: usize, declared: usize },
    /// The connection itself failed (reset, timeout).
    Io(io::Error),
}

impl FrameError {
    /// Whether the peer broke the protocol (and deserves an error reply),
    /// rather than the connection ending.
    pub fn is_protocol_violation(&self) -> bool {
        matches!(self, FrameError::BadHeader(_) | FrameError::NotUtf8 { .. })
    }
}

impl fmt::Display for FrameError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            FrameError::BadHeader(err) => err.fmt(f),
            FrameError::NotUtf8 { valid_up_to } => write!(
                f,
                "the payload is not UTF-8 (invalid from byte {valid_up_to})"
            ),
            FrameError::ClosedMidHeader { got, header_len } => write!(
                f,
                "closed the connection mid-header ({got} of {header_len} bytes)"
            ),
            FrameError::ClosedMidPayload { got, declared } => write!(
                f,
                "closed the connection mid-payload ({got} of {declared} bytes)"
            ),
            FrameError::Io(err) => err.fmt(f),
        }
    }
}

impl FrameError {
    /// The reason in a few words (see [`HeaderError::short`]).
    pub fn short(&self) -> String {
        match self {
            FrameError::BadHeader(err) => err.short(),
            FrameError::NotUtf8 { .. } => "not UTF-8".into(),
            other => other.to_string(),
        }
    }
}

impl std::error::Error for FrameError {}

impl From<io::Error> for FrameError {
    fn from(err: io::Error) -> Self {
        FrameError::Io(err)
    }
}

/// Reads messages from one connection: exactly a header, then exactly the
/// payload it declares, never a byte more. Bytes of the next message stay
/// in the source until we ask for them: the kernel's receive buffer when
/// the source is a socket, or a `BufReader` that took many messages in one
/// `read` (the server's).
pub struct MessageReader {
    framing: Framing,
    header: Vec<u8>,
    header_got: usize,
    /// The length the current header declared, once it is all in.
    declared: Option<usize>,
    payload: Vec<u8>,
}

impl MessageReader {
    pub fn new(framing: Framing) -> MessageReader {
        MessageReader {
            framing,
            header: vec![0; framing.header_len],
            header_got: 0,
            declared: None,
            payload: Vec::new(),
        }
    }

    /// The next message, or `None` when the peer closed cleanly between
    /// messages (before the first byte of a header).
    pub fn read_message(&mut self, stream: &mut impl Read) -> Result<Option<&str>, FrameError> {
        self.declared = None;
        self.payload.clear();
        if self.payload.capacity() > READ_CHUNK_BYTES {
            // A big message is over: give its memory back, so that a
            // thousand clients that each sent one 1 MiB message, then went
            // quiet, do not hold a gigabyte between them.
            self.payload = Vec::new();
        }
        let Some(len) = self.read_header(stream)? else {
            return Ok(None);
        };
        self.declared = Some(len);
        self.read_payload(stream, len)?;
        match std::str::from_utf8(&self.payload) {
            Ok(text) => Ok(Some(text)),
            Err(err) => Err(FrameError::NotUtf8 {
                valid_up_to: err.valid_up_to(),
            }),
        }
    }

    /// The header bytes received so far: after a timeout, what did come.
    pub fn partial_header(&self) -> &[u8] {
        &self.header[..self.header_got]
    }

    /// The payload length the header declared, once the whole header is
    /// in and valid: after a timeout, how much was still owed.
    pub fn declared_len(&self) -> Option<usize> {
        self.declared
    }

    /// The payload bytes received so far (all of them after a success).
    pub fn partial_payload(&self) -> &[u8] {
        &self.payload
    }

    /// Reads exactly a header, checking each piece as it arrives: a header
    /// that cannot become valid is refused at once, not after H bytes.
    fn read_header(&mut self, stream: &mut impl Read) -> Result<Option<usize>, FrameError> {
        self.header_got = 0;
        let mut len = 0;
        while self.header_got < self.header.len() {
            let n = read_some(stream, &mut self.header[self.header_got..])?;
            if n == 0 {
                break; // the peer closed: clean if nothing came yet
            }
            self.header_got += n;
            // Checks the whole start again, from byte 0: at most H bytes
            // per read, cheap next to the read itself, and no state to keep.
            len = self
                .framing
                .check_start(self.partial_header())
                .map_err(|err| FrameError::BadHeader(self.framing.explain(err, &self.header)))?;
        }
        match self.header_got {
            0 => Ok(None),
            got if got < self.header.len() => Err(FrameError::ClosedMidHeader {
                got,
                header_len: self.header.len(),
            }),
            // The last check_start saw the whole header: what parse_header
            // adds is only that it must not be all spaces.
            _ if self.header[0].is_ascii_digit() => Ok(Some(len)),
            _ => Err(FrameError::BadHeader(HeaderError::Empty)),
        }
    }

    /// Reads exactly `len` bytes (already checked against the limit).
    fn read_payload(&mut self, stream: &mut impl Read, len: usize) -> Result<(), FrameError> {
        self.payload.clear();
        while self.payload.len() < len {
            let start = self.payload.len();
            // Grow by one chunk, not to `len` at once: memory follows the
            // bytes that really arrive, not the bytes a peer promised.
            self.payload.resize(len.min(start + READ_CHUNK_BYTES), 0);
            let read = read_some(stream, &mut self.payload[start..]);
            // Keep only the bytes that came, even when the read failed, so
            // that partial_payload() tells the truth after a timeout.
            self.payload
                .truncate(start + read.as_ref().map_or(0, |&n| n));
            let n = read?;
            if n == 0 {
                return Err(FrameError::ClosedMidPayload {
                    got: start,
                    declared: len,
                });
            }
        }
        Ok(())
    }
}

/// One `read`, retried when a signal interrupts it. (Not traced here: the
/// source may be a buffer, and `--trace` shows system calls; the socket
/// side traces its own reads.)
fn read_some(stream: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        // read() blocks until at least one byte has arrived, then returns
        // what is there, up to buf.len(): often fewer bytes than asked for.
        // It returns 0 only when the peer has closed its sending side.
        match stream.read(buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => return result,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    fn framing() -> Framing {
        Framing::new(8, 1000).unwrap()
    }

    fn parse(header: &[u8; 8]) -> Result<usize, HeaderError> {
        framing().parse_header(header)
    }

    /// A reader that hands out one byte per `read`: the worst short reads.
    struct OneByteAtATime(Cursor<Vec<u8>>);

    impl Read for OneByteAtATime {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            let end = buf.len().min(1);
            self.0.read(&mut buf[..end])
        }
    }

    fn read_all(framing: Framing, bytes: &[u8]) -> Vec<Result<String, String>> {
        let mut stream = OneByteAtATime(Cursor::new(bytes.to_vec()));
        let mut reader = MessageReader::new(framing);
        let mut messages = Vec::new();
        loop {
            match reader.read_message(&mut stream) {
                Ok(Some(text)) => messages.push(Ok(text.to_string())),
                Ok(None) => return messages,
                Err(err) => return [messages, vec![Err(err.to_string())]].concat(),
            }
        }
    }

    #[test]
    fn encoding_writes_digits_then_spaces_then_the_payload() {
        assert_eq!(framing().encode("héllo").unwrap(), b"6       h\xc3\xa9llo");
    }

    #[test]
    fn messages_survive_a_round_trip_read_one_byte_at_a_time() {
        let texts = ["hello", "", "héllo ✓ 🦀", "!DISCONNECT!"];
        let bytes: Vec<u8> = texts
            .iter()
            .flat_map(|text| framing().encode(text).unwrap())
            .collect();
        let expected: Vec<_> = texts.iter().map(|t| Ok(t.to_string())).collect();
        assert_eq!(read_all(framing(), &bytes), expected);
    }

    #[test]
    fn the_largest_payload_fits_and_one_more_byte_does_not() {
        let max = "x".repeat(1000);
        assert_eq!(
            read_all(framing(), &framing().encode(&max).unwrap()).len(),
            1
        );
        assert!(framing().encode(&format!("{max}x")).is_err());
    }

    #[test]
    fn leading_zeros_are_accepted() {
        assert_eq!(parse(b"00000012"), Ok(12));
        assert_eq!(parse(b"0       "), Ok(0));
    }

    #[test]
    fn an_all_space_header_is_empty() {
        assert_eq!(parse(b"        "), Err(HeaderError::Empty));
    }

    #[test]
    fn letters_are_not_digits() {
        assert_eq!(
            parse(b"abc     "),
            Err(HeaderError::NotADigit { at: 0, byte: b'a' })
        );
    }

    #[test]
    fn signs_are_rejected_though_python_int_accepts_them() {
        assert_eq!(
            parse(b"+5      "),
            Err(HeaderError::NotADigit { at: 0, byte: b'+' })
        );
        assert_eq!(
            parse(b"-5      "),
            Err(HeaderError::NotADigit { at: 0, byte: b'-' })
        );
    }

    #[test]
    fn underscores_are_rejected_though_python_int_accepts_them() {
        assert_eq!(
            parse(b"1_0     "),
            Err(HeaderError::NotADigit { at: 1, byte: b'_' })
        );
    }

    #[test]
    fn tabs_and_newlines_are_not_padding() {
        assert_eq!(
            parse(b"5\t      "),
            Err(HeaderError::NotADigit { at: 1, byte: b'\t' })
        );
        assert_eq!(
            parse(b"5      \n"),
            Err(HeaderError::NotADigit { at: 7, byte: b'\n' })
        );
    }

    #[test]
    fn a_right_aligned_header_is_rejected() {
        assert_eq!(parse(b"      12"), Err(HeaderError::Misaligned { at: 6 }));
    }

    #[test]
    fn a_gap_inside_the_number_is_rejected() {
        assert_eq!(parse(b"1 2     "), Err(HeaderError::Misaligned { at: 2 }));
    }

    #[test]
    fn a_length_over_the_limit_is_rejected() {
        assert!(matches!(
            parse(b"1001    "),
            Err(HeaderError::TooLong { max: 1000, .. })
        ));
    }

    #[test]
    fn a_length_too_big_for_any_integer_is_rejected_without_overflow() {
        let framing = Framing::new(128, MAX_PAYLOAD_LIMIT_BYTES).unwrap();
        let header = [b'9'; 128];
        assert!(matches!(
            framing.parse_header(&header),
            Err(HeaderError::TooLong { .. })
        ));
    }

    #[test]
    fn a_payload_that_is_not_utf8_is_rejected() {
        let got = read_all(framing(), b"2       \xff\xfe");
        assert_eq!(
            got,
            [Err("the payload is not UTF-8 (invalid from byte 0)".into())]
        );
    }

    #[test]
    fn a_close_mid_header_is_reported_with_what_arrived() {
        let got = read_all(framing(), b"5    ");
        assert_eq!(
            got,
            [Err("closed the connection mid-header (5 of 8 bytes)".into())]
        );
    }

    #[test]
    fn a_close_mid_payload_is_reported_with_what_arrived() {
        let got = read_all(framing(), b"5       abc");
        assert_eq!(
            got,
            [Err(
                "closed the connection mid-payload (3 of 5 bytes)".into()
            )]
        );
    }

    #[test]
    fn a_declared_length_is_never_allocated_before_the_bytes_arrive() {
        let framing = Framing::new(8, 10_000_000).unwrap();
        let mut reader = MessageReader::new(framing);
        let mut stream = Cursor::new(b"10000000abc".to_vec());
        assert!(reader.read_message(&mut stream).is_err());
        // The peer declared 10 MB and sent 3 bytes: we hold about one chunk.
        assert!(reader.payload.capacity() <= 2 * READ_CHUNK_BYTES);
    }

    #[test]
    fn a_big_payload_buffer_is_given_back_before_the_next_message() {
        let framing = Framing::new(8, 1_000_000).unwrap();
        let big = "x".repeat(3 * READ_CHUNK_BYTES);
        let bytes = [
            framing.encode(&big).unwrap(),
            framing.encode("small").unwrap(),
        ]
        .concat();
        let mut stream = Cursor::new(bytes);
        let mut reader = MessageReader::new(framing);
        assert_eq!(
            reader.read_message(&mut stream).unwrap().unwrap().len(),
            big.len()
        );
        assert_eq!(reader.read_message(&mut stream).unwrap(), Some("small"));
        assert!(reader.payload.capacity() <= READ_CHUNK_BYTES);
    }

    /// A reader that hands out its bytes, then times out, as a socket with
    /// a read timeout does when the peer goes quiet.
    struct ThenSilence(Cursor<Vec<u8>>);

    impl Read for ThenSilence {
        fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
            match self.0.read(buf)? {
                0 => Err(io::ErrorKind::TimedOut.into()),
                n => Ok(n),
            }
        }
    }

    fn read_then_silence(framing: Framing, bytes: &[u8]) -> (MessageReader, FrameError) {
        let mut reader = MessageReader::new(framing);
        let mut stream = ThenSilence(Cursor::new(bytes.to_vec()));
        let err = match reader.read_message(&mut stream) {
            Ok(message) => panic!("expected an error, got {message:?}"),
            Err(err) => err,
        };
        (reader, err)
    }

    #[test]
    fn an_http_request_shorter_than_the_header_is_refused_at_its_first_byte() {
        let framing = Framing::new(128, 1000).unwrap();
        let (_, err) = read_then_silence(framing, b"GET / HTTP/1.1\r\nHost: x\r\n\r\n");
        assert!(
            matches!(
                err,
                FrameError::BadHeader(HeaderError::NotADigit { at: 0, byte: b'G' })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn digits_over_the_limit_are_refused_before_the_header_is_complete() {
        let (_, err) = read_then_silence(framing(), b"10001");
        assert!(
            matches!(err, FrameError::BadHeader(HeaderError::TooLong { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_valid_start_of_header_waits_for_the_rest() {
        let (reader, err) = read_then_silence(framing(), b"12  ");
        assert!(matches!(err, FrameError::Io(_)), "{err:?}");
        assert_eq!(reader.partial_header(), b"12  ");
    }

    #[test]
    fn a_timeout_mid_payload_keeps_the_payload_bytes_that_came() {
        let (reader, err) = read_then_silence(framing(), b"5       abc");
        assert!(matches!(err, FrameError::Io(_)), "{err:?}");
        assert_eq!(reader.partial_header(), b"5       ");
        assert_eq!(reader.declared_len(), Some(5));
        assert_eq!(reader.partial_payload(), b"abc");
    }

    #[test]
    fn a_64_byte_header_read_as_a_128_byte_one_is_recognised() {
        let framing = Framing::new(128, 1000).unwrap();
        let mut sent = format!("{:<64}", 5).into_bytes();
        sent.extend_from_slice(b"hello");
        let (_, err) = read_then_silence(framing, &sent);
        assert!(
            matches!(
                err,
                FrameError::BadHeader(HeaderError::OtherSize {
                    theirs: 64,
                    ours: 128
                })
            ),
            "{err:?}"
        );
        assert!(err.to_string().contains("--header-size 128"), "{err}");
    }

    #[test]
    fn a_payload_starting_with_a_digit_after_a_short_header_is_recognised_too() {
        let framing = Framing::new(128, 1000).unwrap();
        let (_, err) = read_then_silence(framing, format!("{:<10}12345", 5).as_bytes());
        assert!(
            matches!(
                err,
                FrameError::BadHeader(HeaderError::OtherSize { theirs: 10, .. })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_typo_early_in_a_header_is_no_other_size() {
        let framing = Framing::new(128, 1000).unwrap();
        let (_, err) = read_then_silence(framing, b"5 x");
        assert!(
            matches!(
                err,
                FrameError::BadHeader(HeaderError::NotADigit { at: 2, .. })
            ),
            "{err:?}"
        );
        let (_, err) = read_then_silence(framing, b"    5");
        assert!(
            matches!(
                err,
                FrameError::BadHeader(HeaderError::Misaligned { at: 4 })
            ),
            "{err:?}"
        );
    }

    #[test]
    fn a_max_payload_over_one_gib_is_refused_without_overflow() {
        assert!(Framing::new(128, MAX_PAYLOAD_LIMIT_BYTES).is_ok());
        assert!(Framing::new(128, MAX_PAYLOAD_LIMIT_BYTES + 1).is_err());
        assert!(Framing::new(128, usize::MAX).is_err());
    }

    #[test]
    fn a_header_too_small_for_the_limit_is_refused_up_front() {
        assert!(Framing::new(2, 100).is_err());
        assert!(Framing::new(2, 99).is_ok());
        assert!(Framing::new(0, 0).is_err());
    }
}
