//! Nonce-count replay protection (RFC 7616 §3.4, RFC 3261 §22.4 nc): the
//! highest nc seen for each nonce; a request whose nc is not above it is a
//! replay. Kept in this process only, so across edges each edge protects
//! on its own (a replay sent to another edge is caught only there once
//! that edge has seen the nonce). Bounded: only nonces still within their
//! lifetime are worth keeping, and past `capacity` the oldest go first.

use std::collections::{BTreeSet, HashMap};

pub(crate) struct NonceCounts {
    capacity: usize,
    /// nonce -> (issued, highest nc seen).
    seen: HashMap<String, (u64, u32)>,
    /// (issued, nonce), oldest first, to evict.
    by_age: BTreeSet<(u64, String)>,
}

impl NonceCounts {
    pub(crate) fn new(capacity: usize) -> Self {
        NonceCounts {
            capacity: capacity.max(1),
            seen: HashMap::new(),
            by_age: BTreeSet::new(),
        }
    }

    /// Records `nc` for `nonce`; `false` if it is not above the highest
    /// seen (a replay). Nonces issued before `expired_before` are dropped.
    pub(crate) fn advance(
        &mut self,
        nonce: &str,
        issued: u64,
        nc: u32,
        expired_before: u64,
    ) -> bool {
        if let Some((_, high)) = self.seen.get_mut(nonce) {
            if nc <= *high {
                return false;
            }
            *high = nc;
            return true;
        }
        while let Some((oldest, _)) = self.by_age.first() {
            if *oldest >= expired_before && self.seen.len() < self.capacity {
                break;
            }
            if let Some((_, n)) = self.by_age.pop_first() {
                self.seen.remove(&n);
            }
        }
        self.seen.insert(nonce.to_string(), (issued, nc));
        self.by_age.insert((issued, nonce.to_string()));
        true
    }

    #[cfg(test)]
    fn len(&self) -> usize {
        self.seen.len()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counts_must_rise_per_nonce() {
        let mut c = NonceCounts::new(10);
        assert!(c.advance("a", 100, 1, 0));
        assert!(!c.advance("a", 100, 1, 0), "same nc again");
        assert!(c.advance("a", 100, 3, 0), "gaps are fine");
        assert!(!c.advance("a", 100, 2, 0), "going back is not");
        assert!(c.advance("b", 100, 1, 0), "per nonce");
    }

    #[test]
    fn bounded_and_expired_nonces_go() {
        let mut c = NonceCounts::new(2);
        assert!(c.advance("a", 1, 1, 0));
        assert!(c.advance("b", 2, 1, 0));
        assert!(c.advance("c", 3, 1, 0));
        assert_eq!(c.len(), 2);
        // "a" was the oldest and went; "b" is still tracked.
        assert!(!c.advance("b", 2, 1, 0));
        assert!(c.advance("d", 10, 1, 5));
        assert_eq!(c.len(), 1, "b and c expired");
    }
}
