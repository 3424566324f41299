//! PUBLISH for the presence event (RFC 3903 §6): initial, refresh, modify
//! and remove, each answered with a fresh entity tag.
//!
//! Each request is decided against the presentity's state, written to the
//! store, and only then applied in memory and notified: what a publisher
//! was told succeeded is in the store (memory is a cache of it).

use std::sync::Arc;

use api::{ETag, PresenceError, PublishOk, PublishRequest};
use bytes::Bytes;
use sip::Aor;
use store::{PublicationRecord, UnixTime};

use crate::state::{Package, Presentity, Publication};
use crate::{authorize, compose, documents, Inner, Item};

const PIDF: &str = "application/pidf+xml";

fn new_etag() -> ETag {
    ETag(format!("{:016x}", rand::random::<u64>()))
}

pub(crate) fn record(etag: &ETag, publication: &Publication) -> PublicationRecord {
    PublicationRecord {
        etag: etag.0.clone(),
        body: publication.raw.to_vec(),
        order: publication.order,
        expires_at: publication.expires_at,
        flow: publication.flow.clone(),
    }
}

pub(crate) async fn publish(
    inner: &Arc<Inner>,
    req: PublishRequest,
    now: UnixTime,
) -> Result<PublishOk, PresenceError> {
    // §6 step 2: only event packages we serve, and PUBLISH only makes sense
    // for presence itself.
    if Package::parse(&req.event) != Some(Package::Presence) {
        return Err(PresenceError::BadEvent(req.event));
    }
    let cfg = &inner.config;
    // §6 step 4: expiry bounds.
    let expires = req.expires.unwrap_or(cfg.publish_default_expires);
    if expires != 0 && expires < cfg.publish_min_expires {
        return Err(PresenceError::IntervalTooBrief {
            min_expires: cfg.publish_min_expires,
        });
    }
    let expires = expires.min(cfg.publish_max_expires);

    // Parse a body before touching any state, so a bad document changes
    // nothing (§6 step 3: 415 for a type we do not take, 400 for a bad one).
    let document = if req.body.is_empty() {
        None
    } else {
        let ct = req.content_type.as_deref().unwrap_or("");
        if ct != PIDF {
            return Err(PresenceError::UnsupportedMediaType {
                got: ct.to_string(),
                accept: PIDF.to_string(),
            });
        }
        let doc = pidf::PidfDocument::parse(&req.body, &cfg.xml_limits).map_err(|e| {
            if e.sip_status() == 413 {
                PresenceError::TooLarge
            } else {
                PresenceError::BadRequest(e.to_string())
            }
        })?;
        // RFC 3863 §4.1.1 / RFC 3903 §6: the document is about this presentity.
        if !pidf::entity_matches(doc.entity(), req.presentity.as_str()) {
            return Err(PresenceError::BadRequest(format!(
                "entity {} is not {}",
                doc.entity(),
                req.presentity
            )));
        }
        Some(doc)
    };

    let aor = req.presentity.clone();
    let cell = inner.presentity(&aor);
    let result = {
        let mut p = cell.lock().await;
        // Rules and hard state matter to watchers only; with none, they
        // are read when the first one subscribes.
        let documents = match crate::ensure_loaded(inner, &mut p).await {
            Err(e) => Err(e.into()),
            Ok(()) if p.subscriptions.is_empty() => Ok(()),
            Ok(()) => documents::ensure_and_apply(inner, &mut p, now).await,
        };
        match documents {
            Ok(()) => apply(inner, &mut p, req, document, expires, now).await,
            Err(e) => Err(e),
        }
    };
    drop(cell);
    inner.forget_if_empty(&aor);
    result
}

