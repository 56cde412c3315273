//! Stopping gently, on the naive loop. The shutdown's steps are exercise
//! 15 and the naive loop needs exercise 4, so these are named for an
//! exercise (`cargo test -- --skip exercise_` leaves them out); the
//! readiness loop's versions, and the test that sends a real SIGINT to the
//! binary, are in `exercises.rs`.

mod common;

use sandbox::server::EventLoop::Naive;

#[test]
fn exercise_15_the_naive_loop_on_stop_tells_every_client_then_closes() {
    common::on_stop_every_client_reads_the_notice_then_the_end(Naive);
}

#[test]
fn exercise_15_the_naive_loop_on_stop_flushes_what_was_queued_first() {
    common::on_stop_a_member_behind_gets_what_was_queued_then_the_notice(Naive);
}

#[test]
fn exercise_15_the_naive_loop_on_stop_does_not_wait_for_ever_for_a_client() {
    common::on_stop_a_client_that_never_closes_does_not_hold_the_server(Naive);
}
