//! `check` passes against this lesson's server, and fails, naming the right
//! check, against deliberately broken chat servers.

use std::time::Duration;

use basic::testing::start_server;
use multiclients_threaded::server::{self, ServerOptions};

const TIMEOUT: Duration = Duration::from_secs(2);

#[test]
fn check_passes_against_the_lesson_server() {
    let (addr, _server) = start_server(|listener| server::run(listener, &ServerOptions::default()));
    let mut out = Vec::new();
    let report = multiclients_threaded::check::run(addr, TIMEOUT, &mut out);
    let out = String::from_utf8(out).unwrap();
    assert!(report.all_passed(), "{out}");
    assert!(out.ends_with("13 passed, 0 failed\n"), "{out}");
}
