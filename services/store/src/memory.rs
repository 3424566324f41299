//! The in-memory store of the one-process default. One mutex over maps:
//! every operation is short and per-AOR, so contention is not a concern at
//! the rates one process serves.

use std::collections::HashMap;
use std::sync::Mutex;

use async_trait::async_trait;
use sip::Aor;

use crate::{Binding, BindingSet, MessageId, Store, StoreError, StoredMessage, UnixTime};

#[derive(Default)]
struct Inner {
    bindings: HashMap<Aor, (u64, Vec<Binding>)>,
    queues: HashMap<Aor, Vec<StoredMessage>>,
    next_message_id: u64,
    /// Versions come from one counter so a deleted-then-recreated set never
    /// repeats a version a reader may still hold.
    next_version: u64,
}

/// Keeps everything in process memory; lost on exit.
#[derive(Default)]
pub struct MemoryStore {
    inner: Mutex<Inner>,
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
}
