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
use store::{SubscriptionFields, SubscriptionRecord, UnixTime};

use crate::authorize::{self, Outcome};
use crate::notify::{Body, DialogOut, Notifier, NotifyState, Reason};
use crate::state::{Authorization, Package, Presentity, Subscription, SubscriptionId, View};
use crate::{compose, documents, lock, winfo, xcapdiff, DialogKey, Inner, Item};

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

pub(crate) async fn subscribe(
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
        None => initial(inner, req, package, expires, now).await,
        Some(local_tag) => in_dialog(inner, req, package, local_tag, expires, now).await,
    }
}

async fn initial(
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
    // RFC 5875 §4.1: a user watches their own documents only.
    let watched = if package == Package::XcapDiff {
        if req.watcher != req.presentity {
            return Err(PresenceError::Forbidden(
                "xcap-diff is for the user's own documents".into(),
            ));
        }
        if inner.documents.get().is_none() {
            return Err(PresenceError::BadEvent(req.event.clone()));
        }
        xcapdiff::watched_from_body(req.content_type.as_deref(), &req.body)?
    } else {
        Vec::new()
    };
    // The local tag is the id in hex (RFC 3261 §19.3 asks only that it be
    // random): an in-dialog request then names its subscription.
    let id = rand::random::<u64>();
    let local_tag = store::local_tag_of(id);
    let cell = inner.presentity(&req.presentity);
    let result = {
        let mut p = cell.lock().await;
        let ready = match crate::ensure_loaded(inner, &mut p).await {
            Ok(()) => documents::ensure_and_apply(inner, &mut p, now).await,
            Err(e) => Err(e.into()),
        };
        compose::catch_up(&mut p);
        if let Err(e) = ready {
            Err(e)
        } else if package == Package::Presence
            && expires != 0
            && p.subscriptions.len() >= inner.config.max_watchers_per_presentity
        {
            Err(PresenceError::Forbidden("too many watchers".into()))
        } else if expires != 0
            && watcher_count(inner, &req.watcher.to_string())
                >= inner.config.max_subscriptions_per_watcher
        {
            // RFC 6665 names no code for a quota; 403 like the other
            // presence quotas: retrying will not help until the watcher
            // ends some (docs/decisions/0013-limits.md).
            Err(PresenceError::Forbidden("too many subscriptions".into()))
        } else {
            create(inner, &mut p, &req, package, watched, id, expires, now).await
        }
    };
    drop(cell);
    inner.forget_if_empty(&req.presentity);
    result.map(|_| SubscribeOk { local_tag, expires })
}

/// Creates the subscription, stores it, and queues its first NOTIFY (RFC
/// 6665 §4.2.1.2). With `expires == 0` it is a fetch: one NOTIFY with the
/// current state, terminated, and nothing kept.
#[allow(clippy::too_many_arguments)]
async fn create(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    req: &SubscribeRequest,
    package: Package,
    watched: Vec<String>,
    id: u64,
    expires: u32,
    now: UnixTime,
) -> Result<(), PresenceError> {
    // The watcher's identity is the From AOR the edge read.
    let (authorization, view) = match authorize::decide(inner, p, &req.watcher, package, now) {
        Outcome::Active(view) => (Authorization::Active, view),
        // Nothing is shown until approved; the view comes with the approval.
        Outcome::Pending => (Authorization::Pending, View::Neutral),
        // RFC 5025 §3.2.1 block: the subscription is rejected.
        Outcome::Rejected => {
            return Err(PresenceError::Forbidden(
                "the presentity's rules block this watcher".into(),
            ))
        }
    };
    let watcher = req.watcher.to_string();
    let record = SubscriptionRecord::try_from(SubscriptionFields {
        id,
        package: package.name(),
        event_id: req.event_id.as_deref(),
        watcher: &watcher,
        watcher_display: display_name(&req.dialog.remote_uri),
        call_id: &req.dialog.call_id,
        remote_tag: &req.dialog.remote_tag,
        local_tag: &store::local_tag_of(id),
        remote_uri: &req.dialog.remote_uri,
        local_uri: &req.dialog.local_uri,
        remote_target: &req.dialog.remote_target,
        route_set: &req.dialog.route_set,
        flow: &req.flow.0,
        connection: req.connection,
        created_at: now,
        expires_at: now.plus_secs(u64::from(expires)),
        pending: authorization == Authorization::Pending,
        last_event: "subscribe",
        notify_cseq: 0,
        winfo_version: 0,
        watched: &watched,
    })
    .map_err(|_| PresenceError::TooLarge)?;
    let body = first_body(inner, p, package, &view, &watched, now).await?;
    if expires == 0 {
        let notifier = spawn_notifier(inner, &p.aor, &Arc::new(record), package);
        notifier.push(
            Some(NotifyState::Terminated {
                reason: Some(Reason::Timeout),
                with_state: authorization == Authorization::Active,
            }),
            Some(body),
        );
        return Ok(());
    }
    // Stored before it is acknowledged.
    if let Some(store) = inner.durable() {
        store.save_subscription(&p.aor, record.clone()).await?;
    }
    let subscription = build(inner, &p.aor, record, package, view);
    subscription.notifier.push(
        Some(state_of(authorization, subscription.expires_at())),
        Some(body),
    );
    if package == Package::Presence {
        winfo::changed(
            p,
            vec![winfo::entry(&subscription, "subscribe", false, now)],
        );
    }
    insert(inner, p, subscription);
    Ok(())
}

