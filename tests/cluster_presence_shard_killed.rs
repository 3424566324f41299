//! A presence shard killed with SIGKILL under traffic and started again
//! (issue 4, DESIGN.md §3 and §7): a publisher modifies its publication in
//! a loop through edge A while a watcher on edge B answers the NOTIFYs;
//! the shard that owns the presentity is killed in the middle and started
//! again. Acknowledged means written to Redis, so after the restart:
//! the last acknowledged entity tag still works, the watcher's NOTIFYs
//! resume with a higher CSeq (never a lower one) and never show an older
//! state after a newer one, subscriptions still refresh, and a short-lived
//! publication and a short-lived subscription made before the kill expire
//! on time on the restarted shard. New watchers keep subscribing through
//! the kill too, and each acknowledged subscription is there afterwards.

use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use anyhow::{bail, ensure, Context, Result};
use herald_tests::{presence_owner, users_where};
use sip::HeaderName;
use testkit::presence::{etag, pidf_tuple, Dialog, RequestExt, PIDF, PRESENCE};
use testkit::{eventually, millis, secs, ClusterSpec, RedisKind, TestCluster, UdpUa};

/// Lifetime of the short-lived publication and subscription, seconds:
/// long enough for the kill and the restart to happen first.
const SHORT: u32 = 8;

/// The note of attempt `n`: what the watcher reads the order from.
fn note(n: u64) -> String {
    format!("n={n};")
}

/// The highest `n=N;` in a document (a folded or composed document may
/// carry more than one).
fn highest_note(body: &str) -> Option<u64> {
    body.split("n=")
        .skip(1)
        .filter_map(|rest| rest.split(';').next()?.parse().ok())
        .max()
}

/// One PUBLISH attempt as the publisher saw it.
#[derive(Debug, Clone)]
struct Attempt {
    n: u64,
    /// The entity tag sent in SIP-If-Match (`None`: an initial PUBLISH).
    if_match: Option<String>,
    /// The final status, or `None` when none came within the wait.
    status: Option<u16>,
    etag: Option<String>,
    at: Instant,
}

#[derive(Default)]
struct PublisherLog {
    attempts: Vec<Attempt>,
    /// Problems that fail the test, in the order seen.
    violations: Vec<String>,
}

/// Modifies alice's publication in a loop until `stop` is set, then ends
/// on an acknowledged attempt. Each attempt publishes `n=<attempt>`.
/// After an attempt with no 200 (the shard died, the edge answered 503)
/// the same entity tag is sent again: it is still the acknowledged one.
/// A 412 to it is only excusable if an unanswered attempt with that tag
/// may have been applied before the shard died; then alice starts a new
/// publication.
fn publisher(
    mut alice: UdpUa,
    first_etag: String,
    stop: Arc<AtomicBool>,
    acked: Arc<AtomicUsize>,
    failed: Arc<AtomicUsize>,
    log: Arc<Mutex<PublisherLog>>,
) -> JoinHandle<UdpUa> {
    std::thread::spawn(move || {
        let mut tag = Some(first_etag);
        // An attempt with `tag` failed: it may have been applied anyway.
        let mut uncertain = false;
        let give_up = Instant::now() + secs(120);
        for n in 1.. {
            if Instant::now() > give_up {
                record_violation(
                    &log,
                    "the publisher ran for 120 s without being stopped".into(),
                );
                break;
            }
            let body = pidf_tuple(&alice.aor(), "phone", "open", Some(&note(n)));
            let mut req = alice.publish_request(Some(600)).with_body(PIDF, &body);
            if let Some(t) = &tag {
                req = req.with_header(HeaderName::SipIfMatch, t.clone());
            }
            let sent_at = Instant::now();
            let outcome = alice.transact_within(&req, secs(10));
            let (status, retry_after, new_tag) = match &outcome {
                Ok(r) => (
                    Some(r.status),
                    r.headers.get(&HeaderName::RetryAfter).is_some(),
                    etag(r).ok(),
                ),
                Err(_) => (None, false, None),
            };
            let attempt = Attempt {
                n,
                if_match: tag.clone(),
                status,
                etag: new_tag.clone(),
                at: sent_at,
            };
            log.lock().unwrap().attempts.push(attempt.clone());
            match status {
                Some(200) => {
                    let Some(t) = new_tag else {
                        record_violation(&log, format!("attempt {n}: 200 without SIP-ETag"));
                        break;
                    };
                    tag = Some(t);
                    uncertain = false;
                    acked.fetch_add(1, Ordering::SeqCst);
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                }
                Some(412) if uncertain => {
                    // An unanswered attempt was applied before the shard
                    // died: allowed (it was never acknowledged). Start a
                    // new publication.
                    tag = None;
                    uncertain = false;
                    failed.fetch_add(1, Ordering::SeqCst);
                }
                Some(412) => {
                    record_violation(
                        &log,
                        format!(
                            "attempt {n}: the acknowledged entity tag {:?} was refused with 412 \
                             (no unanswered attempt could have replaced it)",
                            attempt.if_match
                        ),
                    );
                    break;
                }
                Some(503) => {
                    if !retry_after {
                        record_violation(&log, format!("attempt {n}: 503 without Retry-After"));
                    }
                    uncertain = true;
                    failed.fetch_add(1, Ordering::SeqCst);
                    // Not a wait for a condition: a client's pause before
                    // it tries again, so the loop does not spin.
                    std::thread::sleep(millis(50));
                }
                Some(other) => {
                    record_violation(
                        &log,
                        format!(
                            "attempt {n}: PUBLISH answered {other} (only 200, or 503 while the \
                             shard is down, are right)"
                        ),
                    );
                    break;
                }
                None => {
                    record_violation(
                        &log,
                        format!(
                            "attempt {n}: no answer to PUBLISH within 10 s ({})",
                            outcome.err().map(|e| format!("{e:#}")).unwrap_or_default()
                        ),
                    );
                    uncertain = true;
                    failed.fetch_add(1, Ordering::SeqCst);
                }
            }
        }
        alice
    })
}

