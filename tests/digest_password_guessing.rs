//! Scanners and password guessing (sipvicious svwar/svcrack style): an
//! unknown user is answered exactly like a known one, with credentials or
//! without; wrong answers from one address are cut off after
//! --auth-max-failures with 403 and Retry-After, even the right password
//! from there, while the real user from another address still gets in.

use std::collections::BTreeSet;
use std::net::SocketAddr;

use anyhow::{ensure, Result};
use herald_tests::{start_with_auth, CredentialsFile};
use sip::{HeaderName, Response};
use testkit::{challenges, UdpUa};

/// The header names of a response, with their counts.
fn header_set(r: &Response) -> Vec<(String, usize)> {
    let names: BTreeSet<String> = r
        .headers
        .iter()
        .map(|h| h.name.as_str().to_string())
        .collect();
    names
        .into_iter()
        .map(|n| {
            let count = r.headers.iter().filter(|h| h.name.as_str() == n).count();
            (n, count)
        })
        .collect()
}

/// The WWW-Authenticate values with the nonce blanked.
fn challenge_shape(r: &Response) -> Vec<String> {
    challenges(r)
        .into_iter()
        .map(|c| format!("{} {} {:?} {}", c.realm, c.algorithm, c.qop, c.stale))
        .collect()
}

fn same_answer(known: &Response, unknown: &Response, what: &str) -> Result<()> {
    ensure!(
        known.status == unknown.status && known.reason == unknown.reason,
        "{what}: {} {} for a known user, {} {} for an unknown one",
        known.status,
        known.reason,
        unknown.status,
        unknown.reason
    );
    ensure!(
        header_set(known) == header_set(unknown),
        "{what}: headers differ: {:?} vs {:?}",
        header_set(known),
        header_set(unknown)
    );
    ensure!(
        challenge_shape(known) == challenge_shape(unknown),
        "{what}: challenges differ"
    );
    Ok(())
}

#[test]
fn an_unknown_user_is_answered_like_a_known_one() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw")])?;
    let herald = start_with_auth(&creds, &[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut nobody = herald.udp_ua("nobody")?;

    let known = alice.register(600)?;
    let unknown = nobody.register(600)?;
    ensure!(known.status == 401);
    same_answer(&known, &unknown, "REGISTER without credentials")?;

    // A wrong password for alice and any password for nobody.
    let req = alice.register_request(Some(600));
    let (_, known) = alice.transact_digest(&req, "guess", "MD5")?;
    let req = nobody.register_request(Some(600));
    let (_, unknown) = nobody.transact_digest(&req, "guess", "MD5")?;
    ensure!(known.status == 401);
    same_answer(&known, &unknown, "REGISTER with a wrong answer")?;
    Ok(())
}

#[test]
fn guessing_is_cut_off_while_the_real_user_gets_in_from_elsewhere() -> Result<()> {
    let creds = CredentialsFile::with_users(&[("alice", "alice-pw")])?;
    let herald = start_with_auth(
        &creds,
        &["--auth-max-failures", "4", "--auth-backoff", "600"],
    )?;
    let mut attacker = herald.udp_ua("alice")?;

    let mut refused_after = None;
    for (i, guess) in ["123456", "password", "alice", "qwerty", "letmein", "alice1"]
        .iter()
        .enumerate()
    {
        let req = attacker.register_request(Some(600));
        let (_, r) = attacker.transact_digest(&req, guess, "SHA-256")?;
        match r.status {
            401 => {}
            403 => {
                ensure!(
                    r.headers.get(&HeaderName::RetryAfter).is_some(),
                    "a back-off says when to come back"
                );
                ensure!(
                    !r.headers.contains(&HeaderName::WwwAuthenticate),
                    "no new challenge while backed off"
                );
                refused_after = Some(i);
                break;
            }
            other => anyhow::bail!("guess {i}: {other}"),
        }
    }
    ensure!(
        refused_after == Some(3),
        "the fourth wrong answer (index 3) ends the guessing with 403: {refused_after:?}"
    );

    // The right password from the guessing address: refused too.
    let req = attacker.register_request(Some(600));
    let r = attacker.transact(&req)?;
    ensure!(
        r.status == 403,
        "backed-off address, no credentials: {}",
        r.status
    );

    // Alice herself, from another address (127.0.0.2 on the loopback).
    let mut alice = UdpUa::bind_at("alice", SocketAddr::from(([127, 0, 0, 2], 0)), herald.udp)?;
    let req = alice.register_request(Some(600));
    let (_, r) = alice.transact_digest(&req, "alice-pw", "SHA-256")?;
    ensure!(r.status == 200, "alice from elsewhere: {}", r.status);
    Ok(())
}
