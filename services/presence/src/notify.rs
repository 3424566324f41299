//! One NOTIFY queue per subscription (RFC 6665 §4.2.2).
//!
//! Each subscription owns a task that sends its NOTIFYs one at a time, in
//! CSeq order, waiting for each answer before the next, so a watcher never
//! sees an older state after a newer one. Every change gets its NOTIFY
//! while the watcher keeps up; a watcher that falls `queue_max` changes
//! behind has the newest changes folded into the last queued one (so its
//! queue stays bounded and its next NOTIFY carries the newest state). A
//! slow or dead watcher only delays its own queue.

use std::sync::{Arc, Mutex, Weak};

use api::{DeliveryError, EdgeDelivery, OutboundRequest};
use bytes::Bytes;
use sip::{Aor, Method, SubscriptionState};
use store::{SubscriptionRecord, UnixTime};
use tracing::Instrument;

use crate::state::{Package, SubscriptionId};
use crate::winfo::{self, WatcherEntry};
use crate::{lock, Inner};

/// The subscription state a NOTIFY announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyState {
    Active {
        expires_at: UnixTime,
    },
    Pending {
        expires_at: UnixTime,
    },
    /// Final NOTIFY; `reason` per RFC 6665 §4.2.2 (timeout, rejected,
    /// deactivated, noresource, ...). `with_state` sends the document one
    /// last time (a fetch, or an authorized watcher leaving).
    Terminated {
        reason: Option<&'static str>,
        with_state: bool,
    },
}

/// A body change to send.
#[derive(Debug, Clone)]
pub(crate) enum Body {
    /// The presentity's (composed) document.
    Presence(Arc<str>),
    /// Every watcher (RFC 3858 state="full").
    WinfoFull(Vec<WatcherEntry>),
    /// Watchers that changed (state="partial").
    WinfoPartial(Vec<WatcherEntry>),
    /// xcap-diff: documents with their ETags (RFC 5874).
    XcapDiff {
        root: Arc<str>,
        docs: Vec<crate::xcapdiff::DiffEntry>,
    },
}

impl Body {
    /// Folds a newer change into a pending one so nothing is lost when
    /// NOTIFYs coalesce: a full list absorbs later partial changes, and
    /// partial changes merge by watcher id.
    fn merge(self, newer: Body) -> Body {
        match (self, newer) {
            (Body::WinfoFull(mut all), Body::WinfoPartial(changes)) => {
                winfo::apply_changes(&mut all, changes);
                Body::WinfoFull(all)
            }
            (Body::WinfoPartial(mut pending), Body::WinfoPartial(changes)) => {
                for c in changes {
                    match pending.iter_mut().find(|w| w.id == c.id) {
                        Some(w) => *w = c,
                        None => pending.push(c),
                    }
                }
                Body::WinfoPartial(pending)
            }
            (Body::XcapDiff { mut docs, .. }, Body::XcapDiff { root, docs: newer }) => {
                crate::xcapdiff::merge(&mut docs, newer);
                Body::XcapDiff { root, docs }
            }
            (_, newer) => newer,
        }
    }
}

/// How many NOTIFY CSeqs (and winfo versions) one store write reserves.
const COUNTER_BLOCK: u32 = 64;

/// One queued change: a new subscription state, a new body, or both.
struct Change {
    state: Option<NotifyState>,
    body: Option<Body>,
    /// The request that caused it (its trace, its arrival time); a change
    /// folded into a queued one keeps the older cause.
    cause: telemetry::Cause,
}

/// A subscription's NOTIFY queue and, while no task runs, its sender. One
/// per held subscription, so kept small: a `Vec` for the few queued changes
/// (at most `queue_max`, taken from the front), one mutex for all of it.
struct Pending {
    changes: Vec<Change>,
    /// The sender's state while no task runs (a held subscription costs no
    /// task: one is spawned when a change arrives and ends when the queue
    /// is empty). Taken by the running task, put back before it ends.
    sender: Option<Sender>,
    queue_max: u32,
    /// A terminated state is queued: nothing may follow it.
    terminated: bool,
    /// A task is draining the queue.
    running: bool,
    /// The last NOTIFY was sent or failed for good: no task may start again.
    finished: bool,
    /// The record after a refresh (RFC 6665 §4.1.2.1 makes SUBSCRIBE a
    /// target refresh request, and it may come over another flow).
    record: Option<Arc<SubscriptionRecord>>,
}

struct Shared {
    pending: Mutex<Pending>,
}

/// What sending NOTIFYs for one dialog needs between NOTIFYs.
struct Sender {
    inner: Weak<Inner>,
    /// Shared by every sender of the service (a thin pointer: the
    /// `dyn` one would be a word more per subscription).
    delivery: Arc<Arc<dyn EdgeDelivery>>,
    dialog: DialogOut,
    state: NotifyState,
    /// Our CSeq space for this dialog (RFC 3261 §12.2.1.1) starts after
    /// the last one stored and only goes up, across restarts too.
    cseq: u32,
    winfo_version: u32,
    /// The marks stored so far: numbers up to them may be used without
    /// another store write.
    reserved_cseq: u32,
    reserved_version: u32,
    /// The presence document last sent (or due).
    document: Option<Arc<str>>,
}

