//! The lessons with the tools students already have: OpenBSD `nc` and
//! `socat` as clients of the echo servers. Each test says "skipped" and
//! passes where its tool is not installed (CI installs both).

use plumbing::testing::{ServerProcess, run_command};
use std::process::{Command, Stdio};

/// Whether `tool` can be started here.
fn installed(tool: &str) -> bool {
    let found = Command::new(tool)
        .arg("-h")
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok();
    if !found {
        eprintln!("skipped: no {tool} here");
    }
    found
}

/// The lesson binary `name`, which `cargo test` at the workspace root
/// builds next to this test's folder; `None` (the test skips) when it was
/// not built, as with `cargo test --test peers` alone.
fn lesson(name: &str) -> Option<String> {
    let exe = std::env::current_exe().expect("the test knows its own path");
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("tests run from target/*/deps")
        .join(name);
    if !bin.exists() {
        eprintln!(
            "skipped: {} is not built (run `cargo test` at the workspace root)",
            bin.display()
        );
        return None;
    }
    Some(bin.to_str().expect("a UTF-8 path").to_string())
}

#[test]
fn nc_with_dash_n_gets_every_echo_from_the_basic_server() {
    if !installed("nc") {
        return;
    }
    let Some(binary) = lesson("basic") else {
        return;
    };
    let server = ServerProcess::start(&binary, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    // -N: shut down the sending side at the end of input, as our client does.
    let nc = run_command("nc", &["-N", "127.0.0.1", &port], b"hello\nworld\n");
    assert!(nc.status.success(), "{}", nc.stderr);
    assert_eq!(nc.stdout, b"hello\nworld\n");
}

#[test]
fn socat_gets_every_echo_from_the_multiclients_server() {
    if !installed("socat") {
        return;
    }
    let Some(binary) = lesson("multiclients") else {
        return;
    };
    let server = ServerProcess::start(&binary, &["server", "--port", "0"]);
    let target = format!("TCP:127.0.0.1:{}", server.addr.port());
    // socat half-closes at the end of input and waits for the echo (-t: at most 2 s).
    let socat = run_command("socat", &["-t", "2", "-", &target], b"one\ntwo\n");
    assert!(socat.status.success(), "{}", socat.stderr);
    assert_eq!(socat.stdout, b"one\ntwo\n");
}

#[test]
fn nc_is_a_chat_client_of_the_sandbox() {
    if !installed("nc") {
        return;
    }
    let Some(binary) = lesson("sandbox") else {
        return;
    };
    let server = ServerProcess::start(&binary, &["server", "--port", "0"]);
    let port = server.addr.port().to_string();
    let nc = run_command(
        "nc",
        &["-N", "127.0.0.1", &port],
        b"/nick ncuser\n/who\n/quit\n",
    );
    let out = String::from_utf8_lossy(&nc.stdout);
    assert!(out.contains("* you are now ncuser\n"), "{out}");
    assert!(out.contains("* here (1): ncuser\n"), "{out}");
}
