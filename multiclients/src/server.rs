//! The server side: accept clients one after another, for ever, and echo
//! each with lesson 1's code.

use std::net::{SocketAddr, TcpListener, TcpStream};
use std::thread;
use std::time::Duration;

use plumbing::{log, trace};

/// After a failed `accept`, wait this long before trying again, so that a
/// lasting failure (out of file descriptors) does not spin the CPU.
pub const ACCEPT_RETRY_DELAY: Duration = Duration::from_millis(100);

/// How long a client may send nothing before the server moves on to the
/// next one, unless `--idle-timeout` says otherwise. In an iterative server
/// a client that connects and stays silent blocks everyone behind it, so
/// silence must have a limit; a person typing gets a generous one.
pub const DEFAULT_IDLE_TIMEOUT: Duration = Duration::from_secs(60);

/// Serves clients one at a time, for ever, with [`DEFAULT_IDLE_TIMEOUT`].
pub fn run(listener: TcpListener) -> anyhow::Result<()> {
    run_with_idle_timeout(listener, DEFAULT_IDLE_TIMEOUT)
}

/// Serves clients one at a time, for ever: a failed `accept` is logged and
/// retried, so this never returns (the `Result` keeps every lesson's `run`
/// alike). A client silent for `idle_timeout` is closed, so the next gets its turn.
pub fn run_with_idle_timeout(listener: TcpListener, idle_timeout: Duration) -> anyhow::Result<()> {
    let mut served: u64 = 0;
    loop {
        let (stream, peer) = accept_next(&listener);
        served += 1;
        log!("accepted client #{served}; any later client waits in the backlog");
        // A read timeout makes read() give up after `idle_timeout` without a
        // byte: lesson 1's echo loop then ends with a "timed out" error,
        // which it logs, and this loop goes on to the next client.
        if let Err(err) = stream.set_read_timeout(Some(idle_timeout)) {
            log!("cannot set a read timeout for {peer}: {err}");
        }
        // The whole conversation happens here, so the next accept() waits
        // until this client leaves: that is what "iterative" means.
        basic::server::handle_client(stream, peer);
    }
}

/// The next client, however long it takes. Lessons 3 and 4 use it too.
pub fn accept_next(listener: &TcpListener) -> (TcpStream, SocketAddr) {
    loop {
        // accept() takes the oldest completed connection from the backlog,
        // blocking until there is one. Clients that connected while we were
        // busy have been waiting there, their bytes buffered by the kernel.
        match listener.accept() {
            Ok((stream, peer)) => {
                trace!("accept() -> {peer}");
                return (stream, peer);
            }
            Err(err) => {
                // One failed accept (a client that reset while queued, or no
                // file descriptors left) is no reason to stop serving.
                log!(
                    "accept failed: {}; still listening",
                    plumbing::errors::describe_io(&err)
                );
                thread::sleep(ACCEPT_RETRY_DELAY);
            }
        }
    }
}
