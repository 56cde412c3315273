//! Out of file descriptors, `accept` fails and a newcomer would wait in the
//! backlog for ever: the server must refuse it with a notice it can read,
//! and go on serving. This test lowers its own process's open-files limit,
//! so it lives alone in this file (each file in `tests/` is one process).
//! Linux only: it counts open descriptors in `/proc/self/fd`.
#![cfg(target_os = "linux")]

use std::fs::File;
use std::io::Write;
use std::net::TcpStream;

use framed_header::frame::Framing;
use framed_header::server::{self, Config};
use plumbing::testing::{connect, read_exactly, read_to_close, start_server};
use rlimit::Resource;
use socket2::{Domain, SockAddr, Socket, Type};

/// The server's framed answer: "12", 126 spaces, "Msg received".
const REPLY: &[u8; 140] = b"12                                                                                                                              Msg received";

fn message(text: &str) -> Vec<u8> {
    let mut bytes = format!("{:<128}", text.len()).into_bytes();
    bytes.extend_from_slice(text.as_bytes());
    bytes
}

fn round_trip(stream: &mut TcpStream, text: &str) {
    stream.write_all(&message(text)).unwrap();
    assert_eq!(read_exactly(stream, 140), REPLY);
}

/// A socket, made now, to connect later without a new descriptor.
fn unconnected_socket() -> Socket {
    Socket::new(Domain::IPV4, Type::STREAM, None).unwrap()
}

fn connect_made(socket: Socket, addr: std::net::SocketAddr) -> TcpStream {
    socket.connect(&SockAddr::from(addr)).unwrap();
    let stream = TcpStream::from(socket);
    stream
        .set_read_timeout(Some(plumbing::testing::TEST_TIMEOUT))
        .unwrap();
    stream
}

#[test]
fn out_of_descriptors_a_newcomer_is_refused_with_a_notice_and_the_server_goes_on() {
    let config = Config::new(Framing::new(128, 1024 * 1024).unwrap(), false);
    let (addr, _) = start_server(move |listener| server::run(listener, config));
    // A round trip: the accept loop, and its spare descriptor, are up.
    let mut first = connect(addr);
    round_trip(&mut first, "hello");
    let (early, newcomer) = (unconnected_socket(), unconnected_socket());

    // Use up every descriptor this process may open.
    let (soft, hard) = Resource::NOFILE.get().unwrap();
    let open_now = std::fs::read_dir("/proc/self/fd").unwrap().count() as u64;
    Resource::NOFILE.set(open_now + 16, hard).unwrap();
    let mut filler: Vec<File> = Vec::new();
    while let Ok(file) = File::open("/dev/null") {
        filler.push(file);
    }
    // If the server was already waiting in accept(), it holds a descriptor
    // (Linux takes it before the wait): this client gets it and is served.
    // If not, this one is refused like the next. Either way, from now on
    // every accept fails, and the spare is what answers.
    let _early = connect_made(early, addr);
    let mut newcomer = connect_made(newcomer, addr);
    let got = read_to_close(&mut newcomer);

    drop(filler);
    Resource::NOFILE.set(soft, hard).unwrap();
    let text = String::from_utf8_lossy(&got[128.min(got.len())..]).into_owned();
    assert_eq!(
        text,
        "!ERROR the server is out of file descriptors; try again later"
    );
    round_trip(&mut first, "still served");
    round_trip(&mut connect(addr), "and a new client too");
}
