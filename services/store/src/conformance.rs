//! Behaviour every [`Store`] implementation must show. Each backend's
//! tests call [`run_all`] on a fresh instance, so the memory and Redis
//! stores are held to one contract.

use sip::Aor;

use crate::{
    slot_of, Binding, Credential, DocumentBase, FlowToken, MessageId, PublicationRecord, Store,
    StoreError, StoredDocument, StoredMessage, SubscriptionFields, SubscriptionRecord, UnixTime,
    SLOTS,
};

fn aor(s: &str) -> Aor {
    s.parse().expect("test AOR")
}

fn binding(contact: &str, expires_at: u64) -> Binding {
    Binding {
        contact: contact.to_string(),
        expires_at: UnixTime(expires_at),
        q: None,
        call_id: "c1".into(),
        cseq: 1,
        instance: None,
        reg_id: None,
        flow: FlowToken("udp:test".into()),
    }
}

fn message(body: &str, at: u64, expires_at: u64) -> StoredMessage {
    StoredMessage {
        id: MessageId(0),
        received_at: UnixTime(at),
        expires_at: UnixTime(expires_at),
        from: "<sip:a@x>;tag=1".into(),
        to: "<sip:b@x>".into(),
        content_type: Some("text/plain".into()),
        headers: vec![],
        body: body.as_bytes().to_vec(),
    }
}

/// Runs every check; panics with the first failure.
pub async fn run_all(store: &dyn Store) {
    bindings_replace_with_version(store).await;
    bindings_expire(store).await;
    queue_in_order_and_removal(store).await;
    queue_limit_and_expiry(store).await;
    presence_records(store).await;
    presentities_by_slot(store).await;
    credentials_per_realm(store).await;
    documents_compare_and_set(store).await;
}

fn credential(realm: &str, ha1: &str) -> Credential {
    Credential {
        realm: realm.into(),
        username: "cred".into(),
        ha1_md5: ha1.into(),
        ha1_sha256: format!("{ha1}{ha1}"),
    }
}

async fn credentials_per_realm(store: &dyn Store) {
    let a = aor("sip:cred@example.com");
    let b = aor("sip:cred2@example.com");
    assert!(store.credentials(&a).await.unwrap().is_empty());
    assert!(!store.delete_credentials(&a).await.unwrap());
    store
        .put_credential(&a, credential("r2", "bb"))
        .await
        .unwrap();
    store
        .put_credential(&a, credential("r1", "aa"))
        .await
        .unwrap();
    // A second put for a realm replaces that realm's credential only.
    store
        .put_credential(&a, credential("r1", "cc"))
        .await
        .unwrap();
    store
        .put_credential(&b, credential("r1", "dd"))
        .await
        .unwrap();
    assert_eq!(
        store.credentials(&a).await.unwrap(),
        vec![credential("r1", "cc"), credential("r2", "bb")]
    );
    let users = store.credential_users().await.unwrap();
    assert!(users.contains(&a) && users.contains(&b), "{users:?}");
    assert!(users.windows(2).all(|w| w[0] < w[1]), "sorted: {users:?}");
    assert!(store.delete_credentials(&a).await.unwrap());
    assert!(store.credentials(&a).await.unwrap().is_empty());
    assert!(!store.credential_users().await.unwrap().contains(&a));
    assert_eq!(store.credentials(&b).await.unwrap().len(), 1);
    assert!(store.delete_credentials(&b).await.unwrap());
}

/// The slot function is part of the cluster's contract (edges, shards and
/// stored indexes compute it): these numbers must never change.
pub fn slot_of_is_stable() {
    assert_eq!(SLOTS, 4096);
    assert_eq!(slot_of(&aor("sip:alice@example.com")), 2720);
    assert_eq!(slot_of(&aor("sip:bob@example.com")), 2387);
    assert_eq!(slot_of(&aor("sip:carol@example.org")), 1438);
    assert_eq!(slot_of(&aor("sip:example.com")), 3396);
    // It hashes the canonical AOR: equal AORs share a slot.
    assert_eq!(
        slot_of(&aor("sips:%61lice@EXAMPLE.com;transport=tcp")),
        2720
    );
}

