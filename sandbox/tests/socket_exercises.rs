//! The tests of exercises 10 to 13 (send queue, closing, liveness,
//! datagrams): every test belongs to one exercise, and its name says which
//! (`exercise_10_...`). Each runs inside [`exercise`], which turns a
//! failure, or a test that runs too long, into a message naming the
//! exercise and its guide.
//!
//! Everything runs on loopback with port 0; every blocking read has a
//! timeout; nothing sleeps to wait for something else.

use std::io::{self, Read, Write};
use std::net::{Shutdown, SocketAddr, TcpListener, TcpStream, UdpSocket};
use std::panic::{self, AssertUnwindSafe};
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use mio::{Events, Interest, Poll, Token};
use sandbox::closing;
use sandbox::datagram::{self, RequestError, Requester, RetryPolicy};
use sandbox::liveness::{self, Liveness, SendError};
use sandbox::send_queue::{self, Flush, SendQueue};
use socket2::{Domain, SockRef, Socket, Type};

// ----- helpers: the exercise wrapper, and sockets for the tests -----

/// The longest one blocking step of a test may wait (a read, an accept).
const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The longest one exercise test may take before it counts as stuck.
const EXERCISE_TEST_LIMIT: Duration = Duration::from_secs(60);

/// Titles and code of the exercises tested here, as the guide names them.
const EXERCISES: &[(u32, &str, &str)] = &[
    (
        10,
        "a send queue on a non-blocking socket",
        "sandbox/src/send_queue.rs, SendQueue::write_to",
    ),
    (
        11,
        "half-close versus reset",
        "sandbox/src/closing.rs, finish_sending and abort",
    ),
    (
        12,
        "a write timeout and keepalive",
        "sandbox/src/liveness.rs, configure and send",
    ),
    (
        13,
        "a UDP request that survives loss",
        "sandbox/src/datagram.rs, Requester::request and Requester::wait_for_ack",
    ),
];

/// Runs `test` for exercise `number`; on failure, fails naming the exercise.
fn exercise(number: u32, test: impl FnOnce() + Send + 'static) {
    let &(_, title, code) = EXERCISES
        .iter()
        .find(|(listed, _, _)| *listed == number)
        .expect("the exercise is listed");
    let (done, finished) = mpsc::channel();
    thread::spawn(move || {
        let result = panic::catch_unwind(AssertUnwindSafe(test));
        let _ = done.send(result.err().map(|cause| panic_text(&*cause)));
    });
    let why = match finished.recv_timeout(EXERCISE_TEST_LIMIT) {
        Ok(None) => return,
        Ok(Some(why)) => why,
        Err(_) => {
            format!("the test did not finish within {EXERCISE_TEST_LIMIT:?} (an endless loop?)")
        }
    };
    panic!(
        "\n\nexercise {number} ({title}) is not done yet, or not right.\n  why:   {why}\n  guide: sandbox/EXERCISES.md, exercise {number}\n  code:  {code}\n  hint:  cargo run -p sandbox -- homework hint {number}\n"
    );
}

fn panic_text(cause: &(dyn std::any::Any + Send)) -> String {
    match (cause.downcast_ref::<&str>(), cause.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "the test panicked".into(),
    }
}

/// A connected pair on loopback: `(ours, peer)`, both blocking, the peer
/// with a read timeout.
fn loopback_pair() -> (TcpStream, TcpStream) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let ours = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
    // The handshake is complete: the connection waits in the backlog.
    let (peer, _) = listener.accept().unwrap();
    peer.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    (ours, peer)
}

/// The smallest buffers we ask for (the kernel may round them up: Linux
/// doubles them, and has a floor of a few KiB).
const SMALL_BUFFER_BYTES: usize = 8 * 1024;

