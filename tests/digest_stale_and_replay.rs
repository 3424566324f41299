//! Nonces age out and counts must rise (RFC 7616 §3.3 and §3.4, RFC 3261
//! §22.4): a right answer with an expired nonce gets a new challenge with
//! stale=true, which the client answers without asking its user again; a
//! request whose nonce-count was seen before for that nonce is refused
//! with a new challenge, never served.

use anyhow::{ensure, Context, Result};
use herald_tests::{start_with_auth, CredentialsFile};
use testkit::{authorization, challenges, eventually, secs, DigestChallenge, Transport, Ua};

fn challenge_of<T: Transport>(ua: &mut Ua<T>, algorithm: &str) -> Result<DigestChallenge> {
    let r = ua.fetch_bindings()?;
    ensure!(
        r.status == 401,
        "REGISTER without credentials: {}",
        r.status
    );
    challenges(&r)
        .into_iter()
        .find(|c| c.algorithm == algorithm)
        .context("a challenge for the algorithm")
}

/// A REGISTER of `ua` answering `challenge` with nonce-count `nc`.
fn answered<T: Transport>(ua: &mut Ua<T>, challenge: &DigestChallenge, nc: u32) -> sip::Request {
    let req = ua.register_request(Some(600));
    let value = authorization(
        challenge,
        "alice",
        "alice-pw",
        "REGISTER",
        &req.uri.to_string(),
        nc,
    );
    ua.with_credentials(&req, 401, &value)
}

#[test]
fn an_expired_nonce_is_stale_then_a_new_one_succeeds() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw")])?;
    let herald = start_with_auth(&creds, &["--nonce-lifetime", "1"])?;
    let mut alice = herald.udp_ua("alice")?;
    let old = challenge_of(&mut alice, "SHA-256")?;

    // Good until it is over a second old, then stale.
    let mut nc = 0;
    let stale = eventually(secs(10), "the nonce to go stale", || {
        nc += 1;
        let req = answered(&mut alice, &old, nc);
        let r = alice.transact(&req)?;
        match r.status {
            200 => Ok(None),
            401 => Ok(Some(r)),
            other => anyhow::bail!("unexpected {other}"),
        }
    })?;
    let fresh = challenges(&stale);
    ensure!(
        fresh.len() == 2 && fresh.iter().all(|c| c.stale),
        "a right answer with an old nonce gets stale=true: {fresh:?}"
    );
    ensure!(fresh[0].nonce != old.nonce, "with a new nonce");
    let req = answered(&mut alice, &fresh[0], 1);
    let r = alice.transact(&req)?;
    ensure!(r.status == 200, "the new nonce works: {}", r.status);
    Ok(())
}

#[test]
fn a_replayed_nonce_count_is_refused() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw")])?;
    let herald = start_with_auth(&creds, &[])?;
    for algorithm in ["SHA-256", "MD5"] {
        let mut alice = herald.tcp_ua("alice")?;
        let c = challenge_of(&mut alice, algorithm)?;
        let first = answered(&mut alice, &c, 1);
        ensure!(alice.transact(&first)?.status == 200, "nc=1 passes");

        // The same Authorization in a new transaction: a replay.
        let header = first
            .headers
            .get(&sip::HeaderName::Authorization)
            .context("credentials")?
            .to_string();
        let base = alice.register_request(Some(600));
        let replay = alice.with_credentials(&base, 401, &header);
        let r = alice.transact(&replay)?;
        ensure!(
            r.status == 401,
            "replayed nc=1 with {algorithm}: {}",
            r.status
        );
        ensure!(
            challenges(&r).iter().all(|c| !c.stale),
            "a replay is not a stale nonce"
        );

        // A lower count is a replay too; the next one up is fine.
        let req = answered(&mut alice, &c, 3);
        let r = alice.transact(&req)?;
        ensure!(r.status == 200, "nc=3: {}", r.status);
        let req = answered(&mut alice, &c, 2);
        let r = alice.transact(&req)?;
        ensure!(r.status == 401, "nc=2 after 3: {}", r.status);
    }
    Ok(())
}
