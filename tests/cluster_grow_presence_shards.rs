//! Growing the presence shards from 2 to 3 (issue 4, DESIGN.md §3): slots
//! move only to the new shard, which loads the presentities of the slots
//! it owns from Redis when it starts; the old shards and the edges are
//! restarted with the longer list. No publication or subscription is
//! lost, timers move with the slots, and requests for the moved
//! presentities land on the new shard.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use herald_tests::{presence_owner, publish_and_watch, users_where};
use sip::HeaderName;
use testkit::presence::{etag, pidf_tuple, PRESENCE};
use testkit::{secs, ClusterSpec, RedisKind, TestCluster, UdpUa};

/// Lifetime of the short-lived publication and subscription, seconds:
/// long enough for the growth to happen first.
const SHORT: u32 = 8;

/// One presentity of the test: its publisher (on edge 0), its current
/// entity tag, and a watcher (on edge 1) with its dialog.
#[test]
fn growing_presence_shards_from_two_to_three_loses_nothing() -> Result<()> {
    let mut cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 2, RedisKind::Standalone).presence_args(&[
            "--publish-min-expires",
            "1",
            "--subscribe-min-expires",
            "1",
        ]),
    )?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));

    // Three presentities whose slots move to the new shard 2, and one that
    // stays on each old shard.
    let owner_after = |aor: &str| presence_owner(aor, 3).unwrap_or(u32::MAX);
    let mut names = users_where("moving", 3, |aor| owner_after(aor) == 2)?;
    names.extend(users_where("stays-on-0-", 1, |aor| owner_after(aor) == 0)?);
    names.extend(users_where("stays-on-1-", 1, |aor| owner_after(aor) == 1)?);

    let mut all = publish_and_watch(&names, edge_a, edge_b, "watcher", (2, 3))?;

    // A moved presentity with a short-lived publication and a short-lived
    // watcher: the new owner must rebuild their timers from Redis.
    let short_name = users_where("short", 1, |aor| owner_after(aor) == 2)?.remove(0);
    let mut short = UdpUa::bind(&short_name, edge_a)?;
    let short_made = Instant::now();
    let r = short.publish(
        &pidf_tuple(&short.aor(), "desk", "open", Some("short")),
        SHORT,
    )?;
    ensure!(
        r.status == 200 && r.headers.expires()? == Some(SHORT),
        "short PUBLISH: {} {} (Expires {:?})",
        r.status,
        r.reason,
        r.headers.expires()
    );
    let mut short_watcher = UdpUa::bind("short-watcher", edge_b)?;
    let (mut short_dialog, _) = short_watcher.watch(&short.aor(), PRESENCE, 600, secs(10))?;
    let mut brief_watcher = UdpUa::bind("brief-watcher", edge_b)?;
    let (mut brief_dialog, _) = brief_watcher.watch(&short.aor(), PRESENCE, SHORT, secs(10))?;

    // Grow: the new shard with the 3-shard list, then the old shards and
    // the edges restarted with it.
    let new = cluster.add_presence_shard()?;
    ensure!(new == 2, "the new shard is number {new}");
    for i in 0..2 {
        cluster.restart_presence(i)?;
    }
    for i in 0..2 {
        cluster.restart_edge(i)?;
    }
    ensure!(
        short_made.elapsed() < secs(u64::from(SHORT) - 2),
        "growing took {:?}: too long to check that the new shard fires the expiries",
        short_made.elapsed()
    );

    // Nothing lost: each publication refreshes and changes with its entity
    // tag; each watcher gets the change (CSeq still increasing) and
    // refreshes its subscription.
    for p in &mut all {
        p.refresh_modify_and_watch("after growing")?;
        let aor = p.name();
        let r = p.watcher.refresh(&mut p.dialog, 600)?;
        ensure!(
            r.status == 200,
            "{aor}'s watcher refreshing after growing: {} {}",
            r.status,
            r.reason
        );
        let n = p.watcher.recv_notify(&mut p.dialog, secs(10))?;
        ensure!(
            n.body_text().contains("v2"),
            "{aor}'s watcher's NOTIFY after refreshing: {}",
            n.body_text()
        );
        // A new watcher gets the current state from the owner.
        let mut late = UdpUa::bind("late", edge_b)?;
        let fetched = late.fetch(&aor, PRESENCE, secs(10))?;
        ensure!(
            fetched.body_text().contains("v2"),
            "a fetch of {aor} after growing: {}",
            fetched.body_text()
        );
    }

    // The timers moved with the slots: the short publication ends (its
    // watcher sees the presentity offline) and the short subscription ends
    // with reason=timeout, sent by the new owner.
    let deadline = secs(u64::from(SHORT) + 15);
    loop {
        let n = short_watcher
            .recv_notify(&mut short_dialog, deadline)
            .context("the short publication of a moved presentity never expired")?;
        if n.is_offline()? {
            break;
        }
    }
    let ended = loop {
        let n = brief_watcher
            .recv_notify(&mut brief_dialog, deadline)
            .context("the short subscription to a moved presentity never expired")?;
        if n.is_terminated() {
            break n;
        }
    };
    ensure!(
        ended.reason() == Some("timeout"),
        "the short subscription ended with {:?}",
        ended.state
    );

    // Requests land on the new owner: with shard 2 down, the moved
    // presentities are refused (503 with Retry-After) and the others are
    // not; with it back, the moved ones work again.
    cluster.kill_presence(2)?;
    for p in &mut all {
        let aor = p.name();
        let r = p.publisher.publish_refresh(&p.etag, 600)?;
        if p.owner_after == 2 {
            ensure!(
                r.status == 503 && r.headers.get(&HeaderName::RetryAfter).is_some(),
                "{aor} belongs to shard 2, which is down, yet its PUBLISH got {} {} \
                 (someone else serves it)",
                r.status,
                r.reason
            );
        } else {
            ensure!(
                r.status == 200,
                "{aor} belongs to shard {}, yet with shard 2 down its PUBLISH got {} {}",
                p.owner_after,
                r.status,
                r.reason
            );
            p.etag = etag(&r)?;
        }
    }
    cluster.start_presence(2)?;
    for p in all.iter_mut().filter(|p| p.owner_after == 2) {
        let r = p.publisher.publish_refresh(&p.etag, 600)?;
        ensure!(
            r.status == 200,
            "{} after shard 2 came back: {} {}",
            p.name(),
            r.status,
            r.reason
        );
    }

    cluster.check_healthy()?;
    Ok(())
}