/// Like [`loopback_pair`], but with small buffers: our send buffer and the
/// peer's receive buffer, so that a peer that does not read stops us soon.
fn small_buffered_pair() -> (TcpStream, TcpStream) {
    let listener = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    // On the listener, before `listen`: accepted sockets inherit it, and
    // the window they announce in the handshake is already small.
    listener.set_recv_buffer_size(SMALL_BUFFER_BYTES).unwrap();
    let any: SocketAddr = "127.0.0.1:0".parse().unwrap();
    listener.bind(&any.into()).unwrap();
    listener.listen(8).unwrap();
    let addr = listener.local_addr().unwrap();
    let ours = Socket::new(Domain::IPV4, Type::STREAM, None).unwrap();
    ours.set_send_buffer_size(SMALL_BUFFER_BYTES).unwrap();
    ours.connect_timeout(&addr, TEST_TIMEOUT).unwrap();
    let (peer, _) = listener.accept().unwrap();
    let peer: TcpStream = peer.into();
    peer.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
    (ours.into(), peer)
}

/// `len` bytes that show any loss, duplication or reordering: the
/// big-endian counters 0, 1, 2, ...
fn numbered_bytes(len: usize) -> Vec<u8> {
    (0u32..)
        .flat_map(u32::to_be_bytes)
        .take(len)
        .collect::<Vec<u8>>()
}

/// Asserts `received == sent`, saying where they first differ.
fn assert_same_bytes(received: &[u8], sent: &[u8]) {
    if let Some(at) = received.iter().zip(sent).position(|(r, s)| r != s) {
        panic!("byte {at} differs: bytes were lost, duplicated or reordered");
    }
    assert_eq!(received.len(), sent.len(), "received as many bytes as sent");
}

/// Reads in small pieces until EOF (a slow reader), on its own thread.
fn read_until_eof_in_small_pieces(
    mut peer: TcpStream,
    start: Option<mpsc::Receiver<()>>,
) -> thread::JoinHandle<io::Result<Vec<u8>>> {
    thread::spawn(move || {
        if let Some(start) = start {
            // Wait (bounded) until the writer has filled every buffer.
            if start.recv_timeout(TEST_TIMEOUT).is_err() {
                return Ok(Vec::new()); // the writer failed: it says why
            }
        }
        let mut received = Vec::new();
        let mut buf = [0u8; 1000];
        loop {
            match peer.read(&mut buf)? {
                0 => return Ok(received),
                n => received.extend_from_slice(&buf[..n]),
            }
        }
    })
}

fn join<T>(handle: thread::JoinHandle<T>) -> T {
    handle.join().expect("the helper thread panicked")
}

// ----- Exercise 10: a send queue on a non-blocking socket -----

/// A socket stand-in: takes at most `per_call` bytes per `write`, and says
/// `WouldBlock` once `budget` bytes are taken in all.
struct Stingy {
    taken: Vec<u8>,
    per_call: usize,
    budget: usize,
    calls: usize,
    last_said_would_block: bool,
}

impl Stingy {
    fn new(per_call: usize, budget: usize) -> Stingy {
        Stingy {
            taken: Vec::new(),
            per_call,
            budget,
            calls: 0,
            last_said_would_block: false,
        }
    }
}

impl Write for Stingy {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.calls += 1;
        let room = self.budget - self.taken.len();
        let n = buf.len().min(self.per_call).min(room);
        self.last_said_would_block = n == 0;
        if n == 0 {
            return Err(io::ErrorKind::WouldBlock.into());
        }
        self.taken.extend_from_slice(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn exercise_10_short_writes_keep_exactly_the_rest_in_order() {
    exercise(10, || {
        let mut queue = SendQueue::default();
        let mut socket = Stingy::new(3, 8);
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flush::Done);
        assert_eq!(socket.calls, 0, "an empty queue writes nothing");

        queue.queue(b"hello, ");
        queue.queue(b"world\n");
        // 3 + 3 + 2 bytes taken, then WouldBlock with 5 left.
        assert_eq!(
            queue.write_to(&mut socket).unwrap(),
            Flush::WantsWritable { waiting: 5 }
        );
        assert_eq!(socket.taken, b"hello, w");
        assert!(
            socket.last_said_would_block,
            "write until the socket says WouldBlock, not less"
        );
        assert_eq!(queue.waiting(), 5);

        // More queued while waiting goes after what waits.
        queue.queue(b"bye\n");
        socket.budget = usize::MAX;
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flush::Done);
        assert_eq!(socket.taken, b"hello, world\nbye\n");
        assert!(queue.is_empty());
    });
}

