//! Stopping on Ctrl-C, gently: the wiring between a signal and the loop.
//!
//! Ctrl-C in a terminal sends the server `SIGINT` (on Windows, the console
//! sends a `CTRL_C_EVENT`). By default that kills the process at once: every
//! client sees its connection vanish mid-line, and whatever waited in the
//! outboxes is lost. A server that stops *gracefully* instead:
//!
//! ```text
//! Ctrl-C -> handler thread: set the flag, wake the loop (mio::Waker)
//!        -> the loop: close the listener (newcomers are refused by the kernel)
//!        -> the room: `* server shutting down` to everyone, then each
//!           connection's gentle close (flush, FIN, read until it closes)
//!        -> wait for those closes, at most SHUTDOWN_TIMEOUT; exit 0
//! ```
//!
//! A signal handler may do almost nothing safely (no allocation, no lock),
//! so the `ctrlc` crate runs ours on an ordinary thread of its own, and all
//! it does is set an atomic flag and wake the loop. The readiness loop is
//! asleep in `poll`; a [`mio::Waker`] is a registered event source that
//! another thread can make ready, so `poll` returns at once. The naive loop
//! never sleeps long ([`NAIVE_SLEEP`](crate::naive::NAIVE_SLEEP)): it just
//! looks at the flag every turn.
//!
//! The steps themselves (who is told what, how each connection ends) are
//! the room's: [`Room::shut_down`](crate::room::Room::shut_down).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::Context as _;

use crate::draining::DRAIN_TIMEOUT;

/// How long a shutdown may wait for the clients' gentle closes before the
/// server exits anyway: each close is bounded by [`DRAIN_TIMEOUT`] already;
/// this bounds the whole.
pub const SHUTDOWN_TIMEOUT: Duration = DRAIN_TIMEOUT.saturating_add(Duration::from_secs(1));

/// A request to stop, shared between whoever asks (the Ctrl-C handler, a
/// test) and the event loop that obeys. Cloning shares the same request.
#[derive(Clone, Default)]
pub struct Stop(Arc<StopState>);

#[derive(Default)]
struct StopState {
    requested: AtomicBool,
    /// The readiness loop's way to be woken from `poll`, once it has one.
    waker: Mutex<Option<mio::Waker>>,
}

impl Stop {
    /// A request that nothing will ever make (for servers that run until
    /// the process ends, as in most tests).
    pub fn never() -> Stop {
        Stop::default()
    }

    /// Asks the loop to stop, and wakes it if it sleeps in `poll`. Returns
    /// whether a stop had been asked for already.
    pub fn request(&self) -> bool {
        let already = self.0.requested.swap(true, Ordering::SeqCst);
        let waker = self.0.waker.lock().unwrap_or_else(|p| p.into_inner());
        if let Some(waker) = waker.as_ref() {
            let _ = waker.wake(); // fails only if the poller is gone: then nobody waits
        }
        already
    }

    /// Whether a stop was asked for.
    pub fn is_requested(&self) -> bool {
        self.0.requested.load(Ordering::SeqCst)
    }

    /// Hands over the waker [`Stop::request`] uses. A stop asked for before
    /// this call is seen by the loop's first look at the flag.
    pub fn wake_with(&self, waker: mio::Waker) {
        *self.0.waker.lock().unwrap_or_else(|p| p.into_inner()) = Some(waker);
    }

    /// Makes Ctrl-C (SIGINT; on Windows the console's Ctrl-C and Ctrl-Break)
    /// ask for this stop. A second Ctrl-C, while the shutdown waits for slow
    /// clients, ends the process at once (exit status 130, as a shell
    /// reports a process killed by SIGINT).
    pub fn on_ctrl_c(&self) -> anyhow::Result<()> {
        let stop = self.clone();
        ctrlc::set_handler(move || {
            if stop.request() {
                std::process::exit(130);
            }
        })
        .context("cannot install the Ctrl-C handler")
    }
}
