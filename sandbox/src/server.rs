//! The server side: one thread, many clients, no blocking call but the one
//! wait for "something is ready". Pick the loop that finds ready sockets;
//! the room they serve is the same ([`room`](crate::room)).

use std::net::TcpListener;

use crate::room::Options;

/// How the single thread finds sockets that have something to do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum EventLoop {
    /// Try every socket, sleep a little when none had anything (`naive.rs`).
    Naive,
    /// Ask the kernel which sockets are ready, through mio (`readiness.rs`).
    #[default]
    Readiness,
}

/// Serves the chat on `listener` for ever with the chosen loop.
pub fn run(listener: TcpListener, event_loop: EventLoop, options: Options) -> anyhow::Result<()> {
    match event_loop {
        EventLoop::Naive => crate::naive::run(listener, options),
        EventLoop::Readiness => crate::readiness::run(listener, options),
    }
}
