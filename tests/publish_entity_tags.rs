//! PUBLISH and its entity tags (RFC 3903 §4 and §6): an initial PUBLISH
//! gets a tag, refresh, modify and remove each name the current one with
//! SIP-If-Match and get a fresh one, and a tag that was replaced or
//! removed is 412. Every refused PUBLISH (412, 489, 423, 415, 400) must
//! leave the published state as it was: a watcher gets no NOTIFY and a
//! later fetch shows the old document. A publication nobody refreshes
//! ends at its Expires, and its tag is then 412 too.

use std::collections::BTreeMap;

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use pidf::BasicStatus;
use sip::{HeaderName, Response};
use testkit::presence::{
    basic_by_tuple, etag, expires, pidf_tuple, tuple_xml, Dialog, RequestExt, PIDF, PRESENCE,
};
use testkit::{secs, Herald, UdpUa};

fn tuples(list: &[(&str, BasicStatus)]) -> BTreeMap<String, Option<BasicStatus>> {
    list.iter()
        .map(|(id, b)| (id.to_string(), Some(*b)))
        .collect()
}

fn expect_status(resp: &Response, status: u16, what: &str) -> Result<()> {
    ensure!(
        resp.status == status,
        "{what}: want {status}, got {} {}",
        resp.status,
        resp.reason
    );
    Ok(())
}

/// Bob watches Alice; his first NOTIFY is taken.
fn bob_watches(bob: &mut UdpUa, alice: &str) -> Result<Dialog> {
    let (dialog, first) = bob.watch(alice, PRESENCE, 600, secs(5))?;
    ensure!(first.is_active(), "first NOTIFY state {:?}", first.state);
    Ok(dialog)
}

/// Nothing reaches Bob, and a fetch of Alice's state shows `want`.
fn assert_unchanged(
    bob: &mut UdpUa,
    alice: &str,
    want: &BTreeMap<String, Option<BasicStatus>>,
    after: &str,
) -> Result<()> {
    bob.expect_nothing(QUIET)
        .with_context(|| format!("after {after}, the watcher must get no NOTIFY"))?;
    let fetched = bob.fetch(alice, PRESENCE, secs(5))?;
    let got = basic_by_tuple(&fetched.pidf()?);
    ensure!(
        &got == want,
        "after {after}, a fetch shows {got:?}, want the old state {want:?}"
    );
    Ok(())
}

#[test]
fn initial_refresh_modify_remove_each_get_a_fresh_tag() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut dialog = bob_watches(&mut bob, &alice.aor())?;

    // Initial: 200 with a tag and the granted Expires (§4.1).
    let open = pidf_tuple(&alice.aor(), "phone", "open", Some("at my desk"));
    let r = alice.publish(&open, 600)?;
    expect_status(&r, 200, "initial PUBLISH")?;
    let e1 = etag(&r)?;
    ensure!(
        expires(&r)? == 600,
        "Expires {} for 600 asked",
        expires(&r)?
    );
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        basic_by_tuple(&n.pidf()?) == tuples(&[("phone", BasicStatus::Open)]),
        "NOTIFY after the initial PUBLISH:\n{}",
        n.body_text()
    );

    // Refresh: no body, a new tag; the document is the same, so no NOTIFY.
    let r = alice.publish_refresh(&e1, 600)?;
    expect_status(&r, 200, "refresh")?;
    let e2 = etag(&r)?;
    ensure!(e2 != e1, "a refresh must get a new entity tag (§6 step 8)");
    ensure!(expires(&r)? == 600, "refresh Expires {}", expires(&r)?);
    bob.expect_nothing(QUIET)
        .context("a refresh changes no state, so no NOTIFY")?;

    // The replaced tag is gone.
    let r = alice.publish_refresh(&e1, 600)?;
    expect_status(&r, 412, "refresh with the tag the last refresh replaced")?;

    // Modify: a new body under the current tag.
    let closed = pidf_tuple(&alice.aor(), "phone", "closed", Some("gone home"));
    let r = alice.publish_modify(&e2, &closed, 600)?;
    expect_status(&r, 200, "modify")?;
    let e3 = etag(&r)?;
    ensure!(e3 != e2 && e3 != e1, "a modify must get a new entity tag");
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    let doc = n.pidf()?;
    ensure!(
        basic_by_tuple(&doc) == tuples(&[("phone", BasicStatus::Closed)]),
        "NOTIFY after the modify:\n{}",
        n.body_text()
    );
    ensure!(
        tuple_xml(&doc, "phone").is_some_and(|x| x.contains("gone home")),
        "the modified note must reach the watcher:\n{}",
        n.body_text()
    );
    let r = alice.publish_modify(&e2, &open, 600)?;
    expect_status(&r, 412, "modify with the tag the last modify replaced")?;
    bob.expect_nothing(QUIET)
        .context("a refused modify must not notify")?;

    // Remove: Expires 0 under the current tag; watchers get the offline document.
    let r = alice.publish_remove(&e3)?;
    expect_status(&r, 200, "remove")?;
    ensure!(expires(&r)? == 0, "a remove is answered Expires: 0");
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        n.is_offline()?,
        "after the only publication is removed the watcher sees offline:\n{}",
        n.body_text()
    );
    let r = alice.publish_refresh(&e3, 600)?;
    expect_status(&r, 412, "refresh of a removed publication")?;
    let r = alice.publish_remove(&e3)?;
    expect_status(&r, 412, "removing a removed publication")?;
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn expires_above_the_maximum_is_shortened() -> Result<()> {
    let herald = Herald::start(&["--publish-max-expires", "120"])?;
    let mut alice = herald.udp_ua("alice")?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 7200)?;
    expect_status(&r, 200, "PUBLISH asking 7200 s")?;
    ensure!(
        expires(&r)? == 120,
        "Expires {} granted; the server may shorten to its maximum 120 (§6 step 4)",
        expires(&r)?
    );
    let r = alice.publish_refresh(&etag(&r)?, 7200)?;
    expect_status(&r, 200, "refresh asking 7200 s")?;
    ensure!(expires(&r)? == 120, "refresh Expires {}", expires(&r)?);
    Ok(())
}

