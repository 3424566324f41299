//! The presence role.
//!
//! Owns: publications (RFC 3903 entity tags and expiry), their composition
//! into one document per presentity ([`compose`], over the `pidf` crate),
//! subscriptions (RFC 6665 dialogs with RFC 3856 rules: refresh, fetch,
//! unsubscribe, timeout), NOTIFY sending with one ordered, coalescing
//! queue per subscription ([`notify`]), and watcher information (RFC 3857
//! package, RFC 3858 documents, [`winfo`]), authorization by pres-rules
//! (RFC 5025: [`rules`] reads and evaluates them, [`authorize`] applies the
//! outcome to each subscription and gives each watcher its view), the
//! user's XCAP documents ([`documents`], through [`PresenceDocuments`]:
//! rules, pidf-manipulation hard state) and the xcap-diff package
//! ([`xcapdiff`], RFC 5875).
//!
//! One presentity's state changes under one lock, in arrival order, so
//! watchers never see an older state after a newer one; NOTIFYs leave
//! through per-subscription tasks so one slow or dead watcher never holds
//! up the others.
//!
//! Must never: read or write SIP bytes (the edge does), or block a
//! request on a NOTIFY.

mod authorize;
mod compose;
mod documents;
mod notify;
mod publication;
mod rules;
#[cfg(test)]
mod rules_tests;
mod state;
mod subscription;
#[cfg(test)]
mod tests;
mod winfo;
mod xcapdiff;

use std::collections::{BTreeMap, BTreeSet, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};
use std::time::Duration;

use api::{
    DocumentChange, ETag, EdgeDelivery, Presence, PresenceError, PublishOk, PublishRequest,
    SubscribeOk, SubscribeRequest,
};
use async_trait::async_trait;
use sip::Aor;
use store::{FlowToken, Store, StoreError, UnixTime};

pub use documents::PresenceDocuments;
use state::Presentity;
pub use state::SubscriptionId;

/// Who may watch whom when no rule says otherwise.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Policy {
    /// Every watcher is active at once (the open default).
    Allow,
    /// Watchers wait as pending until the presentity allows them
    /// (RFC 3857 makes them visible in watcher info).
    Confirm,
}

/// Presence limits and policy.
#[derive(Debug, Clone)]
pub struct PresenceConfig {
    /// PUBLISH expiry bounds and default, seconds (RFC 3903 §6: 423 below
    /// the minimum, shortened above the maximum).
    pub publish_min_expires: u32,
    pub publish_max_expires: u32,
    pub publish_default_expires: u32,
    /// SUBSCRIBE expiry bounds and default, seconds (RFC 6665 §4.2.1.1).
    pub subscribe_min_expires: u32,
    pub subscribe_max_expires: u32,
    pub subscribe_default_expires: u32,
    pub policy: Policy,
    /// Size, depth and element limits for PIDF bodies.
    pub xml_limits: pidf::XmlLimits,
    /// End publications made over a connection when it closes, instead
    /// of letting them linger until their Expires.
    pub expire_publications_on_close: bool,
    /// Live publications one presentity may have (403 past it).
    pub max_publications_per_presentity: usize,
    /// Subscriptions to one presentity (403 past it).
    pub max_watchers_per_presentity: usize,
    /// Subscriptions one watcher holds, to every presentity of this
    /// service together (403 past it).
    pub max_subscriptions_per_watcher: usize,
    /// Changes queued for one watcher while its NOTIFYs are in flight;
    /// past this, new changes fold into the last queued NOTIFY.
    pub notify_queue_max: usize,
    /// Write presence state through the store. Off when the store is the
    /// in-memory one of a single process: a second copy in the same memory
    /// would survive nothing and double the cost of every subscription.
    pub persist: bool,
}

impl Default for PresenceConfig {
    fn default() -> Self {
        PresenceConfig {
            publish_min_expires: 60,
            publish_max_expires: 3600,
            publish_default_expires: 3600,
            subscribe_min_expires: 60,
            subscribe_max_expires: 3600,
            subscribe_default_expires: 3600,
            policy: Policy::Allow,
            xml_limits: pidf::XmlLimits::default(),
            expire_publications_on_close: true,
            max_publications_per_presentity: 32,
            max_watchers_per_presentity: 1000,
            max_subscriptions_per_watcher: 1000,
            notify_queue_max: 16,
            persist: true,
        }
    }
}

