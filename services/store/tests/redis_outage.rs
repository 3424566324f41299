//! Redis going away and coming back: calls fail fast with `Unavailable`
//! (no hang, no panic) and work again once Redis is back, without
//! reconnecting by hand.

use std::time::{Duration, Instant};

use sip::Aor;
use store::{PublicationRecord, RedisConfig, RedisStore, RedisTarget, Store, StoreError, UnixTime};
use testkit::RedisServer;

const TIMEOUT: Duration = Duration::from_millis(800);
/// What a failing call may take beyond the configured bound (scheduling
/// on a loaded 2-core machine).
const SLACK: Duration = Duration::from_millis(700);

fn publication(etag: &str) -> PublicationRecord {
    PublicationRecord {
        etag: etag.into(),
        body: b"<presence/>".to_vec(),
        order: 1,
        expires_at: UnixTime(500),
        flow: None,
    }
}

async fn connect(server: &RedisServer) -> RedisStore {
    let config = RedisConfig {
        timeout: TIMEOUT,
        connect_timeout: Duration::from_millis(300),
    };
    RedisStore::connect_with(RedisTarget::Standalone(server.url()), config)
        .await
        .unwrap()
}

/// Each of a few calls fails with `Unavailable` within the bound.
async fn calls_fail_fast(store: &RedisStore, aor: &Aor) {
    for i in 0..4 {
        let started = Instant::now();
        let result = store.presence_state(aor).await;
        let took = started.elapsed();
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "call {i}: {result:?}"
        );
        assert!(took <= TIMEOUT + SLACK, "call {i} took {took:?}");
        let started = Instant::now();
        let result = store.save_publication(aor, publication("x")).await;
        assert!(
            matches!(result, Err(StoreError::Unavailable(_))),
            "call {i}: {result:?}"
        );
        assert!(started.elapsed() <= TIMEOUT + SLACK);
    }
}

/// Polls until a write and a read go through, for at most 15 s.
async fn comes_back(store: &RedisStore, aor: &Aor, etag: &str) {
    let deadline = Instant::now() + Duration::from_secs(15);
    loop {
        match store.save_publication(aor, publication(etag)).await {
            Ok(()) => break,
            Err(StoreError::Unavailable(why)) => {
                assert!(
                    Instant::now() < deadline,
                    "store still unavailable 15 s after Redis came back: {why}"
                );
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(other) => panic!("unexpected {other:?}"),
        }
    }
    let (pubs, _) = store.presence_state(aor).await.unwrap();
    assert!(pubs.iter().any(|p| p.etag == etag), "{pubs:?}");
}

#[tokio::test]
async fn a_killed_redis_gives_unavailable_then_recovers_on_restart() {
    let mut server = RedisServer::start().unwrap();
    let store = connect(&server).await;
    let alice: Aor = "sip:alice@example.com".parse().unwrap();
    store
        .save_publication(&alice, publication("before"))
        .await
        .unwrap();

    server.kill();
    calls_fail_fast(&store, &alice).await;

    server.restart().unwrap();
    comes_back(&store, &alice, "after").await;
    // The restarted Redis kept nothing (no persistence): only the new write.
    let (pubs, _) = store.presence_state(&alice).await.unwrap();
    assert_eq!(pubs.len(), 1);
    assert_eq!(store.presentities().await.unwrap(), vec![alice]);
}

#[tokio::test]
async fn a_hung_redis_gives_unavailable_within_the_timeout() {
    let mut server = RedisServer::start().unwrap();
    let store = connect(&server).await;
    let bob: Aor = "sip:bob@example.com".parse().unwrap();
    store
        .save_publication(&bob, publication("before"))
        .await
        .unwrap();

    server.pause().unwrap();
    calls_fail_fast(&store, &bob).await;
    server.resume().unwrap();

    comes_back(&store, &bob, "after").await;
    let (pubs, _) = store.presence_state(&bob).await.unwrap();
    let etags: Vec<_> = pubs.iter().map(|p| p.etag.as_str()).collect();
    // Writes that timed out while Redis hung may still land once it goes
    // on (the caller was told Unavailable, not that they failed); the
    // acknowledged ones are there.
    assert!(
        etags.contains(&"before") && etags.contains(&"after"),
        "{etags:?}"
    );
}

#[tokio::test]
async fn connecting_to_nothing_is_unavailable_not_a_hang() {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let started = Instant::now();
    let config = RedisConfig {
        timeout: TIMEOUT,
        connect_timeout: Duration::from_millis(300),
    };
    let result = RedisStore::connect_with(
        RedisTarget::Standalone(format!("redis://127.0.0.1:{port}")),
        config,
    )
    .await;
    assert!(
        matches!(result, Err(StoreError::Unavailable(_))),
        "{result:?}"
    );
    assert!(started.elapsed() <= TIMEOUT + SLACK);
}
