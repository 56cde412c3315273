//! Limits that keep one client, or one busy minute, from taking a server
//! down. Lesson 1 serves one client and needs none of this; the servers that
//! take many clients (lessons 3, 4 and 5) share it, so it is written once:
//!
//! - [`PerAddressLimit`]: at most N connections from one address, so one
//!   student's script cannot take every place in the room.
//! - [`open_files_limit`] and [`fit_to_open_files`]: every connection costs a
//!   file descriptor, and the operating system caps how many a process may
//!   hold (`ulimit -n`, often 1,024). A client limit above that cap is a
//!   promise the server cannot keep.
//! - [`SpareDescriptor`]: when the process *is* out of descriptors, `accept`
//!   fails and the connection stays in the backlog, so the client hangs. A
//!   descriptor kept in reserve lets the server accept it, say why, and close.
//! - [`RefusalBurst`]: log such refusals once per burst, with a count, instead
//!   of one line per arriving connection.

use std::collections::HashMap;
use std::fs::File;
use std::io::{self, Write as _};
use std::net::{IpAddr, SocketAddr, TcpListener};
use std::time::{Duration, Instant};

/// Connections allowed from one address unless `--max-per-address` says
/// otherwise: enough for a student running a few clients and a `check`, far
/// below what it takes to fill a room.
pub const DEFAULT_MAX_PER_ADDRESS: usize = 16;

/// Counts open connections per client address and refuses past a cap.
///
/// Loopback addresses are never capped: everyone who reaches the server
/// through an SSH tunnel or a port forward on this machine arrives from
/// `127.0.0.1`, and so do the tests. IPv6 clients are counted per `/64`
/// network, because one host may use any address of its `/64`.
#[derive(Debug)]
pub struct PerAddressLimit {
    max_per_address: usize,
    open: HashMap<IpAddr, usize>,
}

impl PerAddressLimit {
    /// A cap of `max_per_address` connections per address; `0` turns it off.
    pub fn new(max_per_address: usize) -> Self {
        Self {
            max_per_address,
            open: HashMap::new(),
        }
    }

    /// Counts a new connection from `ip`, or returns `false` (and counts
    /// nothing) when that address already has its maximum.
    pub fn try_admit(&mut self, ip: IpAddr) -> bool {
        if self.max_per_address == 0 || ip.is_loopback() {
            return true;
        }
        let open = self.open.entry(group_of(ip)).or_insert(0);
        if *open >= self.max_per_address {
            return false;
        }
        *open += 1;
        true
    }

    /// Forgets one connection from `ip` (call it once per admitted one).
    pub fn release(&mut self, ip: IpAddr) {
        if self.max_per_address == 0 || ip.is_loopback() {
            return;
        }
        let group = group_of(ip);
        if let Some(open) = self.open.get_mut(&group) {
            *open -= 1;
            if *open == 0 {
                // Remove the entry, so that churn from many addresses
                // leaves no memory behind.
                self.open.remove(&group);
            }
        }
    }

    /// The cap, for refusal notices.
    pub fn max_per_address(&self) -> usize {
        self.max_per_address
    }
}

/// The unit the cap counts: an IPv4 address (also when it arrives as an
/// IPv4-mapped IPv6 address on a dual-stack socket), or an IPv6 `/64`.
fn group_of(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(_) => ip,
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => {
                let mut segments = v6.segments();
                segments[4..].fill(0);
                IpAddr::from(segments)
            }
        },
    }
}

/// How many files (sockets included) this process may open, after raising
/// the soft limit as far as the hard limit allows; `None` where the system
/// has no such per-process limit we can read (Windows).
pub fn open_files_limit() -> Option<u64> {
    #[cfg(unix)]
    {
        // The soft limit is often 1,024 while the hard one is far higher;
        // raising the soft one needs no privilege.
        rlimit::increase_nofile_limit(u64::MAX).ok()
    }
    #[cfg(not(unix))]
    {
        None
    }
}

