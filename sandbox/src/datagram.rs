//! Datagrams: a UDP request that survives loss, with a timeout, retries,
//! exponential backoff and an acknowledgement.
//!
//! TCP gives a stream: every byte arrives, once, in order, or the connection
//! fails. UDP gives *datagrams*: each `send` is one message that arrives
//! whole, or not at all, maybe twice, maybe after a later one. No
//! connection, no retransmission: a program that needs an answer does what
//! TCP would have done for it, in miniature:
//!
//! ```text
//!   client                                   server
//!   send "REQ 7 hello"  ──────── x (lost)
//!   ... no ACK within 200 ms: send again, wait 400 ms ...
//!   send "REQ 7 hello"  ────────────────────►  answer "ACK 7 hello"
//!   recv "ACK 6 ..."    ◄──── (a late duplicate of an older answer: ignore)
//!   recv "ACK 7 hello"  ◄──── the answer to *this* request: done
//! ```
//!
//! - A **timeout** on each wait (`SO_RCVTIMEO`, as for TCP): a lost request,
//!   or a lost answer, would otherwise leave `recv` waiting for ever.
//! - **Retries**, a bounded number, each with a longer wait (**exponential
//!   backoff**): a congested network or server gets room to recover, and a
//!   dead server gets a clear error, not an endless loop.
//! - A **sequence number** in each request, echoed in its acknowledgement:
//!   the only way to tell the answer to this request from a late or
//!   duplicated answer to an earlier one. A retry keeps its number (it is the
//!   same request); the next request takes the next number.
//!
//! ## What to look for
//! - [`Requester::connect`]: a UDP socket bound to port 0 and *connected*,
//!   which for UDP only means "the kernel fills in this destination and
//!   drops datagrams from anyone else".
//! - [`Requester::request`] and [`Requester::wait_for_ack`]: the retry loop,
//!   and one deadline per try that ignored datagrams do not extend.
//! - [`serve`]: the server side, stateless; it answers every request it gets
//!   (a retry included), which is safe because answering twice does no harm.
//!   Real protocols (DNS, QUIC, NTP) are built the same way.

use std::fmt;
use std::io;
use std::net::{Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use plumbing::log;
use plumbing::trace::preview;

/// The largest payload a request may carry: small enough that the datagram
/// fits in one IPv6 packet on any link (1280 bytes, less the headers), so
/// it is never fragmented (one lost fragment loses the whole datagram).
pub const MAX_PAYLOAD_BYTES: usize = 1200;

/// Room for the largest UDP datagram: a `recv` into a smaller buffer
/// silently cuts the datagram short.
const MAX_DATAGRAM_BYTES: usize = 65_535;

/// How many times to try, and how long to wait for each answer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RetryPolicy {
    /// The wait after the first send.
    pub first_timeout: Duration,
    /// The longest wait after any send.
    pub max_timeout: Duration,
    /// Sends in all (the first, and the retries), at least 1.
    pub max_tries: u32,
}

impl Default for RetryPolicy {
    /// 200 ms, 400 ms, 800 ms, 1.6 s, 2 s: about 5 s before giving up.
    fn default() -> RetryPolicy {
        RetryPolicy {
            first_timeout: Duration::from_millis(200),
            max_timeout: Duration::from_secs(2),
            max_tries: 5,
        }
    }
}

impl RetryPolicy {
    /// The wait after send number `try_index` (0 for the first): the first
    /// timeout, doubled at each retry, capped at the maximum.
    pub fn timeout_for(&self, try_index: u32) -> Duration {
        let factor = 2u32.checked_pow(try_index).unwrap_or(u32::MAX);
        self.first_timeout
            .saturating_mul(factor)
            .min(self.max_timeout)
    }
}

/// Why a [`Requester::request`] has no answer.
#[derive(Debug)]
pub enum RequestError {
    /// Every try went unanswered.
    GaveUp { seq: u64, tries: u32 },
    /// The payload is over [`MAX_PAYLOAD_BYTES`].
    TooLong(usize),
    /// The socket failed (on Linux, `ConnectionRefused` when nothing
    /// listens on the server's port: the kernel got an ICMP "port
    /// unreachable" back).
    Io(io::Error),
}

