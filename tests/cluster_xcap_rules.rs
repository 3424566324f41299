//! XCAP in a cluster: `herald xcap` stores a pres-rules document in Redis
//! and tells the presence shard that owns the presentity over gRPC, which
//! approves the pending watcher at once (DESIGN.md §2: rule changes are
//! published to presence).

use anyhow::{ensure, Context, Result};
use testkit::presence::{pidf_tuple, PRESENCE};
use testkit::{secs, ClusterSpec, Herald, RedisKind, TestCluster, UdpUa};

#[test]
fn a_rule_put_over_xcap_reaches_the_owning_presence_shard() -> Result<()> {
    let cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 1, RedisKind::Standalone)
            .presence_args(&["--presence-policy", "confirm"]),
    )?;
    let redis = cluster.redis().url();
    let shards = cluster.presence_list();
    let xcap = Herald::start(&[
        "xcap",
        "--redis",
        &redis,
        "--xcap-listen",
        "127.0.0.1:0",
        "--presence-shards",
        &shards,
    ])?;
    let xcap = xcap.xcap.context("XCAP address")?;

    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(0))?;
    let (a, b) = (alice.aor(), bob.aor());
    let r = alice.publish(
        &pidf_tuple(&a, "phone", "open", Some("from the cluster")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH: {}", r.status);
    let (mut dialog, first) = bob.watch(&a, PRESENCE, 600, secs(10))?;
    ensure!(
        first.is_pending(),
        "confirm: pending first, {:?}",
        first.state
    );

    let rules = format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
<ruleset xmlns="urn:ietf:params:xml:ns:common-policy" xmlns:pr="urn:ietf:params:xml:ns:pres-rules">
<rule id="bob"><conditions><identity><one id="{b}"/></identity></conditions>
<actions><pr:sub-handling>allow</pr:sub-handling></actions>
<transformations><pr:provide-services><pr:all-services/></pr:provide-services><pr:provide-note>true</pr:provide-note></transformations></rule>
</ruleset>"#
    );
    let path = format!("/xcap-root/pres-rules/users/{a}/index");
    let reply = herald_tests::http(
        xcap,
        "PUT",
        &path,
        &[("Content-Type", "application/auth-policy+xml")],
        &rules,
    )?;
    ensure!(reply.status == 201, "PUT over XCAP: {}", reply.head);

    let active = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        active.is_active(),
        "approved by the rule: {:?}",
        active.state
    );
    ensure!(
        active.body_text().contains("from the cluster"),
        "{}",
        active.body_text()
    );
    Ok(())
}
