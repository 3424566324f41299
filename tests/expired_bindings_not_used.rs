//! A binding lives for the expiry the registrar granted (RFC 3261 §10.3
//! step 7) and no longer: once it is gone, a MESSAGE to the user is
//! stored (202) and never sent to the stale contact; the user gets it on
//! registering again.

use std::time::Instant;

use anyhow::{ensure, Result};
use herald_tests::QUIET;
use sip::Method;
use testkit::{eventually, response_contacts, secs, Herald};

#[test]
fn expired_binding_is_dropped_and_the_message_stored() -> Result<()> {
    let herald = Herald::start(&["--min-expires", "1"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    let reg = bob.register(2)?;
    assert_eq!(reg.status, 200);
    let granted = response_contacts(&reg)?;
    ensure!(granted.len() == 1, "one binding expected: {granted:?}");
    ensure!(
        granted[0].expires().is_some_and(|e| (1..=2).contains(&e)),
        "asked for 2 s, granted {:?}",
        granted[0].expires()
    );

    // Poll the bindings (REGISTER without Contact) until Bob's is gone.
    eventually(secs(10), "bob's binding to expire", || {
        let r = bob.fetch_bindings()?;
        ensure!(r.status == 200, "fetch got {}", r.status);
        Ok(response_contacts(&r)?.is_empty().then_some(()))
    })?;

    let msg = alice.message_request(&bob.aor(), "text/plain", "are you there?");
    let r = alice.transact(&msg)?;
    assert_eq!(
        r.status, 202,
        "no live binding: stored, 202; got {} {}",
        r.status, r.reason
    );
    bob.expect_nothing(QUIET)?;

    assert_eq!(bob.register(3600)?.status, 200);
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    assert_eq!(&delivered.body[..], b"are you there?");
    bob.respond(&delivered, 200)?;
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn routing_itself_ignores_an_expired_binding() -> Result<()> {
    // No fetch in between: whatever cleans expired bindings up, routing
    // must not use one whose time is over.
    let herald = Herald::start(&["--min-expires", "1"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    let registered_at = Instant::now();
    assert_eq!(bob.register(2)?.status, 200);

    // While the binding lives, MESSAGEs are delivered and answered; the
    // first one answered 202 marks the expiry.
    let mut n = 0;
    let stored = eventually(secs(10), "a MESSAGE to bob to be stored (202)", || {
        n += 1;
        let msg = alice.message_request(&bob.aor(), "text/plain", &format!("probe {n}"));
        alice.send(&msg)?;
        let answer_by = Instant::now() + secs(5);
        loop {
            ensure!(Instant::now() < answer_by, "no final response to probe {n}");
            if let Ok(req) = bob.recv_request(&Method::Message, testkit::millis(200)) {
                bob.respond(&req, 200)?;
            }
            if let Ok(resp) = alice.recv_response(&msg, testkit::millis(50)) {
                return match resp.status {
                    200 => Ok(None),
                    202 => Ok(Some(format!("probe {n}"))),
                    s => anyhow::bail!("MESSAGE to bob got {s} {}", resp.reason),
                };
            }
        }
    })?;
    ensure!(
        registered_at.elapsed() >= secs(1),
        "the 2 s binding was gone after {:?}",
        registered_at.elapsed()
    );
    bob.expect_nothing(QUIET)?;

    assert_eq!(bob.register(3600)?.status, 200);
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    assert_eq!(String::from_utf8_lossy(&delivered.body), stored);
    bob.respond(&delivered, 200)?;
    bob.expect_nothing(QUIET)?;
    Ok(())
}