#[test]
fn unknown_entity_tag_is_412_and_changes_nothing() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "phone", "open", None), 600)?;
    expect_status(&r, 200, "initial PUBLISH")?;
    let live = etag(&r)?;
    let _dialog = bob_watches(&mut bob, &alice.aor())?;
    let want = tuples(&[("phone", BasicStatus::Open)]);

    let bogus = "0123456789abcdef";
    ensure!(bogus != live, "the made-up tag happens to be the live one");
    let closed = pidf_tuple(&alice.aor(), "phone", "closed", None);
    let r = alice.publish_modify(bogus, &closed, 600)?;
    expect_status(&r, 412, "modify with an unknown tag")?;
    assert_unchanged(&mut bob, &alice.aor(), &want, "a 412 modify")?;

    let r = alice.publish_refresh(bogus, 600)?;
    expect_status(&r, 412, "refresh with an unknown tag")?;
    let r = alice.publish_remove(bogus)?;
    expect_status(&r, 412, "remove with an unknown tag")?;
    assert_unchanged(&mut bob, &alice.aor(), &want, "a 412 remove")?;

    // Another presentity's tag is unknown here too.
    let mut carol = herald.udp_ua("carol")?;
    let r = carol.publish_refresh(&live, 600)?;
    expect_status(&r, 412, "Carol refreshing Alice's tag")?;

    // And the live tag still works.
    let r = alice.publish_refresh(&live, 600)?;
    expect_status(&r, 200, "refresh with the live tag after the refusals")?;
    Ok(())
}

#[test]
fn other_event_package_is_489_with_allow_events() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "phone", "open", None), 600)?;
    let live = etag(&r)?;
    let _dialog = bob_watches(&mut bob, &alice.aor())?;
    let want = tuples(&[("phone", BasicStatus::Open)]);
    let closed = pidf_tuple(&alice.aor(), "phone", "closed", None);

    for (event, what) in [
        (Some("dialog"), "Event: dialog"),
        (
            Some("presence.winfo"),
            "Event: presence.winfo (not publishable)",
        ),
        (None, "no Event header"),
    ] {
        let mut req = alice.publish_request(Some(600)).with_body(PIDF, &closed);
        req = match event {
            Some(e) => req.set_header(HeaderName::Event, e),
            None => req.without_header(&HeaderName::Event),
        };
        let r = alice.transact(&req)?;
        expect_status(&r, 489, what)?;
        let allowed = r.headers.allow_events();
        ensure!(
            allowed.iter().any(|e| e == "presence"),
            "{what}: 489 must list the packages served in Allow-Events (RFC 3903 §6 step 2), got {allowed:?}"
        );
    }
    // The same with SIP-If-Match: the live publication is not touched.
    let req = alice
        .publish_request(Some(600))
        .with_header(HeaderName::SipIfMatch, live.as_str())
        .set_header(HeaderName::Event, "dialog")
        .with_body(PIDF, &closed);
    expect_status(&alice.transact(&req)?, 489, "modify with Event: dialog")?;
    assert_unchanged(&mut bob, &alice.aor(), &want, "489s")?;
    expect_status(
        &alice.publish_refresh(&live, 600)?,
        200,
        "refresh with the live tag after the 489s",
    )?;
    Ok(())
}

