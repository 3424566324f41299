//! Bad input gets the status RFC 3261 gives it, or is dropped when there
//! is nothing to answer to, and the server goes on serving: after every
//! case Herald still answers an OPTIONS.

use anyhow::{ensure, Result};
use herald_tests::{assert_alive, QUIET};
use sip::{HeaderName, Method, Response};
use testkit::{secs, Herald, RawRequest, UdpUa};

/// Sends a raw request and returns the final response to its branch.
fn answer(ua: &mut UdpUa, raw: &RawRequest) -> Result<Response> {
    ua.send_raw(&raw.to_bytes())?;
    ua.recv_response_to(raw.branch(), "", secs(5))
}

fn options_raw(ua: &mut UdpUa) -> RawRequest {
    let target = format!("sip:{}", ua.server());
    ua.raw_request("OPTIONS", &target, &target)
}

fn allow_lists(resp: &Response, methods: &[&str]) -> Result<()> {
    let allow: Vec<String> = resp
        .headers
        .get_list(&HeaderName::Allow)
        .iter()
        .map(|m| m.trim().to_ascii_uppercase())
        .collect();
    for m in methods {
        ensure!(allow.iter().any(|a| a == m), "Allow {allow:?} lacks {m}");
    }
    Ok(())
}

#[test]
fn bad_start_lines_get_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let target = format!("sip:{}", herald.udp);
    for line in [
        format!("OPTIONS {target}"),               // no version
        format!("OPTIONS {target} SIP/2.0 extra"), // a fourth element
        "OPTIONS  SIP/2.0".to_string(),            // no Request-URI
        format!("OPT IONS {target} SIP/2.0"),
    ] {
        let raw = options_raw(&mut ua).start_line(&line);
        let r = answer(&mut ua, &raw)?;
        assert_eq!(
            r.status, 400,
            "start line {line:?}: {} {}",
            r.status, r.reason
        );
        assert_alive(&mut ua)?;
    }
    Ok(())
}

#[test]
fn unanswerable_garbage_is_dropped() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    for junk in [
        &b"\x00\x01\x02 not SIP at all"[..],
        b"hello\r\n\r\n",
        b"\r\n\r\n",
        b"OPTIONS sip:x SIP/2.0\r\n\r\n", // no Via: nowhere to answer
        &[0xff; 1400],
    ] {
        ua.send_raw(junk)?;
        ua.expect_nothing(QUIET)
            .map_err(|e| e.context(format!("after {}", testkit::escape_bytes(junk))))?;
        assert_alive(&mut ua)?;
    }
    Ok(())
}

#[test]
fn missing_call_id_gets_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let raw = options_raw(&mut ua).without("Call-ID");
    let r = answer(&mut ua, &raw)?;
    assert_eq!(r.status, 400, "{} {}", r.status, r.reason);
    assert_alive(&mut ua)?;

    let raw = ua
        .raw_request("REGISTER", "sip:example.com", &ua.aor())
        .without("Call-ID");
    let r = answer(&mut ua, &raw)?;
    assert_eq!(r.status, 400, "{} {}", r.status, r.reason);
    assert_alive(&mut ua)?;
    Ok(())
}

#[test]
fn bad_content_length_gets_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let bob = "sip:bob@example.com";
    for cl in ["500", "-5", "ten", "5 5"] {
        // RFC 3261 §18.3: on a datagram a Content-Length larger than what
        // arrived is an error (400); so is one that is not a number.
        let raw = ua
            .raw_request("MESSAGE", bob, bob)
            .header("Content-Type: text/plain")
            .header(&format!("Content-Length: {cl}"))
            .body("only 21 bytes of body");
        let r = answer(&mut ua, &raw)?;
        assert_eq!(
            r.status, 400,
            "Content-Length {cl}: {} {}",
            r.status, r.reason
        );
        assert_alive(&mut ua)?;
    }
    Ok(())
}

