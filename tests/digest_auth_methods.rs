//! With --realm, REGISTER, PUBLISH, SUBSCRIBE and MESSAGE need digest
//! (RFC 3261 §22 with RFC 8760): REGISTER is challenged with 401 and
//! WWW-Authenticate, the others with 407 and Proxy-Authenticate, each
//! offering SHA-256 then MD5 with qop=auth. Answered with either
//! algorithm, over UDP and TCP, the requests then go through; OPTIONS
//! stays open; the credentials are not forwarded with a MESSAGE.

use anyhow::{ensure, Context, Result};
use herald_tests::{start_with_auth, CredentialsFile, QUIET};
use sip::{HeaderName, Method};
use testkit::presence::{basic_by_tuple, pidf_tuple, RequestExt, PIDF, PRESENCE};
use testkit::{challenges, secs, HeraldProcess, Transport, Ua};

fn users() -> Result<CredentialsFile> {
    CredentialsFile::with_users(&[("alice", "alice-pw"), ("bob", "bob-pw")])
}

#[test]
fn challenges_offer_sha256_then_md5_and_options_stays_open() -> Result<()> {
    let creds = users()?;
    let herald = start_with_auth(&creds, &[])?;
    let mut alice = herald.udp_ua("alice")?;

    let r = alice.register(600)?;
    ensure!(
        r.status == 401,
        "REGISTER without credentials: {}",
        r.status
    );
    let offered = challenges(&r);
    let algorithms: Vec<&str> = offered.iter().map(|c| c.algorithm.as_str()).collect();
    ensure!(
        algorithms == ["SHA-256", "MD5"],
        "RFC 8760 §2.4: SHA-256 first, got {algorithms:?}"
    );
    for c in &offered {
        ensure!(c.realm == "example.com" && c.qop.as_deref() == Some("auth") && !c.stale);
    }
    ensure!(offered[0].nonce == offered[1].nonce, "one nonce for both");

    let publish = alice.publish_request(Some(600));
    let r = alice.transact(&publish)?;
    ensure!(r.status == 407, "PUBLISH without credentials: {}", r.status);
    ensure!(
        challenges(&r).len() == 2,
        "Proxy-Authenticate per algorithm: {r:?}"
    );
    ensure!(!r.headers.contains(&HeaderName::WwwAuthenticate));

    ensure!(
        alice.options()?.status == 200,
        "OPTIONS needs no credentials"
    );
    Ok(())
}

/// Alice registers, publishes and messages Bob; Bob registers and
/// watches Alice; every request answered with `algorithm`.
fn all_methods<A: Transport, B: Transport>(
    alice: &mut Ua<A>,
    bob: &mut Ua<B>,
    algorithm: &str,
) -> Result<()> {
    let req = alice.register_request(Some(600));
    let (_, r) = alice.transact_digest(&req, "alice-pw", algorithm)?;
    ensure!(
        r.status == 200,
        "alice REGISTER with {algorithm}: {}",
        r.status
    );
    let req = bob.register_request(Some(600));
    let (_, r) = bob.transact_digest(&req, "bob-pw", algorithm)?;
    ensure!(
        r.status == 200,
        "bob REGISTER with {algorithm}: {}",
        r.status
    );

    let entity = alice.aor();
    let req = alice
        .publish_request(Some(600))
        .with_body(PIDF, pidf_tuple(&entity, "t1", "open", None));
    let (_, r) = alice.transact_digest(&req, "alice-pw", algorithm)?;
    ensure!(r.status == 200, "PUBLISH with {algorithm}: {}", r.status);

    let req = bob.subscribe_request(&entity, PRESENCE, Some(600));
    let (sent, r) = bob.transact_digest(&req, "bob-pw", algorithm)?;
    ensure!(r.status == 200, "SUBSCRIBE with {algorithm}: {}", r.status);
    let mut dialog = testkit::presence::Dialog::from_exchange(&sent, &r)?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    let tuples = basic_by_tuple(&n.pidf()?);
    ensure!(
        tuples.get("t1").is_some_and(|b| b.is_some()),
        "the watcher sees the authenticated publication: {tuples:?}"
    );

    let req = alice.message_request(&bob.aor(), "text/plain", "authenticated hello");
    let first = alice.transact(&req)?;
    ensure!(
        first.status == 407,
        "MESSAGE without credentials: {}",
        first.status
    );
    let c = challenges(&first)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .context("challenge")?;
    let value = testkit::authorization(&c, "alice", "alice-pw", "MESSAGE", &req.uri.to_string(), 1);
    let again = alice.with_credentials(&req, 407, &value);
    alice.send(&again)?;
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    ensure!(
        !delivered.headers.contains(&HeaderName::ProxyAuthorization)
            && !delivered.headers.contains(&HeaderName::Authorization),
        "credentials are for Herald, not for the recipient"
    );
    ensure!(delivered.body.as_ref() == b"authenticated hello");
    bob.respond(&delivered, 200)?;
    let r = alice.recv_response(&again, secs(5))?;
    ensure!(r.status == 200, "MESSAGE with {algorithm}: {}", r.status);
    bob.expect_nothing(QUIET)?;
    Ok(())
}

fn run_udp(herald: &HeraldProcess, algorithm: &str) -> Result<()> {
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    all_methods(&mut alice, &mut bob, algorithm)
}

fn run_tcp(herald: &HeraldProcess, algorithm: &str) -> Result<()> {
    let mut alice = herald.tcp_ua("alice")?;
    let mut bob = herald.tcp_ua("bob")?;
    all_methods(&mut alice, &mut bob, algorithm)
}

#[test]
fn udp_sha256() -> Result<()> {
    let creds = users()?;
    run_udp(&start_with_auth(&creds, &[])?, "SHA-256")
}

#[test]
fn udp_md5() -> Result<()> {
    let creds = users()?;
    run_udp(&start_with_auth(&creds, &[])?, "MD5")
}

#[test]
fn tcp_sha256() -> Result<()> {
    let creds = users()?;
    run_tcp(&start_with_auth(&creds, &[])?, "SHA-256")
}

#[test]
fn tcp_md5() -> Result<()> {
    let creds = users()?;
    run_tcp(&start_with_auth(&creds, &[])?, "MD5")
}