/// A socket stand-in that answers with `script`, in turn, then takes all.
struct Scripted {
    script: Vec<io::Result<usize>>,
    taken: Vec<u8>,
}

impl Write for Scripted {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        if self.script.is_empty() {
            self.taken.extend_from_slice(buf);
            return Ok(buf.len());
        }
        let answer = self.script.remove(0)?;
        self.taken.extend_from_slice(&buf[..answer]);
        Ok(answer)
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

#[test]
fn exercise_10_interrupted_is_retried_and_a_zero_write_is_an_error() {
    exercise(10, || {
        let mut queue = SendQueue::default();
        queue.queue(b"signal");
        let mut socket = Scripted {
            script: vec![Err(io::ErrorKind::Interrupted.into()), Ok(2)],
            taken: Vec::new(),
        };
        assert_eq!(queue.write_to(&mut socket).unwrap(), Flush::Done);
        assert_eq!(socket.taken, b"signal");

        queue.queue(b"stuck");
        let mut full = Scripted {
            script: vec![Ok(0)],
            taken: Vec::new(),
        };
        let err = queue.write_to(&mut full).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::WriteZero);
        assert_eq!(queue.waiting(), 5, "nothing was taken, nothing dropped");

        let mut broken = Scripted {
            script: vec![Err(io::ErrorKind::ConnectionReset.into())],
            taken: Vec::new(),
        };
        let err = queue.write_to(&mut broken).unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    });
}

#[test]
fn exercise_10_a_slow_reader_gets_every_byte_once_in_order() {
    exercise(10, || {
        const SOCKET: Token = Token(0);
        let (ours, peer) = small_buffered_pair();
        let (start_reading, reader_start) = mpsc::channel();
        let reader = read_until_eof_in_small_pieces(peer, Some(reader_start));
        ours.set_nonblocking(true).unwrap();
        let mut stream = mio::net::TcpStream::from_std(ours);
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut stream, SOCKET, Interest::WRITABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);

        let sent = numbered_bytes(4 * 1024 * 1024);
        let mut queue = SendQueue::default();
        queue.queue(&sent);
        let mut waits = 0;
        while let Flush::WantsWritable { waiting } = queue.write_to(&mut stream).unwrap() {
            assert!(waiting > 0 && waiting < sent.len(), "waiting: {waiting}");
            if waits == 0 {
                // The reader has read nothing: the buffers are full. Now read.
                start_reading.send(()).unwrap();
            }
            waits += 1;
            // Sleep in poll until the kernel has room again (bounded).
            let deadline = Instant::now() + TEST_TIMEOUT;
            loop {
                let left = deadline.saturating_duration_since(Instant::now());
                assert!(!left.is_zero(), "the socket never became writable again");
                poll.poll(&mut events, Some(left)).unwrap();
                if events.iter().any(|event| event.token() == SOCKET) {
                    break;
                }
            }
        }
        assert!(
            waits > 0,
            "4 MiB cannot fit in the buffers: WouldBlock came"
        );
        stream.shutdown(Shutdown::Write).unwrap(); // the reader's EOF
        let received = join(reader).expect("the reader read to EOF");
        assert_same_bytes(&received, &sent);
    });
}

#[test]
fn exercise_10_send_all_waits_for_writability_until_all_is_sent() {
    exercise(10, || {
        let (ours, peer) = small_buffered_pair();
        let reader = read_until_eof_in_small_pieces(peer, None);
        ours.set_nonblocking(true).unwrap();
        let mut stream = mio::net::TcpStream::from_std(ours);
        let sent = numbered_bytes(1024 * 1024);
        send_queue::send_all(&mut stream, &sent, TEST_TIMEOUT).unwrap();
        stream.shutdown(Shutdown::Write).unwrap();
        let received = join(reader).expect("the reader read to EOF");
        assert_same_bytes(&received, &sent);
    });
}

// ----- Exercise 11: half-close versus reset -----

