//! Store and forward: messages for a recipient with no contact online wait
//! in the store and are delivered, oldest first and once, when the
//! recipient registers.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::UNIX_EPOCH;

use api::{OutboundRequest, PageMessage};
use bytes::Bytes;
use sip::{Aor, Method};
use store::{MessageId, StoreError, StoredMessage, UnixTime};

use crate::route::{fork, ForkResult};
use crate::MessagingService;

/// One async lock per recipient, so two registrations at once cannot
/// deliver the same queued message twice.
#[derive(Default)]
pub struct FlushLocks(Mutex<HashMap<Aor, Arc<tokio::sync::Mutex<()>>>>);

impl FlushLocks {
    fn get(&self, aor: &Aor) -> Arc<tokio::sync::Mutex<()>> {
        let mut map = self.0.lock().unwrap_or_else(|e| e.into_inner());
        // Drop locks nobody holds so the map does not grow with every
        // recipient ever seen.
        map.retain(|_, l| Arc::strong_count(l) > 1);
        map.entry(aor.clone()).or_default().clone()
    }
}

impl MessagingService {
    pub(crate) async fn has_queued(&self, aor: &Aor) -> Result<bool, StoreError> {
        Ok(!self
            .store
            .queued_messages(aor, UnixTime::now())
            .await?
            .is_empty())
    }

    pub(crate) async fn enqueue(&self, message: &PageMessage) -> Result<(), StoreError> {
        let now = UnixTime::now();
        let stored = StoredMessage {
            id: MessageId(0),
            received_at: now,
            expires_at: now.plus_secs(self.config.offline_ttl.as_secs()),
            from: message.from.clone(),
            to: message.to.clone(),
            content_type: message.content_type.clone(),
            headers: message.headers.clone(),
            body: message.body.to_vec(),
        };
        self.store
            .enqueue_message(&message.target, stored, self.config.offline_max_per_user)
            .await
    }

    /// Delivers the queue of `aor` in order. Stops at the first message no
    /// contact answers (it stays queued for the next registration); drops a
    /// message every contact rejects (retrying cannot help it).
    pub(crate) async fn flush_offline(&self, aor: &Aor) {
        let lock = self.flushes.get(aor);
        let _guard = lock.lock().await;
        let queued = match self.store.queued_messages(aor, UnixTime::now()).await {
            Ok(q) => q,
            Err(e) => {
                tracing::warn!(%aor, error = %e, "cannot read offline queue");
                return;
            }
        };
        for message in queued {
            let contacts = match self.registrar.lookup(aor).await {
                Ok(c) if !c.is_empty() => c,
                _ => return,
            };
            let request = stored_request(&message);
            match fork(
                &self.delivery,
                &contacts,
                request,
                self.config.delivery_timeout,
            )
            .await
            {
                ForkResult::Accepted(_) => {}
                ForkResult::Rejected { status, .. } => {
                    tracing::info!(%aor, status, "queued MESSAGE rejected by recipient, dropped");
                }
                ForkResult::Unreachable => return,
            }
            if let Err(e) = self.store.remove_message(aor, message.id).await {
                tracing::warn!(%aor, error = %e, "delivered MESSAGE not removed from queue");
                return;
            }
        }
    }
}

/// A queued message as a new request from Herald: a fresh Call-ID (the
/// sender's transaction ended long ago) and a Date header with the time it
/// was received, as RFC 3428 §9 suggests for stored messages.
fn stored_request(message: &StoredMessage) -> OutboundRequest {
    let mut headers = message.headers.clone();
    if !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("Date")) {
        let at = UNIX_EPOCH + std::time::Duration::from_secs(message.received_at.0);
        headers.push(("Date".into(), httpdate::fmt_http_date(at)));
    }
    OutboundRequest {
        method: Method::Message,
        uri: String::new(),
        from: message.from.clone(),
        to: message.to.clone(),
        call_id: format!("{:016x}@herald", rand::random::<u64>()),
        cseq: 1,
        relayed_vias: Vec::new(),
        route: Vec::new(),
        content_type: message.content_type.clone(),
        headers,
        body: Bytes::from(message.body.clone()),
        max_forwards: 70,
        flow_only: false,
    }
}