fn spawn_notifier(
    inner: &Arc<Inner>,
    presentity: &Arc<Aor>,
    record: &Arc<SubscriptionRecord>,
    package: Package,
) -> Notifier {
    let out = DialogOut {
        record: Arc::clone(record),
        package,
        presentity: Arc::clone(presentity),
    };
    Notifier::spawn(
        Arc::downgrade(inner),
        out,
        state_of(Authorization::of(record), record.expires_at),
        record.notify_cseq,
        record.winfo_version,
        inner.config.notify_queue_max,
    )
}

/// The in-memory subscription for a stored record, with its notifier.
fn build(
    inner: &Arc<Inner>,
    presentity: &Arc<Aor>,
    record: SubscriptionRecord,
    package: Package,
    view: View,
) -> Subscription {
    let record = Arc::new(record);
    let notifier = spawn_notifier(inner, presentity, &record, package);
    Subscription {
        view,
        notifier,
        record,
    }
}

fn insert(inner: &Arc<Inner>, p: &mut Presentity, s: Subscription) {
    inner.index(
        s.expires_at(),
        Item::Subscription(p.aor.clone(), s.id()),
        s.flow(),
    );
    if !findable_by_tag(&p.aor, &s.record) {
        lock(&inner.dialogs).insert(&s.dialog(), Arc::clone(&p.aor), s.id());
    }
    *lock(&inner.per_watcher)
        .entry(s.record.watcher().to_string())
        .or_insert(0) += 1;
    if let Some(old) = p.subscriptions.insert(s) {
        uncount_watcher(inner, old.record.watcher());
    }
}

/// Whether an in-dialog request finds this subscription without the
/// dialog index: its local tag names its id, and its To (the request's To
/// in the dialog, which the edge takes as the presentity) is the
/// presentity.
fn findable_by_tag(presentity: &Aor, record: &SubscriptionRecord) -> bool {
    store::id_of_local_tag(&record.local_tag()) == Some(record.id)
        && record
            .local_uri()
            .parse::<Aor>()
            .is_ok_and(|to| to == *presentity)
}

/// Subscriptions `watcher` holds now (checked at creation; concurrent
/// SUBSCRIBEs to different presentities may overshoot by their number).
fn watcher_count(inner: &Inner, watcher: &str) -> usize {
    lock(&inner.per_watcher).get(watcher).copied().unwrap_or(0)
}

/// One subscription of `watcher` fewer (ended, or let go to another shard).
pub(crate) fn uncount(inner: &Inner, watcher: &str) {
    uncount_watcher(inner, watcher)
}

fn uncount_watcher(inner: &Inner, watcher: &str) {
    let mut counts = lock(&inner.per_watcher);
    if let Some(n) = counts.get_mut(watcher) {
        *n = n.saturating_sub(1);
        if *n == 0 {
            counts.remove(watcher);
        }
    }
}

/// Rebuilds a stored subscription on start; its first NOTIFY waits for the
/// next change or refresh (the watcher already has the last state). Its
/// view is what the rules grant now; whether it is still authorized at all
/// is settled by the re-evaluation that follows a restore.
pub(crate) fn restore(inner: &Arc<Inner>, p: &mut Presentity, record: SubscriptionRecord) {
    let Some(package) = Package::parse(record.package()) else {
        return;
    };
    let view = match record.watcher().parse::<Aor>() {
        Ok(watcher) => match authorize::decide(inner, p, &watcher, package, UnixTime::now()) {
            Outcome::Active(view) => view,
            _ => View::Neutral,
        },
        Err(_) => View::Neutral,
    };
    let subscription = build(inner, &p.aor, record, package, view);
    if package == Package::Presence && subscription.authorization() == Authorization::Active {
        subscription
            .notifier
            .sent_document(authorize::body_for(p, &subscription.view));
    }
    insert(inner, p, subscription);
}

