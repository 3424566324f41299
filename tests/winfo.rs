//! Watcher information (RFC 3857 package, RFC 3858 documents): a
//! presentity subscribes to presence.winfo and sees who watches it. The
//! first NOTIFY is the full list (version 0), then each change is a
//! partial document with the next version: a watcher arriving (event
//! subscribe), leaving (terminated, event timeout), expiring (timeout),
//! giving up while pending (giveup). Only the presentity itself may
//! subscribe (403 for anyone else). With --presence-policy confirm a
//! watcher arrives pending (NOTIFY without a body) and is listed so.

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use pidf::{Watcher, WatcherEvent, WatcherInfo, WatcherInfoState, WatcherStatus};
use sip::HeaderName;
use testkit::presence::{pidf_tuple, Dialog, Notify, RequestExt, PRESENCE, PRESENCE_WINFO};
use testkit::{secs, Herald, UdpUa};

/// Reads the next winfo NOTIFY and checks the envelope: Event, state,
/// version (`want_version`), resource and package.
fn next_winfo(
    alice: &mut UdpUa,
    dialog: &mut Dialog,
    want_version: u32,
    want_state: WatcherInfoState,
) -> Result<(Notify, WatcherInfo)> {
    let n = alice.recv_notify(dialog, secs(5))?;
    ensure!(
        n.event()? == PRESENCE_WINFO,
        "winfo NOTIFY Event {:?}",
        n.event()
    );
    let info = n.winfo()?;
    ensure!(
        info.version == want_version && info.state == want_state,
        "want version {want_version} {want_state:?}, got version {} {:?} (RFC 3858 §4.2: versions count up by one):\n{}",
        info.version,
        info.state,
        n.body_text()
    );
    ensure!(
        info.lists.len() == 1
            && info.lists[0].resource == alice.aor()
            && info.lists[0].package == PRESENCE,
        "one watcher-list for {} and package presence:\n{}",
        alice.aor(),
        n.body_text()
    );
    Ok((n, info))
}

/// The only watcher of a document.
fn only_watcher(info: &WatcherInfo) -> Result<&Watcher> {
    let all: Vec<&Watcher> = info.lists.iter().flat_map(|l| &l.watchers).collect();
    ensure!(all.len() == 1, "want one watcher, got {all:?}");
    Ok(all[0])
}

fn is(w: &Watcher, uri: &str, status: WatcherStatus, event: WatcherEvent) -> Result<()> {
    ensure!(
        w.uri == uri && w.status == status && w.event == event,
        "want {uri} {status} event {event}, got {w:?}"
    );
    Ok(())
}

