//! Helpers shared by this lesson's tests: start the server on
//! `127.0.0.1:0`, and chat clients that read whole lines with a timeout.

#![allow(dead_code)] // each test file uses a different part of this module

pub mod naive;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};

use multiclients_threaded::server::{self, ServerOptions};
use plumbing::testing::start_server;

/// Starts the lesson's server with `options`; returns its address.
pub fn start(options: ServerOptions) -> SocketAddr {
    start_server(move |listener| server::run(listener, &options)).0
}

/// The default options, without a log line per chat message.
pub fn quiet() -> ServerOptions {
    ServerOptions {
        log_messages: false,
        ..ServerOptions::default()
    }
}

/// One chat connection. Every read has the timeout of
/// [`plumbing::testing::connect`], so a missing line fails the test.
pub struct Chat {
    pub stream: TcpStream,
    reader: BufReader<TcpStream>,
    /// The notices [`Chat::chat_line`] skipped, in order.
    pub notices: Vec<String>,
}

impl Chat {
    pub fn connect(addr: SocketAddr) -> Chat {
        let stream = plumbing::testing::connect(addr);
        let reader = BufReader::new(stream.try_clone().expect("clone the socket"));
        Chat {
            stream,
            reader,
            notices: Vec::new(),
        }
    }

    /// Connects and reads the welcome notice: once it has arrived, the
    /// server has put this client in the room. Returns the client and the
    /// name the server gave it.
    pub fn join(addr: SocketAddr) -> (Chat, String) {
        let mut chat = Chat::connect(addr);
        let welcome = chat.line();
        let name = welcome
            .strip_prefix("* welcome, ")
            .and_then(|rest| rest.split(':').next())
            .unwrap_or_else(|| panic!("expected a welcome notice, got {welcome:?}"))
            .to_string();
        (chat, name)
    }

    pub fn send(&mut self, line: &str) {
        self.stream
            .write_all(format!("{line}\n").as_bytes())
            .expect("send a line");
    }

    /// The next line, with its `\n`.
    pub fn line(&mut self) -> String {
        let mut line = String::new();
        match self.reader.read_line(&mut line) {
            Ok(0) => panic!("the server closed the connection; expected a line"),
            Ok(_) => line,
            Err(err) => panic!("expected a line, got {line:?} and then: {err}"),
        }
    }

    /// Expects exactly these bytes as the next line.
    pub fn expect(&mut self, expected: &str) {
        assert_eq!(self.line(), expected);
    }

    /// The next line that is not a `* ` notice.
    pub fn chat_line(&mut self) -> String {
        loop {
            let line = self.line();
            if !line.starts_with("* ") {
                return line;
            }
            self.notices.push(line);
        }
    }

    /// Vanishes as a crashed client would: the connection ends with a reset.
    pub fn reset(self) {
        drop(self.reader); // the second handle on the socket would keep it open
        basic::net::close_with_reset(self.stream).expect("SO_LINGER");
    }

    /// Reads until the server closes (or resets) the connection; returns
    /// what arrived.
    pub fn rest(&mut self) -> Vec<u8> {
        let mut rest = Vec::new();
        match self.reader.read_to_end(&mut rest) {
            Ok(_) => rest,
            Err(err) if err.kind() == std::io::ErrorKind::ConnectionReset => rest,
            Err(err) => panic!("expected the server to close; got {rest:?}, then: {err}"),
        }
    }
}

impl Chat {
    /// Reads until each of `senders` delivered `count` lines `NAME: K`,
    /// with K counting up from 0 for each sender (once each, in order);
    /// returns the notices seen on the way.
    pub fn expect_numbered(&mut self, senders: &[&str], count: usize) -> Vec<String> {
        let mut next = vec![0usize; senders.len()];
        let mut notices = Vec::new();
        while next.iter().any(|n| *n < count) {
            let line = self.line();
            if line.starts_with("* ") {
                notices.push(line);
                continue;
            }
            let (name, k) = line.trim_end().split_once(": ").expect("NAME: TEXT");
            let from = senders.iter().position(|s| *s == name);
            let from = from.unwrap_or_else(|| panic!("a line from {name:?}: {line:?}"));
            assert_eq!(k, next[from].to_string(), "from {name}");
            next[from] += 1;
        }
        notices
    }
}
