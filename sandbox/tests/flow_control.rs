//! Flow control, on both event loops: a burst reaches every reader in full,
//! a client that never reads is let go after the stall timeout with a
//! notice it can read, and a client closed for an over-long line finds its
//! notice even though it was still writing (the server closes gently).
//!
//! The naive loop's tests are named `exercise_04_...`: in the student copy
//! the naive loop cannot accept anyone until exercise 4 is done, so they
//! belong to it (and `cargo test -- --skip exercise_` leaves them out).
//! Grading runs only `tests/exercises.rs`.

mod common;

use sandbox::server::EventLoop::{Naive, Readiness};

#[test]
fn a_burst_from_several_senders_reaches_every_reader_in_full() {
    common::a_burst_from_several_senders_reaches_every_reader_in_full(Readiness);
}

#[test]
fn exercise_04_the_naive_loop_delivers_a_burst_to_every_reader_in_full() {
    common::a_burst_from_several_senders_reaches_every_reader_in_full(Naive);
}

#[test]
fn a_client_that_never_reads_is_let_go_and_the_others_get_every_line() {
    common::a_client_that_never_reads_is_let_go_and_the_others_get_every_line(Readiness);
}

#[test]
fn exercise_04_the_naive_loop_lets_go_of_a_client_that_never_reads() {
    common::a_client_that_never_reads_is_let_go_and_the_others_get_every_line(Naive);
}

#[test]
fn an_over_long_line_sender_finds_its_notice_after_its_writes_fail() {
    common::an_over_long_line_sender_finds_its_notice_after_its_writes_fail(Readiness);
}

#[test]
fn exercise_04_the_naive_loop_closes_an_over_long_line_sender_gently() {
    common::an_over_long_line_sender_finds_its_notice_after_its_writes_fail(Naive);
}

/// Back-pressure is exercise 14, and the naive loop needs exercise 4 too:
/// the readiness loop's versions of these tests are in `exercises.rs`.
#[test]
fn exercise_14_the_naive_loop_holds_a_flooding_sender_back_until_a_member_reads() {
    common::a_flooding_sender_is_held_back_until_a_member_reads(Naive);
}

#[test]
fn exercise_14_the_naive_loop_passes_lesson_3s_chat_checks() {
    common::lesson_3_chat_checks_pass(Naive);
}
