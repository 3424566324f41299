//! The Redis store against a private 3-master Redis Cluster.

use std::collections::HashSet;

use sip::Aor;
use store::{slot_of, PublicationRecord, RedisStore, Store, UnixTime};
use testkit::RedisCluster;

fn publication(etag: &str) -> PublicationRecord {
    PublicationRecord {
        etag: etag.into(),
        body: b"<presence/>".to_vec(),
        order: 1,
        expires_at: UnixTime(500),
        flow: None,
    }
}

/// One test function: starting a cluster costs seconds, so the checks
/// share it (each on its own AORs).
#[tokio::test]
async fn redis_cluster_meets_the_contract() {
    let cluster = RedisCluster::start(3).unwrap();
    let store = RedisStore::connect(&cluster.url()).await.unwrap();
    assert!(store.is_cluster());
    store::conformance::run_all(&store).await;

    // The comma-separated list of node URLs is the other accepted form.
    let again = RedisStore::connect(&cluster.urls().join(","))
        .await
        .unwrap();
    assert!(again.is_cluster());

    // Every key of one AOR hashes to one Redis Cluster slot.
    let alice: Aor = "sip:alice@example.com".parse().unwrap();
    store
        .save_publication(&alice, publication("a"))
        .await
        .unwrap();
    let mut slots = HashSet::new();
    for key in [
        "reg:{sip:alice@example.com}",
        "msgq:{sip:alice@example.com}",
        "msgexp:{sip:alice@example.com}",
        "msgid:{sip:alice@example.com}",
        "pres:{sip:alice@example.com}:pubs",
        "pres:{sip:alice@example.com}:subs",
        "pres:{sip:alice@example.com}:epoch",
    ] {
        slots.insert(cluster.cli(&["cluster", "keyslot", key]).unwrap());
    }
    assert_eq!(slots.len(), 1, "{slots:?}");
    assert_eq!(
        cluster
            .cli(&["hexists", "pres:{sip:alice@example.com}:pubs", "a"])
            .unwrap()
            .trim(),
        "1"
    );
    store.delete_publication(&alice, "a").await.unwrap();

    // Presentities spread over the nodes are all found through the slot
    // indexes, and a shard's share of the slots finds only its own.
    let aors: Vec<Aor> = (0..60)
        .map(|i| format!("sip:user{i}@example.com").parse().unwrap())
        .collect();
    for aor in &aors {
        store.save_publication(aor, publication("p")).await.unwrap();
    }
    let mut all = store.presentities().await.unwrap();
    all.sort();
    let mut expected = aors.clone();
    expected.sort();
    assert_eq!(all, expected);
    let mut nodes_with_index = 0;
    for node in &cluster.nodes {
        let keys = std::process::Command::new("redis-cli")
            .args([
                "-p",
                &node.port.to_string(),
                "--scan",
                "--pattern",
                "pres:slot:*",
            ])
            .output()
            .unwrap();
        if !keys.stdout.is_empty() {
            nodes_with_index += 1;
        }
    }
    assert!(
        nodes_with_index >= 2,
        "slot indexes on {nodes_with_index} node(s)"
    );
    let low: Vec<u16> = (0..2048).collect();
    let mut mine = store.presentities_in_slots(&low).await.unwrap();
    mine.sort();
    let expected_low: Vec<Aor> = expected
        .iter()
        .filter(|a| slot_of(a) < 2048)
        .cloned()
        .collect();
    assert!(!expected_low.is_empty() && expected_low.len() < aors.len());
    assert_eq!(mine, expected_low);
    for aor in &aors {
        store.delete_publication(aor, "p").await.unwrap();
    }
    assert!(store.presentities().await.unwrap().is_empty());

    // Fencing (last: a refused save may leave a stale index entry): a
    // second handle stands for a second shard.
    let other = RedisStore::connect(&cluster.url()).await.unwrap();
    store::conformance::fencing(&store, &other, "cluster").await;
}