async fn bindings_replace_with_version(store: &dyn Store) {
    let a = aor("sip:ver@example.com");
    let empty = store.bindings(&a, UnixTime(100)).await.unwrap();
    assert!(empty.bindings.is_empty());
    store
        .replace_bindings(&a, empty.version, vec![binding("sip:ver@1.2.3.4", 200)])
        .await
        .unwrap();
    // A writer still holding the old version must lose.
    let stale = store
        .replace_bindings(&a, empty.version, vec![binding("sip:other@1.2.3.4", 200)])
        .await;
    assert_eq!(stale, Err(StoreError::Conflict(a.clone())));
    let now = store.bindings(&a, UnixTime(100)).await.unwrap();
    assert_eq!(now.bindings.len(), 1);
    assert_eq!(now.bindings[0].contact, "sip:ver@1.2.3.4");
    // Removing all, then a stale writer from before the removal, loses too.
    store
        .replace_bindings(&a, now.version, vec![])
        .await
        .unwrap();
    let stale = store
        .replace_bindings(&a, now.version, vec![binding("sip:x@1.2.3.4", 200)])
        .await;
    assert_eq!(stale, Err(StoreError::Conflict(a.clone())));
}

async fn bindings_expire(store: &dyn Store) {
    let a = aor("sip:exp@example.com");
    let set = store.bindings(&a, UnixTime(100)).await.unwrap();
    store
        .replace_bindings(
            &a,
            set.version,
            vec![binding("sip:short@h", 150), binding("sip:long@h", 500)],
        )
        .await
        .unwrap();
    let later = store.bindings(&a, UnixTime(150)).await.unwrap();
    let contacts: Vec<_> = later.bindings.iter().map(|b| b.contact.as_str()).collect();
    assert_eq!(contacts, vec!["sip:long@h"]);
}

async fn queue_in_order_and_removal(store: &dyn Store) {
    let a = aor("sip:queue@example.com");
    for body in ["one", "two", "three"] {
        store
            .enqueue_message(&a, message(body, 100, 1000), 10)
            .await
            .unwrap();
    }
    let queued = store.queued_messages(&a, UnixTime(101)).await.unwrap();
    let bodies: Vec<_> = queued.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, vec![&b"one"[..], b"two", b"three"]);
    assert!(queued[0].id < queued[1].id && queued[1].id < queued[2].id);
    store.remove_message(&a, queued[0].id).await.unwrap();
    // Removing twice is harmless.
    store.remove_message(&a, queued[0].id).await.unwrap();
    let rest = store.queued_messages(&a, UnixTime(101)).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert_eq!(rest[0].body, b"two");
}

async fn queue_limit_and_expiry(store: &dyn Store) {
    let a = aor("sip:full@example.com");
    store
        .enqueue_message(&a, message("old", 100, 150), 2)
        .await
        .unwrap();
    store
        .enqueue_message(&a, message("keep", 100, 1000), 2)
        .await
        .unwrap();
    let full = store.enqueue_message(&a, message("no", 120, 1000), 2).await;
    assert_eq!(full, Err(StoreError::QueueFull(a.clone())));
    // Once "old" has expired it no longer takes a place.
    store
        .enqueue_message(&a, message("yes", 200, 1000), 2)
        .await
        .unwrap();
    let queued = store.queued_messages(&a, UnixTime(200)).await.unwrap();
    let bodies: Vec<_> = queued.iter().map(|m| m.body.as_slice()).collect();
    assert_eq!(bodies, vec![&b"keep"[..], b"yes"]);
}

async fn presence_records(store: &dyn Store) {
    let a = aor("sip:pres@example.com");
    let publication = PublicationRecord {
        etag: "e1".into(),
        body: b"<presence/>".to_vec(),
        order: 1,
        expires_at: UnixTime(500),
        flow: None,
    };
    store
        .save_publication(&a, publication.clone())
        .await
        .unwrap();
    let original = publication.clone();
    let subscription = SubscriptionRecord::try_from(SubscriptionFields {
        id: 7,
        package: "presence",
        event_id: None,
        watcher: "sip:w@example.com",
        watcher_display: Some("W"),
        call_id: "c",
        remote_tag: "r",
        local_tag: "l",
        remote_uri: "<sip:w@example.com>;tag=r",
        local_uri: "<sip:pres@example.com>",
        remote_target: "sip:w@127.0.0.1:5070",
        route_set: &["<sip:proxy;lr>".into()],
        flow: "udp/x",
        connection: false,
        created_at: UnixTime(100),
        expires_at: UnixTime(700),
        pending: false,
        last_event: "subscribe",
        notify_cseq: 1,
        winfo_version: 0,
        watched: &["pres-rules/users/sip:pres@example.com/index".into()],
    })
    .unwrap();
    store
        .save_subscription(&a, subscription.clone())
        .await
        .unwrap();
    store.save_notify_counters(&a, 7, 5, 2).await.unwrap();
    // Counters of a subscription that is not there change nothing.
    store.save_notify_counters(&a, 8, 9, 9).await.unwrap();
    assert_eq!(store.presentities().await.unwrap(), vec![a.clone()]);
    let (pubs, subs) = store.presence_state(&a).await.unwrap();
    assert_eq!(pubs, vec![publication]);
    assert_eq!(subs.len(), 1);
    assert_eq!((subs[0].notify_cseq, subs[0].winfo_version), (5, 2));
    assert!(subs[0].route_set().eq(subscription.route_set()));
    assert!(subs[0].watched().eq(subscription.watched()));
    // A modify: the new entity tag in, the old one out, one step.
    let modified = PublicationRecord {
        etag: "e2".into(),
        body: b"<presence><tuple/></presence>".to_vec(),
        ..original
    };
    store
        .replace_publication(&a, modified.clone(), "e1")
        .await
        .unwrap();
    let (pubs, _) = store.presence_state(&a).await.unwrap();
    assert_eq!(pubs, vec![modified]);
    store.delete_publication(&a, "e2").await.unwrap();
    store.delete_subscription(&a, 7).await.unwrap();
    store.delete_subscription(&a, 7).await.unwrap();
    assert_eq!(store.presence_state(&a).await.unwrap(), (vec![], vec![]));
    assert!(store.presentities().await.unwrap().is_empty());
}

