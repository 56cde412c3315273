//! The server's chat, driven over loopback and checked against hand-written
//! bytes: broadcast, order, names, commands, notices, and the clients that
//! misbehave (too slow, too long, gone without a word).

mod common;

use std::io::Write;
use std::thread;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use common::{Chat, quiet, start};
use multiclients_threaded::server::{self, ServerOptions};

#[test]
fn with_three_clients_each_line_reaches_exactly_the_two_others_once_in_order() {
    let addr = start(quiet());
    let (a, _) = Chat::join(addr);
    let (b, _) = Chat::join(addr);
    let (c, _) = Chat::join(addr);
    let mut clients = [a, b, c];
    clients[0].expect("* guest2 joined\n");
    clients[0].expect("* guest3 joined\n");
    clients[1].expect("* guest3 joined\n");
    for sender in 0..3 {
        for k in 0..3 {
            clients[sender].send(&format!("line {k} from {sender}"));
        }
        for receiver in (0..3).filter(|r| *r != sender) {
            for k in 0..3 {
                let expected = format!("guest{}: line {k} from {sender}\n", sender + 1);
                clients[receiver].expect(&expected);
            }
        }
    }
    // Nothing else is waiting: each client's next line is its /who answer.
    for client in &mut clients {
        client.send("/who");
        client.expect("* here (3): guest1, guest2, guest3\n");
    }
}

const CLIENTS: usize = 20;
const MESSAGES: usize = 200;

/// One of the twenty: sends its lines in one write, then reads everyone
/// else's and checks that each sender's arrive once and in order.
fn send_and_receive_all(client: &mut Chat, me: usize) {
    let batch: String = (0..MESSAGES).map(|k| format!("msg {k}\n")).collect();
    client.stream.write_all(batch.as_bytes()).unwrap();
    let mut next = [0usize; CLIENTS + 1];
    for _ in 0..(CLIENTS - 1) * MESSAGES {
        let line = client.chat_line();
        let (name, text) = line.split_once(": ").expect("NAME: TEXT");
        let sender: usize = name.strip_prefix("guest").unwrap().parse().unwrap();
        assert_ne!(sender, me, "got its own line back: {line:?}");
        assert_eq!(text, format!("msg {}\n", next[sender]), "from {name}");
        next[sender] += 1;
    }
    // No duplicate is still on its way: the next line answers /who.
    client.send("/who");
    assert!(client.line().starts_with("* here (20): "));
}

#[test]
fn twenty_clients_sending_two_hundred_lines_each_lose_duplicate_and_reorder_nothing() {
    let addr = start(quiet());
    // Join one by one: reading each welcome shows the server has put that
    // client in the room, so no line is sent before everyone is there.
    let mut clients: Vec<Chat> = (0..CLIENTS).map(|_| Chat::join(addr).0).collect();
    thread::scope(|scope| {
        for (i, client) in clients.iter_mut().enumerate() {
            scope.spawn(move || send_and_receive_all(client, i + 1));
        }
    });
}

#[test]
fn nick_renames_for_everyone_and_refuses_taken_empty_or_malformed_names_to_the_asker_only() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    b.send("/nick bob");
    b.expect("* guest2 is now known as bob\n");
    a.expect("* guest2 is now known as bob\n");
    a.send("/nick bob");
    a.expect("* cannot rename: that name is taken\n");
    a.send("/nick");
    a.expect("* cannot rename: a name cannot be empty\n");
    a.send("/nick a:b");
    a.expect("* cannot rename: a name cannot contain ':'\n");
    a.send("/nick *root");
    a.expect("* cannot rename: a name cannot contain '*'\n");
    a.send("/nick BOB");
    a.expect("* cannot rename: that name is taken\n");
    a.send("/nick eve\u{202e}");
    a.expect("* cannot rename: a name cannot contain '\\u{202e}'\n");
    a.send("still guest1");
    // b's next line: none of a's refusals, only a's line under its old name.
    b.expect("guest1: still guest1\n");
}

#[test]
fn a_default_name_taken_with_nick_is_skipped() {
    let addr = start(quiet());
    let (mut a, name) = Chat::join(addr);
    assert_eq!(name, "guest1");
    a.send("/nick guest2");
    a.expect("* guest1 is now known as guest2\n");
    let (_b, name) = Chat::join(addr);
    assert_eq!(name, "guest3");
}

#[test]
fn quit_closes_the_connection_and_the_others_see_a_leave_notice() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    b.send("/quit");
    assert_eq!(b.rest(), b"");
    a.expect("* guest2 left\n");
}

#[test]
fn who_lists_the_names_in_the_order_they_joined() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    b.send("/nick bob");
    b.expect("* guest2 is now known as bob\n");
    b.send("/who");
    b.expect("* here (2): guest1, bob\n");
    a.expect("* guest2 joined\n");
    a.expect("* guest2 is now known as bob\n");
}

#[test]
fn an_unknown_command_gets_a_notice_and_is_not_broadcast() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    b.send("/dance now");
    b.expect("* unknown command \"/dance now\"; try /nick NAME, /who or /quit\n");
    b.send("done");
    a.expect("* guest2 joined\n");
    a.expect("guest2: done\n");
}

#[test]
fn without_join_notices_nobody_hears_of_joins_and_leaves() {
    let addr = start(ServerOptions {
        join_notices: false,
        ..quiet()
    });
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    b.send("hi");
    a.expect("guest2: hi\n");
    b.send("/quit");
    assert_eq!(b.rest(), b"");
    let (mut c, _) = Chat::join(addr);
    c.send("here");
    // The next line after b's is c's: no `left` and no `joined` between.
    a.expect("guest3: here\n");
}

