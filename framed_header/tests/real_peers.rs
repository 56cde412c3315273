//! The lesson against peers written the way students find them in the
//! classic Python tutorials and their variants: 64- and 128-byte headers,
//! raw replies with other words, `!DISCONNECT` or `!DISCONNECT!`, a goodbye
//! answered or not. Each peer is written here, in a few lines, so that the
//! test says exactly what the other side does.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread;
use std::time::Duration;

use framed_header::frame::Framing;
use framed_header::{check, client, server};
use plumbing::testing::{SharedOutput, TEST_TIMEOUT, connect, loopback_listener, read_to_close};

const MIB: usize = 1024 * 1024;

/// How a tutorial-style server behaves.
#[derive(Clone)]
struct Variant {
    header_len: usize,
    /// Its replies: framed with its header, or raw.
    raw_replies: bool,
    reply: &'static str,
    goodbye: &'static str,
    /// Whether it answers the goodbye before closing.
    answers_goodbye: bool,
    /// How long each reply takes to leave, as over a slow link.
    reply_delay: Duration,
}

impl Variant {
    /// The 128-byte variants: `!DISCONNECT!`, closed without an answer.
    fn closes_without_answer() -> Variant {
        Variant {
            header_len: 128,
            raw_replies: true,
            reply: "Msg received",
            goodbye: "!DISCONNECT!",
            answers_goodbye: false,
            reply_delay: Duration::ZERO,
        }
    }

    fn reply_bytes(&self) -> Vec<u8> {
        if self.raw_replies {
            return self.reply.as_bytes().to_vec();
        }
        let mut bytes = format!("{:<1$}", self.reply.len(), self.header_len).into_bytes();
        bytes.extend_from_slice(self.reply.as_bytes());
        bytes
    }

    /// Serves `connections` clients, one after another, then stops
    /// listening; each payload it reads goes to the returned channel.
    fn start(self, connections: usize) -> (SocketAddr, mpsc::Receiver<String>) {
        let listener = loopback_listener();
        let addr = listener.local_addr().unwrap();
        let (heard, payloads) = mpsc::channel();
        thread::spawn(move || serve(listener, &self, connections, &heard));
        (addr, payloads)
    }
}

fn serve(
    listener: TcpListener,
    variant: &Variant,
    connections: usize,
    heard: &mpsc::Sender<String>,
) {
    for _ in 0..connections {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let _ = stream.set_read_timeout(Some(TEST_TIMEOUT));
        let _ = serve_one(stream, variant, heard);
    }
}

/// Unlike the tutorial, reads whole headers and payloads (`read_exact`):
/// these peers differ in their settings, not in their bugs.
fn serve_one(
    mut stream: TcpStream,
    variant: &Variant,
    heard: &mpsc::Sender<String>,
) -> std::io::Result<()> {
    let mut header = vec![0u8; variant.header_len];
    loop {
        stream.read_exact(&mut header)?;
        let Ok(len) = String::from_utf8_lossy(&header).trim().parse::<usize>() else {
            return Ok(()); // closes
        };
        let mut payload = vec![0u8; len];
        stream.read_exact(&mut payload)?;
        let payload = String::from_utf8_lossy(&payload).into_owned();
        let _ = heard.send(payload.clone());
        if payload == variant.goodbye {
            if variant.answers_goodbye {
                stream.write_all(&variant.reply_bytes())?;
            }
            return Ok(());
        }
        thread::sleep(variant.reply_delay); // the slow link's delay, not a synchronisation
        stream.write_all(&variant.reply_bytes())?;
    }
}

fn client_config(header_len: usize, raw_replies: bool) -> client::Config {
    client::Config {
        reply_wait: Duration::from_secs(2),
        ..client::Config::new(Framing::new(header_len, MIB).unwrap(), raw_replies)
    }
}

fn run_client(
    addr: SocketAddr,
    input: &str,
    config: &client::Config,
) -> (anyhow::Result<()>, String) {
    let output = SharedOutput::default();
    let result = client::run(connect(addr), input.as_bytes(), output.clone(), config);
    (result, String::from_utf8(output.contents()).unwrap())
}

fn probe(addr: SocketAddr, header_len: usize, raw_replies: bool) -> check::Probe {
    check::Probe::new(
        addr,
        Duration::from_secs(1),
        Framing::new(header_len, MIB).unwrap(),
        raw_replies,
    )
}

fn run_check(probe: &check::Probe) -> (plumbing::checklist::Report, String) {
    let mut out = Vec::new();
    let report = check::run(probe, &mut out);
    (report, String::from_utf8(out).unwrap())
}

fn the_lesson_server() -> SocketAddr {
    let config = server::Config::new(Framing::new(128, MIB).unwrap(), false);
    plumbing::testing::start_server(move |listener| server::run(listener, config)).0
}

