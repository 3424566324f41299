//! The cluster scenario on a three-master Redis Cluster (issue 4, DESIGN.md
//! §3): keys are hash-tagged by AOR so the same code runs on one Redis and
//! on Redis Cluster (`--redis redis+cluster://host:port,...`). PUBLISH
//! through edge A notifies a watcher on edge B; MESSAGE crosses edges,
//! online and offline; and presence shards killed and started again load
//! their presentities from the per-slot index spread over the masters.

use anyhow::{ensure, Result};
use sip::Method;
use testkit::presence::{etag, pidf_tuple, PRESENCE};
use testkit::{secs, Redis, RedisKind, TestCluster, UdpUa};

fn cluster() -> Result<TestCluster> {
    let cluster = TestCluster::start(2, 1, 2, RedisKind::Cluster(3))?;
    let Redis::Cluster(redis) = cluster.redis() else {
        anyhow::bail!("not on a Redis Cluster");
    };
    ensure!(
        redis.nodes.len() == 3 && cluster.redis().url().starts_with("redis+cluster://"),
        "three masters, given as {}",
        cluster.redis().url()
    );
    Ok(cluster)
}

#[test]
fn publish_through_one_edge_notifies_a_watcher_on_the_other() -> Result<()> {
    let mut cluster = cluster()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        first.is_offline()?,
        "nothing published yet: {}",
        first.body_text()
    );
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("on redis cluster")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH via A: {} {}", r.status, r.reason);
    let tag = etag(&r)?;
    let n = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        n.body_text().contains("on redis cluster"),
        "the watcher on edge B: {}",
        n.body_text()
    );
    let r = alice.publish_modify(
        &tag,
        &pidf_tuple(&alice.aor(), "phone", "closed", Some("modified")),
        600,
    )?;
    ensure!(r.status == 200, "modify: {} {}", r.status, r.reason);
    let n = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        n.body_text().contains("modified"),
        "after the modify: {}",
        n.body_text()
    );
    cluster.check_healthy()?;
    Ok(())
}

#[test]
fn message_between_users_on_different_edges() -> Result<()> {
    let mut cluster = cluster()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let r = bob.register(3600)?;
    ensure!(r.status == 200, "REGISTER: {} {}", r.status, r.reason);

    let msg = alice.message_request(&bob.aor(), "text/plain", "across the cluster");
    alice.send(&msg)?;
    let delivered = bob.recv_request(&Method::Message, secs(10))?;
    ensure!(
        &delivered.body[..] == b"across the cluster",
        "body: {:?}",
        String::from_utf8_lossy(&delivered.body)
    );
    bob.respond(&delivered, 200)?;
    let answer = alice.recv_response(&msg, secs(10))?;
    ensure!(
        answer.status == 200,
        "MESSAGE: {} {}",
        answer.status,
        answer.reason
    );

    // Offline: kept in the Redis Cluster until carol registers.
    let mut carol = UdpUa::bind("carol", cluster.edge(1))?;
    let stored = alice.message_request(&carol.aor(), "text/plain", "kept in redis cluster");
    let r = alice.transact(&stored)?;
    ensure!(
        r.status == 202,
        "MESSAGE to offline carol: {} {}",
        r.status,
        r.reason
    );
    ensure!(carol.register(3600)?.status == 200);
    let later = carol.recv_request(&Method::Message, secs(10))?;
    ensure!(
        &later.body[..] == b"kept in redis cluster",
        "offline body: {:?}",
        String::from_utf8_lossy(&later.body)
    );
    carol.respond(&later, 200)?;
    cluster.check_healthy()?;
    Ok(())
}

#[test]
fn killed_presence_shards_come_back_with_their_state() -> Result<()> {
    let mut cluster = cluster()?;
    // Several presentities, so both shards and all three masters hold some.
    let mut publishers = Vec::new();
    let mut watchers = Vec::new();
    for i in 0..6 {
        let mut p = UdpUa::bind(&format!("user{i}"), cluster.edge(0))?;
        let r = p.publish(&pidf_tuple(&p.aor(), "phone", "open", Some("before")), 600)?;
        ensure!(
            r.status == 200,
            "PUBLISH {}: {} {}",
            p.aor(),
            r.status,
            r.reason
        );
        let tag = etag(&r)?;
        let mut w = UdpUa::bind(&format!("watcher{i}"), cluster.edge(1))?;
        let (dialog, _) = w.watch(&p.aor(), PRESENCE, 600, secs(10))?;
        publishers.push((p, tag));
        watchers.push((w, dialog));
    }

    for i in 0..2 {
        cluster.kill_presence(i)?;
    }
    for i in 0..2 {
        cluster.start_presence(i)?;
    }

    for ((p, tag), (w, dialog)) in publishers.iter_mut().zip(watchers.iter_mut()) {
        let aor = p.aor();
        let r = p.publish_modify(
            tag,
            &pidf_tuple(&aor, "phone", "closed", Some("after")),
            600,
        )?;
        ensure!(
            r.status == 200,
            "{aor}: modify with the tag acknowledged before the restart: {} {}",
            r.status,
            r.reason
        );
        let n = w.recv_notify(dialog, secs(10))?;
        ensure!(
            n.body_text().contains("after"),
            "{aor}'s watcher after the restart: {}",
            n.body_text()
        );
    }
    cluster.check_healthy()?;
    Ok(())
}