#[test]
fn too_brief_expires_is_423_with_min_expires() -> Result<()> {
    let herald = Herald::start(&["--publish-min-expires", "60"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    let open = pidf_tuple(&alice.aor(), "phone", "open", None);
    let r = alice.publish(&open, 10)?;
    expect_status(&r, 423, "initial PUBLISH with Expires 10")?;
    ensure!(
        r.headers.get(&HeaderName::MinExpires).map(str::trim) == Some("60"),
        "423 must carry Min-Expires: 60 (RFC 3903 §6 step 4), got {:?}",
        r.headers.get(&HeaderName::MinExpires)
    );
    // Nothing was stored: a watcher sees the offline document.
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    ensure!(
        first.is_offline()?,
        "a 423 PUBLISH must store nothing:\n{}",
        first.body_text()
    );

    let r = alice.publish(&open, 60)?;
    expect_status(&r, 200, "PUBLISH with Expires at the minimum")?;
    let live = etag(&r)?;
    bob.recv_notify(&mut dialog, secs(5))?;
    let want = tuples(&[("phone", BasicStatus::Open)]);

    let closed = pidf_tuple(&alice.aor(), "phone", "closed", None);
    let r = alice.publish_modify(&live, &closed, 59)?;
    expect_status(&r, 423, "modify with Expires 59")?;
    ensure!(r.headers.get(&HeaderName::MinExpires).is_some());
    let r = alice.publish_refresh(&live, 1)?;
    expect_status(&r, 423, "refresh with Expires 1")?;
    assert_unchanged(&mut bob, &alice.aor(), &want, "423s")?;
    expect_status(
        &alice.publish_refresh(&live, 60)?,
        200,
        "the tag must still be live after 423s",
    )?;
    Ok(())
}

#[test]
fn other_content_type_is_415_with_accept() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "phone", "open", None), 600)?;
    let live = etag(&r)?;
    let _dialog = bob_watches(&mut bob, &alice.aor())?;
    let want = tuples(&[("phone", BasicStatus::Open)]);

    let closed = pidf_tuple(&alice.aor(), "phone", "closed", None);
    for (content_type, body) in [
        ("text/plain", "I am away".to_string()),
        ("application/xpidf+xml", closed.clone()),
    ] {
        let req = alice
            .publish_request(Some(600))
            .with_header(HeaderName::SipIfMatch, live.as_str())
            .with_body(content_type, &body);
        let r = alice.transact(&req)?;
        expect_status(&r, 415, &format!("modify with {content_type}"))?;
        let accept = r.headers.accept();
        ensure!(
            accept.iter().any(|a| a == PIDF),
            "415 must say what is accepted (RFC 3261 §21.4.13): Accept {accept:?}"
        );
    }
    // An initial one too.
    let req = alice
        .publish_request(Some(600))
        .with_body("text/plain", "I am away");
    expect_status(&alice.transact(&req)?, 415, "initial with text/plain")?;
    assert_unchanged(&mut bob, &alice.aor(), &want, "415s")?;
    expect_status(
        &alice.publish_refresh(&live, 600)?,
        200,
        "the tag must still be live after 415s",
    )?;
    Ok(())
}

#[test]
fn initial_publish_without_body_is_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let req = alice.publish_request(Some(600));
    let r = alice.transact(&req)?;
    expect_status(
        &r,
        400,
        "initial PUBLISH without a body (RFC 3903 §6 step 5)",
    )?;
    ensure!(
        r.headers.get(&HeaderName::SipETag).is_none(),
        "a refused PUBLISH names no entity tag"
    );
    let fetched = bob.fetch(&alice.aor(), PRESENCE, secs(5))?;
    ensure!(
        fetched.is_offline()?,
        "a 400 PUBLISH stores nothing:\n{}",
        fetched.body_text()
    );
    Ok(())
}

