//! An edge whose presence shard list is stale (issue 4): the shard it asks
//! refuses as not the owner, the edge reads DNS again at once and asks
//! the owner it then computes, and the client gets 200, not 503. An edge
//! with a given list cannot refresh it: its client gets the refusal as
//! 503 with Retry-After.

use anyhow::{ensure, Context, Result};
use herald_tests::{
    log_has_line, presence_owner, users_where, wait_for_log, wait_for_presence_list,
};
use sip::HeaderName;
use testkit::presence::{etag, pidf_tuple};
use testkit::{secs, ClusterSpec, Herald, RedisKind, TestCluster, UdpUa};

#[test]
fn a_stale_edge_is_refused_refreshes_and_retries_the_new_owner() -> Result<()> {
    // Shards read DNS every second; the edge only at start (in effect),
    // and when a shard refuses.
    let mut cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 1, RedisKind::Standalone).presence_from_dns(1, 3600),
    )?;
    let moved = users_where("stale-moving", 2, |aor| {
        presence_owner(aor, 3).is_ok_and(|o| o == 2)
    })?;
    let mut alice = UdpUa::bind(&moved[0], cluster.edge(0))?;
    let aor = alice.aor();
    let r = alice.publish(&pidf_tuple(&aor, "phone", "open", Some("v1")), 600)?;
    ensure!(r.status == 200, "PUBLISH {aor}: {} {}", r.status, r.reason);
    let first_etag = etag(&r)?;

    // The third shard comes and DNS announces it; the shards follow, the
    // edge does not look.
    cluster.add_presence_shard()?;
    cluster.announce_presence_shards(3)?;
    for i in 0..2 {
        let p = cluster.presence(i).context("shard running")?;
        wait_for_presence_list(p, 3, secs(15), &format!("presence shard {i}"))?;
    }
    let edge = cluster.edge_process(0).context("edge running")?;
    ensure!(
        !log_has_line(edge, &["presence shard list changed", "shards=3"])?,
        "the edge read the new list by itself; the test needs it stale"
    );
    let old_owner = presence_owner(&aor, 2)?;

    // Alice's refresh goes to her old shard, which refuses; the edge
    // refreshes and asks shard 2, which loaded her publication.
    let r = alice.publish_refresh(&first_etag, 600)?;
    ensure!(
        r.status == 200,
        "through a stale edge, {aor}'s refresh got {} {} (old owner {old_owner})",
        r.status,
        r.reason
    );
    let edge = cluster.edge_process(0).context("edge running")?;
    let refused_by = format!("shard={old_owner}");
    wait_for_log(edge, &["refused as not the owner", &refused_by, "shards=3"]).with_context(
        || {
            format!(
                "the edge hearing shard {old_owner} refuse:\n{}",
                edge.output_tail()
            )
        },
    )?;
    wait_for_log(edge, &["presence shard list changed", "shards=3"]).with_context(|| {
        format!(
            "the edge refreshing its list on the refusal:\n{}",
            edge.output_tail()
        )
    })?;
    // Now current: a new presentity of shard 2 goes there straight.
    let mut bob = UdpUa::bind(&moved[1], cluster.edge(0))?;
    let bob_aor = bob.aor();
    let r = bob.publish(&pidf_tuple(&bob_aor, "phone", "open", None), 600)?;
    ensure!(
        r.status == 200,
        "PUBLISH {bob_aor}: {} {}",
        r.status,
        r.reason
    );

    // An edge with a given 2-shard list: the refusal reaches the client.
    let list: Vec<String> = cluster
        .presence_list()
        .split(',')
        .take(2)
        .map(str::to_owned)
        .collect();
    let stale = Herald::start(&[
        "edge",
        "--grpc-listen",
        "127.0.0.1:0",
        "--presence-shards",
        &list.join(","),
        "--messaging-shards",
        &cluster.messaging_list(),
    ])?;
    let mut carol = UdpUa::bind(&moved[1], stale.udp)?;
    let r = carol.publish(&pidf_tuple(&bob_aor, "desk", "open", None), 600)?;
    ensure!(
        r.status == 503 && r.headers.get(&HeaderName::RetryAfter).is_some(),
        "a stale static edge got {} {} for {bob_aor}, not 503 with Retry-After",
        r.status,
        r.reason
    );
    wait_for_log(&stale, &["refused as not the owner"]).with_context(|| {
        format!(
            "the static edge's 503 being a not-owner refusal:\n{}",
            stale.output_tail()
        )
    })?;
    cluster.check_healthy()?;
    Ok(())
}
