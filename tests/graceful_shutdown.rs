//! Lifecycle an operator relies on: /healthz and /readyz answer, and on
//! SIGTERM readiness goes false first, a request already accepted still
//! gets its final answer, and the process exits within the drain bound.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::Duration;

use anyhow::{ensure, Context, Result};
use sip::Method;
use testkit::{eventually, secs, Herald};

/// A free port for the health endpoint (herald prints it too, but the
/// test vocabulary reads only the SIP lines).
fn free_port() -> Result<u16> {
    Ok(testkit::cluster::free_ports(1)?[0])
}

/// The status code of `GET path`, or None if nothing answers.
fn http_status(port: u16, path: &str) -> Option<u16> {
    let mut s = TcpStream::connect(("127.0.0.1", port)).ok()?;
    s.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(
        s,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .ok()?;
    let mut text = String::new();
    s.read_to_string(&mut text).ok()?;
    text.split_whitespace().nth(1)?.parse().ok()
}

#[test]
fn probes_answer_and_sigterm_drains_before_exit() -> Result<()> {
    let port = free_port()?;
    let mut herald = Herald::start(&[
        "--health-listen",
        &format!("127.0.0.1:{port}"),
        "--delivery-timeout",
        "2",
        "--drain-timeout",
        "10",
    ])?;
    eventually(secs(5), "/healthz 200", || {
        Ok((http_status(port, "/healthz") == Some(200)).then_some(()))
    })?;
    ensure!(
        http_status(port, "/readyz") == Some(200),
        "ready once serving"
    );

    // Bob's phone takes the MESSAGE and never answers: Herald's answer to
    // Alice waits for the delivery timeout (then 202, stored).
    let mut alice = herald.udp_ua("alice")?;
    let mut bob = herald.udp_ua("bob")?;
    assert_eq!(bob.register(3600)?.status, 200);
    let msg = alice.message_request(&bob.aor(), "text/plain", "in flight at SIGTERM");
    alice.send(&msg)?;
    bob.recv_request(&Method::Message, secs(5))
        .context("the MESSAGE reached Bob before the SIGTERM")?;

    let status = Command::new("kill")
        .args(["-TERM", &herald.pid().to_string()])
        .status()?;
    ensure!(status.success(), "kill -TERM");

    // Readiness goes false while the accepted MESSAGE is still pending.
    eventually(secs(2), "/readyz 503 during the drain", || {
        Ok((http_status(port, "/readyz") == Some(503)).then_some(()))
    })?;
    // The request accepted before SIGTERM is answered.
    let r = alice.recv_response(&msg, secs(5))?;
    ensure!(
        r.status == 202,
        "the in-flight MESSAGE is answered (stored, 202): {} {}",
        r.status,
        r.reason
    );
    // And the process exits within the drain bound.
    eventually(secs(12), "herald to exit after draining", || {
        Ok((!herald.is_running()).then_some(()))
    })?;
    Ok(())
}
