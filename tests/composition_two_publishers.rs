//! Two devices of one presentity publish (RFC 3903 §1: Herald is the
//! compositor): Alice's phone and desktop each publish their own tuple,
//! and her watcher sees one document with both. Each change by either
//! device is one NOTIFY carrying the new composed state (no second one
//! follows), a refresh is none, removing one device's publication leaves
//! the other's tuple, and removing both gives the offline document.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use herald_tests::{vectors_dir, QUIET};
use pidf::BasicStatus;
use testkit::presence::{basic_by_tuple, etag, pidf_tuple, tuple_xml, Dialog, Notify, PRESENCE};
use testkit::{secs, Herald, UdpUa};

use BasicStatus::{Closed, Open};

fn state(list: &[(&str, BasicStatus)]) -> BTreeMap<String, Option<BasicStatus>> {
    list.iter()
        .map(|(id, b)| (id.to_string(), Some(*b)))
        .collect()
}

/// The one NOTIFY a change causes: it must show `want`, and nothing else
/// may follow it.
fn exactly_one_notify(
    bob: &mut UdpUa,
    dialog: &mut Dialog,
    want: &BTreeMap<String, Option<BasicStatus>>,
    after: &str,
) -> Result<Notify> {
    let n = bob
        .recv_notify(dialog, secs(5))
        .with_context(|| format!("the NOTIFY after {after}"))?;
    ensure!(n.is_active(), "after {after}: state {:?}", n.state);
    let doc = n.pidf()?;
    ensure!(
        &basic_by_tuple(&doc) == want,
        "after {after} the watcher must see {want:?}, got:\n{}",
        n.body_text()
    );
    ensure!(
        doc.entity() == "sip:alice@example.com",
        "the composed document is about the presentity watched, got entity {}",
        doc.entity()
    );
    bob.expect_nothing(QUIET)
        .with_context(|| format!("one change ({after}) is one NOTIFY"))?;
    Ok(n)
}

fn ok(r: &sip::Response, what: &str) -> Result<()> {
    ensure!(r.status == 200, "{what}: {} {}", r.status, r.reason);
    Ok(())
}