/// What a NOTIFY of one dialog is built from (RFC 6665 §4.1.2, RFC 3261
/// §12.2.1.1): the subscription's stored record (shared with the
/// presentity's state, replaced on refresh) plus what is not in it. Herald
/// is the notifier, so From is the local URI with our tag and To is the
/// subscriber.
#[derive(Debug, Clone)]
pub(crate) struct DialogOut {
    pub(crate) record: Arc<SubscriptionRecord>,
    pub(crate) package: Package,
    pub(crate) presentity: Arc<Aor>,
}

impl DialogOut {
    fn event(&self) -> String {
        match self.record.event_id() {
            Some(id) => format!("{};id={}", self.package.name(), id),
            None => self.package.name().to_string(),
        }
    }
}

/// Handle to a subscription's NOTIFY queue. Dropping it does not stop a
/// running task; a Terminated state ends the queue once it is sent.
#[derive(Clone)]
pub(crate) struct Notifier {
    shared: Arc<Shared>,
}

impl Notifier {
    pub(crate) fn spawn(
        inner: Weak<Inner>,
        delivery: Arc<Arc<dyn EdgeDelivery>>,
        dialog: DialogOut,
        state: NotifyState,
        last_cseq: u32,
        winfo_version: u32,
        queue_max: usize,
    ) -> Notifier {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                changes: Vec::new(),
                sender: Some(Sender {
                    inner,
                    delivery,
                    dialog,
                    state,
                    cseq: last_cseq,
                    winfo_version,
                    reserved_cseq: last_cseq,
                    reserved_version: winfo_version,
                    document: None,
                }),
                queue_max: u32::try_from(queue_max.max(1)).unwrap_or(u32::MAX),
                terminated: false,
                running: false,
                finished: false,
                record: None,
            }),
        });
        Notifier { shared }
    }

    /// Later NOTIFYs use this record's remote target and flow.
    pub(crate) fn retarget(&self, record: Arc<SubscriptionRecord>) {
        lock(&self.shared.pending).record = Some(record);
    }

    /// Queues a change. Either part may be absent (a refresh changes only
    /// the state; a new document only the body).
    pub(crate) fn push(&self, state: Option<NotifyState>, body: Option<Body>) {
        let start = {
            let mut p = lock(&self.shared.pending);
            // Once terminated, nothing follows.
            if p.terminated || p.finished {
                return;
            }
            p.terminated = matches!(state, Some(NotifyState::Terminated { .. }));
            let full = p.changes.len() >= p.queue_max as usize;
            match p.changes.last_mut() {
                Some(last) if full => {
                    if state.is_some() {
                        last.state = state;
                    }
                    if let Some(b) = body {
                        last.body = Some(match last.body.take() {
                            Some(old) => old.merge(b),
                            None => b,
                        });
                    }
                }
                _ => p.changes.push(Change {
                    state,
                    body,
                    cause: telemetry::Cause::here(),
                }),
            }
            !std::mem::replace(&mut p.running, true)
        };
        if start {
            tokio::spawn(drain(Arc::clone(&self.shared)));
        }
    }
}