/// What an index entry points at. The presentity's name is shared with its
/// state (one allocation per presentity, not one per index entry).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub(crate) enum Item {
    Publication(Arc<Aor>, ETag),
    Subscription(Arc<Aor>, SubscriptionId),
}

/// The expiry index: what ends when. Subscriptions, one per held
/// subscription, are grouped by the second they end in: 16 bytes each in a
/// vector per second, where a B-tree entry took about 40 with its node's
/// share, and the B-tree's nodes, a few hundred bytes each and allocated
/// throughout a load, pinned otherwise empty allocator pages once the
/// load's short-lived allocations were freed (docs/benchmarks.md). A
/// second holds at most the subscriptions made or refreshed in one second,
/// so removing one scans that many.
#[derive(Default)]
pub(crate) struct Expiries {
    publications: BTreeSet<(UnixTime, Arc<Aor>, ETag)>,
    subscriptions: BTreeMap<UnixTime, Vec<(Arc<Aor>, SubscriptionId)>>,
    subscription_count: usize,
}

impl Expiries {
    fn insert(&mut self, at: UnixTime, item: &Item) {
        match item {
            Item::Publication(aor, etag) => {
                self.publications
                    .insert((at, Arc::clone(aor), etag.clone()));
            }
            Item::Subscription(aor, id) => {
                self.subscriptions
                    .entry(at)
                    .or_default()
                    .push((Arc::clone(aor), *id));
                self.subscription_count += 1;
            }
        }
    }

    fn remove(&mut self, at: UnixTime, item: &Item) {
        match item {
            Item::Publication(aor, etag) => {
                self.publications
                    .remove(&(at, Arc::clone(aor), etag.clone()));
            }
            Item::Subscription(aor, id) => {
                let Some(second) = self.subscriptions.get_mut(&at) else {
                    return;
                };
                // Ids are random 64-bit numbers: the presentity settles a tie.
                if let Some(i) = second.iter().position(|(a, i)| i == id && a == aor) {
                    second.swap_remove(i);
                    self.subscription_count -= 1;
                    if second.is_empty() {
                        self.subscriptions.remove(&at);
                    }
                }
            }
        }
    }

    /// Entries due at `now`, removed, earliest first (publications before
    /// subscriptions due the same second).
    fn pop_due(&mut self, now: UnixTime) -> Vec<Item> {
        let mut due = Vec::new();
        while self.publications.first().is_some_and(|e| e.0 <= now) {
            if let Some((at, aor, etag)) = self.publications.pop_first() {
                due.push((at, Item::Publication(aor, etag)));
            }
        }
        while self
            .subscriptions
            .first_key_value()
            .is_some_and(|e| *e.0 <= now)
        {
            if let Some((at, second)) = self.subscriptions.pop_first() {
                self.subscription_count -= second.len();
                due.extend(
                    second
                        .into_iter()
                        .map(|(aor, id)| (at, Item::Subscription(aor, id))),
                );
            }
        }
        due.sort_by_key(|(at, _)| *at);
        due.into_iter().map(|(_, item)| item).collect()
    }

    /// Publications and subscriptions in the index.
    fn len(&self) -> (usize, usize) {
        (self.publications.len(), self.subscription_count)
    }
}

/// Identifies a subscription within its dialog (RFC 6665 §4.1.2: Call-ID,
/// tags, and the Event package with its id), borrowed from the request or
/// the subscription's record.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct DialogKey<'a> {
    pub call_id: &'a str,
    pub remote_tag: &'a str,
    /// Spelled out when the record derives it from the id.
    pub local_tag: std::borrow::Cow<'a, str>,
    pub event: &'a str,
    pub event_id: Option<&'a str>,
}

