//! Routing by owner: edges pick the shard, shards check they own it.
//!
//! Both read the role's [`LiveShards`], so a list that changes at run
//! time (discovered from DNS) takes effect at the next request. Edges
//! make one gRPC client per shard address, on first use, and keep it while
//! the address is listed.

use std::collections::HashMap;
use std::future::Future;
use std::sync::{Arc, Mutex};

use api::{
    DocumentChange, MessageOutcome, Messaging, MessagingError, PageMessage, Presence,
    PresenceError, PublishOk, PublishRequest, RegisterRequest, RegistrarError, SubscribeOk,
    SubscribeRequest,
};
use async_trait::async_trait;
use sip::Aor;
use store::{slot_of, Binding, FlowToken, StoreError};
use thiserror::Error;

use crate::{LiveShards, ShardId, ShardMap};

/// Makes the client for a shard's address (`http://host:port`).
pub type Connect<C> = Arc<dyn Fn(&str) -> Result<Arc<C>, ConnectError> + Send + Sync>;

/// A shard address no client can be made for (a malformed URI).
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("no client for shard address {addr}: {reason}")]
pub struct ConnectError {
    pub addr: String,
    pub reason: String,
}

/// The errors of routed calls: which of them is a refusal by a shard
/// that is not (or no longer) the owner.
trait Routed: From<StoreError> {
    fn not_owner(&self) -> Option<Refusal>;
}

/// A shard's refusal as not the owner: under its own list
/// ([`StoreError::NotOwner`]), or fenced off in the store by a newer owner
/// ([`StoreError::Fenced`]: its list is stale). Either way the edge's list
/// may be stale too: it refreshes and asks the owner it then computes.
#[derive(Debug, Clone, Copy)]
enum Refusal {
    NotOwner { shard: u32, shards: u32 },
    Fenced { epoch: u64, owner_epoch: u64 },
}

fn not_owner(e: &StoreError) -> Option<Refusal> {
    match e {
        StoreError::NotOwner { shard, shards, .. } => Some(Refusal::NotOwner {
            shard: *shard,
            shards: *shards,
        }),
        StoreError::Fenced {
            epoch, owner_epoch, ..
        } => Some(Refusal::Fenced {
            epoch: *epoch,
            owner_epoch: *owner_epoch,
        }),
        _ => None,
    }
}

impl Routed for PresenceError {
    fn not_owner(&self) -> Option<Refusal> {
        match self {
            PresenceError::Store(e) => not_owner(e),
            _ => None,
        }
    }
}

impl Routed for RegistrarError {
    fn not_owner(&self) -> Option<Refusal> {
        match self {
            RegistrarError::Store(e) => not_owner(e),
            _ => None,
        }
    }
}

impl Routed for MessagingError {
    fn not_owner(&self) -> Option<Refusal> {
        match self {
            MessagingError::Store(e) => not_owner(e),
            _ => None,
        }
    }
}

/// One role's shards seen from an edge: the live list and a client per
/// address.
struct Router<C: ?Sized> {
    role: &'static str,
    shards: LiveShards,
    connect: Connect<C>,
    clients: Mutex<HashMap<String, Arc<C>>>,
}

impl<C: ?Sized> Router<C> {
    fn new(role: &'static str, shards: LiveShards, connect: Connect<C>) -> Self {
        Router {
            role,
            shards,
            connect,
            clients: Mutex::new(HashMap::new()),
        }
    }

    fn client(&self, map: &ShardMap, shard: ShardId) -> Result<Arc<C>, StoreError> {
        let addr = map
            .addr(shard)
            .ok_or_else(|| StoreError::Unavailable(format!("no {} shard {shard}", self.role)))?;
        let mut clients = self.clients.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = clients.get(addr) {
            return Ok(c.clone());
        }
        let client = (self.connect)(addr).map_err(|e| StoreError::Unavailable(e.to_string()))?;
        // A new address: the list changed, so forget the unlisted ones.
        clients.retain(|a, _| map.addrs().contains(a));
        clients.insert(addr.to_owned(), client.clone());
        Ok(client)
    }

