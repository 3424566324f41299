//! Routing by owner: edges pick the shard, shards check they own it.

use std::sync::Arc;

use api::{
    DocumentChange, MessageOutcome, Messaging, MessagingError, PageMessage, Presence,
    PresenceError, PublishOk, PublishRequest, RegisterRequest, RegistrarError, SubscribeOk,
    SubscribeRequest,
};
use async_trait::async_trait;
use sip::Aor;
use store::{slot_of, Binding, FlowToken, StoreError};

use crate::{ShardId, ShardMap};

/// The client for the shard that owns `aor`.
fn owner_of<'a, T>(map: &ShardMap, shards: &'a [T], aor: &Aor) -> &'a T {
    &shards[map.owner(slot_of(aor)).0 as usize]
}

/// One shard's ownership, as a check on each request.
struct Ownership {
    map: ShardMap,
    me: ShardId,
}

impl Ownership {
    /// Refused with 503 and Retry-After when another shard owns `aor`: by
    /// the retry the edge's shard list (or ours) has caught up.
    fn check(&self, aor: &Aor) -> Result<(), StoreError> {
        if self.map.owner(slot_of(aor)) == self.me {
            Ok(())
        } else {
            Err(StoreError::Unavailable(format!(
                "shard {} does not own {aor}",
                self.me
            )))
        }
    }
}

/// The messaging shards seen from an edge: each request goes to the owner
/// of its AOR.
pub struct ShardedMessaging {
    map: ShardMap,
    shards: Vec<Arc<dyn Messaging>>,
}

impl ShardedMessaging {
    /// `shards[i]` serves `ShardId(i)` of `map`.
    pub fn new(map: ShardMap, shards: Vec<Arc<dyn Messaging>>) -> Self {
        assert_eq!(map.len(), shards.len(), "one client per shard");
        ShardedMessaging { map, shards }
    }

    fn owner(&self, aor: &Aor) -> &Arc<dyn Messaging> {
        owner_of(&self.map, &self.shards, aor)
    }
}

#[async_trait]
impl Messaging for ShardedMessaging {
    async fn register(&self, request: RegisterRequest) -> Result<Vec<Binding>, RegistrarError> {
        self.owner(&request.aor).register(request).await
    }

    async fn message(&self, message: PageMessage) -> Result<MessageOutcome, MessagingError> {
        self.owner(&message.target).message(message).await
    }
}

/// The presence shards seen from an edge.
pub struct ShardedPresence {
    map: ShardMap,
    shards: Vec<Arc<dyn Presence>>,
}

impl ShardedPresence {
    /// `shards[i]` serves `ShardId(i)` of `map`.
    pub fn new(map: ShardMap, shards: Vec<Arc<dyn Presence>>) -> Self {
        assert_eq!(map.len(), shards.len(), "one client per shard");
        ShardedPresence { map, shards }
    }

    fn owner(&self, aor: &Aor) -> &Arc<dyn Presence> {
        owner_of(&self.map, &self.shards, aor)
    }
}

#[async_trait]
impl Presence for ShardedPresence {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        self.owner(&request.presentity).publish(request).await
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        self.owner(&request.presentity).subscribe(request).await
    }

    /// A connection may carry subscriptions to presentities of any shard.
    async fn flow_closed(&self, flow: FlowToken) {
        for shard in &self.shards {
            shard.flow_closed(flow.clone()).await;
        }
    }

    /// The user's presence shard holds their rules, state and xcap-diff
    /// subscriptions.
    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        self.owner(&change.user).documents_changed(change).await
    }
}

/// A messaging shard's service, refusing AORs it does not own.
pub struct OwnedMessaging {
    ownership: Ownership,
    inner: Arc<dyn Messaging>,
}

impl OwnedMessaging {
    pub fn new(map: ShardMap, me: ShardId, inner: Arc<dyn Messaging>) -> Self {
        OwnedMessaging {
            ownership: Ownership { map, me },
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
    pub fn new(map: ShardMap, me: ShardId, inner: Arc<dyn Presence>) -> Self {
        OwnedPresence {
            ownership: Ownership { map, me },
            inner,
        }
    }
}

#[async_trait]
impl Presence for OwnedPresence {
    async fn publish(&self, request: PublishRequest) -> Result<PublishOk, PresenceError> {
        self.ownership.check(&request.presentity)?;
        self.inner.publish(request).await
    }

    async fn subscribe(&self, request: SubscribeRequest) -> Result<SubscribeOk, PresenceError> {
        self.ownership.check(&request.presentity)?;
        self.inner.subscribe(request).await
    }

    async fn flow_closed(&self, flow: FlowToken) {
        self.inner.flow_closed(flow).await;
    }

    async fn documents_changed(&self, change: DocumentChange) -> Result<(), PresenceError> {
        self.ownership.check(&change.user)?;
        self.inner.documents_changed(change).await
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;

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
        let sharded = ShardedPresence::new(
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

        // A shard refuses a change for a user it does not own (503: ask again).
        let me = ShardId(0);
        let owned = OwnedPresence::new(map.clone(), me, Arc::new(Recording::default()));
        let stranger = users
            .iter()
            .find(|u| map.owner(slot_of(u)) != me)
            .expect("some user on shard 1");
        let refused = owned.documents_changed(change(stranger)).await.unwrap_err();
        assert_eq!(refused.status(), 503);
    }
}
