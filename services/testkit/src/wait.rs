//! Waiting for conditions, always with a deadline.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

pub fn secs(n: u64) -> Duration {
    Duration::from_secs(n)
}

pub fn millis(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// Polls `check` until it yields `Some`, for at most `within`. `what`
/// names the condition in the error. `check` may block on its own (for
/// example a REGISTER round trip); between polls this waits 50 ms so a
/// condition that needs time to pass (expiry) is not hammered.
pub fn eventually<T>(
    within: Duration,
    what: &str,
    mut check: impl FnMut() -> Result<Option<T>>,
) -> Result<T> {
    let deadline = Instant::now() + within;
    loop {
        if let Some(v) = check()? {
            return Ok(v);
        }
        let now = Instant::now();
        if now >= deadline {
            bail!("timed out after {within:?} waiting for {what}");
        }
        std::thread::sleep(Duration::from_millis(50).min(deadline - now));
    }
}
