//! PUBLISH for the presence event (RFC 3903 §6): initial, refresh, modify
//! and remove, each answered with a fresh entity tag.

use std::sync::Arc;

use api::{ETag, PresenceError, PublishOk, PublishRequest};
use sip::Aor;
use store::UnixTime;

use crate::state::{Package, Presentity, Publication};
use crate::{compose, lock, subscription, Inner, Item};

const PIDF: &str = "application/pidf+xml";

fn new_etag() -> ETag {
    ETag(format!("{:016x}", rand::random::<u64>()))
}

pub(crate) fn publish(
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
    let result = apply(inner, &mut lock(&cell), req, document, expires, now);
    drop(cell);
    inner.forget_if_empty(&aor);
    result
}

fn apply(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    req: PublishRequest,
    document: Option<pidf::PidfDocument>,
    expires: u32,
    now: UnixTime,
) -> Result<PublishOk, PresenceError> {
    let flow = req.connection.then(|| req.flow.clone());
    let response = match req.if_match {
        // Initial publication: needs a body (§6 step 5) and a non-zero expiry.
        None => {
            let Some(document) = document else {
                return Err(PresenceError::BadRequest(
                    "initial PUBLISH without a body".into(),
                ));
            };
            if expires == 0 {
                return Err(PresenceError::BadRequest(
                    "initial PUBLISH with Expires: 0".into(),
                ));
            }
            if p.publications.len() >= inner.config.max_publications_per_presentity {
                return Err(PresenceError::Forbidden("too many publications".into()));
            }
            let etag = new_etag();
            insert(inner, p, etag.clone(), document, expires, now, flow);
            PublishOk {
                etag: Some(etag),
                expires,
            }
        }
        Some(old) => {
            // §6 step 1: an unknown or expired tag is 412.
            let Some(previous) = p.publications.remove(&old) else {
                return Err(PresenceError::UnknownETag);
            };
            if previous.expires_at <= now {
                inner.unindex(
                    previous.expires_at,
                    &Item::Publication(p.aor.clone(), old),
                    previous.flow.as_ref(),
                );
                return Err(PresenceError::UnknownETag);
            }
            inner.unindex(
                previous.expires_at,
                &Item::Publication(p.aor.clone(), old),
                previous.flow.as_ref(),
            );
            if expires == 0 {
                // Remove (§4.5): the state is gone now.
                PublishOk {
                    etag: None,
                    expires: 0,
                }
            } else {
                // Refresh keeps the document; modify replaces it. Either
                // way a new tag (§6 step 8) and the publication keeps its
                // place unless it was modified (then it is the newest).
                let (document, order) = match document {
                    Some(doc) => (doc, p.next_order()),
                    None => (previous.document, previous.order),
                };
                let etag = new_etag();
                let flow = flow.or(previous.flow);
                p.publications.insert(
                    etag.clone(),
                    Publication {
                        document,
                        order,
                        expires_at: now.plus_secs(u64::from(expires)),
                        flow: flow.clone(),
                    },
                );
                inner.index(
                    now.plus_secs(u64::from(expires)),
                    Item::Publication(p.aor.clone(), etag.clone()),
                    flow.as_ref(),
                );
                PublishOk {
                    etag: Some(etag),
                    expires,
                }
            }
        }
    };
    changed(inner, p);
    Ok(response)
}

fn insert(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    etag: ETag,
    document: pidf::PidfDocument,
    expires: u32,
    now: UnixTime,
    flow: Option<store::FlowToken>,
) {
    let order = p.next_order();
    let expires_at = now.plus_secs(u64::from(expires));
    inner.index(
        expires_at,
        Item::Publication(p.aor.clone(), etag.clone()),
        flow.as_ref(),
    );
    p.publications.insert(
        etag,
        Publication {
            document,
            order,
            expires_at,
            flow,
        },
    );
}

/// Recomposes and, when the document changed, queues it to every watcher.
fn changed(inner: &Arc<Inner>, p: &mut Presentity) {
    if let Some(xml) = compose::recompose(p) {
        subscription::notify_presence_watchers(inner, p, xml);
    }
}

/// Expiry (called by the sweeper): removes the publication if it is still
/// due (a refresh may have moved it on).
pub(crate) fn expire(inner: &Arc<Inner>, aor: &Aor, etag: &ETag, now: UnixTime) {
    let Some(cell) = inner.existing(aor) else {
        return;
    };
    {
        let mut p = lock(&cell);
        let due = p
            .publications
            .get(etag)
            .is_some_and(|publication| publication.expires_at <= now);
        if !due {
            return;
        }
        if let Some(publication) = p.publications.remove(etag) {
            inner.unindex(
                publication.expires_at,
                &Item::Publication(aor.clone(), etag.clone()),
                publication.flow.as_ref(),
            );
        }
        changed(inner, &mut p);
    }
    drop(cell);
    inner.forget_if_empty(aor);
}

/// Removes a publication now (its connection closed).
pub(crate) fn remove(inner: &Arc<Inner>, aor: &Aor, etag: &ETag, _now: UnixTime) {
    let Some(cell) = inner.existing(aor) else {
        return;
    };
    {
        let mut p = lock(&cell);
        if let Some(publication) = p.publications.remove(etag) {
            inner.unindex(
                publication.expires_at,
                &Item::Publication(aor.clone(), etag.clone()),
                publication.flow.as_ref(),
            );
            changed(inner, &mut p);
        }
    }
    drop(cell);
    inner.forget_if_empty(aor);
}