fn publication(etag: &str) -> PublicationRecord {
    PublicationRecord {
        etag: etag.into(),
        body: b"<presence/>".to_vec(),
        order: 1,
        expires_at: UnixTime(500),
        flow: Some(FlowToken("tcp/1".into())),
    }
}

async fn presentities_by_slot(store: &dyn Store) {
    slot_of_is_stable();
    let alice = aor("sip:alice@example.com");
    let bob = aor("sip:bob@example.com");
    let carol = aor("sip:carol@example.org");
    let (slot_a, slot_b, slot_c) = (slot_of(&alice), slot_of(&bob), slot_of(&carol));
    store
        .save_publication(&alice, publication("a1"))
        .await
        .unwrap();
    store
        .save_publication(&bob, publication("b1"))
        .await
        .unwrap();
    store
        .save_publication(&bob, publication("b2"))
        .await
        .unwrap();

    let sorted = |mut v: Vec<Aor>| {
        v.sort();
        v
    };
    assert_eq!(
        store.presentities_in_slots(&[slot_a]).await.unwrap(),
        vec![alice.clone()]
    );
    assert_eq!(
        sorted(
            store
                .presentities_in_slots(&[slot_b, slot_a])
                .await
                .unwrap()
        ),
        sorted(vec![alice.clone(), bob.clone()])
    );
    // A slot nobody is in, and no slot at all.
    assert!(store
        .presentities_in_slots(&[slot_c])
        .await
        .unwrap()
        .is_empty());
    assert!(store.presentities_in_slots(&[]).await.unwrap().is_empty());
    assert_eq!(
        sorted(store.presentities().await.unwrap()),
        sorted(vec![alice.clone(), bob.clone()])
    );
    let everything: Vec<u16> = (0..SLOTS).collect();
    assert_eq!(
        sorted(store.presentities_in_slots(&everything).await.unwrap()),
        sorted(vec![alice.clone(), bob.clone()])
    );

    // Bob keeps his slot entry while one publication is left.
    store.delete_publication(&bob, "b1").await.unwrap();
    assert_eq!(
        store.presentities_in_slots(&[slot_b]).await.unwrap(),
        vec![bob.clone()]
    );
    store.delete_publication(&bob, "b2").await.unwrap();
    store.delete_publication(&alice, "a1").await.unwrap();
    assert!(store
        .presentities_in_slots(&[slot_a, slot_b])
        .await
        .unwrap()
        .is_empty());
    assert!(store.presentities().await.unwrap().is_empty());
}

async fn documents_compare_and_set(store: &dyn Store) {
    let a = aor("sip:doc@example.com");
    let path = "resource-lists/users/sip:doc@example.com/index";
    let doc = |etag: &str, content: &str| StoredDocument {
        etag: etag.into(),
        content: content.as_bytes().to_vec(),
    };
    assert_eq!(store.document(&a, path).await.unwrap(), None);
    // Replacing a document that is not there is a conflict.
    assert_eq!(
        store
            .put_document(&a, path, DocumentBase::Etag("x"), doc("e1", "<a/>"))
            .await,
        Err(StoreError::Conflict(a.clone()))
    );
    store
        .put_document(&a, path, DocumentBase::Absent, doc("e1", "<a/>"))
        .await
        .unwrap();
    assert_eq!(
        store.document(&a, path).await.unwrap(),
        Some(doc("e1", "<a/>"))
    );
    // Creating one that exists, or replacing from a stale tag, conflicts.
    assert!(store
        .put_document(&a, path, DocumentBase::Absent, doc("e2", "<b/>"))
        .await
        .is_err());
    assert!(store
        .put_document(&a, path, DocumentBase::Etag("old"), doc("e2", "<b/>"))
        .await
        .is_err());
    store
        .put_document(&a, path, DocumentBase::Etag("e1"), doc("e2", "<b/>"))
        .await
        .unwrap();
    // Documents of another path or user are apart.
    assert_eq!(store.document(&a, "other/doc").await.unwrap(), None);
    assert_eq!(
        store
            .document(&aor("sip:other@example.com"), path)
            .await
            .unwrap(),
        None
    );
    assert!(store.delete_document(&a, path, "e1").await.is_err());
    store.delete_document(&a, path, "e2").await.unwrap();
    assert_eq!(store.document(&a, path).await.unwrap(), None);
}