async fn apply(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    req: PublishRequest,
    document: Option<pidf::PidfDocument>,
    expires: u32,
    now: UnixTime,
) -> Result<PublishOk, PresenceError> {
    let flow = req.connection.then(|| req.flow.clone());
    let expires_at = now.plus_secs(u64::from(expires));

    // §6 step 1: a SIP-If-Match must name a live publication (412 otherwise).
    let previous = match &req.if_match {
        None => None,
        Some(tag) => match p.publications.get(tag) {
            Some(old) if old.expires_at > now => Some((tag.clone(), old)),
            _ => return Err(PresenceError::UnknownETag),
        },
    };
    let next = match (&previous, document) {
        // Initial publication: needs a body (§6 step 5) and a lifetime.
        (None, None) => {
            return Err(PresenceError::BadRequest(
                "initial PUBLISH without a body".into(),
            ))
        }
        (None, Some(_)) if expires == 0 => {
            return Err(PresenceError::BadRequest(
                "initial PUBLISH with Expires: 0".into(),
            ))
        }
        (None, Some(_)) if p.publications.len() >= inner.config.max_publications_per_presentity => {
            return Err(PresenceError::Forbidden("too many publications".into()));
        }
        (None, Some(document)) => Some(Publication {
            document,
            raw: req.body.clone(),
            order: 0,
            expires_at,
            flow,
        }),
        // Remove (§4.5).
        (Some(_), _) if expires == 0 => None,
        // Modify: the new document, newest in order.
        (Some((_, old)), Some(document)) => Some(Publication {
            document,
            raw: req.body.clone(),
            order: 0,
            expires_at,
            flow: flow.or_else(|| old.flow.clone()),
        }),
        // Refresh: same document, same place in the order.
        (Some((_, old)), None) => Some(Publication {
            document: old.document.clone(),
            raw: old.raw.clone(),
            order: old.order,
            expires_at,
            flow: flow.or_else(|| old.flow.clone()),
        }),
    };
    let previous = previous.map(|(tag, _)| tag);
    let next = next.map(|mut publication| {
        if publication.order == 0 {
            publication.order = p.next_order();
        }
        // §6 step 8: every success gets a new entity tag.
        (new_etag(), publication)
    });

    // Stored first: acknowledged means written.
    if let Some(store) = inner.durable() {
        match (&next, &previous) {
            (Some((etag, publication)), Some(old)) => {
                store
                    .replace_publication(&p.aor, record(etag, publication), &old.0)
                    .await?
            }
            (Some((etag, publication)), None) => {
                store
                    .save_publication(&p.aor, record(etag, publication))
                    .await?
            }
            (None, Some(old)) => store.delete_publication(&p.aor, &old.0).await?,
            (None, None) => {}
        }
    }

    if let Some(old) = previous {
        if let Some(gone) = p.publications.remove(&old) {
            inner.unindex(
                gone.expires_at,
                &Item::Publication(p.aor.clone(), old),
                gone.flow.as_ref().map(|f| f.0.as_str()),
            );
        }
    }
    let response = match next {
        Some((etag, publication)) => {
            inner.index(
                publication.expires_at,
                Item::Publication(p.aor.clone(), etag.clone()),
                publication.flow.as_ref().map(|f| f.0.as_str()),
            );
            p.publications.insert(etag.clone(), publication);
            PublishOk {
                etag: Some(etag),
                expires,
            }
        }
        None => PublishOk {
            etag: None,
            expires: 0,
        },
    };
    changed(inner, p, now).await;
    Ok(response)
}

/// Recomposes and, when the document changed, queues each watcher its view.
/// With no watcher the merge waits for the first one (`compose::catch_up`):
/// a presentity nobody watches costs no composition per PUBLISH.
async fn changed(inner: &Arc<Inner>, p: &mut Presentity, now: UnixTime) {
    if p.subscriptions.is_empty() {
        p.compose_pending = true;
        return;
    }
    if compose::recompose(p).is_some() {
        authorize::changed_state(inner, p, now).await;
    }
}

/// Drops a publication from the store and memory and tells watchers.
/// `only_if_due` keeps one a refresh has moved on.
async fn drop_publication(
    inner: &Arc<Inner>,
    aor: &Aor,
    etag: &ETag,
    only_if_due: Option<UnixTime>,
) {
    let Some(cell) = inner.existing(aor) else {
        return;
    };
    {
        let mut p = cell.lock().await;
        let present = match (p.publications.get(etag), only_if_due) {
            (None, _) => false,
            (Some(publication), Some(now)) => publication.expires_at <= now,
            (Some(_), None) => true,
        };
        if present {
            let deleted = match inner.durable() {
                Some(store) => store.delete_publication(aor, &etag.0).await,
                None => Ok(()),
            };
            if let Err(e) = deleted {
                // It is gone from watchers' view regardless; the store
                // copy ends at its own expiry.
                tracing::warn!(%aor, error = %e, "expired publication not deleted from store");
            }
            if let Some(publication) = p.publications.remove(etag) {
                inner.unindex(
                    publication.expires_at,
                    &Item::Publication(Arc::clone(&p.aor), etag.clone()),
                    publication.flow.as_ref().map(|f| f.0.as_str()),
                );
            }
            changed(inner, &mut p, only_if_due.unwrap_or_else(UnixTime::now)).await;
        }
    }
    drop(cell);
    inner.forget_if_empty(aor);
}

/// Expiry (called by the sweeper).
pub(crate) async fn expire(inner: &Arc<Inner>, aor: &Aor, etag: &ETag, now: UnixTime) {
    drop_publication(inner, aor, etag, Some(now)).await;
}

/// Removes a publication now (its connection closed).
pub(crate) async fn remove(inner: &Arc<Inner>, aor: &Aor, etag: &ETag) {
    drop_publication(inner, aor, etag, None).await;
}

/// Rebuilds a stored publication on start. Returns false for a body that
/// no longer parses (it is dropped).
pub(crate) fn restore(inner: &Arc<Inner>, p: &mut Presentity, record: PublicationRecord) -> bool {
    let raw = Bytes::from(record.body);
    let Ok(document) = pidf::PidfDocument::parse(&raw, &inner.config.xml_limits) else {
        return false;
    };
    let etag = ETag(record.etag);
    inner.index(
        record.expires_at,
        Item::Publication(p.aor.clone(), etag.clone()),
        record.flow.as_ref().map(|f| f.0.as_str()),
    );
    p.observe_order(record.order);
    p.publications.insert(
        etag,
        Publication {
            document,
            raw,
            order: record.order,
            expires_at: record.expires_at,
            flow: record.flow,
        },
    );
    true
}
