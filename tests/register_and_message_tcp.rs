//! The same MESSAGE exchange as over UDP, with TCP on one or both sides:
//! Herald must deliver over the connection Bob registered on (his Contact
//! names an ephemeral port nobody listens on, so no other path works).

use anyhow::Result;
use herald_tests::{message_round_trip, QUIET};
use testkit::Herald;

#[test]
fn tcp_to_tcp() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.tcp_ua("alice")?;
    let mut bob = herald.tcp_ua("bob")?;
    assert_eq!(alice.register(3600)?.status, 200);
    assert_eq!(bob.register(3600)?.status, 200);

    message_round_trip(
        &mut alice, &mut bob, herald.udp, herald.tcp, "TCP", "over TCP",
    )?;
    message_round_trip(
        &mut bob, &mut alice, herald.udp, herald.tcp, "TCP", "and back",
    )?;
    bob.expect_nothing(QUIET)?;
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn udp_sender_to_tcp_recipient() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.tcp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    message_round_trip(
        &mut alice,
        &mut bob,
        herald.udp,
        herald.tcp,
        "TCP",
        "UDP in, TCP out",
    )?;
    bob.expect_nothing(QUIET)?;
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn tcp_sender_to_udp_recipient() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.tcp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    message_round_trip(
        &mut alice,
        &mut bob,
        herald.udp,
        herald.tcp,
        "UDP",
        "TCP in, UDP out",
    )?;
    bob.expect_nothing(QUIET)?;
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn twenty_messages_over_the_same_connections() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.tcp_ua("alice")?;
    let mut bob = herald.tcp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    for i in 0..20 {
        message_round_trip(
            &mut alice,
            &mut bob,
            herald.udp,
            herald.tcp,
            "TCP",
            &format!("message {i}"),
        )?;
    }
    Ok(())
}
