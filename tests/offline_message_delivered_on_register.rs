//! Store and forward (DESIGN.md §1, RFC 3428 §7 leaves it to the
//! server): a MESSAGE to a user with no binding is accepted with 202 and
//! kept; when the user next registers, every kept message is delivered,
//! in the order it was sent, exactly once.

use anyhow::{ensure, Result};
use herald_tests::QUIET;
use sip::{HeaderName, Method, Request};
use testkit::{secs, Herald, Transport, Ua};

/// Takes `n` MESSAGEs delivered to `ua`, answering each with 200.
fn take_messages<T: Transport>(ua: &mut Ua<T>, n: usize) -> Result<Vec<Request>> {
    let mut got = Vec::new();
    for i in 0..n {
        let req = ua
            .recv_request(&Method::Message, secs(5))
            .map_err(|e| e.context(format!("stored message {} of {n} not delivered", i + 1)))?;
        ua.respond(&req, 200)?;
        got.push(req);
    }
    Ok(got)
}

fn body(req: &Request) -> String {
    String::from_utf8_lossy(&req.body).into_owned()
}

fn check_from_alice(req: &Request, alice_aor: &str) -> Result<()> {
    let from = req.headers.from_addr()?;
    ensure!(
        from.uri.to_string() == alice_aor,
        "a stored message must still say who sent it: From {from}"
    );
    ensure!(
        req.headers.get(&HeaderName::ContentType).map(str::trim) == Some("text/plain"),
        "Content-Type changed: {:?}",
        req.headers.get(&HeaderName::ContentType)
    );
    Ok(())
}

#[test]
fn two_messages_to_offline_user_arrive_in_order_once_on_register() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;

    for text in ["first, while you were away", "second, still away"] {
        let msg = alice.message_request(&bob.aor(), "text/plain", text);
        let r = alice.transact(&msg)?;
        assert_eq!(
            r.status, 202,
            "no contact for bob: stored and 202 Accepted, got {} {}",
            r.status, r.reason
        );
    }
    // Nothing reaches Bob's socket while he is not registered.
    bob.expect_nothing(QUIET)?;

    assert_eq!(bob.register(3600)?.status, 200);
    let got = take_messages(&mut bob, 2)?;
    assert_eq!(
        got.iter().map(body).collect::<Vec<_>>(),
        ["first, while you were away", "second, still away"]
    );
    for m in &got {
        check_from_alice(m, &alice.aor())?;
    }
    bob.expect_nothing(QUIET)?;

    // A refresh is a registration too: nothing is delivered twice.
    assert_eq!(bob.register(3600)?.status, 200);
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn stored_messages_follow_a_tcp_registration() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;

    let bob_aor = "sip:bob@example.com";
    for i in 0..3 {
        let msg = alice.message_request(bob_aor, "text/plain", &format!("note {i}"));
        assert_eq!(alice.transact(&msg)?.status, 202);
    }

    let mut bob = herald.tcp_ua("bob")?;
    assert_eq!(bob.aor(), bob_aor);
    assert_eq!(bob.register(3600)?.status, 200);
    let got = take_messages(&mut bob, 3)?;
    assert_eq!(
        got.iter().map(body).collect::<Vec<_>>(),
        ["note 0", "note 1", "note 2"]
    );
    bob.expect_nothing(QUIET)?;
    Ok(())
}

#[test]
fn stored_messages_are_not_delivered_to_someone_else() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut carol = herald.udp_ua("carol")?;

    let msg = alice.message_request("sip:bob@example.com", "text/plain", "for bob only");
    assert_eq!(alice.transact(&msg)?.status, 202);

    assert_eq!(carol.register(3600)?.status, 200);
    carol.expect_nothing(QUIET)?;

    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);
    let got = take_messages(&mut bob, 1)?;
    assert_eq!(body(&got[0]), "for bob only");
    Ok(())
}