#[test]
fn body_over_the_limit_gets_413_and_is_not_delivered() -> Result<()> {
    let herald = Herald::start(&["--max-body-size", "1000"])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    let big = "x".repeat(1001);
    let msg = alice.message_request(&bob.aor(), "text/plain", &big);
    let r = alice.transact(&msg)?;
    assert_eq!(r.status, 413, "{} {}", r.status, r.reason);
    bob.expect_nothing(QUIET)?;

    // A datagram near the UDP maximum, with most of it body.
    let huge = "y".repeat(60_000);
    let msg = alice.message_request(&bob.aor(), "text/plain", &huge);
    let r = alice.transact(&msg)?;
    assert_eq!(r.status, 413, "{} {}", r.status, r.reason);
    bob.expect_nothing(QUIET)?;

    // Exactly the limit still goes through.
    let fits = "z".repeat(1000);
    let msg = alice.message_request(&bob.aor(), "text/plain", &fits);
    alice.send(&msg)?;
    let delivered = bob.recv_request(&Method::Message, secs(5))?;
    assert_eq!(delivered.body.len(), 1000);
    bob.respond(&delivered, 200)?;
    assert_eq!(alice.recv_response(&msg, secs(5))?.status, 200);
    assert_alive(&mut alice)?;
    Ok(())
}

#[test]
fn oversized_head_is_refused_or_dropped() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    // A 40 kB header line: past any sane head limit but one datagram.
    let raw = options_raw(&mut ua).header(&format!("X-Padding: {}", "p".repeat(40_000)));
    ua.send_raw(&raw.to_bytes())?;
    if let Ok(r) = ua.recv_response_to(raw.branch(), "", QUIET) {
        ensure!(
            r.status == 413 || r.status == 400,
            "an oversized head must not be served: {} {}",
            r.status,
            r.reason
        );
    }
    assert_alive(&mut ua)?;
    Ok(())
}

#[test]
fn max_forwards_zero_gets_483_and_is_not_forwarded() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);

    let mut msg = alice.message_request(&bob.aor(), "text/plain", "no hops left");
    msg.headers.set(HeaderName::MaxForwards, "0");
    let r = alice.transact(&msg)?;
    // RFC 3261 §16.3 step 3.
    assert_eq!(r.status, 483, "{} {}", r.status, r.reason);
    bob.expect_nothing(QUIET)?;
    assert_alive(&mut alice)?;
    Ok(())
}

#[test]
fn options_gets_200_with_allow() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let r = ua.options()?;
    assert_eq!(r.status, 200);
    allow_lists(&r, &["REGISTER", "MESSAGE", "OPTIONS"])?;

    let mut tcp = herald.tcp_ua("alice")?;
    let r = tcp.options()?;
    assert_eq!(r.status, 200);
    allow_lists(&r, &["REGISTER", "MESSAGE", "OPTIONS"])?;
    Ok(())
}

#[test]
fn unknown_method_gets_501_with_allow() -> Result<()> {
    // RFC 3261 §21.5.2: 501 "when a UAS does not recognize the request
    // method"; the Allow header tells the client what would work.
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let target = format!("sip:{}", herald.udp);
    let raw = ua.raw_request("FROBNICATE", &target, &target);
    let r = answer(&mut ua, &raw)?;
    assert_eq!(r.status, 501, "{} {}", r.status, r.reason);
    allow_lists(&r, &["REGISTER", "MESSAGE", "OPTIONS"])?;
    assert_alive(&mut ua)?;
    Ok(())
}

