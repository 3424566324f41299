//! What the presence role holds for one presentity.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::sync::Arc;

use api::ETag;
use sip::Aor;
use store::{FlowToken, UnixTime};

use crate::notify::Notifier;
use crate::DialogKey;

/// Names one subscription within Herald (also its watcher id in RFC 3858
/// documents).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SubscriptionId(pub u64);

impl fmt::Display for SubscriptionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "w{:016x}", self.0)
    }
}

/// One live publication (RFC 3903 §4: an event state with its entity tag).
pub(crate) struct Publication {
    pub document: pidf::PidfDocument,
    /// The body as published, kept for the store.
    pub raw: bytes::Bytes,
    /// Arrival order within the presentity: the newest wins conflicts.
    pub order: u64,
    pub expires_at: UnixTime,
    /// The connection it came over, when it was one.
    pub flow: Option<FlowToken>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Package {
    Presence,
    Winfo,
    /// RFC 5875: changes to the subscriber's own XCAP documents.
    XcapDiff,
}

impl Package {
    pub(crate) fn parse(event: &str) -> Option<Package> {
        match event {
            "presence" => Some(Package::Presence),
            "presence.winfo" => Some(Package::Winfo),
            "xcap-diff" => Some(Package::XcapDiff),
            _ => None,
        }
    }
    pub(crate) fn name(self) -> &'static str {
        match self {
            Package::Presence => "presence",
            Package::Winfo => "presence.winfo",
            Package::XcapDiff => "xcap-diff",
        }
    }
    pub(crate) fn content_type(self) -> &'static str {
        match self {
            Package::Presence => "application/pidf+xml",
            Package::Winfo => "application/watcherinfo+xml",
            Package::XcapDiff => "application/xcap-diff+xml",
        }
    }
}

/// Authorization state of a subscription (RFC 6665 §4.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Authorization {
    Active,
    Pending,
}

impl Authorization {
    /// The state a stored record says (its pending flag).
    pub(crate) fn of(record: &store::SubscriptionRecord) -> Authorization {
        if record.pending() {
            Authorization::Pending
        } else {
            Authorization::Active
        }
    }
}

/// What an authorized presence watcher is shown (RFC 5025 §3.2.1, §3.3).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum View {
    /// The composed document as it is: the presentity itself, or no rules.
    Full,
    /// Cut down to what its rules grant.
    Filtered(Arc<pidf::Transformations>),
    /// polite-block: a document that says nothing but closed.
    Neutral,
}

/// One held subscription: 32 bytes (its id, package and authorization
/// state are read from its record, not kept twice).
pub(crate) struct Subscription {
    /// What it is shown while active (presence only).
    pub view: View,
    /// Its NOTIFY queue, which also keeps the document last queued to it.
    pub notifier: Notifier,
    /// The stored image of this subscription, the one copy of its dialog
    /// data (shared with the notifier; replaced on refresh).
    pub record: std::sync::Arc<store::SubscriptionRecord>,
}

impl Subscription {
    pub(crate) fn id(&self) -> SubscriptionId {
        SubscriptionId(self.record.id)
    }

    /// Its event package (a record of a package presence does not serve
    /// is never restored).
    pub(crate) fn package(&self) -> Package {
        Package::parse(self.record.package()).unwrap_or(Package::Presence)
    }

    /// Pending until the presentity's rules allow it (the record's flag,
    /// stored with every change of it).
    pub(crate) fn authorization(&self) -> Authorization {
        Authorization::of(&self.record)
    }

    /// When it ends unless refreshed (the record's: one copy).
    pub(crate) fn expires_at(&self) -> UnixTime {
        self.record.expires_at
    }

    /// The last RFC 3857 event of this watcher (subscribe, approved, ...).
    pub(crate) fn last_event(&self) -> &'static str {
        crate::winfo::event_name(self.record.last_event())
    }

    /// Whether `key` names this subscription's dialog (RFC 6665 §4.1.2).
    pub(crate) fn is_dialog(&self, key: &DialogKey<'_>) -> bool {
        self.record.call_id() == key.call_id
            && self.record.remote_tag() == key.remote_tag
            && self.record.has_local_tag(&key.local_tag)
            && self.package().name() == key.event
            && self.record.event_id() == key.event_id
    }

    /// The dialog index key (RFC 6665 §4.1.2).
    pub(crate) fn dialog(&self) -> DialogKey<'_> {
        DialogKey {
            call_id: self.record.call_id(),
            remote_tag: self.record.remote_tag(),
            local_tag: self.record.local_tag(),
            event: self.package().name(),
            event_id: self.record.event_id(),
        }
    }

    /// The connection NOTIFYs travel over, when it is one.
    pub(crate) fn flow(&self) -> Option<&str> {
        self.record.connection().then(|| self.record.flow())
    }
}