async fn first_body(
    inner: &Inner,
    p: &mut Presentity,
    package: Package,
    view: &View,
    watched: &[String],
    now: UnixTime,
) -> Result<Body, PresenceError> {
    Ok(match package {
        Package::Presence => Body::Presence(authorize::body_for(p, view)),
        Package::Winfo => Body::WinfoFull(winfo::all(p, now)),
        Package::XcapDiff => xcapdiff::full_state(inner, &p.aor, watched).await?,
    })
}

fn state_of(authorization: Authorization, expires_at: UnixTime) -> NotifyState {
    match authorization {
        Authorization::Active => NotifyState::Active { expires_at },
        Authorization::Pending => NotifyState::Pending { expires_at },
    }
}

fn display_name(from: &str) -> Option<&str> {
    let from = from.trim();
    let rest = from.strip_prefix('"')?;
    let end = rest.find('"')?;
    Some(&rest[..end]).filter(|s| !s.is_empty())
}

async fn in_dialog(
    inner: &Arc<Inner>,
    req: SubscribeRequest,
    package: Package,
    local_tag: String,
    expires: u32,
    now: UnixTime,
) -> Result<SubscribeOk, PresenceError> {
    let key = DialogKey {
        call_id: &req.dialog.call_id,
        remote_tag: &req.dialog.remote_tag,
        local_tag: local_tag.as_str().into(),
        event: package.name(),
        event_id: req.event_id.as_deref(),
    };
    // Where the subscription can be: the presentity the request names,
    // under the id its local tag names; or where the dialog index says.
    let by_tag = store::id_of_local_tag(&local_tag)
        .map(|id| (Arc::new(req.presentity.clone()), SubscriptionId(id)));
    let by_index = lock(&inner.dialogs).get(&key);
    let mut found = None;
    for (aor, id) in by_tag.into_iter().chain(by_index) {
        let Some(cell) = inner.existing(&aor) else {
            continue;
        };
        // The subscription must be this dialog's: the tag is the client's
        // to choose, and the index is keyed by a hash.
        let guard = cell.lock().await;
        if guard
            .subscriptions
            .get(&id)
            .is_some_and(|s| s.is_dialog(&key))
        {
            drop(guard);
            found = Some((aor, id, cell));
            break;
        }
    }
    // RFC 6665 §4.2.1.2: a refresh for a subscription we do not have is 481.
    let Some((aor, id, cell)) = found else {
        return Err(PresenceError::NoSuchSubscription);
    };
    let result = {
        let mut p = cell.lock().await;
        let this = p.subscriptions.get(&id).filter(|s| s.is_dialog(&key));
        match this.map(|s| s.authorization()) {
            None => Err(PresenceError::NoSuchSubscription),
            Some(authorization) if expires == 0 => {
                // Unsubscribe (§4.2.1.4): a final NOTIFY, then gone.
                let event = if authorization == Authorization::Pending {
                    "giveup"
                } else {
                    "timeout"
                };
                end(inner, &mut p, id, None, event, now).await;
                Ok(())
            }
            Some(_) => {
                // Validity windows open and close with time: a refresh is when a
                // watcher's standing is looked at again (RFC 4745 §7.3).
                if p.documents
                    .as_ref()
                    .and_then(|d| d.rules.as_ref())
                    .is_some_and(|r| r.uses_validity())
                {
                    authorize::reauthorize(inner, &mut p, now).await;
                }
                refresh(inner, &mut p, id, &req, expires, now).await
            }
        }
    };
    drop(cell);
    inner.forget_if_empty(&aor);
    result.map(|_| SubscribeOk { local_tag, expires })
}

