//! A TCP connection that closes takes with it what lives on it: its
//! subscriptions end at once (their NOTIFYs have nowhere to go), which the
//! presentity's watcher info shows as terminated with event deactivated,
//! and, with the default --publication-on-close expire, the publications
//! made over it end too, so watchers see the state without them. With
//! --publication-on-close keep the publications stay until they expire.
//! A client that reconnects and refreshes over the new connection takes
//! its publication and subscription along.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use pidf::{BasicStatus, WatcherEvent, WatcherStatus};
use testkit::presence::{basic_by_tuple, etag, pidf_tuple, Notify, PRESENCE, PRESENCE_WINFO};
use testkit::{secs, Herald};

fn ok(r: &sip::Response, what: &str) -> Result<()> {
    ensure!(r.status == 200, "{what}: {} {}", r.status, r.reason);
    Ok(())
}

fn tuples(n: &Notify) -> Result<Vec<(String, Option<BasicStatus>)>> {
    Ok(basic_by_tuple(&n.pidf()?).into_iter().collect())
}

#[test]
fn closing_a_watchers_connection_ends_its_subscription_at_once() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.tcp_ua("bob")?;
    let mut carol = herald.udp_ua("carol")?;
    let (mut winfo, _) = alice.watch(&alice.aor(), PRESENCE_WINFO, 600, secs(5))?;

    let (_bob_dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    first.pidf().context("the first NOTIFY over TCP")?;
    let n = alice.recv_notify(&mut winfo, secs(5))?;
    let w = n.winfo()?.lists[0].watchers.clone();
    ensure!(
        w.len() == 1 && w[0].uri == bob.aor() && w[0].status == WatcherStatus::Active,
        "Bob arrives: {w:?}"
    );
    let (mut carol_dialog, _) = carol.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    alice.recv_notify(&mut winfo, secs(5))?;

    bob.close();
    let closed = Instant::now();
    // Bob's subscription had 600 s to run: seeing it end within 2 s
    // means the close ended it.
    let n = alice
        .recv_notify(&mut winfo, secs(2))
        .context("the watcher info must report the closed connection's subscription promptly")?;
    let info = n.winfo()?;
    let w = &info.lists[0].watchers;
    ensure!(
        w.len() == 1
            && w[0].uri == bob.aor()
            && w[0].status == WatcherStatus::Terminated
            && w[0].event == WatcherEvent::Deactivated,
        "Bob terminated with event deactivated (RFC 3857 §3.2.1), got:\n{}",
        n.body_text()
    );
    println!("subscription ended {:?} after the close", closed.elapsed());

    // Carol, on UDP, is not affected.
    ok(
        &alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?,
        "PUBLISH",
    )?;
    let n = carol.recv_notify(&mut carol_dialog, secs(5))?;
    ensure!(tuples(&n)? == [("t".to_string(), Some(BasicStatus::Open))]);
    alice
        .expect_nothing(QUIET)
        .context("no further watcher change")?;
    Ok(())
}

#[test]
fn closing_a_publishers_connection_withdraws_its_publication() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut phone = herald.tcp_ua("alice")?;
    let mut desk = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let alice = desk.aor();
    let (mut dialog, _) = bob.watch(&alice, PRESENCE, 600, secs(5))?;

    ok(
        &phone.publish(&pidf_tuple(&alice, "phone", "open", None), 600)?,
        "PUBLISH over TCP",
    )?;
    bob.recv_notify(&mut dialog, secs(5))?;
    ok(
        &desk.publish(&pidf_tuple(&alice, "desk", "open", None), 600)?,
        "PUBLISH over UDP",
    )?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        tuples(&n)?.len() == 2,
        "both tuples before the close:\n{}",
        n.body_text()
    );

    phone.close();
    let n = bob
        .recv_notify(&mut dialog, secs(2))
        .context("the TCP publication must be withdrawn when its connection closes")?;
    ensure!(
        tuples(&n)? == [("desk".to_string(), Some(BasicStatus::Open))],
        "only the UDP publication is left:\n{}",
        n.body_text()
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn the_only_publisher_closing_leaves_the_offline_document() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut phone = herald.tcp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let alice = phone.aor();
    ok(
        &phone.publish(&pidf_tuple(&alice, "phone", "open", None), 600)?,
        "PUBLISH over TCP",
    )?;
    let (mut dialog, first) = bob.watch(&alice, PRESENCE, 600, secs(5))?;
    ensure!(
        tuples(&first)? == [("phone".to_string(), Some(BasicStatus::Open))],
        "{}",
        first.body_text()
    );

    phone.close();
    let n = bob.recv_notify(&mut dialog, secs(2))?;
    ensure!(
        n.is_offline()?,
        "the watcher gets the offline document:\n{}",
        n.body_text()
    );
    Ok(())
}

