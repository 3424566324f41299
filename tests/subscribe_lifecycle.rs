//! A presence subscription from start to end (RFC 6665 §4 with RFC 3856):
//! 200 with a To tag, Expires and Contact, then at once a NOTIFY with the
//! full state; a refresh inside the dialog gets a NOTIFY with the next
//! CSeq; Expires 0 inside the dialog ends it with a terminated NOTIFY;
//! Expires 0 outside is a fetch (one terminated NOTIFY with the state);
//! an unrefreshed subscription ends with terminated;reason=timeout. And
//! the refusals: 423 with Min-Expires, 489 with Allow-Events, 406, 481,
//! 400 without Contact. Two subscriptions of one watcher are two dialogs.

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use pidf::BasicStatus;
use sip::HeaderName;
use testkit::presence::{
    basic_by_tuple, etag, expires, pidf_tuple, Dialog, Notify, RequestExt, PIDF, PRESENCE,
    PRESENCE_WINFO,
};
use testkit::{secs, Herald};

fn check_expires(n: &Notify, granted: u32) -> Result<()> {
    let e = n
        .expires()
        .with_context(|| format!("state {:?}", n.state))?;
    // Herald counts whole seconds: a second may have passed.
    ensure!(
        e <= granted && e + 2 >= granted,
        "Subscription-State expires={e}, granted {granted}"
    );
    Ok(())
}

fn next_cseq(n: &Notify, before: u32) -> Result<()> {
    ensure!(
        n.cseq == before + 1,
        "NOTIFY CSeq {} after {before}: Herald's CSeq goes up by one per NOTIFY",
        n.cseq
    );
    Ok(())
}

#[test]
fn subscribe_is_answered_200_then_notified_at_once() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    let req = bob.subscribe_request(&alice.aor(), PRESENCE, Some(600));
    let (ok, dialog) = bob.subscribe_with(&req)?;
    ensure!(ok.status == 200, "SUBSCRIBE: {} {}", ok.status, ok.reason);
    ensure!(
        expires(&ok)? == 600,
        "Expires {} for 600 asked",
        expires(&ok)?
    );
    let mut dialog = dialog.context("a 200 makes a dialog")?;
    ensure!(!dialog.remote_tag.is_empty());

    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(n.event()? == PRESENCE, "NOTIFY Event {:?}", n.event());
    ensure!(n.is_active(), "state {:?}", n.state);
    check_expires(&n, 600)?;
    let to = n.request.headers.to_addr()?;
    ensure!(
        to.tag() == Some(dialog.local_tag.as_str()) && to.uri.to_string() == bob.aor(),
        "NOTIFY To must be the subscriber with its tag, got {to}"
    );
    let from = n.request.headers.from_addr()?;
    ensure!(
        from.uri.to_string() == alice.aor(),
        "NOTIFY From is the presentity, got {from}"
    );
    ensure!(
        n.request.headers.contains(&HeaderName::Contact),
        "a NOTIFY carries the notifier's Contact"
    );
    let doc = n.pidf()?;
    ensure!(
        doc.entity() == alice.aor(),
        "entity {} for {}",
        doc.entity(),
        alice.aor()
    );
    ensure!(
        n.is_offline()?,
        "nothing published: offline document, got\n{}",
        n.body_text()
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn refresh_in_dialog_gets_a_notify_with_the_next_cseq() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    let r = bob.refresh(&mut dialog, 300)?;
    ensure!(r.status == 200, "refresh: {} {}", r.status, r.reason);
    ensure!(expires(&r)? == 300, "refresh Expires {}", expires(&r)?);
    let to = r.headers.to_addr()?;
    ensure!(
        to.tag() == Some(dialog.remote_tag.as_str()),
        "the refresh's 200 keeps the dialog's tag, got {to}"
    );
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(n.is_active(), "state {:?}", n.state);
    check_expires(&n, 300)?;
    next_cseq(&n, first.cseq)?;

    // A change is the next one.
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    let n2 = bob.recv_notify(&mut dialog, secs(5))?;
    next_cseq(&n2, n.cseq)?;
    ensure!(
        basic_by_tuple(&n2.pidf()?).get("t") == Some(&Some(BasicStatus::Open)),
        "{}",
        n2.body_text()
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn unsubscribe_ends_with_a_terminated_notify_and_nothing_after() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    let r = bob.unsubscribe(&mut dialog)?;
    ensure!(r.status == 200, "unsubscribe: {} {}", r.status, r.reason);
    ensure!(expires(&r)? == 0, "unsubscribe Expires {}", expires(&r)?);
    let last = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        last.is_terminated(),
        "the NOTIFY after Expires 0 must be terminated, got {:?}",
        last.state
    );
    next_cseq(&last, first.cseq)?;

    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    bob.expect_nothing(QUIET)
        .context("no NOTIFY after the subscription ended")?;

    // The dialog is gone.
    let r = bob.refresh(&mut dialog, 600)?;
    ensure!(
        r.status == 481,
        "refresh of an ended subscription: want 481, got {} {}",
        r.status,
        r.reason
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn fetch_is_one_terminated_notify_with_the_state() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "t", "open", Some("fetch me")),
        600,
    )?;
    let live = etag(&r)?;

    let (ok, dialog) = bob.subscribe(&alice.aor(), PRESENCE, 0)?;
    ensure!(ok.status == 200, "fetch: {} {}", ok.status, ok.reason);
    ensure!(expires(&ok)? == 0, "a fetch's 200 says Expires 0");
    let mut dialog = dialog.context("dialog")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        n.is_terminated() && n.reason() == Some("timeout"),
        "a fetch's NOTIFY is terminated;reason=timeout (RFC 6665 §4.4.3), got {:?}",
        n.state
    );
    ensure!(
        basic_by_tuple(&n.pidf()?).get("t") == Some(&Some(BasicStatus::Open)),
        "a fetch's NOTIFY carries the state:\n{}",
        n.body_text()
    );

    // Nothing is kept: a change reaches nobody.
    let r = alice.publish_modify(&live, &pidf_tuple(&alice.aor(), "t", "closed", None), 600)?;
    ensure!(r.status == 200);
    bob.expect_nothing(QUIET)
        .context("a fetch leaves no subscription behind")?;
    let r = bob.refresh(&mut dialog, 600)?;
    ensure!(
        r.status == 481,
        "a fetch leaves no dialog to refresh: {}",
        r.status
    );
    Ok(())
}

