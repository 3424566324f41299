//! A burst of changes while a watcher is slow (RFC 6665 §4.2.2 allows
//! the notifier to coalesce): the watcher may see fewer NOTIFYs than
//! changes, but never an older state after a newer one, and the last
//! NOTIFY is the last state. Each NOTIFY's CSeq is the previous plus one.

use std::time::Instant;

use anyhow::{ensure, Context, Result};
use herald_tests::QUIET;
use testkit::presence::{etag, pidf_tuple, tuple_xml, PRESENCE};
use testkit::{secs, Herald};

const CHANGES: u32 = 20;

/// The change number a NOTIFY shows (the tuple's note says `change N`).
fn change_number(xml: &str) -> Option<u32> {
    let at = xml.find("change ")? + "change ".len();
    let digits: String = xml[at..].chars().take_while(char::is_ascii_digit).collect();
    digits.parse().ok()
}

#[test]
fn a_burst_coalesces_in_order_and_ends_with_the_last_state() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let (mut dialog, first) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;

    // Bob reads nothing while Alice changes her state CHANGES times.
    let aor = alice.aor();
    let body = |n: u32| {
        let basic = if n.is_multiple_of(2) {
            "open"
        } else {
            "closed"
        };
        pidf_tuple(&aor, "t", basic, Some(&format!("change {n}")))
    };
    let r = alice.publish(&body(1), 600)?;
    ensure!(r.status == 200);
    let mut tag = etag(&r)?;
    for n in 2..=CHANGES {
        let r = alice.publish_modify(&tag, &body(n), 600)?;
        ensure!(r.status == 200, "change {n}: {} {}", r.status, r.reason);
        tag = etag(&r)?;
    }

    let mut seen = Vec::new();
    let mut cseq = first.cseq;
    let deadline = Instant::now() + secs(10);
    while seen.last() != Some(&CHANGES) {
        let left = deadline.saturating_duration_since(Instant::now());
        let n = bob
            .recv_notify(&mut dialog, left)
            .with_context(|| format!("NOTIFYs up to change {CHANGES}; seen {seen:?}"))?;
        ensure!(n.cseq == cseq + 1, "NOTIFY CSeq {} after {cseq}", n.cseq);
        cseq = n.cseq;
        let doc = n.pidf()?;
        let xml = tuple_xml(&doc, "t").with_context(|| n.body_text())?;
        let k = change_number(&xml).with_context(|| xml.clone())?;
        if let Some(&last) = seen.last() {
            ensure!(
                k > last,
                "change {k} after change {last}: a NOTIFY must never show an older state (seen {seen:?})"
            );
        }
        seen.push(k);
    }
    bob.expect_nothing(QUIET)
        .context("nothing after the last state")?;
    println!(
        "{CHANGES} changes reached the watcher as {} NOTIFYs: {seen:?}",
        seen.len()
    );
    Ok(())
}
