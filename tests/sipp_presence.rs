//! SIPp as a presence client of Herald: one scenario publishes through the
//! whole entity-tag cycle (initial, refresh, modify, remove), another
//! subscribes, checks the first NOTIFY carries what was published, and
//! unsubscribes. Every call must succeed, and what the Rust agents see
//! beside SIPp (a watcher of the publisher, the watcher info of the
//! presentity SIPp watches) must agree. Not a load test: the rate is low
//! and no timing is asserted (DESIGN.md §7).

use std::collections::BTreeSet;
use std::path::PathBuf;
use std::time::Instant;

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use pidf::WatcherStatus;
use testkit::presence::{pidf_tuple, PRESENCE, PRESENCE_WINFO};
use testkit::{secs, sipp_path, Herald, Sipp};

const CALLS: u64 = 20;

fn scenario(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}

fn sipp_missing() -> bool {
    if sipp_path().is_none() {
        println!("skipped: sipp is not installed (Debian package sip-tester; .ci/run installs it)");
        return true;
    }
    false
}

#[test]
fn sipp_publishes_through_the_entity_tag_cycle() -> Result<()> {
    if sipp_missing() {
        return Ok(());
    }
    let herald = Herald::start(&[])?;
    let mut bob = herald.udp_ua("bob")?;
    let dave = "sip:dave@example.com";
    let (mut dialog, first) = bob.watch(dave, PRESENCE, 600, secs(5))?;
    ensure!(first.is_offline()?, "{}", first.body_text());

    let uac = Sipp::new(scenario("publish_uac.xml"))
        .arg(herald.udp.to_string())
        .args(["-i", "127.0.0.1", "-s", "dave"])
        .args(["-m", &CALLS.to_string(), "-r", "10", "-l", "5"])
        .args(["-timeout", "60s", "-recv_timeout", "5000"])
        .run(secs(90))?;
    ensure!(
        uac.status.code() == Some(0) && uac.successful == Some(CALLS) && uac.failed == Some(0),
        "PUBLISH UAC: {}",
        uac.report()
    );

    // Bob read nothing while SIPp ran, so Herald's NOTIFYs waited for his
    // answers (each change gets one while his queue has room, the rest
    // fold): he sees SIPp's tuples at some point, and once the NOTIFYs stop
    // coming, the last one is the offline document (every publication
    // was removed).
    let deadline = Instant::now() + secs(30);
    let mut saw_sipp = false;
    let mut last_offline = false;
    let mut count = 0;
    while Instant::now() < deadline {
        let Ok(n) = bob.recv_notify(&mut dialog, QUIET) else {
            break;
        };
        count += 1;
        last_offline = n.is_offline()?;
        let doc = n.pidf()?;
        saw_sipp |= doc.tuples().iter().any(|t| t.id().starts_with("sipp-"));
    }
    ensure!(count > 0, "no NOTIFY after SIPp's publications");
    ensure!(last_offline, "the last NOTIFY must be the offline document");
    ensure!(saw_sipp, "no NOTIFY showed a tuple SIPp published");
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn sipp_subscribes_and_gets_the_published_state() -> Result<()> {
    if sipp_missing() {
        return Ok(());
    }
    let herald = Herald::start(&[])?;
    let mut carol = herald.udp_ua("carol")?;
    let r = carol.publish(
        &pidf_tuple(&carol.aor(), "sipp-target", "open", Some("for SIPp")),
        600,
    )?;
    ensure!(r.status == 200, "{} {}", r.status, r.reason);
    let (mut winfo, _) = carol.watch(&carol.aor(), PRESENCE_WINFO, 600, secs(5))?;

    let uac = Sipp::new(scenario("subscribe_uac.xml"))
        .arg(herald.udp.to_string())
        .args(["-i", "127.0.0.1", "-s", "carol"])
        .args(["-m", &CALLS.to_string(), "-r", "10", "-l", "5"])
        .args(["-timeout", "60s", "-recv_timeout", "5000"])
        .run(secs(90))?;
    ensure!(
        uac.status.code() == Some(0) && uac.successful == Some(CALLS) && uac.failed == Some(0),
        "SUBSCRIBE UAC: {}",
        uac.report()
    );

    // Carol's watcher info accounts for every SIPp subscription ending
    // (partial documents coalesce, so arrivals may be folded into ends).
    let mut ended = BTreeSet::new();
    let mut version = None;
    let deadline = Instant::now() + secs(10);
    while ended.len() < CALLS as usize {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = carol.recv_notify(&mut winfo, left).with_context(|| {
            format!(
                "watcher info for all {CALLS} SIPp watchers, {} seen",
                ended.len()
            )
        })?;
        let info = n.winfo()?;
        if let Some(v) = version {
            ensure!(
                info.version == v + 1,
                "winfo version {} after {v}",
                info.version
            );
        }
        version = Some(info.version);
        for w in info.lists.iter().flat_map(|l| &l.watchers) {
            ensure!(
                w.uri.starts_with("sip:watcher") && w.uri.ends_with("@example.com"),
                "an unexpected watcher {w:?}"
            );
            if w.status == WatcherStatus::Terminated {
                ended.insert(w.id.clone());
            }
        }
    }
    carol.expect_nothing(QUIET)?;
    Ok(())
}
