//! Storage for Herald's services.
//!
//! Owns: the [`Store`] trait every service writes through, the records it
//! holds ([`Binding`], [`StoredMessage`]), the slot an AOR belongs to
//! ([`slot_of`]), the in-memory implementation used by the one-process
//! default and the Redis implementation ([`RedisStore`], standalone or
//! Redis Cluster) used by deployments, and [`Traced`], which wraps any of
//! them with a span and a latency sample per operation.
//!
//! The interface is shaped for Redis: every change is scoped to one AOR so
//! it runs as one script under the AOR's hash tag; bindings are replaced as
//! a whole set with a version check (optimistic concurrency); every record
//! carries an absolute expiry time so expiry can be an index, not a timer.
//!
//! Must never: interpret SIP. Records hold strings and numbers only.

pub mod conformance;
mod documents;
mod memory;
mod model;
mod redis;
mod slot;
mod subscription;
mod traced;

pub use documents::{DocumentBase, StoredDocument};
pub use memory::MemoryStore;
pub use model::{
    Binding, Credential, FlowToken, MessageId, PublicationRecord, StoredMessage, UnixTime,
};
pub use redis::{RedisConfig, RedisStore, RedisTarget};
pub use slot::{all_slots, slot_of, SLOTS};
pub use subscription::{
    id_of_local_tag, local_tag_of, RecordTooLarge, SubscriptionFields, SubscriptionRecord,
    WINFO_EVENTS,
};
pub use traced::Traced;

use async_trait::async_trait;
use sip::Aor;
use thiserror::Error;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum StoreError {
    /// The bindings changed since they were read (the caller retries).
    #[error("concurrent update of {0}")]
    Conflict(Aor),
    /// The offline queue of this AOR holds as many messages as allowed.
    #[error("offline queue of {0} is full")]
    QueueFull(Aor),
    /// The backend cannot be reached (Redis down): the edge answers 503.
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A shard was asked for an AOR whose slot it does not own under its
    /// shard list: the caller's list (or the shard's) is stale. The edge
    /// refreshes its list and asks the owner once more; a client that
    /// still gets this sees 503 like [`StoreError::Unavailable`].
    #[error("shard {shard} of {shards} does not own {aor}")]
    NotOwner {
        aor: Aor,
        /// The refusing shard's ordinal.
        shard: u32,
        /// How many shards the refusing shard's list holds.
        shards: u32,
    },
    /// A presence write carried an ownership epoch lower than the one
    /// the presentity is stamped with: a shard on a newer shard list has
    /// taken it over, so this writer's list is stale (fencing, DESIGN.md
    /// §3). Nothing was written. Answered like [`StoreError::NotOwner`]:
    /// the edge refreshes its list and asks the owner once more.
    #[error("write to {aor} with epoch {epoch} fenced off by owner epoch {owner_epoch}")]
    Fenced {
        aor: Aor,
        /// The writer's epoch.
        epoch: u64,
        /// The epoch the presentity is stamped with (higher).
        owner_epoch: u64,
    },
}

