//! A watcher that refuses or ignores its NOTIFYs (RFC 6665 §4.2.2: 481,
//! or no answer, ends the subscription). The watcher gets nothing more,
//! the presentity's watcher info shows it deactivated, and the other
//! watchers of the same presentity are neither stopped nor delayed: one
//! watcher whose NOTIFY waits for Timer F (32 s at the default T1) must
//! not hold up anyone else's.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use pidf::{BasicStatus, WatcherEvent, WatcherInfoState, WatcherStatus};
use testkit::presence::{
    basic_by_tuple, etag, pidf_tuple, Dialog, Notify, PRESENCE, PRESENCE_WINFO,
};
use testkit::{secs, Herald, Transport, Ua, UdpUa};

fn shows(n: &Notify, basic: &str) -> Result<()> {
    let want = match basic {
        "open" => BasicStatus::Open,
        _ => BasicStatus::Closed,
    };
    ensure!(
        basic_by_tuple(&n.pidf()?).get("t") == Some(&Some(want)),
        "the NOTIFY must show t {basic}:\n{}",
        n.body_text()
    );
    Ok(())
}

/// Waits on the presentity's winfo dialog for the partial document that
/// reports `watcher` terminated with `event`.
fn winfo_reports<T: Transport>(
    presentity: &mut Ua<T>,
    winfo: &mut Dialog,
    watcher: &str,
    event: WatcherEvent,
    within: std::time::Duration,
) -> Result<()> {
    let deadline = Instant::now() + within;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = presentity
            .recv_notify(winfo, left)
            .with_context(|| format!("watcher info reporting {watcher} {event}"))?;
        let info = n.winfo()?;
        ensure!(
            info.state == WatcherInfoState::Partial,
            "winfo after the first document is partial: {}",
            n.body_text()
        );
        let hit = info.lists.iter().flat_map(|l| &l.watchers).find(|w| {
            w.uri == watcher && w.status == WatcherStatus::Terminated && w.event == event
        });
        if hit.is_some() {
            return Ok(());
        }
    }
}

#[test]
fn watcher_answering_481_gets_nothing_more_and_others_carry_on() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut carol = herald.udp_ua("carol")?;
    let (mut winfo, _) = alice.watch(&alice.aor(), PRESENCE_WINFO, 600, secs(5))?;
    let (mut bob_dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    let (mut carol_dialog, _) = carol.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    // Alice's winfo hears of both arrivals (possibly in one NOTIFY).
    let mut arrived = 0;
    while arrived < 2 {
        let n = alice.recv_notify(&mut winfo, secs(5))?;
        arrived += n
            .winfo()?
            .lists
            .iter()
            .map(|l| l.watchers.len())
            .sum::<usize>();
    }

    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    let live = etag(&r)?;
    let refused = bob.recv_notify_answering(&mut bob_dialog, 481, secs(5))?;
    shows(&refused, "open")?;
    shows(&carol.recv_notify(&mut carol_dialog, secs(5))?, "open")?;

    winfo_reports(
        &mut alice,
        &mut winfo,
        &bob.aor(),
        WatcherEvent::Deactivated,
        secs(5),
    )
    .context("a NOTIFY answered 481 ends the subscription")?;

    let r = alice.publish_modify(&live, &pidf_tuple(&alice.aor(), "t", "closed", None), 600)?;
    ensure!(r.status == 200);
    shows(&carol.recv_notify(&mut carol_dialog, secs(5))?, "closed")?;
    bob.expect_nothing(QUIET)
        .context("after answering 481 a watcher must get no NOTIFY at all, not even a final one")?;
    carol.expect_nothing(QUIET)?;

    let r = bob.refresh(&mut bob_dialog, 600)?;
    ensure!(
        r.status == 481,
        "the subscription is gone, so its refresh is 481, got {} {}",
        r.status,
        r.reason
    );
    Ok(())
}

/// Subscribes and then never reads the socket again: NOTIFYs to it are
/// never answered.
fn silent_watcher<T: Transport>(ua: &mut Ua<T>, presentity: &str) -> Result<()> {
    let (r, _dialog) = ua.subscribe(presentity, PRESENCE, 600)?;
    ensure!(r.status == 200, "{} {}", r.status, r.reason);
    Ok(())
}

#[test]
fn silent_watchers_do_not_delay_the_others() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut mute_udp = herald.udp_ua("mallory")?;
    let mut mute_tcp = herald.tcp_ua("trudy")?;
    let mut carol = herald.udp_ua("carol")?;
    silent_watcher(&mut mute_udp, &alice.aor())?;
    silent_watcher(&mut mute_tcp, &alice.aor())?;
    let (mut dialog, _) = carol.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    // Each change reaches Carol well inside the 32 s the silent watchers'
    // NOTIFY transactions may last.
    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    let mut tag = etag(&r)?;
    let sent = Instant::now();
    shows(&carol.recv_notify(&mut dialog, secs(3))?, "open")?;
    let mut slowest = sent.elapsed();
    for basic in ["closed", "open", "closed"] {
        let r = alice.publish_modify(&tag, &pidf_tuple(&alice.aor(), "t", basic, None), 600)?;
        ensure!(r.status == 200);
        tag = etag(&r)?;
        let sent = Instant::now();
        let n = carol
            .recv_notify(&mut dialog, secs(3))
            .context("a silent watcher must not hold up another's NOTIFY")?;
        shows(&n, basic)?;
        slowest = slowest.max(sent.elapsed());
    }
    println!("slowest NOTIFY to the answering watcher: {slowest:?}");
    Ok(())
}

#[test]
fn unanswered_notify_ends_the_subscription_at_timer_f() -> Result<()> {
    // T1 50 ms: Timer F (64*T1) is 3.2 s.
    let herald = Herald::start(&["--timer-t1-ms", "50"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut mute: UdpUa = herald.udp_ua("mallory")?;
    let (mut winfo, _) = alice.watch(&alice.aor(), PRESENCE_WINFO, 600, secs(5))?;
    let (r, dialog) = mute.subscribe(&alice.aor(), PRESENCE, 600)?;
    ensure!(r.status == 200);
    let mut dialog = dialog.context("dialog")?;

    winfo_reports(
        &mut alice,
        &mut winfo,
        &mute.aor(),
        WatcherEvent::Deactivated,
        secs(10),
    )
    .context("a NOTIFY that times out ends the subscription (RFC 6665 §4.2.2)")?;

    let r = alice.publish(&pidf_tuple(&alice.aor(), "t", "open", None), 600)?;
    ensure!(r.status == 200);
    // What waited in the socket is the first NOTIFY and its
    // retransmissions; no later NOTIFY may follow.
    let first = mute.recv_any_notify(secs(1))?;
    ensure!(dialog.owns(&first), "a NOTIFY of another dialog");
    mute.expect_nothing(QUIET)
        .context("after the timeout no NOTIFY other than the first one's retransmissions")?;
    let r = mute.refresh(&mut dialog, 600)?;
    ensure!(r.status == 481, "refresh after the timeout: {}", r.status);
    Ok(())
}
