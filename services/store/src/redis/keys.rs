//! Every Redis key the store uses, built in one place.
//!
//! A presentity's or user's keys carry its AOR as the hash tag (`{...}`),
//! so in a Redis Cluster they live in one slot and one Lua script may
//! change them together. Redis takes the tag from the first `{` to the
//! first `}` after it: an AOR that contained a `}` would tag its keys with
//! its prefix up to it, the same prefix for all of its keys, so they still
//! share a slot.

use sip::Aor;

/// `reg:{aor}`: hash `v` (version), `b` (JSON array of bindings).
pub(super) fn bindings(aor: &Aor) -> String {
    format!("reg:{{{aor}}}")
}

/// `msgq:{aor}`: hash message id -> JSON message (its id is the field).
pub(super) fn queue(aor: &Aor) -> String {
    format!("msgq:{{{aor}}}")
}

/// `msgexp:{aor}`: sorted set of the queued message ids, scored by expiry,
/// so expired ones are found without decoding the messages.
pub(super) fn queue_expiry(aor: &Aor) -> String {
    format!("msgexp:{{{aor}}}")
}

/// `msgid:{aor}`: the last message id handed out.
pub(super) fn last_message_id(aor: &Aor) -> String {
    format!("msgid:{{{aor}}}")
}

/// `pres:{aor}:pubs`: hash entity tag -> JSON publication.
pub(super) fn publications(aor: &Aor) -> String {
    format!("pres:{{{aor}}}:pubs")
}

/// `pres:{aor}:subs`: hash subscription id -> JSON subscription.
pub(super) fn subscriptions(aor: &Aor) -> String {
    format!("pres:{{{aor}}}:subs")
}

/// `pres:{aor}:epoch`: the ownership epoch of the shard that last wrote or
/// took over the presentity (fencing: a write with a lower epoch is
/// refused). Kept an hour past the presentity's last record.
pub(super) fn presence_epoch(aor: &Aor) -> String {
    format!("pres:{{{aor}}}:epoch")
}

/// `pres:epoch`: the last presence ownership epoch handed out (INCR).
pub(super) const PRESENCE_EPOCHS: &str = "pres:epoch";

/// `pres:slot:{n}`: set of the AORs with presence state in Herald slot `n`
/// ([`crate::slot_of`]; not a Redis Cluster slot).
pub(super) fn presentities_in_slot(slot: u16) -> String {
    format!("pres:slot:{{{slot}}}")
}

/// `cred:{aor}`: hash realm -> JSON credential (HA1s, never a password).
pub(super) fn credentials(aor: &Aor) -> String {
    format!("cred:{{{aor}}}")
}

/// `cred:users`: set of the AORs with credentials (`herald user list`).
pub(super) const CREDENTIAL_USERS: &str = "cred:users";

/// `xcap:{aor}:doc:<path>`: hash `e` (entity tag), `c` (content) of one
/// XCAP document of the user `aor`; `path` is relative to the XCAP root.
/// The tag is the first `{...}`, so braces in `path` do not move the slot.
pub(super) fn document(aor: &Aor, path: &str) -> String {
    format!("xcap:{{{aor}}}:doc:{path}")
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What Redis Cluster hashes: the text between the first `{` and the
    /// first `}` after it.
    fn hash_tag(key: &str) -> &str {
        let open = key.find('{').expect("a hash tag");
        let close = key[open..].find('}').expect("a closed hash tag");
        &key[open + 1..open + close]
    }

    #[test]
    fn every_key_of_an_aor_is_tagged_with_it() {
        let aor: Aor = "sip:alice@example.com".parse().unwrap();
        let keys = [
            bindings(&aor),
            queue(&aor),
            queue_expiry(&aor),
            last_message_id(&aor),
            publications(&aor),
            subscriptions(&aor),
            presence_epoch(&aor),
            credentials(&aor),
            document(&aor, "pres-rules/users/{x}/index"),
        ];
        for key in &keys {
            assert_eq!(hash_tag(key), "sip:alice@example.com", "{key}");
        }
        assert_eq!(publications(&aor), "pres:{sip:alice@example.com}:pubs");
        assert_eq!(presentities_in_slot(2720), "pres:slot:{2720}");
    }
}