#[test]
fn unrefreshed_subscription_times_out() -> Result<()> {
    let herald = Herald::start(&["--subscribe-min-expires", "1"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (ok, dialog) = bob.subscribe(&alice.aor(), PRESENCE, 2)?;
    ensure!(
        ok.status == 200 && expires(&ok)? == 2,
        "{} {:?}",
        ok.status,
        ok.headers.expires()
    );
    let mut dialog = dialog.context("dialog")?;
    let first = bob.recv_notify(&mut dialog, secs(5))?;
    check_expires(&first, 2)?;

    // Expiry runs on whole seconds with a quarter-second sweep: 2 s asked
    // ends within about 3.3 s; 6 s is the deadline.
    let end = bob
        .recv_notify(&mut dialog, secs(6))
        .context("the subscription must end by itself once its 2 s are up")?;
    ensure!(
        end.is_terminated() && end.reason() == Some("timeout"),
        "expiry ends with terminated;reason=timeout, got {:?}",
        end.state
    );
    next_cseq(&end, first.cseq)?;

    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn expires_bounds_423_below_and_shortened_above() -> Result<()> {
    let herald = Herald::start(&[
        "--subscribe-min-expires",
        "60",
        "--subscribe-max-expires",
        "300",
    ])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    let (r, _) = bob.subscribe(&alice.aor(), PRESENCE, 10)?;
    ensure!(
        r.status == 423,
        "Expires 10 under a 60 s minimum: {} {}",
        r.status,
        r.reason
    );
    ensure!(
        r.headers.get(&HeaderName::MinExpires).map(str::trim) == Some("60"),
        "423 carries Min-Expires: 60, got {:?}",
        r.headers.get(&HeaderName::MinExpires)
    );
    bob.expect_nothing(QUIET)
        .context("a refused SUBSCRIBE gets no NOTIFY")?;

    let (r, dialog) = bob.subscribe(&alice.aor(), PRESENCE, 7200)?;
    ensure!(r.status == 200, "{} {}", r.status, r.reason);
    ensure!(
        expires(&r)? == 300,
        "7200 asked, max 300: the notifier shortens (RFC 6665 §4.2.1.1), got {}",
        expires(&r)?
    );
    let mut dialog = dialog.context("dialog")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    check_expires(&n, 300)?;

    // A too-brief refresh is refused the same way and the subscription lives on.
    let r = bob.refresh(&mut dialog, 5)?;
    ensure!(r.status == 423, "refresh with Expires 5: {}", r.status);
    let r = bob.refresh(&mut dialog, 120)?;
    ensure!(r.status == 200, "refresh with Expires 120: {}", r.status);
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    check_expires(&n, 120)?;
    Ok(())
}

#[test]
fn unknown_event_package_is_489_with_allow_events() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    for (event, what) in [(Some("dialog"), "Event: dialog"), (None, "no Event")] {
        let mut req = bob.subscribe_request(&alice.aor(), PRESENCE, Some(600));
        req = match event {
            Some(e) => req.set_header(HeaderName::Event, e),
            None => req.without_header(&HeaderName::Event),
        };
        let (r, _) = bob.subscribe_with(&req)?;
        ensure!(
            r.status == 489,
            "{what}: want 489, got {} {}",
            r.status,
            r.reason
        );
        let allowed = r.headers.allow_events();
        ensure!(
            allowed.iter().any(|e| e == PRESENCE) && allowed.iter().any(|e| e == PRESENCE_WINFO),
            "{what}: 489 lists presence and presence.winfo in Allow-Events (RFC 6665 §4.2.1.1), got {allowed:?}"
        );
    }
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn accept_without_pidf_is_406() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    let req = bob
        .subscribe_request(&alice.aor(), PRESENCE, Some(600))
        .set_header(HeaderName::Accept, "text/plain, application/xpidf+xml");
    let (r, _) = bob.subscribe_with(&req)?;
    ensure!(
        r.status == 406,
        "Accept without PIDF (RFC 3856 §6.6.1): want 406, got {} {}",
        r.status,
        r.reason
    );
    bob.expect_nothing(QUIET)?;

    // PIDF among others, or a matching range, is fine.
    for accept in [
        "application/xpidf+xml, application/pidf+xml",
        "application/*",
    ] {
        let req = bob
            .subscribe_request(&alice.aor(), PRESENCE, Some(600))
            .set_header(HeaderName::Accept, accept);
        let (r, dialog) = bob.subscribe_with(&req)?;
        ensure!(
            r.status == 200,
            "Accept: {accept}: {} {}",
            r.status,
            r.reason
        );
        let mut dialog = dialog.context("dialog")?;
        let n = bob.recv_notify(&mut dialog, secs(5))?;
        n.pidf()?;
    }
    Ok(())
}

#[test]
fn refresh_of_an_unknown_dialog_is_481() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (real, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    // A made-up dialog, and the real one with a wrong tag or Call-ID.
    let mut made_up = Dialog {
        call_id: "no-such-dialog@testkit".into(),
        remote_tag: "feedfacefeedface".into(),
        ..real.clone()
    };
    let mut wrong_tag = Dialog {
        remote_tag: "0000000000000000".into(),
        ..real.clone()
    };
    let mut wrong_call = Dialog {
        call_id: "other@testkit".into(),
        ..real.clone()
    };
    let mut wrong_event = Dialog {
        event: PRESENCE_WINFO.into(),
        ..real.clone()
    };
    for (dialog, what) in [
        (&mut made_up, "a made-up dialog"),
        (&mut wrong_tag, "a wrong To tag"),
        (&mut wrong_call, "a wrong Call-ID"),
        (&mut wrong_event, "the right dialog with another Event"),
    ] {
        let r = bob.refresh(dialog, 600)?;
        ensure!(
            r.status == 481,
            "in-dialog SUBSCRIBE for {what}: want 481 (RFC 6665 §4.2.1.2), got {} {}",
            r.status,
            r.reason
        );
    }
    bob.expect_nothing(QUIET)
        .context("no NOTIFY for refused refreshes")?;
    Ok(())
}

#[test]
fn subscribe_without_contact_is_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let req = bob
        .subscribe_request(&alice.aor(), PRESENCE, Some(600))
        .without_header(&HeaderName::Contact);
    let (r, _) = bob.subscribe_with(&req)?;
    ensure!(
        r.status == 400,
        "SUBSCRIBE without Contact (RFC 6665 §4.1.2.1): want 400, got {} {}",
        r.status,
        r.reason
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn two_subscriptions_from_one_watcher_are_two_dialogs() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut one, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    let (mut two, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    ensure!(
        one.call_id != two.call_id && one.remote_tag != two.remote_tag,
        "two SUBSCRIBEs, two dialogs: {one:?} / {two:?}"
    );

    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    let live = etag(&r)?;
    let a = bob.recv_notify(&mut one, secs(5))?;
    let b = bob.recv_notify(&mut two, secs(5))?;
    for n in [&a, &b] {
        ensure!(
            basic_by_tuple(&n.pidf()?).get("t") == Some(&Some(BasicStatus::Open)),
            "{}",
            n.body_text()
        );
    }
    bob.expect_nothing(QUIET)
        .context("one NOTIFY per dialog per change")?;

    // Ending one leaves the other.
    ensure!(bob.unsubscribe(&mut one)?.status == 200);
    let last = bob.recv_notify(&mut one, secs(5))?;
    ensure!(last.is_terminated(), "{:?}", last.state);
    let r = alice.publish_modify(&live, &pidf_tuple(&alice.aor(), "t", "closed", None), 600)?;
    ensure!(r.status == 200);
    let n = bob.recv_notify(&mut two, secs(5))?;
    ensure!(
        basic_by_tuple(&n.pidf()?).get("t") == Some(&Some(BasicStatus::Closed)),
        "{}",
        n.body_text()
    );
    bob.expect_nothing(QUIET)
        .context("the ended dialog gets nothing")?;
    Ok(())
}

/// NOTIFYs go to the subscriber's Contact (RFC 6665 §4.1.2.1), not to
/// where the SUBSCRIBE came from; a refresh with a new Contact moves them.
#[test]
fn notify_goes_to_the_contact_and_follows_a_refreshed_one() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut sender = herald.udp_ua("bob")?;
    let mut first_device = herald.udp_ua("bob")?;
    let mut second_device = herald.udp_ua("bob")?;

    let req = sender
        .subscribe_request(&alice.aor(), PRESENCE, Some(600))
        .set_header(
            HeaderName::Contact,
            format!("<{}>", first_device.contact_uri()),
        );
    let (ok, dialog) = sender.subscribe_with(&req)?;
    ensure!(ok.status == 200, "{} {}", ok.status, ok.reason);
    let mut dialog = dialog.context("dialog")?;
    let n = first_device.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        n.request.uri.to_string() == first_device.contact_uri(),
        "NOTIFY Request-URI {}, the Contact was {}",
        n.request.uri,
        first_device.contact_uri()
    );
    ensure!(
        n.request.headers.content_type().as_deref() == Some(PIDF),
        "Content-Type {:?}",
        n.request.headers.content_type()
    );
    sender
        .expect_nothing(QUIET)
        .context("the NOTIFY belongs at the Contact, not the SUBSCRIBE's source")?;

    let refresh = sender
        .subscribe_in_dialog_request(&mut dialog, 600)
        .set_header(
            HeaderName::Contact,
            format!("<{}>", second_device.contact_uri()),
        );
    let r = sender.transact(&refresh)?;
    ensure!(r.status == 200, "refresh: {} {}", r.status, r.reason);
    second_device
        .recv_notify(&mut dialog, secs(5))
        .context("a refresh's Contact is the new target")?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    let n = second_device.recv_notify(&mut dialog, secs(5))?;
    n.pidf()?;
    first_device.expect_nothing(QUIET)?;
    sender.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn event_id_is_echoed_and_part_of_the_subscription() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let req = bob
        .subscribe_request(&alice.aor(), PRESENCE, Some(600))
        .set_header(HeaderName::Event, "presence;id=7");
    let (ok, dialog) = bob.subscribe_with(&req)?;
    ensure!(ok.status == 200, "{} {}", ok.status, ok.reason);
    let mut dialog = dialog.context("dialog")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    let event = n.request.headers.event()?.context("Event")?;
    ensure!(
        event.package == PRESENCE && event.id.as_deref() == Some("7"),
        "a NOTIFY carries the SUBSCRIBE's Event id (RFC 6665 §8.2.1), got {event}"
    );

    // Without the id it is another subscription, which this dialog lacks.
    let r = bob.refresh(&mut dialog, 600)?;
    ensure!(
        r.status == 481,
        "refresh without the id: want 481, got {} {}",
        r.status,
        r.reason
    );
    let refresh = bob
        .subscribe_in_dialog_request(&mut dialog, 600)
        .set_header(HeaderName::Event, "presence;id=7");
    let r = bob.transact(&refresh)?;
    ensure!(
        r.status == 200,
        "refresh with the id: {} {}",
        r.status,
        r.reason
    );
    bob.recv_notify(&mut dialog, secs(5))?;
    Ok(())
}

#[test]
fn retransmitted_subscribe_is_one_subscription() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    // The SUBSCRIBE again after its 200, as a UDP client whose 200 was
    // lost retransmits it (RFC 3261 §17.1.2.2): the same transaction.
    let req = bob.subscribe_request(&alice.aor(), PRESENCE, Some(600));
    bob.send(&req)?;
    let first = bob.recv_response(&req, secs(5))?;
    bob.send(&req)?;
    let second = bob.recv_response(&req, secs(5))?;
    ensure!(first.status == 200, "{} {}", first.status, first.reason);
    ensure!(
        first.headers.to_addr()?.tag() == second.headers.to_addr()?.tag(),
        "a retransmitted SUBSCRIBE gets the same answer (same To tag): {:?} / {:?}",
        first.headers.to_addr()?.tag(),
        second.headers.to_addr()?.tag()
    );
    let mut dialog = Dialog::from_exchange(&req, &first)?;
    bob.recv_notify(&mut dialog, secs(5))?;
    bob.expect_nothing(QUIET)
        .context("one SUBSCRIBE transaction, one subscription, one first NOTIFY")?;
    Ok(())
}