/// Fencing of stale presence owners (DESIGN.md §3), for stores that fence
/// ([`Store::take_epoch`] gives `Some`): `old` and `new` are two handles on
/// one backend standing for two shards; `tag` keeps each run's AORs apart.
/// Once `new` took an epoch after `old` and claimed or wrote a presentity,
/// every presence write `old` makes to it is refused with
/// [`StoreError::Fenced`] and changes nothing; after `old` takes a newer
/// epoch still (it saw the newer list), it is the one that writes.
pub async fn fencing(old: &dyn Store, new: &dyn Store, tag: &str) {
    let a = aor(&format!("sip:fenced-{tag}@example.com"));
    let b = aor(&format!("sip:fenced-first-write-{tag}@example.com"));
    let record = |etag: &str| PublicationRecord {
        etag: etag.into(),
        body: b"<presence/>".to_vec(),
        order: 1,
        expires_at: UnixTime(500),
        flow: None,
    };
    let old_epoch = old.take_epoch().await.unwrap().expect("a fencing store");
    old.save_publication(&a, record("e1")).await.unwrap();
    old.save_publication(&b, record("b1")).await.unwrap();
    let new_epoch = new.take_epoch().await.unwrap().expect("a fencing store");
    assert!(new_epoch > old_epoch, "{new_epoch} after {old_epoch}");

    // The new owner takes `a` over before loading it; `b` it first writes.
    new.claim_presentity(&a).await.unwrap();
    new.save_publication(&b, record("b2")).await.unwrap();
    let fenced = |who: &Aor| StoreError::Fenced {
        aor: who.clone(),
        epoch: old_epoch,
        owner_epoch: new_epoch,
    };
    let before = old.presence_state(&a).await.unwrap();
    assert_eq!(
        old.save_publication(&a, record("e2")).await,
        Err(fenced(&a))
    );
    assert_eq!(
        old.replace_publication(&a, record("e3"), "e1").await,
        Err(fenced(&a))
    );
    assert_eq!(old.delete_publication(&a, "e1").await, Err(fenced(&a)));
    assert_eq!(old.delete_subscription(&a, 7).await, Err(fenced(&a)));
    assert_eq!(old.save_notify_counters(&a, 7, 3, 1).await, Err(fenced(&a)));
    assert_eq!(old.claim_presentity(&a).await, Err(fenced(&a)));
    assert_eq!(old.presence_state(&a).await.unwrap(), before, "untouched");
    assert_eq!(old.delete_publication(&b, "b1").await, Err(fenced(&b)));
    let (pubs, _) = new.presence_state(&b).await.unwrap();
    let etags: Vec<&str> = pubs.iter().map(|p| p.etag.as_str()).collect();
    assert_eq!(etags, ["b1", "b2"]);

    // The new owner writes on; a presentity nobody claimed is anyone's.
    new.replace_publication(&a, record("e4"), "e1")
        .await
        .unwrap();
    let c = aor(&format!("sip:unclaimed-{tag}@example.com"));
    old.save_publication(&c, record("c1")).await.unwrap();
    old.delete_publication(&c, "c1").await.unwrap();

    // The old shard saw the newer list (a newer epoch): now `new` is stale.
    let newest = old.take_epoch().await.unwrap().unwrap();
    assert!(newest > new_epoch);
    old.delete_publication(&a, "e4").await.unwrap();
    assert_eq!(
        new.save_publication(&a, record("e5")).await,
        Err(StoreError::Fenced {
            aor: a.clone(),
            epoch: new_epoch,
            owner_epoch: newest,
        })
    );
    // (On a cluster the refused save may leave a stale index entry,
    // which `presentities_in_slots` allows.)
    assert_eq!(old.presence_state(&a).await.unwrap(), (vec![], vec![]));
    old.delete_publication(&b, "b1").await.unwrap();
    old.delete_publication(&b, "b2").await.unwrap();
}

/// Stores that do not fence say so, and write as before.
pub async fn no_fencing(store: &dyn Store) {
    assert_eq!(store.take_epoch().await, Ok(None));
    let a = aor("sip:unfenced@example.com");
    store.claim_presentity(&a).await.unwrap();
}
