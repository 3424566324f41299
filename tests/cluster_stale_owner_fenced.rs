//! Fencing of a stale presence owner (DESIGN.md §3, decision 17). Shards
//! and the edge read DNS only at start (in effect): when a third shard
//! joins, the old owner of a moved presentity still believes it owns it
//! and the edge still sends it there. The new shard took the presentity
//! over in Redis with a higher epoch, so the old owner's write is refused
//! (fenced), nothing of it lands, and the edge retries with the owner it
//! computes after reading DNS again: the client gets 200 from the new
//! owner, whose watcher sees the change, and the entity tag it got keeps
//! working. No update is lost or split between two owners.

use anyhow::{ensure, Context, Result};
use herald_tests::{log_has_line, presence_owner, users_where, wait_for_log};
use testkit::presence::{etag, pidf_tuple, PRESENCE};
use testkit::{secs, ClusterSpec, RedisKind, TestCluster, UdpUa};

#[test]
fn a_stale_owner_is_fenced_off_and_the_edge_retries_the_new_owner() -> Result<()> {
    let mut cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 1, RedisKind::Standalone).presence_from_dns(3600, 3600),
    )?;
    let name = users_where("fenced-moving", 1, |aor| {
        presence_owner(aor, 3).is_ok_and(|o| o == 2)
    })?
    .remove(0);
    let mut alice = UdpUa::bind(&name, cluster.edge(0))?;
    let aor = alice.aor();
    let old_owner = presence_owner(&aor, 2)?;
    let r = alice.publish(&pidf_tuple(&aor, "phone", "open", Some("v1")), 600)?;
    ensure!(r.status == 200, "PUBLISH {aor}: {} {}", r.status, r.reason);
    let first_etag = etag(&r)?;
    let mut watcher = UdpUa::bind("fenced-watcher", cluster.edge(0))?;
    let (mut dialog, first) = watcher.watch(&aor, PRESENCE, 600, secs(10))?;
    ensure!(
        first.body_text().contains("v1"),
        "{aor}'s first NOTIFY: {}",
        first.body_text()
    );

    // Shard 2 starts, counting itself as the third: it takes a new epoch,
    // claims the slots it will own and loads Alice. DNS then lists it, but
    // neither the old shards nor the edge read DNS by themselves.
    cluster.add_presence_shard()?;
    let p2 = cluster.presence(2).context("shard 2 running")?;
    wait_for_log(p2, &["presence state loaded", "shard=2", "presentities=1"])
        .with_context(|| format!("shard 2 loading {aor}:\n{}", p2.output_tail()))?;
    cluster.announce_presence_shards(3)?;
    let old = cluster.presence(old_owner as usize).context("old owner")?;
    ensure!(
        !log_has_line(old, &["presence shard list changed", "shards=3"])?,
        "shard {old_owner} read the new list by itself; the test needs it stale"
    );

    // Alice changes her status through the stale edge, to her stale old
    // owner: its write is fenced off, the edge retries with shard 2.
    let r = alice.publish_modify(
        &first_etag,
        &pidf_tuple(&aor, "phone", "closed", Some("v2")),
        600,
    )?;
    ensure!(
        r.status == 200,
        "{aor}'s modify through a stale edge and a stale owner: {} {}",
        r.status,
        r.reason
    );
    let second_etag = etag(&r)?;
    let old = cluster.presence(old_owner as usize).context("old owner")?;
    wait_for_log(old, &["fenced off by a newer owner", &aor])
        .with_context(|| format!("shard {old_owner} being fenced:\n{}", old.output_tail()))?;
    let edge = cluster.edge_process(0).context("edge running")?;
    wait_for_log(
        edge,
        &["refused as not the owner", "fenced off by a newer owner"],
    )
    .with_context(|| format!("the edge hearing the fence:\n{}", edge.output_tail()))?;
    wait_for_log(edge, &["presence shard list changed", "shards=3"])
        .with_context(|| format!("the edge reading DNS again:\n{}", edge.output_tail()))?;

    // The new owner made the change: Alice's watcher (whose subscription
    // shard 2 loaded) sees it, and the entity tag it answered works.
    let n = watcher
        .recv_notify(&mut dialog, secs(10))
        .with_context(|| format!("{aor}'s watcher after the fenced write"))?;
    ensure!(
        n.body_text().contains("v2") && n.body_text().contains("closed"),
        "{aor}'s watcher sees the change: {}",
        n.body_text()
    );
    // The fence made the old owner read DNS at once and let Alice go.
    let old = cluster.presence(old_owner as usize).context("old owner")?;
    wait_for_log(old, &["presence shard list changed", "shards=3"])
        .with_context(|| format!("shard {old_owner} reading DNS:\n{}", old.output_tail()))?;
    wait_for_log(old, &["slots moved to other shards, let go"])
        .with_context(|| format!("shard {old_owner} letting go:\n{}", old.output_tail()))?;

    // With the old owner gone, what Alice holds is the new owner's: the
    // entity tag it answered works there (had the old owner written, only
    // it would know that tag).
    cluster.kill_presence(old_owner as usize)?;
    let r = alice.publish_refresh(&second_etag, 600)?;
    ensure!(
        r.status == 200,
        "{aor} refreshing the entity tag the new owner gave: {} {}",
        r.status,
        r.reason
    );
    // The entity tag from before the change is gone everywhere: the old
    // owner wrote nothing under another one.
    let r = alice.publish_refresh(&first_etag, 600)?;
    ensure!(
        r.status == 412,
        "{aor}'s replaced entity tag still works: {} {}",
        r.status,
        r.reason
    );
    Ok(())
}