// ---- The goodbye ----

#[test]
fn the_client_ends_cleanly_when_the_server_closes_after_the_goodbye_without_replying() {
    let (addr, heard) = Variant::closes_without_answer().start(1);
    let config = client::Config {
        goodbye: "!DISCONNECT!".into(),
        ..client_config(128, true)
    };
    let (result, out) = run_client(addr, "hello\n", &config);
    result.unwrap();
    assert_eq!(out, "Msg received\n");
    assert_eq!(heard.recv_timeout(TEST_TIMEOUT).unwrap(), "hello");
    assert_eq!(heard.recv_timeout(TEST_TIMEOUT).unwrap(), "!DISCONNECT!");
}

#[test]
fn a_typed_goodbye_that_is_not_answered_ends_the_client_cleanly_too() {
    let (addr, _heard) = Variant::closes_without_answer().start(1);
    let (result, out) = run_client(
        addr,
        "!DISCONNECT!\nnever sent\n",
        &client_config(128, true),
    );
    result.unwrap();
    assert_eq!(out, "", "no reply came, none is printed");
}

#[test]
fn check_passes_the_goodbye_of_a_server_that_closes_without_answering_it() {
    let (addr, _heard) = Variant::closes_without_answer().start(20);
    let probe = check::Probe {
        goodbye: "!DISCONNECT!".into(),
        ..probe(addr, 128, true)
    };
    let (report, out) = run_check(&probe);
    for passes in [
        "round trip: \"hello\" is answered \"Msg received\"",
        "!DISCONNECT! is answered (or not), then the connection closes",
    ] {
        assert!(report.passed.iter().any(|p| p == passes), "{passes}\n{out}");
    }
}

#[test]
fn check_with_the_other_goodbye_names_both_goodbyes() {
    let (addr, _heard) = Variant::closes_without_answer().start(20);
    let (report, out) = run_check(&probe(addr, 128, true));
    let name = "!DISCONNECT is answered (or not), then the connection closes";
    assert!(report.failed.iter().any(|f| f == name), "{out}");
    assert!(out.contains("--goodbye '!DISCONNECT!'"), "{out}");
}

// ---- Raw replies in other words ----

fn says_message_recived() -> Variant {
    Variant {
        reply: "Message Recived",
        answers_goodbye: true,
        goodbye: "!DISCONNECT",
        ..Variant::closes_without_answer()
    }
}

#[test]
fn any_raw_reply_gets_the_raw_replies_hint_in_the_client() {
    let (addr, _heard) = says_message_recived().start(1);
    let (result, _) = run_client(addr, "hello\n", &client_config(128, false));
    let err = result.unwrap_err().to_string();
    assert!(err.contains("\"Message Recived\" (15 bytes)"), "{err}");
    assert!(err.contains("try --raw-replies"), "{err}");
}

#[test]
fn check_shows_a_reply_in_other_words_whole_and_names_the_reply_option() {
    let (addr, _heard) = says_message_recived().start(20);
    let (report, out) = run_check(&probe(addr, 128, true));
    assert_eq!(
        report.failed[0], "round trip: \"hello\" is answered \"Msg received\"",
        "{out}"
    );
    assert!(
        out.contains("got:      \"Message Recived\" (15 bytes)"),
        "{out}"
    );
    assert!(
        out.contains("give check --reply 'Message Recived'"),
        "{out}"
    );
}

#[test]
fn check_given_the_servers_reply_text_passes_its_round_trip() {
    let (addr, _heard) = says_message_recived().start(20);
    let probe = check::Probe {
        reply: "Message Recived".into(),
        ..probe(addr, 128, true)
    };
    let (report, out) = run_check(&probe);
    for passes in [
        "round trip: \"hello\" is answered \"Message Recived\"",
        "two messages in one write get two replies",
        "!DISCONNECT is answered (or not), then the connection closes",
    ] {
        assert!(report.passed.iter().any(|p| p == passes), "{passes}\n{out}");
    }
}

// ---- Header sizes that differ ----

/// The tutorial's `send()`, in a 64-byte header, and its one `recv(2048)`.
fn tutorial_64_byte_client(addr: SocketAddr, text: &str) -> String {
    let mut stream = connect(addr);
    stream
        .write_all(format!("{:<64}", text.len()).as_bytes())
        .unwrap();
    stream.write_all(text.as_bytes()).unwrap();
    let mut buf = [0u8; 2048];
    let n = stream.read(&mut buf).unwrap();
    String::from_utf8_lossy(&buf[..n]).into_owned()
}

#[test]
fn a_64_byte_tutorial_client_gets_a_reason_it_can_print_from_the_128_byte_server() {
    let printed = tutorial_64_byte_client(the_lesson_server(), "Hello World!");
    assert_eq!(
        printed,
        "!ERROR your header looks 64 bytes long, but this server's is 128 (use \
         --header-size 128 on your side, or start the server with --header-size 64)"
    );
}

