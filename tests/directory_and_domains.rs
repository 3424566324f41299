//! What an operator restricts: `--user` provisions a directory (other
//! addresses get 404, RFC 3261 §21.4.5) and `--domain` limits the domains
//! served (others get 404, §10.3 step 1). The open default serves anyone.

use anyhow::Result;
use herald_tests::QUIET;
use testkit::{Herald, Ua};

#[test]
fn provisioned_directory_refuses_unknown_users() -> Result<()> {
    let herald = Herald::start(&["--user", "alice@example.com", "--user", "bob@example.com"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    let mut mallory = herald.udp_ua("mallory")?;

    // A known user registers; an unknown one cannot.
    assert_eq!(bob.register(3600)?.status, 200);
    assert_eq!(mallory.register(3600)?.status, 404);

    // A MESSAGE to an unknown user is 404, not stored.
    let to_nobody = alice.message_request("sip:nobody@example.com", "text/plain", "hi");
    assert_eq!(alice.transact(&to_nobody)?.status, 404);

    // A known user still gets messages.
    let msg = alice.message_request(&bob.aor(), "text/plain", "hi bob");
    alice.send(&msg)?;
    let delivered = bob.recv_request(&sip::Method::Message, testkit::secs(5))?;
    bob.respond(&delivered, 200)?;
    assert_eq!(alice.recv_response(&msg, testkit::secs(5))?.status, 200);
    Ok(())
}

#[test]
fn domain_restriction_refuses_other_domains() -> Result<()> {
    let herald = Herald::start(&["--domain", "example.com"])?;
    let mut inside: Ua<_> = herald.udp_ua("carol")?;
    let mut outside = herald.udp_ua("dave")?.with_domain("elsewhere.org");

    assert_eq!(inside.register(3600)?.status, 200);
    assert_eq!(outside.register(3600)?.status, 404);

    let msg = inside.message_request("sip:erin@elsewhere.org", "text/plain", "hello");
    assert_eq!(inside.transact(&msg)?.status, 404);
    // A served domain with nobody online stores the message.
    let msg = inside.message_request("sip:erin@example.com", "text/plain", "hello");
    assert_eq!(inside.transact(&msg)?.status, 202);
    outside.expect_nothing(QUIET)?;
    Ok(())
}