#[test]
fn tcp_subscription_is_notified_over_its_connection() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.tcp_ua("bob")?;
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    ensure!(
        dialog.remote_target.contains("transport=tcp"),
        "the 200's Contact for a dialog made over TCP must say transport=tcp, got {}",
        dialog.remote_target
    );
    let via = first.request.headers.top_via()?;
    ensure!(
        via.transport.eq_ignore_ascii_case("TCP"),
        "NOTIFY over TCP has a TCP Via: {via}"
    );
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    next_cseq(&n, first.cseq)?;
    ensure!(bob.refresh(&mut dialog, 600)?.status == 200);
    bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(bob.unsubscribe(&mut dialog)?.status == 200);
    let last = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(last.is_terminated(), "{:?}", last.state);
    Ok(())
}

#[test]
fn record_route_becomes_the_notify_route_set() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let req = bob
        .subscribe_request(&alice.aor(), PRESENCE, Some(600))
        .with_header(HeaderName::RecordRoute, "<sip:p1.example.com;lr>")
        .with_header(HeaderName::RecordRoute, "<sip:p2.example.com;lr>");
    let (ok, dialog) = bob.subscribe_with(&req)?;
    ensure!(ok.status == 200, "{} {}", ok.status, ok.reason);
    let mut dialog = dialog.context("dialog")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    let routes: Vec<String> = n
        .request
        .headers
        .routes()?
        .iter()
        .map(|r| r.uri.to_string())
        .collect();
    ensure!(
        routes == ["sip:p1.example.com;lr", "sip:p2.example.com;lr"],
        "the NOTIFY's Route set is the SUBSCRIBE's Record-Route in order (RFC 3261 §12.1.1), got {routes:?}"
    );
    Ok(())
}