#[test]
fn exercise_11_after_finish_sending_the_peer_reads_eof_and_still_answers() {
    exercise(11, || {
        let (mut ours, mut peer) = loopback_pair();
        let answerer = thread::spawn(move || {
            // read_to_end returns at EOF only: proof that our FIN came.
            let mut question = Vec::new();
            peer.read_to_end(&mut question)?;
            // Our FIN closed only our direction: the peer can still write.
            peer.write_all(b"answer: 42\n")?;
            Ok::<_, io::Error>(question) // dropping `peer` closes: its FIN
        });
        ours.write_all(b"question?\n").unwrap();
        let last_words = closing::finish_sending(&mut ours, TEST_TIMEOUT, 1024).unwrap();
        assert_eq!(String::from_utf8_lossy(&last_words), "answer: 42\n");
        let question = join(answerer).expect("the peer read our question to EOF");
        assert_eq!(String::from_utf8_lossy(&question), "question?\n");
    });
}

#[test]
fn exercise_11_finish_sending_gives_up_on_a_peer_that_never_closes() {
    exercise(11, || {
        let (mut ours, mut peer) = loopback_pair();
        let (release, released) = mpsc::channel::<()>();
        let lingerer = thread::spawn(move || {
            let mut question = Vec::new();
            peer.read_to_end(&mut question)?;
            peer.write_all(b"still here")?;
            let _ = released.recv_timeout(TEST_TIMEOUT); // holds the connection open
            Ok::<_, io::Error>(())
        });
        let err = closing::finish_sending(&mut ours, Duration::from_millis(300), 1024)
            .expect_err("the peer never closes");
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        release.send(()).unwrap();
        join(lingerer).unwrap();
    });
}

#[test]
fn exercise_11_finish_sending_refuses_a_peer_that_says_too_much() {
    exercise(11, || {
        let (mut ours, mut peer) = loopback_pair();
        let (release, released) = mpsc::channel::<()>();
        let talker = thread::spawn(move || {
            peer.write_all(&[b'x'; 10_000])?;
            let _ = released.recv_timeout(TEST_TIMEOUT);
            Ok::<_, io::Error>(())
        });
        let err = closing::finish_sending(&mut ours, TEST_TIMEOUT, 100)
            .expect_err("10,000 bytes is over the limit of 100");
        assert_eq!(err.kind(), io::ErrorKind::InvalidData, "{err}");
        release.send(()).unwrap();
        join(talker).unwrap();
    });
}

#[test]
fn exercise_11_abort_resets_where_a_close_would_say_eof() {
    exercise(11, || {
        // First the contrast: a plain close is a FIN, which reads as EOF.
        let (ours, mut peer) = loopback_pair();
        drop(ours);
        assert_eq!(peer.read(&mut [0u8; 16]).unwrap(), 0, "a close is EOF");

        let (ours, mut peer) = loopback_pair();
        closing::abort(ours).unwrap();
        let err = peer
            .read(&mut [0u8; 16])
            .expect_err("after a RST, read fails instead of saying EOF");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
    });
}

#[test]
fn exercise_11_abort_discards_what_we_had_not_read() {
    exercise(11, || {
        let (ours, mut peer) = loopback_pair();
        peer.write_all(b"you will never read this").unwrap();
        // peek waits (bounded) until the bytes are in our receive buffer,
        // and leaves them there, unread.
        ours.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        assert!(ours.peek(&mut [0u8; 8]).unwrap() > 0);
        closing::abort(ours).unwrap();
        let err = peer
            .read(&mut [0u8; 16])
            .expect_err("the connection is reset");
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset, "{err}");
        // The connection is gone on this side too: nothing more can be sent.
        assert!(
            peer.write_all(b"hello?").is_err(),
            "writing after a RST fails"
        );
    });
}

// ----- Exercise 12: a write timeout and keepalive -----

fn quick_to_stall() -> Liveness {
    Liveness {
        write_timeout: Duration::from_millis(200),
        ..Liveness::default()
    }
}

