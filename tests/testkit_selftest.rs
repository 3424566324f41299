//! The test vocabulary checked on its own, without Herald: agents talking
//! to each other directly, the Redis starter, the SIPp runner.

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};

use anyhow::{ensure, Result};
use sip::{HeaderName, Method};
use testkit::{eventually, millis, secs, sipp_path, RedisServer, Sipp, UdpUa};

#[test]
fn agents_talk_directly_and_absorb_retransmissions() -> Result<()> {
    // Bob's "server" is a dead address; Alice sends straight to Bob.
    let mut bob = UdpUa::bind("bob", "127.0.0.1:9".parse()?)?;
    let mut alice = UdpUa::bind("alice", bob.local_addr())?;

    let msg = alice.message_request(&bob.aor(), "text/plain", "direct");
    let bytes = msg.to_bytes();
    alice.send_raw(&bytes)?;
    let got = bob.recv_request(&Method::Message, secs(2))?;
    assert_eq!(&got.body[..], b"direct");
    assert_eq!(
        got.headers.get(&HeaderName::ContentType),
        Some("text/plain")
    );
    // Answered to the Via (Alice's socket).
    bob.respond(&got, 200)?;
    let first = alice.recv_response(&msg, secs(2))?;
    assert_eq!(first.status, 200);
    assert!(
        first.headers.to_addr()?.tag().is_some(),
        "a To tag on the 200"
    );

    // A retransmission gets the same response from Bob's agent, and does
    // not reach Bob's inbox. (An agent reads only when the test asks it
    // to: here, while checking that nothing new arrived.)
    alice.send_raw(&bytes)?;
    bob.expect_nothing(millis(300))?;
    let second = alice.recv_response(&msg, secs(2))?;
    assert_eq!(second, first);
    assert_eq!(bob.absorbed_retransmissions(), 1);
    Ok(())
}

#[test]
fn raw_requests_parse_as_built() -> Result<()> {
    let mut bob = UdpUa::bind("bob", "127.0.0.1:9".parse()?)?;
    let mut alice = UdpUa::bind("alice", bob.local_addr())?;
    let raw = alice
        .raw_request("MESSAGE", &bob.aor(), &bob.aor())
        .header("Content-Type: text/plain")
        .body("raw body");
    alice.send_raw(&raw.to_bytes())?;
    let got = bob.recv_request(&Method::Message, secs(2))?;
    assert_eq!(&got.body[..], b"raw body");
    assert_eq!(got.headers.top_via()?.branch(), Some(raw.branch()));
    Ok(())
}

#[test]
fn redis_server_starts_answers_and_stops() -> Result<()> {
    let redis = RedisServer::start()?;
    let addr = redis.addr();
    let mut s = TcpStream::connect(addr)?;
    s.write_all(b"*3\r\n$3\r\nSET\r\n$1\r\nk\r\n$1\r\nv\r\n")?;
    let mut buf = [0u8; 16];
    let n = s.read(&mut buf)?;
    ensure!(buf[..n].starts_with(b"+OK"), "{:?}", &buf[..n]);
    drop(s);
    drop(redis);
    eventually(secs(5), "redis to be gone", || {
        Ok(TcpStream::connect(addr).is_err().then_some(()))
    })?;
    Ok(())
}

#[test]
fn sipp_runner_reports_calls() -> Result<()> {
    if sipp_path().is_none() {
        println!("skipped: sipp is not installed");
        return Ok(());
    }
    // SIPp's built-in UAS against SIPp's built-in UAC: no Herald involved.
    let port = UdpSocket::bind("127.0.0.1:0")?.local_addr()?.port();
    let mut uas = Sipp::new(scenario("options_uas.xml"))
        .args([
            "-i",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-m",
            "3",
            "-timeout",
            "30s",
        ])
        .spawn()?;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    eventually(secs(10), "the SIPp UAS to bind", || {
        uas.ensure_running()?;
        Ok(UdpSocket::bind(addr).is_err().then_some(()))
    })?;
    let uac = Sipp::new(scenario("options_uac.xml"))
        .arg(addr.to_string())
        .args(["-i", "127.0.0.1", "-m", "3", "-r", "10", "-timeout", "30s"])
        .run(secs(60))?;
    ensure!(uac.status.code() == Some(0), "{}", uac.report());
    assert_eq!(uac.successful, Some(3), "{}", uac.report());
    assert_eq!(uac.failed, Some(0));
    let uas = uas.wait(secs(30))?;
    assert_eq!(uas.successful, Some(3), "{}", uas.report());
    Ok(())
}

fn scenario(name: &str) -> std::path::PathBuf {
    std::path::PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("sipp")
        .join(name)
}