/// The dialog index, for the few subscriptions an in-dialog request cannot
/// find by itself: a local tag is the subscription's id in hex and the
/// request's To names the presentity ([`subscription`]'s `in_dialog`), so
/// only a dialog whose To is not the presentity (a SUBSCRIBE whose
/// Request-URI was another alias of it), or one restored with a tag of
/// older releases, is indexed. A keyed hash of the [`DialogKey`] to the
/// subscription, so the index holds no second copy of the dialog's strings. A lookup
/// checks the subscription's own record, so a collision can never select
/// another watcher's subscription; the hash key is random per process, so
/// collisions cannot be forced from outside.
pub(crate) struct Dialogs {
    hasher: std::collections::hash_map::RandomState,
    map: HashMap<u64, (Arc<Aor>, SubscriptionId)>,
}

impl Dialogs {
    fn new() -> Self {
        Dialogs {
            hasher: Default::default(),
            map: HashMap::new(),
        }
    }

    fn hash(&self, key: &DialogKey<'_>) -> u64 {
        std::hash::BuildHasher::hash_one(&self.hasher, key)
    }

    pub(crate) fn get(&self, key: &DialogKey<'_>) -> Option<(Arc<Aor>, SubscriptionId)> {
        self.map.get(&self.hash(key)).cloned()
    }

    pub(crate) fn insert(&mut self, key: &DialogKey<'_>, aor: Arc<Aor>, id: SubscriptionId) {
        let h = self.hash(key);
        self.map.insert(h, (aor, id));
    }

    /// Removes the entry of `key` if it still names subscription `id`.
    pub(crate) fn remove(&mut self, key: &DialogKey<'_>, id: SubscriptionId) {
        let h = self.hash(key);
        if self.map.get(&h).is_some_and(|(_, i)| *i == id) {
            self.map.remove(&h);
        }
    }
}

/// One presentity's state behind its own async lock: requests for it are
/// applied one at a time, in arrival order, across the store writes.
pub(crate) type Cell = Arc<tokio::sync::Mutex<Presentity>>;

pub(crate) struct Inner {
    pub config: PresenceConfig,
    pub delivery: Arc<dyn EdgeDelivery>,
    pub store: Arc<dyn Store>,
    /// The users' XCAP documents (pres-rules, pidf-manipulation); unset,
    /// the configured policy applies to everyone and xcap-diff is not served.
    pub documents: OnceLock<Arc<dyn PresenceDocuments>>,
    presentities: Mutex<HashMap<Arc<Aor>, Cell>>,
    pub dialogs: Mutex<Dialogs>,
    pub expiries: Mutex<Expiries>,
    /// What lives on each connection flow.
    pub flows: Mutex<HashMap<FlowToken, HashSet<Item>>>,
    /// Live subscriptions per watcher (its address of record as text).
    pub per_watcher: Mutex<HashMap<String, usize>>,
}

/// Locks a std mutex; a panic elsewhere never leaves these maps half
/// updated (each change is one insert or remove), so poisoning is ignored.
pub(crate) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl Inner {
    /// The presentity's state, created empty on first use.
    pub(crate) fn presentity(&self, aor: &Aor) -> Cell {
        let mut map = lock(&self.presentities);
        if let Some(cell) = map.get(aor) {
            return Arc::clone(cell);
        }
        let name = Arc::new(aor.clone());
        let cell = Arc::new(tokio::sync::Mutex::new(Presentity::new(Arc::clone(&name))));
        map.insert(name, Arc::clone(&cell));
        cell
    }

    pub(crate) fn existing(&self, aor: &Aor) -> Option<Cell> {
        lock(&self.presentities).get(aor).cloned()
    }

    /// The store to write presence state through, unless persistence is off.
    pub(crate) fn durable(&self) -> Option<&Arc<dyn Store>> {
        self.config.persist.then_some(&self.store)
    }

    /// Drops a presentity that holds nothing and nobody is using, so
    /// memory follows live state.
    pub(crate) fn forget_if_empty(&self, aor: &Aor) {
        let mut map = lock(&self.presentities);
        if let Some(p) = map.get(aor) {
            let idle = Arc::strong_count(p) == 1 && p.try_lock().is_ok_and(|p| p.is_empty());
            if idle {
                map.remove(aor);
            }
        }
    }

    pub(crate) fn index(&self, at: UnixTime, item: Item, flow: Option<&str>) {
        lock(&self.expiries).insert(at, &item);
        if let Some(flow) = flow {
            lock(&self.flows)
                .entry(FlowToken(flow.to_string()))
                .or_default()
                .insert(item);
        }
    }

    pub(crate) fn unindex(&self, at: UnixTime, item: &Item, flow: Option<&str>) {
        lock(&self.expiries).remove(at, item);
        if let Some(flow) = flow {
            let mut flows = lock(&self.flows);
            if let Some(set) = flows.get_mut(flow) {
                set.remove(item);
                if set.is_empty() {
                    flows.remove(flow);
                }
            }
        }
    }

    /// Entries due at `now`, removed from the index.
    fn due(&self, now: UnixTime) -> Vec<Item> {
        lock(&self.expiries).pop_due(now)
    }
}

