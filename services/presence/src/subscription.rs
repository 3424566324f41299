//! SUBSCRIBE for presence and presence.winfo (RFC 6665 §4.2 with RFC 3856
//! §6 and RFC 3857): create, refresh, unsubscribe, fetch, expiry.
//!
//! Watcher info events used (RFC 3857 §3.3): `subscribe` when a watcher
//! arrives, `approved` when a pending watcher is allowed, `timeout` when a
//! subscription expires or the watcher ends it, `giveup` when a pending
//! watcher ends it, `deactivated` when Herald ends it because its NOTIFYs
//! fail or its connection closed, `rejected` when a rule blocks it.

use std::sync::Arc;

use api::{PresenceError, SubscribeOk, SubscribeRequest};
use sip::Aor;
use store::UnixTime;

use crate::notify::{Body, DialogOut, Notifier, NotifyState};
use crate::state::{Authorization, Package, Presentity, Subscription, SubscriptionId};
use crate::{lock, winfo, DialogKey, Inner, Item, Policy};

fn new_tag() -> String {
    format!("{:016x}", rand::random::<u64>())
}

/// Does the Accept header allow what this package sends? An absent Accept
/// means the package default (RFC 6665 §7.2, RFC 3856 §6.6.1).
fn acceptable(accept: &[String], package: Package) -> bool {
    let wanted = package.content_type();
    let (kind, _) = wanted.split_once('/').unwrap_or((wanted, ""));
    accept.is_empty()
        || accept
            .iter()
            .any(|a| a == wanted || a == "*/*" || *a == format!("{kind}/*"))
}

pub(crate) fn subscribe(
    inner: &Arc<Inner>,
    req: SubscribeRequest,
    now: UnixTime,
) -> Result<SubscribeOk, PresenceError> {
    let package =
        Package::parse(&req.event).ok_or_else(|| PresenceError::BadEvent(req.event.clone()))?;
    if !acceptable(&req.accept, package) {
        return Err(PresenceError::NotAcceptable);
    }
    let cfg = &inner.config;
    let expires = req.expires.unwrap_or(cfg.subscribe_default_expires);
    if expires != 0 && expires < cfg.subscribe_min_expires {
        return Err(PresenceError::IntervalTooBrief {
            min_expires: cfg.subscribe_min_expires,
        });
    }
    // RFC 6665 §4.2.1.1: the notifier may shorten, never lengthen.
    let expires = expires.min(cfg.subscribe_max_expires);

    match req.dialog.local_tag.clone() {
        None => initial(inner, req, package, expires, now),
        Some(local_tag) => in_dialog(inner, req, package, local_tag, expires, now),
    }
}

fn initial(
    inner: &Arc<Inner>,
    req: SubscribeRequest,
    package: Package,
    expires: u32,
    now: UnixTime,
) -> Result<SubscribeOk, PresenceError> {
    // RFC 3857 §5.1: only the presentity itself sees who watches it.
    if package == Package::Winfo && req.watcher != req.presentity {
        return Err(PresenceError::Forbidden(
            "watcher information is for the presentity only".into(),
        ));
    }
    let local_tag = new_tag();
    let cell = inner.presentity(&req.presentity);
    let result = {
        let mut p = lock(&cell);
        if package == Package::Presence
            && expires != 0
            && p.subscriptions.len() >= inner.config.max_watchers_per_presentity
        {
            Err(PresenceError::Forbidden("too many watchers".into()))
        } else {
            create(inner, &mut p, &req, package, &local_tag, expires, now);
            Ok(())
        }
    };
    drop(cell);
    inner.forget_if_empty(&req.presentity);
    result.map(|_| SubscribeOk { local_tag, expires })
}

