//! Digest (RFC 3261 §22 with RFC 8760) on the secure transports: over SIP
//! over TLS with SHA-256 and over SIP over secure WebSocket with MD5,
//! REGISTER, PUBLISH, SUBSCRIBE and MESSAGE are challenged, answered and
//! served, and what Herald sends back (NOTIFY, the relayed MESSAGE) comes
//! over the connection the user opened. Nonce checks hold there too: an
//! expired nonce gets stale=true (RFC 7616 §3.3) and a new one works; a
//! nonce-count seen before is refused (RFC 7616 §3.4), never served.

use anyhow::{bail, ensure, Context, Result};
use herald_tests::{CredentialsFile, QUIET};
use sip::{HeaderName, Method, Request};
use testkit::presence::{basic_by_tuple, etag, pidf_tuple, Dialog, RequestExt, PIDF, PRESENCE};
use testkit::{
    authorization, challenges, eventually, secs, DigestChallenge, Herald, HeraldProcess, TestTls,
    Transport, Ua,
};

fn users() -> Result<CredentialsFile> {
    CredentialsFile::with_users(&[("alice", "alice-pw"), ("bob", "bob-pw")])
}

/// Herald with TLS and WSS listeners, requiring digest against `creds`.
fn start(tls: &TestTls, creds: &CredentialsFile, extra: &[&str]) -> Result<HeraldProcess> {
    let args = creds.args();
    let mut argv: Vec<&str> = args.iter().map(String::as_str).collect();
    argv.extend_from_slice(extra);
    Herald::start_tls(tls, &argv)
}

/// The `algorithm` challenge of a 401/407 that must have come.
fn challenge_in(resp: &sip::Response, status: u16, algorithm: &str) -> Result<DigestChallenge> {
    ensure!(
        resp.status == status,
        "expected a {status} challenge, got {} {}",
        resp.status,
        resp.reason
    );
    challenges(resp)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .with_context(|| format!("no {algorithm} challenge in {resp:?}"))
}

