//! In-process checks of the presence rules with a recording edge.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use api::{
    DeliveryError, EdgeDelivery, FinalResponse, OutboundRequest, Presence, PresenceError,
    PublishRequest, SubscribeDialog, SubscribeRequest,
};
use async_trait::async_trait;
use bytes::Bytes;
use store::FlowToken;
use tokio::sync::mpsc;

use crate::{PresenceConfig, PresenceService};

/// Records every request and answers with `status`, after `delay`.
pub(crate) struct Recorder {
    pub(crate) tx: mpsc::UnboundedSender<OutboundRequest>,
    pub(crate) status: Mutex<u16>,
    pub(crate) delay: Duration,
}

#[async_trait]
impl EdgeDelivery for Recorder {
    async fn send_request(
        &self,
        _flow: &FlowToken,
        request: OutboundRequest,
    ) -> Result<FinalResponse, DeliveryError> {
        let _ = self.tx.send(request);
        tokio::time::sleep(self.delay).await;
        let status = *self.status.lock().unwrap();
        Ok(FinalResponse {
            status,
            reason: String::new(),
        })
    }
}

type Harness = (
    PresenceService,
    Arc<Recorder>,
    mpsc::UnboundedReceiver<OutboundRequest>,
);

/// A recording edge whose clients answer 200 at once, and what it records.
fn answering_200() -> (Arc<Recorder>, mpsc::UnboundedReceiver<OutboundRequest>) {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        tx,
        status: Mutex::new(200),
        delay: Duration::ZERO,
    });
    (recorder, rx)
}

fn service(delay: Duration) -> Harness {
    service_with(delay, PresenceConfig::default())
}

fn service_with(delay: Duration, config: PresenceConfig) -> Harness {
    let (tx, rx) = mpsc::unbounded_channel();
    let recorder = Arc::new(Recorder {
        tx,
        status: Mutex::new(200),
        delay,
    });
    let svc = PresenceService::new(
        Arc::new(store::MemoryStore::new()),
        recorder.clone(),
        config,
    );
    (svc, recorder, rx)
}

fn pidf(basic: &str, note: &str) -> Bytes {
    Bytes::from(format!(
        r#"<?xml version="1.0"?><presence xmlns="urn:ietf:params:xml:ns:pidf" entity="sip:alice@example.com"><tuple id="t1"><status><basic>{basic}</basic></status><note>{note}</note></tuple></presence>"#
    ))
}

fn publish(body: Bytes, if_match: Option<&api::ETag>, expires: Option<u32>) -> PublishRequest {
    PublishRequest {
        presentity: "sip:alice@example.com".parse().unwrap(),
        event: "presence".into(),
        if_match: if_match.cloned(),
        expires,
        content_type: (!body.is_empty()).then(|| "application/pidf+xml".into()),
        body,
        flow: FlowToken("udp/a".into()),
        connection: false,
        authenticated: None,
    }
}

pub(crate) fn subscribe(call_id: &str) -> SubscribeRequest {
    SubscribeRequest {
        presentity: "sip:alice@example.com".parse().unwrap(),
        watcher: "sip:bob@example.com".parse().unwrap(),
        event: "presence".into(),
        event_id: None,
        accept: vec![],
        expires: Some(600),
        dialog: SubscribeDialog {
            call_id: call_id.into(),
            remote_tag: "b".into(),
            local_tag: None,
            remote_uri: "<sip:bob@example.com>;tag=b".into(),
            local_uri: "<sip:alice@example.com>".into(),
            remote_target: "sip:bob@127.0.0.1:5999".into(),
            route_set: vec![],
            remote_cseq: 1,
        },
        flow: FlowToken("udp/b".into()),
        connection: false,
        content_type: None,
        body: Bytes::new(),
        authenticated: None,
    }
}

async fn next(rx: &mut mpsc::UnboundedReceiver<OutboundRequest>) -> OutboundRequest {
    tokio::time::timeout(Duration::from_secs(5), rx.recv())
        .await
        .expect("a NOTIFY within 5 s")
        .expect("recorder alive")
}

pub(crate) fn header<'a>(r: &'a OutboundRequest, name: &str) -> &'a str {
    r.headers
        .iter()
        .find(|(n, _)| n == name)
        .map(|(_, v)| v.as_str())
        .unwrap_or("")
}