/// Creates the subscription and queues its first NOTIFY (RFC 6665
/// §4.2.1.2). With `expires == 0` it is a fetch: one NOTIFY with the
/// current state, terminated, and nothing kept.
fn create(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    req: &SubscribeRequest,
    package: Package,
    local_tag: &str,
    expires: u32,
    now: UnixTime,
) {
    let authorization = authorize(inner, &req.presentity, &req.watcher, package);
    let id = SubscriptionId(rand::random::<u64>());
    let dialog = DialogKey {
        call_id: req.dialog.call_id.clone(),
        remote_tag: req.dialog.remote_tag.clone(),
        local_tag: local_tag.to_string(),
        event: package.name().to_string(),
        event_id: req.event_id.clone(),
    };
    let event_header = match &req.event_id {
        Some(id) => format!("{};id={}", package.name(), id),
        None => package.name().to_string(),
    };
    let out = DialogOut {
        remote_target: req.dialog.remote_target.clone(),
        from: format!("{};tag={}", req.dialog.local_uri, local_tag),
        to: req.dialog.remote_uri.clone(),
        call_id: req.dialog.call_id.clone(),
        route_set: req.dialog.route_set.clone(),
        event: event_header,
        package,
        presentity: req.presentity.clone(),
        flow: req.flow.clone(),
    };
    let notifier = Notifier::spawn(Arc::downgrade(inner), Arc::clone(&inner.delivery), id, out);
    let expires_at = now.plus_secs(u64::from(expires));
    let body = first_body(p, package, now);
    if expires == 0 {
        notifier.push(
            Some(NotifyState::Terminated {
                reason: Some("timeout"),
                with_state: authorization == Authorization::Active,
            }),
            Some(body),
        );
        return;
    }
    notifier.push(Some(state_of(authorization, expires_at)), Some(body));
    let flow = req.connection.then(|| req.flow.clone());
    let subscription = Subscription {
        id,
        package,
        watcher: req.watcher.clone(),
        watcher_display: display_name(&req.dialog.remote_uri),
        dialog: dialog.clone(),
        created_at: now,
        expires_at,
        authorization,
        last_event: "subscribe",
        flow: flow.clone(),
        notifier,
    };
    if package == Package::Presence {
        winfo::changed(
            p,
            vec![winfo::entry(&subscription, "subscribe", false, now)],
        );
    }
    p.subscriptions.insert(id, subscription);
    inner.index(
        expires_at,
        Item::Subscription(p.aor.clone(), id),
        flow.as_ref(),
    );
    lock(&inner.dialogs).insert(dialog, (p.aor.clone(), id));
}

fn first_body(p: &Presentity, package: Package, now: UnixTime) -> Body {
    match package {
        Package::Presence => Body::Presence(Arc::clone(&p.composed)),
        Package::Winfo => Body::WinfoFull(winfo::all(p, now)),
    }
}

fn state_of(authorization: Authorization, expires_at: UnixTime) -> NotifyState {
    match authorization {
        Authorization::Active => NotifyState::Active { expires_at },
        Authorization::Pending => NotifyState::Pending { expires_at },
    }
}

/// The default policy until pres-rules exist: a presentity may always
/// watch itself and its own watcher list; others per configuration.
fn authorize(inner: &Inner, presentity: &Aor, watcher: &Aor, package: Package) -> Authorization {
    if package == Package::Winfo || presentity == watcher {
        return Authorization::Active;
    }
    match inner.config.policy {
        Policy::Allow => Authorization::Active,
        Policy::Confirm => Authorization::Pending,
    }
}

fn display_name(from: &str) -> Option<String> {
    let from = from.trim();
    let rest = from.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(rest[..end].to_string()).filter(|s| !s.is_empty())
}

fn in_dialog(
    inner: &Arc<Inner>,
    req: SubscribeRequest,
    package: Package,
    local_tag: String,
    expires: u32,
    now: UnixTime,
) -> Result<SubscribeOk, PresenceError> {
    let key = DialogKey {
        call_id: req.dialog.call_id.clone(),
        remote_tag: req.dialog.remote_tag.clone(),
        local_tag: local_tag.clone(),
        event: package.name().to_string(),
        event_id: req.event_id.clone(),
    };
    // RFC 6665 §4.2.1.2: a refresh for a subscription we do not have is 481.
    let Some((aor, id)) = lock(&inner.dialogs).get(&key).cloned() else {
        return Err(PresenceError::NoSuchSubscription);
    };
    let Some(cell) = inner.existing(&aor) else {
        return Err(PresenceError::NoSuchSubscription);
    };
    let result = {
        let mut p = lock(&cell);
        if !p.subscriptions.contains_key(&id) {
            Err(PresenceError::NoSuchSubscription)
        } else if expires == 0 {
            // Unsubscribe (§4.2.1.4): a final NOTIFY, then gone.
            let reason = if p.subscriptions.get(&id).map(|s| s.authorization)
                == Some(Authorization::Pending)
            {
                "giveup"
            } else {
                "timeout"
            };
            end(inner, &mut p, id, None, reason, now);
            Ok(())
        } else {
            if let Some(s) = p.subscriptions.get(&id) {
                if !req.dialog.remote_target.is_empty() {
                    s.notifier.retarget(req.dialog.remote_target.clone());
                }
            }
            refresh(inner, &mut p, id, expires, now);
            Ok(())
        }
    };
    drop(cell);
    inner.forget_if_empty(&aor);
    result.map(|_| SubscribeOk { local_tag, expires })
}