#[test]
fn a_last_line_without_a_newline_is_delivered_when_its_sender_closes() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    b.stream.write_all(b"first\nbye, no newline").unwrap();
    b.stream.shutdown(std::net::Shutdown::Write).unwrap();
    a.expect("guest2: first\n");
    a.expect("guest2: bye, no newline\n");
    a.expect("* guest2 left\n");
}

#[test]
fn a_client_that_resets_mid_line_is_removed_and_its_half_line_is_dropped() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    b.stream.write_all(b"half a li").unwrap();
    b.reset();
    a.expect("* guest2 left (connection lost)\n");
    a.send("/who");
    a.expect("* here (1): guest1\n");
}

#[test]
fn a_line_over_the_limit_gets_an_error_notice_and_a_close_and_the_others_go_on() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    let (mut c, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    a.expect("* guest3 joined\n");
    b.expect("* guest3 joined\n");
    let line = "x".repeat(4097) + "\n";
    b.stream.write_all(line.as_bytes()).unwrap();
    b.expect("* error: line longer than 4096 bytes; disconnecting\n");
    assert_eq!(b.rest(), b"");
    a.expect("* guest2 was disconnected (line too long)\n");
    c.send("still here");
    a.expect("guest3: still here\n");
}

#[test]
fn a_line_of_exactly_the_limit_crlf_endings_and_bad_utf8_are_accepted() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    let longest = "y".repeat(4096);
    b.stream
        .write_all(format!("{longest}\r\n").as_bytes())
        .unwrap();
    a.expect(&format!("guest2: {longest}\n"));
    b.stream.write_all(b"telnet line\r\ncaf\xe9\n").unwrap();
    a.expect("guest2: telnet line\n");
    a.expect("guest2: caf\u{fffd}\n");
}

#[test]
fn a_client_over_max_clients_gets_one_notice_and_is_closed_and_the_others_carry_on() {
    let addr = start(ServerOptions {
        max_clients: 2,
        ..quiet()
    });
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    let mut refused = Chat::connect(addr);
    assert_eq!(
        refused.rest(),
        b"* sorry, the room is full (2 of 2 places taken); try again later\n"
    );
    b.send("room for two");
    a.expect("* guest2 joined\n");
    a.expect("guest2: room for two\n");
    // Once someone leaves, there is room again.
    b.send("/quit");
    a.expect("* guest2 left\n");
    let (_c, name) = Chat::join(addr);
    assert_eq!(name, "guest3");
}

#[test]
fn control_characters_and_bidi_overrides_reach_the_others_escaped() {
    let addr = start(quiet());
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    a.expect("* guest2 joined\n");
    // Clear the screen, then go back to the line start and forge bob's line.
    b.stream
        .write_all("\x1b[2J\rbob: hi\0\u{202e}gnp.exe\n".as_bytes())
        .unwrap();
    a.expect("guest2: \\u{1b}[2J\\u{d}bob: hi\\u{0}\\u{202e}gnp.exe\n");
}

#[test]
fn a_client_that_sends_no_line_is_closed_after_the_first_line_timeout_with_a_notice() {
    let addr = start(ServerOptions {
        first_line_timeout: Duration::from_millis(300),
        ..quiet()
    });
    let (mut talker, _) = Chat::join(addr);
    talker.send("/nick talker");
    talker.expect("* guest1 is now known as talker\n");
    let (mut silent, _) = Chat::join(addr);
    silent.stream.write_all(b"half a li").unwrap(); // not a line: still silent
    let rest = String::from_utf8(silent.rest()).unwrap();
    assert_eq!(
        rest,
        "* you sent no line within 0.3s of joining; disconnecting\n"
    );
    talker.expect("* guest2 joined\n");
    talker.expect("* guest2 was disconnected (sent no line after joining)\n");
    // The talker joined before the silent one and is still here: its first
    // line ended its deadline.
    talker.send("/who");
    talker.expect("* here (1): talker\n");
}

/// A server whose thread spawner refuses the Nth thread named `prefix ...`.
macro_rules! failing_spawn {
    ($name:ident, $prefix:literal, $nth:literal) => {
        fn $name(
            name: String,
            body: Box<dyn FnOnce() + Send>,
        ) -> std::io::Result<thread::JoinHandle<()>> {
            static SEEN: AtomicUsize = AtomicUsize::new(0);
            if name.starts_with($prefix) && SEEN.fetch_add(1, Ordering::SeqCst) + 1 == $nth {
                return Err(std::io::Error::other("injected: no more threads"));
            }
            server::spawn_thread(name, body)
        }
    };
}

failing_spawn!(second_client_thread_fails, "client", 2);
failing_spawn!(second_writer_thread_fails, "writer", 2);

fn refused_then_served(spawn: server::SpawnFn) {
    let addr = start(ServerOptions { spawn, ..quiet() });
    let (mut first, _) = Chat::join(addr);
    let mut refused = Chat::connect(addr);
    let notice = String::from_utf8(refused.rest()).unwrap();
    assert_eq!(
        notice,
        "* sorry, the server cannot start a thread for you now (too many clients?); try again later\n"
    );
    // The server goes on: the next client is served, and the first never
    // heard of the refused one.
    let (mut third, _) = Chat::join(addr);
    third.send("still serving");
    first.expect("* guest2 joined\n");
    first.expect("guest2: still serving\n");
}

#[test]
fn a_client_whose_thread_cannot_start_is_refused_with_a_notice_and_the_server_goes_on() {
    refused_then_served(second_client_thread_fails);
}

#[test]
fn a_client_whose_writer_thread_cannot_start_is_refused_with_a_notice_and_the_server_goes_on() {
    refused_then_served(second_writer_thread_fails);
}
