//! Presence shards found in DNS (issue 4, DESIGN.md §3): shards and edges
//! read the shard list from the SRV records of a headless service, in
//! StatefulSet ordinal order, and follow it while running. Growing from 2
//! to 3 shards is starting the third and letting DNS announce it: no edge
//! or old shard restarts, requests for the moved presentities land on the
//! new shard, which loaded their state from Redis, and the old shards let
//! them go.

use anyhow::{ensure, Context, Result};
use herald_tests::{
    log_has_line, presence_owner, publish_and_watch, users_where, wait_for_log,
    wait_for_presence_list,
};
use sip::HeaderName;
use testkit::presence::etag;
use testkit::{secs, ClusterSpec, RedisKind, TestCluster};

#[test]
fn presence_shards_follow_dns_as_it_grows_from_two_to_three() -> Result<()> {
    // Shards and edges read DNS every second.
    let mut cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 2, RedisKind::Standalone).presence_from_dns(1, 1),
    )?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));
    // (Logs reach their files through a pump thread, a moment after the
    // process said ready: read them with a deadline.)
    for i in 0..2 {
        let p = cluster.presence(i).context("shard running")?;
        wait_for_log(p, &["presence shards found in DNS", "shards=2"])
            .with_context(|| format!("presence shard {i}:\n{}", p.output_tail()))?;
    }

    // Two presentities that move to the new shard 2 and one that stays on
    // each old shard; all published and watched through the 2-shard list.
    let owner_after = |aor: &str| presence_owner(aor, 3).unwrap_or(u32::MAX);
    let mut names = users_where("dnsmoving", 2, |aor| owner_after(aor) == 2)?;
    names.extend(users_where("dns-stays-0-", 1, |aor| owner_after(aor) == 0)?);
    names.extend(users_where("dns-stays-1-", 1, |aor| owner_after(aor) == 1)?);
    let mut all = publish_and_watch(&names, edge_a, edge_b, "dnswatcher", (2, 3))?;

    // Grow: shard 2 starts (counting itself as the third before DNS lists
    // it, so it loads the slots it will own), then DNS announces it.
    let new = cluster.add_presence_shard()?;
    ensure!(new == 2, "the new shard is number {new}");
    let p2 = cluster.presence(2).context("shard 2 running")?;
    wait_for_log(p2, &["presence state loaded", "shard=2", "presentities=2"]).with_context(
        || {
            format!(
                "shard 2 loading the two moved presentities:\n{}",
                p2.output_tail()
            )
        },
    )?;
    cluster.announce_presence_shards(3)?;
    for i in 0..2 {
        let p = cluster.presence(i).context("shard running")?;
        wait_for_presence_list(p, 3, secs(15), &format!("presence shard {i}"))?;
        let e = cluster.edge_process(i).context("edge running")?;
        wait_for_presence_list(e, 3, secs(15), &format!("edge {i}"))?;
    }
    // The old owners let the moved presentities go (two of them, from
    // shards 0 and 1 together).
    let released = |i: usize| -> Result<usize> {
        let p = cluster.presence(i).context("shard running")?;
        wait_for_log(p, &["slots moved to other shards, let go"])?;
        Ok((0..=2)
            .find(|n| log_has_line(p, &["let go", &format!("presentities={n}")]).unwrap_or(false))
            .unwrap_or(usize::MAX))
    };
    let (from_0, from_1) = (released(0)?, released(1)?);
    ensure!(
        from_0 + from_1 == 2,
        "the old shards let {from_0} and {from_1} presentities go, not the two that moved"
    );

    // Requests land on the owners under three shards; the new owner has
    // the entity tags and the watchers.
    for p in &mut all {
        p.refresh_modify_and_watch("after DNS grew")?;
    }

    // Requests for the moved presentities really go to shard 2: with it
    // down they are refused (503, Retry-After), the others are not.
    cluster.kill_presence(2)?;
    for p in &mut all {
        let aor = p.publisher.aor();
        let r = p.publisher.publish_refresh(&p.etag, 600)?;
        if p.owner_after == 2 {
            ensure!(
                r.status == 503 && r.headers.get(&HeaderName::RetryAfter).is_some(),
                "{aor} belongs to shard 2, which is down, yet its PUBLISH got {} {}",
                r.status,
                r.reason
            );
        } else {
            ensure!(
                r.status == 200,
                "{aor} belongs to shard {}, yet with shard 2 down it got {} {}",
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
            p.publisher.aor(),
            r.status,
            r.reason
        );
    }
    cluster.check_healthy()?;
    Ok(())
}