fn record_violation(log: &Mutex<PublisherLog>, what: String) {
    log.lock().unwrap().violations.push(what);
}

/// What the subscriber made: each acknowledged subscription with its
/// agent, and what went wrong.
#[derive(Default)]
struct SubscriberLog {
    acknowledged: Vec<(UdpUa, Dialog)>,
    refused: usize,
    violations: Vec<String>,
}

/// Subscribes new watchers to `presentity` one after the other through
/// `edge` until `stop` is set: SUBSCRIBEs keep arriving while the shard
/// dies and comes back. A 200 is an acknowledged subscription (its first
/// NOTIFY is taken when it comes); 503 is the right refusal while the
/// shard is down.
fn subscriber(
    presentity: String,
    edge: std::net::SocketAddr,
    stop: Arc<AtomicBool>,
) -> JoinHandle<SubscriberLog> {
    std::thread::spawn(move || {
        let mut log = SubscriberLog::default();
        let give_up = Instant::now() + secs(120);
        for k in 0.. {
            if stop.load(Ordering::SeqCst) || Instant::now() > give_up {
                break;
            }
            let mut ua = match UdpUa::bind(&format!("subscriber{k}"), edge) {
                Ok(ua) => ua,
                Err(e) => {
                    log.violations.push(format!("binding a UDP agent: {e:#}"));
                    break;
                }
            };
            let req = ua.subscribe_request(&presentity, PRESENCE, Some(600));
            match ua.transact_within(&req, secs(10)) {
                Ok(r) if r.status == 200 => match Dialog::from_exchange(&req, &r) {
                    Ok(mut dialog) => {
                        // The first NOTIFY, unless the shard died before
                        // sending it (the refresh below brings one).
                        let _ = ua.try_recv_notify_from(&mut dialog, 200, secs(2));
                        log.acknowledged.push((ua, dialog));
                    }
                    Err(e) => log.violations.push(format!("subscriber{k}: {e:#}")),
                },
                Ok(r) if r.status == 503 => {
                    log.refused += 1;
                    std::thread::sleep(millis(50));
                }
                Ok(r) => log.violations.push(format!(
                    "subscriber{k}: SUBSCRIBE answered {} {} (only 200, or 503 while the shard \
                     is down, are right)",
                    r.status, r.reason
                )),
                Err(e) => log
                    .violations
                    .push(format!("subscriber{k}: no answer to SUBSCRIBE: {e:#}")),
            }
            std::thread::sleep(millis(20));
        }
        log
    })
}

/// One NOTIFY as the watcher saw it.
#[derive(Debug, Clone)]
struct Seen {
    cseq: u32,
    note: Option<u64>,
    at: Instant,
}