#[test]
fn watcher_limit_is_403() -> Result<()> {
    let herald = Herald::start(&["--max-watchers", "2"])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let _one = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    let _two = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    let (r, _) = bob.subscribe(&alice.aor(), PRESENCE, 600)?;
    ensure!(
        r.status == 403,
        "a third watcher over --max-watchers 2: want 403, got {} {}",
        r.status,
        r.reason
    );
    bob.expect_nothing(QUIET)?;
    // A fetch keeps nothing, so it is still answered.
    bob.fetch(&alice.aor(), PRESENCE, secs(5))?;
    Ok(())
}

/// RFC 3261 §19.1.4: escaped unreserved characters and the host's case
/// do not make another presentity.
#[test]
fn equivalent_uris_name_the_same_presentity() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut dialog, _) = bob.watch("sip:al%69ce@EXAMPLE.COM", PRESENCE, 600, secs(5))?;
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    let n = bob
        .recv_notify(&mut dialog, secs(5))
        .context("a watcher of sip:al%69ce@EXAMPLE.COM watches sip:alice@example.com")?;
    ensure!(
        basic_by_tuple(&n.pidf()?).get("t") == Some(&Some(BasicStatus::Open)),
        "{}",
        n.body_text()
    );
    // And refreshes work with the URI as the watcher wrote it.
    ensure!(bob.refresh(&mut dialog, 600)?.status == 200);
    bob.recv_notify(&mut dialog, secs(5))?;
    Ok(())
}
