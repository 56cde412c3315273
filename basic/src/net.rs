//! Setting up sockets: resolve a host, listen, connect. Every lesson's `main`
//! uses these, so the steps are written (and traced) once.
//!
//! The listening socket is built with `socket2` rather than
//! `std::net::TcpListener::bind`, because std does all of socket, bind and
//! listen in one call and hides two choices a server author should see:
//! `SO_REUSEADDR` and the length of the listen backlog.

use std::io::{self, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};

use plumbing::errors::UnknownHost;
use plumbing::trace;

/// How many completed connections the kernel queues for us before `accept`.
/// The kernel may cap it (Linux: `net.core.somaxconn`).
pub const DEFAULT_BACKLOG: i32 = plumbing::DEFAULT_BACKLOG;

/// Turns `--host` and `--port` into addresses: an IP literal (`127.0.0.1`,
/// `::1`) as it is, a name (`localhost`) through the system's resolver, which
/// may give several addresses (IPv6 and IPv4).
pub fn resolve(host: &str, port: u16) -> anyhow::Result<Vec<SocketAddr>> {
    // `[::1]` is how an IPv6 address is written next to a port (as in our
    // `listening on [::1]:5000`); accept it as a host too.
    let host = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    let addrs: Vec<SocketAddr> = (host, port)
        .to_socket_addrs()
        .map_err(|_| UnknownHost(host.to_string()))?
        .collect();
    if addrs.is_empty() {
        return Err(UnknownHost(host.to_string()).into());
    }
    Ok(addrs)
}

/// Resolves `host` and listens on the first of its addresses that works
/// (a name such as `localhost` may give `::1` first, on a machine without
/// IPv6; then `127.0.0.1` is tried next). The error is the first address's.
pub fn listen(host: &str, port: u16, backlog: i32) -> anyhow::Result<TcpListener> {
    let mut first_err = None;
    for addr in resolve(host, port)? {
        match listen_on(addr, backlog) {
            Ok(listener) => return Ok(listener),
            Err(err) => {
                trace!("listen on {addr} failed: {err}");
                first_err.get_or_insert(
                    anyhow::Error::new(err).context(format!("cannot listen on {addr}")),
                );
            }
        }
    }
    // resolve() returned at least one address, so the loop set first_err.
    Err(first_err.unwrap_or_else(|| UnknownHost(host.to_string()).into()))
}

/// socket, setsockopt, bind, listen: the calls that make a listening socket.
pub fn listen_on(addr: SocketAddr, backlog: i32) -> io::Result<TcpListener> {
    // socket(): a new endpoint, IPv4 or IPv6 to match the address, of type
    // STREAM (TCP: a reliable, ordered byte stream).
    let socket = Socket::new(Domain::for_address(addr), Type::STREAM, Some(Protocol::TCP))?;
    trace!("socket({:?}, STREAM, TCP)", Domain::for_address(addr));

    // SO_REUSEADDR lets us bind a port that a recently closed connection
    // still holds in TIME_WAIT, so restarting the server right after a client
    // left does not fail with "address already in use". On Windows the same
    // option would let two servers share a port, so we leave it off there:
    // Windows does not block a restart on TIME_WAIT anyway.
    #[cfg(not(windows))]
    {
        socket.set_reuse_address(true)?;
        trace!("setsockopt(SO_REUSEADDR, 1)");
    }

    // `--host ::` means "every interface". Whether that includes IPv4
    // (clients of 127.0.0.1 arriving as ::ffff:127.0.0.1) is a system
    // default that differs (Linux: yes, Windows and the BSDs: no), so say it.
    if let SocketAddr::V6(v6) = addr {
        if v6.ip().is_unspecified() {
            socket.set_only_v6(false)?;
            trace!("setsockopt(IPV6_V6ONLY, 0): IPv4 clients too");
        }
    }

    // bind(): claim the address and port. Port 0 asks the kernel for a free one.
    socket.bind(&SockAddr::from(addr))?;
    trace!("bind({addr})");

    // listen(): from now on the kernel completes handshakes on its own and
    // queues up to `backlog` connections until we accept them.
    socket.listen(backlog)?;
    trace!("listen(backlog = {backlog})");
    Ok(socket.into())
}