#[test]
fn expired_publication_is_withdrawn_and_its_tag_is_412() -> Result<()> {
    let herald = Herald::start(&["--publish-min-expires", "1"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut dialog = bob_watches(&mut bob, &alice.aor())?;

    let r = alice.publish(&pidf_tuple(&alice.aor(), "phone", "open", None), 2)?;
    expect_status(&r, 200, "PUBLISH for 2 s")?;
    ensure!(expires(&r)? == 2, "Expires {}", expires(&r)?);
    let tag = etag(&r)?;
    bob.recv_notify(&mut dialog, secs(5))?;

    // Whole seconds and a quarter-second sweep: gone within about 3.3 s.
    let n = bob
        .recv_notify(&mut dialog, secs(6))
        .context("an unrefreshed publication must end at its Expires")?;
    ensure!(
        n.is_offline()?,
        "the watcher sees offline once the only publication expired:\n{}",
        n.body_text()
    );
    let r = alice.publish_refresh(&tag, 60)?;
    expect_status(
        &r,
        412,
        "refresh of an expired publication (RFC 3903 §6 step 1)",
    )?;
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn retransmitted_publish_is_one_publication() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut dialog = bob_watches(&mut bob, &alice.aor())?;

    // The same datagram again after its 200, as a UDP client whose 200
    // was lost retransmits it (RFC 3261 §17.1.2.2): one transaction, so
    // one publication and one tag.
    let req = alice
        .publish_request(Some(600))
        .with_body(PIDF, pidf_tuple(&alice.aor(), "phone", "open", None));
    alice.send(&req)?;
    let first = alice.recv_response(&req, secs(5))?;
    alice.send(&req)?;
    let second = alice.recv_response(&req, secs(5))?;
    expect_status(&first, 200, "PUBLISH")?;
    ensure!(
        etag(&second)? == etag(&first)?,
        "a retransmission is answered with the same response, got tags {} and {}",
        etag(&first)?,
        etag(&second)?
    );
    bob.recv_notify(&mut dialog, secs(5))?;

    // Removing that one publication leaves nothing.
    expect_status(&alice.publish_remove(&etag(&first)?)?, 200, "remove")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        n.is_offline()?,
        "a second publication was made from the retransmission:\n{}",
        n.body_text()
    );
    Ok(())
}

#[test]
fn content_type_parameters_and_case_do_not_matter() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let body = pidf_tuple(&alice.aor(), "phone", "open", None);
    for ct in [
        "application/pidf+xml;charset=UTF-8",
        "Application/PIDF+XML",
        "application/pidf+xml ; charset=\"utf-8\"",
    ] {
        let req = alice.publish_request(Some(600)).with_body(ct, &body);
        let r = alice.transact(&req)?;
        expect_status(&r, 200, &format!("PUBLISH with Content-Type: {ct}"))?;
        expect_status(&alice.publish_remove(&etag(&r)?)?, 200, "remove")?;
    }
    Ok(())
}

#[test]
fn publication_limit_is_403_and_a_removed_one_makes_room() -> Result<()> {
    let herald = Herald::start(&["--max-publications", "2"])?;
    let mut alice = herald.udp_ua("alice")?;
    let body = |id: &str| pidf_tuple("sip:alice@example.com", id, "open", None);
    let first = etag(&alice.publish(&body("a"), 600)?)?;
    expect_status(&alice.publish(&body("b"), 600)?, 200, "second publication")?;
    let r = alice.publish(&body("c"), 600)?;
    expect_status(&r, 403, "a third publication over --max-publications 2")?;
    // Refreshing and modifying a live one is not a new publication.
    let r = alice.publish_refresh(&first, 600)?;
    expect_status(&r, 200, "refresh at the limit")?;
    let r = alice.publish_modify(&etag(&r)?, &body("a2"), 600)?;
    expect_status(&r, 200, "modify at the limit")?;
    expect_status(&alice.publish_remove(&etag(&r)?)?, 200, "remove")?;
    expect_status(
        &alice.publish(&body("c"), 600)?,
        200,
        "publication after a remove",
    )?;
    Ok(())
}
