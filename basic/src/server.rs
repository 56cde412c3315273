//! The server side: accept one client, echo back every byte it sends until
//! it closes its side, close ours, and return. `multiclients` reuses
//! [`handle_client`] in a loop.

use std::io::{self, Read as _, Write as _};
use std::net::{SocketAddr, TcpListener, TcpStream};

use anyhow::Context as _;

use plumbing::trace::preview;
use plumbing::{log, trace};

/// How many bytes one `read` may return. Any size works: TCP is a byte
/// stream, so a small buffer only means more reads, never lost data. 64 KiB
/// takes a burst in few reads (one system call each) and costs nothing while
/// only a line at a time arrives.
pub const BUF_LEN: usize = 64 * 1024;

/// Serves exactly one client, then returns (and `main` exits 0).
pub fn run(listener: TcpListener) -> anyhow::Result<()> {
    // accept() blocks until a client has completed the TCP handshake (the
    // kernel did that for us, in the backlog), then returns a *new* socket
    // for that one connection. The listening socket stays as it was.
    let (stream, peer) = listener.accept().context("accept failed")?;
    trace!("accept() -> {peer}");
    handle_client(stream, peer);
    // Dropping the listener closes the listening socket: from here on a new
    // client's connect is refused.
    trace!("close(listener)");
    Ok(())
}

/// Echoes one connection from start to end, logging what happens. Errors
/// belong to this client only, so they are logged, not returned.
pub fn handle_client(stream: TcpStream, peer: SocketAddr) {
    log!("client connected: {peer}");
    match echo(stream, peer) {
        Ok(total) => log!("client left: {peer} ({total} bytes echoed)"),
        // A reset (the client was killed, or closed with unread data) lands
        // here: it ends this connection and nothing else.
        // A read timeout (set by a server that limits silence, as lesson 2's
        // does) is `WouldBlock` on Unix and `TimedOut` on Windows.
        Err(err) if plumbing::checklist::is_timeout(&err) => {
            log!("client idle: {peer} sent nothing for the idle timeout; closing")
        }
        Err(err) => log!(
            "client lost: {peer}: {}",
            plumbing::errors::describe_io(&err)
        ),
    }
}

/// The echo loop: read what arrived, write it back, until the client closes
/// its writing side. Returns how many bytes were echoed.
pub fn echo(mut stream: TcpStream, peer: SocketAddr) -> io::Result<u64> {
    let mut buf = vec![0u8; BUF_LEN];
    let mut total = 0;
    loop {
        // read() blocks until at least one byte is there, and may return
        // fewer than were sent: message boundaries do not survive in TCP.
        let n = match stream.read(&mut buf) {
            Ok(n) => n,
            // A signal interrupted the wait; nothing was read, so try again.
            Err(err) if err.kind() == io::ErrorKind::Interrupted => continue,
            Err(err) => return Err(err),
        };
        trace!("read({peer}) -> {n} bytes");
        // read() returned 0: the peer closed its write half (sent FIN). Not
        // an error: it will send no more, though it may still be reading.
        if n == 0 {
            break;
        }
        log!("{peer}: echo {n} bytes {}", preview(&buf[..n], 40));
        // write_all() loops over short writes until every byte is handed to
        // the kernel; it blocks while the peer's receive window is full.
        stream.write_all(&buf[..n])?;
        trace!("write({peer}, {n} bytes)");
        total += n as u64;
    }
    // Dropping the stream closes our side: the kernel sends our FIN after
    // any bytes still queued, so the client reads every echo, then EOF.
    trace!("close({peer})");
    Ok(total)
}