/// A presentity's subscriptions, in a vector searched by id. Most
/// presentities have a few watchers (at most
/// `max_watchers_per_presentity`), and a [`Subscription`] is 32 bytes, so
/// they sit inline: one allocation per presentity rather than one per
/// watcher. Boxed 32-byte values were spread over the allocator's pages
/// among the many short-lived 32-byte strings of request handling, which
/// after a load left those pages half empty (docs/benchmarks.md).
#[derive(Default)]
pub(crate) struct Subscriptions(Vec<Subscription>);

impl Subscriptions {
    pub(crate) fn get(&self, id: &SubscriptionId) -> Option<&Subscription> {
        self.0.iter().find(|s| s.id() == *id)
    }

    pub(crate) fn get_mut(&mut self, id: &SubscriptionId) -> Option<&mut Subscription> {
        self.0.iter_mut().find(|s| s.id() == *id)
    }

    /// Adds `s`, returning the one it replaces (same id).
    pub(crate) fn insert(&mut self, s: Subscription) -> Option<Subscription> {
        match self.0.iter_mut().find(|old| old.id() == s.id()) {
            Some(old) => Some(std::mem::replace(old, s)),
            None => {
                self.0.push(s);
                None
            }
        }
    }

    pub(crate) fn remove(&mut self, id: &SubscriptionId) -> Option<Subscription> {
        let i = self.0.iter().position(|s| s.id() == *id)?;
        let s = self.0.swap_remove(i);
        // Watchers come and go: give back what a crowd left behind.
        if self.0.capacity() > 8 && self.0.len() < self.0.capacity() / 4 {
            self.0.shrink_to(self.0.len() * 2);
        } else if self.0.is_empty() {
            self.0 = Vec::new();
        }
        Some(s)
    }

    pub(crate) fn values(&self) -> impl Iterator<Item = &Subscription> {
        self.0.iter()
    }

    pub(crate) fn values_mut(&mut self) -> impl Iterator<Item = &mut Subscription> {
        self.0.iter_mut()
    }

    pub(crate) fn len(&self) -> usize {
        self.0.len()
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

impl IntoIterator for Subscriptions {
    type Item = Subscription;
    type IntoIter = std::vec::IntoIter<Subscription>;
    fn into_iter(self) -> Self::IntoIter {
        self.0.into_iter()
    }
}

/// Everything about one presentity, changed under one lock.
pub(crate) struct Presentity {
    /// Shared with the index entries that name this presentity.
    pub aor: Arc<Aor>,
    pub publications: BTreeMap<ETag, Publication>,
    pub subscriptions: Subscriptions,
    /// The composed document as last sent to watchers (empty until the
    /// first composition).
    pub composed: Arc<str>,
    /// `composed` is behind the publications: they changed while nobody
    /// watched, and the merge waits for a watcher ([`crate::compose::catch_up`]).
    pub compose_pending: bool,
    /// The presentity's sphere in `composed` (pres-rules sphere conditions).
    pub sphere: Option<String>,
    /// `composed` as each distinct permission set sees it (cleared when it
    /// changes): watchers with equal rules share one filtered document.
    pub views: HashMap<Arc<pidf::Transformations>, Arc<str>>,
    /// The presentity's XCAP documents, read on first use; `None` until then.
    pub documents: Option<crate::documents::Documents>,
    next_order: u64,
    /// Its stored state has been loaded (or there is no store to load
    /// from): false for a presentity first touched by a request, which
    /// loads it then (a stale owner may have written it meanwhile).
    pub loaded: bool,
}

impl Presentity {
    pub(crate) fn new(aor: Arc<Aor>) -> Presentity {
        Presentity {
            aor,
            publications: BTreeMap::new(),
            subscriptions: Subscriptions::default(),
            composed: Arc::from(""),
            compose_pending: true,
            sphere: None,
            views: HashMap::new(),
            documents: None,
            next_order: 0,
            loaded: false,
        }
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.publications.is_empty() && self.subscriptions.is_empty()
    }

    pub(crate) fn next_order(&mut self) -> u64 {
        self.next_order += 1;
        self.next_order
    }

    /// Keeps orders of restored publications below new ones.
    pub(crate) fn observe_order(&mut self, order: u64) {
        self.next_order = self.next_order.max(order);
    }
}

#[cfg(test)]
mod tests {
    /// Presence keeps subscriptions inline in a vector per presentity.
    #[test]
    fn a_subscription_fits_in_32_bytes() {
        assert!(
            std::mem::size_of::<super::Subscription>() <= 32,
            "{}",
            std::mem::size_of::<super::Subscription>()
        );
    }
}