#[test]
fn presentity_sees_watchers_arrive_and_leave_in_version_order() -> Result<()> {
    let herald = Herald::start(&["--subscribe-min-expires", "1"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut carol = herald.udp_ua("carol")?;

    let (r, winfo) = alice.subscribe(&alice.aor(), PRESENCE_WINFO, 600)?;
    ensure!(
        r.status == 200,
        "winfo SUBSCRIBE: {} {}",
        r.status,
        r.reason
    );
    let mut winfo = winfo.context("dialog")?;
    let (first, info) = next_winfo(&mut alice, &mut winfo, 0, WatcherInfoState::Full)?;
    ensure!(first.is_active(), "{:?}", first.state);
    ensure!(
        info.lists[0].watchers.is_empty(),
        "nobody watches yet:\n{}",
        first.body_text()
    );

    // Bob arrives.
    let (mut bob_dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    let (_, info) = next_winfo(&mut alice, &mut winfo, 1, WatcherInfoState::Partial)?;
    let w = only_watcher(&info)?;
    is(
        w,
        &bob.aor(),
        WatcherStatus::Active,
        WatcherEvent::Subscribe,
    )?;
    let bob_id = w.id.clone();
    ensure!(!bob_id.is_empty());

    // Bob leaves.
    ensure!(bob.unsubscribe(&mut bob_dialog)?.status == 200);
    bob.recv_notify(&mut bob_dialog, secs(5))?;
    let (_, info) = next_winfo(&mut alice, &mut winfo, 2, WatcherInfoState::Partial)?;
    let w = only_watcher(&info)?;
    is(
        w,
        &bob.aor(),
        WatcherStatus::Terminated,
        WatcherEvent::Timeout,
    )?;
    ensure!(w.id == bob_id, "the same watcher id when it leaves");

    // Carol arrives for 2 s and lets it run out.
    let (r, carol_dialog) = carol.subscribe(&alice.aor(), PRESENCE, 2)?;
    ensure!(r.status == 200);
    let mut carol_dialog = carol_dialog.context("dialog")?;
    carol.recv_notify(&mut carol_dialog, secs(5))?;
    let (_, info) = next_winfo(&mut alice, &mut winfo, 3, WatcherInfoState::Partial)?;
    is(
        only_watcher(&info)?,
        &carol.aor(),
        WatcherStatus::Active,
        WatcherEvent::Subscribe,
    )?;
    let end = carol.recv_notify(&mut carol_dialog, secs(6))?;
    ensure!(end.is_terminated(), "{:?}", end.state);
    let (_, info) = next_winfo(&mut alice, &mut winfo, 4, WatcherInfoState::Partial)?;
    is(
        only_watcher(&info)?,
        &carol.aor(),
        WatcherStatus::Terminated,
        WatcherEvent::Timeout,
    )?;

    // A refresh of the winfo subscription gets the full list again, still
    // counting up.
    ensure!(alice.refresh(&mut winfo, 600)?.status == 200);
    let (_, info) = next_winfo(&mut alice, &mut winfo, 5, WatcherInfoState::Full)?;
    ensure!(
        info.lists[0].watchers.is_empty(),
        "nobody watches any more: {info:?}"
    );
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn first_document_lists_the_current_watchers() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (_bob_dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    let (r, winfo) = alice.subscribe(&alice.aor(), PRESENCE_WINFO, 600)?;
    ensure!(r.status == 200);
    let mut winfo = winfo.context("dialog")?;
    let (_, info) = next_winfo(&mut alice, &mut winfo, 0, WatcherInfoState::Full)?;
    let w = only_watcher(&info)?;
    is(
        w,
        &bob.aor(),
        WatcherStatus::Active,
        WatcherEvent::Subscribe,
    )?;
    ensure!(
        w.expiration.is_some_and(|e| (590..=600).contains(&e)),
        "an active watcher's expiration is what is left of its 600 s: {w:?}"
    );

    // Alice publishing is not a watcher change.
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    alice
        .expect_nothing(QUIET)
        .context("a PUBLISH changes no watcher")?;
    Ok(())
}

#[test]
fn only_the_presentity_may_subscribe_to_its_watcher_info() -> Result<()> {
    let herald = Herald::start(&[])?;
    let alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (r, dialog) = bob.subscribe(&alice.aor(), PRESENCE_WINFO, 600)?;
    ensure!(
        r.status == 403,
        "Bob asking for Alice's watcher info (RFC 3857 §5.1): want 403, got {} {}",
        r.status,
        r.reason
    );
    ensure!(dialog.is_none());
    bob.expect_nothing(QUIET)
        .context("a refused winfo SUBSCRIBE gets no NOTIFY")?;
    Ok(())
}

#[test]
fn winfo_accept_must_allow_watcherinfo() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let aor = alice.aor();
    let req = alice
        .subscribe_request(&aor, PRESENCE_WINFO, Some(600))
        .set_header(HeaderName::Accept, "application/pidf+xml");
    let (r, _) = alice.subscribe_with(&req)?;
    ensure!(
        r.status == 406,
        "winfo with Accept: application/pidf+xml: want 406, got {} {}",
        r.status,
        r.reason
    );
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn confirm_policy_watcher_arrives_pending_and_leaves() -> Result<()> {
    let herald = Herald::start(&["--presence-policy", "confirm"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut winfo, first) = alice.watch(&alice.aor(), PRESENCE_WINFO, 600, secs(5))?;
    ensure!(first.winfo()?.version == 0);

    let (r, dialog) = bob.subscribe(&alice.aor(), PRESENCE, 600)?;
    ensure!(
        (200..300).contains(&r.status),
        "a pending subscription is still accepted: {} {}",
        r.status,
        r.reason
    );
    let mut dialog = dialog.context("dialog")?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        n.is_pending(),
        "under confirm a stranger is pending, got {:?}",
        n.state
    );
    ensure!(
        n.expires().is_some_and(|e| (598..=600).contains(&e)),
        "pending;expires=N with what was granted, got {:?}",
        n.state
    );
    ensure!(
        !n.has_body(),
        "a pending watcher gets no presence state (RFC 3856 §6.6.2):\n{}",
        n.body_text()
    );

    let (_, info) = next_winfo(&mut alice, &mut winfo, 1, WatcherInfoState::Partial)?;
    is(
        only_watcher(&info)?,
        &bob.aor(),
        WatcherStatus::Pending,
        WatcherEvent::Subscribe,
    )?;

    // Alice's own view of herself is not held back.
    let (mut own, own_first) = alice.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    ensure!(own_first.is_active(), "{:?}", own_first.state);
    own_first.pidf()?;
    let n = alice.recv_notify(&mut winfo, secs(5))?;
    let info = n.winfo()?;
    ensure!(info.version == 2, "version {}", info.version);
    is(
        only_watcher(&info)?,
        &alice.aor(),
        WatcherStatus::Active,
        WatcherEvent::Subscribe,
    )?;

    // A publication reaches Alice's own subscription, not pending Bob.
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    alice.recv_notify(&mut own, secs(5))?.pidf()?;
    bob.expect_nothing(QUIET)
        .context("a pending watcher gets no NOTIFY for a state change")?;

    // Bob gives up.
    ensure!(bob.unsubscribe(&mut dialog)?.status == 200);
    let last = bob.recv_notify(&mut dialog, secs(5))?;
    ensure!(last.is_terminated(), "{:?}", last.state);
    ensure!(
        !last.has_body(),
        "never authorized, so no state in the final NOTIFY either:\n{}",
        last.body_text()
    );
    let (_, info) = next_winfo(&mut alice, &mut winfo, 3, WatcherInfoState::Partial)?;
    is(
        only_watcher(&info)?,
        &bob.aor(),
        WatcherStatus::Terminated,
        WatcherEvent::Giveup,
    )?;
    Ok(())
}

#[test]
fn watcher_display_name_reaches_watcher_info() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut winfo, _) = alice.watch(&alice.aor(), PRESENCE_WINFO, 600, secs(5))?;

    let mut req = bob.subscribe_request(&alice.aor(), PRESENCE, Some(600));
    let from = req.headers.from_addr()?;
    let tag = from.tag().context("From tag")?.to_string();
    req = req.set_header(
        HeaderName::From,
        format!("\"Bob <& Co>\" <{}>;tag={tag}", bob.aor()),
    );
    let (r, _) = bob.subscribe_with(&req)?;
    ensure!(r.status == 200, "{} {}", r.status, r.reason);
    let (n, info) = next_winfo(&mut alice, &mut winfo, 1, WatcherInfoState::Partial)?;
    let w = only_watcher(&info)?;
    ensure!(
        w.display_name.as_deref() == Some("Bob <& Co>") && w.uri == bob.aor(),
        "the watcher's display name from its From (RFC 3858 §4.3), got {w:?}:\n{}",
        n.body_text()
    );
    Ok(())
}
