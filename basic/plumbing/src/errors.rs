//! Errors that reach people: one line, lowercase, with a hint when we know
//! what usually causes them.
//!
//! `main` prints `error: cannot listen on 127.0.0.1:5000: address already in
//! use (is another server running? try --port 0)` instead of a backtrace.

use std::io;

/// A host name that the resolver (DNS, `/etc/hosts`) does not know.
#[derive(Debug)]
pub struct UnknownHost(pub String);

impl std::fmt::Display for UnknownHost {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown host {:?}", self.0)
    }
}

impl std::error::Error for UnknownHost {}

/// The whole error chain as one line, followed by a hint where one fits.
pub fn one_line(err: &anyhow::Error) -> String {
    let causes: Vec<String> = err.chain().map(describe).collect();
    let mut line = format!("error: {}", causes.join(": "));
    if let Some(hint) = err.chain().find_map(hint) {
        line.push_str(&format!(" ({hint})"));
    }
    line
}

fn describe(cause: &(dyn std::error::Error + 'static)) -> String {
    match cause.downcast_ref::<io::Error>() {
        Some(io_err) => describe_io(io_err),
        None => cause.to_string(),
    }
}

/// Our wording for the socket errors students meet most (`connection reset
/// by peer`, without the operating system's code); anything else as the
/// operating system words it. For log lines and check failures.
pub fn describe_io(io_err: &io::Error) -> String {
    let words = match io_err.kind() {
        io::ErrorKind::AddrInUse => "address already in use",
        io::ErrorKind::AddrNotAvailable => "address not available on this machine",
        io::ErrorKind::PermissionDenied => "permission denied",
        io::ErrorKind::ConnectionRefused => "connection refused",
        io::ErrorKind::ConnectionReset => "connection reset by peer",
        io::ErrorKind::ConnectionAborted => "connection aborted",
        io::ErrorKind::NotConnected => "not connected: the connection is gone",
        io::ErrorKind::BrokenPipe => "the peer closed the connection",
        io::ErrorKind::HostUnreachable => "host unreachable",
        io::ErrorKind::NetworkUnreachable => "network unreachable",
        // A socket read timeout is `WouldBlock` on Unix, `TimedOut` on Windows.
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => "timed out",
        _ => return io_err.to_string(),
    };
    words.to_string()
}

/// A hint only where the error really suggests one.
fn hint(cause: &(dyn std::error::Error + 'static)) -> Option<&'static str> {
    if cause.is::<UnknownHost>() {
        return Some("check the spelling, or use an address such as 127.0.0.1");
    }
    let hint = match cause.downcast_ref::<io::Error>()?.kind() {
        io::ErrorKind::AddrInUse => "is another server running? try --port 0",
        io::ErrorKind::AddrNotAvailable => {
            "use an address of this machine, such as 127.0.0.1 or 0.0.0.0"
        }
        io::ErrorKind::PermissionDenied => {
            "ports below 1024 need administrator rights; try a port above 1024"
        }
        io::ErrorKind::ConnectionRefused => {
            "is the server running, on this host and port? start it first"
        }
        io::ErrorKind::TimedOut | io::ErrorKind::WouldBlock => {
            "is the host reachable? a firewall may be dropping the packets"
        }
        io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable => {
            "check the address and this machine's network connection"
        }
        io::ErrorKind::ConnectionReset | io::ErrorKind::ConnectionAborted => {
            "the other side stopped, or dropped this connection"
        }
        _ => return None,
    };
    Some(hint)
}

#[cfg(test)]
mod tests {
    use super::*;
    use anyhow::Context as _;

    fn io_failure(kind: io::ErrorKind) -> anyhow::Result<()> {
        Err(io::Error::from(kind)).context("cannot listen on 127.0.0.1:5000")
    }

    #[test]
    fn address_in_use_gets_the_contract_wording_and_hint() {
        let err = io_failure(io::ErrorKind::AddrInUse).unwrap_err();
        assert_eq!(
            one_line(&err),
            "error: cannot listen on 127.0.0.1:5000: address already in use \
             (is another server running? try --port 0)"
        );
    }

    #[test]
    fn unknown_error_kinds_get_no_hint() {
        let err = io_failure(io::ErrorKind::InvalidData).unwrap_err();
        assert!(!one_line(&err).contains('('), "{}", one_line(&err));
    }

    #[test]
    fn unknown_host_gets_a_spelling_hint() {
        let err = anyhow::Error::new(UnknownHost("nowhere".into()));
        assert!(one_line(&err).contains("check the spelling"));
    }
}