/// Prints the contract's first line, `listening on ADDR`, with the real port
/// (useful after `--port 0`), and a note when other machines can connect.
///
/// This one line is written and flushed at once, not through the log's
/// buffer: tests and scripts wait for it to know the server is ready.
pub fn announce(listener: &TcpListener) -> io::Result<SocketAddr> {
    let addr = listener.local_addr()?;
    let mut stdout = io::stdout().lock();
    writeln!(stdout, "listening on {addr}")?;
    stdout.flush()?;
    if !addr.ip().is_loopback() {
        eprintln!(
            "note: {} is not a loopback address: other machines can reach this server now",
            addr.ip()
        );
    }
    Ok(addr)
}

/// Connects to `host:port`, trying each address the name resolves to.
pub fn connect(host: &str, port: u16) -> anyhow::Result<TcpStream> {
    let mut last_err = None;
    for addr in resolve(host, port)? {
        // connect(): the kernel sends SYN and this call blocks until the
        // handshake completes, is refused (RST), or the system times out.
        match TcpStream::connect(addr) {
            Ok(stream) => {
                trace!("connect({addr}) -> local {}", stream.local_addr()?);
                return Ok(stream);
            }
            Err(err) => {
                trace!("connect({addr}) failed: {err}");
                last_err =
                    Some(anyhow::Error::new(err).context(format!("cannot connect to {addr}")));
            }
        }
    }
    // resolve() returned at least one address, so the loop set last_err.
    Err(last_err.unwrap_or_else(|| UnknownHost(host.to_string()).into()))
}

/// Connects with an upper bound on the wait: what `check` uses, so that a
/// silent or unreachable server fails a check instead of hanging it.
pub fn connect_within(addr: SocketAddr, timeout: Duration) -> io::Result<TcpStream> {
    let stream = TcpStream::connect_timeout(&addr, timeout)?;
    stream.set_read_timeout(Some(timeout))?;
    stream.set_write_timeout(Some(timeout))?;
    Ok(stream)
}

/// Connects to the first of `addrs` that accepts within `timeout`: what a
/// check does with a name that resolves to several addresses (`localhost`
/// may give `::1` and `127.0.0.1`, while the server listens on only one).
/// A refused address costs no connection, so a server that serves a single
/// client is not used up by the search.
pub fn connect_first_within(
    addrs: &[SocketAddr],
    timeout: Duration,
) -> io::Result<(TcpStream, SocketAddr)> {
    let mut last_err = io::Error::new(io::ErrorKind::InvalidInput, "no address to connect to");
    for &addr in addrs {
        match connect_within(addr, timeout) {
            Ok(stream) => return Ok((stream, addr)),
            Err(err) => {
                trace!("connect({addr}) failed: {err}");
                last_err = err;
            }
        }
    }
    Err(last_err)
}

/// The address a `check` of a many-client server talks to: the only one
/// `host` resolves to, or the first of several that accepts a connection
/// (closed at once: such a server sees one short visit).
pub fn resolve_for_check(host: &str, port: u16, timeout: Duration) -> anyhow::Result<SocketAddr> {
    let addrs = resolve(host, port)?;
    if let [only] = addrs[..] {
        return Ok(only);
    }
    match connect_first_within(&addrs, timeout) {
        Ok((_visit, addr)) => Ok(addr),
        // None accepts: let the checks report it, for the first address.
        Err(_) => Ok(addrs[0]),
    }
}

/// `read` as every later lesson needs it: some bytes (maybe fewer than
/// asked), `0` once the peer has closed its side, and a read interrupted by
/// a signal (`Interrupted`: nothing was read) simply tried again. Lesson 1's
/// echo loop (`server::echo`) spells these cases out once.
pub fn read_some(mut stream: &TcpStream, buf: &mut [u8]) -> io::Result<usize> {
    loop {
        match io::Read::read(&mut stream, buf) {
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            result => {
                if let Ok(n) = result {
                    trace!("read() -> {n} bytes");
                }
                return result;
            }
        }
    }
}

