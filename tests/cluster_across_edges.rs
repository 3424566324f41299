//! The cluster (DESIGN.md §2-4) with real processes: two edges, two
//! presence shards, one messaging shard and a real redis-server, talking
//! gRPC. A PUBLISH through edge A reaches a watcher subscribed through edge
//! B; a MESSAGE from a user on edge A reaches a user registered on edge B;
//! and a presence shard killed with SIGKILL comes back with every
//! acknowledged publication and subscription.

use anyhow::{ensure, Result};
use sip::{Message, Method};
use testkit::presence::{etag, pidf_tuple, PRESENCE};
use testkit::{secs, RedisKind, TestCluster, UdpUa};

/// Two presence shards, one messaging shard and two edges on one
/// standalone Redis.
fn cluster() -> Result<TestCluster> {
    TestCluster::start(2, 1, 2, RedisKind::Standalone)
}

#[test]
fn publish_through_one_edge_notifies_a_watcher_on_the_other() -> Result<()> {
    let cluster = cluster()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;

    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        first.is_offline()?,
        "nothing published yet: {}",
        first.body_text()
    );

    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("in the cluster")),
        600,
    )?;
    ensure!(
        r.status == 200,
        "PUBLISH via edge A: {} {}",
        r.status,
        r.reason
    );
    let notify = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        notify.body_text().contains("in the cluster"),
        "the watcher on edge B sees the new state: {}",
        notify.body_text()
    );
    Ok(())
}

#[test]
fn message_between_users_on_different_edges() -> Result<()> {
    let cluster = cluster()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    assert_eq!(bob.register(3600)?.status, 200);

    let msg = alice.message_request(&bob.aor(), "text/plain", "across the cluster");
    alice.send(&msg)?;
    let delivered = bob.recv_request(&Method::Message, secs(10))?;
    ensure!(&delivered.body[..] == b"across the cluster");
    bob.respond(&delivered, 200)?;
    assert_eq!(alice.recv_response(&msg, secs(10))?.status, 200);

    // Offline: carol is not registered; the message waits in Redis and is
    // delivered when she registers through the other edge.
    let mut carol = UdpUa::bind("carol", cluster.edge(1))?;
    let stored = alice.message_request(&carol.aor(), "text/plain", "kept in redis");
    assert_eq!(alice.transact(&stored)?.status, 202);
    assert_eq!(carol.register(3600)?.status, 200);
    let later = carol.recv_request(&Method::Message, secs(10))?;
    ensure!(&later.body[..] == b"kept in redis");
    carol.respond(&later, 200)?;
    Ok(())
}

#[test]
fn a_killed_presence_shard_comes_back_with_its_state() -> Result<()> {
    let mut cluster = cluster()?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("before")),
        600,
    )?;
    ensure!(r.status == 200);
    let tag = etag(&r)?;
    bob.recv_notify(&mut dialog, secs(10))?;

    // SIGKILL both presence shards (whichever owns alice) and start them again.
    for i in 0..2 {
        cluster.kill_presence(i)?;
    }
    for i in 0..2 {
        cluster.start_presence(i)?;
    }

    // The acknowledged publication is still there: its entity tag works,
    // and the subscription still gets NOTIFYs with the next CSeq.
    let r = alice.publish_modify(
        &tag,
        &pidf_tuple(&alice.aor(), "phone", "closed", Some("after")),
        600,
    )?;
    ensure!(
        r.status == 200,
        "modify with the old tag after the restart: {} {}",
        r.status,
        r.reason
    );
    let notify = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        notify.body_text().contains("after"),
        "NOTIFYs resume after the restart: {}",
        notify.body_text()
    );
    Ok(())
}

/// The first NOTIFY reaches the subscriber's edge on its own gRPC call and
/// could leave the edge before the SUBSCRIBE's 200. RFC 6665 lets a
/// subscriber take it anyway, but SIPp scenarios and simple UAs drop a
/// NOTIFY that comes first, so the edge holds it until the answer has gone.
#[test]
fn the_first_notify_never_overtakes_the_answer_to_the_subscribe() -> Result<()> {
    let cluster = cluster()?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    for i in 0..40 {
        let presentity = format!("sip:order{i}@example.com");
        let req = bob.subscribe_request(&presentity, PRESENCE, Some(600));
        bob.send(&req)?;
        let first = bob.recv(secs(10))?;
        ensure!(
            matches!(&first, Message::Response(r) if (200..300).contains(&r.status)),
            "SUBSCRIBE {i}: the first message back was not its 2xx: {first:?}"
        );
        let notify = bob.recv_request(&Method::Notify, secs(10))?;
        bob.respond(&notify, 200)?;
    }
    Ok(())
}