async fn refresh(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    id: SubscriptionId,
    req: &SubscribeRequest,
    expires: u32,
    now: UnixTime,
) -> Result<(), PresenceError> {
    let Some(s) = p.subscriptions.get(&id) else {
        return Err(PresenceError::NoSuchSubscription);
    };
    let mut record = SubscriptionRecord::clone(&s.record);
    record.expires_at = now.plus_secs(u64::from(expires));
    // RFC 6665 §4.1.2.1: SUBSCRIBE is a target refresh request; and the
    // watcher may have come back over another connection (RFC 5626
    // style): NOTIFYs follow it there.
    if !req.dialog.remote_target.is_empty() {
        record
            .set_remote_target(&req.dialog.remote_target)
            .map_err(|_| PresenceError::TooLarge)?;
    }
    record
        .set_flow(&req.flow, req.connection)
        .map_err(|_| PresenceError::TooLarge)?;
    if let Some(store) = inner.durable() {
        store.save_subscription(&p.aor, record.clone()).await?;
    }

    let (package, view) = (s.package(), s.view.clone());
    let watched: Vec<String> = s.record.watched().map(str::to_string).collect();
    let body = first_body(inner, p, package, &view, &watched, now).await?;
    let aor = p.aor.clone();
    let Some(s) = p.subscriptions.get_mut(&id) else {
        return Err(PresenceError::NoSuchSubscription);
    };
    let item = Item::Subscription(aor, id);
    inner.unindex(s.expires_at(), &item, s.flow());
    s.record = Arc::new(record);
    s.notifier.retarget(Arc::clone(&s.record));
    inner.index(s.expires_at(), item, s.flow());
    // RFC 6665 §4.2.1.2: a refresh is answered with a NOTIFY of the current state.
    s.notifier.push(
        Some(state_of(s.authorization(), s.expires_at())),
        Some(body),
    );
    Ok(())
}

/// Removes a subscription and queues its final NOTIFY (terminated, with
/// `reason` when there is one; a notifier whose NOTIFY already failed has
/// stopped and sends nothing). Watcher-info subscribers hear about it with
/// `winfo_event`.
pub(crate) async fn end(
    inner: &Arc<Inner>,
    p: &mut Presentity,
    id: SubscriptionId,
    reason: Option<Reason>,
    winfo_event: &'static str,
    now: UnixTime,
) {
    let deleted = match inner.durable() {
        Some(store) => store.delete_subscription(&p.aor, id.0).await,
        None => Ok(()),
    };
    if let Err(e) = deleted {
        // Ended for the watcher regardless; the stored copy ends at its expiry.
        tracing::warn!(aor = %p.aor, error = %e, "ended subscription not deleted from store");
    }
    let Some(s) = p.subscriptions.remove(&id) else {
        return;
    };
    uncount_watcher(inner, s.record.watcher());
    inner.unindex(
        s.expires_at(),
        &Item::Subscription(p.aor.clone(), id),
        s.flow(),
    );
    lock(&inner.dialogs).remove(&s.dialog(), s.id());
    s.notifier.push(
        Some(NotifyState::Terminated {
            reason,
            // A rejected watcher is shown nothing more (RFC 5025 §3.2.1).
            with_state: s.authorization() == Authorization::Active
                && reason != Some(Reason::Rejected),
        }),
        None,
    );
    if s.package() == Package::Presence {
        winfo::changed(p, vec![winfo::entry(&s, winfo_event, true, now)]);
    }
}

/// Expiry (called by the sweeper): ends the subscription with
/// terminated;reason=timeout if it is still due.
pub(crate) async fn expire(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId, now: UnixTime) {
    let Some(cell) = inner.existing(aor) else {
        return;
    };
    {
        let mut p = cell.lock().await;
        if p.subscriptions
            .get(&id)
            .is_some_and(|s| s.expires_at() <= now)
        {
            end(inner, &mut p, id, Some(Reason::Timeout), "timeout", now).await;
        }
    }
    drop(cell);
    inner.forget_if_empty(aor);
}

/// The watcher's connection closed: its NOTIFYs cannot arrive, so the
/// subscription ends at once. The final NOTIFY attempt fails fast on the
/// closed flow and lets the notifier task finish.
pub(crate) async fn flow_gone(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId) {
    end_now(inner, aor, id, Some(Reason::Deactivated)).await;
}

/// A NOTIFY failed (481, timeout, error): the watcher is gone.
pub(crate) async fn notify_failed(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId) {
    end_now(inner, aor, id, None).await;
}

async fn end_now(inner: &Arc<Inner>, aor: &Aor, id: SubscriptionId, reason: Option<Reason>) {
    let Some(cell) = inner.existing(aor) else {
        return;
    };
    {
        let mut p = cell.lock().await;
        end(inner, &mut p, id, reason, "deactivated", UnixTime::now()).await;
    }
    drop(cell);
    inner.forget_if_empty(aor);
}