/// The registered bindings of one AOR and the version they were read at.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct BindingSet {
    pub bindings: Vec<Binding>,
    /// Opaque; pass it back to [`Store::replace_bindings`].
    pub version: u64,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Bindings of `aor` not expired at `now`.
    async fn bindings(&self, aor: &Aor, now: UnixTime) -> Result<BindingSet, StoreError>;

    /// Replaces the bindings of `aor` if they are still at `version`
    /// (else [`StoreError::Conflict`]). Expired entries may be dropped.
    async fn replace_bindings(
        &self,
        aor: &Aor,
        version: u64,
        bindings: Vec<Binding>,
    ) -> Result<(), StoreError>;

    /// Appends a message to the offline queue of `aor`, at most `max_queued`
    /// (expired ones do not count).
    async fn enqueue_message(
        &self,
        aor: &Aor,
        message: StoredMessage,
        max_queued: usize,
    ) -> Result<(), StoreError>;

    /// The queued messages of `aor` not expired at `now`, oldest first.
    async fn queued_messages(
        &self,
        aor: &Aor,
        now: UnixTime,
    ) -> Result<Vec<StoredMessage>, StoreError>;

    /// Removes one queued message once it has been delivered. Removing a
    /// message that is not there is not an error (delivery is at least once
    /// from the store's view; the messaging service serializes per AOR).
    async fn remove_message(&self, aor: &Aor, id: MessageId) -> Result<(), StoreError>;

    /// Writes (creates or replaces) a publication of `presentity`.
    async fn save_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
    ) -> Result<(), StoreError>;

    /// Deletes a publication; deleting one that is not there is not an error.
    async fn delete_publication(&self, presentity: &Aor, etag: &str) -> Result<(), StoreError>;

    /// Writes `record` in place of the publication tagged `replaces` (a
    /// refresh or modify gets a new entity tag, RFC 3903 §6), in one step:
    /// after a crash the store holds one of the two, never both. The
    /// default is two steps, for stores with nothing to crash between.
    async fn replace_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
        replaces: &str,
    ) -> Result<(), StoreError> {
        self.save_publication(presentity, record).await?;
        self.delete_publication(presentity, replaces).await
    }

    /// Writes (creates or replaces) a subscription to `presentity`.
    async fn save_subscription(
        &self,
        presentity: &Aor,
        record: SubscriptionRecord,
    ) -> Result<(), StoreError>;

    /// Records the last NOTIFY CSeq and next winfo version of a
    /// subscription (no-op if it is gone), so they survive a restart.
    async fn save_notify_counters(
        &self,
        presentity: &Aor,
        id: u64,
        notify_cseq: u32,
        winfo_version: u32,
    ) -> Result<(), StoreError>;

    /// Deletes a subscription; deleting one that is not there is not an error.
    async fn delete_subscription(&self, presentity: &Aor, id: u64) -> Result<(), StoreError>;

    /// Takes a new presence ownership epoch for this store (this process):
    /// higher than every epoch taken before on the same backend, by any
    /// process. From now on every presence write through this store
    /// carries it and stamps the presentity with it; a write carrying a
    /// lower epoch than the presentity's stamp is refused with
    /// [`StoreError::Fenced`]. A shard takes one at start and each time its
    /// shard list changes, so a shard on a newer list always writes with a
    /// higher epoch than one still on an older list.
    ///
    /// `None`: this store does not fence (the default; the memory store
    /// serves one process, where no other owner can exist).
    async fn take_epoch(&self) -> Result<Option<u64>, StoreError> {
        Ok(None)
    }

    /// Stamps `presentity` with this store's epoch without writing state:
    /// what a shard does to each presentity it takes over, before loading
    /// it, so a stale owner's next write to it is refused. Refused with
    /// [`StoreError::Fenced`] if a higher epoch stamped it already (a
    /// newer owner exists). The default does nothing.
    async fn claim_presentity(&self, presentity: &Aor) -> Result<(), StoreError> {
        let _ = presentity;
        Ok(())
    }

    /// Everything stored for `presentity`, expired records included (the
    /// presence service expires them itself, with the NOTIFYs that go with it).
    async fn presence_state(
        &self,
        presentity: &Aor,
    ) -> Result<(Vec<PublicationRecord>, Vec<SubscriptionRecord>), StoreError>;

    /// Every presentity with stored presence state (to restore on start):
    /// [`Store::presentities_in_slots`] over all [`SLOTS`].
    async fn presentities(&self) -> Result<Vec<Aor>, StoreError>;

    /// Every presentity with stored presence state whose [`slot_of`] is in
    /// `slots`: what a shard that takes those slots over restores. May
    /// include a presentity whose state was just emptied (the caller then
    /// finds nothing to restore), never omits one that has state.
    async fn presentities_in_slots(&self, slots: &[u16]) -> Result<Vec<Aor>, StoreError>;

    /// Writes the digest credentials of `aor` for `credential.realm`,
    /// replacing those of that realm (other realms are kept).
    async fn put_credential(&self, aor: &Aor, credential: Credential) -> Result<(), StoreError>;

    /// The digest credentials of `aor`, one per realm, ordered by realm.
    async fn credentials(&self, aor: &Aor) -> Result<Vec<Credential>, StoreError>;

    /// Deletes every credential of `aor`; `false` if it had none.
    async fn delete_credentials(&self, aor: &Aor) -> Result<bool, StoreError>;

    /// Every AOR with credentials, sorted.
    async fn credential_users(&self) -> Result<Vec<Aor>, StoreError>;
    // XCAP documents (RFC 4825), keyed by their owner and their path
    // relative to the XCAP root (e.g. `pres-rules/users/sip:a@b/index`).

    /// The document at `path` of `user`, if any.
    async fn document(&self, user: &Aor, path: &str) -> Result<Option<StoredDocument>, StoreError>;

    /// Creates or replaces the document at `path` if it is still at `base`
    /// (else [`StoreError::Conflict`]).
    async fn put_document(
        &self,
        user: &Aor,
        path: &str,
        base: DocumentBase<'_>,
        document: StoredDocument,
    ) -> Result<(), StoreError>;

    /// Deletes the document at `path` if it still has entity tag `etag`
    /// (else [`StoreError::Conflict`]).
    async fn delete_document(&self, user: &Aor, path: &str, etag: &str) -> Result<(), StoreError>;
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn memory_store_meets_the_contract() {
        crate::conformance::run_all(&crate::MemoryStore::new()).await;
        crate::conformance::no_fencing(&crate::MemoryStore::new()).await;
    }
}
