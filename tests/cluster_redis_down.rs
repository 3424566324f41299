//! Redis unreachable (issue 4): acknowledged means written to Redis, so
//! while Redis is gone (killed, or hung) a PUBLISH, SUBSCRIBE, REGISTER or
//! MESSAGE through an edge is answered 503 with Retry-After, and nothing
//! panics or exits; once Redis is back, requests succeed again without
//! restarting any Herald process.

use anyhow::{ensure, Context, Result};
use herald_tests::presence_owner;
use sip::{HeaderName, Method, Response};
use testkit::presence::{etag, pidf_tuple, RequestExt, PIDF, PRESENCE};
use testkit::{eventually, secs, ClusterSpec, RedisKind, TestCluster, UdpUa};

/// How long a refused request may take: the store gives up on Redis
/// after its own timeout (2 s), well inside this.
const REFUSAL: u64 = 10;

fn assert_unavailable(what: &str, r: &Response) -> Result<()> {
    ensure!(
        r.status == 503,
        "{what} with Redis down: got {} {}, want 503",
        r.status,
        r.reason
    );
    let retry = r
        .headers
        .get(&HeaderName::RetryAfter)
        .with_context(|| format!("{what}: 503 without Retry-After"))?;
    let secs: u32 = retry
        .split(|c: char| c == ';' || c == '(' || c.is_whitespace())
        .next()
        .unwrap_or("")
        .parse()
        .with_context(|| format!("{what}: Retry-After {retry:?} is not delta-seconds"))?;
    ensure!(secs > 0, "{what}: Retry-After {secs}");
    Ok(())
}

/// Every request kind an edge sends to a shard, while Redis is
/// unreachable: each gets 503 with Retry-After.
fn everything_refused(alice: &mut UdpUa, bob: &mut UdpUa, tag: &str) -> Result<()> {
    let req = alice
        .publish_request(Some(600))
        .with_header(HeaderName::SipIfMatch, tag.to_string())
        .with_body(
            PIDF,
            pidf_tuple(&alice.aor(), "phone", "open", Some("while down")),
        );
    assert_unavailable("PUBLISH", &alice.transact_within(&req, secs(REFUSAL))?)?;
    let req = bob.register_request(Some(3600));
    assert_unavailable("REGISTER", &bob.transact_within(&req, secs(REFUSAL))?)?;
    let req = bob.subscribe_request(&alice.aor(), PRESENCE, Some(600));
    assert_unavailable("SUBSCRIBE", &bob.transact_within(&req, secs(REFUSAL))?)?;
    let req = alice.message_request(&bob.aor(), "text/plain", "while down");
    assert_unavailable("MESSAGE", &alice.transact_within(&req, secs(REFUSAL))?)?;
    Ok(())
}

#[test]
fn redis_killed_gives_503_with_retry_after_then_service_resumes() -> Result<()> {
    let mut cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone)?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "phone", "open", Some("up")), 600)?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    let tag = etag(&r)?;
    ensure!(bob.register(3600)?.status == 200);

    cluster.standalone_redis()?.kill();
    everything_refused(&mut alice, &mut bob, &tag)?;
    cluster.check_healthy()?;

    // Redis comes back on its port, empty (nothing was persisted): new
    // state is accepted again, by the same processes.
    cluster.standalone_redis()?.restart()?;
    eventually(secs(20), "REGISTER to succeed again", || {
        let r = bob.register(3600)?;
        Ok((r.status == 200).then_some(()))
    })?;
    let r = eventually(secs(20), "PUBLISH to succeed again", || {
        let r = alice.publish(
            &pidf_tuple(&alice.aor(), "phone", "open", Some("back")),
            600,
        )?;
        Ok((r.status == 200).then_some(r))
    })?;
    etag(&r)?;
    let (_, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        first.body_text().contains("back"),
        "bob's NOTIFY after Redis came back: {}",
        first.body_text()
    );
    let msg = alice.message_request(&bob.aor(), "text/plain", "redis is back");
    alice.send(&msg)?;
    let got = bob.recv_request(&Method::Message, secs(10))?;
    bob.respond(&got, 200)?;
    let answer = alice.recv_response(&msg, secs(10))?;
    ensure!(
        answer.status == 200,
        "MESSAGE after Redis came back: {} {}",
        answer.status,
        answer.reason
    );
    cluster.check_healthy()?;
    Ok(())
}