/// After our last bytes, how long [`close_gently`] keeps reading (and
/// dropping) what the peer still sends...
pub const LINGER: Duration = Duration::from_secs(2);
/// ... and how many bytes, at most.
pub const LINGER_BYTES: usize = 2 * 1024 * 1024;

/// Ends a connection without losing our last bytes (a reply, a notice such
/// as "line too long"). Closing a socket while unread bytes wait in its
/// receive buffer makes the kernel send RST instead of FIN, and a RST can
/// destroy our last bytes in the peer's kernel before the peer reads them.
/// So: send our FIN with `shutdown(Write)`, then read and drop what the peer
/// still sends until it closes too, bounded by [`LINGER`] and
/// [`LINGER_BYTES`] so that a peer that trickles bytes cannot hold us.
/// The caller drops the socket afterwards: that is the `close`.
///
/// Lessons 3 and 4 end connections this way; lesson 5 does the same without
/// blocking, one readiness event at a time.
pub fn close_gently(mut stream: &TcpStream, peer: SocketAddr) {
    // shutdown(Write): the peer reads our last bytes, then end of stream,
    // while we can still read what it sends.
    let _ = stream.shutdown(std::net::Shutdown::Write);
    trace!("shutdown({peer}, Write)");
    let deadline = std::time::Instant::now() + LINGER;
    let mut buf = [0u8; 16 * 1024];
    let mut drained = 0;
    while drained < LINGER_BYTES {
        let left = deadline.saturating_duration_since(std::time::Instant::now());
        if left.is_zero() || stream.set_read_timeout(Some(left)).is_err() {
            break;
        }
        // read() waits for the peer's next bytes, its FIN (0), or the timeout.
        match io::Read::read(&mut stream, &mut buf) {
            Ok(0) | Err(_) => break,
            Ok(n) => drained += n,
        }
    }
    trace!("close({peer})");
}

/// The peer's address for a trace line, or `?` once the socket is gone
/// (it costs a system call: call it only where tracing is on, as `trace!`
/// arguments are).
pub fn peer_name(stream: &TcpStream) -> String {
    stream
        .peer_addr()
        .map_or_else(|_| "?".to_string(), |peer| peer.to_string())
}

/// Closes abruptly, as a crashed client would: `SO_LINGER` with a zero
/// timeout makes `close` send RST instead of FIN, dropping unsent data.
/// Tests and checks use it to play a client that vanishes mid-message.
pub fn close_with_reset(stream: TcpStream) -> io::Result<()> {
    socket2::SockRef::from(&stream).set_linger(Some(Duration::ZERO))?;
    trace!("close() with SO_LINGER 0: reset");
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn port_zero_gets_a_real_port() {
        let listener = listen("127.0.0.1", 0, DEFAULT_BACKLOG).unwrap();
        assert_ne!(listener.local_addr().unwrap().port(), 0);
    }

    #[test]
    fn a_taken_port_is_address_in_use() {
        let first = listen("127.0.0.1", 0, DEFAULT_BACKLOG).unwrap();
        let port = first.local_addr().unwrap().port();
        let err = listen("127.0.0.1", port, DEFAULT_BACKLOG).unwrap_err();
        let io_err = err.downcast_ref::<io::Error>().unwrap();
        assert_eq!(io_err.kind(), io::ErrorKind::AddrInUse);
    }

    #[test]
    fn a_bracketed_ipv6_address_is_accepted() {
        assert_eq!(
            resolve("[::1]", 80).unwrap()[0],
            "[::1]:80".parse().unwrap()
        );
    }

    #[test]
    fn listening_on_the_ipv6_wildcard_takes_ipv4_clients_too() {
        let Ok(listener) = listen("::", 0, DEFAULT_BACKLOG) else {
            eprintln!("skipped: this machine has no IPv6");
            return;
        };
        let port = listener.local_addr().unwrap().port();
        let stream = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let (_, peer) = listener.accept().unwrap();
        assert_eq!(peer.port(), stream.local_addr().unwrap().port());
    }

    #[test]
    fn unknown_host_names_the_host() {
        let err = resolve("no-such-host.invalid", 80).unwrap_err();
        assert!(err.is::<UnknownHost>(), "{err:#}");
    }
}
