//! Password-guessing back-off: failed digest answers are counted per
//! source address and per (user, source); at `max_failures` within
//! `window` the source (or that user from that source) is refused for
//! `backoff`. A user is never locked out everywhere: guessing alice's
//! password from one address must not keep alice out from her own.
//! Failures per user over every source are counted for the log only.
//!
//! In memory and per edge; bounded by `capacity` entries per table (past
//! it, entries whose window and back-off are over go first; a table still
//! full stops tracking new keys rather than forgetting blocked ones).

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::time::{Duration, Instant};

#[derive(Debug, Clone, Copy)]
pub(crate) struct GuardLimits {
    pub(crate) max_failures: u32,
    pub(crate) window: Duration,
    pub(crate) backoff: Duration,
    pub(crate) capacity: usize,
}

#[derive(Debug, Clone, Copy)]
struct Counter {
    window_start: Instant,
    failures: u32,
    blocked_until: Option<Instant>,
}

impl Counter {
    fn idle(&self, now: Instant, limits: &GuardLimits) -> bool {
        self.blocked_until.is_none_or(|t| t <= now)
            && now.duration_since(self.window_start) >= limits.window
    }
}

struct Table<K> {
    entries: HashMap<K, Counter>,
}

impl<K: Eq + Hash + Clone> Table<K> {
    fn new() -> Self {
        Table {
            entries: HashMap::new(),
        }
    }

    fn blocked(&self, key: &K, now: Instant) -> Option<Duration> {
        let until = self.entries.get(key)?.blocked_until?;
        (until > now).then(|| until - now)
    }

    /// Counts a failure; the back-off if this one reached the limit.
    fn fail(&mut self, key: &K, now: Instant, limits: &GuardLimits) -> Option<Duration> {
        if !self.entries.contains_key(key) && self.entries.len() >= limits.capacity {
            self.entries.retain(|_, c| !c.idle(now, limits));
            if self.entries.len() >= limits.capacity {
                return None;
            }
        }
        let c = self.entries.entry(key.clone()).or_insert(Counter {
            window_start: now,
            failures: 0,
            blocked_until: None,
        });
        if now.duration_since(c.window_start) >= limits.window {
            c.window_start = now;
            c.failures = 0;
        }
        c.failures += 1;
        if c.failures >= limits.max_failures {
            c.blocked_until = Some(now + limits.backoff);
            c.failures = 0;
            c.window_start = now;
            return Some(limits.backoff);
        }
        None
    }

    fn forget(&mut self, key: &K) {
        if self
            .entries
            .get(key)
            .is_some_and(|c| c.blocked_until.is_none())
        {
            self.entries.remove(key);
        }
    }
}

pub(crate) struct Guard {
    limits: GuardLimits,
    sources: Table<IpAddr>,
    user_sources: Table<(String, IpAddr)>,
    users: Table<String>,
}

impl Guard {
    pub(crate) fn new(limits: GuardLimits) -> Self {
        Guard {
            limits,
            sources: Table::new(),
            user_sources: Table::new(),
            users: Table::new(),
        }
    }

    /// Time left on a back-off of `source`.
    pub(crate) fn source_blocked(&self, source: IpAddr, now: Instant) -> Option<Duration> {
        self.sources.blocked(&source, now)
    }

    /// Time left on a back-off of `user` from `source` (or of `source`).
    pub(crate) fn blocked(&self, user: &str, source: IpAddr, now: Instant) -> Option<Duration> {
        self.source_blocked(source, now)
            .or_else(|| self.user_sources.blocked(&(user.to_string(), source), now))
    }

    /// Counts a failed answer; the back-off now in force, if any.
    pub(crate) fn fail(&mut self, user: &str, source: IpAddr, now: Instant) -> Option<Duration> {
        let limits = self.limits;
        if self.users.fail(&user.to_string(), now, &limits).is_some() {
            // Not a block (that would lock the user out from everywhere):
            // a note that someone is guessing this user's password.
            tracing::warn!(user, "repeated failed digest answers for this user");
        }
        let pair = self
            .user_sources
            .fail(&(user.to_string(), source), now, &limits);
        let by_source = self.sources.fail(&source, now, &limits);
        if by_source.is_some() || pair.is_some() {
            tracing::warn!(%source, user, "too many failed digest answers: backing off");
        }
        by_source.or(pair)
    }

    /// A correct answer: that user's failures from that source are
    /// forgiven (the source's are not, so one known password does not
    /// cover guessing others).
    pub(crate) fn succeed(&mut self, user: &str, source: IpAddr) {
        self.user_sources.forget(&(user.to_string(), source));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits() -> GuardLimits {
        GuardLimits {
            max_failures: 3,
            window: Duration::from_secs(60),
            backoff: Duration::from_secs(300),
            capacity: 100,
        }
    }

    #[test]
    fn a_source_is_cut_off_at_the_threshold_and_others_are_not() {
        let mut g = Guard::new(limits());
        let t = Instant::now();
        let bad: IpAddr = "192.0.2.1".parse().unwrap();
        let good: IpAddr = "192.0.2.2".parse().unwrap();
        assert_eq!(g.fail("alice", bad, t), None);
        assert_eq!(g.fail("bob", bad, t), None);
        assert_eq!(g.fail("carol", bad, t), Some(Duration::from_secs(300)));
        assert!(g.source_blocked(bad, t).is_some());
        assert!(g.blocked("alice", good, t).is_none());
        // The back-off ends.
        assert!(g
            .blocked("alice", bad, t + Duration::from_secs(301))
            .is_none());
    }

    #[test]
    fn failures_outside_the_window_do_not_add_up() {
        let mut g = Guard::new(limits());
        let t = Instant::now();
        let ip: IpAddr = "192.0.2.1".parse().unwrap();
        g.fail("alice", ip, t);
        g.fail("alice", ip, t);
        assert_eq!(g.fail("alice", ip, t + Duration::from_secs(61)), None);
        assert!(g
            .blocked("alice", ip, t + Duration::from_secs(61))
            .is_none());
        g.succeed("alice", ip);
    }
}
