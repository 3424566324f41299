//! Slots: the fixed partition of AORs that ownership and the per-slot
//! indexes are built on (DESIGN.md §3).

use sip::Aor;

/// How many slots AORs hash to. Part of the cluster's wire contract, like
/// [`slot_of`]: every edge, shard and stored index agrees on it.
pub const SLOTS: u16 = 4096;

/// The slot of `aor`: FNV-1a (64 bit) of its canonical form
/// (`aor.as_str()`), modulo [`SLOTS`].
///
/// Must never change: edges route by it, shards own slots by it, and the
/// Redis store files presentities under it (`pres:slot:{n}`), so a
/// different function would send requests to shards that do not own the
/// AOR and make stored indexes miss. A mixed-version cluster must agree.
/// (Unrelated to Redis Cluster's own 16384 key slots.)
pub fn slot_of(aor: &Aor) -> u16 {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let hash = aor
        .as_str()
        .bytes()
        .fold(OFFSET, |h, b| (h ^ u64::from(b)).wrapping_mul(PRIME));
    (hash % u64::from(SLOTS)) as u16
}

/// Every slot, in order.
pub fn all_slots() -> Vec<u16> {
    (0..SLOTS).collect()
}

#[cfg(test)]
mod tests {
    #[test]
    fn slot_of_is_stable() {
        crate::conformance::slot_of_is_stable();
    }

    #[test]
    fn slots_spread() {
        let used: std::collections::HashSet<u16> = (0..2000)
            .map(|i| super::slot_of(&format!("sip:user{i}@example.com").parse().unwrap()))
            .collect();
        assert!(used.iter().all(|s| *s < super::SLOTS));
        // 2000 AORs into 4096 slots: about 1600 distinct if the hash spreads.
        assert!(used.len() > 1400, "only {} distinct slots", used.len());
    }
}