    /// The owner of `aor` under the list now (asking for a list first if
    /// none was found yet).
    async fn owner(&self, aor: &Aor) -> Result<(ShardId, Arc<C>), StoreError> {
        let map = match self.shards.current() {
            Some(map) => map,
            None => self.shards.refresh().await.ok_or_else(|| {
                StoreError::Unavailable(format!("no {} shard list yet", self.role))
            })?,
        };
        let shard = map.owner(slot_of(aor));
        Ok((shard, self.client(&map, shard)?))
    }

    /// Calls the owner of `aor`. A shard that says it is not the owner
    /// makes the edge refresh its list and call the owner it then
    /// computes, once; a second refusal goes to the client (503).
    async fn call<T, E, F, Fut>(&self, aor: &Aor, call: F) -> Result<T, E>
    where
        E: Routed,
        F: Fn(Arc<C>) -> Fut,
        Fut: Future<Output = Result<T, E>>,
    {
        let (first, client) = self.owner(aor).await?;
        let result = call(client).await;
        let Some(refusal) = result.as_ref().err().and_then(Routed::not_owner) else {
            return result;
        };
        let role = self.role;
        match refusal {
            Refusal::NotOwner { shard, shards } => tracing::info!(
                role,
                %aor,
                asked = %first,
                shard,
                shards,
                "{role} shard refused as not the owner: refreshing the list and asking again"
            ),
            Refusal::Fenced { epoch, owner_epoch } => tracing::info!(
                role,
                %aor,
                asked = %first,
                epoch,
                owner_epoch,
                "{role} shard refused as not the owner (fenced off by a newer owner): refreshing the list and asking again"
            ),
        }
        self.shards.refresh().await;
        let (again, client) = self.owner(aor).await?;
        let result = call(client).await;
        if result.as_ref().err().and_then(Routed::not_owner).is_some() {
            tracing::warn!(role, %aor, first = %first, again = %again, "{role} shards disagree on the owner");
        }
        result
    }

    /// A client per listed shard.
    fn every(&self) -> Vec<Arc<C>> {
        let Some(map) = self.shards.current() else {
            return Vec::new();
        };
        (0..map.len() as u32)
            .filter_map(|i| self.client(&map, ShardId(i)).ok())
            .collect()
    }
}

/// A connect function over clients made beforehand, by address.
fn premade<C: ?Sized + Send + Sync + 'static>(map: &ShardMap, shards: Vec<Arc<C>>) -> Connect<C> {
    assert_eq!(map.len(), shards.len(), "one client per shard");
    let by_addr: HashMap<String, Arc<C>> = map.addrs().iter().cloned().zip(shards).collect();
    Arc::new(move |addr: &str| {
        by_addr.get(addr).cloned().ok_or_else(|| ConnectError {
            addr: addr.to_owned(),
            reason: "not in the given list".into(),
        })
    })
}

/// One shard's ownership, as a check on each request.
struct Ownership {
    shards: LiveShards,
    me: ShardId,
}

impl Ownership {
    /// Refused with `NotOwner` when another shard owns `aor` under our
    /// list: the edge asks the owner instead (503 with Retry-After to the
    /// client if it cannot).
    fn check(&self, aor: &Aor) -> Result<(), StoreError> {
        let Some(map) = self.shards.current() else {
            return Err(StoreError::Unavailable(format!(
                "shard {} has no shard list yet",
                self.me
            )));
        };
        if map.owner(slot_of(aor)) == self.me {
            Ok(())
        } else {
            Err(StoreError::NotOwner {
                aor: aor.clone(),
                shard: self.me.0,
                shards: map.len() as u32,
            })
        }
    }
}

impl Ownership {
    /// Passes `result` on; a write the store fenced off means a shard on a
    /// newer list took the presentity over, so this shard's list is stale:
    /// it reads the list again now (in the background, the answer does not
    /// wait), lets go of what moved away and stops serving it.
    fn fenced<T>(&self, result: Result<T, PresenceError>) -> Result<T, PresenceError> {
        if let Err(PresenceError::Store(StoreError::Fenced {
            aor,
            epoch,
            owner_epoch,
        })) = &result
        {
            tracing::warn!(
                shard = %self.me,
                %aor,
                epoch,
                owner_epoch,
                "presence write fenced off by a newer owner: reading the shard list again"
            );
            let shards = self.shards.clone();
            tokio::spawn(async move {
                shards.refresh().await;
            });
        }
        result
    }
}

