//! # Lesson 3, `multiclients_threaded` (under construction)
//!
//! The chat protocol lives in [`protocol`].

pub mod check;
pub mod client;
pub mod outbox;
pub mod protocol;
pub mod room;
pub mod server;

/// The port this lesson uses unless told otherwise (see the contract).
pub const DEFAULT_PORT: u16 = 5002;