#[test]
fn publication_on_close_keep_leaves_the_publication() -> Result<()> {
    let herald = Herald::start(&["--publication-on-close", "keep"])?;
    let mut phone = herald.tcp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let alice = phone.aor();
    ok(
        &phone.publish(&pidf_tuple(&alice, "phone", "open", None), 600)?,
        "PUBLISH over TCP",
    )?;
    let (_dialog, _) = bob.watch(&alice, PRESENCE, 600, secs(5))?;

    phone.close();
    bob.expect_nothing(QUIET)
        .context("with keep, a closed connection changes no state")?;
    let fetched = bob.fetch(&alice, PRESENCE, secs(5))?;
    ensure!(
        tuples(&fetched)? == [("phone".to_string(), Some(BasicStatus::Open))],
        "the publication outlives its connection:\n{}",
        fetched.body_text()
    );
    Ok(())
}

/// A client that reconnects (RFC 5626 style: a new connection, then a
/// refresh over it) moves its publication to the new connection: the
/// old one closing no longer withdraws it.
#[test]
fn publication_refreshed_over_a_new_connection_survives_the_old_one() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut old = herald.tcp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let alice = old.aor();
    let r = old.publish(&pidf_tuple(&alice, "phone", "open", None), 600)?;
    ok(&r, "PUBLISH over the first connection")?;
    let tag = etag(&r)?;
    let (mut dialog, _) = bob.watch(&alice, PRESENCE, 600, secs(5))?;

    let mut new = herald.tcp_ua("alice")?;
    ok(
        &new.publish_refresh(&tag, 600)?,
        "refresh over the new connection",
    )?;
    old.close();
    bob.expect_nothing(QUIET)
        .context("the refreshed publication lives on the new connection now")?;
    let fetched = bob.fetch(&alice, PRESENCE, secs(5))?;
    ensure!(
        tuples(&fetched)? == [("phone".to_string(), Some(BasicStatus::Open))],
        "{}",
        fetched.body_text()
    );

    new.close();
    let n = bob.recv_notify(&mut dialog, secs(2))?;
    ensure!(n.is_offline()?, "{}", n.body_text());
    Ok(())
}

/// The same for a subscription: refreshed over a new connection (with the
/// new connection's Contact, RFC 6665 §4.1.2.1 target refresh), its
/// NOTIFYs go over the new connection, and the old one closing does not
/// end it.
#[test]
fn subscription_refreshed_over_a_new_connection_follows_it() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut old = herald.tcp_ua("bob")?;
    let (mut dialog, _) = old.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    let mut new = herald.tcp_ua("bob")?;
    let refresh = new.subscribe_in_dialog_request(&mut dialog, 600);
    let r = new.transact(&refresh)?;
    ok(&r, "refresh over the new connection")?;
    new.recv_notify(&mut dialog, secs(5))
        .context("the refresh's NOTIFY must come over the connection the refresh came on")?;

    old.close();
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ok(&r, "PUBLISH")?;
    let n = new
        .recv_notify(&mut dialog, secs(5))
        .context("closing the abandoned connection must not end the refreshed subscription")?;
    ensure!(
        tuples(&n)? == [("t".to_string(), Some(BasicStatus::Open))],
        "{}",
        n.body_text()
    );
    Ok(())
}
