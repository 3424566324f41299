//! A [`Store`] that traces and times every operation of the store it
//! wraps: one `redis <operation>` span (a child of the request's span) and
//! one `herald.redis.duration` sample per call. The roles wrap their Redis
//! store in it; the store itself stays free of telemetry.

use std::future::Future;
use std::sync::Arc;
use std::time::Instant;

use async_trait::async_trait;
use sip::Aor;
use tracing::Instrument;

use crate::{
    Binding, BindingSet, Credential, DocumentBase, MessageId, PublicationRecord, Store, StoreError,
    StoredDocument, StoredMessage, SubscriptionRecord, UnixTime,
};

/// Wraps a store with spans and latency metrics.
pub struct Traced {
    inner: Arc<dyn Store>,
}

impl Traced {
    pub fn new(inner: Arc<dyn Store>) -> Traced {
        Traced { inner }
    }
}

async fn traced<T>(
    operation: &'static str,
    fut: impl Future<Output = Result<T, StoreError>>,
) -> Result<T, StoreError> {
    let span = tracing::info_span!(
        "redis",
        otel.name = %format_args!("redis {operation}"),
        otel.kind = "client",
        db.system.name = "redis",
        db.operation.name = operation,
        otel.status_code = tracing::field::Empty,
    );
    let start = Instant::now();
    let out = fut.instrument(span.clone()).await;
    telemetry::metrics().redis(operation, start.elapsed());
    if matches!(out, Err(StoreError::Unavailable(_))) {
        span.record("otel.status_code", "ERROR");
    }
    out
}

#[async_trait]
impl Store for Traced {
    async fn bindings(&self, aor: &Aor, now: UnixTime) -> Result<BindingSet, StoreError> {
        traced("bindings", self.inner.bindings(aor, now)).await
    }

    async fn replace_bindings(
        &self,
        aor: &Aor,
        version: u64,
        bindings: Vec<Binding>,
    ) -> Result<(), StoreError> {
        traced(
            "replace_bindings",
            self.inner.replace_bindings(aor, version, bindings),
        )
        .await
    }

    async fn enqueue_message(
        &self,
        aor: &Aor,
        message: StoredMessage,
        max_queued: usize,
    ) -> Result<(), StoreError> {
        traced(
            "enqueue_message",
            self.inner.enqueue_message(aor, message, max_queued),
        )
        .await
    }

    async fn queued_messages(
        &self,
        aor: &Aor,
        now: UnixTime,
    ) -> Result<Vec<StoredMessage>, StoreError> {
        traced("queued_messages", self.inner.queued_messages(aor, now)).await
    }

    async fn remove_message(&self, aor: &Aor, id: MessageId) -> Result<(), StoreError> {
        traced("remove_message", self.inner.remove_message(aor, id)).await
    }

    async fn save_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
    ) -> Result<(), StoreError> {
        traced(
            "save_publication",
            self.inner.save_publication(presentity, record),
        )
        .await
    }

    async fn delete_publication(&self, presentity: &Aor, etag: &str) -> Result<(), StoreError> {
        traced(
            "delete_publication",
            self.inner.delete_publication(presentity, etag),
        )
        .await
    }

    async fn replace_publication(
        &self,
        presentity: &Aor,
        record: PublicationRecord,
        replaces: &str,
    ) -> Result<(), StoreError> {
        traced(
            "replace_publication",
            self.inner.replace_publication(presentity, record, replaces),
        )
        .await
    }

    async fn save_subscription(
        &self,
        presentity: &Aor,
        record: SubscriptionRecord,
    ) -> Result<(), StoreError> {
        traced(
            "save_subscription",
            self.inner.save_subscription(presentity, record),
        )
        .await
    }

    async fn save_notify_counters(
        &self,
        presentity: &Aor,
        id: u64,
        notify_cseq: u32,
        winfo_version: u32,
    ) -> Result<(), StoreError> {
        traced(
            "save_notify_counters",
            self.inner
                .save_notify_counters(presentity, id, notify_cseq, winfo_version),
        )
        .await
    }

    async fn delete_subscription(&self, presentity: &Aor, id: u64) -> Result<(), StoreError> {
        traced(
            "delete_subscription",
            self.inner.delete_subscription(presentity, id),
        )
        .await
    }

    async fn take_epoch(&self) -> Result<Option<u64>, StoreError> {
        traced("take_epoch", self.inner.take_epoch()).await
    }

    async fn claim_presentity(&self, presentity: &Aor) -> Result<(), StoreError> {
        traced("claim_presentity", self.inner.claim_presentity(presentity)).await
    }

    async fn presence_state(
        &self,
        presentity: &Aor,
    ) -> Result<(Vec<PublicationRecord>, Vec<SubscriptionRecord>), StoreError> {
        traced("presence_state", self.inner.presence_state(presentity)).await
    }

    async fn presentities(&self) -> Result<Vec<Aor>, StoreError> {
        traced("presentities", self.inner.presentities()).await
    }

    async fn presentities_in_slots(&self, slots: &[u16]) -> Result<Vec<Aor>, StoreError> {
        traced(
            "presentities_in_slots",
            self.inner.presentities_in_slots(slots),
        )
        .await
    }

    async fn put_credential(&self, aor: &Aor, credential: Credential) -> Result<(), StoreError> {
        traced("put_credential", self.inner.put_credential(aor, credential)).await
    }

    async fn credentials(&self, aor: &Aor) -> Result<Vec<Credential>, StoreError> {
        traced("credentials", self.inner.credentials(aor)).await
    }

    async fn delete_credentials(&self, aor: &Aor) -> Result<bool, StoreError> {
        traced("delete_credentials", self.inner.delete_credentials(aor)).await
    }

    async fn credential_users(&self) -> Result<Vec<Aor>, StoreError> {
        traced("credential_users", self.inner.credential_users()).await
    }

    async fn document(&self, user: &Aor, path: &str) -> Result<Option<StoredDocument>, StoreError> {
        traced("document", self.inner.document(user, path)).await
    }

    async fn put_document(
        &self,
        user: &Aor,
        path: &str,
        base: DocumentBase<'_>,
        document: StoredDocument,
    ) -> Result<(), StoreError> {
        traced(
            "put_document",
            self.inner.put_document(user, path, base, document),
        )
        .await
    }

    async fn delete_document(&self, user: &Aor, path: &str, etag: &str) -> Result<(), StoreError> {
        traced(
            "delete_document",
            self.inner.delete_document(user, path, etag),
        )
        .await
    }
}

#[cfg(test)]
mod tests {
    #[tokio::test]
    async fn traced_store_meets_the_contract() {
        let inner = std::sync::Arc::new(crate::MemoryStore::new());
        crate::conformance::run_all(&super::Traced::new(inner)).await;
    }
}