/// Answers every NOTIFY of `dialog` with 200 and records it, until one
/// carries a note at least `until` (set by the test once it knows the last
/// acknowledged attempt) or 120 s pass. A NOTIFY whose CSeq does not
/// increase, or whose state is older than one seen before, is an error.
fn watcher(
    mut bob: UdpUa,
    mut dialog: Dialog,
    until: Arc<AtomicU64>,
) -> JoinHandle<(UdpUa, Dialog, Vec<Seen>, Result<()>)> {
    std::thread::spawn(move || {
        let mut seen: Vec<Seen> = Vec::new();
        let give_up = Instant::now() + secs(120);
        let result = (|| -> Result<()> {
            loop {
                let target = until.load(Ordering::SeqCst);
                if seen
                    .last()
                    .and_then(|s| s.note)
                    .is_some_and(|n| n >= target)
                {
                    return Ok(());
                }
                if Instant::now() > give_up {
                    bail!(
                        "the watcher waited 120 s for the note of attempt {target}; last NOTIFY: {:?}",
                        seen.last()
                    );
                }
                let Some((notify, _)) = bob.try_recv_notify_from(&mut dialog, 200, millis(200))?
                else {
                    continue;
                };
                ensure!(
                    notify.is_active(),
                    "NOTIFY CSeq {} is not active: {:?}",
                    notify.cseq,
                    notify.state
                );
                let got = Seen {
                    cseq: notify.cseq,
                    note: highest_note(&notify.body_text()),
                    at: Instant::now(),
                };
                if let (Some(before), Some(now)) =
                    (seen.iter().filter_map(|s| s.note).max(), got.note)
                {
                    ensure!(
                        now >= before,
                        "NOTIFY CSeq {} shows attempt {now} after a NOTIFY showed attempt {before}: \
                         an older state after a newer one",
                        got.cseq
                    );
                }
                seen.push(got);
            }
        })();
        (bob, dialog, seen, result)
    })
}

