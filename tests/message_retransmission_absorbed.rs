//! RFC 3261 §17.2.2: over UDP a client retransmits a request until it
//! hears a final response; the server transaction absorbs the copies and
//! answers a copy that arrives after the final response with that same
//! response. So one MESSAGE sent twice is delivered once.

use anyhow::{ensure, Result};
use herald_tests::QUIET;
use sip::Method;
use testkit::{millis, secs, Herald, Received, UdpUa};

/// The next final response whose top Via has `branch`, with its bytes.
fn final_response(ua: &mut UdpUa, branch: &str) -> Result<Received> {
    ua.next_where(secs(5), "a final response", |r| {
        r.response().is_some_and(|resp| {
            resp.is_final()
                && resp
                    .headers
                    .top_via()
                    .ok()
                    .is_some_and(|v| v.branch() == Some(branch))
        })
    })
}

#[test]
fn copy_after_the_final_response_gets_the_same_response_and_no_delivery() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    let msg = alice.message_request(&bob.aor(), "text/plain", "say it once");
    let branch = msg
        .headers
        .top_via()?
        .branch()
        .unwrap_or_default()
        .to_string();
    let bytes = msg.to_bytes();

    alice.send_raw(&bytes)?;
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    bob.respond(&delivered, 200)?;
    let first = final_response(&mut alice, &branch)?;
    assert_eq!(first.response().map(|r| r.status), Some(200));

    // The same datagram again, as Alice's transaction would retransmit it.
    alice.send_raw(&bytes)?;
    let second = final_response(&mut alice, &branch)?;
    ensure!(
        second.raw == first.raw,
        "a retransmission must get the same final response again:\nfirst:\n{}\nsecond:\n{}",
        testkit::escape_bytes(&first.raw),
        testkit::escape_bytes(&second.raw)
    );

    // Bob saw one MESSAGE and nothing after it, not even a copy with the
    // same branch: Herald's client transaction toward Bob was complete.
    bob.expect_nothing(QUIET)?;
    ensure!(
        bob.absorbed_retransmissions() == 0,
        "Herald forwarded Alice's retransmission to Bob ({} copies)",
        bob.absorbed_retransmissions()
    );
    alice.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn copy_while_the_recipient_has_not_answered_is_absorbed() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    let msg = alice.message_request(&bob.aor(), "text/plain", "twice on the wire");
    let branch = msg
        .headers
        .top_via()?
        .branch()
        .unwrap_or_default()
        .to_string();
    let bytes = msg.to_bytes();
    alice.send_raw(&bytes)?;
    alice.send_raw(&bytes)?;

    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    // A second transaction toward Bob would show here as a new request;
    // Herald's own retransmissions (same branch) are absorbed by Bob's
    // agent and are not a second delivery.
    bob.expect_nothing(QUIET)?;
    bob.respond(&delivered, 200)?;

    let answer = final_response(&mut alice, &branch)?;
    assert_eq!(answer.response().map(|r| r.status), Some(200));
    // One final response: the copy arrived while the transaction was still
    // proceeding, when there was nothing final to repeat.
    let more_finals = alice.next_where(millis(700), "another final response", |r| {
        r.response().is_some_and(|resp| resp.is_final())
    });
    ensure!(
        more_finals.is_err(),
        "a second final response: {:?}",
        more_finals.ok().map(|r| r.message)
    );
    Ok(())
}

#[test]
fn copy_of_a_stored_message_is_stored_once() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;

    let msg = alice.message_request("sip:bob@example.com", "text/plain", "keep me once");
    let branch = msg
        .headers
        .top_via()?
        .branch()
        .unwrap_or_default()
        .to_string();
    let bytes = msg.to_bytes();

    alice.send_raw(&bytes)?;
    let first = final_response(&mut alice, &branch)?;
    assert_eq!(first.response().map(|r| r.status), Some(202));
    alice.send_raw(&bytes)?;
    let second = final_response(&mut alice, &branch)?;
    ensure!(
        second.raw == first.raw,
        "the retransmission must get the same 202 again:\nfirst:\n{}\nsecond:\n{}",
        testkit::escape_bytes(&first.raw),
        testkit::escape_bytes(&second.raw)
    );

    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    assert_eq!(&delivered.body[..], b"keep me once");
    bob.respond(&delivered, 200)?;
    bob.expect_nothing(QUIET)?;
    Ok(())
}
