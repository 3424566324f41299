//! Presence authorization: what the presentity's pres-rules (or, without a document, the
//! configured policy) decide for each watcher, and keeping every subscription in line with
//! that decision as rules and state change.
//!
//! Outcomes (RFC 5025 §3.2.1): allow makes the subscription active with the document cut
//! down to its transformations; polite-block makes it active with a neutral document (basic
//! closed, nothing else), so the watcher cannot tell it from offline; confirm makes it
//! pending (RFC 3857: the presentity sees it in watcher info); block rejects it: 403 to a
//! new SUBSCRIBE (RFC 6665 §4.2.1.2: not authorized), and terminated;reason=rejected for an
//! existing one (RFC 6665 §4.2.2).

use std::collections::HashMap;
use std::sync::Arc;

use sip::Aor;
use store::UnixTime;

use crate::rules::{Context, SubHandling};
use crate::state::{Authorization, Package, Presentity, SubscriptionId, View};
use crate::subscription;
use crate::winfo;
use crate::{Inner, Policy};

/// What a watcher gets.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Outcome {
    Active(View),
    Pending,
    Rejected,
}

/// Decides for `watcher`. A presentity always sees itself in full, and winfo and xcap-diff
/// are for the presentity only (checked when subscribing).
pub(crate) fn decide(
    inner: &Inner,
    p: &Presentity,
    watcher: &Aor,
    package: Package,
    now: UnixTime,
) -> Outcome {
    if package != Package::Presence || *watcher == *p.aor {
        return Outcome::Active(View::Full);
    }
    let rules = p.documents.as_ref().and_then(|d| d.rules.as_ref());
    let Some(rules) = rules else {
        // No pres-rules document: the configured default.
        return match inner.config.policy {
            Policy::Allow => Outcome::Active(View::Full),
            Policy::Confirm => Outcome::Pending,
        };
    };
    let decision = rules.evaluate(&Context {
        watcher,
        sphere: p.sphere.as_deref(),
        now,
    });
    match decision.sub_handling {
        SubHandling::Allow => Outcome::Active(View::Filtered(Arc::new(decision.view))),
        SubHandling::PoliteBlock => Outcome::Active(View::Neutral),
        SubHandling::Confirm => Outcome::Pending,
        SubHandling::Block => Outcome::Rejected,
    }
}

/// The document `view` shows of `composed`, filtered once per distinct permission set.
pub(crate) fn render(
    aor: &Aor,
    composed: &Arc<str>,
    views: &mut HashMap<Arc<pidf::Transformations>, Arc<str>>,
    view: &View,
) -> Arc<str> {
    match view {
        View::Full => Arc::clone(composed),
        View::Neutral => crate::compose::offline(aor),
        View::Filtered(t) => {
            if let Some(doc) = views.get(t.as_ref()) {
                return Arc::clone(doc);
            }
            let doc: Arc<str> = match pidf::filter(composed, t) {
                Ok(xml) => Arc::from(xml),
                Err(e) => {
                    // Our own composed document always reads; never show more than
                    // allowed if it somehow does not.
                    tracing::warn!(%aor, error = %e, "composed document did not filter");
                    crate::compose::offline(aor)
                }
            };
            views.insert(Arc::clone(t), Arc::clone(&doc));
            doc
        }
    }
}

/// The document a presence subscription is shown now.
pub(crate) fn body_for(p: &mut Presentity, view: &View) -> Arc<str> {
    render(&p.aor, &p.composed, &mut p.views, view)
}

/// The composed document changed: rules that depend on the presentity's state (sphere) are
/// evaluated again, then every active watcher whose view changed gets it.
pub(crate) async fn changed_state(inner: &Arc<Inner>, p: &mut Presentity, now: UnixTime) {
    let state_dependent = p
        .documents
        .as_ref()
        .and_then(|d| d.rules.as_ref())
        .is_some_and(|r| r.uses_sphere() || r.uses_validity());
    if state_dependent {
        reauthorize(inner, p, now).await;
    }
    notify_views(p);
}

