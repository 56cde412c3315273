//! Helpers for the tests of every lesson: start a server on `127.0.0.1:0`,
//! talk to it with timeouts, run a lesson's binary and wait for its
//! `listening on` line. Nothing here sleeps to synchronise: each helper waits
//! for an event (a line, a byte, a process exit) with an upper bound, and
//! panics with a clear message when the bound is hit, so a bug fails a test
//! fast instead of hanging the run.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::{self, JoinHandle};
use std::time::{Duration, Instant};

/// The upper bound on any single wait in a test.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// A listener on `127.0.0.1` with a port the kernel chose.
pub fn loopback_listener() -> TcpListener {
    // Whoever asks for a listener runs a server in this process: its event
    // log would only flood the test output.
    crate::trace::silence_logs();
    TcpListener::bind("127.0.0.1:0").expect("cannot listen on 127.0.0.1:0")
}

/// Runs `serve` on a thread with a fresh loopback listener; returns the
/// address to connect to and the thread, whose result the test may check.
pub fn start_server<F>(serve: F) -> (SocketAddr, JoinHandle<anyhow::Result<()>>)
where
    F: FnOnce(TcpListener) -> anyhow::Result<()> + Send + 'static,
{
    let listener = loopback_listener();
    let addr = listener.local_addr().expect("listener has an address");
    (addr, thread::spawn(move || serve(listener)))
}

/// Waits for a server thread to return, at most [`TEST_TIMEOUT`].
pub fn join_within<T: Send + 'static>(handle: JoinHandle<T>) -> T {
    let deadline = Instant::now() + TEST_TIMEOUT;
    while !handle.is_finished() {
        assert!(
            Instant::now() < deadline,
            "the server thread did not finish within {TEST_TIMEOUT:?}"
        );
        thread::sleep(Duration::from_millis(5)); // polling a finish flag, not synchronising
    }
    handle.join().expect("the server thread panicked")
}

/// Connects with read and write timeouts of [`TEST_TIMEOUT`].
pub fn connect(addr: SocketAddr) -> TcpStream {
    let stream =
        TcpStream::connect_timeout(&addr, TEST_TIMEOUT).expect("cannot connect to the test server");
    stream
        .set_read_timeout(Some(TEST_TIMEOUT))
        .expect("set a read timeout");
    stream
        .set_write_timeout(Some(TEST_TIMEOUT))
        .expect("set a write timeout");
    stream.set_nodelay(true).expect("set TCP_NODELAY");
    stream
}

/// Reads exactly `len` bytes, or panics saying what did arrive.
pub fn read_exactly(stream: &mut TcpStream, len: usize) -> Vec<u8> {
    let mut got = vec![0; len];
    if let Err(err) = stream.read_exact(&mut got) {
        panic!("expected {len} bytes, reading failed: {err}");
    }
    got
}

/// Reads until the peer closes, or panics after [`TEST_TIMEOUT`].
pub fn read_to_close(stream: &mut TcpStream) -> Vec<u8> {
    let mut got = Vec::new();
    if let Err(err) = stream.read_to_end(&mut got) {
        panic!(
            "expected the server to close; got {} bytes, then: {err}",
            got.len()
        );
    }
    got
}

/// A `Write` whose bytes a test can read afterwards, from any thread.
#[derive(Clone, Default)]
pub struct SharedOutput(Arc<Mutex<Vec<u8>>>);

impl SharedOutput {
    pub fn contents(&self) -> Vec<u8> {
        self.0.lock().expect("output lock").clone()
    }
}