#[test]
fn exercise_12_a_peer_that_stops_reading_makes_send_fail_as_stalled() {
    exercise(12, || {
        let (mut ours, _peer_that_never_reads) = small_buffered_pair();
        liveness::configure(&ours, &quick_to_stall()).unwrap();
        let total = 8 * 1024 * 1024;
        let err = liveness::send(&mut ours, &numbered_bytes(total))
            .expect_err("8 MiB cannot fit in the buffers of a peer that never reads");
        let SendError::Stalled { after, sent } = err else {
            panic!("expected SendError::Stalled, got: {err}");
        };
        assert!(after > Duration::ZERO, "after: {after:?}");
        // Not `0 < sent`: on Windows a blocking send is all or nothing.
        assert!(sent < total, "sent {sent} of {total}");
        let message = err.to_string();
        assert!(
            message.contains("stopped reading") && message.contains("SO_SNDTIMEO"),
            "the message says what happened and which option fired: {message}"
        );
    });
}

#[test]
fn exercise_12_a_peer_that_reads_gets_every_byte() {
    exercise(12, || {
        let (mut ours, peer) = small_buffered_pair();
        let reader = read_until_eof_in_small_pieces(peer, None);
        liveness::configure(&ours, &Liveness::default()).unwrap();
        let sent = numbered_bytes(1024 * 1024);
        liveness::send(&mut ours, &sent).unwrap();
        ours.shutdown(Shutdown::Write).unwrap();
        let received = join(reader).expect("the reader read to EOF");
        assert_same_bytes(&received, &sent);
    });
}

#[test]
fn exercise_12_the_settings_read_back_from_the_socket() {
    exercise(12, || {
        let (ours, _peer) = loopback_pair();
        let settings = Liveness {
            write_timeout: Duration::from_secs(3),
            keepalive_time: Duration::from_secs(30),
            keepalive_interval: Duration::from_secs(7),
            keepalive_retries: 4,
        };
        liveness::configure(&ours, &settings).unwrap();
        assert_eq!(ours.write_timeout().unwrap(), Some(Duration::from_secs(3)));
        let socket = SockRef::from(&ours);
        assert!(socket.keepalive().unwrap(), "SO_KEEPALIVE is on");
        // Where the system lets socket2 read them back.
        #[cfg(any(
            target_os = "linux",
            target_os = "android",
            target_os = "macos",
            target_os = "ios",
            target_os = "freebsd",
            target_os = "netbsd"
        ))]
        {
            assert_eq!(
                socket.tcp_keepalive_time().unwrap(),
                Duration::from_secs(30)
            );
            assert_eq!(
                socket.tcp_keepalive_interval().unwrap(),
                Duration::from_secs(7)
            );
            assert_eq!(socket.tcp_keepalive_retries().unwrap(), 4);
        }
    });
}

// ----- Exercise 13: a UDP request that survives loss -----

/// A test server on loopback that drops the first `drop_first` datagrams it
/// receives, and answers each later one with what `answers` says. It
/// reports every request it receives `(seq, payload)`, dropped or not, and
/// stops after a second with nothing received.
fn lossy_server(
    drop_first: usize,
    answers: fn(u64, &[u8]) -> Vec<Vec<u8>>,
) -> (SocketAddr, mpsc::Receiver<(u64, Vec<u8>)>) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = socket.local_addr().unwrap();
    let (seen, requests) = mpsc::channel();
    thread::spawn(move || {
        socket
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 2048];
        for received in 0.. {
            let Ok((n, peer)) = socket.recv_from(&mut buf) else {
                return; // nothing for a second: the test is over
            };
            let (seq, payload) = datagram::parse_request(&buf[..n]).expect("a request");
            let _ = seen.send((seq, payload.to_vec()));
            if received < drop_first {
                continue; // lost on the way
            }
            for answer in answers(seq, payload) {
                socket.send_to(&answer, peer).unwrap();
            }
        }
    });
    (addr, requests)
}

fn honest(seq: u64, payload: &[u8]) -> Vec<Vec<u8>> {
    vec![datagram::encode_ack(seq, payload)]
}

/// Before the right answer: an ACK of an older request, one of a request
/// not sent yet, junk; then the right answer twice (a duplicate).
fn confusing(seq: u64, payload: &[u8]) -> Vec<Vec<u8>> {
    let right = datagram::encode_ack(seq, payload);
    vec![
        datagram::encode_ack(seq.wrapping_sub(1), b"stale"),
        datagram::encode_ack(seq + 5, b"from the future"),
        b"garbage".to_vec(),
        right.clone(),
        right,
    ]
}

