//! The `basic` binary itself: the contract's output lines, exit statuses and
//! one-line errors.

use std::io::Write;
use std::net::Shutdown;

use plumbing::testing::{ServerProcess, connect, read_to_close, run_command};

const BASIC: &str = env!("CARGO_BIN_EXE_basic");

#[test]
fn server_announces_its_real_port_and_exits_0_after_its_client() {
    let mut server = ServerProcess::start(BASIC, &["server", "--port", "0"]);
    assert_ne!(server.addr.port(), 0);
    let mut stream = connect(server.addr);
    stream.write_all(b"hi\n").unwrap();
    stream.shutdown(Shutdown::Write).unwrap();
    assert_eq!(read_to_close(&mut stream), b"hi\n");
    server.expect_line("client left");
    assert!(server.wait().success());
}

#[test]
fn piped_client_prints_every_echo_and_exits_0() {
    let server = ServerProcess::start(BASIC, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let input = b"alpha\nbeta\n\ngamma\n";
    let client = run_command(BASIC, &["client", "--port", &port], input);
    assert!(client.status.success(), "{}", client.stderr);
    assert_eq!(client.stdout, input);
}

#[test]
fn server_works_on_ipv6_loopback() {
    if std::net::TcpListener::bind("[::1]:0").is_err() {
        eprintln!("skipped: this machine has no IPv6 loopback");
        return;
    }
    let server = ServerProcess::start(BASIC, &["server", "--host", "::1", "--port", "0"]);
    assert!(server.addr.is_ipv6());
    let port = server.addr.port().to_string();
    let client = run_command(
        BASIC,
        &["client", "--host", "::1", "--port", &port],
        b"v6\n",
    );
    assert_eq!(client.stdout, b"v6\n", "{}", client.stderr);
}

#[test]
fn a_bad_option_value_is_one_line_error() {
    let server = run_command(BASIC, &["server", "--port", "70000"], b"");
    assert_eq!(server.status.code(), Some(2));
    assert_eq!(server.stderr.lines().count(), 1, "{}", server.stderr);
    assert!(
        server.stderr.starts_with("error: invalid value '70000'"),
        "{}",
        server.stderr
    );
    assert!(
        server.stderr.ends_with("(see --help)\n"),
        "{}",
        server.stderr
    );
}

#[test]
fn a_client_queued_behind_a_server_that_exits_reports_the_lost_connection() {
    let server = ServerProcess::start(BASIC, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    // The first client is served; the second waits in the backlog until the
    // server exits after the first, which resets the waiting connection.
    let mut first = connect(server.addr);
    first.write_all(b"first\n").unwrap();
    assert_eq!(plumbing::testing::read_exactly(&mut first, 6), b"first\n");
    let second =
        std::thread::spawn(move || run_command(BASIC, &["client", "--port", &port], b"second\n"));
    first.shutdown(Shutdown::Write).unwrap();
    read_to_close(&mut first);
    let second = second.join().unwrap();
    assert!(!second.status.success());
    assert_eq!(second.stderr.lines().count(), 1, "{}", second.stderr);
    assert!(second.stderr.starts_with("error: "), "{}", second.stderr);
}

#[test]
fn a_taken_port_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_taken_port_is_one_line_error(BASIC);
}

#[test]
fn a_refused_connection_is_one_line_error_with_a_hint() {
    plumbing::testing::assert_refused_connection_is_one_line_error(BASIC);
}

#[test]
fn check_exits_0_against_the_server_and_1_when_nothing_listens() {
    let server = ServerProcess::start(BASIC, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let passing = run_command(BASIC, &["check", "--port", &port], b"");
    assert!(
        passing.status.success(),
        "{}",
        String::from_utf8_lossy(&passing.stdout)
    );
    drop(server);
    let failing = run_command(BASIC, &["check", "--port", &port, "--timeout", "0.5"], b"");
    assert_eq!(failing.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&failing.stdout).ends_with("0 passed, 9 failed\n"));
}

#[test]
fn trace_shows_the_socket_calls_on_stderr_only() {
    let mut server = ServerProcess::start(BASIC, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let client = run_command(BASIC, &["client", "--port", &port, "--trace"], b"x\n");
    assert_eq!(client.stdout, b"x\n");
    for call in [
        "connect(",
        "write(2 bytes)",
        "shutdown(Write)",
        "read() -> 2 bytes",
        "close()",
    ] {
        assert!(
            client.stderr.contains(call),
            "no {call:?} in {}",
            client.stderr
        );
    }
    assert!(server.wait().success());
}

#[test]
fn server_echoes_while_nobody_reads_its_log_and_says_what_it_skipped() {
    // 20,000 reads log 20,000 lines: far more than the pipe and the log's buffer hold.
    let mut client = None;
    let mut server = plumbing::testing::assert_serves_with_an_unread_console(
        BASIC,
        &["server", "--port", "0"],
        |addr| client = Some(plumbing::testing::echo_round_trips(addr, 20_000)),
    );
    // The console is read again: the client's departure is logged in full.
    drop(client);
    server.expect_line("client left");
    assert!(server.wait().success());
}

#[test]
fn a_recorded_session_draws_as_a_well_formed_diagram_with_the_calls_in_order() {
    let dir = std::env::temp_dir().join(format!("basic-diagram-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let [server_events, client_events, svg] =
        ["server.events", "client.events", "session.svg"].map(|name| dir.join(name));
    let mut server = ServerProcess::start(
        BASIC,
        &[
            "server",
            "--port",
            "0",
            "--trace-to",
            server_events.to_str().unwrap(),
        ],
    );
    let port = server.addr.port().to_string();
    let client = run_command(
        BASIC,
        &[
            "client",
            "--port",
            &port,
            "--trace-to",
            client_events.to_str().unwrap(),
        ],
        b"hello\n",
    );
    assert!(client.status.success(), "{}", client.stderr);
    assert!(server.wait().success());
    let drawn = run_command(
        BASIC,
        &[
            "diagram",
            server_events.to_str().unwrap(),
            client_events.to_str().unwrap(),
            "-o",
            svg.to_str().unwrap(),
        ],
        b"",
    );
    assert!(drawn.status.success(), "{}", drawn.stderr);
    let svg = std::fs::read_to_string(&svg).unwrap();
    std::fs::remove_dir_all(&dir).unwrap();

    let doc = roxmltree::Document::parse(&svg).expect("the diagram is well-formed XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let texts: Vec<&str> = doc
        .descendants()
        .filter(|node| node.has_tag_name("text"))
        .filter_map(|node| node.text())
        .collect();
    let position = |wanted: &str| {
        texts
            .iter()
            .position(|text| text.starts_with(wanted))
            .unwrap_or_else(|| panic!("no {wanted:?} in the diagram: {texts:?}"))
    };
    // Both lifelines, then the calls in the order they happened.
    assert_eq!(texts[0], "server");
    assert!(texts[1].starts_with("client 127.0.0.1:"), "{texts:?}");
    // Each side's calls in its order; the client connects after the server
    // listens (across processes only what causes what has an order).
    let orders: [&[&str]; 3] = [
        &[
            "socket(",
            "bind(",
            "listen(",
            "accept()",
            "read(",
            "write(127",
        ],
        &["connect(", "write(6 bytes)", "shutdown(Write)"],
        &["listen(", "connect("],
    ];
    for order in orders {
        let positions: Vec<usize> = order.iter().map(|call| position(call)).collect();
        assert!(positions.is_sorted(), "{order:?} out of order: {texts:?}");
    }
    // What crossed the wire: the handshake, the bytes both ways, FINs.
    assert!(
        texts.iter().filter(|text| **text == "6 bytes").count() >= 2,
        "{texts:?}"
    );
    assert!(texts.contains(&"FIN"), "{texts:?}");
    assert!(
        texts.iter().any(|text| text.contains("handshake")),
        "{texts:?}"
    );
}
