//! Ownership in the cluster (DESIGN.md §3).
//!
//! Owns: the map from slot to shard. An AOR hashes to one of a fixed number
//! of slots (`store::slot_of`, which must never change); slots map to
//! shards by jump consistent hashing over the ordered shard list, so every
//! edge and every shard computes the same owner with no lookup, and growing
//! from P to P+1 shards moves only about 1/(P+1) of the slots.
//!
//! It also holds both ends of routing by owner: on the edge,
//! [`ShardedMessaging`] and [`ShardedPresence`] send each request to the
//! shard that owns its AOR; on a shard, [`OwnedMessaging`] and
//! [`OwnedPresence`] refuse what it does not own (a stale shard list
//! somewhere), so two shards never both act for one presentity.
//!
//! The shard list is given or discovered ([`discovery`]: SRV records of a
//! Kubernetes headless service, ordered by StatefulSet ordinal) and may
//! change at run time ([`LiveShards`]). A shard refuses what it does not
//! own with `StoreError::NotOwner`; the edge then refreshes its list and
//! asks the owner it now computes, once.
//!
//! Must never: depend on anything but the slot number and the shard count
//! to pick an owner, or every node would have to agree on more than its
//! configuration.

pub mod discovery;
mod routing;

pub use discovery::{Discover, DiscoveryError, LiveShards, ShardListSpec, SrvDiscovery};
pub use routing::{
    Connect, ConnectError, OwnedMessaging, OwnedPresence, ShardedMessaging, ShardedPresence,
};

use std::fmt;
use std::str::FromStr;

use thiserror::Error;

/// A shard's ordinal in its role's shard list (a StatefulSet ordinal).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ShardId(pub u32);

impl fmt::Display for ShardId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl FromStr for ShardId {
    type Err = std::num::ParseIntError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        s.parse().map(ShardId)
    }
}

/// Jump consistent hash (Lamping and Veach, 2014): maps `key` to one of
/// `buckets` so that adding a bucket moves only the keys the new bucket
/// takes. Deterministic across processes and versions. Eight lines from the
/// paper, written here rather than taken from a crate so the exact function
/// every node must agree on is in view and pinned by the tests below.
pub fn jump_hash(mut key: u64, buckets: u32) -> u32 {
    if buckets == 0 {
        return 0;
    }
    let mut b: i64 = -1;
    let mut j: i64 = 0;
    while j < i64::from(buckets) {
        b = j;
        key = key.wrapping_mul(2_862_933_555_777_941_757).wrapping_add(1);
        let shifted = ((key >> 33) + 1) as f64;
        j = ((b + 1) as f64 * ((1u64 << 31) as f64 / shifted)) as i64;
    }
    b as u32
}

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum ShardError {
    #[error("the shard list is empty")]
    Empty,
}

/// The shards of one role (presence or messaging), in order. Index i is
/// `ShardId(i)`; the address is what clients dial.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShardMap {
    addrs: Vec<String>,
}

impl ShardMap {
    pub fn new(addrs: Vec<String>) -> Result<ShardMap, ShardError> {
        if addrs.is_empty() {
            return Err(ShardError::Empty);
        }
        Ok(ShardMap { addrs })
    }

    pub fn len(&self) -> usize {
        self.addrs.len()
    }

    pub fn is_empty(&self) -> bool {
        self.addrs.is_empty()
    }

    /// The shard that owns `slot`.
    pub fn owner(&self, slot: u16) -> ShardId {
        ShardId(jump_hash(u64::from(slot), self.addrs.len() as u32))
    }

    /// Every shard's address, in ordinal order.
    pub fn addrs(&self) -> &[String] {
        &self.addrs
    }

    /// Where `shard` listens.
    pub fn addr(&self, shard: ShardId) -> Option<&str> {
        self.addrs.get(shard.0 as usize).map(String::as_str)
    }

    /// Every slot `shard` owns, out of `slots`.
    pub fn slots_of(&self, shard: ShardId, slots: u16) -> Vec<u16> {
        (0..slots).filter(|s| self.owner(*s) == shard).collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jump_hash_is_the_published_function() {
        // Vectors other implementations of the paper's function check.
        assert_eq!(jump_hash(10_863_919_174_838_991, 11), 6);
        assert_eq!(jump_hash(2_016_238_256_797_177_309, 11), 3);
        assert_eq!(jump_hash(12_345, 1), 0);
        // Fixed here so a change of implementation shows: edges and shards
        // of different versions must agree.
        let fixed: Vec<u32> = (0..8).map(|k| jump_hash(k, 3)).collect();
        assert_eq!(fixed, vec![0, 0, 0, 2, 1, 1, 2, 0]);
    }

    #[test]
    fn growing_moves_only_what_the_new_shard_takes() {
        let two = ShardMap::new(vec!["a".into(), "b".into()]).unwrap();
        let three = ShardMap::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let mut moved = 0;
        for slot in 0..4096u16 {
            let (before, after) = (two.owner(slot), three.owner(slot));
            if before != after {
                // A slot only ever moves to the new shard.
                assert_eq!(after, ShardId(2), "slot {slot} moved between old shards");
                moved += 1;
            }
        }
        // About a third of the slots move (1/(P+1)).
        assert!((1200..1550).contains(&moved), "moved {moved} of 4096");
    }

    #[test]
    fn every_slot_has_exactly_one_owner() {
        let map = ShardMap::new(vec!["a".into(), "b".into(), "c".into()]).unwrap();
        let total: usize = (0..3).map(|s| map.slots_of(ShardId(s), 4096).len()).sum();
        assert_eq!(total, 4096);
        assert_eq!(ShardMap::new(vec![]), Err(ShardError::Empty));
    }
}
