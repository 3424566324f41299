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

use api::{DeliveryError, OutboundRequest};
use bytes::Bytes;
use sip::{Aor, Method, SubscriptionState};
use store::{SubscriptionRecord, UnixTime};
use tracing::Instrument;

use crate::state::{Package, SubscriptionId};
use crate::winfo::{self, WatcherEntry};
use crate::{lock, Inner};

/// Why Herald ends a subscription (RFC 6665 §4.2.2 reason codes).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Reason {
    /// It expired, or the watcher ended it.
    Timeout,
    /// The presentity's rules block the watcher (RFC 5025 §3.2.1).
    Rejected,
    /// Herald ended it: the watcher's connection closed.
    Deactivated,
}

impl Reason {
    fn as_str(self) -> &'static str {
        match self {
            Reason::Timeout => "timeout",
            Reason::Rejected => "rejected",
            Reason::Deactivated => "deactivated",
        }
    }
}

/// The subscription state a NOTIFY announces.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum NotifyState {
    Active {
        expires_at: UnixTime,
    },
    Pending {
        expires_at: UnixTime,
    },
    /// Final NOTIFY, with its reason when there is one. `with_state` sends
    /// the document one last time (a fetch, or an authorized watcher
    /// leaving).
    Terminated {
        reason: Option<Reason>,
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

/// What one subscription's notifier holds between and during NOTIFYs,
/// under one mutex. One per held subscription, so kept small: while no
/// NOTIFY is queued it is the parked sender and the last document, no
/// queue and no task (docs/benchmarks.md, "Memory per subscription").
struct Pending {
    slot: Slot,
    /// The presence document last queued: what a state change that brings
    /// none sends, and what a new view is compared with so a change the
    /// watcher's view does not show sends nothing.
    last_body: Option<Arc<str>>,
    /// A terminated state is queued: nothing may follow it.
    terminated: bool,
}

enum Slot {
    /// No task runs; the sender waits here for the next change.
    Idle(Sender),
    /// A task holds the sender and drains the queue.
    Running(Queue),
    /// The last NOTIFY was sent or failed for good: nothing more is sent.
    Finished,
}

/// The changes waiting for a running task (at most `queue_max`, taken
/// from the front), and the record after a refresh (RFC 6665 §4.1.2.1
/// makes SUBSCRIBE a target refresh request, and it may come over another
/// flow), which the task takes before its next NOTIFY.
struct Queue {
    changes: Vec<Change>,
    record: Option<Arc<SubscriptionRecord>>,
    queue_max: u32,
}

struct Shared {
    pending: Mutex<Pending>,
}

/// What sending NOTIFYs for one dialog needs between NOTIFYs.
struct Sender {
    /// The service (its edge delivery, its store); gone, nothing is sent.
    inner: Weak<Inner>,
    /// The dialog (flattened from [`DialogOut`], so the package packs with
    /// the counters).
    record: Arc<SubscriptionRecord>,
    presentity: Arc<Aor>,
    package: Package,
    state: NotifyState,
    /// Our CSeq space for this dialog (RFC 3261 §12.2.1.1) starts after
    /// the last one stored and only goes up, across restarts too.
    cseq: u32,
    winfo_version: u32,
    /// The marks stored so far: numbers up to them may be used without
    /// another store write.
    reserved_cseq: u32,
    reserved_version: u32,
    queue_max: u32,
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

/// The Event header of a NOTIFY (RFC 6665 §8.2.1: with the id the
/// SUBSCRIBE carried).
fn event_header(record: &SubscriptionRecord, package: Package) -> String {
    match record.event_id() {
        Some(id) => format!("{};id={}", package.name(), id),
        None => package.name().to_string(),
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
        dialog: DialogOut,
        state: NotifyState,
        last_cseq: u32,
        winfo_version: u32,
        queue_max: usize,
    ) -> Notifier {
        let shared = Arc::new(Shared {
            pending: Mutex::new(Pending {
                slot: Slot::Idle(Sender {
                    inner,
                    record: dialog.record,
                    presentity: dialog.presentity,
                    package: dialog.package,
                    state,
                    cseq: last_cseq,
                    winfo_version,
                    reserved_cseq: last_cseq,
                    reserved_version: winfo_version,
                    queue_max: u32::try_from(queue_max.max(1)).unwrap_or(u32::MAX),
                }),
                last_body: None,
                terminated: false,
            }),
        });
        Notifier { shared }
    }

    /// Later NOTIFYs use this record's remote target and flow.
    pub(crate) fn retarget(&self, record: Arc<SubscriptionRecord>) {
        match &mut lock(&self.shared.pending).slot {
            Slot::Idle(sender) => sender.record = record,
            Slot::Running(queue) => queue.record = Some(record),
            Slot::Finished => {}
        }
    }

    /// Takes `document` as already sent (a restored subscription: the
    /// watcher has it from before).
    pub(crate) fn sent_document(&self, document: Arc<str>) {
        lock(&self.shared.pending).last_body = Some(document);
    }

    /// Queues `document` with `state` unless both would repeat what the
    /// watcher was last given (no state change, the same document).
    pub(crate) fn push_document(&self, state: Option<NotifyState>, document: Arc<str>) {
        let same = lock(&self.shared.pending).last_body.as_ref() == Some(&document);
        if state.is_some() || !same {
            self.push(state, Some(Body::Presence(document)));
        }
    }

    /// Queues a change. Either part may be absent (a refresh changes only
    /// the state; a new document only the body).
    pub(crate) fn push(&self, state: Option<NotifyState>, body: Option<Body>) {
        let start = {
            let mut guard = lock(&self.shared.pending);
            let p = &mut *guard;
            // Once terminated, nothing follows.
            if p.terminated || matches!(p.slot, Slot::Finished) {
                return;
            }
            p.terminated = matches!(state, Some(NotifyState::Terminated { .. }));
            match &body {
                Some(Body::Presence(doc)) => p.last_body = Some(Arc::clone(doc)),
                // A pending watcher is shown nothing; its approval sends
                // the document again.
                _ if matches!(state, Some(NotifyState::Pending { .. })) => p.last_body = None,
                _ => {}
            }
            let change = Change {
                state,
                body,
                cause: telemetry::Cause::here(),
            };
            match std::mem::replace(&mut p.slot, Slot::Finished) {
                Slot::Running(mut queue) => {
                    queue.push(change);
                    p.slot = Slot::Running(queue);
                    None
                }
                // The first change since the queue drained: a task starts.
                Slot::Idle(sender) => {
                    p.slot = Slot::Running(Queue {
                        changes: vec![change],
                        record: None,
                        queue_max: sender.queue_max,
                    });
                    Some(sender)
                }
                // Checked above.
                Slot::Finished => None,
            }
        };
        if let Some(sender) = start {
            tokio::spawn(drain(Arc::clone(&self.shared), sender));
        }
    }
}

impl Queue {
    /// Appends a change, or folds it into the last one when the queue is
    /// full (its state replaced, its body merged).
    fn push(&mut self, change: Change) {
        let full = self.changes.len() >= self.queue_max as usize;
        match self.changes.last_mut() {
            Some(last) if full => {
                if change.state.is_some() {
                    last.state = change.state;
                }
                if let Some(b) = change.body {
                    last.body = Some(match last.body.take() {
                        Some(old) => old.merge(b),
                        None => b,
                    });
                }
            }
            _ => self.changes.push(change),
        }
    }
}

/// Sends the queued changes one NOTIFY at a time, then parks the sender
/// back in `shared` and ends.
async fn drain(shared: Arc<Shared>, mut sender: Sender) {
    let id = SubscriptionId(sender.record.id);
    loop {
        let (change, last_body) = {
            let mut guard = lock(&shared.pending);
            let p = &mut *guard;
            let Slot::Running(queue) = &mut p.slot else {
                return;
            };
            if let Some(record) = queue.record.take() {
                sender.record = record;
            }
            if queue.changes.is_empty() {
                // Park the sender under the lock the pushes take, so the
                // next push finds it and starts a task. The queue's buffer
                // goes with it: an idle subscription holds none.
                p.slot = Slot::Idle(sender);
                return;
            }
            let change = queue.changes.remove(0);
            // A change without a document sends the last one queued.
            let last_body = change.body.is_none().then(|| p.last_body.clone()).flatten();
            (change, last_body)
        };
        if !send(&shared, &mut sender, id, change, last_body).await {
            lock(&shared.pending).slot = Slot::Finished;
            return;
        }
    }
}

/// Sends one NOTIFY for `change`; false when nothing more may be sent (it
/// was the final one, or it failed and the subscription ends).
async fn send(
    shared: &Arc<Shared>,
    sender: &mut Sender,
    id: SubscriptionId,
    change: Change,
    last_body: Option<Arc<str>>,
) -> bool {
    let Sender {
        ref inner,
        ref record,
        ref presentity,
        package,
        ref mut state,
        ref mut cseq,
        ref mut winfo_version,
        ref mut reserved_cseq,
        ref mut reserved_version,
        ..
    } = *sender;
    let Some(delivery) = inner.upgrade().map(|i| Arc::clone(&i.delivery)) else {
        // The service is gone.
        return false;
    };
    let Change {
        state: new_state,
        body,
        cause,
    } = change;
    if let Some(s) = new_state {
        *state = s;
    }
    let mut document = last_body;
    let payload: Option<String> = match body {
        Some(Body::Presence(doc)) => {
            document = Some(doc);
            None
        }
        Some(Body::WinfoFull(list)) => {
            let xml = winfo::document(presentity, *winfo_version, true, &list);
            *winfo_version += 1;
            Some(xml)
        }
        Some(Body::WinfoPartial(list)) => {
            let xml = winfo::document(presentity, *winfo_version, false, &list);
            *winfo_version += 1;
            Some(xml)
        }
        Some(Body::XcapDiff { root, docs }) => Some(crate::xcapdiff::document(&root, &docs)),
        None => None,
    };
    // Presence documents go only to authorized watchers (RFC 3856
    // §6.6.2: a pending subscription gets no state).
    let body = match package {
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
            reason: reason.map(|r| r.as_str().to_string()),
            retry_after: None,
        },
    };
    let request = OutboundRequest {
        method: Method::Notify,
        uri: record.remote_target().to_string(),
        from: format!("{};tag={}", record.local_uri(), record.local_tag()),
        to: record.remote_uri().to_string(),
        call_id: record.call_id().to_string(),
        cseq: *cseq,
        relayed_vias: Vec::new(),
        route: record.route_set().map(str::to_string).collect(),
        content_type: body.as_ref().map(|_| package.content_type().to_string()),
        headers: vec![
            ("Event".into(), event_header(record, package)),
            ("Subscription-State".into(), subscription_state.to_string()),
        ],
        body: body.map(Bytes::from).unwrap_or_default(),
        max_forwards: 70,
        flow_only: false,
    };
    let terminated = matches!(*state, NotifyState::Terminated { .. });
    let span = cause.notify_span(package.name());
    let mut request = request;
    let mut result;
    let mut attempt = 0;
    let flow = record.flow_token();
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
                    .save_notify_counters(presentity, id.0, cseq_mark, version_mark)
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
        tracing::debug!(%id, presentity = %presentity, "watcher's flow gone, waiting for its refresh");
        return true;
    }
    if !ok {
        tracing::debug!(%id, presentity = %presentity, ?result, "NOTIFY failed");
        // RFC 6665 §4.2.2: a NOTIFY answered 481, or with no answer,
        // ends the subscription (we end it on any failure: a watcher
        // that refuses our NOTIFYs gets none of the later ones either).
        // Finished first: the subscription's end queues nothing more.
        lock(&shared.pending).slot = Slot::Finished;
        if !terminated {
            if let Some(inner) = inner.upgrade() {
                crate::subscription::notify_failed(&inner, presentity, id).await;
            }
        }
        return false;
    }
    !terminated
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What a held subscription's notifier costs: its shared state behind
    /// one `Arc` (two counters) in jemalloc's 112-byte class.
    #[test]
    fn an_idle_notifier_is_one_small_allocation() {
        assert!(
            std::mem::size_of::<Shared>() + 16 <= 112,
            "{}",
            std::mem::size_of::<Shared>()
        );
        assert!(std::mem::size_of::<NotifyState>() <= 16);
        assert_eq!(std::mem::size_of::<Notifier>(), 8);
    }
}