#[test]
fn known_but_unsupported_method_gets_405_with_allow() -> Result<()> {
    // RFC 3261 §8.2.1: a method the UAS recognizes but does not support
    // gets 405 with Allow. Herald is no INVITE proxy.
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let target = format!("sip:{}", herald.udp);
    for method in ["INFO", "UPDATE", "INVITE"] {
        let raw = ua.raw_request(method, &target, &target);
        let r = answer(&mut ua, &raw)?;
        assert_eq!(r.status, 405, "{method}: {} {}", r.status, r.reason);
        allow_lists(&r, &["REGISTER", "MESSAGE", "OPTIONS"])?;
        let allow = r.headers.get_list(&HeaderName::Allow).join(",");
        ensure!(
            !allow
                .to_ascii_uppercase()
                .split(',')
                .any(|m| m.trim() == method),
            "405 for {method} but Allow lists it: {allow}"
        );
        assert_alive(&mut ua)?;
    }
    Ok(())
}

#[test]
fn cseq_method_mismatch_gets_400() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut ua = herald.udp_ua("alice")?;
    let raw = options_raw(&mut ua).set("CSeq", "1 INVITE");
    let r = answer(&mut ua, &raw)?;
    assert_eq!(r.status, 400, "{} {}", r.status, r.reason);
    assert_alive(&mut ua)?;
    Ok(())
}

#[test]
fn unsupported_require_gets_420_with_unsupported() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut bob = herald.udp_ua("bob")?;

    // RFC 3261 §8.2.2.3, Herald being the UAS of REGISTER and OPTIONS.
    let mut reg = bob.register_request(Some(3600));
    reg.headers.push(HeaderName::Require, "foo");
    let r = bob.transact(&reg)?;
    assert_eq!(r.status, 420, "{} {}", r.status, r.reason);
    assert_eq!(
        r.header(&HeaderName::Unsupported).map(str::trim),
        Some("foo")
    );
    let fetched = bob.fetch_bindings()?;
    assert!(
        testkit::response_contacts(&fetched)?.is_empty(),
        "a refused REGISTER must bind nothing"
    );

    let mut opt = bob.options_request();
    opt.headers.push(HeaderName::Require, "foo, bar");
    let r = bob.transact(&opt)?;
    assert_eq!(r.status, 420, "{} {}", r.status, r.reason);
    let unsupported: Vec<String> = r
        .headers
        .get_list(&HeaderName::Unsupported)
        .iter()
        .map(|t| t.trim().to_ascii_lowercase())
        .collect();
    assert!(
        unsupported.contains(&"foo".to_string()) && unsupported.contains(&"bar".to_string()),
        "{unsupported:?}"
    );
    assert_alive(&mut bob)?;
    Ok(())
}

#[test]
fn tcp_framing_error_costs_only_that_connection() -> Result<()> {
    let herald = Herald::start(&[])?;
    let mut bystander = herald.tcp_ua("carol")?;
    assert_alive(&mut bystander)?;

    // A negative Content-Length loses the framing of the stream
    // (RFC 4475 ncl): an error answer, if any, then the close.
    let mut bad = herald.tcp_ua("mallory")?;
    let target = format!("sip:{}", herald.tcp);
    let raw = bad
        .raw_request("OPTIONS", &target, &target)
        .header("Content-Length: -999");
    bad.send_raw(&raw.to_bytes())?;
    bad.expect_closed(secs(5))?;
    for r in bad.inbox() {
        let status = r.response().map(|r| r.status);
        ensure!(
            status.is_some_and(|s| s >= 400),
            "answered {status:?} before closing"
        );
    }

    // Missing Content-Length on a stream (RFC 3261 §18.3): same.
    let mut bad = herald.tcp_ua("mallory")?;
    let raw = bad
        .raw_request("OPTIONS", &target, &target)
        .header("Content-Type: text/plain");
    let mut bytes = raw.to_bytes();
    // Strip the Content-Length to_bytes added.
    let text = String::from_utf8(bytes.clone())?;
    bytes = text.replace("Content-Length: 0\r\n", "").into_bytes();
    bad.send_raw(&bytes)?;
    bad.expect_closed(secs(5))?;

    // Everyone else is fine.
    assert_alive(&mut bystander)?;
    let mut fresh = herald.tcp_ua("dave")?;
    assert_alive(&mut fresh)?;
    Ok(())
}