#[test]
fn a_presence_shard_killed_under_traffic_loses_nothing_acknowledged() -> Result<()> {
    let mut cluster = TestCluster::start_with(
        ClusterSpec::new(2, 1, 2, RedisKind::Standalone).presence_args(&[
            "--publish-min-expires",
            "1",
            "--subscribe-min-expires",
            "1",
        ]),
    )?;
    let (edge_a, edge_b) = (cluster.edge(0), cluster.edge(1));
    let mut alice = UdpUa::bind("alice", edge_a)?;
    let victim = presence_owner(&alice.aor(), 2)? as usize;
    // Dave is another presentity of the same shard, for the expiry checks.
    let dave_name = users_where("dave", 1, |aor| {
        presence_owner(aor, 2).is_ok_and(|o| o as usize == victim)
    })?
    .remove(0);
    // A quiet presentity of the same shard that new watchers keep
    // subscribing to through the kill.
    let quiet = users_where("quiet", 1, |aor| {
        presence_owner(aor, 2).is_ok_and(|o| o as usize == victim)
    })?
    .remove(0);
    let quiet = format!("sip:{quiet}@{}", testkit::DEFAULT_DOMAIN);

    let r = alice.publish(
        &pidf_tuple(&alice.aor(), "phone", "open", Some(&note(0))),
        600,
    )?;
    ensure!(r.status == 200, "first PUBLISH: {} {}", r.status, r.reason);
    let first_etag = etag(&r)?;
    let mut bob = UdpUa::bind("bob", edge_b)?;
    let (bob_dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        highest_note(&first.body_text()) == Some(0),
        "bob's first NOTIFY: {}",
        first.body_text()
    );

    // Traffic: alice publishes in a loop, bob answers NOTIFYs.
    let stop = Arc::new(AtomicBool::new(false));
    let acked = Arc::new(AtomicUsize::new(0));
    let failed = Arc::new(AtomicUsize::new(0));
    let log = Arc::new(Mutex::new(PublisherLog::default()));
    let until = Arc::new(AtomicU64::new(u64::MAX));
    let bob_thread = watcher(bob, bob_dialog, until.clone());
    let alice_thread = publisher(
        alice,
        first_etag,
        stop.clone(),
        acked.clone(),
        failed.clone(),
        log.clone(),
    );
    let subscriber_thread = subscriber(quiet.clone(), edge_b, stop.clone());
    let acks = |at_least: usize, what: &str| {
        eventually(secs(30), what, || {
            Ok((acked.load(Ordering::SeqCst) >= at_least).then_some(()))
        })
    };
    acks(10, "10 acknowledged PUBLISHes before the kill")?;

    // Just before the kill: a short-lived publication by dave with a
    // long-lived watcher (erin), and a short-lived subscription (carol).
    let mut dave = UdpUa::bind(&dave_name, edge_a)?;
    let mut erin = UdpUa::bind("erin", edge_b)?;
    let mut carol = UdpUa::bind("carol", edge_b)?;
    let short_made = Instant::now();
    let r = dave.publish(
        &pidf_tuple(&dave.aor(), "desk", "open", Some("short")),
        SHORT,
    )?;
    ensure!(
        r.status == 200,
        "dave's short PUBLISH: {} {}",
        r.status,
        r.reason
    );
    ensure!(
        r.headers.expires()? == Some(SHORT),
        "dave's PUBLISH granted {:?}, asked {SHORT}",
        r.headers.expires()
    );
    let (mut erin_dialog, erin_first) = erin.watch(&dave.aor(), PRESENCE, 600, secs(10))?;
    ensure!(
        erin_first.body_text().contains("short"),
        "erin sees dave's publication: {}",
        erin_first.body_text()
    );
    let (mut carol_dialog, _) = carol.watch(&dave.aor(), PRESENCE, SHORT, secs(10))?;

    let before_kill = acked.load(Ordering::SeqCst);
    acks(before_kill + 5, "more acknowledged PUBLISHes under traffic")?;
    cluster.kill_presence(victim)?;
    let killed_at = Instant::now();
    let acked_at_kill = acked.load(Ordering::SeqCst);
    let failed_at_kill = failed.load(Ordering::SeqCst);
    // The publisher keeps going and meets the dead shard.
    eventually(
        secs(20),
        "a PUBLISH refused while the shard is down",
        || Ok((failed.load(Ordering::SeqCst) > failed_at_kill).then_some(())),
    )?;
    cluster.start_presence(victim)?;
    let restarted_at = Instant::now();
    ensure!(
        restarted_at < short_made + Duration::from_secs(u64::from(SHORT) - 2),
        "the restart took {:?}: too long to check that expiry fires on the restarted shard",
        restarted_at - short_made
    );

    // Right after the restart, before their time: dave's publication is
    // there (a fetch shows it) and nothing has ended yet.
    let mut frank = UdpUa::bind("frank", edge_b)?;
    let fetched = frank.fetch(&dave.aor(), PRESENCE, secs(10))?;
    ensure!(
        short_made.elapsed() < secs(u64::from(SHORT) - 1),
        "too slow to look at dave's publication before its expiry"
    );
    ensure!(
        fetched.body_text().contains("short"),
        "dave's publication is gone right after the restart, {:?} before its expiry: {}",
        secs(u64::from(SHORT)).saturating_sub(short_made.elapsed()),
        fetched.body_text()
    );
    while let Some((n, _)) = erin.try_recv_notify_from(&mut erin_dialog, 200, millis(50))? {
        ensure!(
            n.body_text().contains("short"),
            "erin saw dave's publication end early: {}",
            n.body_text()
        );
    }
    while let Some((n, _)) = carol.try_recv_notify_from(&mut carol_dialog, 200, millis(50))? {
        ensure!(
            n.is_active(),
            "carol's subscription ended early: {:?}",
            n.state
        );
    }

    acks(
        acked_at_kill + 10,
        "10 acknowledged PUBLISHes after the restart",
    )?;
    stop.store(true, Ordering::SeqCst);
    let mut alice = alice_thread
        .join()
        .map_err(|_| anyhow::anyhow!("publisher panicked"))?;
    let log = std::mem::take(&mut *log.lock().unwrap());
    ensure!(
        log.violations.is_empty(),
        "the publisher saw: {:#?}",
        log.violations
    );
    let mut subscriptions = subscriber_thread
        .join()
        .map_err(|_| anyhow::anyhow!("subscriber panicked"))?;
    ensure!(
        subscriptions.violations.is_empty(),
        "the subscriber saw: {:#?}",
        subscriptions.violations
    );
    let last = log
        .attempts
        .iter()
        .rev()
        .find(|a| a.status == Some(200))
        .cloned()
        .context("no acknowledged PUBLISH")?;
    until.store(last.n, Ordering::SeqCst);
    let (mut bob, mut bob_dialog, seen, watched) = bob_thread
        .join()
        .map_err(|_| anyhow::anyhow!("watcher panicked"))?;
    watched.context("bob's NOTIFYs")?;

    eprintln!(
        "{} PUBLISH attempts ({} acknowledged, {} refused); bob saw {} NOTIFYs",
        log.attempts.len(),
        log.attempts
            .iter()
            .filter(|a| a.status == Some(200))
            .count(),
        log.attempts
            .iter()
            .filter(|a| a.status != Some(200))
            .count(),
        seen.len()
    );

    // The last tag acknowledged before the kill was still valid after the
    // restart: the first attempt answered 200 after the kill used it
    // (unless an excused 412 started a new publication meanwhile). Counted
    // from the kill, not from the restart: an attempt sent while the shard
    // was down can be answered by the restarted shard before
    // `start_presence` returns, and the attempts after it rightly carry
    // the entity tag that answer gave.
    let last_before_kill = log
        .attempts
        .iter()
        .rev()
        .find(|a| a.at < killed_at && a.status == Some(200))
        .cloned()
        .context("no acknowledged PUBLISH before the kill")?;
    let first_after = log
        .attempts
        .iter()
        .find(|a| a.at >= killed_at && a.status == Some(200))
        .cloned()
        .context("no acknowledged PUBLISH after the kill")?;
    let restarted_fresh = log
        .attempts
        .iter()
        .any(|a| a.at >= killed_at && a.status == Some(412));
    if !restarted_fresh {
        ensure!(
            first_after.if_match == last_before_kill.etag,
            "after the restart the first acknowledged PUBLISH (attempt {}) used {:?}, \
             not the entity tag acknowledged before the kill ({:?})",
            first_after.n,
            first_after.if_match,
            last_before_kill.etag
        );
    }
    ensure!(
        log.attempts
            .iter()
            .any(|a| a.at >= killed_at && a.status == Some(503)),
        "no PUBLISH met the dead shard: the kill did not happen under traffic"
    );

    // NOTIFYs resumed after the restart, with the last acknowledged state.
    let before: Vec<&Seen> = seen.iter().filter(|s| s.at < killed_at).collect();
    let after: Vec<&Seen> = seen.iter().filter(|s| s.at >= restarted_at).collect();
    ensure!(
        !before.is_empty() && !after.is_empty(),
        "bob got {} NOTIFYs before the kill and {} after the restart",
        before.len(),
        after.len()
    );
    ensure!(
        seen.last().and_then(|s| s.note) == Some(last.n),
        "bob's last NOTIFY shows attempt {:?}, the last acknowledged was {}",
        seen.last().and_then(|s| s.note),
        last.n
    );

    // The last entity tag refreshes; bob's subscription refreshes and its
    // NOTIFY (CSeq still increasing) shows the last state.
    let tag = last.etag.clone().context("last acknowledged tag")?;
    let r = alice.publish_refresh(&tag, 600)?;
    ensure!(
        r.status == 200,
        "refresh of the last acknowledged tag: {} {}",
        r.status,
        r.reason
    );
    let r = bob.refresh(&mut bob_dialog, 600)?;
    ensure!(
        r.status == 200,
        "bob's subscription made before the kill no longer refreshes: {} {}",
        r.status,
        r.reason
    );
    let n = bob.recv_notify(&mut bob_dialog, secs(10))?;
    ensure!(
        highest_note(&n.body_text()) == Some(last.n),
        "bob's NOTIFY after refreshing: {}",
        n.body_text()
    );

    // Every subscription acknowledged before, during or after the kill is
    // there: it refreshes and its NOTIFY comes.
    eprintln!(
        "{} SUBSCRIBEs acknowledged, {} refused",
        subscriptions.acknowledged.len(),
        subscriptions.refused
    );
    ensure!(
        !subscriptions.acknowledged.is_empty(),
        "no SUBSCRIBE was acknowledged"
    );
    for (ua, dialog) in &mut subscriptions.acknowledged {
        let r = ua.refresh(dialog, 600)?;
        ensure!(
            r.status == 200,
            "{}'s acknowledged subscription to {quiet} (Call-ID {}) no longer refreshes: {} {}",
            ua.aor(),
            dialog.call_id,
            r.status,
            r.reason
        );
        ua.recv_notify(dialog, secs(10))
            .with_context(|| format!("{}'s NOTIFY after refreshing", ua.aor()))?;
    }

    // Expiry on the restarted shard: dave's publication ends (erin's
    // NOTIFY shows him offline) and carol's subscription ends with
    // reason=timeout.
    let deadline = secs(u64::from(SHORT) + 15);
    loop {
        let n = erin
            .recv_notify(&mut erin_dialog, deadline)
            .context("erin never saw dave's short publication expire")?;
        if n.is_offline()? {
            break;
        }
    }
    let r = erin.refresh(&mut erin_dialog, 600)?;
    ensure!(
        r.status == 200,
        "erin's subscription made before the kill: {} {}",
        r.status,
        r.reason
    );
    let ended = loop {
        let n = carol
            .recv_notify(&mut carol_dialog, deadline)
            .context("carol's short subscription never ended")?;
        if n.is_terminated() {
            break n;
        }
    };
    ensure!(
        ended.reason() == Some("timeout"),
        "carol's subscription ended with {:?}, want reason=timeout",
        ended.state
    );

    cluster.check_healthy()?;
    Ok(())
}