impl fmt::Display for RequestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            RequestError::GaveUp { seq, tries } => write!(
                f,
                "no acknowledgement for request {seq} after {tries} tries \
                 (is the server running, and is UDP let through?)"
            ),
            RequestError::TooLong(len) => write!(
                f,
                "a payload of {len} bytes is over the limit of {MAX_PAYLOAD_BYTES}"
            ),
            RequestError::Io(err) => write!(f, "cannot exchange datagrams: {err}"),
        }
    }
}

impl std::error::Error for RequestError {}

/// `REQ <seq> <payload>`: a request, as bytes on the wire.
pub fn encode_request(seq: u64, payload: &[u8]) -> Vec<u8> {
    encode("REQ", seq, payload)
}

/// `ACK <seq> <payload>`: the answer to request `seq`.
pub fn encode_ack(seq: u64, payload: &[u8]) -> Vec<u8> {
    encode("ACK", seq, payload)
}

/// The sequence number and payload of a request, or `None` if `datagram`
/// is not one.
pub fn parse_request(datagram: &[u8]) -> Option<(u64, &[u8])> {
    parse("REQ", datagram)
}

/// The sequence number and payload of an acknowledgement, or `None`.
pub fn parse_ack(datagram: &[u8]) -> Option<(u64, &[u8])> {
    parse("ACK", datagram)
}

fn encode(kind: &str, seq: u64, payload: &[u8]) -> Vec<u8> {
    let mut datagram = format!("{kind} {seq} ").into_bytes();
    datagram.extend_from_slice(payload);
    datagram
}

fn parse<'a>(kind: &str, datagram: &'a [u8]) -> Option<(u64, &'a [u8])> {
    let rest = datagram.strip_prefix(kind.as_bytes())?.strip_prefix(b" ")?;
    let space = rest.iter().position(|&byte| byte == b' ')?;
    let digits = &rest[..space];
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return None;
    }
    let seq = std::str::from_utf8(digits).ok()?.parse().ok()?;
    Some((seq, &rest[space + 1..]))
}

/// The client side: one UDP socket that sends requests to one server.
#[derive(Debug)]
pub struct Requester {
    socket: UdpSocket,
    next_seq: u64,
    policy: RetryPolicy,
}

impl Requester {
    /// A socket on a free port, of `server`'s family, connected to it.
    pub fn connect(server: SocketAddr, policy: RetryPolicy) -> io::Result<Requester> {
        let any: SocketAddr = match server {
            SocketAddr::V4(_) => (Ipv4Addr::UNSPECIFIED, 0).into(),
            SocketAddr::V6(_) => (Ipv6Addr::UNSPECIFIED, 0).into(),
        };
        let socket = UdpSocket::bind(any)?;
        // No handshake, nothing sent: the kernel records the destination for
        // `send`, and `recv` then gets only datagrams from `server`.
        socket.connect(server)?;
        Ok(Requester {
            socket,
            next_seq: 1,
            policy,
        })
    }

    /// The sequence number the next request will carry.
    pub fn next_seq(&self) -> u64 {
        self.next_seq
    }

    /// How many times it tries, and how long it waits.
    pub fn policy(&self) -> &RetryPolicy {
        &self.policy
    }

    /// Our own address (the one the server sees).
    pub fn local_addr(&self) -> io::Result<SocketAddr> {
        self.socket.local_addr()
    }

    /// Sends `payload` as a request with the next sequence number, and
    /// returns the payload of its acknowledgement. Sends it again after each
    /// timeout ([`RetryPolicy::timeout_for`]), at most `max_tries` times in
    /// all, then gives up with [`RequestError::GaveUp`]. Acknowledgements of
    /// other requests (late, duplicated) are ignored.
    pub fn request(&mut self, payload: &[u8]) -> Result<Vec<u8>, RequestError> {
        if payload.len() > MAX_PAYLOAD_BYTES {
            return Err(RequestError::TooLong(payload.len()));
        }
        // TODO: exercise 13: number the request, then send it and wait for
        // its ACK, again and again with longer waits, up to max_tries.
        // BEGIN SOLUTION exercise 13
        let seq = self.next_seq;
        self.next_seq += 1; // a retry is the same request; the next is not
        let datagram = encode_request(seq, payload);
        let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
        let tries = self.policy.max_tries.max(1);
        for try_index in 0..tries {
            // One datagram, whole or not at all: UDP never sends part of it.
            self.socket.send(&datagram).map_err(RequestError::Io)?;
            let deadline = Instant::now() + self.policy.timeout_for(try_index);
            if let Some(reply) = self
                .wait_for_ack(seq, deadline, &mut buf)
                .map_err(RequestError::Io)?
            {
                return Ok(reply);
            }
        }
        Err(RequestError::GaveUp { seq, tries })
        // STUB: let _ = encode_request(self.next_seq, payload);
        // STUB: todo!("exercise 13: send, wait, retry with backoff (sandbox/EXERCISES.md)")
        // END SOLUTION exercise 13
    }