/// The messaging shards seen from an edge: each request goes to the owner
/// of its AOR.
pub struct ShardedMessaging {
    router: Router<dyn Messaging>,
}

impl ShardedMessaging {
    /// Routes over `shards`, making a client per address with `connect`.
    pub fn new(shards: LiveShards, connect: Connect<dyn Messaging>) -> Self {
        ShardedMessaging {
            router: Router::new("messaging", shards, connect),
        }
    }

    /// `shards[i]` serves `ShardId(i)` of `map`, which never changes.
    pub fn fixed(map: ShardMap, shards: Vec<Arc<dyn Messaging>>) -> Self {
        let connect = premade(&map, shards);
        Self::new(LiveShards::fixed("messaging", map), connect)
    }
}

#[async_trait]
impl Messaging for ShardedMessaging {
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError> {
        let aor = request.aor.clone();
        self.router
            .call(&aor, |c| {
                let r = request.clone();
                async move { c.register(r).await }
            })
            .await
    }

    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError> {
        let aor = message.target.clone();
        self.router
            .call(&aor, |c| {
                let m = message.clone();
                async move { c.message(m).await }
            })
            .await
    }
}

/// The presence shards seen from an edge.
pub struct ShardedPresence {
    router: Router<dyn Presence>,
}

impl ShardedPresence {
    /// Routes over `shards`, making a client per address with `connect`.
    pub fn new(shards: LiveShards, connect: Connect<dyn Presence>) -> Self {
        ShardedPresence {
            router: Router::new("presence", shards, connect),
        }
    }

    /// `shards[i]` serves `ShardId(i)` of `map`, which never changes.
    pub fn fixed(map: ShardMap, shards: Vec<Arc<dyn Presence>>) -> Self {
        let connect = premade(&map, shards);
        Self::new(LiveShards::fixed("presence", map), connect)
    }
}

#[async_trait]
impl Presence for ShardedPresence {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        let aor = request.presentity.clone();
        self.router
            .call(&aor, |c| {
                let r = request.clone();
                async move { c.publish(r).await }
            })
            .await
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        let aor = request.presentity.clone();
        self.router
            .call(&aor, |c| {
                let r = request.clone();
                async move { c.subscribe(r).await }
            })
            .await
    }

    /// A connection may carry subscriptions to presentities of any shard.
    async fn flow_closed(&self, flow: FlowToken) {
        for shard in self.router.every() {
            shard.flow_closed(flow.clone()).await;
        }
    }

    /// The user's presence shard holds their rules, state and xcap-diff
    /// subscriptions.
    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        let aor = change.user.clone();
        self.router
            .call(&aor, |c| {
                let ch = change.clone();
                async move { c.documents_changed(ch).await }
            })
            .await
    }
}

/// A messaging shard's service, refusing AORs it does not own.
pub struct OwnedMessaging {
    ownership: Ownership,
    inner: Arc<dyn Messaging>,
}

impl OwnedMessaging {
    /// Serves what `me` owns under `shards`, which may change.
    pub fn new(shards: LiveShards, me: ShardId, inner: Arc<dyn Messaging>) -> Self {
        OwnedMessaging {
            ownership: Ownership { shards, me },
            inner,
        }
    }
}

#[async_trait]
impl Messaging for OwnedMessaging {
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError> {
        self.ownership.check(&request.aor)?;
        self.inner.register(request).await
    }

    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError> {
        self.ownership.check(&message.target)?;
        self.inner.message(message).await
    }
}

/// A presence shard's service, refusing presentities it does not own.
pub struct OwnedPresence {
    ownership: Ownership,
    inner: Arc<dyn Presence>,
}

impl OwnedPresence {
    /// Serves what `me` owns under `shards`, which may change.
    pub fn new(shards: LiveShards, me: ShardId, inner: Arc<dyn Presence>) -> Self {
        OwnedPresence {
            ownership: Ownership { shards, me },
            inner,
        }
    }
}