#[tokio::test]
async fn entity_tags_refresh_modify_remove() {
    let (svc, _, _rx) = service(Duration::ZERO);
    let first = svc
        .publish(publish(pidf("open", "a"), None, Some(600)))
        .await
        .unwrap();
    let etag = first.etag.unwrap();
    // Refresh: no body, new tag, old tag dead.
    let refreshed = svc
        .publish(publish(Bytes::new(), Some(&etag), Some(600)))
        .await
        .unwrap();
    let etag2 = refreshed.etag.unwrap();
    assert_ne!(etag, etag2);
    assert_eq!(
        svc.publish(publish(Bytes::new(), Some(&etag), Some(600)))
            .await,
        Err(PresenceError::UnknownETag)
    );
    // Modify, then remove.
    let modified = svc
        .publish(publish(pidf("closed", "b"), Some(&etag2), Some(600)))
        .await
        .unwrap();
    let removed = svc
        .publish(publish(Bytes::new(), modified.etag.as_ref(), Some(0)))
        .await
        .unwrap();
    assert_eq!(removed.etag, None);
    assert_eq!(svc.counts().await, (0, 0));
}

#[tokio::test]
async fn rejected_publications_change_nothing() {
    let (svc, _, _rx) = service(Duration::ZERO);
    let bad = svc
        .publish(publish(Bytes::from_static(b"<presence"), None, Some(600)))
        .await;
    assert!(matches!(bad, Err(PresenceError::BadRequest(_))));
    let mut other = publish(pidf("open", "x"), None, Some(600));
    other.presentity = "sip:carol@example.com".parse().unwrap();
    assert!(matches!(
        svc.publish(other).await,
        Err(PresenceError::BadRequest(_))
    ));
    let short = svc.publish(publish(pidf("open", "x"), None, Some(5))).await;
    assert_eq!(
        short,
        Err(PresenceError::IntervalTooBrief { min_expires: 60 })
    );
    assert_eq!(svc.counts().await, (0, 0));
}

/// Ten changes while the watcher answers slowly; returns every NOTIFY
/// until the one with the last state.
async fn ten_changes(
    svc: &PresenceService,
    rx: &mut mpsc::UnboundedReceiver<OutboundRequest>,
) -> Vec<OutboundRequest> {
    svc.subscribe(subscribe("c1")).await.unwrap();
    let first = next(rx).await;
    assert_eq!(first.cseq, 1);
    assert!(header(&first, "Subscription-State").starts_with("active;expires="));
    let mut etag = None;
    for i in 0..10 {
        let body = pidf("open", &format!("n{i}"));
        let ok = svc
            .publish(publish(body, etag.as_ref(), Some(600)))
            .await
            .unwrap();
        etag = ok.etag;
    }
    let mut seen = vec![first];
    while !String::from_utf8_lossy(&seen.last().unwrap().body).contains("n9") {
        seen.push(next(rx).await);
    }
    let cseqs: Vec<u32> = seen.iter().map(|r| r.cseq).collect();
    assert!(
        cseqs.windows(2).all(|w| w[1] == w[0] + 1),
        "CSeq in order: {cseqs:?}"
    );
    seen
}

#[tokio::test]
async fn every_change_is_notified_in_order_while_the_queue_has_room() {
    let (svc, _, mut rx) = service(Duration::from_millis(20));
    let seen = ten_changes(&svc, &mut rx).await;
    let bodies: Vec<String> = seen[1..]
        .iter()
        .map(|r| String::from_utf8_lossy(&r.body).into_owned())
        .collect();
    assert_eq!(bodies.len(), 10, "one NOTIFY per change");
    for (i, b) in bodies.iter().enumerate() {
        assert!(b.contains(&format!("n{i}")), "change {i} out of order: {b}");
    }
}

#[tokio::test]
async fn a_watcher_far_behind_gets_changes_folded() {
    // Each NOTIFY takes 200 ms to be answered and only two changes may
    // wait: the rest fold into the last queued one, which carries the
    // newest state.
    let (svc, _, mut rx) = service_with(
        Duration::from_millis(200),
        PresenceConfig {
            notify_queue_max: 2,
            ..PresenceConfig::default()
        },
    );
    let seen = ten_changes(&svc, &mut rx).await;
    assert!(
        seen.len() <= 4,
        "changes folded, got {} NOTIFYs",
        seen.len()
    );
}