/// Descriptors kept for everything that is not a client: the listener,
/// stdin/stdout/stderr, the poller, a spare, a few files.
const DESCRIPTORS_FOR_THE_SERVER: u64 = 32;

/// The client limit to use: `wanted`, lowered to what the descriptor limit
/// allows when each client costs `descriptors_per_client`. Returns the
/// limit and, when it was lowered, a one-line note saying so.
pub fn fit_to_open_files(wanted: usize, descriptors_per_client: u64) -> (usize, Option<String>) {
    let Some(limit) = open_files_limit() else {
        return (wanted, None);
    };
    // A tiny limit (`ulimit -n 16`) still leaves room for a few clients.
    let for_the_server = match limit > DESCRIPTORS_FOR_THE_SERVER + 8 {
        true => DESCRIPTORS_FOR_THE_SERVER,
        false => limit / 2,
    };
    let fits = limit.saturating_sub(for_the_server) / descriptors_per_client.max(1);
    let fits = usize::try_from(fits).unwrap_or(usize::MAX).max(1);
    if wanted <= fits {
        return (wanted, None);
    }
    let note = format!(
        "note: --max-clients {wanted} is above what the open-files limit ({limit}) allows; \
         serving at most {fits} clients (raise it with `ulimit -n`)"
    );
    (fits, Some(note))
}

/// Whether an `accept` (or `open`) error means the process or the system has
/// no file descriptor left (`EMFILE`, `ENFILE`, Windows' `WSAEMFILE`).
pub fn is_out_of_descriptors(err: &io::Error) -> bool {
    #[cfg(unix)]
    const CODES: &[i32] = &[23, 24]; // ENFILE, EMFILE on Linux, macOS and the BSDs
    #[cfg(windows)]
    const CODES: &[i32] = &[10024]; // WSAEMFILE
    #[cfg(not(any(unix, windows)))]
    const CODES: &[i32] = &[];
    err.raw_os_error().is_some_and(|code| CODES.contains(&code))
}

/// One file descriptor held in reserve, released only to refuse a client
/// when the process has run out.
///
/// Out of descriptors, `accept` fails with `EMFILE` and leaves the connection
/// in the backlog: the client waits for an answer that never comes, and a
/// readiness loop wakes again at once for the same connection. Closing the
/// spare frees exactly one descriptor: enough to accept that connection,
/// send it one line saying why, close it, and take the spare back.
#[derive(Debug)]
pub struct SpareDescriptor(Option<File>);

impl SpareDescriptor {
    /// Opens the spare (any file will do; this program's own is always there).
    pub fn reserve() -> Self {
        Self(open_any_file())
    }

    /// Accepts one waiting connection using the spare descriptor, writes
    /// `notice` to it (best effort: a full send buffer just loses it) and
    /// closes it. Returns the refused peer, or `None` when no descriptor could
    /// be freed or no connection was waiting. With a blocking listener, call
    /// it only right after `accept` failed for lack of descriptors: then a
    /// connection is waiting, and this `accept` does not block.
    pub fn refuse_one(&mut self, listener: &TcpListener, notice: &[u8]) -> Option<SocketAddr> {
        self.0.take()?;
        let refused = match listener.accept() {
            Ok((mut stream, peer)) => {
                let _ = stream.set_nonblocking(true);
                let _ = stream.write(notice);
                // Close without reading: we sent what we had to say.
                drop(stream);
                Some(peer)
            }
            Err(_) => None,
        };
        self.0 = open_any_file();
        refused
    }
}

fn open_any_file() -> Option<File> {
    std::env::current_exe()
        .and_then(File::open)
        .ok()
        .or_else(|| File::open(".").ok())
}

/// Counts refusals so that a burst of them is one log line, not one line
/// per connection: the first refusal is reported at once, the rest as a
/// count when the burst is over (no refusal for [`RefusalBurst::QUIET`]).
#[derive(Debug, Default)]
pub struct RefusalBurst {
    refused: u64,
    last: Option<Instant>,
}