#[async_trait]
impl Presence for OwnedPresence {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        self.ownership.check(&request.presentity)?;
        self.ownership.fenced(self.inner.publish(request).await)
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        self.ownership.check(&request.presentity)?;
        self.ownership.fenced(self.inner.subscribe(request).await)
    }

    async fn flow_closed(&self, flow: FlowToken) {
        self.inner.flow_closed(flow).await;
    }

    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        self.ownership.check(&change.user)?;
        self.ownership
            .fenced(self.inner.documents_changed(change).await)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Records the document changes it is told about.
    #[derive(Default)]
    struct Recording(Mutex<Vec<Aor>>);

    #[async_trait]
    impl Presence for Recording {
        async fn publish(&self, _: PublishRequest) -> Result<PublishOk, PresenceError> {
            unreachable!("not used")
        }
        async fn subscribe(&self, _: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
            unreachable!("not used")
        }
        async fn flow_closed(&self, _: FlowToken) {}
        async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
            self.0.lock().unwrap().push(change.user);
            Ok(())
        }
    }

    fn change(user: &Aor) -> DocumentChange {
        DocumentChange {
            user: user.clone(),
            auid: "pres-rules".into(),
            selector: format!("pres-rules/users/{user}/index"),
            previous_etag: None,
            new_etag: Some("e1".into()),
        }
    }

    #[tokio::test]
    async fn document_changes_reach_the_users_shard_only() {
        let map = ShardMap::new(vec!["a:1".into(), "b:1".into()]).unwrap();
        let shards: Vec<Arc<Recording>> = (0..2).map(|_| Arc::default()).collect();
        let users: Vec<Aor> = (0..20)
            .map(|i| format!("sip:u{i}@example.com").parse().unwrap())
            .collect();
        let sharded = ShardedPresence::fixed(
            map.clone(),
            shards
                .iter()
                .map(|s| Arc::clone(s) as Arc<dyn Presence>)
                .collect(),
        );
        for user in &users {
            sharded.documents_changed(change(user)).await.unwrap();
        }
        for (i, shard) in shards.iter().enumerate() {
            let got = shard.0.lock().unwrap().clone();
            let owned: Vec<Aor> = users
                .iter()
                .filter(|u| map.owner(slot_of(u)) == ShardId(i as u32))
                .cloned()
                .collect();
            assert_eq!(got, owned, "shard {i}");
        }

        // A shard refuses a change for a user it does not own, saying so
        // (the edge asks again; 503 if it reaches a client).
        let me = ShardId(0);
        let owned = OwnedPresence::new(
            LiveShards::fixed("presence", map.clone()),
            me,
            Arc::new(Recording::default()),
        );
        let stranger = users
            .iter()
            .find(|u| map.owner(slot_of(u)) != me)
            .expect("some user on shard 1");
        let refused = owned.documents_changed(change(stranger)).await.unwrap_err();
        assert_eq!(refused.status(), 503);
        assert_eq!(
            refused,
            PresenceError::Store(StoreError::NotOwner {
                aor: stranger.clone(),
                shard: 0,
                shards: 2
            })
        );
    }

    /// Answers the edge's list: two shards, then three.
    struct Growing(Mutex<usize>);

    #[async_trait]
    impl crate::Discover for Growing {
        async fn discover(
            &self,
        ) -> Result<std::collections::BTreeMap<u32, String>, crate::DiscoveryError> {
            let mut n = self.0.lock().unwrap();
            let found = (0..*n as u32).map(|i| (i, format!("s{i}:1"))).collect();
            *n = 3;
            Ok(found)
        }
    }

    #[tokio::test]
    async fn a_stale_edge_refreshes_and_asks_the_new_owner_once() {
        let three = ShardMap::new((0..3).map(|i| format!("s{i}:1")).collect()).unwrap();
        let two = ShardMap::new((0..2).map(|i| format!("s{i}:1")).collect()).unwrap();
        // The shards already work with three.
        let recorders: Vec<Arc<Recording>> = (0..3).map(|_| Arc::default()).collect();
        let shards: Vec<Arc<dyn Presence>> = recorders
            .iter()
            .enumerate()
            .map(|(i, r)| {
                Arc::new(OwnedPresence::new(
                    LiveShards::fixed("presence", three.clone()),
                    ShardId(i as u32),
                    r.clone(),
                )) as Arc<dyn Presence>
            })
            .collect();
        let moved: Aor = (0..)
            .map(|i| format!("sip:m{i}@example.com").parse::<Aor>().unwrap())
            .find(|a| three.owner(slot_of(a)) == ShardId(2))
            .unwrap();

        // An edge with a discovered list that still says two shards.
        let live = LiveShards::discovered("presence", Arc::new(Growing(Mutex::new(2))), None).await;
        assert_eq!(live.current().unwrap().len(), 2);
        let connect = premade(&three, shards.clone());
        let edge = ShardedPresence::new(live.clone(), connect);
        edge.documents_changed(change(&moved)).await.unwrap();
        assert_eq!(live.current().unwrap().len(), 3, "refreshed on the refusal");
        assert_eq!(*recorders[2].0.lock().unwrap(), vec![moved.clone()]);
        assert!(recorders[0].0.lock().unwrap().is_empty());
        assert!(recorders[1].0.lock().unwrap().is_empty());

        // A given list cannot be refreshed: the second refusal is the
        // answer, 503.
        let stale = ShardedPresence::fixed(two.clone(), shards[..2].to_vec());
        let refused = stale.documents_changed(change(&moved)).await.unwrap_err();
        assert_eq!(refused.status(), 503);
        assert!(matches!(
            refused,
            PresenceError::Store(StoreError::NotOwner { shards: 3, .. })
        ));
        assert_eq!(recorders[2].0.lock().unwrap().len(), 1);
    }

    /// A stale shard's store: every write is fenced off by a newer owner.
    struct Fenced;

    #[async_trait]
    impl Presence for Fenced {
        async fn publish(&self, _: PublishRequest) -> Result<PublishOk, PresenceError> {
            unreachable!("not used")
        }
        async fn subscribe(&self, _: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
            unreachable!("not used")
        }
        async fn flow_closed(&self, _: FlowToken) {}
        async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
            Err(PresenceError::Store(StoreError::Fenced {
                aor: change.user,
                epoch: 1,
                owner_epoch: 3,
            }))
        }
    }

    #[tokio::test]
    async fn a_fenced_write_on_a_stale_shard_is_retried_with_the_new_owner() {
        let three = ShardMap::new((0..3).map(|i| format!("s{i}:1")).collect()).unwrap();
        let two = ShardMap::new((0..2).map(|i| format!("s{i}:1")).collect()).unwrap();
        let moved: Aor = (0..)
            .map(|i| format!("sip:f{i}@example.com").parse::<Aor>().unwrap())
            .find(|a| three.owner(slot_of(a)) == ShardId(2))
            .unwrap();
        // Shards 0 and 1 still on two shards (they accept the moved
        // presentity), but their store refuses: shard 2 took it over.
        let new_owner = Arc::new(Recording::default());
        let mut shards: Vec<Arc<dyn Presence>> = (0..2)
            .map(|i| {
                Arc::new(OwnedPresence::new(
                    LiveShards::fixed("presence", two.clone()),
                    ShardId(i),
                    Arc::new(Fenced),
                )) as Arc<dyn Presence>
            })
            .collect();
        shards.push(Arc::new(OwnedPresence::new(
            LiveShards::fixed("presence", three.clone()),
            ShardId(2),
            new_owner.clone(),
        )));
        let live = LiveShards::discovered("presence", Arc::new(Growing(Mutex::new(2))), None).await;
        let edge = ShardedPresence::new(live.clone(), premade(&three, shards.clone()));
        edge.documents_changed(change(&moved)).await.unwrap();
        assert_eq!(live.current().unwrap().len(), 3, "refreshed on the fence");
        assert_eq!(*new_owner.0.lock().unwrap(), vec![moved.clone()]);

        // An edge that cannot refresh passes the refusal on: 503.
        let stale = ShardedPresence::fixed(two, shards[..2].to_vec());
        let refused = stale.documents_changed(change(&moved)).await.unwrap_err();
        assert_eq!(refused.status(), 503);
        assert!(matches!(
            refused,
            PresenceError::Store(StoreError::Fenced { owner_epoch: 3, .. })
        ));
    }
}