#[tokio::test]
async fn a_481_ends_the_subscription() {
    let (svc, recorder, mut rx) = service(Duration::ZERO);
    *recorder.status.lock().unwrap() = 481;
    svc.subscribe(subscribe("c2")).await.unwrap();
    next(&mut rx).await;
    // The subscription goes away once its NOTIFY failed.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while svc.counts().await.1 != 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscription still held"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    svc.publish(publish(pidf("open", "later"), None, Some(600)))
        .await
        .unwrap();
    assert!(
        tokio::time::timeout(Duration::from_millis(300), rx.recv())
            .await
            .is_err(),
        "no NOTIFY after 481"
    );
}

#[tokio::test]
async fn refresh_of_unknown_dialog_is_481() {
    let (svc, _, _rx) = service(Duration::ZERO);
    let mut req = subscribe("c3");
    req.dialog.local_tag = Some("nope".into());
    assert_eq!(
        svc.subscribe(req).await,
        Err(PresenceError::NoSuchSubscription)
    );
}

/// An in-dialog SUBSCRIBE of `first`'s dialog (as the edge reads it: the
/// presentity from its To) with `local_tag`.
fn in_dialog(first: &SubscribeRequest, local_tag: &str, expires: u32) -> SubscribeRequest {
    let mut req = first.clone();
    req.presentity = first.dialog.local_uri.parse().unwrap();
    req.dialog.local_tag = Some(local_tag.into());
    req.dialog.remote_cseq += 1;
    req.expires = Some(expires);
    req
}

#[tokio::test]
async fn refreshes_find_their_subscription_by_tag_and_by_alias() {
    let (svc, _, mut rx) = service(Duration::ZERO);
    // The usual dialog: its local tag names its id, its To the presentity.
    let plain = subscribe("c5");
    let tag = svc.subscribe(plain.clone()).await.unwrap().local_tag;
    assert_eq!(store::id_of_local_tag(&tag).map(|_| tag.len()), Some(16));
    next(&mut rx).await;
    // A dialog whose Request-URI named the presentity under an alias: its
    // in-dialog requests name the To instead, so the dialog index finds it.
    let mut aliased = subscribe("c6");
    aliased.dialog.local_uri = "<sip:alias@example.com>".into();
    let alias_tag = svc.subscribe(aliased.clone()).await.unwrap().local_tag;
    next(&mut rx).await;

    for (first, tag) in [(&plain, &tag), (&aliased, &alias_tag)] {
        let ok = svc.subscribe(in_dialog(first, tag, 300)).await.unwrap();
        assert_eq!((&ok.local_tag, ok.expires), (tag, 300));
        let notify = next(&mut rx).await;
        assert_eq!(notify.call_id, first.dialog.call_id);
        assert!(
            notify.from.ends_with(&format!(";tag={tag}")),
            "{}",
            notify.from
        );
    }
    // A tag naming one dialog's id does not open another dialog.
    let mut forged = in_dialog(&aliased, &tag, 300);
    forged.presentity = plain.presentity.clone();
    assert_eq!(
        svc.subscribe(forged).await,
        Err(PresenceError::NoSuchSubscription)
    );
    // Unsubscribing by alias ends that subscription only.
    svc.subscribe(in_dialog(&aliased, &alias_tag, 0))
        .await
        .unwrap();
    assert_eq!(svc.counts().await.1, 1);
    assert_eq!(
        svc.subscribe(in_dialog(&aliased, &alias_tag, 300)).await,
        Err(PresenceError::NoSuchSubscription)
    );
    svc.subscribe(in_dialog(&plain, &tag, 300)).await.unwrap();
}

