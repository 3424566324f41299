//! An authenticated user acts only as itself: a REGISTER for another To,
//! a PUBLISH for another presentity, a SUBSCRIBE or MESSAGE with another
//! From are refused with 403 and change nothing (RFC 3261 §22.1 leaves the
//! policy to the server; services get the identity from the edge, never
//! from a header the client wrote).

use anyhow::{ensure, Result};
use herald_tests::{start_with_auth, CredentialsFile, QUIET};
use sip::HeaderName;
use testkit::presence::{pidf_tuple, Dialog, RequestExt, PIDF, PRESENCE};
use testkit::secs;

#[test]
fn publishing_for_someone_else_is_403_and_stores_nothing() -> Result<()> {
    let creds = CredentialsFile::with_users(&[
        ("alice", "alice-pw"),
        ("bob", "bob-pw"),
        ("carol", "carol-pw"),
    ])?;
    let herald = start_with_auth(&creds, &[])?;
    let mut alice = herald.udp_ua("alice")?;
    let bob = herald.udp_ua("bob")?;
    let mut carol = herald.udp_ua("carol")?;

    // Alice, with her own valid credentials, publishes "open" for Bob.
    let forged = alice
        .request(sip::Method::Publish, &bob.aor(), &bob.aor())
        .with_header(HeaderName::Event, PRESENCE)
        .with_header(HeaderName::Expires, "600")
        .with_body(PIDF, pidf_tuple(&bob.aor(), "forged", "open", None));
    let (_, r) = alice.transact_digest(&forged, "alice-pw", "SHA-256")?;
    ensure!(r.status == 403, "PUBLISH for bob as alice: {}", r.status);

    // Carol watching Bob sees no state at all.
    let req = carol.subscribe_request(&bob.aor(), PRESENCE, Some(600));
    let (sent, r) = carol.transact_digest(&req, "carol-pw", "MD5")?;
    ensure!(r.status == 200, "carol SUBSCRIBE: {}", r.status);
    let mut dialog = Dialog::from_exchange(&sent, &r)?;
    let n = carol.recv_notify(&mut dialog, secs(5))?;
    ensure!(
        !n.body_text().contains("forged"),
        "nothing of the refused PUBLISH was stored: {}",
        n.body_text()
    );
    carol.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn register_subscribe_and_message_as_someone_else_are_403() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw"), ("bob", "bob-pw")])?;
    let herald = start_with_auth(&creds, &[])?;
    let mut alice = herald.tcp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    // REGISTER with To bob, answered with alice's credentials.
    let mut req = alice.register_request(Some(600));
    req.headers.set(HeaderName::To, format!("<{}>", bob.aor()));
    let (_, r) = alice.transact_digest(&req, "alice-pw", "SHA-256")?;
    ensure!(r.status == 403, "REGISTER for bob as alice: {}", r.status);
    let req = bob.fetch_bindings_request();
    let (_, r) = bob.transact_digest(&req, "bob-pw", "SHA-256")?;
    ensure!(r.status == 200, "bob fetches his bindings: {}", r.status);
    ensure!(
        !r.headers.contains(&HeaderName::Contact),
        "no binding for bob came from alice's REGISTER: {r:?}"
    );

    // SUBSCRIBE and MESSAGE with From bob.
    let bob_from = format!("<{}>;tag=forged", bob.aor());
    let req = alice
        .subscribe_request(&alice.aor(), PRESENCE, Some(600))
        .set_header(HeaderName::From, bob_from.clone());
    let (_, r) = alice.transact_digest(&req, "alice-pw", "SHA-256")?;
    ensure!(r.status == 403, "SUBSCRIBE as bob: {}", r.status);

    let req = alice
        .message_request(&bob.aor(), "text/plain", "from 'bob'")
        .set_header(HeaderName::From, bob_from);
    let (_, r) = alice.transact_digest(&req, "alice-pw", "MD5")?;
    ensure!(r.status == 403, "MESSAGE as bob: {}", r.status);
    bob.expect_nothing(QUIET)?;
    Ok(())
}