#[test]
fn phone_and_desktop_compose_into_one_document() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut phone = herald.udp_ua("alice")?;
    let mut desktop = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let alice = phone.aor();

    let (mut dialog, first) = bob.watch(&alice, PRESENCE, 600, secs(5))?;
    ensure!(
        first.is_offline()?,
        "nobody publishes yet:\n{}",
        first.body_text()
    );

    let r = phone.publish(
        &pidf_tuple(&alice, "phone", "open", Some("on the move")),
        600,
    )?;
    ok(&r, "phone's initial PUBLISH")?;
    let phone_tag = etag(&r)?;
    exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("phone", Open)]),
        "the phone's PUBLISH",
    )?;

    let r = desktop.publish(&pidf_tuple(&alice, "desktop", "closed", None), 600)?;
    ok(&r, "desktop's initial PUBLISH")?;
    let desktop_tag = etag(&r)?;
    let n = exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("phone", Open), ("desktop", Closed)]),
        "the desktop's PUBLISH",
    )?;
    ensure!(
        tuple_xml(&n.pidf()?, "phone").is_some_and(|x| x.contains("on the move")),
        "the phone's tuple is kept whole, note included:\n{}",
        n.body_text()
    );

    // A refresh changes nothing anyone sees.
    let r = desktop.publish_refresh(&desktop_tag, 600)?;
    ok(&r, "desktop refresh")?;
    let desktop_tag = etag(&r)?;
    bob.expect_nothing(QUIET)
        .context("a refresh by one device must not notify")?;

    let r = phone.publish_modify(
        &phone_tag,
        &pidf_tuple(&alice, "phone", "closed", None),
        600,
    )?;
    ok(&r, "phone modify")?;
    let phone_tag = etag(&r)?;
    exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("phone", Closed), ("desktop", Closed)]),
        "the phone's modify",
    )?;

    let r = desktop.publish_modify(
        &desktop_tag,
        &pidf_tuple(&alice, "desktop", "open", Some("typing")),
        600,
    )?;
    ok(&r, "desktop modify")?;
    let desktop_tag = etag(&r)?;
    let n = exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("phone", Closed), ("desktop", Open)]),
        "the desktop's modify",
    )?;
    ensure!(
        tuple_xml(&n.pidf()?, "desktop").is_some_and(|x| x.contains("typing")),
        "{}",
        n.body_text()
    );

    ok(&phone.publish_remove(&phone_tag)?, "phone remove")?;
    exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("desktop", Open)]),
        "the phone's remove",
    )?;

    ok(&desktop.publish_remove(&desktop_tag)?, "desktop remove")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        n.is_offline()?,
        "with both publications gone the watcher sees offline:\n{}",
        n.body_text()
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn same_tuple_id_newest_wins_and_the_older_returns_when_it_goes() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut phone = herald.udp_ua("alice")?;
    let mut desktop = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let alice = phone.aor();
    let (mut dialog, _) = bob.watch(&alice, PRESENCE, 600, secs(5))?;

    ok(
        &phone.publish(
            &pidf_tuple(&alice, "im", "open", Some("from the phone")),
            600,
        )?,
        "phone",
    )?;
    exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("im", Open)]),
        "the phone's PUBLISH",
    )?;

    let r = desktop.publish(
        &pidf_tuple(&alice, "im", "closed", Some("from the desktop")),
        600,
    )?;
    ok(&r, "desktop")?;
    let n = exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("im", Closed)]),
        "the desktop's PUBLISH of the same tuple id",
    )?;
    ensure!(
        tuple_xml(&n.pidf()?, "im").is_some_and(|x| x.contains("from the desktop")),
        "the newest publication wins the tuple whole:\n{}",
        n.body_text()
    );

    ok(&desktop.publish_remove(&etag(&r)?)?, "desktop remove")?;
    let n = exactly_one_notify(
        &mut bob,
        &mut dialog,
        &state(&[("im", Open)]),
        "the desktop's remove",
    )?;
    ensure!(
        tuple_xml(&n.pidf()?, "im").is_some_and(|x| x.contains("from the phone")),
        "{}",
        n.body_text()
    );
    Ok(())
}

/// RPID persons and devices (RFC 4479/4480) from one publisher reach the
/// watcher beside another publisher's plain tuple.
#[test]
fn rpid_person_and_device_compose_with_a_plain_tuple() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut pc = herald.udp_ua("someone")?;
    let mut phone = herald.udp_ua("someone")?;
    let mut bob = herald.udp_ua("bob")?;
    let path = vectors_dir()
        .join("presence-docs")
        .join("rfc4480-rpid-example.resip.xml");
    let rpid = std::fs::read_to_string(&path).with_context(|| path.display().to_string())?;

    ok(&pc.publish(&rpid, 600)?, "the RFC 4480 example")?;
    ok(
        &phone.publish(&pidf_tuple(&phone.aor(), "phone", "open", None), 600)?,
        "the phone's tuple",
    )?;
    let fetched = bob.fetch(&pc.aor(), PRESENCE, secs(5))?;
    let doc = fetched.pidf()?;
    let want = state(&[
        ("bs35r9", Open),
        ("ty4658", Open),
        ("eg92n8", Open),
        ("phone", Open),
    ]);
    ensure!(
        basic_by_tuple(&doc) == want,
        "tuples of both publishers:\n{}",
        fetched.body_text()
    );
    ensure!(
        doc.persons().iter().map(|p| p.id()).collect::<Vec<_>>() == ["p1"],
        "the RPID person is kept:\n{}",
        fetched.body_text()
    );
    ensure!(
        doc.devices().iter().map(|d| d.id()).collect::<Vec<_>>() == ["pc147"],
        "the device is kept:\n{}",
        fetched.body_text()
    );
    let person = doc.persons()[0].fragment().to_xml();
    ensure!(
        person.contains("urn:ietf:params:xml:ns:pidf:rpid") && person.contains("brooding"),
        "the person's RPID content is relayed unchanged:\n{person}"
    );
    Ok(())
}