fn patient() -> RetryPolicy {
    RetryPolicy {
        first_timeout: Duration::from_millis(50),
        max_timeout: Duration::from_millis(400),
        max_tries: 8,
    }
}

#[test]
fn exercise_13_the_reply_arrives_despite_lost_requests() {
    exercise(13, || {
        let (server, requests) = lossy_server(2, honest);
        let mut requester = Requester::connect(server, patient()).unwrap();
        let reply = requester.request(b"hello").unwrap();
        assert_eq!(String::from_utf8_lossy(&reply), "hello");
        let seen: Vec<(u64, Vec<u8>)> = requests.try_iter().collect();
        assert!(seen.len() >= 3, "two lost, then one answered: {seen:?}");
        assert!(
            seen.iter()
                .all(|(seq, payload)| *seq == 1 && payload == b"hello"),
            "a retry is the same request, with the same number: {seen:?}"
        );
    });
}

#[test]
fn exercise_13_duplicates_and_stale_replies_are_ignored() {
    exercise(13, || {
        let (server, _requests) = lossy_server(0, confusing);
        let policy = RetryPolicy {
            first_timeout: Duration::from_secs(2),
            ..patient()
        };
        let mut requester = Requester::connect(server, policy).unwrap();
        // Each answer's duplicate is still in our socket's buffer when the
        // next request starts: it must not be taken for the next answer.
        for payload in ["one", "two", "three"] {
            let reply = requester.request(payload.as_bytes()).unwrap();
            assert_eq!(
                String::from_utf8_lossy(&reply),
                payload,
                "the answer to {payload:?}"
            );
        }
    });
}

#[test]
fn exercise_13_it_gives_up_after_max_tries_against_a_silent_server() {
    exercise(13, || {
        let silent = UdpSocket::bind("127.0.0.1:0").unwrap();
        let policy = RetryPolicy {
            first_timeout: Duration::from_millis(20),
            max_timeout: Duration::from_millis(80),
            max_tries: 4,
        };
        let mut requester = Requester::connect(silent.local_addr().unwrap(), policy).unwrap();
        let err = requester.request(b"anyone?").expect_err("nobody answers");
        assert!(
            matches!(err, RequestError::GaveUp { seq: 1, tries: 4 }),
            "{err:?}"
        );
        assert!(err.to_string().contains("after 4 tries"), "{err}");
        // Every try reached the silent server: four sends, no more, no less.
        silent
            .set_read_timeout(Some(Duration::from_millis(500)))
            .unwrap();
        let mut buf = [0u8; 64];
        let mut received = Vec::new();
        while let Ok(n) = silent.recv(&mut buf) {
            received.push(buf[..n].to_vec());
        }
        assert_eq!(received, vec![b"REQ 1 anyone?".to_vec(); 4]);
    });
}

#[test]
fn exercise_13_sequence_numbers_advance_one_per_request() {
    exercise(13, || {
        let server = UdpSocket::bind("127.0.0.1:0").unwrap();
        let addr = server.local_addr().unwrap();
        thread::spawn(move || datagram::serve(&server)); // the lesson's own server
        let mut requester = Requester::connect(addr, patient()).unwrap();
        assert_eq!(requester.next_seq(), 1);
        for (n, payload) in ["a", "b", "c"].into_iter().enumerate() {
            let reply = requester.request(payload.as_bytes()).unwrap();
            assert_eq!(String::from_utf8_lossy(&reply), payload);
            assert_eq!(requester.next_seq(), n as u64 + 2);
        }
        // And the server refuses what is not a request, with a reason.
        let stranger = UdpSocket::bind("127.0.0.1:0").unwrap();
        stranger.set_read_timeout(Some(TEST_TIMEOUT)).unwrap();
        stranger.send_to(b"hello?", addr).unwrap();
        let mut buf = [0u8; 128];
        let n = stranger.recv(&mut buf).unwrap();
        assert!(buf[..n].starts_with(b"ERR "), "{:?}", &buf[..n]);
    });
}
