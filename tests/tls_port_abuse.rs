//! What is not TLS on the TLS port: a plain SIP client is cut off at its
//! first bytes, a client that never starts the handshake is dropped at
//! the handshake deadline, and neither disturbs TLS clients.

use anyhow::{Context, Result};
use herald_tests::assert_alive;
use testkit::{eventually, secs, Herald, TcpUa, TestTls};

#[test]
fn a_plain_tcp_client_on_the_tls_port_is_closed_and_the_server_keeps_serving() -> Result<()> {
    let tls = TestTls::new()?;
    let herald = Herald::start_tls(&tls, &[])?;
    let addr = herald.tls.context("no TLS listener")?;

    let mut plain = TcpUa::connect("mallory", addr)?;
    let req = plain.options_request();
    plain.send(&req)?;
    plain.expect_closed(secs(5))?;

    let mut alice = herald.tls_ua("alice", &tls)?;
    assert_alive(&mut alice)?;
    Ok(())
}

#[test]
fn a_client_that_never_handshakes_is_dropped_at_the_deadline() -> Result<()> {
    let tls = TestTls::new()?;
    let herald = Herald::start_tls(&tls, &["--tls-handshake-timeout", "1"])?;
    let addr = herald.tls.context("no TLS listener")?;

    let mut silent = TcpUa::connect("mallory", addr)?;
    silent.expect_closed(secs(5))?;
    // The drop is the handshake deadline (logged as the socket closes).
    eventually(secs(5), "the handshake deadline in the log", || {
        Ok(herald
            .log_contains("TLS handshake timed out")?
            .then_some(()))
    })?;
    let mut alice = herald.tls_ua("alice", &tls)?;
    assert_alive(&mut alice)?;
    Ok(())
}