#[tokio::test]
async fn state_and_cseq_survive_a_restart_through_the_store() {
    let shared: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
    let (recorder, mut rx) = answering_200();
    let before = PresenceService::new(shared.clone(), recorder.clone(), PresenceConfig::default());
    before.subscribe(subscribe("c4")).await.unwrap();
    assert_eq!(next(&mut rx).await.cseq, 1);
    let published = before
        .publish(publish(pidf("open", "before"), None, Some(600)))
        .await
        .unwrap();
    assert_eq!(next(&mut rx).await.cseq, 2);

    // A new process over the same store: the publication and the
    // subscription come back, and the next NOTIFY continues the CSeq.
    let after = PresenceService::new(shared, recorder, PresenceConfig::default());
    assert_eq!(after.restore(None).await.unwrap(), 1);
    assert_eq!(after.counts().await, (1, 1));
    let modified = after
        .publish(publish(
            pidf("closed", "after"),
            published.etag.as_ref(),
            Some(600),
        ))
        .await
        .unwrap();
    assert!(
        modified.etag.is_some(),
        "the stored entity tag is still valid"
    );
    let notify = next(&mut rx).await;
    // Past every CSeq used before the restart (they are reserved in blocks).
    assert!(notify.cseq > 2, "CSeq {} after the restart", notify.cseq);
    let body = String::from_utf8_lossy(&notify.body);
    assert!(body.contains("after"), "{body} {:?}", notify.headers);
}

#[tokio::test]
async fn the_authenticated_identity_must_be_the_publisher_and_the_watcher() {
    let (svc, _, mut rx) = service(Duration::ZERO);
    let bob: sip::Aor = "sip:bob@example.com".parse().unwrap();
    let alice: sip::Aor = "sip:alice@example.com".parse().unwrap();

    // Bob, authenticated, publishing for Alice: refused, nothing stored.
    let mut forged = publish(pidf("open", "forged"), None, Some(600));
    forged.authenticated = Some(bob.clone());
    assert!(matches!(
        svc.publish(forged).await,
        Err(PresenceError::Forbidden(_))
    ));
    let mut own = publish(pidf("open", "mine"), None, Some(600));
    own.authenticated = Some(alice.clone());
    assert!(svc.publish(own).await.is_ok());

    // Alice, authenticated, subscribing with Bob as the watcher: refused.
    let mut as_bob = subscribe("c-auth");
    as_bob.authenticated = Some(alice);
    assert!(matches!(
        svc.subscribe(as_bob).await,
        Err(PresenceError::Forbidden(_))
    ));
    let mut own = subscribe("c-auth-2");
    own.authenticated = Some(bob);
    svc.subscribe(own).await.unwrap();
    let first = next(&mut rx).await;
    let body = String::from_utf8_lossy(&first.body).to_string();
    assert!(body.contains("mine") && !body.contains("forged"), "{body}");
}

#[tokio::test]
async fn a_watcher_holds_at_most_its_quota_of_subscriptions() {
    let config = PresenceConfig {
        max_subscriptions_per_watcher: 2,
        ..PresenceConfig::default()
    };
    let (svc, _, _rx) = service_with(Duration::ZERO, config);
    let to = |presentity: &str, call_id: &str| {
        let mut r = subscribe(call_id);
        r.presentity = presentity.parse().unwrap();
        r.dialog.local_uri = format!("<{presentity}>");
        r
    };
    let first = svc
        .subscribe(to("sip:alice@example.com", "c1"))
        .await
        .unwrap();
    svc.subscribe(to("sip:carol@example.com", "c2"))
        .await
        .unwrap();
    assert!(matches!(
        svc.subscribe(to("sip:dave@example.com", "c3")).await,
        Err(PresenceError::Forbidden(_))
    ));
    // Another watcher has its own quota.
    let mut other = to("sip:dave@example.com", "c4");
    other.watcher = "sip:erin@example.com".parse().unwrap();
    svc.subscribe(other).await.unwrap();
    // A fetch (Expires: 0) keeps nothing and is not counted.
    let mut fetch = to("sip:dave@example.com", "c5");
    fetch.expires = Some(0);
    svc.subscribe(fetch).await.unwrap();
    // Ending one frees its place.
    let mut end = to("sip:alice@example.com", "c1");
    end.dialog.local_tag = Some(first.local_tag);
    end.dialog.remote_cseq = 2;
    end.expires = Some(0);
    svc.subscribe(end).await.unwrap();
    svc.subscribe(to("sip:dave@example.com", "c6"))
        .await
        .unwrap();
}