fn refresh(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    id: SubscriptionId,
    expires: u32,
    now: UnixTime,
) {
    let body_package = p.subscriptions.get(&id).map(|s| s.package);
    let Some(package) = body_package else {
        return;
    };
    let body = first_body(p, package, now);
    let aor = p.aor.clone();
    let Some(s) = p.subscriptions.get_mut(&id) else {
        return;
    };
    let old = s.expires_at;
    s.expires_at = now.plus_secs(u64::from(expires));
    inner.unindex(old, &Item::Subscription(aor.clone(), id), None);
    inner.index(s.expires_at, Item::Subscription(aor, id), None);
    // RFC 6665 §4.2.1.2: a refresh is answered with a NOTIFY of the current state.
    s.notifier
        .push(Some(state_of(s.authorization, s.expires_at)), Some(body));
}

/// Removes a subscription and queues its final NOTIFY (terminated, with
/// `reason` when there is one; a notifier whose NOTIFY already failed has
/// stopped and sends nothing). Watcher-info subscribers hear about it with
/// `winfo_event`.
fn end(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    id: SubscriptionId,
    reason: Option<&'static str>,
    winfo_event: &'static str,
    now: UnixTime,
) {
    let Some(s) = p.subscriptions.remove(&id) else {
        return;
    };
    inner.unindex(
        s.expires_at,
        &Item::Subscription(p.aor.clone(), id),
        s.flow.as_ref(),
    );
    lock(&inner.dialogs).remove(&s.dialog);
    s.notifier.push(
        Some(NotifyState::Terminated {
            reason,
            with_state: s.authorization == Authorization::Active,
        }),
        None,
    );
    if s.package == Package::Presence {
        winfo::changed(p, vec![winfo::entry(&s, winfo_event, true, now)]);
    }
}

/// Queues a new composed document to every authorized presence watcher.
pub(crate) fn notify_presence_watchers(_inner: &Arc<Inner>, p: &Presentity, xml: Arc<str>) {
    for s in p.subscriptions.values() {
        if s.package == Package::Presence && s.authorization == Authorization::Active {
            s.notifier
                .push(None, Some(Body::Presence(Arc::clone(&xml))));
        }
    }
}

/// Expiry (called by the sweeper): ends the subscription with
/// terminated;reason=timeout if it is still due.
pub(crate) fn expire(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId, now: UnixTime) {
    with_presentity(inner, aor, |p| {
        if p.subscriptions
            .get(&id)
            .is_some_and(|s| s.expires_at <= now)
        {
            end(inner, p, id, Some("timeout"), "timeout", now);
        }
    });
}

/// The watcher's connection closed: its NOTIFYs cannot arrive, so the
/// subscription ends at once. The final NOTIFY attempt fails fast on the
/// closed flow and lets the notifier task finish.
pub(crate) fn flow_gone(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId) {
    with_presentity(inner, aor, |p| {
        end(
            inner,
            p,
            id,
            Some("deactivated"),
            "deactivated",
            UnixTime::now(),
        );
    });
}

/// A NOTIFY failed (481, timeout, error): the watcher is gone.
pub(crate) fn notify_failed(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId) {
    with_presentity(inner, aor, |p| {
        end(inner, p, id, None, "deactivated", UnixTime::now());
    });
}

fn with_presentity(inner: &Arc<Inner>, aor: &Aor, f: impl FnOnce(&mut Presentity)) {
    let Some(cell) = inner.existing(aor) else {
        return;
    };
    f(&mut lock(&cell));
    drop(cell);
    inner.forget_if_empty(aor);
}