#[test]
fn our_client_with_a_64_byte_header_is_told_what_the_server_uses() {
    let (result, _) = run_client(the_lesson_server(), "hello\n", &client_config(64, false));
    let err = result.unwrap_err().to_string();
    assert!(
        err.starts_with("the server refused the message: your header looks 64 bytes long"),
        "{err}"
    );
    assert!(err.contains("--header-size 128"), "{err}");
}

#[test]
fn a_server_replying_with_a_64_byte_header_is_recognised_by_check() {
    let variant = Variant {
        header_len: 64,
        raw_replies: false,
        ..says_message_recived()
    };
    let (addr, _heard) = variant.start(20);
    let (_, out) = run_check(&probe(addr, 64, false));
    // Its header is right, its text is not: check names the text.
    assert!(
        out.contains("give check --reply 'Message Recived'"),
        "{out}"
    );
}

// ---- No connection spent on a probe ----

#[test]
fn check_spends_no_connection_before_the_first_check() {
    // A server that takes exactly one client, as lesson 1's does.
    let variant = Variant {
        goodbye: "!DISCONNECT",
        answers_goodbye: true,
        ..Variant::closes_without_answer()
    };
    let (addr, _heard) = variant.start(1);
    let (report, out) = run_check(&probe(addr, 128, true));
    assert_eq!(
        report.passed[..2],
        [
            format!("connect to {addr}"),
            "round trip: \"hello\" is answered \"Msg received\"".to_string(),
        ],
        "{out}"
    );
}

#[test]
fn a_refused_check_connection_leaves_every_check_not_run() {
    let addr = loopback_listener().local_addr().unwrap(); // closed at once
    let (report, out) = run_check(&probe(addr, 128, false));
    assert!(report.passed.is_empty(), "{out}");
    assert!(out.contains("not run: cannot connect"), "{out}");
}

#[test]
fn the_lesson_server_still_passes_its_check_in_both_tutorial_settings() {
    for (header_len, goodbye) in [(64, "!DISCONNECT"), (128, "!DISCONNECT!")] {
        let config = server::Config::new(Framing::new(header_len, MIB).unwrap(), true);
        let (addr, _) =
            plumbing::testing::start_server(move |listener| server::run(listener, config));
        let probe = check::Probe {
            goodbye: goodbye.into(),
            ..probe(addr, header_len, true)
        };
        let (report, out) = run_check(&probe);
        assert!(report.all_passed(), "{out}");
    }
}

#[test]
fn a_reply_cut_by_the_refusal_is_read_to_the_close() {
    // The refusal is followed by a close: a tutorial client that reads on
    // sees the end of the stream, not a hang.
    let mut stream = connect(the_lesson_server());
    stream
        .write_all(format!("{:<64}hello", 5).as_bytes())
        .unwrap();
    let got = read_to_close(&mut stream);
    assert!(
        got.starts_with(b"!ERROR your header looks 64 bytes long"),
        "{got:?}"
    );
}

// ---- Slow links ----

/// Replies that each take 0.2 s, as across a slow link, checked with a
/// `--timeout` of 0.1 s.
fn behind_a_slow_link() -> (plumbing::checklist::Report, String) {
    let variant = Variant {
        goodbye: "!DISCONNECT",
        answers_goodbye: true,
        reply_delay: Duration::from_millis(200),
        ..Variant::closes_without_answer()
    };
    let (addr, _heard) = variant.start(20);
    let probe = check::Probe {
        timeout: Duration::from_millis(100),
        ..probe(addr, 128, true)
    };
    run_check(&probe)
}

#[test]
fn a_server_behind_a_slow_link_is_not_failed_for_the_links_delay() {
    // The first reply may take five times the wait (0.5 s): it tells the
    // round trip, and every later wait grows by four of them (0.9 s).
    let (report, out) = behind_a_slow_link();
    for passes in [
        "round trip: \"hello\" is answered \"Msg received\"",
        "two messages in one write get two replies",
        "the maximum payload is answered, and the next message too",
        "afterwards the server still serves a fresh client",
    ] {
        assert!(report.passed.iter().any(|p| p == passes), "{passes}\n{out}");
    }
}

#[test]
fn a_failure_on_a_slow_link_says_the_link_may_be_the_cause() {
    // This server waits for the whole oversized payload, as the tutorial
    // does: a real failure, which the slow link makes worth a second look.
    let (report, out) = behind_a_slow_link();
    let name = "an oversized declared length is refused at once";
    assert!(report.failed.iter().any(|f| f == name), "{out}");
    assert!(
        out.contains("hint:     slow link: one round trip took "),
        "{out}"
    );
}
