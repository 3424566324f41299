//! An edge killed with SIGKILL (issue 4, DESIGN.md §2): edges hold nothing
//! durable, so UDP users keep working through another edge. A shard that
//! must reach a client whose edge is gone sends through any other edge in
//! its `--edges` list, from that edge's socket (a datagram needs no
//! connection); the client then refreshes through the edge it now uses.

use anyhow::{ensure, Result};
use sip::Method;
use testkit::presence::{etag, pidf_tuple, PRESENCE};
use testkit::{millis, secs, RedisKind, TcpUa, TestCluster, UdpUa};

#[test]
fn udp_users_keep_publishing_and_getting_notifies_through_the_other_edge() -> Result<()> {
    let mut cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone)?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));
    // Both users start on edge A.
    let mut alice = UdpUa::bind("alice", edge_a)?;
    let mut bob = UdpUa::bind("bob", edge_a)?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("before")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH via A: {} {}", r.status, r.reason);
    let mut tag = etag(&r)?;
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        first.body_text().contains("before"),
        "first NOTIFY: {}",
        first.body_text()
    );

    // Let edge A hand bob's 200 back to the shard before A dies: a NOTIFY
    // still in flight when its edge dies is the case of
    // `a_notify_in_flight_when_its_edge_dies_comes_again_with_a_higher_cseq`.
    // (Nothing a client can observe tells when the shard has the answer.)
    std::thread::sleep(millis(300));
    cluster.kill_edge(0)?;

    // Alice turns to edge B and goes on publishing; bob, whose flow was
    // on edge A, gets each NOTIFY from edge B's socket.
    alice.set_server(edge_b);
    for note in ["after A died", "and again"] {
        let r = alice.publish_modify(
            &tag,
            &pidf_tuple(&alice.aor(), "phone", "open", Some(note)),
            600,
        )?;
        ensure!(
            r.status == 200,
            "PUBLISH via B after A died ({note}): {} {}",
            r.status,
            r.reason
        );
        tag = etag(&r)?;
        let (notify, from) = bob.recv_notify_from(&mut dialog, 200, secs(10))?;
        ensure!(
            from == edge_b,
            "the NOTIFY for {note:?} came from {from}; edge A ({edge_a}) is dead, edge B is {edge_b}"
        );
        ensure!(
            notify.body_text().contains(note),
            "the NOTIFY through B shows {note:?}: {}",
            notify.body_text()
        );
    }

    // Bob refreshes through edge B: the subscription follows his new flow
    // and the refresh's NOTIFY comes from B.
    bob.set_server(edge_b);
    let r = bob.refresh(&mut dialog, 600)?;
    ensure!(
        r.status == 200,
        "bob's refresh via B: {} {}",
        r.status,
        r.reason
    );
    let (notify, from) = bob.recv_notify_from(&mut dialog, 200, secs(10))?;
    ensure!(
        from == edge_b,
        "the refresh's NOTIFY came from {from}, not edge B ({edge_b})"
    );
    ensure!(
        notify.body_text().contains("and again"),
        "the refresh's NOTIFY: {}",
        notify.body_text()
    );
    let r = alice.publish_modify(
        &tag,
        &pidf_tuple(&alice.aor(), "phone", "closed", Some("on B now")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH via B: {} {}", r.status, r.reason);
    let (notify, from) = bob.recv_notify_from(&mut dialog, 200, secs(10))?;
    ensure!(from == edge_b, "NOTIFY from {from}, not edge B ({edge_b})");
    ensure!(
        notify.body_text().contains("on B now"),
        "NOTIFY after the refresh: {}",
        notify.body_text()
    );

    cluster.check_healthy()?;
    Ok(())
}

/// A NOTIFY is out to bob through edge A, unanswered, when A dies. The
/// shard may send it again through edge B, but as a new request (a new
/// Via, so a new transaction): it must carry a CSeq above every earlier
/// one of the dialog (RFC 3261 §12.2.1.1), or bob cannot tell it from an
/// old or repeated NOTIFY (RFC 6665 clients reject a CSeq that does not
/// increase).
#[test]
fn a_notify_in_flight_when_its_edge_dies_comes_again_with_a_higher_cseq() -> Result<()> {
    let mut cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone)?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));
    let mut alice = UdpUa::bind("alice", edge_b)?;
    let mut bob = UdpUa::bind("bob", edge_a)?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("first")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    let tag = etag(&r)?;
    let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    // As above: the first NOTIFY's answer reaches the shard.
    std::thread::sleep(millis(300));

    let r = alice.publish_modify(
        &tag,
        &pidf_tuple(&alice.aor(), "phone", "open", Some("in flight")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    // Bob receives the NOTIFY through A and does not answer it yet.
    let held = bob.next_where(secs(10), "the NOTIFY through A", |r| {
        r.request()
            .is_some_and(|r| r.method == Method::Notify && dialog.owns(r))
    })?;
    ensure!(held.from == edge_a, "the NOTIFY came from {}", held.from);
    let held_cseq = held
        .request()
        .expect("matched a request")
        .headers
        .cseq()?
        .seq;

    cluster.kill_edge(0)?;

    // Whatever reaches bob now comes through B, and is a new request.
    let again = bob.next_where(secs(15), "a NOTIFY through B", |r| {
        r.request()
            .is_some_and(|r| r.method == Method::Notify && dialog.owns(r))
    })?;
    let req = again.request().cloned().expect("matched a request");
    bob.respond(&req, 200)?;
    ensure!(
        again.from == edge_b,
        "the NOTIFY came from {}, edge B is {edge_b}",
        again.from
    );
    let cseq = req.headers.cseq()?.seq;
    let branch = |r: &testkit::Received| -> Result<String> {
        Ok(r.message
            .headers()
            .top_via()?
            .branch()
            .unwrap_or_default()
            .to_string())
    };
    ensure!(
        cseq > held_cseq,
        "the NOTIFY through edge B reuses CSeq {cseq} of the NOTIFY still unanswered through \
         dead edge A (CSeq {held_cseq}), as a new transaction (branch {} through A, {} through \
         B): a new request in the dialog needs a higher CSeq (RFC 3261 §12.2.1.1)\n\
         --- through A:\n{}\n--- through B:\n{}",
        branch(&held)?,
        branch(&again)?,
        String::from_utf8_lossy(&held.raw),
        String::from_utf8_lossy(&again.raw)
    );
    ensure!(
        String::from_utf8_lossy(&req.body).contains("in flight"),
        "the NOTIFY through B: {}",
        String::from_utf8_lossy(&req.body)
    );
    dialog.last_notify_cseq = Some(cseq);

    // The subscription goes on through B.
    bob.set_server(edge_b);
    let r = bob.refresh(&mut dialog, 600)?;
    ensure!(r.status == 200, "refresh via B: {} {}", r.status, r.reason);
    bob.recv_notify(&mut dialog, secs(10))?;
    cluster.check_healthy()?;
    Ok(())
}

/// A TCP watcher's connection dies with its edge (DESIGN.md §2: connection
/// clients reconnect and refresh). A change meanwhile cannot reach it, but
/// the subscription waits for its refresh (issue 4: "a connection
/// subscriber's subscription waits for its refresh"): the refresh over a
/// new connection to the other edge is accepted and brings the current
/// state.
#[test]
fn a_tcp_watcher_whose_edge_died_refreshes_through_the_other_edge() -> Result<()> {
    let mut cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone)?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));
    let mut alice = UdpUa::bind("alice", edge_b)?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some("before")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);
    let tag = etag(&r)?;
    let mut bob = TcpUa::connect("bob", edge_a)?;
    let (mut dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    // As in the first test: the first NOTIFY's answer reaches the shard.
    std::thread::sleep(millis(300));

    cluster.kill_edge(0)?;
    bob.expect_closed(secs(10))?;
    // A change while bob has no connection: its NOTIFY has nowhere to go.
    let r = alice.publish_modify(
        &tag,
        &pidf_tuple(&alice.aor(), "phone", "closed", Some("while away")),
        600,
    )?;
    ensure!(r.status == 200, "PUBLISH: {} {}", r.status, r.reason);

    // Bob reconnects to edge B and refreshes his subscription.
    let mut bob_again = TcpUa::connect("bob", edge_b)?;
    let r = bob_again.refresh(&mut dialog, 600)?;
    ensure!(
        r.status == 200,
        "bob's refresh over a new connection to edge B, after edge A died and a NOTIFY could \
         not reach him: {} {} (the subscription should wait for its refresh)",
        r.status,
        r.reason
    );
    let n = bob_again.recv_notify(&mut dialog, secs(10))?;
    ensure!(
        n.is_active() && n.body_text().contains("while away"),
        "the NOTIFY after the refresh: {:?}\n{}",
        n.state,
        n.body_text()
    );
    cluster.check_healthy()?;
    Ok(())
}

