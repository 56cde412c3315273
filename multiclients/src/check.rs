//! `multiclients check`: lesson 1's echo checks, then the checks that need
//! several connections: clients are served one after another, and the next
//! is served as soon as the one before it leaves.

use std::io::Write;
use std::net::{SocketAddr, TcpStream};
use std::time::Duration;

use basic::net::connect_within;
use plumbing::checklist::{self, Checklist, Failure, Report};

/// How long a waiting client must stay unanswered to count as waiting. A
/// server that serves clients at once answers well within this.
pub fn quiet_window(timeout: Duration) -> Duration {
    (timeout / 5).clamp(Duration::from_millis(200), Duration::from_secs(1))
}

/// Runs every check against the server at `addrs` (a host name may resolve
/// to several: the echo checks find the one that answers, and the rest talk
/// to it).
pub fn run(addrs: &[SocketAddr], timeout: Duration, out: &mut dyn Write) -> Report {
    let mut list = Checklist::new(out);
    let answered = basic::check::run_echo_checks(&mut list, addrs, timeout);
    let addr = answered.unwrap_or(addrs[0]);
    one_after_another(&mut list, addr, timeout);
    list.check(
        "a client that resets mid-line does not stop the server",
        || survives_reset(addr, timeout),
    );
    list.finish()
}

/// Three clients connect at once; each is answered only when the one before
/// it has left.
fn one_after_another(list: &mut Checklist, addr: SocketAddr, timeout: Duration) {
    let connect_all =
        || -> Result<Vec<TcpStream>, Failure> { (0..3).map(|_| connect(addr, timeout)).collect() };
    let mut clients = Vec::new();
    let waiting = list.check("the first client is served while two more wait", || {
        clients = connect_all()?;
        for (i, client) in clients.iter().enumerate() {
            send(client, format!("client {i}\n").as_bytes())?;
        }
        echoed(&clients[0], b"client 0\n", timeout)?;
        checklist::expect_silence(&clients[1], quiet_window(timeout))?;
        checklist::expect_silence(&clients[2], quiet_window(timeout))
    });
    for next in 1..3 {
        let name = format!("client {next} is served once client {} leaves", next - 1);
        if !waiting {
            list.not_run(&name, "the clients were not served one after another");
            continue;
        }
        list.check(&name, || {
            checklist::half_close(&clients[next - 1])?;
            echoed(
                &clients[next],
                format!("client {next}\n").as_bytes(),
                timeout,
            )
        });
    }
}

/// A client sends half a line and vanishes with a reset; the next client
/// must still be served.
fn survives_reset(addr: SocketAddr, timeout: Duration) -> Result<(), Failure> {
    let vanishing = connect(addr, timeout)?;
    send(&vanishing, b"half a li")?;
    basic::net::close_with_reset(vanishing)
        .map_err(|err| Failure::because(format!("cannot reset the connection: {err}")))?;
    let next = connect(addr, timeout)?;
    send(&next, b"still there?\n")?;
    echoed(&next, b"still there?\n", timeout)
}

fn connect(addr: SocketAddr, timeout: Duration) -> Result<TcpStream, Failure> {
    connect_within(addr, timeout).map_err(|err| {
        Failure::because(format!(
            "cannot connect: {}",
            plumbing::errors::describe_io(&err)
        ))
    })
}

fn send(mut stream: &TcpStream, bytes: &[u8]) -> Result<(), Failure> {
    stream.write_all(bytes).map_err(|err| {
        Failure::because(format!("sending {} failed: {err}", checklist::show(bytes)))
    })
}

fn echoed(stream: &TcpStream, line: &[u8], timeout: Duration) -> Result<(), Failure> {
    checklist::expect_reply(stream, &checklist::show(line), line, timeout)
}
