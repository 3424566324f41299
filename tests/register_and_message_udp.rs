//! Two users registered over UDP exchange a page-mode MESSAGE through
//! Herald (RFC 3428 §7, RFC 3261 §16): it reaches Bob's socket with
//! Herald's Via on top and everything else Alice wrote intact, and Bob's
//! 200 is what Alice gets back.

use anyhow::Result;
use herald_tests::{message_round_trip, QUIET};
use testkit::Herald;

#[test]
fn message_reaches_registered_udp_contact_and_200_comes_back() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    assert_eq!(alice.register(3600)?.status, 200);
    assert_eq!(bob.register(3600)?.status, 200);

    message_round_trip(
        &mut alice,
        &mut bob,
        herald.udp,
        herald.tcp,
        "UDP",
        "Hello Bob. Ünïcödé and 🦀 survive the trip.",
    )?;

    // Delivered once, answered once.
    bob.expect_nothing(QUIET)?;
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn messages_in_both_directions() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(alice.register(3600)?.status, 200);
    assert_eq!(bob.register(3600)?.status, 200);

    for i in 0..3 {
        message_round_trip(
            &mut alice,
            &mut bob,
            herald.udp,
            herald.tcp,
            "UDP",
            &format!("ping {i}"),
        )?;
        message_round_trip(
            &mut bob,
            &mut alice,
            herald.udp,
            herald.tcp,
            "UDP",
            &format!("pong {i}"),
        )?;
    }
    bob.expect_nothing(QUIET)?;
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn message_from_unregistered_sender_is_delivered() -> Result<()> {
    // Page-mode IM needs only the recipient registered (RFC 3428 §4).
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    message_round_trip(&mut alice, &mut bob, herald.udp, herald.tcp, "UDP", "hi")?;
    Ok(())
}