#[test]
fn a_udp_user_registered_on_a_dead_edge_still_gets_messages() -> Result<()> {
    let mut cluster = TestCluster::start(2, 1, 2, RedisKind::Standalone)?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));
    let mut carol = UdpUa::bind("carol", edge_a)?;
    let r = carol.register(3600)?;
    ensure!(r.status == 200, "REGISTER via A: {} {}", r.status, r.reason);

    cluster.kill_edge(0)?;

    // Dave sends through edge B; the messaging shard reaches carol's flow
    // on the dead edge A through edge B.
    let mut dave = UdpUa::bind("dave", edge_b)?;
    let msg = dave.message_request(&carol.aor(), "text/plain", "your edge is gone");
    dave.send(&msg)?;
    let got = carol.next_where(secs(15), "the MESSAGE", |r| {
        r.request().is_some_and(|r| r.method == Method::Message)
    })?;
    ensure!(
        got.from == edge_b,
        "the MESSAGE came from {}; edge A ({edge_a}) is dead, edge B is {edge_b}",
        got.from
    );
    let delivered = got.request().cloned().expect("matched a request");
    ensure!(
        &delivered.body[..] == b"your edge is gone",
        "body: {:?}",
        String::from_utf8_lossy(&delivered.body)
    );
    carol.respond(&delivered, 200)?;
    let answer = dave.recv_response(&msg, secs(15))?;
    ensure!(
        answer.status == 200,
        "dave gets carol's 200 through B, got {} {}",
        answer.status,
        answer.reason
    );

    // Carol moves to edge B; her messages come from there too.
    carol.set_server(edge_b);
    let r = carol.register(3600)?;
    ensure!(r.status == 200, "REGISTER via B: {} {}", r.status, r.reason);
    let msg = dave.message_request(&carol.aor(), "text/plain", "on B");
    dave.send(&msg)?;
    let got = carol.next_where(secs(15), "the second MESSAGE", |r| {
        r.request().is_some_and(|r| r.method == Method::Message)
    })?;
    ensure!(got.from == edge_b, "MESSAGE from {}", got.from);
    let delivered = got.request().cloned().expect("matched a request");
    carol.respond(&delivered, 200)?;
    ensure!(dave.recv_response(&msg, secs(15))?.status == 200);

    cluster.check_healthy()?;
    Ok(())
}
