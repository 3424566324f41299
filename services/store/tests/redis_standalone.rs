//! The Redis store against a private standalone `redis-server`.

use redis::AsyncCommands;
use sip::Aor;
use store::{Binding, FlowToken, MessageId, RedisStore, Store, StoredMessage, UnixTime};
use testkit::RedisServer;

fn aor(s: &str) -> Aor {
    s.parse().unwrap()
}

async fn raw(server: &RedisServer) -> redis::aio::MultiplexedConnection {
    redis::Client::open(server.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap()
}

#[tokio::test]
async fn standalone_redis_meets_the_contract() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    assert!(!store.is_cluster());
    store::conformance::run_all(&store).await;
}

/// Two shards on one Redis: the one on the newer list fences the other off.
#[tokio::test]
async fn a_stale_owner_is_fenced_off() {
    let server = RedisServer::start().unwrap();
    let old = RedisStore::connect(&server.url()).await.unwrap();
    let new = RedisStore::connect(&server.url()).await.unwrap();
    store::conformance::fencing(&old, &new, "standalone").await;
    // Through the traced wrapper the roles use, the same.
    let traced = |s: &RedisStore| store::Traced::new(std::sync::Arc::new(s.clone()));
    store::conformance::fencing(&traced(&old), &traced(&new), "traced").await;

    // An emptied presentity keeps its epoch a while (a stale owner may
    // still try to write it), not for ever.
    let mut redis = raw(&server).await;
    let ttl: i64 = redis
        .ttl("pres:{sip:fenced-standalone@example.com}:epoch")
        .await
        .unwrap();
    assert!((3500..=3600).contains(&ttl), "epoch TTL {ttl}");
}

#[tokio::test]
async fn keys_expire_with_their_latest_record() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut redis = raw(&server).await;
    let now = UnixTime::now();

    let alice = aor("sip:alice@example.com");
    let binding = |contact: &str, expires_at: UnixTime| Binding {
        contact: contact.into(),
        expires_at,
        q: Some(500),
        call_id: "c".into(),
        cseq: 1,
        instance: Some("<urn:uuid:1>".into()),
        reg_id: Some(1),
        flow: FlowToken("tcp/1".into()),
    };
    store
        .replace_bindings(
            &alice,
            0,
            vec![
                binding("sip:a@h1", now.plus_secs(100)),
                binding("sip:a@h2", now.plus_secs(300)),
            ],
        )
        .await
        .unwrap();
    let ttl: i64 = redis.ttl("reg:{sip:alice@example.com}").await.unwrap();
    assert!((290..=300).contains(&ttl), "bindings key TTL {ttl}");
    let read = store.bindings(&alice, now).await.unwrap();
    assert_eq!(read.bindings.len(), 2);
    assert_eq!(read.bindings[0].instance.as_deref(), Some("<urn:uuid:1>"));

    // Versions never repeat, even across a removal: a reader from before
    // the removal cannot write over the set created after it.
    store
        .replace_bindings(&alice, read.version, vec![])
        .await
        .unwrap();
    let exists: bool = redis.exists("reg:{sip:alice@example.com}").await.unwrap();
    assert!(!exists, "an empty binding set leaves no key");
    store
        .replace_bindings(&alice, 0, vec![binding("sip:a@h3", now.plus_secs(60))])
        .await
        .unwrap();
    let again = store.bindings(&alice, now).await.unwrap();
    assert!(again.version > read.version);

    // Offline messages: all three queue keys expire with the latest one.
    let bob = aor("sip:bob@example.com");
    let message = |body: &str, expires_at: UnixTime| StoredMessage {
        id: MessageId(0),
        received_at: now,
        expires_at,
        from: "<sip:alice@example.com>;tag=1".into(),
        to: "<sip:bob@example.com>".into(),
        content_type: Some("text/plain".into()),
        headers: vec![("Subject".into(), "hi".into())],
        body: body.as_bytes().to_vec(),
    };
    store
        .enqueue_message(&bob, message("one", now.plus_secs(200)), 10)
        .await
        .unwrap();
    store
        .enqueue_message(&bob, message("two", now.plus_secs(50)), 10)
        .await
        .unwrap();
    for key in [
        "msgq:{sip:bob@example.com}",
        "msgexp:{sip:bob@example.com}",
        "msgid:{sip:bob@example.com}",
    ] {
        let ttl: i64 = redis.ttl(key).await.unwrap();
        assert!((190..=200).contains(&ttl), "{key} TTL {ttl}");
    }
    let queued = store.queued_messages(&bob, now).await.unwrap();
    assert_eq!(queued.len(), 2);
    assert_eq!(queued[0].headers, vec![("Subject".into(), "hi".into())]);
    for m in &queued {
        store.remove_message(&bob, m.id).await.unwrap();
    }
    let left: i64 = redis
        .exists(&[
            "msgq:{sip:bob@example.com}",
            "msgexp:{sip:bob@example.com}",
            "msgid:{sip:bob@example.com}",
        ])
        .await
        .unwrap();
    assert_eq!(left, 0, "an emptied queue leaves no key");
}

#[tokio::test]
async fn records_already_past_by_the_server_clock_are_kept_for_a_while() {
    // Callers decide expiry with their own `now` (tests use virtual time):
    // a key whose records are past by Redis's clock is not dropped at once.
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut redis = raw(&server).await;
    let carol = aor("sip:carol@example.com");
    let binding = Binding {
        contact: "sip:c@h".into(),
        expires_at: UnixTime(200),
        q: None,
        call_id: "c".into(),
        cseq: 1,
        instance: None,
        reg_id: None,
        flow: FlowToken("udp/1".into()),
    };
    store
        .replace_bindings(&carol, 0, vec![binding])
        .await
        .unwrap();
    let ttl: i64 = redis.ttl("reg:{sip:carol@example.com}").await.unwrap();
    assert!((3500..=3600).contains(&ttl), "TTL {ttl}");
    assert_eq!(
        store
            .bindings(&carol, UnixTime(100))
            .await
            .unwrap()
            .bindings
            .len(),
        1
    );
}

#[tokio::test]
async fn the_slot_index_follows_presence_state_in_the_same_script() {
    let server = RedisServer::start().unwrap();
    let store = RedisStore::connect(&server.url()).await.unwrap();
    let mut redis = raw(&server).await;
    let alice = aor("sip:alice@example.com");
    let index = format!("pres:slot:{{{}}}", store::slot_of(&alice));
    assert_eq!(index, "pres:slot:{2720}");
    store
        .save_publication(
            &alice,
            store::PublicationRecord {
                etag: "e".into(),
                body: vec![0xff, 0xfe],
                order: 3,
                expires_at: UnixTime(10),
                flow: None,
            },
        )
        .await
        .unwrap();
    let members: Vec<String> = redis.smembers(&index).await.unwrap();
    assert_eq!(members, vec!["sip:alice@example.com".to_string()]);
    let (pubs, _) = store.presence_state(&alice).await.unwrap();
    assert_eq!(pubs[0].body, vec![0xff, 0xfe], "binary bodies survive");
    store.delete_publication(&alice, "e").await.unwrap();
    let members: Vec<String> = redis.smembers(&index).await.unwrap();
    assert!(members.is_empty());
    // Nothing else is left behind.
    let keys: Vec<String> = redis.keys("*").await.unwrap();
    assert!(keys.is_empty(), "left over: {keys:?}");
}
