//! A user on SIP over TLS and a user on SIP over secure WebSocket: both
//! register, publish, subscribe and write to each other, and everything
//! Herald sends them (responses, NOTIFYs, MESSAGEs) arrives over the
//! connection they opened, with Herald's Via naming TLS or WSS. SIPS URIs:
//! a sips: Request-URI over a plain hop is refused, over TLS it is served.

use anyhow::{ensure, Context, Result};
use herald_tests::{assert_delivered, QUIET};
use sip::{HeaderName, Method};
use testkit::presence::{pidf_tuple, PRESENCE};
use testkit::{secs, Herald, TestTls, Transport, Ua};

/// `from` writes to `to`; the MESSAGE must reach `to` over its own
/// connection, sent by Herald from `herald` with Via transport `via`.
fn message<A: Transport, B: Transport>(
    from: &mut Ua<A>,
    to: &mut Ua<B>,
    herald: std::net::SocketAddr,
    via: &str,
    body: &str,
) -> Result<()> {
    let msg = from.message_request(&to.aor(), "text/plain", body);
    from.send(&msg)?;
    let delivered = to
        .recv_request(&Method::Message, secs(5))
        .with_context(|| format!("the MESSAGE never reached {} over {via}", to.user()))?;
    assert_delivered(&msg, &delivered, &to.contact_uri(), herald, via)?;
    to.respond(&delivered, 200)?;
    let answer = from.recv_response(&msg, secs(5))?;
    ensure!(
        answer.status == 200,
        "{via} recipient answered 200, sender got {} {}",
        answer.status,
        answer.reason
    );
    Ok(())
}

#[test]
fn a_tls_user_and_a_wss_user_register_publish_subscribe_and_message() -> Result<()> {
    let tls = TestTls::new()?;
    let herald = Herald::start_tls(&tls, &[])?;
    let tls_addr = herald.tls.context("no TLS listener printed")?;
    let wss_addr = herald.wss.context("no WSS listener printed")?;
    let mut alice = herald.tls_ua("alice", &tls)?;
    let mut bob = herald.wss_ua("bob", &tls)?;
    ensure!(
        alice.peer_certificate() == Some(tls.server_der()),
        "Herald must present the certificate it was given"
    );

    let ok = alice.register(600)?;
    ensure!(ok.status == 200, "REGISTER over TLS: {}", ok.status);
    let ok = bob.register(600)?;
    ensure!(ok.status == 200, "REGISTER over WSS: {}", ok.status);

    // Alice watches Bob: the first NOTIFY comes over her TLS connection,
    // with Herald's Via saying TLS and its Contact reachable over TLS.
    let (mut dialog, first) = alice.watch(&bob.aor(), PRESENCE, 600, secs(5))?;
    ensure!(first.is_offline()?, "Bob has published nothing yet");
    let via = first.request.headers.top_via()?;
    ensure!(via.transport == "TLS", "NOTIFY's Via over TLS: {via}");
    ensure!(
        via.sent_by() == tls_addr.to_string(),
        "NOTIFY sent by Herald's TLS listener {tls_addr}, Via says {via}"
    );
    let contact = first
        .request
        .headers
        .get(&HeaderName::Contact)
        .context("NOTIFY without Contact")?;
    ensure!(
        contact.contains("transport=tls"),
        "Herald's Contact must be reachable over TLS: {contact}"
    );

    // Bob publishes over WSS; Alice hears it over TLS.
    let doc = pidf_tuple(&bob.aor(), "browser", "open", Some("on the web"));
    let published = bob.publish(&doc, 600)?;
    ensure!(
        published.status == 200,
        "PUBLISH over WSS: {}",
        published.status
    );
    let next = alice.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        next.pidf()?.tuples().iter().any(|t| t.id() == "browser"),
        "the NOTIFY over TLS carries Bob's tuple: {}",
        next.body_text()
    );

    // Bob watches Alice over WSS; Alice publishes over TLS.
    let (mut bob_dialog, _) = bob.watch(&alice.aor(), PRESENCE, 600, secs(5))?;
    let doc = pidf_tuple(&alice.aor(), "desk", "open", None);
    ensure!(alice.publish(&doc, 600)?.status == 200);
    let seen = bob.recv_notify(&mut bob_dialog, secs(5))?;
    ensure!(seen.pidf()?.tuples().iter().any(|t| t.id() == "desk"));
    let via = seen.request.headers.top_via()?;
    ensure!(via.transport == "WSS", "NOTIFY's Via over WSS: {via}");

    // MESSAGEs both ways, each over the recipient's own connection.
    message(&mut alice, &mut bob, wss_addr, "WSS", "from TLS to WSS")?;
    message(&mut bob, &mut alice, tls_addr, "TLS", "from WSS to TLS")?;

    alice.expect_nothing(QUIET)?;
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn a_sips_request_uri_is_refused_over_a_plain_hop_and_served_over_tls() -> Result<()> {
    let tls = TestTls::new()?;
    let herald = Herald::start_tls(&tls, &[])?;

    // RFC 3261 §26.2.2: SIPS means TLS on every hop; over UDP and TCP
    // Herald cannot serve it as asked.
    let mut plain = herald.udp_ua("carol")?;
    let req = plain.request(Method::Options, "sips:example.com", "sips:example.com");
    let refused = plain.transact(&req)?;
    ensure!(
        refused.status == 416,
        "sips: over UDP must get 416, got {} {}",
        refused.status,
        refused.reason
    );
    let mut tcp = herald.tcp_ua("carol")?;
    let req = tcp.request(
        Method::Register,
        "sips:example.com",
        "sips:carol@example.com",
    );
    ensure!(
        tcp.transact(&req)?.status == 416,
        "sips: over TCP must get 416"
    );

    // Over TLS: a REGISTER with a sips: Request-URI and a sips: Contact.
    let mut dave = herald.tls_ua("dave", &tls)?;
    let contact = format!("sips:dave@{}", dave.local_addr());
    let mut req = dave.request(
        Method::Register,
        "sips:example.com",
        "sips:dave@example.com",
    );
    req.headers
        .push(HeaderName::Contact, format!("<{contact}>"));
    req.headers.push(HeaderName::Expires, "600");
    let ok = dave.transact(&req)?;
    ensure!(
        ok.status == 200,
        "REGISTER of a sips: contact over TLS: {} {}",
        ok.status,
        ok.reason
    );
    ensure!(
        ok.headers
            .get_all(&HeaderName::Contact)
            .any(|c| c.contains(&contact)),
        "the binding must be the sips: contact"
    );

    // A MESSAGE to him arrives over his TLS connection.
    let mut erin = herald.tls_ua("erin", &tls)?;
    let msg = erin.message_request("sips:dave@example.com", "text/plain", "secure hello");
    erin.send(&msg)?;
    let got = dave.recv_request(&Method::Message, secs(5))?;
    ensure!(&got.body[..] == b"secure hello");
    ensure!(got.headers.top_via()?.transport == "TLS");
    dave.respond(&got, 200)?;
    ensure!(erin.recv_response(&msg, secs(5))?.status == 200);
    Ok(())
}