/// The presence role's service. Cheap to clone.
#[derive(Clone)]
pub struct PresenceService {
    inner: Arc<Inner>,
}

impl PresenceService {
    pub fn new(
        store: Arc<dyn Store>,
        delivery: Arc<dyn EdgeDelivery>,
        config: PresenceConfig,
    ) -> Self {
        PresenceService {
            inner: Arc::new(Inner {
                config,
                delivery,
                store,
                documents: OnceLock::new(),
                presentities: Mutex::new(HashMap::new()),
                dialogs: Mutex::new(Dialogs::new()),
                expiries: Mutex::new(Expiries::default()),
                flows: Mutex::new(HashMap::new()),
                per_watcher: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Reads pres-rules and pidf-manipulation documents from `documents`
    /// (the XCAP store). Set once, before requests arrive; a second call is
    /// ignored.
    pub fn with_documents(self, documents: Arc<dyn PresenceDocuments>) -> Self {
        if self.inner.documents.set(documents).is_err() {
            tracing::warn!("presence documents already set, second source ignored");
        }
        self
    }

    /// Runs expiry until `shutdown` resolves: publications and
    /// subscriptions end at their time (a subscription with a final
    /// NOTIFY, terminated;reason=timeout).
    pub async fn run_expiry(self, shutdown: impl std::future::Future<Output = ()>) {
        tokio::pin!(shutdown);
        let mut tick = tokio::time::interval(Duration::from_millis(250));
        loop {
            tokio::select! {
                _ = tick.tick() => self.expire(UnixTime::now()).await,
                _ = &mut shutdown => return,
            }
        }
    }

    async fn expire(&self, now: UnixTime) {
        for item in self.inner.due(now) {
            match item {
                Item::Publication(aor, etag) => {
                    publication::expire(&self.inner, &aor, &etag, now).await
                }
                Item::Subscription(aor, id) => {
                    subscription::expire(&self.inner, &aor, id, now).await
                }
            }
        }
    }

    /// Publications and subscriptions held now, from the expiry index
    /// (every live one has an expiry): cheap and lock-free of presentity
    /// state, for gauges read at each metrics collection.
    pub fn held(&self) -> (usize, usize) {
        lock(&self.inner.expiries).len()
    }

    /// Publications and subscriptions held, for metrics and tests.
    pub async fn counts(&self) -> (usize, usize) {
        let cells: Vec<Cell> = lock(&self.inner.presentities).values().cloned().collect();
        let mut totals = (0, 0);
        for cell in cells {
            let p = cell.lock().await;
            totals.0 += p.publications.len();
            totals.1 += p.subscriptions.len();
        }
        totals
    }

    /// Loads the presence state kept in the store (after a restart, or when
    /// this process takes over): publications, subscriptions with their
    /// NOTIFY CSeq and winfo version, and their expiry times. Publications
    /// that expired meanwhile are deleted; subscriptions that did end at the
    /// next sweep, with their NOTIFYs. Returns how many
    /// presentities were loaded.
    ///
    /// `slots` limits it to the presentities of those slots (a shard loads
    /// what it owns); `None` loads everything (one process). Each is
    /// claimed in the store first ([`Store::claim_presentity`]) with the
    /// epoch the caller took: one a shard on a newer list claimed already
    /// is skipped.
    pub async fn restore(&self, slots: Option<&[u16]>) -> Result<usize, StoreError> {
        let aors = match slots {
            Some(slots) => self.inner.store.presentities_in_slots(slots).await?,
            None => self.inner.store.presentities().await?,
        };
        let mut loaded = 0;
        for aor in &aors {
            // Taken over first (fencing): from here a stale owner's writes
            // to it are refused, so what is read next is what stays.
            match self.inner.store.claim_presentity(aor).await {
                Ok(()) => {}
                Err(StoreError::Fenced {
                    epoch, owner_epoch, ..
                }) => {
                    tracing::warn!(%aor, epoch, owner_epoch, "presentity owned by a shard on a newer list, not loaded");
                    continue;
                }
                Err(e) => return Err(e),
            }
            loaded += 1;
            let cell = self.inner.presentity(aor);
            let mut p = cell.lock().await;
            // A request may have loaded it already (it came in first).
            if !p.loaded {
                load(&self.inner, &mut p, true).await?;
            }
            drop(p);
            drop(cell);
            self.inner.forget_if_empty(aor);
        }
        Ok(loaded)
    }

    /// Lets go of the presentities of `slots`, which another shard owns
    /// now (the shard list grew): their state stays in the store, where
    /// the new owner loads it; here it leaves memory and its timers, so
    /// this process sends no NOTIFY and ends no publication for them any
    /// more. NOTIFYs already queued still go out. Returns how many
    /// presentities were let go.
    pub async fn release(&self, slots: &[u16]) -> usize {
        let slots: HashSet<u16> = slots.iter().copied().collect();
        let cells: Vec<Cell> = {
            let mut map = lock(&self.inner.presentities);
            let gone: Vec<Arc<Aor>> = map
                .keys()
                .filter(|aor| slots.contains(&store::slot_of(aor)))
                .cloned()
                .collect();
            gone.iter().filter_map(|aor| map.remove(aor)).collect()
        };
        for cell in &cells {
            let mut p = cell.lock().await;
            let aor = p.aor.clone();
            for s in std::mem::take(&mut p.subscriptions) {
                let id = s.id();
                subscription::uncount(&self.inner, s.record.watcher());
                self.inner.unindex(
                    s.expires_at(),
                    &Item::Subscription(aor.clone(), id),
                    s.flow(),
                );
                lock(&self.inner.dialogs).remove(&s.dialog(), s.id());
            }
            for (etag, publication) in std::mem::take(&mut p.publications) {
                self.inner.unindex(
                    publication.expires_at,
                    &Item::Publication(aor.clone(), etag),
                    publication.flow.as_ref().map(|f| f.0.as_str()),
                );
            }
        }
        cells.len()
    }
}

/// Loads `p`'s stored state into it: publications (those expired
/// meanwhile deleted), rules and hard state, subscriptions with their
/// NOTIFY CSeq and winfo version, then re-authorizes the watchers.
///
/// `documents`: read the rules and hard state even with no watcher (a
/// request that reads them itself when it needs them passes `false`).
async fn load(inner: &Arc<Inner>, p: &mut Presentity, documents: bool) -> Result<(), StoreError> {
    let aor = p.aor.clone();
    let (publications, subscriptions) = inner.store.presence_state(&aor).await?;
    let now = UnixTime::now();
    for record in publications {
        let etag = record.etag.clone();
        // Expired while this shard was away (or its delete failed
        // then): gone, never shown to a watcher again.
        if record.expires_at <= now {
            if let Err(e) = inner.store.delete_publication(&aor, &etag).await {
                tracing::warn!(%aor, etag, error = %e, "expired publication not deleted");
            }
            continue;
        }
        if !publication::restore(inner, p, record) {
            tracing::warn!(%aor, etag, "stored publication no longer parses, dropped");
            inner.store.delete_publication(&aor, &etag).await?;
        }
    }
    // Rules and hard state before the watchers, so each gets its view.
    if documents || !subscriptions.is_empty() {
        documents::ensure(inner, p).await?;
        compose::recompose(p);
    }
    for record in subscriptions {
        subscription::restore(inner, p, record);
    }
    // Rules may have changed while this process was away.
    authorize::reauthorize(inner, p, UnixTime::now()).await;
    p.loaded = true;
    Ok(())
}

/// Before a request changes a presentity this process has not loaded
/// (not in memory: it had no state when this shard loaded its slots, or
/// it was dropped when it emptied), claim it and load what the store holds:
/// a shard still on an older list may have written it meanwhile
/// (decision 17). Without persistence there is nothing to load.
pub(crate) async fn ensure_loaded(
    inner: &Arc<Inner>,
    p: &mut Presentity,
) -> Result<(), StoreError> {
    if p.loaded {
        return Ok(());
    }
    let Some(store) = inner.durable() else {
        p.loaded = true;
        return Ok(());
    };
    store.claim_presentity(&p.aor).await?;
    load(inner, p, false).await
}

#[async_trait]
impl Presence for PresenceService {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        // The edge refuses this already; checked again here so no edge
        // (an older one, say) can publish for another user's presentity.
        if request
            .authenticated
            .as_ref()
            .is_some_and(|a| a != &request.presentity)
        {
            return Err(PresenceError::Forbidden(
                "publishing for another presentity".into(),
            ));
        }
        publication::publish(&self.inner, request, UnixTime::now()).await
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        if request
            .authenticated
            .as_ref()
            .is_some_and(|a| a != &request.watcher)
        {
            return Err(PresenceError::Forbidden(
                "subscribing as another watcher".into(),
            ));
        }
        subscription::subscribe(&self.inner, request, UnixTime::now()).await
    }

    async fn flow_closed(&self, flow: FlowToken) {
        let items = lock(&self.inner.flows).remove(&flow).unwrap_or_default();
        for item in items {
            match item {
                Item::Subscription(aor, id) => subscription::flow_gone(&self.inner, &aor, id).await,
                Item::Publication(aor, etag) => {
                    if self.inner.config.expire_publications_on_close {
                        publication::remove(&self.inner, &aor, &etag).await;
                    }
                }
            }
        }
    }

    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        documents::changed(&self.inner, change).await
    }
}

#[cfg(test)]
mod expiry_tests {
    use super::*;

    #[test]
    fn the_expiry_index_gives_back_what_is_due_earliest_first_and_forgets_what_was_removed() {
        let (a, b): (Arc<Aor>, Arc<Aor>) = (
            Arc::new("sip:a@example.com".parse().unwrap()),
            Arc::new("sip:b@example.com".parse().unwrap()),
        );
        let sub = |aor: &Arc<Aor>, id| Item::Subscription(Arc::clone(aor), SubscriptionId(id));
        let publication = Item::Publication(Arc::clone(&a), ETag("e1".into()));
        let mut index = Expiries::default();
        index.insert(UnixTime(20), &sub(&a, 1));
        index.insert(UnixTime(10), &sub(&a, 2));
        // The same id under another presentity is another entry.
        index.insert(UnixTime(10), &sub(&b, 2));
        index.insert(UnixTime(10), &publication);
        index.insert(UnixTime(30), &sub(&b, 3));
        assert_eq!(index.len(), (1, 4));

        index.remove(UnixTime(10), &sub(&a, 2));
        // Not there (wrong time, unknown id): nothing changes.
        index.remove(UnixTime(11), &sub(&b, 2));
        index.remove(UnixTime(20), &sub(&a, 9));
        assert_eq!(index.len(), (1, 3));

        assert_eq!(index.pop_due(UnixTime(9)), vec![]);
        assert_eq!(
            index.pop_due(UnixTime(20)),
            vec![publication, sub(&b, 2), sub(&a, 1)]
        );
        assert_eq!(index.len(), (0, 1));
        index.remove(UnixTime(30), &sub(&b, 3));
        assert_eq!(index.len(), (0, 0));
        assert!(
            index.subscriptions.is_empty(),
            "an emptied second is dropped"
        );
    }
}
