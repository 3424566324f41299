//! Two users registered over UDP exchange a page-mode MESSAGE through
//! Herald (RFC 3428 §7, RFC 3261 §16): it reaches Bob's socket with
//! Herald's Via on top and everything else Alice wrote intact, and Bob's
//! 200 is what Alice gets back.

use anyhow::Result;
use herald_tests::{assert_proxy_transparent, message_round_trip, QUIET};
use sip::{HeaderName, Method};
use testkit::{secs, Herald};

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

#[test]
fn relayed_message_keeps_the_senders_vias_and_spends_one_hop() -> Result<()> {
    // The page-mode MESSAGE is relayed as a proxy relays it: Herald's Via
    // on top of Alice's, Max-Forwards one less than Alice sent.
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    let mut msg = alice.message_request(&bob.aor(), "text/plain", "hop count");
    msg.headers.set(HeaderName::MaxForwards, "9");
    alice.send(&msg)?;
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    bob.respond(&delivered, 200)?;
    assert_eq!(alice.recv_response(&msg, secs(5))?.status, 200);
    assert_proxy_transparent(&msg, &delivered)
}

#[test]
fn message_goes_to_the_registered_contact_address() -> Result<()> {
    // RFC 3261 §10.3/§16.5: the location service maps the AOR to the
    // Contact URIs, and the request goes where the contact URI resolves
    // (RFC 3263). Only with RFC 5626 outbound (+sip.instance and reg-id)
    // does the registering flow take precedence. Here Bob's REGISTER
    // comes from one socket and names another (a third-party
    // registration, as a provisioning tool or the SIPp bench set-up does).
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut registrar_client = herald.udp_ua("bob")?;
    let mut device = herald.udp_ua("bob")?;

    let mut reg = registrar_client.register_request(Some(3600));
    reg.headers
        .set(HeaderName::Contact, format!("<{}>", device.contact_uri()));
    assert_eq!(registrar_client.transact(&reg)?.status, 200);

    let msg = alice.message_request(&device.aor(), "text/plain", "to the device");
    alice.send(&msg)?;
    let delivered = device
        .recv_request(&Method::Message, secs(5))
        .map_err(|e| e.context("the MESSAGE did not reach the registered contact address"))?;
    device.respond(&delivered, 200)?;
    assert_eq!(alice.recv_response(&msg, secs(5))?.status, 200);
    registrar_client.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn message_forks_to_every_contact_and_the_first_2xx_answers_once() -> Result<()> {
    // RFC 3428 §7 with RFC 3261 §16.7: delivered to each of Bob's
    // devices; the first 2xx is the sender's answer (200), later ones are
    // not passed on.
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut phone = herald.udp_ua("bob")?;
    let mut laptop = herald.tcp_ua("bob")?;
    assert_eq!(phone.register(3600)?.status, 200);
    assert_eq!(laptop.register(3600)?.status, 200);

    let msg = alice.message_request(&phone.aor(), "text/plain", "to all of you");
    alice.send(&msg)?;
    let on_phone = phone.recv_request(&Method::Message, secs(5))?;
    let on_laptop = laptop.recv_request(&Method::Message, secs(5))?;
    for got in [&on_phone, &on_laptop] {
        assert_eq!(&got.body[..], b"to all of you");
    }
    herald_tests::assert_delivered(&msg, &on_phone, &phone.contact_uri(), herald.udp, "UDP")?;
    herald_tests::assert_delivered(&msg, &on_laptop, &laptop.contact_uri(), herald.tcp, "TCP")?;

    phone.respond(&on_phone, 200)?;
    let answer = alice.recv_response(&msg, secs(5))?;
    assert_eq!(answer.status, 200);
    laptop.respond(&on_laptop, 200)?;
    // The laptop's late 200 is not a second answer for Alice.
    alice.expect_nothing(QUIET)?;
    phone.expect_nothing(QUIET)?;
    laptop.expect_nothing(QUIET)?;
    Ok(())
}