impl RefusalBurst {
    /// How long without a refusal ends a burst.
    pub const QUIET: Duration = Duration::from_secs(1);

    /// Records one refusal; returns `true` when it starts a burst (log it).
    pub fn record(&mut self, now: Instant) -> bool {
        let starts = self.last.is_none();
        self.refused += 1;
        self.last = Some(now);
        starts
    }

    /// When a burst has been quiet for [`Self::QUIET`], returns how many
    /// connections it refused in all, and starts afresh.
    pub fn ended(&mut self, now: Instant) -> Option<u64> {
        let last = self.last?;
        if now.duration_since(last) < Self::QUIET {
            return None;
        }
        let refused = self.refused;
        *self = Self::default();
        Some(refused)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_cap_refuses_past_the_maximum_and_frees_on_release() {
        let mut limit = PerAddressLimit::new(2);
        let ip: IpAddr = "192.0.2.7".parse().unwrap();
        assert!(limit.try_admit(ip));
        assert!(limit.try_admit(ip));
        assert!(!limit.try_admit(ip));
        limit.release(ip);
        assert!(limit.try_admit(ip));
    }

    #[test]
    fn loopback_is_never_capped() {
        let mut limit = PerAddressLimit::new(1);
        for _ in 0..5 {
            assert!(limit.try_admit("127.0.0.1".parse().unwrap()));
            assert!(limit.try_admit("::1".parse().unwrap()));
        }
    }

    #[test]
    fn ipv6_counts_per_64_and_mapped_ipv4_as_ipv4() {
        let mut limit = PerAddressLimit::new(1);
        assert!(limit.try_admit("2001:db8::1".parse().unwrap()));
        assert!(!limit.try_admit("2001:db8::2".parse().unwrap()));
        assert!(limit.try_admit("2001:db8:0:1::1".parse().unwrap()));
        assert!(limit.try_admit("192.0.2.1".parse().unwrap()));
        assert!(!limit.try_admit("::ffff:192.0.2.1".parse().unwrap()));
    }

    #[test]
    fn released_addresses_leave_no_entry_behind() {
        let mut limit = PerAddressLimit::new(3);
        for i in 0..100u8 {
            let ip = IpAddr::from([192, 0, 2, i]);
            assert!(limit.try_admit(ip));
            limit.release(ip);
        }
        assert!(limit.open.is_empty());
    }

    #[test]
    fn zero_turns_the_cap_off() {
        let mut limit = PerAddressLimit::new(0);
        for _ in 0..100 {
            assert!(limit.try_admit("192.0.2.1".parse().unwrap()));
        }
    }

    #[test]
    fn a_burst_is_reported_once_then_counted() {
        let start = Instant::now();
        let mut burst = RefusalBurst::default();
        assert!(burst.record(start));
        assert!(!burst.record(start));
        assert!(!burst.record(start));
        assert_eq!(burst.ended(start), None);
        assert_eq!(burst.ended(start + RefusalBurst::QUIET), Some(3));
        assert!(burst.record(start + RefusalBurst::QUIET * 2));
    }

    #[test]
    fn emfile_is_out_of_descriptors_and_refused_is_not() {
        #[cfg(unix)]
        assert!(is_out_of_descriptors(&io::Error::from_raw_os_error(24)));
        assert!(!is_out_of_descriptors(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
    }

    #[test]
    fn the_spare_refuses_a_waiting_client_with_the_notice() {
        use std::io::Read as _;
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        client
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut spare = SpareDescriptor::reserve();
        let peer = spare.refuse_one(&listener, b"* server full\n");
        assert_eq!(peer, Some(client.local_addr().unwrap()));
        let mut got = String::new();
        client.read_to_string(&mut got).unwrap();
        assert_eq!(got, "* server full\n");
        assert!(spare.0.is_some(), "the spare is taken back");
    }
}