impl Write for SharedOutput {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("output lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// A lesson binary running as a server; killed when dropped.
pub struct ServerProcess {
    pub child: Child,
    /// The address from its `listening on` line.
    pub addr: SocketAddr,
    /// Its later stdout lines, as they come.
    pub lines: mpsc::Receiver<String>,
}

impl ServerProcess {
    /// Starts `binary` with `args` and waits for its `listening on ADDR` line.
    pub fn start(binary: &str, args: &[&str]) -> ServerProcess {
        let mut child = Command::new(binary)
            .args(args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
        let lines = forward_lines(BufReader::new(child.stdout.take().expect("piped stdout")));
        let first = lines.recv_timeout(TEST_TIMEOUT).unwrap_or_else(|_| {
            let _ = child.kill();
            panic!("{binary} {args:?} printed no first line within {TEST_TIMEOUT:?}")
        });
        let addr = first
            .strip_prefix("listening on ")
            .and_then(|addr| addr.parse().ok())
            .unwrap_or_else(|| panic!("first line should be `listening on ADDR`, was {first:?}"));
        ServerProcess { child, addr, lines }
    }

    /// Waits for a stdout line containing `text`, returning it.
    pub fn expect_line(&self, text: &str) -> String {
        let deadline = Instant::now() + TEST_TIMEOUT;
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => continue,
                Err(_) => {
                    panic!("the server printed no line containing {text:?} within {TEST_TIMEOUT:?}")
                }
            }
        }
    }

    /// Waits for the process to exit by itself, at most [`TEST_TIMEOUT`].
    pub fn wait(&mut self) -> ExitStatus {
        wait_within(&mut self.child, TEST_TIMEOUT)
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn forward_lines(stdout: impl BufRead + Send + 'static) -> mpsc::Receiver<String> {
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        for line in stdout.lines().map_while(Result::ok) {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    rx
}

/// Runs `binary args` as a server whose stdout is a pipe that nobody reads
/// (a paused terminal, `| less`, Ctrl-S) while `drive` talks to it, so
/// `drive` must find it serving in full. Then reads its stdout again and
/// waits for the line that says how many log lines were skipped.
///
/// `drive` must make the server log well past what the pipe (64 KiB on
/// Linux) and the server's own log buffer hold.
pub fn assert_serves_with_an_unread_console(
    binary: &str,
    args: &[&str],
    drive: impl FnOnce(SocketAddr),
) -> ServerProcess {
    let mut child = Command::new(binary)
        .args(args)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
    let mut stdout = BufReader::new(child.stdout.take().expect("piped stdout"));
    // Read the first line on a thread, to bound the wait, and take the
    // reader back: from then on nobody reads the pipe.
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut first = String::new();
        let _ = stdout.read_line(&mut first);
        let _ = tx.send((first, stdout));
    });
    let Ok((first, stdout)) = rx.recv_timeout(TEST_TIMEOUT) else {
        let _ = child.kill();
        panic!("{binary} {args:?} printed no first line within {TEST_TIMEOUT:?}");
    };
    let addr = first
        .trim_end()
        .strip_prefix("listening on ")
        .and_then(|addr| addr.parse().ok())
        .unwrap_or_else(|| panic!("first line should be `listening on ADDR`, was {first:?}"));
    drive(addr);
    let server = ServerProcess {
        child,
        addr,
        lines: forward_lines(stdout),
    };
    let note = server.expect_line("log lines skipped: the console is slower than the server");
    assert!(note.starts_with('('), "{note}");
    server
}

/// Sends `rounds` one-byte messages over one connection, each echoed before
/// the next: a server that logs every read logs `rounds` lines.
pub fn echo_round_trips(addr: SocketAddr, rounds: usize) -> TcpStream {
    let mut stream = connect(addr);
    let mut echo = [0u8; 1];
    for round in 0..rounds {
        stream.write_all(b"x").expect("send one byte");
        stream
            .read_exact(&mut echo)
            .unwrap_or_else(|err| panic!("no echo for round {round}: {err}"));
        assert_eq!(&echo, b"x");
    }
    stream
}

/// What a finished command printed, and how it exited.
pub struct Finished {
    pub status: ExitStatus,
    pub stdout: Vec<u8>,
    pub stderr: String,
}

/// Runs `binary args`, feeding `stdin`, and waits at most [`TEST_TIMEOUT`].
pub fn run_command(binary: &str, args: &[&str], stdin: &[u8]) -> Finished {
    let mut child = Command::new(binary)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|err| panic!("cannot start {binary}: {err}"));
    let mut input = child.stdin.take().expect("piped stdin");
    let stdin = stdin.to_vec();
    let feeder = thread::spawn(move || {
        let _ = input.write_all(&stdin); // dropping `input` then closes it: end of input
    });
    let stdout = read_all_in_background(child.stdout.take().expect("piped stdout"));
    let stderr = read_all_in_background(child.stderr.take().expect("piped stderr"));
    let status = wait_within(&mut child, TEST_TIMEOUT);
    let _ = feeder.join();
    let stdout = stdout.join().expect("stdout reader");
    let stderr = String::from_utf8_lossy(&stderr.join().expect("stderr reader")).into_owned();
    Finished {
        status,
        stdout,
        stderr,
    }
}

/// The contract's error for a port that is taken: `BINARY server --port P`
/// exits non-zero with one line, `error: cannot listen on ...: address
/// already in use (is another server running? try --port 0)`.
pub fn assert_taken_port_is_one_line_error(binary: &str) {
    let taken = loopback_listener();
    let port = taken.local_addr().expect("listener has an address").port();
    let server = run_command(binary, &["server", "--port", &port.to_string()], b"");
    assert!(
        !server.status.success(),
        "{binary} server started on a taken port"
    );
    assert_eq!(
        server.stderr,
        format!(
            "error: cannot listen on 127.0.0.1:{port}: address already in use \
             (is another server running? try --port 0)\n"
        )
    );
}

/// The contract's error for a refused connection: `BINARY client --port P`
/// where nothing listens exits non-zero with one line naming the address,
/// `connection refused`, and the hint.
pub fn assert_refused_connection_is_one_line_error(binary: &str) {
    // The listener is closed at the end of this statement: nothing listens there now.
    let port = loopback_listener()
        .local_addr()
        .expect("listener has an address")
        .port();
    let client = run_command(binary, &["client", "--port", &port.to_string()], b"hello\n");
    assert!(
        !client.status.success(),
        "{binary} client succeeded with no server"
    );
    let stderr = &client.stderr;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(
        stderr.starts_with(&format!("error: cannot connect to 127.0.0.1:{port}: ")),
        "{stderr}"
    );
    assert!(
        stderr.ends_with(
            "connection refused (is the server running, on this host and port? start it first)\n"
        ),
        "{stderr}"
    );
}

fn read_all_in_background(mut pipe: impl Read + Send + 'static) -> JoinHandle<Vec<u8>> {
    thread::spawn(move || {
        let mut bytes = Vec::new();
        let _ = pipe.read_to_end(&mut bytes);
        bytes
    })
}

fn wait_within(child: &mut Child, timeout: Duration) -> ExitStatus {
    let deadline = Instant::now() + timeout;
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            return status;
        }
        if Instant::now() >= deadline {
            let _ = child.kill();
            panic!("the process did not exit within {timeout:?}");
        }
        thread::sleep(Duration::from_millis(5)); // polling for exit, not synchronising
    }
}