    /// Receives until the acknowledgement of request `seq` arrives (its
    /// payload), or `deadline` passes (`None`). Anything else received is
    /// ignored, and does not move the deadline.
    pub fn wait_for_ack(
        &self,
        seq: u64,
        deadline: Instant,
        buf: &mut [u8],
    ) -> io::Result<Option<Vec<u8>>> {
        // TODO: exercise 13: receive with a timeout of the time left; keep
        // only the ACK that carries `seq`.
        // BEGIN SOLUTION exercise 13
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            // SO_RCVTIMEO: recv waits at most what is left of this try.
            self.socket.set_read_timeout(Some(left))?;
            match self.socket.recv(buf) {
                Ok(n) => match parse_ack(&buf[..n]) {
                    Some((acked, reply)) if acked == seq => return Ok(Some(reply.to_vec())),
                    // A late answer to an earlier request, a duplicate, junk:
                    // not ours. Keep waiting, until the same deadline.
                    _ => {}
                },
                // A read timeout: WouldBlock on Unix, TimedOut on Windows.
                Err(err)
                    if matches!(
                        err.kind(),
                        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut
                    ) =>
                {
                    return Ok(None);
                }
                Err(err) if err.kind() == io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        // STUB: let _ = (seq, deadline, buf);
        // STUB: todo!("exercise 13: wait for the ACK of `seq` (sandbox/EXERCISES.md)")
        // END SOLUTION exercise 13
    }
}

/// The server side: answers every request `REQ <seq> <payload>` with
/// `ACK <seq> <payload>`, for ever. A datagram that is not a request gets
/// `ERR ...` and a log line. Returns only if the socket itself fails.
pub fn serve(socket: &UdpSocket) -> io::Result<()> {
    let mut buf = vec![0u8; MAX_DATAGRAM_BYTES];
    loop {
        match answer_one(socket, &mut buf) {
            Ok(()) => {}
            // One peer's trouble is not the server's: on Windows, an ICMP
            // "port unreachable" for an answer we sent shows up as
            // ConnectionReset on our next recv_from.
            Err(err)
                if matches!(
                    err.kind(),
                    io::ErrorKind::ConnectionReset
                        | io::ErrorKind::ConnectionRefused
                        | io::ErrorKind::Interrupted
                ) => {}
            Err(err) => return Err(err),
        }
    }
}

/// Waits for one datagram (`recv_from`: any sender), and answers it.
pub fn answer_one(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<()> {
    let (n, peer) = socket.recv_from(buf)?;
    let reply = match parse_request(&buf[..n]) {
        Some((seq, payload)) => encode_ack(seq, payload),
        None => {
            log!("{peer}: not a request: {}", preview(&buf[..n], 40));
            b"ERR expected REQ <seq> <payload>".to_vec()
        }
    };
    // UDP has no connection: each answer names its destination.
    socket.send_to(&reply, peer)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_request_and_its_ack_round_trip() {
        assert_eq!(encode_request(7, b"hi there"), b"REQ 7 hi there");
        assert_eq!(
            parse_request(b"REQ 7 hi there"),
            Some((7, &b"hi there"[..]))
        );
        assert_eq!(parse_ack(b"ACK 12 "), Some((12, &b""[..])));
    }

    #[test]
    fn malformed_datagrams_are_not_parsed() {
        for junk in [
            &b"ACK 7"[..],
            b"ACK x 1",
            b"ACK  1",
            b"REQ 1 a",
            b"ack 1 a",
            b"",
        ] {
            assert_eq!(parse_ack(junk), None, "{junk:?}");
        }
        assert_eq!(parse_ack(b"ACK 99999999999999999999 a"), None);
    }

    #[test]
    fn timeouts_double_up_to_the_maximum() {
        let policy = RetryPolicy::default();
        let millis: Vec<u128> = (0..6).map(|n| policy.timeout_for(n).as_millis()).collect();
        assert_eq!(millis, [200, 400, 800, 1600, 2000, 2000]);
        assert_eq!(policy.timeout_for(64), Duration::from_secs(2));
    }
}