/// Queues each active presence watcher its view of the current document, when it differs
/// from the one it was last sent.
pub(crate) fn notify_views(p: &mut Presentity) {
    let Presentity {
        aor,
        composed,
        views,
        subscriptions,
        ..
    } = p;
    for s in subscriptions.values_mut() {
        if s.package() != Package::Presence || s.authorization() != Authorization::Active {
            continue;
        }
        let body = render(aor, composed, views, &s.view);
        s.notifier.push_document(None, body);
    }
}

/// Brings every presence subscription of `p` in line with what the rules decide now
/// (RFC 5025 §3: a rule change applies at once): pending ones that are now allowed become
/// active with their document (winfo event approved), blocked ones end with
/// terminated;reason=rejected (winfo event rejected), and active ones whose view changed
/// get the new view.
pub(crate) async fn reauthorize(inner: &Arc<Inner>, p: &mut Presentity, now: UnixTime) {
    let ids: Vec<SubscriptionId> = p
        .subscriptions
        .values()
        .filter(|s| s.package() == Package::Presence)
        .map(|s| s.id())
        .collect();
    let mut winfo_changes = Vec::new();
    for id in ids {
        let Some(s) = p.subscriptions.get(&id) else {
            continue;
        };
        let Ok(watcher) = s.record.watcher().parse::<Aor>() else {
            continue;
        };
        let outcome = decide(inner, p, &watcher, Package::Presence, now);
        match outcome {
            Outcome::Rejected => {
                subscription::end(
                    inner,
                    p,
                    id,
                    Some(crate::notify::Reason::Rejected),
                    "rejected",
                    now,
                )
                .await;
            }
            Outcome::Pending => {
                if s.authorization() == Authorization::Active {
                    set_authorization(inner, p, id, Authorization::Pending, "subscribe").await;
                    if let Some(s) = p.subscriptions.get_mut(&id) {
                        s.notifier.push(
                            Some(crate::notify::NotifyState::Pending {
                                expires_at: s.expires_at(),
                            }),
                            None,
                        );
                        winfo_changes.push(winfo::entry(s, "subscribe", false, now));
                    }
                }
            }
            Outcome::Active(view) => {
                let was = s.authorization();
                if was == Authorization::Active && s.view == view {
                    continue;
                }
                if was == Authorization::Pending {
                    set_authorization(inner, p, id, Authorization::Active, "approved").await;
                }
                let body = body_for(p, &view);
                let Some(s) = p.subscriptions.get_mut(&id) else {
                    continue;
                };
                s.view = view;
                let state =
                    (was == Authorization::Pending).then_some(crate::notify::NotifyState::Active {
                        expires_at: s.expires_at(),
                    });
                s.notifier.push_document(state, body);
                if was == Authorization::Pending {
                    winfo_changes.push(winfo::entry(s, "approved", false, now));
                }
            }
        }
    }
    winfo::changed(p, winfo_changes);
}

/// Records a new authorization state in memory and in the store (so a pending watcher stays
/// pending, and an approved one active, across a restart).
async fn set_authorization(
    inner: &Inner,
    p: &mut Presentity,
    id: SubscriptionId,
    authorization: Authorization,
    event: &'static str,
) {
    let aor = p.aor.clone();
    let Some(s) = p.subscriptions.get_mut(&id) else {
        return;
    };
    let mut record = store::SubscriptionRecord::clone(&s.record);
    record.set_pending(authorization == Authorization::Pending);
    if let Err(e) = record.set_last_event(event) {
        tracing::warn!(%aor, error = %e, "watcher-info event not recorded");
    }
    if let Some(store) = inner.durable() {
        if let Err(e) = store.save_subscription(&aor, record.clone()).await {
            tracing::warn!(%aor, error = %e, "authorization change not stored");
        }
    }
    s.record = Arc::new(record);
    s.notifier.retarget(Arc::clone(&s.record));
}