/// Starts one of the C reference servers (the yardsticks that benchmarks
/// compare against), building it first with the system's C compiler.
///
/// The sources are looked for in `$SOCKET_LESSONS_REFERENCE`, else in
/// `../shared/reference/` beside the workspace. Returns `None`, after saying
/// why on stderr, where there is no source, no compiler, or the build
/// fails: a benchmark then reports its own figures without the ratio.
pub fn start_reference_server(source_name: &str, args: &[&str]) -> Option<ServerProcess> {
    // This crate sits in basic/plumbing/: the workspace is two folders up.
    let workspace = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let folder = std::env::var_os("SOCKET_LESSONS_REFERENCE")
        .map(std::path::PathBuf::from)
        .unwrap_or_else(|| workspace.join("../shared/reference"));
    let source = folder.join(source_name);
    if !source.exists() {
        eprintln!(
            "note: no reference server at {} (set SOCKET_LESSONS_REFERENCE to its folder); \
             reporting this server's figures alone",
            source.display()
        );
        return None;
    }
    let binary = std::env::temp_dir().join(format!(
        "socket-lessons-{}",
        source_name.trim_end_matches(".c")
    ));
    let built = Command::new("cc")
        .args(["-O2", "-Wall", "-o"])
        .arg(&binary)
        .arg(&source)
        .status();
    if !matches!(built, Ok(status) if status.success()) {
        eprintln!(
            "note: cannot build {} with `cc` ({built:?}); reporting this server's figures alone",
            source.display()
        );
        return None;
    }
    Some(ServerProcess::start(binary.to_str()?, args))
}

/// The machine a benchmark ran on, for its report: cores and CPU model.
pub fn machine() -> String {
    let cores = thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find(|line| line.starts_with("model name"))
                .and_then(|line| line.split(':').nth(1))
                .map(|model| model.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string());
    format!("{cores} cores, {model}")
}