/// Alice registers, publishes and writes to Bob; Bob registers and
/// watches Alice; every request answered with `algorithm`. The NOTIFY and
/// the MESSAGE reach Bob over his own connection, Herald's Via naming
/// `transport`.
fn all_methods<T: Transport>(
    alice: &mut Ua<T>,
    bob: &mut Ua<T>,
    algorithm: &str,
    transport: &str,
) -> Result<()> {
    for (ua, password) in [(&mut *alice, "alice-pw"), (&mut *bob, "bob-pw")] {
        let req = ua.register_request(Some(600));
        let (_, r) = ua.transact_digest(&req, password, algorithm)?;
        ensure!(
            r.status == 200,
            "{} REGISTER over {transport} with {algorithm}: {} {}",
            ua.user(),
            r.status,
            r.reason
        );
    }

    let entity = alice.aor();
    let req = alice
        .publish_request(Some(600))
        .with_body(PIDF, pidf_tuple(&entity, "t1", "open", None));
    let (_, r) = alice.transact_digest(&req, "alice-pw", algorithm)?;
    ensure!(
        r.status == 200,
        "PUBLISH over {transport} with {algorithm}: {}",
        r.status
    );

    let req = bob.subscribe_request(&entity, PRESENCE, Some(600));
    let (sent, r) = bob.transact_digest(&req, "bob-pw", algorithm)?;
    ensure!(
        r.status == 200,
        "SUBSCRIBE over {transport} with {algorithm}: {}",
        r.status
    );
    let mut dialog = Dialog::from_exchange(&sent, &r)?;
    let n = bob.recv_notify(&mut dialog, secs(5))?;
    let via = n.request.headers.top_via()?;
    ensure!(
        via.transport == transport,
        "the NOTIFY comes over the watcher's {transport} connection: {via}"
    );
    let tuples = basic_by_tuple(&n.pidf()?);
    ensure!(
        tuples.get("t1").is_some_and(|b| b.is_some()),
        "the watcher sees the authenticated publication: {tuples:?}"
    );

    let req = alice.message_request(&bob.aor(), "text/plain", "secure hello");
    let first = alice.transact(&req)?;
    let c = challenge_in(&first, 407, algorithm)?;
    let value = authorization(&c, "alice", "alice-pw", "MESSAGE", &req.uri.to_string(), 1);
    let again = alice.with_credentials(&req, 407, &value);
    alice.send(&again)?;
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    ensure!(delivered.body.as_ref() == b"secure hello");
    ensure!(
        delivered.headers.top_via()?.transport == transport,
        "the MESSAGE comes over the recipient's {transport} connection"
    );
    ensure!(
        !delivered.headers.contains(&HeaderName::ProxyAuthorization),
        "credentials are for Herald, not for the recipient"
    );
    bob.respond(&delivered, 200)?;
    let r = alice.recv_response(&again, secs(5))?;
    ensure!(
        r.status == 200,
        "MESSAGE over {transport} with {algorithm}: {}",
        r.status
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn tls_with_sha256_register_publish_subscribe_message() -> Result<()> {
    let tls = TestTls::new()?;
    let creds = users()?;
    let herald = start(&tls, &creds, &[])?;
    let mut alice = herald.tls_ua("alice", &tls)?;
    let mut bob = herald.tls_ua("bob", &tls)?;
    all_methods(&mut alice, &mut bob, "SHA-256", "TLS")
}

#[test]
fn wss_with_md5_register_publish_subscribe_message() -> Result<()> {
    let tls = TestTls::new()?;
    let creds = users()?;
    let herald = start(&tls, &creds, &[])?;
    let mut alice = herald.wss_ua("alice", &tls)?;
    let mut bob = herald.wss_ua("bob", &tls)?;
    all_methods(&mut alice, &mut bob, "MD5", "WSS")
}

/// `base` again as a new transaction, answering `challenge` (from a
/// `status` response) as Alice with nonce-count `nc`.
fn answered<T: Transport>(
    ua: &mut Ua<T>,
    base: &Request,
    status: u16,
    challenge: &DigestChallenge,
    nc: u32,
) -> Request {
    let value = authorization(
        challenge,
        "alice",
        "alice-pw",
        base.method.as_str(),
        &base.uri.to_string(),
        nc,
    );
    ua.with_credentials(base, status, &value)
}

#[test]
fn over_tls_an_expired_nonce_is_stale_then_a_new_one_succeeds() -> Result<()> {
    let tls = TestTls::new()?;
    let creds = users()?;
    let herald = start(&tls, &creds, &["--nonce-lifetime", "1"])?;
    let mut alice = herald.tls_ua("alice", &tls)?;

    // A PUBLISH, challenged with 407, then refreshed (RFC 3903 §4.2, so
    // one publication only) until its nonce is over a second old: that
    // answer gets a fresh, stale-marked challenge.
    let entity = alice.aor();
    let initial = alice
        .publish_request(Some(600))
        .with_body(PIDF, pidf_tuple(&entity, "t1", "open", None));
    let first = alice.transact(&initial)?;
    let old = challenge_in(&first, 407, "SHA-256")?;
    ensure!(!old.stale, "a first challenge is not stale");

    let mut nc = 0;
    let mut tag: Option<String> = None;
    let next = |alice: &mut Ua<_>, tag: &Option<String>| match tag {
        None => initial.clone(),
        Some(t) => alice
            .publish_request(Some(600))
            .with_header(HeaderName::SipIfMatch, t.as_str()),
    };
    let stale = eventually(secs(10), "the nonce to go stale", || {
        nc += 1;
        let base = next(&mut alice, &tag);
        let req = answered(&mut alice, &base, 407, &old, nc);
        let r = alice.transact(&req)?;
        match r.status {
            200 => {
                tag = Some(etag(&r)?);
                Ok(None)
            }
            407 => Ok(Some(r)),
            other => bail!("unexpected {other} {}", r.reason),
        }
    })?;
    ensure!(tag.is_some(), "the old nonce worked before it went stale");
    let fresh = challenges(&stale);
    ensure!(
        fresh.len() == 2 && fresh.iter().all(|c| c.stale),
        "a right answer with an old nonce gets stale=true: {fresh:?}"
    );
    let fresh = challenge_in(&stale, 407, "SHA-256")?;
    ensure!(fresh.nonce != old.nonce, "with a new nonce");
    let base = next(&mut alice, &tag);
    let req = answered(&mut alice, &base, 407, &fresh, 1);
    let r = alice.transact(&req)?;
    ensure!(
        r.status == 200,
        "the new nonce works over TLS: {} {}",
        r.status,
        r.reason
    );
    Ok(())
}

#[test]
fn over_wss_a_replayed_nonce_count_is_refused() -> Result<()> {
    let tls = TestTls::new()?;
    let creds = users()?;
    let herald = start(&tls, &creds, &[])?;
    let mut alice = herald.wss_ua("alice", &tls)?;

    let base = alice.register_request(Some(600));
    let first = alice.transact(&base)?;
    let c = challenge_in(&first, 401, "MD5")?;
    let req = answered(&mut alice, &base, 401, &c, 1);
    let r = alice.transact(&req)?;
    ensure!(r.status == 200, "nc=1 over WSS: {} {}", r.status, r.reason);

    // The same Authorization in a new transaction: a replay.
    let header = req
        .headers
        .get(&HeaderName::Authorization)
        .context("credentials")?
        .to_string();
    let replay = alice.with_credentials(&base, 401, &header);
    let r = alice.transact(&replay)?;
    ensure!(r.status == 401, "replayed nc=1 over WSS: {}", r.status);
    ensure!(
        challenges(&r).iter().all(|c| !c.stale),
        "a replay is not a stale nonce"
    );

    // A lower count is a replay too; a higher one is fine.
    let req = answered(&mut alice, &base, 401, &c, 3);
    let r = alice.transact(&req)?;
    ensure!(r.status == 200, "nc=3 over WSS: {}", r.status);
    let req = answered(&mut alice, &base, 401, &c, 2);
    let r = alice.transact(&req)?;
    ensure!(r.status == 401, "nc=2 after 3 over WSS: {}", r.status);
    Ok(())
}