/// Sends the queued changes one NOTIFY at a time, then parks the sender
/// back in `shared` and ends.
async fn drain(shared: Arc<Shared>) {
    // `running` was set by the push that spawned us, after the previous
    // task (if any) had put the sender back.
    let Some(mut sender) = lock(&shared.pending).sender.take() else {
        return;
    };
    let Sender {
        ref inner,
        ref delivery,
        ref mut dialog,
        ref mut state,
        ref mut cseq,
        ref mut winfo_version,
        ref mut reserved_cseq,
        ref mut reserved_version,
        ref mut document,
    } = sender;
    let id = SubscriptionId(dialog.record.id);
    loop {
        let change = {
            let mut p = lock(&shared.pending);
            if let Some(record) = p.record.take() {
                dialog.record = record;
            }
            if p.changes.is_empty() {
                // An idle queue keeps no buffer: it would hold room for
                // four changes (about half a KiB) per held subscription.
                p.changes = Vec::new();
                // Park the sender under the same lock as `running`, so a
                // later push that sees it false finds the sender back.
                p.running = false;
                p.sender = Some(sender);
                return;
            }
            Some(p.changes.remove(0))
        };
        let Some(Change {
            state: new_state,
            body,
            cause,
        }) = change
        else {
            continue;
        };
        if let Some(s) = new_state {
            *state = s;
        }
        let payload: Option<String> = match body {
            Some(Body::Presence(doc)) => {
                *document = Some(doc);
                None
            }
            Some(Body::WinfoFull(list)) => {
                let xml = winfo::document(&dialog.presentity, *winfo_version, true, &list);
                *winfo_version += 1;
                Some(xml)
            }
            Some(Body::WinfoPartial(list)) => {
                let xml = winfo::document(&dialog.presentity, *winfo_version, false, &list);
                *winfo_version += 1;
                Some(xml)
            }
            Some(Body::XcapDiff { root, docs }) => Some(crate::xcapdiff::document(&root, &docs)),
            None => None,
        };
        // Presence documents go only to authorized watchers (RFC 3856
        // §6.6.2: a pending subscription gets no state).
        let body = match dialog.package {
            Package::Presence => match *state {
                NotifyState::Active { .. } => document.as_deref().map(str::to_string),
                NotifyState::Terminated {
                    with_state: true, ..
                } => document.as_deref().map(str::to_string),
                _ => None,
            },
            Package::Winfo | Package::XcapDiff => payload,
        };
        *cseq += 1;
        let now = UnixTime::now();
        let subscription_state = match *state {
            NotifyState::Active { expires_at } => SubscriptionState::Active {
                expires: now.secs_until(expires_at) as u32,
            },
            NotifyState::Pending { expires_at } => SubscriptionState::Pending {
                expires: now.secs_until(expires_at) as u32,
            },
            NotifyState::Terminated { reason, .. } => SubscriptionState::Terminated {
                reason: reason.map(str::to_string),
                retry_after: None,
            },
        };
        let request = OutboundRequest {
            method: Method::Notify,
            uri: dialog.record.remote_target().to_string(),
            from: format!(
                "{};tag={}",
                dialog.record.local_uri(),
                dialog.record.local_tag()
            ),
            to: dialog.record.remote_uri().to_string(),
            call_id: dialog.record.call_id().to_string(),
            cseq: *cseq,
            relayed_vias: Vec::new(),
            route: dialog.record.route_set.clone(),
            content_type: body
                .as_ref()
                .map(|_| dialog.package.content_type().to_string()),
            headers: vec![
                ("Event".into(), dialog.event()),
                ("Subscription-State".into(), subscription_state.to_string()),
            ],
            body: body.map(Bytes::from).unwrap_or_default(),
            max_forwards: 70,
            flow_only: false,
        };
        let terminated = matches!(*state, NotifyState::Terminated { .. });
        let span = cause.notify_span(dialog.package.name());
        let mut request = request;
        let mut result;
        let mut attempt = 0;
        let flow = dialog.record.flow_token();
        loop {
            // CSeq and winfo version are reserved in the store in blocks
            // before they are used, so a restart (which starts past the
            // stored mark) never reuses one a watcher may have seen, and
            // most NOTIFYs cost no store write.
            if !terminated && (*cseq > *reserved_cseq || *winfo_version > *reserved_version) {
                let store = inner.upgrade().and_then(|i| i.durable().cloned());
                if let Some(store) = store {
                    let (cseq_mark, version_mark) =
                        (*cseq + COUNTER_BLOCK, *winfo_version + COUNTER_BLOCK);
                    match store
                        .save_notify_counters(&dialog.presentity, id.0, cseq_mark, version_mark)
                        .instrument(span.clone())
                        .await
                    {
                        Ok(()) => {
                            *reserved_cseq = cseq_mark;
                            *reserved_version = version_mark;
                        }
                        Err(e) => {
                            tracing::warn!(%id, error = %e, "NOTIFY counters not stored")
                        }
                    }
                }
            }
            if attempt == 0 {
                cause.notify_sent();
            }
            result = delivery
                .send_request(&flow, request.clone())
                .instrument(span.clone())
                .await;
            attempt += 1;
            // The edge holding the flow failed mid-way (in a cluster: it
            // died): the watcher may have seen this CSeq, so the retry
            // through another edge is a new request with the next one
            // (RFC 3261 §12.2.1.1).
            if attempt < 2 && matches!(result, Err(DeliveryError::Transport(_))) {
                *cseq += 1;
                request.cseq = *cseq;
                continue;
            }
            break;
        }
        let ok = matches!(&result, Ok(r) if (200..300).contains(&r.status));
        if !ok && !terminated && matches!(result, Err(DeliveryError::FlowGone(_))) {
            // The watcher's connection is out of reach (in a cluster: its
            // edge is gone). It reconnects through another edge and
            // refreshes, which moves the subscription to the new flow and
            // sends the current state, so wait for that instead of ending
            // it (DESIGN.md §2). One process hears of a closed connection
            // directly and ends the subscription then.
            tracing::debug!(%id, presentity = %dialog.presentity, "watcher's flow gone, waiting for its refresh");
            continue;
        }
        if !ok {
            tracing::debug!(%id, presentity = %dialog.presentity, ?result, "NOTIFY failed");
            // RFC 6665 §4.2.2: a NOTIFY answered 481, or with no answer,
            // ends the subscription (we end it on any failure: a watcher
            // that refuses our NOTIFYs gets none of the later ones either).
            lock(&shared.pending).finished = true;
            if !terminated {
                if let Some(inner) = inner.upgrade() {
                    crate::subscription::notify_failed(&inner, &dialog.presentity, id).await;
                }
            }
            return;
        }
        if terminated {
            lock(&shared.pending).finished = true;
            return;
        }
    }
}
