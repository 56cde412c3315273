//! The server's chat, driven over loopback and checked against hand-written
//! bytes: broadcast, order, names, commands, notices, and the clients that
//! misbehave (too slow, too long, gone without a word).

mod common;

use std::io::Write;
use std::thread;
use std::time::{Duration, Instant};

use common::{Chat, quiet, start};
use multiclients_threaded::server::ServerOptions;

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

const EXCHANGED: usize = 10_000;
const ROUND_LINES: usize = 100;

fn padded(k: usize) -> String {
    format!("message {k:05} {}", "-".repeat(80))
}

#[test]
fn a_client_that_never_reads_is_dropped_while_the_others_exchange_ten_thousand_lines() {
    let addr = start(quiet());
    let (mut stuck, _) = Chat::join(addr);
    stuck.send("/nick stuck");
    stuck.expect("* guest1 is now known as stuck\n");
    // From here on `stuck` reads nothing.
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    let started = Instant::now();
    // a and b take turns: 100 lines one way, then 100 the other, 10,000 in all.
    for round in 0..EXCHANGED / ROUND_LINES {
        let (from, to, name) = match round % 2 {
            0 => (&mut a, &mut b, "guest2"),
            _ => (&mut b, &mut a, "guest3"),
        };
        let first = round * ROUND_LINES;
        let lines: String = (first..first + ROUND_LINES)
            .map(|k| padded(k) + "\n")
            .collect();
        from.stream.write_all(lines.as_bytes()).unwrap();
        for k in first..first + ROUND_LINES {
            assert_eq!(to.chat_line(), format!("{name}: {}\n", padded(k)));
        }
    }
    let elapsed = started.elapsed();
    assert!(elapsed < Duration::from_secs(10), "took {elapsed:?}");
    let dropped = "* stuck was disconnected (not reading: too far behind)\n";
    assert!(a.notices.iter().any(|n| n == dropped), "{:?}", a.notices);
    assert!(b.notices.iter().any(|n| n == dropped), "{:?}", b.notices);
    // `stuck` gets what was already on its way, then the connection ends,
    // long before all 10,000 lines (about 1 MB) reached it.
    let received = stuck.rest();
    assert!(
        received.len() < EXCHANGED * padded(0).len(),
        "{}",
        received.len()
    );
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
fn a_client_not_reading_in_a_quiet_room_is_dropped_after_the_write_timeout() {
    let write_timeout = Duration::from_millis(500);
    let addr = start(ServerOptions {
        write_timeout,
        // An outbox that never overflows here: only the timeout can act.
        outbox_bytes: 64 * 1024 * 1024,
        ..quiet()
    });
    let (mut stuck, _) = Chat::join(addr);
    let (mut a, _) = Chat::join(addr);
    stuck.send("/nick stuck");
    a.expect("* guest1 is now known as stuck\n");
    // 2 MiB for `stuck`, which reads none of it: more than the kernel
    // buffers, so its writer's write() blocks and makes no progress.
    let lines: String = (0..2048)
        .map(|k| format!("{k:04} {}\n", "z".repeat(1018)))
        .collect();
    let sending = Instant::now();
    a.stream.write_all(lines.as_bytes()).unwrap();
    a.expect("* stuck was disconnected (not reading: too far behind)\n");
    // The writer blocked some time after we began to send, then waited
    // out the whole timeout.
    let waited = sending.elapsed();
    assert!(waited >= write_timeout, "dropped too soon: {waited:?}");
    assert!(waited < write_timeout * 10, "dropped too late: {waited:?}");
}

#[test]
fn two_clients_that_never_read_are_both_dropped_and_the_room_hears_of_both() {
    let addr = start(quiet());
    let (mut first, _) = Chat::join(addr);
    first.send("/nick stuck1");
    first.expect("* guest1 is now known as stuck1\n");
    let (mut second, _) = Chat::join(addr);
    second.send("/nick stuck2");
    second.expect("* guest2 is now known as stuck2\n");
    let (mut a, _) = Chat::join(addr);
    let (mut b, _) = Chat::join(addr);
    // 2 MiB from a in rounds of 64 lines, each read by b before the next
    // (b keeps up, as a person would); the stuck two read nothing.
    for round in 0..32 {
        let first = round * 64;
        let text: String = (first..first + 64)
            .map(|k| format!("{k:04} {}\n", "w".repeat(1018)))
            .collect();
        a.stream.write_all(text.as_bytes()).unwrap();
        for k in first..first + 64 {
            assert!(b.chat_line().starts_with(&format!("guest3: {k:04} ")));
        }
    }
    for name in ["stuck1", "stuck2"] {
        let dropped = format!("* {name} was disconnected (not reading: too far behind)\n");
        assert!(b.notices.contains(&dropped), "{:?}", b.notices);
    }
    b.send("/who");
    b.expect("* here (2): guest3, guest4\n");
}