#[test]
fn redis_hung_gives_503_with_retry_after_then_service_resumes_with_its_state() -> Result<()> {
    let mut cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone)?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "phone", "open", Some("up")), 600)?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    let tag = etag(&r)?;
    let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;

    // A Redis that accepts and never answers.
    cluster.standalone_redis()?.pause()?;
    // Carol's initial PUBLISH, not alice's: a refused request may still be
    // applied when Redis wakes up (it was sent), and alice's tag must stay
    // the acknowledged one.
    let mut carol = UdpUa::bind("carol", cluster.edge(0))?;
    let req = carol
        .publish_request(Some(600))
        .with_body(PIDF, pidf_tuple(&carol.aor(), "phone", "open", None));
    assert_unavailable("PUBLISH", &carol.transact_within(&req, secs(REFUSAL))?)?;
    let mut dave = UdpUa::bind("dave", cluster.edge(1))?;
    let req = dave.register_request(Some(3600));
    assert_unavailable("REGISTER", &dave.transact_within(&req, secs(REFUSAL))?)?;
    cluster.check_healthy()?;

    cluster.standalone_redis()?.resume()?;
    eventually(secs(20), "REGISTER to succeed again", || {
        let r = dave.register(3600)?;
        Ok((r.status == 200).then_some(()))
    })?;
    // Alice's publication and bob's subscription were kept.
    let r = eventually(secs(20), "alice's PUBLISH to succeed again", || {
        let r = alice.publish_modify(
            &tag,
            &pidf_tuple(&alice.aor(), "phone", "closed", Some("after the pause")),
            600,
        )?;
        ensure!(
            r.status == 200 || r.status == 503,
            "alice's PUBLISH with her acknowledged tag after Redis woke up: {} {}",
            r.status,
            r.reason
        );
        Ok((r.status == 200).then_some(r))
    })?;
    etag(&r)?;
    let n = bob.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        n.body_text().contains("after the pause"),
        "bob's NOTIFY after Redis woke up: {}",
        n.body_text()
    );
    cluster.check_healthy()?;
    Ok(())
}

/// Redis refuses writes for a while (a master without its required
/// replicas: `min-replicas-to-write`) and a publication expires meanwhile.
/// Its NOTIFY may go out, but the CSeq it used must not be given out again
/// after the shard restarts: NOTIFY CSeq numbers are persisted with the
/// subscription and never go backwards across a restart (issue 4), so a
/// NOTIFY whose counter could not be stored must not leave (or the shard
/// must not reuse its number).
#[test]
fn a_notify_sent_while_redis_refused_writes_is_not_repeated_after_a_restart() -> Result<()> {
    const SHORT: u32 = 3;
    let mut cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 2, RedisKind::Standalone)
            .presence_args(&["--publish-min-expires", "1"]),
    )?;
    let mut alice = UdpUa::bind("alice", cluster.edge(0))?;
    let mut bob = UdpUa::bind("bob", cluster.edge(1))?;
    let owner = presence_owner(&alice.aor(), 2)? as usize;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("short")),
        SHORT,
    )?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        first.body_text().contains("short"),
        "first NOTIFY: {}",
        first.body_text()
    );

    let refuse =
        cluster
            .standalone_redis()?
            .cli(&["CONFIG", "SET", "min-replicas-to-write", "1"])?;
    ensure!(refuse.trim() == "OK", "CONFIG SET: {refuse}");
    // Writes are refused: a PUBLISH gets 503 with Retry-After.
    let mut carol = UdpUa::bind("carol", cluster.edge(0))?;
    let req = carol
        .publish_request(Some(600))
        .with_body(PIDF, pidf_tuple(&carol.aor(), "phone", "open", None));
    assert_unavailable(
        "PUBLISH while Redis refuses writes",
        &carol.transact_within(&req, secs(REFUSAL))?,
    )?;
    // Alice's publication expires meanwhile; whatever NOTIFY bob gets for
    // it, he answers it.
    let expired = bob.try_recv_notify_from(&mut dialog, 200, secs(u64::from(SHORT) + 10))?;
    let allow =
        cluster
            .standalone_redis()?
            .cli(&["CONFIG", "SET", "min-replicas-to-write", "0"])?;
    ensure!(allow.trim() == "OK", "CONFIG SET: {allow}");

    // Writes work again; the owner restarts and loads what Redis has.
    cluster.kill_presence(owner)?;
    cluster.start_presence(owner)?;
    let r = eventually(secs(20), "PUBLISH to succeed again", || {
        let r = alice.publish(
            &pidf_tuple(&alice.aor(), "phone", "open", Some("later")),
            600,
        )?;
        Ok((r.status == 200).then_some(r))
    })?;
    etag(&r)?;
    // Every NOTIFY from here on has a CSeq above the last one, up to the
    // one with "later".
    let during = expired
        .as_ref()
        .map(|(n, _)| format!("CSeq {} {:?}: {}", n.cseq, n.state, n.body_text()))
        .unwrap_or_else(|| "none".into());
    loop {
        let last = dialog.last_notify_cseq.unwrap_or(0);
        dialog.last_notify_cseq = None;
        let n = bob
            .recv_notify(&mut dialog, secs(10))
            .context("a NOTIFY after the restart")?;
        ensure!(
            n.cseq > last,
            "after Redis took writes again and the shard restarted, bob got NOTIFY CSeq {} \
             ({:?}: {}) after CSeq {last}: a CSeq given out while Redis refused writes was \
             reused. The NOTIFY sent while Redis refused writes: {during}",
            n.cseq,
            n.state,
            n.body_text()
        );
        if n.body_text().contains("later") {
            break;
        }
    }
    cluster.check_healthy()?;
    Ok(())
}
