//! The in-memory store of the one-process default. One mutex over maps:
//! every operation is short and per-AOR, so contention is not a concern at
//! the rates one process serves.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Mutex;

use async_trait::async_trait;
use sip::Aor;

use crate::documents::MemoryDocuments;
use crate::{
    slot_of, Binding, BindingSet, Credential, DocumentBase, MessageId, PublicationRecord, Store,
    StoreError, StoredDocument, StoredMessage, SubscriptionRecord, UnixTime,
};

#[derive(Default)]
struct Inner {
    bindings: HashMap<Aor, (u64, Vec<Binding>)>,
    queues: HashMap<Aor, Vec<StoredMessage>>,
    presence: HashMap<Aor, PresenceRecords>,
    /// Digest credentials by AOR, then realm.
    credentials: BTreeMap<Aor, BTreeMap<String, Credential>>,
    next_message_id: u64,
    /// Versions come from one counter so a deleted-then-recreated set never
    /// repeats a version a reader may still hold.
    next_version: u64,
}

#[derive(Default)]
struct PresenceRecords {
    publications: BTreeMap<String, PublicationRecord>,
    subscriptions: BTreeMap<u64, SubscriptionRecord>,
}

impl PresenceRecords {
    fn is_empty(&self) -> bool {
        self.publications.is_empty() && self.subscriptions.is_empty()
    }
}

/// Keeps everything in process memory; lost on exit.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
    documents: MemoryDocuments,
}

impl MemoryStore {
    pub fn new() -> Self {
        Self::default()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        // A panic while holding the lock cannot leave the maps half-written
        // (every operation is one insert or retain), so poisoning is ignored.
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[async_trait]
impl Store for MemoryStore {
    async fn bindings(&self, aor: &Aor, now: UnixTime) -> Result<BindingSet, StoreError> {
        let inner = self.lock();
        Ok(match inner.bindings.get(aor) {
            Some((version, list)) => BindingSet {
                bindings: list
                    .iter()
                    .filter(|b| b.expires_at > now)
                    .cloned()
                    .collect(),
                version: *version,
            },
            None => BindingSet::default(),
        })
    }

    async fn replace_bindings(
        &self,
        aor: &Aor,
        version: u64,
        bindings: Vec<Binding>,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        let current = inner.bindings.get(aor).map(|(v, _)| *v).unwrap_or(0);
        if current != version {
            return Err(StoreError::Conflict(aor.clone()));
        }
        if bindings.is_empty() {
            inner.bindings.remove(aor);
        } else {
            inner.next_version += 1;
            let next = inner.next_version;
            inner.bindings.insert(aor.clone(), (next, bindings));
        }
        Ok(())
    }

    async fn enqueue_message(
        &self,
        aor: &Aor,
        mut message: StoredMessage,
        max_queued: usize,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        inner.next_message_id += 1;
        message.id = MessageId(inner.next_message_id);
        let now = message.received_at;
        let queue = inner.queues.entry(aor.clone()).or_default();
        queue.retain(|m| m.expires_at > now);
        if queue.len() >= max_queued {
            return Err(StoreError::QueueFull(aor.clone()));
        }
        queue.push(message);
        Ok(())
    }

    async fn queued_messages(
        &self,
        aor: &Aor,
        now: UnixTime,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        let inner = self.lock();
        Ok(inner
            .queues
            .get(aor)
            .map(|q| q.iter().filter(|m| m.expires_at > now).cloned().collect())
            .unwrap_or_default())
    }

    async fn remove_message(&self, aor: &Aor, id: MessageId) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(queue) = inner.queues.get_mut(aor) {
            queue.retain(|m| m.id != id);
            if queue.is_empty() {
                inner.queues.remove(aor);
            }
        }
        Ok(())
    }

    async fn save_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
    ) -> Result<(), StoreError> {
        self.lock()
            .presence
            .entry(presentity.clone())
            .or_default()
            .publications
            .insert(record.etag.clone(), record);
        Ok(())
    }

    async fn delete_publication(&self, presentity: &Aor, etag: &str) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(records) = inner.presence.get_mut(presentity) {
            records.publications.remove(etag);
            if records.is_empty() {
                inner.presence.remove(presentity);
            }
        }
        Ok(())
    }

    async fn save_subscription(
        &self,
        presentity: &Aor,
        record: SubscriptionRecord,
    ) -> Result<(), StoreError> {
        self.lock()
            .presence
            .entry(presentity.clone())
            .or_default()
            .subscriptions
            .insert(record.id, record);
        Ok(())
    }

    async fn save_notify_counters(
        &self,
        presentity: &Aor,
        id: u64,
        notify_cseq: u32,
        winfo_version: u32,
    ) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(record) = inner
            .presence
            .get_mut(presentity)
            .and_then(|r| r.subscriptions.get_mut(&id))
        {
            record.notify_cseq = notify_cseq;
            record.winfo_version = winfo_version;
        }
        Ok(())
    }

    async fn delete_subscription(&self, presentity: &Aor, id: u64) -> Result<(), StoreError> {
        let mut inner = self.lock();
        if let Some(records) = inner.presence.get_mut(presentity) {
            records.subscriptions.remove(&id);
            if records.is_empty() {
                inner.presence.remove(presentity);
            }
        }
        Ok(())
    }

    async fn presence_state(
        &self,
        presentity: &Aor,
    ) -> Result<(Vec<PublicationRecord>, Vec<SubscriptionRecord>), StoreError> {
        let inner = self.lock();
        Ok(inner
            .presence
            .get(presentity)
            .map(|r| {
                (
                    r.publications.values().cloned().collect(),
                    r.subscriptions.values().cloned().collect(),
                )
            })
            .unwrap_or_default())
    }

    async fn presentities(&self) -> Result<Vec<Aor>, StoreError> {
        Ok(self.lock().presence.keys().cloned().collect())
    }

    async fn presentities_in_slots(&self, slots: &[u16]) -> Result<Vec<Aor>, StoreError> {
        let wanted: HashSet<u16> = slots.iter().copied().collect();
        Ok(self
            .lock()
            .presence
            .keys()
            .filter(|aor| wanted.contains(&slot_of(aor)))
            .cloned()
            .collect())
    }

    async fn put_credential(&self, aor: &Aor, credential: Credential) -> Result<(), StoreError> {
        self.lock()
            .credentials
            .entry(aor.clone())
            .or_default()
            .insert(credential.realm.clone(), credential);
        Ok(())
    }

    async fn credentials(&self, aor: &Aor) -> Result<Vec<Credential>, StoreError> {
        Ok(self
            .lock()
            .credentials
            .get(aor)
            .map(|by_realm| by_realm.values().cloned().collect())
            .unwrap_or_default())
    }

    async fn delete_credentials(&self, aor: &Aor) -> Result<bool, StoreError> {
        Ok(self.lock().credentials.remove(aor).is_some())
    }

    async fn credential_users(&self) -> Result<Vec<Aor>, StoreError> {
        Ok(self.lock().credentials.keys().cloned().collect())
    }

    async fn document(&self, user: &Aor, path: &str) -> Result<Option<StoredDocument>, StoreError> {
        Ok(self.documents.get(user, path))
    }

    async fn put_document(
        &self,
        user: &Aor,
        path: &str,
        base: DocumentBase<'_>,
        document: StoredDocument,
    ) -> Result<(), StoreError> {
        self.documents.write(user, path, base, Some(document))
    }

    async fn delete_document(&self, user: &Aor, path: &str, etag: &str) -> Result<(), StoreError> {
        self.documents
            .write(user, path, DocumentBase::Etag(etag), None)
    }
}