/// A publication that expired while no process held it (or whose delete
/// failed when it expired) is not shown again after a restart: it is
/// deleted from the store and watchers get the state without it.
#[tokio::test]
async fn a_publication_expired_in_the_store_is_dropped_on_restore() {
    let shared: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
    let alice: sip::Aor = "sip:alice@example.com".parse().unwrap();
    let stale = store::PublicationRecord {
        etag: "gone".into(),
        body: pidf("open", "stale").to_vec(),
        order: 1,
        expires_at: store::UnixTime(store::UnixTime::now().0 - 5),
        flow: None,
    };
    shared.save_publication(&alice, stale).await.unwrap();

    let (recorder, mut rx) = answering_200();
    let svc = PresenceService::new(shared.clone(), recorder, PresenceConfig::default());
    svc.restore(None).await.unwrap();
    assert_eq!(svc.counts().await, (0, 0));
    assert_eq!(
        shared.presence_state(&alice).await.unwrap(),
        (vec![], vec![])
    );

    svc.subscribe(subscribe("c9")).await.unwrap();
    let body = String::from_utf8_lossy(&next(&mut rx).await.body).into_owned();
    assert!(!body.contains("stale") && body.contains("closed"), "{body}");
}

#[tokio::test]
async fn releasing_a_slot_forgets_its_presentities_but_not_their_stored_state() {
    let shared: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
    let (recorder, mut rx) = answering_200();
    let old = PresenceService::new(shared.clone(), recorder.clone(), PresenceConfig::default());
    old.subscribe(subscribe("c9")).await.unwrap();
    next(&mut rx).await;
    old.publish(publish(pidf("open", "kept"), None, Some(600)))
        .await
        .unwrap();
    next(&mut rx).await;
    assert_eq!(old.held(), (1, 1));

    // Another slot: nothing happens.
    let alice: sip::Aor = "sip:alice@example.com".parse().unwrap();
    let slot = store::slot_of(&alice);
    assert_eq!(old.release(&[slot.wrapping_add(1) % store::SLOTS]).await, 0);
    assert_eq!(old.held(), (1, 1));

    // Alice's slot moves away: no timers, no state here, no NOTIFY.
    assert_eq!(old.release(&[slot]).await, 1);
    assert_eq!(old.held(), (0, 0));
    assert_eq!(old.counts().await, (0, 0));
    old.expire(store::UnixTime(u64::MAX / 2)).await;
    assert!(
        rx.try_recv().is_err(),
        "a released subscription sends nothing"
    );

    // The new owner finds everything in the store.
    let new = PresenceService::new(shared, recorder, PresenceConfig::default());
    assert_eq!(new.restore(Some(&[slot])).await.unwrap(), 1);
    assert_eq!(new.counts().await, (1, 1));
}

#[tokio::test]
async fn a_presentity_first_touched_by_a_request_is_loaded_from_the_store() {
    // Another writer (a shard still on an older list) published Alice
    // after this shard loaded its slots: its first request for her loads
    // her from the store instead of starting from nothing.
    let shared: Arc<dyn store::Store> = Arc::new(store::MemoryStore::new());
    let (recorder, mut rx) = answering_200();
    let other = PresenceService::new(shared.clone(), recorder.clone(), PresenceConfig::default());
    let this = PresenceService::new(shared, recorder, PresenceConfig::default());
    assert_eq!(this.restore(None).await.unwrap(), 0);
    let ok = other
        .publish(publish(pidf("open", "elsewhere"), None, Some(600)))
        .await
        .unwrap();
    let etag = ok.etag.unwrap();

    // The refresh of the other writer's entity tag works here.
    let refreshed = this
        .publish(publish(Bytes::new(), Some(&etag), Some(600)))
        .await;
    let refreshed = refreshed.expect("the entity tag written elsewhere is known");
    assert_eq!(this.counts().await, (1, 0));
    // And a watcher here sees what was published there.
    this.subscribe(subscribe("first-touch")).await.unwrap();
    let notify = next(&mut rx).await;
    assert!(
        String::from_utf8_lossy(&notify.body).contains("elsewhere"),
        "{:?}",
        notify.body
    );
    assert_ne!(refreshed.etag, Some(etag));
}
