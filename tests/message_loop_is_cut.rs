//! A binding whose contact is Herald itself (a misconfiguration, or a
//! deliberate attack) must not make a MESSAGE circle: RFC 3261 ends a
//! loop by loop detection (§16.3 step 4, 482) or by Max-Forwards running
//! out (§16.6 step 3, 483). The sender gets that answer promptly (not a
//! transaction timeout) and Herald keeps serving.

use std::time::Instant;

use anyhow::{ensure, Result};
use herald_tests::assert_alive;
use sip::HeaderName;
use testkit::{secs, Herald};

#[test]
fn contact_pointing_at_herald_itself_ends_in_482_or_483() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    // Bob's AOR lives in the domain "127.0.0.1", so his contact
    // sip:bob@127.0.0.1:<herald's port> names his own AOR again: each
    // delivery is a new request for the same user.
    let mut bob = herald.udp_ua("bob")?.with_domain("127.0.0.1");

    let mut reg = bob.register_request(Some(3600));
    reg.headers
        .set(HeaderName::Contact, format!("<sip:bob@{}>", herald.udp));
    assert_eq!(bob.transact(&reg)?.status, 200);

    let started = Instant::now();
    let msg = alice.message_request(&bob.aor(), "text/plain", "round and round");
    // Timer F (64*T1 = 32 s) bounds a lost transaction; a loop must end
    // long before that, and not by timing out (408).
    let r = alice.transact_within(&msg, secs(20))?;
    ensure!(
        r.status == 482 || r.status == 483,
        "a loop must end in 482 or 483, got {} {} after {:?}",
        r.status,
        r.reason,
        started.elapsed()
    );
    println!(
        "loop ended with {} {} after {:?}",
        r.status,
        r.reason,
        started.elapsed()
    );
    assert_alive(&mut alice)?;
    alice.expect_nothing(herald_tests::QUIET)?;
    assert_alive(&mut alice)?;
    Ok(())
}

#[test]
fn loop_with_few_hops_left_over_tcp_ends_in_482_or_483() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.tcp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?.with_domain("127.0.0.1");
    let mut reg = bob.register_request(Some(3600));
    reg.headers
        .set(HeaderName::Contact, format!("<sip:bob@{}>", herald.udp));
    assert_eq!(bob.transact(&reg)?.status, 200);

    let mut msg = alice.message_request(&bob.aor(), "text/plain", "few hops");
    msg.headers.set(HeaderName::MaxForwards, "3");
    let r = alice.transact_within(&msg, secs(20))?;
    ensure!(
        r.status == 482 || r.status == 483,
        "a loop must end in 482 or 483, got {} {}",
        r.status,
        r.reason
    );
    assert_alive(&mut alice)?;
    Ok(())
}
